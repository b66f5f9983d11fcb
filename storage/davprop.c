/*
 * davprop.c: WebDAV dead properties and lock records (davprop.h has the contract; docs/WEBDAV.md
 * "Dead properties and locks in the store" the design).
 *
 * Formats (column family "uploads", under tag bytes of their own, so that no column family is added:
 * the journal numbers them; every write goes through cf_db_write, so the journal covers them):
 *   prop   key  T ‖ 'd' ‖ node ‖ HMAC(index key, "prop\0" ‖ ns ‖ 0x00 ‖ local)   (65 bytes)
 *          val  sealed record (tenant record key): ns, local, value, updated_at
 *   lock   key  T ‖ 'l' ‖ node ‖ lock id                                         (49 bytes)
 *          val  sealed record: token, scope, depth, owner, creator, root href, created, timeout,
 *               expires_at
 *   token  key  T ‖ 'k' ‖ SHA-256(token)                                        (49 bytes)
 *          val  node ‖ lock id
 * The name's HMAC hides property names on disk; the token's hash keeps the token out of the keys.
 * Sizes: a handful of properties per node (Explorer sets four Win32 times), a few locks at a time.
 * Expired locks are ignored on read and dropped by the next LOCK on their node, a MOVE of it, or purge.
 */
#include <stdlib.h>
#include <string.h>

#include "davprop.h"
#include "store_internal.h"

enum { PTAG_NS = 1, PTAG_LOCAL = 2, PTAG_VALUE = 3, PTAG_UPDATED = 4 };
enum {
    LTAG_TOKEN = 1,
    LTAG_SHARED = 2,
    LTAG_INFINITY = 3,
    LTAG_OWNER = 4,
    LTAG_CREATOR = 5,
    LTAG_ROOT = 6,
    LTAG_CREATED = 7,
    LTAG_TIMEOUT = 8,
    LTAG_EXPIRES = 9,
};

#define PROP_KEY_LEN 65
#define LOCK_KEY_LEN 49
#define TOKEN_KEY_LEN 49

static void prefix_key(const struct cf_id *tenant, char tag, const struct cf_id *node, uint8_t out[33])
{
    memcpy(out, tenant->b, CF_ID_LEN);
    out[16] = (uint8_t)tag;
    memcpy(out + 17, node->b, CF_ID_LEN);
}

static void prop_key(const struct cf_tkeys *tk, const struct cf_id *node, const char *ns, const char *local,
                     uint8_t out[PROP_KEY_LEN])
{
    prefix_key(&tk->tenant, 'd', node, out);
    size_t nl = strlen(ns), ll = strlen(local);
    uint8_t *msg = cf_xmalloc(5 + nl + 1 + ll);
    memcpy(msg, "prop", 5); /* with its NUL */
    memcpy(msg + 5, ns, nl);
    msg[5 + nl] = 0;
    memcpy(msg + 6 + nl, local, ll);
    cf_hmac_sha256(&tk->index, msg, 6 + nl + ll, out + 33);
    free(msg);
}

static void lock_key(const struct cf_id *tenant, const struct cf_id *node, const struct cf_id *id,
                     uint8_t out[LOCK_KEY_LEN])
{
    prefix_key(tenant, 'l', node, out);
    memcpy(out + 33, id->b, CF_ID_LEN);
}

static void token_key(const struct cf_id *tenant, const char *token, size_t len, uint8_t out[TOKEN_KEY_LEN])
{
    memcpy(out, tenant->b, CF_ID_LEN);
    out[16] = 'k';
    cf_sha256(token, len, out + 17);
}

void cf_davprops_free(struct cf_davprop *p, size_t n)
{
    for (size_t i = 0; p != NULL && i < n; i++) {
        free(p[i].ns);
        free(p[i].local);
        free(p[i].value);
    }
    free(p);
}

static enum cf_status prop_decode(const uint8_t *pt, size_t n, struct cf_davprop *out)
{
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    memset(out, 0, sizeof *out);
    enum cf_status st = cf_rec_r_init(&r, pt, n);
    while (st == CF_OK && (st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        if (tag == PTAG_NS)
            st = cf_rec_str(v, vl, &out->ns);
        else if (tag == PTAG_LOCAL)
            st = cf_rec_str(v, vl, &out->local);
        else if (tag == PTAG_VALUE && (st = cf_rec_str(v, vl, &out->value)) == CF_OK)
            out->value_len = vl;
    }
    if (st == CF_ENOTFOUND)
        st = out->ns != NULL && out->local != NULL && out->value != NULL ? CF_OK : CF_ECORRUPT;
    if (st != CF_OK) {
        free(out->ns);
        free(out->local);
        free(out->value);
        memset(out, 0, sizeof *out);
    }
    return st;
}

/* Every record under T ‖ tag ‖ node (node NULL: under T ‖ tag, the whole tenant's), opened, handed to
 * fn (which may keep pt: it owns it). */
typedef enum cf_status (*visit_fn)(void *ctx, const uint8_t *key, size_t klen, uint8_t *pt, size_t ptlen);

static enum cf_status visit(struct cf_store *s, const struct cf_tkeys *tk, char tag, const struct cf_id *node,
                            visit_fn fn, void *ctx)
{
    uint8_t prefix[33];
    struct cf_iter it;
    enum cf_status st = CF_OK;
    struct cf_id zero = {0};
    prefix_key(&tk->tenant, tag, node != NULL ? node : &zero, prefix);
    cf_iter_open(s, CF_CF_UPLOADS, prefix, node != NULL ? sizeof prefix : CF_ID_LEN + 1, &it);
    for (; st == CF_OK && cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl;
        const char *k = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        uint8_t *pt;
        size_t ptlen;
        if ((st = cf_unseal(CF_CF_UPLOADS, &tk->record, k, kl, (const uint8_t *)v, vl, &pt, &ptlen)) == CF_OK)
            st = fn(ctx, (const uint8_t *)k, kl, pt, ptlen);
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    return st;
}

struct prop_list {
    struct cf_davprop *p;
    size_t n, cap;
};

static enum cf_status prop_collect(void *ctx, const uint8_t *key, size_t klen, uint8_t *pt, size_t ptlen)
{
    struct prop_list *l = ctx;
    (void)key;
    (void)klen;
    if (l->n == l->cap) {
        l->cap = l->cap == 0 ? 8 : l->cap * 2;
        l->p = cf_xrealloc(l->p, l->cap * sizeof *l->p);
    }
    enum cf_status st = prop_decode(pt, ptlen, &l->p[l->n]);
    cf_free_secret(pt, ptlen);
    if (st == CF_OK)
        l->n++;
    return st;
}

static enum cf_status props_load(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *node,
                                 struct prop_list *l)
{
    memset(l, 0, sizeof *l);
    enum cf_status st = visit(s, tk, 'd', node, prop_collect, l);
    if (st != CF_OK) {
        cf_davprops_free(l->p, l->n);
        memset(l, 0, sizeof *l);
    }
    return st;
}

enum cf_status cf_davprop_list(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                               struct cf_davprop **out, size_t *n)
{
    const struct cf_tkeys *tk;
    struct prop_list l;
    *out = NULL;
    *n = 0;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    enum cf_status st = props_load(s, tk, node, &l);
    if (st == CF_OK) {
        *out = l.p;
        *n = l.n;
    }
    return st;
}

static void prop_put(struct cf_batch *b, struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *node,
                     const char *ns, const char *local, const char *value, size_t vlen, uint64_t now)
{
    uint8_t key[PROP_KEY_LEN];
    struct cf_rec_w w;
    cf_rec_w_init(&w);
    cf_rec_put_bytes(&w, PTAG_NS, ns, strlen(ns));
    cf_rec_put_bytes(&w, PTAG_LOCAL, local, strlen(local));
    cf_rec_put_bytes(&w, PTAG_VALUE, value, vlen);
    cf_rec_put_u64(&w, PTAG_UPDATED, now);
    prop_key(tk, node, ns, local, key);
    cf_seal_batch_put(b, s, CF_CF_UPLOADS, &tk->record, key, sizeof key, &w, NULL, 0);
    cf_rec_w_free(&w);
}

/* The state a PROPPATCH leads to, by name, to check the limits before anything is written. */
struct prop_state {
    const char *ns, *local; /* borrowed */
    size_t len;             /* value bytes */
    bool alive;
};

static size_t state_find(const struct prop_state *v, size_t n, const char *ns, const char *local)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].ns, ns) == 0 && strcmp(v[i].local, local) == 0)
            return i;
    return n;
}

enum cf_status cf_davprop_apply(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                                const struct cf_davprop_op *ops, size_t n)
{
    const struct cf_tkeys *tk;
    struct prop_list l;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    /* ns_lock: two PROPPATCHes of one node must not both pass the limit check. */
    cf_ns_lock(s);
    enum cf_status st = props_load(s, tk, node, &l);
    if (st != CF_OK) {
        cf_ns_unlock(s);
        return st;
    }
    struct prop_state *v = cf_xcalloc(l.n + n + 1, sizeof *v);
    size_t nv = 0, count = 0, bytes = 0;
    for (size_t i = 0; i < l.n; i++)
        v[nv++] = (struct prop_state){l.p[i].ns, l.p[i].local, l.p[i].value_len, true};
    struct cf_batch *b = cf_batch_new(s->eng);
    uint64_t now = cf_now_ms();
    for (size_t i = 0; i < n; i++) { /* RFC 4918 §9.2: in document order; the last op on a name wins */
        size_t at = state_find(v, nv, ops[i].ns, ops[i].local);
        if (at == nv)
            v[nv++] = (struct prop_state){ops[i].ns, ops[i].local, 0, false};
        v[at].alive = !ops[i].remove;
        v[at].len = ops[i].remove ? 0 : ops[i].value_len;
        if (ops[i].remove) {
            uint8_t key[PROP_KEY_LEN];
            prop_key(tk, node, ops[i].ns, ops[i].local, key);
            cf_batch_delete(b, CF_CF_UPLOADS, key, sizeof key);
        } else {
            prop_put(b, s, tk, node, ops[i].ns, ops[i].local, ops[i].value, ops[i].value_len, now);
        }
    }
    for (size_t i = 0; i < nv; i++)
        if (v[i].alive)
            count++, bytes += v[i].len;
    if (count > CF_DAVPROP_MAX_PROPS || bytes > CF_DAVPROP_MAX_BYTES)
        st = CF_ETOOBIG;
    else
        st = cf_db_write(s, b, true);
    cf_ns_unlock(s);
    cf_batch_free(b);
    free(v);
    cf_davprops_free(l.p, l.n);
    return st;
}

enum cf_status cf_davprop_copy(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *src,
                               const struct cf_id *dst)
{
    const struct cf_tkeys *tk;
    struct prop_list from, to;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    cf_ns_lock(s);
    enum cf_status st = props_load(s, tk, src, &from);
    if (st == CF_OK && (st = props_load(s, tk, dst, &to)) != CF_OK)
        cf_davprops_free(from.p, from.n);
    if (st != CF_OK) {
        cf_ns_unlock(s);
        return st;
    }
    struct cf_batch *b = cf_batch_new(s->eng);
    uint64_t now = cf_now_ms();
    for (size_t i = 0; i < to.n; i++) {
        uint8_t key[PROP_KEY_LEN];
        prop_key(tk, dst, to.p[i].ns, to.p[i].local, key);
        cf_batch_delete(b, CF_CF_UPLOADS, key, sizeof key);
    }
    for (size_t i = 0; i < from.n; i++)
        prop_put(b, s, tk, dst, from.p[i].ns, from.p[i].local, from.p[i].value, from.p[i].value_len, now);
    st = from.n + to.n == 0 ? CF_OK : cf_db_write(s, b, true);
    cf_ns_unlock(s);
    cf_batch_free(b);
    cf_davprops_free(from.p, from.n);
    cf_davprops_free(to.p, to.n);
    return st;
}

/* ---- locks ------------------------------------------------------------------------------------ */

void cf_davlock_clear(struct cf_davlock *l)
{
    if (l == NULL)
        return;
    free(l->owner);
    free(l->root);
    memset(l, 0, sizeof *l);
}

void cf_davlocks_free(struct cf_davlock *l, size_t n)
{
    for (size_t i = 0; l != NULL && i < n; i++)
        cf_davlock_clear(&l[i]);
    free(l);
}

static enum cf_status lock_decode(const uint8_t *key, const uint8_t *pt, size_t n, struct cf_davlock *out)
{
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    uint64_t u;
    bool have_token = false, have_exp = false;
    memset(out, 0, sizeof *out);
    memcpy(out->node.b, key + 17, CF_ID_LEN);
    memcpy(out->id.b, key + 33, CF_ID_LEN);
    enum cf_status st = cf_rec_r_init(&r, pt, n);
    while (st == CF_OK && (st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        switch (tag) {
        case LTAG_TOKEN:
            if (vl == 0 || vl > CF_DAVLOCK_TOKEN_MAX || memchr(v, 0, vl) != NULL) {
                st = CF_ECORRUPT;
                break;
            }
            memcpy(out->token, v, vl);
            out->token[vl] = 0;
            have_token = true;
            break;
        case LTAG_SHARED:
        case LTAG_INFINITY:
            if ((st = cf_rec_u64(v, vl, &u)) == CF_OK) {
                if (tag == LTAG_SHARED)
                    out->shared = u != 0;
                else
                    out->infinity = u != 0;
            }
            break;
        case LTAG_OWNER:
            if ((st = cf_rec_str(v, vl, &out->owner)) == CF_OK)
                out->owner_len = vl;
            break;
        case LTAG_CREATOR:
            st = cf_rec_id(v, vl, &out->creator);
            break;
        case LTAG_ROOT:
            st = cf_rec_str(v, vl, &out->root);
            break;
        case LTAG_CREATED:
            st = cf_rec_u64(v, vl, &out->created_at);
            break;
        case LTAG_TIMEOUT:
            st = cf_rec_u64(v, vl, &out->timeout_s);
            break;
        case LTAG_EXPIRES:
            if ((st = cf_rec_u64(v, vl, &out->expires_at)) == CF_OK)
                have_exp = true;
            break;
        default:
            break;
        }
    }
    if (st == CF_ENOTFOUND)
        st = have_token && have_exp && out->root != NULL ? CF_OK : CF_ECORRUPT;
    if (st != CF_OK)
        cf_davlock_clear(out);
    return st;
}

struct lock_list {
    struct cf_davlock *l;
    size_t n, cap;
    uint64_t now;     /* live ones only; 0: all */
    size_t expired;   /* how many were left out */
};

static enum cf_status lock_collect(void *ctx, const uint8_t *key, size_t klen, uint8_t *pt, size_t ptlen)
{
    struct lock_list *ll = ctx;
    if (klen != LOCK_KEY_LEN) {
        cf_free_secret(pt, ptlen);
        return CF_ECORRUPT;
    }
    if (ll->n == ll->cap) {
        ll->cap = ll->cap == 0 ? 4 : ll->cap * 2;
        ll->l = cf_xrealloc(ll->l, ll->cap * sizeof *ll->l);
    }
    enum cf_status st = lock_decode(key, pt, ptlen, &ll->l[ll->n]);
    cf_free_secret(pt, ptlen);
    if (st != CF_OK)
        return st;
    if (ll->now != 0 && ll->l[ll->n].expires_at <= ll->now) {
        cf_davlock_clear(&ll->l[ll->n]);
        ll->expired++;
        return CF_OK;
    }
    ll->n++;
    return CF_OK;
}

static enum cf_status locks_load(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *node,
                                 uint64_t now, struct lock_list *ll)
{
    memset(ll, 0, sizeof *ll);
    ll->now = now;
    enum cf_status st = visit(s, tk, 'l', node, lock_collect, ll);
    if (st != CF_OK) {
        cf_davlocks_free(ll->l, ll->n);
        memset(ll, 0, sizeof *ll);
    }
    return st;
}

enum cf_status cf_davlock_list(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node, uint64_t now,
                               struct cf_davlock **out, size_t *n)
{
    const struct cf_tkeys *tk;
    struct lock_list ll;
    *out = NULL;
    *n = 0;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    enum cf_status st = locks_load(s, tk, node, now, &ll);
    if (st == CF_OK) {
        *out = ll.l;
        *n = ll.n;
    }
    return st;
}

/* Deletes lock l (record and token entry) in b. */
static void lock_drop(struct cf_batch *b, const struct cf_id *tenant, const struct cf_davlock *l)
{
    uint8_t key[LOCK_KEY_LEN], tkey[TOKEN_KEY_LEN];
    lock_key(tenant, &l->node, &l->id, key);
    token_key(tenant, l->token, strlen(l->token), tkey);
    cf_batch_delete(b, CF_CF_UPLOADS, key, sizeof key);
    cf_batch_delete(b, CF_CF_UPLOADS, tkey, sizeof tkey);
}

enum cf_status cf_davlock_put(struct cf_store *s, const struct cf_id *tenant, const struct cf_davlock *l, uint64_t now)
{
    const struct cf_tkeys *tk;
    struct lock_list all;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    size_t tlen = strlen(l->token);
    if (tlen == 0 || tlen > CF_DAVLOCK_TOKEN_MAX || l->root == NULL)
        return CF_EINVAL;
    cf_ns_lock(s);
    enum cf_status st = locks_load(s, tk, &l->node, 0, &all);
    if (st != CF_OK) {
        cf_ns_unlock(s);
        return st;
    }
    struct cf_batch *b = cf_batch_new(s->eng);
    size_t live = 0;
    bool refresh = false;
    for (size_t i = 0; i < all.n; i++) {
        if (cf_id_equal(&all.l[i].id, &l->id))
            refresh = true;
        else if (all.l[i].expires_at <= now)
            lock_drop(b, tenant, &all.l[i]);
        else
            live++;
    }
    if (!refresh && live >= CF_DAVLOCK_MAX_PER_NODE) {
        st = CF_ETOOBIG;
    } else {
        uint8_t key[LOCK_KEY_LEN], tkey[TOKEN_KEY_LEN], idx[2 * CF_ID_LEN];
        struct cf_rec_w w;
        cf_rec_w_init(&w);
        cf_rec_put_bytes(&w, LTAG_TOKEN, l->token, tlen);
        cf_rec_put_u64(&w, LTAG_SHARED, l->shared);
        cf_rec_put_u64(&w, LTAG_INFINITY, l->infinity);
        if (l->owner != NULL)
            cf_rec_put_bytes(&w, LTAG_OWNER, l->owner, l->owner_len);
        cf_rec_put_id(&w, LTAG_CREATOR, &l->creator);
        cf_rec_put_str(&w, LTAG_ROOT, l->root);
        cf_rec_put_u64(&w, LTAG_CREATED, l->created_at);
        cf_rec_put_u64(&w, LTAG_TIMEOUT, l->timeout_s);
        cf_rec_put_u64(&w, LTAG_EXPIRES, l->expires_at);
        lock_key(tenant, &l->node, &l->id, key);
        cf_seal_batch_put(b, s, CF_CF_UPLOADS, &tk->record, key, sizeof key, &w, NULL, 0);
        cf_rec_w_free(&w);
        token_key(tenant, l->token, tlen, tkey);
        memcpy(idx, l->node.b, CF_ID_LEN);
        memcpy(idx + CF_ID_LEN, l->id.b, CF_ID_LEN);
        cf_batch_put(b, CF_CF_UPLOADS, tkey, sizeof tkey, idx, sizeof idx);
        st = cf_db_write(s, b, true);
    }
    cf_ns_unlock(s);
    cf_batch_free(b);
    cf_davlocks_free(all.l, all.n);
    return st;
}

enum cf_status cf_davlock_by_token(struct cf_store *s, const struct cf_id *tenant, const char *token, size_t len,
                                   uint64_t now, struct cf_davlock *out)
{
    const struct cf_tkeys *tk;
    uint8_t tkey[TOKEN_KEY_LEN], key[LOCK_KEY_LEN], *pt;
    char *v;
    size_t vl, ptlen;
    memset(out, 0, sizeof *out);
    if (len == 0 || len > CF_DAVLOCK_TOKEN_MAX)
        return CF_ENOTFOUND;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    token_key(tenant, token, len, tkey);
    enum cf_status st = cf_db_get(s, CF_CF_UPLOADS, tkey, sizeof tkey, &v, &vl);
    if (st != CF_OK)
        return st;
    if (vl != 2 * CF_ID_LEN) {
        free(v);
        return CF_ECORRUPT;
    }
    struct cf_id node, id;
    memcpy(node.b, v, CF_ID_LEN);
    memcpy(id.b, v + CF_ID_LEN, CF_ID_LEN);
    free(v);
    lock_key(tenant, &node, &id, key);
    if ((st = cf_get_sealed(s, CF_CF_UPLOADS, &tk->record, key, sizeof key, &pt, &ptlen)) != CF_OK)
        return st;
    st = lock_decode(key, pt, ptlen, out);
    cf_free_secret(pt, ptlen);
    if (st != CF_OK)
        return st;
    /* the token compared itself, not only its hash */
    if (strlen(out->token) != len || !cf_ct_equal(out->token, token, len) || out->expires_at <= now) {
        cf_davlock_clear(out);
        return CF_ENOTFOUND;
    }
    return CF_OK;
}

enum cf_status cf_davlock_covering(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                                   uint64_t now, struct cf_davlock **out, size_t *n)
{
    const struct cf_tkeys *tk;
    struct lock_list all = {0};
    struct cf_id cur = *node;
    enum cf_status st = CF_OK;
    *out = NULL;
    *n = 0;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    for (int level = 0; level < CF_DAVLOCK_MAX_DEPTH && !cf_id_is_zero(&cur) && st == CF_OK; level++) {
        struct lock_list ll;
        if ((st = locks_load(s, tk, &cur, now, &ll)) != CF_OK)
            break;
        for (size_t i = 0; i < ll.n; i++) {
            if (level > 0 && !ll.l[i].infinity) {
                cf_davlock_clear(&ll.l[i]);
                continue;
            }
            if (all.n == all.cap) {
                all.cap = all.cap == 0 ? 4 : all.cap * 2;
                all.l = cf_xrealloc(all.l, all.cap * sizeof *all.l);
            }
            all.l[all.n++] = ll.l[i]; /* moved */
        }
        free(ll.l);
        struct cf_node nd;
        if ((st = cf_node_get(s, tenant, &cur, &nd)) != CF_OK) {
            if (st == CF_ENOTFOUND)
                st = CF_OK;
            break;
        }
        cur = nd.parent;
        cf_node_clear(&nd);
    }
    if (st != CF_OK) {
        cf_davlocks_free(all.l, all.n);
        return st;
    }
    *out = all.l;
    *n = all.n;
    return CF_OK;
}

enum cf_status cf_davlock_check(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                                const struct cf_id *user, uint64_t now)
{
    struct cf_davlock *l;
    size_t n;
    enum cf_status st = cf_davlock_covering(s, tenant, node, now, &l, &n);
    for (size_t i = 0; st == CF_OK && i < n; i++)
        if (!cf_id_equal(&l[i].creator, user))
            st = CF_ELOCKED;
    cf_davlocks_free(l, n);
    return st;
}

enum cf_status cf_davlock_sweep(struct cf_store *s, const struct cf_id *tenant, uint64_t now, uint64_t *removed)
{
    const struct cf_tkeys *tk;
    struct lock_list all;
    *removed = 0;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    /* ns_lock: a LOCK refreshing one of them meanwhile is either before (then it is live) or after. */
    cf_ns_lock(s);
    enum cf_status st = locks_load(s, tk, NULL, 0, &all);
    if (st == CF_OK) {
        struct cf_batch *b = cf_batch_new(s->eng);
        for (size_t i = 0; i < all.n; i++) {
            if (all.l[i].expires_at <= now) {
                lock_drop(b, tenant, &all.l[i]);
                (*removed)++;
            }
        }
        if (*removed > 0)
            st = cf_db_write(s, b, true);
        if (st != CF_OK)
            *removed = 0;
        cf_batch_free(b);
        cf_davlocks_free(all.l, all.n);
    }
    cf_ns_unlock(s);
    return st;
}

enum cf_status cf_davlock_delete(struct cf_store *s, const struct cf_id *tenant, const struct cf_davlock *l)
{
    struct cf_batch *b = cf_batch_new(s->eng);
    lock_drop(b, tenant, l);
    enum cf_status st = cf_db_write(s, b, true);
    cf_batch_free(b);
    return st;
}

static enum cf_status drop_key(void *ctx, const uint8_t *key, size_t klen, uint8_t *pt, size_t ptlen)
{
    struct cf_batch *b = ctx;
    cf_free_secret(pt, ptlen);
    cf_batch_delete(b, CF_CF_UPLOADS, key, klen);
    return CF_OK;
}

enum cf_status cf_davprop_batch_drop(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                                     struct cf_batch *b)
{
    const struct cf_tkeys *tk;
    struct lock_list ll;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    enum cf_status st = visit(s, tk, 'd', node, drop_key, b);
    if (st == CF_OK && (st = locks_load(s, tk, node, 0, &ll)) == CF_OK) {
        for (size_t i = 0; i < ll.n; i++)
            lock_drop(b, tenant, &ll.l[i]);
        cf_davlocks_free(ll.l, ll.n);
    }
    return st;
}
