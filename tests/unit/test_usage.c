/*
 * test_usage.c: quota usage counters in the store (storage/usage.c) on a fresh store: what counts
 * (current sizes, charged to the file's owner and the tenant; a new version by someone else charges
 * the owner the difference; trash counts; purge frees), the commit's quota decision under the lock
 * (CF_EQUOTA with the numbers, nothing written), the pure decision's edges, a tenant without
 * counters (computed on read, all written at the first change), and cf_usage_verify finding and
 * repairing a counter that disagrees with the files.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "tap.h"
#include "usage.h"

static struct cf_key g_master;
static const struct cf_scan_summary g_scan = {.result = (char *)"clean", .engine = (char *)"test", .at = 1};

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static enum cf_status put(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *parent, const char *name,
                          size_t size, enum cf_conflict oc, const struct cf_id *uploader, const struct cf_quota *q,
                          struct cf_quota_refusal *why, struct cf_node *out)
{
    struct cf_upload *u;
    uint8_t *data = cf_xcalloc(1, size + 1);
    enum cf_status st = cf_upload_begin(s, tenant, &u);
    if (st != CF_OK) {
        free(data);
        return st;
    }
    memset(data, 'x', size);
    if ((st = cf_upload_put_chunk(u, 0, data, size, true)) == CF_OK) {
        struct cf_commit c;
        memset(&c, 0, sizeof c);
        c.parent = *parent;
        c.name = name;
        c.name_len = strlen(name);
        c.on_conflict = oc;
        c.uploader = *uploader;
        c.size = size;
        cf_sha256(data, size, c.sha256);
        c.mime = "application/x-test";
        c.scan = &g_scan;
        c.quota = q;
        c.refused = why;
        st = cf_upload_commit(u, &c, out);
    }
    if (st != CF_OK)
        cf_upload_abort(u);
    cf_upload_free(u);
    free(data);
    return st;
}

static void usage_is(struct cf_store *s, const struct cf_id *T, const struct cf_id *user, uint64_t want_user,
                     uint64_t want_tenant, const char *what)
{
    uint64_t mine = 99, total = 99;
    CHECK_INT(cf_usage_get(s, T, user, &mine, &total), CF_OK, "%s: read", what);
    CHECK(mine == want_user && total == want_tenant, "%s: user %llu (want %llu), tenant %llu (want %llu)", what,
          (unsigned long long)mine, (unsigned long long)want_user, (unsigned long long)total,
          (unsigned long long)want_tenant);
}

static void user(struct cf_store *s, const struct cf_id *T, const char *name, struct cf_user *u)
{
    memset(u, 0, sizeof *u);
    u->tenant = *T;
    u->username = cf_xstrdup(name);
    u->role = CF_ROLE_MEMBER;
    u->status = CF_USER_ACTIVE;
    u->pwhash = cf_xstrdup("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g");
    CHECK_INT(cf_user_create(s, u), CF_OK, "user %s", name);
}

static void decide(void)
{
    struct cf_quota q = {.user_bytes = 100, .tenant_bytes = 1000};
    struct cf_quota_refusal r;
    CHECK_INT(cf_quota_decide(&q, 40, 500, 60, &r), CF_OK, "decide: exactly up to the user limit");
    CHECK_INT(cf_quota_decide(&q, 40, 500, 61, &r), CF_EQUOTA, "decide: one byte over");
    CHECK(!r.tenant && r.quota == 100 && r.used == 40 && r.needed == 61, "decide: the user's numbers");
    CHECK_INT(cf_quota_decide(&q, 0, 990, 11, &r), CF_EQUOTA, "decide: the tenant's limit");
    CHECK(r.tenant && r.quota == 1000 && r.used == 990 && r.needed == 11, "decide: the tenant's numbers");
    CHECK_INT(cf_quota_decide(&q, 500, 5000, 0, &r), CF_OK, "decide: nothing more needed always fits");
    CHECK_INT(cf_quota_decide(&q, 500, 5000, -10, &r), CF_OK, "decide: a shrinking version always fits");
    CHECK_INT(cf_quota_decide(&q, 150, 500, 1, &r), CF_EQUOTA, "decide: already over (used > quota)");
    CHECK_INT(cf_quota_decide(NULL, 1u << 30, 1u << 30, 1 << 30, &r), CF_OK, "decide: no quota");
    struct cf_quota none = {0};
    CHECK_INT(cf_quota_decide(&none, UINT64_MAX - 1, UINT64_MAX - 1, INT64_MAX, &r), CF_OK, "decide: zeros are none");
}

static void counting(struct cf_store *s, const struct cf_id *T)
{
    struct cf_user a, b;
    struct cf_node n1, n2, tmp;
    struct cf_quota_refusal why;
    user(s, T, "ann", &a);
    user(s, T, "ben", &b);
    usage_is(s, T, &a.id, 0, 0, "fresh tenant (computed, none stored)");
    CHECK_INT(put(s, T, &a.private_root, "one.bin", 1000, CF_CONFLICT_FAIL, &a.id, NULL, NULL, &n1), CF_OK, "ann uploads");
    usage_is(s, T, &a.id, 1000, 1000, "after one file");
    usage_is(s, T, &b.id, 0, 1000, "ben holds nothing");

    struct cf_quota q = {.user_bytes = 1500};
    memset(&why, 0, sizeof why);
    CHECK_INT(put(s, T, &a.private_root, "two.bin", 600, CF_CONFLICT_FAIL, &a.id, &q, &why, &tmp), CF_EQUOTA,
              "the commit refuses past the user's quota");
    CHECK(!why.tenant && why.quota == 1500 && why.used == 1000 && why.needed == 600, "with the numbers");
    struct cf_id id;
    CHECK_INT(cf_node_find_child(s, T, &a.private_root, "two.bin", 7, &id), CF_ENOTFOUND, "nothing was committed");
    usage_is(s, T, &a.id, 1000, 1000, "unchanged by the refusal");
    CHECK_INT(put(s, T, &a.private_root, "two.bin", 500, CF_CONFLICT_FAIL, &a.id, &q, &why, &n2), CF_OK,
              "exactly up to the quota");
    usage_is(s, T, &a.id, 1500, 1500, "at the quota");

    /* ben writes a new version of ann's file (in her space, as a grant would allow): ann pays. */
    CHECK_INT(put(s, T, &a.private_root, "one.bin", 1200, CF_CONFLICT_REPLACE, &b.id, &q, &why, &tmp), CF_EQUOTA,
              "a bigger version is charged to the owner, who is at her quota");
    CHECK(why.used == 1500 && why.needed == 200, "only the difference is needed");
    CHECK_INT(put(s, T, &a.private_root, "one.bin", 300, CF_CONFLICT_REPLACE, &b.id, &q, &why, &tmp), CF_OK,
              "a smaller version fits at the quota");
    CHECK_INT(tmp.version, 2, "version 2");
    cf_node_clear(&tmp);
    usage_is(s, T, &a.id, 800, 800, "old versions do not count");
    usage_is(s, T, &b.id, 0, 800, "the uploader of a version pays nothing");

    CHECK_INT(cf_node_trash(s, T, &n2.id), CF_OK, "trash two.bin");
    usage_is(s, T, &a.id, 800, 800, "the trash counts");
    CHECK_INT(cf_node_purge(s, T, &n2.id), CF_OK, "purge it");
    usage_is(s, T, &a.id, 300, 300, "purge frees");

    uint64_t checked, wrong;
    CHECK_INT(cf_usage_verify(s, T, false, &checked, &wrong), CF_OK, "verify");
    CHECK(checked >= 2 && wrong == 0, "verify: %llu counters, %llu wrong", (unsigned long long)checked,
          (unsigned long long)wrong);

    /* A counter that disagrees (written behind the store's back): named, then repaired. */
    struct cf_usage_delta d = {0};
    const struct cf_tkeys *tk;
    CHECK_INT(cf_tkeys_get(s, T, &tk), CF_OK, "tenant keys");
    cf_usage_delta_add(&d, &b.id, 4242);
    struct cf_batch *bt = cf_batch_new(s->eng);
    pthread_mutex_lock(&s->ns_lock);
    CHECK_INT(cf_usage_batch(s, tk, &d, bt), CF_OK, "a wrong change into a batch");
    CHECK_INT(cf_db_write(s, bt, true), CF_OK, "written");
    pthread_mutex_unlock(&s->ns_lock);
    cf_batch_free(bt);
    cf_usage_delta_clear(&d);
    CHECK_INT(cf_usage_verify(s, T, false, &checked, &wrong), CF_OK, "verify again");
    CHECK_INT(wrong, 2, "ben's counter and the tenant's total are named");
    CHECK_INT(cf_usage_verify(s, T, true, &checked, &wrong), CF_OK, "repair");
    CHECK_INT(cf_usage_verify(s, T, false, &checked, &wrong), CF_OK, "verify after the repair");
    CHECK_INT(wrong, 0, "nothing wrong after the repair");
    usage_is(s, T, &b.id, 0, 300, "ben back to 0");

    cf_node_clear(&n1);
    cf_node_clear(&n2);
    cf_user_clear(&a);
    cf_user_clear(&b);
}

int main(void)
{
    char base[] = "/tmp/coffer-unit-usage-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    cf_key_random(&g_master);
    char *dir = cf_xasprintf("%s/store", base);
    struct cf_store *s = NULL;
    struct cf_tenant t;
    memset(&t, 0, sizeof t);
    decide();
    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "create a store");
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "open it");
    if (s != NULL && cf_tenant_create(s, "acme", &t) == CF_OK)
        counting(s, &t.id);
    else
        CHECK(false, "a tenant");
    cf_store_close(s);
    cf_tenant_clear(&t);
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return tap_done();
}
