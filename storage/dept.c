/*
 * dept.c: departments (issue 23): a tree per tenant, and each user's departments (one primary, any
 * number of others).
 *
 * Layout (T = tenant id; 'D' = 0x44 is the tag byte that sets these keys apart from the groups' in
 * the same column families, together with their lengths, which no group key has):
 *   groups       T ‖ 'D' ‖ dept (33 bytes) → sealed (tenant record key) {name, parent (absent: top),
 *                source, created_at}
 *   group_names  T ‖ 'D' ‖ HMAC(tenant index key, "dept\0" ‖ parent ‖ lower(name)) (49) → dept id:
 *                the sibling-name index (names are unique among the children of one parent)
 *   members      T ‖ 'D' ‖ dept ‖ user (49) → u8: 1 primary, 0 other
 *   memberships  T ‖ 'D' ‖ user ‖ dept (49) → the same byte (the reverse index, read on every
 *                request that meets a department entry)
 * Every change is one batch under the namespace lock, so the tree never holds a cycle, a department
 * with members is never deleted, and both membership indexes always agree. The metadata cache holds
 * the department records (groups, 33-byte keys) and each user's department list (memberships, under
 * T ‖ 'D' ‖ user); db.c invalidates both on every write that touches them, so a move of a user or
 * of a department is seen by the very next request.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

enum { DTAG_NAME = 1, DTAG_PARENT = 2, DTAG_SOURCE = 3, DTAG_CREATED = 4 };
#define DEPT_TAG 'D'
#define DKEY_LEN (CF_ID_LEN + 1 + CF_ID_LEN)         /* T ‖ 'D' ‖ id */
#define DPAIR_LEN (CF_ID_LEN + 1 + 2 * CF_ID_LEN)    /* T ‖ 'D' ‖ a ‖ b */
#define DNAME_LEN (CF_ID_LEN + 1 + CF_SHA256_LEN)    /* T ‖ 'D' ‖ mac */

void cf_dept_clear(struct cf_dept *d)
{
    if (d == NULL)
        return;
    free(d->name);
    memset(d, 0, sizeof *d);
}

static void dept_key(const struct cf_id *tenant, const struct cf_id *id, uint8_t key[DKEY_LEN])
{
    memcpy(key, tenant->b, CF_ID_LEN);
    key[CF_ID_LEN] = DEPT_TAG;
    memcpy(key + CF_ID_LEN + 1, id->b, CF_ID_LEN);
}

static void pair_key(const struct cf_id *tenant, const struct cf_id *a, const struct cf_id *b, uint8_t key[DPAIR_LEN])
{
    dept_key(tenant, a, key);
    memcpy(key + DKEY_LEN, b->b, CF_ID_LEN);
}

/* Names may hold any UTF-8; the keyed hash folds ASCII case only (as group names). */
static void name_key(const struct cf_tkeys *tk, const struct cf_id *parent, const char *name, uint8_t key[DNAME_LEN])
{
    size_t n = strlen(name);
    char *buf = cf_xmalloc(5 + CF_ID_LEN + n);
    memcpy(buf, "dept", 5);
    memcpy(buf + 5, parent->b, CF_ID_LEN);
    for (size_t i = 0; i < n; i++)
        buf[5 + CF_ID_LEN + i] = (char)tolower((unsigned char)name[i]);
    memcpy(key, tk->tenant.b, CF_ID_LEN);
    key[CF_ID_LEN] = DEPT_TAG;
    cf_hmac_sha256(&tk->index, buf, 5 + CF_ID_LEN + n, key + CF_ID_LEN + 1);
    free(buf);
}

static bool name_ok(const char *name)
{
    return name != NULL && name[0] != '\0' && strlen(name) <= CF_DEPT_NAME_MAX;
}

static enum cf_status dept_decode(const uint8_t *p, size_t len, struct cf_dept *out)
{
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    uint64_t x;
    enum cf_status st = cf_rec_r_init(&r, p, len);
    if (st != CF_OK)
        return st;
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        switch (tag) {
        case DTAG_NAME:
            st = cf_rec_str(v, vl, &out->name);
            break;
        case DTAG_PARENT:
            st = cf_rec_id(v, vl, &out->parent);
            break;
        case DTAG_SOURCE:
            if ((st = cf_rec_u64(v, vl, &x)) == CF_OK && x > CF_SOURCE_DIRECTORY)
                st = CF_ECORRUPT;
            out->source = (enum cf_source)x;
            break;
        case DTAG_CREATED:
            st = cf_rec_u64(v, vl, &out->created_at);
            break;
        default:
            break;
        }
        if (st != CF_OK)
            return st;
    }
    return st == CF_ENOTFOUND && out->name != NULL ? CF_OK : CF_ECORRUPT;
}

static void dept_put(struct cf_batch *b, struct cf_store *s, const struct cf_tkeys *tk, const struct cf_dept *d)
{
    uint8_t key[DKEY_LEN];
    struct cf_rec_w w;
    cf_rec_w_init(&w);
    cf_rec_put_str(&w, DTAG_NAME, d->name);
    if (!cf_id_is_zero(&d->parent))
        cf_rec_put_id(&w, DTAG_PARENT, &d->parent);
    if (d->source != CF_SOURCE_LOCAL)
        cf_rec_put_u64(&w, DTAG_SOURCE, (uint64_t)d->source);
    cf_rec_put_u64(&w, DTAG_CREATED, d->created_at);
    dept_key(&tk->tenant, &d->id, key);
    cf_seal_batch_put(b, s, CF_CF_GROUPS, &tk->record, key, sizeof key, &w, NULL, 0);
    cf_rec_w_free(&w);
}

static enum cf_status dept_load(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *id,
                                struct cf_dept *out)
{
    uint8_t key[DKEY_LEN], *pt;
    size_t ptlen;
    memset(out, 0, sizeof *out);
    dept_key(&tk->tenant, id, key);
    enum cf_status st = cf_get_sealed(s, CF_CF_GROUPS, &tk->record, key, sizeof key, &pt, &ptlen);
    if (st != CF_OK)
        return st;
    out->id = *id;
    out->tenant = tk->tenant;
    st = dept_decode(pt, ptlen, out);
    cf_free_secret(pt, ptlen);
    if (st != CF_OK)
        cf_dept_clear(out);
    return st;
}

enum cf_status cf_dept_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id, struct cf_dept *out)
{
    const struct cf_tkeys *tk;
    memset(out, 0, sizeof *out);
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    return dept_load(s, tk, id, out);
}

static enum cf_status dept_list_one(void *elem, const uint8_t *key, const uint8_t *pt, size_t ptlen, const void *ctx)
{
    struct cf_dept *d = elem;
    d->tenant = *(const struct cf_id *)ctx;
    memcpy(d->id.b, key + CF_ID_LEN + 1, CF_ID_LEN);
    return dept_decode(pt, ptlen, d);
}

static void dept_clear_elem(void *elem)
{
    cf_dept_clear(elem);
}

enum cf_status cf_dept_list(struct cf_store *s, const struct cf_id *tenant, struct cf_dept **out, size_t *n)
{
    const struct cf_tkeys *tk;
    uint8_t prefix[CF_ID_LEN + 1];
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    memcpy(prefix, tenant->b, CF_ID_LEN);
    prefix[CF_ID_LEN] = DEPT_TAG;
    /* Keys of another length under T ‖ 'D' are groups whose id happens to start with the tag byte. */
    void *arr = NULL;
    enum cf_status st = cf_sealed_list(s, CF_CF_GROUPS, &tk->record, prefix, sizeof prefix, DKEY_LEN, SIZE_MAX,
                                       sizeof **out, dept_list_one, dept_clear_elem, tenant, &arr, n);
    if (st == CF_OK)
        *out = arr;
    return st;
}

enum cf_status cf_dept_ancestors(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                 struct cf_id **out, size_t *n)
{
    const struct cf_tkeys *tk;
    struct cf_idvec v = {0};
    struct cf_dept d;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    enum cf_status st = dept_load(s, tk, id, &d);
    if (st != CF_OK)
        return st;
    while (st == CF_OK && !cf_id_is_zero(&d.parent)) {
        struct cf_id up = d.parent;
        cf_dept_clear(&d);
        if (v.n > CF_DEPT_MAX_DEPTH || cf_id_equal(&up, id)) {
            st = CF_ECORRUPT; /* a cycle or a broken chain: never followed further */
            break;
        }
        cf_idvec_push(&v, &up);
        if ((st = dept_load(s, tk, &up, &d)) == CF_ENOTFOUND)
            st = CF_ECORRUPT;
    }
    cf_dept_clear(&d);
    if (st != CF_OK) {
        free(v.v);
        return st;
    }
    *out = v.v != NULL ? v.v : cf_xmalloc(1);
    *n = v.n;
    return CF_OK;
}

/* The depth of a department (0: top level); under ns_lock. */
static enum cf_status depth_of(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id, size_t *depth)
{
    struct cf_id *up;
    enum cf_status st = cf_dept_ancestors(s, tenant, id, &up, depth);
    if (st == CF_OK)
        free(up);
    return st;
}

/* Whether the sibling-name index entry is free, or already id's (a change of case only). */
static enum cf_status name_free(struct cf_store *s, const uint8_t nkey[DNAME_LEN], const struct cf_id *id)
{
    char *val;
    size_t vlen;
    enum cf_status st = cf_db_get(s, CF_CF_GROUP_NAMES, nkey, DNAME_LEN, &val, &vlen);
    if (st == CF_ENOTFOUND)
        return CF_OK;
    if (st != CF_OK)
        return st;
    bool self = id != NULL && vlen == CF_ID_LEN && memcmp(val, id->b, CF_ID_LEN) == 0;
    free(val);
    return self ? CF_OK : CF_EEXIST;
}

enum cf_status cf_dept_create(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *parent,
                              const char *name, enum cf_source source, struct cf_dept *out)
{
    const struct cf_tkeys *tk;
    uint8_t nkey[DNAME_LEN];
    struct cf_id top = {0};
    memset(out, 0, sizeof *out);
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    if (!name_ok(name) || (source != CF_SOURCE_LOCAL && source != CF_SOURCE_DIRECTORY))
        return CF_EINVAL;
    if (parent == NULL)
        parent = &top;
    name_key(tk, parent, name, nkey);
    cf_ns_lock(s);
    enum cf_status st = CF_OK;
    if (!cf_id_is_zero(parent)) {
        size_t depth;
        if ((st = depth_of(s, tenant, parent, &depth)) != CF_OK)
            goto unlock;
        if (depth + 1 >= CF_DEPT_MAX_DEPTH) {
            st = CF_EINVAL;
            goto unlock;
        }
    }
    if ((st = name_free(s, nkey, NULL)) != CF_OK)
        goto unlock;
    cf_id_new(&out->id);
    out->tenant = *tenant;
    out->parent = *parent;
    out->name = cf_xstrdup(name);
    out->source = source;
    out->created_at = cf_now_ms();
    struct cf_batch *b = cf_batch_new(s->eng);
    dept_put(b, s, tk, out);
    cf_batch_put(b, CF_CF_GROUP_NAMES, (const char *)nkey, sizeof nkey, (const char *)out->id.b, CF_ID_LEN);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
unlock:
    cf_ns_unlock(s);
    if (st != CF_OK)
        cf_dept_clear(out);
    return st;
}

enum cf_status cf_dept_rename(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id, const char *name,
                              struct cf_dept *out)
{
    const struct cf_tkeys *tk;
    uint8_t nkey[DNAME_LEN], okey[DNAME_LEN];
    memset(out, 0, sizeof *out);
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    if (!name_ok(name))
        return CF_EINVAL;
    cf_ns_lock(s);
    enum cf_status st = dept_load(s, tk, id, out);
    if (st != CF_OK)
        goto unlock;
    name_key(tk, &out->parent, name, nkey);
    if ((st = name_free(s, nkey, id)) != CF_OK)
        goto unlock;
    name_key(tk, &out->parent, out->name, okey);
    free(out->name);
    out->name = cf_xstrdup(name);
    struct cf_batch *b = cf_batch_new(s->eng);
    dept_put(b, s, tk, out);
    if (memcmp(okey, nkey, sizeof nkey) != 0)
        cf_batch_delete(b, CF_CF_GROUP_NAMES, (const char *)okey, sizeof okey);
    cf_batch_put(b, CF_CF_GROUP_NAMES, (const char *)nkey, sizeof nkey, (const char *)id->b, CF_ID_LEN);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
unlock:
    cf_ns_unlock(s);
    if (st != CF_OK)
        cf_dept_clear(out);
    return st;
}

/* The height of the subtree under id (0: no sub-departments), from the whole list; CF_ECORRUPT if
 * the stored tree is deeper than any create or move allows. */
static enum cf_status subtree_height(const struct cf_dept *all, size_t n, const struct cf_id *id, size_t level,
                                     size_t *height)
{
    if (level > CF_DEPT_MAX_DEPTH)
        return CF_ECORRUPT;
    if (level > *height)
        *height = level;
    for (size_t i = 0; i < n; i++)
        if (cf_id_equal(&all[i].parent, id)) {
            enum cf_status st = subtree_height(all, n, &all[i].id, level + 1, height);
            if (st != CF_OK)
                return st;
        }
    return CF_OK;
}

/* The move's checks under ns_lock: no cycle, not too deep. */
static enum cf_status move_check(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                 const struct cf_id *parent)
{
    if (cf_id_is_zero(parent))
        return CF_OK;
    if (cf_id_equal(parent, id))
        return CF_EINVAL;
    struct cf_id *up;
    size_t nup;
    enum cf_status st = cf_dept_ancestors(s, tenant, parent, &up, &nup);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; i < nup && st == CF_OK; i++)
        if (cf_id_equal(&up[i], id))
            st = CF_EINVAL; /* parent lies below id */
    free(up);
    if (st != CF_OK)
        return st;
    struct cf_dept *all;
    size_t n, height = 0;
    if ((st = cf_dept_list(s, tenant, &all, &n)) != CF_OK)
        return st;
    st = subtree_height(all, n, id, 0, &height);
    for (size_t i = 0; i < n; i++)
        cf_dept_clear(&all[i]);
    free(all);
    if (st == CF_OK && nup + 1 + height >= CF_DEPT_MAX_DEPTH)
        st = CF_EINVAL;
    return st;
}

enum cf_status cf_dept_move(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                            const struct cf_id *parent, struct cf_dept *out)
{
    const struct cf_tkeys *tk;
    uint8_t nkey[DNAME_LEN], okey[DNAME_LEN];
    struct cf_id top = {0};
    struct cf_dept p = {0};
    memset(out, 0, sizeof *out);
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    if (parent == NULL)
        parent = &top;
    cf_ns_lock(s);
    enum cf_status st = dept_load(s, tk, id, out);
    if (st != CF_OK)
        goto unlock;
    if (!cf_id_is_zero(parent) && (st = dept_load(s, tk, parent, &p)) != CF_OK)
        goto unlock;
    if (cf_id_equal(&out->parent, parent))
        goto unlock; /* already there: nothing to write */
    if ((st = move_check(s, tenant, id, parent)) != CF_OK)
        goto unlock;
    name_key(tk, parent, out->name, nkey);
    if ((st = name_free(s, nkey, NULL)) != CF_OK)
        goto unlock;
    name_key(tk, &out->parent, out->name, okey);
    out->parent = *parent;
    struct cf_batch *b = cf_batch_new(s->eng);
    dept_put(b, s, tk, out);
    cf_batch_delete(b, CF_CF_GROUP_NAMES, (const char *)okey, sizeof okey);
    cf_batch_put(b, CF_CF_GROUP_NAMES, (const char *)nkey, sizeof nkey, (const char *)id->b, CF_ID_LEN);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
unlock:
    cf_ns_unlock(s);
    cf_dept_clear(&p);
    if (st != CF_OK)
        cf_dept_clear(out);
    return st;
}

/* Whether any key of cf starts with prefix. */
static enum cf_status any_with_prefix(struct cf_store *s, enum cf_cf cf, const uint8_t *prefix, size_t plen,
                                      size_t klen, bool *any)
{
    struct cf_iter it;
    *any = false;
    cf_iter_open(s, cf, prefix, plen, &it);
    for (; cf_eiter_valid(it.it) && !*any; cf_eiter_next(it.it)) {
        size_t kl;
        (void)cf_eiter_key(it.it, &kl);
        *any = kl == klen;
    }
    enum cf_status st = cf_iter_status(&it);
    cf_iter_close(&it);
    return st;
}

enum cf_status cf_dept_delete(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id)
{
    const struct cf_tkeys *tk;
    struct cf_dept d, *all = NULL;
    size_t n = 0;
    uint8_t key[DKEY_LEN], nkey[DNAME_LEN];
    bool members;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    cf_ns_lock(s);
    enum cf_status st = dept_load(s, tk, id, &d);
    if (st != CF_OK)
        goto unlock;
    dept_key(tenant, id, key);
    if ((st = any_with_prefix(s, CF_CF_MEMBERS, key, sizeof key, DPAIR_LEN, &members)) != CF_OK)
        goto clear;
    if (members) {
        st = CF_EEXIST;
        goto clear;
    }
    if ((st = cf_dept_list(s, tenant, &all, &n)) != CF_OK)
        goto clear;
    for (size_t i = 0; i < n && st == CF_OK; i++)
        if (cf_id_equal(&all[i].parent, id))
            st = CF_EEXIST; /* a sub-department */
    if (st != CF_OK)
        goto clear;
    name_key(tk, &d.parent, d.name, nkey);
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_delete(b, CF_CF_GROUP_NAMES, (const char *)nkey, sizeof nkey);
    cf_batch_delete(b, CF_CF_GROUPS, (const char *)key, sizeof key);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
clear:
    for (size_t i = 0; i < n; i++)
        cf_dept_clear(&all[i]);
    free(all);
    cf_dept_clear(&d);
unlock:
    cf_ns_unlock(s);
    return st;
}

/* ---- a user's departments ---------------------------------------------------------------------- */

/* One entry of a user's cached department list: flag (1 primary) ‖ dept id. */
#define UENT_LEN (1 + CF_ID_LEN)

/* The user's departments as stored: entries of UENT_LEN bytes (malloc'ed, never NULL). */
static enum cf_status user_list_raw(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                                    uint8_t **out, size_t *n)
{
    uint8_t prefix[DKEY_LEN], *val;
    size_t vlen, cnt = 0, cap = 4;
    bool absent;
    struct cf_cache_token tok = {0};
    dept_key(tenant, user, prefix);
    if (cf_db_cache_get(s, CF_CF_MEMBERSHIPS, prefix, sizeof prefix, &val, &vlen, &absent, &tok) == CF_OK &&
        !absent && vlen % UENT_LEN == 0) {
        *n = vlen / UENT_LEN;
        *out = val != NULL ? val : cf_xmalloc(1);
        return CF_OK;
    }
    free(val);
    uint8_t *arr = cf_xmalloc(cap * UENT_LEN);
    struct cf_iter it;
    enum cf_status st = CF_OK;
    cf_iter_open(s, CF_CF_MEMBERSHIPS, prefix, sizeof prefix, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl;
        const char *k = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        if (kl != DPAIR_LEN)
            continue; /* a group membership of a user whose id starts with the tag byte */
        if (vl != 1 || (uint8_t)v[0] > 1) {
            st = CF_ECORRUPT;
            break;
        }
        if (cnt == cap) {
            cap *= 2;
            arr = cf_xrealloc(arr, cap * UENT_LEN);
        }
        arr[cnt * UENT_LEN] = (uint8_t)v[0];
        memcpy(arr + cnt * UENT_LEN + 1, k + DKEY_LEN, CF_ID_LEN);
        cnt++;
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    if (st != CF_OK) {
        free(arr);
        return st;
    }
    cf_db_cache_put(s, CF_CF_MEMBERSHIPS, prefix, sizeof prefix, &tok, arr, cnt * UENT_LEN);
    *out = arr;
    *n = cnt;
    return CF_OK;
}

enum cf_status cf_user_depts(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                             struct cf_id *primary, struct cf_id **others, size_t *n)
{
    uint8_t *raw;
    size_t cnt;
    enum cf_status st = user_list_raw(s, tenant, user, &raw, &cnt);
    if (st != CF_OK)
        return st;
    memset(primary, 0, sizeof *primary);
    struct cf_id *arr = cf_xcalloc(cnt + 1, sizeof *arr);
    size_t k = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (raw[i * UENT_LEN] == 1)
            memcpy(primary->b, raw + i * UENT_LEN + 1, CF_ID_LEN);
        else
            memcpy(arr[k++].b, raw + i * UENT_LEN + 1, CF_ID_LEN);
    }
    free(raw);
    *others = arr;
    *n = k;
    return CF_OK;
}

enum cf_status cf_dept_members(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *dept,
                               struct cf_id **out, size_t *n)
{
    uint8_t prefix[DKEY_LEN];
    dept_key(tenant, dept, prefix);
    return cf_id_suffixes(s, CF_CF_MEMBERS, prefix, sizeof prefix, NULL, NULL, out, n);
}

static bool id_in(const struct cf_id *id, const struct cf_id *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cf_id_equal(id, &v[i]))
            return true;
    return false;
}

enum cf_status cf_dept_forget_user(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                                   struct cf_batch *b)
{
    uint8_t *raw, key[DPAIR_LEN];
    size_t cnt;
    enum cf_status st = user_list_raw(s, tenant, user, &raw, &cnt);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; i < cnt; i++) {
        struct cf_id d;
        memcpy(d.b, raw + i * UENT_LEN + 1, CF_ID_LEN);
        pair_key(tenant, &d, user, key);
        cf_batch_delete(b, CF_CF_MEMBERS, (const char *)key, sizeof key);
        pair_key(tenant, user, &d, key);
        cf_batch_delete(b, CF_CF_MEMBERSHIPS, (const char *)key, sizeof key);
    }
    free(raw);
    return CF_OK;
}

enum cf_status cf_user_set_depts(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                                 const struct cf_id *primary, const struct cf_id *others, size_t n)
{
    const struct cf_tkeys *tk;
    struct cf_id zero = {0}, *want = cf_xcalloc(n + 2, sizeof *want), *old = NULL;
    uint8_t *raw = NULL;
    size_t nwant = 0, nold = 0;
    uint8_t key[DPAIR_LEN];
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK) {
        free(want);
        return CF_ENOTFOUND;
    }
    if (primary == NULL)
        primary = &zero;
    bool has_primary = !cf_id_is_zero(primary);
    if (has_primary)
        want[nwant++] = *primary;
    for (size_t i = 0; i < n; i++)
        if (!cf_id_is_zero(&others[i]) && !id_in(&others[i], want, nwant))
            want[nwant++] = others[i];
    if (nwant > CF_DEPT_MAX_PER_USER) {
        free(want);
        return CF_EINVAL;
    }
    cf_ns_lock(s);
    enum cf_status st = CF_OK;
    for (size_t i = 0; i < nwant && st == CF_OK; i++) {
        struct cf_dept d;
        if ((st = dept_load(s, tk, &want[i], &d)) == CF_OK)
            cf_dept_clear(&d);
    }
    if (st != CF_OK)
        goto unlock;
    if ((st = user_list_raw(s, tenant, user, &raw, &nold)) != CF_OK)
        goto unlock;
    old = cf_xcalloc(nold + 1, sizeof *old);
    for (size_t i = 0; i < nold; i++)
        memcpy(old[i].b, raw + i * UENT_LEN + 1, CF_ID_LEN);
    struct cf_batch *b = cf_batch_new(s->eng);
    for (size_t i = 0; i < nold; i++) {
        if (id_in(&old[i], want, nwant))
            continue; /* rewritten below */
        pair_key(tenant, &old[i], user, key);
        cf_batch_delete(b, CF_CF_MEMBERS, (const char *)key, sizeof key);
        pair_key(tenant, user, &old[i], key);
        cf_batch_delete(b, CF_CF_MEMBERSHIPS, (const char *)key, sizeof key);
    }
    for (size_t i = 0; i < nwant; i++) {
        char flag = has_primary && i == 0 ? 1 : 0;
        pair_key(tenant, &want[i], user, key);
        cf_batch_put(b, CF_CF_MEMBERS, (const char *)key, sizeof key, &flag, 1);
        pair_key(tenant, user, &want[i], key);
        cf_batch_put(b, CF_CF_MEMBERSHIPS, (const char *)key, sizeof key, &flag, 1);
    }
    if (nold > 0 || nwant > 0)
        st = cf_db_write(s, b, true);
    cf_batch_free(b);
unlock:
    cf_ns_unlock(s);
    free(raw);
    free(old);
    free(want);
    return st;
}
