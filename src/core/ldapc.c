/*
 * ldapc.c: the directory client (see ldapc.h) over libldap 2.5. One handle per connection, options
 * set on the handle (never the library's globals, which other threads may be using), TLS demanded.
 */
#include "ldapc.h"

#include <ldap.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "log.h"

struct cf_ldap {
    LDAP *ld;
    const struct cf_config *cfg;
};

struct cf_ldap_entry {
    LDAPMessage *msg;
    char *dn; /* ldap_get_dn, freed with ldap_memfree */
};

/* ---- connecting -------------------------------------------------------------------------------- */

static enum cf_status fail_msg(char **err, const char *what, int rc)
{
    if (err != NULL)
        *err = cf_xasprintf("directory: %s: %s", what, ldap_err2string(rc));
    return CF_EUNAVAIL;
}

/* A handle to directory.url with TLS and timeouts set, connected (StartTLS done), not bound. */
static enum cf_status connect_to(const struct cf_config *cfg, LDAP **out, char **err)
{
    LDAP *ld = NULL;
    int rc = ldap_initialize(&ld, cfg->directory.url);
    if (rc != LDAP_SUCCESS)
        return fail_msg(err, cfg->directory.url, rc);
    int v3 = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;
    struct timeval tv = {(time_t)cfg->directory.timeout_s, 0};
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
    /* TLS: the server's certificate must chain to directory.ca (else the system's CAs) and name
     * the host; a new TLS context for this handle makes these options its own. */
    if (ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) != LDAP_OPT_SUCCESS ||
        (cfg->directory.ca != NULL &&
         ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, cfg->directory.ca) != LDAP_OPT_SUCCESS) ||
        ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero) != LDAP_OPT_SUCCESS) {
        ldap_unbind_ext_s(ld, NULL, NULL);
        if (err != NULL)
            *err = cf_xasprintf("directory: cannot set up TLS with the CA file %s",
                                cfg->directory.ca != NULL ? cfg->directory.ca : "(system)");
        return CF_EUNAVAIL;
    }
    if (cfg->directory.start_tls) {
        rc = ldap_start_tls_s(ld, NULL, NULL);
        if (rc != LDAP_SUCCESS) {
            ldap_unbind_ext_s(ld, NULL, NULL);
            return fail_msg(err, "StartTLS", rc);
        }
    }
    *out = ld;
    return CF_OK;
}

/* A simple bind (RFC 4513 §5.1.3) as dn with pw[0..n); the LDAP result code. */
static int simple_bind(LDAP *ld, const char *dn, const char *pw, size_t n)
{
    struct berval cred = {.bv_len = n, .bv_val = (char *)(uintptr_t)pw};
    return ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

enum cf_status cf_ldap_open(const struct cf_config *cfg, struct cf_ldap **out, char **err)
{
    LDAP *ld;
    enum cf_status st = connect_to(cfg, &ld, err);
    if (st != CF_OK)
        return st;
    int rc = cfg->directory.bind_dn != NULL
                 ? simple_bind(ld, cfg->directory.bind_dn, cfg->directory.bind_password, cfg->directory.bind_password_len)
                 : simple_bind(ld, "", "", 0);
    if (rc != LDAP_SUCCESS) {
        /* The first operation opens the connection: a refused TLS handshake (a certificate that does
         * not chain to directory.ca or name the host) shows here as "Can't contact LDAP server". */
        if (err != NULL)
            *err = rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT
                       ? cf_xasprintf("directory: cannot reach %s (%s; check the address, and that its certificate "
                                      "chains to directory.ca and names the host)",
                                      cfg->directory.url, ldap_err2string(rc))
                       : cf_xasprintf("directory: the service account's bind (directory.bind_dn) was refused: %s",
                                      ldap_err2string(rc));
        ldap_unbind_ext_s(ld, NULL, NULL);
        return CF_EUNAVAIL;
    }
    struct cf_ldap *l = cf_xcalloc(1, sizeof *l);
    l->ld = ld;
    l->cfg = cfg;
    *out = l;
    return CF_OK;
}

void cf_ldap_close(struct cf_ldap *l)
{
    if (l == NULL)
        return;
    ldap_unbind_ext_s(l->ld, NULL, NULL);
    free(l);
}

/* ---- searching --------------------------------------------------------------------------------- */

enum cf_status cf_ldap_search(struct cf_ldap *l, const char *base, const char *filter, const char *const *attrs,
                              int (*cb)(void *ctx, struct cf_ldap *l, struct cf_ldap_entry *e), void *ctx, char **err)
{
    struct berval *cookie = NULL;
    enum cf_status st = CF_OK;
    struct timeval tv = {(time_t)l->cfg->directory.timeout_s, 0};
    do {
        LDAPControl *page = NULL, *ctrls[2] = {NULL, NULL}, **rctrls = NULL;
        LDAPMessage *res = NULL;
        int rc = ldap_create_page_control(l->ld, CF_LDAP_PAGE, cookie, 1, &page);
        if (rc != LDAP_SUCCESS) {
            st = fail_msg(err, "paged results control", rc);
            break;
        }
        ctrls[0] = page;
        rc = ldap_search_ext_s(l->ld, base, LDAP_SCOPE_SUBTREE, filter, (char **)(uintptr_t)attrs, 0, ctrls, NULL,
                               &tv, LDAP_NO_LIMIT, &res);
        ldap_control_free(page);
        if (rc != LDAP_SUCCESS) {
            ldap_msgfree(res);
            char *what = cf_xasprintf("search of %s", base);
            st = fail_msg(err, what, rc);
            free(what);
            break;
        }
        for (LDAPMessage *m = ldap_first_entry(l->ld, res); m != NULL && st == CF_OK; m = ldap_next_entry(l->ld, m)) {
            struct cf_ldap_entry e = {.msg = m, .dn = ldap_get_dn(l->ld, m)};
            if (e.dn != NULL && cb(ctx, l, &e) != 0)
                st = CF_EINVAL;
            ldap_memfree(e.dn);
        }
        int code = LDAP_SUCCESS;
        rc = ldap_parse_result(l->ld, res, &code, NULL, NULL, NULL, &rctrls, 1);
        res = NULL; /* freed by ldap_parse_result */
        if (st == CF_OK && (rc != LDAP_SUCCESS || code != LDAP_SUCCESS)) {
            char *what = cf_xasprintf("search of %s", base);
            st = fail_msg(err, what, rc != LDAP_SUCCESS ? rc : code);
            free(what);
        }
        if (cookie != NULL) {
            ber_bvfree(cookie);
            cookie = NULL;
        }
        if (st == CF_OK) {
            LDAPControl *pr = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, rctrls, NULL);
            ber_int_t count = 0;
            struct berval c = {0, NULL};
            if (pr != NULL && ldap_parse_pageresponse_control(l->ld, pr, &count, &c) == LDAP_SUCCESS &&
                c.bv_len > 0)
                cookie = ber_bvdup(&c);
            if (c.bv_val != NULL)
                ber_memfree(c.bv_val);
        }
        ldap_controls_free(rctrls);
    } while (st == CF_OK && cookie != NULL);
    if (cookie != NULL)
        ber_bvfree(cookie);
    return st;
}

const char *cf_ldap_entry_dn(const struct cf_ldap_entry *e)
{
    return e->dn;
}

size_t cf_ldap_entry_values(struct cf_ldap *l, struct cf_ldap_entry *e, const char *attr, char ***out)
{
    struct berval **vals = ldap_get_values_len(l->ld, e->msg, attr);
    size_t n = 0, cnt = (size_t)ldap_count_values_len(vals);
    *out = NULL;
    if (vals == NULL)
        return 0;
    if (cnt > 0)
        *out = cf_xcalloc(cnt, sizeof **out);
    for (size_t i = 0; i < cnt; i++)
        if (memchr(vals[i]->bv_val, '\0', vals[i]->bv_len) == NULL)
            (*out)[n++] = cf_xstrndup(vals[i]->bv_val, vals[i]->bv_len);
    ldap_value_free_len(vals);
    if (n == 0) {
        free(*out);
        *out = NULL;
    }
    return n;
}

char *cf_ldap_entry_value(struct cf_ldap *l, struct cf_ldap_entry *e, const char *attr)
{
    char **v;
    size_t n = cf_ldap_entry_values(l, e, attr, &v);
    if (n == 0)
        return NULL;
    char *first = v[0];
    for (size_t i = 1; i < n; i++)
        free(v[i]);
    free(v);
    return first;
}

char *cf_ldap_filter_escape(const char *s)
{
    size_t n = strlen(s);
    char *out = cf_xmalloc(3 * n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '*' || c == '(' || c == ')' || c == '\\' || c < 0x20 || c == 0x7f) {
            static const char hex[] = "0123456789abcdef";
            *o++ = '\\';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    *o = '\0';
    return out;
}

/* ---- DNs --------------------------------------------------------------------------------------- */

static bool bv_equal_ci(const struct berval *a, const struct berval *b)
{
    return a->bv_len == b->bv_len && strncasecmp(a->bv_val, b->bv_val, a->bv_len) == 0;
}

/* Whether two RDNs have the same attribute types and values (ASCII case folded). */
static bool rdn_equal(LDAPRDN a, LDAPRDN b)
{
    size_t i = 0;
    for (; a[i] != NULL && b[i] != NULL; i++)
        if (!bv_equal_ci(&a[i]->la_attr, &b[i]->la_attr) || !bv_equal_ci(&a[i]->la_value, &b[i]->la_value))
            return false;
    return a[i] == NULL && b[i] == NULL;
}

static size_t dn_len(LDAPDN dn)
{
    size_t n = 0;
    while (dn != NULL && dn[n] != NULL)
        n++;
    return n;
}

bool cf_ldap_dn_below(const char *dn, const char *base, char ***ous, size_t *n)
{
    LDAPDN d = NULL, b = NULL;
    bool below = false;
    *ous = NULL;
    *n = 0;
    if (ldap_str2dn(dn, &d, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS ||
        ldap_str2dn(base, &b, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
        goto out;
    size_t dl = dn_len(d), bl = dn_len(b);
    if (dl <= bl)
        goto out;
    for (size_t i = 0; i < bl; i++)
        if (!rdn_equal(d[dl - bl + i], b[i]))
            goto out;
    below = true;
    /* d[0] is the entry's own RDN; d[1 .. dl-bl-1] lie between it and the base, innermost first. */
    if (dl - bl > 1)
        *ous = cf_xcalloc(dl - bl - 1, sizeof **ous);
    for (size_t i = dl - bl - 1; i >= 1; i--) {
        LDAPAVA *ava = d[i][0];
        static const struct berval ou = {2, (char *)"ou"};
        if (ava != NULL && d[i][1] == NULL && bv_equal_ci(&ava->la_attr, &ou) &&
            memchr(ava->la_value.bv_val, '\0', ava->la_value.bv_len) == NULL)
            (*ous)[(*n)++] = cf_xstrndup(ava->la_value.bv_val, ava->la_value.bv_len);
    }
    if (*n == 0) {
        free(*ous);
        *ous = NULL;
    }
out:
    ldap_dnfree(d);
    ldap_dnfree(b);
    return below;
}

char *cf_ldap_dn_norm(const char *dn)
{
    char *norm = NULL, *out;
    if (ldap_dn_normalize(dn, LDAP_DN_FORMAT_LDAPV3, &norm, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS && norm != NULL) {
        out = cf_xstrdup(norm);
        ldap_memfree(norm);
    } else {
        out = cf_xstrdup(dn);
    }
    for (char *p = out; *p != '\0'; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    return out;
}

bool cf_ldap_dn_equal(const char *a, const char *b)
{
    LDAPDN x = NULL, y = NULL;
    bool eq = false;
    if (ldap_str2dn(a, &x, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS &&
        ldap_str2dn(b, &y, LDAP_DN_FORMAT_LDAPV3) == LDAP_SUCCESS && dn_len(x) == dn_len(y)) {
        eq = true;
        for (size_t i = 0; eq && x[i] != NULL; i++)
            eq = rdn_equal(x[i], y[i]);
    }
    ldap_dnfree(x);
    ldap_dnfree(y);
    return eq;
}

/* ---- sign-in ----------------------------------------------------------------------------------- */

struct found {
    char *dn;
    char *id;   /* entryUUID, else the DN */
    size_t n;   /* entries that matched */
};

static int found_one(void *ctx, struct cf_ldap *l, struct cf_ldap_entry *e)
{
    struct found *f = ctx;
    if (f->n++ > 0)
        return 0;
    f->dn = cf_xstrdup(cf_ldap_entry_dn(e));
    f->id = cf_ldap_entry_value(l, e, "entryUUID");
    if (f->id == NULL)
        f->id = cf_xstrdup(f->dn);
    return 0;
}

/* A DN that names no entry: below users.base, its RDN value random (128 bits), so that no directory
 * holds it and no account can be locked out by a bind to it. */
static char *decoy_dn(const struct cf_config *cfg)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t r[16];
    char h[2 * sizeof r + 1];
    cf_random(r, sizeof r);
    for (size_t i = 0; i < sizeof r; i++) {
        h[2 * i] = hex[r[i] >> 4];
        h[2 * i + 1] = hex[r[i] & 15];
    }
    h[2 * sizeof r] = '\0';
    return cf_xasprintf("cn=coffer-sign-in-decoy-%s,%s", h, cfg->directory.user_base);
}

/* A random printable password of n bytes (the length of the caller's), never the caller's. */
static char *decoy_password(size_t n)
{
    char *p = cf_xmalloc(n + 1);
    cf_random(p, n);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('!' + (unsigned char)p[i] % 94);
    p[n] = '\0';
    return p;
}

/* The classification of a user bind's result code. */
static enum cf_ldap_login bind_result(int rc)
{
    if (rc == LDAP_SUCCESS)
        return CF_LDAP_LOGIN_OK;
    if (rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_UNWILLING_TO_PERFORM || rc == LDAP_INAPPROPRIATE_AUTH ||
        rc == LDAP_CONSTRAINT_VIOLATION || rc == LDAP_INSUFFICIENT_ACCESS || rc == LDAP_NO_SUCH_OBJECT)
        return CF_LDAP_LOGIN_DENIED;
    cf_log_warn("cf_ldap_login: the user's bind: %s", ldap_err2string(rc));
    return CF_LDAP_LOGIN_UNAVAILABLE;
}

/* Both sign-in paths, the same LDAP operations in the same order: connect and bind as the service
 * account, search for the name, then exactly one user bind: as the entry with pw when real and the
 * entry is the one expected, else as decoy_dn() with a random password of the same length (pw is
 * then never sent anywhere). */
static enum cf_ldap_login login_run(const struct cf_config *cfg, const char *username, const char *expect_id,
                                    const char *pw, size_t n, bool real)
{
    if (n == 0 || memchr(pw, '\0', n) != NULL)
        return CF_LDAP_LOGIN_DENIED; /* never an unauthenticated bind */
    struct cf_ldap *l = NULL;
    char *err = NULL;
    if (cf_ldap_open(cfg, &l, &err) != CF_OK) {
        cf_log_warn("%s: %s", "cf_ldap_login", err);
        free(err);
        return CF_LDAP_LOGIN_UNAVAILABLE;
    }
    char *esc = cf_ldap_filter_escape(username);
    char *filter = cfg->directory.user_disabled != NULL
                       ? cf_xasprintf("(&%s(%s=%s)(!%s))", cfg->directory.user_filter, cfg->directory.user_username,
                                      esc, cfg->directory.user_disabled)
                       : cf_xasprintf("(&%s(%s=%s))", cfg->directory.user_filter, cfg->directory.user_username, esc);
    free(esc);
    static const char *const attrs[] = {"entryUUID", "1.1", NULL};
    struct found f = {0};
    enum cf_ldap_login res;
    enum cf_status st = cf_ldap_search(l, cfg->directory.user_base, filter, attrs, found_one, &f, &err);
    free(filter);
    if (st != CF_OK) {
        cf_log_warn("%s: %s", "cf_ldap_login", err != NULL ? err : "search failed");
        free(err);
        res = CF_LDAP_LOGIN_UNAVAILABLE;
    } else if (real && f.n == 1 &&
               (expect_id == NULL || strcmp(f.id, expect_id) == 0 || cf_ldap_dn_equal(f.dn, expect_id))) {
        res = bind_result(simple_bind(l->ld, f.dn, pw, n));
    } else {
        char *dn = decoy_dn(cfg), *dpw = decoy_password(n);
        res = bind_result(simple_bind(l->ld, dn, dpw, n));
        if (res == CF_LDAP_LOGIN_OK) { /* a directory that lets anyone in: never a sign-in */
            cf_log_warn("cf_ldap_login: the directory accepted a bind to a DN that names no entry");
            res = CF_LDAP_LOGIN_DENIED;
        }
        cf_wipe(dpw, n);
        free(dpw);
        free(dn);
    }
    free(f.dn);
    free(f.id);
    cf_ldap_close(l);
    return res;
}

enum cf_ldap_login cf_ldap_login(const struct cf_config *cfg, const char *username, const char *expect_id,
                                 const char *pw, size_t n)
{
    return login_run(cfg, username, expect_id, pw, n, true);
}

enum cf_ldap_login cf_ldap_login_decoy(const struct cf_config *cfg, const char *username, const char *pw, size_t n)
{
    return login_run(cfg, username, NULL, pw, n, false);
}
