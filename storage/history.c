/*
 * history.c: per-user login history (the last CF_LOGINS_KEPT logins), known devices, and alerts.
 *
 * Layout (T = tenant id):
 *   logins   T ‖ user ‖ at:u64 ‖ rand:u32 → sealed {at, ip, user agent, result, new_device}
 *   devices  T ‖ user ‖ HMAC(index key, "device\0" ‖ fingerprint) → first_seen:u64
 *   alerts   T ‖ user ‖ at:u64 ‖ rand:u32 → sealed {id, at, kind, detail}
 * Keys sort by time, so the newest entries are at the end of each user's range; appends trim the
 * oldest beyond the kept count in the same batch.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define LOG_KEY_LEN 44

static void log_key(const struct cf_id *tenant, const struct cf_id *user, uint64_t at, uint8_t key[LOG_KEY_LEN])
{
    cf_key2(key, tenant, user);
    cf_put_be64(key + 32, at);
    cf_random(key + 40, 4); /* two events in the same millisecond get distinct keys */
}

/* Deletes into b the oldest keys of the range beyond keep (the new key is not in the db yet). */
static enum cf_status trim(struct cf_store *s, enum cf_cf cf, const uint8_t prefix[32], size_t keep,
                           struct cf_batch *b)
{
    struct cf_iter it;
    size_t total = 0;
    enum cf_status st;
    cf_iter_open(s, cf, prefix, 32, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it))
        total++;
    st = cf_iter_status(&it);
    cf_iter_close(&it);
    if (st != CF_OK || total + 1 <= keep)
        return st;
    size_t drop = total + 1 - keep;
    cf_iter_open(s, cf, prefix, 32, &it);
    for (; drop > 0 && cf_eiter_valid(it.it); cf_eiter_next(it.it), drop--) {
        size_t kl;
        const char *k = cf_eiter_key(it.it, &kl);
        cf_batch_delete(b, cf, k, kl);
    }
    st = cf_iter_status(&it);
    cf_iter_close(&it);
    return st;
}

/* Collects the sealed values of a user's range, newest first, through decode. */
typedef enum cf_status (*decode_fn)(const uint8_t *pt, size_t n, void *item);

struct range_ctx {
    decode_fn decode;
};

static enum cf_status range_one(void *elem, const uint8_t *key, const uint8_t *pt, size_t ptlen, const void *ctx)
{
    (void)key;
    return ((const struct range_ctx *)ctx)->decode(pt, ptlen, elem);
}

static enum cf_status list_range(struct cf_store *s, const struct cf_tkeys *tk, enum cf_cf cf,
                                 const struct cf_id *user, size_t item_size, decode_fn decode, void (*clear)(void *),
                                 void **out, size_t *n)
{
    uint8_t prefix[32];
    struct range_ctx rc = {decode};
    void *v = NULL;
    cf_key2(prefix, &tk->tenant, user);
    enum cf_status st = cf_sealed_list(s, cf, &tk->record, prefix, sizeof prefix, LOG_KEY_LEN, 0, item_size, range_one,
                                       clear, &rc, &v, n);
    if (st != CF_OK)
        return st;
    char *arr = v;
    size_t cnt = *n;
    /* newest first */
    char *tmp = cf_xmalloc(item_size);
    for (size_t i = 0; i < cnt / 2; i++) {
        memcpy(tmp, arr + i * item_size, item_size);
        memcpy(arr + i * item_size, arr + (cnt - 1 - i) * item_size, item_size);
        memcpy(arr + (cnt - 1 - i) * item_size, tmp, item_size);
    }
    free(tmp);
    *out = arr;
    *n = cnt;
    return CF_OK;
}

/* ---- logins --------------------------------------------------------------------------------- */

enum { LTAG_AT = 1, LTAG_IP = 2, LTAG_UA = 3, LTAG_RESULT = 4, LTAG_NEW_DEVICE = 5 };

void cf_login_clear(struct cf_login *l)
{
    if (l == NULL)
        return;
    free(l->ip);
    free(l->user_agent);
    free(l->result);
    memset(l, 0, sizeof *l);
}

static void login_clear_v(void *p)
{
    cf_login_clear(p);
}

static enum cf_status login_decode(const uint8_t *pt, size_t n, void *item)
{
    struct cf_login *l = item;
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    uint64_t x;
    enum cf_status st = cf_rec_r_init(&r, pt, n);
    if (st != CF_OK)
        return st;
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        switch (tag) {
        case LTAG_AT:
            st = cf_rec_u64(v, vl, &l->at);
            break;
        case LTAG_IP:
            st = cf_rec_str(v, vl, &l->ip);
            break;
        case LTAG_UA:
            st = cf_rec_str(v, vl, &l->user_agent);
            break;
        case LTAG_RESULT:
            st = cf_rec_str(v, vl, &l->result);
            break;
        case LTAG_NEW_DEVICE:
            st = cf_rec_u64(v, vl, &x);
            l->new_device = x != 0;
            break;
        default:
            break;
        }
        if (st != CF_OK)
            return st;
    }
    return l->result != NULL ? CF_OK : CF_ECORRUPT;
}

enum cf_status cf_login_record(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                               const struct cf_login *l)
{
    const struct cf_tkeys *tk;
    uint8_t key[LOG_KEY_LEN];
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    struct cf_rec_w w;
    cf_rec_w_init(&w);
    cf_rec_put_u64(&w, LTAG_AT, l->at);
    cf_rec_put_str(&w, LTAG_IP, l->ip);
    cf_rec_put_str(&w, LTAG_UA, l->user_agent);
    cf_rec_put_str(&w, LTAG_RESULT, l->result);
    cf_rec_put_u64(&w, LTAG_NEW_DEVICE, l->new_device);
    log_key(tenant, user, l->at, key);
    struct cf_batch *b = cf_batch_new(s->eng);
    enum cf_status st = trim(s, CF_CF_LOGINS, key, CF_LOGINS_KEPT, b);
    if (st == CF_OK) {
        cf_seal_batch_put(b, s, CF_CF_LOGINS, &tk->record, key, sizeof key, &w, NULL, 0);
        st = cf_db_write(s, b, true);
    }
    cf_batch_free(b);
    cf_rec_w_free(&w);
    return st;
}

enum cf_status cf_login_list(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                             struct cf_login **out, size_t *n)
{
    const struct cf_tkeys *tk;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    return list_range(s, tk, CF_CF_LOGINS, user, sizeof **out, login_decode, login_clear_v, (void **)out, n);
}

/* ---- devices -------------------------------------------------------------------------------- */

enum cf_status cf_device_seen(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                              const void *fp, size_t n, bool *is_new)
{
    const struct cf_tkeys *tk;
    uint8_t key[64], when[8];
    char *val;
    size_t vlen;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    cf_key2(key, tenant, user);
    cf_hmac2_sha256(&tk->index, "device", 7, fp, n, key + 32);
    enum cf_status st = cf_db_get(s, CF_CF_DEVICES, key, sizeof key, &val, &vlen);
    if (st == CF_OK) {
        free(val);
        *is_new = false;
        return CF_OK;
    }
    if (st != CF_ENOTFOUND)
        return st;
    *is_new = true;
    cf_put_be64(when, cf_now_ms());
    return cf_db_put(s, CF_CF_DEVICES, key, sizeof key, when, sizeof when, true);
}

enum cf_status cf_device_any(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user, bool *any)
{
    uint8_t prefix[32];
    struct cf_iter it;
    cf_key2(prefix, tenant, user);
    cf_iter_open(s, CF_CF_DEVICES, prefix, sizeof prefix, &it);
    *any = cf_eiter_valid(it.it);
    enum cf_status st = cf_iter_status(&it);
    cf_iter_close(&it);
    return st;
}

/* ---- alerts --------------------------------------------------------------------------------- */

enum { ALTAG_ID = 1, ALTAG_AT = 2, ALTAG_KIND = 3, ALTAG_DETAIL = 4 };

void cf_alert_clear(struct cf_alert *a)
{
    if (a == NULL)
        return;
    free(a->kind);
    free(a->detail);
    memset(a, 0, sizeof *a);
}

static void alert_clear_v(void *p)
{
    cf_alert_clear(p);
}

static enum cf_status alert_decode(const uint8_t *pt, size_t n, void *item)
{
    struct cf_alert *a = item;
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    enum cf_status st = cf_rec_r_init(&r, pt, n);
    if (st != CF_OK)
        return st;
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        switch (tag) {
        case ALTAG_ID:
            st = cf_rec_id(v, vl, &a->id);
            break;
        case ALTAG_AT:
            st = cf_rec_u64(v, vl, &a->at);
            break;
        case ALTAG_KIND:
            st = cf_rec_str(v, vl, &a->kind);
            break;
        case ALTAG_DETAIL:
            st = cf_rec_str(v, vl, &a->detail);
            break;
        default:
            break;
        }
        if (st != CF_OK)
            return st;
    }
    return a->kind != NULL ? CF_OK : CF_ECORRUPT;
}

enum cf_status cf_alert_add(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                            const char *kind, const char *detail)
{
    const struct cf_tkeys *tk;
    uint8_t key[LOG_KEY_LEN];
    struct cf_id id;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    uint64_t at = cf_now_ms();
    cf_id_new(&id);
    struct cf_rec_w w;
    cf_rec_w_init(&w);
    cf_rec_put_id(&w, ALTAG_ID, &id);
    cf_rec_put_u64(&w, ALTAG_AT, at);
    cf_rec_put_str(&w, ALTAG_KIND, kind);
    cf_rec_put_str(&w, ALTAG_DETAIL, detail != NULL ? detail : "{}");
    log_key(tenant, user, at, key);
    struct cf_batch *b = cf_batch_new(s->eng);
    enum cf_status st = trim(s, CF_CF_ALERTS, key, CF_ALERTS_KEPT, b);
    if (st == CF_OK) {
        cf_seal_batch_put(b, s, CF_CF_ALERTS, &tk->record, key, sizeof key, &w, NULL, 0);
        st = cf_db_write(s, b, true);
    }
    cf_batch_free(b);
    cf_rec_w_free(&w);
    return st;
}

enum cf_status cf_alert_list(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                             struct cf_alert **out, size_t *n)
{
    const struct cf_tkeys *tk;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    return list_range(s, tk, CF_CF_ALERTS, user, sizeof **out, alert_decode, alert_clear_v, (void **)out, n);
}
