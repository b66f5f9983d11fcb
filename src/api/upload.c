/*
 * upload.c: POST /api/v1/files — a simple upload, body in one request.
 *
 * libh2o 2.2.5 hands the handler the whole body in memory (bounded by max_request_body_bytes,
 * never spilled to disk: server.c). A worker must not read req->entity (h2o unmaps it on an
 * HTTP/2 abort before the request is disposed: notes §2), so the loop copies one chunk-sized slice
 * at a time into the job's buffer and the worker hashes, seals and writes it. After the last slice
 * the job goes through the upload-safety step (inspect.h: scan + sniff in a scanner process, then
 * policy) and comes back to a worker, which commits, or records upload.rejected and deletes the
 * chunks. If the client goes away, the next step aborts the upload and deletes its chunks. Memory
 * per upload: one chunk besides h2o's buffer (and one in the scanner's read cache while scanning).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "audit.h"
#include "budget.h"
#include "config.h"
#include "davguard.h"
#include "files.h"
#include "pages.h"
#include "handlers.h"
#include "http.h"
#include "inspect.h"
#include "quota.h"
#include "log.h"
#include "loop.h"
#include "validate.h"
#include "work.h"

struct upload {
    struct cf_job job;
    struct cf_req *r;          /* watched: NULL once the client is gone */
    struct cf_upload *up;      /* storage writer, created by the first worker step */
    struct cf_hash *sha;       /* SHA-256 of the plaintext so far */
    uint8_t *slice;            /* CF_CHUNK_SIZE bytes, the job's copy of the current slice */
    size_t slice_len;
    uint32_t index;            /* chunk index of the slice */
    uint64_t size;             /* total body bytes */
    uint64_t offset;           /* body bytes handed to workers so far */
    bool last;                 /* the slice is the last */
    bool aborting;             /* the step deletes what was written */
    bool inspected;            /* the upload-safety step has decided: commit or reject */
    bool rejected;             /* ... and rejected it (insp.st says why) */
    enum cf_status st;
    struct cf_inspection insp;
    /* commit parameters */
    struct cf_uploader as;     /* the uploader */
    struct cf_id parent;
    char *name;
    size_t name_len;
    enum cf_conflict on_conflict;
    unsigned dav;              /* CF_UPLOAD_DAV flags (files.h); 0: the API's JSON answer */
    uint8_t *body;             /* WebDAV COPY: the source's bytes, owned (wiped and freed); NULL: the
                                * request body */
    cf_upload_then_fn *then;   /* cf_upload_start_then: told the outcome instead of answering success */
    void *then_ctx;
    struct cf_node out;
    struct cf_event *ev;       /* file.upload, completed by the committing step */
    struct cf_quota quota;     /* the tenant's limits, read by the committing step */
    struct cf_quota_refusal refused; /* why the commit was over quota (CF_EQUOTA) */
    size_t budget;             /* bytes of limits.max_buffered_body_bytes held (a WebDAV PUT's body) */
};

void cf_uploader_init(struct cf_uploader *up, struct cf_req *r)
{
    up->who = cf_actor_of(r);
    up->groups = cf_xcalloc(r->who.ngroups + 1, sizeof *up->groups);
    memcpy(up->groups, r->who.groups, r->who.ngroups * sizeof *up->groups);
    up->who.groups = up->groups;
    up->level = CF_LEVEL_NONE; /* set by the caller from the folder, or by may_replace for new versions */
}

void cf_uploader_clear(struct cf_uploader *up)
{
    free(up->groups);
    up->groups = NULL;
}

bool cf_uploader_may_replace(void *ctx, const struct cf_node *existing)
{
    struct cf_uploader *up = ctx;
    struct cf_node n;
    enum cf_level level;
    if (cf_acl_level(&up->who, &existing->id, &n, &level) != CF_OK)
        return false;
    cf_node_clear(&n);
    up->level = level; /* a new version of someone else's file: the uploader keeps its own level */
    return level >= CF_LEVEL_EDIT;
}

void cf_upload_event_committed(struct cf_event *e, const struct cf_node *n)
{
    char sha[2 * CF_SHA256_LEN + 1];
    cf_hex_encode(n->sha256, CF_SHA256_LEN, sha);
    cf_event_node(e, n);
    cf_event_detail(e, "size", json_integer((json_int_t)n->size));
    cf_event_detail(e, "sha256", json_string(sha));
    cf_event_detail(e, "mime", json_string(n->mime));
    cf_event_detail(e, "version", json_integer(n->version));
}

/* On a scan thread: the verdict is in; back to a worker to commit or reject. */
static void inspected(struct cf_inspection *in)
{
    struct upload *u = in->ctx;
    u->inspected = true;
    cf_work_submit(&u->job);
}

/* The upload is refused: its provenance event, against the folder it was meant for. */
static void record_rejection(struct upload *u)
{
    struct cf_node folder;
    char sha[2 * CF_SHA256_LEN + 1];
    uint8_t digest[CF_SHA256_LEN];
    u->rejected = true;
    u->st = u->insp.st;
    /* The file.upload event made at the request (actor, address, agent) becomes the rejection. */
    u->ev->action = "upload.rejected";
    u->ev->result = cf_status_name(u->insp.st);
    u->ev->at = cf_now_ms();
    if (cf_node_get(u->as.who.app->store, &u->as.who.tenant, &u->parent, &folder) == CF_OK) {
        cf_event_node(u->ev, &folder);
        cf_node_clear(&folder);
    }
    cf_hash_final(u->sha, digest);
    cf_hex_encode(digest, CF_SHA256_LEN, sha);
    cf_event_detail(u->ev, "name", json_string(u->name));
    cf_event_detail(u->ev, "size", json_integer((json_int_t)u->size));
    cf_event_detail(u->ev, "sha256", json_string(sha));
    cf_inspect_event(&u->insp, u->ev);
    if (cf_audit_submit_wait(u->ev, NULL) != CF_OK)
        cf_log_error("an upload.rejected event could not be recorded");
    u->ev = NULL;
}

static bool upload_run(struct cf_job *job)
{
    struct upload *u = (struct upload *)(void *)job;
    if (u->aborting) {
        cf_upload_abort(u->up);
        return true;
    }
    if (u->inspected)
        goto commit;
    if (u->up == NULL && (u->st = cf_upload_begin(u->as.who.app->store, &u->as.who.tenant, &u->up)) != CF_OK)
        return true;
    cf_hash_update(u->sha, u->slice, u->slice_len);
    if ((u->st = cf_upload_put_chunk(u->up, u->index, u->slice, u->slice_len, u->last)) != CF_OK || !u->last)
        return true;
    cf_wipe(u->slice, CF_CHUNK_SIZE);
    u->insp.app = u->as.who.app;
    u->insp.up = u->up;
    u->insp.size = u->size;
    u->insp.tenant = u->as.who.tenant;
    u->insp.done = inspected;
    u->insp.ctx = u;
    cf_inspect(&u->insp);
    return false; /* back through inspected() */

commit:
    cf_inspection_clear(&u->insp);
    if (u->insp.st != CF_OK) {
        record_rejection(u);
        return true;
    }
    struct cf_commit c = {
        .parent = u->parent,
        .name = u->name,
        .name_len = u->name_len,
        .on_conflict = u->on_conflict,
        .uploader = u->as.who.id,
        .size = u->size,
        .mime = u->insp.mime,
        .scan = &u->insp.scan,
        .may_replace = cf_uploader_may_replace,
        .ctx = &u->as,
        .quota = &u->quota,
        .refused = &u->refused,
    };
    cf_quota_of(u->as.who.app->store, &u->as.who.tenant, &u->quota);
    cf_hash_final(u->sha, c.sha256);
    u->st = cf_upload_commit(u->up, &c, &u->out);
    if (u->st == CF_OK) {
        cf_upload_event_committed(u->ev, &u->out);
        u->st = cf_audit_submit_wait(u->ev, NULL);
        u->ev = NULL;
        /* Its pages, in the background (render threads): never part of this answer (pages.h). */
        if (u->st == CF_OK && u->as.who.app->cfg->render.enabled)
            cf_pages_prepare(u->as.who.app->store, &u->out.tenant, &u->out.id, u->out.version, u->out.mime);
    }
    return true;
}

static void upload_free(struct upload *u)
{
    cf_upload_free(u->up);
    cf_hash_free(u->sha);
    cf_free_secret(u->slice, CF_CHUNK_SIZE);
    if (u->body != NULL)
        cf_free_secret(u->body, (size_t)u->size);
    cf_inspection_clear(&u->insp);
    free(u->name);
    cf_uploader_clear(&u->as);
    cf_node_clear(&u->out);
    cf_event_free(u->ev);
    cf_body_budget_release(u->budget);
    free(u);
}

static void upload_done(struct cf_job *job);

static void submit(struct upload *u)
{
    u->job.run = upload_run;
    u->job.done = upload_done;
    cf_work_submit(&u->job);
}

/* Copies the next slice of the body (loop thread, request alive) and hands it to a worker. */
static void next_slice(struct upload *u)
{
    h2o_iovec_t body = u->body != NULL ? h2o_iovec_init(u->body, (size_t)u->size) : u->r->req->entity;
    size_t n = u->size - u->offset > CF_CHUNK_SIZE ? CF_CHUNK_SIZE : (size_t)(u->size - u->offset);
    if (n > 0)
        memcpy(u->slice, body.base + u->offset, n);
    u->slice_len = n;
    u->index = (uint32_t)(u->offset / CF_CHUNK_SIZE);
    u->offset += n;
    u->last = u->offset == u->size;
    submit(u);
}

static void upload_done(struct cf_job *job)
{
    struct upload *u = (struct upload *)(void *)job;
    struct cf_req *r = u->r;
    if (u->aborting) {
        upload_free(u);
        return;
    }
    if (r == NULL || u->st != CF_OK) {
        if (r != NULL) {
            cf_req_unwatch(r);
            if (u->rejected)
                cf_inspect_respond(r, &u->insp);
            else if (u->st == CF_EEXIST)
                cf_respond_status(r, CF_EEXIST, "a node with this name already exists in the folder");
            else if (u->st == CF_EDENIED)
                cf_respond_status(r, CF_EDENIED, "your access level does not allow replacing this file");
            else if (u->st == CF_EQUOTA)
                cf_quota_respond(r, &u->refused);
            else
                cf_respond_status(r, u->st, NULL);
        }
        if (u->then != NULL)
            u->then(r, u->then_ctx, NULL);
        u->then = NULL;
        if (u->up == NULL) {
            upload_free(u);
            return;
        }
        u->aborting = true;
        submit(u);
        return;
    }
    if (!u->last) {
        next_slice(u);
        return;
    }
    cf_req_unwatch(r);
    if (u->then != NULL)
        u->then(r, u->then_ctx, &u->out);
    else if (u->dav != 0)
        cf_respond_empty(r, u->out.version > 1 || (u->dav & CF_UPLOAD_DAV_EXISTED) != 0 ? 204 : 201);
    else
        cf_respond_json(r, 201, cf_node_json(&u->out, u->as.level));
    upload_free(u);
}

void cf_h_file_upload(struct cf_req *r)
{
    h2o_iovec_t pv, nv, cv;
    bool bad = false;
    struct cf_id parent;
    enum cf_conflict on_conflict = CF_CONFLICT_FAIL;

    bool have_parent = cf_query(r, "parent", &pv, &bad);
    bool have_name = !bad && cf_query(r, "name", &nv, &bad);
    bool have_conflict = !bad && cf_query(r, "on_conflict", &cv, &bad);
    if (bad) {
        cf_respond_status(r, CF_EINVAL, "malformed query string");
        return;
    }
    if (!have_parent || !have_name) {
        cf_respond_status(r, CF_EINVAL, "parent and name are required query parameters");
        return;
    }
    const char *why = cf_name_check(nv.base, nv.len);
    if (why != NULL) {
        cf_respond_status(r, CF_EINVAL, why);
        return;
    }
    if (have_conflict) {
        if (h2o_memis(cv.base, cv.len, H2O_STRLIT("fail")))
            on_conflict = CF_CONFLICT_FAIL;
        else if (h2o_memis(cv.base, cv.len, H2O_STRLIT("rename")))
            on_conflict = CF_CONFLICT_RENAME;
        else if (h2o_memis(cv.base, cv.len, H2O_STRLIT("replace")))
            on_conflict = CF_CONFLICT_REPLACE;
        else {
            cf_respond_status(r, CF_EINVAL, "on_conflict must be fail, rename or replace");
            return;
        }
    }
    /* A body-less POST without Content-Length is ambiguous; an explicit empty body is a 0-byte file. */
    if (r->req->entity.base == NULL && cf_header(r, "content-length").base == NULL) {
        cf_respond_status(r, CF_ELENGTH, "send the file as the request body, with Content-Length");
        return;
    }
    if (cf_id_parse(pv.base, pv.len, &parent) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return;
    }
    cf_upload_start(r, &parent, nv.base, nv.len, on_conflict, 0, NULL, 0);
}

static void upload_start(struct cf_req *r, const struct cf_id *parent, const char *name, size_t nlen,
                         enum cf_conflict on_conflict, unsigned dav, uint8_t *body, size_t body_len,
                         cf_upload_then_fn *then, void *then_ctx);

void cf_upload_start(struct cf_req *r, const struct cf_id *parent, const char *name, size_t nlen,
                     enum cf_conflict on_conflict, unsigned dav, uint8_t *body, size_t body_len)
{
    upload_start(r, parent, name, nlen, on_conflict, dav, body, body_len, NULL, NULL);
}

void cf_upload_start_then(struct cf_req *r, const struct cf_id *parent, const char *name, size_t nlen,
                          enum cf_conflict on_conflict, uint8_t *body, size_t body_len, cf_upload_then_fn *then,
                          void *ctx)
{
    upload_start(r, parent, name, nlen, on_conflict, CF_UPLOAD_DAV, body, body_len, then, ctx);
}

static void upload_start(struct cf_req *r, const struct cf_id *parent, const char *name, size_t nlen,
                         enum cf_conflict on_conflict, unsigned dav, uint8_t *body, size_t body_len,
                         cf_upload_then_fn *then, void *then_ctx)
{
    uint64_t size = body != NULL ? body_len : r->req->entity.base != NULL ? r->req->entity.len : 0;
    if (size > r->app->cfg->limits.max_file_bytes) {
        cf_respond_status(r, CF_ETOOBIG, "the file is larger than this server accepts");
        goto drop;
    }
    enum cf_level flevel;
    if (!cf_acl_folder_or_respond(r, parent, CF_LEVEL_EDIT, &flevel) ||
        !cf_davguard_upload_or_respond(r, parent, name, nlen)) /* WebDAV locks (davguard.h) */
        goto drop;
    /* Quotas, early (the commit checks again under the namespace lock). */
    if (!cf_quota_upload_or_respond(r, parent, name, nlen, on_conflict, size))
        goto drop;

    /* A WebDAV PUT's body counts against limits.max_buffered_body_bytes from here until the upload
     * ends, as tus bodies do (budget.h); past it 503 + Retry-After, nothing stored. A body handed in
     * (WebDAV's COPY) was counted by the caller: released here, with the upload. */
    size_t budget = dav != 0 ? (size_t)size : 0;
    if (budget != 0 && body == NULL && !cf_body_budget_take(r->app->cfg->limits.max_buffered_body_bytes, budget)) {
        char v[16];
        snprintf(v, sizeof v, "%d", CF_BODY_RETRY_AFTER_S);
        cf_add_header_str(r, "retry-after", v);
        cf_respond_error(r, 503, "server_busy",
                         "the server is holding as many upload bodies as it may; send this request again shortly");
        goto drop;
    }
    uint8_t *slice = cf_try_malloc(CF_CHUNK_SIZE);
    if (slice == NULL) {
        cf_body_budget_release(body == NULL ? budget : 0); /* a body handed in: below */
        cf_respond_status(r, CF_EIO, NULL);
        goto drop;
    }
    struct upload *u = cf_xcalloc(1, sizeof *u);
    u->budget = budget;
    u->job.reply_to = &r->loop->work_done;
    u->sha = cf_hash_new(CF_HASH_SHA256);
    u->slice = slice;
    u->size = size;
    cf_uploader_init(&u->as, r);
    u->as.level = flevel; /* a new file has no entries of its own: it inherits the folder's */
    u->parent = *parent;
    u->name = cf_xstrndup(name, nlen);
    u->name_len = nlen;
    u->on_conflict = on_conflict;
    u->dav = dav;
    u->body = body;
    u->then = then;
    u->then_ctx = then_ctx;
    u->ev = cf_event_new(&u->as.who.tenant, "file.upload", "ok");
    cf_event_from_req(u->ev, r);
    cf_req_watch(r, &u->r);
    next_slice(u);
    return;
drop:
    if (body != NULL) {
        cf_free_secret(body, body_len);
        cf_body_budget_release(dav != 0 ? body_len : 0);
    }
    if (then != NULL)
        then(r, then_ctx, NULL);
}
