/*
 * cf-dbtool: direct access to a stopped Coffer store's RocksDB, for tests that tamper with it
 * (flip, swap, delete, truncate records and chunks) and check that the server notices.
 *
 *   cf-dbtool DIR cfs                      column families, one per line
 *   cf-dbtool DIR keys CF                  "KEYHEX VALUELEN" per line, in key order
 *   cf-dbtool DIR values                   "CF KEYHEX VALUEHEX" for every entry of every family
 *   cf-dbtool DIR get CF KEYHEX            the value as hex
 *   cf-dbtool DIR put CF KEYHEX VALHEX     writes a value (synced); VALHEX "-" reads the hex from
 *                                          stdin (a chunk's hex is over the kernel's 128 KiB limit
 *                                          for one argument)
 *   cf-dbtool DIR delete CF KEYHEX         deletes a key (synced)
 * Exit 0 on success, 1 on failure (message on stderr), 2 on usage errors. Test code only.
 */
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexdigit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex → bytes (linear: sscanf on a long string rescans it on every call). */
static int unhex(const char *s, char **out, size_t *n)
{
    size_t l = strlen(s);
    if (l % 2 != 0)
        return -1;
    *out = malloc(l / 2 + 1);
    for (size_t i = 0; i < l / 2; i++) {
        int hi = hexdigit(s[2 * i]), lo = hexdigit(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(*out);
            *out = NULL;
            return -1;
        }
        (*out)[i] = (char)(hi << 4 | lo);
    }
    *n = l / 2;
    return 0;
}

/* All of stdin without trailing whitespace, as a string (NULL on a read error). */
static char *read_stdin(void)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, stdin);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(stdin)) {
        free(buf);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    return buf;
}

static void hex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", (unsigned char)p[i]);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: cf-dbtool DIR cfs|keys|get|put|delete ...\n");
        return 2;
    }
    const char *dir = argv[1], *cmd = argv[2];
    char *err = NULL;
    size_t ncf = 0;
    rocksdb_options_t *opts = rocksdb_options_create();
    char **names = rocksdb_list_column_families(opts, dir, &ncf, &err);
    if (err != NULL) {
        fprintf(stderr, "cf-dbtool: %s\n", err);
        return 1;
    }
    if (strcmp(cmd, "cfs") == 0) {
        for (size_t i = 0; i < ncf; i++)
            printf("%s\n", names[i]);
        rocksdb_list_column_families_destroy(names, ncf);
        rocksdb_options_destroy(opts);
        return 0;
    }
    const rocksdb_options_t **cfopts = calloc(ncf, sizeof *cfopts);
    rocksdb_column_family_handle_t **h = calloc(ncf, sizeof *h);
    for (size_t i = 0; i < ncf; i++)
        cfopts[i] = opts;
    rocksdb_t *db = rocksdb_open_column_families(opts, dir, (int)ncf, (const char *const *)names, cfopts, h, &err);
    if (err != NULL) {
        fprintf(stderr, "cf-dbtool: %s\n", err);
        return 1;
    }
    if (strcmp(cmd, "values") == 0) {
        rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
        for (size_t i = 0; i < ncf; i++) {
            rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, h[i]);
            for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
                size_t l1, l2;
                const char *key = rocksdb_iter_key(it, &l1);
                const char *val = rocksdb_iter_value(it, &l2);
                printf("%s ", names[i]);
                hex(key, l1);
                printf(" ");
                hex(val, l2);
                printf("\n");
            }
            rocksdb_iter_destroy(it);
        }
        rocksdb_readoptions_destroy(ro);
        for (size_t i = 0; i < ncf; i++)
            rocksdb_column_family_handle_destroy(h[i]);
        rocksdb_close(db);
        rocksdb_list_column_families_destroy(names, ncf);
        free(cfopts);
        free(h);
        rocksdb_options_destroy(opts);
        return 0;
    }
    if (argc < 4) {
        fprintf(stderr, "cf-dbtool: %s needs a column family\n", cmd);
        return 2;
    }
    rocksdb_column_family_handle_t *cf = NULL;
    for (size_t i = 0; i < ncf; i++)
        if (strcmp(names[i], argv[3]) == 0)
            cf = h[i];
    if (cf == NULL) {
        fprintf(stderr, "cf-dbtool: no column family %s\n", argv[3]);
        return 1;
    }
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, 1);
    int rc = 0;
    char *k = NULL, *v = NULL;
    size_t kl = 0, vl = 0;
    if (strcmp(cmd, "keys") == 0) {
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, cf);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t l1, l2;
            const char *key = rocksdb_iter_key(it, &l1);
            rocksdb_iter_value(it, &l2);
            hex(key, l1);
            printf(" %zu\n", l2);
        }
        rocksdb_iter_destroy(it);
    } else if (strcmp(cmd, "get") == 0 && argc == 5 && unhex(argv[4], &k, &kl) == 0) {
        char *val = rocksdb_get_cf(db, ro, cf, k, kl, &vl, &err);
        if (err != NULL || val == NULL) {
            fprintf(stderr, "cf-dbtool: %s\n", err != NULL ? err : "no such key");
            rc = 1;
        } else {
            hex(val, vl);
            printf("\n");
            free(val);
        }
    } else if (strcmp(cmd, "put") == 0 && argc == 6 && unhex(argv[4], &k, &kl) == 0) {
        char *in = strcmp(argv[5], "-") == 0 ? read_stdin() : NULL;
        if (unhex(in != NULL ? in : argv[5], &v, &vl) == 0) {
            rocksdb_put_cf(db, wo, cf, k, kl, v, vl, &err);
        } else {
            fprintf(stderr, "cf-dbtool: bad value hex\n");
            rc = 2;
        }
        free(in);
    } else if (strcmp(cmd, "delete") == 0 && argc == 5 && unhex(argv[4], &k, &kl) == 0) {
        rocksdb_delete_cf(db, wo, cf, k, kl, &err);
    } else {
        fprintf(stderr, "cf-dbtool: bad arguments for %s\n", cmd);
        rc = 2;
    }
    if (err != NULL) {
        fprintf(stderr, "cf-dbtool: %s\n", err);
        rc = 1;
    }
    free(k);
    free(v);
    for (size_t i = 0; i < ncf; i++)
        rocksdb_column_family_handle_destroy(h[i]);
    rocksdb_close(db);
    /* Everything freed, so that an ASan build of this tool reports no leaks. */
    rocksdb_readoptions_destroy(ro);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_list_column_families_destroy(names, ncf);
    free(cfopts);
    free(h);
    rocksdb_options_destroy(opts);
    return rc;
}
