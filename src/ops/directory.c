/*
 * directory.c: the directory sync (see directory.h). Three phases: read the directory whole (any
 * failure: stop, nothing changed), then walk it against the store, deciding and (unless dry-run)
 * applying each change with its provenance event, then report. Sizes: thousands to tens of
 * thousands of users; matching is hashed (struct strmap below: directory entries to Coffer users by
 * directory id and by folded username, group members to users by canonical DN), so a run is linear
 * in users plus memberships (measured: docs/OPERATIONS.md, "Directory", "Scale").
 */
#include "directory.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "audit.h"
#include "auth.h"
#include "http.h"
#include "ldapc.h"
#include "log.h"
#include "ops.h"
#include "share.h"
#include "validate.h"


/* One user entry of the directory. */
struct duser {
    char *dn, *dnnorm;  /* as given; canonical lower case (group members are matched on it) */
    char *id;           /* entryUUID, else the DN */
    char *username, *display, *email;
    bool disabled;      /* matches directory.users.disabled */
    char **ous;         /* the ou chain below users.base, outermost first */
    size_t nous;
    struct cf_id uid;   /* the Coffer user it is (zero: none yet, or skipped) */
};

/* One group entry. */
struct dgroup {
    char *dn, *id, *name;
    char **members;     /* member DNs, canonical lower case */
    size_t nmembers;
};

struct sync {
    const struct cf_config *cfg;
    struct cf_store *store;
    struct cf_id tenant;
    bool dry;
    struct duser *users;
    size_t nusers, capusers;
    char **disabled;    /* canonical DNs of disabled entries, sorted */
    size_t ndisabled, capdisabled;
    struct dgroup *groups;
    size_t ngroups, capgroups;
    struct cf_dept *depts; /* the tenant's departments, and those this run created */
    size_t ndepts, capdepts;
    json_t *report;
    json_t *u_created, *u_updated, *u_frozen, *u_reactivated, *u_offboarded, *u_skipped;
    json_t *g_created, *g_updated, *g_emptied, *d_created, *memberships;
    enum cf_status st;  /* the first store error */
};

static pthread_mutex_t sync_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- a string → index map for the run (open addressing, linear probing; keys borrowed) ---------- */

struct strmap {
    size_t cap;         /* a power of two, at least twice the entries */
    const char **keys;  /* NULL: empty slot */
    size_t *vals;
    bool fold;          /* ASCII case folded, as strcasecmp compares */
};

static uint64_t strmap_hash(const struct strmap *m, const char *k)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)k; *p != '\0'; p++) {
        unsigned char c = m->fold && *p >= 'A' && *p <= 'Z' ? (unsigned char)(*p + 32) : *p;
        h = (h ^ c) * 1099511628211ull;
    }
    return h;
}

static void strmap_init(struct strmap *m, size_t n, bool fold)
{
    m->cap = 16;
    while (m->cap < 2 * n)
        m->cap *= 2;
    m->keys = cf_xcalloc(m->cap, sizeof *m->keys);
    m->vals = cf_xcalloc(m->cap, sizeof *m->vals);
    m->fold = fold;
}

static bool strmap_eq(const struct strmap *m, const char *a, const char *b)
{
    return m->fold ? strcasecmp(a, b) == 0 : strcmp(a, b) == 0;
}

/* Adds k → v unless k is there already (the first one stays, as a scan in order would find it). */
static void strmap_put(struct strmap *m, const char *k, size_t v)
{
    size_t i = (size_t)strmap_hash(m, k) & (m->cap - 1);
    while (m->keys[i] != NULL) {
        if (strmap_eq(m, m->keys[i], k))
            return;
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = k;
    m->vals[i] = v;
}

/* The value of k, or SIZE_MAX. */
static size_t strmap_get(const struct strmap *m, const char *k)
{
    size_t i = (size_t)strmap_hash(m, k) & (m->cap - 1);
    while (m->keys[i] != NULL) {
        if (strmap_eq(m, m->keys[i], k))
            return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return SIZE_MAX;
}

static void strmap_free(struct strmap *m)
{
    free(m->keys);
    free(m->vals);
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- phase 1: reading the directory ------------------------------------------------------------ */

/* v (taken) as cf_text_clean makes it, at most max bytes; NULL stays NULL, empty becomes NULL. */
static char *clean(char *v, size_t max)
{
    if (v == NULL)
        return NULL;
    char *c = v[0] != '\0' ? cf_text_clean(v, strlen(v), max) : NULL;
    free(v);
    return c;
}

static int got_user(void *ctx, struct cf_ldap *l, struct cf_ldap_entry *e)
{
    struct sync *s = ctx;
    const struct cf_config *cfg = s->cfg;
    char *username = cf_ldap_entry_value(l, e, cfg->directory.user_username);
    if (username == NULL || !cf_user_valid_name(username, strlen(username))) {
        json_array_append_new(s->u_skipped,
                              json_pack("{s:s, s:s}", "dn", cf_ldap_entry_dn(e), "reason",
                                        username == NULL ? "no username attribute"
                                                         : "the username is not [A-Za-z0-9._@-]{1,64}"));
        free(username);
        return 0;
    }
    if (s->nusers == s->capusers) {
        s->capusers = s->capusers ? 2 * s->capusers : 256;
        s->users = cf_xrealloc(s->users, s->capusers * sizeof *s->users);
    }
    struct duser *u = &s->users[s->nusers++];
    memset(u, 0, sizeof *u);
    u->dn = cf_xstrdup(cf_ldap_entry_dn(e));
    u->dnnorm = cf_ldap_dn_norm(u->dn);
    u->id = cf_ldap_entry_value(l, e, "entryUUID");
    if (u->id == NULL)
        u->id = cf_xstrdup(u->dn);
    u->username = username;
    /* Free text from the directory: valid UTF-8 without controls (invalid bytes become '?'), cut
     * on a character boundary, so that it always encodes as JSON and displays as what it is. */
    u->display = clean(cf_ldap_entry_value(l, e, cfg->directory.user_display_name), 255);
    u->email = clean(cf_ldap_entry_value(l, e, cfg->directory.user_email), 254);
    if (cfg->directory.departments == CF_DIR_DEPTS_DN)
        (void)cf_ldap_dn_below(u->dn, cfg->directory.user_base, &u->ous, &u->nous);
    return 0;
}

static int got_disabled(void *ctx, struct cf_ldap *l, struct cf_ldap_entry *e)
{
    (void)l;
    struct sync *s = ctx;
    if (s->ndisabled == s->capdisabled) {
        s->capdisabled = s->capdisabled ? 2 * s->capdisabled : 64;
        s->disabled = cf_xrealloc(s->disabled, s->capdisabled * sizeof *s->disabled);
    }
    s->disabled[s->ndisabled++] = cf_ldap_dn_norm(cf_ldap_entry_dn(e));
    return 0;
}

static int got_group(void *ctx, struct cf_ldap *l, struct cf_ldap_entry *e)
{
    struct sync *s = ctx;
    char *name = clean(cf_ldap_entry_value(l, e, s->cfg->directory.group_name), 128);
    if (name == NULL || name[0] == '\0' || strlen(name) > 128) {
        json_array_append_new(s->u_skipped, json_pack("{s:s, s:s}", "dn", cf_ldap_entry_dn(e), "reason",
                                                      "a group without a name of 1 to 128 bytes"));
        free(name);
        return 0;
    }
    if (s->ngroups == s->capgroups) {
        s->capgroups = s->capgroups ? 2 * s->capgroups : 64;
        s->groups = cf_xrealloc(s->groups, s->capgroups * sizeof *s->groups);
    }
    struct dgroup *g = &s->groups[s->ngroups++];
    memset(g, 0, sizeof *g);
    g->dn = cf_xstrdup(cf_ldap_entry_dn(e));
    g->id = cf_ldap_entry_value(l, e, "entryUUID");
    if (g->id == NULL)
        g->id = cf_xstrdup(g->dn);
    g->name = name;
    g->nmembers = cf_ldap_entry_values(l, e, s->cfg->directory.group_members, &g->members);
    for (size_t i = 0; i < g->nmembers; i++) {
        char *n = cf_ldap_dn_norm(g->members[i]);
        free(g->members[i]);
        g->members[i] = n;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads users, disabled users and groups. CF_EUNAVAIL with *err on any failure. */
static enum cf_status read_directory(struct sync *s, char **err)
{
    const struct cf_config *cfg = s->cfg;
    struct cf_ldap *l;
    enum cf_status st = cf_ldap_open(cfg, &l, err);
    if (st != CF_OK)
        return st;
    const char *uattrs[] = {cfg->directory.user_username, cfg->directory.user_display_name,
                            cfg->directory.user_email, "entryUUID", NULL};
    st = cf_ldap_search(l, cfg->directory.user_base, cfg->directory.user_filter, uattrs, got_user, s, err);
    if (st == CF_OK && cfg->directory.user_disabled != NULL) {
        static const char *const none[] = {"1.1", NULL};
        char *f = cf_xasprintf("(&%s%s)", cfg->directory.user_filter, cfg->directory.user_disabled);
        st = cf_ldap_search(l, cfg->directory.user_base, f, none, got_disabled, s, err);
        free(f);
        if (s->ndisabled > 1)
            qsort(s->disabled, s->ndisabled, sizeof *s->disabled, cmp_str);
    }
    if (st == CF_OK && cfg->directory.group_base != NULL) {
        const char *gattrs[] = {cfg->directory.group_name, cfg->directory.group_members, "entryUUID", NULL};
        st = cf_ldap_search(l, cfg->directory.group_base, cfg->directory.group_filter, gattrs, got_group, s, err);
    }
    cf_ldap_close(l);
    if (st != CF_OK)
        return CF_EUNAVAIL;
    for (size_t i = 0; i < s->nusers; i++)
        s->users[i].disabled = s->ndisabled > 0 && bsearch(&s->users[i].dnnorm, s->disabled, s->ndisabled,
                                                           sizeof *s->disabled, cmp_str) != NULL;
    return CF_OK;
}

/* ---- events ------------------------------------------------------------------------------------ */

static struct cf_event *dir_event(struct sync *s, const char *action)
{
    struct cf_event *e = cf_event_new(&s->tenant, action, "ok");
    e->actor_type = CF_ACTOR_SYSTEM;
    e->actor_name = cf_xstrdup("directory");
    cf_event_detail(e, "source", json_string("directory"));
    return e;
}

static enum cf_status user_event(struct sync *s, const char *action, const struct cf_user *u, const char *reason,
                                 json_t *extra)
{
    struct cf_event *e = dir_event(s, action);
    cf_event_detail(e, "user", cf_json_id(&u->id));
    cf_event_detail(e, "username", json_string(u->username));
    cf_event_detail(e, "status", json_string(cf_user_status_name(u->status)));
    if (reason != NULL)
        cf_event_detail(e, "reason", json_string(reason));
    if (extra != NULL) {
        const char *k;
        json_t *v;
        json_object_foreach(extra, k, v) cf_event_detail(e, k, json_incref(v));
        json_decref(extra);
    }
    return cf_audit_submit_wait(e, NULL);
}

/* Records the first store error; the run goes on with the next entry. */
static void note(struct sync *s, enum cf_status st, const char *what, const char *name)
{
    if (st == CF_OK)
        return;
    cf_log_warn("directory: %s %s: %s", what, name, cf_status_name(st));
    if (s->st == CF_OK)
        s->st = st;
}

/* ---- departments ------------------------------------------------------------------------------- */

/* The department named name below parent (zero: top), or NULL. */
static const struct cf_dept *dept_child(struct sync *s, const struct cf_id *parent, const char *name)
{
    for (size_t i = 0; i < s->ndepts; i++)
        if (cf_id_equal(&s->depts[i].parent, parent) && strcasecmp(s->depts[i].name, name) == 0)
            return &s->depts[i];
    return NULL;
}

/* The department of path ous[0..n) (outermost first), created as needed (dry-run: reported, and
 * *out stays zero when it does not exist yet). False if a department could not be made: the user's
 * departments are then left as they are. */
static bool dept_for(struct sync *s, char **ous, size_t n, struct cf_id *out)
{
    struct cf_id parent = {0};
    char *path = cf_xstrdup("");
    bool exists = true;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n && i < CF_DEPT_MAX_DEPTH; i++) {
        char *p = cf_xasprintf("%s%s%s", path, i > 0 ? "/" : "", ous[i]); /* as GET /admin/departments */
        free(path);
        path = p;
        const struct cf_dept *d = exists ? dept_child(s, &parent, ous[i]) : NULL;
        if (d != NULL) {
            parent = d->id;
            continue;
        }
        exists = false;
        bool reported = false;
        for (size_t k = 0; k < json_array_size(s->d_created) && !reported; k++)
            reported = strcmp(json_string_value(json_array_get(s->d_created, k)), path) == 0;
        if (s->dry) {
            if (!reported)
                json_array_append_new(s->d_created, json_string(path));
            continue;
        }
        struct cf_dept nd;
        enum cf_status st = cf_dept_create(s->store, &s->tenant, cf_id_is_zero(&parent) ? NULL : &parent, ous[i],
                                           CF_SOURCE_DIRECTORY, &nd);
        if (st == CF_EINVAL) {
            /* A name the department tree refuses (too long, too deep): skipped, reported, not an error. */
            json_array_append_new(s->u_skipped, json_pack("{s:s, s:s}", "dn", path, "reason",
                                                          "a department name or depth the tree refuses"));
            free(path);
            return false;
        }
        if (st != CF_OK) {
            note(s, st, "creating department", path);
            free(path);
            return false;
        }
        if (s->ndepts == s->capdepts) {
            s->capdepts = s->capdepts ? 2 * s->capdepts : 64;
            s->depts = cf_xrealloc(s->depts, s->capdepts * sizeof *s->depts);
        }
        s->depts[s->ndepts++] = nd;
        parent = nd.id;
        exists = true;
        json_array_append_new(s->d_created, json_string(path));
        struct cf_event *e = dir_event(s, "dept.create");
        cf_event_detail(e, "department", cf_json_id(&nd.id));
        cf_event_detail(e, "name", json_string(nd.name));
        cf_event_detail(e, "parent", cf_json_id(&nd.parent));
        cf_event_detail(e, "path", json_string(path));
        note(s, cf_audit_submit_wait(e, NULL), "recording department", path);
    }
    if (exists)
        *out = parent;
    free(path);
    return true;
}

/* The user's primary department made the one its DN names (others kept). */
static void sync_user_dept(struct sync *s, struct duser *du)
{
    if (s->cfg->directory.departments != CF_DIR_DEPTS_DN || (cf_id_is_zero(&du->uid) && !s->dry))
        return; /* not a directory department tree, or the user could not be created */
    struct cf_id want = {0}, primary = {0}, *others = NULL;
    size_t nothers = 0;
    if (!dept_for(s, du->ous, du->nous, &want))
        return;
    if (cf_id_is_zero(&du->uid) || (s->dry && cf_id_is_zero(&want) && du->nous > 0)) {
        /* dry run: a user it would create, or a department it would create */
        if (du->nous > 0)
            json_array_append_new(s->memberships, json_string(du->username));
        return;
    }
    enum cf_status st = cf_user_depts(s->store, &s->tenant, &du->uid, &primary, &others, &nothers);
    if (st != CF_OK) {
        note(s, st, "reading the departments of", du->username);
        return;
    }
    if (!cf_id_equal(&primary, &want)) {
        json_array_append_new(s->memberships, json_string(du->username));
        if (!s->dry) {
            st = cf_user_set_depts(s->store, &s->tenant, &du->uid, cf_id_is_zero(&want) ? NULL : &want, others,
                                   nothers);
            note(s, st, "setting the department of", du->username);
            if (st == CF_OK) {
                struct cf_event *e = dir_event(s, "user.departments");
                cf_event_detail(e, "user", cf_json_id(&du->uid));
                cf_event_detail(e, "username", json_string(du->username));
                cf_event_detail(e, "primary", cf_json_id(&want));
                cf_event_detail(e, "previous", cf_json_id(&primary));
                note(s, cf_audit_submit_wait(e, NULL), "recording the department of", du->username);
            }
        }
    }
    free(others);
}

/* ---- users ------------------------------------------------------------------------------------- */

/* What the sync changes in a directory user, applied inside cf_user_update. */
struct upd {
    const struct duser *du;  /* NULL: status only */
    bool set_status;
    enum cf_user_status status;
    bool set_gone;
    uint64_t gone_at;
};

static bool str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v != NULL ? cf_xstrdup(v) : NULL;
}

static enum cf_status upd_mutate(struct cf_user *u, void *ctx)
{
    struct upd *p = ctx;
    if (u->source != CF_SOURCE_DIRECTORY || u->status == CF_USER_OFFBOARDED)
        return CF_EEXIST; /* changed under the sync's feet: leave it */
    if (p->du != NULL) {
        set_str(&u->display_name, p->du->display);
        set_str(&u->email, p->du->email);
        set_str(&u->directory_id, p->du->id);
    }
    if (p->set_status)
        u->status = p->status;
    if (p->set_gone)
        u->directory_gone_at = p->gone_at;
    return CF_OK;
}

/* Freezes (suspending links first, as the admin API does, then ending sessions). */
static void freeze(struct sync *s, struct cf_user *u, const char *reason, bool gone)
{
    json_array_append_new(s->u_frozen, json_pack("{s:s, s:s}", "username", u->username, "reason", reason));
    if (s->dry)
        return;
    size_t links = 0;
    struct upd p = {.set_status = true, .status = CF_USER_FROZEN, .set_gone = gone, .gone_at = cf_now_ms()};
    struct cf_user out;
    enum cf_status st = cf_share_suspend_all_of(s->store, &s->tenant, &u->id, true, &links);
    if (st == CF_OK && (st = cf_user_update(s->store, &s->tenant, &u->id, upd_mutate, &p, &out)) == CF_OK) {
        st = cf_session_delete_all(s->store, &s->tenant, &u->id, NULL);
        if (st == CF_OK)
            st = user_event(s, "user.update", &out, reason,
                            json_pack("{s:I}", "links_suspended", (json_int_t)links));
        cf_user_clear(&out);
    }
    note(s, st, "freezing", u->username);
}

static void offboard(struct sync *s, struct cf_user *u)
{
    json_array_append_new(s->u_offboarded, json_string(u->username));
    if (s->dry)
        return;
    size_t links = 0;
    struct upd p = {.set_status = true, .status = CF_USER_OFFBOARDED};
    struct cf_user out;
    enum cf_status st = cf_user_update(s->store, &s->tenant, &u->id, upd_mutate, &p, &out);
    if (st != CF_OK) {
        note(s, st, "offboarding", u->username);
        return;
    }
    if ((st = cf_session_delete_all(s->store, &s->tenant, &u->id, NULL)) == CF_OK &&
        (st = cf_share_revoke_all_of(s->store, &s->tenant, &u->id, &links)) == CF_OK &&
        (st = cf_node_archive(s->store, &s->tenant, &out.private_root)) == CF_OK)
        st = user_event(s, "user.offboard", &out, "missing from the directory for directory.offboard_after",
                        json_pack("{s:s, s:s, s:I}", "private_space", "archived", "links", "revoked", "links_count",
                                  (json_int_t)links));
    cf_user_clear(&out);
    note(s, st, "offboarding", u->username);
}

static void create_user(struct sync *s, struct duser *du)
{
    json_array_append_new(s->u_created, json_string(du->username));
    if (du->disabled)
        json_array_append_new(s->u_frozen,
                              json_pack("{s:s, s:s}", "username", du->username, "reason", "disabled in the directory"));
    if (s->dry)
        return;
    struct cf_user u = {.tenant = s->tenant, .role = CF_ROLE_MEMBER, .source = CF_SOURCE_DIRECTORY,
                        .status = du->disabled ? CF_USER_FROZEN : CF_USER_ACTIVE};
    u.username = cf_xstrdup(du->username);
    u.display_name = du->display != NULL ? cf_xstrdup(du->display) : NULL;
    u.email = du->email != NULL ? cf_xstrdup(du->email) : NULL;
    u.directory_id = cf_xstrdup(du->id);
    enum cf_status st = cf_user_create(s->store, &u);
    if (st == CF_OK) {
        du->uid = u.id;
        st = user_event(s, "user.create", &u, du->disabled ? "disabled in the directory" : NULL,
                        json_pack("{s:s, s:s?}", "dn", du->dn, "email", du->email));
    }
    note(s, st, "creating", du->username);
    cf_user_clear(&u);
}

/* A directory entry against its Coffer user (same directory id, or same username). */
static void update_user(struct sync *s, struct duser *du, struct cf_user *u)
{
    du->uid = u->id;
    if (u->status == CF_USER_OFFBOARDED)
        return; /* offboarded stays offboarded; an admin deletes the record to let the name come back */
    bool fields = str_differs(u->display_name, du->display) || str_differs(u->email, du->email) ||
                  str_differs(u->directory_id, du->id);
    bool back = u->directory_gone_at != 0;
    if (du->disabled && u->status == CF_USER_ACTIVE) {
        if (fields || back) {
            struct upd p = {.du = du, .set_gone = back, .gone_at = 0};
            if (!s->dry)
                note(s, cf_user_update(s->store, &s->tenant, &u->id, upd_mutate, &p, NULL), "updating", du->username);
        }
        freeze(s, u, "disabled in the directory", false);
        return;
    }
    bool reactivate = !du->disabled && u->status == CF_USER_FROZEN;
    if (!fields && !back && !reactivate)
        return;
    json_array_append_new(reactivate ? s->u_reactivated : s->u_updated, json_string(du->username));
    if (s->dry)
        return;
    struct upd p = {.du = du, .set_status = reactivate, .status = CF_USER_ACTIVE, .set_gone = back, .gone_at = 0};
    struct cf_user out;
    enum cf_status st = cf_user_update(s->store, &s->tenant, &u->id, upd_mutate, &p, &out);
    if (st == CF_OK) {
        st = user_event(s, "user.update", &out, reactivate ? "enabled in the directory" : "changed in the directory",
                        json_pack("{s:s?, s:s?}", "display_name", out.display_name, "email", out.email));
        cf_user_clear(&out);
    }
    note(s, st, "updating", du->username);
}

static void sync_users(struct sync *s, struct cf_user *local, size_t nlocal)
{
    bool *seen = cf_xcalloc(nlocal + 1, sizeof *seen);
    /* The tenant's users by directory id (directory users) and by username (ASCII case folded, as
     * the username index folds it: one user per folded name). */
    struct strmap byid, bynames;
    strmap_init(&byid, nlocal, false);
    strmap_init(&bynames, nlocal, true);
    for (size_t k = 0; k < nlocal; k++) {
        if (local[k].source == CF_SOURCE_DIRECTORY && local[k].directory_id != NULL)
            strmap_put(&byid, local[k].directory_id, k);
        strmap_put(&bynames, local[k].username, k);
    }
    for (size_t i = 0; i < s->nusers; i++) {
        struct duser *du = &s->users[i];
        size_t ki = strmap_get(&byid, du->id), kn = ki == SIZE_MAX ? strmap_get(&bynames, du->username) : SIZE_MAX;
        struct cf_user *match = ki != SIZE_MAX ? &local[ki] : NULL, *byname = kn != SIZE_MAX ? &local[kn] : NULL;
        if (match == NULL && byname != NULL) {
            if (byname->source != CF_SOURCE_DIRECTORY) {
                json_array_append_new(s->u_skipped, json_pack("{s:s, s:s}", "dn", du->dn, "reason",
                                                              "a local user has this username"));
                continue;
            }
            match = byname; /* the entry was recreated (a new entryUUID): the same person by name */
        }
        if (match != NULL) {
            if (strcmp(match->username, du->username) != 0 && strcasecmp(match->username, du->username) != 0) {
                json_array_append_new(s->u_skipped, json_pack("{s:s, s:s}", "dn", du->dn, "reason",
                                                              "renamed in the directory (usernames do not change)"));
                seen[match - local] = true;
                continue;
            }
            seen[match - local] = true;
            update_user(s, du, match);
        } else {
            create_user(s, du);
        }
        sync_user_dept(s, du);
    }
    /* Directory users the directory no longer has: frozen at once, offboarded after offboard_after. */
    uint64_t now = cf_now_ms();
    for (size_t k = 0; k < nlocal; k++) {
        struct cf_user *u = &local[k];
        if (seen[k] || u->source != CF_SOURCE_DIRECTORY || u->status == CF_USER_OFFBOARDED)
            continue;
        if (u->status == CF_USER_ACTIVE) {
            freeze(s, u, "missing from the directory", true);
        } else if (u->directory_gone_at == 0) {
            struct upd p = {.set_gone = true, .gone_at = now};
            if (!s->dry)
                note(s, cf_user_update(s->store, &s->tenant, &u->id, upd_mutate, &p, NULL), "marking missing",
                     u->username);
        } else if (now - u->directory_gone_at >= s->cfg->directory.offboard_after_s * 1000ull) {
            offboard(s, u);
        }
    }
    strmap_free(&byid);
    strmap_free(&bynames);
    free(seen);
}

/* ---- groups ------------------------------------------------------------------------------------ */

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(struct cf_id));
}

/* The Coffer users of a directory group's members (sorted, unique); bydn maps canonical DNs to
 * the directory users that are Coffer users. */
static size_t member_ids(struct sync *s, const struct strmap *bydn, const struct dgroup *g, struct cf_id **out)
{
    size_t n = 0;
    *out = cf_xcalloc(g->nmembers + 1, sizeof **out);
    for (size_t i = 0; i < g->nmembers; i++) {
        size_t k = strmap_get(bydn, g->members[i]);
        if (k != SIZE_MAX)
            (*out)[n++] = s->users[k].uid;
    }
    qsort(*out, n, sizeof **out, cmp_id);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || !cf_id_equal(&(*out)[u - 1], &(*out)[i]))
            (*out)[u++] = (*out)[i];
    return u;
}

/* Sets a group's members to want[0..n) if they differ (event group.members). */
static void set_members(struct sync *s, const struct cf_group *grp, struct cf_id *want, size_t n, json_t *list)
{
    struct cf_id *have = NULL;
    size_t nh = 0;
    if (!cf_id_is_zero(&grp->id)) {
        enum cf_status st = cf_group_members(s->store, &s->tenant, &grp->id, &have, &nh);
        if (st != CF_OK) {
            note(s, st, "reading the members of", grp->name);
            return;
        }
        if (nh > 1)
            qsort(have, nh, sizeof *have, cmp_id);
    }
    bool same = nh == n && (n == 0 || memcmp(have, want, n * sizeof *want) == 0);
    free(have);
    if (same)
        return;
    if (list != NULL)
        json_array_append_new(list, json_string(grp->name));
    if (s->dry || cf_id_is_zero(&grp->id))
        return;
    enum cf_status st = cf_group_set_members(s->store, &s->tenant, &grp->id, want, n);
    if (st == CF_OK) {
        struct cf_event *e = dir_event(s, "group.members");
        cf_event_detail(e, "group", cf_json_id(&grp->id));
        cf_event_detail(e, "name", json_string(grp->name));
        cf_event_detail(e, "members", json_integer((json_int_t)n));
        st = cf_audit_submit_wait(e, NULL);
    }
    note(s, st, "setting the members of", grp->name);
}

static void sync_groups(struct sync *s)
{
    struct cf_group *local = NULL;
    size_t nlocal = 0;
    enum cf_status st = cf_group_list(s->store, &s->tenant, &local, &nlocal);
    if (st != CF_OK) {
        note(s, st, "listing", "groups");
        return;
    }
    bool *seen = cf_xcalloc(nlocal + 1, sizeof *seen);
    struct strmap bydn;
    strmap_init(&bydn, s->nusers, false);
    for (size_t k = 0; k < s->nusers; k++)
        if (!cf_id_is_zero(&s->users[k].uid))
            strmap_put(&bydn, s->users[k].dnnorm, k);
    for (size_t i = 0; i < s->ngroups; i++) {
        struct dgroup *g = &s->groups[i];
        struct cf_group *match = NULL, *byname = NULL;
        for (size_t k = 0; k < nlocal && match == NULL; k++) {
            if (local[k].source == CF_SOURCE_DIRECTORY && local[k].directory_id != NULL &&
                strcmp(local[k].directory_id, g->id) == 0)
                match = &local[k];
            else if (strcasecmp(local[k].name, g->name) == 0)
                byname = &local[k];
        }
        if (match == NULL && byname != NULL) {
            if (byname->source != CF_SOURCE_DIRECTORY) {
                json_array_append_new(s->u_skipped, json_pack("{s:s, s:s}", "dn", g->dn, "reason",
                                                              "a local group has this name"));
                continue;
            }
            match = byname;
        }
        struct cf_id *want;
        size_t n = member_ids(s, &bydn, g, &want);
        struct cf_group created = {0};
        if (match == NULL) {
            json_array_append_new(s->g_created, json_string(g->name));
            if (!s->dry) {
                st = cf_group_create_from(s->store, &s->tenant, g->name, CF_SOURCE_DIRECTORY, g->id, &created);
                if (st == CF_OK) {
                    struct cf_event *e = dir_event(s, "group.create");
                    cf_event_detail(e, "group", cf_json_id(&created.id));
                    cf_event_detail(e, "name", json_string(created.name));
                    cf_event_detail(e, "dn", json_string(g->dn));
                    st = cf_audit_submit_wait(e, NULL);
                }
                note(s, st, "creating group", g->name);
            }
            if (cf_id_is_zero(&created.id))
                created.name = cf_xstrdup(g->name);
            set_members(s, &created, want, n, NULL);
            cf_group_clear(&created);
        } else {
            seen[match - local] = true;
            if (strcmp(match->name, g->name) != 0) {
                json_array_append_new(s->g_updated, json_string(g->name));
                struct cf_group renamed;
                if (!s->dry) {
                    st = cf_group_rename(s->store, &s->tenant, &match->id, g->name, &renamed);
                    if (st == CF_OK) {
                        struct cf_event *e = dir_event(s, "group.rename");
                        cf_event_detail(e, "group", cf_json_id(&match->id));
                        cf_event_detail(e, "name", json_string(g->name));
                        cf_event_detail(e, "previous", json_string(match->name));
                        st = cf_audit_submit_wait(e, NULL);
                        cf_group_clear(&renamed);
                    }
                    note(s, st, "renaming group", g->name);
                }
            }
            set_members(s, match, want, n, s->g_updated);
        }
        free(want);
    }
    /* A directory group the directory no longer has keeps its id (ACL entries may name it) and loses
     * its members: removing access, never granting it. */
    for (size_t k = 0; k < nlocal; k++)
        if (!seen[k] && local[k].source == CF_SOURCE_DIRECTORY)
            set_members(s, &local[k], NULL, 0, s->g_emptied);
    for (size_t k = 0; k < nlocal; k++)
        cf_group_clear(&local[k]);
    strmap_free(&bydn);
    free(local);
    free(seen);
}

/* ---- the run ----------------------------------------------------------------------------------- */

static void sync_free(struct sync *s)
{
    for (size_t i = 0; i < s->nusers; i++) {
        struct duser *u = &s->users[i];
        free(u->dn);
        free(u->dnnorm);
        free(u->id);
        free(u->username);
        free(u->display);
        free(u->email);
        free_strv(u->ous, u->nous);
    }
    free(s->users);
    free_strv(s->disabled, s->ndisabled);
    for (size_t i = 0; i < s->ngroups; i++) {
        free(s->groups[i].dn);
        free(s->groups[i].id);
        free(s->groups[i].name);
        free_strv(s->groups[i].members, s->groups[i].nmembers);
    }
    free(s->groups);
    for (size_t i = 0; i < s->ndepts; i++)
        cf_dept_clear(&s->depts[i]);
    free(s->depts);
    json_decref(s->report);
}

static void report_init(struct sync *s)
{
    s->u_created = json_array();
    s->u_updated = json_array();
    s->u_frozen = json_array();
    s->u_reactivated = json_array();
    s->u_offboarded = json_array();
    s->u_skipped = json_array();
    s->g_created = json_array();
    s->g_updated = json_array();
    s->g_emptied = json_array();
    s->d_created = json_array();
    s->memberships = json_array();
    s->report = json_pack("{s:b, s:s, s:{s:o, s:o, s:o, s:o, s:o}, s:o, s:{s:o, s:o, s:o}, s:{s:o, s:o}}", "dry_run",
                          s->dry, "tenant", s->cfg->directory.tenant, "users", "created", s->u_created, "updated",
                          s->u_updated, "frozen", s->u_frozen, "reactivated", s->u_reactivated, "offboarded",
                          s->u_offboarded, "skipped", s->u_skipped, "groups", "created", s->g_created, "updated",
                          s->g_updated, "emptied", s->g_emptied, "departments", "created", s->d_created,
                          "users_moved", s->memberships);
}

static void report_counts(struct sync *s)
{
    json_object_set_new(
        s->report, "counts",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "directory_users",
                  (json_int_t)s->nusers, "directory_groups", (json_int_t)s->ngroups, "created",
                  (json_int_t)json_array_size(s->u_created), "updated", (json_int_t)json_array_size(s->u_updated),
                  "frozen", (json_int_t)json_array_size(s->u_frozen), "reactivated",
                  (json_int_t)json_array_size(s->u_reactivated), "offboarded",
                  (json_int_t)json_array_size(s->u_offboarded), "skipped", (json_int_t)json_array_size(s->u_skipped),
                  "groups_created", (json_int_t)json_array_size(s->g_created), "groups_updated",
                  (json_int_t)json_array_size(s->g_updated), "departments_created",
                  (json_int_t)json_array_size(s->d_created), "users_moved",
                  (json_int_t)json_array_size(s->memberships)));
}

/* Whether the tenant has active directory users (a directory answering "nobody" is then suspect). */
static bool any_active_directory_user(const struct cf_user *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (u[i].source == CF_SOURCE_DIRECTORY && u[i].status == CF_USER_ACTIVE)
            return true;
    return false;
}

static enum cf_status sync_locked(struct sync *s, json_t **report, char **err)
{
    const struct cf_config *cfg = s->cfg;
    enum cf_status st = cf_tenant_find(s->store, cfg->directory.tenant, strlen(cfg->directory.tenant), &s->tenant);
    if (st != CF_OK) {
        *err = cf_xasprintf("directory.tenant: no tenant named %s", cfg->directory.tenant);
        return st == CF_ENOTFOUND ? CF_ENOTFOUND : st;
    }
    if ((st = read_directory(s, err)) != CF_OK)
        return st; /* nothing read, nothing changed */
    struct cf_user *local = NULL;
    size_t nlocal = 0;
    if ((st = cf_user_list(s->store, &s->tenant, &local, &nlocal)) != CF_OK) {
        *err = cf_xasprintf("cannot list the users of tenant %s (%s)", cfg->directory.tenant, cf_status_name(st));
        return st;
    }
    if (s->nusers == 0 && any_active_directory_user(local, nlocal)) {
        *err = cf_xasprintf("the directory returned no users under %s matching %s while the tenant has active "
                            "directory users: refusing to freeze them all (check directory.users)",
                            cfg->directory.user_base, cfg->directory.user_filter);
        st = CF_EUNAVAIL;
        goto out;
    }
    if (cfg->directory.departments == CF_DIR_DEPTS_DN &&
        (st = cf_dept_list(s->store, &s->tenant, &s->depts, &s->ndepts)) != CF_OK) {
        *err = cf_xasprintf("cannot list the departments (%s)", cf_status_name(st));
        goto out;
    }
    s->capdepts = s->ndepts;
    sync_users(s, local, nlocal);
    sync_groups(s);
    report_counts(s);
    if (s->st != CF_OK) {
        st = s->st;
        *err = cf_xasprintf("the sync did not finish (%s); what it applied is recorded, the next sync completes it",
                            cf_status_name(st));
        goto out;
    }
    *report = json_incref(s->report);
out:
    for (size_t i = 0; i < nlocal; i++)
        cf_user_clear(&local[i]);
    free(local);
    return st;
}

enum cf_status cf_directory_sync(const struct cf_config *cfg, struct cf_store *store, bool dry_run, json_t **report,
                                 char **err)
{
    *report = NULL;
    *err = NULL;
    if (!cfg->directory.enabled) {
        *err = cf_xstrdup("no directory is configured (the directory: section of the configuration)");
        return CF_EINVAL;
    }
    struct sync s = {.cfg = cfg, .store = store, .dry = dry_run};
    report_init(&s);
    pthread_mutex_lock(&sync_lock);
    enum cf_status st = sync_locked(&s, report, err);
    pthread_mutex_unlock(&sync_lock);
    if (st == CF_OK) {
        json_t *c = json_object_get(*report, "counts");
        cf_log_info("directory: %ssync: %lld users, %lld created, %lld updated, %lld frozen, %lld offboarded",
                    dry_run ? "dry-run " : "", (long long)json_integer_value(json_object_get(c, "directory_users")),
                    (long long)json_integer_value(json_object_get(c, "created")),
                    (long long)json_integer_value(json_object_get(c, "updated")),
                    (long long)json_integer_value(json_object_get(c, "frozen")),
                    (long long)json_integer_value(json_object_get(c, "offboarded")));
    } else {
        cf_log_warn("directory: sync failed: %s", *err != NULL ? *err : cf_status_name(st));
    }
    sync_free(&s);
    return st;
}

enum cf_status cf_directory_admin_sync(const struct cf_app *app, bool dry_run, json_t **report, char **err)
{
    return cf_directory_sync(app->cfg, app->store, dry_run, report, err);
}

/* ---- the periodic thread ----------------------------------------------------------------------- */

static pthread_t periodic;
static bool periodic_running, periodic_stop;
static pthread_mutex_t periodic_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t periodic_cond = PTHREAD_COND_INITIALIZER;
static const struct cf_app *periodic_app;

static void *periodic_main(void *arg)
{
    (void)arg;
    const struct cf_config *cfg = periodic_app->cfg;
    pthread_mutex_lock(&periodic_lock);
    while (!periodic_stop) {
        pthread_mutex_unlock(&periodic_lock);
        json_t *rep = NULL;
        char *err = NULL;
        /* Cluster mode: only the node holding the jobs lease syncs (docs/CLUSTER.md); the others wait. */
        bool mine = cf_coord_holds(periodic_app->store, CF_COORD_JOBS, NULL, 0);
        if (mine && cf_directory_sync(cfg, periodic_app->store, false, &rep, &err) != CF_OK)
            cf_log_warn("directory: the periodic sync failed; the next one runs in %llus",
                        (unsigned long long)cfg->directory.sync_interval_s);
        json_decref(rep);
        free(err);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)cfg->directory.sync_interval_s;
        pthread_mutex_lock(&periodic_lock);
        while (!periodic_stop && pthread_cond_timedwait(&periodic_cond, &periodic_lock, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&periodic_lock);
    return NULL;
}

void cf_directory_start(const struct cf_app *app)
{
    const struct cf_config *cfg = app->cfg;
    if (cfg->directory.enabled && strncmp(cfg->directory.url, "ldap://", 7) == 0 && !cfg->directory.start_tls)
        cf_log_warn("directory: %s without TLS (allow_plaintext: true): the service account's and directory "
                    "users' passwords cross the network in clear; for test set-ups only",
                    cfg->directory.url);
    if (!app->cfg->directory.enabled || app->cfg->directory.sync_interval_s == 0 || periodic_running)
        return;
    periodic_app = app;
    periodic_stop = false;
    if (pthread_create(&periodic, NULL, periodic_main, NULL) != 0) {
        cf_log_error("directory: cannot start the sync thread");
        return;
    }
    periodic_running = true;
    cf_log_info("directory: syncing %s every %llus", app->cfg->directory.url,
                (unsigned long long)app->cfg->directory.sync_interval_s);
}

void cf_directory_stop(void)
{
    if (!periodic_running)
        return;
    pthread_mutex_lock(&periodic_lock);
    periodic_stop = true;
    pthread_cond_broadcast(&periodic_cond);
    pthread_mutex_unlock(&periodic_lock);
    pthread_join(periodic, NULL);
    periodic_running = false;
}

/* ---- the operator command ---------------------------------------------------------------------- */

static void print_names(FILE *fp, const char *verb, json_t *arr, const char *key)
{
    size_t n = json_array_size(arr);
    if (n == 0)
        return;
    fprintf(fp, "%s %zu:", verb, n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        const char *name = json_is_string(v) ? json_string_value(v) : json_string_value(json_object_get(v, key));
        const char *why = json_is_object(v) ? json_string_value(json_object_get(v, "reason")) : NULL;
        fprintf(fp, " %s%s%s%s", name != NULL ? name : "?", why != NULL ? " (" : "", why != NULL ? why : "",
                why != NULL ? ")" : "");
        fputc(i + 1 < n ? ',' : '\n', fp);
    }
}

int cf_op_directory(struct cf_op *op, int argc, char **argv)
{
    bool dry = argc == 3 && strcmp(argv[2], "--dry-run") == 0;
    if (argc < 2 || strcmp(argv[1], "sync") != 0 || (argc == 3 && !dry) || argc > 3) {
        fprintf(op->err, "coffer: usage: coffer directory sync [--dry-run] [-c FILE]\n");
        return 2;
    }
    json_t *rep = NULL;
    char *err = NULL;
    enum cf_status st = cf_directory_sync(op->cfg, op->store, dry, &rep, &err);
    if (st != CF_OK) {
        fprintf(op->err, "coffer: directory sync: %s; nothing was deleted or frozen%s\n",
                err != NULL ? err : cf_status_name(st), st == CF_EUNAVAIL ? " (the directory is unavailable)" : "");
        free(err);
        return st == CF_EINVAL ? 2 : 1;
    }
    json_t *u = json_object_get(rep, "users"), *g = json_object_get(rep, "groups"),
           *d = json_object_get(rep, "departments"), *c = json_object_get(rep, "counts");
    fprintf(op->out, "%sdirectory sync of tenant %s: %lld users, %lld groups in the directory\n",
            dry ? "dry run (nothing changed): " : "", op->cfg->directory.tenant,
            (long long)json_integer_value(json_object_get(c, "directory_users")),
            (long long)json_integer_value(json_object_get(c, "directory_groups")));
    const char *w = dry ? "would " : "";
    char verb[64];
    static const char *const ukeys[] = {"created", "updated", "frozen", "reactivated", "offboarded", "skipped"};
    for (size_t i = 0; i < sizeof ukeys / sizeof ukeys[0]; i++) {
        snprintf(verb, sizeof verb, "%s%s users", strcmp(ukeys[i], "skipped") == 0 ? "" : w,
                 strcmp(ukeys[i], "created") == 0 ? (dry ? "create" : "created")
                 : strcmp(ukeys[i], "updated") == 0 ? (dry ? "update" : "updated")
                 : strcmp(ukeys[i], "frozen") == 0 ? (dry ? "freeze" : "froze")
                 : strcmp(ukeys[i], "reactivated") == 0 ? (dry ? "reactivate" : "reactivated")
                 : strcmp(ukeys[i], "offboarded") == 0 ? (dry ? "offboard" : "offboarded")
                                                       : "skipped");
        print_names(op->out, verb, json_object_get(u, ukeys[i]), strcmp(ukeys[i], "skipped") == 0 ? "dn" : "username");
    }
    snprintf(verb, sizeof verb, "%s groups", dry ? "would create" : "created");
    print_names(op->out, verb, json_object_get(g, "created"), NULL);
    snprintf(verb, sizeof verb, "%s groups", dry ? "would update" : "updated");
    print_names(op->out, verb, json_object_get(g, "updated"), NULL);
    snprintf(verb, sizeof verb, "%s groups gone from the directory", dry ? "would empty" : "emptied");
    print_names(op->out, verb, json_object_get(g, "emptied"), NULL);
    snprintf(verb, sizeof verb, "%s departments", dry ? "would create" : "created");
    print_names(op->out, verb, json_object_get(d, "created"), NULL);
    snprintf(verb, sizeof verb, "%s the primary department of users", dry ? "would change" : "changed");
    print_names(op->out, verb, json_object_get(d, "users_moved"), NULL);
    json_decref(rep);
    return 0;
}
