/*
 * test_follow.c: per-process state that follows other nodes' writes over the change feed (cluster
 * mode, issue 24; docs/CLUSTER.md "What else follows the feed"): the name index (storage/search.c)
 * and the unwrapped tenant keys (storage/keyring.c). Two store handles on one throw-away PostgreSQL (meson
 * runs this through tests/lib/pgtmp.sh, which exports COFFER_PG_CONNINFO), both with a name index: a
 * folder and a file created through A are found by B's search after B's catch-up (not before), a
 * rename, a trash and a purge likewise; a feed trimmed under B (a gap) makes B rebuild its index; a
 * tenant content key rotated through A is used by B (B reads versions wrapped under the new
 * generation, and a file B writes afterwards is readable through A, which destroyed the old one); a
 * tenant destroyed through A can no longer be read, looked up or searched through B. Where the second
 * handle can write (several writers per database), B's writes are followed by A the same way.
 */
#include <ftw.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "search.h"
#include "store_internal.h"
#include "tap.h"

static struct cf_key g_master;
static const struct cf_scan_summary g_scan = {
    .result = (char *)"clean", .engine = (char *)"ClamAV test", .database = (char *)"0123abcd", .at = 1234};

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
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

/* How many of the tenant's nodes s's index finds for q (-1: the query, -2: the search failed);
 * *first the first one. */
static int found(struct cf_store *s, const struct cf_id *t, const char *q, unsigned flags, struct cf_id *first)
{
    struct cf_search_query qq;
    const char *why = NULL;
    if (cf_search_query_parse(q, strlen(q), &qq, &why) != CF_OK)
        return -1;
    struct cf_id ids[16], last;
    size_t n = 0;
    bool end = false;
    enum cf_status st = cf_search_candidates(s, t, &qq, NULL, flags, 16, 1000000, ids, NULL, &n, &last, &end);
    cf_search_query_clear(&qq);
    if (st != CF_OK)
        return -2;
    if (n > 0 && first != NULL)
        *first = ids[0];
    return (int)n;
}

/* A file of size bytes made from seed, uploaded as name in parent. */
static enum cf_status put_file(struct cf_store *s, const struct cf_id *t, const struct cf_id *parent, const char *name,
                               uint32_t seed, size_t size, const struct cf_id *uploader, struct cf_node *out)
{
    uint8_t *data = cf_xmalloc(size);
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)(seed * 31 + i * 7);
    struct cf_upload *u;
    enum cf_status st = cf_upload_begin(s, t, &u);
    if (st != CF_OK) {
        free(data);
        return st;
    }
    if ((st = cf_upload_put_chunk(u, 0, data, size, true)) == CF_OK) {
        struct cf_commit c;
        memset(&c, 0, sizeof c);
        c.parent = *parent;
        c.name = name;
        c.name_len = strlen(name);
        c.uploader = *uploader;
        c.size = size;
        cf_sha256(data, size, c.sha256);
        c.mime = "application/x-test";
        c.scan = &g_scan;
        st = cf_upload_commit(u, &c, out);
    }
    if (st != CF_OK)
        cf_upload_abort(u);
    cf_upload_free(u);
    free(data);
    return st;
}

/* Whether file reads back through s as put_file(seed, size) wrote it; else the failing status. */
static enum cf_status read_back(struct cf_store *s, const struct cf_id *t, const struct cf_id *file, uint32_t seed,
                                size_t size)
{
    struct cf_reader *r;
    enum cf_status st = cf_reader_open(s, t, file, 0, &r);
    if (st != CF_OK)
        return st;
    uint8_t *buf = cf_xmalloc(size + 1);
    size_t len = 0;
    st = cf_reader_chunk(r, 0, buf, &len);
    cf_reader_free(r);
    bool same = st == CF_OK && len == size;
    for (size_t i = 0; same && i < size; i++)
        same = buf[i] == (uint8_t)(seed * 31 + i * 7);
    free(buf);
    return st != CF_OK ? st : same ? CF_OK : CF_ECORRUPT;
}

static void test_names(struct cf_store *a, struct cf_store *b, bool b_writes, const struct cf_id *t,
                       const struct cf_id *root, const struct cf_id *uid, PGconn *c)
{
    struct cf_node folder, file, moved;
    struct cf_id hit;
    CHECK_INT(cf_folder_create(a, t, root, "Quarterly-Reports", 17, uid, &folder), CF_OK, "A: a folder");
    CHECK_INT(put_file(a, t, &folder.id, "budget-2026.xlsx", 1, 100, uid, &file), CF_OK, "A: a file in it");
    CHECK_INT(found(b, t, "budget", 0, NULL), 0, "B: not found before a catch-up (the index is per process)");
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up");
    CHECK_INT(found(b, t, "budget", 0, &hit), 1, "B: the file is found after the catch-up");
    CHECK(cf_id_equal(&hit, &file.id), "B: it is A's file");
    CHECK_INT(found(b, t, "quarterly/2026", 0, &hit), 1, "B: a path query over A's folder and file");
    CHECK_INT(found(b, t, "quarterly", 0, &hit), 1, "B: the folder is found");
    CHECK(cf_id_equal(&hit, &folder.id), "B: it is A's folder");

    CHECK_INT(cf_node_move(a, t, &file.id, NULL, "forecast-2027.xlsx", 18, &moved), CF_OK, "A: the file renamed");
    cf_node_clear(&moved);
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up");
    CHECK_INT(found(b, t, "budget", 0, NULL), 0, "B: the old name is gone");
    CHECK_INT(found(b, t, "forecast", 0, &hit), 1, "B: the new name is found");
    CHECK(cf_id_equal(&hit, &file.id), "B: the same node");

    CHECK_INT(cf_node_trash(a, t, &file.id), CF_OK, "A: the file trashed");
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up");
    CHECK_INT(found(b, t, "forecast", 0, NULL), 0, "B: a trashed file is not a live candidate");
    CHECK_INT(found(b, t, "forecast", CF_SEARCH_TRASHED, NULL), 1, "B: it is one with CF_SEARCH_TRASHED");
    CHECK_INT(cf_node_purge(a, t, &file.id), CF_OK, "A: the file purged");
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up");
    CHECK_INT(found(b, t, "forecast", CF_SEARCH_TRASHED, NULL), 0, "B: a purged file is found nowhere");
    cf_node_clear(&file);

    if (b_writes) {
        struct cf_node bf;
        CHECK_INT(cf_folder_create(b, t, root, "written-on-bee", 14, uid, &bf), CF_OK, "B: a folder");
        CHECK_INT(cf_store_catch_up(a), CF_OK, "A: catch-up");
        CHECK_INT(found(a, t, "on-bee", 0, &hit), 1, "A: B's folder is found after A's catch-up");
        CHECK(cf_id_equal(&hit, &bf.id), "A: it is B's folder");
        CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up (its own write comes back through the feed)");
        CHECK_INT(found(b, t, "on-bee", 0, NULL), 1, "B: still found once");
        cf_node_clear(&bf);
    }

    /* A gap: the feed loses A's change before B reads it (trimmed, as for a node far behind); B's index
     * is rebuilt from the store by its next search. */
    struct cf_node gap;
    CHECK_INT(cf_folder_create(a, t, root, "lost-in-the-gap", 15, uid, &gap), CF_OK, "A: a folder");
    CHECK(sql_ok(c, "WITH d AS (DELETE FROM coffer_changes RETURNING seq) UPDATE coffer_changes_trim "
                    "SET trimmed = GREATEST(trimmed, (SELECT max(seq) FROM d))"),
          "the feed trimmed under B");
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up over the gap");
    CHECK_INT(found(b, t, "in-the-gap", 0, &hit), 1, "B: the folder is found (index rebuilt)");
    CHECK(cf_id_equal(&hit, &gap.id), "B: it is A's folder");
    CHECK_INT(found(b, t, "quarterly", 0, NULL), 1, "B: and what it held before the gap");
    struct cf_search_stats st;
    cf_store_search_stats(b, &st);
    CHECK(st.ready && st.entries >= 2, "B: the rebuilt index is ready (%llu entries)", (unsigned long long)st.entries);
    cf_node_clear(&gap);
    cf_node_clear(&folder);
}

static void test_keys(struct cf_store *a, struct cf_store *b, bool b_writes, const struct cf_id *t,
                      const struct cf_id *root, const struct cf_id *uid)
{
    struct cf_node f1, f2;
    CHECK_INT(put_file(a, t, root, "before-rotation.bin", 7, 3000, uid, &f1), CF_OK, "A: a file (generation 0)");
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up");
    CHECK_INT(read_back(b, t, &f1.id, 7, 3000), CF_OK, "B: reads it (B's tenant keys loaded)");
    struct cf_rotate_report rep = {0};
    CHECK_INT(cf_tenant_rotate_key(a, t, NULL, &rep), CF_OK, "A: the tenant's content key rotated");
    CHECK(rep.generation == 1 && rep.retired == 1 && rep.versions >= 1,
          "A: generation %u current, %u retired, %llu versions rewrapped", rep.generation, rep.retired,
          (unsigned long long)rep.versions);
    CHECK_INT(put_file(a, t, root, "after-rotation.bin", 8, 2000, uid, &f2), CF_OK, "A: a file (generation 1)");
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up");
    CHECK_INT(read_back(b, t, &f1.id, 7, 3000), CF_OK, "B: reads the rewrapped file");
    CHECK_INT(read_back(b, t, &f2.id, 8, 2000), CF_OK, "B: reads the file written under the new generation");
    const struct cf_tkeys *tk = NULL;
    CHECK_INT(cf_tkeys_get(b, t, &tk), CF_OK, "B: its tenant keys");
    if (tk != NULL) {
        pthread_rwlock_rdlock(&b->tk_lock);
        bool g0 = false, g1 = false;
        for (size_t i = 0; i < tk->ngens; i++) {
            g0 = g0 || (tk->gens[i].gen == 0 && tk->gens[i].live);
            g1 = g1 || (tk->gens[i].gen == 1 && tk->gens[i].live);
        }
        uint32_t cur = tk->cur;
        pthread_rwlock_unlock(&b->tk_lock);
        CHECK(g1 && !g0 && cur == 1, "B: generation 1 live and current, generation 0 destroyed (B's memory too)");
    }
    if (b_writes) {
        struct cf_node f3;
        CHECK_INT(put_file(b, t, root, "written-on-bee.bin", 9, 1500, uid, &f3), CF_OK, "B: a file after the rotation");
        CHECK_INT(cf_store_catch_up(a), CF_OK, "A: catch-up");
        CHECK_INT(read_back(a, t, &f3.id, 9, 1500), CF_OK,
                  "A: reads it (B wrapped its key under generation 1, not the destroyed 0)");
        cf_node_clear(&f3);
    }

    /* A second rotation, this time B holding a pointer to its entry across it (entries never move). */
    CHECK_INT(cf_tenant_rotate_key(a, t, NULL, &rep), CF_OK, "A: rotated again");
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up");
    const struct cf_tkeys *tk2 = NULL;
    CHECK_INT(cf_tkeys_get(b, t, &tk2), CF_OK, "B: its tenant keys");
    CHECK(tk2 == tk, "B: the same entry, reloaded in place");
    CHECK_INT(read_back(b, t, &f2.id, 8, 2000), CF_OK, "B: reads under generation 2");

    /* Crypto-shredding through A. */
    uint64_t keys = 0;
    CHECK_INT(cf_tenant_delete(a, t, &keys), CF_OK, "A: the tenant destroyed");
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: catch-up");
    CHECK_INT(read_back(b, t, &f2.id, 8, 2000), CF_ENOTFOUND, "B: the file can no longer be read");
    CHECK_INT(cf_tkeys_get(b, t, &tk2), CF_ENOTFOUND, "B: the tenant has no keys any more");
    if (tk != NULL) {
        pthread_rwlock_rdlock(&b->tk_lock);
        bool dead = tk->dead, live = false;
        for (size_t i = 0; i < tk->ngens; i++)
            live = live || tk->gens[i].live;
        pthread_rwlock_unlock(&b->tk_lock);
        CHECK(dead && !live, "B: its entry is marked dead, no generation live (keys overwritten)");
    }
    CHECK_INT(found(b, t, "rotation", 0, NULL), 0, "B: nothing of the tenant is found by its search");
    struct cf_tenant tt;
    CHECK(cf_tenant_get(b, t, &tt) != CF_OK, "B: the tenant record is gone");
    cf_node_clear(&f1);
    cf_node_clear(&f2);
}

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

    /* B: a second read-write open of the same database (a second node), else read-only where one
     * writer per database is all the engine allows. */
    bool b_writes = cf_store_open(dir, &g_master, &b) == CF_OK;
    if (!b_writes) {
        printf("# B cannot open read-write (one writer per database): read-only, B's writes not tested\n");
        CHECK_INT(cf_store_open_readonly(dir, &g_master, &b), CF_OK, "B: opened read-only");
    } else {
        CHECK(b != NULL, "B: opened read-write (a second node)");
    }
    if (b == NULL) {
        cf_tenant_clear(&t);
        cf_store_close(a);
        return;
    }
    uint64_t entries = 0;
    CHECK_INT(cf_store_search_build(a, &entries), CF_OK, "A: name index built");
    CHECK_INT(cf_store_search_build(b, &entries), CF_OK, "B: name index built");
    CHECK(atomic_load(&b->feed_applied) != 0, "B: the build took a position in the feed first");
    CHECK_INT(cf_store_catch_up(b), CF_OK, "B: a first catch-up after the build");
    CHECK_INT(found(b, &t.id, "anything", 0, NULL), 0, "B: a search (nothing to rebuild, nothing found)");

    PGconn *c = PQconnectdb(conninfo);
    CHECK(PQstatus(c) == CONNECTION_OK, "a direct connection to the database");
    test_names(a, b, b_writes, &t.id, &root, &uid, c);
    test_keys(a, b, b_writes, &t.id, &root, &uid);
    PQfinish(c);
    cf_tenant_clear(&t);
    cf_store_close(b);
    cf_store_close(a);
}

int main(void)
{
    char base[] = "/tmp/coffer-unit-follow-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    cf_key_random(&g_master);
    const char *conninfo = getenv("COFFER_PG_CONNINFO");
    if (conninfo == NULL) {
        printf("# SKIP PostgreSQL: COFFER_PG_CONNINFO is not set (meson runs this test through tests/lib/pgtmp.sh)\n");
        CHECK(true, "nothing to run without PostgreSQL");
    } else {
        char *dir = cf_xasprintf("%s/pg", base);
        cf_store_use_postgres(dir, conninfo, NULL, 10000);
        test_two_nodes(dir, conninfo);
        cf_store_use_postgres(NULL, NULL, NULL, 0);
        free(dir);
    }
    cf_key_wipe(&g_master);
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
