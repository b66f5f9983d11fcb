/*
 * keyring.c: the key lifecycle below the master key: tenant keys, content-key generations, data-key
 * wrapping, rotation (master and per tenant) and destruction (tenant deletion).
 *
 * A tenant key is 32 random bytes stored in the keys column family wrapped by the KEK (AES-256-GCM,
 * AAD = purpose label ‖ tenant id). It is unwrapped once, on first use, into per-purpose subkeys
 * (HKDF), after which the tenant key itself is wiped. The subkeys stay in memory until the store
 * closes; entries are never moved or removed while the store is open, so the pointers handed out
 * stay valid (a deleted tenant's entry stays, marked dead, its keys replaced by random bytes).
 *
 * Data keys are wrapped by the tenant's content key. Generation 0 is an HKDF subkey of the tenant
 * key; `coffer keys rotate-tenant` makes a random generation N+1 (stored wrapped by the KEK under
 * "c" T N+1, AAD "coffer/v1/wrap/content" ‖ T ‖ N+1), rewraps every data key under it and destroys
 * the older generations ("c" T 0 → "" marks the derived one retired). Rotation and every wrap hold
 * s->ns_lock around the wrap and the write of its wrapper, so no wrapper under a retiring
 * generation can be written after the last check.
 */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

static const char tenant_aad_label[] = "coffer/v1/wrap/tenant";

static void tenant_aad(const struct cf_id *tenant, uint8_t aad[sizeof tenant_aad_label - 1 + CF_ID_LEN])
{
    memcpy(aad, tenant_aad_label, sizeof tenant_aad_label - 1);
    memcpy(aad + sizeof tenant_aad_label - 1, tenant->b, CF_ID_LEN);
}

static void keys_key(const struct cf_id *tenant, uint8_t key[1 + CF_ID_LEN])
{
    key[0] = 't';
    memcpy(key + 1, tenant->b, CF_ID_LEN);
}

static const char content_aad_label[] = "coffer/v1/wrap/content";
#define CONTENT_AAD_LEN (sizeof content_aad_label - 1 + CF_ID_LEN + 4)
#define GEN_KEY_LEN (1 + CF_ID_LEN + 4)

static void gen_key(const struct cf_id *tenant, uint32_t gen, uint8_t key[GEN_KEY_LEN])
{
    key[0] = 'c';
    memcpy(key + 1, tenant->b, CF_ID_LEN);
    cf_put_be32(key + 1 + CF_ID_LEN, gen);
}

static void content_aad(const struct cf_id *tenant, uint32_t gen, uint8_t aad[CONTENT_AAD_LEN])
{
    memcpy(aad, content_aad_label, sizeof content_aad_label - 1);
    memcpy(aad + sizeof content_aad_label - 1, tenant->b, CF_ID_LEN);
    cf_put_be32(aad + sizeof content_aad_label - 1 + CF_ID_LEN, gen);
}

/* Loads the stored generations of tk's tenant (called before tk is shared). */
static enum cf_status load_gens(struct cf_store *s, struct cf_tkeys *tk)
{
    uint8_t prefix[1 + CF_ID_LEN];
    struct cf_iter it;
    enum cf_status st = CF_OK;
    prefix[0] = 'c';
    memcpy(prefix + 1, tk->tenant.b, CF_ID_LEN);
    cf_iter_open(s, CF_CF_KEYS, prefix, sizeof prefix, &it);
    for (; cf_eiter_valid(it.it) && st == CF_OK; cf_eiter_next(it.it)) {
        size_t kl, vl;
        const char *k = cf_eiter_key(it.it, &kl);
        const uint8_t *v = (const uint8_t *)cf_eiter_value(it.it, &vl);
        if (kl != GEN_KEY_LEN) {
            st = CF_ECORRUPT;
            break;
        }
        uint32_t gen = cf_get_be32((const uint8_t *)k + 1 + CF_ID_LEN);
        if (gen == 0 && vl == 0) { /* the derived generation is retired */
            cf_key_wipe(&tk->gens[0].key);
            tk->gens[0].live = false;
            continue;
        }
        uint8_t aad[CONTENT_AAD_LEN];
        content_aad(&tk->tenant, gen, aad);
        if (gen == 0 || tk->ngens == CF_DEK_GENS || vl != CF_KEY_LEN + CF_SEAL_OVERHEAD) {
            st = CF_ECORRUPT;
            break;
        }
        struct cf_dekgen *g = &tk->gens[tk->ngens];
        if (cf_aead_open(&s->kek, aad, sizeof aad, v, vl, g->key.k) != CF_OK) {
            st = CF_ECORRUPT;
            break;
        }
        g->gen = gen;
        g->live = true;
        tk->ngens++;
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    tk->cur = 0;
    for (size_t i = 0; i < tk->ngens; i++)
        if (tk->gens[i].live && tk->gens[i].gen >= tk->cur)
            tk->cur = tk->gens[i].gen;
    return st;
}

/* The live key of generation gen (under tk_lock). */
static const struct cf_dekgen *gen_find(const struct cf_tkeys *tk, uint32_t gen)
{
    for (size_t i = 0; i < tk->ngens; i++)
        if (tk->gens[i].live && tk->gens[i].gen == gen)
            return &tk->gens[i];
    return NULL;
}

static const char dek_label[] = "coffer/v1/wrap/dek";

/* Cluster mode: reloads tk if another node rotated or destroyed its keys (end of this file). marks
 * counts the change feed's stale marks (of any entry): an entry loaded while one was made may have
 * read the keys before that change, and starts stale. */
static enum cf_status tkeys_refresh(struct cf_store *s, const struct cf_tkeys *tk);
static _Atomic uint64_t marks;

static size_t dek_aad(const struct cf_id *tenant, const struct cf_id *content, uint8_t aad[64])
{
    size_t o = sizeof dek_label - 1;
    memcpy(aad, dek_label, o);
    memcpy(aad + o, tenant->b, CF_ID_LEN);
    memcpy(aad + o + 16, content->b, CF_ID_LEN);
    return o + 32;
}

enum cf_status cf_dek_wrap(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *content,
                           const struct cf_key *dek, uint8_t wrapped[CF_KEY_LEN + CF_SEAL_OVERHEAD], uint32_t *gen)
{
    uint8_t aad[64];
    size_t alen = dek_aad(&tk->tenant, content, aad);
    enum cf_status st = tkeys_refresh(s, tk);
    if (st != CF_OK)
        return st;
    st = CF_ENOTFOUND;
    pthread_rwlock_rdlock(&s->tk_lock);
    const struct cf_dekgen *g = tk->dead ? NULL : gen_find(tk, tk->cur);
    if (g != NULL) {
        *gen = g->gen;
        st = cf_aead_seal(&g->key, aad, alen, dek->k, sizeof dek->k, wrapped);
    }
    pthread_rwlock_unlock(&s->tk_lock);
    return st;
}

enum cf_status cf_dek_unwrap(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *content, uint32_t gen,
                             const uint8_t wrapped[CF_KEY_LEN + CF_SEAL_OVERHEAD], struct cf_key *dek)
{
    uint8_t aad[64];
    size_t alen = dek_aad(&tk->tenant, content, aad);
    enum cf_status st = tkeys_refresh(s, tk);
    if (st != CF_OK)
        return st;
    st = CF_ENOTFOUND;
    pthread_rwlock_rdlock(&s->tk_lock);
    const struct cf_dekgen *g = tk->dead ? NULL : gen_find(tk, gen);
    if (g != NULL)
        st = cf_aead_open(&g->key, aad, alen, wrapped, CF_KEY_LEN + CF_SEAL_OVERHEAD, dek->k) == CF_OK ? CF_OK
                                                                                                  : CF_ECORRUPT;
    pthread_rwlock_unlock(&s->tk_lock);
    return st;
}

static struct cf_tkeys *derive(const struct cf_id *tenant, const struct cf_key *tkey)
{
    struct cf_tkeys *tk = cf_xcalloc(1, sizeof *tk);
    tk->tenant = *tenant;
    if (cf_hkdf(tkey->k, sizeof tkey->k, "coffer/v1/tenant/record", &tk->record) != CF_OK ||
        cf_hkdf(tkey->k, sizeof tkey->k, "coffer/v1/tenant/index", &tk->index) != CF_OK ||
        cf_hkdf(tkey->k, sizeof tkey->k, "coffer/v1/tenant/dek", &tk->gens[0].key) != CF_OK ||
        cf_hkdf(tkey->k, sizeof tkey->k, "coffer/v1/tenant/share-code", &tk->code) != CF_OK) {
        cf_free_secret(tk, sizeof *tk);
        return NULL;
    }
    tk->gens[0].gen = 0;
    tk->gens[0].live = true;
    tk->ngens = 1;
    return tk;
}

static const struct cf_tkeys *find_locked(struct cf_store *s, const struct cf_id *tenant)
{
    for (size_t i = 0; i < s->ntk; i++)
        if (cf_id_equal(&s->tk[i]->tenant, tenant))
            return s->tk[i];
    return NULL;
}

/* Adds tk unless another thread got there first; returns the entry that is in the table. */
static void follow_hook(struct cf_store *s);

static const struct cf_tkeys *insert(struct cf_store *s, struct cf_tkeys *tk)
{
    follow_hook(s);
    pthread_rwlock_wrlock(&s->tk_lock);
    const struct cf_tkeys *have = find_locked(s, &tk->tenant);
    if (have == NULL) {
        if (s->ntk == s->captk) {
            s->captk = s->captk == 0 ? 8 : s->captk * 2;
            s->tk = cf_xrealloc(s->tk, s->captk * sizeof *s->tk);
        }
        s->tk[s->ntk++] = tk;
        have = tk;
        tk = NULL;
    }
    pthread_rwlock_unlock(&s->tk_lock);
    cf_free_secret(tk, tk == NULL ? 0 : sizeof *tk);
    return have;
}

/* Hooks this file into the change feed (db.c follow_op) before the first key is loaded: a change the
 * feed applied before that was committed before the load, which then reads it. */
static void follow_hook(struct cf_store *s)
{
    if (atomic_load(&s->tkeys_follow) == NULL) {
        atomic_store(&s->tkeys_lost, cf_tkeys_lost);
        atomic_store(&s->tkeys_follow, cf_tkeys_follow);
    }
}

enum cf_status cf_tkeys_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_tkeys **out)
{
    follow_hook(s);
    pthread_rwlock_rdlock(&s->tk_lock);
    const struct cf_tkeys *have = find_locked(s, tenant);
    bool dead = have != NULL && have->dead;
    pthread_rwlock_unlock(&s->tk_lock);
    if (dead)
        return CF_ENOTFOUND;
    if (have != NULL) {
        enum cf_status rst = tkeys_refresh(s, have);
        if (rst == CF_OK)
            *out = have;
        return rst;
    }

    uint8_t key[1 + CF_ID_LEN], aad[sizeof tenant_aad_label - 1 + CF_ID_LEN];
    char *val;
    size_t vlen;
    struct cf_key tkey;
    uint64_t marks0 = atomic_load(&marks);
    keys_key(tenant, key);
    enum cf_status st = cf_db_get(s, CF_CF_KEYS, key, sizeof key, &val, &vlen);
    if (st != CF_OK)
        return st;
    tenant_aad(tenant, aad);
    if (vlen != CF_KEY_LEN + CF_SEAL_OVERHEAD ||
        cf_aead_open(&s->kek, aad, sizeof aad, (const uint8_t *)val, vlen, tkey.k) != CF_OK) {
        free(val);
        return CF_ECORRUPT;
    }
    free(val);
    struct cf_tkeys *tk = derive(tenant, &tkey);
    cf_key_wipe(&tkey);
    if (tk == NULL)
        return CF_ECRYPTO;
    if ((st = load_gens(s, tk)) != CF_OK) {
        cf_free_secret(tk, sizeof *tk);
        return st;
    }
    *out = insert(s, tk);
    if (atomic_load(&marks) != marks0)
        atomic_fetch_add(&((struct cf_tkeys *)*out)->stale, 1); /* the feed moved meanwhile: reload */
    return (*out)->dead ? CF_ENOTFOUND : CF_OK;
}

const struct cf_tkeys *cf_tkeys_create(struct cf_store *s, const struct cf_id *tenant, struct cf_batch *b)
{
    uint8_t key[1 + CF_ID_LEN], aad[sizeof tenant_aad_label - 1 + CF_ID_LEN];
    uint8_t wrapped[CF_KEY_LEN + CF_SEAL_OVERHEAD];
    struct cf_key tkey;
    cf_key_random(&tkey);
    tenant_aad(tenant, aad);
    keys_key(tenant, key);
    if (cf_aead_seal(&s->kek, aad, sizeof aad, tkey.k, sizeof tkey.k, wrapped) != CF_OK)
        abort(); /* see cf_seal_batch_put: never store a key unwrapped */
    cf_batch_put(b, CF_CF_KEYS, (const char *)key, sizeof key, (const char *)wrapped, sizeof wrapped);
    struct cf_tkeys *tk = derive(tenant, &tkey);
    cf_key_wipe(&tkey);
    if (tk == NULL)
        abort();
    return insert(s, tk);
}

/* ---- shredding old wrapped keys from disk --------------------------------------------------- */

/* After wrapped keys were replaced or deleted: flush every column family (so that no WAL file still
 * holds them: RocksDB deletes a WAL once every family it covers is flushed) and compact the keys
 * family down to one level, forcing the bottommost level to be rewritten, so that no live table file
 * holds an old version. Files already copied elsewhere (backups, checkpoints) keep theirs. */
static enum cf_status shred_old_keys(struct cf_store *s)
{
    enum cf_status st = cf_store_flush(s);
    if (st != CF_OK)
        return st;
    cf_eng_compact(s->eng, CF_CF_KEYS, NULL, 0, NULL, 0, true);
    return CF_OK;
}

/* ---- master key rotation -------------------------------------------------------------------- */

static const char global_wrap_aad[] = "coffer/v1/wrap/global";

/* Rewraps one value of the keys family from the old KEK to the new one, into b. */
static enum cf_status rewrap_value(struct cf_store *s, const struct cf_key *newkek, const char *k, size_t kl,
                                   const uint8_t *v, size_t vl, const uint8_t *aad, size_t alen,
                                   struct cf_batch *b)
{
    uint8_t pt[CF_KEY_LEN], out[CF_KEY_LEN + CF_SEAL_OVERHEAD];
    if (vl != sizeof out || cf_aead_open(&s->kek, aad, alen, v, vl, pt) != CF_OK)
        return CF_ECORRUPT;
    enum cf_status st = cf_aead_seal(newkek, aad, alen, pt, sizeof pt, out);
    cf_wipe(pt, sizeof pt);
    if (st == CF_OK)
        cf_batch_put(b, CF_CF_KEYS, k, kl, (const char *)out, sizeof out);
    return st;
}

enum cf_status cf_store_rotate_master(struct cf_store *s, const struct cf_key *new_master, uint64_t *out_tenants)
{
    struct cf_key newkek;
    struct cf_iter it;
    uint64_t tenants = 0;
    enum cf_status st = cf_hkdf(new_master->k, sizeof new_master->k, "coffer/v1/kek", &newkek);
    if (st != CF_OK)
        return st;
    if (CRYPTO_memcmp(newkek.k, s->kek.k, sizeof newkek.k) == 0) {
        cf_key_wipe(&newkek);
        return CF_EINVAL;
    }
    struct cf_batch *b = cf_batch_new(s->eng);
    /* ns_lock: no tenant is created (and wrapped with the old KEK) while the batch is built. */
    cf_ns_lock(s);
    uint8_t none = 0;
    cf_iter_open(s, CF_CF_KEYS, &none, 0, &it);
    cf_eiter_seek_to_first(it.it);
    for (; cf_eiter_valid(it.it) && st == CF_OK; cf_eiter_next(it.it)) {
        size_t kl, vl;
        const char *k = cf_eiter_key(it.it, &kl);
        const uint8_t *v = (const uint8_t *)cf_eiter_value(it.it, &vl);
        if (kl == 6 && memcmp(k, "global", 6) == 0) {
            st = rewrap_value(s, &newkek, k, kl, v, vl, (const uint8_t *)global_wrap_aad, sizeof global_wrap_aad - 1, b);
        } else if (kl == 1 + CF_ID_LEN && k[0] == 't') {
            uint8_t aad[sizeof tenant_aad_label - 1 + CF_ID_LEN];
            struct cf_id t;
            memcpy(t.b, k + 1, CF_ID_LEN);
            tenant_aad(&t, aad);
            st = rewrap_value(s, &newkek, k, kl, v, vl, aad, sizeof aad, b);
            tenants++;
        } else if (kl == GEN_KEY_LEN && k[0] == 'c') {
            if (vl == 0)
                continue; /* the retired-generation-0 marker */
            uint8_t aad[CONTENT_AAD_LEN];
            struct cf_id t;
            memcpy(t.b, k + 1, CF_ID_LEN);
            content_aad(&t, cf_get_be32((const uint8_t *)k + 1 + CF_ID_LEN), aad);
            st = rewrap_value(s, &newkek, k, kl, v, vl, aad, sizeof aad, b);
        } else {
            st = CF_ECORRUPT; /* a key this code does not know how to rewrap: refuse to half-rotate */
        }
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    if (st == CF_OK)
        st = cf_db_write(s, b, true); /* all or nothing: the store opens with exactly one master key */
    if (st == CF_OK)
        s->kek = newkek;
    cf_ns_unlock(s);
    cf_batch_free(b);
    cf_key_wipe(&newkek);
    if (st == CF_OK)
        st = shred_old_keys(s);
    if (out_tenants != NULL)
        *out_tenants = tenants;
    return st;
}

/* ---- content-key generations (rotate.c drives a rotation) ------------------------------------ */

enum cf_status cf_keygen_add(struct cf_store *s, const struct cf_tkeys *ctk, uint32_t *out_gen)
{
    struct cf_tkeys *tk = (struct cf_tkeys *)ctk; /* the generations are ours to change, under tk_lock */
    const struct cf_id *tenant = &tk->tenant;
    struct cf_key k;
    uint8_t key[GEN_KEY_LEN], aad[CONTENT_AAD_LEN], wrapped[CF_KEY_LEN + CF_SEAL_OVERHEAD];
    cf_ns_lock(s);
    pthread_rwlock_wrlock(&s->tk_lock);
    uint32_t gen = 0;
    size_t slot = CF_DEK_GENS, live = 0;
    for (size_t i = 0; i < tk->ngens; i++) {
        gen = tk->gens[i].gen > gen ? tk->gens[i].gen : gen;
        live += tk->gens[i].live;
    }
    gen++;
    for (size_t i = 0; i < tk->ngens && slot == CF_DEK_GENS; i++)
        if (!tk->gens[i].live && i != 0)
            slot = i;
    if (slot == CF_DEK_GENS && tk->ngens < CF_DEK_GENS)
        slot = tk->ngens;
    pthread_rwlock_unlock(&s->tk_lock);
    if (slot == CF_DEK_GENS || live >= CF_DEK_GENS - 1) {
        cf_ns_unlock(s);
        return CF_EBUSY; /* earlier rotations never finished: run one to completion first */
    }
    cf_key_random(&k);
    content_aad(tenant, gen, aad);
    gen_key(tenant, gen, key);
    enum cf_status st = cf_aead_seal(&s->kek, aad, sizeof aad, k.k, sizeof k.k, wrapped);
    if (st == CF_OK)
        st = cf_db_put(s, CF_CF_KEYS, key, sizeof key, wrapped, sizeof wrapped, true);
    if (st == CF_OK) {
        pthread_rwlock_wrlock(&s->tk_lock);
        tk->gens[slot].gen = gen;
        tk->gens[slot].key = k;
        tk->gens[slot].live = true;
        if (slot == tk->ngens)
            tk->ngens++;
        tk->cur = gen;
        pthread_rwlock_unlock(&s->tk_lock);
    }
    cf_key_wipe(&k);
    cf_ns_unlock(s);
    if (st == CF_OK)
        *out_gen = gen;
    return st;
}

enum cf_status cf_keygen_retire(struct cf_store *s, const struct cf_tkeys *ctk, uint32_t gen, uint32_t *retired)
{
    struct cf_tkeys *tk = (struct cf_tkeys *)ctk;
    uint8_t key[GEN_KEY_LEN];
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_ns_lock(s);
    pthread_rwlock_rdlock(&s->tk_lock);
    for (size_t i = 0; i < tk->ngens; i++) {
        if (!tk->gens[i].live || tk->gens[i].gen == gen)
            continue;
        gen_key(&tk->tenant, tk->gens[i].gen, key);
        if (tk->gens[i].gen == 0)
            cf_batch_put(b, CF_CF_KEYS, (const char *)key, sizeof key, "", 0);
        else
            cf_batch_delete(b, CF_CF_KEYS, (const char *)key, sizeof key);
    }
    pthread_rwlock_unlock(&s->tk_lock);
    enum cf_status st = cf_db_write(s, b, true);
    if (st == CF_OK) {
        pthread_rwlock_wrlock(&s->tk_lock);
        for (size_t i = 0; i < tk->ngens; i++)
            if (tk->gens[i].live && tk->gens[i].gen != gen) {
                tk->gens[i].live = false;
                cf_key_wipe(&tk->gens[i].key);
                (*retired)++;
            }
        pthread_rwlock_unlock(&s->tk_lock);
    }
    cf_ns_unlock(s);
    cf_batch_free(b);
    if (st == CF_OK)
        st = shred_old_keys(s);
    return st;
}

/* ---- tenant deletion (crypto-shredding) ----------------------------------------------------- */

/* Column families whose keys all begin with the tenant id. (Not the journal's: it writes its own
 * entries for the deletions below.) */
static bool tenant_prefixed(enum cf_cf cf)
{
    return cf != CF_CF_DEFAULT && cf != CF_CF_KEYS && cf != CF_CF_TENANT_NAMES && cf != CF_CF_SESSIONS &&
           cf != CF_CF_SHARE_TOKENS && cf != CF_CF_SHARE_ACCESS && cf != CF_CF_JOURNAL && cf != CF_CF_JOURNAL_KEYS;
}

/* Deletes, into b, every entry of cf whose value begins with the tenant id (the hashed-key families). */
static enum cf_status delete_by_value(struct cf_store *s, enum cf_cf cf, const struct cf_id *tenant,
                                      struct cf_batch *b, uint64_t *count)
{
    struct cf_iter it;
    uint8_t none = 0;
    cf_iter_open(s, cf, &none, 0, &it);
    cf_eiter_seek_to_first(it.it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl;
        const char *k = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        if (vl >= CF_ID_LEN && memcmp(v, tenant->b, CF_ID_LEN) == 0) {
            cf_batch_delete(b, cf, k, kl);
            (*count)++;
        }
    }
    enum cf_status st = cf_iter_status(&it);
    cf_iter_close(&it);
    return st;
}

/* The tenant is gone (tk_lock held for writing): its keys in memory are overwritten, by
 * cf_tenant_delete here and by following another node's deletion (cf_tkeys_follow). */
static void tkeys_kill(struct cf_tkeys *t)
{
    t->dead = true;
    cf_key_random(&t->record);
    cf_key_random(&t->index);
    cf_key_random(&t->code);
    for (size_t g = 0; g < t->ngens; g++) {
        cf_key_random(&t->gens[g].key);
        t->gens[g].live = false;
    }
}

enum cf_status cf_tenant_delete(struct cf_store *s, const struct cf_id *id, uint64_t *out_keys)
{
    uint64_t count = 0;
    uint8_t key[GEN_KEY_LEN + 1];
    enum cf_status st;
    const struct cf_tkeys *tk = NULL;
    if (cf_tkeys_get(s, id, &tk) != CF_OK) /* loads the entry, to mark it dead below */
        tk = NULL; /* no keys (any more): an earlier deletion stopped part-way; finish it */

    /* 1. Destroy the keys and the name, in one synced batch: from here the tenant is gone. */
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_ns_lock(s);
    keys_key(id, key);
    cf_batch_delete(b, CF_CF_KEYS, (const char *)key, 1 + CF_ID_LEN);
    uint8_t begin[1 + CF_ID_LEN], end[1 + CF_ID_LEN + 5];
    begin[0] = 'c';
    memcpy(begin + 1, id->b, CF_ID_LEN);
    memcpy(end, begin, sizeof begin);
    memset(end + sizeof begin, 0xff, 5); /* past every "c" T gen:u32 key */
    cf_batch_delete_range(b, CF_CF_KEYS, (const char *)begin, sizeof begin, (const char *)end, sizeof end);
    cf_batch_delete(b, CF_CF_TENANTS, (const char *)id->b, CF_ID_LEN);
    st = delete_by_value(s, CF_CF_TENANT_NAMES, id, b, &count);
    if (st == CF_OK)
        st = cf_db_write(s, b, true);
    if (st == CF_OK) {
        /* In memory: no new lookup finds the tenant, and the subkeys already handed out now hold
         * random bytes (an operation under way seals garbage that nobody can open, and deleted
         * below or at the next run). Random, not zero: a zero key would be a known key. */
        pthread_rwlock_wrlock(&s->tk_lock);
        for (size_t i = 0; i < s->ntk; i++) {
            struct cf_tkeys *t = s->tk[i];
            if (cf_id_equal(&t->tenant, id))
                tkeys_kill(t);
        }
        pthread_rwlock_unlock(&s->tk_lock);
    }
    cf_ns_unlock(s);
    cf_batch_free(b);
    if (st != CF_OK)
        return st;

    /* 2. The tenant's chunk blobs (engine/blob.h), undecryptable since step 1. Before the records: a
     *    crash between leaves the records of a tenant without keys, as a crash after step 1 always
     *    has, and running the deletion again finishes both. */
    if ((st = cf_db_blob_delete_tenant(s, id->b)) != CF_OK)
        return st;

    /* 3. Delete every record of the tenant (all of it ciphertext nobody can open any more). */
    b = cf_batch_new(s->eng);
    uint8_t lo[CF_ID_LEN];
    memcpy(lo, id->b, CF_ID_LEN);
    for (int cf = 0; cf < CF_CF_COUNT && st == CF_OK; cf++) {
        /* Chunks are blobs, deleted in step 2 and not counted. */
        if (tenant_prefixed((enum cf_cf)cf) && cf != CF_CF_CHUNKS) {
            /* [T, T ‖ 0xff×64) holds every key of the tenant (no key is longer than T + 64 bytes). */
            uint8_t hi2[CF_ID_LEN + 64];
            memcpy(hi2, id->b, CF_ID_LEN);
            memset(hi2 + CF_ID_LEN, 0xff, sizeof hi2 - CF_ID_LEN);
            /* Records are counted for the report. */
            struct cf_iter it;
            cf_iter_open(s, (enum cf_cf)cf, lo, sizeof lo, &it);
            for (; cf_eiter_valid(it.it); cf_eiter_next(it.it))
                count++;
            st = cf_iter_status(&it);
            cf_iter_close(&it);
            cf_batch_delete_range(b, cf, (const char *)lo, sizeof lo, (const char *)hi2, sizeof hi2);
        }
    }
    if (st == CF_OK)
        st = delete_by_value(s, CF_CF_SESSIONS, id, b, &count);
    if (st == CF_OK)
        st = delete_by_value(s, CF_CF_SHARE_TOKENS, id, b, &count);
    if (st == CF_OK)
        st = delete_by_value(s, CF_CF_SHARE_ACCESS, id, b, &count);
    if (st == CF_OK)
        st = cf_db_write(s, b, true);
    cf_batch_free(b);

    /* 4. No live file keeps the wrapped keys; compaction drops the deleted ranges over time. */
    if (st == CF_OK)
        st = shred_old_keys(s);
    if (st == CF_OK) {
        for (int cf = 0; cf < CF_CF_COUNT; cf++)
            if (tenant_prefixed((enum cf_cf)cf) && cf != CF_CF_CHUNKS)
                cf_eng_compact(s->eng, (unsigned)cf, lo, sizeof lo, NULL, 0, false);
    }
    if (out_keys != NULL)
        *out_keys = count;
    return st;
}

/* ---- following other nodes' key changes (cluster mode, issue 24) ---------------------------- */

/* Another node may rotate a tenant's content key or destroy the tenant. The change feed tells this
 * process which tenants' keys changed (cf_tkeys_follow, from cf_store_catch_up: memory only); the
 * entry is reloaded on its next use (tkeys_refresh, from cf_tkeys_get, cf_dek_wrap and cf_dek_unwrap),
 * in place, as a local rotation or deletion changes it: the content-key generations are replaced under
 * tk_lock, a destroyed tenant's entry is marked dead and its keys overwritten with random bytes. The
 * entry never moves, so pointers handed out stay valid (an operation under way with a destroyed
 * tenant's subkeys seals or opens garbage, as after a local deletion). The record, index and share-code
 * subkeys never change while a tenant exists (a master-key rotation only rewraps the tenant key), so
 * only the generations are reloaded. Reloads are serialised (reload_lock): a thread that finds an
 * entry stale waits for a reload under way instead of using the old generations (a wrap under a
 * generation another node is retiring would be lost with it). */
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;

static void mark_stale(struct cf_store *s, const struct cf_id *tenant)
{
    atomic_fetch_add(&marks, 1);
    pthread_rwlock_rdlock(&s->tk_lock);
    for (size_t i = 0; i < s->ntk; i++)
        if (tenant == NULL || cf_id_equal(&s->tk[i]->tenant, tenant))
            atomic_fetch_add(&s->tk[i]->stale, 1);
    pthread_rwlock_unlock(&s->tk_lock);
}

void cf_tkeys_follow(struct cf_store *s, enum cf_batch_op op, unsigned ks, const uint8_t *k, size_t kl,
                     const uint8_t *v, size_t vl)
{
    if (ks != CF_CF_KEYS)
        return;
    struct cf_id t;
    if (op == CF_BATCH_PUT && ((kl == 1 + CF_ID_LEN && k[0] == 't') || (kl == 6 && memcmp(k, "global", 6) == 0)))
        return; /* a new tenant, or a master-key rotation: the subkeys in memory stay what they are */
    if (op != CF_BATCH_DELETE_RANGE && (kl == 1 + CF_ID_LEN || kl == GEN_KEY_LEN) && (k[0] == 't' || k[0] == 'c')) {
        memcpy(t.b, k + 1, CF_ID_LEN); /* a tenant key deleted, a generation added or retired */
        mark_stale(s, &t);
    } else if (op == CF_BATCH_DELETE_RANGE && kl >= 1 + CF_ID_LEN && vl >= 1 + CF_ID_LEN && k[0] == 'c' &&
               memcmp(k, v, 1 + CF_ID_LEN) == 0) {
        memcpy(t.b, k + 1, CF_ID_LEN); /* one tenant's generations (its deletion) */
        mark_stale(s, &t);
    } else {
        mark_stale(s, NULL); /* anything else: every tenant, to be safe */
    }
}

void cf_tkeys_lost(struct cf_store *s)
{
    mark_stale(s, NULL);
}


/* Reads tk's state from the store and puts it in place. */
static enum cf_status tkeys_reload(struct cf_store *s, struct cf_tkeys *tk)
{
    uint8_t key[1 + CF_ID_LEN];
    char *val = NULL;
    size_t vlen;
    keys_key(&tk->tenant, key);
    enum cf_status st = cf_db_get(s, CF_CF_KEYS, key, sizeof key, &val, &vlen);
    cf_eng_free(val);
    if (st == CF_ENOTFOUND) {
        pthread_rwlock_wrlock(&s->tk_lock);
        tkeys_kill(tk);
        pthread_rwlock_unlock(&s->tk_lock);
        return CF_OK;
    }
    if (st != CF_OK)
        return st;
    struct cf_tkeys *fresh = cf_xcalloc(1, sizeof *fresh);
    fresh->tenant = tk->tenant;
    pthread_rwlock_rdlock(&s->tk_lock);
    fresh->gens[0] = tk->gens[0]; /* derived from the tenant key; load_gens retires it if the store says so */
    pthread_rwlock_unlock(&s->tk_lock);
    fresh->ngens = 1;
    if ((st = load_gens(s, fresh)) == CF_OK) {
        pthread_rwlock_wrlock(&s->tk_lock);
        for (size_t i = 0; i < tk->ngens; i++)
            cf_key_wipe(&tk->gens[i].key);
        memcpy(tk->gens, fresh->gens, sizeof tk->gens);
        tk->ngens = fresh->ngens;
        tk->cur = fresh->cur;
        pthread_rwlock_unlock(&s->tk_lock);
    }
    cf_free_secret(fresh, sizeof *fresh);
    return st;
}

/* CF_OK (tk current), CF_ENOTFOUND (the tenant is gone), or the store's error (tk stays stale: the
 * next use tries again). */
static enum cf_status tkeys_refresh(struct cf_store *s, const struct cf_tkeys *ctk)
{
    struct cf_tkeys *tk = (struct cf_tkeys *)ctk; /* ours to change, under tk_lock */
    if (atomic_load(&tk->stale) == atomic_load(&tk->fresh))
        return CF_OK; /* the common case: two loads (the callers check dead under tk_lock) */
    enum cf_status st = CF_OK;
    pthread_mutex_lock(&reload_lock);
    uint32_t want = atomic_load(&tk->stale);
    pthread_rwlock_rdlock(&s->tk_lock);
    bool dead = tk->dead;
    pthread_rwlock_unlock(&s->tk_lock);
    if (want != atomic_load(&tk->fresh) && !dead)
        st = tkeys_reload(s, tk);
    if (st == CF_OK)
        atomic_store(&tk->fresh, want);
    pthread_mutex_unlock(&reload_lock);
    if (st != CF_OK)
        return st;
    pthread_rwlock_rdlock(&s->tk_lock);
    dead = tk->dead;
    pthread_rwlock_unlock(&s->tk_lock);
    return dead ? CF_ENOTFOUND : CF_OK;
}
