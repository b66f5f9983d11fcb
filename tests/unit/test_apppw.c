/*
 * test_apppw.c: the store side of app passwords (issue 22, storage/ident.c): the keyed hash (a
 * function of tenant key and secret: another tenant, another secret, another hash; no plaintext in
 * it), cf_app_password_put's per-user limit (counted under the lock, other users and other session
 * kinds not counted), cf_session_touch (records the use; not on a deleted session: a use recorded
 * after a revocation cannot bring it back, also from many threads racing a delete_all), and that
 * login-session trimming leaves app passwords alone.
 */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void mkpw(struct cf_store *s, const struct cf_id *T, const struct cf_id *U, const char *secret,
                 struct cf_session *ss)
{
    memset(ss, 0, sizeof *ss);
    CHECK_INT(cf_app_password_hash(s, T, secret, strlen(secret), ss->hash), CF_OK, "hash %s", secret);
    cf_id_new(&ss->id);
    ss->tenant = *T;
    ss->user = *U;
    ss->flags = CF_SESSION_APP_PASSWORD;
    ss->name = (char *)"device";
    ss->created_at = 1000;
    ss->expires_at = UINT64_MAX;
}

static size_t count(struct cf_store *s, const struct cf_id *T, const struct cf_id *U, unsigned flag)
{
    struct cf_session *all;
    size_t n, k = 0;
    if (cf_session_list(s, T, U, &all, &n) != CF_OK)
        return SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        k += (all[i].flags & flag) != 0;
        cf_session_clear(&all[i]);
    }
    free(all);
    return k;
}

struct racer {
    struct cf_store *s;
    uint8_t hash[CF_SHA256_LEN];
};

static void *touch_loop(void *arg)
{
    struct racer *r = arg;
    for (uint64_t i = 1; i <= 200; i++) {
        enum cf_status st = cf_session_touch(r->s, r->hash, 2000 + i, "10.0.0.1");
        if (st != CF_OK && st != CF_ENOTFOUND)
            return (void *)1;
    }
    return NULL;
}

static void run(struct cf_store *s, const struct cf_id *T, const struct cf_id *T2)
{
    struct cf_id U, V;
    cf_id_new(&U);
    cf_id_new(&V);
    uint8_t h1[CF_SHA256_LEN], h2[CF_SHA256_LEN], h3[CF_SHA256_LEN];
    const char *sec = "abcdefghjkmnpqrstuvwxyz2";
    CHECK_INT(cf_app_password_hash(s, T, sec, 24, h1), CF_OK, "hash");
    CHECK_INT(cf_app_password_hash(s, T, sec, 24, h2), CF_OK, "hash again");
    CHECK(memcmp(h1, h2, sizeof h1) == 0, "the hash is a function of key and secret");
    CHECK_INT(cf_app_password_hash(s, T2, sec, 24, h3), CF_OK, "hash in another tenant");
    CHECK(memcmp(h1, h3, sizeof h1) != 0, "another tenant's key, another hash");
    CHECK_INT(cf_app_password_hash(s, T, "abcdefghjkmnpqrstuvwxyz3", 24, h3), CF_OK, "another secret");
    CHECK(memcmp(h1, h3, sizeof h1) != 0, "another secret, another hash");
    uint8_t plain[CF_SHA256_LEN];
    cf_sha256(sec, 24, plain);
    CHECK(memcmp(h1, plain, sizeof h1) != 0, "not a plain SHA-256");
    struct cf_id gone;
    cf_id_new(&gone);
    CHECK_INT(cf_app_password_hash(s, &gone, sec, 24, h3), CF_ENOTFOUND, "unknown tenant");

    /* The limit: 3 here; another user's and a login session do not count. */
    struct cf_session ss[4], other, login;
    char name[32];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "secret-%d", i);
        mkpw(s, T, &U, name, &ss[i]);
    }
    mkpw(s, T, &V, "secret-v", &other);
    CHECK_INT(cf_app_password_put(s, &other, 3), CF_OK, "another user's");
    login = other;
    login.user = U;
    login.flags = 0;
    cf_id_new(&login.id);
    login.hash[0] ^= 1;
    login.expires_at = 5000;
    CHECK_INT(cf_session_put(s, &login), CF_OK, "a login session");
    for (int i = 0; i < 3; i++)
        CHECK_INT(cf_app_password_put(s, &ss[i], 3), CF_OK, "app password %d", i);
    CHECK_INT(cf_app_password_put(s, &ss[3], 3), CF_EEXIST, "the fourth: over the limit");
    CHECK_INT(cf_session_get(s, ss[3].hash, &(struct cf_session){0}), CF_ENOTFOUND, "nothing written");
    CHECK(count(s, T, &U, CF_SESSION_APP_PASSWORD) == 3, "three stored");

    /* Touch records the use. */
    struct cf_session got;
    CHECK_INT(cf_session_get(s, ss[0].hash, &got), CF_OK, "get");
    CHECK(got.last_used_at == 0 && got.last_used_ip == NULL, "never used");
    cf_session_clear(&got);
    CHECK_INT(cf_session_touch(s, ss[0].hash, 1500, "192.0.2.7"), CF_OK, "touch");
    CHECK_INT(cf_session_get(s, ss[0].hash, &got), CF_OK, "get after touch");
    CHECK(got.last_used_at == 1500 && got.last_used_ip != NULL && strcmp(got.last_used_ip, "192.0.2.7") == 0 &&
              (got.flags & CF_SESSION_APP_PASSWORD) != 0 && got.name != NULL && strcmp(got.name, "device") == 0,
          "last use recorded, the rest kept");
    cf_session_clear(&got);
    CHECK_INT(cf_session_touch(s, ss[0].hash, 1400, "192.0.2.8"), CF_OK, "an older touch");
    CHECK_INT(cf_session_get(s, ss[0].hash, &got), CF_OK, "get");
    CHECK(got.last_used_at == 1500 && strcmp(got.last_used_ip, "192.0.2.7") == 0, "never goes back");
    cf_session_clear(&got);

    /* Trimming login sessions leaves app passwords. */
    size_t ended = 99;
    CHECK_INT(cf_session_trim(s, T, &U, 0, &ended), CF_OK, "trim to 0 login sessions");
    CHECK(count(s, T, &U, CF_SESSION_APP_PASSWORD) == 3, "app passwords not trimmed");

    /* A revoked one stays revoked: touch after delete, and touches racing a delete_all. */
    CHECK_INT(cf_session_delete_by_id(s, T, &U, &ss[0].id), CF_OK, "revoke");
    CHECK_INT(cf_session_touch(s, ss[0].hash, 1600, "192.0.2.9"), CF_ENOTFOUND, "touch after revoke");
    CHECK_INT(cf_session_get(s, ss[0].hash, &got), CF_ENOTFOUND, "still gone");
    struct racer r = {.s = s};
    memcpy(r.hash, ss[1].hash, sizeof r.hash);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, touch_loop, &r);
    CHECK_INT(cf_session_delete_all(s, T, &U, NULL), CF_OK, "delete_all while touches run");
    for (int i = 0; i < 4; i++) {
        void *bad = NULL;
        pthread_join(th[i], &bad);
        CHECK(bad == NULL, "touch %d: only CF_OK or CF_ENOTFOUND", i);
    }
    CHECK_INT(cf_session_get(s, ss[1].hash, &got), CF_ENOTFOUND, "not brought back by a racing touch");
    CHECK_INT(cf_session_get(s, ss[2].hash, &got), CF_ENOTFOUND, "all ended");
    CHECK(count(s, T, &U, CF_SESSION_APP_PASSWORD) == 0, "none listed");
    CHECK(count(s, T, &V, CF_SESSION_APP_PASSWORD) == 1, "the other user's kept");
    CHECK_INT(cf_app_password_put(s, &ss[3], 3), CF_OK, "room again");
}

int main(void)
{
    char base[] = "/tmp/coffer-unit-apppw-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    cf_key_random(&g_master);
    char *dir = cf_xasprintf("%s/store", base);
    struct cf_store *s = NULL;
    struct cf_tenant t, t2;
    memset(&t, 0, sizeof t);
    memset(&t2, 0, sizeof t2);
    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "create a store");
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "open it");
    if (s != NULL && cf_tenant_create(s, "acme", &t) == CF_OK && cf_tenant_create(s, "beta", &t2) == CF_OK)
        run(s, &t.id, &t2.id);
    else
        CHECK(false, "tenants");
    cf_store_close(s);
    cf_tenant_clear(&t);
    cf_tenant_clear(&t2);
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return tap_done();
}
