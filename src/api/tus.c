/*
 * tus.c: resumable uploads, tus 1.0.0 at /api/v1/uploads (SPEC §5; docs/API.md "Resumable uploads").
 * Extensions: creation, creation-with-upload, termination, expiration, checksum (sha1, sha256).
 *
 * Storage (storage/tus.c) keeps each upload's state sealed in the column family "uploads" and its
 * bytes in sealed pending chunks; this file speaks the protocol:
 *
 *   POST   /api/v1/uploads       create (checks edit on the parent folder and the per-user caps);
 *                                with a body, also the first PATCH
 *   HEAD   /api/v1/uploads/{id}  Upload-Offset, Upload-Length, Upload-Expires (and Coffer-Node-Id
 *                                once completed)
 *   PATCH  /api/v1/uploads/{id}  append at Upload-Offset; the PATCH that completes the upload
 *                                re-checks authorisation, hashes, runs the upload-safety step
 *                                (inspect.h) and commits: 204 with Coffer-Node-Id, or the error
 *                                of SPEC §7 (the upload is then discarded)
 *   DELETE /api/v1/uploads/{id}  termination
 *   OPTIONS                      discovery (no authentication)
 *
 * The SHA-256 of the file is kept running across PATCHes (the running table below), so the
 * completing PATCH hashes only its own body; the state lives in memory only, never in the store.
 * After a restart (or an eviction from the table) the first PATCH recomputes it once from the
 * sealed chunks and tail (cf_tus_hash_prefix). Bodies count against limits.max_buffered_body_bytes
 * (budget.h) from receipt until sealed; past it a PATCH or creation body gets 503 + Retry-After.
 *
 * Only the owner sees an upload (anyone else: 404). One request at a time works on an upload: the
 * busy set below answers 423 to a second one (a client retrying while its first PATCH still runs),
 * so the bytes the scanner read are the bytes that get committed. A request body is handed to the
 * worker one chunk-sized slice at a time, copied on the loop thread while the request is alive (a
 * worker must never read req->entity, notes §2), and each slice is wiped once sealed: beside h2o's
 * buffer an upload holds one chunk, not a second copy of the body.
 *
 * The scan runs while the upload arrives when a scanner is free for it (the streaming scans below):
 * the completing PATCH then takes that scan's verdict instead of starting one.
 *
 * A completing PATCH that fails for a passing reason (scanner unavailable, I/O) leaves the upload at
 * its previous offset, so the client retries the same PATCH; one that fails for good (infected,
 * blocked, unscannable, name conflict, access lost) discards the upload, so that a HEAD says 404
 * instead of pretending the upload is complete.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acl.h"
#include "audit.h"
#include "budget.h"
#include "davguard.h"
#include "files.h"
#include "handlers.h"
#include "http.h"
#include "inspect.h"
#include "quota.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "pages.h"
#include "tus.h"
#include "validate.h"
#include "work.h"

#define TUS_VERSION "1.0.0"
#define TUS_EXTENSIONS "creation,creation-with-upload,termination,expiration,checksum"
#define OCTETS "application/offset+octet-stream"

/* ---- the busy set: uploads a request is working on ---------------------------------------------- */

#define BUSY_MAX 1024

static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static struct busy_entry {
    struct cf_id tenant, id;
} busy[BUSY_MAX];
static size_t nbusy;

/* Cluster mode (cf_tus_cluster): the store whose per-upload leases back the busy set across nodes. */
static struct cf_store *cluster_store;
#define CLAIM_TTL_MS 30000 /* renewed every CF_COORD_RENEW_MS while held; a crashed node's expires */

void cf_tus_cluster(struct cf_store *store)
{
    cluster_store = store;
}

/* The upload's lease in the cluster: tenant ‖ id. False if another node holds it or the database
 * cannot say (the request is refused as busy, and may be retried). */
static bool cluster_take(const struct cf_id *tenant, const struct cf_id *id)
{
    uint8_t k[2 * sizeof tenant->b];
    bool got = false;
    if (cluster_store == NULL)
        return true;
    memcpy(k, tenant->b, sizeof tenant->b);
    memcpy(k + sizeof tenant->b, id->b, sizeof id->b);
    enum cf_status st = cf_coord_claim(cluster_store, "tus", k, sizeof k, CLAIM_TTL_MS, &got);
    if (st != CF_OK && st != CF_ENOTFOUND)
        cf_log_warn("uploads: the upload's cluster claim failed (%s)", cf_status_name(st));
    return st == CF_ENOTFOUND || (st == CF_OK && got);
}

static void cluster_release(const struct cf_id *tenant, const struct cf_id *id)
{
    uint8_t k[2 * sizeof tenant->b];
    if (cluster_store == NULL)
        return;
    memcpy(k, tenant->b, sizeof tenant->b);
    memcpy(k + sizeof tenant->b, id->b, sizeof id->b);
    cf_coord_unclaim(cluster_store, "tus", k, sizeof k);
}

static void busy_release_local(const struct cf_id *tenant, const struct cf_id *id)
{
    pthread_mutex_lock(&busy_lock);
    for (size_t i = 0; i < nbusy; i++)
        if (cf_id_equal(&busy[i].tenant, tenant) && cf_id_equal(&busy[i].id, id)) {
            busy[i] = busy[--nbusy];
            break;
        }
    pthread_mutex_unlock(&busy_lock);
}

static bool busy_take(const struct cf_id *tenant, const struct cf_id *id)
{
    bool ok = true;
    pthread_mutex_lock(&busy_lock);
    for (size_t i = 0; i < nbusy && ok; i++)
        if (cf_id_equal(&busy[i].tenant, tenant) && cf_id_equal(&busy[i].id, id))
            ok = false;
    if (ok && nbusy == BUSY_MAX)
        ok = false;
    if (ok) {
        busy[nbusy].tenant = *tenant;
        busy[nbusy].id = *id;
        nbusy++;
    }
    pthread_mutex_unlock(&busy_lock);
    if (ok && !cluster_take(tenant, id)) {
        busy_release_local(tenant, id);
        ok = false;
    }
    return ok;
}

static void busy_release(const struct cf_id *tenant, const struct cf_id *id)
{
    cluster_release(tenant, id);
    busy_release_local(tenant, id);
}

static bool claim_take(void *ctx, const struct cf_id *tenant, const struct cf_id *id)
{
    (void)ctx;
    return busy_take(tenant, id);
}

static void claim_release(void *ctx, const struct cf_id *tenant, const struct cf_id *id)
{
    (void)ctx;
    busy_release(tenant, id);
}

static void running_drop(const struct cf_id *tenant, const struct cf_id *id);

/* An expired upload was deleted: its running hash is forgotten and a scan streaming it is cancelled
 * now (its waiting READ would otherwise hold a scanner until scan.stream_idle_seconds). */
static void claim_gone(void *ctx, const struct cf_id *tenant, const struct cf_id *id)
{
    (void)ctx;
    running_drop(tenant, id);
}

static const struct cf_tus_claim server_claim = {.take = claim_take, .release = claim_release, .gone = claim_gone};

/* ---- running hashes: the SHA-256 of each unfinished upload's bytes so far ---------------------- */

/* Sized like the busy set's worst case and then some; a full table evicts the least recently used
 * state, which the next PATCH of that upload recomputes from the store. ~250 bytes per entry. */
#define RUNNING_MAX 4096

static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static struct running {
    struct cf_id tenant, id;
    uint64_t offset;  /* bytes of the upload the state has taken in */
    uint64_t used;    /* running_tick at the last put: LRU eviction */
    struct cf_hash *h; /* NULL: free slot */
} running[RUNNING_MAX];
static size_t nrunning;
static uint64_t running_tick;

static size_t running_find(const struct cf_id *tenant, const struct cf_id *id)
{
    for (size_t i = 0; i < nrunning; i++)
        if (cf_id_equal(&running[i].id, id) && cf_id_equal(&running[i].tenant, tenant))
            return i;
    return SIZE_MAX;
}

static void running_remove_at(size_t i)
{
    cf_hash_free(running[i].h);
    running[i] = running[--nrunning];
    memset(&running[nrunning], 0, sizeof running[nrunning]);
}

/* Takes (tenant, id)'s state out of the table if it covers exactly offset bytes; NULL otherwise
 * (a stale one is dropped). The busy set makes the caller the only user of the upload. */
static struct cf_hash *running_take(const struct cf_id *tenant, const struct cf_id *id, uint64_t offset)
{
    struct cf_hash *h = NULL;
    pthread_mutex_lock(&running_lock);
    size_t i = running_find(tenant, id);
    if (i != SIZE_MAX) {
        if (running[i].offset == offset) {
            h = running[i].h;
            running[i].h = NULL;
        }
        running_remove_at(i);
    }
    pthread_mutex_unlock(&running_lock);
    return h;
}

/* Keeps h (now owned by the table) as (tenant, id)'s state after offset bytes. */
static void running_put(const struct cf_id *tenant, const struct cf_id *id, uint64_t offset, struct cf_hash *h)
{
    pthread_mutex_lock(&running_lock);
    size_t i = running_find(tenant, id);
    if (i != SIZE_MAX)
        running_remove_at(i);
    if (nrunning == RUNNING_MAX) {
        size_t lru = 0;
        for (size_t k = 1; k < nrunning; k++)
            if (running[k].used < running[lru].used)
                lru = k;
        running_remove_at(lru);
    }
    running[nrunning++] = (struct running){*tenant, *id, offset, ++running_tick, h};
    pthread_mutex_unlock(&running_lock);
}

static void stream_drop(const struct cf_id *tenant, const struct cf_id *id);

/* Forgets (tenant, id)'s state, and cancels a scan running alongside it: the upload was committed,
 * discarded or terminated. */
static void running_drop(const struct cf_id *tenant, const struct cf_id *id)
{
    pthread_mutex_lock(&running_lock);
    size_t i = running_find(tenant, id);
    if (i != SIZE_MAX)
        running_remove_at(i);
    pthread_mutex_unlock(&running_lock);
    stream_drop(tenant, id);
}

/* ---- streaming scans: scanning an upload while it arrives (DESIGN.md) ------------------------------
 *
 * When a body starts being stored and the upload has no scan, one is attached if a scanner is free
 * for it (cf_scan_submit_stream: at most K-1 of K scanners stream). The scanner's READs are answered
 * from the sealed chunks: those below the stored offset (tus appends only, at that offset: they
 * cannot change) and those the body in progress has written (withdrawn, voiding the scan, if that
 * body is not stored in the end: a retry may bring other bytes); a READ of bytes not there yet
 * waits. The completing PATCH makes every chunk readable and takes the verdict instead of scanning.
 * A client that sends nothing for scan.stream_idle_seconds, a terminated upload or a stopping server
 * cancels the scan (the waiting READ gets no data: the scanner fails the scan and stays up): the
 * entry stays as a tombstone, so the upload is scanned after completion like any other and never
 * gets a second streaming scan in this process.
 * Only a clean or infected verdict is used; an unscannable one (libclamav's own clock counted the
 * wait for the client) or an error falls back to the scan after completion. */

#define STREAM_MAX 64        /* entries (running, finished or tombstones); finished ones are evicted */
#define STREAM_WAIT_MS 250   /* a waiting READ checks the idle clock and the shutdown this often */

struct stream {
    struct cf_id tenant, id;
    uint64_t size;           /* Upload-Length */
    uint64_t avail;          /* bytes the scan may read: whole chunks before the stored offset; all at completion */
    uint64_t progress_ms;    /* monotonic: when bytes of the upload last arrived */
    uint64_t idle_ms;
    uint64_t used;           /* stream_tick at attach: eviction order */
    bool running;            /* the scan job has not finished */
    bool cancelled;          /* its verdict, if any, is not used */
    struct cf_inspection *waiter; /* the completing PATCH's step, waiting for the verdict */
    /* the scan thread's alone: */
    struct cf_upload *up;    /* reads the sealed chunks back */
    uint8_t *chunk;          /* plaintext of one chunk (wiped when freed) */
    size_t chunk_len;
    uint32_t chunk_index;
    bool cached;
    struct cf_scan_job job;
};

static pthread_mutex_t stream_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stream_cond = PTHREAD_COND_INITIALIZER;
static struct stream *streams[STREAM_MAX];
static size_t nstreams;
static uint64_t stream_tick;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t stream_find(const struct cf_id *tenant, const struct cf_id *id)
{
    for (size_t i = 0; i < nstreams; i++)
        if (cf_id_equal(&streams[i]->id, id) && cf_id_equal(&streams[i]->tenant, tenant))
            return i;
    return SIZE_MAX;
}

static void stream_unlink_at(size_t i)
{
    streams[i] = streams[--nstreams];
    streams[nstreams] = NULL;
}

static void stream_release_reader(struct stream *e)
{
    cf_upload_free(e->up);
    e->up = NULL;
    cf_free_secret(e->chunk, CF_CHUNK_SIZE);
    e->chunk = NULL;
    e->cached = false;
}

/* The verdict decides the upload (else it is scanned after completion). */
static bool stream_usable(const struct stream *e)
{
    return !e->cancelled && e->job.status == CF_OK &&
           (e->job.verdict.result == CF_SCAN_CLEAN || e->job.verdict.result == CF_SCAN_INFECTED);
}

/* Waits (stream_lock held) until need bytes may be read, the client has been idle too long or the
 * scanners stop. false: cancelled. */
static bool stream_wait(struct stream *e, uint64_t need)
{
    while (!e->cancelled && e->avail < need) {
        uint64_t now = mono_ms();
        bool stopping = cf_scan_stopping();
        if (stopping || now - e->progress_ms >= e->idle_ms) {
            if (!stopping)
                cf_log_info("uploads: no bytes for %llu s: the scan running alongside an upload is cancelled; the "
                            "upload will be scanned once complete",
                            (unsigned long long)(e->idle_ms / 1000));
            e->cancelled = true;
            break;
        }
        struct timespec ts;
        cf_deadline(CLOCK_REALTIME, STREAM_WAIT_MS * 1000000u, &ts);
        pthread_cond_timedwait(&stream_cond, &stream_lock, &ts);
        e->job.waited_ms += mono_ms() - now;
    }
    return !e->cancelled;
}

/* The scanner's READ (scan thread): waits for the bytes, then reads them from the sealed chunks. */
static enum cf_status stream_read(void *ctx, uint64_t offset, void *buf, size_t len)
{
    struct stream *e = ctx;
    uint8_t *out = buf;
    pthread_mutex_lock(&stream_lock);
    bool ok = stream_wait(e, offset + len);
    pthread_mutex_unlock(&stream_lock);
    if (!ok)
        return CF_EUNAVAIL;
    while (len > 0) {
        uint32_t index = (uint32_t)(offset / CF_CHUNK_SIZE);
        size_t within = (size_t)(offset % CF_CHUNK_SIZE);
        if (!e->cached || e->chunk_index != index) {
            if (e->chunk == NULL && (e->chunk = cf_try_malloc(CF_CHUNK_SIZE)) == NULL)
                return CF_EIO;
            e->cached = false;
            enum cf_status st = cf_upload_read_chunk(e->up, e->size, index, e->chunk, &e->chunk_len);
            if (st != CF_OK)
                return st;
            e->cached = true;
            e->chunk_index = index;
        }
        if (within >= e->chunk_len)
            return CF_ECORRUPT;
        size_t n = e->chunk_len - within < len ? e->chunk_len - within : len;
        memcpy(out, e->chunk + within, n);
        out += n;
        offset += n;
        len -= n;
    }
    return CF_OK;
}

/* The completion takes the verdict: from the stream, or from a scan after completion. */
static void stream_decide(struct stream *e, struct cf_inspection *in)
{
    if (stream_usable(e)) {
        cf_metrics_scan(CF_OK, e->job.verdict.result);
        cf_metrics_scan_stream(true);
        cf_inspect_verdict(in, &e->job);
    } else {
        cf_inspect(in);
    }
}

/* The scan finished (scan thread): hands the verdict to a waiting completion, or keeps it (or the
 * tombstone of a cancelled scan) for the completion to come. */
static void stream_done(struct cf_scan_job *job)
{
    struct stream *e = (struct stream *)(void *)((char *)job - offsetof(struct stream, job));
    stream_release_reader(e);
    pthread_mutex_lock(&stream_lock);
    e->running = false;
    if (e->job.status != CF_OK)
        e->cancelled = true;
    bool usable = stream_usable(e);
    struct cf_inspection *w = e->waiter;
    e->waiter = NULL;
    bool linked = false;
    for (size_t i = 0; i < nstreams; i++)
        if (streams[i] == e) {
            if (w != NULL)
                stream_unlink_at(i);
            else
                linked = true;
            break;
        }
    pthread_mutex_unlock(&stream_lock);
    if (!usable)
        cf_metrics_scan_stream(false);
    if (w != NULL)
        stream_decide(e, w);
    if (!linked)
        free(e);
}

/* Room for one more entry (stream_lock held): evicts the oldest finished one. */
static bool stream_room(void)
{
    if (nstreams < STREAM_MAX)
        return true;
    size_t old = SIZE_MAX;
    for (size_t i = 0; i < nstreams; i++)
        if (!streams[i]->running && (old == SIZE_MAX || streams[i]->used < streams[old]->used))
            old = i;
    if (old == SIZE_MAX)
        return false;
    free(streams[old]);
    stream_unlink_at(old);
    return true;
}

/* A slice of a body is written (worker): the idle clock starts again, and the whole chunks below
 * pos (written, not yet durable) may be read. Should the body not be stored in the end, stream_unwritten
 * withdraws them. */
static void stream_fed(const struct cf_id *tenant, const struct cf_id *id, uint64_t pos)
{
    uint64_t avail = pos - pos % CF_CHUNK_SIZE;
    pthread_mutex_lock(&stream_lock);
    size_t i = stream_find(tenant, id);
    if (i != SIZE_MAX) {
        struct stream *e = streams[i];
        e->progress_ms = mono_ms();
        if (avail > e->avail) {
            e->avail = avail;
            pthread_cond_broadcast(&stream_cond);
        }
    }
    pthread_mutex_unlock(&stream_lock);
}

/* A body was not stored (worker, before the upload's busy entry goes): if the scan may have read
 * chunks it wrote, which a retry rewrites with whatever bytes it brings, its verdict is void and the
 * upload is scanned after completion (the entry stays a tombstone). */
static void stream_unwritten(const struct cf_tus *t)
{
    uint64_t kept = t->offset - t->offset % CF_CHUNK_SIZE;
    pthread_mutex_lock(&stream_lock);
    size_t i = stream_find(&t->tenant, &t->id);
    struct stream *e = i != SIZE_MAX ? streams[i] : NULL;
    bool counted = false;
    if (e != NULL && e->avail > kept) {
        counted = !e->running && stream_usable(e); /* a running one is counted by stream_done */
        e->cancelled = true;
        e->avail = kept;
        pthread_cond_broadcast(&stream_cond);
    }
    pthread_mutex_unlock(&stream_lock);
    if (counted)
        cf_metrics_scan_stream(false);
}

/* A body is about to be stored at t->offset (worker): the first one attaches a scan if a scanner is
 * free; the whole chunks below the stored offset may be read at once. */
static void stream_attach(struct cf_store *store, const struct cf_config *cfg, const struct cf_tus *t)
{
    uint64_t avail = t->offset - t->offset % CF_CHUNK_SIZE;
    if (!cfg->scan.stream || t->length == 0)
        return;
    pthread_mutex_lock(&stream_lock);
    size_t i = stream_find(&t->tenant, &t->id);
    if (i != SIZE_MAX)
        streams[i]->progress_ms = mono_ms();
    pthread_mutex_unlock(&stream_lock);
    if (i != SIZE_MAX)
        return;
    struct stream *e = cf_xcalloc(1, sizeof *e);
    if (cf_tus_writer(store, t, &e->up) != CF_OK) {
        free(e);
        return;
    }
    e->tenant = t->tenant;
    e->id = t->id;
    e->size = t->length;
    e->avail = avail;
    e->idle_ms = (uint64_t)cfg->scan.stream_idle_seconds * 1000;
    e->progress_ms = mono_ms();
    e->running = true;
    e->job.size = t->length;
    e->job.read = stream_read;
    e->job.ctx = e;
    e->job.done = stream_done;
    /* The busy set makes this request the upload's only user: no other attach can race this one. */
    pthread_mutex_lock(&stream_lock);
    bool ok = stream_room();
    if (ok) {
        e->used = ++stream_tick;
        ok = cf_scan_submit_stream(&e->job);
    }
    if (ok)
        streams[nstreams++] = e; /* before the lock goes: stream_done looks for it under the lock */
    pthread_mutex_unlock(&stream_lock);
    if (!ok) {
        stream_release_reader(e);
        free(e);
    }
}

/* The completing PATCH is stored (worker): if a scan ran alongside the upload, every chunk becomes
 * readable and the completion takes its verdict (now, or from stream_done); true then, false if the
 * upload is to be scanned now. */
static bool stream_complete(const struct cf_tus *t, struct cf_inspection *in)
{
    pthread_mutex_lock(&stream_lock);
    size_t i = stream_find(&t->tenant, &t->id);
    if (i == SIZE_MAX) {
        pthread_mutex_unlock(&stream_lock);
        return false;
    }
    struct stream *e = streams[i];
    if (e->running && !e->cancelled && e->size == t->length) {
        e->avail = e->size;
        e->waiter = in;
        pthread_cond_broadcast(&stream_cond);
        pthread_mutex_unlock(&stream_lock);
        return true;
    }
    stream_unlink_at(i);
    if (e->running) { /* cancelled, not finished yet: stream_done frees it, unlinked */
        pthread_mutex_unlock(&stream_lock);
        return false;
    }
    pthread_mutex_unlock(&stream_lock);
    bool usable = stream_usable(e);
    if (usable)
        stream_decide(e, in);
    free(e);
    return usable;
}

/* The upload is gone (terminated, discarded, committed): a running scan is cancelled. */
static void stream_drop(const struct cf_id *tenant, const struct cf_id *id)
{
    pthread_mutex_lock(&stream_lock);
    size_t i = stream_find(tenant, id);
    struct stream *e = i != SIZE_MAX ? streams[i] : NULL;
    if (e != NULL) {
        stream_unlink_at(i);
        e->cancelled = true;
        pthread_cond_broadcast(&stream_cond);
        if (e->running)
            e = NULL; /* stream_done frees it */
    }
    pthread_mutex_unlock(&stream_lock);
    free(e);
}

const struct cf_tus_claim *cf_tus_claim_server(void)
{
    return &server_claim;
}

void cf_tus_expire_now(struct cf_store *store)
{
    uint64_t purged = 0;
    if (cf_tus_expire(store, cf_now_ms(), &server_claim, &purged) != CF_OK)
        cf_log_error("uploads: expiring unfinished uploads failed; retrying at the next round");
    else if (purged > 0)
        cf_log_info("uploads: %llu expired resumable upload(s) deleted", (unsigned long long)purged);
}

/* ---- headers ---------------------------------------------------------------------------------- */

static void add_u64(struct cf_req *r, const char *name, uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    cf_add_header_str(r, name, b);
}

static void add_expires(struct cf_req *r, uint64_t ms)
{
    char b[H2O_TIMESTR_RFC1123_LEN + 1];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    h2o_time2str_rfc1123(b, &tm);
    cf_add_header_str(r, "upload-expires", b);
}

/* Every tus response names the protocol version; 412 if the request speaks another one. */
static bool version_or_respond(struct cf_req *r)
{
    cf_add_header_str(r, "tus-resumable", TUS_VERSION);
    h2o_iovec_t v = cf_header(r, "tus-resumable");
    if (v.base != NULL && h2o_memis(v.base, v.len, H2O_STRLIT(TUS_VERSION)))
        return true;
    cf_add_header_str(r, "tus-version", TUS_VERSION);
    cf_respond_error(r, 412, "unsupported_version",
                     v.base == NULL ? "send Tus-Resumable: 1.0.0" : "this server speaks tus 1.0.0 only");
    return false;
}

/* An unsigned decimal header; false (and answered 400) if present and malformed. */
static bool u64_header_or_respond(struct cf_req *r, const char *name, uint64_t *out, bool *present)
{
    h2o_iovec_t v = cf_header(r, name);
    *present = v.base != NULL;
    if (!*present)
        return true;
    if (cf_parse_u64(v.base, v.len, CF_TUS_U64_MAX, out) != CF_OK) {
        char m[96];
        snprintf(m, sizeof m, "%s must be a non-negative decimal integer", name);
        cf_respond_status(r, CF_EINVAL, m);
        return false;
    }
    return true;
}

static bool is_octets(struct cf_req *r)
{
    h2o_iovec_t ct = cf_header(r, "content-type");
    return ct.base != NULL && h2o_memis(ct.base, ct.len, H2O_STRLIT(OCTETS));
}

/* Upload-Checksum: "sha1 BASE64" or "sha256 BASE64". */
enum cf_status cf_tus_checksum_parse(const char *v, size_t n, struct cf_tus_checksum *c)
{
    memset(c, 0, sizeof *c);
    const char *sp = memchr(v, ' ', n);
    size_t al = sp != NULL ? (size_t)(sp - v) : n;
    size_t want;
    if (h2o_memis(v, al, H2O_STRLIT("sha1"))) {
        c->alg = CF_HASH_SHA1;
        want = 20;
    } else if (h2o_memis(v, al, H2O_STRLIT("sha256"))) {
        c->alg = CF_HASH_SHA256;
        want = 32;
    } else {
        return CF_EMEDIA;
    }
    if (sp == NULL || cf_b64_decode(sp + 1, n - al - 1, c->digest, sizeof c->digest, &c->len) != CF_OK ||
        c->len != want)
        return CF_EINVAL;
    return CF_OK;
}

struct checksum {
    bool present;
    struct cf_tus_checksum c;
};

static bool checksum_or_respond(struct cf_req *r, struct checksum *c)
{
    h2o_iovec_t v = cf_header(r, "upload-checksum");
    memset(c, 0, sizeof *c);
    if (v.base == NULL)
        return true;
    enum cf_status st = cf_tus_checksum_parse(v.base, v.len, &c->c);
    if (st == CF_EMEDIA) {
        cf_respond_error(r, 400, "unsupported_checksum", "Upload-Checksum: the algorithm must be sha1 or sha256");
        return false;
    }
    if (st != CF_OK) {
        cf_respond_status(r, CF_EINVAL, "Upload-Checksum: expected the algorithm, a space and the base64 digest");
        return false;
    }
    c->present = true;
    return true;
}

enum cf_status cf_tus_metadata_parse(const char *v, size_t n, struct cf_tus_metadata *m, char *why, size_t cap)
{
    bool have_name = false, have_parent = false;
    char seen[16][32];
    size_t nseen = 0;
    memset(m, 0, sizeof *m);
    if (n > CF_TUS_METADATA_MAX) {
        snprintf(why, cap, "%s", "Upload-Metadata is too long");
        return CF_EINVAL;
    }
    const char *p = v, *end = v + n;
    while (p < end) {
        const char *pe = memchr(p, ',', (size_t)(end - p));
        if (pe == NULL)
            pe = end;
        while (p < pe && *p == ' ')
            p++;
        const char *sp = memchr(p, ' ', (size_t)(pe - p));
        const char *ke = sp != NULL ? sp : pe;
        size_t kl = (size_t)(ke - p);
        if (kl == 0 || kl >= sizeof seen[0] || nseen == sizeof seen / sizeof seen[0]) {
            snprintf(why, cap, "%s", "Upload-Metadata: every pair needs a key (at most 31 bytes, 16 pairs)");
            return CF_EINVAL;
        }
        for (size_t i = 0; i < kl; i++)
            if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f) {
                snprintf(why, cap, "%s", "Upload-Metadata: keys are printable ASCII");
                return CF_EINVAL;
            }
        for (size_t i = 0; i < nseen; i++)
            if (strlen(seen[i]) == kl && memcmp(seen[i], p, kl) == 0) {
                snprintf(why, cap, "%s", "Upload-Metadata: a key appears twice");
                return CF_EINVAL;
            }
        memcpy(seen[nseen], p, kl);
        seen[nseen++][kl] = '\0';
        uint8_t val[CF_TUS_METADATA_MAX];
        size_t vl = 0;
        if (sp != NULL && cf_b64_decode(sp + 1, (size_t)(pe - sp - 1), val, sizeof val, &vl) != CF_OK) {
            snprintf(why, cap, "%s", "Upload-Metadata: values must be base64");
            return CF_EINVAL;
        }
        if (h2o_memis(p, kl, H2O_STRLIT("filename"))) {
            const char *bad = cf_name_check((const char *)val, vl);
            if (bad != NULL) {
                snprintf(why, cap, "Upload-Metadata: filename: %s", bad);
                return CF_EINVAL;
            }
            memcpy(m->name, val, vl);
            m->name[vl] = '\0';
            m->name_len = vl;
            have_name = true;
        } else if (h2o_memis(p, kl, H2O_STRLIT("parent"))) {
            if (cf_id_parse((const char *)val, vl, &m->parent) != CF_OK) {
                snprintf(why, cap, "%s", "Upload-Metadata: parent must be a folder id");
                return CF_EINVAL;
            }
            have_parent = true;
        } else if (h2o_memis(p, kl, H2O_STRLIT("on_conflict"))) {
            if (h2o_memis(val, vl, H2O_STRLIT("fail")))
                m->on_conflict = CF_CONFLICT_FAIL;
            else if (h2o_memis(val, vl, H2O_STRLIT("rename")))
                m->on_conflict = CF_CONFLICT_RENAME;
            else if (h2o_memis(val, vl, H2O_STRLIT("replace")))
                m->on_conflict = CF_CONFLICT_REPLACE;
            else {
                snprintf(why, cap, "%s", "Upload-Metadata: on_conflict must be fail, rename or replace");
                return CF_EINVAL;
            }
        }
        p = pe + 1;
    }
    if (!have_name || !have_parent) {
        snprintf(why, cap, "%s", "Upload-Metadata must carry filename and parent");
        return CF_EINVAL;
    }
    return CF_OK;
}

static bool metadata_or_respond(struct cf_req *r, h2o_iovec_t v, struct cf_tus_metadata *m)
{
    char why[160];
    if (cf_tus_metadata_parse(v.base, v.len, m, why, sizeof why) != CF_OK) {
        cf_respond_status(r, CF_EINVAL, why);
        return false;
    }
    return true;
}

/* ---- the job ---------------------------------------------------------------------------------- */

enum tus_kind { TUS_CREATE, TUS_PATCH, TUS_DELETE };

struct tus_job {
    struct cf_job job;
    struct cf_req *r;          /* watched: NULL once the client is gone */
    enum tus_kind kind;
    enum cf_status st;
    int http;                  /* a protocol error outside the status enum (409, 423, 460...): */
    const char *code;          /*   its code and message */
    const char *message;
    struct cf_tus t;           /* the upload (create: filled from the request) */
    struct cf_id id;
    bool busy;                 /* holds (tenant, id) in the busy set */
    uint64_t offset;           /* PATCH: the client's Upload-Offset */
    size_t n;                  /* bytes in the request body (h2o's buffer, read on the loop only) */
    size_t budget;             /* bytes of limits.max_buffered_body_bytes this job holds (budget.h) */
    /* the body, one chunk-sized slice at a time: the loop copies slice k from the request while it
     * is alive, a worker hashes, seals and writes it (a worker never reads req->entity) */
    uint8_t *slice;            /* CF_CHUNK_SIZE bytes (wiped when freed); NULL until needed */
    size_t slice_len;
    size_t fed;                /* body bytes handed to workers so far */
    bool want_slice;           /* run asks the loop for the next slice */
    struct cf_tus_appender *ap; /* the append in progress */
    struct cf_hash *h0;        /* the running hash at the upload's offset before this body */
    struct cf_hash *h;         /* ... carried through the slices fed so far */
    struct cf_hash *sumh;      /* Upload-Checksum's hash of the body so far */
    struct checksum sum;
    bool created;              /* create: the upload exists (answer 201 even if the body failed) */
    bool completing;           /* the body completes the upload */
    bool inspected;            /* the upload-safety step decided */
    bool rejected;             /* ... against it (insp.st) */
    bool committed;
    struct cf_upload *up;
    uint8_t sha256[CF_SHA256_LEN];
    struct cf_inspection insp;
    struct cf_uploader as;     /* the requester */
    struct cf_quota quota;     /* the tenant's limits, read at the commit (quota.h) */
    struct cf_quota_refusal refused; /* the commit was over quota (CF_EQUOTA) */
    struct cf_node out;
    struct cf_event *ev;       /* actor, address and agent of the request: a template */
};

static void job_free(struct tus_job *j)
{
    if (j->ap != NULL) /* a body begun and not stored: before another request may retry it */
        stream_unwritten(&j->t);
    if (j->busy)
        busy_release(&j->as.who.tenant, &j->id);
    cf_upload_free(j->up);
    cf_inspection_clear(&j->insp);
    if (j->h0 != NULL) /* the body was not stored: the state before it is still right */
        running_put(&j->as.who.tenant, &j->id, j->t.offset, j->h0);
    cf_tus_append_free(j->ap);
    cf_hash_free(j->h);
    cf_hash_free(j->sumh);
    cf_free_secret(j->slice, CF_CHUNK_SIZE);
    cf_body_budget_release(j->budget);
    cf_uploader_clear(&j->as);
    cf_node_clear(&j->out);
    cf_tus_clear(&j->t);
    cf_event_free(j->ev);
    free(j);
}

static void fail(struct tus_job *j, int http, const char *code, const char *message)
{
    j->http = http;
    j->code = code;
    j->message = message;
    j->st = CF_EINVAL;
}

/* An event like the request's template (actor, address, agent). */
static struct cf_event *event(struct tus_job *j, const char *action, const char *result)
{
    struct cf_event *e = cf_event_new(&j->as.who.tenant, action, result);
    e->actor_type = j->ev->actor_type;
    e->actor = j->ev->actor;
    e->actor_name = j->ev->actor_name != NULL ? cf_xstrdup(j->ev->actor_name) : NULL;
    memcpy(e->ip, j->ev->ip, sizeof e->ip);
    e->user_agent = j->ev->user_agent != NULL ? cf_xstrdup(j->ev->user_agent) : NULL;
    return e;
}

/* An upload event against the folder it is meant for. */
static void upload_event(struct tus_job *j, const char *action, const char *result, const char *reason)
{
    struct cf_event *e = event(j, action, result);
    struct cf_node folder;
    char idhex[CF_ID_HEX_LEN + 1];
    if (cf_node_get(j->as.who.app->store, &j->as.who.tenant, &j->t.parent, &folder) == CF_OK) {
        cf_event_node(e, &folder);
        cf_node_clear(&folder);
    }
    cf_id_hex(&j->t.id, idhex);
    cf_event_detail(e, "upload", json_string(idhex));
    cf_event_detail(e, "name", json_string(j->t.name));
    cf_event_detail(e, "size", json_integer((json_int_t)j->t.length));
    cf_event_detail(e, "via", json_string("tus"));
    if (reason != NULL)
        cf_event_detail(e, "reason", json_string(reason));
    if (j->inspected && j->rejected) {
        char sha[2 * CF_SHA256_LEN + 1];
        cf_hex_encode(j->sha256, CF_SHA256_LEN, sha);
        cf_event_detail(e, "sha256", json_string(sha));
        cf_inspect_event(&j->insp, e);
    }
    if (cf_audit_submit_wait(e, NULL) != CF_OK)
        cf_log_error("uploads: an %s event could not be recorded", action);
}

/* Discards the upload for good after a final refusal. */
static void discard(struct tus_job *j, const char *reason)
{
    cf_hash_free(j->h0);
    j->h0 = NULL;
    running_drop(&j->t.tenant, &j->t.id);
    if (cf_tus_delete(j->as.who.app->store, &j->t.tenant, &j->t.id) != CF_OK)
        cf_log_error("uploads: a refused upload could not be deleted; it expires on its own");
    if (!j->rejected)
        upload_event(j, "upload.rejected", reason, reason);
}

static void inspected(struct cf_inspection *in)
{
    struct tus_job *j = in->ctx;
    j->inspected = true;
    cf_work_submit(&j->job);
}

/* After the verdict (worker): commit, or refuse and discard. */
static void finish(struct tus_job *j)
{
    cf_inspection_clear(&j->insp);
    if (j->insp.st != CF_OK) {
        j->st = j->insp.st;
        if (j->insp.st == CF_EUNAVAIL || j->insp.st == CF_EIO)
            return; /* passing: the upload stays at its previous offset; the client retries */
        j->rejected = true;
        upload_event(j, "upload.rejected", cf_status_name(j->insp.st), cf_status_name(j->insp.st));
        discard(j, NULL);
        return;
    }
    struct cf_commit c = {
        .parent = j->t.parent,
        .name = j->t.name,
        .name_len = strlen(j->t.name),
        .on_conflict = j->t.on_conflict,
        .uploader = j->as.who.id,
        .size = j->t.length,
        .mime = j->insp.mime,
        .scan = &j->insp.scan,
        .may_replace = cf_uploader_may_replace,
        .ctx = &j->as,
        .tus = &j->t,
        .quota = &j->quota,
        .refused = &j->refused,
    };
    cf_quota_of(j->as.who.app->store, &j->as.who.tenant, &j->quota);
    memcpy(c.sha256, j->sha256, CF_SHA256_LEN);
    j->st = cf_upload_commit(j->up, &c, &j->out);
    /* Over quota at the commit (another upload got there first): refused for good, like a conflict. */
    if (j->st == CF_EEXIST || j->st == CF_EDENIED || j->st == CF_ENOTFOUND || j->st == CF_EQUOTA) {
        discard(j, cf_status_name(j->st));
        j->message = j->st == CF_EEXIST ? "a node with this name already exists in the folder"
                     : j->st == CF_EDENIED ? "your access level does not allow replacing this file"
                                           : NULL;
        return;
    }
    if (j->st != CF_OK)
        return;
    j->committed = true;
    cf_hash_free(j->h0);
    j->h0 = NULL;
    running_drop(&j->t.tenant, &j->t.id);
    struct cf_event *e = event(j, "file.upload", "ok");
    char idhex[CF_ID_HEX_LEN + 1];
    cf_id_hex(&j->t.id, idhex);
    cf_upload_event_committed(e, &j->out);
    cf_event_detail(e, "via", json_string("tus"));
    cf_event_detail(e, "upload", json_string(idhex));
    j->st = cf_audit_submit_wait(e, NULL);
    /* Its pages, in the background (render threads): never part of this answer (pages.h). */
    if (j->st == CF_OK && j->as.who.app->cfg->render.enabled)
        cf_pages_prepare(j->as.who.app->store, &j->out.tenant, &j->out.id, j->out.version, j->out.mime);
}

/* Starts storing the body at the upload's offset: the appender, the Upload-Checksum hash and the
 * running SHA-256 at this offset (recomputed from the store first if this process has none for it:
 * a restart or an eviction). false: failed (j->st). */
static bool body_begin(struct tus_job *j)
{
    struct cf_store *store = j->as.who.app->store;
    struct cf_hash *h = running_take(&j->t.tenant, &j->t.id, j->t.offset);
    if (h == NULL) {
        h = cf_hash_new(CF_HASH_SHA256);
        if (j->t.offset > 0 && (j->st = cf_tus_hash_prefix(store, &j->t, h)) != CF_OK) {
            cf_hash_free(h);
            return false;
        }
    }
    j->h0 = h; /* job_free puts it back unless the body is stored */
    j->h = cf_hash_copy(h);
    if (j->sum.present)
        j->sumh = cf_hash_new(j->sum.c.alg);
    if ((j->st = cf_tus_append_begin(store, &j->t, j->n, &j->ap)) != CF_OK)
        return false;
    if (j->n > 0)
        stream_attach(store, j->as.who.app->cfg, &j->t);
    return true;
}

/* The body is all fed: checks Upload-Checksum, writes the new state and moves the running hash on
 * (the completing body: the digest to j->sha256, the state kept at the previous offset for a retry
 * after a passing failure, and the writer opened for the upload-safety step). The budget is given
 * back once the body is sealed. true if the job goes on to the upload-safety step. */
static bool body_end(struct tus_job *j)
{
    struct cf_store *store = j->as.who.app->store;
    if (j->sumh != NULL) {
        uint8_t d[CF_SHA256_LEN];
        size_t dl = cf_hash_final(j->sumh, d);
        if (dl != j->sum.c.len || !cf_ct_equal(d, j->sum.c.digest, dl)) {
            fail(j, 460, "checksum_mismatch", "the body does not match Upload-Checksum; nothing was stored");
            return false;
        }
    }
    if ((j->st = cf_tus_append_end(j->ap, &j->t, j->as.who.app->cfg->uploads.expire_after_s * 1000)) != CF_OK)
        return false;
    cf_tus_append_free(j->ap);
    j->ap = NULL;
    cf_body_budget_release(j->budget);
    j->budget = 0;
    if (j->completing) {
        cf_hash_final(j->h, j->sha256);
        cf_hash_free(j->h);
        j->h = NULL;
        return (j->st = cf_tus_writer(store, &j->t, &j->up)) == CF_OK; /* h0 goes back in job_free */
    }
    running_put(&j->t.tenant, &j->t.id, j->t.offset, j->h);
    j->h = NULL;
    cf_hash_free(j->h0);
    j->h0 = NULL;
    return false;
}

/* Starts the upload-safety step on the stored upload. */
static void inspect(struct tus_job *j)
{
    j->insp.app = j->as.who.app;
    j->insp.up = j->up;
    j->insp.size = j->t.length;
    j->insp.tenant = j->as.who.tenant;
    j->insp.done = inspected;
    j->insp.ctx = j;
    if (!stream_complete(&j->t, &j->insp)) /* nothing may touch j once the verdict can arrive */
        cf_inspect(&j->insp);
}

/* One slice from the loop (worker): into both hashes and the appender; after the last, the end.
 * false: the job continues through inspected(). */
static bool body_slice(struct tus_job *j)
{
    if (j->sumh != NULL)
        cf_hash_update(j->sumh, j->slice, j->slice_len);
    cf_hash_update(j->h, j->slice, j->slice_len);
    j->st = cf_tus_append_feed(j->ap, j->slice, j->slice_len);
    cf_wipe(j->slice, j->slice_len);
    if (j->st != CF_OK)
        return true;
    stream_fed(&j->t.tenant, &j->t.id, j->t.offset + j->fed);
    if (j->fed < j->n) {
        j->want_slice = true;
        return true;
    }
    if (!body_end(j))
        return true;
    inspect(j);
    return false;
}

/* Checks the body against the upload and starts storing it: the slices follow from the loop (or,
 * for an empty body, the end at once). false: the job continues through inspected(). */
static bool append(struct tus_job *j)
{
    if (j->offset != j->t.offset) {
        fail(j, 409, "offset_mismatch", "Upload-Offset differs from the upload's offset: HEAD it and resume there");
        return true;
    }
    if (j->n > j->t.length - j->t.offset) {
        fail(j, 400, "bad_request", "the body goes past Upload-Length");
        return true;
    }
    j->completing = j->t.offset + j->n == j->t.length;
    if (j->completing) {
        /* Permissions may have changed since the creation: the uploader needs edit on the folder now. */
        struct cf_node pn;
        enum cf_level level;
        enum cf_status st = cf_acl_level(&j->as.who, &j->t.parent, &pn, &level);
        if (st == CF_OK) {
            bool folder = pn.type == CF_NODE_FOLDER;
            cf_node_clear(&pn);
            st = level == CF_LEVEL_NONE || !folder ? CF_ENOTFOUND : level < CF_LEVEL_EDIT ? CF_EDENIED : CF_OK;
        }
        if (st == CF_ENOTFOUND || st == CF_EDENIED) {
            j->st = st;
            discard(j, cf_status_name(st));
            j->message = st == CF_EDENIED ? "you may no longer upload into this folder; the upload was discarded"
                                          : NULL;
            return true;
        }
        if ((j->st = st) != CF_OK)
            return true;
    }
    if (!body_begin(j))
        return true;
    if (j->n > 0) {
        j->want_slice = true;
        return true;
    }
    if (!body_end(j))
        return true;
    inspect(j);
    return false;
}

/* Loads the upload named by the request: 404 unless it exists and is the requester's. */
static bool load(struct tus_job *j)
{
    j->st = cf_tus_get(j->as.who.app->store, &j->as.who.tenant, &j->id, &j->t);
    if (j->st == CF_OK && !cf_id_equal(&j->t.owner, &j->as.who.id)) {
        cf_tus_clear(&j->t);
        j->st = CF_ENOTFOUND;
    }
    if (j->st != CF_OK)
        return false;
    if (!j->t.completed && j->t.expires_at <= cf_now_ms()) {
        fail(j, 410, "upload_expired", "this upload expired; start a new one");
        return false;
    }
    return true;
}

static bool tus_run(struct cf_job *job)
{
    struct tus_job *j = (struct tus_job *)(void *)job;
    if (j->inspected) {
        finish(j);
        return true;
    }
    if (j->ap != NULL)
        return body_slice(j);
    switch (j->kind) {
    case TUS_CREATE: {
        size_t count;
        uint64_t bytes;
        const struct cf_config *cfg = j->as.who.app->cfg;
        if ((j->st = cf_tus_usage(j->as.who.app->store, &j->as.who.tenant, &j->as.who.id, cf_now_ms(), &count,
                                  &bytes)) != CF_OK)
            return true;
        if (count >= cfg->uploads.max_pending) {
            fail(j, 429, "too_many_uploads",
                 "you have too many unfinished uploads: finish or terminate some (they also expire)");
            return true;
        }
        if (bytes + j->t.length > cfg->uploads.max_pending_bytes) {
            fail(j, 429, "too_many_uploads",
                 "your unfinished uploads would exceed the size allowed: finish or terminate some");
            return true;
        }
        j->t.owner = j->as.who.id;
        j->t.tenant = j->as.who.tenant;
        if ((j->st = cf_tus_create(j->as.who.app->store, &j->t, cfg->uploads.expire_after_s * 1000)) != CF_OK)
            return true;
        j->created = true;
        j->id = j->t.id;
        upload_event(j, "upload.start", "ok", NULL);
        if (j->n == 0 && j->t.length != 0)
            return true;
        j->offset = 0;
        return append(j); /* creation-with-upload, or an empty file (complete at once) */
    }
    case TUS_PATCH:
        if (!load(j))
            return true;
        if (j->t.completed) {
            if (j->offset != j->t.offset || j->n != 0)
                fail(j, 409, "offset_mismatch", "this upload is complete");
            return true;
        }
        return append(j);
    case TUS_DELETE:
        if (!load(j) && j->http != 410)
            return true;
        j->http = 0;
        running_drop(&j->t.tenant, &j->t.id);
        j->st = cf_tus_delete(j->as.who.app->store, &j->t.tenant, &j->t.id);
        if (j->st == CF_OK && !j->t.completed)
            upload_event(j, "upload.cancel", "ok", NULL);
        return true;
    }
    return true;
}

static void reply(struct tus_job *j)
{
    struct cf_req *r = j->r;
    char loc[64], idhex[CF_ID_HEX_LEN + 1];
    cf_req_unwatch(r);
    if (j->kind == TUS_CREATE && j->created) {
        /* The upload exists: its location, even if the body sent along failed (the client resumes). */
        cf_id_hex(&j->t.id, idhex);
        snprintf(loc, sizeof loc, "/api/v1/uploads/%s", idhex);
        cf_add_header_str(r, "location", loc);
    }
    if (j->rejected) {
        cf_inspect_respond(r, &j->insp);
        return;
    }
    bool ok = j->st == CF_OK;
    if (!ok && j->kind == TUS_CREATE && j->created && !j->completing && j->http != 0) {
        ok = true; /* checksum mismatch etc. on the creation body: created, nothing appended */
    }
    if (!ok) {
        if (j->st == CF_EQUOTA)
            cf_quota_respond(r, &j->refused);
        else if (j->http != 0)
            cf_respond_error(r, j->http, j->code, j->message);
        else
            cf_respond_status(r, j->st, j->message);
        return;
    }
    if (j->kind == TUS_DELETE) {
        cf_respond_empty(r, 204);
        return;
    }
    add_u64(r, "upload-offset", j->committed ? j->t.length : j->t.offset);
    if (j->committed || j->t.completed) {
        cf_id_hex(j->committed ? &j->out.id : &j->t.node, idhex);
        cf_add_header_str(r, "coffer-node-id", idhex);
    } else {
        add_expires(r, j->t.expires_at);
    }
    cf_respond_empty(r, j->kind == TUS_CREATE ? 201 : 204);
}

/* Copies the next slice of the body (loop thread, request alive) and hands it to a worker. */
static void next_slice(struct tus_job *j)
{
    h2o_iovec_t body = j->r->req->entity;
    size_t n = j->n - j->fed > CF_CHUNK_SIZE ? CF_CHUNK_SIZE : j->n - j->fed;
    if (j->slice == NULL)
        j->slice = cf_xmalloc(CF_CHUNK_SIZE);
    memcpy(j->slice, body.base + j->fed, n);
    j->slice_len = n;
    j->fed += n;
    j->want_slice = false;
    cf_work_submit(&j->job);
}

static void tus_done(struct cf_job *job)
{
    struct tus_job *j = (struct tus_job *)(void *)job;
    if (j->want_slice && j->r != NULL) {
        next_slice(j);
        return;
    }
    /* Gone midway through the body: the appender is dropped, the state stays at the old offset. */
    if (j->r != NULL)
        reply(j);
    job_free(j);
}

/* A job for request r (loop thread): the requester, the event template, and a copy of the body. */
static struct tus_job *job_new(struct cf_req *r, enum tus_kind kind)
{
    struct tus_job *j = cf_xcalloc(1, sizeof *j);
    j->kind = kind;
    j->job.run = tus_run;
    j->job.done = tus_done;
    j->job.reply_to = &r->loop->work_done;
    cf_uploader_init(&j->as, r);
    j->t.tenant = j->as.who.tenant;
    j->ev = cf_event_new(&j->as.who.tenant, "upload.start", "ok");
    cf_event_from_req(j->ev, r);
    h2o_iovec_t body = r->req->entity;
    j->n = body.base != NULL ? body.len : 0; /* sliced from the request by next_slice */
    return j;
}

static void start(struct cf_req *r, struct tus_job *j)
{
    cf_req_watch(r, &j->r);
    cf_work_submit(&j->job);
}

/* Counts the request's body against limits.max_buffered_body_bytes, or answers 503 with Retry-After
 * (nothing is changed: the client sends the same request again). The job gives it back. */
static bool budget_or_respond(struct cf_req *r, size_t *taken)
{
    size_t n = r->req->entity.base != NULL ? r->req->entity.len : 0;
    *taken = 0;
    if (n == 0)
        return true;
    if (!cf_body_budget_take(r->app->cfg->limits.max_buffered_body_bytes, n)) {
        char v[16];
        snprintf(v, sizeof v, "%d", CF_BODY_RETRY_AFTER_S);
        cf_add_header_str(r, "retry-after", v);
        cf_respond_error(r, 503, "server_busy",
                         "the server is holding as many upload bodies as it may; send this request again shortly");
        return false;
    }
    *taken = n;
    return true;
}

/* The upload id of the path; 404 if malformed. */
static bool id_or_respond(struct cf_req *r, struct cf_id *id)
{
    if (cf_id_parse(r->params[0].base, r->params[0].len, id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return false;
    }
    return true;
}

/* ---- handlers --------------------------------------------------------------------------------- */

void cf_h_tus_options(struct cf_req *r)
{
    cf_add_header_str(r, "tus-resumable", TUS_VERSION);
    cf_add_header_str(r, "tus-version", TUS_VERSION);
    cf_add_header_str(r, "tus-extension", TUS_EXTENSIONS);
    cf_add_header_str(r, "tus-checksum-algorithm", "sha1,sha256");
    add_u64(r, "tus-max-size", r->app->cfg->limits.max_file_bytes);
    cf_respond_empty(r, 204);
}

void cf_h_tus_create(struct cf_req *r)
{
    uint64_t length;
    bool has_length;
    struct cf_tus_metadata m;
    struct checksum sum;
    if (!version_or_respond(r) || !u64_header_or_respond(r, "upload-length", &length, &has_length))
        return;
    if (cf_header(r, "upload-defer-length").base != NULL) {
        cf_respond_status(r, CF_EINVAL, "Upload-Defer-Length is not supported: send Upload-Length");
        return;
    }
    if (!has_length) {
        cf_respond_status(r, CF_EINVAL, "Upload-Length is required");
        return;
    }
    if (length > r->app->cfg->limits.max_file_bytes) {
        cf_respond_status(r, CF_ETOOBIG, "the file is larger than this server accepts (see Tus-Max-Size)");
        return;
    }
    h2o_iovec_t mv = cf_header(r, "upload-metadata");
    if (mv.base == NULL) {
        cf_respond_status(r, CF_EINVAL, "Upload-Metadata must carry filename and parent");
        return;
    }
    if (!metadata_or_respond(r, mv, &m))
        return;
    size_t n = r->req->entity.base != NULL ? r->req->entity.len : 0;
    if (n > 0 && !is_octets(r)) {
        cf_respond_status(r, CF_EMEDIA, "a body sent with the creation needs Content-Type: " OCTETS);
        return;
    }
    if (n > length) {
        cf_respond_status(r, CF_EINVAL, "the body goes past Upload-Length");
        return;
    }
    if (!checksum_or_respond(r, &sum))
        return;
    if (!cf_acl_folder_or_respond(r, &m.parent, CF_LEVEL_EDIT, NULL) ||
        !cf_davguard_upload_or_respond(r, &m.parent, m.name, m.name_len)) /* WebDAV locks (davguard.h) */
        return;
    /* Quotas against Upload-Length, early (the commit checks again, under the namespace lock). */
    if (!cf_quota_upload_or_respond(r, &m.parent, m.name, m.name_len, m.on_conflict, length))
        return;
    size_t taken;
    if (!budget_or_respond(r, &taken))
        return;
    struct tus_job *j = job_new(r, TUS_CREATE);
    j->budget = taken;
    j->sum = sum;
    j->t.parent = m.parent;
    j->t.name = cf_xstrndup(m.name, m.name_len);
    j->t.on_conflict = m.on_conflict;
    j->t.length = length;
    j->t.metadata = cf_xstrndup(mv.base, mv.len);
    start(r, j);
}

void cf_h_tus_head(struct cf_req *r)
{
    struct cf_id id;
    struct cf_tus t;
    if (!version_or_respond(r) || !id_or_respond(r, &id))
        return;
    enum cf_status st = cf_tus_get(r->app->store, &r->who.user.tenant, &id, &t);
    if (st == CF_OK && !cf_id_equal(&t.owner, &r->who.user.id)) {
        cf_tus_clear(&t);
        st = CF_ENOTFOUND;
    }
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    if (!t.completed && t.expires_at <= cf_now_ms()) {
        cf_tus_clear(&t);
        cf_respond_error(r, 410, "upload_expired", NULL);
        return;
    }
    add_u64(r, "upload-offset", t.offset);
    add_u64(r, "upload-length", t.length);
    if (t.metadata != NULL)
        cf_add_header_str(r, "upload-metadata", t.metadata);
    if (t.completed) {
        char idhex[CF_ID_HEX_LEN + 1];
        cf_id_hex(&t.node, idhex);
        cf_add_header_str(r, "coffer-node-id", idhex);
    } else {
        add_expires(r, t.expires_at);
    }
    cf_tus_clear(&t);
    cf_respond_empty(r, 200);
}

void cf_h_tus_patch(struct cf_req *r)
{
    struct cf_id id;
    uint64_t offset;
    bool has_offset;
    struct checksum sum;
    if (!version_or_respond(r) || !id_or_respond(r, &id))
        return;
    if (!is_octets(r)) {
        cf_respond_status(r, CF_EMEDIA, "PATCH needs Content-Type: " OCTETS);
        return;
    }
    if (!u64_header_or_respond(r, "upload-offset", &offset, &has_offset))
        return;
    if (!has_offset) {
        cf_respond_status(r, CF_EINVAL, "Upload-Offset is required");
        return;
    }
    if (!checksum_or_respond(r, &sum))
        return;
    size_t taken;
    if (!budget_or_respond(r, &taken))
        return;
    if (!busy_take(&r->who.user.tenant, &id)) {
        cf_body_budget_release(taken);
        cf_respond_error(r, 423, "upload_locked",
                         "another request is working on this upload; retry when it has finished");
        return;
    }
    struct tus_job *j = job_new(r, TUS_PATCH);
    j->budget = taken;
    j->busy = true;
    j->id = id;
    j->offset = offset;
    j->sum = sum;
    start(r, j);
}

void cf_h_tus_delete(struct cf_req *r)
{
    struct cf_id id;
    if (!version_or_respond(r) || !id_or_respond(r, &id))
        return;
    if (!busy_take(&r->who.user.tenant, &id)) {
        cf_respond_error(r, 423, "upload_locked", "another request is working on this upload");
        return;
    }
    struct tus_job *j = job_new(r, TUS_DELETE);
    j->busy = true;
    j->id = id;
    start(r, j);
}
