/*
 * test_audit.c: the provenance chain of storage/audit.c on a fresh store in a temporary directory:
 * appends with explicit times, retention (cf_audit_purge_before and its checkpoint), verification
 * before and after a purge, scans through the log and through the node and actor indexes, the end
 * record of a transfer (cf_audit_end_of), and tampering with the `audit` and `audit_meta` column
 * families directly (delete, alter, swap, truncate, insert, head and checkpoint damage): every
 * change is found by cf_audit_verify, which names the exact first bad sequence number. Two tenants'
 * chains are independent.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_internal.h"
#include "tap.h"

static struct cf_key g_master;

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

/* ---- raw access to the column families ------------------------------------------------------------ */

static void ev_key(const struct cf_id *t, uint64_t seq, uint8_t key[24])
{
    memcpy(key, t->b, CF_ID_LEN);
    cf_put_be64(key + 16, seq);
}

/* The raw value of event seq (malloc'ed, *n its length), or NULL. */
static char *raw_get(struct cf_store *s, const struct cf_id *t, uint64_t seq, size_t *n)
{
    uint8_t key[24];
    char *v = NULL;
    ev_key(t, seq, key);
    if (cf_db_get(s, CF_CF_AUDIT, key, sizeof key, &v, n) != CF_OK)
        return NULL;
    return v;
}

static bool raw_put_cf(struct cf_store *s, enum cf_cf cf, const void *key, size_t klen, const void *val, size_t n)
{
    return cf_db_put(s, cf, key, klen, val, n, true) == CF_OK;
}

static bool raw_put(struct cf_store *s, const struct cf_id *t, uint64_t seq, const char *val, size_t n)
{
    uint8_t key[24];
    ev_key(t, seq, key);
    return raw_put_cf(s, CF_CF_AUDIT, key, sizeof key, val, n);
}

static bool raw_delete_cf(struct cf_store *s, enum cf_cf cf, const void *key, size_t klen)
{
    struct cf_batch *b = cf_batch_new(s->eng);
    cf_batch_delete(b, cf, key, klen);
    bool ok = cf_db_write(s, b, true) == CF_OK;
    cf_batch_free(b);
    return ok;
}

static bool raw_delete(struct cf_store *s, const struct cf_id *t, uint64_t seq)
{
    uint8_t key[24];
    ev_key(t, seq, key);
    return raw_delete_cf(s, CF_CF_AUDIT, key, sizeof key);
}

static char *meta_get(struct cf_store *s, const struct cf_id *t, char kind, size_t *n)
{
    uint8_t key[17];
    char *v = NULL;
    memcpy(key, t->b, CF_ID_LEN);
    key[16] = (uint8_t)kind;
    if (cf_db_get(s, CF_CF_AUDIT_META, key, sizeof key, &v, n) != CF_OK)
        return NULL;
    return v;
}

static bool meta_put(struct cf_store *s, const struct cf_id *t, char kind, const char *v, size_t n)
{
    uint8_t key[17];
    memcpy(key, t->b, CF_ID_LEN);
    key[16] = (uint8_t)kind;
    return raw_put_cf(s, CF_CF_AUDIT_META, key, sizeof key, v, n);
}

static bool meta_delete(struct cf_store *s, const struct cf_id *t, char kind)
{
    uint8_t key[17];
    memcpy(key, t->b, CF_ID_LEN);
    key[16] = (uint8_t)kind;
    return raw_delete_cf(s, CF_CF_AUDIT_META, key, sizeof key);
}

/* ---- helpers over the API ------------------------------------------------------------------------- */

/* Appends one event {"n": n} at time at (ms); node and actor indexed when given. Returns its seq. */
static uint64_t append1(struct cf_store *s, const struct cf_id *t, int n, uint64_t at, const struct cf_id *node,
                        const struct cf_id *actor, uint64_t began)
{
    char json[64];
    snprintf(json, sizeof json, "{\"n\":%d}", n);
    struct cf_audit_rec r = {.tenant = *t, .json = json, .len = strlen(json), .at = at, .began = began};
    if (node != NULL) {
        r.has_node = true;
        r.node = *node;
    }
    if (actor != NULL) {
        r.actor_kind = 1; /* CF_ACTOR_USER's code; storage treats it as opaque */
        r.actor = *actor;
    }
    uint64_t seq = 0;
    if (cf_audit_append(s, &r, 1, &seq) != CF_OK)
        return 0;
    return seq;
}

struct seqs {
    uint64_t v[64];
    int n[64];
    size_t len;
};

static bool collect(void *ctx, const struct cf_audit_event *e)
{
    struct seqs *q = ctx;
    if (q->len < 64) {
        q->v[q->len] = e->seq;
        q->n[q->len] = -1;
        sscanf(e->json, "{\"n\":%d}", &q->n[q->len]);
        q->len++;
    }
    return true;
}

/* "10,9,8" */
static void seq_list(const struct seqs *q, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < q->len && o + 24 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%llu", i == 0 ? "" : ",", (unsigned long long)q->v[i]);
}

static void scan_list(struct cf_store *s, const struct cf_id *t, enum cf_audit_by by, uint8_t kind,
                      const struct cf_id *id, uint64_t before, char *out, size_t cap, enum cf_status *st)
{
    struct seqs q = {0};
    uint64_t next = 0;
    *st = cf_audit_scan(s, t, by, kind, id, before, 1000, collect, &q, &next);
    seq_list(&q, out, cap);
}

/* Verify and compare: status, count (on success) or bad seq (on failure). */
static void expect_verify(struct cf_store *s, const struct cf_id *t, enum cf_status want, uint64_t want_n,
                          const char *what)
{
    uint64_t count = 99999, bad = 99999;
    const char *why = NULL;
    enum cf_status st = cf_audit_verify(s, t, &count, &bad, &why);
    CHECK_STR(cf_status_name(st), cf_status_name(want), "%s: verify status", what);
    if (want == CF_OK) {
        CHECK_INT(count, want_n, "%s: verify counts %llu events", what, (unsigned long long)want_n);
    } else {
        CHECK_INT(bad, want_n, "%s: verify names event %llu", what, (unsigned long long)want_n);
        CHECK(why != NULL && why[0] != '\0', "%s: verify gives a reason (%s)", what, why ? why : "(null)");
    }
}

/* ---- the tests -------------------------------------------------------------------------------------- */

static void test_append_purge(struct cf_store *s, const struct cf_id *A, const struct cf_id *node,
                              const struct cf_id *actor)
{
    char got[512];
    enum cf_status st;
    uint64_t count = 0, bad = 0, purged = 77;
    const char *why = NULL;

    CHECK_INT(cf_audit_verify(s, A, &count, &bad, &why), CF_OK, "empty chain verifies");
    CHECK_INT(count, 0, "empty chain: 0 events");

    /* 10 events at 1000..10000 ms; odd ones about node, even ones by actor. */
    bool seq_ok = true;
    for (int i = 1; i <= 10; i++)
        seq_ok = seq_ok && append1(s, A, i, (uint64_t)i * 1000, i % 2 ? node : NULL, i % 2 ? NULL : actor, 0) ==
                               (uint64_t)i;
    CHECK(seq_ok, "10 appends get seqs 1..10");
    expect_verify(s, A, CF_OK, 10, "10 events");

    /* A batch of several events for one tenant gets consecutive seqs. */
    scan_list(s, A, CF_AUDIT_ALL, 0, NULL, 0, got, sizeof got, &st);
    CHECK_INT(st, CF_OK, "scan all");
    CHECK_STR(got, "10,9,8,7,6,5,4,3,2,1", "scan is newest first");
    scan_list(s, A, CF_AUDIT_ALL, 0, NULL, 6, got, sizeof got, &st);
    CHECK_STR(got, "5,4,3,2,1", "scan below seq 6");
    scan_list(s, A, CF_AUDIT_BY_NODE, 0, node, 0, got, sizeof got, &st);
    CHECK_STR(got, "9,7,5,3,1", "scan by node");
    scan_list(s, A, CF_AUDIT_BY_ACTOR, 1, actor, 0, got, sizeof got, &st);
    CHECK_STR(got, "10,8,6,4,2", "scan by actor");

    /* Nothing older than the first event: nothing purged, no checkpoint. */
    CHECK_INT(cf_audit_purge_before(s, A, 1000, &purged), CF_OK, "purge before 1000");
    CHECK_INT(purged, 0, "purge before the oldest event removes nothing");
    size_t n;
    char *cp = meta_get(s, A, 'c', &n);
    CHECK(cp == NULL, "no checkpoint when nothing was purged");
    free(cp);

    CHECK_INT(cf_audit_purge_before(s, A, 5500, &purged), CF_OK, "purge before 5500");
    CHECK_INT(purged, 5, "5 events purged (at 1000..5000)");
    expect_verify(s, A, CF_OK, 5, "after the purge");
    scan_list(s, A, CF_AUDIT_ALL, 0, NULL, 0, got, sizeof got, &st);
    CHECK_STR(got, "10,9,8,7,6", "scan after the purge: seqs 10..6");
    scan_list(s, A, CF_AUDIT_BY_NODE, 0, node, 0, got, sizeof got, &st);
    CHECK_STR(got, "9,7", "node index after the purge");
    scan_list(s, A, CF_AUDIT_BY_ACTOR, 1, actor, 0, got, sizeof got, &st);
    CHECK_STR(got, "10,8,6", "actor index after the purge");
    struct cf_audit_event e;
    CHECK_INT(cf_audit_get(s, A, 5, &e), CF_ENOTFOUND, "a purged event is gone");
    CHECK_INT(cf_audit_get(s, A, 6, &e), CF_OK, "the oldest kept event is there");
    CHECK_STR(e.json, "{\"n\":6}", "its content");
    cf_audit_event_clear(&e);

    CHECK_INT(cf_audit_purge_before(s, A, 5500, &purged), CF_OK, "purge again");
    CHECK_INT(purged, 0, "a second purge at the same cut removes nothing");
    expect_verify(s, A, CF_OK, 5, "after a second purge");

    /* Appends continue the chain past the checkpoint. */
    seq_ok = true;
    for (int i = 11; i <= 13; i++)
        seq_ok = seq_ok && append1(s, A, i, (uint64_t)i * 1000, i == 11 ? node : NULL, NULL, 0) == (uint64_t)i;
    CHECK(seq_ok, "3 more appends get seqs 11..13");
    expect_verify(s, A, CF_OK, 8, "after 3 more");
    scan_list(s, A, CF_AUDIT_ALL, 0, NULL, 0, got, sizeof got, &st);
    CHECK_STR(got, "13,12,11,10,9,8,7,6", "scan: 13..6");
}

static void test_end_record(struct cf_store *s, const struct cf_id *B, const struct cf_id *node)
{
    struct cf_audit_event e;
    uint64_t began = append1(s, B, 100, 50000, node, NULL, 0);
    CHECK(began != 0, "a began event");
    CHECK_INT(cf_audit_end_of(s, B, began, &e), CF_ENOTFOUND, "no end record yet → CF_ENOTFOUND");
    uint64_t end = append1(s, B, 101, 51000, node, NULL, began);
    CHECK_INT(end, began + 1, "the end record");
    CHECK_INT(cf_audit_end_of(s, B, began, &e), CF_OK, "cf_audit_end_of finds it");
    CHECK_INT(e.seq, end, "the end record's seq");
    CHECK_STR(e.json, "{\"n\":101}", "the end record's content");
    cf_audit_event_clear(&e);
}

/* Each case changes the store, checks verify, then puts everything back and checks verify again. */
static void test_tamper(struct cf_store *s, const struct cf_id *A, const struct cf_id *B, uint64_t b_count)
{
    size_t n7, n8, n9, n13, n6;
    char *v7 = raw_get(s, A, 7, &n7), *v8 = raw_get(s, A, 8, &n8), *v9 = raw_get(s, A, 9, &n9);
    char *v13 = raw_get(s, A, 13, &n13), *v6 = raw_get(s, A, 6, &n6);
    CHECK(v6 && v7 && v8 && v9 && v13, "raw values of events 6, 7, 8, 9, 13");
    if (!(v6 && v7 && v8 && v9 && v13))
        goto out;
    CHECK(n8 > 40, "an event value is MAC(32) ‖ sealed record");

    /* delete a middle event */
    CHECK(raw_delete(s, A, 8), "delete event 8");
    expect_verify(s, A, CF_ECORRUPT, 8, "event 8 deleted");
    expect_verify(s, B, CF_OK, b_count, "tenant B while A's event 8 is deleted");
    CHECK(raw_put(s, A, 8, v8, n8), "restore event 8");
    expect_verify(s, A, CF_OK, 8, "event 8 restored");

    /* alter one byte of the sealed record */
    for (size_t off = 32; off < n9; off += (n9 - 32) / 3 + 1) {
        char *x = cf_xmalloc(n9);
        memcpy(x, v9, n9);
        x[off] ^= 0x01;
        char what[64];
        snprintf(what, sizeof what, "event 9 altered at byte %zu", off);
        CHECK(raw_put(s, A, 9, x, n9), "flip byte %zu of event 9", off);
        expect_verify(s, A, CF_ECORRUPT, 9, what);
        free(x);
    }
    char *last = cf_xmalloc(n9);
    memcpy(last, v9, n9);
    last[n9 - 1] ^= 0x80;
    CHECK(raw_put(s, A, 9, last, n9), "flip the last byte (GCM tag) of event 9");
    expect_verify(s, A, CF_ECORRUPT, 9, "event 9's tag altered");
    free(last);
    CHECK(raw_put(s, A, 9, v9, n9 - 1), "truncate event 9 by one byte");
    expect_verify(s, A, CF_ECORRUPT, 9, "event 9 truncated");
    CHECK(raw_put(s, A, 9, v9, n9), "restore event 9");
    expect_verify(s, A, CF_OK, 8, "event 9 restored");

    /* alter the MAC */
    char *m = cf_xmalloc(n7);
    memcpy(m, v7, n7);
    m[3] ^= 0x10;
    CHECK(raw_put(s, A, 7, m, n7), "flip a byte of event 7's MAC");
    expect_verify(s, A, CF_ECORRUPT, 7, "event 7's MAC altered");
    free(m);
    CHECK(raw_put(s, A, 7, v7, n7), "restore event 7");

    /* swap two events */
    CHECK(raw_put(s, A, 7, v9, n9) && raw_put(s, A, 9, v7, n7), "swap events 7 and 9");
    expect_verify(s, A, CF_ECORRUPT, 7, "events 7 and 9 swapped");
    CHECK(raw_put(s, A, 7, v8, n8) && raw_put(s, A, 8, v7, n7) && raw_put(s, A, 9, v9, n9), "swap events 7 and 8");
    expect_verify(s, A, CF_ECORRUPT, 7, "events 7 and 8 swapped");
    CHECK(raw_put(s, A, 7, v7, n7) && raw_put(s, A, 8, v8, n8), "restore 7 and 8");
    expect_verify(s, A, CF_OK, 8, "swaps undone");

    /* truncate the tail (the head still says 13) */
    CHECK(raw_delete(s, A, 13), "delete the last event (13)");
    expect_verify(s, A, CF_ECORRUPT, 13, "last event deleted");
    CHECK(raw_put(s, A, 13, v13, n13), "restore event 13");

    /* insert past the head: a copy of event 6 as event 14 */
    CHECK(raw_put(s, A, 14, v6, n6), "insert a copy of event 6 as event 14");
    expect_verify(s, A, CF_ECORRUPT, 14, "event 14 inserted past the head");
    CHECK(raw_delete(s, A, 14), "remove event 14");

    /* insert below the retention checkpoint: a copy of event 6 as event 3 */
    CHECK(raw_put(s, A, 3, v6, n6), "insert a copy of event 6 as (purged) event 3");
    expect_verify(s, A, CF_ECORRUPT, 3, "event 3 inserted before the checkpoint");
    CHECK(raw_delete(s, A, 3), "remove event 3");
    expect_verify(s, A, CF_OK, 8, "insertions undone");

    /* the head */
    size_t hn;
    char *h = meta_get(s, A, 'h', &hn);
    CHECK(h != NULL && hn == 72, "the head is seq ‖ mac ‖ head MAC (72 bytes)");
    if (h != NULL) {
        char *x = cf_xmalloc(hn);
        for (size_t off = 0; off < hn; off += 71) {
            memcpy(x, h, hn);
            x[off] ^= 0x01;
            CHECK(meta_put(s, A, 'h', x, hn), "flip byte %zu of the head", off);
            uint64_t count, bad;
            const char *why;
            CHECK_INT(cf_audit_verify(s, A, &count, &bad, &why), CF_ECORRUPT, "altered head byte %zu → CF_ECORRUPT",
                      off);
        }
        /* a head claiming one event less, with the (unforgeable) head MAC of the real one */
        memcpy(x, h, hn);
        cf_put_be64((uint8_t *)x, 12);
        CHECK(meta_put(s, A, 'h', x, hn), "head seq rewound to 12");
        uint64_t count, bad;
        const char *why;
        CHECK_INT(cf_audit_verify(s, A, &count, &bad, &why), CF_ECORRUPT, "rewound head → CF_ECORRUPT");
        CHECK(meta_delete(s, A, 'h'), "delete the head");
        CHECK_INT(cf_audit_verify(s, A, &count, &bad, &why), CF_ECORRUPT, "deleted head → CF_ECORRUPT");
        /* deleting the head and the last event together: still found (the chain goes past an empty head) */
        CHECK(raw_delete(s, A, 13), "and the last event");
        CHECK_INT(cf_audit_verify(s, A, &count, &bad, &why), CF_ECORRUPT, "deleted head and last event → CF_ECORRUPT");
        CHECK(raw_put(s, A, 13, v13, n13), "restore event 13");
        free(x);
        CHECK(meta_put(s, A, 'h', h, hn), "restore the head");
        expect_verify(s, A, CF_OK, 8, "head restored");
        free(h);
    }

    /* the retention checkpoint */
    size_t cn;
    char *c = meta_get(s, A, 'c', &cn);
    CHECK(c != NULL, "the retention checkpoint exists");
    if (c != NULL) {
        char *x = cf_xmalloc(cn);
        memcpy(x, c, cn);
        x[cn / 2] ^= 0x04;
        CHECK(meta_put(s, A, 'c', x, cn), "flip a byte of the checkpoint");
        uint64_t count, bad;
        const char *why;
        CHECK_INT(cf_audit_verify(s, A, &count, &bad, &why), CF_ECORRUPT, "altered checkpoint → CF_ECORRUPT");
        free(x);
        CHECK(meta_delete(s, A, 'c'), "delete the checkpoint");
        expect_verify(s, A, CF_ECORRUPT, 1, "deleted checkpoint: events 1..5 missing");
        CHECK(meta_put(s, A, 'c', c, cn), "restore the checkpoint");
        expect_verify(s, A, CF_OK, 8, "checkpoint restored");
        free(c);
    }

    /* moving an event between tenants: B's copy of A's event 9 under B's next seq */
    CHECK(raw_put(s, B, b_count + 1, v9, n9), "A's event 9 put into tenant B's chain");
    expect_verify(s, B, CF_ECORRUPT, b_count + 1, "tenant B with a foreign event");
    expect_verify(s, A, CF_OK, 8, "tenant A unaffected");
    CHECK(raw_delete(s, B, b_count + 1), "remove it");
    expect_verify(s, B, CF_OK, b_count, "tenant B restored");

out:
    free(v6);
    free(v7);
    free(v8);
    free(v9);
    free(v13);
}

int main(void)
{
    char base[] = "/tmp/coffer-unit-audit-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    cf_key_random(&g_master);
    char *dir = cf_xasprintf("%s/store", base);
    struct cf_store *s = NULL;
    struct cf_tenant a, b;
    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "create a store");
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "open it");
    if (s == NULL)
        return tap_done();
    CHECK_INT(cf_tenant_create(s, "alpha", &a), CF_OK, "tenant alpha");
    CHECK_INT(cf_tenant_create(s, "bravo", &b), CF_OK, "tenant bravo");
    struct cf_id node, actor;
    cf_id_new(&node);
    cf_id_new(&actor);

    /* bravo's chain starts first: alpha's seqs still start at 1. */
    uint64_t b_count = 0;
    for (int i = 1; i <= 4; i++)
        b_count += append1(s, &b.id, 200 + i, (uint64_t)i * 1000, NULL, NULL, 0) == (uint64_t)i;
    CHECK_INT(b_count, 4, "tenant bravo: seqs 1..4, independent of alpha");

    test_append_purge(s, &a.id, &node, &actor);
    test_end_record(s, &b.id, &node);
    b_count += 2;
    expect_verify(s, &b.id, CF_OK, b_count, "tenant bravo after its transfer");

    /* Tamper cases on alpha's events 6..13 (1..5 purged, a checkpoint at 6). */
    test_tamper(s, &a.id, &b.id, b_count);

    /* one batch for both tenants: each chain advances by its own events */
    struct cf_audit_rec recs[3] = {
        {.tenant = a.id, .json = "{\"n\":14}", .len = 8, .at = 14000},
        {.tenant = b.id, .json = "{\"n\":300}", .len = 9, .at = 14000},
        {.tenant = a.id, .json = "{\"n\":15}", .len = 8, .at = 15000},
    };
    uint64_t seqs[3] = {0};
    CHECK_INT(cf_audit_append(s, recs, 3, seqs), CF_OK, "a batch over two tenants");
    CHECK(seqs[0] == 14 && seqs[1] == b_count + 1 && seqs[2] == 15, "batch seqs: alpha 14, bravo %llu, alpha 15",
          (unsigned long long)b_count + 1);
    b_count++;
    expect_verify(s, &a.id, CF_OK, 10, "alpha after the batch");
    expect_verify(s, &b.id, CF_OK, b_count, "bravo after the batch");

    /* The chain survives a reopen (heads are reloaded from audit_meta). */
    cf_store_close(s);
    s = NULL;
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "reopen");
    if (s != NULL) {
        expect_verify(s, &a.id, CF_OK, 10, "alpha after a reopen");
        CHECK_INT(append1(s, &a.id, 16, 16000, NULL, NULL, 0), 16, "append after a reopen continues at 16");
        expect_verify(s, &a.id, CF_OK, 11, "alpha after the append");
        uint64_t purged = 0;
        CHECK_INT(cf_audit_purge_before(s, &a.id, 8500, &purged), CF_OK, "a second purge, later cut");
        CHECK_INT(purged, 3, "events 6..8 purged");
        expect_verify(s, &a.id, CF_OK, 8, "verify after the second purge (checkpoint moved)");
        expect_verify(s, &b.id, CF_OK, b_count, "bravo untouched by alpha's purge");
        cf_store_close(s);
    }
    cf_tenant_clear(&a);
    cf_tenant_clear(&b);
    free(dir);
    rm_rf(base);
    cf_key_wipe(&g_master);
    return tap_done();
}
