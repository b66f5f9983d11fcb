/*
 * search.c: GET /api/v1/search?q=&limit=&cursor= (issue 21): members find nodes by name and path,
 * among what they may see.
 *
 * The name index (storage/search.h) proposes candidates in node-id order, matched against names as
 * the index holds them (every ancestor); then each candidate is decided here, on a worker, exactly as
 * any other access: its level through acl.c (a memo shared by the request, cf_acl_memo_level_hint: a
 * candidate whose folder gives no view costs one ACL read and is never loaded), which hides the
 * trash and everything below it, and the match is checked again against the node's stored
 * name and only the ancestors the caller may view. So a search never reveals a name the caller could
 * not list, nor matches on the name of a folder they cannot see ("a/b" does not find b below a hidden
 * folder a), and a revocation or a move is seen by the very next request (fresh reads, no state kept
 * between requests).
 *
 * "path": the names from the highest ancestor the caller may view down to the node, '/'-separated;
 * with a leading '/' when that is the space root (the whole path), else "…/" (the folders above are
 * not the caller's to know), as the provenance log shows them.
 *
 * Bounds: an index step examines at most STEP_SCAN entries and proposes at most STEP_IDS (the index's
 * read lock is held for one step); a request makes at most MAX_CHECKS access checks and then answers
 * with what it found and a next_cursor to continue, as the provenance search does for long logs.
 */
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "files.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "search.h"

#define LIMIT_DEFAULT 50
#define LIMIT_MAX 100
#define STEP_IDS 64
#define STEP_SCAN 4096
#define MAX_CHECKS 20000
#define MAX_PATH_DEPTH 256 /* ancestors shown and matched; deeper ones count as not visible */

struct hit {
    struct cf_node node;
    enum cf_level level;
    char *path;
};

struct search {
    struct cf_async a;
    struct cf_actor who;
    struct cf_id *groups;       /* the actor's groups, copied (the request may go first) */
    struct cf_search_query q;
    struct cf_id after;         /* the cursor: the last id of the previous page */
    bool have_after;
    size_t limit;
    struct hit *hits;           /* up to limit */
    size_t n;
    struct cf_id next;          /* where the next page starts after */
    bool more;
};

/* The visible ancestors of a node (nearest first, names borrowed from the memo) and whether they
 * reach the space root. */
struct chain {
    const char *names[MAX_PATH_DEPTH];
    size_t n;
    bool whole;
};

static void visible_chain(const struct cf_acl_memo *m, const struct cf_node *node, struct chain *c)
{
    struct cf_id at = node->parent;
    c->n = 0;
    c->whole = false;
    while (c->n < MAX_PATH_DEPTH) {
        const char *name;
        struct cf_id parent;
        enum cf_level level;
        if (!cf_acl_memo_folder(m, &at, &name, &parent, &level) || level < CF_LEVEL_VIEW)
            return;
        if (cf_id_is_zero(&parent)) {
            c->whole = true; /* the space root: no name in a path */
            return;
        }
        c->names[c->n++] = name;
        at = parent;
    }
}

/* Whether node matches q on its stored name and the ancestors the caller may view. */
static bool matches(const struct cf_search_query *q, const struct cf_node *node, const struct chain *c)
{
    size_t len;
    char *name = cf_search_fold(node->name, strlen(node->name), &len);
    char *anc[MAX_PATH_DEPTH];
    size_t k = 0;
    bool ok = name != NULL;
    /* Only as many ancestors as the query has segments before the last can matter, but a segment
     * may skip folders: fold them all (most are ASCII, which costs a copy). */
    for (; ok && k < c->n; k++) {
        anc[k] = cf_search_fold(c->names[k], strlen(c->names[k]), &len);
        ok = anc[k] != NULL;
    }
    if (ok)
        ok = cf_search_match(q, name, (const char *const *)anc, k);
    else if (k > 0)
        k--; /* the last one failed and is NULL */
    for (size_t i = 0; i < k; i++)
        free(anc[i]);
    free(name);
    return ok;
}

static char *path_of(const struct cf_node *node, const struct chain *c)
{
    size_t len = strlen(node->name) + 8;
    for (size_t i = 0; i < c->n; i++)
        len += strlen(c->names[i]) + 1;
    char *p = cf_xmalloc(len), *w = p;
    if (c->whole) {
        *w++ = '/';
    } else {
        memcpy(w, "\xe2\x80\xa6/", 4); /* U+2026 */
        w += 4;
    }
    for (size_t i = c->n; i-- > 0;) {
        size_t l = strlen(c->names[i]);
        memcpy(w, c->names[i], l);
        w += l;
        *w++ = '/';
    }
    size_t l = strlen(node->name);
    memcpy(w, node->name, l + 1);
    return p;
}

/* One candidate: *hit says whether the caller may see it and it matches; then *out holds it (node,
 * level and path, for hit_clear or the page). */
static enum cf_status consider(struct search *s, struct cf_acl_memo *m, const struct cf_id *id,
                               const struct cf_id *parent, struct hit *out, bool *hit)
{
    struct chain c;
    *hit = false;
    enum cf_status st = cf_acl_memo_level_hint(m, id, parent, &out->node, &out->level);
    if (st == CF_ENOTFOUND)
        return CF_OK; /* gone since the index proposed it, trashed, or below the trash */
    if (st != CF_OK)
        return st;
    if (out->level >= CF_LEVEL_VIEW) {
        visible_chain(m, &out->node, &c);
        *hit = matches(&s->q, &out->node, &c);
    }
    if (*hit)
        out->path = path_of(&out->node, &c);
    else
        cf_node_clear(&out->node);
    return CF_OK;
}

static void hit_clear(struct hit *h)
{
    cf_node_clear(&h->node);
    free(h->path);
}

static void search_run(struct cf_async *a)
{
    struct search *s = (struct search *)a;
    struct cf_acl_memo *m = cf_acl_memo_new(&s->who);
    struct cf_id ids[STEP_IDS], parents[STEP_IDS], after = s->after, last;
    bool have_after = s->have_after, end = false;
    size_t checks = 0;
    a->st = CF_OK;
    s->hits = cf_xcalloc(s->limit, sizeof *s->hits);
    /* s->next: the last candidate decided, where a next page starts after. */
    while (!end && a->st == CF_OK) {
        size_t n;
        a->st = cf_search_candidates(a->app->store, &s->who.tenant, &s->q, have_after ? &after : NULL, 0, STEP_IDS,
                                     STEP_SCAN, ids, parents, &n, &last, &end);
        for (size_t i = 0; i < n && a->st == CF_OK; i++) {
            if (checks == MAX_CHECKS) {
                s->more = true; /* the budget is spent: answer what was found */
                goto out;
            }
            checks++;
            struct hit h = {0};
            bool hit;
            if ((a->st = consider(s, m, &ids[i], &parents[i], &h, &hit)) != CF_OK)
                break;
            if (hit && s->n == s->limit) {
                hit_clear(&h);
                s->more = true; /* one more exists past this page */
                goto out;
            }
            if (hit)
                s->hits[s->n++] = h;
            s->next = ids[i];
        }
        if (!end) {
            after = last;
            have_after = true;
        }
    }
out:
    cf_acl_memo_free(m);
}

static void hits_clear(struct search *s)
{
    for (size_t i = 0; i < s->n; i++)
        hit_clear(&s->hits[i]);
    free(s->hits);
    s->hits = NULL;
    s->n = 0;
}

static void search_reply(struct cf_req *r, struct cf_async *a)
{
    struct search *s = (struct search *)a;
    if (a->st != CF_OK) {
        cf_respond_status(r, a->st, a->st == CF_EUNAVAIL ? "search is not available right now" : NULL);
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < s->n; i++) {
        json_t *o = cf_node_json(&s->hits[i].node, s->hits[i].level);
        json_object_set_new(o, "path", json_string(s->hits[i].path));
        json_array_append_new(items, o);
    }
    json_t *cur = json_null();
    if (s->more) {
        char hex[CF_ID_HEX_LEN + 1];
        cf_id_hex(&s->next, hex);
        cur = json_string(hex);
    }
    cf_respond_json(r, 200, json_pack("{s:o, s:o}", "items", items, "next_cursor", cur));
}

static void search_free(struct cf_async *a)
{
    struct search *s = (struct search *)a;
    hits_clear(s);
    cf_search_query_clear(&s->q);
    free(s->groups);
    free(s);
}

void cf_h_search(struct cf_req *r)
{
    h2o_iovec_t v;
    bool bad = false;
    uint64_t limit = LIMIT_DEFAULT;
    struct cf_id after;
    bool have_after = false;
    const char *why = NULL;
    struct cf_search_query q;

    if (!cf_query(r, "q", &v, &bad) || bad) {
        cf_respond_status(r, CF_EINVAL, bad ? "malformed query string" : "q is required");
        return;
    }
    if (cf_search_query_parse(v.base, v.len, &q, &why) != CF_OK) {
        cf_respond_status(r, CF_EINVAL, why);
        return;
    }
    if (cf_query(r, "limit", &v, &bad) &&
        (cf_parse_u64(v.base, v.len, LIMIT_MAX, &limit) != CF_OK || limit == 0))
        why = "limit must be between 1 and 100";
    if (why == NULL && !bad && cf_query(r, "cursor", &v, &bad)) {
        if (cf_id_parse(v.base, v.len, &after) != CF_OK)
            why = "invalid cursor";
        have_after = true;
    }
    if (why != NULL || bad) {
        cf_search_query_clear(&q);
        cf_respond_status(r, CF_EINVAL, why != NULL ? why : "malformed query string");
        return;
    }
    struct search *s = cf_xcalloc(1, sizeof *s);
    s->a.run = search_run;
    s->a.reply = search_reply;
    s->a.free = search_free;
    s->who = cf_actor_of(r);
    s->groups = cf_xcalloc(r->who.ngroups + 1, sizeof *s->groups);
    memcpy(s->groups, r->who.groups, r->who.ngroups * sizeof *s->groups);
    s->who.groups = s->groups;
    s->q = q;
    s->after = after;
    s->have_after = have_after;
    s->limit = (size_t)limit;
    cf_async_start(r, &s->a);
}
