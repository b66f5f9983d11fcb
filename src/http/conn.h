/*
 * conn.h: the limits Coffer puts on connections, beyond libh2o 2.2.5's own (conn.c explains which
 * and why; docs/SECURITY.md "Transport and HTTP" lists each with its configuration and test).
 * Everything here runs on the loop thread that owns the connection, except the per-address table,
 * which the loops share under a lock.
 */
#ifndef CF_CONN_H
#define CF_CONN_H

#include "server.h"

/* cf_conn_on_accept: the read callback of every listening socket (one per loop): accepts, applies
 * the per-address and global caps (over a cap: closed at once, before TLS), hands the rest to h2o. */
void cf_conn_on_accept(h2o_socket_t *listener, const char *err);

/* cf_conn_sweep(l, now): called by loop l every tick; at most every SWEEP_MS it closes the
 * connections that break a rule (slow requests, unfinished streams, large bodies without
 * credentials, idle HTTP/2, too many cancelled streams) and logs, rate-limited, what it closed. */
void cf_conn_sweep(struct cf_loop *l, uint64_t now);

#endif
