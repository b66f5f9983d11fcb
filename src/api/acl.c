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

bool cf_acl_entry_matches(const struct cf_actor *a, const struct cf_acl_entry *e)
{
    switch (e->kind) {
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
    bool archived = at->archived_at != 0;
    if (space != NULL) {
        space->root = at->id;
        space->kind = kind;
        space->owner = kind == CF_SPACE_PRIVATE ? at->owner : (struct cf_id){0};
    }
    if (kind == CF_SPACE_PRIVATE && cf_id_equal(&at->owner, &a->id))
        best = CF_LEVEL_MANAGE; /* one's own private space */
    if (kind == CF_SPACE_TENANT && a->role == CF_ROLE_ADMIN)
        best = CF_LEVEL_MANAGE;
    cf_node_clear(&cur);
    if (a->role == CF_ROLE_AUDITOR || archived)
        best = CF_LEVEL_NONE; /* auditors read no content; an archived space is closed to everyone */
    *level = best;
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
 * Groups are compared as principals, not by membership: conservative (a move may ask for manage
 * when it would raise nobody), never permissive. */
static bool covered(const struct chain *c, const struct cf_acl_entry *e)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct cf_acl_entry *o = &c->e[i];
        bool same = o->kind == CF_PRINCIPAL_TENANT ||
                    (o->kind == e->kind && (e->kind == CF_PRINCIPAL_TENANT || cf_id_equal(&o->principal, &e->principal)));
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
    struct cf_node n, d;
    enum cf_level level, dlevel;
    struct chain from = {0}, to = {0};
    enum cf_status st = cf_acl_level(a, &node->id, &n, &level);
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
