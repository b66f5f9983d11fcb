/*
 * usage.h: usage counters inside storage (usage.c), for the orchestrators that change what they
 * count (commit.c, purge.c). The public side (cf_usage_get, cf_quota_check) is in storage.h.
 */
#ifndef CF_USAGE_H
#define CF_USAGE_H

#include "store_internal.h"

/* Changes to apply to the counters of one tenant: per owner, and their sum (the tenant's). */
struct cf_usage_delta {
    struct cf_id *owner;
    int64_t *delta;
    size_t n, cap;
    int64_t total;
};
/* cf_usage_delta_add(d, owner, delta): adds delta bytes to owner's change (and to the total). */
void cf_usage_delta_add(struct cf_usage_delta *d, const struct cf_id *owner, int64_t delta);
void cf_usage_delta_clear(struct cf_usage_delta *d);

/* cf_usage_batch(s, tk, d, b): puts into b the counters changed by d (and, for a tenant that has none
 * yet, every counter computed from its nodes). Under ns_lock, with the batch that makes the change. */
enum cf_status cf_usage_batch(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_usage_delta *d,
                              struct cf_batch *b) CF_WUR;
/* cf_usage_read(s, tk, user, user_bytes, tenant_bytes): the counters now (computed if the tenant has
 * none stored yet). user may be NULL; either out may be NULL. */
enum cf_status cf_usage_read(struct cf_store *s, const struct cf_tkeys *tk, const struct cf_id *user,
                             uint64_t *user_bytes, uint64_t *tenant_bytes) CF_WUR;

#endif
