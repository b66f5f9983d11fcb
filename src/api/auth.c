/*
 * auth.c: login, logout, the caller's identity, and the authentication stage (see auth.h).
 *
 * Tokens: 32 random bytes, base64url (43 characters). The store keeps SHA-256(token) only; a
 * stolen database gives no usable token. The same token works as a bearer token (apps) and as the
 * coffer_session cookie (browsers); cookie requests with an unsafe method must also carry the
 * session's CSRF token in X-CSRF-Token (it is returned once, at login, and stored as a hash).
 *
 * Uniform failures: an unknown tenant, an unknown user and a wrong password all answer the same
 * 401 body after one Argon2id verification (against a dummy hash when there is no user). In the
 * directory's tenant every login also asks the directory once (a directory user's bind, or a decoy
 * search and bind for any other name), and a directory user pays the dummy verification too.
 *
 * Throttling: a login reserves one attempt for its account and one for its client address (an
 * IPv4 address or an IPv6 /64, addr.h) before the password is looked at, so however many logins
 * run in parallel, at most the limits are ever checked. A failure (wrong password, wrong or reused
 * TOTP code, offboarded) keeps its attempts; anything else gives them back, and a success also
 * forgets the account's earlier failures (never the address's).
 */
#include "auth.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "audit.h"
#include "handlers.h"
#include "http.h"
#include "ldapc.h"
#include "log.h"
#include "quota.h"
#include "validate.h"
#include "throttle.h"
#include "totp.h"
#include "web.h"
#include "work.h"

#define ARGON2_SALT_LEN 16
#define ARGON2_HASH_LEN 32
#define UA_MAX 512

const char *cf_role_name(enum cf_role role)
{
    switch (role) {
    case CF_ROLE_ADMIN:
        return "admin";
    case CF_ROLE_AUDITOR:
        return "auditor";
    default:
        return "member";
    }
}

const char *cf_user_status_name(enum cf_user_status st)
{
    switch (st) {
    case CF_USER_FROZEN:
        return "frozen";
    case CF_USER_OFFBOARDED:
        return "offboarded";
    default:
        return "active";
    }
}

json_t *cf_user_json(const struct cf_user *u, const char *tenant_name)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", cf_json_id(&u->id));
    json_object_set_new(o, "username", json_string(u->username));
    json_object_set_new(o, "display_name", u->display_name != NULL ? json_string(u->display_name) : json_null());
    json_object_set_new(o, "role", json_string(cf_role_name(u->role)));
    json_object_set_new(o, "status", json_string(cf_user_status_name(u->status)));
    json_t *t = json_object();
    json_object_set_new(t, "id", cf_json_id(&u->tenant));
    json_object_set_new(t, "name", tenant_name != NULL ? json_string(tenant_name) : json_null());
    json_object_set_new(o, "tenant", t);
    json_object_set_new(o, "created_at", cf_json_time(u->created_at));
    json_object_set_new(o, "source", json_string(u->source == CF_SOURCE_DIRECTORY ? "directory" : "local"));
    json_object_set_new(o, "email", u->email != NULL ? json_string(u->email) : json_null());
    return o;
}

/* ---- passwords -------------------------------------------------------------------------------- */

bool cf_auth_password_ok(const char *pw, size_t n)
{
    return n >= CF_PASSWORD_MIN && n <= CF_PASSWORD_MAX && memchr(pw, '\0', n) == NULL;
}

enum cf_status cf_auth_hash_password(const struct cf_config *cfg, const char *pw, size_t n, char **out)
{
    uint8_t salt[ARGON2_SALT_LEN];
    uint32_t t = cfg->auth.argon2_iterations, m = cfg->auth.argon2_memory_kib, p = cfg->auth.argon2_parallelism;
    size_t len = argon2_encodedlen(t, m, p, ARGON2_SALT_LEN, ARGON2_HASH_LEN, Argon2_id);
    char *enc = cf_xmalloc(len);
    cf_random(salt, sizeof salt);
    int rc = argon2id_hash_encoded(t, m, p, pw, n, salt, sizeof salt, ARGON2_HASH_LEN, enc, len);
    if (rc != ARGON2_OK) {
        cf_log_error("%s: argon2id: %s", __func__, argon2_error_message(rc));
        free(enc);
        return CF_ECRYPTO;
    }
    *out = enc;
    return CF_OK;
}

bool cf_auth_verify_password(const char *encoded, const char *pw, size_t n)
{
    return encoded != NULL && argon2id_verify(encoded, pw, n) == ARGON2_OK;
}

enum cf_status cf_auth_user_password(const struct cf_config *cfg, const struct cf_user *u, const char *pw, size_t n)
{
    if (u->source != CF_SOURCE_DIRECTORY)
        return cf_auth_verify_password(u->pwhash, pw, n) ? CF_OK : CF_EDENIED;
    if (!cfg->directory.enabled)
        return CF_EUNAVAIL;
    switch (cf_ldap_login(cfg, u->username, u->directory_id, pw, n)) {
    case CF_LDAP_LOGIN_OK:
        return CF_OK;
    case CF_LDAP_LOGIN_DENIED:
        return CF_EDENIED;
    default:
        return CF_EUNAVAIL;
    }
}

/* Whether an encoded hash was made with other parameters than the configured ones. */
static bool needs_rehash(const struct cf_config *cfg, const char *encoded)
{
    char want[96];
    snprintf(want, sizeof want, "$argon2id$v=19$m=%u,t=%u,p=%u$", cfg->auth.argon2_memory_kib,
             cfg->auth.argon2_iterations, cfg->auth.argon2_parallelism);
    return strncmp(encoded, want, strlen(want)) != 0;
}

void cf_auth_random_password(char *out, size_t n)
{
    static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    const size_t k = sizeof alphabet - 1;
    for (size_t i = 0; i + 1 < n;) {
        uint8_t b;
        cf_random(&b, 1);
        if (b >= 256 - 256 % k) /* rejection sampling: no modulo bias */
            continue;
        out[i++] = alphabet[b % k];
    }
    out[n - 1] = '\0';
}

char *cf_auth_dummy_hash(const struct cf_config *cfg)
{
    char pw[33], *h = NULL;
    cf_auth_random_password(pw, sizeof pw);
    if (cf_auth_hash_password(cfg, pw, strlen(pw), &h) != CF_OK)
        h = NULL;
    cf_wipe(pw, sizeof pw);
    return h;
}

/* ---- recovery codes (auth.h) ---------------------------------------------------------------- */

static const char recovery_alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789";

static void random_chars(char *out, size_t len)
{
    const size_t k = sizeof recovery_alphabet - 1;
    for (size_t i = 0; i < len;) {
        uint8_t b;
        cf_random(&b, 1);
        if (b >= 256 - 256 % k) /* rejection sampling: no modulo bias */
            continue;
        out[i++] = recovery_alphabet[b % k];
    }
    out[len] = '\0';
}

static bool normalise_code(const char *in, size_t n, char *out, size_t len);

static void random_code(char out[CF_RECOVERY_CODE_LEN + 1])
{
    random_chars(out, CF_RECOVERY_CODE_LEN);
}

void cf_app_password_generate(char text[CF_APPPW_TEXT_LEN + 1], char norm[CF_APPPW_LEN + 1])
{
    random_chars(norm, CF_APPPW_LEN);
    snprintf(text, CF_APPPW_TEXT_LEN + 1, "%.6s-%.6s-%.6s-%.6s", norm, norm + 6, norm + 12, norm + 18);
}

bool cf_app_password_normalise(const char *in, size_t n, char out[CF_APPPW_LEN + 1])
{
    return normalise_code(in, n, out, CF_APPPW_LEN);
}

static bool tag_taken(char *const stored[], size_t n, const char *code)
{
    for (size_t i = 0; i < n; i++)
        if (CRYPTO_memcmp(stored[i], code, CF_RECOVERY_TAG_LEN) == 0)
            return true;
    return false;
}

enum cf_status cf_recovery_generate(const struct cf_config *cfg, char *codes[CF_RECOVERY_CODES],
                                    char *stored[CF_RECOVERY_CODES])
{
    char code[CF_RECOVERY_CODE_LEN + 1];
    enum cf_status st = CF_OK;
    size_t i;
    for (i = 0; i < CF_RECOVERY_CODES; i++) {
        do
            random_code(code);
        while (tag_taken(stored, i, code));
        char *hash;
        if ((st = cf_auth_hash_password(cfg, code, CF_RECOVERY_CODE_LEN, &hash)) != CF_OK)
            break;
        stored[i] = cf_xasprintf("%.*s$%s", CF_RECOVERY_TAG_LEN, code, hash);
        cf_free_secret(hash, strlen(hash));
        codes[i] = cf_xasprintf("%.4s-%.4s-%.4s-%.4s", code, code + 4, code + 8, code + 12);
    }
    cf_wipe(code, sizeof code);
    if (st != CF_OK)
        for (size_t j = 0; j < i; j++) {
            cf_free_secret(stored[j], strlen(stored[j]));
            cf_free_secret(codes[j], strlen(codes[j]));
            stored[j] = codes[j] = NULL;
        }
    return st;
}

/* The code typed (in, n) in canonical form, len characters of recovery_alphabet, into out (len + 1
 * bytes): lower case, dashes and spaces dropped; false for anything else (out wiped). */
static bool normalise_code(const char *in, size_t n, char *out, size_t len)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '-' || c == ' ')
            continue;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c == '\0' || strchr(recovery_alphabet, c) == NULL || k == len) {
            cf_wipe(out, len + 1);
            return false;
        }
        out[k++] = c;
    }
    out[k] = '\0';
    return k == len;
}

bool cf_recovery_normalise(const char *in, size_t n, char out[CF_RECOVERY_CODE_LEN + 1])
{
    return normalise_code(in, n, out, CF_RECOVERY_CODE_LEN);
}

int cf_recovery_match(const struct cf_user *u, const char *code, const char *dummy)
{
    /* Every tag is compared, in constant time; the last match wins (tags are distinct). */
    size_t pick = SIZE_MAX;
    for (size_t i = 0; i < u->nrecovery && i < CF_RECOVERY_CODES; i++) {
        const char *s = u->recovery[i];
        bool ok = strlen(s) > CF_RECOVERY_TAG_LEN + 1 && cf_ct_equal(s, code, CF_RECOVERY_TAG_LEN);
        size_t mask = (size_t)0 - (size_t)ok;
        pick = (i & mask) | (pick & ~mask);
    }
    const char *hash = pick != SIZE_MAX ? u->recovery[pick] + CF_RECOVERY_TAG_LEN + 1 : dummy;
    bool ok = cf_auth_verify_password(hash, code, strlen(code));
    return pick != SIZE_MAX && ok ? (int)pick : -1;
}

bool cf_recovery_take(struct cf_user *u, const char *stored)
{
    for (size_t i = 0; i < u->nrecovery && i < CF_RECOVERY_CODES; i++) {
        if (!cf_ct_streq(u->recovery[i], stored))
            continue;
        cf_free_secret(u->recovery[i], strlen(u->recovery[i]));
        memmove(&u->recovery[i], &u->recovery[i + 1], (u->nrecovery - i - 1) * sizeof u->recovery[0]);
        u->recovery[--u->nrecovery] = NULL;
        return true;
    }
    return false;
}

void cf_recovery_replace(struct cf_user *u, char **stored, size_t n)
{
    for (size_t i = 0; i < u->nrecovery && i < CF_RECOVERY_CODES; i++) {
        cf_free_secret(u->recovery[i], strlen(u->recovery[i]));
        u->recovery[i] = NULL;
    }
    u->nrecovery = 0;
    for (size_t i = 0; i < n && i < CF_RECOVERY_CODES; i++) {
        u->recovery[u->nrecovery++] = stored[i];
        stored[i] = NULL;
    }
}

/* ---- authentication stage --------------------------------------------------------------------- */

enum cf_cred cf_auth_credential(struct cf_req *r, const char *cookie, h2o_iovec_t *tok)
{
    h2o_iovec_t a = cf_header(r, "authorization");
    if (a.base != NULL) {
        if (a.len > 7 && strncasecmp(a.base, "Bearer ", 7) == 0) {
            *tok = h2o_iovec_init(a.base + 7, a.len - 7);
            return CF_CRED_BEARER;
        }
        return CF_CRED_MALFORMED;
    }
    /* h2 may send several cookie headers. */
    ssize_t i = -1;
    while ((i = h2o_find_header(&r->req->headers, H2O_TOKEN_COOKIE, i)) != -1) {
        h2o_iovec_t c = r->req->headers.entries[i].value;
        const char *v;
        size_t vl;
        if (cf_cookie_find(c.base, c.len, cookie, &v, &vl)) {
            *tok = h2o_iovec_init(v, vl);
            return CF_CRED_COOKIE;
        }
    }
    return CF_CRED_NONE;
}

/* The token text from "Authorization: Bearer X" or the session cookie. */
static bool find_token(struct cf_req *r, h2o_iovec_t *tok, enum cf_auth_kind *kind, bool *malformed)
{
    enum cf_cred c = cf_auth_credential(r, CF_SESSION_COOKIE, tok);
    *malformed = c == CF_CRED_MALFORMED;
    *kind = c == CF_CRED_COOKIE ? CF_AUTH_COOKIE : CF_AUTH_BEARER;
    return c == CF_CRED_BEARER || c == CF_CRED_COOKIE;
}

bool cf_cookie_find(const char *c, size_t n, const char *name, const char **val, size_t *vlen)
{
    /* Cookie: name=value; name2=value2 (RFC 6265 §5.4). The first cookie of that name wins. */
    const char *p = c, *end = c + n;
    size_t nl = strlen(name);
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ';'))
            p++;
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *ce = semi != NULL ? semi : end;
        if ((size_t)(ce - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
            *val = p + nl + 1;
            *vlen = (size_t)(ce - p) - nl - 1;
            return true;
        }
        p = ce;
    }
    return false;
}

bool cf_auth_token_hash(const char *tok, size_t n, uint8_t hash[CF_SHA256_LEN])
{
    uint8_t raw[CF_TOKEN_BYTES];
    size_t len;
    if (n != CF_TOKEN_TEXT_LEN || cf_b64url_decode(tok, n, raw, sizeof raw, &len) != CF_OK || len != CF_TOKEN_BYTES)
        return false;
    cf_sha256(raw, sizeof raw, hash);
    cf_wipe(raw, sizeof raw);
    return true;
}

bool cf_auth_session_hash(struct cf_req *r, uint8_t hash[CF_SHA256_LEN])
{
    h2o_iovec_t tok;
    enum cf_auth_kind kind;
    bool malformed;
    return find_token(r, &tok, &kind, &malformed) && cf_auth_token_hash(tok.base, tok.len, hash);
}

bool cf_auth_authenticate_or_respond(struct cf_req *r, unsigned restricted_ok)
{
    h2o_iovec_t tok;
    enum cf_auth_kind kind;
    bool malformed;
    struct cf_session ss;
    uint8_t hash[CF_SHA256_LEN];

    if (!find_token(r, &tok, &kind, &malformed) || !cf_auth_token_hash(tok.base, tok.len, hash)) {
        cf_respond_status(r, CF_EUNAUTH, malformed ? "expected Authorization: Bearer TOKEN" : NULL);
        return false;
    }
    enum cf_status st = cf_session_get(r->app->store, hash, &ss);
    if (st != CF_OK) {
        if (st != CF_ENOTFOUND)
            cf_log_error("%s: session lookup failed: %s", __func__, cf_status_name(st));
        cf_respond_status(r, st == CF_ENOTFOUND ? CF_EUNAUTH : st, st == CF_ENOTFOUND ? "invalid or expired session" : NULL);
        return false;
    }
    if (ss.expires_at <= cf_now_ms() || (ss.flags & CF_SESSION_APP_PASSWORD) != 0) {
        /* An app password is HTTP Basic only (cf_auth_basic_or_respond), never a bearer or cookie. */
        cf_session_clear(&ss);
        cf_respond_status(r, CF_EUNAUTH, "invalid or expired session");
        return false;
    }
    st = cf_user_get(r->app->store, &ss.tenant, &ss.user, &r->who.user);
    if (st != CF_OK || r->who.user.status != CF_USER_ACTIVE) {
        /* A frozen or offboarded user's sessions die at the next request (SPEC §3). */
        cf_session_clear(&ss);
        cf_user_clear(&r->who.user);
        cf_respond_status(r, st == CF_OK || st == CF_ENOTFOUND ? CF_EUNAUTH : st, "invalid or expired session");
        return false;
    }
    if (kind == CF_AUTH_COOKIE && !cf_method_is_safe(r)) {
        /* CSRF: a cross-site form can send the cookie but cannot read or set this header. */
        h2o_iovec_t c = cf_header(r, "x-csrf-token");
        uint8_t chash[CF_SHA256_LEN];
        if (c.base == NULL || !cf_auth_token_hash(c.base, c.len, chash) ||
            !cf_ct_equal(chash, ss.csrf_hash, sizeof chash)) {
            cf_session_clear(&ss);
            cf_user_clear(&r->who.user);
            cf_respond_status(r, CF_EDENIED, "missing or invalid X-CSRF-Token");
            return false;
        }
    }
    if (kind == CF_AUTH_COOKIE && (ss.flags & CF_SESSION_API_TOKEN) != 0) {
        /* API tokens are bearer-only: a token that leaked into a cookie jar does not work there. */
        cf_session_clear(&ss);
        cf_user_clear(&r->who.user);
        cf_respond_status(r, CF_EUNAUTH, "invalid or expired session");
        return false;
    }
    if ((ss.flags & CF_SESSION_PW_CHANGE) != 0 && (restricted_ok & CF_SESSION_PW_CHANGE) == 0) {
        cf_session_clear(&ss);
        cf_user_clear(&r->who.user);
        cf_respond_error(r, 403, "password_change_required",
                         "your password was reset: set a new one first (PUT /api/v1/me/password)");
        return false;
    }
    if ((ss.flags & CF_SESSION_PW_CHANGE) == 0 && (ss.flags & CF_SESSION_MFA_ENROL) != 0 &&
        (restricted_ok & CF_SESSION_MFA_ENROL) == 0) {
        cf_session_clear(&ss);
        cf_user_clear(&r->who.user);
        cf_respond_status(r, CF_EMFA, "your tenant requires a second factor: enrol TOTP first");
        return false;
    }
    if (cf_user_groups(r->app->store, &ss.tenant, &ss.user, &r->who.groups, &r->who.ngroups) != CF_OK) {
        cf_session_clear(&ss);
        cf_user_clear(&r->who.user);
        cf_respond_status(r, CF_EIO, NULL);
        return false;
    }
    if (r->who.ngroups > CF_MAX_GROUPS)
        r->who.ngroups = CF_MAX_GROUPS;
    r->who.authenticated = true;
    r->who.kind = kind;
    memcpy(r->who.session_hash, hash, sizeof hash);
    r->who.session_id = ss.id;
    r->who.session_flags = ss.flags;
    cf_session_clear(&ss);
    return true;
}

bool cf_auth_member_of(struct cf_req *r, const struct cf_id *tenant)
{
    /* Only the cookie: on share routes the Authorization header carries the link's access token. */
    ssize_t i = -1;
    while ((i = h2o_find_header(&r->req->headers, H2O_TOKEN_COOKIE, i)) != -1) {
        h2o_iovec_t c = r->req->headers.entries[i].value;
        const char *p = c.base, *end = c.base + c.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *ce = semi != NULL ? semi : end;
            size_t nl = sizeof CF_SESSION_COOKIE - 1;
            uint8_t hash[CF_SHA256_LEN];
            if ((size_t)(ce - p) > nl && memcmp(p, CF_SESSION_COOKIE "=", nl + 1) == 0 &&
                cf_auth_token_hash(p + nl + 1, (size_t)(ce - p) - nl - 1, hash)) {
                struct cf_session ss;
                struct cf_user u;
                bool ok = false;
                if (cf_session_get(r->app->store, hash, &ss) == CF_OK) {
                    if (ss.expires_at > cf_now_ms() && cf_id_equal(&ss.tenant, tenant) &&
                        (ss.flags & (CF_SESSION_MFA_ENROL | CF_SESSION_PW_CHANGE | CF_SESSION_APP_PASSWORD)) == 0 &&
                        cf_user_get(r->app->store, &ss.tenant, &ss.user, &u) == CF_OK) {
                        ok = u.status == CF_USER_ACTIVE;
                        cf_user_clear(&u);
                    }
                    cf_session_clear(&ss);
                }
                return ok;
            }
            p = ce;
        }
    }
    return false;
}

void cf_auth_new_token(char out[CF_TOKEN_TEXT_LEN + 1], uint8_t hash[CF_SHA256_LEN])
{
    uint8_t raw[CF_TOKEN_BYTES];
    cf_random(raw, sizeof raw);
    cf_b64url_encode(raw, sizeof raw, out);
    cf_sha256(raw, sizeof raw, hash);
    cf_wipe(raw, sizeof raw);
}

/* ---- login ------------------------------------------------------------------------------------ */

/* The device of a login: its user agent and network (IPv4 /24, IPv6 /48), as one byte string. */
static size_t device_fingerprint(const char *ip, const char *ua, char *out, size_t cap)
{
    char net[CF_IP_MAX];
    size_t n = strlen(ip);
    memcpy(net, ip, n + 1);
    if (strchr(net, ':') != NULL) {
        /* keep the first three groups of an IPv6 address */
        int colons = 0;
        for (size_t i = 0; i < n; i++)
            if (net[i] == ':' && ++colons == 3) {
                net[i] = '\0';
                break;
            }
    } else {
        char *dot = strrchr(net, '.');
        if (dot != NULL)
            *dot = '\0';
    }
    return (size_t)snprintf(out, cap, "%s%c%s", net, 0, ua != NULL ? ua : "");
}

struct history {
    struct cf_store *store;
    struct cf_id tenant, user;
    struct cf_login login;
};

static void history_write(void *arg)
{
    struct history *h = arg;
    if (cf_login_record(h->store, &h->tenant, &h->user, &h->login) != CF_OK)
        cf_log_warn("could not record a login in the user's history");
    cf_login_clear(&h->login);
    free(h);
}

/* Records a login attempt of an existing user off the request's critical path, so that a failure
 * for an existing user costs what a failure for an unknown user costs. */
static void record_login(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *user, const char *ip,
                         const char *ua, const char *result, bool new_device)
{
    struct history *h = cf_xcalloc(1, sizeof *h);
    h->store = store;
    h->tenant = *tenant;
    h->user = *user;
    h->login.at = cf_now_ms();
    h->login.ip = cf_xstrdup(ip);
    h->login.user_agent = ua != NULL ? cf_xstrdup(ua) : NULL;
    h->login.result = cf_xstrdup(result);
    h->login.new_device = new_device;
    cf_work_background(history_write, h);
}

/* A login's change to the user record, applied by login_mutate under the store's lock. */
struct login_update {
    uint64_t step;            /* the TOTP step the login used; 0: none */
    const char *verified;     /* the password hash the login verified against */
    char *rehash;             /* a new hash with the current cost, or NULL */
    const char *recovery;     /* the stored recovery code the login used (removed: single use), or NULL */
    size_t remaining;         /* out: recovery codes left after it */
};

static enum cf_status login_mutate(struct cf_user *u, void *ctx)
{
    struct login_update *up = ctx;
    if (u->status == CF_USER_FROZEN)
        return CF_EFROZEN; /* frozen while this login was checking the password */
    if (u->status != CF_USER_ACTIVE)
        return CF_EUNAUTH;
    if (up->step != 0) {
        if (up->step <= u->totp_last_step)
            return CF_EUNAUTH; /* another login used this code (or a later one) first */
        u->totp_last_step = up->step;
    }
    if (up->recovery != NULL) {
        if (!cf_recovery_take(u, up->recovery))
            return CF_EUNAUTH; /* another login used this recovery code first */
        up->remaining = u->nrecovery;
    }
    if (up->rehash != NULL && u->pwhash != NULL && cf_ct_streq(u->pwhash, up->verified)) {
        cf_free_secret(u->pwhash, strlen(u->pwhash));
        u->pwhash = cf_xstrdup(up->rehash);
    }
    return CF_OK;
}

struct login {
    struct cf_async a;
    char *tenant;      /* tenant name */
    char *username;
    char *password;    /* wiped in free */
    size_t password_len;
    char *totp;        /* NULL if not given */
    char *recovery;    /* a recovery code in place of totp; NULL if not given */
    char *device;      /* the coffer_device cookie (well-formed token text), or NULL */
    bool browser;      /* the request came from a browser (Sec-Fetch-Mode): it may get a device cookie */
    char *ip;
    char *ua;
    char *account_key; /* throttle key: tenant ‖ 0 ‖ lower(username) */
    size_t account_key_len;
    uint8_t ip_key[CF_ADDR_KEY_LEN];          /* throttle key of the address (addr.h) */
    struct cf_throttle_ticket account_ticket; /* the attempt reserved before the checks */
    struct cf_throttle_ticket ip_ticket;
    /* results */
    struct cf_user user;
    char *tenant_name;
    char token[CF_TOKEN_TEXT_LEN + 1];
    char csrf[CF_TOKEN_TEXT_LEN + 1];
    uint64_t expires_at;
    bool mfa_enrol;
    bool pw_change;                                  /* an admin reset the password */
    const char *factor_error;                        /* the password was right, the second factor not */
    bool directory_down;                             /* a directory user, and the directory did not answer */
    long recovery_left;                              /* codes left after this login used one; -1: none */
    char new_device[CF_TOKEN_TEXT_LEN + 1];          /* a device cookie to issue, or "" */
};

/* A login event (queued without waiting: success and failure cost the same). */
static void login_event(struct login *l, const struct cf_id *tenant, const struct cf_id *user, const char *action,
                        const char *result, const char *reason)
{
    struct cf_event *e = cf_event_new(tenant, action, result);
    if (user != NULL)
        cf_event_user(e, user, l->user.username != NULL ? l->user.username : l->username);
    else
        e->actor_type = CF_ACTOR_ANONYMOUS;
    snprintf(e->ip, sizeof e->ip, "%s", l->ip);
    e->user_agent = l->ua != NULL ? cf_xstrdup(l->ua) : NULL;
    cf_event_detail(e, "username", json_string(l->username));
    if (reason != NULL)
        cf_event_detail(e, "reason", json_string(reason));
    cf_audit_submit(e);
}

/* The login failed: the attempts it reserved stay in the throttles as its failures. */
static void login_failed(struct login *l)
{
    l->account_ticket.held = false;
    l->ip_ticket.held = false;
}

/* A short name for the client of a user agent ("Firefox on Linux"), for alerts. */
static void device_label(const char *ua, char *out, size_t cap)
{
    static const struct {
        const char *needle, *name;
    } clients[] = {{"Edg/", "Edge"},       {"OPR/", "Opera"},         {"Firefox/", "Firefox"},
                   {"Chrome/", "Chrome"},  {"Safari/", "Safari"},     {"curl/", "curl"},
                   {"node", "Node.js"},    {"python", "Python"}},
      systems[] = {{"Windows", "Windows"}, {"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"},
                   {"Mac OS X", "macOS"},  {"CrOS", "ChromeOS"},   {"Linux", "Linux"}};
    const char *c = "unknown client", *s = NULL;
    for (size_t i = 0; ua != NULL && i < sizeof clients / sizeof clients[0]; i++)
        if (strstr(ua, clients[i].needle) != NULL) {
            c = clients[i].name;
            break;
        }
    for (size_t i = 0; ua != NULL && i < sizeof systems / sizeof systems[0]; i++)
        if (strstr(ua, systems[i].needle) != NULL) {
            s = systems[i].name;
            break;
        }
    if (s != NULL)
        snprintf(out, cap, "%s on %s", c, s);
    else
        snprintf(out, cap, "%s", c);
}

/* The request's coffer_device cookie if it is well-formed token text (a copy), else NULL. */
static char *device_cookie(struct cf_req *r)
{
    ssize_t i = -1;
    while ((i = h2o_find_header(&r->req->headers, H2O_TOKEN_COOKIE, i)) != -1) {
        h2o_iovec_t c = r->req->headers.entries[i].value;
        const char *v;
        size_t vl;
        uint8_t hash[CF_SHA256_LEN];
        if (cf_cookie_find(c.base, c.len, CF_DEVICE_COOKIE, &v, &vl))
            return cf_auth_token_hash(v, vl, hash) ? cf_xstrndup(v, vl) : NULL;
    }
    return NULL;
}

/* A login used a recovery code: provenance, and an alert to the user (who may not have been the
 * one who typed it), with how many codes are left. */
static void recovery_used(struct cf_async *a, struct login *l, const struct cf_id *tid, const struct cf_id *uid,
                          size_t remaining)
{
    char label[64];
    device_label(l->ua, label, sizeof label);
    l->recovery_left = (long)remaining;
    struct cf_event *e = cf_event_new(tid, "auth.recovery_code_used", "ok");
    cf_event_user(e, uid, l->user.username);
    snprintf(e->ip, sizeof e->ip, "%s", l->ip);
    e->user_agent = l->ua != NULL ? cf_xstrdup(l->ua) : NULL;
    cf_event_detail(e, "remaining", json_integer((json_int_t)remaining));
    cf_audit_submit(e);
    json_t *d = json_pack("{s:s, s:s?, s:s, s:I}", "ip", l->ip, "user_agent", l->ua, "device", label, "remaining",
                          (json_int_t)remaining);
    char *txt = json_dumps(d, JSON_COMPACT);
    if (cf_alert_add(a->app->store, tid, uid, "alert.recovery_code_used", txt) != CF_OK)
        cf_log_warn("could not store a recovery-code alert");
    free(txt);
    json_decref(d);
}

/* Whether tid is the tenant directory.tenant names (the one whose users the directory holds). */
static bool is_directory_tenant(const struct cf_app *app, const struct cf_id *tid)
{
    const struct cf_config *cfg = app->cfg;
    struct cf_id d;
    return cfg->directory.enabled &&
           cf_tenant_find(app->store, cfg->directory.tenant, strlen(cfg->directory.tenant), &d) == CF_OK &&
           cf_id_equal(&d, tid);
}

static void login_check(struct cf_async *a)
{
    struct login *l = (struct login *)a;
    const struct cf_config *cfg = a->app->cfg;
    struct cf_id tid = {0}, uid;
    struct cf_tenant t = {0};
    bool have_user = false;
    enum cf_status st = cf_tenant_find(a->app->store, l->tenant, strlen(l->tenant), &tid);
    if (st == CF_OK)
        st = cf_user_find(a->app->store, &tid, l->username, strlen(l->username), &uid);
    if (st == CF_OK && (st = cf_user_get(a->app->store, &tid, &uid, &l->user)) == CF_OK)
        have_user = true;
    if (st != CF_OK && st != CF_ENOTFOUND) {
        a->st = st;
        return;
    }
    /* Always one verification, so that "no such user" costs what "wrong password" costs. A directory
     * user's is the directory's (issue 23): a simple bind as their entry, here on the worker; the
     * password is never stored. A directory that does not answer says nothing about the password:
     * 503, and the attempt is given back to the throttles (login_run), not counted as a failure. */
    bool directory = have_user && l->user.source == CF_SOURCE_DIRECTORY, ok;
    bool have_tenant = !cf_id_is_zero(&tid);
    if (directory) {
        enum cf_ldap_login lr = cfg->directory.enabled ? cf_ldap_login(cfg, l->user.username, l->user.directory_id,
                                                                       l->password, l->password_len)
                                                       : CF_LDAP_LOGIN_UNAVAILABLE;
        if (lr == CF_LDAP_LOGIN_UNAVAILABLE) {
            record_login(a->app->store, &tid, &uid, l->ip, l->ua, "directory_unavailable", false);
            login_event(l, &tid, &uid, "auth.login_failed", "error", "directory unavailable");
            l->directory_down = true;
            a->st = CF_EUNAVAIL;
            return;
        }
        ok = lr == CF_LDAP_LOGIN_OK;
        /* ... and the Argon2id verification the other paths pay (docs/SECURITY.md, "Directory"). */
        (void)cf_auth_verify_password(a->app->dummy_pwhash, l->password, l->password_len);
    } else {
        /* In the directory's tenant, a name that is no directory user (unknown, or local) costs the
         * directory's round trips too: the same search for the name and one bind, to a DN that names
         * no entry with a random password (ldapc.h). The password typed is never sent, the answer is
         * ignored (an outage does not stop local accounts), and nobody can be locked out by it. */
        if (have_tenant && is_directory_tenant(a->app, &tid))
            (void)cf_ldap_login_decoy(cfg, l->username, l->password, l->password_len);
        ok = cf_auth_verify_password(have_user ? l->user.pwhash : a->app->dummy_pwhash, l->password, l->password_len);
    }
    if (!have_user || !ok) {
        login_failed(l);
        if (have_user)
            record_login(a->app->store, &tid, &uid, l->ip, l->ua, "failed", false);
        if (have_tenant)
            login_event(l, &tid, have_user ? &uid : NULL, "auth.login_failed", "denied",
                        have_user ? "wrong password" : "unknown user");
        a->st = CF_EUNAUTH;
        return;
    }
    if (l->user.status == CF_USER_FROZEN) {
        record_login(a->app->store, &tid, &uid, l->ip, l->ua, "frozen", false);
        login_event(l, &tid, &uid, "auth.login_failed", "denied", "frozen");
        a->st = CF_EFROZEN;
        return;
    }
    if (l->user.status != CF_USER_ACTIVE) {
        login_failed(l);
        login_event(l, &tid, &uid, "auth.login_failed", "denied", "offboarded");
        a->st = CF_EUNAUTH;
        return;
    }
    uint64_t step = 0;
    char *recovery = NULL; /* the stored form of the recovery code used */
    if (l->user.totp_enabled) {
        if (l->totp == NULL && l->recovery == NULL) {
            record_login(a->app->store, &tid, &uid, l->ip, l->ua, "mfa_required", false);
            a->st = CF_EMFA; /* the password was right; the second factor is missing */
            return;
        }
        /* From here on the password is known to be right (mfa_required says as much already), so
         * a wrong second factor gets its own error code: it reveals nothing new. */
        if (l->recovery != NULL) {
            char norm[CF_RECOVERY_CODE_LEN + 1];
            int k = cf_recovery_normalise(l->recovery, strlen(l->recovery), norm)
                        ? cf_recovery_match(&l->user, norm, a->app->dummy_pwhash)
                        : -1;
            cf_wipe(norm, sizeof norm);
            if (k < 0) {
                login_failed(l);
                record_login(a->app->store, &tid, &uid, l->ip, l->ua, "mfa_failed", false);
                login_event(l, &tid, &uid, "auth.login_failed", "denied", "wrong recovery code");
                l->factor_error = "recovery_code_invalid";
                a->st = CF_EUNAUTH;
                return;
            }
            recovery = cf_xstrdup(l->user.recovery[k]);
        } else if (!cf_totp_verify(l->user.totp_secret, sizeof l->user.totp_secret, l->totp, strlen(l->totp),
                                   cf_now_ms() / 1000, l->user.totp_last_step, &step)) {
            login_failed(l);
            record_login(a->app->store, &tid, &uid, l->ip, l->ua, "mfa_failed", false);
            login_event(l, &tid, &uid, "auth.login_failed", "denied", "wrong TOTP code");
            l->factor_error = "totp_invalid";
            a->st = CF_EUNAUTH;
            return;
        }
    }
    if ((st = cf_tenant_get(a->app->store, &tid, &t)) != CF_OK) {
        if (recovery != NULL)
            cf_free_secret(recovery, strlen(recovery));
        a->st = st;
        return;
    }
    l->mfa_enrol = (t.policy.require_mfa || l->user.must_enrol_totp) && !l->user.totp_enabled;
    l->pw_change = l->user.must_change_password;
    l->tenant_name = t.name;
    t.name = NULL;
    cf_tenant_clear(&t);
    /* What a login changes in the user record (the TOTP step it used, a rehashed password) is
     * applied in one read-modify-write that also re-checks the account: a code is accepted once even
     * by parallel logins, and a login never undoes a concurrent freeze or password change. */
    struct login_update up = {.step = step, .verified = l->user.pwhash, .recovery = recovery};
    if (!directory && needs_rehash(cfg, l->user.pwhash) &&
        cf_auth_hash_password(cfg, l->password, l->password_len, &up.rehash) != CF_OK)
        up.rehash = NULL;
    if (step != 0 || up.rehash != NULL || recovery != NULL)
        st = cf_user_update(a->app->store, &tid, &uid, login_mutate, &up, NULL);
    if (up.rehash != NULL)
        cf_free_secret(up.rehash, strlen(up.rehash));
    bool by_recovery = recovery != NULL;
    if (by_recovery)
        cf_free_secret(recovery, strlen(recovery));
    if (st == CF_EUNAUTH) {
        login_failed(l);
        record_login(a->app->store, &tid, &uid, l->ip, l->ua, "mfa_failed", false);
        login_event(l, &tid, &uid, "auth.login_failed", "denied",
                    by_recovery ? "recovery code already used" : "TOTP code already used");
        l->factor_error = by_recovery ? "recovery_code_invalid" : "totp_invalid";
    }
    if (st != CF_OK) {
        a->st = st;
        return;
    }
    if (by_recovery)
        recovery_used(a, l, &tid, &uid, up.remaining);
    /* A success forgets the account's failures that ended before it began (never the address's);
     * attempts still in flight, perhaps an attacker's burst, keep counting. */
    cf_throttle_settle(a->app->login_account, l->account_key, l->account_key_len, &l->account_ticket, cf_now_ms());

    /* New device: a browser is known by its device cookie (a random id it got at an earlier login of
     * this user); a client without one (scripts, a browser whose cookies were cleared) by its user
     * agent and network, never seen for this user. */
    char fp[CF_IP_MAX + UA_MAX + 2];
    size_t fpl = l->device != NULL ? (size_t)snprintf(fp, sizeof fp, "cookie%c%s", 0, l->device)
                                   : device_fingerprint(l->ip, l->ua, fp, sizeof fp);
    bool seen_before = false, is_new = false;
    if (cf_device_any(a->app->store, &tid, &uid, &seen_before) != CF_OK)
        seen_before = false;
    if (cf_device_seen(a->app->store, &tid, &uid, fp, fpl < sizeof fp ? fpl : sizeof fp - 1, &is_new) != CF_OK)
        is_new = false;
    if (l->device == NULL && l->browser) {
        /* Give this browser a device cookie, known for this user from now on. Only browsers (they
         * send Sec-Fetch-Mode): scripts that keep no cookies would add a device at every login. */
        uint8_t unused[CF_SHA256_LEN];
        bool dummy;
        cf_auth_new_token(l->new_device, unused);
        fpl = (size_t)snprintf(fp, sizeof fp, "cookie%c%s", 0, l->new_device);
        if (cf_device_seen(a->app->store, &tid, &uid, fp, fpl, &dummy) != CF_OK)
            l->new_device[0] = '\0';
    }
    cf_wipe(fp, sizeof fp);
    bool alert = is_new && seen_before;
    if (alert) {
        char label[64];
        device_label(l->ua, label, sizeof label);
        json_t *d = json_pack("{s:s, s:s?, s:s, s:b}", "ip", l->ip, "user_agent", l->ua, "device", label,
                              "device_cookie", l->device != NULL);
        char *txt = json_dumps(d, JSON_COMPACT);
        if (cf_alert_add(a->app->store, &tid, &uid, "alert.new_device", txt) != CF_OK)
            cf_log_warn("could not store a new-device alert");
        free(txt);
        json_decref(d);
        login_event(l, &tid, &uid, "alert.new_device", "ok", NULL);
    }
    record_login(a->app->store, &tid, &uid, l->ip, l->ua, "ok", alert);
    login_event(l, &tid, &uid, "auth.login", "ok",
                l->pw_change ? "must change password" : l->mfa_enrol ? "must enrol TOTP" : NULL);

    struct cf_session ss = {0};
    cf_id_new(&ss.id);
    cf_auth_new_token(l->token, ss.hash);
    cf_auth_new_token(l->csrf, ss.csrf_hash);
    ss.tenant = tid;
    ss.user = uid;
    ss.flags = (l->mfa_enrol ? CF_SESSION_MFA_ENROL : 0u) | (l->pw_change ? CF_SESSION_PW_CHANGE : 0u);
    ss.created_at = cf_now_ms();
    ss.expires_at = l->expires_at = ss.created_at + cfg->auth.session_ttl_s * 1000;
    ss.ip = l->ip;
    ss.user_agent = l->ua;
    if ((a->st = cf_session_put(a->app->store, &ss)) != CF_OK)
        return;
    /* At most auth.max_sessions_per_user login sessions: the oldest beyond it end now. */
    size_t ended = 0;
    if (cf_session_trim(a->app->store, &tid, &uid, cfg->auth.max_sessions_per_user, &ended) != CF_OK)
        cf_log_warn("could not trim a user's sessions to auth.max_sessions_per_user");
    if (ended > 0) {
        struct cf_event *e = cf_event_new(&tid, "auth.sessions_ended", "ok");
        cf_event_user(e, &uid, l->user.username);
        snprintf(e->ip, sizeof e->ip, "%s", l->ip);
        cf_event_detail(e, "reason", json_string("auth.max_sessions_per_user"));
        cf_event_detail(e, "ended", json_integer((json_int_t)ended));
        cf_audit_submit(e);
    }
}

static void login_run(struct cf_async *a)
{
    struct login *l = (struct login *)a;
    login_check(a);
    /* Whatever did not end as a failure (a success, a missing second factor, a frozen account, a
     * store error) gives back the attempts it reserved, before the answer leaves. */
    uint64_t now = cf_now_ms();
    cf_throttle_release(a->app->login_account, l->account_key, l->account_key_len, &l->account_ticket, now);
    cf_throttle_release(a->app->login_ip, l->ip_key, sizeof l->ip_key, &l->ip_ticket, now);
}

static void login_reply(struct cf_req *r, struct cf_async *a)
{
    struct login *l = (struct login *)a;
    switch (a->st) {
    case CF_OK:
        break;
    case CF_EUNAUTH:
        if (l->factor_error != NULL)
            cf_respond_error(r, 401, l->factor_error,
                             l->recovery != NULL ? "that recovery code is wrong or was already used"
                                                 : "that authenticator code is wrong or was already used");
        else
            cf_respond_status(r, CF_EUNAUTH, "invalid tenant, username or password");
        return;
    case CF_EMFA:
        cf_respond_status(r, CF_EMFA, "a TOTP code is required");
        return;
    case CF_EFROZEN:
        cf_respond_status(r, CF_EFROZEN, "this account is frozen");
        return;
    default:
        if (l->directory_down)
            cf_respond_error(r, 503, "directory_unavailable",
                             "the directory that checks this account's password cannot be reached; try again later");
        else
            cf_respond_status(r, a->st, NULL);
        return;
    }
    char *cookie = cf_xasprintf(CF_SESSION_COOKIE "=%s; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=%llu",
                                l->token, (unsigned long long)r->app->cfg->auth.session_ttl_s);
    cf_add_header(r, "set-cookie", cookie, strlen(cookie));
    cf_free_secret(cookie, strlen(cookie));
    if (l->new_device[0] != '\0') {
        /* Sent back only to the login endpoint; 400 days, the longest browsers keep a cookie. */
        char *dc = cf_xasprintf(CF_DEVICE_COOKIE "=%s; Path=/api/v1/auth/login; HttpOnly; Secure; SameSite=Strict; "
                                "Max-Age=34560000",
                                l->new_device);
        cf_add_header(r, "set-cookie", dc, strlen(dc));
        cf_free_secret(dc, strlen(dc));
    }
    json_t *o = json_object();
    json_object_set_new(o, "token", json_string(l->token));
    json_object_set_new(o, "csrf_token", json_string(l->csrf));
    json_object_set_new(o, "expires_at", cf_json_time(l->expires_at));
    json_object_set_new(o, "user", cf_user_json(&l->user, l->tenant_name));
    json_object_set_new(o, "mfa_enrolment_required", json_boolean(l->mfa_enrol));
    json_object_set_new(o, "password_change_required", json_boolean(l->pw_change));
    if (l->recovery_left >= 0)
        json_object_set_new(o, "recovery_codes_remaining", json_integer(l->recovery_left));
    cf_respond_json(r, 200, o);
}

static void login_free(struct cf_async *a)
{
    struct login *l = (struct login *)a;
    free(l->tenant);
    free(l->username);
    cf_free_secret(l->password, l->password_len);
    if (l->totp != NULL)
        cf_free_secret(l->totp, strlen(l->totp));
    if (l->recovery != NULL)
        cf_free_secret(l->recovery, strlen(l->recovery));
    if (l->device != NULL)
        cf_free_secret(l->device, strlen(l->device));
    cf_wipe(l->new_device, sizeof l->new_device);
    free(l->ip);
    free(l->ua);
    free(l->account_key);
    free(l->tenant_name);
    cf_user_clear(&l->user);
    cf_wipe(l->token, sizeof l->token);
    cf_wipe(l->csrf, sizeof l->csrf);
    free(l);
}

/* Reserves one attempt for the account and one for the address, before any check, so that a
 * burst of parallel logins cannot have more than the limits checked; or, if either has used up its
 * failures, reserves nothing and answers 429 with Retry-After. The attempts count as failures until
 * login_run gives back those of a login that did not fail. */
static bool reserved_or_respond(struct cf_req *r, struct login *l)
{
    uint64_t now = cf_now_ms(), ra = 0, rb = 0;
    bool a_ok = cf_throttle_reserve(r->app->login_account, l->account_key, l->account_key_len, now, &ra,
                                    &l->account_ticket);
    /* Refused for the account: the address is only asked, for the larger Retry-After. */
    bool b_ok = a_ok ? cf_throttle_reserve(r->app->login_ip, l->ip_key, sizeof l->ip_key, now, &rb, &l->ip_ticket)
                     : cf_throttle_allowed(r->app->login_ip, l->ip_key, sizeof l->ip_key, now, &rb);
    if (a_ok && b_ok)
        return true;
    /* Refused for the address: the account's attempt was never made. */
    cf_throttle_release(r->app->login_account, l->account_key, l->account_key_len, &l->account_ticket, now);
    char v[24];
    int n = snprintf(v, sizeof v, "%llu", (unsigned long long)(ra > rb ? ra : rb));
    cf_add_header(r, "retry-after", v, (size_t)n);
    cf_respond_status(r, CF_ERATE, "too many failed logins; try again later");
    return false;
}

void cf_h_login(struct cf_req *r)
{
    static const char *const allowed[] = {"tenant", "username", "password", "totp", "recovery_code", NULL};
    json_t *body;
    const char *tenant, *username, *password, *totp, *rc;
    size_t tl, ul, pl, ol, rl;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) ||
        !cf_json_str_or_respond(r, body, "tenant", false, &tenant, &tl) ||
        !cf_json_str_or_respond(r, body, "username", true, &username, &ul) ||
        !cf_json_str_or_respond(r, body, "password", true, &password, &pl) ||
        !cf_json_str_or_respond(r, body, "totp", false, &totp, &ol) ||
        !cf_json_str_or_respond(r, body, "recovery_code", false, &rc, &rl))
        goto out;
    if (totp != NULL && rc != NULL) {
        cf_respond_status(r, CF_EINVAL, "send either totp or recovery_code, not both");
        goto out;
    }
    if (rc != NULL && (rl > 64 || memchr(rc, '\0', rl) != NULL)) {
        cf_respond_status(r, CF_EINVAL, "recovery_code has at most 64 characters");
        goto out;
    }
    if (ul == 0 || pl == 0 || pl > CF_PASSWORD_MAX || memchr(password, '\0', pl) != NULL || ul > 256 || tl > 256 ||
        memchr(username, '\0', ul) != NULL || (tenant != NULL && memchr(tenant, '\0', tl) != NULL) ||
        (totp != NULL && (ol > 16 || memchr(totp, '\0', ol) != NULL))) {
        cf_respond_status(r, CF_EINVAL, "username and password are required");
        goto out;
    }
    const char *tname = tenant != NULL && tl > 0 ? tenant : "default";
    size_t tnl = tenant != NULL && tl > 0 ? tl : 7;
    /* The account key folds ASCII case like the username index does, and exists whether or not the
     * account does: throttling must not reveal which usernames are real. */
    size_t klen = tnl + 1 + ul;
    char *key = cf_xmalloc(klen);
    for (size_t i = 0; i < tnl; i++)
        key[i] = (char)tolower((unsigned char)tname[i]);
    key[tnl] = '\0';
    for (size_t i = 0; i < ul; i++)
        key[tnl + 1 + i] = (char)tolower((unsigned char)username[i]);
    struct login *l = cf_xcalloc(1, sizeof *l);
    l->a.run = login_run;
    l->a.reply = login_reply;
    l->a.free = login_free;
    l->tenant = cf_xstrndup(tname, tnl);
    l->username = cf_xstrndup(username, ul);
    l->password = cf_xstrndup(password, pl);
    l->password_len = pl;
    l->totp = totp != NULL ? cf_xstrndup(totp, ol) : NULL;
    l->recovery = rc != NULL ? cf_xstrndup(rc, rl) : NULL;
    l->recovery_left = -1;
    l->device = device_cookie(r);
    l->browser = cf_header(r, "sec-fetch-mode").base != NULL;
    l->ip = cf_xstrdup(r->ip);
    h2o_iovec_t ua = cf_header(r, "user-agent");
    l->ua = ua.base != NULL ? cf_text_clean(ua.base, ua.len, UA_MAX) : NULL;
    l->account_key = key;
    l->account_key_len = klen;
    (void)cf_addr_key_text(r->ip, l->ip_key); /* an unreadable address: the shared all-zero key */
    if (!reserved_or_respond(r, l)) {
        login_free(&l->a);
        goto out;
    }
    cf_async_start(r, &l->a);
out:
    json_decref(body);
}

/* ---- logout, me ------------------------------------------------------------------------------- */

struct logout {
    struct cf_async a;
    uint8_t hash[CF_SHA256_LEN];
    struct cf_event *ev;
};

static void logout_run(struct cf_async *a)
{
    struct logout *l = (struct logout *)a;
    a->st = cf_session_delete(a->app->store, l->hash);
    if (a->st == CF_OK) {
        cf_audit_submit(l->ev);
        l->ev = NULL;
    }
}

static void logout_free(struct cf_async *a)
{
    struct logout *l = (struct logout *)a;
    cf_event_free(l->ev);
    free(l);
}

static void logout_reply(struct cf_req *r, struct cf_async *a)
{
    if (a->st != CF_OK) {
        cf_respond_status(r, a->st, NULL);
        return;
    }
    static const char clear[] = CF_SESSION_COOKIE "=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0";
    cf_add_header(r, "set-cookie", clear, sizeof clear - 1);
    cf_respond_empty(r, 204);
}

void cf_h_logout(struct cf_req *r)
{
    struct logout *l = cf_xcalloc(1, sizeof *l);
    l->a.run = logout_run;
    l->a.reply = logout_reply;
    l->a.free = logout_free;
    memcpy(l->hash, r->who.session_hash, sizeof l->hash);
    l->ev = cf_event_new(&r->who.user.tenant, "auth.logout", "ok");
    cf_event_from_req(l->ev, r);
    cf_async_start(r, &l->a);
}

void cf_h_me(struct cf_req *r)
{
    struct cf_tenant t;
    enum cf_status st = cf_tenant_get(r->app->store, &r->who.user.tenant, &t);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    json_t *me = cf_user_json(&r->who.user, t.name);
    json_object_set_new(me, "scan", json_string(cf_web_scan_status())); /* web.h: the UI's banner */
    json_t *usage = cf_usage_json(r->app->store, &r->who.user.tenant, &r->who.user.id); /* quota.h */
    if (usage != NULL)
        json_object_set_new(me, "usage", usage);
    /* The account page's security summary, and what this session must do first (recovery.c). */
    json_object_set_new(me, "totp_enabled", json_boolean(r->who.user.totp_enabled));
    json_object_set_new(me, "recovery_codes_remaining", json_integer((json_int_t)r->who.user.nrecovery));
    json_object_set_new(me, "password_change_required", json_boolean((r->who.session_flags & CF_SESSION_PW_CHANGE) != 0));
    json_object_set_new(me, "mfa_enrolment_required", json_boolean((r->who.session_flags & CF_SESSION_MFA_ENROL) != 0));
    cf_respond_json(r, 200, me);
    cf_tenant_clear(&t);
}

/* ---- app passwords over HTTP Basic (auth.h, issue 22) ----------------------------------------- */

bool cf_auth_is_basic(struct cf_req *r)
{
    h2o_iovec_t a = cf_header(r, "authorization");
    return a.base != NULL && a.len >= 6 && strncasecmp(a.base, "Basic ", 6) == 0;
}

struct touch {
    struct cf_store *store;
    uint8_t hash[CF_SHA256_LEN];
    uint64_t at;
    char ip[CF_IP_MAX];
};

static void touch_write(void *arg)
{
    struct touch *t = arg;
    enum cf_status st = cf_session_touch(t->store, t->hash, t->at, t->ip);
    if (st != CF_OK && st != CF_ENOTFOUND)
        cf_log_warn("could not record the use of an app password: %s", cf_status_name(st));
    cf_wipe(t->hash, sizeof t->hash);
    free(t);
}

static bool basic_refused(struct cf_req *r, const char *msg)
{
    static const char chal[] = "Basic realm=\"Coffer\", charset=\"UTF-8\"";
    cf_add_header(r, "www-authenticate", chal, sizeof chal - 1);
    cf_respond_status(r, CF_EUNAUTH, msg);
    return false;
}

/* The user-id of a Basic credential: "username" (default tenant) or "tenant\username" or
 * "tenant/username"; the throttle's account key as a login builds it. False if malformed. */
static bool basic_user(const char *u, size_t n, char tenant[64], char user[72], char *key, size_t *klen)
{
    const char *sep = NULL;
    for (size_t i = 0; i < n; i++)
        if (u[i] == '\\' || u[i] == '/') {
            sep = u + i;
            break;
        }
    const char *tn = sep != NULL ? u : "default", *un = sep != NULL ? sep + 1 : u;
    size_t tl = sep != NULL ? (size_t)(sep - u) : 7, ul = n - (size_t)(un - u);
    if (tl >= 64 || ul >= 72 || !cf_tenant_valid_name(tn, tl) || !cf_user_valid_name(un, ul))
        return false;
    memcpy(tenant, tn, tl);
    tenant[tl] = '\0';
    memcpy(user, un, ul);
    user[ul] = '\0';
    for (size_t i = 0; i < tl; i++)
        key[i] = (char)tolower((unsigned char)tn[i]);
    key[tl] = '\0';
    for (size_t i = 0; i < ul; i++)
        key[tl + 1 + i] = (char)tolower((unsigned char)un[i]);
    *klen = tl + 1 + ul;
    return true;
}

/* Looks the app password up: the session of norm in tenant's keyed hash, if it is an app password
 * of that user. CF_ENOTFOUND for any mismatch. */
static enum cf_status basic_lookup(struct cf_req *r, const char *tenant, const char *user, const char *norm,
                                   struct cf_session *ss)
{
    struct cf_id tid, uid;
    uint8_t hash[CF_SHA256_LEN];
    memset(ss, 0, sizeof *ss);
    enum cf_status st = cf_tenant_find(r->app->store, tenant, strlen(tenant), &tid);
    if (st == CF_OK)
        st = cf_user_find(r->app->store, &tid, user, strlen(user), &uid);
    if (st == CF_OK)
        st = cf_app_password_hash(r->app->store, &tid, norm, CF_APPPW_LEN, hash);
    if (st == CF_OK)
        st = cf_session_get(r->app->store, hash, ss); /* (it zeroes ss first) */
    cf_wipe(hash, sizeof hash);
    if (st != CF_OK)
        return st;
    /* The key was the keyed hash; what remains to check is whose it is. */
    if ((ss->flags & CF_SESSION_APP_PASSWORD) == 0 || !cf_id_equal(&ss->tenant, &tid) ||
        !cf_id_equal(&ss->user, &uid)) {
        cf_session_clear(ss);
        return CF_ENOTFOUND;
    }
    return CF_OK;
}

/* Whether the request came over TLS (the connection, not what the client claims in :scheme). */
static bool over_tls(struct cf_req *r)
{
    h2o_conn_t *c = r->req->conn;
    h2o_socket_t *sock = c->callbacks->get_socket != NULL ? c->callbacks->get_socket(c) : NULL;
    return sock != NULL && sock->ssl != NULL;
}

bool cf_auth_basic_or_respond(struct cf_req *r)
{
    if (!over_tls(r))
        return basic_refused(r, "HTTP Basic credentials are accepted over TLS only");
    h2o_iovec_t sfs = cf_header(r, "sec-fetch-site");
    if (!cf_method_is_safe(r) && sfs.base != NULL && !h2o_memis(sfs.base, sfs.len, H2O_STRLIT("same-origin")) &&
        !h2o_memis(sfs.base, sfs.len, H2O_STRLIT("none"))) {
        cf_respond_status(r, CF_EDENIED, "cross-site requests cannot use HTTP Basic credentials");
        return false;
    }
    h2o_iovec_t a = cf_header(r, "authorization");
    if (!cf_auth_is_basic(r))
        return basic_refused(r, "expected Authorization: Basic base64(username:app-password)");
    uint8_t raw[512];
    size_t rl = 0;
    const char *b = a.base + 6;
    size_t bl = a.len - 6;
    while (bl > 0 && *b == ' ')
        b++, bl--;
    if (bl == 0 || bl > 600 || cf_b64_decode(b, bl, raw, sizeof raw - 1, &rl) != CF_OK) {
        cf_wipe(raw, sizeof raw);
        return basic_refused(r, "expected Authorization: Basic base64(username:app-password)");
    }
    const uint8_t *colon = memchr(raw, ':', rl);
    char tenant[64], user[72], key[64 + 72], norm[CF_APPPW_LEN + 1];
    size_t klen = 0;
    if (colon == NULL || !basic_user((const char *)raw, (size_t)(colon - raw), tenant, user, key, &klen)) {
        cf_wipe(raw, sizeof raw);
        return basic_refused(r, "expected Authorization: Basic base64(username:app-password)");
    }
    /* From here on this is a guess at a secret: one attempt for the account, one for the address,
     * reserved first, exactly as a login does (auth.c's header). */
    uint8_t ip_key[CF_ADDR_KEY_LEN];
    (void)cf_addr_key_text(r->ip, ip_key);
    struct cf_throttle_ticket at = {0}, it = {0};
    uint64_t now = cf_now_ms(), ra = 0, rb = 0;
    bool a_ok = cf_throttle_reserve(r->app->login_account, key, klen, now, &ra, &at);
    bool b_ok = a_ok ? cf_throttle_reserve(r->app->login_ip, ip_key, sizeof ip_key, now, &rb, &it)
                     : cf_throttle_allowed(r->app->login_ip, ip_key, sizeof ip_key, now, &rb);
    if (!a_ok || !b_ok) {
        cf_throttle_release(r->app->login_account, key, klen, &at, now);
        cf_wipe(raw, sizeof raw);
        char v[24];
        int vn = snprintf(v, sizeof v, "%llu", (unsigned long long)(ra > rb ? ra : rb));
        cf_add_header(r, "retry-after", v, (size_t)vn);
        cf_respond_status(r, CF_ERATE, "too many failed logins; try again later");
        return false;
    }
    bool well = cf_app_password_normalise((const char *)colon + 1, rl - (size_t)(colon + 1 - raw), norm);
    cf_wipe(raw, sizeof raw);
    struct cf_session ss = {0};
    enum cf_status st = well ? basic_lookup(r, tenant, user, norm, &ss) : CF_ENOTFOUND;
    cf_wipe(norm, sizeof norm);
    if (st == CF_OK) {
        st = cf_user_get(r->app->store, &ss.tenant, &ss.user, &r->who.user);
        if (st == CF_OK && r->who.user.status != CF_USER_ACTIVE) {
            cf_user_clear(&r->who.user);
            st = CF_EFROZEN; /* the right secret of an account that may not sign in: not a failure */
        }
    }
    if (st == CF_OK && cf_user_groups(r->app->store, &ss.tenant, &ss.user, &r->who.groups, &r->who.ngroups) != CF_OK) {
        cf_user_clear(&r->who.user);
        st = CF_EIO;
    }
    now = cf_now_ms();
    if (st == CF_ENOTFOUND) {
        /* A wrong app password (or user, or tenant): both attempts stay as failures. */
        at.held = it.held = false;
        struct cf_id tid;
        if (cf_tenant_find(r->app->store, tenant, strlen(tenant), &tid) == CF_OK) {
            struct cf_event *e = cf_event_new(&tid, "auth.login_failed", "denied");
            cf_event_from_req(e, r);
            e->actor_type = CF_ACTOR_ANONYMOUS;
            cf_event_detail(e, "username", json_string(user));
            cf_event_detail(e, "reason", json_string("wrong app password"));
            cf_audit_submit(e);
        }
    } else if (st == CF_OK) {
        cf_throttle_settle(r->app->login_account, key, klen, &at, now);
    }
    cf_throttle_release(r->app->login_account, key, klen, &at, now);
    cf_throttle_release(r->app->login_ip, ip_key, sizeof ip_key, &it, now);
    cf_wipe(key, sizeof key);
    if (st != CF_OK) {
        cf_session_clear(&ss);
        if (st == CF_ENOTFOUND || st == CF_EFROZEN)
            return basic_refused(r, "invalid username or app password");
        cf_respond_status(r, st, NULL);
        return false;
    }
    if (r->who.ngroups > CF_MAX_GROUPS)
        r->who.ngroups = CF_MAX_GROUPS;
    r->who.authenticated = true;
    r->who.kind = CF_AUTH_BEARER; /* an explicit header, like a bearer token: no CSRF token applies */
    memcpy(r->who.session_hash, ss.hash, sizeof ss.hash);
    r->who.session_id = ss.id;
    r->who.session_flags = ss.flags;
    if (now >= ss.last_used_at + CF_APPPW_TOUCH_MS) {
        struct touch *t = cf_xcalloc(1, sizeof *t);
        t->store = r->app->store;
        memcpy(t->hash, ss.hash, sizeof t->hash);
        t->at = now;
        snprintf(t->ip, sizeof t->ip, "%s", r->ip);
        cf_work_background(touch_write, t);
    }
    cf_session_clear(&ss);
    return true;
}
