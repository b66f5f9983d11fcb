/*
 * ident.c: tenants, users and sessions.
 *
 * Layout (T = tenant id):
 *   tenants       T → sealed (global record key) {name, created_at, root}
 *   tenant_names  HMAC(global index key, "tenant\0" ‖ lower(name)) → T
 *   users         T ‖ user → sealed (tenant record key) {username, display_name, role, status,
 *                 pwhash, created_at, updated_at, private_root}
 *   user_names    T ‖ HMAC(tenant index key, "user\0" ‖ lower(username)) → user
 *   sessions      SHA-256(token) → T ‖ sealed {user, csrf_hash, created_at, expires_at, ip, ua}
 * Names are matched case-insensitively (ASCII) through their keyed hashes; the stored record keeps
 * the spelling the admin chose.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define TENANT_NAME_MAX 63
#define USER_NAME_MAX 64

/* ---- names ---------------------------------------------------------------------------------- */

bool cf_tenant_valid_name(const char *name, size_t n)
{
    if (n == 0 || n > TENANT_NAME_MAX || name[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

bool cf_user_valid_name(const char *name, size_t n)
{
    if (n == 0 || n > USER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '@' || c == '-'))
            return false;
    }
    return true;
}

/* HMAC(key, label ‖ 0 ‖ lower(name)) for names already validated as ASCII. */
static void name_mac(const struct cf_key *key, const char *label, const char *name, size_t n, uint8_t out[32])
{
    char buf[16 + USER_NAME_MAX];
    size_t ll = strlen(label);
    memcpy(buf, label, ll);
    buf[ll] = '\0';
    for (size_t i = 0; i < n; i++)
        buf[ll + 1 + i] = (char)tolower((unsigned char)name[i]);
    cf_hmac_sha256(key, buf, ll + 1 + n, out);
}

/* ---- tenants -------------------------------------------------------------------------------- */

enum {
    TTAG_NAME = 1,
    TTAG_CREATED = 2,
    TTAG_ROOT = 3,
    TTAG_REQUIRE_MFA = 4,
    TTAG_ALLOW_SHARES = 5,
    TTAG_SHARE_MAX_EXPIRY = 6,
    TTAG_BLOCKED_TYPE = 7, /* repeated */
    TTAG_BULK_FILES = 8,
    TTAG_BULK_BYTES = 9,
    TTAG_BULK_WINDOW = 10,
    TTAG_WEBHOOK_URL = 11,
    TTAG_WEBHOOK_CA = 12,
    TTAG_TRASH_RETENTION = 13,
    TTAG_OFFBOARDED_RETENTION = 14,
    TTAG_VERSION_RETENTION = 15,
    TTAG_USER_QUOTA = 16,
    TTAG_TENANT_QUOTA = 17,
};

void cf_policy_defaults(struct cf_policy *p)
{
    memset(p, 0, sizeof *p);
    p->allow_shares = true;
    p->bulk_files = 100;
    p->bulk_bytes = 2ull << 30;
    p->bulk_window_s = 3600;
    p->trash_retention_s = 30 * 86400;
    p->offboarded_retention_s = 90 * 86400;
}

void cf_policy_clear(struct cf_policy *p)
{
    for (size_t i = 0; i < p->nblocked; i++)
        free(p->blocked_types[i]);
    free(p->webhook_url);
    free(p->webhook_ca);
    memset(p, 0, sizeof *p);
}

void cf_tenant_clear(struct cf_tenant *t)
{
    if (t == NULL)
        return;
    free(t->name);
    cf_policy_clear(&t->policy);
    memset(t, 0, sizeof *t);
}

static void tenant_encode(const struct cf_tenant *t, struct cf_rec_w *w)
{
    cf_rec_put_str(w, TTAG_NAME, t->name);
    cf_rec_put_u64(w, TTAG_CREATED, t->created_at);
    cf_rec_put_id(w, TTAG_ROOT, &t->root);
    cf_rec_put_u64(w, TTAG_REQUIRE_MFA, t->policy.require_mfa);
    cf_rec_put_u64(w, TTAG_ALLOW_SHARES, t->policy.allow_shares);
    cf_rec_put_u64(w, TTAG_SHARE_MAX_EXPIRY, t->policy.share_max_expiry_s);
    for (size_t i = 0; i < t->policy.nblocked; i++)
        cf_rec_put_str(w, TTAG_BLOCKED_TYPE, t->policy.blocked_types[i]);
    cf_rec_put_u64(w, TTAG_BULK_FILES, t->policy.bulk_files);
    cf_rec_put_u64(w, TTAG_BULK_BYTES, t->policy.bulk_bytes);
    cf_rec_put_u64(w, TTAG_BULK_WINDOW, t->policy.bulk_window_s);
    cf_rec_put_str(w, TTAG_WEBHOOK_URL, t->policy.webhook_url);
    cf_rec_put_str(w, TTAG_WEBHOOK_CA, t->policy.webhook_ca);
    cf_rec_put_u64(w, TTAG_TRASH_RETENTION, t->policy.trash_retention_s);
    cf_rec_put_u64(w, TTAG_OFFBOARDED_RETENTION, t->policy.offboarded_retention_s);
    cf_rec_put_u64(w, TTAG_VERSION_RETENTION, t->policy.version_retention_s);
    cf_rec_put_u64(w, TTAG_USER_QUOTA, t->policy.user_quota_bytes);
    cf_rec_put_u64(w, TTAG_TENANT_QUOTA, t->policy.tenant_quota_bytes);
}

static enum cf_status tenant_decode(const uint8_t *p, size_t len, struct cf_tenant *out)
{
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    uint64_t x;
    enum cf_status st;
    cf_policy_defaults(&out->policy);
    if ((st = cf_rec_r_init(&r, p, len)) != CF_OK)
        return st;
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        switch (tag) {
        case TTAG_NAME:
            st = cf_rec_str(v, vl, &out->name);
            break;
        case TTAG_CREATED:
            st = cf_rec_u64(v, vl, &out->created_at);
            break;
        case TTAG_ROOT:
            st = cf_rec_id(v, vl, &out->root);
            break;
        case TTAG_REQUIRE_MFA:
            st = cf_rec_u64(v, vl, &x);
            out->policy.require_mfa = x != 0;
            break;
        case TTAG_ALLOW_SHARES:
            st = cf_rec_u64(v, vl, &x);
            out->policy.allow_shares = x != 0;
            break;
        case TTAG_SHARE_MAX_EXPIRY:
            st = cf_rec_u64(v, vl, &out->policy.share_max_expiry_s);
            break;
        case TTAG_BLOCKED_TYPE:
            if (out->policy.nblocked == CF_POLICY_MAX_BLOCKED) {
                st = CF_ECORRUPT;
                break;
            }
            out->policy.blocked_types[out->policy.nblocked] = NULL;
            st = cf_rec_str(v, vl, &out->policy.blocked_types[out->policy.nblocked]);
            if (st == CF_OK)
                out->policy.nblocked++;
            break;
        case TTAG_BULK_FILES:
            st = cf_rec_u64(v, vl, &out->policy.bulk_files);
            break;
        case TTAG_BULK_BYTES:
            st = cf_rec_u64(v, vl, &out->policy.bulk_bytes);
            break;
        case TTAG_BULK_WINDOW:
            st = cf_rec_u64(v, vl, &out->policy.bulk_window_s);
            break;
        case TTAG_WEBHOOK_URL:
            st = cf_rec_str(v, vl, &out->policy.webhook_url);
            break;
        case TTAG_WEBHOOK_CA:
            st = cf_rec_str(v, vl, &out->policy.webhook_ca);
            break;
        case TTAG_TRASH_RETENTION:
            st = cf_rec_u64(v, vl, &out->policy.trash_retention_s);
            break;
        case TTAG_OFFBOARDED_RETENTION:
            st = cf_rec_u64(v, vl, &out->policy.offboarded_retention_s);
            break;
        case TTAG_VERSION_RETENTION:
            st = cf_rec_u64(v, vl, &out->policy.version_retention_s);
            break;
        case TTAG_USER_QUOTA:
            st = cf_rec_u64(v, vl, &out->policy.user_quota_bytes);
            break;
        case TTAG_TENANT_QUOTA:
            st = cf_rec_u64(v, vl, &out->policy.tenant_quota_bytes);
            break;
        default:
            break;
        }
        if (st != CF_OK)
            return st;
    }
    if (st != CF_ENOTFOUND || out->name == NULL || cf_id_is_zero(&out->root))
        return CF_ECORRUPT;
    return CF_OK;
}

enum cf_status cf_tenant_create(struct cf_store *s, const char *name, struct cf_tenant *out)
{
    uint8_t mac[32];
    char *val;
    size_t vlen, n = strlen(name);
    enum cf_status st;
    if (!cf_tenant_valid_name(name, n))
        return CF_EINVAL;
    name_mac(&s->global_index, "tenant", name, n, mac);

    cf_ns_lock(s);
    st = cf_db_get(s, CF_CF_TENANT_NAMES, mac, sizeof mac, &val, &vlen);
    if (st == CF_OK) {
        free(val);
        st = CF_EEXIST;
        goto unlock;
    }
    if (st != CF_ENOTFOUND)
        goto unlock;

    memset(out, 0, sizeof *out);
    cf_id_new(&out->id);
    out->name = cf_xstrdup(name);
    out->created_at = cf_now_ms();
    struct cf_batch *b = cf_batch_new(s->eng);
    const struct cf_tkeys *tk = cf_tkeys_create(s, &out->id, b);
    cf_root_create(b, s, tk, CF_SPACE_TENANT, NULL, &out->root);
    cf_policy_defaults(&out->policy);
    struct cf_rec_w w;
    cf_rec_w_init(&w);
    tenant_encode(out, &w);
    cf_seal_batch_put(b, s, CF_CF_TENANTS, &s->global_record, out->id.b, CF_ID_LEN, &w, NULL, 0);
    cf_rec_w_free(&w);
    cf_batch_put(b, CF_CF_TENANT_NAMES, (const char *)mac, sizeof mac, (const char *)out->id.b, CF_ID_LEN);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
    if (st != CF_OK)
        cf_tenant_clear(out);
unlock:
    cf_ns_unlock(s);
    return st;
}

enum cf_status cf_tenant_find(struct cf_store *s, const char *name, size_t n, struct cf_id *out)
{
    uint8_t mac[32];
    char *val, lower[TENANT_NAME_MAX];
    size_t vlen;
    /* Stored names are lower case; a lookup folds case first, so "ACME" finds "acme". */
    if (n == 0 || n > TENANT_NAME_MAX)
        return CF_ENOTFOUND;
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    if (!cf_tenant_valid_name(lower, n))
        return CF_ENOTFOUND;
    name_mac(&s->global_index, "tenant", lower, n, mac);
    enum cf_status st = cf_db_get(s, CF_CF_TENANT_NAMES, mac, sizeof mac, &val, &vlen);
    if (st != CF_OK)
        return st;
    if (vlen != CF_ID_LEN)
        st = CF_ECORRUPT;
    else
        memcpy(out->b, val, CF_ID_LEN);
    free(val);
    return st;
}

enum cf_status cf_tenant_get(struct cf_store *s, const struct cf_id *id, struct cf_tenant *out)
{
    uint8_t *pt;
    size_t ptlen;
    memset(out, 0, sizeof *out);
    enum cf_status st = cf_get_sealed(s, CF_CF_TENANTS, &s->global_record, id->b, CF_ID_LEN, &pt, &ptlen);
    if (st != CF_OK)
        return st;
    out->id = *id;
    st = tenant_decode(pt, ptlen, out);
    cf_free_secret(pt, ptlen);
    if (st != CF_OK)
        cf_tenant_clear(out);
    return st;
}

enum cf_status cf_tenant_put_policy(struct cf_store *s, const struct cf_id *id, const struct cf_policy *p)
{
    struct cf_tenant t;
    cf_ns_lock(s);
    enum cf_status st = cf_tenant_get(s, id, &t);
    if (st == CF_OK) {
        struct cf_policy old = t.policy;
        t.policy = *p; /* borrowed strings: not freed through t */
        struct cf_rec_w w;
        cf_rec_w_init(&w);
        tenant_encode(&t, &w);
        struct cf_batch *b = cf_batch_new(s->eng);
        cf_seal_batch_put(b, s, CF_CF_TENANTS, &s->global_record, id->b, CF_ID_LEN, &w, NULL, 0);
        st = cf_db_write(s, b, true);
        cf_batch_free(b);
        cf_rec_w_free(&w);
        t.policy = old;
        cf_tenant_clear(&t);
    }
    cf_ns_unlock(s);
    return st;
}

static enum cf_status tenant_list_one(void *elem, const uint8_t *key, const uint8_t *pt, size_t ptlen, const void *ctx)
{
    (void)ctx;
    struct cf_tenant *t = elem;
    memcpy(t->id.b, key, CF_ID_LEN);
    return tenant_decode(pt, ptlen, t);
}

static void tenant_clear_elem(void *elem)
{
    cf_tenant_clear(elem);
}

enum cf_status cf_tenant_list(struct cf_store *s, struct cf_tenant **out, size_t *n)
{
    uint8_t none = 0;
    void *arr = NULL;
    enum cf_status st = cf_sealed_list(s, CF_CF_TENANTS, &s->global_record, &none, 0, CF_ID_LEN, 0, sizeof **out,
                                       tenant_list_one, tenant_clear_elem, NULL, &arr, n);
    if (st == CF_OK)
        *out = arr;
    return st;
}

/* ---- users ---------------------------------------------------------------------------------- */

enum {
    UTAG_USERNAME = 1,
    UTAG_DISPLAY = 2,
    UTAG_ROLE = 3,
    UTAG_STATUS = 4,
    UTAG_PWHASH = 5,
    UTAG_CREATED = 6,
    UTAG_UPDATED = 7,
    UTAG_PRIVATE_ROOT = 8,
    UTAG_TOTP_SECRET = 9,
    UTAG_TOTP_PENDING = 10,
    UTAG_TOTP_LAST_STEP = 11,
    UTAG_MUST_CHANGE_PW = 12,
    UTAG_MUST_ENROL_TOTP = 13,
    UTAG_RECOVERY = 14, /* repeated: one per unused recovery code */
    UTAG_SOURCE = 15,   /* issue 23: absent = local */
    UTAG_EMAIL = 16,
    UTAG_DIRECTORY_ID = 17,
    UTAG_DIRECTORY_GONE = 18,
};

void cf_user_clear(struct cf_user *u)
{
    if (u == NULL)
        return;
    free(u->username);
    free(u->display_name);
    free(u->email);
    free(u->directory_id);
    if (u->pwhash != NULL)
        cf_free_secret(u->pwhash, strlen(u->pwhash));
    for (size_t i = 0; i < u->nrecovery && i < CF_RECOVERY_CODES; i++)
        if (u->recovery[i] != NULL)
            cf_free_secret(u->recovery[i], strlen(u->recovery[i]));
    cf_wipe(u, sizeof *u);
}

static void user_encode(const struct cf_user *u, struct cf_rec_w *w)
{
    cf_rec_put_str(w, UTAG_USERNAME, u->username);
    cf_rec_put_str(w, UTAG_DISPLAY, u->display_name);
    cf_rec_put_u64(w, UTAG_ROLE, (uint64_t)u->role);
    cf_rec_put_u64(w, UTAG_STATUS, (uint64_t)u->status);
    cf_rec_put_str(w, UTAG_PWHASH, u->pwhash);
    cf_rec_put_u64(w, UTAG_CREATED, u->created_at);
    cf_rec_put_u64(w, UTAG_UPDATED, u->updated_at);
    cf_rec_put_id(w, UTAG_PRIVATE_ROOT, &u->private_root);
    if (u->totp_enabled)
        cf_rec_put_bytes(w, UTAG_TOTP_SECRET, u->totp_secret, sizeof u->totp_secret);
    if (u->totp_pending)
        cf_rec_put_bytes(w, UTAG_TOTP_PENDING, u->totp_pending_secret, sizeof u->totp_pending_secret);
    if (u->totp_last_step != 0)
        cf_rec_put_u64(w, UTAG_TOTP_LAST_STEP, u->totp_last_step);
    if (u->must_change_password)
        cf_rec_put_u64(w, UTAG_MUST_CHANGE_PW, 1);
    if (u->must_enrol_totp)
        cf_rec_put_u64(w, UTAG_MUST_ENROL_TOTP, 1);
    for (size_t i = 0; i < u->nrecovery && i < CF_RECOVERY_CODES; i++)
        cf_rec_put_str(w, UTAG_RECOVERY, u->recovery[i]);
    if (u->source != CF_SOURCE_LOCAL)
        cf_rec_put_u64(w, UTAG_SOURCE, (uint64_t)u->source);
    if (u->email != NULL)
        cf_rec_put_str(w, UTAG_EMAIL, u->email);
    if (u->directory_id != NULL)
        cf_rec_put_str(w, UTAG_DIRECTORY_ID, u->directory_id);
    if (u->directory_gone_at != 0)
        cf_rec_put_u64(w, UTAG_DIRECTORY_GONE, u->directory_gone_at);
}

static enum cf_status user_decode(const uint8_t *p, size_t len, struct cf_user *out)
{
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    uint64_t x;
    enum cf_status st;
    if ((st = cf_rec_r_init(&r, p, len)) != CF_OK)
        return st;
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        switch (tag) {
        case UTAG_USERNAME:
            st = cf_rec_str(v, vl, &out->username);
            break;
        case UTAG_DISPLAY:
            st = cf_rec_str(v, vl, &out->display_name);
            break;
        case UTAG_ROLE:
            if ((st = cf_rec_u64(v, vl, &x)) == CF_OK && x > CF_ROLE_AUDITOR)
                st = CF_ECORRUPT;
            out->role = (enum cf_role)x;
            break;
        case UTAG_STATUS:
            if ((st = cf_rec_u64(v, vl, &x)) == CF_OK && x > CF_USER_OFFBOARDED)
                st = CF_ECORRUPT;
            out->status = (enum cf_user_status)x;
            break;
        case UTAG_PWHASH:
            st = cf_rec_str(v, vl, &out->pwhash);
            break;
        case UTAG_CREATED:
            st = cf_rec_u64(v, vl, &out->created_at);
            break;
        case UTAG_UPDATED:
            st = cf_rec_u64(v, vl, &out->updated_at);
            break;
        case UTAG_PRIVATE_ROOT:
            st = cf_rec_id(v, vl, &out->private_root);
            break;
        case UTAG_TOTP_SECRET:
            if (vl != sizeof out->totp_secret)
                st = CF_ECORRUPT;
            else
                memcpy(out->totp_secret, v, vl);
            out->totp_enabled = true;
            break;
        case UTAG_TOTP_PENDING:
            if (vl != sizeof out->totp_pending_secret)
                st = CF_ECORRUPT;
            else
                memcpy(out->totp_pending_secret, v, vl);
            out->totp_pending = true;
            break;
        case UTAG_TOTP_LAST_STEP:
            st = cf_rec_u64(v, vl, &out->totp_last_step);
            break;
        case UTAG_MUST_CHANGE_PW:
            st = cf_rec_u64(v, vl, &x);
            out->must_change_password = x != 0;
            break;
        case UTAG_MUST_ENROL_TOTP:
            st = cf_rec_u64(v, vl, &x);
            out->must_enrol_totp = x != 0;
            break;
        case UTAG_RECOVERY:
            if (out->nrecovery >= CF_RECOVERY_CODES)
                st = CF_ECORRUPT;
            else if ((st = cf_rec_str(v, vl, &out->recovery[out->nrecovery])) == CF_OK)
                out->nrecovery++;
            break;
        case UTAG_SOURCE:
            if ((st = cf_rec_u64(v, vl, &x)) == CF_OK && x > CF_SOURCE_DIRECTORY)
                st = CF_ECORRUPT;
            out->source = (enum cf_source)x;
            break;
        case UTAG_EMAIL:
            free(out->email);
            out->email = NULL;
            st = cf_rec_str(v, vl, &out->email);
            break;
        case UTAG_DIRECTORY_ID:
            free(out->directory_id);
            out->directory_id = NULL;
            st = cf_rec_str(v, vl, &out->directory_id);
            break;
        case UTAG_DIRECTORY_GONE:
            st = cf_rec_u64(v, vl, &out->directory_gone_at);
            break;
        default:
            break;
        }
        if (st != CF_OK)
            return st;
    }
    if (st != CF_ENOTFOUND || out->username == NULL || cf_id_is_zero(&out->private_root))
        return CF_ECORRUPT;
    return CF_OK;
}

static void user_batch_put(struct cf_batch *b, struct cf_store *s, const struct cf_tkeys *tk,
                           const struct cf_user *u)
{
    uint8_t key[32];
    struct cf_rec_w w;
    cf_key2(key, &u->tenant, &u->id);
    cf_rec_w_init(&w);
    user_encode(u, &w);
    cf_seal_batch_put(b, s, CF_CF_USERS, &tk->record, key, sizeof key, &w, NULL, 0);
    cf_rec_w_free(&w);
}

static void username_key(const struct cf_tkeys *tk, const char *name, size_t n, uint8_t key[48])
{
    memcpy(key, tk->tenant.b, CF_ID_LEN);
    name_mac(&tk->index, "user", name, n, key + 16);
}

enum cf_status cf_user_create(struct cf_store *s, struct cf_user *u)
{
    const struct cf_tkeys *tk;
    uint8_t nkey[48];
    char *val;
    size_t vlen;
    enum cf_status st;
    if (u->username == NULL || !cf_user_valid_name(u->username, strlen(u->username)))
        return CF_EINVAL;
    if ((st = cf_tkeys_get(s, &u->tenant, &tk)) != CF_OK)
        return CF_ENOTFOUND;
    username_key(tk, u->username, strlen(u->username), nkey);

    cf_ns_lock(s);
    st = cf_db_get(s, CF_CF_USER_NAMES, nkey, sizeof nkey, &val, &vlen);
    if (st == CF_OK) {
        free(val);
        st = CF_EEXIST;
        goto unlock;
    }
    if (st != CF_ENOTFOUND)
        goto unlock;
    if (cf_id_is_zero(&u->id))
        cf_id_new(&u->id);
    u->created_at = u->updated_at = cf_now_ms();
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_root_create(b, s, tk, CF_SPACE_PRIVATE, &u->id, &u->private_root);
    user_batch_put(b, s, tk, u);
    cf_batch_put(b, CF_CF_USER_NAMES, (const char *)nkey, sizeof nkey, (const char *)u->id.b, CF_ID_LEN);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
unlock:
    cf_ns_unlock(s);
    return st;
}

enum cf_status cf_user_put(struct cf_store *s, const struct cf_user *u)
{
    const struct cf_tkeys *tk;
    uint8_t key[32];
    char *val;
    size_t vlen;
    enum cf_status st = cf_tkeys_get(s, &u->tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;
    cf_key2(key, &u->tenant, &u->id);
    if ((st = cf_db_get(s, CF_CF_USERS, key, sizeof key, &val, &vlen)) != CF_OK)
        return st; /* never create a user record without its username index */
    free(val);
    struct cf_batch *b = cf_batch_new(s->eng);
    user_batch_put(b, s, tk, u);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
    return st;
}

enum cf_status cf_user_update(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                              enum cf_status (*mutate)(struct cf_user *u, void *ctx), void *ctx, struct cf_user *out)
{
    const struct cf_tkeys *tk;
    struct cf_user u;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    cf_cluster_lock(s, &s->user_lock, CF_ENG_LOCK_USER);
    enum cf_status st = cf_user_get(s, tenant, id, &u);
    if (st == CF_OK && (st = mutate(&u, ctx)) == CF_OK) {
        u.updated_at = cf_now_ms();
        struct cf_batch *b = cf_batch_new(s->eng);
        user_batch_put(b, s, tk, &u);
        st = cf_db_write(s, b, true);
        cf_batch_free(b);
    }
    cf_cluster_unlock(s, &s->user_lock, CF_ENG_LOCK_USER);
    if (st == CF_OK && out != NULL)
        *out = u;
    else
        cf_user_clear(&u);
    return st;
}

enum cf_status cf_user_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id, struct cf_user *out)
{
    const struct cf_tkeys *tk;
    uint8_t key[32], *pt;
    size_t ptlen;
    memset(out, 0, sizeof *out);
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;
    cf_key2(key, tenant, id);
    if ((st = cf_get_sealed(s, CF_CF_USERS, &tk->record, key, sizeof key, &pt, &ptlen)) != CF_OK)
        return st;
    out->id = *id;
    out->tenant = *tenant;
    st = user_decode(pt, ptlen, out);
    cf_free_secret(pt, ptlen);
    if (st != CF_OK)
        cf_user_clear(out);
    return st;
}

static enum cf_status user_list_one(void *elem, const uint8_t *key, const uint8_t *pt, size_t ptlen, const void *ctx)
{
    struct cf_user *u = elem;
    u->tenant = *(const struct cf_id *)ctx;
    memcpy(u->id.b, key + CF_ID_LEN, CF_ID_LEN);
    return user_decode(pt, ptlen, u);
}

static void user_clear_elem(void *elem)
{
    cf_user_clear(elem);
}

enum cf_status cf_user_list(struct cf_store *s, const struct cf_id *tenant, struct cf_user **out, size_t *n)
{
    const struct cf_tkeys *tk;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    void *arr = NULL;
    enum cf_status st = cf_sealed_list(s, CF_CF_USERS, &tk->record, tenant->b, CF_ID_LEN, 2 * CF_ID_LEN, 0,
                                       sizeof **out, user_list_one, user_clear_elem, tenant, &arr, n);
    if (st == CF_OK)
        *out = arr;
    return st;
}

enum cf_status cf_user_find(struct cf_store *s, const struct cf_id *tenant, const char *username, size_t n,
                            struct cf_id *out)
{
    const struct cf_tkeys *tk;
    uint8_t nkey[48];
    char *val;
    size_t vlen;
    if (!cf_user_valid_name(username, n))
        return CF_ENOTFOUND;
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;
    username_key(tk, username, n, nkey);
    if ((st = cf_db_get(s, CF_CF_USER_NAMES, nkey, sizeof nkey, &val, &vlen)) != CF_OK)
        return st;
    if (vlen != CF_ID_LEN)
        st = CF_ECORRUPT;
    else
        memcpy(out->b, val, CF_ID_LEN);
    free(val);
    return st;
}

/* ---- sessions ------------------------------------------------------------------------------- */

enum {
    STAG_USER = 1,
    STAG_CSRF = 2,
    STAG_CREATED = 3,
    STAG_EXPIRES = 4,
    STAG_IP = 5,
    STAG_UA = 6,
    STAG_ID = 7,
    STAG_FLAGS = 8,
    STAG_NAME = 9,
    STAG_LAST_USED = 10,
    STAG_LAST_IP = 11,
};

/* Held by every deletion of sessions and by cf_session_touch and cf_app_password_put, which read
 * before they write: a use recorded after a revocation must not bring the session back. A cluster
 * lock (cf_cluster_lock, CF_ENG_LOCK_SESSION): in cluster mode a revocation on one node and a touch
 * on another are serialised too, and the touch reads after catching up (not a cached copy). */
static pthread_mutex_t session_lock = PTHREAD_MUTEX_INITIALIZER;

void cf_session_clear(struct cf_session *ss)
{
    if (ss == NULL)
        return;
    free(ss->ip);
    free(ss->user_agent);
    free(ss->name);
    free(ss->last_used_ip);
    cf_wipe(ss, sizeof *ss);
}

static void user_session_key(const struct cf_id *tenant, const struct cf_id *user, const struct cf_id *id,
                             uint8_t key[48])
{
    cf_key2(key, tenant, user);
    memcpy(key + 32, id->b, CF_ID_LEN);
}

static enum cf_status session_write(struct cf_store *s, const struct cf_session *ss, bool sync)
{
    const struct cf_tkeys *tk;
    uint8_t ikey[48];
    enum cf_status st = cf_tkeys_get(s, &ss->tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;
    if (cf_id_is_zero(&ss->id))
        return CF_EINVAL;
    struct cf_rec_w w;
    cf_rec_w_init(&w);
    cf_rec_put_id(&w, STAG_USER, &ss->user);
    cf_rec_put_bytes(&w, STAG_CSRF, ss->csrf_hash, sizeof ss->csrf_hash);
    cf_rec_put_u64(&w, STAG_CREATED, ss->created_at);
    cf_rec_put_u64(&w, STAG_EXPIRES, ss->expires_at);
    cf_rec_put_str(&w, STAG_IP, ss->ip);
    cf_rec_put_str(&w, STAG_UA, ss->user_agent);
    cf_rec_put_id(&w, STAG_ID, &ss->id);
    cf_rec_put_u64(&w, STAG_FLAGS, ss->flags);
    cf_rec_put_str(&w, STAG_NAME, ss->name);
    if (ss->last_used_at != 0)
        cf_rec_put_u64(&w, STAG_LAST_USED, ss->last_used_at);
    cf_rec_put_str(&w, STAG_LAST_IP, ss->last_used_ip);
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_seal_batch_put(b, s, CF_CF_SESSIONS, &tk->record, ss->hash, sizeof ss->hash, &w, ss->tenant.b, CF_ID_LEN);
    user_session_key(&ss->tenant, &ss->user, &ss->id, ikey);
    cf_batch_put(b, CF_CF_USER_SESSIONS, (const char *)ikey, sizeof ikey, (const char *)ss->hash, sizeof ss->hash);
    st = cf_db_write(s, b, sync);
    cf_batch_free(b);
    cf_rec_w_free(&w);
    return st;
}

enum cf_status cf_session_put(struct cf_store *s, const struct cf_session *ss)
{
    return session_write(s, ss, true);
}

static enum cf_status session_decode(const uint8_t *pt, size_t ptlen, struct cf_session *out)
{
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    uint64_t x;
    bool have_user = false, have_id = false;
    enum cf_status st = cf_rec_r_init(&r, pt, ptlen);
    if (st != CF_OK)
        return st;
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        switch (tag) {
        case STAG_USER:
            st = cf_rec_id(v, vl, &out->user);
            have_user = true;
            break;
        case STAG_CSRF:
            if (vl != CF_SHA256_LEN)
                st = CF_ECORRUPT;
            else
                memcpy(out->csrf_hash, v, vl);
            break;
        case STAG_CREATED:
            st = cf_rec_u64(v, vl, &out->created_at);
            break;
        case STAG_EXPIRES:
            st = cf_rec_u64(v, vl, &out->expires_at);
            break;
        case STAG_IP:
            st = cf_rec_str(v, vl, &out->ip);
            break;
        case STAG_UA:
            st = cf_rec_str(v, vl, &out->user_agent);
            break;
        case STAG_ID:
            st = cf_rec_id(v, vl, &out->id);
            have_id = true;
            break;
        case STAG_FLAGS:
            st = cf_rec_u64(v, vl, &x);
            out->flags = (unsigned)x;
            break;
        case STAG_NAME:
            st = cf_rec_str(v, vl, &out->name);
            break;
        case STAG_LAST_USED:
            st = cf_rec_u64(v, vl, &out->last_used_at);
            break;
        case STAG_LAST_IP:
            st = cf_rec_str(v, vl, &out->last_used_ip);
            break;
        default:
            break;
        }
        if (st != CF_OK)
            return st;
    }
    return st == CF_ENOTFOUND && have_user && have_id ? CF_OK : CF_ECORRUPT;
}

/* A session's tenant ‖ record plaintext, from the metadata cache or the store (then cached). Unknown
 * tokens are not remembered: anyone can send those, and they would push real sessions out. */
static enum cf_status session_load(struct cf_store *s, const uint8_t hash[CF_SHA256_LEN], uint8_t **out, size_t *n)
{
    const struct cf_tkeys *tk;
    struct cf_id tenant;
    struct cf_cache_token tok;
    bool absent;
    char *val;
    size_t vlen, ptlen;
    uint8_t *pt;
    if (cf_db_cache_get(s, CF_CF_SESSIONS, hash, CF_SHA256_LEN, out, n, &absent, &tok) == CF_OK)
        return absent ? CF_ENOTFOUND : CF_OK;
    enum cf_status st = cf_db_get(s, CF_CF_SESSIONS, hash, CF_SHA256_LEN, &val, &vlen);
    if (st != CF_OK)
        return st;
    if (vlen < CF_ID_LEN) {
        free(val);
        return CF_ECORRUPT;
    }
    memcpy(tenant.b, val, CF_ID_LEN);
    if ((st = cf_tkeys_get(s, &tenant, &tk)) != CF_OK) {
        free(val);
        return CF_ENOTFOUND; /* the tenant (and its key) is gone: its sessions are dead */
    }
    st = cf_unseal(CF_CF_SESSIONS, &tk->record, hash, CF_SHA256_LEN, (const uint8_t *)val + CF_ID_LEN, vlen - CF_ID_LEN,
                   &pt, &ptlen);
    free(val);
    if (st != CF_OK)
        return st;
    *n = CF_ID_LEN + ptlen;
    *out = cf_xmalloc(*n);
    memcpy(*out, tenant.b, CF_ID_LEN);
    memcpy(*out + CF_ID_LEN, pt, ptlen);
    cf_free_secret(pt, ptlen);
    cf_db_cache_put(s, CF_CF_SESSIONS, hash, CF_SHA256_LEN, &tok, *out, *n);
    return CF_OK;
}

enum cf_status cf_session_get(struct cf_store *s, const uint8_t hash[CF_SHA256_LEN], struct cf_session *out)
{
    const struct cf_tkeys *tk;
    uint8_t *rec;
    size_t n;
    memset(out, 0, sizeof *out);
    enum cf_status st = session_load(s, hash, &rec, &n);
    if (st != CF_OK)
        return st;
    memcpy(out->tenant.b, rec, CF_ID_LEN);
    if (cf_tkeys_get(s, &out->tenant, &tk) != CF_OK)
        st = CF_ENOTFOUND; /* the tenant is gone since the record was cached */
    memcpy(out->hash, hash, CF_SHA256_LEN);
    if (st == CF_OK)
        st = session_decode(rec + CF_ID_LEN, n - CF_ID_LEN, out);
    cf_free_secret(rec, n);
    if (st != CF_OK)
        cf_session_clear(out);
    return st;
}

enum cf_status cf_session_delete(struct cf_store *s, const uint8_t hash[CF_SHA256_LEN])
{
    struct cf_session ss;
    uint8_t ikey[48];
    enum cf_status st = cf_session_get(s, hash, &ss);
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_delete(b, CF_CF_SESSIONS, (const char *)hash, CF_SHA256_LEN);
    if (st == CF_OK) {
        user_session_key(&ss.tenant, &ss.user, &ss.id, ikey);
        cf_batch_delete(b, CF_CF_USER_SESSIONS, (const char *)ikey, sizeof ikey);
        cf_session_clear(&ss);
    }
    cf_cluster_lock(s, &session_lock, CF_ENG_LOCK_SESSION);
    st = st == CF_OK || st == CF_ENOTFOUND || st == CF_ECORRUPT ? cf_db_write(s, b, true) : st;
    cf_cluster_unlock(s, &session_lock, CF_ENG_LOCK_SESSION);
    cf_batch_free(b);
    return st;
}

/* The token hashes of a user's sessions, from the index. */
static enum cf_status user_session_hashes(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                                          uint8_t (**out)[CF_SHA256_LEN], struct cf_id **ids, size_t *n)
{
    uint8_t prefix[32];
    struct cf_iter it;
    size_t cnt = 0, cap = 8;
    enum cf_status st = CF_OK;
    uint8_t (*arr)[CF_SHA256_LEN] = cf_xmalloc(cap * sizeof *arr);
    struct cf_id *idv = cf_xmalloc(cap * sizeof *idv);
    cf_key2(prefix, tenant, user);
    cf_iter_open(s, CF_CF_USER_SESSIONS, prefix, sizeof prefix, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl;
        const char *k = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        if (kl != 48 || vl != CF_SHA256_LEN) {
            st = CF_ECORRUPT;
            break;
        }
        if (cnt == cap) {
            cap *= 2;
            arr = cf_xrealloc(arr, cap * sizeof *arr);
            idv = cf_xrealloc(idv, cap * sizeof *idv);
        }
        memcpy(arr[cnt], v, CF_SHA256_LEN);
        memcpy(idv[cnt].b, k + 32, CF_ID_LEN);
        cnt++;
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    if (st != CF_OK) {
        free(arr);
        free(idv);
        return st;
    }
    *out = arr;
    *ids = idv;
    *n = cnt;
    return CF_OK;
}

enum cf_status cf_session_list(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                               struct cf_session **out, size_t *n)
{
    uint8_t (*hashes)[CF_SHA256_LEN];
    struct cf_id *ids;
    size_t cnt, got = 0;
    enum cf_status st = user_session_hashes(s, tenant, user, &hashes, &ids, &cnt);
    if (st != CF_OK)
        return st;
    struct cf_session *arr = cf_xcalloc(cnt == 0 ? 1 : cnt, sizeof *arr);
    for (size_t i = 0; i < cnt; i++) {
        st = cf_session_get(s, hashes[i], &arr[got]);
        if (st == CF_ENOTFOUND) {
            st = CF_OK; /* a session deleted between the index scan and the read */
            continue;
        }
        if (st != CF_OK)
            break;
        got++;
    }
    free(hashes);
    free(ids);
    if (st != CF_OK) {
        for (size_t i = 0; i < got; i++)
            cf_session_clear(&arr[i]);
        free(arr);
        return st;
    }
    *out = arr;
    *n = got;
    return CF_OK;
}

enum cf_status cf_session_delete_by_id(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                                       const struct cf_id *id)
{
    uint8_t ikey[48];
    char *val;
    size_t vlen;
    user_session_key(tenant, user, id, ikey);
    enum cf_status st = cf_db_get(s, CF_CF_USER_SESSIONS, ikey, sizeof ikey, &val, &vlen);
    if (st != CF_OK)
        return st;
    if (vlen != CF_SHA256_LEN) {
        free(val);
        return CF_ECORRUPT;
    }
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_delete(b, CF_CF_SESSIONS, val, vlen);
    cf_batch_delete(b, CF_CF_USER_SESSIONS, (const char *)ikey, sizeof ikey);
    cf_cluster_lock(s, &session_lock, CF_ENG_LOCK_SESSION);
    st = cf_db_write(s, b, true);
    cf_cluster_unlock(s, &session_lock, CF_ENG_LOCK_SESSION);
    cf_batch_free(b);
    free(val);
    return st;
}

enum cf_status cf_session_delete_all(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                                     const uint8_t *except)
{
    uint8_t (*hashes)[CF_SHA256_LEN];
    struct cf_id *ids;
    size_t cnt;
    uint8_t ikey[48];
    enum cf_status st = user_session_hashes(s, tenant, user, &hashes, &ids, &cnt);
    if (st != CF_OK)
        return st;
    struct cf_batch *b = cf_batch_new(s->eng);
    for (size_t i = 0; i < cnt; i++) {
        if (except != NULL && cf_ct_equal(hashes[i], except, CF_SHA256_LEN))
            continue;
        cf_batch_delete(b, CF_CF_SESSIONS, (const char *)hashes[i], CF_SHA256_LEN);
        user_session_key(tenant, user, &ids[i], ikey);
        cf_batch_delete(b, CF_CF_USER_SESSIONS, (const char *)ikey, sizeof ikey);
    }
    cf_cluster_lock(s, &session_lock, CF_ENG_LOCK_SESSION);
    st = cf_db_write(s, b, true);
    cf_cluster_unlock(s, &session_lock, CF_ENG_LOCK_SESSION);
    cf_batch_free(b);
    free(hashes);
    free(ids);
    return st;
}

static int session_newest_first(const void *a, const void *b)
{
    const struct cf_session *x = a, *y = b;
    return x->created_at < y->created_at ? 1 : x->created_at > y->created_at ? -1 : 0;
}

enum cf_status cf_session_trim(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user, size_t keep,
                               size_t *ended)
{
    struct cf_session *ss;
    size_t n, kept = 0, live_ended = 0;
    uint8_t ikey[48];
    enum cf_status st = cf_session_list(s, tenant, user, &ss, &n);
    if (st != CF_OK)
        return st;
    qsort(ss, n, sizeof *ss, session_newest_first);
    uint64_t now = cf_now_ms();
    struct cf_batch *b = cf_batch_new(s->eng);
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if ((ss[i].flags & (CF_SESSION_API_TOKEN | CF_SESSION_APP_PASSWORD)) != 0)
            continue;
        bool expired = ss[i].expires_at <= now;
        if (!expired && kept < keep) {
            kept++;
            continue;
        }
        if (!expired)
            live_ended++;
        cf_batch_delete(b, CF_CF_SESSIONS, (const char *)ss[i].hash, CF_SHA256_LEN);
        user_session_key(tenant, user, &ss[i].id, ikey);
        cf_batch_delete(b, CF_CF_USER_SESSIONS, (const char *)ikey, sizeof ikey);
        any = true;
    }
    cf_cluster_lock(s, &session_lock, CF_ENG_LOCK_SESSION);
    st = any ? cf_db_write(s, b, true) : CF_OK;
    cf_cluster_unlock(s, &session_lock, CF_ENG_LOCK_SESSION);
    cf_batch_free(b);
    for (size_t i = 0; i < n; i++)
        cf_session_clear(&ss[i]);
    free(ss);
    if (ended != NULL)
        *ended = st == CF_OK ? live_ended : 0;
    return st;
}

/* ---- app passwords (storage.h) ----------------------------------------------------------------- */

enum cf_status cf_app_password_hash(struct cf_store *s, const struct cf_id *tenant, const char *secret, size_t n,
                                    uint8_t out[CF_SHA256_LEN])
{
    static const char label[] = "app-password";
    const struct cf_tkeys *tk;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK || n > 256)
        return CF_ENOTFOUND;
    char buf[sizeof label + 256];
    memcpy(buf, label, sizeof label); /* with its NUL: the separator */
    memcpy(buf + sizeof label, secret, n);
    cf_hmac_sha256(&tk->index, buf, sizeof label + n, out);
    cf_wipe(buf, sizeof buf);
    return CF_OK;
}

enum cf_status cf_app_password_put(struct cf_store *s, const struct cf_session *ss, size_t max)
{
    struct cf_session *all;
    size_t n, have = 0;
    cf_cluster_lock(s, &session_lock, CF_ENG_LOCK_SESSION);
    enum cf_status st = cf_session_list(s, &ss->tenant, &ss->user, &all, &n);
    if (st == CF_OK) {
        for (size_t i = 0; i < n; i++) {
            if ((all[i].flags & CF_SESSION_APP_PASSWORD) != 0)
                have++;
            cf_session_clear(&all[i]);
        }
        free(all);
        st = have >= max ? CF_EEXIST : session_write(s, ss, true);
    }
    cf_cluster_unlock(s, &session_lock, CF_ENG_LOCK_SESSION);
    return st;
}

enum cf_status cf_session_touch(struct cf_store *s, const uint8_t hash[CF_SHA256_LEN], uint64_t at, const char *ip)
{
    struct cf_session ss;
    cf_cluster_lock(s, &session_lock, CF_ENG_LOCK_SESSION);
    enum cf_status st = cf_session_get(s, hash, &ss);
    if (st == CF_OK && at > ss.last_used_at) {
        ss.last_used_at = at;
        free(ss.last_used_ip);
        ss.last_used_ip = ip != NULL ? cf_xstrdup(ip) : NULL;
        st = session_write(s, &ss, false);
    }
    cf_cluster_unlock(s, &session_lock, CF_ENG_LOCK_SESSION);
    cf_session_clear(&ss); /* cf_session_get zeroes it first, whatever it answers */
    return st;
}

/* ---- groups --------------------------------------------------------------------------------- */

enum { GTAG_NAME = 1, GTAG_CREATED = 2, GTAG_SOURCE = 3, GTAG_DIRECTORY_ID = 4 };
#define GROUP_NAME_MAX 128

void cf_group_clear(struct cf_group *g)
{
    if (g == NULL)
        return;
    free(g->name);
    free(g->directory_id);
    memset(g, 0, sizeof *g);
}

/* Group names may hold any UTF-8; the keyed hash folds ASCII case only. */
static void group_name_key(const struct cf_tkeys *tk, const char *name, uint8_t key[48])
{
    size_t n = strlen(name);
    char *low = cf_xmalloc(n + 7);
    memcpy(low, "group", 6);
    for (size_t i = 0; i < n; i++)
        low[6 + i] = (char)tolower((unsigned char)name[i]);
    memcpy(key, tk->tenant.b, CF_ID_LEN);
    cf_hmac_sha256(&tk->index, low, n + 6, key + 16);
    free(low);
}

static enum cf_status group_decode(const uint8_t *p, size_t len, struct cf_group *out)
{
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    enum cf_status st = cf_rec_r_init(&r, p, len);
    if (st != CF_OK)
        return st;
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        if (tag == GTAG_NAME)
            st = cf_rec_str(v, vl, &out->name);
        else if (tag == GTAG_CREATED)
            st = cf_rec_u64(v, vl, &out->created_at);
        else if (tag == GTAG_SOURCE) {
            uint64_t x = 0;
            if ((st = cf_rec_u64(v, vl, &x)) == CF_OK && x > CF_SOURCE_DIRECTORY)
                st = CF_ECORRUPT;
            out->source = (enum cf_source)x;
        } else if (tag == GTAG_DIRECTORY_ID && out->directory_id == NULL)
            st = cf_rec_str(v, vl, &out->directory_id);
        if (st != CF_OK)
            return st;
    }
    return st == CF_ENOTFOUND && out->name != NULL ? CF_OK : CF_ECORRUPT;
}

/* The sealed record of a group. */
static void group_encode(const struct cf_group *g, struct cf_rec_w *w)
{
    cf_rec_put_str(w, GTAG_NAME, g->name);
    cf_rec_put_u64(w, GTAG_CREATED, g->created_at);
    if (g->source != CF_SOURCE_LOCAL)
        cf_rec_put_u64(w, GTAG_SOURCE, (uint64_t)g->source);
    if (g->directory_id != NULL)
        cf_rec_put_str(w, GTAG_DIRECTORY_ID, g->directory_id);
}

enum cf_status cf_group_create(struct cf_store *s, const struct cf_id *tenant, const char *name, struct cf_group *out)
{
    return cf_group_create_from(s, tenant, name, CF_SOURCE_LOCAL, NULL, out);
}

enum cf_status cf_group_create_from(struct cf_store *s, const struct cf_id *tenant, const char *name,
                                    enum cf_source source, const char *directory_id, struct cf_group *out)
{
    const struct cf_tkeys *tk;
    uint8_t nkey[48], gkey[32];
    char *val;
    size_t vlen;
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;
    if (name[0] == '\0' || strlen(name) > GROUP_NAME_MAX)
        return CF_EINVAL;
    group_name_key(tk, name, nkey);
    cf_ns_lock(s);
    st = cf_db_get(s, CF_CF_GROUP_NAMES, nkey, sizeof nkey, &val, &vlen);
    if (st == CF_OK) {
        free(val);
        st = CF_EEXIST;
        goto unlock;
    }
    if (st != CF_ENOTFOUND)
        goto unlock;
    memset(out, 0, sizeof *out);
    cf_id_new(&out->id);
    out->tenant = *tenant;
    out->name = cf_xstrdup(name);
    out->created_at = cf_now_ms();
    out->source = source;
    out->directory_id = directory_id != NULL ? cf_xstrdup(directory_id) : NULL;
    struct cf_rec_w w;
    cf_rec_w_init(&w);
    group_encode(out, &w);
    cf_key2(gkey, tenant, &out->id);
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_seal_batch_put(b, s, CF_CF_GROUPS, &tk->record, gkey, sizeof gkey, &w, NULL, 0);
    cf_batch_put(b, CF_CF_GROUP_NAMES, (const char *)nkey, sizeof nkey, (const char *)out->id.b, CF_ID_LEN);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
    cf_rec_w_free(&w);
    if (st != CF_OK)
        cf_group_clear(out);
unlock:
    cf_ns_unlock(s);
    return st;
}

enum cf_status cf_group_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                            struct cf_group *out)
{
    const struct cf_tkeys *tk;
    uint8_t key[32], *pt;
    size_t ptlen;
    memset(out, 0, sizeof *out);
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;
    cf_key2(key, tenant, id);
    if ((st = cf_get_sealed(s, CF_CF_GROUPS, &tk->record, key, sizeof key, &pt, &ptlen)) != CF_OK)
        return st;
    out->id = *id;
    out->tenant = *tenant;
    st = group_decode(pt, ptlen, out);
    cf_free_secret(pt, ptlen);
    if (st != CF_OK)
        cf_group_clear(out);
    return st;
}

static enum cf_status group_list_one(void *elem, const uint8_t *key, const uint8_t *pt, size_t ptlen, const void *ctx)
{
    struct cf_group *g = elem;
    g->tenant = *(const struct cf_id *)ctx;
    memcpy(g->id.b, key + CF_ID_LEN, CF_ID_LEN);
    return group_decode(pt, ptlen, g);
}

static void group_clear_elem(void *elem)
{
    cf_group_clear(elem);
}

enum cf_status cf_group_list(struct cf_store *s, const struct cf_id *tenant, struct cf_group **out, size_t *n)
{
    const struct cf_tkeys *tk;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    /* 33-byte keys beside the groups are departments (T ‖ 'D' ‖ id, storage/dept.c). */
    void *arr = NULL;
    enum cf_status st = cf_sealed_list(s, CF_CF_GROUPS, &tk->record, tenant->b, CF_ID_LEN, 2 * CF_ID_LEN,
                                       2 * CF_ID_LEN + 1, sizeof **out, group_list_one, group_clear_elem, tenant,
                                       &arr, n);
    if (st == CF_OK)
        *out = arr;
    return st;
}

/* The ids stored as the last 16 bytes of every key with prefix T ‖ a in cf. */
static enum cf_status id_suffixes(struct cf_store *s, enum cf_cf cf, const struct cf_id *tenant,
                                  const struct cf_id *a, struct cf_id **out, size_t *n)
{
    uint8_t prefix[32];
    cf_key2(prefix, tenant, a);
    return cf_id_suffixes(s, cf, prefix, sizeof prefix, NULL, NULL, out, n);
}

enum cf_status cf_group_members(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *group,
                                struct cf_id **out, size_t *n)
{
    return id_suffixes(s, CF_CF_MEMBERS, tenant, group, out, n);
}

enum cf_status cf_user_groups(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                              struct cf_id **out, size_t *n)
{
    /* Cached as the list of group ids under (tenant, user): every membership write invalidates that
     * prefix (db.c). */
    uint8_t key[32], *val;
    size_t vlen;
    bool absent;
    struct cf_cache_token tok = {0};
    cf_key2(key, tenant, user);
    if (cf_db_cache_get(s, CF_CF_MEMBERSHIPS, key, sizeof key, &val, &vlen, &absent, &tok) == CF_OK && !absent &&
        vlen % sizeof **out == 0) {
        *n = vlen / sizeof **out;
        *out = (struct cf_id *)val;
        return CF_OK;
    }
    free(val);
    enum cf_status st = id_suffixes(s, CF_CF_MEMBERSHIPS, tenant, user, out, n);
    if (st == CF_OK)
        cf_db_cache_put(s, CF_CF_MEMBERSHIPS, key, sizeof key, &tok, *out, *n * sizeof **out);
    return st;
}

static void triple_key(const struct cf_id *t, const struct cf_id *a, const struct cf_id *b, uint8_t key[48])
{
    cf_key2(key, t, a);
    memcpy(key + 32, b->b, CF_ID_LEN);
}

enum cf_status cf_group_set_members(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *group,
                                    const struct cf_id *users, size_t n)
{
    struct cf_id *old;
    size_t nold;
    uint8_t key[48];
    cf_ns_lock(s);
    enum cf_status st = cf_group_members(s, tenant, group, &old, &nold);
    if (st != CF_OK)
        goto unlock;
    struct cf_batch *b = cf_batch_new(s->eng);
    for (size_t i = 0; i < nold; i++) {
        triple_key(tenant, group, &old[i], key);
        cf_batch_delete(b, CF_CF_MEMBERS, (const char *)key, sizeof key);
        triple_key(tenant, &old[i], group, key);
        cf_batch_delete(b, CF_CF_MEMBERSHIPS, (const char *)key, sizeof key);
    }
    for (size_t i = 0; i < n; i++) {
        triple_key(tenant, group, &users[i], key);
        cf_batch_put(b, CF_CF_MEMBERS, (const char *)key, sizeof key, "", 0);
        triple_key(tenant, &users[i], group, key);
        cf_batch_put(b, CF_CF_MEMBERSHIPS, (const char *)key, sizeof key, "", 0);
    }
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
    free(old);
unlock:
    cf_ns_unlock(s);
    return st;
}

/* ---- renaming and deleting groups, deleting users (admin) ------------------------------------ */

enum cf_status cf_group_rename(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id, const char *name,
                               struct cf_group *out)
{
    const struct cf_tkeys *tk;
    uint8_t nkey[48], okey[48], gkey[32];
    char *val;
    size_t vlen;
    memset(out, 0, sizeof *out);
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    if (name[0] == '\0' || strlen(name) > GROUP_NAME_MAX)
        return CF_EINVAL;
    group_name_key(tk, name, nkey);
    cf_ns_lock(s);
    enum cf_status st = cf_group_get(s, tenant, id, out);
    if (st != CF_OK)
        goto unlock;
    /* The name index must be free, or already this group's (a change of case only). */
    if ((st = cf_db_get(s, CF_CF_GROUP_NAMES, nkey, sizeof nkey, &val, &vlen)) == CF_OK) {
        bool self = vlen == CF_ID_LEN && memcmp(val, id->b, CF_ID_LEN) == 0;
        free(val);
        if (!self) {
            st = CF_EEXIST;
            goto unlock;
        }
    } else if (st != CF_ENOTFOUND) {
        goto unlock;
    }
    group_name_key(tk, out->name, okey);
    free(out->name);
    out->name = cf_xstrdup(name);
    struct cf_rec_w w;
    cf_rec_w_init(&w);
    group_encode(out, &w);
    cf_key2(gkey, tenant, id);
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_seal_batch_put(b, s, CF_CF_GROUPS, &tk->record, gkey, sizeof gkey, &w, NULL, 0);
    if (memcmp(okey, nkey, sizeof nkey) != 0)
        cf_batch_delete(b, CF_CF_GROUP_NAMES, (const char *)okey, sizeof okey);
    cf_batch_put(b, CF_CF_GROUP_NAMES, (const char *)nkey, sizeof nkey, (const char *)id->b, CF_ID_LEN);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
    cf_rec_w_free(&w);
unlock:
    cf_ns_unlock(s);
    if (st != CF_OK)
        cf_group_clear(out);
    return st;
}

enum cf_status cf_group_delete(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id)
{
    const struct cf_tkeys *tk;
    struct cf_group g;
    struct cf_id *members = NULL;
    size_t n = 0;
    uint8_t nkey[48], key[48], gkey[32];
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    cf_ns_lock(s);
    enum cf_status st = cf_group_get(s, tenant, id, &g);
    if (st != CF_OK)
        goto unlock;
    if ((st = cf_group_members(s, tenant, id, &members, &n)) != CF_OK)
        goto clear;
    struct cf_batch *b = cf_batch_new(s->eng);
    for (size_t i = 0; i < n; i++) {
        triple_key(tenant, id, &members[i], key);
        cf_batch_delete(b, CF_CF_MEMBERS, (const char *)key, sizeof key);
        triple_key(tenant, &members[i], id, key);
        cf_batch_delete(b, CF_CF_MEMBERSHIPS, (const char *)key, sizeof key);
    }
    group_name_key(tk, g.name, nkey);
    cf_batch_delete(b, CF_CF_GROUP_NAMES, (const char *)nkey, sizeof nkey);
    cf_key2(gkey, tenant, id);
    cf_batch_delete(b, CF_CF_GROUPS, (const char *)gkey, sizeof gkey);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
    free(members);
clear:
    cf_group_clear(&g);
unlock:
    cf_ns_unlock(s);
    return st;
}

/* Deletes (into b) every key of cf that starts with T ‖ user. */
static enum cf_status delete_user_prefix(struct cf_store *s, enum cf_cf cf, const struct cf_id *tenant,
                                         const struct cf_id *user, struct cf_batch *b)
{
    uint8_t prefix[32];
    struct cf_iter it;
    cf_key2(prefix, tenant, user);
    cf_iter_open(s, cf, prefix, sizeof prefix, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl;
        const char *k = cf_eiter_key(it.it, &kl);
        cf_batch_delete(b, cf, k, kl);
    }
    enum cf_status st = cf_iter_status(&it);
    cf_iter_close(&it);
    return st;
}

enum cf_status cf_user_delete(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id)
{
    const struct cf_tkeys *tk;
    struct cf_user u;
    struct cf_id *groups = NULL;
    size_t ng = 0;
    uint8_t nkey[48], key[48], ukey[32];
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    /* user_lock: no concurrent update may write the record back */
    cf_cluster_lock(s, &s->user_lock, CF_ENG_LOCK_USER);
    enum cf_status st = cf_user_get(s, tenant, id, &u);
    if (st != CF_OK)
        goto unlock;
    if (u.status != CF_USER_OFFBOARDED) {
        st = CF_EEXIST;
        goto clear;
    }
    if ((st = cf_user_groups(s, tenant, id, &groups, &ng)) != CF_OK)
        goto clear;
    struct cf_batch *b = cf_batch_new(s->eng);
    for (size_t i = 0; i < ng; i++) {
        triple_key(tenant, &groups[i], id, key);
        cf_batch_delete(b, CF_CF_MEMBERS, (const char *)key, sizeof key);
        triple_key(tenant, id, &groups[i], key);
        cf_batch_delete(b, CF_CF_MEMBERSHIPS, (const char *)key, sizeof key);
    }
    st = cf_dept_forget_user(s, tenant, id, b); /* departments: a ghost member would keep one from deletion */
    static const enum cf_cf personal[] = {CF_CF_USER_SESSIONS, CF_CF_LOGINS, CF_CF_DEVICES, CF_CF_ALERTS};
    for (size_t i = 0; i < sizeof personal / sizeof personal[0] && st == CF_OK; i++)
        st = delete_user_prefix(s, personal[i], tenant, id, b);
    if (st == CF_OK) {
        username_key(tk, u.username, strlen(u.username), nkey);
        cf_batch_delete(b, CF_CF_USER_NAMES, (const char *)nkey, sizeof nkey);
        cf_key2(ukey, tenant, id);
        cf_batch_delete(b, CF_CF_USERS, (const char *)ukey, sizeof ukey);
        st = cf_db_write(s, b, true);
    }
    cf_batch_free(b);
    free(groups);
clear:
    cf_user_clear(&u);
unlock:
    cf_cluster_unlock(s, &s->user_lock, CF_ENG_LOCK_USER);
    return st;
}
