/*
 * context.h: struct cf_app, what request handlers and the server's jobs may know of the running
 * server. `coffer serve` (src/app/server.c) fills one before the loops start and it stays read-only
 * afterwards (the throttles lock themselves; the store is thread-safe). A request reaches it as
 * r->app (set by the dispatcher from its loop), an async job as a->app (copied from the request when
 * the job starts), and code that serves no request (retention, audit writer, operator commands) gets
 * it, or the one field it needs, as a parameter. Listeners, loops and TLS contexts are not here: they
 * stay private to src/app and src/http.
 */
#ifndef CF_CONTEXT_H
#define CF_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "base.h" /* enum cf_status */

struct cf_config;
struct cf_static;
struct cf_store;
struct cf_throttle;
struct json_t;

struct cf_app {
    struct cf_config *cfg;
    struct cf_store *store;
    struct cf_static *web;             /* static files of web/ */
    char *dummy_pwhash;                /* Argon2id hash of a random password, for uniform timing */
    struct cf_throttle *login_account; /* failed logins per tenant+username */
    struct cf_throttle *login_ip;      /* failed logins per client address */
    struct cf_throttle *code_ip;       /* wrong share codes per client address (15 min) */
    struct cf_throttle *code_link;     /* wrong share codes per link (1 h) */
    uint64_t started_at;               /* ms since epoch */
    /* The directory sync (src/ops/directory.c), for the admin API, which may not call src/ops itself:
     * (app, dry_run, report, err) as cf_directory_sync; NULL outside `coffer serve`. */
    enum cf_status (*directory_sync)(const struct cf_app *app, bool dry_run, struct json_t **report, char **err);
    bool bench_no_transfer_audit;      /* benchmark builds only (-Dbench_knobs=true and $COFFER_BENCH_NO_TRANSFER_AUDIT=1) */
};

#endif
