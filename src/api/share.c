/*
 * share.c: share links (SPEC §5 "Share links").
 *
 * Members create, list and revoke links (/api/v1/shares). Recipients need no account: they open
 * /s/{token}, unlock it with the extraction code, and get an access token (a cookie scoped to the
 * link's path, or a bearer token) for the link's other routes.
 *
 * Every recipient request re-checks the link from scratch (recipient_or_respond, run by the
 * dispatcher for every CF_ROUTE_RECIPIENT route before its handler): it exists (404),
 * is not revoked, expired or suspended (410 with the precise code), the tenant's policy still allows
 * links (else 410 links_disabled, until an admin allows them again), its creator is still active
 * and still holds at least the link's permission on the node (else the link acts revoked, or
 * suspended for a frozen creator), the node is still there (404), a file link's byte budget is not
 * spent (410 download_limit_reached), and for internal links the caller is a logged-in member of the
 * tenant. So revocation, expiry, policy, freezing the creator and a creator losing access take
 * effect at the next request, also for recipients who already unlocked.
 *
 * Byte budgets (storage.h "Byte budgets"): every response that carries bytes of the original (the
 * file link's content or view, Range or not, and each file of a folder link) draws them from the
 * link's budget before its first byte (cf_transfer_opts). Freezing a creator suspends their links in
 * the records (suspended_at); unfreezing leaves them suspended unless the admin restores them
 * (cf_share_suspend_all_of).
 *
 * Brute force: wrong codes are limited per address (shares.code_failures_per_ip in 15 min) and per
 * link (shares.code_failures_per_link in 1 h, from anywhere) with 429 + Retry-After; there is no
 * hard lock-out and access tokens already issued keep working; the creator is alerted when a link's
 * budget runs out. docs/SECURITY.md has the arithmetic.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acl.h"
#include "addr.h"
#include "audit.h"
#include "auth.h"
#include "files.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "validate.h"
#include "throttle.h"
#include "share.h"
#include "zip.h"
#include "pages.h"
#include "web.h"
#include "work.h"

#define SHARE_COOKIE "coffer_share"
#define ACCESS_TTL_MS (24ull * 3600 * 1000) /* an unlock lasts a day, or until the link expires */
#define MAX_DOWNLOADS_LIMIT 1000000
#define CODE_INPUT_MAX 64
#define CHILDREN_MAX_LIMIT 1000

/* Generated codes: no 0/O, 1/I/L, so that a code read aloud or from a screen survives. */
static const char code_alphabet[] = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

static const char *perm_name(enum cf_share_perm p)
{
    return p == CF_SHARE_DOWNLOAD ? "download" : "view";
}

/* The status of a link at time now from its record alone: CF_OK or why it no longer works. The
 * tenant's policy, the creator and a file link's byte budget are checked by link_figures and
 * link_or_respond. */
static enum cf_status link_state(const struct cf_share *sh, uint64_t now)
{
    if (sh->revoked_at != 0)
        return CF_EREVOKED;
    if (sh->expires_at <= now)
        return CF_EEXPIRED;
    if (sh->suspended_at != 0)
        return CF_ESUSPENDED;
    if (cf_share_legacy_exhausted(sh))
        return CF_EEXHAUSTED;
    return CF_OK;
}

static const char *state_name(enum cf_status st)
{
    switch (st) {
    case CF_OK:
        return "active";
    case CF_EREVOKED:
    case CF_EEXPIRED:
    case CF_EEXHAUSTED:
    case CF_ESUSPENDED:
    case CF_EDISABLED:
        return cf_status_name(st); /* revoked, expired, download_limit_reached, suspended, links_disabled */
    default:
        return "unavailable";
    }
}

/* What a link's JSON reports: its state, download figure and the bytes its budget still allows. */
struct figures {
    enum cf_status state;
    uint64_t downloads;            /* see struct cf_share */
    bool has_left;                 /* a file link with max_downloads whose file is there */
    uint64_t left;                 /* bytes left in the budget (has_left) */
};

/* The figures of link sh, whose node is file (NULL: a folder link, or a node that is gone), in a
 * tenant whose policy allows links (allowed) or not. A file link whose budget is spent is
 * exhausted (an empty file carries no bytes: its link never is). */
static void link_figures(const struct cf_share *sh, const struct cf_node *file, bool allowed, struct figures *f)
{
    memset(f, 0, sizeof *f);
    f->state = link_state(sh, cf_now_ms());
    if (f->state == CF_OK && !allowed)
        f->state = CF_EDISABLED;
    f->downloads = sh->downloads;
    if (file == NULL || file->type != CF_NODE_FILE)
        return;
    struct cf_share_tally t;
    cf_share_tally_of(sh, file->size, &t);
    f->downloads = cf_share_tally_downloads(file->size, &t);
    if (sh->max_downloads == 0)
        return;
    f->has_left = true;
    f->left = cf_share_tally_left(sh->max_downloads, file->size, &t);
    if (f->state == CF_OK && file->size != 0 && f->left == 0)
        f->state = CF_EEXHAUSTED;
}

/* Whether the tenant's policy allows share links now (false also when it cannot be read). */
static bool links_allowed(struct cf_store *store, const struct cf_id *tenant)
{
    struct cf_tenant t;
    if (cf_tenant_get(store, tenant, &t) != CF_OK)
        return false;
    bool allowed = t.policy.allow_shares;
    cf_tenant_clear(&t);
    return allowed;
}

static char *share_url(const struct cf_config *cfg, const char *token)
{
    return cf_xasprintf("%s/s/%s", cfg->public_url, token);
}

/* The creator's view of a link (with url and code when mine), with its figures. */
static json_t *share_json(const struct cf_config *cfg, const struct cf_share *sh, bool mine, const struct figures *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", cf_json_id(&sh->id));
    json_object_set_new(o, "node", cf_json_id(&sh->node));
    json_object_set_new(o, "creator", cf_json_id(&sh->creator));
    if (mine) {
        char *url = share_url(cfg, sh->token);
        json_object_set_new(o, "url", json_string(url));
        free(url);
        json_object_set_new(o, "code", json_string(sh->code));
    }
    json_object_set_new(o, "permission", json_string(perm_name(sh->permission)));
    json_object_set_new(o, "created_at", cf_json_time(sh->created_at));
    json_object_set_new(o, "expires_at", cf_json_time(sh->expires_at));
    json_object_set_new(o, "max_downloads", sh->max_downloads != 0 ? json_integer((json_int_t)sh->max_downloads)
                                                                    : json_null());
    json_object_set_new(o, "downloads", json_integer((json_int_t)f->downloads));
    json_object_set_new(o, "bytes_left", f->has_left ? json_integer((json_int_t)f->left) : json_null());
    json_object_set_new(o, "internal_only", json_boolean(sh->internal_only));
    json_object_set_new(o, "state", json_string(state_name(f->state)));
    return o;
}

/* The level the creator holds on the shared node now (CF_ENOTFOUND if the node is gone or trashed;
 * CF_LEVEL_NONE if the creator is no longer an active user; *frozen: because they are frozen). */
static enum cf_status creator_level(const struct cf_app *app, const struct cf_share *sh, struct cf_node *node,
                                    enum cf_level *level, bool *frozen)
{
    struct cf_store *store = app->store;
    struct cf_user u;
    struct cf_id *groups = NULL;
    size_t ng = 0;
    *frozen = false;
    enum cf_status st = cf_user_get(store, &sh->tenant, &sh->creator, &u);
    if (st == CF_ENOTFOUND) {
        *level = CF_LEVEL_NONE;
        return cf_node_get(store, &sh->tenant, &sh->node, node);
    }
    if (st != CF_OK)
        return st;
    if ((st = cf_user_groups(store, &sh->tenant, &sh->creator, &groups, &ng)) != CF_OK) {
        cf_user_clear(&u);
        return st;
    }
    struct cf_actor a = {.app = app, .tenant = sh->tenant, .id = u.id, .role = u.role, .groups = groups, .ngroups = ng};
    st = cf_acl_level(&a, &sh->node, node, level);
    if (st == CF_OK && u.status != CF_USER_ACTIVE) {
        /* A frozen or offboarded creator's links stop working (freezing also suspends them in their
         * records, which unfreezing alone does not undo; this check covers the moment between). */
        *level = CF_LEVEL_NONE;
        *frozen = u.status == CF_USER_FROZEN;
    }
    free(groups);
    cf_user_clear(&u);
    return st;
}

/* ---- members: create, list, revoke ------------------------------------------------------------- */

bool cf_share_code_ok(const char *c, size_t n)
{
    if (n < 4 || n > CF_SHARE_CODE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') || (c[i] >= '0' && c[i] <= '9')))
            return false;
    return true;
}

static void generate_code(char *out, size_t len)
{
    const size_t k = sizeof code_alphabet - 1;
    for (size_t i = 0; i < len;) {
        uint8_t b;
        cf_random(&b, 1);
        if (b >= 256 - 256 % k) /* rejection sampling: every character equally likely */
            continue;
        out[i++] = code_alphabet[b % k];
    }
    out[len] = '\0';
}

struct share_create {
    struct cf_async a;
    struct cf_share sh;
    struct cf_node node;           /* type and size of the shared node only (for the figures) */
    struct cf_event *ev; /* share.create */
};

/* Adds the node (as it is now) to a share event. Worker threads. */
static void event_share_node(struct cf_store *store, struct cf_event *e, const struct cf_id *tenant,
                             const struct cf_id *node)
{
    struct cf_node n;
    if (cf_node_get(store, tenant, node, &n) == CF_OK) {
        cf_event_node(e, &n);
        cf_node_clear(&n);
    }
}

static void share_create_run(struct cf_async *a)
{
    struct share_create *c = (struct share_create *)a;
    a->st = cf_share_code_mac(a->app->store, &c->sh.tenant, &c->sh.id, c->sh.code, strlen(c->sh.code), c->sh.code_mac);
    if (a->st == CF_OK)
        a->st = cf_share_create(a->app->store, &c->sh);
    if (a->st == CF_OK) {
        /* The event names the link and its settings, never its token or code. */
        c->ev->has_share = true;
        c->ev->share = c->sh.id;
        event_share_node(a->app->store, c->ev, &c->sh.tenant, &c->sh.node);
        cf_event_detail(c->ev, "permission", json_string(perm_name(c->sh.permission)));
        cf_event_detail(c->ev, "expires_at", cf_json_time(c->sh.expires_at));
        cf_event_detail(c->ev, "max_downloads", c->sh.max_downloads != 0 ? json_integer((json_int_t)c->sh.max_downloads)
                                                                          : json_null());
        cf_event_detail(c->ev, "internal_only", json_boolean(c->sh.internal_only));
        a->st = cf_audit_submit_wait(c->ev, NULL);
        c->ev = NULL;
    }
}

static void share_create_reply(struct cf_req *r, struct cf_async *a)
{
    struct share_create *c = (struct share_create *)a;
    struct figures f;
    if (a->st != CF_OK) {
        cf_respond_status(r, a->st, NULL);
        return;
    }
    link_figures(&c->sh, &c->node, true, &f);
    cf_respond_json(r, 201, share_json(r->app->cfg, &c->sh, true, &f));
}

static void share_create_free(struct cf_async *a)
{
    struct share_create *c = (struct share_create *)a;
    cf_share_clear(&c->sh);
    cf_event_free(c->ev);
    free(c);
}

void cf_h_share_create(struct cf_req *r)
{
    static const char *const allowed[] = {"node", "permission", "expires_in", "code", "max_downloads",
                                          "internal_only", NULL};
    json_t *body;
    const char *node_s, *perm_s, *code;
    size_t nl, pl, cl;
    uint64_t expires_in = 0, max_downloads = 0;
    bool have_exp, have_max, internal = false, have_int;
    struct cf_id node_id;
    struct cf_node node;
    enum cf_level level;
    struct cf_tenant t;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "node", true, &node_s, &nl) ||
        !cf_json_str_or_respond(r, body, "permission", true, &perm_s, &pl) ||
        !cf_json_str_or_respond(r, body, "code", false, &code, &cl) ||
        !cf_json_uint_or_respond(r, body, "expires_in", false, UINT32_MAX, &expires_in, &have_exp) ||
        !cf_json_uint_or_respond(r, body, "max_downloads", false, MAX_DOWNLOADS_LIMIT, &max_downloads, &have_max) ||
        !cf_json_bool_or_respond(r, body, "internal_only", &internal, &have_int))
        goto out;
    enum cf_share_perm perm;
    if (pl == 4 && memcmp(perm_s, "view", 4) == 0)
        perm = CF_SHARE_VIEW;
    else if (pl == 8 && memcmp(perm_s, "download", 8) == 0)
        perm = CF_SHARE_DOWNLOAD;
    else {
        cf_respond_status(r, CF_EINVAL, "permission must be view or download");
        goto out;
    }
    if (code != NULL && !cf_share_code_ok(code, cl)) {
        cf_respond_status(r, CF_EINVAL, "code must have 4 to 16 characters from A-Z a-z 0-9");
        goto out;
    }
    if (have_max && max_downloads == 0) {
        cf_respond_status(r, CF_EINVAL, "max_downloads must be at least 1 (omit it for no limit)");
        goto out;
    }
    if (cf_id_parse(node_s, nl, &node_id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        goto out;
    }
    if (!cf_acl_node_or_respond(r, &node_id, CF_LEVEL_MANAGE, &node, &level))
        goto out;
    enum cf_node_type node_type = node.type;
    uint64_t node_size = node.size;
    cf_node_clear(&node);
    /* A link never grants more than its creator holds (manage includes download; the check stays
     * here so that it holds if the rule for creating links ever changes). */
    if ((perm == CF_SHARE_DOWNLOAD && level < CF_LEVEL_DOWNLOAD) || level < CF_LEVEL_VIEW) {
        cf_respond_status(r, CF_EDENIED, "a link cannot grant more than you hold");
        goto out;
    }
    enum cf_status st = cf_tenant_get(r->app->store, &r->who.user.tenant, &t);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        goto out;
    }
    bool allowed_shares = t.policy.allow_shares;
    uint64_t max = r->app->cfg->shares.max_expiry_s;
    if (t.policy.share_max_expiry_s != 0 && t.policy.share_max_expiry_s < max)
        max = t.policy.share_max_expiry_s;
    cf_tenant_clear(&t);
    if (!allowed_shares) {
        cf_respond_status(r, CF_EDENIED, "share links are disabled by your tenant's policy");
        goto out;
    }
    if (!have_exp)
        expires_in = r->app->cfg->shares.default_expiry_s < max ? r->app->cfg->shares.default_expiry_s : max;
    if (expires_in < 60 || expires_in > max) {
        char *m = cf_xasprintf("expires_in must be between 60 and %llu seconds (the maximum)", (unsigned long long)max);
        cf_respond_status(r, CF_EINVAL, m);
        free(m);
        goto out;
    }
    struct share_create *c = cf_xcalloc(1, sizeof *c);
    c->node.type = node_type;
    c->node.size = node_size;
    c->a.run = share_create_run;
    c->a.reply = share_create_reply;
    c->a.free = share_create_free;
    struct cf_share *sh = &c->sh;
    cf_id_new(&sh->id);
    sh->tenant = r->who.user.tenant;
    sh->node = node_id;
    sh->creator = r->who.user.id;
    sh->permission = perm;
    sh->created_at = cf_now_ms();
    sh->expires_at = sh->created_at + expires_in * 1000;
    sh->max_downloads = max_downloads;
    sh->internal_only = internal;
    sh->token = cf_xmalloc(CF_TOKEN_TEXT_LEN + 1);
    cf_auth_new_token(sh->token, sh->token_hash);
    if (code != NULL) {
        sh->code = cf_xstrndup(code, cl);
    } else {
        sh->code = cf_xmalloc(CF_SHARE_CODE_MAX + 1);
        generate_code(sh->code, r->app->cfg->shares.code_length);
    }
    c->ev = cf_event_new(&sh->tenant, "share.create", "ok");
    cf_event_from_req(c->ev, r);
    cf_async_start(r, &c->a);
out:
    json_decref(body);
}

void cf_h_share_list(struct cf_req *r)
{
    h2o_iovec_t v;
    bool bad = false, by_node;
    struct cf_id id = r->who.user.id;
    struct cf_share *shs;
    size_t n;
    by_node = cf_query(r, "node", &v, &bad);
    if (bad) {
        cf_respond_status(r, CF_EINVAL, "malformed query string");
        return;
    }
    if (by_node) {
        struct cf_node node;
        enum cf_level level;
        if (cf_id_parse(v.base, v.len, &id) != CF_OK) {
            cf_respond_status(r, CF_ENOTFOUND, NULL);
            return;
        }
        /* Managers of a node see every link on it; only creators see links' urls and codes. */
        if (!cf_acl_node_or_respond(r, &id, CF_LEVEL_MANAGE, &node, &level))
            return;
        cf_node_clear(&node);
    }
    enum cf_status st = cf_share_list(r->app->store, &r->who.user.tenant, by_node, &id, &shs, &n);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    bool allowed = links_allowed(r->app->store, &r->who.user.tenant);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        /* A file link's figures are reckoned with the file's size now. */
        struct cf_node node;
        struct figures f;
        bool have = cf_node_get(r->app->store, &r->who.user.tenant, &shs[i].node, &node) == CF_OK;
        link_figures(&shs[i], have ? &node : NULL, allowed, &f);
        if (have)
            cf_node_clear(&node);
        json_array_append_new(arr, share_json(r->app->cfg, &shs[i], cf_id_equal(&shs[i].creator, &r->who.user.id), &f));
        cf_share_clear(&shs[i]);
    }
    free(shs);
    cf_respond_json(r, 200, json_pack("{s:o}", "shares", arr));
}

struct share_revoke {
    struct cf_async a;
    struct cf_id tenant, id, node;
    struct cf_event *ev; /* share.revoke */
};

static void share_revoke_run(struct cf_async *a)
{
    struct share_revoke *v = (struct share_revoke *)a;
    a->st = cf_share_revoke(a->app->store, &v->tenant, &v->id);
    if (a->st == CF_OK) {
        v->ev->has_share = true;
        v->ev->share = v->id;
        event_share_node(a->app->store, v->ev, &v->tenant, &v->node);
        a->st = cf_audit_submit_wait(v->ev, NULL);
        v->ev = NULL;
    }
}

static void share_revoke_free(struct cf_async *a)
{
    struct share_revoke *v = (struct share_revoke *)a;
    cf_event_free(v->ev);
    free(v);
}

static void share_revoke_reply(struct cf_req *r, struct cf_async *a)
{
    if (a->st != CF_OK)
        cf_respond_status(r, a->st, NULL);
    else
        cf_respond_empty(r, 204);
}

void cf_h_share_revoke(struct cf_req *r)
{
    struct cf_id id;
    struct cf_share sh;
    if (cf_id_parse(r->params[0].base, r->params[0].len, &id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return;
    }
    enum cf_status st = cf_share_get(r->app->store, &r->who.user.tenant, &id, &sh);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    bool mine = cf_id_equal(&sh.creator, &r->who.user.id);
    struct cf_id node_id = sh.node;
    cf_share_clear(&sh);
    if (!mine) {
        /* Managers of the node may revoke anyone's link; everybody else learns nothing. */
        struct cf_actor a = cf_actor_of(r);
        struct cf_node node;
        enum cf_level level = CF_LEVEL_NONE;
        st = cf_acl_level(&a, &node_id, &node, &level);
        if (st == CF_OK)
            cf_node_clear(&node);
        if (st != CF_OK || level < CF_LEVEL_MANAGE) {
            cf_respond_status(r, st != CF_OK && st != CF_ENOTFOUND ? st : CF_ENOTFOUND, NULL);
            return;
        }
    }
    struct share_revoke *v = cf_xcalloc(1, sizeof *v);
    v->a.run = share_revoke_run;
    v->a.reply = share_revoke_reply;
    v->a.free = share_revoke_free;
    v->tenant = r->who.user.tenant;
    v->id = id;
    v->node = node_id;
    v->ev = cf_event_new(&v->tenant, "share.revoke", "ok");
    cf_event_from_req(v->ev, r);
    cf_async_start(r, &v->a);
}

/* ---- admins: every external link of the tenant, bulk revoke -------------------------------------- */

#define ADMIN_LIST_DEFAULT 100
#define ADMIN_LIST_MAX 1000
#define ADMIN_REVOKE_MAX 1000
#define ADMIN_SCAN_BATCH 256

/* The states a link's JSON reports (state_name), which ?state= filters on. */
static bool state_known(const char *s, size_t n)
{
    static const char *const names[] = {"active", "revoked", "expired", "suspended", "download_limit_reached",
                                        "links_disabled", NULL};
    for (size_t i = 0; names[i] != NULL; i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
            return true;
    return false;
}

/* An admin's view of a link: the creator's JSON (url and code only for the admin's own links), the
 * creator's username, and the node's name and type where the admin may see the node (the tenant
 * space; a private space's names stay its owner's: SPEC §3). */
static json_t *admin_share_json(struct cf_req *r, const struct cf_share *sh, bool allowed, const char *want,
                                size_t wantlen)
{
    struct cf_actor a = cf_actor_of(r);
    struct cf_node node;
    enum cf_level level = CF_LEVEL_NONE;
    struct figures f;
    bool have = cf_acl_level(&a, &sh->node, &node, &level) == CF_OK;
    link_figures(sh, have ? &node : NULL, allowed, &f);
    const char *state = state_name(f.state);
    if (want != NULL && (strlen(state) != wantlen || memcmp(state, want, wantlen) != 0)) {
        if (have)
            cf_node_clear(&node);
        return NULL;
    }
    json_t *o = share_json(r->app->cfg, sh, cf_id_equal(&sh->creator, &r->who.user.id), &f);
    struct cf_user u;
    if (cf_user_get(r->app->store, &sh->tenant, &sh->creator, &u) == CF_OK) {
        json_object_set_new(o, "creator_name", json_string(u.username));
        cf_user_clear(&u);
    } else {
        json_object_set_new(o, "creator_name", json_null()); /* a deleted user */
    }
    bool visible = have && level >= CF_LEVEL_VIEW;
    json_object_set_new(o, "node_name", visible ? json_string(node.name) : json_null());
    json_object_set_new(o, "node_type", have ? json_string(node.type == CF_NODE_FOLDER ? "folder" : "file") : json_null());
    if (have)
        cf_node_clear(&node);
    return o;
}

/* GET /api/v1/admin/shares?owner=&node=&state=&limit=&cursor=: the tenant's links in id order,
 * filtered; a page holds up to limit matches and next_cursor continues after the last link examined. */
void cf_h_admin_shares(struct cf_req *r)
{
    h2o_iovec_t v, sv = {NULL, 0};
    bool bad = false, by_owner, by_node = false, have_cursor = false;
    struct cf_id owner = {0}, node = {0}, cursor = {0};
    uint64_t limit = ADMIN_LIST_DEFAULT;
    if ((by_owner = cf_query(r, "owner", &v, &bad)) && !bad && cf_id_parse(v.base, v.len, &owner) != CF_OK) {
        cf_respond_status(r, CF_EINVAL, "owner must be a user id");
        return;
    }
    if (!bad && (by_node = cf_query(r, "node", &v, &bad)) && !bad && cf_id_parse(v.base, v.len, &node) != CF_OK) {
        cf_respond_status(r, CF_EINVAL, "node must be a node id");
        return;
    }
    if (!bad && cf_query(r, "state", &sv, &bad) && !bad && !state_known(sv.base, sv.len)) {
        cf_respond_status(r, CF_EINVAL,
                          "state must be active, revoked, expired, suspended, download_limit_reached or links_disabled");
        return;
    }
    if (!bad && cf_query(r, "limit", &v, &bad) && !bad &&
        (cf_parse_u64(v.base, v.len, ADMIN_LIST_MAX, &limit) != CF_OK || limit == 0)) {
        cf_respond_status(r, CF_EINVAL, "limit must be between 1 and 1000");
        return;
    }
    if (!bad && (have_cursor = cf_query(r, "cursor", &v, &bad)) && !bad && cf_id_parse(v.base, v.len, &cursor) != CF_OK) {
        cf_respond_status(r, CF_EINVAL, "invalid cursor");
        return;
    }
    if (bad) {
        cf_respond_status(r, CF_EINVAL, "malformed query string");
        return;
    }
    bool allowed = links_allowed(r->app->store, &r->who.user.tenant);
    json_t *arr = json_array();
    struct cf_id last = {0};
    bool more = true, stopped = false, any = have_cursor;
    if (have_cursor)
        last = cursor;
    while (more && !stopped) {
        struct cf_share *shs;
        size_t n;
        enum cf_status st =
            cf_share_list_tenant(r->app->store, &r->who.user.tenant, any ? &last : NULL, ADMIN_SCAN_BATCH, &shs, &n, &more);
        if (st != CF_OK) {
            json_decref(arr);
            cf_respond_status(r, st, NULL);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            if (!stopped && json_array_size(arr) == limit) {
                stopped = true; /* the page is full and another link follows */
                more = true;
            }
            if (!stopped) {
                last = shs[i].id;
                any = true;
                if ((!by_owner || cf_id_equal(&shs[i].creator, &owner)) && (!by_node || cf_id_equal(&shs[i].node, &node))) {
                    json_t *o = admin_share_json(r, &shs[i], allowed, sv.base, sv.len);
                    if (o != NULL)
                        json_array_append_new(arr, o);
                }
            }
            cf_share_clear(&shs[i]);
        }
        free(shs);
        if (json_array_size(arr) == limit && more)
            stopped = true;
    }
    json_t *next = stopped ? cf_json_id(&last) : json_null();
    cf_respond_json(r, 200, json_pack("{s:o, s:o}", "items", arr, "next_cursor", next));
}

struct admin_revoke {
    struct cf_async a;
    struct cf_id tenant;
    struct cf_id *ids;
    size_t n;
    size_t revoked;
    struct cf_event *proto; /* share.revoke as made at the request (actor, address); copied per link */
};

static void admin_revoke_free(struct cf_async *a)
{
    struct admin_revoke *v = (struct admin_revoke *)a;
    free(v->ids);
    cf_event_free(v->proto);
    free(v);
}

/* Validates every id first (a link of another tenant, or none, is not found: 404 and nothing
 * changes), then revokes those not yet revoked, one share.revoke event each. */
static void admin_revoke_run(struct cf_async *a)
{
    struct admin_revoke *v = (struct admin_revoke *)a;
    struct cf_store *store = a->app->store;
    bool *todo = cf_xcalloc(v->n + 1, sizeof *todo);
    struct cf_id *nodes = cf_xcalloc(v->n + 1, sizeof *nodes);
    a->st = CF_OK;
    for (size_t i = 0; i < v->n && a->st == CF_OK; i++) {
        struct cf_share sh;
        if ((a->st = cf_share_get(store, &v->tenant, &v->ids[i], &sh)) != CF_OK)
            break;
        todo[i] = sh.revoked_at == 0;
        nodes[i] = sh.node;
        cf_share_clear(&sh);
    }
    struct cf_event *pending = NULL; /* the last event is waited for: the writer keeps their order */
    for (size_t i = 0; i < v->n && a->st == CF_OK; i++) {
        if (!todo[i])
            continue;
        if ((a->st = cf_share_revoke(store, &v->tenant, &v->ids[i])) != CF_OK)
            break;
        v->revoked++;
        struct cf_event *e = cf_event_new(&v->tenant, "share.revoke", "ok");
        e->actor_type = v->proto->actor_type;
        e->actor = v->proto->actor;
        e->actor_name = v->proto->actor_name != NULL ? cf_xstrdup(v->proto->actor_name) : NULL;
        memcpy(e->ip, v->proto->ip, sizeof e->ip);
        e->user_agent = v->proto->user_agent != NULL ? cf_xstrdup(v->proto->user_agent) : NULL;
        e->has_share = true;
        e->share = v->ids[i];
        event_share_node(store, e, &v->tenant, &nodes[i]);
        cf_event_detail(e, "by", json_string("admin"));
        if (pending != NULL)
            cf_audit_submit(pending);
        pending = e;
    }
    if (pending != NULL) {
        enum cf_status st = cf_audit_submit_wait(pending, NULL);
        if (a->st == CF_OK)
            a->st = st;
    }
    free(todo);
    free(nodes);
}

static void admin_revoke_reply(struct cf_req *r, struct cf_async *a)
{
    struct admin_revoke *v = (struct admin_revoke *)a;
    if (a->st != CF_OK)
        cf_respond_status(r, a->st, a->st == CF_ENOTFOUND ? "ids names a link that does not exist in this tenant" : NULL);
    else
        cf_respond_json(r, 200, json_pack("{s:I}", "revoked", (json_int_t)v->revoked));
}

/* POST /api/v1/admin/shares/revoke {"ids": [...]}: 200 {"revoked": N} (already revoked links are
 * not counted); 404 for the whole request if any id is not a link of the tenant. */
void cf_h_admin_shares_revoke(struct cf_req *r)
{
    static const char *const allowed[] = {"ids", NULL};
    json_t *body;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed))
        goto out;
    json_t *ids = json_object_get(body, "ids");
    if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > ADMIN_REVOKE_MAX) {
        cf_respond_status(r, CF_EINVAL, "ids must be an array of 1 to 1000 link ids");
        goto out;
    }
    struct admin_revoke *v = cf_xcalloc(1, sizeof *v);
    v->a.run = admin_revoke_run;
    v->a.reply = admin_revoke_reply;
    v->a.free = admin_revoke_free;
    v->tenant = r->who.user.tenant;
    v->ids = cf_xcalloc(json_array_size(ids), sizeof *v->ids);
    size_t i;
    json_t *x;
    json_array_foreach(ids, i, x)
    {
        struct cf_id id;
        if (!json_is_string(x) || cf_id_parse(json_string_value(x), json_string_length(x), &id) != CF_OK) {
            cf_respond_status(r, CF_EINVAL, "ids must be an array of 1 to 1000 link ids");
            admin_revoke_free(&v->a);
            goto out;
        }
        bool dup = false;
        for (size_t k = 0; k < v->n && !dup; k++)
            dup = cf_id_equal(&v->ids[k], &id);
        if (!dup)
            v->ids[v->n++] = id;
    }
    v->proto = cf_event_new(&v->tenant, "share.revoke", "ok");
    cf_event_from_req(v->proto, r);
    cf_async_start(r, &v->a);
out:
    json_decref(body);
}

/* ---- recipients ------------------------------------------------------------------------------- */

/* What a recipient request works with, after every check passed. */
struct link {
    struct cf_share sh;
    struct cf_node root;        /* the shared node */
    uint8_t token_hash[CF_SHA256_LEN];
};

static void link_clear(struct link *l)
{
    cf_share_clear(&l->sh);
    cf_node_clear(&l->root);
}

static const char *state_message(enum cf_status st)
{
    switch (st) {
    case CF_EREVOKED:
        return "This link was revoked.";
    case CF_EEXPIRED:
        return "This link has expired.";
    case CF_EEXHAUSTED:
        return "This link has reached its download limit.";
    case CF_ESUSPENDED:
        return "This link is suspended.";
    case CF_EDISABLED:
        return "Share links are switched off for this organisation.";
    default:
        return "There is no such link.";
    }
}

/* An HTML error page for /s/{token} (fixed texts only: nothing of the request is echoed). */
static void respond_page_error(struct cf_req *r, enum cf_status st)
{
    const char *code;
    int http = cf_status_http(st, &code);
    char *html = cf_xasprintf("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                              "<title>Coffer</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>"
                              "<body class=\"recipient\"><main id=\"main\" class=\"centered\"><div class=\"card\">"
                              "<h1 class=\"brand\">Coffer</h1><p data-testid=\"share-error\" data-error=\"%s\" "
                              "class=\"note error\" role=\"alert\">%s</p>"
                              "<p class=\"muted small\">Ask the person who sent you the link for a new one.</p>"
                              "</div></main></body></html>",
                              code, state_message(st));
    cf_respond_text(r, http, "text/html; charset=utf-8", html, strlen(html));
    free(html);
}

/* The link behind /s/{token}, with every check of the file header comment; answers (JSON, or HTML
 * when html) and returns false on any failure. */
static bool link_or_respond(struct cf_req *r, struct link *l, bool html)
{
    enum cf_level level;
    memset(l, 0, sizeof *l);
    if (!cf_auth_token_hash(r->params[0].base, r->params[0].len, l->token_hash)) {
        html ? respond_page_error(r, CF_ENOTFOUND) : cf_respond_status(r, CF_ENOTFOUND, NULL);
        return false;
    }
    bool frozen;
    struct figures f;
    enum cf_status st = cf_share_find(r->app->store, l->token_hash, &l->sh);
    if (st == CF_OK)
        st = link_state(&l->sh, cf_now_ms());
    if (st == CF_OK && !links_allowed(r->app->store, &l->sh.tenant))
        st = CF_EDISABLED; /* the tenant's policy switched links off: every link, until switched on */
    if (st == CF_OK) {
        st = creator_level(r->app, &l->sh, &l->root, &level, &frozen);
        /* A link is a grant to outsiders, which only manage may make (SECURITY.md "The level rule"):
         * it lives while its creator holds manage on its node. */
        if (st == CF_OK && level < CF_LEVEL_MANAGE)
            st = frozen ? CF_ESUSPENDED : CF_EREVOKED; /* the creator was frozen or lost manage */
    }
    if (st == CF_OK) {
        link_figures(&l->sh, &l->root, true, &f);
        st = f.state; /* a file link whose byte budget is spent */
    }
    if (st != CF_OK) {
        link_clear(l);
        html ? respond_page_error(r, st) : cf_respond_status(r, st, state_message(st));
        return false;
    }
    return true;
}

/* The recipient's access token: Authorization: Bearer, or the link's cookie. */
static bool access_token(struct cf_req *r, h2o_iovec_t *tok)
{
    enum cf_cred c = cf_auth_credential(r, SHARE_COOKIE, tok);
    return c == CF_CRED_BEARER || c == CF_CRED_COOKIE;
}

/* A recipient request that needs an unlocked link: link_or_respond, then the access token, then
 * (internal links) a member session of the tenant. */
static bool recipient_or_respond(struct cf_req *r, struct link *l)
{
    h2o_iovec_t tok;
    uint8_t hash[CF_SHA256_LEN];
    struct cf_id tenant, share;
    uint64_t expires;
    if (!link_or_respond(r, l, false))
        return false;
    if (!access_token(r, &tok) || !cf_auth_token_hash(tok.base, tok.len, hash) ||
        cf_share_access_get(r->app->store, hash, &tenant, &share, &expires) != CF_OK ||
        !cf_id_equal(&share, &l->sh.id) || !cf_id_equal(&tenant, &l->sh.tenant) || expires <= cf_now_ms()) {
        link_clear(l);
        cf_respond_status(r, CF_EUNAUTH, "unlock the link with its extraction code first");
        return false;
    }
    if (l->sh.internal_only && !cf_auth_member_of(r, &l->sh.tenant)) {
        link_clear(l);
        cf_respond_status(r, CF_EUNAUTH, "this link is only for members of the organisation: log in first");
        return false;
    }
    return true;
}

/* A link no handler took (the pipeline refused the request after the recipient check, e.g. an
 * unknown query parameter) is cleared with the request. link_clear is idempotent. */
static void link_dispose(void *p)
{
    link_clear(p);
}

bool cf_share_recipient_or_respond(struct cf_req *r)
{
    struct link *l = h2o_mem_alloc_shared(&r->req->pool, sizeof *l, link_dispose);
    if (!recipient_or_respond(r, l))
        return false;
    r->share = l;
    return true;
}

/* The link the dispatcher authenticated for this CF_ROUTE_RECIPIENT route
 * (cf_share_recipient_or_respond), handed over to the handler, which clears it. */
static void take_link(struct cf_req *r, struct link *l)
{
    *l = *(struct link *)r->share;
    memset(r->share, 0, sizeof *l);
    r->share = NULL;
}

void cf_h_share_page(struct cf_req *r)
{
    struct link l;
    if (!link_or_respond(r, &l, true))
        return;
    link_clear(&l);
    cf_web_respond_file(r, "share.html");
}

struct unlock {
    struct cf_async a;
    uint8_t access_hash[CF_SHA256_LEN];
    char access[CF_TOKEN_TEXT_LEN + 1];
    struct cf_id tenant, share;
    uint64_t expires_at;
    char *cookie_path;
    json_t *reply; /* the body to send */
};

static void unlock_run(struct cf_async *a)
{
    struct unlock *u = (struct unlock *)a;
    a->st = cf_share_access_put(a->app->store, u->access_hash, &u->tenant, &u->share, u->expires_at);
}

static void unlock_reply(struct cf_req *r, struct cf_async *a)
{
    struct unlock *u = (struct unlock *)a;
    if (a->st != CF_OK) {
        cf_respond_status(r, a->st, NULL);
        return;
    }
    uint64_t now = cf_now_ms();
    char *cookie = cf_xasprintf(SHARE_COOKIE "=%s; Path=%s; HttpOnly; Secure; SameSite=Strict; Max-Age=%llu", u->access,
                                u->cookie_path, (unsigned long long)((u->expires_at - now) / 1000));
    cf_add_header(r, "set-cookie", cookie, strlen(cookie));
    cf_free_secret(cookie, strlen(cookie));
    json_t *o = u->reply;
    u->reply = NULL;
    json_object_set_new(o, "access_token", json_string(u->access));
    json_object_set_new(o, "expires_at", cf_json_time(u->expires_at));
    cf_respond_json(r, 200, o);
}

static void unlock_free(struct cf_async *a)
{
    struct unlock *u = (struct unlock *)a;
    json_decref(u->reply);
    free(u->cookie_path);
    cf_wipe(u->access, sizeof u->access);
    free(u);
}

static json_t *node_public_json(const struct cf_node *n)
{
    json_t *o = json_pack("{s:o, s:s, s:s, s:o}", "id", cf_json_id(&n->id), "type",
                          n->type == CF_NODE_FOLDER ? "folder" : "file", "name", n->name, "modified_at",
                          cf_json_time(n->modified_at));
    json_object_set_new(o, "size", n->type == CF_NODE_FILE ? json_integer((json_int_t)n->size) : json_null());
    json_object_set_new(o, "mime", n->type == CF_NODE_FILE ? json_string(n->mime) : json_null());
    return o;
}

struct bruteforce_alert {
    struct cf_store *store;
    struct cf_id tenant, creator, share;
    char ip[CF_IP_MAX];
};

static void bruteforce_alert_write(void *arg)
{
    struct bruteforce_alert *b = arg;
    json_t *d = json_pack("{s:o, s:s}", "share", cf_json_id(&b->share), "ip", b->ip);
    char *txt = json_dumps(d, JSON_COMPACT);
    if (cf_alert_add(b->store, &b->tenant, &b->creator, "alert.share_bruteforce", txt) != CF_OK)
        cf_log_warn("could not store a share brute-force alert");
    free(txt);
    json_decref(d);
    free(b);
}

/* share.unlock / share.unlock_failed, attributed to the link and the caller's address. */
static void unlock_event(struct cf_req *r, const struct link *l, const char *action, const char *result)
{
    struct cf_event *e = cf_event_new(&l->sh.tenant, action, result);
    cf_event_from_req(e, r);
    e->actor_type = CF_ACTOR_SHARE;
    e->actor = l->sh.id;
    e->has_share = true;
    e->share = l->sh.id;
    cf_event_node(e, &l->root);
    cf_audit_submit(e);
}

/* The attempt of one unlock, reserved in both code throttles before the code is checked. */
struct unlock_attempt {
    uint8_t ip_key[CF_ADDR_KEY_LEN]; /* the caller's address: IPv4, or IPv6 /64 (addr.h) */
    struct cf_throttle_ticket ip, link;
};

/* Reserves the attempt for the caller's address and for the link, so that a burst of parallel
 * unlocks has at most the limits checked; or, if either has used up its wrong codes, reserves
 * nothing and answers 429 with Retry-After. */
static bool unlock_reserved_or_respond(struct cf_req *r, const uint8_t *link_key, struct unlock_attempt *at)
{
    uint64_t now = cf_now_ms(), ra = 0, rb = 0;
    (void)cf_addr_key_text(r->ip, at->ip_key); /* an unreadable address: the shared all-zero key */
    bool ip_ok = cf_throttle_reserve(r->app->code_ip, at->ip_key, sizeof at->ip_key, now, &ra, &at->ip);
    /* Refused for the address: the link is only asked, for the larger Retry-After. */
    bool link_ok = ip_ok ? cf_throttle_reserve(r->app->code_link, link_key, CF_SHA256_LEN, now, &rb, &at->link)
                         : cf_throttle_allowed(r->app->code_link, link_key, CF_SHA256_LEN, now, &rb);
    if (ip_ok && link_ok)
        return true;
    cf_throttle_release(r->app->code_ip, at->ip_key, sizeof at->ip_key, &at->ip, now);
    char v[24];
    int n = snprintf(v, sizeof v, "%llu", (unsigned long long)(ra > rb ? ra : rb));
    cf_add_header(r, "retry-after", v, (size_t)n);
    cf_respond_status(r, CF_ERATE, "too many wrong codes; try again later");
    return false;
}

void cf_h_share_unlock(struct cf_req *r)
{
    static const char *const allowed[] = {"code", NULL};
    json_t *body;
    const char *code;
    size_t cl;
    struct link l;
    uint8_t mac[CF_SHA256_LEN];
    struct unlock_attempt at;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "code", true, &code, &cl))
        goto out;
    if (!link_or_respond(r, &l, false))
        goto out;
    if (l.sh.internal_only && !cf_auth_member_of(r, &l.sh.tenant)) {
        /* Before the code is even looked at: an outsider learns nothing of an internal link. */
        link_clear(&l);
        cf_respond_status(r, CF_EUNAUTH, "this link is only for members of the organisation: log in first");
        goto out;
    }
    if (!unlock_reserved_or_respond(r, l.token_hash, &at)) {
        /* Not logged one by one: a flood of refused attempts must not flood the log (the wrong codes
         * up to the limit and the alert are logged). */
        link_clear(&l);
        goto out;
    }
    bool right = cl >= 4 && cl <= CF_SHARE_CODE_MAX &&
                 cf_share_code_mac(r->app->store, &l.sh.tenant, &l.sh.id, code, cl, mac) == CF_OK &&
                 cf_ct_equal(mac, l.sh.code_mac, sizeof mac);
    if (!right) {
        /* A wrong code keeps both reserved attempts as its failures. If it held the last one the
         * link had in its hourly budget, the budget just ran out: tell the creator (once per
         * exhaustion, however many wrong codes were checked at the same time). */
        if (at.link.nth == r->app->cfg->shares.code_failures_per_link) {
            struct bruteforce_alert *b = cf_xcalloc(1, sizeof *b);
            b->store = r->app->store;
            b->tenant = l.sh.tenant;
            b->creator = l.sh.creator;
            b->share = l.sh.id;
            memcpy(b->ip, r->ip, sizeof b->ip);
            cf_work_background(bruteforce_alert_write, b);
            unlock_event(r, &l, "alert.share_bruteforce", "ok");
        }
        unlock_event(r, &l, "share.unlock_failed", "denied");
        link_clear(&l);
        cf_respond_error(r, 403, "wrong_code", "the extraction code is wrong");
        goto out;
    }
    /* The right code: the attempt was no guess to count. */
    uint64_t now = cf_now_ms();
    cf_throttle_release(r->app->code_ip, at.ip_key, sizeof at.ip_key, &at.ip, now);
    cf_throttle_release(r->app->code_link, l.token_hash, CF_SHA256_LEN, &at.link, now);
    struct unlock *u = cf_xcalloc(1, sizeof *u);
    u->a.run = unlock_run;
    u->a.reply = unlock_reply;
    u->a.free = unlock_free;
    cf_auth_new_token(u->access, u->access_hash);
    u->tenant = l.sh.tenant;
    u->share = l.sh.id;
    u->expires_at = now + ACCESS_TTL_MS < l.sh.expires_at ? now + ACCESS_TTL_MS : l.sh.expires_at;
    u->cookie_path = cf_xasprintf("/s/%.*s", (int)r->params[0].len, r->params[0].base);
    u->reply = json_pack("{s:s, s:o}", "permission", perm_name(l.sh.permission), "node", node_public_json(&l.root));
    unlock_event(r, &l, "share.unlock", "ok");
    link_clear(&l);
    cf_async_start(r, &u->a);
out:
    json_decref(body);
}

void cf_h_share_info(struct cf_req *r)
{
    struct link l;
    take_link(r, &l);
    json_t *o = json_pack("{s:s, s:o, s:o, s:b}", "permission", perm_name(l.sh.permission), "expires_at",
                          cf_json_time(l.sh.expires_at), "node", node_public_json(&l.root), "internal_only",
                          l.sh.internal_only);
    /* A file link: whole downloads its budget still allows (⌊bytes left / size⌋); a folder link's
     * budgets are per file: null, as for no limit. */
    struct figures f;
    link_figures(&l.sh, &l.root, true, &f);
    json_object_set_new(o, "downloads_left", l.root.type == CF_NODE_FILE && l.sh.max_downloads != 0
                                                 ? json_integer((json_int_t)(f.downloads < l.sh.max_downloads
                                                                                 ? l.sh.max_downloads - f.downloads
                                                                                 : 0))
                                                 : json_null());
    /* What the recipient page tiles over an inline preview: recipients have no name, so the link
     * (its id, as in the provenance log) and the address stand for them. */
    char sid[CF_ID_HEX_LEN + 1];
    cf_id_hex(&l.sh.id, sid);
    char *name = cf_xasprintf("Link recipient %.8s", sid);
    json_object_set_new(o, "watermark", json_pack("{s:s, s:s, s:o}", "name", name, "ip", r->ip, "at",
                                                  cf_json_time(cf_now_ms())));
    free(name);
    link_clear(&l);
    cf_respond_json(r, 200, o);
}

/* Serves node n of link l: download or inline view. Either way the response's bytes are drawn from
 * the link's byte budget, atomically, right before the first byte (cf_transfer_opts); HEAD, 304 and
 * 416 carry none and draw nothing. */
static void serve(struct cf_req *r, struct link *l, const struct cf_node *n, bool view)
{
    /* A view-only link gets rendered pages only (/pages): never the original, inline or not
     * (docs/SECURITY.md "View-only"). */
    if (l->sh.permission != CF_SHARE_DOWNLOAD) {
        cf_respond_status(r, CF_EDENIED, view ? "this link allows viewing only: use its pages"
                                              : "this link allows viewing only");
        return;
    }
    h2o_iovec_t ua = cf_header(r, "user-agent");
    char *uas = ua.base != NULL ? cf_text_clean(ua.base, ua.len, 512) : NULL;
    struct cf_transfer t = {
        .store = r->app->store,
        .action = view ? "share.view" : "share.download",
        .tenant = l->sh.tenant,
        .node = n->id,
        .actor_type = CF_ACTOR_SHARE,
        .actor = l->sh.id,
        .has_share = true,
        .share = l->sh.id,
        .count_share = true, /* the view shows the original's bytes too (renditions would not draw) */
        .ip = r->ip,
        .user_agent = uas,
        .size = n->size,
    };
    struct cf_serve_opts o = {.view = view};
    cf_transfer_opts(&t, &o);
    free(uas);
    cf_serve_file(r, &l->sh.tenant, n, &o);
}

void cf_h_share_content(struct cf_req *r)
{
    struct link l;
    take_link(r, &l);
    if (l.root.type != CF_NODE_FILE)
        cf_respond_status(r, CF_EINVAL, "this link shares a folder: use /files/{id}/content");
    else
        serve(r, &l, &l.root, false);
    link_clear(&l);
}

void cf_h_share_view(struct cf_req *r)
{
    struct link l;
    take_link(r, &l);
    if (l.root.type != CF_NODE_FILE)
        cf_respond_status(r, CF_EINVAL, "this link shares a folder: use /files/{id}/view");
    else
        serve(r, &l, &l.root, true);
    link_clear(&l);
}

/* Loads node id if it lies inside the shared folder (the folder itself included); CF_ENOTFOUND
 * for anything outside, trashed, or gone. */
static enum cf_status node_in_link(struct cf_store *store, const struct link *l, const struct cf_id *id, struct cf_node *out)
{
    struct cf_node cur = {0};
    enum cf_status st = cf_node_get(store, &l->sh.tenant, id, out);
    if (st != CF_OK)
        return st;
    if (out->trashed_at != 0)
        goto outside;
    if (cf_id_equal(&out->id, &l->sh.node))
        return CF_OK;
    struct cf_id walk = out->parent;
    for (int depth = 0; depth < 1024 && !cf_id_is_zero(&walk); depth++) {
        if (cf_id_equal(&walk, &l->sh.node)) {
            cf_node_clear(&cur);
            return CF_OK;
        }
        cf_node_clear(&cur);
        if ((st = cf_node_get(store, &l->sh.tenant, &walk, &cur)) != CF_OK) {
            cf_node_clear(out);
            return st == CF_ENOTFOUND ? CF_ECORRUPT : st; /* a live node's parent must exist */
        }
        if (cur.trashed_at != 0)
            break;
        walk = cur.parent;
    }
    cf_node_clear(&cur);
outside:
    cf_node_clear(out);
    return CF_ENOTFOUND;
}

void cf_h_share_children(struct cf_req *r)
{
    struct link l;
    h2o_iovec_t v;
    bool bad = false, has_more;
    struct cf_node folder;
    uint64_t limit = 100;
    uint8_t cursor[CF_CURSOR_LEN], next[CF_CURSOR_LEN];
    bool have_cursor = false;
    size_t clen;
    take_link(r, &l);
    if (l.root.type != CF_NODE_FOLDER) {
        link_clear(&l);
        cf_respond_status(r, CF_EINVAL, "this link shares a file");
        return;
    }
    struct cf_id parent = l.root.id;
    if (cf_query(r, "parent", &v, &bad) && cf_id_parse(v.base, v.len, &parent) != CF_OK) {
        link_clear(&l);
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return;
    }
    if (!bad && cf_query(r, "limit", &v, &bad) &&
        (cf_parse_u64(v.base, v.len, CHILDREN_MAX_LIMIT, &limit) != CF_OK || limit == 0))
        bad = true;
    if (!bad && cf_query(r, "cursor", &v, &bad)) {
        if (cf_hex_decode(v.base, v.len, cursor, sizeof cursor, &clen) != CF_OK || clen != CF_CURSOR_LEN)
            bad = true;
        have_cursor = true;
    }
    if (bad) {
        link_clear(&l);
        cf_respond_status(r, CF_EINVAL, "malformed query (parent, limit 1-1000, cursor)");
        return;
    }
    enum cf_status st = node_in_link(r->app->store, &l, &parent, &folder);
    if (st == CF_OK && folder.type != CF_NODE_FOLDER) {
        cf_node_clear(&folder);
        st = CF_EINVAL;
    }
    if (st != CF_OK) {
        link_clear(&l);
        cf_respond_status(r, st, st == CF_EINVAL ? "not a folder" : NULL);
        return;
    }
    struct cf_node *items;
    size_t cnt;
    st = cf_children_list(r->app->store, &l.sh.tenant, &folder.id, have_cursor ? cursor : NULL, (size_t)limit, &items,
                          &cnt, next, &has_more);
    cf_node_clear(&folder);
    link_clear(&l);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < cnt; i++) {
        json_array_append_new(arr, node_public_json(&items[i]));
        cf_node_clear(&items[i]);
    }
    free(items);
    char hex[2 * CF_CURSOR_LEN + 1];
    if (has_more)
        cf_hex_encode(next, sizeof next, hex);
    cf_respond_json(r, 200, json_pack("{s:o, s:o}", "items", arr, "next_cursor", has_more ? json_string(hex) : json_null()));
}

static void share_file(struct cf_req *r, bool view)
{
    struct link l;
    struct cf_id id;
    struct cf_node n;
    take_link(r, &l);
    enum cf_status st = l.root.type != CF_NODE_FOLDER || cf_id_parse(r->params[1].base, r->params[1].len, &id) != CF_OK
                            ? CF_ENOTFOUND
                            : node_in_link(r->app->store, &l, &id, &n);
    if (st == CF_OK && n.type == CF_NODE_FILE && l.sh.max_downloads != 0 && n.size != 0) {
        /* Each file of a folder link has its own budget; once it is spent every route of that file
         * answers 410, HEAD included, as for a file link. */
        struct cf_share_tally t;
        st = cf_share_member_tally(r->app->store, &l.sh.tenant, &l.sh.id, &n.id, &t);
        if (st == CF_OK && cf_share_tally_left(l.sh.max_downloads, n.size, &t) == 0)
            st = CF_EEXHAUSTED;
        if (st != CF_OK)
            cf_node_clear(&n);
    }
    if (st != CF_OK) {
        link_clear(&l);
        cf_respond_status(r, st, st == CF_EEXHAUSTED ? state_message(st) : NULL);
        return;
    }
    serve(r, &l, &n, view);
    cf_node_clear(&n);
    link_clear(&l);
}

void cf_h_share_file_content(struct cf_req *r)
{
    share_file(r, false);
}

void cf_h_share_file_view(struct cf_req *r)
{
    share_file(r, true);
}

/* GET /s/{token}/zip[?parent=ID]: the linked folder, or a folder inside it, as one ZIP archive
 * (zip.c: every file drawn from its own budget, one download event each). */
void cf_h_share_zip(struct cf_req *r)
{
    struct link l;
    struct cf_node folder;
    struct cf_id id;
    h2o_iovec_t v;
    bool bad = false;
    take_link(r, &l);
    id = l.root.id;
    enum cf_status st = l.root.type != CF_NODE_FOLDER ? CF_EINVAL : CF_OK;
    if (st == CF_OK && cf_query(r, "parent", &v, &bad) && cf_id_parse(v.base, v.len, &id) != CF_OK)
        st = CF_ENOTFOUND;
    if (st == CF_OK && bad)
        st = CF_EINVAL;
    if (st == CF_OK && l.sh.permission != CF_SHARE_DOWNLOAD)
        st = CF_EDENIED; /* a view-only link never gives the originals (docs/SECURITY.md "View-only") */
    if (st == CF_OK && (st = node_in_link(r->app->store, &l, &id, &folder)) == CF_OK && folder.type != CF_NODE_FOLDER) {
        cf_node_clear(&folder);
        st = CF_EINVAL;
    }
    if (st != CF_OK) {
        cf_respond_status(r, st, st == CF_EDENIED  ? "this link allows viewing only"
                                 : st == CF_EINVAL ? "not a folder (or a malformed query)"
                                                   : NULL);
        link_clear(&l);
        return;
    }
    struct cf_zip_request z = {.tenant = l.sh.tenant, .root = &folder, .level = CF_LEVEL_DOWNLOAD, .link = true,
                               .share = l.sh.id};
    cf_zip_serve(r, &z);
    cf_node_clear(&folder);
    link_clear(&l);
}

/* ---- pages (pages.c) ------------------------------------------------------------------------ */

/* The link's file for a pages route: the shared file (id_param 0) or a file inside the shared
 * folder (path capture id_param); the link's recipient as the viewer. Answers and returns false on
 * failure. Pages draw nothing from a link's byte budget: they are not the original's bytes. */
static bool pages_target_or_respond(struct cf_req *r, size_t id_param, struct cf_viewer *v, struct cf_node *n)
{
    struct link l;
    struct cf_id id;
    enum cf_status st;
    take_link(r, &l);
    if (id_param == 0) {
        st = l.root.type == CF_NODE_FILE ? CF_OK : CF_EINVAL;
        if (st == CF_OK)
            st = cf_node_get(r->app->store, &l.sh.tenant, &l.root.id, n);
    } else {
        st = l.root.type != CF_NODE_FOLDER || cf_id_parse(r->params[id_param].base, r->params[id_param].len, &id) != CF_OK
                 ? CF_ENOTFOUND
                 : node_in_link(r->app->store, &l, &id, n);
    }
    if (st != CF_OK) {
        link_clear(&l);
        cf_respond_status(r, st, st == CF_EINVAL ? "this link shares a folder: use /files/{id}/pages" : NULL);
        return false;
    }
    cf_pages_viewer_init(v, r);
    v->tenant = l.sh.tenant;
    v->actor_type = CF_ACTOR_SHARE;
    v->actor = l.sh.id;
    char sid[CF_ID_HEX_LEN + 1];
    cf_id_hex(&l.sh.id, sid);
    snprintf(v->label, sizeof v->label, "Link recipient %.8s", sid); /* as /info's watermark */
    link_clear(&l);
    return true;
}

static void share_pages(struct cf_req *r, size_t id_param, bool image)
{
    struct cf_viewer v;
    struct cf_node n;
    if (!pages_target_or_respond(r, id_param, &v, &n))
        return;
    if (image)
        cf_pages_image(r, &v, &n, r->params[id_param + 1]);
    else
        cf_pages_summary(r, &v, &n);
    cf_node_clear(&n);
}

void cf_h_share_pages(struct cf_req *r)
{
    share_pages(r, 0, false);
}

void cf_h_share_pages_image(struct cf_req *r)
{
    share_pages(r, 0, true);
}

void cf_h_share_file_pages(struct cf_req *r)
{
    share_pages(r, 1, false);
}

void cf_h_share_file_pages_image(struct cf_req *r)
{
    share_pages(r, 1, true);
}

/* Applies one change to every live (unrevoked) link of creator; *n counts them. */
static enum cf_status each_live_link_of(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *creator,
                                        const struct cf_id *heir, size_t *n)
{
    struct cf_share *shs;
    size_t cnt;
    *n = 0;
    enum cf_status st = cf_share_list(store, tenant, false, creator, &shs, &cnt);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; i < cnt; i++) {
        if (st == CF_OK && shs[i].revoked_at == 0) {
            st = heir != NULL ? cf_share_set_creator(store, tenant, &shs[i].id, heir)
                              : cf_share_revoke(store, tenant, &shs[i].id);
            *n += st == CF_OK;
        }
        cf_share_clear(&shs[i]);
    }
    free(shs);
    return st;
}

enum cf_status cf_share_revoke_all_of(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *creator,
                                      size_t *n)
{
    return each_live_link_of(store, tenant, creator, NULL, n);
}

enum cf_status cf_share_hand_over_all_of(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *creator,
                                         const struct cf_id *heir, size_t *n)
{
    return each_live_link_of(store, tenant, creator, heir, n);
}

enum cf_status cf_share_suspend_all_of(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *creator,
                                       bool suspend, size_t *changed)
{
    struct cf_share *shs;
    size_t n;
    *changed = 0;
    enum cf_status st = cf_share_list(store, tenant, false, creator, &shs, &n);
    if (st != CF_OK)
        return st;
    uint64_t now = cf_now_ms();
    for (size_t i = 0; i < n; i++) {
        bool ch = false;
        if (st == CF_OK && shs[i].revoked_at == 0 && (shs[i].suspended_at != 0) != suspend)
            st = cf_share_set_suspended(store, tenant, &shs[i].id, suspend, now, &ch);
        *changed += ch;
        cf_share_clear(&shs[i]);
    }
    free(shs);
    return st;
}
