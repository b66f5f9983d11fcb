/*
 * route.c: the route table and the request pipeline (see route.h).
 *
 * Path matching works on the raw path (before '?'), segment by segment; no percent-decoding
 * happens in paths, because no route has a segment that would need it (ids are hex, share tokens
 * base64url). An empty segment ("//", a trailing "/") matches nothing, except in a last "{name*}"
 * capture, which takes the rest of the path as it is (slashes included, maybe empty; /dav/, whose
 * handler decodes and validates each segment); such a pattern also matches the path that stops just
 * before that last slash ("/dav" for "/dav/{path*}", an empty capture).
 */
#include "route.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "conn.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "share.h"

static const struct cf_route routes[] = {
    /* health and web */
    {"GET", "/healthz", CF_ROUTE_PUBLIC, cf_h_healthz, NULL},
    {"GET", "/metrics", CF_ROUTE_PUBLIC | CF_ROUTE_ALLOWLIST, cf_h_metrics, NULL},
#ifdef CF_FAULT_INJECTION
    {"PUT", "/_test/fault", CF_ROUTE_PUBLIC, cf_h_test_fault_arm, "kind n"},
    {"GET", "/_test/fault", CF_ROUTE_PUBLIC, cf_h_test_fault_get, NULL},
#endif
    {"GET", "/", CF_ROUTE_PUBLIC, cf_h_web_index, "*"},
    {"GET", "/admin", CF_ROUTE_PUBLIC, cf_h_web_admin, "*"},
    {"GET", "/account", CF_ROUTE_PUBLIC, cf_h_web_account, "*"},
    {"GET", "/static/{file}", CF_ROUTE_PUBLIC, cf_h_web_static, "*"},
    /* auth and self */
    {"POST", "/api/v1/auth/login", CF_ROUTE_PUBLIC, cf_h_login, NULL},
    {"POST", "/api/v1/auth/logout", CF_ROUTE_USER | CF_ROUTE_ENROL | CF_ROUTE_PWCHANGE, cf_h_logout, NULL},
    {"GET", "/api/v1/me", CF_ROUTE_USER | CF_ROUTE_ENROL | CF_ROUTE_PWCHANGE | CF_ROUTE_BASIC, cf_h_me, NULL},
    {"GET", "/api/v1/me/logins", CF_ROUTE_USER, cf_h_me_logins, NULL},
    {"GET", "/api/v1/me/sessions", CF_ROUTE_USER, cf_h_me_sessions, NULL},
    {"DELETE", "/api/v1/me/sessions/{id}", CF_ROUTE_USER, cf_h_me_session_delete, NULL},
    {"POST", "/api/v1/me/tokens", CF_ROUTE_USER, cf_h_me_token_create, NULL},
    {"PUT", "/api/v1/me/password", CF_ROUTE_USER | CF_ROUTE_PWCHANGE, cf_h_me_password, NULL},
    {"POST", "/api/v1/me/totp", CF_ROUTE_USER | CF_ROUTE_ENROL, cf_h_me_totp_enrol, NULL},
    {"POST", "/api/v1/me/totp/confirm", CF_ROUTE_USER | CF_ROUTE_ENROL, cf_h_me_totp_confirm, NULL},
    {"DELETE", "/api/v1/me/totp", CF_ROUTE_USER, cf_h_me_totp_disable, NULL},
    {"POST", "/api/v1/me/totp/recovery-codes", CF_ROUTE_USER, cf_h_me_recovery_codes, NULL},
    {"GET", "/api/v1/me/alerts", CF_ROUTE_USER, cf_h_me_alerts, NULL},
    {"GET", "/api/v1/me/watermark", CF_ROUTE_USER, cf_h_me_watermark, NULL},
    {"POST", "/api/v1/me/app-passwords", CF_ROUTE_USER, cf_h_me_apppw_create, NULL},
    {"GET", "/api/v1/me/app-passwords", CF_ROUTE_USER, cf_h_me_apppw_list, NULL},
    {"DELETE", "/api/v1/me/app-passwords/{id}", CF_ROUTE_USER, cf_h_me_apppw_revoke, NULL},
    /* admin (own tenant only) */
    {"POST", "/api/v1/admin/users", CF_ROUTE_ADMIN, cf_h_admin_user_create, NULL},
    {"GET", "/api/v1/admin/users", CF_ROUTE_ADMIN, cf_h_admin_users, NULL},
    {"PATCH", "/api/v1/admin/users/{id}", CF_ROUTE_ADMIN, cf_h_admin_user_patch, NULL},
    {"POST", "/api/v1/admin/users/{id}/offboard", CF_ROUTE_ADMIN, cf_h_admin_user_offboard, NULL},
    {"DELETE", "/api/v1/admin/users/{id}", CF_ROUTE_ADMIN, cf_h_admin_user_delete, NULL},
    {"POST", "/api/v1/admin/users/{id}/reset", CF_ROUTE_ADMIN, cf_h_admin_user_reset, NULL},
    {"POST", "/api/v1/admin/groups", CF_ROUTE_ADMIN, cf_h_admin_group_create, NULL},
    {"GET", "/api/v1/admin/groups", CF_ROUTE_ADMIN, cf_h_admin_groups, NULL},
    {"PUT", "/api/v1/admin/groups/{id}/members", CF_ROUTE_ADMIN, cf_h_admin_group_members, NULL},
    {"PATCH", "/api/v1/admin/groups/{id}", CF_ROUTE_ADMIN, cf_h_admin_group_patch, NULL},
    {"DELETE", "/api/v1/admin/groups/{id}", CF_ROUTE_ADMIN, cf_h_admin_group_delete, NULL},
    {"GET", "/api/v1/admin/departments", CF_ROUTE_ADMIN, cf_h_admin_depts, NULL},
    {"POST", "/api/v1/admin/departments", CF_ROUTE_ADMIN, cf_h_admin_dept_create, NULL},
    {"PATCH", "/api/v1/admin/departments/{id}", CF_ROUTE_ADMIN, cf_h_admin_dept_patch, NULL},
    {"DELETE", "/api/v1/admin/departments/{id}", CF_ROUTE_ADMIN, cf_h_admin_dept_delete, NULL},
    {"GET", "/api/v1/admin/departments/{id}/members", CF_ROUTE_ADMIN, cf_h_admin_dept_members, NULL},
    {"PUT", "/api/v1/admin/users/{id}/departments", CF_ROUTE_ADMIN, cf_h_admin_user_depts, NULL},
    {"GET", "/api/v1/admin/shares", CF_ROUTE_ADMIN, cf_h_admin_shares, "owner node state limit cursor"},
    {"POST", "/api/v1/admin/shares/revoke", CF_ROUTE_ADMIN, cf_h_admin_shares_revoke, NULL},
    {"GET", "/api/v1/admin/policy", CF_ROUTE_ADMIN, cf_h_admin_policy_get, NULL},
    {"PATCH", "/api/v1/admin/policy", CF_ROUTE_ADMIN, cf_h_admin_policy_patch, NULL},
    {"GET", "/api/v1/admin/scanner", CF_ROUTE_ADMIN, cf_h_admin_scanner, NULL},
    {"POST", "/api/v1/admin/directory/sync", CF_ROUTE_ADMIN, cf_h_admin_directory_sync, NULL},
    /* directory and sharing between members */
    {"GET", "/api/v1/directory", CF_ROUTE_USER, cf_h_directory, NULL},
    {"GET", "/api/v1/shared", CF_ROUTE_USER, cf_h_shared, NULL},
    /* files and folders */
    {"GET", "/api/v1/spaces", CF_ROUTE_USER | CF_ROUTE_BASIC, cf_h_spaces, NULL},
    {"POST", "/api/v1/folders", CF_ROUTE_USER, cf_h_folder_create, NULL},
    {"GET", "/api/v1/folders/{id}/zip", CF_ROUTE_USER, cf_h_folder_zip, NULL},
    {"POST", "/api/v1/files", CF_ROUTE_USER | CF_ROUTE_BODY, cf_h_file_upload, "parent name on_conflict"},
    /* resumable uploads (tus 1.0.0) */
    {"OPTIONS", "/api/v1/uploads", CF_ROUTE_PUBLIC, cf_h_tus_options, NULL},
    {"POST", "/api/v1/uploads", CF_ROUTE_USER | CF_ROUTE_BODY, cf_h_tus_create, NULL},
    {"OPTIONS", "/api/v1/uploads/{id}", CF_ROUTE_PUBLIC, cf_h_tus_options, NULL},
    {"HEAD", "/api/v1/uploads/{id}", CF_ROUTE_USER, cf_h_tus_head, NULL},
    {"PATCH", "/api/v1/uploads/{id}", CF_ROUTE_USER | CF_ROUTE_BODY, cf_h_tus_patch, NULL},
    {"DELETE", "/api/v1/uploads/{id}", CF_ROUTE_USER, cf_h_tus_delete, NULL},
    {"GET", "/api/v1/nodes/{id}", CF_ROUTE_USER, cf_h_node_get, NULL},
    {"PATCH", "/api/v1/nodes/{id}", CF_ROUTE_USER, cf_h_node_patch, NULL},
    {"DELETE", "/api/v1/nodes/{id}", CF_ROUTE_USER, cf_h_node_delete, "purge"},
    {"GET", "/api/v1/nodes/{id}/children", CF_ROUTE_USER, cf_h_node_children, "limit cursor"},
    {"GET", "/api/v1/search", CF_ROUTE_USER, cf_h_search, "q limit cursor"},
    {"POST", "/api/v1/nodes/{id}/restore", CF_ROUTE_USER, cf_h_node_restore, NULL},
    {"GET", "/api/v1/trash", CF_ROUTE_USER, cf_h_trash_list, "limit cursor"},
    {"DELETE", "/api/v1/trash", CF_ROUTE_USER, cf_h_trash_empty, NULL},
    {"GET", "/api/v1/nodes/{id}/acl", CF_ROUTE_USER, cf_h_acl_get, NULL},
    {"PUT", "/api/v1/nodes/{id}/acl", CF_ROUTE_USER, cf_h_acl_put, NULL},
    {"GET", "/api/v1/files/{id}/content", CF_ROUTE_USER, cf_h_file_content, NULL},
    {"GET", "/api/v1/files/{id}/view", CF_ROUTE_USER, cf_h_file_view, NULL},
    {"GET", "/api/v1/files/{id}/versions", CF_ROUTE_USER, cf_h_file_versions, NULL},
    {"GET", "/api/v1/files/{id}/versions/{v}/content", CF_ROUTE_USER, cf_h_file_version_content, NULL},
    {"POST", "/api/v1/files/{id}/versions/{v}/restore", CF_ROUTE_USER, cf_h_file_version_restore, NULL},
    {"GET", "/api/v1/files/{id}/pages", CF_ROUTE_USER, cf_h_file_pages, NULL},
    {"GET", "/api/v1/files/{id}/pages/{n}", CF_ROUTE_USER, cf_h_file_page, "w"},
    {"GET", "/api/v1/files/{id}/activity", CF_ROUTE_USER, cf_h_file_activity, "format limit cursor since until ip action"},
    /* provenance (admins and auditors) */
    {"GET", "/api/v1/audit", CF_ROUTE_USER | CF_ROUTE_AUDIT, cf_h_audit, "node name actor format limit cursor since until ip action"},
    /* WebDAV (dav.c, docs/WEBDAV.md): one row per method; "{path*}" takes the rest of the path */
    {"OPTIONS", "/dav/{path*}", CF_ROUTE_USER | CF_ROUTE_BASIC | CF_ROUTE_BASIC_ONLY, cf_h_dav, NULL},
    {"PROPFIND", "/dav/{path*}", CF_ROUTE_USER | CF_ROUTE_BASIC | CF_ROUTE_BASIC_ONLY, cf_h_dav, NULL},
    {"GET", "/dav/{path*}", CF_ROUTE_USER | CF_ROUTE_BASIC | CF_ROUTE_BASIC_ONLY, cf_h_dav, NULL},
    {"PUT", "/dav/{path*}", CF_ROUTE_USER | CF_ROUTE_BASIC | CF_ROUTE_BASIC_ONLY | CF_ROUTE_BODY, cf_h_dav, NULL},
    {"DELETE", "/dav/{path*}", CF_ROUTE_USER | CF_ROUTE_BASIC | CF_ROUTE_BASIC_ONLY, cf_h_dav, NULL},
    {"MKCOL", "/dav/{path*}", CF_ROUTE_USER | CF_ROUTE_BASIC | CF_ROUTE_BASIC_ONLY, cf_h_dav, NULL},
    {"MOVE", "/dav/{path*}", CF_ROUTE_USER | CF_ROUTE_BASIC | CF_ROUTE_BASIC_ONLY, cf_h_dav, NULL},
    {"COPY", "/dav/{path*}", CF_ROUTE_USER | CF_ROUTE_BASIC | CF_ROUTE_BASIC_ONLY, cf_h_dav, NULL},
    {"PROPPATCH", "/dav/{path*}", CF_ROUTE_USER | CF_ROUTE_BASIC | CF_ROUTE_BASIC_ONLY, cf_h_dav, NULL},
    {"LOCK", "/dav/{path*}", CF_ROUTE_USER | CF_ROUTE_BASIC | CF_ROUTE_BASIC_ONLY, cf_h_dav, NULL},
    {"UNLOCK", "/dav/{path*}", CF_ROUTE_USER | CF_ROUTE_BASIC | CF_ROUTE_BASIC_ONLY, cf_h_dav, NULL},
    /* share links: members */
    {"POST", "/api/v1/shares", CF_ROUTE_USER, cf_h_share_create, NULL},
    {"GET", "/api/v1/shares", CF_ROUTE_USER, cf_h_share_list, "node"},
    {"DELETE", "/api/v1/shares/{id}", CF_ROUTE_USER, cf_h_share_revoke, NULL},
    /* share links: recipients (no account; the link and its access token authorise) */
    {"GET", "/s/{token}", CF_ROUTE_PUBLIC, cf_h_share_page, "*"},
    {"POST", "/s/{token}/unlock", CF_ROUTE_PUBLIC, cf_h_share_unlock, NULL},
    {"GET", "/s/{token}/info", CF_ROUTE_PUBLIC | CF_ROUTE_RECIPIENT, cf_h_share_info, NULL},
    {"GET", "/s/{token}/content", CF_ROUTE_PUBLIC | CF_ROUTE_RECIPIENT, cf_h_share_content, NULL},
    {"GET", "/s/{token}/view", CF_ROUTE_PUBLIC | CF_ROUTE_RECIPIENT, cf_h_share_view, NULL},
    {"GET", "/s/{token}/children", CF_ROUTE_PUBLIC | CF_ROUTE_RECIPIENT, cf_h_share_children, "parent limit cursor"},
    {"GET", "/s/{token}/files/{id}/content", CF_ROUTE_PUBLIC | CF_ROUTE_RECIPIENT, cf_h_share_file_content, NULL},
    {"GET", "/s/{token}/files/{id}/view", CF_ROUTE_PUBLIC | CF_ROUTE_RECIPIENT, cf_h_share_file_view, NULL},
    {"GET", "/s/{token}/zip", CF_ROUTE_PUBLIC | CF_ROUTE_RECIPIENT, cf_h_share_zip, "parent"},
    {"GET", "/s/{token}/pages", CF_ROUTE_PUBLIC | CF_ROUTE_RECIPIENT, cf_h_share_pages, NULL},
    {"GET", "/s/{token}/pages/{n}", CF_ROUTE_PUBLIC | CF_ROUTE_RECIPIENT, cf_h_share_pages_image, "w"},
    {"GET", "/s/{token}/files/{id}/pages", CF_ROUTE_PUBLIC | CF_ROUTE_RECIPIENT, cf_h_share_file_pages, NULL},
    {"GET", "/s/{token}/files/{id}/pages/{n}", CF_ROUTE_PUBLIC | CF_ROUTE_RECIPIENT, cf_h_share_file_pages_image, "w"},
};

/* Matches path against pattern, filling captures. */
static bool match(const char *pattern, const char *path, size_t plen, h2o_iovec_t *params, size_t *nparams)
{
    const char *p = pattern, *s = path, *end = path + plen;
    size_t n = 0;
    while (*p != '\0') {
        size_t pl = strlen(p);
        if (s == end && pl >= 5 && p[1] == '{' && p[pl - 2] == '*' && strchr(p + 1, '/') == NULL) {
            /* "/dav" against "/dav/{path*}": the collection named without its slash, an empty rest */
            if (n == CF_ROUTE_MAX_PARAMS)
                return false;
            params[n++] = h2o_iovec_init(s, 0);
            *nparams = n;
            return true;
        }
        if (*p != '/' || s >= end || *s != '/')
            return false;
        p++;
        s++;
        const char *pe = strchr(p, '/');
        if (pe == NULL)
            pe = p + strlen(p);
        const char *se = memchr(s, '/', (size_t)(end - s));
        if (se == NULL)
            se = end;
        if (p[0] == '{' && pe[0] == '\0' && pe - p >= 3 && pe[-2] == '*') {
            /* "{rest*}", last in a pattern: the rest of the path, slashes included, maybe empty */
            if (n == CF_ROUTE_MAX_PARAMS)
                return false;
            params[n++] = h2o_iovec_init(s, (size_t)(end - s));
            *nparams = n;
            return true;
        }
        if (p[0] == '{') {
            if (se == s || n == CF_ROUTE_MAX_PARAMS)
                return false;
            params[n++] = h2o_iovec_init(s, (size_t)(se - s));
        } else if ((size_t)(pe - p) != (size_t)(se - s) || memcmp(p, s, (size_t)(se - s)) != 0) {
            return false;
        }
        p = pe;
        s = se;
    }
    *nparams = n;
    return s == end;
}

/* Whether name (n bytes) is a word of the space-separated list. */
static bool listed(const char *list, const char *name, size_t n)
{
    for (const char *w = list; *w != '\0';) {
        size_t wl = strcspn(w, " ");
        if (wl == n && memcmp(w, name, n) == 0)
            return true;
        w += wl;
        w += strspn(w, " ");
    }
    return false;
}

/* Strict query strings: every parameter must be one the route declares (route.h, cf_route.query),
 * so that a misspelt filter (?nod=) is an error instead of a silently ignored one. "*" accepts any
 * (the web pages, whose query strings belong to the browser). Names are compared as sent: the
 * declared names need no percent-encoding, so an encoded name is unknown. False if it answered 400. */
static bool query_known_or_respond(struct cf_req *r, const struct cf_route *rt, h2o_req_t *req)
{
    if (req->query_at == SIZE_MAX || (rt->query != NULL && strcmp(rt->query, "*") == 0))
        return true;
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *e = amp != NULL ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(e - q));
        size_t n = (size_t)((eq != NULL ? eq : e) - q);
        for (size_t i = 0; i < n; i++)
            if (q[i] == '%' && (i + 2 >= n || !isxdigit((unsigned char)q[i + 1]) || !isxdigit((unsigned char)q[i + 2]))) {
                cf_respond_status(r, CF_EINVAL, "malformed query string");
                return false;
            }
        if (n != 0 && (rt->query == NULL || !listed(rt->query, q, n))) {
            /* The name is echoed only when it is plain (it is the caller's own input, but the
             * envelope must stay valid UTF-8 JSON). */
            bool plain = n <= 64;
            for (size_t i = 0; plain && i < n; i++)
                plain = (q[i] >= 'a' && q[i] <= 'z') || (q[i] >= 'A' && q[i] <= 'Z') || (q[i] >= '0' && q[i] <= '9') ||
                        q[i] == '_' || q[i] == '-' || q[i] == '.';
            char *m = cf_xasprintf("unknown query parameter \"%.*s\"%s%s", plain ? (int)n : 3, plain ? q : "...",
                                   rt->query != NULL ? "; this endpoint takes: " : "; this endpoint takes none",
                                   rt->query != NULL ? rt->query : "");
            cf_respond_error(r, 400, "unknown_parameter", m);
            free(m);
            return false;
        }
        q = e + 1;
    }
    return true;
}

bool cf_route_takes_body(const char *method, size_t mlen, const char *target, size_t tlen)
{
    const char *q = memchr(target, '?', tlen);
    size_t plen = q != NULL ? (size_t)(q - target) : tlen;
    h2o_iovec_t params[CF_ROUTE_MAX_PARAMS];
    size_t nparams;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct cf_route *rt = &routes[i];
        if ((rt->flags & CF_ROUTE_BODY) != 0 && strlen(rt->method) == mlen && memcmp(rt->method, method, mlen) == 0 &&
            match(rt->pattern, target, plen, params, &nparams))
            return true;
    }
    return false;
}

static void on_req_dispose(void *p)
{
    struct cf_req *r = *(struct cf_req **)p;
    if (r->watcher != NULL)
        *r->watcher = NULL;
    r->loop->inflight--;
    cf_user_clear(&r->who.user);
    free(r->who.groups);
}

size_t cf_route_count(void)
{
    return sizeof routes / sizeof routes[0];
}

const char *cf_route_pattern(size_t i)
{
    return routes[i].pattern;
}

/* The route chosen for a request, where its loggers can find it: a prefilter (h2o's per-request
 * extension point, allocated from the request pool) that does nothing but carry the index. */
struct route_mark {
    h2o_req_prefilter_t super;
    size_t route; /* index into routes[] */
};

static void route_mark_pass(h2o_req_prefilter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    h2o_setup_next_prefilter(self, req, slot);
}

size_t cf_route_index_of(h2o_req_t *req)
{
    for (h2o_req_prefilter_t *p = req->prefilters; p != NULL; p = p->next)
        if (p->on_setup_ostream == route_mark_pass)
            return ((struct route_mark *)p)->route;
    return SIZE_MAX;
}

static void route_continue(struct cf_req *r);

/* Cluster mode's hop before the pipeline (cf_route_on_req): on a worker, the change feed's catch-up
 * and the reads the authentication step will make (session, user), which leave their records in the
 * metadata cache; back on the loop, route_continue reads them from there. A record invalidated in
 * between is read again on the loop: correct, only slower. The worker never touches the request
 * (which may be gone): it has copies. */
struct prefetch {
    struct cf_async a; /* first */
    bool session;      /* hash holds a session token's hash */
    uint8_t hash[CF_SHA256_LEN];
};

static void prefetch_run(struct cf_async *a)
{
    struct prefetch *p = (struct prefetch *)a;
    struct cf_store *store = a->app->store;
    (void)cf_store_catch_up(store);
    struct cf_session ss;
    if (!p->session || cf_session_get(store, p->hash, &ss) != CF_OK)
        return;
    struct cf_user u;
    if (cf_user_get(store, &ss.tenant, &ss.user, &u) == CF_OK)
        cf_user_clear(&u);
    cf_session_clear(&ss);
}

static void prefetch_reply(struct cf_req *r, struct cf_async *a)
{
    (void)a;
    route_continue(r);
}

static void prefetch_free(struct cf_async *a)
{
    struct prefetch *p = (struct prefetch *)a;
    cf_wipe(p->hash, sizeof p->hash);
    free(p);
}

static void prefetch_start(struct cf_req *r, const struct cf_route *rt)
{
    struct prefetch *p = cf_xcalloc(1, sizeof *p);
    p->a.run = prefetch_run;
    p->a.reply = prefetch_reply;
    p->a.free = prefetch_free;
    p->session = (rt->flags & (CF_ROUTE_USER | CF_ROUTE_ADMIN | CF_ROUTE_AUDIT)) != 0 && cf_auth_session_hash(r, p->hash);
    cf_async_start(r, &p->a);
}

int cf_route_on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    struct cf_req *r = h2o_mem_alloc_pool(&req->pool, sizeof *r);
    memset(r, 0, sizeof *r);
    r->req = req;
    r->loop = cf_loop_of(req);
    r->app = r->loop->app;
    r->loop->inflight++;
    struct cf_req **guard = h2o_mem_alloc_shared(&req->pool, sizeof *guard, on_req_dispose);
    *guard = r;

    cf_request_id(r->id);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 1, NULL, r->id, CF_REQ_ID_LEN);
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (sl == 0 || h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, r->ip) == SIZE_MAX)
        snprintf(r->ip, sizeof r->ip, "unknown");

    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    if (req->path.base == NULL || plen == 0 || req->path.base[0] != '/') {
        cf_respond_status(r, CF_EINVAL, "invalid request target");
        return 0;
    }
    bool is_head = cf_is_method(r, "HEAD");
    const struct cf_route *found = NULL;
    bool path_known = false;
    char allow[128] = "";
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct cf_route *rt = &routes[i];
        if (!match(rt->pattern, req->path.base, plen, r->params, &r->nparams))
            continue;
        if ((rt->flags & CF_ROUTE_ALLOWLIST) != 0 &&
            (sl == 0 || !cf_metrics_allowed(r->app->cfg, (struct sockaddr *)&ss)))
            continue;
        path_known = true;
        if (strlen(allow) + strlen(rt->method) + 8 < sizeof allow) {
            if (allow[0] != '\0')
                strcat(allow, ", ");
            strcat(allow, rt->method);
            if (strcmp(rt->method, "GET") == 0)
                strcat(allow, ", HEAD");
        }
        if (cf_is_method(r, rt->method) || (is_head && strcmp(rt->method, "GET") == 0)) {
            found = rt;
            break;
        }
    }
    if (found == NULL) {
        if (path_known) {
            cf_add_header(r, "allow", allow, strlen(allow));
            cf_respond_error(r, 405, "method_not_allowed", NULL);
        } else {
            cf_respond_status(r, CF_ENOTFOUND, NULL);
        }
        return 0;
    }
    r->route = found;
    struct route_mark *mark = (struct route_mark *)h2o_add_prefilter(req, sizeof *mark);
    mark->super.on_setup_ostream = route_mark_pass;
    mark->route = (size_t)(found - routes);
    /* What other nodes wrote invalidates this node's metadata cache before the request reads anything
     * (docs/CLUSTER.md "Stateless nodes"): on a cluster store that is a round trip to the database,
     * done on a worker with the request's first reads (prefetch_run), never on the loop. On RocksDB
     * there is nothing to follow and no hop. */
    if (r->app->cfg->store.engine == CF_STORE_CLUSTER) {
        prefetch_start(r, found);
        return 0;
    }
    route_continue(r);
    return 0;
}

/* The rest of the pipeline, on the loop thread, once the request's route is known and (on a cluster
 * store) the change feed has been applied: limits, authentication, then the handler. */
static void route_continue(struct cf_req *r)
{
    h2o_req_t *req = r->req;
    const struct cf_route *found = r->route;
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    /* Bodies: h2o has already buffered them (bounded by max_request_body_bytes); routes that take
     * no raw body accept at most a JSON body. */
    if ((found->flags & CF_ROUTE_BODY) == 0 && req->entity.len > r->app->cfg->limits.max_json_bytes) {
        cf_respond_status(r, CF_ETOOBIG, NULL);
        return;
    }
    /* A WebDAV PUT over dav.max_put_bytes that arrived whole before the sweep saw it (conn.c). */
    uint64_t put_limit = cf_conn_put_limit(r->app->cfg, req->method.base, req->method.len, req->path.base, plen);
    if (req->entity.len > put_limit) {
        char *text = h2o_mem_alloc_pool(&req->pool, 512);
        cf_respond_text(r, 413, "text/plain; charset=utf-8", text, cf_conn_put_limit_text(put_limit, text, 512));
        return;
    }
    if ((found->flags & CF_ROUTE_BASIC) != 0 && ((found->flags & CF_ROUTE_BASIC_ONLY) != 0 || cf_auth_is_basic(r))) {
        /* Basic sends the credentials with every request: never over a cleartext connection. */
        if (!cf_conn_is_tls(req)) {
            cf_respond_error(r, 403, "tls_required", "HTTP Basic (WebDAV, app passwords) is only accepted over https://");
            return;
        }
        if (!cf_auth_basic_or_respond(r))
            return;
    } else if ((found->flags & (CF_ROUTE_USER | CF_ROUTE_ADMIN | CF_ROUTE_AUDIT)) != 0 &&
               !cf_auth_authenticate_or_respond(r, ((found->flags & CF_ROUTE_ENROL) != 0 ? CF_SESSION_MFA_ENROL : 0u) |
                                                       ((found->flags & CF_ROUTE_PWCHANGE) != 0 ? CF_SESSION_PW_CHANGE : 0u)))
        return;
    if ((found->flags & CF_ROUTE_ADMIN) != 0 && r->who.user.role != CF_ROLE_ADMIN) {
        cf_respond_status(r, CF_EDENIED, "this needs the admin role");
        return;
    }
    if ((found->flags & CF_ROUTE_AUDIT) != 0 && r->who.user.role != CF_ROLE_ADMIN &&
        r->who.user.role != CF_ROLE_AUDITOR) {
        cf_respond_status(r, CF_EDENIED, "provenance is for admins and auditors");
        return;
    }
    if ((found->flags & CF_ROUTE_RECIPIENT) != 0 && !cf_share_recipient_or_respond(r))
        return;
    if (!query_known_or_respond(r, found, req))
        return;
    found->fn(r);
}
