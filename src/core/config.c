/*
 * config.c: strict YAML configuration (see config.h). The whole file is loaded as a libyaml
 * document, so every node carries its line; then a schema table walks it. Each mapping level has a
 * table of known keys; anything else is an error naming its line and dotted key path.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "cf_version.h"
#include "log.h"
#include "validate.h"

enum ftype { F_STR, F_PATH, F_STRLIST, F_SIZE, F_DURATION_S, F_DURATION_MS, F_UINT, F_ENUM, F_BOOL, F_MAP, F_CIDRLIST };

struct field {
    const char *key;
    enum ftype type;
    size_t off;                   /* offset into struct cf_config */
    uint64_t min, max;            /* F_UINT, F_SIZE, F_DURATION_*: inclusive range */
    const char *const *choices;   /* F_ENUM: NULL-terminated; the index is stored as int */
    const struct field *sub;      /* F_MAP: its keys, terminated by a NULL key */
};

#define OFF(m) offsetof(struct cf_config, m)
#define GiB (1024ull * 1024 * 1024)
#define MiB (1024ull * 1024)
#define DAY (24ull * 3600)

static const char *const unscannable_choices[] = {"reject", "allow", NULL};
static const char *const level_choices[] = {"debug", "info", "warn", "error", NULL};
static const char *const format_choices[] = {"text", "json", NULL}; /* CF_LOG_TEXT, CF_LOG_JSON */
static const char *const bool_choices[] = {"false", "true", NULL};

static const struct field tls_fields[] = {
    {"certificate", F_PATH, OFF(tls_certificate), 0, 0, NULL, NULL},
    {"key", F_PATH, OFF(tls_key), 0, 0, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field limits_fields[] = {
    {"max_file_bytes", F_SIZE, OFF(limits.max_file_bytes), 1, 1024 * GiB, NULL, NULL},
    {"max_request_body_bytes", F_SIZE, OFF(limits.max_request_body_bytes), 64 * 1024, 1 * GiB, NULL, NULL},
    {"request_timeout", F_DURATION_MS, OFF(limits.request_timeout_ms), 1, 3600, NULL, NULL},
    {"max_json_bytes", F_SIZE, OFF(limits.max_json_bytes), 1024, 16 * MiB, NULL, NULL},
    {"handshake_timeout", F_DURATION_MS, OFF(limits.handshake_timeout_ms), 1, 600, NULL, NULL},
    {"idle_timeout", F_DURATION_MS, OFF(limits.idle_timeout_ms), 1, 3600, NULL, NULL},
    {"max_connections", F_UINT, OFF(limits.max_connections), 1, 1000000, NULL, NULL},
    {"max_connections_per_address", F_UINT, OFF(limits.max_connections_per_address), 1, 1000000, NULL, NULL},
    {"max_cancels_per_connection", F_UINT, OFF(limits.max_cancels_per_connection), 1, 1000000, NULL, NULL},
    {"max_buffered_body_bytes", F_SIZE, OFF(limits.max_buffered_body_bytes), 64 * 1024, 64 * GiB, NULL, NULL},
    {"metadata_cache", F_SIZE, OFF(limits.metadata_cache_bytes), 0, 64 * GiB, NULL, NULL},
    {"download_buffers", F_UINT, OFF(limits.download_buffers), 0, 4096, NULL, NULL},
    {"max_zip_entries", F_UINT, OFF(limits.max_zip_entries), 1, 1000000, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field scan_fields[] = {
    {"database_dir", F_PATH, OFF(scan.database_dir), 0, 0, NULL, NULL},
    {"on_unscannable", F_ENUM, OFF(scan.on_unscannable), 0, 0, unscannable_choices, NULL},
    {"max_seconds", F_UINT, OFF(scan.max_seconds), 1, 3600, NULL, NULL},
    {"scratch_dir", F_PATH, OFF(scan.scratch_dir), 0, 0, NULL, NULL},
    {"processes", F_UINT, OFF(scan.processes), 0, 64, NULL, NULL},
    {"development", F_BOOL, OFF(scan.development), 0, 0, bool_choices, NULL},
    {"accept_unscanned", F_BOOL, OFF(scan.accept_unscanned), 0, 0, bool_choices, NULL},
    {"stream", F_BOOL, OFF(scan.stream), 0, 0, bool_choices, NULL},
    {"stream_idle_seconds", F_UINT, OFF(scan.stream_idle_seconds), 1, 3600, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field render_fields[] = {
    {"enabled", F_BOOL, OFF(render.enabled), 0, 0, bool_choices, NULL},
    {"processes", F_UINT, OFF(render.processes), 1, 64, NULL, NULL},
    {"max_seconds", F_UINT, OFF(render.max_seconds), 1, 3600, NULL, NULL},
    {"max_pages", F_UINT, OFF(render.max_pages), 1, 100000, NULL, NULL},
    {"idle_stop", F_DURATION_S, OFF(render.idle_stop_s), 0, 7 * DAY, NULL, NULL},
    {"max_input", F_SIZE, OFF(render.max_input), 1024, 4 * GiB, NULL, NULL},
    {"max_output", F_SIZE, OFF(render.max_output), 64 * 1024, 1 * GiB, NULL, NULL},
    {"max_pixels", F_SIZE, OFF(render.max_pixels), 1024 * 1024, 4000000000ull, NULL, NULL},
    {"memory", F_SIZE, OFF(render.memory), 256 * MiB, 64 * GiB, NULL, NULL},
    {"scratch_dir", F_PATH, OFF(render.scratch_dir), 0, 0, NULL, NULL},
    {"office", F_BOOL, OFF(render.office), 0, 0, bool_choices, NULL},
    {"soffice", F_PATH, OFF(render.soffice), 0, 0, NULL, NULL},
    {"watermark_opacity", F_UINT, OFF(render.watermark_opacity), 1, 100, NULL, NULL},
    {"pages_per_minute", F_UINT, OFF(render.pages_per_minute), 1, 1024, NULL, NULL},
    {"queue", F_UINT, OFF(render.queue), 1, 10000, NULL, NULL},
    {"text_language", F_STR, OFF(render.text_language), 0, 0, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field shares_fields[] = {
    {"default_expiry", F_DURATION_S, OFF(shares.default_expiry_s), 60, 3650 * DAY, NULL, NULL},
    {"max_expiry", F_DURATION_S, OFF(shares.max_expiry_s), 60, 3650 * DAY, NULL, NULL},
    {"code_length", F_UINT, OFF(shares.code_length), 4, 16, NULL, NULL},
    {"code_failures_per_ip", F_UINT, OFF(shares.code_failures_per_ip), 1, 1000, NULL, NULL},
    {"code_failures_per_link", F_UINT, OFF(shares.code_failures_per_link), 1, 1000, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field uploads_fields[] = {
    {"expire_after", F_DURATION_S, OFF(uploads.expire_after_s), 1, 30 * DAY, NULL, NULL},
    {"max_pending", F_UINT, OFF(uploads.max_pending), 1, 10000, NULL, NULL},
    {"max_pending_bytes", F_SIZE, OFF(uploads.max_pending_bytes), 1, 100000 * GiB, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field dav_fields[] = {
    {"max_put_bytes", F_SIZE, OFF(dav.max_put_bytes), 64 * 1024, 1 * GiB, NULL, NULL},
    {"max_propfind_members", F_UINT, OFF(dav.max_propfind_members), 1, 1000000, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field audit_fields[] = {
    {"retention", F_DURATION_S, OFF(audit.retention_s), DAY, 36500 * DAY, NULL, NULL},
    {"webhook_allow_private", F_BOOL, OFF(audit.webhook_allow_private), 0, 0, bool_choices, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field auth_fields[] = {
    {"session_ttl", F_DURATION_S, OFF(auth.session_ttl_s), 60, 90 * DAY, NULL, NULL},
    {"argon2_memory", F_SIZE, OFF(auth.argon2_memory_kib), 8 * 1024, 4 * GiB, NULL, NULL},
    {"argon2_iterations", F_UINT, OFF(auth.argon2_iterations), 1, 64, NULL, NULL},
    {"argon2_parallelism", F_UINT, OFF(auth.argon2_parallelism), 1, 16, NULL, NULL},
    {"max_failures_per_account", F_UINT, OFF(auth.max_failures_per_account), 1, 1000, NULL, NULL},
    {"max_failures_per_ip", F_UINT, OFF(auth.max_failures_per_ip), 1, 1000, NULL, NULL},
    {"failure_window", F_DURATION_S, OFF(auth.failure_window_s), 10, 86400, NULL, NULL},
    {"max_sessions_per_user", F_UINT, OFF(auth.max_sessions_per_user), 1, 1000, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field log_fields[] = {
    {"access", F_STR, OFF(log.access), 0, 0, NULL, NULL},
    {"level", F_ENUM, OFF(log.level), 0, 0, level_choices, NULL},
    {"format", F_ENUM, OFF(log.format), 0, 0, format_choices, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field metrics_fields[] = {
    {"allow", F_CIDRLIST, OFF(metrics.allow), 0, 0, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const char *const dept_choices[] = {"none", "dn", NULL}; /* enum cf_dir_depts */
static const struct field dir_users_fields[] = {
    {"base", F_STR, OFF(directory.user_base), 0, 0, NULL, NULL},
    {"filter", F_STR, OFF(directory.user_filter), 0, 0, NULL, NULL},
    {"username", F_STR, OFF(directory.user_username), 0, 0, NULL, NULL},
    {"display_name", F_STR, OFF(directory.user_display_name), 0, 0, NULL, NULL},
    {"email", F_STR, OFF(directory.user_email), 0, 0, NULL, NULL},
    {"disabled", F_STR, OFF(directory.user_disabled), 0, 0, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field dir_groups_fields[] = {
    {"base", F_STR, OFF(directory.group_base), 0, 0, NULL, NULL},
    {"filter", F_STR, OFF(directory.group_filter), 0, 0, NULL, NULL},
    {"name", F_STR, OFF(directory.group_name), 0, 0, NULL, NULL},
    {"members", F_STR, OFF(directory.group_members), 0, 0, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field directory_fields[] = {
    {"url", F_STR, OFF(directory.url), 0, 0, NULL, NULL},
    {"start_tls", F_BOOL, OFF(directory.start_tls), 0, 0, bool_choices, NULL},
    {"allow_plaintext", F_BOOL, OFF(directory.allow_plaintext), 0, 0, bool_choices, NULL},
    {"ca", F_PATH, OFF(directory.ca), 0, 0, NULL, NULL},
    {"bind_dn", F_STR, OFF(directory.bind_dn), 0, 0, NULL, NULL},
    {"bind_password_file", F_PATH, OFF(directory.bind_password_file), 0, 0, NULL, NULL},
    {"tenant", F_STR, OFF(directory.tenant), 0, 0, NULL, NULL},
    {"users", F_MAP, 0, 0, 0, NULL, dir_users_fields},
    {"groups", F_MAP, 0, 0, 0, NULL, dir_groups_fields},
    {"departments", F_ENUM, OFF(directory.departments), 0, 0, dept_choices, NULL},
    {"sync_interval", F_DURATION_S, OFF(directory.sync_interval_s), 0, 366 * DAY, NULL, NULL},
    {"offboard_after", F_DURATION_S, OFF(directory.offboard_after_s), 0, 3650 * DAY, NULL, NULL},
    {"timeout", F_DURATION_S, OFF(directory.timeout_s), 1, 600, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const char *const store_engine_choices[] = {"rocksdb", "cluster", NULL}; /* enum cf_store_engine */
static const struct field store_pg_fields[] = {
    {"conninfo", F_STR, OFF(store.pg_conninfo), 0, 0, NULL, NULL},
    {"password_file", F_PATH, OFF(store.pg_password_file), 0, 0, NULL, NULL},
    {"timeout", F_DURATION_MS, OFF(store.pg_timeout_ms), 1, 3600, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field store_rados_fields[] = {
    {"conf", F_PATH, OFF(store.rados_conf), 0, 0, NULL, NULL},
    {"pool", F_STR, OFF(store.rados_pool), 0, 0, NULL, NULL},
    {"user", F_STR, OFF(store.rados_user), 0, 0, NULL, NULL},
    {"keyring", F_PATH, OFF(store.rados_keyring), 0, 0, NULL, NULL},
    {"op_timeout", F_DURATION_S, OFF(store.rados_op_timeout_s), 1, 3600, NULL, NULL},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field store_fields[] = {
    {"engine", F_ENUM, OFF(store.engine), 0, 0, store_engine_choices, NULL},
    {"postgres", F_MAP, 0, 0, 0, NULL, store_pg_fields},
    {"rados", F_MAP, 0, 0, 0, NULL, store_rados_fields},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field root_fields[] = {
    {"listen", F_STRLIST, OFF(listen), 0, 0, NULL, NULL},
    {"public_url", F_STR, OFF(public_url), 0, 0, NULL, NULL},
    {"tls", F_MAP, 0, 0, 0, NULL, tls_fields},
    {"data_dir", F_PATH, OFF(data_dir), 0, 0, NULL, NULL},
    {"master_key_file", F_PATH, OFF(master_key_file), 0, 0, NULL, NULL},
    {"journal_anchor_file", F_PATH, OFF(journal_anchor_file), 0, 0, NULL, NULL},
    {"threads", F_UINT, OFF(threads), 0, 256, NULL, NULL},
    {"web_dir", F_PATH, OFF(web_dir), 0, 0, NULL, NULL},
    {"user", F_STR, OFF(user), 0, 0, NULL, NULL},
    {"control_socket", F_PATH, OFF(control_socket), 0, 0, NULL, NULL},
    {"limits", F_MAP, 0, 0, 0, NULL, limits_fields},
    {"uploads", F_MAP, 0, 0, 0, NULL, uploads_fields},
    {"dav", F_MAP, 0, 0, 0, NULL, dav_fields},
    {"scan", F_MAP, 0, 0, 0, NULL, scan_fields},
    {"render", F_MAP, 0, 0, 0, NULL, render_fields},
    {"shares", F_MAP, 0, 0, 0, NULL, shares_fields},
    {"audit", F_MAP, 0, 0, 0, NULL, audit_fields},
    {"auth", F_MAP, 0, 0, 0, NULL, auth_fields},
    {"log", F_MAP, 0, 0, 0, NULL, log_fields},
    {"metrics", F_MAP, 0, 0, 0, NULL, metrics_fields},
    {"directory", F_MAP, 0, 0, 0, NULL, directory_fields},
    {"store", F_MAP, 0, 0, 0, NULL, store_fields},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

#define MAX_SEEN 128

struct ctx {
    const char *file;    /* for messages */
    char *dir;           /* for relative paths */
    yaml_document_t *doc;
    char *err;           /* first error, malloc'ed */
    struct {
        char *path;      /* dotted key path, malloc'ed */
        const yaml_node_t *node;
    } seen[MAX_SEEN];    /* where each key was set, for checks that involve two keys */
    size_t nseen;
};

static const yaml_node_t *seen_node(const struct ctx *c, const char *path)
{
    for (size_t i = 0; i < c->nseen; i++)
        if (strcmp(c->seen[i].path, path) == 0)
            return c->seen[i].node;
    return NULL;
}

/* fail() then return from the calling void function. */
#define FAIL_RETURN(...)                                                                                               \
    do {                                                                                                               \
        fail(__VA_ARGS__);                                                                                             \
        return;                                                                                                        \
    } while (0)

static void fail(struct ctx *c, const yaml_node_t *n, const char *path, const char *what)
{
    if (c->err != NULL)
        return;
    if (n != NULL)
        c->err = cf_xasprintf("%s:%zu: %s: %s", c->file, n->start_mark.line + 1, path, what);
    else
        c->err = cf_xasprintf("%s: %s: %s", c->file, path, what);
}

enum cf_status cf_parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"KiB", 1024ull}, {"MiB", MiB}, {"GiB", GiB}, {"TiB", 1024 * GiB}, {"B", 1}, {"", 1}};
    size_t n = strlen(s), digits = 0;
    while (digits < n && s[digits] >= '0' && s[digits] <= '9')
        digits++;
    uint64_t v;
    if (cf_parse_u64(s, digits, UINT64_MAX, &v) != CF_OK)
        return CF_EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(s + digits, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].mult)
                return CF_EINVAL;
            *out = v * units[i].mult;
            return CF_OK;
        }
    }
    return CF_EINVAL;
}

enum cf_status cf_parse_duration(const char *s, uint64_t *out_seconds)
{
    size_t n = strlen(s);
    if (n < 2)
        return CF_EINVAL;
    uint64_t mult;
    switch (s[n - 1]) {
    case 's':
        mult = 1;
        break;
    case 'm':
        mult = 60;
        break;
    case 'h':
        mult = 3600;
        break;
    case 'd':
        mult = DAY;
        break;
    default:
        return CF_EINVAL;
    }
    uint64_t v;
    if (cf_parse_u64(s, n - 1, UINT64_MAX / mult, &v) != CF_OK)
        return CF_EINVAL;
    *out_seconds = v * mult;
    return CF_OK;
}

enum cf_status cf_parse_cidr(const char *s, struct cf_cidr *out)
{
    char addr[INET6_ADDRSTRLEN];
    const char *slash = strchr(s, '/');
    size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof addr)
        return CF_EINVAL;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    struct cf_cidr c = {0};
    unsigned bits;
    if (inet_pton(AF_INET, addr, c.addr) == 1) {
        c.family = AF_INET;
        bits = 32;
    } else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
        c.family = AF_INET6;
        bits = 128;
    } else {
        return CF_EINVAL;
    }
    uint64_t prefix = bits;
    if (slash != NULL && cf_parse_u64(slash + 1, strlen(slash + 1), bits, &prefix) != CF_OK)
        return CF_EINVAL;
    c.prefix = (unsigned)prefix;
    /* Clients of a dual-stack listener appear as ::ffff:a.b.c.d; cf_cidr_match compares them as IPv4. */
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (c.family == AF_INET6 && c.prefix >= 96 && memcmp(c.addr, mapped, sizeof mapped) == 0) {
        memmove(c.addr, c.addr + 12, 4);
        memset(c.addr + 4, 0, 12);
        c.family = AF_INET;
        c.prefix -= 96;
    }
    for (unsigned i = c.prefix; i < 128; i++)
        c.addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
    *out = c;
    return CF_OK;
}

bool cf_cidr_match(const struct cf_cidr *list, size_t n, const struct sockaddr *sa)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *a;
    int family;
    if (sa->sa_family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        family = AF_INET;
    } else if (sa->sa_family == AF_INET6) {
        a = (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        family = AF_INET6;
        if (memcmp(a, mapped, sizeof mapped) == 0) {
            a += 12;
            family = AF_INET;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const struct cf_cidr *c = &list[i];
        if (c->family != family)
            continue;
        unsigned full = c->prefix / 8, rest = c->prefix % 8;
        if (memcmp(a, c->addr, full) != 0)
            continue;
        if (rest != 0 && ((a[full] ^ c->addr[full]) & (uint8_t)(0xff00u >> rest)) != 0)
            continue;
        return true;
    }
    return false;
}

static const char *scalar(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static char *resolve_path(struct ctx *c, const char *v)
{
    if (v[0] == '/')
        return cf_xstrdup(v);
    return cf_xasprintf("%s/%s", c->dir, v);
}

static void set_uint(struct cf_config *cfg, const struct field *f, uint64_t v)
{
    char *p = (char *)cfg + f->off;
    /* Narrow fields are uint32_t/unsigned; wide ones uint64_t. Sizes decide by the field. */
    if (f->type == F_UINT || (f->type == F_SIZE && strcmp(f->key, "argon2_memory") == 0)) {
        uint32_t x = (uint32_t)(f->type == F_SIZE ? v / 1024 : v);
        memcpy(p, &x, sizeof x);
    } else {
        memcpy(p, &v, sizeof v);
    }
}

static void walk(struct ctx *c, struct cf_config *cfg, const yaml_node_t *map, const struct field *fields,
                 const char *prefix);

static void apply(struct ctx *c, struct cf_config *cfg, const struct field *f, const yaml_node_t *v, const char *path)
{
    const char *s = scalar(v);
    uint64_t u;
    char *p = (char *)cfg + f->off;
    switch (f->type) {
    case F_MAP:
        if (v->type != YAML_MAPPING_NODE)
            FAIL_RETURN(c, v, path, "expected a mapping");
        walk(c, cfg, v, f->sub, path);
        return;
    case F_STRLIST: {
        if (v->type != YAML_SEQUENCE_NODE)
            FAIL_RETURN(c, v, path, "expected a list like [\"127.0.0.1:8443\"]");
        size_t cnt = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
            const yaml_node_t *item = yaml_document_get_node(c->doc, *it);
            const char *is = item != NULL ? scalar(item) : NULL;
            if (is == NULL || is[0] == '\0')
                FAIL_RETURN(c, item, path, "expected a host:port string");
            if (cnt == CF_CONFIG_MAX_LISTEN)
                FAIL_RETURN(c, item, path, "too many entries (at most 16)");
            cfg->listen[cnt++] = cf_xstrdup(is);
            cfg->nlisten = cnt; /* so that cf_config_clear frees what is there on a later error */
        }
        if (cnt == 0)
            FAIL_RETURN(c, v, path, "expected at least one host:port");
        cfg->nlisten = cnt;
        return;
    }
    case F_CIDRLIST: {
        /* metrics.allow, the one list of address ranges; an empty list lets nobody in. */
        if (v->type != YAML_SEQUENCE_NODE)
            FAIL_RETURN(c, v, path, "expected a list like [\"127.0.0.1/8\", \"::1/128\"]");
        size_t cnt = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
            const yaml_node_t *item = yaml_document_get_node(c->doc, *it);
            const char *is = item != NULL ? scalar(item) : NULL;
            if (cnt == CF_CONFIG_MAX_ALLOW)
                FAIL_RETURN(c, item, path, "too many entries (at most 32)");
            if (is == NULL || cf_parse_cidr(is, &cfg->metrics.allow[cnt]) != CF_OK)
                FAIL_RETURN(c, item, path, "expected an address or a range like 127.0.0.1/8 or ::1/128");
            cnt++;
        }
        cfg->metrics.nallow = cnt;
        return;
    }
    default:
        break;
    }
    if (s == NULL)
        FAIL_RETURN(c, v, path, "expected a scalar value");
    switch (f->type) {
    case F_STR:
    case F_PATH: {
        if (s[0] == '\0')
            FAIL_RETURN(c, v, path, "must not be empty");
        char **dst = (char **)(void *)p;
        free(*dst);
        *dst = f->type == F_PATH ? resolve_path(c, s) : cf_xstrdup(s);
        return;
    }
    case F_UINT:
        if (cf_parse_u64(s, strlen(s), UINT64_MAX, &u) != CF_OK)
            FAIL_RETURN(c, v, path, "expected a whole number");
        if (u < f->min || u > f->max) {
            char *m = cf_xasprintf("must be between %llu and %llu", (unsigned long long)f->min,
                                   (unsigned long long)f->max);
            fail(c, v, path, m);
            free(m);
            return;
        }
        set_uint(cfg, f, u);
        return;
    case F_SIZE:
        if (cf_parse_size(s, &u) != CF_OK)
            FAIL_RETURN(c, v, path, "expected a size like 64MiB");
        if (u < f->min || u > f->max)
            FAIL_RETURN(c, v, path, "size out of range");
        set_uint(cfg, f, u);
        return;
    case F_DURATION_S:
    case F_DURATION_MS:
        if (cf_parse_duration(s, &u) != CF_OK)
            FAIL_RETURN(c, v, path, "expected a duration like 7d");
        if (u < f->min || u > f->max)
            FAIL_RETURN(c, v, path, "duration out of range");
        set_uint(cfg, f, f->type == F_DURATION_MS ? u * 1000 : u);
        return;
    case F_BOOL: {
        bool b;
        if (strcmp(s, "true") == 0)
            b = true;
        else if (strcmp(s, "false") == 0)
            b = false;
        else
            FAIL_RETURN(c, v, path, "expected true or false");
        memcpy(p, &b, sizeof b);
        return;
    }
    case F_ENUM:
        for (int i = 0; f->choices[i] != NULL; i++) {
            if (strcmp(s, f->choices[i]) == 0) {
                memcpy(p, &i, sizeof i);
                return;
            }
        }
        {
            char *m = cf_xasprintf("expected one of: %s%s%s%s%s%s%s", f->choices[0],
                                   f->choices[1] ? ", " : "", f->choices[1] ? f->choices[1] : "",
                                   f->choices[1] && f->choices[2] ? ", " : "",
                                   f->choices[1] && f->choices[2] ? f->choices[2] : "",
                                   f->choices[1] && f->choices[2] && f->choices[3] ? ", " : "",
                                   f->choices[1] && f->choices[2] && f->choices[3] ? f->choices[3] : "");
            fail(c, v, path, m);
            free(m);
        }
        return;
    default:
        return;
    }
}

static void walk(struct ctx *c, struct cf_config *cfg, const yaml_node_t *map, const struct field *fields,
                 const char *prefix)
{
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top && c->err == NULL;
         pr++) {
        const yaml_node_t *k = yaml_document_get_node(c->doc, pr->key);
        const yaml_node_t *v = yaml_document_get_node(c->doc, pr->value);
        const char *ks = k != NULL ? scalar(k) : NULL;
        if (ks == NULL || v == NULL)
            FAIL_RETURN(c, k, prefix[0] ? prefix : "(top level)", "keys must be plain strings");
        char *path = prefix[0] ? cf_xasprintf("%s.%s", prefix, ks) : cf_xstrdup(ks);
        /* Duplicate keys: YAML says they are an error; libyaml accepts them, so check here. */
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < pr; q++) {
            const yaml_node_t *qk = yaml_document_get_node(c->doc, q->key);
            const char *qs = qk != NULL ? scalar(qk) : NULL;
            if (qs != NULL && strcmp(qs, ks) == 0) {
                fail(c, k, path, "duplicate key");
                free(path);
                return;
            }
        }
        const struct field *f = fields;
        while (f->key != NULL && strcmp(f->key, ks) != 0)
            f++;
        if (f->key == NULL) {
            fail(c, k, path, "unknown key");
        } else {
            if (c->nseen < MAX_SEEN) {
                c->seen[c->nseen].path = cf_xstrdup(path);
                c->seen[c->nseen].node = k;
                c->nseen++;
            }
            apply(c, cfg, f, v, path);
        }
        free(path);
    }
}

static void set_defaults(struct cf_config *cfg)
{
    cfg->limits.max_file_bytes = 10 * GiB;
    cfg->limits.max_zip_entries = 10000;
    cfg->dav.max_propfind_members = 10000;
    cfg->limits.max_request_body_bytes = 64 * MiB;
    cfg->limits.request_timeout_ms = 60 * 1000;
    cfg->limits.max_json_bytes = 64 * 1024;
    cfg->limits.handshake_timeout_ms = 10 * 1000;
    cfg->limits.idle_timeout_ms = 10 * 1000;
    cfg->limits.max_connections = 4096;
    cfg->limits.max_connections_per_address = 256;
    cfg->limits.max_cancels_per_connection = 100;
    cfg->limits.max_buffered_body_bytes = 64 * MiB; /* 4 pieces of 16 MiB: docs/DESIGN.md "Memory" */
    cfg->limits.metadata_cache_bytes = 64 * MiB;
    cfg->uploads.expire_after_s = DAY;
    cfg->uploads.max_pending = 16;
    cfg->uploads.max_pending_bytes = 0; /* unset: 2 × limits.max_file_bytes (validate) */
    cfg->scan.on_unscannable = CF_UNSCANNABLE_REJECT;
    cfg->scan.max_seconds = 60;
    cfg->scan.stream = true; /* scanned while it arrives (DESIGN.md "Uploads: scanning while the upload arrives") */
    cfg->scan.stream_idle_seconds = 10;
    cfg->render.enabled = true;
    cfg->render.processes = 2;
    cfg->render.max_seconds = 60;
    cfg->render.max_pages = 500;
    cfg->render.idle_stop_s = 60;
    cfg->render.max_input = 64 * MiB;
    cfg->render.max_output = 32 * MiB;
    cfg->render.max_pixels = 100000000;
    cfg->render.memory = 2 * GiB;
    cfg->render.office = true;
    cfg->render.watermark_opacity = 22;
    cfg->render.pages_per_minute = 120;
    cfg->shares.default_expiry_s = 7 * DAY;
    cfg->shares.max_expiry_s = 7 * DAY;
    cfg->shares.code_length = 4;
    cfg->shares.code_failures_per_ip = 5;
    cfg->shares.code_failures_per_link = 20;
    cfg->audit.retention_s = 1095 * DAY;
    cfg->auth.session_ttl_s = 12 * 3600;
    cfg->auth.argon2_memory_kib = 64 * 1024;
    cfg->auth.argon2_iterations = 3;
    cfg->auth.argon2_parallelism = 1;
    cfg->auth.max_failures_per_account = 10;
    cfg->auth.max_failures_per_ip = 30;
    cfg->auth.failure_window_s = 15 * 60;
    cfg->auth.max_sessions_per_user = 20;
    cfg->log.level = CF_LOG_INFO;
    cfg->log.format = CF_LOG_TEXT;
    cfg->log.access = cf_xstrdup("-");
    cfg->directory.sync_interval_s = 15 * 60;
    cfg->directory.offboard_after_s = 30 * DAY;
    cfg->directory.timeout_s = 10;
    cfg->directory.departments = CF_DIR_DEPTS_DN;
    /* metrics: loopback only */
    if (cf_parse_cidr("127.0.0.0/8", &cfg->metrics.allow[0]) != CF_OK ||
        cf_parse_cidr("::1/128", &cfg->metrics.allow[1]) != CF_OK)
        abort();
    cfg->metrics.nallow = 2;
}

/* Lexically normalised absolute path: no "." or ".." segments, no repeated or trailing "/". */
static char *normalise(const char *p)
{
    size_t n = strlen(p);
    char *out = cf_xmalloc(n + 2);
    size_t o = 0;
    const char *s = p;
    while (*s != '\0') {
        while (*s == '/')
            s++;
        const char *e = strchr(s, '/');
        size_t l = e != NULL ? (size_t)(e - s) : strlen(s);
        if (l == 0)
            break;
        if (l == 1 && s[0] == '.') {
            /* skip */
        } else if (l == 2 && s[0] == '.' && s[1] == '.') {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;
        } else {
            out[o++] = '/';
            memcpy(out + o, s, l);
            o += l;
        }
        s += l;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return out;
}

/* The canonical form of p: symlinks resolved for the longest existing prefix, the rest lexical. */
static char *canonical(const char *p)
{
    char *norm = normalise(p);
    size_t cut = strlen(norm);
    for (;;) {
        char saved = norm[cut];
        norm[cut] = '\0';
        char *real = realpath(cut == 0 ? "/" : norm, NULL);
        norm[cut] = saved;
        if (real != NULL) {
            char *joined = cf_xasprintf("%s%s", strcmp(real, "/") == 0 ? "" : real, norm + cut);
            free(real);
            free(norm);
            char *out = normalise(joined);
            free(joined);
            return out;
        }
        while (cut > 0 && norm[cut - 1] != '/')
            cut--;
        if (cut == 0)
            return norm;
        cut--;
    }
}

/* Whether path is dir or below it, after normalisation and symlink resolution. */
static bool path_inside(const char *path, const char *dir)
{
    char *p = canonical(path), *d = canonical(dir);
    size_t dl = strlen(d);
    bool inside = strcmp(d, "/") == 0 || (strncmp(p, d, dl) == 0 && (p[dl] == '/' || p[dl] == '\0'));
    free(p);
    free(d);
    return inside;
}

/* Reads a password file (key: its dotted key): a regular file, not accessible to group or others
 * (like the master key), one line (a final newline is dropped), at most 1 KiB. *out malloc'ed. */
static void read_password_file(struct ctx *c, const char *path, const char *key, char **out, size_t *outlen)
{
    const yaml_node_t *n = seen_node(c, key);
    char buf[1025];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0) {
        char *m = cf_xasprintf("cannot open %s: %s", path, strerror(errno));
        fail(c, n, key, m);
        free(m);
        return;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        close(fd);
        FAIL_RETURN(c, n, key, "must be a regular file not readable by group or others (chmod 600)");
    }
    ssize_t got = read(fd, buf, sizeof buf);
    close(fd);
    size_t len = got > 0 ? (size_t)got : 0;
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    if (got < 0 || got == (ssize_t)sizeof buf || len == 0 || memchr(buf, '\0', len) != NULL ||
        memchr(buf, '\n', len) != NULL) {
        cf_wipe(buf, sizeof buf);
        FAIL_RETURN(c, n, key, "expected one line of 1 to 1024 bytes");
    }
    *out = cf_xstrndup(buf, len);
    *outlen = len;
    cf_wipe(buf, sizeof buf);
}

/* The directory's bind password (read_password_file). */
static void read_bind_password(struct ctx *c, struct cf_config *cfg)
{
    read_password_file(c, cfg->directory.bind_password_file, "directory.bind_password_file",
                       &cfg->directory.bind_password, &cfg->directory.bind_password_len);
}

/* The store section (docs/CLUSTER.md): cluster needs postgres.conninfo; postgres and rados belong to
 * cluster only; the PostgreSQL password is read now, before privileges are dropped. */
static void validate_store(struct ctx *c, struct cf_config *cfg)
{
    bool cluster = cfg->store.engine == CF_STORE_CLUSTER;
    const yaml_node_t *pg = seen_node(c, "store.postgres"), *rados = seen_node(c, "store.rados");
    cfg->store.rados = rados != NULL;
    if (!cluster && (pg != NULL || rados != NULL))
        FAIL_RETURN(c, pg != NULL ? pg : rados, pg != NULL ? "store.postgres" : "store.rados",
                    "only with store.engine: cluster");
    if (!cluster)
        return;
    if (cfg->store.pg_conninfo == NULL)
        FAIL_RETURN(c, pg != NULL ? pg : seen_node(c, "store"), "store.postgres.conninfo",
                    "required with engine: cluster (a libpq connection string, like \"host=db port=5432 "
                    "dbname=coffer user=coffer\")");
    if (strstr(cfg->store.pg_conninfo, "password") != NULL)
        FAIL_RETURN(c, seen_node(c, "store.postgres.conninfo"), "store.postgres.conninfo",
                    "must not hold the password: put it in store.postgres.password_file (mode 0600)");
    if (cfg->store.pg_timeout_ms == 0)
        cfg->store.pg_timeout_ms = 30000;
    if (rados != NULL && cfg->store.rados_pool == NULL)
        FAIL_RETURN(c, rados, "store.rados.pool", "required with rados");
    if (cfg->store.rados_op_timeout_s == 0)
        cfg->store.rados_op_timeout_s = 30;
    if (cfg->store.pg_password_file != NULL)
        read_password_file(c, cfg->store.pg_password_file, "store.postgres.password_file", &cfg->store.pg_password,
                           &cfg->store.pg_password_len);
}

/* The directory section: required keys, the URL and its transport security, defaults. */
static void validate_directory(struct ctx *c, struct cf_config *cfg)
{
    cfg->directory.enabled = seen_node(c, "directory") != NULL || cfg->directory.url != NULL;
    if (!cfg->directory.enabled)
        return;
    const yaml_node_t *sec = seen_node(c, "directory");
    if (cfg->directory.url == NULL)
        FAIL_RETURN(c, sec, "directory.url", "required (ldaps://host or ldap://host with start_tls: true)");
    const char *u = cfg->directory.url;
    bool ldaps = strncmp(u, "ldaps://", 8) == 0, ldap = strncmp(u, "ldap://", 7) == 0;
    const yaml_node_t *un = seen_node(c, "directory.url");
    if (!ldaps && !ldap)
        FAIL_RETURN(c, un, "directory.url", "expected ldaps://host[:port] or ldap://host[:port]");
    const char *host = u + (ldaps ? 8 : 7);
    if (host[0] == '\0' || host[0] == '/' || strpbrk(host, " ,\t") != NULL)
        FAIL_RETURN(c, un, "directory.url", "expected one host: ldaps://host[:port] (no spaces, no second URL)");
    if (ldaps && cfg->directory.start_tls)
        FAIL_RETURN(c, seen_node(c, "directory.start_tls"), "directory.start_tls",
                    "ldaps:// is TLS already; start_tls goes with ldap:// only");
    if (ldap && !cfg->directory.start_tls && !cfg->directory.allow_plaintext)
        FAIL_RETURN(c, un, "directory.url",
                    "ldap:// without start_tls: true would send passwords in clear; use ldaps://, set start_tls: "
                    "true, or (test set-ups only) allow_plaintext: true");
    if (cfg->directory.bind_dn != NULL && cfg->directory.bind_password_file == NULL)
        FAIL_RETURN(c, seen_node(c, "directory.bind_dn"), "directory.bind_password_file", "required with bind_dn");
    if (cfg->directory.bind_dn == NULL && cfg->directory.bind_password_file != NULL)
        FAIL_RETURN(c, seen_node(c, "directory.bind_password_file"), "directory.bind_dn",
                    "required with bind_password_file");
    if (cfg->directory.user_base == NULL)
        FAIL_RETURN(c, sec, "directory.users.base", "required (the DN below which users are searched)");
    if (cfg->directory.group_base == NULL && seen_node(c, "directory.groups") != NULL)
        FAIL_RETURN(c, seen_node(c, "directory.groups"), "directory.groups.base", "required with groups");
    static const struct {
        const char *key;
        size_t off;
    } filters[] = {{"directory.users.filter", OFF(directory.user_filter)},
                   {"directory.users.disabled", OFF(directory.user_disabled)},
                   {"directory.groups.filter", OFF(directory.group_filter)}};
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        const char *f = *(char **)(void *)((char *)cfg + filters[i].off);
        if (f == NULL)
            continue;
        /* An LDAP filter (RFC 4515) is one parenthesised expression with balanced parentheses. */
        int depth = 0;
        bool ok = f[0] == '(';
        for (size_t k = 0; ok && f[k] != '\0'; k++) {
            depth += f[k] == '(' ? 1 : f[k] == ')' ? -1 : 0;
            ok = depth >= 0 && (depth > 0 || f[k + 1] == '\0');
        }
        if (!ok || depth != 0)
            FAIL_RETURN(c, seen_node(c, filters[i].key), filters[i].key,
                        "expected an LDAP filter in parentheses, like (objectClass=inetOrgPerson)");
    }
    static const struct {
        size_t off;
        const char *def;
    } defaults[] = {{OFF(directory.tenant), "default"},
                    {OFF(directory.user_filter), "(objectClass=inetOrgPerson)"},
                    {OFF(directory.user_username), "uid"},
                    {OFF(directory.user_display_name), "cn"},
                    {OFF(directory.user_email), "mail"},
                    {OFF(directory.group_filter), "(objectClass=groupOfNames)"},
                    {OFF(directory.group_name), "cn"},
                    {OFF(directory.group_members), "member"}};
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        char **p = (char **)(void *)((char *)cfg + defaults[i].off);
        if (*p == NULL)
            *p = cf_xstrdup(defaults[i].def);
    }
    if (cfg->directory.bind_password_file != NULL)
        read_bind_password(c, cfg);
}

/* Checks that need more than one key, and required keys. */
static void validate(struct ctx *c, struct cf_config *cfg)
{
    if (cfg->data_dir == NULL)
        FAIL_RETURN(c, NULL, "data_dir", "required");
    if (cfg->master_key_file == NULL)
        FAIL_RETURN(c, NULL, "master_key_file", "required");
    if (cfg->tls_certificate == NULL)
        FAIL_RETURN(c, NULL, "tls.certificate", "required");
    if (cfg->tls_key == NULL)
        FAIL_RETURN(c, NULL, "tls.key", "required");
    if (cfg->shares.default_expiry_s > cfg->shares.max_expiry_s) {
        const yaml_node_t *n = seen_node(c, "shares.default_expiry");
        FAIL_RETURN(c, n != NULL ? n : seen_node(c, "shares.max_expiry"), "shares.default_expiry",
                    "must not exceed shares.max_expiry");
    }
    if (cfg->uploads.max_pending_bytes == 0)
        cfg->uploads.max_pending_bytes = 2 * cfg->limits.max_file_bytes;
    else if (cfg->uploads.max_pending_bytes < cfg->limits.max_file_bytes)
        FAIL_RETURN(c, seen_node(c, "uploads.max_pending_bytes"), "uploads.max_pending_bytes",
                    "must be at least limits.max_file_bytes (else the largest file cannot be uploaded)");
    if (cfg->dav.max_put_bytes == 0)
        cfg->dav.max_put_bytes = cfg->limits.max_request_body_bytes;
    else if (cfg->dav.max_put_bytes > cfg->limits.max_request_body_bytes)
        FAIL_RETURN(c, seen_node(c, "dav.max_put_bytes"), "dav.max_put_bytes",
                    "must not exceed limits.max_request_body_bytes (every body is held whole in memory)");
    if (cfg->limits.max_connections_per_address > cfg->limits.max_connections)
        FAIL_RETURN(c, seen_node(c, "limits.max_connections_per_address"), "limits.max_connections_per_address",
                    "must not exceed limits.max_connections");
    if (path_inside(cfg->master_key_file, cfg->data_dir))
        FAIL_RETURN(c, seen_node(c, "master_key_file"), "master_key_file",
                    "must be outside data_dir (a copy of the data must not carry its key)");
    if (cfg->journal_anchor_file == NULL)
        cfg->journal_anchor_file = cf_xasprintf("%s.anchor", cfg->master_key_file);
    if (path_inside(cfg->journal_anchor_file, cfg->data_dir))
        FAIL_RETURN(c, seen_node(c, "journal_anchor_file"), "journal_anchor_file",
                    "must be outside data_dir (a rolled-back copy of the data would carry its anchor)");
    if (cfg->public_url != NULL) {
        size_t n = strlen(cfg->public_url);
        size_t scheme = strncmp(cfg->public_url, "https://", 8) == 0 ? 8
                        : strncmp(cfg->public_url, "http://", 7) == 0 ? 7 : 0;
        if (scheme == 0)
            FAIL_RETURN(c, seen_node(c, "public_url"), "public_url", "expected an http(s):// URL");
        while (n > scheme && cfg->public_url[n - 1] == '/')
            cfg->public_url[--n] = '\0';
        /* A host must follow the scheme ("http:///" is not a URL: found by tests/fuzz/fuzz_config). Links
         * are built by appending to it, so nothing that would end or break a URL may appear either. */
        bool ok = n > scheme && cfg->public_url[scheme] != '/';
        for (size_t i = scheme; i < n && ok; i++) {
            unsigned char ch = (unsigned char)cfg->public_url[i];
            ok = ch > 0x20 && ch < 0x7f && ch != '?' && ch != '#' && ch != '\\' && ch != '"';
        }
        if (!ok)
            FAIL_RETURN(c, seen_node(c, "public_url"), "public_url",
                        "expected an http(s):// URL with a host (no spaces, query or fragment)");
    }
    if (cfg->control_socket == NULL)
        cfg->control_socket = cf_xasprintf("%s/control.sock", cfg->data_dir);
    /* sockaddr_un.sun_path holds 108 bytes with its NUL */
    if (strlen(cfg->control_socket) > 107) {
        const char *key = seen_node(c, "control_socket") != NULL ? "control_socket" : "data_dir";
        FAIL_RETURN(c, seen_node(c, key), key,
                    "the control socket path is longer than 107 bytes; set control_socket to a shorter path");
    }
    validate_directory(c, cfg);
    if (c->err != NULL)
        return;
    validate_store(c, cfg);
    if (c->err != NULL)
        return;
    if (cfg->log.access != NULL && strcmp(cfg->log.access, "off") == 0) {
        free(cfg->log.access);
        cfg->log.access = NULL;
    } else if (cfg->log.access != NULL && strcmp(cfg->log.access, "-") != 0 && cfg->log.access[0] != '/') {
        char *p = resolve_path(c, cfg->log.access);
        free(cfg->log.access);
        cfg->log.access = p;
    }
}

enum cf_status cf_config_load(const char *path, struct cf_config *out, char **err)
{
    struct ctx c = {.file = path};
    yaml_parser_t parser;
    yaml_document_t doc;
    memset(out, 0, sizeof *out);
    *err = NULL;

    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        *err = cf_xasprintf("%s: cannot open: %s", path, strerror(errno));
        return CF_EINVAL;
    }
    /* Relative paths in the file are relative to the file's own directory, made absolute here so
     * that path checks (master key outside data_dir) compare like with like. */
    char *pathcopy = cf_xstrdup(path);
    c.dir = realpath(dirname(pathcopy), NULL);
    free(pathcopy);
    if (c.dir == NULL) {
        fclose(fp);
        *err = cf_xasprintf("%s: cannot resolve its directory: %s", path, strerror(errno));
        return CF_EINVAL;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        free(c.dir);
        *err = cf_xasprintf("%s: cannot initialise the YAML parser", path);
        return CF_EINVAL;
    }
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, &doc)) {
        *err = cf_xasprintf("%s:%zu: %s", path, parser.problem_mark.line + 1,
                            parser.problem != NULL ? parser.problem : "invalid YAML");
        yaml_parser_delete(&parser);
        fclose(fp);
        free(c.dir);
        return CF_EINVAL;
    }
    c.doc = &doc;
    set_defaults(out);
    out->path = cf_xstrdup(path);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL)
        fail(&c, NULL, "(top level)", "the file is empty");
    else if (root->type != YAML_MAPPING_NODE)
        fail(&c, root, "(top level)", "expected a mapping of keys");
    else
        walk(&c, out, root, root_fields, "");
    if (c.err == NULL)
        validate(&c, out);
    if (c.err == NULL && out->nlisten == 0) {
        out->listen[0] = cf_xstrdup("127.0.0.1:8443");
        out->nlisten = 1;
    }
    if (c.err == NULL && out->public_url == NULL)
        out->public_url = cf_xstrdup("https://localhost:8443");
    if (c.err == NULL && out->web_dir == NULL)
        out->web_dir = cf_xstrdup(COFFER_WEB_DIR);
    if (c.err == NULL && out->scan.database_dir == NULL)
        out->scan.database_dir = cf_xstrdup("/var/lib/clamav");
    if (c.err == NULL && out->scan.scratch_dir == NULL)
        out->scan.scratch_dir = cf_xstrdup("/dev/shm");
    if (c.err == NULL && out->render.scratch_dir == NULL)
        out->render.scratch_dir = cf_xstrdup("/dev/shm");
    if (c.err == NULL && out->render.soffice == NULL)
        out->render.soffice = cf_xstrdup("/usr/lib/libreoffice/program/soffice.bin");
    if (c.err == NULL && out->render.text_language == NULL)
        out->render.text_language = cf_xstrdup("zh-cn");
    if (c.err == NULL && !cf_language_tag_valid(out->render.text_language))
        fail(&c, NULL, "render.text_language", "expected a language tag such as zh-cn, zh-tw, ja or en");
    for (size_t i = 0; i < c.nseen; i++)
        free(c.seen[i].path);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(fp);
    free(c.dir);
    if (c.err != NULL) {
        cf_config_clear(out);
        *err = c.err;
        return CF_EINVAL;
    }
    return CF_OK;
}

void cf_config_clear(struct cf_config *c)
{
    if (c == NULL)
        return;
    free(c->path);
    for (size_t i = 0; i < c->nlisten; i++)
        free(c->listen[i]);
    free(c->public_url);
    free(c->tls_certificate);
    free(c->tls_key);
    free(c->data_dir);
    free(c->control_socket);
    free(c->master_key_file);
    free(c->journal_anchor_file);
    free(c->scan.database_dir);
    free(c->scan.scratch_dir);
    free(c->render.scratch_dir);
    free(c->render.soffice);
    free(c->render.text_language);
    free(c->web_dir);
    free(c->user);
    free(c->log.access);
    free(c->directory.url);
    free(c->directory.ca);
    free(c->directory.bind_dn);
    free(c->directory.bind_password_file);
    if (c->directory.bind_password != NULL)
        cf_free_secret(c->directory.bind_password, c->directory.bind_password_len);
    free(c->store.pg_conninfo);
    free(c->store.pg_password_file);
    if (c->store.pg_password != NULL)
        cf_free_secret(c->store.pg_password, c->store.pg_password_len);
    free(c->store.rados_conf);
    free(c->store.rados_pool);
    free(c->store.rados_user);
    free(c->store.rados_keyring);
    free(c->directory.tenant);
    free(c->directory.user_base);
    free(c->directory.user_filter);
    free(c->directory.user_username);
    free(c->directory.user_display_name);
    free(c->directory.user_email);
    free(c->directory.user_disabled);
    free(c->directory.group_base);
    free(c->directory.group_filter);
    free(c->directory.group_name);
    free(c->directory.group_members);
    memset(c, 0, sizeof *c);
}
