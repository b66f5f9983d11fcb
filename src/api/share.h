/*
 * share.h: what the rest of the daemon needs from share.c (the handlers are in handlers.h).
 */
#ifndef CF_SHARE_H
#define CF_SHARE_H

#include "base.h"

/* cf_share_revoke_all_of(tenant, creator, n): revokes every live link the user created; *n counts
 * them (offboarding). cf_share_hand_over_all_of(tenant, creator, heir, n): hands them to heir
 * instead (offboarding, when the admin asks); each then lives by heir's level on its node. */
enum cf_status cf_share_revoke_all_of(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *creator,
                                      size_t *n) CF_WUR;
enum cf_status cf_share_hand_over_all_of(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *creator,
                                         const struct cf_id *heir, size_t *n) CF_WUR;

/* cf_share_suspend_all_of(tenant, creator, suspend, changed): suspends (freezing) or restores (an
 * admin's explicit restore on unfreezing) every link the user created that is not revoked; the
 * state is kept in each link's sealed record, so unfreezing alone revives nothing. *changed: how
 * many links changed. Worker threads. */
enum cf_status cf_share_suspend_all_of(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *creator,
                                       bool suspend, size_t *changed) CF_WUR;

/* cf_share_recipient_or_respond(r): the dispatcher's check of a CF_ROUTE_RECIPIENT route (route.h):
 * the link named by the path exists and is live (404/410), this client holds an unexpired access
 * token for it (401), and an internal link has a member session of its tenant (401). True with the
 * link kept in r for the handler; false with the error answered. Loop thread. */
struct cf_req;
bool cf_share_recipient_or_respond(struct cf_req *r);

/* cf_share_code_ok(c, n): a custom extraction code chosen by a link's creator: 4..CF_SHARE_CODE_MAX
 * characters from A-Z a-z 0-9. Pure, any thread. */
bool cf_share_code_ok(const char *c, size_t n);

#endif
