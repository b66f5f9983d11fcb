/*
 * metrics.h: the server's counters and gauges, and GET /metrics, which shows them in the Prometheus
 * text exposition format (version 0.0.4) to the clients in metrics.allow (config.h; loopback by
 * default) and to nobody else (route.c answers 404 as for an unknown path).
 *
 * Counting is lock-free: relaxed atomic additions into static tables, no allocation, no lock, from
 * any thread. The only shared structure that grows is the table of request series (route, method,
 * status), an open-addressed table whose slots are claimed once with a compare-and-swap. Everything
 * else that /metrics shows (connections, the audit queue, scanners, RocksDB) is read when a scrape
 * asks for it, on a worker thread.
 *
 * Who calls what: the access logger (server.c) every finished request; conn.c connections; scan.c
 * verdicts and scanner restarts; inspect.c refused uploads; retention.c and key rotation their runs.
 */
#ifndef CF_METRICS_H
#define CF_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"

struct sockaddr;

/* cf_metrics_start(): takes the route labels from the route table and notes the start time. Once,
 * before the event loops start (counting before it is fine; requests are labelled after it). */
void cf_metrics_start(void);

/* cf_metrics_http(route, method, mlen, status, bytes_in, bytes_out, duration_us): one finished
 * request: route is its index in the route table (cf_route_index_of) or SIZE_MAX for none, method
 * the request method as sent (anything but the 7 methods of the API counts as "other"), status the
 * HTTP status (0: no response was started), bytes_in and bytes_out the request and response body
 * bytes, duration_us the time from the request's first byte to now. Any thread. */
void cf_metrics_http(size_t route, const char *method, size_t mlen, int status, uint64_t bytes_in,
                     uint64_t bytes_out, uint64_t duration_us);

/* cf_metrics_connection(delta): a connection was accepted (+1) or closed (-1). Any thread. */
void cf_metrics_connection(int delta);
/* cf_metrics_conn_limited(why): a connection was refused or closed by a limit (enum cf_limit,
 * server.h). Any thread. */
void cf_metrics_conn_limited(int why);

/* cf_metrics_scan(status, result): a scan finished: status CF_OK with result an enum cf_scan_result
 * (scan_proto.h), or the job's failure (scanner down, timed out, broken protocol). Any thread. */
void cf_metrics_scan(enum cf_status status, unsigned result);
/* cf_metrics_scanner_restart(): a scanner process was started again after it died or was killed. */
void cf_metrics_scanner_restart(void);
/* cf_metrics_upload_rejected(why): an upload was refused after its inspection (inspect.h):
 * CF_EINFECTED, CF_EUNSCANNABLE, CF_EBLOCKED, CF_EUNAVAIL (no verdict), anything else "error". */
void cf_metrics_upload_rejected(enum cf_status why);

/* cf_metrics_retention_purged(kind, n): the retention job removed n items of kind "trash", "space",
 * "audit" or "upload" (another kind is a bug: logged, not counted). Any thread. */
void cf_metrics_retention_purged(const char *kind, uint64_t n);
/* cf_metrics_retention_run(ok, at_ms): a retention run ended (ok: every part succeeded) at at_ms
 * (ms since the epoch). Any thread. */
void cf_metrics_retention_run(bool ok, uint64_t at_ms);
/* cf_metrics_key_rotation(kind): a key rotation of kind "master" or "tenant" completed (another kind
 * is a bug: logged, not counted). Any thread. */
void cf_metrics_key_rotation(const char *kind);

/* cf_metrics_allowed(sa): whether a client at sa may see /metrics (metrics.allow). Any thread. */
bool cf_metrics_allowed(const struct sockaddr *sa);

/* cf_metrics_render(out, len): the whole exposition as a malloc'ed NUL-terminated text (*out, to
 * free) of *len bytes. Reads the store's statistics: a worker thread, not a loop. */
void cf_metrics_render(char **out, size_t *len);

#endif
