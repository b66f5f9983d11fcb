/*
 * share.c: share links.
 *
 * Layout (T = tenant id):
 *   shares        T ‖ share → sealed record (node, creator, permission, times, download limit,
 *                 figure and byte tally, suspension, internal_only, token text, token hash, code
 *                 text, code MAC)
 *                 T ‖ share ‖ node → sealed byte tally of one member file of a folder link (served,
 *                 credit; see "Byte budgets" in storage.h)
 *   share_tokens  SHA-256(token) → T ‖ share        (a link names no tenant: this finds it)
 *   node_shares   T ‖ node ‖ share → ""
 *   user_shares   T ‖ creator ‖ share → ""
 *   share_access  SHA-256(access token) → T ‖ share ‖ expires_at:u64
 * The token and the code are kept only inside the sealed record (the creator may see them again);
 * lookups use the token's hash and unlocking compares a keyed MAC of the code (subkey
 * "coffer/v1/tenant/share-code"), in constant time, in src/.
 * Revocation, suspension and byte budgets are read-modify-write under the namespace lock, so two
 * concurrent downloads of a link with one download left cannot both draw its bytes.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

enum {
    SHTAG_NODE = 1,
    SHTAG_CREATOR = 2,
    SHTAG_PERMISSION = 3,
    SHTAG_CREATED = 4,
    SHTAG_EXPIRES = 5,
    SHTAG_REVOKED = 6,
    SHTAG_MAX_DOWNLOADS = 7,
    SHTAG_DOWNLOADS = 8,
    SHTAG_INTERNAL = 9,
    SHTAG_TOKEN = 10,
    SHTAG_TOKEN_HASH = 11,
    SHTAG_CODE = 12,
    SHTAG_CODE_MAC = 13,
    SHTAG_SUSPENDED = 14,
    SHTAG_BYTES_SERVED = 15, /* absent: a record from before byte budgets (budget_legacy) */
    SHTAG_BYTES_CREDIT = 16,
};

/* Member tally records (folder links). */
enum {
    MTAG_SERVED = 1,
    MTAG_CREDIT = 2,
};

void cf_share_clear(struct cf_share *sh)
{
    if (sh == NULL)
        return;
    if (sh->token != NULL)
        cf_free_secret(sh->token, strlen(sh->token));
    if (sh->code != NULL)
        cf_free_secret(sh->code, strlen(sh->code));
    cf_wipe(sh, sizeof *sh);
}

enum cf_status cf_share_code_mac(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *share,
                                 const char *code, size_t n, uint8_t out[CF_SHA256_LEN])
{
    const struct cf_tkeys *tk;
    char up[CF_SHARE_CODE_MAX];
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    n = cf_share_code_fold(code, n, up);
    cf_hmac2_sha256(&tk->code, share->b, CF_ID_LEN, up, n, out);
    cf_wipe(up, sizeof up);
    return CF_OK;
}

size_t cf_share_code_fold(const char *code, size_t n, char up[CF_SHARE_CODE_MAX])
{
    if (n > CF_SHARE_CODE_MAX)
        n = CF_SHARE_CODE_MAX; /* longer input is never a valid code; the MAC of a prefix will not match */
    /* ASCII only, whatever the locale: toupper() would depend on it. */
    for (size_t i = 0; i < n; i++)
        up[i] = code[i] >= 'a' && code[i] <= 'z' ? (char)(code[i] - 'a' + 'A') : code[i];
    return n;
}

static void share_encode(const struct cf_share *sh, struct cf_rec_w *w)
{
    cf_rec_put_id(w, SHTAG_NODE, &sh->node);
    cf_rec_put_id(w, SHTAG_CREATOR, &sh->creator);
    cf_rec_put_u64(w, SHTAG_PERMISSION, sh->permission);
    cf_rec_put_u64(w, SHTAG_CREATED, sh->created_at);
    cf_rec_put_u64(w, SHTAG_EXPIRES, sh->expires_at);
    cf_rec_put_u64(w, SHTAG_REVOKED, sh->revoked_at);
    cf_rec_put_u64(w, SHTAG_MAX_DOWNLOADS, sh->max_downloads);
    cf_rec_put_u64(w, SHTAG_DOWNLOADS, sh->downloads);
    if (!sh->budget_legacy) {
        cf_rec_put_u64(w, SHTAG_BYTES_SERVED, sh->bytes_served);
        cf_rec_put_u64(w, SHTAG_BYTES_CREDIT, sh->bytes_credit);
    }
    if (sh->suspended_at != 0)
        cf_rec_put_u64(w, SHTAG_SUSPENDED, sh->suspended_at);
    cf_rec_put_u64(w, SHTAG_INTERNAL, sh->internal_only);
    cf_rec_put_str(w, SHTAG_TOKEN, sh->token);
    cf_rec_put_bytes(w, SHTAG_TOKEN_HASH, sh->token_hash, sizeof sh->token_hash);
    cf_rec_put_str(w, SHTAG_CODE, sh->code);
    cf_rec_put_bytes(w, SHTAG_CODE_MAC, sh->code_mac, sizeof sh->code_mac);
}

static enum cf_status share_decode(const uint8_t *p, size_t len, struct cf_share *out)
{
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    uint64_t x;
    unsigned seen = 0;
    enum cf_status st = cf_rec_r_init(&r, p, len);
    if (st != CF_OK)
        return st;
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        switch (tag) {
        case SHTAG_NODE:
            st = cf_rec_id(v, vl, &out->node);
            break;
        case SHTAG_CREATOR:
            st = cf_rec_id(v, vl, &out->creator);
            break;
        case SHTAG_PERMISSION:
            if ((st = cf_rec_u64(v, vl, &x)) == CF_OK && x != CF_SHARE_VIEW && x != CF_SHARE_DOWNLOAD)
                st = CF_ECORRUPT;
            out->permission = (enum cf_share_perm)x;
            break;
        case SHTAG_CREATED:
            st = cf_rec_u64(v, vl, &out->created_at);
            break;
        case SHTAG_EXPIRES:
            st = cf_rec_u64(v, vl, &out->expires_at);
            break;
        case SHTAG_REVOKED:
            st = cf_rec_u64(v, vl, &out->revoked_at);
            break;
        case SHTAG_MAX_DOWNLOADS:
            st = cf_rec_u64(v, vl, &out->max_downloads);
            break;
        case SHTAG_DOWNLOADS:
            st = cf_rec_u64(v, vl, &out->downloads);
            break;
        case SHTAG_BYTES_SERVED:
            st = cf_rec_u64(v, vl, &out->bytes_served);
            break;
        case SHTAG_BYTES_CREDIT:
            st = cf_rec_u64(v, vl, &out->bytes_credit);
            break;
        case SHTAG_SUSPENDED:
            st = cf_rec_u64(v, vl, &out->suspended_at);
            break;
        case SHTAG_INTERNAL:
            st = cf_rec_u64(v, vl, &x);
            out->internal_only = x != 0;
            break;
        case SHTAG_TOKEN:
            st = cf_rec_str(v, vl, &out->token);
            break;
        case SHTAG_TOKEN_HASH:
            if (vl != CF_SHA256_LEN)
                st = CF_ECORRUPT;
            else
                memcpy(out->token_hash, v, vl);
            break;
        case SHTAG_CODE:
            st = cf_rec_str(v, vl, &out->code);
            break;
        case SHTAG_CODE_MAC:
            if (vl != CF_SHA256_LEN)
                st = CF_ECORRUPT;
            else
                memcpy(out->code_mac, v, vl);
            break;
        default:
            break;
        }
        if (st != CF_OK)
            return st;
        if (tag < 32)
            seen |= 1u << tag;
    }
    unsigned need = 1u << SHTAG_NODE | 1u << SHTAG_CREATOR | 1u << SHTAG_PERMISSION | 1u << SHTAG_EXPIRES |
                    1u << SHTAG_CODE_MAC | 1u << SHTAG_TOKEN_HASH;
    out->budget_legacy = (seen & 1u << SHTAG_BYTES_SERVED) == 0;
    if (out->bytes_credit > CF_SHARE_RESUME_ALLOWANCE)
        return CF_ECORRUPT;
    return st == CF_ENOTFOUND && (seen & need) == need ? CF_OK : CF_ECORRUPT;
}

static void share_batch_put(struct cf_batch *b, struct cf_store *s, const struct cf_tkeys *tk,
                            const struct cf_share *sh)
{
    uint8_t key[32];
    struct cf_rec_w w;
    cf_key2(key, &sh->tenant, &sh->id);
    cf_rec_w_init(&w);
    share_encode(sh, &w);
    cf_seal_batch_put(b, s, CF_CF_SHARES, &tk->record, key, sizeof key, &w, NULL, 0);
    cf_rec_w_free(&w);
}

static void triple(const struct cf_id *t, const struct cf_id *a, const struct cf_id *b, uint8_t key[48])
{
    cf_key2(key, t, a);
    memcpy(key + 32, b->b, CF_ID_LEN);
}

enum cf_status cf_share_create(struct cf_store *s, const struct cf_share *sh)
{
    const struct cf_tkeys *tk;
    uint8_t k48[48], tv[32];
    if (cf_tkeys_get(s, &sh->tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    struct cf_batch *b = cf_batch_new(s->eng);
    share_batch_put(b, s, tk, sh);
    cf_key2(tv, &sh->tenant, &sh->id);
    cf_batch_put(b, CF_CF_SHARE_TOKENS, (const char *)sh->token_hash, CF_SHA256_LEN, (const char *)tv, sizeof tv);
    triple(&sh->tenant, &sh->node, &sh->id, k48);
    cf_batch_put(b, CF_CF_NODE_SHARES, (const char *)k48, sizeof k48, "", 0);
    triple(&sh->tenant, &sh->creator, &sh->id, k48);
    cf_batch_put(b, CF_CF_USER_SHARES, (const char *)k48, sizeof k48, "", 0);
    enum cf_status st = cf_db_write(s, b, true);
    cf_batch_free(b);
    return st;
}

static enum cf_status share_load(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *id,
                                 struct cf_share *out)
{
    uint8_t key[32], *pt;
    size_t ptlen;
    memset(out, 0, sizeof *out);
    cf_key2(key, &tk->tenant, id);
    enum cf_status st = cf_get_sealed(s, CF_CF_SHARES, &tk->record, key, sizeof key, &pt, &ptlen);
    if (st != CF_OK)
        return st;
    out->id = *id;
    out->tenant = tk->tenant;
    st = share_decode(pt, ptlen, out);
    cf_free_secret(pt, ptlen);
    if (st != CF_OK)
        cf_share_clear(out);
    return st;
}

enum cf_status cf_share_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                            struct cf_share *out)
{
    const struct cf_tkeys *tk;
    memset(out, 0, sizeof *out);
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    return share_load(s, tk, id, out);
}

enum cf_status cf_share_find(struct cf_store *s, const uint8_t token_hash[CF_SHA256_LEN], struct cf_share *out)
{
    char *val;
    size_t vlen;
    struct cf_id tenant, id;
    memset(out, 0, sizeof *out);
    enum cf_status st = cf_db_get(s, CF_CF_SHARE_TOKENS, token_hash, CF_SHA256_LEN, &val, &vlen);
    if (st != CF_OK)
        return st;
    if (vlen != 32) {
        free(val);
        return CF_ECORRUPT;
    }
    memcpy(tenant.b, val, CF_ID_LEN);
    memcpy(id.b, val + 16, CF_ID_LEN);
    free(val);
    if ((st = cf_share_get(s, &tenant, &id, out)) != CF_OK)
        return st;
    /* The index must point at the share that holds this token: a swapped index entry is corruption. */
    if (!cf_ct_equal(out->token_hash, token_hash, CF_SHA256_LEN)) {
        cf_share_clear(out);
        return CF_ECORRUPT;
    }
    return CF_OK;
}

enum cf_status cf_share_list(struct cf_store *s, const struct cf_id *tenant, bool by_node, const struct cf_id *id,
                             struct cf_share **out, size_t *n)
{
    const struct cf_tkeys *tk;
    uint8_t prefix[32];
    struct cf_iter it;
    struct cf_idvec ids = {0};
    enum cf_status st = CF_OK;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    cf_key2(prefix, tenant, id);
    cf_iter_open(s, by_node ? CF_CF_NODE_SHARES : CF_CF_USER_SHARES, prefix, sizeof prefix, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl;
        const char *k = cf_eiter_key(it.it, &kl);
        if (kl != 48) {
            st = CF_ECORRUPT;
            break;
        }
        struct cf_id sid;
        memcpy(sid.b, k + 32, CF_ID_LEN);
        cf_idvec_push(&ids, &sid);
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    struct cf_share *arr = cf_xcalloc(ids.n + 1, sizeof *arr);
    size_t cnt = 0;
    for (size_t i = 0; i < ids.n && st == CF_OK; i++) {
        st = share_load(s, tk, &ids.v[i], &arr[cnt]);
        if (st == CF_OK)
            cnt++;
    }
    free(ids.v);
    if (st != CF_OK) {
        for (size_t i = 0; i < cnt; i++)
            cf_share_clear(&arr[i]);
        free(arr);
        return st;
    }
    *out = arr;
    *n = cnt;
    return CF_OK;
}

enum cf_status cf_share_list_tenant(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *after, size_t max,
                                    struct cf_share **out, size_t *n, bool *more)
{
    const struct cf_tkeys *tk;
    struct cf_iter it;
    struct cf_idvec ids = {0};
    uint8_t from[32];
    enum cf_status st = CF_OK;
    *more = false;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    cf_iter_open(s, CF_CF_SHARES, tenant->b, CF_ID_LEN, &it);
    if (after != NULL) {
        cf_key2(from, tenant, after);
        cf_eiter_seek(it.it, from, sizeof from);
    }
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl;
        const char *k = cf_eiter_key(it.it, &kl);
        if (kl == 48)
            continue; /* a folder link's member tally */
        if (kl != 32) {
            st = CF_ECORRUPT;
            break;
        }
        if (after != NULL && memcmp(k, from, sizeof from) == 0)
            continue;
        if (ids.n == max) {
            *more = true;
            break;
        }
        struct cf_id sid;
        memcpy(sid.b, k + 16, CF_ID_LEN);
        cf_idvec_push(&ids, &sid);
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    struct cf_share *arr = cf_xcalloc(ids.n + 1, sizeof *arr);
    size_t cnt = 0;
    for (size_t i = 0; i < ids.n && st == CF_OK; i++) {
        st = share_load(s, tk, &ids.v[i], &arr[cnt]);
        if (st == CF_OK)
            cnt++;
    }
    free(ids.v);
    if (st != CF_OK) {
        for (size_t i = 0; i < cnt; i++)
            cf_share_clear(&arr[i]);
        free(arr);
        return st;
    }
    *out = arr;
    *n = cnt;
    return CF_OK;
}

/* One change to a link's record: mutate is called under the namespace lock with the loaded record
 * and a batch; it changes the record (and may add index entries to the batch) and says whether
 * anything changed. The record is then written in the batch, synchronously. */
typedef bool (*share_mutate_fn)(struct cf_share *sh, struct cf_batch *b, void *ctx);

static enum cf_status share_update(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                   share_mutate_fn mutate, void *ctx, bool *changed)
{
    const struct cf_tkeys *tk;
    struct cf_share sh;
    *changed = false;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    cf_ns_lock(s);
    enum cf_status st = share_load(s, tk, id, &sh);
    if (st == CF_OK) {
        struct cf_batch *b = cf_batch_new(s->eng);
        if (mutate(&sh, b, ctx)) {
            share_batch_put(b, s, tk, &sh);
            st = cf_db_write(s, b, true);
            *changed = st == CF_OK;
        }
        cf_batch_free(b);
    }
    cf_ns_unlock(s);
    cf_share_clear(&sh); /* share_load leaves sh zeroed on failure */
    return st;
}

static bool revoke_mutate(struct cf_share *sh, struct cf_batch *b, void *ctx)
{
    (void)b;
    (void)ctx;
    if (sh->revoked_at != 0)
        return false;
    sh->revoked_at = cf_now_ms();
    return true;
}

enum cf_status cf_share_revoke(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id)
{
    bool changed;
    return share_update(s, tenant, id, revoke_mutate, NULL, &changed);
}

struct suspend_change {
    bool on;
    uint64_t now;
};

static bool suspend_mutate(struct cf_share *sh, struct cf_batch *b, void *ctx)
{
    const struct suspend_change *c = ctx;
    (void)b;
    if (sh->revoked_at != 0 || (sh->suspended_at != 0) == c->on)
        return false;
    sh->suspended_at = c->on ? (c->now != 0 ? c->now : 1) : 0;
    return true;
}

enum cf_status cf_share_set_suspended(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                      bool on, uint64_t now, bool *changed)
{
    struct suspend_change c = {on, now};
    return share_update(s, tenant, id, suspend_mutate, &c, changed);
}

/* The creator's index entry moves with the record. */
static bool creator_mutate(struct cf_share *sh, struct cf_batch *b, void *ctx)
{
    const struct cf_id *creator = ctx;
    uint8_t k48[48];
    if (cf_id_equal(&sh->creator, creator))
        return false;
    triple(&sh->tenant, &sh->creator, &sh->id, k48);
    cf_batch_delete(b, CF_CF_USER_SHARES, (const char *)k48, sizeof k48);
    sh->creator = *creator;
    triple(&sh->tenant, creator, &sh->id, k48);
    cf_batch_put(b, CF_CF_USER_SHARES, (const char *)k48, sizeof k48, "", 0);
    return true;
}

enum cf_status cf_share_set_creator(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                    const struct cf_id *creator)
{
    bool changed;
    return share_update(s, tenant, id, creator_mutate, (void *)creator, &changed);
}

/* ---- byte budgets ------------------------------------------------------------------------------ */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

void cf_share_tally_of(const struct cf_share *sh, uint64_t size, struct cf_share_tally *out)
{
    out->served = sh->budget_legacy ? sat_mul(sh->downloads, size) : sh->bytes_served;
    out->credit = sh->budget_legacy ? 0 : sh->bytes_credit;
}

uint64_t cf_share_tally_left(uint64_t max_downloads, uint64_t size, const struct cf_share_tally *t)
{
    if (max_downloads == 0)
        return UINT64_MAX;
    uint64_t budget = sat_add(sat_mul(max_downloads, size), t->credit);
    return budget > t->served ? budget - t->served : 0;
}

uint64_t cf_share_tally_downloads(uint64_t size, const struct cf_share_tally *t)
{
    if (size == 0 || t->served <= t->credit)
        return 0;
    uint64_t net = t->served - t->credit;
    return net / size + (net % size != 0);
}

bool cf_share_legacy_exhausted(const struct cf_share *sh)
{
    return sh->budget_legacy && sh->max_downloads != 0 && sh->downloads >= sh->max_downloads;
}

static void member_key(const struct cf_id *tenant, const struct cf_id *share, const struct cf_id *node, uint8_t key[48])
{
    triple(tenant, share, node, key);
}

static enum cf_status member_load(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *share,
                                  const struct cf_id *node, struct cf_share_tally *out)
{
    uint8_t key[48], *pt, tag;
    size_t ptlen, vl;
    const uint8_t *v;
    struct cf_rec_r r;
    memset(out, 0, sizeof *out);
    member_key(&tk->tenant, share, node, key);
    enum cf_status st = cf_get_sealed(s, CF_CF_SHARES, &tk->record, key, sizeof key, &pt, &ptlen);
    if (st == CF_ENOTFOUND)
        return CF_OK; /* the member drew nothing yet */
    if (st != CF_OK)
        return st;
    if ((st = cf_rec_r_init(&r, pt, ptlen)) == CF_OK) {
        while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
            if (tag == MTAG_SERVED)
                st = cf_rec_u64(v, vl, &out->served);
            else if (tag == MTAG_CREDIT)
                st = cf_rec_u64(v, vl, &out->credit);
            if (st != CF_OK)
                break;
        }
        if (st == CF_ENOTFOUND)
            st = out->credit <= CF_SHARE_RESUME_ALLOWANCE ? CF_OK : CF_ECORRUPT;
    }
    cf_free_secret(pt, ptlen);
    return st;
}

static void member_batch_put(struct cf_batch *b, struct cf_store *s, const struct cf_tkeys *tk,
                             const struct cf_id *share, const struct cf_id *node, const struct cf_share_tally *t)
{
    uint8_t key[48];
    struct cf_rec_w w;
    member_key(&tk->tenant, share, node, key);
    cf_rec_w_init(&w);
    cf_rec_put_u64(&w, MTAG_SERVED, t->served);
    cf_rec_put_u64(&w, MTAG_CREDIT, t->credit);
    cf_seal_batch_put(b, s, CF_CF_SHARES, &tk->record, key, sizeof key, &w, NULL, 0);
    cf_rec_w_free(&w);
}

/* What a draw or give-back works on: the link, and the tally of the file it serves. */
struct budget {
    struct cf_share sh;
    bool member;                   /* a member of a folder link (its own tally record) */
    struct cf_share_tally t;
    uint64_t served0;              /* t.served before the change */
    uint64_t figure0;              /* the file's download figure before the change */
};

/* A folder link's total, moved by what one member's value moved (never below 0). */
static uint64_t adjust(uint64_t total, uint64_t before, uint64_t after)
{
    if (after >= before)
        return sat_add(total, after - before);
    return total > before - after ? total - (before - after) : 0;
}

static enum cf_status budget_load(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *id,
                                  const struct cf_id *node, uint64_t size, struct budget *bg)
{
    enum cf_status st = share_load(s, tk, id, &bg->sh);
    if (st != CF_OK)
        return st;
    bg->member = !cf_id_equal(node, &bg->sh.node);
    if (bg->member)
        st = member_load(s, tk, id, node, &bg->t);
    else
        cf_share_tally_of(&bg->sh, size, &bg->t);
    bg->served0 = bg->t.served;
    bg->figure0 = cf_share_tally_downloads(size, &bg->t);
    return st;
}

/* Writes the changed tally (and a folder link's totals) in one synchronous batch. */
static enum cf_status budget_store(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *node,
                                   uint64_t size, struct budget *bg)
{
    uint64_t figure = cf_share_tally_downloads(size, &bg->t);
    struct cf_share *sh = &bg->sh;
    struct cf_batch *b = cf_batch_new(s->eng);
    if (bg->member) {
        member_batch_put(b, s, tk, &sh->id, node, &bg->t);
        sh->bytes_served = adjust(sh->bytes_served, bg->served0, bg->t.served);
        sh->downloads = adjust(sh->downloads, bg->figure0, figure);
    } else {
        sh->bytes_served = bg->t.served;
        sh->bytes_credit = bg->t.credit;
        sh->downloads = figure;
    }
    sh->budget_legacy = false; /* converted: the tally is now in the record */
    share_batch_put(b, s, tk, sh);
    enum cf_status st = cf_db_write(s, b, true);
    cf_batch_free(b);
    return st;
}

enum cf_status cf_share_draw(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                             const struct cf_id *node, uint64_t size, uint64_t bytes, uint64_t now, bool *counted)
{
    const struct cf_tkeys *tk;
    struct budget bg;
    *counted = false;
    memset(&bg, 0, sizeof bg);
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    cf_ns_lock(s);
    enum cf_status st = budget_load(s, tk, id, node, size, &bg);
    if (st == CF_OK) {
        if (bg.sh.revoked_at != 0)
            st = CF_EREVOKED;
        else if (bg.sh.expires_at <= now)
            st = CF_EEXPIRED;
        else if (bg.sh.suspended_at != 0)
            st = CF_ESUSPENDED;
        else if (cf_share_legacy_exhausted(&bg.sh) || bytes > cf_share_tally_left(bg.sh.max_downloads, size, &bg.t))
            st = CF_EEXHAUSTED;
    }
    if (st == CF_OK && bytes > 0) {
        bg.t.served = sat_add(bg.t.served, bytes);
        *counted = cf_share_tally_downloads(size, &bg.t) > bg.figure0;
        st = budget_store(s, tk, node, size, &bg);
        if (st != CF_OK)
            *counted = false;
    }
    cf_ns_unlock(s);
    cf_share_clear(&bg.sh);
    return st;
}

enum cf_status cf_share_give_back(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                  const struct cf_id *node, uint64_t size, uint64_t unsent, uint64_t sent)
{
    const struct cf_tkeys *tk;
    struct budget bg;
    memset(&bg, 0, sizeof bg);
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    cf_ns_lock(s);
    enum cf_status st = budget_load(s, tk, id, node, size, &bg);
    if (st == CF_OK) {
        uint64_t back = unsent < bg.t.served ? unsent : bg.t.served;
        bg.t.served -= back;
        uint64_t room = CF_SHARE_RESUME_ALLOWANCE - bg.t.credit;
        bg.t.credit += sent < room ? sent : room;
        st = budget_store(s, tk, node, size, &bg);
    }
    cf_ns_unlock(s);
    cf_share_clear(&bg.sh);
    return st;
}

enum cf_status cf_share_member_tally(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                     const struct cf_id *node, struct cf_share_tally *out)
{
    const struct cf_tkeys *tk;
    memset(out, 0, sizeof *out);
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    return member_load(s, tk, id, node, out);
}

enum cf_status cf_share_access_put(struct cf_store *s, const uint8_t hash[CF_SHA256_LEN], const struct cf_id *tenant,
                                   const struct cf_id *share, uint64_t expires_at)
{
    uint8_t v[40];
    cf_key2(v, tenant, share);
    cf_put_be64(v + 32, expires_at);
    return cf_db_put(s, CF_CF_SHARE_ACCESS, hash, CF_SHA256_LEN, v, sizeof v, true);
}

enum cf_status cf_share_access_get(struct cf_store *s, const uint8_t hash[CF_SHA256_LEN], struct cf_id *tenant,
                                   struct cf_id *share, uint64_t *expires_at)
{
    char *val;
    size_t vlen;
    enum cf_status st = cf_db_get(s, CF_CF_SHARE_ACCESS, hash, CF_SHA256_LEN, &val, &vlen);
    if (st != CF_OK)
        return st;
    if (vlen != 40) {
        free(val);
        return CF_ECORRUPT;
    }
    memcpy(tenant->b, val, CF_ID_LEN);
    memcpy(share->b, val + 16, CF_ID_LEN);
    *expires_at = cf_get_be64((const uint8_t *)val + 32);
    free(val);
    return CF_OK;
}
