/*
 * test_feed.c: cross-node invalidation of the metadata cache over the PostgreSQL engine's change feed
 * (engine.h cf_eng_changes, db.c cf_store_catch_up; docs/CLUSTER.md "Stateless nodes"). Two store
 * handles on one throw-away PostgreSQL (meson runs this through tests/lib/pgtmp.sh, which exports
 * COFFER_PG_CONNINFO): A writes, B (a read-only handle; several writers are test_multiwriter.c's) has the
 * old values cached. Without a catch-up B serves them stale; after cf_store_catch_up it sees every
 * change A acknowledged before, and keeps what A did not touch. Then: what the feed lists for a raw
 * batch, a batch of chunk bodies only records nothing, a trimmed feed (a gap) drops B's cache, a
 * feed that cannot be read drops it too, and a RocksDB store has no feed (catch-up is a no-op). Last,
 * the measured costs, as diagnostics (no timing is asserted).
 */
#include <ftw.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store_internal.h"
#include "tap.h"

static struct cf_key g_master;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static bool sql_ok(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        printf("# %s:\n", q), tap_diag("  ", PQerrorMessage(c));
    PQclear(r);
    return ok;
}

/* What B sees of the three records. */
struct view {
    enum cf_user_status status;
    int acl_level; /* the first entry's level, 0: no entries */
    enum cf_status session;
};

static struct view look(struct cf_store *s, const struct cf_id *t, const struct cf_id *u, const struct cf_id *node,
                        const uint8_t hash[CF_SHA256_LEN])
{
    struct view v = {0};
    struct cf_user us;
    if (cf_user_get(s, t, u, &us) == CF_OK) {
        v.status = us.status;
        cf_user_clear(&us);
    }
    struct cf_acl_entry *e = NULL;
    size_t n = 0;
    if (cf_acl_get(s, t, node, &e, &n) == CF_OK && n > 0)
        v.acl_level = e[0].level;
    free(e);
    struct cf_session ss;
    v.session = cf_session_get(s, hash, &ss);
    if (v.session == CF_OK)
        cf_session_clear(&ss);
    return v;
}

/* The operations a change listing handed over. */
struct seen {
    int n, stop_after;
    enum cf_batch_op op[8];
    unsigned ks[8];
    char k[8][16], v[8][16];
};

static int collect(void *ctx, enum cf_batch_op op, unsigned ks, const uint8_t *k, size_t kl, const uint8_t *v,
                   size_t vl)
{
    struct seen *s = ctx;
    if (s->n < 8) {
        s->op[s->n] = op;
        s->ks[s->n] = ks;
        snprintf(s->k[s->n], sizeof s->k[0], "%.*s", (int)kl, (const char *)k);
        snprintf(s->v[s->n], sizeof s->v[0], "%.*s", v != NULL ? (int)vl : 0, v != NULL ? (const char *)v : "");
    }
    s->n++;
    return s->stop_after > 0 && s->n >= s->stop_after;
}

static void test_engine_feed(struct cf_store *a, struct cf_store *b)
{
    uint64_t before = 0, after = 0, last = 0;
    char *err = NULL;
    CHECK_INT(cf_eng_change_seq(a->eng, &before, &err), CF_ENG_OK,
              "engine: a writer follows the feed too (other nodes write)");
    CHECK_INT(cf_eng_changes(a->eng, before, collect, &(struct seen){0}, &last, &err), CF_ENG_OK,
              "engine: and lists it");
    CHECK_INT(cf_eng_change_seq(b->eng, &before, &err), CF_ENG_OK, "engine: the reader's feed position");
    struct cf_batch *bt = cf_batch_new(a->eng);
    cf_batch_put(bt, CF_CF_DEFAULT, "feed-put", 8, "value", 5);
    cf_batch_delete(bt, CF_CF_DEFAULT, "feed-del", 8);
    cf_batch_delete_range(bt, CF_CF_DEFAULT, "feed-lo", 7, "feed-hi", 7);
    CHECK_INT(cf_db_write_raw(a, bt, false), CF_OK, "engine: a raw batch of three operations");
    cf_batch_free(bt);
    CHECK_INT(cf_eng_change_seq(b->eng, &after, &err), CF_ENG_OK, "engine: the reader's feed position");
    CHECK(after > before, "engine: the batch is one more change (%llu > %llu)", (unsigned long long)after,
          (unsigned long long)before);
    struct seen s = {0};
    CHECK_INT(cf_eng_changes(b->eng, before, collect, &s, &last, &err), CF_ENG_OK, "engine: the reader lists it");
    CHECK(last == after, "engine: up to the newest change");
    CHECK(s.n == 3 && s.op[0] == CF_BATCH_PUT && s.ks[0] == CF_CF_DEFAULT && strcmp(s.k[0], "feed-put") == 0 &&
              s.v[0][0] == '\0' && s.op[1] == CF_BATCH_DELETE && strcmp(s.k[1], "feed-del") == 0 &&
              s.op[2] == CF_BATCH_DELETE_RANGE && strcmp(s.k[2], "feed-lo") == 0 && strcmp(s.v[2], "feed-hi") == 0,
          "engine: the keys and the range, in batch order, no value (%d ops)", s.n);
    struct seen none = {0};
    CHECK_INT(cf_eng_changes(b->eng, after, collect, &none, &last, &err), CF_ENG_OK, "engine: nothing newer");
    CHECK(none.n == 0 && last == after, "engine: no operations, the position unchanged");
    struct seen stop = {.stop_after = 1};
    CHECK_INT(cf_eng_changes(b->eng, before, collect, &stop, &last, &err), CF_ENG_GAP,
              "engine: fn asking to stop is a gap");
    CHECK(stop.n == 1 && last == after, "engine: fn not called again, the position still the newest");

    /* Chunk bodies (the large keyspace) are never recorded: a batch of them alone adds no change. */
    bt = cf_batch_new(a->eng);
    cf_batch_put(bt, CF_CF_CHUNKS, "feed-chunk", 10, "body", 4);
    CHECK_INT(cf_db_write_raw(a, bt, false), CF_OK, "engine: a batch of a chunk body only");
    cf_batch_free(bt);
    uint64_t now = 0;
    CHECK_INT(cf_eng_change_seq(b->eng, &now, &err), CF_ENG_OK, "engine: position");
    CHECK(now == after, "engine: no change recorded for it");
    cf_eng_free(err);
}

/* Two handles: A writes, B had the old values cached. */
static void test_two_nodes(const char *dir, const char *conninfo)
{
    struct cf_store *a = NULL, *b = NULL;
    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "A: store created in PostgreSQL");
    CHECK_INT(cf_store_open(dir, &g_master, &a), CF_OK, "A: opened read-write");
    if (a == NULL)
        return;
    struct cf_tenant t;
    struct cf_user u = {0};
    CHECK_INT(cf_tenant_create(a, "acme", &t), CF_OK, "A: tenant");
    u.tenant = t.id;
    u.username = cf_xstrdup("ann");
    u.pwhash = cf_xstrdup("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g");
    CHECK_INT(cf_user_create(a, &u), CF_OK, "A: user");
    struct cf_id uid = u.id, root = u.private_root;
    cf_user_clear(&u);
    struct cf_acl_entry ent = {.kind = CF_PRINCIPAL_USER, .principal = uid, .level = 1};
    CHECK_INT(cf_acl_put(a, &t.id, &root, &ent, 1), CF_OK, "A: an ACL entry (view)");
    struct cf_session ss = {.tenant = t.id, .user = uid, .created_at = 1, .expires_at = UINT64_MAX / 2};
    cf_random(ss.hash, sizeof ss.hash);
    cf_id_new(&ss.id);
    CHECK_INT(cf_session_put(a, &ss), CF_OK, "A: a session");

    CHECK_INT(cf_store_open_readonly(dir, &g_master, &b), CF_OK, "B: opened read-only");
    if (b == NULL) {
        cf_tenant_clear(&t);
        cf_store_close(a);
        return;
    }
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: the first catch-up starts following the feed");
    CHECK(atomic_load(&b->feed_applied) > 0, "B: it has a position");
    CHECK_INT(cf_store_catch_up(a), CF_OK, "A: catch-up (a writer follows the feed too)");
    CHECK(atomic_load(&a->feed_applied) > 0, "A: it has a position");
    struct view v = look(b, &t.id, &uid, &root, ss.hash);
    CHECK(v.status == CF_USER_ACTIVE && v.acl_level == 1 && v.session == CF_OK, "B: reads the current values");
    struct cf_store_stats s0, s1;
    cf_store_stats(b, &s0);
    v = look(b, &t.id, &uid, &root, ss.hash);
    cf_store_stats(b, &s1);
    CHECK(s1.cache_hits - s0.cache_hits >= 3, "B: and has them cached (%llu hits)",
          (unsigned long long)(s1.cache_hits - s0.cache_hits));
    struct cf_node node;
    CHECK_INT(cf_node_get(b, &t.id, &root, &node), CF_OK, "B: the root node, cached too");
    cf_node_clear(&node);

    /* A freezes the user, raises the ACL entry, ends the session: acknowledged. */
    CHECK_INT(cf_user_get(a, &t.id, &uid, &u), CF_OK, "A: read to modify");
    u.status = CF_USER_FROZEN;
    CHECK_INT(cf_user_put(a, &u), CF_OK, "A: user frozen");
    cf_user_clear(&u);
    ent.level = 3;
    CHECK_INT(cf_acl_put(a, &t.id, &root, &ent, 1), CF_OK, "A: ACL entry changed (edit)");
    CHECK_INT(cf_session_delete(a, ss.hash), CF_OK, "A: session ended");

    /* Without a catch-up B would serve all three stale (what the feed is for). */
    v = look(b, &t.id, &uid, &root, ss.hash);
    CHECK(v.status == CF_USER_ACTIVE && v.acl_level == 1 && v.session == CF_OK,
          "B without catch-up: the stale values from its cache (status %d, level %d, session %d)", (int)v.status,
          v.acl_level, (int)v.session);
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up");
    v = look(b, &t.id, &uid, &root, ss.hash);
    CHECK_INT(v.status, CF_USER_FROZEN, "B after catch-up: the user is frozen");
    CHECK_INT(v.acl_level, 3, "B after catch-up: the ACL entry is the new one");
    CHECK_INT(v.session, CF_ENOTFOUND, "B after catch-up: the session is gone");
    cf_store_stats(b, &s0);
    CHECK_INT(cf_node_get(b, &t.id, &root, &node), CF_OK, "B: the root node");
    cf_node_clear(&node);
    cf_store_stats(b, &s1);
    CHECK_INT(s1.cache_hits - s0.cache_hits, 1, "B: still a cache hit (A did not touch it)");
    uint64_t pos = atomic_load(&b->feed_applied);
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: a catch-up with nothing new");
    CHECK(atomic_load(&b->feed_applied) == pos, "B: leaves the position");

    test_engine_feed(a, b);
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up over the raw batches");

    /* A gap: A unfreezes the user, then the feed loses that change (trimmed, as a node far behind
     * would find it): B drops its whole cache and reads the new value. */
    v = look(b, &t.id, &uid, &root, ss.hash);
    CHECK(v.status == CF_USER_FROZEN, "B: the frozen user cached");
    CHECK_INT(cf_user_get(a, &t.id, &uid, &u), CF_OK, "A: read to modify");
    u.status = CF_USER_ACTIVE;
    CHECK_INT(cf_user_put(a, &u), CF_OK, "A: user active again");
    cf_user_clear(&u);
    PGconn *c = PQconnectdb(conninfo);
    CHECK(PQstatus(c) == CONNECTION_OK, "the test's own connection");
    CHECK(sql_ok(c, "WITH d AS (DELETE FROM coffer_changes RETURNING seq) UPDATE coffer_changes_trim "
                    "SET trimmed = GREATEST(trimmed, (SELECT max(seq) FROM d))"),
          "the feed trimmed under B");
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up over a gap");
    cf_store_stats(b, &s0);
    CHECK_INT(s0.cache_entries, 0, "B: the whole cache dropped");
    v = look(b, &t.id, &uid, &root, ss.hash);
    CHECK_INT(v.status, CF_USER_ACTIVE, "B: the user is active again");

    /* A feed that cannot be read: the cache is dropped, the status says why. */
    CHECK(sql_ok(c, "ALTER TABLE coffer_changes_trim RENAME TO coffer_changes_trim_x"), "the feed made unreadable");
    cf_store_stats(b, &s0);
    CHECK(s0.cache_entries > 0, "B: has entries");
    CHECK(cf_store_catch_up(b) != CF_OK, "B: catch-up fails");
    cf_store_stats(b, &s0);
    CHECK_INT(s0.cache_entries, 0, "B: and dropped its cache");
    CHECK(sql_ok(c, "ALTER TABLE coffer_changes_trim_x RENAME TO coffer_changes_trim"), "the feed back");
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up works again");

    /* A damaged change row (as from a broken disk) and one naming a keyspace B does not know (a newer
     * version's): each drops B's cache; B goes on past them. */
    CHECK(look(b, &t.id, &uid, &root, ss.hash).status == CF_USER_ACTIVE, "B: the user cached again");
    CHECK(sql_ok(c, "INSERT INTO coffer_changes (at, ops) VALUES (clock_timestamp(), '\\x0000ffffffff')"),
          "a damaged change row");
    CHECK_INT(cf_store_catch_up(b), CF_ECORRUPT, "B: catch-up reports the damage");
    cf_store_stats(b, &s0);
    CHECK_INT(s0.cache_entries, 0, "B: and dropped its cache");
    CHECK(look(b, &t.id, &uid, &root, ss.hash).status == CF_USER_ACTIVE, "B: reads (and caches) again");
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: the next catch-up is past the damaged row");
    cf_store_stats(b, &s0);
    CHECK(s0.cache_entries > 0, "B: and keeps its cache");
    CHECK(sql_ok(c, "INSERT INTO coffer_changes (at, ops) VALUES (clock_timestamp(), '\\x00ff00000000')"),
          "a change to keyspace 255");
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up over an unknown keyspace");
    cf_store_stats(b, &s0);
    CHECK_INT(s0.cache_entries, 0, "B: taken as a gap: cache dropped");

    /* The trim rule: the writer's first write after its open trims rows older than 10 minutes. */
    CHECK(sql_ok(c, "UPDATE coffer_changes SET at = at - interval '11 minutes'"), "every change made old");
    cf_store_close(a);
    a = NULL;
    CHECK_INT(cf_store_open(dir, &g_master, &a), CF_OK, "A: reopened");
    if (a != NULL) {
        CHECK_INT(cf_user_get(a, &t.id, &uid, &u), CF_OK, "A: read to modify");
        CHECK_INT(cf_user_put(a, &u), CF_OK, "A: a write (which trims)");
        cf_user_clear(&u);
        PGresult *r = PQexec(c, "SELECT count(*), (SELECT trimmed FROM coffer_changes_trim) > 0 FROM coffer_changes");
        CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "1") == 0 &&
                  strcmp(PQgetvalue(r, 0, 1), "t") == 0,
              "only the new change is left, and the trim mark moved (%s rows)",
              PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "?");
        PQclear(r);
        CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up after the trim");
        cf_store_stats(b, &s0);
        CHECK_INT(s0.cache_entries, 0, "B: was behind the trim: dropped its cache");
    }

    /* Measured costs (diagnostics only). */
    const int N = 300;
    double t0 = now_us();
    for (int i = 0; i < N; i++)
        (void)cf_store_catch_up(b);
    printf("# catch-up with no changes (a reading node): %.0f us per call (%d calls)\n", (now_us() - t0) / N, N);
    if (a != NULL) {
        t0 = now_us();
        for (int i = 0; i < N; i++)
            (void)cf_store_catch_up(a);
        printf("# catch-up on a writer with no changes: %.0f us per call\n", (now_us() - t0) / N);
    }
    t0 = now_us();
    for (int i = 0; i < N; i++) {
        char *val = NULL;
        size_t vl = 0;
        if (cf_db_get(b, CF_CF_DEFAULT, "format", 6, &val, &vl) == CF_OK)
            cf_eng_free(val);
    }
    printf("# for scale, one point read of the engine: %.0f us per call\n", (now_us() - t0) / N);
    if (a != NULL) {
        t0 = now_us();
        int failed = 0;
        for (int i = 0; i < N; i++) {
            struct cf_batch *bt = cf_batch_new(a->eng);
            cf_batch_put(bt, CF_CF_DEFAULT, "bench", 5, "v", 1);
            failed += cf_db_write_raw(a, bt, false) != CF_OK;
            cf_batch_free(bt);
        }
        CHECK_INT(failed, 0, "every timed batch written");
        printf("# a one-put batch through the engine (with its change row): %.0f us per batch\n",
               (now_us() - t0) / N);
    }
    /* The feed's own share: the same one-round-trip transaction with and without the change row,
     * alternated (the machine is shared: alternating spreads its noise over both). */
    static const char *const txn[2] = {
        "BEGIN; SET LOCAL synchronous_commit = off; INSERT INTO coffer_default VALUES ('bench2', 'v') ON "
        "CONFLICT (k) DO UPDATE SET v = EXCLUDED.v; COMMIT",
        "BEGIN; SET LOCAL synchronous_commit = off; INSERT INTO coffer_default VALUES ('bench2', 'v') ON "
        "CONFLICT (k) DO UPDATE SET v = EXCLUDED.v; SELECT pg_advisory_xact_lock(74145738417523); INSERT INTO "
        "coffer_changes (at, ops) VALUES (clock_timestamp(), '\\x000000000006626574636832'); COMMIT"};
    double took[2] = {0, 0};
    for (int i = 0; i < 2 * N; i++) {
        t0 = now_us();
        sql_ok(c, txn[i % 2]);
        took[i % 2] += now_us() - t0;
    }
    double plain = took[0] / N, fed = took[1] / N;
    printf("# one-put transaction: %.0f us plain, %.0f us with the change row (+%.0f us)\n", plain, fed, fed - plain);
    PQfinish(c);
    cf_tenant_clear(&t);
    cf_store_close(b);
    cf_store_close(a);
}

/* RocksDB has no feed: catch-up is a no-op that leaves the cache alone. */
static void test_rocks(const char *dir)
{
    struct cf_store *s = NULL;
    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "rocksdb: store created");
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "rocksdb: opened");
    if (s == NULL)
        return;
    struct cf_tenant t;
    struct cf_user u = {0};
    CHECK_INT(cf_tenant_create(s, "acme", &t), CF_OK, "rocksdb: tenant");
    u.tenant = t.id;
    u.username = cf_xstrdup("bob");
    u.pwhash = cf_xstrdup("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g");
    CHECK_INT(cf_user_create(s, &u), CF_OK, "rocksdb: user");
    struct cf_id uid = u.id;
    cf_user_clear(&u);
    CHECK_INT(cf_user_get(s, &t.id, &uid, &u), CF_OK, "rocksdb: read (cached)");
    cf_user_clear(&u);
    struct cf_store_stats a, b;
    cf_store_stats(s, &a);
    CHECK_INT(cf_store_catch_up(s), CF_OK, "rocksdb: catch-up");
    CHECK(atomic_load(&s->feed_applied) == 0, "rocksdb: no feed, no position");
    CHECK_INT(cf_store_catch_up(s), CF_OK, "rocksdb: catch-up again");
    CHECK_INT(cf_user_get(s, &t.id, &uid, &u), CF_OK, "rocksdb: read");
    cf_user_clear(&u);
    cf_store_stats(s, &b);
    CHECK(b.cache_entries == a.cache_entries && b.cache_hits == a.cache_hits + 1 &&
              b.cache_invalidations == a.cache_invalidations,
          "rocksdb: the cache untouched (still a hit)");
    uint64_t seq = 1;
    char *err = NULL;
    CHECK_INT(cf_eng_change_seq(s->eng, &seq, &err), CF_ENG_NOTFOUND, "rocksdb: cf_eng_change_seq: no feed");
    CHECK(seq == 0 && err == NULL, "rocksdb: seq 0, no message");
    cf_tenant_clear(&t);
    cf_store_close(s);
}

int main(void)
{
    char base[] = "/tmp/coffer-unit-feed-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    cf_key_random(&g_master);
    char *rocks = cf_xasprintf("%s/rocks", base);
    test_rocks(rocks);
    const char *conninfo = getenv("COFFER_PG_CONNINFO");
    if (conninfo == NULL) {
        printf("# SKIP PostgreSQL: COFFER_PG_CONNINFO is not set (meson runs this test through tests/lib/pgtmp.sh)\n");
    } else {
        char *dir = cf_xasprintf("%s/pg", base);
        cf_store_use_postgres(dir, conninfo, NULL, 10000);
        test_two_nodes(dir, conninfo);
        cf_store_use_postgres(NULL, NULL, NULL, 0);
        free(dir);
    }
    free(rocks);
    cf_key_wipe(&g_master);
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
