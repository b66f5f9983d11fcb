/*
 * me.c: the caller's own account: login history, sessions and API tokens ("device management"),
 * password change, TOTP enrolment, alerts. Reads run on the loop; every write runs on a worker.
 *
 * A password change and a TOTP code (confirm, disable) are guesses at a secret: each reserves one
 * attempt in the account's login throttle before the check (own_attempt_or_respond), keeps it when
 * the secret was wrong and gives it back otherwise, so parallel requests get no more guesses than
 * logins do.
 *
 * Recovery (issue 21): confirming a TOTP enrolment issues ten recovery codes (auth.h), shown
 * once in its answer; POST /me/totp/recovery-codes replaces them, after the account's password
 * (re-authentication: a stolen session alone cannot mint codes); turning TOTP off removes them. A
 * session opened with a temporary password (an admin reset) may only change it here; the change
 * then lifts the restriction from that session. The enrolment answer carries the otpauth URI as a
 * QR code (SVG made here with libqrencode: the secret never leaves for a third-party service).
 */
#include <qrencode.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"

#include "auth.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "throttle.h"
#include "validate.h"
#include "totp.h"

#define TOKEN_NAME_MAX 128
#define TOKEN_DEFAULT_TTL_S (90ull * 86400)
#define TOKEN_MAX_TTL_S (365ull * 86400)

/* ---- watermark -------------------------------------------------------------------------------- */

/* What the web UI tiles over an inline preview: who is looking, from where, when (server time). */
void cf_h_me_watermark(struct cf_req *r)
{
    const struct cf_user *u = &r->who.user;
    const char *name = u->display_name != NULL && u->display_name[0] != '\0' ? u->display_name : u->username;
    cf_respond_json(r, 200, json_pack("{s:s, s:s, s:s, s:o}", "name", name, "username", u->username, "ip", r->ip, "at",
                                      cf_json_time(cf_now_ms())));
}

/* ---- history and alerts ----------------------------------------------------------------------- */

void cf_h_me_logins(struct cf_req *r)
{
    struct cf_login *l;
    size_t n;
    enum cf_status st = cf_login_list(r->app->store, &r->who.user.tenant, &r->who.user.id, &l, &n);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_pack("{s:o, s:s?, s:s?, s:s, s:b}", "at", cf_json_time(l[i].at), "ip", l[i].ip,
                                             "user_agent", l[i].user_agent, "result", l[i].result, "new_device",
                                             l[i].new_device));
        cf_login_clear(&l[i]);
    }
    free(l);
    cf_respond_json(r, 200, json_pack("{s:o}", "logins", arr));
}

void cf_h_me_alerts(struct cf_req *r)
{
    struct cf_alert *a;
    size_t n;
    enum cf_status st = cf_alert_list(r->app->store, &r->who.user.tenant, &r->who.user.id, &a, &n);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *detail = json_loads(a[i].detail != NULL ? a[i].detail : "{}", 0, NULL);
        json_array_append_new(arr, json_pack("{s:o, s:o, s:s, s:o}", "id", cf_json_id(&a[i].id), "at",
                                             cf_json_time(a[i].at), "kind", a[i].kind, "detail",
                                             detail != NULL ? detail : json_object()));
        cf_alert_clear(&a[i]);
    }
    free(a);
    cf_respond_json(r, 200, json_pack("{s:o}", "alerts", arr));
}

/* ---- sessions and tokens ---------------------------------------------------------------------- */

void cf_h_me_sessions(struct cf_req *r)
{
    struct cf_session *ss;
    size_t n;
    enum cf_status st = cf_session_list(r->app->store, &r->who.user.tenant, &r->who.user.id, &ss, &n);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    uint64_t now = cf_now_ms();
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (ss[i].expires_at > now && (ss[i].flags & CF_SESSION_APP_PASSWORD) == 0) { /* apppw.c lists those */
            bool current = cf_id_equal(&ss[i].id, &r->who.session_id);
            json_array_append_new(
                arr, json_pack("{s:o, s:s, s:s?, s:o, s:o, s:s?, s:s?, s:b}", "id", cf_json_id(&ss[i].id), "kind",
                               (ss[i].flags & CF_SESSION_API_TOKEN) != 0 ? "token" : "login", "name", ss[i].name,
                               "created_at", cf_json_time(ss[i].created_at), "expires_at",
                               cf_json_time(ss[i].expires_at), "ip", ss[i].ip, "user_agent", ss[i].user_agent,
                               "current", current));
        }
        cf_session_clear(&ss[i]);
    }
    free(ss);
    cf_respond_json(r, 200, json_pack("{s:o}", "sessions", arr));
}

struct session_delete {
    struct cf_async a;
    struct cf_id tenant, user, id;
};

static void session_delete_run(struct cf_async *a)
{
    struct session_delete *d = (struct session_delete *)a;
    struct cf_session *ss;
    size_t n;
    bool apppw = false;
    /* App passwords are revoked by DELETE /me/app-passwords/{id} (apppw.c, with its event), not here. */
    if ((a->st = cf_session_list(a->app->store, &d->tenant, &d->user, &ss, &n)) != CF_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        apppw = apppw || ((ss[i].flags & CF_SESSION_APP_PASSWORD) != 0 && cf_id_equal(&ss[i].id, &d->id));
        cf_session_clear(&ss[i]);
    }
    free(ss);
    a->st = apppw ? CF_ENOTFOUND : cf_session_delete_by_id(a->app->store, &d->tenant, &d->user, &d->id);
}

static void reply_204(struct cf_req *r, struct cf_async *a)
{
    if (a->st != CF_OK)
        cf_respond_status(r, a->st, NULL);
    else
        cf_respond_empty(r, 204);
}

void cf_h_me_session_delete(struct cf_req *r)
{
    struct cf_id id;
    if (cf_id_parse(r->params[0].base, r->params[0].len, &id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return;
    }
    struct session_delete *d = cf_xcalloc(1, sizeof *d);
    d->a.run = session_delete_run;
    d->a.reply = reply_204;
    d->tenant = r->who.user.tenant;
    d->user = r->who.user.id;
    d->id = id;
    cf_async_start(r, &d->a);
}

struct token_create {
    struct cf_async a;
    struct cf_session ss;
    char token[CF_TOKEN_TEXT_LEN + 1];
};

static void token_create_run(struct cf_async *a)
{
    struct token_create *t = (struct token_create *)a;
    a->st = cf_session_put(a->app->store, &t->ss);
}

static void token_create_reply(struct cf_req *r, struct cf_async *a)
{
    struct token_create *t = (struct token_create *)a;
    if (a->st != CF_OK) {
        cf_respond_status(r, a->st, NULL);
        return;
    }
    cf_respond_json(r, 201, json_pack("{s:o, s:s, s:s, s:o}", "id", cf_json_id(&t->ss.id), "token", t->token, "name",
                                      t->ss.name, "expires_at", cf_json_time(t->ss.expires_at)));
}

static void token_create_free(struct cf_async *a)
{
    struct token_create *t = (struct token_create *)a;
    cf_session_clear(&t->ss);
    cf_wipe(t->token, sizeof t->token);
    free(t);
}

void cf_h_me_token_create(struct cf_req *r)
{
    static const char *const allowed[] = {"name", "expires_in", NULL};
    json_t *body;
    const char *name;
    size_t nl;
    uint64_t ttl = TOKEN_DEFAULT_TTL_S;
    bool have_ttl;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "name", true, &name, &nl) ||
        !cf_json_uint_or_respond(r, body, "expires_in", false, TOKEN_MAX_TTL_S, &ttl, &have_ttl))
        goto out;
    if (nl == 0 || nl > TOKEN_NAME_MAX || memchr(name, '\0', nl) != NULL) {
        cf_respond_status(r, CF_EINVAL, "name must have 1 to 128 bytes");
        goto out;
    }
    if (!have_ttl)
        ttl = TOKEN_DEFAULT_TTL_S;
    if (ttl < 60) {
        cf_respond_status(r, CF_EINVAL, "expires_in must be at least 60 seconds");
        goto out;
    }
    struct token_create *t = cf_xcalloc(1, sizeof *t);
    t->a.run = token_create_run;
    t->a.reply = token_create_reply;
    t->a.free = token_create_free;
    cf_id_new(&t->ss.id);
    cf_auth_new_token(t->token, t->ss.hash);
    char unused[CF_TOKEN_TEXT_LEN + 1];
    cf_auth_new_token(unused, t->ss.csrf_hash); /* API tokens are bearer-only; no CSRF token is issued */
    cf_wipe(unused, sizeof unused);
    t->ss.tenant = r->who.user.tenant;
    t->ss.user = r->who.user.id;
    t->ss.flags = CF_SESSION_API_TOKEN;
    t->ss.name = cf_xstrndup(name, nl);
    t->ss.created_at = cf_now_ms();
    t->ss.expires_at = t->ss.created_at + ttl * 1000;
    t->ss.ip = cf_xstrdup(r->ip);
    cf_async_start(r, &t->a);
out:
    json_decref(body);
}

/* ---- password --------------------------------------------------------------------------------- */

struct password_change {
    struct cf_async a;
    struct cf_id tenant, user;
    uint8_t keep[CF_SHA256_LEN]; /* the session that stays */
    char *current, *next;        /* wiped */
    size_t current_len, next_len;
    char *account_key;
    size_t account_key_len;
    struct cf_throttle_ticket ticket; /* the attempt reserved in the login throttle */
    bool directory;              /* a directory user: the password is the directory's (409) */
};

struct password_update {
    const char *verified; /* the hash the current password was checked against */
    char *next;           /* the new hash */
};

static enum cf_status password_mutate(struct cf_user *u, void *ctx)
{
    struct password_update *pu = ctx;
    /* Someone changed the password since it was checked: refuse rather than overwrite. */
    if (u->pwhash == NULL || !cf_ct_streq(u->pwhash, pu->verified))
        return CF_EDENIED;
    cf_free_secret(u->pwhash, strlen(u->pwhash));
    u->pwhash = pu->next;
    pu->next = NULL;
    u->must_change_password = false;
    return CF_OK;
}

/* The session's restriction (flag) is lifted: it becomes a full session, or waits for enrolment. */
static enum cf_status session_unflag(struct cf_store *s, const uint8_t hash[CF_SHA256_LEN], unsigned flag)
{
    struct cf_session ss;
    enum cf_status st = cf_session_get(s, hash, &ss);
    if (st != CF_OK)
        return st == CF_ENOTFOUND ? CF_OK : st;
    if ((ss.flags & flag) != 0) {
        ss.flags &= ~flag;
        st = cf_session_put(s, &ss);
    }
    cf_session_clear(&ss);
    return st;
}

static void password_check(struct password_change *p)
{
    struct cf_async *a = &p->a;
    struct cf_user u;
    if ((a->st = cf_user_get(p->a.app->store, &p->tenant, &p->user, &u)) != CF_OK)
        return;
    if (u.source == CF_SOURCE_DIRECTORY) { /* issue 23: changed in the directory, never here */
        cf_user_clear(&u);
        p->directory = true;
        a->st = CF_EEXIST;
        return;
    }
    if (!cf_auth_verify_password(u.pwhash, p->current, p->current_len)) {
        p->ticket.held = false; /* a wrong password: the reserved attempt stays as the failure */
        a->st = CF_EDENIED;
    } else {
        struct password_update pu = {.verified = u.pwhash};
        if ((a->st = cf_auth_hash_password(a->app->cfg, p->next, p->next_len, &pu.next)) == CF_OK &&
            (a->st = cf_user_update(a->app->store, &p->tenant, &p->user, password_mutate, &pu, NULL)) == CF_OK)
            /* Whoever else held a session of this account (perhaps with the old password) is out. */
            if ((a->st = cf_session_delete_all(a->app->store, &p->tenant, &p->user, p->keep)) == CF_OK)
                a->st = session_unflag(a->app->store, p->keep, CF_SESSION_PW_CHANGE);
        if (pu.next != NULL)
            cf_free_secret(pu.next, strlen(pu.next));
    }
    cf_user_clear(&u);
}

static void password_run(struct cf_async *a)
{
    struct password_change *p = (struct password_change *)a;
    password_check(p);
    /* Not a wrong password (a success, or a store error): the attempt is given back. */
    cf_throttle_release(a->app->login_account, p->account_key, p->account_key_len, &p->ticket, cf_now_ms());
}

static void password_reply(struct cf_req *r, struct cf_async *a)
{
    if (((struct password_change *)a)->directory)
        cf_respond_error(r, 409, "directory_managed", "this account's password is the directory's: change it there");
    else if (a->st == CF_EDENIED)
        cf_respond_status(r, CF_EDENIED, "the current password is wrong");
    else
        reply_204(r, a);
}

static void password_free(struct cf_async *a)
{
    struct password_change *p = (struct password_change *)a;
    cf_free_secret(p->current, p->current_len);
    cf_free_secret(p->next, p->next_len);
    free(p->account_key);
    free(p);
}

/* The login-throttle key of the caller's own account ("tenant\0username", lower case). */
static char *own_account_key(struct cf_req *r, size_t *len)
{
    struct cf_tenant t;
    const char *tn = "";
    bool have = cf_tenant_get(r->app->store, &r->who.user.tenant, &t) == CF_OK;
    if (have)
        tn = t.name;
    size_t tl = strlen(tn), ul = strlen(r->who.user.username);
    char *k = cf_xmalloc(tl + 1 + ul);
    for (size_t i = 0; i < tl; i++)
        k[i] = (char)(tn[i] >= 'A' && tn[i] <= 'Z' ? tn[i] + 32 : tn[i]);
    k[tl] = '\0';
    for (size_t i = 0; i < ul; i++) {
        char c = r->who.user.username[i];
        k[tl + 1 + i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    if (have)
        cf_tenant_clear(&t);
    *len = tl + 1 + ul;
    return k;
}

/* Reserves one attempt at the caller's own account in the login throttle, before a secret of the
 * account is checked; or answers 429 with Retry-After (message says what was guessed) and frees
 * *key. */
static bool own_attempt_or_respond(struct cf_req *r, char **key, size_t kl, struct cf_throttle_ticket *ticket,
                                   const char *message)
{
    uint64_t retry;
    if (cf_throttle_reserve(r->app->login_account, *key, kl, cf_now_ms(), &retry, ticket))
        return true;
    char v[24];
    int n = snprintf(v, sizeof v, "%llu", (unsigned long long)retry);
    cf_add_header(r, "retry-after", v, (size_t)n);
    cf_respond_status(r, CF_ERATE, message);
    free(*key);
    *key = NULL;
    return false;
}

void cf_h_me_password(struct cf_req *r)
{
    static const char *const allowed[] = {"current", "new", NULL};
    json_t *body;
    const char *cur, *next;
    size_t cl, nl, kl;
    struct cf_throttle_ticket ticket;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "current", true, &cur, &cl) ||
        !cf_json_str_or_respond(r, body, "new", true, &next, &nl))
        goto out;
    if (!cf_auth_password_ok(next, nl)) {
        cf_respond_status(r, CF_EINVAL, "a new password has 8 to 1024 bytes");
        goto out;
    }
    if (cl == 0 || cl > CF_PASSWORD_MAX) {
        cf_respond_status(r, CF_EDENIED, "the current password is wrong");
        goto out;
    }
    bool forced = (r->who.session_flags & CF_SESSION_PW_CHANGE) != 0;
    if (forced && cl == nl && memcmp(cur, next, nl) == 0) {
        cf_respond_status(r, CF_EINVAL, "choose a new password, not the temporary one");
        goto out;
    }
    char *key = own_account_key(r, &kl);
    if (!own_attempt_or_respond(r, &key, kl, &ticket, "too many wrong passwords; try again later"))
        goto out;
    struct password_change *p = cf_xcalloc(1, sizeof *p);
    p->a.run = password_run;
    p->a.reply = password_reply;
    p->a.free = password_free;
    p->tenant = r->who.user.tenant;
    p->user = r->who.user.id;
    memcpy(p->keep, r->who.session_hash, sizeof p->keep);
    p->current = cf_xstrndup(cur, cl);
    p->current_len = cl;
    p->next = cf_xstrndup(next, nl);
    p->next_len = nl;
    p->account_key = key;
    p->account_key_len = kl;
    p->ticket = ticket;
    cf_async_start(r, &p->a);
out:
    json_decref(body);
}

/* ---- TOTP ------------------------------------------------------------------------------------- */

enum totp_op { TOTP_ENROL, TOTP_CONFIRM, TOTP_DISABLE };

struct totp_job {
    struct cf_async a;
    enum totp_op op;
    struct cf_id tenant, user;
    uint8_t session[CF_SHA256_LEN];
    char code[8];
    char *account;                 /* "username@tenant" for the URI */
    uint8_t secret[CF_TOTP_SECRET_LEN];
    bool require_mfa;
    char *account_key;             /* confirm, disable: the login-throttle key, and the attempt */
    size_t account_key_len;        /* reserved there before the code is checked */
    struct cf_throttle_ticket ticket;
    char *codes[CF_RECOVERY_CODES]; /* confirm: the recovery codes issued (as shown); wiped */
    size_t ncodes;
};

/* The user's recovery codes become stored (a TOTP confirmation or a regeneration), if TOTP is on. */
static enum cf_status codes_mutate(struct cf_user *u, void *ctx)
{
    if (!u->totp_enabled)
        return CF_EEXIST;
    cf_recovery_replace(u, ctx, CF_RECOVERY_CODES);
    return CF_OK;
}

/* New recovery codes for a user: generated, stored (replacing the old ones), and on success left in
 * codes (as shown) for the answer. */
static enum cf_status codes_issue(struct cf_async *a, const struct cf_id *tenant, const struct cf_id *user,
                                  char *codes[CF_RECOVERY_CODES])
{
    char *stored[CF_RECOVERY_CODES] = {0};
    enum cf_status st = cf_recovery_generate(a->app->cfg, codes, stored);
    if (st != CF_OK)
        return st;
    st = cf_user_update(a->app->store, tenant, user, codes_mutate, stored, NULL);
    for (size_t i = 0; i < CF_RECOVERY_CODES; i++) {
        if (stored[i] != NULL)
            cf_free_secret(stored[i], strlen(stored[i]));
        if (st != CF_OK) {
            cf_free_secret(codes[i], strlen(codes[i]));
            codes[i] = NULL;
        }
    }
    return st;
}

/* An alert to the user about a change to their second factor, with where it came from. */
static void factor_alert(struct cf_async *a, const struct cf_id *tenant, const struct cf_id *user, const char *kind,
                         const char *ip, const char *ua)
{
    json_t *d = json_pack("{s:s, s:s?}", "ip", ip, "user_agent", ua);
    char *txt = json_dumps(d, JSON_COMPACT);
    if (cf_alert_add(a->app->store, tenant, user, kind, txt) != CF_OK)
        cf_log_warn("could not store an alert");
    free(txt);
    json_decref(d);
}

/* The otpauth URI as a QR code: an SVG image (4-module quiet zone, one path of 1×1 squares), or
 * NULL if it cannot be encoded. */
static char *qr_svg(const char *uri)
{
    QRcode *q = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (q == NULL)
        return NULL;
    int w = q->width, size = w + 8;
    /* At most "M180 180h1v1h-1z" (16 bytes) per module: version 40 is 177 modules wide. */
    size_t cap = 256 + (size_t)w * (size_t)w * 24, n = 0;
    char *svg = cf_xmalloc(cap);
    n += (size_t)snprintf(svg + n, cap - n,
                          "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                          "shape-rendering=\"crispEdges\"><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
                          "<path fill=\"#000\" d=\"",
                          size, size, size, size);
    for (int y = 0; y < w; y++)
        for (int x = 0; x < w; x++)
            if ((q->data[y * w + x] & 1) != 0)
                n += (size_t)snprintf(svg + n, cap - n, "M%d %dh1v1h-1z", x + 4, y + 4);
    snprintf(svg + n, cap - n, "\"/></svg>");
    cf_wipe(q->data, (size_t)w * (size_t)w);
    QRcode_free(q);
    return svg;
}

/* The TOTP operations, each inside the store's read-modify-write of the user. */
static enum cf_status totp_mutate(struct cf_user *u, void *ctx)
{
    struct totp_job *t = ctx;
    uint64_t step;
    switch (t->op) {
    case TOTP_ENROL:
        if (u->totp_enabled)
            return CF_EEXIST;
        cf_random(t->secret, sizeof t->secret);
        memcpy(u->totp_pending_secret, t->secret, sizeof t->secret);
        u->totp_pending = true;
        return CF_OK;
    case TOTP_CONFIRM:
        if (!u->totp_pending)
            return CF_EEXIST;
        if (!cf_totp_verify(u->totp_pending_secret, sizeof u->totp_pending_secret, t->code, strlen(t->code),
                            cf_now_ms() / 1000, 0, &step))
            return CF_EINVAL;
        memcpy(u->totp_secret, u->totp_pending_secret, sizeof u->totp_secret);
        cf_wipe(u->totp_pending_secret, sizeof u->totp_pending_secret);
        u->totp_pending = false;
        u->totp_enabled = true;
        u->totp_last_step = step;
        u->must_enrol_totp = false;
        return CF_OK;
    case TOTP_DISABLE:
        if (t->require_mfa)
            return CF_EDENIED;
        if (!u->totp_enabled)
            return CF_EEXIST;
        if (!cf_totp_verify(u->totp_secret, sizeof u->totp_secret, t->code, strlen(t->code), cf_now_ms() / 1000,
                            u->totp_last_step, &step))
            return CF_EINVAL;
        cf_wipe(u->totp_secret, sizeof u->totp_secret);
        u->totp_enabled = false;
        u->totp_last_step = step;
        cf_recovery_replace(u, NULL, 0); /* they stood in for this second factor */
        return CF_OK;
    }
    return CF_EINVAL;
}

static void totp_run(struct cf_async *a)
{
    struct totp_job *t = (struct totp_job *)a;
    a->st = cf_user_update(a->app->store, &t->tenant, &t->user, totp_mutate, t, NULL);
    if (t->account_key != NULL) {
        /* A wrong code keeps its reserved attempt as the failure; anything else gives it back. */
        if (a->st == CF_EINVAL)
            t->ticket.held = false;
        cf_throttle_release(a->app->login_account, t->account_key, t->account_key_len, &t->ticket, cf_now_ms());
    }
    if (a->st != CF_OK || t->op != TOTP_CONFIRM)
        return;
    /* Ten recovery codes, shown once in the answer. TOTP is on already: should they fail, the
     * answer has none and the user makes them with POST /me/totp/recovery-codes. */
    if (codes_issue(a, &t->tenant, &t->user, t->codes) == CF_OK)
        t->ncodes = CF_RECOVERY_CODES;
    else
        cf_log_warn("could not issue recovery codes at a TOTP enrolment");
    /* A session that was waiting for enrolment is now a full session. */
    struct cf_session ss;
    if (cf_session_get(a->app->store, t->session, &ss) == CF_OK) {
        if ((ss.flags & CF_SESSION_MFA_ENROL) != 0) {
            ss.flags &= ~(unsigned)CF_SESSION_MFA_ENROL;
            a->st = cf_session_put(a->app->store, &ss);
        }
        cf_session_clear(&ss);
    }
}

static void totp_reply(struct cf_req *r, struct cf_async *a)
{
    struct totp_job *t = (struct totp_job *)a;
    switch (a->st) {
    case CF_OK:
        break;
    case CF_EEXIST:
        cf_respond_status(r, CF_EEXIST,
                          t->op == TOTP_ENROL    ? "TOTP is already enabled; disable it first"
                          : t->op == TOTP_CONFIRM ? "no TOTP enrolment is in progress"
                                                  : "TOTP is not enabled");
        return;
    case CF_EINVAL:
        cf_respond_status(r, CF_EINVAL, "the code does not match");
        return;
    case CF_EDENIED:
        cf_respond_status(r, CF_EDENIED, "your tenant requires a second factor");
        return;
    default:
        cf_respond_status(r, a->st, NULL);
        return;
    }
    if (t->op == TOTP_CONFIRM) {
        json_t *arr = json_array();
        for (size_t i = 0; i < t->ncodes; i++)
            json_array_append_new(arr, json_string(t->codes[i]));
        cf_respond_json(r, 200, json_pack("{s:o}", "recovery_codes", arr));
        return;
    }
    if (t->op != TOTP_ENROL) {
        cf_respond_empty(r, 204);
        return;
    }
    char b32[40];
    cf_base32_encode(t->secret, sizeof t->secret, b32);
    char *uri = cf_totp_uri("Coffer", t->account, t->secret, sizeof t->secret);
    char *svg = qr_svg(uri);
    cf_respond_json(r, 200, json_pack("{s:s, s:s, s:s?}", "secret", b32, "otpauth_uri", uri, "qr_svg", svg));
    cf_wipe(b32, sizeof b32);
    cf_free_secret(uri, strlen(uri));
    if (svg != NULL)
        cf_free_secret(svg, strlen(svg));
}

static void totp_free(struct cf_async *a)
{
    struct totp_job *t = (struct totp_job *)a;
    free(t->account);
    free(t->account_key);
    for (size_t i = 0; i < CF_RECOVERY_CODES; i++)
        if (t->codes[i] != NULL)
            cf_free_secret(t->codes[i], strlen(t->codes[i]));
    cf_wipe(t, sizeof *t);
    free(t);
}

static void totp_start(struct cf_req *r, enum totp_op op)
{
    struct cf_tenant tenant;
    const char *code = NULL;
    size_t cl = 0, kl = 0;
    json_t *body = NULL;
    char *key = NULL;
    struct cf_throttle_ticket ticket = {0};
    if (op != TOTP_ENROL) {
        static const char *const allowed[] = {"code", NULL};
        if (!cf_json_body_or_respond(r, &body))
            return;
        if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "code", true, &code, &cl))
            goto out;
        if (cl != 6) {
            cf_respond_status(r, CF_EINVAL, "the code does not match");
            goto out;
        }
    }
    enum cf_status st = cf_tenant_get(r->app->store, &r->who.user.tenant, &tenant);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        goto out;
    }
    if (code != NULL) {
        key = own_account_key(r, &kl);
        if (!own_attempt_or_respond(r, &key, kl, &ticket, "too many failed attempts; try again later")) {
            cf_tenant_clear(&tenant);
            goto out;
        }
    }
    struct totp_job *t = cf_xcalloc(1, sizeof *t);
    t->a.run = totp_run;
    t->a.reply = totp_reply;
    t->a.free = totp_free;
    t->op = op;
    t->tenant = r->who.user.tenant;
    t->user = r->who.user.id;
    memcpy(t->session, r->who.session_hash, sizeof t->session);
    if (code != NULL)
        memcpy(t->code, code, cl);
    t->account = cf_xasprintf("%s@%s", r->who.user.username, tenant.name);
    t->require_mfa = tenant.policy.require_mfa;
    t->account_key = key;
    t->account_key_len = kl;
    t->ticket = ticket;
    cf_tenant_clear(&tenant);
    cf_async_start(r, &t->a);
out:
    json_decref(body);
}

void cf_h_me_totp_enrol(struct cf_req *r)
{
    totp_start(r, TOTP_ENROL);
}

void cf_h_me_totp_confirm(struct cf_req *r)
{
    totp_start(r, TOTP_CONFIRM);
}

void cf_h_me_totp_disable(struct cf_req *r)
{
    totp_start(r, TOTP_DISABLE);
}

/* ---- recovery codes --------------------------------------------------------------------------- */

struct codes_job {
    struct cf_async a;
    struct cf_id tenant, user;
    char *password; /* wiped */
    size_t password_len;
    char *account_key;
    size_t account_key_len;
    struct cf_throttle_ticket ticket;
    char *ip, *ua;
    char *codes[CF_RECOVERY_CODES]; /* wiped */
    struct cf_event *ev;            /* auth.recovery_codes_created */
};

static void codes_check(struct codes_job *j)
{
    struct cf_async *a = &j->a;
    struct cf_user u;
    if ((a->st = cf_user_get(a->app->store, &j->tenant, &j->user, &u)) != CF_OK)
        return;
    enum cf_status pst = cf_auth_user_password(a->app->cfg, &u, j->password, j->password_len); /* issue 23 */
    bool ok = pst == CF_OK;
    bool totp = u.totp_enabled;
    cf_user_clear(&u);
    if (pst == CF_EUNAVAIL) {
        a->st = CF_EUNAVAIL; /* the directory did not answer: no verdict, the attempt is given back */
        return;
    }
    if (!ok) {
        j->ticket.held = false; /* a wrong password: the reserved attempt stays as the failure */
        a->st = CF_EDENIED;
        return;
    }
    if (!totp) {
        a->st = CF_EEXIST;
        return;
    }
    if ((a->st = codes_issue(a, &j->tenant, &j->user, j->codes)) != CF_OK)
        return;
    factor_alert(a, &j->tenant, &j->user, "alert.recovery_codes_created", j->ip, j->ua);
    cf_event_detail(j->ev, "count", json_integer(CF_RECOVERY_CODES));
    a->st = cf_audit_submit_wait(j->ev, NULL);
    j->ev = NULL;
}

static void codes_run(struct cf_async *a)
{
    struct codes_job *j = (struct codes_job *)a;
    codes_check(j);
    cf_throttle_release(a->app->login_account, j->account_key, j->account_key_len, &j->ticket, cf_now_ms());
}

static void codes_reply(struct cf_req *r, struct cf_async *a)
{
    struct codes_job *j = (struct codes_job *)a;
    switch (a->st) {
    case CF_OK:
        break;
    case CF_EDENIED:
        cf_respond_status(r, CF_EDENIED, "the password is wrong");
        return;
    case CF_EEXIST:
        cf_respond_status(r, CF_EEXIST, "turn on TOTP first: recovery codes stand in for it");
        return;
    default:
        cf_respond_status(r, a->st, NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < CF_RECOVERY_CODES; i++)
        json_array_append_new(arr, json_string(j->codes[i]));
    cf_respond_json(r, 201, json_pack("{s:o}", "codes", arr));
}

static void codes_free(struct cf_async *a)
{
    struct codes_job *j = (struct codes_job *)a;
    cf_free_secret(j->password, j->password_len);
    free(j->account_key);
    free(j->ip);
    free(j->ua);
    for (size_t i = 0; i < CF_RECOVERY_CODES; i++)
        if (j->codes[i] != NULL)
            cf_free_secret(j->codes[i], strlen(j->codes[i]));
    cf_event_free(j->ev);
    free(j);
}

void cf_h_me_recovery_codes(struct cf_req *r)
{
    static const char *const allowed[] = {"password", NULL};
    json_t *body;
    const char *pw;
    size_t pl, kl;
    struct cf_throttle_ticket ticket;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "password", true, &pw, &pl))
        goto out;
    if (pl == 0 || pl > CF_PASSWORD_MAX || memchr(pw, '\0', pl) != NULL) {
        cf_respond_status(r, CF_EDENIED, "the password is wrong");
        goto out;
    }
    char *key = own_account_key(r, &kl);
    if (!own_attempt_or_respond(r, &key, kl, &ticket, "too many wrong passwords; try again later"))
        goto out;
    struct codes_job *j = cf_xcalloc(1, sizeof *j);
    j->a.run = codes_run;
    j->a.reply = codes_reply;
    j->a.free = codes_free;
    j->tenant = r->who.user.tenant;
    j->user = r->who.user.id;
    j->password = cf_xstrndup(pw, pl);
    j->password_len = pl;
    j->account_key = key;
    j->account_key_len = kl;
    j->ticket = ticket;
    j->ip = cf_xstrdup(r->ip);
    h2o_iovec_t ua = cf_header(r, "user-agent");
    j->ua = ua.base != NULL ? cf_text_clean(ua.base, ua.len, 512) : NULL;
    j->ev = cf_event_new(&r->who.user.tenant, "auth.recovery_codes_created", "ok");
    cf_event_from_req(j->ev, r);
    cf_async_start(r, &j->a);
out:
    json_decref(body);
}
