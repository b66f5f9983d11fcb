/*
 * test_store.c: the encrypted store end to end, on a fresh RocksDB in a temporary directory:
 * lifecycle, tenants, users, sessions, folders, listing, uploads and reads, conflicts, moves,
 * trash, purge, orphan collection; then tamper tests that edit the column families directly
 * (through store_internal.h) and a scan of every file on disk for plaintext.
 */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"
#include "tap.h"
#include "blob_contract.h"

static struct cf_key g_master;
static const struct cf_scan_summary g_scan = {
    .result = (char *)"clean", .engine = (char *)"ClamAV test", .database = (char *)"0123abcd", .at = 1234};

/* ---- helpers -------------------------------------------------------------------------------- */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Deterministic pseudo-random bytes (xorshift32), different for each seed. */
static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u ^ 0x9e3779b9u;
    if (x == 0)
        x = 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)(x >> 8);
    }
}

static uint8_t *make_data(size_t n, uint32_t seed)
{
    uint8_t *p = cf_xmalloc(n == 0 ? 1 : n);
    fill(p, n, seed);
    return p;
}

static uint32_t nchunks(uint64_t size)
{
    return size == 0 ? 1 : (uint32_t)((size + CF_CHUNK_SIZE - 1) / CF_CHUNK_SIZE);
}

struct may_ctx {
    int calls;
    struct cf_id seen;
    bool answer;
};

static bool may_cb(void *ctx, const struct cf_node *existing)
{
    struct may_ctx *m = ctx;
    m->calls++;
    m->seen = existing->id;
    return m->answer;
}

/* Uploads data as name in parent: begin, every chunk, commit. On failure the upload is aborted (so
 * no pending mark is left behind) and the commit's status returned. */
static enum cf_status put_file_ex(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *parent,
                                  const char *name, const uint8_t *data, size_t size, enum cf_conflict oc,
                                  const struct cf_id *uploader, struct may_ctx *may, struct cf_node *out)
{
    struct cf_upload *u;
    enum cf_status st = cf_upload_begin(s, tenant, &u);
    if (st != CF_OK)
        return st;
    uint32_t n = nchunks(size);
    for (uint32_t i = 0; i < n; i++) {
        size_t off = (size_t)i * CF_CHUNK_SIZE;
        size_t len = size - off < CF_CHUNK_SIZE ? size - off : CF_CHUNK_SIZE;
        if ((st = cf_upload_put_chunk(u, i, data + off, len, i == n - 1)) != CF_OK)
            goto fail;
    }
    struct cf_commit c;
    memset(&c, 0, sizeof c);
    c.parent = *parent;
    c.name = name;
    c.name_len = strlen(name);
    c.on_conflict = oc;
    c.uploader = *uploader;
    c.size = size;
    cf_sha256(data, size, c.sha256);
    c.mime = "application/x-test";
    c.scan = &g_scan;
    if (may != NULL) {
        c.may_replace = may_cb;
        c.ctx = may;
    }
    if ((st = cf_upload_commit(u, &c, out)) != CF_OK)
        goto fail;
    cf_upload_free(u);
    return CF_OK;
fail:
    cf_upload_abort(u);
    cf_upload_free(u);
    return st;
}

static enum cf_status put_file(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *parent,
                               const char *name, const uint8_t *data, size_t size, const struct cf_id *uploader,
                               struct cf_node *out)
{
    return put_file_ex(s, tenant, parent, name, data, size, CF_CONFLICT_FAIL, uploader, NULL, out);
}

/* Reads a whole version back and compares it with data. */
static bool read_matches(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *file, uint32_t version,
                         const uint8_t *data, size_t size)
{
    struct cf_reader *r;
    if (cf_reader_open(s, tenant, file, version, &r) != CF_OK)
        return false;
    bool ok = cf_reader_size(r) == size && cf_reader_chunk_count(r) == nchunks(size);
    uint8_t *buf = cf_xmalloc(CF_CHUNK_SIZE);
    size_t off = 0;
    for (uint32_t i = 0; ok && i < cf_reader_chunk_count(r); i++) {
        size_t len = SIZE_MAX;
        if (cf_reader_chunk(r, i, buf, &len) != CF_OK || len > size - off || memcmp(buf, data + off, len) != 0)
            ok = false;
        else
            off += len;
    }
    ok = ok && off == size;
    free(buf);
    cf_reader_free(r);
    return ok;
}

/* The status of reading one chunk of the current version. */
static enum cf_status read_chunk(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *file,
                                 uint32_t index)
{
    struct cf_reader *r;
    enum cf_status st = cf_reader_open(s, tenant, file, 0, &r);
    if (st != CF_OK)
        return st;
    uint8_t *buf = cf_xmalloc(CF_CHUNK_SIZE);
    size_t len;
    st = cf_reader_chunk(r, index, buf, &len);
    free(buf);
    cf_reader_free(r);
    return st;
}

/* The content id of a version, read from its sealed version record (tag 1). */
static enum cf_status content_of(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *file,
                                 uint32_t version, struct cf_id *out)
{
    const struct cf_tkeys *tk;
    uint8_t key[36], *pt;
    size_t ptlen;
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return st;
    cf_key2(key, tenant, file);
    cf_put_be32(key + 32, version);
    if ((st = cf_get_sealed(s, CF_CF_VERSIONS, &tk->record, key, sizeof key, &pt, &ptlen)) != CF_OK)
        return st;
    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    bool found = false;
    if ((st = cf_rec_r_init(&r, pt, ptlen)) == CF_OK) {
        while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK)
            if (tag == 1 && cf_rec_id(v, vl, out) == CF_OK)
                found = true;
        st = st == CF_ENOTFOUND && found ? CF_OK : CF_ECORRUPT;
    }
    cf_free_secret(pt, ptlen);
    return st;
}

/* Number of keys in a column family starting with prefix, with a raw engine iterator. */
static size_t count_prefix(struct cf_store *s, enum cf_cf cf, const void *prefix, size_t plen)
{
    size_t n = 0;
    struct cf_eiter *it = cf_eiter_open(s->eng, cf, NULL, 0, NULL, 0);
    if (plen == 0)
        cf_eiter_seek_to_first(it);
    else
        cf_eiter_seek(it, prefix, plen);
    for (; cf_eiter_valid(it); cf_eiter_next(it)) {
        size_t kl;
        const char *k = cf_eiter_key(it, &kl);
        if (kl < plen || memcmp(k, prefix, plen) != 0)
            break;
        n++;
    }
    cf_eiter_close(it);
    return n;
}

static size_t count_chunks(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *content)
{
    uint8_t p[32];
    cf_key2(p, tenant, content);
    return count_prefix(s, CF_CF_CHUNKS, p, sizeof p);
}

/* Raw get / put / delete on a column family (the attacker's view of the disk). */
static char *raw_get(struct cf_store *s, enum cf_cf cf, const void *key, size_t klen, size_t *vlen)
{
    char *err = NULL, *v = NULL;
    int r = cf_eng_get(s->eng, cf, key, klen, &v, vlen, &err);
    if (r == CF_ENG_ERR) {
        fprintf(stderr, "raw_get: %s\n", err);
        cf_eng_free(err);
        return NULL;
    }
    return r == CF_ENG_OK ? v : NULL;
}

/* A synced engine write of b, bypassing the journal (and freeing b). Past the model, so past the
 * metadata cache's invalidation too: the cache is dropped as a restart would (a tamperer edits the
 * files; the process reads them again once its cache no longer holds the record). */
static bool raw_write(struct cf_store *s, struct cf_batch *b, const char *what)
{
    char *err = NULL;
    bool ok = cf_eng_write(s->eng, b, true, &err) == CF_ENG_OK;
    cf_batch_free(b);
    cf_db_cache_drop_all(s);
    if (!ok) {
        fprintf(stderr, "%s: %s\n", what, err);
        cf_eng_free(err);
    }
    return ok;
}

static bool raw_put(struct cf_store *s, enum cf_cf cf, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_put(b, cf, key, klen, val, vlen);
    return raw_write(s, b, "raw_put");
}

static bool raw_del(struct cf_store *s, enum cf_cf cf, const void *key, size_t klen)
{
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_delete(b, cf, key, klen);
    return raw_write(s, b, "raw_del");
}

static void chunk_key(const struct cf_id *tenant, const struct cf_id *content, uint32_t index, uint8_t key[36])
{
    cf_key2(key, tenant, content);
    cf_put_be32(key + 32, index);
}

static void free_nodes(struct cf_node *arr, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cf_node_clear(&arr[i]);
    free(arr);
}

/* ---- shared fixture ------------------------------------------------------------------------- */

struct fx {
    char *dir;
    struct cf_store *s;
    struct cf_tenant acme, beta;
    struct cf_user alice;
};

/* ---- resumable uploads ------------------------------------------------------------------------ */

static void test_tus(struct fx *f)
{
    struct cf_store *s = f->s;
    const struct cf_id *T = &f->acme.id;
    const size_t size = 3 * CF_CHUNK_SIZE + 777;
    uint8_t *data = make_data(size, 4242);
    struct cf_tus t;
    memset(&t, 0, sizeof t);
    t.tenant = *T;
    t.owner = f->alice.id;
    t.parent = f->acme.root;
    t.name = cf_xstrdup("resumable.bin");
    t.length = size;
    t.metadata = cf_xstrdup("filename cmVzdW1hYmxlLmJpbg==");
    CHECK_INT(cf_tus_create(s, &t, 3600 * 1000), CF_OK, "tus: create");
    CHECK(t.offset == 0 && t.expires_at == t.created_at + 3600 * 1000, "tus: offset 0, expiry = creation + ttl");
    size_t count;
    uint64_t bytes;
    CHECK(cf_tus_usage(s, T, &f->alice.id, cf_now_ms(), &count, &bytes) == CF_OK && count == 1 && bytes == size,
          "tus: usage counts the unfinished upload");

    /* Pieces that start and end inside chunks. */
    static const size_t cuts[] = {0, 1000, CF_CHUNK_SIZE + 3, 2 * CF_CHUNK_SIZE + 1};
    for (size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i++) {
        CHECK_INT(cf_tus_append(s, &t, data + cuts[i], cuts[i + 1] - cuts[i], 3600 * 1000), CF_OK, "tus: append %zu..%zu",
                  cuts[i], cuts[i + 1]);
        struct cf_tus again;
        CHECK(cf_tus_get(s, T, &t.id, &again) == CF_OK && again.offset == cuts[i + 1] && again.length == size &&
                  strcmp(again.name, "resumable.bin") == 0 && !again.completed &&
                  strcmp(again.metadata, t.metadata) == 0,
              "tus: the stored state says offset %zu", cuts[i + 1]);
        cf_tus_clear(&again);
    }
    CHECK_INT(cf_tus_append(s, &t, data, size, 1000), CF_EINVAL, "tus: a body past the length is refused");

    /* The tail is sealed and bound to its offset: an altered or stale tail is refused. */
    uint8_t tk[33];
    memcpy(tk, T->b, 16);
    tk[16] = 't';
    memcpy(tk + 17, t.id.b, 16);
    size_t vl;
    char *tail = raw_get(s, CF_CF_UPLOADS, tk, sizeof tk, &vl);
    CHECK(tail != NULL && vl == 1 + 1 + CF_SEAL_OVERHEAD, "tus: the tail holds the one byte past the last chunk");
    if (tail != NULL) {
        tail[vl - 1] ^= 1;
        raw_put(s, CF_CF_UPLOADS, tk, sizeof tk, tail, vl);
        struct cf_tus cur;
        if (cf_tus_get(s, T, &t.id, &cur) == CF_OK) {
            CHECK_INT(cf_tus_append(s, &cur, data + cuts[3], 10, 1000), CF_ECORRUPT, "tus: an altered tail is refused");
            cf_tus_clear(&cur);
        }
        tail[vl - 1] ^= 1;
        raw_put(s, CF_CF_UPLOADS, tk, sizeof tk, tail, vl);
        cf_eng_free(tail);
    }

    /* The last piece writes the chunks but leaves the state (the commit decides). */
    CHECK_INT(cf_tus_append(s, &t, data + cuts[3], size - cuts[3], 3600 * 1000), CF_OK, "tus: the completing piece");
    struct cf_tus st8;
    CHECK(cf_tus_get(s, T, &t.id, &st8) == CF_OK && st8.offset == cuts[3], "tus: completing leaves the stored offset");
    cf_tus_clear(&st8);
    CHECK_INT(count_chunks(s, T, &t.id), nchunks(size), "tus: every chunk written");
    struct cf_upload *u;
    CHECK_INT(cf_tus_writer(s, &t, &u), CF_OK, "tus: writer for the completed content");
    struct cf_commit c;
    memset(&c, 0, sizeof c);
    c.parent = t.parent;
    c.name = t.name;
    c.name_len = strlen(t.name);
    c.uploader = t.owner;
    c.size = size;
    cf_sha256(data, size, c.sha256);
    c.mime = "application/x-test";
    c.scan = &g_scan;
    c.tus = &t;
    struct cf_node node;
    CHECK_INT(cf_upload_commit(u, &c, &node), CF_OK, "tus: commit");
    cf_upload_free(u);
    CHECK(read_matches(s, T, &node.id, 0, data, size), "tus: the committed file reads back byte for byte");
    struct cf_tus done;
    CHECK(cf_tus_get(s, T, &t.id, &done) == CF_OK && done.completed && cf_id_equal(&done.node, &node.id) &&
              done.offset == size,
          "tus: the state says completed, with the node");
    cf_tus_clear(&done);
    CHECK(cf_tus_usage(s, T, &f->alice.id, cf_now_ms(), &count, &bytes) == CF_OK && count == 0,
          "tus: a completed upload no longer counts");
    CHECK_INT(count_prefix(s, CF_CF_UPLOADS, tk, sizeof tk), 0, "tus: no tail after the commit");
    uint8_t pk[32];
    cf_key2(pk, T, &t.id);
    CHECK_INT(count_prefix(s, CF_CF_PENDING, pk, sizeof pk), 0, "tus: no pending mark after the commit");
    /* Forgetting a completed upload keeps its file; expiring it too. */
    CHECK_INT(cf_tus_delete(s, T, &t.id), CF_OK, "tus: forget the completed upload");
    CHECK(read_matches(s, T, &node.id, 0, data, size), "tus: the file stays");
    struct cf_tus gone;
    CHECK_INT(cf_tus_get(s, T, &t.id, &gone), CF_ENOTFOUND, "tus: forgotten");
    cf_node_clear(&node);
    cf_tus_clear(&t);

    /* Expiry: an unfinished upload with chunks and a tail is deleted with all of them. */
    memset(&t, 0, sizeof t);
    t.tenant = *T;
    t.owner = f->alice.id;
    t.parent = f->acme.root;
    t.name = cf_xstrdup("stale.bin");
    t.length = size;
    CHECK_INT(cf_tus_create(s, &t, 1), CF_OK, "tus: create (expires in 1 ms)");
    CHECK_INT(cf_tus_append(s, &t, data, CF_CHUNK_SIZE + 5, 1), CF_OK, "tus: append to the stale upload");
    uint64_t purged = 0;
    CHECK_INT(cf_tus_expire(s, t.created_at, NULL, &purged), CF_OK, "tus: expire before the time");
    CHECK_INT(purged, 0, "tus: nothing expired yet");
    CHECK_INT(cf_tus_expire(s, cf_now_ms() + 10, NULL, &purged), CF_OK, "tus: expire after the time");
    CHECK_INT(purged, 1, "tus: one upload expired");
    CHECK_INT(cf_tus_get(s, T, &t.id, &gone), CF_ENOTFOUND, "tus: the expired upload is gone");
    CHECK_INT(count_chunks(s, T, &t.id), 0, "tus: its chunks are gone");
    memcpy(tk + 17, t.id.b, 16);
    CHECK_INT(count_prefix(s, CF_CF_UPLOADS, tk, sizeof tk), 0, "tus: its tail is gone");
    cf_key2(pk, T, &t.id);
    CHECK_INT(count_prefix(s, CF_CF_PENDING, pk, sizeof pk), 0, "tus: its pending mark is gone");
    /* Orphan collection leaves unfinished resumable uploads alone. */
    cf_tus_clear(&t);
    memset(&t, 0, sizeof t);
    t.tenant = *T;
    t.owner = f->alice.id;
    t.parent = f->acme.root;
    t.name = cf_xstrdup("kept.bin");
    t.length = 10;
    CHECK_INT(cf_tus_create(s, &t, 3600 * 1000), CF_OK, "tus: create another");
    CHECK_INT(cf_tus_append(s, &t, data, 4, 3600 * 1000), CF_OK, "tus: append 4 bytes");
    uint64_t orphans = 0;
    CHECK_INT(cf_store_collect_orphans(s, &orphans), CF_OK, "tus: orphan collection runs");
    struct cf_tus kept;
    CHECK(cf_tus_get(s, T, &t.id, &kept) == CF_OK && kept.offset == 4, "tus: orphan collection kept the upload");
    cf_tus_clear(&kept);
    CHECK_INT(cf_tus_delete(s, T, &t.id), CF_OK, "tus: terminate");
    CHECK_INT(cf_tus_get(s, T, &t.id, &gone), CF_ENOTFOUND, "tus: terminated");
    cf_tus_clear(&t);
    free(data);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void test_lifecycle(struct fx *f)
{
    struct cf_store *s = NULL, *s2 = (struct cf_store *)&s; /* sentinel: must stay untouched on failure */
    struct cf_key wrong;

    CHECK(!cf_store_is_initialised(f->dir), "no store before create");
    CHECK_INT(cf_store_open(f->dir, &g_master, &s), CF_ENOTFOUND, "open before create → CF_ENOTFOUND");
    CHECK_INT(cf_store_create(f->dir, &g_master), CF_OK, "create a store");
    CHECK(cf_store_is_initialised(f->dir), "store initialised after create");
    struct stat st;
    CHECK(stat(f->dir, &st) == 0 && (st.st_mode & 0777) == 0700, "store directory created 0700");
    CHECK_INT(cf_store_create(f->dir, &g_master), CF_EEXIST, "create again → CF_EEXIST");

    cf_key_random(&wrong);
    CHECK_INT(cf_store_open(f->dir, &wrong, &s2), CF_ECRYPTO, "open with a wrong master key → CF_ECRYPTO");
    CHECK(s2 == (struct cf_store *)&s, "failed open leaves *out alone");
    wrong = g_master;
    wrong.k[0] ^= 1;
    CHECK_INT(cf_store_open(f->dir, &wrong, &s2), CF_ECRYPTO, "open with a one-bit-off master key → CF_ECRYPTO");
    cf_key_wipe(&wrong);

    CHECK_INT(cf_store_open(f->dir, &g_master, &s), CF_OK, "open with the right master key");
    if (getenv("COFFER_PG_CONNINFO") == NULL) {
        /* A second open of the same directory in the same process: RocksDB refuses to take its LOCK
         * file again ("lock hold by current process"), which the store reports as busy. */
        CHECK_INT(cf_store_open(f->dir, &g_master, &s2), CF_EBUSY, "second open in the same process → CF_EBUSY");
        CHECK(s2 == (struct cf_store *)&s, "busy open leaves *out alone");
    } else {
        /* PostgreSQL: several writers per database (cluster mode): a second open works. */
        CHECK_INT(cf_store_open(f->dir, &g_master, &s2), CF_OK, "pg: a second read-write open works (several writers)");
        if (s2 != (struct cf_store *)&s)
            cf_store_close(s2);
    }
    CHECK_INT(cf_store_create(f->dir, &g_master), CF_EEXIST, "create while open → CF_EEXIST");
    cf_store_close(NULL); /* ignored */
    f->s = s;
}

/* ---- tenants -------------------------------------------------------------------------------- */

static void test_tenants(struct fx *f)
{
    struct cf_store *s = f->s;
    struct cf_tenant t, dup;
    struct cf_id id;
    char name63[64], name64[65];

    CHECK_INT(cf_tenant_create(s, "acme", &f->acme), CF_OK, "create tenant acme");
    CHECK_STR(f->acme.name, "acme", "tenant name kept");
    CHECK(!cf_id_is_zero(&f->acme.id) && !cf_id_is_zero(&f->acme.root), "tenant id and root assigned");
    CHECK(f->acme.created_at > 1600000000000ull, "tenant created_at set");
    CHECK_INT(cf_tenant_create(s, "beta", &f->beta), CF_OK, "create tenant beta");
    CHECK(!cf_id_equal(&f->acme.id, &f->beta.id), "tenant ids differ");
    memset(&dup, 0, sizeof dup);
    CHECK_INT(cf_tenant_create(s, "acme", &dup), CF_EEXIST, "duplicate tenant name → CF_EEXIST");

    static const char *const invalid[] = {"", "-acme", "Acme", "ACME", "ac me", "ac_me", "acme!", "acm\xc3\xa9", "a.b"};
    int bad = 0;
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        memset(&t, 0, sizeof t);
        if (cf_tenant_create(s, invalid[i], &t) != CF_EINVAL) {
            bad++;
            printf("# tenant name \"%s\" was not rejected\n", invalid[i]);
        }
    }
    memset(name64, 'a', 64);
    name64[64] = '\0';
    memset(&t, 0, sizeof t);
    if (cf_tenant_create(s, name64, &t) != CF_EINVAL)
        bad++;
    CHECK_INT(bad, 0, "invalid tenant names (empty, leading '-', upper case, space, '_', '!', non-ASCII, '.', 64 chars) → CF_EINVAL");
    CHECK(cf_tenant_valid_name("a-", 2) && cf_tenant_valid_name("0", 1), "\"a-\" and \"0\" are valid tenant names");
    CHECK(!cf_tenant_valid_name("acme", 0), "zero-length tenant name invalid");

    memset(name63, 'z', 63);
    name63[63] = '\0';
    struct cf_tenant longt;
    CHECK_INT(cf_tenant_create(s, name63, &longt), CF_OK, "63-character tenant name accepted");

    memset(&id, 0, sizeof id);
    CHECK_INT(cf_tenant_find(s, "acme", 4, &id), CF_OK, "find acme");
    CHECK(cf_id_equal(&id, &f->acme.id), "find acme gives its id");
    memset(&id, 0, sizeof id);
    CHECK_INT(cf_tenant_find(s, "ACME", 4, &id), CF_OK, "find ACME (case-insensitive)");
    CHECK(cf_id_equal(&id, &f->acme.id), "find ACME gives acme's id");
    memset(&id, 0, sizeof id);
    CHECK_INT(cf_tenant_find(s, "BeTa", 4, &id), CF_OK, "find BeTa (case-insensitive)");
    CHECK(cf_id_equal(&id, &f->beta.id), "find BeTa gives beta's id");
    memset(&id, 0, sizeof id);
    CHECK_INT(cf_tenant_find(s, "acmebeta", 4, &id), CF_OK, "find uses exactly n bytes");
    CHECK(cf_id_equal(&id, &f->acme.id), "find(\"acmebeta\", 4) is acme");
    CHECK_INT(cf_tenant_find(s, "nope", 4, &id), CF_ENOTFOUND, "unknown tenant → CF_ENOTFOUND");
    CHECK_INT(cf_tenant_find(s, "", 0, &id), CF_ENOTFOUND, "empty tenant name → CF_ENOTFOUND");
    CHECK_INT(cf_tenant_find(s, "ac me", 5, &id), CF_ENOTFOUND, "invalid tenant name → CF_ENOTFOUND");
    CHECK_INT(cf_tenant_find(s, "acm", 3, &id), CF_ENOTFOUND, "prefix of a name → CF_ENOTFOUND");

    CHECK_INT(cf_tenant_get(s, &f->acme.id, &t), CF_OK, "get acme");
    CHECK_STR(t.name, "acme", "get: name");
    CHECK(cf_id_equal(&t.id, &f->acme.id) && cf_id_equal(&t.root, &f->acme.root), "get: id and root");
    CHECK(t.created_at == f->acme.created_at, "get: created_at");
    cf_tenant_clear(&t);
    struct cf_id unknown;
    cf_id_new(&unknown);
    CHECK_INT(cf_tenant_get(s, &unknown, &t), CF_ENOTFOUND, "get unknown tenant → CF_ENOTFOUND");

    struct cf_tenant *list = NULL;
    size_t n = 0;
    CHECK_INT(cf_tenant_list(s, &list, &n), CF_OK, "list tenants");
    CHECK_INT(n, 3, "three tenants listed");
    int acme_seen = 0, beta_seen = 0, long_seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (cf_id_equal(&list[i].id, &f->acme.id) && strcmp(list[i].name, "acme") == 0 &&
            cf_id_equal(&list[i].root, &f->acme.root))
            acme_seen++;
        if (cf_id_equal(&list[i].id, &f->beta.id) && strcmp(list[i].name, "beta") == 0)
            beta_seen++;
        if (cf_id_equal(&list[i].id, &longt.id) && strcmp(list[i].name, name63) == 0)
            long_seen++;
        cf_tenant_clear(&list[i]);
    }
    free(list);
    CHECK(acme_seen == 1 && beta_seen == 1 && long_seen == 1, "each tenant listed exactly once with its name");
    cf_tenant_clear(&longt);

    struct cf_node root;
    CHECK_INT(cf_node_get(s, &f->acme.id, &f->acme.root, &root), CF_OK, "tenant root node exists");
    CHECK(root.type == CF_NODE_FOLDER && root.root_kind == CF_SPACE_TENANT, "tenant root is a tenant-space folder");
    CHECK(cf_id_is_zero(&root.parent) && cf_id_is_zero(&root.owner) && strcmp(root.name, "") == 0,
          "tenant root has no parent, no owner, empty name");
    cf_node_clear(&root);
    CHECK_INT(cf_node_get(s, &f->beta.id, &f->acme.root, &root), CF_ENOTFOUND,
              "acme's root is not visible through tenant beta");
}

/* ---- users ---------------------------------------------------------------------------------- */

static void test_users(struct fx *f)
{
    struct cf_store *s = f->s;
    struct cf_user *a = &f->alice, b, got, tmp;
    struct cf_id id;

    memset(a, 0, sizeof *a);
    a->tenant = f->acme.id;
    a->username = cf_xstrdup("Alice.Smith@example.com");
    a->display_name = cf_xstrdup("Alice");
    a->role = CF_ROLE_ADMIN;
    a->status = CF_USER_ACTIVE;
    a->pwhash = cf_xstrdup("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g");
    CHECK_INT(cf_user_create(s, a), CF_OK, "create user Alice.Smith@example.com");
    CHECK(!cf_id_is_zero(&a->id) && !cf_id_is_zero(&a->private_root), "user id and private root assigned");
    CHECK(a->created_at > 1600000000000ull && a->updated_at == a->created_at, "user timestamps set");

    memset(&b, 0, sizeof b);
    b.tenant = f->acme.id;
    b.username = cf_xstrdup("ALICE.SMITH@EXAMPLE.COM");
    CHECK_INT(cf_user_create(s, &b), CF_EEXIST, "same username in other case → CF_EEXIST");
    free(b.username);
    b.username = cf_xstrdup("alice.smith@example.com");
    CHECK_INT(cf_user_create(s, &b), CF_EEXIST, "same username lower case → CF_EEXIST");
    cf_user_clear(&b);

    static const char *const invalid[] = {"", "al ice", "al/ice", "al:ice", "\xc3\xa1lice", "alice!"};
    int bad = 0;
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        memset(&tmp, 0, sizeof tmp);
        tmp.tenant = f->acme.id;
        tmp.username = (char *)invalid[i];
        if (cf_user_create(s, &tmp) != CF_EINVAL)
            bad++;
    }
    char n65[66];
    memset(n65, 'u', 65);
    n65[65] = '\0';
    memset(&tmp, 0, sizeof tmp);
    tmp.tenant = f->acme.id;
    tmp.username = n65;
    if (cf_user_create(s, &tmp) != CF_EINVAL)
        bad++;
    memset(&tmp, 0, sizeof tmp);
    tmp.tenant = f->acme.id;
    if (cf_user_create(s, &tmp) != CF_EINVAL) /* NULL username */
        bad++;
    CHECK_INT(bad, 0, "invalid usernames (empty, space, '/', ':', non-ASCII, '!', 65 chars, NULL) → CF_EINVAL");
    CHECK(cf_user_valid_name(n65, 64), "64-character username valid");

    memset(&tmp, 0, sizeof tmp);
    cf_id_new(&tmp.tenant);
    tmp.username = (char *)"nobody";
    CHECK_INT(cf_user_create(s, &tmp), CF_ENOTFOUND, "user in an unknown tenant → CF_ENOTFOUND");

    memset(&id, 0, sizeof id);
    CHECK_INT(cf_user_find(s, &f->acme.id, "alice.smith@EXAMPLE.com", 23, &id), CF_OK,
              "find user case-insensitively");
    CHECK(cf_id_equal(&id, &a->id), "find gives alice's id");
    CHECK_INT(cf_user_find(s, &f->beta.id, "Alice.Smith@example.com", 23, &id), CF_ENOTFOUND,
              "alice is not found in tenant beta");
    CHECK_INT(cf_user_find(s, &f->acme.id, "bob", 3, &id), CF_ENOTFOUND, "unknown user → CF_ENOTFOUND");
    CHECK_INT(cf_user_find(s, &f->acme.id, "a b", 3, &id), CF_ENOTFOUND, "invalid username → CF_ENOTFOUND");

    /* The same username in another tenant is a different user. */
    memset(&b, 0, sizeof b);
    b.tenant = f->beta.id;
    b.username = cf_xstrdup("Alice.Smith@example.com");
    CHECK_INT(cf_user_create(s, &b), CF_OK, "same username in tenant beta is allowed");
    CHECK(!cf_id_equal(&b.id, &a->id), "and is another user");
    cf_user_clear(&b);

    CHECK_INT(cf_user_get(s, &f->acme.id, &a->id, &got), CF_OK, "get alice");
    CHECK_STR(got.username, "Alice.Smith@example.com", "get: username keeps its spelling");
    CHECK_STR(got.display_name, "Alice", "get: display name");
    CHECK_STR(got.pwhash, a->pwhash, "get: password hash");
    CHECK(got.role == CF_ROLE_ADMIN && got.status == CF_USER_ACTIVE, "get: role and status");
    CHECK(cf_id_equal(&got.private_root, &a->private_root) && cf_id_equal(&got.tenant, &f->acme.id) &&
              cf_id_equal(&got.id, &a->id),
          "get: ids");
    CHECK(got.created_at == a->created_at && got.updated_at == a->updated_at, "get: timestamps");
    cf_user_clear(&got);
    CHECK_INT(cf_user_get(s, &f->beta.id, &a->id, &got), CF_ENOTFOUND, "alice is not visible through beta");
    cf_id_new(&id);
    CHECK_INT(cf_user_get(s, &f->acme.id, &id, &got), CF_ENOTFOUND, "get unknown user → CF_ENOTFOUND");

    struct cf_node root;
    CHECK_INT(cf_node_get(s, &f->acme.id, &a->private_root, &root), CF_OK, "private root exists");
    CHECK(root.type == CF_NODE_FOLDER && root.root_kind == CF_SPACE_PRIVATE && cf_id_equal(&root.owner, &a->id) &&
              cf_id_is_zero(&root.parent),
          "private root is a private-space folder owned by alice");
    cf_node_clear(&root);

    /* put: role, status, names, hash. */
    free(a->display_name);
    a->display_name = cf_xstrdup("Alice S.");
    a->role = CF_ROLE_AUDITOR;
    a->status = CF_USER_FROZEN;
    a->updated_at = a->created_at + 5;
    free(a->pwhash);
    a->pwhash = cf_xstrdup("$argon2id$v=19$m=65536,t=3,p=4$bmV3c2FsdA$bmV3aGFzaA");
    CHECK_INT(cf_user_put(s, a), CF_OK, "put alice");
    CHECK_INT(cf_user_get(s, &f->acme.id, &a->id, &got), CF_OK, "get alice after put");
    CHECK_STR(got.display_name, "Alice S.", "put: display name changed");
    CHECK_STR(got.pwhash, a->pwhash, "put: password hash changed");
    CHECK(got.role == CF_ROLE_AUDITOR && got.status == CF_USER_FROZEN, "put: role and status changed");
    CHECK(got.updated_at == a->created_at + 5, "put: updated_at stored");
    cf_user_clear(&got);
    /* Back to an active admin for the tests that follow; NULL display name is allowed. */
    free(a->display_name);
    a->display_name = NULL;
    a->role = CF_ROLE_ADMIN;
    a->status = CF_USER_ACTIVE;
    CHECK_INT(cf_user_put(s, a), CF_OK, "put alice again");
    CHECK_INT(cf_user_get(s, &f->acme.id, &a->id, &got), CF_OK, "get alice again");
    CHECK(got.display_name == NULL && got.role == CF_ROLE_ADMIN, "NULL display name round trips");
    cf_user_clear(&got);
    memset(&id, 0, sizeof id);
    CHECK_INT(cf_user_find(s, &f->acme.id, "ALICE.SMITH@example.com", 23, &id), CF_OK, "find still works after put");
    CHECK(cf_id_equal(&id, &a->id), "find after put gives alice");
}

/* ---- sessions ------------------------------------------------------------------------------- */

static void test_sessions(struct fx *f)
{
    struct cf_store *s = f->s;
    struct cf_session ss, got;
    memset(&ss, 0, sizeof ss);
    cf_random(ss.hash, sizeof ss.hash);
    cf_random(ss.csrf_hash, sizeof ss.csrf_hash);
    cf_id_new(&ss.id);
    ss.tenant = f->acme.id;
    ss.user = f->alice.id;
    ss.created_at = 1700000000000ull;
    ss.expires_at = 1700000000000ull + 3600000;
    ss.ip = (char *)"192.0.2.17";
    ss.user_agent = (char *)"TestAgent/1.0 (unit)";

    CHECK_INT(cf_session_get(s, ss.hash, &got), CF_ENOTFOUND, "no session before put");
    CHECK_INT(cf_session_put(s, &ss), CF_OK, "put session");
    CHECK_INT(cf_session_get(s, ss.hash, &got), CF_OK, "get session");
    CHECK(memcmp(got.hash, ss.hash, 32) == 0 && memcmp(got.csrf_hash, ss.csrf_hash, 32) == 0, "get: hashes");
    CHECK(cf_id_equal(&got.tenant, &ss.tenant) && cf_id_equal(&got.user, &ss.user), "get: tenant and user");
    CHECK(got.created_at == ss.created_at && got.expires_at == ss.expires_at, "get: times");
    CHECK_STR(got.ip, "192.0.2.17", "get: ip");
    CHECK_STR(got.user_agent, "TestAgent/1.0 (unit)", "get: user agent");
    cf_session_clear(&got);

    /* Overwrite with new expiry and no ip/ua. */
    ss.expires_at += 1000;
    ss.ip = NULL;
    ss.user_agent = NULL;
    CHECK_INT(cf_session_put(s, &ss), CF_OK, "put session again");
    CHECK_INT(cf_session_get(s, ss.hash, &got), CF_OK, "get rewritten session");
    CHECK(got.expires_at == ss.expires_at && got.ip == NULL && got.user_agent == NULL, "rewritten session fields");
    cf_session_clear(&got);

    /* The per-user index: list, delete by id, delete all but one. */
    struct cf_session s2 = ss, s3 = ss, *list;
    size_t nl;
    cf_random(s2.hash, sizeof s2.hash);
    cf_id_new(&s2.id);
    cf_random(s3.hash, sizeof s3.hash);
    cf_id_new(&s3.id);
    s3.flags = CF_SESSION_API_TOKEN;
    s3.name = (char *)"ci token";
    CHECK_INT(cf_session_put(s, &s2), CF_OK, "put a second session");
    CHECK_INT(cf_session_put(s, &s3), CF_OK, "put an API token");
    CHECK_INT(cf_session_list(s, &f->acme.id, &f->alice.id, &list, &nl), CF_OK, "list sessions");
    CHECK_INT(nl, 3, "three sessions listed");
    bool saw_token = false;
    for (size_t i = 0; i < nl; i++) {
        if (cf_id_equal(&list[i].id, &s3.id))
            saw_token = list[i].flags == CF_SESSION_API_TOKEN && list[i].name != NULL && strcmp(list[i].name, "ci token") == 0;
        cf_session_clear(&list[i]);
    }
    free(list);
    CHECK(saw_token, "the API token keeps its flags and name");
    struct cf_id someone;
    cf_id_new(&someone);
    CHECK_INT(cf_session_list(s, &f->acme.id, &someone, &list, &nl), CF_OK, "list another user's sessions");
    CHECK_INT(nl, 0, "another user has none of them");
    free(list);
    CHECK_INT(cf_session_delete_by_id(s, &f->acme.id, &someone, &s2.id), CF_ENOTFOUND,
              "another user cannot delete the session by id");
    CHECK_INT(cf_session_delete_by_id(s, &f->acme.id, &f->alice.id, &s2.id), CF_OK, "delete by id");
    CHECK_INT(cf_session_get(s, s2.hash, &got), CF_ENOTFOUND, "deleted by id → gone");
    CHECK_INT(cf_session_delete_all(s, &f->acme.id, &f->alice.id, ss.hash), CF_OK, "delete all but the current");
    CHECK_INT(cf_session_get(s, s3.hash, &got), CF_ENOTFOUND, "the token went with the others");
    CHECK_INT(cf_session_get(s, ss.hash, &got), CF_OK, "the kept session remains");
    cf_session_clear(&got);

    CHECK_INT(cf_session_delete(s, ss.hash), CF_OK, "delete session");
    CHECK_INT(cf_session_get(s, ss.hash, &got), CF_ENOTFOUND, "deleted session → CF_ENOTFOUND");
    CHECK_INT(cf_session_list(s, &f->acme.id, &f->alice.id, &list, &nl), CF_OK, "list after deletions");
    CHECK_INT(nl, 0, "the index holds nothing stale");
    free(list);
    CHECK_INT(cf_session_delete(s, ss.hash), CF_OK, "deleting again is harmless");

    struct cf_session bad = ss;
    cf_id_new(&bad.tenant);
    CHECK_INT(cf_session_put(s, &bad), CF_ENOTFOUND, "session of an unknown tenant → CF_ENOTFOUND");

    /* The tenant prefix of a session value is not sealed, but moving the record to another tenant
     * makes it open under the wrong key. */
    CHECK_INT(cf_session_put(s, &ss), CF_OK, "put session for the tamper test");
    size_t vl;
    char *v = raw_get(s, CF_CF_SESSIONS, ss.hash, 32, &vl);
    CHECK(v != NULL && vl > CF_ID_LEN && memcmp(v, f->acme.id.b, CF_ID_LEN) == 0,
          "session value starts with its tenant id");
    if (v != NULL && vl > CF_ID_LEN) {
        memcpy(v, f->beta.id.b, CF_ID_LEN);
        CHECK(raw_put(s, CF_CF_SESSIONS, ss.hash, 32, v, vl), "rewrite the session's tenant prefix");
        CHECK_INT(cf_session_get(s, ss.hash, &got), CF_ECORRUPT, "session moved to another tenant → CF_ECORRUPT");
        /* Copied under another token hash (the AAD binds the key). */
        uint8_t other[32];
        cf_random(other, sizeof other);
        memcpy(v, f->acme.id.b, CF_ID_LEN);
        CHECK(raw_put(s, CF_CF_SESSIONS, other, 32, v, vl), "copy the session to another hash");
        CHECK_INT(cf_session_get(s, other, &got), CF_ECORRUPT, "session copied to another hash → CF_ECORRUPT");
        CHECK(raw_del(s, CF_CF_SESSIONS, other, 32), "remove the copy");
    }
    free(v);
    CHECK_INT(cf_session_delete(s, ss.hash), CF_OK, "delete tampered session");
}

/* ---- folders and listing -------------------------------------------------------------------- */

static void test_folders(struct fx *f)
{
    struct cf_store *s = f->s;
    const struct cf_id *T = &f->acme.id, *root = &f->acme.root, *owner = &f->alice.id;
    struct cf_node docs, n;
    struct cf_id id, unknown;

    CHECK_INT(cf_folder_create(s, T, root, "Docs", 4, owner, &docs), CF_OK, "create folder Docs in tenant root");
    CHECK_STR(docs.name, "Docs", "folder name");
    CHECK(docs.type == CF_NODE_FOLDER && docs.root_kind == CF_SPACE_NONE && docs.trashed_at == 0,
          "folder type, not a root, live");
    CHECK(cf_id_equal(&docs.parent, root) && cf_id_equal(&docs.owner, owner) && cf_id_equal(&docs.tenant, T),
          "folder parent, owner, tenant");
    memset(&n, 0, sizeof n);
    CHECK_INT(cf_folder_create(s, T, root, "Docs", 4, owner, &n), CF_EEXIST, "duplicate folder name → CF_EEXIST");
    CHECK_INT(cf_node_find_child(s, T, root, "Docs", 4, &id), CF_OK, "find child Docs");
    CHECK(cf_id_equal(&id, &docs.id), "find child gives the folder id");
    CHECK_INT(cf_node_find_child(s, T, root, "Doc", 3, &id), CF_ENOTFOUND, "find missing child → CF_ENOTFOUND");
    CHECK_INT(cf_node_get(s, T, &docs.id, &n), CF_OK, "get folder");
    CHECK(strcmp(n.name, "Docs") == 0 && cf_id_equal(&n.parent, root) && n.created_at == docs.created_at,
          "get folder gives what create returned");
    cf_node_clear(&n);
    cf_id_new(&unknown);
    CHECK_INT(cf_folder_create(s, T, &unknown, "x", 1, owner, &n), CF_ENOTFOUND, "create under unknown parent");
    CHECK_INT(cf_folder_create(s, &f->beta.id, root, "x", 1, owner, &n), CF_ENOTFOUND,
              "create under acme's root through beta → CF_ENOTFOUND");
    CHECK_INT(cf_node_get(s, T, &unknown, &n), CF_ENOTFOUND, "get unknown node → CF_ENOTFOUND");

    /* Same name in different folders is fine. */
    struct cf_node sub;
    CHECK_INT(cf_folder_create(s, T, &docs.id, "Docs", 4, owner, &sub), CF_OK, "Docs inside Docs is fine");
    cf_node_clear(&sub);

    /* Pagination: five children, pages of two. */
    struct cf_node page;
    CHECK_INT(cf_folder_create(s, T, &docs.id, "page", 4, owner, &page), CF_OK, "create folder page");
    struct cf_id kids[5];
    for (int i = 0; i < 5; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "c%d", i);
        struct cf_node c;
        CHECK_INT(cf_folder_create(s, T, &page.id, nm, strlen(nm), owner, &c), CF_OK, "create child %s", nm);
        kids[i] = c.id;
        cf_node_clear(&c);
    }
    int seen[5] = {0};
    int strays = 0, pages = 0;
    size_t sizes[8] = {0};
    bool more_flags[8] = {0};
    uint8_t cursor[CF_CURSOR_LEN];
    bool has_more = true, first = true;
    while (has_more && pages < 8) {
        struct cf_node *items = NULL;
        size_t cnt = 0;
        uint8_t next[CF_CURSOR_LEN];
        enum cf_status st = cf_children_list(s, T, &page.id, first ? NULL : cursor, 2, &items, &cnt, next, &has_more);
        if (st != CF_OK) {
            CHECK_INT(st, CF_OK, "children_list page %d", pages);
            break;
        }
        sizes[pages] = cnt;
        more_flags[pages] = has_more;
        for (size_t i = 0; i < cnt; i++) {
            bool found = false;
            for (int k = 0; k < 5; k++)
                if (cf_id_equal(&items[i].id, &kids[k])) {
                    seen[k]++;
                    found = true;
                }
            if (!found)
                strays++;
        }
        free_nodes(items, cnt);
        memcpy(cursor, next, sizeof cursor);
        first = false;
        pages++;
    }
    CHECK_INT(pages, 3, "five children in pages of two take three pages");
    CHECK(sizes[0] == 2 && sizes[1] == 2 && sizes[2] == 1, "page sizes 2, 2, 1");
    CHECK(more_flags[0] && more_flags[1] && !more_flags[2], "has_more true, true, false");
    CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1 && seen[3] == 1 && seen[4] == 1 && strays == 0,
          "every child appears exactly once across the pages");

    /* The whole listing at once, and an exact-fit limit. */
    struct cf_node *items;
    size_t cnt;
    uint8_t next[CF_CURSOR_LEN];
    CHECK_INT(cf_children_list(s, T, &page.id, NULL, 100, &items, &cnt, next, &has_more), CF_OK, "list all");
    CHECK(cnt == 5 && !has_more, "list all: 5 items, no more");
    int named = 0;
    for (size_t i = 0; i < cnt; i++)
        if (items[i].name[0] == 'c' && items[i].type == CF_NODE_FOLDER && cf_id_equal(&items[i].parent, &page.id))
            named++;
    CHECK_INT(named, 5, "listed nodes carry their records");
    free_nodes(items, cnt);
    CHECK_INT(cf_children_list(s, T, &page.id, NULL, 5, &items, &cnt, next, &has_more), CF_OK, "list with limit 5");
    CHECK(cnt == 5 && !has_more, "limit equal to the count: no further page");
    free_nodes(items, cnt);
    CHECK_INT(cf_children_list(s, T, &page.id, NULL, 4, &items, &cnt, next, &has_more), CF_OK, "list with limit 4");
    CHECK(cnt == 4 && has_more, "limit one less than the count: a further page");
    free_nodes(items, cnt);
    CHECK_INT(cf_children_list(s, T, &kids[0], NULL, 10, &items, &cnt, next, &has_more), CF_OK, "list an empty folder");
    CHECK(cnt == 0 && !has_more, "empty folder: nothing");
    free_nodes(items, cnt);

    cf_node_clear(&page);
    cf_node_clear(&docs);
}

/* ---- uploads -------------------------------------------------------------------------------- */

static void test_uploads(struct fx *f)
{
    struct cf_store *s = f->s;
    const struct cf_id *T = &f->acme.id, *owner = &f->alice.id;
    struct cf_node dir;
    CHECK_INT(cf_folder_create(s, T, &f->acme.root, "sizes", 5, owner, &dir), CF_OK, "create folder sizes");

    static const size_t sizes[] = {0, 1, CF_CHUNK_SIZE - 1, CF_CHUNK_SIZE, CF_CHUNK_SIZE + 1, 3 * CF_CHUNK_SIZE + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t size = sizes[i];
        char name[64];
        snprintf(name, sizeof name, "f%zu.bin", size);
        uint8_t *data = make_data(size, (uint32_t)(i + 1));
        struct cf_node node;
        enum cf_status st = put_file(s, T, &dir.id, name, data, size, owner, &node);
        CHECK_INT(st, CF_OK, "upload %zu bytes", size);
        if (st == CF_OK) {
            uint8_t sha[32];
            cf_sha256(data, size, sha);
            CHECK(node.type == CF_NODE_FILE && node.version == 1 && node.size == size &&
                      memcmp(node.sha256, sha, 32) == 0 && strcmp(node.mime, "application/x-test") == 0 &&
                      strcmp(node.name, name) == 0 && cf_id_equal(&node.owner, owner),
                  "committed node of %zu bytes describes the upload", size);
            CHECK(read_matches(s, T, &node.id, 0, data, size), "read back %zu bytes (current version)", size);
            CHECK(read_matches(s, T, &node.id, 1, data, size), "read back %zu bytes (version 1)", size);
            struct cf_reader *r;
            if (cf_reader_open(s, T, &node.id, 0, &r) == CF_OK) {
                uint8_t *buf = cf_xmalloc(CF_CHUNK_SIZE);
                size_t len;
                CHECK_INT(cf_reader_chunk_count(r), nchunks(size), "%zu bytes: %u chunks", size, nchunks(size));
                CHECK_INT(cf_reader_chunk(r, cf_reader_chunk_count(r), buf, &len), CF_EINVAL,
                          "%zu bytes: chunk index past the end → CF_EINVAL", size);
                free(buf);
                cf_reader_free(r);
            }
            struct cf_node got;
            CHECK_INT(cf_node_get(s, T, &node.id, &got), CF_OK, "get file node");
            CHECK(got.size == size && got.version == 1 && strcmp(got.mime, "application/x-test") == 0,
                  "stored node of %zu bytes", size);
            CHECK(got.scan.result != NULL && strcmp(got.scan.result, "clean") == 0 && got.scan.detail == NULL &&
                      strcmp(got.scan.engine, "ClamAV test") == 0 && strcmp(got.scan.database, "0123abcd") == 0 &&
                      got.scan.at == 1234,
                  "stored node of %zu bytes carries its scan verdict", size);
            cf_node_clear(&got);
        }
        cf_node_clear(&node);
        free(data);
    }

    /* Reading errors. */
    struct cf_reader *r;
    struct cf_id unknown;
    cf_id_new(&unknown);
    CHECK_INT(cf_reader_open(s, T, &unknown, 0, &r), CF_ENOTFOUND, "reader on unknown file → CF_ENOTFOUND");
    CHECK_INT(cf_reader_open(s, T, &dir.id, 0, &r), CF_ENOTFOUND, "reader on a folder → CF_ENOTFOUND");
    struct cf_id fid;
    CHECK_INT(cf_node_find_child(s, T, &dir.id, "f1.bin", 6, &fid), CF_OK, "find f1.bin");
    CHECK_INT(cf_reader_open(s, T, &fid, 2, &r), CF_ENOTFOUND, "reader on a missing version → CF_ENOTFOUND");
    CHECK_INT(cf_reader_open(s, &f->beta.id, &fid, 0, &r), CF_ENOTFOUND, "reader through another tenant");
    struct cf_node n;
    CHECK_INT(cf_folder_create(s, T, &fid, "x", 1, owner, &n), CF_ENOTFOUND, "folder under a file → CF_ENOTFOUND");

    /* Upload API edges. */
    struct cf_upload *u;
    CHECK_INT(cf_upload_begin(s, &unknown, &u), CF_ENOTFOUND, "upload in unknown tenant → CF_ENOTFOUND");
    CHECK_INT(cf_upload_begin(s, T, &u), CF_OK, "begin upload");
    uint8_t *big = make_data(CF_CHUNK_SIZE + 1, 99);
    CHECK_INT(cf_upload_put_chunk(u, 0, big, CF_CHUNK_SIZE + 1, true), CF_EINVAL, "chunk over CF_CHUNK_SIZE → CF_EINVAL");
    /* Writing an index twice replaces it. */
    CHECK_INT(cf_upload_put_chunk(u, 0, big, 10, true), CF_OK, "put chunk 0");
    CHECK_INT(cf_upload_put_chunk(u, 0, big + 100, 20, true), CF_OK, "put chunk 0 again");
    /* Reading back before the commit (the scanner's path). */
    {
        uint8_t *rb = cf_xmalloc(CF_CHUNK_SIZE);
        size_t rl = 0;
        CHECK_INT(cf_upload_read_chunk(u, 20, 0, rb, &rl), CF_OK, "read back a pending chunk");
        CHECK(rl == 20 && memcmp(rb, big + 100, 20) == 0, "the pending chunk reads back as its last write");
        CHECK_INT(cf_upload_read_chunk(u, 20, 1, rb, &rl), CF_EINVAL, "pending chunk past the end → CF_EINVAL");
        CHECK_INT(cf_upload_read_chunk(u, 21, 0, rb, &rl), CF_ECORRUPT, "pending chunk read with the wrong size → CF_ECORRUPT");
        CHECK_INT(cf_upload_read_chunk(u, CF_CHUNK_SIZE + 20, 0, rb, &rl), CF_ECORRUPT,
                  "a last chunk read as a middle one → CF_ECORRUPT");
        free(rb);
    }
    struct cf_commit c;
    memset(&c, 0, sizeof c);
    c.parent = dir.id;
    c.name = "rewritten.bin";
    c.name_len = 13;
    c.uploader = *owner;
    c.size = 20;
    c.mime = "application/x-test";
    c.scan = &g_scan;
    struct cf_node node;
    c.scan = NULL;
    CHECK_INT(cf_upload_commit(u, &c, &node), CF_EINVAL, "commit without a scan verdict → CF_EINVAL");
    c.scan = &g_scan;
    CHECK_INT(cf_upload_commit(u, &c, &node), CF_OK, "commit rewritten chunk");
    {
        uint8_t rb[32];
        size_t rl;
        CHECK_INT(cf_upload_read_chunk(u, 20, 0, rb, &rl), CF_EINVAL, "read_chunk after commit → CF_EINVAL");
    }
    CHECK_INT(cf_upload_commit(u, &c, &n), CF_EINVAL, "second commit of a spent upload → CF_EINVAL");
    CHECK_INT(cf_upload_put_chunk(u, 1, big, 10, true), CF_EINVAL, "chunk after commit → CF_EINVAL");
    cf_upload_abort(u); /* no-op on a committed upload */
    cf_upload_free(u);
    CHECK(read_matches(s, T, &node.id, 0, big + 100, 20), "the second write of an index is what is read");
    cf_node_clear(&node);
    free(big);

    /* Commit into a vanished parent. */
    CHECK_INT(cf_upload_begin(s, T, &u), CF_OK, "begin upload");
    CHECK_INT(cf_upload_put_chunk(u, 0, "x", 1, true), CF_OK, "put chunk");
    c.parent = unknown;
    c.size = 1;
    CHECK_INT(cf_upload_commit(u, &c, &node), CF_ENOTFOUND, "commit into unknown parent → CF_ENOTFOUND");
    cf_upload_abort(u);
    cf_upload_free(u);
    cf_upload_free(NULL);
    cf_node_clear(&dir);
}

/* ---- conflicts ------------------------------------------------------------------------------ */

static void test_conflicts(struct fx *f)
{
    struct cf_store *s = f->s;
    const struct cf_id *T = &f->acme.id, *owner = &f->alice.id;
    struct cf_node dir, a, n;
    CHECK_INT(cf_folder_create(s, T, &f->acme.root, "conf", 4, owner, &dir), CF_OK, "create folder conf");
    uint8_t *d1 = make_data(1000, 11), *d2 = make_data(CF_CHUNK_SIZE + 77, 12), *d3 = make_data(50, 13);

    CHECK_INT(put_file(s, T, &dir.id, "a.txt", d1, 1000, owner, &a), CF_OK, "upload a.txt");
    memset(&n, 0, sizeof n);
    CHECK_INT(put_file(s, T, &dir.id, "a.txt", d2, 10, owner, &n), CF_EEXIST, "a.txt again, on_conflict fail → CF_EEXIST");

    CHECK_INT(put_file_ex(s, T, &dir.id, "a.txt", d3, 50, CF_CONFLICT_RENAME, owner, NULL, &n), CF_OK,
              "a.txt again, on_conflict rename");
    CHECK_STR(n.name, "a (1).txt", "renamed to \"a (1).txt\"");
    CHECK(!cf_id_equal(&n.id, &a.id) && n.version == 1, "renamed upload is a new file");
    CHECK(read_matches(s, T, &n.id, 0, d3, 50), "renamed file has the new content");
    cf_node_clear(&n);
    CHECK_INT(put_file_ex(s, T, &dir.id, "a.txt", d3, 50, CF_CONFLICT_RENAME, owner, NULL, &n), CF_OK,
              "a.txt a third time, rename");
    CHECK_STR(n.name, "a (2).txt", "renamed to \"a (2).txt\"");
    cf_node_clear(&n);
    CHECK(read_matches(s, T, &a.id, 0, d1, 1000), "original a.txt untouched by renames");

    struct cf_node x;
    CHECK_INT(put_file(s, T, &dir.id, "README", d3, 5, owner, &x), CF_OK, "upload README");
    cf_node_clear(&x);
    CHECK_INT(put_file_ex(s, T, &dir.id, "README", d3, 5, CF_CONFLICT_RENAME, owner, NULL, &n), CF_OK, "README again");
    CHECK_STR(n.name, "README (1)", "no extension: \"README (1)\"");
    cf_node_clear(&n);
    CHECK_INT(put_file(s, T, &dir.id, ".hidden", d3, 5, owner, &x), CF_OK, "upload .hidden");
    cf_node_clear(&x);
    CHECK_INT(put_file_ex(s, T, &dir.id, ".hidden", d3, 5, CF_CONFLICT_RENAME, owner, NULL, &n), CF_OK,
              ".hidden again");
    CHECK_STR(n.name, ".hidden (1)", "a leading dot is not an extension: \".hidden (1)\"");
    cf_node_clear(&n);
    CHECK_INT(put_file_ex(s, T, &dir.id, "fresh.txt", d3, 5, CF_CONFLICT_RENAME, owner, NULL, &n), CF_OK,
              "rename mode without a conflict");
    CHECK_STR(n.name, "fresh.txt", "no conflict: the name is kept");
    cf_node_clear(&n);

    /* Replace: version 2, same node. */
    struct may_ctx may = {0, {{0}}, true};
    CHECK_INT(put_file_ex(s, T, &dir.id, "a.txt", d2, CF_CHUNK_SIZE + 77, CF_CONFLICT_REPLACE, owner, &may, &n), CF_OK,
              "a.txt with on_conflict replace");
    CHECK(cf_id_equal(&n.id, &a.id) && n.version == 2 && n.size == CF_CHUNK_SIZE + 77, "replace gives version 2 of the same node");
    CHECK(strcmp(n.name, "a.txt") == 0 && n.created_at == a.created_at, "replace keeps name and created_at");
    CHECK(may.calls == 1 && cf_id_equal(&may.seen, &a.id), "may_replace asked once, with the existing node");
    cf_node_clear(&n);
    CHECK(read_matches(s, T, &a.id, 0, d2, CF_CHUNK_SIZE + 77), "current version has the new content");
    CHECK(read_matches(s, T, &a.id, 2, d2, CF_CHUNK_SIZE + 77), "version 2 has the new content");
    CHECK(read_matches(s, T, &a.id, 1, d1, 1000), "version 1 still readable with the old content");
    CHECK_INT(cf_node_get(s, T, &a.id, &n), CF_OK, "get a.txt");
    CHECK(n.version == 2 && n.size == CF_CHUNK_SIZE + 77, "stored node is at version 2");
    cf_node_clear(&n);

    may.answer = false;
    may.calls = 0;
    memset(&n, 0, sizeof n);
    CHECK_INT(put_file_ex(s, T, &dir.id, "a.txt", d3, 50, CF_CONFLICT_REPLACE, owner, &may, &n), CF_EDENIED,
              "may_replace false → CF_EDENIED");
    CHECK_INT(may.calls, 1, "may_replace was asked");
    CHECK_INT(cf_node_get(s, T, &a.id, &n), CF_OK, "get a.txt after denied replace");
    CHECK(n.version == 2, "denied replace leaves version 2");
    cf_node_clear(&n);
    CHECK(read_matches(s, T, &a.id, 0, d2, CF_CHUNK_SIZE + 77), "denied replace leaves the content");

    CHECK_INT(put_file_ex(s, T, &dir.id, "new.txt", d3, 50, CF_CONFLICT_REPLACE, owner, &may, &n), CF_OK,
              "replace mode without a conflict creates the file");
    CHECK(n.version == 1 && may.calls == 1, "new file at version 1, may_replace not asked");
    cf_node_clear(&n);

    struct cf_node sub;
    CHECK_INT(cf_folder_create(s, T, &dir.id, "sub", 3, owner, &sub), CF_OK, "create folder sub");
    CHECK_INT(put_file_ex(s, T, &dir.id, "sub", d3, 50, CF_CONFLICT_REPLACE, owner, NULL, &n), CF_EEXIST,
              "replace onto a folder → CF_EEXIST");
    CHECK_INT(put_file(s, T, &dir.id, "sub", d3, 50, owner, &n), CF_EEXIST, "file over a folder name → CF_EEXIST");
    cf_node_clear(&sub);

    cf_node_clear(&a);
    cf_node_clear(&dir);
    free(d1);
    free(d2);
    free(d3);
}

/* ---- move / rename -------------------------------------------------------------------------- */

static void test_moves(struct fx *f)
{
    struct cf_store *s = f->s;
    const struct cf_id *T = &f->acme.id, *owner = &f->alice.id;
    struct cf_node mv, X, Y, Z, file, h, out, n;
    struct cf_id id;
    uint8_t *d = make_data(100, 21);

    CHECK_INT(cf_folder_create(s, T, &f->acme.root, "mv", 2, owner, &mv), CF_OK, "create mv");
    CHECK_INT(cf_folder_create(s, T, &mv.id, "X", 1, owner, &X), CF_OK, "create mv/X");
    CHECK_INT(cf_folder_create(s, T, &X.id, "Y", 1, owner, &Y), CF_OK, "create mv/X/Y");
    CHECK_INT(cf_folder_create(s, T, &Y.id, "Z", 1, owner, &Z), CF_OK, "create mv/X/Y/Z");
    CHECK_INT(put_file(s, T, &mv.id, "f.txt", d, 100, owner, &file), CF_OK, "upload mv/f.txt");
    CHECK_INT(put_file(s, T, &X.id, "h.txt", d, 10, owner, &h), CF_OK, "upload mv/X/h.txt");

    memset(&out, 0, sizeof out);
    CHECK_INT(cf_node_move(s, T, &X.id, &X.id, NULL, 0, &out), CF_EINVAL, "move X into itself → CF_EINVAL");
    CHECK_INT(cf_node_move(s, T, &X.id, &Y.id, NULL, 0, &out), CF_EINVAL, "move X into its child → CF_EINVAL");
    CHECK_INT(cf_node_move(s, T, &X.id, &Z.id, NULL, 0, &out), CF_EINVAL, "move X into its grandchild → CF_EINVAL");
    CHECK_INT(cf_node_find_child(s, T, &mv.id, "X", 1, &id), CF_OK, "X still in mv");

    CHECK_INT(cf_node_move(s, T, &file.id, &X.id, NULL, 0, &out), CF_OK, "move f.txt into X");
    CHECK(cf_id_equal(&out.parent, &X.id) && strcmp(out.name, "f.txt") == 0 && cf_id_equal(&out.id, &file.id),
          "moved node has the new parent and the old name");
    cf_node_clear(&out);
    CHECK_INT(cf_node_find_child(s, T, &X.id, "f.txt", 5, &id), CF_OK, "f.txt found in X");
    CHECK(cf_id_equal(&id, &file.id), "X/f.txt is the moved file");
    CHECK_INT(cf_node_find_child(s, T, &mv.id, "f.txt", 5, &id), CF_ENOTFOUND, "f.txt gone from mv");
    CHECK(read_matches(s, T, &file.id, 0, d, 100), "moved file still readable");

    CHECK_INT(cf_node_move(s, T, &file.id, NULL, "g.txt", 5, &out), CF_OK, "rename f.txt to g.txt");
    CHECK(strcmp(out.name, "g.txt") == 0 && cf_id_equal(&out.parent, &X.id), "renamed in place");
    cf_node_clear(&out);
    CHECK_INT(cf_node_find_child(s, T, &X.id, "g.txt", 5, &id), CF_OK, "g.txt found");
    CHECK_INT(cf_node_find_child(s, T, &X.id, "f.txt", 5, &id), CF_ENOTFOUND, "f.txt name freed");
    CHECK_INT(cf_node_get(s, T, &file.id, &n), CF_OK, "get renamed node");
    CHECK(strcmp(n.name, "g.txt") == 0 && n.modified_at >= file.modified_at, "stored record renamed");
    cf_node_clear(&n);

    CHECK_INT(cf_node_move(s, T, &file.id, NULL, "h.txt", 5, &out), CF_EEXIST, "rename onto an existing name → CF_EEXIST");
    CHECK_INT(cf_node_find_child(s, T, &X.id, "g.txt", 5, &id), CF_OK, "failed rename leaves g.txt");
    CHECK_INT(cf_node_move(s, T, &h.id, &mv.id, "X", 1, &out), CF_EEXIST, "move + rename onto a folder name → CF_EEXIST");
    CHECK_INT(cf_node_move(s, T, &file.id, NULL, "g.txt", 5, &out), CF_OK, "rename to the same name is fine");
    cf_node_clear(&out);
    CHECK_INT(cf_node_find_child(s, T, &X.id, "g.txt", 5, &id), CF_OK, "g.txt still there");

    CHECK_INT(cf_node_move(s, T, &Y.id, &mv.id, "Y2", 2, &out), CF_OK, "move Y up to mv as Y2 (not a cycle)");
    cf_node_clear(&out);
    CHECK_INT(cf_node_find_child(s, T, &mv.id, "Y2", 2, &id), CF_OK, "Y2 in mv");
    CHECK_INT(cf_node_find_child(s, T, &X.id, "Y", 1, &id), CF_ENOTFOUND, "Y gone from X");
    CHECK_INT(cf_node_find_child(s, T, &Y.id, "Z", 1, &id), CF_OK, "Z moved along with Y");
    CHECK_INT(cf_node_move(s, T, &X.id, &Z.id, NULL, 0, &out), CF_OK, "X into Z is allowed now (Z is no longer below X)");
    cf_node_clear(&out);
    CHECK_INT(cf_node_move(s, T, &Y.id, &X.id, NULL, 0, &out), CF_EINVAL, "Y into X (now below Y) → CF_EINVAL");

    struct cf_id unknown;
    cf_id_new(&unknown);
    CHECK_INT(cf_node_move(s, T, &file.id, &unknown, NULL, 0, &out), CF_ENOTFOUND, "move to unknown parent → CF_ENOTFOUND");
    CHECK_INT(cf_node_move(s, T, &file.id, &h.id, NULL, 0, &out), CF_ENOTFOUND, "move into a file → CF_ENOTFOUND");
    CHECK_INT(cf_node_move(s, T, &unknown, &mv.id, NULL, 0, &out), CF_ENOTFOUND, "move unknown node → CF_ENOTFOUND");
    CHECK_INT(cf_node_move(s, T, &f->acme.root, &mv.id, NULL, 0, &out), CF_EDENIED, "move a space root → CF_EDENIED");
    CHECK_INT(cf_node_move(s, T, &f->acme.root, NULL, "r", 1, &out), CF_EDENIED, "rename a space root → CF_EDENIED");

    cf_node_clear(&mv);
    cf_node_clear(&X);
    cf_node_clear(&Y);
    cf_node_clear(&Z);
    cf_node_clear(&file);
    cf_node_clear(&h);
    free(d);
}

/* ---- trash and purge ------------------------------------------------------------------------ */

static void test_trash_purge(struct fx *f)
{
    struct cf_store *s = f->s;
    const struct cf_id *T = &f->acme.id, *owner = &f->alice.id;
    struct cf_node tr, t1, t2, n, out;
    struct cf_id id, c1, c2;
    uint8_t *d1 = make_data(CF_CHUNK_SIZE + 3, 31), *d2 = make_data(2 * CF_CHUNK_SIZE, 32);

    CHECK_INT(cf_folder_create(s, T, &f->acme.root, "tr", 2, owner, &tr), CF_OK, "create tr");
    CHECK_INT(put_file(s, T, &tr.id, "t.txt", d1, CF_CHUNK_SIZE + 3, owner, &t1), CF_OK, "upload tr/t.txt");
    CHECK_INT(put_file_ex(s, T, &tr.id, "t.txt", d2, 2 * CF_CHUNK_SIZE, CF_CONFLICT_REPLACE, owner, NULL, &n), CF_OK,
              "replace tr/t.txt (version 2)");
    cf_node_clear(&n);

    CHECK_INT(cf_node_trash(s, T, &t1.id), CF_OK, "trash t.txt");
    CHECK_INT(cf_node_find_child(s, T, &tr.id, "t.txt", 5, &id), CF_ENOTFOUND, "trashed name no longer resolves");
    CHECK_INT(cf_node_get(s, T, &t1.id, &n), CF_OK, "trashed node still returned by get");
    CHECK(n.trashed_at != 0 && n.trashed_at >= t1.created_at && strcmp(n.name, "t.txt") == 0 && n.version == 2,
          "trashed node has trashed_at set and keeps its record");
    cf_node_clear(&n);
    uint8_t tkey[32];
    cf_key2(tkey, T, &t1.id);
    CHECK_INT(count_prefix(s, CF_CF_TRASH, tkey, sizeof tkey), 1, "trash entry written");
    CHECK_INT(cf_node_trash(s, T, &t1.id), CF_ENOTFOUND, "trash twice → CF_ENOTFOUND");
    CHECK_INT(cf_node_move(s, T, &t1.id, NULL, "u.txt", 5, &out), CF_ENOTFOUND, "move a trashed node → CF_ENOTFOUND");
    CHECK_INT(cf_node_trash(s, T, &f->acme.root), CF_EDENIED,
              "trash a space root → CF_EDENIED");

    CHECK_INT(put_file(s, T, &tr.id, "t.txt", d1, 10, owner, &t2), CF_OK, "the freed name can be used again");
    CHECK(!cf_id_equal(&t2.id, &t1.id), "a new node");
    struct cf_node *items;
    size_t cnt;
    bool more;
    uint8_t next[CF_CURSOR_LEN];
    CHECK_INT(cf_children_list(s, T, &tr.id, NULL, 10, &items, &cnt, next, &more), CF_OK, "list tr");
    CHECK(cnt == 1 && cf_id_equal(&items[0].id, &t2.id), "listing shows only the live t.txt");
    free_nodes(items, cnt);

    /* A trashed folder is not a target. */
    struct cf_node bin;
    CHECK_INT(cf_folder_create(s, T, &tr.id, "bin", 3, owner, &bin), CF_OK, "create tr/bin");
    CHECK_INT(cf_node_trash(s, T, &bin.id), CF_OK, "trash tr/bin");
    CHECK_INT(cf_node_move(s, T, &t2.id, &bin.id, NULL, 0, &out), CF_ENOTFOUND, "move into a trashed folder → CF_ENOTFOUND");
    CHECK_INT(cf_folder_create(s, T, &bin.id, "x", 1, owner, &n), CF_ENOTFOUND, "create in a trashed folder → CF_ENOTFOUND");
    CHECK_INT(put_file(s, T, &bin.id, "x", d1, 1, owner, &n), CF_ENOTFOUND, "upload into a trashed folder → CF_ENOTFOUND");

    /* Purge the trashed file with its two versions. */
    CHECK_INT(content_of(s, T, &t1.id, 1, &c1), CF_OK, "content of t.txt version 1");
    CHECK_INT(content_of(s, T, &t1.id, 2, &c2), CF_OK, "content of t.txt version 2");
    CHECK(!cf_id_equal(&c1, &c2), "each version has its own content");
    CHECK_INT(count_chunks(s, T, &c1), 2, "version 1 has 2 chunks on disk");
    CHECK_INT(count_chunks(s, T, &c2), 2, "version 2 has 2 chunks on disk");
    CHECK_INT(cf_node_purge(s, T, &t1.id), CF_OK, "purge trashed t.txt");
    CHECK_INT(cf_node_get(s, T, &t1.id, &n), CF_ENOTFOUND, "purged node is gone");
    struct cf_reader *r;
    CHECK_INT(cf_reader_open(s, T, &t1.id, 1, &r), CF_ENOTFOUND, "purged version 1 is gone");
    CHECK_INT(cf_reader_open(s, T, &t1.id, 2, &r), CF_ENOTFOUND, "purged version 2 is gone");
    CHECK_INT(count_chunks(s, T, &c1), 0, "no chunk of version 1's content remains");
    CHECK_INT(count_chunks(s, T, &c2), 0, "no chunk of version 2's content remains");
    CHECK_INT(count_prefix(s, CF_CF_VERSIONS, tkey, sizeof tkey), 0, "no version record of the file remains");
    CHECK_INT(count_prefix(s, CF_CF_NODES, tkey, sizeof tkey), 0, "no node record remains");
    CHECK_INT(count_prefix(s, CF_CF_TRASH, tkey, sizeof tkey), 0, "trash entry removed");
    uint8_t pk1[32], pk2[32];
    cf_key2(pk1, T, &c1);
    cf_key2(pk2, T, &c2);
    CHECK(count_prefix(s, CF_CF_PENDING, pk1, 32) == 0 && count_prefix(s, CF_CF_PENDING, pk2, 32) == 0,
          "no pending-purge mark left behind");
    CHECK(read_matches(s, T, &t2.id, 0, d1, 10), "the other t.txt is untouched");
    CHECK_INT(cf_node_purge(s, T, &t1.id), CF_ENOTFOUND, "purge twice → CF_ENOTFOUND");

    /* Purge a live folder with a subtree. */
    struct cf_node sub, deeper, in, deep;
    struct cf_id cin, cdeep;
    CHECK_INT(cf_folder_create(s, T, &tr.id, "sub", 3, owner, &sub), CF_OK, "create tr/sub");
    CHECK_INT(cf_folder_create(s, T, &sub.id, "deeper", 6, owner, &deeper), CF_OK, "create tr/sub/deeper");
    CHECK_INT(put_file(s, T, &sub.id, "in.bin", d2, 2 * CF_CHUNK_SIZE, owner, &in), CF_OK, "upload tr/sub/in.bin");
    CHECK_INT(put_file(s, T, &deeper.id, "deep.bin", d1, 7, owner, &deep), CF_OK, "upload tr/sub/deeper/deep.bin");
    CHECK_INT(content_of(s, T, &in.id, 1, &cin), CF_OK, "content of in.bin");
    CHECK_INT(content_of(s, T, &deep.id, 1, &cdeep), CF_OK, "content of deep.bin");
    CHECK(count_chunks(s, T, &cin) == 2 && count_chunks(s, T, &cdeep) == 1, "subtree chunks on disk");
    CHECK_INT(cf_node_purge(s, T, &sub.id), CF_OK, "purge live folder tr/sub");
    int alive = 0;
    const struct cf_id *gone[] = {&sub.id, &deeper.id, &in.id, &deep.id};
    for (int i = 0; i < 4; i++)
        if (cf_node_get(s, T, gone[i], &n) != CF_ENOTFOUND) {
            alive++;
            cf_node_clear(&n);
        }
    CHECK_INT(alive, 0, "every node of the purged subtree is gone");
    CHECK(count_chunks(s, T, &cin) == 0 && count_chunks(s, T, &cdeep) == 0, "every chunk of the subtree is gone");
    CHECK_INT(cf_node_find_child(s, T, &tr.id, "sub", 3, &id), CF_ENOTFOUND, "purged folder's name is free");
    uint8_t subkey[32], deeperkey[32];
    cf_key2(subkey, T, &sub.id);
    cf_key2(deeperkey, T, &deeper.id);
    CHECK(count_prefix(s, CF_CF_CHILDREN, subkey, 32) == 0 && count_prefix(s, CF_CF_CHILDREN, deeperkey, 32) == 0,
          "no children entries left under purged folders");

    CHECK_INT(cf_node_purge(s, T, &f->acme.root), CF_EDENIED, "purge a space root → CF_EDENIED");
    CHECK_INT(cf_node_purge(s, T, &bin.id), CF_OK, "purge the trashed empty folder");

    cf_node_clear(&sub);
    cf_node_clear(&deeper);
    cf_node_clear(&in);
    cf_node_clear(&deep);
    cf_node_clear(&bin);
    cf_node_clear(&t1);
    cf_node_clear(&t2);
    cf_node_clear(&tr);
    free(d1);
    free(d2);
}

/* ---- tampering ------------------------------------------------------------------------------ */

static void test_tamper(struct fx *f)
{
    struct cf_store *s = f->s;
    const struct cf_id *T = &f->acme.id, *owner = &f->alice.id;
    struct cf_node dir, three, other, two, n;
    struct cf_id c3, co, c2;
    uint8_t k0[36], k1[36], k2[36], ko1[36];
    size_t l0 = 0, l1 = 0, l2 = 0, lo1 = 0;
    char *v0, *v1, *v2, *vo1, *tmp;
    uint8_t *d3 = make_data(3 * CF_CHUNK_SIZE, 41), *dother = make_data(3 * CF_CHUNK_SIZE, 42);
    uint8_t *d2 = make_data(2 * CF_CHUNK_SIZE, 43);
    memset(&dir, 0, sizeof dir);
    memset(&three, 0, sizeof three);
    memset(&other, 0, sizeof other);
    memset(&two, 0, sizeof two);

    CHECK_INT(cf_folder_create(s, T, &f->acme.root, "tamper", 6, owner, &dir), CF_OK, "create tamper");
    CHECK_INT(put_file(s, T, &dir.id, "three.bin", d3, 3 * CF_CHUNK_SIZE, owner, &three), CF_OK, "upload 3-chunk file");
    CHECK_INT(put_file(s, T, &dir.id, "other.bin", dother, 3 * CF_CHUNK_SIZE, owner, &other), CF_OK,
              "upload another 3-chunk file");
    CHECK_INT(content_of(s, T, &three.id, 1, &c3), CF_OK, "content of three.bin");
    CHECK_INT(content_of(s, T, &other.id, 1, &co), CF_OK, "content of other.bin");
    CHECK(read_matches(s, T, &three.id, 0, d3, 3 * CF_CHUNK_SIZE), "three.bin reads back before tampering");
    chunk_key(T, &c3, 0, k0);
    chunk_key(T, &c3, 1, k1);
    chunk_key(T, &c3, 2, k2);
    chunk_key(T, &co, 1, ko1);
    v0 = raw_get(s, CF_CF_CHUNKS, k0, 36, &l0);
    v1 = raw_get(s, CF_CF_CHUNKS, k1, 36, &l1);
    v2 = raw_get(s, CF_CF_CHUNKS, k2, 36, &l2);
    vo1 = raw_get(s, CF_CF_CHUNKS, ko1, 36, &lo1);
    CHECK(v0 && v1 && v2 && vo1, "raw chunk values found under T ‖ content ‖ index");
    if (!(v0 && v1 && v2 && vo1))
        goto out;
    CHECK(l0 == 1 + CF_CHUNK_SIZE + CF_SEAL_OVERHEAD && l1 == l0 && l2 == l0 && lo1 == l0,
          "chunk values are 0x01 ‖ nonce ‖ ct ‖ tag");
    CHECK(v0[0] == 1, "chunk format byte is 0x01");
    CHECK(memmem(v0, l0, d3, 64) == NULL, "chunk value does not contain the plaintext");

    /* (a) one flipped bit anywhere: format byte, nonce, ciphertext, tag. */
    static const size_t flips[] = {0, 1, 12, 13, 1000, 1 + CF_NONCE_LEN + CF_CHUNK_SIZE - 1,
                                   1 + CF_NONCE_LEN + CF_CHUNK_SIZE, 1 + CF_CHUNK_SIZE + CF_SEAL_OVERHEAD - 1};
    int undetected = 0;
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        v1[flips[i]] ^= 0x10;
        raw_put(s, CF_CF_CHUNKS, k1, 36, v1, l1);
        v1[flips[i]] ^= 0x10;
        if (read_chunk(s, T, &three.id, 1) != CF_ECORRUPT)
            undetected++;
    }
    CHECK_INT(undetected, 0, "(a) a flipped bit in format byte, nonce, ciphertext or tag → CF_ECORRUPT");
    CHECK(raw_put(s, CF_CF_CHUNKS, k1, 36, v1, l1), "restore chunk 1");
    CHECK_INT(read_chunk(s, T, &three.id, 1), CF_OK, "restored chunk 1 reads again");

    /* Length changes. */
    raw_put(s, CF_CF_CHUNKS, k1, 36, v1, l1 - 1);
    CHECK_INT(read_chunk(s, T, &three.id, 1), CF_ECORRUPT, "chunk value one byte short → CF_ECORRUPT");
    tmp = cf_xmalloc(l1 + 1);
    memcpy(tmp, v1, l1);
    tmp[l1] = 0;
    raw_put(s, CF_CF_CHUNKS, k1, 36, tmp, l1 + 1);
    free(tmp);
    CHECK_INT(read_chunk(s, T, &three.id, 1), CF_ECORRUPT, "chunk value one byte long → CF_ECORRUPT");
    raw_put(s, CF_CF_CHUNKS, k1, 36, "", 0);
    CHECK_INT(read_chunk(s, T, &three.id, 1), CF_ECORRUPT, "empty chunk value → CF_ECORRUPT");
    raw_put(s, CF_CF_CHUNKS, k1, 36, v1, l1);

    /* (b) swap chunks 0 and 1 (same length, so only the AAD can tell). */
    raw_put(s, CF_CF_CHUNKS, k0, 36, v1, l1);
    raw_put(s, CF_CF_CHUNKS, k1, 36, v0, l0);
    CHECK_INT(read_chunk(s, T, &three.id, 0), CF_ECORRUPT, "(b) swapped chunk 0 → CF_ECORRUPT");
    CHECK_INT(read_chunk(s, T, &three.id, 1), CF_ECORRUPT, "(b) swapped chunk 1 → CF_ECORRUPT");
    CHECK_INT(read_chunk(s, T, &three.id, 2), CF_OK, "(b) untouched chunk 2 still reads");
    /* Swap the last chunk with a middle one: the last flag and index differ. */
    raw_put(s, CF_CF_CHUNKS, k0, 36, v0, l0);
    raw_put(s, CF_CF_CHUNKS, k1, 36, v2, l2);
    raw_put(s, CF_CF_CHUNKS, k2, 36, v1, l1);
    CHECK_INT(read_chunk(s, T, &three.id, 1), CF_ECORRUPT, "(b) last chunk moved to the middle → CF_ECORRUPT");
    CHECK_INT(read_chunk(s, T, &three.id, 2), CF_ECORRUPT, "(b) middle chunk moved to the end → CF_ECORRUPT");
    raw_put(s, CF_CF_CHUNKS, k1, 36, v1, l1);
    raw_put(s, CF_CF_CHUNKS, k2, 36, v2, l2);
    CHECK(read_matches(s, T, &three.id, 0, d3, 3 * CF_CHUNK_SIZE), "three.bin reads back after restoring");

    /* (c) delete the last chunk. */
    raw_del(s, CF_CF_CHUNKS, k2, 36);
    CHECK_INT(read_chunk(s, T, &three.id, 2), CF_ECORRUPT, "(c) deleted last chunk → CF_ECORRUPT");
    CHECK(!read_matches(s, T, &three.id, 0, d3, 3 * CF_CHUNK_SIZE), "(c) the whole file no longer reads");
    raw_put(s, CF_CF_CHUNKS, k2, 36, v2, l2);
    CHECK_INT(read_chunk(s, T, &three.id, 2), CF_OK, "(c) restored last chunk reads");

    /* (e) a chunk of another file's content (same index, same length) under this key. */
    raw_put(s, CF_CF_CHUNKS, k1, 36, vo1, lo1);
    CHECK_INT(read_chunk(s, T, &three.id, 1), CF_ECORRUPT, "(e) chunk from another content → CF_ECORRUPT");
    raw_put(s, CF_CF_CHUNKS, k1, 36, v1, l1);
    CHECK_INT(read_chunk(s, T, &other.id, 1), CF_OK, "(e) the other file is unaffected");

    /* (d) truncation of a 2-chunk file: the size lives in the sealed version record. */
    CHECK_INT(put_file(s, T, &dir.id, "two.bin", d2, 2 * CF_CHUNK_SIZE, owner, &two), CF_OK, "upload 2-chunk file");
    CHECK_INT(content_of(s, T, &two.id, 1, &c2), CF_OK, "content of two.bin");
    {
        uint8_t t0[36], t1[36];
        size_t tl0, tl1;
        chunk_key(T, &c2, 0, t0);
        chunk_key(T, &c2, 1, t1);
        char *tv0 = raw_get(s, CF_CF_CHUNKS, t0, 36, &tl0), *tv1 = raw_get(s, CF_CF_CHUNKS, t1, 36, &tl1);
        CHECK(tv0 != NULL && tv1 != NULL && tl0 == tl1, "two.bin has two full chunks");
        if (tv0 != NULL && tv1 != NULL) {
            raw_del(s, CF_CF_CHUNKS, t1, 36);
            struct cf_reader *r = NULL;
            CHECK_INT(cf_reader_open(s, T, &two.id, 0, &r), CF_OK, "(d) reader opens without chunk 1");
            if (r != NULL) {
                CHECK(cf_reader_size(r) == 2 * CF_CHUNK_SIZE && cf_reader_chunk_count(r) == 2,
                      "(d) size and chunk count come from the sealed record, not from the chunks present");
                cf_reader_free(r);
            }
            CHECK_INT(read_chunk(s, T, &two.id, 0), CF_OK, "(d) chunk 0 alone still reads");
            CHECK_INT(read_chunk(s, T, &two.id, 1), CF_ECORRUPT, "(d) missing chunk 1 → CF_ECORRUPT");
            /* Pass chunk 0 off as chunk 1 (the last): same length, index and last flag differ. */
            raw_put(s, CF_CF_CHUNKS, t1, 36, tv0, tl0);
            CHECK_INT(read_chunk(s, T, &two.id, 1), CF_ECORRUPT, "(d) chunk 0 presented as the last chunk → CF_ECORRUPT");
            raw_put(s, CF_CF_CHUNKS, t1, 36, tv1, tl1);
            CHECK(read_matches(s, T, &two.id, 0, d2, 2 * CF_CHUNK_SIZE), "(d) two.bin reads after restoring");
        }
        free(tv0);
        free(tv1);
    }
    /* The last flag is in the chunk AAD: a chunk 0 sealed as "last" does not pass as a middle chunk. */
    {
        struct cf_upload *u;
        struct cf_commit c;
        CHECK_INT(cf_upload_begin(s, T, &u), CF_OK, "begin an upload whose chunk 0 claims to be last");
        CHECK_INT(cf_upload_put_chunk(u, 0, d2, CF_CHUNK_SIZE, true), CF_OK, "put chunk 0 marked last");
        CHECK_INT(cf_upload_put_chunk(u, 1, d2 + CF_CHUNK_SIZE, CF_CHUNK_SIZE, true), CF_OK, "put chunk 1 marked last");
        memset(&c, 0, sizeof c);
        c.parent = dir.id;
        c.name = "lastflag.bin";
        c.name_len = 12;
        c.uploader = *owner;
        c.size = 2 * CF_CHUNK_SIZE;
        c.mime = "application/x-test";
    c.scan = &g_scan;
        CHECK_INT(cf_upload_commit(u, &c, &n), CF_OK, "commit it as a 2-chunk file");
        cf_upload_free(u);
        CHECK_INT(read_chunk(s, T, &n.id, 0), CF_ECORRUPT, "chunk 0 sealed as last → CF_ECORRUPT as a middle chunk");
        CHECK_INT(read_chunk(s, T, &n.id, 1), CF_OK, "the real last chunk reads");
        cf_node_clear(&n);
    }

    /* (f) a flipped bit in a sealed node record. */
    uint8_t nk3[32], nko[32];
    size_t nl3, nlo;
    cf_key2(nk3, T, &three.id);
    cf_key2(nko, T, &other.id);
    char *nv3 = raw_get(s, CF_CF_NODES, nk3, 32, &nl3), *nvo = raw_get(s, CF_CF_NODES, nko, 32, &nlo);
    CHECK(nv3 != NULL && nvo != NULL, "raw node records found");
    if (nv3 != NULL && nvo != NULL) {
        CHECK(memmem(nv3, nl3, "three.bin", 9) == NULL, "node record does not contain the name in clear");
        undetected = 0;
        for (size_t i = 0; i < nl3; i += 7) {
            nv3[i] ^= 0x01;
            raw_put(s, CF_CF_NODES, nk3, 32, nv3, nl3);
            nv3[i] ^= 0x01;
            if (cf_node_get(s, T, &three.id, &n) != CF_ECORRUPT) {
                undetected++;
                cf_node_clear(&n);
            }
        }
        CHECK_INT(undetected, 0, "(f) flipped bits across the node record → CF_ECORRUPT");
        struct cf_reader *r;
        CHECK_INT(cf_reader_open(s, T, &three.id, 0, &r), CF_ECORRUPT, "(f) reader on a corrupt node → CF_ECORRUPT");
        raw_put(s, CF_CF_NODES, nk3, 32, nv3, nl3 - 1);
        CHECK_INT(cf_node_get(s, T, &three.id, &n), CF_ECORRUPT, "(f) truncated node record → CF_ECORRUPT");
        raw_put(s, CF_CF_NODES, nk3, 32, nv3, nl3);
        CHECK_INT(cf_node_get(s, T, &three.id, &n), CF_OK, "(f) restored node record reads");
        cf_node_clear(&n);

        /* (g) node A's record under node B's key. */
        raw_put(s, CF_CF_NODES, nk3, 32, nvo, nlo);
        CHECK_INT(cf_node_get(s, T, &three.id, &n), CF_ECORRUPT, "(g) another node's record under this key → CF_ECORRUPT");
        raw_put(s, CF_CF_NODES, nk3, 32, nv3, nl3);
        CHECK_INT(cf_node_get(s, T, &three.id, &n), CF_OK, "(g) restored");
        cf_node_clear(&n);
        /* The same record under the same node id in another tenant. */
        uint8_t nkb[32];
        cf_key2(nkb, &f->beta.id, &three.id);
        raw_put(s, CF_CF_NODES, nkb, 32, nv3, nl3);
        CHECK_INT(cf_node_get(s, &f->beta.id, &three.id, &n), CF_ECORRUPT,
                  "(g) a node record copied into another tenant → CF_ECORRUPT");
        raw_del(s, CF_CF_NODES, nkb, 32);
    }
    free(nv3);
    free(nvo);

    /* Version records: flipped bit, and one version's record under another version's key. */
    {
        uint8_t vk3[36], vko[36];
        size_t vl3, vlo;
        cf_key2(vk3, T, &three.id);
        cf_put_be32(vk3 + 32, 1);
        cf_key2(vko, T, &other.id);
        cf_put_be32(vko + 32, 1);
        char *vv3 = raw_get(s, CF_CF_VERSIONS, vk3, 36, &vl3), *vvo = raw_get(s, CF_CF_VERSIONS, vko, 36, &vlo);
        CHECK(vv3 != NULL && vvo != NULL, "raw version records found");
        if (vv3 != NULL && vvo != NULL) {
            struct cf_reader *r;
            vv3[vl3 / 2] ^= 0x04;
            raw_put(s, CF_CF_VERSIONS, vk3, 36, vv3, vl3);
            vv3[vl3 / 2] ^= 0x04;
            CHECK_INT(cf_reader_open(s, T, &three.id, 1, &r), CF_ECORRUPT, "flipped bit in a version record → CF_ECORRUPT");
            raw_put(s, CF_CF_VERSIONS, vk3, 36, vvo, vlo);
            CHECK_INT(cf_reader_open(s, T, &three.id, 1, &r), CF_ECORRUPT,
                      "another file's version record under this key → CF_ECORRUPT");
            raw_put(s, CF_CF_VERSIONS, vk3, 36, vv3, vl3);
            CHECK(read_matches(s, T, &three.id, 1, d3, 3 * CF_CHUNK_SIZE), "restored version record reads");
        }
        free(vv3);
        free(vvo);
    }

    /* Tenant records: acme's sealed record under beta's id. */
    {
        size_t tl, bl;
        char *tv = raw_get(s, CF_CF_TENANTS, f->acme.id.b, CF_ID_LEN, &tl);
        char *bv = raw_get(s, CF_CF_TENANTS, f->beta.id.b, CF_ID_LEN, &bl);
        CHECK(tv != NULL && bv != NULL, "raw tenant records found");
        if (tv != NULL && bv != NULL) {
            struct cf_tenant t;
            struct cf_tenant *list = NULL;
            size_t ln = 0;
            CHECK(memmem(tv, tl, "acme", 4) == NULL, "tenant record does not contain the name in clear");
            raw_put(s, CF_CF_TENANTS, f->beta.id.b, CF_ID_LEN, tv, tl);
            CHECK_INT(cf_tenant_get(s, &f->beta.id, &t), CF_ECORRUPT, "acme's tenant record under beta's id → CF_ECORRUPT");
            CHECK_INT(cf_tenant_list(s, &list, &ln), CF_ECORRUPT, "tenant list with a moved record → CF_ECORRUPT");
            raw_put(s, CF_CF_TENANTS, f->beta.id.b, CF_ID_LEN, bv, bl);
            CHECK_INT(cf_tenant_get(s, &f->beta.id, &t), CF_OK, "beta's record restored");
            CHECK_STR(t.name, "beta", "beta's name after restore");
            cf_tenant_clear(&t);
        }
        free(tv);
        free(bv);
    }

out:
    free(v0);
    free(v1);
    free(v2);
    free(vo1);
    cf_node_clear(&dir);
    cf_node_clear(&three);
    cf_node_clear(&other);
    cf_node_clear(&two);
    free(d3);
    free(dother);
    free(d2);
}


/* ---- more edges ----------------------------------------------------------------------------- */

static void test_edges(struct fx *f)
{
    struct cf_store *s = f->s;
    const struct cf_id *T = &f->acme.id, *owner = &f->alice.id;
    struct cf_node dir, n, box, inner;
    struct cf_id cin, id;
    uint8_t *d = make_data(CF_CHUNK_SIZE + 1, 71);
    CHECK_INT(cf_folder_create(s, T, &f->acme.root, "edges", 5, owner, &dir), CF_OK, "create edges");

    /* A commit whose size disagrees with the chunks never yields wrong bytes. */
    struct cf_upload *u = NULL;
    struct cf_commit c;
    memset(&c, 0, sizeof c);
    c.parent = dir.id;
    c.uploader = *owner;
    c.mime = "application/x-test";
    c.scan = &g_scan;
    CHECK_INT(cf_upload_begin(s, T, &u), CF_OK, "begin a mis-sized upload");
    CHECK_INT(cf_upload_put_chunk(u, 0, d, 10, true), CF_OK, "put a 10-byte chunk");
    c.name = "short.bin";
    c.name_len = 9;
    c.size = 5;
    CHECK_INT(cf_upload_commit(u, &c, &n), CF_OK, "commit it claiming 5 bytes");
    cf_upload_free(u);
    CHECK_INT(read_chunk(s, T, &n.id, 0), CF_ECORRUPT, "chunk longer than the committed size → CF_ECORRUPT");
    cf_node_clear(&n);
    CHECK_INT(cf_upload_begin(s, T, &u), CF_OK, "begin another mis-sized upload");
    CHECK_INT(cf_upload_put_chunk(u, 0, d, 10, true), CF_OK, "put a 10-byte chunk");
    c.name = "long.bin";
    c.name_len = 8;
    c.size = CF_CHUNK_SIZE + 1;
    CHECK_INT(cf_upload_commit(u, &c, &n), CF_OK, "commit it claiming CF_CHUNK_SIZE + 1 bytes");
    cf_upload_free(u);
    CHECK_INT(read_chunk(s, T, &n.id, 0), CF_ECORRUPT, "short middle chunk (sealed as last) → CF_ECORRUPT");
    CHECK_INT(read_chunk(s, T, &n.id, 1), CF_ECORRUPT, "chunk never written → CF_ECORRUPT");
    cf_node_clear(&n);

    /* Rename candidates that would exceed CF_NAME_MAX. */
    char longname[CF_NAME_MAX + 1];
    memset(longname, 'n', CF_NAME_MAX - 4);
    memcpy(longname + CF_NAME_MAX - 4, ".txt", 5); /* exactly 255 bytes */
    CHECK_INT(put_file(s, T, &dir.id, longname, d, 1, owner, &n), CF_OK, "upload a 255-byte name");
    cf_node_clear(&n);
    CHECK_INT(put_file_ex(s, T, &dir.id, longname, d, 1, CF_CONFLICT_RENAME, owner, NULL, &n), CF_EEXIST,
              "rename whose candidate would exceed 255 bytes → CF_EEXIST");
    char name251[CF_NAME_MAX + 1];
    memset(name251, 'm', CF_NAME_MAX - 8);
    memcpy(name251 + CF_NAME_MAX - 8, ".txt", 5); /* 251 bytes: "… (1).txt" is exactly 255 */
    CHECK_INT(put_file(s, T, &dir.id, name251, d, 1, owner, &n), CF_OK, "upload a 251-byte name");
    cf_node_clear(&n);
    CHECK_INT(put_file_ex(s, T, &dir.id, name251, d, 1, CF_CONFLICT_RENAME, owner, NULL, &n), CF_OK,
              "rename of a 251-byte name");
    CHECK_INT(strlen(n.name), CF_NAME_MAX, "candidate of exactly 255 bytes accepted");
    CHECK(strcmp(n.name + CF_NAME_MAX - 8, " (1).txt") == 0, "candidate ends in \" (1).txt\"");
    cf_node_clear(&n);

    /* Listing with a cursor past the last child. */
    struct cf_node *items;
    size_t cnt;
    bool more;
    uint8_t cur[CF_CURSOR_LEN], next[CF_CURSOR_LEN];
    memset(cur, 0xff, sizeof cur);
    CHECK_INT(cf_children_list(s, T, &dir.id, cur, 10, &items, &cnt, next, &more), CF_OK, "list after the last cursor");
    CHECK(cnt == 0 && !more, "nothing after the largest cursor");
    free_nodes(items, cnt);

    /* Trash a folder holding a file, then purge the folder: the file goes with it. */
    CHECK_INT(cf_folder_create(s, T, &dir.id, "box", 3, owner, &box), CF_OK, "create edges/box");
    CHECK_INT(put_file(s, T, &box.id, "in.bin", d, CF_CHUNK_SIZE + 1, owner, &inner), CF_OK, "upload edges/box/in.bin");
    CHECK_INT(content_of(s, T, &inner.id, 1, &cin), CF_OK, "content of in.bin");
    CHECK_INT(cf_node_trash(s, T, &box.id), CF_OK, "trash box");
    CHECK_INT(cf_node_find_child(s, T, &dir.id, "box", 3, &id), CF_ENOTFOUND, "box's name is free");
    CHECK(read_matches(s, T, &inner.id, 0, d, CF_CHUNK_SIZE + 1), "a file inside a trashed folder keeps its content");
    CHECK_INT(cf_node_purge(s, T, &box.id), CF_OK, "purge trashed box");
    CHECK_INT(cf_node_get(s, T, &inner.id, &n), CF_ENOTFOUND, "file inside the purged folder is gone");
    CHECK_INT(count_chunks(s, T, &cin), 0, "its chunks are gone");
    uint8_t tk[32];
    cf_key2(tk, T, &box.id);
    CHECK_INT(count_prefix(s, CF_CF_TRASH, tk, 32), 0, "box's trash entry is gone");
    CHECK_INT(count_prefix(s, CF_CF_CHILDREN, tk, 32), 0, "box's children entries are gone");

    cf_node_clear(&box);
    cf_node_clear(&inner);
    cf_node_clear(&dir);
    free(d);
}

/* ---- concurrency ---------------------------------------------------------------------------- */

#define RACERS 8
#define RACE_NAMES 16

struct race {
    struct cf_store *s;
    const struct cf_id *tenant, *parent, *owner;
    const uint8_t *data;
    int created, exists, other;
    int file_ok, file_exists, file_other;
};

static void *race_fn(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < RACE_NAMES; i++) {
        char nm[16];
        struct cf_node n;
        snprintf(nm, sizeof nm, "r%d", i);
        enum cf_status st = cf_folder_create(r->s, r->tenant, r->parent, nm, strlen(nm), r->owner, &n);
        if (st == CF_OK) {
            r->created++;
            cf_node_clear(&n);
        } else if (st == CF_EEXIST) {
            r->exists++;
        } else {
            r->other++;
        }
    }
    struct cf_node n;
    enum cf_status st = put_file(r->s, r->tenant, r->parent, "same.bin", r->data, 100, r->owner, &n);
    if (st == CF_OK) {
        r->file_ok++;
        cf_node_clear(&n);
    } else if (st == CF_EEXIST) {
        r->file_exists++;
    } else {
        r->file_other++;
    }
    return NULL;
}

static void test_concurrency(struct fx *f)
{
    struct cf_node dir;
    pthread_t th[RACERS];
    struct race rc[RACERS];
    uint8_t *d = make_data(100, 81);
    CHECK_INT(cf_folder_create(f->s, &f->acme.id, &f->acme.root, "race", 4, &f->alice.id, &dir), CF_OK, "create race");
    int started = 0;
    for (int i = 0; i < RACERS; i++) {
        memset(&rc[i], 0, sizeof rc[i]);
        rc[i].s = f->s;
        rc[i].tenant = &f->acme.id;
        rc[i].parent = &dir.id;
        rc[i].owner = &f->alice.id;
        rc[i].data = d;
        if (pthread_create(&th[i], NULL, race_fn, &rc[i]) == 0)
            started++;
        else
            break;
    }
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    int created = 0, exists = 0, other = 0, fok = 0, fex = 0, fother = 0;
    for (int i = 0; i < started; i++) {
        created += rc[i].created;
        exists += rc[i].exists;
        other += rc[i].other;
        fok += rc[i].file_ok;
        fex += rc[i].file_exists;
        fother += rc[i].file_other;
    }
    CHECK_INT(started, RACERS, "all racing threads started");
    CHECK_INT(created, RACE_NAMES, "each of 16 names created exactly once by 8 racing threads");
    CHECK_INT(exists, (RACERS - 1) * RACE_NAMES, "every other attempt → CF_EEXIST");
    CHECK_INT(other, 0, "no other status");
    CHECK(fok == 1 && fex == RACERS - 1 && fother == 0, "racing uploads of one name: one commit, the rest CF_EEXIST");
    struct cf_node *items;
    size_t cnt;
    bool more;
    uint8_t next[CF_CURSOR_LEN];
    CHECK_INT(cf_children_list(f->s, &f->acme.id, &dir.id, NULL, 100, &items, &cnt, next, &more), CF_OK, "list race");
    CHECK_INT(cnt, RACE_NAMES + 1, "17 children after the race");
    free_nodes(items, cnt);
    cf_node_clear(&dir);
    free(d);
}

struct keyrace {
    struct cf_store *s;
    const struct cf_id *tenant, *root;
    int ok;
};

static void *keyrace_fn(void *arg)
{
    struct keyrace *k = arg;
    struct cf_node n;
    if (cf_node_get(k->s, k->tenant, k->root, &n) == CF_OK) {
        k->ok = 1;
        cf_node_clear(&n);
    }
    return NULL;
}

/* Several threads load a tenant's keys for the first time at once (the keyring's insert race). */
static void test_keyring_race(struct fx *f)
{
    pthread_t th[RACERS];
    struct keyrace kr[RACERS];
    int started = 0, ok = 0;
    for (int i = 0; i < RACERS; i++) {
        kr[i].s = f->s;
        kr[i].tenant = &f->beta.id;
        kr[i].root = &f->beta.root;
        kr[i].ok = 0;
        if (pthread_create(&th[i], NULL, keyrace_fn, &kr[i]) != 0)
            break;
        started++;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        ok += kr[i].ok;
    }
    CHECK_INT(ok, RACERS, "8 threads loading one tenant's keys at once all succeed");
    CHECK_INT(f->s->ntk, 1, "the keyring holds one entry for the tenant (beta, after reopen)");
}

/* ---- persistence ---------------------------------------------------------------------------- */

static void test_reopen(struct fx *f)
{
    const struct cf_id *T = &f->acme.id, *owner = &f->alice.id;
    struct cf_node p;
    struct cf_id id;
    uint64_t n = 99;
    uint8_t *d = make_data(CF_CHUNK_SIZE + 9, 51);
    CHECK_INT(put_file(f->s, T, &f->acme.root, "persist.bin", d, CF_CHUNK_SIZE + 9, owner, &p), CF_OK,
              "upload persist.bin");
    CHECK_INT(cf_store_flush(f->s), CF_OK, "flush");
    cf_store_close(f->s);
    f->s = NULL;
    CHECK_INT(cf_store_open(f->dir, &g_master, &f->s), CF_OK, "reopen the store");
    if (f->s == NULL)
        goto out;
    CHECK_INT(f->s->ntk, 0, "no tenant key is loaded right after open");
    test_keyring_race(f);
    CHECK_INT(cf_tenant_find(f->s, "acme", 4, &id), CF_OK, "tenant found after reopen");
    CHECK(cf_id_equal(&id, T), "same tenant id after reopen");
    CHECK_INT(cf_user_find(f->s, T, "alice.smith@example.com", 23, &id), CF_OK, "user found after reopen");
    CHECK(read_matches(f->s, T, &p.id, 0, d, CF_CHUNK_SIZE + 9), "file reads back after reopen");
    CHECK_INT(cf_store_collect_orphans(f->s, &n), CF_OK, "collect orphans");
    CHECK_INT(n, 0, "no orphans: every failed upload was aborted, every purge finished");
    CHECK_INT(count_prefix(f->s, CF_CF_PENDING, NULL, 0), 0, "pending column family is empty");
out:
    cf_node_clear(&p);
    free(d);
}

/* ---- the blob seam (engine/blob.h) over the engine's chunks keyspace ---------------------- */

static void test_blobs(const char *base)
{
    char *dir = cf_xasprintf("%s/blobs", base);
    struct cf_store *s = NULL;
    struct blob_listing l;
    char *v = NULL;
    size_t vl = 0;
    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "blobs: create store");
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "blobs: open store");
    if (s == NULL)
        goto out;
    CHECK(cf_blobs_ordered(s->blobs), "blobs: ordered with the engine (one write-ahead log)");
    blob_contract(s->blobs, "blobs"); /* tests/unit/blob_contract.h, shared with test_blob_rados.c */
    /* The on-disk format: the chunks keyspace, the same key, the value as it was put. */
    uint8_t k4[CF_BLOB_KEY_LEN];
    blob_contract_key(2, 1, 0, k4);
    v = raw_get(s, CF_CF_CHUNKS, k4, CF_BLOB_KEY_LEN, &vl);
    CHECK(v != NULL && vl == 14 && memcmp(v, "sealed chunk 4", 14) == 0, "blobs: in chunks, key and value as is");
    cf_eng_free(v);
    CHECK_INT(count_prefix(s, CF_CF_CHUNKS, "", 0), 2, "blobs: the chunks keyspace holds just those");

    /* Tenant deletion takes the tenant's chunks with it. */
    struct cf_tenant t;
    struct cf_node f;
    struct cf_id who;
    uint64_t keys = 0;
    memset(&t, 0, sizeof t);
    memset(&f, 0, sizeof f);
    cf_id_new(&who);
    uint8_t *d = make_data(10, 7);
    CHECK_INT(cf_tenant_create(s, "blobt", &t), CF_OK, "blobs: create a tenant");
    CHECK_INT(put_file(s, &t.id, &t.root, "f.bin", d, 10, &who, &f), CF_OK, "blobs: a file");
    CHECK_INT(blob_list_count(s->blobs, t.id.b, CF_BLOB_TENANT_LEN, &l), 1, "blobs: its chunk is a blob");
    CHECK_INT(cf_tenant_delete(s, &t.id, &keys), CF_OK, "blobs: delete the tenant");
    CHECK_INT(blob_list_count(s->blobs, t.id.b, CF_BLOB_TENANT_LEN, &l), 0, "blobs: its chunks are gone");
    CHECK_INT(blob_list_count(s->blobs, NULL, 0, &l), 2, "blobs: nobody else's are");
    free(d);
    cf_node_clear(&f);
    cf_tenant_clear(&t);
out:
    cf_store_close(s);
    free(dir);
}

/* ---- orphans -------------------------------------------------------------------------------- */

static void test_orphans(const char *base)
{
    char *dir = cf_xasprintf("%s/orphans", base);
    struct cf_store *s = NULL;
    struct cf_tenant t;
    struct cf_node keep;
    struct cf_id who;
    uint64_t n = 99;
    uint8_t *d = make_data(CF_CHUNK_SIZE + 10, 61);
    memset(&t, 0, sizeof t);
    memset(&keep, 0, sizeof keep);
    cf_id_new(&who);

    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "orphans: create store");
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "orphans: open store");
    if (s == NULL)
        goto out;
    CHECK_INT(cf_tenant_create(s, "orph", &t), CF_OK, "orphans: create tenant");
    CHECK_INT(put_file(s, &t.id, &t.root, "keep.bin", d, 10, &who, &keep), CF_OK, "orphans: committed file");
    CHECK_INT(count_prefix(s, CF_CF_CHUNKS, t.id.b, CF_ID_LEN), 1, "orphans: one chunk on disk");
    CHECK_INT(count_prefix(s, CF_CF_PENDING, NULL, 0), 0, "orphans: a commit leaves no pending mark");

    struct cf_upload *u = NULL;
    CHECK_INT(cf_upload_begin(s, &t.id, &u), CF_OK, "orphans: begin an upload");
    if (u != NULL) {
        CHECK_INT(cf_upload_put_chunk(u, 0, d, CF_CHUNK_SIZE, false), CF_OK, "orphans: put chunk 0");
        CHECK_INT(cf_upload_put_chunk(u, 1, d + CF_CHUNK_SIZE, 10, true), CF_OK, "orphans: put chunk 1");
        cf_upload_free(u); /* neither committed nor aborted: the process "dies" here */
    }
    CHECK_INT(count_prefix(s, CF_CF_CHUNKS, t.id.b, CF_ID_LEN), 3, "orphans: three chunks on disk");
    CHECK_INT(count_prefix(s, CF_CF_PENDING, t.id.b, CF_ID_LEN), 1, "orphans: one pending mark");
    cf_store_close(s);
    s = NULL;

    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "orphans: reopen");
    if (s == NULL)
        goto out;
    CHECK_INT(count_prefix(s, CF_CF_CHUNKS, t.id.b, CF_ID_LEN), 3, "orphans: the chunks survived the restart");
    CHECK_INT(cf_store_collect_orphans(s, &n), CF_OK, "orphans: collect");
    CHECK_INT(n, 1, "orphans: exactly one content collected");
    CHECK_INT(count_prefix(s, CF_CF_CHUNKS, t.id.b, CF_ID_LEN), 1, "orphans: the orphan's chunks are gone");
    CHECK_INT(count_prefix(s, CF_CF_PENDING, NULL, 0), 0, "orphans: the pending mark is gone");
    CHECK(read_matches(s, &t.id, &keep.id, 0, d, 10), "orphans: the committed file is untouched");
    n = 99;
    CHECK_INT(cf_store_collect_orphans(s, &n), CF_OK, "orphans: collect again");
    CHECK_INT(n, 0, "orphans: nothing left to collect");

    /* An aborted upload removes its chunks and mark at once. */
    u = NULL;
    CHECK_INT(cf_upload_begin(s, &t.id, &u), CF_OK, "orphans: begin an upload to abort");
    if (u != NULL) {
        CHECK_INT(cf_upload_put_chunk(u, 0, d, 5, true), CF_OK, "orphans: put a chunk");
        cf_upload_abort(u);
        cf_upload_free(u);
    }
    CHECK_INT(count_prefix(s, CF_CF_CHUNKS, t.id.b, CF_ID_LEN), 1, "orphans: abort deletes the chunks");
    CHECK_INT(count_prefix(s, CF_CF_PENDING, NULL, 0), 0, "orphans: abort deletes the pending mark");

    /* A wrapped tenant key with one flipped bit: the tenant's data no longer opens (after a restart,
     * since unwrapped keys are cached), and nothing is mistaken for absent. */
    uint8_t kk[1 + CF_ID_LEN];
    size_t kl = 0;
    kk[0] = 't';
    memcpy(kk + 1, t.id.b, CF_ID_LEN);
    char *kv = raw_get(s, CF_CF_KEYS, kk, sizeof kk, &kl);
    CHECK(kv != NULL && kl == CF_KEY_LEN + CF_SEAL_OVERHEAD, "orphans: wrapped tenant key found");
    if (kv != NULL) {
        kv[kl - 1] ^= 0x01;
        raw_put(s, CF_CF_KEYS, kk, sizeof kk, kv, kl);
        kv[kl - 1] ^= 0x01;
        cf_store_close(s);
        s = NULL;
        CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "orphans: reopen with a damaged tenant key");
        if (s != NULL) {
            struct cf_node kn;
            CHECK_INT(cf_node_get(s, &t.id, &keep.id, &kn), CF_ECORRUPT, "damaged tenant key → cf_node_get CF_ECORRUPT");
            raw_put(s, CF_CF_KEYS, kk, sizeof kk, kv, kl);
            CHECK_INT(cf_node_get(s, &t.id, &keep.id, &kn), CF_OK, "restored tenant key opens again");
            cf_node_clear(&kn);
        }
        free(kv);
    }
    /* The wrapped global key: damage looks like a wrong master key. */
    if (s != NULL) {
        char *gv = raw_get(s, CF_CF_KEYS, "global", 6, &kl);
        CHECK(gv != NULL, "orphans: wrapped global key found");
        if (gv != NULL) {
            gv[CF_NONCE_LEN] ^= 0x20;
            raw_put(s, CF_CF_KEYS, "global", 6, gv, kl);
            cf_store_close(s);
            s = NULL;
            struct cf_store *s2 = NULL;
            CHECK_INT(cf_store_open(dir, &g_master, &s2), CF_ECRYPTO, "damaged global key → open CF_ECRYPTO");
            cf_store_close(s2);
            free(gv);
        }
    }
out:
    cf_store_close(s);
    cf_node_clear(&keep);
    cf_tenant_clear(&t);
    free(d);
    free(dir);
}

/* ---- no plaintext on disk ------------------------------------------------------------------- */

#define NMARKERS 9
static const char *g_markers[NMARKERS];
static size_t g_marker_len[NMARKERS];
static int g_hits[NMARKERS];
static int g_files, g_sst, g_blob, g_read_errors;

static int scan_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_F || !S_ISREG(sb->st_mode))
        return 0;
    g_files++;
    size_t pl = strlen(path);
    if (pl > 4 && strcmp(path + pl - 4, ".sst") == 0)
        g_sst++;
    if (pl > 5 && strcmp(path + pl - 5, ".blob") == 0)
        g_blob++;
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        g_read_errors++;
        return 0;
    }
    size_t cap = (size_t)sb->st_size + 1, len = 0;
    char *buf = cf_xmalloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            buf = cf_xrealloc(buf, cap);
        }
    }
    if (ferror(fp))
        g_read_errors++;
    fclose(fp);
    for (int i = 0; i < NMARKERS; i++)
        if (memmem(buf, len, g_markers[i], g_marker_len[i]) != NULL) {
            g_hits[i]++;
            printf("# marker \"%.*s\" found in %s\n", (int)g_marker_len[i], g_markers[i], path);
        }
    free(buf);
    return 0;
}

static void scan(const char *dir)
{
    g_files = g_sst = g_blob = g_read_errors = 0;
    memset(g_hits, 0, sizeof g_hits);
    nftw(dir, scan_cb, 16, FTW_PHYS);
}

static void test_no_plaintext(const char *base)
{
    static const char content_marker[] = "MARKER-7f3a-CONTENT";
    char *dir = cf_xasprintf("%s/plain", base), *ctl = cf_xasprintf("%s/control", base);
    struct cf_store *s = NULL;
    struct cf_tenant t;
    struct cf_user u;
    struct cf_node folder, big, small;
    size_t bigsize = 2 * CF_CHUNK_SIZE + 100, smallsize = 300;
    uint8_t *bigdata = cf_xmalloc(bigsize), *smalldata = cf_xmalloc(smallsize);
    memset(&t, 0, sizeof t);
    memset(&u, 0, sizeof u);
    memset(&folder, 0, sizeof folder);
    memset(&big, 0, sizeof big);
    memset(&small, 0, sizeof small);
    for (size_t i = 0; i < bigsize; i++)
        bigdata[i] = (uint8_t)content_marker[i % (sizeof content_marker - 1)];
    memcpy(smalldata, bigdata, smallsize);

    g_markers[0] = content_marker;
    g_marker_len[0] = sizeof content_marker - 1;
    g_markers[1] = (const char *)bigdata; /* the content's first 16 bytes */
    g_marker_len[1] = 16;
    g_markers[2] = "MARKER-7f3a-NAME";
    g_markers[3] = "markeruser";
    g_markers[4] = "MARKER-7f3a-FOLDER";
    g_markers[5] = "MARKER-7f3a-DISPLAY";
    g_markers[6] = "MARKER-7f3a-UA";
    g_markers[7] = "mk7f3a-tenant";
    g_markers[8] = "MARKER-7f3a";
    for (int i = 2; i < NMARKERS; i++)
        g_marker_len[i] = strlen(g_markers[i]);

    /* Control: the scanner finds a marker when there is one. */
    mkdir(ctl, 0700);
    char *ctlfile = cf_xasprintf("%s/x.txt", ctl);
    FILE *fp = fopen(ctlfile, "wb");
    if (fp != NULL) {
        fputs("prefix MARKER-7f3a-NAME and markeruser suffix", fp);
        fclose(fp);
    }
    scan(ctl);
    CHECK(g_files == 1 && g_hits[2] == 1 && g_hits[3] == 1 && g_hits[8] == 1 && g_hits[0] == 0,
          "control: the scanner finds markers planted in a file");
    free(ctlfile);

    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "plaintext: create store");
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "plaintext: open store");
    if (s == NULL)
        goto out;
    CHECK_INT(cf_tenant_create(s, "mk7f3a-tenant", &t), CF_OK, "plaintext: tenant mk7f3a-tenant");
    u.tenant = t.id;
    u.username = cf_xstrdup("markeruser");
    u.display_name = cf_xstrdup("MARKER-7f3a-DISPLAY");
    u.pwhash = cf_xstrdup("$argon2id$v=19$m=65536,t=3,p=4$MARKER-7f3a-SALT$MARKER-7f3a-HASH");
    CHECK_INT(cf_user_create(s, &u), CF_OK, "plaintext: user markeruser");
    CHECK_INT(cf_folder_create(s, &t.id, &u.private_root, "MARKER-7f3a-FOLDER", 18, &u.id, &folder), CF_OK,
              "plaintext: folder MARKER-7f3a-FOLDER");
    CHECK_INT(put_file(s, &t.id, &folder.id, "MARKER-7f3a-NAME.txt", bigdata, bigsize, &u.id, &big), CF_OK,
              "plaintext: 2 MiB file of markers (blob files)");
    CHECK_INT(put_file(s, &t.id, &t.root, "MARKER-7f3a-NAME-small.txt", smalldata, smallsize, &u.id, &small), CF_OK,
              "plaintext: 300-byte file of markers (inline values)");
    struct cf_session ss;
    memset(&ss, 0, sizeof ss);
    cf_random(ss.hash, sizeof ss.hash);
    cf_id_new(&ss.id);
    ss.tenant = t.id;
    ss.user = u.id;
    ss.ip = (char *)"MARKER-7f3a-IP";
    ss.user_agent = (char *)"MARKER-7f3a-UA";
    CHECK_INT(cf_session_put(s, &ss), CF_OK, "plaintext: session");
    /* Trash and rename too, so that old records are in the files as well. */
    struct cf_node out;
    CHECK_INT(cf_node_move(s, &t.id, &small.id, NULL, "MARKER-7f3a-NAME-renamed", 24, &out), CF_OK, "plaintext: rename");
    cf_node_clear(&out);
    CHECK(read_matches(s, &t.id, &big.id, 0, bigdata, bigsize), "plaintext: the big file reads back");
    CHECK_INT(cf_store_flush(s), CF_OK, "plaintext: flush");
    cf_store_close(s);
    s = NULL;

    scan(dir);
    CHECK(g_files >= 3 && g_read_errors == 0, "plaintext: every file under the store read (%d files)", g_files);
    CHECK(g_sst >= 1, "plaintext: the flush produced SST files (%d)", g_sst);
    CHECK(g_blob >= 1, "plaintext: the flush produced blob files (%d)", g_blob);
    for (int i = 0; i < NMARKERS; i++)
        CHECK_INT(g_hits[i], 0, "plaintext: marker %d (\"%.*s\") appears in no file", i, (int)g_marker_len[i],
                  i == 1 ? "content's first 16 bytes" : g_markers[i]);
out:
    cf_store_close(s);
    cf_tenant_clear(&t);
    cf_user_clear(&u);
    cf_node_clear(&folder);
    cf_node_clear(&big);
    cf_node_clear(&small);
    free(bigdata);
    free(smalldata);
    free(dir);
    free(ctl);
}

int main(void)
{
    char base[] = "/tmp/coffer-unit-store-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    cf_key_random(&g_master);
    struct fx f;
    memset(&f, 0, sizeof f);
    f.dir = cf_xasprintf("%s/store", base);
    /* The same model tests over the PostgreSQL engine (meson test store-pg, through tests/lib/pgtmp.sh):
     * the store of f.dir lives in that database; the ones below on their own directories stay RocksDB. */
    const char *pg = getenv("COFFER_PG_CONNINFO");
    if (pg != NULL)
        cf_store_use_postgres(f.dir, pg, NULL, 10000);

    test_lifecycle(&f);
    if (f.s != NULL) {
        test_tenants(&f);
        test_users(&f);
        test_sessions(&f);
        test_folders(&f);
        test_uploads(&f);
        test_tus(&f);
        test_conflicts(&f);
        test_moves(&f);
        test_trash_purge(&f);
        test_tamper(&f);
        test_edges(&f);
        test_concurrency(&f);
        test_reopen(&f);
    }
    cf_store_close(f.s);
    cf_tenant_clear(&f.acme);
    cf_tenant_clear(&f.beta);
    cf_user_clear(&f.alice);
    free(f.dir);
    cf_store_use_postgres(NULL, NULL, NULL, 0);

    test_orphans(base);
    test_blobs(base);
    test_no_plaintext(base);

    rm_rf(base);
    CHECK(access(base, F_OK) != 0, "temporary directory removed");
    cf_key_wipe(&g_master);
    return tap_done();
}
