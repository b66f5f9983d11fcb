/*
 * store.c: a store's life and its one way in for writes: creating, opening (the engine, the global
 * keys, the metadata journal and its anchor), flushing and closing; cf_db_write and cf_db_put, where
 * fault injection and the fail-stop flag are checked and every batch the journal covers gets its
 * journal entry (journal.c) before the engine writes it.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "journal.h"

#define STORE_FORMAT "coffer-store-v1"

static void store_free(struct cf_store *s)
{
    if (s->eng != NULL)
        cf_journal_close(s);
    if (s->blobs != NULL)
        cf_blobs_close(s->blobs);
    cf_eng_close(s->eng);
    for (size_t i = 0; i < s->ntk; i++)
        cf_free_secret(s->tk[i], sizeof *s->tk[i]);
    free(s->tk);
    cf_key_wipe(&s->kek);
    cf_key_wipe(&s->global_record);
    cf_key_wipe(&s->global_index);
    cf_key_wipe(&s->global_audit);
    cf_journal_free(s);
    cf_cache_free(s->cache);
    if (s->search_free != NULL)
        s->search_free(s);
    for (size_t i = 0; i < s->naudit_heads; i++)
        cf_key_wipe(&s->audit_heads[i].key);
    free(s->audit_heads);
    pthread_mutex_destroy(&s->ns_lock);
    pthread_mutex_destroy(&s->audit_lock);
    pthread_mutex_destroy(&s->user_lock);
    pthread_rwlock_destroy(&s->tk_lock);
    free(s->dir);
    free(s);
}

static struct cf_store *store_new(const char *dir)
{
    struct cf_store *s = cf_xcalloc(1, sizeof *s);
    s->dir = cf_xstrdup(dir);
    pthread_mutex_init(&s->ns_lock, NULL);
    pthread_mutex_init(&s->audit_lock, NULL);
    pthread_mutex_init(&s->user_lock, NULL);
    pthread_rwlock_init(&s->tk_lock, NULL);
    cf_journal_setup(s);
    s->cache = cf_cache_new(cf_store_cache_bytes);
    return s;
}

/* The keyspaces as the engine opens them: a read-only open of a store from before the journal opens
 * without the journal's two (a read-write open creates missing keyspaces; a read-only one cannot, and
 * `serve --check` or `fsck` may run before the first start of a new version: the journal then reads
 * as absent). Chunk bodies are the large values. */
static const struct cf_eng_spec store_spec = {
    .names = cf_cf_names, .n = CF_CF_COUNT, .required = CF_CF_JOURNAL, .large = CF_CF_CHUNKS};
static_assert(CF_CF_JOURNAL == CF_CF_COUNT - 2 && CF_CF_JOURNAL_KEYS == CF_CF_COUNT - 1,
              "the journal's families are the last two");

const struct cf_store_rados *cf_store_rados;

/* The chunk bodies (engine/blob.h): in a RADOS pool if cf_store_rados says so, else in the engine's
 * chunks keyspace. */
static enum cf_status blobs_open(struct cf_store *s)
{
    if (cf_store_rados == NULL || (cf_store_rados->dir != NULL && strcmp(cf_store_rados->dir, s->dir) != 0)) {
        s->blobs = cf_blobs_open_engine(s->eng, CF_CF_CHUNKS);
        return CF_OK;
    }
    const struct cf_store_rados *r = cf_store_rados;
    struct cf_rados_conf c = {r->conf, r->pool, r->user, r->keyring, r->op_timeout_s};
    char *err = NULL;
    if (cf_blobs_open_rados(&c, &s->blobs, &err) != CF_ENG_OK) {
        s->blobs = NULL;
        enum cf_status st = cf_blob_unavailable(err) ? CF_EUNAVAIL : CF_EIO;
        cf_storage_log(CF_LOG_ERROR, "storage: opening the chunk store: %s", err);
        cf_eng_free(err);
        return st;
    }
    return CF_OK;
}

/* The metadata engine is chosen at run time (docs/CLUSTER.md "PostgreSQL"): the store of pg_dir lives
 * in the PostgreSQL database pg_target names (`store: engine: cluster`); every other directory (the
 * data directory of a default configuration, a backup being restored) is a RocksDB store. */
static char *pg_dir;
static struct cf_eng_pg_target pg_target;

void cf_store_use_postgres(const char *dir, const char *conninfo, const char *password, unsigned timeout_ms)
{
    free(pg_dir);
    free((char *)pg_target.conninfo);
    if (pg_target.password != NULL)
        cf_free_secret((char *)pg_target.password, strlen(pg_target.password));
    pg_dir = dir != NULL && conninfo != NULL ? cf_xstrdup(dir) : NULL;
    pg_target = (struct cf_eng_pg_target){
        .conninfo = pg_dir != NULL ? cf_xstrdup(conninfo) : NULL,
        .password = pg_dir != NULL && password != NULL ? cf_xstrdup(password) : NULL,
        .statement_timeout_ms = timeout_ms};
}

static bool store_in_postgres(const char *dir)
{
    return pg_dir != NULL && strcmp(dir, pg_dir) == 0;
}

static int engine_open(const char *dir, unsigned flags, struct cf_eng **out, char **err)
{
    if (store_in_postgres(dir))
        return cf_eng_open_pg(&pg_target, &store_spec, flags, out, err);
    return cf_eng_open(dir, &store_spec, flags, out, err);
}

static enum cf_status db_open(struct cf_store *s, bool create, bool readonly)
{
    char *err = NULL;
    unsigned flags = (create ? CF_ENG_CREATE : 0) | (readonly ? CF_ENG_READONLY : 0);
    if (engine_open(s->dir, flags, &s->eng, &err) != CF_ENG_OK) {
        s->eng = NULL;
        return cf_db_error("open", err);
    }
    return blobs_open(s);
}

bool cf_store_is_initialised(const char *dir)
{
    if (store_in_postgres(dir)) {
        /* A store exists if the engine opens it read-only (a database that cannot be reached says
         * no: the create that follows then fails, saying why). */
        struct cf_eng *e = NULL;
        char *err = NULL;
        if (engine_open(dir, CF_ENG_READONLY, &e, &err) != CF_ENG_OK) {
            cf_eng_free(err);
            return false;
        }
        cf_eng_close(e);
        return true;
    }
    char *p = cf_xasprintf("%s/CURRENT", dir);
    bool r = access(p, F_OK) == 0;
    free(p);
    return r;
}

/* Derive the KEK from the master key, and the global subkeys from the unwrapped global key. */
static enum cf_status derive_global(struct cf_store *s, const struct cf_key *global)
{
    if (cf_hkdf(global->k, sizeof global->k, "coffer/v1/global/record", &s->global_record) != CF_OK ||
        cf_hkdf(global->k, sizeof global->k, "coffer/v1/global/tenant-name", &s->global_index) != CF_OK ||
        cf_hkdf(global->k, sizeof global->k, "coffer/v1/global/audit", &s->global_audit) != CF_OK)
        return CF_ECRYPTO;
    return cf_journal_keys(s, global);
}

static const char global_aad[] = "coffer/v1/wrap/global";

enum cf_status cf_store_create(const char *dir, const struct cf_key *master)
{
    enum cf_status st;
    struct cf_key global;
    uint8_t wrapped[CF_KEY_LEN + CF_SEAL_OVERHEAD];

    if (cf_store_is_initialised(dir))
        return CF_EEXIST;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        cf_storage_log(CF_LOG_ERROR, "cannot create %s: %s", dir, strerror(errno));
        return CF_EIO;
    }
    struct cf_store *s = store_new(dir);
    if ((st = db_open(s, true, false)) != CF_OK)
        goto err0;
    if ((st = cf_hkdf(master->k, sizeof master->k, "coffer/v1/kek", &s->kek)) != CF_OK)
        goto err0;
    cf_key_random(&global);
    if ((st = cf_aead_seal(&s->kek, global_aad, sizeof global_aad - 1, global.k, sizeof global.k, wrapped)) != CF_OK)
        goto err1;
    /* The journal starts with the store: its first entry is this batch. */
    if ((st = derive_global(s, &global)) != CF_OK)
        goto err1;
    cf_journal_create(s);
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_put(b, CF_CF_KEYS, "global", 6, (const char *)wrapped, sizeof wrapped);
    cf_batch_put(b, CF_CF_DEFAULT, "format", 6, STORE_FORMAT, sizeof STORE_FORMAT - 1);
    st = cf_db_write(s, b, true);
    cf_batch_free(b);
err1:
    cf_key_wipe(&global);
err0:
    store_free(s);
    return st;
}

static enum cf_status store_open(const char *dir, const struct cf_key *master, bool readonly, struct cf_anchor *anchor,
                                 enum cf_anchor_mode mode, struct cf_store **out)
{
    enum cf_status st;
    char *val = NULL;
    size_t vlen;
    struct cf_key global;

    if (!cf_store_is_initialised(dir)) {
        cf_anchor_close(anchor);
        return CF_ENOTFOUND;
    }
    struct cf_store *s = store_new(dir);
    if ((st = db_open(s, false, readonly)) != CF_OK)
        goto err0;
    if ((st = cf_db_get(s, CF_CF_DEFAULT, "format", 6, &val, &vlen)) != CF_OK)
        goto err0;
    if (vlen != sizeof STORE_FORMAT - 1 || memcmp(val, STORE_FORMAT, vlen) != 0) {
        cf_storage_log(CF_LOG_ERROR, "storage: %s holds an unknown format", dir);
        st = CF_ECORRUPT;
        goto err1;
    }
    free(val);
    val = NULL;
    if ((st = cf_hkdf(master->k, sizeof master->k, "coffer/v1/kek", &s->kek)) != CF_OK)
        goto err0;
    if ((st = cf_db_get(s, CF_CF_KEYS, "global", 6, &val, &vlen)) != CF_OK)
        goto err1;
    if (vlen != CF_KEY_LEN + CF_SEAL_OVERHEAD ||
        cf_aead_open(&s->kek, global_aad, sizeof global_aad - 1, (const uint8_t *)val, vlen, global.k) != CF_OK) {
        /* The master key does not open this store: say so plainly, it is the usual operator error. */
        st = CF_ECRYPTO;
        goto err1;
    }
    st = derive_global(s, &global);
    cf_key_wipe(&global);
    if (st != CF_OK)
        goto err1;
    free(val);
    val = NULL;
    /* The journal: from here the store owns the anchor. */
    st = cf_journal_open(s, readonly, anchor, mode);
    if (s->journal.anchor == anchor)
        anchor = NULL;
    if (st != CF_OK)
        goto err0;
    *out = s;
    return CF_OK;
err1:
    free(val);
err0:
    store_free(s);
    cf_anchor_close(anchor);
    return st;
}

enum cf_status cf_store_open(const char *dir, const struct cf_key *master, struct cf_store **out)
{
    return store_open(dir, master, false, NULL, CF_ANCHOR_CHECK, out);
}

enum cf_status cf_store_open_anchored(const char *dir, const struct cf_key *master, struct cf_anchor *anchor,
                                      enum cf_anchor_mode mode, struct cf_store **out)
{
    return store_open(dir, master, false, anchor, mode, out);
}

enum cf_status cf_store_open_readonly(const char *dir, const struct cf_key *master, struct cf_store **out)
{
    return store_open(dir, master, true, NULL, CF_ANCHOR_CHECK, out);
}

void cf_store_close(struct cf_store *s)
{
    if (s == NULL)
        return;
    store_free(s);
}

enum cf_status cf_store_flush(struct cf_store *s)
{
    char *err = NULL;
    if (atomic_load(&s->write_failed))
        return CF_EIO;
    if (cf_eng_flush(s->eng, &err) != CF_ENG_OK)
        return cf_db_error("flush", err);
    return CF_OK;
}

/* A write refused before RocksDB sees it: after an earlier refused write, or an injected RocksDB
 * write failure (fault builds). */
static bool db_refused(struct cf_store *s, const char *what)
{
    if (atomic_load(&s->write_failed)) {
        cf_storage_log(CF_LOG_ERROR, "storage: %s: refused, the store failed a write earlier", what);
        return true;
    }
    if (!cf_fault(CF_FAULT_DB))
        return false;
    cf_storage_log(CF_LOG_ERROR, "storage: %s: injected fault", what);
    return true;
}

/* The one way into the engine for writes: everything the journal covers goes through it. */
enum cf_status cf_db_write(struct cf_store *s, struct cf_batch *b, bool sync)
{
    if (db_refused(s, "write"))
        return CF_EIO;
    if (s->journal.on)
        return cf_journal_write(s, b, sync);
    return cf_db_write_raw(s, b, sync);
}

enum cf_status cf_db_put(struct cf_store *s, enum cf_cf cf, const void *key, size_t klen, const void *val,
                         size_t vlen, bool sync)
{
    if (db_refused(s, "put"))
        return CF_EIO;
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_put(b, cf, key, klen, val, vlen);
    enum cf_status st;
    if (s->journal.on && cf_journal_covers(cf))
        st = cf_journal_write(s, b, sync);
    else {
        /* Families outside the journal (the audit chain keeps its own). Chunks: cf_db_blob_put. */
        st = cf_db_write_raw(s, b, sync); /* which invalidates the metadata cache, as every write */
    }
    cf_batch_free(b);
    return st;
}

/* A blob store's refusal: out of reach for now (a stalled cluster past its op_timeout) is CF_EUNAVAIL,
 * answered 503, and leaves the store writable (nothing was half-written into a log of ours); anything
 * else is a failed write, fail-stop as the engine's. */
static enum cf_status blob_failed(struct cf_store *s, const char *what, char *err)
{
    if (!cf_blob_unavailable(err))
        return cf_db_write_failed(s, what, err);
    cf_storage_log(CF_LOG_ERROR, "storage: %s: %s", what, err);
    cf_eng_free(err);
    return CF_EUNAVAIL;
}

enum cf_status cf_db_blob_put(struct cf_store *s, const uint8_t *key, const void *val, size_t vlen)
{
    char *err = NULL;
    if (db_refused(s, "chunk put"))
        return CF_EIO;
    return cf_blob_put(s->blobs, key, val, vlen, &err) == CF_ENG_OK ? CF_OK : blob_failed(s, "chunk put", err);
}

enum cf_status cf_db_blob_flush(struct cf_store *s)
{
    char *err = NULL;
    return cf_blob_flush(s->blobs, &err) == CF_ENG_OK ? CF_OK : blob_failed(s, "chunk flush", err);
}

enum cf_status cf_db_blob_delete_owner(struct cf_store *s, const uint8_t *owner)
{
    char *err = NULL;
    if (db_refused(s, "chunk delete"))
        return CF_EIO;
    return cf_blob_delete_owner(s->blobs, owner, &err) == CF_ENG_OK ? CF_OK : blob_failed(s, "chunk delete", err);
}

enum cf_status cf_db_blob_delete_tenant(struct cf_store *s, const uint8_t *tenant)
{
    char *err = NULL;
    if (db_refused(s, "chunk delete"))
        return CF_EIO;
    return cf_blob_delete_tenant(s->blobs, tenant, &err) == CF_ENG_OK ? CF_OK
                                                                      : blob_failed(s, "chunk delete", err);
}
