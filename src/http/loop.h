/*
 * loop.h: one event-loop thread of the server (struct cf_loop): its h2o context, listeners, the
 * requests and connections it owns, its drain state. src/app/server.c creates and runs the loops;
 * the connection limits (conn.c) and the dispatcher read them. Each field is touched only by its
 * loop's thread, except where a field says otherwise.
 */
#ifndef CF_LOOP_H
#define CF_LOOP_H

#include <h2o.h>
#include <pthread.h>

#include "config.h"
#include "context.h"
#include "metrics.h"

struct cf_conn;

enum cf_loop_state { CF_LOOP_RUNNING, CF_LOOP_DRAINING, CF_LOOP_CLOSING, CF_LOOP_DONE };

struct cf_loop {
    unsigned index;
    const struct cf_app *app;          /* the server's context (written before the loop starts) */
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
    struct cf_conn *reading;           /* conn.c: the connection whose h2o read callback is running */
};

/* cf_loop_of(req): the loop that owns req. */
struct cf_loop *cf_loop_of(h2o_req_t *req);

#endif
