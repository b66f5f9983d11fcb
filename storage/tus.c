/*
 * tus.c: resumable uploads (storage.h "resumable uploads"). The HTTP side is src/tus.c.
 *
 * Formats (column family "uploads"; T = tenant id, U = upload id = content id):
 *   state  key  T ‖ 'r' ‖ U                 (33 bytes)
 *          val  sealed record (tenant record key): owner, parent, name, on_conflict, length,
 *               offset, created_at, expires_at, metadata, and either the wrapped data key
 *               (unfinished) or the node it became (completed)
 *   tail   key  T ‖ 't' ‖ U                 (33 bytes)
 *          val  0x01 ‖ AES-256-GCM(data key, the bytes of the unfinished chunk)
 *          AAD  "coffer/v1/tus-tail" ‖ T ‖ U ‖ offset:u64   (binds the tail to the offset it ends at)
 *   owner  key  T ‖ 'o' ‖ owner ‖ U         (49 bytes), empty value: per-user accounting of
 *               unfinished uploads
 * and in "pending", while unfinished: T ‖ U → 'T' ‖ created_at:u64, so that the content's chunks
 * are never untracked (orphan collection leaves 'T' alone; expiry deletes them with the state).
 * Expiry walks the state records (few: uploads are short-lived) and compares expires_at.
 *
 * Chunks are the ordinary content chunks (content.c): every one but the last exactly CF_CHUNK_SIZE,
 * so a PATCH boundary inside a chunk leaves a tail, sealed until the next PATCH completes the chunk.
 * A retried PATCH rewrites the same chunk indexes (random nonces: no nonce reuse). Chunks are written
 * unsynced, the state last and synced: after a crash the state's offset is never ahead of the chunks.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_internal.h"

#define TAIL_FORMAT 0x01

enum {
    TTAG_OWNER = 1,
    TTAG_PARENT = 2,
    TTAG_NAME = 3,
    TTAG_CONFLICT = 4,
    TTAG_LENGTH = 5,
    TTAG_OFFSET = 6,
    TTAG_CREATED = 7,
    TTAG_EXPIRES = 8,
    TTAG_WRAPPED = 9,
    TTAG_METADATA = 10,
    TTAG_NODE = 11,
    TTAG_DEK_GEN = 12, /* absent: generation 0 */
};

static const char tail_label[] = "coffer/v1/tus-tail";

static void state_key(const struct cf_id *tenant, const struct cf_id *id, char kind, uint8_t key[33])
{
    memcpy(key, tenant->b, 16);
    key[16] = (uint8_t)kind;
    memcpy(key + 17, id->b, 16);
}

static void owner_key(const struct cf_id *tenant, const struct cf_id *owner, const struct cf_id *id, uint8_t key[49])
{
    memcpy(key, tenant->b, 16);
    key[16] = 'o';
    memcpy(key + 17, owner->b, 16);
    memcpy(key + 33, id->b, 16);
}

static size_t tail_aad(const struct cf_id *tenant, const struct cf_id *id, uint64_t offset, uint8_t aad[64])
{
    size_t o = sizeof tail_label - 1;
    memcpy(aad, tail_label, o);
    memcpy(aad + o, tenant->b, 16);
    memcpy(aad + o + 16, id->b, 16);
    cf_put_be64(aad + o + 32, offset);
    return o + 40;
}


static void encode(const struct cf_tus *t, struct cf_rec_w *w)
{
    cf_rec_w_init(w);
    cf_rec_put_id(w, TTAG_OWNER, &t->owner);
    cf_rec_put_id(w, TTAG_PARENT, &t->parent);
    cf_rec_put_str(w, TTAG_NAME, t->name);
    cf_rec_put_u64(w, TTAG_CONFLICT, (uint64_t)t->on_conflict);
    cf_rec_put_u64(w, TTAG_LENGTH, t->length);
    cf_rec_put_u64(w, TTAG_OFFSET, t->offset);
    cf_rec_put_u64(w, TTAG_CREATED, t->created_at);
    cf_rec_put_u64(w, TTAG_EXPIRES, t->expires_at);
    if (t->completed)
        cf_rec_put_id(w, TTAG_NODE, &t->node);
    else
        cf_rec_put_bytes(w, TTAG_WRAPPED, t->wrapped, sizeof t->wrapped);
    if (!t->completed)
        cf_rec_put_u64(w, TTAG_DEK_GEN, t->dek_gen);
    cf_rec_put_str(w, TTAG_METADATA, t->metadata);
}

static enum cf_status decode(const uint8_t *p, size_t n, struct cf_tus *t)
{
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    uint64_t conflict = 0;
    unsigned seen = 0;
    enum cf_status st = cf_rec_r_init(&r, p, n);
    if (st != CF_OK)
        return st;
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        switch (tag) {
        case TTAG_OWNER:
            st = cf_rec_id(v, vl, &t->owner);
            break;
        case TTAG_PARENT:
            st = cf_rec_id(v, vl, &t->parent);
            break;
        case TTAG_NAME:
            st = cf_rec_str(v, vl, &t->name);
            break;
        case TTAG_CONFLICT:
            st = cf_rec_u64(v, vl, &conflict);
            break;
        case TTAG_LENGTH:
            st = cf_rec_u64(v, vl, &t->length);
            break;
        case TTAG_OFFSET:
            st = cf_rec_u64(v, vl, &t->offset);
            break;
        case TTAG_CREATED:
            st = cf_rec_u64(v, vl, &t->created_at);
            break;
        case TTAG_EXPIRES:
            st = cf_rec_u64(v, vl, &t->expires_at);
            break;
        case TTAG_WRAPPED:
            if (vl != sizeof t->wrapped)
                st = CF_ECORRUPT;
            else
                memcpy(t->wrapped, v, vl);
            break;
        case TTAG_METADATA:
            st = cf_rec_str(v, vl, &t->metadata);
            break;
        case TTAG_DEK_GEN:
            st = cf_rec_u32(v, vl, &t->dek_gen);
            break;
        case TTAG_NODE:
            st = cf_rec_id(v, vl, &t->node);
            t->completed = true;
            break;
        default:
            continue;
        }
        if (st != CF_OK)
            return st;
        if (tag < 32)
            seen |= 1u << tag;
    }
    if (st != CF_ENOTFOUND)
        return st;
    unsigned need = (1u << TTAG_OWNER) | (1u << TTAG_PARENT) | (1u << TTAG_NAME) | (1u << TTAG_LENGTH) |
                    (1u << TTAG_OFFSET) | (1u << TTAG_EXPIRES) | (1u << (t->completed ? TTAG_NODE : TTAG_WRAPPED));
    if ((seen & need) != need || conflict > CF_CONFLICT_REPLACE || t->offset > t->length ||
        (t->completed && t->offset != t->length))
        return CF_ECORRUPT;
    t->on_conflict = (enum cf_conflict)conflict;
    return CF_OK;
}

static void put_state(struct cf_batch *b, struct cf_store *s, const struct cf_tkeys *tk, const struct cf_tus *t)
{
    uint8_t key[33];
    struct cf_rec_w w;
    encode(t, &w);
    state_key(&t->tenant, &t->id, 'r', key);
    cf_seal_batch_put(b, s, CF_CF_UPLOADS, &tk->record, key, sizeof key, &w, NULL, 0);
    cf_rec_w_free(&w);
}

enum cf_status cf_tus_create(struct cf_store *s, struct cf_tus *t, uint64_t ttl_ms)
{
    const struct cf_tkeys *tk;
    struct cf_key dek;
    uint8_t okey[49], pkey[32], mark[9];
    enum cf_status st;
    if (cf_tkeys_get(s, &t->tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    cf_id_new(&t->id);
    t->completed = false;
    cf_key_random(&dek);
    /* wrapped and written under ns_lock: see cf_dek_wrap */
    cf_ns_lock(s);
    st = cf_dek_wrap(s, tk, &t->id, &dek, t->wrapped, &t->dek_gen);
    cf_key_wipe(&dek);
    if (st != CF_OK) {
        cf_ns_unlock(s);
        return st;
    }
    t->offset = 0;
    t->created_at = cf_now_ms();
    t->expires_at = t->created_at + ttl_ms;
    struct cf_batch *b = cf_batch_new(s->eng);
    put_state(b, s, tk, t);
    owner_key(&t->tenant, &t->owner, &t->id, okey);
    cf_batch_put(b, CF_CF_UPLOADS, (const char *)okey, sizeof okey, "", 0);
    cf_key2(pkey, &t->tenant, &t->id);
    mark[0] = CF_PENDING_TUS;
    cf_put_be64(mark + 1, t->created_at);
    cf_batch_put(b, CF_CF_PENDING, (const char *)pkey, sizeof pkey, (const char *)mark, sizeof mark);
    st = cf_db_write(s, b, true);
    cf_ns_unlock(s);
    cf_batch_free(b);
    return st;
}

enum cf_status cf_tus_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id, struct cf_tus *out)
{
    const struct cf_tkeys *tk;
    uint8_t key[33], *pt;
    size_t ptlen;
    memset(out, 0, sizeof *out);
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    state_key(tenant, id, 'r', key);
    enum cf_status st = cf_get_sealed(s, CF_CF_UPLOADS, &tk->record, key, sizeof key, &pt, &ptlen);
    if (st != CF_OK)
        return st;
    st = decode(pt, ptlen, out);
    cf_free_secret(pt, ptlen);
    out->tenant = *tenant;
    out->id = *id;
    if (st != CF_OK)
        cf_tus_clear(out);
    return st;
}

void cf_tus_clear(struct cf_tus *t)
{
    free(t->name);
    free(t->metadata);
    cf_wipe(t, sizeof *t);
}

enum cf_status cf_tus_usage(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *owner, uint64_t now,
                            size_t *count, uint64_t *bytes)
{
    uint8_t prefix[33];
    struct cf_iter it;
    enum cf_status st = CF_OK;
    *count = 0;
    *bytes = 0;
    memcpy(prefix, tenant->b, 16);
    prefix[16] = 'o';
    memcpy(prefix + 17, owner->b, 16);
    cf_iter_open(s, CF_CF_UPLOADS, prefix, sizeof prefix, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl;
        const char *k = cf_eiter_key(it.it, &kl);
        struct cf_id id;
        struct cf_tus t;
        if (kl != 49) {
            st = CF_ECORRUPT;
            break;
        }
        memcpy(id.b, k + 33, 16);
        st = cf_tus_get(s, tenant, &id, &t);
        if (st == CF_ENOTFOUND) { /* completed or deleted concurrently */
            st = CF_OK;
            continue;
        }
        if (st != CF_OK)
            break;
        if (t.expires_at > now && !t.completed) {
            (*count)++;
            *bytes += t.length;
        }
        cf_tus_clear(&t);
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    return st;
}

/* Loads and opens the tail ending at offset into buf (room for CF_CHUNK_SIZE). */
static enum cf_status tail_read(struct cf_store *s, const struct cf_tus *t, const struct cf_key *dek, uint8_t *buf,
                                size_t fill)
{
    uint8_t key[33], aad[64];
    char *val;
    size_t vlen;
    state_key(&t->tenant, &t->id, 't', key);
    enum cf_status st = cf_db_get(s, CF_CF_UPLOADS, key, sizeof key, &val, &vlen);
    if (st == CF_ENOTFOUND)
        return CF_ECORRUPT; /* the state says there is a tail */
    if (st != CF_OK)
        return st;
    size_t alen = tail_aad(&t->tenant, &t->id, t->offset, aad);
    st = CF_ECORRUPT;
    if (vlen == 1 + fill + CF_SEAL_OVERHEAD && (uint8_t)val[0] == TAIL_FORMAT)
        st = cf_aead_open(dek, aad, alen, (const uint8_t *)val + 1, vlen - 1, buf) == CF_OK ? CF_OK : CF_ECORRUPT;
    cf_eng_free(val);
    return st;
}

struct cf_tus_appender {
    struct cf_store *s;
    const struct cf_tkeys *tk;
    struct cf_key dek;
    struct cf_upload *u;   /* the content's writer (holds its own copy of the key) */
    uint8_t *buf;          /* CF_CHUNK_SIZE: the chunk being filled (plaintext, wiped when freed) */
    size_t fill;           /* bytes of buf in use */
    uint64_t pos;          /* stream position just past buf's fill */
    uint64_t length;       /* the upload's Upload-Length */
    uint64_t end;          /* the offset once all n bytes are fed */
};

void cf_tus_append_free(struct cf_tus_appender *a)
{
    if (a == NULL)
        return;
    cf_upload_free(a->u); /* wipes its copy of the key */
    cf_key_wipe(&a->dek);
    cf_free_secret(a->buf, CF_CHUNK_SIZE);
    free(a);
}

enum cf_status cf_tus_append_begin(struct cf_store *s, const struct cf_tus *t, uint64_t n, struct cf_tus_appender **out)
{
    const struct cf_tkeys *tk;
    enum cf_status st;
    *out = NULL;
    if (t->completed || n > t->length - t->offset)
        return CF_EINVAL;
    if (cf_tkeys_get(s, &t->tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    struct cf_tus_appender *a = cf_xcalloc(1, sizeof *a);
    a->s = s;
    a->tk = tk;
    if ((st = cf_dek_unwrap(s, tk, &t->id, t->dek_gen, t->wrapped, &a->dek)) != CF_OK) {
        free(a);
        return st;
    }
    if ((a->buf = cf_try_malloc(CF_CHUNK_SIZE)) == NULL) {
        cf_key_wipe(&a->dek);
        free(a);
        return CF_EIO;
    }
    a->u = cf_upload_resume(s, tk, &t->id, &a->dek);
    a->fill = (size_t)(t->offset % CF_CHUNK_SIZE);
    a->pos = t->offset;
    a->length = t->length;
    a->end = t->offset + n;
    if (a->fill > 0 && (st = tail_read(s, t, &a->dek, a->buf, a->fill)) != CF_OK) {
        cf_tus_append_free(a);
        return st;
    }
    *out = a;
    return CF_OK;
}

enum cf_status cf_tus_append_feed(struct cf_tus_appender *a, const uint8_t *data, size_t n)
{
    enum cf_status st;
    if (n > a->end - a->pos)
        return CF_EINVAL;
    size_t p = 0;
    while (p < n) {
        size_t take = CF_CHUNK_SIZE - a->fill < n - p ? CF_CHUNK_SIZE - a->fill : n - p;
        memcpy(a->buf + a->fill, data + p, take);
        a->fill += take;
        p += take;
        a->pos += take;
        bool last = a->pos == a->length;
        if (a->fill == CF_CHUNK_SIZE || last) {
            uint32_t index = (uint32_t)((a->pos - a->fill) / CF_CHUNK_SIZE);
            if ((st = cf_upload_put_chunk(a->u, index, a->buf, a->fill, last)) != CF_OK)
                return st;
            a->fill = 0;
        }
    }
    return CF_OK;
}

enum cf_status cf_tus_append_end(struct cf_tus_appender *a, struct cf_tus *t, uint64_t ttl_ms)
{
    struct cf_store *s = a->s;
    enum cf_status st;
    if (a->pos != a->end)
        return CF_EINVAL;
    if (a->end == a->length) {
        /* An empty upload still has its one empty, last chunk (content.c). */
        if (a->length == 0 && (st = cf_upload_put_chunk(a->u, 0, a->buf, 0, true)) != CF_OK)
            return st;
        return CF_OK; /* the commit removes the state; until then a retry starts from the old offset */
    }
    /* The chunks written are durable before the state that names them (engine/blob.h). */
    if ((st = cf_db_blob_flush(s)) != CF_OK)
        return st;
    /* The new state: offset, expiry, and the tail (sealed, bound to the new offset). */
    uint8_t key[33], aad[64];
    struct cf_batch *b = cf_batch_new(s->eng);
    state_key(&t->tenant, &t->id, 't', key);
    uint8_t *sealed = NULL;
    if (a->fill > 0) {
        sealed = cf_xmalloc(1 + a->fill + CF_SEAL_OVERHEAD);
        sealed[0] = TAIL_FORMAT;
        size_t alen = tail_aad(&t->tenant, &t->id, a->end, aad);
        if ((st = cf_aead_seal(&a->dek, aad, alen, a->buf, a->fill, sealed + 1)) != CF_OK) {
            free(sealed);
            cf_batch_free(b);
            return st;
        }
        cf_batch_put(b, CF_CF_UPLOADS, (const char *)key, sizeof key, (const char *)sealed,
                     1 + a->fill + CF_SEAL_OVERHEAD);
    } else {
        cf_batch_delete(b, CF_CF_UPLOADS, (const char *)key, sizeof key);
    }
    struct cf_tus next = *t;
    next.offset = a->end;
    next.expires_at = cf_now_ms() + ttl_ms;
    put_state(b, s, a->tk, &next);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
    free(sealed);
    if (st == CF_OK) {
        t->offset = next.offset;
        t->expires_at = next.expires_at;
    }
    return st;
}

enum cf_status cf_tus_append(struct cf_store *s, struct cf_tus *t, const uint8_t *data, size_t n, uint64_t ttl_ms)
{
    struct cf_tus_appender *a;
    enum cf_status st = cf_tus_append_begin(s, t, n, &a);
    if (st != CF_OK)
        return st;
    if ((st = cf_tus_append_feed(a, data, n)) == CF_OK)
        st = cf_tus_append_end(a, t, ttl_ms);
    cf_tus_append_free(a);
    return st;
}

enum cf_status cf_tus_writer(struct cf_store *s, const struct cf_tus *t, struct cf_upload **out)
{
    const struct cf_tkeys *tk;
    struct cf_key dek;
    if (t->completed)
        return CF_EINVAL;
    if (cf_tkeys_get(s, &t->tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    enum cf_status st = cf_dek_unwrap(s, tk, &t->id, t->dek_gen, t->wrapped, &dek);
    if (st != CF_OK)
        return st;
    *out = cf_upload_resume(s, tk, &t->id, &dek);
    cf_key_wipe(&dek);
    return CF_OK;
}

enum cf_status cf_tus_hash_prefix(struct cf_store *s, const struct cf_tus *t, struct cf_hash *h)
{
    const struct cf_tkeys *tk;
    struct cf_key dek;
    enum cf_status st;
    if (t->completed || t->offset > t->length)
        return CF_EINVAL;
    if (cf_tkeys_get(s, &t->tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    if ((st = cf_dek_unwrap(s, tk, &t->id, t->dek_gen, t->wrapped, &dek)) != CF_OK)
        return st;
    uint8_t *buf = cf_try_malloc(CF_CHUNK_SIZE);
    if (buf == NULL) {
        cf_key_wipe(&dek);
        return CF_EIO;
    }
    struct cf_upload *u = cf_upload_resume(s, tk, &t->id, &dek);
    /* Every chunk before the offset is full (only the tail is partial), so none is the last one. */
    uint32_t full = (uint32_t)(t->offset / CF_CHUNK_SIZE);
    size_t fill = (size_t)(t->offset % CF_CHUNK_SIZE);
    for (uint32_t i = 0; i < full; i++) {
        size_t len;
        if ((st = cf_upload_read_chunk(u, t->length, i, buf, &len)) != CF_OK)
            goto out;
        if (len != CF_CHUNK_SIZE) {
            st = CF_ECORRUPT;
            goto out;
        }
        cf_hash_update(h, buf, len);
    }
    if (fill > 0) {
        if ((st = tail_read(s, t, &dek, buf, fill)) != CF_OK)
            goto out;
        cf_hash_update(h, buf, fill);
    }
    st = CF_OK;
out:
    cf_upload_free(u);
    cf_key_wipe(&dek);
    cf_free_secret(buf, CF_CHUNK_SIZE);
    return st;
}

/* The tail and the owner index entry, into b. */
static void drop_unfinished(struct cf_batch *b, const struct cf_tus *t)
{
    uint8_t key[33], okey[49];
    state_key(&t->tenant, &t->id, 't', key);
    cf_batch_delete(b, CF_CF_UPLOADS, (const char *)key, sizeof key);
    owner_key(&t->tenant, &t->owner, &t->id, okey);
    cf_batch_delete(b, CF_CF_UPLOADS, (const char *)okey, sizeof okey);
}

void cf_tus_batch_complete(struct cf_batch *b, struct cf_store *s, const struct cf_tkeys *tk,
                           const struct cf_tus *t, const struct cf_id *node)
{
    struct cf_tus done = *t;
    done.completed = true;
    done.node = *node;
    done.offset = done.length;
    put_state(b, s, tk, &done); /* without the data key: the version record holds it now */
    drop_unfinished(b, t);
    cf_wipe(&done, sizeof done);
}

enum cf_status cf_tus_delete(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id)
{
    struct cf_tus t;
    bool completed = false;
    enum cf_status st = cf_tus_get(s, tenant, id, &t);
    if (st != CF_OK && st != CF_ECORRUPT && st != CF_ENOTFOUND)
        return st;
    if (st != CF_ENOTFOUND) {
        /* The state holds the only copy of an unfinished upload's data key: deleting it first
         * shreds the content even if deleting the chunks fails. A state that fails to open goes
         * too. */
        uint8_t key[33];
        struct cf_batch *b = cf_batch_new(s->eng);
        state_key(tenant, id, 'r', key);
        cf_batch_delete(b, CF_CF_UPLOADS, (const char *)key, sizeof key);
        if (st == CF_OK) {
            drop_unfinished(b, &t);
            completed = t.completed;
            cf_tus_clear(&t);
        }
        st = cf_db_write(s, b, true);
        cf_batch_free(b);
        if (st != CF_OK)
            return st;
    }
    /* A completed upload's content is a live version now; never touch it. */
    return completed ? CF_OK : cf_content_destroy(s, tenant, id);
}

enum cf_status cf_tus_expire(struct cf_store *s, uint64_t now, const struct cf_tus_claim *claim, uint64_t *purged)
{
    struct cf_iter it;
    struct cf_idvec tenants = {0}, ids = {0};
    enum cf_status st = CF_OK;
    uint8_t zero = 0;
    *purged = 0;
    cf_iter_open(s, CF_CF_UPLOADS, &zero, 0, &it);
    cf_eiter_seek_to_first(it.it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl;
        const char *k = cf_eiter_key(it.it, &kl);
        if (kl != 33 || k[16] != 'r')
            continue;
        struct cf_id tenant, id;
        struct cf_tus t;
        memcpy(tenant.b, k, 16);
        memcpy(id.b, k + 17, 16);
        enum cf_status gst = cf_tus_get(s, &tenant, &id, &t);
        if (gst == CF_OK) {
            bool expired = t.expires_at <= now;
            cf_tus_clear(&t);
            if (!expired)
                continue;
        } else if (gst != CF_ECORRUPT && gst != CF_ENOTFOUND) {
            st = gst;
            break;
        }
        cf_idvec_push(&tenants, &tenant);
        cf_idvec_push(&ids, &id);
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    for (size_t i = 0; i < ids.n && st == CF_OK; i++) {
        if (claim != NULL && !claim->take(claim->ctx, &tenants.v[i], &ids.v[i]))
            continue; /* a request is working on it: it sees the expiry itself, next round deletes */
        struct cf_tus t;
        enum cf_status gst = cf_tus_get(s, &tenants.v[i], &ids.v[i], &t);
        bool still = gst != CF_OK || t.expires_at <= now; /* a PATCH may have extended it meanwhile */
        if (gst == CF_OK)
            cf_tus_clear(&t);
        if (still && (st = cf_tus_delete(s, &tenants.v[i], &ids.v[i])) == CF_OK) {
            (*purged)++;
            if (claim != NULL && claim->gone != NULL)
                claim->gone(claim->ctx, &tenants.v[i], &ids.v[i]);
        }
        if (claim != NULL)
            claim->release(claim->ctx, &tenants.v[i], &ids.v[i]);
    }
    free(tenants.v);
    free(ids.v);
    return st;
}

/* Rewraps (or counts, when dry) one upload's data key under gen, while the caller holds its claim. */
static enum cf_status rewrap_one(struct cf_store *s, const struct cf_tkeys *tk, uint32_t gen, bool dry,
                                 const struct cf_id *id, uint64_t *count)
{
    struct cf_tus t;
    struct cf_key dek;
    enum cf_status st = cf_tus_get(s, &tk->tenant, id, &t);
    if (st == CF_ENOTFOUND)
        return CF_OK; /* finished or deleted meanwhile */
    if (st != CF_OK)
        return st;
    if (!t.completed && t.dek_gen != gen) {
        (*count)++;
        if (!dry && (st = cf_dek_unwrap(s, tk, &t.id, t.dek_gen, t.wrapped, &dek)) == CF_OK) {
            cf_ns_lock(s);
            st = cf_dek_wrap(s, tk, &t.id, &dek, t.wrapped, &t.dek_gen);
            cf_key_wipe(&dek);
            if (st == CF_OK && t.dek_gen != gen)
                st = CF_EBUSY; /* another rotation began */
            if (st == CF_OK) {
                struct cf_batch *b = cf_batch_new(s->eng);
                put_state(b, s, tk, &t);
                st = cf_db_write(s, b, true);
                cf_batch_free(b);
            }
            cf_ns_unlock(s);
        }
    }
    cf_tus_clear(&t);
    return st;
}

enum cf_status cf_tus_rewrap(struct cf_store *s, const struct cf_tkeys *tk, uint32_t gen, bool dry,
                             const struct cf_tus_claim *claim, uint64_t *count)
{
    struct cf_iter it;
    struct cf_idvec ids = {0};
    enum cf_status st = CF_OK;
    *count = 0;
    cf_iter_open(s, CF_CF_UPLOADS, tk->tenant.b, CF_ID_LEN, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl;
        const char *k = cf_eiter_key(it.it, &kl);
        if (kl != 33 || k[16] != 'r')
            continue;
        struct cf_id id;
        memcpy(id.b, k + 17, 16);
        cf_idvec_push(&ids, &id);
    }
    st = cf_iter_status(&it);
    cf_iter_close(&it);
    /* Uploads a request is using are retried (a PATCH lasts seconds); each pass takes what is free. */
    size_t left = ids.n;
    for (int pass = 0; st == CF_OK && left > 0; pass++) {
        if (pass > 0) {
            if (pass == 600) {
                st = CF_EBUSY;
                break;
            }
            usleep(100 * 1000);
        }
        for (size_t i = 0; i < ids.n && st == CF_OK; i++) {
            if (cf_id_is_zero(&ids.v[i]))
                continue;
            if (claim != NULL && !claim->take(claim->ctx, &tk->tenant, &ids.v[i]))
                continue;
            st = rewrap_one(s, tk, gen, dry, &ids.v[i], count);
            if (claim != NULL)
                claim->release(claim->ctx, &tk->tenant, &ids.v[i]);
            memset(&ids.v[i], 0, sizeof ids.v[i]);
            left--;
        }
    }
    free(ids.v);
    return st;
}
