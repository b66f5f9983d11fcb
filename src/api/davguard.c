/*
 * davguard.c: WebDAV locks on the API's own writes (davguard.h). A thin layer over
 * cf_davlock_check (storage/davprop.c), so that files.c, upload.c and tus.c need no part of the
 * WebDAV handlers (which use them: no cycle).
 */
#include "davguard.h"

#include "davprop.h"
#include "http.h"

bool cf_davguard_node_or_respond(struct cf_req *r, const struct cf_id *node)
{
    enum cf_status st = cf_davlock_check(r->app->store, &r->who.user.tenant, node, &r->who.user.id, cf_now_ms());
    if (st == CF_OK)
        return true;
    cf_respond_status(r, st, st == CF_ELOCKED ? "locked through WebDAV by another user" : NULL);
    return false;
}

bool cf_davguard_upload_or_respond(struct cf_req *r, const struct cf_id *parent, const char *name, size_t n)
{
    struct cf_id existing;
    if (!cf_davguard_node_or_respond(r, parent))
        return false;
    enum cf_status st = cf_node_find_child(r->app->store, &r->who.user.tenant, parent, name, n, &existing);
    if (st == CF_ENOTFOUND)
        return true;
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return false;
    }
    return cf_davguard_node_or_respond(r, &existing);
}
