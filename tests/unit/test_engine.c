/*
 * test_engine.c: the storage engine contract (storage/engine/engine.h, docs/DESIGN.md "The storage
 * engine"), one suite run against every engine: RocksDB in a temporary directory, and PostgreSQL in
 * the throw-away server tests/lib/pgtmp.sh starts (meson runs this test through `pgtmp.sh run`, which
 * exports COFFER_PG_CONNINFO). Then what only PostgreSQL can show: a failed batch applies nothing
 * (a row lock held by another session makes its second statement time out), several writers per database,
 * timeouts instead of hangs, and the database stopped and restarted under an open engine (reads and
 * writes fail as "Unavailable" while it is away and work again once it is back: no fail-stop).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/engine.h"
#include "tap.h"
#ifdef CF_TEST_PG
#include <libpq-fe.h>
#endif

static const char *const names[] = {"default", "small", "other", "large"};
enum { KS_DEFAULT, KS_SMALL, KS_OTHER, KS_LARGE, NKS };
static const struct cf_eng_spec spec = {.names = names, .n = NKS, .required = NKS, .large = KS_LARGE};

/* How a suite opens its engine (again). */
struct target {
    const char *name;
    const char *dir;                     /* RocksDB */
    const struct cf_eng_pg_target *pg;   /* PostgreSQL */
};

static int open_eng(const struct target *t, unsigned flags, struct cf_eng **e, char **err)
{
    *err = NULL;
    return t->pg != NULL ? cf_eng_open_pg(t->pg, &spec, flags, e, err) : cf_eng_open(t->dir, &spec, flags, e, err);
}

static bool put1(struct cf_eng *e, unsigned ks, const void *k, size_t kl, const void *v, size_t vl, bool sync)
{
    struct cf_batch *b = cf_batch_new(e);
    cf_batch_put(b, ks, k, kl, v, vl);
    char *err = NULL;
    int r = cf_eng_write(e, b, sync, &err);
    if (r != CF_ENG_OK)
        tap_diag("write: ", err);
    cf_eng_free(err);
    cf_batch_free(b);
    return r == CF_ENG_OK;
}

/* The value of k as a NUL-terminated copy, or NULL if absent or on error. */
static char *get_str(struct cf_eng *e, unsigned ks, const char *k)
{
    char *v = NULL, *err = NULL;
    size_t vl = 0;
    int r = cf_eng_get(e, ks, k, strlen(k), &v, &vl, &err);
    cf_eng_free(err);
    if (r != CF_ENG_OK)
        return NULL;
    char *s = malloc(vl + 1);
    memcpy(s, v, vl);
    s[vl] = 0;
    cf_eng_free(v);
    return s;
}

static bool has_value(struct cf_eng *e, unsigned ks, const char *k, const char *want)
{
    char *v = get_str(e, ks, k);
    bool ok = want == NULL ? v == NULL : v != NULL && strcmp(v, want) == 0;
    free(v);
    return ok;
}

struct view_ctx {
    int calls;
    size_t len;
    char first;
};

static void view_fn(void *ctx, const char *val, size_t vlen)
{
    struct view_ctx *c = ctx;
    c->calls++;
    c->len = vlen;
    c->first = vlen > 0 ? val[0] : 0;
}

/* ---- batches ------------------------------------------------------------------------------- */

struct listing {
    int n;
    char text[512];
};

static int list_op(void *ctx, enum cf_batch_op op, unsigned ks, const uint8_t *k, size_t kl, const uint8_t *v,
                   size_t vl)
{
    struct listing *l = ctx;
    size_t used = strlen(l->text);
    snprintf(l->text + used, sizeof l->text - used, "%s%c%u:%.*s%s%.*s", l->n ? " " : "",
             op == CF_BATCH_PUT ? 'P' : op == CF_BATCH_DELETE ? 'D' : 'R', ks, (int)kl, (const char *)k,
             v != NULL ? "=" : "", v != NULL ? (int)vl : 0, v != NULL ? (const char *)v : "");
    l->n++;
    return 0;
}

static void test_points_and_batches(const struct target *t, struct cf_eng *e)
{
    char *err = NULL;
    char *v = NULL;
    size_t vl = 0;
    CHECK_INT(cf_eng_get(e, KS_SMALL, "absent", 6, &v, &vl, &err), CF_ENG_NOTFOUND, "%s: get of an absent key",
              t->name);
    struct view_ctx vc = {0, 0, 0};
    CHECK_INT(cf_eng_get_view(e, KS_SMALL, "absent", 6, view_fn, &vc, &err), CF_ENG_NOTFOUND,
              "%s: view of an absent key", t->name);
    CHECK_INT(vc.calls, 0, "%s: fn not called for an absent key", t->name);
    CHECK(put1(e, KS_SMALL, "a", 1, "one", 3, true), "%s: synced put", t->name);
    CHECK(has_value(e, KS_SMALL, "a", "one"), "%s: get sees it", t->name);
    CHECK(has_value(e, KS_OTHER, "a", NULL), "%s: keyspaces are apart", t->name);
    CHECK(put1(e, KS_SMALL, "a", 1, "uno", 3, false), "%s: unsynced overwrite", t->name);
    CHECK(has_value(e, KS_SMALL, "a", "uno"), "%s: the overwrite is seen at once", t->name);
    CHECK(put1(e, KS_SMALL, "empty", 5, "", 0, false), "%s: an empty value", t->name);
    CHECK_INT(cf_eng_get(e, KS_SMALL, "empty", 5, &v, &vl, &err), CF_ENG_OK, "%s: an empty value is present", t->name);
    CHECK_INT(vl, 0, "%s: and empty", t->name);
    cf_eng_free(v);
    /* Binary keys and values: NULs and 0xff travel as they are. */
    static const char bk[] = {0, 1, (char)0xff, 0}, bv[] = {(char)0xff, 0, 0, 7};
    CHECK(put1(e, KS_SMALL, bk, sizeof bk, bv, sizeof bv, false), "%s: binary put", t->name);
    CHECK(cf_eng_get(e, KS_SMALL, bk, sizeof bk, &v, &vl, &err) == CF_ENG_OK && vl == sizeof bv &&
              memcmp(v, bv, vl) == 0,
          "%s: binary get, byte for byte", t->name);
    cf_eng_free(v);

    /* One batch across keyspaces, applied in order: later operations on a key win. */
    struct cf_batch *b = cf_batch_new(e);
    cf_batch_put(b, KS_SMALL, "x", 1, "1", 1);
    cf_batch_put(b, KS_OTHER, "y", 1, "2", 1);
    cf_batch_delete(b, KS_SMALL, "x", 1);
    cf_batch_delete(b, KS_SMALL, "z", 1);
    cf_batch_put(b, KS_SMALL, "z", 1, "3", 1);
    cf_batch_delete_range(b, KS_SMALL, "a", 1, "b", 1);
    CHECK_INT(cf_batch_count(b), 6, "%s: batch count", t->name);
    struct listing l = {0, ""};
    CHECK_INT(cf_batch_each(b, list_op, &l), CF_ENG_OK, "%s: batch_each", t->name);
    CHECK_STR(l.text, "P1:x=1 P2:y=2 D1:x D1:z P1:z=3 R1:a=b", "%s: batch_each lists every operation in order",
              t->name);
    CHECK_INT(cf_eng_write(e, b, true, &err), CF_ENG_OK, "%s: write the batch", t->name);
    CHECK(has_value(e, KS_SMALL, "x", NULL) && has_value(e, KS_OTHER, "y", "2") && has_value(e, KS_SMALL, "z", "3"),
          "%s: the batch applied in order", t->name);
    CHECK(has_value(e, KS_SMALL, "a", NULL), "%s: the range delete took [a, b)", t->name);
    CHECK(has_value(e, KS_SMALL, "empty", ""), "%s: and nothing past b", t->name);

    /* Save points. */
    cf_batch_clear(b);
    CHECK_INT(cf_batch_count(b), 0, "%s: cleared", t->name);
    CHECK_INT(cf_batch_rollback(b, &err), CF_ENG_ERR, "%s: rollback without a save point fails", t->name);
    cf_eng_free(err);
    err = NULL;
    cf_batch_put(b, KS_SMALL, "s1", 2, "1", 1);
    cf_batch_save(b);
    cf_batch_put(b, KS_SMALL, "s2", 2, "2", 1);
    cf_batch_delete(b, KS_SMALL, "s1", 2);
    CHECK_INT(cf_batch_rollback(b, &err), CF_ENG_OK, "%s: rollback to the save point", t->name);
    CHECK_INT(cf_batch_count(b), 1, "%s: one operation left", t->name);
    CHECK_INT(cf_eng_write(e, b, false, &err), CF_ENG_OK, "%s: write", t->name);
    CHECK(has_value(e, KS_SMALL, "s1", "1") && has_value(e, KS_SMALL, "s2", NULL),
          "%s: only what came before the save point", t->name);
    cf_batch_free(b);
    CHECK_INT(cf_eng_sync(e, &err), CF_ENG_OK, "%s: sync", t->name);
    CHECK_INT(cf_eng_flush(e, &err), CF_ENG_OK, "%s: flush", t->name);
}

/* Range deletes: exact bounds, keys that are prefixes of others (shorter sorts first). */
static void test_range_delete(const struct target *t, struct cf_eng *e)
{
    static const char *const keys[] = {"r", "r\x00", "r\x01", "r1", "r1\xff", "r2", "r\xff", "s"};
    struct cf_batch *b = cf_batch_new(e);
    for (size_t i = 0; i < 8; i++)
        cf_batch_put(b, KS_OTHER, keys[i], i == 1 ? 2 : strlen(keys[i]), "v", 1);
    char *err = NULL;
    CHECK_INT(cf_eng_write(e, b, false, &err), CF_ENG_OK, "%s: range keys written", t->name);
    cf_batch_clear(b);
    cf_batch_delete_range(b, KS_OTHER, "r\x00", 2, "r2", 2);
    CHECK_INT(cf_eng_write(e, b, true, &err), CF_ENG_OK, "%s: delete [r\\0, r2)", t->name);
    cf_batch_free(b);
    int left = 0;
    char got[64] = "";
    struct cf_eiter *it = cf_eiter_open(e, KS_OTHER, "r", 1, "t", 1);
    for (cf_eiter_seek_to_first(it); cf_eiter_valid(it); cf_eiter_next(it)) {
        size_t kl;
        const char *k = cf_eiter_key(it, &kl);
        left++;
        size_t u = strlen(got);
        snprintf(got + u, sizeof got - u, "%s%.*s", left > 1 ? "," : "", (int)kl, k[kl - 1] == (char)0xff ? "X" : k);
    }
    CHECK_INT(cf_eiter_status(it, &err), CF_ENG_OK, "%s: iteration ends cleanly", t->name);
    cf_eiter_close(it);
    CHECK_STR(got, "r,r2,X,s", "%s: [lo, hi) deleted exactly (r, r2, r\\xff and s stay)", t->name);
}

/* ---- iteration ----------------------------------------------------------------------------- */

enum { NKEYS = 700 }; /* more than a PostgreSQL page (256): moves cross pages */

static void key_of(int i, char *k, size_t *kl)
{
    /* Varied lengths and bytes: i as two big-endian bytes, then i % 3 bytes of 0x00/0xff. */
    k[0] = 'k';
    k[1] = (char)(i >> 8);
    k[2] = (char)(i & 0xff);
    *kl = 3;
    for (int j = 0; j < i % 3; j++)
        k[(*kl)++] = (char)(j == 0 ? 0x00 : 0xff);
}

static int key_index(const char *k, size_t kl)
{
    return kl >= 3 ? ((unsigned char)k[1] << 8 | (unsigned char)k[2]) : -1;
}

/* The index of the iterator's key, -1 if it is invalid. */
static int at(const struct cf_eiter *it)
{
    size_t kl;
    if (!cf_eiter_valid(it))
        return -1;
    const char *k = cf_eiter_key(it, &kl);
    return key_index(k, kl);
}

static void test_iteration(const struct target *t, struct cf_eng *e)
{
    char *err = NULL;
    struct cf_batch *b = cf_batch_new(e);
    char k[8];
    size_t kl;
    for (int i = 0; i < NKEYS; i++) {
        key_of(i, k, &kl);
        char v[16];
        int n = snprintf(v, sizeof v, "v%d", i);
        cf_batch_put(b, KS_DEFAULT, k, kl, v, (size_t)n);
    }
    cf_batch_put(b, KS_DEFAULT, "j", 1, "before", 6); /* outside the k range */
    cf_batch_put(b, KS_DEFAULT, "l", 1, "after", 5);
    CHECK_INT(cf_eng_write(e, b, false, &err), CF_ENG_OK, "%s: %d keys written", t->name, NKEYS);

    /* Forward over [k, l): every key once, in order, with its value. */
    struct cf_eiter *it = cf_eiter_open(e, KS_DEFAULT, "k", 1, "l", 1);
    int n = 0, bad = 0;
    for (cf_eiter_seek_to_first(it); cf_eiter_valid(it); cf_eiter_next(it), n++) {
        size_t l, vl;
        const char *kk = cf_eiter_key(it, &l), *vv = cf_eiter_value(it, &vl);
        char want[16];
        int wn = snprintf(want, sizeof want, "v%d", n);
        if (key_index(kk, l) != n || vl != (size_t)wn || memcmp(vv, want, vl) != 0)
            bad++;
    }
    CHECK(n == NKEYS && bad == 0, "%s: forward: %d keys in byte order (%d wrong)", t->name, n, bad);
    CHECK_INT(cf_eiter_status(it, &err), CF_ENG_OK, "%s: forward ends cleanly", t->name);

    /* Backward from the last. */
    n = 0, bad = 0;
    for (cf_eiter_seek_for_prev(it, "l", 1); cf_eiter_valid(it); cf_eiter_prev(it), n++) {
        if (at(it) != NKEYS - 1 - n)
            bad++;
    }
    CHECK(n == NKEYS && bad == 0, "%s: backward: %d keys (%d wrong)", t->name, n, bad);

    /* Seek between keys, then turn around across a page boundary. */
    cf_eiter_seek(it, "k\x01\x2b\x00\xff\x00", 6); /* just past key 299 (k 01 2b 00 ff): lands on 300 */
    CHECK_INT(at(it), 300, "%s: seek lands on the first key ≥", t->name);
    for (int i = 0; i < 50; i++)
        cf_eiter_prev(it);
    CHECK(at(it) == 250, "%s: 50 back", t->name);
    for (int i = 0; i < 300; i++)
        cf_eiter_next(it);
    CHECK(at(it) == 550, "%s: 300 on", t->name);
    cf_eiter_seek_for_prev(it, "k\x01\x2c\x00\x00", 5); /* past key 300 (k 01 2c), before 301 (k 01 2d 00) */
    CHECK(at(it) == 300, "%s: seek_for_prev: the last key ≤",
          t->name);
    cf_eiter_seek(it, "m", 1);
    CHECK(!cf_eiter_valid(it), "%s: seek past the upper bound: invalid", t->name);
    cf_eiter_seek_for_prev(it, "a", 1);
    CHECK(!cf_eiter_valid(it), "%s: seek_for_prev below the lower bound: invalid", t->name);
    cf_eiter_seek(it, "a", 1);
    CHECK(at(it) == 0, "%s: seek below lo: the first in bounds",
          t->name);
    cf_eiter_prev(it);
    CHECK(!cf_eiter_valid(it), "%s: prev before the first: invalid", t->name);
    CHECK_INT(cf_eiter_status(it, &err), CF_ENG_OK, "%s: no error after all that", t->name);
    cf_eiter_close(it);

    /* Unbounded: j and l are there too. */
    it = cf_eiter_open(e, KS_DEFAULT, NULL, 0, NULL, 0);
    n = 0;
    for (cf_eiter_seek_to_first(it); cf_eiter_valid(it); cf_eiter_next(it))
        n++;
    cf_eiter_close(it);
    CHECK_INT(n, NKEYS + 2, "%s: unbounded iteration sees every key", t->name);

    /* A snapshot at open: writes after it are not seen, across pages. */
    it = cf_eiter_open(e, KS_DEFAULT, "k", 1, "l", 1);
    cf_batch_clear(b);
    cf_batch_delete_range(b, KS_DEFAULT, "k", 1, "l", 1);
    cf_batch_put(b, KS_DEFAULT, "k\xff", 2, "new", 3);
    CHECK_INT(cf_eng_write(e, b, true, &err), CF_ENG_OK, "%s: delete them all after the open", t->name);
    n = 0;
    for (cf_eiter_seek_to_first(it); cf_eiter_valid(it); cf_eiter_next(it))
        n++;
    CHECK_INT(n, NKEYS, "%s: the iterator still sees its snapshot", t->name);
    cf_eiter_close(it);
    it = cf_eiter_open(e, KS_DEFAULT, "k", 1, "l", 1);
    n = 0;
    for (cf_eiter_seek_to_first(it); cf_eiter_valid(it); cf_eiter_next(it))
        n++;
    cf_eiter_close(it);
    CHECK_INT(n, 1, "%s: a new iterator sees the write", t->name);
    cf_batch_free(b);
}

/* The large keyspace: big values, views, iteration with values. */
static void test_large(const struct target *t, struct cf_eng *e)
{
    enum { BIG = (1 << 20) + 17 };
    char *big = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)(i * 7 + 3);
    char *err = NULL;
    struct cf_batch *b = cf_batch_new(e);
    for (int i = 0; i < 3; i++) {
        char k[2] = {'c', (char)i};
        big[0] = (char)i;
        cf_batch_put(b, KS_LARGE, k, 2, big, BIG);
    }
    CHECK_INT(cf_eng_write(e, b, false, &err), CF_ENG_OK, "%s: three 1 MiB values", t->name);
    cf_batch_free(b);
    struct view_ctx vc = {0, 0, 0};
    CHECK_INT(cf_eng_get_view(e, KS_LARGE, "c\x01", 2, view_fn, &vc, &err), CF_ENG_OK, "%s: view", t->name);
    CHECK(vc.calls == 1 && vc.len == BIG && vc.first == 1, "%s: the view sees the whole value once", t->name);
    char *v = NULL;
    size_t vl = 0;
    CHECK(cf_eng_get(e, KS_LARGE, "c\x02", 2, &v, &vl, &err) == CF_ENG_OK && vl == BIG && v[0] == 2 &&
              memcmp(v + 1, big + 1, BIG - 1) == 0,
          "%s: get, byte for byte", t->name);
    cf_eng_free(v);
    struct cf_eiter *it = cf_eiter_open(e, KS_LARGE, NULL, 0, NULL, 0);
    int n = 0, ok = 0;
    for (cf_eiter_seek_to_first(it); cf_eiter_valid(it); cf_eiter_next(it), n++) {
        const char *iv = cf_eiter_value(it, &vl);
        ok += vl == BIG && iv[0] == n && memcmp(iv + 1, big + 1, BIG - 1) == 0;
    }
    CHECK(n == 3 && ok == 3, "%s: iteration over the large keyspace with values", t->name);
    CHECK_INT(cf_eiter_status(it, &err), CF_ENG_OK, "%s: cleanly", t->name);
    cf_eiter_close(it);
    cf_eng_compact(e, KS_LARGE, NULL, 0, NULL, 0, true);
    CHECK(has_value(e, KS_SMALL, "s1", "1"), "%s: a forced compaction keeps live values", t->name);
    struct cf_eng_stats st;
    cf_eng_stats(e, &st);
    CHECK(!st.write_stopped, "%s: stats: writes not stopped", t->name);
    free(big);
}

/* The contract, then a reopen that finds every acknowledged write. */
static void contract(const struct target *t)
{
    struct cf_eng *e = NULL;
    char *err = NULL;
    CHECK_INT(open_eng(t, 0, &e, &err), CF_ENG_ERR, "%s: open without create of no store fails", t->name);
    cf_eng_free(err);
    CHECK_INT(open_eng(t, CF_ENG_CREATE, &e, &err), CF_ENG_OK, "%s: create", t->name);
    if (err != NULL)
        tap_diag("", err);
    if (e == NULL)
        return;
    test_points_and_batches(t, e);
    test_range_delete(t, e);
    test_iteration(t, e);
    test_large(t, e);
    cf_eng_close(e);
    e = NULL;
    struct cf_eng *e2 = NULL;
    CHECK_INT(open_eng(t, CF_ENG_CREATE, &e2, &err), CF_ENG_ERR, "%s: create over an existing store fails", t->name);
    cf_eng_free(err);
    CHECK_INT(open_eng(t, 0, &e, &err), CF_ENG_OK, "%s: reopen", t->name);
    if (e == NULL)
        return;
    CHECK(has_value(e, KS_SMALL, "s1", "1") && has_value(e, KS_OTHER, "y", "2") &&
              has_value(e, KS_DEFAULT, "k\xff", "new"),
          "%s: every acknowledged write is there after a reopen", t->name);
    CHECK(cf_eng_has(e, KS_LARGE), "%s: has every keyspace", t->name);
    CHECK_INT(open_eng(t, CF_ENG_READONLY, &e2, &err), CF_ENG_OK, "%s: a read-only open beside the writer", t->name);
    if (e2 != NULL) {
        CHECK(has_value(e2, KS_SMALL, "s1", "1"), "%s: the read-only open reads", t->name);
        CHECK(!put1(e2, KS_SMALL, "ro", 2, "x", 1, false), "%s: and cannot write", t->name);
        cf_eng_close(e2);
    }
    cf_eng_free(err);
    cf_eng_close(e);
}

/* ---- PostgreSQL only ------------------------------------------------------------------------ */
#ifdef CF_TEST_PG

/* Runs sql on a connection of the test's own. */
static PGresult *sql(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        printf("# %s:\n", q), tap_diag("  ", PQerrorMessage(c));
    return r;
}

static int pgtmp(const char *verb)
{
    const char *tool = getenv("COFFER_PGTMP"), *dir = getenv("COFFER_PG_DIR");
    if (tool == NULL || dir == NULL)
        return -1;
    pid_t p = fork();
    if (p == 0) {
        int fd = open("/dev/null", 1);
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

static void pg_only(const struct cf_eng_pg_target *pt)
{
    const struct target t = {"postgresql", NULL, pt};
    struct cf_eng *e = NULL, *e2 = NULL;
    char *err = NULL;
    CHECK_INT(open_eng(&t, 0, &e, &err), CF_ENG_OK, "pg: open");
    if (e == NULL)
        return;
    CHECK_STR(cf_eng_name(e), "postgresql", "pg: the engine says which it is");
    /* Several writers per database (cluster mode): a second read-write open works, and each sees the
     * other's writes. */
    CHECK_INT(open_eng(&t, 0, &e2, &err), CF_ENG_OK, "pg: a second writer opens too (%s)", err ? err : "");
    cf_eng_free(err);
    err = NULL;
    if (e2 != NULL) {
        CHECK(put1(e2, KS_SMALL, "from2", 5, "2", 1, true) && has_value(e, KS_SMALL, "from2", "2"),
              "pg: a write through the second is read through the first");
        CHECK(put1(e, KS_SMALL, "from1", 5, "1", 1, true) && has_value(e2, KS_SMALL, "from1", "1"),
              "pg: and the other way round");
        cf_eng_close(e2);
        e2 = NULL;
    }

    /* The tables: one per keyspace, bytea. */
    PGconn *c = PQconnectdb(pt->conninfo);
    CHECK(PQstatus(c) == CONNECTION_OK, "pg: the test's own connection");
    PGresult *r = sql(c, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'coffer\\_%'");
    CHECK_STR(PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "?", "6",
              "pg: one table per keyspace, and the change feed's two");
    PQclear(r);
    r = sql(c, "SELECT encode(v, 'escape') FROM coffer_small WHERE k = 's1'::bytea");
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "1") == 0,
          "pg: the value is in its table as it was put");
    PQclear(r);

    /* A failed batch applies nothing: another session holds key "locked"; the batch's first put goes
     * in, its second waits for the row lock until lock_timeout, and the transaction rolls back. */
    CHECK(put1(e, KS_SMALL, "locked", 6, "old", 3, true), "pg: a row to lock");
    PQclear(sql(c, "BEGIN"));
    PQclear(sql(c, "SELECT * FROM coffer_small WHERE k = 'locked'::bytea FOR UPDATE"));
    struct cf_batch *b = cf_batch_new(e);
    cf_batch_put(b, KS_SMALL, "first", 5, "new", 3);
    cf_batch_put(b, KS_SMALL, "locked", 6, "new", 3);
    CHECK_INT(cf_eng_write(e, b, true, &err), CF_ENG_ERR, "pg: the batch fails on the lock timeout");
    CHECK(err != NULL && strncmp(err, "Unavailable:", 12) == 0, "pg: as Unavailable (%s)", err ? err : "");
    cf_eng_free(err);
    err = NULL;
    PQclear(sql(c, "ROLLBACK"));
    CHECK(has_value(e, KS_SMALL, "first", NULL) && has_value(e, KS_SMALL, "locked", "old"),
          "pg: and applied nothing");
    CHECK_INT(cf_eng_write(e, b, true, &err), CF_ENG_OK, "pg: the same batch once the lock is gone");
    CHECK(has_value(e, KS_SMALL, "first", "new") && has_value(e, KS_SMALL, "locked", "new"), "pg: all of it");
    cf_batch_free(b);
    PQfinish(c);

    /* The database stopped under the open engine: reads fail as Unavailable, promptly; writes too. */
    if (pgtmp("stop") != 0) {
        CHECK(0, "pg: stop the database (COFFER_PGTMP, COFFER_PG_DIR from tests/lib/pgtmp.sh)");
        cf_eng_close(e);
        return;
    }
    char *v = NULL;
    size_t vl = 0;
    CHECK_INT(cf_eng_get(e, KS_SMALL, "s1", 2, &v, &vl, &err), CF_ENG_ERR, "pg: database down: get fails");
    CHECK(err != NULL && strncmp(err, "Unavailable:", 12) == 0, "pg: as Unavailable (%s)", err ? err : "");
    cf_eng_free(err);
    err = NULL;
    struct cf_eiter *it = cf_eiter_open(e, KS_SMALL, NULL, 0, NULL, 0);
    cf_eiter_seek_to_first(it);
    CHECK(!cf_eiter_valid(it) && cf_eiter_status(it, &err) == CF_ENG_ERR, "pg: database down: iteration fails");
    cf_eng_free(err);
    err = NULL;
    cf_eiter_close(it);
    CHECK(!put1(e, KS_SMALL, "down", 4, "x", 1, true), "pg: database down: a write fails");
    CHECK_INT(pgtmp("start"), 0, "pg: start the database again");
    CHECK(has_value(e, KS_SMALL, "s1", "1"), "pg: reads work again once it is back");
    CHECK(put1(e, KS_SMALL, "after", 5, "x", 1, true) && has_value(e, KS_SMALL, "after", "x"),
          "pg: and writes (no fail-stop: several writers, nothing of the store is kept only here)");
    struct cf_eng_stats st;
    cf_eng_stats(e, &st);
    CHECK(!st.write_stopped, "pg: stats do not say writes are stopped");
    cf_eng_close(e);
    e = NULL;
    CHECK_INT(open_eng(&t, 0, &e, &err), CF_ENG_OK, "pg: a reopen");
    if (e != NULL) {
        CHECK(has_value(e, KS_SMALL, "after", "x") && has_value(e, KS_SMALL, "down", NULL),
              "pg: finds the write made after the restart; the refused one is not there");
        /* A restart between two reads: the pooled connections are dead; the next read is not. */
        CHECK(pgtmp("stop") == 0 && pgtmp("start") == 0, "pg: restart the database while idle");
        CHECK(has_value(e, KS_SMALL, "after", "x"), "pg: the first read after a restart succeeds (a new connection)");
        struct cf_eiter *it2 = cf_eiter_open(e, KS_SMALL, NULL, 0, NULL, 0);
        cf_eiter_seek_to_first(it2);
        CHECK(cf_eiter_valid(it2) && cf_eiter_status(it2, &err) == CF_ENG_OK, "pg: and iteration");
        cf_eiter_close(it2);
        CHECK(put1(e, KS_SMALL, "late", 4, "x", 1, true) && has_value(e, KS_SMALL, "late", "x"),
              "pg: and a write (a new connection)");
        cf_eng_close(e);
    }
    cf_eng_free(err);

    /* Unreachable: a port nobody listens on fails at once with Unavailable, not a hang. */
    struct cf_eng_pg_target bad = {"host=127.0.0.1 port=1 dbname=coffer user=coffer", NULL, 2000};
    const struct target tb = {"pg-bad", NULL, &bad};
    err = NULL;
    CHECK_INT(open_eng(&tb, 0, &e, &err), CF_ENG_ERR, "pg: nothing listening: open fails");
    CHECK(err != NULL && strncmp(err, "Unavailable:", 12) == 0, "pg: as Unavailable (%s)", err ? err : "");
    cf_eng_free(err);
}

#endif

int main(void)
{
    char tmpl[] = "/tmp/cf-test-engine.XXXXXX";
    char *base = mkdtemp(tmpl);
    if (base == NULL)
        return 1;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/rocks", base);
    const struct target rocks = {"rocksdb", dir, NULL};
    contract(&rocks);
    struct cf_eng *e = NULL;
    char *err = NULL;
    if (cf_eng_open(dir, &spec, 0, &e, &err) == CF_ENG_OK) {
        CHECK_STR(cf_eng_name(e), "rocksdb", "rocksdb: the engine says which it is");
        cf_eng_close(e);
    }
    cf_eng_free(err);

    const char *conninfo = getenv("COFFER_PG_CONNINFO");
#ifndef CF_TEST_PG
    conninfo = NULL;
    printf("# SKIP PostgreSQL: this build has no PostgreSQL engine (libpq-dev missing)\n");
#else
    if (conninfo == NULL)
        printf("# SKIP PostgreSQL: COFFER_PG_CONNINFO is not set (meson runs this test through tests/lib/pgtmp.sh)\n");
#endif
    if (conninfo != NULL) {
        struct cf_eng_pg_target pt = {conninfo, NULL, 3000};
        const struct target pg = {"postgresql", NULL, &pt};
        contract(&pg);
#ifdef CF_TEST_PG
        pg_only(&pt);
#endif
    }
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", base);
    return tap_done();
}
