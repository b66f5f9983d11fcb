/*
 * admin.c: tenant administration (admins only, own tenant only): users, groups, policy, and
 * offboarding. Ids from another tenant are simply not found: every lookup is scoped to the
 * caller's tenant by the store's keys.
 */
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "audit.h"
#include "auth.h"
#include "dept.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "scan.h"
#include "share.h"
#include "validate.h"
#include "webhook.h"

#define GROUP_NAME_MAX 128
#define GROUP_MEMBERS_MAX 10000
#define DISPLAY_NAME_MAX 255

static bool display_name_ok(const char *s, size_t n)
{
    return n > 0 && n <= DISPLAY_NAME_MAX && cf_utf8_valid(s, n) && cf_name_check(s, n) == NULL;
}

static bool role_parse(const char *s, size_t n, enum cf_role *out)
{
    if (n == 6 && memcmp(s, "member", 6) == 0)
        *out = CF_ROLE_MEMBER;
    else if (n == 5 && memcmp(s, "admin", 5) == 0)
        *out = CF_ROLE_ADMIN;
    else if (n == 7 && memcmp(s, "auditor", 7) == 0)
        *out = CF_ROLE_AUDITOR;
    else
        return false;
    return true;
}

/* The caller's tenant name, for user JSON ("" if it cannot be read). */
static char *tenant_name(struct cf_req *r)
{
    struct cf_tenant t;
    if (cf_tenant_get(r->app->store, &r->who.user.tenant, &t) != CF_OK)
        return cf_xstrdup("");
    char *n = t.name;
    t.name = NULL;
    cf_tenant_clear(&t);
    return n;
}

static json_t *admin_user_json(const struct cf_user *u, const char *tname)
{
    json_t *o = cf_user_json(u, tname);
    json_object_set_new(o, "totp_enabled", json_boolean(u->totp_enabled));
    return o;
}

/* ---- users ------------------------------------------------------------------------------------ */

struct user_job {
    struct cf_async a;
    struct cf_user u;      /* create: the new user; patch/offboard: the result */
    char *password;        /* create; wiped */
    size_t password_len;
    char *tname;
    /* patch */
    struct cf_id self;
    bool set_status, set_role, set_display;
    bool restore_links;    /* unfreezing: the links freezing suspended work again (explicit only) */
    enum cf_user_status status;
    enum cf_role role;
    char *display;
    /* offboard */
    struct cf_id transfer_to;
    bool archive;          /* the private space is archived for retention instead of handed over */
    bool keep_links;       /* the user's links go to transfer_to instead of being revoked */
    bool freezing;         /* the patch freezes an active user */
    bool directory_managed; /* refused: the directory owns the field (issue 23) → 409 directory_managed */
    const char *why;       /* message for a 400/409 */
    struct cf_event *ev;   /* user.create, user.update or user.offboard */
};

/* Completes and writes the job's event (worker thread) once the change is stored. */
static enum cf_status user_event(struct user_job *j)
{
    cf_event_detail(j->ev, "user", cf_json_id(&j->u.id));
    cf_event_detail(j->ev, "username", json_string(j->u.username));
    cf_event_detail(j->ev, "role", json_string(cf_role_name(j->u.role)));
    cf_event_detail(j->ev, "status", json_string(cf_user_status_name(j->u.status)));
    enum cf_status st = cf_audit_submit_wait(j->ev, NULL);
    j->ev = NULL;
    return st;
}

static void user_job_free(struct cf_async *a)
{
    struct user_job *j = (struct user_job *)a;
    cf_user_clear(&j->u);
    if (j->password != NULL)
        cf_free_secret(j->password, j->password_len);
    free(j->tname);
    free(j->display);
    cf_event_free(j->ev);
    free(j);
}

static void user_job_reply(struct cf_req *r, struct cf_async *a)
{
    struct user_job *j = (struct user_job *)a;
    switch (a->st) {
    case CF_OK:
        cf_respond_json(r, j->password != NULL ? 201 : 200, admin_user_json(&j->u, j->tname));
        return;
    case CF_EEXIST:
        if (j->directory_managed)
            cf_respond_error(r, 409, "directory_managed", j->why);
        else
            cf_respond_status(r, CF_EEXIST, j->why != NULL ? j->why : "this username is taken in the tenant");
        return;
    default:
        cf_respond_status(r, a->st, j->why);
        return;
    }
}

static void user_create_run(struct cf_async *a)
{
    struct user_job *j = (struct user_job *)a;
    if ((a->st = cf_auth_hash_password(a->app->cfg, j->password, j->password_len, &j->u.pwhash)) != CF_OK)
        return;
    if ((a->st = cf_user_create(a->app->store, &j->u)) == CF_OK)
        a->st = user_event(j);
}

void cf_h_admin_user_create(struct cf_req *r)
{
    static const char *const allowed[] = {"username", "password", "display_name", "role", NULL};
    json_t *body;
    const char *username, *password, *display, *role;
    size_t ul, pl, dl, rl;
    enum cf_role rv = CF_ROLE_MEMBER;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) ||
        !cf_json_str_or_respond(r, body, "username", true, &username, &ul) ||
        !cf_json_str_or_respond(r, body, "password", true, &password, &pl) ||
        !cf_json_str_or_respond(r, body, "display_name", false, &display, &dl) ||
        !cf_json_str_or_respond(r, body, "role", false, &role, &rl))
        goto out;
    if (!cf_user_valid_name(username, ul)) {
        cf_respond_status(r, CF_EINVAL, "username: 1 to 64 characters from A-Z a-z 0-9 . _ @ -");
        goto out;
    }
    if (!cf_auth_password_ok(password, pl)) {
        cf_respond_status(r, CF_EINVAL, "password: 8 to 1024 bytes");
        goto out;
    }
    if (display != NULL && !display_name_ok(display, dl)) {
        cf_respond_status(r, CF_EINVAL, "display_name: 1 to 255 bytes of text");
        goto out;
    }
    if (role != NULL && !role_parse(role, rl, &rv)) {
        cf_respond_status(r, CF_EINVAL, "role: member, admin or auditor");
        goto out;
    }
    struct user_job *j = cf_xcalloc(1, sizeof *j);
    j->a.run = user_create_run;
    j->a.reply = user_job_reply;
    j->a.free = user_job_free;
    j->u.tenant = r->who.user.tenant;
    j->u.username = cf_xstrndup(username, ul);
    j->u.display_name = display != NULL ? cf_xstrndup(display, dl) : NULL;
    j->u.role = rv;
    j->u.status = CF_USER_ACTIVE;
    j->password = cf_xstrndup(password, pl);
    j->password_len = pl;
    j->tname = tenant_name(r);
    j->ev = cf_event_new(&r->who.user.tenant, "user.create", "ok");
    cf_event_from_req(j->ev, r);
    cf_async_start(r, &j->a);
out:
    json_decref(body);
}

void cf_h_admin_users(struct cf_req *r)
{
    struct cf_user *us;
    size_t n;
    enum cf_status st = cf_user_list(r->app->store, &r->who.user.tenant, &us, &n);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    char *tname = tenant_name(r);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = admin_user_json(&us[i], tname);
        json_object_set_new(o, "departments", cf_dept_user_json(r->app->store, &us[i].tenant, &us[i].id));
        json_array_append_new(arr, o);
        cf_user_clear(&us[i]);
    }
    free(us);
    free(tname);
    cf_respond_json(r, 200, json_pack("{s:o}", "users", arr));
}

/* Loads the target user into j->u (whose tenant and id name it). */
static enum cf_status load_target(struct user_job *j)
{
    struct cf_id tenant = j->u.tenant, id = j->u.id;
    return cf_user_get(j->a.app->store, &tenant, &id, &j->u);
}

/* The patch, applied inside the store's read-modify-write (so a concurrent login cannot undo it). */
static enum cf_status patch_mutate(struct cf_user *u, void *ctx)
{
    struct user_job *j = ctx;
    if (u->status == CF_USER_OFFBOARDED) {
        j->why = "this user was offboarded";
        return CF_EEXIST;
    }
    if (u->source == CF_SOURCE_DIRECTORY && ((j->set_status && j->status != u->status) || j->set_display)) {
        /* Names, e-mail and status of a directory user are the directory sync's (directory.h); an
         * unchanged status may be sent with restore_links (the links a directory freeze suspended). */
        j->why = "the directory manages this user's display name and status: change them there";
        j->directory_managed = true;
        return CF_EEXIST;
    }
    if (cf_id_equal(&u->id, &j->self) &&
        ((j->set_status && j->status != CF_USER_ACTIVE) || (j->set_role && j->role != CF_ROLE_ADMIN))) {
        j->why = "you cannot freeze or demote yourself";
        return CF_EINVAL;
    }
    j->freezing = j->set_status && j->status == CF_USER_FROZEN && u->status != CF_USER_FROZEN;
    if (j->set_status)
        u->status = j->status;
    if (j->set_role)
        u->role = j->role;
    if (j->set_display) {
        free(u->display_name);
        u->display_name = j->display;
        j->display = NULL;
    }
    return CF_OK;
}

/* Freezing suspends the user's links in their records before the status changes, so that no crash
 * leaves a frozen user with links that unfreezing would revive; a patch that will be refused
 * (offboarded user, an admin freezing themselves) touches no link. */
static enum cf_status suspend_links_first(struct user_job *j, size_t *n)
{
    struct cf_user u;
    *n = 0;
    if (!j->set_status || j->status != CF_USER_FROZEN || cf_id_equal(&j->u.id, &j->self))
        return CF_OK;
    enum cf_status st = cf_user_get(j->a.app->store, &j->u.tenant, &j->u.id, &u);
    if (st != CF_OK)
        return st == CF_ENOTFOUND ? CF_OK : st; /* the update answers 404 */
    bool offboarded = u.status == CF_USER_OFFBOARDED || u.source == CF_SOURCE_DIRECTORY; /* refused later */
    cf_user_clear(&u);
    return offboarded ? CF_OK : cf_share_suspend_all_of(j->a.app->store, &j->u.tenant, &j->u.id, true, n);
}

static void user_patch_run(struct cf_async *a)
{
    struct user_job *j = (struct user_job *)a;
    struct cf_id tenant = j->u.tenant, id = j->u.id;
    size_t suspended = 0, restored = 0;
    if ((a->st = suspend_links_first(j, &suspended)) != CF_OK)
        return;
    if ((a->st = cf_user_update(a->app->store, &tenant, &id, patch_mutate, j, &j->u)) != CF_OK)
        return;
    if (j->freezing)
        /* Frozen: every session and token dies now (the status check would also stop them at
         * their next request; deleting them leaves nothing to revive by unfreezing). */
        a->st = cf_session_delete_all(a->app->store, &j->u.tenant, &j->u.id, NULL);
    /* Restored only once the user is active again: a crash in between leaves them suspended. */
    if (a->st == CF_OK && j->restore_links)
        a->st = cf_share_suspend_all_of(j->a.app->store, &j->u.tenant, &j->u.id, false, &restored);
    if (a->st == CF_OK) {
        if (j->set_status && j->status == CF_USER_FROZEN)
            cf_event_detail(j->ev, "links_suspended", json_integer((json_int_t)suspended));
        if (j->restore_links)
            cf_event_detail(j->ev, "links_restored", json_integer((json_int_t)restored));
        a->st = user_event(j);
    }
}

void cf_h_admin_user_patch(struct cf_req *r)
{
    static const char *const allowed[] = {"status", "role", "display_name", "restore_links", NULL};
    json_t *body;
    const char *status, *role, *display;
    size_t sl, rl, dl;
    bool restore = false, have_restore;
    struct cf_id id;
    if (cf_id_parse(r->params[0].base, r->params[0].len, &id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return;
    }
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "status", false, &status, &sl) ||
        !cf_json_str_or_respond(r, body, "role", false, &role, &rl) ||
        !cf_json_str_or_respond(r, body, "display_name", false, &display, &dl) ||
        !cf_json_bool_or_respond(r, body, "restore_links", &restore, &have_restore))
        goto out;
    /* Restoring the links a freeze suspended is an explicit part of unfreezing, never implied. */
    if (restore && (status == NULL || sl != 6 || memcmp(status, "active", 6) != 0)) {
        cf_respond_status(r, CF_EINVAL, "restore_links: true goes with status: active");
        goto out;
    }
    struct user_job *j = cf_xcalloc(1, sizeof *j);
    j->restore_links = restore;
    j->a.run = user_patch_run;
    j->a.reply = user_job_reply;
    j->a.free = user_job_free;
    if (status != NULL) {
        j->set_status = true;
        if (sl == 6 && memcmp(status, "active", 6) == 0)
            j->status = CF_USER_ACTIVE;
        else if (sl == 6 && memcmp(status, "frozen", 6) == 0)
            j->status = CF_USER_FROZEN;
        else {
            cf_respond_status(r, CF_EINVAL, "status: active or frozen (offboarding has its own endpoint)");
            free(j);
            goto out;
        }
    }
    if (role != NULL) {
        j->set_role = true;
        if (!role_parse(role, rl, &j->role)) {
            cf_respond_status(r, CF_EINVAL, "role: member, admin or auditor");
            free(j);
            goto out;
        }
    }
    if (display != NULL) {
        if (!display_name_ok(display, dl)) {
            cf_respond_status(r, CF_EINVAL, "display_name: 1 to 255 bytes of text");
            free(j);
            goto out;
        }
        j->set_display = true;
        j->display = cf_xstrndup(display, dl);
    }
    if (!j->set_status && !j->set_role && !j->set_display) {
        cf_respond_status(r, CF_EINVAL, "status, role or display_name is required");
        free(j);
        goto out;
    }
    j->u.tenant = r->who.user.tenant;
    j->u.id = id;
    j->self = r->who.user.id;
    j->tname = tenant_name(r);
    j->ev = cf_event_new(&r->who.user.tenant, "user.update", "ok");
    cf_event_from_req(j->ev, r);
    cf_async_start(r, &j->a);
out:
    json_decref(body);
}

static enum cf_status offboard_mutate(struct cf_user *u, void *ctx)
{
    struct user_job *j = ctx;
    if (u->status == CF_USER_OFFBOARDED) {
        j->why = "this user was already offboarded";
        return CF_EEXIST;
    }
    u->status = CF_USER_OFFBOARDED;
    return CF_OK;
}

/* The successor's folder for a handed-over space: "<username> (handed over)", then " 2", " 3"... */
static enum cf_status handover(struct user_job *j, const struct cf_user *heir, struct cf_node *out)
{
    enum cf_status st = CF_EEXIST;
    for (unsigned k = 1; k <= 100 && st == CF_EEXIST; k++) {
        char *name = k == 1 ? cf_xasprintf("%s (handed over)", j->u.username)
                            : cf_xasprintf("%s (handed over) %u", j->u.username, k);
        st = cf_space_handover(j->a.app->store, &j->u.tenant, &j->u.private_root, &heir->private_root, name,
                               strlen(name), out);
        free(name);
    }
    return st;
}

static enum cf_status heir_or_why(struct user_job *j, struct cf_user *heir)
{
    if (!cf_id_equal(&j->transfer_to, &j->u.id) &&
        cf_user_get(j->a.app->store, &j->u.tenant, &j->transfer_to, heir) == CF_OK) {
        if (heir->status == CF_USER_ACTIVE && heir->role != CF_ROLE_AUDITOR)
            return CF_OK;
        cf_user_clear(heir);
    }
    j->why = "transfer_to must be another active, non-auditor user of this tenant";
    return CF_EINVAL;
}

/* Offboarding (docs/SECURITY.md "Offboarding"): lock the account (status, sessions), revoke the
 * user's links, then hand the private space, whole, to the successor as a folder of theirs (or
 * archive it for retention). Nodes the user created in other people's spaces stay where they are:
 * they belong to those spaces. Each step is idempotent, so a failed offboarding can be retried. */
static void offboard_run(struct cf_async *a)
{
    struct user_job *j = (struct user_job *)a;
    struct cf_user heir;
    struct cf_node folder = {0};
    if ((a->st = load_target(j)) != CF_OK)
        return;
    if (j->u.status == CF_USER_OFFBOARDED) {
        a->st = CF_EEXIST;
        j->why = "this user was already offboarded";
        return;
    }
    if (cf_id_equal(&j->u.id, &j->self)) {
        a->st = CF_EINVAL;
        j->why = "you cannot offboard yourself";
        return;
    }
    if ((a->st = heir_or_why(j, &heir)) != CF_OK)
        return;
    struct cf_id tenant = j->u.tenant, id = j->u.id;
    size_t links;
    cf_user_clear(&j->u);
    if ((a->st = cf_user_update(a->app->store, &tenant, &id, offboard_mutate, j, &j->u)) != CF_OK ||
        (a->st = cf_session_delete_all(a->app->store, &j->u.tenant, &j->u.id, NULL)) != CF_OK)
        goto out;
    a->st = j->keep_links ? cf_share_hand_over_all_of(a->app->store, &j->u.tenant, &j->u.id, &j->transfer_to, &links)
                          : cf_share_revoke_all_of(a->app->store, &j->u.tenant, &j->u.id, &links);
    if (a->st != CF_OK)
        goto out;
    if (j->archive)
        a->st = cf_node_archive(a->app->store, &j->u.tenant, &j->u.private_root);
    else
        a->st = handover(j, &heir, &folder);
    if (a->st != CF_OK)
        goto out;
    cf_event_detail(j->ev, "transfer_to", cf_json_id(&j->transfer_to));
    cf_event_detail(j->ev, "private_space", json_string(j->archive ? "archived" : "handed_over"));
    cf_event_detail(j->ev, "links", json_string(j->keep_links ? "handed_over" : "revoked"));
    cf_event_detail(j->ev, "links_count", json_integer((json_int_t)links));
    if (!j->archive) {
        cf_event_node(j->ev, &folder); /* the handover shows in the folder's own activity */
        cf_event_detail(j->ev, "folder", cf_json_id(&folder.id));
    }
    a->st = user_event(j);
out:
    cf_user_clear(&heir);
    cf_node_clear(&folder);
}

void cf_h_admin_user_offboard(struct cf_req *r)
{
    static const char *const allowed[] = {"transfer_to", "private_space", "links", NULL};
    json_t *body;
    const char *to, *space, *links;
    size_t tl, sl, ll;
    struct cf_id id, heir;
    if (cf_id_parse(r->params[0].base, r->params[0].len, &id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return;
    }
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "transfer_to", true, &to, &tl) ||
        !cf_json_str_or_respond(r, body, "private_space", false, &space, &sl) ||
        !cf_json_str_or_respond(r, body, "links", false, &links, &ll))
        goto out;
    if (cf_id_parse(to, tl, &heir) != CF_OK) {
        cf_respond_status(r, CF_EINVAL, "transfer_to must be another active, non-auditor user of this tenant");
        goto out;
    }
    bool archive = space != NULL && h2o_memis(space, sl, H2O_STRLIT("archive"));
    if (space != NULL && !archive && !h2o_memis(space, sl, H2O_STRLIT("transfer"))) {
        cf_respond_status(r, CF_EINVAL, "private_space must be \"transfer\" or \"archive\"");
        goto out;
    }
    bool keep_links = links != NULL && h2o_memis(links, ll, H2O_STRLIT("transfer"));
    if (links != NULL && !keep_links && !h2o_memis(links, ll, H2O_STRLIT("revoke"))) {
        cf_respond_status(r, CF_EINVAL, "links must be \"revoke\" or \"transfer\"");
        goto out;
    }
    struct user_job *j = cf_xcalloc(1, sizeof *j);
    j->a.run = offboard_run;
    j->a.reply = user_job_reply;
    j->a.free = user_job_free;
    j->u.tenant = r->who.user.tenant;
    j->u.id = id;
    j->self = r->who.user.id;
    j->transfer_to = heir;
    j->archive = archive;
    j->keep_links = keep_links;
    j->tname = tenant_name(r);
    j->ev = cf_event_new(&r->who.user.tenant, "user.offboard", "ok");
    cf_event_from_req(j->ev, r);
    cf_async_start(r, &j->a);
out:
    json_decref(body);
}

/* ---- groups ----------------------------------------------------------------------------------- */

static json_t *group_json(const struct cf_group *g, const struct cf_id *members, size_t n)
{
    json_t *m = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(m, cf_json_id(&members[i]));
    return json_pack("{s:o, s:s, s:o, s:o, s:s}", "id", cf_json_id(&g->id), "name", g->name, "members", m, "created_at",
                     cf_json_time(g->created_at), "source", g->source == CF_SOURCE_DIRECTORY ? "directory" : "local");
}

struct group_job {
    struct cf_async a;
    bool created;          /* a new group: 201 */
    struct cf_id tenant;
    struct cf_id self;     /* the admin making the change */
    struct cf_group g;
    struct cf_id *members;
    size_t nmembers;
    const char *why;
    bool directory_managed; /* a directory group: its members are the sync's (issue 23) → 409 */
    struct cf_event *ev;   /* group.create or group.members */
};

static void group_job_free(struct cf_async *a)
{
    struct group_job *j = (struct group_job *)a;
    cf_group_clear(&j->g);
    free(j->members);
    cf_event_free(j->ev);
    free(j);
}

static enum cf_status group_event(struct group_job *j)
{
    json_t *m = json_array();
    for (size_t i = 0; i < j->nmembers; i++)
        json_array_append_new(m, cf_json_id(&j->members[i]));
    cf_event_detail(j->ev, "group", cf_json_id(&j->g.id));
    cf_event_detail(j->ev, "name", json_string(j->g.name));
    cf_event_detail(j->ev, "members", m);
    enum cf_status st = cf_audit_submit_wait(j->ev, NULL);
    j->ev = NULL;
    return st;
}

static void group_reply(struct cf_req *r, struct cf_async *a)
{
    struct group_job *j = (struct group_job *)a;
    if (j->directory_managed)
        cf_respond_error(r, 409, "directory_managed", "the directory manages this group's members: change them there");
    else if (a->st == CF_EEXIST)
        cf_respond_status(r, CF_EEXIST, "a group with this name exists");
    else if (a->st != CF_OK)
        cf_respond_status(r, a->st, j->why);
    else
        cf_respond_json(r, j->created ? 201 : 200, group_json(&j->g, j->members, j->nmembers));
}

static void group_create_run(struct cf_async *a)
{
    struct group_job *j = (struct group_job *)a;
    char *name = j->g.name;
    j->g.name = NULL;
    a->st = cf_group_create(a->app->store, &j->tenant, name, &j->g);
    free(name);
    if (a->st == CF_OK)
        a->st = group_event(j);
}

void cf_h_admin_group_create(struct cf_req *r)
{
    static const char *const allowed[] = {"name", NULL};
    json_t *body;
    const char *name;
    size_t nl;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "name", true, &name, &nl))
        goto out;
    if (nl > GROUP_NAME_MAX || cf_name_check(name, nl) != NULL) {
        cf_respond_status(r, CF_EINVAL, "name: 1 to 128 bytes of text without / or control characters");
        goto out;
    }
    struct group_job *j = cf_xcalloc(1, sizeof *j);
    j->a.run = group_create_run;
    j->a.reply = group_reply;
    j->a.free = group_job_free;
    j->created = true;
    j->tenant = r->who.user.tenant;
    j->g.name = cf_xstrndup(name, nl);
    j->ev = cf_event_new(&j->tenant, "group.create", "ok");
    cf_event_from_req(j->ev, r);
    cf_async_start(r, &j->a);
out:
    json_decref(body);
}

void cf_h_admin_groups(struct cf_req *r)
{
    struct cf_group *gs;
    size_t n;
    enum cf_status st = cf_group_list(r->app->store, &r->who.user.tenant, &gs, &n);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n && st == CF_OK; i++) {
        struct cf_id *m;
        size_t mn;
        if ((st = cf_group_members(r->app->store, &r->who.user.tenant, &gs[i].id, &m, &mn)) == CF_OK) {
            json_array_append_new(arr, group_json(&gs[i], m, mn));
            free(m);
        }
    }
    for (size_t i = 0; i < n; i++)
        cf_group_clear(&gs[i]);
    free(gs);
    if (st != CF_OK) {
        json_decref(arr);
        cf_respond_status(r, st, NULL);
        return;
    }
    cf_respond_json(r, 200, json_pack("{s:o}", "groups", arr));
}

static bool id_in(const struct cf_id *id, const struct cf_id *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cf_id_equal(id, &v[i]))
            return true;
    return false;
}

/* A group that holds grants in private spaces changed members: each owner of such a grant is told
 * (an alert of theirs), since the change decides who reads their private files. Best effort: the
 * change itself is already stored and recorded in provenance. */
static void alert_grant_owners(struct group_job *j, const struct cf_id *before, size_t nbefore)
{
    struct cf_grant *g;
    size_t n;
    struct cf_id *told = NULL;
    size_t ntold = 0;
    if (cf_grants_of(j->a.app->store, &j->tenant, CF_PRINCIPAL_GROUP, &j->g.id, &g, &n) != CF_OK)
        return;
    json_t *added = json_array(), *removed = json_array();
    for (size_t i = 0; i < j->nmembers; i++)
        if (!id_in(&j->members[i], before, nbefore))
            json_array_append_new(added, cf_json_id(&j->members[i]));
    for (size_t i = 0; i < nbefore; i++)
        if (!id_in(&before[i], j->members, j->nmembers))
            json_array_append_new(removed, cf_json_id(&before[i]));
    json_t *d = json_pack("{s:o, s:s, s:o, s:o, s:o}", "group", cf_json_id(&j->g.id), "name", j->g.name, "by",
                          cf_json_id(&j->self), "added", added, "removed", removed);
    char *txt = json_dumps(d, JSON_COMPACT);
    told = cf_xcalloc(n + 1, sizeof *told);
    for (size_t i = 0; i < n; i++) {
        struct cf_acl_space sp;
        if (cf_acl_space_of(j->a.app->store, &j->tenant, &g[i].node, &sp) != CF_OK || sp.kind != CF_SPACE_PRIVATE)
            continue;
        struct cf_id owner = sp.owner;
        if (id_in(&owner, told, ntold))
            continue;
        told[ntold++] = owner;
        if (cf_alert_add(j->a.app->store, &j->tenant, &owner, "alert.group_change", txt) != CF_OK)
            cf_log_warn("could not store a group-change alert");
    }
    free(txt);
    json_decref(d);
    free(told);
    free(g);
}

static void group_members_run(struct cf_async *a)
{
    struct group_job *j = (struct group_job *)a;
    struct cf_id gid = j->g.id, *before;
    size_t nbefore;
    if ((a->st = cf_group_get(a->app->store, &j->tenant, &gid, &j->g)) != CF_OK ||
        (a->st = cf_group_members(a->app->store, &j->tenant, &gid, &before, &nbefore)) != CF_OK)
        return;
    if (j->g.source == CF_SOURCE_DIRECTORY) {
        free(before);
        j->directory_managed = true;
        a->st = CF_EEXIST;
        return;
    }
    /* Private means private: an admin cannot join a group (and so its grants) on their own say. */
    bool self_added = id_in(&j->self, j->members, j->nmembers) && !id_in(&j->self, before, nbefore);
    if (self_added) {
        free(before);
        a->st = CF_EDENIED;
        j->why = "an admin cannot add themselves to a group: another admin must";
        return;
    }
    for (size_t i = 0; i < j->nmembers; i++) {
        struct cf_user u;
        if (cf_user_get(a->app->store, &j->tenant, &j->members[i], &u) != CF_OK) {
            free(before);
            a->st = CF_EINVAL;
            j->why = "user_ids names a user that does not exist in this tenant";
            return;
        }
        cf_user_clear(&u);
    }
    if ((a->st = cf_group_set_members(a->app->store, &j->tenant, &j->g.id, j->members, j->nmembers)) == CF_OK) {
        alert_grant_owners(j, before, nbefore);
        a->st = group_event(j);
    }
    free(before);
}

void cf_h_admin_group_members(struct cf_req *r)
{
    static const char *const allowed[] = {"user_ids", NULL};
    json_t *body;
    struct cf_id gid;
    if (cf_id_parse(r->params[0].base, r->params[0].len, &gid) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return;
    }
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed))
        goto out;
    json_t *ids = json_object_get(body, "user_ids");
    if (!json_is_array(ids) || json_array_size(ids) > GROUP_MEMBERS_MAX) {
        cf_respond_status(r, CF_EINVAL, "user_ids must be an array of at most 10000 user ids");
        goto out;
    }
    struct group_job *j = cf_xcalloc(1, sizeof *j);
    j->a.run = group_members_run;
    j->a.reply = group_reply;
    j->a.free = group_job_free;
    j->tenant = r->who.user.tenant;
    j->self = r->who.user.id;
    j->g.id = gid;
    j->members = cf_xcalloc(json_array_size(ids) + 1, sizeof *j->members);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        struct cf_id id;
        if (!json_is_string(v) || cf_id_parse(json_string_value(v), json_string_length(v), &id) != CF_OK) {
            cf_respond_status(r, CF_EINVAL, "user_ids names a user that does not exist in this tenant");
            group_job_free(&j->a);
            goto out;
        }
        bool dup = false;
        for (size_t k = 0; k < j->nmembers; k++)
            dup = dup || cf_id_equal(&j->members[k], &id);
        if (!dup)
            j->members[j->nmembers++] = id;
    }
    j->ev = cf_event_new(&j->tenant, "group.members", "ok");
    cf_event_from_req(j->ev, r);
    cf_async_start(r, &j->a);
out:
    json_decref(body);
}

/* ---- renaming and deleting groups, deleting users ---------------------------------------------- */


struct group_change {
    struct cf_async a;
    struct cf_id tenant, id;
    struct cf_id self;     /* the admin making the change */
    char *name;            /* rename: the new name */
    bool remove;           /* delete instead of rename */
    struct cf_group g;     /* the group (as renamed, or as it was before its deletion) */
    bool directory_managed; /* rename of a directory group: its name is the sync's (issue 23) → 409 */
    size_t grants;         /* delete: nodes whose ACL lost the group's entries */
    size_t members;        /* delete: members it had */
    struct cf_event *ev;   /* group.rename or group.delete */
};

static void group_change_free(struct cf_async *a)
{
    struct group_change *c = (struct group_change *)a;
    free(c->name);
    cf_group_clear(&c->g);
    cf_event_free(c->ev);
    free(c);
}

/* A group with grants in private spaces is being deleted: each owner of such a grant is told (an
 * alert.group_change with "deleted": true), as for a change of its members. Best effort. */
static void tell_private_owners(struct group_change *c, struct cf_store *store)
{
    struct cf_grant *g;
    size_t n, ntold = 0;
    if (cf_grants_of(store, &c->tenant, CF_PRINCIPAL_GROUP, &c->id, &g, &n) != CF_OK)
        return;
    struct cf_id *told = cf_xcalloc(n + 1, sizeof *told);
    json_t *d = json_pack("{s:o, s:s, s:o, s:b}", "group", cf_json_id(&c->id), "name", c->g.name, "by",
                          cf_json_id(&c->self), "deleted", true);
    char *txt = json_dumps(d, JSON_COMPACT);
    for (size_t i = 0; i < n; i++) {
        struct cf_acl_space sp;
        if (cf_acl_space_of(store, &c->tenant, &g[i].node, &sp) != CF_OK || sp.kind != CF_SPACE_PRIVATE ||
            id_in(&sp.owner, told, ntold))
            continue;
        told[ntold++] = sp.owner;
        if (cf_alert_add(store, &c->tenant, &sp.owner, "alert.group_change", txt) != CF_OK)
            cf_log_warn("could not store a group-change alert");
    }
    free(txt);
    json_decref(d);
    free(told);
    free(g);
}

static void group_change_run(struct cf_async *a)
{
    struct group_change *c = (struct group_change *)a;
    struct cf_store *store = a->app->store;
    if (!c->remove) {
        struct cf_group before;
        if ((a->st = cf_group_get(store, &c->tenant, &c->id, &before)) != CF_OK)
            return;
        cf_event_detail(c->ev, "old_name", json_string(before.name));
        c->directory_managed = before.source == CF_SOURCE_DIRECTORY;
        cf_group_clear(&before);
        if (c->directory_managed) {
            a->st = CF_EEXIST;
            return;
        }
        if ((a->st = cf_group_rename(store, &c->tenant, &c->id, c->name, &c->g)) != CF_OK)
            return;
    } else {
        struct cf_id *m;
        if ((a->st = cf_group_get(store, &c->tenant, &c->id, &c->g)) != CF_OK ||
            (a->st = cf_group_members(store, &c->tenant, &c->id, &m, &c->members)) != CF_OK)
            return;
        free(m);
        tell_private_owners(c, store);
        /* Its grants first, then the group: a failure in between leaves a group that can be deleted
         * again; the group's id is random and never reused, so no later group inherits an entry. */
        if ((a->st = cf_acl_drop_principal(store, &c->tenant, CF_PRINCIPAL_GROUP, &c->id, &c->grants)) != CF_OK ||
            (a->st = cf_group_delete(store, &c->tenant, &c->id)) != CF_OK)
            return;
        cf_event_detail(c->ev, "members", json_integer((json_int_t)c->members));
        cf_event_detail(c->ev, "acl_entries_removed", json_integer((json_int_t)c->grants));
    }
    cf_event_detail(c->ev, "group", cf_json_id(&c->id));
    cf_event_detail(c->ev, "name", json_string(c->g.name));
    a->st = cf_audit_submit_wait(c->ev, NULL);
    c->ev = NULL;
}

static void group_change_reply(struct cf_req *r, struct cf_async *a)
{
    struct group_change *c = (struct group_change *)a;
    struct cf_id *m;
    size_t n;
    if (c->directory_managed)
        cf_respond_error(r, 409, "directory_managed", "the directory manages this group's name: change it there");
    else if (a->st == CF_EEXIST)
        cf_respond_status(r, CF_EEXIST, "a group with this name exists");
    else if (a->st != CF_OK)
        cf_respond_status(r, a->st, NULL);
    else if (c->remove)
        cf_respond_empty(r, 204);
    else if (cf_group_members(r->app->store, &c->tenant, &c->id, &m, &n) == CF_OK) {
        cf_respond_json(r, 200, group_json(&c->g, m, n));
        free(m);
    } else
        cf_respond_status(r, CF_EIO, NULL);
}

static struct group_change *group_change_new(struct cf_req *r, const struct cf_id *id, const char *action)
{
    struct group_change *c = cf_xcalloc(1, sizeof *c);
    c->a.run = group_change_run;
    c->a.reply = group_change_reply;
    c->a.free = group_change_free;
    c->tenant = r->who.user.tenant;
    c->id = *id;
    c->self = r->who.user.id;
    c->ev = cf_event_new(&c->tenant, action, "ok");
    cf_event_from_req(c->ev, r);
    return c;
}

/* PATCH /api/v1/admin/groups/{id} {"name"}: 200 group, 409 if the name is taken. */
void cf_h_admin_group_patch(struct cf_req *r)
{
    static const char *const allowed[] = {"name", NULL};
    json_t *body;
    const char *name;
    size_t nl;
    struct cf_id id;
    if (cf_id_parse(r->params[0].base, r->params[0].len, &id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return;
    }
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "name", true, &name, &nl))
        goto out;
    if (nl > GROUP_NAME_MAX || cf_name_check(name, nl) != NULL) {
        cf_respond_status(r, CF_EINVAL, "name: 1 to 128 bytes of text without / or control characters");
        goto out;
    }
    struct group_change *c = group_change_new(r, &id, "group.rename");
    c->name = cf_xstrndup(name, nl);
    cf_async_start(r, &c->a);
out:
    json_decref(body);
}

/* DELETE /api/v1/admin/groups/{id}: 204; its memberships and every ACL entry naming it go with it. */
void cf_h_admin_group_delete(struct cf_req *r)
{
    struct cf_id id;
    if (cf_id_parse(r->params[0].base, r->params[0].len, &id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return;
    }
    struct group_change *c = group_change_new(r, &id, "group.delete");
    c->remove = true;
    cf_async_start(r, &c->a);
}

static void user_delete_run(struct cf_async *a)
{
    struct user_job *j = (struct user_job *)a;
    struct cf_store *store = a->app->store;
    size_t grants = 0;
    if ((a->st = load_target(j)) != CF_OK)
        return;
    if (j->u.status != CF_USER_OFFBOARDED) {
        a->st = CF_EEXIST;
        j->why = "only an offboarded user can be deleted: offboard them first";
        return;
    }
    /* An archived private space still holding files waits for its retention (retention.c finds it
     * through the user's record); a handed-over space is the successor's folder now. */
    struct cf_node root;
    enum cf_status st = cf_node_get(store, &j->u.tenant, &j->u.private_root, &root);
    if (st == CF_OK) {
        bool archived_root = root.root_kind == CF_SPACE_PRIVATE && cf_id_is_zero(&root.parent);
        cf_node_clear(&root);
        if (archived_root) {
            struct cf_node *items;
            size_t cnt;
            uint8_t next[CF_CURSOR_LEN];
            bool more;
            if ((a->st = cf_children_list(store, &j->u.tenant, &j->u.private_root, NULL, 1, &items, &cnt, next,
                                          &more)) != CF_OK)
                return;
            for (size_t i = 0; i < cnt; i++)
                cf_node_clear(&items[i]);
            free(items);
            if (cnt > 0) {
                a->st = CF_EEXIST;
                j->why = "the user's archived private space still holds files: it is purged when the tenant's "
                         "offboarded_retention ends; delete the user after that";
                return;
            }
        }
    } else if (st != CF_ENOTFOUND) {
        a->st = st;
        return;
    }
    if ((a->st = cf_acl_drop_principal(store, &j->u.tenant, CF_PRINCIPAL_USER, &j->u.id, &grants)) != CF_OK ||
        (a->st = cf_user_delete(store, &j->u.tenant, &j->u.id)) != CF_OK) {
        if (a->st == CF_EEXIST)
            j->why = "only an offboarded user can be deleted: offboard them first";
        return;
    }
    cf_event_detail(j->ev, "acl_entries_removed", json_integer((json_int_t)grants));
    a->st = user_event(j);
}

static void user_delete_reply(struct cf_req *r, struct cf_async *a)
{
    struct user_job *j = (struct user_job *)a;
    if (a->st == CF_OK)
        cf_respond_empty(r, 204);
    else
        cf_respond_status(r, a->st, j->why);
}

/* DELETE /api/v1/admin/users/{id}: offboarded users only (409 otherwise); their provenance stays. */
void cf_h_admin_user_delete(struct cf_req *r)
{
    struct cf_id id;
    if (cf_id_parse(r->params[0].base, r->params[0].len, &id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return;
    }
    struct user_job *j = cf_xcalloc(1, sizeof *j);
    j->a.run = user_delete_run;
    j->a.reply = user_delete_reply;
    j->a.free = user_job_free;
    j->u.tenant = r->who.user.tenant;
    j->u.id = id;
    j->self = r->who.user.id;
    j->tname = tenant_name(r);
    j->ev = cf_event_new(&r->who.user.tenant, "user.delete", "ok");
    cf_event_from_req(j->ev, r);
    cf_async_start(r, &j->a);
}

/* ---- policy ----------------------------------------------------------------------------------- */

static json_t *policy_json(const struct cf_config *cfg, const struct cf_policy *p)
{
    json_t *bt = json_array();
    for (size_t i = 0; i < p->nblocked; i++)
        json_array_append_new(bt, json_string(p->blocked_types[i]));
    uint64_t max = p->share_max_expiry_s != 0 ? p->share_max_expiry_s : cfg->shares.max_expiry_s;
    json_t *hook = p->webhook_url != NULL ? json_pack("{s:s, s:s?}", "url", p->webhook_url, "ca", p->webhook_ca)
                                          : json_null();
    return json_pack("{s:b, s:b, s:I, s:o, s:{s:I, s:I, s:I}, s:o, s:I, s:I, s:I, s:I, s:I}", "require_mfa",
                     p->require_mfa,
                     "allow_shares", p->allow_shares, "share_max_expiry", (json_int_t)max, "blocked_types", bt,
                     "bulk_download_alert", "files", (json_int_t)p->bulk_files, "bytes", (json_int_t)p->bulk_bytes,
                     "window", (json_int_t)p->bulk_window_s, "alert_webhook", hook, "trash_retention",
                     (json_int_t)p->trash_retention_s, "offboarded_retention", (json_int_t)p->offboarded_retention_s,
                     "version_retention", (json_int_t)p->version_retention_s, "user_quota_bytes",
                     (json_int_t)p->user_quota_bytes, "tenant_quota_bytes", (json_int_t)p->tenant_quota_bytes);
}

void cf_h_admin_policy_get(struct cf_req *r)
{
    struct cf_tenant t;
    enum cf_status st = cf_tenant_get(r->app->store, &r->who.user.tenant, &t);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    cf_respond_json(r, 200, policy_json(r->app->cfg, &t.policy));
    cf_tenant_clear(&t);
}

/* A MIME type ("application/x-executable") or a family ("video/" then "*"), lower case. */
static bool mime_ok(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    if (slash == NULL || slash == s || slash == s + n - 1 || n > 127)
        return false;
    if (slash == s + n - 2 && s[n - 1] == '*')
        n -= 2; /* the type part is checked below */
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '+' || c == '-' ||
              (c == '/' && s + i == slash)))
            return false;
    }
    return true;
}

struct policy_job {
    struct cf_async a;
    struct cf_id tenant;
    struct cf_policy p;
    struct cf_event *ev; /* policy.change */
};

static json_t *policy_json(const struct cf_config *cfg, const struct cf_policy *p);

static void policy_run(struct cf_async *a)
{
    struct policy_job *j = (struct policy_job *)a;
    if ((a->st = cf_tenant_put_policy(a->app->store, &j->tenant, &j->p)) == CF_OK) {
        cf_event_detail(j->ev, "policy", policy_json(j->a.app->cfg, &j->p));
        a->st = cf_audit_submit_wait(j->ev, NULL);
        j->ev = NULL;
    }
}

static void policy_reply(struct cf_req *r, struct cf_async *a)
{
    struct policy_job *j = (struct policy_job *)a;
    if (a->st != CF_OK)
        cf_respond_status(r, a->st, NULL);
    else
        cf_respond_json(r, 200, policy_json(r->app->cfg, &j->p));
}

static void policy_free(struct cf_async *a)
{
    struct policy_job *j = (struct policy_job *)a;
    cf_policy_clear(&j->p);
    cf_event_free(j->ev);
    free(j);
}

void cf_h_admin_policy_patch(struct cf_req *r)
{
    static const char *const allowed[] = {"require_mfa", "allow_shares", "share_max_expiry", "blocked_types",
                                          "bulk_download_alert", "alert_webhook", "trash_retention",
                                          "offboarded_retention", "version_retention", "user_quota_bytes",
                                          "tenant_quota_bytes", NULL};
    static const char *const hook_allowed[] = {"url", "ca", NULL};
    static const char *const bulk_allowed[] = {"files", "bytes", "window", NULL};
    json_t *body;
    struct cf_tenant t;
    bool b, present;
    uint64_t u;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed))
        goto out;
    enum cf_status st = cf_tenant_get(r->app->store, &r->who.user.tenant, &t);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        goto out;
    }
    struct cf_policy p = t.policy; /* takes over the strings */
    memset(&t.policy, 0, sizeof t.policy);
    cf_tenant_clear(&t);
    if (!cf_json_bool_or_respond(r, body, "require_mfa", &b, &present))
        goto fail;
    if (present)
        p.require_mfa = b;
    if (!cf_json_bool_or_respond(r, body, "allow_shares", &b, &present))
        goto fail;
    if (present)
        p.allow_shares = b;
    if (!cf_json_uint_or_respond(r, body, "share_max_expiry", false, UINT32_MAX, &u, &present))
        goto fail;
    if (present) {
        if (u < 60 || u > r->app->cfg->shares.max_expiry_s) {
            char *m = cf_xasprintf("share_max_expiry must be between 60 and %llu seconds (the server's maximum)",
                                   (unsigned long long)r->app->cfg->shares.max_expiry_s);
            cf_respond_status(r, CF_EINVAL, m);
            free(m);
            goto fail;
        }
        p.share_max_expiry_s = u;
    }
    /* The plain numbers, 0 meaning none: retention periods in seconds (applied by the retention job,
     * retention.c) and quotas in bytes (enforced at upload creation and at commit, quota.c). */
    const struct {
        const char *key;
        uint64_t max;
        uint64_t *field;
    } numbers[] = {
        {"trash_retention", CF_RETENTION_MAX_S, &p.trash_retention_s},
        {"offboarded_retention", CF_RETENTION_MAX_S, &p.offboarded_retention_s},
        {"version_retention", CF_RETENTION_MAX_S, &p.version_retention_s},
        {"user_quota_bytes", CF_QUOTA_MAX_BYTES, &p.user_quota_bytes},
        {"tenant_quota_bytes", CF_QUOTA_MAX_BYTES, &p.tenant_quota_bytes},
    };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        if (!cf_json_uint_or_respond(r, body, numbers[i].key, false, numbers[i].max, &u, &present))
            goto fail;
        if (present)
            *numbers[i].field = u;
    }
    json_t *bt = json_object_get(body, "blocked_types");
    if (bt != NULL) {
        if (!json_is_array(bt) || json_array_size(bt) > CF_POLICY_MAX_BLOCKED) {
            cf_respond_status(r, CF_EINVAL, "blocked_types must be an array of at most 64 MIME types");
            goto fail;
        }
        size_t i;
        json_t *v;
        json_array_foreach(bt, i, v)
        {
            if (!json_is_string(v) || !mime_ok(json_string_value(v), json_string_length(v))) {
                cf_respond_status(r, CF_EINVAL, "blocked_types must hold MIME types like application/x-executable");
                goto fail;
            }
        }
        for (size_t k = 0; k < p.nblocked; k++)
            free(p.blocked_types[k]);
        p.nblocked = 0;
        json_array_foreach(bt, i, v) p.blocked_types[p.nblocked++] = cf_xstrdup(json_string_value(v));
    }
    json_t *bulk = json_object_get(body, "bulk_download_alert");
    if (bulk != NULL) {
        if (!json_is_object(bulk)) {
            cf_respond_status(r, CF_EINVAL, "bulk_download_alert must be an object {files, bytes, window}");
            goto fail;
        }
        if (!cf_json_only_keys_or_respond(r, bulk, bulk_allowed) ||
            !cf_json_uint_or_respond(r, bulk, "files", false, UINT32_MAX, &u, &present))
            goto fail;
        if (present)
            p.bulk_files = u;
        if (!cf_json_uint_or_respond(r, bulk, "bytes", false, (uint64_t)1 << 50, &u, &present))
            goto fail;
        if (present)
            p.bulk_bytes = u;
        if (!cf_json_uint_or_respond(r, bulk, "window", false, 30 * 86400, &u, &present))
            goto fail;
        if (present)
            p.bulk_window_s = u;
    }
    json_t *hook = json_object_get(body, "alert_webhook");
    if (hook != NULL) {
        const char *url, *ca;
        size_t ul, cl;
        if (json_is_null(hook)) {
            free(p.webhook_url);
            free(p.webhook_ca);
            p.webhook_url = p.webhook_ca = NULL;
        } else if (!json_is_object(hook) || !cf_json_only_keys_or_respond(r, hook, hook_allowed) ||
                   !cf_json_str_or_respond(r, hook, "url", true, &url, &ul) ||
                   !cf_json_str_or_respond(r, hook, "ca", false, &ca, &cl)) {
            if (!json_is_object(hook))
                cf_respond_status(r, CF_EINVAL, "alert_webhook must be {url, ca?} or null");
            goto fail;
        } else {
            if (!cf_webhook_url_ok(url) || strlen(url) != ul) {
                cf_respond_status(r, CF_EINVAL, "alert_webhook.url must be an https:// URL");
                goto fail;
            }
            if (ca != NULL && (cl > 65536 || strstr(ca, "-----BEGIN CERTIFICATE-----") == NULL)) {
                cf_respond_status(r, CF_EINVAL, "alert_webhook.ca must be a PEM certificate");
                goto fail;
            }
            free(p.webhook_url);
            free(p.webhook_ca);
            p.webhook_url = cf_xstrndup(url, ul);
            p.webhook_ca = ca != NULL ? cf_xstrndup(ca, cl) : NULL;
        }
    }
    struct policy_job *j = cf_xcalloc(1, sizeof *j);
    j->a.run = policy_run;
    j->a.reply = policy_reply;
    j->a.free = policy_free;
    j->tenant = r->who.user.tenant;
    j->p = p;
    j->ev = cf_event_new(&j->tenant, "policy.change", "ok");
    cf_event_from_req(j->ev, r);
    cf_async_start(r, &j->a);
    goto out;
fail:
    cf_policy_clear(&p);
out:
    json_decref(body);
}

/* ---- scanner ---------------------------------------------------------------------------------- */

/* GET /api/v1/admin/scanner: the scanner processes and their engines, so that an admin can see a
 * signature update take effect (the database digest changes once each process has reloaded). */
void cf_h_admin_scanner(struct cf_req *r)
{
    struct cf_scan_status st[64];
    size_t n = cf_scan_info(st, sizeof st / sizeof st[0]);
    const struct cf_config *cfg = r->app->cfg;
    json_t *procs = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(procs, json_pack("{s:b, s:s, s:s, s:I, s:b}", "up", st[i].up, "engine", st[i].info.engine,
                                               "database", st[i].info.database, "signatures",
                                               (json_int_t)st[i].info.signatures, "development",
                                               st[i].info.development != 0));
    cf_respond_json(r, 200,
                    json_pack("{s:s, s:o, s:I, s:s, s:I}", "state", cf_scan_state(), "processes", procs, "max_seconds",
                              (json_int_t)cfg->scan.max_seconds, "on_unscannable",
                              cfg->scan.on_unscannable == CF_UNSCANNABLE_ALLOW ? "allow" : "reject", "max_file_bytes",
                              (json_int_t)cfg->limits.max_file_bytes));
}
