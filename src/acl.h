/*
 * acl.h: the one place that decides what a caller may do with a node (SPEC §3).
 *
 * Levels, each including the ones before it: view < download < edit < manage.
 * A user's effective level on a node is the highest of:
 *   - every ACL entry on the node or any ancestor that names the user, one of the user's groups, or
 *     the whole tenant;
 *   - manage, if the user owns the node or any ancestor (the owner of a private space owns its root);
 *   - manage, for tenant admins, anywhere in the tenant space.
 * Exceptions that override everything: auditors read no content (none); nothing below a trashed
 * node exists (not found); nothing below an archived private root (an offboarded user's space) can
 * be read by anyone (none). Admins have no special access to private spaces.
 * No access at all answers 404 (existence is not revealed); too little answers 403.
 */
#ifndef CF_ACL_H
#define CF_ACL_H

#include "base.h"
#include "storage.h"

struct cf_req;

enum cf_level { CF_LEVEL_NONE = 0, CF_LEVEL_VIEW = 1, CF_LEVEL_DOWNLOAD = 2, CF_LEVEL_EDIT = 3, CF_LEVEL_MANAGE = 4 };

/* Who is asking: enough of a principal to decide access, copyable to worker threads. */
struct cf_actor {
    struct cf_id tenant;
    struct cf_id id;
    enum cf_role role;
    const struct cf_id *groups; /* borrowed */
    size_t ngroups;
};

const char *cf_level_name(enum cf_level level);
/* cf_level_parse(s, n): "view".."manage" → level, CF_LEVEL_NONE for anything else. */
enum cf_level cf_level_parse(const char *s, size_t n);

/* cf_actor_of(r): the actor of an authenticated request (borrows r's group list). */
struct cf_actor cf_actor_of(const struct cf_req *r);

/* cf_acl_level(a, id, node, level): loads node id of a's tenant into *node and computes a's level.
 * CF_ENOTFOUND when the node does not exist in that tenant, is trashed, or sits in a trashed
 * subtree. Any thread (storage reads only). */
enum cf_status cf_acl_level(const struct cf_actor *a, const struct cf_id *id, struct cf_node *node,
                            enum cf_level *level) CF_WUR;

/* cf_acl_node_or_respond(r, id, need, node, level): the authorisation step for a node: answers 404
 * (absent, or no access at all), 403 (some access, less than need) or 500 and returns false;
 * otherwise fills *node (caller clears) and *level. */
bool cf_acl_node_or_respond(struct cf_req *r, const struct cf_id *id, enum cf_level need, struct cf_node *node,
                            enum cf_level *level);

/* cf_acl_folder_or_respond(r, id, need): the same for a folder that something is to be created in:
 * also answers 400 when the node is a file. */
bool cf_acl_folder_or_respond(struct cf_req *r, const struct cf_id *id, enum cf_level need);

/* cf_acl_param_or_respond(r, i, need, node, level): the same for the i-th path capture, which must
 * be a well-formed id (anything else is 404: ids are opaque). */
bool cf_acl_param_or_respond(struct cf_req *r, size_t i, enum cf_level need, struct cf_node *node,
                             enum cf_level *level);

/* cf_acl_entry_matches(a, e): whether an entry names a, one of a's groups, or the tenant. */
bool cf_acl_entry_matches(const struct cf_actor *a, const struct cf_acl_entry *e);

#endif
