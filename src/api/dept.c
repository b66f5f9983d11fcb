/*
 * dept.c: the department endpoints (issue 23), admins only, own tenant only:
 *   GET    /api/v1/admin/departments              the tree, as a flat list with paths
 *   POST   /api/v1/admin/departments              {"name", "parent"}: 201
 *   PATCH  /api/v1/admin/departments/{id}         {"name"} and/or {"parent"}: rename, move
 *   DELETE /api/v1/admin/departments/{id}         204; 409 not_empty
 *   GET    /api/v1/admin/departments/{id}/members
 *   PUT    /api/v1/admin/users/{id}/departments   {"primary": ID|null, "others": [ID…]}
 * Every change is a provenance event (dept.create, dept.rename, dept.move, dept.delete,
 * user.departments) naming the acting admin. Departments the directory sync keeps (source
 * "directory", src/ops/directory.c) are not renamed or moved here (409 directory_managed: the next
 * sync would undo it); an emptied one may be deleted (a sync that still finds it makes a new one).
 * A department's ACL entries go with it, so a new one of the same name (another id) inherits
 * nothing. Owners of private spaces whose grants a change reaches get an alert.department_change.
 * What a department grants is decided in acl.c.
 */
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "audit.h"
#include "dept.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "validate.h"

/* ---- JSON ------------------------------------------------------------------------------------- */

static const char *source_name(enum cf_source s)
{
    return s == CF_SOURCE_DIRECTORY ? "directory" : "local";
}

/* The path of all[i] ("a/b/c", names from the top) from the whole list; malloc'ed. A broken chain
 * (never written by dept.c) ends the path where it breaks. */
static char *dept_path(const struct cf_dept *all, size_t n, size_t i)
{
    const struct cf_dept *chain[CF_DEPT_MAX_DEPTH + 1];
    size_t depth = 0, len = 0;
    const struct cf_dept *at = &all[i];
    while (at != NULL && depth <= CF_DEPT_MAX_DEPTH) {
        chain[depth++] = at;
        len += strlen(at->name) + 1;
        const struct cf_dept *up = NULL;
        for (size_t k = 0; k < n && !cf_id_is_zero(&at->parent) && up == NULL; k++)
            if (cf_id_equal(&all[k].id, &at->parent))
                up = &all[k];
        at = up;
    }
    char *p = cf_xmalloc(len + 1), *w = p;
    for (size_t k = depth; k-- > 0;) {
        size_t l = strlen(chain[k]->name);
        memcpy(w, chain[k]->name, l);
        w += l;
        if (k > 0)
            *w++ = '/';
    }
    *w = '\0';
    return p;
}

static json_t *dept_json(struct cf_store *store, const struct cf_dept *all, size_t n, size_t i)
{
    struct cf_id *m;
    size_t nm = 0;
    if (cf_dept_members(store, &all[i].tenant, &all[i].id, &m, &nm) == CF_OK)
        free(m);
    char *path = dept_path(all, n, i);
    json_t *o = json_pack("{s:o, s:s, s:o, s:s, s:s, s:I, s:o}", "id", cf_json_id(&all[i].id), "name", all[i].name,
                          "parent", cf_json_id(&all[i].parent), "path", path, "source", source_name(all[i].source),
                          "members", (json_int_t)nm, "created_at", cf_json_time(all[i].created_at));
    free(path);
    return o;
}

static void depts_free(struct cf_dept *all, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cf_dept_clear(&all[i]);
    free(all);
}

/* The JSON of department id (NULL if it cannot be read). */
static json_t *one_json(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *id)
{
    struct cf_dept *all;
    size_t n;
    json_t *o = NULL;
    if (cf_dept_list(store, tenant, &all, &n) != CF_OK)
        return NULL;
    for (size_t i = 0; i < n && o == NULL; i++)
        if (cf_id_equal(&all[i].id, id))
            o = dept_json(store, all, n, i);
    depts_free(all, n);
    return o;
}

/* The path of department id, for events ("" if it cannot be read). */
static json_t *path_json(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *id)
{
    json_t *o = one_json(store, tenant, id), *p = NULL;
    if (o != NULL)
        p = json_incref(json_object_get(o, "path"));
    json_decref(o);
    return p != NULL ? p : json_string("");
}

json_t *cf_dept_user_json(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *user)
{
    struct cf_id primary, *others;
    size_t n;
    if (cf_user_depts(store, tenant, user, &primary, &others, &n) != CF_OK)
        return json_null();
    json_t *o = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(o, cf_json_id(&others[i]));
    free(others);
    return json_pack("{s:o, s:o}", "primary", cf_json_id(&primary), "others", o);
}

json_t *cf_dept_paths(struct cf_store *store, const struct cf_id *tenant)
{
    struct cf_dept *all;
    size_t n;
    char hex[CF_ID_HEX_LEN + 1];
    if (cf_dept_list(store, tenant, &all, &n) != CF_OK)
        return NULL;
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        cf_id_hex(&all[i].id, hex);
        char *path = dept_path(all, n, i);
        json_object_set_new(o, hex, json_string(path));
        free(path);
    }
    depts_free(all, n);
    return o;
}

/* Orders by path; an entry jansson could not build (NULL: a name that is not UTF-8) sorts first. */
static int path_cmp(const void *a, const void *b)
{
    json_t *const *x = a, *const *y = b;
    const char *p = json_string_value(json_object_get(*x, "path")), *q = json_string_value(json_object_get(*y, "path"));
    return strcmp(p != NULL ? p : "", q != NULL ? q : "");
}

void cf_h_admin_depts(struct cf_req *r)
{
    struct cf_dept *all;
    size_t n;
    enum cf_status st = cf_dept_list(r->app->store, &r->who.user.tenant, &all, &n);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    json_t **v = cf_xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = dept_json(r->app->store, all, n, i);
    depts_free(all, n);
    qsort(v, n, sizeof *v, path_cmp);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        if (v[i] != NULL)
            json_array_append_new(arr, v[i]);
    free(v);
    cf_respond_json(r, 200, json_pack("{s:o}", "departments", arr));
}

/* ---- changes ---------------------------------------------------------------------------------- */

/* Adds id and every department above it to *v (no repeats). */
static void with_ancestors(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *id,
                           struct cf_id **v, size_t *n)
{
    struct cf_id *up = NULL;
    size_t nup = 0;
    if (cf_dept_ancestors(store, tenant, id, &up, &nup) != CF_OK)
        nup = 0;
    for (size_t i = 0; i <= nup; i++) {
        const struct cf_id *d = i == 0 ? id : &up[i - 1];
        bool dup = false;
        for (size_t k = 0; k < *n && !dup; k++)
            dup = cf_id_equal(&(*v)[k], d);
        if (!dup) {
            *v = cf_xrealloc(*v, (*n + 1) * sizeof **v);
            (*v)[(*n)++] = *d;
        }
    }
    free(up);
}

/* A change of who is in which department reached the grants to depts (the departments whose
 * members changed, and those above them, whose entries with subdepartments reach them): each owner
 * of a private space holding such a grant is told (an alert.department_change with detail), as
 * for groups, since the change decides who reads their private files. Best effort: the change is
 * already stored and recorded in provenance. */
static void tell_owners(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *depts, size_t n,
                        json_t *detail)
{
    struct cf_id *told = NULL;
    size_t ntold = 0;
    char *txt = json_dumps(detail, JSON_COMPACT);
    for (size_t i = 0; i < n && txt != NULL; i++) {
        struct cf_grant *g;
        size_t ng;
        if (cf_grants_of(store, tenant, CF_PRINCIPAL_DEPT, &depts[i], &g, &ng) != CF_OK)
            continue;
        for (size_t k = 0; k < ng; k++) {
            struct cf_acl_space sp;
            bool dup = false;
            if (cf_acl_space_of(store, tenant, &g[k].node, &sp) != CF_OK || sp.kind != CF_SPACE_PRIVATE)
                continue;
            for (size_t x = 0; x < ntold && !dup; x++)
                dup = cf_id_equal(&told[x], &sp.owner);
            if (dup)
                continue;
            told = cf_xrealloc(told, (ntold + 1) * sizeof *told);
            told[ntold++] = sp.owner;
            if (cf_alert_add(store, tenant, &sp.owner, "alert.department_change", txt) != CF_OK)
                cf_log_warn("could not store a department-change alert");
        }
        free(g);
    }
    free(txt);
    free(told);
    json_decref(detail);
}

enum dept_op { OP_CREATE, OP_PATCH, OP_DELETE, OP_USER };

struct dept_job {
    struct cf_async a;
    enum dept_op op;
    struct cf_id tenant, self, id; /* id: the department (user: the user) */
    char *name;                    /* create, rename */
    bool set_parent;               /* create, move */
    struct cf_id parent;           /* zero: top level */
    struct cf_id primary, *others; /* user */
    size_t nothers;
    int http;                      /* a refusal with its own code (code, why) */
    const char *code, *why;
    json_t *result;                /* the answer on success */
    struct cf_event *ev, *ev2;     /* the change's event(s): a PATCH may rename (ev) and move (ev2) */
};

static void job_free(struct cf_async *a)
{
    struct dept_job *j = (struct dept_job *)a;
    free(j->name);
    free(j->others);
    json_decref(j->result);
    cf_event_free(j->ev);
    cf_event_free(j->ev2);
    free(j);
}

static void job_reply(struct cf_req *r, struct cf_async *a)
{
    struct dept_job *j = (struct dept_job *)a;
    if (j->code != NULL)
        cf_respond_error(r, j->http, j->code, j->why);
    else if (a->st == CF_EEXIST)
        cf_respond_status(r, CF_EEXIST, j->why != NULL ? j->why : "a department of this name exists there");
    else if (a->st != CF_OK)
        cf_respond_status(r, a->st, j->why);
    else if (j->result == NULL)
        cf_respond_empty(r, 204);
    else {
        cf_respond_json(r, j->op == OP_CREATE ? 201 : 200, j->result);
        j->result = NULL;
    }
}

static struct dept_job *job_new(struct cf_req *r, enum dept_op op, void (*run)(struct cf_async *))
{
    struct dept_job *j = cf_xcalloc(1, sizeof *j);
    j->a.run = run;
    j->a.reply = job_reply;
    j->a.free = job_free;
    j->op = op;
    j->tenant = r->who.user.tenant;
    j->self = r->who.user.id;
    return j;
}

static struct cf_event *event_new(struct cf_req *r, const char *action)
{
    struct cf_event *e = cf_event_new(&r->who.user.tenant, action, "ok");
    cf_event_from_req(e, r);
    return e;
}

/* Submits *e (taken) once its change is stored. */
static enum cf_status submit(struct cf_event **e)
{
    enum cf_status st = cf_audit_submit_wait(*e, NULL);
    *e = NULL;
    return st;
}

static void refuse(struct dept_job *j, int http, const char *code, const char *why)
{
    j->http = http;
    j->code = code;
    j->why = why;
}

static void create_run(struct cf_async *a)
{
    struct dept_job *j = (struct dept_job *)a;
    struct cf_store *store = a->app->store;
    struct cf_dept d;
    a->st = cf_dept_create(store, &j->tenant, &j->parent, j->name, CF_SOURCE_LOCAL, &d);
    if (a->st == CF_ENOTFOUND)
        j->why = "parent: no such department";
    else if (a->st == CF_EINVAL)
        refuse(j, 400, "too_deep", "departments nest at most 32 levels deep");
    if (a->st != CF_OK)
        return;
    cf_event_detail(j->ev, "department", cf_json_id(&d.id));
    cf_event_detail(j->ev, "name", json_string(d.name));
    cf_event_detail(j->ev, "parent", cf_json_id(&d.parent));
    cf_event_detail(j->ev, "path", path_json(store, &j->tenant, &d.id));
    j->result = one_json(store, &j->tenant, &d.id);
    cf_dept_clear(&d);
    a->st = submit(&j->ev);
}

/* Whether department at is id or lies below it (a refused move's reason). */
static bool below(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *at, const struct cf_id *id)
{
    struct cf_id *up;
    size_t n;
    if (cf_id_equal(at, id))
        return true;
    if (cf_dept_ancestors(store, tenant, at, &up, &n) != CF_OK)
        return false;
    bool hit = false;
    for (size_t i = 0; i < n && !hit; i++)
        hit = cf_id_equal(&up[i], id);
    free(up);
    return hit;
}

static void patch_run(struct cf_async *a)
{
    struct dept_job *j = (struct dept_job *)a;
    struct cf_store *store = a->app->store;
    struct cf_dept before, d;
    if ((a->st = cf_dept_get(store, &j->tenant, &j->id, &before)) != CF_OK)
        return;
    if (before.source == CF_SOURCE_DIRECTORY) {
        cf_dept_clear(&before);
        a->st = CF_EEXIST;
        refuse(j, 409, "directory_managed", "this department is kept by the directory sync");
        return;
    }
    if (j->set_parent && !cf_id_equal(&before.parent, &j->parent)) {
        json_t *old_path = path_json(store, &j->tenant, &j->id);
        a->st = cf_dept_move(store, &j->tenant, &j->id, &j->parent, &d);
        if (a->st == CF_ENOTFOUND)
            j->why = "parent: no such department";
        else if (a->st == CF_EINVAL && below(store, &j->tenant, &j->parent, &j->id))
            refuse(j, 409, "cycle", "a department cannot move below itself or one of its sub-departments");
        else if (a->st == CF_EINVAL)
            refuse(j, 400, "too_deep", "departments nest at most 32 levels deep");
        if (a->st != CF_OK) {
            json_decref(old_path);
            cf_dept_clear(&before);
            return;
        }
        cf_event_detail(j->ev2, "department", cf_json_id(&j->id));
        cf_event_detail(j->ev2, "name", json_string(d.name));
        cf_event_detail(j->ev2, "old_parent", cf_json_id(&before.parent));
        cf_event_detail(j->ev2, "parent", cf_json_id(&d.parent));
        cf_event_detail(j->ev2, "old_path", old_path);
        cf_event_detail(j->ev2, "path", path_json(store, &j->tenant, &j->id));
        struct cf_id *reach = NULL;
        size_t nreach = 0;
        if (!cf_id_is_zero(&before.parent))
            with_ancestors(store, &j->tenant, &before.parent, &reach, &nreach);
        if (!cf_id_is_zero(&d.parent))
            with_ancestors(store, &j->tenant, &d.parent, &reach, &nreach);
        tell_owners(store, &j->tenant, reach, nreach,
                    json_pack("{s:o, s:s, s:o, s:o, s:o}", "department", cf_json_id(&j->id), "name", d.name, "by",
                              cf_json_id(&j->self), "old_parent", cf_json_id(&before.parent), "parent",
                              cf_json_id(&d.parent)));
        free(reach);
        cf_dept_clear(&d);
        if ((a->st = submit(&j->ev2)) != CF_OK) {
            cf_dept_clear(&before);
            return;
        }
    }
    if (j->name != NULL && strcmp(j->name, before.name) != 0) {
        if ((a->st = cf_dept_rename(store, &j->tenant, &j->id, j->name, &d)) != CF_OK) {
            cf_dept_clear(&before);
            return;
        }
        cf_event_detail(j->ev, "department", cf_json_id(&j->id));
        cf_event_detail(j->ev, "old_name", json_string(before.name));
        cf_event_detail(j->ev, "name", json_string(d.name));
        cf_event_detail(j->ev, "path", path_json(store, &j->tenant, &j->id));
        cf_dept_clear(&d);
        a->st = submit(&j->ev);
    }
    cf_dept_clear(&before);
    if (a->st == CF_OK && (j->result = one_json(store, &j->tenant, &j->id)) == NULL)
        a->st = CF_EIO;
}


/* Whether the department has members or sub-departments (the delete's own check repeats it under
 * the store's lock; this one keeps the ACL entries of a department that stays). */
static enum cf_status not_empty(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *id, bool *busy)
{
    struct cf_id *m;
    size_t nm;
    struct cf_dept *all;
    size_t n;
    enum cf_status st = cf_dept_members(store, tenant, id, &m, &nm);
    if (st != CF_OK)
        return st;
    free(m);
    *busy = nm > 0;
    if ((st = cf_dept_list(store, tenant, &all, &n)) != CF_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        *busy = *busy || cf_id_equal(&all[i].parent, id);
    depts_free(all, n);
    return CF_OK;
}

static void delete_run(struct cf_async *a)
{
    struct dept_job *j = (struct dept_job *)a;
    struct cf_store *store = a->app->store;
    struct cf_dept d;
    size_t grants = 0;
    bool busy;
    if ((a->st = cf_dept_get(store, &j->tenant, &j->id, &d)) != CF_OK)
        return;
    json_t *path = path_json(store, &j->tenant, &j->id);
    if ((a->st = not_empty(store, &j->tenant, &j->id, &busy)) == CF_OK && busy)
        a->st = CF_EEXIST;
    if (a->st == CF_OK)
        a->st = cf_acl_drop_principal(store, &j->tenant, CF_PRINCIPAL_DEPT, &j->id, &grants);
    if (a->st == CF_OK)
        a->st = cf_dept_delete(store, &j->tenant, &j->id);
    if (a->st == CF_EEXIST)
        refuse(j, 409, "not_empty", "the department has sub-departments or members: move or remove them first");
    if (a->st == CF_OK) {
        cf_event_detail(j->ev, "department", cf_json_id(&j->id));
        cf_event_detail(j->ev, "name", json_string(d.name));
        cf_event_detail(j->ev, "parent", cf_json_id(&d.parent));
        cf_event_detail(j->ev, "path", path);
        cf_event_detail(j->ev, "acl_entries_removed", json_integer((json_int_t)grants));
        path = NULL;
        a->st = submit(&j->ev);
    }
    json_decref(path);
    cf_dept_clear(&d);
}

static bool id_in(const struct cf_id *id, const struct cf_id *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cf_id_equal(id, &v[i]))
            return true;
    return false;
}

static json_t *ids_json(const struct cf_id *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, cf_json_id(&v[i]));
    return a;
}

/* The departments a user joined or left (and those above them) decide what private grants now
 * reach them: their owners are told (tell_owners). */
static void tell_changed(struct cf_store *store, struct dept_job *j, const struct cf_id *old_primary,
                         const struct cf_id *old, size_t nold)
{
    struct cf_id *was = cf_xcalloc(nold + 1, sizeof *was), *is = cf_xcalloc(j->nothers + 1, sizeof *is);
    size_t nwas = 0, nis = 0;
    if (!cf_id_is_zero(old_primary))
        was[nwas++] = *old_primary;
    memcpy(was + nwas, old, nold * sizeof *old);
    nwas += nold;
    if (!cf_id_is_zero(&j->primary))
        is[nis++] = j->primary;
    memcpy(is + nis, j->others, j->nothers * sizeof *is);
    nis += j->nothers;
    struct cf_id *reach = NULL;
    size_t nreach = 0;
    json_t *added = json_array(), *removed = json_array();
    for (size_t i = 0; i < nis; i++)
        if (!id_in(&is[i], was, nwas)) {
            json_array_append_new(added, cf_json_id(&is[i]));
            with_ancestors(store, &j->tenant, &is[i], &reach, &nreach);
        }
    for (size_t i = 0; i < nwas; i++)
        if (!id_in(&was[i], is, nis)) {
            json_array_append_new(removed, cf_json_id(&was[i]));
            with_ancestors(store, &j->tenant, &was[i], &reach, &nreach);
        }
    tell_owners(store, &j->tenant, reach, nreach,
                json_pack("{s:o, s:o, s:o, s:o}", "user", cf_json_id(&j->id), "by", cf_json_id(&j->self), "added",
                          added, "removed", removed));
    free(reach);
    free(was);
    free(is);
}

static void user_run(struct cf_async *a)
{
    struct dept_job *j = (struct dept_job *)a;
    struct cf_store *store = a->app->store;
    struct cf_user u;
    struct cf_id old_primary, *old;
    size_t nold;
    if ((a->st = cf_user_get(store, &j->tenant, &j->id, &u)) != CF_OK)
        return;
    cf_user_clear(&u);
    if ((a->st = cf_user_depts(store, &j->tenant, &j->id, &old_primary, &old, &nold)) != CF_OK)
        return;
    /* Private means private: an admin cannot join a department (and so its grants) on their own say. */
    bool self_added = false;
    if (cf_id_equal(&j->id, &j->self)) {
        bool had_p = cf_id_equal(&j->primary, &old_primary) || id_in(&j->primary, old, nold);
        self_added = !cf_id_is_zero(&j->primary) && !had_p;
        for (size_t i = 0; i < j->nothers && !self_added; i++)
            self_added = !cf_id_equal(&j->others[i], &old_primary) && !id_in(&j->others[i], old, nold);
    }
    if (self_added) {
        a->st = CF_EDENIED;
        j->why = "an admin cannot add themselves to a department: another admin must";
    } else if ((a->st = cf_user_set_depts(store, &j->tenant, &j->id, &j->primary, j->others, j->nothers)) ==
               CF_ENOTFOUND) {
        j->why = "no such department";
    } else if (a->st == CF_EINVAL) {
        j->why = "at most 64 departments per user";
    }
    if (a->st == CF_OK) {
        cf_event_detail(j->ev, "user", cf_json_id(&j->id));
        cf_event_detail(j->ev, "old_primary", cf_json_id(&old_primary));
        cf_event_detail(j->ev, "old_others", ids_json(old, nold));
        j->result = cf_dept_user_json(store, &j->tenant, &j->id);
        cf_event_detail(j->ev, "primary", json_incref(json_object_get(j->result, "primary")));
        cf_event_detail(j->ev, "others", json_incref(json_object_get(j->result, "others")));
        a->st = submit(&j->ev);
        tell_changed(store, j, &old_primary, old, nold);
    }
    free(old);
}

/* ---- handlers --------------------------------------------------------------------------------- */

/* A department name: 1 to 128 bytes of text without / or control characters (as a group's). */
static bool name_or_respond(struct cf_req *r, const char *name, size_t nl)
{
    if (nl == 0 || nl > CF_DEPT_NAME_MAX || cf_name_check(name, nl) != NULL) {
        cf_respond_status(r, CF_EINVAL, "name: 1 to 128 bytes of text without / or control characters");
        return false;
    }
    return true;
}

/* An optional id field: absent or null is the zero id (*present says which); anything but a
 * well-formed id answers 400. */
static bool id_field_or_respond(struct cf_req *r, json_t *body, const char *key, struct cf_id *out, bool *present)
{
    json_t *v = json_object_get(body, key);
    memset(out, 0, sizeof *out);
    *present = v != NULL;
    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v) || cf_id_parse(json_string_value(v), json_string_length(v), out) != CF_OK ||
        cf_id_is_zero(out)) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be a department id or null", key);
        cf_respond_status(r, CF_EINVAL, msg);
        return false;
    }
    return true;
}

static bool param_id_or_respond(struct cf_req *r, struct cf_id *id)
{
    if (r->nparams < 1 || cf_id_parse(r->params[0].base, r->params[0].len, id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return false;
    }
    return true;
}

void cf_h_admin_dept_create(struct cf_req *r)
{
    static const char *const allowed[] = {"name", "parent", NULL};
    json_t *body;
    const char *name;
    size_t nl;
    struct cf_id parent;
    bool present;
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_str_or_respond(r, body, "name", true, &name, &nl) ||
        !name_or_respond(r, name, nl) || !id_field_or_respond(r, body, "parent", &parent, &present))
        goto out;
    struct dept_job *j = job_new(r, OP_CREATE, create_run);
    j->name = cf_xstrndup(name, nl);
    j->parent = parent;
    j->ev = event_new(r, "dept.create");
    cf_async_start(r, &j->a);
out:
    json_decref(body);
}

void cf_h_admin_dept_patch(struct cf_req *r)
{
    static const char *const allowed[] = {"name", "parent", NULL};
    json_t *body;
    const char *name = NULL;
    size_t nl = 0;
    struct cf_id id, parent;
    bool present;
    if (!param_id_or_respond(r, &id) || !cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) ||
        !cf_json_str_or_respond(r, body, "name", false, &name, &nl) ||
        (name != NULL && !name_or_respond(r, name, nl)) || !id_field_or_respond(r, body, "parent", &parent, &present))
        goto out;
    if (name == NULL && !present) {
        cf_respond_status(r, CF_EINVAL, "give a name, a parent, or both");
        goto out;
    }
    struct dept_job *j = job_new(r, OP_PATCH, patch_run);
    j->id = id;
    j->name = name != NULL ? cf_xstrndup(name, nl) : NULL;
    j->set_parent = present;
    j->parent = parent;
    j->ev = event_new(r, "dept.rename");
    j->ev2 = event_new(r, "dept.move");
    cf_async_start(r, &j->a);
out:
    json_decref(body);
}

void cf_h_admin_dept_delete(struct cf_req *r)
{
    struct cf_id id;
    if (!param_id_or_respond(r, &id))
        return;
    struct dept_job *j = job_new(r, OP_DELETE, delete_run);
    j->id = id;
    j->ev = event_new(r, "dept.delete");
    cf_async_start(r, &j->a);
}

void cf_h_admin_dept_members(struct cf_req *r)
{
    struct cf_id id, *m;
    size_t n;
    struct cf_dept d;
    if (!param_id_or_respond(r, &id))
        return;
    enum cf_status st = cf_dept_get(r->app->store, &r->who.user.tenant, &id, &d);
    if (st == CF_OK)
        st = cf_dept_members(r->app->store, &r->who.user.tenant, &id, &m, &n);
    cf_dept_clear(&d);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        struct cf_user u;
        struct cf_id primary, *others;
        size_t no;
        if (cf_user_get(r->app->store, &r->who.user.tenant, &m[i], &u) != CF_OK)
            continue;
        bool is_primary = false;
        if (cf_user_depts(r->app->store, &r->who.user.tenant, &m[i], &primary, &others, &no) == CF_OK) {
            is_primary = cf_id_equal(&primary, &id);
            free(others);
        }
        json_array_append_new(arr, json_pack("{s:o, s:s, s:s?, s:b}", "id", cf_json_id(&u.id), "username", u.username,
                                             "display_name", u.display_name, "primary", is_primary));
        cf_user_clear(&u);
    }
    free(m);
    cf_respond_json(r, 200, json_pack("{s:o, s:o}", "department", cf_json_id(&id), "members", arr));
}

void cf_h_admin_user_depts(struct cf_req *r)
{
    static const char *const allowed[] = {"primary", "others", NULL};
    json_t *body;
    struct cf_id id, primary;
    bool present;
    if (!param_id_or_respond(r, &id) || !cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !id_field_or_respond(r, body, "primary", &primary, &present))
        goto out;
    json_t *others = json_object_get(body, "others");
    if (!present || (others != NULL && !json_is_array(others)) ||
        (others != NULL && json_array_size(others) > CF_DEPT_MAX_PER_USER)) {
        cf_respond_status(r, CF_EINVAL, "give primary (a department id or null) and others (at most 64 ids)");
        goto out;
    }
    struct dept_job *j = job_new(r, OP_USER, user_run);
    j->id = id;
    j->primary = primary;
    j->others = cf_xcalloc(json_array_size(others) + 1, sizeof *j->others);
    size_t i;
    json_t *v;
    json_array_foreach(others, i, v)
    {
        struct cf_id d;
        if (!json_is_string(v) || cf_id_parse(json_string_value(v), json_string_length(v), &d) != CF_OK ||
            cf_id_is_zero(&d)) {
            cf_respond_status(r, CF_EINVAL, "others must hold department ids");
            job_free(&j->a);
            goto out;
        }
        if (!id_in(&d, j->others, j->nothers) && !cf_id_equal(&d, &primary))
            j->others[j->nothers++] = d;
    }
    j->ev = event_new(r, "user.departments");
    cf_async_start(r, &j->a);
out:
    json_decref(body);
}
