/*
 * rocks.c: the RocksDB engine (engine.h). Keyspaces are column families, batches are write batches,
 * iterators are RocksDB iterators with checksums verified and their bounds kept in the iterator.
 * With rocks_backup.c, the only code of the tree that calls rocksdb_* (tests/tools/cf-dbtool.c and
 * some unit tests poke raw values on purpose).
 *
 * Tuning (measured in notes/libh2o-rocksdb.md §6): values are ciphertext, so compression is off
 * everywhere; the large keyspace (chunks) keeps values in integrated blob files (no value rewrite on
 * compaction), everything else is small and point-read, so it gets bloom filters and a shared block
 * cache. The WAL stays on: a synced write makes every earlier unsynced write durable with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_impl.h"
#include "rocks.h"

#define BLOCK_CACHE_BYTES (64u << 20)
/* Memtables: one budget shared by every keyspace (RocksDB's write buffer manager, created by
 * db_write_buffer_size): past it, the largest memtable is flushed, whatever its keyspace. Chunk
 * bodies pass through the large keyspace's memtable on their way to blob files; 16 MiB there is one
 * 16 MiB PATCH, and two of them (the one filling, the one flushing) stay within the budget. Small
 * keyspaces take the rest (their default 64 MiB each would otherwise add up). The WAL holds the
 * same bytes until their memtables are flushed: capping it at twice the budget forces a flush of
 * the keyspace pinning old logs (a quiet small one) instead of letting logs pile up. */
#define WRITE_BUFFER_BUDGET (48u << 20)
#define LARGE_WRITE_BUFFER (16u << 20)
#define SMALL_WRITE_BUFFER (8u << 20)
#define MAX_TOTAL_WAL (2ull * WRITE_BUFFER_BUDGET)
#define BLOB_FILE_SIZE (256ull << 20)
#define MIN_BLOB_SIZE 4096

struct rocks {
    struct cf_eng base; /* the operations table: rocks_ops */
    rocksdb_t *db;
    rocksdb_column_family_handle_t **cf; /* [spec->n]; NULL: not opened (read-only, older store) */
    size_t ncf;
    rocksdb_options_t *opts;
    rocksdb_options_t **cf_opts;
    rocksdb_block_based_table_options_t *table_opts;
    rocksdb_cache_t *block_cache;
    rocksdb_writeoptions_t *wo, *wo_sync;
    rocksdb_readoptions_t *ro;
    /* Point views of the large keyspace skip RocksDB's checksums: its values are authenticated by
     * the model (AES-GCM chunks, blob.h), which detects any damage a CRC would, and the CRC of a
     * 1 MiB blob (software CRC32 in Debian's build) was a third of a download's CPU. */
    rocksdb_readoptions_t *ro_large;
    int large; /* spec->large */
};

struct rocks_batch {
    struct cf_batch base;
    struct rocks *e;
    rocksdb_writebatch_t *wb;
};

struct rocks_iter {
    struct cf_eiter base;
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ro;
    char *lo, *hi; /* owned copies of the bounds (RocksDB keeps pointers to them) */
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n != 0 ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

static char *dup_bytes(const void *p, size_t n)
{
    char *d = xmalloc(n);
    if (n > 0)
        memcpy(d, p, n);
    return d;
}

/* ---- opening -------------------------------------------------------------------------------- */

static void setup_options(struct rocks *e, const struct cf_eng_spec *spec, bool create)
{
    e->block_cache = rocksdb_cache_create_lru(BLOCK_CACHE_BYTES);
    e->table_opts = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(e->table_opts, e->block_cache);
    rocksdb_block_based_options_set_filter_policy(e->table_opts, rocksdb_filterpolicy_create_bloom(10));

    e->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(e->opts, create);
    rocksdb_options_set_error_if_exists(e->opts, create);
    rocksdb_options_set_create_missing_column_families(e->opts, 1);
    rocksdb_options_set_max_background_jobs(e->opts, 2);
    rocksdb_options_set_max_total_wal_size(e->opts, MAX_TOTAL_WAL);
    rocksdb_options_set_db_write_buffer_size(e->opts, WRITE_BUFFER_BUDGET);
    rocksdb_options_set_write_buffer_size(e->opts, SMALL_WRITE_BUFFER);
    rocksdb_options_set_compression(e->opts, rocksdb_no_compression);
    rocksdb_options_set_paranoid_checks(e->opts, 1);
    rocksdb_options_set_keep_log_file_num(e->opts, 4);

    for (size_t i = 0; i < spec->n; i++) {
        rocksdb_options_t *o = rocksdb_options_create_copy(e->opts);
        rocksdb_options_set_block_based_table_factory(o, e->table_opts);
        if (spec->large >= 0 && i == (size_t)spec->large) {
            /* Large values written once: kept in blob files, out of the LSM tree. */
            rocksdb_options_set_write_buffer_size(o, LARGE_WRITE_BUFFER);
            rocksdb_options_set_enable_blob_files(o, 1);
            rocksdb_options_set_min_blob_size(o, MIN_BLOB_SIZE);
            rocksdb_options_set_blob_file_size(o, BLOB_FILE_SIZE);
            rocksdb_options_set_blob_compression_type(o, rocksdb_no_compression);
            rocksdb_options_set_enable_blob_gc(o, 1);
        }
        e->cf_opts[i] = o;
    }
    e->wo = rocksdb_writeoptions_create();
    e->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(e->wo_sync, 1);
    e->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(e->ro, 1);
    e->ro_large = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(e->ro_large, 0);
    e->large = spec->large;
}

static void rocks_close(struct cf_eng *e_)
{
    struct rocks *e = (struct rocks *)e_;
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->ncf; i++)
        if (e->cf[i] != NULL)
            rocksdb_column_family_handle_destroy(e->cf[i]);
    if (e->db != NULL)
        rocksdb_close(e->db);
    for (size_t i = 0; i < e->ncf; i++)
        if (e->cf_opts[i] != NULL)
            rocksdb_options_destroy(e->cf_opts[i]);
    rocksdb_options_destroy(e->opts);
    rocksdb_block_based_options_destroy(e->table_opts);
    rocksdb_cache_destroy(e->block_cache);
    rocksdb_writeoptions_destroy(e->wo);
    rocksdb_writeoptions_destroy(e->wo_sync);
    rocksdb_readoptions_destroy(e->ro);
    rocksdb_readoptions_destroy(e->ro_large);
    free(e->cf);
    free(e->cf_opts);
    free(e);
}

/* How many keyspaces, from the first, a read-only open asks for: the required ones, then each
 * further one while the store has it. */
static size_t readonly_count(struct rocks *e, const char *dir, const struct cf_eng_spec *spec)
{
    char *err = NULL;
    size_t n = 0;
    char **names = rocksdb_list_column_families(e->opts, dir, &n, &err);
    if (err != NULL) {
        rocksdb_free(err);
        return spec->n; /* the open will say what is wrong */
    }
    size_t count = spec->required;
    for (bool found = true; count < spec->n && found; count += found) {
        found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp(names[i], spec->names[count]) == 0;
    }
    rocksdb_list_column_families_destroy(names, n);
    return count;
}

static const struct cf_eng_ops rocks_ops;

int cf_eng_open(const char *dir, const struct cf_eng_spec *spec, unsigned flags, struct cf_eng **out, char **err)
{
    struct rocks *e = xmalloc(sizeof *e);
    *e = (struct rocks){.base = {.ops = &rocks_ops}, .ncf = spec->n};
    e->cf = calloc(spec->n, sizeof *e->cf);
    e->cf_opts = calloc(spec->n, sizeof *e->cf_opts);
    if (e->cf == NULL || e->cf_opts == NULL)
        abort();
    *err = NULL;
    setup_options(e, spec, (flags & CF_ENG_CREATE) != 0);
    if (flags & CF_ENG_READONLY) {
        int ncf = (int)readonly_count(e, dir, spec);
        /* Beside a running server a compaction may delete a table file between the reading of the
         * MANIFEST and the opening of that file ("No such file or directory"; seen by crash.test.mjs).
         * The store is fine: read the new MANIFEST and try again. */
        for (int attempt = 0;; attempt++) {
            e->db = rocksdb_open_for_read_only_column_families(e->opts, dir, ncf, spec->names,
                                                               (const rocksdb_options_t *const *)e->cf_opts, e->cf,
                                                               0, err);
            if (*err == NULL || attempt == 50 || strstr(*err, "No such file or directory") == NULL)
                break;
            rocksdb_free(*err);
            *err = NULL;
            usleep(100 * 1000);
        }
    } else
        e->db = rocksdb_open_column_families(e->opts, dir, (int)spec->n, spec->names,
                                             (const rocksdb_options_t *const *)e->cf_opts, e->cf, err);
    if (*err != NULL) {
        e->db = NULL;
        for (size_t i = 0; i < e->ncf; i++)
            e->cf[i] = NULL;
        rocks_close(&e->base);
        return CF_ENG_ERR;
    }
    *out = &e->base;
    return CF_ENG_OK;
}

static bool rocks_has(const struct cf_eng *e_, unsigned ks)
{
    const struct rocks *e = (const struct rocks *)e_;
    return ks < e->ncf && e->cf[ks] != NULL;
}

static int rocks_flush(struct cf_eng *e_, char **err)
{
    struct rocks *e = (struct rocks *)e_;
    *err = NULL;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    for (size_t i = 0; i < e->ncf && *err == NULL; i++)
        if (e->cf[i] != NULL)
            rocksdb_flush_cf(e->db, fo, e->cf[i], err);
    rocksdb_flushoptions_destroy(fo);
    return *err != NULL ? CF_ENG_ERR : CF_ENG_OK;
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
        if (p[n] != sep[i] || n == 0 || n > 10 || (i == 3 && n != 3))
            return false;
        part[i] = 0;
        for (size_t k = 0; k < n; k++)
            part[i] = part[i] * 10 + (uint64_t)(p[k] - '0');
        if (part[i] > UINT32_MAX)
            return false;
        p += n + 1;
    }
    *ms = ((part[0] * 60 + part[1]) * 60 + part[2]) * 1000 + part[3];
    return true;
}

static void rocks_stats(struct cf_eng *e_, struct cf_eng_stats *out)
{
    struct rocks *e = (struct rocks *)e_;
    static const struct {
        const char *name;
        size_t off;
    } per_cf[] = {
        {"rocksdb.total-sst-files-size", offsetof(struct cf_eng_stats, sst_bytes)},
        {"rocksdb.total-blob-file-size", offsetof(struct cf_eng_stats, blob_bytes)},
        {"rocksdb.num-blob-files", offsetof(struct cf_eng_stats, blob_files)},
        {"rocksdb.estimate-live-data-size", offsetof(struct cf_eng_stats, live_data_bytes)},
        {"rocksdb.cur-size-all-mem-tables", offsetof(struct cf_eng_stats, memtable_bytes)},
        {"rocksdb.estimate-pending-compaction-bytes", offsetof(struct cf_eng_stats, pending_compaction_bytes)},
    };
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < e->ncf; i++) {
        if (e->cf[i] == NULL)
            continue;
        for (size_t k = 0; k < sizeof per_cf / sizeof per_cf[0]; k++) {
            uint64_t v;
            if (rocksdb_property_int_cf(e->db, e->cf[i], per_cf[k].name, &v) == 0)
                *(uint64_t *)(void *)((char *)out + per_cf[k].off) += v;
        }
    }
    uint64_t v;
    if (rocksdb_property_int(e->db, "rocksdb.num-running-compactions", &v) == 0)
        out->running_compactions = v;
    if (rocksdb_property_int(e->db, "rocksdb.num-running-flushes", &v) == 0)
        out->running_flushes = v;
    if (rocksdb_property_int(e->db, "rocksdb.background-errors", &v) == 0)
        out->background_errors = v;
    if (rocksdb_property_int(e->db, "rocksdb.is-write-stopped", &v) == 0)
        out->write_stopped = v != 0;
    if (rocksdb_property_int(e->db, "rocksdb.actual-delayed-write-rate", &v) == 0)
        out->delayed_write_rate = v;
    char *stats = rocksdb_property_value(e->db, "rocksdb.dbstats");
    out->stall_known = parse_stall(stats, &out->stall_ms);
    rocksdb_free(stats);
}

bool cf_rocks_is(const struct cf_eng *e)
{
    return e->ops == &rocks_ops;
}

rocksdb_t *cf_rocks_db(const struct cf_eng *e)
{
    return ((const struct rocks *)e)->db;
}

rocksdb_column_family_handle_t *cf_rocks_cf(const struct cf_eng *e, unsigned ks)
{
    return ((const struct rocks *)e)->cf[ks];
}

rocksdb_writebatch_t *cf_rocks_batch(const struct cf_batch *b)
{
    return ((const struct rocks_batch *)b)->wb;
}

const char *cf_rocks_batch_rep(const struct cf_batch *b, size_t *size)
{
    return rocksdb_writebatch_data(((const struct rocks_batch *)b)->wb, size);
}

uint32_t cf_rocks_ks_id(const struct cf_eng *e, unsigned ks)
{
    return rocksdb_column_family_handle_get_id(((const struct rocks *)e)->cf[ks]);
}

/* ---- reading a batch back (engine.h cf_batch_each) ------------------------------------------- */

/* RocksDB's serialized WriteBatch (db/write_batch.cc; the WAL's record format, which RocksDB keeps
 * stable across releases): sequence:fixed64 ‖ count:fixed32 (little-endian) ‖ record*, each record a
 * type byte, for the column-family forms a varint32 family id, then varint32-length-prefixed key
 * (and value, or end key); the default family's records have forms without the id. Puts,
 * deletions (single deletions too) and range deletions are described; any other record is refused. */
enum {
    WB_DELETION = 0x0,
    WB_VALUE = 0x1,
    WB_LOGDATA = 0x3,
    WB_CF_DELETION = 0x4,
    WB_CF_VALUE = 0x5,
    WB_SINGLE_DELETION = 0x7,
    WB_CF_SINGLE_DELETION = 0x8,
    WB_NOOP = 0xD,
    WB_CF_RANGE_DELETION = 0xE,
    WB_RANGE_DELETION = 0xF,
};

static bool wb_varint32(const uint8_t **p, const uint8_t *end, uint32_t *out)
{
    uint32_t v = 0;
    for (int shift = 0; shift <= 28 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint32_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

static bool wb_slice(const uint8_t **p, const uint8_t *end, const uint8_t **s, uint32_t *n)
{
    if (!wb_varint32(p, end, n) || (size_t)(end - *p) < *n)
        return false;
    *s = *p;
    *p += *n;
    return true;
}

/* The keyspace of RocksDB column family id (the default family, id 0, is none of ours). */
static bool wb_keyspace(const struct rocks *e, uint32_t id, unsigned *ks)
{
    for (size_t i = 0; i < e->ncf; i++) {
        if (e->cf[i] != NULL && rocksdb_column_family_handle_get_id(e->cf[i]) == id) {
            *ks = (unsigned)i;
            return true;
        }
    }
    return false;
}

/* One record at *p: its operation, keyspace, key and value (or end key). 0 and *op set; 1 for a
 * record that is not an operation (log data, no-op); CF_ENG_ERR for anything else. */
static int wb_record(const struct rocks *e, const uint8_t **p, const uint8_t *end, enum cf_batch_op *op,
                     unsigned *ks, const uint8_t **k, uint32_t *kl, const uint8_t **v, uint32_t *vl)
{
    uint8_t type = *(*p)++;
    uint32_t id = 0; /* the default family's records carry no id */
    switch (type) {
    case WB_LOGDATA:
        return wb_slice(p, end, k, kl) ? 1 : CF_ENG_ERR;
    case WB_NOOP:
        return 1;
    case WB_CF_VALUE:
    case WB_CF_DELETION:
    case WB_CF_SINGLE_DELETION:
    case WB_CF_RANGE_DELETION:
        if (!wb_varint32(p, end, &id))
            return CF_ENG_ERR;
        break;
    case WB_VALUE:
    case WB_DELETION:
    case WB_SINGLE_DELETION:
    case WB_RANGE_DELETION:
        break;
    default:
        return CF_ENG_ERR; /* a merge, a transaction marker, a blob index, a wide-column entity */
    }
    if (!wb_keyspace(e, id, ks) || !wb_slice(p, end, k, kl))
        return CF_ENG_ERR;
    *op = type == WB_VALUE || type == WB_CF_VALUE                     ? CF_BATCH_PUT
          : type == WB_RANGE_DELETION || type == WB_CF_RANGE_DELETION ? CF_BATCH_DELETE_RANGE
                                                                      : CF_BATCH_DELETE;
    *v = NULL;
    *vl = 0;
    if (*op != CF_BATCH_DELETE && !wb_slice(p, end, v, vl))
        return CF_ENG_ERR;
    return 0;
}

static int rocks_batch_each(const struct cf_batch *b_, cf_batch_fn fn, void *ctx)
{
    const struct rocks_batch *b = (const struct rocks_batch *)b_;
    size_t size;
    const uint8_t *p = (const uint8_t *)rocksdb_writebatch_data(b->wb, &size), *end = p + size;
    if (size < 12)
        return CF_ENG_ERR;
    uint32_t count = (uint32_t)p[8] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24, seen = 0;
    for (p += 12; p < end;) {
        enum cf_batch_op op;
        unsigned ks;
        const uint8_t *k, *v;
        uint32_t kl, vl;
        int r = wb_record(b->e, &p, end, &op, &ks, &k, &kl, &v, &vl);
        if (r == 1)
            continue;
        if (r != 0)
            return CF_ENG_ERR;
        seen++;
        if ((r = fn(ctx, op, ks, k, kl, v, vl)) != 0)
            return r;
    }
    return seen == count ? CF_ENG_OK : CF_ENG_ERR;
}

/* ---- point reads ---------------------------------------------------------------------------- */

static int rocks_get(struct cf_eng *e_, unsigned ks, const void *key, size_t klen, char **val, size_t *vlen,
                     char **err)
{
    struct rocks *e = (struct rocks *)e_;
    *err = NULL;
    *val = rocksdb_get_cf(e->db, e->ro, e->cf[ks], key, klen, vlen, err);
    if (*err != NULL)
        return CF_ENG_ERR;
    return *val == NULL ? CF_ENG_NOTFOUND : CF_ENG_OK;
}

static int rocks_get_view(struct cf_eng *e_, unsigned ks, const void *key, size_t klen,
                          void (*fn)(void *ctx, const char *val, size_t vlen), void *ctx, char **err)
{
    struct rocks *e = (struct rocks *)e_;
    *err = NULL;
    rocksdb_readoptions_t *ro = e->large >= 0 && ks == (unsigned)e->large ? e->ro_large : e->ro;
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned_cf(e->db, ro, e->cf[ks], key, klen, err);
    if (*err != NULL)
        return CF_ENG_ERR;
    if (ps == NULL)
        return CF_ENG_NOTFOUND;
    size_t vl;
    const char *v = rocksdb_pinnableslice_value(ps, &vl);
    fn(ctx, v, vl);
    rocksdb_pinnableslice_destroy(ps);
    return CF_ENG_OK;
}

/* ---- batches -------------------------------------------------------------------------------- */

static struct cf_batch *rocks_batch_new(struct cf_eng *e_)
{
    struct rocks_batch *b = xmalloc(sizeof *b);
    b->base.ops = &rocks_ops;
    b->e = (struct rocks *)e_;
    b->wb = rocksdb_writebatch_create();
    return &b->base;
}

struct cf_batch *cf_rocks_batch_from(struct cf_eng *e, const char *rep, size_t size)
{
    struct rocks_batch *b = xmalloc(sizeof *b);
    b->base.ops = &rocks_ops;
    b->e = (struct rocks *)e;
    b->wb = rocksdb_writebatch_create_from(rep, size);
    return &b->base;
}

static void rocks_batch_free(struct cf_batch *b_)
{
    struct rocks_batch *b = (struct rocks_batch *)b_;
    if (b == NULL)
        return;
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

static void rocks_batch_put(struct cf_batch *b_, unsigned ks, const void *key, size_t klen, const void *val,
                            size_t vlen)
{
    struct rocks_batch *b = (struct rocks_batch *)b_;
    rocksdb_writebatch_put_cf(b->wb, b->e->cf[ks], key, klen, val, vlen);
}

static void rocks_batch_delete(struct cf_batch *b_, unsigned ks, const void *key, size_t klen)
{
    struct rocks_batch *b = (struct rocks_batch *)b_;
    rocksdb_writebatch_delete_cf(b->wb, b->e->cf[ks], key, klen);
}

static void rocks_batch_delete_range(struct cf_batch *b_, unsigned ks, const void *lo, size_t lolen,
                                     const void *hi, size_t hilen)
{
    struct rocks_batch *b = (struct rocks_batch *)b_;
    rocksdb_writebatch_delete_range_cf(b->wb, b->e->cf[ks], lo, lolen, hi, hilen);
}

static size_t rocks_batch_count(const struct cf_batch *b_)
{
    const struct rocks_batch *b = (const struct rocks_batch *)b_;
    return (size_t)rocksdb_writebatch_count(b->wb);
}

static void rocks_batch_clear(struct cf_batch *b_)
{
    struct rocks_batch *b = (struct rocks_batch *)b_;
    rocksdb_writebatch_clear(b->wb);
}

static void rocks_batch_save(struct cf_batch *b_)
{
    struct rocks_batch *b = (struct rocks_batch *)b_;
    rocksdb_writebatch_set_save_point(b->wb);
}

static int rocks_batch_rollback(struct cf_batch *b_, char **err)
{
    struct rocks_batch *b = (struct rocks_batch *)b_;
    *err = NULL;
    rocksdb_writebatch_rollback_to_save_point(b->wb, err);
    return *err != NULL ? CF_ENG_ERR : CF_ENG_OK;
}

static int rocks_write(struct cf_eng *e_, const struct cf_batch *b_, bool sync, char **err)
{
    struct rocks *e = (struct rocks *)e_;
    const struct rocks_batch *b = (const struct rocks_batch *)b_;
    *err = NULL;
    rocksdb_write(e->db, sync ? e->wo_sync : e->wo, b->wb, err);
    return *err != NULL ? CF_ENG_ERR : CF_ENG_OK;
}

static int rocks_sync(struct cf_eng *e_, char **err)
{
    struct rocks *e = (struct rocks *)e_;
    *err = NULL;
    rocksdb_flush_wal(e->db, 1, err);
    return *err != NULL ? CF_ENG_ERR : CF_ENG_OK;
}

static void rocks_compact(struct cf_eng *e_, unsigned ks, const void *lo, size_t lolen, const void *hi,
                          size_t hilen, bool force)
{
    struct rocks *e = (struct rocks *)e_;
    rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
    if (force) {
        rocksdb_compactoptions_set_bottommost_level_compaction(co, 2 /* kForce */);
        rocksdb_compactoptions_set_exclusive_manual_compaction(co, 0);
    }
    rocksdb_compact_range_cf_opt(e->db, e->cf[ks], co, lo, lolen, hi, hilen);
    rocksdb_compactoptions_destroy(co);
}

/* ---- iteration ------------------------------------------------------------------------------ */

static struct cf_eiter *rocks_iter_open(struct cf_eng *e_, unsigned ks, const void *lo, size_t lolen,
                                        const void *hi, size_t hilen)
{
    struct rocks *e = (struct rocks *)e_;
    struct rocks_iter *it = xmalloc(sizeof *it);
    it->base.ops = &rocks_ops;
    it->lo = it->hi = NULL;
    it->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(it->ro, 1);
    if (lo != NULL) {
        it->lo = dup_bytes(lo, lolen);
        rocksdb_readoptions_set_iterate_lower_bound(it->ro, it->lo, lolen);
    }
    if (hi != NULL) {
        it->hi = dup_bytes(hi, hilen);
        rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->hi, hilen);
    }
    it->it = rocksdb_create_iterator_cf(e->db, it->ro, e->cf[ks]);
    return &it->base;
}

static void rocks_iter_close(struct cf_eiter *it_)
{
    struct rocks_iter *it = (struct rocks_iter *)it_;
    if (it == NULL)
        return;
    rocksdb_iter_destroy(it->it);
    rocksdb_readoptions_destroy(it->ro);
    free(it->lo);
    free(it->hi);
    free(it);
}

static void rocks_iter_seek_to_first(struct cf_eiter *it_)
{
    struct rocks_iter *it = (struct rocks_iter *)it_;
    rocksdb_iter_seek_to_first(it->it);
}

static void rocks_iter_seek(struct cf_eiter *it_, const void *k, size_t kl)
{
    struct rocks_iter *it = (struct rocks_iter *)it_;
    rocksdb_iter_seek(it->it, k, kl);
}

static void rocks_iter_seek_for_prev(struct cf_eiter *it_, const void *k, size_t kl)
{
    struct rocks_iter *it = (struct rocks_iter *)it_;
    rocksdb_iter_seek_for_prev(it->it, k, kl);
}

static bool rocks_iter_valid(const struct cf_eiter *it_)
{
    const struct rocks_iter *it = (const struct rocks_iter *)it_;
    return rocksdb_iter_valid(it->it) != 0;
}

static void rocks_iter_next(struct cf_eiter *it_)
{
    struct rocks_iter *it = (struct rocks_iter *)it_;
    rocksdb_iter_next(it->it);
}

static void rocks_iter_prev(struct cf_eiter *it_)
{
    struct rocks_iter *it = (struct rocks_iter *)it_;
    rocksdb_iter_prev(it->it);
}

static const char *rocks_iter_key(const struct cf_eiter *it_, size_t *kl)
{
    const struct rocks_iter *it = (const struct rocks_iter *)it_;
    return rocksdb_iter_key(it->it, kl);
}

static const char *rocks_iter_value(const struct cf_eiter *it_, size_t *vl)
{
    const struct rocks_iter *it = (const struct rocks_iter *)it_;
    return rocksdb_iter_value(it->it, vl);
}

static int rocks_iter_status(const struct cf_eiter *it_, char **err)
{
    const struct rocks_iter *it = (const struct rocks_iter *)it_;
    *err = NULL;
    rocksdb_iter_get_error(it->it, err);
    return *err != NULL ? CF_ENG_ERR : CF_ENG_OK;
}

/* Cluster locks (engine.h): one process writes a RocksDB store (its LOCK file), so the model's process
 * mutex is the whole lock. */
static int rocks_lock(struct cf_eng *e, enum cf_eng_lock which, char **err)
{
    (void)e, (void)which;
    *err = NULL;
    return CF_ENG_OK;
}

static void rocks_unlock(struct cf_eng *e, enum cf_eng_lock which)
{
    (void)e, (void)which;
}

static bool rocks_multiwriter(const struct cf_eng *e)
{
    (void)e;
    return false;
}

static const struct cf_eng_ops rocks_ops = {
    .name = "rocksdb",
    .close = rocks_close,
    .has = rocks_has,
    .flush = rocks_flush,
    .stats = rocks_stats,
    .get = rocks_get,
    .get_view = rocks_get_view,
    .write = rocks_write,
    .sync = rocks_sync,
    .compact = rocks_compact,
    .batch_new = rocks_batch_new,
    .batch_free = rocks_batch_free,
    .batch_put = rocks_batch_put,
    .batch_delete = rocks_batch_delete,
    .batch_delete_range = rocks_batch_delete_range,
    .batch_count = rocks_batch_count,
    .batch_clear = rocks_batch_clear,
    .batch_save = rocks_batch_save,
    .batch_rollback = rocks_batch_rollback,
    .batch_each = rocks_batch_each,
    .lock = rocks_lock,
    .unlock = rocks_unlock,
    .multiwriter = rocks_multiwriter,
    .iter_open = rocks_iter_open,
    .iter_close = rocks_iter_close,
    .iter_seek_to_first = rocks_iter_seek_to_first,
    .iter_seek = rocks_iter_seek,
    .iter_seek_for_prev = rocks_iter_seek_for_prev,
    .iter_valid = rocks_iter_valid,
    .iter_next = rocks_iter_next,
    .iter_prev = rocks_iter_prev,
    .iter_key = rocks_iter_key,
    .iter_value = rocks_iter_value,
    .iter_status = rocks_iter_status,
};
