/*
 * coord.c: coordination between the nodes of a cluster (storage.h "cluster coordination", issue 24,
 * docs/CLUSTER.md "Leases and shared throttles"): leases and shared failure counters over the engine's
 * coordination operations (engine.h), with this process's node id and the claims it holds.
 *
 * Nothing readable reaches the database: every lease name and counter key is HMAC-SHA256 under a key
 * derived from the store's global key (the same on every node, so every node names one account's
 * counter alike), over a purpose label and the caller's bytes (a username, an address, an upload id).
 *
 * Claims: the leases this process holds (or wants) are kept in a small table, so that one call,
 * cf_coord_renew, made every CF_COORD_RENEW_MS by the server, renews them all and retries the wanted
 * ones. A claim counts as held until a local monotonic deadline: the time before the request that
 * last took or renewed it plus its TTL minus a margin, so that a node whose renewals stall stops
 * believing it holds a lease before the database lets another node take it (the nodes' clocks never
 * meet: only durations are compared, each on its own clock).
 *
 * An engine without shared state (RocksDB, one process) answers CF_ENOTFOUND everywhere: the callers
 * keep their local behaviour, and cf_coord_holds is always true.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_internal.h"

#define CLAIMS_MAX 4096
#define MARGIN_MS 2000 /* a claim is trusted until this long before its lease can expire */

struct claim {
    uint8_t name[CF_SHA256_LEN]; /* the lease's name in the database (keyed hash) */
    uint32_t ttl_ms;
    uint64_t valid_until; /* monotonic ms; 0: not held now */
    bool want;            /* retried by cf_coord_renew while not held (the background jobs) */
};

static pthread_mutex_t co_lock = PTHREAD_MUTEX_INITIALIZER;
static struct claim co_claims[CLAIMS_MAX];
static size_t co_n;
static pthread_once_t co_once = PTHREAD_ONCE_INIT;
static uint8_t co_node[CF_NODE_ID_LEN];

static void node_init(void)
{
    cf_random(co_node, sizeof co_node);
}

const uint8_t *cf_coord_node_id(void)
{
    pthread_once(&co_once, node_init);
    return co_node;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* name = HMAC(coord key, label ‖ 0 ‖ bytes). The coordination key comes from the global index key,
 * itself derived from the global key: every node derives the same one. */
static enum cf_status coord_name(struct cf_store *s, const char *label, const void *bytes, size_t n,
                                 uint8_t out[CF_SHA256_LEN])
{
    struct cf_key k;
    if (label == NULL || label[0] == '\0' || (bytes == NULL && n > 0) || n > CF_COORD_KEY_MAX)
        return CF_EINVAL;
    if (cf_hkdf(s->global_index.k, sizeof s->global_index.k, "coffer/v1/global/coord", &k) != CF_OK)
        return CF_ECRYPTO;
    cf_hmac2_sha256(&k, label, strlen(label) + 1, n > 0 ? bytes : "", n, out);
    cf_key_wipe(&k);
    return CF_OK;
}

static enum cf_status eng_status(int rc, const char *what, char *err)
{
    if (rc == CF_ENG_OK)
        return CF_OK;
    if (rc == CF_ENG_NOTFOUND)
        return CF_ENOTFOUND;
    return cf_db_error(what, err);
}

bool cf_coord_shared(struct cf_store *s)
{
    return cf_eng_shared(s->eng);
}

enum cf_status cf_coord_lease(struct cf_store *s, const char *label, const void *key, size_t kl, uint32_t ttl_ms,
                              bool *held)
{
    uint8_t name[CF_SHA256_LEN];
    *held = false;
    enum cf_status st = coord_name(s, label, key, kl, name);
    if (st != CF_OK)
        return st;
    if (ttl_ms < 1 || ttl_ms > 86400000)
        return CF_EINVAL;
    char *err = NULL;
    int rc = cf_eng_lease(s->eng, name, sizeof name, cf_coord_node_id(), ttl_ms, held, &err);
    return eng_status(rc, "lease", err);
}

enum cf_status cf_coord_lease_drop(struct cf_store *s, const char *label, const void *key, size_t kl)
{
    uint8_t name[CF_SHA256_LEN];
    enum cf_status st = coord_name(s, label, key, kl, name);
    if (st != CF_OK)
        return st;
    char *err = NULL;
    int rc = cf_eng_lease_drop(s->eng, name, sizeof name, cf_coord_node_id(), &err);
    return eng_status(rc, "lease", err);
}

enum cf_status cf_coord_counter(struct cf_store *s, enum cf_coord_op op, const char *label, const void *key,
                                size_t kl, struct cf_coord_ctr *c)
{
    static const enum cf_eng_ctr_op ops[] = {CF_CTR_RESERVE, CF_CTR_FAIL,  CF_CTR_RELEASE,
                                             CF_CTR_SETTLE,  CF_CTR_RESET, CF_CTR_COUNT};
    uint8_t name[CF_SHA256_LEN];
    if ((unsigned)op >= sizeof ops / sizeof ops[0] || c->limit < 1 || c->limit > 1024 || c->window_ms < 1 ||
        c->window_ms > (UINT64_C(1) << 40) || ((op == CF_COORD_RELEASE || op == CF_COORD_SETTLE) && c->id <= 0))
        return CF_EINVAL;
    enum cf_status st = coord_name(s, label, key, kl, name);
    if (st != CF_OK)
        return st;
    struct cf_eng_ctr e = {.limit = c->limit, .window_ms = c->window_ms, .id = c->id};
    char *err = NULL;
    int rc = cf_eng_counter(s->eng, ops[op], name, sizeof name, &e, &err);
    if (rc == CF_ENG_OK) {
        if (op == CF_COORD_RESERVE || op == CF_COORD_FAIL)
            c->id = e.id;
        c->at_ms = e.at_ms;
        c->count = e.count;
        c->granted = e.granted;
        c->retry_ms = e.retry_ms;
    } else {
        c->granted = false;
    }
    return eng_status(rc, "counter", err);
}

/* ---- claims ---------------------------------------------------------------------------------- */

/* The claim named name, or NULL. co_lock held. */
static struct claim *claim_find(const uint8_t name[CF_SHA256_LEN])
{
    for (size_t i = 0; i < co_n; i++)
        if (memcmp(co_claims[i].name, name, CF_SHA256_LEN) == 0)
            return &co_claims[i];
    return NULL;
}

/* Takes or renews the lease name and records the outcome in its claim. renewal: the claim may have
 * been given up meanwhile (the table is not locked over the round trip): a lease so taken again is
 * dropped at once rather than left to block the other nodes until it expires. */
static enum cf_status claim_take(struct cf_store *s, const uint8_t name[CF_SHA256_LEN], uint32_t ttl_ms, bool renewal,
                                 bool *held)
{
    uint64_t before = mono_ms();
    char *err = NULL;
    *held = false;
    int rc = cf_eng_lease(s->eng, name, CF_SHA256_LEN, cf_coord_node_id(), ttl_ms, held, &err);
    enum cf_status st = eng_status(rc, "lease", err);
    err = NULL;
    pthread_mutex_lock(&co_lock);
    struct claim *c = claim_find(name);
    /* A failed request leaves the claim as it was: it runs out by itself if the failures last. */
    if (c != NULL && st == CF_OK)
        c->valid_until = *held && ttl_ms > MARGIN_MS ? before + ttl_ms - MARGIN_MS : 0;
    pthread_mutex_unlock(&co_lock);
    if (c == NULL && renewal && st == CF_OK && *held) {
        *held = false;
        (void)cf_eng_lease_drop(s->eng, name, CF_SHA256_LEN, cf_coord_node_id(), &err);
        cf_eng_free(err);
    }
    return st;
}

/* Adds name to the table (want: retried while not held). CF_ETOOBIG if it is full. */
static enum cf_status claim_add(const uint8_t name[CF_SHA256_LEN], uint32_t ttl_ms, bool want, bool *added)
{
    enum cf_status st = CF_OK;
    *added = false;
    pthread_mutex_lock(&co_lock);
    struct claim *c = claim_find(name);
    if (c != NULL && !want) {
        st = CF_EEXIST; /* this process holds it already: one claim at a time */
    } else if (c == NULL && co_n == CLAIMS_MAX) {
        st = CF_ETOOBIG;
    } else if (c == NULL) {
        c = &co_claims[co_n++];
        memcpy(c->name, name, CF_SHA256_LEN);
        c->ttl_ms = ttl_ms;
        c->valid_until = 0;
        c->want = want;
        *added = true;
    }
    pthread_mutex_unlock(&co_lock);
    return st;
}

static void claim_remove(const uint8_t name[CF_SHA256_LEN])
{
    pthread_mutex_lock(&co_lock);
    struct claim *c = claim_find(name);
    if (c != NULL)
        *c = co_claims[--co_n];
    pthread_mutex_unlock(&co_lock);
}

enum cf_status cf_coord_window(struct cf_store *s, const char *label, const void *key, size_t kl,
                               struct cf_coord_window *w)
{
    uint8_t name[CF_SHA256_LEN];
    w->fire = false;
    if (w->window_ms < 1 || w->window_ms > (UINT64_C(1) << 40) || w->files > (UINT64_C(1) << 52) ||
        w->bytes > (UINT64_C(1) << 52))
        return CF_EINVAL;
    enum cf_status st = coord_name(s, label, key, kl, name);
    if (st != CF_OK)
        return st;
    struct cf_eng_window e = {.window_ms = w->window_ms, .files = w->files, .bytes = w->bytes,
                              .files_max = w->files_max, .bytes_max = w->bytes_max};
    char *err = NULL;
    int rc = cf_eng_window(s->eng, name, sizeof name, &e, &err);
    if (rc == CF_ENG_OK) {
        w->files = e.files;
        w->bytes = e.bytes;
        w->fire = e.fire;
    }
    return eng_status(rc, "window", err);
}

enum cf_status cf_coord_claim(struct cf_store *s, const char *label, const void *key, size_t kl, uint32_t ttl_ms,
                              bool *got)
{
    uint8_t name[CF_SHA256_LEN];
    bool added;
    *got = false;
    enum cf_status st = coord_name(s, label, key, kl, name);
    if (st != CF_OK)
        return st;
    if (ttl_ms <= MARGIN_MS || ttl_ms > 86400000)
        return CF_EINVAL;
    if ((st = claim_add(name, ttl_ms, false, &added)) != CF_OK)
        return st == CF_EEXIST ? CF_OK : st; /* held by this process: not got */
    st = claim_take(s, name, ttl_ms, false, got);
    if (st != CF_OK || !*got)
        claim_remove(name);
    return st;
}

void cf_coord_unclaim(struct cf_store *s, const char *label, const void *key, size_t kl)
{
    uint8_t name[CF_SHA256_LEN];
    if (coord_name(s, label, key, kl, name) != CF_OK)
        return;
    claim_remove(name);
    char *err = NULL;
    /* A drop that fails leaves the lease to expire: nothing else to do. */
    (void)cf_eng_lease_drop(s->eng, name, sizeof name, cf_coord_node_id(), &err);
    cf_eng_free(err);
}

enum cf_status cf_coord_want(struct cf_store *s, const char *label, uint32_t ttl_ms, bool *got)
{
    uint8_t name[CF_SHA256_LEN];
    bool added;
    *got = false;
    enum cf_status st = coord_name(s, label, NULL, 0, name);
    if (st != CF_OK)
        return st;
    if (ttl_ms <= MARGIN_MS || ttl_ms > 86400000)
        return CF_EINVAL;
    if ((st = claim_add(name, ttl_ms, true, &added)) != CF_OK)
        return st;
    st = claim_take(s, name, ttl_ms, false, got);
    if (st == CF_ENOTFOUND) {
        claim_remove(name); /* no shared state: nothing to renew */
        *got = true;
    }
    return st;
}

bool cf_coord_holds(struct cf_store *s, const char *label, const void *key, size_t kl)
{
    uint8_t name[CF_SHA256_LEN];
    if (!cf_coord_shared(s))
        return true;
    if (coord_name(s, label, key, kl, name) != CF_OK)
        return false;
    uint64_t now = mono_ms();
    pthread_mutex_lock(&co_lock);
    struct claim *c = claim_find(name);
    bool held = c != NULL && now < c->valid_until;
    pthread_mutex_unlock(&co_lock);
    return held;
}

void cf_coord_renew(struct cf_store *s, struct cf_coord_renewal *out)
{
    memset(out, 0, sizeof *out);
    uint64_t now = mono_ms();
    /* Copied out first: no lock is held over a round trip to the database. */
    pthread_mutex_lock(&co_lock);
    size_t n = co_n;
    struct claim *copy = cf_xcalloc(n > 0 ? n : 1, sizeof *copy);
    memcpy(copy, co_claims, n * sizeof *copy);
    pthread_mutex_unlock(&co_lock);
    for (size_t i = 0; i < n; i++) {
        bool was = now < copy[i].valid_until, held = false;
        enum cf_status st = claim_take(s, copy[i].name, copy[i].ttl_ms, true, &held);
        if (st != CF_OK)
            out->failed++;
        else if (held)
            out->held++;
        else if (was)
            out->lost++;
        if (held && !was && copy[i].want)
            out->gained++;
    }
    free(copy);
}
