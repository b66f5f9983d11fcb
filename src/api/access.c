/*
 * access.c: the ACL endpoints (GET|PUT /api/v1/nodes/{id}/acl), the tenant directory that lets a
 * member pick whom to grant, and "shared with me" (GET /api/v1/shared).
 *
 * Principals are written "user:ID", "group:ID", "department:ID" (an entry may add "subdepartments":
 * true: the members of its sub-departments too, issue 23) or "tenant". A PUT replaces the node's own entries;
 * entries inherited from ancestors are shown by GET (with the ancestor they come from) and changed
 * there. Only existing users and groups of the caller's tenant can be named.
 */
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "audit.h"
#include "dept.h"
#include "files.h"
#include "handlers.h"
#include "http.h"
#include "log.h"

static json_t *principal_json(const struct cf_acl_entry *e)
{
    char hex[CF_ID_HEX_LEN + 1], buf[64];
    if (e->kind == CF_PRINCIPAL_TENANT)
        return json_string("tenant");
    cf_id_hex(&e->principal, hex);
    snprintf(buf, sizeof buf, "%s:%s",
             e->kind == CF_PRINCIPAL_USER ? "user" : e->kind == CF_PRINCIPAL_DEPT ? "department" : "group", hex);
    return json_string(buf);
}

/* The display name of a principal, or null if it no longer exists. */
static json_t *principal_name(struct cf_store *store, const struct cf_id *tenant, const struct cf_acl_entry *e)
{
    if (e->kind == CF_PRINCIPAL_TENANT)
        return json_string("everyone in the tenant");
    if (e->kind == CF_PRINCIPAL_USER) {
        struct cf_user u;
        if (cf_user_get(store, tenant, &e->principal, &u) != CF_OK)
            return json_null();
        json_t *n = json_string(u.username);
        cf_user_clear(&u);
        return n;
    }
    if (e->kind == CF_PRINCIPAL_DEPT) {
        struct cf_dept d;
        if (cf_dept_get(store, tenant, &e->principal, &d) != CF_OK)
            return json_null();
        json_t *n = json_string(d.name);
        cf_dept_clear(&d);
        return n;
    }
    struct cf_group g;
    if (cf_group_get(store, tenant, &e->principal, &g) != CF_OK)
        return json_null();
    json_t *n = json_string(g.name);
    cf_group_clear(&g);
    return n;
}

static json_t *entry_json(struct cf_store *store, const struct cf_id *tenant, const struct cf_acl_entry *e,
                          const struct cf_id *from)
{
    json_t *o = json_pack("{s:o, s:s, s:o}", "principal", principal_json(e), "level",
                          cf_level_name((enum cf_level)e->level), "name", principal_name(store, tenant, e));
    if (from != NULL)
        json_object_set_new(o, "from", cf_json_id(from));
    if (e->subdepartments)
        json_object_set_new(o, "subdepartments", json_true());
    return o;
}

/* The ACL view of node n: own entries, inherited entries, and the owner of its space (who holds
 * manage there; null in the tenant space, where admins do). */
static enum cf_status acl_view(struct cf_store *store, const struct cf_id *tenant, const struct cf_node *n, json_t **out)
{
    struct cf_acl_entry *e;
    size_t cnt;
    enum cf_status st = cf_acl_get(store, tenant, &n->id, &e, &cnt);
    if (st != CF_OK)
        return st;
    json_t *own = json_array(), *inherited = json_array();
    for (size_t i = 0; i < cnt; i++)
        json_array_append_new(own, entry_json(store, tenant, &e[i], NULL));
    free(e);
    bool root = cf_id_is_zero(&n->parent) && n->root_kind == CF_SPACE_PRIVATE;
    struct cf_id cur = n->parent, space_owner = root ? n->owner : (struct cf_id){0};
    for (int depth = 0; !cf_id_is_zero(&cur) && depth < 1024 && st == CF_OK; depth++) {
        struct cf_node p;
        if ((st = cf_node_get(store, tenant, &cur, &p)) != CF_OK)
            break;
        if (cf_id_is_zero(&p.parent) && p.root_kind == CF_SPACE_PRIVATE)
            space_owner = p.owner;
        if ((st = cf_acl_get(store, tenant, &p.id, &e, &cnt)) == CF_OK) {
            for (size_t i = 0; i < cnt; i++)
                json_array_append_new(inherited, entry_json(store, tenant, &e[i], &p.id));
            free(e);
        }
        cur = p.parent;
        cf_node_clear(&p);
    }
    if (st != CF_OK) {
        json_decref(own);
        json_decref(inherited);
        return st;
    }
    json_t *owner = json_null();
    if (!cf_id_is_zero(&space_owner)) {
        struct cf_acl_entry oe = {.kind = CF_PRINCIPAL_USER, .principal = space_owner, .level = CF_LEVEL_MANAGE};
        owner = json_pack("{s:o, s:o}", "id", cf_json_id(&space_owner), "name", principal_name(store, tenant, &oe));
    }
    *out = json_pack("{s:o, s:o, s:o, s:o}", "node", cf_json_id(&n->id), "owner", owner, "entries", own, "inherited",
                     inherited);
    return CF_OK;
}

void cf_h_acl_get(struct cf_req *r)
{
    struct cf_node n;
    enum cf_level level;
    json_t *view;
    if (!cf_acl_param_or_respond(r, 0, CF_LEVEL_VIEW, &n, &level))
        return;
    enum cf_status st = acl_view(r->app->store, &r->who.user.tenant, &n, &view);
    cf_node_clear(&n);
    if (st != CF_OK)
        cf_respond_status(r, st, NULL);
    else
        cf_respond_json(r, 200, view);
}

struct acl_put {
    struct cf_async a;
    struct cf_id tenant, node;
    struct cf_acl_entry *e;
    size_t n;
    const char *why;
    struct cf_event *ev; /* acl.change */
};

static void acl_put_run(struct cf_async *a)
{
    struct acl_put *p = (struct acl_put *)a;
    /* The named principals must exist in this tenant (checked here, off the loop). */
    for (size_t i = 0; i < p->n; i++) {
        if (p->e[i].kind == CF_PRINCIPAL_USER) {
            struct cf_user u;
            if (cf_user_get(a->app->store, &p->tenant, &p->e[i].principal, &u) != CF_OK) {
                a->st = CF_EINVAL;
                p->why = "an entry names a user that does not exist in this tenant";
                return;
            }
            cf_user_clear(&u);
        } else if (p->e[i].kind == CF_PRINCIPAL_GROUP) {
            struct cf_group g;
            if (cf_group_get(a->app->store, &p->tenant, &p->e[i].principal, &g) != CF_OK) {
                a->st = CF_EINVAL;
                p->why = "an entry names a group that does not exist in this tenant";
                return;
            }
            cf_group_clear(&g);
        } else if (p->e[i].kind == CF_PRINCIPAL_DEPT) {
            struct cf_dept d;
            if (cf_dept_get(a->app->store, &p->tenant, &p->e[i].principal, &d) != CF_OK) {
                a->st = CF_EINVAL;
                p->why = "an entry names a department that does not exist in this tenant";
                return;
            }
            cf_dept_clear(&d);
        }
    }
    a->st = cf_acl_put(a->app->store, &p->tenant, &p->node, p->e, p->n);
    if (a->st == CF_OK) {
        struct cf_node n;
        if (cf_node_get(a->app->store, &p->tenant, &p->node, &n) == CF_OK) {
            cf_event_node(p->ev, &n);
            cf_node_clear(&n);
        }
        json_t *entries = json_array();
        for (size_t i = 0; i < p->n; i++) {
            json_t *o = json_pack("{s:o, s:s}", "principal", principal_json(&p->e[i]), "level",
                                  cf_level_name((enum cf_level)p->e[i].level));
            if (p->e[i].subdepartments)
                json_object_set_new(o, "subdepartments", json_true());
            json_array_append_new(entries, o);
        }
        cf_event_detail(p->ev, "entries", entries);
        a->st = cf_audit_submit_wait(p->ev, NULL);
        p->ev = NULL;
    }
}

static void acl_put_reply(struct cf_req *r, struct cf_async *a)
{
    struct acl_put *p = (struct acl_put *)a;
    struct cf_node n;
    json_t *view;
    if (a->st != CF_OK) {
        cf_respond_status(r, a->st, p->why);
        return;
    }
    enum cf_status st = cf_node_get(r->app->store, &p->tenant, &p->node, &n);
    if (st == CF_OK) {
        st = acl_view(a->app->store, &p->tenant, &n, &view);
        cf_node_clear(&n);
    }
    if (st != CF_OK)
        cf_respond_status(r, st, NULL);
    else
        cf_respond_json(r, 200, view);
}

static void acl_put_free(struct cf_async *a)
{
    struct acl_put *p = (struct acl_put *)a;
    free(p->e);
    cf_event_free(p->ev);
    free(p);
}

/* Parses "user:ID", "group:ID", "department:ID" or "tenant". */
static bool principal_parse(const char *s, size_t n, struct cf_acl_entry *e)
{
    memset(&e->principal, 0, sizeof e->principal);
    if (n == 6 && memcmp(s, "tenant", 6) == 0) {
        e->kind = CF_PRINCIPAL_TENANT;
        return true;
    }
    if (n == 5 + CF_ID_HEX_LEN && memcmp(s, "user:", 5) == 0) {
        e->kind = CF_PRINCIPAL_USER;
        return cf_id_parse(s + 5, CF_ID_HEX_LEN, &e->principal) == CF_OK;
    }
    if (n == 6 + CF_ID_HEX_LEN && memcmp(s, "group:", 6) == 0) {
        e->kind = CF_PRINCIPAL_GROUP;
        return cf_id_parse(s + 6, CF_ID_HEX_LEN, &e->principal) == CF_OK;
    }
    if (n == 11 + CF_ID_HEX_LEN && memcmp(s, "department:", 11) == 0) {
        e->kind = CF_PRINCIPAL_DEPT;
        return cf_id_parse(s + 11, CF_ID_HEX_LEN, &e->principal) == CF_OK;
    }
    return false;
}

void cf_h_acl_put(struct cf_req *r)
{
    static const char *const allowed[] = {"entries", NULL};
    static const char *const entry_allowed[] = {"principal", "level", "subdepartments", NULL};
    json_t *body;
    struct cf_node n;
    enum cf_level level;
    struct acl_put *p = NULL;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed))
        goto out;
    json_t *entries = json_object_get(body, "entries");
    if (!json_is_array(entries) || json_array_size(entries) > CF_ACL_MAX_ENTRIES) {
        cf_respond_status(r, CF_EINVAL, "entries must be an array of at most 256 {principal, level}");
        goto out;
    }
    p = cf_xcalloc(1, sizeof *p);
    p->e = cf_xcalloc(json_array_size(entries) + 1, sizeof *p->e);
    size_t i;
    json_t *v;
    json_array_foreach(entries, i, v)
    {
        const char *ps, *ls;
        size_t pl, ll;
        if (!json_is_object(v)) {
            cf_respond_status(r, CF_EINVAL, "each entry must be an object {principal, level}");
            goto out;
        }
        if (!cf_json_only_keys_or_respond(r, v, entry_allowed) ||
            !cf_json_str_or_respond(r, v, "principal", true, &ps, &pl) ||
            !cf_json_str_or_respond(r, v, "level", true, &ls, &ll))
            goto out;
        struct cf_acl_entry *e = &p->e[p->n];
        if (!principal_parse(ps, pl, e)) {
            cf_respond_status(r, CF_EINVAL,
                              "principal must be \"user:ID\", \"group:ID\", \"department:ID\" or \"tenant\"");
            goto out;
        }
        bool sub = false, has_sub = false;
        if (!cf_json_bool_or_respond(r, v, "subdepartments", &sub, &has_sub))
            goto out;
        if (has_sub && e->kind != CF_PRINCIPAL_DEPT) {
            cf_respond_status(r, CF_EINVAL, "subdepartments applies to a department entry only");
            goto out;
        }
        e->subdepartments = sub;
        enum cf_level lv = cf_level_parse(ls, ll);
        if (lv == CF_LEVEL_NONE) {
            cf_respond_status(r, CF_EINVAL, "level must be view, download, edit or manage");
            goto out;
        }
        e->level = (uint8_t)lv;
        for (size_t k = 0; k < p->n; k++)
            if (p->e[k].kind == e->kind && cf_id_equal(&p->e[k].principal, &e->principal)) {
                cf_respond_status(r, CF_EINVAL, "a principal may appear only once");
                goto out;
            }
        p->n++;
    }
    if (!cf_acl_param_or_respond(r, 0, CF_LEVEL_MANAGE, &n, &level))
        goto out;
    p->a.run = acl_put_run;
    p->a.reply = acl_put_reply;
    p->a.free = acl_put_free;
    p->tenant = r->who.user.tenant;
    p->node = n.id;
    p->ev = cf_event_new(&p->tenant, "acl.change", "ok");
    cf_event_from_req(p->ev, r);
    cf_node_clear(&n);
    cf_async_start(r, &p->a);
    p = NULL;
out:
    if (p != NULL)
        acl_put_free(&p->a);
    json_decref(body);
}

void cf_h_directory(struct cf_req *r)
{
    struct cf_user *us;
    struct cf_group *gs;
    size_t nu, ng;
    enum cf_status st = cf_user_list(r->app->store, &r->who.user.tenant, &us, &nu);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    json_t *users = json_array(), *groups = json_array();
    for (size_t i = 0; i < nu; i++) {
        if (us[i].status == CF_USER_ACTIVE)
            json_array_append_new(users, json_pack("{s:o, s:s, s:s?}", "id", cf_json_id(&us[i].id), "username",
                                                   us[i].username, "display_name", us[i].display_name));
        cf_user_clear(&us[i]);
    }
    free(us);
    if ((st = cf_group_list(r->app->store, &r->who.user.tenant, &gs, &ng)) != CF_OK) {
        json_decref(users);
        json_decref(groups);
        cf_respond_status(r, st, NULL);
        return;
    }
    for (size_t i = 0; i < ng; i++) {
        json_array_append_new(groups, json_pack("{s:o, s:s}", "id", cf_json_id(&gs[i].id), "name", gs[i].name));
        cf_group_clear(&gs[i]);
    }
    free(gs);
    json_t *depts = json_array(), *paths = cf_dept_paths(r->app->store, &r->who.user.tenant);
    const char *k;
    json_t *pv;
    json_object_foreach(paths, k, pv)
    {
        json_array_append_new(depts, json_pack("{s:s, s:O}", "id", k, "path", pv));
    }
    json_decref(paths);
    cf_respond_json(r, 200, json_pack("{s:o, s:o, s:o}", "users", users, "groups", groups, "departments", depts));
}

struct cf_idvec_local {
    struct cf_id *v;
    size_t n, cap;
    /* cf_shared_roots: the nodes themselves, with the caller's levels (else NULL: JSON items) */
    struct cf_node *nodes;
    enum cf_level *levels;
};

/* Adds the nodes granted to one principal, visible to the caller, to items (deduplicated). */
static enum cf_status add_grants(struct cf_req *r, enum cf_principal_kind kind, const struct cf_id *principal,
                                 json_t *items, struct cf_idvec_local *seen)
{
    struct cf_grant *g;
    size_t n;
    struct cf_actor a = cf_actor_of(r);
    enum cf_status st = cf_grants_of(r->app->store, &r->who.user.tenant, kind, principal, &g, &n);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t k = 0; k < seen->n && !dup; k++)
            dup = cf_id_equal(&seen->v[k], &g[i].node);
        if (dup)
            continue;
        struct cf_node node;
        enum cf_level level;
        struct cf_acl_space sp;
        enum cf_status ls = cf_acl_resolve(&a, &g[i].node, 0, &node, &level, &sp);
        if (ls == CF_ENOTFOUND)
            continue; /* trashed, or gone */
        if (ls != CF_OK) {
            st = ls;
            break;
        }
        /* Nodes in one's own private space, and what one created oneself, are not "shared with me". */
        bool mine = (sp.kind == CF_SPACE_PRIVATE && cf_id_equal(&sp.owner, &r->who.user.id)) ||
                    cf_id_equal(&node.owner, &r->who.user.id);
        bool keep = false;
        if (level > CF_LEVEL_NONE && !mine) {
            if (items != NULL)
                json_array_append_new(items, cf_node_json(&node, level));
            if (seen->n == seen->cap) {
                seen->cap = seen->cap == 0 ? 16 : seen->cap * 2;
                seen->v = cf_xrealloc(seen->v, seen->cap * sizeof *seen->v);
                if (items == NULL) {
                    seen->nodes = cf_xrealloc(seen->nodes, seen->cap * sizeof *seen->nodes);
                    seen->levels = cf_xrealloc(seen->levels, seen->cap * sizeof *seen->levels);
                }
            }
            if (items == NULL) {
                seen->nodes[seen->n] = node;
                seen->levels[seen->n] = level;
                keep = true;
            }
            seen->v[seen->n++] = node.id;
        }
        if (!keep)
            cf_node_clear(&node);
    }
    free(g);
    return st;
}

/* The grants of the caller's departments and of every department above them (the level rule,
 * acl.c, decides whether an entry of one above reaches the caller: its subdepartments flag). */
static enum cf_status add_dept_grants(struct cf_req *r, json_t *items, struct cf_idvec_local *seen)
{
    struct cf_id primary, *others, *up;
    size_t n, nup;
    enum cf_status st = cf_user_depts(r->app->store, &r->who.user.tenant, &r->who.user.id, &primary, &others, &n);
    if (st != CF_OK)
        return st;
    others = cf_xrealloc(others, (n + 1) * sizeof *others);
    if (!cf_id_is_zero(&primary))
        others[n++] = primary;
    struct cf_idvec_local done = {0};
    for (size_t i = 0; i < n && st == CF_OK; i++) {
        if (cf_dept_ancestors(r->app->store, &r->who.user.tenant, &others[i], &up, &nup) != CF_OK)
            continue; /* deleted meanwhile */
        for (size_t k = 0; k <= nup && st == CF_OK; k++) {
            const struct cf_id *d = k == 0 ? &others[i] : &up[k - 1];
            bool dup = false;
            for (size_t x = 0; x < done.n && !dup; x++)
                dup = cf_id_equal(&done.v[x], d);
            if (dup)
                continue;
            if (done.n == done.cap) {
                done.cap = done.cap == 0 ? 8 : done.cap * 2;
                done.v = cf_xrealloc(done.v, done.cap * sizeof *done.v);
            }
            done.v[done.n++] = *d;
            st = add_grants(r, CF_PRINCIPAL_DEPT, d, items, seen);
        }
        free(up);
    }
    free(done.v);
    free(others);
    return st;
}

enum cf_status cf_shared_roots(struct cf_req *r, struct cf_node **nodes, enum cf_level **levels, size_t *n)
{
    struct cf_idvec_local seen = {0};
    struct cf_id zero = {0};
    enum cf_status st = add_grants(r, CF_PRINCIPAL_USER, &r->who.user.id, NULL, &seen);
    for (size_t i = 0; i < r->who.ngroups && st == CF_OK; i++)
        st = add_grants(r, CF_PRINCIPAL_GROUP, &r->who.groups[i], NULL, &seen);
    if (st == CF_OK)
        st = add_dept_grants(r, NULL, &seen);
    if (st == CF_OK)
        st = add_grants(r, CF_PRINCIPAL_TENANT, &zero, NULL, &seen);
    free(seen.v);
    if (st != CF_OK) {
        for (size_t i = 0; i < seen.n; i++)
            cf_node_clear(&seen.nodes[i]);
        free(seen.nodes);
        free(seen.levels);
        seen.nodes = NULL;
        seen.levels = NULL;
        seen.n = 0;
    }
    *nodes = seen.nodes;
    *levels = seen.levels;
    *n = seen.n;
    return st;
}

void cf_h_shared(struct cf_req *r)
{
    struct cf_idvec_local seen = {0};
    struct cf_id zero = {0};
    json_t *items = json_array();
    enum cf_status st = add_grants(r, CF_PRINCIPAL_USER, &r->who.user.id, items, &seen);
    for (size_t i = 0; i < r->who.ngroups && st == CF_OK; i++)
        st = add_grants(r, CF_PRINCIPAL_GROUP, &r->who.groups[i], items, &seen);
    if (st == CF_OK)
        st = add_dept_grants(r, items, &seen);
    if (st == CF_OK)
        st = add_grants(r, CF_PRINCIPAL_TENANT, &zero, items, &seen);
    free(seen.v);
    if (st != CF_OK) {
        json_decref(items);
        cf_respond_status(r, st, NULL);
        return;
    }
    cf_respond_json(r, 200, json_pack("{s:o}", "items", items));
}
