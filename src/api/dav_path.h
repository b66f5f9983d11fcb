/*
 * dav_path.h: what the WebDAV handler files share (dav_path.c): /dav/ URLs decoded and resolved to
 * nodes for the caller, canonical hrefs, entity tags, XML answers. The handler files: dav.c (routing,
 * the class 1 methods), dav_props.c (PROPFIND, PROPPATCH, dead properties), dav_lock.c (LOCK,
 * UNLOCK, the If header and the lock check of every write). Nothing outside src/api/dav*.c includes
 * it. Loop thread.
 */
#ifndef CF_DAV_PATH_H
#define CF_DAV_PATH_H

#include "davprop.h"
#include "davxml.h"
#include "files.h"
#include "http.h"

#define DAV_MAX_SEGS 64 /* path depth below a space */

enum dav_space { DAV_NONE = 0, DAV_PRIVATE, DAV_TEAM, DAV_SHARED };

/* A /dav/ URL, decoded: the space and the names below it (in the request pool). */
struct dav_path {
    enum dav_space space;
    const char *seg[DAV_MAX_SEGS];
    size_t len[DAV_MAX_SEGS];
    size_t n;
};

enum dav_kind {
    DAV_ROOT,    /* /dav/ itself */
    DAV_LISTING, /* /dav/shared/: a virtual collection */
    DAV_NODE,    /* an existing, visible node */
    DAV_MISSING, /* the last name does not exist; its parent folder does and is visible */
    DAV_NOPARENT /* an ancestor is missing (or is a file): 409 for MKCOL/PUT */
};

struct dav_res {
    enum dav_kind kind;
    struct cf_node node; /* DAV_NODE (cleared by cf_dav_res_clear) */
    enum cf_level level;
    struct cf_id parent; /* DAV_MISSING: the folder the last name would be in */
    const char *name;    /* DAV_MISSING: the last name */
    size_t name_len;
};

void cf_dav_res_clear(struct dav_res *res);

/* cf_dav_shared_names(s, tenant, items, n): the name under /dav/shared/ of each of the caller's n
 * shared roots (cf_shared_roots' list; malloc'ed, parallel to items; cf_dav_names_free them): a
 * root's own name when no other root of the list has it (ASCII case-insensitively), else
 * "<name> (<owner's display name, else username>)", and " (2)", " (3)"... on what still collides,
 * in node id order. Every name passes cf_name_check. Storage reads only: any thread. */
char **cf_dav_shared_names(struct cf_store *s, const struct cf_id *tenant, const struct cf_node *items, size_t n);
void cf_dav_names_free(char **names, size_t n);

/* cf_dav_parse(pool, raw, n, p, why): a path below /dav/ (as captured) into p; CF_OK, CF_EINVAL
 * (*why says what) or CF_ENOTFOUND (not one of the spaces). */
enum cf_status cf_dav_parse(h2o_mem_pool_t *pool, const char *raw, size_t n, struct dav_path *p, const char **why) CF_WUR;
/* cf_dav_resolve_or_respond(r, p, res): p for the caller (404 for the invisible). */
bool cf_dav_resolve_or_respond(struct cf_req *r, const struct dav_path *p, struct dav_res *res);
/* cf_dav_href_append(b, s, n): s percent-encoded (RFC 3986 unreserved kept), appended to b;
 * cf_dav_raw_append(b, s): s as it is. */
void cf_dav_href_append(struct cf_davxml_buf *b, const char *s, size_t n);
void cf_dav_raw_append(struct cf_davxml_buf *b, const char *s);
/* cf_dav_href(b, p, collection): the canonical href of p, appended (a collection ends with '/'). */
void cf_dav_href(struct cf_davxml_buf *b, const struct dav_path *p, bool collection);
/* cf_dav_body(r, len): the request body (never NULL; *len its bytes), for the XML parsers;
 * cf_dav_refuse_body(r, xe): the answer to a body they refused (davxml.h's table). */
const char *cf_dav_body(struct cf_req *r, size_t *len);
void cf_dav_refuse_body(struct cf_req *r, enum cf_davxml_err xe);
/* cf_dav_respond_xml(r, status, b): answers b's document (b freed). */
void cf_dav_respond_xml(struct cf_req *r, int status, struct cf_davxml_buf *b);
/* cf_dav_etag(n, out): the ETag of n as GET answers it (files: strong, from the content hash;
 * collections: weak, from the modified time). */
void cf_dav_etag(const struct cf_node *n, char out[80]);

#endif
