/*
 * throttle.c: the sliding-window failure limiter (see throttle.h).
 *
 * Layout: a fixed array of max_keys entries, each owning a ring of `limit` failure times in one
 * shared array, and a chained hash table over them: a power-of-two array of bucket heads, chains
 * linked through the entries by index. Free entries form a list through the same link. Nothing is
 * allocated after cf_throttle_new.
 *
 * Invariants (under the mutex):
 * - an entry is live iff its count is >= 1; live entries are exactly those reachable from the
 *   buckets, free ones exactly those on the free list, and used counts the live ones;
 * - a live entry's ring holds its `count` newest failure times in non-decreasing order starting at
 *   `head`, and `newest` is the last of them;
 * - the failures inside a window are therefore a suffix of the ring, and if all `limit` are inside,
 *   the one at `head` is the first to leave.
 *
 * Costs: hashing is O(key length) outside the lock; a lookup is O(1) expected (the bucket index
 * comes from a salted hash the client cannot predict, and the table has at least one bucket per
 * key); counting, reserving and releasing are O(limit). Inserting a new key into a full table
 * scans all max_keys entries once (a few ms per million keys): the first pass drops every key with
 * nothing left in the window, so under normal traffic a scan frees many slots and the cost is
 * amortised; only a flood of distinct keys all failing within one window pays the scan on every
 * insertion.
 *
 * A reservation is an ordinary failure time in the ring; releasing it removes that one time and
 * closes the gap, which keeps the ring ordered.
 *
 * Shared (cluster mode, throttle.h): every call goes to the backend first; the local table is used
 * for a call only when the backend fails, and a ticket's id says where its attempt lives.
 */
#include "throttle.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"

#define NIL UINT32_MAX /* end of a chain or of the free list */
#define SALT_LEN 16    /* bytes of per-limiter salt in front of every hashed key */

/* 48 bytes. */
struct entry {
    uint8_t hash[CF_SHA256_LEN]; /* SHA-256(salt ‖ key) */
    uint64_t newest;             /* ms since the epoch of the newest failure (live entries) */
    uint32_t next;               /* next entry in the same bucket, or on the free list; NIL ends */
    uint16_t head;               /* ring index of the oldest failure held, 0..limit-1 */
    uint16_t count;              /* failures held, 1..limit when live, 0 when free */
};

struct cf_throttle {
    pthread_mutex_t mu;        /* guards everything below that is not marked immutable */
    unsigned limit;            /* immutable: failures per window that close a key, 1..CF_THROTTLE_LIMIT_MAX */
    uint64_t window_ms;        /* immutable: window length in ms, >= 1 */
    uint32_t max_keys;         /* immutable: entries, 1..CF_THROTTLE_KEYS_MAX */
    uint32_t mask;             /* immutable: number of buckets - 1 (a power of two >= max_keys) */
    uint8_t salt[SALT_LEN];    /* immutable: random, hides bucket indexes from clients */
    uint32_t used;             /* live entries, 0..max_keys */
    uint32_t free_head;        /* first free entry, NIL if none */
    uint32_t *buckets;         /* mask + 1 chain heads (entry index or NIL) */
    struct entry *entries;     /* max_keys entries */
    uint64_t *stamps;          /* max_keys * limit failure times (ms); entry i owns [i*limit, (i+1)*limit) */
    const char *shared;        /* set before use: the limiter's name in the shared backend, NULL: local */
};

static const struct cf_throttle_backend *backend; /* set once at start (cf_throttle_set_backend) */

void cf_throttle_set_backend(const struct cf_throttle_backend *b)
{
    backend = b;
}

void cf_throttle_share(struct cf_throttle *t, const char *name)
{
    if (backend != NULL && name != NULL && name[0] != '\0')
        t->shared = name;
}

bool cf_throttle_is_shared(const struct cf_throttle *t)
{
    return t->shared != NULL && backend != NULL;
}

/* The operation in the shared backend; false if t is local or the backend failed (use the table). */
static bool shared_op(const struct cf_throttle *t, enum cf_throttle_op op, const void *key, size_t n,
                      struct cf_throttle_io *io)
{
    if (t->shared == NULL || backend == NULL)
        return false;
    static atomic_bool failing; /* said once per outage, not once per request */
    if (backend->fn(backend->ctx, op, t->shared, key, n, t->limit, t->window_ms, io)) {
        if (atomic_exchange(&failing, false))
            cf_log_info("throttle %s: the shared counters answer again", t->shared);
        return true;
    }
    if (!atomic_exchange(&failing, true))
        cf_log_warn("throttle %s: the shared counters failed; each node counts alone until they answer", t->shared);
    return false;
}

static uint64_t ms_to_s(uint64_t ms)
{
    uint64_t s = ms / 1000 + (ms % 1000 != 0);
    return s < 1 ? 1 : s;
}

struct cf_throttle *cf_throttle_new(unsigned limit, uint64_t window_ms, size_t max_keys)
{
    if (limit < 1 || limit > CF_THROTTLE_LIMIT_MAX || window_ms < 1 || max_keys < 1 || max_keys > CF_THROTTLE_KEYS_MAX)
        return NULL;
    struct cf_throttle *t = cf_xcalloc(1, sizeof *t);
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        /* Only resource exhaustion can get here: the same as out of memory. */
        cf_log_error("%s: pthread_mutex_init failed", __func__);
        abort();
    }
    t->limit = limit;
    t->window_ms = window_ms;
    t->max_keys = (uint32_t)max_keys;
    uint32_t nb = 1;
    while (nb < t->max_keys)
        nb <<= 1;
    t->mask = nb - 1;
    cf_random(t->salt, sizeof t->salt);
    t->buckets = cf_xcalloc(nb, sizeof *t->buckets);
    for (uint32_t i = 0; i < nb; i++)
        t->buckets[i] = NIL;
    t->entries = cf_xcalloc(max_keys, sizeof *t->entries);
    for (uint32_t i = 0; i < t->max_keys; i++)
        t->entries[i].next = i + 1 < t->max_keys ? i + 1 : NIL;
    t->free_head = 0;
    t->stamps = cf_xcalloc(max_keys, limit * sizeof *t->stamps);
    return t;
}

void cf_throttle_free(struct cf_throttle *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t->stamps);
    free(t->entries);
    free(t->buckets);
    free(t);
}

/* Hashes key into out; false if the key is too long to be a valid key. Needs no lock: the salt
 * never changes. */
static bool key_hash(const struct cf_throttle *t, const void *key, size_t n, uint8_t out[CF_SHA256_LEN])
{
    uint8_t buf[SALT_LEN + CF_THROTTLE_KEY_MAX];
    if (n > CF_THROTTLE_KEY_MAX)
        return false;
    memcpy(buf, t->salt, SALT_LEN);
    if (n > 0)
        memcpy(buf + SALT_LEN, key, n);
    cf_sha256(buf, SALT_LEN + n, out);
    return true;
}

static uint32_t bucket_of(const struct cf_throttle *t, const uint8_t hash[CF_SHA256_LEN])
{
    uint32_t b = (uint32_t)hash[0] | (uint32_t)hash[1] << 8 | (uint32_t)hash[2] << 16 | (uint32_t)hash[3] << 24;
    return b & t->mask;
}

/* The live entry for hash, or NIL. Lock held. */
static uint32_t find(const struct cf_throttle *t, const uint8_t hash[CF_SHA256_LEN])
{
    for (uint32_t i = t->buckets[bucket_of(t, hash)]; i != NIL; i = t->entries[i].next) {
        /* Plain memcmp: hashes of keys are not secrets, and the salt makes them unguessable. */
        if (memcmp(t->entries[i].hash, hash, CF_SHA256_LEN) == 0)
            return i;
    }
    return NIL;
}

/* Unlinks live entry i from its bucket and puts it on the free list. Lock held. */
static void drop(struct cf_throttle *t, uint32_t i)
{
    uint32_t *link = &t->buckets[bucket_of(t, t->entries[i].hash)];
    while (*link != i)
        link = &t->entries[*link].next;
    *link = t->entries[i].next;
    t->entries[i].count = 0;
    t->entries[i].head = 0;
    t->entries[i].next = t->free_head;
    t->free_head = i;
    t->used--;
}

/* Whether a failure at ts is inside the window (now - window, now]; a failure after now (a clock
 * read on another thread later than ours) counts as inside. Written to avoid overflow. */
static bool in_window(const struct cf_throttle *t, uint64_t ts, uint64_t now)
{
    return ts > now || now - ts < t->window_ms;
}

/* The ring index of the oldest failure of entry i inside the window, and how many are inside
 * (the ring is ordered, so they are a suffix). Lock held. */
static unsigned window_count(const struct cf_throttle *t, uint32_t i, uint64_t now, unsigned *first)
{
    const struct entry *e = &t->entries[i];
    const uint64_t *ring = t->stamps + (size_t)i * t->limit;
    unsigned k = 0;
    while (k < e->count && !in_window(t, ring[(e->head + k) % t->limit], now))
        k++;
    *first = (e->head + k) % t->limit;
    return e->count - k;
}

/* Makes room for one more key in a full table. Lock held. */
static void evict(struct cf_throttle *t, uint64_t now)
{
    /* First every key with nothing left in the window: forgetting them changes no decision. */
    for (uint32_t i = 0; i < t->max_keys; i++) {
        if (t->entries[i].count > 0 && !in_window(t, t->entries[i].newest, now))
            drop(t, i);
    }
    if (t->used < t->max_keys)
        return;
    /* Then the key whose newest failure is the oldest: the least recently active one. */
    uint32_t victim = 0;
    for (uint32_t i = 1; i < t->max_keys; i++) {
        if (t->entries[i].newest < t->entries[victim].newest)
            victim = i;
    }
    drop(t, victim);
}

/* Records one failure of hash at now and returns its entry; *at is the time it was recorded at.
 * Lock held. */
static uint32_t record(struct cf_throttle *t, const uint8_t hash[CF_SHA256_LEN], uint64_t now_ms, uint64_t *at)
{
    uint32_t i = find(t, hash);
    if (i == NIL) {
        if (t->used == t->max_keys)
            evict(t, now_ms);
        i = t->free_head;
        struct entry *e = &t->entries[i];
        t->free_head = e->next;
        memcpy(e->hash, hash, sizeof e->hash);
        e->head = 0;
        e->count = 0;
        e->newest = now_ms;
        uint32_t b = bucket_of(t, hash);
        e->next = t->buckets[b];
        t->buckets[b] = i;
        t->used++;
    }
    struct entry *e = &t->entries[i];
    uint64_t *ring = t->stamps + (size_t)i * t->limit;
    /* Keep the ring ordered (see the invariants): never record a time before the newest. */
    uint64_t ts = e->count > 0 && now_ms < e->newest ? e->newest : now_ms;
    if (e->count < t->limit) {
        ring[(e->head + e->count) % t->limit] = ts;
        e->count++;
    } else {
        /* Full: the oldest failure makes way. */
        ring[e->head] = ts;
        e->head = (uint16_t)((e->head + 1) % t->limit);
    }
    e->newest = ts;
    *at = ts;
    return i;
}

/* Seconds (rounded up, >= 1) until the failure at ring index first of entry i leaves the window
 * ending at now. Lock held. */
static uint64_t retry_after(const struct cf_throttle *t, uint32_t i, unsigned first, uint64_t now)
{
    uint64_t oldest = t->stamps[(size_t)i * t->limit + first];
    /* It leaves the window when now reaches oldest + window; in_window guarantees at least 1 ms. */
    uint64_t ms;
    if (oldest <= now)
        ms = t->window_ms - (now - oldest);
    else
        ms = oldest - now > UINT64_MAX - t->window_ms ? UINT64_MAX : t->window_ms + (oldest - now);
    return ms / 1000 + (ms % 1000 != 0);
}

static uint64_t whole_window_s(const struct cf_throttle *t)
{
    return t->window_ms / 1000 + (t->window_ms % 1000 != 0);
}

void cf_throttle_fail(struct cf_throttle *t, const void *key, size_t n, uint64_t now_ms)
{
    uint8_t hash[CF_SHA256_LEN];
    uint64_t at;
    if (!key_hash(t, key, n, hash))
        return;
    struct cf_throttle_io io = {0};
    if (shared_op(t, CF_THROTTLE_OP_FAIL, key, n, &io))
        return;
    pthread_mutex_lock(&t->mu);
    (void)record(t, hash, now_ms, &at);
    pthread_mutex_unlock(&t->mu);
}

bool cf_throttle_allowed(struct cf_throttle *t, const void *key, size_t n, uint64_t now_ms, uint64_t *retry_after_s)
{
    uint8_t hash[CF_SHA256_LEN];
    if (!key_hash(t, key, n, hash)) {
        *retry_after_s = whole_window_s(t);
        return false;
    }
    struct cf_throttle_io io = {0};
    if (shared_op(t, CF_THROTTLE_OP_COUNT, key, n, &io)) {
        if (io.count < t->limit)
            return true;
        *retry_after_s = ms_to_s(io.retry_ms);
        return false;
    }
    bool ok = true;
    pthread_mutex_lock(&t->mu);
    uint32_t i = find(t, hash);
    unsigned first;
    if (i != NIL && window_count(t, i, now_ms, &first) >= t->limit) {
        *retry_after_s = retry_after(t, i, first, now_ms);
        ok = false;
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

bool cf_throttle_reserve(struct cf_throttle *t, const void *key, size_t n, uint64_t now_ms, uint64_t *retry_after_s,
                         struct cf_throttle_ticket *ticket)
{
    uint8_t hash[CF_SHA256_LEN];
    ticket->held = false;
    ticket->id = 0;
    if (!key_hash(t, key, n, hash)) {
        *retry_after_s = whole_window_s(t);
        return false;
    }
    struct cf_throttle_io io = {0};
    if (shared_op(t, CF_THROTTLE_OP_RESERVE, key, n, &io)) {
        if (!io.granted) {
            *retry_after_s = ms_to_s(io.retry_ms);
            return false;
        }
        ticket->at = io.at_ms;
        ticket->nth = io.count;
        ticket->id = io.id > 0 ? io.id : 0;
        ticket->held = true;
        return true;
    }
    bool ok = true;
    unsigned first;
    pthread_mutex_lock(&t->mu);
    uint32_t i = find(t, hash);
    if (i != NIL && window_count(t, i, now_ms, &first) >= t->limit) {
        *retry_after_s = retry_after(t, i, first, now_ms);
        ok = false;
    } else {
        /* Below the limit, so the ring is not full of failures inside the window: if it is full,
         * the one that makes way has already left it. */
        i = record(t, hash, now_ms, &ticket->at);
        ticket->nth = window_count(t, i, now_ms, &first);
        ticket->held = true;
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

void cf_throttle_release(struct cf_throttle *t, const void *key, size_t n, struct cf_throttle_ticket *ticket,
                         uint64_t now_ms)
{
    uint8_t hash[CF_SHA256_LEN];
    if (!ticket->held)
        return;
    ticket->held = false;
    if (ticket->id > 0) {
        /* The attempt is in the backend: taken back there (a failure leaves it to leave the window). */
        struct cf_throttle_io io = {.id = ticket->id};
        (void)shared_op(t, CF_THROTTLE_OP_RELEASE, key, n, &io);
        return;
    }
    if (!in_window(t, ticket->at, now_ms) || !key_hash(t, key, n, hash))
        return;
    pthread_mutex_lock(&t->mu);
    uint32_t i = find(t, hash);
    if (i != NIL) {
        struct entry *e = &t->entries[i];
        uint64_t *ring = t->stamps + (size_t)i * t->limit;
        /* A reserved time inside the window is still in the ring: reserve refuses rather than
         * push one out (only cf_throttle_fail on the same key could). Search from the newest end,
         * where it usually is. */
        unsigned k = e->count;
        while (k > 0 && ring[(e->head + k - 1) % t->limit] != ticket->at)
            k--;
        if (k > 0) {
            /* Close the gap: the later failures move one place towards the oldest, in order. */
            for (unsigned j = k; j < e->count; j++)
                ring[(e->head + j - 1) % t->limit] = ring[(e->head + j) % t->limit];
            e->count--;
            if (e->count == 0)
                drop(t, i);
            else
                e->newest = ring[(e->head + e->count - 1) % t->limit];
        }
    }
    pthread_mutex_unlock(&t->mu);
}

void cf_throttle_settle(struct cf_throttle *t, const void *key, size_t n, struct cf_throttle_ticket *ticket,
                        uint64_t now_ms)
{
    uint8_t hash[CF_SHA256_LEN];
    bool held = ticket->held;
    uint64_t at = ticket->at;
    if (held && ticket->id > 0) {
        struct cf_throttle_io io = {.id = ticket->id};
        ticket->held = false;
        (void)shared_op(t, CF_THROTTLE_OP_SETTLE, key, n, &io);
        return;
    }
    cf_throttle_release(t, key, n, ticket, now_ms);
    if (!held || !key_hash(t, key, n, hash))
        return;
    pthread_mutex_lock(&t->mu);
    uint32_t i = find(t, hash);
    if (i != NIL) {
        struct entry *e = &t->entries[i];
        const uint64_t *ring = t->stamps + (size_t)i * t->limit;
        /* The ring runs oldest to newest: drop from the oldest end while older than the attempt. */
        while (e->count > 0 && ring[e->head] < at) {
            e->head = (uint16_t)((e->head + 1) % t->limit);
            e->count--;
        }
        if (e->count == 0)
            drop(t, i);
    }
    pthread_mutex_unlock(&t->mu);
}

void cf_throttle_reset(struct cf_throttle *t, const void *key, size_t n)
{
    uint8_t hash[CF_SHA256_LEN];
    if (!key_hash(t, key, n, hash))
        return;
    struct cf_throttle_io io = {0};
    (void)shared_op(t, CF_THROTTLE_OP_RESET, key, n, &io); /* and the local table too: it may hold some */
    pthread_mutex_lock(&t->mu);
    uint32_t i = find(t, hash);
    if (i != NIL)
        drop(t, i);
    pthread_mutex_unlock(&t->mu);
}

unsigned cf_throttle_count(struct cf_throttle *t, const void *key, size_t n, uint64_t now_ms)
{
    uint8_t hash[CF_SHA256_LEN];
    if (!key_hash(t, key, n, hash))
        return t->limit;
    struct cf_throttle_io io = {0};
    if (shared_op(t, CF_THROTTLE_OP_COUNT, key, n, &io))
        return io.count < t->limit ? io.count : t->limit;
    unsigned c = 0, first;
    pthread_mutex_lock(&t->mu);
    uint32_t i = find(t, hash);
    if (i != NIL)
        c = window_count(t, i, now_ms, &first);
    pthread_mutex_unlock(&t->mu);
    return c;
}

size_t cf_throttle_keys(struct cf_throttle *t)
{
    pthread_mutex_lock(&t->mu);
    size_t used = t->used;
    pthread_mutex_unlock(&t->mu);
    return used;
}
