/*
 * davif.h: the WebDAV If header (RFC 4918 §10.4), parsed and evaluated. Pure protocol: knows no
 * request, no store; the caller says what a state token or an entity tag means for a resource
 * through two callbacks.
 *
 *   If = ( 1*No-tag-list | 1*Tagged-list )          No-tag-list = List
 *   Tagged-list = Resource-Tag 1*List               Resource-Tag = "<" Simple-ref ">"
 *   List = "(" 1*Condition ")"                      Condition = ["Not"] (State-token | "[" entity-tag "]")
 *   State-token = Coded-URL = "<" absolute-URI ">"
 * with optional whitespace (SP, HTAB) between the parts. Everything parsed points into the header
 * bytes (borrowed: they must outlive the struct). Bounded: a header over CF_DAVIF_MAX_BYTES, more
 * than CF_DAVIF_MAX_LISTS lists or CF_DAVIF_MAX_CONDS conditions in all is refused (CF_EINVAL, like
 * any malformed header: the handler answers 400).
 *
 * Thread: any; no allocation.
 */
#ifndef CF_DAVIF_H
#define CF_DAVIF_H

#include <stdbool.h>
#include <stddef.h>

#include "base.h"

#define CF_DAVIF_MAX_BYTES 8192u /* bytes of one If header */
#define CF_DAVIF_MAX_LISTS 32u   /* lists ("(...)") in one header */
#define CF_DAVIF_MAX_CONDS 64u   /* conditions in all lists together */

struct cf_davif_cond {
    bool negate;     /* "Not" */
    bool etag;       /* "[entity-tag]", else "<state-token>" */
    const char *s;   /* the token URI without <>, or the entity tag as written (quotes, W/ kept) */
    size_t len;      /* ≥ 1 */
};

struct cf_davif_list {
    const char *tag; /* the resource tag without <> (a URI or absolute path), or NULL: untagged */
    size_t tag_len;
    size_t first;    /* index of its first condition in conds */
    size_t n;        /* ≥ 1 */
};

struct cf_davif {
    struct cf_davif_list lists[CF_DAVIF_MAX_LISTS];
    size_t nlists;   /* ≥ 1 */
    struct cf_davif_cond conds[CF_DAVIF_MAX_CONDS];
    size_t nconds;
    bool tagged;     /* the header is made of tagged lists */
};

/* cf_davif_parse(h, n, out): parses the value of an If header. CF_OK, or CF_EINVAL for anything
 * that is not exactly the grammar above (empty, unbalanced, a list without condition, a tag after
 * untagged lists, bytes past the limits, control characters). */
enum cf_status cf_davif_parse(const char *h, size_t n, struct cf_davif *out) CF_WUR;

/* What a condition means for one resource, given by the caller:
 *   applies(ctx, tag, tag_len): whether a list tagged so is about the request's resource;
 *   holds(ctx, cond): whether cond's token or tag (negation aside) matches that resource. */
struct cf_davif_eval {
    bool (*applies)(void *ctx, const char *tag, size_t tag_len);
    bool (*holds)(void *ctx, const struct cf_davif_cond *c);
    void *ctx;
};

/* cf_davif_true(h, ev): RFC 4918 §10.4.2–§10.4.3: the header is true for the resource when one of
 * the lists that apply to it (untagged lists always do) is true (every condition of it holds, Not
 * inverting), or when no list applies to it at all (a header about other resources is ignored). */
bool cf_davif_true(const struct cf_davif *h, const struct cf_davif_eval *ev);

#endif
