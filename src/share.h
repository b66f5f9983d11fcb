/*
 * share.h: what the rest of the daemon needs from share.c (the handlers are in handlers.h).
 */
#ifndef CF_SHARE_H
#define CF_SHARE_H

#include "base.h"

/* cf_share_revoke_all_of(tenant, creator): revokes every link the user created (offboarding).
 * Worker threads. */
enum cf_status cf_share_revoke_all_of(const struct cf_id *tenant, const struct cf_id *creator) CF_WUR;

/* cf_share_code_ok(c, n): a custom extraction code chosen by a link's creator: 4..CF_SHARE_CODE_MAX
 * characters from A-Z a-z 0-9. Pure, any thread. */
bool cf_share_code_ok(const char *c, size_t n);

#endif
