/*
 * blob_eng.c: the blob store (blob.h) kept in one keyspace of a storage engine (engine.h): the
 * `chunks` column family of the RocksDB store, with the keys and values it has always had. Puts are
 * unsynced engine writes made durable by the model's next synced write (the commit), which follows
 * them in the write-ahead log, so cf_blob_flush is a no-op; deletes are synced range deletes (the
 * same ranges the model deleted before the blob seam).
 */
#include <stdlib.h>
#include <string.h>

#include "blob.h"

struct blob_eng {
    struct cf_blobs base; /* first: the cf_blob_* calls see this */
    struct cf_eng *eng;
    unsigned ks;
};

static struct blob_eng *E(struct cf_blobs *b)
{
    return (struct blob_eng *)b;
}

static void eng_close(struct cf_blobs *b)
{
    free(E(b));
}

static int eng_put(struct cf_blobs *b, const uint8_t *key, const void *val, size_t vlen, char **err)
{
    struct cf_batch *wb = cf_batch_new(E(b)->eng);
    cf_batch_put(wb, E(b)->ks, key, CF_BLOB_KEY_LEN, val, vlen);
    int r = cf_eng_write(E(b)->eng, wb, false, err);
    cf_batch_free(wb);
    return r;
}

static int eng_flush(struct cf_blobs *b, char **err)
{
    (void)b;
    (void)err;
    return CF_ENG_OK;
}

static int eng_get(struct cf_blobs *b, const uint8_t *key, char **val, size_t *vlen, char **err)
{
    return cf_eng_get(E(b)->eng, E(b)->ks, key, CF_BLOB_KEY_LEN, val, vlen, err);
}

static int eng_view(struct cf_blobs *b, const uint8_t *key, void (*fn)(void *ctx, const char *val, size_t vlen),
                 void *ctx, char **err)
{
    return cf_eng_get_view(E(b)->eng, E(b)->ks, key, CF_BLOB_KEY_LEN, fn, ctx, err);
}

/* Deletes [lo, hi) in one synced write. */
static int delete_range(struct cf_blobs *b, const uint8_t *lo, size_t lolen, const uint8_t *hi, size_t hilen,
                        char **err)
{
    struct cf_batch *wb = cf_batch_new(E(b)->eng);
    cf_batch_delete_range(wb, E(b)->ks, lo, lolen, hi, hilen);
    int r = cf_eng_write(E(b)->eng, wb, true, err);
    cf_batch_free(wb);
    return r;
}

static int eng_delete_owner(struct cf_blobs *b, const uint8_t *owner, char **err)
{
    /* [owner, owner ‖ 0xff×4 ‖ 0x00): longer than any chunk key of the content, so past them all. */
    uint8_t hi[CF_BLOB_KEY_LEN + 1];
    memcpy(hi, owner, CF_BLOB_OWNER_LEN);
    memset(hi + CF_BLOB_OWNER_LEN, 0xff, CF_BLOB_KEY_LEN - CF_BLOB_OWNER_LEN);
    hi[CF_BLOB_KEY_LEN] = 0;
    return delete_range(b, owner, CF_BLOB_OWNER_LEN, hi, sizeof hi, err);
}

static int eng_delete_tenant(struct cf_blobs *b, const uint8_t *tenant, char **err)
{
    /* [T, T ‖ 0xff×64): every key of the tenant, damaged longer ones included. */
    uint8_t hi[CF_BLOB_TENANT_LEN + 64];
    memcpy(hi, tenant, CF_BLOB_TENANT_LEN);
    memset(hi + CF_BLOB_TENANT_LEN, 0xff, sizeof hi - CF_BLOB_TENANT_LEN);
    return delete_range(b, tenant, CF_BLOB_TENANT_LEN, hi, sizeof hi, err);
}

static int eng_list(struct cf_blobs *b, const uint8_t *prefix, size_t plen,
                 int (*fn)(void *ctx, const uint8_t *key, size_t klen), void *ctx, char **err)
{
    /* Upper bound: the prefix incremented as a big-endian number (none if it is all 0xff). */
    uint8_t hi[CF_BLOB_TENANT_LEN + 64];
    if (plen > sizeof hi)
        plen = sizeof hi;
    size_t hl = plen;
    if (plen > 0)
        memcpy(hi, prefix, plen);
    while (hl > 0 && hi[hl - 1] == 0xff)
        hl--;
    if (hl > 0)
        hi[hl - 1]++;
    struct cf_eiter *it = cf_eiter_open(E(b)->eng, E(b)->ks, plen > 0 ? prefix : NULL, plen, hl > 0 ? hi : NULL, hl);
    cf_eiter_seek_to_first(it);
    for (; cf_eiter_valid(it); cf_eiter_next(it)) {
        size_t kl;
        const char *k = cf_eiter_key(it, &kl);
        if (fn(ctx, (const uint8_t *)k, kl) != 0)
            break;
    }
    int r = cf_eiter_status(it, err);
    cf_eiter_close(it);
    return r;
}

static const struct cf_blob_ops eng_ops = {
    .name = "engine",
    .close = eng_close,
    .put = eng_put,
    .flush = eng_flush,
    .ordered = true,
    .get = eng_get,
    .view = eng_view,
    .delete_owner = eng_delete_owner,
    .delete_tenant = eng_delete_tenant,
    .list = eng_list,
};

struct cf_blobs *cf_blobs_open_engine(struct cf_eng *e, unsigned ks)
{
    struct blob_eng *b = calloc(1, sizeof *b);
    if (b == NULL)
        abort();
    b->base.ops = &eng_ops;
    b->eng = e;
    b->ks = ks;
    return &b->base;
}
