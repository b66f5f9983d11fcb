/*
 * engine.h: the storage engine seam. What the model (storage/ model: keys, records, nodes, ACLs, shares,
 * content, audit, uploads, journal) asks of the thing that keeps its bytes, and nothing more: an
 * ordered key/value store with named keyspaces, point gets, bounded iteration, atomic multi-key
 * batches with a durable-write flag. Two implementations, chosen at run time by the open call: the
 * RocksDB engine (rocks.c, the default, the only file of the tree that calls rocksdb_*) and the
 * PostgreSQL engine (pg.c, issue 24; the only one that calls PQ*). Each store, batch and iterator
 * carries its engine's operations table (engine_impl.h), and every call below dispatches through it
 * (dispatch.c). docs/DESIGN.md "The storage engine" has each operation's contract (atomicity,
 * durability, ordering, what a failure leaves behind).
 *
 * Keys and values are opaque bytes, compared as unsigned bytes (memcmp order, shorter first on a
 * tie). Keyspaces are small integers the model numbers (enum cf_cf) and names at open; an engine
 * stores a keyspace under its name. Errors: functions that can fail return 0 on success,
 * CF_ENG_NOTFOUND where stated, else CF_ENG_ERR with *err a malloc'ed message the caller logs and
 * frees with cf_eng_free (the model turns it into a status: see storage/db.c db_error). Corruption is
 * named in the message ("Corruption"), a store held by another process as "lock file", a database
 * that cannot be reached right now (PostgreSQL down, a timeout) as "Unavailable".
 *
 * This header includes nothing of the model: an engine may not depend on the rooms above it.
 */
#ifndef CF_ENGINE_H
#define CF_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { CF_ENG_OK = 0, CF_ENG_NOTFOUND = 1, CF_ENG_ERR = -1 };

struct cf_eng;   /* an open store */
struct cf_batch; /* an atomic batch of writes, built then written once */
struct cf_eiter; /* an iterator over one keyspace, within bounds */

/* Frees a value or message the engine returned. */
void cf_eng_free(void *p);

/* ---- opening -------------------------------------------------------------------------------- */

enum { CF_ENG_CREATE = 1, CF_ENG_READONLY = 2 };
struct cf_eng_spec {
    const char *const *names; /* keyspace i is stored under names[i] */
    size_t n;
    /* Read-only opens: keyspaces from required on are opened only if the store has them (a store
     * written by an older version; cf_eng_has then answers false for them). Read-write opens create
     * every missing keyspace. */
    size_t required;
    int large; /* the keyspace whose values are large and written once (chunk bodies); -1: none */
};
/* cf_eng_open(dir, spec, flags, out, err): opens (CF_ENG_CREATE: creates; an existing store is then
 * an error) the store in dir. Read-only opens see the store as of the open and may run beside a
 * read-write one. spec is referenced until cf_eng_close. */
int cf_eng_open(const char *dir, const struct cf_eng_spec *spec, unsigned flags, struct cf_eng **out, char **err);
/* cf_eng_open_pg(target, spec, flags, out, err): the same over PostgreSQL (pg.c): one table per
 * keyspace (bytea keys and values) in the database target->conninfo names. CF_ENG_CREATE creates the
 * tables (an existing store is an error); a read-write open creates missing keyspaces, and any number
 * of read-write opens (processes, nodes) may write one database at once (cluster mode: what must not
 * interleave is serialised by cf_eng_lock); a read-only open sees the live database (each read its
 * own snapshot) and refuses writes. A build without libpq answers with an error saying so. */
struct cf_eng_pg_target {
    const char *conninfo;  /* a libpq connection string ("host=… port=… dbname=… user=…") */
    const char *password;  /* NULL: none, or the conninfo's / ~/.pgpass's own */
    unsigned statement_timeout_ms; /* 0: 30 s. Also the bound of every connection attempt. */
};
int cf_eng_open_pg(const struct cf_eng_pg_target *t, const struct cf_eng_spec *spec, unsigned flags,
                   struct cf_eng **out, char **err);
/* The engine's name, for logs and the metrics page: "rocksdb" or "postgresql". */
const char *cf_eng_name(const struct cf_eng *e);
/* Closes e; every acknowledged write stays as durable as it was acknowledged. */
void cf_eng_close(struct cf_eng *e);
bool cf_eng_has(const struct cf_eng *e, unsigned ks);
/* cf_eng_flush(e, err): moves everything written so far out of memory-only state into the store's
 * files (before a backup or a compaction that must see it). */
int cf_eng_flush(struct cf_eng *e, char **err);

/* What the engine says of itself, for the metrics page (RocksDB's properties; other engines fill
 * what they can and leave the rest 0). Reads memory only; any thread. */
struct cf_eng_stats {
    uint64_t sst_bytes, blob_bytes, blob_files, live_data_bytes, memtable_bytes, pending_compaction_bytes;
    uint64_t running_compactions, running_flushes, background_errors;
    bool write_stopped;
    uint64_t delayed_write_rate;
    bool stall_known;
    uint64_t stall_ms;
};
void cf_eng_stats(struct cf_eng *e, struct cf_eng_stats *out);

/* ---- point reads ---------------------------------------------------------------------------- */

/* cf_eng_get(e, ks, key, klen, val, vlen, err): the value of key, *val malloc'ed (free with
 * cf_eng_free). CF_ENG_NOTFOUND if absent. Reads see every write acknowledged before the call. */
int cf_eng_get(struct cf_eng *e, unsigned ks, const void *key, size_t klen, char **val, size_t *vlen, char **err);
/* cf_eng_get_view(e, ks, key, klen, fn, ctx, err): calls fn(ctx, val, vlen) once with the value of key,
 * valid only during the call (pinned in the engine's memory where it can be: no copy made for the
 * caller). CF_ENG_NOTFOUND if absent (fn not called). Reads see every write acknowledged before.
 * Views of the large keyspace (spec.large) may skip the engine's own checksums: the model
 * authenticates those values itself (sealed chunks), and damage fails that authentication. */
int cf_eng_get_view(struct cf_eng *e, unsigned ks, const void *key, size_t klen,
                    void (*fn)(void *ctx, const char *val, size_t vlen), void *ctx, char **err);

/* ---- batches -------------------------------------------------------------------------------- */

/* A batch is applied all or nothing by cf_eng_write, in the order its operations were added (a later
 * operation on the same key wins). Building a batch never fails and touches no storage. */
struct cf_batch *cf_batch_new(struct cf_eng *e);
void cf_batch_free(struct cf_batch *b);
void cf_batch_put(struct cf_batch *b, unsigned ks, const void *key, size_t klen, const void *val, size_t vlen);
void cf_batch_delete(struct cf_batch *b, unsigned ks, const void *key, size_t klen);
/* Deletes every key k of ks with lo ≤ k < hi. */
void cf_batch_delete_range(struct cf_batch *b, unsigned ks, const void *lo, size_t lolen, const void *hi,
                           size_t hilen);
size_t cf_batch_count(const struct cf_batch *b);
void cf_batch_clear(struct cf_batch *b);
/* A save point, and a rollback of every operation added since the last one (CF_ENG_ERR if none). */
void cf_batch_save(struct cf_batch *b);
int cf_batch_rollback(struct cf_batch *b, char **err);

/* cf_batch_each(b, fn, ctx): calls fn once per operation of b, in order: a put (the value), a delete,
 * or a range deletion (v is the end key), each with its keyspace. What the model learns about a batch
 * it is about to write (the metadata journal lists it, the metadata cache invalidates its keys) comes
 * from here, so no engine-specific batch format leaks above the seam. Stops at fn's first non-zero
 * answer and returns it; CF_ENG_ERR if the batch holds an operation this interface cannot describe
 * (never for a batch built through it) or is damaged. The pointers are valid during the call only. */
enum cf_batch_op { CF_BATCH_PUT, CF_BATCH_DELETE, CF_BATCH_DELETE_RANGE };
typedef int (*cf_batch_fn)(void *ctx, enum cf_batch_op op, unsigned ks, const uint8_t *k, size_t kl,
                           const uint8_t *v, size_t vl);
int cf_batch_each(const struct cf_batch *b, cf_batch_fn fn, void *ctx);

/* cf_eng_write(e, b, sync, err): applies b atomically. sync: the batch is on stable storage when the
 * call returns (it survives a power cut); otherwise it survives a process crash but may be lost, as a
 * whole and only together with every later unsynced write, by a power cut. A failed write applied
 * nothing; the engine may then refuse every later write (fail-stop: the model stops writing). */
int cf_eng_write(struct cf_eng *e, const struct cf_batch *b, bool sync, char **err);
/* cf_eng_sync(e, err): makes every acknowledged write durable (as a synced write would). */
int cf_eng_sync(struct cf_eng *e, char **err);

/* cf_eng_compact(e, ks, lo, lolen, hi, hilen, force): reclaims the space of deleted and overwritten
 * values of ks in [lo, hi) (NULL: unbounded), synchronously. force: when it returns, no live file of
 * the store still holds a value of that range deleted or overwritten before the call (crypto-
 * shredding of wrapped keys relies on it; copies made earlier, such as backups, keep theirs). */
void cf_eng_compact(struct cf_eng *e, unsigned ks, const void *lo, size_t lolen, const void *hi, size_t hilen,
                    bool force);

/* ---- iteration ------------------------------------------------------------------------------ */

/* cf_eiter_open(e, ks, lo, lolen, hi, hilen): an iterator over the keys k of ks with lo ≤ k < hi (lo
 * NULL: from the first key; hi NULL: to the last). The bounds are copied. It reads one consistent
 * snapshot taken at open; it starts unpositioned (invalid): seek first. Never NULL. */
struct cf_eiter *cf_eiter_open(struct cf_eng *e, unsigned ks, const void *lo, size_t lolen, const void *hi,
                               size_t hilen);
void cf_eiter_close(struct cf_eiter *it);
void cf_eiter_seek_to_first(struct cf_eiter *it);           /* the first key within the bounds */
void cf_eiter_seek(struct cf_eiter *it, const void *k, size_t kl);          /* the first key ≥ k */
void cf_eiter_seek_for_prev(struct cf_eiter *it, const void *k, size_t kl); /* the last key ≤ k */
bool cf_eiter_valid(const struct cf_eiter *it);
void cf_eiter_next(struct cf_eiter *it);
void cf_eiter_prev(struct cf_eiter *it);
/* The current key and value; valid until the next move or close. */
const char *cf_eiter_key(const struct cf_eiter *it, size_t *kl);
const char *cf_eiter_value(const struct cf_eiter *it, size_t *vl);
/* CF_ENG_ERR if the iteration stopped on an error (an invalid iterator is otherwise the end). */
int cf_eiter_status(const struct cf_eiter *it, char **err);

/* ---- the change feed (cluster mode) -------------------------------------------------------- */

/* Several processes on one database (cluster mode, docs/CLUSTER.md "Stateless nodes") each keep a
 * metadata cache; a process learns what the others wrote from the engine's change feed. An engine
 * with a feed (PostgreSQL) records, in the same transaction as each batch it writes, the keys the
 * batch put or deleted and the ranges it deleted (not the values; never the large keyspace), as one
 * change numbered by an increasing sequence. Numbers are handed out in commit order (a change
 * numbered n is visible only after every change below n that will ever be visible); they may skip
 * (a transaction that failed after taking one). Old changes are trimmed (docs/CLUSTER.md). RocksDB
 * has no feed: one process writes its store, and its writes invalidate its own cache directly. */
enum { CF_ENG_GAP = 2 };
/* cf_eng_change_seq(e, seq, err): the number of the newest change visible now (0: none yet).
 * CF_ENG_NOTFOUND: nothing to follow: the engine has no feed (RocksDB). Every PostgreSQL open with a
 * feed follows it, read-write ones included (other nodes write). One round trip. */
int cf_eng_change_seq(struct cf_eng *e, uint64_t *seq, char **err);
/* cf_eng_changes(e, after, fn, ctx, last, err): hands every operation of every change numbered above
 * after to fn, change by change in number order and in batch order within one: a put or a delete (v
 * NULL, vl 0: values are not recorded) or a range deletion (v the end key), each with its keyspace;
 * *last is the number of the newest change read (after if none). CF_ENG_GAP: some changes after
 * after can no longer be read (trimmed), fn answered non-zero (fn is then not called again), or a
 * change names a keyspace this open does not have: the caller must treat every key as changed (*last
 * is still set: later calls go on from there). CF_ENG_ERR: the feed could not be read (*last as far
 * as it was), or a change is damaged ("Corruption"; *last is past it, so that a caller that treats an
 * error as "everything changed" is not stuck on it). CF_ENG_NOTFOUND: nothing to follow (as above).
 * With nothing new it is one round trip. */
int cf_eng_changes(struct cf_eng *e, uint64_t after, cf_batch_fn fn, void *ctx, uint64_t *last, char **err);

/* ---- cluster locks (cluster mode) ---------------------------------------------------------- */

/* Several processes writing one PostgreSQL store (docs/CLUSTER.md "Stateless nodes") serialise what
 * must not interleave with cluster locks: the model's process mutex, then cf_eng_lock. PostgreSQL: a
 * session advisory lock on a connection the calling thread keeps while it holds any cluster lock of
 * e; every write the thread makes meanwhile goes over that connection, so a write under a lock whose
 * session died (a restart, a lost connection: another node may hold the lock now) fails with
 * "Unavailable" instead of committing unguarded. A lock that could not be taken (the database out of
 * reach, lock_timeout) answers CF_ENG_ERR ("Unavailable") and makes every write of the calling thread
 * on e fail likewise until the matching cf_eng_unlock, so a caller that goes on after the failure
 * cannot write unguarded. Always taken in this order, so nodes cannot deadlock: ns, user, session,
 * audit, journal (a thread may skip any), each at most once per thread. RocksDB: no-ops (one process
 * writes its store). A read-only open: no-ops. */
enum cf_eng_lock {
    CF_ENG_LOCK_NS = 1,      /* namespace changes (the model's ns_lock) */
    CF_ENG_LOCK_AUDIT = 2,   /* the provenance chains */
    CF_ENG_LOCK_JOURNAL = 3, /* the metadata journal */
    CF_ENG_LOCK_USER = 4,    /* read-modify-write of user records (user_lock) */
    CF_ENG_LOCK_SESSION = 5, /* sessions read before written (ident.c session_lock) */
};
int cf_eng_lock(struct cf_eng *e, enum cf_eng_lock which, char **err); /* CF_ENG_OK, or CF_ENG_ERR (503) */
void cf_eng_unlock(struct cf_eng *e, enum cf_eng_lock which);
/* cf_eng_multiwriter(e): whether other processes may write e's store meanwhile (a read-write
 * PostgreSQL open): what a process keeps in memory about the store (the journal head, the provenance
 * heads) is then only a cache, to be read again under the matching cluster lock. */
bool cf_eng_multiwriter(const struct cf_eng *e);

/* ---- leases and shared counters (cluster mode, issue 24) ------------------------------------ */

/* Coordination between the processes of one database (docs/CLUSTER.md "Leases and shared
 * throttles"). Names and keys are opaque bytes (the model passes keyed hashes, 1..CF_ENG_COORD_KEY_MAX
 * bytes); times are the database's clock, so the nodes' clocks never have to agree. An engine without
 * shared state (RocksDB: one process) answers CF_ENG_NOTFOUND: "use the local, in-process behaviour". */
#define CF_ENG_COORD_KEY_MAX 64
#define CF_ENG_HOLDER_LEN 16
/* cf_eng_shared(e): whether e has shared state (the operations below do more than say CF_ENG_NOTFOUND). */
bool cf_eng_shared(const struct cf_eng *e);
/* cf_eng_lease(e, name, nl, holder, ttl_ms, held, err): takes or renews the lease name for holder (a
 * node id, CF_ENG_HOLDER_LEN bytes) until ttl_ms (1..86400000) from now, if it is free, expired, or
 * already holder's: *held true. Held by another holder and not expired: *held false. Atomic against
 * every other process: at most one holder at any instant of the database's clock. */
int cf_eng_lease(struct cf_eng *e, const void *name, size_t nl, const uint8_t *holder, uint32_t ttl_ms, bool *held,
                 char **err);
/* cf_eng_lease_drop(e, name, nl, holder, err): gives the lease up if holder holds it (else nothing). */
int cf_eng_lease_drop(struct cf_eng *e, const void *name, size_t nl, const uint8_t *holder, char **err);

/* A shared sliding-window counter of failures (src/core/throttle.h's semantics, counted across nodes):
 * each event has an id (increasing in commit order per key) and a time; a key's events inside the
 * window (now - window_ms, now] count. Every operation on one key is serialised in the database. */
enum cf_eng_ctr_op {
    CF_CTR_RESERVE, /* below limit: records one event (*granted, id, at, count); else *granted false, retry */
    CF_CTR_FAIL,    /* records one event, dropping the oldest beyond limit (count) */
    CF_CTR_RELEASE, /* deletes event id (count) */
    CF_CTR_SETTLE,  /* deletes event id and every event of key with a smaller id (count) */
    CF_CTR_RESET,   /* deletes every event of key */
    CF_CTR_COUNT,   /* count (and retry_ms when count >= limit) */
};
struct cf_eng_ctr {
    unsigned limit;     /* in: 1..1024 */
    uint64_t window_ms; /* in: 1..2^40 */
    int64_t id;         /* in: RELEASE/SETTLE (> 0); out: RESERVE/FAIL, the new event's id */
    uint64_t at_ms;     /* out: RESERVE/FAIL: the event's time (database clock, ms since epoch) */
    unsigned count;     /* out: the key's events inside the window after the operation */
    bool granted;       /* out: RESERVE */
    uint64_t retry_ms;  /* out: when count >= limit: ms until the oldest of them leaves the window */
};
int cf_eng_counter(struct cf_eng *e, enum cf_eng_ctr_op op, const void *key, size_t kl, struct cf_eng_ctr *c,
                   char **err);

/* A shared window of sums (the bulk-download alert, src/api/audit.c): per key, the files and bytes
 * added since the window began (it begins again at the first addition window_ms or more after it
 * began), and whether its alert fired in this window. cf_eng_window(e, key, kl, w, err) adds w->files
 * and w->bytes and returns the sums; w->fire is true for exactly one call per window across all
 * nodes: the first whose sums reach files_max or bytes_max (0: no such threshold). Serialised per key. */
struct cf_eng_window {
    uint64_t window_ms;           /* in: 1..2^40 */
    uint64_t files, bytes;        /* in: what to add; out: the sums after it */
    uint64_t files_max, bytes_max; /* in: the thresholds (0: none) */
    bool fire;                    /* out */
};
int cf_eng_window(struct cf_eng *e, const void *key, size_t kl, struct cf_eng_window *w, char **err);

/* ---- backups ------------------------------------------------------------------------------- */

/* A directory of consistent, incremental copies of a store (RocksDB: its BackupEngine, which shares
 * table and blob files between backups). Ids are assigned increasing and never reused. */
struct cf_eng_backups;
struct cf_eng_backup {
    uint32_t id;
    int64_t timestamp; /* seconds since epoch, as the engine recorded it */
    uint64_t size;     /* bytes of every file the backup needs */
    uint32_t files;
};
int cf_eng_backups_open(const char *dir, struct cf_eng_backups **out, char **err);
void cf_eng_backups_close(struct cf_eng_backups *b);
/* Every backup the engine loads, by increasing id; *out malloc'ed (free with free()), NULL if none. */
size_t cf_eng_backups_list(struct cf_eng_backups *b, struct cf_eng_backup **out);
/* A new backup of e (flushed first), consistent across keyspaces. A failure leaves no new backup. */
int cf_eng_backup_create(struct cf_eng_backups *b, struct cf_eng *e, char **err);
/* Deletes all but the newest keep backups (and the files only they used). */
int cf_eng_backups_purge(struct cf_eng_backups *b, uint32_t keep, char **err);
/* The engine's own check of backup id: every file present with its recorded size. */
int cf_eng_backup_verify(struct cf_eng_backups *b, uint32_t id, char **err);
/* Restores backup id into the empty directory to, checking every file's checksum as it copies. */
int cf_eng_backup_restore(struct cf_eng_backups *b, uint32_t id, const char *to, char **err);

#endif
