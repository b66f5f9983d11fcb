/*
 * http.c: answering requests (see http.h), the one status → HTTP mapping, strict JSON input, and
 * the response filter that gives every response, including the ones h2o generates itself (400 on
 * a broken request line, 413 on an oversized HTTP/1.1 body), the headers of SPEC §4 and the JSON
 * error envelope.
 */
#include "http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "loop.h"
#include "work.h"

int cf_status_http(enum cf_status st, const char **code)
{
    static const struct {
        int http;
        const char *code;
    } map[CF_STATUS_COUNT] = {
        [CF_OK] = {200, "ok"},
        [CF_EINVAL] = {400, "bad_request"},
        [CF_EUNAUTH] = {401, "unauthorized"},
        [CF_EMFA] = {401, "mfa_required"},
        [CF_EDENIED] = {403, "forbidden"},
        [CF_EFROZEN] = {403, "account_frozen"},
        [CF_ENOTFOUND] = {404, "not_found"},
        [CF_EEXIST] = {409, "conflict"},
        [CF_EEXPIRED] = {410, "expired"},
        [CF_EREVOKED] = {410, "revoked"},
        [CF_EEXHAUSTED] = {410, "download_limit_reached"},
        [CF_ELENGTH] = {411, "length_required"},
        [CF_ETOOBIG] = {413, "payload_too_large"},
        [CF_EMEDIA] = {415, "unsupported_media_type"},
        [CF_ERANGE] = {416, "range_not_satisfiable"},
        [CF_EINFECTED] = {422, "infected"},
        [CF_EUNSCANNABLE] = {422, "unscannable"},
        [CF_EBLOCKED] = {422, "blocked_type"},
        [CF_ELOCKED] = {423, "locked"},
        [CF_ERATE] = {429, "rate_limited"},
        [CF_EPRECOND] = {412, "precondition_failed"},
        [CF_ECHECKSUM] = {460, "checksum_mismatch"},
        [CF_EUNAVAIL] = {503, "unavailable"},
        [CF_ECORRUPT] = {500, "internal"},
        [CF_EIO] = {500, "internal"},
        [CF_ECRYPTO] = {500, "internal"},
        [CF_EBUSY] = {503, "unavailable"},
        [CF_ESUSPENDED] = {410, "suspended"},
        [CF_EDISABLED] = {410, "links_disabled"},
        [CF_EQUOTA] = {507, "quota_exceeded"},
    };
    if ((unsigned)st >= CF_STATUS_COUNT || map[st].code == NULL) {
        *code = "internal";
        return 500;
    }
    *code = map[st].code;
    return map[st].http;
}

static const char *default_message(int http)
{
    switch (http) {
    case 400:
        return "the request is malformed";
    case 401:
        return "authentication required";
    case 403:
        return "not permitted";
    case 404:
        return "not found";
    case 405:
        return "method not allowed";
    case 409:
        return "conflict";
    case 410:
        return "gone";
    case 411:
        return "length required";
    case 413:
        return "the request body is too large";
    case 415:
        return "unsupported media type";
    case 416:
        return "range not satisfiable";
    case 429:
        return "too many requests";
    case 503:
        return "temporarily unavailable";
    default:
        return http >= 500 ? "internal error" : "error";
    }
}

static const char *reason(int http)
{
    switch (http) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 422:
        return "Unprocessable Entity";
    case 423:
        return "Locked";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    default:
        return http >= 500 ? "Internal Server Error" : "";
    }
}

void cf_respond_text(struct cf_req *r, int http, const char *content_type, const char *body, size_t len)
{
    h2o_req_t *req = r->req;
    if (r->answered) {
        cf_log_error("%s: request %s answered twice (bug)", __func__, r->id);
        return;
    }
    r->answered = true;
    req->res.status = http;
    req->res.reason = reason(http);
    req->res.content_length = len;
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type,
                       strlen(content_type));
    h2o_send_inline(req, body, len);
}

void cf_respond_json(struct cf_req *r, int http, json_t *body)
{
    if (body == NULL) {
        cf_respond_empty(r, http);
        return;
    }
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(body);
    if (s == NULL) {
        cf_log_error("%s: cannot serialise a response", __func__);
        cf_respond_text(r, 500, "application/json", "{\"error\":\"internal\",\"message\":\"internal error\"}", 48);
        return;
    }
    cf_respond_text(r, http, "application/json", s, strlen(s));
    free(s);
}

void cf_respond_error(struct cf_req *r, int http, const char *code, const char *message)
{
    if (http == 401) /* RFC 9110 §11.6.1: a 401 names its scheme */
        cf_add_header_str(r, "www-authenticate", "Bearer realm=\"coffer\"");
    json_t *o = json_pack("{s:s, s:s}", "error", code, "message", message != NULL ? message : default_message(http));
    cf_respond_json(r, http, o);
}

void cf_respond_status(struct cf_req *r, enum cf_status st, const char *message)
{
    const char *code;
    int http = cf_status_http(st, &code);
    /* 500s never carry a handler's message: it could describe internals. */
    cf_respond_error(r, http, code, http >= 500 ? NULL : message);
}

void cf_respond_empty(struct cf_req *r, int http)
{
    h2o_req_t *req = r->req;
    if (r->answered) {
        cf_log_error("%s: request %s answered twice (bug)", __func__, r->id);
        return;
    }
    r->answered = true;
    req->res.status = http;
    req->res.reason = reason(http);
    req->res.content_length = 0;
    h2o_send_inline(req, "", 0);
}

h2o_iovec_t cf_header(struct cf_req *r, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&r->req->headers, name, strlen(name), -1);
    if (i < 0)
        return h2o_iovec_init(NULL, 0);
    return r->req->headers.entries[i].value;
}

void cf_add_header(struct cf_req *r, const char *name, const char *value, size_t len)
{
    h2o_req_t *req = r->req;
    char *v = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(v, value, len);
    v[len] = '\0';
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL, v, len);
}

void cf_add_header_str(struct cf_req *r, const char *name, const char *value)
{
    cf_add_header(r, name, value, strlen(value));
}

bool cf_is_method(struct cf_req *r, const char *m)
{
    return h2o_memis(r->req->method.base, r->req->method.len, m, strlen(m));
}

bool cf_method_is_safe(struct cf_req *r)
{
    return cf_is_method(r, "GET") || cf_is_method(r, "HEAD") || cf_is_method(r, "OPTIONS");
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

bool cf_pct_decode(h2o_mem_pool_t *pool, const char *s, size_t n, unsigned flags, h2o_iovec_t *out)
{
    char *d = h2o_mem_alloc_pool(pool, n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1, lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || ((flags & CF_PCT_NO_NUL) != 0 && hi == 0 && lo == 0))
                return false;
            d[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (s[i] == '+' && (flags & CF_PCT_PLUS_SPACE) != 0) {
            d[o++] = ' ';
        } else {
            d[o++] = s[i];
        }
    }
    d[o] = '\0';
    *out = h2o_iovec_init(d, o);
    return true;
}

/* Percent-decoding as URLSearchParams does ('+' is a space). false on a broken escape. */
static bool query_decode(h2o_mem_pool_t *pool, const char *s, size_t n, h2o_iovec_t *out)
{
    return cf_pct_decode(pool, s, n, CF_PCT_PLUS_SPACE, out);
}

bool cf_query(struct cf_req *r, const char *key, h2o_iovec_t *out, bool *bad)
{
    h2o_req_t *req = r->req;
    size_t kl = strlen(key);
    bool found = false;
    if (req->query_at == SIZE_MAX)
        return false;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq != NULL ? eq : pe;
        h2o_iovec_t k;
        if (!query_decode(&req->pool, p, (size_t)(ke - p), &k)) {
            *bad = true;
            return false;
        }
        if (k.len == kl && memcmp(k.base, key, kl) == 0) {
            if (found) {
                /* A repeated parameter is ambiguous: refuse it rather than pick one. */
                *bad = true;
                return false;
            }
            if (!query_decode(&req->pool, eq != NULL ? eq + 1 : pe, eq != NULL ? (size_t)(pe - eq - 1) : 0, out)) {
                *bad = true;
                return false;
            }
            found = true;
        }
        p = pe + 1;
    }
    return found;
}

enum cf_status cf_json_parse_object(const char *b, size_t n, size_t max, json_t **out, const char **why)
{
    json_error_t jerr;
    *out = NULL;
    if (n > max) {
        *why = "the JSON body is too large";
        return CF_ETOOBIG;
    }
    if (b == NULL || n == 0) {
        *why = "a JSON object is required";
        return CF_EINVAL;
    }
    json_t *j = json_loadb(b, n, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        *why = "invalid JSON";
        return CF_EINVAL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *why = "a JSON object is required";
        return CF_EINVAL;
    }
    *out = j;
    *why = NULL;
    return CF_OK;
}

bool cf_json_body_or_respond(struct cf_req *r, json_t **out)
{
    h2o_req_t *req = r->req;
    const char *why;
    h2o_iovec_t ct = cf_header(r, "content-type");
    if (ct.base != NULL && !(ct.len >= 16 && strncasecmp(ct.base, "application/json", 16) == 0 &&
                             (ct.len == 16 || ct.base[16] == ';' || ct.base[16] == ' '))) {
        cf_respond_status(r, CF_EMEDIA, "expected Content-Type: application/json");
        return false;
    }
    enum cf_status st = cf_json_parse_object(req->entity.base, req->entity.len, r->app->cfg->limits.max_json_bytes,
                                             out, &why);
    if (st != CF_OK) {
        cf_respond_status(r, st, why);
        return false;
    }
    return true;
}

const char *cf_json_unknown_key(json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] != NULL; i++)
            if (strcmp(key, allowed[i]) == 0)
                ok = true;
        if (!ok)
            return key;
    }
    return NULL;
}

bool cf_json_only_keys_or_respond(struct cf_req *r, json_t *obj, const char *const *allowed)
{
    const char *key = cf_json_unknown_key(obj, allowed);
    if (key != NULL) {
        /* Field names are client text: quote them through the JSON encoder, never raw in logs. */
        char *m = cf_xasprintf("unknown field: %.64s", key);
        cf_respond_status(r, CF_EINVAL, m);
        free(m);
        return false;
    }
    return true;
}

enum cf_status cf_json_str(json_t *obj, const char *key, bool required, const char **out, size_t *len)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    *len = 0;
    if (v == NULL || (json_is_null(v) && !required))
        return required ? CF_ENOTFOUND : CF_OK;
    if (!json_is_string(v))
        return CF_EINVAL;
    *out = json_string_value(v);
    *len = json_string_length(v);
    return CF_OK;
}

enum cf_status cf_json_uint(json_t *obj, const char *key, bool required, uint64_t max, uint64_t *out, bool *present)
{
    json_t *v = json_object_get(obj, key);
    *present = false;
    if (v == NULL || (json_is_null(v) && !required))
        return required ? CF_ENOTFOUND : CF_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return CF_EINVAL;
    *out = (uint64_t)json_integer_value(v);
    *present = true;
    return CF_OK;
}

enum cf_status cf_json_bool(json_t *obj, const char *key, bool *out, bool *present)
{
    json_t *v = json_object_get(obj, key);
    *present = false;
    if (v == NULL)
        return CF_OK;
    if (!json_is_boolean(v))
        return CF_EINVAL;
    *out = json_is_true(v);
    *present = true;
    return CF_OK;
}

/* The 400 for a field that cf_json_str/uint/bool refused (st: CF_ENOTFOUND missing, else wrong type). */
static void field_error(struct cf_req *r, enum cf_status st, const char *key, const char *expected)
{
    char *m = st == CF_ENOTFOUND ? cf_xasprintf("missing field: %s", key) : cf_xasprintf("field %s %s", key, expected);
    cf_respond_status(r, CF_EINVAL, m);
    free(m);
}

bool cf_json_str_or_respond(struct cf_req *r, json_t *obj, const char *key, bool required, const char **out,
                            size_t *len)
{
    enum cf_status st = cf_json_str(obj, key, required, out, len);
    if (st != CF_OK)
        field_error(r, st, key, "must be a string");
    return st == CF_OK;
}

bool cf_json_uint_or_respond(struct cf_req *r, json_t *obj, const char *key, bool required, uint64_t max,
                             uint64_t *out, bool *present)
{
    enum cf_status st = cf_json_uint(obj, key, required, max, out, present);
    if (st == CF_EINVAL) {
        char *m = cf_xasprintf("must be a whole number between 0 and %llu", (unsigned long long)max);
        field_error(r, st, key, m);
        free(m);
    } else if (st != CF_OK) {
        field_error(r, st, key, "must be a whole number");
    }
    return st == CF_OK;
}

bool cf_json_bool_or_respond(struct cf_req *r, json_t *obj, const char *key, bool *out, bool *present)
{
    enum cf_status st = cf_json_bool(obj, key, out, present);
    if (st != CF_OK)
        field_error(r, st, key, "must be true or false");
    return st == CF_OK;
}

void cf_req_watch(struct cf_req *r, struct cf_req **slot)
{
    *slot = r;
    r->watcher = slot;
}

void cf_req_unwatch(struct cf_req *r)
{
    r->watcher = NULL;
}

static bool async_run(struct cf_job *job)
{
    struct cf_async *a = (struct cf_async *)(void *)job;
    a->run(a);
    return true;
}

static void async_done(struct cf_job *job)
{
    struct cf_async *a = (struct cf_async *)(void *)job;
    struct cf_req *r = a->r;
    if (r != NULL) {
        cf_req_unwatch(r);
        a->reply(r, a);
    }
    if (a->free != NULL)
        a->free(a);
    else
        free(a);
}

struct cf_loop *cf_loop_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(struct cf_loop, ctx, req->conn->ctx);
}

void cf_async_start(struct cf_req *r, struct cf_async *a)
{
    a->app = r->app;
    a->job.run = async_run;
    a->job.done = async_done;
    a->job.reply_to = &r->loop->work_done;
    cf_req_watch(r, &a->r);
    cf_work_submit(&a->job);
}

json_t *cf_json_id(const struct cf_id *id)
{
    char hex[CF_ID_HEX_LEN + 1];
    if (cf_id_is_zero(id))
        return json_null();
    cf_id_hex(id, hex);
    return json_string(hex);
}

json_t *cf_json_time(uint64_t ms)
{
    char t[32];
    cf_time_rfc3339(ms, t);
    return json_string(t);
}

/* ---- the response filter ---------------------------------------------------------------------- */

#define CSP_HTML                                                                                                   \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; " \
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
#define CSP_OTHER "default-src 'none'; frame-ancestors 'none'; sandbox"

void cf_request_id(char out[CF_REQ_ID_LEN + 1])
{
    uint8_t b[CF_REQ_ID_LEN / 2];
    cf_random(b, sizeof b);
    cf_hex_encode(b, sizeof b, out);
}

struct envelope_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body; /* the JSON envelope that replaces h2o's text body */
};

static void envelope_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                             h2o_send_state_t state)
{
    struct envelope_ostream *e = (void *)self;
    (void)bufs;
    (void)bufcnt;
    if (h2o_send_state_is_in_progress(state)) {
        h2o_ostream_send_next(self, req, NULL, 0, state);
        return;
    }
    if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD")))
        h2o_ostream_send_next(self, req, NULL, 0, state);
    else
        h2o_ostream_send_next(self, req, &e->body, 1, state);
}

static bool has_header(h2o_req_t *req, const char *name)
{
    return h2o_find_header_by_str(&req->res.headers, name, strlen(name), -1) != -1;
}

static void add_if_absent(h2o_req_t *req, const char *name, const char *value)
{
    if (!has_header(req, name))
        h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL, value, strlen(value));
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    bool ours = has_header(req, "x-request-id");
    if (!ours) {
        char *id = h2o_mem_alloc_pool(&req->pool, CF_REQ_ID_LEN + 1);
        cf_request_id(id);
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 1, NULL, id,
                              CF_REQ_ID_LEN);
    }
    add_if_absent(req, "strict-transport-security", "max-age=63072000; includeSubDomains");
    add_if_absent(req, "x-content-type-options", "nosniff");
    add_if_absent(req, "referrer-policy", "no-referrer");
    add_if_absent(req, "cache-control", "no-store");

    if (!ours && req->res.status >= 400) {
        /* A response h2o produced on its own (e.g. 413 before any handler ran): give it our envelope. */
        const char *code;
        int http = req->res.status;
        switch (http) {
        case 413:
            code = "payload_too_large";
            break;
        case 400:
            code = "bad_request";
            break;
        default:
            code = http >= 500 ? "internal" : "error";
            break;
        }
        char *body = h2o_mem_alloc_pool(&req->pool, 512);
        int n = snprintf(body, 160, "{\"error\":\"%s\",\"message\":\"%s\"}", code, default_message(http));
        h2o_iovec_t type = h2o_iovec_init(H2O_STRLIT("application/json"));
        /* A WebDAV PUT over max_request_body_bytes: the text its clients show, naming the limit. */
        uint64_t put_limit = http == 413 ? cf_conn_put_limit(cf_loop_of(req)->app->cfg, req->input.method.base,
                                                             req->input.method.len, req->input.path.base,
                                                             req->input.path.len)
                                         : UINT64_MAX;
        if (put_limit != UINT64_MAX) {
            n = (int)cf_conn_put_limit_text(put_limit, body, 512);
            type = h2o_iovec_init(H2O_STRLIT("text/plain; charset=utf-8"));
        }
        ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
        if (ct != -1)
            req->res.headers.entries[ct].value = type;
        else
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type.base, type.len);
        req->res.content_length = (size_t)n;
        struct envelope_ostream *e = (void *)h2o_add_ostream(req, sizeof *e, slot);
        e->super.do_send = envelope_do_send;
        e->body = h2o_iovec_init(body, (size_t)n);
        slot = &e->super.next;
    }

    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    bool html = ct != -1 && req->res.headers.entries[ct].value.len >= 9 &&
                strncasecmp(req->res.headers.entries[ct].value.base, "text/html", 9) == 0;
    add_if_absent(req, "content-security-policy", html ? CSP_HTML : CSP_OTHER);
    if (html)
        add_if_absent(req, "x-frame-options", "DENY");
    h2o_setup_next_ostream(req, slot);
}

void cf_http_register_filter(h2o_pathconf_t *pathconf)
{
    h2o_filter_t *f = h2o_create_filter(pathconf, sizeof *f);
    f->on_setup_ostream = on_setup_ostream;
}
