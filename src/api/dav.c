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
 * granted the caller (GET /api/v1/shared's list, access.c). Each segment is percent-decoded once and
 * checked with cf_name_check, as every API name is.
 *
 * Thread: every function runs on the loop thread (storage reads, as the API's authorisation step
 * does); writes go through the API's asynchronous jobs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acl.h"
#include "audit.h"
#include "config.h"
#include "davxml.h"
#include "files.h"
#include "handlers.h"
#include "http.h"
#include "validate.h"

#define DAV_MAX_SEGS 64 /* path depth below a space */
#define DAV_ALLOW "OPTIONS, PROPFIND, GET, HEAD, PUT, DELETE, MKCOL, MOVE, COPY"

enum dav_space { DAV_NONE = 0, DAV_PRIVATE, DAV_TEAM, DAV_SHARED };

/* A /dav/ URL, decoded: the space and the names below it (in the request pool). */
struct dav_path {
    enum dav_space space;
    const char *seg[DAV_MAX_SEGS];
    size_t len[DAV_MAX_SEGS];
    size_t n;
};

enum dav_kind {
    DAV_ROOT,    /* /dav/ itself */
    DAV_LISTING, /* /dav/shared/: a virtual collection */
    DAV_NODE,    /* an existing, visible node */
    DAV_MISSING, /* the last name does not exist; its parent folder does and is visible */
    DAV_NOPARENT /* an ancestor is missing (or is a file): 409 for MKCOL/PUT */
};

struct dav_res {
    enum dav_kind kind;
    struct cf_node node; /* DAV_NODE (cleared by dav_res_clear) */
    enum cf_level level;
    struct cf_id parent; /* DAV_MISSING: the folder the last name would be in */
    const char *name;    /* DAV_MISSING: the last name */
    size_t name_len;
};

static void dav_res_clear(struct dav_res *res)
{
    if (res->kind == DAV_NODE)
        cf_node_clear(&res->node);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s into the pool; false on a bad escape or a NUL. */
static bool pct_decode(h2o_mem_pool_t *pool, const char *s, size_t n, const char **out, size_t *olen)
{
    char *d = h2o_mem_alloc_pool(pool, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            d[k++] = s[i];
            continue;
        }
        if (i + 2 >= n)
            return false;
        int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return false;
        d[k++] = (char)(hi * 16 + lo);
        i += 2;
    }
    d[k] = '\0';
    *out = d;
    *olen = k;
    return true;
}

/* Parses a path below /dav/ (raw, as captured) into p. Answers 400 and returns false when a
 * segment is malformed or not a valid name; an empty segment is allowed only as a trailing slash. */
static bool parse_or_respond(struct cf_req *r, const char *raw, size_t rlen, struct dav_path *p)
{
    memset(p, 0, sizeof *p);
    const char *s = raw, *end = raw + rlen;
    size_t idx = 0;
    while (s < end) {
        const char *e = memchr(s, '/', (size_t)(end - s));
        if (e == NULL)
            e = end;
        if (e == s) {
            cf_respond_status(r, CF_EINVAL, "empty path segment");
            return false;
        }
        const char *d;
        size_t dl;
        if (!pct_decode(&r->req->pool, s, (size_t)(e - s), &d, &dl)) {
            cf_respond_status(r, CF_EINVAL, "malformed percent-encoding in the path");
            return false;
        }
        if (idx == 0) {
            if (dl == 7 && memcmp(d, "private", 7) == 0)
                p->space = DAV_PRIVATE;
            else if (dl == 4 && memcmp(d, "team", 4) == 0)
                p->space = DAV_TEAM;
            else if (dl == 6 && memcmp(d, "shared", 6) == 0)
                p->space = DAV_SHARED;
            else {
                cf_respond_status(r, CF_ENOTFOUND, NULL);
                return false;
            }
        } else {
            const char *why = cf_name_check(d, dl);
            if (why != NULL) {
                cf_respond_status(r, CF_EINVAL, why);
                return false;
            }
            if (p->n == DAV_MAX_SEGS) {
                cf_respond_status(r, CF_EINVAL, "the path is too deep");
                return false;
            }
            p->seg[p->n] = d;
            p->len[p->n++] = dl;
        }
        idx++;
        s = e < end ? e + 1 : e;
        if (s == end && e < end)
            break; /* a trailing slash */
    }
    return true;
}

/* The visible level of node id (the tenant root answers every member: CF_ACL_TEAM_ROOT); CF_ENOTFOUND
 * when it may not be seen. */
static enum cf_status visible(struct cf_req *r, const struct cf_id *id, struct cf_node *node, enum cf_level *level)
{
    struct cf_actor a = cf_actor_of(r);
    enum cf_status st = cf_acl_resolve(&a, id, CF_ACL_TEAM_ROOT, node, level, NULL);
    if (st != CF_OK)
        return st;
    if (*level == CF_LEVEL_NONE && !(node->root_kind == CF_SPACE_TENANT)) {
        cf_node_clear(node);
        return CF_ENOTFOUND;
    }
    return CF_OK;
}

/* The roots others granted the caller (GET /api/v1/shared), by name. */
static enum cf_status shared_root(struct cf_req *r, const char *name, size_t n, struct cf_id *out)
{
    struct cf_node *items;
    enum cf_level *levels;
    size_t cnt;
    enum cf_status st = cf_shared_roots(r, &items, &levels, &cnt);
    if (st != CF_OK)
        return st;
    st = CF_ENOTFOUND;
    for (size_t i = 0; i < cnt; i++) {
        if (st == CF_ENOTFOUND && strlen(items[i].name) == n && memcmp(items[i].name, name, n) == 0) {
            *out = items[i].id;
            st = CF_OK;
        }
        cf_node_clear(&items[i]);
    }
    free(items);
    free(levels);
    return st;
}

/* Resolves p for the caller. Answers (404, 500) and returns false when it cannot say more. */
static bool resolve_or_respond(struct cf_req *r, const struct dav_path *p, struct dav_res *res)
{
    memset(res, 0, sizeof *res);
    if (p->space == DAV_NONE) {
        res->kind = DAV_ROOT;
        return true;
    }
    struct cf_id cur;
    size_t first = 0;
    enum cf_status st = CF_OK;
    if (p->space == DAV_PRIVATE) {
        cur = r->who.user.private_root;
    } else if (p->space == DAV_TEAM) {
        struct cf_tenant t;
        if ((st = cf_tenant_get(r->app->store, &r->who.user.tenant, &t)) == CF_OK) {
            cur = t.root;
            cf_tenant_clear(&t);
        }
    } else {
        if (p->n == 0) {
            res->kind = DAV_LISTING;
            return true;
        }
        st = shared_root(r, p->seg[0], p->len[0], &cur);
        first = 1;
    }
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return false;
    }
    size_t i = first;
    for (; i < p->n; i++) {
        struct cf_id next;
        st = cf_node_find_child(r->app->store, &r->who.user.tenant, &cur, p->seg[i], p->len[i], &next);
        if (st == CF_ENOTFOUND)
            break;
        if (st != CF_OK) {
            cf_respond_status(r, st, NULL);
            return false;
        }
        cur = next;
    }
    /* cur is the deepest node that exists: it must be visible, whatever comes next. */
    struct cf_node node;
    enum cf_level level;
    st = visible(r, &cur, &node, &level);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return false;
    }
    if (i == p->n) {
        res->kind = DAV_NODE;
        res->node = node;
        res->level = level;
        return true;
    }
    bool folder = node.type == CF_NODE_FOLDER;
    cf_node_clear(&node);
    if (i + 1 == p->n && folder) {
        res->kind = DAV_MISSING;
        res->parent = cur;
        res->name = p->seg[i];
        res->name_len = p->len[i];
    } else {
        res->kind = DAV_NOPARENT;
    }
    return true;
}

/* ---- hrefs and properties ---------------------------------------------------------------------- */

/* Appends s percent-encoded (RFC 3986 unreserved kept) to b. */
static void href_append(struct cf_davxml_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[3];
        size_t k = 1;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            tmp[0] = (char)c;
        } else {
            tmp[0] = '%';
            tmp[1] = hex[c >> 4];
            tmp[2] = hex[c & 15];
            k = 3;
        }
        if (b->len + k + 1 > b->cap) {
            b->cap = b->cap < 64 ? 128 : b->cap * 2;
            b->data = cf_xrealloc(b->data, b->cap);
        }
        memcpy(b->data + b->len, tmp, k);
        b->len += k;
        b->data[b->len] = '\0';
    }
}

static void raw_append(struct cf_davxml_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = b->len + n + 128;
        b->data = cf_xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* The canonical href of p (a collection ends with '/'). */
static void path_href(struct cf_davxml_buf *b, const struct dav_path *p, bool collection)
{
    static const char *const names[] = {"", "private", "team", "shared"};
    raw_append(b, "/dav/");
    if (p->space == DAV_NONE)
        return;
    raw_append(b, names[p->space]);
    for (size_t i = 0; i < p->n; i++) {
        raw_append(b, "/");
        href_append(b, p->seg[i], p->len[i]);
    }
    if (collection)
        raw_append(b, "/");
}

/* What a PROPFIND answers about one resource. */
struct dav_props {
    const char *name; /* displayname */
    bool collection;
    const struct cf_node *node; /* NULL for the virtual collections */
};

enum { P_DISPLAYNAME, P_RESOURCETYPE, P_LENGTH, P_TYPE, P_ETAG, P_MODIFIED, P_CREATED, P_COUNT };
static const char *const live[P_COUNT] = {"displayname", "resourcetype", "getcontentlength", "getcontenttype",
                                          "getetag", "getlastmodified", "creationdate"};

static void fmt_time(uint64_t ms, bool rfc1123, char out[64])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (rfc1123)
        snprintf(out, 64, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday % 7], tm.tm_mday, mo[tm.tm_mon % 12],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    else
        snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
}

/* Writes live property i of d into b; false when d has no such property (a 404 propstat). */
static bool write_live(struct cf_davxml_buf *b, const struct dav_props *d, int i, bool names_only)
{
    const struct cf_node *n = d->node;
    bool file = n != NULL && n->type == CF_NODE_FILE;
    char v[80];
    switch (i) {
    case P_DISPLAYNAME:
        break;
    case P_RESOURCETYPE:
        if (names_only || !d->collection) {
            cf_davxml_ms_prop_text(b, "DAV:", "resourcetype", NULL, 0);
        } else {
            cf_davxml_ms_prop_open(b, "DAV:", "resourcetype");
            cf_davxml_ms_prop_text(b, "DAV:", "collection", NULL, 0);
            cf_davxml_ms_prop_close(b, "DAV:", "resourcetype");
        }
        return true;
    case P_LENGTH:
        if (!file)
            return false;
        snprintf(v, sizeof v, "%llu", (unsigned long long)n->size);
        break;
    case P_TYPE:
        if (!file)
            return false;
        snprintf(v, sizeof v, "%s", n->mime != NULL ? n->mime : "application/octet-stream");
        break;
    case P_ETAG: {
        if (!file)
            return false;
        char sha[2 * CF_SHA256_LEN + 1];
        cf_hex_encode(n->sha256, CF_SHA256_LEN, sha);
        snprintf(v, sizeof v, "\"%.32s\"", sha); /* the same strong tag as GET …/content (download.c) */
        break;
    }
    case P_MODIFIED:
    case P_CREATED:
        if (n == NULL)
            return false;
        fmt_time(i == P_MODIFIED ? n->modified_at : n->created_at, i == P_MODIFIED, v);
        break;
    default:
        return false;
    }
    if (names_only)
        cf_davxml_ms_prop_text(b, "DAV:", live[i], NULL, 0);
    else if (i == P_DISPLAYNAME)
        cf_davxml_ms_prop_text(b, "DAV:", live[i], d->name, strlen(d->name));
    else
        cf_davxml_ms_prop_text(b, "DAV:", live[i], v, strlen(v));
    return true;
}

/* One <D:response> for d at href. */
static void write_response(struct cf_davxml_buf *b, const char *href, size_t hlen, const struct dav_props *d,
                           const struct cf_davxml_propfind *pf)
{
    struct cf_davxml_buf scratch = {0};
    cf_davxml_ms_response_begin(b, href, hlen);
    if (pf->kind != CF_DAVXML_PROP) {
        cf_davxml_ms_propstat_begin(b);
        for (int i = 0; i < P_COUNT; i++)
            (void)write_live(b, d, i, pf->kind == CF_DAVXML_PROPNAME);
        cf_davxml_ms_propstat_end(b, 200);
    } else {
        bool any_ok = false, any_missing = false;
        bool *found = cf_xcalloc(pf->n_names + 1, sizeof *found);
        for (size_t k = 0; k < pf->n_names; k++) {
            const struct cf_davxml_name *nm = &pf->names[k];
            if (strcmp(nm->ns, "DAV:") != 0)
                continue;
            for (int i = 0; i < P_COUNT; i++)
                if (strcmp(nm->local, live[i]) == 0) {
                    scratch.len = 0;
                    found[k] = write_live(&scratch, d, i, false);
                    break;
                }
        }
        for (size_t k = 0; k < pf->n_names; k++)
            any_ok |= found[k], any_missing |= !found[k];
        if (any_ok || pf->n_names == 0) {
            cf_davxml_ms_propstat_begin(b);
            for (size_t k = 0; k < pf->n_names; k++)
                if (found[k])
                    for (int i = 0; i < P_COUNT; i++)
                        if (strcmp(pf->names[k].local, live[i]) == 0)
                            (void)write_live(b, d, i, false);
            cf_davxml_ms_propstat_end(b, 200);
        }
        if (any_missing) {
            cf_davxml_ms_propstat_begin(b);
            for (size_t k = 0; k < pf->n_names; k++)
                if (!found[k])
                    cf_davxml_ms_prop_text(b, pf->names[k].ns, pf->names[k].local, NULL, 0);
            cf_davxml_ms_propstat_end(b, 404);
        }
        free(found);
    }
    cf_davxml_ms_response_end(b);
    cf_davxml_buf_free(&scratch);
}

static void respond_xml(struct cf_req *r, int status, struct cf_davxml_buf *b)
{
    cf_respond_text(r, status, "application/xml; charset=utf-8", b->data != NULL ? b->data : "", b->len);
    cf_davxml_buf_free(b);
}

/* ---- methods ------------------------------------------------------------------------------------ */

static void dav_propfind(struct cf_req *r, const struct dav_path *p, struct dav_res *res)
{
    h2o_iovec_t depth = cf_header(r, "depth");
    bool one;
    if (depth.base != NULL && h2o_memis(depth.base, depth.len, H2O_STRLIT("0")))
        one = false;
    else if (depth.base != NULL && h2o_memis(depth.base, depth.len, H2O_STRLIT("1")))
        one = true;
    else { /* "infinity", or absent (RFC 4918 §9.1: infinity) */
        struct cf_davxml_buf b = {0};
        cf_davxml_error(&b, "propfind-finite-depth", NULL);
        respond_xml(r, 403, &b);
        return;
    }
    struct cf_davxml_propfind pf;
    enum cf_davxml_err xe;
    const char *body = r->req->entity.base != NULL ? r->req->entity.base : "";
    if (cf_davxml_parse_propfind(body, r->req->entity.len, r->app->cfg->limits.max_json_bytes, &pf, &xe) != CF_OK) {
        cf_respond_error(r, cf_davxml_err_http(xe), "bad_request", cf_davxml_err_name(xe));
        return;
    }
    struct cf_davxml_buf b = {0}, href = {0};
    cf_davxml_ms_begin(&b);
    enum cf_status st = CF_OK;
    if (res->kind == DAV_ROOT) {
        struct dav_props d = {.name = "dav", .collection = true};
        path_href(&href, p, true);
        write_response(&b, href.data, href.len, &d, &pf);
        static const char *const spaces[] = {"private", "team", "shared"};
        for (int i = 0; one && i < 3; i++) {
            struct dav_props c = {.name = spaces[i], .collection = true};
            href.len = 0;
            raw_append(&href, "/dav/");
            raw_append(&href, spaces[i]);
            raw_append(&href, "/");
            write_response(&b, href.data, href.len, &c, &pf);
        }
    } else if (res->kind == DAV_LISTING) {
        struct dav_props d = {.name = "shared", .collection = true};
        path_href(&href, p, true);
        write_response(&b, href.data, href.len, &d, &pf);
        struct cf_node *items = NULL;
        enum cf_level *levels = NULL;
        size_t cnt = 0;
        if (one && (st = cf_shared_roots(r, &items, &levels, &cnt)) == CF_OK)
            for (size_t i = 0; i < cnt; i++) {
                struct dav_props c = {.name = items[i].name, .collection = items[i].type == CF_NODE_FOLDER,
                                      .node = &items[i]};
                href.len = 0;
                raw_append(&href, "/dav/shared/");
                href_append(&href, items[i].name, strlen(items[i].name));
                if (c.collection)
                    raw_append(&href, "/");
                write_response(&b, href.data, href.len, &c, &pf);
            }
        for (size_t i = 0; i < cnt; i++)
            cf_node_clear(&items[i]);
        free(items);
        free(levels);
    } else {
        const struct cf_node *n = &res->node;
        bool coll = n->type == CF_NODE_FOLDER;
        const char *name = p->n > 0 ? p->seg[p->n - 1] : (p->space == DAV_PRIVATE ? "private" : "team");
        struct dav_props d = {.name = name, .collection = coll, .node = n};
        path_href(&href, p, coll);
        write_response(&b, href.data, href.len, &d, &pf);
        size_t base_len = href.len;
        struct cf_actor a = cf_actor_of(r);
        uint8_t cursor[CF_CURSOR_LEN];
        bool more = one && coll, have_cursor = false;
        while (more && st == CF_OK) {
            struct cf_node *items;
            size_t cnt;
            st = cf_children_list(r->app->store, &r->who.user.tenant, &n->id, have_cursor ? cursor : NULL, 1000, &items,
                                  &cnt, cursor, &more);
            if (st != CF_OK)
                break;
            have_cursor = true;
            for (size_t i = 0; i < cnt; i++) {
                struct cf_node cn;
                enum cf_level cl;
                if (cf_acl_level(&a, &items[i].id, &cn, &cl) == CF_OK) {
                    if (cl > CF_LEVEL_NONE) {
                        struct dav_props c = {.name = cn.name, .collection = cn.type == CF_NODE_FOLDER, .node = &cn};
                        href.len = base_len;
                        href.data[base_len] = '\0';
                        href_append(&href, cn.name, strlen(cn.name));
                        if (c.collection)
                            raw_append(&href, "/");
                        write_response(&b, href.data, href.len, &c, &pf);
                    }
                    cf_node_clear(&cn);
                }
                cf_node_clear(&items[i]);
            }
            free(items);
        }
    }
    cf_davxml_ms_end(&b);
    cf_davxml_buf_free(&href);
    cf_davxml_propfind_clear(&pf);
    if (st != CF_OK) {
        cf_davxml_buf_free(&b);
        cf_respond_status(r, st, NULL);
        return;
    }
    respond_xml(r, 207, &b);
}

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
    if (!destination_or_respond(r, &dp) || !resolve_or_respond(r, &dp, dr))
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
    cf_node_move_start(r, &n, level, cf_id_equal(&parent, &n.parent) ? NULL : &parent, name, nlen,
                       exists ? &dr.node.id : NULL, exists ? 204 : 201);
out:
    cf_node_clear(&n);
    cf_node_clear(&target);
    dav_res_clear(&dr);
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
    uint64_t max;  /* the largest body a PUT may send */
    uint8_t *buf;  /* the plaintext, wiped when freed */
    size_t len;
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
    if (size > c->max) {
        a->st = CF_ETOOBIG;
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

static void dav_copy_reply(struct cf_req *r, struct cf_async *a)
{
    struct dav_copy *c = (struct dav_copy *)a;
    if (a->st != CF_OK) {
        cf_respond_status(r, a->st, a->st == CF_ETOOBIG ? "the file is larger than a PUT may send" : NULL);
        return;
    }
    uint8_t *buf = c->buf;
    c->buf = NULL; /* taken over */
    if (c->tree != NULL) {
        struct tree_copy *t = c->tree;
        c->tree = NULL;
        cf_upload_start_then(r, &c->parent, c->name, c->name_len, CF_CONFLICT_FAIL, buf, c->len, tree_uploaded, t);
        return;
    }
    cf_upload_start(r, &c->parent, c->name, c->name_len, CF_CONFLICT_REPLACE,
                    CF_UPLOAD_DAV | (cf_id_is_zero(&c->replace) ? 0u : CF_UPLOAD_DAV_EXISTED), buf, c->len);
}

static void dav_copy_free(struct cf_async *a)
{
    struct dav_copy *c = (struct dav_copy *)a;
    cf_free_secret(c->buf, c->len);
    cf_event_free(c->ev);
    if (c->tree != NULL)
        tree_free(c->tree);
    free(c->name);
    free(c);
}

/* ---- COPY of a collection with its members (Depth: infinity) ---------------------------------------
 * The members are listed first (on the loop, as PROPFIND does; at most DAV_TREE_MAX, each visible and
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
static enum cf_status tree_list(struct cf_req *r, struct tree_copy *t, const char **why)
{
    struct cf_actor a = cf_actor_of(r);
    for (size_t i = 0; i < t->n; i++) {
        if (!t->items[i].folder)
            continue;
        uint8_t cursor[CF_CURSOR_LEN];
        bool more = true, have_cursor = false;
        while (more) {
            struct cf_node *items;
            size_t cnt;
            struct cf_id src = t->items[i].src;
            enum cf_status st = cf_children_list(r->app->store, &t->tenant, &src, have_cursor ? cursor : NULL, 1000,
                                                 &items, &cnt, cursor, &more);
            if (st != CF_OK)
                return st;
            have_cursor = true;
            for (size_t k = 0; k < cnt; k++) {
                struct cf_node cn;
                enum cf_level cl;
                if (st == CF_OK && cf_acl_level(&a, &items[k].id, &cn, &cl) == CF_OK) {
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

static void tree_uploaded(struct cf_req *r, void *ctx, const struct cf_node *node)
{
    struct tree_copy *t = ctx;
    if (r == NULL || node == NULL) { /* answered already, or nobody to answer */
        tree_free(t);
        return;
    }
    t->next++;
    tree_step(r, t);
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
static bool below(struct cf_req *r, const struct cf_id *dest, const struct cf_id *id)
{
    struct cf_id cur = *dest;
    for (int i = 0; i < 256 && !cf_id_is_zero(&cur); i++) {
        if (cf_id_equal(&cur, id))
            return true;
        struct cf_node n;
        if (cf_node_get(r->app->store, &r->who.user.tenant, &cur, &n) != CF_OK)
            return false;
        cur = n.parent;
        cf_node_clear(&n);
    }
    return false;
}

static void dav_copy_tree(struct cf_req *r, const struct cf_node *src, const struct cf_id *parent, const char *name,
                          size_t nlen, const struct cf_id *replace)
{
    enum cf_level level;
    if (below(r, parent, &src->id)) {
        cf_respond_status(r, CF_EDENIED, "a collection cannot be copied into itself");
        return;
    }
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
    const char *why = NULL;
    enum cf_status st = tree_list(r, t, &why);
    if (st != CF_OK) {
        cf_respond_status(r, st, why);
        tree_free(t);
        return;
    }
    tree_step(r, t);
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
        if (!depth0) {
            if (cf_acl_node_or_respond(r, &res->node.id, CF_LEVEL_VIEW, &n, &level))
                dav_copy_tree(r, &n, &parent, name, nlen, exists ? &dr.node.id : NULL);
        } else if (exists) {
            cf_respond_error(r, 501, "not_implemented", "COPY of a collection onto an existing one is not built yet");
        } else if (cf_acl_node_or_respond(r, &res->node.id, CF_LEVEL_VIEW, &n, &level) &&
                   cf_acl_folder_or_respond(r, &parent, CF_LEVEL_EDIT, &level)) {
            cf_folder_create_start(r, &parent, name, nlen, level, true); /* Depth 0: the collection alone */
        }
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
    if (exists && dr.node.type == CF_NODE_FOLDER) { /* RFC 4918 §9.8.4: the destination is deleted first */
        c->replace = dr.node.id;
        c->ev = cf_event_new(&c->tenant, "file.delete", "ok");
        cf_event_from_req(c->ev, r);
    }
    cf_async_start(r, &c->a);
out:
    cf_node_clear(&n);
    dav_res_clear(&dr);
}

void cf_h_dav(struct cf_req *r)
{
    if (cf_is_method(r, "OPTIONS")) {
        cf_add_header_str(r, "dav", "1");
        cf_add_header_str(r, "ms-author-via", "DAV");
        cf_add_header_str(r, "allow", DAV_ALLOW);
        cf_respond_empty(r, 200);
        return;
    }
    struct dav_path p;
    struct dav_res res;
    if (!parse_or_respond(r, r->params[0].base, r->params[0].len, &p) || !resolve_or_respond(r, &p, &res))
        return;
    if (cf_is_method(r, "PROPFIND")) {
        if (res.kind == DAV_MISSING || res.kind == DAV_NOPARENT)
            cf_respond_status(r, CF_ENOTFOUND, NULL);
        else
            dav_propfind(r, &p, &res);
    } else if (cf_is_method(r, "GET") || cf_is_method(r, "HEAD")) {
        if (res.kind != DAV_NODE)
            cf_respond_status(r, res.kind == DAV_MISSING || res.kind == DAV_NOPARENT ? CF_ENOTFOUND : CF_EINVAL,
                              res.kind == DAV_MISSING || res.kind == DAV_NOPARENT ? NULL : "not a file");
        else if (res.node.type != CF_NODE_FILE)
            cf_respond_error(r, 405, "method_not_allowed", "GET on a collection: use PROPFIND");
        else
            cf_serve_member(r, &res.node.id, false);
    } else if (cf_is_method(r, "PUT")) {
        dav_put(r, &res);
    } else if (cf_is_method(r, "MKCOL")) {
        dav_mkcol(r, &res);
    } else if (cf_is_method(r, "DELETE")) {
        dav_delete(r, &res);
    } else if (cf_is_method(r, "MOVE")) {
        dav_move(r, &res);
    } else {
        dav_copy(r, &res);
    }
    dav_res_clear(&res);
}
