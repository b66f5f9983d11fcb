/*
 * test_blob_rados.c: the RADOS blob store (storage/engine/blob_rados.c) against a throw-away Ceph
 * (1 monitor + 3 memstore OSDs, cephx, pool size 3 / min_size 2) that tests/unit/blob_rados.sh starts
 * with scripts/ceph-local.sh and stops after. It checks:
 *   - the blob contract (blob_contract.h, the same checks test_store.c runs over RocksDB), large blobs;
 *   - a whole store with its chunks in RADOS: files round-trip, nothing lands in the engine's chunks
 *     keyspace, and a dump of the pool (every object's name and bytes) holds no planted marker;
 *   - every OSD (and the monitor) stopped: calls fail with an "Unavailable" error within the
 *     configured op_timeout instead of hanging, the store answers CF_EUNAVAIL (503) and is still
 *     writable once the cluster is back;
 *   - one OSD killed: puts and gets go on.
 * Environment (blob_rados.sh): COFFER_CEPH_DIR (the cluster's directory: env, ceph.conf, keyrings),
 * COFFER_CEPH_LOCAL (scripts/ceph-local.sh).
 */
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"
#include "tap.h"
#include "blob_contract.h"

static struct cf_key g_master;
static const struct cf_scan_summary g_scan = {
    .result = (char *)"clean", .engine = (char *)"ClamAV test", .database = (char *)"0123abcd", .at = 1234};
static const char *g_dir, *g_script;
static char g_conf[512], g_keyring[512];

#define POOL "coffer"
#define USER "coffer"
#define MARKER "PLANTED-MARKER-7f3q"

/* ---- helpers -------------------------------------------------------------------------------- */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The value of NAME in the cluster's env file (NAME='value' lines), malloc'ed; NULL if absent. */
static char *env_get(const char *name)
{
    char path[600], line[1024];
    snprintf(path, sizeof path, "%s/env", g_dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *out = NULL;
    size_t nl = strlen(name);
    while (out == NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, name, nl) != 0 || line[nl] != '=' || line[nl + 1] != '\'')
            continue;
        char *v = line + nl + 2, *end = strrchr(v, '\'');
        if (end != NULL)
            *end = 0;
        out = cf_xstrdup(v);
    }
    fclose(f);
    return out;
}

/* The OSDs as the env file lists them: ids and pids, n of each. */
static size_t osds(int ids[8], pid_t pids[8])
{
    char *i = env_get("CEPH_OSD_IDS"), *p = env_get("CEPH_OSD_PIDS");
    size_t n = 0;
    char *si = NULL, *sp = NULL;
    for (char *a = strtok_r(i, " ", &si), *b = strtok_r(p, " ", &sp); a != NULL && b != NULL && n < 8;
         a = strtok_r(NULL, " ", &si), b = strtok_r(NULL, " ", &sp), n++) {
        ids[n] = atoi(a);
        pids[n] = (pid_t)atol(b);
    }
    free(i);
    free(p);
    return n;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    fflush(stdout);
    int rc = system(cmd);
    return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* Waits (without a deadline of its own: meson's timeout bounds the test) until pid has exited. */
static void wait_gone(pid_t pid)
{
    while (kill(pid, 0) == 0 || errno != ESRCH) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static struct cf_rados_conf conf_with(unsigned timeout)
{
    struct cf_rados_conf c = {g_conf, POOL, USER, g_keyring, timeout};
    return c;
}

static struct cf_blobs *open_blobs(unsigned timeout, const char *what)
{
    struct cf_rados_conf c = conf_with(timeout);
    struct cf_blobs *b = NULL;
    char *err = NULL;
    int rc = cf_blobs_open_rados(&c, &b, &err);
    CHECK_INT(rc, CF_ENG_OK, "%s: open the pool", what);
    if (rc != CF_ENG_OK) {
        tap_diag("", err);
        cf_eng_free(err);
    }
    return b;
}

static uint8_t *make_data(size_t n, uint32_t seed)
{
    uint8_t *p = cf_xmalloc(n == 0 ? 1 : n);
    uint32_t x = seed * 2654435761u ^ 0x9e3779b9u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)(x >> 8);
    }
    return p;
}

static uint32_t nchunks(uint64_t size)
{
    return size == 0 ? 1 : (uint32_t)((size + CF_CHUNK_SIZE - 1) / CF_CHUNK_SIZE);
}

static enum cf_status put_file(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *parent,
                               const char *name, const uint8_t *data, size_t size, struct cf_node *out)
{
    struct cf_upload *u;
    struct cf_id who;
    cf_id_new(&who);
    enum cf_status st = cf_upload_begin(s, tenant, &u);
    if (st != CF_OK)
        return st;
    uint32_t n = nchunks(size);
    for (uint32_t i = 0; i < n; i++) {
        size_t off = (size_t)i * CF_CHUNK_SIZE;
        size_t len = size - off < CF_CHUNK_SIZE ? size - off : CF_CHUNK_SIZE;
        if ((st = cf_upload_put_chunk(u, i, data + off, len, i == n - 1)) != CF_OK)
            goto fail;
    }
    struct cf_commit c;
    memset(&c, 0, sizeof c);
    c.parent = *parent;
    c.name = name;
    c.name_len = strlen(name);
    c.on_conflict = CF_CONFLICT_FAIL;
    c.uploader = who;
    c.size = size;
    cf_sha256(data, size, c.sha256);
    c.mime = "text/plain";
    c.scan = &g_scan;
    if ((st = cf_upload_commit(u, &c, out)) != CF_OK)
        goto fail;
    cf_upload_free(u);
    return CF_OK;
fail:
    cf_upload_abort(u);
    cf_upload_free(u);
    return st;
}

/* Reads a whole file back: CF_OK if it matches data, else the first failing status (CF_EINVAL: the
 * bytes differ). */
static enum cf_status read_back(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *file,
                                const uint8_t *data, size_t size)
{
    struct cf_reader *r;
    enum cf_status st = cf_reader_open(s, tenant, file, 0, &r);
    if (st != CF_OK)
        return st;
    if (cf_reader_size(r) != size)
        st = CF_EINVAL;
    uint8_t *buf = cf_xmalloc(CF_CHUNK_SIZE);
    size_t off = 0;
    for (uint32_t i = 0; st == CF_OK && i < cf_reader_chunk_count(r); i++) {
        size_t len = SIZE_MAX;
        if ((st = cf_reader_chunk(r, i, buf, &len)) != CF_OK)
            break;
        if (len > size - off || memcmp(buf, data + off, len) != 0)
            st = CF_EINVAL;
        off += len;
    }
    free(buf);
    cf_reader_free(r);
    return st == CF_OK && off != size ? CF_EINVAL : st;
}

static struct cf_store *open_store(const char *name, unsigned timeout)
{
    char *dir = cf_xasprintf("%s/%s", g_dir, name);
    struct cf_store_rados sr = {g_conf, POOL, USER, g_keyring, timeout, NULL};
    struct cf_store *s = NULL;
    cf_store_rados = &sr;
    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "%s: create a store with its chunks in RADOS", name);
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "%s: open it", name);
    cf_store_rados = NULL;
    free(dir);
    return s;
}

static size_t engine_chunks(struct cf_store *s)
{
    size_t n = 0;
    struct cf_eiter *it = cf_eiter_open(s->eng, CF_CF_CHUNKS, NULL, 0, NULL, 0);
    for (cf_eiter_seek_to_first(it); cf_eiter_valid(it); cf_eiter_next(it))
        n++;
    cf_eiter_close(it);
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the contract, large blobs, bad configurations ----------------------------------------- */

static void test_contract(void)
{
    struct cf_blobs *b = open_blobs(60, "contract");
    if (b == NULL)
        return;
    CHECK(!cf_blobs_ordered(b), "rados: not ordered with the metadata engine (marks are written synced)");
    /* Objects that are not blobs of ours (another writer's, or a key misplaced into another tenant's
     * namespace) are neither listed nor deleted. */
    char foreign[CF_BLOB_KEY_LEN * 2 + 1];
    static const char ns1[] = "01010101010101010101010101010101";
    for (size_t i = 0; i < CF_BLOB_KEY_LEN; i++)
        memcpy(foreign + 2 * i, "02", 2);
    foreign[sizeof foreign - 1] = 0;
    CHECK_INT(run("rados --conf '%s' -p %s put not-a-key '%s' && rados --conf '%s' -p %s -N %s put %s '%s'", g_conf,
                  POOL, g_conf, g_conf, POOL, ns1, foreign, g_conf),
              0, "rados: two foreign objects put beside ours");
    blob_contract(b, "rados");
    CHECK_INT(run("rados --conf '%s' -p %s stat not-a-key >/dev/null && rados --conf '%s' -p %s -N %s stat %s >/dev/null",
                  g_conf, POOL, g_conf, POOL, ns1, foreign),
              0, "rados: the foreign objects were left alone");
    CHECK_INT(run("rados --conf '%s' -p %s rm not-a-key && rados --conf '%s' -p %s -N %s rm %s", g_conf, POOL, g_conf,
                  POOL, ns1, foreign),
              0, "rados: remove them");

    /* Larger than the first read (1 MiB + 64 KiB): read again at its size; then a smaller one in the
     * same thread's view buffer. */
    size_t big = 3 * CF_CHUNK_SIZE + 7;
    uint8_t *d = make_data(big, 11), key[CF_BLOB_KEY_LEN];
    char *err = NULL, *v = NULL;
    size_t vl = 0;
    blob_contract_key(3, 3, 0, key);
    CHECK_INT(cf_blob_put(b, key, d, big, &err), CF_ENG_OK, "rados: put a 3 MiB blob");
    CHECK_INT(cf_blob_get(b, key, &v, &vl, &err), CF_ENG_OK, "rados: get it");
    CHECK(v != NULL && vl == big && memcmp(v, d, big) == 0, "rados: every byte of it");
    cf_eng_free(v);
    struct blob_view_seen seen;
    memset(&seen, 0, sizeof seen);
    CHECK_INT(cf_blob_view(b, key, blob_view_note, &seen, &err), CF_ENG_OK, "rados: view it");
    CHECK(seen.calls == 1 && seen.len == big && memcmp(seen.first, d, sizeof seen.first) == 0,
          "rados: the view has its length and bytes");
    CHECK_INT(cf_blob_delete_tenant(b, key, &err), CF_ENG_OK, "rados: delete it");

    /* Throughput on this mini cluster (1 MiB blobs, one thread, size-3 pool): printed, not asserted. */
    enum { N = 32 };
    double t0 = now_s();
    bool ok = true;
    for (uint32_t i = 0; i < N && ok; i++) {
        blob_contract_key(4, 4, i, key);
        ok = cf_blob_put(b, key, d, CF_CHUNK_SIZE, &err) == CF_ENG_OK;
    }
    double t1 = now_s();
    for (uint32_t i = 0; i < N && ok; i++) {
        blob_contract_key(4, 4, i, key);
        v = NULL;
        ok = cf_blob_get(b, key, &v, &vl, &err) == CF_ENG_OK && vl == CF_CHUNK_SIZE;
        cf_eng_free(v);
    }
    double t2 = now_s();
    CHECK(ok, "rados: %d puts and gets of 1 MiB", N);
    printf("# rados 1 MiB blobs, one thread: put %.1f MB/s, get %.1f MB/s\n",
           N * (double)CF_CHUNK_SIZE / 1e6 / (t1 - t0), N * (double)CF_CHUNK_SIZE / 1e6 / (t2 - t1));
    CHECK_INT(cf_blob_delete_tenant(b, key, &err), CF_ENG_OK, "rados: delete them");
    free(d);
    cf_blobs_close(b);

    /* Bad configurations: clear errors, not "unavailable", no hang. */
    struct cf_rados_conf c = conf_with(10);
    struct cf_blobs *x = NULL;
    c.pool = "no-such-pool";
    CHECK_INT(cf_blobs_open_rados(&c, &x, &err), CF_ENG_ERR, "rados: an unknown pool is refused");
    CHECK(x == NULL && err != NULL && strstr(err, "pool") != NULL && !cf_blob_unavailable(err),
          "rados: saying it is the pool");
    cf_eng_free(err);
    c = conf_with(10);
    c.pool = "";
    CHECK_INT(cf_blobs_open_rados(&c, &x, &err), CF_ENG_ERR, "rados: no pool is refused");
    cf_eng_free(err);
    c = conf_with(10);
    char wrong[600];
    snprintf(wrong, sizeof wrong, "%s/keyring", g_dir); /* client.admin's and mon.'s: not client.coffer */
    c.keyring = wrong;
    CHECK_INT(cf_blobs_open_rados(&c, &x, &err), CF_ENG_ERR, "rados: a keyring without the user's key is refused");
    cf_eng_free(err);
}

/* ---- a store over RADOS: round trip, no plaintext in the pool ------------------------------- */

/* Every object of the pool, dumped by the admin (scripts/ceph-local.sh dump): names hex, placed in
 * their tenant's namespace, and no marker in a name or in the bytes. Returns the object count. */
static size_t check_dump(const char *what)
{
    char out[600], path[1200], line[512];
    snprintf(out, sizeof out, "%s/dump", g_dir);
    CHECK_INT(run("'%s' dump '%s' %s '%s' >&2", g_script, g_dir, POOL, out), 0, "%s: dump the pool", what);
    snprintf(path, sizeof path, "%s/list", out);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = 0, bad_names = 0, marked = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *tab = strchr(line, '\t'), *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = 0;
        if (tab == NULL) {
            bad_names++;
            continue;
        }
        *tab = 0;
        const char *ns = line, *name = tab + 1;
        n++;
        bool hexname = strlen(name) == 2 * CF_BLOB_KEY_LEN && strspn(name, "0123456789abcdef") == strlen(name);
        if (!hexname || strlen(ns) != 32 || strncmp(ns, name, 32) != 0)
            bad_names++;
        if (strstr(name, MARKER) != NULL || strstr(ns, MARKER) != NULL)
            marked++;
        snprintf(path, sizeof path, "%s/%s/%s", out, ns[0] != 0 ? ns : "-", name);
        FILE *o = fopen(path, "rb");
        if (o == NULL) {
            marked++;
            continue;
        }
        static char buf[4 << 20];
        size_t got = fread(buf, 1, sizeof buf, o);
        fclose(o);
        if (memmem(buf, got, MARKER, strlen(MARKER)) != NULL)
            marked++;
    }
    fclose(f);
    CHECK_INT(bad_names, 0, "%s: every object is named by a hex key in its tenant's namespace", what);
    CHECK_INT(marked, 0, "%s: no object's name or bytes hold the planted marker", what);
    nftw(out, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return n;
}

static void test_store(struct cf_store *s, struct cf_tenant *t, struct cf_node *f, uint8_t **data, size_t *size)
{
    *size = CF_CHUNK_SIZE + 100;
    uint8_t *d = *data = cf_xmalloc(*size);
    for (size_t i = 0; i < *size; i++)
        d[i] = (uint8_t)MARKER[i % strlen(MARKER)];
    CHECK(!cf_blobs_ordered(s->blobs), "store: its chunk store is RADOS");
    CHECK_INT(cf_tenant_create(s, "radost", t), CF_OK, "store: a tenant");
    CHECK_INT(put_file(s, &t->id, &t->root, MARKER "-name.txt", d, *size, f), CF_OK, "store: upload two chunks");
    CHECK_INT(read_back(s, &t->id, &f->id, d, *size), CF_OK, "store: read back byte for byte");
    struct blob_listing l;
    CHECK_INT(blob_list_count(s->blobs, t->id.b, CF_BLOB_TENANT_LEN, &l), 2, "store: two chunk objects in RADOS");
    CHECK_INT(engine_chunks(s), 0, "store: none in the engine's chunks keyspace");
    /* The contract's two leftovers and these two. */
    CHECK_INT(check_dump("store"), 4, "store: the pool holds four objects");
}

/* ---- one OSD down; every OSD stalled -------------------------------------------------------- */

static void test_one_osd_down(struct cf_store *s, const struct cf_tenant *t)
{
    int ids[8];
    pid_t pids[8];
    size_t n = osds(ids, pids);
    CHECK_INT(n, 3, "osd down: three OSDs");
    if (n != 3)
        return;
    CHECK_INT(kill(pids[0], SIGKILL), 0, "osd down: kill osd.%d", ids[0]);
    wait_gone(pids[0]);
    size_t size = 2 * CF_CHUNK_SIZE + 5;
    uint8_t *d = make_data(size, 5);
    struct cf_node f;
    memset(&f, 0, sizeof f);
    CHECK_INT(put_file(s, &t->id, &t->root, "while-one-osd-is-down.bin", d, size, &f), CF_OK,
              "osd down: an upload succeeds");
    CHECK_INT(read_back(s, &t->id, &f.id, d, size), CF_OK, "osd down: and reads back");
    CHECK_INT(run("'%s' osd-start '%s' %d >&2", g_script, g_dir, ids[0]), 0, "osd down: osd.%d restarted", ids[0]);
    CHECK_INT(read_back(s, &t->id, &f.id, d, size), CF_OK, "osd down: still reads back after its return");
    cf_node_clear(&f);
    free(d);
}

static void signal_cluster(int sig)
{
    int ids[8];
    pid_t pids[8];
    size_t n = osds(ids, pids);
    for (size_t i = 0; i < n; i++)
        kill(pids[i], sig);
    char *mon = env_get("CEPH_MON_PID");
    if (mon != NULL)
        kill((pid_t)atol(mon), sig);
    free(mon);
}

static void test_stalled(void)
{
    enum { TIMEOUT = 5 };
    struct cf_blobs *b = open_blobs(TIMEOUT, "stalled");
    struct cf_store *s = open_store("stalled-store", TIMEOUT);
    if (b == NULL || s == NULL)
        goto out;
    struct cf_tenant t2;
    memset(&t2, 0, sizeof t2);
    CHECK_INT(cf_tenant_create(s, "stalled", &t2), CF_OK, "stalled: a tenant on a store with op_timeout %ds", TIMEOUT);
    uint8_t *d = make_data(1000, 9);
    struct cf_node g, h;
    memset(&g, 0, sizeof g);
    memset(&h, 0, sizeof h);
    CHECK_INT(put_file(s, &t2.id, &t2.root, "before.bin", d, 1000, &g), CF_OK, "stalled: an upload before");

    signal_cluster(SIGSTOP); /* every OSD and the monitor: nothing answers, nothing is marked down */
    uint8_t key[CF_BLOB_KEY_LEN];
    char *err = NULL, *v = NULL;
    size_t vl;
    blob_contract_key(5, 5, 0, key);
    CHECK_INT(cf_blob_put(b, key, "x", 1, &err), CF_ENG_ERR, "stalled: a put fails (no hang)");
    CHECK(cf_blob_unavailable(err), "stalled: as unavailable (%s)", err != NULL ? err : "");
    cf_eng_free(err);
    err = NULL;
    CHECK_INT(cf_blob_get(b, key, &v, &vl, &err), CF_ENG_ERR, "stalled: a get fails");
    CHECK(cf_blob_unavailable(err), "stalled: as unavailable");
    cf_eng_free(err);
    err = NULL;
    struct blob_listing l;
    memset(&l, 0, sizeof l);
    CHECK_INT(cf_blob_list(b, NULL, 0, blob_collect, &l, &err), CF_ENG_ERR, "stalled: a listing fails");
    CHECK(cf_blob_unavailable(err), "stalled: as unavailable");
    cf_eng_free(err);
    err = NULL;
    CHECK_INT(cf_blob_delete_owner(b, key, &err), CF_ENG_ERR, "stalled: a deletion fails");
    CHECK(cf_blob_unavailable(err), "stalled: as unavailable");
    cf_eng_free(err);
    err = NULL;
    struct cf_blobs *x = NULL;
    struct cf_rados_conf c = conf_with(TIMEOUT);
    CHECK_INT(cf_blobs_open_rados(&c, &x, &err), CF_ENG_ERR, "stalled: connecting fails");
    CHECK(x == NULL && cf_blob_unavailable(err), "stalled: as unavailable");
    cf_eng_free(err);
    /* The store: 503s, not fail-stop. */
    CHECK_INT(put_file(s, &t2.id, &t2.root, "during.bin", d, 1000, &h), CF_EUNAVAIL, "stalled: an upload is 503");
    CHECK_INT(read_back(s, &t2.id, &g.id, d, 1000), CF_EUNAVAIL, "stalled: a download is 503");
    signal_cluster(SIGCONT);

    /* Resumed, the OSDs find they missed each other's heartbeats and re-peer, placement group by
     * placement group: calls touching one still peering are 503 for a while (each within the
     * timeout), then succeed. The store never went fail-stop. */
    enum cf_status st;
    int unavailable = 0;
    while ((st = put_file(s, &t2.id, &t2.root, "after.bin", d, 1000, &h)) == CF_EUNAVAIL && unavailable < 60)
        unavailable++;
    CHECK_INT(st, CF_OK, "stalled: the store takes uploads again once the cluster is back");
    while ((st = read_back(s, &t2.id, &h.id, d, 1000)) == CF_EUNAVAIL && unavailable < 60)
        unavailable++;
    CHECK_INT(st, CF_OK, "stalled: and reads them");
    while ((st = read_back(s, &t2.id, &g.id, d, 1000)) == CF_EUNAVAIL && unavailable < 60)
        unavailable++;
    CHECK_INT(st, CF_OK, "stalled: and the earlier one");
    printf("# %d calls answered 503 while the cluster recovered\n", unavailable);
    cf_node_clear(&g);
    cf_node_clear(&h);
    cf_tenant_clear(&t2);
    free(d);
out:
    signal_cluster(SIGCONT);
    cf_store_close(s);
    cf_blobs_close(b);
}

int main(void)
{
    g_dir = getenv("COFFER_CEPH_DIR");
    g_script = getenv("COFFER_CEPH_LOCAL");
    if (g_dir == NULL || g_script == NULL) {
        printf("1..0 # SKIP run through tests/unit/blob_rados.sh (it starts the Ceph cluster)\n");
        return 0;
    }
    snprintf(g_conf, sizeof g_conf, "%s/ceph.conf", g_dir);
    snprintf(g_keyring, sizeof g_keyring, "%s/client.%s.keyring", g_dir, USER);
    cf_key_random(&g_master);

    test_contract();
    struct cf_store *s = open_store("store", 60);
    struct cf_tenant t;
    struct cf_node f;
    uint8_t *data = NULL;
    size_t size = 0;
    memset(&t, 0, sizeof t);
    memset(&f, 0, sizeof f);
    /* The stall first, on a settled cluster (its store has a short timeout); the OSD kill after it,
     * with the long one, which rides out the re-peering the stall leaves behind. */
    if (s != NULL)
        test_store(s, &t, &f, &data, &size);
    test_stalled();
    if (s != NULL) {
        test_one_osd_down(s, &t);
        CHECK_INT(read_back(s, &t.id, &f.id, data, size), CF_OK, "store: the first file still reads back");
    }
    cf_store_close(s);
    cf_node_clear(&f);
    cf_tenant_clear(&t);
    free(data);
    return tap_done();
}
