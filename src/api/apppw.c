/*
 * apppw.c: app passwords (issue 22): per-device passwords for apps that cannot do TOTP (WebDAV
 * clients), created, listed and revoked by their owner under /api/v1/me/app-passwords. Shown once
 * at creation; the store keeps only a keyed hash (storage.h, cf_app_password_hash). They are
 * checked by auth.c (cf_auth_basic_or_respond) on routes flagged CF_ROUTE_BASIC.
 *
 * Creation is alerted to the user (an app password is as good as the account for its routes) and,
 * like a revocation, is an event (app_password.create, app_password.revoke) with its id and name.
 * They end with the account's other sessions: password change, admin reset, freeze, offboard.
 */
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "validate.h"

#define APPPW_NAME_MAX 64 /* characters */

/* Characters (code points) of valid UTF-8. */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/* ---- create ----------------------------------------------------------------------------------- */

struct apppw_create {
    struct cf_async a;
    struct cf_session ss;
    char text[CF_APPPW_TEXT_LEN + 1]; /* wiped */
    struct cf_event *ev;
};

static void apppw_create_run(struct cf_async *a)
{
    struct apppw_create *c = (struct apppw_create *)a;
    if ((a->st = cf_app_password_put(a->app->store, &c->ss, CF_APPPW_MAX)) != CF_OK)
        return;
    json_t *d = json_pack("{s:s, s:s, s:s?}", "name", c->ss.name, "ip", c->ss.ip, "user_agent", c->ss.user_agent);
    char *txt = json_dumps(d, JSON_COMPACT);
    if (cf_alert_add(a->app->store, &c->ss.tenant, &c->ss.user, "alert.app_password_created", txt) != CF_OK)
        cf_log_warn("could not store an app-password alert");
    free(txt);
    json_decref(d);
    cf_event_detail(c->ev, "app_password", cf_json_id(&c->ss.id));
    cf_event_detail(c->ev, "name", json_string(c->ss.name));
    cf_audit_submit(c->ev);
    c->ev = NULL;
}

static void apppw_create_reply(struct cf_req *r, struct cf_async *a)
{
    struct apppw_create *c = (struct apppw_create *)a;
    if (a->st == CF_EEXIST) {
        cf_respond_error(r, 409, "too_many_app_passwords", "at most 20 app passwords: revoke one first");
        return;
    }
    if (a->st != CF_OK) {
        cf_respond_status(r, a->st, NULL);
        return;
    }
    cf_respond_json(r, 201, json_pack("{s:o, s:s, s:s, s:o}", "id", cf_json_id(&c->ss.id), "name", c->ss.name,
                                      "password", c->text, "created_at", cf_json_time(c->ss.created_at)));
}

static void apppw_create_free(struct cf_async *a)
{
    struct apppw_create *c = (struct apppw_create *)a;
    cf_session_clear(&c->ss);
    cf_wipe(c->text, sizeof c->text);
    cf_event_free(c->ev);
    free(c);
}

void cf_h_me_apppw_create(struct cf_req *r)
{
    static const char *const allowed[] = {"name", NULL};
    json_t *body;
    const char *name;
    size_t nl;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "name", true, &name, &nl))
        goto out;
    if (cf_name_check(name, nl) != NULL || utf8_chars(name, nl) > APPPW_NAME_MAX) {
        cf_respond_status(r, CF_EINVAL, "name: 1 to 64 characters of text without / or control characters");
        goto out;
    }
    struct apppw_create *c = cf_xcalloc(1, sizeof *c);
    c->a.run = apppw_create_run;
    c->a.reply = apppw_create_reply;
    c->a.free = apppw_create_free;
    char norm[CF_APPPW_LEN + 1];
    cf_app_password_generate(c->text, norm);
    enum cf_status st = cf_app_password_hash(r->app->store, &r->who.user.tenant, norm, CF_APPPW_LEN, c->ss.hash);
    cf_wipe(norm, sizeof norm);
    if (st != CF_OK) {
        apppw_create_free(&c->a);
        cf_respond_status(r, st, NULL);
        goto out;
    }
    char unused[CF_TOKEN_TEXT_LEN + 1];
    cf_auth_new_token(unused, c->ss.csrf_hash); /* Basic only: no CSRF token is ever issued */
    cf_wipe(unused, sizeof unused);
    cf_id_new(&c->ss.id);
    c->ss.tenant = r->who.user.tenant;
    c->ss.user = r->who.user.id;
    c->ss.flags = CF_SESSION_APP_PASSWORD;
    c->ss.name = cf_xstrndup(name, nl);
    c->ss.created_at = cf_now_ms();
    c->ss.expires_at = UINT64_MAX; /* until revoked, or the account's sessions end */
    c->ss.ip = cf_xstrdup(r->ip);
    h2o_iovec_t ua = cf_header(r, "user-agent");
    c->ss.user_agent = ua.base != NULL ? cf_text_clean(ua.base, ua.len, 512) : NULL;
    c->ev = cf_event_new(&r->who.user.tenant, "app_password.create", "ok");
    cf_event_from_req(c->ev, r);
    cf_async_start(r, &c->a);
out:
    json_decref(body);
}

/* ---- list ------------------------------------------------------------------------------------- */

void cf_h_me_apppw_list(struct cf_req *r)
{
    struct cf_session *ss;
    size_t n;
    enum cf_status st = cf_session_list(r->app->store, &r->who.user.tenant, &r->who.user.id, &ss, &n);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if ((ss[i].flags & CF_SESSION_APP_PASSWORD) != 0) {
            json_t *used = ss[i].last_used_at != 0 ? cf_json_time(ss[i].last_used_at) : json_null();
            json_array_append_new(arr, json_pack("{s:o, s:s?, s:o, s:o, s:s?}", "id", cf_json_id(&ss[i].id), "name",
                                                 ss[i].name, "created_at", cf_json_time(ss[i].created_at),
                                                 "last_used_at", used, "last_used_ip", ss[i].last_used_ip));
        }
        cf_session_clear(&ss[i]);
    }
    free(ss);
    cf_respond_json(r, 200, json_pack("{s:o}", "items", arr));
}

/* ---- revoke ----------------------------------------------------------------------------------- */

struct apppw_revoke {
    struct cf_async a;
    struct cf_id tenant, user, id;
    struct cf_event *ev;
};

static void apppw_revoke_run(struct cf_async *a)
{
    struct apppw_revoke *d = (struct apppw_revoke *)a;
    struct cf_session *ss;
    size_t n;
    /* Only the caller's own app passwords: a login session's or a token's id is not found here. */
    if ((a->st = cf_session_list(a->app->store, &d->tenant, &d->user, &ss, &n)) != CF_OK)
        return;
    char *name = NULL;
    bool mine = false;
    for (size_t i = 0; i < n; i++) {
        if (!mine && (ss[i].flags & CF_SESSION_APP_PASSWORD) != 0 && cf_id_equal(&ss[i].id, &d->id)) {
            mine = true;
            name = ss[i].name != NULL ? cf_xstrdup(ss[i].name) : NULL;
        }
        cf_session_clear(&ss[i]);
    }
    free(ss);
    a->st = mine ? cf_session_delete_by_id(a->app->store, &d->tenant, &d->user, &d->id) : CF_ENOTFOUND;
    if (a->st == CF_OK) {
        cf_event_detail(d->ev, "app_password", cf_json_id(&d->id));
        cf_event_detail(d->ev, "name", name != NULL ? json_string(name) : json_null());
        cf_audit_submit(d->ev);
        d->ev = NULL;
    }
    free(name);
}

static void apppw_revoke_reply(struct cf_req *r, struct cf_async *a)
{
    if (a->st != CF_OK)
        cf_respond_status(r, a->st, NULL);
    else
        cf_respond_empty(r, 204);
}

static void apppw_revoke_free(struct cf_async *a)
{
    struct apppw_revoke *d = (struct apppw_revoke *)a;
    cf_event_free(d->ev);
    free(d);
}

void cf_h_me_apppw_revoke(struct cf_req *r)
{
    struct cf_id id;
    if (cf_id_parse(r->params[0].base, r->params[0].len, &id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return;
    }
    struct apppw_revoke *d = cf_xcalloc(1, sizeof *d);
    d->a.run = apppw_revoke_run;
    d->a.reply = apppw_revoke_reply;
    d->a.free = apppw_revoke_free;
    d->tenant = r->who.user.tenant;
    d->user = r->who.user.id;
    d->id = id;
    d->ev = cf_event_new(&r->who.user.tenant, "app_password.revoke", "ok");
    cf_event_from_req(d->ev, r);
    cf_async_start(r, &d->a);
}
