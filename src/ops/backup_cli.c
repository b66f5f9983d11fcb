/*
 * backup_cli.c: `coffer backup create|list|verify|restore` (storage.h "backups" does the work).
 *
 *   create DIR [--keep N]          operator command (ops.h): runs against the open store of whoever
 *                                  holds it, the CLI offline or the serving process online (uploads
 *                                  go on); DIR is made absolute on the CLI side (cf_backup_cli_prepare)
 *   list DIR                       id, time, size and files of every backup
 *   verify DIR [--id N] [--deep]   every file of the backups against its recorded CRC32C (no key
 *                                  needed); --deep also restores each into a private temporary
 *                                  directory, opens it with the master key, decrypts every chunk
 *                                  against its SHA-256 (fsck) and verifies every provenance chain
 *   restore DIR [--id N] --to D    into a new data directory, then proves the master key opens it
 *
 * Why verify is not deep by default: the checksum pass needs no master key, so it can run where the
 * backups are kept, which should not hold the key (docs/ops-backup.md); it reads each byte once and
 * needs no space. --deep needs the key, free space for one store in $TMPDIR and time to decrypt
 * everything: the thing to run on a schedule, on the machine that would do the restore.
 *
 * Exit codes: 0 ok, 1 runtime failure (damaged backup, wrong key, busy directory), 2 usage.
 */
#include "backup_cli.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ops.h"
#include "priv.h"
#include "startup.h"

#define KEEP_MAX 100000u /* --keep: more than anyone keeps */

static const char usage_text[] = "usage: coffer backup create DIR [--keep N]\n"
                                 "       coffer backup list DIR\n"
                                 "       coffer backup verify DIR [--id N] [--deep]\n"
                                 "       coffer backup restore DIR [--id N] --to DATA_DIR\n";

/* Parsed arguments of every subcommand; which are allowed is checked by each. */
struct args {
    const char *dir;  /* the backup directory */
    int dir_index;    /* its index in argv */
    uint64_t id;      /* --id; 0: none given */
    uint64_t keep;    /* --keep; 0: none given */
    const char *to;   /* --to */
    bool deep;        /* --deep */
    bool has_id, has_keep;
};

/* An option's value, from "--name VALUE" or "--name=VALUE"; NULL if this argument is not --name. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static int parse_number(FILE *err, const char *name, const char *v, uint64_t max, uint64_t *out)
{
    if (cf_parse_u64(v, strlen(v), max, out) != CF_OK || *out == 0) {
        fprintf(err, "coffer: backup: %s: expected a number from 1 to %llu, got \"%s\"\n", name,
                (unsigned long long)max, v);
        return 2;
    }
    return 0;
}

/* Parses argv[2..] (argv[0] "backup", argv[1] the subcommand). 0 or 2 with a message on err. */
static int parse_args(int argc, char **argv, FILE *err, struct args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 2; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = opt_value(argc, argv, &i, "--id", &missing)) != NULL) {
            if (parse_number(err, "--id", v, UINT32_MAX, &a->id) != 0)
                return 2;
            a->has_id = true;
        } else if ((v = opt_value(argc, argv, &i, "--keep", &missing)) != NULL) {
            if (parse_number(err, "--keep", v, KEEP_MAX, &a->keep) != 0)
                return 2;
            a->has_keep = true;
        } else if ((v = opt_value(argc, argv, &i, "--to", &missing)) != NULL) {
            if (v[0] == '\0') {
                fprintf(err, "coffer: backup: --to needs a directory\n");
                return 2;
            }
            a->to = v;
        } else if (missing) {
            fprintf(err, "coffer: backup: %s needs a value\n", argv[i]);
            return 2;
        } else if (strcmp(argv[i], "--deep") == 0) {
            a->deep = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(err, "coffer: backup %s: unknown option %s\n", argv[1], argv[i]);
            return 2;
        } else if (a->dir != NULL) {
            fprintf(err, "coffer: backup %s: one backup directory only (%s, then %s)\n", argv[1], a->dir, argv[i]);
            return 2;
        } else if (argv[i][0] == '\0') {
            fprintf(err, "coffer: backup %s: the backup directory is empty\n", argv[1]);
            return 2;
        } else {
            a->dir = argv[i];
            a->dir_index = i;
        }
    }
    if (a->dir == NULL) {
        fprintf(err, "coffer: backup %s: missing the backup directory\n%s", argv[1], usage_text);
        return 2;
    }
    return 0;
}

/* Rejects the options a subcommand does not take. */
static int only(FILE *err, const char *sub, const struct args *a, bool id, bool keep, bool to, bool deep)
{
    const char *bad = (!id && a->has_id) ? "--id" : (!keep && a->has_keep) ? "--keep" : (!to && a->to) ? "--to"
                    : (!deep && a->deep) ? "--deep" : NULL;
    if (bad != NULL) {
        fprintf(err, "coffer: backup %s does not take %s\n%s", sub, bad, usage_text);
        return 2;
    }
    return 0;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* ---- create (operator command) ------------------------------------------------------------------ */

int cf_backup_cli_prepare(int argc, char **argv, char **owned)
{
    struct args a;
    *owned = NULL;
    if (argc < 2 || strcmp(argv[1], "create") != 0) {
        fprintf(stderr, "%s", usage_text);
        return 2;
    }
    int rc = parse_args(argc, argv, stderr, &a);
    if (rc == 0)
        rc = only(stderr, "create", &a, false, true, false, false);
    if (rc != 0 || a.dir[0] == '/')
        return rc;
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) == NULL) {
        fprintf(stderr, "coffer: backup create: cannot resolve %s against the working directory (%s); give an "
                        "absolute path\n",
                a.dir, strerror(errno));
        return 2;
    }
    *owned = cf_xasprintf("%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, a.dir);
    argv[a.dir_index] = *owned;
    return 0;
}

/* The backup directory (or, while it does not exist, its nearest existing ancestor, where it will
 * be created; or the nearest one this account can reach) must be writable by the account this command runs as: the server's `user:` when a
 * server runs it. A message naming the path and that account, or NULL (anything else is for
 * cf_backup_create to report). */
static char *unwritable(const char *dir, bool online)
{
    char probe[4096];
    struct stat st;
    if (snprintf(probe, sizeof probe, "%s", dir) >= (int)sizeof probe)
        return NULL;
    /* Up to the nearest ancestor this account can see: a missing part is created later, and one it
     * cannot search (EACCES) hides whether it exists. */
    while (stat(probe, &st) != 0 && (errno == ENOENT || errno == EACCES)) {
        char *slash = strrchr(probe, '/');
        if (slash == NULL)
            return NULL;
        if (slash == probe)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
    if (access(probe, W_OK | X_OK) == 0 || errno != EACCES)
        return NULL;
    uid_t uid = geteuid();
    struct passwd *pw = getpwuid(uid);
    const char *name = pw != NULL ? pw->pw_name : "?";
    return cf_xasprintf("%s: permission denied: the account '%s' (uid %u), which %s, needs write access there "
                        "(for example: chown %s %s), or choose another directory",
                        probe, name, (unsigned)uid, online ? "runs the server" : "runs this command", name, probe);
}

int cf_op_backup_create(struct cf_op *op, int argc, char **argv)
{
    struct args a;
    struct cf_backup_created res;
    struct timespec t0;
    char *why = NULL;
    if (argc < 2 || strcmp(argv[1], "create") != 0) {
        fprintf(op->err, "%s", usage_text);
        return 2;
    }
    int rc = parse_args(argc, argv, op->err, &a);
    if (rc == 0)
        rc = only(op->err, "create", &a, false, true, false, false);
    if (rc != 0)
        return rc;
    if (a.dir[0] != '/') {
        /* The CLI makes DIR absolute (cf_backup_cli_prepare); a server never guesses whose working
         * directory a relative path meant. */
        fprintf(op->err, "coffer: backup create: %s: the backup directory must be an absolute path\n", a.dir);
        return 2;
    }
    char *denied = unwritable(a.dir, op->online);
    if (denied != NULL) {
        fprintf(op->err, "coffer: backup create: %s\n", denied);
        free(denied);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    enum cf_status st = cf_backup_create(op->store, a.dir, (uint32_t)a.keep, &res, &why);
    if (st != CF_OK) {
        fprintf(op->err, "coffer: backup create: %s\n", why != NULL ? why : cf_status_name(st));
        free(why);
        return 1;
    }
    fprintf(op->out,
            "backup %u created in %s: %llu bytes in %u files, %llu new bytes copied; %u backups kept, %u purged "
            "(%.2f s)\n",
            res.info.id, a.dir, (unsigned long long)res.info.size, res.info.files, (unsigned long long)res.copied,
            res.count, res.purged, seconds_since(&t0));
    return 0;
}

/* ---- list ------------------------------------------------------------------------------------- */

static void print_status_error(const char *sub, enum cf_status st, char *why)
{
    fprintf(stderr, "coffer: backup %s: %s\n", sub, why != NULL ? why : cf_status_name(st));
    free(why);
}

static int cmd_list(const struct args *a)
{
    struct cf_backup_info *list;
    size_t n, damaged;
    char *why = NULL;
    enum cf_status st = cf_backup_list(a->dir, &list, &n, &damaged, &why);
    if (st != CF_OK) {
        print_status_error("list", st, why);
        return 1;
    }
    /* One line per backup, tab-separated: id, time, bytes, files. */
    for (size_t i = 0; i < n; i++) {
        char at[32];
        cf_time_rfc3339(list[i].created_at, at);
        printf("%u\t%s\t%llu\t%u\n", list[i].id, at, (unsigned long long)list[i].size, list[i].files);
    }
    if (n == 0 && damaged == 0)
        fprintf(stderr, "coffer: backup list: %s holds no backups yet\n", a->dir);
    if (damaged != 0)
        fprintf(stderr, "coffer: backup list: %s also holds %zu backup(s) that RocksDB cannot load (a file missing "
                        "or damaged): run coffer backup verify\n",
                a->dir, damaged);
    free(list);
    return damaged == 0 ? 0 : 1;
}

/* ---- keys and privileges ------------------------------------------------------------------------ */

/* Drops to the configured account (priv.h) after reading the master key, if want_key. */
static int become_account(const struct cf_config *cfg, const char *to_create, bool want_key, struct cf_key *master)
{
    struct cf_priv p;
    char *err = NULL;
    int rc = cf_priv_resolve(cfg, "backup", &p, &err);
    if (rc == 0 && to_create != NULL)
        rc = cf_priv_check_dir(&p, to_create, true, &err);
    if (rc != 0) {
        fprintf(stderr, "coffer: %s\n", err);
        free(err);
        return rc;
    }
    if (want_key && cf_master_key_load(cfg->master_key_file, master, &err) != CF_OK) {
        fprintf(stderr, "coffer: %s\n", err);
        free(err);
        return 1;
    }
    if (cf_priv_drop(&p, &err) != 0) {
        if (want_key)
            cf_key_wipe(master);
        fprintf(stderr, "coffer: %s\n", err);
        free(err);
        return 1;
    }
    return 0;
}

static void say_wrong_key(const struct cf_config *cfg, uint32_t id, const char *where)
{
    fprintf(stderr,
            "coffer: backup: the master key %s does not open backup %u (%s). The backup was made under another "
            "master key, or the key was rotated after it: a backup is useless without the master key it was made "
            "under. Point master_key_file at that key (kept separately, docs/OPERATIONS.md) and try again.\n",
            cfg->master_key_file, id, where);
}

/* ---- verify ----------------------------------------------------------------------------------- */

/* The deep check of one backup: restore into a private temporary directory, open, fsck, audit. */
/* A metadata journal finding in a restored backup (the backup's own journal, replayed as fsck does). */
struct deep_journal {
    uint32_t id;
};

static void deep_journal_finding(void *ctx, const struct cf_journal_finding *f)
{
    const struct deep_journal *d = ctx;
    if (f->kind == NULL) {
        fprintf(stderr, "coffer: backup verify: backup %u: metadata journal: %s\n", d->id, f->detail);
        return;
    }
    char *hex = cf_xmalloc(2 * f->klen + 1);
    cf_hex_encode(f->key, f->klen, hex);
    fprintf(stderr, "coffer: backup verify: backup %u: %s %s/%s: %s: %s\n", d->id, f->kind, f->cf, hex, f->what,
            f->detail);
    free(hex);
}

static int verify_deep(const struct cf_config *cfg, const char *dir, uint32_t id, const struct cf_key *master)
{
    const char *tmp = getenv("TMPDIR");
    char *base = cf_xasprintf("%s/coffer-verify-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    char *why = NULL;
    int rc = 1;
    if (mkdtemp(base) == NULL) {
        fprintf(stderr, "coffer: backup verify: cannot create a temporary directory %s: %s (set TMPDIR)\n", base,
                strerror(errno));
        free(base);
        return 1;
    }
    char *data = cf_xasprintf("%s/data", base);
    uint32_t restored;
    struct cf_store *s = NULL;
    enum cf_status st = cf_backup_restore(dir, id, data, &restored, &why);
    if (st != CF_OK) {
        fprintf(stderr, "coffer: backup verify: backup %u: %s\n", id, why != NULL ? why : cf_status_name(st));
        free(why);
        goto out;
    }
    st = cf_store_open(data, master, &s);
    if (st == CF_ECRYPTO) {
        say_wrong_key(cfg, id, "checked in a temporary restore");
        goto out;
    }
    if (st != CF_OK) {
        fprintf(stderr, "coffer: backup verify: backup %u restores but does not open as a store (%s)\n", id,
                cf_status_name(st));
        goto out;
    }
    struct cf_check_report rep;
    struct cf_journal_report jr;
    struct deep_journal dj = {.id = id};
    if ((st = cf_store_check(s, &rep)) != CF_OK ||
        (st = cf_journal_check(s, NULL, deep_journal_finding, &dj, &jr)) != CF_OK) {
        fprintf(stderr, "coffer: backup verify: backup %u: the restored store could not be read (%s)\n", id,
                cf_status_name(st));
        goto out;
    }
    struct cf_tenant *ts;
    size_t n;
    if (cf_tenant_list(s, &ts, &n) != CF_OK) {
        fprintf(stderr, "coffer: backup verify: backup %u: cannot list its tenants\n", id);
        goto out;
    }
    uint64_t events = 0;
    bool chains_ok = true;
    for (size_t i = 0; i < n; i++) {
        uint64_t count, bad;
        const char *reason;
        if (chains_ok) {
            st = cf_audit_verify(s, &ts[i].id, &count, &bad, &reason);
            if (st == CF_OK)
                events += count;
            else {
                fprintf(stderr, "coffer: backup verify: backup %u: tenant %s: provenance event %llu: %s\n", id,
                        ts[i].name, (unsigned long long)bad, reason != NULL ? reason : cf_status_name(st));
                chains_ok = false;
            }
        }
        cf_tenant_clear(&ts[i]);
    }
    free(ts);
    if (rep.corrupt != 0)
        fprintf(stderr, "coffer: backup verify: backup %u: %llu stored version(s) do not decrypt to their recorded "
                        "SHA-256\n",
                id, (unsigned long long)rep.corrupt);
    if (rep.orphan_contents != 0)
        fprintf(stderr, "coffer: backup verify: backup %u: %llu content(s) have chunks but no version and no upload\n",
                id, (unsigned long long)rep.orphan_contents);
    if (!chains_ok || rep.corrupt != 0 || rep.orphan_contents != 0 || jr.findings != 0)
        goto out;
    printf("backup %u: restores and opens with the master key; %llu versions (%llu bytes, %llu chunks) decrypt to "
           "their SHA-256; %llu provenance events in %zu tenants verify; %llu unfinished uploads\n",
           id, (unsigned long long)rep.versions, (unsigned long long)rep.bytes, (unsigned long long)rep.chunks,
           (unsigned long long)events, n, (unsigned long long)(rep.resumable_contents + rep.unfinished_contents));
    rc = 0;
out:
    cf_store_close(s);
    cf_backup_discard(base);
    free(data);
    free(base);
    return rc;
}

static int cmd_verify(const struct cf_config *cfg, const struct args *a)
{
    struct cf_backup_check chk;
    struct cf_key master;
    char *why = NULL;
    int rc = become_account(cfg, NULL, a->deep, &master);
    if (rc != 0)
        return rc;
    enum cf_status st = cf_backup_verify(a->dir, (uint32_t)a->id, &chk, &why);
    if (st != CF_OK) {
        print_status_error("verify", st, why);
        rc = 1;
        goto out;
    }
    printf("ok: %u backups, %llu files (%llu bytes) match their checksums\n", chk.backups,
           (unsigned long long)chk.files, (unsigned long long)chk.bytes);
    if (!a->deep)
        goto out;
    struct cf_backup_info *list;
    size_t n, damaged;
    if ((st = cf_backup_list(a->dir, &list, &n, &damaged, &why)) != CF_OK) {
        print_status_error("verify", st, why);
        rc = 1;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if ((a->id == 0 || list[i].id == a->id) && verify_deep(cfg, a->dir, list[i].id, &master) != 0)
            rc = 1;
    free(list);
out:
    if (a->deep)
        cf_key_wipe(&master);
    return rc;
}

/* ---- restore ------------------------------------------------------------------------------------ */

static int cmd_restore(const struct cf_config *cfg, const struct args *a)
{
    struct cf_key master;
    char *why = NULL;
    struct stat sb;
    if (a->to == NULL) {
        fprintf(stderr, "coffer: backup restore: --to DATA_DIR is required (a new directory)\n%s", usage_text);
        return 2;
    }
    if (cf_store_is_initialised(a->to)) {
        fprintf(stderr, "coffer: backup restore: %s already holds a store: restore into a new directory (nothing was "
                        "changed)\n",
                a->to);
        return 1;
    }
    bool existed = lstat(a->to, &sb) == 0;
    int rc = become_account(cfg, a->to, true, &master);
    if (rc != 0)
        return rc;
    uint32_t id;
    enum cf_status st = cf_backup_restore(a->dir, (uint32_t)a->id, a->to, &id, &why);
    if (st != CF_OK) {
        print_status_error("restore", st, why);
        if (!existed)
            rmdir(a->to); /* made by become_account for the service account; only if still empty */
        cf_key_wipe(&master);
        return 1;
    }
    struct cf_store *s;
    st = cf_store_open(a->to, &master, &s);
    cf_key_wipe(&master);
    if (st == CF_ECRYPTO) {
        say_wrong_key(cfg, id, "restored into the new directory, left in place");
        return 1;
    }
    if (st != CF_OK) {
        fprintf(stderr, "coffer: backup restore: backup %u was restored into %s but does not open as a store (%s)\n",
                id, a->to, cf_status_name(st));
        return 1;
    }
    cf_store_close(s);
    printf("restored backup %u into %s; the master key %s opens it\n"
           "next steps:\n"
           "  1. set data_dir: %s in the configuration (or move the directory into place while no server runs)\n"
           "  2. keep master_key_file pointing at %s\n"
           "  3. coffer journal accept -c CONFIG: the backup is older than the metadata journal anchor beside the "
           "master key, and the server refuses an older data_dir until told that this one is meant\n"
           "  4. coffer fsck -c CONFIG and coffer audit verify -c CONFIG\n"
           "  5. coffer serve -c CONFIG (uploads that were in flight when the backup was taken are cleaned up at "
           "start; resumable uploads can be resumed)\n",
           id, a->to, cfg->master_key_file, a->to, cfg->master_key_file);
    return 0;
}

int cf_cli_backup(const struct cf_config *cfg, int argc, char **argv)
{
    struct args a;
    if (argc < 2) {
        fprintf(stderr, "%s", usage_text);
        return 2;
    }
    const char *sub = argv[1];
    bool list = strcmp(sub, "list") == 0, verify = strcmp(sub, "verify") == 0, restore = strcmp(sub, "restore") == 0;
    if (!list && !verify && !restore) {
        fprintf(stderr, "coffer: backup: unknown subcommand %s\n%s", sub, usage_text);
        return 2;
    }
    int rc = parse_args(argc, argv, stderr, &a);
    if (rc == 0)
        rc = only(stderr, sub, &a, !list, false, restore, verify);
    if (rc != 0)
        return rc;
    if (list) {
        struct cf_key unused;
        rc = become_account(cfg, NULL, false, &unused);
        return rc != 0 ? rc : cmd_list(&a);
    }
    return verify ? cmd_verify(cfg, &a) : cmd_restore(cfg, &a);
}
