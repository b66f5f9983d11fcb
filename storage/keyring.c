/*
 * keyring.c: tenant keys. A tenant key is 32 random bytes stored in the keys column family wrapped
 * by the KEK (AES-256-GCM, AAD = purpose label ‖ tenant id). It is unwrapped once, on first use, into
 * per-purpose subkeys (HKDF), after which the tenant key itself is wiped. The subkeys stay in memory
 * until the store closes; entries are never moved or removed while the store is open, so the
 * pointers handed out stay valid.
 */
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

static struct cf_tkeys *derive(const struct cf_id *tenant, const struct cf_key *tkey)
{
    struct cf_tkeys *tk = cf_xcalloc(1, sizeof *tk);
    tk->tenant = *tenant;
    if (cf_hkdf(tkey->k, sizeof tkey->k, "coffer/v1/tenant/record", &tk->record) != CF_OK ||
        cf_hkdf(tkey->k, sizeof tkey->k, "coffer/v1/tenant/index", &tk->index) != CF_OK ||
        cf_hkdf(tkey->k, sizeof tkey->k, "coffer/v1/tenant/dek", &tk->dek) != CF_OK ||
        cf_hkdf(tkey->k, sizeof tkey->k, "coffer/v1/tenant/share-code", &tk->code) != CF_OK) {
        cf_free_secret(tk, sizeof *tk);
        return NULL;
    }
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
static const struct cf_tkeys *insert(struct cf_store *s, struct cf_tkeys *tk)
{
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

enum cf_status cf_tkeys_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_tkeys **out)
{
    pthread_rwlock_rdlock(&s->tk_lock);
    const struct cf_tkeys *have = find_locked(s, tenant);
    pthread_rwlock_unlock(&s->tk_lock);
    if (have != NULL) {
        *out = have;
        return CF_OK;
    }

    uint8_t key[1 + CF_ID_LEN], aad[sizeof tenant_aad_label - 1 + CF_ID_LEN];
    char *val;
    size_t vlen;
    struct cf_key tkey;
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
    *out = insert(s, tk);
    return CF_OK;
}

const struct cf_tkeys *cf_tkeys_create(struct cf_store *s, const struct cf_id *tenant, rocksdb_writebatch_t *b)
{
    uint8_t key[1 + CF_ID_LEN], aad[sizeof tenant_aad_label - 1 + CF_ID_LEN];
    uint8_t wrapped[CF_KEY_LEN + CF_SEAL_OVERHEAD];
    struct cf_key tkey;
    cf_key_random(&tkey);
    tenant_aad(tenant, aad);
    keys_key(tenant, key);
    if (cf_aead_seal(&s->kek, aad, sizeof aad, tkey.k, sizeof tkey.k, wrapped) != CF_OK)
        abort(); /* see cf_seal_batch_put: never store a key unwrapped */
    rocksdb_writebatch_put_cf(b, s->cf[CF_CF_KEYS], (const char *)key, sizeof key, (const char *)wrapped,
                              sizeof wrapped);
    struct cf_tkeys *tk = derive(tenant, &tkey);
    cf_key_wipe(&tkey);
    if (tk == NULL)
        abort();
    return insert(s, tk);
}
