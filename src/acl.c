/*
 * acl.c: effective levels (see acl.h). The ancestor walk is bounded by CF_ACL_MAX_DEPTH so that a
 * corrupted parent chain (a cycle) cannot hang a loop thread.
 */
#include "acl.h"

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

enum cf_status cf_acl_level(const struct cf_user *user, const struct cf_id *id, struct cf_node *node,
                            enum cf_level *level)
{
    struct cf_node cur = {0};
    enum cf_status st = cf_node_get(cf_srv->store, &user->tenant, id, node);
    if (st != CF_OK)
        return st;
    if (node->trashed_at != 0) {
        cf_node_clear(node);
        return CF_ENOTFOUND;
    }
    struct cf_id walk = node->parent;
    enum cf_space_kind kind = node->root_kind;
    struct cf_id root_owner = node->owner;
    for (int depth = 0; !cf_id_is_zero(&walk); depth++) {
        if (depth == CF_ACL_MAX_DEPTH) {
            cf_log_error("%s: parent chain too deep or cyclic", __func__);
            st = CF_ECORRUPT;
            goto fail;
        }
        cf_node_clear(&cur);
        if ((st = cf_node_get(cf_srv->store, &user->tenant, &walk, &cur)) != CF_OK) {
            if (st == CF_ENOTFOUND)
                st = CF_ECORRUPT; /* a live node's parent must exist */
            goto fail;
        }
        if (cur.trashed_at != 0) {
            st = CF_ENOTFOUND;
            goto fail;
        }
        walk = cur.parent;
        kind = cur.root_kind;
        root_owner = cur.owner;
    }
    cf_node_clear(&cur);
    *level = CF_LEVEL_NONE;
    if (user->role == CF_ROLE_AUDITOR)
        return CF_OK; /* auditors query provenance; they read no content */
    if (kind == CF_SPACE_PRIVATE && cf_id_equal(&root_owner, &user->id))
        *level = CF_LEVEL_MANAGE;
    else if (kind == CF_SPACE_TENANT && user->role == CF_ROLE_ADMIN)
        *level = CF_LEVEL_MANAGE;
    return CF_OK;
fail:
    cf_node_clear(&cur);
    cf_node_clear(node);
    return st;
}

bool cf_acl_node_or_respond(struct cf_req *r, const struct cf_id *id, enum cf_level need, struct cf_node *node,
                            enum cf_level *level)
{
    enum cf_status st = cf_acl_level(&r->who.user, id, node, level);
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
