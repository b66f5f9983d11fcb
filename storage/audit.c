/*
 * audit.c: the provenance log, a per-tenant hash chain.
 *
 *   audit        T ‖ seq:u64 → mac:32 ‖ sealed record {json, at, node?, actor?, began?}
 *   audit_index  T ‖ 'n' ‖ node ‖ seq → ""          events about a node
 *                T ‖ 'a' ‖ kind:u8 ‖ actor ‖ seq → ""   events by an actor
 *                T ‖ 'e' ‖ began:u64 → end:u64      the end record of a transfer
 *   audit_meta   T ‖ 'h' → seq:u64 ‖ mac:32 ‖ HMAC(key, "head" ‖ T ‖ seq ‖ mac)
 *                T ‖ 'c' → sealed {first seq kept, MAC of the event before it}   (retention)
 *
 * Chain: key_T = HMAC(global audit key, "audit-chain\0" ‖ T), where the global audit key is an HKDF
 * subkey of the global key (itself wrapped by the master key): forging a MAC needs the master key.
 *   mac_0 = HMAC(key_T, "genesis" ‖ T)
 *   mac_n = HMAC(key_T, mac_{n-1} ‖ T ‖ n ‖ SHA-256(sealed record n))
 * A changed event breaks its seal and its MAC; a deleted or inserted event breaks the sequence;
 * swapped events break both (the seal's additional data is the key); a truncated tail disagrees with
 * the head, which is itself MAC'ed. Sequence numbers are per tenant, from 1, without gaps.
 *
 * Appends run under audit_lock and write one synchronous batch for any number of events and
 * tenants, so concurrent callers share one fsync (the writer in src/audit.c batches them).
 *
 * Several nodes on one store (cluster mode, cf_eng_multiwriter): audit_lock is a cluster lock (the
 * mutex, then CF_ENG_LOCK_AUDIT in the database), and the in-memory heads are only a cache of what
 * this process wrote: taking the lock forgets them, so each append reads its tenants' heads from the
 * store, and events from every node form one chain per tenant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

enum { ATAG_JSON = 1, ATAG_AT = 2, ATAG_NODE = 3, ATAG_ACTOR = 4, ATAG_BEGAN = 5 };
#define EVKEY_LEN 24
#define VAL_MIN (32 + CF_SEAL_OVERHEAD + 1)

static void ev_key(const struct cf_id *t, uint64_t seq, uint8_t key[EVKEY_LEN])
{
    memcpy(key, t->b, CF_ID_LEN);
    cf_put_be64(key + 16, seq);
}

static void chain_key(struct cf_store *s, const struct cf_id *t, struct cf_key *out)
{
    cf_hmac2_sha256(&s->global_audit, "audit-chain", 12, t->b, CF_ID_LEN, out->k);
}

static void genesis(const struct cf_key *k, const struct cf_id *t, uint8_t out[32])
{
    cf_hmac2_sha256(k, "genesis", 7, t->b, CF_ID_LEN, out);
}

static void chain_mac(const struct cf_key *k, const uint8_t prev[32], const struct cf_id *t, uint64_t seq,
                      const uint8_t *sealed, size_t n, uint8_t out[32])
{
    uint8_t msg[32 + 16 + 8 + 32];
    memcpy(msg, prev, 32);
    memcpy(msg + 32, t->b, CF_ID_LEN);
    cf_put_be64(msg + 48, seq);
    cf_sha256(sealed, n, msg + 56);
    cf_hmac_sha256(k, msg, sizeof msg, out);
}

static void head_mac(const struct cf_key *k, const struct cf_id *t, uint64_t seq, const uint8_t mac[32],
                     uint8_t out[32])
{
    uint8_t msg[4 + 16 + 8 + 32];
    memcpy(msg, "head", 4);
    memcpy(msg + 4, t->b, CF_ID_LEN);
    cf_put_be64(msg + 20, seq);
    memcpy(msg + 28, mac, 32);
    cf_hmac_sha256(k, msg, sizeof msg, out);
}

static void meta_key(const struct cf_id *t, char kind, uint8_t key[17])
{
    memcpy(key, t->b, CF_ID_LEN);
    key[16] = (uint8_t)kind;
}

/* Reads the stored head of t: seq 0 and the genesis MAC when the chain is empty. */
static enum cf_status head_read(struct cf_store *s, const struct cf_id *t, const struct cf_key *k, uint64_t *seq,
                                uint8_t mac[32])
{
    uint8_t key[17], want[32];
    char *val;
    size_t vlen;
    meta_key(t, 'h', key);
    enum cf_status st = cf_db_get(s, CF_CF_AUDIT_META, key, sizeof key, &val, &vlen);
    if (st == CF_ENOTFOUND) {
        *seq = 0;
        genesis(k, t, mac);
        return CF_OK;
    }
    if (st != CF_OK)
        return st;
    if (vlen != 72) {
        free(val);
        return CF_ECORRUPT;
    }
    *seq = cf_get_be64((const uint8_t *)val);
    memcpy(mac, val + 8, 32);
    head_mac(k, t, *seq, mac, want);
    bool ok = cf_ct_equal(want, val + 40, 32);
    free(val);
    return ok ? CF_OK : CF_ECORRUPT;
}

/* The in-memory head of t (loaded on first use). Caller holds audit_lock. */
static enum cf_status head_get(struct cf_store *s, const struct cf_id *t, struct cf_audit_head **out)
{
    for (size_t i = 0; i < s->naudit_heads; i++)
        if (cf_id_equal(&s->audit_heads[i].tenant, t)) {
            *out = &s->audit_heads[i];
            return CF_OK;
        }
    struct cf_audit_head h = {.tenant = *t};
    chain_key(s, t, &h.key);
    enum cf_status st = head_read(s, t, &h.key, &h.seq, h.mac);
    if (st != CF_OK) {
        cf_key_wipe(&h.key);
        if (st == CF_ECORRUPT)
            cf_storage_log(CF_LOG_ERROR, "storage: the provenance head of a tenant does not verify");
        return st;
    }
    s->audit_heads = cf_xrealloc(s->audit_heads, (s->naudit_heads + 1) * sizeof *s->audit_heads);
    s->audit_heads[s->naudit_heads] = h;
    *out = &s->audit_heads[s->naudit_heads++];
    return CF_OK;
}

/* audit_lock as a cluster lock (the header). A lock not taken in the database makes the engine refuse
 * this thread's writes until the unlock: the append then fails (503), it never forks the chain. */
static void audit_lock(struct cf_store *s)
{
    pthread_mutex_lock(&s->audit_lock);
    char *err = NULL;
    if (cf_eng_lock(s->eng, CF_ENG_LOCK_AUDIT, &err) != CF_ENG_OK && cf_db_error("taking the provenance lock", err)) {
        /* logged; the append's write is refused (503) */
    }
    if (cf_eng_multiwriter(s->eng)) {
        for (size_t i = 0; i < s->naudit_heads; i++)
            cf_key_wipe(&s->audit_heads[i].key);
        s->naudit_heads = 0; /* other nodes may have appended: read the heads again */
    }
}

static void audit_unlock(struct cf_store *s)
{
    cf_eng_unlock(s->eng, CF_ENG_LOCK_AUDIT);
    pthread_mutex_unlock(&s->audit_lock);
}

static size_t record_aad(const uint8_t key[EVKEY_LEN], uint8_t aad[6 + EVKEY_LEN])
{
    memcpy(aad, "audit", 6); /* the column family name and its NUL, as cf_seal_batch_put does */
    memcpy(aad + 6, key, EVKEY_LEN);
    return 6 + EVKEY_LEN;
}

enum cf_status cf_audit_append(struct cf_store *s, const struct cf_audit_rec *recs, size_t n, uint64_t *seqs)
{
    enum cf_status st = CF_OK;
    audit_lock(s);
    /* Work on copies of the heads; publish them only once the batch is durable. */
    size_t saved_cap = s->naudit_heads + n + 1;
    struct cf_audit_head *saved = cf_xmalloc(saved_cap * sizeof *saved);
    size_t nsaved = 0;
    struct cf_batch *b = cf_batch_new(s->eng);
    for (size_t i = 0; i < n && st == CF_OK; i++) {
        const struct cf_audit_rec *r = &recs[i];
        const struct cf_tkeys *tk;
        struct cf_audit_head *h;
        if ((st = cf_tkeys_get(s, &r->tenant, &tk)) != CF_OK || (st = head_get(s, &r->tenant, &h)) != CF_OK)
            break;
        bool have = false;
        for (size_t k = 0; k < nsaved; k++)
            have = have || cf_id_equal(&saved[k].tenant, &r->tenant);
        if (!have)
            saved[nsaved++] = *h;
        uint64_t seq = h->seq + 1;
        uint8_t key[EVKEY_LEN], aad[6 + EVKEY_LEN];
        ev_key(&r->tenant, seq, key);
        struct cf_rec_w w;
        cf_rec_w_init(&w);
        cf_rec_put_bytes(&w, ATAG_JSON, r->json, r->len);
        cf_rec_put_u64(&w, ATAG_AT, r->at);
        if (r->has_node)
            cf_rec_put_id(&w, ATAG_NODE, &r->node);
        if (r->actor_kind != 0) {
            uint8_t a[17];
            a[0] = r->actor_kind;
            memcpy(a + 1, r->actor.b, CF_ID_LEN);
            cf_rec_put_bytes(&w, ATAG_ACTOR, a, sizeof a);
        }
        if (r->began != 0)
            cf_rec_put_u64(&w, ATAG_BEGAN, r->began);
        size_t vlen = 32 + w.len + CF_SEAL_OVERHEAD;
        uint8_t *val = cf_xmalloc(vlen);
        size_t alen = record_aad(key, aad);
        st = cf_aead_seal(&tk->record, aad, alen, w.buf, w.len, val + 32);
        cf_rec_w_free(&w);
        if (st != CF_OK) {
            free(val);
            break;
        }
        chain_mac(&h->key, h->mac, &r->tenant, seq, val + 32, vlen - 32, val);
        cf_batch_put(b, CF_CF_AUDIT, (const char *)key, sizeof key, (const char *)val, vlen);
        /* indexes */
        uint8_t ik[16 + 1 + 1 + 16 + 8];
        if (r->has_node) {
            memcpy(ik, r->tenant.b, 16);
            ik[16] = 'n';
            memcpy(ik + 17, r->node.b, 16);
            cf_put_be64(ik + 33, seq);
            cf_batch_put(b, CF_CF_AUDIT_INDEX, (const char *)ik, 41, "", 0);
        }
        if (r->actor_kind != 0) {
            memcpy(ik, r->tenant.b, 16);
            ik[16] = 'a';
            ik[17] = r->actor_kind;
            memcpy(ik + 18, r->actor.b, 16);
            cf_put_be64(ik + 34, seq);
            cf_batch_put(b, CF_CF_AUDIT_INDEX, (const char *)ik, 42, "", 0);
        }
        if (r->began != 0) {
            uint8_t ek[25], ev[8];
            memcpy(ek, r->tenant.b, 16);
            ek[16] = 'e';
            cf_put_be64(ek + 17, r->began);
            cf_put_be64(ev, seq);
            cf_batch_put(b, CF_CF_AUDIT_INDEX, (const char *)ek, sizeof ek, (const char *)ev, 8);
        }
        h->seq = seq;
        memcpy(h->mac, val, 32);
        free(val);
        seqs[i] = seq;
    }
    /* Each touched tenant's head, once per batch (a write batch does not merge puts to one key: a
     * put per event would leave a memtable entry per event). */
    for (size_t k = 0; k < nsaved && st == CF_OK; k++) {
        struct cf_audit_head *h;
        if ((st = head_get(s, &saved[k].tenant, &h)) != CF_OK)
            break;
        uint8_t hk[17], hv[72];
        meta_key(&h->tenant, 'h', hk);
        cf_put_be64(hv, h->seq);
        memcpy(hv + 8, h->mac, 32);
        head_mac(&h->key, &h->tenant, h->seq, h->mac, hv + 40);
        cf_batch_put(b, CF_CF_AUDIT_META, (const char *)hk, sizeof hk, (const char *)hv, sizeof hv);
    }
    if (st == CF_OK)
        st = cf_db_write(s, b, true);
    if (st != CF_OK) {
        /* Nothing was written: put the heads back as they were. */
        for (size_t k = 0; k < nsaved; k++)
            for (size_t i = 0; i < s->naudit_heads; i++)
                if (cf_id_equal(&s->audit_heads[i].tenant, &saved[k].tenant))
                    s->audit_heads[i] = saved[k];
    }
    cf_batch_free(b);
    cf_wipe(saved, saved_cap * sizeof *saved);
    free(saved);
    audit_unlock(s);
    return st;
}

void cf_audit_event_clear(struct cf_audit_event *e)
{
    if (e == NULL)
        return;
    free(e->json);
    memset(e, 0, sizeof *e);
}

/* Decodes a stored value into e (and the record's fields the caller asks for). */
static enum cf_status decode(const struct cf_tkeys *tk, const uint8_t key[EVKEY_LEN], const uint8_t *val, size_t vlen,
                             struct cf_audit_event *e, uint64_t *at, struct cf_id *node, bool *has_node,
                             uint8_t *actor)
{
    uint8_t *pt;
    size_t ptlen;
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    if (vlen < VAL_MIN)
        return CF_ECORRUPT;
    enum cf_status st = cf_unseal(CF_CF_AUDIT, &tk->record, key, EVKEY_LEN, val + 32, vlen - 32, &pt, &ptlen);
    if (st != CF_OK)
        return st;
    memset(e, 0, sizeof *e);
    e->seq = cf_get_be64(key + 16);
    memcpy(e->mac, val, 32);
    if (has_node != NULL)
        *has_node = false;
    if ((st = cf_rec_r_init(&r, pt, ptlen)) != CF_OK)
        goto out;
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        if (tag == ATAG_JSON) {
            free(e->json);
            e->json = cf_xstrndup((const char *)v, vl);
        } else if (tag == ATAG_AT && at != NULL) {
            st = cf_rec_u64(v, vl, at);
        } else if (tag == ATAG_NODE && node != NULL) {
            st = cf_rec_id(v, vl, node);
            if (has_node != NULL)
                *has_node = true;
        } else if (tag == ATAG_ACTOR && actor != NULL) {
            if (vl != 17)
                st = CF_ECORRUPT;
            else
                memcpy(actor, v, 17);
        }
        if (st != CF_OK)
            break;
    }
    st = st == CF_ENOTFOUND && e->json != NULL ? CF_OK : CF_ECORRUPT;
out:
    cf_free_secret(pt, ptlen);
    if (st != CF_OK)
        cf_audit_event_clear(e);
    return st;
}

enum cf_status cf_audit_get(struct cf_store *s, const struct cf_id *tenant, uint64_t seq, struct cf_audit_event *out)
{
    const struct cf_tkeys *tk;
    uint8_t key[EVKEY_LEN];
    char *val;
    size_t vlen;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    ev_key(tenant, seq, key);
    enum cf_status st = cf_db_get(s, CF_CF_AUDIT, key, sizeof key, &val, &vlen);
    if (st != CF_OK)
        return st;
    st = decode(tk, key, (const uint8_t *)val, vlen, out, NULL, NULL, NULL, NULL);
    free(val);
    return st;
}

enum cf_status cf_audit_end_of(struct cf_store *s, const struct cf_id *tenant, uint64_t began,
                               struct cf_audit_event *out)
{
    uint8_t ek[25];
    char *val;
    size_t vlen;
    memcpy(ek, tenant->b, 16);
    ek[16] = 'e';
    cf_put_be64(ek + 17, began);
    enum cf_status st = cf_db_get(s, CF_CF_AUDIT_INDEX, ek, sizeof ek, &val, &vlen);
    if (st != CF_OK)
        return st;
    uint64_t end = vlen == 8 ? cf_get_be64((const uint8_t *)val) : 0;
    free(val);
    if (end == 0)
        return CF_ECORRUPT;
    return cf_audit_get(s, tenant, end, out);
}

enum cf_status cf_audit_scan(struct cf_store *s, const struct cf_id *tenant, enum cf_audit_by by, uint8_t kind,
                             const struct cf_id *id, uint64_t before, size_t max_scan,
                             bool (*fn)(void *ctx, const struct cf_audit_event *e), void *ctx, uint64_t *next)
{
    const struct cf_tkeys *tk;
    uint8_t prefix[34], seek[42];
    size_t plen;
    enum cf_cf cf = by == CF_AUDIT_ALL ? CF_CF_AUDIT : CF_CF_AUDIT_INDEX;
    *next = 0;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    memcpy(prefix, tenant->b, 16);
    plen = 16;
    if (by == CF_AUDIT_BY_NODE) {
        prefix[16] = 'n';
        memcpy(prefix + 17, id->b, 16);
        plen = 33;
    } else if (by == CF_AUDIT_BY_ACTOR) {
        prefix[16] = 'a';
        prefix[17] = kind;
        memcpy(prefix + 18, id->b, 16);
        plen = 34;
    }
    /* Upper bound: the prefix followed by seq (before) or, from the newest, by 0xff…ff. */
    memcpy(seek, prefix, plen);
    cf_put_be64(seek + plen, before != 0 ? before - 1 : UINT64_MAX);
    struct cf_eiter *it = cf_eiter_open(s->eng, cf, prefix, plen, NULL, 0);
    cf_eiter_seek_for_prev(it, (const char *)seek, plen + 8);
    enum cf_status st = CF_OK;
    size_t scanned = 0;
    uint64_t last = 0;
    for (; cf_eiter_valid(it); cf_eiter_prev(it)) {
        size_t kl, vl;
        const char *k = cf_eiter_key(it, &kl);
        if (kl != plen + 8 || memcmp(k, prefix, plen) != 0)
            break;
        uint64_t seq = cf_get_be64((const uint8_t *)k + plen);
        if (scanned == max_scan) {
            *next = last; /* more remain below last */
            break;
        }
        struct cf_audit_event e;
        if (by == CF_AUDIT_ALL) {
            const char *v = cf_eiter_value(it, &vl);
            st = decode(tk, (const uint8_t *)k, (const uint8_t *)v, vl, &e, NULL, NULL, NULL, NULL);
        } else {
            st = cf_audit_get(s, tenant, seq, &e);
            if (st == CF_ENOTFOUND) {
                st = CF_OK; /* an index entry of a purged event */
                last = seq;
                scanned++;
                continue;
            }
        }
        if (st != CF_OK)
            break;
        scanned++;
        last = seq;
        bool more = fn(ctx, &e);
        cf_audit_event_clear(&e);
        if (!more) {
            *next = seq;
            break;
        }
    }
    if (st == CF_OK) {
        char *err = NULL;
        if (cf_eiter_status(it, &err) != CF_ENG_OK) {
            cf_storage_log(CF_LOG_ERROR, "storage: audit scan: %s", err);
            cf_eng_free(err);
            st = CF_EIO;
        }
    }
    cf_eiter_close(it);
    return st;
}

/* ---- retention checkpoint ----------------------------------------------------------------------- */

enum { CTAG_FIRST = 1, CTAG_PREV = 2 };

static enum cf_status checkpoint_read(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *t,
                                      uint64_t *first, uint8_t prev[32], bool *have)
{
    uint8_t key[17], *pt;
    size_t ptlen;
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    meta_key(t, 'c', key);
    *have = false;
    enum cf_status st = cf_get_sealed(s, CF_CF_AUDIT_META, &tk->record, key, sizeof key, &pt, &ptlen);
    if (st == CF_ENOTFOUND)
        return CF_OK;
    if (st != CF_OK)
        return st;
    bool f = false, p = false;
    if ((st = cf_rec_r_init(&r, pt, ptlen)) == CF_OK) {
        while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
            if (tag == CTAG_FIRST) {
                st = cf_rec_u64(v, vl, first);
                f = true;
            } else if (tag == CTAG_PREV) {
                if (vl != 32)
                    st = CF_ECORRUPT;
                else
                    memcpy(prev, v, 32);
                p = true;
            }
            if (st != CF_OK)
                break;
        }
        st = st == CF_ENOTFOUND && f && p ? CF_OK : CF_ECORRUPT;
    }
    cf_free_secret(pt, ptlen);
    *have = st == CF_OK;
    return st;
}

enum cf_status cf_audit_verify(struct cf_store *s, const struct cf_id *tenant, uint64_t *count, uint64_t *bad_seq,
                               const char **why)
{
    const struct cf_tkeys *tk;
    struct cf_key k;
    uint8_t prev[32], mac[32];
    uint64_t expect = 1, head_seq;
    bool have_cp;
    *count = 0;
    *bad_seq = 0;
    *why = NULL;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    chain_key(s, tenant, &k);
    genesis(&k, tenant, prev);
    enum cf_status st = checkpoint_read(s, tk, tenant, &expect, prev, &have_cp);
    if (st != CF_OK) {
        *why = "the retention checkpoint does not verify";
        goto out;
    }
    if (!have_cp)
        expect = 1;
    uint8_t hprev[32];
    if ((st = head_read(s, tenant, &k, &head_seq, hprev)) != CF_OK) {
        *why = "the chain head does not verify";
        goto out;
    }
    struct cf_iter it;
    cf_iter_open(s, CF_CF_AUDIT, tenant->b, CF_ID_LEN, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl;
        const char *key = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        if (kl != EVKEY_LEN) {
            st = CF_ECORRUPT;
            *why = "a key of the wrong length";
            break;
        }
        uint64_t seq = cf_get_be64((const uint8_t *)key + 16);
        if (seq != expect) {
            st = CF_ECORRUPT;
            *bad_seq = seq < expect ? seq : expect;
            *why = seq < expect ? "an event older than the retention checkpoint (inserted)"
                                : "an event is missing (deleted, or the sequence was tampered with)";
            break;
        }
        if (vl < VAL_MIN) {
            st = CF_ECORRUPT;
            *bad_seq = seq;
            *why = "the event is truncated";
            break;
        }
        chain_mac(&k, prev, tenant, seq, (const uint8_t *)v + 32, vl - 32, mac);
        if (!cf_ct_equal(mac, v, 32)) {
            st = CF_ECORRUPT;
            *bad_seq = seq;
            *why = "the chain MAC does not match (altered, swapped or reordered)";
            break;
        }
        struct cf_audit_event e;
        if (decode(tk, (const uint8_t *)key, (const uint8_t *)v, vl, &e, NULL, NULL, NULL, NULL) != CF_OK) {
            st = CF_ECORRUPT;
            *bad_seq = seq;
            *why = "the event's seal does not open (altered)";
            break;
        }
        cf_audit_event_clear(&e);
        memcpy(prev, mac, 32);
        expect++;
        (*count)++;
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    if (st == CF_OK && (head_seq != expect - 1 || !cf_ct_equal(hprev, prev, 32))) {
        st = CF_ECORRUPT;
        *bad_seq = expect;
        *why = head_seq > expect - 1 ? "events at the end of the log are missing (truncated)"
                                     : "the chain head does not match the last event";
    }
out:
    cf_key_wipe(&k);
    return st;
}

enum cf_status cf_audit_head_seq(struct cf_store *s, const struct cf_id *tenant, uint64_t *seq)
{
    struct cf_key k;
    uint8_t mac[32];
    chain_key(s, tenant, &k);
    enum cf_status st = head_read(s, tenant, &k, seq, mac);
    cf_key_wipe(&k);
    return st;
}

enum cf_status cf_audit_purge_before(struct cf_store *s, const struct cf_id *tenant, uint64_t cutoff_ms,
                                     uint64_t *purged)
{
    const struct cf_tkeys *tk;
    struct cf_iter it;
    uint64_t last_seq = 0;
    uint8_t last_mac[32];
    *purged = 0;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    audit_lock(s);
    struct cf_batch *b = cf_batch_new(s->eng);
    enum cf_status st = CF_OK;
    cf_iter_open(s, CF_CF_AUDIT, tenant->b, CF_ID_LEN, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl;
        const char *key = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        struct cf_audit_event e;
        uint64_t at = 0;
        struct cf_id node;
        bool has_node;
        uint8_t actor[17] = {0};
        if (kl != EVKEY_LEN) {
            st = CF_ECORRUPT;
            break;
        }
        if ((st = decode(tk, (const uint8_t *)key, (const uint8_t *)v, vl, &e, &at, &node, &has_node, actor)) != CF_OK)
            break;
        cf_audit_event_clear(&e);
        if (at >= cutoff_ms)
            break; /* events are appended in time order: everything from here on is kept */
        uint64_t seq = cf_get_be64((const uint8_t *)key + 16);
        cf_batch_delete(b, CF_CF_AUDIT, key, kl);
        uint8_t ik[42];
        if (has_node) {
            memcpy(ik, tenant->b, 16);
            ik[16] = 'n';
            memcpy(ik + 17, node.b, 16);
            cf_put_be64(ik + 33, seq);
            cf_batch_delete(b, CF_CF_AUDIT_INDEX, (const char *)ik, 41);
        }
        if (actor[0] != 0) {
            memcpy(ik, tenant->b, 16);
            ik[16] = 'a';
            memcpy(ik + 17, actor, 17);
            cf_put_be64(ik + 34, seq);
            cf_batch_delete(b, CF_CF_AUDIT_INDEX, (const char *)ik, 42);
        }
        uint8_t ek[25];
        memcpy(ek, tenant->b, 16);
        ek[16] = 'e';
        cf_put_be64(ek + 17, seq);
        cf_batch_delete(b, CF_CF_AUDIT_INDEX, (const char *)ek, sizeof ek);
        last_seq = seq;
        memcpy(last_mac, v, 32);
        (*purged)++;
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    if (st == CF_OK && last_seq != 0) {
        /* The checkpoint: verification resumes at last_seq + 1 from the MAC of last_seq. */
        uint8_t key[17];
        struct cf_rec_w w;
        meta_key(tenant, 'c', key);
        cf_rec_w_init(&w);
        cf_rec_put_u64(&w, CTAG_FIRST, last_seq + 1);
        cf_rec_put_bytes(&w, CTAG_PREV, last_mac, 32);
        cf_seal_batch_put(b, s, CF_CF_AUDIT_META, &tk->record, key, sizeof key, &w, NULL, 0);
        cf_rec_w_free(&w);
        st = cf_db_write(s, b, true);
    }
    cf_batch_free(b);
    audit_unlock(s);
    if (st != CF_OK)
        *purged = 0;
    return st;
}
