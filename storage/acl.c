/*
 * acl.c: per-node access control entries and the grants index.
 *
 * Layout (T = tenant id):
 *   acl     T ‖ node → sealed record, one field per entry: kind:u8 ‖ principal:16 ‖ level:u8, and
 *           for a department entry that covers its sub-departments a flags byte (1) after it (issue
 *           23: entries written before have no flags byte and decode unchanged)
 *   grants  T ‖ kind:u8 ‖ principal:16 ‖ node → level:u8 (‖ flags:u8, as in the entry)
 * The grants index answers "what was shared with this user or group" without walking the tree. Both
 * change together, in one batch under the namespace lock, so they never disagree. What a level
 * means, inheritance and precedence are decided in src/acl.c; storage keeps entries as given.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

enum { ATAG_ENTRY = 1 };
#define ENTRY_LEN (1 + CF_ID_LEN + 1)
#define EFLAG_SUBDEPTS 1
#define GRANT_KEY_LEN (CF_ID_LEN + 1 + CF_ID_LEN + CF_ID_LEN)

static void grant_key(const struct cf_id *tenant, enum cf_principal_kind kind, const struct cf_id *principal,
                      const struct cf_id *node, uint8_t key[GRANT_KEY_LEN])
{
    memcpy(key, tenant->b, CF_ID_LEN);
    key[16] = (uint8_t)kind;
    memcpy(key + 17, principal->b, CF_ID_LEN);
    memcpy(key + 33, node->b, CF_ID_LEN);
}

static enum cf_status acl_load(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *node,
                               struct cf_acl_entry **out, size_t *n)
{
    uint8_t key[32], *pt;
    size_t ptlen;
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    *out = NULL;
    *n = 0;
    cf_key2(key, &tk->tenant, node);
    enum cf_status st = cf_get_sealed(s, CF_CF_ACL, &tk->record, key, sizeof key, &pt, &ptlen);
    if (st == CF_ENOTFOUND) {
        *out = cf_xmalloc(sizeof **out);
        return CF_OK;
    }
    if (st != CF_OK)
        return st;
    struct cf_acl_entry *arr = cf_xcalloc(CF_ACL_MAX_ENTRIES, sizeof *arr);
    size_t cnt = 0;
    if ((st = cf_rec_r_init(&r, pt, ptlen)) != CF_OK)
        goto done;
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        if (tag != ATAG_ENTRY)
            continue;
        if ((vl != ENTRY_LEN && vl != ENTRY_LEN + 1) || cnt == CF_ACL_MAX_ENTRIES || v[0] < CF_PRINCIPAL_USER ||
            v[0] > CF_PRINCIPAL_DEPT || v[17] < 1 || v[17] > 4 ||
            (vl == ENTRY_LEN + 1 && (v[0] != CF_PRINCIPAL_DEPT || v[18] != EFLAG_SUBDEPTS))) {
            st = CF_ECORRUPT;
            goto done;
        }
        arr[cnt].kind = (enum cf_principal_kind)v[0];
        memcpy(arr[cnt].principal.b, v + 1, CF_ID_LEN);
        arr[cnt].level = v[17];
        arr[cnt].subdepartments = vl == ENTRY_LEN + 1;
        cnt++;
    }
    if (st == CF_ENOTFOUND)
        st = CF_OK;
done:
    cf_free_secret(pt, ptlen);
    if (st != CF_OK) {
        free(arr);
        return st;
    }
    *out = arr;
    *n = cnt;
    return CF_OK;
}

enum cf_status cf_acl_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                          struct cf_acl_entry **out, size_t *n)
{
    const struct cf_tkeys *tk;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    return acl_load(s, tk, node, out, n);
}

enum cf_status cf_acl_batch_drop(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *node,
                                 struct cf_batch *b)
{
    struct cf_acl_entry *e;
    size_t n;
    uint8_t key[32], gkey[GRANT_KEY_LEN];
    enum cf_status st = acl_load(s, tk, node, &e, &n);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        grant_key(&tk->tenant, e[i].kind, &e[i].principal, node, gkey);
        cf_batch_delete(b, CF_CF_GRANTS, (const char *)gkey, sizeof gkey);
    }
    cf_key2(key, &tk->tenant, node);
    cf_batch_delete(b, CF_CF_ACL, (const char *)key, sizeof key);
    free(e);
    return CF_OK;
}

enum cf_status cf_acl_put(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                          const struct cf_acl_entry *e, size_t n)
{
    const struct cf_tkeys *tk;
    uint8_t key[32], gkey[GRANT_KEY_LEN], ent[ENTRY_LEN + 1];
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    if (n > CF_ACL_MAX_ENTRIES)
        return CF_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (e[i].kind < CF_PRINCIPAL_USER || e[i].kind > CF_PRINCIPAL_DEPT || e[i].level < 1 || e[i].level > 4 ||
            (e[i].subdepartments && e[i].kind != CF_PRINCIPAL_DEPT))
            return CF_EINVAL;
    cf_ns_lock(s);
    struct cf_batch *b = cf_batch_new(s->eng);
    enum cf_status st = cf_acl_batch_drop(s, tk, node, b);
    if (st != CF_OK)
        goto out;
    if (n > 0) {
        struct cf_rec_w w;
        cf_rec_w_init(&w);
        for (size_t i = 0; i < n; i++) {
            ent[0] = (uint8_t)e[i].kind;
            memcpy(ent + 1, e[i].principal.b, CF_ID_LEN);
            ent[17] = e[i].level;
            ent[18] = EFLAG_SUBDEPTS;
            size_t elen = e[i].subdepartments ? ENTRY_LEN + 1 : ENTRY_LEN;
            cf_rec_put_bytes(&w, ATAG_ENTRY, ent, elen);
            grant_key(tenant, e[i].kind, &e[i].principal, node, gkey);
            cf_batch_put(b, CF_CF_GRANTS, (const char *)gkey, sizeof gkey, (const char *)ent + 17, elen - 17);
        }
        cf_key2(key, tenant, node);
        cf_seal_batch_put(b, s, CF_CF_ACL, &tk->record, key, sizeof key, &w, NULL, 0);
        cf_rec_w_free(&w);
    }
    st = cf_db_write(s, b, true);
out:
    cf_batch_free(b);
    cf_ns_unlock(s);
    return st;
}

enum cf_status cf_grants_of(struct cf_store *s, const struct cf_id *tenant, enum cf_principal_kind kind,
                            const struct cf_id *principal, struct cf_grant **out, size_t *n)
{
    uint8_t prefix[33];
    struct cf_iter it;
    size_t cnt = 0, cap = 8;
    enum cf_status st = CF_OK;
    memcpy(prefix, tenant->b, CF_ID_LEN);
    prefix[16] = (uint8_t)kind;
    memcpy(prefix + 17, principal->b, CF_ID_LEN);
    struct cf_grant *arr = cf_xmalloc(cap * sizeof *arr);
    cf_iter_open(s, CF_CF_GRANTS, prefix, sizeof prefix, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl;
        const char *k = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        if (kl != GRANT_KEY_LEN || (vl != 1 && !(vl == 2 && (uint8_t)v[1] == EFLAG_SUBDEPTS))) {
            st = CF_ECORRUPT;
            break;
        }
        if (cnt == cap) {
            cap *= 2;
            arr = cf_xrealloc(arr, cap * sizeof *arr);
        }
        memcpy(arr[cnt].node.b, k + 33, CF_ID_LEN);
        arr[cnt].level = (uint8_t)v[0];
        arr[cnt].subdepartments = vl == 2;
        cnt++;
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    if (st != CF_OK) {
        free(arr);
        return st;
    }
    *out = arr;
    *n = cnt;
    return CF_OK;
}
