/*
 * quota.h: storage quotas at the API (quota.c): the tenant policy's limits, the early check at upload
 * creation, the 507 answer, and the usage shown by GET /api/v1/me. The counting itself is
 * storage/usage.c (docs/API.md "Quotas").
 */
#ifndef CF_QUOTA_H
#define CF_QUOTA_H

#include <jansson.h>

#include "storage.h"

struct cf_req;

/* cf_quota_of(store, tenant, q): the tenant policy's limits (zeros: none, or the policy unreadable:
 * the commit then checks nothing more than before quotas). */
void cf_quota_of(struct cf_store *store, const struct cf_id *tenant, struct cf_quota *q);
/* cf_quota_upload_or_respond(r, parent, name, n, on_conflict, size): the early check of an upload of
 * size bytes named name into folder parent: what the commit would charge (a new file: size to the
 * caller; replace over an existing file: size less its current size, to its owner) fits the tenant's
 * quotas; otherwise answers 507 quota_exceeded (or 500) and returns false. The commit decides again
 * under the namespace lock. Loop thread. */
bool cf_quota_upload_or_respond(struct cf_req *r, const struct cf_id *parent, const char *name, size_t n,
                                enum cf_conflict on_conflict, uint64_t size);
/* cf_quota_refusal_json(q): the 507 body: {"error":"quota_exceeded","message","quota","used",
 * "needed","scope":"user"|"tenant"}. */
json_t *cf_quota_refusal_json(const struct cf_quota_refusal *q);
/* cf_quota_respond(r, q): answers 507 with that body. */
void cf_quota_respond(struct cf_req *r, const struct cf_quota_refusal *q);
/* cf_usage_json(store, tenant, user): {"bytes": the user's usage, "quota": the user limit or null,
 * "tenant_bytes", "tenant_quota" (null: none)}; NULL if it cannot be read. */
json_t *cf_usage_json(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *user);

#endif
