/*
 * storage.h: Coffer's encrypted store, the public interface of storage/.
 *
 * One RocksDB database with column families (docs/DESIGN.md lists every one, with its key and
 * value layout). RocksDB keys hold only opaque ids, big-endian numbers and keyed hashes; every value
 * that carries user data is a record sealed with AES-256-GCM under a subkey of its tenant's key, with
 * the column family and the RocksDB key as additional data, so no value can be moved to another key.
 * File content is cut into CF_CHUNK_SIZE chunks sealed under a random per-version data key.
 *
 * Key hierarchy: master key (file, outside the store) → KEK (HKDF) → global key and tenant keys
 * (random, stored wrapped) → per-purpose subkeys (HKDF) → data keys (random, wrapped per version).
 *
 * Threads: every function may be called from any thread; RocksDB serialises what it must, and the
 * store serialises namespace changes (names, moves, commits) with one internal mutex. Functions
 * that write user content (chunk puts, commits, purges) are meant for worker threads, not event
 * loops. Records returned to callers are owned by them and released with the matching _clear.
 *
 * This header knows nothing of HTTP; storage/ never includes anything from src/.
 */
#ifndef CF_STORAGE_H
#define CF_STORAGE_H

#include "base.h"
#include "crypto.h"

#define CF_CHUNK_SIZE (1u << 20)  /* plaintext bytes per content chunk (the last may be shorter) */
#define CF_NAME_MAX 255           /* bytes in a node name */
#define CF_CURSOR_LEN 32          /* bytes in a children-listing cursor */
#define CF_RENAME_ATTEMPTS 1000   /* on_conflict=rename: "name (1)" … "name (999)" */

struct cf_store;

/* ---- store lifecycle ------------------------------------------------------------------------ */

/* cf_store_create(dir, master): creates a new, empty store in dir (created 0700 if missing).
 * CF_EEXIST if dir already holds a store. Thread: any, before any cf_store_open of dir. */
enum cf_status cf_store_create(const char *dir, const struct cf_key *master) CF_WUR;

/* cf_store_open(dir, master, out): opens an existing store. CF_ENOTFOUND if dir holds no store,
 * CF_EBUSY if another process holds it, CF_ECRYPTO if master does not open it. On success *out
 * owns the database and the unwrapped keys until cf_store_close. */
enum cf_status cf_store_open(const char *dir, const struct cf_key *master, struct cf_store **out) CF_WUR;

/* cf_store_close(s): flushes and closes; wipes every key held in memory. NULL is ignored. */
void cf_store_close(struct cf_store *s);

/* The metadata cache's bound in bytes for stores opened from now on (docs/DESIGN.md "The metadata
 * cache"; config metadata_cache_mb); 0 disables it. Set before cf_store_open. */
extern size_t cf_store_cache_bytes;
/* cf_store_catch_up(s): cluster mode (docs/CLUSTER.md "Stateless nodes"): applies to this process's
 * metadata cache every change other processes wrote to the shared store since the last call (the
 * engine's change feed), as cf_db_write_raw does for local writes, so that a change acknowledged
 * anywhere before the call is never served from this cache after it. Call it where a request starts
 * (route.c). One round trip on PostgreSQL; nothing on RocksDB (no feed). A feed that cannot be read
 * (CF_EUNAVAIL, CF_EIO) or has lost changes (trimmed) drops the whole cache: the cache is safe either
 * way, and the status is for logs and tests. */
enum cf_status cf_store_catch_up(struct cf_store *s);
/* Cluster mode (issue 24, docs/CLUSTER.md "Ceph RADOS"): chunk bodies in a Ceph RADOS pool instead of
 * the engine's chunks keyspace. Set before cf_store_create / cf_store_open (NULL, the default: in the
 * engine). The strings are referenced only during the open. */
struct cf_store_rados {
    const char *conf, *pool, *user, *keyring; /* ceph.conf, pool, cephx id (no "client."), keyring */
    unsigned op_timeout_s;                    /* bound of every monitor and OSD operation (0: 30) */
    const char *dir; /* only the store of this directory (the data_dir; backups restored elsewhere stay
                        whole in their engine); NULL: every store opened (tests) */
};
extern const struct cf_store_rados *cf_store_rados;
/* cf_store_use_postgres(dir, conninfo, password, timeout_ms): cluster mode (issue 24, docs/CLUSTER.md
 * "PostgreSQL"): the store of dir (the configured data_dir) keeps its key/value metadata in the
 * PostgreSQL database the libpq conninfo names, instead of a RocksDB store in dir; other directories
 * (backups being restored) stay RocksDB. password: NULL, or the one to connect with (copied, wiped when
 * replaced); timeout_ms: statement and connection timeout (0: 30 s). conninfo NULL: RocksDB again.
 * Set before cf_store_create / cf_store_open of dir; thread: the main one, before serving. */
void cf_store_use_postgres(const char *dir, const char *conninfo, const char *password, unsigned timeout_ms);

/* ---- cluster coordination (coord.c, issue 24, docs/CLUSTER.md "Leases and shared throttles") ---- */

/* Leases and shared failure counters between the nodes of one database. A lease or counter is named
 * by a purpose label ("jobs", "tus", "login-account"…) and the caller's bytes (0..CF_COORD_KEY_MAX: a
 * username, an address, an id); the database sees only HMAC-SHA256 of both under a key derived from
 * the global key. Every function answers CF_ENOTFOUND on a store without shared state (RocksDB: one
 * process), meaning "keep the local behaviour"; CF_EINVAL on a bad argument (no label, too long a key,
 * a TTL out of 1..86400000 ms); CF_EUNAVAIL or CF_EIO when the database fails. Times are the
 * database's clock. Any thread; each call is one or a few round trips (not for an event loop in a
 * hot path). */
#define CF_NODE_ID_LEN 16
#define CF_COORD_KEY_MAX 4096
#define CF_COORD_JOBS "jobs"     /* the lease of the background jobs (retention, sweeps, rescans, sync) */
#define CF_COORD_RENEW_MS 3000   /* how often the server renews its claims (cf_coord_renew) */
/* This process's node id: CF_NODE_ID_LEN random bytes chosen at first use, the holder of its leases. */
const uint8_t *cf_coord_node_id(void);
/* cf_coord_shared(s): whether s has shared state (a PostgreSQL store): the cluster behaviour applies. */
bool cf_coord_shared(struct cf_store *s);
/* cf_coord_lease(s, label, key, kl, ttl_ms, held): takes or renews the lease for this node until ttl_ms
 * from now if it is free, expired or already this node's (*held true); *held false if another node
 * holds it. cf_coord_lease_drop gives it up if this node holds it. */
enum cf_status cf_coord_lease(struct cf_store *s, const char *label, const void *key, size_t kl, uint32_t ttl_ms,
                              bool *held) CF_WUR;
enum cf_status cf_coord_lease_drop(struct cf_store *s, const char *label, const void *key, size_t kl) CF_WUR;

/* A shared sliding-window failure counter (src/core/throttle.h's operations, counted across nodes). */
enum cf_coord_op { CF_COORD_RESERVE, CF_COORD_FAIL, CF_COORD_RELEASE, CF_COORD_SETTLE, CF_COORD_RESET, CF_COORD_COUNT };
struct cf_coord_ctr {
    unsigned limit;     /* in: 1..1024 */
    uint64_t window_ms; /* in: 1..2^40 */
    int64_t id;         /* in: RELEASE, SETTLE (> 0); out: RESERVE (granted), FAIL: the event's id */
    uint64_t at_ms;     /* out: RESERVE, FAIL: when it was recorded (database clock, ms since epoch) */
    unsigned count;     /* out: the key's events inside the window after the operation */
    bool granted;       /* out: RESERVE: recorded (count was below limit) */
    uint64_t retry_ms;  /* out: count >= limit: ms until the oldest leaves the window (>= 1) */
};
/* cf_coord_counter(s, op, label, key, kl, c): RESERVE records one event if fewer than limit are in the
 * window (granted); FAIL records one, keeping at most limit; RELEASE deletes event c->id; SETTLE deletes
 * it and every older event of key; RESET deletes every event of key; COUNT reads. Every operation on one
 * key runs alone across all nodes (exact under any concurrency). */
enum cf_status cf_coord_counter(struct cf_store *s, enum cf_coord_op op, const char *label, const void *key,
                                size_t kl, struct cf_coord_ctr *c) CF_WUR;
/* cf_coord_window(s, label, key, kl, w): adds w->files and w->bytes to key's shared window of sums and
 * returns them (engine.h cf_eng_window: the window restarts window_ms after it began; w->fire for the
 * one addition, across all nodes, that first reaches a threshold in a window). CF_ENOTFOUND on a store
 * without shared state (the caller keeps its own sums). */
struct cf_coord_window {
    uint64_t window_ms;            /* in: 1..2^40 */
    uint64_t files, bytes;         /* in: to add; out: the sums */
    uint64_t files_max, bytes_max; /* in: thresholds (0: none) */
    bool fire;                     /* out */
};
enum cf_status cf_coord_window(struct cf_store *s, const char *label, const void *key, size_t kl,
                               struct cf_coord_window *w) CF_WUR;

/* Claims: leases this process keeps renewed while it holds them (cf_coord_renew). A claim is trusted
 * (cf_coord_holds) until 2 s before its lease could expire in the database, measured on this node's
 * monotonic clock from before the request that last took or renewed it; so ttl_ms must exceed
 * 2000 and the renewal period must be well below ttl_ms - 2000. At most 4096 claims at once (CF_ETOOBIG).
 * cf_coord_claim(s, label, key, kl, ttl_ms, got): takes the lease once (*got false: another node, or
 * this process already, holds it). cf_coord_unclaim: gives it up (the lease is dropped). */
enum cf_status cf_coord_claim(struct cf_store *s, const char *label, const void *key, size_t kl, uint32_t ttl_ms,
                              bool *got) CF_WUR;
void cf_coord_unclaim(struct cf_store *s, const char *label, const void *key, size_t kl);
/* cf_coord_want(s, label, ttl_ms, got): a lease (no key) this process wants whenever it can have it
 * (the background jobs): tried now (*got) and again by every cf_coord_renew until held. On a store
 * without shared state: *got true and CF_ENOTFOUND. */
enum cf_status cf_coord_want(struct cf_store *s, const char *label, uint32_t ttl_ms, bool *got) CF_WUR;
/* cf_coord_holds(s, label, key, kl): whether this process holds the claim now (true on a store without
 * shared state: the one process does everything). Memory only. */
bool cf_coord_holds(struct cf_store *s, const char *label, const void *key, size_t kl);
/* cf_coord_renew(s, out): renews every claim and retries every wanted lease; out counts them. */
struct cf_coord_renewal {
    unsigned held, gained, lost, failed; /* held now; wanted ones gained; held ones lost; requests failed */
};
void cf_coord_renew(struct cf_store *s, struct cf_coord_renewal *out);

/* cf_store_is_initialised(dir): whether dir already holds a store (without opening it). */
bool cf_store_is_initialised(const char *dir);

/* cf_store_check(s, out): the offline consistency check (`coffer fsck`): decrypts every chunk of every
 * stored version and compares length and SHA-256 with the version record (corrupt: records that do
 * not open, contents that do not decrypt or do not match), and classifies every content found in
 * the chunks: committed (a version names it), resumable (a tus upload holds it), unfinished (a simple
 * upload or purge that never finished: cf_store_collect_orphans removes it at the next start), or
 * orphan (none of these: a bug, never expected). CF_EIO if the store cannot be read. Thread: any;
 * slow (reads everything). */
struct cf_check_report {
    uint64_t versions, bytes, chunks, corrupt, resumable_contents, unfinished_contents, orphan_contents;
};
enum cf_status cf_store_check(struct cf_store *s, struct cf_check_report *out) CF_WUR;

/* cf_store_on_write_failure(hook): hook(what, message) runs, on the failing thread, whenever
 * RocksDB refuses a write (not for injected CF_FAULT_DB faults, which RocksDB never sees). After an
 * I/O error RocksDB refuses every later write until the database is reopened, so the server stops
 * itself (fail-stop) and recovers from the WAL at the next start. Not for a PostgreSQL store out of
 * reach (several nodes write it: the write answers CF_EUNAVAIL and later ones go through once it is
 * back). Set once, before serving. */
void cf_store_on_write_failure(void (*hook)(const char *what, const char *err));

/* cf_store_collect_orphans(s, out_contents): deletes the chunks of every content that was being
 * written when this node's previous run stopped (simple uploads in flight, interrupted purges): the
 * marks without an owner (a RocksDB store has one process) or owned by this node (cf_store_set_node).
 * In a cluster, other nodes' marks are theirs: live uploads, or collected by cf_store_collect_stale.
 * Call once after open, before serving. *out_contents receives how many contents were collected. */
enum cf_status cf_store_collect_orphans(struct cf_store *s, uint64_t *out_contents) CF_WUR;
/* cf_store_collect_stale(s, older_than_ms, out_contents): the same for every simple-upload or purge
 * mark, whoever owns it, written more than older_than_ms ago: no request or purge lives that long, so
 * its writer died (a node that never came back). The retention job's, on cluster stores. */
enum cf_status cf_store_collect_stale(struct cf_store *s, uint64_t older_than_ms, uint64_t *out_contents) CF_WUR;
/* cf_store_set_node(s, id): this process's node id in a cluster (stable across its restarts: the
 * server keeps it in data_dir), stamped on the pending marks it writes. Once, before serving. */
void cf_store_set_node(struct cf_store *s, const uint8_t id[16]);

/* ---- metadata journal (journal.c, journal_check.c; docs/DESIGN.md §4) ------------------------- */

/* Every write batch of records or index entries also appends, atomically, a MAC'd, hash-chained
 * journal entry naming each key it wrote and the SHA-256 of the new value (or a deletion), and keeps
 * a MAC'd index of the last write of every key. `coffer fsck` replays it (cf_journal_check) and names
 * every key whose stored value is not the last one written. The chain head is also recorded in an
 * anchor file outside data_dir (journal_anchor_file, beside the master key), so that a whole
 * data_dir rolled back to an older copy is refused at open. */

/* The anchor file. cf_anchor_open(path, writable, out, err): opens (writable: creating, 0600) the
 * anchor; call it where the master key is read, before dropping privileges: the store writes it
 * through this descriptor afterwards. Read-only: a missing file is an empty anchor. A file that is
 * not regular or is accessible to group or others is refused (*err, malloc'ed, says why).
 * cf_anchor_reset(a): empties it (a brand-new store, coffer init). cf_anchor_close(NULL) is a no-op. */
struct cf_anchor;
enum cf_status cf_anchor_open(const char *path, bool writable, struct cf_anchor **out, char **err) CF_WUR;
enum cf_status cf_anchor_reset(struct cf_anchor *a) CF_WUR;
void cf_anchor_close(struct cf_anchor *a);

/* cf_store_open_anchored(dir, master, anchor, mode, out): cf_store_open, checking the store against
 * anchor (which it takes over, success or not; NULL: no anchor). CF_EROLLBACK (the reason logged
 * through cf_storage_set_logger) if data_dir is older than the anchor, holds another history, or
 * its journal is damaged; CF_ANCHOR_ACCEPT instead accepts the store as it is: a new journal is
 * started over its records as they are now (so fsck agrees with it from then on) and recorded in
 * the anchor: the operator's override, `coffer journal accept`. */
enum cf_anchor_mode { CF_ANCHOR_CHECK, CF_ANCHOR_ACCEPT };
enum cf_status cf_store_open_anchored(const char *dir, const struct cf_key *master, struct cf_anchor *anchor,
                                      enum cf_anchor_mode mode, struct cf_store **out) CF_WUR;

/* cf_store_anchor_verdict(s, anchor, why): whether the store (opened read-only) continues the history
 * anchor recorded, as cf_store_open_anchored would decide it: CF_OK, or CF_EROLLBACK with the reason
 * in *why (malloc'ed). */
enum cf_status cf_store_anchor_verdict(struct cf_store *s, struct cf_anchor *anchor, char **why) CF_WUR;

/* The journal's state: present (false: a store opened read-only that has none yet), the last entry
 * (seq, written at `at` ms), the oldest entry kept, and how many keys the index holds. */
struct cf_journal_state {
    bool present;
    uint64_t seq, first, keys, at;
};
void cf_journal_describe(struct cf_store *s, struct cf_journal_state *out);

/* One thing cf_journal_check found. kind and cf are NULL for findings about the journal itself;
 * key (klen bytes) is the RocksDB key of the record. what is one of the CF_JFIND_* texts below;
 * detail says more (which entry wrote what). Valid only during the callback. */
struct cf_journal_finding {
    const char *kind;   /* "share record", "node/file record", "file version record", "user record", ... */
    const char *cf;     /* the column family */
    const uint8_t *key;
    size_t klen;
    const char *what;
    const char *detail;
};
#define CF_JFIND_ROLLED_BACK "rolled back to an earlier value"
#define CF_JFIND_NOT_LAST "holds a value that is not the last one written"
#define CF_JFIND_RESURRECTED "resurrected after deletion"
#define CF_JFIND_DELETED "deleted"
#define CF_JFIND_UNJOURNALED "not in the journal"
#define CF_JFIND_INDEX "its journal index entry is not the last one written"
struct cf_journal_report {
    bool present;       /* the store has a journal */
    uint64_t seq, first; /* its last entry, its oldest kept entry */
    uint64_t entries;   /* entries checked (first..seq) */
    uint64_t keys;      /* keys in the index */
    uint64_t records;   /* covered records checked against it */
    uint64_t findings;  /* problems reported */
};
/* cf_journal_check(s, anchor, fn, ctx, out): replays the journal of a store (best opened
 * read-only: beside a running server it sees one consistent moment) and calls fn once per problem:
 * for every covered key whose stored value is not the last one the journal recorded (rolled back,
 * resurrected after deletion, deleted, never journaled), every index entry that disagrees with the
 * kept entries or does not verify; for the journal itself: a missing, altered, truncated or rolled
 * back chain or head, an index whose sum does not match the head, and, with anchor (may be NULL),
 * a store older than the anchor. Returns CF_OK whatever it found (out->findings counts it), CF_EIO
 * if the store cannot be read. Slow: reads every record once. */
enum cf_status cf_journal_check(struct cf_store *s, struct cf_anchor *anchor,
                                void (*fn)(void *ctx, const struct cf_journal_finding *f), void *ctx,
                                struct cf_journal_report *out) CF_WUR;

/* ---- tenants --------------------------------------------------------------------------------- */

#define CF_POLICY_MAX_BLOCKED 64 /* blocked MIME types per tenant */

/* A tenant's policy, set by its admins (SPEC §5 "Admin"). */
struct cf_policy {
    bool require_mfa;              /* every user must use TOTP */
    bool allow_shares;             /* share links may be created */
    uint64_t share_max_expiry_s;   /* 0: the server's shares.max_expiry */
    char *blocked_types[CF_POLICY_MAX_BLOCKED]; /* MIME types uploads may not have */
    size_t nblocked;
    uint64_t bulk_files;           /* alert when one actor downloads more files than this ... */
    uint64_t bulk_bytes;           /* ... or more bytes than this ... */
    uint64_t bulk_window_s;        /* ... within this window; 0 disables the alert */
    char *webhook_url;             /* alerts are POSTed here (https only); NULL: none */
    char *webhook_ca;              /* PEM of an extra CA to trust for it; NULL: system CAs only */
    uint64_t trash_retention_s;    /* trashed nodes are purged this long after their deletion; 0: never */
    uint64_t offboarded_retention_s; /* archived private spaces of offboarded users are purged this long
                                        after the offboarding; 0: never */
    uint64_t version_retention_s;  /* old (non-current) versions are purged this long after they were
                                      replaced; 0: never (issue 21) */
    uint64_t user_quota_bytes;     /* bytes one user may own (current versions of their files); 0: none */
    uint64_t tenant_quota_bytes;   /* bytes the whole tenant may hold; 0: none */
};
void cf_policy_defaults(struct cf_policy *p);
void cf_policy_clear(struct cf_policy *p);

/* ---- usage and quotas (usage.c; docs/API.md "Quotas") ------------------------------------------ */

/* Usage: the current size of every file, live or trashed (old versions do not count), charged to the
 * file's owner and to its tenant, kept in counters that change in the same batch as the commit or
 * purge that changes them. A quota of 0 is no limit. */
struct cf_quota {
    uint64_t user_bytes;   /* policy user_quota_bytes */
    uint64_t tenant_bytes; /* policy tenant_quota_bytes */
};
/* Why a write was refused: which limit, its value, what was used and what the write needed. */
struct cf_quota_refusal {
    bool tenant;           /* the tenant's limit (else the user's) */
    uint64_t quota, used, needed;
};
/* cf_usage_get(s, tenant, user, user_bytes, tenant_bytes): the bytes user (NULL: nobody) and the
 * tenant hold now. Either out may be NULL. Any thread. */
enum cf_status cf_usage_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                            uint64_t *user_bytes, uint64_t *tenant_bytes) CF_WUR;
/* cf_quota_decide(q, user_used, tenant_used, needed, out): CF_OK if needed more bytes fit both limits
 * of q (q NULL or needed <= 0: always), else CF_EQUOTA with *out (may be NULL) naming the first limit
 * exceeded (the user's before the tenant's). Pure. */
enum cf_status cf_quota_decide(const struct cf_quota *q, uint64_t user_used, uint64_t tenant_used, int64_t needed,
                               struct cf_quota_refusal *out) CF_WUR;
/* cf_quota_check(s, tenant, user, q, needed, out): cf_quota_decide against the counters now (the
 * early check at upload creation; the commit checks again under the namespace lock). */
enum cf_status cf_quota_check(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                              const struct cf_quota *q, uint64_t needed, struct cf_quota_refusal *out) CF_WUR;
/* cf_usage_verify(s, tenant, repair, checked, wrong): recomputes the tenant's counters from its
 * nodes and compares (coffer fsck); with repair, rewrites the wrong ones (one synchronous batch).
 * *checked counters compared, *wrong of them differing. */
enum cf_status cf_usage_verify(struct cf_store *s, const struct cf_id *tenant, bool repair, uint64_t *checked,
                               uint64_t *wrong) CF_WUR;

struct cf_tenant {
    struct cf_id id;
    char *name;          /* [a-z0-9-]{1,63} */
    uint64_t created_at; /* ms since epoch */
    struct cf_id root;   /* root folder of the tenant space */
    struct cf_policy policy;
};
void cf_tenant_clear(struct cf_tenant *t);

/* cf_tenant_create(s, name, out): a new tenant with a fresh random key and an empty tenant space.
 * CF_EEXIST if the name is taken, CF_EINVAL if it is not a valid tenant name. */
enum cf_status cf_tenant_create(struct cf_store *s, const char *name, struct cf_tenant *out) CF_WUR;
/* cf_tenant_find(s, name, n, out): resolves a name to a tenant id; CF_ENOTFOUND if none. */
enum cf_status cf_tenant_find(struct cf_store *s, const char *name, size_t n, struct cf_id *out) CF_WUR;
enum cf_status cf_tenant_get(struct cf_store *s, const struct cf_id *id, struct cf_tenant *out) CF_WUR;
/* cf_tenant_put_policy(s, id, p): replaces the tenant's policy. */
enum cf_status cf_tenant_put_policy(struct cf_store *s, const struct cf_id *id, const struct cf_policy *p) CF_WUR;
/* cf_tenant_list(s, out, n): every tenant, as a malloc'ed array of *n records (clear each, free). */
enum cf_status cf_tenant_list(struct cf_store *s, struct cf_tenant **out, size_t *n) CF_WUR;
/* cf_tenant_valid_name(name, n): [a-z0-9-]{1,63}, not starting with '-'. */
bool cf_tenant_valid_name(const char *name, size_t n);

/* cf_tenant_delete(s, id, out_keys): crypto-shreds a tenant. First, in one synchronous batch, its
 * keys (tenant key and every content-key generation) and its name are destroyed: from that moment
 * nothing the tenant ever stored can be decrypted, by this process or from any copy of the live
 * store taken afterwards. Then every record of the tenant is deleted from every column family, the
 * keys column family is compacted so that no older table file keeps the wrapped keys, and the
 * in-memory subkeys are replaced by random ones (an operation already under way seals garbage).
 * Backups taken earlier still hold the wrapped keys: docs/OPERATIONS.md says what that means.
 * *out_keys (may be NULL) gets how many records were deleted (content chunks are not counted).
 * Worker or control threads. */
enum cf_status cf_tenant_delete(struct cf_store *s, const struct cf_id *id, uint64_t *out_keys) CF_WUR;

/* ---- key rotation ----------------------------------------------------------------------------- */

/* cf_store_rotate_master(s, new_master, out_tenants): rewraps the global key and every tenant key
 * under the KEK of new_master in one synchronous batch, then compacts the keys column family so that
 * the old wrapped keys leave the live table files. Content, records and the provenance chain are
 * not rewritten. From then on only new_master opens the store. CF_EINVAL if new_master equals the
 * current master key. Online (any thread); concurrent operations are unaffected. */
enum cf_status cf_store_rotate_master(struct cf_store *s, const struct cf_key *new_master,
                                      uint64_t *out_tenants) CF_WUR;

/* The report of a tenant content-key rotation. */
struct cf_rotate_report {
    uint32_t generation;      /* the new content-key generation */
    uint64_t versions;        /* file versions whose data key was rewrapped */
    uint64_t uploads;         /* resumable uploads whose data key was rewrapped */
    uint32_t retired;         /* older generations destroyed */
};
struct cf_tus_claim;
/* cf_tenant_rotate_key(s, tenant, claim, out): the tenant's content key (which wraps every data
 * key) is replaced: a new random generation becomes current (new uploads use it at once), every
 * stored data key of the tenant is rewrapped under it (versions under the namespace lock, resumable
 * uploads each while claim holds it, retrying busy ones), and then the older generations are
 * destroyed. Content is not rewritten. claim may be NULL when nothing else uses the store. */
enum cf_status cf_tenant_rotate_key(struct cf_store *s, const struct cf_id *tenant, const struct cf_tus_claim *claim,
                                    struct cf_rotate_report *out) CF_WUR;

/* ---- users ----------------------------------------------------------------------------------- */

enum cf_role { CF_ROLE_MEMBER = 0, CF_ROLE_ADMIN = 1, CF_ROLE_AUDITOR = 2 };
enum cf_user_status { CF_USER_ACTIVE = 0, CF_USER_FROZEN = 1, CF_USER_OFFBOARDED = 2 };
#define CF_RECOVERY_CODES 10  /* recovery codes issued at a time */
#define CF_RECOVERY_TAG_LEN 4 /* leading characters of a code stored beside its hash to find it */
/* Where a user, group or department comes from (issue 23): made here, or kept by the directory sync
 * (src/ops/directory.c), which owns its names, e-mail and status. Records without it are local. */
enum cf_source { CF_SOURCE_LOCAL = 0, CF_SOURCE_DIRECTORY = 1 };

struct cf_user {
    struct cf_id id;
    struct cf_id tenant;
    char *username;        /* [A-Za-z0-9._@-]{1,64}; unique per tenant, case-insensitively */
    char *display_name;    /* free text, ≤ 255 bytes, may be NULL */
    enum cf_role role;
    enum cf_user_status status;
    char *pwhash;          /* Argon2id encoded hash ("$argon2id$v=19$m=..."); wiped on clear */
    uint64_t created_at;   /* ms since epoch */
    uint64_t updated_at;   /* ms since epoch */
    struct cf_id private_root; /* root folder of the user's private space */
    /* TOTP (RFC 6238): secrets live only inside the sealed record and are wiped on clear */
    bool totp_enabled;
    uint8_t totp_secret[20];
    bool totp_pending;           /* an enrolment awaiting confirmation */
    uint8_t totp_pending_secret[20];
    uint64_t totp_last_step;     /* the last accepted time step: codes at or before it are refused */
    /* Recovery (issue 21): what an admin reset asks of the next login, and the unused recovery
     * codes, each "TAG$" + the Argon2id encoding of the whole code (TAG: its first CF_RECOVERY_TAG_LEN
     * characters, to pick the one hash to verify); wiped on clear */
    bool must_change_password;   /* the next login gets a session that may only change the password */
    bool must_enrol_totp;        /* the next login gets a session that must enrol TOTP first */
    size_t nrecovery;
    char *recovery[CF_RECOVERY_CODES];
    /* The directory (issue 23): absent in older records (local, NULL, 0) */
    enum cf_source source;       /* directory: username, display_name, email and status are the sync's */
    char *email;                 /* ≤ 254 bytes, may be NULL */
    char *directory_id;          /* the LDAP entry's entryUUID, else its DN; NULL for local users */
    uint64_t directory_gone_at;  /* ms since epoch the sync first missed the entry; 0: present */
};
void cf_user_clear(struct cf_user *u);

/* cf_user_create(s, u): stores a new user in u->tenant; assigns u->id and creates the private space
 * (u->private_root). CF_EEXIST if the username is taken in that tenant. */
enum cf_status cf_user_create(struct cf_store *s, struct cf_user *u) CF_WUR;
/* cf_user_update(s, tenant, id, mutate, ctx, out): read-modify-write of one user under the store's
 * lock: mutate(u, ctx) changes only the fields its caller owns and returns CF_OK to store the result
 * or a status to abort with (nothing written). Concurrent updates never undo each other (a login
 * stamping its TOTP step cannot resurrect a frozen account). *out (may be NULL) gets the stored user. */
enum cf_status cf_user_update(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                              enum cf_status (*mutate)(struct cf_user *u, void *ctx), void *ctx,
                              struct cf_user *out) CF_WUR;
/* cf_device_any(s, tenant, user, any): whether any device was ever recorded for the user. */
enum cf_status cf_device_any(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user, bool *any) CF_WUR;
/* cf_user_put(s, u): rewrites an existing user's record (role, status, names, password hash);
 * CF_ENOTFOUND if the user does not exist. The username index is not touched: usernames do not
 * change. */
enum cf_status cf_user_put(struct cf_store *s, const struct cf_user *u) CF_WUR;
enum cf_status cf_user_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                           struct cf_user *out) CF_WUR;
enum cf_status cf_user_find(struct cf_store *s, const struct cf_id *tenant, const char *username, size_t n,
                            struct cf_id *out) CF_WUR;
/* cf_user_list(s, tenant, out, n): every user of the tenant (clear each, free the array). */
enum cf_status cf_user_list(struct cf_store *s, const struct cf_id *tenant, struct cf_user **out, size_t *n) CF_WUR;
/* cf_user_valid_name(name, n): [A-Za-z0-9._@-]{1,64}. */
bool cf_user_valid_name(const char *name, size_t n);

/* ---- sessions -------------------------------------------------------------------------------- */

/* A session is found by the SHA-256 of its 256-bit token; the token itself is never stored. */
enum {
    CF_SESSION_API_TOKEN = 1u << 0,   /* created by POST /me/tokens, not by a login */
    CF_SESSION_MFA_ENROL = 1u << 1,   /* may only enrol TOTP (tenant requires MFA, user has none) */
    CF_SESSION_PW_CHANGE = 1u << 2,   /* may only change the password (an admin reset it) */
    CF_SESSION_APP_PASSWORD = 1u << 3, /* an app password (POST /me/app-passwords): found by a keyed
                                          hash (cf_app_password_hash), HTTP Basic only, never a
                                          bearer token or cookie */
};
struct cf_session {
    uint8_t hash[CF_SHA256_LEN];      /* SHA-256(token): the key */
    struct cf_id id;                  /* public handle for listing and revoking */
    struct cf_id tenant;
    struct cf_id user;
    unsigned flags;                   /* CF_SESSION_* */
    char *name;                       /* API tokens: the owner's label, ≤ 128 bytes */
    uint8_t csrf_hash[CF_SHA256_LEN]; /* SHA-256 of the session's CSRF token */
    uint64_t created_at;              /* ms since epoch */
    uint64_t expires_at;              /* ms since epoch */
    char *ip;                         /* client address at login */
    char *user_agent;                 /* at login, ≤ 512 bytes */
    uint64_t last_used_at;            /* app passwords: last use (ms, at most a minute stale); 0: never */
    char *last_used_ip;               /* app passwords: the address of that use, or NULL */
};
void cf_session_clear(struct cf_session *ss);
/* cf_session_put(s, ss): stores a session (and its per-user index entry); ss->id must be set. */
enum cf_status cf_session_put(struct cf_store *s, const struct cf_session *ss) CF_WUR;
/* cf_session_get(s, hash, out): CF_ENOTFOUND if no such session (expiry is the caller's check). */
enum cf_status cf_session_get(struct cf_store *s, const uint8_t hash[CF_SHA256_LEN], struct cf_session *out) CF_WUR;
/* cf_session_delete(s, hash): ends a session; CF_OK if it was already gone. */
enum cf_status cf_session_delete(struct cf_store *s, const uint8_t hash[CF_SHA256_LEN]) CF_WUR;
/* cf_session_list(s, tenant, user, out, n): the user's sessions and API tokens. */
enum cf_status cf_session_list(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                               struct cf_session **out, size_t *n) CF_WUR;
/* cf_session_delete_by_id(s, tenant, user, id): CF_ENOTFOUND unless the user has that session. */
enum cf_status cf_session_delete_by_id(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                                       const struct cf_id *id) CF_WUR;
/* cf_session_delete_all(s, tenant, user, except): ends every session of the user but except (may
 * be NULL). */
enum cf_status cf_session_delete_all(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                                     const uint8_t *except) CF_WUR;
/* cf_session_trim(s, tenant, user, keep, ended): ends the user's expired login sessions and then the
 * oldest ones until at most keep remain (API tokens are neither counted nor ended); *ended (may be
 * NULL) gets how many live sessions it ended. */
enum cf_status cf_session_trim(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user, size_t keep,
                               size_t *ended) CF_WUR;

/* App passwords (issue 22) are sessions flagged CF_SESSION_APP_PASSWORD whose key is not SHA-256 of
 * a token but HMAC-SHA-256 under the tenant's index key of "app-password" ‖ 0 ‖ the secret: O(1)
 * lookup, and a stolen store alone cannot test guesses offline. They end with every other session
 * (cf_session_delete_all: password change, admin reset, freeze, offboard). */
/* cf_app_password_hash(s, tenant, secret, n, out): that keyed hash; CF_ENOTFOUND if the tenant is gone. */
enum cf_status cf_app_password_hash(struct cf_store *s, const struct cf_id *tenant, const char *secret, size_t n,
                                    uint8_t out[CF_SHA256_LEN]) CF_WUR;
/* cf_app_password_put(s, ss, max): stores ss (an app password) unless the user already has max of
 * them (CF_EEXIST); counted and written under one lock, so parallel creations cannot pass max. */
enum cf_status cf_app_password_put(struct cf_store *s, const struct cf_session *ss, size_t max) CF_WUR;
/* cf_session_touch(s, hash, at, ip): records a use (last_used_at, last_used_ip) of a session that
 * still exists (a session ended meanwhile stays ended: the read and the write hold the lock that every
 * deletion takes); not a synchronous write. CF_ENOTFOUND if it is gone. */
enum cf_status cf_session_touch(struct cf_store *s, const uint8_t hash[CF_SHA256_LEN], uint64_t at,
                                const char *ip) CF_WUR;

/* ---- nodes ----------------------------------------------------------------------------------- */

enum cf_node_type { CF_NODE_FOLDER = 1, CF_NODE_FILE = 2 };
enum cf_space_kind { CF_SPACE_NONE = 0, CF_SPACE_PRIVATE = 1, CF_SPACE_TENANT = 2 };

/* How a file version's content was checked before it became visible (issue 6): recorded with the
 * version and copied onto the node, shown in its metadata. Strings are printable ASCII. */
struct cf_scan_summary {
    char *result;    /* "clean"; "unscannable" (admitted by scan.on_unscannable: allow); "unchecked"
                      * (a development server without signatures) */
    char *detail;    /* for "unscannable": why, e.g. "Heuristics.Encrypted.Zip"; else NULL */
    char *engine;    /* "ClamAV 1.4.6" */
    char *database;  /* the signature database's digest */
    uint64_t at;     /* ms since epoch */
};
void cf_scan_summary_clear(struct cf_scan_summary *s);

struct cf_node {
    struct cf_id id;
    struct cf_id tenant;
    struct cf_id parent;     /* zero for a space root */
    struct cf_id owner;      /* the creating user; zero for the tenant space root */
    enum cf_node_type type;
    enum cf_space_kind root_kind; /* CF_SPACE_NONE except on space roots */
    char *name;              /* validated name; "" for space roots */
    uint64_t created_at;     /* ms since epoch */
    uint64_t modified_at;    /* ms since epoch */
    uint64_t trashed_at;     /* ms since epoch; 0 while live */
    uint64_t archived_at;    /* private roots of offboarded users: nobody may read below; 0 otherwise */
    /* files only: a copy of the current version's summary */
    uint32_t version;        /* current version number, from 1 */
    uint64_t size;           /* bytes */
    uint8_t sha256[CF_SHA256_LEN];
    char *mime;              /* detected type, e.g. "image/png" */
    struct cf_scan_summary scan; /* files: how the current version was checked (empty for old records) */
};
void cf_node_clear(struct cf_node *n);

/* cf_node_get(s, tenant, id, out): CF_ENOTFOUND if no such node in that tenant (trashed nodes are
 * returned; callers decide what a trashed node means). */
enum cf_status cf_node_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                           struct cf_node *out) CF_WUR;
/* cf_node_find_child(s, tenant, parent, name, n, out): the id of parent's live child named name. */
enum cf_status cf_node_find_child(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *parent,
                                  const char *name, size_t n, struct cf_id *out) CF_WUR;
/* cf_folder_create(s, tenant, parent, name, n, owner, out): CF_EEXIST if the name is taken,
 * CF_ENOTFOUND if parent is not a live folder. The name must already be validated. */
enum cf_status cf_folder_create(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *parent,
                                const char *name, size_t n, const struct cf_id *owner, struct cf_node *out) CF_WUR;

/* cf_children_list(s, tenant, parent, cursor, limit, items, n, next): up to limit live children of
 * parent in a stable order (by keyed hash of the name), starting after cursor (NULL: from the
 * start). *items is a malloc'ed array of *n nodes (clear each, free the array). *has_more says
 * whether a further page exists; next then holds its cursor. */
enum cf_status cf_children_list(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *parent,
                                const uint8_t *cursor, size_t limit, struct cf_node **items, size_t *n,
                                uint8_t next[CF_CURSOR_LEN], bool *has_more) CF_WUR;

/* cf_node_move(s, tenant, id, new_parent, new_name, n, out): rename and/or move (NULL leaves that
 * part unchanged). CF_EEXIST on a name conflict, CF_EINVAL when a folder would move into itself or
 * its subtree, CF_ENOTFOUND when the node or the target is gone. *out gets the updated node. */
enum cf_status cf_node_move(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                            const struct cf_id *new_parent, const char *new_name, size_t n,
                            struct cf_node *out) CF_WUR;

/* A move's access decision (src/acl.c), called under the namespace lock with the loaded node and
 * the destination folder; anything but CF_OK refuses the move with that status. */
typedef enum cf_status (*cf_move_check_fn)(void *ctx, const struct cf_node *node, const struct cf_id *dest);
/* cf_node_move_checked(...): cf_node_move that, when the parent changes, asks check (if not NULL)
 * under the namespace lock, after the cycle check and before the write. */
enum cf_status cf_node_move_checked(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                    const struct cf_id *new_parent, const char *new_name, size_t n,
                                    cf_move_check_fn check, void *ctx, struct cf_node *out) CF_WUR;
/* cf_node_move_replacing(..., replace, ...): cf_node_move_checked that, when node replace holds the
 * destination name, moves it to the trash (as cf_node_trash) in the same batch as the move: both
 * happen or neither (WebDAV MOVE with Overwrite: T). replace NULL, or no longer there: a plain move. */
enum cf_status cf_node_move_replacing(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                      const struct cf_id *new_parent, const char *new_name, size_t n,
                                      const struct cf_id *replace, cf_move_check_fn check, void *ctx,
                                      struct cf_node *out) CF_WUR;

/* cf_node_trash(s, tenant, id): moves a node (and so its subtree) to the trash: it leaves its
 * folder, its name becomes free, its record is kept with trashed_at set. */
enum cf_status cf_node_trash(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id) CF_WUR;

/* cf_node_purge(s, tenant, id): destroys a node and its whole subtree for good, trashed descendants
 * included: first the data keys of every version (one synchronous batch), then the chunks. A
 * space root is refused (CF_EDENIED). Worker threads only. */
enum cf_status cf_node_purge(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id) CF_WUR;
/* cf_space_purge(s, tenant, root): the same for a whole space, its root included (retention of an
 * offboarded user's archived space). */
enum cf_status cf_space_purge(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *root) CF_WUR;
/* cf_space_handover(s, tenant, root, dest, name, n, out): a private space root becomes the folder
 * `name` inside folder dest (offboarding: the successor receives the space, its grants kept).
 * CF_EEXIST if the name is taken in dest, CF_EINVAL if root is not a private space root. */
enum cf_status cf_space_handover(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *root,
                                 const struct cf_id *dest, const char *name, size_t n, struct cf_node *out) CF_WUR;

/* cf_trash_expired(s, tenant, cutoff_ms, out, n): the ids of the nodes trashed before cutoff_ms (the
 * tops of trashed subtrees; malloc'ed). */
enum cf_status cf_trash_expired(struct cf_store *s, const struct cf_id *tenant, uint64_t cutoff_ms, struct cf_id **out,
                                size_t *n) CF_WUR;

/* ---- trash and old versions (issue 21: node.c, content.c) ------------------------------------ */

/* One top of a trashed subtree: the node that was deleted (what lies below it went with it). */
struct cf_trash_item {
    struct cf_id id;
    uint64_t trashed_at; /* ms since epoch */
};
/* cf_trash_list(s, tenant, out, n): every trashed top of the tenant, newest first (equal times by
 * id, descending); *out malloc'ed (free it). Access is the caller's to decide. */
enum cf_status cf_trash_list(struct cf_store *s, const struct cf_id *tenant, struct cf_trash_item **out,
                             size_t *n) CF_WUR;
/* cf_node_restore(s, tenant, id, dest, rename, check, ctx, gone, out): brings trashed top id back
 * into folder dest (NULL: the folder it was deleted from), under its old name, or with rename the
 * first free "name (k).ext" when that is taken; its subtree comes back with it (items trashed on
 * their own stay in the trash). Under the namespace lock: dest must be a live folder with no trashed
 * ancestor (else CF_ENOTFOUND with *gone set), then check(ctx, node, dest) decides access (NULL:
 * allowed), then the name. CF_EINVAL if id is not a trashed top (live, or below a trashed folder),
 * CF_ENOTFOUND (*gone false) if id does not exist, CF_EEXIST on a name conflict without rename.
 * *out gets the restored node. One synchronous batch. */
enum cf_status cf_node_restore(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                               const struct cf_id *dest, bool rename, cf_move_check_fn check, void *ctx, bool *gone,
                               struct cf_node *out) CF_WUR;

/* A stored version of a file, as its sealed version record says. */
struct cf_version_info {
    uint32_t version;
    uint64_t size;
    uint8_t sha256[CF_SHA256_LEN];
    char *mime;
    uint64_t created_at;         /* ms since epoch: when it was committed (and so when the one before
                                    it was replaced) */
    struct cf_id uploader;
    struct cf_scan_summary scan; /* the verdict that admitted it (empty for old records) */
};
void cf_version_info_clear(struct cf_version_info *v);
/* cf_versions_list(s, tenant, file, out, n): every stored version of a file, oldest first (*out
 * malloc'ed: clear each, free). A folder or an unknown id has none (*n 0). */
enum cf_status cf_versions_list(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *file,
                                struct cf_version_info **out, size_t *n) CF_WUR;
/* cf_version_get(s, tenant, file, version, out): one version; CF_ENOTFOUND if it is not stored. */
enum cf_status cf_version_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *file,
                              uint32_t version, struct cf_version_info *out) CF_WUR;
/* cf_version_restore(s, tenant, file, version, uploader, may, ctx, out): the bytes of an old
 * version become a new current version of the same file (version + 1), copied chunk by chunk under
 * a fresh content id and data key (every content belongs to exactly one version, so that purging
 * one never touches another), with the old version's type and scan verdict and uploader as its
 * uploader. The commit is one synchronous batch under the namespace lock, after may(ctx, node)
 * (NULL: allowed; false: CF_EDENIED) and, when quota is not NULL and the file grows, the quota
 * decision for its owner (CF_EQUOTA with *refused filled, as cf_upload_commit does). CF_ENOTFOUND if
 * the file (live) or the version is gone, CF_ECORRUPT if its content fails authentication. Worker
 * threads (reads and writes the content). */
enum cf_status cf_version_restore(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *file,
                                  uint32_t version, const struct cf_id *uploader,
                                  bool (*may)(void *ctx, const struct cf_node *existing), void *ctx,
                                  const struct cf_quota *quota, struct cf_quota_refusal *refused,
                                  struct cf_node *out) CF_WUR;
/* A version purged by cf_versions_expire. */
struct cf_version_ref {
    struct cf_id file;
    uint32_t version;
    uint64_t size;
    uint64_t replaced_at; /* ms: when the next stored version was committed */
};
/* cf_versions_expire(s, tenant, cutoff_ms, out, n): purges every old version of the tenant's files
 * that was replaced before cutoff_ms (replaced: the next stored version was committed then; the
 * current version is never purged): its record (with the only wrapped copy of its data key) goes in
 * one synchronous batch per file with a pending-purge mark, then its chunks, as cf_node_purge does.
 * *out (malloc'ed, may be NULL when *n is 0) lists what was purged. Worker threads. */
enum cf_status cf_versions_expire(struct cf_store *s, const struct cf_id *tenant, uint64_t cutoff_ms,
                                  struct cf_version_ref **out, size_t *n) CF_WUR;

/* cf_unchecked_files(s, tenant, out, n): the files (live or trashed) whose current version was
 * accepted unscanned (scan.result "unchecked": a development server without signatures). *out is
 * malloc'ed. A walk over the tenant's nodes (storage/rescan.c). */
enum cf_status cf_unchecked_files(struct cf_store *s, const struct cf_id *tenant, struct cf_id **out,
                                  size_t *n) CF_WUR;
/* cf_node_set_scan(s, tenant, id, version, scan, changed): records a later verdict on file id, only
 * if its current version is still `version` and still "unchecked" (*changed says whether it was). */
enum cf_status cf_node_set_scan(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                uint32_t version, const struct cf_scan_summary *scan, bool *changed) CF_WUR;

/* cf_node_archive(s, tenant, id): marks a space root archived (offboarding). */
enum cf_status cf_node_archive(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id) CF_WUR;

/* ---- groups ---------------------------------------------------------------------------------- */

struct cf_group {
    struct cf_id id;
    struct cf_id tenant;
    char *name;          /* ≤ 128 bytes, unique per tenant case-insensitively (ASCII) */
    uint64_t created_at; /* ms since epoch */
    enum cf_source source; /* directory: kept by the sync (name, members); absent in older records: local */
    char *directory_id;  /* the LDAP entry's entryUUID, else its DN; NULL for local groups */
};
void cf_group_clear(struct cf_group *g);
/* cf_group_create(s, tenant, name, out): CF_EEXIST if the name is taken. A local group. */
enum cf_status cf_group_create(struct cf_store *s, const struct cf_id *tenant, const char *name,
                               struct cf_group *out) CF_WUR;
/* cf_group_create_from(s, tenant, name, source, directory_id, out): the same with its source and,
 * for a directory group, its entry's id (may be NULL). */
enum cf_status cf_group_create_from(struct cf_store *s, const struct cf_id *tenant, const char *name,
                                    enum cf_source source, const char *directory_id, struct cf_group *out) CF_WUR;
enum cf_status cf_group_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                            struct cf_group *out) CF_WUR;
enum cf_status cf_group_list(struct cf_store *s, const struct cf_id *tenant, struct cf_group **out, size_t *n) CF_WUR;
/* cf_group_set_members(s, tenant, group, users, n): replaces the member set in one batch. */
enum cf_status cf_group_set_members(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *group,
                                    const struct cf_id *users, size_t n) CF_WUR;
/* cf_group_members(s, tenant, group, out, n) and cf_user_groups(s, tenant, user, out, n): ids. */
enum cf_status cf_group_members(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *group,
                                struct cf_id **out, size_t *n) CF_WUR;
enum cf_status cf_user_groups(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                              struct cf_id **out, size_t *n) CF_WUR;
/* cf_group_rename(s, tenant, id, name, out): renames a group (name validated by the caller);
 * CF_EEXIST if another group of the tenant has that name (ASCII case-insensitively), CF_ENOTFOUND if
 * there is no such group. *out gets the renamed group. */
enum cf_status cf_group_rename(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                               const char *name, struct cf_group *out) CF_WUR;
/* cf_group_delete(s, tenant, id): deletes the group, its name and every membership in one batch, so
 * that nobody holds it any more (ACL entries naming it are the caller's to drop: cf_acl_put). Group
 * ids are random and never reused: a new group of the same name is another principal. */
enum cf_status cf_group_delete(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id) CF_WUR;
/* cf_user_delete(s, tenant, id): deletes an offboarded user's record, username (free to reuse),
 * memberships, sessions index, login history, devices and alerts, in one batch. CF_EEXIST if the
 * user is not offboarded, CF_ENOTFOUND if there is no such user. Provenance events, which name the
 * user, are not touched; ACL entries naming the user are the caller's to drop. */
enum cf_status cf_user_delete(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id) CF_WUR;

/* ---- departments (issue 23, storage/dept.c) --------------------------------------------------- */

#define CF_DEPT_NAME_MAX 128
#define CF_DEPT_MAX_DEPTH 32 /* levels below the top (a create or move deeper is CF_EINVAL) */
#define CF_DEPT_MAX_PER_USER 64 /* primary and others together */

struct cf_dept {
    struct cf_id id, tenant, parent; /* parent zero: top level */
    char *name;                      /* ≤ 128 bytes, unique among siblings case-insensitively (ASCII) */
    enum cf_source source;
    uint64_t created_at;             /* ms since epoch */
};
void cf_dept_clear(struct cf_dept *d);
/* cf_dept_create(s, tenant, parent (NULL: top), name, source, out): CF_EEXIST if a sibling has the
 * name, CF_ENOTFOUND if parent does not exist, CF_EINVAL for an empty or too long name or a tree
 * deeper than CF_DEPT_MAX_DEPTH. */
enum cf_status cf_dept_create(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *parent,
                              const char *name, enum cf_source source, struct cf_dept *out) CF_WUR;
enum cf_status cf_dept_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                           struct cf_dept *out) CF_WUR;
/* cf_dept_list(s, tenant, out, n): every department of the tenant (clear each, free the array). */
enum cf_status cf_dept_list(struct cf_store *s, const struct cf_id *tenant, struct cf_dept **out, size_t *n) CF_WUR;
/* cf_dept_rename(s, tenant, id, name, out): CF_EEXIST if a sibling has the name. */
enum cf_status cf_dept_rename(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id, const char *name,
                              struct cf_dept *out) CF_WUR;
/* cf_dept_move(s, tenant, id, parent (NULL: top), out): CF_EINVAL for a cycle (parent is id or one
 * of its descendants) or a tree too deep, CF_EEXIST if the new parent has a child of the same name,
 * CF_ENOTFOUND if id or parent does not exist. */
enum cf_status cf_dept_move(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                            const struct cf_id *parent, struct cf_dept *out) CF_WUR;
/* cf_dept_delete(s, tenant, id): CF_EEXIST if it has sub-departments or members. ACL entries naming
 * it are the caller's to drop (as for groups); ids are random and never reused. */
enum cf_status cf_dept_delete(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id) CF_WUR;
/* cf_user_set_depts(s, tenant, user, primary (NULL or zero: none), others, n): replaces the user's
 * departments whole, in one batch (an other equal to the primary is dropped, duplicates too).
 * CF_ENOTFOUND if a department does not exist, CF_EINVAL if more than CF_DEPT_MAX_PER_USER. The user
 * is not checked (the caller does). */
enum cf_status cf_user_set_depts(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                                 const struct cf_id *primary, const struct cf_id *others, size_t n) CF_WUR;
/* cf_user_depts(s, tenant, user, primary, others, n): the user's departments (primary zero if none;
 * free *others). Read through the metadata cache. */
enum cf_status cf_user_depts(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                             struct cf_id *primary, struct cf_id **others, size_t *n) CF_WUR;
/* cf_dept_members(s, tenant, dept, out, n): the users who have the department (primary or other). */
enum cf_status cf_dept_members(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *dept,
                               struct cf_id **out, size_t *n) CF_WUR;
/* cf_dept_ancestors(s, tenant, id, out, n): id's parent, its parent, … up to the top (free *out);
 * through the metadata cache. CF_ECORRUPT if the chain is broken or too long. */
enum cf_status cf_dept_ancestors(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                 struct cf_id **out, size_t *n) CF_WUR;

/* ---- access control lists -------------------------------------------------------------------- */

enum cf_principal_kind {
    CF_PRINCIPAL_USER = 1,
    CF_PRINCIPAL_GROUP = 2,
    CF_PRINCIPAL_TENANT = 3,
    CF_PRINCIPAL_DEPT = 4, /* everyone whose departments include it (issue 23) */
};
#define CF_ACL_MAX_ENTRIES 256

struct cf_acl_entry {
    enum cf_principal_kind kind;
    struct cf_id principal; /* zero for CF_PRINCIPAL_TENANT */
    uint8_t level;          /* 1 view, 2 download, 3 edit, 4 manage (src/acl.h) */
    bool subdepartments;    /* CF_PRINCIPAL_DEPT only: the members of its sub-departments too */
};

/* cf_acl_get(s, tenant, node, out, n): the node's own entries (n = 0 if none; free *out). */
enum cf_status cf_acl_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                          struct cf_acl_entry **out, size_t *n) CF_WUR;
/* cf_acl_put(s, tenant, node, e, n): replaces the node's entries and the grants index, in one batch. */
enum cf_status cf_acl_put(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node,
                          const struct cf_acl_entry *e, size_t n) CF_WUR;

struct cf_grant {
    struct cf_id node;
    uint8_t level;
    bool subdepartments; /* a department entry's flag */
};
/* cf_grants_of(s, tenant, kind, principal, out, n): every node on which the principal has an entry. */
enum cf_status cf_grants_of(struct cf_store *s, const struct cf_id *tenant, enum cf_principal_kind kind,
                            const struct cf_id *principal, struct cf_grant **out, size_t *n) CF_WUR;

/* ---- login history, devices, alerts ---------------------------------------------------------- */

#define CF_LOGINS_KEPT 30  /* per user, newest first */
#define CF_ALERTS_KEPT 200 /* per user */

struct cf_login {
    uint64_t at;         /* ms since epoch */
    char *ip;
    char *user_agent;
    char *result;        /* "ok", "failed", "mfa_failed", "frozen", "rate_limited" */
    bool new_device;
};
void cf_login_clear(struct cf_login *l);
/* cf_login_record(s, tenant, user, l): appends, dropping entries past CF_LOGINS_KEPT. */
enum cf_status cf_login_record(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                               const struct cf_login *l) CF_WUR;
/* cf_login_list(s, tenant, user, out, n): newest first. */
enum cf_status cf_login_list(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                             struct cf_login **out, size_t *n) CF_WUR;

/* cf_device_seen(s, tenant, user, fp, n, is_new): records the device fingerprint (user agent and
 * network, chosen by the caller); *is_new says whether it was unknown until now. */
enum cf_status cf_device_seen(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                              const void *fp, size_t n, bool *is_new) CF_WUR;

struct cf_alert {
    struct cf_id id;
    uint64_t at;      /* ms since epoch */
    char *kind;       /* "alert.new_device", ... */
    char *detail;     /* JSON object text */
};
void cf_alert_clear(struct cf_alert *a);
/* cf_alert_add(s, tenant, user, kind, detail): appends, dropping entries past CF_ALERTS_KEPT. */
enum cf_status cf_alert_add(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                            const char *kind, const char *detail) CF_WUR;
/* cf_alert_list(s, tenant, user, out, n): newest first. */
enum cf_status cf_alert_list(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                             struct cf_alert **out, size_t *n) CF_WUR;

/* ---- share links ----------------------------------------------------------------------------- */

enum cf_share_perm { CF_SHARE_VIEW = 1, CF_SHARE_DOWNLOAD = 2 };
#define CF_SHARE_CODE_MAX 16

struct cf_share {
    struct cf_id id;
    struct cf_id tenant;
    struct cf_id node;             /* the shared file or folder */
    struct cf_id creator;
    enum cf_share_perm permission;
    uint64_t created_at;           /* ms since epoch */
    uint64_t expires_at;           /* ms since epoch */
    uint64_t revoked_at;           /* ms since epoch; 0 while not revoked */
    uint64_t max_downloads;        /* 0: no limit; else the byte budget is max_downloads × size (below) */
    uint64_t downloads;            /* the download figure: file link, ⌈(bytes_served − bytes_credit) / size⌉
                                    * at its last draw; folder link, the sum of its members' figures; a
                                    * record from before byte budgets (budget_legacy), downloads that
                                    * started at byte 0 */
    uint64_t bytes_served;         /* original bytes reserved by responses and not given back (file link);
                                    * the sum over the members (folder link) */
    uint64_t bytes_credit;         /* file link: resume allowance granted by cut transfers so far, at most
                                    * CF_SHARE_RESUME_ALLOWANCE; it raises the budget by as much */
    bool budget_legacy;            /* written before byte budgets: bytes_served is unknown and taken as
                                    * downloads × size at the next draw (which converts the record) */
    uint64_t suspended_at;         /* ms since epoch; 0 unless suspended because its creator was frozen
                                    * (kept on unfreezing unless the admin restores the links) */
    bool internal_only;            /* recipients must also be logged-in members of the tenant */
    char *token;                   /* the link token text (for the creator's display; sealed at rest) */
    uint8_t token_hash[CF_SHA256_LEN];
    char *code;                    /* the extraction code as created (for the creator; sealed at rest) */
    uint8_t code_mac[CF_SHA256_LEN]; /* keyed MAC of the case-folded code: what unlocking checks */
};
void cf_share_clear(struct cf_share *sh);

/* cf_share_code_mac(s, tenant, share, code, n, out): HMAC(tenant share-code key, share ‖ upper(code)).
 * Codes are matched case-insensitively (ASCII). */
enum cf_status cf_share_code_mac(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *share,
                                 const char *code, size_t n, uint8_t out[CF_SHA256_LEN]) CF_WUR;
/* cf_share_code_fold(code, n, up): the form of a code that cf_share_code_mac keys: its first
 * CF_SHARE_CODE_MAX bytes with ASCII letters upper-cased, into up; returns its length. Longer input
 * is never a valid code, and the MAC of a prefix will not match. Pure, any thread. */
size_t cf_share_code_fold(const char *code, size_t n, char up[CF_SHARE_CODE_MAX]);
/* cf_share_create(s, sh): stores a new share (sh->id, token, token_hash, code, code_mac set by the
 * caller) with its token, node and creator index entries, in one synchronous batch. */
enum cf_status cf_share_create(struct cf_store *s, const struct cf_share *sh) CF_WUR;
enum cf_status cf_share_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                            struct cf_share *out) CF_WUR;
/* cf_share_find(s, token_hash, out): the share of a link token; CF_ENOTFOUND if none. */
enum cf_status cf_share_find(struct cf_store *s, const uint8_t token_hash[CF_SHA256_LEN], struct cf_share *out) CF_WUR;
/* cf_share_list(s, tenant, by_node, id, out, n): the shares of a node (by_node) or of a creator. */
enum cf_status cf_share_list(struct cf_store *s, const struct cf_id *tenant, bool by_node, const struct cf_id *id,
                             struct cf_share **out, size_t *n) CF_WUR;
/* cf_share_list_tenant(s, tenant, after, max, out, n, more): up to max links of the tenant in id
 * order, starting after link id after (NULL: from the first); *more says whether others follow.
 * (The admin's list of every external link.) */
enum cf_status cf_share_list_tenant(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *after,
                                    size_t max, struct cf_share **out, size_t *n, bool *more) CF_WUR;
/* cf_share_revoke(s, tenant, id): sets revoked_at (idempotent). */
enum cf_status cf_share_revoke(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id) CF_WUR;
/* cf_share_set_creator(s, tenant, id, creator): hands a link to another user (offboarding); the
 * link then lives by the new creator's level on its node. */
enum cf_status cf_share_set_creator(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                    const struct cf_id *creator) CF_WUR;
/* cf_share_set_suspended(s, tenant, id, on, now, changed): suspends (on: suspended_at = now) or
 * restores (clears suspended_at) a link, under the namespace lock; a revoked link is left as it is.
 * *changed: whether the record changed. */
enum cf_status cf_share_set_suspended(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                      bool on, uint64_t now, bool *changed) CF_WUR;

/*
 * Byte budgets. Every response that carries original bytes of a linked file draws them from a budget
 * of max_downloads × size (size: the file's current size) plus the resume credit, reserved before
 * the first byte is sent. A file link has one budget (in its record); a folder link one per member
 * file (a sealed record T ‖ share ‖ node beside the link's), so that max_downloads means "each file
 * of the folder max_downloads times". A response cut short gives back the bytes it never handed to
 * the connection, and the budget gains up to CF_SHARE_RESUME_ALLOWANCE bytes of resume credit over
 * its lifetime (the bytes in flight when the connection broke, which a resuming client asks for
 * again). A server that dies mid-transfer gives nothing back: the reservation stands.
 */
#define CF_SHARE_RESUME_ALLOWANCE ((uint64_t)CF_CHUNK_SIZE)
struct cf_share_tally {
    uint64_t served;               /* bytes reserved and not given back */
    uint64_t credit;               /* resume credit granted, ≤ CF_SHARE_RESUME_ALLOWANCE */
};
/* cf_share_tally_of(sh, size, out): a file link's tally (a legacy record's downloads × size). Pure. */
void cf_share_tally_of(const struct cf_share *sh, uint64_t size, struct cf_share_tally *out);
/* cf_share_tally_left(max_downloads, size, t): the bytes a budget still allows; UINT64_MAX when
 * max_downloads is 0 (no limit). Pure. */
uint64_t cf_share_tally_left(uint64_t max_downloads, uint64_t size, const struct cf_share_tally *t);
/* cf_share_tally_downloads(size, t): the download figure ⌈(served − credit) / size⌉ (0 for an empty
 * file). Pure. */
uint64_t cf_share_tally_downloads(uint64_t size, const struct cf_share_tally *t);
/* cf_share_legacy_exhausted(sh): a record from before byte budgets whose download count had reached
 * its limit (it stays exhausted, file or folder). Pure. */
bool cf_share_legacy_exhausted(const struct cf_share *sh);
/* cf_share_draw(s, tenant, id, node, size, bytes, now, counted): reserves bytes of link id's budget
 * for file node (the linked file, or a member of the linked folder) of size bytes, durably (one
 * synchronous batch), under the namespace lock together with the checks, so that concurrent draws
 * never overspend: CF_OK (reserved; *counted: the download figure rose by one), CF_EREVOKED,
 * CF_EEXPIRED, CF_ESUSPENDED, or CF_EEXHAUSTED (more bytes than are left); nothing is reserved on
 * failure. A draw of 0 bytes writes nothing. Worker threads. */
enum cf_status cf_share_draw(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                             const struct cf_id *node, uint64_t size, uint64_t bytes, uint64_t now,
                             bool *counted) CF_WUR;
/* cf_share_give_back(s, tenant, id, node, size, unsent, sent): a response that drew unsent + sent
 * bytes of node (size bytes, as at the draw) was cut short after handing sent bytes to the
 * connection: unsent go back to the budget and sent, up to what is left of
 * CF_SHARE_RESUME_ALLOWANCE, become resume credit; in one synchronous batch. Worker threads. */
enum cf_status cf_share_give_back(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                  const struct cf_id *node, uint64_t size, uint64_t unsent, uint64_t sent) CF_WUR;
/* cf_share_member_tally(s, tenant, id, node, out): a folder member's tally (zeros if it drew nothing). */
enum cf_status cf_share_member_tally(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                     const struct cf_id *node, struct cf_share_tally *out) CF_WUR;

/* Recipient access tokens, issued by a successful unlock. */
enum cf_status cf_share_access_put(struct cf_store *s, const uint8_t hash[CF_SHA256_LEN], const struct cf_id *tenant,
                                   const struct cf_id *share, uint64_t expires_at) CF_WUR;
enum cf_status cf_share_access_get(struct cf_store *s, const uint8_t hash[CF_SHA256_LEN], struct cf_id *tenant,
                                   struct cf_id *share, uint64_t *expires_at) CF_WUR;

/* ---- provenance log ---------------------------------------------------------------------------- */

/* One event to append. The event itself is opaque JSON text to storage (sealed at rest); the other
 * fields feed the secondary indexes. */
struct cf_audit_rec {
    struct cf_id tenant;
    const char *json;          /* the event, UTF-8 JSON text */
    size_t len;
    bool has_node;
    struct cf_id node;         /* indexed: events about this node */
    uint8_t actor_kind;        /* 0: not indexed; else the caller's actor type code */
    struct cf_id actor;        /* indexed with actor_kind */
    uint64_t began;            /* for the end record of a transfer: the seq of its "began" event */
    uint64_t at;               /* ms since epoch (for retention) */
};

/* cf_audit_append(s, recs, n, seqs): appends n events (any tenants) in one synchronous batch: every
 * tenant's chain advances, the indexes and heads are updated. seqs[i] receives each event's sequence
 * number. Safe from any thread; appends are serialised (callers batch for group commit). */
enum cf_status cf_audit_append(struct cf_store *s, const struct cf_audit_rec *recs, size_t n, uint64_t *seqs) CF_WUR;

struct cf_audit_event {
    uint64_t seq;
    char *json;               /* the event as appended (malloc'ed) */
    uint8_t mac[32];          /* its chain MAC */
};
void cf_audit_event_clear(struct cf_audit_event *e);

enum cf_audit_by { CF_AUDIT_ALL = 0, CF_AUDIT_BY_NODE = 'n', CF_AUDIT_BY_ACTOR = 'a' };

/* cf_audit_scan(s, tenant, by, kind, id, before, max_scan, fn, ctx, next): visits events newest
 * first, starting below seq before (0: from the newest), through the given index (or all events),
 * calling fn(ctx, event) until it returns false or max_scan events were visited. *next receives the
 * seq to pass as before to continue, or 0 when the scan reached the oldest event. */
enum cf_status cf_audit_scan(struct cf_store *s, const struct cf_id *tenant, enum cf_audit_by by, uint8_t kind,
                             const struct cf_id *id, uint64_t before, size_t max_scan,
                             bool (*fn)(void *ctx, const struct cf_audit_event *e), void *ctx,
                             uint64_t *next) CF_WUR;
/* cf_audit_get(s, tenant, seq, out) and cf_audit_end_of(s, tenant, began, out): one event; the end
 * record of a transfer (CF_ENOTFOUND while there is none). */
enum cf_status cf_audit_get(struct cf_store *s, const struct cf_id *tenant, uint64_t seq,
                            struct cf_audit_event *out) CF_WUR;
enum cf_status cf_audit_end_of(struct cf_store *s, const struct cf_id *tenant, uint64_t began,
                               struct cf_audit_event *out) CF_WUR;

/* cf_audit_verify(s, tenant, count, bad_seq, why): walks the tenant's chain from its retention
 * checkpoint (or genesis) to its head, checking sequence continuity, every chain MAC, every seal
 * and the head. CF_OK with *count events, or CF_ECORRUPT with the first broken seq and a reason. */
/* cf_audit_head_seq(s, tenant, seq): the sequence number of the tenant's last event as its stored head
 * says (0: none); CF_ECORRUPT if the head does not verify. */
enum cf_status cf_audit_head_seq(struct cf_store *s, const struct cf_id *tenant, uint64_t *seq) CF_WUR;
enum cf_status cf_audit_verify(struct cf_store *s, const struct cf_id *tenant, uint64_t *count, uint64_t *bad_seq,
                               const char **why) CF_WUR;

/* cf_audit_purge_before(s, tenant, cutoff_ms, purged): deletes the oldest events older than cutoff
 * (and their index entries) and records a sealed checkpoint of the chain at the cut, so that
 * verification still passes. */
enum cf_status cf_audit_purge_before(struct cf_store *s, const struct cf_id *tenant, uint64_t cutoff_ms,
                                     uint64_t *purged) CF_WUR;

/* cf_store_open_readonly(dir, master, out): opens a store for reading while a server may hold it
 * (audit verification, backups). Writes fail. */
enum cf_status cf_store_open_readonly(const char *dir, const struct cf_key *master, struct cf_store **out) CF_WUR;

/* ---- content: writing ------------------------------------------------------------------------ */

/* An upload writes sealed chunks under a fresh content id and data key, then commits them into the
 * namespace in one synchronous batch. Until the commit nothing of it is visible; if the process
 * dies first, cf_store_collect_orphans deletes its chunks. */
struct cf_upload;
struct cf_tus;

enum cf_conflict { CF_CONFLICT_FAIL = 0, CF_CONFLICT_RENAME = 1, CF_CONFLICT_REPLACE = 2 };

/* cf_upload_begin(s, tenant, out): a new upload (records it as pending, durably enough that a crash
 * leaves no untracked chunk). */
enum cf_status cf_upload_begin(struct cf_store *s, const struct cf_id *tenant, struct cf_upload **out) CF_WUR;
/* cf_upload_put_chunk(u, index, pt, n, last): seals and writes chunk index (n ≤ CF_CHUNK_SIZE; every
 * chunk but the last is exactly CF_CHUNK_SIZE). Writing the same index again replaces it. */
enum cf_status cf_upload_put_chunk(struct cf_upload *u, uint32_t index, const void *pt, size_t n, bool last) CF_WUR;
/* cf_upload_read_chunk(u, size, index, out, len): reads back chunk index of an upload of size bytes
 * whose chunks are all written, before its commit (the scanner reads the content this way: it is
 * never kept in plaintext anywhere else). out has room for CF_CHUNK_SIZE bytes. CF_ECORRUPT if the
 * chunk is missing or fails authentication. Worker and scan threads. */
enum cf_status cf_upload_read_chunk(struct cf_upload *u, uint64_t size, uint32_t index, uint8_t *out,
                                    size_t *len) CF_WUR;

struct cf_commit {
    struct cf_id parent;          /* target folder */
    const char *name;             /* validated name */
    size_t name_len;
    enum cf_conflict on_conflict;
    struct cf_id uploader;        /* owner of a new node; uploader of the version */
    uint64_t size;                /* total plaintext bytes */
    uint8_t sha256[CF_SHA256_LEN];
    const char *mime;             /* detected type */
    const struct cf_scan_summary *scan; /* the verdict that admitted the content (required) */
    /* may_replace(ctx, existing): asked, under the namespace lock, before a replace adds a version to
     * an existing file; false makes the commit fail with CF_EDENIED. NULL allows. */
    bool (*may_replace)(void *ctx, const struct cf_node *existing);
    void *ctx;
    /* A resumable upload being completed (cf_tus_writer): its state becomes "completed" (naming the
     * node) in the committing batch. NULL for other uploads. */
    const struct cf_tus *tus;
    /* Quotas checked under the namespace lock against what the commit adds (the new file's size, or a
     * new version's size less the current one's, charged to the file's owner): CF_EQUOTA with
     * *refused (may be NULL) when over. NULL: no check (the counters change all the same). */
    const struct cf_quota *quota;
    struct cf_quota_refusal *refused;
};

/* cf_upload_commit(u, c, out): makes the upload visible as a new file or a new version, in one
 * synchronous batch. The chunks 0..n-1 for c->size must all have been written. CF_EEXIST on a
 * conflict under CF_CONFLICT_FAIL (or a folder in the way of a replace), CF_ENOTFOUND if the
 * parent vanished. On success *out is the resulting node; u is spent (free it). */
enum cf_status cf_upload_commit(struct cf_upload *u, const struct cf_commit *c, struct cf_node *out) CF_WUR;
/* cf_upload_abort(u): deletes whatever chunks were written (uncommitted uploads only). */
void cf_upload_abort(struct cf_upload *u);
/* cf_upload_free(u): releases u and wipes its data key. NULL is ignored. */
void cf_upload_free(struct cf_upload *u);

/* ---- resumable uploads (tus) ------------------------------------------------------------------ */

/* A resumable upload is a content being written across many requests (and restarts). Its state
 * lives in the column family "uploads" (sealed with the tenant's record key); its bytes are sealed
 * into ordinary pending chunks under a data key wrapped in that state, so nothing of it is ever on
 * disk in plaintext. The upload id is its content id. The bytes of an unfinished last chunk are
 * kept as a sealed "tail" until the chunk fills up. Once committed, the state stays, "completed"
 * and naming the node (a client that lost the final answer learns it from HEAD), until it expires.
 * Callers serialise operations on one upload (the HTTP layer holds it busy for the whole request). */
struct cf_tus {
    struct cf_id id;          /* set by cf_tus_create */
    struct cf_id tenant, owner, parent;
    char *name;               /* validated file name */
    enum cf_conflict on_conflict;
    uint64_t length;          /* Upload-Length */
    uint64_t offset;          /* bytes stored so far */
    uint64_t created_at, expires_at; /* ms */
    char *metadata;           /* Upload-Metadata as received, echoed on HEAD (may be NULL) */
    bool completed;           /* committed as node (offset == length) */
    struct cf_id node;
    /* private */
    uint8_t wrapped[CF_KEY_LEN + CF_SEAL_OVERHEAD]; /* the data key, wrapped with the tenant's content key */
    uint32_t dek_gen;         /* ... of this generation */
};

/* cf_tus_create(s, t, ttl_ms): stores a new upload (sets t->id, t->created_at, t->expires_at = now +
 * ttl; offset 0). Synced. */
enum cf_status cf_tus_create(struct cf_store *s, struct cf_tus *t, uint64_t ttl_ms) CF_WUR;
/* cf_tus_get(s, tenant, id, out): loads an upload; CF_ENOTFOUND if none (expired ones are returned:
 * compare expires_at). */
enum cf_status cf_tus_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                          struct cf_tus *out) CF_WUR;
void cf_tus_clear(struct cf_tus *t);
/* cf_tus_usage(s, tenant, owner, now, count, bytes): the owner's unexpired unfinished uploads and
 * the sum of their lengths. */
enum cf_status cf_tus_usage(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *owner, uint64_t now,
                            size_t *count, uint64_t *bytes) CF_WUR;
/* cf_tus_append(s, t, data, n, ttl_ms): stores n bytes at t->offset (t->offset + n ≤ t->length),
 * sealing every chunk that fills up and keeping the rest as the sealed tail; then advances t->offset
 * and t->expires_at (now + ttl) in one synced batch. When the bytes complete the upload, only the
 * chunks are written and the state is left as it was: the commit (or a retry of the same request
 * after a failed scan) decides. A failure leaves the previous offset valid. */
enum cf_status cf_tus_append(struct cf_store *s, struct cf_tus *t, const uint8_t *data, size_t n,
                             uint64_t ttl_ms) CF_WUR;
/* The same in steps, for a body handed over in slices (tus.c copies one chunk at a time from the
 * request): cf_tus_append_begin(s, t, n, out) prepares storing n bytes at t->offset (opens the key
 * and the sealed tail); cf_tus_append_feed(a, data, len) seals and writes every chunk the next len
 * bytes complete (at most n in all); cf_tus_append_end(a, t, ttl_ms), once all n bytes are fed,
 * writes the new state exactly as cf_tus_append does (nothing for the completing body). Freeing an
 * appender without its end stores nothing the state names: the chunks written past t->offset are
 * rewritten by the next append. One thread at a time per appender; cf_tus_append_free(NULL) is a
 * no-op. */
struct cf_tus_appender;
enum cf_status cf_tus_append_begin(struct cf_store *s, const struct cf_tus *t, uint64_t n,
                                   struct cf_tus_appender **out) CF_WUR;
enum cf_status cf_tus_append_feed(struct cf_tus_appender *a, const uint8_t *data, size_t len) CF_WUR;
enum cf_status cf_tus_append_end(struct cf_tus_appender *a, struct cf_tus *t, uint64_t ttl_ms) CF_WUR;
void cf_tus_append_free(struct cf_tus_appender *a);
/* cf_tus_writer(s, t, out): the upload as a cf_upload, once all t->length bytes are written, for
 * the upload-safety step and cf_upload_commit (with c->tus = t). */
enum cf_status cf_tus_writer(struct cf_store *s, const struct cf_tus *t, struct cf_upload **out) CF_WUR;
/* cf_tus_hash_prefix(s, t, h): feeds h the t->offset bytes stored so far (the sealed chunks, then
 * the sealed tail), decrypting them one chunk at a time; for a running SHA-256 that was lost (a
 * restart: the state is kept in memory only, never stored). Worker thread; t unfinished.
 * CF_ECORRUPT if a chunk or the tail fails authentication. */
struct cf_hash;
enum cf_status cf_tus_hash_prefix(struct cf_store *s, const struct cf_tus *t, struct cf_hash *h) CF_WUR;
/* cf_tus_delete(s, tenant, id): destroys an unfinished upload (state with its data key first, then
 * chunks and tail), or forgets a completed one (its file stays). */
enum cf_status cf_tus_delete(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id) CF_WUR;
/* cf_tus_expire(s, now, claim, purged): cf_tus_delete for every upload whose expiry has passed,
 * each only while claim->take (the caller's per-upload exclusion) holds it, and claim->gone (if
 * set) told of each one deleted, before the release. claim may be NULL. */
struct cf_tus_claim {
    bool (*take)(void *ctx, const struct cf_id *tenant, const struct cf_id *id);
    void (*release)(void *ctx, const struct cf_id *tenant, const struct cf_id *id);
    void (*gone)(void *ctx, const struct cf_id *tenant, const struct cf_id *id);
    void *ctx;
};
enum cf_status cf_tus_expire(struct cf_store *s, uint64_t now, const struct cf_tus_claim *claim,
                             uint64_t *purged) CF_WUR;

/* ---- content: reading ------------------------------------------------------------------------ */

struct cf_reader;

/* cf_reader_open(s, tenant, file, version, out): opens version (0 = the node's current) of a file
 * for reading; unwraps its data key. CF_ENOTFOUND if the file or version does not exist. */
enum cf_status cf_reader_open(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *file,
                              uint32_t version, struct cf_reader **out) CF_WUR;
uint64_t cf_reader_size(const struct cf_reader *r);
uint32_t cf_reader_chunk_count(const struct cf_reader *r);
/* cf_reader_chunk(r, index, out, len): reads, verifies and decrypts one chunk into out (room for
 * min(CF_CHUNK_SIZE, cf_reader_size(r)) bytes: no chunk is longer); *len gets its length. CF_ECORRUPT if the chunk is
 * missing, altered, moved, reordered or of the wrong length, never wrong bytes. Worker threads only (disk reads). */
enum cf_status cf_reader_chunk(struct cf_reader *r, uint32_t index, uint8_t *out, size_t *len) CF_WUR;
void cf_reader_free(struct cf_reader *r);

/* ---- derived objects: rendered pages (pages.c) ------------------------------------------------- */

/* Objects derived from a version's content (page images, a converted PDF, a page summary), sealed
 * under its data key and stored with its chunks, so that whatever destroys the content destroys
 * them. A slot names one object of a content; it must have CF_DERIVED_SLOT set (the rest is the
 * caller's). cf_derived_put(r, slot, obj, n): stores (replaces) it; CF_ENOTFOUND if the version was
 * purged meanwhile (nothing is left behind). cf_derived_get(r, slot, out, len): *out malloc'ed;
 * CF_ENOTFOUND if absent, CF_ECORRUPT if it fails authentication. Worker threads. */
#define CF_DERIVED_SLOT 0x80000000u
enum cf_status cf_derived_put(struct cf_reader *r, uint32_t slot, const void *obj, size_t n) CF_WUR;
enum cf_status cf_derived_get(struct cf_reader *r, uint32_t slot, uint8_t **out, size_t *len) CF_WUR;

/* ---- backups ---------------------------------------------------------------------------------- */

/* A backup directory holds any number of backups of one store, made by RocksDB's BackupEngine
 * (backup.c describes the layout): consistent (the store as of one instant, whole write batches
 * only), incremental (table and blob files are shared between backups and copied once), and holding
 * exactly what the data directory holds: ciphertext, opaque ids, keyed hashes, wrapped keys, never
 * the master key. Every function locks the directory (CF_EBUSY while another command holds it) and
 * returns, on failure, a malloc'ed sentence in *why naming the problem (the caller prints and frees
 * it; NULL on success). All block on disk I/O: call them from a CLI or control thread, never from an
 * event loop. */

struct cf_backup_info {
    uint32_t id;          /* 1, 2, …: assigned by the engine, increasing, never reused in a directory */
    uint64_t created_at;  /* ms since epoch (the engine records whole seconds) */
    uint64_t size;        /* bytes of every file the backup needs (files it shares counted in full) */
    uint32_t files;       /* number of those files */
};

struct cf_backup_created {
    struct cf_backup_info info; /* the new backup */
    uint64_t copied;      /* bytes this backup added to the directory: new table and blob files, its own
                           * MANIFEST, OPTIONS and WAL tail, metadata (before any purge) */
    uint32_t purged;      /* older backups deleted to keep the newest `keep` */
    uint32_t count;       /* backups in the directory afterwards */
};

/* cf_backup_create(s, dir, keep, out, why): flushes the open store s and backs it up into dir
 * (created 0700 if missing; an existing dir must be a backup directory or empty: CF_EINVAL
 * otherwise). Online: uploads and commits go on meanwhile. keep > 0 then deletes all but the newest
 * keep backups (their files that no kept backup shares). CF_EIO if the backup failed (dir keeps its
 * earlier backups intact). */
enum cf_status cf_backup_create(struct cf_store *s, const char *dir, uint32_t keep, struct cf_backup_created *out,
                                char **why) CF_WUR;

/* cf_backup_list(dir, out, n, damaged, why): every backup in dir, oldest first, as a malloc'ed array
 * (free it). *damaged gets how many more backups dir has that RocksDB cannot load (a file missing or
 * of the wrong size: the engine leaves them out; cf_backup_verify names the file). CF_EINVAL if dir
 * is not a backup directory, CF_ENOTFOUND if it does not exist. */
enum cf_status cf_backup_list(const char *dir, struct cf_backup_info **out, size_t *n, size_t *damaged,
                              char **why) CF_WUR;

/* The result of cf_backup_verify. */
struct cf_backup_check {
    uint32_t backups;     /* backups checked */
    uint64_t files;       /* distinct files read (a file shared by several backups is read once) */
    uint64_t bytes;       /* bytes read and checksummed */
};

/* cf_backup_verify(dir, id, out, why): checks backup id (0: every backup): that RocksDB can load it
 * and its own check (every file present with its recorded size), then every byte of every file
 * against the CRC32C the engine recorded when it copied it. Needs no key. CF_OK; CF_ECORRUPT naming up to ten damaged
 * or missing files and the backups that need them; CF_ENOTFOUND if there is no such backup. */
enum cf_status cf_backup_verify(const char *dir, uint32_t id, struct cf_backup_check *out, char **why) CF_WUR;

/* cf_backup_restore(dir, id, to, restored, why): restores backup id (0: the newest) into the data
 * directory to, which must not exist (it is created 0700) or be empty: CF_EEXIST, with nothing
 * changed, if it holds a store or anything else. Every file's CRC32C is checked as it is copied
 * (CF_ECORRUPT naming it; to is emptied again). *restored gets the id. The result opens with the
 * master key the backup was made under (cf_store_open), and only with it. */
enum cf_status cf_backup_restore(const char *dir, uint32_t id, const char *to, uint32_t *restored,
                                 char **why) CF_WUR;

/* cf_backup_discard(dir): removes a directory tree that cf_backup_restore made (the temporary
 * restore of a deep verification). NULL is ignored. */
void cf_backup_discard(const char *dir);

/* ---- maintenance ----------------------------------------------------------------------------- */

/* cf_store_flush(s): flushes every memtable to SST/blob files and waits (used before a clean
 * shutdown; the WAL already holds every synced commit). */
enum cf_status cf_store_flush(struct cf_store *s) CF_WUR;

/* What RocksDB reports about its size and its write stalls, summed over every column family (for
 * GET /metrics). A property RocksDB does not report counts as 0. */
struct cf_store_stats {
    uint64_t sst_bytes;                /* rocksdb.total-sst-files-size: live table files, bytes */
    uint64_t blob_bytes;               /* rocksdb.total-blob-file-size: live blob files (chunks), bytes */
    uint64_t blob_files;               /* rocksdb.num-blob-files */
    uint64_t live_data_bytes;          /* rocksdb.estimate-live-data-size: an estimate, bytes */
    uint64_t memtable_bytes;           /* rocksdb.cur-size-all-mem-tables: active and unflushed, bytes */
    uint64_t pending_compaction_bytes; /* rocksdb.estimate-pending-compaction-bytes */
    uint64_t running_compactions;      /* rocksdb.num-running-compactions */
    uint64_t running_flushes;          /* rocksdb.num-running-flushes */
    uint64_t background_errors;        /* rocksdb.background-errors: since the store was opened */
    bool write_stopped;                /* rocksdb.is-write-stopped: writes are stopped right now */
    uint64_t delayed_write_rate;       /* rocksdb.actual-delayed-write-rate: bytes/s while writes are
                                          slowed down, 0 while they are not */
    bool stall_known;                  /* stall_ms was found in rocksdb.dbstats */
    uint64_t stall_ms;                 /* its "Cumulative stall": time writes waited since the open */
    /* The metadata cache (storage/cache.h), since the store was opened: lookups answered from memory
     * and not, entries dropped to stay within the bound, keys invalidated by writes (a drop of
     * everything counts once per shard), inserts refused because a write raced the read; and now. */
    uint64_t cache_hits, cache_misses, cache_evictions, cache_invalidations, cache_refused;
    uint64_t cache_entries, cache_bytes, cache_max_bytes;
};

/* cf_store_stats(s, out): fills *out from RocksDB's properties. Reads memory only (no disk, no
 * lock held for long); any thread. */
void cf_store_stats(struct cf_store *s, struct cf_store_stats *out);

#endif
