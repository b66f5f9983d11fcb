/*
 * throttle.h: a thread-safe sliding-window failure limiter. A key (an account, an IP address, an
 * IP and a share link...) may fail at most `limit` times within any `window_ms`; once it has, it
 * is refused until its oldest failure in the window slides out. Used for login protection (per
 * account, per IP) and share-code brute-force protection (per IP, per link).
 *
 * Guarding a check that takes time (an Argon2id verification, a code on a worker) with
 * cf_throttle_allowed and then cf_throttle_fail lets a burst through: every request of the burst
 * is allowed before the first failure is recorded. Such checks reserve instead: cf_throttle_reserve
 * counts the attempt as a failure and refuses in one locked step, so at most `limit` attempts of a
 * key are ever being checked or failed within a window, whatever the concurrency; a success then
 * takes its own attempt back with cf_throttle_release, and a failure simply keeps it.
 *
 * Invariants: at most max_keys keys are held, each with at most `limit` failure times, all
 * allocated when the limiter is created: memory never grows afterwards, whatever the traffic.
 * Keys are kept only as a salted SHA-256 (the salt random per limiter, so nobody can aim keys at
 * one hash bucket). When a new key arrives and the table is full, keys whose newest failure has
 * left the window go first; if none has, the key with the oldest newest failure is dropped (so a
 * flood of fresh keys can make the limiter forget old ones: size max_keys above the number of
 * keys an attacker can fail within one window).
 *
 * Pure with respect to time: every call takes the current time (ms) as an argument and there is
 * no clock inside, so tests are deterministic. One mutex guards each limiter; every call is short
 * (the key is hashed before the lock is taken) except inserting into a full table, which scans it.
 */
#ifndef CF_THROTTLE_H
#define CF_THROTTLE_H

#include "base.h"

#define CF_THROTTLE_KEY_MAX 512          /* bytes in a key */
#define CF_THROTTLE_LIMIT_MAX 1024       /* largest `limit` */
#define CF_THROTTLE_KEYS_MAX (1u << 24)  /* largest `max_keys` */

struct cf_throttle;

/* cf_throttle_new(limit, window_ms, max_keys): a limiter that refuses a key once it has failed
 * limit times (1..CF_THROTTLE_LIMIT_MAX) within the last window_ms milliseconds (>= 1), holding at
 * most max_keys keys (1..CF_THROTTLE_KEYS_MAX). Allocates everything up front: at most
 * max_keys * (56 + 8 * limit) bytes. Returns NULL if an argument is out of range (a configuration
 * error); aborts on out of memory. The caller owns the result (cf_throttle_free). Any thread. */
struct cf_throttle *cf_throttle_new(unsigned limit, uint64_t window_ms, size_t max_keys) CF_WUR;

/* cf_throttle_free(t): frees t; NULL is ignored. No other thread may still use t. */
void cf_throttle_free(struct cf_throttle *t);

/* cf_throttle_allowed(t, key, n, now_ms, retry_after_s): true if fewer than limit failures of the
 * n-byte key were recorded within (now_ms - window_ms, now_ms]. Otherwise false, and
 * *retry_after_s is the number of seconds (rounded up, >= 1) until the oldest of those failures
 * leaves the window, i.e. until one more attempt is allowed; *retry_after_s is untouched on true.
 * A key longer than CF_THROTTLE_KEY_MAX is a caller bug and is refused (false, retry after one
 * window). Failures recorded with a time after now_ms (another thread's clock read later) count as
 * inside the window. Does not record anything. Any thread. */
bool cf_throttle_allowed(struct cf_throttle *t, const void *key, size_t n, uint64_t now_ms, uint64_t *retry_after_s);

/* cf_throttle_fail(t, key, n, now_ms): records one failure of key at now_ms, forgetting its
 * oldest failure if limit are already held, and evicting another key if key is new and the table
 * is full (see above). Times are kept in order: a now_ms older than the key's newest failure is
 * recorded as that newest time (which keeps it in the window slightly longer, never shorter).
 * A key longer than CF_THROTTLE_KEY_MAX is ignored. Any thread. */
void cf_throttle_fail(struct cf_throttle *t, const void *key, size_t n, uint64_t now_ms);

/* An attempt reserved by cf_throttle_reserve, for cf_throttle_release. A caller whose attempt
 * failed keeps it as the failure by never releasing it (or by clearing held first, when one code
 * path releases whatever is still held). */
struct cf_throttle_ticket {
    uint64_t at;  /* ms: the time the attempt was recorded at (>= the reserve's now_ms; shared: the
                     database's clock) */
    unsigned nth; /* attempts of the key inside the window, this one included: 1..limit */
    bool held;    /* set by a granted reserve, cleared by release: release is done at most once */
    int64_t id;   /* > 0: the attempt was recorded in the shared backend (its event id); 0: locally */
};

/* cf_throttle_reserve(t, key, n, now_ms, retry_after_s, ticket): the atomic form of
 * cf_throttle_allowed followed by cf_throttle_fail. If fewer than limit attempts of key are in the
 * window ending at now_ms, records one more (as cf_throttle_fail does), fills *ticket (held) and
 * returns true; the attempt then counts as a failure until it is released. Otherwise records
 * nothing, sets *retry_after_s as cf_throttle_allowed does, clears ticket->held and returns false.
 * Under any interleaving of threads, the failures and unreleased reservations of a key inside a
 * window never exceed limit.
 * A key longer than CF_THROTTLE_KEY_MAX is refused (retry after one window). Any thread. */
bool cf_throttle_reserve(struct cf_throttle *t, const void *key, size_t n, uint64_t now_ms, uint64_t *retry_after_s,
                         struct cf_throttle_ticket *ticket) CF_WUR;

/* cf_throttle_release(t, key, n, ticket, now_ms): takes back the attempt that ticket reserved for
 * key (the attempt succeeded, or was never checked), and only that one: earlier and later failures
 * of key stay. Does nothing if ticket is not held (refused, or already released) or if the attempt
 * has left the window ending at now_ms (it no longer counts). Attempts recorded at the same
 * millisecond are indistinguishable, so which of them goes does not matter. Clears ticket->held.
 * Any thread. */
void cf_throttle_release(struct cf_throttle *t, const void *key, size_t n, struct cf_throttle_ticket *ticket,
                         uint64_t now_ms);

/* cf_throttle_settle(t, key, n, ticket, now_ms): a success: releases ticket (as cf_throttle_release)
 * and forgets the failures of key recorded before ticket's attempt was. Attempts reserved at or after
 * it stay: they may be another client's, still being checked (an attacker's burst in flight must not
 * be forgotten because the account's owner logged in meanwhile). Any thread. */
void cf_throttle_settle(struct cf_throttle *t, const void *key, size_t n, struct cf_throttle_ticket *ticket,
                        uint64_t now_ms);

/* cf_throttle_reset(t, key, n): forgets key and all its failures (after a successful login). A
 * key not held, or longer than CF_THROTTLE_KEY_MAX, is ignored. Any thread. */
void cf_throttle_reset(struct cf_throttle *t, const void *key, size_t n);

/* cf_throttle_count(t, key, n, now_ms): the number of failures of key within the window ending at
 * now_ms (0..limit), for alerts and tests; cf_throttle_allowed is exactly count < limit. A key
 * longer than CF_THROTTLE_KEY_MAX counts as limit. Any thread. */
unsigned cf_throttle_count(struct cf_throttle *t, const void *key, size_t n, uint64_t now_ms);

/* cf_throttle_keys(t): the number of keys currently held (0..max_keys), whether or not their
 * failures are still in the window, for metrics and tests. Any thread. */
size_t cf_throttle_keys(struct cf_throttle *t);

/* ---- a shared backend (cluster mode, docs/CLUSTER.md "Leases and shared throttles") ------------- */

/* Several nodes over one database count a key's failures together: a limiter that is shared sends
 * every operation to the backend (the operation of the same name on a counter the backend keeps per
 * (limiter name, key), with the limiter's limit and window; times are the backend's clock, so now_ms is
 * then not used), and falls back to its own local table, for that call, when the backend fails (a
 * ticket says which of the two holds its attempt). The backend is a pair of pointers filled in by the
 * server (src/app/server.c over storage/coord.c), so this module stays below the store. Keys are handed
 * to the backend as given; it must not store them readable (coord.c keeps keyed hashes). */
enum cf_throttle_op {
    CF_THROTTLE_OP_RESERVE,
    CF_THROTTLE_OP_FAIL,
    CF_THROTTLE_OP_RELEASE,
    CF_THROTTLE_OP_SETTLE,
    CF_THROTTLE_OP_RESET,
    CF_THROTTLE_OP_COUNT,
};
struct cf_throttle_io {
    int64_t id;        /* in: RELEASE/SETTLE: the event; out: RESERVE (granted)/FAIL: the new event */
    uint64_t at_ms;    /* out: RESERVE/FAIL: when it was recorded */
    unsigned count;    /* out: the key's failures inside the window after the operation */
    bool granted;      /* out: RESERVE */
    uint64_t retry_ms; /* out: when count >= limit: ms until one more attempt is allowed */
};
struct cf_throttle_backend {
    /* fn(ctx, op, name, key, n, limit, window_ms, io): true if done, false if the backend failed. */
    bool (*fn)(void *ctx, enum cf_throttle_op op, const char *name, const void *key, size_t n, unsigned limit,
               uint64_t window_ms, struct cf_throttle_io *io);
    void *ctx;
};
/* cf_throttle_set_backend(b): the process's shared backend (b is referenced, not copied; NULL: none).
 * Set once at start, before cf_throttle_share and before any other thread runs. */
void cf_throttle_set_backend(const struct cf_throttle_backend *b);
/* cf_throttle_share(t, name): t counts in the backend set (if any; otherwise nothing changes) under
 * name, a static string naming this limiter alike on every node ("login-account"…). Call before other
 * threads use t. */
void cf_throttle_share(struct cf_throttle *t, const char *name);
/* cf_throttle_is_shared(t): whether t counts in a shared backend. */
bool cf_throttle_is_shared(const struct cf_throttle *t);

#endif
