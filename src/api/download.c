/*
 * download.c: GET|HEAD /api/v1/files/{id}/content (download level) and GET /api/v1/files/{id}/view
 * (view level, safe types inline).
 *
 * Streaming: a struct stream owns two chunk buffers. A worker decrypts chunk k+1 into one while h2o
 * sends chunk k from the other (one h2o_send per proceed, buffers untouched until proceed: notes
 * §3). Memory per download is two chunks whatever the file size. The first chunk is decrypted
 * before the status line goes out, so a corrupt file answers 500; a chunk that fails later aborts
 * the stream (h2o resets it) — the client gets an error, never wrong bytes.
 *
 * Lifetime: the stream is referenced by the request (dropped when h2o disposes the request) and by
 * the decrypt job in flight (dropped when it comes back); it is freed at zero, on the loop thread.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acl.h"
#include "audit.h"
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

struct decrypt_job {
    struct cf_job job;
    struct stream *s;
    int buf;              /* which buffer to fill */
    uint32_t index;       /* chunk */
    enum cf_status st;
    h2o_iovec_t out;      /* the bytes of buf to send; the loop publishes it in decrypt_done */
    bool gate;            /* run the stream's gate before sending (first job only) */
    enum cf_status gate_st; /* the gate's answer (set by whoever calls gate_cont) */
    atomic_int pending;   /* gated job: decryption and the gate's answer, each decrements; the last replies */
};

struct stream {
    h2o_generator_t gen;       /* must be first: h2o hands it back to proceed/stop */
    h2o_req_t *req;            /* NULL once disposed */
    struct cf_reader *rd;
    uint64_t first;            /* first byte of the response (constant) */
    uint64_t next;             /* next byte to hand to h2o (loop thread only) */
    uint64_t end;              /* one past the last byte to send (constant) */
    uint8_t *buf[2];           /* buf_size each */
    size_t buf_size;           /* the largest chunk of this file: CF_CHUNK_SIZE, or the size of a smaller file */
    h2o_iovec_t ready[2];      /* decrypted bytes of buf[i] waiting to be sent ({NULL,0}: none) */
    uint32_t next_chunk;       /* next chunk to decrypt */
    uint32_t last_chunk;       /* last chunk the range needs */
    int sending;               /* buffer h2o holds, or -1 */
    bool waiting;              /* h2o asked for data (proceed) and none was ready */
    bool started;              /* the response headers were sent */
    bool stopped;              /* h2o stopped the generator (client gone) */
    bool job_busy;             /* a decrypt job is in flight */
    bool failed;               /* a chunk failed after the headers went out: abort at the next proceed */
    bool gate_passed;          /* the gate ran and allowed the response (end must be reported) */
    int refs;
    struct decrypt_job job;
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
        s->opts.end(s->opts.ctx, s->next - s->first, s->next >= s->end && !s->failed && !s->stopped);
    if (s->opts.free_ctx != NULL)
        s->opts.free_ctx(s->opts.ctx);
    cf_reader_free(s->rd);
    for (int i = 0; i < 2; i++)
        cf_free_secret(s->buf[i], s->buf_size);
    free(s);
}

static void on_req_dispose(void *p)
{
    struct stream *s = *(struct stream **)p;
    s->req = NULL;
    stream_unref(s);
}

/* The gated first job replies once both halves are done: the chunk is decrypted and the gate has
 * answered (for provenance: the "began" event is durable). They run in parallel, so a download
 * waits for one group commit, not for a commit and then a decryption. Nothing is sent before the
 * reply reaches the loop. */
static void gated_half_done(struct decrypt_job *j)
{
    if (atomic_fetch_sub(&j->pending, 1) == 1)
        cf_work_reply(&j->job);
}

/* The gate's continuation (any thread). */
static void gate_cont(void *arg, enum cf_status st)
{
    struct decrypt_job *j = arg;
    j->gate_st = st;
    gated_half_done(j);
}

static void decrypt_chunk(struct decrypt_job *j)
{
    size_t len;
    j->st = cf_reader_chunk(j->s->rd, j->index, j->s->buf[j->buf], &len);
    if (j->st == CF_OK) {
        /* Trim to the requested range; first and end never change, so the worker may read them. */
        uint64_t base = (uint64_t)j->index * CF_CHUNK_SIZE;
        uint64_t from = j->s->first > base ? j->s->first - base : 0;
        uint64_t upto = j->s->end - base < len ? j->s->end - base : len;
        if (from > upto)
            from = upto;
        j->out = h2o_iovec_init(j->s->buf[j->buf] + from, (size_t)(upto - from));
    }
}

static bool decrypt_run(struct cf_job *job)
{
    struct decrypt_job *j = (struct decrypt_job *)(void *)job;
    if (!j->gate) {
        decrypt_chunk(j);
        return true;
    }
    j->gate_st = CF_OK;
    atomic_store(&j->pending, 2);
    enum cf_status st = j->s->opts.gate(j->s->opts.ctx, j->s->first, j->s->end, gate_cont, j);
    if (st != CF_OK) {
        /* Refused at once (gate_cont will not run). */
        j->gate_st = j->st = st;
        return true;
    }
    decrypt_chunk(j);
    gated_half_done(j);
    return false; /* the last half replies */
}

static void decrypt_done(struct cf_job *job);

static void start_decrypt(struct stream *s, int buf)
{
    s->job.gate = !s->started && s->opts.gate != NULL;
    s->job.s = s;
    s->job.buf = buf;
    s->job.index = s->next_chunk++;
    s->job.job.run = decrypt_run;
    s->job.job.done = decrypt_done;
    s->job.job.reply_to = &cf_loop_of(s->req)->work_done;
    s->job_busy = true;
    s->refs++;
    cf_work_submit(&s->job.job);
}

/* Hands buffer i to h2o; starts decrypting the next chunk into the other one. */
static void send_buffer(struct stream *s, int i)
{
    h2o_iovec_t v = s->ready[i];
    s->ready[i] = h2o_iovec_init(NULL, 0);
    s->next += v.len;
    s->sending = i;
    s->waiting = false;
    bool final = s->next >= s->end;
    if (!final && s->next_chunk <= s->last_chunk && !s->job_busy)
        start_decrypt(s, 1 - i);
    h2o_send(s->req, &v, 1, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    struct stream *s = (struct stream *)gen;
    (void)req;
    s->sending = -1;
    if (s->failed) {
        /* h2o has released the last good buffer: now the stream may be aborted (one send per
         * proceed: notes §3). The client gets a reset, never wrong bytes. */
        h2o_send(s->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    /* At most one buffer can be ready: the other is the one h2o just released or the one a job fills. */
    int ready = s->ready[0].base != NULL ? 0 : (s->ready[1].base != NULL ? 1 : -1);
    if (ready >= 0)
        send_buffer(s, ready);
    else
        s->waiting = true;
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

static void decrypt_done(struct cf_job *job)
{
    struct decrypt_job *j = (struct decrypt_job *)(void *)job;
    struct stream *s = j->s;
    s->job_busy = false;
    if (j->gate && j->gate_st == CF_OK)
        s->gate_passed = true;
    if (j->gate && j->gate_st != CF_OK)
        j->st = j->gate_st; /* refused: whatever was decrypted is not sent */
    if (j->st == CF_OK)
        s->ready[j->buf] = j->out;
    if (s->req == NULL || s->stopped) {
        stream_unref(s);
        return;
    }
    if (j->st != CF_OK) {
        if (j->gate_st == CF_OK)
            cf_log_error("download: chunk %u of a file failed (%s)", j->index, cf_status_name(j->st));
        if (!s->started) {
            cf_req_unwatch(s->r);
            cf_respond_status(s->r, j->st, NULL);
        } else if (s->waiting) {
            h2o_send(s->req, NULL, 0, H2O_SEND_STATE_ERROR);
        } else {
            s->failed = true; /* h2o still holds a buffer: abort when it asks for more */
        }
        stream_unref(s);
        return;
    }
    if (!s->started) {
        cf_req_unwatch(s->r);
        s->r->answered = true;
        send_headers(s);
        send_buffer(s, j->buf);
    } else if (s->waiting) {
        send_buffer(s, j->buf);
    } /* else h2o still holds the other buffer: this one waits for proceed */
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

    /* Small files (the common case) need small buffers: every chunk of a file fits in min(size, chunk). */
    size_t buf_size = size < CF_CHUNK_SIZE ? (size_t)(size == 0 ? 1 : size) : CF_CHUNK_SIZE;
    const bool two = end != 0 && (end - 1) / CF_CHUNK_SIZE > first / CF_CHUNK_SIZE;
    uint8_t *b0 = cf_try_malloc(buf_size), *b1 = two ? cf_try_malloc(buf_size) : NULL;
    if (b0 == NULL || (two && b1 == NULL)) {
        free(b0);
        free(b1);
        cf_reader_free(rd);
        cf_respond_status(r, CF_EIO, NULL);
        goto drop_ctx;
    }
    struct stream *s = cf_xcalloc(1, sizeof *s);
    s->gen.proceed = on_proceed;
    s->gen.stop = on_stop;
    s->req = req;
    s->rd = rd;
    s->first = first;
    s->next = first;
    s->end = end;
    s->next_chunk = (uint32_t)(first / CF_CHUNK_SIZE);
    s->last_chunk = end == 0 ? 0 : (uint32_t)((end - 1) / CF_CHUNK_SIZE);
    s->buf_size = buf_size;
    s->buf[0] = b0;
    s->buf[1] = b1;
    s->sending = -1;
    s->status = status;
    s->fh = fh;
    s->opts = opts; /* the stream owns the gate's context from here */
    s->refs = 1; /* the request's */
    struct stream **guard = h2o_mem_alloc_shared(&req->pool, sizeof *guard, on_req_dispose);
    *guard = s;
    s->r = r;
    cf_req_watch(r, &s->r);
    start_decrypt(s, 0);
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

/* The writer thread made "began" durable (or could not): the transfer may go ahead. */
static void transfer_written(void *arg, enum cf_status st, uint64_t seq)
{
    struct transfer_ctx *c = arg;
    c->began = seq;
    if (st != CF_OK && c->drawn != 0) {
        /* Not served: the whole reservation goes back (on a worker: this thread must stay short). */
        give_back(c, 0, NULL);
        c->drawn = 0;
    }
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
    /* Bulk downloads. A link counts what its budget counts: every byte drawn, and a file each time
     * its download figure rises. Members: whole downloads (from byte 0); inline views are not
     * downloads. */
    if (c->t.count_share)
        cf_audit_count_download(&c->t.tenant, (enum cf_actor_type)c->t.actor_type, &c->t.actor,
                                c->ip != NULL ? c->ip : "", counted ? 1 : 0, end - first);
    else if (first == 0 && strstr(c->t.action, ".download") != NULL)
        cf_audit_count_download(&c->t.tenant, (enum cf_actor_type)c->t.actor_type, &c->t.actor,
                                c->ip != NULL ? c->ip : "", 1, end - first);
    /* Durable before the first byte: the decryption of the first chunk waits for the group commit
     * (without holding a worker); if the event cannot be written, the file is not served. */
    c->cont = cont;
    c->cont_arg = arg;
    cf_audit_submit_cb(e, transfer_written, c);
    return CF_OK;
}

/* The end (loop thread): what was sent, and whether all of it. A link's transfer cut short gives
 * back what it did not send before its end is recorded (so the end event, once durable, shows a
 * budget that is settled). */
static void transfer_end(void *ctx, uint64_t sent, bool completed)
{
    struct transfer_ctx *c = ctx;
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

static void serve_member(struct cf_req *r, bool view)
{
    struct cf_node n;
    enum cf_level level;
    if (!cf_acl_param_or_respond(r, 0, view ? CF_LEVEL_VIEW : CF_LEVEL_DOWNLOAD, &n, &level))
        return;
    h2o_iovec_t ua = cf_header(r, "user-agent");
    char *uas = ua.base != NULL ? cf_text_clean(ua.base, ua.len, 512) : NULL;
    struct cf_transfer t = {
        .store = r->app->store,
        .action = view ? "file.view" : "file.download",
        .tenant = r->who.user.tenant,
        .node = n.id,
        .actor_type = CF_ACTOR_USER,
        .actor = r->who.user.id,
        .actor_name = r->who.user.username,
        .ip = r->ip,
        .user_agent = uas,
        .size = n.size,
    };
    struct cf_serve_opts o = {.view = view};
    if (!r->app->bench_no_transfer_audit)
        cf_transfer_opts(&t, &o);
    free(uas);
    cf_serve_file(r, &r->who.user.tenant, &n, &o);
    cf_node_clear(&n);
}

void cf_h_file_content(struct cf_req *r)
{
    serve_member(r, false);
}

void cf_h_file_view(struct cf_req *r)
{
    serve_member(r, true);
}
