/*
 * acl.h: the one place that decides what a caller may do with a node (SPEC §3).
 *
 * Levels, each including the ones before it: view < download < edit < manage.
 *
 * The level rule (docs/SECURITY.md "The level rule"): a user's effective level on a node is the
 * highest of
 *   - every ACL entry on the node or any ancestor that names the user, one of the user's groups, one
 *     of the user's departments (or, for an entry with "subdepartments", a department above one of
 *     them), or the whole tenant;
 *   - manage, if the node lies in the user's own private space (spaces are owned, nodes are not: a
 *     node's `owner` field records who created it and confers nothing);
 *   - manage, for tenant admins, anywhere in the tenant space.
 * Exceptions that override everything: auditors read no content (none); nothing below a trashed
 * node exists (not found); nothing below an archived private root (an offboarded user's space) can
 * be read by anyone (none). Admins have no special access to private spaces.
 * No operation other than an explicit grant by someone with manage raises anyone's level: the one
 * operation that could (a move, which changes what a subtree inherits) is decided here too
 * (cf_acl_move_allowed).
 * No access at all answers 404 (existence is not revealed); too little answers 403.
 */
#ifndef CF_ACL_H
#define CF_ACL_H

#include "base.h"
#include "context.h"
#include "storage.h"

struct cf_req;

enum cf_level { CF_LEVEL_NONE = 0, CF_LEVEL_VIEW = 1, CF_LEVEL_DOWNLOAD = 2, CF_LEVEL_EDIT = 3, CF_LEVEL_MANAGE = 4 };

/* Who is asking: enough of a principal to decide access, copyable to worker threads. */
struct cf_actor {
    const struct cf_app *app;   /* where the actor's access is resolved (the request's r->app) */
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

/* Where a node lives: its space's root, kind and owner (zero for the tenant space). */
struct cf_acl_space {
    struct cf_id root;
    enum cf_space_kind kind;
    struct cf_id owner;
};

/* cf_acl_space_of(store, tenant, id, space): the space node id lies in, trashed or not (a bounded
 * walk to its root; no levels). Any thread. */
enum cf_status cf_acl_space_of(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *id,
                               struct cf_acl_space *space) CF_WUR;

/* Flags of cf_acl_resolve. */
#define CF_ACL_IN_TRASH 1u /* a trashed node (or one below a trashed folder) is resolved as if it
                              were not trashed, for purging it from the trash */
#define CF_ACL_TEAM_ROOT 2u /* the tenant space's root answers every member of the tenant (not
                               auditors) even without a level on it, with CF_LEVEL_NONE: its
                               listing then shows each caller only the children they can see */

/* cf_acl_resolve(a, id, flags, node, level, space): cf_acl_level with flags, and the node's space
 * in *space when space is not NULL. Any thread (storage reads only). */
enum cf_status cf_acl_resolve(const struct cf_actor *a, const struct cf_id *id, unsigned flags, struct cf_node *node,
                              enum cf_level *level, struct cf_acl_space *space) CF_WUR;

/* cf_acl_move_allowed(a, node, dest): whether a may move node (loaded, live) under folder dest.
 * Needs edit on the node and on dest; and manage on the node if the move would raise anyone's
 * level on its subtree: when dest lies in another space, or when dest's chain (dest and its
 * ancestors) carries an ACL entry that the node's present chain does not cover (an entry for the
 * same principal, or for the whole tenant, at the same level or higher). CF_OK, CF_ENOTFOUND (no
 * access to the node or to dest), CF_EDENIED (too little; *why says what) or a storage error.
 * Called by the move under the namespace lock, so that the decision and the write see the same
 * tree. Any thread. */
enum cf_status cf_acl_move_allowed(const struct cf_actor *a, const struct cf_node *node, const struct cf_id *dest,
                                   const char **why) CF_WUR;

/* cf_acl_move_allowed_in(a, node, dest, flags, why): the same with node resolved under cf_acl_resolve
 * flags (CF_ACL_IN_TRASH: a restore from the trash, trash.c, is decided as a move from where the node
 * was deleted). */
enum cf_status cf_acl_move_allowed_in(const struct cf_actor *a, const struct cf_node *node, const struct cf_id *dest,
                                      unsigned flags, const char **why) CF_WUR;

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

/* cf_acl_folder_or_respond(r, id, need, level): the same for a folder that something is to be
 * created in: also answers 400 when the node is a file. *level (if not NULL) gets the caller's level
 * on the folder, which is also its level on a new child (a creator gains nothing by creating). */
bool cf_acl_folder_or_respond(struct cf_req *r, const struct cf_id *id, enum cf_level need, enum cf_level *level);

/* cf_acl_param_or_respond(r, i, need, node, level): the same for the i-th path capture, which must
 * be a well-formed id (anything else is 404: ids are opaque). */
bool cf_acl_param_or_respond(struct cf_req *r, size_t i, enum cf_level need, struct cf_node *node,
                             enum cf_level *level);

/* cf_acl_param_in_or_respond(r, i, flags, need, node, level): the same with cf_acl_resolve flags
 * (CF_ACL_IN_TRASH: purging from the trash). */
bool cf_acl_param_in_or_respond(struct cf_req *r, size_t i, unsigned flags, enum cf_level need, struct cf_node *node,
                                enum cf_level *level);

/* cf_acl_entry_matches(a, e): whether an entry names a, one of a's groups, the tenant, or one of a's
 * departments (primary or other) or, for an entry with subdepartments, an ancestor of one (read from
 * the store: a move is seen by the very next request). */
bool cf_acl_entry_matches(const struct cf_actor *a, const struct cf_acl_entry *e);

/* Levels of many nodes in one request (search, src/api/search.c): the same rule as cf_acl_resolve,
 * with every folder met on the way remembered (its chain's entries, trash and space), so that nodes
 * sharing ancestors cost one node and one ACL read each. A memo lives for one request only: a
 * revocation is seen by the next one. cf_acl_memo_new(a) copies a (its group list stays borrowed);
 * cf_acl_memo_free(NULL) is a no-op. cf_acl_memo_level(m, id, node, level) is cf_acl_level (node
 * loaded into *node, caller clears; CF_ENOTFOUND when absent, trashed or below a trashed folder).
 * cf_acl_memo_folder(m, id, name, parent, level): a folder remembered by an earlier call (every
 * ancestor of a node asked about is): its name (borrowed from m), parent and a's level on it (NONE
 * if trashed or below the trash); false if not remembered. One thread at a time per memo. */
struct cf_acl_memo;
struct cf_acl_memo *cf_acl_memo_new(const struct cf_actor *a);
void cf_acl_memo_free(struct cf_acl_memo *m);
enum cf_status cf_acl_memo_level(struct cf_acl_memo *m, const struct cf_id *id, struct cf_node *node,
                                 enum cf_level *level) CF_WUR;
bool cf_acl_memo_folder(const struct cf_acl_memo *m, const struct cf_id *id, const char **name, struct cf_id *parent,
                        enum cf_level *level);
/* cf_acl_memo_level_hint(m, id, parent, node, level): cf_acl_memo_level for a node believed to lie in
 * folder parent (the search index's view, which is as fresh as the last acknowledged write): when
 * the level there would be below view (parent trashed or hidden, or neither parent's chain nor id's
 * own entries give view), CF_ENOTFOUND without loading the node (one ACL read); otherwise the full
 * decision on the node as stored, whatever its parent is now. */
enum cf_status cf_acl_memo_level_hint(struct cf_acl_memo *m, const struct cf_id *id, const struct cf_id *parent,
                                      struct cf_node *node, enum cf_level *level) CF_WUR;

/* cf_acl_drop_principal(store, tenant, kind, id, count): drops every ACL entry naming principal
 * (kind, id) in the tenant (a deleted group, user or department: what it was granted is gone, not
 * merely unreachable). *count: nodes whose ACL changed. Idempotent. Worker threads. */
enum cf_status cf_acl_drop_principal(struct cf_store *store, const struct cf_id *tenant, enum cf_principal_kind kind,
                                     const struct cf_id *id, size_t *count) CF_WUR;

#endif
