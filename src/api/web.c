/*
 * web.c: static files and /healthz (see web.h). File names served are exactly the names found in
 * web_dir at start-up; a request names a file, never a path, so nothing outside web_dir is reachable.
 */
#include "web.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "handlers.h"
#include "http.h"
#include "scan.h"

#define WEB_FILE_MAX (4u << 20)
#define WEB_FILES_MAX 256

struct web_file {
    char *name;
    char *data;
    size_t len;
    const char *type;
    char etag[20];
};

struct cf_static {
    struct web_file files[WEB_FILES_MAX];
    size_t n;
};

static const char *type_of(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"}, {".mjs", "text/javascript; charset=utf-8"},
        {".svg", "image/svg+xml"}, {".png", "image/png"}, {".ico", "image/vnd.microsoft.icon"},
        {".json", "application/json"}, {".woff2", "font/woff2"}, {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

static bool safe_name(const char *s)
{
    if (s[0] == '.' || s[0] == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
              *s == '-' || *s == '_'))
            return false;
    return true;
}

enum cf_status cf_web_load(const char *dir, struct cf_static **out, char **err)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        *err = cf_xasprintf("%s: cannot open the web directory: %s", dir, strerror(errno));
        return CF_EIO;
    }
    struct cf_static *w = cf_xcalloc(1, sizeof *w);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!safe_name(de->d_name) || type_of(de->d_name) == NULL || w->n == WEB_FILES_MAX)
            continue;
        char *path = cf_xasprintf("%s/%s", dir, de->d_name);
        FILE *fp = fopen(path, "rb");
        free(path);
        struct stat st;
        if (fp == NULL || fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > WEB_FILE_MAX) {
            if (fp != NULL)
                fclose(fp);
            continue;
        }
        struct web_file *f = &w->files[w->n];
        f->len = (size_t)st.st_size;
        f->data = cf_xmalloc(f->len + 1);
        if (fread(f->data, 1, f->len, fp) != f->len) {
            fclose(fp);
            free(f->data);
            continue;
        }
        fclose(fp);
        f->name = cf_xstrdup(de->d_name);
        f->type = type_of(de->d_name);
        uint8_t h[CF_SHA256_LEN];
        char hex[2 * CF_SHA256_LEN + 1];
        cf_sha256(f->data, f->len, h);
        cf_hex_encode(h, sizeof h, hex);
        snprintf(f->etag, sizeof f->etag, "\"%.16s\"", hex);
        w->n++;
    }
    closedir(d);
    *out = w;
    return CF_OK;
}

void cf_web_free(struct cf_static *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->files[i].name);
        free(w->files[i].data);
    }
    free(w);
}

static void serve_file(struct cf_req *r, const char *name, size_t n)
{
    struct cf_static *w = r->app->web;
    for (size_t i = 0; i < w->n; i++) {
        struct web_file *f = &w->files[i];
        if (strlen(f->name) != n || memcmp(f->name, name, n) != 0)
            continue;
        cf_add_header(r, "etag", f->etag, strlen(f->etag));
        cf_add_header_str(r, "cache-control", "no-cache");
        h2o_iovec_t inm = cf_header(r, "if-none-match");
        if (inm.base != NULL && h2o_memis(inm.base, inm.len, f->etag, strlen(f->etag))) {
            cf_respond_empty(r, 304);
            return;
        }
        cf_respond_text(r, 200, f->type, f->data, f->len);
        return;
    }
    cf_respond_status(r, CF_ENOTFOUND, NULL);
}

void cf_web_respond_file(struct cf_req *r, const char *name)
{
    serve_file(r, name, strlen(name));
}

void cf_h_web_index(struct cf_req *r)
{
    serve_file(r, "index.html", 10);
}

/* The admin console is a page like any other; the API behind it checks the role. */
void cf_h_web_admin(struct cf_req *r)
{
    serve_file(r, "admin.html", 10);
}

/* The member's account and security page (issue 21); its API calls need a session like any other. */
void cf_h_web_account(struct cf_req *r)
{
    serve_file(r, "account.html", 12);
}

void cf_h_web_static(struct cf_req *r)
{
    serve_file(r, r->params[0].base, r->params[0].len);
}

const char *cf_web_scan_status(void)
{
    const char *scanner = cf_scan_state();
    if (strcmp(scanner, "ok") == 0 || strcmp(scanner, "down") == 0)
        return scanner;
    return "disabled";
}

void cf_h_healthz(struct cf_req *r)
{
    /* Uploads need a scanner: with none up the server is degraded (503 for load balancers). A
     * development server without signatures accepts uploads unscanned: that is degraded too (503,
     * "scan": "disabled"), unless the operator accepted it (scan.accept_unscanned), and then every
     * probe still says so. */
    const char *scanner = cf_scan_state();
    const char *scan = cf_web_scan_status();
    if (strcmp(scan, "down") == 0) {
        cf_respond_json(r, 503, json_pack("{s:s, s:s}", "status", "degraded", "scanner", scanner));
        return;
    }
    if (strcmp(scan, "ok") == 0) {
        cf_respond_json(r, 200, json_pack("{s:s}", "status", "ok")); /* exactly SPEC §5 */
        return;
    }
    bool accepted = r->app->cfg->scan.accept_unscanned;
    cf_respond_json(r, accepted ? 200 : 503,
                    json_pack("{s:s, s:s, s:s, s:s}", "status", accepted ? "ok" : "degraded", "scan", "disabled",
                              "scanner", scanner, "warning",
                              accepted ? "DEVELOPMENT MODE: uploads are not checked for malware (scan.accept_unscanned)"
                                       : "DEVELOPMENT MODE: uploads are not checked for malware; set "
                                         "scan.accept_unscanned: true to accept that, or install signatures"));
}

#ifdef CF_FAULT_INJECTION
#include "storage/fault.h"

void cf_h_test_fault_arm(struct cf_req *r)
{
    h2o_iovec_t kv, nv;
    bool bad = false;
    char kind[16], num[24], *end;
    if (!cf_query(r, "kind", &kv, &bad) || !cf_query(r, "n", &nv, &bad) || kv.len >= sizeof kind ||
        nv.len == 0 || nv.len >= sizeof num) {
        cf_respond_status(r, CF_EINVAL, "kind and n are required");
        return;
    }
    memcpy(kind, kv.base, kv.len);
    kind[kv.len] = '\0';
    memcpy(num, nv.base, nv.len);
    num[nv.len] = '\0';
    int k = cf_fault_kind_parse(kind);
    unsigned long long n = strtoull(num, &end, 10);
    if (k < 0 || *end != '\0') {
        cf_respond_status(r, CF_EINVAL, "unknown kind or bad n");
        return;
    }
    for (int i = 0; i < CF_FAULT_KINDS; i++)
        cf_fault_arm((enum cf_fault_kind)i, 0);
    cf_fault_arm((enum cf_fault_kind)k, n);
    cf_respond_empty(r, 204);
}

void cf_h_test_fault_get(struct cf_req *r)
{
    json_t *o = json_object();
    for (int i = 0; i < CF_FAULT_KINDS; i++) {
        json_object_set_new(o, cf_fault_kind_name(i), json_pack("{s:I, s:b}", "fired", (json_int_t)cf_fault_fired(i),
                                                   "armed", cf_fault_armed(i)));
    }
    cf_respond_json(r, 200, o);
}
#endif
