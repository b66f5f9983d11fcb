/*
 * db.c: the RocksDB database under a store: creating and opening it with its column families,
 * tuning, raw get/put/write/iterate, and the sealed-record helpers every record type uses.
 *
 * Tuning (measured in notes/libh2o-rocksdb.md §6): values are ciphertext, so compression is off
 * everywhere; the chunks column family keeps values in integrated blob files (no value rewrite on
 * compaction), everything else is small and point-read, so it gets bloom filters and a shared block
 * cache. The WAL stays on: a synced commit makes every earlier unsynced chunk write durable with it.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "journal.h"

const char *const cf_cf_names[CF_CF_COUNT] = {
    [CF_CF_DEFAULT] = "default",   [CF_CF_KEYS] = "keys",         [CF_CF_TENANTS] = "tenants",
    [CF_CF_TENANT_NAMES] = "tenant_names", [CF_CF_USERS] = "users", [CF_CF_USER_NAMES] = "user_names",
    [CF_CF_SESSIONS] = "sessions", [CF_CF_NODES] = "nodes",       [CF_CF_CHILDREN] = "children",
    [CF_CF_VERSIONS] = "versions", [CF_CF_CHUNKS] = "chunks",     [CF_CF_PENDING] = "pending",
    [CF_CF_TRASH] = "trash",       [CF_CF_OWNED] = "owned",       [CF_CF_GROUPS] = "groups",
    [CF_CF_GROUP_NAMES] = "group_names", [CF_CF_MEMBERS] = "members", [CF_CF_MEMBERSHIPS] = "memberships",
    [CF_CF_ACL] = "acl",           [CF_CF_GRANTS] = "grants",     [CF_CF_USER_SESSIONS] = "user_sessions",
    [CF_CF_LOGINS] = "logins",     [CF_CF_DEVICES] = "devices",   [CF_CF_ALERTS] = "alerts",
    [CF_CF_SHARES] = "shares",     [CF_CF_SHARE_TOKENS] = "share_tokens", [CF_CF_NODE_SHARES] = "node_shares",
    [CF_CF_USER_SHARES] = "user_shares", [CF_CF_SHARE_ACCESS] = "share_access",
    [CF_CF_AUDIT] = "audit",       [CF_CF_AUDIT_INDEX] = "audit_index", [CF_CF_AUDIT_META] = "audit_meta",
    [CF_CF_UPLOADS] = "uploads",   [CF_CF_JOURNAL] = "journal",   [CF_CF_JOURNAL_KEYS] = "journal_keys",
};

#define STORE_FORMAT "coffer-store-v1"
#define BLOCK_CACHE_BYTES (64u << 20)
#define CHUNKS_WRITE_BUFFER (64u << 20)
#define MAX_TOTAL_WAL (256ull << 20)
#define BLOB_FILE_SIZE (256ull << 20)
#define MIN_BLOB_SIZE 4096

/* Report a RocksDB error once, here, and turn it into a status. */
static void (*write_failure_hook)(const char *what, const char *err);
static enum cf_status db_error(const char *what, char *err);

void cf_store_on_write_failure(void (*hook)(const char *what, const char *err))
{
    write_failure_hook = hook;
}

/* A write RocksDB refused: after an I/O error it keeps refusing writes until the database is
 * reopened (its background error), so the owner of the process is told (see storage.h). */
static enum cf_status db_write_error(struct cf_store *s, const char *what, char *err)
{
    atomic_store(&s->write_failed, true);
    if (write_failure_hook != NULL)
        write_failure_hook(what, err);
    return db_error(what, err);
}

static enum cf_status db_error(const char *what, char *err)
{
    enum cf_status st = CF_EIO;
    if (strstr(err, "lock file") != NULL || strstr(err, "LOCK") != NULL)
        st = CF_EBUSY;
    else if (strstr(err, "Corruption") != NULL)
        st = CF_ECORRUPT;
    if (st != CF_EBUSY)
        cf_storage_log(CF_LOG_ERROR, "storage: %s: %s", what, err);
    rocksdb_free(err);
    return st;
}

static void setup_options(struct cf_store *s, bool create)
{
    s->block_cache = rocksdb_cache_create_lru(BLOCK_CACHE_BYTES);
    s->table_opts = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(s->table_opts, s->block_cache);
    rocksdb_block_based_options_set_filter_policy(s->table_opts, rocksdb_filterpolicy_create_bloom(10));

    s->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(s->opts, create);
    rocksdb_options_set_error_if_exists(s->opts, create);
    rocksdb_options_set_create_missing_column_families(s->opts, 1);
    rocksdb_options_set_max_background_jobs(s->opts, 2);
    rocksdb_options_set_max_total_wal_size(s->opts, MAX_TOTAL_WAL);
    rocksdb_options_set_compression(s->opts, rocksdb_no_compression);
    rocksdb_options_set_paranoid_checks(s->opts, 1);
    rocksdb_options_set_keep_log_file_num(s->opts, 4);

    for (int i = 0; i < CF_CF_COUNT; i++) {
        rocksdb_options_t *o = rocksdb_options_create_copy(s->opts);
        rocksdb_options_set_block_based_table_factory(o, s->table_opts);
        if (i == CF_CF_CHUNKS) {
            rocksdb_options_set_write_buffer_size(o, CHUNKS_WRITE_BUFFER);
            rocksdb_options_set_enable_blob_files(o, 1);
            rocksdb_options_set_min_blob_size(o, MIN_BLOB_SIZE);
            rocksdb_options_set_blob_file_size(o, BLOB_FILE_SIZE);
            rocksdb_options_set_blob_compression_type(o, rocksdb_no_compression);
            rocksdb_options_set_enable_blob_gc(o, 1);
        }
        s->cf_opts[i] = o;
    }
    s->wo = rocksdb_writeoptions_create();
    s->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wo_sync, 1);
    s->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(s->ro, 1);
}

static void free_options(struct cf_store *s)
{
    for (int i = 0; i < CF_CF_COUNT; i++)
        if (s->cf_opts[i] != NULL)
            rocksdb_options_destroy(s->cf_opts[i]);
    if (s->opts != NULL)
        rocksdb_options_destroy(s->opts);
    if (s->table_opts != NULL)
        rocksdb_block_based_options_destroy(s->table_opts);
    if (s->block_cache != NULL)
        rocksdb_cache_destroy(s->block_cache);
    if (s->wo != NULL)
        rocksdb_writeoptions_destroy(s->wo);
    if (s->wo_sync != NULL)
        rocksdb_writeoptions_destroy(s->wo_sync);
    if (s->ro != NULL)
        rocksdb_readoptions_destroy(s->ro);
}

static void store_free(struct cf_store *s)
{
    if (s->db != NULL)
        cf_journal_close(s);
    for (int i = 0; i < CF_CF_COUNT; i++)
        if (s->cf[i] != NULL)
            rocksdb_column_family_handle_destroy(s->cf[i]);
    if (s->db != NULL)
        rocksdb_close(s->db);
    free_options(s);
    for (size_t i = 0; i < s->ntk; i++)
        cf_free_secret(s->tk[i], sizeof *s->tk[i]);
    free(s->tk);
    cf_key_wipe(&s->kek);
    cf_key_wipe(&s->global_record);
    cf_key_wipe(&s->global_index);
    cf_key_wipe(&s->global_audit);
    cf_journal_free(s);
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
    return s;
}

/* How many of the column families, from the first, a read-only open asks for: all of them, or all
 * but the journal's two when the store predates the journal (a read-write open creates missing
 * families; a read-only one cannot, and `serve --check` or `fsck` may run before the first start of
 * a new version: the journal then reads as absent). */
static int readonly_cf_count(struct cf_store *s)
{
    char *err = NULL;
    size_t n = 0;
    char **names = rocksdb_list_column_families(s->opts, s->dir, &n, &err);
    if (err != NULL) {
        rocksdb_free(err);
        return CF_CF_COUNT; /* the open will say what is wrong */
    }
    bool journal = false;
    for (size_t i = 0; i < n; i++)
        journal = journal || strcmp(names[i], cf_cf_names[CF_CF_JOURNAL]) == 0;
    rocksdb_list_column_families_destroy(names, n);
    static_assert(CF_CF_JOURNAL == CF_CF_COUNT - 2 && CF_CF_JOURNAL_KEYS == CF_CF_COUNT - 1,
                  "the journal's families are the last two");
    return journal ? CF_CF_COUNT : CF_CF_JOURNAL;
}

static enum cf_status db_open(struct cf_store *s, bool create, bool readonly)
{
    char *err = NULL;
    setup_options(s, create);
    if (readonly) {
        int ncf = readonly_cf_count(s);
        /* Beside a running server a compaction may delete a table file between the reading of the
         * MANIFEST and the opening of that file ("No such file or directory"; seen by crash.test.mjs).
         * The store is fine: read the new MANIFEST and try again. */
        for (int attempt = 0;; attempt++) {
            s->db = rocksdb_open_for_read_only_column_families(s->opts, s->dir, ncf, (const char *const *)cf_cf_names,
                                                               (const rocksdb_options_t *const *)s->cf_opts, s->cf,
                                                               0, &err);
            if (err == NULL || attempt == 50 || strstr(err, "No such file or directory") == NULL)
                break;
            rocksdb_free(err);
            err = NULL;
            usleep(100 * 1000);
        }
    } else
        s->db = rocksdb_open_column_families(s->opts, s->dir, CF_CF_COUNT, (const char *const *)cf_cf_names,
                                             (const rocksdb_options_t *const *)s->cf_opts, s->cf, &err);
    if (err != NULL)
        return db_error("open", err);
    return CF_OK;
}

bool cf_store_is_initialised(const char *dir)
{
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
    if ((st = derive_global(s, &global)) != CF_OK || (st = cf_journal_map_cfs(s)) != CF_OK)
        goto err1;
    cf_journal_create(s);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writebatch_put_cf(b, s->cf[CF_CF_KEYS], "global", 6, (const char *)wrapped, sizeof wrapped);
    rocksdb_writebatch_put_cf(b, s->cf[CF_CF_DEFAULT], "format", 6, STORE_FORMAT, sizeof STORE_FORMAT - 1);
    st = cf_db_write(s, b, true);
    rocksdb_writebatch_destroy(b);
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
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    for (int i = 0; i < CF_CF_COUNT && err == NULL; i++)
        rocksdb_flush_cf(s->db, fo, s->cf[i], &err);
    rocksdb_flushoptions_destroy(fo);
    if (err != NULL)
        return db_error("flush", err);
    return CF_OK;
}

/* ---- raw access ----------------------------------------------------------------------------- */

enum cf_status cf_db_get(struct cf_store *s, enum cf_cf cf, const void *key, size_t klen, char **val, size_t *vlen)
{
    char *err = NULL;
    *val = rocksdb_get_cf(s->db, s->ro, s->cf[cf], key, klen, vlen, &err);
    if (err != NULL)
        return db_error("get", err);
    if (*val == NULL)
        return CF_ENOTFOUND;
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

enum cf_status cf_db_write_raw(struct cf_store *s, rocksdb_writebatch_t *b, bool sync)
{
    char *err = NULL;
    rocksdb_write(s->db, sync ? s->wo_sync : s->wo, b, &err);
    if (err != NULL)
        return db_write_error(s, "write", err);
    return CF_OK;
}

enum cf_status cf_db_write_failed(struct cf_store *s, const char *what, char *err)
{
    return db_write_error(s, what, err);
}

/* The one way into RocksDB for writes: everything the journal covers goes through it. */
enum cf_status cf_db_write(struct cf_store *s, rocksdb_writebatch_t *b, bool sync)
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
    char *err = NULL;
    if (db_refused(s, "put"))
        return CF_EIO;
    if (s->journal.on && cf_journal_covers(cf)) {
        rocksdb_writebatch_t *b = rocksdb_writebatch_create();
        rocksdb_writebatch_put_cf(b, s->cf[cf], key, klen, val, vlen);
        enum cf_status st = cf_journal_write(s, b, sync);
        rocksdb_writebatch_destroy(b);
        return st;
    }
    /* Chunks: bound to their key by their seal and never rewritten, outside the journal. */
    rocksdb_put_cf(s->db, sync ? s->wo_sync : s->wo, s->cf[cf], key, klen, val, vlen, &err);
    if (err != NULL)
        return db_write_error(s, "put", err);
    return CF_OK;
}

void cf_iter_open(struct cf_store *s, enum cf_cf cf, const void *prefix, size_t plen, struct cf_iter *it)
{
    /* Upper bound = prefix incremented as a big-endian number; prefixes here are never all 0xff
     * because ids are random and tenant ids lead every prefix, but handle it by dropping the bound. */
    memcpy(it->upper, prefix, plen);
    it->upper_len = plen;
    it->prefix_len = plen;
    size_t i = plen;
    while (i > 0 && it->upper[i - 1] == 0xff)
        i--;
    it->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(it->ro, 1);
    if (i > 0) {
        it->upper[i - 1]++;
        it->upper_len = i;
        rocksdb_readoptions_set_iterate_upper_bound(it->ro, (const char *)it->upper, it->upper_len);
    }
    it->it = rocksdb_create_iterator_cf(s->db, it->ro, s->cf[cf]);
    rocksdb_iter_seek(it->it, prefix, plen);
}

void cf_iter_close(struct cf_iter *it)
{
    rocksdb_iter_destroy(it->it);
    rocksdb_readoptions_destroy(it->ro);
}

enum cf_status cf_iter_status(struct cf_iter *it)
{
    char *err = NULL;
    rocksdb_iter_get_error(it->it, &err);
    if (err != NULL)
        return db_error("iterate", err);
    return CF_OK;
}

/* ---- sealed records ------------------------------------------------------------------------- */

#define AAD_MAX 128

static size_t record_aad(enum cf_cf cf, const void *key, size_t klen, uint8_t aad[AAD_MAX])
{
    size_t nl = strlen(cf_cf_names[cf]);
    memcpy(aad, cf_cf_names[cf], nl);
    aad[nl] = 0;
    memcpy(aad + nl + 1, key, klen);
    return nl + 1 + klen;
}

void cf_seal_batch_put(rocksdb_writebatch_t *b, struct cf_store *s, enum cf_cf cf, const struct cf_key *k,
                       const void *key, size_t klen, const struct cf_rec_w *rec, const void *prefix,
                       size_t prefix_len)
{
    uint8_t aad[AAD_MAX];
    size_t alen = record_aad(cf, key, klen, aad);
    size_t vlen = prefix_len + rec->len + CF_SEAL_OVERHEAD;
    uint8_t *val = cf_xmalloc(vlen);
    if (prefix_len > 0)
        memcpy(val, prefix, prefix_len);
    if (cf_aead_seal(k, aad, alen, rec->buf, rec->len, val + prefix_len) != CF_OK) {
        /* Sealing cannot fail short of a broken OpenSSL; writing the record unsealed is not an option. */
        cf_storage_log(CF_LOG_ERROR, "storage: sealing a record failed");
        abort();
    }
    rocksdb_writebatch_put_cf(b, s->cf[cf], key, klen, (const char *)val, vlen);
    free(val);
}

enum cf_status cf_unseal(enum cf_cf cf, const struct cf_key *k, const void *key, size_t klen, const uint8_t *val,
                         size_t vlen, uint8_t **out, size_t *outlen)
{
    uint8_t aad[AAD_MAX];
    size_t alen = record_aad(cf, key, klen, aad);
    if (vlen < CF_SEAL_OVERHEAD + 1) {
        cf_storage_log(CF_LOG_ERROR, "storage: a record in column family %s is truncated", cf_cf_names[cf]);
        return CF_ECORRUPT;
    }
    uint8_t *pt = cf_xmalloc(vlen - CF_SEAL_OVERHEAD);
    enum cf_status st = cf_aead_open(k, aad, alen, val, vlen, pt);
    if (st != CF_OK) {
        /* Logged here, once, where it is detected: a sealed record that does not open is damage or
         * tampering, and the operator must hear of it even though the client only sees a 500. */
        cf_storage_log(CF_LOG_ERROR, "storage: a record in column family %s failed authentication", cf_cf_names[cf]);
        free(pt);
        return st;
    }
    *out = pt;
    *outlen = vlen - CF_SEAL_OVERHEAD;
    return CF_OK;
}

enum cf_status cf_get_sealed(struct cf_store *s, enum cf_cf cf, const struct cf_key *k, const void *key, size_t klen,
                             uint8_t **out, size_t *outlen)
{
    char *val;
    size_t vlen;
    enum cf_status st = cf_db_get(s, cf, key, klen, &val, &vlen);
    if (st != CF_OK)
        return st;
    st = cf_unseal(cf, k, key, klen, (const uint8_t *)val, vlen, out, outlen);
    rocksdb_free(val);
    return st;
}

/* ---- statistics ------------------------------------------------------------------------------ */

/* "Cumulative stall: 00:00:1.234 H:M:S, 0.5 percent" (RocksDB's DB stats, hours:minutes:seconds with
 * milliseconds): the milliseconds, or false if the line is not there or not in that form. */
static bool parse_stall(const char *stats, uint64_t *ms)
{
    static const char tag[] = "Cumulative stall: ";
    const char *p = stats != NULL ? strstr(stats, tag) : NULL;
    if (p == NULL)
        return false;
    p += sizeof tag - 1;
    uint64_t part[4]; /* hours, minutes, seconds, milliseconds */
    static const char sep[4] = {':', ':', '.', ' '};
    for (int i = 0; i < 4; i++) {
        size_t n = strspn(p, "0123456789");
        if (p[n] != sep[i] || cf_parse_u64(p, n, UINT32_MAX, &part[i]) != CF_OK || (i == 3 && n != 3))
            return false;
        p += n + 1;
    }
    *ms = ((part[0] * 60 + part[1]) * 60 + part[2]) * 1000 + part[3];
    return true;
}

void cf_store_stats(struct cf_store *s, struct cf_store_stats *out)
{
    static const struct {
        const char *name;
        size_t off;
    } per_cf[] = {
        {"rocksdb.total-sst-files-size", offsetof(struct cf_store_stats, sst_bytes)},
        {"rocksdb.total-blob-file-size", offsetof(struct cf_store_stats, blob_bytes)},
        {"rocksdb.num-blob-files", offsetof(struct cf_store_stats, blob_files)},
        {"rocksdb.estimate-live-data-size", offsetof(struct cf_store_stats, live_data_bytes)},
        {"rocksdb.cur-size-all-mem-tables", offsetof(struct cf_store_stats, memtable_bytes)},
        {"rocksdb.estimate-pending-compaction-bytes", offsetof(struct cf_store_stats, pending_compaction_bytes)},
    };
    memset(out, 0, sizeof *out);
    for (int i = 0; i < CF_CF_COUNT; i++) {
        for (size_t k = 0; k < sizeof per_cf / sizeof per_cf[0]; k++) {
            uint64_t v;
            if (rocksdb_property_int_cf(s->db, s->cf[i], per_cf[k].name, &v) == 0)
                *(uint64_t *)(void *)((char *)out + per_cf[k].off) += v;
        }
    }
    uint64_t v;
    if (rocksdb_property_int(s->db, "rocksdb.num-running-compactions", &v) == 0)
        out->running_compactions = v;
    if (rocksdb_property_int(s->db, "rocksdb.num-running-flushes", &v) == 0)
        out->running_flushes = v;
    if (rocksdb_property_int(s->db, "rocksdb.background-errors", &v) == 0)
        out->background_errors = v;
    if (rocksdb_property_int(s->db, "rocksdb.is-write-stopped", &v) == 0)
        out->write_stopped = v != 0;
    if (rocksdb_property_int(s->db, "rocksdb.actual-delayed-write-rate", &v) == 0)
        out->delayed_write_rate = v;
    char *stats = rocksdb_property_value(s->db, "rocksdb.dbstats");
    out->stall_known = parse_stall(stats, &out->stall_ms);
    rocksdb_free(stats);
}

enum cf_status cf_id_suffixes(struct cf_store *s, enum cf_cf cf, const void *prefix, size_t plen,
                              int (*keep)(void *ctx, const char *val, size_t vlen), void *ctx, struct cf_id **out,
                              size_t *n)
{
    struct cf_iter it;
    struct cf_idvec v = {0};
    enum cf_status st = CF_OK;
    cf_iter_open(s, cf, prefix, plen, &it);
    for (; rocksdb_iter_valid(it.it); rocksdb_iter_next(it.it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it.it, &kl);
        int k_ok = kl == plen + CF_ID_LEN ? 1 : -1;
        if (k_ok == 1 && keep != NULL) {
            const char *val = rocksdb_iter_value(it.it, &vl);
            k_ok = keep(ctx, val, vl);
        }
        if (k_ok < 0) {
            st = CF_ECORRUPT;
            break;
        }
        if (k_ok == 0)
            continue;
        struct cf_id id;
        memcpy(id.b, k + plen, CF_ID_LEN);
        cf_idvec_push(&v, &id);
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    if (st != CF_OK) {
        free(v.v);
        return st;
    }
    *out = v.v != NULL ? v.v : cf_xmalloc(1);
    *n = v.n;
    return CF_OK;
}
