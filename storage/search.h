/*
 * search.h: the name index (issue 21): finding nodes by name and path while names stay sealed at rest.
 *
 * Names are sealed in node records, so the index lives in memory only: one table per tenant of every
 * non-root node (id, parent, trashed flag, normalised name), sorted by id, built once from the
 * unsealed node records when the server starts (cf_store_search_build) and kept current from the one
 * write path: every batch cf_db_write_raw commits is listed (cf_batch_each, as the metadata cache
 * does) and each node record it puts is unsealed, decoded and applied, each deletion removed, a
 * tenant's key deletion or a range deletion over nodes drops what it covers. Nothing of it is ever
 * written anywhere; a crash leaves nothing, and the next start rebuilds it. docs/DESIGN.md "Search".
 *
 * Normalisation (cf_search_fold): Unicode NFKC_Casefold (ICU), so that case, compatibility forms
 * (full-width letters, ligatures) and composed/decomposed accents all compare equal; matching is then
 * byte-wise substring search on the normalised UTF-8.
 *
 * The index answers "which ids may match" (candidates, in id order); it knows nothing of access. The
 * API (src/api/search.c) decides visibility through acl.c and matches the path only against the
 * folders the caller may see. Thread: any; one reader-writer lock (writers preferred) per store, held
 * only for bounded steps (a candidate scan stops after max_scan entries).
 */
#ifndef CF_SEARCH_H
#define CF_SEARCH_H

#include "base.h"

struct cf_store;

#define CF_SEARCH_QUERY_MAX 200           /* bytes in a query as received */
#define CF_SEARCH_SEGMENTS_MAX 16         /* '/'-separated parts of a path query */
#define CF_SEARCH_MAX_BYTES ((size_t)512 << 20) /* the index's memory bound (≈ 5 million names) */

/* cf_store_search_build(s, entries): builds the index of every tenant of an open read-write store
 * and from then on keeps it current. Call once after open, before serving (the server's start-up);
 * stores opened without it (CLI commands) have no index and their searches answer CF_EUNAVAIL.
 * *entries (may be NULL) gets the number of names indexed. CF_EIO/CF_ECORRUPT if a record cannot be
 * read (nothing is kept then). */
enum cf_status cf_store_search_build(struct cf_store *s, uint64_t *entries) CF_WUR;

/* What the index holds now (for logs and the bench): names and bytes (entries and names). */
struct cf_search_stats {
    uint64_t tenants, entries, bytes;
    bool ready;
};
void cf_store_search_stats(struct cf_store *s, struct cf_search_stats *out);

/* cf_store_search_refresh(s, tenant, node): re-reads one node record and updates the index from it
 * (absent: removed). For a cluster (issue 24): the node that receives another node's invalidation of
 * a `nodes` key applies it here, as cf_db_write_raw applies local writes. Worker threads. */
enum cf_status cf_store_search_refresh(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node) CF_WUR;

/* A parsed query: the normalised text cut at '/' into segments (see cf_search_match). */
struct cf_search_query {
    char *text;                          /* normalised query, NUL-terminated (malloc'ed) */
    size_t off[CF_SEARCH_SEGMENTS_MAX];  /* each segment: offset in text ... */
    size_t len[CF_SEARCH_SEGMENTS_MAX];  /* ... and length (0: an empty segment) */
    size_t nseg;                         /* ≥ 1; 1: a plain name query */
};

/* cf_search_query_parse(q, n, out, why): CF_OK, or CF_EINVAL with *why (static text) when q is empty,
 * longer than CF_SEARCH_QUERY_MAX bytes, not valid UTF-8 (overlong forms, surrogates and NUL
 * included), has more than CF_SEARCH_SEGMENTS_MAX segments, or is nothing but slashes and spaces.
 * Clear with cf_search_query_clear. Pure. */
enum cf_status cf_search_query_parse(const char *q, size_t n, struct cf_search_query *out, const char **why) CF_WUR;
void cf_search_query_clear(struct cf_search_query *q);

/* cf_search_fold(s, n, out_len): the normalised form of UTF-8 text (malloc'ed, NUL-terminated), or
 * NULL if s is not valid UTF-8. Pure, any thread. */
char *cf_search_fold(const char *s, size_t n, size_t *out_len);

/* cf_search_match(q, name, anc, nanc): the matching rule. name and anc[] are normalised names, anc
 * the node's ancestors nearest first (only those the asker may see). A query without '/' matches
 * when the name contains it. A path query "s1/s2/…/sk" matches when the name contains sk (an empty
 * sk matches any name) and s1 … s(k-1) (empty ones skipped) are contained, in this order from the
 * top, in distinct ancestors (not necessarily adjacent): "reports/2024" finds "q3-2024.pdf" anywhere
 * below a folder whose name contains "reports". Pure. */
bool cf_search_match(const struct cf_search_query *q, const char *name, const char *const *anc, size_t nanc);

/* Flags of cf_search_candidates. */
#define CF_SEARCH_TRASHED 1u /* include trashed nodes (the provenance search); else only live ones */

/* cf_search_candidates(s, tenant, q, after, flags, max_ids, max_scan, out, parents, n, last, end): the
 * ids of the tenant's indexed nodes, in increasing id order starting after *after (NULL: from the
 * first), whose normalised name and ancestors (all of them, as the index knows them) match q; at most
 * max_ids into out (and, if parents is not NULL, each one's parent as last written into parents),
 * examining at most max_scan entries. *last gets the id of the last entry examined
 * (pass it as after to continue); *end says whether the scan reached the tenant's last entry. A node
 * below a trashed folder is still a candidate (the caller's access check hides it). CF_EUNAVAIL if
 * the store has no index (or it outgrew CF_SEARCH_MAX_BYTES). Any thread; takes the read lock for
 * this one step. */
enum cf_status cf_search_candidates(struct cf_store *s, const struct cf_id *tenant, const struct cf_search_query *q,
                                    const struct cf_id *after, unsigned flags, size_t max_ids, size_t max_scan,
                                    struct cf_id *out, struct cf_id *parents, size_t *n, struct cf_id *last,
                                    bool *end) CF_WUR;

/* The write path: cf_db_write_raw calls the store's search_apply hook (set by the build) after every
 * successful engine write and before it returns, so a search that starts after a write was
 * acknowledged sees it; cf_store_close calls search_free. */

#endif
