/*
 * cli.c: the `coffer` command line: init, serve, version, tenant create|list, user add.
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
#include "cf_version.h"
#include "config.h"
#include "log.h"
#include "priv.h"
#include "server.h"

#define DEFAULT_CONFIG "/etc/coffer/coffer.yaml"
#define GENERATED_PASSWORD_LEN 20

static void usage(FILE *fp)
{
    fprintf(fp, "usage: coffer <command> [-c FILE] [options]\n"
                "commands:\n"
                "  init                      create the data directory, master key, tenant 'default' and admin\n"
                "  serve                     run the server (SIGTERM/SIGINT: graceful stop; SIGHUP: reload)\n"
                "  tenant create NAME        create a tenant\n"
                "  tenant list               list tenants\n"
                "  user add --tenant T --username U [--role member|admin|auditor] [--display-name NAME]\n"
                "                            add a user (password from $COFFER_USER_PASSWORD or generated)\n"
                "  audit verify [--tenant T] verify the provenance chains (works while the server runs)\n"
                "  fsck                      check every stored file against its recorded hash, find orphan chunks\n"
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

/* Opens the store of cfg for an offline command, explaining the usual failures. */
static int open_store(const struct cf_config *cfg, struct cf_store **out)
{
    struct cf_key master;
    struct cf_priv priv;
    char *err = NULL;
    int prc = before_key(cfg, "store", false, &priv);
    if (prc != 0)
        return prc;
    if (cf_master_key_load(cfg->master_key_file, &master, &err) != CF_OK) {
        fprintf(stderr, "coffer: %s\n", err);
        free(err);
        return 1;
    }
    if (after_key(&priv, &master) != 0)
        return 1;
    enum cf_status st = cf_store_open(cfg->data_dir, &master, out);
    cf_key_wipe(&master);
    switch (st) {
    case CF_OK:
        return 0;
    case CF_ENOTFOUND:
        fprintf(stderr, "coffer: %s is not initialised: run `coffer init -c %s` first\n", cfg->data_dir, cfg->path);
        return 1;
    case CF_EBUSY:
        fprintf(stderr, "coffer: %s is in use by a running coffer server; stop it first\n", cfg->data_dir);
        return 1;
    case CF_ECRYPTO:
        fprintf(stderr, "coffer: %s: the master key %s does not open this data directory\n", cfg->data_dir,
                cfg->master_key_file);
        return 1;
    default:
        fprintf(stderr, "coffer: %s: cannot open the store (%s)\n", cfg->data_dir, cf_status_name(st));
        return 1;
    }
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

/* The password for a new account: from env (validated), else generated and printed once. */
static int pick_password(const char *env, char *buf, size_t cap, bool *generated)
{
    const char *pw = getenv(env);
    if (pw != NULL) {
        size_t n = strlen(pw);
        if (!cf_auth_password_ok(pw, n) || n >= cap) {
            fprintf(stderr, "coffer: $%s: a password has %d to %d bytes\n", env, CF_PASSWORD_MIN, CF_PASSWORD_MAX);
            return 2;
        }
        memcpy(buf, pw, n + 1);
        *generated = false;
        return 0;
    }
    cf_auth_random_password(buf, GENERATED_PASSWORD_LEN + 1);
    *generated = true;
    return 0;
}

static int add_user(const struct cf_config *cfg, struct cf_store *s, const struct cf_id *tenant, const char *username,
                    enum cf_role role, const char *display_name, const char *env)
{
    char pw[CF_PASSWORD_MAX + 1];
    bool generated;
    int rc = pick_password(env, pw, sizeof pw, &generated);
    if (rc != 0)
        return rc;
    struct cf_user u = {0};
    u.tenant = *tenant;
    u.username = cf_xstrdup(username);
    u.display_name = display_name != NULL ? cf_xstrdup(display_name) : NULL;
    u.role = role;
    u.status = CF_USER_ACTIVE;
    if (cf_auth_hash_password(cfg, pw, strlen(pw), &u.pwhash) != CF_OK) {
        cf_wipe(pw, sizeof pw);
        cf_user_clear(&u);
        fprintf(stderr, "coffer: cannot hash the password\n");
        return 1;
    }
    enum cf_status st = cf_user_create(s, &u);
    if (st == CF_EEXIST) {
        fprintf(stderr, "coffer: user %s already exists in this tenant\n", username);
        rc = 1;
    } else if (st == CF_EINVAL) {
        fprintf(stderr, "coffer: %s: a username has 1 to 64 characters from A-Z a-z 0-9 . _ @ -\n", username);
        rc = 2;
    } else if (st != CF_OK) {
        fprintf(stderr, "coffer: cannot create user %s (%s)\n", username, cf_status_name(st));
        rc = 1;
    } else {
        char id[CF_ID_HEX_LEN + 1];
        cf_id_hex(&u.id, id);
        printf("created user %s (%s, id %s)\n", username, cf_role_name(role), id);
        if (generated)
            printf("password for %s (shown once): %s\n", username, pw);
    }
    cf_wipe(pw, sizeof pw);
    cf_user_clear(&u);
    return rc;
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
    if (after_key(&priv, &master) != 0)
        return 1;
    enum cf_status cs = cf_store_create(cfg->data_dir, &master);
    if (cs == CF_OK)
        cs = cf_store_open(cfg->data_dir, &master, &s);
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
    rc = add_user(cfg, s, &t.id, "admin", CF_ROLE_ADMIN, "Administrator", "COFFER_ADMIN_PASSWORD");
    cf_tenant_clear(&t);
out:
    cf_store_close(s);
    return rc;
}

static int cmd_tenant(const struct cf_config *cfg, int argc, char **argv)
{
    struct cf_store *s;
    if (argc < 1 || (strcmp(argv[0], "create") == 0 && argc != 2) || (strcmp(argv[0], "list") == 0 && argc != 1) ||
        (strcmp(argv[0], "create") != 0 && strcmp(argv[0], "list") != 0)) {
        fprintf(stderr, "coffer: usage: coffer tenant create NAME | coffer tenant list\n");
        return 2;
    }
    if (strcmp(argv[0], "create") == 0 && !cf_tenant_valid_name(argv[1], strlen(argv[1]))) {
        fprintf(stderr, "coffer: %s: a tenant name has 1 to 63 characters from a-z 0-9 - (not starting with -)\n",
                argv[1]);
        return 2;
    }
    int rc = open_store(cfg, &s);
    if (rc != 0)
        return rc;
    if (strcmp(argv[0], "create") == 0) {
        struct cf_tenant t;
        enum cf_status st = cf_tenant_create(s, argv[1], &t);
        if (st == CF_EEXIST) {
            fprintf(stderr, "coffer: tenant %s already exists\n", argv[1]);
            rc = 1;
        } else if (st != CF_OK) {
            fprintf(stderr, "coffer: cannot create tenant %s (%s)\n", argv[1], cf_status_name(st));
            rc = 1;
        } else {
            char id[CF_ID_HEX_LEN + 1];
            cf_id_hex(&t.id, id);
            printf("created tenant %s (id %s)\n", t.name, id);
            cf_tenant_clear(&t);
        }
    } else {
        struct cf_tenant *ts;
        size_t n;
        if (cf_tenant_list(s, &ts, &n) != CF_OK) {
            fprintf(stderr, "coffer: cannot list tenants\n");
            rc = 1;
        } else {
            for (size_t i = 0; i < n; i++) {
                char id[CF_ID_HEX_LEN + 1], at[32];
                cf_id_hex(&ts[i].id, id);
                cf_time_rfc3339(ts[i].created_at, at);
                printf("%s\t%s\t%s\n", ts[i].name, id, at);
                cf_tenant_clear(&ts[i]);
            }
            free(ts);
        }
    }
    cf_store_close(s);
    return rc;
}

static int cmd_user(const struct cf_config *cfg, int argc, char **argv)
{
    const char *tenant = NULL, *username = NULL, *role = "member", *display = NULL;
    static const struct option opts[] = {
        {"tenant", required_argument, NULL, 't'},
        {"username", required_argument, NULL, 'u'},
        {"role", required_argument, NULL, 'r'},
        {"display-name", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 1 || strcmp(argv[0], "add") != 0) {
        fprintf(stderr, "coffer: usage: coffer user add --tenant T --username U [--role ROLE] [--display-name N]\n");
        return 2;
    }
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            tenant = optarg;
            break;
        case 'u':
            username = optarg;
            break;
        case 'r':
            role = optarg;
            break;
        case 'd':
            display = optarg;
            break;
        default:
            return 2;
        }
    }
    if (tenant == NULL || username == NULL || optind != argc) {
        fprintf(stderr, "coffer: user add needs --tenant and --username (and nothing else)\n");
        return 2;
    }
    enum cf_role r;
    if (strcmp(role, "member") == 0)
        r = CF_ROLE_MEMBER;
    else if (strcmp(role, "admin") == 0)
        r = CF_ROLE_ADMIN;
    else if (strcmp(role, "auditor") == 0)
        r = CF_ROLE_AUDITOR;
    else {
        fprintf(stderr, "coffer: --role: expected member, admin or auditor\n");
        return 2;
    }
    if (!cf_user_valid_name(username, strlen(username))) {
        fprintf(stderr, "coffer: %s: a username has 1 to 64 characters from A-Z a-z 0-9 . _ @ -\n", username);
        return 2;
    }
    if (display != NULL && (strlen(display) == 0 || strlen(display) > 255)) {
        fprintf(stderr, "coffer: --display-name: 1 to 255 bytes\n");
        return 2;
    }
    struct cf_store *s;
    int rc = open_store(cfg, &s);
    if (rc != 0)
        return rc;
    struct cf_id tid;
    if (cf_tenant_find(s, tenant, strlen(tenant), &tid) != CF_OK) {
        fprintf(stderr, "coffer: no tenant named %s\n", tenant);
        rc = 1;
    } else {
        rc = add_user(cfg, s, &tid, username, r, display, "COFFER_USER_PASSWORD");
    }
    cf_store_close(s);
    return rc;
}

/* The offline readers (audit verify, fsck): drop privileges like the other commands, then open the
 * store read-only, which RocksDB allows beside a running server (a consistent view). */
static int open_readonly(const struct cf_config *cfg, const char *command, struct cf_store **s)
{
    struct cf_key master;
    struct cf_priv priv;
    char *err = NULL;
    int prc = before_key(cfg, command, false, &priv);
    if (prc != 0)
        return prc;
    if (cf_master_key_load(cfg->master_key_file, &master, &err) != CF_OK) {
        fprintf(stderr, "coffer: %s\n", err);
        free(err);
        return 1;
    }
    if (after_key(&priv, &master) != 0)
        return 1;
    enum cf_status st = cf_store_open_readonly(cfg->data_dir, &master, s);
    cf_key_wipe(&master);
    if (st != CF_OK) {
        fprintf(stderr, "coffer: %s: cannot open the store for reading (%s)\n", cfg->data_dir, cf_status_name(st));
        return 1;
    }
    return 0;
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
    int prc = open_readonly(cfg, "audit", &s);
    if (prc != 0)
        return prc;
    enum cf_status st;
    struct cf_tenant *ts;
    size_t n;
    int rc = 0;
    uint64_t total = 0;
    if (cf_tenant_list(s, &ts, &n) != CF_OK) {
        fprintf(stderr, "coffer: cannot list tenants\n");
        cf_store_close(s);
        return 1;
    }
    bool found = only == NULL;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && (only == NULL || strcmp(ts[i].name, only) == 0)) {
            uint64_t count, bad;
            const char *why;
            found = true;
            st = cf_audit_verify(s, &ts[i].id, &count, &bad, &why);
            if (st == CF_OK) {
                total += count;
            } else {
                fprintf(stderr, "coffer: audit: tenant %s: event %llu: %s\n", ts[i].name, (unsigned long long)bad,
                        why != NULL ? why : cf_status_name(st));
                rc = 1;
            }
        }
        cf_tenant_clear(&ts[i]);
    }
    free(ts);
    cf_store_close(s);
    if (!found) {
        fprintf(stderr, "coffer: no tenant named %s\n", only);
        return 1;
    }
    if (rc == 0)
        printf("ok: %llu events\n", (unsigned long long)total);
    return rc;
}

/* coffer fsck: reads the whole store (read-only, so beside a running server too) and reports as JSON;
 * exit 0 if every version decrypts to its recorded hash and no chunk is an orphan, 1 otherwise. */
static int cmd_fsck(const struct cf_config *cfg)
{
    struct cf_store *s;
    int prc = open_readonly(cfg, "fsck", &s);
    if (prc != 0)
        return prc;
    struct cf_check_report rep;
    enum cf_status st = cf_store_check(s, &rep);
    cf_store_close(s);
    if (st != CF_OK) {
        fprintf(stderr, "coffer: fsck: the store could not be read (%s)\n", cf_status_name(st));
        return 1;
    }
    printf("{\"versions\": %llu, \"bytes\": %llu, \"chunks\": %llu, \"corrupt\": %llu, \"resumable_contents\": %llu, "
           "\"unfinished_contents\": %llu, \"orphan_contents\": %llu}\n",
           (unsigned long long)rep.versions, (unsigned long long)rep.bytes, (unsigned long long)rep.chunks,
           (unsigned long long)rep.corrupt, (unsigned long long)rep.resumable_contents,
           (unsigned long long)rep.unfinished_contents, (unsigned long long)rep.orphan_contents);
    if (rep.corrupt != 0)
        fprintf(stderr, "coffer: fsck: %llu stored version(s) do not decrypt to their recorded hash\n",
                (unsigned long long)rep.corrupt);
    if (rep.orphan_contents != 0)
        fprintf(stderr, "coffer: fsck: %llu content(s) have chunks but no version and no upload\n",
                (unsigned long long)rep.orphan_contents);
    return rep.corrupt == 0 && rep.orphan_contents == 0 ? 0 : 1;
}

int cf_cli_main(int argc, char **argv)
{
    const char *config = getenv("COFFER_CONFIG");
    char *args[64];
    int n = 0;
    /* Everything Coffer creates (store files, WAL, logs, the access log, the scanners' scratch, the
     * master key) is private to its account: files 0600, directories 0700. */
    umask(077);
    /* The server's scanner processes: before anything else (no configuration, no store, no keys). */
    if (argc >= 2 && strcmp(argv[1], "scan-worker") == 0)
        return cf_scanner_main(argc - 1, argv + 1);
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
    if (strcmp(args[0], "init") != 0 && strcmp(args[0], "serve") != 0 && strcmp(args[0], "tenant") != 0 &&
        strcmp(args[0], "user") != 0 && strcmp(args[0], "audit") != 0 && strcmp(args[0], "fsck") != 0) {
        fprintf(stderr, "coffer: unknown command: %s\n", args[0]);
        usage(stderr);
        return 2;
    }
    if ((strcmp(args[0], "init") == 0 || strcmp(args[0], "serve") == 0 || strcmp(args[0], "fsck") == 0) && n != 1) {
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
        rc = cf_serve(&cfg);
    else if (strcmp(args[0], "tenant") == 0)
        rc = cmd_tenant(&cfg, n - 1, args + 1);
    else if (strcmp(args[0], "audit") == 0)
        rc = cmd_audit(&cfg, n - 1, args + 1);
    else if (strcmp(args[0], "fsck") == 0)
        rc = cmd_fsck(&cfg);
    else
        rc = cmd_user(&cfg, n - 1, args + 1);
    cf_config_clear(&cfg);
    return rc;
}
