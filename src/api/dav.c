/*
 * dav.c: WebDAV class 1 at /dav/ (docs/WEBDAV.md), for the file managers and sync tools that speak
 * nothing else. Reached through route.c's one pipeline ("/dav/{path*}" rows, one per method, HTTP
 * Basic with an app password only), and onto the API's own code after path resolution: ACL levels
 * (acl.c, 404 for the invisible), the simple upload with its upload-safety step (upload.c), the
 * download with its provenance (download.c), folder creation, move and trash (files.c). Nothing of
 * those is copied here: this file maps URLs to nodes, and answers in WebDAV's shapes.
 *
 * Layout: /dav/ lists private/, team/ and shared/; /dav/private/<path> walks the caller's private
 * space by name, /dav/team/<path> the tenant space, /dav/shared/<name>/<path> the roots others
 * granted the caller (GET /api/v1/shared's list, access.c; named by cf_dav_shared_names: one name
 * shared by several roots gets the owner's name, then " (2)"...). Each segment is percent-decoded once and
 * checked with cf_name_check, as every API name is.
 *
 * Thread: the handlers run on the loop thread (path resolution and authorisation: storage reads, as
 * the API's authorisation step does); listings (PROPFIND, a collection's COPY), the lock drop of a
 * MOVE and every write run on workers (cf_async_start), as the API's jobs do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acl.h"
#include "audit.h"
#include "budget.h"
#include "config.h"
#include "dav_lock.h"
#include "dav_props.h"
#include "davxml.h"
#include "files.h"
#include "handlers.h"
#include "http.h"
#include "validate.h"

#define DAV_ALLOW "OPTIONS, PROPFIND, PROPPATCH, GET, HEAD, PUT, DELETE, MKCOL, MOVE, COPY, LOCK, UNLOCK"

/* cf_dav_parse, answering 400 or 404 and returning false when the path is not one. */
static bool parse_or_respond(struct cf_req *r, const char *raw, size_t rlen, struct dav_path *p)
{
    const char *why;
    enum cf_status st = cf_dav_parse(&r->req->pool, raw, rlen, p, &why);
    if (st != CF_OK)
        cf_respond_status(r, st, why);
    return st == CF_OK;
}

/* ---- methods ------------------------------------------------------------------------------------ */

static bool body_empty(struct cf_req *r)
{
    return r->req->entity.base == NULL || r->req->entity.len == 0;
}

static void dav_put(struct cf_req *r, struct dav_res *res)
{
    if (cf_header(r, "content-range").base != NULL) {
        cf_respond_status(r, CF_EINVAL, "Content-Range is not allowed on PUT (RFC 9110 §14.4)");
        return;
    }
    if (res->kind == DAV_NODE && res->node.type == CF_NODE_FILE) {
        cf_upload_start(r, &res->node.parent, res->node.name, strlen(res->node.name), CF_CONFLICT_REPLACE,
                        CF_UPLOAD_DAV, NULL, 0);
    } else if (res->kind == DAV_MISSING) {
        cf_upload_start(r, &res->parent, res->name, res->name_len, CF_CONFLICT_REPLACE, CF_UPLOAD_DAV, NULL, 0);
    } else if (res->kind == DAV_NOPARENT) {
        cf_respond_status(r, CF_EEXIST, "the parent collection does not exist");
    } else {
        cf_respond_error(r, 405, "method_not_allowed", "PUT on a collection");
    }
}

static void dav_mkcol(struct cf_req *r, struct dav_res *res)
{
    if (!body_empty(r)) {
        cf_respond_status(r, CF_EMEDIA, "MKCOL takes no body");
        return;
    }
    if (res->kind == DAV_MISSING) {
        enum cf_level level;
        if (cf_acl_folder_or_respond(r, &res->parent, CF_LEVEL_EDIT, &level))
            cf_folder_create_start(r, &res->parent, res->name, res->name_len, level, true);
    } else if (res->kind == DAV_NOPARENT) {
        cf_respond_status(r, CF_EEXIST, "the parent collection does not exist");
    } else {
        cf_respond_error(r, 405, "method_not_allowed", "the resource exists");
    }
}

static void dav_delete(struct cf_req *r, struct dav_res *res)
{
    if (res->kind != DAV_NODE) {
        if (res->kind == DAV_ROOT || res->kind == DAV_LISTING)
            cf_respond_status(r, CF_EDENIED, "this collection cannot be deleted");
        else
            cf_respond_status(r, CF_ENOTFOUND, NULL);
        return;
    }
    if (cf_id_is_zero(&res->node.parent)) {
        cf_respond_status(r, CF_EDENIED, "a space root cannot be deleted");
        return;
    }
    struct cf_node n;
    enum cf_level level;
    if (!cf_acl_node_or_respond(r, &res->node.id, CF_LEVEL_MANAGE, &n, &level))
        return;
    cf_node_clear(&n);
    cf_node_delete_start(r, &res->node.id, false);
}

/* The Destination header as a /dav/ path of this server. Answers (400, 502) and returns false. */
static bool destination_or_respond(struct cf_req *r, struct dav_path *dp)
{
    h2o_iovec_t d = cf_header(r, "destination");
    if (d.base == NULL) {
        cf_respond_status(r, CF_EINVAL, "Destination is required");
        return false;
    }
    const char *path = d.base;
    size_t plen = d.len;
    if (plen == 0 || d.base[0] != '/') {
        h2o_url_t u;
        if (h2o_url_parse(d.base, d.len, &u) != 0) {
            cf_respond_status(r, CF_EINVAL, "Destination is not a URI");
            return false;
        }
        if (!h2o_lcstris(u.authority.base, u.authority.len, r->req->authority.base, r->req->authority.len)) {
            cf_respond_error(r, 502, "bad_gateway", "Destination is on another server");
            return false;
        }
        path = u.path.base;
        plen = u.path.len;
    }
    if (plen < 5 || memcmp(path, "/dav/", 5) != 0 || memchr(path, '?', plen) != NULL) {
        cf_respond_error(r, 502, "bad_gateway", "Destination is outside /dav/");
        return false;
    }
    return parse_or_respond(r, path + 5, plen - 5, dp);
}

/* Where a MOVE or COPY of src goes (Destination, Overwrite): the folder and name, and whether a node
 * is there now (to be replaced: the caller may manage it). Answers (400, 403, 404, 409, 412, 502) and
 * returns false otherwise. dr is always initialised (dav_res_clear it). */
static bool target_or_respond(struct cf_req *r, const struct dav_res *src, struct dav_res *dr, struct cf_id *parent,
                              const char **name, size_t *nlen, bool *exists)
{
    struct dav_path dp;
    memset(dr, 0, sizeof *dr);
    dr->kind = DAV_ROOT;
    if (!destination_or_respond(r, &dp) || !cf_dav_resolve_or_respond(r, &dp, dr) ||
        !cf_dav_write_ok_or_respond(r, &dp, dr, DAV_CHECK_SELF | DAV_CHECK_MEMBERSHIP)) /* the destination's locks (RFC 4918 §7.4) */
        return false;
    h2o_iovec_t ow = cf_header(r, "overwrite");
    bool overwrite = !(ow.base != NULL && h2o_memis(ow.base, ow.len, H2O_STRLIT("F")));
    *exists = dr->kind == DAV_NODE;
    if (dr->kind == DAV_NOPARENT) {
        cf_respond_status(r, CF_EEXIST, "the destination's parent collection does not exist");
        return false;
    }
    if (dr->kind == DAV_ROOT || dr->kind == DAV_LISTING || (dr->kind == DAV_NODE && cf_id_is_zero(&dr->node.parent))) {
        cf_respond_status(r, CF_EDENIED, "the destination cannot be replaced");
        return false;
    }
    if (dr->kind == DAV_MISSING) {
        *parent = dr->parent;
        *name = dr->name;
        *nlen = dr->name_len;
        return true;
    }
    if (cf_id_equal(&dr->node.id, &src->node.id)) {
        cf_respond_status(r, CF_EDENIED, "the source and destination are the same");
        return false;
    }
    if (!overwrite) {
        cf_respond_status(r, CF_EPRECOND, "the destination exists and Overwrite is F");
        return false;
    }
    struct cf_node t;
    enum cf_level tl;
    if (!cf_acl_node_or_respond(r, &dr->node.id, CF_LEVEL_MANAGE, &t, &tl))
        return false;
    cf_node_clear(&t);
    *parent = dr->node.parent;
    *name = dr->node.name;
    *nlen = strlen(dr->node.name);
    return true;
}

/* A MOVE once the source's locks are dropped: the API's move (files.c). */
struct move_then {
    struct cf_node n; /* the source, as authorised */
    enum cf_level level;
    bool same_parent, replace;
    struct cf_id parent, replaced;
    char *name;
    size_t nlen;
    int status;
};

static void move_dropped(struct cf_req *r, void *ctx)
{
    struct move_then *m = ctx;
    if (r != NULL)
        cf_node_move_start(r, &m->n, m->level, m->same_parent ? NULL : &m->parent, m->name, m->nlen,
                           m->replace ? &m->replaced : NULL, m->status);
    cf_node_clear(&m->n);
    free(m->name);
    free(m);
}

static void dav_move(struct cf_req *r, struct dav_res *res)
{
    struct dav_res dr;
    struct cf_node n = {0}, target = {0};
    enum cf_level level, tlevel;
    struct cf_id parent;
    const char *name;
    size_t nlen;
    bool exists;
    if (res->kind != DAV_NODE) {
        cf_respond_status(r, res->kind == DAV_ROOT || res->kind == DAV_LISTING ? CF_EDENIED : CF_ENOTFOUND, NULL);
        return;
    }
    if (!target_or_respond(r, res, &dr, &parent, &name, &nlen, &exists))
        goto out;
    if (cf_id_is_zero(&res->node.parent)) {
        cf_respond_status(r, CF_EDENIED, "a space root cannot be renamed or moved");
        goto out;
    }
    if (!cf_acl_node_or_respond(r, &res->node.id, CF_LEVEL_EDIT, &n, &level))
        goto out;
    if (!cf_id_equal(&parent, &n.parent)) {
        if (!cf_acl_node_or_respond(r, &parent, CF_LEVEL_EDIT, &target, &tlevel))
            goto out;
        if (tlevel < level)
            level = tlevel;
    }
    /* RFC 4918 §9.9.4: a lock does not move with its resource (the If header submitted it): dropped
     * on a worker, then the move. */
    struct move_then *m = cf_xcalloc(1, sizeof *m);
    m->n = n;
    memset(&n, 0, sizeof n); /* taken over */
    m->level = level;
    m->same_parent = cf_id_equal(&parent, &m->n.parent);
    m->parent = parent;
    m->replace = exists;
    if (exists)
        m->replaced = dr.node.id;
    m->name = cf_xstrndup(name, nlen);
    m->nlen = nlen;
    m->status = exists ? 204 : 201;
    cf_dav_locks_drop_start(r, &m->n.id, move_dropped, m);
out:
    cf_node_clear(&n);
    cf_node_clear(&target);
    cf_dav_res_clear(&dr);
}

/* COPY of a file: its bytes read on a worker (bounded like a PUT's body), then uploaded again as a
 * new file through the API's upload path (upload-safety step, quota, file.upload event). */
struct dav_copy {
    struct cf_async a;
    struct cf_id tenant, src, parent;
    struct cf_id replace;     /* a collection the file replaces (Overwrite: T): trashed first, or zero */
    struct cf_event *ev;      /* its file.delete */
    char *name;
    size_t name_len;
    int status;    /* 201: a new resource, 204: one was replaced */
    uint64_t max;  /* the largest body a PUT may send */
    uint8_t *buf;  /* the plaintext, wiped when freed */
    size_t len;
    size_t budget; /* bytes of limits.max_buffered_body_bytes held for buf (handed to the upload with it) */
    bool busy;     /* the body budget was full: 503 + Retry-After */
    struct tree_copy *tree; /* a member of a collection's COPY: the copy goes on with the next (owned) */
};

static void tree_free(struct tree_copy *t);
static void tree_step(struct cf_req *r, struct tree_copy *t);
static void tree_uploaded(struct cf_req *r, void *ctx, const struct cf_node *node);

static void dav_copy_run(struct cf_async *a)
{
    struct dav_copy *c = (struct dav_copy *)a;
    struct cf_reader *rd;
    if ((a->st = cf_reader_open(a->app->store, &c->tenant, &c->src, 0, &rd)) != CF_OK)
        return;
    uint64_t size = cf_reader_size(rd);
    bool admitted = size <= c->max && cf_body_budget_take(a->app->cfg->limits.max_buffered_body_bytes, (size_t)size);
    if (admitted)
        c->budget = (size_t)size; /* counted like a PUT's body (budget.h), released with the buffer */
    if (size > c->max) {
        a->st = CF_ETOOBIG;
    } else if (!admitted) {
        c->busy = true;
        a->st = CF_EIO;
    } else if ((c->buf = cf_try_malloc(size > 0 ? (size_t)size : 1)) == NULL) {
        a->st = CF_EIO;
    } else {
        c->len = (size_t)size;
        size_t off = 0;
        for (uint32_t i = 0; i < cf_reader_chunk_count(rd) && a->st == CF_OK; i++) {
            size_t got;
            a->st = cf_reader_chunk(rd, i, c->buf + off, &got);
            off += got;
        }
        if (a->st == CF_OK && off != c->len)
            a->st = CF_ECORRUPT;
    }
    cf_reader_free(rd);
    if (a->st == CF_OK && !cf_id_is_zero(&c->replace)) {
        struct cf_node n;
        if (cf_node_get(a->app->store, &c->tenant, &c->replace, &n) == CF_OK) {
            cf_event_node(c->ev, &n);
            cf_event_detail(c->ev, "type", json_string(n.type == CF_NODE_FOLDER ? "folder" : "file"));
            cf_node_clear(&n);
        }
        if ((a->st = cf_node_trash(a->app->store, &c->tenant, &c->replace)) == CF_OK) {
            a->st = cf_audit_submit_wait(c->ev, NULL);
            c->ev = NULL;
        }
    }
}

/* A file's COPY uploaded: its dead properties follow (RFC 4918 §9.8.2), then the answer. */
struct copy_then {
    struct cf_id src;
    int status;
};

static void copy_uploaded(struct cf_req *r, void *ctx, const struct cf_node *node)
{
    struct copy_then *t = ctx;
    if (r != NULL && node != NULL)
        cf_dav_props_copy_start(r, &t->src, &node->id, t->status, NULL, NULL);
    free(t);
}

static void dav_copy_reply(struct cf_req *r, struct cf_async *a)
{
    struct dav_copy *c = (struct dav_copy *)a;
    if (c->busy) { /* as a PUT past the body budget (upload.c) */
        char v[16];
        snprintf(v, sizeof v, "%d", CF_BODY_RETRY_AFTER_S);
        cf_add_header_str(r, "retry-after", v);
        cf_respond_error(r, 503, "server_busy",
                         "the server is holding as many upload bodies as it may; send this request again shortly");
        return;
    }
    if (a->st != CF_OK) {
        cf_respond_status(r, a->st, a->st == CF_ETOOBIG ? "the file is larger than a PUT may send" : NULL);
        return;
    }
    uint8_t *buf = c->buf;
    c->buf = NULL; /* taken over, with its budget */
    c->budget = 0;
    if (c->tree != NULL) {
        struct tree_copy *t = c->tree;
        c->tree = NULL;
        cf_upload_start_then(r, &c->parent, c->name, c->name_len, CF_CONFLICT_FAIL, buf, c->len, tree_uploaded, t);
        return;
    }
    struct copy_then *t = cf_xcalloc(1, sizeof *t);
    t->src = c->src;
    t->status = c->status;
    cf_upload_start_then(r, &c->parent, c->name, c->name_len, CF_CONFLICT_REPLACE, buf, c->len, copy_uploaded, t);
}

static void dav_copy_free(struct cf_async *a)
{
    struct dav_copy *c = (struct dav_copy *)a;
    cf_free_secret(c->buf, c->len);
    cf_body_budget_release(c->budget);
    cf_event_free(c->ev);
    if (c->tree != NULL)
        tree_free(c->tree);
    free(c->name);
    free(c);
}

/* ---- COPY of a collection with its members (Depth: infinity) ---------------------------------------
 * The members are listed first (on a worker, as PROPFIND's; at most DAV_TREE_MAX, each visible and
 * every file downloadable by the caller, else nothing is copied), then copied one after another:
 * a folder through the API's folder creation (folder.create), a file read on a worker and uploaded
 * again through the upload path (scan + type, quota, file.upload). A refusal midway answers that
 * member's error and leaves what was copied so far (RFC 4918 §9.8.8 would allow a 207; the slice
 * answers the first error). */
#define DAV_TREE_MAX 10000u

struct tree_item {
    struct cf_id src;
    size_t parent;     /* the item whose copy holds this one; SIZE_MAX: the destination's folder */
    char *name;
    bool folder;
    struct cf_id made; /* the copy (folders) */
};

struct tree_copy {
    struct tree_item *items;
    size_t n, cap, next;
    struct cf_id tenant, user, dest_parent;
    struct cf_id replace; /* the destination replaced (Overwrite: T), trashed first; or zero */
    uint64_t max;
};

static void tree_free(struct tree_copy *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->items[i].name);
    free(t->items);
    free(t);
}

static void tree_add(struct tree_copy *t, const struct cf_id *src, size_t parent, const char *name, size_t nlen,
                     bool folder)
{
    if (t->n == t->cap) {
        t->cap = t->cap == 0 ? 16 : t->cap * 2;
        t->items = cf_xrealloc(t->items, t->cap * sizeof *t->items);
    }
    struct tree_item *it = &t->items[t->n++];
    memset(it, 0, sizeof *it);
    it->src = *src;
    it->parent = parent;
    it->name = cf_xstrndup(name, nlen);
    it->folder = folder;
}

/* Lists the source's members into t. CF_EDENIED (*why set) when one may be seen but not downloaded. */
static enum cf_status tree_list(struct cf_store *store, const struct cf_actor *actor, struct tree_copy *t,
                                const char **why)
{
    for (size_t i = 0; i < t->n; i++) {
        if (!t->items[i].folder)
            continue;
        uint8_t cursor[CF_CURSOR_LEN];
        bool more = true, have_cursor = false;
        while (more) {
            struct cf_node *items;
            size_t cnt;
            struct cf_id src = t->items[i].src;
            enum cf_status st = cf_children_list(store, &t->tenant, &src, have_cursor ? cursor : NULL, 1000,
                                                 &items, &cnt, cursor, &more);
            if (st != CF_OK)
                return st;
            have_cursor = true;
            for (size_t k = 0; k < cnt; k++) {
                struct cf_node cn;
                enum cf_level cl;
                if (st == CF_OK && cf_acl_level(actor, &items[k].id, &cn, &cl) == CF_OK) {
                    bool folder = cn.type == CF_NODE_FOLDER;
                    if (cl > CF_LEVEL_NONE && !folder && cl < CF_LEVEL_DOWNLOAD) {
                        *why = "a member of the collection may not be downloaded by you";
                        st = CF_EDENIED;
                    } else if (cl > CF_LEVEL_NONE && t->n >= DAV_TREE_MAX) {
                        *why = "the collection has too many members to copy";
                        st = CF_ETOOBIG;
                    } else if (cl > CF_LEVEL_NONE) {
                        tree_add(t, &cn.id, i, cn.name, strlen(cn.name), folder);
                    }
                    cf_node_clear(&cn);
                }
                cf_node_clear(&items[k]);
            }
            free(items);
            if (st != CF_OK)
                return st;
        }
    }
    return CF_OK;
}

/* A folder of the copy (and, first, the replaced destination to the trash). */
struct tree_folder {
    struct cf_async a;
    struct tree_copy *tree; /* owned */
    struct cf_event *ev;    /* folder.create */
    struct cf_event *del;   /* file.delete of the replaced destination, or NULL */
};

static void tree_folder_run(struct cf_async *a)
{
    struct tree_folder *f = (struct tree_folder *)a;
    struct tree_copy *t = f->tree;
    struct tree_item *it = &t->items[t->next];
    struct cf_id parent = it->parent == SIZE_MAX ? t->dest_parent : t->items[it->parent].made;
    if (f->del != NULL) {
        struct cf_node n;
        if (cf_node_get(a->app->store, &t->tenant, &t->replace, &n) == CF_OK) {
            cf_event_node(f->del, &n);
            cf_event_detail(f->del, "type", json_string(n.type == CF_NODE_FOLDER ? "folder" : "file"));
            cf_node_clear(&n);
        }
        if ((a->st = cf_node_trash(a->app->store, &t->tenant, &t->replace)) != CF_OK ||
            (a->st = cf_audit_submit_wait(f->del, NULL)) != CF_OK) {
            f->del = NULL;
            return;
        }
        f->del = NULL;
    }
    struct cf_node out;
    a->st = cf_folder_create(a->app->store, &t->tenant, &parent, it->name, strlen(it->name), &t->user, &out);
    if (a->st == CF_OK && (a->st = cf_davprop_copy(a->app->store, &t->tenant, &it->src, &out.id)) != CF_OK)
        cf_node_clear(&out);
    if (a->st == CF_OK) {
        it->made = out.id;
        cf_event_node(f->ev, &out);
        a->st = cf_audit_submit_wait(f->ev, NULL);
        f->ev = NULL;
        cf_node_clear(&out);
    }
}

static void tree_folder_reply(struct cf_req *r, struct cf_async *a)
{
    struct tree_folder *f = (struct tree_folder *)a;
    struct tree_copy *t = f->tree;
    f->tree = NULL;
    if (a->st != CF_OK) {
        cf_respond_status(r, a->st, a->st == CF_EEXIST ? "a node with this name already exists in the folder" : NULL);
        tree_free(t);
        return;
    }
    t->next++;
    tree_step(r, t);
}

static void tree_folder_free(struct cf_async *a)
{
    struct tree_folder *f = (struct tree_folder *)a;
    if (f->tree != NULL)
        tree_free(f->tree);
    cf_event_free(f->ev);
    cf_event_free(f->del);
    free(f);
}

static void tree_next(struct cf_req *r, void *ctx)
{
    struct tree_copy *t = ctx;
    if (r == NULL) { /* answered already, or nobody to answer */
        tree_free(t);
        return;
    }
    t->next++;
    tree_step(r, t);
}

static void tree_uploaded(struct cf_req *r, void *ctx, const struct cf_node *node)
{
    struct tree_copy *t = ctx;
    if (r == NULL || node == NULL) {
        tree_free(t);
        return;
    }
    /* its dead properties follow, then the next member */
    cf_dav_props_copy_start(r, &t->items[t->next].src, &node->id, 0, tree_next, t);
}

/* Copies the next member, or answers when all are. Loop thread; t is owned. */
static void tree_step(struct cf_req *r, struct tree_copy *t)
{
    if (t->next == t->n) {
        cf_respond_empty(r, cf_id_is_zero(&t->replace) ? 201 : 204);
        tree_free(t);
        return;
    }
    struct tree_item *it = &t->items[t->next];
    if (it->folder) {
        struct tree_folder *f = cf_xcalloc(1, sizeof *f);
        f->a.run = tree_folder_run;
        f->a.reply = tree_folder_reply;
        f->a.free = tree_folder_free;
        f->tree = t;
        f->ev = cf_event_new(&t->tenant, "folder.create", "ok");
        cf_event_from_req(f->ev, r);
        if (t->next == 0 && !cf_id_is_zero(&t->replace)) {
            f->del = cf_event_new(&t->tenant, "file.delete", "ok");
            cf_event_from_req(f->del, r);
        }
        cf_async_start(r, &f->a);
        return;
    }
    struct dav_copy *c = cf_xcalloc(1, sizeof *c);
    c->a.run = dav_copy_run;
    c->a.reply = dav_copy_reply;
    c->a.free = dav_copy_free;
    c->tenant = t->tenant;
    c->src = it->src;
    c->parent = t->items[it->parent].made;
    c->name = cf_xstrdup(it->name);
    c->name_len = strlen(it->name);
    c->max = t->max;
    c->tree = t;
    cf_async_start(r, &c->a);
}

/* Whether folder dest is id or lies below it (a copy into itself). */
static bool below(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *dest, const struct cf_id *id)
{
    struct cf_id cur = *dest;
    for (int i = 0; i < 256 && !cf_id_is_zero(&cur); i++) {
        if (cf_id_equal(&cur, id))
            return true;
        struct cf_node n;
        if (cf_node_get(store, tenant, &cur, &n) != CF_OK)
            return false;
        cur = n.parent;
        cf_node_clear(&n);
    }
    return false;
}

/* The listing of a collection's COPY, on a worker (a big tree must not stall the loop). */
struct tree_list_job {
    struct cf_async a;
    struct tree_copy *tree; /* owned until handed to tree_step */
    struct cf_actor who;    /* the caller; groups owned */
    struct cf_id *groups;
    bool members;           /* Depth infinity: list them; Depth 0: the collection alone */
    const char *why;
};

static void tree_list_run(struct cf_async *a)
{
    struct tree_list_job *j = (struct tree_list_job *)a;
    struct tree_copy *t = j->tree;
    j->who.app = a->app;
    j->who.groups = j->groups;
    if (j->members && below(a->app->store, &t->tenant, &t->dest_parent, &t->items[0].src)) {
        a->st = CF_EDENIED;
        j->why = "a collection cannot be copied into itself";
    } else if (j->members) {
        a->st = tree_list(a->app->store, &j->who, t, &j->why);
    }
}

static void tree_list_reply(struct cf_req *r, struct cf_async *a)
{
    struct tree_list_job *j = (struct tree_list_job *)a;
    if (a->st != CF_OK) {
        cf_respond_status(r, a->st, j->why);
        return;
    }
    struct tree_copy *t = j->tree;
    j->tree = NULL;
    tree_step(r, t);
}

static void tree_list_free(struct cf_async *a)
{
    struct tree_list_job *j = (struct tree_list_job *)a;
    if (j->tree != NULL)
        tree_free(j->tree);
    free(j->groups);
    free(j);
}

/* COPY of a collection: Depth infinity with its members, Depth 0 alone (with its dead properties,
 * RFC 4918 §9.8.3), replacing what is at the destination (Overwrite: T) first. */
static void dav_copy_tree(struct cf_req *r, const struct cf_node *src, const struct cf_id *parent, const char *name,
                          size_t nlen, const struct cf_id *replace, bool members)
{
    enum cf_level level;
    if (!cf_acl_folder_or_respond(r, parent, CF_LEVEL_EDIT, &level))
        return;
    struct tree_copy *t = cf_xcalloc(1, sizeof *t);
    t->tenant = r->who.user.tenant;
    t->user = r->who.user.id;
    t->dest_parent = *parent;
    if (replace != NULL)
        t->replace = *replace;
    t->max = r->app->cfg->limits.max_request_body_bytes;
    tree_add(t, &src->id, SIZE_MAX, name, nlen, true);
    struct tree_list_job *j = cf_xcalloc(1, sizeof *j);
    j->a.run = tree_list_run;
    j->a.reply = tree_list_reply;
    j->a.free = tree_list_free;
    j->tree = t;
    j->members = members;
    j->who = cf_actor_of(r);
    j->groups = cf_xcalloc(r->who.ngroups + 1, sizeof *j->groups);
    memcpy(j->groups, r->who.groups, r->who.ngroups * sizeof *j->groups);
    cf_async_start(r, &j->a);
}

static void dav_copy(struct cf_req *r, struct dav_res *res)
{
    struct dav_res dr;
    struct cf_node n = {0};
    enum cf_level level;
    struct cf_id parent;
    const char *name;
    size_t nlen;
    bool exists;
    if (res->kind != DAV_NODE) {
        cf_respond_status(r, res->kind == DAV_ROOT || res->kind == DAV_LISTING ? CF_EDENIED : CF_ENOTFOUND, NULL);
        return;
    }
    if (!target_or_respond(r, res, &dr, &parent, &name, &nlen, &exists))
        goto out;
    h2o_iovec_t depth = cf_header(r, "depth");
    bool depth0 = depth.base != NULL && h2o_memis(depth.base, depth.len, H2O_STRLIT("0"));
    if (res->node.type == CF_NODE_FOLDER) {
        if (cf_acl_node_or_respond(r, &res->node.id, CF_LEVEL_VIEW, &n, &level))
            dav_copy_tree(r, &n, &parent, name, nlen, exists ? &dr.node.id : NULL, !depth0);
        goto out;
    }
    /* The bytes leave the file: the API's download level, as GET …/content. */
    if (!cf_acl_node_or_respond(r, &res->node.id, CF_LEVEL_DOWNLOAD, &n, &level))
        goto out;
    struct dav_copy *c = cf_xcalloc(1, sizeof *c);
    c->a.run = dav_copy_run;
    c->a.reply = dav_copy_reply;
    c->a.free = dav_copy_free;
    c->tenant = r->who.user.tenant;
    c->src = n.id;
    c->parent = parent;
    c->name = cf_xstrndup(name, nlen);
    c->name_len = nlen;
    c->max = r->app->cfg->limits.max_request_body_bytes;
    c->status = exists ? 204 : 201;
    if (exists && dr.node.type == CF_NODE_FOLDER) { /* RFC 4918 §9.8.4: the destination is deleted first */
        c->replace = dr.node.id;
        c->ev = cf_event_new(&c->tenant, "file.delete", "ok");
        cf_event_from_req(c->ev, r);
    }
    cf_async_start(r, &c->a);
out:
    cf_node_clear(&n);
    cf_dav_res_clear(&dr);
}

/* Whether the entity-tag list h (If-Match / If-None-Match, RFC 9110 §13.1.1–2) names etag, or is
 * "*". weak: the weak comparison (W/ ignored on both sides), else the strong one (a weak tag never
 * matches). */
static bool etag_listed(h2o_iovec_t h, const char *etag, bool weak)
{
    const char *p = h.base, *end = h.base + h.len;
    bool etag_weak = etag[0] == 'W';
    const char *bare = etag_weak ? etag + 2 : etag;
    size_t bl = strlen(bare);
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p == end)
            break;
        if (*p == '*')
            return true;
        bool w = end - p >= 2 && p[0] == 'W' && p[1] == '/';
        if (w)
            p += 2;
        if ((weak || (!w && !etag_weak)) && (size_t)(end - p) >= bl && memcmp(p, bare, bl) == 0 &&
            (p + bl == end || p[bl] == ',' || p[bl] == ' ' || p[bl] == '\t'))
            return true;
        while (p < end && *p != ',')
            p++;
    }
    return false;
}

/* If-Match and If-None-Match (RFC 9110 §13.2.2: before the method's own checks). GET and HEAD
 * leave a matching If-None-Match to the download (304); every other method gets 412. */
static bool conditions_or_respond(struct cf_req *r, const struct dav_res *res, bool get)
{
    h2o_iovec_t im = cf_header(r, "if-match"), inm = cf_header(r, "if-none-match");
    char etag[80] = "";
    bool exists = res->kind == DAV_NODE;
    if (exists)
        cf_dav_etag(&res->node, etag);
    if (im.base != NULL && (!exists || !etag_listed(im, etag, false))) {
        cf_respond_status(r, CF_EPRECOND, "If-Match: the resource's entity tag is not listed");
        return false;
    }
    if (inm.base != NULL && !get && exists && etag_listed(inm, etag, true)) {
        cf_respond_status(r, CF_EPRECOND, "If-None-Match: the resource exists with a listed entity tag");
        return false;
    }
    return true;
}

void cf_h_dav(struct cf_req *r)
{
    if (cf_is_method(r, "OPTIONS")) {
        cf_add_header_str(r, "dav", "1, 2");
        cf_add_header_str(r, "ms-author-via", "DAV");
        cf_add_header_str(r, "allow", DAV_ALLOW);
        cf_respond_empty(r, 200);
        return;
    }
    struct dav_path p;
    struct dav_res res;
    if (!parse_or_respond(r, r->params[0].base, r->params[0].len, &p) || !cf_dav_resolve_or_respond(r, &p, &res))
        return;
    bool node = res.kind == DAV_NODE, missing = res.kind == DAV_MISSING;
    if (cf_is_method(r, "PROPFIND")) {
        if (missing || res.kind == DAV_NOPARENT)
            cf_respond_status(r, CF_ENOTFOUND, NULL);
        else
            cf_dav_propfind(r, &p, &res);
    } else if (cf_is_method(r, "GET") || cf_is_method(r, "HEAD")) {
        if (!node)
            cf_respond_status(r, missing || res.kind == DAV_NOPARENT ? CF_ENOTFOUND : CF_EINVAL,
                              missing || res.kind == DAV_NOPARENT ? NULL : "not a file");
        else if (res.node.type != CF_NODE_FILE)
            cf_respond_error(r, 405, "method_not_allowed", "GET on a collection: use PROPFIND");
        else if (conditions_or_respond(r, &res, true))
            cf_serve_member(r, &res.node.id, false);
    } else if (cf_is_method(r, "LOCK")) {
        cf_dav_lock(r, &p, &res);
    } else if (cf_is_method(r, "UNLOCK")) {
        cf_dav_unlock(r, &p, &res);
    } else if (!conditions_or_respond(r, &res, false)) {
        /* answered */
    } else if (cf_is_method(r, "PROPPATCH")) {
        if (cf_dav_write_ok_or_respond(r, &p, &res, DAV_CHECK_IF | DAV_CHECK_SELF))
            cf_dav_proppatch(r, &p, &res);
    } else if (cf_is_method(r, "PUT")) {
        if (cf_dav_write_ok_or_respond(r, &p, &res, DAV_CHECK_IF | (missing ? DAV_CHECK_MEMBERSHIP : DAV_CHECK_SELF)))
            dav_put(r, &res);
    } else if (cf_is_method(r, "MKCOL")) {
        if (cf_dav_write_ok_or_respond(r, &p, &res, DAV_CHECK_IF | DAV_CHECK_MEMBERSHIP))
            dav_mkcol(r, &res);
    } else if (cf_is_method(r, "DELETE")) {
        if (cf_dav_write_ok_or_respond(r, &p, &res, DAV_CHECK_IF | DAV_CHECK_SELF | DAV_CHECK_MEMBERSHIP))
            dav_delete(r, &res);
    } else if (cf_is_method(r, "MOVE")) {
        if (cf_dav_write_ok_or_respond(r, &p, &res, DAV_CHECK_IF | DAV_CHECK_SELF | DAV_CHECK_MEMBERSHIP))
            dav_move(r, &res);
    } else {
        if (cf_dav_write_ok_or_respond(r, &p, &res, DAV_CHECK_IF)) /* COPY: the source is only read */
            dav_copy(r, &res);
    }
    cf_dav_res_clear(&res);
}
