/*
 * config.h: the YAML configuration (SPEC §2), parsed strictly: an unknown key, a duplicate key, a
 * wrong type or an out-of-range value is an error naming the file, the line and the key path, e.g.
 *   coffer.yaml:12: shares.max_expiry: expected a duration like 7d
 * Relative paths are resolved against the directory of the configuration file.
 * The struct is filled once at start-up and read-only afterwards (any thread may read it).
 */
#ifndef CF_CONFIG_H
#define CF_CONFIG_H

#include "base.h"

#define CF_CONFIG_MAX_LISTEN 16
#define CF_CONFIG_MAX_ALLOW 32 /* entries of metrics.allow */

/* An address range: family AF_INET or AF_INET6, the first prefix bits of addr (0..32 or 0..128;
 * the other bits are zero; an AF_INET address uses addr[0..3]). */
struct cf_cidr {
    int family;
    unsigned prefix;
    uint8_t addr[16];
};

enum cf_on_unscannable { CF_UNSCANNABLE_REJECT = 0, CF_UNSCANNABLE_ALLOW = 1 };
enum cf_dir_depts { CF_DIR_DEPTS_NONE = 0, CF_DIR_DEPTS_DN = 1 };
enum cf_store_engine { CF_STORE_ROCKSDB = 0, CF_STORE_CLUSTER = 1 };

struct cf_config {
    char *path;                 /* the file this was read from */
    char *listen[CF_CONFIG_MAX_LISTEN]; /* "host:port" (IPv6 as "[::1]:8443") */
    size_t nlisten;
    char *public_url;           /* base of share URLs, no trailing slash */
    char *tls_certificate;      /* PEM chain path */
    char *tls_key;              /* PEM key path */
    char *data_dir;             /* the store */
    char *master_key_file;      /* 32 bytes, mode 0600, outside data_dir */
    char *journal_anchor_file;  /* the metadata journal's head, outside data_dir (default master_key_file.anchor) */
    unsigned threads;           /* event loops; 0 = one per core */
    char *web_dir;              /* the web UI's static files */
    char *user;                 /* account to drop to when started as root (NULL: unset; see priv.h) */
    char *control_socket;       /* the control socket (ctl.c); default <data_dir>/control.sock */
    struct {
        uint64_t max_file_bytes;         /* largest file, any upload path */
        uint64_t max_request_body_bytes; /* largest request body (simple upload, tus PATCH) */
        uint64_t request_timeout_ms;     /* whole-request timeout (h2o req_timeout; HTTP/2: the sweep) */
        uint64_t max_json_bytes;         /* largest JSON request body; also the most body a request may
                                            send unless it is an upload with credentials */
        uint64_t handshake_timeout_ms;   /* TLS handshake (h2o handshake_timeout) */
        uint64_t idle_timeout_ms;        /* HTTP/2 connection without a stream (h2o idle_timeout + sweep) */
        unsigned max_connections;        /* open connections, all clients */
        unsigned max_connections_per_address; /* open connections per IPv4 address or IPv6 /64 */
        unsigned max_cancels_per_connection;  /* HTTP/2 requests cancelled per connection per 10 s */
        uint64_t max_buffered_body_bytes;     /* upload bodies held at once after receipt (budget.h) */
        uint64_t metadata_cache_bytes;        /* the metadata cache's bound (storage/cache.h); 0: off */
        unsigned download_buffers;            /* idle chunk buffers kept for downloads (bufpool.h); 0: auto */
        unsigned max_zip_entries;             /* files and folders in one folder download (zip.c) */
    } limits;
    struct {                             /* WebDAV at /dav/ (docs/WEBDAV.md "PUT size and memory") */
        uint64_t max_put_bytes;          /* largest PUT body: 413 past it (default and ceiling:
                                            limits.max_request_body_bytes; src/http/conn.c) */
        unsigned max_propfind_members;   /* members one Depth 1 PROPFIND lists: 507 past it (dav_props.c) */
    } dav;
    struct {
        uint64_t expire_after_s;         /* an unfinished resumable upload expires this long after its last PATCH */
        unsigned max_pending;            /* unfinished resumable uploads per user */
        uint64_t max_pending_bytes;      /* sum of their Upload-Length per user */
    } uploads;
    struct {
        char *database_dir;              /* ClamAV signature directory */
        enum cf_on_unscannable on_unscannable;
        unsigned max_seconds;            /* one file's scan, archives included (libclamav MAX_SCANTIME) */
        char *scratch_dir;               /* tmpfs where scanners extract archive members (default /dev/shm) */
        unsigned processes;              /* scanner processes; 0 = one per core, at least 2 */
        bool development;                /* allow starting with no signatures (development only) */
        bool accept_unscanned;           /* development: the operator accepts unscanned uploads, so
                                          * /healthz answers 200 (else 503 "scan": "disabled") */
        bool stream;                     /* scan tus uploads while they arrive (DESIGN.md); default off */
        unsigned stream_idle_seconds;    /* a streaming scan waiting this long for the client is cancelled */
    } scan;
    struct {                             /* page rendering (src/render/render.h, docs/SECURITY.md) */
        bool enabled;                    /* default on; a renderer that cannot start is logged and the
                                            server serves without pages (they answer 503) */
        unsigned processes;              /* renderer processes (2) */
        unsigned max_seconds;            /* one render's deadline (60) */
        unsigned max_pages;              /* pages of one document that can be rendered (500) */
        uint64_t idle_stop_s;            /* a renderer without a job this long is stopped until the
                                            next job (60 s; 0 = never; at most 7 days) */
        uint64_t max_input;              /* bytes a renderer reads of a file (64 MiB) */
        uint64_t max_output;             /* bytes of one page image or converted PDF (32 MiB) */
        uint64_t max_pixels;             /* pixels an image may declare (100 million) */
        uint64_t memory;                 /* RLIMIT_AS of a renderer (2 GiB) */
        char *scratch_dir;               /* tmpfs for office conversions (/dev/shm) */
        bool office;                     /* convert office documents with LibreOffice (default on) */
        char *soffice;                   /* soffice.bin (/usr/lib/libreoffice/program/soffice.bin) */
        unsigned watermark_opacity;      /* percent, 1..100 (22) */
        unsigned pages_per_minute;       /* pages one viewer may fetch per minute (120) */
        unsigned queue;                  /* renders waiting for a renderer before 503 render_busy
                                            (8 per process) */
        char *text_language;             /* BCP 47 tag text pages and watermarks are laid out in: picks
                                            the forms of shared Han characters (zh-cn) */
    } render;
    struct {
        uint64_t default_expiry_s;       /* seconds */
        uint64_t max_expiry_s;           /* seconds */
        unsigned code_length;            /* generated extraction codes, 4..16 */
        unsigned code_failures_per_ip;   /* wrong codes from one address within 15 min → 429 */
        unsigned code_failures_per_link; /* wrong codes on one link within 1 h, from anywhere → 429 */
    } shares;
    struct {
        uint64_t retention_s;            /* seconds */
        bool webhook_allow_private;      /* tenant webhooks may target loopback/private addresses */
    } audit;
    struct {
        uint64_t session_ttl_s;          /* seconds a login session lives */
        uint32_t argon2_memory_kib;      /* Argon2id m */
        uint32_t argon2_iterations;      /* Argon2id t */
        uint32_t argon2_parallelism;     /* Argon2id p */
        unsigned max_failures_per_account; /* failed logins per account within failure_window → 429 */
        unsigned max_failures_per_ip;      /* failed logins per client address within failure_window → 429 */
        uint64_t failure_window_s;         /* seconds */
        unsigned max_sessions_per_user;    /* login sessions one user may hold; the oldest ends first */
    } auth;
    struct {
        char *access;                    /* access log path, "-" for stderr, NULL when "off" */
        int level;                       /* CF_LOG_DEBUG … CF_LOG_ERROR */
        int format;                      /* CF_LOG_TEXT or CF_LOG_JSON (log.h): stderr lines of serve */
    } log;
    struct {                             /* the directory (issue 23; src/ops/directory.c, docs/OPERATIONS.md) */
        bool enabled;                    /* the section is present; absent: no directory */
        char *url;                       /* ldaps://host[:port] or ldap://host[:port] */
        bool start_tls;                  /* ldap:// only: StartTLS before the bind (required unless allow_plaintext) */
        bool allow_plaintext;            /* ldap:// without StartTLS: passwords cross the network in clear */
        char *ca;                        /* PEM CA file the server's certificate must chain to (NULL: system CAs) */
        char *bind_dn;                   /* the service account; NULL: anonymous search */
        char *bind_password_file;        /* the service account's password, mode 0600 or stricter */
        char *bind_password;             /* read from bind_password_file at load; wiped on clear */
        size_t bind_password_len;
        char *tenant;                    /* the tenant the directory feeds (default "default") */
        char *user_base, *user_filter;   /* users.base, users.filter (default (objectClass=inetOrgPerson)) */
        char *user_username, *user_display_name, *user_email; /* attribute names (uid, cn, mail) */
        char *user_disabled;             /* an LDAP filter: entries matching it are disabled (NULL: none) */
        char *group_base, *group_filter; /* groups.base (NULL: no groups), groups.filter */
        char *group_name, *group_members;/* attribute names (cn, member) */
        int departments;                 /* CF_DIR_DEPTS_NONE or CF_DIR_DEPTS_DN (the ou chain below users.base) */
        uint64_t sync_interval_s;        /* periodic sync (default 15m); 0: on demand only */
        uint64_t offboard_after_s;       /* a user gone from the directory this long is offboarded (30d) */
        uint64_t timeout_s;              /* network timeout of one LDAP operation (10s) */
    } directory;
    struct {                             /* where the store lives (issue 24; docs/CLUSTER.md) */
        int engine;                      /* CF_STORE_ROCKSDB (default: data_dir) or CF_STORE_CLUSTER */
        char *pg_conninfo;               /* postgres.conninfo: a libpq connection string (cluster: required) */
        char *pg_password_file;          /* postgres.password_file, mode 0600 or stricter (NULL: none) */
        char *pg_password;               /* read from pg_password_file at load; wiped on clear */
        size_t pg_password_len;
        uint64_t pg_timeout_ms;          /* postgres.timeout: statement and connect timeout (30s) */
        bool rados;                      /* a rados section is present */
        char *rados_conf, *rados_pool;   /* rados.conf (ceph.conf), rados.pool (required with rados) */
        char *rados_user, *rados_keyring;/* rados.user (cephx id without "client."), rados.keyring */
        uint64_t rados_op_timeout_s;     /* rados.op_timeout (30s) */
    } store;
    struct {
        struct cf_cidr allow[CF_CONFIG_MAX_ALLOW]; /* clients that may GET /metrics; default
                                                      127.0.0.0/8 and ::1/128 */
        size_t nallow;                   /* 0: nobody (an empty list) */
    } metrics;
};

/* cf_config_load(path, out, err): reads and validates path into *out (zeroed first). On failure
 * returns CF_EINVAL and a malloc'ed message in *err ("FILE:LINE: key: what"), *out is cleared. */
enum cf_status cf_config_load(const char *path, struct cf_config *out, char **err) CF_WUR;
void cf_config_clear(struct cf_config *c);

/* Value parsers (exported for tests and for the API): "64MiB", "7d". */
enum cf_status cf_parse_size(const char *s, uint64_t *out) CF_WUR;
enum cf_status cf_parse_duration(const char *s, uint64_t *out_seconds) CF_WUR;
/* cf_parse_cidr(s, out): "127.0.0.1/8", "::1/128", or a bare address (all its bits). Host bits
 * beyond the prefix are cleared; an IPv4-mapped IPv6 range (::ffff:a.b.c.d/96 or longer) becomes
 * the IPv4 range. CF_EINVAL on anything else. */
enum cf_status cf_parse_cidr(const char *s, struct cf_cidr *out) CF_WUR;
/* cf_cidr_match(list, n, sa): whether the address in sa (AF_INET or AF_INET6; an IPv4-mapped IPv6
 * address counts as IPv4) lies in one of the n ranges. Any thread. */
struct sockaddr;
bool cf_cidr_match(const struct cf_cidr *list, size_t n, const struct sockaddr *sa);

#endif
