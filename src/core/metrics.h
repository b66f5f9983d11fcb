/*
 * metrics.h: the server's counters and gauges, and their text in the Prometheus exposition format
 * (version 0.0.4). This module knows nothing of routes, the scanner or the store: route labels are
 * handed to cf_metrics_start, and what a scrape reads elsewhere (scanners, audit queue, RocksDB) is
 * handed to cf_metrics_render. GET /metrics, the page that gathers those readings and shows the text
 * to the clients in metrics.allow (config.h; loopback by default), is src/api/metrics_page.c.
 *
 * Counting is lock-free: relaxed atomic additions into static tables, no allocation, no lock, from
 * any thread. The only shared structure that grows is the table of request series (route, method,
 * status), an open-addressed table whose slots are claimed once with a compare-and-swap. Everything
 * else that /metrics shows (the audit queue, scanners, RocksDB) is read when a scrape asks for it, on
 * a worker thread, by the page.
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
#include "storage.h"

struct cf_config;
struct sockaddr;

/* Why a connection was refused or closed by a limit (src/http/conn.c, "connection limits"). */
enum cf_limit {
    CF_LIMIT_CONNECTIONS,  /* refused: limits.max_connections */
    CF_LIMIT_PER_ADDRESS,  /* refused: limits.max_connections_per_address */
    CF_LIMIT_SLOW_REQUEST, /* HTTP/2 request not received within limits.request_timeout */
    CF_LIMIT_BODY,         /* large body without credentials or off the upload routes */
    CF_LIMIT_IDLE,         /* HTTP/2 connection without streams for limits.idle_timeout */
    CF_LIMIT_CANCELS,      /* limits.max_cancels_per_connection */
    CF_LIMIT_PUT,          /* a WebDAV PUT over dav.max_put_bytes, refused while still arriving */
    CF_LIMIT_COUNT
};

/* cf_metrics_start(nroutes, pattern): takes the route labels (pattern(i) for i < nroutes: the route
 * table's patterns, cf_route_pattern) and notes the start time. Once, before the event loops start
 * (counting before it is fine; requests are labelled after it). */
void cf_metrics_start(size_t nroutes, const char *(*pattern)(size_t i));

/* cf_metrics_http(route, method, mlen, status, bytes_in, bytes_out, duration_us): one finished
 * request: route is its index in the route table (cf_route_index_of) or SIZE_MAX for none, method
 * the request method as sent (anything but the 7 methods of the API counts as "other"), status the
 * HTTP status (0: no response was started), bytes_in and bytes_out the request and response body
 * bytes, duration_us the time from the request's first byte to now. Any thread. */
void cf_metrics_http(size_t route, const char *method, size_t mlen, int status, uint64_t bytes_in,
                     uint64_t bytes_out, uint64_t duration_us);

/* cf_metrics_connection(delta): a connection was accepted (+1) or closed (-1). Any thread. */
void cf_metrics_connection(int delta);
/* cf_metrics_conn_limited(why): a connection was refused or closed by a limit (enum cf_limit).
 * Any thread. */
void cf_metrics_conn_limited(int why);
/* cf_metrics_conn_kill_stuck(): a connection closed by a limit was still open KILL_GRACE_MS later
 * (conn.c logs each one). Any thread. */
void cf_metrics_conn_kill_stuck(void);
/* cf_metrics_audit_commit(events): the provenance writer committed one batch of events. Any thread. */
void cf_metrics_audit_commit(size_t events);

/* cf_metrics_scan(status, result): a scan finished: status CF_OK with result an enum cf_scan_result
 * (scan_proto.h), or the job's failure (scanner down, timed out, broken protocol). Any thread. */
void cf_metrics_scan(enum cf_status status, unsigned result);
/* cf_metrics_scanner_restart(): a scanner process was started again after it died or was killed. */
void cf_metrics_scanner_restart(void);
/* cf_metrics_scan_stream(streamed): a tus completion decided by its streaming scan (true), or a
 * streaming scan that ended without a usable verdict (false: the upload is scanned after completion). */
void cf_metrics_scan_stream(bool streamed);
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

/* cf_metrics_allowed(cfg, sa): whether a client at sa may see /metrics (cfg's metrics.allow). Any
 * thread. */
bool cf_metrics_allowed(const struct cf_config *cfg, const struct sockaddr *sa);

/* What a scrape reads outside the counters (src/api/metrics_page.c gathers it). */
struct cf_metrics_readings {
    size_t scanners_up, scanners_down; /* scanner processes by state */
    size_t audit_queue_depth;          /* provenance events queued and not yet durable */
    struct cf_store_stats store;       /* the store's statistics (cf_store_stats) */
    uint64_t search_entries, search_bytes; /* the name index (cf_store_search_stats) */
    bool search_ready;
    /* request bodies in memory (budget.h): held by upload handlers, still arriving, the peak of
     * the latter; connections stopped by the intake gate, now and in all */
    uint64_t body_held, body_receiving, body_receiving_peak, body_paused, body_pauses;
};

/* cf_metrics_render(x, out, len): the whole exposition, the counters and the readings x, as a
 * malloc'ed NUL-terminated text (*out, to free) of *len bytes. Any thread. */
void cf_metrics_render(const struct cf_metrics_readings *x, char **out, size_t *len);

#endif
