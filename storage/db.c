/*
 * db.c: raw access to the store's engine (engine/engine.h): the keyspace (column family) names, get,
 * the engine write and its failure (fail-stop), iteration, the sealed-record helpers every record type
 * uses, and the engine's statistics. Opening, closing and the journaled write path are in store.c.
 *
 * The metadata cache (cache.h) is fed here and only here: cached keyspaces are read through
 * cf_get_sealed / cf_db_cache_get, and every engine write (cf_db_write_raw, the one call of
 * cf_eng_write for records) invalidates each key its batch put or deleted before it returns, so no
 * writer can forget to. docs/DESIGN.md "The metadata cache".
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

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

size_t cf_store_cache_bytes = (size_t)64 << 20;

/* Report an engine error once, here, and turn it into a status. */
static void (*write_failure_hook)(const char *what, const char *err);
static enum cf_status db_error(const char *what, char *err);

void cf_store_on_write_failure(void (*hook)(const char *what, const char *err))
{
    write_failure_hook = hook;
}

/* A write the engine refused: after an I/O error RocksDB keeps refusing writes until the database is
 * reopened (its background error), so the owner of the process is told (see storage.h). A store
 * several processes write (PostgreSQL) out of reach is not that: the write answers 503 and the next
 * ones go through once the database is back; what this process remembers of the store may be stale
 * (another node may have written meanwhile, and a commit that got no answer may be in or not), so the
 * metadata cache goes (the journal and provenance heads are re-read under their locks anyway). */
static enum cf_status db_write_error(struct cf_store *s, const char *what, char *err)
{
    if (cf_eng_multiwriter(s->eng) && strncmp(err, "Unavailable:", 12) == 0) {
        if (s->cache != NULL)
            cf_cache_drop_all(s->cache, false);
        return db_error(what, err);
    }
    atomic_store(&s->write_failed, true);
    if (write_failure_hook != NULL)
        write_failure_hook(what, err);
    return db_error(what, err);
}

enum cf_status cf_db_error(const char *what, char *err)
{
    return db_error(what, err);
}

static enum cf_status db_error(const char *what, char *err)
{
    enum cf_status st = CF_EIO;
    if (err == NULL) {
        cf_storage_log(CF_LOG_ERROR, "storage: %s: failed (no message)", what);
        return st;
    }
    if (strstr(err, "lock file") != NULL || strstr(err, "LOCK") != NULL)
        st = CF_EBUSY;
    else if (strstr(err, "Corruption") != NULL)
        st = CF_ECORRUPT;
    else if (strncmp(err, "Unavailable:", 12) == 0)
        st = CF_EUNAVAIL; /* a database out of reach for now (PostgreSQL engine): 503 */
    if (st != CF_EBUSY)
        cf_storage_log(CF_LOG_ERROR, "storage: %s: %s", what, err);
    cf_eng_free(err);
    return st;
}

/* ---- raw access ----------------------------------------------------------------------------- */

enum cf_status cf_db_get(struct cf_store *s, enum cf_cf cf, const void *key, size_t klen, char **val, size_t *vlen)
{
    char *err = NULL;
    int r = cf_eng_get(s->eng, cf, key, klen, val, vlen, &err);
    if (r == CF_ENG_ERR)
        return db_error("get", err);
    if (r == CF_ENG_NOTFOUND)
        return CF_ENOTFOUND;
    return CF_OK;
}

/* ---- the metadata cache --------------------------------------------------------------------- */

/* The keyspaces the cache holds, and the length of a key's invalidation key: the whole key for
 * point records, the (tenant, user) prefix for the memberships list. 0: not cached. */
static const uint8_t cache_klen[CF_CF_COUNT] = {
    [CF_CF_SESSIONS] = CF_SHA256_LEN, [CF_CF_USERS] = 32, [CF_CF_NODES] = 32, [CF_CF_ACL] = 32,
    [CF_CF_MEMBERSHIPS] = 32,
};

/* Departments (dept.c) share two keyspaces with groups, told apart by their keys' lengths: their
 * records (groups, T ‖ 'D' ‖ dept: 33 bytes) are cached whole, and a user's department list
 * (memberships, T ‖ 'D' ‖ user ‖ dept: 49 bytes) under its 33-byte prefix T ‖ 'D' ‖ user. */
#define DEPT_CACHE_KLEN 33
#define DEPT_PAIR_KLEN 49

/* The invalidation key length of a key of length kl in ks (0: not cached; never more than kl). */
static size_t cache_ikey_len(unsigned ks, size_t kl)
{
    if (ks == CF_CF_GROUPS)
        return kl == DEPT_CACHE_KLEN ? DEPT_CACHE_KLEN : 0;
    if (ks == CF_CF_MEMBERSHIPS && kl == DEPT_PAIR_KLEN)
        return DEPT_CACHE_KLEN;
    return ks < CF_CF_COUNT ? cache_klen[ks] : 0;
}

/* Whether a cache key of length klen is one the cache holds in cf. */
static bool cache_key_ok(enum cf_cf cf, size_t klen)
{
    if ((cf == CF_CF_GROUPS || cf == CF_CF_MEMBERSHIPS) && klen == DEPT_CACHE_KLEN)
        return true;
    return cache_klen[cf] != 0 && klen == cache_klen[cf];
}

enum cf_status cf_db_cache_get(struct cf_store *s, enum cf_cf cf, const void *key, size_t klen, uint8_t **val,
                               size_t *vlen, bool *absent, struct cf_cache_token *tok)
{
    if (s->cache == NULL || !cache_key_ok(cf, klen)) {
        *tok = (struct cf_cache_token){0};
        *val = NULL;
        return CF_ENOTFOUND;
    }
    return cf_cache_get(s->cache, cf, key, klen, val, vlen, absent, tok);
}

void cf_db_cache_put(struct cf_store *s, enum cf_cf cf, const void *key, size_t klen, const struct cf_cache_token *tok,
                     const void *val, size_t vlen)
{
    if (s->cache != NULL && cache_key_ok(cf, klen))
        cf_cache_put(s->cache, cf, key, klen, tok, val, vlen);
}

void cf_db_cache_drop_all(struct cf_store *s)
{
    if (s->cache != NULL)
        cf_cache_drop_all(s->cache, true);
}

/* Whom invalidate_op works for: a local write publishes its invalidations (cache.h's hook); changes
 * other processes made (cf_store_catch_up) do not. */
struct inval {
    struct cf_store *s;
    bool publish;
};

/* One operation of a written batch (or of another process's change, from the engine's feed): non-zero
 * if the whole cache must go. The one rule for both. */
static int invalidate_op(void *ctx, enum cf_batch_op op, unsigned ks, const uint8_t *k, size_t kl, const uint8_t *v,
                         size_t vl)
{
    (void)v, (void)vl;
    const struct inval *in = ctx;
    struct cf_store *s = in->s;
    if (ks == CF_CF_KEYS)
        return 1; /* a tenant key created, rotated or destroyed */
    if (ks >= CF_CF_COUNT)
        return 0;
    if (op == CF_BATCH_DELETE_RANGE)
        return cache_klen[ks] != 0 || ks == CF_CF_GROUPS; /* a range deletion over a cached keyspace */
    size_t ikl = cache_ikey_len(ks, kl);
    if (ikl == 0)
        return 0;
    if (kl < ikl)
        return 1;
    cf_cache_invalidate(s->cache, ks, k, ikl, in->publish);
    return 0;
}

/* Invalidates every cached key the batch put or deleted (listed by the engine, cf_batch_each);
 * anything it cannot list drops the whole cache. */
static void cache_invalidate_batch(struct cf_store *s, const struct cf_batch *b)
{
    struct inval in = {s, true};
    if (s->cache != NULL && cf_batch_each(b, invalidate_op, &in) != CF_ENG_OK)
        cf_cache_drop_all(s->cache, true);
}

/* Raises feed_applied to v (1 + a change number) unless a concurrent catch-up went further. */
static void feed_advance(struct cf_store *s, uint64_t v)
{
    uint64_t cur = atomic_load(&s->feed_applied);
    while (cur < v && !atomic_compare_exchange_weak(&s->feed_applied, &cur, v))
        ;
}

/* Besides the cache, the tenant keys (keyring.c) and the name index (search.c) follow other processes'
 * writes: follow_op hands them each operation (memory only: they read the store on their next use),
 * follow_lost tells all three that the feed was lost (the first catch-up, a gap, an error). follow_op
 * goes on after an operation that drops the whole cache, so that the others see every operation. */
static void follow_lost(struct cf_store *s)
{
    if (s->cache != NULL)
        cf_cache_drop_all(s->cache, false);
    cf_tkeys_lost_fn lost = atomic_load(&s->tkeys_lost);
    if (lost != NULL)
        lost(s);
    if (s->search_lost != NULL)
        s->search_lost(s);
}

static int follow_op(void *ctx, enum cf_batch_op op, unsigned ks, const uint8_t *k, size_t kl, const uint8_t *v,
                     size_t vl)
{
    const struct inval *in = ctx;
    struct cf_store *s = in->s;
    if (s->cache != NULL && invalidate_op(ctx, op, ks, k, kl, v, vl) != 0)
        cf_cache_drop_all(s->cache, false);
    cf_tkeys_follow_fn follow = atomic_load(&s->tkeys_follow);
    if (follow != NULL)
        follow(s, op, ks, k, kl, v, vl);
    if (s->search_follow != NULL)
        s->search_follow(s, op, ks, k, kl, v, vl);
    return 0;
}

/* Lock-free: concurrent catch-ups may apply the same change twice (an invalidation is idempotent);
 * feed_applied only moves up, and only to a change its setter has applied, so a request that starts
 * after a catch-up returned never skips what that one read. The first call that has a feed to follow
 * (cache state unknown: other processes may have written since the open) drops everything and starts
 * from the newest change, read before the drop. Nothing to follow (RocksDB, or the store's one
 * writer) costs one indirect call and no I/O. */
enum cf_status cf_store_catch_up(struct cf_store *s)
{
    uint64_t applied = atomic_load(&s->feed_applied), last = 0;
    char *err = NULL;
    int r;
    struct inval in = {s, false};
    if (applied == 0)
        r = cf_eng_change_seq(s->eng, &last, &err);
    else
        r = cf_eng_changes(s->eng, applied - 1, follow_op, &in, &last, &err);
    if (r == CF_ENG_NOTFOUND) {
        atomic_store(&s->feed_applied, 0); /* if it ever has one to follow (a lost lock): start afresh */
        return CF_OK;
    }
    if (r == CF_ENG_ERR) {
        follow_lost(s); /* what others wrote is unknown: read the engine */
        if (applied != 0)
            feed_advance(s, last + 1); /* past a damaged change, if that was it (after the drop) */
        return db_error("change feed", err);
    }
    if (applied == 0 || r == CF_ENG_GAP)
        follow_lost(s);
    feed_advance(s, last + 1);
    return CF_OK;
}

/* ---- the namespace lock ------------------------------------------------------------------------ */

void cf_cluster_lock(struct cf_store *s, pthread_mutex_t *mu, enum cf_eng_lock which)
{
    pthread_mutex_lock(mu);
    char *err = NULL;
    if (cf_eng_lock(s->eng, which, &err) != CF_ENG_OK) {
        /* Not held in the database: the engine now refuses this thread's writes until the unlock, so
         * whatever the caller goes on to do under it cannot write unguarded (it answers 503). */
        if (cf_db_error("taking a cluster lock", err) != CF_OK) {
            /* logged */
        }
        return;
    }
    /* A reader under the lock sees every write other nodes made before they released it. */
    if (cf_eng_multiwriter(s->eng))
        (void)cf_store_catch_up(s); /* a failure dropped the cache: reads go to the engine */
}

void cf_cluster_unlock(struct cf_store *s, pthread_mutex_t *mu, enum cf_eng_lock which)
{
    cf_eng_unlock(s->eng, which);
    pthread_mutex_unlock(mu);
}

void cf_ns_lock(struct cf_store *s)
{
    cf_cluster_lock(s, &s->ns_lock, CF_ENG_LOCK_NS);
}

void cf_ns_unlock(struct cf_store *s)
{
    cf_cluster_unlock(s, &s->ns_lock, CF_ENG_LOCK_NS);
}

enum cf_status cf_db_write_raw(struct cf_store *s, struct cf_batch *b, bool sync)
{
    char *err = NULL;
    int r = cf_eng_write(s->eng, b, sync, &err);
    /* After the write (a reader that read the old value then holds a token that is now refused) and
     * before it returns: once a write is acknowledged no reader gets the old value from the cache. A
     * failed write applied nothing, but invalidating anyway costs nothing. */
    cache_invalidate_batch(s, b);
    if (r != CF_ENG_OK)
        return db_write_error(s, "write", err);
    if (s->search_apply != NULL)
        s->search_apply(s, b); /* the name index (search.c), from the same listing of the batch */
    return CF_OK;
}

enum cf_status cf_db_write_failed(struct cf_store *s, const char *what, char *err)
{
    return db_write_error(s, what, err);
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
    if (i > 0) {
        it->upper[i - 1]++;
        it->upper_len = i;
    }
    it->it = cf_eiter_open(s->eng, cf, NULL, 0, i > 0 ? it->upper : NULL, it->upper_len);
    cf_eiter_seek(it->it, prefix, plen);
}

enum cf_status cf_sealed_list(struct cf_store *s, enum cf_cf cf, const struct cf_key *rk, const void *prefix,
                              size_t plen, size_t klen, size_t skip_klen, size_t size, cf_list_decode_fn decode,
                              void (*clear)(void *elem), const void *ctx, void **out, size_t *n)
{
    struct cf_iter it;
    size_t cnt = 0, cap = 8;
    char *arr = cf_xcalloc(cap, size);
    enum cf_status st = CF_OK;
    cf_iter_open(s, cf, prefix, plen, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl, ptlen;
        const char *k = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        uint8_t *pt;
        if (kl != klen) {
            if (skip_klen == SIZE_MAX || kl == skip_klen)
                continue;
            st = CF_ECORRUPT;
            break;
        }
        if ((st = cf_unseal(cf, rk, k, kl, (const uint8_t *)v, vl, &pt, &ptlen)) != CF_OK)
            break;
        if (cnt == cap) {
            cap *= 2;
            arr = cf_xrealloc(arr, cap * size);
        }
        void *e = arr + cnt * size;
        memset(e, 0, size);
        st = decode(e, (const uint8_t *)k, pt, ptlen, ctx);
        cf_free_secret(pt, ptlen);
        cnt++;
        if (st != CF_OK)
            break;
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    if (st != CF_OK) {
        for (size_t i = 0; i < cnt; i++)
            clear(arr + i * size);
        free(arr);
        return st;
    }
    *out = arr;
    *n = cnt;
    return CF_OK;
}

void cf_iter_close(struct cf_iter *it)
{
    cf_eiter_close(it->it);
}

enum cf_status cf_iter_status(struct cf_iter *it)
{
    char *err = NULL;
    if (cf_eiter_status(it->it, &err) != CF_ENG_OK)
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

void cf_seal_batch_put(struct cf_batch *b, struct cf_store *s, enum cf_cf cf, const struct cf_key *k,
                       const void *key, size_t klen, const struct cf_rec_w *rec, const void *prefix,
                       size_t prefix_len)
{
    (void)s; /* the batch knows its engine */
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
    cf_batch_put(b, cf, key, klen, (const char *)val, vlen);
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
    bool absent;
    struct cf_cache_token tok;
    if (cf_db_cache_get(s, cf, key, klen, out, outlen, &absent, &tok) == CF_OK)
        return absent ? CF_ENOTFOUND : CF_OK;
    enum cf_status st = cf_db_get(s, cf, key, klen, &val, &vlen);
    if (st == CF_ENOTFOUND)
        cf_db_cache_put(s, cf, key, klen, &tok, NULL, 0);
    if (st != CF_OK)
        return st;
    st = cf_unseal(cf, k, key, klen, (const uint8_t *)val, vlen, out, outlen);
    cf_eng_free(val);
    if (st == CF_OK)
        cf_db_cache_put(s, cf, key, klen, &tok, *out, *outlen);
    return st;
}

/* ---- statistics ------------------------------------------------------------------------------ */

void cf_store_stats(struct cf_store *s, struct cf_store_stats *out)
{
    struct cf_eng_stats e;
    cf_eng_stats(s->eng, &e);
    *out = (struct cf_store_stats){
        .sst_bytes = e.sst_bytes,
        .blob_bytes = e.blob_bytes,
        .blob_files = e.blob_files,
        .live_data_bytes = e.live_data_bytes,
        .memtable_bytes = e.memtable_bytes,
        .pending_compaction_bytes = e.pending_compaction_bytes,
        .running_compactions = e.running_compactions,
        .running_flushes = e.running_flushes,
        .background_errors = e.background_errors,
        .write_stopped = e.write_stopped,
        .delayed_write_rate = e.delayed_write_rate,
        .stall_known = e.stall_known,
        .stall_ms = e.stall_ms,
    };
    if (s->cache != NULL) {
        struct cf_cache_stats c;
        cf_cache_stats(s->cache, &c);
        out->cache_hits = c.hits;
        out->cache_misses = c.misses;
        out->cache_evictions = c.evictions;
        out->cache_invalidations = c.invalidations;
        out->cache_refused = c.refused;
        out->cache_entries = c.entries;
        out->cache_bytes = c.bytes;
        out->cache_max_bytes = c.max_bytes;
    }
}

void cf_idvec_push(struct cf_idvec *iv, const struct cf_id *id)
{
    if (iv->n == iv->cap) {
        iv->cap = iv->cap == 0 ? 16 : iv->cap * 2;
        iv->v = cf_xrealloc(iv->v, iv->cap * sizeof *iv->v);
    }
    iv->v[iv->n++] = *id;
}

enum cf_status cf_id_suffixes(struct cf_store *s, enum cf_cf cf, const void *prefix, size_t plen,
                              int (*keep)(void *ctx, const char *val, size_t vlen), void *ctx, struct cf_id **out,
                              size_t *n)
{
    struct cf_iter it;
    struct cf_idvec v = {0};
    enum cf_status st = CF_OK;
    cf_iter_open(s, cf, prefix, plen, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl;
        const char *k = cf_eiter_key(it.it, &kl);
        int k_ok = kl == plen + CF_ID_LEN ? 1 : -1;
        if (k_ok == 1 && keep != NULL) {
            const char *val = cf_eiter_value(it.it, &vl);
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
