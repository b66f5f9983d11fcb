/*
 * cli.c: the `coffer` command line: init, serve, version, audit verify, fsck, backup list|verify|
 * restore, keys new-master, and the dispatch of operator commands (ops.h) to the running server
 * (ctl.h) or to the store opened here.
 * Exit codes (SPEC §1): 0 ok, 1 runtime failure, 2 usage or configuration error. Every message
 * names what was wrong and where.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <h2o/version.h>
#include <openssl/crypto.h>

#include "auth.h"
#include "backup_cli.h"
#include "cf_version.h"
#include "check.h"
#include "config.h"
#include "ctl.h"
#include "audit.h"
#include "log.h"
#include "ops.h"
#include "priv.h"
#include "scan.h"
#include "server.h"
#include "startup.h"

#define DEFAULT_CONFIG "/etc/coffer/coffer.yaml"
#define GENERATED_PASSWORD_LEN 20

static void usage(FILE *fp)
{
    fprintf(fp, "usage: coffer <command> [-c FILE] [options]\n"
                "commands:\n"
                "  init                      create the data directory, master key, tenant 'default' and admin\n"
                "  serve                     run the server (SIGTERM/SIGINT: graceful stop; SIGHUP: reload)\n"
                "  serve --check             check the configuration and the files it names (TLS pair, master\n"
                "                            key, store, signatures, web_dir), then exit: 0 ok, 2 not usable\n"
                "  tenant create NAME        create a tenant\n"
                "  tenant list               list tenants\n"
                "  tenant delete NAME --yes  crypto-shred a tenant: destroy its keys, then its data\n"
                "  user add --tenant T --username U [--role member|admin|auditor] [--display-name NAME]\n"
                "                            add a user (password from $COFFER_USER_PASSWORD or generated)\n"
                "  audit verify [--tenant T] verify the provenance chains (works while the server runs)\n"
                "  fsck                      check every stored file against its recorded hash, find orphan chunks,\n"
                "                            and every record against the metadata journal (rolled back, resurrected)\n"
                "  journal accept            accept data_dir as it is (a restored copy, records fsck reported): start\n"
                "                            a new metadata journal over it, recorded in journal_anchor_file (offline)\n"
                "  backup create DIR [--keep N]   back the store up into DIR (incremental; online through a running\n"
                "                            server); keep only the newest N backups\n"
                "  backup list DIR           list the backups in DIR (id, time, bytes, files)\n"
                "  backup verify DIR [--id N] [--deep]   check every backup file's checksum; --deep also restores\n"
                "                            into a temporary directory and decrypts everything with the master key\n"
                "  backup restore DIR [--id N] --to DATA_DIR   restore a backup (default: the newest) into a new\n"
                "                            data directory\n"
                "  keys new-master FILE      write a new random master key (0600) for rotate-master\n"
                "  keys rotate-master --new-key FILE   rewrap every tenant key under a new master key (online)\n"
                "  keys rotate-tenant NAME   new content key for a tenant; rewraps every data key (online)\n"
                "  retention run             purge expired trash, offboarded spaces and old provenance now\n"
                "  status                    is a server running; the store and its tenants\n"
                "  directory sync [--dry-run]   sync users, groups and departments from the directory: section's\n"
                "                            LDAP server now (online through a running server); --dry-run\n"
                "                            prints what it would change and changes nothing\n"
                "  ctl COMMAND ...           run an operator command (tenant, user, keys, backup create,\n"
                "                            retention, status, directory) in the running server; fail if none runs\n"
                "Operator commands go through the running server's control socket when one holds the store.\n"
                "  version                   print the version\n"
                "-c FILE defaults to $COFFER_CONFIG, else " DEFAULT_CONFIG "\n");
}

static int load_config(const char *path, struct cf_config *cfg)
{
    char *err = NULL;
    if (cf_config_load(path, cfg, &err) != CF_OK) {
        fprintf(stderr, "coffer: %s\n", err);
        free(err);
        return 2;
    }
    cf_log_set_level(cfg->log.level);
    cf_store_configure(cfg); /* where the store lives: data_dir, or PostgreSQL (docs/CLUSTER.md) */
    return 0;
}

/* Run as root with `user:` set, a command that touches the store drops to that account after reading
 * the master key (priv.h), so that the files RocksDB creates belong to it and `coffer serve` can use
 * them. before_key: the rules and the data directory (created for init); then after_key: the drop. */
static int before_key(const struct cf_config *cfg, const char *command, bool create_dir, struct cf_priv *p)
{
    char *err = NULL;
    int rc = cf_priv_resolve(cfg, command, p, &err);
    if (rc == 0)
        rc = cf_priv_check_dir(p, cfg->data_dir, create_dir, &err);
    if (rc != 0) {
        fprintf(stderr, "coffer: %s\n", err);
        free(err);
    }
    return rc;
}

static int after_key(const struct cf_priv *p, struct cf_key *master)
{
    char *err = NULL;
    if (cf_priv_drop(p, &err) != 0) {
        cf_key_wipe(master);
        fprintf(stderr, "coffer: %s\n", err);
        free(err);
        return 1;
    }
    return 0;
}

/* Opens the store of cfg for an offline command: read-write, or read-only (audit verify, fsck: RocksDB
 * allows that beside a running server, a consistent view). Drops privileges like the other
 * commands (before_key, after_key) and explains the usual failures as the server does. The journal
 * anchor is opened with the master key (before the drop): read-write opens check the store against
 * it (mode) and hand it to the store; read-only ones get it in *ro_anchor (may be NULL if it cannot
 * be read; the caller closes it), read before the store so that it is never newer than what they see. */
static int open_store(const struct cf_config *cfg, const char *command, bool readonly, enum cf_anchor_mode mode,
                      struct cf_store **out, struct cf_anchor **ro_anchor)
{
    struct cf_key master;
    struct cf_priv priv;
    struct cf_anchor *anchor = NULL;
    char *err = NULL;
    int prc = before_key(cfg, command, false, &priv);
    if (prc != 0)
        return prc;
    if (cf_master_key_load(cfg->master_key_file, &master, &err) != CF_OK) {
        fprintf(stderr, "coffer: %s\n", err);
        free(err);
        return 1;
    }
    if (cf_anchor_open(cfg->journal_anchor_file, !readonly, &anchor, &err) != CF_OK) {
        if (!readonly) {
            cf_key_wipe(&master);
            fprintf(stderr, "coffer: %s (journal_anchor_file)\n", err);
            free(err);
            return 1;
        }
        fprintf(stderr, "coffer: %s: a rolled-back data_dir cannot be told from the current one\n", err);
        free(err);
        anchor = NULL;
    }
    if (after_key(&priv, &master) != 0) {
        cf_anchor_close(anchor);
        return 1;
    }
    enum cf_status st = readonly ? cf_store_open_readonly(cfg->data_dir, &master, out)
                                 : cf_store_open_anchored(cfg->data_dir, &master, anchor, mode, out);
    cf_key_wipe(&master);
    if (readonly && st == CF_OK && ro_anchor != NULL)
        *ro_anchor = anchor;
    else if (readonly)
        cf_anchor_close(anchor);
    if (st == CF_OK)
        return 0;
    char *why = cf_store_open_error(cfg, st);
    fprintf(stderr, "coffer: %s\n", why);
    free(why);
    return 1;
}

/* Writes a new random master key, never overwriting an existing file. */
static int create_master_key(const char *path)
{
    uint8_t key[CF_KEY_LEN];
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        fprintf(stderr, "coffer: %s: cannot create the master key: %s\n", path, strerror(errno));
        return 1;
    }
    cf_random(key, sizeof key);
    ssize_t n = write(fd, key, sizeof key);
    cf_wipe(key, sizeof key);
    if (n != (ssize_t)sizeof key || fsync(fd) != 0) {
        fprintf(stderr, "coffer: %s: cannot write the master key: %s\n", path, strerror(errno));
        close(fd);
        unlink(path);
        return 1;
    }
    close(fd);
    return 0;
}

static int cmd_init(const struct cf_config *cfg)
{
    struct cf_key master;
    char *err = NULL;
    struct cf_store *s;
    struct cf_tenant t;
    struct cf_priv priv;
    if (cf_store_is_initialised(cfg->data_dir)) {
        fprintf(stderr, "coffer: %s is already initialised; nothing changed\n", cfg->data_dir);
        return 1;
    }
    /* The master key is created as (and stays owned by) the account running init, root in
     * production: the server reads it before it drops privileges. The data directory is created for
     * the service account, and the store is created as that account. */
    struct cf_anchor *anchor = NULL;
    int prc = before_key(cfg, "init", true, &priv);
    if (prc != 0)
        return prc;
    struct stat st;
    if (stat(cfg->master_key_file, &st) != 0) {
        if (errno != ENOENT) {
            fprintf(stderr, "coffer: %s: %s\n", cfg->master_key_file, strerror(errno));
            return 1;
        }
        int rc = create_master_key(cfg->master_key_file);
        if (rc != 0)
            return rc;
        printf("created master key %s (back it up separately from the data)\n", cfg->master_key_file);
    }
    if (cf_master_key_load(cfg->master_key_file, &master, &err) != CF_OK) {
        fprintf(stderr, "coffer: %s\n", err);
        free(err);
        return 1;
    }
    /* A new store starts a new journal: whatever an earlier store left in the anchor is void. */
    if (cf_anchor_open(cfg->journal_anchor_file, true, &anchor, &err) != CF_OK || cf_anchor_reset(anchor) != CF_OK) {
        fprintf(stderr, "coffer: %s (journal_anchor_file)\n", err != NULL ? err : cfg->journal_anchor_file);
        free(err);
        cf_anchor_close(anchor);
        cf_key_wipe(&master);
        return 1;
    }
    if (after_key(&priv, &master) != 0) {
        cf_anchor_close(anchor);
        return 1;
    }
    enum cf_status cs = cf_store_create(cfg->data_dir, &master);
    if (cs == CF_OK)
        cs = cf_store_open_anchored(cfg->data_dir, &master, anchor, CF_ANCHOR_CHECK, &s);
    else
        cf_anchor_close(anchor);
    cf_key_wipe(&master);
    if (cs != CF_OK) {
        fprintf(stderr, "coffer: %s: cannot create the store (%s)\n", cfg->data_dir, cf_status_name(cs));
        return 1;
    }
    int rc = 1;
    if (cf_tenant_create(s, "default", &t) != CF_OK) {
        fprintf(stderr, "coffer: cannot create the tenant 'default'\n");
        goto out;
    }
    printf("initialised %s with tenant 'default'\n", cfg->data_dir);
    const char *pw = getenv("COFFER_ADMIN_PASSWORD");
    struct cf_op op = {.cfg = cfg, .store = s, .out = stdout, .err = stderr, .secret = (const uint8_t *)pw,
                       .secret_len = pw != NULL ? strlen(pw) : 0};
    rc = cf_op_add_user(&op, &t.id, "admin", CF_ROLE_ADMIN, "Administrator");
    cf_tenant_clear(&t);
out:
    cf_store_close(s);
    return rc;
}

/* The tenants `coffer audit verify` checks, and what it found for each. */
struct audit_run {
    struct cf_tenant *ts;
    size_t n;
    bool *checked;     /* verified (and so owed a report on its provenance head) */
    bool *failed;      /* its chain failed: the journal's word on its head would say it again */
    uint64_t *head;    /* the last event its stored head names */
    const char *only;  /* --tenant, or NULL */
    int rc;
};

/* One line per metadata journal finding: the kind of record, its column family and key (hex), what
 * is wrong and the journal's evidence; or what is wrong with the journal itself. */
static void print_journal_finding(const char *who, const struct cf_journal_finding *f)
{
    if (f->kind == NULL) {
        fprintf(stderr, "coffer: %s: metadata journal: %s\n", who, f->detail);
        return;
    }
    char *hex = cf_xmalloc(2 * f->klen + 1);
    cf_hex_encode(f->key, f->klen, hex);
    fprintf(stderr, "coffer: %s: %s %s/%s: %s: %s\n", who, f->kind, f->cf, hex, f->what, f->detail);
    free(hex);
}

/* A metadata journal finding, as audit verify reports it: a provenance head or checkpoint that is
 * not the last one written, named by tenant and event like the chain's own findings (unless the
 * chain already failed there); anything else as fsck prints it. */
static void audit_journal_finding(void *ctx, const struct cf_journal_finding *f)
{
    struct audit_run *r = ctx;
    /* --tenant: another tenant's records are not this run's business. */
    for (size_t i = 0; r->only != NULL && f->klen >= CF_ID_LEN && i < r->n; i++)
        if (!r->checked[i] && memcmp(r->ts[i].id.b, f->key, CF_ID_LEN) == 0)
            return;
    if (f->cf == NULL || strcmp(f->cf, "audit_meta") != 0 || f->klen < CF_ID_LEN) {
        print_journal_finding("audit", f);
        r->rc = 1;
        return;
    }
    struct cf_id t;
    memcpy(t.b, f->key, CF_ID_LEN);
    for (size_t i = 0; i < r->n; i++) {
        if (!cf_id_equal(&r->ts[i].id, &t))
            continue;
        if (!r->checked[i] || r->failed[i])
            return;
        fprintf(stderr, "coffer: audit: tenant %s: event %llu: the %s %s (metadata journal: %s)\n", r->ts[i].name,
                (unsigned long long)r->head[i], f->kind, f->what, f->detail);
        r->rc = 1;
        return;
    }
    if (r->only != NULL)
        return;
    char hex[CF_ID_HEX_LEN + 1];
    cf_id_hex(&t, hex);
    fprintf(stderr, "coffer: audit: tenant %s (no such tenant): the %s %s (metadata journal: %s)\n", hex, f->kind,
            f->what, f->detail);
    r->rc = 1;
}

static int cmd_audit(const struct cf_config *cfg, int argc, char **argv)
{
    const char *only = NULL;
    if (argc < 1 || strcmp(argv[0], "verify") != 0 || (argc != 1 && argc != 3) ||
        (argc == 3 && strcmp(argv[1], "--tenant") != 0)) {
        fprintf(stderr, "coffer: usage: coffer audit verify [--tenant NAME]\n");
        return 2;
    }
    if (argc == 3)
        only = argv[2];
    struct cf_store *s;
    struct cf_anchor *anchor = NULL;
    int prc = open_store(cfg, "audit", true, CF_ANCHOR_CHECK, &s, &anchor);
    if (prc != 0)
        return prc;
    enum cf_status st;
    struct audit_run r = {.only = only};
    uint64_t total = 0;
    if (cf_tenant_list(s, &r.ts, &r.n) != CF_OK) {
        fprintf(stderr, "coffer: cannot list tenants\n");
        cf_store_close(s);
        cf_anchor_close(anchor);
        return 1;
    }
    r.checked = cf_xcalloc(r.n + 1, sizeof *r.checked);
    r.failed = cf_xcalloc(r.n + 1, sizeof *r.failed);
    r.head = cf_xcalloc(r.n + 1, sizeof *r.head);
    bool found = only == NULL;
    for (size_t i = 0; i < r.n; i++) {
        if (r.rc == 0 && (only == NULL || strcmp(r.ts[i].name, only) == 0)) {
            uint64_t count, bad, head = 0;
            const char *why;
            found = true;
            r.checked[i] = true;
            st = cf_audit_verify(s, &r.ts[i].id, &count, &bad, &why);
            if (st == CF_OK) {
                total += count;
                r.head[i] = cf_audit_head_seq(s, &r.ts[i].id, &head) == CF_OK ? head : 0;
            } else {
                fprintf(stderr, "coffer: audit: tenant %s: event %llu: %s\n", r.ts[i].name, (unsigned long long)bad,
                        why != NULL ? why : cf_status_name(st));
                r.failed[i] = true;
                r.rc = 1;
            }
        }
    }
    /* The store against the metadata journal: a whole log rolled back together with its head still
     * verifies as a chain; the journal knows the head was not the last one written (and any other
     * record that is not). */
    struct cf_journal_report jr;
    if (found && (st = cf_journal_check(s, anchor, audit_journal_finding, &r, &jr)) != CF_OK) {
        fprintf(stderr, "coffer: audit: the metadata journal could not be read (%s)\n", cf_status_name(st));
        r.rc = 1;
    }
    for (size_t i = 0; i < r.n; i++)
        cf_tenant_clear(&r.ts[i]);
    free(r.ts);
    free(r.checked);
    free(r.failed);
    free(r.head);
    cf_store_close(s);
    cf_anchor_close(anchor);
    if (!found) {
        fprintf(stderr, "coffer: no tenant named %s\n", only);
        return 1;
    }
    if (r.rc == 0)
        printf("ok: %llu events\n", (unsigned long long)total);
    return r.rc;
}

static void fsck_journal_finding(void *ctx, const struct cf_journal_finding *f)
{
    (void)ctx;
    print_journal_finding("fsck", f);
}

/* coffer fsck: reads the whole store (read-only, so beside a running server too) and reports as JSON;
 * exit 0 if every version decrypts to its recorded hash, no chunk is an orphan and every record is
 * the last value the metadata journal recorded for it; 1 otherwise. */
static int cmd_fsck(const struct cf_config *cfg)
{
    struct cf_store *s;
    struct cf_anchor *anchor = NULL;
    int prc = open_store(cfg, "fsck", true, CF_ANCHOR_CHECK, &s, &anchor);
    if (prc != 0)
        return prc;
    struct cf_check_report rep;
    struct cf_journal_report jr;
    enum cf_status st = cf_store_check(s, &rep);
    if (st == CF_OK)
        st = cf_journal_check(s, anchor, fsck_journal_finding, NULL, &jr);
    /* Quota usage counters (storage/usage.c) against the nodes they count. */
    uint64_t ucount = 0, uwrong = 0;
    struct cf_tenant *tenants = NULL;
    size_t nt = 0;
    if (st == CF_OK)
        st = cf_tenant_list(s, &tenants, &nt);
    for (size_t i = 0; i < nt; i++) {
        uint64_t c = 0, w = 0;
        if (st == CF_OK && (st = cf_usage_verify(s, &tenants[i].id, false, &c, &w)) == CF_OK && w != 0)
            fprintf(stderr, "coffer: fsck: tenant %s: %llu usage counter(s) differ from the files they count\n",
                    tenants[i].name, (unsigned long long)w);
        ucount += c;
        uwrong += w;
        cf_tenant_clear(&tenants[i]);
    }
    free(tenants);
    cf_store_close(s);
    cf_anchor_close(anchor);
    if (st != CF_OK) {
        fprintf(stderr, "coffer: fsck: the store could not be read (%s)\n", cf_status_name(st));
        return 1;
    }
    printf("{\"versions\": %llu, \"bytes\": %llu, \"chunks\": %llu, \"corrupt\": %llu, \"resumable_contents\": %llu, "
           "\"unfinished_contents\": %llu, \"orphan_contents\": %llu, \"journal_entries\": %llu, "
           "\"journal_head\": %llu, \"journal_keys\": %llu, \"journal_records\": %llu, \"journal_findings\": %llu, "
           "\"usage_counters\": %llu, \"usage_wrong\": %llu}\n",
           (unsigned long long)rep.versions, (unsigned long long)rep.bytes, (unsigned long long)rep.chunks,
           (unsigned long long)rep.corrupt, (unsigned long long)rep.resumable_contents,
           (unsigned long long)rep.unfinished_contents, (unsigned long long)rep.orphan_contents,
           (unsigned long long)jr.entries, (unsigned long long)jr.seq, (unsigned long long)jr.keys,
           (unsigned long long)jr.records, (unsigned long long)jr.findings, (unsigned long long)ucount,
           (unsigned long long)uwrong);
    if (rep.corrupt != 0)
        fprintf(stderr, "coffer: fsck: %llu stored version(s) do not decrypt to their recorded hash\n",
                (unsigned long long)rep.corrupt);
    if (rep.orphan_contents != 0)
        fprintf(stderr, "coffer: fsck: %llu content(s) have chunks but no version and no upload\n",
                (unsigned long long)rep.orphan_contents);
    if (!jr.present && jr.findings == 0)
        fprintf(stderr, "coffer: fsck: note: the store has no metadata journal yet (made by an earlier Coffer); "
                        "the next start of the server adds one\n");
    if (jr.findings != 0)
        fprintf(stderr, "coffer: fsck: %llu record(s) or journal entries are not what the metadata journal recorded "
                        "last\n",
                (unsigned long long)jr.findings);
    return rep.corrupt == 0 && rep.orphan_contents == 0 && jr.findings == 0 && uwrong == 0 ? 0 : 1;
}

/* coffer journal accept: the operator's override after a deliberate rollback (a restored backup, an
 * older copy put back on purpose) or once fsck's findings are dealt with: a new journal over the
 * store as it is, recorded in journal_anchor_file. Offline only (the server must be stopped). */
static int cmd_journal(const struct cf_config *cfg, int argc, char **argv)
{
    if (argc != 1 || strcmp(argv[0], "accept") != 0) {
        fprintf(stderr, "coffer: usage: coffer journal accept\n");
        return 2;
    }
    struct cf_store *s;
    int rc = open_store(cfg, "journal", false, CF_ANCHOR_ACCEPT, &s, NULL);
    if (rc != 0)
        return rc;
    struct cf_journal_state js;
    cf_journal_describe(s, &js);
    cf_store_close(s);
    printf("accepted %s as it is: a new metadata journal over its %llu record(s), recorded in %s\n", cfg->data_dir,
           (unsigned long long)js.keys, cfg->journal_anchor_file);
    return 0;
}

/* Operator commands (ops.h): sent to the server holding the store if one runs (always, for
 * `coffer ctl …`), else run here on the store opened offline. Secrets the command needs (a new
 * master key, a password) are read here, as the caller, and passed along outside argv. */
static int cmd_op(const struct cf_config *cfg, int argc, char **argv, bool online_only)
{
    uint8_t secret[CF_OP_SECRET_MAX];
    size_t slen = 0;
    char *owned = NULL;
    int rc = 0;
    if (argc >= 2 && strcmp(argv[0], "backup") == 0 && strcmp(argv[1], "create") == 0)
        rc = cf_backup_cli_prepare(argc, argv, &owned); /* usage; DIR made absolute on this side */
    if (rc == 0)
        rc = cf_op_secret_for(argc, argv, secret, sizeof secret, &slen, stderr);
    if (rc != 0)
        goto out;
    enum cf_ctl_call r = cf_ctl_call(cfg->control_socket, argc, argv, secret, slen, &rc);
    if (r == CF_CTL_FAILED) {
        rc = 1;
    } else if (r == CF_CTL_NO_SERVER && online_only) {
        fprintf(stderr, "coffer: no server is running (nothing answers on %s)\n", cfg->control_socket);
        rc = 1;
    } else if (r == CF_CTL_NO_SERVER) {
        struct cf_store *s;
        if ((rc = open_store(cfg, "store", false, CF_ANCHOR_CHECK, &s, NULL)) != 0)
            goto out;
        /* What the server would provide around a command: the provenance writer (events of key
         * rotations and retention). */
        cf_audit_start(cfg, s);
        struct cf_op op = {.cfg = cfg, .store = s, .out = stdout, .err = stderr, .secret = secret, .secret_len = slen};
        rc = cf_op_run(&op, argc, argv);
        cf_audit_stop();
        cf_store_close(s);
    }
out:
    cf_wipe(secret, sizeof secret);
    free(owned);
    return rc;
}

/* coffer keys new-master FILE: a new random master key for `keys rotate-master` (never overwrites). */
static int cmd_new_master(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "coffer: usage: coffer keys new-master FILE\n");
        return 2;
    }
    int rc = create_master_key(argv[2]);
    if (rc == 0)
        printf("created master key %s: rotate to it with `coffer keys rotate-master --new-key %s`\n", argv[2],
               argv[2]);
    return rc;
}

int cf_cli_main(int argc, char **argv)
{
    const char *config = getenv("COFFER_CONFIG");
    char *args[64];
    int n = 0;
    /* Everything Coffer creates (store files, WAL, logs, the access log, the scanners' scratch, the
     * master key) is private to its account: files 0600, directories 0700. */
    umask(077);
    if (config == NULL || config[0] == '\0')
        config = DEFAULT_CONFIG;
    /* -c FILE may appear anywhere; everything else is the command and its arguments. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "coffer: -c needs a file\n");
                return 2;
            }
            config = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (n < (int)(sizeof args / sizeof args[0]) - 1) {
            args[n++] = argv[i];
        } else {
            fprintf(stderr, "coffer: too many arguments\n");
            return 2;
        }
    }
    args[n] = NULL;
    if (n == 0) {
        usage(stderr);
        return 2;
    }
    if (strcmp(args[0], "version") == 0) {
        printf("coffer %s (libh2o %s, RocksDB %s, %s)\n", COFFER_VERSION, H2O_VERSION, COFFER_ROCKSDB_VERSION,
               OpenSSL_version(OPENSSL_VERSION));
        return 0;
    }
    bool ctl = strcmp(args[0], "ctl") == 0;
    if (ctl && n < 2) {
        fprintf(stderr, "coffer: usage: coffer ctl COMMAND [ARGS] (an operator command, run by the running server)\n");
        return 2;
    }
    if (ctl ? !cf_op_known(args[1])
            : strcmp(args[0], "init") != 0 && strcmp(args[0], "serve") != 0 && strcmp(args[0], "audit") != 0 &&
                  strcmp(args[0], "fsck") != 0 && strcmp(args[0], "journal") != 0 && !cf_op_known(args[0])) {
        fprintf(stderr, "coffer: unknown command: %s\n", args[ctl ? 1 : 0]);
        usage(stderr);
        return 2;
    }
    /* serve --check: validate the configuration and everything it names, then exit (check.h). */
    bool check = strcmp(args[0], "serve") == 0 && n == 2 && strcmp(args[1], "--check") == 0;
    if (strcmp(args[0], "serve") == 0 && n != 1 && !check) {
        fprintf(stderr, "coffer: serve takes no arguments besides -c FILE and --check\n");
        return 2;
    }
    if ((strcmp(args[0], "init") == 0 || strcmp(args[0], "fsck") == 0) && n != 1) {
        fprintf(stderr, "coffer: %s takes no arguments besides -c FILE\n", args[0]);
        return 2;
    }
    struct cf_config cfg;
    int rc = load_config(config, &cfg);
    if (rc != 0)
        return rc;
    if (strcmp(args[0], "init") == 0)
        rc = cmd_init(&cfg);
    else if (strcmp(args[0], "serve") == 0)
        rc = check ? cf_check_serve(&cfg) : cf_serve(&cfg);
    else if (strcmp(args[0], "audit") == 0)
        rc = cmd_audit(&cfg, n - 1, args + 1);
    else if (strcmp(args[0], "fsck") == 0)
        rc = cmd_fsck(&cfg);
    else if (strcmp(args[0], "journal") == 0)
        rc = cmd_journal(&cfg, n - 1, args + 1);
    else if (ctl)
        rc = cmd_op(&cfg, n - 1, args + 1, true);
    else if (strcmp(args[0], "backup") == 0 && (n < 2 || strcmp(args[1], "create") != 0))
        rc = cf_cli_backup(&cfg, n, args);
    else if (strcmp(args[0], "keys") == 0 && n >= 2 && strcmp(args[1], "new-master") == 0)
        rc = cmd_new_master(n, args);
    else
        rc = cmd_op(&cfg, n, args, false);
    cf_config_clear(&cfg);
    return rc;
}
