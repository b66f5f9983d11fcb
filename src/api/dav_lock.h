/*
 * dav_lock.h: WebDAV class 2 (dav_lock.c): LOCK, UNLOCK, lock discovery, and the check every write
 * through /dav/ makes (the If header, the locks covering the target). Loop thread.
 */
#ifndef CF_DAV_LOCK_H
#define CF_DAV_LOCK_H

#include "dav_path.h"

/* cf_dav_lock(r, p, res) / cf_dav_unlock(r, p, res): the methods. */
void cf_dav_lock(struct cf_req *r, const struct dav_path *p, struct dav_res *res);
void cf_dav_unlock(struct cf_req *r, const struct dav_path *p, struct dav_res *res);
/* What cf_dav_write_ok_or_respond checks (flags, or'ed). */
#define DAV_CHECK_IF 1u         /* the If header, evaluated for res (the request URI) */
#define DAV_CHECK_SELF 2u       /* the locks covering res itself: rooted at it, or depth infinity above */
#define DAV_CHECK_MEMBERSHIP 4u /* the locks covering res's parent collection, whose members change */
_Static_assert((DAV_CHECK_IF & DAV_CHECK_SELF) == 0 && ((DAV_CHECK_IF | DAV_CHECK_SELF) & DAV_CHECK_MEMBERSHIP) == 0,
               "disjoint flags");
/* cf_dav_write_ok_or_respond(r, p, res, what): before a write: the If header (RFC 4918 §10.4; 400
 * malformed, 412 false), then every lock what names submitted in the If header by the user who took
 * it, else 423 with <D:lock-token-submitted> naming the lock's root. Answers and returns false. */
bool cf_dav_write_ok_or_respond(struct cf_req *r, const struct dav_path *p, const struct dav_res *res, unsigned what);
/* cf_dav_lockdiscovery(s, tenant, b, node): the DAV:lockdiscovery property of node (its live locks and
 * the depth-infinity ones above it; storage reads: any thread); cf_dav_supportedlock(b):
 * DAV:supportedlock. */
void cf_dav_lockdiscovery(struct cf_store *s, const struct cf_id *tenant, struct cf_davxml_buf *b,
                          const struct cf_node *node);
void cf_dav_supportedlock(struct cf_davxml_buf *b);

/* cf_dav_locks_drop_start(r, id, then, ctx): removes the locks rooted at node id (before a MOVE:
 * RFC 4918 §9.9.4) on a worker, then then(r, ctx) on the loop; then(NULL, ctx) when the store failed
 * (answered: 500) or the client went away (then only frees ctx). Loop thread. */
void cf_dav_locks_drop_start(struct cf_req *r, const struct cf_id *id, void (*then)(struct cf_req *r, void *ctx),
                             void *ctx);

#endif
