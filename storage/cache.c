/*
 * cache.c: the metadata cache (cache.h). Owns its shards, their entries and generation counters, and
 * the process's on_invalidate hook; touches nothing else (no engine, no record format).
 *
 * Layout: CF_CACHE_SHARDS shards chosen by a keyed hash of (keyspace, key); each shard has a mutex, a
 * fixed chained hash table, an LRU list, a byte count and GEN_SLOTS generation counters (a key's
 * generation is the counter its hash falls on: collisions only make a put be refused more often).
 * The global epoch is one atomic counter. A miss hands out (epoch, generation) under the shard lock;
 * a put compares both under the same lock; an invalidation bumps the counter and unlinks the entry
 * under it. Values are wiped when an entry is dropped.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

#define CF_CACHE_SHARDS 16
#define GEN_SLOTS 256
#define ENTRY_GUESS 320 /* bytes per entry, to size the hash tables */

struct ent {
    struct ent *hnext, *prev, *next; /* hash chain; LRU: prev towards most recent */
    uint64_t h;
    uint32_t ks;
    uint8_t klen;
    bool absent;
    size_t vlen;
    uint8_t key[CF_CACHE_KEY_MAX];
    uint8_t val[];
};

struct shard {
    pthread_mutex_t lock;
    struct ent **tab;
    size_t mask;
    struct ent *mru, *lru;
    size_t bytes, max_bytes, entries;
    uint64_t gen[GEN_SLOTS];
    uint64_t hits, misses, evictions, invalidations, refused;
};

struct cf_cache {
    uint64_t seed;
    _Atomic uint64_t epoch;
    size_t max_bytes;
    struct shard sh[CF_CACHE_SHARDS];
};

static cf_cache_hook hook_fn;
static void *hook_ctx;

void cf_cache_on_invalidate(cf_cache_hook hook, void *ctx)
{
    hook_fn = hook;
    hook_ctx = ctx;
}

static uint64_t key_hash(const struct cf_cache *c, unsigned ks, const uint8_t *k, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ c->seed ^ ((uint64_t)ks << 56);
    for (size_t i = 0; i < n; i++) {
        h ^= k[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

static struct shard *shard_of(struct cf_cache *c, uint64_t h)
{
    return &c->sh[h & (CF_CACHE_SHARDS - 1)];
}

static uint64_t *gen_of(struct shard *sh, uint64_t h)
{
    return &sh->gen[(h >> 8) & (GEN_SLOTS - 1)];
}

struct cf_cache *cf_cache_new(size_t max_bytes)
{
    struct cf_cache *c = cf_xcalloc(1, sizeof *c);
    cf_random(&c->seed, sizeof c->seed);
    c->max_bytes = max_bytes;
    size_t per = max_bytes / CF_CACHE_SHARDS / ENTRY_GUESS, buckets = 16;
    while (buckets < per && buckets < ((size_t)1 << 20))
        buckets <<= 1;
    for (size_t i = 0; i < CF_CACHE_SHARDS; i++) {
        struct shard *sh = &c->sh[i];
        pthread_mutex_init(&sh->lock, NULL);
        sh->tab = cf_xcalloc(buckets, sizeof *sh->tab);
        sh->mask = buckets - 1;
        sh->max_bytes = max_bytes / CF_CACHE_SHARDS;
    }
    return c;
}

static size_t ent_size(const struct ent *e)
{
    return sizeof *e + e->vlen;
}

/* Unlinks e from its chain and the LRU list, wipes and frees it. Shard lock held. */
static void ent_drop(struct shard *sh, struct ent *e)
{
    struct ent **pp = &sh->tab[(e->h >> 16) & sh->mask];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        sh->mru = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        sh->lru = e->prev;
    sh->bytes -= ent_size(e);
    sh->entries--;
    cf_free_secret(e, ent_size(e));
}

static void shard_clear(struct shard *sh)
{
    while (sh->mru != NULL)
        ent_drop(sh, sh->mru);
}

void cf_cache_free(struct cf_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < CF_CACHE_SHARDS; i++) {
        shard_clear(&c->sh[i]);
        free(c->sh[i].tab);
        pthread_mutex_destroy(&c->sh[i].lock);
    }
    free(c);
}

static struct ent *ent_find(struct shard *sh, uint64_t h, unsigned ks, const void *key, size_t klen)
{
    for (struct ent *e = sh->tab[(h >> 16) & sh->mask]; e != NULL; e = e->hnext)
        if (e->h == h && e->ks == ks && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
}

static void lru_front(struct shard *sh, struct ent *e)
{
    if (sh->mru == e)
        return;
    e->prev->next = e->next; /* e is not first, so it has a prev */
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        sh->lru = e->prev;
    e->prev = NULL;
    e->next = sh->mru;
    sh->mru->prev = e;
    sh->mru = e;
}

enum cf_status cf_cache_get(struct cf_cache *c, unsigned ks, const void *key, size_t klen, uint8_t **val,
                            size_t *vlen, bool *absent, struct cf_cache_token *tok)
{
    uint64_t h = key_hash(c, ks, key, klen);
    struct shard *sh = shard_of(c, h);
    *val = NULL;
    *vlen = 0;
    *absent = false;
    pthread_mutex_lock(&sh->lock);
    struct ent *e = klen <= CF_CACHE_KEY_MAX ? ent_find(sh, h, ks, key, klen) : NULL;
    if (e == NULL) {
        sh->misses++;
        tok->epoch = atomic_load(&c->epoch);
        tok->gen = *gen_of(sh, h);
        pthread_mutex_unlock(&sh->lock);
        return CF_ENOTFOUND;
    }
    sh->hits++;
    lru_front(sh, e);
    *absent = e->absent;
    if (!e->absent) {
        *val = cf_xmalloc(e->vlen > 0 ? e->vlen : 1);
        memcpy(*val, e->val, e->vlen);
        *vlen = e->vlen;
    }
    pthread_mutex_unlock(&sh->lock);
    return CF_OK;
}

void cf_cache_put(struct cf_cache *c, unsigned ks, const void *key, size_t klen, const struct cf_cache_token *tok,
                  const void *val, size_t vlen)
{
    if (klen > CF_CACHE_KEY_MAX || c->max_bytes == 0)
        return;
    uint64_t h = key_hash(c, ks, key, klen);
    struct shard *sh = shard_of(c, h);
    size_t need = sizeof(struct ent) + (val != NULL ? vlen : 0);
    if (need > sh->max_bytes / 4)
        return; /* one record may not push out a quarter of its shard */
    struct ent *e = cf_xcalloc(1, need);
    e->h = h;
    e->ks = ks;
    e->klen = (uint8_t)klen;
    memcpy(e->key, key, klen);
    e->absent = val == NULL;
    e->vlen = val != NULL ? vlen : 0;
    if (val != NULL)
        memcpy(e->val, val, vlen);
    pthread_mutex_lock(&sh->lock);
    bool stale = tok->epoch != atomic_load(&c->epoch) || tok->gen != *gen_of(sh, h);
    if (stale || ent_find(sh, h, ks, key, klen) != NULL) {
        /* Invalidated since the reader took its token (or another reader was first). */
        sh->refused += stale;
        pthread_mutex_unlock(&sh->lock);
        cf_free_secret(e, need);
        return;
    }
    while (sh->lru != NULL && sh->bytes + need > sh->max_bytes) {
        ent_drop(sh, sh->lru);
        sh->evictions++;
    }
    struct ent **b = &sh->tab[(h >> 16) & sh->mask];
    e->hnext = *b;
    *b = e;
    e->next = sh->mru;
    if (sh->mru != NULL)
        sh->mru->prev = e;
    sh->mru = e;
    if (sh->lru == NULL)
        sh->lru = e;
    sh->bytes += need;
    sh->entries++;
    pthread_mutex_unlock(&sh->lock);
}

void cf_cache_invalidate(struct cf_cache *c, unsigned ks, const void *key, size_t klen, bool publish)
{
    if (klen > CF_CACHE_KEY_MAX) {
        cf_cache_drop_all(c, publish);
        return;
    }
    uint64_t h = key_hash(c, ks, key, klen);
    struct shard *sh = shard_of(c, h);
    pthread_mutex_lock(&sh->lock);
    (*gen_of(sh, h))++;
    sh->invalidations++;
    struct ent *e = ent_find(sh, h, ks, key, klen);
    if (e != NULL)
        ent_drop(sh, e);
    pthread_mutex_unlock(&sh->lock);
    if (publish && hook_fn != NULL)
        hook_fn(hook_ctx, ks, key, klen);
}

void cf_cache_drop_all(struct cf_cache *c, bool publish)
{
    atomic_fetch_add(&c->epoch, 1);
    for (size_t i = 0; i < CF_CACHE_SHARDS; i++) {
        struct shard *sh = &c->sh[i];
        pthread_mutex_lock(&sh->lock);
        sh->invalidations++;
        shard_clear(sh);
        pthread_mutex_unlock(&sh->lock);
    }
    if (publish && hook_fn != NULL)
        hook_fn(hook_ctx, CF_CACHE_ALL, NULL, 0);
}

void cf_cache_stats(struct cf_cache *c, struct cf_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    out->max_bytes = c->max_bytes;
    for (size_t i = 0; i < CF_CACHE_SHARDS; i++) {
        struct shard *sh = &c->sh[i];
        pthread_mutex_lock(&sh->lock);
        out->hits += sh->hits;
        out->misses += sh->misses;
        out->evictions += sh->evictions;
        out->invalidations += sh->invalidations;
        out->refused += sh->refused;
        out->entries += sh->entries;
        out->bytes += sh->bytes;
        pthread_mutex_unlock(&sh->lock);
    }
}
