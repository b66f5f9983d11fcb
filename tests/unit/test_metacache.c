/*
 * test_metacache.c: the metadata cache (storage/cache.h) on its own, then through a real store: the
 * generation race (a reader's token taken before a write is refused after it), a drop of everything,
 * remembered absence, the byte bound and LRU eviction, the invalidation hook, and that every write
 * of the store (cf_db_write_raw) invalidates what it touched before it returns.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache.h"
#include "store_internal.h"
#include "tap.h"

static int hook_calls;
static unsigned hook_ks;
static uint8_t hook_key[CF_CACHE_KEY_MAX];

static void hook(void *ctx, unsigned ks, const void *key, size_t klen)
{
    (void)ctx;
    hook_calls++;
    hook_ks = ks;
    if (klen > 0)
        memcpy(hook_key, key, klen);
}

static void key_of(uint8_t k[32], unsigned i)
{
    memset(k, 0, 32);
    memcpy(k, &i, sizeof i);
}

static void test_race(void)
{
    struct cf_cache *c = cf_cache_new(1 << 20);
    uint8_t k[32], *v;
    size_t vl;
    bool absent;
    struct cf_cache_token tok, tok2;
    key_of(k, 1);

    /* The reader misses and takes its token; a writer bumps the key; the reader's insert is refused. */
    CHECK_INT(cf_cache_get(c, 7, k, 32, &v, &vl, &absent, &tok), CF_ENOTFOUND, "a miss hands out a token");
    cf_cache_invalidate(c, 7, k, 32, false);
    cf_cache_put(c, 7, k, 32, &tok, "old", 3);
    CHECK_INT(cf_cache_get(c, 7, k, 32, &v, &vl, &absent, &tok2), CF_ENOTFOUND, "the stale insert was refused");
    struct cf_cache_stats st;
    cf_cache_stats(c, &st);
    CHECK_INT(st.refused, 1, "one insert refused");

    /* With the new token the insert lands and the next get is a hit with the same bytes. */
    cf_cache_put(c, 7, k, 32, &tok2, "new", 3);
    CHECK_INT(cf_cache_get(c, 7, k, 32, &v, &vl, &absent, &tok), CF_OK, "a hit after a clean insert");
    CHECK(v != NULL && vl == 3 && memcmp(v, "new", 3) == 0 && !absent, "the hit is a copy of the value");
    free(v);

    /* A write after the insert drops the entry. */
    cf_cache_invalidate(c, 7, k, 32, false);
    CHECK_INT(cf_cache_get(c, 7, k, 32, &v, &vl, &absent, &tok), CF_ENOTFOUND, "an invalidation drops the entry");

    /* Another keyspace with the same key bytes is another entry. */
    cf_cache_put(c, 7, k, 32, &tok, "seven", 5);
    CHECK_INT(cf_cache_get(c, 8, k, 32, &v, &vl, &absent, &tok2), CF_ENOTFOUND, "keyspaces do not mix");

    /* A drop of everything between a reader's token and its insert: refused; and it empties the cache. */
    cf_cache_drop_all(c, false);
    CHECK_INT(cf_cache_get(c, 7, k, 32, &v, &vl, &absent, &tok), CF_ENOTFOUND, "a drop of all empties the cache");
    cf_cache_drop_all(c, false);
    cf_cache_put(c, 7, k, 32, &tok, "old", 3);
    CHECK_INT(cf_cache_get(c, 7, k, 32, &v, &vl, &absent, &tok), CF_ENOTFOUND, "an insert across a drop of all is refused");

    /* Remembered absence. */
    cf_cache_put(c, 7, k, 32, &tok, NULL, 0);
    CHECK_INT(cf_cache_get(c, 7, k, 32, &v, &vl, &absent, &tok), CF_OK, "an absence is remembered");
    CHECK(absent && v == NULL && vl == 0, "and answered as absent");
    cf_cache_free(c);
}

static void test_bound(void)
{
    size_t max = 64 * 1024;
    struct cf_cache *c = cf_cache_new(max);
    uint8_t k[32], val[200], *v;
    size_t vl;
    bool absent;
    struct cf_cache_token tok;
    memset(val, 0xab, sizeof val);
    for (unsigned i = 0; i < 5000; i++) {
        key_of(k, i);
        if (cf_cache_get(c, 1, k, 32, &v, &vl, &absent, &tok) == CF_ENOTFOUND)
            cf_cache_put(c, 1, k, 32, &tok, val, sizeof val);
        else
            free(v);
    }
    struct cf_cache_stats st;
    cf_cache_stats(c, &st);
    CHECK(st.bytes <= max, "the cache stays within its bound (%llu ≤ %zu)", (unsigned long long)st.bytes, max);
    CHECK(st.evictions > 0 && st.entries > 0, "it evicted to stay there (%llu evictions, %llu entries)",
          (unsigned long long)st.evictions, (unsigned long long)st.entries);
    key_of(k, 4999);
    CHECK_INT(cf_cache_get(c, 1, k, 32, &v, &vl, &absent, &tok), CF_OK, "the most recent entry is kept");
    free(v);
    key_of(k, 0);
    CHECK_INT(cf_cache_get(c, 1, k, 32, &v, &vl, &absent, &tok), CF_ENOTFOUND, "the least recent went");
    cf_cache_free(c);

    struct cf_cache *off = cf_cache_new(0);
    CHECK_INT(cf_cache_get(off, 1, k, 32, &v, &vl, &absent, &tok), CF_ENOTFOUND, "a disabled cache misses");
    cf_cache_put(off, 1, k, 32, &tok, val, sizeof val);
    CHECK_INT(cf_cache_get(off, 1, k, 32, &v, &vl, &absent, &tok), CF_ENOTFOUND, "and keeps nothing");
    cf_cache_free(off);
}

static void test_hook(void)
{
    struct cf_cache *c = cf_cache_new(1 << 20);
    uint8_t k[32];
    key_of(k, 42);
    cf_cache_on_invalidate(hook, NULL);
    hook_calls = 0;
    cf_cache_invalidate(c, 3, k, 32, true);
    CHECK(hook_calls == 1 && hook_ks == 3 && memcmp(hook_key, k, 32) == 0, "a local invalidation is published");
    cf_cache_invalidate(c, 3, k, 32, false);
    CHECK_INT(hook_calls, 1, "an applied remote one is not");
    cf_cache_drop_all(c, true);
    CHECK(hook_calls == 2 && hook_ks == CF_CACHE_ALL, "a drop of all is published as CF_CACHE_ALL");
    cf_cache_on_invalidate(NULL, NULL);
    cf_cache_free(c);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Through a store: a user record read twice is a hit the second time; an update through the model
 * is seen by the very next read; a reader's token taken before a write of that key is refused. */
static void test_store(const char *base)
{
    struct cf_key master;
    cf_key_random(&master);
    char *dir = cf_xasprintf("%s/store", base);
    struct cf_store *s = NULL;
    CHECK_INT(cf_store_create(dir, &master), CF_OK, "store created");
    CHECK_INT(cf_store_open(dir, &master, &s), CF_OK, "store opened");
    if (s == NULL) {
        free(dir);
        return;
    }
    struct cf_tenant t;
    struct cf_user u = {0};
    CHECK_INT(cf_tenant_create(s, "acme", &t), CF_OK, "tenant");
    u.tenant = t.id;
    u.username = cf_xstrdup("ann");
    u.pwhash = cf_xstrdup("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g");
    CHECK_INT(cf_user_create(s, &u), CF_OK, "user");
    struct cf_id uid = u.id, root = u.private_root;
    cf_user_clear(&u);
    struct cf_node node;
    CHECK_INT(cf_node_get(s, &t.id, &root, &node), CF_OK, "the private root reads (and is cached)");
    cf_node_clear(&node);
    CHECK_INT(cf_user_get(s, &t.id, &uid, &u), CF_OK, "first read");
    cf_user_clear(&u);
    struct cf_store_stats a, b;
    cf_store_stats(s, &a);
    CHECK_INT(cf_user_get(s, &t.id, &uid, &u), CF_OK, "second read");
    cf_store_stats(s, &b);
    CHECK_INT(b.cache_hits - a.cache_hits, 1, "the second read is a cache hit");
    CHECK_INT(u.status, CF_USER_ACTIVE, "active");
    cf_user_clear(&u);

    /* A reader's token, then a model write of the same key, then the reader's insert: refused. */
    uint8_t key[32], *v;
    size_t vl;
    bool absent;
    struct cf_cache_token tok;
    cf_key2(key, &t.id, &uid);
    cf_cache_drop_all(s->cache, false);
    CHECK_INT(cf_node_get(s, &t.id, &root, &node), CF_OK, "the root is read again (and cached)");
    cf_node_clear(&node);
    CHECK_INT(cf_db_cache_get(s, CF_CF_USERS, key, 32, &v, &vl, &absent, &tok), CF_ENOTFOUND, "a reader's miss");
    CHECK_INT(cf_user_get(s, &t.id, &uid, &u), CF_OK, "read to modify");
    u.status = CF_USER_FROZEN;
    CHECK_INT(cf_user_put(s, &u), CF_OK, "freeze written");
    cf_user_clear(&u);
    cf_db_cache_put(s, CF_CF_USERS, key, 32, &tok, "stale", 5);
    struct cf_store_stats c1, c2;
    cf_store_stats(s, &c1);
    CHECK_INT(cf_node_get(s, &t.id, &root, &node), CF_OK, "the root still reads");
    cf_node_clear(&node);
    cf_store_stats(s, &c2);
    CHECK_INT(c2.cache_hits - c1.cache_hits, 1, "a write of one key left the others cached");
    CHECK_INT(cf_user_get(s, &t.id, &uid, &u), CF_OK, "read after the write");
    CHECK_INT(u.status, CF_USER_FROZEN, "the write is seen; the stale insert was refused");
    cf_user_clear(&u);
    CHECK_INT(cf_user_get(s, &t.id, &uid, &u), CF_OK, "and again, from the cache");
    CHECK_INT(u.status, CF_USER_FROZEN, "still frozen");
    cf_user_clear(&u);
    cf_store_stats(s, &b);
    CHECK(b.cache_invalidations > a.cache_invalidations && b.cache_refused >= 1, "stats count invalidations and refusals");

    cf_tenant_clear(&t);
    cf_store_close(s);
    cf_key_wipe(&master);
    free(dir);
}

int main(void)
{
    char base[] = "/tmp/coffer-unit-cache-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_race();
    test_bound();
    test_hook();
    test_store(base);
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
