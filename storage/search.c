/*
 * search.c: the in-memory name index (search.h; docs/DESIGN.md "Search").
 *
 * Layout: per tenant, an array of entry pointers sorted by node id (binary search for a lookup, a
 * cursor or a parent; memmove on insert and removal: about 8 bytes × n/2 moved, tens of microseconds
 * at 100 000 names, paid by the writer that changes the namespace). An entry is one allocation: id,
 * parent, flags and the normalised name, NUL-terminated. Space roots (no name) are not indexed; the
 * parent walk of a path query stops at the first id it does not find. Beside the array, a flat copy
 * of every name in the same order (NUL-separated) with their offsets: the substring scan is one
 * memmem over it (0.6 ms for 100 000 names instead of 3 ms of pointer chasing), rebuilt by the first
 * search after any change (a copy, about 1 ms per 100 000 names).
 *
 * Invariants: an entry exists for every non-root node record of an indexed tenant, holding what the
 * last write of that record put (the journal's single writer applies batches in engine order, so
 * updates arrive in the order they were written); bytes counts every entry and the arrays.
 * Everything is under one rwlock that prefers writers (a stream of searches cannot starve the write
 * path); readers hold it for one bounded candidate step. Cluster mode: other nodes' writes arrive as
 * notes from the change feed (search_follow, during cf_store_catch_up; keys only, no values), which
 * the next search applies by reading the named records again, or a rebuild when the feed was lost
 * (follow_drain; docs/CLUSTER.md "What else follows the feed").
 *
 * Sizes: an entry is 40 bytes plus the name (and malloc's overhead, not counted), plus 8 bytes in its
 * array (counted by capacity), plus the name again and 4 bytes in the flat copy: about 115 bytes for
 * a 28-byte name, 11 MB per 100 000 names.
 */
#include "search.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "store_internal.h"

#define FLAG_TRASHED 1u
#define FLAG_FOLDER 2u
#define MAX_DEPTH 1024 /* the parent walk of a path query (a damaged chain cannot loop) */

struct entry {
    struct cf_id id;
    struct cf_id parent;
    uint8_t flags;
    uint32_t len;  /* bytes of name */
    char name[];   /* normalised, NUL-terminated */
};

struct tindex {
    struct cf_id tenant;
    struct entry **v; /* sorted by id */
    size_t n, cap;
    /* The names of v[0..n) in that order, each followed by a NUL, in one buffer, and where each one
     * starts (off[n]: the end): the substring scan runs memmem over it instead of visiting n
     * allocations. Any change of the entries clears flat_ok; the next search rebuilds it. */
    char *flat;
    uint32_t *off;
    size_t flat_len;   /* bytes of flat */
    size_t flat_bytes; /* flat and off, as counted in bytes */
    bool flat_ok;
};

/* One operation of a written batch or of the change feed, as the index applies it. */
struct pending {
    enum cf_batch_op op;
    struct cf_id tenant, id;
    struct entry *e;          /* local puts: the new entry (NULL: a root, or a feed put: read it) */
    uint8_t *lo, *hi;         /* range deletions: the bounds (malloc'ed) */
    size_t lolen, hilen;
    unsigned ks;
};

struct cf_search {
    pthread_rwlock_t lock;
    struct tindex *t;
    size_t nt, cap;
    size_t bytes;     /* entries and arrays */
    bool broken;      /* outgrew CF_SEARCH_MAX_BYTES or met a batch it could not read: searches answer
                         CF_EUNAVAIL until the next start */
    /* Other nodes' writes (cluster mode): what the change feed reported (search_follow, called by
     * cf_store_catch_up), applied by the next search (follow_drain). Under flock, never under the
     * index lock: a catch-up (every request's first step) must not wait for a search or a rebuild. */
    pthread_mutex_t flock;
    struct pending *fops; /* in feed order; puts and deletes carry no entry (the feed has no values) */
    size_t nfops, capfops;
    bool rebuild;         /* the feed was lost (gap, first catch-up, error): rebuild from the store */
    atomic_bool followed; /* fops or rebuild pending: the searches' check without a lock */
};

/* ---- normalisation -------------------------------------------------------------------------- */

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF, no NUL. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* Pure ASCII without upper-case letters is its own NFKC_Casefold: the common case skips ICU. */
static bool ascii_folded(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || (c >= 'A' && c <= 'Z'))
            return false;
    }
    return true;
}

char *cf_search_fold(const char *s, size_t n, size_t *out_len)
{
    if (!utf8_valid((const uint8_t *)s, n))
        return NULL;
    if (ascii_folded(s, n)) {
        *out_len = n;
        return cf_xstrndup(s, n);
    }
    UErrorCode err = U_ZERO_ERROR;
    const UNormalizer2 *nfkc = unorm2_getNFKCCasefoldInstance(&err);
    if (U_FAILURE(err) || n > INT32_MAX / 4)
        return NULL;
    int32_t ulen = 0;
    UChar *u = cf_xmalloc((n + 1) * sizeof *u);
    u_strFromUTF8(u, (int32_t)n + 1, &ulen, s, (int32_t)n, &err);
    char *out = NULL;
    UChar *f = NULL;
    if (U_FAILURE(err))
        goto done;
    /* NFKC_Casefold may expand (ligatures, some compatibility characters): ask for the length. */
    int32_t cap = ulen + 16, flen;
    f = cf_xmalloc((size_t)cap * sizeof *f);
    flen = unorm2_normalize(nfkc, u, ulen, f, cap, &err);
    if (err == U_BUFFER_OVERFLOW_ERROR) {
        err = U_ZERO_ERROR;
        cap = flen + 1;
        f = cf_xrealloc(f, (size_t)cap * sizeof *f);
        flen = unorm2_normalize(nfkc, u, ulen, f, cap, &err);
    }
    if (U_FAILURE(err))
        goto done;
    int32_t blen = 0;
    u_strToUTF8(NULL, 0, &blen, f, flen, &err);
    if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err))
        goto done;
    err = U_ZERO_ERROR;
    out = cf_xmalloc((size_t)blen + 1);
    u_strToUTF8(out, blen + 1, &blen, f, flen, &err);
    if (U_FAILURE(err)) {
        free(out);
        out = NULL;
        goto done;
    }
    out[blen] = '\0';
    *out_len = (size_t)blen;
done:
    free(u);
    free(f);
    return out;
}

/* ---- queries -------------------------------------------------------------------------------- */

void cf_search_query_clear(struct cf_search_query *q)
{
    free(q->text);
    memset(q, 0, sizeof *q);
}

enum cf_status cf_search_query_parse(const char *s, size_t n, struct cf_search_query *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (n == 0 || n > CF_SEARCH_QUERY_MAX) {
        *why = "q must be 1 to 200 bytes";
        return CF_EINVAL;
    }
    size_t len;
    char *t = cf_search_fold(s, n, &len);
    if (t == NULL) {
        *why = "q must be valid UTF-8";
        return CF_EINVAL;
    }
    bool any = false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && t[i] != '/') {
            any = any || t[i] != ' ';
            continue;
        }
        if (out->nseg == CF_SEARCH_SEGMENTS_MAX) {
            free(t);
            *why = "q has too many '/'";
            return CF_EINVAL;
        }
        out->off[out->nseg] = start;
        out->len[out->nseg] = i - start;
        out->nseg++;
        start = i + 1;
    }
    if (!any) {
        free(t);
        memset(out, 0, sizeof *out);
        *why = "q must contain more than slashes and spaces";
        return CF_EINVAL;
    }
    out->text = t;
    return CF_OK;
}

/* Whether needle occurs in hay. Names are short: a memchr for the first byte and a memcmp beat
 * memmem's set-up on every one of the index's entries. */
static bool contains(const char *hay, size_t hn, const char *needle, size_t nn)
{
    if (nn == 0)
        return true;
    if (nn > hn)
        return false;
    const char *p = hay, *end = hay + (hn - nn) + 1;
    while ((p = memchr(p, needle[0], (size_t)(end - p))) != NULL) {
        if (memcmp(p + 1, needle + 1, nn - 1) == 0)
            return true;
        p++;
    }
    return false;
}

/* The path rule over any ancestor source: get(ctx, i) the i-th ancestor (nearest first) or NULL. */
static bool match_with(const struct cf_search_query *q, const char *name, size_t nlen,
                       const char *(*get)(void *ctx, size_t i, size_t *len), void *ctx)
{
    size_t k = q->nseg - 1;
    if (!contains(name, nlen, q->text + q->off[k], q->len[k]))
        return false;
    /* Greedy from the nearest ancestor: the earliest match of each segment upwards leaves the most
     * room above for the ones before it, so it finds an ordered match whenever there is one. */
    size_t a = 0;
    for (size_t j = k; j-- > 0;) {
        if (q->len[j] == 0)
            continue;
        for (;;) {
            size_t al;
            const char *an = get(ctx, a, &al);
            if (an == NULL)
                return false;
            a++;
            if (contains(an, al, q->text + q->off[j], q->len[j]))
                break;
        }
    }
    return true;
}

struct arr_ctx {
    const char *const *anc;
    size_t nanc;
};

static const char *arr_get(void *ctx, size_t i, size_t *len)
{
    struct arr_ctx *c = ctx;
    if (i >= c->nanc)
        return NULL;
    *len = strlen(c->anc[i]);
    return c->anc[i];
}

bool cf_search_match(const struct cf_search_query *q, const char *name, const char *const *anc, size_t nanc)
{
    struct arr_ctx c = {anc, nanc};
    return match_with(q, name, strlen(name), arr_get, &c);
}

/* ---- the index ------------------------------------------------------------------------------ */

static int id_cmp(const struct cf_id *a, const struct cf_id *b)
{
    return memcmp(a->b, b->b, CF_ID_LEN);
}

/* The position of the first entry whose id is ≥ id (n if none). */
static size_t lower_bound(const struct tindex *t, const struct cf_id *id)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (id_cmp(&t->v[mid]->id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct entry *find_entry(const struct tindex *t, const struct cf_id *id)
{
    size_t i = lower_bound(t, id);
    return i < t->n && cf_id_equal(&t->v[i]->id, id) ? t->v[i] : NULL;
}

/* What one entry costs (its allocation; the arrays are counted by their capacity). */
static size_t entry_bytes(const struct entry *e)
{
    return sizeof *e + e->len + 1;
}

static struct tindex *tenant_find(struct cf_search *x, const struct cf_id *tenant, bool create)
{
    for (size_t i = 0; i < x->nt; i++)
        if (cf_id_equal(&x->t[i].tenant, tenant))
            return &x->t[i];
    if (!create)
        return NULL;
    if (x->nt == x->cap) {
        x->cap = x->cap == 0 ? 4 : x->cap * 2;
        x->t = cf_xrealloc(x->t, x->cap * sizeof *x->t);
    }
    struct tindex *t = &x->t[x->nt++];
    memset(t, 0, sizeof *t);
    t->tenant = *tenant;
    return t;
}

static void entry_free(struct entry *e)
{
    if (e != NULL)
        cf_free_secret(e, sizeof *e + e->len + 1);
}

static void flat_free(struct cf_search *x, struct tindex *t)
{
    x->bytes -= t->flat_bytes;
    cf_free_secret(t->flat, t->flat_len);
    free(t->off);
    t->flat = NULL;
    t->off = NULL;
    t->flat_len = t->flat_bytes = 0;
    t->flat_ok = false;
}

/* Rebuilds t's flat buffer from its entries (write lock held). */
static void flat_build(struct cf_search *x, struct tindex *t)
{
    flat_free(x, t);
    size_t len = 0;
    for (size_t i = 0; i < t->n; i++)
        len += t->v[i]->len + 1;
    t->flat = cf_xmalloc(len + 1);
    t->off = cf_xmalloc((t->n + 1) * sizeof *t->off);
    size_t at = 0;
    for (size_t i = 0; i < t->n; i++) {
        t->off[i] = (uint32_t)at; /* < CF_SEARCH_MAX_BYTES < 4 GiB */
        memcpy(t->flat + at, t->v[i]->name, t->v[i]->len + 1);
        at += t->v[i]->len + 1;
    }
    t->off[t->n] = (uint32_t)at;
    t->flat[at] = '\0';
    t->flat_len = len + 1;
    t->flat_bytes = t->flat_len + (t->n + 1) * sizeof *t->off;
    x->bytes += t->flat_bytes;
    t->flat_ok = true;
}

static void tenant_clear(struct cf_search *x, struct tindex *t)
{
    for (size_t i = 0; i < t->n; i++) {
        x->bytes -= entry_bytes(t->v[i]);
        entry_free(t->v[i]);
    }
    x->bytes -= t->cap * sizeof *t->v;
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
    flat_free(x, t);
}

static void tenant_drop(struct cf_search *x, const struct cf_id *tenant)
{
    for (size_t i = 0; i < x->nt; i++) {
        if (!cf_id_equal(&x->t[i].tenant, tenant))
            continue;
        tenant_clear(x, &x->t[i]);
        x->t[i] = x->t[--x->nt];
        return;
    }
}

static void index_clear(struct cf_search *x)
{
    for (size_t i = 0; i < x->nt; i++)
        tenant_clear(x, &x->t[i]);
    free(x->t);
    x->t = NULL;
    x->nt = x->cap = 0;
}

/* Marks the index unusable (and frees it): searches answer CF_EUNAVAIL until the next start. */
static void index_break(struct cf_search *x, const char *why)
{
    if (!x->broken)
        cf_storage_log(CF_LOG_ERROR, "storage: the search index is switched off until the next start: %s", why);
    x->broken = true;
    index_clear(x);
}

static void remove_entry(struct cf_search *x, const struct cf_id *tenant, const struct cf_id *id)
{
    struct tindex *t = tenant_find(x, tenant, false);
    if (t == NULL)
        return;
    size_t i = lower_bound(t, id);
    if (i == t->n || !cf_id_equal(&t->v[i]->id, id))
        return;
    x->bytes -= entry_bytes(t->v[i]);
    entry_free(t->v[i]);
    memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof *t->v);
    t->n--;
    t->flat_ok = false;
}

/* Takes e (replacing any entry of the same id). sorted_append: the caller adds in increasing id
 * order (the build), so the position is the end. */
static void put_entry(struct cf_search *x, const struct cf_id *tenant, struct entry *e, bool sorted_append)
{
    if (x->broken) {
        entry_free(e);
        return;
    }
    struct tindex *t = tenant_find(x, tenant, true);
    t->flat_ok = false;
    size_t i = sorted_append ? t->n : lower_bound(t, &e->id);
    if (i < t->n && cf_id_equal(&t->v[i]->id, &e->id)) {
        x->bytes -= entry_bytes(t->v[i]);
        entry_free(t->v[i]);
        t->v[i] = e;
        x->bytes += entry_bytes(e);
    } else {
        if (t->n == t->cap) {
            size_t ncap = t->cap == 0 ? 64 : t->cap * 2;
            x->bytes += (ncap - t->cap) * sizeof *t->v;
            t->cap = ncap;
            t->v = cf_xrealloc(t->v, t->cap * sizeof *t->v);
        }
        memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof *t->v);
        t->v[i] = e;
        t->n++;
        x->bytes += entry_bytes(e);
    }
    if (x->bytes > CF_SEARCH_MAX_BYTES)
        index_break(x, "it outgrew its memory bound (CF_SEARCH_MAX_BYTES)");
}

/* A node record (sealed value of key T ‖ id) as an entry; NULL for a space root or a record that does
 * not open (the reader of that record reports it). */
static struct entry *entry_of(struct cf_store *s, const uint8_t key[32], const uint8_t *val, size_t vlen)
{
    const struct cf_tkeys *tk;
    struct cf_id tenant;
    memcpy(tenant.b, key, CF_ID_LEN);
    if (cf_tkeys_get(s, &tenant, &tk) != CF_OK)
        return NULL;
    uint8_t *pt;
    size_t ptlen;
    if (cf_unseal(CF_CF_NODES, &tk->record, key, 32, val, vlen, &pt, &ptlen) != CF_OK)
        return NULL;
    struct cf_node n = {0};
    n.tenant = tenant;
    memcpy(n.id.b, key + CF_ID_LEN, CF_ID_LEN);
    enum cf_status st = cf_node_decode(pt, ptlen, &n);
    cf_free_secret(pt, ptlen);
    if (st != CF_OK || cf_id_is_zero(&n.parent)) {
        cf_node_clear(&n);
        return NULL;
    }
    size_t flen;
    char *folded = cf_search_fold(n.name, strlen(n.name), &flen);
    if (folded == NULL) {
        folded = cf_xstrdup(""); /* names are validated UTF-8: never, but an entry keeps the parent walk whole */
        flen = 0;
    }
    struct entry *e = cf_xmalloc(sizeof *e + flen + 1);
    e->id = n.id;
    e->parent = n.parent;
    e->flags = (uint8_t)((n.trashed_at != 0 ? FLAG_TRASHED : 0) | (n.type == CF_NODE_FOLDER ? FLAG_FOLDER : 0));
    e->len = (uint32_t)flen;
    memcpy(e->name, folded, flen + 1);
    cf_free_secret(folded, flen + 1);
    cf_node_clear(&n);
    return e;
}

/* ---- keeping it current ----------------------------------------------------------------------- */

struct apply_ctx {
    struct cf_store *s;
    /* The batch's node puts, decoded before the lock is taken (unsealing reads tenant keys). */
    struct pending *p;
    size_t n, cap;
    bool feed; /* from the change feed: no values, nothing decoded */
};

static int collect_op(void *ctx, enum cf_batch_op op, unsigned ks, const uint8_t *k, size_t kl, const uint8_t *v,
                      size_t vl)
{
    struct apply_ctx *c = ctx;
    bool tenant_key = ks == CF_CF_KEYS && op == CF_BATCH_DELETE && kl == 1 + CF_ID_LEN && k[0] == 't';
    if (ks != CF_CF_NODES && !tenant_key)
        return 0;
    if (c->n == c->cap) {
        c->cap = c->cap == 0 ? 8 : c->cap * 2;
        c->p = cf_xrealloc(c->p, c->cap * sizeof *c->p);
    }
    struct pending *p = &c->p[c->n];
    memset(p, 0, sizeof *p);
    p->op = op;
    p->ks = ks;
    if (tenant_key) {
        memcpy(p->tenant.b, k + 1, CF_ID_LEN); /* a tenant deleted: its names go */
    } else if (op == CF_BATCH_DELETE_RANGE) {
        p->lo = cf_xmalloc(kl + 1);
        p->hi = cf_xmalloc(vl + 1);
        memcpy(p->lo, k, kl);
        memcpy(p->hi, v, vl);
        p->lolen = kl;
        p->hilen = vl;
    } else {
        if (kl != 32)
            return 1; /* not a node key: damage the index cannot follow */
        memcpy(p->tenant.b, k, CF_ID_LEN);
        memcpy(p->id.b, k + CF_ID_LEN, CF_ID_LEN);
        if (op == CF_BATCH_PUT && !c->feed)
            p->e = entry_of(c->s, k, v, vl);
    }
    c->n++;
    return 0;
}

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int r = memcmp(a, b, al < bl ? al : bl);
    return r != 0 ? r : (al > bl) - (al < bl);
}

/* Every entry whose key T ‖ id lies in [lo, hi). */
static void remove_range(struct cf_search *x, const struct pending *p)
{
    for (size_t i = 0; i < x->nt; i++) {
        struct tindex *t = &x->t[i];
        size_t w = 0;
        for (size_t r = 0; r < t->n; r++) {
            uint8_t key[32];
            cf_key2(key, &t->tenant, &t->v[r]->id);
            if (key_cmp(key, 32, p->lo, p->lolen) >= 0 && key_cmp(key, 32, p->hi, p->hilen) < 0) {
                x->bytes -= entry_bytes(t->v[r]);
                entry_free(t->v[r]);
            } else {
                t->v[w++] = t->v[r];
            }
        }
        t->flat_ok = t->flat_ok && w == t->n;
        t->n = w;
    }
}

/* Applies one operation (write lock held; takes p->e). */
static void apply_one(struct cf_search *x, struct pending *p)
{
    if (x->broken) {
        entry_free(p->e);
        p->e = NULL;
        return;
    }
    if (p->ks == CF_CF_KEYS)
        tenant_drop(x, &p->tenant);
    else if (p->op == CF_BATCH_DELETE_RANGE)
        remove_range(x, p);
    else if (p->op == CF_BATCH_DELETE || p->e == NULL)
        remove_entry(x, &p->tenant, &p->id); /* a root put leaves nothing to index */
    else
        put_entry(x, &p->tenant, p->e, false);
    p->e = NULL;
}

static void pending_free(struct pending *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        entry_free(p[i].e);
        free(p[i].lo);
        free(p[i].hi);
    }
    free(p);
}

static void search_apply(struct cf_store *s, const struct cf_batch *b)
{
    struct cf_search *x = s->search;
    if (x == NULL)
        return;
    struct apply_ctx c = {.s = s};
    int r = cf_batch_each(b, collect_op, &c);
    if (c.n == 0 && r == 0)
        return;
    pthread_rwlock_wrlock(&x->lock);
    if (r != 0)
        index_break(x, "a write batch could not be read");
    for (size_t i = 0; i < c.n; i++)
        apply_one(x, &c.p[i]);
    pthread_rwlock_unlock(&x->lock);
    pending_free(c.p, c.n);
}

/* The entry the store now holds for node (NULL: none, or nothing to index). */
static enum cf_status read_entry(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                                 struct entry **out)
{
    uint8_t key[32];
    char *val = NULL;
    size_t vlen = 0;
    cf_key2(key, tenant, node);
    enum cf_status st = cf_db_get(s, CF_CF_NODES, key, sizeof key, &val, &vlen);
    if (st != CF_OK && st != CF_ENOTFOUND)
        return st;
    *out = st == CF_OK ? entry_of(s, key, (const uint8_t *)val, vlen) : NULL;
    cf_eng_free(val);
    return CF_OK;
}

enum cf_status cf_store_search_refresh(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node)
{
    struct cf_search *x = s->search;
    if (x == NULL)
        return CF_OK;
    struct entry *e;
    enum cf_status st = read_entry(s, tenant, node, &e);
    if (st != CF_OK)
        return st;
    pthread_rwlock_wrlock(&x->lock);
    if (e != NULL)
        put_entry(x, tenant, e, false);
    else
        remove_entry(x, tenant, node);
    pthread_rwlock_unlock(&x->lock);
    return CF_OK;
}

/* ---- following other nodes' writes (cluster mode) ---------------------------------------------- */

/* More feed operations than this waiting for a search: a rebuild is cheaper (one paged scan of the
 * node records instead of a point read per change). */
#define FOLLOW_MAX 16384

/* Every operation of the feed is forgotten: the next search rebuilds (flock held). */
static void follow_lost_locked(struct cf_search *x)
{
    pending_free(x->fops, x->nfops);
    x->fops = NULL;
    x->nfops = x->capfops = 0;
    x->rebuild = true;
    atomic_store(&x->followed, true);
}

/* Called by cf_store_catch_up (db.c) for each operation of another process's change: noted, nothing
 * read (every request waits for its catch-up). The node records a change put or deleted are read again
 * by the next search; a tenant's deletion and range deletions are applied as the write path does. */
static void search_follow(struct cf_store *s, enum cf_batch_op op, unsigned ks, const uint8_t *k, size_t kl,
                          const uint8_t *v, size_t vl)
{
    struct cf_search *x = s->search;
    bool tenant_key = ks == CF_CF_KEYS && op == CF_BATCH_DELETE && kl == 1 + CF_ID_LEN && k[0] == 't';
    if (x == NULL || (ks != CF_CF_NODES && !tenant_key))
        return;
    pthread_mutex_lock(&x->flock);
    if (!x->rebuild) {
        struct apply_ctx c = {.s = s, .p = x->fops, .n = x->nfops, .cap = x->capfops, .feed = true};
        if (x->nfops >= FOLLOW_MAX || collect_op(&c, op, ks, k, kl, v, vl) != 0) {
            x->fops = c.p;
            x->nfops = c.n;
            follow_lost_locked(x); /* too many, or not a node key: damage the index cannot follow */
        } else {
            x->fops = c.p;
            x->nfops = c.n;
            x->capfops = c.cap;
            atomic_store(&x->followed, true);
        }
    }
    pthread_mutex_unlock(&x->flock);
}

/* The feed could not be followed (db.c: the first catch-up, a gap, an error): rebuild at the next
 * search. */
static void search_lost(struct cf_store *s)
{
    struct cf_search *x = s->search;
    if (x == NULL)
        return;
    pthread_mutex_lock(&x->flock);
    follow_lost_locked(x);
    pthread_mutex_unlock(&x->flock);
}

static enum cf_status index_walk(struct cf_store *s, struct cf_search *x, uint64_t *entries);

static int pending_cmp(const void *a, const void *b)
{
    const struct pending *p = a, *q = b;
    int r = id_cmp(&p->tenant, &q->tenant);
    return r != 0 ? r : id_cmp(&p->id, &q->id);
}

/* Applies what the feed reported since the last search, under the index's write lock (so no write of
 * this process interleaves): deletions of tenants and ranges first, then each node record named,
 * once, read again from the store, so the index ends as the store now is whatever the order of the
 * changes. A rebuild instead if the feed was lost. CF_EUNAVAIL-like errors leave a rebuild pending
 * (and the search fails) rather than answer from a partial index. */
static enum cf_status follow_drain(struct cf_store *s, struct cf_search *x)
{
    if (!atomic_load(&x->followed))
        return CF_OK;
    pthread_rwlock_wrlock(&x->lock);
    pthread_mutex_lock(&x->flock);
    atomic_store(&x->followed, false);
    struct pending *p = x->fops;
    size_t n = x->nfops;
    bool rebuild = x->rebuild;
    x->fops = NULL;
    x->nfops = x->capfops = 0;
    x->rebuild = false;
    pthread_mutex_unlock(&x->flock);
    enum cf_status st = CF_OK;
    if (x->broken) {
        /* switched off until the next start: nothing to follow */
    } else if (rebuild) {
        index_clear(x);
        st = index_walk(s, x, NULL); /* a snapshot newer than every change noted so far */
    } else {
        size_t nodes = 0;
        for (size_t i = 0; i < n; i++) {
            if (p[i].ks == CF_CF_NODES && p[i].op != CF_BATCH_DELETE_RANGE)
                p[nodes++] = p[i]; /* compacted: puts and deletes carry no allocation */
            else
                apply_one(x, &p[i]);
            if (p[i].ks != CF_CF_NODES || p[i].op == CF_BATCH_DELETE_RANGE) {
                free(p[i].lo);
                free(p[i].hi);
            }
        }
        qsort(p, nodes, sizeof *p, pending_cmp);
        for (size_t i = 0; i < nodes && st == CF_OK; i++) {
            if (i > 0 && pending_cmp(&p[i - 1], &p[i]) == 0)
                continue;
            struct pending one = p[i];
            if ((st = read_entry(s, &one.tenant, &one.id, &one.e)) == CF_OK) {
                one.op = one.e != NULL ? CF_BATCH_PUT : CF_BATCH_DELETE;
                apply_one(x, &one);
            }
        }
        n = 0; /* every allocation freed above */
    }
    if (st != CF_OK) {
        index_clear(x);
        pthread_mutex_lock(&x->flock);
        follow_lost_locked(x);
        pthread_mutex_unlock(&x->flock);
    }
    pthread_rwlock_unlock(&x->lock);
    if (n > 0)
        pending_free(p, n);
    else
        free(p);
    return st != CF_OK ? CF_EUNAVAIL : CF_OK;
}

/* ---- build, stats, free ----------------------------------------------------------------------- */

static void search_free(struct cf_store *s);

/* Fills x (write lock held) from every node record of the store. */
static enum cf_status index_walk(struct cf_store *s, struct cf_search *x, uint64_t *entries)
{
    struct cf_eiter *it = cf_eiter_open(s->eng, CF_CF_NODES, NULL, 0, NULL, 0);
    cf_eiter_seek_to_first(it);
    uint64_t count = 0;
    for (; cf_eiter_valid(it); cf_eiter_next(it)) {
        size_t kl, vl;
        const char *k = cf_eiter_key(it, &kl);
        const char *v = cf_eiter_value(it, &vl);
        if (kl != 32)
            continue;
        struct entry *e = entry_of(s, (const uint8_t *)k, (const uint8_t *)v, vl);
        if (e == NULL)
            continue;
        struct cf_id tenant;
        memcpy(tenant.b, k, CF_ID_LEN);
        put_entry(x, &tenant, e, true); /* keys come in order: tenant, then id */
        count++;
    }
    char *err = NULL;
    enum cf_status st = cf_eiter_status(it, &err) == CF_ENG_OK ? CF_OK : cf_db_error("search index", err);
    cf_eiter_close(it);
    if (entries != NULL)
        *entries = count;
    return st;
}

enum cf_status cf_store_search_build(struct cf_store *s, uint64_t *entries)
{
    if (s->search != NULL)
        return CF_EEXIST;
    /* Cluster mode: take a position in the change feed before the walk, so that the walk's snapshot
     * is newer than it and every later change reaches search_follow (the first catch-up after an open
     * would otherwise find the index built and have to rebuild it). A failure leaves the first
     * catch-up to come, which marks the index for a rebuild. */
    (void)cf_store_catch_up(s);
    struct cf_search *x = cf_xcalloc(1, sizeof *x);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&x->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&x->flock, NULL);
    /* Installed first and held while walking: a write that lands meanwhile waits for the lock and is
     * applied after the walk, never overwritten by the walk's older view. */
    pthread_rwlock_wrlock(&x->lock);
    s->search = x;
    s->search_apply = search_apply;
    s->search_follow = search_follow;
    s->search_lost = search_lost;
    s->search_free = search_free;
    enum cf_status st = index_walk(s, x, entries);
    if (st != CF_OK)
        index_break(x, "the node records could not be read");
    pthread_rwlock_unlock(&x->lock);
    return st;
}

void cf_store_search_stats(struct cf_store *s, struct cf_search_stats *out)
{
    memset(out, 0, sizeof *out);
    struct cf_search *x = s->search;
    if (x == NULL)
        return;
    pthread_rwlock_rdlock(&x->lock);
    out->ready = !x->broken;
    out->tenants = x->nt;
    for (size_t i = 0; i < x->nt; i++)
        out->entries += x->t[i].n;
    out->bytes = x->bytes;
    pthread_rwlock_unlock(&x->lock);
}

static void search_free(struct cf_store *s)
{
    struct cf_search *x = s->search;
    if (x == NULL)
        return;
    index_clear(x);
    pending_free(x->fops, x->nfops);
    pthread_mutex_destroy(&x->flock);
    pthread_rwlock_destroy(&x->lock);
    free(x);
    s->search = NULL;
}

/* ---- candidates ------------------------------------------------------------------------------- */

struct walk_ctx {
    const struct tindex *t;
    const struct entry *at; /* the entry whose ancestors are listed */
    size_t depth;           /* ancestors handed out so far */
    const struct entry *cur;
};

/* The index's ancestors of ctx->at, nearest first (called with i = 0, 1, 2, … in order). */
static const char *walk_get(void *ctx, size_t i, size_t *len)
{
    struct walk_ctx *w = ctx;
    if (i != w->depth || w->depth >= MAX_DEPTH)
        return NULL;
    const struct entry *from = i == 0 ? w->at : w->cur;
    const struct entry *p = find_entry(w->t, &from->parent);
    if (p == NULL)
        return NULL;
    w->cur = p;
    w->depth++;
    *len = p->len;
    return p->name;
}

enum cf_status cf_search_candidates(struct cf_store *s, const struct cf_id *tenant, const struct cf_search_query *q,
                                    const struct cf_id *after, unsigned flags, size_t max_ids, size_t max_scan,
                                    struct cf_id *out, struct cf_id *parents, size_t *n, struct cf_id *last,
                                    bool *end)
{
    struct cf_search *x = s->search;
    *n = 0;
    *end = true;
    if (x == NULL)
        return CF_EUNAVAIL;
    enum cf_status fst = follow_drain(s, x); /* other nodes' writes first (cluster mode) */
    if (fst != CF_OK)
        return fst;
    pthread_rwlock_rdlock(&x->lock);
    const struct tindex *t;
    /* The flat buffer is rebuilt by the first search after a write, under the write lock (a few
     * milliseconds per 100 000 names); writes that keep coming make the scan use the entries. */
    for (int attempt = 0;; attempt++) {
        if (x->broken) {
            pthread_rwlock_unlock(&x->lock);
            return CF_EUNAVAIL;
        }
        t = tenant_find(x, tenant, false);
        if (t == NULL || t->flat_ok || attempt == 2)
            break;
        pthread_rwlock_unlock(&x->lock);
        pthread_rwlock_wrlock(&x->lock);
        struct tindex *w = tenant_find(x, tenant, false);
        if (w != NULL && !w->flat_ok && !x->broken) {
            flat_build(x, w);
            if (x->bytes > CF_SEARCH_MAX_BYTES)
                index_break(x, "it outgrew its memory bound (CF_SEARCH_MAX_BYTES)");
        }
        pthread_rwlock_unlock(&x->lock);
        pthread_rwlock_rdlock(&x->lock);
    }
    size_t i = 0, total = t != NULL ? t->n : 0;
    if (t != NULL && after != NULL) {
        i = lower_bound(t, after);
        if (i < total && cf_id_equal(&t->v[i]->id, after))
            i++;
    }
    size_t stop = total - i > max_scan ? i + max_scan : total; /* this step examines [i, stop) */
    const char *needle = q->text + q->off[q->nseg - 1];
    size_t nl = q->len[q->nseg - 1];
    bool flat = t != NULL && t->flat_ok && nl > 0;
    while (i < stop && *n < max_ids) {
        size_t j = i;
        if (flat) {
            /* The next entry whose name holds the last segment (a match cannot span the NULs). */
            const char *p = memmem(t->flat + t->off[i], t->off[stop] - t->off[i], needle, nl);
            if (p == NULL) {
                *last = t->v[stop - 1]->id;
                i = stop;
                break;
            }
            size_t at = (size_t)(p - t->flat), lo = i, hi = stop;
            while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;
                if (t->off[mid] <= at)
                    lo = mid;
                else
                    hi = mid;
            }
            j = lo;
        }
        const struct entry *e = t->v[j];
        *last = e->id;
        i = j + 1;
        if ((e->flags & FLAG_TRASHED) != 0 && (flags & CF_SEARCH_TRASHED) == 0)
            continue;
        struct walk_ctx w = {.t = t, .at = e};
        if (!match_with(q, e->name, e->len, walk_get, &w))
            continue;
        if (parents != NULL)
            parents[*n] = e->parent;
        out[(*n)++] = e->id;
    }
    *end = i >= total;
    pthread_rwlock_unlock(&x->lock);
    return CF_OK;
}
