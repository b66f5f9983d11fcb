/*
 * quota.c: storage quotas at the API (see quota.h). Enforced twice: at upload creation against
 * Upload-Length or the simple upload's body length (an early, friendly refusal before any byte is
 * stored), and at the commit under the namespace lock (storage/commit.c), which is what holds when
 * several uploads race: each may pass creation, the one whose commit would cross the limit fails.
 *
 * Owns: the 507 body. May touch: the tenant policy and the usage counters (storage.h).
 */
#include "quota.h"

#include <inttypes.h>
#include <stdio.h>

#include "http.h"

void cf_quota_of(struct cf_store *store, const struct cf_id *tenant, struct cf_quota *q)
{
    struct cf_tenant t;
    q->user_bytes = q->tenant_bytes = 0;
    if (cf_tenant_get(store, tenant, &t) != CF_OK)
        return;
    q->user_bytes = t.policy.user_quota_bytes;
    q->tenant_bytes = t.policy.tenant_quota_bytes;
    cf_tenant_clear(&t);
}

json_t *cf_quota_refusal_json(const struct cf_quota_refusal *q)
{
    char msg[200];
    snprintf(msg, sizeof msg, "%s storage quota of %" PRIu64 " bytes would be exceeded: %" PRIu64 " used, %" PRIu64
                              " more needed",
             q->tenant ? "the organisation's" : "your", q->quota, q->used, q->needed);
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "error", "quota_exceeded", "message", msg, "quota",
                     (json_int_t)q->quota, "used", (json_int_t)q->used, "needed", (json_int_t)q->needed, "scope",
                     q->tenant ? "tenant" : "user");
}

void cf_quota_respond(struct cf_req *r, const struct cf_quota_refusal *q)
{
    cf_respond_json(r, 507, cf_quota_refusal_json(q));
}

bool cf_quota_upload_or_respond(struct cf_req *r, const struct cf_id *parent, const char *name, size_t n,
                                enum cf_conflict on_conflict, uint64_t size)
{
    struct cf_quota q;
    struct cf_quota_refusal why;
    struct cf_id charged = r->who.user.id, existing;
    uint64_t mine, total;
    int64_t needed = size > INT64_MAX ? INT64_MAX : (int64_t)size;
    struct cf_store *store = r->app->store;
    cf_quota_of(store, &r->who.user.tenant, &q);
    if (q.user_bytes == 0 && q.tenant_bytes == 0)
        return true;
    enum cf_status st = CF_OK;
    if (on_conflict == CF_CONFLICT_REPLACE &&
        cf_node_find_child(store, &r->who.user.tenant, parent, name, n, &existing) == CF_OK) {
        struct cf_node old;
        if (cf_node_get(store, &r->who.user.tenant, &existing, &old) == CF_OK) {
            if (old.type == CF_NODE_FILE) { /* a new version: its owner pays the difference */
                charged = old.owner;
                needed -= (int64_t)old.size;
            }
            cf_node_clear(&old);
        }
    }
    if ((st = cf_usage_get(store, &r->who.user.tenant, &charged, &mine, &total)) == CF_OK &&
        (st = cf_quota_decide(&q, mine, total, needed, &why)) == CF_OK)
        return true;
    if (st == CF_EQUOTA)
        cf_quota_respond(r, &why);
    else
        cf_respond_status(r, st, NULL);
    return false;
}

static json_t *limit_json(uint64_t v)
{
    return v != 0 ? json_integer((json_int_t)v) : json_null();
}

json_t *cf_usage_json(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *user)
{
    struct cf_quota q;
    uint64_t mine, total;
    if (cf_usage_get(store, tenant, user, &mine, &total) != CF_OK)
        return NULL;
    cf_quota_of(store, tenant, &q);
    return json_pack("{s:I, s:o, s:I, s:o}", "bytes", (json_int_t)mine, "quota", limit_json(q.user_bytes),
                     "tenant_bytes", (json_int_t)total, "tenant_quota", limit_json(q.tenant_bytes));
}
