/*
 * acl.h: the one place that decides what a caller may do with a node.
 *
 * Levels, each including the ones before it (SPEC §3): view < download < edit < manage.
 * The effective level of a user on a node is computed by walking from the node to its space root:
 * a node in a trashed subtree is invisible; the owner of a private space has manage in it; tenant
 * admins have manage in the tenant space; nobody else has anything (grants come with the identity
 * model). No access at all answers 404 (existence is not revealed), too little answers 403.
 */
#ifndef CF_ACL_H
#define CF_ACL_H

#include "base.h"
#include "storage.h"

struct cf_req;
struct cf_user;

enum cf_level { CF_LEVEL_NONE = 0, CF_LEVEL_VIEW = 1, CF_LEVEL_DOWNLOAD = 2, CF_LEVEL_EDIT = 3, CF_LEVEL_MANAGE = 4 };

const char *cf_level_name(enum cf_level level);

/* cf_acl_level(user, id, node, level): loads node id of user's tenant into *node and computes the
 * user's level on it. CF_ENOTFOUND when the node does not exist in that tenant, is trashed, or sits
 * in a trashed subtree. Any thread (storage reads only). */
enum cf_status cf_acl_level(const struct cf_user *user, const struct cf_id *id, struct cf_node *node,
                            enum cf_level *level) CF_WUR;

/* cf_acl_node_or_respond(r, id, need, node, level): the pipeline's authorisation step for a node:
 * answers 404 (absent, or no access at all), 403 (some access, less than need) or 500, and returns
 * false; otherwise fills *node (caller clears) and *level. */
bool cf_acl_node_or_respond(struct cf_req *r, const struct cf_id *id, enum cf_level need, struct cf_node *node,
                            enum cf_level *level);

/* cf_acl_param_or_respond(r, i, need, node, level): the same for the i-th path capture, which must
 * be a well-formed id (anything else is 404: ids are opaque). */
bool cf_acl_param_or_respond(struct cf_req *r, size_t i, enum cf_level need, struct cf_node *node,
                             enum cf_level *level);

#endif
