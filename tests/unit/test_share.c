/*
 * test_share.c: share links' byte budgets and suspension in the store (storage/share.c), on a fresh
 * store in a temporary directory: the tally arithmetic (saturating), draws against a file link's
 * budget (exact fit, refusals that reserve nothing, the download figure), give-backs and the capped
 * resume credit, a folder link's per-member budgets and totals, revoked/expired/suspended links,
 * records written before byte budgets (legacy), and a member tally copied onto another member's key.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "tap.h"

#define MIB ((uint64_t)CF_CHUNK_SIZE)
#define NOW 1700000000000ull

static struct cf_key g_master;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A link on node (a file or a folder) of tenant, as cf_h_share_create makes one. */
static void new_link(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *node, uint64_t max,
                     bool legacy, uint64_t legacy_downloads, struct cf_id *out)
{
    struct cf_share sh;
    memset(&sh, 0, sizeof sh);
    cf_id_new(&sh.id);
    sh.tenant = *tenant;
    sh.node = *node;
    cf_id_new(&sh.creator);
    sh.permission = CF_SHARE_DOWNLOAD;
    sh.created_at = NOW;
    sh.expires_at = NOW + 3600000;
    sh.max_downloads = max;
    sh.budget_legacy = legacy; /* written as a record from before byte budgets (no tally tags) */
    sh.downloads = legacy_downloads;
    sh.token = cf_xstrdup("token-text");
    cf_random(sh.token_hash, sizeof sh.token_hash);
    sh.code = cf_xstrdup("ABCD");
    cf_random(sh.code_mac, sizeof sh.code_mac);
    CHECK_INT(cf_share_create(s, &sh), CF_OK, "create a link (max %llu%s)", (unsigned long long)max, legacy ? ", legacy" : "");
    *out = sh.id;
    cf_share_clear(&sh);
}

static void get(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id, struct cf_share *out)
{
    if (cf_share_get(s, tenant, id, out) != CF_OK) {
        CHECK(false, "read the link back");
        memset(out, 0, sizeof *out);
    }
}

static void test_tally(void)
{
    struct cf_share_tally t = {0, 0};
    CHECK(cf_share_tally_left(0, 5000, &t) == UINT64_MAX, "no limit: UINT64_MAX left");
    CHECK_INT(cf_share_tally_left(2, 5000, &t), 10000, "budget 2 × 5000");
    CHECK_INT(cf_share_tally_downloads(5000, &t), 0, "nothing served: figure 0");
    t.served = 1;
    CHECK_INT(cf_share_tally_downloads(5000, &t), 1, "one byte: figure 1 (rounded up)");
    t.served = 5000;
    CHECK_INT(cf_share_tally_downloads(5000, &t), 1, "one size: figure 1");
    t.served = 5001;
    CHECK_INT(cf_share_tally_downloads(5000, &t), 2, "one size and a byte: figure 2");
    t.credit = 1;
    CHECK_INT(cf_share_tally_downloads(5000, &t), 1, "credit is not counted");
    CHECK_INT(cf_share_tally_left(1, 5000, &t), 0, "over the budget: 0 left, never negative");
    t.served = 0;
    t.credit = 7;
    CHECK_INT(cf_share_tally_downloads(5000, &t), 0, "served below credit: figure 0");
    CHECK_INT(cf_share_tally_left(1, 0, &t), 7, "an empty file: only the credit");
    CHECK_INT(cf_share_tally_downloads(0, &t), 0, "an empty file: figure 0");
    t.served = 0;
    t.credit = MIB;
    CHECK(cf_share_tally_left(1000000, UINT64_MAX / 2, &t) == UINT64_MAX, "max × size saturates");
}

static void test_file_link(struct cf_store *s, const struct cf_id *T)
{
    struct cf_id node, id;
    struct cf_share sh;
    bool counted = true;
    cf_id_new(&node);
    new_link(s, T, &node, 1, false, 0, &id);
    get(s, T, &id, &sh);
    CHECK(!sh.budget_legacy && sh.bytes_served == 0 && sh.bytes_credit == 0 && sh.suspended_at == 0, "a new link: empty tally");
    cf_share_clear(&sh);

    CHECK_INT(cf_share_draw(s, T, &id, &node, 1000, 600, NOW, &counted), CF_OK, "draw 600 of 1000");
    CHECK(counted, "the figure rose to 1");
    CHECK_INT(cf_share_draw(s, T, &id, &node, 1000, 401, NOW, &counted), CF_EEXHAUSTED, "401 more do not fit in 400");
    CHECK(!counted, "a refusal counts nothing");
    CHECK_INT(cf_share_draw(s, T, &id, &node, 1000, 0, NOW, &counted), CF_OK, "a 0-byte response draws nothing");
    CHECK_INT(cf_share_draw(s, T, &id, &node, 1000, 400, NOW, &counted), CF_OK, "exactly the 400 left");
    CHECK(!counted, "the figure stays 1");
    CHECK_INT(cf_share_draw(s, T, &id, &node, 1000, 1, NOW, &counted), CF_EEXHAUSTED, "one byte past the budget");
    get(s, T, &id, &sh);
    CHECK_INT(sh.bytes_served, 1000, "served: 1000 (refusals reserved nothing)");
    CHECK_INT(sh.downloads, 1, "stored figure 1");
    cf_share_clear(&sh);
    CHECK_INT(cf_share_draw(s, T, &id, &node, 1000, 10, NOW + 3600000, &counted), CF_EEXPIRED, "expired first");

    /* A cut transfer: 3 MiB drawn, 1 MiB handed over: 2 MiB back, 1 MiB resume credit. */
    struct cf_id big;
    new_link(s, T, &node, 1, false, 0, &big);
    CHECK_INT(cf_share_draw(s, T, &big, &node, 3 * MIB, 3 * MIB, NOW, &counted), CF_OK, "draw a whole 3 MiB file");
    CHECK_INT(cf_share_give_back(s, T, &big, &node, 3 * MIB, 2 * MIB, MIB), CF_OK, "give back 2 MiB unsent");
    get(s, T, &big, &sh);
    CHECK_INT(sh.bytes_served, MIB, "served: what was handed over");
    CHECK_INT(sh.bytes_credit, MIB, "credit: 1 MiB");
    CHECK_INT(sh.downloads, 0, "figure 0 (1 MiB served, 1 MiB credit)");
    struct cf_share_tally t;
    cf_share_tally_of(&sh, 3 * MIB, &t);
    CHECK_INT(cf_share_tally_left(1, 3 * MIB, &t), 3 * MIB, "3 MiB left: the resume from 1 MiB fits");
    cf_share_clear(&sh);
    CHECK_INT(cf_share_draw(s, T, &big, &node, 3 * MIB, 2 * MIB, NOW, &counted), CF_OK, "resume: 2 MiB");
    CHECK_INT(cf_share_give_back(s, T, &big, &node, 3 * MIB, 2 * MIB - 5, 5), CF_OK, "cut again after 5 bytes");
    get(s, T, &big, &sh);
    CHECK_INT(sh.bytes_credit, MIB, "the credit never passes 1 MiB over the link's life");
    CHECK_INT(sh.bytes_served, MIB + 5, "served: 1 MiB + 5");
    cf_share_clear(&sh);
}

static void test_folder_link(struct cf_store *s, const struct cf_id *T)
{
    struct cf_id folder, m1, m2, id;
    struct cf_share sh;
    struct cf_share_tally t;
    bool counted;
    cf_id_new(&folder);
    cf_id_new(&m1);
    cf_id_new(&m2);
    new_link(s, T, &folder, 1, false, 0, &id);
    CHECK_INT(cf_share_draw(s, T, &id, &m1, 3000, 3000, NOW, &counted), CF_OK, "member 1: its whole size");
    CHECK(counted, "member 1 counted");
    CHECK_INT(cf_share_draw(s, T, &id, &m1, 3000, 1, NOW, &counted), CF_EEXHAUSTED, "member 1 spent");
    CHECK_INT(cf_share_draw(s, T, &id, &m2, 2000, 1000, NOW, &counted), CF_OK, "member 2 has its own budget");
    CHECK_INT(cf_share_draw(s, T, &id, &m2, 2000, 1000, NOW, &counted), CF_OK, "member 2: the rest");
    CHECK(!counted, "the second half of member 2 does not raise the figure");
    CHECK_INT(cf_share_member_tally(s, T, &id, &m1, &t), CF_OK, "member 1 tally");
    CHECK_INT(t.served, 3000, "member 1 served 3000");
    CHECK_INT(cf_share_member_tally(s, T, &id, &folder, &t), CF_OK, "a member that drew nothing");
    CHECK_INT(t.served, 0, "zeros");
    get(s, T, &id, &sh);
    CHECK_INT(sh.bytes_served, 5000, "the link's total");
    CHECK_INT(sh.downloads, 2, "the figures summed: 1 + 1");
    CHECK_INT(sh.bytes_credit, 0, "no credit on the link itself");
    cf_share_clear(&sh);
    CHECK_INT(cf_share_give_back(s, T, &id, &m2, 2000, 1000, 0), CF_OK, "member 2 gives back 1000");
    get(s, T, &id, &sh);
    CHECK_INT(sh.bytes_served, 4000, "the total follows");
    CHECK_INT(sh.downloads, 2, "member 2 still counts 1");
    cf_share_clear(&sh);

    /* A member's tally copied onto another member's key fails authentication. */
    uint8_t k1[48], k2[48];
    char *val;
    size_t vlen;
    cf_key2(k1, T, &id);
    memcpy(k1 + 32, m1.b, CF_ID_LEN);
    cf_key2(k2, T, &id);
    memcpy(k2 + 32, m2.b, CF_ID_LEN);
    CHECK_INT(cf_db_get(s, CF_CF_SHARES, k1, sizeof k1, &val, &vlen), CF_OK, "member 1's sealed tally");
    CHECK_INT(cf_db_put(s, CF_CF_SHARES, k2, sizeof k2, val, vlen, true), CF_OK, "copied onto member 2's key");
    free(val);
    CHECK_INT(cf_share_member_tally(s, T, &id, &m2, &t), CF_ECORRUPT, "the copy is refused");
    CHECK_INT(cf_share_draw(s, T, &id, &m2, 2000, 1, NOW, &counted), CF_ECORRUPT, "and so is a draw on it");
}

static void test_states(struct cf_store *s, const struct cf_id *T)
{
    struct cf_id node, id;
    struct cf_share sh;
    bool counted, changed;
    cf_id_new(&node);
    new_link(s, T, &node, 0, false, 0, &id);
    CHECK_INT(cf_share_set_suspended(s, T, &id, true, NOW, &changed), CF_OK, "suspend");
    CHECK(changed, "changed");
    CHECK_INT(cf_share_set_suspended(s, T, &id, true, NOW + 5, &changed), CF_OK, "suspend again");
    CHECK(!changed, "idempotent");
    get(s, T, &id, &sh);
    CHECK_INT(sh.suspended_at, NOW, "suspended_at kept from the first time");
    cf_share_clear(&sh);
    CHECK_INT(cf_share_draw(s, T, &id, &node, 10, 10, NOW, &counted), CF_ESUSPENDED, "a suspended link draws nothing");
    CHECK_INT(cf_share_set_suspended(s, T, &id, false, NOW, &changed), CF_OK, "restore");
    CHECK(changed, "restored");
    CHECK_INT(cf_share_draw(s, T, &id, &node, 10, 10, NOW, &counted), CF_OK, "then it draws");
    CHECK_INT(cf_share_revoke(s, T, &id), CF_OK, "revoke");
    CHECK_INT(cf_share_set_suspended(s, T, &id, true, NOW, &changed), CF_OK, "suspending a revoked link");
    CHECK(!changed, "leaves it as it is");
    CHECK_INT(cf_share_draw(s, T, &id, &node, 10, 10, NOW, &counted), CF_EREVOKED, "a revoked link draws nothing");
    struct cf_id nobody;
    cf_id_new(&nobody);
    CHECK_INT(cf_share_draw(s, T, &nobody, &node, 10, 10, NOW, &counted), CF_ENOTFOUND, "no such link");
}

static void test_legacy(struct cf_store *s, const struct cf_id *T)
{
    struct cf_id node, id, folder, member, done;
    struct cf_share sh;
    struct cf_share_tally t;
    bool counted, changed;
    cf_id_new(&node);
    /* A file link from before byte budgets with 1 of 2 downloads counted. */
    new_link(s, T, &node, 2, true, 1, &id);
    get(s, T, &id, &sh);
    CHECK(sh.budget_legacy, "read back as legacy (no tally in the record)");
    cf_share_tally_of(&sh, 700, &t);
    CHECK_INT(t.served, 700, "its count taken as downloads × size");
    CHECK(!cf_share_legacy_exhausted(&sh), "not exhausted");
    cf_share_clear(&sh);
    CHECK_INT(cf_share_set_suspended(s, T, &id, true, NOW, &changed), CF_OK, "suspend a legacy link");
    CHECK_INT(cf_share_set_suspended(s, T, &id, false, NOW, &changed), CF_OK, "restore it");
    get(s, T, &id, &sh);
    CHECK(sh.budget_legacy, "still legacy after writes that do not know the size");
    cf_share_clear(&sh);
    CHECK_INT(cf_share_draw(s, T, &id, &node, 700, 701, NOW, &counted), CF_EEXHAUSTED, "701 of the 700 left");
    CHECK_INT(cf_share_draw(s, T, &id, &node, 700, 700, NOW, &counted), CF_OK, "the second download");
    get(s, T, &id, &sh);
    CHECK(!sh.budget_legacy, "converted by the draw");
    CHECK_INT(sh.bytes_served, 1400, "served 2 × 700");
    CHECK_INT(sh.downloads, 2, "figure 2");
    cf_share_clear(&sh);

    /* A folder link from before byte budgets that had used up its count stays exhausted. */
    cf_id_new(&folder);
    cf_id_new(&member);
    new_link(s, T, &folder, 2, true, 2, &done);
    get(s, T, &done, &sh);
    CHECK(cf_share_legacy_exhausted(&sh), "exhausted by its old count");
    cf_share_clear(&sh);
    CHECK_INT(cf_share_draw(s, T, &done, &member, 100, 1, NOW, &counted), CF_EEXHAUSTED, "no member draws");
}

int main(void)
{
    char base[] = "/tmp/coffer-unit-share-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    cf_key_random(&g_master);
    char *dir = cf_xasprintf("%s/store", base);
    struct cf_store *s = NULL;
    struct cf_tenant t;
    memset(&t, 0, sizeof t);
    test_tally();
    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "create a store");
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "open it");
    if (s != NULL && cf_tenant_create(s, "acme", &t) == CF_OK) {
        test_file_link(s, &t.id);
        test_folder_link(s, &t.id);
        test_states(s, &t.id);
        test_legacy(s, &t.id);
    } else {
        CHECK(false, "a tenant");
    }
    cf_store_close(s);
    cf_tenant_clear(&t);
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return tap_done();
}
