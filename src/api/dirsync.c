/*
 * dirsync.c: POST /api/v1/admin/directory/sync {"dry_run": bool}: an admin runs the directory sync
 * (src/ops/directory.c, reached through struct cf_app's directory_sync hook, since src/api may not
 * call src/ops) on a worker and gets its report. The sync feeds the tenant named by directory.tenant:
 * only that tenant's admins may run it; for everyone else, and when no directory is configured, the
 * route does not exist (404).
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "context.h"
#include "handlers.h"
#include "http.h"
#include "log.h"

struct dirsync {
    struct cf_async a;
    bool dry_run;
    json_t *report;
    char *err;
};

static void dirsync_run(struct cf_async *a)
{
    struct dirsync *j = (struct dirsync *)a;
    a->st = a->app->directory_sync(a->app, j->dry_run, &j->report, &j->err);
}

static void dirsync_reply(struct cf_req *r, struct cf_async *a)
{
    struct dirsync *j = (struct dirsync *)a;
    if (a->st == CF_OK) {
        cf_respond_json(r, 200, json_incref(j->report));
        return;
    }
    if (a->st == CF_EUNAVAIL) {
        /* The reason names the directory's answer (unreachable, bind refused); never a password. */
        cf_respond_error(r, 503, "directory_unavailable",
                         j->err != NULL ? j->err : "the directory cannot be reached; nothing was changed");
        return;
    }
    cf_respond_status(r, a->st, NULL);
}

static void dirsync_free(struct cf_async *a)
{
    struct dirsync *j = (struct dirsync *)a;
    json_decref(j->report);
    free(j->err);
    free(j);
}

void cf_h_admin_directory_sync(struct cf_req *r)
{
    static const char *const allowed[] = {"dry_run", NULL};
    const struct cf_config *cfg = r->app->cfg;
    struct cf_id tenant;
    json_t *body;
    bool dry = false, have;
    if (!cfg->directory.enabled || r->app->directory_sync == NULL ||
        cf_tenant_find(r->app->store, cfg->directory.tenant, strlen(cfg->directory.tenant), &tenant) != CF_OK ||
        !cf_id_equal(&tenant, &r->who.user.tenant)) {
        cf_respond_status(r, CF_ENOTFOUND, "no directory feeds this tenant");
        return;
    }
    if (!cf_json_body_or_respond(r, &body))
        return;
    if (!cf_json_only_keys_or_respond(r, body, allowed) || !cf_json_bool_or_respond(r, body, "dry_run", &dry, &have)) {
        json_decref(body);
        return;
    }
    json_decref(body);
    struct dirsync *j = cf_xcalloc(1, sizeof *j);
    j->a.run = dirsync_run;
    j->a.reply = dirsync_reply;
    j->a.free = dirsync_free;
    j->dry_run = dry;
    cf_async_start(r, &j->a);
}
