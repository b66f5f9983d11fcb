/*
 * check.c: `coffer serve --check` (see check.h). Nothing here re-implements a check: each step
 * calls the function serve calls at start-up and only words its failure as "coffer: CONFIG: KEY:
 * what". Nothing is created, bound or written, except what a read-only RocksDB open writes (its
 * info LOG), which `coffer audit verify` and `coffer fsck` do beside a running server too.
 */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "priv.h"
#include "render_conf.h"
#include "scan.h"
#include "startup.h"
#include "storage.h"
#include "tls.h"
#include "web.h"

/* Reports one problem of key (NULL: the message names its key itself) and frees msg. Returns 2. */
static int finding(const struct cf_config *cfg, const char *key, char *msg)
{
    fprintf(stderr, "coffer: %s: %s%s%s\n", cfg->path, key != NULL ? key : "", key != NULL ? ": " : "", msg);
    free(msg);
    return 2;
}

/* The access log as serve opens it (append, never through a symlink), without creating it: an
 * existing file must open for writing; a missing one needs a writable directory. */
static int check_access_log(const struct cf_config *cfg)
{
    const char *p = cfg->log.access;
    if (p == NULL || strcmp(p, "-") == 0)
        return 0;
    int fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno != ENOENT)
        return finding(cfg, "log.access", cf_xasprintf("%s: cannot open the access log: %s", p, strerror(errno)));
    char *copy = cf_xstrdup(p);
    const char *dir = dirname(copy);
    int rc = 0;
    if (access(dir, W_OK | X_OK) != 0)
        rc = finding(cfg, "log.access", cf_xasprintf("%s: cannot create the access log in %s: %s", p, dir,
                                                     strerror(errno)));
    free(copy);
    return rc;
}

/* The journal anchor as serve opens it (created if missing, so its directory must be writable by
 * whoever starts serve), without creating it: an existing file must open for reading and writing
 * and be private; a missing one needs a writable directory. *out: the anchor, read-only, or NULL. */
static int check_anchor(const struct cf_config *cfg, struct cf_anchor **out)
{
    const char *p = cfg->journal_anchor_file;
    char *err = NULL;
    *out = NULL;
    if (access(p, F_OK) == 0 && access(p, R_OK | W_OK) != 0)
        return finding(cfg, "journal_anchor_file", cf_xasprintf("%s: cannot open the journal anchor: %s", p,
                                                                strerror(errno)));
    if (access(p, F_OK) != 0) {
        char *copy = cf_xstrdup(p);
        const char *dir = dirname(copy);
        int rc = 0;
        if (access(dir, W_OK | X_OK) != 0)
            rc = finding(cfg, "journal_anchor_file", cf_xasprintf("%s: cannot create the journal anchor in %s: %s",
                                                                  p, dir, strerror(errno)));
        free(copy);
        return rc;
    }
    if (cf_anchor_open(p, false, out, &err) != CF_OK)
        return finding(cfg, "journal_anchor_file", err);
    return 0;
}

int cf_check_serve(struct cf_config *cfg)
{
    int rc = 0;
    char *err = NULL;
    struct cf_priv priv;
    struct cf_key master;
    bool have_key = false;

    /* 1. Who serve would run as (a wrong `user:` stops serve with exit code 2 too). */
    int prc = cf_priv_resolve(cfg, "serve", &priv, &err);
    if (prc != 0) {
        fprintf(stderr, "coffer: %s\n", err); /* names the file and `user:` already */
        free(err);
        rc = 2;
        priv.drop = false;
    } else if (cf_priv_check_dir(&priv, cfg->data_dir, false, &err) != 0) {
        rc = finding(cfg, "data_dir", err);
    }
    /* 2. The scanners' directories (serve starts its scanners next). */
    if (cf_scan_check_config(cfg, &err) != CF_OK)
        rc = finding(cfg, NULL, err);
    /* 2b. The renderers (issue 20): serve starts without them if they cannot start, so what is
     * wrong here is a warning (pages would answer 503), not a finding. */
    if (cfg->render.enabled) {
        struct cf_render_conf rconf;
        cf_render_conf_fill(cfg, &rconf);
        if (cf_render_check_opts(&rconf.opts, &err) != CF_OK) {
            fprintf(stderr, "coffer: warning: %s (serve would run without pages)\n", err);
            free(err);
        } else if (cfg->render.office && access(cfg->render.soffice, X_OK) != 0) {
            fprintf(stderr, "coffer: warning: render.soffice: %s is missing: office documents would have no preview\n",
                    cfg->render.soffice);
        }
    }
    /* 3. The master key, as root when serve runs as root; the journal anchor beside it (read here,
     * as serve opens it, and before the store, so that it is never newer than what is read). */
    if (cf_master_key_load(cfg->master_key_file, &master, &err) == CF_OK)
        have_key = true;
    else
        rc = finding(cfg, "master_key_file", err);
    struct cf_anchor *anchor = NULL;
    if (check_anchor(cfg, &anchor) != 0)
        rc = 2;
    /* 4. The TLS pair, and the rest serve reads before it drops. */
    SSL_CTX *ctx = cf_tls_ctx_new(cfg->tls_certificate, cfg->tls_key, &err);
    if (ctx != NULL)
        SSL_CTX_free(ctx);
    else
        rc = finding(cfg, "tls", err);
    struct cf_static *web = NULL;
    if (cf_web_load(cfg->web_dir, &web, &err) == CF_OK)
        cf_web_free(web);
    else
        rc = finding(cfg, "web_dir", err);
    if (check_access_log(cfg) != 0)
        rc = 2;
    for (size_t i = 0; i < cfg->nlisten; i++) {
        struct addrinfo *ai = cf_listen_resolve(cfg->listen[i], &err);
        if (ai != NULL)
            freeaddrinfo(ai);
        else
            rc = finding(cfg, NULL, err); /* "listen: SPEC: why" */
    }
    /* 5. As the service account from here, like serve: can it reload the TLS files, and does the key
     * open the store? */
    if (priv.drop && cf_priv_drop(&priv, &err) != 0) {
        fprintf(stderr, "coffer: %s\n", err);
        free(err);
        if (have_key)
            cf_key_wipe(&master);
        cf_anchor_close(anchor);
        return rc == 2 ? 2 : 1;
    }
    if (priv.drop) {
        char *unreadable = cf_priv_unreadable(cfg->tls_certificate, cfg->tls_key);
        if (unreadable != NULL) /* serve only warns: it starts, but SIGHUP cannot reload */
            fprintf(stderr, "coffer: %s: tls: warning: SIGHUP cannot reload the TLS certificate: %s\n", cfg->path,
                    unreadable);
        free(unreadable);
    }
    if (have_key) {
        struct cf_store *s = NULL;
        enum cf_status st = cf_store_open_readonly(cfg->data_dir, &master, &s);
        cf_key_wipe(&master);
        char *why = NULL;
        if (st == CF_OK && cf_store_anchor_verdict(s, anchor, &why) != CF_OK) {
            /* Not the configuration's fault: the data directory is older than its anchor. */
            finding(cfg, "data_dir", cf_xasprintf("%s; serve would refuse to start (`coffer journal accept` if this is "
                                                  "a deliberate restore)",
                                                  why));
            free(why);
            rc = rc == 2 ? 2 : 1;
        }
        if (st == CF_OK) {
            cf_store_close(s);
        } else {
            int code = finding(cfg, "data_dir", cf_store_open_error(cfg, st));
            /* A key that does not open the store, or no store at all, is the configuration's fault;
             * a store that cannot be read is not. */
            if (st != CF_ENOTFOUND && st != CF_ECRYPTO && rc == 0)
                code = 1;
            rc = rc == 2 ? 2 : code;
        }
    }
    cf_anchor_close(anchor);
    if (rc == 0)
        printf("coffer: %s: configuration ok\n", cfg->path);
    return rc;
}
