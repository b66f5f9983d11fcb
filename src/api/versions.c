/*
 * versions.c: a file's stored versions (issue 21): GET /api/v1/files/{id}/versions (view),
 * GET|HEAD /api/v1/files/{id}/versions/{v}/content (download: the same path as the current content,
 * download.c's cf_serve_file with its provenance gate, so a file.download event naming the version,
 * Range, ETag and HEAD alike), POST /api/v1/files/{id}/versions/{v}/restore (edit: the old bytes
 * become a new current version, event file.version_restore).
 *
 * Version numbers in paths are decimal, 1 to 4294967295; anything else is 400, a number that names
 * no stored version (never written, or purged by the retention of old versions) 404.
 */
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "audit.h"
#include "config.h"
#include "files.h"
#include "handlers.h"
#include "http.h"
#include "pages.h"
#include "quota.h"
#include "validate.h"

/* The {v} capture (params[1]); answers 400 and returns false when it is not a version number. */
static bool version_param_or_respond(struct cf_req *r, uint32_t *out)
{
    uint64_t v;
    if (r->nparams < 2 || cf_parse_u64(r->params[1].base, r->params[1].len, UINT32_MAX, &v) != CF_OK || v == 0) {
        cf_respond_status(r, CF_EINVAL, "the version must be a number from 1");
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* The file {id} at level need; answers 404/403, or 400 for a folder. */
static bool file_or_respond(struct cf_req *r, enum cf_level need, struct cf_node *n, enum cf_level *level)
{
    if (!cf_acl_param_or_respond(r, 0, need, n, level))
        return false;
    if (n->type != CF_NODE_FILE) {
        cf_node_clear(n);
        cf_respond_status(r, CF_EINVAL, "not a file");
        return false;
    }
    return true;
}

static json_t *version_json(struct cf_req *r, const struct cf_version_info *v, const struct cf_node *n,
                            const struct cf_version_info *next)
{
    char sha[2 * CF_SHA256_LEN + 1];
    struct cf_user u;
    const char *name = NULL;
    bool have_user = !cf_id_is_zero(&v->uploader) &&
                     cf_user_get(r->app->store, &r->who.user.tenant, &v->uploader, &u) == CF_OK;
    if (have_user)
        name = u.display_name != NULL && u.display_name[0] != '\0' ? u.display_name : u.username;
    cf_hex_encode(v->sha256, sizeof v->sha256, sha);
    json_t *o = json_object();
    json_object_set_new(o, "version", json_integer(v->version));
    json_object_set_new(o, "size", json_integer((json_int_t)v->size));
    json_object_set_new(o, "sha256", json_string(sha));
    json_object_set_new(o, "mime", json_string(v->mime));
    json_object_set_new(o, "created_at", cf_json_time(v->created_at));
    json_object_set_new(o, "replaced_at", next != NULL ? cf_json_time(next->created_at) : json_null());
    json_object_set_new(o, "uploader", cf_json_id(&v->uploader));
    json_object_set_new(o, "uploader_name", name != NULL ? json_string(name) : json_null());
    json_object_set_new(o, "current", json_boolean(v->version == n->version));
    if (have_user)
        cf_user_clear(&u);
    return o;
}

void cf_h_file_versions(struct cf_req *r)
{
    struct cf_node n;
    enum cf_level level;
    struct cf_version_info *vs;
    size_t cnt;
    if (!file_or_respond(r, CF_LEVEL_VIEW, &n, &level))
        return;
    enum cf_status st = cf_versions_list(r->app->store, &r->who.user.tenant, &n.id, &vs, &cnt);
    if (st != CF_OK) {
        cf_node_clear(&n);
        cf_respond_status(r, st, NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = cnt; i > 0; i--) /* newest first */
        json_array_append_new(arr, version_json(r, &vs[i - 1], &n, i < cnt ? &vs[i] : NULL));
    for (size_t i = 0; i < cnt; i++)
        cf_version_info_clear(&vs[i]);
    free(vs);
    cf_node_clear(&n);
    cf_respond_json(r, 200, json_pack("{s:o}", "items", arr));
}

/* ---- content of a version ------------------------------------------------------------------- */

void cf_h_file_version_content(struct cf_req *r)
{
    struct cf_node n;
    enum cf_level level;
    struct cf_version_info vi;
    uint32_t version;
    /* Download level, like the current content: view-only callers get 403 (they see pages only). */
    if (!version_param_or_respond(r, &version) || !file_or_respond(r, CF_LEVEL_DOWNLOAD, &n, &level))
        return;
    enum cf_status st = cf_version_get(r->app->store, &r->who.user.tenant, &n.id, version, &vi);
    if (st != CF_OK) {
        cf_node_clear(&n);
        cf_respond_status(r, st, st == CF_ENOTFOUND ? "no such version of this file" : NULL);
        return;
    }
    /* The node as it was at that version: its bytes, hash (the ETag), size and type; its name now. */
    n.version = version;
    n.size = vi.size;
    memcpy(n.sha256, vi.sha256, CF_SHA256_LEN);
    free(n.mime);
    n.mime = vi.mime;
    vi.mime = NULL;
    cf_version_info_clear(&vi);
    h2o_iovec_t ua = cf_header(r, "user-agent");
    char *uas = ua.base != NULL ? cf_text_clean(ua.base, ua.len, 512) : NULL;
    struct cf_transfer t = {
        .store = r->app->store,
        .action = "file.download",
        .tenant = r->who.user.tenant,
        .node = n.id,
        .actor_type = CF_ACTOR_USER,
        .actor = r->who.user.id,
        .actor_name = r->who.user.username,
        .ip = r->ip,
        .user_agent = uas,
        .size = n.size,
        .version = version,
    };
    struct cf_serve_opts o = {.view = false};
    if (!r->app->bench_no_transfer_audit)
        cf_transfer_opts(&t, &o);
    free(uas);
    cf_serve_file(r, &r->who.user.tenant, &n, &o);
    cf_node_clear(&n);
}

/* ---- restore a version ---------------------------------------------------------------------- */

struct version_restore {
    struct cf_async a;
    struct cf_id tenant, id;
    uint32_t version;
    struct cf_uploader as;  /* the restorer: edit is checked again under the lock */
    struct cf_quota quota;  /* the tenant's limits: a restored version that is larger counts */
    struct cf_quota_refusal refused;
    struct cf_node out;
    struct cf_event *ev;    /* file.version_restore */
};

static void version_restore_run(struct cf_async *a)
{
    struct version_restore *j = (struct version_restore *)a;
    cf_quota_of(a->app->store, &j->tenant, &j->quota);
    a->st = cf_version_restore(a->app->store, &j->tenant, &j->id, j->version, &j->as.who.id, cf_uploader_may_replace,
                               &j->as, &j->quota, &j->refused, &j->out);
    if (a->st != CF_OK)
        return;
    cf_upload_event_committed(j->ev, &j->out);
    cf_event_detail(j->ev, "from_version", json_integer(j->version));
    a->st = cf_audit_submit_wait(j->ev, NULL);
    j->ev = NULL;
    if (a->st == CF_OK && a->app->cfg->render.enabled)
        cf_pages_prepare(a->app->store, &j->out.tenant, &j->out.id, j->out.version, j->out.mime);
}

static void version_restore_reply(struct cf_req *r, struct cf_async *a)
{
    struct version_restore *j = (struct version_restore *)a;
    switch (a->st) {
    case CF_OK:
        cf_respond_json(r, 200, cf_node_json(&j->out, j->as.level));
        break;
    case CF_EDENIED:
        cf_respond_status(r, CF_EDENIED, "your access level does not allow this");
        break;
    case CF_EEXIST:
        cf_respond_status(r, CF_EEXIST, "this file has no version numbers left");
        break;
    case CF_EQUOTA:
        cf_quota_respond(r, &j->refused);
        break;
    default:
        cf_respond_status(r, a->st, NULL);
        break;
    }
}

static void version_restore_free(struct cf_async *a)
{
    struct version_restore *j = (struct version_restore *)a;
    cf_uploader_clear(&j->as);
    cf_node_clear(&j->out);
    cf_event_free(j->ev);
    free(j);
}

void cf_h_file_version_restore(struct cf_req *r)
{
    static const char *const allowed[] = {NULL};
    struct cf_node n;
    enum cf_level level;
    struct cf_version_info vi;
    uint32_t version;
    if (r->req->entity.len != 0) { /* no options: an empty body or {} */
        json_t *body;
        if (!cf_json_body_or_respond(r, &body))
            return;
        bool ok = cf_json_only_keys_or_respond(r, body, allowed);
        json_decref(body);
        if (!ok)
            return;
    }
    if (!version_param_or_respond(r, &version) || !file_or_respond(r, CF_LEVEL_EDIT, &n, &level))
        return;
    enum cf_status st = cf_version_get(r->app->store, &r->who.user.tenant, &n.id, version, &vi);
    if (st != CF_OK) {
        cf_node_clear(&n);
        cf_respond_status(r, st, st == CF_ENOTFOUND ? "no such version of this file" : NULL);
        return;
    }
    cf_version_info_clear(&vi);
    if (version == n.version) {
        cf_node_clear(&n);
        cf_respond_error(r, 409, "already_current", "this version is the current one");
        return;
    }
    struct version_restore *j = cf_xcalloc(1, sizeof *j);
    j->a.run = version_restore_run;
    j->a.reply = version_restore_reply;
    j->a.free = version_restore_free;
    j->tenant = r->who.user.tenant;
    j->id = n.id;
    j->version = version;
    cf_uploader_init(&j->as, r);
    j->as.level = level;
    j->ev = cf_event_new(&j->tenant, "file.version_restore", "ok");
    cf_event_from_req(j->ev, r);
    cf_node_clear(&n);
    cf_async_start(r, &j->a);
}
