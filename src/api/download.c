/*
 * download.c: GET|HEAD /api/v1/files/{id}/content (download level) and GET /api/v1/files/{id}/view
 * (download level too, safe types inline; view-only callers get pages.c's pages); the provenance and byte-budget gate of every transfer (members,
 * and link recipients through share.c).
 *
 * Streaming: a struct stream owns a ring of up to READ_AHEAD chunk buffers, taken from the process's
 * pool (src/core/bufpool.h: reused, so their pages stay mapped; wiped before they go back) or, for a
 * small file, allocated at its size. A worker decrypts the next chunks straight from the engine's
 * pinned value into free buffers, one job at a time, while h2o sends from the buffer itself (no copy:
 * one h2o_send per proceed, buffers untouched until proceed: notes §3). Memory per download is at
 * most READ_AHEAD chunks whatever the file size. The first chunk is decrypted before the status line
 * goes out, so a corrupt file answers 500; a chunk that fails later aborts the stream (h2o resets
 * it): the client gets an error, never wrong bytes.
 *
 * Provenance (the gate, cf_transfer_opts): the "began" event is queued, and a link's bytes drawn
 * from its budget, before the first byte. The guarantee: a recipient never receives the last byte of
 * a response (nor its end of stream) before its "began" event is durable. Headers and leading bytes
 * go while the group commit runs; the last TAIL_HOLD byte of the response is held back until the
 * writer reports the event durable. If it fails to become durable the response is refused (503) if
 * nothing went out yet, else the stream is reset: it is never completed, and its end event says
 * completed: false. docs/SECURITY.md "Provenance" states the same.
 *
 * Lifetime: the stream is referenced by the request (dropped when h2o disposes the request), by the
 * decrypt job in flight (dropped when it comes back) and by the gate's continuation (dropped when it
 * reaches the loop); it is freed at zero, on the loop thread, and its buffers go back then.
 *
 * Owns: the file response, the stream, the transfer gate. May touch: the pool (bufpool.h), the
 * reader (storage.h), the provenance queue (audit.h), link budgets (storage.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acl.h"
#include "audit.h"
#include "bufpool.h"
#include "config.h"
#include "files.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "validate.h"
#include "work.h"

struct stream;

/* The headers of a file response, added only once it is certain the file itself is being sent
 * (not on a 304, a 416 or an error before the first byte). Allocated from the request pool. */
struct file_headers {
    const char *disposition;
    const char *etag;
    const char *type;
    const char *csp;
    const char *content_range; /* NULL unless 206 */
};

static void add_file_headers(struct cf_req *r, const struct file_headers *fh)
{
    cf_add_header(r, "content-disposition", fh->disposition, strlen(fh->disposition));
    cf_add_header(r, "etag", fh->etag, strlen(fh->etag));
    cf_add_header_str(r, "accept-ranges", "bytes");
    cf_add_header_str(r, "cache-control", "private, no-cache");
    cf_add_header_str(r, "cross-origin-resource-policy", "same-origin");
    cf_add_header(r, "content-security-policy", fh->csp, strlen(fh->csp));
    cf_add_header(r, "content-type", fh->type, strlen(fh->type));
    if (fh->content_range != NULL)
        cf_add_header(r, "content-range", fh->content_range, strlen(fh->content_range));
}

/* Read-ahead: a stream decrypts up to this many chunks ahead of the one h2o is sending (one decrypt
 * job in flight at a time, so a stream keeps at most one worker busy, and the loop's TLS encryption
 * runs beside it). 3 covers a decryption that finishes late while one buffer is on the wire and
 * one waits (measured in the report of issue 19; -Dbench_knobs builds read
 * COFFER_BENCH_READ_AHEAD, 1..READ_AHEAD_MAX, to measure other depths). */
enum { READ_AHEAD = 3, READ_AHEAD_MAX = 4 };
/* Files up to this size are served from a private allocation of their size: a pool buffer holds a
 * whole chunk, which a small file does not need (and a small malloc does not fault). */
enum { SMALL_FILE = 64 * 1024 };
/* The tail held back until the "began" event is durable: the response's last byte. */
enum { TAIL_HOLD = 1 };

/* The read-ahead depth: READ_AHEAD, or in a benchmark build COFFER_BENCH_READ_AHEAD. */
static unsigned read_ahead(void)
{
#ifdef CF_BENCH_KNOBS
    static unsigned depth;
    if (depth == 0) {
        const char *v = getenv("COFFER_BENCH_READ_AHEAD");
        uint64_t d = 0;
        if (v == NULL || cf_parse_size(v, &d) != CF_OK)
            d = 0;
        depth = d >= 1 && d <= READ_AHEAD_MAX ? (unsigned)d : READ_AHEAD;
    }
    return depth;
#else
    return READ_AHEAD;
#endif
}

struct decrypt_job {
    struct cf_job job;
    struct stream *s;
    unsigned slot;        /* which buffer to fill */
    uint32_t index;       /* chunk */
    enum cf_status st;
    h2o_iovec_t out;      /* the bytes of the slot to send; the loop publishes it in decrypt_done */
    size_t len;           /* the chunk's length (bytes written into the buffer) */
    bool gate;            /* run the stream's gate before decrypting (first job only) */
    enum cf_status gate_st; /* the gate's synchronous answer (CF_OK: the response may start) */
};

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_SENDING };

struct slot {
    uint8_t *buf;              /* buf_size bytes */
    size_t used;               /* bytes ever written into buf (wiped before it is given back) */
    h2o_iovec_t ready;         /* SLOT_READY: the decrypted bytes of the range waiting to be sent */
    enum slot_state state;
};

struct stream {
    h2o_generator_t gen;       /* must be first: h2o hands it back to proceed/stop */
    h2o_req_t *req;            /* NULL once disposed */
    struct cf_reader *rd;
    uint64_t first;            /* first byte of the response (constant) */
    uint64_t next;             /* next byte to hand to h2o (loop thread only) */
    uint64_t end;              /* one past the last byte to send (constant) */
    struct slot slot[READ_AHEAD_MAX];
    unsigned depth;            /* slots in use (constant): min(read-ahead, chunks of the range) */
    bool pooled;               /* buffers from the pool (else private, buf_size each) */
    size_t buf_size;           /* CF_CHUNK_SIZE, or the size of a small file */
    uint32_t first_chunk;      /* chunk of byte first; chunk c lives in slot (c - first_chunk) % depth */
    uint32_t next_chunk;       /* next chunk to decrypt */
    uint32_t send_chunk;       /* next chunk to send */
    uint32_t last_chunk;       /* last chunk the range needs */
    h2o_iovec_t held;          /* the tail held back until the record is durable */
    bool tail_held;            /* held is waiting (it may be empty: an empty response) */
    bool sending;              /* h2o holds bytes of ours (until proceed) */
    bool started;              /* the response headers were sent */
    bool stopped;              /* h2o stopped the generator (client gone) */
    bool job_busy;             /* a decrypt job is in flight */
    bool failed;               /* abort the stream (a chunk failed, or the record could not be made durable) */
    bool aborted;              /* the error was handed to h2o */
    bool gate_passed;          /* the gate let the response start (end must be reported) */
    bool durable;              /* the gate's record is durable, or there is no gate */
    enum cf_status durable_st; /* the gate's continuation (loop thread once durable_done ran) */
    int refs;
    struct decrypt_job job;
    struct cf_job durable_job; /* the gate's continuation, sent to the loop */
    struct cf_req *r;          /* for the first reply; watched until headers are out */
    int status;                /* 200 or 206 */
    const struct file_headers *fh; /* in the request pool */
    struct cf_serve_opts opts; /* gate and its context (owned; freed with the stream) */
};

static void stream_unref(struct stream *s)
{
    if (--s->refs > 0)
        return;
    if (s->gate_passed && s->opts.end != NULL)
        s->opts.end(s->opts.ctx, s->next - s->first,
                    s->next >= s->end && !s->tail_held && !s->failed && !s->stopped && s->durable);
    if (s->opts.free_ctx != NULL)
        s->opts.free_ctx(s->opts.ctx);
    cf_reader_free(s->rd);
    for (unsigned i = 0; i < s->depth; i++) {
        if (s->pooled)
            cf_bufpool_give(s->slot[i].buf, s->slot[i].used);
        else
            cf_free_secret(s->slot[i].buf, s->buf_size);
    }
    free(s);
}

static void on_req_dispose(void *p)
{
    struct stream *s = *(struct stream **)p;
    s->req = NULL;
    stream_unref(s);
}

static unsigned slot_of(const struct stream *s, uint32_t chunk)
{
    return (chunk - s->first_chunk) % s->depth;
}

/* The gate's continuation (any thread): the "began" record is durable (or failed). The loop learns
 * it through durable_done. */
static void gate_cont(void *arg, enum cf_status st)
{
    struct stream *s = arg;
    s->durable_st = st;
    cf_work_reply(&s->durable_job);
}

static void decrypt_chunk(struct decrypt_job *j)
{
    size_t len = 0;
    uint8_t *buf = j->s->slot[j->slot].buf;
    j->st = cf_reader_chunk(j->s->rd, j->index, buf, &len);
    j->len = len;
    if (j->st == CF_OK) {
        /* Trim to the requested range; first and end never change, so the worker may read them. */
        uint64_t base = (uint64_t)j->index * CF_CHUNK_SIZE;
        uint64_t from = j->s->first > base ? j->s->first - base : 0;
        uint64_t upto = j->s->end - base < len ? j->s->end - base : len;
        if (from > upto)
            from = upto;
        j->out = h2o_iovec_init(buf + from, (size_t)(upto - from));
    }
}

/* A worker: the gate's synchronous part first (a refusal answers instead of the file; CF_OK lets
 * the response start while its record is being made durable), then the chunk. */
static bool decrypt_run(struct cf_job *job)
{
    struct decrypt_job *j = (struct decrypt_job *)(void *)job;
    if (j->gate) {
        j->gate_st = j->s->opts.gate(j->s->opts.ctx, j->s->first, j->s->end, gate_cont, j->s);
        if (j->gate_st != CF_OK) {
            j->st = j->gate_st;
            return true;
        }
    }
    decrypt_chunk(j);
    return true;
}

static void decrypt_done(struct cf_job *job);

/* Starts decrypting the next chunk if one is left, no job is in flight and its slot is free. */
static void maybe_decrypt(struct stream *s)
{
    if (s->job_busy || s->failed || s->next_chunk > s->last_chunk || s->req == NULL || s->stopped)
        return;
    unsigned slot = slot_of(s, s->next_chunk);
    if (s->slot[slot].state != SLOT_FREE)
        return;
    s->slot[slot].state = SLOT_FILLING;
    s->job.gate = !s->started && s->opts.gate != NULL && s->next_chunk == s->first_chunk;
    s->job.s = s;
    s->job.slot = slot;
    s->job.index = s->next_chunk++;
    s->job.job.run = decrypt_run;
    s->job.job.done = decrypt_done;
    s->job.job.reply_to = &cf_loop_of(s->req)->work_done;
    s->job_busy = true;
    s->refs++;
    if (s->job.gate) {
        s->refs++; /* the continuation's, dropped in durable_done (or at once if the gate refuses) */
        s->durable_job.reply_to = s->job.job.reply_to;
    }
    cf_work_submit(&s->job.job);
}

/* One h2o_send (one per proceed: notes §3). */
static void send_bytes(struct stream *s, h2o_iovec_t v, bool final)
{
    s->next += v.len;
    s->sending = true;
    h2o_send(s->req, &v, 1, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

/* Hands h2o what may go now, if h2o is idle: the held tail once the record is durable, else the
 * next decrypted chunk, less its last TAIL_HOLD bytes if it ends the response and the record is not
 * durable yet. Then keeps the read-ahead going. Loop thread. */
static void pump(struct stream *s)
{
    if (s->req == NULL || s->stopped || !s->started || s->aborted)
        return;
    if (!s->sending) {
        if (s->failed) {
            /* h2o holds no buffer of ours: abort now. The client gets a reset, never wrong bytes and
             * never the end of a response whose record is not durable. */
            s->aborted = true;
            h2o_send(s->req, NULL, 0, H2O_SEND_STATE_ERROR);
            return;
        }
        if (s->tail_held) {
            if (s->durable) { /* else durable_done pumps again */
                s->tail_held = false;
                send_bytes(s, s->held, true);
            }
            return;
        }
        struct slot *sl = &s->slot[slot_of(s, s->send_chunk)];
        if (sl->state == SLOT_READY) {
            h2o_iovec_t v = sl->ready;
            sl->ready = h2o_iovec_init(NULL, 0);
            sl->state = SLOT_SENDING;
            s->send_chunk++;
            bool final = s->next + v.len >= s->end;
            if (final && !s->durable) {
                size_t hold = v.len < TAIL_HOLD ? v.len : TAIL_HOLD;
                s->held = h2o_iovec_init(v.base + v.len - hold, hold);
                s->tail_held = true;
                v.len -= hold;
                if (v.len == 0) { /* nothing of it may go before the record */
                    maybe_decrypt(s);
                    return;
                }
                final = false;
            }
            send_bytes(s, v, final);
        } /* else decrypt_done pumps again */
    }
    maybe_decrypt(s);
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    struct stream *s = (struct stream *)gen;
    (void)req;
    /* h2o has released what it held: its slot may be filled again. (A held tail lies in the last
     * chunk's slot, which no later chunk reuses.) */
    s->sending = false;
    for (unsigned i = 0; i < s->depth; i++)
        if (s->slot[i].state == SLOT_SENDING)
            s->slot[i].state = SLOT_FREE;
    pump(s);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    struct stream *s = (struct stream *)gen;
    (void)req;
    s->stopped = true;
}

/* The CSP of a file response. Downloads may never be framed; inline views may be framed by the
 * app itself (previews). PDF viewers do not render under a sandbox CSP (notes §5); everything else
 * is sandboxed. */
static const char *file_csp(bool view, const char *type)
{
    if (!view)
        return "default-src 'none'; frame-ancestors 'none'; sandbox";
    if (strcmp(type, "application/pdf") == 0)
        return "default-src 'none'; style-src 'unsafe-inline'; object-src 'none'; frame-ancestors 'self'";
    return "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox";
}

static void send_headers(struct stream *s)
{
    h2o_req_t *req = s->req;
    add_file_headers(s->r, s->fh);
    req->res.status = s->status;
    req->res.reason = s->status == 206 ? "Partial Content" : "OK";
    req->res.content_length = (size_t)(s->end - s->next);
    h2o_start_response(req, &s->gen);
    s->started = true;
}

/* Answers the request with st instead of the file (nothing of it went out). */
static void refuse(struct stream *s, enum cf_status st)
{
    s->failed = s->aborted = true;
    cf_req_unwatch(s->r);
    cf_respond_status(s->r, st, NULL);
}

static void decrypt_done(struct cf_job *job)
{
    struct decrypt_job *j = (struct decrypt_job *)(void *)job;
    struct stream *s = j->s;
    struct slot *sl = &s->slot[j->slot];
    bool refused = j->gate && j->gate_st != CF_OK; /* nothing was decrypted */
    s->job_busy = false;
    /* A failed authentication may have left unauthenticated plaintext anywhere in the buffer. */
    size_t wrote = j->st == CF_OK ? j->len : (refused ? 0 : s->buf_size);
    if (wrote > sl->used)
        sl->used = wrote;
    if (j->gate) {
        if (j->gate_st == CF_OK)
            s->gate_passed = true;
        else
            stream_unref(s); /* the continuation's reference: it will not run */
    }
    if (j->st == CF_OK) {
        sl->ready = j->out;
        sl->state = SLOT_READY;
    } else {
        sl->state = SLOT_FREE;
    }
    if (s->req == NULL || s->stopped) {
        stream_unref(s);
        return;
    }
    if (j->st != CF_OK) {
        if (!refused)
            cf_log_error("download: chunk %u of a file failed (%s)", j->index, cf_status_name(j->st));
        if (!s->started) {
            refuse(s, j->st);
        } else {
            s->failed = true; /* aborted now, or when h2o gives back what it holds */
            pump(s);
        }
        stream_unref(s);
        return;
    }
    if (!s->started) {
        if (s->failed) {
            refuse(s, s->durable_st); /* the record failed before anything went out */
            stream_unref(s);
            return;
        }
        cf_req_unwatch(s->r);
        s->r->answered = true;
        send_headers(s);
    }
    pump(s);
    stream_unref(s);
}

/* The gate's continuation reached the loop: the record is durable (the tail may go), or it failed
 * (the stream is refused or aborted, never completed). */
static void durable_done(struct cf_job *job)
{
    struct stream *s = H2O_STRUCT_FROM_MEMBER(struct stream, durable_job, job);
    if (s->durable_st == CF_OK) {
        s->durable = true;
    } else if (!s->failed) {
        cf_log_error("download: its provenance record could not be made durable (%s); the response is not completed",
                     cf_status_name(s->durable_st));
        s->failed = true;
    }
    pump(s);
    stream_unref(s);
}

static bool etag_matches(h2o_iovec_t header, const char *etag)
{
    /* If-None-Match: a list of entity tags, or "*"; weak comparison (RFC 9110 §13.1.2). */
    const char *p = header.base, *end = header.base + header.len;
    size_t el = strlen(etag);
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        if (p < end && *p == '*')
            return true;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        if ((size_t)(end - p) >= el && memcmp(p, etag, el) == 0)
            return true;
        while (p < end && *p != ',')
            p++;
    }
    return false;
}

static bool is_one_of(const char *mime, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(mime, list[i]) == 0)
            return true;
    return false;
}

/* The type a file is served as inline, or NULL if it may not be viewed inline (415). */
static const char *view_type(const char *mime)
{
    static const char *const media[] = {
        "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp", "image/vnd.microsoft.icon",
        "video/mp4", "video/webm", "audio/mpeg", "audio/ogg", "audio/flac", "application/pdf", NULL,
    };
    if (is_one_of(mime, media))
        return mime;
    if (strcmp(mime, "audio/x-wav") == 0)
        return "audio/wav";
    /* Every text type, HTML, SVG, XML and scripts included, is shown as its source: text/plain plus
     * nosniff means the browser renders characters and runs nothing. */
    static const char *const textual[] = {"image/svg+xml", "application/xml", "application/json", "application/javascript",
                                          "application/x-empty", NULL};
    if (strncmp(mime, "text/", 5) == 0 || is_one_of(mime, textual))
        return "text/plain; charset=utf-8";
    return NULL;
}

/* The type a file is downloaded as: its detected type, except types a browser could run or render
 * as a document (HTML, SVG, XML, scripts), which go as application/octet-stream even though the
 * response is an attachment with nosniff and a sandbox CSP: one more layer (notes §5). */
static const char *download_type(const char *mime)
{
    static const char *const active[] = {
        "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml", "text/javascript",
        "application/javascript", "application/x-javascript", "application/ecmascript", "text/ecmascript",
        "application/x-shockwave-flash", "text/x-msdos-batch", "application/hta", NULL,
    };
    size_t n = strlen(mime);
    if (is_one_of(mime, active) || (n > 4 && strcmp(mime + n - 4, "+xml") == 0) || strncmp(mime, "message/", 8) == 0 ||
        strncmp(mime, "multipart/", 10) == 0)
        return "application/octet-stream";
    return mime;
}

void cf_serve_file(struct cf_req *r, const struct cf_id *tenant, const struct cf_node *node,
                   const struct cf_serve_opts *o)
{
    struct cf_serve_opts opts = *o;
    char etag[40], sha[2 * CF_SHA256_LEN + 1];
    bool view = opts.view;
    if (node->type != CF_NODE_FILE) {
        cf_respond_status(r, CF_EINVAL, "not a file");
        goto drop_ctx;
    }
    const char *type = view ? view_type(node->mime) : download_type(node->mime);
    if (type == NULL) {
        cf_respond_status(r, CF_EMEDIA, "this type cannot be viewed inline; download it instead");
        goto drop_ctx;
    }
    struct cf_reader *rd;
    enum cf_status st = cf_reader_open(r->app->store, tenant, &node->id, node->version, &rd);
    if (st != CF_OK) {
        cf_respond_status(r, st == CF_ENOTFOUND ? CF_ECORRUPT : st, NULL);
        goto drop_ctx;
    }
    uint64_t size = cf_reader_size(rd);
    cf_hex_encode(node->sha256, sizeof node->sha256, sha);
    snprintf(etag, sizeof etag, "\"%.32s\"", sha);

    h2o_req_t *req = r->req;
    struct file_headers *fh = h2o_mem_alloc_pool(&req->pool, sizeof *fh);
    char *disp = cf_content_disposition(view ? "inline" : "attachment", node->name, strlen(node->name));
    fh->disposition = h2o_strdup(&req->pool, disp, SIZE_MAX).base;
    free(disp);
    fh->etag = h2o_strdup(&req->pool, etag, SIZE_MAX).base;
    fh->type = h2o_strdup(&req->pool, type, SIZE_MAX).base;
    fh->csp = file_csp(view, type);
    fh->content_range = NULL;

    h2o_iovec_t inm = cf_header(r, "if-none-match");
    if (inm.base != NULL && etag_matches(inm, etag)) {
        cf_reader_free(rd);
        cf_add_header(r, "etag", fh->etag, strlen(fh->etag));
        cf_add_header_str(r, "cache-control", "private, no-cache");
        cf_respond_empty(r, 304);
        goto drop_ctx;
    }
    uint64_t first = 0, last = size == 0 ? 0 : size - 1;
    int status = 200;
    h2o_iovec_t range = cf_header(r, "range");
    h2o_iovec_t ifrange = cf_header(r, "if-range");
    /* If-Range with another validator: the representation changed, send it whole (RFC 9110 §13.1.5). */
    if (range.base != NULL && (ifrange.base == NULL || h2o_memis(ifrange.base, ifrange.len, etag, strlen(etag)))) {
        switch (cf_range_parse(range.base, range.len, size, &first, &last)) {
        case CF_RANGE_OK:
            status = 206;
            break;
        case CF_RANGE_UNSATISFIABLE: {
            char cr[48];
            int l = snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
            cf_add_header(r, "content-range", cr, (size_t)l);
            cf_reader_free(rd);
            cf_respond_status(r, CF_ERANGE, "the requested range is not satisfiable");
            goto drop_ctx;
        }
        case CF_RANGE_NONE:
            first = 0;
            last = size == 0 ? 0 : size - 1;
            break;
        }
    }
    if (status == 206) {
        char cr[80];
        snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)first, (unsigned long long)last,
                 (unsigned long long)size);
        fh->content_range = h2o_strdup(&req->pool, cr, SIZE_MAX).base;
    }
    uint64_t end = size == 0 ? 0 : last + 1;

    if (cf_is_method(r, "HEAD")) {
        static h2o_generator_t head_gen = {NULL, NULL};
        cf_reader_free(rd);
        add_file_headers(r, fh);
        r->answered = true;
        req->res.status = status;
        req->res.reason = status == 206 ? "Partial Content" : "OK";
        req->res.content_length = (size_t)(end - first);
        h2o_start_response(req, &head_gen);
        /* h2o 2.2.5 does not strip bodies from HEAD responses: send none (notes §3). */
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        goto drop_ctx;
    }

    struct stream *s = cf_xcalloc(1, sizeof *s);
    s->first_chunk = (uint32_t)(first / CF_CHUNK_SIZE);
    s->last_chunk = end == 0 ? s->first_chunk : (uint32_t)((end - 1) / CF_CHUNK_SIZE);
    uint32_t nchunks = s->last_chunk - s->first_chunk + 1;
    s->depth = nchunks < read_ahead() ? nchunks : read_ahead();
    /* Small files (the common case) need small buffers: every chunk of a file fits in min(size, chunk). */
    s->pooled = size > SMALL_FILE;
    s->buf_size = s->pooled ? CF_CHUNK_SIZE : (size_t)(size == 0 ? 1 : size);
    bool have_bufs = true;
    for (unsigned i = 0; i < s->depth && have_bufs; i++) {
        s->slot[i].buf = s->pooled ? cf_bufpool_take() : cf_try_malloc(s->buf_size);
        have_bufs = s->slot[i].buf != NULL;
    }
    s->gen.proceed = on_proceed;
    s->gen.stop = on_stop;
    s->req = req;
    s->rd = rd;
    s->refs = 1; /* the request's, or the one dropped just below */
    if (!have_bufs) {
        stream_unref(s); /* gives back what it took; owns nothing of opts yet */
        cf_respond_status(r, CF_EIO, NULL);
        goto drop_ctx;
    }
    s->first = first;
    s->next = first;
    s->end = end;
    s->next_chunk = s->send_chunk = s->first_chunk;
    s->status = status;
    s->fh = fh;
    s->opts = opts; /* the stream owns the gate's context from here */
    s->durable = opts.gate == NULL;
    s->durable_job.done = durable_done;
    struct stream **guard = h2o_mem_alloc_shared(&req->pool, sizeof *guard, on_req_dispose);
    *guard = s;
    s->r = r;
    cf_req_watch(r, &s->r);
    maybe_decrypt(s);
    return;
drop_ctx:
    if (opts.free_ctx != NULL)
        opts.free_ctx(opts.ctx);
}

/* ---- transfers: provenance and accounting ------------------------------------------------------- */

struct transfer_ctx {
    struct cf_transfer t;    /* strings owned below */
    char *actor_name, *ip, *ua;
    uint64_t drawn;          /* bytes reserved from the link's budget by the gate (0: none) */
    uint64_t began;          /* seq of the "began" event (set by the writer thread) */
    void (*cont)(void *arg, enum cf_status st);
    void *cont_arg;
};

static void transfer_free(void *p)
{
    struct transfer_ctx *c = p;
    free(c->actor_name);
    free(c->ip);
    free(c->ua);
    free(c);
}

static struct cf_event *transfer_event(const struct transfer_ctx *c, const char *result)
{
    struct cf_event *e = cf_event_new(&c->t.tenant, c->t.action, result);
    e->actor_type = (enum cf_actor_type)c->t.actor_type;
    e->actor = c->t.actor;
    e->actor_name = c->actor_name != NULL ? cf_xstrdup(c->actor_name) : NULL;
    e->has_share = c->t.has_share;
    e->share = c->t.share;
    snprintf(e->ip, sizeof e->ip, "%s", c->ip != NULL ? c->ip : "");
    e->user_agent = c->ua != NULL ? cf_xstrdup(c->ua) : NULL;
    return e;
}

/* Bytes a response drew from a link's budget and did not send go back (or become resume credit: see
 * "Byte budgets" in storage.h); then the transfer's end event, if any, is written. */
struct give_back {
    struct cf_store *store;
    struct cf_id tenant, share, node;
    uint64_t size, unsent, sent;
    struct cf_event *end; /* may be NULL */
};

static void give_back_run(void *arg)
{
    struct give_back *g = arg;
    if (cf_share_give_back(g->store, &g->tenant, &g->share, &g->node, g->size, g->unsent, g->sent) != CF_OK)
        cf_log_warn("a share link's unsent bytes could not be given back (the reservation stands)");
    if (g->end != NULL)
        cf_audit_submit(g->end);
    free(g);
}

static void give_back(const struct transfer_ctx *c, uint64_t sent, struct cf_event *end)
{
    struct give_back *g = cf_xcalloc(1, sizeof *g);
    g->store = c->t.store;
    g->tenant = c->t.tenant;
    g->share = c->t.share;
    g->node = c->t.node;
    g->size = c->t.size;
    g->sent = sent < c->drawn ? sent : c->drawn;
    g->unsent = c->drawn - g->sent;
    g->end = end;
    cf_work_background(give_back_run, g);
}

/* The writer thread made "began" durable (or could not): the transfer may complete (or is refused
 * or aborted). What it drew and did not send goes back at its end (transfer_end), which runs after
 * this on the loop thread. */
static void transfer_written(void *arg, enum cf_status st, uint64_t seq)
{
    struct transfer_ctx *c = arg;
    c->began = st == CF_OK ? seq : 0;
    c->cont(c->cont_arg, st == CF_OK ? CF_OK : CF_EUNAVAIL);
}

/* The gate (worker thread): draw a share response's bytes from the link's budget, account bulk
 * downloads, and let the transfer go ahead once its "began" event is durable. */
static enum cf_status transfer_gate(void *ctx, uint64_t first, uint64_t end, void (*cont)(void *arg, enum cf_status st),
                                    void *arg)
{
    struct transfer_ctx *c = ctx;
    struct cf_node n;
    bool have_node = cf_node_get(c->t.store, &c->t.tenant, &c->t.node, &n) == CF_OK;
    bool counted = false;
    if (c->t.count_share) {
        /* Every byte of the original draws, whatever the route (content, view, Range, folder member),
         * reserved for the whole response before its first byte. */
        enum cf_status st = cf_share_draw(c->t.store, &c->t.tenant, &c->t.share, &c->t.node, c->t.size, end - first,
                                          cf_now_ms(), &counted);
        if (st != CF_OK) {
            struct cf_event *e = transfer_event(c, "denied");
            if (have_node)
                cf_event_node(e, &n);
            cf_event_detail(e, "reason", json_string(cf_status_name(st)));
            cf_audit_submit(e);
            if (have_node)
                cf_node_clear(&n);
            return st;
        }
        c->drawn = end - first;
    }
    struct cf_event *e = transfer_event(c, "ok");
    if (have_node) {
        cf_event_node(e, &n);
        cf_node_clear(&n);
    }
    char range[64];
    bool whole = first == 0 && end == c->t.size;
    if (!whole)
        snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)first,
                 (unsigned long long)(end > first ? end - 1 : first));
    cf_event_detail(e, "phase", json_string("began"));
    cf_event_detail(e, "range", whole ? json_null() : json_string(range));
    cf_event_detail(e, "size", json_integer((json_int_t)c->t.size));
    if (c->t.version != 0) /* an old version (versions.c) */
        cf_event_detail(e, "version", json_integer(c->t.version));
    /* Bulk downloads. A link counts what its budget counts: every byte drawn, and a file each time
     * its download figure rises. Members: whole downloads (from byte 0); inline views are not
     * downloads. */
    if (c->t.count_share)
        cf_audit_count_download(&c->t.tenant, (enum cf_actor_type)c->t.actor_type, &c->t.actor,
                                c->ip != NULL ? c->ip : "", counted ? 1 : 0, end - first);
    else if (first == 0 && strstr(c->t.action, ".download") != NULL)
        cf_audit_count_download(&c->t.tenant, (enum cf_actor_type)c->t.actor_type, &c->t.actor,
                                c->ip != NULL ? c->ip : "", 1, end - first);
    /* Durable before the last byte: the response may start while the group commit runs, but its
     * last byte waits for it (download.c's header); if the event cannot be written, the response
     * is refused, or aborted if it had started, never completed. */
    c->cont = cont;
    c->cont_arg = arg;
    cf_audit_submit_cb(e, transfer_written, c);
    return CF_OK;
}

/* The end (loop thread): what was sent, and whether all of it. A link's transfer cut short gives
 * back what it did not send before its end is recorded (so the end event, once durable, shows a
 * budget that is settled). A transfer whose "began" failed (began 0; it was refused or reset, never
 * completed) has no end record: there is no event to end, and the store is refusing writes. */
static void transfer_end(void *ctx, uint64_t sent, bool completed)
{
    struct transfer_ctx *c = ctx;
    if (c->began == 0) {
        if (c->drawn != 0)
            give_back(c, sent, NULL);
        return;
    }
    struct cf_event *e = transfer_event(c, "ok");
    e->has_node = true;
    e->node = c->t.node;
    e->began = c->began;
    cf_event_detail(e, "phase", json_string("end"));
    cf_event_detail(e, "bytes_sent", json_integer((json_int_t)sent));
    cf_event_detail(e, "completed", json_boolean(completed));
    if (c->drawn != 0 && !completed)
        give_back(c, sent, e);
    else
        cf_audit_submit(e);
}

void cf_transfer_opts(const struct cf_transfer *t, struct cf_serve_opts *o)
{
    struct transfer_ctx *c = cf_xcalloc(1, sizeof *c);
    c->t = *t;
    c->actor_name = t->actor_name != NULL ? cf_xstrdup(t->actor_name) : NULL;
    c->ip = t->ip != NULL ? cf_xstrdup(t->ip) : NULL;
    c->ua = t->user_agent != NULL ? cf_xstrdup(t->user_agent) : NULL;
    c->t.actor_name = c->t.ip = c->t.user_agent = NULL;
    o->gate = transfer_gate;
    o->end = transfer_end;
    o->ctx = c;
    o->free_ctx = transfer_free;
}

static void serve_node(struct cf_req *r, struct cf_node *n, bool view);

static void serve_member(struct cf_req *r, bool view)
{
    struct cf_node n;
    enum cf_level level;
    /* The inline original needs download too: view-only members get pages (pages.c), never the
     * original's bytes, and a 403 here (they may see that the file exists). */
    if (!cf_acl_param_or_respond(r, 0, CF_LEVEL_DOWNLOAD, &n, &level))
        return;
    serve_node(r, &n, view);
}

void cf_serve_member(struct cf_req *r, const struct cf_id *id, bool view)
{
    struct cf_node n;
    enum cf_level level;
    if (!cf_acl_node_or_respond(r, id, CF_LEVEL_DOWNLOAD, &n, &level))
        return;
    serve_node(r, &n, view);
}

/* Serves n (authorised; cleared here) with its provenance. */
static void serve_node(struct cf_req *r, struct cf_node *n, bool view)
{
    h2o_iovec_t ua = cf_header(r, "user-agent");
    char *uas = ua.base != NULL ? cf_text_clean(ua.base, ua.len, 512) : NULL;
    struct cf_transfer t = {
        .store = r->app->store,
        .action = view ? "file.view" : "file.download",
        .tenant = r->who.user.tenant,
        .node = n->id,
        .actor_type = CF_ACTOR_USER,
        .actor = r->who.user.id,
        .actor_name = r->who.user.username,
        .ip = r->ip,
        .user_agent = uas,
        .size = n->size,
    };
    struct cf_serve_opts o = {.view = view};
    if (!r->app->bench_no_transfer_audit)
        cf_transfer_opts(&t, &o);
    free(uas);
    cf_serve_file(r, &r->who.user.tenant, n, &o);
    cf_node_clear(n);
}

void cf_h_file_content(struct cf_req *r)
{
    serve_member(r, false);
}

void cf_h_file_view(struct cf_req *r)
{
    serve_member(r, true);
}
