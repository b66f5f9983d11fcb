/*
 * inspect.c: the upload-safety step (see inspect.h): scan + sniff through a scanner process, then
 * the server's and the tenant's policy.
 *
 * Outcomes, decided in one place (decide()):
 *   scanner down, timed out, crashed or failed   → CF_EUNAVAIL (503); never a silent pass
 *   a signature matched                          → CF_EINFECTED (422, the signature)
 *   not scannable (limits, encryption, RAR, ≥2G) → scan.on_unscannable: reject → CF_EUNSCANNABLE
 *                                                  (422, the reason); allow → admitted as "unscannable"
 *   detected type blocked by the tenant          → CF_EBLOCKED (422, the type)
 *   otherwise                                    → CF_OK, "clean" ("unchecked" in development mode)
 */
#include "inspect.h"

#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

/* The scan thread asks for bytes of the file; they come from the sealed pending chunks. */
static enum cf_status read_back(void *ctx, uint64_t offset, void *buf, size_t len)
{
    struct cf_inspection *in = ctx;
    uint8_t *out = buf;
    while (len > 0) {
        uint32_t index = (uint32_t)(offset / CF_CHUNK_SIZE);
        size_t within = (size_t)(offset % CF_CHUNK_SIZE);
        if (!in->cached || in->chunk_index != index) {
            if (in->chunk == NULL && (in->chunk = cf_try_malloc(CF_CHUNK_SIZE)) == NULL)
                return CF_EIO;
            in->cached = false;
            enum cf_status st = cf_upload_read_chunk(in->up, in->size, index, in->chunk, &in->chunk_len);
            if (st != CF_OK)
                return st;
            in->cached = true;
            in->chunk_index = index;
        }
        if (within >= in->chunk_len)
            return CF_ECORRUPT;
        size_t n = in->chunk_len - within < len ? in->chunk_len - within : len;
        memcpy(out, in->chunk + within, n);
        out += n;
        offset += n;
        len -= n;
    }
    return CF_OK;
}

static bool is_executable(const char *mime)
{
    static const char *const exe[] = {
        "application/x-executable", "application/x-pie-executable", "application/x-sharedlib",
        "application/x-mach-binary", "application/vnd.microsoft.portable-executable", "application/x-dosexec",
        "application/x-ms-ne-executable", "application/x-msi", "application/x-object", NULL,
    };
    for (size_t i = 0; exe[i] != NULL; i++)
        if (strcmp(mime, exe[i]) == 0)
            return true;
    return false;
}

bool cf_blocked_type(const struct cf_policy *p, const char *mime)
{
    for (size_t i = 0; i < p->nblocked; i++) {
        const char *b = p->blocked_types[i];
        size_t bl = strlen(b);
        if (strcmp(b, mime) == 0)
            return true;
        if (bl >= 2 && strcmp(b + bl - 2, "/*") == 0 && strncmp(b, mime, bl - 1) == 0)
            return true;
        if (strcmp(b, "application/x-executable") == 0 && is_executable(mime))
            return true;
    }
    return false;
}

static void summary(struct cf_inspection *in, const char *result, const char *detail)
{
    const struct cf_scan_msg_info *i = &in->job.verdict.info;
    snprintf(in->result_buf, sizeof in->result_buf, "%s", result);
    snprintf(in->engine_buf, sizeof in->engine_buf, "%s", i->engine);
    snprintf(in->database_buf, sizeof in->database_buf, "%s", i->database);
    in->scan.result = in->result_buf;
    in->scan.engine = in->engine_buf;
    in->scan.database = in->database_buf;
    in->scan.detail = NULL;
    if (detail != NULL) {
        snprintf(in->detail_buf, sizeof in->detail_buf, "%s", detail);
        in->scan.detail = in->detail_buf;
    }
    in->scan.at = cf_now_ms();
}

static enum cf_status decide(struct cf_inspection *in)
{
    const struct cf_scan_job *j = &in->job;
    const struct cf_scan_msg_verdict *v = &j->verdict;
    if (j->status != CF_OK)
        return j->status == CF_EIO || j->status == CF_ECORRUPT ? CF_EIO : CF_EUNAVAIL;
    snprintf(in->mime, sizeof in->mime, "%s", v->mime);
    switch ((enum cf_scan_result)v->result) {
    case CF_SCAN_INFECTED:
        snprintf(in->signature, sizeof in->signature, "%s", v->signature);
        return CF_EINFECTED;
    case CF_SCAN_ERROR:
        cf_log_warn("a scan failed (%s): the upload is refused with 503", v->signature);
        return CF_EUNAVAIL;
    case CF_SCAN_UNSCANNABLE:
        snprintf(in->signature, sizeof in->signature, "%s", v->signature);
        if (in->app->cfg->scan.on_unscannable != CF_UNSCANNABLE_ALLOW)
            return CF_EUNSCANNABLE;
        summary(in, "unscannable", v->signature);
        break;
    case CF_SCAN_CLEAN:
        summary(in, v->info.development ? "unchecked" : "clean", NULL);
        break;
    }
    struct cf_tenant t;
    enum cf_status st = cf_tenant_get(in->app->store, &in->tenant, &t);
    if (st != CF_OK)
        return st == CF_ENOTFOUND ? CF_ENOTFOUND : CF_EIO;
    bool blocked = cf_blocked_type(&t.policy, in->mime);
    cf_tenant_clear(&t);
    return blocked ? CF_EBLOCKED : CF_OK;
}

static void scanned(struct cf_scan_job *job)
{
    struct cf_inspection *in = (struct cf_inspection *)((char *)job - offsetof(struct cf_inspection, job));
    in->st = decide(in);
    if (in->st != CF_OK)
        cf_metrics_upload_rejected(in->st);
    if (in->chunk != NULL)
        cf_wipe(in->chunk, CF_CHUNK_SIZE);
    in->cached = false;
    in->done(in);
}

void cf_inspect(struct cf_inspection *in)
{
    in->st = CF_EUNAVAIL;
    in->mime[0] = '\0';
    in->signature[0] = '\0';
    memset(&in->scan, 0, sizeof in->scan);
    memset(&in->job, 0, sizeof in->job);
    in->job.size = in->size;
    in->job.read = read_back;
    in->job.ctx = in;
    in->job.done = scanned;
    cf_scan_submit(&in->job);
}

void cf_inspect_verdict(struct cf_inspection *in, const struct cf_scan_job *scanned_job)
{
    in->st = CF_EUNAVAIL;
    in->mime[0] = '\0';
    in->signature[0] = '\0';
    memset(&in->scan, 0, sizeof in->scan);
    memset(&in->job, 0, sizeof in->job);
    in->job.size = in->size;
    in->job.status = scanned_job->status;
    in->job.verdict = scanned_job->verdict;
    scanned(&in->job);
}

void cf_inspection_clear(struct cf_inspection *in)
{
    cf_free_secret(in->chunk, CF_CHUNK_SIZE);
    in->chunk = NULL;
    in->cached = false;
}

void cf_inspect_respond(struct cf_req *r, const struct cf_inspection *in)
{
    const char *code;
    int http = cf_status_http(in->st, &code);
    json_t *o;
    switch (in->st) {
    case CF_EINFECTED:
        o = json_pack("{s:s, s:s, s:s}", "error", code, "message", "the file contains malware", "signature",
                      in->signature);
        break;
    case CF_EUNSCANNABLE:
        o = json_pack("{s:s, s:s, s:s}", "error", code, "message",
                      "the file could not be scanned completely (encrypted, nested too deep, too large or an "
                      "unsupported archive format); this server refuses what it cannot check",
                      "reason", in->signature);
        break;
    case CF_EBLOCKED:
        o = json_pack("{s:s, s:s, s:s}", "error", code, "message", "files of this type may not be uploaded here",
                      "mime", in->mime);
        break;
    case CF_EUNAVAIL:
        cf_respond_status(r, CF_EUNAVAIL, NULL);
        return;
    default:
        cf_respond_status(r, in->st, NULL);
        return;
    }
    cf_respond_json(r, http, o);
}

void cf_inspect_event(const struct cf_inspection *in, struct cf_event *ev)
{
    cf_event_detail(ev, "reason", json_string(cf_status_name(in->st)));
    if (in->signature[0] != '\0')
        cf_event_detail(ev, "signature", json_string(in->signature));
    if (in->mime[0] != '\0')
        cf_event_detail(ev, "mime", json_string(in->mime));
}
