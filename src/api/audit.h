/*
 * audit.h: provenance events (SPEC §5 "Provenance"): who (user, or share + address), when (ms), what
 * (node id, name and path at the time), from where (address, user agent), the result, and for
 * transfers the range, the bytes sent and whether the transfer completed.
 *
 * Events go to one writer thread that group-commits them (storage/audit.c chains and seals them).
 * cf_audit_submit returns at once; cf_audit_submit_wait blocks until the event is durable and is
 * for worker threads only: it is how a download's "began" event is made durable before the first
 * byte leaves, and how actions done on workers get their event written before they are answered.
 */
#ifndef CF_AUDIT_H
#define CF_AUDIT_H

#include <jansson.h>

#include "base.h"
#include "storage.h"

struct cf_req;
struct cf_config;

enum cf_actor_type { CF_ACTOR_USER = 1, CF_ACTOR_SHARE = 2, CF_ACTOR_ANONYMOUS = 3, CF_ACTOR_SYSTEM = 4 };

struct cf_event {
    struct cf_id tenant;
    const char *action;          /* static: "file.download", ... */
    enum cf_actor_type actor_type;
    struct cf_id actor;          /* user or share id (zero for anonymous/system) */
    char *actor_name;            /* username, or NULL */
    bool has_node;
    struct cf_id node;
    char *node_name;
    char *node_path;             /* "/a/b/name" inside its space */
    char *space;                 /* "tenant" or "private:USERNAME" */
    bool has_share;
    struct cf_id share;
    char ip[64];
    char *user_agent;
    const char *result;          /* "ok", "denied", "error" */
    json_t *detail;              /* object, owned */
    uint64_t at;                 /* ms since epoch */
    uint64_t began;              /* end records of transfers: the seq of the "began" event */
};

/* cf_event_new(tenant, action, result): a new event at the current time (free with cf_event_free,
 * or hand it to a submit function, which takes it). */
struct cf_event *cf_event_new(const struct cf_id *tenant, const char *action, const char *result);
void cf_event_free(struct cf_event *e);
/* cf_event_from_req(e, r): actor (the authenticated user, else anonymous), address, user agent. */
void cf_event_from_req(struct cf_event *e, const struct cf_req *r);
/* cf_event_user(e, id, name): the actor is a user. */
void cf_event_user(struct cf_event *e, const struct cf_id *id, const char *name);
/* cf_event_node(e, n): the node, with its name and its path at this moment (reads its ancestors). */
void cf_event_node(struct cf_event *e, const struct cf_node *n);
/* cf_event_detail(e, key, value): adds one detail field (value reference stolen). */
void cf_event_detail(struct cf_event *e, const char *key, json_t *value);

/* cf_audit_start(cfg, store) / cf_audit_stop(): the writer thread. */
void cf_audit_start(const struct cf_config *cfg, struct cf_store *store);
void cf_audit_stop(void);

/* cf_audit_submit(e): queues e (taken); returns at once. Any thread. */
void cf_audit_submit(struct cf_event *e);
/* cf_audit_submit_cb(e, cb, arg): queues e (taken); once it is durable (or failed), cb(arg, status,
 * seq) runs on the writer thread: it must be short and must not submit events itself. */
void cf_audit_submit_cb(struct cf_event *e, void (*cb)(void *arg, enum cf_status st, uint64_t seq), void *arg);
/* cf_audit_submit_wait(e, seq): queues e (taken) and waits until it is durable. Worker threads. */
enum cf_status cf_audit_submit_wait(struct cf_event *e, uint64_t *seq) CF_WUR;
/* cf_audit_queue_depth(): events queued or being written, not yet durable (for /metrics). Any thread. */
size_t cf_audit_queue_depth(void);

/* Bulk-download accounting: counts files and bytes downloaded by an actor in its tenant and emits
 * alert.bulk_download when the tenant policy's files or bytes are reached within its window. */
void cf_audit_count_download(const struct cf_id *tenant, enum cf_actor_type type, const struct cf_id *actor,
                             const char *ip, uint64_t files, uint64_t bytes);

/* CSV export (provenance.c, RFC 4180). A growing NUL-terminated text: p malloc'ed (free it), len
 * bytes used, cap allocated; start from {0}. */
struct cf_csv {
    char *p;
    size_t len, cap;
};
/* cf_csv_cell(b, s, first): appends one cell (after a comma unless first) holding the NUL-terminated
 * s (NULL: an empty cell). A cell with a comma, quote, CR or LF is quoted with quotes doubled; one
 * that starts with = + - @ TAB or CR (which spreadsheets would run as a formula) is quoted and
 * prefixed with an apostrophe. Any thread. */
void cf_csv_cell(struct cf_csv *b, const char *s, bool first);

#endif
