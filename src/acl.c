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
#include "server.h"

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
    enum cf_status st = cf_acl_get(cf_srv->store, &a->tenant, node, &e, &n);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        if (cf_acl_entry_matches(a, &e[i]) && e[i].level > *best)
            *best = (enum cf_level)e[i].level;
    free(e);
    return CF_OK;
}

enum cf_status cf_acl_level(const struct cf_actor *a, const struct cf_id *id, struct cf_node *node,
                            enum cf_level *level)
{
    struct cf_node cur = {0};
    enum cf_level best = CF_LEVEL_NONE;
    bool owner = false;
    enum cf_status st = cf_node_get(cf_srv->store, &a->tenant, id, node);
    if (st != CF_OK)
        return st;
    if (node->trashed_at != 0) {
        cf_node_clear(node);
        return CF_ENOTFOUND;
    }
    /* Walk node → root, collecting grants and ownership; the root decides the space. */
    const struct cf_node *at = node;
    for (int depth = 0;; depth++) {
        if (depth == CF_ACL_MAX_DEPTH) {
            cf_log_error("%s: parent chain too deep or cyclic", __func__);
            st = CF_ECORRUPT;
            goto fail;
        }
        if (cf_id_equal(&at->owner, &a->id))
            owner = true;
        if ((st = entries_level(a, &at->id, &best)) != CF_OK)
            goto fail;
        if (cf_id_is_zero(&at->parent))
            break;
        struct cf_id parent = at->parent;
        cf_node_clear(&cur);
        if ((st = cf_node_get(cf_srv->store, &a->tenant, &parent, &cur)) != CF_OK) {
            if (st == CF_ENOTFOUND)
                st = CF_ECORRUPT; /* a live node's parent must exist */
            goto fail;
        }
        if (cur.trashed_at != 0) {
            st = CF_ENOTFOUND;
            goto fail;
        }
        at = &cur;
    }
    enum cf_space_kind kind = at->root_kind;
    bool archived = at->archived_at != 0;
    cf_node_clear(&cur);
    if (owner)
        best = CF_LEVEL_MANAGE;
    if (kind == CF_SPACE_TENANT && a->role == CF_ROLE_ADMIN)
        best = CF_LEVEL_MANAGE;
    if (a->role == CF_ROLE_AUDITOR || archived)
        best = CF_LEVEL_NONE; /* auditors read no content; an archived space is closed to everyone */
    *level = best;
    return CF_OK;
fail:
    cf_node_clear(&cur);
    cf_node_clear(node);
    return st;
}

bool cf_acl_node_or_respond(struct cf_req *r, const struct cf_id *id, enum cf_level need, struct cf_node *node,
                            enum cf_level *level)
{
    struct cf_actor a = cf_actor_of(r);
    enum cf_status st = cf_acl_level(&a, id, node, level);
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

bool cf_acl_folder_or_respond(struct cf_req *r, const struct cf_id *id, enum cf_level need)
{
    struct cf_node n;
    enum cf_level level;
    if (!cf_acl_node_or_respond(r, id, need, &n, &level))
        return false;
    bool folder = n.type == CF_NODE_FOLDER;
    cf_node_clear(&n);
    if (!folder)
        cf_respond_status(r, CF_EINVAL, "the parent is not a folder");
    return folder;
}

bool cf_acl_param_or_respond(struct cf_req *r, size_t i, enum cf_level need, struct cf_node *node,
                             enum cf_level *level)
{
    struct cf_id id;
    if (i >= r->nparams || cf_id_parse(r->params[i].base, r->params[i].len, &id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return false;
    }
    return cf_acl_node_or_respond(r, &id, need, node, level);
}
