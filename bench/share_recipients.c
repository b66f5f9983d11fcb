/*
 * share_recipients.c: the client of bench/run.sh's scenario (7), share recipients (issue 19). Each
 * recipient is one TLS 1.3 + HTTP/2 connection that loops: POST /s/TOKEN/unlock {"code": CODE},
 * then GET /s/TOKEN/content carrying only the coffer_share cookie that this unlock just set (so a
 * 200 proves the unlock authorised it; the unlock sends the previous cookie, as a browser would).
 * With `once`, a recipient unlocks once and then only downloads: the same client without the
 * unlocks' cost. One stream at a time per connection, all connections on one thread with epoll,
 * over nghttp2 and OpenSSL: the same machinery and cost per byte as h2load (-t 1 -m 1), which
 * measures scenario (2). A Node client cost about a core at these rates, taken from the server.
 *
 *   cf-share-recipients HOST PORT SHARE_PATH CODE SIZE SECONDS CONCURRENCY [once]
 *
 * As h2load -D SECONDS --warm-up-time 1: only the downloads that end between 1 s and 1 + SECONDS
 * after the start count. Prints "MB/s unlocks client_cpu_s_per_GB": the throughput of whole
 * downloads in that window, the unlocks that ended in it, and this process's CPU time per GB
 * downloaded over the whole run. Fails (exit 1, naming the recipient) on any answer that is not
 * 200, a download that is not SIZE bytes, an unlock that sets no coffer_share cookie for
 * SHARE_PATH, a connection that closes or any TLS or HTTP/2 error. Nothing here asserts a time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define CONNS_MAX 1024
#define WARM_S 1.0
#define WINDOW ((1 << 30) - 1) /* h2load's default -w 30 / -W 30 */
#define COOKIE_NAME "coffer_share="
#define COOKIE_MAX 256
#define PATH_MAX_LEN 512
#define ERRBODY_MAX 200
#define RBUF (64 * 1024)

enum phase { PH_CONNECT, PH_HANDSHAKE, PH_H2 };

struct recipient {
    int idx, fd;
    SSL *ssl;
    nghttp2_session *h2;
    enum phase phase;
    bool unlocking; /* the stream under way is an unlock */
    bool unlocked;  /* `once`: the one unlock is done */
    int32_t stream;
    int status;
    uint64_t got;
    char cookie[COOKIE_MAX]; /* the value of coffer_share from the last unlock */
    size_t cookie_len;
    bool cookie_set; /* the answer under way set the cookie */
    char errbody[ERRBODY_MAX + 1];
    size_t errbody_len;
    size_t body_off; /* of the unlock body sent */
    uint8_t *out;    /* bytes nghttp2 produced that TLS has not taken yet */
    size_t out_len;
    bool want_out;   /* EPOLLOUT registered */
};

struct run {
    const char *host, *port, *path, *code;
    uint64_t size;
    bool once;
    char authority[300], unlock_path[PATH_MAX_LEN], content_path[PATH_MAX_LEN], body[300];
    size_t body_len;
    bool warm;
    uint64_t downloads, unlocks, warm_downloads, warm_unlocks;
};

static struct run g;
static SSL_CTX *g_ctx;
static int g_ep;

static void die(const struct recipient *c, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void die(const struct recipient *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (c)
        fprintf(stderr, "cf-share-recipients: recipient %d: ", c->idx);
    else
        fprintf(stderr, "cf-share-recipients: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        fprintf(stderr, "  openssl: %s\n", buf);
    }
    /* At once: the connections are not taken down (a sanitizer build would report them as leaks). */
    fflush(stdout);
    _exit(1);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
           (double)u.ru_stime.tv_usec / 1e6;
}

static void set_events(struct recipient *c, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        die(c, "epoll_ctl: %s", strerror(errno));
    c->want_out = out;
}

/* ---- requests ---- */

static ssize_t unlock_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                           nghttp2_data_source *src, void *user)
{
    (void)s, (void)id, (void)src;
    struct recipient *c = user;
    size_t n = g.body_len - c->body_off;
    if (n > len)
        n = len;
    memcpy(buf, g.body + c->body_off, n);
    c->body_off += n;
    if (c->body_off == g.body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

#define NV(n, v, vl) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl), NGHTTP2_NV_FLAG_NONE}

static void submit_next(struct recipient *c)
{
    char cookie[sizeof COOKIE_NAME + COOKIE_MAX];
    int cl = snprintf(cookie, sizeof cookie, COOKIE_NAME "%.*s", (int)c->cookie_len, c->cookie);
    char len[24];
    int ll = snprintf(len, sizeof len, "%zu", g.body_len);
    c->unlocking = g.once ? !c->unlocked : !c->unlocking; /* unlock, download, unlock, … */
    c->status = 0;
    c->got = 0;
    c->cookie_set = false;
    c->errbody_len = 0;
    c->body_off = 0;
    size_t alen = strlen(g.authority);
    if (c->unlocking) {
        nghttp2_nv h[] = {NV(":method", "POST", 4),
                          NV(":scheme", "https", 5),
                          NV(":authority", g.authority, alen),
                          NV(":path", g.unlock_path, strlen(g.unlock_path)),
                          NV("content-type", "application/json", 16),
                          NV("content-length", len, (size_t)ll),
                          NV("cookie", cookie, (size_t)cl)};
        nghttp2_data_provider d = {.read_callback = unlock_body};
        size_t n = sizeof h / sizeof h[0] - (c->cookie_len ? 0 : 1);
        c->stream = nghttp2_submit_request(c->h2, NULL, h, n, &d, c);
    } else {
        if (!c->cookie_len)
            die(c, "no cookie to download with");
        nghttp2_nv h[] = {NV(":method", "GET", 3),
                          NV(":scheme", "https", 5),
                          NV(":authority", g.authority, alen),
                          NV(":path", g.content_path, strlen(g.content_path)),
                          NV("cookie", cookie, (size_t)cl)};
        c->stream = nghttp2_submit_request(c->h2, NULL, h, sizeof h / sizeof h[0], NULL, c);
    }
    if (c->stream < 0)
        die(c, "nghttp2_submit_request: %s", nghttp2_strerror(c->stream));
}

/* ---- answers ---- */

/* The value of a Set-Cookie header for coffer_share with Path=SHARE_PATH, into c->cookie. */
static void take_cookie(struct recipient *c, const uint8_t *v, size_t vl)
{
    size_t nl = sizeof COOKIE_NAME - 1;
    if (vl < nl || memcmp(v, COOKIE_NAME, nl) != 0)
        return;
    const uint8_t *end = memchr(v, ';', vl);
    size_t n = (size_t)((end ? end : v + vl) - (v + nl));
    if (n == 0 || n > COOKIE_MAX)
        die(c, "unlock set a coffer_share cookie of %zu bytes", n);
    char want[PATH_MAX_LEN + 16];
    int wl = snprintf(want, sizeof want, "; Path=%s;", g.path);
    if (!memmem(v, vl, want, (size_t)wl))
        die(c, "unlock set the coffer_share cookie for another path: %.*s", (int)vl, (const char *)v);
    memcpy(c->cookie, v + nl, n);
    c->cookie_len = n;
    c->cookie_set = true;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *n, size_t nl, const uint8_t *v, size_t vl,
                     uint8_t flags, void *user)
{
    (void)s, (void)flags;
    struct recipient *c = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->hd.stream_id != c->stream)
        return 0;
    if (nl == 7 && memcmp(n, ":status", 7) == 0) {
        c->status = 0;
        for (size_t i = 0; i < vl && i < 3; i++)
            c->status = c->status * 10 + (v[i] - '0');
    } else if (c->unlocking && nl == 10 && memcmp(n, "set-cookie", 10) == 0) {
        take_cookie(c, v, vl);
    }
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len, void *user)
{
    (void)s, (void)flags;
    struct recipient *c = user;
    if (id != c->stream)
        return 0;
    c->got += len;
    if (c->status != 200 && c->errbody_len < ERRBODY_MAX) {
        size_t n = ERRBODY_MAX - c->errbody_len < len ? ERRBODY_MAX - c->errbody_len : len;
        memcpy(c->errbody + c->errbody_len, d, n);
        c->errbody_len += n;
    }
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t err, void *user)
{
    (void)s;
    struct recipient *c = user;
    if (id != c->stream)
        return 0;
    const char *what = c->unlocking ? "unlock" : "share download";
    if (err != NGHTTP2_NO_ERROR)
        die(c, "%s: stream reset (%s)", what, nghttp2_http2_strerror(err));
    if (c->status != 200)
        die(c, "%s answered %d: %.*s", what, c->status, (int)c->errbody_len, c->errbody);
    if (c->unlocking) {
        if (!c->cookie_set)
            die(c, "unlock answered 200 without setting the coffer_share cookie");
        c->unlocked = true;
        g.unlocks++;
    } else {
        if (c->got != g.size)
            die(c, "share download answered 200 with %llu bytes, not %llu", (unsigned long long)c->got,
                (unsigned long long)g.size);
        g.downloads++;
    }
    submit_next(c);
    return 0;
}

/* ---- connection ---- */

static void flush_out(struct recipient *c)
{
    for (;;) {
        if (c->out_len == 0) {
            const uint8_t *p;
            ssize_t n = nghttp2_session_mem_send(c->h2, &p);
            if (n < 0)
                die(c, "nghttp2_session_mem_send: %s", nghttp2_strerror((int)n));
            if (n == 0)
                break;
            c->out = (uint8_t *)p;
            c->out_len = (size_t)n;
        }
        int w = SSL_write(c->ssl, c->out, (int)c->out_len);
        if (w <= 0) {
            int e = SSL_get_error(c->ssl, w);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                break;
            die(c, "TLS write failed (%d)", e);
        }
        c->out += w;
        c->out_len -= (size_t)w;
    }
    bool out = c->out_len > 0;
    if (out != c->want_out)
        set_events(c, out);
}

static void start_h2(struct recipient *c)
{
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0)
        die(c, "the server did not choose HTTP/2 (ALPN)");
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        die(c, "out of memory");
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    if (nghttp2_session_client_new(&c->h2, cb, c) != 0)
        die(c, "nghttp2_session_client_new failed");
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry st[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}, {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WINDOW}};
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, st, 2) != 0 ||
        nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, WINDOW) != 0)
        die(c, "nghttp2 settings failed");
    c->phase = PH_H2;
    submit_next(c);
}

static void handshake(struct recipient *c)
{
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        start_h2(c);
        flush_out(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        set_events(c, false);
    else if (e == SSL_ERROR_WANT_WRITE)
        set_events(c, true);
    else
        die(c, "TLS handshake failed (%d)", e);
}

static void readable(struct recipient *c)
{
    static uint8_t buf[RBUF];
    for (;;) {
        int n = SSL_read(c->ssl, buf, sizeof buf);
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                break;
            die(c, "the connection closed (%s)", e == SSL_ERROR_ZERO_RETURN ? "TLS close" : "TLS read failed");
        }
        ssize_t m = nghttp2_session_mem_recv(c->h2, buf, (size_t)n);
        if (m < 0)
            die(c, "nghttp2_session_mem_recv: %s", nghttp2_strerror((int)m));
    }
    if (!nghttp2_session_want_read(c->h2))
        die(c, "the server ended the HTTP/2 session (GOAWAY)");
    flush_out(c);
}

static void on_event(struct recipient *c, uint32_t ev)
{
    if (c->phase == PH_CONNECT) {
        int err = 0;
        socklen_t l = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0 || err != 0)
            die(c, "connect to %s:%s: %s", g.host, g.port, strerror(err ? err : errno));
        c->phase = PH_HANDSHAKE;
    }
    if (c->phase == PH_HANDSHAKE) {
        handshake(c);
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
        readable(c);
    else
        flush_out(c);
}

static void open_recipient(struct recipient *c, const struct sockaddr_in *a)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die(c, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (const struct sockaddr *)a, sizeof *a) != 0 && errno != EINPROGRESS)
        die(c, "connect to %s:%s: %s", g.host, g.port, strerror(errno));
    c->ssl = SSL_new(g_ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
        die(c, "SSL_new failed");
    SSL_set_connect_state(c->ssl);
    c->phase = PH_CONNECT;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        die(c, "epoll_ctl: %s", strerror(errno));
    c->want_out = true;
}

static void close_recipient(struct recipient *c)
{
    nghttp2_session_del(c->h2);
    SSL_free(c->ssl);
    close(c->fd);
}

static void setup_tls(void)
{
    g_ctx = SSL_CTX_new(TLS_client_method());
    if (!g_ctx || SSL_CTX_set_min_proto_version(g_ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(g_ctx, "TLS_AES_256_GCM_SHA384") != 1) /* as run.sh's h2load */
        die(NULL, "TLS set-up failed");
    static const unsigned char alpn[] = "\x02h2";
    if (SSL_CTX_set_alpn_protos(g_ctx, alpn, sizeof alpn - 1) != 0)
        die(NULL, "ALPN set-up failed");
    SSL_CTX_set_verify(g_ctx, SSL_VERIFY_NONE, NULL); /* the benchmark's self-signed certificate */
    SSL_CTX_set_mode(g_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    uint64_t secs, conc;
    if ((argc != 8 && argc != 9) || (argc == 9 && strcmp(argv[8], "once") != 0) || !parse_u64(argv[5], &g.size) ||
        !parse_u64(argv[6], &secs) || !parse_u64(argv[7], &conc) || secs == 0 || conc == 0 || conc > CONNS_MAX ||
        argv[3][0] != '/' || strlen(argv[3]) > PATH_MAX_LEN - 16) {
        fprintf(stderr, "usage: cf-share-recipients HOST PORT SHARE_PATH CODE SIZE SECONDS CONCURRENCY [once]\n");
        return 2;
    }
    g.host = argv[1], g.port = argv[2], g.path = argv[3], g.code = argv[4], g.once = argc == 9;
    snprintf(g.authority, sizeof g.authority, "%s:%s", g.host, g.port);
    snprintf(g.unlock_path, sizeof g.unlock_path, "%s/unlock", g.path);
    snprintf(g.content_path, sizeof g.content_path, "%s/content", g.path);
    if (strpbrk(g.code, "\"\\") || strlen(g.code) > 200)
        die(NULL, "the code must be plain text");
    g.body_len = (size_t)snprintf(g.body, sizeof g.body, "{\"code\":\"%s\"}", g.code);
    struct sockaddr_in a = {.sin_family = AF_INET};
    uint64_t port;
    if (inet_pton(AF_INET, g.host, &a.sin_addr) != 1 || !parse_u64(g.port, &port) || port == 0 || port > 65535)
        die(NULL, "HOST must be an IPv4 address and PORT a port");
    a.sin_port = htons((uint16_t)port);

    setup_tls();
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0)
        die(NULL, "epoll_create1: %s", strerror(errno));
    struct recipient *rs = calloc(conc, sizeof *rs);
    if (!rs)
        die(NULL, "out of memory");
    double cpu0 = cpu_s(), t0 = now_s(), warm_at = t0 + WARM_S, end_at = warm_at + (double)secs;
    for (uint64_t i = 0; i < conc; i++) {
        rs[i].idx = (int)i;
        open_recipient(&rs[i], &a);
    }
    double t_warm = 0;
    struct epoll_event evs[64];
    for (;;) {
        double t = now_s();
        if (!g.warm && t >= warm_at) {
            g.warm = true, t_warm = t;
            g.warm_downloads = g.downloads, g.warm_unlocks = g.unlocks;
        }
        if (t >= end_at)
            break;
        int ms = (int)(((g.warm ? end_at : warm_at) - t) * 1000) + 1;
        int n = epoll_wait(g_ep, evs, 64, ms);
        if (n < 0 && errno != EINTR)
            die(NULL, "epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.ptr, evs[i].events);
    }
    double window = now_s() - t_warm, cpu = cpu_s() - cpu0;
    uint64_t counted = g.downloads - g.warm_downloads;
    if (g.downloads == 0)
        die(NULL, "no download ended within the run");
    printf("%.1f %llu %.2f\n", (double)counted * (double)g.size / 1e6 / window,
           (unsigned long long)(g.unlocks - g.warm_unlocks), cpu / ((double)g.downloads * (double)g.size / 1e9));
    for (uint64_t i = 0; i < conc; i++) /* transfers under way are cut, as h2load's at its end */
        close_recipient(&rs[i]);
    free(rs);
    SSL_CTX_free(g_ctx);
    close(g_ep);
    return 0;
}
