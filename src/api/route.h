/*
 * route.h: the route table (route.c) is the index of the HTTP API: method, path pattern, what
 * authentication the route needs, and its handler. The pipeline in route.c runs, in this order and
 * nowhere else: request context → route match → authentication → CSRF check → handler.
 * Handlers never redo an earlier stage; authorisation on nodes is acl.c's one function.
 */
#ifndef CF_ROUTE_H
#define CF_ROUTE_H

#include <h2o.h>
#include <stdbool.h>

struct cf_req;

enum cf_route_flags {
    CF_ROUTE_PUBLIC = 1u << 0, /* no authentication */
    CF_ROUTE_USER = 1u << 1,   /* a logged-in, active user (session cookie or bearer token) */
    CF_ROUTE_BODY = 1u << 2,   /* accepts a raw request body larger than a JSON body */
    CF_ROUTE_ADMIN = 1u << 3,  /* CF_ROUTE_USER with role admin (else 403) */
    CF_ROUTE_ENROL = 1u << 4,  /* open to sessions that must enrol TOTP before anything else */
    CF_ROUTE_ALLOWLIST = 1u << 5, /* only for clients in metrics.allow (config.h): for any other
                                     address the path does not exist (404, whatever the method) */
    CF_ROUTE_AUDIT = 1u << 6,  /* CF_ROUTE_USER with role admin or auditor (else 403) */
    CF_ROUTE_RECIPIENT = 1u << 7, /* a share-link recipient (path /s/{token}/...): the link is live
                                     and this client unlocked it (share.c, cf_share_recipient_or_respond;
                                     else 404/401/410 as that says); the handler takes the link */
    CF_ROUTE_PWCHANGE = 1u << 8, /* open to sessions that must change their password first (after
                                    an admin reset it) */
    CF_ROUTE_BASIC = 1u << 9,    /* CF_ROUTE_USER that also accepts HTTP Basic with an app password
                                    (auth.h, cf_auth_basic_or_respond): for apps that cannot do
                                    TOTP (WebDAV clients); never a main password */
    CF_ROUTE_BASIC_ONLY = 1u << 10, /* with CF_ROUTE_BASIC: HTTP Basic is the only way in (no cookie
                                       or bearer); a request without it gets 401 with
                                       WWW-Authenticate: Basic, the challenge clients prompt on (/dav/) */
};

typedef void (*cf_handler_fn)(struct cf_req *r);

struct cf_route {
    const char *method;  /* "GET" also answers HEAD unless a HEAD route exists */
    const char *pattern; /* "/api/v1/nodes/{id}": literal segments and {captures}; a last "{rest*}" takes the rest */
    unsigned flags;      /* enum cf_route_flags */
    cf_handler_fn fn;
    const char *query;   /* the query parameters the route accepts, space-separated ("q limit cursor");
                            NULL: none. Any other parameter answers 400 unknown_parameter (issue 21) */
};

/* cf_route_takes_body(method, target): whether the route for this request line is CF_ROUTE_BODY
 * (the connection limits in conn.c look before h2o has the whole request). Any thread. */
bool cf_route_takes_body(const char *method, size_t mlen, const char *target, size_t tlen);

/* cf_route_on_req: the h2o handler for every request. Loop thread. */
int cf_route_on_req(h2o_handler_t *self, h2o_req_t *req);

/* cf_route_count(), cf_route_pattern(i): how many routes the table has, and the pattern of route i
 * (< cf_route_count(); a static string). For metrics labels; any thread. */
size_t cf_route_count(void);
const char *cf_route_pattern(size_t i);
/* cf_route_index_of(req): the index of the route the pipeline chose for req, or SIZE_MAX when none
 * did (h2o answered on its own, no route matched, the method was not allowed). Loop thread, while
 * the request's pool is still alive (its loggers run then). */
size_t cf_route_index_of(h2o_req_t *req);

#endif
