/*
 * test_journal.c: the metadata journal (storage/journal.c, journal_check.c) on real stores in a
 * temporary directory: the write-batch parser against batches RocksDB itself serialised; the
 * replay's verdict on every kind of tampering, made with raw writes that bypass the journal
 * (cf_db_write_raw), each on a fresh store; trimming and the sum that catches a rollback older than
 * the kept entries; group commit under concurrent writers; adoption of a store without a journal;
 * and the anchor file (a whole store rolled back, another store's anchor, a torn slot, the override).
 */
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/rocks.h"
#include "journal.h"
#include "tap.h"

static struct cf_key g_master;
static char g_base[] = "/tmp/coffer-unit-journal-XXXXXX";
static int g_n;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh store in its own directory; *dir is malloc'ed. */
static struct cf_store *fresh(char **dir)
{
    struct cf_store *s = NULL;
    *dir = cf_xasprintf("%s/s%d", g_base, ++g_n);
    if (cf_store_create(*dir, &g_master) != CF_OK || cf_store_open(*dir, &g_master, &s) != CF_OK)
        return NULL;
    return s;
}

/* ---- writes through the journal, and around it ------------------------------------------------ */

static enum cf_status jput(struct cf_store *s, enum cf_cf cf, const char *k, const char *v)
{
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_put(b, cf, k, strlen(k), v, strlen(v));
    enum cf_status st = cf_db_write(s, b, true);
    cf_batch_free(b);
    return st;
}

static enum cf_status jdel(struct cf_store *s, enum cf_cf cf, const char *k)
{
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_delete(b, cf, k, strlen(k));
    enum cf_status st = cf_db_write(s, b, true);
    cf_batch_free(b);
    return st;
}

static void raw_put(struct cf_store *s, enum cf_cf cf, const void *k, size_t kl, const void *v, size_t vl)
{
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_put(b, cf, k, kl, v, vl);
    if (cf_db_write_raw(s, b, true) != CF_OK)
        abort();
    cf_batch_free(b);
}

static void raw_del(struct cf_store *s, enum cf_cf cf, const void *k, size_t kl)
{
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_delete(b, cf, k, kl);
    if (cf_db_write_raw(s, b, true) != CF_OK)
        abort();
    cf_batch_free(b);
}

/* The journal_keys value of (cf, key), into out[CF_JINDEX_VAL_LEN]. */
static bool index_get(struct cf_store *s, enum cf_cf cf, const char *k, uint8_t *out)
{
    uint8_t ik[128];
    char *v;
    size_t vl;
    ik[0] = (uint8_t)cf;
    memcpy(ik + 1, k, strlen(k));
    if (cf_db_get(s, CF_CF_JOURNAL_KEYS, ik, 1 + strlen(k), &v, &vl) != CF_OK)
        return false;
    bool ok = vl == CF_JINDEX_VAL_LEN;
    if (ok)
        memcpy(out, v, vl);
    free(v);
    return ok;
}

static void index_put(struct cf_store *s, enum cf_cf cf, const char *k, const uint8_t *v)
{
    uint8_t ik[128];
    ik[0] = (uint8_t)cf;
    memcpy(ik + 1, k, strlen(k));
    raw_put(s, CF_CF_JOURNAL_KEYS, ik, 1 + strlen(k), v, CF_JINDEX_VAL_LEN);
}

/* ---- what the check reports ------------------------------------------------------------------- */

#define MAXF 16
struct seen {
    size_t n;
    char what[MAXF][64];
    char kind[MAXF][48];
    char key[MAXF][64];
    char detail[MAXF][400];
};

static void on_finding(void *ctx, const struct cf_journal_finding *f)
{
    struct seen *x = ctx;
    if (x->n == MAXF)
        return;
    snprintf(x->what[x->n], sizeof x->what[0], "%s", f->what);
    snprintf(x->kind[x->n], sizeof x->kind[0], "%s", f->kind != NULL ? f->kind : "(journal)");
    snprintf(x->key[x->n], sizeof x->key[0], "%.*s", (int)(f->klen < 63 ? f->klen : 63), (const char *)f->key);
    snprintf(x->detail[x->n], sizeof x->detail[0], "%s", f->detail);
    x->n++;
}

static struct seen check(struct cf_store *s, struct cf_anchor *a, struct cf_journal_report *rep)
{
    struct seen x;
    struct cf_journal_report r;
    memset(&x, 0, sizeof x);
    if (cf_journal_check(s, a, on_finding, &x, rep != NULL ? rep : &r) != CF_OK)
        x.n = 999;
    for (size_t i = 0; i < x.n && i < MAXF; i++)
        printf("#   finding: %s %s: %s: %s\n", x.kind[i], x.key[i], x.what[i], x.detail[i]);
    return x;
}

static bool has_detail(const struct seen *x, const char *want)
{
    for (size_t i = 0; i < x->n && i < MAXF; i++)
        if (strcmp(x->detail[i], want) == 0 || strstr(x->detail[i], want) != NULL)
            return true;
    return false;
}

/* ---- 1. the parser ------------------------------------------------------------------------------ */

static void test_parse(void)
{
    char *dir;
    struct cf_store *s = fresh(&dir);
    CHECK(s != NULL, "parse: a store");
    if (s == NULL)
        return;
    struct cf_jops ops;
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_put(b, CF_CF_USERS, "k1", 2, "value-1", 7);
    cf_batch_put(b, CF_CF_CHUNKS, "c1", 2, "chunk", 5); /* not covered */
    rocksdb_writebatch_put_log_data(cf_rocks_batch(b), "blob", 4);        /* not an operation */
    cf_batch_delete(b, CF_CF_SESSIONS, "k2", 2);
    cf_batch_delete_range(b, CF_CF_KEYS, "a", 1, "b", 1);
    rocksdb_writebatch_put(cf_rocks_batch(b), "format", 6, "x", 1); /* the default family: no family id in the record */
    rocksdb_writebatch_singledelete_cf(cf_rocks_batch(b), cf_rocks_cf(s->eng, CF_CF_NODES), "k3", 2);
    size_t size;
    const char *rep = cf_rocks_batch_rep(b, &size);
    CHECK_INT(cf_journal_parse(b, &ops), CF_OK, "parse: a batch of every kind RocksDB serialises");
    CHECK_INT(ops.n, 5, "parse: five covered operations (chunks and log data skipped)");
    if (ops.n == 5) {
        uint8_t d[32];
        cf_sha256("value-1", 7, d);
        CHECK(ops.v[0].kind == CF_JOP_PUT && ops.v[0].cf == CF_CF_USERS && ops.v[0].klen == 2 &&
                  memcmp(ops.arena.p + ops.v[0].key_off, "k1", 2) == 0 && memcmp(ops.v[0].digest, d, 32) == 0,
              "parse: the put, its family, key and SHA-256 of its value");
        CHECK(ops.v[1].kind == CF_JOP_DEL && ops.v[1].cf == CF_CF_SESSIONS, "parse: the deletion");
        CHECK(ops.v[2].kind == CF_JOP_RANGE && ops.v[2].cf == CF_CF_KEYS && ops.v[2].hlen == 1 &&
                  ops.arena.p[ops.v[2].key_off] == 'a' && ops.arena.p[ops.v[2].hi_off] == 'b',
              "parse: the range deletion with both ends");
        CHECK(ops.v[3].kind == CF_JOP_PUT && ops.v[3].cf == CF_CF_DEFAULT, "parse: a put to the default family");
        CHECK(ops.v[4].kind == CF_JOP_DEL && ops.v[4].cf == CF_CF_NODES, "parse: a single deletion is a deletion");
    }
    cf_jops_free(&ops);
    struct cf_batch *cut = cf_rocks_batch_from(s->eng, rep, size - 1);
    CHECK_INT(cf_journal_parse(cut, &ops), CF_EINVAL, "parse: a truncated batch is refused");
    cf_batch_free(cut);
    cut = cf_rocks_batch_from(s->eng, rep, 11);
    CHECK_INT(cf_journal_parse(cut, &ops), CF_EINVAL, "parse: a batch shorter than its header is refused");
    cf_batch_free(cut);
    cf_batch_clear(b);
    rocksdb_writebatch_merge_cf(cf_rocks_batch(b), cf_rocks_cf(s->eng, CF_CF_USERS), "k", 1, "v", 1);
    CHECK_INT(cf_journal_parse(b, &ops), CF_EINVAL, "parse: a merge is refused");
    cf_batch_clear(b);
    cf_batch_put(b, CF_CF_JOURNAL_KEYS, "k", 1, "v", 1);
    CHECK_INT(cf_journal_parse(b, &ops), CF_EINVAL,
              "parse: a write to the journal's own families is refused");
    CHECK_INT(cf_db_write(s, b, true), CF_EINVAL, "parse: ... and cf_db_write does not write it");
    cf_batch_clear(b);
    cf_batch_put(b, CF_CF_CHUNKS, "c", 1, "v", 1);
    uint64_t before = s->journal.head.seq;
    CHECK_INT(cf_db_write(s, b, true), CF_OK, "parse: a batch of chunks only ...");
    CHECK_INT(s->journal.head.seq, before, "parse: ... is written without an entry");
    cf_batch_free(b);
    cf_store_close(s);
    free(dir);
}

/* ---- 2. the verdicts ---------------------------------------------------------------------------- */

static void test_clean(void)
{
    char *dir;
    struct cf_store *s = fresh(&dir);
    struct cf_journal_report rep;
    CHECK(s != NULL, "clean: a store");
    if (s == NULL)
        return;
    CHECK_INT(jput(s, CF_CF_SHARES, "share-1", "v1"), CF_OK, "clean: put");
    CHECK_INT(jput(s, CF_CF_SHARES, "share-1", "v2"), CF_OK, "clean: overwrite");
    CHECK_INT(jput(s, CF_CF_NODES, "node-1", "n1"), CF_OK, "clean: another put");
    CHECK_INT(jdel(s, CF_CF_NODES, "node-1"), CF_OK, "clean: delete");
    CHECK_INT(jdel(s, CF_CF_NODES, "never-there"), CF_OK, "clean: delete of a key that never was");
    /* A batch that writes one key twice and deletes a range over keys it wrote. */
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_put(b, CF_CF_USERS, "u1", 2, "a", 1);
    cf_batch_put(b, CF_CF_USERS, "u1", 2, "b", 1);
    cf_batch_put(b, CF_CF_USERS, "u2", 2, "c", 1);
    cf_batch_delete_range(b, CF_CF_USERS, "u2", 2, "u3", 2);
    cf_batch_put(b, CF_CF_USERS, "u4", 2, "d", 1);
    CHECK_INT(cf_db_write(s, b, false), CF_OK, "clean: a mixed batch (unsynced)");
    cf_batch_free(b);
    struct seen x = check(s, NULL, &rep);
    CHECK_INT(x.n, 0, "clean: no finding");
    CHECK(rep.present && rep.seq == s->journal.head.seq && rep.entries == rep.seq && rep.first == 1,
          "clean: every entry kept and checked");
    CHECK_INT(rep.keys, rep.records, "clean: one index entry per covered record");
    CHECK_INT(rep.keys, s->journal.head.nkeys, "clean: the head counts them");
    /* Reopened, the head is what was written. */
    uint64_t seq = s->journal.head.seq;
    cf_store_close(s);
    CHECK_INT(cf_store_open_readonly(dir, &g_master, &s), CF_OK, "clean: reopen read-only");
    if (s != NULL) {
        CHECK_INT(s->journal.head.seq, seq, "clean: the stored head");
        x = check(s, NULL, &rep);
        CHECK_INT(x.n, 0, "clean: no finding read-only either");
        cf_store_close(s);
    }
    free(dir);
}

static void test_records(void)
{
    char *dir;
    struct cf_store *s = fresh(&dir);
    CHECK(s != NULL, "records: a store");
    if (s == NULL)
        return;
    uint8_t idx_v1[CF_JINDEX_VAL_LEN], idx_v2[CF_JINDEX_VAL_LEN];
    CHECK_INT(jput(s, CF_CF_SHARES, "share-a", "active"), CF_OK, "records: share written");
    CHECK(index_get(s, CF_CF_SHARES, "share-a", idx_v1), "records: its index entry");
    CHECK_INT(jput(s, CF_CF_SHARES, "share-a", "revoked"), CF_OK, "records: share revoked");
    CHECK(index_get(s, CF_CF_SHARES, "share-a", idx_v2), "records: its new index entry");
    CHECK_INT(jput(s, CF_CF_NODES, "node-b", "v1"), CF_OK, "records: node written");
    CHECK_INT(jput(s, CF_CF_SESSIONS, "sess-c", "s"), CF_OK, "records: session written");
    CHECK_INT(jdel(s, CF_CF_SESSIONS, "sess-c"), CF_OK, "records: session ended");
    CHECK_INT(jput(s, CF_CF_VERSIONS, "ver-d", "v"), CF_OK, "records: version written");

    /* The older value back: rolled back, naming the entry that wrote it. */
    raw_put(s, CF_CF_SHARES, "share-a", 7, "active", 6);
    struct seen x = check(s, NULL, NULL);
    CHECK(x.n == 1 && strcmp(x.what[0], CF_JFIND_ROLLED_BACK) == 0 && strcmp(x.kind[0], "share record") == 0 &&
              strcmp(x.key[0], "share-a") == 0 && strstr(x.detail[0], "written at journal entry 2 ") != NULL &&
              strstr(x.detail[0], "the last write was at journal entry 3 ") != NULL,
          "records: an older share record is rolled back, to entry 2, from entry 3");
    /* ... and with its index entry rolled back too: the kept entries still know. */
    index_put(s, CF_CF_SHARES, "share-a", idx_v1);
    x = check(s, NULL, NULL);
    CHECK(x.n == 1 && strcmp(x.what[0], CF_JFIND_ROLLED_BACK) == 0 && strcmp(x.key[0], "share-a") == 0,
          "records: record and index entry rolled back together: still named");
    raw_put(s, CF_CF_SHARES, "share-a", 7, "revoked", 7);
    x = check(s, NULL, NULL);
    CHECK(x.n == 1 && strcmp(x.what[0], CF_JFIND_INDEX) == 0 && strcmp(x.key[0], "share-a") == 0,
          "records: the index entry alone rolled back");
    uint8_t tmp[CF_JINDEX_VAL_LEN];
    index_put(s, CF_CF_SHARES, "share-a", idx_v2);
    x = check(s, NULL, NULL);
    CHECK_INT(x.n, 0, "records: put right again");

    /* A value never written. */
    raw_put(s, CF_CF_NODES, "node-b", 6, "forged", 6);
    x = check(s, NULL, NULL);
    CHECK(x.n == 1 && strcmp(x.what[0], CF_JFIND_NOT_LAST) == 0 && strcmp(x.kind[0], "node/file record") == 0,
          "records: a value the journal never saw is not the last one written");
    raw_put(s, CF_CF_NODES, "node-b", 6, "v1", 2);

    /* Deleted, resurrected, never journaled. */
    raw_del(s, CF_CF_VERSIONS, "ver-d", 5);
    x = check(s, NULL, NULL);
    CHECK(x.n == 1 && strcmp(x.what[0], CF_JFIND_DELETED) == 0 && strcmp(x.kind[0], "file version record") == 0,
          "records: a deleted version record");
    raw_put(s, CF_CF_VERSIONS, "ver-d", 5, "v", 1);
    raw_put(s, CF_CF_SESSIONS, "sess-c", 6, "s", 1);
    x = check(s, NULL, NULL);
    CHECK(x.n == 1 && strcmp(x.what[0], CF_JFIND_RESURRECTED) == 0 && strcmp(x.kind[0], "session") == 0 &&
              strstr(x.detail[0], "deleted at journal entry 6 ") != NULL,
          "records: an ended session put back is resurrected, deleted at entry 6");
    raw_del(s, CF_CF_SESSIONS, "sess-c", 6);
    raw_put(s, CF_CF_TRASH, "made-up", 7, "x", 1);
    x = check(s, NULL, NULL);
    CHECK(x.n == 1 && strcmp(x.what[0], CF_JFIND_UNJOURNALED) == 0 && strcmp(x.kind[0], "trash entry") == 0,
          "records: a key never written is not in the journal");
    raw_del(s, CF_CF_TRASH, "made-up", 7);
    /* Uncovered families are not the journal's business. */
    raw_put(s, CF_CF_CHUNKS, "chunk", 5, "x", 1);
    raw_put(s, CF_CF_AUDIT_INDEX, "idx", 3, "", 0);
    x = check(s, NULL, NULL);
    CHECK_INT(x.n, 0, "records: chunks and the provenance index are outside the journal");

    /* A range deletion (tenant deletion's way), then one key of it put back. */
    CHECK_INT(jput(s, CF_CF_USERS, "T1-a", "a"), CF_OK, "records: user a");
    CHECK_INT(jput(s, CF_CF_USERS, "T1-b", "b"), CF_OK, "records: user b");
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_delete_range(b, CF_CF_USERS, "T1-", 3, "T1.", 3);
    CHECK_INT(cf_db_write(s, b, true), CF_OK, "records: range deletion");
    cf_batch_free(b);
    CHECK(!index_get(s, CF_CF_USERS, "T1-a", tmp) && !index_get(s, CF_CF_USERS, "T1-b", tmp),
          "records: the range deletion removed their index entries");
    x = check(s, NULL, NULL);
    CHECK_INT(x.n, 0, "records: consistent after the range deletion");
    raw_put(s, CF_CF_USERS, "T1-b", 4, "b", 1);
    x = check(s, NULL, NULL);
    CHECK(x.n == 1 && strcmp(x.what[0], CF_JFIND_RESURRECTED) == 0 && strcmp(x.key[0], "T1-b") == 0,
          "records: a key of a deleted range put back is resurrected");
    raw_del(s, CF_CF_USERS, "T1-b", 4);

    /* The index: an altered entry. */
    CHECK(index_get(s, CF_CF_NODES, "node-b", tmp), "records: node index entry");
    tmp[50] ^= 1;
    index_put(s, CF_CF_NODES, "node-b", tmp);
    x = check(s, NULL, NULL);
    CHECK(x.n >= 1 && strcmp(x.what[0], CF_JFIND_INDEX) == 0 && strstr(x.detail[0], "does not verify") != NULL,
          "records: an altered index entry does not verify");
    cf_store_close(s);
    free(dir);
}

static void test_chain(void)
{
    char *dir;
    struct cf_store *s = fresh(&dir);
    CHECK(s != NULL, "chain: a store");
    if (s == NULL)
        return;
    for (int i = 0; i < 6; i++) {
        char k[16];
        snprintf(k, sizeof k, "node-%d", i);
        CHECK_INT(jput(s, CF_CF_NODES, k, "v"), CF_OK, "chain: write %d", i);
    }
    uint64_t seq = s->journal.head.seq;
    uint8_t ek[9], mid[9];
    cf_jentry_key(seq, ek);
    cf_jentry_key(seq - 2, mid);
    char *last, *m;
    size_t lastl, ml;
    CHECK(cf_db_get(s, CF_CF_JOURNAL, ek, 9, &last, &lastl) == CF_OK &&
              cf_db_get(s, CF_CF_JOURNAL, mid, 9, &m, &ml) == CF_OK,
          "chain: entries readable");

    raw_del(s, CF_CF_JOURNAL, ek, 9);
    struct seen x = check(s, NULL, NULL);
    char want[96];
    snprintf(want, sizeof want, "it ends at entry %llu, but its head is at entry %llu (truncated)",
             (unsigned long long)seq - 1, (unsigned long long)seq);
    CHECK(has_detail(&x, want), "chain: the last entry deleted: truncated");
    raw_put(s, CF_CF_JOURNAL, ek, 9, last, lastl);

    raw_del(s, CF_CF_JOURNAL, mid, 9);
    x = check(s, NULL, NULL);
    snprintf(want, sizeof want, "entries %llu to %llu are missing (deleted)", (unsigned long long)seq - 2,
             (unsigned long long)seq - 2);
    CHECK(has_detail(&x, want), "chain: a middle entry deleted: missing");
    m[60] ^= 1;
    raw_put(s, CF_CF_JOURNAL, mid, 9, m, ml);
    x = check(s, NULL, NULL);
    snprintf(want, sizeof want, "entry %llu does not verify (altered)", (unsigned long long)seq - 2);
    CHECK(has_detail(&x, want), "chain: an altered entry does not verify");
    m[60] ^= 1;
    raw_put(s, CF_CF_JOURNAL, mid, 9, m, ml);
    x = check(s, NULL, NULL);
    CHECK_INT(x.n, 0, "chain: restored, clean");
    free(last);
    free(m);

    /* The head put back to an earlier one: entries past it, and the open refuses. */
    char *h0;
    size_t h0l;
    CHECK(cf_db_get(s, CF_CF_JOURNAL, "h", 1, &h0, &h0l) == CF_OK, "chain: the head");
    CHECK_INT(jput(s, CF_CF_NODES, "node-late", "v"), CF_OK, "chain: one more write");
    cf_store_close(s);
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "chain: reopen");
    raw_put(s, CF_CF_JOURNAL, "h", 1, h0, h0l);
    cf_store_close(s);
    CHECK_INT(cf_store_open_readonly(dir, &g_master, &s), CF_OK, "chain: reopen read-only (the head as stored)");
    x = check(s, NULL, NULL);
    CHECK(has_detail(&x, "it holds 1 entry past its head"), "chain: a rolled-back head leaves entries past it");
    cf_store_close(s);
    s = NULL;
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_EROLLBACK, "chain: the open refuses a rolled-back head");
    CHECK_INT(cf_store_open_anchored(dir, &g_master, NULL, CF_ANCHOR_ACCEPT, &s), CF_OK,
              "chain: ... unless told to accept (the journal is rebuilt over the store)");
    if (s != NULL) {
        x = check(s, NULL, NULL);
        CHECK_INT(x.n, 0, "chain: after accept, clean");
        CHECK_INT(s->journal.head.seq, 0, "chain: a rebuilt journal starts again");
        cf_store_close(s);
    }
    free(h0);
    free(dir);
}

/* Trimming, and a record rolled back with its index entry to a write older than the kept entries:
 * only the head's sum notices, and says so. */
static void test_trim_and_sum(void)
{
    char *dir;
    struct cf_store *s = fresh(&dir);
    CHECK(s != NULL, "trim: a store");
    if (s == NULL)
        return;
    s->journal.keep = 4;
    s->journal.step = 2;
    uint8_t old_idx[CF_JINDEX_VAL_LEN];
    CHECK_INT(jput(s, CF_CF_SHARES, "share-x", "active"), CF_OK, "trim: share written");
    CHECK(index_get(s, CF_CF_SHARES, "share-x", old_idx), "trim: its index entry");
    CHECK_INT(jput(s, CF_CF_SHARES, "share-x", "revoked"), CF_OK, "trim: share revoked");
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof k, "n%02d", i);
        CHECK_INT(jput(s, CF_CF_NODES, k, "v"), CF_OK, "trim: write %d", i);
    }
    const struct cf_jhead *h = &s->journal.head;
    uint64_t kept = h->seq - h->first + 1;
    CHECK(kept >= 4 && kept < 4 + 2 + 1 && h->first > 3, "trim: %llu entries kept, from %llu", (unsigned long long)kept,
          (unsigned long long)h->first);
    struct cf_journal_report rep;
    struct seen x = check(s, NULL, &rep);
    CHECK_INT(x.n, 0, "trim: clean after trimming");
    CHECK_INT(rep.entries, kept, "trim: the kept entries are checked");
    uint8_t ek[9];
    char *v;
    size_t vl;
    cf_jentry_key(h->first - 1, ek);
    CHECK_INT(cf_db_get(s, CF_CF_JOURNAL, ek, 9, &v, &vl), CF_ENOTFOUND, "trim: older entries are gone");

    raw_put(s, CF_CF_SHARES, "share-x", 7, "active", 6);
    index_put(s, CF_CF_SHARES, "share-x", old_idx);
    x = check(s, NULL, NULL);
    CHECK(x.n == 1 && strcmp(x.kind[0], "(journal)") == 0 && strstr(x.detail[0], "does not add up to its head") != NULL,
          "trim: a pair rolled back before the kept entries: the sum does not add up");
    /* Writing the key again does not launder it. */
    CHECK_INT(jput(s, CF_CF_SHARES, "share-x", "revoked-again"), CF_OK, "trim: rewritten");
    x = check(s, NULL, NULL);
    CHECK(x.n == 1 && strstr(x.detail[0], "does not add up") != NULL, "trim: ... and still reported");
    /* A reopen keeps trimming where it was. */
    cf_store_close(s);
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "trim: reopen (the open checks the tail, fsck the sum)");
    if (s != NULL)
        cf_store_close(s);
    free(dir);
}

/* ---- 3. group commit ---------------------------------------------------------------------------- */

#define WRITERS 8
#define WRITES 100
struct writer {
    struct cf_store *s;
    int id;
    int failed;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < WRITES; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "w%d-%d", w->id, i % 50);
        snprintf(v, sizeof v, "v%d", i);
        struct cf_batch *b = cf_batch_new(w->s->eng);
        cf_batch_put(b, CF_CF_NODES, k, strlen(k), v, strlen(v));
        if (i % 7 == 0)
            cf_batch_delete(b, CF_CF_TRASH, k, strlen(k));
        if (i % 3 == 0) /* some unsynced, like pending marks */
            w->failed += cf_db_write(w->s, b, false) != CF_OK;
        else
            w->failed += cf_db_write(w->s, b, true) != CF_OK;
        cf_batch_free(b);
    }
    return NULL;
}

static void test_group_commit(void)
{
    char *dir;
    struct cf_store *s = fresh(&dir);
    CHECK(s != NULL, "group: a store");
    if (s == NULL)
        return;
    uint64_t before = s->journal.head.seq;
    pthread_t t[WRITERS];
    struct writer w[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){.s = s, .id = i};
        pthread_create(&t[i], NULL, writer_main, &w[i]);
    }
    int failed = 0;
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(t[i], NULL);
        failed += w[i].failed;
    }
    CHECK_INT(failed, 0, "group: every write succeeded");
    CHECK_INT(s->journal.head.seq - before, WRITERS * WRITES, "group: one entry per batch");
    struct cf_journal_report rep;
    struct seen x = check(s, NULL, &rep);
    CHECK_INT(x.n, 0, "group: the chain and every record verify");
    cf_store_close(s);
    CHECK_INT(cf_store_open_readonly(dir, &g_master, &s), CF_OK, "group: reopen");
    if (s != NULL) {
        x = check(s, NULL, &rep);
        CHECK_INT(x.n, 0, "group: durable and consistent after close");
        CHECK_INT(rep.seq - before, WRITERS * WRITES, "group: every entry is there");
        cf_store_close(s);
    }
    free(dir);
}

/* ---- 4. adoption and the anchor ------------------------------------------------------------------ */

static void test_adopt(void)
{
    char *dir;
    struct cf_store *s = fresh(&dir);
    CHECK(s != NULL, "adopt: a store");
    if (s == NULL)
        return;
    CHECK_INT(jput(s, CF_CF_NODES, "n1", "v1"), CF_OK, "adopt: a record");
    /* What a store from before the journal looks like: not even its column families. */
    char *err = NULL;
    rocksdb_drop_column_family(cf_rocks_db(s->eng), cf_rocks_cf(s->eng, CF_CF_JOURNAL), &err);
    if (err == NULL)
        rocksdb_drop_column_family(cf_rocks_db(s->eng), cf_rocks_cf(s->eng, CF_CF_JOURNAL_KEYS), &err);
    CHECK(err == NULL, "adopt: the journal's families dropped");
    free(err);
    s->journal.on = false; /* as if it never had one */
    cf_store_close(s);
    struct cf_journal_report rep;
    CHECK_INT(cf_store_open_readonly(dir, &g_master, &s), CF_OK, "adopt: read-only open of a store without one");
    if (s != NULL) {
        struct seen x = check(s, NULL, &rep);
        CHECK(x.n == 0 && !rep.present, "adopt: read-only, no journal is no finding (a store from before it)");
        cf_store_close(s);
    }
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "adopt: read-write open adopts it");
    if (s != NULL) {
        struct seen x = check(s, NULL, &rep);
        CHECK(x.n == 0 && rep.present && rep.keys == rep.records && rep.keys >= 3, "adopt: every record indexed (%llu)",
              (unsigned long long)rep.keys);
        raw_put(s, CF_CF_NODES, "n1", 2, "v0", 2);
        x = check(s, NULL, NULL);
        CHECK(x.n == 1 && strcmp(x.what[0], CF_JFIND_NOT_LAST) == 0 &&
                  strstr(x.detail[0], "when the journal was started") != NULL,
              "adopt: from then on, changes are caught");
        cf_store_close(s);
    }
    free(dir);
}

static void copy_dir(const char *from, const char *to)
{
    char *cmd = cf_xasprintf("rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
    if (system(cmd) != 0)
        abort();
    free(cmd);
}

static struct cf_store *open_anchored(const char *dir, const char *apath, enum cf_anchor_mode mode, enum cf_status *st)
{
    struct cf_anchor *a = NULL;
    char *err = NULL;
    struct cf_store *s = NULL;
    if (cf_anchor_open(apath, true, &a, &err) != CF_OK) {
        tap_diag("", err);
        free(err);
        *st = CF_EIO;
        return NULL;
    }
    *st = cf_store_open_anchored(dir, &g_master, a, mode, &s);
    return s;
}

static void test_anchor(void)
{
    char *dir, *copy, *apath;
    enum cf_status st;
    struct cf_store *s = fresh(&dir);
    CHECK(s != NULL, "anchor: a store");
    if (s == NULL)
        return;
    cf_store_close(s);
    apath = cf_xasprintf("%s.anchor", dir);
    copy = cf_xasprintf("%s.old", dir);
    s = open_anchored(dir, apath, CF_ANCHOR_CHECK, &st);
    CHECK_INT(st, CF_OK, "anchor: first anchored open creates it");
    struct stat sb;
    CHECK(stat(apath, &sb) == 0 && (sb.st_mode & 0777) == 0600 && sb.st_size == 128, "anchor: 0600, one slot");
    CHECK_INT(jput(s, CF_CF_NODES, "a", "1"), CF_OK, "anchor: a write");
    cf_store_close(s);
    copy_dir(dir, copy);
    s = open_anchored(dir, apath, CF_ANCHOR_CHECK, &st);
    CHECK_INT(st, CF_OK, "anchor: reopen");
    CHECK_INT(jput(s, CF_CF_NODES, "a", "2"), CF_OK, "anchor: a later write");
    uint64_t later = s->journal.head.seq;
    cf_store_close(s);

    /* The store behind the anchor (the older copy in place): refused, also read-only. */
    char *moved = cf_xasprintf("%s.new", dir);
    copy_dir(dir, moved);
    copy_dir(copy, dir);
    s = open_anchored(dir, apath, CF_ANCHOR_CHECK, &st);
    CHECK(st == CF_EROLLBACK && s == NULL, "anchor: an older copy of data_dir is refused");
    struct cf_anchor *ra = NULL;
    char *err = NULL, *why = NULL;
    CHECK(cf_anchor_open(apath, false, &ra, &err) == CF_OK && cf_store_open_readonly(dir, &g_master, &s) == CF_OK,
          "anchor: read-only");
    if (s != NULL) {
        CHECK_INT(cf_store_anchor_verdict(s, ra, &why), CF_EROLLBACK, "anchor: the read-only verdict agrees");
        CHECK(why != NULL && strstr(why, "rolled back or replaced by an older copy") != NULL, "anchor: and says why");
        free(why);
        struct seen x = check(s, ra, NULL);
        CHECK(x.n == 1 && strcmp(x.kind[0], "(journal)") == 0 && strstr(x.detail[0], "rolled back") != NULL,
              "anchor: the check reports it");
        cf_store_close(s);
    }
    cf_anchor_close(ra);
    /* The newer store back: fine (the anchor was not touched by the refused open). */
    copy_dir(moved, dir);
    s = open_anchored(dir, apath, CF_ANCHOR_CHECK, &st);
    CHECK_INT(st, CF_OK, "anchor: the current store opens");
    if (s != NULL)
        cf_store_close(s);

    /* A torn newer slot: the older slot still verifies; the store is ahead of it, which is fine. */
    int fd = open(apath, O_RDWR);
    uint8_t slots[256];
    CHECK(fd >= 0 && pread(fd, slots, sizeof slots, 0) == 256, "anchor: two slots written by now");
    int newer = cf_get_be64(slots + 24) > cf_get_be64(slots + 128 + 24) ? 0 : 1;
    uint8_t torn = slots[newer * 128 + 40] ^ 0xff;
    CHECK(pwrite(fd, &torn, 1, newer * 128 + 40) == 1, "anchor: tear the newer slot");
    s = open_anchored(dir, apath, CF_ANCHOR_CHECK, &st);
    CHECK_INT(st, CF_OK, "anchor: a torn slot falls back to the other one");
    if (s != NULL)
        cf_store_close(s);
    /* Both slots garbage: refused. */
    memset(slots, 0x5a, sizeof slots);
    CHECK(pwrite(fd, slots, sizeof slots, 0) == 256, "anchor: overwrite both slots");
    close(fd);
    s = open_anchored(dir, apath, CF_ANCHOR_CHECK, &st);
    CHECK_INT(st, CF_EROLLBACK, "anchor: an anchor that does not verify is refused");

    /* Another store's anchor. */
    char *other;
    struct cf_store *o = fresh(&other);
    char *oapath = cf_xasprintf("%s.anchor", other);
    if (o != NULL)
        cf_store_close(o);
    o = open_anchored(other, oapath, CF_ANCHOR_CHECK, &st);
    if (o != NULL)
        cf_store_close(o);
    s = open_anchored(dir, oapath, CF_ANCHOR_CHECK, &st);
    /* (Its MAC key comes from the other store's global key, so it does not even verify.) */
    CHECK_INT(st, CF_EROLLBACK, "anchor: another store's anchor is refused");

    /* The override: accept, then it opens normally, recording the store's head. */
    s = open_anchored(dir, apath, CF_ANCHOR_ACCEPT, &st);
    CHECK_INT(st, CF_OK, "anchor: accept");
    if (s != NULL) {
        CHECK(s->journal.head.seq == 0 && later > 0, "anchor: a new journal over the store as it is");
        struct seen x = check(s, NULL, NULL);
        CHECK_INT(x.n, 0, "anchor: and it agrees with the store");
        cf_store_close(s);
    }
    s = open_anchored(dir, apath, CF_ANCHOR_CHECK, &st);
    CHECK_INT(st, CF_OK, "anchor: after accept, a normal open");
    if (s != NULL)
        cf_store_close(s);
    /* A journal deleted from a store that had an anchor: refused, not silently restarted. */
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "anchor: unanchored open");
    if (s != NULL) {
        static const char lo[1] = {0}, hi[1] = {(char)0xff};
        struct cf_batch *b = cf_batch_new(s->eng);
        cf_batch_delete_range(b, CF_CF_JOURNAL, lo, 0, hi, 1);
        CHECK_INT(cf_db_write_raw(s, b, true), CF_OK, "anchor: the journal deleted");
        cf_batch_free(b);
        cf_store_close(s);
    }
    s = open_anchored(dir, apath, CF_ANCHOR_CHECK, &st);
    CHECK_INT(st, CF_EROLLBACK, "anchor: a store whose journal was deleted is refused");
    free(oapath);
    free(other);
    free(moved);
    free(apath);
    free(copy);
    free(dir);
}

int main(void)
{
    if (mkdtemp(g_base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    cf_key_random(&g_master);
    test_parse();
    test_clean();
    test_records();
    test_chain();
    test_trim_and_sum();
    test_group_commit();
    test_adopt();
    test_anchor();
    rm_rf(g_base);
    return tap_done();
}
