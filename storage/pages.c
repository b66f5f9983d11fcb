/*
 * pages.c: derived objects of a stored content (issue 20): rendered page images, the PDF an office
 * document was converted to, and the page summary, cached in the blob store beside the content's
 * chunks and sealed under the same data key.
 *
 * Format:
 *   key  T ‖ content ‖ slot:u32     (CF_BLOB_KEY_LEN bytes, like a chunk; slot has its top bit set,
 *                                    chunk indexes never do)
 *   val  0x02 ‖ nonce ‖ AES-256-GCM(data key, object) ‖ tag
 *   AAD  "coffer/v1/derived" ‖ T ‖ content ‖ slot:u32
 * The slot's other bits are the caller's (src/api/pages.c: the renderer's version, the width, the
 * page). Sharing the content's key prefix is what deletes them: every path that destroys a content
 * (purge, replaced versions, orphan collection, tenant deletion) deletes every blob of its owner
 * prefix, pages included. A put that races a purge is undone: after the blob is written the version
 * is looked up again, and if it is gone every blob of the content is deleted once more.
 * The data key never leaves storage/: callers hand over an open reader.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define DERIVED_FORMAT 0x02
#define DERIVED_MAX (256u << 20)

static const char derived_label[] = "coffer/v1/derived";

static size_t derived_aad(const struct cf_reader_internals *in, uint32_t slot, uint8_t aad[64])
{
    size_t o = sizeof derived_label - 1;
    memcpy(aad, derived_label, o);
    memcpy(aad + o, in->tenant->b, CF_ID_LEN);
    memcpy(aad + o + 16, in->content->b, CF_ID_LEN);
    cf_put_be32(aad + o + 32, slot);
    return o + 36;
}

static void derived_key(const struct cf_reader_internals *in, uint32_t slot, uint8_t key[CF_BLOB_KEY_LEN])
{
    cf_key2(key, in->tenant, in->content);
    cf_put_be32(key + 32, slot);
}

enum cf_status cf_derived_put(struct cf_reader *r, uint32_t slot, const void *obj, size_t n)
{
    struct cf_reader_internals in;
    uint8_t aad[64], key[CF_BLOB_KEY_LEN];
    if ((slot & CF_DERIVED_SLOT) == 0 || n > DERIVED_MAX)
        return CF_EINVAL;
    cf_reader_internals(r, &in);
    size_t alen = derived_aad(&in, slot, aad);
    size_t vl = 1 + n + CF_SEAL_OVERHEAD;
    uint8_t *val = cf_xmalloc(vl);
    val[0] = DERIVED_FORMAT;
    enum cf_status st = cf_aead_seal(in.dek, aad, alen, obj, n, val + 1);
    derived_key(&in, slot, key);
    if (st == CF_OK)
        st = cf_db_blob_put(in.s, key, val, vl);
    free(val);
    if (st != CF_OK)
        return st;
    /* Raced a purge? The version record goes first there (crypto-shredding), so look it up again. */
    struct cf_reader *again;
    enum cf_status vst = cf_reader_open(in.s, in.tenant, in.file, in.version, &again);
    if (vst == CF_OK) {
        struct cf_reader_internals ai;
        cf_reader_internals(again, &ai);
        bool same = cf_id_equal(ai.content, in.content);
        cf_reader_free(again);
        if (same)
            return CF_OK;
    } else if (vst != CF_ENOTFOUND && vst != CF_ECORRUPT) {
        return CF_OK; /* cannot tell (I/O): the pages stay with the content */
    }
    uint8_t owner[32];
    cf_key2(owner, in.tenant, in.content);
    if (cf_db_blob_delete_owner(in.s, owner) != CF_OK)
        cf_storage_log(CF_LOG_WARN, "storage: a rendered page of a purged file could not be deleted");
    return CF_ENOTFOUND;
}

struct derived_view {
    const struct cf_reader_internals *in;
    uint32_t slot;
    uint8_t *out;
    size_t len;
    enum cf_status st;
};

static void derived_open_view(void *ctx, const char *val, size_t vl)
{
    struct derived_view *d = ctx;
    uint8_t aad[64];
    size_t alen = derived_aad(d->in, d->slot, aad);
    d->st = CF_ECORRUPT;
    if (vl < 1 + CF_SEAL_OVERHEAD || (uint8_t)val[0] != DERIVED_FORMAT)
        return;
    d->len = vl - 1 - CF_SEAL_OVERHEAD;
    d->out = cf_xmalloc(d->len + 1);
    if (cf_aead_open(d->in->dek, aad, alen, (const uint8_t *)val + 1, vl - 1, d->out) != CF_OK) {
        free(d->out);
        d->out = NULL;
        return;
    }
    d->st = CF_OK;
}

enum cf_status cf_derived_get(struct cf_reader *r, uint32_t slot, uint8_t **out, size_t *len)
{
    struct cf_reader_internals in;
    uint8_t key[CF_BLOB_KEY_LEN];
    char *err = NULL;
    if ((slot & CF_DERIVED_SLOT) == 0)
        return CF_EINVAL;
    cf_reader_internals(r, &in);
    derived_key(&in, slot, key);
    struct derived_view d = {.in = &in, .slot = slot, .st = CF_ECORRUPT};
    int rc = cf_blob_view(in.s->blobs, key, derived_open_view, &d, &err);
    if (rc == CF_ENG_NOTFOUND)
        return CF_ENOTFOUND;
    if (rc != CF_ENG_OK) {
        cf_storage_log(CF_LOG_ERROR, "storage: reading a rendered page: %s", err);
        enum cf_status st = cf_blob_unavailable(err) ? CF_EUNAVAIL : CF_EIO; /* a stalled cluster: 503 */
        cf_eng_free(err);
        return st;
    }
    if (d.st != CF_OK) {
        cf_storage_log(CF_LOG_ERROR, "storage: a rendered page failed authentication");
        return CF_ECORRUPT;
    }
    *out = d.out;
    *len = d.len;
    return CF_OK;
}
