/*
 * trash.c: the trash (issue 21): GET /api/v1/trash (what the caller may see and act on),
 * POST /api/v1/nodes/{id}/restore (back where it was, or into another folder), DELETE /api/v1/trash
 * (empty: purge what the caller may purge). Purging one item is files.c's DELETE ?purge=true.
 *
 * Who sees what (docs/SECURITY.md "Trash"): a trashed top is listed for a caller whose level on it,
 * resolved as if it were still in its place (cf_acl_resolve with CF_ACL_IN_TRASH: today's ACLs of
 * the node and of the folders above it), is at least edit, the level that may restore it. Anyone with
 * less never learns it exists (absent from the list, 404 on every route), as before it was deleted.
 * A restore is decided as a move from the place it was deleted from into the destination
 * (cf_acl_move_allowed_in): edit on the node and on the destination, and manage on the node when the
 * destination would widen access to it; so a grant on the trashed node alone restores nothing into
 * a folder its holder may not edit. Emptying purges the listed items where the caller has manage
 * (the level that deletes and purges); the rest stay.
 * Reads run on the loop; restores and purges on workers (synced batches), each with its event.
 */
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "audit.h"
#include "files.h"
#include "handlers.h"
#include "http.h"
#include "validate.h"

#define TRASH_DEFAULT_LIMIT 100
#define TRASH_MAX_LIMIT 1000
#define TRASH_CURSOR_LEN 24 /* trashed_at:u64 ‖ id */
#define PATH_MAX_DEPTH 64 /* folders named in an original_path; deeper ones are cut ("…") */

/* The path the node had, as the caller may see it: "/a/b/name" from its space root, or "…/b/name"
 * from the nearest folder up to which every folder is visible to the caller (names of folders the
 * caller may not view are never shown). Malloc'ed. */
static char *original_path(const struct cf_actor *a, const struct cf_node *n)
{
    const char *names[PATH_MAX_DEPTH];
    struct cf_node held[PATH_MAX_DEPTH];
    size_t depth = 0;
    bool cut = false;
    struct cf_id cur = n->parent;
    while (!cf_id_is_zero(&cur)) {
        struct cf_node p;
        enum cf_level level = CF_LEVEL_NONE;
        if (depth == PATH_MAX_DEPTH || cf_acl_resolve(a, &cur, CF_ACL_IN_TRASH, &p, &level, NULL) != CF_OK) {
            cut = true;
            break;
        }
        if (cf_id_is_zero(&p.parent)) { /* the space root: no name in paths */
            cf_node_clear(&p);
            break;
        }
        if (level < CF_LEVEL_VIEW) {
            cf_node_clear(&p);
            cut = true;
            break;
        }
        cur = p.parent;
        held[depth] = p;
        names[depth] = held[depth].name;
        depth++;
    }
    size_t len = (cut ? 3 : 0) + strlen(n->name) + 2;
    for (size_t i = 0; i < depth; i++)
        len += strlen(names[i]) + 1;
    char *out = cf_xmalloc(len), *w = out;
    if (cut) {
        memcpy(w, "\xe2\x80\xa6", 3); /* U+2026 */
        w += 3;
    }
    for (size_t i = depth; i > 0; i--) {
        size_t l = strlen(names[i - 1]);
        *w++ = '/';
        memcpy(w, names[i - 1], l);
        w += l;
    }
    *w++ = '/';
    size_t l = strlen(n->name);
    memcpy(w, n->name, l + 1);
    for (size_t i = 0; i < depth; i++)
        cf_node_clear(&held[i]);
    return out;
}

/* Whether the folder a node was deleted from is gone: purged, trashed, or below a trashed folder. */
static bool original_gone(const struct cf_actor *a, const struct cf_node *n)
{
    struct cf_node p;
    enum cf_level level;
    enum cf_status st = cf_acl_resolve(a, &n->parent, 0, &p, &level, NULL);
    if (st == CF_OK)
        cf_node_clear(&p);
    return st == CF_ENOTFOUND;
}

/* Which space the item was in, as the caller names it: "private" (the caller's own), "tenant", or
 * "shared" (someone else's private space, reached through a grant). */
static const char *space_name(const struct cf_actor *a, const struct cf_acl_space *sp)
{
    if (sp->kind == CF_SPACE_TENANT)
        return "tenant";
    return cf_id_equal(&sp->owner, &a->id) ? "private" : "shared";
}

static json_t *trash_item_json(const struct cf_actor *a, const struct cf_node *n, enum cf_level level,
                               const struct cf_acl_space *sp)
{
    json_t *o = cf_node_json(n, level);
    char *path = original_path(a, n);
    json_object_set_new(o, "original_space", json_string(space_name(a, sp)));
    json_object_set_new(o, "trashed_at", cf_json_time(n->trashed_at));
    json_object_set_new(o, "original_path", json_string(path));
    json_object_set_new(o, "original_gone", json_boolean(original_gone(a, n)));
    free(path);
    return o;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Whether item i comes after the cursor (newest first: older, or as old with a smaller id). */
static bool after_cursor(const struct cf_trash_item *it, const uint8_t *cursor)
{
    uint64_t at = get_be64(cursor);
    if (it->trashed_at != at)
        return it->trashed_at < at;
    return memcmp(it->id.b, cursor + 8, CF_ID_LEN) < 0;
}

static bool limit_cursor_or_respond(struct cf_req *r, uint64_t *limit, uint8_t *cursor, bool *have_cursor)
{
    h2o_iovec_t v;
    bool bad = false;
    size_t cl;
    *limit = TRASH_DEFAULT_LIMIT;
    *have_cursor = false;
    if (cf_query(r, "limit", &v, &bad) &&
        (cf_parse_u64(v.base, v.len, TRASH_MAX_LIMIT, limit) != CF_OK || *limit == 0)) {
        cf_respond_status(r, CF_EINVAL, "limit must be between 1 and 1000");
        return false;
    }
    if (!bad && cf_query(r, "cursor", &v, &bad)) {
        if (cf_hex_decode(v.base, v.len, cursor, TRASH_CURSOR_LEN, &cl) != CF_OK || cl != TRASH_CURSOR_LEN) {
            cf_respond_status(r, CF_EINVAL, "invalid cursor");
            return false;
        }
        *have_cursor = true;
    }
    if (bad) {
        cf_respond_status(r, CF_EINVAL, "malformed query string");
        return false;
    }
    return true;
}

void cf_h_trash_list(struct cf_req *r)
{
    uint64_t limit;
    uint8_t cursor[TRASH_CURSOR_LEN];
    bool have_cursor;
    struct cf_trash_item *items;
    size_t n;
    if (!limit_cursor_or_respond(r, &limit, cursor, &have_cursor))
        return;
    enum cf_status st = cf_trash_list(r->app->store, &r->who.user.tenant, &items, &n);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    struct cf_actor a = cf_actor_of(r);
    json_t *arr = json_array();
    const struct cf_trash_item *last = NULL;
    bool more = false;
    for (size_t i = 0; i < n && st == CF_OK && !more; i++) {
        struct cf_node node;
        enum cf_level level;
        struct cf_acl_space sp;
        if (have_cursor && !after_cursor(&items[i], cursor))
            continue;
        st = cf_acl_resolve(&a, &items[i].id, CF_ACL_IN_TRASH, &node, &level, &sp);
        if (st == CF_ENOTFOUND) { /* purged since the listing */
            st = CF_OK;
            continue;
        }
        if (st != CF_OK)
            break;
        if (level >= CF_LEVEL_EDIT && node.trashed_at != 0) {
            if (json_array_size(arr) == limit)
                more = true;
            else {
                json_array_append_new(arr, trash_item_json(&a, &node, level, &sp));
                last = &items[i];
            }
        }
        cf_node_clear(&node);
    }
    if (st != CF_OK) {
        free(items);
        json_decref(arr);
        cf_respond_status(r, st, NULL);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "items", arr);
    if (more && last != NULL) {
        uint8_t next[TRASH_CURSOR_LEN];
        char hex[2 * TRASH_CURSOR_LEN + 1];
        put_be64(next, last->trashed_at);
        memcpy(next + 8, last->id.b, CF_ID_LEN);
        cf_hex_encode(next, sizeof next, hex);
        json_object_set_new(o, "next_cursor", json_string(hex));
    } else {
        json_object_set_new(o, "next_cursor", json_null());
    }
    free(items);
    cf_respond_json(r, 200, o);
}

/* ---- restore ---------------------------------------------------------------------------------- */

struct node_restore {
    struct cf_async a;
    struct cf_id tenant, id, dest;
    bool have_dest, rename, gone;
    struct cf_actor who;   /* groups owned by the job: the restore is decided under the lock */
    struct cf_id *groups;
    const char *why;       /* CF_EDENIED from the check: what was missing */
    uint64_t trashed_at;
    struct cf_id from;     /* the folder it was deleted from */
    char *from_name;
    enum cf_level level;
    struct cf_node out;
    struct cf_event *ev;   /* node.restore */
};

/* cf_move_check_fn: the restore is a move from where the node was deleted (acl.h). */
static enum cf_status restore_check(void *ctx, const struct cf_node *node, const struct cf_id *dest)
{
    struct node_restore *j = ctx;
    return cf_acl_move_allowed_in(&j->who, node, dest, CF_ACL_IN_TRASH, &j->why);
}

static void node_restore_run(struct cf_async *a)
{
    struct node_restore *j = (struct node_restore *)a;
    struct cf_node n;
    a->st = cf_node_restore(a->app->store, &j->tenant, &j->id, j->have_dest ? &j->dest : NULL, j->rename,
                            restore_check, j, &j->gone, &j->out);
    if (a->st != CF_OK)
        return;
    if (cf_acl_level(&j->who, &j->out.id, &n, &j->level) == CF_OK)
        cf_node_clear(&n);
    cf_event_node(j->ev, &j->out);
    cf_event_detail(j->ev, "type", json_string(j->out.type == CF_NODE_FOLDER ? "folder" : "file"));
    cf_event_detail(j->ev, "trashed_at", cf_json_time(j->trashed_at));
    cf_event_detail(j->ev, "from_parent", cf_json_id(&j->from));
    cf_event_detail(j->ev, "to_original", json_boolean(cf_id_equal(&j->from, &j->out.parent)));
    cf_event_detail(j->ev, "renamed_from", strcmp(j->from_name, j->out.name) != 0 ? json_string(j->from_name)
                                                                                   : json_null());
    a->st = cf_audit_submit_wait(j->ev, NULL);
    j->ev = NULL;
}

static void node_restore_reply(struct cf_req *r, struct cf_async *a)
{
    struct node_restore *j = (struct node_restore *)a;
    switch (a->st) {
    case CF_OK:
        cf_respond_json(r, 200, cf_node_json(&j->out, j->level));
        break;
    case CF_EEXIST:
        cf_respond_status(r, CF_EEXIST, "a node with this name already exists in the destination folder; restore "
                                        "with \"on_conflict\": \"rename\" or into another folder");
        break;
    case CF_EINVAL:
        cf_respond_error(r, 409, "not_in_trash", "this item is not in the trash");
        break;
    case CF_EDENIED:
        cf_respond_status(r, CF_EDENIED, j->why != NULL ? j->why : "your access level does not allow this");
        break;
    case CF_ENOTFOUND:
        if (j->gone && !j->have_dest)
            cf_respond_error(r, 409, "original_gone",
                             "the folder it was deleted from is gone or in the trash; choose a folder with \"parent\"");
        else
            cf_respond_status(r, CF_ENOTFOUND, NULL);
        break;
    default:
        cf_respond_status(r, a->st, NULL);
        break;
    }
}

static void node_restore_free(struct cf_async *a)
{
    struct node_restore *j = (struct node_restore *)a;
    free(j->groups);
    free(j->from_name);
    cf_node_clear(&j->out);
    cf_event_free(j->ev);
    free(j);
}

/* The optional body {"parent"?: ID, "on_conflict"?: "fail"|"rename"}; an empty body is {}. */
static bool restore_body_or_respond(struct cf_req *r, struct cf_id *parent, bool *have_parent, bool *rename)
{
    static const char *const allowed[] = {"parent", "on_conflict", NULL};
    json_t *body = NULL;
    const char *s, *c;
    size_t sl, clen;
    bool ok = false;
    *have_parent = *rename = false;
    if (r->req->entity.len == 0)
        return true;
    if (!cf_json_body_or_respond(r, &body))
        return false;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "parent", false, &s, &sl) ||
        !cf_json_str_or_respond(r, body, "on_conflict", false, &c, &clen))
        goto out;
    if (c != NULL) {
        if (clen == 6 && memcmp(c, "rename", 6) == 0)
            *rename = true;
        else if (!(clen == 4 && memcmp(c, "fail", 4) == 0)) {
            cf_respond_status(r, CF_EINVAL, "on_conflict must be fail or rename");
            goto out;
        }
    }
    if (s != NULL) {
        if (cf_id_parse(s, sl, parent) != CF_OK) {
            cf_respond_status(r, CF_ENOTFOUND, NULL);
            goto out;
        }
        *have_parent = true;
    }
    ok = true;
out:
    json_decref(body);
    return ok;
}

/* Edit on the destination, checked before the job so that the usual 404/403 answers apply (the job
 * decides again under the lock). The original folder: 409 original_gone when it is gone. */
static bool destination_or_respond(struct cf_req *r, const struct cf_node *n, const struct cf_id *parent,
                                   bool have_parent)
{
    struct cf_node d;
    enum cf_level level;
    if (have_parent) {
        if (!cf_acl_node_or_respond(r, parent, CF_LEVEL_EDIT, &d, &level))
            return false;
        bool folder = d.type == CF_NODE_FOLDER;
        cf_node_clear(&d);
        if (!folder)
            cf_respond_status(r, CF_EINVAL, "the parent is not a folder");
        return folder;
    }
    struct cf_actor a = cf_actor_of(r);
    enum cf_status st = cf_acl_resolve(&a, &n->parent, 0, &d, &level, NULL);
    if (st == CF_ENOTFOUND) {
        cf_respond_error(r, 409, "original_gone",
                         "the folder it was deleted from is gone or in the trash; choose a folder with \"parent\"");
        return false;
    }
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return false;
    }
    cf_node_clear(&d);
    if (level < CF_LEVEL_EDIT) {
        cf_respond_status(r, CF_EDENIED, "restoring needs edit on the folder it was deleted from; choose a folder "
                                         "you may edit with \"parent\"");
        return false;
    }
    return true;
}

void cf_h_node_restore(struct cf_req *r)
{
    struct cf_node n;
    enum cf_level level;
    struct cf_id parent;
    bool have_parent, rename;
    if (!restore_body_or_respond(r, &parent, &have_parent, &rename))
        return;
    if (!cf_acl_param_in_or_respond(r, 0, CF_ACL_IN_TRASH, CF_LEVEL_EDIT, &n, &level))
        return;
    if (n.trashed_at == 0 || cf_id_is_zero(&n.parent)) {
        cf_node_clear(&n);
        cf_respond_error(r, 409, "not_in_trash", "this item is not in the trash (or lies inside a trashed folder: "
                                                 "restore that folder)");
        return;
    }
    if (!destination_or_respond(r, &n, &parent, have_parent)) {
        cf_node_clear(&n);
        return;
    }
    struct node_restore *j = cf_xcalloc(1, sizeof *j);
    j->a.run = node_restore_run;
    j->a.reply = node_restore_reply;
    j->a.free = node_restore_free;
    j->tenant = r->who.user.tenant;
    j->id = n.id;
    j->dest = parent;
    j->have_dest = have_parent;
    j->rename = rename;
    j->who = cf_actor_of(r);
    j->groups = cf_xcalloc(r->who.ngroups + 1, sizeof *j->groups);
    memcpy(j->groups, r->who.groups, r->who.ngroups * sizeof *j->groups);
    j->who.groups = j->groups;
    j->trashed_at = n.trashed_at;
    j->from = n.parent;
    j->from_name = cf_xstrdup(n.name);
    j->level = level;
    j->ev = cf_event_new(&j->tenant, "node.restore", "ok");
    cf_event_from_req(j->ev, r);
    cf_node_clear(&n);
    cf_async_start(r, &j->a);
}

/* ---- empty ------------------------------------------------------------------------------------ */

struct trash_empty {
    struct cf_async a;
    struct cf_id tenant;
    struct cf_id *ids;      /* the items to purge (the caller has manage on each) */
    size_t n;
    uint64_t purged, kept;
    struct cf_event *proto; /* actor, address and agent for the events */
};

static struct cf_event *event_like(const struct cf_event *p, const char *action)
{
    struct cf_event *e = cf_event_new(&p->tenant, action, "ok");
    e->actor_type = p->actor_type;
    e->actor = p->actor;
    e->actor_name = p->actor_name != NULL ? cf_xstrdup(p->actor_name) : NULL;
    memcpy(e->ip, p->ip, sizeof e->ip);
    e->user_agent = p->user_agent != NULL ? cf_xstrdup(p->user_agent) : NULL;
    return e;
}

static void trash_empty_run(struct cf_async *a)
{
    struct trash_empty *t = (struct trash_empty *)a;
    a->st = CF_OK;
    /* Oldest first: an item trashed inside a folder that was trashed later is purged (and recorded)
     * on its own before the folder; one that is gone already (a race) is skipped. */
    for (size_t k = t->n; k > 0 && a->st == CF_OK; k--) {
        size_t i = k - 1;
        struct cf_node n;
        if (cf_node_get(a->app->store, &t->tenant, &t->ids[i], &n) != CF_OK)
            continue;
        struct cf_event *e = event_like(t->proto, "file.purge");
        cf_event_node(e, &n);
        cf_event_detail(e, "type", json_string(n.type == CF_NODE_FOLDER ? "folder" : "file"));
        cf_event_detail(e, "reason", json_string("trash_empty"));
        cf_node_clear(&n);
        a->st = cf_node_purge(a->app->store, &t->tenant, &t->ids[i]);
        if (a->st == CF_OK) {
            cf_audit_submit(e);
            t->purged++;
        } else {
            cf_event_free(e);
            if (a->st == CF_ENOTFOUND)
                a->st = CF_OK;
        }
    }
    struct cf_event *e = event_like(t->proto, "trash.empty");
    e->result = a->st == CF_OK ? "ok" : "error";
    cf_event_detail(e, "purged", json_integer((json_int_t)t->purged));
    cf_event_detail(e, "kept", json_integer((json_int_t)t->kept));
    enum cf_status st = cf_audit_submit_wait(e, NULL);
    if (a->st == CF_OK)
        a->st = st;
}

static void trash_empty_reply(struct cf_req *r, struct cf_async *a)
{
    struct trash_empty *t = (struct trash_empty *)a;
    if (a->st != CF_OK)
        cf_respond_status(r, a->st, NULL);
    else
        cf_respond_json(r, 200, json_pack("{s:I, s:I}", "purged", (json_int_t)t->purged, "kept", (json_int_t)t->kept));
}

static void trash_empty_free(struct cf_async *a)
{
    struct trash_empty *t = (struct trash_empty *)a;
    free(t->ids);
    cf_event_free(t->proto);
    free(t);
}

void cf_h_trash_empty(struct cf_req *r)
{
    struct cf_trash_item *items;
    size_t n;
    enum cf_status st = cf_trash_list(r->app->store, &r->who.user.tenant, &items, &n);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    struct trash_empty *t = cf_xcalloc(1, sizeof *t);
    t->ids = cf_xcalloc(n + 1, sizeof *t->ids);
    struct cf_actor a = cf_actor_of(r);
    for (size_t i = 0; i < n && st == CF_OK; i++) {
        struct cf_node node;
        enum cf_level level;
        st = cf_acl_resolve(&a, &items[i].id, CF_ACL_IN_TRASH, &node, &level, NULL);
        if (st == CF_ENOTFOUND) {
            st = CF_OK;
            continue;
        }
        if (st != CF_OK)
            break;
        if (node.trashed_at != 0 && level == CF_LEVEL_MANAGE)
            t->ids[t->n++] = node.id;
        else if (node.trashed_at != 0 && level >= CF_LEVEL_EDIT)
            t->kept++; /* listed for the caller, not the caller's to purge */
        cf_node_clear(&node);
    }
    free(items);
    if (st != CF_OK) {
        free(t->ids);
        free(t);
        cf_respond_status(r, st, NULL);
        return;
    }
    t->a.run = trash_empty_run;
    t->a.reply = trash_empty_reply;
    t->a.free = trash_empty_free;
    t->tenant = r->who.user.tenant;
    t->proto = cf_event_new(&t->tenant, "trash.empty", "ok");
    cf_event_from_req(t->proto, r);
    cf_async_start(r, &t->a);
}
