/*
 * blob.h: the blob seam for chunk bodies. Chunks are large, written once, never rewritten, read whole
 * by key, and deleted per content or per tenant; an object store (Ceph RADOS, issue 24) can keep them
 * apart from the metadata engine (engine.h). The model sees only these calls; docs/DESIGN.md "The
 * storage engine" has each operation's contract and the crash ordering the model keeps around them.
 *
 * Keys: T ‖ content ‖ index:u32 (big-endian), CF_BLOB_KEY_LEN bytes; "the blobs of one content" are
 * those whose key starts with T ‖ content (CF_BLOB_OWNER_LEN), "of a tenant" those starting with T
 * (CF_BLOB_TENANT_LEN). Values are opaque (sealed chunks: bound to their key by their AEAD, so a
 * blob store need not authenticate them). Errors as engine.h: 0, CF_ENG_NOTFOUND where stated, else
 * CF_ENG_ERR with *err malloc'ed (free with cf_eng_free).
 *
 * Contract, written for an object store: every call acts on one blob or on a set of blobs with no
 * atomicity across blobs; a crash in the middle of a call, or between calls, leaves at most some
 * blobs that no committed metadata names (orphans), which the model's pending marks and orphan
 * collection remove. A put is durable once cf_blob_flush has returned after it (an implementation
 * that writes through, as a RADOS one should, is durable on acknowledgement and its flush waits for
 * nothing). Deletes are durable on acknowledgement.
 *
 * The first implementation (blob_eng.c) keeps blobs in the engine's `large` keyspace exactly as the
 * store always has (same keys, same values): a put is an unsynced engine write, and its flush is a
 * no-op because the model's next synced engine write (the commit) follows it in the same write-ahead
 * log and makes it durable. The second (blob_rados.c, issue 24) keeps each blob as one Ceph RADOS
 * object; the store chooses one at open (store.c), and the calls below dispatch through a small table
 * of operations.
 */
#ifndef CF_ENGINE_BLOB_H
#define CF_ENGINE_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"

enum { CF_BLOB_TENANT_LEN = 16, CF_BLOB_OWNER_LEN = 32, CF_BLOB_KEY_LEN = 36 };

/* An open blob store. Each implementation's own state begins with this struct; the cf_blob_* calls
 * below dispatch through its ops (chosen at open: blob_eng.c, blob_rados.c). */
struct cf_blobs;
struct cf_blob_ops {
    const char *name; /* "engine", "rados" */
    void (*close)(struct cf_blobs *b);
    int (*put)(struct cf_blobs *b, const uint8_t *key, const void *val, size_t vlen, char **err);
    int (*flush)(struct cf_blobs *b, char **err);
    bool ordered;
    int (*get)(struct cf_blobs *b, const uint8_t *key, char **val, size_t *vlen, char **err);
    int (*view)(struct cf_blobs *b, const uint8_t *key, void (*fn)(void *ctx, const char *val, size_t vlen),
                void *ctx, char **err);
    int (*delete_owner)(struct cf_blobs *b, const uint8_t *owner, char **err);
    int (*delete_tenant)(struct cf_blobs *b, const uint8_t *tenant, char **err);
    int (*list)(struct cf_blobs *b, const uint8_t *prefix, size_t plen,
                int (*fn)(void *ctx, const uint8_t *key, size_t klen), void *ctx, char **err);
};
struct cf_blobs {
    const struct cf_blob_ops *ops;
};

/* cf_blobs_open_engine(e, ks): the blob store that keeps its blobs in keyspace ks of e (the spec's
 * `large` one). e must outlive it. Never fails. */
struct cf_blobs *cf_blobs_open_engine(struct cf_eng *e, unsigned ks);

/* A Ceph RADOS blob store (blob_rados.c; docs/CLUSTER.md "Ceph RADOS"): one object per blob, named by
 * its key in hex, in one RADOS namespace per tenant (the tenant's 16 bytes in hex) of pool. */
struct cf_rados_conf {
    const char *conf;    /* ceph.conf: monitors (NULL: librados' default search) */
    const char *pool;    /* the pool (must exist) */
    const char *user;    /* the cephx id without "client." (NULL: "admin") */
    const char *keyring; /* its keyring file (NULL: as ceph.conf says) */
    unsigned op_timeout; /* seconds a monitor or OSD operation may take before it fails (0: 30) */
};
/* cf_blobs_open_rados(conf, out, err): connects (within op_timeout) and opens the pool. A call that
 * times out, here or later, fails with a message starting "Unavailable:" (cf_blob_unavailable). A
 * build without librados (meson -Drados=disabled) always fails here, saying so. */
int cf_blobs_open_rados(const struct cf_rados_conf *conf, struct cf_blobs **out, char **err);
/* cf_blob_unavailable(err): whether a blob store's error says the store is out of reach for now
 * (timed out, cluster down) rather than broken: the model answers CF_EUNAVAIL (503), not fail-stop. */
static inline bool cf_blob_unavailable(const char *err)
{
    return err != NULL && strncmp(err, "Unavailable:", 12) == 0;
}

static inline void cf_blobs_close(struct cf_blobs *b)
{
    if (b != NULL)
        b->ops->close(b);
}

/* cf_blob_put(b, key, val, vlen, err): stores val under key (CF_BLOB_KEY_LEN bytes), replacing a
 * blob of that key. Visible to cf_blob_get on return; durable after the next cf_blob_flush. */
static inline int cf_blob_put(struct cf_blobs *b, const uint8_t *key, const void *val, size_t vlen, char **err)
{
    return b->ops->put(b, key, val, vlen, err);
}
/* cf_blob_flush(b, err): every put acknowledged before the call is durable when it returns. The
 * model calls it before the synced metadata write that makes the blobs reachable (an upload's
 * commit). RocksDB: a no-op (the WAL orders the puts before that write). RADOS: wait for every
 * outstanding write's safe completion (none if puts wait for it themselves). */
static inline int cf_blob_flush(struct cf_blobs *b, char **err)
{
    return b->ops->flush(b, err);
}
/* cf_blobs_ordered(b): true if every engine write acknowledged before a put is durable no later than
 * the put (RocksDB: one write-ahead log for both), so the model may write a pending mark unsynced
 * before its content's first put. False (RADOS): the model writes the mark synced. */
static inline bool cf_blobs_ordered(const struct cf_blobs *b)
{
    return b->ops->ordered;
}
/* cf_blob_get(b, key, val, vlen, err): the blob of key, *val malloc'ed (free with cf_eng_free);
 * CF_ENG_NOTFOUND if absent. Sees every put acknowledged before the call. */
static inline int cf_blob_get(struct cf_blobs *b, const uint8_t *key, char **val, size_t *vlen, char **err)
{
    return b->ops->get(b, key, val, vlen, err);
}
/* cf_blob_view(b, key, fn, ctx, err): calls fn(ctx, val, vlen) once with the blob of key, valid only
 * during the call: the reader decrypts straight from it (RocksDB: the value pinned in the engine, no
 * copy for the caller; an object store passes its read buffer). CF_ENG_NOTFOUND if absent (fn not
 * called). Sees every put acknowledged before the call. */
static inline int cf_blob_view(struct cf_blobs *b, const uint8_t *key,
                               void (*fn)(void *ctx, const char *val, size_t vlen), void *ctx, char **err)
{
    return b->ops->view(b, key, fn, ctx, err);
}
/* cf_blob_delete_owner(b, owner, err): deletes every blob whose key starts with owner
 * (CF_BLOB_OWNER_LEN bytes: one content's chunks). Durable on return; absent blobs are not an error.
 * A failure may have deleted some of them. */
static inline int cf_blob_delete_owner(struct cf_blobs *b, const uint8_t *owner, char **err)
{
    return b->ops->delete_owner(b, owner, err);
}
/* cf_blob_delete_tenant(b, tenant, err): the same for every blob of a tenant (CF_BLOB_TENANT_LEN). */
static inline int cf_blob_delete_tenant(struct cf_blobs *b, const uint8_t *tenant, char **err)
{
    return b->ops->delete_tenant(b, tenant, err);
}
/* cf_blob_list(b, prefix, plen, fn, ctx, err): calls fn(ctx, key, klen) for every blob key starting
 * with prefix (plen 0: every blob), in increasing key order, until fn returns non-zero (then returns
 * 0). A store may also hold keys that are not CF_BLOB_KEY_LEN long (damage): they are listed as
 * they are. The listing need not be a snapshot: blobs put or deleted meanwhile may or may not be seen. */
static inline int cf_blob_list(struct cf_blobs *b, const uint8_t *prefix, size_t plen,
                               int (*fn)(void *ctx, const uint8_t *key, size_t klen), void *ctx, char **err)
{
    return b->ops->list(b, prefix, plen, fn, ctx, err);
}

#endif
