/*
 * test_davprop.c: WebDAV dead properties and lock records in the store (storage/davprop.h), on a real
 * store in a temporary directory: set/remove in order, the last op on a name winning, the empty
 * namespace and binary-looking values byte for byte; the per-node limits at N and N + 1 with nothing
 * applied past them; copy replacing the destination's; locks stored, listed, found by token (and not
 * by a token that differs by one byte, nor once expired), refreshed, deleted; expired locks dropped
 * by the next put; the per-node lock limit; and a purge of the node taking all of it with it.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "davprop.h"
#include "storage.h"
#include "tap.h"

static struct cf_key g_master;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static size_t count_props(struct cf_store *s, const struct cf_id *T, const struct cf_id *node)
{
    struct cf_davprop *p;
    size_t n;
    if (cf_davprop_list(s, T, node, &p, &n) != CF_OK)
        return (size_t)-1;
    cf_davprops_free(p, n);
    return n;
}

static void props(struct cf_store *s, const struct cf_id *T, const struct cf_id *a, const struct cf_id *b)
{
    static const char v1[] = "<n0:x xmlns:n0=\"urn:z\">one</n0:x>", v2[] = "<y>\xf0\x9d\x84\x9e</y>";
    struct cf_davprop_op ops[] = {
        {false, "urn:z", "x", "<n0:x xmlns:n0=\"urn:z\">old</n0:x>", 33},
        {false, "", "y", v2, sizeof v2 - 1},
        {false, "urn:z", "gone", "<n0:gone xmlns:n0=\"urn:z\"/>", 27},
        {true, "urn:z", "gone", NULL, 0},
        {false, "urn:z", "x", v1, sizeof v1 - 1},
        {true, "urn:z", "never-set", NULL, 0},
    };
    CHECK_INT(cf_davprop_apply(s, T, a, ops, 6), CF_OK, "set/remove in one batch");
    struct cf_davprop *p;
    size_t n;
    CHECK_INT(cf_davprop_list(s, T, a, &p, &n), CF_OK, "list");
    CHECK_INT(n, 2, "two left: the removed one is gone, the last set of x wins");
    bool x = false, y = false;
    for (size_t i = 0; i < n; i++) {
        x |= strcmp(p[i].ns, "urn:z") == 0 && strcmp(p[i].local, "x") == 0 && p[i].value_len == sizeof v1 - 1 &&
             memcmp(p[i].value, v1, sizeof v1 - 1) == 0;
        y |= strcmp(p[i].ns, "") == 0 && strcmp(p[i].local, "y") == 0 && p[i].value_len == sizeof v2 - 1 &&
             memcmp(p[i].value, v2, sizeof v2 - 1) == 0;
    }
    CHECK(x && y, "values byte for byte, the empty namespace kept");
    cf_davprops_free(p, n);

    /* Limits: 1024 properties, then one more refused with nothing applied. */
    struct cf_davprop_op *many = cf_xcalloc(CF_DAVPROP_MAX_PROPS + 1, sizeof *many);
    char (*names)[16] = cf_xcalloc(CF_DAVPROP_MAX_PROPS + 1, 16);
    for (unsigned i = 0; i <= CF_DAVPROP_MAX_PROPS; i++) {
        snprintf(names[i], 16, "p%u", i);
        many[i] = (struct cf_davprop_op){false, "urn:many", names[i], "<v/>", 4};
    }
    CHECK_INT(cf_davprop_apply(s, T, b, many, CF_DAVPROP_MAX_PROPS), CF_OK, "%u properties", CF_DAVPROP_MAX_PROPS);
    CHECK_INT(cf_davprop_apply(s, T, b, many + CF_DAVPROP_MAX_PROPS, 1), CF_ETOOBIG, "one more: refused");
    struct cf_davprop_op swap[2] = {{true, "urn:many", names[0], NULL, 0}, many[CF_DAVPROP_MAX_PROPS]};
    CHECK_INT(cf_davprop_apply(s, T, b, swap, 2), CF_OK, "remove one and add one in the same batch: fits");
    CHECK_INT(count_props(s, T, b), CF_DAVPROP_MAX_PROPS, "still at the limit");
    struct cf_davprop_op drop_all = {true, "urn:many", NULL, NULL, 0};
    for (unsigned i = 0; i <= CF_DAVPROP_MAX_PROPS; i++) {
        drop_all.local = names[i];
        if (cf_davprop_apply(s, T, b, &drop_all, 1) != CF_OK)
            break;
    }
    CHECK_INT(count_props(s, T, b), 0, "all removed");
    free(many);
    free(names);
    /* 1 MiB of values: 16 values of 64 KiB fit, one byte more does not. */
    size_t vl = CF_DAVPROP_MAX_BYTES / 16;
    char *big = cf_xmalloc(vl + 1);
    memset(big, 'v', vl);
    struct cf_davprop_op bigops[17];
    char bn[17][8];
    for (int i = 0; i < 17; i++) {
        snprintf(bn[i], sizeof bn[i], "b%d", i);
        bigops[i] = (struct cf_davprop_op){false, "urn:big", bn[i], big, vl};
    }
    CHECK_INT(cf_davprop_apply(s, T, b, bigops, 16), CF_OK, "1 MiB of values");
    bigops[16].value_len = 1;
    CHECK_INT(cf_davprop_apply(s, T, b, bigops + 16, 1), CF_ETOOBIG, "one byte more: refused");
    CHECK_INT(count_props(s, T, b), 16, "nothing applied");
    free(big);

    /* Copy: b's properties become a's (a's own are gone). */
    CHECK_INT(cf_davprop_copy(s, T, b, a), CF_OK, "copy");
    CHECK_INT(count_props(s, T, a), 16, "a has b's");
    CHECK_INT(count_props(s, T, b), 16, "b keeps its own");
}

static void fill_lock(struct cf_davlock *l, const struct cf_id *node, const struct cf_id *user, bool shared,
                      uint64_t expires, const char *token)
{
    memset(l, 0, sizeof *l);
    cf_id_new(&l->id);
    l->node = *node;
    l->creator = *user;
    snprintf(l->token, sizeof l->token, "%s", token);
    l->shared = shared;
    l->owner = cf_xstrdup("<D:owner xmlns:D=\"DAV:\">me</D:owner>");
    l->owner_len = strlen(l->owner);
    l->root = cf_xstrdup("/dav/private/a");
    l->created_at = 1000;
    l->timeout_s = 60;
    l->expires_at = expires;
}

static void locks(struct cf_store *s, const struct cf_id *T, const struct cf_id *a, const struct cf_id *user)
{
    struct cf_davlock l, got, *v;
    size_t n;
    fill_lock(&l, a, user, false, 100000, "opaquelocktoken:11111111-2222-4333-8444-555555555555");
    CHECK_INT(cf_davlock_put(s, T, &l, 1000), CF_OK, "put a lock");
    CHECK_INT(cf_davlock_list(s, T, a, 2000, &v, &n), CF_OK, "list");
    CHECK(n == 1 && cf_id_equal(&v[0].id, &l.id) && !v[0].shared && v[0].owner_len == l.owner_len &&
              strcmp(v[0].root, l.root) == 0 && cf_id_equal(&v[0].creator, user) && v[0].expires_at == 100000,
          "as stored");
    cf_davlocks_free(v, n);
    CHECK_INT(cf_davlock_by_token(s, T, l.token, strlen(l.token), 2000, &got), CF_OK, "by token");
    CHECK(cf_id_equal(&got.id, &l.id) && cf_id_equal(&got.node, a), "the same lock");
    cf_davlock_clear(&got);
    char other[] = "opaquelocktoken:11111111-2222-4333-8444-555555555556";
    CHECK_INT(cf_davlock_by_token(s, T, other, strlen(other), 2000, &got), CF_ENOTFOUND, "one byte off: none");
    CHECK_INT(cf_davlock_by_token(s, T, l.token, strlen(l.token), 100000, &got), CF_ENOTFOUND, "expired: none");
    CHECK_INT(cf_davlock_list(s, T, a, 100000, &v, &n), CF_OK, "list at expiry");
    CHECK_INT(n, 0, "expired locks are not listed");
    cf_davlocks_free(v, n);
    /* A refresh (same id) and a new lock that drops the expired one. */
    l.expires_at = 200000;
    CHECK_INT(cf_davlock_put(s, T, &l, 150000), CF_OK, "refresh");
    CHECK_INT(cf_davlock_by_token(s, T, l.token, strlen(l.token), 150000, &got), CF_OK, "live again");
    cf_davlock_clear(&got);
    struct cf_davlock m;
    fill_lock(&m, a, user, true, 500000, "opaquelocktoken:aaaaaaaa-2222-4333-8444-555555555555");
    CHECK_INT(cf_davlock_put(s, T, &m, 300000), CF_OK, "a new lock after the first expired");
    CHECK_INT(cf_davlock_list(s, T, a, 0, &v, &n), CF_OK, "list all, expired too");
    CHECK_INT(n, 1, "the expired one was dropped by the put");
    cf_davlocks_free(v, n);
    CHECK_INT(cf_davlock_by_token(s, T, l.token, strlen(l.token), 0, &got), CF_ENOTFOUND, "with its token entry");
    /* The per-node lock limit. */
    struct cf_davlock k;
    unsigned made = 1;
    for (unsigned i = 0; i < CF_DAVLOCK_MAX_PER_NODE + 1; i++) {
        char tok[64];
        snprintf(tok, sizeof tok, "opaquelocktoken:%08u-2222-4333-8444-555555555555", i);
        fill_lock(&k, a, user, true, 500000, tok);
        enum cf_status st = cf_davlock_put(s, T, &k, 300000);
        cf_davlock_clear(&k);
        if (st != CF_OK) {
            CHECK_INT(st, CF_ETOOBIG, "refused past the limit");
            break;
        }
        made++;
    }
    CHECK_INT(made, CF_DAVLOCK_MAX_PER_NODE, "%u live locks on one node at most", CF_DAVLOCK_MAX_PER_NODE);
    CHECK_INT(cf_davlock_delete(s, T, &m), CF_OK, "delete");
    CHECK_INT(cf_davlock_by_token(s, T, m.token, strlen(m.token), 300000, &got), CF_ENOTFOUND, "gone");
    cf_davlock_clear(&l);
    cf_davlock_clear(&m);
    struct cf_davlock bad;
    fill_lock(&bad, a, user, false, 1, "");
    CHECK_INT(cf_davlock_put(s, T, &bad, 0), CF_EINVAL, "an empty token is refused");
    cf_davlock_clear(&bad);
}

int main(void)
{
    char base[] = "/tmp/coffer-unit-davprop-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    cf_key_random(&g_master);
    char *dir = cf_xasprintf("%s/store", base);
    struct cf_store *s = NULL;
    struct cf_tenant t;
    struct cf_user u;
    memset(&t, 0, sizeof t);
    memset(&u, 0, sizeof u);
    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "create a store");
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "open it");
    if (s != NULL && cf_tenant_create(s, "acme", &t) == CF_OK) {
        u.tenant = t.id;
        u.username = cf_xstrdup("ann");
        u.role = CF_ROLE_MEMBER;
        u.status = CF_USER_ACTIVE;
        u.pwhash = cf_xstrdup("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g");
        CHECK_INT(cf_user_create(s, &u), CF_OK, "a user");
        struct cf_node fa, fb;
        CHECK_INT(cf_folder_create(s, &t.id, &u.private_root, "a", 1, &u.id, &fa), CF_OK, "folder a");
        CHECK_INT(cf_folder_create(s, &t.id, &u.private_root, "b", 1, &u.id, &fb), CF_OK, "folder b");
        props(s, &t.id, &fa.id, &fb.id);
        locks(s, &t.id, &fa.id, &u.id);
        /* Purge a: its properties and locks go with it. */
        CHECK_INT(cf_node_purge(s, &t.id, &fa.id), CF_OK, "purge a");
        CHECK_INT(count_props(s, &t.id, &fa.id), 0, "no property left");
        struct cf_davlock *v;
        size_t n = 99;
        CHECK(cf_davlock_list(s, &t.id, &fa.id, 0, &v, &n) == CF_OK && n == 0, "no lock left");
        cf_davlocks_free(v, n);
        CHECK_INT(count_props(s, &t.id, &fb.id), 16, "b untouched");
        cf_node_clear(&fa);
        cf_node_clear(&fb);
    } else {
        CHECK(false, "a tenant");
    }
    cf_store_close(s);
    cf_tenant_clear(&t);
    cf_user_clear(&u);
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return tap_done();
}
