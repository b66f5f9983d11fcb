/*
 * test_throttle.c: the sliding-window failure limiter (src/throttle.c): the window and its
 * half-open edge, retry-after rounding, ring overflow, reset, key independence, bounded memory and
 * eviction order, argument checks, and a multi-threaded smoke test with exact final counts.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "throttle.h"

#define K(s) (s), strlen(s)

static void args(void)
{
    CHECK(cf_throttle_new(0, 1000, 10) == NULL, "limit 0 refused");
    CHECK(cf_throttle_new(CF_THROTTLE_LIMIT_MAX + 1, 1000, 10) == NULL, "limit too large refused");
    CHECK(cf_throttle_new(3, 0, 10) == NULL, "window 0 refused");
    CHECK(cf_throttle_new(3, 1000, 0) == NULL, "max_keys 0 refused");
    CHECK(cf_throttle_new(3, 1000, (size_t)CF_THROTTLE_KEYS_MAX + 1) == NULL, "max_keys too large refused");
    struct cf_throttle *t = cf_throttle_new(CF_THROTTLE_LIMIT_MAX, 1, 1);
    CHECK(t != NULL, "limit max, window 1 ms, one key accepted");
    cf_throttle_free(t);
    cf_throttle_free(NULL);
    CHECK(1, "cf_throttle_free(NULL) is a no-op");
}

static void basic(void)
{
    struct cf_throttle *t = cf_throttle_new(3, 1000, 16);
    uint64_t ra = 777;
    CHECK(cf_throttle_allowed(t, K("acct:bob"), 5000, &ra) && ra == 777, "unknown key allowed, retry untouched");
    CHECK_INT(cf_throttle_keys(t), 0, "checking creates no key");
    cf_throttle_fail(t, K("acct:bob"), 5000);
    cf_throttle_fail(t, K("acct:bob"), 5200);
    CHECK(cf_throttle_allowed(t, K("acct:bob"), 5200, &ra), "2 failures: allowed");
    CHECK_INT(cf_throttle_count(t, K("acct:bob"), 5200), 2, "count 2");
    cf_throttle_fail(t, K("acct:bob"), 5400);
    CHECK_INT(cf_throttle_count(t, K("acct:bob"), 5400), 3, "count 3");
    ra = 0;
    CHECK(!cf_throttle_allowed(t, K("acct:bob"), 5400, &ra), "3 failures: 4th attempt denied");
    CHECK_INT(ra, 1, "retry after ceil((5000 + 1000 - 5400) / 1000) = 1 s");
    ra = 0;
    CHECK(!cf_throttle_allowed(t, K("acct:bob"), 5999, &ra) && ra == 1, "still denied 1 ms before, retry 1 s");
    /* The window is (now - 1000, now]: the failure at 5000 is out at 6000. */
    CHECK(cf_throttle_allowed(t, K("acct:bob"), 6000, &ra), "allowed again when the oldest slides out");
    CHECK_INT(cf_throttle_count(t, K("acct:bob"), 6000), 2, "count 2 at 6000");
    CHECK_INT(cf_throttle_count(t, K("acct:bob"), 6399), 1, "count 1 at 6399");
    CHECK_INT(cf_throttle_count(t, K("acct:bob"), 6400), 0, "count 0 at 6400");
    CHECK_INT(cf_throttle_keys(t), 1, "one key held");
    cf_throttle_free(t);
}

static void rounding(void)
{
    struct cf_throttle *t = cf_throttle_new(3, 5000, 16);
    cf_throttle_fail(t, K("ip:10.0.0.1"), 10000);
    cf_throttle_fail(t, K("ip:10.0.0.1"), 11000);
    cf_throttle_fail(t, K("ip:10.0.0.1"), 12000);
    static const struct {
        uint64_t now, retry;
    } v[] = {{12000, 3}, {12001, 3}, {12500, 3}, {13000, 2}, {13001, 2}, {14000, 1}, {14999, 1}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint64_t ra = 0;
        bool ok = cf_throttle_allowed(t, K("ip:10.0.0.1"), v[i].now, &ra);
        CHECK(!ok, "denied at %llu", (unsigned long long)v[i].now);
        CHECK_INT(ra, v[i].retry, "retry after ceil((15000 - %llu) / 1000)", (unsigned long long)v[i].now);
    }
    uint64_t ra = 0;
    CHECK(cf_throttle_allowed(t, K("ip:10.0.0.1"), 15000, &ra), "allowed at 15000");
    cf_throttle_free(t);
}

static void spread(void)
{
    struct cf_throttle *t = cf_throttle_new(3, 1000, 16);
    uint64_t ra = 0;
    cf_throttle_fail(t, K("k"), 100);
    cf_throttle_fail(t, K("k"), 600);
    cf_throttle_fail(t, K("k"), 1050);
    CHECK(!cf_throttle_allowed(t, K("k"), 1050, &ra) && ra == 1, "100, 600, 1050 all inside at 1050: denied");
    CHECK(cf_throttle_allowed(t, K("k"), 1100, &ra), "100 out at 1100: allowed");
    CHECK_INT(cf_throttle_count(t, K("k"), 1100), 2, "2 inside at 1100");
    CHECK_INT(cf_throttle_count(t, K("k"), 1600), 1, "1 inside at 1600");
    CHECK_INT(cf_throttle_count(t, K("k"), 2050), 0, "0 inside at 2050");
    cf_throttle_fail(t, K("k"), 2100);
    cf_throttle_fail(t, K("k"), 2200);
    CHECK_INT(cf_throttle_count(t, K("k"), 2200), 2, "1050 left; 2100, 2200 inside");
    CHECK(cf_throttle_allowed(t, K("k"), 2200, &ra), "allowed with 2 inside");
    cf_throttle_fail(t, K("k"), 2300);
    CHECK(!cf_throttle_allowed(t, K("k"), 2300, &ra) && ra == 1, "denied with 2100, 2200, 2300 inside");
    cf_throttle_free(t);

    /* More failures than limit: the ring keeps the newest three, and retry counts from the oldest
     * of those (3000), not from the first failure ever (1000). */
    t = cf_throttle_new(3, 5000, 16);
    for (uint64_t ms = 1000; ms <= 5000; ms += 1000)
        cf_throttle_fail(t, K("k"), ms);
    CHECK_INT(cf_throttle_count(t, K("k"), 5000), 3, "count capped at limit");
    ra = 0;
    CHECK(!cf_throttle_allowed(t, K("k"), 5000, &ra), "denied after 5 failures");
    CHECK_INT(ra, 3, "retry after (3000 + 5000 - 5000) / 1000 = 3 s");
    CHECK(cf_throttle_allowed(t, K("k"), 8000, &ra), "allowed at 8000 (3000 left)");
    CHECK_INT(cf_throttle_count(t, K("k"), 8000), 2, "count 2 at 8000");

    /* Out-of-order times (another thread's clock read): recorded as the newest, never earlier. */
    cf_throttle_fail(t, K("late"), 5000);
    cf_throttle_fail(t, K("late"), 4000);
    CHECK_INT(cf_throttle_count(t, K("late"), 9500), 2, "late failure kept as 5000: both inside at 9500");
    CHECK_INT(cf_throttle_count(t, K("late"), 10000), 0, "both out at 10000");
    /* The ring stays ordered, so the oldest is still the first to leave: with limit 2, failures
     * at 5000, "4000" (kept as 5000) and 6000 leave {5000, 6000}; retry at 6000 is 4 s, not 3. */
    struct cf_throttle *t2 = cf_throttle_new(2, 5000, 16);
    cf_throttle_fail(t2, K("late"), 5000);
    cf_throttle_fail(t2, K("late"), 4000);
    cf_throttle_fail(t2, K("late"), 6000);
    ra = 0;
    CHECK(!cf_throttle_allowed(t2, K("late"), 6000, &ra) && ra == 4, "out-of-order failure: retry from 5000 (4 s)");
    CHECK_INT(cf_throttle_count(t2, K("late"), 10500), 1, "5000 gone at 10500, 6000 left");
    cf_throttle_free(t2);
    /* Failures after now count as inside. */
    cf_throttle_fail(t, K("future"), 20000);
    CHECK_INT(cf_throttle_count(t, K("future"), 19000), 1, "a failure after now counts");
    cf_throttle_fail(t, K("future"), 20000);
    cf_throttle_fail(t, K("future"), 20000);
    ra = 0;
    CHECK(!cf_throttle_allowed(t, K("future"), 19000, &ra) && ra == 6, "retry counts from the future failure: 6 s");
    cf_throttle_free(t);
}

static void reset_and_keys(void)
{
    struct cf_throttle *t = cf_throttle_new(3, 1000, 16);
    uint64_t ra = 0;
    for (int i = 0; i < 3; i++)
        cf_throttle_fail(t, K("a"), 100);
    CHECK(!cf_throttle_allowed(t, K("a"), 100, &ra), "a denied");
    CHECK(cf_throttle_allowed(t, K("b"), 100, &ra), "b allowed");
    CHECK(cf_throttle_allowed(t, "a", 2, 100, &ra), "\"a\\0\" (2 bytes) is another key");
    CHECK(cf_throttle_allowed(t, "", 0, 100, &ra), "the empty key is another key");
    CHECK(cf_throttle_allowed(t, K("ab"), 100, &ra), "\"ab\" is another key");
    cf_throttle_fail(t, K("b"), 100);
    cf_throttle_fail(t, "", 0, 100);
    CHECK_INT(cf_throttle_count(t, K("b"), 100), 1, "b has its own count");
    CHECK_INT(cf_throttle_count(t, "", 0, 100), 1, "the empty key has its own count");
    CHECK_INT(cf_throttle_count(t, K("a"), 100), 3, "a unchanged by b");
    CHECK_INT(cf_throttle_keys(t), 3, "three keys held");
    cf_throttle_reset(t, K("a"));
    CHECK(cf_throttle_allowed(t, K("a"), 100, &ra), "a allowed after reset");
    CHECK_INT(cf_throttle_count(t, K("a"), 100), 0, "a count 0 after reset");
    CHECK_INT(cf_throttle_keys(t), 2, "reset frees the key");
    CHECK_INT(cf_throttle_count(t, K("b"), 100), 1, "b untouched by a's reset");
    cf_throttle_reset(t, K("never"));
    CHECK_INT(cf_throttle_keys(t), 2, "resetting an unknown key is a no-op");
    cf_throttle_fail(t, K("a"), 200);
    CHECK_INT(cf_throttle_count(t, K("a"), 200), 1, "a counts afresh after reset");
    cf_throttle_free(t);

    /* Key length: up to CF_THROTTLE_KEY_MAX bytes; longer ones are refused, never stored. */
    t = cf_throttle_new(2, 2500, 16);
    char big[CF_THROTTLE_KEY_MAX + 1];
    memset(big, 'x', sizeof big);
    cf_throttle_fail(t, big, CF_THROTTLE_KEY_MAX, 100);
    CHECK_INT(cf_throttle_count(t, big, CF_THROTTLE_KEY_MAX, 100), 1, "a 512-byte key works");
    CHECK_INT(cf_throttle_count(t, big, CF_THROTTLE_KEY_MAX - 1, 100), 0, "its 511-byte prefix is another key");
    cf_throttle_fail(t, big, sizeof big, 100);
    CHECK_INT(cf_throttle_keys(t), 1, "a 513-byte key is not stored");
    ra = 0;
    CHECK(!cf_throttle_allowed(t, big, sizeof big, 100, &ra) && ra == 3, "a 513-byte key is denied, retry one window (3 s)");
    CHECK_INT(cf_throttle_count(t, big, sizeof big, 100), 2, "a 513-byte key counts as limit");
    cf_throttle_reset(t, big, sizeof big);
    CHECK_INT(cf_throttle_keys(t), 1, "resetting a 513-byte key is a no-op");
    cf_throttle_free(t);
}

static void eviction(void)
{
    char key[32];
    struct cf_throttle *t = cf_throttle_new(2, 1000, 4);
    cf_throttle_fail(t, K("k0"), 100);
    cf_throttle_fail(t, K("k1"), 200);
    cf_throttle_fail(t, K("k2"), 300);
    cf_throttle_fail(t, K("k3"), 400);
    CHECK_INT(cf_throttle_keys(t), 4, "table full");
    /* All inside the window: the key with the oldest newest failure (k0) goes. */
    cf_throttle_fail(t, K("k4"), 500);
    CHECK_INT(cf_throttle_keys(t), 4, "still 4 keys");
    CHECK_INT(cf_throttle_count(t, K("k0"), 500), 0, "k0 evicted");
    CHECK(cf_throttle_count(t, K("k1"), 500) == 1 && cf_throttle_count(t, K("k2"), 500) == 1 &&
              cf_throttle_count(t, K("k3"), 500) == 1 && cf_throttle_count(t, K("k4"), 500) == 1,
          "k1..k4 kept");
    /* A new failure makes k1 the most recent, so k2 goes next. */
    cf_throttle_fail(t, K("k1"), 600);
    cf_throttle_fail(t, K("k5"), 700);
    CHECK_INT(cf_throttle_count(t, K("k2"), 700), 0, "k2 evicted, not the refreshed k1");
    CHECK_INT(cf_throttle_count(t, K("k1"), 700), 2, "k1 kept with both failures");
    CHECK_INT(cf_throttle_keys(t), 4, "still 4 keys");
    /* At 1450 the window is (450, 1450]: k3 (400) is out; every such key goes at once. */
    cf_throttle_fail(t, K("k6"), 1450);
    CHECK_INT(cf_throttle_keys(t), 4, "k3 made room: 4 keys");
    CHECK(cf_throttle_count(t, K("k4"), 1450) == 1 && cf_throttle_count(t, K("k1"), 1450) == 1 &&
              cf_throttle_count(t, K("k5"), 1450) == 1 && cf_throttle_count(t, K("k6"), 1450) == 1,
          "k1, k4, k5, k6 kept");
    /* At 5000 nothing is inside: all four go, and only the new key remains. */
    cf_throttle_fail(t, K("k7"), 5000);
    CHECK_INT(cf_throttle_keys(t), 1, "all expired keys dropped in one pass");
    CHECK_INT(cf_throttle_count(t, K("k7"), 5000), 1, "k7 held");
    cf_throttle_free(t);

    /* Many keys through a small table: never more than max_keys, the newest ones kept. */
    t = cf_throttle_new(3, 1000000, 8);
    bool bounded = true;
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "user%d", i);
        cf_throttle_fail(t, K(key), 1000 + (uint64_t)i);
        size_t want = i + 1 < 8 ? (size_t)i + 1 : 8;
        bounded = bounded && cf_throttle_keys(t) == want;
    }
    CHECK(bounded, "keys() is min(inserted, max_keys) after every insertion");
    bool newest = true, oldest = true;
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "user%d", i);
        unsigned c = cf_throttle_count(t, K(key), 2000);
        if (i >= 92)
            newest = newest && c == 1;
        else
            oldest = oldest && c == 0;
    }
    CHECK(newest, "the 8 most recent keys are kept");
    CHECK(oldest, "the 92 older keys are gone");
    cf_throttle_free(t);
}

/* ---- threads ----------------------------------------------------------------------------------- */

#define THREADS 4
#define ITERS 10000

struct worker {
    struct cf_throttle *t;
    int id;
    unsigned denied; /* shared-key checks refused (none: the shared keys stay under the limit) */
};

static void *work(void *arg)
{
    struct worker *w = arg;
    static const char *const shared[] = {"shared:a", "shared:b", "shared:c"};
    char priv[32], heavy[32];
    snprintf(priv, sizeof priv, "private:%d", w->id);
    snprintf(heavy, sizeof heavy, "heavy:%d", w->id);
    for (int j = 0; j < ITERS; j++) {
        uint64_t now = 1000000 + (uint64_t)j, ra;
        /* Overlapping keys: every thread fails and checks the same three. Per thread, 500
         * failures: 167, 167 and 166 on a, b and c. */
        if (j % 20 == 0)
            cf_throttle_fail(w->t, K(shared[(j / 20) % 3]), now);
        else if (!cf_throttle_allowed(w->t, K(shared[(j + w->id) % 3]), now, &ra))
            w->denied++;
        if (j % 500 == 0)
            cf_throttle_fail(w->t, K(priv), now); /* 20 failures */
        if (j % 5 == 0)
            cf_throttle_fail(w->t, K(heavy), now); /* 2000 failures, capped at limit */
    }
    return NULL;
}

static void *churn(void *arg)
{
    struct worker *w = arg;
    char key[32];
    for (int j = 0; j < ITERS; j++) {
        snprintf(key, sizeof key, "t%d-%d", w->id, j % 2000);
        cf_throttle_fail(w->t, K(key), 1000 + (uint64_t)j);
        uint64_t ra;
        (void)cf_throttle_allowed(w->t, K(key), 1000 + (uint64_t)j, &ra);
        if (j % 7 == 0)
            cf_throttle_reset(w->t, K(key));
    }
    return NULL;
}

static void threads(void)
{
    struct cf_throttle *t = cf_throttle_new(CF_THROTTLE_LIMIT_MAX, 1000000000, 64);
    struct worker w[THREADS];
    pthread_t th[THREADS];
    bool started = true;
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.t = t, .id = i, .denied = 0};
        started = started && pthread_create(&th[i], NULL, work, &w[i]) == 0;
    }
    CHECK(started, "4 workers started");
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    char key[32];
    for (int i = 0; i < THREADS; i++) {
        snprintf(key, sizeof key, "private:%d", i);
        CHECK_INT(cf_throttle_count(t, K(key), 2000000), 20, "thread %d's private key: exactly 20 failures", i);
        snprintf(key, sizeof key, "heavy:%d", i);
        CHECK_INT(cf_throttle_count(t, K(key), 2000000), CF_THROTTLE_LIMIT_MAX, "thread %d's heavy key: capped at limit", i);
    }
    /* Every failure on the overlapping keys counted once: no update lost to a race. */
    CHECK_INT(cf_throttle_count(t, K("shared:a"), 2000000), 4 * 167, "shared:a: 668 failures from 4 threads");
    CHECK_INT(cf_throttle_count(t, K("shared:b"), 2000000), 4 * 167, "shared:b: 668 failures");
    CHECK_INT(cf_throttle_count(t, K("shared:c"), 2000000), 4 * 166, "shared:c: 664 failures");
    CHECK_INT(cf_throttle_keys(t), 3 + 2 * THREADS, "exactly 11 keys held");
    unsigned denied = 0;
    for (int i = 0; i < THREADS; i++)
        denied += w[i].denied;
    CHECK_INT(denied, 0, "no shared-key check denied below the limit");
    cf_throttle_free(t);

    /* Eviction, reset and lookups racing on a table far too small for the keys. */
    t = cf_throttle_new(3, 1000000, 8);
    started = true;
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.t = t, .id = i, .denied = 0};
        started = started && pthread_create(&th[i], NULL, churn, &w[i]) == 0;
    }
    CHECK(started, "4 churn workers started");
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    size_t held = cf_throttle_keys(t);
    CHECK(held >= 1 && held <= 8, "churn leaves 1..8 keys (%zu)", held);
    /* The structure survived the races: forgetting every key ever used empties the table
     * exactly, and it then fills and evicts as a fresh one would. */
    for (int i = 0; i < THREADS; i++) {
        for (int j = 0; j < 2000; j++) {
            snprintf(key, sizeof key, "t%d-%d", i, j);
            cf_throttle_reset(t, K(key));
        }
    }
    CHECK_INT(cf_throttle_keys(t), 0, "after resetting every churned key: 0 keys");
    bool fresh = true;
    for (int j = 0; j < 9; j++) {
        snprintf(key, sizeof key, "after%d", j);
        cf_throttle_fail(t, K(key), 5000 + (uint64_t)j);
        fresh = fresh && cf_throttle_keys(t) == (j < 8 ? (size_t)j + 1 : 8);
    }
    for (int j = 0; j < 9; j++) {
        snprintf(key, sizeof key, "after%d", j);
        fresh = fresh && cf_throttle_count(t, K(key), 6000) == (j == 0 ? 0u : 1u);
    }
    CHECK(fresh, "then 9 new keys: 8 held, the first evicted");
    cf_throttle_free(t);
}

int main(void)
{
    args();
    basic();
    rounding();
    spread();
    reset_and_keys();
    eviction();
    threads();
    return tap_done();
}
