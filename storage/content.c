/*
 * content.c: file content. An upload writes sealed chunks under a fresh content id and data key,
 * then commits them as a version of a file node in one synchronous batch; a reader decrypts chunks
 * of a committed version; orphan collection removes the chunks of uploads that never committed.
 *
 * Formats:
 *   chunks   key  T ‖ content ‖ index:u32        (36 bytes)
 *            val  0x01 ‖ nonce ‖ AES-256-GCM(data key, plaintext) ‖ tag
 *            AAD  "coffer/v1/chunk" ‖ T ‖ content ‖ index:u32 ‖ last:u8
 *   versions key  T ‖ file ‖ version:u32         (36 bytes)
 *            val  sealed record: content id, wrapped data key, size, sha256, mime, chunk size,
 *                 created_at, uploader, scan verdict (result, detail, engine, database, time).
 *                 The data key is wrapped with a generation of the tenant's content key
 *                 (keyring.c), AAD "coffer/v1/wrap/dek" ‖ T ‖ content; the record names the
 *                 generation (absent: 0). Key rotation rewrites only these two fields.
 * A content id names exactly one version: the version record (whose AAD is its own key) binds
 * (tenant, file, version) to (content, data key), and the chunk AAD binds every chunk to its content,
 * position and last-ness. So a chunk cannot be swapped, reordered, truncated away or moved between
 * files or versions without failing authentication, and a commit decided late (tus, replace) needs
 * no re-encryption.
 * Sizes: every chunk but the last holds exactly CF_CHUNK_SIZE bytes; an empty file has one empty,
 * last chunk, so even its absence is detected.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define CHUNK_FORMAT 0x01
#define CHUNK_VAL_MAX (1 + CF_CHUNK_SIZE + CF_SEAL_OVERHEAD)

enum {
    VTAG_CONTENT = 1,
    VTAG_WRAPPED_DEK = 2,
    VTAG_SIZE = 3,
    VTAG_SHA256 = 4,
    VTAG_MIME = 5,
    VTAG_CHUNK_SIZE = 6,
    VTAG_CREATED = 7,
    VTAG_UPLOADER = 8,
    VTAG_SCAN_RESULT = 9,
    VTAG_SCAN_DETAIL = 10,
    VTAG_SCAN_ENGINE = 11,
    VTAG_SCAN_DATABASE = 12,
    VTAG_SCAN_AT = 13,
    VTAG_DEK_GEN = 14, /* absent: generation 0 */
};

struct version_rec {
    struct cf_id content;
    uint8_t wrapped[CF_KEY_LEN + CF_SEAL_OVERHEAD];
    bool have_wrapped;
    uint32_t gen;
    uint64_t size;
    uint8_t sha256[CF_SHA256_LEN];
    char *mime;
    uint64_t chunk_size;
    uint64_t created_at;
    struct cf_id uploader;
};

static const char chunk_label[] = "coffer/v1/chunk";

static void version_key(const struct cf_id *tenant, const struct cf_id *file, uint32_t version, uint8_t key[36])
{
    cf_key2(key, tenant, file);
    cf_put_be32(key + 32, version);
}

static void chunk_key(const struct cf_id *tenant, const struct cf_id *content, uint32_t index, uint8_t key[36])
{
    cf_key2(key, tenant, content);
    cf_put_be32(key + 32, index);
}

static size_t chunk_aad(const struct cf_id *tenant, const struct cf_id *content, uint32_t index, bool last,
                        uint8_t aad[64])
{
    size_t o = sizeof chunk_label - 1;
    memcpy(aad, chunk_label, o);
    memcpy(aad + o, tenant->b, CF_ID_LEN);
    memcpy(aad + o + 16, content->b, CF_ID_LEN);
    cf_put_be32(aad + o + 32, index);
    aad[o + 36] = last ? 1 : 0;
    return o + 37;
}

static uint32_t chunk_count(uint64_t size)
{
    return size == 0 ? 1 : (uint32_t)((size + CF_CHUNK_SIZE - 1) / CF_CHUNK_SIZE);
}

static enum cf_status version_decode(const uint8_t *p, size_t len, struct version_rec *out)
{
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    enum cf_status st;
    bool have_content = false;
    memset(out, 0, sizeof *out);
    if ((st = cf_rec_r_init(&r, p, len)) != CF_OK)
        return st;
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        switch (tag) {
        case VTAG_CONTENT:
            st = cf_rec_id(v, vl, &out->content);
            have_content = true;
            break;
        case VTAG_WRAPPED_DEK:
            if (vl != sizeof out->wrapped)
                st = CF_ECORRUPT;
            else
                memcpy(out->wrapped, v, vl);
            out->have_wrapped = true;
            break;
        case VTAG_SIZE:
            st = cf_rec_u64(v, vl, &out->size);
            break;
        case VTAG_DEK_GEN:
            st = cf_rec_u32(v, vl, &out->gen);
            break;
        case VTAG_SHA256:
            if (vl != CF_SHA256_LEN)
                st = CF_ECORRUPT;
            else
                memcpy(out->sha256, v, vl);
            break;
        case VTAG_MIME:
            free(out->mime); /* a repeated tag must not leak the first */
            st = cf_rec_str(v, vl, &out->mime);
            break;
        case VTAG_CHUNK_SIZE:
            st = cf_rec_u64(v, vl, &out->chunk_size);
            break;
        case VTAG_CREATED:
            st = cf_rec_u64(v, vl, &out->created_at);
            break;
        case VTAG_UPLOADER:
            st = cf_rec_id(v, vl, &out->uploader);
            break;
        default:
            break;
        }
        if (st != CF_OK)
            break;
    }
    if (st == CF_ENOTFOUND && (!have_content || !out->have_wrapped || out->chunk_size != CF_CHUNK_SIZE))
        st = CF_ECORRUPT;
    if (st != CF_ENOTFOUND) {
        free(out->mime);
        cf_wipe(out, sizeof *out);
        return st;
    }
    return CF_OK;
}

static enum cf_status version_load(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *file,
                                   uint32_t version, struct version_rec *out)
{
    uint8_t key[36], *pt;
    size_t ptlen;
    version_key(&tk->tenant, file, version, key);
    enum cf_status st = cf_get_sealed(s, CF_CF_VERSIONS, &tk->record, key, sizeof key, &pt, &ptlen);
    if (st != CF_OK)
        return st;
    st = version_decode(pt, ptlen, out);
    cf_free_secret(pt, ptlen);
    return st;
}

enum cf_status cf_versions_delete(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *file,
                                  struct cf_batch *b, struct cf_idvec *contents)
{
    uint8_t prefix[32];
    struct cf_iter it;
    enum cf_status st = CF_OK;
    cf_key2(prefix, &tk->tenant, file);
    cf_iter_open(s, CF_CF_VERSIONS, prefix, sizeof prefix, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl, ptlen;
        const char *k = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        uint8_t *pt;
        struct version_rec vr;
        if (kl != 36) {
            st = CF_ECORRUPT;
            break;
        }
        if ((st = cf_unseal(CF_CF_VERSIONS, &tk->record, k, kl, (const uint8_t *)v, vl, &pt, &ptlen)) != CF_OK)
            break;
        st = version_decode(pt, ptlen, &vr);
        cf_free_secret(pt, ptlen);
        if (st != CF_OK)
            break;
        cf_idvec_push(contents, &vr.content);
        free(vr.mime);
        cf_wipe(&vr, sizeof vr);
        cf_batch_delete(b, CF_CF_VERSIONS, k, kl);
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    return st;
}

enum cf_status cf_content_destroy(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *content)
{
    uint8_t pkey[32];
    cf_key2(pkey, tenant, content);
    /* The blobs first, then the pending mark: a crash between leaves a mark whose collection finds
     * no blobs left, never blobs without a mark. */
    enum cf_status st = cf_db_blob_delete_owner(s, pkey);
    if (st != CF_OK)
        return st;
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_delete(b, CF_CF_PENDING, (const char *)pkey, sizeof pkey);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
    return st;
}

/* A chunk decrypted straight from the blob store's view of its value (no copy of the ciphertext). */
struct chunk_open_ctx {
    const struct cf_key *dek;
    const struct cf_id *tenant, *content;
    uint64_t size;
    uint32_t index;
    uint8_t *out;
    size_t *len;
    enum cf_status st;
};

static void chunk_open_view(void *ctx, const char *val, size_t vl)
{
    struct chunk_open_ctx *c = ctx;
    c->st = cf_chunk_open(c->dek, c->tenant, c->content, c->size, c->index, (const uint8_t *)val, vl, c->out, c->len);
}

/* Reads, verifies and decrypts chunk index of a content of size bytes (index < chunk_count(size)). */
static enum cf_status chunk_read(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *content,
                                 const struct cf_key *dek, uint64_t size, uint32_t index, uint8_t *out, size_t *len)
{
    uint8_t key[36];
    char *err = NULL;
    chunk_key(tenant, content, index, key);
    struct chunk_open_ctx c = {dek, tenant, content, size, index, out, len, CF_ECORRUPT};
    int r = cf_blob_view(s->blobs, key, chunk_open_view, &c, &err);
    if (r == CF_ENG_ERR) {
        cf_storage_log(CF_LOG_ERROR, "storage: reading a chunk: %s", err);
        enum cf_status st = cf_blob_unavailable(err) ? CF_EUNAVAIL : CF_EIO; /* a stalled cluster: 503 */
        cf_eng_free(err);
        return st;
    }
    if (r == CF_ENG_NOTFOUND) {
        cf_storage_log(CF_LOG_ERROR, "storage: a chunk of a file is missing");
        return CF_ECORRUPT;
    }
    if (c.st != CF_OK) {
        cf_storage_log(CF_LOG_ERROR, "storage: a chunk failed authentication");
        return CF_ECORRUPT;
    }
    return CF_OK;
}

enum cf_status cf_chunk_seal(const struct cf_key *dek, const struct cf_id *tenant, const struct cf_id *content,
                             uint32_t index, bool last, const void *pt, size_t n, uint8_t *val)
{
    uint8_t aad[64];
    if (n > CF_CHUNK_SIZE)
        return CF_EINVAL;
    size_t alen = chunk_aad(tenant, content, index, last, aad);
    val[0] = CHUNK_FORMAT;
    return cf_aead_seal(dek, aad, alen, pt, n, val + 1);
}

enum cf_status cf_chunk_open(const struct cf_key *dek, const struct cf_id *tenant, const struct cf_id *content,
                             uint64_t size, uint32_t index, const uint8_t *val, size_t vl, uint8_t *out, size_t *len)
{
    uint8_t aad[64];
    if (index >= chunk_count(size))
        return CF_ECORRUPT;
    bool last = index == chunk_count(size) - 1;
    size_t expect = last ? (size_t)(size - (uint64_t)index * CF_CHUNK_SIZE) : CF_CHUNK_SIZE;
    size_t alen = chunk_aad(tenant, content, index, last, aad);
    /* The value's length is fixed by the version's size: a chunk cut short or padded is refused
     * before any decryption. */
    if (vl != 1 + expect + CF_SEAL_OVERHEAD || val[0] != CHUNK_FORMAT)
        return CF_ECORRUPT;
    if (cf_aead_open(dek, aad, alen, val + 1, vl - 1, out) != CF_OK)
        return CF_ECORRUPT;
    *len = expect;
    return CF_OK;
}

/* Rewrites one sealed version record (plaintext pt) with a new wrapper and generation, keeping every
 * other field as it is, even fields this version of the code does not know. */
static void version_rewrite(const uint8_t *pt, size_t n, const uint8_t *wrapped, uint32_t gen, struct cf_rec_w *w)
{
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    cf_rec_w_init(w);
    if (cf_rec_r_init(&r, pt, n) != CF_OK)
        return;
    while (cf_rec_next(&r, &tag, &v, &vl) == CF_OK)
        if (tag != VTAG_WRAPPED_DEK && tag != VTAG_DEK_GEN)
            cf_rec_put_bytes(w, tag, v, vl);
    cf_rec_put_bytes(w, VTAG_WRAPPED_DEK, wrapped, CF_KEY_LEN + CF_SEAL_OVERHEAD);
    cf_rec_put_u64(w, VTAG_DEK_GEN, gen);
}

#define REWRAP_BATCH 256

/* Rewraps (or counts, when dry) the records among keys[0..n) not under gen, under ns_lock. */
static enum cf_status rewrap_batch(struct cf_store *s, const struct cf_tkeys *tk, uint32_t gen, bool dry,
                                   uint8_t (*keys)[36], size_t n, uint64_t *count)
{
    enum cf_status st = CF_OK;
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_ns_lock(s);
    for (size_t i = 0; i < n && st == CF_OK; i++) {
        uint8_t *pt, wrapped[CF_KEY_LEN + CF_SEAL_OVERHEAD];
        size_t ptlen;
        struct version_rec vr;
        struct cf_key dek;
        uint32_t ngen;
        st = cf_get_sealed(s, CF_CF_VERSIONS, &tk->record, keys[i], 36, &pt, &ptlen);
        if (st == CF_ENOTFOUND) { /* purged since the scan */
            st = CF_OK;
            continue;
        }
        if (st != CF_OK)
            break;
        bool decoded = (st = version_decode(pt, ptlen, &vr)) == CF_OK;
        if (decoded && vr.gen != gen) {
            (*count)++;
            if (!dry && (st = cf_dek_unwrap(s, tk, &vr.content, vr.gen, vr.wrapped, &dek)) == CF_OK) {
                st = cf_dek_wrap(s, tk, &vr.content, &dek, wrapped, &ngen);
                cf_key_wipe(&dek);
                if (st == CF_OK && ngen != gen)
                    st = CF_EBUSY; /* another rotation began: let it finish the work */
                if (st == CF_OK) {
                    struct cf_rec_w w;
                    version_rewrite(pt, ptlen, wrapped, ngen, &w);
                    cf_seal_batch_put(b, s, CF_CF_VERSIONS, &tk->record, keys[i], 36, &w, NULL, 0);
                    cf_rec_w_free(&w);
                }
            }
        }
        if (decoded) {
            free(vr.mime);
            cf_wipe(&vr, sizeof vr);
        }
        cf_free_secret(pt, ptlen);
    }
    if (st == CF_OK && !dry)
        st = cf_db_write(s, b, true);
    cf_ns_unlock(s);
    cf_batch_free(b);
    return st;
}

enum cf_status cf_versions_rewrap(struct cf_store *s, const struct cf_tkeys *tk, uint32_t gen, bool dry,
                                  uint64_t *count)
{
    struct cf_iter it;
    uint8_t(*keys)[36] = cf_xmalloc(REWRAP_BATCH * sizeof *keys);
    size_t n = 0;
    enum cf_status st = CF_OK;
    *count = 0;
    /* The scan reads keys only; each record is read again, and rewritten, under the lock. */
    cf_iter_open(s, CF_CF_VERSIONS, tk->tenant.b, CF_ID_LEN, &it);
    for (; cf_eiter_valid(it.it) && st == CF_OK; cf_eiter_next(it.it)) {
        size_t kl;
        const char *k = cf_eiter_key(it.it, &kl);
        if (kl != 36) {
            st = CF_ECORRUPT;
            break;
        }
        memcpy(keys[n++], k, 36);
        if (n == REWRAP_BATCH) {
            st = rewrap_batch(s, tk, gen, dry, keys, n, count);
            n = 0;
        }
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    if (st == CF_OK && n > 0)
        st = rewrap_batch(s, tk, gen, dry, keys, n, count);
    free(keys);
    return st;
}

/* ---- uploads -------------------------------------------------------------------------------- */

struct cf_upload {
    struct cf_store *s;
    const struct cf_tkeys *tk;
    struct cf_id content;
    struct cf_key dek;   /* the version's data key; wiped in free */
    uint8_t *scratch;    /* one sealed chunk value, CHUNK_VAL_MAX bytes */
    bool committed;
};

enum cf_status cf_upload_begin(struct cf_store *s, const struct cf_id *tenant, struct cf_upload **out)
{
    const struct cf_tkeys *tk;
    uint8_t pkey[32], mark[CF_PENDING_MARK_MAX];
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;
    struct cf_upload *u = cf_xcalloc(1, sizeof *u);
    u->s = s;
    u->tk = tk;
    cf_id_new(&u->content);
    cf_key_random(&u->dek);
    /* The pending mark is durable no later than the first chunk (RocksDB: it precedes them in the
     * WAL; a blob store with its own log needs it synced), so recovery never sees a chunk without it. */
    cf_key2(pkey, tenant, &u->content);
    size_t ml = cf_pending_mark(s, CF_PENDING_UPLOAD, mark);
    bool sync = !cf_blobs_ordered(s->blobs);
    if ((st = cf_db_put(s, CF_CF_PENDING, pkey, sizeof pkey, mark, ml, sync)) != CF_OK) {
        cf_upload_free(u);
        return st;
    }
    *out = u;
    return CF_OK;
}

struct cf_upload *cf_upload_resume(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *content,
                                   const struct cf_key *dek)
{
    struct cf_upload *u = cf_xcalloc(1, sizeof *u);
    u->s = s;
    u->tk = tk;
    u->content = *content;
    u->dek = *dek;
    return u;
}

enum cf_status cf_upload_put_chunk(struct cf_upload *u, uint32_t index, const void *pt, size_t n, bool last)
{
    uint8_t key[36];
    if (n > CF_CHUNK_SIZE || u->committed)
        return CF_EINVAL;
    if (u->scratch == NULL && (u->scratch = cf_try_malloc(CHUNK_VAL_MAX)) == NULL)
        return CF_EIO;
    chunk_key(&u->tk->tenant, &u->content, index, key);
    enum cf_status st = cf_chunk_seal(&u->dek, &u->tk->tenant, &u->content, index, last, pt, n, u->scratch);
    if (st != CF_OK)
        return st;
    /* Durable by the commit: cf_upload_commit flushes the blobs before its synced write. */
    return cf_db_blob_put(u->s, key, u->scratch, 1 + n + CF_SEAL_OVERHEAD);
}

enum cf_status cf_upload_read_chunk(struct cf_upload *u, uint64_t size, uint32_t index, uint8_t *out, size_t *len)
{
    if (u->committed || index >= chunk_count(size))
        return CF_EINVAL;
    return chunk_read(u->s, &u->tk->tenant, &u->content, &u->dek, size, index, out, len);
}

static void version_encode(const struct cf_upload *u, const struct cf_commit *c, const uint8_t *wrapped, uint32_t gen,
                           struct cf_rec_w *w)
{
    cf_rec_put_id(w, VTAG_CONTENT, &u->content);
    cf_rec_put_bytes(w, VTAG_WRAPPED_DEK, wrapped, CF_KEY_LEN + CF_SEAL_OVERHEAD);
    cf_rec_put_u64(w, VTAG_DEK_GEN, gen);
    cf_rec_put_u64(w, VTAG_SIZE, c->size);
    cf_rec_put_bytes(w, VTAG_SHA256, c->sha256, CF_SHA256_LEN);
    cf_rec_put_str(w, VTAG_MIME, c->mime);
    cf_rec_put_u64(w, VTAG_CHUNK_SIZE, CF_CHUNK_SIZE);
    cf_rec_put_u64(w, VTAG_CREATED, cf_now_ms());
    cf_rec_put_id(w, VTAG_UPLOADER, &c->uploader);
    cf_rec_put_str(w, VTAG_SCAN_RESULT, c->scan->result);
    if (c->scan->detail != NULL)
        cf_rec_put_str(w, VTAG_SCAN_DETAIL, c->scan->detail);
    cf_rec_put_str(w, VTAG_SCAN_ENGINE, c->scan->engine != NULL ? c->scan->engine : "");
    cf_rec_put_str(w, VTAG_SCAN_DATABASE, c->scan->database != NULL ? c->scan->database : "");
    cf_rec_put_u64(w, VTAG_SCAN_AT, c->scan->at);
}

/* For commit.c: what an upload's commit needs of it, the version record and the end of its pending
 * mark (into b), and the mark that it is committed. */
void cf_upload_view(const struct cf_upload *u, struct cf_upload_view *out)
{
    out->s = u->s;
    out->tk = u->tk;
    out->content = &u->content;
    out->dek = &u->dek;
    out->committed = u->committed;
}

void cf_upload_batch_version(struct cf_batch *b, const struct cf_upload *u, const struct cf_commit *c,
                             const uint8_t *wrapped, uint32_t gen, const struct cf_node *node)
{
    uint8_t vkey[36], pkey[32];
    struct cf_rec_w w;
    cf_rec_w_init(&w);
    version_encode(u, c, wrapped, gen, &w);
    version_key(&u->tk->tenant, &node->id, node->version, vkey);
    cf_seal_batch_put(b, u->s, CF_CF_VERSIONS, &u->tk->record, vkey, sizeof vkey, &w, NULL, 0);
    cf_rec_w_free(&w);
    cf_key2(pkey, &u->tk->tenant, &u->content);
    cf_batch_delete(b, CF_CF_PENDING, (const char *)pkey, sizeof pkey);
}

void cf_upload_set_committed(struct cf_upload *u)
{
    u->committed = true;
}

void cf_upload_abort(struct cf_upload *u)
{
    if (u == NULL || u->committed)
        return;
    if (cf_content_destroy(u->s, &u->tk->tenant, &u->content) != CF_OK)
        cf_storage_log(CF_LOG_WARN, "storage: could not delete an aborted upload; it is collected at next start");
}

void cf_upload_free(struct cf_upload *u)
{
    if (u == NULL)
        return;
    free(u->scratch);
    cf_key_wipe(&u->dek);
    free(u);
}

/* ---- readers -------------------------------------------------------------------------------- */

struct cf_reader {
    struct cf_store *s;
    const struct cf_tkeys *tk;
    struct cf_id content;
    struct cf_key dek;
    uint64_t size;
    uint32_t nchunks;
    struct cf_id file;       /* what was opened (pages.c checks it is still there after a put) */
    uint32_t version;
};

void cf_reader_internals(const struct cf_reader *r, struct cf_reader_internals *out)
{
    out->s = r->s;
    out->tenant = &r->tk->tenant;
    out->content = &r->content;
    out->dek = &r->dek;
    out->file = &r->file;
    out->version = r->version;
}

enum cf_status cf_reader_open(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *file,
                              uint32_t version, struct cf_reader **out)
{
    const struct cf_tkeys *tk;
    struct cf_node node = {0};
    struct version_rec vr;
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return CF_ENOTFOUND;
    if (version == 0) {
        if ((st = cf_node_load(s, tk, file, &node)) != CF_OK)
            return st;
        version = node.version;
        bool is_file = node.type == CF_NODE_FILE;
        cf_node_clear(&node);
        if (!is_file)
            return CF_ENOTFOUND;
    }
    struct cf_reader *r = cf_xcalloc(1, sizeof *r);
    /* A key rotation may retire the generation between the reading of the record and the unwrap:
     * the record then holds the new wrapper; read it again. */
    for (int attempt = 0;; attempt++) {
        if ((st = version_load(s, tk, file, version, &vr)) != CF_OK) {
            cf_reader_free(r);
            return st;
        }
        st = cf_dek_unwrap(s, tk, &vr.content, vr.gen, vr.wrapped, &r->dek);
        r->content = vr.content;
        r->size = vr.size;
        free(vr.mime);
        cf_wipe(&vr, sizeof vr);
        if (st != CF_ENOTFOUND || attempt == 2)
            break;
    }
    if (st != CF_OK) {
        cf_reader_free(r);
        return CF_ECORRUPT;
    }
    r->s = s;
    r->tk = tk;
    r->nchunks = chunk_count(r->size);
    r->file = *file;
    r->version = version;
    *out = r;
    return CF_OK;
}

uint64_t cf_reader_size(const struct cf_reader *r)
{
    return r->size;
}

uint32_t cf_reader_chunk_count(const struct cf_reader *r)
{
    return r->nchunks;
}

enum cf_status cf_reader_chunk(struct cf_reader *r, uint32_t index, uint8_t *out, size_t *len)
{
    if (index >= r->nchunks)
        return CF_EINVAL;
    return chunk_read(r->s, &r->tk->tenant, &r->content, &r->dek, r->size, index, out, len);
}

void cf_reader_free(struct cf_reader *r)
{
    if (r == NULL)
        return;
    cf_key_wipe(&r->dek);
    free(r);
}

/* ---- orphans -------------------------------------------------------------------------------- */

size_t cf_pending_mark(const struct cf_store *s, uint8_t kind, uint8_t out[CF_PENDING_MARK_MAX])
{
    out[0] = kind;
    cf_put_be64(out + 1, cf_now_ms());
    if (!s->has_node || kind == CF_PENDING_TUS) /* a resumable upload is any node's to continue */
        return 9;
    memcpy(out + 9, s->node, 16);
    return CF_PENDING_MARK_MAX;
}

void cf_store_set_node(struct cf_store *s, const uint8_t id[16])
{
    memcpy(s->node, id, 16);
    s->has_node = true;
}

/* Whether a simple-upload or purge mark v[0..vl) is dead: written by this node's previous run (no
 * owner, or this node), or, with stale_before non-zero, by anyone before that time. */
static bool mark_dead(const struct cf_store *s, const uint8_t *v, size_t vl, uint64_t stale_before)
{
    if (stale_before != 0)
        return cf_get_be64(v + 1) < stale_before;
    return vl == 9 || (s->has_node && memcmp(v + 9, s->node, 16) == 0);
}

static enum cf_status collect(struct cf_store *s, uint64_t stale_before, uint64_t *out_contents)
{
    struct cf_iter it;
    struct cf_idvec tenants = {0}, contents = {0};
    enum cf_status st = CF_OK;
    uint8_t zero = 0;
    *out_contents = 0;
    /* An empty prefix iterates the whole column family (no upper bound). */
    cf_iter_open(s, CF_CF_PENDING, &zero, 0, &it);
    cf_eiter_seek_to_first(it.it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl;
        const char *k = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        if (kl != 32 || (vl != 9 && vl != CF_PENDING_MARK_MAX)) {
            st = CF_ECORRUPT;
            break;
        }
        /* Simple uploads and purges are dead once the process that wrote them is gone; resumable
         * uploads live on until they expire (cf_tus_expire). */
        if ((v[0] != CF_PENDING_UPLOAD && v[0] != CF_PENDING_PURGE) ||
            !mark_dead(s, (const uint8_t *)v, vl, stale_before))
            continue;
        struct cf_id t, c;
        memcpy(t.b, k, 16);
        memcpy(c.b, k + 16, 16);
        cf_idvec_push(&tenants, &t);
        cf_idvec_push(&contents, &c);
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    for (size_t i = 0; i < contents.n && st == CF_OK; i++) {
        st = cf_content_destroy(s, &tenants.v[i], &contents.v[i]);
        if (st == CF_OK)
            (*out_contents)++;
    }
    free(tenants.v);
    free(contents.v);
    return st;
}

enum cf_status cf_store_collect_orphans(struct cf_store *s, uint64_t *out_contents)
{
    return collect(s, 0, out_contents);
}

enum cf_status cf_store_collect_stale(struct cf_store *s, uint64_t older_than_ms, uint64_t *out_contents)
{
    uint64_t now = cf_now_ms();
    return collect(s, now > older_than_ms ? now - older_than_ms : 1, out_contents);
}

/* ---- consistency check (coffer fsck) ------------------------------------------------------------ */

struct keyset {
    uint8_t (*v)[32];
    size_t n, cap;
};

static void keyset_add(struct keyset *ks, const void *k)
{
    if (ks->n == ks->cap) {
        ks->cap = ks->cap == 0 ? 256 : ks->cap * 2;
        ks->v = cf_xrealloc(ks->v, ks->cap * sizeof *ks->v);
    }
    memcpy(ks->v[ks->n++], k, 32);
}

static int key32_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static bool keyset_has(const struct keyset *ks, const void *k)
{
    return ks->n != 0 && bsearch(k, ks->v, ks->n, sizeof *ks->v, key32_cmp) != NULL;
}

/* fsck's scan of the chunk blobs, one key at a time, in key order (so a content's chunks are
 * adjacent). */
struct chunk_scan {
    const struct keyset *referenced, *tus, *dead;
    struct cf_check_report *out;
    uint8_t prev[32];
    bool have_prev;
};

static int chunk_scan_one(void *ctx, const uint8_t *k, size_t kl)
{
    struct chunk_scan *c = ctx;
    if (kl != CF_BLOB_KEY_LEN) {
        c->out->corrupt++;
        return 0;
    }
    c->out->chunks++;
    if (c->have_prev && memcmp(c->prev, k, 32) == 0)
        return 0;
    memcpy(c->prev, k, 32);
    c->have_prev = true;
    if (keyset_has(c->referenced, k))
        return 0;
    if (keyset_has(c->tus, k))
        c->out->resumable_contents++;
    else if (keyset_has(c->dead, k))
        c->out->unfinished_contents++;
    else
        c->out->orphan_contents++;
    return 0;
}

/* Decrypts every chunk of one version and compares its length and SHA-256 with the record's. */
static enum cf_status check_version(struct cf_store *s, const struct cf_tkeys *tk, const struct version_rec *vr,
                                    uint8_t *buf)
{
    uint8_t digest[CF_SHA256_LEN];
    struct cf_key dek;
    if (cf_dek_unwrap(s, tk, &vr->content, vr->gen, vr->wrapped, &dek) != CF_OK)
        return CF_ECORRUPT;
    struct cf_hash *h = cf_hash_new(CF_HASH_SHA256);
    uint64_t total = 0;
    enum cf_status st = CF_OK;
    for (uint32_t i = 0; i < chunk_count(vr->size) && st == CF_OK; i++) {
        size_t len;
        if ((st = chunk_read(s, &tk->tenant, &vr->content, &dek, vr->size, i, buf, &len)) == CF_OK) {
            cf_hash_update(h, buf, len);
            total += len;
        }
    }
    cf_hash_final(h, digest);
    cf_hash_free(h);
    cf_key_wipe(&dek);
    if (st == CF_OK && (total != vr->size || CRYPTO_memcmp(digest, vr->sha256, sizeof digest) != 0))
        st = CF_ECORRUPT;
    return st;
}

enum cf_status cf_store_check(struct cf_store *s, struct cf_check_report *out)
{
    struct keyset referenced = {0}, tus = {0}, dead = {0};
    struct cf_iter it;
    enum cf_status st = CF_OK;
    uint8_t zero = 0, *buf = cf_xmalloc(CF_CHUNK_SIZE);
    memset(out, 0, sizeof *out);

    /* 1. Every version: its content must decrypt to the recorded size and hash. */
    cf_iter_open(s, CF_CF_VERSIONS, &zero, 0, &it);
    cf_eiter_seek_to_first(it.it);
    for (; cf_eiter_valid(it.it) && st == CF_OK; cf_eiter_next(it.it)) {
        size_t kl, vl, ptlen;
        const char *k = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        const struct cf_tkeys *tk;
        struct cf_id tenant;
        uint8_t *pt;
        struct version_rec vr;
        out->versions++;
        memcpy(tenant.b, k, CF_ID_LEN);
        if (kl != 36 || cf_tkeys_get(s, &tenant, &tk) != CF_OK ||
            cf_unseal(CF_CF_VERSIONS, &tk->record, k, kl, (const uint8_t *)v, vl, &pt, &ptlen) != CF_OK) {
            out->corrupt++;
            continue;
        }
        enum cf_status dst = version_decode(pt, ptlen, &vr);
        cf_free_secret(pt, ptlen);
        if (dst != CF_OK) {
            out->corrupt++;
            continue;
        }
        uint8_t ck[32];
        cf_key2(ck, &tenant, &vr.content);
        keyset_add(&referenced, ck);
        enum cf_status vst = check_version(s, tk, &vr, buf);
        if (vst == CF_OK)
            out->bytes += vr.size;
        else if (vst == CF_EIO)
            st = CF_EIO;
        else
            out->corrupt++;
        free(vr.mime);
        cf_wipe(&vr, sizeof vr);
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);

    /* 2. Contents that resumable uploads still hold (a tus mark), and those of simple uploads and
     *    purges that never finished (collected at the next start of the server). */
    cf_iter_open(s, CF_CF_PENDING, &zero, 0, &it);
    cf_eiter_seek_to_first(it.it);
    for (; cf_eiter_valid(it.it) && st == CF_OK; cf_eiter_next(it.it)) {
        size_t kl, vl;
        const char *k = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        if (kl == 32 && vl >= 1)
            keyset_add(v[0] == CF_PENDING_TUS ? &tus : &dead, k);
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    struct keyset *sets[] = {&referenced, &tus, &dead};
    for (size_t i = 0; i < 3; i++)
        if (sets[i]->n > 0)
            qsort(sets[i]->v, sets[i]->n, sizeof *sets[i]->v, key32_cmp);

    /* 3. Every content in the chunk blobs: committed, held by a resumable upload, or an orphan. */
    struct chunk_scan scan = {.referenced = &referenced, .tus = &tus, .dead = &dead, .out = out};
    char *err = NULL;
    if (st == CF_OK && cf_blob_list(s->blobs, NULL, 0, chunk_scan_one, &scan, &err) != CF_ENG_OK)
        st = cf_db_error("list chunks", err);
    free(referenced.v);
    free(tus.v);
    free(dead.v);
    cf_free_secret(buf, CF_CHUNK_SIZE);
    return st;
}

/* ---- old versions: listing (issue 21; restore.c restores one, purge.c expires them) -------------- */

void cf_version_info_clear(struct cf_version_info *v)
{
    if (v == NULL)
        return;
    free(v->mime);
    cf_scan_summary_clear(&v->scan);
    memset(v, 0, sizeof *v);
}

/* The public fields of a version record (plaintext pt), the scan verdict included: version_decode
 * reads (and checks) the record, and only the scan tags, which it does not keep, are read here. */
static enum cf_status version_info_decode(const uint8_t *pt, size_t n, uint32_t version, struct cf_version_info *out)
{
    struct version_rec vr;
    memset(out, 0, sizeof *out);
    enum cf_status st = version_decode(pt, n, &vr);
    if (st != CF_OK)
        return st;
    out->version = version;
    out->size = vr.size;
    memcpy(out->sha256, vr.sha256, sizeof out->sha256);
    out->mime = vr.mime != NULL ? vr.mime : cf_xstrdup("application/octet-stream");
    out->created_at = vr.created_at;
    out->uploader = vr.uploader;
    cf_wipe(&vr, sizeof vr);
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    st = cf_rec_r_init(&r, pt, n);
    while (st == CF_OK && (st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        switch (tag) {
        case VTAG_SCAN_RESULT:
            free(out->scan.result);
            st = cf_rec_str(v, vl, &out->scan.result);
            break;
        case VTAG_SCAN_DETAIL:
            free(out->scan.detail);
            st = cf_rec_str(v, vl, &out->scan.detail);
            break;
        case VTAG_SCAN_ENGINE:
            free(out->scan.engine);
            st = cf_rec_str(v, vl, &out->scan.engine);
            break;
        case VTAG_SCAN_DATABASE:
            free(out->scan.database);
            st = cf_rec_str(v, vl, &out->scan.database);
            break;
        case VTAG_SCAN_AT:
            st = cf_rec_u64(v, vl, &out->scan.at);
            break;
        default:
            break;
        }
    }
    if (st != CF_ENOTFOUND) {
        cf_version_info_clear(out);
        return st == CF_OK ? CF_ECORRUPT : st;
    }
    return CF_OK;
}

enum cf_status cf_versions_walk(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *file,
                                cf_version_visit_fn fn, void *ctx)
{
    uint8_t prefix[32];
    struct cf_iter it;
    enum cf_status st = CF_OK;
    if (file != NULL)
        cf_key2(prefix, &tk->tenant, file);
    else
        memcpy(prefix, tk->tenant.b, CF_ID_LEN);
    cf_iter_open(s, CF_CF_VERSIONS, prefix, file != NULL ? 32 : CF_ID_LEN, &it);
    for (; cf_eiter_valid(it.it) && st == CF_OK; cf_eiter_next(it.it)) {
        size_t kl, vl, ptlen;
        const char *k = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        uint8_t *pt;
        struct cf_id f;
        struct cf_version_info vi;
        if (kl != 36) {
            st = CF_ECORRUPT;
            break;
        }
        if ((st = cf_unseal(CF_CF_VERSIONS, &tk->record, k, kl, (const uint8_t *)v, vl, &pt, &ptlen)) != CF_OK)
            break;
        memcpy(f.b, k + CF_ID_LEN, CF_ID_LEN);
        st = version_info_decode(pt, ptlen, cf_get_be32((const uint8_t *)k + 32), &vi);
        cf_free_secret(pt, ptlen);
        if (st == CF_OK) {
            st = fn(ctx, &f, &vi);
            cf_version_info_clear(&vi);
        }
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    return st;
}

enum cf_status cf_version_drop(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *file,
                               uint32_t version, struct cf_batch *b, struct cf_idvec *contents)
{
    struct version_rec vr;
    uint8_t vkey[36];
    enum cf_status st = version_load(s, tk, file, version, &vr);
    if (st != CF_OK)
        return st;
    version_key(&tk->tenant, file, version, vkey);
    cf_batch_delete(b, CF_CF_VERSIONS, (const char *)vkey, sizeof vkey);
    cf_idvec_push(contents, &vr.content);
    free(vr.mime);
    cf_wipe(&vr, sizeof vr);
    return CF_OK;
}

struct info_list {
    struct cf_version_info *v;
    size_t n, cap;
};

static enum cf_status info_collect(void *ctx, const struct cf_id *file, struct cf_version_info *v)
{
    struct info_list *l = ctx;
    (void)file;
    if (l->n == l->cap) {
        l->cap = l->cap == 0 ? 8 : l->cap * 2;
        l->v = cf_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = *v; /* taken: the walk clears an empty record */
    memset(v, 0, sizeof *v);
    return CF_OK;
}

enum cf_status cf_versions_list(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *file,
                                struct cf_version_info **out, size_t *n)
{
    const struct cf_tkeys *tk;
    struct info_list l = {0};
    *out = NULL;
    *n = 0;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    enum cf_status st = cf_versions_walk(s, tk, file, info_collect, &l);
    if (st != CF_OK) {
        for (size_t i = 0; i < l.n; i++)
            cf_version_info_clear(&l.v[i]);
        free(l.v);
        return st;
    }
    *out = l.v;
    *n = l.n;
    return CF_OK;
}

enum cf_status cf_version_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *file,
                              uint32_t version, struct cf_version_info *out)
{
    const struct cf_tkeys *tk;
    uint8_t key[36], *pt;
    size_t ptlen;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    version_key(tenant, file, version, key);
    enum cf_status st = cf_get_sealed(s, CF_CF_VERSIONS, &tk->record, key, sizeof key, &pt, &ptlen);
    if (st != CF_OK)
        return st;
    st = version_info_decode(pt, ptlen, version, out);
    cf_free_secret(pt, ptlen);
    return st;
}

