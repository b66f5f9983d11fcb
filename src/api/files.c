/*
 * files.c: spaces, folders and node metadata: create, read, list, rename/move, trash, purge.
 * Reads run on the loop (point lookups); every write runs on a worker (it ends in a synced batch).
 */
#include "files.h"

#include "audit.h"
#include "davguard.h"

#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "http.h"
#include "jsonw.h"
#include "log.h"
#include "validate.h"

#define CHILDREN_DEFAULT_LIMIT 100
#define CHILDREN_MAX_LIMIT 1000

json_t *cf_node_json(const struct cf_node *n, enum cf_level level)
{
    char sha[2 * CF_SHA256_LEN + 1];
    json_t *o = json_object();
    json_object_set_new(o, "id", cf_json_id(&n->id));
    json_object_set_new(o, "type", json_string(n->type == CF_NODE_FOLDER ? "folder" : "file"));
    json_object_set_new(o, "name", json_string(n->name));
    json_object_set_new(o, "parent", cf_json_id(&n->parent));
    if (n->type == CF_NODE_FILE) {
        cf_hex_encode(n->sha256, sizeof n->sha256, sha);
        json_object_set_new(o, "size", json_integer((json_int_t)n->size));
        json_object_set_new(o, "sha256", json_string(sha));
        json_object_set_new(o, "mime", json_string(n->mime));
        json_object_set_new(o, "version", json_integer(n->version));
        if (n->scan.result != NULL) /* absent only on files stored before scanning existed */
            json_object_set_new(o, "scan", json_pack("{s:s, s:s?, s:s, s:s, s:o}", "result", n->scan.result, "detail",
                                                     n->scan.detail, "engine", n->scan.engine ? n->scan.engine : "",
                                                     "database", n->scan.database ? n->scan.database : "",
                                                     "scanned_at", cf_json_time(n->scan.at)));
    } else {
        json_object_set_new(o, "size", json_null());
        json_object_set_new(o, "sha256", json_null());
        json_object_set_new(o, "mime", json_null());
        json_object_set_new(o, "version", json_null());
    }
    json_object_set_new(o, "created_at", cf_json_time(n->created_at));
    json_object_set_new(o, "modified_at", cf_json_time(n->modified_at));
    json_object_set_new(o, "owner", cf_json_id(&n->owner));
    json_object_set_new(o, "my_level", json_string(cf_level_name(level)));
    if (n->root_kind != CF_SPACE_NONE)
        json_object_set_new(o, "space", json_string(n->root_kind == CF_SPACE_PRIVATE ? "private" : "tenant"));
    return o;
}

/* The same object as cf_node_json, written straight into w (jsonw.h): the hot metadata paths. */
void cf_node_json_write(struct cf_jw *w, const struct cf_node *n, enum cf_level level)
{
    char sha[2 * CF_SHA256_LEN + 1];
    cf_jw_lit(w, "{\"id\":");
    cf_jw_id(w, &n->id);
    if (n->type == CF_NODE_FOLDER)
        cf_jw_lit(w, ",\"type\":\"folder\",\"name\":");
    else
        cf_jw_lit(w, ",\"type\":\"file\",\"name\":");
    cf_jw_str(w, n->name);
    cf_jw_lit(w, ",\"parent\":");
    cf_jw_id(w, &n->parent);
    if (n->type == CF_NODE_FILE) {
        cf_hex_encode(n->sha256, sizeof n->sha256, sha);
        cf_jw_lit(w, ",\"size\":");
        cf_jw_int(w, (long long)n->size);
        cf_jw_lit(w, ",\"sha256\":");
        cf_jw_str(w, sha);
        cf_jw_lit(w, ",\"mime\":");
        cf_jw_str(w, n->mime);
        cf_jw_lit(w, ",\"version\":");
        cf_jw_int(w, (long long)n->version);
        if (n->scan.result != NULL) {
            cf_jw_lit(w, ",\"scan\":{\"result\":");
            cf_jw_str(w, n->scan.result);
            cf_jw_lit(w, ",\"detail\":");
            cf_jw_str_or_null(w, n->scan.detail);
            cf_jw_lit(w, ",\"engine\":");
            cf_jw_str(w, n->scan.engine ? n->scan.engine : "");
            cf_jw_lit(w, ",\"database\":");
            cf_jw_str(w, n->scan.database ? n->scan.database : "");
            cf_jw_lit(w, ",\"scanned_at\":");
            cf_jw_time(w, n->scan.at);
            cf_jw_lit(w, "}");
        }
    } else {
        cf_jw_lit(w, ",\"size\":null,\"sha256\":null,\"mime\":null,\"version\":null");
    }
    cf_jw_lit(w, ",\"created_at\":");
    cf_jw_time(w, n->created_at);
    cf_jw_lit(w, ",\"modified_at\":");
    cf_jw_time(w, n->modified_at);
    cf_jw_lit(w, ",\"owner\":");
    cf_jw_id(w, &n->owner);
    cf_jw_lit(w, ",\"my_level\":");
    cf_jw_str(w, cf_level_name(level));
    if (n->root_kind == CF_SPACE_PRIVATE)
        cf_jw_lit(w, ",\"space\":\"private\"");
    else if (n->root_kind != CF_SPACE_NONE)
        cf_jw_lit(w, ",\"space\":\"tenant\"");
    cf_jw_lit(w, "}");
}

void cf_h_spaces(struct cf_req *r)
{
    struct cf_tenant t;
    enum cf_status st = cf_tenant_get(r->app->store, &r->who.user.tenant, &t);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    json_t *o = json_pack("{s:{s:o}, s:{s:o}}", "private", "root", cf_json_id(&r->who.user.private_root), "tenant",
                          "root", cf_json_id(&t.root));
    cf_tenant_clear(&t);
    cf_respond_json(r, 200, o);
}

/* ---- create a folder -------------------------------------------------------------------------- */

struct folder_create {
    struct cf_async a;
    struct cf_id tenant, parent, owner;
    char *name;
    size_t name_len;
    enum cf_level level; /* the caller's level on the new folder */
    bool dav;            /* WebDAV MKCOL: 201 without a body */
    struct cf_node out;
    struct cf_event *ev; /* folder.create, completed on the worker */
};

static void folder_create_run(struct cf_async *a)
{
    struct folder_create *f = (struct folder_create *)a;
    a->st = cf_folder_create(a->app->store, &f->tenant, &f->parent, f->name, f->name_len, &f->owner, &f->out);
    if (a->st == CF_OK) {
        cf_event_node(f->ev, &f->out);
        a->st = cf_audit_submit_wait(f->ev, NULL);
        f->ev = NULL;
    }
}

static void folder_create_reply(struct cf_req *r, struct cf_async *a)
{
    struct folder_create *f = (struct folder_create *)a;
    if (a->st == CF_EEXIST)
        cf_respond_status(r, CF_EEXIST, "a node with this name already exists in the folder");
    else if (a->st != CF_OK)
        cf_respond_status(r, a->st, NULL);
    else if (f->dav)
        cf_respond_empty(r, 201);
    else
        cf_respond_json(r, 201, cf_node_json(&f->out, f->level));
}

static void folder_create_free(struct cf_async *a)
{
    struct folder_create *f = (struct folder_create *)a;
    free(f->name);
    cf_node_clear(&f->out);
    cf_event_free(f->ev);
    free(f);
}

/* Parses a JSON id field; answers 400 for a wrong type, 404 for something that cannot be an id. */
static bool json_id_or_respond(struct cf_req *r, json_t *body, const char *key, bool required, struct cf_id *out,
                               bool *present)
{
    const char *s;
    size_t n;
    if (!cf_json_str_or_respond(r, body, key, required, &s, &n))
        return false;
    *present = s != NULL;
    if (s != NULL && cf_id_parse(s, n, out) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return false;
    }
    return true;
}

static bool name_or_respond(struct cf_req *r, const char *s, size_t n)
{
    const char *why = cf_name_check(s, n);
    if (why != NULL) {
        cf_respond_status(r, CF_EINVAL, why);
        return false;
    }
    return true;
}

void cf_h_folder_create(struct cf_req *r)
{
    static const char *const allowed[] = {"parent", "name", NULL};
    json_t *body;
    struct cf_id parent;
    bool present;
    const char *name;
    size_t nlen;
    enum cf_level level;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "name", true, &name, &nlen) ||
        !name_or_respond(r, name, nlen) || !json_id_or_respond(r, body, "parent", true, &parent, &present) ||
        !cf_acl_folder_or_respond(r, &parent, CF_LEVEL_EDIT, &level) || !cf_davguard_node_or_respond(r, &parent))
        goto out;
    cf_folder_create_start(r, &parent, name, nlen, level, false);
out:
    json_decref(body);
}

void cf_folder_create_start(struct cf_req *r, const struct cf_id *parent, const char *name, size_t nlen,
                            enum cf_level level, bool dav)
{
    struct folder_create *f = cf_xcalloc(1, sizeof *f);
    f->a.run = folder_create_run;
    f->a.reply = folder_create_reply;
    f->a.free = folder_create_free;
    f->tenant = r->who.user.tenant;
    f->parent = *parent;
    f->dav = dav;
    f->owner = r->who.user.id;
    f->name = cf_xstrndup(name, nlen);
    f->name_len = nlen;
    f->level = level; /* creating gives nothing: the folder's level, inherited */
    f->ev = cf_event_new(&f->tenant, "folder.create", "ok");
    cf_event_from_req(f->ev, r);
    cf_async_start(r, &f->a);
}

/* ---- read ------------------------------------------------------------------------------------- */

void cf_h_node_get(struct cf_req *r)
{
    struct cf_node n;
    enum cf_level level;
    if (!cf_acl_param_in_or_respond(r, 0, CF_ACL_TEAM_ROOT, CF_LEVEL_VIEW, &n, &level))
        return;
    struct cf_jw w;
    cf_jw_init(&w, 512);
    cf_node_json_write(&w, &n, level);
    if (!w.bad)
        cf_respond_text(r, 200, "application/json", w.p, w.n);
    else
        cf_respond_json(r, 200, cf_node_json(&n, level)); /* what jansson would refuse: its answer */
    cf_jw_free(&w);
    cf_node_clear(&n);
}

/* A page of children: {"items": [node…], "next_cursor": hex|null}, written straight into a buffer
 * (the jansson tree only where jansson would refuse a value, to answer exactly as it does). */
static void children_respond(struct cf_req *r, const struct cf_node *items, const enum cf_level *levels, size_t cnt,
                             const uint8_t *next)
{
    struct cf_jw w;
    char hex[2 * CF_CURSOR_LEN + 1];
    cf_jw_init(&w, 64 + cnt * 512);
    cf_jw_lit(&w, "{\"items\":[");
    for (size_t i = 0; i < cnt && !w.bad; i++) {
        if (i > 0)
            cf_jw_lit(&w, ",");
        cf_node_json_write(&w, &items[i], levels[i]);
    }
    cf_jw_lit(&w, "],\"next_cursor\":");
    if (next != NULL) {
        cf_hex_encode(next, CF_CURSOR_LEN, hex);
        cf_jw_str(&w, hex);
    } else {
        cf_jw_lit(&w, "null");
    }
    cf_jw_lit(&w, "}");
    if (!w.bad) {
        cf_respond_text(r, 200, "application/json", w.p, w.n);
        cf_jw_free(&w);
        return;
    }
    cf_jw_free(&w);
    json_t *arr = json_array();
    for (size_t i = 0; i < cnt; i++)
        json_array_append_new(arr, cf_node_json(&items[i], levels[i]));
    json_t *o = json_object();
    json_object_set_new(o, "items", arr);
    json_object_set_new(o, "next_cursor", next != NULL ? json_string(hex) : json_null());
    cf_respond_json(r, 200, o);
}

void cf_h_node_children(struct cf_req *r)
{
    struct cf_node n;
    enum cf_level level;
    h2o_iovec_t v;
    bool bad = false;
    uint64_t limit = CHILDREN_DEFAULT_LIMIT;
    uint8_t cursor[CF_CURSOR_LEN], next[CF_CURSOR_LEN];
    bool have_cursor = false, has_more;
    size_t cl;

    if (cf_query(r, "limit", &v, &bad) &&
        (cf_parse_u64(v.base, v.len, CHILDREN_MAX_LIMIT, &limit) != CF_OK || limit == 0)) {
        cf_respond_status(r, CF_EINVAL, "limit must be between 1 and 1000");
        return;
    }
    if (!bad && cf_query(r, "cursor", &v, &bad)) {
        if (cf_hex_decode(v.base, v.len, cursor, sizeof cursor, &cl) != CF_OK || cl != CF_CURSOR_LEN) {
            cf_respond_status(r, CF_EINVAL, "invalid cursor");
            return;
        }
        have_cursor = true;
    }
    if (bad) {
        cf_respond_status(r, CF_EINVAL, "malformed query string");
        return;
    }
    if (!cf_acl_param_in_or_respond(r, 0, CF_ACL_TEAM_ROOT, CF_LEVEL_VIEW, &n, &level))
        return;
    if (n.type != CF_NODE_FOLDER) {
        cf_node_clear(&n);
        cf_respond_status(r, CF_EINVAL, "not a folder");
        return;
    }
    struct cf_node *items;
    size_t cnt;
    enum cf_status st = cf_children_list(r->app->store, &r->who.user.tenant, &n.id, have_cursor ? cursor : NULL,
                                         (size_t)limit, &items, &cnt, next, &has_more);
    cf_node_clear(&n);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    enum cf_level *levels = cf_xmalloc((cnt > 0 ? cnt : 1) * sizeof *levels);
    struct cf_actor a = cf_actor_of(r);
    for (size_t i = 0; i < cnt && st == CF_OK; i++) {
        /* Levels only grow down the tree: a child has at least the parent's level, more if it has
         * entries of its own. */
        enum cf_level child = level;
        struct cf_acl_entry *e;
        size_t ne;
        if ((st = cf_acl_get(r->app->store, &r->who.user.tenant, &items[i].id, &e, &ne)) == CF_OK) {
            for (size_t k = 0; k < ne; k++)
                if (cf_acl_entry_matches(&a, &e[k]) && e[k].level > child)
                    child = (enum cf_level)e[k].level;
            free(e);
        }
        levels[i] = child;
    }
    /* The team space's root, listed to a member without a level on it (CF_ACL_TEAM_ROOT): only the
     * children they can see; the others are not revealed (a page may hold fewer than limit). */
    size_t kept = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (st == CF_OK && levels[i] == CF_LEVEL_NONE) {
            cf_node_clear(&items[i]);
            continue;
        }
        items[kept] = items[i];
        levels[kept++] = levels[i];
    }
    cnt = kept;
    if (st == CF_OK)
        children_respond(r, items, levels, cnt, has_more ? next : NULL);
    else
        cf_respond_status(r, st, NULL);
    for (size_t i = 0; i < cnt; i++)
        cf_node_clear(&items[i]);
    free(items);
    free(levels);
}

/* ---- rename / move ---------------------------------------------------------------------------- */

struct node_move {
    struct cf_async a;
    struct cf_id tenant, id, parent;
    struct cf_actor who;   /* the mover, groups owned by the job: the move re-checks under the lock */
    struct cf_id *groups;
    const char *why;       /* CF_EDENIED from the check: what was missing */
    bool move;
    char *name; /* NULL: keep */
    size_t name_len;
    enum cf_level level;
    int dav_status;        /* WebDAV MOVE: this status without a body on success (0: the API's JSON) */
    struct cf_id replace;  /* WebDAV MOVE with Overwrite: T: this node goes to the trash first (or zero) */
    struct cf_node out;
    struct cf_event *ev; /* node.move or node.rename */
};

/* cf_move_check_fn: the level rule for moves, under the namespace lock (acl.h). */
static enum cf_status move_check(void *ctx, const struct cf_node *node, const struct cf_id *dest)
{
    struct node_move *m = ctx;
    return cf_acl_move_allowed(&m->who, node, dest, &m->why);
}

static void node_move_run(struct cf_async *a)
{
    struct node_move *m = (struct node_move *)a;
    struct cf_node before;
    bool have = cf_node_get(a->app->store, &m->tenant, &m->id, &before) == CF_OK;
    if (have) {
        cf_event_detail(m->ev, "from_name", json_string(before.name));
        cf_event_detail(m->ev, "from_parent", cf_json_id(&before.parent));
        cf_node_clear(&before);
    }
    /* WebDAV's Overwrite: T: the replaced node goes to the trash in the move's own batch. */
    bool replace = !cf_id_is_zero(&m->replace);
    a->st = cf_node_move_replacing(a->app->store, &m->tenant, &m->id, m->move ? &m->parent : NULL, m->name,
                                   m->name_len, replace ? &m->replace : NULL, move_check, m, &m->out);
    if (a->st == CF_OK && replace)
        cf_event_detail(m->ev, "replaced", cf_json_id(&m->replace)); /* now in the trash */
    if (a->st == CF_OK) {
        cf_event_node(m->ev, &m->out);
        a->st = cf_audit_submit_wait(m->ev, NULL);
        m->ev = NULL;
    }
}

static void node_move_reply(struct cf_req *r, struct cf_async *a)
{
    struct node_move *m = (struct node_move *)a;
    switch (a->st) {
    case CF_OK:
        if (m->dav_status != 0)
            cf_respond_empty(r, m->dav_status);
        else
            cf_respond_json(r, 200, cf_node_json(&m->out, m->level));
        break;
    case CF_EEXIST:
        cf_respond_status(r, CF_EEXIST, "a node with this name already exists in the target folder");
        break;
    case CF_EINVAL:
        cf_respond_status(r, CF_EINVAL, "a folder cannot be moved into itself or its subfolders");
        break;
    case CF_EDENIED:
        cf_respond_status(r, CF_EDENIED, m->why != NULL ? m->why : "a space root cannot be renamed or moved");
        break;
    default:
        cf_respond_status(r, a->st, NULL);
        break;
    }
}

static void node_move_free(struct cf_async *a)
{
    struct node_move *m = (struct node_move *)a;
    free(m->name);
    free(m->groups);
    cf_node_clear(&m->out);
    cf_event_free(m->ev);
    free(m);
}

void cf_h_node_patch(struct cf_req *r)
{
    static const char *const allowed[] = {"name", "parent", NULL};
    json_t *body;
    struct cf_node n = {0}, target = {0};
    enum cf_level level, tlevel;
    const char *name;
    size_t nlen;
    struct cf_id parent;
    bool have_parent;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "name", false, &name, &nlen) ||
        (name != NULL && !name_or_respond(r, name, nlen)) ||
        !json_id_or_respond(r, body, "parent", false, &parent, &have_parent))
        goto out;
    if (name == NULL && !have_parent) {
        cf_respond_status(r, CF_EINVAL, "name or parent is required");
        goto out;
    }
    if (!cf_acl_param_or_respond(r, 0, CF_LEVEL_EDIT, &n, &level))
        goto out;
    if (cf_id_is_zero(&n.parent)) {
        cf_respond_status(r, CF_EDENIED, "a space root cannot be renamed or moved");
        goto out;
    }
    if (have_parent && !cf_id_equal(&parent, &n.parent)) {
        if (!cf_acl_node_or_respond(r, &parent, CF_LEVEL_EDIT, &target, &tlevel))
            goto out;
        if (target.type != CF_NODE_FOLDER) {
            cf_respond_status(r, CF_EINVAL, "the target is not a folder");
            goto out;
        }
        if (tlevel < level)
            level = tlevel; /* conservative until the node's own grants are known */
    }
    /* WebDAV locks bind the API too (davguard.h): the node, the folder it leaves, the one it joins. */
    if (!cf_davguard_node_or_respond(r, &n.id) || !cf_davguard_node_or_respond(r, &n.parent) ||
        (have_parent && !cf_davguard_node_or_respond(r, &parent)))
        goto out;
    cf_node_move_start(r, &n, level, have_parent ? &parent : NULL, name, nlen, NULL, 0);
out:
    cf_node_clear(&n);
    cf_node_clear(&target);
    json_decref(body);
}

void cf_node_move_start(struct cf_req *r, const struct cf_node *n, enum cf_level level, const struct cf_id *parent,
                        const char *name, size_t nlen, const struct cf_id *replace, int dav_status)
{
    bool have_parent = parent != NULL;
    struct node_move *m = cf_xcalloc(1, sizeof *m);
    m->a.run = node_move_run;
    m->a.reply = node_move_reply;
    m->a.free = node_move_free;
    m->tenant = r->who.user.tenant;
    m->id = n->id;
    m->who = cf_actor_of(r);
    m->groups = cf_xcalloc(r->who.ngroups + 1, sizeof *m->groups);
    memcpy(m->groups, r->who.groups, r->who.ngroups * sizeof *m->groups);
    m->who.groups = m->groups;
    m->move = have_parent;
    if (have_parent)
        m->parent = *parent;
    if (replace != NULL)
        m->replace = *replace;
    m->dav_status = dav_status;
    m->name = name != NULL ? cf_xstrndup(name, nlen) : NULL;
    m->name_len = nlen;
    m->level = level;
    m->ev = cf_event_new(&m->tenant, have_parent && !cf_id_equal(parent, &n->parent) ? "node.move" : "node.rename", "ok");
    cf_event_from_req(m->ev, r);
    cf_async_start(r, &m->a);
}

/* ---- delete ----------------------------------------------------------------------------------- */

struct node_delete {
    struct cf_async a;
    struct cf_id tenant, id;
    bool purge;
    struct cf_event *ev; /* file.delete or file.purge */
};

static void node_delete_run(struct cf_async *a)
{
    struct node_delete *d = (struct node_delete *)a;
    struct cf_node n;
    /* The event names the node as it was: capture it before it goes. */
    if (cf_node_get(a->app->store, &d->tenant, &d->id, &n) == CF_OK) {
        cf_event_node(d->ev, &n);
        cf_event_detail(d->ev, "type", json_string(n.type == CF_NODE_FOLDER ? "folder" : "file"));
        cf_node_clear(&n);
    }
    if (d->purge)
        a->st = cf_node_purge(a->app->store, &d->tenant, &d->id);
    else
        a->st = cf_node_trash(a->app->store, &d->tenant, &d->id);
    if (a->st == CF_OK) {
        a->st = cf_audit_submit_wait(d->ev, NULL);
        d->ev = NULL;
    }
}

static void node_delete_free(struct cf_async *a)
{
    struct node_delete *d = (struct node_delete *)a;
    cf_event_free(d->ev);
    free(d);
}

static void node_delete_reply(struct cf_req *r, struct cf_async *a)
{
    if (a->st == CF_EDENIED)
        cf_respond_status(r, CF_EDENIED, "a space root cannot be deleted");
    else if (a->st != CF_OK)
        cf_respond_status(r, a->st, NULL);
    else
        cf_respond_empty(r, 204);
}

void cf_h_node_delete(struct cf_req *r)
{
    struct cf_node n;
    enum cf_level level;
    h2o_iovec_t v;
    bool bad = false, purge = false;
    if (cf_query(r, "purge", &v, &bad)) {
        if (h2o_memis(v.base, v.len, H2O_STRLIT("true")))
            purge = true;
        else if (!h2o_memis(v.base, v.len, H2O_STRLIT("false")))
            bad = true;
    }
    if (bad) {
        cf_respond_status(r, CF_EINVAL, "purge must be true or false");
        return;
    }
    /* A purge also reaches what is in the trash (a trashed node or anything below one). */
    if (!cf_acl_param_in_or_respond(r, 0, purge ? CF_ACL_IN_TRASH : 0, CF_LEVEL_MANAGE, &n, &level))
        return;
    if (cf_id_is_zero(&n.parent)) {
        cf_node_clear(&n);
        cf_respond_status(r, CF_EDENIED, "a space root cannot be deleted");
        return;
    }
    if (cf_davguard_node_or_respond(r, &n.id) && cf_davguard_node_or_respond(r, &n.parent)) /* davguard.h */
        cf_node_delete_start(r, &n.id, purge);
    cf_node_clear(&n);
}

void cf_node_delete_start(struct cf_req *r, const struct cf_id *id, bool purge)
{
    struct node_delete *d = cf_xcalloc(1, sizeof *d);
    d->a.run = node_delete_run;
    d->a.reply = node_delete_reply;
    d->a.free = node_delete_free;
    d->tenant = r->who.user.tenant;
    d->id = *id;
    d->purge = purge;
    d->ev = cf_event_new(&d->tenant, purge ? "file.purge" : "file.delete", "ok");
    cf_event_from_req(d->ev, r);
    cf_async_start(r, &d->a);
}
