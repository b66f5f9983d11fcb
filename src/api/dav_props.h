/*
 * dav_props.h: WebDAV properties (dav_props.c): PROPFIND (live, dead, lock and quota properties),
 * PROPPATCH (dead properties, atomic), and the copy of dead properties for COPY. Loop thread.
 */
#ifndef CF_DAV_PROPS_H
#define CF_DAV_PROPS_H

#include "dav_path.h"

/* cf_dav_propfind(r, p, res): PROPFIND of an existing resource (Depth 0 or 1). */
void cf_dav_propfind(struct cf_req *r, const struct dav_path *p, struct dav_res *res);
/* cf_dav_proppatch(r, p, res): PROPPATCH (after the lock check). */
void cf_dav_proppatch(struct cf_req *r, const struct dav_path *p, struct dav_res *res);
/* cf_dav_then_fn(r, ctx): what comes after an asynchronous step; r NULL when the request was
 * answered (an error) or is gone: then it only frees ctx. */
typedef void cf_dav_then_fn(struct cf_req *r, void *ctx);
/* cf_dav_props_copy_start(r, src, dst, status, then, ctx): copies src's dead properties onto dst on
 * a worker (COPY), then answers status with no body (then NULL) or calls then. */
void cf_dav_props_copy_start(struct cf_req *r, const struct cf_id *src, const struct cf_id *dst, int status,
                             cf_dav_then_fn *then, void *ctx);

#endif
