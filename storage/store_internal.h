/*
 * store_internal.h: what the storage modules share and nothing outside storage/ may see: the
 * engine handle, the keyspace (column family) table, the unwrapped keys, and the sealed-record
 * helpers.
 *
 * Column families (docs/DESIGN.md has the full layout; T = tenant id, 16 bytes):
 *   default       "format" → "coffer-store-v1"
 *   keys          "global" → wrapped global key;  "t" T → wrapped tenant key;
 *                 "c" T gen:u32 → wrapped content key of that generation (keyring.c; "" for gen 0:
 *                 the key derived from the tenant key is retired)
 *   tenants       T → sealed tenant record (sealed with the global record key)
 *   tenant_names  HMAC(global name key, name) → T
 *   users         T user → sealed user record
 *   user_names    T HMAC(index key, lower(username)) → user id
 *   sessions      SHA-256(token) → T ‖ sealed session record
 *   nodes         T node → sealed node record
 *   children      T parent HMAC(index key, name) → child id
 *   versions      T file version:u32 → sealed version record (holds the wrapped data key)
 *   chunks        T content index:u32 → 0x01 ‖ nonce ‖ ciphertext ‖ tag   (integrated blob files)
 *   pending       T content → kind:u8 ‖ since:u64   (contents whose chunks may be orphans)
 *   trash         T node → trashed_at:u64
 *   owned         T owner node → ""   (who owns what, for offboarding)
 *   groups        T group → sealed {name, created_at}
 *   group_names   T HMAC(index key, "group\0" ‖ lower(name)) → group id
 *   members       T group user → ""
 *   memberships   T user group → ""
 *   acl           T node → sealed {entry*: kind:u8 ‖ principal:16 ‖ level:u8}
 *   grants        T kind:u8 principal node → level:u8   (what a principal was granted, "shared with me")
 *   user_sessions T user session-id → SHA-256(token)
 *   logins        T user at:u64 rand:u32 → sealed {at, ip, user agent, result, new_device}
 *   devices       T user HMAC(index key, "device\0" ‖ fingerprint) → first_seen:u64
 *   alerts        T user at:u64 rand:u32 → sealed {id, at, kind, detail}
 *   shares        T share → sealed {node, creator, permission, times, limits, code, token, ...}
 *   share_tokens  SHA-256(link token) → T share
 *   node_shares   T node share → ""
 *   user_shares   T creator share → ""
 *   share_access  SHA-256(recipient access token) → T share expires_at:u64
 *   audit         T seq:u64 → chain MAC (32) ‖ sealed event   (audit.c has the chain rule)
 *   audit_index   T 'n' node seq → "" | T 'a' kind:u8 actor seq → "" | T 'e' began:u64 → end:u64
 *   audit_meta    T 'h' → head (seq, MAC, head MAC) | T 'c' → sealed retention checkpoint
 *   journal       'e' seq:u64 → entry | 'h' → sealed head   (journal.c: the metadata journal)
 *   journal_keys  cf:u8 key → seq:u64 ‖ SHA-256(value) ‖ MAC   (the last write of every key it covers)
 */
#ifndef CF_STORE_INTERNAL_H
#define CF_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "cache.h"
#include "engine/blob.h"
#include "engine/engine.h"
#include "record.h"
#include "storage.h"

enum cf_cf {
    CF_CF_DEFAULT,
    CF_CF_KEYS,
    CF_CF_TENANTS,
    CF_CF_TENANT_NAMES,
    CF_CF_USERS,
    CF_CF_USER_NAMES,
    CF_CF_SESSIONS,
    CF_CF_NODES,
    CF_CF_CHILDREN,
    CF_CF_VERSIONS,
    CF_CF_CHUNKS,
    CF_CF_PENDING,
    CF_CF_TRASH,
    CF_CF_OWNED,
    CF_CF_GROUPS,
    CF_CF_GROUP_NAMES,
    CF_CF_MEMBERS,
    CF_CF_MEMBERSHIPS,
    CF_CF_ACL,
    CF_CF_GRANTS,
    CF_CF_USER_SESSIONS,
    CF_CF_LOGINS,
    CF_CF_DEVICES,
    CF_CF_ALERTS,
    CF_CF_SHARES,
    CF_CF_SHARE_TOKENS,
    CF_CF_NODE_SHARES,
    CF_CF_USER_SHARES,
    CF_CF_SHARE_ACCESS,
    CF_CF_AUDIT,
    CF_CF_AUDIT_INDEX,
    CF_CF_AUDIT_META,
    CF_CF_UPLOADS,
    /* The metadata journal (journal.c). Column families are only ever added at the end: the journal
     * names them by this number on disk. */
    CF_CF_JOURNAL,
    CF_CF_JOURNAL_KEYS,
    CF_CF_COUNT
};

/* The in-memory end of one tenant's provenance chain (audit.c). */
struct cf_audit_head {
    struct cf_id tenant;
    uint64_t seq;        /* last sequence number written (0: none yet) */
    uint8_t mac[32];     /* its chain MAC (the genesis MAC when seq is 0) */
    struct cf_key key;   /* the tenant's chain MAC key */
};

/* One generation of a tenant's content key (the key that wraps data keys). Generation 0 is derived
 * from the tenant key; later ones are random and stored wrapped (keyring.c, key rotation). */
#define CF_DEK_GENS 8
struct cf_dekgen {
    uint32_t gen;
    bool live;
    struct cf_key key;
};

/* Per-tenant subkeys, derived once from the unwrapped tenant key (which is then wiped). The content
 * key generations may change while the store is open (rotation): read them only through
 * cf_dek_wrap/cf_dek_unwrap, which hold s->tk_lock. */
struct cf_tkeys {
    struct cf_id tenant;
    struct cf_key record; /* seals records */
    struct cf_key index;  /* keyed hashes of names for lookups */
    struct cf_key code;   /* keyed MACs of share extraction codes */
    struct cf_dekgen gens[CF_DEK_GENS]; /* content keys (guarded by s->tk_lock) */
    size_t ngens;
    uint32_t cur;         /* the generation new data keys are wrapped with */
    bool dead;            /* the tenant was deleted: every lookup answers CF_ENOTFOUND */
    /* Cluster mode (keyring.c "following other nodes' key changes"): the change feed counts stale up
     * when another node may have rotated or destroyed this tenant's keys; fresh is the count they
     * were last reloaded for. stale != fresh: the next use reloads them, in place. */
    _Atomic uint32_t stale, fresh;
};
/* cf_tkeys_follow(s, op, ks, k, kl, v, vl): one operation of another node's change (db.c
 * cf_store_catch_up): marks the tenant entries whose keys it changed stale. cf_tkeys_lost(s): the
 * feed was lost (a gap, the first catch-up): every entry is marked stale. Memory only, no I/O. */
void cf_tkeys_follow(struct cf_store *s, enum cf_batch_op op, unsigned ks, const uint8_t *k, size_t kl,
                     const uint8_t *v, size_t vl);
void cf_tkeys_lost(struct cf_store *s);

/* The metadata journal (journal.c). The head as stored (sealed) under journal 'h'. */
struct cf_jhead {
    uint8_t id[16];         /* this journal's random id (a copy of the store keeps it) */
    uint64_t seq;           /* the last entry written (0: none yet) */
    uint8_t mac[32];        /* its chain MAC (the genesis MAC when seq is 0) */
    uint64_t first;         /* the oldest entry kept (the ones before it were trimmed) */
    uint8_t first_prev[32]; /* the chain MAC of entry first - 1 */
    uint8_t sum[32];        /* Σ HMAC(sum key, index entry) mod 2^256 over journal_keys */
    uint64_t nkeys;         /* entries in journal_keys */
    uint64_t at;            /* ms since epoch of entry seq */
};

#define CF_JOURNAL_KEEP 65536 /* entries kept (journal_keys holds the last write of every key anyway) */
#define CF_JOURNAL_STEP 4096  /* trimmed this many at a time */

struct cf_anchor;
struct cf_jwait;
struct cf_journal {
    bool on;                  /* writes go through the journal (read-write stores once opened) */
    bool present;             /* read-only opens: a head was found and opens */
    bool head_bad;            /* read-only opens: a head was found and does not open */
    struct cf_key mac_key;    /* MACs of entries and index entries (stored with them) */
    struct cf_key sum_key;    /* terms of the index sum (never stored) */
    struct cf_key seal_key;   /* seals the head */
    struct cf_key anchor_key; /* MACs the anchor file */
    uint64_t keep, step;      /* CF_JOURNAL_KEEP, CF_JOURNAL_STEP (unit tests lower them) */
    /* Owned by the thread that is writing a group (the leader); handed over through lock. */
    struct cf_jhead head;
    struct cf_anchor *anchor; /* NULL: none attached */
    /* The group-commit queue (guarded by lock). */
    pthread_mutex_t lock;
    struct cf_jwait *queue, *tail;
    bool writing;
};

typedef void (*cf_tkeys_follow_fn)(struct cf_store *s, enum cf_batch_op op, unsigned ks, const uint8_t *k, size_t kl,
                                   const uint8_t *v, size_t vl);
typedef void (*cf_tkeys_lost_fn)(struct cf_store *s);

struct cf_store {
    char *dir;
    struct cf_eng *eng;          /* the storage engine (engine/engine.h): every read and write */
    struct cf_blobs *blobs;      /* chunk bodies (engine/blob.h), in eng's chunks keyspace */
    struct cf_key kek;          /* wraps tenant keys and the global key */
    struct cf_key global_record; /* seals global records (tenants) */
    struct cf_key global_index;  /* keyed hash of tenant names */
    pthread_mutex_t ns_lock;     /* serialises every namespace change: take it with cf_ns_lock */
    pthread_mutex_t user_lock;   /* serialises read-modify-write of user records (cf_user_update); a
                                    cluster lock (CF_ENG_LOCK_USER) */
    struct cf_key global_audit;  /* root of the per-tenant provenance MAC keys */
    pthread_mutex_t audit_lock;  /* guards audit_heads and every append */
    struct cf_audit_head *audit_heads;
    size_t naudit_heads;
    pthread_rwlock_t tk_lock;    /* guards tk/ntk; entries never move once added */
    struct cf_tkeys **tk;
    size_t ntk, captk;
    /* Set when the engine (RocksDB) refused a write: every later write and flush is refused here
     * without reaching it (whose write path, once it has seen an I/O error, may assert rather than
     * answer; notes in docs/SECURITY.md "Failures"). The process is expected to stop. */
    atomic_bool write_failed;
    /* The node this process is in a cluster (cf_store_set_node): stamped on its pending marks so that
     * another node's start-up never collects this one's uploads in flight. has_node false: the only
     * process of the store (RocksDB), whose marks carry no owner. Set once, before serving. */
    bool has_node;
    uint8_t node[16];
    struct cf_journal journal;
    struct cf_cache *cache;      /* decoded metadata records (cache.h), fed and invalidated by db.c */
    /* The engine's change feed (cluster mode, db.c cf_store_catch_up): 1 + the newest change this
     * process's cache has applied (0: not following). */
    _Atomic uint64_t feed_applied;
    /* The name index (search.h) and the two calls the write path and close make into it, set by
     * cf_store_search_build: pointers, so that db.c and store.c (below search.c) do not link to it. */
    struct cf_search *search;    /* NULL until cf_store_search_build */
    void (*search_apply)(struct cf_store *s, const struct cf_batch *b);
    /* Other nodes' writes, from the change feed (db.c cf_store_catch_up): one operation, or the feed
     * lost (the index is rebuilt by the next search). */
    void (*search_follow)(struct cf_store *s, enum cf_batch_op op, unsigned ks, const uint8_t *k, size_t kl,
                          const uint8_t *v, size_t vl);
    void (*search_lost)(struct cf_store *s);
    /* The tenant keys' side of following the feed (keyring.c cf_tkeys_follow / cf_tkeys_lost), set by
     * keyring.c before it loads its first tenant key (until then there is nothing to mark stale):
     * pointers, so that db.c does not link to keyring.c (which reads through db.c). */
    _Atomic(cf_tkeys_follow_fn) tkeys_follow;
    _Atomic(cf_tkeys_lost_fn) tkeys_lost;
    void (*search_free)(struct cf_store *s);
};

extern const char *const cf_cf_names[CF_CF_COUNT];

/* Pending kinds (the first byte of a pending value). */
enum { CF_PENDING_UPLOAD = 'U', CF_PENDING_PURGE = 'P', CF_PENDING_TUS = 'T' };
/* A pending mark's value: kind:u8 ‖ at:u64 (ms) ‖ [owner node:16, cluster mode, U and P marks]. */
#define CF_PENDING_MARK_MAX (1 + 8 + 16)
/* cf_pending_mark(s, kind, out): the mark this process writes for kind now; returns its length. */
size_t cf_pending_mark(const struct cf_store *s, uint8_t kind, uint8_t out[CF_PENDING_MARK_MAX]);

/* Tenant subkeys for tenant, loading and unwrapping them on first use. The pointer stays valid
 * until cf_store_close. CF_ENOTFOUND if the tenant has no key. */
enum cf_status cf_tkeys_get(struct cf_store *s, const struct cf_id *tenant, const struct cf_tkeys **out) CF_WUR;
/* Creates, wraps and stores (in batch) a fresh key for a new tenant; returns its subkeys. */
const struct cf_tkeys *cf_tkeys_create(struct cf_store *s, const struct cf_id *tenant, struct cf_batch *b);

/* Raw engine access (db.c); an engine's error message never leaves these. cf_db_error(what, err):
 * logs and frees an engine error and says which status it is (lock held elsewhere: CF_EBUSY;
 * corruption: CF_ECORRUPT; else CF_EIO). */
enum cf_status cf_db_error(const char *what, char *err) CF_WUR;
/* The namespace lock (db.c), a cluster lock (engine.h cf_eng_lock): ns_lock, then in cluster mode the
 * store-wide lock in the database and a catch-up on other nodes' writes. Every namespace change holds
 * it, and nothing takes it while holding the provenance or journal lock (order: ns, audit, journal).
 * If the database lock cannot be taken the caller still holds the mutex and goes on, but every write
 * it makes before cf_ns_unlock fails (CF_EUNAVAIL): nothing is written unguarded. */
void cf_ns_lock(struct cf_store *s);
void cf_ns_unlock(struct cf_store *s);
/* cf_cluster_lock(s, mu, which): the same for any cluster lock: mu, then lock which in the database,
 * then a catch-up (cluster mode). The user and session locks (ident.c) use it; order: ns, user,
 * session, audit, journal. */
void cf_cluster_lock(struct cf_store *s, pthread_mutex_t *mu, enum cf_eng_lock which);
void cf_cluster_unlock(struct cf_store *s, pthread_mutex_t *mu, enum cf_eng_lock which);
enum cf_status cf_db_get(struct cf_store *s, enum cf_cf cf, const void *key, size_t klen, char **val,
                         size_t *vlen) CF_WUR;
/* cf_db_write and cf_db_put: every write of the store. Batches that touch a column family the
 * metadata journal covers go through cf_journal_write (journal.c), which adds the journal's entry to
 * them; the rest are written as they are. */
enum cf_status cf_db_write(struct cf_store *s, struct cf_batch *b, bool sync) CF_WUR;
/* cf_db_write_raw: the RocksDB write itself, without the journal or fault injection (journal.c).
 * cf_db_write_failed(s, what, err): a write RocksDB refused (takes err): fail-stop, see storage.h. */
enum cf_status cf_db_write_raw(struct cf_store *s, struct cf_batch *b, bool sync) CF_WUR;
enum cf_status cf_db_write_failed(struct cf_store *s, const char *what, char *err);
enum cf_status cf_db_put(struct cf_store *s, enum cf_cf cf, const void *key, size_t klen, const void *val,
                         size_t vlen, bool sync) CF_WUR;
/* Chunk bodies (engine/blob.h), with fault injection and the fail-stop flag as cf_db_put (store.c).
 * Crash ordering (docs/DESIGN.md §4): a content's pending mark is written before its first blob, the
 * blobs are flushed before the commit that references them, and blobs are deleted only after the
 * metadata that could decrypt them (purge, tenant deletion) and before the pending mark goes. */
enum cf_status cf_db_blob_put(struct cf_store *s, const uint8_t *key, const void *val, size_t vlen) CF_WUR;
/* A reader's parts, for the derived objects of its content (pages.c): valid while r is. */
struct cf_reader_internals {
    struct cf_store *s;
    const struct cf_id *tenant, *content, *file;
    const struct cf_key *dek;
    uint32_t version;
};
void cf_reader_internals(const struct cf_reader *r, struct cf_reader_internals *out);
enum cf_status cf_db_blob_flush(struct cf_store *s) CF_WUR;
enum cf_status cf_db_blob_delete_owner(struct cf_store *s, const uint8_t *owner) CF_WUR;
enum cf_status cf_db_blob_delete_tenant(struct cf_store *s, const uint8_t *tenant) CF_WUR;
/* An iterator over cf limited to keys starting with prefix (bounds owned by the returned struct). */
struct cf_iter {
    struct cf_eiter *it;
    uint8_t upper[64]; /* exclusive upper bound: prefix + 1 */
    size_t upper_len;
    size_t prefix_len;
};
void cf_iter_open(struct cf_store *s, enum cf_cf cf, const void *prefix, size_t plen, struct cf_iter *it);
void cf_iter_close(struct cf_iter *it);
enum cf_status cf_iter_status(struct cf_iter *it) CF_WUR;

/* The metadata cache (db.c over cache.h). cf_db_cache_get(s, cf, key, klen, val, vlen, absent, tok):
 * CF_OK on a hit (*val a copy, free with cf_free_secret; *absent: the key is known absent), else
 * CF_ENOTFOUND with the token to pass to cf_db_cache_put once the engine was read (val NULL: absent).
 * Keyspaces the cache does not hold always miss and drop the put. cf_get_sealed uses both; a reader
 * with its own value layout (sessions, the memberships list) calls them itself. Invalidation needs no
 * call: cf_db_write_raw does it for every key a batch touches. */
enum cf_status cf_db_cache_get(struct cf_store *s, enum cf_cf cf, const void *key, size_t klen, uint8_t **val,
                               size_t *vlen, bool *absent, struct cf_cache_token *tok) CF_WUR;
void cf_db_cache_put(struct cf_store *s, enum cf_cf cf, const void *key, size_t klen, const struct cf_cache_token *tok,
                     const void *val, size_t vlen);
void cf_db_cache_drop_all(struct cf_store *s);

/* Sealed records: AAD = cf name ‖ 0x00 ‖ key. */
void cf_seal_batch_put(struct cf_batch *b, struct cf_store *s, enum cf_cf cf, const struct cf_key *k,
                       const void *key, size_t klen, const struct cf_rec_w *rec, const void *prefix,
                       size_t prefix_len);
/* cf_unseal(cf, k, key, klen, val, vlen, out, outlen): opens a sealed value (after any plaintext
 * prefix the caller has already stripped). *out is malloc'ed; free with cf_free_secret. */
enum cf_status cf_unseal(enum cf_cf cf, const struct cf_key *k, const void *key, size_t klen, const uint8_t *val,
                         size_t vlen, uint8_t **out, size_t *outlen) CF_WUR;
/* cf_get_sealed(s, cf, k, key, klen, out, outlen): get + unseal. */
enum cf_status cf_get_sealed(struct cf_store *s, enum cf_cf cf, const struct cf_key *k, const void *key,
                             size_t klen, uint8_t **out, size_t *outlen) CF_WUR;

/* Content chunks (content.c). cf_chunk_seal(dek, tenant, content, index, last, pt, n, val): the stored
 * value of a chunk of n ≤ CF_CHUNK_SIZE bytes, 0x01 ‖ nonce ‖ ciphertext ‖ tag, into val (room for
 * 1 + n + CF_SEAL_OVERHEAD bytes). cf_chunk_open(dek, tenant, content, size, index, val, vl, out, len):
 * verifies and decrypts the value of chunk index of a content of size bytes into out (room for
 * CF_CHUNK_SIZE bytes), *len its length; CF_ECORRUPT for any value that is not exactly that chunk
 * (wrong length, format, key, content, position or last-ness). Pure: tests/fuzz/fuzz_sealed.c. */
enum cf_status cf_chunk_seal(const struct cf_key *dek, const struct cf_id *tenant, const struct cf_id *content,
                             uint32_t index, bool last, const void *pt, size_t n, uint8_t *val) CF_WUR;
enum cf_status cf_chunk_open(const struct cf_key *dek, const struct cf_id *tenant, const struct cf_id *content,
                             uint64_t size, uint32_t index, const uint8_t *val, size_t vl, uint8_t *out,
                             size_t *len) CF_WUR;

/* Data keys (keyring.c): wrapped with the tenant's current content-key generation, AAD
 * "coffer/v1/wrap/dek" ‖ T ‖ content; *gen receives the generation, which the wrapper's record keeps.
 * A data key is wrapped, and its wrapper written, under s->ns_lock (so that a key rotation, which
 * retires generations under that lock, never misses a wrapper). cf_dek_unwrap: CF_ENOTFOUND if
 * generation gen no longer exists (rotated away since the wrapper was read: read it again),
 * CF_ECORRUPT if the wrapper does not open. */
enum cf_status cf_dek_wrap(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *content,
                           const struct cf_key *dek, uint8_t wrapped[CF_KEY_LEN + CF_SEAL_OVERHEAD],
                           uint32_t *gen) CF_WUR;
enum cf_status cf_dek_unwrap(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *content, uint32_t gen,
                             const uint8_t wrapped[CF_KEY_LEN + CF_SEAL_OVERHEAD], struct cf_key *dek) CF_WUR;
/* keyring.c, for rotate.c: cf_keygen_add(s, tk, gen) makes a new content-key generation (stored,
 * synced, then current) and gives its number; CF_EBUSY while earlier rotations are unfinished.
 * cf_keygen_retire(s, tk, gen, retired) destroys every other live generation (one synced batch, then
 * memory, then a forced compaction of the keys), adding their count to *retired. */
enum cf_status cf_keygen_add(struct cf_store *s, const struct cf_tkeys *tk, uint32_t *gen) CF_WUR;
enum cf_status cf_keygen_retire(struct cf_store *s, const struct cf_tkeys *tk, uint32_t gen, uint32_t *retired) CF_WUR;
/* content.c: rewraps (under ns_lock, in batches) every version record of the tenant whose data key
 * is not under generation gen; *count gets how many. *left (may be NULL) only counts them, writing
 * nothing, when dry is true. */
enum cf_status cf_versions_rewrap(struct cf_store *s, const struct cf_tkeys *tk, uint32_t gen, bool dry,
                                  uint64_t *count) CF_WUR;
/* tus.c: the same for unfinished resumable uploads, each while claim (may be NULL) holds it; busy
 * ones are retried for up to a minute (CF_EBUSY after that). */
enum cf_status cf_tus_rewrap(struct cf_store *s, const struct cf_tkeys *tk, uint32_t gen, bool dry,
                             const struct cf_tus_claim *claim, uint64_t *count) CF_WUR;
/* cf_upload_resume(s, tk, content, dek): a writer for content whose pending mark already exists (a
 * resumable upload). */
struct cf_upload *cf_upload_resume(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *content,
                                   const struct cf_key *dek);
/* content.c, for commit.c: cf_upload_view(u, out): what a commit needs of upload u.
 * cf_upload_batch_version(b, u, c, wrapped, gen, node): adds to b the version record of node's
 * version (data key wrapped under generation gen) and the deletion of u's pending mark.
 * cf_upload_set_committed(u): u is committed (abort then keeps its chunks). */
struct cf_upload_view {
    struct cf_store *s;
    const struct cf_tkeys *tk;
    const struct cf_id *content;
    const struct cf_key *dek;
    bool committed;
};
void cf_upload_view(const struct cf_upload *u, struct cf_upload_view *out);
void cf_upload_batch_version(struct cf_batch *b, const struct cf_upload *u, const struct cf_commit *c,
                             const uint8_t *wrapped, uint32_t gen, const struct cf_node *node);
void cf_upload_set_committed(struct cf_upload *u);
/* tus.c: adds to b what makes upload t "completed" as node (commit.c's commit batch). */
void cf_tus_batch_complete(struct cf_batch *b, struct cf_store *s, const struct cf_tkeys *tk,
                           const struct cf_tus *t, const struct cf_id *node);

/* Key builders. */
static inline void cf_key2(uint8_t out[32], const struct cf_id *a, const struct cf_id *b)
{
    memcpy(out, a->b, 16);
    memcpy(out + 16, b->b, 16);
}

/* Node records (node.c) shared with content.c and ident.c. */
void cf_node_encode(const struct cf_node *n, struct cf_rec_w *w);
enum cf_status cf_node_decode(const uint8_t *p, size_t n, struct cf_node *out) CF_WUR;
void cf_node_batch_put(struct cf_batch *b, struct cf_store *s, const struct cf_tkeys *tk,
                       const struct cf_node *n);
/* Keyed hash of a name inside parent for the children index: key = T parent mac (64 bytes). */
void cf_children_key(const struct cf_tkeys *tk, const struct cf_id *parent, const char *name, size_t n,
                     uint8_t out[64]);
/* cf_node_load(s, tk, id, out): get + unseal + decode a node of tk's tenant. */
enum cf_status cf_node_load(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *id,
                            struct cf_node *out) CF_WUR;
/* cf_child_by_key(s, key, out): the child id under a children key; CF_ENOTFOUND if the name is free. */
enum cf_status cf_child_by_key(struct cf_store *s, const uint8_t key[64], struct cf_id *out) CF_WUR;
/* cf_live_folder(s, tk, id, out): loads id and checks it is a live folder (else CF_ENOTFOUND).
 * Callers hold ns_lock when they act on the answer. */
enum cf_status cf_live_folder(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *id,
                              struct cf_node *out) CF_WUR;
/* cf_rename_candidate(name, n, k): "name (k).ext" (malloc'ed), NULL if longer than CF_NAME_MAX
 * (node.c; on_conflict=rename and restores from the trash). */
char *cf_rename_candidate(const char *name, size_t n, unsigned k);
/* cf_put_child(b, key, id): adds a children entry to b. */
void cf_put_child(struct cf_batch *b, const uint8_t key[64], const struct cf_id *id);
/* cf_owned_put(b, tenant, owner, node, add): adds (or removes) an owned-index entry in b. */
void cf_owned_put(struct cf_batch *b, const struct cf_id *tenant, const struct cf_id *owner,
                  const struct cf_id *node, bool add);
/* acl.c: deletes (into b) a node's ACL record and the grants index entries it made. */
enum cf_status cf_acl_batch_drop(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *node,
                                 struct cf_batch *b) CF_WUR;
/* A new space root (folder with no parent) of the given kind, put into b. */
void cf_root_create(struct cf_batch *b, struct cf_store *s, const struct cf_tkeys *tk,
                    enum cf_space_kind kind, const struct cf_id *owner, struct cf_id *out);

/* A growable vector of ids. */
struct cf_idvec {
    struct cf_id *v;
    size_t n, cap;
};
void cf_idvec_push(struct cf_idvec *iv, const struct cf_id *id);

/* cf_sealed_list(s, cf, rk, prefix, plen, klen, skip_klen, size, decode, clear, ctx, out, n): every
 * record of cf whose key starts with prefix and is klen bytes long, unsealed with rk, as a malloc'ed
 * array of *n elements of size bytes: decode(elem, key, pt, ptlen, ctx) fills one zeroed element
 * (the fields the key and ctx give as well as the record's). A key of another length is skipped if
 * its length is skip_klen (SIZE_MAX: any other length), else the list fails with CF_ECORRUPT. On any
 * failure every element decoded so far is cleared with clear and nothing is returned. */
typedef enum cf_status (*cf_list_decode_fn)(void *elem, const uint8_t *key, const uint8_t *pt, size_t ptlen,
                                            const void *ctx);
enum cf_status cf_sealed_list(struct cf_store *s, enum cf_cf cf, const struct cf_key *rk, const void *prefix,
                              size_t plen, size_t klen, size_t skip_klen, size_t size, cf_list_decode_fn decode,
                              void (*clear)(void *elem), const void *ctx, void **out, size_t *n) CF_WUR;

/* cf_id_suffixes(s, cf, prefix, plen, keep, ctx, out, n): the ids stored as the last 16 bytes of the
 * keys of cf that start with prefix (every such key is plen + 16 bytes long: CF_ECORRUPT otherwise).
 * keep(ctx, val, vlen) (NULL: keep all) answers 1 to keep an entry, 0 to skip it, -1 if its value is
 * corrupt. *out is malloc'ed (never NULL), *n ids. */
enum cf_status cf_id_suffixes(struct cf_store *s, enum cf_cf cf, const void *prefix, size_t plen,
                              int (*keep)(void *ctx, const char *val, size_t vlen), void *ctx, struct cf_id **out,
                              size_t *n) CF_WUR;

/* content.c: deletes (into b) every version record of file and collects their content ids. */
enum cf_status cf_versions_delete(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *file,
                                  struct cf_batch *b, struct cf_idvec *contents) CF_WUR;
/* content.c: deletes a content's chunks and its pending mark (synchronously). */
enum cf_status cf_content_destroy(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *content) CF_WUR;
/* Old versions (content.c, issue 21). cf_versions_walk(s, tk, file, fn, ctx): every version record of
 * file (NULL: of the whole tenant), oldest first per file, decoded; fn may take *v (zeroing it) and
 * stops the walk by returning anything but CF_OK. cf_version_drop(s, tk, file, version, b, contents):
 * deletes one version record into b and adds its content to contents (CF_ENOTFOUND if absent). */
typedef enum cf_status (*cf_version_visit_fn)(void *ctx, const struct cf_id *file, struct cf_version_info *v);
enum cf_status cf_versions_walk(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *file,
                                cf_version_visit_fn fn, void *ctx) CF_WUR;
enum cf_status cf_version_drop(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *file,
                               uint32_t version, struct cf_batch *b, struct cf_idvec *contents) CF_WUR;

/* dept.c: adds to b the deletion of every department membership of user (both indexes), so that a
 * deleted user is nobody's member (cf_user_delete's batch). */
enum cf_status cf_dept_forget_user(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *user,
                                   struct cf_batch *b) CF_WUR;

#endif
