/*
 * test_coord.c: leases and shared failure counters between nodes (engine.h cf_eng_lease/cf_eng_counter,
 * storage/coord.c; docs/CLUSTER.md "Leases and shared throttles"), over a throw-away PostgreSQL (meson
 * runs this through tests/lib/pgtmp.sh, which exports COFFER_PG_CONNINFO). Two store handles on one
 * database stand for two nodes: at the engine level each is given its own holder id.
 *
 * Leases: one holder at a time; the other takes over only after expiry (polled, no fixed sleep);
 * renewal moves the expiry forward; a drop by a non-holder does nothing. Counters: shared between the
 * handles and exact under concurrent threads on both (limit reserved exactly, never more); release,
 * settle, fail's cap, reset, the window. Claims (cf_coord_claim/want/holds/renew). What the tables hold:
 * the keyed hashes coord.c computes, never the plaintext label or key. Bad arguments: clear errors. A
 * RocksDB store has no shared state: CF_ENOTFOUND, and cf_coord_holds is true.
 */
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"
#include "tap.h"
#include "throttle.h"

static struct cf_key g_master;
static PGconn *g_sql;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The first value of q (malloc'ed), or NULL. */
static char *sql_value(const char *q)
{
    PGresult *r = PQexec(g_sql, q);
    char *v = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        v = cf_xstrdup(PQgetvalue(r, 0, 0));
    else
        tap_diag("sql: ", PQerrorMessage(g_sql));
    PQclear(r);
    return v;
}

static long long sql_int(const char *q)
{
    char *v = sql_value(q);
    long long n = v != NULL ? strtoll(v, NULL, 10) : -1;
    free(v);
    return n;
}

/* The name coord.c gives (label, key) in the database, computed here independently. */
static void expected_name(struct cf_store *s, const char *label, const void *key, size_t kl, uint8_t out[32])
{
    struct cf_key k;
    if (cf_hkdf(s->global_index.k, sizeof s->global_index.k, "coffer/v1/global/coord", &k) != CF_OK)
        abort();
    cf_hmac2_sha256(&k, label, strlen(label) + 1, kl > 0 ? key : "", kl, out);
    cf_key_wipe(&k);
}

static char *hex(const uint8_t *p, size_t n)
{
    char *h = cf_xmalloc(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        snprintf(h + 2 * i, 3, "%02x", p[i]);
    return h;
}

/* ---- leases at the engine level: two handles, two holders ------------------------------------ */

static const uint8_t holder_a[16] = "node-A-000000000", holder_b[16] = "node-B-000000000";

static void test_leases(struct cf_store *a, struct cf_store *b)
{
    bool held = true;
    char *err = NULL;
    uint8_t name[32];
    cf_random(name, sizeof name);
    CHECK_INT(cf_eng_lease(a->eng, name, sizeof name, holder_a, 600000, &held, &err), CF_ENG_OK, "lease: A takes it");
    CHECK(held, "lease: A holds it");
    CHECK_INT(cf_eng_lease(b->eng, name, sizeof name, holder_b, 600000, &held, &err), CF_ENG_OK, "lease: B asks");
    CHECK(!held, "lease: B does not get it while A holds it");
    CHECK_INT(cf_eng_lease_drop(b->eng, name, sizeof name, holder_b, &err), CF_ENG_OK, "lease: B's drop (a no-op)");
    CHECK_INT(cf_eng_lease(a->eng, name, sizeof name, holder_a, 600000, &held, &err), CF_ENG_OK, "lease: A renews");
    CHECK(held, "lease: A still holds it after B's drop");
    CHECK_INT(cf_eng_lease_drop(a->eng, name, sizeof name, holder_a, &err), CF_ENG_OK, "lease: A drops it");
    CHECK_INT(cf_eng_lease(b->eng, name, sizeof name, holder_b, 600000, &held, &err), CF_ENG_OK, "lease: B asks again");
    CHECK(held, "lease: B gets it at once once A dropped it");

    /* Renewal moves the expiry forward (read in the database: no timing assumed). */
    char *q = NULL, *h = hex(name, sizeof name);
    q = cf_xasprintf("SELECT (extract(epoch FROM expires_at) * 1000000)::bigint FROM coffer_coord_leases WHERE name "
                     "= '\\x%s'", h);
    long long before = sql_int(q);
    CHECK_INT(cf_eng_lease(b->eng, name, sizeof name, holder_b, 900000, &held, &err), CF_ENG_OK, "lease: B renews");
    long long after = sql_int(q);
    CHECK(held && after > before, "lease: renewal moves the expiry forward (%lld > %lld)", after, before);
    free(q);
    free(h);

    /* Takeover after expiry: B holds a short lease; A is refused until it expires, then gets it. */
    cf_random(name, sizeof name);
    CHECK_INT(cf_eng_lease(b->eng, name, sizeof name, holder_b, 300, &held, &err), CF_ENG_OK, "expiry: B, 300 ms");
    CHECK(held, "expiry: B holds it");
    bool got = false;
    int refusals = 0;
    for (uint64_t end = mono_ms() + 30000; !got && mono_ms() < end;) {
        if (cf_eng_lease(a->eng, name, sizeof name, holder_a, 600000, &got, &err) != CF_ENG_OK) {
            tap_diag("", err);
            cf_eng_free(err);
            break;
        }
        refusals += !got;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK(got, "expiry: A takes it over once it expired (after %d refusal(s))", refusals);
    CHECK_INT(cf_eng_lease(b->eng, name, sizeof name, holder_b, 600000, &held, &err), CF_ENG_OK, "expiry: B asks");
    CHECK(!held, "expiry: B does not get it back");
    printf("# takeover after %d refusal(s)\n", refusals);

    /* Many contenders at once, half on each handle: exactly one wins. */
    cf_random(name, sizeof name);
    int winners = 0;
    for (int i = 0; i < 8; i++) {
        uint8_t who[16];
        memset(who, 'a' + i, sizeof who);
        struct cf_store *s = i % 2 ? b : a;
        if (cf_eng_lease(s->eng, name, sizeof name, who, 600000, &held, &err) == CF_ENG_OK)
            winners += held;
        else
            cf_eng_free(err);
    }
    CHECK_INT(winners, 1, "lease: one of eight holders on two handles gets it");
}

/* ---- counters: shared and exact ------------------------------------------------------------- */

struct racer {
    struct cf_store *s;
    int tries, granted, errors;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < r->tries; i++) {
        struct cf_coord_ctr c = {.limit = 100, .window_ms = 3600000};
        enum cf_status st = cf_coord_counter(r->s, CF_COORD_RESERVE, "test-race", "mallory@example", 15, &c);
        if (st != CF_OK)
            r->errors++;
        else
            r->granted += c.granted;
    }
    return NULL;
}

/* ---- shared windows of sums (the bulk-download alert) ------------------------------------------- */

struct adder {
    struct cf_store *s;
    int fired, errors;
    uint64_t last_files;
};

static void *add_race(void *arg)
{
    struct adder *r = arg;
    for (int i = 0; i < 25; i++) {
        struct cf_coord_window w = {.window_ms = 3600000, .files = 1, .bytes = 100, .files_max = 150};
        if (cf_coord_window(r->s, "test-bulk", "actor-1", 7, &w) != CF_OK)
            r->errors++;
        else
            r->fired += w.fire, r->last_files = w.files;
    }
    return NULL;
}

static void test_windows(struct cf_store *a, struct cf_store *b)
{
    /* 8 threads over both nodes add 200 files of 100 bytes: the sums are exact and exactly one
     * addition, whichever node made it, fires (the 150th). */
    pthread_t th[8];
    struct adder r[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (struct adder){.s = i % 2 ? b : a};
        if (pthread_create(&th[i], NULL, add_race, &r[i]) != 0)
            abort();
    }
    int fired = 0, errors = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        fired += r[i].fired;
        errors += r[i].errors;
    }
    CHECK_INT(errors, 0, "window: no errors under concurrency");
    CHECK_INT(fired, 1, "window: one alert across both nodes for one window");
    struct cf_coord_window w = {.window_ms = 3600000, .files_max = 150};
    CHECK_INT(cf_coord_window(b, "test-bulk", "actor-1", 7, &w), CF_OK, "window: read through B");
    CHECK(w.files == 200 && w.bytes == 20000 && !w.fire, "window: exact sums 200 files, 20000 bytes, no second alert "
          "(%llu, %llu)", (unsigned long long)w.files, (unsigned long long)w.bytes);
    /* Bytes threshold, another actor; a threshold reached by one addition fires at once. */
    struct cf_coord_window big = {.window_ms = 3600000, .files = 1, .bytes = 5000, .bytes_max = 3000};
    CHECK_INT(cf_coord_window(a, "test-bulk", "actor-2", 7, &big), CF_OK, "window: bytes");
    CHECK(big.fire && big.files == 1 && big.bytes == 5000, "window: one addition over the bytes threshold fires");
    /* A window restarts once it is older than window_ms: with 1 ms, an addition made after one has
     * elapsed (polled, not slept) finds sums of its own only, and may fire again. */
    struct cf_coord_window s1 = {.window_ms = 1, .files = 1, .files_max = 1};
    CHECK_INT(cf_coord_window(a, "test-bulk", "actor-3", 7, &s1), CF_OK, "window: short");
    CHECK(s1.fire, "window: short: fires");
    bool restarted = false;
    for (uint64_t end = mono_ms() + 30000; !restarted && mono_ms() < end;) {
        struct cf_coord_window s2 = {.window_ms = 1, .files = 1, .files_max = 1};
        if (cf_coord_window(b, "test-bulk", "actor-3", 7, &s2) != CF_OK)
            break;
        restarted = s2.files == 1 && s2.fire;
    }
    CHECK(restarted, "window: a new window: its own sums, and its own alert");
    /* Keyed hashes only in the table; bad input refused. */
    uint8_t name[32];
    expected_name(a, "test-bulk", "actor-1", 7, name);
    char *h = hex(name, sizeof name), *q = cf_xasprintf("SELECT files FROM coffer_coord_windows WHERE k = '\\x%s'", h);
    CHECK_INT(sql_int(q), 200, "window: the row is named by the keyed hash");
    free(q);
    free(h);
    CHECK_INT(sql_int("SELECT count(*) FROM coffer_coord_windows WHERE position('actor'::bytea in k) > 0"),
              0, "window: no plaintext key");
    struct cf_coord_window bad = {.window_ms = 0};
    CHECK_INT(cf_coord_window(a, "test-bulk", "x", 1, &bad), CF_EINVAL, "window: a zero window is refused");
    struct cf_coord_window huge = {.window_ms = 1000, .files = UINT64_C(1) << 60};
    CHECK_INT(cf_coord_window(a, "test-bulk", "x", 1, &huge), CF_EINVAL, "window: an absurd addition is refused");
    CHECK(!bad.fire && !huge.fire, "window: refused: no alert");
    CHECK_INT(cf_coord_window(a, "", "x", 1, &s1), CF_EINVAL, "window: no label");
}

static void test_counters(struct cf_store *a, struct cf_store *b)
{
    const char *acct = "ann@acme-plaintext";
    size_t al = strlen(acct);
    struct cf_coord_ctr c = {.limit = 3, .window_ms = 3600000};
    /* Alternate handles: the count is one across both. */
    int64_t ids[3] = {0};
    for (int i = 0; i < 3; i++) {
        c.id = 0;
        CHECK_INT(cf_coord_counter(i % 2 ? b : a, CF_COORD_RESERVE, "login-account", acct, al, &c), CF_OK,
                  "counter: reserve %d on %s", i + 1, i % 2 ? "B" : "A");
        CHECK(c.granted && c.count == (unsigned)i + 1 && c.id > 0, "counter: granted, count %u", c.count);
        ids[i] = c.id;
    }
    CHECK(ids[0] < ids[1] && ids[1] < ids[2], "counter: ids increase");
    c.id = 0;
    CHECK_INT(cf_coord_counter(a, CF_COORD_RESERVE, "login-account", acct, al, &c), CF_OK, "counter: a fourth on A");
    CHECK(!c.granted && c.count == 3 && c.retry_ms >= 1 && c.retry_ms <= 3600000,
          "counter: refused, count 3, retry in %llu ms", (unsigned long long)c.retry_ms);
    CHECK_INT(cf_coord_counter(b, CF_COORD_COUNT, "login-account", acct, al, &c), CF_OK, "counter: count on B");
    CHECK_INT(c.count, 3, "counter: B counts 3");
    /* The same key under another label is another counter. */
    CHECK_INT(cf_coord_counter(b, CF_COORD_COUNT, "login-ip", acct, al, &c), CF_OK, "counter: other label");
    CHECK_INT(c.count, 0, "counter: another label counts apart");
    /* Release takes back exactly one. */
    c.id = ids[1];
    CHECK_INT(cf_coord_counter(b, CF_COORD_RELEASE, "login-account", acct, al, &c), CF_OK, "counter: release #2 on B");
    CHECK_INT(c.count, 2, "counter: 2 left");
    c.id = ids[1];
    CHECK_INT(cf_coord_counter(a, CF_COORD_RELEASE, "login-account", acct, al, &c), CF_OK, "counter: release #2 again");
    CHECK_INT(c.count, 2, "counter: a second release changes nothing");
    /* Settle: the event and everything older go, later ones stay. */
    c.id = 0;
    CHECK_INT(cf_coord_counter(a, CF_COORD_RESERVE, "login-account", acct, al, &c), CF_OK, "counter: reserve #4");
    int64_t id4 = c.id;
    c.id = ids[2];
    CHECK_INT(cf_coord_counter(b, CF_COORD_SETTLE, "login-account", acct, al, &c), CF_OK, "counter: settle #3");
    CHECK_INT(c.count, 1, "counter: only the later #4 stays");
    c.id = id4;
    CHECK_INT(cf_coord_counter(a, CF_COORD_RELEASE, "login-account", acct, al, &c), CF_OK, "counter: release #4");
    CHECK_INT(c.count, 0, "counter: nothing left");
    /* Fail keeps at most limit; reset forgets all. */
    for (int i = 0; i < 5; i++)
        CHECK_INT(cf_coord_counter(i % 2 ? a : b, CF_COORD_FAIL, "login-account", acct, al, &c), CF_OK, "fail %d",
                  i + 1);
    CHECK_INT(c.count, 3, "counter: fail keeps at most limit (3)");
    CHECK_INT(sql_int("SELECT max(n) FROM (SELECT count(*) AS n FROM coffer_coord_events GROUP BY k) x"), 3,
              "counter: 3 rows for the key in the table");
    CHECK_INT(cf_coord_counter(b, CF_COORD_RESET, "login-account", acct, al, &c), CF_OK, "counter: reset on B");
    CHECK_INT(cf_coord_counter(a, CF_COORD_COUNT, "login-account", acct, al, &c), CF_OK, "counter: count on A");
    CHECK_INT(c.count, 0, "counter: A sees the reset");

    /* The window: events leave it (polled). */
    struct cf_coord_ctr w = {.limit = 2, .window_ms = 300};
    CHECK_INT(cf_coord_counter(a, CF_COORD_FAIL, "window", "k", 1, &w), CF_OK, "window: fail");
    CHECK_INT(cf_coord_counter(b, CF_COORD_FAIL, "window", "k", 1, &w), CF_OK, "window: fail");
    CHECK(w.count == 2 && w.retry_ms >= 1 && w.retry_ms <= 300, "window: 2 counted, retry in %llu ms (<= 300)",
          (unsigned long long)w.retry_ms);
    for (uint64_t end = mono_ms() + 30000; w.count > 0 && mono_ms() < end;) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
        if (cf_coord_counter(a, CF_COORD_COUNT, "window", "k", 1, &w) != CF_OK)
            break;
    }
    CHECK_INT(w.count, 0, "window: both left the window");

    /* Exact under concurrency: 8 threads, 4 per handle, 40 reservations each against a limit of 100. */
    struct racer r[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (struct racer){.s = i % 2 ? b : a, .tries = 40};
        if (pthread_create(&th[i], NULL, race, &r[i]) != 0)
            abort();
    }
    int granted = 0, errors = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        granted += r[i].granted;
        errors += r[i].errors;
    }
    CHECK_INT(errors, 0, "race: no errors");
    CHECK_INT(granted, 100, "race: exactly the limit (100) of 320 granted over both handles");
    struct cf_coord_ctr k = {.limit = 100, .window_ms = 3600000};
    CHECK_INT(cf_coord_counter(b, CF_COORD_COUNT, "test-race", "mallory@example", 15, &k), CF_OK, "race: count");
    CHECK_INT(k.count, 100, "race: 100 counted");

    /* What the table holds: the keyed hash, never the plaintext. */
    uint8_t nm[32];
    expected_name(a, "login-account", acct, al, nm);
    char *h = hex(nm, sizeof nm), *pl = hex((const uint8_t *)acct, al);
    char *q = cf_xasprintf("SELECT count(*) FROM coffer_coord_events WHERE k = '\\x%s'", h);
    CHECK_INT(cf_coord_counter(a, CF_COORD_FAIL, "login-account", acct, al, &c), CF_OK, "plaintext: one more fail");
    CHECK_INT(sql_int(q), 1, "plaintext: stored under HMAC(coord key, label, key)");
    free(q);
    q = cf_xasprintf("SELECT count(*) FROM coffer_coord_events WHERE position('\\x%s'::bytea IN k) > 0 OR "
                     "position('\\x6c6f67696e'::bytea IN k) > 0", pl);
    CHECK_INT(sql_int(q), 0, "plaintext: neither the key nor the label in any row");
    free(q);
    free(h);
    free(pl);
}

/* ---- claims (coord.c) ---------------------------------------------------------------------- */

static void test_claims(struct cf_store *a, struct cf_store *b)
{
    bool got = false, held = false;
    const char *up = "upload-0123456789";
    CHECK(!cf_coord_holds(a, "tus", up, strlen(up)), "claim: not held before");
    CHECK_INT(cf_coord_claim(a, "tus", up, strlen(up), 30000, &got), CF_OK, "claim: taken");
    CHECK(got && cf_coord_holds(a, "tus", up, strlen(up)), "claim: held");
    CHECK_INT(cf_coord_claim(a, "tus", up, strlen(up), 30000, &got), CF_OK, "claim: again in this process");
    CHECK(!got, "claim: not got twice");
    /* Another node (a foreign holder on the same name) is refused. */
    uint8_t nm[32];
    expected_name(a, "tus", up, strlen(up), nm);
    char *err = NULL;
    CHECK_INT(cf_eng_lease(b->eng, nm, sizeof nm, holder_b, 30000, &held, &err), CF_ENG_OK, "claim: node B asks");
    CHECK(!held, "claim: node B refused while A claims it");
    struct cf_coord_renewal rn;
    cf_coord_renew(a, &rn);
    CHECK(rn.held >= 1 && rn.failed == 0 && rn.lost == 0, "claim: renewed (held %u, failed %u, lost %u)", rn.held,
          rn.failed, rn.lost);
    cf_coord_unclaim(a, "tus", up, strlen(up));
    CHECK(!cf_coord_holds(a, "tus", up, strlen(up)), "claim: given up");
    CHECK_INT(cf_eng_lease(b->eng, nm, sizeof nm, holder_b, 30000, &held, &err), CF_ENG_OK, "claim: node B asks again");
    CHECK(held, "claim: node B gets it at once");
    CHECK_INT(cf_coord_claim(a, "tus", up, strlen(up), 30000, &got), CF_OK, "claim: A asks while B has it");
    CHECK(!got && !cf_coord_holds(a, "tus", up, strlen(up)), "claim: A refused");

    /* The jobs lease: wanted, held, renewed; lost when another node holds it. */
    CHECK_INT(cf_coord_want(a, "jobs-test", 30000, &got), CF_OK, "want: asked");
    CHECK(got && cf_coord_holds(a, "jobs-test", NULL, 0), "want: held");
    cf_coord_renew(a, &rn);
    CHECK(cf_coord_holds(a, "jobs-test", NULL, 0) && rn.lost == 0, "want: still held after a renewal");
    /* Another node takes it over (as after an expiry: forced here in the table). */
    expected_name(a, "jobs-test", NULL, 0, nm);
    char *h = hex(nm, sizeof nm);
    char *q = cf_xasprintf("UPDATE coffer_coord_leases SET holder = '\\x%s', expires_at = clock_timestamp() + "
                           "interval '1 hour' WHERE name = '\\x%s' RETURNING 1", "42424242424242424242424242424242", h);
    char *v = sql_value(q);
    CHECK(v != NULL, "want: another node holds it now");
    free(v);
    cf_coord_renew(a, &rn);
    CHECK(rn.lost == 1 && !cf_coord_holds(a, "jobs-test", NULL, 0), "want: lost at the next renewal (lost %u)",
          rn.lost);
    free(q);
    q = cf_xasprintf("UPDATE coffer_coord_leases SET expires_at = clock_timestamp() - interval '1 second' WHERE name "
                     "= '\\x%s' RETURNING 1", h);
    v = sql_value(q);
    free(v);
    cf_coord_renew(a, &rn);
    CHECK(rn.gained == 1 && cf_coord_holds(a, "jobs-test", NULL, 0), "want: regained once it expired (gained %u)",
          rn.gained);
    free(q);
    free(h);
    bool lease_held = false;
    CHECK_INT(cf_coord_lease(b, "plain", "x", 1, 1000, &lease_held), CF_OK, "lease: model-level");
    CHECK(lease_held, "lease: model-level held");
    CHECK_INT(cf_coord_lease_drop(b, "plain", "x", 1), CF_OK, "lease: model-level drop");
    CHECK(cf_coord_shared(a) && cf_coord_shared(b), "shared: both PostgreSQL handles have shared state");
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void bad_engine(struct cf_eng *e, const char *what)
{
    char *err = NULL;
    bool held = true;
    uint8_t k[65] = {1};
    struct cf_eng_ctr c = {.limit = 1, .window_ms = 1000};
    int rc;
#define BAD(call, desc)                                                                                            \
    do {                                                                                                           \
        err = NULL;                                                                                                \
        rc = (call);                                                                                               \
        CHECK(rc == CF_ENG_ERR && err != NULL, "%s: %s refused", what, desc);                                      \
        if (err != NULL)                                                                                           \
            printf("#   %s\n", err);                                                                               \
        cf_eng_free(err);                                                                                          \
    } while (0)
    BAD(cf_eng_lease(e, k, 0, holder_a, 1000, &held, &err), "an empty lease name");
    BAD(cf_eng_lease(e, k, 65, holder_a, 1000, &held, &err), "a lease name of 65 bytes");
    BAD(cf_eng_lease(e, NULL, 4, holder_a, 1000, &held, &err), "a NULL lease name");
    BAD(cf_eng_lease(e, k, 4, NULL, 1000, &held, &err), "a NULL holder");
    BAD(cf_eng_lease(e, k, 4, holder_a, 0, &held, &err), "a TTL of 0");
    BAD(cf_eng_lease(e, k, 4, holder_a, 86400001, &held, &err), "a TTL over a day");
    BAD(cf_eng_lease_drop(e, k, 65, holder_a, &err), "a drop with a long name");
    BAD(cf_eng_counter(e, CF_CTR_COUNT, k, 0, &c, &err), "an empty counter key");
    BAD(cf_eng_counter(e, (enum cf_eng_ctr_op)99, k, 4, &c, &err), "an unknown operation");
    c.limit = 0;
    BAD(cf_eng_counter(e, CF_CTR_COUNT, k, 4, &c, &err), "a limit of 0");
    c.limit = 1025;
    BAD(cf_eng_counter(e, CF_CTR_COUNT, k, 4, &c, &err), "a limit of 1025");
    c.limit = 1, c.window_ms = 0;
    BAD(cf_eng_counter(e, CF_CTR_COUNT, k, 4, &c, &err), "a window of 0");
    c.window_ms = 1000, c.id = 0;
    BAD(cf_eng_counter(e, CF_CTR_RELEASE, k, 4, &c, &err), "a release without an id");
    BAD(cf_eng_counter(e, CF_CTR_COUNT, k, 4, NULL, &err), "no counter");
#undef BAD
    CHECK(!held, "%s: held stays false on refusal", what);
}

static void bad_store(struct cf_store *s, const char *what)
{
    bool got = true;
    struct cf_coord_ctr c = {.limit = 1, .window_ms = 1000};
    char *big = cf_xcalloc(CF_COORD_KEY_MAX + 1, 1);
    CHECK_INT(cf_coord_lease(s, NULL, "k", 1, 1000, &got), CF_EINVAL, "%s: no label", what);
    CHECK_INT(cf_coord_lease(s, "", "k", 1, 1000, &got), CF_EINVAL, "%s: an empty label", what);
    CHECK_INT(cf_coord_lease(s, "x", big, CF_COORD_KEY_MAX + 1, 1000, &got), CF_EINVAL, "%s: a key too long", what);
    CHECK_INT(cf_coord_lease(s, "x", NULL, 3, 1000, &got), CF_EINVAL, "%s: a NULL key with a length", what);
    CHECK_INT(cf_coord_lease(s, "x", "k", 1, 0, &got), CF_EINVAL, "%s: a TTL of 0", what);
    CHECK(!got, "%s: not held after a refusal", what);
    CHECK_INT(cf_coord_claim(s, "x", "k", 1, 2000, &got), CF_EINVAL, "%s: a claim TTL within the margin", what);
    CHECK_INT(cf_coord_counter(s, (enum cf_coord_op)42, "x", "k", 1, &c), CF_EINVAL, "%s: an unknown op", what);
    c.limit = 0;
    CHECK_INT(cf_coord_counter(s, CF_COORD_COUNT, "x", "k", 1, &c), CF_EINVAL, "%s: a limit of 0", what);
    c.limit = 1, c.window_ms = 0;
    CHECK_INT(cf_coord_counter(s, CF_COORD_COUNT, "x", "k", 1, &c), CF_EINVAL, "%s: a window of 0", what);
    c.window_ms = 1000, c.id = 0;
    CHECK_INT(cf_coord_counter(s, CF_COORD_SETTLE, "x", "k", 1, &c), CF_EINVAL, "%s: a settle without an id", what);
    free(big);
}

/* ---- RocksDB: no shared state -------------------------------------------------------------- */

static void test_rocks(const char *dir)
{
    struct cf_store *s = NULL;
    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "rocks: created");
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "rocks: opened");
    if (s == NULL)
        return;
    bool got = false;
    struct cf_coord_ctr c = {.limit = 1, .window_ms = 1000};
    CHECK(!cf_coord_shared(s), "rocks: no shared state");
    CHECK_INT(cf_coord_lease(s, "jobs", NULL, 0, 1000, &got), CF_ENOTFOUND, "rocks: lease: use the local behaviour");
    CHECK_INT(cf_coord_counter(s, CF_COORD_RESERVE, "x", "k", 1, &c), CF_ENOTFOUND, "rocks: counter: local");
    CHECK_INT(cf_coord_claim(s, "tus", "k", 1, 30000, &got), CF_ENOTFOUND, "rocks: claim: local");
    CHECK_INT(cf_coord_want(s, "jobs", 30000, &got), CF_ENOTFOUND, "rocks: want: local");
    struct cf_coord_window w = {.window_ms = 1000, .files = 1};
    CHECK_INT(cf_coord_window(s, "bulk", "k", 1, &w), CF_ENOTFOUND, "rocks: window: local");
    CHECK(got && cf_coord_holds(s, "jobs", NULL, 0), "rocks: the one process holds everything");
    bad_store(s, "rocks");
    bad_engine(s->eng, "rocks");
    cf_store_close(s);
}

/* ---- the limiter's shared backend (src/core/throttle.c over coord.c, as src/app/server.c wires it) -- */

static bool g_backend_down;

/* server.c's adapter, with a switch that makes the backend fail (the database out of reach). */
static bool backend_fn(void *ctx, enum cf_throttle_op op, const char *name, const void *key, size_t n, unsigned limit,
                       uint64_t window_ms, struct cf_throttle_io *io)
{
    static const enum cf_coord_op ops[] = {CF_COORD_RESERVE, CF_COORD_FAIL,  CF_COORD_RELEASE,
                                           CF_COORD_SETTLE,  CF_COORD_RESET, CF_COORD_COUNT};
    if (g_backend_down)
        return false;
    struct cf_coord_ctr c = {.limit = limit, .window_ms = window_ms, .id = io->id};
    if (cf_coord_counter(ctx, ops[op], name, key, n, &c) != CF_OK)
        return false;
    io->id = c.id, io->at_ms = c.at_ms, io->count = c.count, io->granted = c.granted, io->retry_ms = c.retry_ms;
    return true;
}

static void test_throttle_shared(struct cf_store *s)
{
    static struct cf_throttle_backend be = {backend_fn, NULL};
    be.ctx = s;
    /* Two limiters with one name: the same limiter on two nodes. */
    struct cf_throttle *na = cf_throttle_new(5, 60000, 16), *nb = cf_throttle_new(5, 60000, 16);
    struct cf_throttle *local = cf_throttle_new(5, 60000, 16);
    cf_throttle_set_backend(&be);
    cf_throttle_share(na, "test-login");
    cf_throttle_share(nb, "test-login");
    CHECK(cf_throttle_is_shared(na) && cf_throttle_is_shared(nb) && !cf_throttle_is_shared(local),
          "throttle: two shared limiters, one local");
    const char *k = "victim";
    uint64_t ra = 0, now = 1000; /* the limiter's clock is not used when shared */
    for (int i = 0; i < 5; i++)
        cf_throttle_fail(i % 2 ? nb : na, k, strlen(k), now);
    CHECK_INT(cf_throttle_count(na, k, strlen(k), now), 5, "throttle: five failures over two nodes, counted on A");
    CHECK(!cf_throttle_allowed(nb, k, strlen(k), now, &ra) && ra >= 1 && ra <= 60,
          "throttle: B refuses the key (retry after %llu s)", (unsigned long long)ra);
    struct cf_throttle_ticket t;
    CHECK(!cf_throttle_reserve(na, k, strlen(k), now, &ra, &t) && !t.held, "throttle: A refuses a reservation");
    CHECK_INT(cf_throttle_count(local, k, strlen(k), now), 0, "throttle: a local limiter saw none of it");
    cf_throttle_reset(nb, k, strlen(k));
    CHECK_INT(cf_throttle_count(na, k, strlen(k), now), 0, "throttle: reset on B, seen on A");
    /* Tickets: a reservation on A is released on B's limiter (the same counter); settle forgets older. */
    struct cf_throttle_ticket t1, t2, t3;
    CHECK(cf_throttle_reserve(na, k, strlen(k), now, &ra, &t1) && t1.held && t1.id > 0 && t1.nth == 1,
          "throttle: reserved in the backend (id %lld)", (long long)t1.id);
    CHECK(cf_throttle_reserve(nb, k, strlen(k), now, &ra, &t2) && t2.id > t1.id && t2.nth == 2, "throttle: a second");
    cf_throttle_release(nb, k, strlen(k), &t1, now);
    CHECK(!t1.held && cf_throttle_count(na, k, strlen(k), now) == 1, "throttle: released: 1 left");
    cf_throttle_release(na, k, strlen(k), &t1, now);
    CHECK_INT(cf_throttle_count(na, k, strlen(k), now), 1, "throttle: a second release changes nothing");
    CHECK(cf_throttle_reserve(na, k, strlen(k), now, &ra, &t3), "throttle: a third");
    cf_throttle_settle(na, k, strlen(k), &t2, now);
    CHECK(!t2.held && cf_throttle_count(nb, k, strlen(k), now) == 1, "throttle: settle keeps only the later one");
    cf_throttle_release(na, k, strlen(k), &t3, now);
    CHECK_INT(cf_throttle_count(na, k, strlen(k), now), 0, "throttle: none left");
    /* The backend down: each node counts alone, and its tickets stay local. */
    g_backend_down = true;
    struct cf_throttle_ticket tl;
    CHECK(cf_throttle_reserve(na, k, strlen(k), now, &ra, &tl) && tl.held && tl.id == 0,
          "throttle: backend down: reserved locally");
    CHECK_INT(cf_throttle_count(na, k, strlen(k), now), 1, "throttle: A counts its own");
    CHECK_INT(cf_throttle_count(nb, k, strlen(k), now), 0, "throttle: B does not see it");
    g_backend_down = false;
    CHECK_INT(cf_throttle_count(na, k, strlen(k), now), 0, "throttle: backend back: the shared count (0)");
    cf_throttle_release(na, k, strlen(k), &tl, now);
    g_backend_down = true;
    CHECK_INT(cf_throttle_count(na, k, strlen(k), now), 0, "throttle: the local ticket was released locally");
    g_backend_down = false;
    cf_throttle_set_backend(NULL);
    cf_throttle_free(na);
    cf_throttle_free(nb);
    cf_throttle_free(local);
}

/* ---- tables made on first use ---------------------------------------------------------------- */

/* A database without the coordination tables (a store made before them): the first counter operation
 * (inside its transaction) and the first lease operation (a statement of its own) each create them. */
static void test_first_use(struct cf_store *s)
{
    char *v = sql_value("DROP TABLE IF EXISTS coffer_coord_events, coffer_coord_leases; SELECT 1");
    CHECK(v != NULL, "first use: tables dropped");
    free(v);
    struct cf_coord_ctr c = {.limit = 3, .window_ms = 60000};
    CHECK_INT(cf_coord_counter(s, CF_COORD_RESERVE, "first", "k", 1, &c), CF_OK, "first use: a counter creates them");
    CHECK(c.granted && c.count == 1 && c.id > 0, "first use: granted, count 1");
    v = sql_value("DROP TABLE IF EXISTS coffer_coord_events, coffer_coord_leases; SELECT 1");
    free(v);
    bool held = false;
    CHECK_INT(cf_coord_lease(s, "first", "k", 1, 5000, &held), CF_OK, "first use: a lease creates them");
    CHECK(held, "first use: held");
    CHECK_INT(sql_int("SELECT count(*) FROM coffer_coord_events"), 0, "first use: the events table is there");
}

/* ---- the database away ---------------------------------------------------------------------- */

/* tests/lib/pgtmp.sh stop|start on the test's own server (COFFER_PGTMP, COFFER_PG_DIR). */
static int pgtmp(const char *verb)
{
    const char *tool = getenv("COFFER_PGTMP"), *dir = getenv("COFFER_PG_DIR");
    if (tool == NULL || dir == NULL)
        return -1;
    pid_t p = fork();
    if (p == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1);
        execl(tool, tool, verb, dir, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (p < 0 || waitpid(p, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Leases and counters with the database stopped: CF_EUNAVAIL, no crash, a held claim still trusted
 * (it runs out by itself); everything works again once it is back. */
static void test_database_away(struct cf_store *s)
{
    bool got = false;
    CHECK_INT(cf_coord_want(s, "away-test", 60000, &got), CF_OK, "away: a wanted lease");
    CHECK(got, "away: held");
    PQfinish(g_sql);
    g_sql = NULL;
    if (pgtmp("stop") != 0) {
        CHECK(0, "away: stop the database (COFFER_PGTMP, COFFER_PG_DIR from tests/lib/pgtmp.sh)");
        return;
    }
    struct cf_coord_ctr c = {.limit = 3, .window_ms = 60000};
    CHECK_INT(cf_coord_counter(s, CF_COORD_RESERVE, "away", "k", 1, &c), CF_EUNAVAIL, "away: a counter: unavailable");
    CHECK(!c.granted, "away: not granted");
    bool held = true;
    CHECK_INT(cf_coord_lease(s, "away", "k", 1, 5000, &held), CF_EUNAVAIL, "away: a lease: unavailable");
    CHECK(!held, "away: not held");
    CHECK_INT(cf_coord_claim(s, "away", "k", 1, 5000, &got), CF_EUNAVAIL, "away: a claim: unavailable");
    CHECK(!got && !cf_coord_holds(s, "away", "k", 1), "away: not claimed");
    struct cf_coord_renewal rn;
    cf_coord_renew(s, &rn);
    CHECK(rn.failed >= 1 && rn.lost == 0, "away: renewals fail (%u), nothing counted lost", rn.failed);
    CHECK(cf_coord_holds(s, "away-test", NULL, 0), "away: the wanted lease is still trusted until it runs out");
    CHECK_INT(pgtmp("start"), 0, "away: the database back");
    cf_coord_renew(s, &rn);
    CHECK(rn.failed == 0 && cf_coord_holds(s, "away-test", NULL, 0), "away: renewed again (failed %u)", rn.failed);
    c.id = 0;
    CHECK_INT(cf_coord_counter(s, CF_COORD_RESERVE, "away", "k", 1, &c), CF_OK, "away: a counter again");
    CHECK(c.granted && c.count == 1, "away: granted, count 1");
    cf_coord_unclaim(s, "away-test", NULL, 0);
}

/* The costs, as diagnostics (no timing is asserted). */
static void costs(struct cf_store *s)
{
    enum { N = 200 };
    uint64_t t0 = mono_ms();
    int ok = 0;
    for (int i = 0; i < N; i++) {
        struct cf_coord_ctr c = {.limit = 1000, .window_ms = 3600000};
        ok += cf_coord_counter(s, CF_COORD_RESERVE, "cost", &i, sizeof i, &c) == CF_OK;
    }
    uint64_t t1 = mono_ms();
    bool held;
    for (int i = 0; i < N; i++)
        ok += cf_coord_lease(s, "cost", NULL, 0, 15000, &held) == CF_OK;
    uint64_t t2 = mono_ms();
    CHECK_INT(ok, 2 * N, "costs: %d operations", 2 * N);
    printf("# cost: a counter reservation %.0f us, a lease renewal %.0f us (mean of %d, this build)\n",
           1000.0 * (double)(t1 - t0) / N, 1000.0 * (double)(t2 - t1) / N, N);
}

int main(void)
{
    char base[] = "/tmp/coffer-unit-coord-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    cf_key_random(&g_master);
    const uint8_t *id1 = cf_coord_node_id(), *id2 = cf_coord_node_id();
    static const uint8_t zero[CF_NODE_ID_LEN];
    CHECK(id1 == id2 && memcmp(id1, zero, CF_NODE_ID_LEN) != 0, "node id: one per process, random");
    char *rocks = cf_xasprintf("%s/rocks", base);
    test_rocks(rocks);
    const char *conninfo = getenv("COFFER_PG_CONNINFO");
    if (conninfo == NULL) {
        printf("# SKIP PostgreSQL: COFFER_PG_CONNINFO is not set (meson runs this test through tests/lib/pgtmp.sh)\n");
    } else {
        /* Two engine handles on one database, each in a minimal store (the engine and the global index
         * key are all coord.c uses): the nodes of a cluster, without the rest of the model. */
        static const char *const names[] = {"default", "small"};
        static const struct cf_eng_spec spec = {.names = names, .n = 2, .required = 2, .large = -1};
        struct cf_eng_pg_target tgt = {.conninfo = conninfo, .statement_timeout_ms = 10000};
        struct cf_store sa = {0}, sb = {0};
        char *err = NULL;
        g_sql = PQconnectdb(conninfo);
        CHECK(PQstatus(g_sql) == CONNECTION_OK, "the test's own connection");
        cf_key_random(&sa.global_index);
        sb.global_index = sa.global_index; /* derived from the one global key on every node */
        CHECK_INT(cf_eng_open_pg(&tgt, &spec, CF_ENG_CREATE, &sa.eng, &err), CF_ENG_OK, "pg: node A's engine");
        if (err != NULL)
            tap_diag("", err), cf_eng_free(err), err = NULL;
        CHECK_INT(cf_eng_open_pg(&tgt, &spec, 0, &sb.eng, &err), CF_ENG_OK, "pg: node B's engine (read-write too)");
        if (err != NULL)
            tap_diag("", err), cf_eng_free(err), err = NULL;
        if (sa.eng != NULL && sb.eng != NULL) {
            test_first_use(&sa);
            test_leases(&sa, &sb);
            test_counters(&sa, &sb);
            test_windows(&sa, &sb);
            test_claims(&sa, &sb);
            bad_store(&sa, "pg");
            bad_engine(sa.eng, "pg");
            test_throttle_shared(&sa);
            costs(&sa);
            test_database_away(&sa);
        }
        if (sb.eng != NULL)
            cf_eng_close(sb.eng);
        if (sa.eng != NULL)
            cf_eng_close(sa.eng);
        cf_key_wipe(&sa.global_index);
        cf_key_wipe(&sb.global_index);
        if (g_sql != NULL)
            PQfinish(g_sql);
    }
    free(rocks);
    cf_key_wipe(&g_master);
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
