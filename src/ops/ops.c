/*
 * ops.c: the operator commands (see ops.h): tenant create|list|delete, user add, keys
 * rotate-master|rotate-tenant, backup create (backup_cli.c), retention run (retention.c), status.
 * Each one writes its report to op->out and its errors to op->err and never to stdout/stderr
 * directly, because online the server captures both and sends them back to the CLI.
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "auth.h"
#include "cf_version.h"
#include "metrics.h"
#include "rescan.h"
#include "retention.h"
#include "handlers.h"
#include "log.h"
#include "scan.h"
#include "startup.h"
#include "web.h"

#define GENERATED_PASSWORD_LEN 20

/* ---- tenants ---------------------------------------------------------------------------------- */

static int find_tenant(struct cf_op *op, const char *name, struct cf_id *out)
{
    if (cf_tenant_find(op->store, name, strlen(name), out) != CF_OK) {
        fprintf(op->err, "coffer: no tenant named %s\n", name);
        return 1;
    }
    return 0;
}

static int tenant_create(struct cf_op *op, const char *name)
{
    struct cf_tenant t;
    enum cf_status st = cf_tenant_create(op->store, name, &t);
    if (st == CF_EEXIST) {
        fprintf(op->err, "coffer: tenant %s already exists\n", name);
        return 1;
    }
    if (st != CF_OK) {
        fprintf(op->err, "coffer: cannot create tenant %s (%s)\n", name, cf_status_name(st));
        return 1;
    }
    char id[CF_ID_HEX_LEN + 1];
    cf_id_hex(&t.id, id);
    fprintf(op->out, "created tenant %s (id %s)\n", t.name, id);
    cf_tenant_clear(&t);
    return 0;
}

static int tenant_list(struct cf_op *op)
{
    struct cf_tenant *ts;
    size_t n;
    if (cf_tenant_list(op->store, &ts, &n) != CF_OK) {
        fprintf(op->err, "coffer: cannot list tenants\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        char id[CF_ID_HEX_LEN + 1], at[32];
        cf_id_hex(&ts[i].id, id);
        cf_time_rfc3339(ts[i].created_at, at);
        fprintf(op->out, "%s\t%s\t%s\n", ts[i].name, id, at);
        cf_tenant_clear(&ts[i]);
    }
    free(ts);
    return 0;
}

/* Crypto-shredding: irreversible, so it wants --yes; everything else about it is in storage.h. */
static int tenant_delete(struct cf_op *op, const char *name)
{
    struct cf_id id;
    if (find_tenant(op, name, &id) != 0)
        return 1;
    uint64_t keys = 0;
    enum cf_status st = cf_tenant_delete(op->store, &id, &keys);
    if (st != CF_OK) {
        fprintf(op->err, "coffer: deleting tenant %s failed (%s); run the command again to finish\n", name,
                cf_status_name(st));
        return 1;
    }
    char hex[CF_ID_HEX_LEN + 1];
    cf_id_hex(&id, hex);
    cf_log_info("ctl: tenant %s deleted: keys destroyed, %llu records removed", hex, (unsigned long long)keys);
    fprintf(op->out,
            "deleted tenant %s (id %s): its keys are destroyed and %llu records removed; backups taken before now "
            "still hold its data under the current master key (docs/OPERATIONS.md, \"Deleting a tenant\")\n",
            name, hex, (unsigned long long)keys);
    return 0;
}

static int cmd_tenant(struct cf_op *op, int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : "";
    if (strcmp(sub, "list") == 0 && argc == 2)
        return tenant_list(op);
    if ((strcmp(sub, "create") == 0 && argc == 3) ||
        (strcmp(sub, "delete") == 0 && argc == 4 && strcmp(argv[3], "--yes") == 0)) {
        if (!cf_tenant_valid_name(argv[2], strlen(argv[2]))) {
            fprintf(op->err, "coffer: %s: a tenant name has 1 to 63 characters from a-z 0-9 - (not starting with -)\n",
                    argv[2]);
            return 2;
        }
        return sub[0] == 'c' ? tenant_create(op, argv[2]) : tenant_delete(op, argv[2]);
    }
    if (strcmp(sub, "delete") == 0 && argc == 3) {
        fprintf(op->err, "coffer: tenant delete destroys the keys and data of tenant %s for good; repeat with --yes\n",
                argv[2]);
        return 2;
    }
    fprintf(op->err, "coffer: usage: coffer tenant create NAME | tenant list | tenant delete NAME --yes\n");
    return 2;
}

/* ---- users ------------------------------------------------------------------------------------ */

int cf_op_add_user(struct cf_op *op, const struct cf_id *tenant, const char *username, enum cf_role role,
                   const char *display_name)
{
    char pw[CF_PASSWORD_MAX + 1];
    bool generated = op->secret_len == 0;
    if (!generated) {
        if (!cf_auth_password_ok((const char *)op->secret, op->secret_len) || op->secret_len >= sizeof pw) {
            fprintf(op->err, "coffer: the password has %d to %d bytes\n", CF_PASSWORD_MIN, CF_PASSWORD_MAX);
            return 2;
        }
        memcpy(pw, op->secret, op->secret_len);
        pw[op->secret_len] = '\0';
    } else {
        cf_auth_random_password(pw, GENERATED_PASSWORD_LEN + 1);
    }
    int rc = 0;
    struct cf_user u = {0};
    u.tenant = *tenant;
    u.username = cf_xstrdup(username);
    u.display_name = display_name != NULL ? cf_xstrdup(display_name) : NULL;
    u.role = role;
    u.status = CF_USER_ACTIVE;
    enum cf_status st = cf_auth_hash_password(op->cfg, pw, strlen(pw), &u.pwhash);
    if (st == CF_OK)
        st = cf_user_create(op->store, &u);
    if (st == CF_EEXIST) {
        fprintf(op->err, "coffer: user %s already exists in this tenant\n", username);
        rc = 1;
    } else if (st == CF_EINVAL) {
        fprintf(op->err, "coffer: %s: a username has 1 to 64 characters from A-Z a-z 0-9 . _ @ -\n", username);
        rc = 2;
    } else if (st != CF_OK) {
        fprintf(op->err, "coffer: cannot create user %s (%s)\n", username, cf_status_name(st));
        rc = 1;
    } else {
        char id[CF_ID_HEX_LEN + 1];
        cf_id_hex(&u.id, id);
        fprintf(op->out, "created user %s (%s, id %s)\n", username, cf_role_name(role), id);
        if (generated)
            fprintf(op->out, "password for %s (shown once): %s\n", username, pw);
    }
    cf_wipe(pw, sizeof pw);
    cf_user_clear(&u);
    return rc;
}

static int cmd_user(struct cf_op *op, int argc, char **argv)
{
    const char *tenant = NULL, *username = NULL, *role = "member", *display = NULL;
    static const struct option opts[] = {
        {"tenant", required_argument, NULL, 't'},
        {"username", required_argument, NULL, 'u'},
        {"role", required_argument, NULL, 'r'},
        {"display-name", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2 || strcmp(argv[1], "add") != 0) {
        fprintf(op->err, "coffer: usage: coffer user add --tenant T --username U [--role ROLE] [--display-name N]\n");
        return 2;
    }
    optind = 2;
    opterr = 0;
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
            fprintf(op->err, "coffer: user add: unknown or incomplete option %s\n", argv[optind - 1]);
            return 2;
        }
    }
    if (tenant == NULL || username == NULL || optind != argc) {
        fprintf(op->err, "coffer: user add needs --tenant and --username (and nothing else)\n");
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
        fprintf(op->err, "coffer: --role: expected member, admin or auditor\n");
        return 2;
    }
    if (!cf_user_valid_name(username, strlen(username))) {
        fprintf(op->err, "coffer: %s: a username has 1 to 64 characters from A-Z a-z 0-9 . _ @ -\n", username);
        return 2;
    }
    if (display != NULL && (strlen(display) == 0 || strlen(display) > 255)) {
        fprintf(op->err, "coffer: --display-name: 1 to 255 bytes\n");
        return 2;
    }
    struct cf_id tid;
    if (find_tenant(op, tenant, &tid) != 0)
        return 1;
    return cf_op_add_user(op, &tid, username, r, display);
}

/* ---- keys ------------------------------------------------------------------------------------- */

/* One key.rotate event in the tenant's provenance log (cf_event_new's actor is the system); a tenant
 * rotation also names the generation and what was rewrapped (rep, NULL for the master key). */
static void record_rotation(const struct cf_id *tenant, const char *kind, const struct cf_rotate_report *rep)
{
    struct cf_event *e = cf_event_new(tenant, "key.rotate", "ok");
    cf_event_detail(e, "kind", json_string(kind));
    if (rep != NULL) {
        cf_event_detail(e, "generation", json_integer(rep->generation));
        cf_event_detail(e, "versions", json_integer((json_int_t)rep->versions));
        cf_event_detail(e, "uploads", json_integer((json_int_t)rep->uploads));
    }
    cf_audit_submit(e);
}

static int rotate_master(struct cf_op *op, const char *file)
{
    struct cf_key k;
    if (op->secret_len != sizeof k.k) {
        fprintf(op->err, "coffer: keys rotate-master: no new key was passed\n");
        return 2;
    }
    memcpy(k.k, op->secret, sizeof k.k);
    uint64_t tenants = 0;
    enum cf_status st = cf_store_rotate_master(op->store, &k, &tenants);
    cf_key_wipe(&k);
    if (st == CF_EINVAL) {
        fprintf(op->err, "coffer: %s is the current master key; generate a new one with `coffer keys new-master FILE`\n",
                file);
        return 2;
    }
    if (st != CF_OK) {
        fprintf(op->err, "coffer: master key rotation failed (%s); the old key still opens the store\n",
                cf_status_name(st));
        return 1;
    }
    cf_metrics_key_rotation("master");
    struct cf_tenant *ts;
    size_t n;
    if (cf_tenant_list(op->store, &ts, &n) == CF_OK) {
        for (size_t i = 0; i < n; i++) {
            record_rotation(&ts[i].id, "master", NULL);
            cf_tenant_clear(&ts[i]);
        }
        free(ts);
    }
    cf_log_info("ctl: master key rotated (%llu tenant keys rewrapped)", (unsigned long long)tenants);
    fprintf(op->out,
            "rotated the master key: %llu tenant key(s) rewrapped; only %s opens %s from now on.\n"
            "Install it as master_key_file (%s) before the next start, and keep or destroy the old key as "
            "docs/OPERATIONS.md says (backups taken before now need the old key).\n",
            (unsigned long long)tenants, file, op->cfg->data_dir, op->cfg->master_key_file);
    return 0;
}

static int rotate_tenant(struct cf_op *op, const char *name)
{
    struct cf_id id;
    if (find_tenant(op, name, &id) != 0)
        return 1;
    struct cf_rotate_report rep;
    enum cf_status st = cf_tenant_rotate_key(op->store, &id, op->online ? cf_tus_claim_server() : NULL, &rep);
    if (st != CF_OK) {
        fprintf(op->err, "coffer: rotating the key of tenant %s failed (%s); run the command again to finish\n", name,
                cf_status_name(st));
        return 1;
    }
    cf_metrics_key_rotation("tenant");
    record_rotation(&id, "tenant", &rep);
    cf_log_info("ctl: content key of a tenant rotated to generation %u (%llu versions, %llu uploads rewrapped)",
                rep.generation, (unsigned long long)rep.versions, (unsigned long long)rep.uploads);
    fprintf(op->out,
            "rotated the content key of tenant %s to generation %u: %llu file version(s) and %llu upload(s) rewrapped, "
            "%u old generation(s) destroyed\n",
            name, rep.generation, (unsigned long long)rep.versions, (unsigned long long)rep.uploads, rep.retired);
    return 0;
}

static int cmd_keys(struct cf_op *op, int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "rotate-master") == 0 && strcmp(argv[2], "--new-key") == 0)
        return rotate_master(op, argv[3]);
    if (argc == 3 && strcmp(argv[1], "rotate-tenant") == 0)
        return rotate_tenant(op, argv[2]);
    fprintf(op->err, "coffer: usage: coffer keys rotate-master --new-key FILE | keys rotate-tenant NAME | "
                     "keys new-master FILE\n");
    return 2;
}

/* ---- retention, status ------------------------------------------------------------------------ */

static int cmd_retention(struct cf_op *op, int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "run") != 0) {
        fprintf(op->err, "coffer: usage: coffer retention run\n");
        return 2;
    }
    struct cf_retention_report rep;
    if (cf_retention_run(op->cfg, op->store, &rep) != CF_OK) {
        fprintf(op->err, "coffer: retention failed part-way (the server log says where); it resumes at the next run\n");
        return 1;
    }
    fprintf(op->out, "retention: %llu trashed node(s), %llu offboarded space(s), %llu provenance event(s) purged\n",
            (unsigned long long)rep.trash, (unsigned long long)rep.spaces, (unsigned long long)rep.audit);
    return 0;
}

static int cmd_status(struct cf_op *op, int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(op->err, "coffer: usage: coffer status\n");
        return 2;
    }
    struct cf_tenant *ts;
    size_t n = 0;
    if (cf_tenant_list(op->store, &ts, &n) == CF_OK) {
        for (size_t i = 0; i < n; i++)
            cf_tenant_clear(&ts[i]);
        free(ts);
    }
    if (op->online)
        fprintf(op->out, "server: running (pid %ld, coffer %s, up %llu s)\n", (long)getpid(), COFFER_VERSION,
                (unsigned long long)((cf_now_ms() - op->started_at) / 1000));
    else
        fprintf(op->out, "server: not running\n");
    fprintf(op->out, "store: %s (%zu tenant(s))\n", op->cfg->data_dir, n);
    if (op->online) {
        /* Said only when uploads are not being scanned, or files accepted unscanned are (rescan.h). */
        const char *scan = cf_web_scan_status();
        if (strcmp(scan, "ok") != 0)
            fprintf(op->out, "scanner: %s (%s)\n", cf_scan_state(),
                    strcmp(scan, "disabled") == 0 ? "uploads are NOT scanned for malware" : "uploads fail with 503");
        struct cf_rescan_progress p;
        cf_rescan_progress(&p);
        if (p.running || p.total > 0)
            fprintf(op->out, "rescan: %s: %llu/%llu scanned, %llu found, %llu not scanned (files accepted unscanned)\n",
                    p.running ? "running" : "done", (unsigned long long)p.scanned, (unsigned long long)p.total,
                    (unsigned long long)p.found, (unsigned long long)p.failed);
    }
    return 0;
}

/* ---- the table -------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*fn)(struct cf_op *op, int argc, char **argv);
} commands[] = {
    {"tenant", cmd_tenant}, {"user", cmd_user},     {"keys", cmd_keys},
    {"backup", cf_op_backup_create}, {"retention", cmd_retention}, {"status", cmd_status},
    {"directory", cf_op_directory}, /* directory.c: `directory sync [--dry-run]` */
};

bool cf_op_known(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return true;
    return false;
}

int cf_op_run(struct cf_op *op, int argc, char **argv)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (argc >= 1 && strcmp(commands[i].name, argv[0]) == 0)
            return commands[i].fn(op, argc, argv);
    fprintf(op->err, "coffer: unknown command: %s\n", argc >= 1 ? argv[0] : "");
    return 2;
}

int cf_op_secret_for(int argc, char **argv, uint8_t *buf, size_t cap, size_t *len, FILE *err)
{
    *len = 0;
    if (argc == 4 && strcmp(argv[0], "keys") == 0 && strcmp(argv[1], "rotate-master") == 0 &&
        strcmp(argv[2], "--new-key") == 0) {
        struct cf_key k;
        char *msg = NULL;
        if (cap < sizeof k.k)
            return 1;
        if (cf_master_key_load(argv[3], &k, &msg) != CF_OK) {
            fprintf(err, "coffer: %s\n", msg);
            free(msg);
            return 2;
        }
        memcpy(buf, k.k, sizeof k.k);
        *len = sizeof k.k;
        cf_key_wipe(&k);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[0], "user") == 0 && strcmp(argv[1], "add") == 0) {
        const char *pw = getenv("COFFER_USER_PASSWORD");
        if (pw == NULL)
            return 0;
        size_t n = strlen(pw);
        if (n == 0 || n > cap || !cf_auth_password_ok(pw, n)) {
            fprintf(err, "coffer: $COFFER_USER_PASSWORD: a password has %d to %d bytes\n", CF_PASSWORD_MIN,
                    CF_PASSWORD_MAX);
            return 2;
        }
        memcpy(buf, pw, n);
        *len = n;
    }
    return 0;
}
