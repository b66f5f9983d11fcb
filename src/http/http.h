/*
 * http.h: the request context every handler receives, and the only ways to answer.
 *
 * A struct cf_req is allocated from the h2o request pool when the pipeline (route.c) starts and
 * lives exactly as long as the h2o request. Everything here runs on the request's loop thread.
 *
 * Answering: a handler answers exactly once, with cf_respond_* (or by starting a stream, see
 * download.c). Functions that may already have answered end in _or_respond and return false when
 * they did. Errors go through cf_respond_status, the one place that turns a status into an HTTP
 * code and the JSON envelope {"error": CODE, "message": TEXT}; internal failures answer 500
 * "internal" and never carry details (those go to the log, once, where they are detected).
 */
#ifndef CF_HTTP_H
#define CF_HTTP_H

#include <h2o.h>
#include <jansson.h>

#include "base.h"
#include "context.h"
#include "storage.h"
#include "work.h"

#define CF_REQ_ID_LEN 16       /* hex digits of X-Request-Id */
#define CF_ROUTE_MAX_PARAMS 4  /* {captures} in one route pattern */
#define CF_IP_MAX 64           /* numeric address text */

struct cf_loop;
struct cf_route;

enum cf_auth_kind { CF_AUTH_NONE = 0, CF_AUTH_BEARER = 1, CF_AUTH_COOKIE = 2 };

#define CF_MAX_GROUPS 256 /* groups of one user that take part in access checks */

/* The authenticated caller, filled by the pipeline for routes that need it. */
struct cf_principal {
    bool authenticated;
    enum cf_auth_kind kind;
    struct cf_user user;                 /* the full user record (tenant in user.tenant) */
    uint8_t session_hash[CF_SHA256_LEN]; /* the session or token used */
    struct cf_id session_id;             /* its public id */
    unsigned session_flags;              /* CF_SESSION_* */
    struct cf_id *groups;                /* the user's groups (malloc'ed, freed with the request) */
    size_t ngroups;
};

struct cf_req {
    h2o_req_t *req;
    struct cf_loop *loop;
    const struct cf_app *app;       /* the server's context (context.h), from the loop at dispatch */
    char id[CF_REQ_ID_LEN + 1];     /* X-Request-Id, random */
    char ip[CF_IP_MAX];             /* client address, numeric */
    const struct cf_route *route;
    h2o_iovec_t params[CF_ROUTE_MAX_PARAMS]; /* path captures, raw bytes */
    size_t nparams;
    struct cf_principal who;
    struct cf_req **watcher;        /* a job's back-pointer, nulled when the request dies */
    void *share;                    /* CF_ROUTE_RECIPIENT: the link the dispatcher authenticated, in the
                                     * pool, until the handler takes it (share.c) */
    bool answered;
};

/* cf_status_http(st, code): the HTTP status for st, and its stable error code (SPEC §5). */
int cf_status_http(enum cf_status st, const char **code);

/* ---- answering -------------------------------------------------------------------------------- */

/* cf_respond_json(r, http, body): sends body (reference stolen; may be NULL for no body). */
void cf_respond_json(struct cf_req *r, int http, json_t *body);
/* cf_respond_status(r, st, message): the error envelope for st. message is user-facing, may be NULL
 * (a generic text is used), and must never contain secrets or internals. */
void cf_respond_status(struct cf_req *r, enum cf_status st, const char *message);
/* cf_respond_error(r, http, code, message): an error envelope with a code outside the status enum
 * (e.g. "wrong_code", "method_not_allowed"). */
void cf_respond_error(struct cf_req *r, int http, const char *code, const char *message);
/* cf_respond_empty(r, http): a response with no body (204, 304). */
void cf_respond_empty(struct cf_req *r, int http);
/* cf_respond_text(r, http, content_type, body, len): a small inline body copied to the pool. */
void cf_respond_text(struct cf_req *r, int http, const char *content_type, const char *body, size_t len);

/* ---- reading the request ---------------------------------------------------------------------- */

/* cf_header(r, name): the first value of a request header (lower-case name), or {NULL, 0}. */
h2o_iovec_t cf_header(struct cf_req *r, const char *name);
/* cf_add_header(r, name, value, len): adds a response header (lower-case name), copying value. */
void cf_add_header(struct cf_req *r, const char *name, const char *value, size_t len);
/* cf_add_header_str(r, name, value): the same for a NUL-terminated value (never count by hand). */
void cf_add_header_str(struct cf_req *r, const char *name, const char *value);
/* cf_pct_decode(pool, s, n, flags, out): s[0..n) percent-decoded into the pool (NUL-terminated);
 * false on a broken escape. CF_PCT_PLUS_SPACE: '+' is a space (query strings); CF_PCT_NO_NUL: an
 * escaped NUL is refused too (paths). Any thread. */
enum { CF_PCT_PLUS_SPACE = 1, CF_PCT_NO_NUL = 2 };
bool cf_pct_decode(h2o_mem_pool_t *pool, const char *s, size_t n, unsigned flags, h2o_iovec_t *out);
/* cf_query(r, key, out): the raw value of a query parameter (percent-decoded into the pool).
 * Returns false if absent; CF_EINVAL-worthy garbage is reported through *bad. */
bool cf_query(struct cf_req *r, const char *key, h2o_iovec_t *out, bool *bad);
/* cf_is_method(r, m): the request method equals m. */
bool cf_is_method(struct cf_req *r, const char *m);
/* cf_method_is_safe(r): GET, HEAD or OPTIONS. */
bool cf_method_is_safe(struct cf_req *r);

/* cf_json_body_or_respond(r, out): parses the body as one JSON object (≤ limits.max_json_bytes,
 * Content-Type application/json if given). On failure answers 400/413/415 and returns false. */
bool cf_json_body_or_respond(struct cf_req *r, json_t **out);

/* The pure parts of the above, without answering (tests/fuzz/fuzz_json.c feeds them hostile bytes).
 * cf_json_parse_object(b, n, max, out, why): one JSON object of at most max bytes, duplicate keys
 * refused; CF_OK with *out (a new reference), else CF_ETOOBIG or CF_EINVAL with *out NULL and *why a
 * static message for the client. Any thread. */
enum cf_status cf_json_parse_object(const char *b, size_t n, size_t max, json_t **out, const char **why) CF_WUR;
/* cf_json_unknown_key(obj, allowed): the first key of obj not in the NULL-terminated allowed list
 * (borrowed from obj), or NULL. */
const char *cf_json_unknown_key(json_t *obj, const char *const *allowed);
/* cf_json_str/uint/bool(obj, key, ...): a field's value (strings borrowed from obj). CF_OK when
 * present and well typed, or absent/null and not required (*out NULL, *present false); CF_ENOTFOUND
 * when required and absent; CF_EINVAL on a wrong type or a number outside 0..max. */
enum cf_status cf_json_str(json_t *obj, const char *key, bool required, const char **out, size_t *len) CF_WUR;
enum cf_status cf_json_uint(json_t *obj, const char *key, bool required, uint64_t max, uint64_t *out,
                            bool *present) CF_WUR;
enum cf_status cf_json_bool(json_t *obj, const char *key, bool *out, bool *present) CF_WUR;

/* Strict JSON field access for handlers. Each takes the object, the field name, and answers 400
 * naming the field (returning false) on a wrong type; "absent" is reported through *present. */
bool cf_json_only_keys_or_respond(struct cf_req *r, json_t *obj, const char *const *allowed);
bool cf_json_str_or_respond(struct cf_req *r, json_t *obj, const char *key, bool required, const char **out,
                            size_t *len);
bool cf_json_uint_or_respond(struct cf_req *r, json_t *obj, const char *key, bool required, uint64_t max,
                             uint64_t *out, bool *present);
bool cf_json_bool_or_respond(struct cf_req *r, json_t *obj, const char *key, bool *out, bool *present);

/* ---- jobs ------------------------------------------------------------------------------------- */

/* An asynchronous step of a handler: run() on a worker (storage writes, password hashing),
 * then reply() on the loop thread if the client is still there, then free() always. Embed it as
 * the first member of a handler's own struct. */
struct cf_async {
    struct cf_job job;     /* (work.h) */
    struct cf_req *r;      /* watched: NULL once the request is gone */
    const struct cf_app *app; /* the request's context, copied by cf_async_start (outlives r) */
    enum cf_status st;     /* set by run */
    void (*run)(struct cf_async *a);
    void (*reply)(struct cf_req *r, struct cf_async *a);
    void (*free)(struct cf_async *a); /* NULL: free(a) */
};
/* cf_async_start(r, a): hands a to a worker. Loop thread. */
void cf_async_start(struct cf_req *r, struct cf_async *a);

/* cf_req_watch(r, slot): *slot = r now, and *slot = NULL when the request is disposed (client gone).
 * One watcher per request at a time; cf_req_unwatch(r) drops it. */
void cf_req_watch(struct cf_req *r, struct cf_req **slot);
void cf_req_unwatch(struct cf_req *r);

/* cf_request_id(out): a fresh random request id (CF_REQ_ID_LEN hex digits). */
void cf_request_id(char out[CF_REQ_ID_LEN + 1]);
/* cf_http_register_filter(pathconf): adds the filter that puts the SPEC §4 headers on every
 * response and the JSON envelope on error responses that h2o generated itself. */
void cf_http_register_filter(h2o_pathconf_t *pathconf);

/* Formats ids and times for JSON. */
json_t *cf_json_id(const struct cf_id *id);   /* null for the zero id */
json_t *cf_json_time(uint64_t ms);            /* RFC 3339 string */

#endif
