/*
 * test_config.c: strict configuration parsing (src/config.c): values, defaults, and the exact
 * "FILE:LINE: key: what" message for every kind of mistake.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "tap.h"

static char dir[] = "/tmp/cf-config-test-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

#define BASE "data_dir: data\nmaster_key_file: master.key\ntls: {certificate: c.pem, key: k.pem}\n"

/* Loads text; expects failure with a message ending in want (after "FILE:"). */
static void expect_error(const char *text, const char *want)
{
    struct cf_config c;
    char *err = NULL;
    const char *path = write_file("coffer.yaml", text);
    enum cf_status st = cf_config_load(path, &c, &err);
    size_t pl = strlen(path);
    bool ok = st == CF_EINVAL && err != NULL && strncmp(err, path, pl) == 0 && strcmp(err + pl, want) == 0;
    CHECK(ok, "error \"%s\"", want);
    if (!ok)
        printf("#   got: %s\n", err != NULL ? err : "(success)");
    if (st == CF_OK)
        cf_config_clear(&c);
    free(err);
}

/* Whether the address text a is in c's metrics.allow. */
static bool allowed(const struct cf_config *c, const char *a)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    if (inet_pton(AF_INET, a, &v4.sin_addr) == 1)
        return cf_cidr_match(c->metrics.allow, c->metrics.nallow, (struct sockaddr *)&v4);
    if (inet_pton(AF_INET6, a, &v6.sin6_addr) == 1)
        return cf_cidr_match(c->metrics.allow, c->metrics.nallow, (struct sockaddr *)&v6);
    return false;
}

static void defaults_and_values(void)
{
    struct cf_config c;
    char *err = NULL;
    const char *path = write_file("ok.yaml", BASE);
    CHECK(cf_config_load(path, &c, &err) == CF_OK, "a minimal config loads");
    CHECK_INT(c.nlisten, 1, "default listen has one address");
    CHECK_STR(c.listen[0], "127.0.0.1:8443", "default listen");
    CHECK_INT(c.limits.max_file_bytes, 10ull << 30, "default max_file_bytes 10GiB");
    CHECK_INT(c.limits.max_request_body_bytes, 64ull << 20, "default max_request_body_bytes 64MiB");
    CHECK_STR(c.render.text_language, "zh-cn", "default render.text_language");
    CHECK_INT(c.render.queue, 0, "render.queue unset: 8 per renderer");
    CHECK_INT(c.render.idle_stop_s, 60, "default render.idle_stop 60s");
    CHECK_INT(c.limits.handshake_timeout_ms, 10000, "default handshake_timeout 10s");
    CHECK_INT(c.limits.idle_timeout_ms, 10000, "default idle_timeout 10s");
    CHECK_INT(c.limits.max_connections, 4096, "default max_connections 4096");
    CHECK_INT(c.limits.max_connections_per_address, 256, "default max_connections_per_address 256");
    CHECK_INT(c.limits.max_cancels_per_connection, 100, "default max_cancels_per_connection 100");
    CHECK_INT(c.shares.max_expiry_s, 7 * 86400, "default max_expiry 7d");
    CHECK_INT(c.shares.code_length, 4, "default code_length 4");
    CHECK_INT(c.audit.retention_s, 1095ull * 86400, "default retention 1095d");
    CHECK_INT(c.scan.on_unscannable, CF_UNSCANNABLE_REJECT, "default on_unscannable reject");
    CHECK_INT(c.scan.max_seconds, 60, "default scan.max_seconds 60");
    CHECK_STR(c.scan.scratch_dir, "/dev/shm", "default scan.scratch_dir /dev/shm");
    CHECK_INT(c.scan.processes, 0, "default scan.processes 0 (one per core)");
    CHECK(!c.scan.development, "scan.development off by default");
    CHECK(c.scan.stream, "scan.stream on by default");
    CHECK_INT(c.scan.stream_idle_seconds, 10, "default scan.stream_idle_seconds 10");
    CHECK_STR(c.scan.database_dir, "/var/lib/clamav", "default scan.database_dir");
    CHECK_INT(c.uploads.expire_after_s, 86400, "default uploads.expire_after 24h");
    CHECK_INT(c.uploads.max_pending, 16, "default uploads.max_pending 16");
    CHECK_INT(c.uploads.max_pending_bytes, 20ull << 30, "default uploads.max_pending_bytes 2 x max_file_bytes");
    CHECK_INT(c.log.format, CF_LOG_TEXT, "default log.format text");
    CHECK_INT(c.log.level, CF_LOG_INFO, "default log.level info");
    CHECK_INT(c.metrics.nallow, 2, "default metrics.allow has two ranges");
    CHECK(allowed(&c, "127.0.0.1") && allowed(&c, "127.9.8.7") && allowed(&c, "::1"),
          "default metrics.allow: 127.0.0.0/8 and ::1");
    CHECK(!allowed(&c, "10.0.0.1") && !allowed(&c, "::2") && !allowed(&c, "128.0.0.1"),
          "default metrics.allow: nothing else");
    CHECK(allowed(&c, "::ffff:127.0.0.1"), "an IPv4-mapped loopback address counts as IPv4");
    char want[300];
    snprintf(want, sizeof want, "%s/data", dir);
    CHECK_STR(c.data_dir, want, "relative data_dir resolved against the config's directory");
    snprintf(want, sizeof want, "%s/master.key.anchor", dir);
    CHECK_STR(c.journal_anchor_file, want, "journal_anchor_file defaults to the master key's path + .anchor");
    cf_config_clear(&c);

    path = write_file("full.yaml", "listen: [\"127.0.0.1:1\", \"[::1]:2\"]\n"
                                   "public_url: \"https://files.example.org/\"\n"
                                   "tls: {certificate: /etc/c.pem, key: /etc/k.pem}\n"
                                   "data_dir: /srv/data\nmaster_key_file: /etc/mk\nthreads: 3\n"
                                   "limits: {max_file_bytes: 2GiB, max_request_body_bytes: 512KiB, request_timeout: 2m}\n"
                                   "uploads: {expire_after: 2h, max_pending: 3, max_pending_bytes: 5GiB}\n"
                                   "scan: {database_dir: /db, on_unscannable: allow, max_seconds: 5, scratch_dir: shm,"
                                   " processes: 3, development: true}\n"
                                   "shares: {default_expiry: 1d, max_expiry: 30d, code_length: 16}\n"
                                   "audit: {retention: 30d}\n"
                                   "auth: {session_ttl: 1h, argon2_memory: 32MiB, argon2_iterations: 2}\n"
                                   "log: {access: \"off\", level: warn, format: json}\n"
                                   "metrics: {allow: [\"10.1.2.3/16\", \"2001:db8::1/32\", \"192.0.2.7\"]}\n");
    CHECK(cf_config_load(path, &c, &err) == CF_OK, "a full config loads");
    CHECK_INT(c.nlisten, 2, "two listen addresses");
    CHECK_STR(c.listen[1], "[::1]:2", "IPv6 listen address kept");
    CHECK_STR(c.public_url, "https://files.example.org", "trailing slash of public_url removed");
    CHECK_INT(c.threads, 3, "threads");
    CHECK_INT(c.limits.max_file_bytes, 2ull << 30, "2GiB");
    CHECK_INT(c.limits.max_request_body_bytes, 512 * 1024, "512KiB");
    CHECK_INT(c.limits.request_timeout_ms, 120000, "2m in ms");
    CHECK_INT(c.uploads.expire_after_s, 7200, "uploads.expire_after");
    CHECK_INT(c.uploads.max_pending, 3, "uploads.max_pending");
    CHECK_INT(c.uploads.max_pending_bytes, 5ull << 30, "uploads.max_pending_bytes");
    CHECK_INT(c.scan.on_unscannable, CF_UNSCANNABLE_ALLOW, "on_unscannable allow");
    CHECK_INT(c.scan.max_seconds, 5, "scan.max_seconds");
    CHECK_INT(c.scan.processes, 3, "scan.processes");
    CHECK(c.scan.development, "scan.development true");
    snprintf(want, sizeof want, "%s/shm", dir);
    CHECK_STR(c.scan.scratch_dir, want, "relative scan.scratch_dir resolved against the config's directory");
    CHECK_INT(c.shares.max_expiry_s, 30 * 86400, "30d");
    CHECK_INT(c.shares.code_length, 16, "code_length 16");
    CHECK_INT(c.auth.argon2_memory_kib, 32 * 1024, "argon2_memory in KiB");
    CHECK_INT(c.auth.argon2_iterations, 2, "argon2_iterations");
    CHECK(c.log.access == NULL, "access log off");
    CHECK_INT(c.log.level, 2, "level warn");
    CHECK_INT(c.log.format, CF_LOG_JSON, "log.format json");
    CHECK_INT(c.metrics.nallow, 3, "metrics.allow replaces the default");
    CHECK(allowed(&c, "10.1.200.1") && !allowed(&c, "10.2.0.1"), "10.1.2.3/16 is 10.1.0.0/16");
    CHECK(allowed(&c, "2001:db8:ffff::9") && !allowed(&c, "2001:db9::1"), "2001:db8::1/32");
    CHECK(allowed(&c, "192.0.2.7") && !allowed(&c, "192.0.2.8"), "a bare address is one host");
    CHECK(!allowed(&c, "127.0.0.1") && !allowed(&c, "::1"), "loopback no longer allowed");
    cf_config_clear(&c);

    path = write_file("nobody.yaml", BASE "metrics:\n  allow: []\n");
    CHECK(cf_config_load(path, &c, &err) == CF_OK, "metrics.allow may be empty");
    CHECK_INT(c.metrics.nallow, 0, "empty metrics.allow");
    CHECK(!allowed(&c, "127.0.0.1"), "an empty metrics.allow lets nobody in");
    cf_config_clear(&c);
}

static void errors(void)
{
    expect_error(BASE "bogus: 1\n", ":4: bogus: unknown key");
    expect_error(BASE "render: {text_language: zh_CN}\n",
                 ": render.text_language: expected a language tag such as zh-cn, zh-tw, ja or en");
    expect_error(BASE "render: {queue: 0}\n", ":4: render.queue: must be between 1 and 10000");
    expect_error(BASE "render: {idle_stop: -1s}\n", ":4: render.idle_stop: expected a duration like 7d");
    expect_error(BASE "render: {idle_stop: soon}\n", ":4: render.idle_stop: expected a duration like 7d");
    expect_error(BASE "render: {idle_stop: 60}\n", ":4: render.idle_stop: expected a duration like 7d");
    expect_error(BASE "render: {idle_stop: 8d}\n", ":4: render.idle_stop: duration out of range");
    expect_error(BASE "limits:\n  nope: 1\n", ":5: limits.nope: unknown key");
    expect_error(BASE "limits: {max_file_bytes: 10XB}\n", ":4: limits.max_file_bytes: expected a size like 64MiB");
    expect_error(BASE "limits: {max_file_bytes: -1}\n", ":4: limits.max_file_bytes: expected a size like 64MiB");
    expect_error(BASE "limits: {handshake_timeout: 0s}\n", ":4: limits.handshake_timeout: duration out of range");
    expect_error(BASE "limits: {handshake_timeout: 11m}\n", ":4: limits.handshake_timeout: duration out of range");
    expect_error(BASE "limits: {idle_timeout: 0s}\n", ":4: limits.idle_timeout: duration out of range");
    expect_error(BASE "limits: {idle_timeout: 2h}\n", ":4: limits.idle_timeout: duration out of range");
    expect_error(BASE "limits: {max_connections: 0}\n", ":4: limits.max_connections: must be between 1 and 1000000");
    expect_error(BASE "limits: {max_connections: 1000001}\n", ":4: limits.max_connections: must be between 1 and 1000000");
    expect_error(BASE "limits: {max_connections_per_address: 0}\n",
                 ":4: limits.max_connections_per_address: must be between 1 and 1000000");
    expect_error(BASE "limits: {max_connections: 100, max_connections_per_address: 101}\n",
                 ":4: limits.max_connections_per_address: must not exceed limits.max_connections");
    expect_error(BASE "limits: {max_cancels_per_connection: 0}\n",
                 ":4: limits.max_cancels_per_connection: must be between 1 and 1000000");
    expect_error(BASE "uploads: {max_pending: 0}\n", ":4: uploads.max_pending: must be between 1 and 10000");
    expect_error(BASE "uploads: {expire_after: 0s}\n", ":4: uploads.expire_after: duration out of range");
    expect_error(BASE "uploads: {max_pending_bytes: 1GiB}\n",
                 ":4: uploads.max_pending_bytes: must be at least limits.max_file_bytes (else the largest file cannot be uploaded)");
    expect_error(BASE "uploads: {forever: true}\n", ":4: uploads.forever: unknown key");
    expect_error(BASE "shares: {max_expiry: 7 days}\n", ":4: shares.max_expiry: expected a duration like 7d");
    expect_error(BASE "shares: {max_expiry: 7}\n", ":4: shares.max_expiry: expected a duration like 7d");
    expect_error(BASE "shares: {code_length: 3}\n", ":4: shares.code_length: must be between 4 and 16");
    expect_error(BASE "shares: {code_length: 17}\n", ":4: shares.code_length: must be between 4 and 16");
    expect_error(BASE "shares: {default_expiry: 8d}\n", ":4: shares.default_expiry: must not exceed shares.max_expiry");
    expect_error(BASE "threads: many\n", ":4: threads: expected a whole number");
    expect_error(BASE "listen: 5\n", ":4: listen: expected a list like [\"127.0.0.1:8443\"]");
    expect_error(BASE "listen: []\n", ":4: listen: expected at least one host:port");
    expect_error("data_dir: d\nmaster_key_file: mk\ntls: 5\n", ":3: tls: expected a mapping");
    expect_error(BASE "data_dir: other\n", ":4: data_dir: duplicate key");
    expect_error(BASE "scan: {on_unscannable: maybe}\n", ":4: scan.on_unscannable: expected one of: reject, allow");
    expect_error(BASE "log: {format: xml}\n", ":4: log.format: expected one of: text, json");
    expect_error(BASE "log:\n  format: JSON\n", ":5: log.format: expected one of: text, json");
    expect_error(BASE "log: {format: [json]}\n", ":4: log.format: expected a scalar value");
    expect_error(BASE "log: {format: text, format: json}\n", ":4: log.format: duplicate key");
    expect_error(BASE "log: {formats: json}\n", ":4: log.formats: unknown key");
    expect_error(BASE "scan: {max_seconds: 0}\n", ":4: scan.max_seconds: must be between 1 and 3600");
    expect_error(BASE "scan: {max_seconds: 3601}\n", ":4: scan.max_seconds: must be between 1 and 3600");
    expect_error(BASE "scan: {processes: 65}\n", ":4: scan.processes: must be between 0 and 64");
    expect_error(BASE "scan: {development: yes}\n", ":4: scan.development: expected true or false");
    expect_error(BASE "scan: {scratch: /dev/shm}\n", ":4: scan.scratch: unknown key");
    expect_error(BASE "public_url: ftp://x\n", ":4: public_url: expected an http(s):// URL");
    expect_error(BASE "public_url: http:///\n", ":4: public_url: expected an http(s):// URL with a host (no spaces, query or fragment)");
    expect_error(BASE "public_url: \"https://a b\"\n", ":4: public_url: expected an http(s):// URL with a host (no spaces, query or fragment)");
    expect_error(BASE "public_url: \"https://x/?q=1\"\n", ":4: public_url: expected an http(s):// URL with a host (no spaces, query or fragment)");
    expect_error("master_key_file: mk\ntls: {certificate: c, key: k}\n", ": data_dir: required");
    static const char *const inside[] = {
        "data_dir: /srv/d\nmaster_key_file: /srv/d/mk\n",
        "data_dir: data/\nmaster_key_file: data/master.key\n",
        "data_dir: data\nmaster_key_file: ./data/master.key\n",
        "data_dir: ./data\nmaster_key_file: data//x/../master.key\n",
        "data_dir: /srv/d/../d\nmaster_key_file: /srv/d/mk\n",
        "data_dir: /\nmaster_key_file: /etc/mk\n",
    };
    for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "%stls: {certificate: c, key: k}\n", inside[i]);
        expect_error(text, ":2: master_key_file: must be outside data_dir (a copy of the data must not carry its key)");
    }
    expect_error(BASE "journal_anchor_file: data/anchor\n",
                 ":4: journal_anchor_file: must be outside data_dir (a rolled-back copy of the data would carry its "
                 "anchor)");
    expect_error("", ": (top level): the file is empty");
    expect_error("- a\n- b\n", ":1: (top level): expected a mapping of keys");
    expect_error(BASE "limits: {max_file_bytes: [1}\n", ":4: did not find expected ',' or ']'");
    expect_error(BASE "auth: {argon2_memory: 1KiB}\n", ":4: auth.argon2_memory: size out of range");
    static const char *const bad_ranges[] = {"127.0.0.1/33", "::1/129", "127.0.0.1/", "localhost", "10.0.0/8",
                                             "10.0.0.1/8x", "/8", "::1/-1", "1.2.3.4/+8", ""};
    for (size_t i = 0; i < sizeof bad_ranges / sizeof bad_ranges[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, BASE "metrics:\n  allow: [\"::1\", \"%s\"]\n", bad_ranges[i]);
        expect_error(text, ":5: metrics.allow: expected an address or a range like 127.0.0.1/8 or ::1/128");
    }
    expect_error(BASE "metrics:\n  allow: \"127.0.0.1/8\"\n",
                 ":5: metrics.allow: expected a list like [\"127.0.0.1/8\", \"::1/128\"]");
    expect_error(BASE "metrics:\n  allow: [[1]]\n",
                 ":5: metrics.allow: expected an address or a range like 127.0.0.1/8 or ::1/128");
    expect_error(BASE "metrics: {allow: [], listen: x}\n", ":4: metrics.listen: unknown key");
    expect_error(BASE "metrics: [1]\n", ":4: metrics: expected a mapping");
    {
        char text[1024] = BASE "metrics: {allow: [";
        for (int i = 0; i < 33; i++)
            strcat(text, i == 0 ? "\"::1\"" : ", \"::1\"");
        strcat(text, "]}\n");
        expect_error(text, ":4: metrics.allow: too many entries (at most 32)");
    }
}

static void value_parsers(void)
{
    uint64_t v;
    CHECK(cf_parse_size("0", &v) == CF_OK && v == 0, "size 0");
    CHECK(cf_parse_size("64MiB", &v) == CF_OK && v == 64ull << 20, "size 64MiB");
    CHECK(cf_parse_size("1TiB", &v) == CF_OK && v == 1ull << 40, "size 1TiB");
    CHECK(cf_parse_size("5B", &v) == CF_OK && v == 5, "size 5B");
    CHECK(cf_parse_size("64mib", &v) == CF_EINVAL, "units are case-sensitive");
    CHECK(cf_parse_size("64 MiB", &v) == CF_EINVAL, "no space before the unit");
    CHECK(cf_parse_size("99999999999999999999", &v) == CF_EINVAL, "overflow rejected");
    CHECK(cf_parse_size("17179869184GiB", &v) == CF_EINVAL, "overflow after the multiplier rejected");
    CHECK(cf_parse_duration("7d", &v) == CF_OK && v == 7 * 86400, "duration 7d");
    CHECK(cf_parse_duration("90s", &v) == CF_OK && v == 90, "duration 90s");
    CHECK(cf_parse_duration("15m", &v) == CF_OK && v == 900, "duration 15m");
    CHECK(cf_parse_duration("d", &v) == CF_EINVAL, "duration without a number");
    CHECK(cf_parse_duration("1w", &v) == CF_EINVAL, "unknown duration unit");
    struct cf_cidr r;
    CHECK(cf_parse_cidr("10.1.2.3/16", &r) == CF_OK && r.family == AF_INET && r.prefix == 16 && r.addr[0] == 10 &&
              r.addr[1] == 1 && r.addr[2] == 0 && r.addr[3] == 0,
          "cidr 10.1.2.3/16: host bits cleared");
    CHECK(cf_parse_cidr("0.0.0.0/0", &r) == CF_OK && r.prefix == 0, "cidr /0");
    CHECK(cf_parse_cidr("::ffff:127.0.0.1/104", &r) == CF_OK && r.family == AF_INET && r.prefix == 8 &&
              r.addr[0] == 127,
          "cidr: an IPv4-mapped range becomes IPv4");
    CHECK(cf_parse_cidr("fe80::1%eth0", &r) == CF_EINVAL, "cidr: no zone ids");
    CHECK(cf_parse_cidr("1.2.3.4/08", &r) == CF_OK && r.prefix == 8, "cidr: prefix digits");
}

/* A symlink into data_dir is still inside it. */
static void symlinked(void)
{
    char d[300], link[300], text[700];
    snprintf(d, sizeof d, "%s/realdata", dir);
    snprintf(link, sizeof link, "%s/alias", dir);
    if (mkdir(d, 0700) != 0 || symlink(d, link) != 0) {
        CHECK(false, "cannot set up the symlink case");
        return;
    }
    snprintf(text, sizeof text, "data_dir: realdata\nmaster_key_file: alias/mk\ntls: {certificate: c, key: k}\n");
    expect_error(text, ":2: master_key_file: must be outside data_dir (a copy of the data must not carry its key)");
    snprintf(text, sizeof text, "data_dir: alias\nmaster_key_file: mk\ntls: {certificate: c, key: k}\n");
    struct cf_config c;
    char *err = NULL;
    CHECK(cf_config_load(write_file("sym.yaml", text), &c, &err) == CF_OK, "a key beside a symlinked data_dir is fine");
    if (err == NULL)
        cf_config_clear(&c);
    free(err);
}

/* dav.max_put_bytes: defaults to limits.max_request_body_bytes and may not exceed it. */
static void dav_section(void)
{
    struct cf_config c;
    char *err = NULL;
    const char *path = write_file("dav.yaml", BASE "limits: {max_request_body_bytes: 8MiB}\n");
    CHECK(cf_config_load(path, &c, &err) == CF_OK, "no dav section loads");
    CHECK_INT(c.dav.max_put_bytes, 8ull << 20, "dav.max_put_bytes defaults to limits.max_request_body_bytes");
    cf_config_clear(&c);
    path = write_file("dav.yaml", BASE "limits: {max_request_body_bytes: 8MiB}\ndav: {max_put_bytes: 1MiB}\n");
    CHECK(cf_config_load(path, &c, &err) == CF_OK, "dav.max_put_bytes below the body limit loads");
    CHECK_INT(c.dav.max_put_bytes, 1ull << 20, "dav.max_put_bytes 1MiB");
    cf_config_clear(&c);
    expect_error(BASE "limits: {max_request_body_bytes: 8MiB}\ndav: {max_put_bytes: 9MiB}\n",
                 ":5: dav.max_put_bytes: must not exceed limits.max_request_body_bytes (every body is held whole in memory)");
    expect_error(BASE "dav: {max_put_bytes: 1KiB}\n", ":4: dav.max_put_bytes: size out of range");
    expect_error(BASE "dav: {nope: 1}\n", ":4: dav.nope: unknown key");
}

/* render.idle_stop: a duration, 0s (never) to 7d; the bad values are in errors(). */
static void render_idle_stop(void)
{
    static const struct {
        const char *yaml;
        uint64_t want;
    } ok[] = {{"0s", 0}, {"1s", 1}, {"2m", 120}, {"7d", 7 * 86400}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct cf_config c;
        char *err = NULL, text[256];
        snprintf(text, sizeof text, BASE "render: {idle_stop: %s}\n", ok[i].yaml);
        const char *path = write_file("idle.yaml", text);
        bool loaded = cf_config_load(path, &c, &err) == CF_OK;
        CHECK(loaded, "render.idle_stop: %s loads (%s)", ok[i].yaml, err != NULL ? err : "");
        free(err);
        if (loaded) {
            CHECK_INT(c.render.idle_stop_s, ok[i].want, "render.idle_stop: %s", ok[i].yaml);
            cf_config_clear(&c);
        }
    }
}

/* The store section (issue 24, docs/CLUSTER.md): engine, postgres (password file checked like the
 * master key), rados. */
static void store_section(void)
{
    struct cf_config c;
    char *err = NULL;
    const char *path = write_file("store.yaml", BASE);
    CHECK(cf_config_load(path, &c, &err) == CF_OK, "no store section loads");
    CHECK_INT(c.store.engine, CF_STORE_ROCKSDB, "store.engine defaults to rocksdb");
    cf_config_clear(&c);
    char pw[256];
    snprintf(pw, sizeof pw, "%s", write_file("pg.password", "s3cret\n"));
    chmod(pw, 0600);
    char text[512];
    snprintf(text, sizeof text,
             BASE "store:\n  engine: cluster\n  postgres: {conninfo: \"host=db dbname=coffer\", password_file: %s}\n", pw);
    path = write_file("store.yaml", text);
    CHECK(cf_config_load(path, &c, &err) == CF_OK, "a cluster store loads (%s)", err ? err : "");
    if (err == NULL) {
        CHECK_INT(c.store.engine, CF_STORE_CLUSTER, "store.engine cluster");
        CHECK_STR(c.store.pg_conninfo, "host=db dbname=coffer", "store.postgres.conninfo");
        CHECK_STR(c.store.pg_password, "s3cret", "the password is read, its newline dropped");
        CHECK_INT(c.store.pg_timeout_ms, 30000, "store.postgres.timeout defaults to 30s");
        CHECK(!c.store.rados, "no rados section");
        cf_config_clear(&c);
    }
    free(err);
    err = NULL;
    chmod(pw, 0644);
    path = write_file("store.yaml", text);
    enum cf_status st = cf_config_load(path, &c, &err);
    CHECK(st == CF_EINVAL && err != NULL &&
              strstr(err, "store.postgres.password_file: must be a regular file not readable by group or others") != NULL,
          "a password file readable by others is refused");
    if (st == CF_OK)
        cf_config_clear(&c);
    free(err);
    err = NULL;
    expect_error(BASE "store: {engine: cluster}\n",
                 ":4: store.postgres.conninfo: required with engine: cluster (a libpq connection string, like "
                 "\"host=db port=5432 dbname=coffer user=coffer\")");
    expect_error(BASE "store: {engine: cluster, postgres: {conninfo: \"host=db password=x\"}}\n",
                 ":4: store.postgres.conninfo: must not hold the password: put it in store.postgres.password_file "
                 "(mode 0600)");
    expect_error(BASE "store: {postgres: {conninfo: \"host=db\"}}\n",
                 ":4: store.postgres: only with store.engine: cluster");
    expect_error(BASE "store: {engine: cluster, postgres: {conninfo: x}, rados: {conf: /c}}\n",
                 ":4: store.rados.pool: required with rados");
    expect_error(BASE "store: {engine: sqlite}\n", ":4: store.engine: expected one of: rocksdb, cluster");
    path = write_file("store.yaml", BASE "store: {engine: cluster, postgres: {conninfo: x, timeout: 5s}, "
                                         "rados: {pool: coffer, user: coffer}}\n");
    CHECK(cf_config_load(path, &c, &err) == CF_OK, "cluster with rados loads");
    if (err == NULL) {
        CHECK(c.store.rados && strcmp(c.store.rados_pool, "coffer") == 0 && c.store.rados_op_timeout_s == 30 &&
                  c.store.pg_timeout_ms == 5000,
              "rados pool, op_timeout default 30s, postgres timeout 5s");
        cf_config_clear(&c);
    }
    free(err);
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    symlinked();
    defaults_and_values();
    errors();
    value_parsers();
    dav_section();
    render_idle_stop();
    store_section();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    return tap_done();
}
