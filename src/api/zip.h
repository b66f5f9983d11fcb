/*
 * zip.h: a folder downloaded as one streamed ZIP archive (zip.c), for members (GET
 * /api/v1/folders/{id}/zip) and for recipients of a folder link (GET /s/{token}/zip, share.c).
 */
#ifndef CF_ZIP_H
#define CF_ZIP_H

#include "acl.h"
#include "storage.h"

struct cf_req;

/* What to archive and for whom. Members: every live file and folder below root that the actor may
 * download (a level below download anywhere: skipped, as if invisible; the caller checked download
 * on root), at most limits.max_zip_entries of them (413 beyond). Links: everything live below root (the link's creator-level check was done by share.c),
 * every file drawn from the link's byte budget. */
struct cf_zip_request {
    struct cf_id tenant;
    const struct cf_node *root;       /* a folder; copied */
    enum cf_level level;              /* members: the caller's level on root */
    bool link;
    struct cf_id share;               /* links: the link */
};

/* cf_zip_serve(r, z): answers r with the archive (or an error). Loop thread; the caller has
 * authorised r for z->root. */
void cf_zip_serve(struct cf_req *r, const struct cf_zip_request *z);

#endif
