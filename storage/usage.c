/*
 * usage.c: the bytes each user and each tenant hold, for quotas (issue 21; policy user_quota_bytes
 * and tenant_quota_bytes).
 *
 * What counts: the size of the current version of every file record that exists, live or in the
 * trash, charged to the file's owner (its creator: cf_node.owner) and to its tenant. Old versions do
 * not count (their lifetime is the tenant's version_retention, not the user's choice, and a new
 * version written by someone else would otherwise charge the owner twice); trashed files do, until
 * they are purged (else trashing would be a way round the quota; the trash empties itself after
 * trash_retention). docs/API.md "Quotas" says the same.
 *
 * Format (column family "uploads", beside the upload accounting, so that no column family is added:
 * the journal numbers them):
 *   key  T ‖ 'q' ‖ user        (33 bytes; user all zero: the tenant's total)
 *   val  sealed record (tenant record key): bytes:u64 (tag 1)
 * Counters change only in the batch that changes what they count (cf_usage_batch: the commit of a
 * new file or version, a purge), under the namespace lock, so they never disagree with the nodes
 * after a crash. A tenant without its total counter (a store from before quotas) has its counters
 * computed from its node records at the first change, in that change's batch; until then reads
 * compute them on the fly. cf_usage_verify (coffer fsck) recomputes every counter and names the
 * ones that differ.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "usage.h"

enum { UTAG_BYTES = 1 };

static void usage_key(const struct cf_id *tenant, const struct cf_id *user, uint8_t key[33])
{
    memcpy(key, tenant->b, CF_ID_LEN);
    key[16] = 'q';
    if (user != NULL)
        memcpy(key + 17, user->b, CF_ID_LEN);
    else
        memset(key + 17, 0, CF_ID_LEN);
}

/* The stored counter of user (NULL: the tenant); CF_ENOTFOUND if none is stored. */
static enum cf_status counter_read(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *user,
                                   uint64_t *bytes)
{
    uint8_t key[33], *pt;
    size_t ptlen;
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    bool have = false;
    usage_key(&tk->tenant, user, key);
    enum cf_status st = cf_get_sealed(s, CF_CF_UPLOADS, &tk->record, key, sizeof key, &pt, &ptlen);
    if (st != CF_OK)
        return st;
    *bytes = 0;
    if ((st = cf_rec_r_init(&r, pt, ptlen)) == CF_OK) {
        while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK)
            if (tag == UTAG_BYTES) {
                if ((st = cf_rec_u64(v, vl, bytes)) != CF_OK)
                    break;
                have = true;
            }
        if (st == CF_ENOTFOUND)
            st = have ? CF_OK : CF_ECORRUPT;
    }
    cf_free_secret(pt, ptlen);
    return st;
}

static void counter_put(struct cf_batch *b, struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *user,
                        uint64_t bytes)
{
    uint8_t key[33];
    struct cf_rec_w w;
    cf_rec_w_init(&w);
    cf_rec_put_u64(&w, UTAG_BYTES, bytes);
    usage_key(&tk->tenant, user, key);
    cf_seal_batch_put(b, s, CF_CF_UPLOADS, &tk->record, key, sizeof key, &w, NULL, 0);
    cf_rec_w_free(&w);
}

void cf_usage_delta_add(struct cf_usage_delta *d, const struct cf_id *owner, int64_t delta)
{
    d->total += delta;
    for (size_t i = 0; i < d->n; i++)
        if (cf_id_equal(&d->owner[i], owner)) {
            d->delta[i] += delta;
            return;
        }
    if (d->n == d->cap) {
        d->cap = d->cap != 0 ? d->cap * 2 : 8;
        d->owner = cf_xrealloc(d->owner, d->cap * sizeof *d->owner);
        d->delta = cf_xrealloc(d->delta, d->cap * sizeof *d->delta);
    }
    d->owner[d->n] = *owner;
    d->delta[d->n++] = delta;
}

void cf_usage_delta_clear(struct cf_usage_delta *d)
{
    free(d->owner);
    free(d->delta);
    memset(d, 0, sizeof *d);
}

/* Every counter of the tenant computed from its node records: the current size of each file, live
 * or trashed, per owner; d->total is the tenant's sum. */
static enum cf_status compute(struct cf_store *s, const struct cf_tkeys *tk, struct cf_usage_delta *d)
{
    struct cf_id *ids;
    size_t n;
    enum cf_status st = cf_id_suffixes(s, CF_CF_NODES, tk->tenant.b, CF_ID_LEN, NULL, NULL, &ids, &n);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; i < n && st == CF_OK; i++) {
        struct cf_node node;
        st = cf_node_load(s, tk, &ids[i], &node);
        if (st == CF_ENOTFOUND) { /* deleted meanwhile (reads outside the lock) */
            st = CF_OK;
            continue;
        }
        if (st != CF_OK)
            break;
        if (node.type == CF_NODE_FILE)
            cf_usage_delta_add(d, &node.owner, (int64_t)node.size);
        cf_node_clear(&node);
    }
    free(ids);
    return st;
}

static uint64_t apply(uint64_t have, int64_t delta, bool *clamped)
{
    if (delta < 0 && (uint64_t)(-delta) > have) {
        *clamped = true;
        return 0;
    }
    return delta < 0 ? have - (uint64_t)(-delta) : have + (uint64_t)delta;
}

enum cf_status cf_usage_batch(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_usage_delta *d,
                              struct cf_batch *b)
{
    uint64_t total;
    bool clamped = false;
    enum cf_status st = counter_read(s, tk, NULL, &total);
    if (st == CF_ENOTFOUND) {
        /* First change in this tenant since quotas exist: its counters, from the nodes as they are
         * before this batch, written with it (a brand-new tenant has no file: all zero). */
        struct cf_usage_delta base = {0};
        if ((st = compute(s, tk, &base)) != CF_OK) {
            cf_usage_delta_clear(&base);
            return st;
        }
        for (size_t i = 0; i < base.n; i++) {
            int64_t extra = 0;
            for (size_t k = 0; k < d->n; k++)
                if (cf_id_equal(&d->owner[k], &base.owner[i]))
                    extra = d->delta[k];
            counter_put(b, s, tk, &base.owner[i], apply((uint64_t)base.delta[i], extra, &clamped));
        }
        for (size_t k = 0; k < d->n; k++) {
            bool known = false;
            for (size_t i = 0; i < base.n && !known; i++)
                known = cf_id_equal(&d->owner[k], &base.owner[i]);
            if (!known)
                counter_put(b, s, tk, &d->owner[k], apply(0, d->delta[k], &clamped));
        }
        counter_put(b, s, tk, NULL, apply((uint64_t)base.total, d->total, &clamped));
        cf_usage_delta_clear(&base);
    } else if (st == CF_OK) {
        for (size_t k = 0; k < d->n && st == CF_OK; k++) {
            uint64_t have = 0;
            st = counter_read(s, tk, &d->owner[k], &have);
            if (st == CF_ENOTFOUND)
                st = CF_OK;
            if (st == CF_OK && d->delta[k] != 0)
                counter_put(b, s, tk, &d->owner[k], apply(have, d->delta[k], &clamped));
        }
        if (st == CF_OK && d->total != 0)
            counter_put(b, s, tk, NULL, apply(total, d->total, &clamped));
    }
    if (clamped)
        cf_storage_log(CF_LOG_WARN, "storage: a usage counter would have gone below zero (kept at 0); "
                                    "coffer fsck recomputes the counters");
    return st;
}

/* The counters of user (may be NULL) and of the tenant, stored or computed. Call under ns_lock for
 * a decision that a write follows. */
enum cf_status cf_usage_read(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *user,
                             uint64_t *user_bytes, uint64_t *tenant_bytes)
{
    uint64_t total = 0, mine = 0;
    enum cf_status st = counter_read(s, tk, NULL, &total);
    if (st == CF_ENOTFOUND) {
        struct cf_usage_delta base = {0};
        if ((st = compute(s, tk, &base)) == CF_OK) {
            total = (uint64_t)base.total;
            for (size_t i = 0; user != NULL && i < base.n; i++)
                if (cf_id_equal(&base.owner[i], user))
                    mine = (uint64_t)base.delta[i];
        }
        cf_usage_delta_clear(&base);
    } else if (st == CF_OK && user != NULL) {
        st = counter_read(s, tk, user, &mine);
        if (st == CF_ENOTFOUND) {
            mine = 0;
            st = CF_OK;
        }
    }
    if (st != CF_OK)
        return st;
    if (user_bytes != NULL)
        *user_bytes = mine;
    if (tenant_bytes != NULL)
        *tenant_bytes = total;
    return CF_OK;
}

enum cf_status cf_usage_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                            uint64_t *user_bytes, uint64_t *tenant_bytes)
{
    const struct cf_tkeys *tk;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    return cf_usage_read(s, tk, user, user_bytes, tenant_bytes);
}

enum cf_status cf_quota_decide(const struct cf_quota *q, uint64_t user_used, uint64_t tenant_used, int64_t needed,
                               struct cf_quota_refusal *out)
{
    if (q == NULL || needed <= 0)
        return CF_OK;
    uint64_t need = (uint64_t)needed;
    struct cf_quota_refusal r = {0};
    if (q->user_bytes != 0 && (user_used > q->user_bytes || need > q->user_bytes - user_used))
        r = (struct cf_quota_refusal){.tenant = false, .quota = q->user_bytes, .used = user_used, .needed = need};
    else if (q->tenant_bytes != 0 && (tenant_used > q->tenant_bytes || need > q->tenant_bytes - tenant_used))
        r = (struct cf_quota_refusal){.tenant = true, .quota = q->tenant_bytes, .used = tenant_used, .needed = need};
    else
        return CF_OK;
    if (out != NULL)
        *out = r;
    return CF_EQUOTA;
}

enum cf_status cf_quota_check(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                              const struct cf_quota *q, uint64_t needed, struct cf_quota_refusal *out)
{
    uint64_t mine, total;
    if (q == NULL || (q->user_bytes == 0 && q->tenant_bytes == 0))
        return CF_OK;
    if (needed > INT64_MAX)
        needed = INT64_MAX;
    enum cf_status st = cf_usage_get(s, tenant, user, &mine, &total);
    if (st != CF_OK)
        return st;
    return cf_quota_decide(q, mine, total, (int64_t)needed, out);
}

enum cf_status cf_usage_verify(struct cf_store *s, const struct cf_id *tenant, bool repair, uint64_t *checked,
                               uint64_t *wrong)
{
    const struct cf_tkeys *tk;
    struct cf_usage_delta want = {0};
    *checked = *wrong = 0;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    cf_ns_lock(s);
    struct cf_batch *b = cf_batch_new(s->eng);
    uint64_t total;
    enum cf_status st = counter_read(s, tk, NULL, &total);
    if (st == CF_ENOTFOUND && !repair) { /* not kept yet (a store from before quotas): computed on use */
        cf_batch_free(b);
        cf_ns_unlock(s);
        return CF_OK;
    }
    st = compute(s, tk, &want);
    /* Every stored counter: those of users who own nothing any more must read 0. */
    uint8_t prefix[17];
    memcpy(prefix, tenant->b, CF_ID_LEN);
    prefix[16] = 'q';
    struct cf_id *users = NULL;
    size_t nusers = 0;
    if (st == CF_OK)
        st = cf_id_suffixes(s, CF_CF_UPLOADS, prefix, sizeof prefix, NULL, NULL, &users, &nusers);
    for (size_t i = 0; i < nusers && st == CF_OK; i++)
        if (!cf_id_is_zero(&users[i]))
            cf_usage_delta_add(&want, &users[i], 0);
    for (size_t i = 0; i <= want.n && st == CF_OK; i++) {
        const struct cf_id *who = i < want.n ? &want.owner[i] : NULL;
        uint64_t expect = i < want.n ? (uint64_t)want.delta[i] : (uint64_t)want.total, have = 0;
        bool present = true;
        st = counter_read(s, tk, who, &have);
        if (st == CF_ENOTFOUND) {
            present = false;
            st = CF_OK;
        }
        if (st != CF_OK)
            break;
        (*checked)++;
        /* An absent counter of a user is 0; an absent tenant total is computed on use. */
        if ((present || who != NULL) && have != expect) {
            (*wrong)++;
            if (repair)
                counter_put(b, s, tk, who, expect);
        }
    }
    if (st == CF_OK && repair && *wrong != 0)
        st = cf_db_write(s, b, true);
    cf_batch_free(b);
    cf_ns_unlock(s);
    free(users);
    cf_usage_delta_clear(&want);
    return st;
}
