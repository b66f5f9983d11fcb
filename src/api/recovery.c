/*
 * recovery.c: the admin reset of an account (issue 21; recovery codes themselves are credentials
 * like passwords and live in auth.c):
 *
 *   POST /api/v1/admin/users/{id}/reset {"password"?: true, "mfa"?: true}
 *     → 200 {"temporary_password"?, "password_change_required", "mfa_enrolment_required"}
 *
 * A password reset stores the hash of a random 20-character temporary password (shown once, in the
 * answer) and marks the user: their next login gets a session that may only change the password
 * (CF_SESSION_PW_CHANGE). An MFA reset removes the TOTP secret, any pending enrolment and every
 * recovery code, and marks the user: their next login gets a session that must enrol TOTP first
 * (CF_SESSION_MFA_ENROL), whatever the tenant policy. Either way every session and API token of the
 * user ends, the event user.reset says which parts were reset, and the user gets the alert
 * alert.account_reset. Same tenant only (404 otherwise, like ids that do not exist), not on
 * offboarded users (409), never on oneself (400: another admin must).
 */
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "validate.h"

#define TEMP_PASSWORD_LEN 20

/* ---- admin reset ------------------------------------------------------------------------------ */

struct reset_job {
    struct cf_async a;
    struct cf_id tenant, user;
    bool password, mfa;
    char temp[TEMP_PASSWORD_LEN + 1]; /* wiped */
    char *pwhash;                     /* the temporary password's hash; wiped */
    char *username;                   /* of the user reset, for the event */
    char *by;                         /* the admin's username, for the alert */
    char *ip, *ua;
    struct cf_event *ev;              /* user.reset */
    const char *why;
    bool directory_managed;           /* a password reset of a directory user (issue 23) → 409 */
};

static enum cf_status reset_mutate(struct cf_user *u, void *ctx)
{
    struct reset_job *j = ctx;
    if (u->status == CF_USER_OFFBOARDED) {
        j->why = "this user was offboarded";
        return CF_EEXIST;
    }
    if (j->password && u->source == CF_SOURCE_DIRECTORY) {
        j->why = "the directory checks this user's password: reset it there (mfa alone may be reset here)";
        j->directory_managed = true;
        return CF_EEXIST;
    }
    if (j->password) {
        if (u->pwhash != NULL)
            cf_free_secret(u->pwhash, strlen(u->pwhash));
        u->pwhash = j->pwhash;
        j->pwhash = NULL;
        u->must_change_password = true;
    }
    if (j->mfa) {
        cf_wipe(u->totp_secret, sizeof u->totp_secret);
        cf_wipe(u->totp_pending_secret, sizeof u->totp_pending_secret);
        u->totp_enabled = false;
        u->totp_pending = false;
        u->must_enrol_totp = true;
        cf_recovery_replace(u, NULL, 0);
    }
    free(j->username);
    j->username = cf_xstrdup(u->username);
    return CF_OK;
}

static void reset_run(struct cf_async *a)
{
    struct reset_job *j = (struct reset_job *)a;
    if (j->password) {
        cf_auth_random_password(j->temp, sizeof j->temp);
        if ((a->st = cf_auth_hash_password(a->app->cfg, j->temp, strlen(j->temp), &j->pwhash)) != CF_OK)
            return;
    }
    if ((a->st = cf_user_update(a->app->store, &j->tenant, &j->user, reset_mutate, j, NULL)) != CF_OK)
        return;
    /* Whoever held a session of this account (perhaps the one who took the phone) is out, and so is
     * every API token and app password (sessions too, storage.h: one deletion ends them all). */
    if ((a->st = cf_session_delete_all(a->app->store, &j->tenant, &j->user, NULL)) != CF_OK)
        return;
    json_t *d = json_pack("{s:b, s:b, s:s, s:s, s:s?}", "password", j->password, "mfa", j->mfa, "by", j->by, "ip",
                          j->ip, "user_agent", j->ua);
    char *txt = json_dumps(d, JSON_COMPACT);
    if (cf_alert_add(a->app->store, &j->tenant, &j->user, "alert.account_reset", txt) != CF_OK)
        cf_log_warn("could not store an account-reset alert");
    free(txt);
    json_decref(d);
    cf_event_detail(j->ev, "user", cf_json_id(&j->user));
    cf_event_detail(j->ev, "username", json_string(j->username));
    cf_event_detail(j->ev, "password", json_boolean(j->password));
    cf_event_detail(j->ev, "mfa", json_boolean(j->mfa));
    a->st = cf_audit_submit_wait(j->ev, NULL);
    j->ev = NULL;
}

static void reset_reply(struct cf_req *r, struct cf_async *a)
{
    struct reset_job *j = (struct reset_job *)a;
    if (j->directory_managed) {
        cf_respond_error(r, 409, "directory_managed", j->why);
        return;
    }
    if (a->st != CF_OK) {
        cf_respond_status(r, a->st, a->st == CF_EEXIST ? j->why : NULL);
        return;
    }
    json_t *o = json_object();
    if (j->password)
        json_object_set_new(o, "temporary_password", json_string(j->temp));
    json_object_set_new(o, "password_change_required", json_boolean(j->password));
    json_object_set_new(o, "mfa_enrolment_required", json_boolean(j->mfa));
    cf_respond_json(r, 200, o);
}

static void reset_free(struct cf_async *a)
{
    struct reset_job *j = (struct reset_job *)a;
    if (j->pwhash != NULL)
        cf_free_secret(j->pwhash, strlen(j->pwhash));
    cf_wipe(j->temp, sizeof j->temp);
    free(j->username);
    free(j->by);
    free(j->ip);
    free(j->ua);
    cf_event_free(j->ev);
    free(j);
}

void cf_h_admin_user_reset(struct cf_req *r)
{
    static const char *const allowed[] = {"password", "mfa", NULL};
    json_t *body;
    bool password = false, mfa = false, hp, hm;
    struct cf_id id;
    if (cf_id_parse(r->params[0].base, r->params[0].len, &id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return;
    }
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_bool_or_respond(r, body, "password", &password, &hp) ||
        !cf_json_bool_or_respond(r, body, "mfa", &mfa, &hm))
        goto out;
    if (!password && !mfa) {
        cf_respond_status(r, CF_EINVAL, "say what to reset: \"password\": true and/or \"mfa\": true");
        goto out;
    }
    if (cf_id_equal(&id, &r->who.user.id)) {
        cf_respond_status(r, CF_EINVAL, "admins cannot reset their own account this way (another admin must)");
        goto out;
    }
    struct reset_job *j = cf_xcalloc(1, sizeof *j);
    j->a.run = reset_run;
    j->a.reply = reset_reply;
    j->a.free = reset_free;
    j->tenant = r->who.user.tenant;
    j->user = id;
    j->password = password;
    j->mfa = mfa;
    j->by = cf_xstrdup(r->who.user.username);
    j->ip = cf_xstrdup(r->ip);
    h2o_iovec_t ua = cf_header(r, "user-agent");
    j->ua = ua.base != NULL ? cf_text_clean(ua.base, ua.len, 512) : NULL;
    j->ev = cf_event_new(&r->who.user.tenant, "user.reset", "ok");
    cf_event_from_req(j->ev, r);
    cf_async_start(r, &j->a);
out:
    json_decref(body);
}
