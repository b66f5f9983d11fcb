/*
 * davprop.h: WebDAV dead properties and lock records in the store (davprop.c; docs/WEBDAV.md "Dead
 * properties and locks in the store"). Storage knows nothing of XML or HTTP: a property is a
 * (namespace, local name, value bytes) triple whose value the caller keeps as a canonical fragment;
 * a lock is a record the caller fills.
 *
 * Limits: per node at most CF_DAVPROP_MAX_PROPS dead properties and CF_DAVPROP_MAX_BYTES of values
 * in all (CF_ETOOBIG past them: the handler answers 507). Thread: any thread; writes are
 * synchronous (call them from workers).
 */
#ifndef CF_DAVPROP_H
#define CF_DAVPROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"

struct cf_store;
struct cf_batch;

#define CF_DAVPROP_MAX_PROPS 1024u          /* dead properties on one node */
#define CF_DAVPROP_MAX_BYTES (1024u * 1024u) /* bytes of their values, in all */
#define CF_DAVLOCK_TOKEN_MAX 64u            /* bytes of a lock token URI (opaquelocktoken:<uuid> is 52) */
#define CF_DAVLOCK_MAX_PER_NODE 64u         /* live locks on one node (shared locks pile up) */

/* A dead property as stored: all three malloc'ed and NUL-terminated (ns "" for no namespace). */
struct cf_davprop {
    char *ns;
    char *local;
    char *value;      /* the canonical fragment, value_len bytes */
    size_t value_len;
};
void cf_davprops_free(struct cf_davprop *p, size_t n);

/* cf_davprop_list(s, tenant, node, out, n): node's dead properties (malloc'ed array of *n, in key
 * order; free with cf_davprops_free). CF_ENOTFOUND: no such tenant. */
enum cf_status cf_davprop_list(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                               struct cf_davprop **out, size_t *n) CF_WUR;

/* One instruction of a PROPPATCH. */
struct cf_davprop_op {
    bool remove;       /* remove (value unused) or set */
    const char *ns;    /* NUL-terminated */
    const char *local; /* NUL-terminated */
    const char *value; /* set: value_len bytes */
    size_t value_len;
};

/* cf_davprop_apply(s, tenant, node, ops, n): applies ops in order, all in one synchronous batch or
 * none (RFC 4918 §9.2: atomic). Removing an absent property is not an error. CF_ETOOBIG: the node
 * would hold more than the limits (nothing applied). */
enum cf_status cf_davprop_apply(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                                const struct cf_davprop_op *ops, size_t n) CF_WUR;

/* cf_davprop_copy(s, tenant, src, dst): dst's dead properties become src's (COPY; locks never
 * follow). One synchronous batch. */
enum cf_status cf_davprop_copy(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *src,
                               const struct cf_id *dst) CF_WUR;

/* A write lock (RFC 4918 §6, §14.1). */
struct cf_davlock {
    struct cf_id id;      /* random; the record's key below its node */
    struct cf_id node;    /* the lock root's node */
    struct cf_id creator; /* the user who took it: only they may submit its token */
    char token[CF_DAVLOCK_TOKEN_MAX + 1]; /* "opaquelocktoken:<uuid>", NUL-terminated */
    bool shared;          /* shared, else exclusive */
    bool infinity;        /* Depth: infinity, else 0 */
    char *owner;          /* canonical DAV:owner fragment, malloc'ed, or NULL */
    size_t owner_len;
    char *root;           /* the lock root's href (NUL-terminated, malloc'ed) */
    uint64_t created_at;  /* ms since the epoch */
    uint64_t timeout_s;   /* as granted, seconds */
    uint64_t expires_at;  /* ms since the epoch; ignored on read once past */
};
void cf_davlock_clear(struct cf_davlock *l);
void cf_davlocks_free(struct cf_davlock *l, size_t n);

/* cf_davlock_list(s, tenant, node, now, out, n): the locks rooted at node that have not expired at
 * now (ms); malloc'ed array of *n (free with cf_davlocks_free). */
enum cf_status cf_davlock_list(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node, uint64_t now,
                               struct cf_davlock **out, size_t *n) CF_WUR;

/* cf_davlock_put(s, tenant, l, now): stores l (new, or a refresh of the same id) with its token index
 * entry, and drops the node's locks expired at now (ms), in one synchronous batch. CF_ETOOBIG: the
 * node already holds CF_DAVLOCK_MAX_PER_NODE live locks. Conflicts between locks are the caller's
 * (it serialises its LOCKs). */
enum cf_status cf_davlock_put(struct cf_store *s, const struct cf_id *tenant, const struct cf_davlock *l,
                              uint64_t now) CF_WUR;

/* cf_davlock_by_token(s, tenant, token, len, now, out): the live lock whose token is the len bytes
 * at token; CF_ENOTFOUND when none (unknown, expired, or its node purged). */
enum cf_status cf_davlock_by_token(struct cf_store *s, const struct cf_id *tenant, const char *token, size_t len,
                                   uint64_t now, struct cf_davlock *out) CF_WUR;

/* cf_davlock_covering(s, tenant, node, now, out, n): the live locks that cover node: those rooted
 * at it, and the depth-infinity ones rooted at its ancestors (at most CF_DAVLOCK_MAX_DEPTH levels
 * up); malloc'ed array of *n (cf_davlocks_free). A node that does not exist has none. */
#define CF_DAVLOCK_MAX_DEPTH 256
enum cf_status cf_davlock_covering(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                                   uint64_t now, struct cf_davlock **out, size_t *n) CF_WUR;

/* cf_davlock_check(s, tenant, node, user, now): CF_ELOCKED when a live lock covering node was taken
 * by someone other than user, else CF_OK (or the store's error). For the API's own writes, which
 * carry no lock token: the lock's creator may write, nobody else. */
enum cf_status cf_davlock_check(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                                const struct cf_id *user, uint64_t now) CF_WUR;

/* cf_davlock_sweep(s, tenant, now, removed): deletes every lock of the tenant expired at now (ms),
 * with its token entry, in one synchronous batch (the retention job; expired locks are already
 * ignored on read). *removed: how many. */
enum cf_status cf_davlock_sweep(struct cf_store *s, const struct cf_id *tenant, uint64_t now, uint64_t *removed) CF_WUR;

/* cf_davlock_delete(s, tenant, l): removes lock l and its token index entry (UNLOCK). */
enum cf_status cf_davlock_delete(struct cf_store *s, const struct cf_id *tenant, const struct cf_davlock *l) CF_WUR;

/* Storage-internal (purge.c): puts into b the deletion of node's dead properties and locks (with
 * their token entries). Under ns_lock, in the purge batch. */
enum cf_status cf_davprop_batch_drop(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                                     struct cf_batch *b) CF_WUR;

#endif
