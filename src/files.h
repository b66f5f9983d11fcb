/*
 * files.h: what the files API shares between its handler files.
 */
#ifndef CF_FILES_H
#define CF_FILES_H

#include <jansson.h>

#include "acl.h"
#include "storage.h"

/* cf_node_json(n, level): the API view of a node (SPEC §5): id, type, name, parent, size, sha256,
 * mime, version, created_at, modified_at, owner, my_level. */
json_t *cf_node_json(const struct cf_node *n, enum cf_level level);

struct cf_req;

/* How cf_serve_file serves a file. */
struct cf_serve_opts {
    bool view; /* inline view (safe types only, 415 otherwise) rather than a download */
    /* gate(ctx, first, end): runs on a worker before the first byte of a GET goes out (not for HEAD,
     * 304 or 416), with the byte range [first, end) about to be sent; anything but CF_OK is answered
     * as that status instead of the file. NULL: no gate. */
    enum cf_status (*gate)(void *ctx, uint64_t first, uint64_t end);
    void *ctx;                  /* owned by cf_serve_file from the call on */
    void (*free_ctx)(void *ctx);
};

/* cf_serve_file(r, tenant, n, o): streams file n (already authorised by the caller) with Range,
 * ETag, HEAD and the file headers (download.c). Loop thread. */
void cf_serve_file(struct cf_req *r, const struct cf_id *tenant, const struct cf_node *n, const struct cf_serve_opts *o);

#endif
