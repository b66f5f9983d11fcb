/*
 * rescan.c: the rescan job (see rescan.h). Storage finds the files and records verdicts
 * (storage/rescan.c); the scanners are the upload path's (scan.h); this file decides, as inspect.c
 * does for uploads, and records the outcome in provenance.
 */
#include "rescan.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "config.h"
#include "context.h"
#include "http.h"
#include "log.h"
#include "scan.h"
#include "storage.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_t thread;
static bool started, stopping;
static struct cf_rescan_progress progress;
static struct cf_app *app;

void cf_rescan_progress(struct cf_rescan_progress *out)
{
    pthread_mutex_lock(&lock);
    *out = progress;
    pthread_mutex_unlock(&lock);
}

static bool is_stopping(void)
{
    pthread_mutex_lock(&lock);
    bool s = stopping;
    pthread_mutex_unlock(&lock);
    return s;
}

/* One file's scan: the scanner reads the committed content through a reader. */
struct rescan {
    struct cf_scan_job job;
    struct cf_reader *rd;
    uint8_t *chunk;        /* one decrypted chunk, cached for consecutive reads */
    size_t chunk_len;
    uint32_t index;
    bool cached;
    bool done;             /* set by the scan thread under lock */
};

static enum cf_status read_back(void *ctx, uint64_t offset, void *buf, size_t len)
{
    struct rescan *x = ctx;
    uint8_t *out = buf;
    while (len > 0) {
        uint32_t index = (uint32_t)(offset / CF_CHUNK_SIZE);
        size_t within = (size_t)(offset % CF_CHUNK_SIZE);
        if (!x->cached || x->index != index) {
            x->cached = false;
            enum cf_status st = cf_reader_chunk(x->rd, index, x->chunk, &x->chunk_len);
            if (st != CF_OK)
                return st;
            x->cached = true;
            x->index = index;
        }
        if (within >= x->chunk_len)
            return CF_ECORRUPT;
        size_t n = x->chunk_len - within < len ? x->chunk_len - within : len;
        memcpy(out, x->chunk + within, n);
        out += n;
        offset += n;
        len -= n;
    }
    return CF_OK;
}

static void scanned(struct cf_scan_job *job)
{
    struct rescan *x = (struct rescan *)((char *)job - offsetof(struct rescan, job));
    pthread_mutex_lock(&lock);
    x->done = true;
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);
}

enum outcome { OUT_CLEAN, OUT_ADMITTED, OUT_REFUSED, OUT_FAILED };

/* Scans version `version` of file id; fills *verdict. */
static enum outcome scan_file(const struct cf_id *tenant, const struct cf_id *id, uint32_t version,
                              struct cf_scan_msg_verdict *verdict)
{
    struct rescan x;
    memset(&x, 0, sizeof x);
    if (cf_reader_open(app->store, tenant, id, version, &x.rd) != CF_OK)
        return OUT_FAILED;
    x.chunk = cf_xmalloc(CF_CHUNK_SIZE);
    x.job.size = cf_reader_size(x.rd);
    x.job.read = read_back;
    x.job.ctx = &x;
    x.job.done = scanned;
    cf_scan_submit(&x.job);
    pthread_mutex_lock(&lock);
    while (!x.done)
        pthread_cond_wait(&wake, &lock); /* a scan always completes (timeouts and stops included) */
    pthread_mutex_unlock(&lock);
    cf_free_secret(x.chunk, CF_CHUNK_SIZE);
    cf_reader_free(x.rd);
    *verdict = x.job.verdict;
    if (x.job.status != CF_OK || verdict->info.development)
        return OUT_FAILED; /* not scanned with signatures: stays "unchecked" */
    switch ((enum cf_scan_result)verdict->result) {
    case CF_SCAN_CLEAN:
        return OUT_CLEAN;
    case CF_SCAN_INFECTED:
        return OUT_REFUSED;
    case CF_SCAN_UNSCANNABLE:
        return app->cfg->scan.on_unscannable == CF_UNSCANNABLE_ALLOW ? OUT_ADMITTED : OUT_REFUSED;
    case CF_SCAN_ERROR:
        break;
    }
    return OUT_FAILED;
}

/* The file is purged (its data keys first): what an upload with this verdict would never have
 * become. One file.infected event, and an alert to its owner. */
static enum cf_status refuse(const struct cf_id *tenant, const struct cf_node *n, const struct cf_scan_msg_verdict *v)
{
    char sha[2 * CF_SHA256_LEN + 1];
    bool infected = v->result == CF_SCAN_INFECTED;
    struct cf_event *e = cf_event_new(tenant, "file.infected", infected ? "infected" : "unscannable"); /* actor: system */
    cf_event_node(e, n);
    cf_hex_encode(n->sha256, CF_SHA256_LEN, sha);
    cf_event_detail(e, infected ? "signature" : "reason", json_string(v->signature));
    cf_event_detail(e, "version", json_integer(n->version));
    cf_event_detail(e, "size", json_integer((json_int_t)n->size));
    cf_event_detail(e, "sha256", json_string(sha));
    cf_event_detail(e, "engine", json_string(v->info.engine));
    cf_event_detail(e, "database", json_string(v->info.database));
    cf_event_detail(e, "action", json_string("purged"));
    enum cf_status st = cf_node_purge(app->store, tenant, &n->id);
    if (st != CF_OK) {
        cf_event_free(e);
        return st;
    }
    if ((st = cf_audit_submit_wait(e, NULL)) != CF_OK)
        cf_log_error("rescan: a file.infected event could not be recorded");
    if (!cf_id_is_zero(&n->owner)) {
        json_t *d = json_pack("{s:o, s:s, s:s, s:s}", "node", cf_json_id(&n->id), "name", n->name,
                              infected ? "signature" : "reason", v->signature, "action", "purged");
        char *txt = json_dumps(d, JSON_COMPACT);
        if (cf_alert_add(app->store, tenant, &n->owner, "alert.infected_file", txt) != CF_OK)
            cf_log_warn("rescan: could not store an alert for an infected file");
        free(txt);
        json_decref(d);
    }
    cf_log_warn("rescan: %s: file purged (%s)", infected ? "infected" : "unscannable", v->signature);
    return st;
}

static void count(uint64_t *field)
{
    pthread_mutex_lock(&lock);
    (*field)++;
    pthread_mutex_unlock(&lock);
}

/* One file: scan, then apply the verdict. */
static enum cf_status rescan_one(const struct cf_id *tenant, const struct cf_id *id)
{
    struct cf_node n;
    struct cf_scan_msg_verdict v;
    enum cf_status st = cf_node_get(app->store, tenant, id, &n);
    if (st != CF_OK)
        return st == CF_ENOTFOUND ? CF_OK : st; /* purged meanwhile */
    enum outcome o = scan_file(tenant, id, n.version, &v);
    if (o == OUT_FAILED) {
        count(&progress.failed);
        cf_node_clear(&n);
        return CF_OK;
    }
    if (o == OUT_REFUSED) {
        st = refuse(tenant, &n, &v);
        if (st == CF_OK)
            count(&progress.found);
    } else {
        bool changed;
        struct cf_scan_summary sum = {
            .result = o == OUT_CLEAN ? (char *)"clean" : (char *)"unscannable",
            .detail = o == OUT_CLEAN ? NULL : v.signature,
            .engine = v.info.engine,
            .database = v.info.database,
            .at = cf_now_ms(),
        };
        st = cf_node_set_scan(app->store, tenant, id, n.version, &sum, &changed);
        if (st == CF_ENOTFOUND)
            st = CF_OK;
    }
    if (st == CF_OK)
        count(&progress.scanned);
    cf_node_clear(&n);
    return st;
}

/* One pass over every tenant. */
static enum cf_status run_pass(void)
{
    struct cf_tenant *ts;
    size_t nt;
    enum cf_status first = cf_tenant_list(app->store, &ts, &nt);
    if (first != CF_OK)
        return first;
    struct cf_id **ids = cf_xcalloc(nt + 1, sizeof *ids);
    size_t *nids = cf_xcalloc(nt + 1, sizeof *nids);
    uint64_t total = 0;
    for (size_t i = 0; i < nt; i++) {
        enum cf_status st = cf_unchecked_files(app->store, &ts[i].id, &ids[i], &nids[i]);
        if (st != CF_OK) {
            ids[i] = NULL;
            nids[i] = 0;
            if (first == CF_OK)
                first = st;
        }
        total += nids[i];
    }
    if (total > 0) {
        pthread_mutex_lock(&lock);
        progress.running = true;
        progress.total = total;
        progress.scanned = progress.found = progress.failed = 0;
        pthread_mutex_unlock(&lock);
        cf_log_info("rescan: %llu file(s) accepted unscanned: scanning them now that signatures exist",
                    (unsigned long long)total);
    }
    for (size_t i = 0; i < nt; i++) {
        struct cf_rescan_progress before;
        cf_rescan_progress(&before);
        for (size_t k = 0; k < nids[i] && !is_stopping(); k++) {
            enum cf_status st = rescan_one(&ts[i].id, &ids[i][k]);
            if (st != CF_OK && first == CF_OK)
                first = st;
        }
        struct cf_rescan_progress after;
        cf_rescan_progress(&after);
        if (nids[i] > 0) {
            struct cf_event *e = cf_event_new(&ts[i].id, "scan.rescan", "ok"); /* actor: system */
            cf_event_detail(e, "files", json_integer((json_int_t)nids[i]));
            cf_event_detail(e, "scanned", json_integer((json_int_t)(after.scanned - before.scanned)));
            cf_event_detail(e, "found", json_integer((json_int_t)(after.found - before.found)));
            cf_event_detail(e, "failed", json_integer((json_int_t)(after.failed - before.failed)));
            cf_audit_submit(e);
        }
        free(ids[i]);
        cf_tenant_clear(&ts[i]);
    }
    free(ts);
    free(ids);
    free(nids);
    pthread_mutex_lock(&lock);
    if (progress.running)
        cf_log_info("rescan: done: %llu of %llu scanned, %llu found and purged, %llu not scanned",
                    (unsigned long long)progress.scanned, (unsigned long long)progress.total,
                    (unsigned long long)progress.found, (unsigned long long)progress.failed);
    progress.running = false;
    progress.passes++;
    pthread_mutex_unlock(&lock);
    return first;
}

static void *rescan_main(void *arg)
{
    (void)arg;
    bool due = true; /* files accepted unscanned by an earlier run */
    uint64_t last = 0; /* ms since the epoch: the last pass */
    for (;;) {
        pthread_mutex_lock(&lock);
        if (!stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += CF_RESCAN_POLL_S;
            pthread_cond_timedwait(&wake, &lock, &ts);
        }
        bool stop = stopping;
        pthread_mutex_unlock(&lock);
        if (stop)
            return NULL;
        const char *state = cf_scan_state();
        if (strcmp(state, "ok") != 0) {
            if (strcmp(state, "down") != 0)
                due = true; /* no signatures: what is admitted now is "unchecked" */
            continue;
        }
        /* Hourly too: an old version restored as current keeps the verdict it was admitted with,
         * "unchecked" included (storage.h cf_version_restore). */
        if (!due && cf_now_ms() - last < CF_RESCAN_PERIOD_S * 1000ull)
            continue;
        if (!cf_coord_holds(app->store, CF_COORD_JOBS, NULL, 0))
            continue; /* cluster mode: the node holding the jobs lease rescans (docs/CLUSTER.md) */
        last = cf_now_ms();
        enum cf_status st = run_pass();
        struct cf_rescan_progress p;
        cf_rescan_progress(&p);
        /* Retried at the next signature change or start-up; a storage error, at the next poll. */
        due = st != CF_OK && st != CF_ENOTFOUND;
        if (st != CF_OK)
            cf_log_error("rescan: the pass failed (%s)", cf_status_name(st));
    }
}

void cf_rescan_start(struct cf_app *a)
{
    app = a;
    stopping = false;
    if (pthread_create(&thread, NULL, rescan_main, NULL) != 0) {
        cf_log_error("cannot start the rescan thread");
        abort();
    }
    started = true;
}

void cf_rescan_stop(void)
{
    if (!started)
        return;
    pthread_mutex_lock(&lock);
    stopping = true;
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);
    pthread_join(thread, NULL);
    started = false;
}
