/*
 * conn.c: connection limits (see conn.h): the accept callback, the per-address connection table,
 * the sweep of each loop's connections, the count of cancelled HTTP/2 streams, and the intake gate
 * (back-pressure on request bodies still arriving, below); and the stream error for malformed
 * HTTP/2 requests (an empty :path), which libh2o 2.2.5 would pass on.
 */
#include "conn.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <h2o/http2.h>
#include <h2o/http2_internal.h>

#include "addr.h"
#include "budget.h"
#include "fault.h"
#include "log.h"
#include "metrics.h"

#define ACCEPTS_PER_WAKEUP 32

/*
 * libh2o 2.2.5 bounds a TLS handshake (handshake_timeout), an HTTP/1.1 request (req_timeout, armed
 * once per request; it also closes idle keep-alive connections) and an idle HTTP/2 connection
 * (idle_timeout, but every frame restarts it, PING included). It does not bound: connections per
 * client or in total; how long an HTTP/2 stream may take to send its request; how many streams a
 * client leaves unfinished beyond the 100 it may open at once (h2o refuses the 101st with REFUSED_STREAM,
 * but an unfinished stream holds its slot until the connection ends); who may
 * send a large body (the whole body is buffered before any handler runs); or how many requests a
 * client cancels (CVE-2023-44487, "rapid reset"). Coffer adds those here: a table of connections per
 * client address shared by the loops (each loop accepts on its own), checked at accept; a sweep of
 * each loop's connections every SWEEP_MS; and a count of RST_STREAM frames per HTTP/2 connection.
 * A connection that breaks a rule is shut down (shutdown(2) on its descriptor): h2o then reads
 * end-of-stream and closes it through its own paths, so no h2o state is touched from outside.
 * docs/SECURITY.md ("Transport and HTTP") lists each rule with its key and its test.
 */
#define SWEEP_MS 50
#define CANCEL_WINDOW_MS 10000
#define ADDR_BUCKETS 4096
#define ADDR_KEY_LEN CF_ADDR_KEY_LEN /* an IPv4 address or an IPv6 /64 (addr.h) */
#define LINGER_MS 2000                  /* after a refused PUT's 413: how long its bytes are dropped */
#define LINGER_MAX_BYTES (64u << 20)    /* ... and how many at most */
#define KILL_GRACE_MS 10000             /* a connection closed by a limit and still open after this is
                                           logged and counted (it should be gone within a sweep) */

struct addr_entry {
    struct addr_entry *next;
    uint8_t key[ADDR_KEY_LEN];
    unsigned count;
};

static struct {
    pthread_mutex_t lock;
    struct addr_entry *buckets[ADDR_BUCKETS];
    size_t total;
} conn_table = {.lock = PTHREAD_MUTEX_INITIALIZER};

struct cf_conn {
    struct cf_loop *loop;
    h2o_socket_t *sock;
    h2o_linklist_t link;         /* cf_loop.conns */
    struct addr_entry *addr;     /* its entry in conn_table */
    uint64_t last_active;        /* ms, HTTP/2: the last sweep that saw a stream */
    uint32_t last_max_open;      /* HTTP/2: the highest stream id at that sweep */
    uint64_t cancel_window;      /* ms: start of the current window of CANCEL_WINDOW_MS */
    unsigned cancels;            /* requests the client cancelled in that window */
    h2o_http2_conn_t *hc;        /* HTTP/2: its h2o connection (set by the sweep), else NULL */
    h2o_socket_cb read;          /* h2o's callback that reads requests (HTTP/2: its on_read; HTTP/1.1:
                                    its request reader), behind conn_on_read; NULL until seen */
    h2o_socket_cb h1_read;       /* HTTP/1.1: h2o's read callback, stopped while a 413 goes out */
    uint64_t receiving;          /* the intake gate: bytes of its request bodies still arriving */
    uint64_t ticket;             /* ... the order in which it began receiving (0: not receiving) */
    uint64_t progress_at;        /* ... ms when receiving last changed */
    bool paused;                 /* ... reading stopped by the gate */
    char *refusal;               /* HTTP/1.1: the 413 being written (put_refuse_h1), or NULL */
    uint64_t linger_until;       /* ms: after the 413, the client's bytes are read and dropped until
                                    then (0: the 413 is still being written) */
    uint64_t lingered;           /* bytes dropped so far */
    uint64_t paused_at;          /* the intake gate: ms when its reading was last stopped */
    uint64_t killed_at;          /* ms when it was shut to be closed (kill_conn, a refused PUT's
                                    close); 0: not (killed()) */
    bool kill_reported;          /* ... and it outlived KILL_GRACE_MS, which was logged */
};

static bool killed(const struct cf_conn *c)
{
    return c->killed_at != 0;
}

static size_t addr_bucket(const uint8_t key[ADDR_KEY_LEN])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < ADDR_KEY_LEN; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % ADDR_BUCKETS;
}

/* Counts one more connection from key, or returns NULL (and which limit) if that would exceed
 * limits.max_connections or limits.max_connections_per_address. */
static struct addr_entry *addr_acquire(const struct cf_config *cfg, const uint8_t key[ADDR_KEY_LEN],
                                       bool *per_address)
{
    struct addr_entry *e;
    size_t b = addr_bucket(key);
    pthread_mutex_lock(&conn_table.lock);
    *per_address = false;
    if (conn_table.total >= cfg->limits.max_connections) {
        e = NULL;
        goto out;
    }
    for (e = conn_table.buckets[b]; e != NULL; e = e->next)
        if (memcmp(e->key, key, ADDR_KEY_LEN) == 0)
            break;
    if (e != NULL && e->count >= cfg->limits.max_connections_per_address) {
        *per_address = true;
        e = NULL;
        goto out;
    }
    if (e == NULL) {
        e = cf_xcalloc(1, sizeof *e);
        memcpy(e->key, key, ADDR_KEY_LEN);
        e->next = conn_table.buckets[b];
        conn_table.buckets[b] = e;
    }
    e->count++;
    conn_table.total++;
out:
    pthread_mutex_unlock(&conn_table.lock);
    return e;
}

static void addr_release(struct addr_entry *e)
{
    pthread_mutex_lock(&conn_table.lock);
    conn_table.total--;
    if (--e->count == 0) {
        struct addr_entry **p = &conn_table.buckets[addr_bucket(e->key)];
        while (*p != e)
            p = &(*p)->next;
        *p = e->next;
        free(e);
    }
    pthread_mutex_unlock(&conn_table.lock);
}

static void intake_closed(struct cf_conn *c);

static void on_connection_close(void *data)
{
    struct cf_conn *c = data;
    intake_closed(c);
    c->loop->connections--;
    cf_metrics_connection(-1);
    h2o_linklist_unlink(&c->link);
    addr_release(c->addr);
    free(c->refusal);
    free(c);
}

void cf_conn_on_accept(h2o_socket_t *listener, const char *err)
{
    struct cf_loop *l = listener->data;
    if (err != NULL || l->state != CF_LOOP_RUNNING)
        return;
    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        struct sockaddr_storage ss;
        uint8_t key[ADDR_KEY_LEN];
        bool per_address;
        cf_addr_key((struct sockaddr *)&ss, h2o_socket_getpeername(sock, (struct sockaddr *)&ss), key);
        struct addr_entry *e = addr_acquire(l->app->cfg, key, &per_address);
        if (e == NULL) {
            l->limited[per_address ? CF_LIMIT_PER_ADDRESS : CF_LIMIT_CONNECTIONS]++;
            cf_metrics_conn_limited(per_address ? CF_LIMIT_PER_ADDRESS : CF_LIMIT_CONNECTIONS);
            h2o_socket_close(sock);
            continue;
        }
        struct cf_conn *c = cf_xcalloc(1, sizeof *c);
        c->loop = l;
        c->sock = sock;
        c->addr = e;
        h2o_linklist_insert(&l->conns, &c->link);
        l->connections++;
        cf_metrics_connection(1);
        sock->on_close.cb = on_connection_close;
        sock->on_close.data = c;
        h2o_accept(&l->accept_ctx, sock);
    }
}

static void intake_resume(struct cf_conn *c);
typedef void h2o_socket_cb_starter_fn(h2o_socket_t *sock, h2o_socket_cb cb);
static h2o_socket_cb_starter_fn *h2o_read_start(void);
static void conn_on_read(h2o_socket_t *sock, const char *err);

/* Closes c, which may be freed on return. Only from the sweep or conn_on_read: never from inside h2o.
 * Whatever state h2o's reading is in (stopped by the intake gate, by h2o's own write throttle, or
 * running), h2o's request reader is handed an error: HTTP/2 closes at once or when its write in
 * flight fails on the shut socket; HTTP/1.1 closes. */
static void kill_conn(struct cf_conn *c, enum cf_limit why)
{
    if (killed(c))
        return;
    c->killed_at = h2o_now(c->loop->ctx.loop);
    c->loop->limited[why]++;
    cf_metrics_conn_limited(why);
    h2o_socket_t *sock = c->sock;
    shutdown(h2o_socket_get_fd(sock), SHUT_RDWR); /* whatever h2o writes or reads next fails */
    if (c->paused)
        intake_resume(c); /* h2o must be reading to see the error below */
    /* The read callback gets an error now, which closes the connection through h2o's own path (h2o
     * sees no end-of-stream while the client keeps sending). On HTTP/2, a reading h2o stopped by
     * itself is started again first: the error must reach it whether or not h2o was reading (a read
     * error is h2o's path for a client that vanished, safe with requests in progress). HTTP/1.1 stops
     * reading only while it answers a request, and the answer's write fails on the shut socket. */
    if (sock->_cb.read == NULL && c->hc != NULL && c->read != NULL)
        h2o_read_start()(sock, conn_on_read);
    if (sock->_cb.read != NULL)
        sock->_cb.read(sock, "closed by a connection limit");
}

static uint64_t tv_ms(const struct timeval *tv)
{
    return (uint64_t)tv->tv_sec * 1000 + (uint64_t)tv->tv_usec / 1000;
}

/* The route table's CF_ROUTE_BODY, handed in by cf_conn_set_takes_body before the loops start. */
static cf_conn_takes_body_fn *takes_body;

static bool route_takes_body(const char *method, size_t mlen, const char *target, size_t tlen)
{
    return takes_body != NULL && takes_body(method, mlen, target, tlen);
}

void cf_conn_set_takes_body(cf_conn_takes_body_fn *fn)
{
    takes_body = fn;
}

/* Whether a request may send a body larger than limits.max_json_bytes: only the routes that take
 * one (CF_ROUTE_BODY in route.c), and only with credentials (which the handler checks once the body
 * is in). */
static bool h2_may_send_body(h2o_req_t *req)
{
    return route_takes_body(req->input.method.base, req->input.method.len, req->input.path.base,
                               req->input.path.len) &&
           (h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1) != -1 ||
            h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, -1) != -1);
}

/* The same for an HTTP/1.1 request still being received: h2o keeps its request line and headers at
 * the start of the socket's input buffer until the whole body is in. */
static bool h1_may_send_body(const char *b, size_t n)
{
    const char *sp1 = memchr(b, ' ', n);
    if (sp1 == NULL)
        return false;
    const char *sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - b));
    const char *eol = sp2 != NULL ? memchr(sp2, '\n', n - (size_t)(sp2 - b)) : NULL;
    if (eol == NULL || !route_takes_body(b, (size_t)(sp1 - b), sp1 + 1, (size_t)(sp2 - sp1 - 1)))
        return false;
    for (const char *line = eol + 1; line < b + n;) {
        const char *end = memchr(line, '\n', (size_t)(b + n - line));
        if (end == NULL || end - line <= 1)
            return false; /* headers unfinished, or their end reached without credentials */
        size_t ll = (size_t)(end - line);
        if ((ll > 14 && strncasecmp(line, "authorization:", 14) == 0) || (ll > 7 && strncasecmp(line, "cookie:", 7) == 0))
            return true;
        line = end + 1;
    }
    return false;
}

/* ---- WebDAV PUT size (dav.max_put_bytes) -------------------------------------------------------- */

/* libh2o 2.2.5 runs a handler only once the whole body is in, so a PUT over dav.max_put_bytes (below
 * limits.max_request_body_bytes, h2o's own cap) is refused here, while it arrives: HTTP/1.1 gets a
 * 413 written on the socket as soon as its headers say (Content-Length) or its body shows (chunked)
 * that it is too large, then the connection is closed (lingering: put_refusal_drain); an HTTP/2
 * stream is reset (CANCEL): h2o
 * 2.2.5 cannot answer a stream before its request has ended. A body that did arrive whole anyway
 * (between two sweeps) gets the same 413 from the route pipeline (route.c). */

uint64_t cf_conn_put_limit(const struct cf_config *cfg, const char *method, size_t mlen, const char *target, size_t tlen)
{
    if (mlen != 3 || memcmp(method, "PUT", 3) != 0 || tlen < 4 || memcmp(target, "/dav", 4) != 0)
        return UINT64_MAX;
    if (tlen == 4 || target[4] == '/' || target[4] == '?')
        return cfg->dav.max_put_bytes;
    return UINT64_MAX;
}

size_t cf_conn_put_limit_text(uint64_t max, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "This server accepts a WebDAV PUT of at most %" PRIu64 " bytes (dav.max_put_bytes).\n"
                     "Upload larger files with the web app or another tus client (resumable uploads in parts),\n"
                     "or ask the administrator to raise dav.max_put_bytes.\n",
                     max);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

bool cf_conn_is_tls(h2o_req_t *req)
{
    if (cf_fault(CF_FAULT_CLEARTEXT))
        return false; /* fault builds: a test's stand-in for a cleartext listener */
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    return sock != NULL && sock->ssl != NULL;
}

/* The length of the header block at the start of b (through its empty line), 0 if unfinished. */
static size_t h1_head_len(const char *b, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (b[i] == '\n' && (b[i + 1] == '\n' || (i + 2 < n && b[i + 1] == '\r' && b[i + 2] == '\n')))
            return i + (b[i + 1] == '\n' ? 2 : 3);
    return 0;
}

/* Content-Length of the header block head (hl bytes), if it has one that is a number. */
static bool h1_content_length(const char *head, size_t hl, uint64_t *out)
{
    for (const char *line = head; line < head + hl;) {
        const char *end = memchr(line, '\n', (size_t)(head + hl - line));
        if (end == NULL)
            break;
        if (end - line > 15 && strncasecmp(line, "content-length:", 15) == 0) {
            const char *p = line + 15;
            while (p < end && (*p == ' ' || *p == '\t'))
                p++;
            uint64_t v = 0;
            bool digits = false;
            for (; p < end && *p >= '0' && *p <= '9'; p++, digits = true) {
                if (v > (UINT64_MAX - 9) / 10)
                    return false;
                v = v * 10 + (uint64_t)(*p - '0');
            }
            *out = v;
            return digits;
        }
        line = end + 1;
    }
    return false;
}

/* Whether the HTTP/1.1 request h2o is receiving on sock is a WebDAV PUT over its limit (stored in
 * *limit): by its Content-Length while the body is still arriving, or by the body received so far
 * (chunked: h2o decodes it in place behind the headers). Only while h2o is reading that request
 * (not while a handler runs or a 100 Continue is being written): the buffer then starts with it. */
static bool h1_put_over_limit(const struct cf_config *cfg, h2o_socket_t *sock, uint64_t *limit)
{
    h2o_buffer_t *in = sock->input;
    if (sock->_cb.read == NULL || sock->_cb.write != NULL || in->size < 10 || memcmp(in->bytes, "PUT /dav", 8) != 0)
        return false;
    size_t hl = h1_head_len(in->bytes, in->size);
    const char *sp = memchr(in->bytes + 4, ' ', in->size - 4);
    if (hl == 0 || sp == NULL || sp > in->bytes + hl)
        return false;
    *limit = cf_conn_put_limit(cfg, in->bytes, 3, in->bytes + 4, (size_t)(sp - in->bytes - 4));
    if (*limit == UINT64_MAX)
        return false;
    uint64_t cl;
    if (h1_content_length(in->bytes, hl, &cl))
        return cl > *limit && in->size - hl < cl;
    return in->size - hl > *limit;
}

/* Closes a refused connection through h2o's own read path (c is freed). */
static void put_refusal_close(struct cf_conn *c, const char *why)
{
    h2o_socket_t *sock = c->sock;
    h2o_socket_cb rd = c->h1_read;
    c->killed_at = h2o_now(c->loop->ctx.loop);
    shutdown(h2o_socket_get_fd(sock), SHUT_RDWR);
    rd(sock, why);
}

/* Lingering close: the client may still be sending the body it started; were the connection closed
 * now, the unread bytes would make the kernel reset it and the client could lose the 413 before
 * reading it. So its bytes are read and dropped, up to LINGER_MAX_BYTES or until the sweep sees
 * LINGER_MS pass, or until the client closes (as Apache and nginx do). */
static void put_refusal_drain(h2o_socket_t *sock, const char *err)
{
    struct cf_conn *c = sock->on_close.data;
    if (err == NULL) {
        c->lingered += sock->input->size;
        h2o_buffer_consume(&sock->input, sock->input->size);
        if (c->lingered <= LINGER_MAX_BYTES)
            return;
    }
    put_refusal_close(c, err != NULL ? err : "WebDAV PUT refused: the client kept sending");
}

/* The 413 has been written (or failed): end the response with FIN, then linger. */
static void put_refusal_sent(h2o_socket_t *sock, const char *err)
{
    struct cf_conn *c = sock->on_close.data;
    if (err != NULL) {
        put_refusal_close(c, err);
        return;
    }
    shutdown(h2o_socket_get_fd(sock), SHUT_WR);
    c->linger_until = h2o_now(c->loop->ctx.loop) + LINGER_MS;
    h2o_socket_read_start(sock, put_refusal_drain);
}

/* Answers the HTTP/1.1 request being received on c with 413 (text naming the limit) and closes the
 * connection once that is written. h2o is reading the body and writing nothing (h1_put_over_limit):
 * its reading is stopped first, so its handler never runs for this request. */
static void put_refuse_h1(struct cf_conn *c, uint64_t limit)
{
    char text[512], id[17]; /* an X-Request-Id as the route pipeline makes them: 16 hex digits */
    uint8_t rnd[8];
    size_t tl = cf_conn_put_limit_text(limit, text, sizeof text);
    cf_random(rnd, sizeof rnd);
    cf_hex_encode(rnd, sizeof rnd, id);
    c->refusal = cf_xasprintf("HTTP/1.1 413 Payload Too Large\r\n"
                              "content-type: text/plain; charset=utf-8\r\n"
                              "content-length: %zu\r\n"
                              "connection: close\r\n"
                              "x-request-id: %s\r\n"
                              "strict-transport-security: max-age=63072000; includeSubDomains\r\n"
                              "x-content-type-options: nosniff\r\n"
                              "referrer-policy: no-referrer\r\n"
                              "cache-control: no-store\r\n"
                              "content-security-policy: default-src 'none'; frame-ancestors 'none'; sandbox\r\n"
                              "\r\n%.*s",
                              tl, id, (int)tl, text);
    c->h1_read = c->sock->_cb.read;
    h2o_socket_read_stop(c->sock);
    c->loop->limited[CF_LIMIT_PUT]++;
    cf_metrics_conn_limited(CF_LIMIT_PUT);
    h2o_iovec_t buf = h2o_iovec_init(c->refusal, strlen(c->refusal));
    h2o_socket_write(c->sock, &buf, 1, put_refusal_sent);
}

/* An HTTP/2 stream receiving a WebDAV PUT over its limit: by content-length or by what came. */
static bool h2_put_over_limit(const struct cf_config *cfg, h2o_http2_stream_t *st)
{
    uint64_t limit = cf_conn_put_limit(cfg, st->req.input.method.base, st->req.input.method.len, st->req.input.path.base,
                                       st->req.input.path.len);
    if (limit == UINT64_MAX)
        return false;
    return (st->_expected_content_length != SIZE_MAX && st->_expected_content_length > limit) ||
           (st->_req_body != NULL && st->_req_body->size > limit);
}

/* Resets the stream (RST_STREAM CANCEL), as h2o does for a stream error; the connection's other
 * streams go on. From the sweep, outside h2o's own callbacks. */
static void put_refuse_h2(struct cf_loop *l, h2o_http2_conn_t *hc, h2o_http2_stream_t *st)
{
    l->limited[CF_LIMIT_PUT]++;
    cf_metrics_conn_limited(CF_LIMIT_PUT);
    h2o_http2_encode_rst_stream_frame(&hc->_write.buf, st->stream_id, -H2O_HTTP2_ERROR_CANCEL);
    h2o_http2_conn_request_write(hc);
    h2o_http2_stream_reset(hc, st);
}

static void intake_sweep(struct cf_loop *l, uint64_t now);

/* Puts conn_on_read in front of h2o's request-reading callback: the one h2o reads with when the
 * sweep first sees the connection (HTTP/2 once open, HTTP/1.1 once request bytes came). When h2o
 * restarts reading with it later, h2o_socket_read_start below puts conn_on_read in front again.
 * Any other callback h2o installs (its TLS shutdown's) is left alone. */
static void conn_wrap_read(struct cf_conn *c)
{
    h2o_socket_t *s = c->sock;
    if (c->read == NULL && s->_cb.read != NULL && s->_cb.read != conn_on_read)
        c->read = s->_cb.read;
    if (s->_cb.read != NULL && s->_cb.read == c->read)
        s->_cb.read = conn_on_read;
}

static void sweep_h2(struct cf_loop *l, uint64_t now)
{
    const struct cf_config *cfg = l->app->cfg;
    for (h2o_linklist_t *n = l->ctx.http2._conns.next, *next; n != &l->ctx.http2._conns; n = next) {
        next = n->next; /* kill_conn may free this one */
        h2o_http2_conn_t *hc = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, n);
        struct cf_conn *c = hc->sock != NULL ? hc->sock->on_close.data : NULL;
        /* HALF_CLOSED (a GOAWAY sent) still receives the bodies of the streams it has: the rules apply. */
        if (c == NULL || killed(c) || hc->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING)
            continue;
        if (c->last_active == 0)
            c->last_active = now;
        c->hc = hc;
        conn_wrap_read(c);
        int why = -1;
        h2o_http2_stream_t *refuse = NULL; /* a WebDAV PUT over dav.max_put_bytes */
        for (khiter_t k = kh_begin(hc->streams); k != kh_end(hc->streams) && why < 0; k++) {
            if (!kh_exist(hc->streams, k))
                continue;
            h2o_http2_stream_t *st = kh_val(hc->streams, k);
            if (st->state != H2O_HTTP2_STREAM_STATE_RECV_HEADERS && st->state != H2O_HTTP2_STREAM_STATE_RECV_BODY)
                continue;
            if (now > tv_ms(&st->req.timestamps.request_begin_at) + cfg->limits.request_timeout_ms)
                why = CF_LIMIT_SLOW_REQUEST;
            else if (st->state == H2O_HTTP2_STREAM_STATE_RECV_BODY && st->_req_body != NULL &&
                     st->_req_body->size > cfg->limits.max_json_bytes && !h2_may_send_body(&st->req))
                why = CF_LIMIT_BODY;
            else if (st->state == H2O_HTTP2_STREAM_STATE_RECV_BODY && refuse == NULL && h2_put_over_limit(cfg, st))
                refuse = st;
        }
        if (why < 0 && refuse != NULL)
            put_refuse_h2(l, hc, refuse);
        if (why < 0 && hc->state == H2O_HTTP2_CONN_STATE_OPEN) {
            if (hc->num_streams.pull.open != 0 || hc->pull_stream_ids.max_open != c->last_max_open) {
                c->last_active = now;
                c->last_max_open = hc->pull_stream_ids.max_open;
            } else if (now > c->last_active + cfg->limits.idle_timeout_ms) {
                why = CF_LIMIT_IDLE; /* no stream for idle_timeout, whatever PINGs or SETTINGS came */
            }
        }
        if (why >= 0)
            kill_conn(c, (enum cf_limit)why);
    }
}

static void sweep_h1(struct cf_loop *l, uint64_t now)
{
    size_t max = l->app->cfg->limits.max_json_bytes;
    for (h2o_linklist_t *n = l->conns.next, *next; n != &l->conns; n = next) {
        next = n->next; /* kill_conn may free this one */
        struct cf_conn *c = H2O_STRUCT_FROM_MEMBER(struct cf_conn, link, n);
        h2o_buffer_t *in = c->sock->input;
        if (!killed(c) && c->refusal != NULL && c->linger_until != 0 && now >= c->linger_until) {
            put_refusal_close(c, "WebDAV PUT refused: lingering close done"); /* frees c */
            continue;
        }
        if (killed(c) || c->refusal != NULL || in == NULL || in->size == 0)
            continue;
        h2o_iovec_t alpn = h2o_socket_ssl_get_selected_protocol(c->sock);
        if (c->hc != NULL || (alpn.len == 2 && memcmp(alpn.base, "h2", 2) == 0))
            continue;
        /* Request bytes have come, so the TLS handshake is over: h2o's callback now reads requests. */
        conn_wrap_read(c);
        uint64_t limit;
        if (h1_put_over_limit(l->app->cfg, c->sock, &limit))
            put_refuse_h1(c, limit);
        else if (in->size > max && !h1_may_send_body(in->bytes, in->size))
            kill_conn(c, CF_LIMIT_BODY);
    }
}

static const char *const limit_names[CF_LIMIT_COUNT] = {
    [CF_LIMIT_CONNECTIONS] = "refused (limits.max_connections)",
    [CF_LIMIT_PER_ADDRESS] = "refused (limits.max_connections_per_address)",
    [CF_LIMIT_SLOW_REQUEST] = "closed: request not received within limits.request_timeout",
    [CF_LIMIT_BODY] = "closed: request body over limits.max_json_bytes without credentials or off the upload routes",
    [CF_LIMIT_IDLE] = "closed: no request within limits.idle_timeout",
    [CF_LIMIT_CANCELS] = "closed: over limits.max_cancels_per_connection",
    [CF_LIMIT_PUT] = "refused a WebDAV PUT over dav.max_put_bytes while it arrived",
};

void cf_conn_sweep(struct cf_loop *l, uint64_t now)
{
    if (now < l->next_sweep)
        return;
    l->next_sweep = now + SWEEP_MS;
    sweep_h2(l, now);
    sweep_h1(l, now);
    intake_sweep(l, now);
    /* At most one line per limit and loop every 10 s: an attack must not flood the log. */
    for (int i = 0; i < CF_LIMIT_COUNT; i++) {
        if (l->limited[i] != l->limited_logged[i] && now >= l->next_limit_log[i]) {
            cf_log_warn("loop %u: %llu connection(s) %s", l->index,
                        (unsigned long long)(l->limited[i] - l->limited_logged[i]), limit_names[i]);
            l->limited_logged[i] = l->limited[i];
            l->next_limit_log[i] = now + 10000;
        }
    }
}

/* Cancelled streams (rapid reset). Each RST_STREAM frame a client sends counts, whether or not the
 * server had finished the response (a small one is often complete before the reset arrives: the
 * work was done all the same). The frames are counted in the socket's input before h2o parses it
 * (conn_on_read). h2o leaves only an incomplete frame in the buffer after parsing, so each call
 * starts at a frame boundary (or at the connection preface) and counts whole frames only. Returns
 * true when c is over limits.max_cancels_per_connection. */
static bool h2_over_cancels(struct cf_conn *c, h2o_socket_t *sock)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const uint8_t *p = (const uint8_t *)sock->input->bytes;
    size_t n = sock->input->size, off = 0;
    if (n >= sizeof preface - 1 && memcmp(p, preface, sizeof preface - 1) == 0)
        off = sizeof preface - 1;
    uint64_t now = h2o_now(c->loop->ctx.loop);
    while (off + 9 <= n) {
        size_t len = (size_t)p[off] << 16 | (size_t)p[off + 1] << 8 | p[off + 2];
        if (off + 9 + len > n)
            break;
        if (p[off + 3] == 3 /* RST_STREAM */) {
            if (now >= c->cancel_window + CANCEL_WINDOW_MS) {
                c->cancel_window = now;
                c->cancels = 0;
            }
            if (++c->cancels > c->loop->app->cfg->limits.max_cancels_per_connection)
                return true;
        }
        off += 9 + len;
    }
    return false;
}

static void intake_after_read(struct cf_conn *c);

/* The read callback in front of h2o's own on every connection that reads requests (conn_wrap_read,
 * h2o_socket_read_start): the cancel count (HTTP/2), then h2o's callback, then the intake gate. */
static void conn_on_read(h2o_socket_t *sock, const char *err)
{
    struct cf_conn *c = sock->on_close.data;
    struct cf_loop *l = c->loop;
    h2o_socket_cb orig = c->read;
    if (err == NULL && !killed(c) && c->hc != NULL && sock->input != NULL && h2_over_cancels(c, sock)) {
        /* Not inside h2o here: close now, before h2o parses any of these frames. */
        kill_conn(c, CF_LIMIT_CANCELS); /* calls this again with an error; c is gone */
        return;
    }
    l->reading = c;
    orig(sock, err); /* may free c: on_connection_close then clears l->reading */
    if (l->reading != c)
        return;
    l->reading = NULL;
    if (err == NULL)
        intake_after_read(c);
}

/* ---- the intake gate: back-pressure on request bodies still arriving ---------------------------
 *
 * libh2o 2.2.5 reads a request body whole before any handler runs, and opens the HTTP/2 window as
 * fast as data comes, so without this the bodies in memory grow with the number of clients sending
 * (8 uploads in 16 MiB pieces: 128 MiB and more). The only brake h2o leaves is its socket: a
 * connection it does not read from fills its TCP window, and the client's sends block. So:
 *
 * - Every read (conn_on_read) recounts what the connection has of bodies still arriving (HTTP/2:
 *   its streams receiving a body or waiting to run; HTTP/1.1: the request being read) into one
 *   process-wide count (budget.c), next to the bytes upload handlers hold.
 * - While those two together are over limits.max_buffered_body_bytes, a connection that reads more
 *   body is stopped (h2o_socket_read_stop), unless it is the head: the one connection in the
 *   process allowed to finish its body when nothing is held, so that the body is then admitted
 *   alone by the handler's budget (one body alone always is) instead of being refused with 503.
 *   No connection becomes the head while something is held: the handlers' work frees it, whatever
 *   the clients do, so waiting for it cannot deadlock.
 * - The sweep (every SWEEP_MS) reads the stopped connections again once the total is back under
 *   the limit, makes the oldest stopped connection the head when there is none and nothing is
 *   held, and takes the head's place from one that has stalled for HEAD_STALL_MS (a client that
 *   stops sending mid-body cannot hold the others back; limits.request_timeout ends it).
 * - h2o's HTTP/2 idle timer is unlinked on a stopped connection (it would close it). So that a
 *   stop can never be endless, whatever its streams' states (the sweep's request_timeout rule sees
 *   only streams still receiving), a connection stopped for limits.request_timeout is closed.
 * - The switch is the gate's alone while a connection is stopped: Debian's libh2o 2.2.5 restarts an
 *   HTTP/2 connection's reading by itself whenever one of its writes completes (a write-buffer
 *   throttle of its own; the WINDOW_UPDATE its parsing sends is such a write), which would undo
 *   every stop at once. So h2o_socket_read_start is defined here, in front of libh2o's (libh2o calls
 *   it through its PLT, as sanitize_h2o.c relies on for the allocator): for a stopped connection it
 *   only notes the callback h2o asked for, which the resume installs behind conn_on_read; for any
 *   other socket it is libh2o's own.
 * Only the loop that owns a connection touches it; the head is one atomic pointer that any loop
 * may claim when it is NULL, and only the head's own loop releases it.
 */
#define HEAD_STALL_MS 1000

static _Atomic(struct cf_conn *) intake_head;
static _Atomic uint64_t intake_tickets;

/* The bytes of bodies c is receiving now, each counted at its declared length (content-length) when
 * it has one, since h2o will hold all of it: a body is admitted by what it will take, so that the
 * bodies let through fit the handlers' budget when they are whole (no 503 for them then). */
static uint64_t conn_receiving(const struct cf_conn *c)
{
    uint64_t max = c->loop->app->cfg->limits.max_request_body_bytes;
    if (c->hc != NULL) {
        uint64_t n = 0;
        khash_t(h2o_http2_stream_t) *streams = c->hc->streams;
        for (khiter_t k = kh_begin(streams); k != kh_end(streams); k++) {
            if (!kh_exist(streams, k))
                continue;
            const h2o_http2_stream_t *st = kh_val(streams, k);
            if (st->state == H2O_HTTP2_STREAM_STATE_RECV_BODY) {
                uint64_t got = st->_req_body != NULL ? st->_req_body->size : 0, want = st->_expected_content_length;
                n += want != SIZE_MAX && want > got ? (want < max ? want : max) : got;
            } else if (st->state == H2O_HTTP2_STREAM_STATE_REQ_PENDING && st->_req_body != NULL) {
                n += st->_req_body->size;
            }
        }
        return n;
    }
    /* HTTP/1.1: h2o reads a request into the socket's buffer and stops reading once it is whole. */
    h2o_socket_t *s = c->sock;
    if (!(c->paused || s->_cb.read != NULL) || s->input == NULL || s->input->size == 0)
        return 0;
    size_t hl = h1_head_len(s->input->bytes, s->input->size);
    uint64_t cl;
    if (hl != 0 && h1_content_length(s->input->bytes, hl, &cl) && hl + cl > s->input->size)
        return hl + (cl < max ? cl : max);
    return s->input->size;
}

static void head_release(struct cf_conn *c)
{
    struct cf_conn *expect = c;
    atomic_compare_exchange_strong(&intake_head, &expect, NULL);
}

/* Counts c's bytes again; returns them. */
static uint64_t intake_recount(struct cf_conn *c, uint64_t now)
{
    uint64_t n = killed(c) ? 0 : conn_receiving(c);
    if (n == c->receiving)
        return n;
    cf_body_receiving_add((int64_t)n - (int64_t)c->receiving);
    if (c->receiving == 0)
        c->ticket = atomic_fetch_add(&intake_tickets, 1) + 1;
    c->receiving = n;
    c->progress_at = now;
    if (n == 0) {
        c->ticket = 0;
        head_release(c);
    }
    return n;
}

/* libh2o's h2o_socket_read_start, found once (any thread may ask first). */
static h2o_socket_cb_starter_fn *h2o_read_start(void)
{
    static _Atomic(h2o_socket_cb_starter_fn *) real;
    h2o_socket_cb_starter_fn *f = atomic_load(&real);
    if (f == NULL) {
        void *p = dlsym(RTLD_NEXT, "h2o_socket_read_start");
        if (p == NULL) {
            cf_log_error("conn: libh2o's h2o_socket_read_start not found: %s", dlerror());
            abort();
        }
        memcpy(&f, &p, sizeof f); /* a function pointer through void *, as dlsym hands it out */
        atomic_store(&real, f);
    }
    return f;
}

static void on_connection_close(void *data);

void h2o_socket_read_start(h2o_socket_t *sock, h2o_socket_cb cb)
{
    struct cf_conn *c = sock->on_close.cb == on_connection_close ? sock->on_close.data : NULL;
    if (c != NULL && c->paused) {
        if (cb == c->read || cb == conn_on_read)
            return; /* reading requests again: the gate's resume will */
        c->paused = false; /* anything else (h2o's TLS shutdown) goes on at once */
        cf_body_paused(-1);
    }
    h2o_read_start()(sock, c != NULL && cb == c->read ? conn_on_read : cb);
}

static void intake_pause(struct cf_conn *c)
{
    c->paused = true;
    c->paused_at = h2o_now(c->loop->ctx.loop);
    cf_body_paused(1);
    h2o_socket_read_stop(c->sock);
}

static void intake_resume(struct cf_conn *c)
{
    c->paused = false;
    cf_body_paused(-1);
    if (c->sock->_cb.read == NULL)
        h2o_read_start()(c->sock, conn_on_read);
}

/* Whether c may go on reading body now; claims the head when it is free and nothing is held. */
static bool intake_may_read(struct cf_conn *c, uint64_t limit)
{
    if (!cf_body_over(limit) || atomic_load(&intake_head) == c)
        return true;
    struct cf_conn *none = NULL;
    return cf_body_budget_held() == 0 && atomic_compare_exchange_strong(&intake_head, &none, c);
}

/* HTTP/2 bodies of a declared length get their whole buffer at once. libh2o 2.2.5 grows a stream's
 * body buffer by doubling, copying what it holds at each step: a 16 MiB tus PATCH went through
 * buffers of 8 KiB, 16 KiB, ... 16 MiB (≈ 16 MiB copied, ≈ 32 MiB of new pages faulted in).
 * Reserved once, the body lands where it stays (measured: a sixth fewer page faults and server CPU
 * on tus uploads, docs/DESIGN.md). Only for a body the gate admits (so what is reserved is within
 * the body budget, or is the one body let through alone), on a route that takes one, with
 * credentials (what h2_may_send_body lets grow anyway), and no larger than h2o itself accepts; pages
 * are only made resident as the body arrives. */
#define PRESIZE_MIN (256u << 10)
static void h2_presize_bodies(struct cf_conn *c)
{
    size_t max = c->loop->app->cfg->limits.max_request_body_bytes;
    khash_t(h2o_http2_stream_t) *streams = c->hc->streams;
    for (khiter_t k = kh_begin(streams); k != kh_end(streams); k++) {
        if (!kh_exist(streams, k))
            continue;
        h2o_http2_stream_t *st = kh_val(streams, k);
        size_t want = st->_expected_content_length;
        h2o_buffer_t *b = st->_req_body;
        if (st->state != H2O_HTTP2_STREAM_STATE_RECV_BODY || b == NULL || want == SIZE_MAX || want < PRESIZE_MIN ||
            want > max || b->size >= want)
            continue;
        size_t room = b->bytes != NULL ? b->capacity - (size_t)(b->bytes - b->_buf) - b->size : 0;
        if (room < want - b->size && h2_may_send_body(&st->req))
            h2o_buffer_reserve(&st->_req_body, want - b->size);
    }
}

static void intake_after_read(struct cf_conn *c)
{
    struct cf_loop *l = c->loop;
    h2o_socket_t *s = c->sock;
    /* Only a connection reading requests is stopped (not one h2o stopped, or is shutting down). */
    if (intake_recount(c, h2o_now(l->ctx.loop)) == 0 || s->_cb.read != conn_on_read || killed(c) ||
        l->state != CF_LOOP_RUNNING)
        return;
    if (!intake_may_read(c, l->app->cfg->limits.max_buffered_body_bytes))
        intake_pause(c);
    else if (c->hc != NULL)
        h2_presize_bodies(c);
}

static void intake_closed(struct cf_conn *c)
{
    struct cf_loop *l = c->loop;
    if (l->reading == c)
        l->reading = NULL;
    head_release(c);
    if (c->receiving != 0)
        cf_body_receiving_add(-(int64_t)c->receiving);
    if (c->paused)
        cf_body_paused(-1);
}

static void intake_sweep(struct cf_loop *l, uint64_t now)
{
    const struct cf_config *cfg = l->app->cfg;
    uint64_t limit = cfg->limits.max_buffered_body_bytes;
    bool running = l->state == CF_LOOP_RUNNING;
    struct cf_conn *oldest = NULL; /* the stopped connection that began receiving first */
    for (h2o_linklist_t *n = l->conns.next, *next; n != &l->conns; n = next) {
        next = n->next; /* kill_conn may free this one */
        struct cf_conn *c = H2O_STRUCT_FROM_MEMBER(struct cf_conn, link, n);
        if (killed(c)) {
            if (!c->kill_reported && now >= c->killed_at + KILL_GRACE_MS) {
                c->kill_reported = true;
                cf_metrics_conn_kill_stuck();
                cf_log_warn("loop %u: a connection closed by a limit %llu ms ago is still open (HTTP/%s, h2 state %d, "
                            "reading %s, write in flight %s)",
                            l->index, (unsigned long long)(now - c->killed_at), c->hc != NULL ? "2" : "1.1",
                            c->hc != NULL ? (int)c->hc->state : -1, c->sock->_cb.read != NULL ? "yes" : "no",
                            c->sock->_cb.write != NULL ? "yes" : "no");
            }
            continue;
        }
        intake_recount(c, now);
        if (atomic_load(&intake_head) == c && now >= c->progress_at + HEAD_STALL_MS)
            head_release(c); /* stalled: another may finish meanwhile */
        if (!c->paused)
            continue;
        if (!running || c->receiving == 0 || !cf_body_over(limit)) {
            intake_resume(c);
            continue;
        }
        /* A stop is never endless, whatever its streams' states: a connection stopped for
         * limits.request_timeout is closed (a request kept waiting that long has timed out anyway). */
        if (now >= c->paused_at + cfg->limits.request_timeout_ms) {
            kill_conn(c, CF_LIMIT_SLOW_REQUEST);
            continue;
        }
        if (c->hc != NULL)
            h2o_timeout_unlink(&c->hc->_timeout_entry); /* h2o's idle timer would close it */
        if (oldest == NULL || c->ticket < oldest->ticket)
            oldest = c;
    }
    if (oldest != NULL && intake_may_read(oldest, limit))
        intake_resume(oldest);
}

/* ---- malformed HTTP/2 requests ------------------------------------------------------------------ */

/* RFC 9113 §8.3.1: an http(s) request's :path is origin-form ("/…") or, for OPTIONS, "*"; an empty
 * one makes the request malformed, a stream error of type PROTOCOL_ERROR (§8.1.1), not a response.
 * libh2o 2.2.5 checks only that :path is present (hpack.c sets PATH_EXISTS for an empty value too)
 * and hands the request to the handlers; an HTTP/1.1 request line cannot carry such a target
 * (picohttpparser refuses it, h2o answers 400). */
static bool h2_path_malformed(const h2o_req_t *req)
{
    h2o_iovec_t p = req->input.path;
    if (p.base == NULL || p.len == 0)
        return true;
    if (p.base[0] == '/')
        return false;
    bool options = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("OPTIONS"));
    return !(options && p.len == 1 && p.base[0] == '*');
}

/* The HTTP/2 connection req came in on, or NULL if it is not one of this loop's HTTP/2 connections
 * (h2o's connection callbacks are not exported, so membership in ctx->http2._conns is the proof). */
static h2o_http2_conn_t *h2_conn_of(h2o_req_t *req)
{
    h2o_linklist_t *head = &req->conn->ctx->http2._conns;
    for (h2o_linklist_t *n = head->next; n != head; n = n->next) {
        h2o_http2_conn_t *hc = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, n);
        if (&hc->super == req->conn)
            return hc;
    }
    return NULL;
}

int cf_conn_h2_refuse_malformed(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    if (req->version < 0x200 || !h2_path_malformed(req))
        return -1;
    h2o_http2_conn_t *hc = h2_conn_of(req);
    if (hc == NULL || hc->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING)
        return -1;
    h2o_http2_stream_t *st = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
    if (h2o_http2_conn_get_stream(hc, st->stream_id) != st || st->state != H2O_HTTP2_STREAM_STATE_SEND_HEADERS)
        return -1; /* not a stream h2o is waiting on a response for: let the router answer 400 */
    /* What h2o itself does for a stream error (connection.c stream_send_error + stream_reset). The
     * stream has no response yet and is on no write list, so the reset closes it now: the request
     * and its pool are gone when this returns, and h2o touches neither after on_req returns 0. */
    hc->super.ctx->http2.events.protocol_level_errors[-H2O_HTTP2_ERROR_PROTOCOL]++;
    h2o_http2_encode_rst_stream_frame(&hc->_write.buf, st->stream_id, -H2O_HTTP2_ERROR_PROTOCOL);
    h2o_http2_conn_request_write(hc);
    h2o_http2_stream_reset(hc, st);
    return 0;
}
