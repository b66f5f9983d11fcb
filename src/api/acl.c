/*
 * acl.c: effective levels (see acl.h). The walk reads each ancestor's node record and ACL record:
 * two point lookups per level of depth. It is bounded by CF_ACL_MAX_DEPTH so that a corrupted parent
 * chain (a cycle) cannot hang a thread.
 */
#include "acl.h"

#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"

#define CF_ACL_MAX_DEPTH 1024

const char *cf_level_name(enum cf_level level)
{
    switch (level) {
    case CF_LEVEL_VIEW:
        return "view";
    case CF_LEVEL_DOWNLOAD:
        return "download";
    case CF_LEVEL_EDIT:
        return "edit";
    case CF_LEVEL_MANAGE:
        return "manage";
    default:
        return "none";
    }
}

enum cf_level cf_level_parse(const char *s, size_t n)
{
    static const char *const names[] = {"view", "download", "edit", "manage"};
    for (int i = 0; i < 4; i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
            return (enum cf_level)(i + 1);
    return CF_LEVEL_NONE;
}

struct cf_actor cf_actor_of(const struct cf_req *r)
{
    struct cf_actor a = {
        .app = r->app,
        .tenant = r->who.user.tenant,
        .id = r->who.user.id,
        .role = r->who.user.role,
        .groups = r->who.groups,
        .ngroups = r->who.ngroups,
    };
    return a;
}

/* Whether dept is one of a's departments (primary or other) or, with sub, an ancestor of one. Read
 * from the store (through the metadata cache, which every membership or tree change invalidates),
 * so that a user moved between departments, or a department moved in the tree, is decided anew by
 * the very next request. A read error matches nothing: it can only lower a level. */
static bool dept_matches(const struct cf_actor *a, const struct cf_id *dept, bool sub)
{
    struct cf_id primary, *others, *up;
    size_t n, nup;
    if (a->app == NULL || cf_id_is_zero(&a->id))
        return false;
    if (cf_user_depts(a->app->store, &a->tenant, &a->id, &primary, &others, &n) != CF_OK) {
        cf_log_error("%s: cannot read a user's departments", __func__);
        return false;
    }
    bool hit = cf_id_equal(&primary, dept) && !cf_id_is_zero(dept);
    for (size_t i = 0; i < n && !hit; i++)
        hit = cf_id_equal(&others[i], dept);
    for (size_t i = 0; i <= n && !hit && sub; i++) {
        const struct cf_id *mine = i < n ? &others[i] : &primary;
        if (cf_id_is_zero(mine))
            continue;
        enum cf_status st = cf_dept_ancestors(a->app->store, &a->tenant, mine, &up, &nup);
        if (st == CF_ENOTFOUND)
            continue; /* deleted meanwhile */
        if (st != CF_OK) {
            cf_log_error("%s: cannot read a department's ancestors", __func__);
            continue;
        }
        for (size_t k = 0; k < nup && !hit; k++)
            hit = cf_id_equal(&up[k], dept);
        free(up);
    }
    free(others);
    return hit;
}

bool cf_acl_entry_matches(const struct cf_actor *a, const struct cf_acl_entry *e)
{
    switch (e->kind) {
    case CF_PRINCIPAL_DEPT:
        return dept_matches(a, &e->principal, e->subdepartments);
    case CF_PRINCIPAL_TENANT:
        return true;
    case CF_PRINCIPAL_USER:
        return cf_id_equal(&e->principal, &a->id);
    case CF_PRINCIPAL_GROUP:
        for (size_t i = 0; i < a->ngroups; i++)
            if (cf_id_equal(&e->principal, &a->groups[i]))
                return true;
        return false;
    }
    return false;
}

/* The highest level the node's own entries give a (0 if none); CF_OK or a storage error. */
static enum cf_status entries_level(const struct cf_actor *a, const struct cf_id *node, enum cf_level *best)
{
    struct cf_acl_entry *e;
    size_t n;
    enum cf_status st = cf_acl_get(a->app->store, &a->tenant, node, &e, &n);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        if (cf_acl_entry_matches(a, &e[i]) && e[i].level > *best)
            *best = (enum cf_level)e[i].level;
    free(e);
    return CF_OK;
}

/* What the space adds to or takes from the entries' level best: manage in one's own private space
 * and, for admins, in the tenant space; nothing for auditors (they read no content) and in an
 * archived space (closed to everyone). kind, owner and archived are the space root's. */
static enum cf_level space_rule(const struct cf_actor *a, enum cf_level best, enum cf_space_kind kind,
                                const struct cf_id *owner, bool archived)
{
    if (kind == CF_SPACE_PRIVATE && cf_id_equal(owner, &a->id))
        best = CF_LEVEL_MANAGE; /* one's own private space */
    if (kind == CF_SPACE_TENANT && a->role == CF_ROLE_ADMIN)
        best = CF_LEVEL_MANAGE;
    if (a->role == CF_ROLE_AUDITOR || archived)
        best = CF_LEVEL_NONE;
    return best;
}

/* The trash check of a walk: a trashed node answers not found unless the caller resolves in the
 * trash. */
static bool hidden(const struct cf_node *n, unsigned flags)
{
    return n->trashed_at != 0 && (flags & CF_ACL_IN_TRASH) == 0;
}

enum cf_status cf_acl_resolve(const struct cf_actor *a, const struct cf_id *id, unsigned flags, struct cf_node *node,
                              enum cf_level *level, struct cf_acl_space *space)
{
    struct cf_node cur = {0};
    enum cf_level best = CF_LEVEL_NONE;
    enum cf_status st = cf_node_get(a->app->store, &a->tenant, id, node);
    if (st != CF_OK)
        return st;
    if (hidden(node, flags)) {
        cf_node_clear(node);
        return CF_ENOTFOUND;
    }
    /* Walk node → root, collecting grants; the root decides the space and its owner. */
    const struct cf_node *at = node;
    for (int depth = 0;; depth++) {
        if (depth == CF_ACL_MAX_DEPTH) {
            cf_log_error("%s: parent chain too deep or cyclic", __func__);
            st = CF_ECORRUPT;
            goto fail;
        }
        if ((st = entries_level(a, &at->id, &best)) != CF_OK)
            goto fail;
        if (cf_id_is_zero(&at->parent))
            break;
        struct cf_id parent = at->parent;
        cf_node_clear(&cur);
        if ((st = cf_node_get(a->app->store, &a->tenant, &parent, &cur)) != CF_OK) {
            if (st == CF_ENOTFOUND)
                st = CF_ECORRUPT; /* a live node's parent must exist */
            goto fail;
        }
        if (hidden(&cur, flags)) {
            st = CF_ENOTFOUND;
            goto fail;
        }
        at = &cur;
    }
    enum cf_space_kind kind = at->root_kind;
    if (space != NULL) {
        space->root = at->id;
        space->kind = kind;
        space->owner = kind == CF_SPACE_PRIVATE ? at->owner : (struct cf_id){0};
    }
    *level = space_rule(a, best, kind, &at->owner, at->archived_at != 0);
    cf_node_clear(&cur);
    return CF_OK;
fail:
    cf_node_clear(&cur);
    cf_node_clear(node);
    return st;
}

enum cf_status cf_acl_level(const struct cf_actor *a, const struct cf_id *id, struct cf_node *node,
                            enum cf_level *level)
{
    return cf_acl_resolve(a, id, 0, node, level, NULL);
}

enum cf_status cf_acl_space_of(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *id,
                               struct cf_acl_space *space)
{
    struct cf_id cur = *id;
    for (int depth = 0; depth < CF_ACL_MAX_DEPTH; depth++) {
        struct cf_node n;
        enum cf_status st = cf_node_get(store, tenant, &cur, &n);
        if (st != CF_OK)
            return st;
        bool root = cf_id_is_zero(&n.parent);
        if (root) {
            space->root = n.id;
            space->kind = n.root_kind;
            space->owner = n.root_kind == CF_SPACE_PRIVATE ? n.owner : (struct cf_id){0};
        }
        cur = n.parent;
        cf_node_clear(&n);
        if (root)
            return CF_OK;
    }
    return CF_ECORRUPT;
}

/* ---- moves ---------------------------------------------------------------------------------- */

/* Every ACL entry on a chain (a folder and its ancestors), whoever it names. */
struct chain {
    struct cf_acl_entry *e;
    size_t n, cap;
    struct cf_id root;
};

static enum cf_status chain_load(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *from,
                                 struct chain *c)
{
    struct cf_id at = *from;
    for (int depth = 0; depth < CF_ACL_MAX_DEPTH; depth++) {
        struct cf_node n;
        struct cf_acl_entry *e;
        size_t ne;
        enum cf_status st = cf_node_get(store, tenant, &at, &n);
        if (st != CF_OK)
            return st == CF_ENOTFOUND ? CF_ECORRUPT : st;
        if ((st = cf_acl_get(store, tenant, &at, &e, &ne)) != CF_OK) {
            cf_node_clear(&n);
            return st;
        }
        if (ne > 0) {
            if (c->n + ne > c->cap) {
                c->cap = (c->n + ne) * 2;
                c->e = cf_xrealloc(c->e, c->cap * sizeof *c->e);
            }
            memcpy(c->e + c->n, e, ne * sizeof *e);
            c->n += ne;
        }
        free(e);
        bool root = cf_id_is_zero(&n.parent);
        at = n.parent;
        if (root)
            c->root = n.id;
        cf_node_clear(&n);
        if (root)
            return CF_OK;
    }
    cf_log_error("%s: parent chain too deep or cyclic", __func__);
    return CF_ECORRUPT;
}

/* Whether chain c gives e's principal at least e's level (directly or through a tenant entry).
 * Groups and departments are compared as principals, not by membership or by the tree: conservative
 * (a move may ask for manage when it would raise nobody), never permissive. */
static bool covered(const struct chain *c, const struct cf_acl_entry *e)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct cf_acl_entry *o = &c->e[i];
        /* departments: an entry with subdepartments covers one without, not the reverse */
        bool same = o->kind == CF_PRINCIPAL_TENANT ||
                    (o->kind == e->kind &&
                     (e->kind == CF_PRINCIPAL_TENANT || cf_id_equal(&o->principal, &e->principal)) &&
                     (o->subdepartments || !e->subdepartments));
        if (same && o->level >= e->level)
            return true;
    }
    return false;
}

/* Whether moving from the chain `from` to the chain `to` would raise anyone's level. */
static bool raises(const struct chain *from, const struct chain *to)
{
    if (!cf_id_equal(&from->root, &to->root))
        return true; /* another space: its owner (or the tenant's admins) gain manage */
    for (size_t i = 0; i < to->n; i++)
        if (!covered(from, &to->e[i]))
            return true;
    return false;
}

enum cf_status cf_acl_move_allowed(const struct cf_actor *a, const struct cf_node *node, const struct cf_id *dest,
                                   const char **why)
{
    return cf_acl_move_allowed_in(a, node, dest, 0, why);
}

enum cf_status cf_acl_move_allowed_in(const struct cf_actor *a, const struct cf_node *node, const struct cf_id *dest,
                                      unsigned flags, const char **why)
{
    struct cf_node n, d;
    enum cf_level level, dlevel;
    struct chain from = {0}, to = {0};
    enum cf_status st = cf_acl_resolve(a, &node->id, flags, &n, &level, NULL);
    if (st != CF_OK)
        return st;
    cf_node_clear(&n);
    if ((st = cf_acl_level(a, dest, &d, &dlevel)) != CF_OK)
        return st;
    cf_node_clear(&d);
    if (level == CF_LEVEL_NONE || dlevel == CF_LEVEL_NONE)
        return CF_ENOTFOUND;
    if (level < CF_LEVEL_EDIT || dlevel < CF_LEVEL_EDIT) {
        *why = "your access level does not allow this";
        return CF_EDENIED;
    }
    if (level == CF_LEVEL_MANAGE)
        return CF_OK;
    if ((st = chain_load(a->app->store, &a->tenant, &node->parent, &from)) == CF_OK &&
        (st = chain_load(a->app->store, &a->tenant, dest, &to)) == CF_OK && raises(&from, &to)) {
        *why = "this move would give others access to it: it needs manage on the moved item";
        st = CF_EDENIED;
    }
    free(from.e);
    free(to.e);
    return st;
}

static bool node_or_respond(struct cf_req *r, const struct cf_id *id, unsigned flags, enum cf_level need,
                            struct cf_node *node, enum cf_level *level)
{
    struct cf_actor a = cf_actor_of(r);
    enum cf_status st = cf_acl_resolve(&a, id, flags, node, level, NULL);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return false;
    }
    if (*level == CF_LEVEL_NONE && (flags & CF_ACL_TEAM_ROOT) != 0 && node->root_kind == CF_SPACE_TENANT &&
        cf_id_is_zero(&node->parent) && r->who.user.role != CF_ROLE_AUDITOR)
        return true; /* "Team files" for a member: the caller filters what it lists (files.c) */
    if (*level == CF_LEVEL_NONE) {
        cf_node_clear(node);
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return false;
    }
    if (*level < need) {
        cf_node_clear(node);
        cf_respond_status(r, CF_EDENIED, "your access level does not allow this");
        return false;
    }
    return true;
}

bool cf_acl_node_or_respond(struct cf_req *r, const struct cf_id *id, enum cf_level need, struct cf_node *node,
                            enum cf_level *level)
{
    return node_or_respond(r, id, 0, need, node, level);
}

bool cf_acl_folder_or_respond(struct cf_req *r, const struct cf_id *id, enum cf_level need, enum cf_level *out)
{
    struct cf_node n;
    enum cf_level level;
    if (!cf_acl_node_or_respond(r, id, need, &n, &level))
        return false;
    if (out != NULL)
        *out = level;
    bool folder = n.type == CF_NODE_FOLDER;
    cf_node_clear(&n);
    if (!folder)
        cf_respond_status(r, CF_EINVAL, "the parent is not a folder");
    return folder;
}

bool cf_acl_param_in_or_respond(struct cf_req *r, size_t i, unsigned flags, enum cf_level need, struct cf_node *node,
                                enum cf_level *level)
{
    struct cf_id id;
    if (i >= r->nparams || cf_id_parse(r->params[i].base, r->params[i].len, &id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return false;
    }
    return node_or_respond(r, &id, flags, need, node, level);
}

bool cf_acl_param_or_respond(struct cf_req *r, size_t i, enum cf_level need, struct cf_node *node,
                             enum cf_level *level)
{
    return cf_acl_param_in_or_respond(r, i, 0, need, node, level);
}

/* ---- many nodes in one request (search) ------------------------------------------------------- */

/* What the walk of cf_acl_resolve learns about one folder, kept for the rest of one request: the
 * highest level its own and its ancestors' entries give the actor, whether it or an ancestor is
 * trashed, and its space root's kind, owner and archived mark. The level follows exactly as in
 * cf_acl_resolve (space_rule). */
struct memo_node {
    struct cf_id id, parent;
    char *name;               /* the folder's name as stored (NULL: empty slot) */
    enum cf_level best;
    bool hidden;
    enum cf_space_kind kind;
    struct cf_id owner;
    bool archived;
};

struct cf_acl_memo {
    struct cf_actor a;        /* copied; its group list borrowed */
    struct memo_node *t;      /* open addressing, cap a power of two, at most half full */
    size_t n, cap;
};

struct cf_acl_memo *cf_acl_memo_new(const struct cf_actor *a)
{
    struct cf_acl_memo *m = cf_xcalloc(1, sizeof *m);
    m->a = *a;
    m->cap = 64;
    m->t = cf_xcalloc(m->cap, sizeof *m->t);
    return m;
}

void cf_acl_memo_free(struct cf_acl_memo *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->t[i].name);
    free(m->t);
    free(m);
}

static size_t memo_slot(const struct cf_acl_memo *m, const struct cf_id *id)
{
    uint64_t h;
    memcpy(&h, id->b, sizeof h); /* ids are random */
    size_t i = (size_t)h & (m->cap - 1);
    while (m->t[i].name != NULL && !cf_id_equal(&m->t[i].id, id))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static const struct memo_node *memo_find(const struct cf_acl_memo *m, const struct cf_id *id)
{
    const struct memo_node *e = &m->t[memo_slot(m, id)];
    return e->name != NULL ? e : NULL;
}

/* Takes e (and its name). */
static void memo_insert(struct cf_acl_memo *m, struct memo_node *e)
{
    if (2 * (m->n + 1) > m->cap) {
        struct memo_node *old = m->t;
        size_t oldcap = m->cap;
        m->cap *= 2;
        m->t = cf_xcalloc(m->cap, sizeof *m->t);
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].name != NULL)
                m->t[memo_slot(m, &old[i].id)] = old[i];
        free(old);
    }
    struct memo_node *slot = &m->t[memo_slot(m, &e->id)];
    if (slot->name != NULL) {
        free(e->name); /* already there */
        return;
    }
    *slot = *e;
    m->n++;
}

/* What a child of `above` (NULL: c is a space root) inherits, with c's own entries. */
static enum cf_status memo_make(struct cf_acl_memo *m, const struct cf_node *c, const struct memo_node *above,
                                struct memo_node *out)
{
    enum cf_level own = CF_LEVEL_NONE;
    enum cf_status st = entries_level(&m->a, &c->id, &own);
    if (st != CF_OK)
        return st;
    *out = (struct memo_node){.id = c->id, .parent = c->parent, .best = own, .hidden = c->trashed_at != 0};
    if (above == NULL) {
        out->kind = c->root_kind;
        out->owner = c->owner;
        out->archived = c->archived_at != 0;
    } else {
        if (above->best > own)
            out->best = above->best;
        out->hidden = out->hidden || above->hidden;
        out->kind = above->kind;
        out->owner = above->owner;
        out->archived = above->archived;
    }
    return CF_OK;
}

/* Makes sure folder id and all its ancestors are remembered: one walk up to the first one already
 * known (or the root), then back down. A missing ancestor is corruption, as in cf_acl_resolve. */
static enum cf_status memo_fill(struct cf_acl_memo *m, const struct cf_id *id)
{
    if (memo_find(m, id) != NULL)
        return CF_OK;
    struct cf_node *chain = NULL;
    size_t n = 0, cap = 0;
    enum cf_status st = CF_OK;
    struct cf_id cur = *id;
    bool known_above = false;
    for (;;) {
        if (n == CF_ACL_MAX_DEPTH) {
            cf_log_error("%s: parent chain too deep or cyclic", __func__);
            st = CF_ECORRUPT;
            goto out;
        }
        if (n == cap) {
            cap = cap == 0 ? 8 : cap * 2;
            chain = cf_xrealloc(chain, cap * sizeof *chain);
        }
        if ((st = cf_node_get(m->a.app->store, &m->a.tenant, &cur, &chain[n])) != CF_OK) {
            st = st == CF_ENOTFOUND ? CF_ECORRUPT : st; /* a node's parent must exist */
            goto out;
        }
        n++;
        if (cf_id_is_zero(&chain[n - 1].parent))
            break;
        cur = chain[n - 1].parent;
        if (memo_find(m, &cur) != NULL) {
            known_above = true;
            break;
        }
    }
    for (size_t i = n; i-- > 0;) {
        struct memo_node e, above;
        const struct memo_node *up = NULL;
        if (i + 1 < n || known_above) {
            above = *memo_find(m, &chain[i].parent); /* a copy: inserting may move the table */
            up = &above;
        }
        if ((st = memo_make(m, &chain[i], up, &e)) != CF_OK)
            goto out;
        e.name = cf_xstrdup(chain[i].name);
        memo_insert(m, &e);
    }
out:
    for (size_t i = 0; i < n; i++)
        cf_node_clear(&chain[i]);
    free(chain);
    return st;
}

enum cf_status cf_acl_memo_level(struct cf_acl_memo *m, const struct cf_id *id, struct cf_node *node,
                                 enum cf_level *level)
{
    enum cf_status st = cf_node_get(m->a.app->store, &m->a.tenant, id, node);
    if (st != CF_OK)
        return st;
    struct memo_node above, e;
    const struct memo_node *up = NULL;
    if (!cf_id_is_zero(&node->parent)) {
        if ((st = memo_fill(m, &node->parent)) != CF_OK)
            goto fail;
        above = *memo_find(m, &node->parent);
        up = &above;
    }
    if ((st = memo_make(m, node, up, &e)) != CF_OK)
        goto fail;
    if (e.hidden) {
        st = CF_ENOTFOUND;
        goto fail;
    }
    if (node->type == CF_NODE_FOLDER) {
        e.name = cf_xstrdup(node->name); /* other nodes below it need it */
        memo_insert(m, &e);
    }
    *level = space_rule(&m->a, e.best, e.kind, &e.owner, e.archived);
    return CF_OK;
fail:
    cf_node_clear(node);
    return st;
}

enum cf_status cf_acl_memo_level_hint(struct cf_acl_memo *m, const struct cf_id *id, const struct cf_id *parent,
                                      struct cf_node *node, enum cf_level *level)
{
    if (!cf_id_is_zero(parent)) {
        enum cf_status st = memo_fill(m, parent);
        if (st != CF_OK && st != CF_ECORRUPT)
            return st;
        const struct memo_node *above = st == CF_OK ? memo_find(m, parent) : NULL;
        if (above != NULL) { /* else a stale hint (the parent purged meanwhile): the full walk decides */
            if (above->hidden)
                return CF_ENOTFOUND;
            enum cf_level own = CF_LEVEL_NONE;
            if ((st = entries_level(&m->a, id, &own)) != CF_OK)
                return st;
            enum cf_level best = above->best > own ? above->best : own;
            if (space_rule(&m->a, best, above->kind, &above->owner, above->archived) < CF_LEVEL_VIEW)
                return CF_ENOTFOUND; /* no access: nothing loaded */
        }
    }
    return cf_acl_memo_level(m, id, node, level);
}

bool cf_acl_memo_folder(const struct cf_acl_memo *m, const struct cf_id *id, const char **name, struct cf_id *parent,
                        enum cf_level *level)
{
    const struct memo_node *e = memo_find(m, id);
    if (e == NULL)
        return false;
    *name = e->name;
    *parent = e->parent;
    *level = e->hidden ? CF_LEVEL_NONE : space_rule(&m->a, e->best, e->kind, &e->owner, e->archived);
    return true;
}

/* Drops every ACL entry naming principal (kind, id) in the tenant: what a deleted group, user or
 * department was granted is gone, not merely unreachable. *count gets the number of nodes whose ACL changed.
 * Idempotent (a retry after a failure finishes the job). Worker threads. */
enum cf_status cf_acl_drop_principal(struct cf_store *store, const struct cf_id *tenant, enum cf_principal_kind kind,
                                     const struct cf_id *id, size_t *count)
{
    struct cf_grant *g;
    size_t n;
    *count = 0;
    enum cf_status st = cf_grants_of(store, tenant, kind, id, &g, &n);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; i < n && st == CF_OK; i++) {
        struct cf_acl_entry *e;
        size_t ne, keep = 0;
        if ((st = cf_acl_get(store, tenant, &g[i].node, &e, &ne)) != CF_OK) {
            if (st == CF_ENOTFOUND)
                st = CF_OK; /* the node is gone */
            continue;
        }
        for (size_t k = 0; k < ne; k++)
            if (!(e[k].kind == kind && cf_id_equal(&e[k].principal, id)))
                e[keep++] = e[k];
        if (keep != ne) {
            st = cf_acl_put(store, tenant, &g[i].node, e, keep);
            if (st == CF_ENOTFOUND)
                st = CF_OK;
            else if (st == CF_OK)
                (*count)++;
        }
        free(e);
    }
    free(g);
    return st;
}
