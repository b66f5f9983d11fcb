/*
 * blob_rados.c: the blob store (blob.h) in a Ceph RADOS pool (issue 24; docs/CLUSTER.md "Ceph RADOS").
 *
 * One object per blob, named by its key in lower-case hex (72 characters for a chunk key), in the
 * RADOS namespace named by the key's first CF_BLOB_TENANT_LEN bytes in hex (the tenant): nothing of a
 * name, owner or byte of plaintext reaches the cluster, only ids and sealed chunks. One namespace per
 * tenant because RADOS lists a pool in no order and cannot list by name prefix: listing a namespace
 * sends only that tenant's objects to the client (the OSDs still walk their placement groups), so a
 * content's or a tenant's deletion costs the tenant's objects, not the pool's.
 *
 * put is rados_write_full, which returns once every replica has the write (durable on completion),
 * so flush waits for nothing and the store is not ordered with the metadata engine (the model then
 * writes its pending marks synced). Reads are one compound operation (stat + read of up to the
 * buffer's size; read again if the object was larger) into a buffer: get's own, or for view one kept
 * per thread. Every monitor and OSD operation is bounded by the configured op_timeout (librados'
 * default is to wait forever): a stalled cluster gives an error starting "Unavailable:" that the
 * model answers with 503, never a hang.
 *
 * librados handles are thread-safe; an I/O context carries its namespace, so each call makes its own
 * (rados_ioctx_create2 by pool id: local, no round trip).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rados/librados.h>

#include "blob.h"

enum {
    KEY_MAX = CF_BLOB_TENANT_LEN + 64,   /* longest key listed (longer: not a blob of ours) */
    OID_MAX = 2 * KEY_MAX + 1,           /* its hex and a NUL */
    NS_LEN = 2 * CF_BLOB_TENANT_LEN,     /* a tenant's namespace: 32 hex characters */
    READ_HINT = (1 << 20) + (64 << 10),  /* first read size: a 1 MiB chunk and its framing */
};

struct blob_rados {
    struct cf_blobs base; /* first: the cf_blob_* calls see this */
    rados_t cluster;
    int64_t pool;
};

static struct blob_rados *R(struct cf_blobs *b)
{
    return (struct blob_rados *)b;
}

/* ---- errors and names ----------------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        abort();
    return p;
}

/* Errors that say the cluster is out of reach for now, not that something is broken. */
static bool rc_unavailable(int rc)
{
    return rc == -ETIMEDOUT || rc == -ENOTCONN || rc == -ESHUTDOWN || rc == -ECONNREFUSED || rc == -EAGAIN ||
           rc == -EINTR;
}

static int fail(char **err, const char *what, int rc)
{
    char eb[96], msg[256];
    const char *m = strerror_r(-rc, eb, sizeof eb);
    snprintf(msg, sizeof msg, "%srados %s: %s", rc_unavailable(rc) ? "Unavailable: " : "", what, m);
    *err = xstrdup(msg);
    return CF_ENG_ERR;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = 0;
}

static int unhex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The key an object name spells, or 0 if it is not lower-case hex of at most KEY_MAX bytes. */
static size_t unhex(const char *s, size_t n, uint8_t *out)
{
    if (n == 0 || n % 2 != 0 || n / 2 > KEY_MAX)
        return 0;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = unhex_digit(s[2 * i]), lo = unhex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return n / 2;
}

/* An I/O context in namespace ns (NULL: every namespace, for listing). */
static int ioctx(struct blob_rados *r, const char *ns, rados_ioctx_t *io, char **err)
{
    int rc = rados_ioctx_create2(r->cluster, r->pool, io);
    if (rc < 0)
        return fail(err, "ioctx", rc);
    rados_ioctx_set_namespace(*io, ns != NULL ? ns : LIBRADOS_ALL_NSPACES);
    return CF_ENG_OK;
}

/* The I/O context and object name of a blob key. */
static int locate(struct blob_rados *r, const uint8_t *key, rados_ioctx_t *io, char oid[OID_MAX], char **err)
{
    char ns[NS_LEN + 1];
    hex(key, CF_BLOB_TENANT_LEN, ns);
    hex(key, CF_BLOB_KEY_LEN, oid);
    return ioctx(r, ns, io, err);
}

/* ---- reads ---------------------------------------------------------------------------------- */

struct rbuf {
    char *p;
    size_t cap;
};

static void rbuf_reserve(struct rbuf *b, size_t n)
{
    if (b->cap >= n)
        return;
    free(b->p);
    b->p = malloc(n);
    if (b->p == NULL)
        abort();
    b->cap = n;
}

/* Reads the blob of key into b: its size in *len. */
static int read_blob(struct blob_rados *r, const uint8_t *key, struct rbuf *b, size_t *len, char **err)
{
    rados_ioctx_t io;
    char oid[OID_MAX];
    if (locate(r, key, &io, oid, err) != CF_ENG_OK)
        return CF_ENG_ERR;
    rbuf_reserve(b, READ_HINT);
    int ret = CF_ENG_ERR;
    for (int tries = 0; tries < 8; tries++) {
        uint64_t size = 0;
        time_t mtime = 0;
        int stat_rv = 0, read_rv = 0;
        size_t got = 0;
        rados_read_op_t op = rados_create_read_op();
        rados_read_op_stat(op, &size, &mtime, &stat_rv);
        rados_read_op_read(op, 0, b->cap, b->p, &got, &read_rv);
        int rc = rados_read_op_operate(op, io, oid, 0);
        rados_release_read_op(op);
        if (rc == 0 && stat_rv < 0)
            rc = stat_rv;
        if (rc == 0 && read_rv < 0)
            rc = read_rv;
        if (rc == -ENOENT) {
            ret = CF_ENG_NOTFOUND;
            goto out;
        }
        if (rc < 0) {
            ret = fail(err, "read", rc);
            goto out;
        }
        if (size <= b->cap && got == size) {
            *len = got;
            ret = CF_ENG_OK;
            goto out;
        }
        /* Larger than the buffer (or replaced between stat and read): again, with room for it. */
        rbuf_reserve(b, (size_t)size > b->cap ? (size_t)size : b->cap * 2);
    }
    ret = fail(err, "read (the object keeps changing size)", -EIO);
out:
    rados_ioctx_destroy(io);
    return ret;
}

static int rb_get(struct cf_blobs *b, const uint8_t *key, char **val, size_t *vlen, char **err)
{
    struct rbuf buf = {NULL, 0};
    size_t n = 0;
    int rc = read_blob(R(b), key, &buf, &n, err);
    if (rc != CF_ENG_OK) {
        free(buf.p);
        return rc;
    }
    *val = buf.p;
    *vlen = n;
    return CF_ENG_OK;
}

/* The per-thread read buffer of views (freed when its thread exits). */
static pthread_key_t view_key;
static pthread_once_t view_once = PTHREAD_ONCE_INIT;

static void view_buf_free(void *p)
{
    struct rbuf *b = p;
    free(b->p);
    free(b);
}

static void view_key_make(void)
{
    if (pthread_key_create(&view_key, view_buf_free) != 0)
        abort();
}

static struct rbuf *view_buf(void)
{
    pthread_once(&view_once, view_key_make);
    struct rbuf *b = pthread_getspecific(view_key);
    if (b == NULL) {
        b = calloc(1, sizeof *b);
        if (b == NULL || pthread_setspecific(view_key, b) != 0)
            abort();
    }
    return b;
}

static int rb_view(struct cf_blobs *b, const uint8_t *key, void (*fn)(void *ctx, const char *val, size_t vlen),
                      void *ctx, char **err)
{
    struct rbuf *buf = view_buf();
    size_t n = 0;
    int rc = read_blob(R(b), key, buf, &n, err);
    if (rc == CF_ENG_OK)
        fn(ctx, buf->p, n);
    return rc;
}

/* ---- writes --------------------------------------------------------------------------------- */

static int rb_put(struct cf_blobs *b, const uint8_t *key, const void *val, size_t vlen, char **err)
{
    rados_ioctx_t io;
    char oid[OID_MAX];
    if (locate(R(b), key, &io, oid, err) != CF_ENG_OK)
        return CF_ENG_ERR;
    int rc = rados_write_full(io, oid, val, vlen); /* returns once every replica has it */
    rados_ioctx_destroy(io);
    return rc < 0 ? fail(err, "write", rc) : CF_ENG_OK;
}

static int rb_flush(struct cf_blobs *b, char **err)
{
    (void)b;
    (void)err;
    return CF_ENG_OK; /* every put waited for its replicas */
}

/* ---- listing and deletion ------------------------------------------------------------------- */

struct entry {
    uint8_t len;
    uint8_t key[KEY_MAX];
};

struct entries {
    struct entry *v;
    size_t n, cap;
};

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Every blob key starting with prefix, sorted. Objects whose names are not hex keys, or that sit in
 * another namespace than their key's tenant (the default one included), are not ours: skipped. */
static int collect(struct blob_rados *r, const uint8_t *prefix, size_t plen, struct entries *out, char **err)
{
    char ns[NS_LEN + 1];
    if (plen >= CF_BLOB_TENANT_LEN)
        hex(prefix, CF_BLOB_TENANT_LEN, ns);
    rados_ioctx_t io;
    if (ioctx(r, plen >= CF_BLOB_TENANT_LEN ? ns : NULL, &io, err) != CF_ENG_OK)
        return CF_ENG_ERR;
    rados_list_ctx_t lc;
    int rc = rados_nobjects_list_open(io, &lc);
    if (rc < 0) {
        rados_ioctx_destroy(io);
        return fail(err, "list", rc);
    }
    for (;;) {
        const char *name = NULL, *nspace = NULL;
        size_t name_len = 0, ns_len = 0;
        rc = rados_nobjects_list_next2(lc, &name, NULL, &nspace, &name_len, NULL, &ns_len);
        if (rc == -ENOENT) {
            rc = 0;
            break;
        }
        if (rc < 0)
            break;
        struct entry e;
        e.len = (uint8_t)unhex(name, name_len, e.key);
        if (e.len < CF_BLOB_TENANT_LEN || e.len < plen || (plen > 0 && memcmp(e.key, prefix, plen) != 0))
            continue;
        if (ns_len != NS_LEN || nspace == NULL || strncmp(nspace, name, NS_LEN) != 0)
            continue;
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 64;
            out->v = realloc(out->v, out->cap * sizeof *out->v);
            if (out->v == NULL)
                abort();
        }
        out->v[out->n++] = e;
    }
    rados_nobjects_list_close(lc);
    rados_ioctx_destroy(io);
    if (rc < 0)
        return fail(err, "list", rc);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, entry_cmp);
    return CF_ENG_OK;
}

static int rb_list(struct cf_blobs *b, const uint8_t *prefix, size_t plen,
                      int (*fn)(void *ctx, const uint8_t *key, size_t klen), void *ctx, char **err)
{
    struct entries es = {NULL, 0, 0};
    int rc = collect(R(b), prefix, plen, &es, err);
    for (size_t i = 0; rc == CF_ENG_OK && i < es.n; i++)
        if (fn(ctx, es.v[i].key, es.v[i].len) != 0)
            break;
    free(es.v);
    return rc;
}

/* Removes every blob starting with prefix (at least a tenant's bytes long, so one namespace), up to
 * REMOVE_WINDOW removes in flight. Absent ones are fine; the first other error is returned once every
 * remove sent has completed (a failure may leave some, as the contract allows). */
enum { REMOVE_WINDOW = 32 };

static int delete_prefix(struct blob_rados *r, const uint8_t *prefix, size_t plen, char **err)
{
    struct entries es = {NULL, 0, 0};
    int rc = collect(r, prefix, plen, &es, err);
    rados_ioctx_t io;
    char ns[NS_LEN + 1];
    hex(prefix, CF_BLOB_TENANT_LEN, ns);
    if (rc != CF_ENG_OK || es.n == 0 || (rc = ioctx(r, ns, &io, err)) != CF_ENG_OK) {
        free(es.v);
        return rc;
    }
    rados_completion_t inflight[REMOVE_WINDOW];
    int first_error = 0;
    for (size_t i = 0; i < es.n; i += REMOVE_WINDOW) {
        size_t n = es.n - i < REMOVE_WINDOW ? es.n - i : REMOVE_WINDOW, sent = 0;
        for (; sent < n; sent++) {
            char oid[OID_MAX];
            hex(es.v[i + sent].key, es.v[i + sent].len, oid);
            int e = rados_aio_create_completion2(NULL, NULL, &inflight[sent]);
            if (e == 0 && (e = rados_aio_remove(io, oid, inflight[sent])) < 0)
                rados_aio_release(inflight[sent]);
            if (e < 0) {
                if (first_error == 0)
                    first_error = e;
                break;
            }
        }
        for (size_t j = 0; j < sent; j++) {
            rados_aio_wait_for_complete(inflight[j]);
            int e = rados_aio_get_return_value(inflight[j]);
            rados_aio_release(inflight[j]);
            if (e < 0 && e != -ENOENT && first_error == 0)
                first_error = e;
        }
        if (first_error != 0)
            break;
    }
    rados_ioctx_destroy(io);
    free(es.v);
    return first_error != 0 ? fail(err, "remove", first_error) : CF_ENG_OK;
}

static int rb_delete_owner(struct cf_blobs *b, const uint8_t *owner, char **err)
{
    return delete_prefix(R(b), owner, CF_BLOB_OWNER_LEN, err);
}

static int rb_delete_tenant(struct cf_blobs *b, const uint8_t *tenant, char **err)
{
    return delete_prefix(R(b), tenant, CF_BLOB_TENANT_LEN, err);
}

/* ---- open and close ------------------------------------------------------------------------- */

static void rb_close(struct cf_blobs *b)
{
    rados_shutdown(R(b)->cluster);
    free(R(b));
}

static const struct cf_blob_ops rb_ops = {
    .name = "rados",
    .close = rb_close,
    .put = rb_put,
    .flush = rb_flush,
    .ordered = false,
    .get = rb_get,
    .view = rb_view,
    .delete_owner = rb_delete_owner,
    .delete_tenant = rb_delete_tenant,
    .list = rb_list,
};

static int conf_set(rados_t cl, const char *opt, const char *val, char **err)
{
    int rc = rados_conf_set(cl, opt, val);
    return rc < 0 ? fail(err, opt, rc) : CF_ENG_OK;
}

int cf_blobs_open_rados(const struct cf_rados_conf *c, struct cf_blobs **out, char **err)
{
    *out = NULL;
    *err = NULL;
    if (c->pool == NULL || c->pool[0] == 0) {
        *err = xstrdup("rados: no pool configured");
        return CF_ENG_ERR;
    }
    rados_t cl;
    int rc = rados_create(&cl, c->user != NULL && c->user[0] != 0 ? c->user : "admin");
    if (rc < 0)
        return fail(err, "create", rc);
    char t[16];
    snprintf(t, sizeof t, "%u", c->op_timeout != 0 ? c->op_timeout : 30);
    if ((rc = rados_conf_read_file(cl, c->conf)) < 0) {
        rados_shutdown(cl);
        return fail(err, "reading the ceph configuration", rc);
    }
    /* Bound every wait: operations on OSDs and monitors, and the connection itself. */
    if ((c->keyring != NULL && conf_set(cl, "keyring", c->keyring, err) != CF_ENG_OK) ||
        conf_set(cl, "rados_osd_op_timeout", t, err) != CF_ENG_OK ||
        conf_set(cl, "rados_mon_op_timeout", t, err) != CF_ENG_OK ||
        conf_set(cl, "client_mount_timeout", t, err) != CF_ENG_OK) {
        rados_shutdown(cl);
        return CF_ENG_ERR;
    }
    if ((rc = rados_connect(cl)) < 0) {
        rados_shutdown(cl);
        return fail(err, "connect", rc == -EINTR || rc == -ETIMEDOUT ? -ETIMEDOUT : rc);
    }
    int64_t pool = rados_pool_lookup(cl, c->pool);
    if (pool < 0) {
        rados_shutdown(cl);
        return fail(err, "pool lookup", (int)pool);
    }
    struct blob_rados *r = calloc(1, sizeof *r);
    if (r == NULL)
        abort();
    r->base.ops = &rb_ops;
    r->cluster = cl;
    r->pool = pool;
    /* One round trip to an OSD: the pool is reachable and our caps let us read it. */
    uint8_t probe[CF_BLOB_KEY_LEN];
    memset(probe, 0, sizeof probe);
    struct rbuf buf = {NULL, 0};
    size_t n;
    int pr = read_blob(r, probe, &buf, &n, err);
    free(buf.p);
    if (pr == CF_ENG_ERR) {
        rb_close(&r->base);
        return CF_ENG_ERR;
    }
    *out = &r->base;
    return CF_ENG_OK;
}
