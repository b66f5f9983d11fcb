/*
 * restore.c: restoring an old version of a file as its new current version (cf_version_restore,
 * issue 21), an orchestrator above content.c (the old version is read and copied into a new upload:
 * every content belongs to exactly one version, so that purging one never touches another), node.c
 * (the file's node) and usage.c (the owner's and the tenant's counters): the new version record, the
 * node pointing at it and the counters are one synchronous batch under the namespace lock, where the
 * access callback and the quota decide (as cf_upload_commit does for an upload).
 */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "usage.h"

/* Copies the content of version `version` into upload u, checking its length and SHA-256 against
 * the record as it goes (the chunks authenticate themselves; this also catches a record that does
 * not match them). */
static enum cf_status version_copy(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *file,
                                   uint32_t version, const struct cf_version_info *vi, struct cf_upload *u)
{
    struct cf_reader *rd;
    uint8_t digest[CF_SHA256_LEN];
    enum cf_status st = cf_reader_open(s, tenant, file, version, &rd);
    if (st != CF_OK)
        return st;
    uint8_t *buf = cf_try_malloc(CF_CHUNK_SIZE);
    if (buf == NULL) {
        cf_reader_free(rd);
        return CF_EIO;
    }
    struct cf_hash *h = cf_hash_new(CF_HASH_SHA256);
    uint32_t nchunks = cf_reader_chunk_count(rd);
    uint64_t total = 0;
    for (uint32_t i = 0; i < nchunks && st == CF_OK; i++) {
        size_t len = 0;
        if ((st = cf_reader_chunk(rd, i, buf, &len)) != CF_OK)
            break;
        cf_hash_update(h, buf, len);
        total += len;
        st = cf_upload_put_chunk(u, i, buf, len, i + 1 == nchunks);
    }
    cf_hash_final(h, digest);
    cf_hash_free(h);
    cf_free_secret(buf, CF_CHUNK_SIZE);
    cf_reader_free(rd);
    if (st == CF_OK && (total != vi->size || CRYPTO_memcmp(digest, vi->sha256, sizeof digest) != 0))
        st = CF_ECORRUPT;
    return st;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? cf_xstrdup(s) : NULL;
}

/* The commit of a restored version: a new version record and the node pointing at it, in one batch
 * under the namespace lock. */
static enum cf_status version_commit(struct cf_upload *u, const struct cf_id *file, const struct cf_version_info *vi,
                                     const struct cf_id *uploader, bool (*may)(void *ctx, const struct cf_node *n),
                                     void *ctx, const struct cf_quota *quota, struct cf_quota_refusal *refused,
                                     struct cf_node *out)
{
    struct cf_upload_view uv;
    cf_upload_view(u, &uv);
    struct cf_store *s = uv.s;
    const struct cf_tkeys *tk = uv.tk;
    struct cf_node node = {0};
    uint8_t wrapped[CF_KEY_LEN + CF_SEAL_OVERHEAD];
    uint32_t gen = 0;
    struct cf_usage_delta usage = {0};
    struct cf_scan_summary unchecked = {.result = (char *)"unchecked"};
    struct cf_commit c = {
        .uploader = *uploader,
        .size = vi->size,
        .mime = vi->mime,
        .scan = vi->scan.result != NULL ? &vi->scan : &unchecked,
    };
    memcpy(c.sha256, vi->sha256, CF_SHA256_LEN);
    enum cf_status st = cf_db_blob_flush(s);
    if (st != CF_OK)
        return st;
    cf_ns_lock(s);
    if ((st = cf_dek_wrap(s, tk, uv.content, uv.dek, wrapped, &gen)) != CF_OK ||
        (st = cf_node_load(s, tk, file, &node)) != CF_OK)
        goto unlock;
    if (node.type != CF_NODE_FILE || node.trashed_at != 0 || node.version == UINT32_MAX) {
        st = node.version == UINT32_MAX ? CF_EEXIST : CF_ENOTFOUND;
        goto unlock;
    }
    if (may != NULL && !may(ctx, &node)) {
        st = CF_EDENIED;
        goto unlock;
    }
    /* Usage (usage.c) counts current versions: the owner's count moves by the difference, which the
     * quota decides here, under the lock, with the write (as a commit of a new version does). */
    int64_t delta = (int64_t)vi->size - (int64_t)node.size;
    if (quota != NULL && delta > 0) {
        uint64_t mine, total;
        if ((st = cf_usage_read(s, tk, &node.owner, &mine, &total)) != CF_OK ||
            (st = cf_quota_decide(quota, mine, total, delta, refused)) != CF_OK)
            goto unlock;
    }
    cf_usage_delta_add(&usage, &node.owner, delta);
    node.version++;
    node.modified_at = cf_now_ms();
    node.size = vi->size;
    memcpy(node.sha256, vi->sha256, CF_SHA256_LEN);
    free(node.mime);
    node.mime = cf_xstrdup(vi->mime);
    cf_scan_summary_clear(&node.scan);
    node.scan.result = cf_xstrdup(c.scan->result);
    node.scan.detail = dup_or_null(c.scan->detail);
    node.scan.engine = dup_or_null(c.scan->engine);
    node.scan.database = dup_or_null(c.scan->database);
    node.scan.at = c.scan->at;
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_upload_batch_version(b, u, &c, wrapped, gen, &node);
    cf_node_batch_put(b, s, tk, &node);
    if ((st = cf_usage_batch(s, tk, &usage, b)) == CF_OK)
        st = cf_db_write(s, b, true);
    cf_batch_free(b);
    if (st == CF_OK) {
        cf_upload_set_committed(u);
        *out = node;
        memset(&node, 0, sizeof node);
    }
unlock:
    cf_ns_unlock(s);
    cf_node_clear(&node);
    cf_usage_delta_clear(&usage);
    cf_wipe(wrapped, sizeof wrapped);
    return st;
}

enum cf_status cf_version_restore(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *file,
                                  uint32_t version, const struct cf_id *uploader,
                                  bool (*may)(void *ctx, const struct cf_node *existing), void *ctx,
                                  const struct cf_quota *quota, struct cf_quota_refusal *refused,
                                  struct cf_node *out)
{
    struct cf_version_info vi;
    struct cf_upload *u = NULL;
    enum cf_status st = cf_version_get(s, tenant, file, version, &vi);
    if (st != CF_OK)
        return st;
    if ((st = cf_upload_begin(s, tenant, &u)) == CF_OK && (st = version_copy(s, tenant, file, version, &vi, u)) == CF_OK)
        st = version_commit(u, file, &vi, uploader, may, ctx, quota, refused, out);
    if (u != NULL && st != CF_OK)
        cf_upload_abort(u);
    cf_upload_free(u);
    cf_version_info_clear(&vi);
    return st;
}
