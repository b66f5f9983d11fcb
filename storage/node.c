/*
 * node.c: the namespace: node records, the children index, folders, move/rename and trash (purge.c
 * destroys subtrees).
 *
 * Invariants:
 * - A live node with a parent has exactly one children entry, T ‖ parent ‖ HMAC(index key,
 *   parent ‖ name), whose value is its id; a trashed node has none (its name is free) and one trash
 *   entry. Space roots have no parent and no children entry.
 * - Every change to names or parents happens under s->ns_lock in one synchronous batch, so two
 *   concurrent creates of one name cannot both succeed and no reader sees half a move.
 * - Node record tags are below; unknown tags are skipped so later issues can add fields.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

enum {
    TAG_TYPE = 1,
    TAG_ROOT_KIND = 2,
    TAG_NAME = 3,
    TAG_PARENT = 4,
    TAG_OWNER = 5,
    TAG_CREATED = 6,
    TAG_MODIFIED = 7,
    TAG_TRASHED = 8,
    TAG_VERSION = 9,
    TAG_SIZE = 10,
    TAG_SHA256 = 11,
    TAG_MIME = 12,
    TAG_ARCHIVED = 13,
    TAG_SCAN_RESULT = 14,
    TAG_SCAN_DETAIL = 15,
    TAG_SCAN_ENGINE = 16,
    TAG_SCAN_DATABASE = 17,
    TAG_SCAN_AT = 18,
};

void cf_scan_summary_clear(struct cf_scan_summary *s)
{
    free(s->result);
    free(s->detail);
    free(s->engine);
    free(s->database);
    memset(s, 0, sizeof *s);
}

void cf_node_clear(struct cf_node *n)
{
    if (n == NULL)
        return;
    free(n->name);
    free(n->mime);
    cf_scan_summary_clear(&n->scan);
    memset(n, 0, sizeof *n);
}

void cf_node_encode(const struct cf_node *n, struct cf_rec_w *w)
{
    cf_rec_put_u64(w, TAG_TYPE, (uint64_t)n->type);
    if (n->root_kind != CF_SPACE_NONE)
        cf_rec_put_u64(w, TAG_ROOT_KIND, (uint64_t)n->root_kind);
    cf_rec_put_str(w, TAG_NAME, n->name != NULL ? n->name : "");
    if (!cf_id_is_zero(&n->parent))
        cf_rec_put_id(w, TAG_PARENT, &n->parent);
    if (!cf_id_is_zero(&n->owner))
        cf_rec_put_id(w, TAG_OWNER, &n->owner);
    cf_rec_put_u64(w, TAG_CREATED, n->created_at);
    cf_rec_put_u64(w, TAG_MODIFIED, n->modified_at);
    if (n->trashed_at != 0)
        cf_rec_put_u64(w, TAG_TRASHED, n->trashed_at);
    if (n->archived_at != 0)
        cf_rec_put_u64(w, TAG_ARCHIVED, n->archived_at);
    if (n->type == CF_NODE_FILE) {
        cf_rec_put_u64(w, TAG_VERSION, n->version);
        cf_rec_put_u64(w, TAG_SIZE, n->size);
        cf_rec_put_bytes(w, TAG_SHA256, n->sha256, sizeof n->sha256);
        cf_rec_put_str(w, TAG_MIME, n->mime);
        if (n->scan.result != NULL) {
            cf_rec_put_str(w, TAG_SCAN_RESULT, n->scan.result);
            if (n->scan.detail != NULL)
                cf_rec_put_str(w, TAG_SCAN_DETAIL, n->scan.detail);
            cf_rec_put_str(w, TAG_SCAN_ENGINE, n->scan.engine != NULL ? n->scan.engine : "");
            cf_rec_put_str(w, TAG_SCAN_DATABASE, n->scan.database != NULL ? n->scan.database : "");
            cf_rec_put_u64(w, TAG_SCAN_AT, n->scan.at);
        }
    }
}

enum cf_status cf_node_decode(const uint8_t *p, size_t len, struct cf_node *out)
{
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    uint64_t u;
    enum cf_status st;
    struct cf_id tenant = out->tenant, id = out->id;

    memset(out, 0, sizeof *out);
    out->tenant = tenant;
    out->id = id;
    if ((st = cf_rec_r_init(&r, p, len)) != CF_OK)
        return st;
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        switch (tag) {
        case TAG_TYPE:
            if ((st = cf_rec_u64(v, vl, &u)) != CF_OK)
                goto fail;
            if (u != CF_NODE_FOLDER && u != CF_NODE_FILE) {
                st = CF_ECORRUPT;
                goto fail;
            }
            out->type = (enum cf_node_type)u;
            break;
        case TAG_ROOT_KIND:
            if ((st = cf_rec_u64(v, vl, &u)) != CF_OK)
                goto fail;
            if (u != CF_SPACE_PRIVATE && u != CF_SPACE_TENANT) {
                st = CF_ECORRUPT;
                goto fail;
            }
            out->root_kind = (enum cf_space_kind)u;
            break;
        case TAG_NAME:
            st = cf_rec_str(v, vl, &out->name);
            break;
        case TAG_PARENT:
            st = cf_rec_id(v, vl, &out->parent);
            break;
        case TAG_OWNER:
            st = cf_rec_id(v, vl, &out->owner);
            break;
        case TAG_CREATED:
            st = cf_rec_u64(v, vl, &out->created_at);
            break;
        case TAG_MODIFIED:
            st = cf_rec_u64(v, vl, &out->modified_at);
            break;
        case TAG_TRASHED:
            st = cf_rec_u64(v, vl, &out->trashed_at);
            break;
        case TAG_ARCHIVED:
            st = cf_rec_u64(v, vl, &out->archived_at);
            break;
        case TAG_VERSION:
            if ((st = cf_rec_u64(v, vl, &u)) == CF_OK && u > UINT32_MAX)
                st = CF_ECORRUPT;
            out->version = (uint32_t)u;
            break;
        case TAG_SIZE:
            st = cf_rec_u64(v, vl, &out->size);
            break;
        case TAG_SHA256:
            if (vl != CF_SHA256_LEN)
                st = CF_ECORRUPT;
            else
                memcpy(out->sha256, v, vl);
            break;
        case TAG_MIME:
            st = cf_rec_str(v, vl, &out->mime);
            break;
        case TAG_SCAN_RESULT:
            st = cf_rec_str(v, vl, &out->scan.result);
            break;
        case TAG_SCAN_DETAIL:
            st = cf_rec_str(v, vl, &out->scan.detail);
            break;
        case TAG_SCAN_ENGINE:
            st = cf_rec_str(v, vl, &out->scan.engine);
            break;
        case TAG_SCAN_DATABASE:
            st = cf_rec_str(v, vl, &out->scan.database);
            break;
        case TAG_SCAN_AT:
            st = cf_rec_u64(v, vl, &out->scan.at);
            break;
        default:
            break;
        }
        if (st != CF_OK)
            goto fail;
    }
    if (st != CF_ENOTFOUND)
        goto fail;
    if (out->type == 0 || out->name == NULL) {
        st = CF_ECORRUPT;
        goto fail;
    }
    if (out->type == CF_NODE_FILE && out->mime == NULL)
        out->mime = cf_xstrdup("application/octet-stream");
    return CF_OK;
fail:
    cf_node_clear(out);
    out->tenant = tenant;
    out->id = id;
    return st;
}

void cf_node_batch_put(struct cf_batch *b, struct cf_store *s, const struct cf_tkeys *tk, const struct cf_node *n)
{
    uint8_t key[32];
    struct cf_rec_w w;
    cf_key2(key, &tk->tenant, &n->id);
    cf_rec_w_init(&w);
    cf_node_encode(n, &w);
    cf_seal_batch_put(b, s, CF_CF_NODES, &tk->record, key, sizeof key, &w, NULL, 0);
    cf_rec_w_free(&w);
}

enum cf_status cf_node_load(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *id, struct cf_node *out)
{
    uint8_t key[32], *pt;
    size_t ptlen;
    cf_key2(key, &tk->tenant, id);
    enum cf_status st = cf_get_sealed(s, CF_CF_NODES, &tk->record, key, sizeof key, &pt, &ptlen);
    if (st != CF_OK)
        return st;
    out->tenant = tk->tenant;
    out->id = *id;
    st = cf_node_decode(pt, ptlen, out);
    cf_free_secret(pt, ptlen);
    return st;
}

enum cf_status cf_node_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id, struct cf_node *out)
{
    const struct cf_tkeys *tk;
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return st == CF_ECORRUPT ? st : CF_ENOTFOUND;
    return cf_node_load(s, tk, id, out);
}

void cf_children_key(const struct cf_tkeys *tk, const struct cf_id *parent, const char *name, size_t n, uint8_t out[64])
{
    cf_key2(out, &tk->tenant, parent);
    /* The parent is part of the MAC input so that equal names in different folders do not show as
     * equal hashes on disk. */
    cf_hmac2_sha256(&tk->index, parent->b, CF_ID_LEN, name, n, out + 32);
}

void cf_put_child(struct cf_batch *b, const uint8_t key[64], const struct cf_id *id)
{
    cf_batch_put(b, CF_CF_CHILDREN, (const char *)key, 64, (const char *)id->b, CF_ID_LEN);
}

enum cf_status cf_child_by_key(struct cf_store *s, const uint8_t key[64], struct cf_id *out)
{
    char *val;
    size_t vlen;
    enum cf_status st = cf_db_get(s, CF_CF_CHILDREN, key, 64, &val, &vlen);
    if (st != CF_OK)
        return st;
    if (vlen != CF_ID_LEN) {
        free(val);
        return CF_ECORRUPT;
    }
    memcpy(out->b, val, CF_ID_LEN);
    free(val);
    return CF_OK;
}

enum cf_status cf_node_find_child(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *parent,
                                  const char *name, size_t n, struct cf_id *out)
{
    const struct cf_tkeys *tk;
    uint8_t key[64];
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;
    cf_children_key(tk, parent, name, n, key);
    return cf_child_by_key(s, key, out);
}

void cf_owned_put(struct cf_batch *b, const struct cf_id *tenant, const struct cf_id *owner,
                  const struct cf_id *node, bool add)
{
    uint8_t key[48];
    if (cf_id_is_zero(owner))
        return;
    cf_key2(key, tenant, owner);
    memcpy(key + 32, node->b, CF_ID_LEN);
    if (add)
        cf_batch_put(b, CF_CF_OWNED, (const char *)key, sizeof key, "", 0);
    else
        cf_batch_delete(b, CF_CF_OWNED, (const char *)key, sizeof key);
}

void cf_root_create(struct cf_batch *b, struct cf_store *s, const struct cf_tkeys *tk, enum cf_space_kind kind,
                    const struct cf_id *owner, struct cf_id *out)
{
    struct cf_node root = {0};
    cf_id_new(&root.id);
    root.tenant = tk->tenant;
    root.type = CF_NODE_FOLDER;
    root.root_kind = kind;
    root.name = (char *)"";
    if (owner != NULL)
        root.owner = *owner;
    root.created_at = root.modified_at = cf_now_ms();
    cf_node_batch_put(b, s, tk, &root);
    *out = root.id;
}

enum cf_status cf_live_folder(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *id,
                                  struct cf_node *out)
{
    enum cf_status st = cf_node_load(s, tk, id, out);
    if (st != CF_OK)
        return st;
    if (out->type != CF_NODE_FOLDER || out->trashed_at != 0) {
        cf_node_clear(out);
        return CF_ENOTFOUND;
    }
    return CF_OK;
}

enum cf_status cf_folder_create(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *parent,
                                const char *name, size_t n, const struct cf_id *owner, struct cf_node *out)
{
    const struct cf_tkeys *tk;
    struct cf_node p = {0};
    struct cf_id existing;
    uint8_t ckey[64];
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;

    cf_ns_lock(s);
    if ((st = cf_live_folder(s, tk, parent, &p)) != CF_OK)
        goto unlock;
    cf_children_key(tk, parent, name, n, ckey);
    st = cf_child_by_key(s, ckey, &existing);
    if (st == CF_OK) {
        st = CF_EEXIST;
        goto unlock;
    }
    if (st != CF_ENOTFOUND)
        goto unlock;

    memset(out, 0, sizeof *out);
    cf_id_new(&out->id);
    out->tenant = *tenant;
    out->parent = *parent;
    out->owner = *owner;
    out->type = CF_NODE_FOLDER;
    out->name = cf_xstrndup(name, n);
    out->created_at = out->modified_at = cf_now_ms();
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_node_batch_put(b, s, tk, out);
    cf_put_child(b, ckey, &out->id);
    cf_owned_put(b, tenant, owner, &out->id, true);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
    if (st != CF_OK)
        cf_node_clear(out);
unlock:
    cf_ns_unlock(s);
    cf_node_clear(&p);
    return st;
}

enum cf_status cf_children_list(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *parent,
                                const uint8_t *cursor, size_t limit, struct cf_node **items, size_t *n,
                                uint8_t next[CF_CURSOR_LEN], bool *has_more)
{
    const struct cf_tkeys *tk;
    uint8_t prefix[32];
    struct cf_iter it;
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    *items = NULL;
    *n = 0;
    *has_more = false;
    if (st != CF_OK)
        return CF_ENOTFOUND;

    cf_key2(prefix, tenant, parent);
    cf_iter_open(s, CF_CF_CHILDREN, prefix, sizeof prefix, &it);
    if (cursor != NULL) {
        uint8_t seek[64];
        memcpy(seek, prefix, 32);
        memcpy(seek + 32, cursor, CF_CURSOR_LEN);
        cf_eiter_seek(it.it, (const char *)seek, sizeof seek);
        size_t kl;
        const char *k = cf_eiter_valid(it.it) ? cf_eiter_key(it.it, &kl) : NULL;
        if (k != NULL && kl == 64 && memcmp(k, seek, 64) == 0)
            cf_eiter_next(it.it);
    }
    struct cf_node *arr = cf_xcalloc(limit == 0 ? 1 : limit, sizeof *arr);
    size_t cnt = 0;
    st = CF_OK;
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl;
        const char *k = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        if (kl != 64 || vl != CF_ID_LEN) {
            st = CF_ECORRUPT;
            break;
        }
        if (cnt == limit) {
            *has_more = true;
            break;
        }
        struct cf_id cid;
        memcpy(cid.b, v, CF_ID_LEN);
        if ((st = cf_node_load(s, tk, &cid, &arr[cnt])) != CF_OK) {
            /* An index entry whose node is missing is corruption, not absence. */
            if (st == CF_ENOTFOUND)
                st = CF_ECORRUPT;
            break;
        }
        memcpy(next, k + 32, CF_CURSOR_LEN);
        cnt++;
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    if (st != CF_OK) {
        for (size_t i = 0; i < cnt; i++)
            cf_node_clear(&arr[i]);
        free(arr);
        *has_more = false;
        return st;
    }
    *items = arr;
    *n = cnt;
    return CF_OK;
}

enum cf_status cf_node_move(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                            const struct cf_id *new_parent, const char *new_name, size_t nlen, struct cf_node *out)
{
    return cf_node_move_checked(s, tenant, id, new_parent, new_name, nlen, NULL, NULL, out);
}

enum cf_status cf_node_move_checked(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                    const struct cf_id *new_parent, const char *new_name, size_t nlen,
                                    cf_move_check_fn check, void *ctx, struct cf_node *out)
{
    return cf_node_move_replacing(s, tenant, id, new_parent, new_name, nlen, NULL, check, ctx, out);
}

enum cf_status cf_node_move_replacing(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                      const struct cf_id *new_parent, const char *new_name, size_t nlen,
                                      const struct cf_id *replace, cf_move_check_fn check, void *ctx,
                                      struct cf_node *out)
{
    const struct cf_tkeys *tk;
    struct cf_node node = {0}, target = {0}, walk = {0}, gone = {0};
    struct cf_id existing;
    uint8_t oldkey[64], newkey[64];
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;

    cf_ns_lock(s);
    if ((st = cf_node_load(s, tk, id, &node)) != CF_OK)
        goto unlock;
    if (node.trashed_at != 0 || cf_id_is_zero(&node.parent)) {
        st = node.trashed_at != 0 ? CF_ENOTFOUND : CF_EDENIED;
        goto unlock;
    }
    struct cf_id dest = new_parent != NULL ? *new_parent : node.parent;
    const char *name = new_name != NULL ? new_name : node.name;
    size_t namelen = new_name != NULL ? nlen : strlen(node.name);

    if (!cf_id_equal(&dest, &node.parent)) {
        if ((st = cf_live_folder(s, tk, &dest, &target)) != CF_OK)
            goto unlock;
        /* A folder may not move into itself or below itself: walk up from the destination. */
        struct cf_id cur = dest;
        for (;;) {
            if (cf_id_equal(&cur, id)) {
                st = CF_EINVAL;
                goto unlock;
            }
            cf_node_clear(&walk);
            if ((st = cf_node_load(s, tk, &cur, &walk)) != CF_OK)
                goto unlock;
            if (cf_id_is_zero(&walk.parent))
                break;
            cur = walk.parent;
        }
        /* The caller's access decision, taken under the same lock as the write. */
        if (check != NULL && (st = check(ctx, &node, &dest)) != CF_OK)
            goto unlock;
    }
    cf_children_key(tk, &node.parent, node.name, strlen(node.name), oldkey);
    cf_children_key(tk, &dest, name, namelen, newkey);
    st = cf_child_by_key(s, newkey, &existing);
    /* The node replaced (WebDAV's Overwrite: T) goes to the trash in the move's batch; if it is gone
     * already the name is free, and any other node there refuses the move. */
    bool replacing = st == CF_OK && replace != NULL && cf_id_equal(&existing, replace) && !cf_id_equal(&existing, id);
    if (st == CF_OK && !cf_id_equal(&existing, id) && !replacing) {
        st = CF_EEXIST;
        goto unlock;
    }
    if (st != CF_OK && st != CF_ENOTFOUND)
        goto unlock;
    if (replacing) {
        if ((st = cf_node_load(s, tk, replace, &gone)) != CF_OK)
            goto unlock;
        if (cf_id_is_zero(&gone.parent)) {
            st = CF_EDENIED;
            goto unlock;
        }
    }

    char *newname = cf_xstrndup(name, namelen);
    free(node.name);
    node.name = newname;
    node.parent = dest;
    node.modified_at = cf_now_ms();
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_delete(b, CF_CF_CHILDREN, (const char *)oldkey, sizeof oldkey);
    if (replacing) { /* as cf_node_trash; its children entry is the one the move takes over */
        uint8_t tkey[32], when[8];
        gone.trashed_at = node.modified_at;
        cf_key2(tkey, tenant, replace);
        cf_put_be64(when, gone.trashed_at);
        cf_node_batch_put(b, s, tk, &gone);
        cf_batch_put(b, CF_CF_TRASH, (const char *)tkey, sizeof tkey, (const char *)when, sizeof when);
    }
    cf_put_child(b, newkey, id);
    cf_node_batch_put(b, s, tk, &node);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
    if (st == CF_OK) {
        *out = node;
        memset(&node, 0, sizeof node);
    }
unlock:
    cf_ns_unlock(s);
    cf_node_clear(&node);
    cf_node_clear(&target);
    cf_node_clear(&walk);
    cf_node_clear(&gone);
    return st;
}

enum cf_status cf_node_trash(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id)
{
    const struct cf_tkeys *tk;
    struct cf_node node = {0};
    uint8_t ckey[64], tkey[32], when[8];
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;

    cf_ns_lock(s);
    if ((st = cf_node_load(s, tk, id, &node)) != CF_OK)
        goto unlock;
    if (node.trashed_at != 0) {
        st = CF_ENOTFOUND;
        goto unlock;
    }
    if (cf_id_is_zero(&node.parent)) {
        st = CF_EDENIED;
        goto unlock;
    }
    cf_children_key(tk, &node.parent, node.name, strlen(node.name), ckey);
    node.trashed_at = cf_now_ms();
    cf_key2(tkey, tenant, id);
    cf_put_be64(when, node.trashed_at);
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_delete(b, CF_CF_CHILDREN, (const char *)ckey, sizeof ckey);
    cf_node_batch_put(b, s, tk, &node);
    cf_batch_put(b, CF_CF_TRASH, (const char *)tkey, sizeof tkey, (const char *)when, sizeof when);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
unlock:
    cf_ns_unlock(s);
    cf_node_clear(&node);
    return st;
}

/* ---- ownership and archiving ---------------------------------------------------------------- */

enum cf_status cf_node_archive(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id)
{
    const struct cf_tkeys *tk;
    struct cf_node node = {0};
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;
    cf_ns_lock(s);
    if ((st = cf_node_load(s, tk, id, &node)) == CF_OK) {
        if (node.root_kind == CF_SPACE_NONE) {
            st = CF_EINVAL;
        } else if (node.archived_at == 0) {
            node.archived_at = cf_now_ms();
            struct cf_batch *b = cf_batch_new(s->eng);
            cf_node_batch_put(b, s, tk, &node);
            st = cf_db_write(s, b, true);
            cf_batch_free(b);
        }
    }
    cf_ns_unlock(s);
    cf_node_clear(&node);
    return st;
}

enum cf_status cf_space_handover(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *root,
                                 const struct cf_id *dest, const char *name, size_t n, struct cf_node *out)
{
    const struct cf_tkeys *tk;
    struct cf_node node = {0}, d = {0};
    uint8_t ckey[64];
    struct cf_id existing;
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;
    cf_ns_lock(s);
    if ((st = cf_node_load(s, tk, root, &node)) != CF_OK || (st = cf_live_folder(s, tk, dest, &d)) != CF_OK)
        goto unlock;
    if (node.root_kind != CF_SPACE_PRIVATE || !cf_id_is_zero(&node.parent)) {
        st = CF_EINVAL;
        goto unlock;
    }
    cf_children_key(tk, dest, name, n, ckey);
    st = cf_child_by_key(s, ckey, &existing);
    if (st == CF_OK) {
        st = CF_EEXIST;
        goto unlock;
    }
    if (st != CF_ENOTFOUND)
        goto unlock;
    free(node.name);
    node.name = cf_xstrndup(name, n);
    node.parent = *dest;
    node.root_kind = CF_SPACE_NONE;
    node.archived_at = 0;
    node.modified_at = cf_now_ms();
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_node_batch_put(b, s, tk, &node);
    cf_put_child(b, ckey, &node.id);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
    if (st == CF_OK) {
        *out = node;
        memset(&node, 0, sizeof node);
    }
unlock:
    cf_ns_unlock(s);
    cf_node_clear(&node);
    cf_node_clear(&d);
    return st;
}

/* Trash values are trashed_at:u64; keeps those before *(uint64_t *)cutoff. */
static int trashed_before(void *cutoff, const char *val, size_t vlen)
{
    if (vlen != 8)
        return -1;
    return cf_get_be64((const uint8_t *)val) < *(const uint64_t *)cutoff;
}

enum cf_status cf_trash_expired(struct cf_store *s, const struct cf_id *tenant, uint64_t cutoff_ms, struct cf_id **out,
                                size_t *n)
{
    return cf_id_suffixes(s, CF_CF_TRASH, tenant->b, CF_ID_LEN, trashed_before, &cutoff_ms, out, n);
}

/* ---- the trash: listing and restoring (issue 21) ----------------------------------------------- */

static int trash_item_cmp(const void *a, const void *b)
{
    const struct cf_trash_item *x = a, *y = b;
    if (x->trashed_at != y->trashed_at)
        return x->trashed_at < y->trashed_at ? 1 : -1; /* newest first */
    return -memcmp(x->id.b, y->id.b, CF_ID_LEN);
}

enum cf_status cf_trash_list(struct cf_store *s, const struct cf_id *tenant, struct cf_trash_item **out, size_t *n)
{
    struct cf_iter it;
    size_t cnt = 0, cap = 16;
    enum cf_status st = CF_OK;
    struct cf_trash_item *arr = cf_xmalloc(cap * sizeof *arr);
    cf_iter_open(s, CF_CF_TRASH, tenant->b, CF_ID_LEN, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl;
        const char *k = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        if (kl != 32 || vl != 8) {
            st = CF_ECORRUPT;
            break;
        }
        if (cnt == cap) {
            cap *= 2;
            arr = cf_xrealloc(arr, cap * sizeof *arr);
        }
        memcpy(arr[cnt].id.b, k + CF_ID_LEN, CF_ID_LEN);
        arr[cnt].trashed_at = cf_get_be64((const uint8_t *)v);
        cnt++;
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    if (st != CF_OK) {
        free(arr);
        return st;
    }
    if (cnt > 1)
        qsort(arr, cnt, sizeof *arr, trash_item_cmp);
    *out = arr;
    *n = cnt;
    return CF_OK;
}

/* Whether folder id is live: a folder, neither it nor any ancestor trashed (under ns_lock). */
static enum cf_status live_chain(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *id)
{
    struct cf_id cur = *id;
    for (int depth = 0; depth < 1024; depth++) {
        struct cf_node n;
        enum cf_status st = cf_node_load(s, tk, &cur, &n);
        if (st != CF_OK)
            return st;
        bool ok = n.trashed_at == 0 && (depth > 0 || n.type == CF_NODE_FOLDER);
        bool root = cf_id_is_zero(&n.parent);
        cur = n.parent;
        cf_node_clear(&n);
        if (!ok)
            return CF_ENOTFOUND;
        if (root)
            return CF_OK;
    }
    return CF_ECORRUPT;
}

/* "name.ext" → "name (k).ext"; a leading dot does not start an extension. NULL if too long. For
 * commit.c (on_conflict=rename) and the restore from the trash below. */
char *cf_rename_candidate(const char *name, size_t n, unsigned k)
{
    const char *dot = NULL;
    for (size_t i = n; i > 1; i--)
        if (name[i - 1] == '.') {
            dot = name + i - 1;
            break;
        }
    size_t base = dot != NULL ? (size_t)(dot - name) : n;
    char *c = cf_xasprintf("%.*s (%u)%.*s", (int)base, name, k, (int)(n - base), name + base);
    if (strlen(c) > CF_NAME_MAX) {
        free(c);
        return NULL;
    }
    return c;
}

/* The children key under which node may come back into dest: its name, or with rename the first
 * free "name (k).ext". *name gets the chosen name (malloc'ed). */
static enum cf_status free_name(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *dest,
                                const char *base, bool rename, uint8_t ckey[64], char **name)
{
    struct cf_id existing;
    size_t bl = strlen(base);
    cf_children_key(tk, dest, base, bl, ckey);
    enum cf_status st = cf_child_by_key(s, ckey, &existing);
    if (st == CF_ENOTFOUND) {
        *name = cf_xstrdup(base);
        return CF_OK;
    }
    if (st != CF_OK)
        return st;
    if (!rename)
        return CF_EEXIST;
    for (unsigned k = 1; k < CF_RENAME_ATTEMPTS; k++) {
        char *cand = cf_rename_candidate(base, bl, k);
        if (cand == NULL)
            break;
        cf_children_key(tk, dest, cand, strlen(cand), ckey);
        st = cf_child_by_key(s, ckey, &existing);
        if (st == CF_ENOTFOUND) {
            *name = cand;
            return CF_OK;
        }
        free(cand);
        if (st != CF_OK)
            return st;
    }
    return CF_EEXIST;
}

enum cf_status cf_node_restore(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                               const struct cf_id *dest, bool rename, cf_move_check_fn check, void *ctx, bool *gone,
                               struct cf_node *out)
{
    const struct cf_tkeys *tk;
    struct cf_node node = {0};
    uint8_t ckey[64], tkey[32];
    char *name = NULL;
    *gone = false;
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;

    cf_ns_lock(s);
    if ((st = cf_node_load(s, tk, id, &node)) != CF_OK)
        goto unlock;
    if (node.trashed_at == 0 || cf_id_is_zero(&node.parent)) {
        st = CF_EINVAL;
        goto unlock;
    }
    struct cf_id to = dest != NULL ? *dest : node.parent;
    if ((st = live_chain(s, tk, &to)) != CF_OK) {
        *gone = st == CF_ENOTFOUND;
        goto unlock;
    }
    if (check != NULL && (st = check(ctx, &node, &to)) != CF_OK)
        goto unlock;
    if ((st = free_name(s, tk, &to, node.name, rename, ckey, &name)) != CF_OK)
        goto unlock;
    free(node.name);
    node.name = name;
    name = NULL;
    node.parent = to;
    node.trashed_at = 0;
    node.modified_at = cf_now_ms();
    cf_key2(tkey, tenant, id);
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_delete(b, CF_CF_TRASH, (const char *)tkey, sizeof tkey);
    cf_put_child(b, ckey, id);
    cf_node_batch_put(b, s, tk, &node);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
    if (st == CF_OK) {
        *out = node;
        memset(&node, 0, sizeof node);
    }
unlock:
    cf_ns_unlock(s);
    cf_node_clear(&node);
    free(name);
    return st;
}
