/*
 * conn.h: the limits Coffer puts on connections, beyond libh2o 2.2.5's own (conn.c explains which
 * and why; docs/SECURITY.md "Transport and HTTP" lists each with its configuration and test).
 * Everything here runs on the loop thread that owns the connection, except the per-address table,
 * which the loops share under a lock, and the intake gate's counts (budget.h) and head (an atomic).
 * conn.c also defines h2o_socket_read_start in front of libh2o's (the intake gate's stop must hold).
 */
#ifndef CF_CONN_H
#define CF_CONN_H

#include "loop.h"

/* cf_conn_takes_body(method, mlen, target, tlen): whether the route for this request line takes a
 * large body (the route table's CF_ROUTE_BODY); conn.c lets only those send one. */
typedef bool cf_conn_takes_body_fn(const char *method, size_t mlen, const char *target, size_t tlen);

/* cf_conn_set_takes_body(fn): the route table's answer to the question above (cf_route_takes_body).
 * Once, before the loops start; until then no route takes a large body. */
void cf_conn_set_takes_body(cf_conn_takes_body_fn *fn);

/* cf_conn_put_limit(cfg, method, mlen, target, tlen): the most body a request may send when its route
 * has a limit of its own below limits.max_request_body_bytes: a PUT on /dav/ (dav.max_put_bytes);
 * UINT64_MAX for any other request. Any thread. */
uint64_t cf_conn_put_limit(const struct cf_config *cfg, const char *method, size_t mlen, const char *target,
                           size_t tlen);

/* cf_conn_put_limit_text(max, out, cap): the plain-text body of the 413 answered to a WebDAV PUT over
 * max bytes (names the limit, recommends tus or raising it); its length (< cap). Any thread. */
size_t cf_conn_put_limit_text(uint64_t max, char *out, size_t cap);

/* cf_conn_is_tls(req): whether req came over TLS (the connection's socket, not the :scheme a client
 * may claim). Loop thread. */
bool cf_conn_is_tls(h2o_req_t *req);

/* cf_conn_on_accept: the read callback of every listening socket (one per loop): accepts, applies
 * the per-address and global caps (over a cap: closed at once, before TLS), hands the rest to h2o. */
void cf_conn_on_accept(h2o_socket_t *listener, const char *err);

/* cf_conn_sweep(l, now): called by loop l every tick; at most every SWEEP_MS it closes the
 * connections that break a rule (slow requests, unfinished streams, large bodies without
 * credentials, idle HTTP/2, too many cancelled streams) and logs, rate-limited, what it closed. */
void cf_conn_sweep(struct cf_loop *l, uint64_t now);

/* cf_conn_h2_refuse_malformed: an h2o handler registered before the router. An HTTP/2 request
 * whose :path is empty or neither origin-form nor "*" is malformed (RFC 9113 §8.3.1): its stream is
 * reset with RST_STREAM(PROTOCOL_ERROR) and no response is sent; returns 0 then (the request is
 * gone), -1 for every other request (the next handler runs). */
int cf_conn_h2_refuse_malformed(h2o_handler_t *self, h2o_req_t *req);

#endif
