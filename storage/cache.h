/*
 * cache.h: the in-memory cache of decoded metadata records (issue 19): plaintext values keyed by
 * (keyspace, invalidation key), bounded in bytes, sharded, LRU per shard, with generation-based
 * invalidation. It knows nothing of what a record means nor of the engine: storage/db.c feeds it
 * (reads through cf_get_sealed and friends, invalidations from every engine write), nothing else
 * writes to it. docs/DESIGN.md "The metadata cache" has the contract.
 *
 * The race rule: a reader takes a token (cf_cache_get on a miss) BEFORE it reads the engine and
 * hands it back to cf_cache_put; the put is refused if the key's generation or the global epoch
 * moved in between. A writer calls cf_cache_invalidate AFTER its engine write and before the write
 * returns to its caller. Hence a value read before a write can never be installed after it, and
 * once a write has returned no reader gets the old value from here.
 *
 * Values are plaintext of sealed records: they live in memory only, are wiped when dropped, and are
 * copied out on a hit (the caller frees the copy with cf_free_secret). Thread: any.
 */
#ifndef CF_CACHE_H
#define CF_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"

#define CF_CACHE_KEY_MAX 48
#define CF_CACHE_ALL 0xffffffffu /* the keyspace an on_invalidate hook is told for a drop of everything */

struct cf_cache;
struct cf_cache_token {
    uint64_t epoch, gen;
};
struct cf_cache_stats {
    uint64_t hits, misses, evictions, invalidations, refused, entries, bytes, max_bytes;
};

/* cf_cache_new(max_bytes): an empty cache holding at most about max_bytes (entries and values); 0:
 * a disabled cache (every get misses, every put is dropped, invalidations still counted). */
struct cf_cache *cf_cache_new(size_t max_bytes);
void cf_cache_free(struct cf_cache *c);

/* cf_cache_get(c, ks, key, klen, val, vlen, tok): CF_OK with *val a malloc'ed copy (NULL and *vlen 0
 * for a remembered absence: *absent true), or CF_ENOTFOUND on a miss with *tok to give to
 * cf_cache_put after reading the engine. klen ≤ CF_CACHE_KEY_MAX. */
enum cf_status cf_cache_get(struct cf_cache *c, unsigned ks, const void *key, size_t klen, uint8_t **val,
                            size_t *vlen, bool *absent, struct cf_cache_token *tok) CF_WUR;
/* cf_cache_put(c, ks, key, klen, tok, val, vlen): installs val (NULL: the key is absent) unless the
 * key was invalidated since tok was taken. Evicts the least recently used entries of the shard to
 * stay within the bound. */
void cf_cache_put(struct cf_cache *c, unsigned ks, const void *key, size_t klen, const struct cf_cache_token *tok,
                  const void *val, size_t vlen);
/* cf_cache_invalidate(c, ks, key, klen, publish): bumps the key's generation and drops its entry;
 * publish: also hand it to the on_invalidate hook (a local write; false when applying an
 * invalidation received from another node). */
void cf_cache_invalidate(struct cf_cache *c, unsigned ks, const void *key, size_t klen, bool publish);
/* cf_cache_drop_all(c, publish): bumps the global epoch and drops every entry (key rotation, tenant
 * deletion, range deletions, restore, a batch that cannot be read). */
void cf_cache_drop_all(struct cf_cache *c, bool publish);
void cf_cache_stats(struct cf_cache *c, struct cf_cache_stats *out);

/* The seam for a cluster (issue 24): every invalidation a local write makes (publish true) is also
 * handed to this hook (ks CF_CACHE_ALL for a drop of everything), on the writer's thread, after the
 * local invalidation and before the write returns. A cluster mode broadcasts them (PostgreSQL
 * NOTIFY) and applies what it receives with publish false. One hook per process; set before any
 * store opens. */
typedef void (*cf_cache_hook)(void *ctx, unsigned ks, const void *key, size_t klen);
void cf_cache_on_invalidate(cf_cache_hook hook, void *ctx);

#endif
