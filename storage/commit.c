/*
 * commit.c: an upload's commit (cf_upload_commit), an orchestrator above content.c (the upload and
 * its version record), node.c (the namespace) and tus.c (a resumable upload's state). A file becomes
 * visible only through the one synchronous batch written here: its version record, its node record,
 * its children and owner entries, the end of its pending mark, the usage counters (usage.c) and, for
 * a resumable upload, its "completed" state, decided under the namespace lock (docs/DESIGN.md §4).
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "usage.h"

static char *dup_or_null(const char *s)
{
    return s != NULL ? cf_xstrdup(s) : NULL;
}

enum cf_status cf_upload_commit(struct cf_upload *u, const struct cf_commit *c, struct cf_node *out)
{
    struct cf_upload_view v;
    cf_upload_view(u, &v);
    struct cf_store *s = v.s;
    const struct cf_tkeys *tk = v.tk;
    struct cf_node parent = {0}, node = {0};
    struct cf_id existing;
    uint8_t ckey[64];
    uint8_t wrapped[CF_KEY_LEN + CF_SEAL_OVERHEAD];
    char *name = cf_xstrndup(c->name, c->name_len);
    bool is_new = true;
    struct cf_usage_delta usage = {0};
    enum cf_status st;

    uint32_t gen = 0;
    if (v.committed || c->scan == NULL || c->scan->result == NULL) {
        free(name);
        return CF_EINVAL;
    }
    /* Every chunk durable before the synced write that makes the chunks reachable (engine/blob.h;
     * outside the namespace lock, since an object store's flush waits on the network). */
    if ((st = cf_db_blob_flush(s)) != CF_OK) {
        free(name);
        return st;
    }

    cf_ns_lock(s);
    if ((st = cf_dek_wrap(s, tk, v.content, v.dek, wrapped, &gen)) != CF_OK)
        goto unlock;
    if ((st = cf_live_folder(s, tk, &c->parent, &parent)) != CF_OK)
        goto unlock;
    cf_children_key(tk, &c->parent, name, strlen(name), ckey);
    st = cf_child_by_key(s, ckey, &existing);
    if (st == CF_OK) {
        switch (c->on_conflict) {
        case CF_CONFLICT_FAIL:
            st = CF_EEXIST;
            goto unlock;
        case CF_CONFLICT_RENAME:
            st = CF_EEXIST;
            for (unsigned k = 1; k < CF_RENAME_ATTEMPTS; k++) {
                char *cand = cf_rename_candidate(c->name, c->name_len, k);
                if (cand == NULL)
                    break;
                cf_children_key(tk, &c->parent, cand, strlen(cand), ckey);
                st = cf_child_by_key(s, ckey, &existing);
                if (st == CF_ENOTFOUND) {
                    free(name);
                    name = cand;
                    break;
                }
                free(cand);
                if (st != CF_OK)
                    goto unlock;
                st = CF_EEXIST;
            }
            if (st != CF_ENOTFOUND)
                goto unlock;
            break;
        case CF_CONFLICT_REPLACE:
            if ((st = cf_node_load(s, tk, &existing, &node)) != CF_OK)
                goto unlock;
            if (node.type != CF_NODE_FILE) {
                st = CF_EEXIST;
                goto unlock;
            }
            if (c->may_replace != NULL && !c->may_replace(c->ctx, &node)) {
                st = CF_EDENIED;
                goto unlock;
            }
            if (node.version == UINT32_MAX) {
                st = CF_EEXIST;
                goto unlock;
            }
            is_new = false;
            break;
        }
    } else if (st != CF_ENOTFOUND) {
        goto unlock;
    }

    /* Usage (usage.c): a new file charges its uploader, a new version its file's owner with the
     * difference to the current version; the quota is decided here, under the lock, with the write. */
    const struct cf_id *charged = is_new ? &c->uploader : &node.owner;
    int64_t delta = (int64_t)c->size - (is_new ? 0 : (int64_t)node.size);
    if (c->quota != NULL && delta > 0 && (c->quota->user_bytes != 0 || c->quota->tenant_bytes != 0)) {
        uint64_t mine, total;
        if ((st = cf_usage_read(s, tk, charged, &mine, &total)) != CF_OK ||
            (st = cf_quota_decide(c->quota, mine, total, delta, c->refused)) != CF_OK)
            goto unlock;
    }
    cf_usage_delta_add(&usage, charged, delta);

    uint64_t now = cf_now_ms();
    if (is_new) {
        cf_id_new(&node.id);
        node.tenant = tk->tenant;
        node.parent = c->parent;
        node.owner = c->uploader;
        node.type = CF_NODE_FILE;
        node.name = name;
        name = NULL;
        node.created_at = now;
        node.version = 1;
    } else {
        node.version++;
    }
    node.modified_at = now;
    node.size = c->size;
    memcpy(node.sha256, c->sha256, CF_SHA256_LEN);
    free(node.mime);
    node.mime = cf_xstrdup(c->mime);
    cf_scan_summary_clear(&node.scan);
    node.scan.result = cf_xstrdup(c->scan->result);
    node.scan.detail = dup_or_null(c->scan->detail);
    node.scan.engine = dup_or_null(c->scan->engine);
    node.scan.database = dup_or_null(c->scan->database);
    node.scan.at = c->scan->at;

    struct cf_batch *b = cf_batch_new(s->eng);
    if ((st = cf_usage_batch(s, tk, &usage, b)) != CF_OK) {
        cf_batch_free(b);
        goto unlock;
    }
    cf_upload_batch_version(b, u, c, wrapped, gen, &node);
    cf_node_batch_put(b, s, tk, &node);
    if (is_new) {
        cf_put_child(b, ckey, &node.id);
        cf_owned_put(b, &tk->tenant, &node.owner, &node.id, true);
    }
    if (c->tus != NULL) /* a resumable upload (upload id = content id): its state says "completed" */
        cf_tus_batch_complete(b, s, tk, c->tus, &node.id);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
    if (st == CF_OK) {
        cf_upload_set_committed(u);
        *out = node;
        memset(&node, 0, sizeof node);
    }
unlock:
    cf_ns_unlock(s);
    cf_usage_delta_clear(&usage);
    cf_node_clear(&parent);
    cf_node_clear(&node);
    free(name);
    cf_wipe(wrapped, sizeof wrapped);
    return st;
}
