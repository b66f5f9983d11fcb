/*
 * server.c: `coffer serve` (see server.h).
 *
 * Start-up order: configuration → master key → store (and orphan collection) → TLS → listeners →
 * h2o configuration → workers → loops; then the main thread waits for signals.
 *
 * Graceful shutdown (SIGTERM/SIGINT), per loop, on its own thread:
 *   RUNNING  → close the listeners, answer nothing new            → DRAINING
 *   DRAINING → wait until every in-flight request is disposed (≤ 30 s), then
 *              h2o_context_request_shutdown (GOAWAY)              → CLOSING
 *   CLOSING  → wait for connections to close (≤ 3 s)              → DONE
 * libh2o 2.2.5 truncates HTTP/2 downloads if the shutdown request comes while a response is still
 * being written (notes/libh2o-rocksdb.md §5), hence the drain before it. Idle HTTP/1.1 keep-alive
 * connections are not closed by h2o; the CLOSING cap bounds how long they can delay the exit.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include "audit.h"
#include "auth.h"
#include "budget.h"
#include "bufpool.h"
#include "conn.h"
#include "ctl.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "priv.h"
#include "render_conf.h"
#include "directory.h"
#include "rescan.h"
#include "retention.h"
#include "route.h"
#include "scan.h"
#include "search.h"
#include "startup.h"
#include "throttle.h"
#include "tls.h"
#include "web.h"
#include "work.h"

#define DRAIN_MAX_MS 30000
#define CLOSE_MAX_MS 3000
#define LOOP_TICK_MS 50
#define LISTEN_BACKLOG 1024
/* Accounts, addresses or links remembered at once per limiter: 20000 × limit × 8 bytes (1.6 MB at
 * the default 10, 160 MB at the largest configurable limit, 1000). */
#define LOGIN_THROTTLE_KEYS 20000

/* The process-wide server state, private to this file: written once before the loops start; afterwards
 * read-only except where a field says which lock guards it. Handlers and jobs see only app. */
struct cf_server {
    struct cf_app app; /* what handlers and jobs may know (context.h) */
    h2o_globalconf_t globalconf;
    h2o_hostconf_t *hostconf;
    struct cf_loop *loops;
    unsigned nloops;
    int listen_fds[CF_CONFIG_MAX_LISTEN];
    size_t nlisten;
    SSL_CTX *ssl_ctx;                  /* the current context (main thread swaps it) */
    FILE *access_log;                  /* NULL: off */
    pthread_mutex_t access_log_lock;
};

static struct cf_server *cf_srv;

enum control_kind { CONTROL_SHUTDOWN, CONTROL_TLS };

struct control_msg {
    h2o_multithread_message_t msg;
    enum control_kind kind;
    SSL_CTX *ssl_ctx; /* CONTROL_TLS: a reference owned by the message until the loop takes it */
};

/* ---- fail-stop --------------------------------------------------------------------------------- */

/* RocksDB refused a write (storage.h, cf_store_on_write_failure): after an I/O error it refuses every
 * later write until reopened, and a write whose sync failed may or may not be on disk. Like
 * PostgreSQL after a failed fsync, the server does not guess: it stops (requests in flight get their
 * errors, nothing new is accepted) with exit code 1, and the next start recovers from the WAL,
 * which holds exactly the writes that were acknowledged. A supervisor (systemd Restart=) restarts. */
static atomic_bool store_failed;

static void on_store_write_failure(const char *what, const char *err)
{
    if (atomic_exchange(&store_failed, true))
        return;
    cf_log_error("the store refused a write (%s: %s); stopping: restart to recover from the write-ahead log", what,
                 err);
    kill(getpid(), SIGUSR1);
}

/* ---- listeners -------------------------------------------------------------------------------- */

static int listen_on(const char *spec, char **err)
{
    struct addrinfo *res = cf_listen_resolve(spec, err);
    if (res == NULL)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0 ||
        fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        *err = cf_xasprintf("listen: %s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void close_listeners(struct cf_loop *l)
{
    for (size_t i = 0; i < l->nlisteners; i++) {
        h2o_socket_read_stop(l->listeners[i]);
        h2o_socket_close(l->listeners[i]);
    }
    l->nlisteners = 0;
}

/* ---- loops ------------------------------------------------------------------------------------ */

static void on_control(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    struct cf_loop *l = H2O_STRUCT_FROM_MEMBER(struct cf_loop, control, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        struct control_msg *c = H2O_STRUCT_FROM_MEMBER(struct control_msg, msg, m);
        switch (c->kind) {
        case CONTROL_SHUTDOWN:
            if (l->state == CF_LOOP_RUNNING) {
                close_listeners(l);
                l->state = CF_LOOP_DRAINING;
                l->deadline = h2o_now(l->ctx.loop) + DRAIN_MAX_MS;
            }
            break;
        case CONTROL_TLS: {
            /* New connections get the new context; live ones keep the one they started with. */
            SSL_CTX *old = l->accept_ctx.ssl_ctx;
            l->accept_ctx.ssl_ctx = c->ssl_ctx;
            c->ssl_ctx = NULL;
            SSL_CTX_free(old);
            break;
        }
        }
        free(c);
    }
}

static void loop_init(struct cf_loop *l);
static pthread_barrier_t loops_ready;

/* ---- cluster coordination (docs/CLUSTER.md "Leases and shared throttles") -------------------- */

/* The background jobs (retention with its collection of dead writers' uploads, the resumable-upload
 * sweep, rescans, the directory sync) run on one node at a time: the holder of the "jobs" lease, taken
 * for JOBS_LEASE_TTL_MS and renewed every CF_COORD_RENEW_MS by the coordination thread, which renews
 * the per-upload tus claims too. On a RocksDB store cf_coord_holds is always true. */
#define JOBS_LEASE_TTL_MS 15000

static pthread_t coord_thread;
static bool coord_running, coord_stop;
static pthread_mutex_t coord_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t coord_cond = PTHREAD_COND_INITIALIZER;

static void *coord_main(void *arg)
{
    (void)arg;
    bool failing = false;
    pthread_mutex_lock(&coord_lock);
    while (!coord_stop) {
        struct timespec until;
        cf_deadline(CLOCK_REALTIME, (uint64_t)CF_COORD_RENEW_MS * 1000000u, &until);
        while (!coord_stop && pthread_cond_timedwait(&coord_cond, &coord_lock, &until) == 0) {
        }
        if (coord_stop)
            break;
        pthread_mutex_unlock(&coord_lock);
        struct cf_coord_renewal rn;
        cf_coord_renew(cf_srv->app.store, &rn);
        if (rn.gained > 0)
            cf_log_info("cluster: this node holds the background-jobs lease now");
        if (rn.lost > 0)
            cf_log_warn("cluster: %u lease(s) lost (another node holds them now)", rn.lost);
        if ((rn.failed > 0) != failing)
            cf_log_warn(rn.failed > 0 ? "cluster: leases cannot be renewed (the database is out of reach)"
                                      : "cluster: leases renewed again");
        failing = rn.failed > 0;
        pthread_mutex_lock(&coord_lock);
    }
    pthread_mutex_unlock(&coord_lock);
    return NULL;
}

static void coord_start(void)
{
    if (!cf_coord_shared(cf_srv->app.store))
        return;
    if (pthread_create(&coord_thread, NULL, coord_main, NULL) != 0) {
        cf_log_error("cannot start the cluster coordination thread");
        abort();
    }
    coord_running = true;
}

/* Stops the renewals and gives the jobs lease up, so that another node takes the jobs over at once. */
static void coord_finish(void)
{
    if (!coord_running)
        return;
    pthread_mutex_lock(&coord_lock);
    coord_stop = true;
    pthread_cond_broadcast(&coord_cond);
    pthread_mutex_unlock(&coord_lock);
    pthread_join(coord_thread, NULL);
    coord_running = false;
    cf_coord_unclaim(cf_srv->app.store, CF_COORD_JOBS, NULL, 0);
}

/* The login, share-code and page limiters' shared backend: storage/coord.c's counters. */
static bool throttle_shared(void *ctx, enum cf_throttle_op op, const char *name, const void *key, size_t n,
                            unsigned limit, uint64_t window_ms, struct cf_throttle_io *io)
{
    static const enum cf_coord_op ops[] = {
        [CF_THROTTLE_OP_RESERVE] = CF_COORD_RESERVE, [CF_THROTTLE_OP_FAIL] = CF_COORD_FAIL,
        [CF_THROTTLE_OP_RELEASE] = CF_COORD_RELEASE, [CF_THROTTLE_OP_SETTLE] = CF_COORD_SETTLE,
        [CF_THROTTLE_OP_RESET] = CF_COORD_RESET,     [CF_THROTTLE_OP_COUNT] = CF_COORD_COUNT,
    };
    if ((unsigned)op >= sizeof ops / sizeof ops[0])
        return false;
    struct cf_coord_ctr c = {.limit = limit, .window_ms = window_ms, .id = io->id};
    if (cf_coord_counter(ctx, ops[op], name, key, n, &c) != CF_OK)
        return false;
    io->id = c.id;
    io->at_ms = c.at_ms;
    io->count = c.count;
    io->granted = c.granted;
    io->retry_ms = c.retry_ms;
    return true;
}
static struct cf_throttle_backend throttle_backend = {throttle_shared, NULL};

/* Cluster mode, once the store is open and before any thread serves: the limiters count across nodes,
 * the tus claims become per-upload leases, and this node asks for the jobs lease. */
static void coord_setup(void)
{
    struct cf_app *app = &cf_srv->app;
    if (!cf_coord_shared(app->store))
        return;
    const uint8_t *node = cf_coord_node_id();
    cf_log_info("cluster: node %02x%02x%02x%02x…: shared throttles, leases for the background jobs and uploads",
                node[0], node[1], node[2], node[3]);
    throttle_backend.ctx = app->store;
    cf_throttle_set_backend(&throttle_backend);
    cf_throttle_share(app->login_account, "login-account");
    cf_throttle_share(app->login_ip, "login-ip");
    cf_throttle_share(app->code_ip, "share-code-ip");
    cf_throttle_share(app->code_link, "share-code-link");
    cf_tus_cluster(app->store);
    bool got = false;
    enum cf_status st = cf_coord_want(app->store, CF_COORD_JOBS, JOBS_LEASE_TTL_MS, &got);
    if (st != CF_OK)
        cf_log_warn("cluster: the background-jobs lease cannot be asked for now (%s); retrying", cf_status_name(st));
    else
        cf_log_info(got ? "cluster: this node holds the background-jobs lease"
                        : "cluster: another node holds the background-jobs lease");
}

static void expire_uploads(void *arg)
{
    (void)arg;
    if (!cf_coord_holds(cf_srv->app.store, CF_COORD_JOBS, NULL, 0))
        return; /* another node of the cluster runs the sweep */
    cf_tus_expire_now(cf_srv->app.store);
}

static void run_retention(void *arg)
{
    (void)arg;
    struct cf_retention_report rep;
    if (!cf_coord_holds(cf_srv->app.store, CF_COORD_JOBS, NULL, 0))
        return; /* another node of the cluster runs it */
    if (cf_retention_run(cf_srv->app.cfg, cf_srv->app.store, &rep) != CF_OK)
        cf_log_warn("retention: the run did not finish; the next one resumes it");
}

static void *loop_main(void *arg)
{
    struct cf_loop *l = arg;
    /* Everything h2o creates for this loop must be created on this thread: h2o 2.2.5 keeps its buffer
     * prototypes and recycling allocators in thread-local storage and binds each socket's buffers to
     * the creating thread's allocator. Sockets made on the main thread (the receivers' pipes, the
     * listeners) would share the main thread's allocator between loops, unlocked: heap corruption. */
    loop_init(l);
    pthread_barrier_wait(&loops_ready);
    while (l->state != CF_LOOP_DONE) {
        h2o_evloop_run(l->ctx.loop, LOOP_TICK_MS);
        uint64_t now = h2o_now(l->ctx.loop);
        cf_conn_sweep(l, now);
        if (l->state == CF_LOOP_DRAINING && (l->inflight == 0 || now >= l->deadline)) {
            if (l->inflight != 0)
                cf_log_warn("loop %u: %zu requests still running after %d ms; shutting down anyway", l->index,
                            l->inflight, DRAIN_MAX_MS);
            h2o_context_request_shutdown(&l->ctx);
            l->state = CF_LOOP_CLOSING;
            l->deadline = now + CLOSE_MAX_MS;
        } else if (l->state == CF_LOOP_CLOSING && (l->connections == 0 || now >= l->deadline)) {
            l->state = CF_LOOP_DONE;
        }
    }
    return NULL;
}

static void loop_init(struct cf_loop *l)
{
    h2o_context_init(&l->ctx, h2o_evloop_create(), &cf_srv->globalconf);
    h2o_linklist_init_anchor(&l->conns);
    l->accept_ctx.ctx = &l->ctx;
    l->accept_ctx.hosts = cf_srv->globalconf.hosts;
    SSL_CTX_up_ref(cf_srv->ssl_ctx);
    l->accept_ctx.ssl_ctx = cf_srv->ssl_ctx;
    h2o_multithread_register_receiver(l->ctx.queue, &l->work_done, cf_work_on_done);
    h2o_multithread_register_receiver(l->ctx.queue, &l->control, on_control);
    for (size_t i = 0; i < cf_srv->nlisten; i++) {
        int fd = dup(cf_srv->listen_fds[i]);
        if (fd < 0) {
            cf_log_error("dup: %s", strerror(errno));
            abort();
        }
        h2o_socket_t *sock = h2o_evloop_socket_create(l->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
        sock->data = l;
        h2o_socket_read_start(sock, cf_conn_on_accept);
        l->listeners[l->nlisteners++] = sock;
    }
    l->state = CF_LOOP_RUNNING;
}

static void send_control(enum control_kind kind, SSL_CTX *ctx)
{
    for (unsigned i = 0; i < cf_srv->nloops; i++) {
        struct control_msg *c = cf_xcalloc(1, sizeof *c);
        c->kind = kind;
        if (ctx != NULL) {
            SSL_CTX_up_ref(ctx);
            c->ssl_ctx = ctx;
        }
        h2o_multithread_send_message(&cf_srv->loops[i].control, &c->msg);
    }
}

/* SIGHUP: reload what can be reloaded without dropping connections. */
static void reload(void)
{
    char *err = NULL;
    cf_scan_reload(); /* each scanner builds a new engine and swaps it in; scans go on meanwhile */
    SSL_CTX *ctx = cf_tls_ctx_new(cf_srv->app.cfg->tls_certificate, cf_srv->app.cfg->tls_key, &err);
    if (ctx == NULL) {
        /* After the drop to `user:` the files are read as that account: say so when that is the cause. */
        char *unreadable = cf_priv_unreadable(cf_srv->app.cfg->tls_certificate, cf_srv->app.cfg->tls_key);
        cf_log_error("reload: keeping the current TLS certificate: %s%s%s", err, unreadable != NULL ? "; " : "",
                     unreadable != NULL ? unreadable : "");
        free(unreadable);
        free(err);
        return;
    }
    send_control(CONTROL_TLS, ctx);
    SSL_CTX_free(cf_srv->ssl_ctx);
    cf_srv->ssl_ctx = ctx;
    cf_log_info("reload: TLS certificate reloaded");
}

/* ---- access log ------------------------------------------------------------------------------- */

/* Writes s into out (cap ≥ 4n+1) with non-printable bytes as %XX, so a log line stays one line. */
static size_t log_escape(const char *s, size_t n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '%' || c == '\\') {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return o;
}

static void log_access(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    struct timeval now;
    gettimeofday(&now, NULL);
    int64_t us = (int64_t)(now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000000 +
                 (now.tv_usec - req->timestamps.request_begin_at.tv_usec);
    if (req->timestamps.request_begin_at.tv_sec == 0 || us < 0)
        us = 0; /* no start time (h2o refused the request early), or the clock stepped back */
    cf_metrics_http(cf_route_index_of(req), req->input.method.base, req->input.method.len, req->res.status,
                    req->entity.len, req->bytes_sent, (uint64_t)us);
    FILE *fp = cf_srv->access_log;
    if (fp == NULL)
        return;
    char ts[32], ip[CF_IP_MAX] = "-", method[4 * 16 + 1], path[4 * 256 + 1], id[CF_REQ_ID_LEN + 1] = "-";
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (sl != 0)
        h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, ip);
    ssize_t i = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
    if (i != -1 && req->res.headers.entries[i].value.len == CF_REQ_ID_LEN) {
        memcpy(id, req->res.headers.entries[i].value.base, CF_REQ_ID_LEN);
        id[CF_REQ_ID_LEN] = '\0';
    }
    /* The query string can carry file names and share tokens ride in /s/ paths: log neither. */
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    if (plen > 256)
        plen = 256;
    if (plen >= 3 && memcmp(req->path.base, "/s/", 3) == 0)
        plen = 3;
    log_escape(req->path.base != NULL ? req->path.base : "", plen, path);
    if (plen == 3 && strcmp(path, "/s/") == 0)
        strcat(path, "[token]");
    log_escape(req->method.base != NULL ? req->method.base : "", req->method.len > 16 ? 16 : req->method.len,
               method);
    cf_time_rfc3339(cf_now_ms(), ts);
    const char *proto = req->version >= 0x200 ? "HTTP/2" : "HTTP/1.1";
    pthread_mutex_lock(&cf_srv->access_log_lock);
    /* With log.format json, access lines are JSON objects too (so that stderr, where "-" sends them,
     * stays one object per line). Every field is JSON-safe already: log_escape leaves no '"', '\\' or
     * control byte, the id is ours and the address numeric. */
    if (cf_srv->app.cfg->log.format == CF_LOG_JSON)
        fprintf(fp,
                "{\"time\":\"%s\",\"level\":\"info\",\"msg\":\"access\",\"request_id\":\"%s\",\"ip\":\"%s\","
                "\"method\":\"%s\",\"path\":\"%s\",\"protocol\":\"%s\",\"status\":%d,\"bytes\":%zu,"
                "\"duration_ms\":%.3f}\n",
                ts, id, ip, method, path, proto, req->res.status, req->bytes_sent, (double)us / 1000.0);
    else
        fprintf(fp, "%s %s %s \"%s %s %s\" %d %zu %.3f\n", ts, id, ip, method, path, proto, req->res.status,
                req->bytes_sent, (double)us / 1000.0);
    fflush(fp);
    pthread_mutex_unlock(&cf_srv->access_log_lock);
}

static void register_logger(h2o_pathconf_t *pathconf)
{
    h2o_logger_t *lg = h2o_create_logger(pathconf, sizeof *lg);
    lg->log_access = log_access;
}

/* ---- serve ------------------------------------------------------------------------------------ */

static void setup_h2o(struct cf_config *cfg)
{
    h2o_globalconf_t *g = &cf_srv->globalconf;
    h2o_config_init(g);
    g->server_name = h2o_iovec_init(H2O_STRLIT("coffer"));
    g->max_request_entity_size = cfg->limits.max_request_body_bytes;
    g->http1.req_timeout = cfg->limits.request_timeout_ms;
    g->handshake_timeout = cfg->limits.handshake_timeout_ms;
    g->http2.idle_timeout = cfg->limits.idle_timeout_ms;
    /* A request body must never spill to a plaintext temp file (notes §2): keep it in memory. */
    h2o_socket_buffer_mmap_settings.threshold = SIZE_MAX;
    cf_body_memory_setup(); /* ... and in mappings of their own, given back when freed (budget.h) */
    cf_srv->hostconf = h2o_config_register_host(g, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(cf_srv->hostconf, "/", 0);
    /* First: malformed HTTP/2 requests get a stream error, not a response (conn.h). */
    h2o_create_handler(pathconf, sizeof(h2o_handler_t))->on_req = cf_conn_h2_refuse_malformed;
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof *handler);
    handler->on_req = cf_route_on_req;
    cf_http_register_filter(pathconf);
    cf_http_register_filter(&cf_srv->hostconf->fallback_path);
    register_logger(pathconf);
    register_logger(&cf_srv->hostconf->fallback_path);
}

/* Each connection is a descriptor: make room for limits.max_connections plus the store's files, or
 * say that the limit cannot be reached (accept would fail with EMFILE before it). */
static void raise_nofile(const struct cf_config *cfg)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cfg->limits.max_connections + 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        cf_log_warn("the descriptor limit (%llu) is below limits.max_connections + 1024: raise ulimit -n",
                    (unsigned long long)rl.rlim_cur);
}

static unsigned cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (unsigned)n;
}

/* ---- cf_serve, in phases ------------------------------------------------------------------------ */

/* How far start-up got: what the release at the end has to undo. */
enum serve_stage {
    STAGE_NONE,     /* nothing to undo but the scanners */
    STAGE_KEYS,     /* master key (maybe) and journal anchor held */
    STAGE_TLS,      /* + the TLS context */
    STAGE_SECRETS,  /* + web files, dummy hash, throttles (any of them may be missing) */
    STAGE_BOUND,    /* + access log and listening sockets */
};

/* What the phases of cf_serve hand each other. */
struct serve {
    struct cf_config *cfg;
    struct cf_priv priv;
    sigset_t sigs;
    struct cf_key master;
    struct cf_anchor *anchor;
    enum serve_stage stage;
    unsigned nloops;
};

/* Phase 0, signals: SIGTERM, SIGINT, SIGHUP and SIGUSR1 blocked everywhere, taken with sigwait on
 * this thread; then the server state, the log's level and format, and the account to drop to. */
static int serve_begin(struct serve *s)
{
    struct cf_config *cfg = s->cfg;
    char *err = NULL;
    sigemptyset(&s->sigs);
    sigaddset(&s->sigs, SIGTERM);
    sigaddset(&s->sigs, SIGINT);
    sigaddset(&s->sigs, SIGHUP);
    sigaddset(&s->sigs, SIGUSR1); /* fail-stop, from on_store_write_failure */
    pthread_sigmask(SIG_BLOCK, &s->sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    cf_srv = cf_xcalloc(1, sizeof *cf_srv);
    cf_srv->app.cfg = cfg;
    cf_srv->app.started_at = cf_now_ms();
    cf_srv->app.directory_sync = cf_directory_admin_sync; /* the admin API's sync (issue 23) */
    pthread_mutex_init(&cf_srv->access_log_lock, NULL);
    cf_log_set_level(cfg->log.level);
    /* From here on every diagnostic line, the storage library's included, is in log.format. */
    cf_log_set_format(cfg->log.format);
    cf_storage_set_logger(cf_log_message);

    /* Started as root: root's part (scanners, keys, access log, listeners) comes first, then the drop
     * to `user:` (priv.h), then everything else, the store included, runs as that account. */
    int prc = cf_priv_resolve(cfg, "serve", &s->priv, &err);
    /* A cluster node's data_dir holds only what is the node's own (its control socket): a node that
     * joins an initialised cluster store (docs/CLUSTER.md) creates it, owned by the service account. */
    bool node_dir = cfg->store.engine == CF_STORE_CLUSTER;
    if (prc == 0)
        prc = cf_priv_check_dir(&s->priv, cfg->data_dir, node_dir, &err);
    if (prc == 0 && node_dir && !s->priv.drop && mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        err = cf_xasprintf("%s: cannot create the node's data directory: %s", cfg->data_dir, strerror(errno));
        prc = 1;
    }
    if (prc != 0) {
        cf_log_error("%s", err);
        free(err);
        return prc;
    }
    if (s->priv.drop)
        cf_scan_run_as(s->priv.uid, s->priv.gid);
    return 0;
}

/* Phase 1, scanners: spawned (not forked) before any key is read, so no copy of a key ever exists
 * in a process that parses hostile files. */
static int serve_spawn_scanners(struct serve *s)
{
    char *err = NULL;
    if (cf_scan_start(s->cfg, &err) != CF_OK) {
        cf_log_error("%s", err);
        free(err);
        return 1;
    }
    /* The renderers (issue 20), also before any key. One that cannot start (coffer-render or its
     * libraries missing, no tmpfs) does not stop the server: pages then answer 503 and view-only
     * callers still get no content (docs/SECURITY.md "View-only"). */
    if (s->cfg->render.enabled) {
        struct cf_render_conf rc;
        cf_render_conf_fill(s->cfg, &rc);
        rc.opts.run_as = s->priv.drop;
        rc.opts.uid = s->priv.uid;
        rc.opts.gid = s->priv.gid;
        if (cf_render_start(&rc.opts, &err) != CF_OK) {
            cf_log_warn("rendering is off: %s", err);
            free(err);
        }
    }
    return 0;
}

/* Phase 2, keys and secrets (as root): the master key, the journal anchor, the TLS context, the web
 * files, the dummy password hash and the throttles. */
static int serve_load_keys(struct serve *s)
{
    struct cf_config *cfg = s->cfg;
    char *err = NULL;
    s->stage = STAGE_KEYS;
    if (cf_master_key_load(cfg->master_key_file, &s->master, &err) != CF_OK) {
        cf_log_error("%s", err);
        free(err);
        return 1;
    }
    /* The journal anchor, beside the master key: opened now, written after the drop through this
     * descriptor (its directory need not be writable by `user:`). */
    if (cf_anchor_open(cfg->journal_anchor_file, true, &s->anchor, &err) != CF_OK) {
        cf_log_error("%s (journal_anchor_file)", err);
        free(err);
        return 1;
    }
    s->stage = STAGE_TLS;
    if ((cf_srv->ssl_ctx = cf_tls_ctx_new(cfg->tls_certificate, cfg->tls_key, &err)) == NULL) {
        cf_log_error("%s", err);
        free(err);
        return 1;
    }
    s->stage = STAGE_SECRETS;
    if (cf_web_load(cfg->web_dir, &cf_srv->app.web, &err) != CF_OK) {
        cf_log_error("%s", err);
        free(err);
        return 1;
    }
    struct cf_app *app = &cf_srv->app;
    if ((app->dummy_pwhash = cf_auth_dummy_hash(cfg)) == NULL)
        return 1;
    app->login_account =
        cf_throttle_new(cfg->auth.max_failures_per_account, cfg->auth.failure_window_s * 1000, LOGIN_THROTTLE_KEYS);
    app->login_ip = cf_throttle_new(cfg->auth.max_failures_per_ip, cfg->auth.failure_window_s * 1000,
                                    LOGIN_THROTTLE_KEYS);
    app->code_ip = cf_throttle_new(cfg->shares.code_failures_per_ip, 15 * 60 * 1000, LOGIN_THROTTLE_KEYS);
    app->code_link = cf_throttle_new(cfg->shares.code_failures_per_link, 60 * 60 * 1000, LOGIN_THROTTLE_KEYS);
    if (app->login_account == NULL || app->login_ip == NULL || app->code_ip == NULL || app->code_link == NULL) {
        cf_log_error("cannot set up the login and share-code limiters");
        return 1;
    }
    return 0;
}

/* Phase 3, bind (as root): the access log (it may live in a directory only root can write) and the
 * listening sockets. */
static int serve_bind(struct serve *s)
{
    struct cf_config *cfg = s->cfg;
    char *err = NULL;
    if (cfg->log.access != NULL) {
        if (strcmp(cfg->log.access, "-") == 0) {
            cf_srv->access_log = stderr;
        } else {
            /* Opened before the drop (it may live in a directory only root can write); a file created
             * here belongs to the service account like everything else the server creates. */
            int fd = open(cfg->log.access, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
            if (fd >= 0 && s->priv.drop && fchown(fd, s->priv.uid, s->priv.gid) != 0)
                cf_log_warn("%s: cannot give the access log to %s: %s", cfg->log.access, s->priv.name,
                            strerror(errno));
            if (fd < 0 && errno == EEXIST)
                fd = open(cfg->log.access, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
            if (fd < 0 || (cf_srv->access_log = fdopen(fd, "a")) == NULL) {
                cf_log_error("%s: cannot open the access log: %s", cfg->log.access, strerror(errno));
                if (fd >= 0)
                    close(fd);
                return 1;
            }
        }
    }
    s->stage = STAGE_BOUND;
    raise_nofile(cfg);
    for (size_t i = 0; i < cfg->nlisten; i++) {
        int fd = listen_on(cfg->listen[i], &err);
        if (fd < 0) {
            cf_log_error("%s", err);
            free(err);
            return 1;
        }
        cf_srv->listen_fds[cf_srv->nlisten++] = fd;
    }
    return 0;
}

/* Phase 4, drop privileges: everything that needs root is done; to the service account for good. */
static int serve_drop_privileges(struct serve *s)
{
    char *err = NULL;
    if (cf_priv_drop(&s->priv, &err) != 0) {
        cf_log_error("%s", err);
        free(err);
        return 1;
    }
    if (s->priv.drop) {
        cf_log_info("running as %s (uid %u, gid %u)", s->priv.name, (unsigned)s->priv.uid, (unsigned)s->priv.gid);
        char *unreadable = cf_priv_unreadable(s->cfg->tls_certificate, s->cfg->tls_key);
        if (unreadable != NULL) {
            cf_log_warn("SIGHUP cannot reload the TLS certificate: %s", unreadable);
            free(unreadable);
        }
    }
    return 0;
}

/* A cluster node's id (docs/CLUSTER.md "Crashes and partial work"): random at its first start, kept in
 * data_dir/node-id (32 hex digits, 0600) so that its next run knows which unfinished uploads were its
 * own. Not a secret: it is stored in the clear in the marks of the node's uploads in flight. */
static int node_id_load(const struct cf_config *cfg, uint8_t id[16])
{
    char *path = cf_xasprintf("%s/node-id", cfg->data_dir);
    char hex[33] = {0};
    int rc = 1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        ssize_t n = read(fd, hex, 32);
        size_t got = 0;
        if (n == 32 && cf_hex_decode(hex, 32, id, 16, &got) == CF_OK && got == 16)
            rc = 0;
        else
            cf_log_error("%s: not a node id (32 hex digits): remove it to have a new one made", path);
        close(fd);
    } else if (errno == ENOENT) {
        cf_random(id, 16);
        cf_hex_encode(id, 16, hex);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0 && write(fd, hex, 32) == 32 && fsync(fd) == 0)
            rc = 0;
        else
            cf_log_error("%s: cannot write the node id: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
    } else {
        cf_log_error("%s: %s", path, strerror(errno));
    }
    free(path);
    return rc;
}

/* Phase 5, open the store (as the service account): the master key is wiped once it is open; then
 * what an earlier run left behind (unfinished uploads, expired resumable uploads) goes. */
static int serve_open_store(struct serve *s)
{
    struct cf_config *cfg = s->cfg;
    cf_store_cache_bytes = (size_t)cfg->limits.metadata_cache_bytes;
    enum cf_status st =
        cf_store_open_anchored(cfg->data_dir, &s->master, s->anchor, CF_ANCHOR_CHECK, &cf_srv->app.store);
    s->anchor = NULL; /* the store took it */
    cf_key_wipe(&s->master);
    if (st != CF_OK) {
        char *why = cf_store_open_error(cfg, st);
        cf_log_error("%s", why);
        free(why);
        return 1;
    }
    cf_store_on_write_failure(on_store_write_failure);
    coord_setup(); /* cluster mode: shared throttles, leases (before anything below runs a job) */
    if (cfg->store.engine == CF_STORE_CLUSTER) {
        uint8_t node[16];
        if (node_id_load(cfg, node) != 0)
            return 1;
        cf_store_set_node(cf_srv->app.store, node);
    }
    uint64_t orphans = 0;
    if (cf_store_collect_orphans(cf_srv->app.store, &orphans) != CF_OK) {
        cf_log_error("cannot collect unfinished uploads");
        return 1;
    }
    if (orphans > 0)
        cf_log_info("collected %llu unfinished upload(s) left by an earlier run", (unsigned long long)orphans);
    if (cf_coord_holds(cf_srv->app.store, CF_COORD_JOBS, NULL, 0))
        cf_tus_expire_now(cf_srv->app.store); /* resumable uploads that expired while the server was down */
    /* The name index (storage/search.h): memory only, rebuilt at every start from the sealed names. */
    uint64_t names = 0;
    if (cf_store_search_build(cf_srv->app.store, &names) != CF_OK) {
        cf_log_error("cannot build the search index");
        return 1;
    }
    cf_log_info("search index: %llu name(s)", (unsigned long long)names);
    return 0;
}

/* Phase 6, start the threads: metrics labels, h2o, the provenance writer, the workers, the loops
 * (which take over the listening sockets), the control socket and the first retention run. */
static void serve_start_threads(struct serve *s)
{
    struct cf_config *cfg = s->cfg;
    char *err = NULL;
    cf_metrics_start(cf_route_count(), cf_route_pattern);
    cf_conn_set_takes_body(cf_route_takes_body);
    setup_h2o(cfg);
    /* No environment variable switches provenance off, except in a build made for the benchmark
     * (meson -Dbench_knobs=true, bench/audit.sh): anything else says it ignores it. */
    const char *nb = getenv("COFFER_BENCH_NO_TRANSFER_AUDIT");
#ifdef CF_BENCH_KNOBS
    if (nb != NULL && strcmp(nb, "1") == 0) {
        cf_srv->app.bench_no_transfer_audit = true;
        cf_log_warn("COFFER_BENCH_NO_TRANSFER_AUDIT=1: member downloads and views are NOT recorded in the provenance "
                    "log. This exists only to measure the cost of that log; never run a real server like this.");
    }
#else
    if (nb != NULL)
        cf_log_warn("COFFER_BENCH_NO_TRANSFER_AUDIT is ignored: only a benchmark build (-Dbench_knobs=true) has it; "
                    "every transfer is recorded");
#endif
    cf_audit_start(cfg, cf_srv->app.store);
    unsigned n = cfg->threads != 0 ? cfg->threads : cores();
    s->nloops = n;
    cf_work_start(cores() < 2 ? 2 : cores(), NULL);
    cf_bufpool_configure(cfg->limits.download_buffers != 0 ? cfg->limits.download_buffers
                                                            : (16 * cores() < 32 ? 32 : 16 * cores()));
    cf_srv->nloops = n;
    cf_srv->loops = cf_xcalloc(n, sizeof *cf_srv->loops);
    pthread_barrier_init(&loops_ready, NULL, n + 1);
    for (unsigned i = 0; i < n; i++) {
        cf_srv->loops[i].index = i;
        cf_srv->loops[i].app = &cf_srv->app;
        if (pthread_create(&cf_srv->loops[i].tid, NULL, loop_main, &cf_srv->loops[i]) != 0) {
            cf_log_error("cannot start loop thread %u", i);
            abort();
        }
    }
    /* Every loop has dup'ed the listening fds and registered its receivers. */
    pthread_barrier_wait(&loops_ready);
    pthread_barrier_destroy(&loops_ready);
    for (size_t i = 0; i < cf_srv->nlisten; i++)
        close(cf_srv->listen_fds[i]);
    for (size_t i = 0; i < cfg->nlisten; i++)
        cf_log_info("listening on https://%s (%u loops)", cfg->listen[i], n);
    /* Operator commands (coffer ctl …, and the CLI when it finds this server holding the store). */
    if (cf_ctl_start(cfg, cf_srv->app.store, cf_srv->app.started_at, &err) != CF_OK) {
        cf_log_error("%s", err);
        free(err);
        kill(getpid(), SIGTERM);
    }
    /* Retention: once now (what fell due while the server was down), then every hour (serve_run). */
    cf_work_background(run_retention, NULL);
    coord_start(); /* cluster mode: renews the leases (jobs, tus claims) */
    cf_rescan_start(&cf_srv->app); /* files accepted unscanned, once signatures exist (rescan.h) */
    cf_directory_start(&cf_srv->app); /* the periodic directory sync, if configured (directory.h) */
}

/* Phase 7, run: this thread waits for signals and, between them, keeps time for housekeeping
 * (every second): expired resumable uploads are deleted every quarter of their lifetime (at least
 * every 5 minutes, at most every second), retention runs every CF_RETENTION_PERIOD_S, and while
 * request bodies come, the heap memory they leave free is given back (cf_body_memory_trim).
 * Returns on SIGTERM or SIGINT, or on SIGUSR1 after a storage failure; SIGHUP reloads. */
static void serve_run(struct serve *s)
{
    uint64_t next_retention = cf_now_ms() + CF_RETENTION_PERIOD_S * 1000ull;
    uint64_t sweep_s = s->cfg->uploads.expire_after_s / 4;
    sweep_s = sweep_s < 1 ? 1 : sweep_s > 300 ? 300 : sweep_s;
    uint64_t next_sweep = cf_now_ms() + sweep_s * 1000;
    for (;;) {
        struct timespec ts = {1, 0};
        int sig = sigtimedwait(&s->sigs, NULL, &ts);
        if (sig < 0) {
            if (errno != EAGAIN)
                continue;
            cf_body_memory_trim();
            if (cf_now_ms() >= next_sweep) {
                cf_work_background(expire_uploads, NULL);
                next_sweep = cf_now_ms() + sweep_s * 1000;
            }
            if (cf_now_ms() >= next_retention) {
                cf_work_background(run_retention, NULL);
                next_retention = cf_now_ms() + CF_RETENTION_PERIOD_S * 1000ull;
            }
            continue;
        }
        if (sig == SIGHUP) {
            reload();
            continue;
        }
        if (sig == SIGUSR1) {
            if (!atomic_load(&store_failed))
                continue; /* not ours */
            break;
        }
        cf_log_info("received %s: finishing in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
}

/* Phase 8, drain: the control socket, then the loops (each finishes its in-flight requests), the
 * scanners, the workers and the provenance writer, in that order. */
static void serve_drain(struct serve *s)
{
    cf_ctl_stop(); /* waits for a command under way (a backup) to finish */
    send_control(CONTROL_SHUTDOWN, NULL);
    for (unsigned i = 0; i < s->nloops; i++)
        pthread_join(cf_srv->loops[i].tid, NULL);
    cf_rescan_stop(); /* waits for its scan under way, before the scanners stop */
    cf_directory_stop(); /* waits for a sync under way, before the workers and the provenance writer */
    cf_scan_stop(); /* before the pool: a finished scan hands its upload back to a worker */
    cf_render_stop(); /* before the pool: a render's read function runs on a worker's reader */
    cf_work_stop();
    coord_finish(); /* after every job and upload: the jobs lease goes to another node at once */
    cf_audit_stop(); /* after the loops and workers: every queued event is written */
    cf_bufpool_drain(); /* every stream is gone: its buffers came back */
}

/* Phase 9, stop: the store flushed; the exit code (1 after a storage failure). The h2o contexts are
 * not disposed: h2o keeps internal timers linked after its connections close (h2o_context_dispose
 * asserts on them), and h2o's own server does not dispose them at exit either. They stay reachable
 * from cf_srv until the process ends. */
static int serve_stop(void)
{
    if (cf_store_flush(cf_srv->app.store) != CF_OK)
        cf_log_warn("flushing the store at exit failed; the WAL still holds every acknowledged write");
    int rc = atomic_load(&store_failed) ? 1 : 0;
    cf_log_info(rc == 0 ? "stopped" : "stopped after a storage failure (exit code 1)");
    return rc;
}

/* Release: undoes what start-up did, as far as s->stage says it got (rc != 0: start-up failed). */
static void serve_release(struct serve *s, int rc)
{
    if (s->stage >= STAGE_BOUND) {
        if (cf_srv->access_log != NULL && cf_srv->access_log != stderr)
            fclose(cf_srv->access_log);
        if (rc != 0)
            for (size_t i = 0; i < cf_srv->nlisten; i++)
                close(cf_srv->listen_fds[i]);
    }
    if (s->stage >= STAGE_SECRETS) {
        cf_throttle_free(cf_srv->app.login_account);
        cf_throttle_free(cf_srv->app.login_ip);
        cf_throttle_free(cf_srv->app.code_ip);
        cf_throttle_free(cf_srv->app.code_link);
        cf_web_free(cf_srv->app.web);
        free(cf_srv->app.dummy_pwhash);
    }
    if (s->stage >= STAGE_TLS) {
        SSL_CTX_free(cf_srv->ssl_ctx);
        cf_store_close(cf_srv->app.store);
    }
    cf_anchor_close(s->anchor);
    cf_key_wipe(&s->master); /* held from its reading (as root) until the store opens (after the drop) */
    if (rc != 0) {
        cf_scan_stop();
        cf_render_stop();
    }
}

int cf_serve(struct cf_config *cfg)
{
    struct serve s = {.cfg = cfg};
    int rc = serve_begin(&s);
    if (rc != 0)
        return rc; /* nothing started yet */
    if (serve_spawn_scanners(&s) != 0)
        return 1;
    rc = 1;
    if (serve_load_keys(&s) == 0 && serve_bind(&s) == 0 && serve_drop_privileges(&s) == 0 &&
        serve_open_store(&s) == 0) {
        serve_start_threads(&s);
        serve_run(&s);
        serve_drain(&s);
        rc = serve_stop();
    }
    serve_release(&s, rc);
    return rc;
}
