/*
 * purge.c: destroying a node's subtree for good (cf_node_purge) or a whole space (cf_space_purge),
 * and old file versions past their retention (cf_versions_expire).
 * An orchestrator above node.c, content.c and acl.c: it walks the namespace, drops ACLs and version
 * records, and then the chunks. Crypto-shredding first: one synchronous batch deletes the version
 * records (the only copies of the wrapped data keys), the nodes and their index entries, and marks
 * each content pending-purge; then the chunks go. A crash between the two leaves only undecryptable
 * chunks, which orphan collection removes (docs/DESIGN.md §4).
 */
#include <stdlib.h>
#include <string.h>

#include "davprop.h"
#include "store_internal.h"
#include "usage.h"

/* The tenant's trashed nodes as (id, parent) pairs: a trashed node has left its folder's children
 * index, so a purge of that folder finds it here. */
struct trashed {
    struct cf_id *id, *parent;
    size_t n;
};

static enum cf_status trashed_load(struct cf_store *s, const struct cf_tkeys *tk, struct trashed *t)
{
    struct cf_id *ids;
    size_t n;
    enum cf_status st = cf_id_suffixes(s, CF_CF_TRASH, tk->tenant.b, CF_ID_LEN, NULL, NULL, &ids, &n);
    if (st != CF_OK)
        return st;
    t->id = ids;
    t->parent = cf_xcalloc(n + 1, sizeof *t->parent);
    t->n = n;
    for (size_t i = 0; i < n && st == CF_OK; i++) {
        struct cf_node node;
        if ((st = cf_node_load(s, tk, &ids[i], &node)) == CF_OK) {
            t->parent[i] = node.parent;
            cf_node_clear(&node);
        } else if (st == CF_ENOTFOUND) {
            st = CF_OK; /* a stale trash mark: nothing below it to find */
        }
    }
    return st;
}

static enum cf_status purge_subtree(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                    bool root_ok);

enum cf_status cf_node_purge(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id)
{
    return purge_subtree(s, tenant, id, false);
}

enum cf_status cf_space_purge(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *root)
{
    return purge_subtree(s, tenant, root, true);
}

static enum cf_status purge_subtree(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                    bool root_ok)
{
    const struct cf_tkeys *tk;
    struct cf_idvec todo = {0}, contents = {0};
    struct trashed trash = {0};
    struct cf_usage_delta usage = {0}; /* usage.c: each purged file's current size leaves its owner's count */
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;

    cf_ns_lock(s);
    struct cf_batch *b = cf_batch_new(s->eng);
    if ((st = trashed_load(s, tk, &trash)) != CF_OK)
        goto fail;
    cf_idvec_push(&todo, id);
    bool first = true;
    /* Breadth-first over the subtree; todo grows as folders are opened. */
    for (size_t i = 0; i < todo.n; i++) {
        struct cf_node node = {0};
        uint8_t key[32];
        if ((st = cf_node_load(s, tk, &todo.v[i], &node)) != CF_OK) {
            if (st == CF_ENOTFOUND && !first)
                st = CF_ECORRUPT;
            goto fail;
        }
        if (first && cf_id_is_zero(&node.parent) && !root_ok) {
            cf_node_clear(&node);
            st = CF_EDENIED;
            goto fail;
        }
        first = false;
        cf_key2(key, tenant, &node.id);
        cf_batch_delete(b, CF_CF_NODES, (const char *)key, sizeof key);
        cf_batch_delete(b, CF_CF_TRASH, (const char *)key, sizeof key);
        cf_owned_put(b, tenant, &node.owner, &node.id, false);
        if ((st = cf_acl_batch_drop(s, tk, &node.id, b)) != CF_OK ||
            (st = cf_davprop_batch_drop(s, tenant, &node.id, b)) != CF_OK) {
            cf_node_clear(&node);
            goto fail;
        }
        if (node.trashed_at == 0 && !cf_id_is_zero(&node.parent)) {
            uint8_t ckey[64];
            cf_children_key(tk, &node.parent, node.name, strlen(node.name), ckey);
            cf_batch_delete(b, CF_CF_CHILDREN, (const char *)ckey, sizeof ckey);
        }
        if (node.type == CF_NODE_FILE) {
            cf_usage_delta_add(&usage, &node.owner, -(int64_t)node.size);
            st = cf_versions_delete(s, tk, &node.id, b, &contents);
        } else {
            struct cf_iter it;
            cf_iter_open(s, CF_CF_CHILDREN, key, sizeof key, &it);
            for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
                size_t vl;
                const char *v = cf_eiter_value(it.it, &vl);
                struct cf_id cid;
                if (vl != CF_ID_LEN) {
                    st = CF_ECORRUPT;
                    break;
                }
                memcpy(cid.b, v, CF_ID_LEN);
                cf_idvec_push(&todo, &cid);
            }
            if (st == CF_OK)
                st = cf_iter_status(&it);
            cf_iter_close(&it);
            for (size_t k = 0; k < trash.n; k++) /* trashed children left the index */
                if (cf_id_equal(&trash.parent[k], &node.id))
                    cf_idvec_push(&todo, &trash.id[k]);
        }
        cf_node_clear(&node);
        if (st != CF_OK)
            goto fail;
    }
    /* Step 1, crypto-shredding: the version records (the only copies of the wrapped data keys), the
     * node records and index entries go in one synchronous batch, together with a pending-purge mark
     * per content so that a crash before step 2 still gets its chunks collected. */
    uint8_t mark[CF_PENDING_MARK_MAX];
    size_t ml = cf_pending_mark(s, CF_PENDING_PURGE, mark);
    for (size_t i = 0; i < contents.n; i++) {
        uint8_t pkey[32];
        cf_key2(pkey, tenant, &contents.v[i]);
        cf_batch_put(b, CF_CF_PENDING, (const char *)pkey, sizeof pkey, (const char *)mark, ml);
    }
    if ((st = cf_usage_batch(s, tk, &usage, b)) != CF_OK)
        goto fail;
    st = cf_db_write(s, b, true);
    cf_ns_unlock(s);
    cf_batch_free(b);
    b = NULL;
    if (st != CF_OK)
        goto out;
    /* Step 2: the chunks themselves, now undecryptable. */
    for (size_t i = 0; i < contents.n && st == CF_OK; i++)
        st = cf_content_destroy(s, tenant, &contents.v[i]);
    goto out;
fail:
    cf_ns_unlock(s);
    cf_batch_free(b);
out:
    free(todo.v);
    free(contents.v);
    free(trash.id);
    free(trash.parent);
    cf_usage_delta_clear(&usage);
    return st;
}

/* ---- old versions past their retention (issue 21) ----------------------------------------------- */

/* The walk over a tenant's version records (oldest first per file): a version is due when the one
 * after it (which replaced it) was committed before the cutoff. */
struct expiring {
    uint64_t cutoff;
    struct cf_id file;      /* the file being walked */
    bool have_file;
    uint32_t prev_version;  /* the previous version of that file */
    uint64_t prev_size;
    bool have_prev;
    struct cf_version_ref *due;
    size_t n, cap;
};

static enum cf_status expiring_visit(void *ctx, const struct cf_id *file, struct cf_version_info *v)
{
    struct expiring *e = ctx;
    if (!e->have_file || !cf_id_equal(&e->file, file)) {
        e->file = *file;
        e->have_file = true;
        e->have_prev = false;
    }
    if (e->have_prev && v->created_at < e->cutoff) {
        if (e->n == e->cap) {
            e->cap = e->cap == 0 ? 16 : e->cap * 2;
            e->due = cf_xrealloc(e->due, e->cap * sizeof *e->due);
        }
        e->due[e->n++] = (struct cf_version_ref){*file, e->prev_version, e->prev_size, v->created_at};
    }
    e->prev_version = v->version;
    e->prev_size = v->size;
    e->have_prev = true;
    return CF_OK;
}

/* Purges versions due[0..n) of one file, never its current one (decided again under the lock): the
 * records (the only wrappers of their data keys) with a pending-purge mark per content in one
 * synchronous batch, then the chunks. *done counts the purged ones, moved to the front of due. */
static enum cf_status expire_file(struct cf_store *s, const struct cf_tkeys *tk, struct cf_version_ref *due, size_t n,
                                  size_t *done)
{
    struct cf_node node = {0};
    struct cf_idvec contents = {0};
    uint8_t mark[CF_PENDING_MARK_MAX];
    size_t kept = 0;
    *done = 0;
    size_t ml = cf_pending_mark(s, CF_PENDING_PURGE, mark);
    cf_ns_lock(s);
    enum cf_status st = cf_node_load(s, tk, &due[0].file, &node);
    if (st == CF_ENOTFOUND) { /* purged meanwhile, with its versions */
        cf_ns_unlock(s);
        return CF_OK;
    }
    struct cf_batch *b = cf_batch_new(s->eng);
    for (size_t i = 0; i < n && st == CF_OK; i++) {
        if (due[i].version >= node.version)
            continue; /* the current one (or newer) is never purged */
        size_t had = contents.n;
        st = cf_version_drop(s, tk, &due[i].file, due[i].version, b, &contents);
        if (st == CF_ENOTFOUND) {
            st = CF_OK;
            continue;
        }
        if (st != CF_OK)
            break;
        for (size_t k = had; k < contents.n; k++) {
            uint8_t pkey[32];
            cf_key2(pkey, &tk->tenant, &contents.v[k]);
            cf_batch_put(b, CF_CF_PENDING, (const char *)pkey, sizeof pkey, (const char *)mark, ml);
        }
        due[kept++] = due[i];
    }
    if (st == CF_OK && kept > 0)
        st = cf_db_write(s, b, true);
    cf_ns_unlock(s);
    cf_batch_free(b);
    cf_node_clear(&node);
    for (size_t i = 0; i < contents.n && st == CF_OK; i++)
        st = cf_content_destroy(s, &tk->tenant, &contents.v[i]);
    free(contents.v);
    if (st == CF_OK)
        *done = kept;
    return st;
}

enum cf_status cf_versions_expire(struct cf_store *s, const struct cf_id *tenant, uint64_t cutoff_ms,
                                  struct cf_version_ref **out, size_t *n)
{
    const struct cf_tkeys *tk;
    struct expiring e = {.cutoff = cutoff_ms};
    *out = NULL;
    *n = 0;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    enum cf_status st = cf_versions_walk(s, tk, NULL, expiring_visit, &e);
    size_t purged = 0;
    for (size_t i = 0; i < e.n && st == CF_OK;) {
        size_t j = i + 1, done;
        while (j < e.n && cf_id_equal(&e.due[j].file, &e.due[i].file))
            j++;
        st = expire_file(s, tk, e.due + i, j - i, &done);
        memmove(e.due + purged, e.due + i, done * sizeof *e.due);
        purged += done;
        i = j;
    }
    if (purged == 0) {
        free(e.due);
        e.due = NULL;
    }
    *out = e.due;
    *n = purged;
    return st;
}
