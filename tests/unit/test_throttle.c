/*
 * test_throttle.c: the sliding-window failure limiter (src/throttle.c): the window and its
 * half-open edge, retry-after rounding, ring overflow, reset, key independence, bounded memory and
 * eviction order, argument checks, and a multi-threaded smoke test with exact final counts;
 * reservations (reserve refuses at the limit, release takes back exactly its own attempt) and
 * bursts of reservations from several threads (exactly `limit` granted); and the address keys of
 * src/addr.c (IPv4, IPv4-mapped, IPv6 /64 in every textual form).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
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

/* ---- reservations ------------------------------------------------------------------------------ */

static void reserve_basic(void)
{
    struct cf_throttle *t = cf_throttle_new(3, 1000, 16);
    struct cf_throttle_ticket a, b, c, d;
    uint64_t ra = 777;
    CHECK(cf_throttle_reserve(t, K("acct"), 5000, &ra, &a) && a.held && a.nth == 1 && a.at == 5000 && ra == 777,
          "first reservation granted: nth 1, at 5000, retry untouched");
    CHECK(cf_throttle_reserve(t, K("acct"), 5200, &ra, &b) && b.nth == 2 && b.at == 5200, "second: nth 2");
    CHECK(cf_throttle_reserve(t, K("acct"), 5400, &ra, &c) && c.nth == 3, "third: nth 3");
    CHECK_INT(cf_throttle_count(t, K("acct"), 5400), 3, "a reservation counts as a failure");
    d.held = true;
    ra = 0;
    CHECK(!cf_throttle_reserve(t, K("acct"), 5400, &ra, &d) && !d.held, "fourth refused, ticket not held");
    CHECK_INT(ra, 1, "retry after ceil((5000 + 1000 - 5400) / 1000) = 1 s, as allowed() says");
    CHECK_INT(cf_throttle_count(t, K("acct"), 5400), 3, "a refusal records nothing");
    cf_throttle_release(t, K("acct"), &d, 5400);
    CHECK_INT(cf_throttle_count(t, K("acct"), 5400), 3, "releasing a refused ticket changes nothing");

    /* Release the middle one (5200): 5000 and 5400 stay, in order. */
    cf_throttle_release(t, K("acct"), &b, 5500);
    CHECK(!b.held, "release clears held");
    CHECK_INT(cf_throttle_count(t, K("acct"), 5500), 2, "release took back one attempt");
    CHECK_INT(cf_throttle_count(t, K("acct"), 6000), 1, "5000 left at 6000: the 5400 one remains");
    CHECK_INT(cf_throttle_count(t, K("acct"), 6400), 0, "and leaves at 6400: 5200 was the one released");
    cf_throttle_release(t, K("acct"), &b, 5500);
    CHECK_INT(cf_throttle_count(t, K("acct"), 5500), 2, "a second release of the same ticket does nothing");
    CHECK(cf_throttle_reserve(t, K("acct"), 5500, &ra, &b) && b.nth == 3, "the freed place can be reserved again");
    CHECK(!cf_throttle_reserve(t, K("acct"), 5500, &ra, &d), "and then the key is full again");
    cf_throttle_free(t);

    /* Release keeps earlier failures: the success case of a login after failures. */
    t = cf_throttle_new(10, 60000, 16);
    for (int i = 0; i < 9; i++)
        cf_throttle_fail(t, K("acct"), 1000 + (uint64_t)i);
    CHECK(cf_throttle_reserve(t, K("acct"), 2000, &ra, &a) && a.nth == 10, "9 failures, the 10th attempt reserved");
    cf_throttle_release(t, K("acct"), &a, 2100);
    CHECK_INT(cf_throttle_count(t, K("acct"), 2100), 9, "success: the 9 failures stay");
    CHECK_INT(cf_throttle_keys(t), 1, "the key stays");
    /* Releasing the only attempt of a key forgets the key. */
    CHECK(cf_throttle_reserve(t, K("other"), 2000, &ra, &a), "reserved on a new key");
    CHECK_INT(cf_throttle_keys(t), 2, "two keys");
    cf_throttle_release(t, K("other"), &a, 2000);
    CHECK_INT(cf_throttle_keys(t), 1, "released its only attempt: the key is gone");
    cf_throttle_free(t);

    /* A full ring whose oldest times have left the window: reserve overwrites those, and the
     * release removes the new time, not an old one. */
    t = cf_throttle_new(3, 1000, 16);
    cf_throttle_fail(t, K("k"), 0);
    cf_throttle_fail(t, K("k"), 100);
    cf_throttle_fail(t, K("k"), 200);
    CHECK(cf_throttle_reserve(t, K("k"), 1150, &ra, &a) && a.nth == 2, "0 and 100 out at 1150: reserved, nth 2");
    CHECK_INT(cf_throttle_count(t, K("k"), 1150), 2, "200 and 1150 inside");
    cf_throttle_release(t, K("k"), &a, 1150);
    CHECK_INT(cf_throttle_count(t, K("k"), 1150), 1, "released: only 200 inside");
    CHECK_INT(cf_throttle_count(t, K("k"), 1200), 0, "200 leaves at 1200");

    /* An attempt that has left the window is not released (it counts no more, and its time may
     * have been overwritten): later failures stay. */
    CHECK(cf_throttle_reserve(t, K("late"), 3000, &ra, &a), "reserved at 3000");
    cf_throttle_fail(t, K("late"), 3500);
    cf_throttle_fail(t, K("late"), 4000);
    cf_throttle_release(t, K("late"), &a, 4000);
    CHECK_INT(cf_throttle_count(t, K("late"), 4000), 2, "release of an attempt out of the window: 3500, 4000 stay");

    /* Clock skew: a reservation recorded at a later newest time is released by that time. */
    cf_throttle_fail(t, K("skew"), 9000);
    CHECK(cf_throttle_reserve(t, K("skew"), 8000, &ra, &a) && a.at == 9000, "reserve at 8000 after 9000: at 9000");
    cf_throttle_release(t, K("skew"), &a, 8000);
    CHECK_INT(cf_throttle_count(t, K("skew"), 9000), 1, "released: the failure at 9000 stays");

    /* A key reset while an attempt is reserved: the release finds nothing and does nothing. */
    CHECK(cf_throttle_reserve(t, K("gone"), 9000, &ra, &a), "reserved");
    cf_throttle_reset(t, K("gone"));
    cf_throttle_release(t, K("gone"), &a, 9000);
    CHECK_INT(cf_throttle_count(t, K("gone"), 9000), 0, "release after reset: nothing to do");

    /* Key too long: refused like allowed(), never stored. */
    char big[CF_THROTTLE_KEY_MAX + 1];
    memset(big, 'x', sizeof big);
    size_t keys = cf_throttle_keys(t);
    ra = 0;
    CHECK(!cf_throttle_reserve(t, big, sizeof big, 100, &ra, &a) && !a.held && ra == 1,
          "a 513-byte key: refused, retry one window");
    CHECK_INT(cf_throttle_keys(t), keys, "and not stored");
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

/* A success forgets what failed before it began, never attempts still in flight (an attacker's). */
static void settle(void)
{
    struct cf_throttle *t = cf_throttle_new(5, 10000, 16);
    struct cf_throttle_ticket f1, f2, victim, attacker, late, none = {0};
    uint64_t ra;
    CHECK(cf_throttle_reserve(t, K("acct"), 1000, &ra, &f1) && cf_throttle_reserve(t, K("acct"), 1100, &ra, &f2),
          "two failures");
    CHECK(cf_throttle_reserve(t, K("acct"), 1200, &ra, &victim), "the owner's attempt is reserved");
    CHECK(cf_throttle_reserve(t, K("acct"), 1200, &ra, &attacker), "an attacker's, the same millisecond");
    CHECK(cf_throttle_reserve(t, K("acct"), 1300, &ra, &late), "and one after it");
    cf_throttle_settle(t, K("acct"), &victim, 1400);
    CHECK(!victim.held, "settle clears held");
    CHECK_INT(cf_throttle_count(t, K("acct"), 1400), 2, "the two earlier failures are forgotten, the two in flight stay");
    cf_throttle_settle(t, K("acct"), &victim, 1400);
    CHECK_INT(cf_throttle_count(t, K("acct"), 1400), 2, "a second settle of the same ticket does nothing");
    cf_throttle_settle(t, K("acct"), &none, 1400);
    CHECK_INT(cf_throttle_count(t, K("acct"), 1400), 2, "settling a ticket never held does nothing");
    cf_throttle_release(t, K("acct"), &attacker, 1500);
    cf_throttle_release(t, K("acct"), &late, 1500);
    CHECK_INT(cf_throttle_count(t, K("acct"), 1500), 0, "released: nothing left");
    CHECK_INT(cf_throttle_keys(t), 0, "and the key is dropped");
    cf_throttle_free(t);
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

/* A burst: BURST_THREADS threads released at once by a barrier, each trying BURST_TRIES
 * reservations of one key at the same time (the parallel logins of an attacker). */
#define BURST_THREADS 8
#define BURST_TRIES 200
#define BURST_LIMIT 10

struct burster {
    struct cf_throttle *t;
    pthread_barrier_t *go;
    bool succeed;          /* release every other granted attempt (a right password) */
    unsigned granted, released;
    atomic_uint *holding;  /* attempts held right now, over all threads */
    atomic_uint *peak;     /* the most ever held at once */
};

static void *burst(void *arg)
{
    struct burster *b = arg;
    pthread_barrier_wait(b->go);
    for (int j = 0; j < BURST_TRIES; j++) {
        struct cf_throttle_ticket tk;
        uint64_t ra;
        if (!cf_throttle_reserve(b->t, K("acct:victim"), 50000, &ra, &tk))
            continue;
        b->granted++;
        unsigned now_held = atomic_fetch_add(b->holding, 1) + 1;
        unsigned p = atomic_load(b->peak);
        while (now_held > p && !atomic_compare_exchange_weak(b->peak, &p, now_held))
            ;
        if (b->succeed && j % 2 == 0) {
            atomic_fetch_sub(b->holding, 1);
            cf_throttle_release(b->t, K("acct:victim"), &tk, 50000);
            b->released++;
        }
    }
    return NULL;
}

static void bursts(void)
{
    for (int round = 0; round < 2; round++) {
        bool succeed = round == 1;
        struct cf_throttle *t = cf_throttle_new(BURST_LIMIT, 900000, 64);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, BURST_THREADS);
        atomic_uint holding = 0, peak = 0;
        struct burster b[BURST_THREADS];
        pthread_t th[BURST_THREADS];
        bool started = true;
        for (int i = 0; i < BURST_THREADS; i++) {
            b[i] = (struct burster){.t = t, .go = &go, .succeed = succeed, .holding = &holding, .peak = &peak};
            started = started && pthread_create(&th[i], NULL, burst, &b[i]) == 0;
        }
        CHECK(started, "%d burst threads started", BURST_THREADS);
        unsigned granted = 0, released = 0;
        for (int i = 0; i < BURST_THREADS; i++) {
            pthread_join(th[i], NULL);
            granted += b[i].granted;
            released += b[i].released;
        }
        pthread_barrier_destroy(&go);
        if (!succeed) {
            CHECK_INT(granted, BURST_LIMIT, "%d parallel attempts, none released: exactly limit (%d) granted",
                      BURST_THREADS * BURST_TRIES, BURST_LIMIT);
        } else {
            CHECK_INT(granted - released, BURST_LIMIT, "with successes released: exactly limit kept as failures");
            CHECK(released > 0, "some successes were released (%u)", released);
        }
        CHECK(atomic_load(&peak) <= BURST_LIMIT, "never more than limit held at once (peak %u)", atomic_load(&peak));
        CHECK_INT(cf_throttle_count(t, K("acct:victim"), 50000), BURST_LIMIT, "the key ends with limit failures");
        struct cf_throttle_ticket tk;
        uint64_t ra = 0;
        CHECK(!cf_throttle_reserve(t, K("acct:victim"), 50000, &ra, &tk) && ra == 900,
              "the next attempt (the right password) is refused, retry 900 s");
        cf_throttle_free(t);
    }
}

/* ---- address keys ------------------------------------------------------------------------------ */

static bool key_is(const uint8_t *k, uint8_t fam, const uint8_t *bytes, size_t n)
{
    uint8_t want[CF_ADDR_KEY_LEN] = {fam};
    memcpy(want + 1, bytes, n);
    return memcmp(k, want, CF_ADDR_KEY_LEN) == 0;
}

static bool same_key(const char *a, const char *b)
{
    uint8_t ka[CF_ADDR_KEY_LEN], kb[CF_ADDR_KEY_LEN];
    return cf_addr_key_text(a, ka) && cf_addr_key_text(b, kb) && memcmp(ka, kb, sizeof ka) == 0;
}

static void addr_keys(void)
{
    uint8_t k[CF_ADDR_KEY_LEN];
    static const uint8_t v4[4] = {192, 0, 2, 1};
    static const uint8_t p64[8] = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x02};
    CHECK(cf_addr_key_text("192.0.2.1", k) && key_is(k, 4, v4, 4), "IPv4: family 4 and the address");
    CHECK(cf_addr_key_text("::ffff:192.0.2.1", k) && key_is(k, 4, v4, 4), "IPv4-mapped IPv6: the IPv4 key");
    CHECK(cf_addr_key_text("::FFFF:c000:0201", k) && key_is(k, 4, v4, 4), "IPv4-mapped in hex: the IPv4 key");
    CHECK(cf_addr_key_text("2001:db8:1:2::1", k) && key_is(k, 6, p64, 8), "IPv6: family 6 and the /64");
    CHECK(same_key("2001:db8:1:2::1", "2001:0db8:0001:0002:0000:0000:0000:0001"), "compressed = uncompressed");
    CHECK(same_key("2001:db8:1:2::1", "2001:DB8:1:2:ffff:eeee:dddd:cccc"), "two addresses in one /64: one key");
    CHECK(same_key("2001:db8:1:2::1", "2001:db8:1:2::"), "the /64 itself: the same key");
    CHECK(!same_key("2001:db8:1:2::1", "2001:db8:1:3::1"), "the next /64: another key");
    CHECK(!same_key("2001:db8:1:2::1", "2001:db9:1:2::1"), "another prefix: another key");
    CHECK(!same_key("192.0.2.1", "192.0.2.2"), "IPv4 addresses are not grouped");
    CHECK(!same_key("::192.0.2.1", "192.0.2.1"), "an IPv4-compatible (not mapped) address is IPv6");
    CHECK(!same_key("::1", "127.0.0.1"), "::1 is not 127.0.0.1");
    CHECK(!same_key("::ffff:192.0.2.1", "::fffe:192.0.2.1"), "only ::ffff:0:0/96 is mapped");
    CHECK(same_key("fe80::1%eth0", "fe80::2"), "a %%zone is ignored; link-local /64");
    static const uint8_t zero[CF_ADDR_KEY_LEN] = {0};
    const char *bad[] = {"unknown", "", "192.0.2", "192.0.2.256", "1.2.3.4.5", "2001:db8::1::2", "2001:db8:::1",
                         "12345::1", "::ffff:1.2.3", "fe80::1%", "x::1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(k, 0xaa, sizeof k);
        bool ok = cf_addr_key_text(bad[i], k);
        CHECK(!ok && memcmp(k, zero, sizeof k) == 0, "\"%s\" is no address: false, the all-zero key", bad[i]);
    }
    char longz[128];
    memset(longz, 'z', sizeof longz);
    memcpy(longz, "fe80::1%", 8);
    longz[sizeof longz - 1] = '\0';
    CHECK(cf_addr_key_text(longz, k), "a long zone is ignored too");
    memset(longz, '1', sizeof longz - 1);
    longz[4] = ':';
    longz[80] = '%';
    CHECK(!cf_addr_key_text(longz, k), "an over-long address before a %%: no address");

    /* Socket addresses (conn.c's per-address connection limit): the same keys. */
    struct sockaddr_in in = {.sin_family = AF_INET};
    memcpy(&in.sin_addr, v4, 4);
    cf_addr_key((struct sockaddr *)&in, sizeof in, k);
    CHECK(key_is(k, 4, v4, 4), "sockaddr_in: the IPv4 key");
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    CHECK(inet_pton(AF_INET6, "::ffff:192.0.2.1", &in6.sin6_addr) == 1, "parse mapped");
    cf_addr_key((struct sockaddr *)&in6, sizeof in6, k);
    CHECK(key_is(k, 4, v4, 4), "sockaddr_in6, mapped: the IPv4 key");
    CHECK(inet_pton(AF_INET6, "2001:db8:1:2:3:4:5:6", &in6.sin6_addr) == 1, "parse v6");
    cf_addr_key((struct sockaddr *)&in6, sizeof in6, k);
    uint8_t kt[CF_ADDR_KEY_LEN];
    CHECK(key_is(k, 6, p64, 8) && cf_addr_key_text("2001:db8:1:2::9", kt) && memcmp(k, kt, sizeof k) == 0,
          "sockaddr_in6: the /64, equal to the key of its text");
    cf_addr_key((struct sockaddr *)&in6, sizeof in6 - 1, k);
    CHECK(memcmp(k, zero, sizeof k) == 0, "a truncated sockaddr_in6: the all-zero key");
    struct sockaddr un = {.sa_family = AF_UNIX};
    cf_addr_key(&un, sizeof un, k);
    CHECK(memcmp(k, zero, sizeof k) == 0, "another family: the all-zero key");
}

int main(void)
{
    args();
    basic();
    rounding();
    spread();
    reset_and_keys();
    eviction();
    reserve_basic();
    settle();
    threads();
    bursts();
    addr_keys();
    return tap_done();
}
