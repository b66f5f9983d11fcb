/*
 * metrics.c: counters, gauges and their exposition text (see metrics.h; the page is api/metrics_page.c).
 *
 * Request series: a request is counted under its route (the route table's index, mapped once at
 * start to one slot per distinct pattern, plus "other"), its method (8 values) and its status.
 * Those three make a key for SERIES_SLOTS open-addressed slots; a slot is claimed with one
 * compare-and-swap and never released, so a series, once seen, stays (Prometheus expects counters
 * not to vanish). The route table has about 80 routes, each answering a handful of statuses: a few
 * hundred series in practice, against 4096 slots; a request that finds the table full is counted in
 * coffer_http_requests_uncounted_total instead. Durations go into a fixed histogram per route slot;
 * body bytes into a pair of counters per route slot.
 *
 * All counters are atomics updated with relaxed order: each is exact on its own; a scrape that
 * races a request may see its count before its duration (Prometheus tolerates that). The scrape
 * (api/metrics_page.c) builds its text on a worker thread (it reads RocksDB's properties) and sends it
 * from the loop.
 */
#include "metrics.h"

#include <dirent.h>
#include <h2o.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bufpool.h"
#include "cf_version.h"
#include "config.h"
#include "log.h"

#define MAX_ROUTE_SLOTS 128   /* distinct route patterns (route.c has ~80), plus "other" */
#define SERIES_SLOTS 4096     /* (route, method, status) series; a power of two */

/* ---- labels ----------------------------------------------------------------------------------- */

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"};
#define NMETHODS (sizeof methods / sizeof methods[0])

/* Histogram bounds in microseconds (le labels in seconds). */
static const uint64_t bounds_us[] = {1000,    2500,    5000,    10000,   25000,   50000,    100000,
                                     250000,  500000,  1000000, 2500000, 5000000, 10000000, 30000000};
static const char *const bounds_le[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                                        "0.25",  "0.5",    "1",     "2.5",  "5",     "10",   "30"};
#define NBOUNDS (sizeof bounds_us / sizeof bounds_us[0])
_Static_assert(sizeof bounds_le / sizeof bounds_le[0] == NBOUNDS, "one le label per bound");

static const char *const scan_results[] = {"clean", "infected", "unscannable", "error", "unavailable"};
#define SCAN_UNAVAILABLE 4 /* index of "unavailable": the job failed, no verdict */

static const char *const reject_reasons[] = {"infected", "unscannable", "blocked_type", "scanner_unavailable",
                                             "error"};
static const char *const limit_labels[CF_LIMIT_COUNT] = {
    [CF_LIMIT_CONNECTIONS] = "max_connections",     [CF_LIMIT_PER_ADDRESS] = "max_connections_per_address",
    [CF_LIMIT_SLOW_REQUEST] = "request_timeout",    [CF_LIMIT_BODY] = "body_without_credentials",
    [CF_LIMIT_IDLE] = "idle_timeout",               [CF_LIMIT_CANCELS] = "max_cancels_per_connection",
    [CF_LIMIT_PUT] = "dav_max_put_bytes",
};
static const char *const retention_kinds[] = {"trash", "space", "audit", "upload", "version", "dav_lock", "unfinished"};
static const char *const rotation_kinds[] = {"master", "tenant"};
#define NRETENTION (sizeof retention_kinds / sizeof retention_kinds[0])
#define NROTATION (sizeof rotation_kinds / sizeof rotation_kinds[0])

/* ---- state ------------------------------------------------------------------------------------ */

/* Written by cf_metrics_start before the loops exist, read-only afterwards. */
static const char *slot_pattern[MAX_ROUTE_SLOTS]; /* label of each route slot; the last used is "other" */
static size_t nslots;                              /* route slots in use, "other" included */
static uint16_t route_slot[MAX_ROUTE_SLOTS];       /* route table index → slot */
static size_t nroutes;
static uint64_t started_ms;

struct series {
    atomic_uint_least32_t key; /* 0: free; else 1 + slot << 14 | method << 10 | status (≤ 999) */
    atomic_uint_least64_t count;
};
static struct series series[SERIES_SLOTS];
static atomic_uint_least64_t uncounted;

struct route_stats {
    atomic_uint_least64_t le[NBOUNDS + 1]; /* requests by duration bucket (not cumulative; last: +Inf) */
    atomic_uint_least64_t sum_us;          /* their total duration, µs */
    atomic_uint_least64_t bytes_in, bytes_out;
};
static struct route_stats routes_st[MAX_ROUTE_SLOTS];

static atomic_int_least64_t connections_open;
static atomic_uint_least64_t conn_limited[CF_LIMIT_COUNT];
static atomic_uint_least64_t scans[sizeof scan_results / sizeof scan_results[0]];
static atomic_uint_least64_t scanner_restarts;
static atomic_uint_least64_t conn_kill_stuck;
static atomic_uint_least64_t audit_commits, audit_events;
static atomic_uint_least64_t scan_streamed, scan_stream_fallback;
static atomic_uint_least64_t rejected[sizeof reject_reasons / sizeof reject_reasons[0]];
static atomic_uint_least64_t retention_purged[NRETENTION];
static atomic_uint_least64_t retention_runs[2]; /* [0] ok, [1] failed */
static atomic_uint_least64_t retention_last_ms;
static atomic_uint_least64_t rotations[NROTATION];

#define ADD(counter, n) atomic_fetch_add_explicit(&(counter), (n), memory_order_relaxed)
#define GET(counter) atomic_load_explicit(&(counter), memory_order_relaxed)

/* ---- counting --------------------------------------------------------------------------------- */

void cf_metrics_start(size_t n, const char *(*pattern)(size_t i))
{
    started_ms = cf_now_ms();
    nroutes = n;
    if (nroutes >= MAX_ROUTE_SLOTS) {
        cf_log_error("%s: the route table has %zu routes, metrics handle %d", __func__, nroutes, MAX_ROUTE_SLOTS - 1);
        abort();
    }
    nslots = 0;
    for (size_t i = 0; i < nroutes; i++) {
        const char *p = pattern(i);
        size_t s = 0;
        while (s < nslots && strcmp(slot_pattern[s], p) != 0)
            s++;
        if (s == nslots)
            slot_pattern[nslots++] = p;
        route_slot[i] = (uint16_t)s;
    }
    slot_pattern[nslots++] = "other";
}

static size_t method_index(const char *m, size_t n)
{
    for (size_t i = 0; i + 1 < NMETHODS; i++)
        if (strlen(methods[i]) == n && memcmp(methods[i], m, n) == 0)
            return i;
    return NMETHODS - 1;
}

static void count_series(uint32_t key)
{
    uint32_t h = key * 2654435761u; /* Knuth's multiplicative hash */
    for (size_t probe = 0; probe < SERIES_SLOTS; probe++) {
        struct series *s = &series[(h + probe) & (SERIES_SLOTS - 1)];
        uint_least32_t k = atomic_load_explicit(&s->key, memory_order_relaxed);
        if (k == 0) {
            uint_least32_t expected = 0;
            if (atomic_compare_exchange_strong_explicit(&s->key, &expected, key, memory_order_relaxed,
                                                        memory_order_relaxed))
                k = key;
            else
                k = expected; /* another thread took it, maybe for this very key */
        }
        if (k == key) {
            ADD(s->count, 1);
            return;
        }
    }
    ADD(uncounted, 1);
}

void cf_metrics_http(size_t route, const char *method, size_t mlen, int status, uint64_t bytes_in,
                     uint64_t bytes_out, uint64_t duration_us)
{
    if (nslots == 0)
        return; /* not started (a unit test, or a request before the loops: none exist) */
    size_t slot = route < nroutes ? route_slot[route] : nslots - 1;
    uint32_t code = status >= 0 && status <= 999 ? (uint32_t)status : 0;
    count_series(1 + ((uint32_t)slot << 14 | (uint32_t)method_index(method, mlen) << 10 | code));
    struct route_stats *st = &routes_st[slot];
    size_t b = 0;
    while (b < NBOUNDS && duration_us > bounds_us[b])
        b++;
    ADD(st->le[b], 1);
    ADD(st->sum_us, duration_us);
    ADD(st->bytes_in, bytes_in);
    ADD(st->bytes_out, bytes_out);
}

void cf_metrics_connection(int delta)
{
    ADD(connections_open, delta);
}

void cf_metrics_conn_limited(int why)
{
    if (why >= 0 && why < CF_LIMIT_COUNT)
        ADD(conn_limited[why], 1);
}

void cf_metrics_audit_commit(size_t events)
{
    ADD(audit_commits, 1);
    ADD(audit_events, events);
}

void cf_metrics_conn_kill_stuck(void)
{
    ADD(conn_kill_stuck, 1);
}

void cf_metrics_scan(enum cf_status status, unsigned result)
{
    ADD(scans[status == CF_OK && result < SCAN_UNAVAILABLE ? result : SCAN_UNAVAILABLE], 1);
}

void cf_metrics_scanner_restart(void)
{
    ADD(scanner_restarts, 1);
}

void cf_metrics_scan_stream(bool streamed)
{
    if (streamed)
        ADD(scan_streamed, 1);
    else
        ADD(scan_stream_fallback, 1);
}

void cf_metrics_upload_rejected(enum cf_status why)
{
    size_t i;
    switch (why) {
    case CF_EINFECTED:
        i = 0;
        break;
    case CF_EUNSCANNABLE:
        i = 1;
        break;
    case CF_EBLOCKED:
        i = 2;
        break;
    case CF_EUNAVAIL:
        i = 3;
        break;
    default:
        i = 4;
        break;
    }
    ADD(rejected[i], 1);
}

static size_t kind_index(const char *const *kinds, size_t n, const char *kind, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (kind != NULL && strcmp(kinds[i], kind) == 0)
            return i;
    cf_log_error("metrics: unknown %s kind \"%s\" not counted (bug)", what, kind != NULL ? kind : "(null)");
    return SIZE_MAX;
}

void cf_metrics_retention_purged(const char *kind, uint64_t n)
{
    size_t i = kind_index(retention_kinds, NRETENTION, kind, "retention");
    if (i != SIZE_MAX)
        ADD(retention_purged[i], n);
}

void cf_metrics_retention_run(bool ok, uint64_t at_ms)
{
    ADD(retention_runs[ok ? 0 : 1], 1);
    atomic_store_explicit(&retention_last_ms, at_ms, memory_order_relaxed);
}

void cf_metrics_key_rotation(const char *kind)
{
    size_t i = kind_index(rotation_kinds, NROTATION, kind, "key rotation");
    if (i != SIZE_MAX)
        ADD(rotations[i], 1);
}

bool cf_metrics_allowed(const struct cf_config *cfg, const struct sockaddr *sa)
{
    return cf_cidr_match(cfg->metrics.allow, cfg->metrics.nallow, sa);
}

/* ---- the exposition --------------------------------------------------------------------------- */

struct text {
    char *p;
    size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            abort(); /* only a format error: a bug */
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap * 2 + (size_t)n;
        t->p = cf_xrealloc(t->p, t->cap);
    }
}

/* The family header: # HELP and # TYPE. */
static void family(struct text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values here are route patterns and fixed words; escape anyway (exposition format: \\ \" \n). */
static const char *esc(const char *s, char *buf, size_t cap)
{
    size_t o = 0;
    for (; *s != '\0' && o + 3 < cap; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n') {
            buf[o++] = '\\';
            buf[o++] = *s == '\n' ? 'n' : *s;
        } else {
            buf[o++] = *s;
        }
    }
    buf[o] = '\0';
    return buf;
}

struct seen_series {
    uint32_t key;
    uint64_t count;
};

static int cmp_series(const void *a, const void *b)
{
    uint32_t x = ((const struct seen_series *)a)->key, y = ((const struct seen_series *)b)->key;
    return x < y ? -1 : x > y;
}

static void render_http(struct text *t)
{
    char lb[512];
    /* Series in a stable order: by route slot, method, status (the key's own order). */
    struct seen_series *all = cf_xmalloc(SERIES_SLOTS * sizeof *all);
    size_t nall = 0;
    for (size_t i = 0; i < SERIES_SLOTS; i++) {
        uint32_t k = atomic_load_explicit(&series[i].key, memory_order_relaxed);
        if (k != 0)
            all[nall++] = (struct seen_series){k, GET(series[i].count)};
    }
    qsort(all, nall, sizeof *all, cmp_series);
    family(t, "coffer_http_requests_total", "counter",
           "HTTP requests finished, by route pattern (\"other\": no route matched), method and status (0: no "
           "response was started).");
    bool seen[MAX_ROUTE_SLOTS] = {false};
    for (size_t i = 0; i < nall; i++) {
        uint32_t k = all[i].key - 1, slot = k >> 14, m = (k >> 10) & 15, code = k & 1023;
        if (slot >= nslots || m >= NMETHODS)
            continue;
        seen[slot] = true;
        put(t, "coffer_http_requests_total{route=\"%s\",method=\"%s\",code=\"%u\"} %llu\n",
            esc(slot_pattern[slot], lb, sizeof lb), methods[m], code, (unsigned long long)all[i].count);
    }
    free(all);
    family(t, "coffer_http_requests_uncounted_total", "counter",
           "HTTP requests left out of coffer_http_requests_total because its table of series was full.");
    put(t, "coffer_http_requests_uncounted_total %llu\n", (unsigned long long)GET(uncounted));

    family(t, "coffer_http_request_duration_seconds", "histogram",
           "Time from a request's first byte to the end of its response, by route pattern.");
    for (size_t s = 0; s < nslots; s++) {
        if (!seen[s])
            continue;
        struct route_stats *st = &routes_st[s];
        esc(slot_pattern[s], lb, sizeof lb);
        uint64_t cum = 0;
        for (size_t b = 0; b < NBOUNDS; b++) {
            cum += GET(st->le[b]);
            put(t, "coffer_http_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"} %llu\n", lb, bounds_le[b],
                (unsigned long long)cum);
        }
        cum += GET(st->le[NBOUNDS]);
        uint64_t sum = GET(st->sum_us);
        put(t, "coffer_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", lb,
            (unsigned long long)cum);
        put(t, "coffer_http_request_duration_seconds_sum{route=\"%s\"} %llu.%06llu\n", lb,
            (unsigned long long)(sum / 1000000), (unsigned long long)(sum % 1000000));
        put(t, "coffer_http_request_duration_seconds_count{route=\"%s\"} %llu\n", lb, (unsigned long long)cum);
    }
    family(t, "coffer_http_request_bytes_total", "counter", "Request body bytes received, by route pattern.");
    for (size_t s = 0; s < nslots; s++)
        if (seen[s])
            put(t, "coffer_http_request_bytes_total{route=\"%s\"} %llu\n", esc(slot_pattern[s], lb, sizeof lb),
                (unsigned long long)GET(routes_st[s].bytes_in));
    family(t, "coffer_http_response_bytes_total", "counter", "Response body bytes sent, by route pattern.");
    for (size_t s = 0; s < nslots; s++)
        if (seen[s])
            put(t, "coffer_http_response_bytes_total{route=\"%s\"} %llu\n", esc(slot_pattern[s], lb, sizeof lb),
                (unsigned long long)GET(routes_st[s].bytes_out));
}

/* One counter family with a label whose values are fixed words. */
static void labelled(struct text *t, const char *name, const char *help, const char *label, const char *const *values,
                     atomic_uint_least64_t *counts, size_t n)
{
    family(t, name, "counter", help);
    for (size_t i = 0; i < n; i++)
        put(t, "%s{%s=\"%s\"} %llu\n", name, label, values[i], (unsigned long long)GET(counts[i]));
}

static void render_process(struct text *t)
{
    family(t, "coffer_build_info", "gauge", "Always 1; the labels name this build.");
    put(t, "coffer_build_info{version=\"%s\",rocksdb=\"%s\"} 1\n", COFFER_VERSION, COFFER_ROCKSDB_VERSION);
    family(t, "process_start_time_seconds", "gauge", "When the server started, in seconds since the epoch.");
    put(t, "process_start_time_seconds %llu.%03llu\n", (unsigned long long)(started_ms / 1000),
        (unsigned long long)(started_ms % 1000));
    /* /proc/self/statm: size resident ... in pages */
    FILE *fp = fopen("/proc/self/statm", "r");
    unsigned long long size, resident;
    if (fp != NULL) {
        if (fscanf(fp, "%llu %llu", &size, &resident) == 2) {
            family(t, "process_resident_memory_bytes", "gauge", "Resident memory of the server process.");
            put(t, "process_resident_memory_bytes %llu\n", resident * (unsigned long long)sysconf(_SC_PAGESIZE));
        }
        fclose(fp);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        unsigned long long n = 0;
        for (struct dirent *e; (e = readdir(d)) != NULL;)
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        family(t, "process_open_fds", "gauge", "Open file descriptors of the server process.");
        put(t, "process_open_fds %llu\n", n > 0 ? n - 1 : 0); /* not the one reading the directory */
    }
}

static void render_store(struct text *t, const struct cf_store_stats *stp)
{
    struct cf_store_stats st = *stp;
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } u64s[] = {
        {"coffer_rocksdb_sst_bytes", "gauge", "Size of RocksDB's live table files.",
         offsetof(struct cf_store_stats, sst_bytes)},
        {"coffer_rocksdb_blob_bytes", "gauge", "Size of RocksDB's live blob files (file content).",
         offsetof(struct cf_store_stats, blob_bytes)},
        {"coffer_rocksdb_blob_files", "gauge", "RocksDB's live blob files.",
         offsetof(struct cf_store_stats, blob_files)},
        {"coffer_rocksdb_live_data_bytes", "gauge", "RocksDB's estimate of its live data.",
         offsetof(struct cf_store_stats, live_data_bytes)},
        {"coffer_rocksdb_memtable_bytes", "gauge", "RocksDB's memtables, active and not yet flushed.",
         offsetof(struct cf_store_stats, memtable_bytes)},
        {"coffer_rocksdb_pending_compaction_bytes", "gauge",
         "RocksDB's estimate of the bytes compaction has to rewrite.",
         offsetof(struct cf_store_stats, pending_compaction_bytes)},
        {"coffer_rocksdb_running_compactions", "gauge", "RocksDB compactions running now.",
         offsetof(struct cf_store_stats, running_compactions)},
        {"coffer_rocksdb_running_flushes", "gauge", "RocksDB flushes running now.",
         offsetof(struct cf_store_stats, running_flushes)},
        {"coffer_rocksdb_background_errors_total", "counter", "RocksDB background errors since the store was opened.",
         offsetof(struct cf_store_stats, background_errors)},
        {"coffer_rocksdb_delayed_write_rate_bytes", "gauge",
         "The rate RocksDB slows writes down to, in bytes per second (0: writes are not slowed down).",
         offsetof(struct cf_store_stats, delayed_write_rate)},
        {"coffer_metadata_cache_hits_total", "counter", "Metadata cache lookups answered from memory.",
         offsetof(struct cf_store_stats, cache_hits)},
        {"coffer_metadata_cache_misses_total", "counter", "Metadata cache lookups that read the store.",
         offsetof(struct cf_store_stats, cache_misses)},
        {"coffer_metadata_cache_evictions_total", "counter", "Metadata cache entries dropped to stay within its bound.",
         offsetof(struct cf_store_stats, cache_evictions)},
        {"coffer_metadata_cache_invalidations_total", "counter", "Metadata cache invalidations made by writes.",
         offsetof(struct cf_store_stats, cache_invalidations)},
        {"coffer_metadata_cache_refused_total", "counter",
         "Metadata cache inserts refused because a write raced the read.", offsetof(struct cf_store_stats, cache_refused)},
        {"coffer_metadata_cache_entries", "gauge", "Metadata cache entries held now.",
         offsetof(struct cf_store_stats, cache_entries)},
        {"coffer_metadata_cache_bytes", "gauge", "Metadata cache memory held now, bytes.",
         offsetof(struct cf_store_stats, cache_bytes)},
    };
    for (size_t i = 0; i < sizeof u64s / sizeof u64s[0]; i++) {
        family(t, u64s[i].name, u64s[i].type, u64s[i].help);
        uint64_t v;
        memcpy(&v, (const char *)&st + u64s[i].off, sizeof v);
        put(t, "%s %llu\n", u64s[i].name, (unsigned long long)v);
    }
    family(t, "coffer_rocksdb_write_stopped", "gauge", "1 while RocksDB stops every write (a write stall), else 0.");
    put(t, "coffer_rocksdb_write_stopped %d\n", st.write_stopped ? 1 : 0);
    if (st.stall_known) {
        family(t, "coffer_rocksdb_stall_seconds_total", "counter",
               "Time writes waited in RocksDB write stalls since the store was opened.");
        put(t, "coffer_rocksdb_stall_seconds_total %llu.%03llu\n", (unsigned long long)(st.stall_ms / 1000),
            (unsigned long long)(st.stall_ms % 1000));
    }
}

/* The download buffer pool (bufpool.h): read under its own lock. */
static void render_bufpool(struct text *t)
{
    struct cf_bufpool_stats b;
    cf_bufpool_stats(&b);
    family(t, "coffer_bufpool_buffers", "gauge",
           "Download chunk buffers, by state (idle: in the pool; out: held by streams).");
    put(t, "coffer_bufpool_buffers{state=\"idle\"} %llu\ncoffer_bufpool_buffers{state=\"out\"} %llu\n",
        (unsigned long long)b.idle, (unsigned long long)b.out);
    family(t, "coffer_bufpool_takes_total", "counter", "Download chunk buffers taken from the pool, by source.");
    put(t, "coffer_bufpool_takes_total{source=\"pool\"} %llu\n", (unsigned long long)(b.takes - b.allocated));
    put(t, "coffer_bufpool_takes_total{source=\"allocated\"} %llu\n", (unsigned long long)b.allocated);
    family(t, "coffer_bufpool_freed_total", "counter", "Download chunk buffers freed because the pool was full.");
    put(t, "coffer_bufpool_freed_total %llu\n", (unsigned long long)b.freed);
}

void cf_metrics_render(const struct cf_metrics_readings *x, char **out, size_t *len)
{
    struct text t = {cf_xmalloc(64 * 1024), 0, 64 * 1024};
    render_process(&t);
    render_http(&t);

    family(&t, "coffer_connections_open", "gauge", "Client connections open now.");
    put(&t, "coffer_connections_open %lld\n", (long long)atomic_load_explicit(&connections_open, memory_order_relaxed));
    labelled(&t, "coffer_connections_limited_total",
             "Connections refused or closed by a limit (docs/SECURITY.md \"Transport and HTTP\").", "limit",
             limit_labels, conn_limited, CF_LIMIT_COUNT);
    family(&t, "coffer_connections_kill_stuck_total", "counter",
           "Connections closed by a limit that were still open 10 s later (each is logged; expected 0).");
    put(&t, "coffer_connections_kill_stuck_total %llu\n", (unsigned long long)GET(conn_kill_stuck));

    labelled(&t, "coffer_scan_total",
             "Scans finished, by result (unavailable: no verdict, the scanner died, timed out or misbehaved).",
             "result", scan_results, scans, sizeof scans / sizeof scans[0]);
    family(&t, "coffer_scanner_restarts_total", "counter",
           "Scanner processes started again after they died or were killed.");
    put(&t, "coffer_scanner_restarts_total %llu\n", (unsigned long long)GET(scanner_restarts));
    family(&t, "coffer_scan_streamed_total", "counter",
           "tus uploads whose verdict came from a scan run while they arrived.");
    put(&t, "coffer_scan_streamed_total %llu\n", (unsigned long long)GET(scan_streamed));
    family(&t, "coffer_scan_stream_fallback_total", "counter",
           "Scans run while an upload arrived that ended without a usable verdict (client idle, upload "
           "terminated, scanner failure): the upload is scanned after completion.");
    put(&t, "coffer_scan_stream_fallback_total %llu\n", (unsigned long long)GET(scan_stream_fallback));
    family(&t, "coffer_scanners", "gauge", "Scanner processes, by state.");
    put(&t, "coffer_scanners{state=\"up\"} %zu\ncoffer_scanners{state=\"down\"} %zu\n", x->scanners_up,
        x->scanners_down);
    labelled(&t, "coffer_uploads_rejected_total", "Uploads refused after scanning and type detection, by reason.",
             "reason", reject_reasons, rejected, sizeof rejected / sizeof rejected[0]);

    family(&t, "coffer_audit_queue_depth", "gauge", "Provenance events queued and not yet durable.");
    put(&t, "coffer_audit_queue_depth %zu\n", x->audit_queue_depth);
    family(&t, "coffer_audit_commits_total", "counter", "Synchronous batches the provenance writer committed (one fsync each).");
    put(&t, "coffer_audit_commits_total %llu\n", (unsigned long long)GET(audit_commits));
    family(&t, "coffer_audit_events_total", "counter", "Provenance events those batches committed.");
    put(&t, "coffer_audit_events_total %llu\n", (unsigned long long)GET(audit_events));
    family(&t, "coffer_search_index_entries", "gauge", "Names in the in-memory search index.");
    put(&t, "coffer_search_index_entries %llu\n", (unsigned long long)x->search_entries);
    family(&t, "coffer_search_index_bytes", "gauge",
           "Memory the search index holds for its entries and names (bounded by 512 MiB).");
    put(&t, "coffer_search_index_bytes %llu\n", (unsigned long long)x->search_bytes);
    family(&t, "coffer_search_index_ready", "gauge", "1 once the search index is built and kept current.");
    put(&t, "coffer_search_index_ready %d\n", x->search_ready ? 1 : 0);

    family(&t, "coffer_body_bytes", "gauge",
           "Request bodies in memory: held by upload handlers, and still arriving (limits.max_buffered_body_bytes).");
    put(&t, "coffer_body_bytes{state=\"held\"} %llu\ncoffer_body_bytes{state=\"receiving\"} %llu\n",
        (unsigned long long)x->body_held, (unsigned long long)x->body_receiving);
    family(&t, "coffer_body_receiving_peak_bytes", "gauge", "The most bytes of request bodies arriving at once since start.");
    put(&t, "coffer_body_receiving_peak_bytes %llu\n", (unsigned long long)x->body_receiving_peak);
    family(&t, "coffer_intake_paused_connections", "gauge",
           "Connections the intake gate stopped reading from while bodies in memory are over the limit.");
    put(&t, "coffer_intake_paused_connections %llu\n", (unsigned long long)x->body_paused);
    family(&t, "coffer_intake_pauses_total", "counter", "Times the intake gate stopped reading from a connection.");
    put(&t, "coffer_intake_pauses_total %llu\n", (unsigned long long)x->body_pauses);

    render_store(&t, &x->store);
    render_bufpool(&t);

    labelled(&t, "coffer_retention_purged_total", "Items removed by the retention job, by kind.", "kind",
             retention_kinds, retention_purged, NRETENTION);
    static const char *const run_results[] = {"ok", "failed"};
    labelled(&t, "coffer_retention_runs_total", "Runs of the retention job, by result.", "result", run_results,
             retention_runs, 2);
    uint64_t last = GET(retention_last_ms);
    family(&t, "coffer_retention_last_run_timestamp_seconds", "gauge",
           "When the retention job last ended, in seconds since the epoch (0: not yet).");
    put(&t, "coffer_retention_last_run_timestamp_seconds %llu.%03llu\n", (unsigned long long)(last / 1000),
        (unsigned long long)(last % 1000));
    labelled(&t, "coffer_key_rotations_total", "Key rotations completed, by kind.", "kind", rotation_kinds, rotations,
             NROTATION);
    *out = t.p;
    *len = t.len;
}
