/*
 * pages.h: server-rendered, watermarked pages (pages.c): what share.c and upload.c need.
 */
#ifndef CF_PAGES_H
#define CF_PAGES_H

#include <h2o.h>

#include "acl.h"
#include "audit.h"
#include "storage.h"

struct cf_req;

/* Who is looking: the watermark's first line (label) and the provenance actor. */
struct cf_viewer {
    struct cf_id tenant;            /* the file's tenant */
    enum cf_actor_type actor_type;  /* CF_ACTOR_USER or CF_ACTOR_SHARE */
    struct cf_id actor;             /* user id, or the link's id */
    char actor_name[72];            /* username, or "" */
    char label[96];                 /* display name, or the link's recipient label */
    char ip[64];
    char user_agent[256];
};

/* cf_pages_viewer_init(v, r): address and user agent from the request; the rest zero. */
void cf_pages_viewer_init(struct cf_viewer *v, struct cf_req *r);
/* cf_pages_member(v, r): the authenticated member as the viewer. */
void cf_pages_member(struct cf_viewer *v, struct cf_req *r);

/* cf_pages_summary(r, v, node): answers {"pages", "widths", "status"} for the file node (the caller
 * checked the viewer may view it). cf_pages_image(r, v, node, page): answers the page (the raw path
 * capture; ?w= from the query) as image/webp with v's watermark, or the error. Loop thread. */
void cf_pages_summary(struct cf_req *r, const struct cf_viewer *v, const struct cf_node *node);
void cf_pages_image(struct cf_req *r, const struct cf_viewer *v, const struct cf_node *node, h2o_iovec_t page);

/* cf_pages_prepare(store, tenant, file, version, mime): starts rendering a new version's summary and
 * first pages in the background (renderer threads), unless it was done. Never blocks on a render.
 * Worker threads (after a commit). */
void cf_pages_prepare(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *file, uint32_t version,
                      const char *mime);

#endif
