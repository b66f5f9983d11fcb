/*
 * test_multiwriter.c: several writers on one PostgreSQL store (cluster mode, docs/CLUSTER.md
 * "Stateless nodes"; engine.h cf_eng_lock, db.c cf_ns_lock, audit.c and journal.c under their cluster
 * locks). Two store handles opened read-write on one throw-away PostgreSQL (meson runs this through
 * tests/lib/pgtmp.sh, which exports COFFER_PG_CONNINFO), as two nodes:
 *   - threads on both write at once (folders, provenance events): the provenance chain verifies and
 *     the metadata journal's check finds nothing (one chain each, not a fork per node);
 *   - creates of one name in one folder racing through both: exactly one succeeds;
 *   - a rename through one is seen by a reader under the other's namespace lock (its cache caught up);
 *   - a user update through one does not write back the other's cached copy, and a session ended
 *     through one is not brought back by a use recorded through the other (user and session locks);
 *   - a write under a cluster lock whose PostgreSQL session died is refused (and another node can
 *     take the lock meanwhile); a lock that cannot be taken (held elsewhere past lock_timeout)
 *     makes the write under it fail with CF_EUNAVAIL, and nothing is written;
 *   - the database stopped and started under both: 503-style CF_EUNAVAIL meanwhile, then reads and
 *     writes work again on both without a reopen, and the chain and the journal still verify;
 *   - a node idle while the others write past the journal entries kept restarts (its anchor records
 *     the newest head at its close).
 * Last, the cost of a cluster lock round trip (diagnostics, nothing asserted on time).
 */
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

#define NS_LOCK_SQL "pg_advisory_lock(1131374182, 1)" /* pg.c CLUSTER_LOCK_CLASS, CF_ENG_LOCK_NS */

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

/* One SQL statement on the test's own connection; its first value (or "" / NULL on error). */
static char *sql1(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    char *v = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        v = cf_xstrdup(PQgetvalue(r, 0, 0));
    else if (PQresultStatus(r) == PGRES_COMMAND_OK)
        v = cf_xstrdup("");
    else
        printf("# %s: %s", q, PQerrorMessage(c));
    PQclear(r);
    return v;
}

/* tests/lib/pgtmp.sh stop|start on the database of this run (COFFER_PGTMP, COFFER_PG_DIR). */
static int pgtmp(const char *verb)
{
    const char *tool = getenv("COFFER_PGTMP"), *dir = getenv("COFFER_PG_DIR");
    if (tool == NULL || dir == NULL)
        return -1;
    pid_t p = fork();
    if (p == 0) {
        execl(tool, tool, verb, dir, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (p < 0 || waitpid(p, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct world {
    struct cf_store *a, *b; /* two nodes */
    struct cf_id tenant, root, owner;
};

static void on_finding(void *ctx, const struct cf_journal_finding *f)
{
    int *n = ctx;
    if ((*n)++ < 5)
        printf("# journal finding: %s %s: %s%s%s\n", f->kind != NULL ? f->kind : "journal", f->cf != NULL ? f->cf : "",
               f->what, f->detail != NULL ? ": " : "", f->detail != NULL ? f->detail : "");
}

static const char *g_dir;

/* The provenance chain of the tenant through s, and the metadata journal as `coffer fsck` checks it (a
 * read-only open of its own, while nobody writes): both verify. */
static void check_chains(struct cf_store *s, const struct world *w, uint64_t want_events, const char *when)
{
    uint64_t count = 0, bad = 0;
    const char *why = NULL;
    CHECK_INT(cf_audit_verify(s, &w->tenant, &count, &bad, &why), CF_OK,
              "%s: the provenance chain verifies (%s at %llu)", when, why != NULL ? why : "-", (unsigned long long)bad);
    if (want_events != 0)
        CHECK(count == want_events, "%s: with every event of both nodes (%llu, want %llu)", when,
              (unsigned long long)count, (unsigned long long)want_events);
    struct cf_journal_report rep = {0};
    int shown = 0;
    struct cf_store *ro = NULL;
    CHECK_INT(cf_store_open_readonly(g_dir, &g_master, &ro), CF_OK, "%s: a read-only open for the check", when);
    if (ro == NULL)
        return;
    CHECK_INT(cf_journal_check(ro, NULL, on_finding, &shown, &rep), CF_OK, "%s: the journal check runs", when);
    cf_store_close(ro);
    CHECK(rep.present && rep.findings == 0 && rep.entries > 0, "%s: the journal: one chain, no findings (%llu "
          "entries, %llu findings)", when, (unsigned long long)rep.entries, (unsigned long long)rep.findings);
}

/* ---- concurrent writers ------------------------------------------------------------------------ */

enum { WRITERS_PER_NODE = 3, WRITES = 12 };

struct writer {
    struct world *w;
    struct cf_store *s;
    int id;
    int failed;
};

static void *writer_main(void *arg)
{
    struct writer *wr = arg;
    for (int i = 0; i < WRITES; i++) {
        char name[32], json[64];
        struct cf_node n;
        snprintf(name, sizeof name, "w%d-%d", wr->id, i);
        if (cf_folder_create(wr->s, &wr->w->tenant, &wr->w->root, name, strlen(name), &wr->w->owner, &n) == CF_OK)
            cf_node_clear(&n);
        else
            wr->failed++;
        snprintf(json, sizeof json, "{\"writer\":%d,\"i\":%d}", wr->id, i);
        struct cf_audit_rec rec = {.tenant = wr->w->tenant, .json = json, .len = strlen(json), .at = cf_now_ms()};
        uint64_t seq;
        if (cf_audit_append(wr->s, &rec, 1, &seq) != CF_OK)
            wr->failed++;
    }
    return NULL;
}

static size_t count_children(struct cf_store *s, const struct world *w)
{
    size_t total = 0;
    uint8_t cursor[CF_CURSOR_LEN];
    bool more = true, first = true;
    while (more) {
        struct cf_node *items = NULL;
        size_t n = 0;
        uint8_t next[CF_CURSOR_LEN];
        if (cf_children_list(s, &w->tenant, &w->root, first ? NULL : cursor, 500, &items, &n, next, &more) != CF_OK)
            return SIZE_MAX;
        for (size_t i = 0; i < n; i++)
            cf_node_clear(&items[i]);
        free(items);
        total += n;
        memcpy(cursor, next, sizeof cursor);
        first = false;
    }
    return total;
}

static void test_concurrent(struct world *w)
{
    uint64_t before = 0;
    CHECK_INT(cf_audit_head_seq(w->a, &w->tenant, &before), CF_OK, "the chain's length before");
    size_t children = count_children(w->a, w);
    pthread_t th[2 * WRITERS_PER_NODE];
    struct writer wr[2 * WRITERS_PER_NODE];
    for (int i = 0; i < 2 * WRITERS_PER_NODE; i++) {
        wr[i] = (struct writer){.w = w, .s = i % 2 == 0 ? w->a : w->b, .id = i};
        pthread_create(&th[i], NULL, writer_main, &wr[i]);
    }
    int failed = 0;
    for (int i = 0; i < 2 * WRITERS_PER_NODE; i++) {
        pthread_join(th[i], NULL);
        failed += wr[i].failed;
    }
    CHECK_INT(failed, 0, "%d threads on two nodes: every folder and event written", 2 * WRITERS_PER_NODE);
    CHECK(count_children(w->b, w) == children + 2 * WRITERS_PER_NODE * WRITES, "every folder listed (node B)");
    check_chains(w->a, w, before + 2 * WRITERS_PER_NODE * WRITES, "interleaved writes, read through A");
    check_chains(w->b, w, before + 2 * WRITERS_PER_NODE * WRITES, "read through B");
}

/* ---- one name, two nodes ----------------------------------------------------------------------- */

enum { RACERS = 4, ROUNDS = 6 };

struct racer {
    struct world *w;
    struct cf_store *s;
    pthread_barrier_t *bar;
    int round;
    enum cf_status st;
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    char name[32];
    struct cf_node n;
    snprintf(name, sizeof name, "race-%d", r->round);
    pthread_barrier_wait(r->bar);
    r->st = cf_folder_create(r->s, &r->w->tenant, &r->w->root, name, strlen(name), &r->w->owner, &n);
    if (r->st == CF_OK)
        cf_node_clear(&n);
    return NULL;
}

static void test_same_name(struct world *w)
{
    int exactly_one = 0, only_eexist = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, RACERS);
        pthread_t th[RACERS];
        struct racer r[RACERS];
        for (int i = 0; i < RACERS; i++) {
            r[i] = (struct racer){.w = w, .s = i % 2 == 0 ? w->a : w->b, .bar = &bar, .round = round};
            pthread_create(&th[i], NULL, racer_main, &r[i]);
        }
        int ok = 0, exist = 0;
        for (int i = 0; i < RACERS; i++) {
            pthread_join(th[i], NULL);
            ok += r[i].st == CF_OK;
            exist += r[i].st == CF_EEXIST;
        }
        pthread_barrier_destroy(&bar);
        exactly_one += ok == 1;
        only_eexist += ok + exist == RACERS;
    }
    CHECK_INT(exactly_one, ROUNDS, "one name created at once through both nodes: exactly one succeeds (every round)");
    CHECK_INT(only_eexist, ROUNDS, "and the others answer CF_EEXIST");
    for (int round = 0; round < ROUNDS; round++) {
        char name[32];
        snprintf(name, sizeof name, "race-%d", round);
        struct cf_node *items = NULL;
        size_t n = 0, same = 0;
        uint8_t next[CF_CURSOR_LEN];
        bool more = true;
        if (cf_children_list(w->a, &w->tenant, &w->root, NULL, 1000, &items, &n, next, &more) == CF_OK) {
            for (size_t i = 0; i < n; i++) {
                same += strcmp(items[i].name, name) == 0;
                cf_node_clear(&items[i]);
            }
            free(items);
        }
        if (same != 1)
            CHECK(0, "%s is listed %zu times", name, same);
    }
}

/* ---- a rename seen under the other's lock ------------------------------------------------------ */

static void test_rename_seen(struct world *w)
{
    struct cf_node x, seen;
    CHECK_INT(cf_folder_create(w->a, &w->tenant, &w->root, "before-name", 11, &w->owner, &x), CF_OK, "A: a folder");
    CHECK_INT(cf_node_get(w->b, &w->tenant, &x.id, &seen), CF_OK, "B: reads it (and caches it)");
    CHECK(seen.name != NULL && strcmp(seen.name, "before-name") == 0, "B: its name");
    cf_node_clear(&seen);
    struct cf_node moved;
    CHECK_INT(cf_node_move(w->a, &w->tenant, &x.id, NULL, "after-name", 10, &moved), CF_OK, "A: renames it");
    cf_node_clear(&moved);
    cf_ns_lock(w->b);
    enum cf_status st = cf_node_get(w->b, &w->tenant, &x.id, &seen);
    cf_ns_unlock(w->b);
    CHECK(st == CF_OK && seen.name != NULL && strcmp(seen.name, "after-name") == 0,
          "B under its namespace lock: the new name (%s)", st == CF_OK ? seen.name : cf_status_name(st));
    if (st == CF_OK)
        cf_node_clear(&seen);
    struct cf_node dup;
    CHECK_INT(cf_folder_create(w->b, &w->tenant, &w->root, "after-name", 10, &w->owner, &dup), CF_EEXIST,
              "B: the new name is taken");
    CHECK_INT(cf_folder_create(w->b, &w->tenant, &w->root, "before-name", 11, &w->owner, &dup), CF_OK,
              "B: the old one is free");
    cf_node_clear(&dup);
    cf_node_clear(&x);
}

/* ---- read-modify-write of users and sessions ---------------------------------------------------- */

static enum cf_status set_frozen(struct cf_user *u, void *ctx)
{
    (void)ctx;
    u->status = CF_USER_FROZEN;
    return CF_OK;
}

static enum cf_status set_name(struct cf_user *u, void *ctx)
{
    free(u->display_name);
    u->display_name = cf_xstrdup(ctx);
    return CF_OK;
}

static void test_read_modify_write(struct world *w)
{
    /* A user record: B has it cached; A freezes the user; B then changes the display name. B's
     * update must start from the frozen record, not from its cached copy (which would unfreeze). */
    struct cf_user u;
    CHECK_INT(cf_user_get(w->b, &w->tenant, &w->owner, &u), CF_OK, "B: reads the user (and caches it)");
    CHECK(u.status == CF_USER_ACTIVE, "B: active");
    cf_user_clear(&u);
    CHECK_INT(cf_user_update(w->a, &w->tenant, &w->owner, set_frozen, NULL, NULL), CF_OK, "A: freezes the user");
    CHECK_INT(cf_user_update(w->b, &w->tenant, &w->owner, set_name, "Ann B.", NULL), CF_OK,
              "B: updates the display name");
    CHECK_INT(cf_user_get(w->a, &w->tenant, &w->owner, &u), CF_OK, "A: reads the user");
    CHECK(u.status == CF_USER_FROZEN && u.display_name != NULL && strcmp(u.display_name, "Ann B.") == 0,
          "both updates are there: B's read-modify-write did not write back its stale copy (status %d)",
          (int)u.status);
    cf_user_clear(&u);
    CHECK_INT(cf_user_update(w->a, &w->tenant, &w->owner, set_name, "Ann", NULL), CF_OK, "A: the name back");

    /* A session: B has it cached; A ends it; B records a use of it. The use must not bring it back. */
    struct cf_session ss = {.tenant = w->tenant, .user = w->owner, .created_at = 1, .expires_at = UINT64_MAX / 2};
    cf_random(ss.hash, sizeof ss.hash);
    cf_id_new(&ss.id);
    CHECK_INT(cf_session_put(w->a, &ss), CF_OK, "A: a session");
    struct cf_session got;
    CHECK_INT(cf_session_get(w->b, ss.hash, &got), CF_OK, "B: reads it (and caches it)");
    cf_session_clear(&got);
    CHECK_INT(cf_session_delete(w->a, ss.hash), CF_OK, "A: ends it (a logout, a revocation)");
    enum cf_status st = cf_session_touch(w->b, ss.hash, cf_now_ms(), "192.0.2.7");
    CHECK(st == CF_OK || st == CF_ENOTFOUND, "B: records a use of it (%s)", cf_status_name(st));
    CHECK_INT(cf_session_get(w->a, ss.hash, &got), CF_ENOTFOUND, "A: the session stays ended (not brought back)");
    cf_session_clear(&got);
    CHECK_INT(cf_session_get(w->b, ss.hash, &got), CF_ENOTFOUND, "B: likewise");
    cf_session_clear(&got);
}

/* ---- the guards -------------------------------------------------------------------------------- */

/* A raw batch of one key: no journal, no lock of its own (a keyspace the journal does not cover, and
 * keys no tenant's provenance scan reads). */
static enum cf_status raw_put(struct cf_store *s, const char *k)
{
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_put(b, CF_CF_AUDIT_INDEX, k, strlen(k), "v", 1);
    enum cf_status st = cf_db_write_raw(s, b, true);
    cf_batch_free(b);
    return st;
}

static bool present(struct cf_store *s, const char *k)
{
    char *v = NULL;
    size_t vl = 0;
    enum cf_status st = cf_db_get(s, strcmp(k, "guard-j") == 0 ? CF_CF_DEFAULT : CF_CF_AUDIT_INDEX, k, strlen(k), &v,
                                  &vl);
    cf_eng_free(v);
    return st == CF_OK;
}

static void test_lost_lock(struct world *w, PGconn *c)
{
    cf_ns_lock(w->a);
    char *pid = sql1(c, "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 1131374182 AND objid = 1 "
                        "AND objsubid = 2 AND granted");
    CHECK(pid != NULL && pid[0] != '\0', "A holds the namespace lock in PostgreSQL (backend %s)", pid ? pid : "?");
    char q[128];
    snprintf(q, sizeof q, "SELECT pg_terminate_backend(%s)", pid != NULL && pid[0] != '\0' ? pid : "0");
    char *t = sql1(c, q);
    CHECK(t != NULL && strcmp(t, "t") == 0, "its session is ended (a lost connection, a database failover)");
    free(t);
    /* Another node may take the lock now, and does, at once. */
    double t0 = now_us();
    cf_ns_lock(w->b);
    CHECK(raw_put(w->b, "guard-b") == CF_OK, "B takes the namespace lock meanwhile and writes under it");
    cf_ns_unlock(w->b);
    printf("# B took the lock in %.0f us\n", now_us() - t0);
    /* A still believes it holds the lock: what it writes under it must not commit. */
    CHECK_INT(raw_put(w->a, "guard-a"), CF_EUNAVAIL, "A: a raw write under the lost lock is refused (unavailable)");
    CHECK_INT(cf_db_put(w->a, CF_CF_DEFAULT, "guard-j", 7, "v", 1, true), CF_EUNAVAIL,
              "A: a journaled write too");
    cf_ns_unlock(w->a);
    CHECK(!present(w->b, "guard-a") && !present(w->b, "guard-j") && present(w->b, "guard-b"),
          "neither of A's is in the store; B's is");
    CHECK(!atomic_load(&w->a->write_failed), "A is not stopped (no fail-stop)");
    CHECK(raw_put(w->a, "guard-after") == CF_OK && present(w->b, "guard-after"),
          "A writes again once it let go of the lost lock");
    free(pid);
}

static void test_lock_not_taken(struct world *w, PGconn *c)
{
    char *r = sql1(c, "SELECT " NS_LOCK_SQL);
    CHECK(r != NULL, "another session holds the namespace lock");
    free(r);
    struct cf_node n;
    double t0 = now_us();
    CHECK_INT(cf_folder_create(w->b, &w->tenant, &w->root, "while-held", 10, &w->owner, &n), CF_EUNAVAIL,
              "B: a create under a namespace lock it could not take (lock_timeout) fails: unavailable");
    printf("# the refusal came after %.1f s (store.postgres.timeout)\n", (now_us() - t0) / 1e6);
    free(sql1(c, "SELECT pg_advisory_unlock(1131374182, 1)"));
    CHECK_INT(cf_node_get(w->a, &w->tenant, &w->root, &n), CF_OK, "the root");
    cf_node_clear(&n);
    struct cf_node *items = NULL;
    size_t cnt = 0, found = 0;
    uint8_t next[CF_CURSOR_LEN];
    bool more;
    if (cf_children_list(w->a, &w->tenant, &w->root, NULL, 1000, &items, &cnt, next, &more) == CF_OK) {
        for (size_t i = 0; i < cnt; i++) {
            found += strcmp(items[i].name, "while-held") == 0;
            cf_node_clear(&items[i]);
        }
        free(items);
    }
    CHECK(found == 0, "nothing of it was written");
    CHECK_INT(cf_folder_create(w->b, &w->tenant, &w->root, "while-held", 10, &w->owner, &n), CF_OK,
              "B: once the lock is free, the same create succeeds");
    cf_node_clear(&n);
}

/* ---- the database restarted -------------------------------------------------------------------- */

static void test_restart(struct world *w)
{
    if (pgtmp("stop") != 0) {
        CHECK(0, "stop the database (COFFER_PGTMP, COFFER_PG_DIR from tests/lib/pgtmp.sh)");
        return;
    }
    struct cf_node n;
    CHECK_INT(cf_folder_create(w->a, &w->tenant, &w->root, "while-down", 10, &w->owner, &n), CF_EUNAVAIL,
              "database down: a create answers unavailable (503)");
    char json[] = "{\"down\":true}";
    struct cf_audit_rec rec = {.tenant = w->tenant, .json = json, .len = sizeof json - 1, .at = cf_now_ms()};
    uint64_t seq;
    CHECK_INT(cf_audit_append(w->b, &rec, 1, &seq), CF_EUNAVAIL, "and a provenance event too");
    CHECK_INT(pgtmp("start"), 0, "start the database again");
    enum cf_status sa = cf_folder_create(w->a, &w->tenant, &w->root, "after-restart-a", 15, &w->owner, &n);
    if (sa == CF_OK)
        cf_node_clear(&n);
    enum cf_status sb = cf_folder_create(w->b, &w->tenant, &w->root, "after-restart-b", 15, &w->owner, &n);
    if (sb == CF_OK)
        cf_node_clear(&n);
    CHECK(sa == CF_OK && sb == CF_OK, "both nodes write again without a reopen (%s, %s)", cf_status_name(sa),
          cf_status_name(sb));
    CHECK_INT(cf_audit_append(w->a, &rec, 1, &seq), CF_OK, "and append events");
    CHECK(!atomic_load(&w->a->write_failed) && !atomic_load(&w->b->write_failed), "neither stopped");
    check_chains(w->b, w, 0, "after the restart");
}

/* ---- an idle node's anchor ---------------------------------------------------------------------- */

/* Node C starts with a journal anchor and stays idle while B writes enough for the journal to trim
 * past the head C saw at its start (keep lowered on B). At close C records the newest head, so its
 * restart is not refused as "older than the oldest entry kept". */
static void test_idle_anchor(struct world *w, const char *base)
{
    char *path = cf_xasprintf("%s/anchor-c", base), *err = NULL;
    struct cf_anchor *an = NULL;
    struct cf_store *c = NULL;
    CHECK_INT(cf_anchor_open(path, true, &an, &err), CF_OK, "node C's journal anchor");
    CHECK_INT(cf_store_open_anchored(g_dir, &g_master, an, CF_ANCHOR_CHECK, &c), CF_OK,
              "node C: opened with its anchor (idle from here)");
    if (c == NULL) {
        free(path);
        return;
    }
    uint64_t keep = w->b->journal.keep, step = w->b->journal.step, first = 0;
    w->b->journal.keep = 4;
    w->b->journal.step = 2;
    int failed = 0;
    for (int i = 0; i < 12; i++) {
        char k[16];
        snprintf(k, sizeof k, "busy-%d", i);
        failed += cf_db_put(w->b, CF_CF_DEFAULT, k, strlen(k), "v", 1, true) != CF_OK;
    }
    first = w->b->journal.head.first;
    w->b->journal.keep = keep;
    w->b->journal.step = step;
    CHECK(failed == 0 && first > c->journal.head.seq,
          "B writes meanwhile, and the journal keeps only entries after the head C saw (from %llu; C saw %llu)",
          (unsigned long long)first, (unsigned long long)c->journal.head.seq);
    cf_store_close(c);
    c = NULL;
    an = NULL;
    CHECK_INT(cf_anchor_open(path, true, &an, &err), CF_OK, "C's anchor again");
    CHECK_INT(cf_store_open_anchored(g_dir, &g_master, an, CF_ANCHOR_CHECK, &c), CF_OK,
              "C restarts: its anchor names the newest head at its close, one the journal still keeps");
    cf_store_close(c);
    free(err);
    free(path);
}

/* ---- costs ------------------------------------------------------------------------------------- */

static void measure(struct world *w)
{
    enum { N = 200 };
    char *err = NULL;
    double t0 = now_us();
    int failed = 0;
    for (int i = 0; i < N; i++) {
        failed += cf_eng_lock(w->a->eng, CF_ENG_LOCK_NS, &err) != CF_ENG_OK;
        cf_eng_free(err);
        err = NULL;
        cf_eng_unlock(w->a->eng, CF_ENG_LOCK_NS);
    }
    double lock_us = (now_us() - t0) / N;
    CHECK_INT(failed, 0, "every timed lock taken");
    t0 = now_us();
    for (int i = 0; i < N; i++) {
        cf_ns_lock(w->a);
        cf_ns_unlock(w->a);
    }
    double ns_us = (now_us() - t0) / N;
    t0 = now_us();
    for (int i = 0; i < N; i++) {
        char *v = NULL;
        size_t vl = 0;
        if (cf_db_get(w->a, CF_CF_DEFAULT, "format", 6, &v, &vl) == CF_OK)
            cf_eng_free(v);
    }
    double get_us = (now_us() - t0) / N;
    t0 = now_us();
    for (int i = 0; i < N / 4; i++) {
        char k[16];
        snprintf(k, sizeof k, "cost-%d", i);
        failed += cf_db_put(w->a, CF_CF_DEFAULT, k, strlen(k), "v", 1, false) != CF_OK;
    }
    double put_us = (now_us() - t0) / (N / 4);
    CHECK_INT(failed, 0, "every timed write done");
    printf("# a cluster lock + unlock (two round trips): %.0f us; cf_ns_lock + unlock (with its catch-up): %.0f us;\n"
           "# for scale: a point read %.0f us; a journaled put (journal lock, head read, write, unlock) %.0f us\n",
           lock_us, ns_us, get_us, put_us);
}

int main(void)
{
    const char *conninfo = getenv("COFFER_PG_CONNINFO");
    if (conninfo == NULL) {
        printf("1..0 # SKIP COFFER_PG_CONNINFO is not set (meson runs this test through tests/lib/pgtmp.sh)\n");
        return 0;
    }
    char base[] = "/tmp/coffer-unit-multiwriter-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    cf_key_random(&g_master);
    char *dir = cf_xasprintf("%s/pg", base);
    /* A short timeout: a lock held elsewhere fails after 3 s, not 30. */
    cf_store_use_postgres(dir, conninfo, NULL, 3000);
    g_dir = dir;
    struct world w = {0};
    PGconn *c = PQconnectdb(conninfo);
    CHECK(PQstatus(c) == CONNECTION_OK, "the test's own connection");
    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "store created in PostgreSQL");
    CHECK_INT(cf_store_open(dir, &g_master, &w.a), CF_OK, "node A: opened read-write");
    CHECK_INT(cf_store_open(dir, &g_master, &w.b), CF_OK, "node B: opened read-write on the same database");
    if (w.a != NULL && w.b != NULL) {
        struct cf_tenant t;
        struct cf_user u = {0};
        CHECK_INT(cf_tenant_create(w.a, "acme", &t), CF_OK, "A: a tenant");
        w.tenant = t.id;
        w.root = t.root;
        u.tenant = t.id;
        u.username = cf_xstrdup("ann");
        u.pwhash = cf_xstrdup("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g");
        CHECK_INT(cf_user_create(w.b, &u), CF_OK, "B: a user of it");
        w.owner = u.id;
        cf_user_clear(&u);
        cf_tenant_clear(&t);
        test_concurrent(&w);
        test_same_name(&w);
        test_rename_seen(&w);
        test_read_modify_write(&w);
        test_lost_lock(&w, c);
        test_lock_not_taken(&w, c);
        test_restart(&w);
        test_idle_anchor(&w, base);
        measure(&w);
        check_chains(w.a, &w, 0, "at the end");
    }
    PQfinish(c);
    cf_store_close(w.a);
    cf_store_close(w.b);
    cf_store_use_postgres(NULL, NULL, NULL, 0);
    free(dir);
    cf_key_wipe(&g_master);
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
