/*
 * server.h: `coffer serve`: the process-wide server state, the event-loop threads, start-up and
 * the graceful shutdown.
 *
 * Threads: N loop threads (struct cf_loop), M workers (work.c), and the main thread, which waits
 * for signals with sigwait (h2o's messaging is not async-signal-safe) and relays them to the loops.
 * cf_srv is written once before the loops start; afterwards its fields are read-only except where
 * a field says which lock guards it.
 */
#ifndef CF_SERVER_H
#define CF_SERVER_H

#include <h2o.h>
#include <stdio.h>

#include "config.h"
#include "storage.h"

struct cf_static;
struct cf_throttle;

enum cf_loop_state { CF_LOOP_RUNNING, CF_LOOP_DRAINING, CF_LOOP_CLOSING, CF_LOOP_DONE };

/* Why a connection was refused or closed by a limit (server.c, "connection limits"). */
enum cf_limit {
    CF_LIMIT_CONNECTIONS,  /* refused: limits.max_connections */
    CF_LIMIT_PER_ADDRESS,  /* refused: limits.max_connections_per_address */
    CF_LIMIT_SLOW_REQUEST, /* HTTP/2 request not received within limits.request_timeout */
    CF_LIMIT_BODY,         /* large body without credentials or off the upload routes */
    CF_LIMIT_IDLE,         /* HTTP/2 connection without streams for limits.idle_timeout */
    CF_LIMIT_CANCELS,      /* limits.max_cancels_per_connection */
    CF_LIMIT_COUNT
};

struct cf_loop {
    unsigned index;
    pthread_t tid;
    h2o_context_t ctx;                 /* one h2o context per loop */
    h2o_accept_ctx_t accept_ctx;       /* ssl_ctx swapped on SIGHUP, on this loop's thread */
    h2o_socket_t *listeners[CF_CONFIG_MAX_LISTEN];
    size_t nlisteners;
    h2o_multithread_receiver_t work_done; /* worker → loop completions */
    h2o_multithread_receiver_t control;   /* main → loop: shutdown, reload */
    size_t inflight;                   /* requests not yet disposed */
    size_t connections;                /* accepted sockets not yet closed */
    enum cf_loop_state state;
    uint64_t deadline;                 /* ms (loop clock) ending the current drain/close phase */
    h2o_linklist_t conns;              /* struct cf_conn (server.c) of every accepted socket */
    uint64_t next_sweep;               /* ms: next check of the connection limits */
    uint64_t next_limit_log[CF_LIMIT_COUNT]; /* ms: each limit is logged at most every 10 s */
    uint64_t limited[CF_LIMIT_COUNT];  /* connections refused or closed, by limit */
    uint64_t limited_logged[CF_LIMIT_COUNT];
};

struct cf_server {
    struct cf_config *cfg;
    struct cf_store *store;
    h2o_globalconf_t globalconf;
    h2o_hostconf_t *hostconf;
    struct cf_loop *loops;
    unsigned nloops;
    int listen_fds[CF_CONFIG_MAX_LISTEN];
    size_t nlisten;
    SSL_CTX *ssl_ctx;                  /* the current context (main thread swaps it) */
    FILE *access_log;                  /* NULL: off */
    pthread_mutex_t access_log_lock;
    struct cf_static *web;             /* static files of web/ */
    char *dummy_pwhash;                /* Argon2id hash of a random password, for uniform timing */
    struct cf_throttle *login_account; /* failed logins per tenant+username */
    struct cf_throttle *login_ip;      /* failed logins per client address */
    struct cf_throttle *code_ip;       /* wrong share codes per client address (15 min) */
    struct cf_throttle *code_link;     /* wrong share codes per link (1 h) */
    uint64_t started_at;               /* ms since epoch */
    bool bench_no_transfer_audit;      /* benchmark builds only (-Dbench_knobs=true and $COFFER_BENCH_NO_TRANSFER_AUDIT=1) */
};

extern struct cf_server *cf_srv;

/* cf_serve(cfg): runs the server until SIGTERM/SIGINT; returns the process exit code. */
int cf_serve(struct cf_config *cfg);

/* cf_loop_of(req): the loop that owns req. */
struct cf_loop *cf_loop_of(h2o_req_t *req);

/* cf_master_key_load(path, out, err): reads a master key file (exactly 32 bytes, mode 0600 or
 * stricter, owned by us). CF_EINVAL with a message in *err otherwise. */
enum cf_status cf_master_key_load(const char *path, struct cf_key *out, char **err) CF_WUR;

/* cf_store_open_error(cfg, st): why cf_store_open(_readonly) of cfg->data_dir failed with st, as a
 * malloc'ed sentence naming the directory (and the master key, or the command to run). */
char *cf_store_open_error(const struct cf_config *cfg, enum cf_status st);

/* cf_listen_resolve(spec, err): the addresses of one `listen:` entry ("host:port", "[v6]:port"),
 * resolved without binding (getaddrinfo; the caller frees with freeaddrinfo), or NULL with a
 * malloc'ed "listen: SPEC: why" in *err. Used by serve and by serve --check. */
struct addrinfo;
struct addrinfo *cf_listen_resolve(const char *spec, char **err);

#endif
