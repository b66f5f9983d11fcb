/*
 * files.h: what the files API shares between its handler files.
 */
#ifndef CF_FILES_H
#define CF_FILES_H

#include <jansson.h>

#include "acl.h"
#include "storage.h"

struct cf_event;
struct cf_req;

/* cf_node_json(n, level): the API view of a node (SPEC §5): id, type, name, parent, size, sha256,
 * mime, version, created_at, modified_at, owner, my_level. */
json_t *cf_node_json(const struct cf_node *n, enum cf_level level);
/* cf_node_json_write(w, n, level): the same object written into w (jsonw.h), byte for byte what
 * dumping cf_node_json gives (w->bad where jansson would refuse a value: use cf_node_json then). */
struct cf_jw;
void cf_node_json_write(struct cf_jw *w, const struct cf_node *n, enum cf_level level);

/* ---- shared by the upload paths (upload.c: simple uploads; tus.c: resumable uploads) ---------- */

/* Who commits an upload, kept by the job (the request may be gone by then). */
struct cf_uploader {
    struct cf_actor who;     /* groups owned by the job */
    struct cf_id *groups;
    enum cf_level level;     /* the uploader's level on the resulting node: the folder's for a new file */
};
/* cf_uploader_init(up, r): the request's user, with a copy of its groups. */
void cf_uploader_init(struct cf_uploader *up, struct cf_req *r);
void cf_uploader_clear(struct cf_uploader *up);
/* cf_uploader_may_replace(ctx = struct cf_uploader *, existing): cf_commit.may_replace for both
 * paths. Under the namespace lock: a new version needs edit on the existing file, and the uploader
 * keeps its own level on it. */
bool cf_uploader_may_replace(void *ctx, const struct cf_node *existing);
/* cf_upload_event_committed(e, n): the node and the details of a file.upload event (size, sha256,
 * mime, version). */
void cf_upload_event_committed(struct cf_event *e, const struct cf_node *n);

struct cf_req;

/* How cf_serve_file serves a file. */
struct cf_serve_opts {
    bool view; /* inline view (safe types only, 415 otherwise) rather than a download */
    /* gate(ctx, first, end, cont, arg): runs on a worker before the first byte of a GET goes out (not
     * for HEAD, 304 or 416), with the byte range [first, end) about to be sent. It either returns a
     * status other than CF_OK, answered instead of the file (cont is not called), or returns CF_OK,
     * after which the response may start, and calls cont(arg, st) exactly once, from any thread,
     * even before it returns, when the response may be completed (st CF_OK: its last byte may go)
     * or must not be (st: answered instead if nothing went out yet, else the stream is reset). The
     * worker is not held while the gate waits (a durable write, for instance). NULL: no gate. */
    enum cf_status (*gate)(void *ctx, uint64_t first, uint64_t end, void (*cont)(void *arg, enum cf_status st),
                           void *arg);
    /* end(ctx, sent, completed): runs on the loop thread once the response that passed the gate is
     * over (finished, aborted by the client, or failed), with the body bytes handed to the
     * connection and whether the whole range was. NULL: nothing. */
    void (*end)(void *ctx, uint64_t sent, bool completed);
    void *ctx;                  /* owned by cf_serve_file from the call on */
    void (*free_ctx)(void *ctx);
};

/* What a transfer is, for its provenance events (download.c fills the serve options from it). */
struct cf_transfer {
    struct cf_store *store;  /* where the budget and the events go (the request's r->app->store) */
    const char *action;      /* "file.download", "file.view", "share.download", "share.view" */
    struct cf_id tenant;
    struct cf_id node;
    int actor_type;          /* enum cf_actor_type (audit.h) */
    struct cf_id actor;      /* user id, or share id */
    const char *actor_name;  /* copied */
    bool has_share;
    struct cf_id share;
    bool count_share;        /* draw every response's bytes from the share's byte budget (storage.h) */
    const char *ip;          /* copied */
    const char *user_agent;  /* copied, may be NULL */
    uint64_t size;           /* the file's size */
    uint32_t version;        /* an old version being served (versions.c): named in the events' detail; 0:
                                the current one (no detail) */
};
/* cf_transfer_opts(t, o): sets o's gate, end and context so that the transfer's "began" event is
 * durable before the first byte (else 503), its end is recorded when the response ends, a share
 * response's bytes are drawn from the link's budget atomically (and what a cut transfer did not
 * send goes back), and bulk downloads are tracked. */
void cf_transfer_opts(const struct cf_transfer *t, struct cf_serve_opts *o);

/* ---- entry points shared with WebDAV (dav.c): the API's own code after its authorisation step -- */

/* cf_folder_create_start(r, parent, name, n, level, dav): creates folder name (validated) in parent
 * (the caller has edit on it, level) with its folder.create event; answers 201 (dav: no body) or the
 * API's errors (409 when the name is taken). Loop thread. */
void cf_folder_create_start(struct cf_req *r, const struct cf_id *parent, const char *name, size_t n,
                            enum cf_level level, bool dav);
/* cf_node_move_start(r, n, level, parent, name, nlen, replace, dav_status): moves and/or renames n
 * (authorised for edit: level; parent NULL keeps it, name NULL keeps it), the access rule re-checked
 * under the namespace lock (cf_acl_move_allowed), with its node.move/node.rename event; replace (not
 * NULL): that node goes to the trash first (WebDAV Overwrite: T). Answers the API's 200 JSON, or
 * dav_status without a body when not 0. Loop thread. */
void cf_node_move_start(struct cf_req *r, const struct cf_node *n, enum cf_level level, const struct cf_id *parent,
                        const char *name, size_t nlen, const struct cf_id *replace, int dav_status);
/* cf_node_delete_start(r, id, purge): trashes (or purges) node id, authorised for manage by the
 * caller, with its file.delete/file.purge event; 204. Loop thread. */
void cf_node_delete_start(struct cf_req *r, const struct cf_id *id, bool purge);
#define CF_UPLOAD_DAV 1u         /* answer WebDAV's 201 (a new file) or 204 (a new version), no body */
#define CF_UPLOAD_DAV_EXISTED 2u /* with CF_UPLOAD_DAV: 204 even for a new file (it replaced a collection) */
/* cf_upload_start(r, parent, name, n, on_conflict, dav, body, body_len): the simple upload of the
 * request body (upload.c), or of body (not NULL: malloc'ed, taken over, wiped and freed: WebDAV
 * COPY) into folder parent (not yet authorised: edit is checked here, with the quota): the
 * upload-safety step, the commit, file.upload or upload.rejected. Answers the API's 201 JSON (dav 0)
 * or as the CF_UPLOAD_DAV flags in dav say. Loop thread. */
void cf_upload_start(struct cf_req *r, const struct cf_id *parent, const char *name, size_t n,
                     enum cf_conflict on_conflict, unsigned dav, uint8_t *body, size_t body_len);
/* cf_shared_roots(r, nodes, levels, n): what GET /api/v1/shared lists for the caller (access.c): the
 * nodes others granted them, visible, deduplicated, with the caller's levels (malloc'ed arrays of *n;
 * clear each node, free both; NULL when 0). Loop thread. */
enum cf_status cf_shared_roots(struct cf_req *r, struct cf_node **nodes, enum cf_level **levels, size_t *n) CF_WUR;
/* cf_upload_start_then(r, parent, name, n, on_conflict, body, body_len, then, ctx): cf_upload_start of
 * body (taken over) whose success is not answered: then(r, ctx, node) runs exactly once on the loop
 * thread, with the committed file (r alive, nothing answered: the caller goes on), or with node NULL
 * when the upload was refused or failed (r, if not NULL, has been answered) or the client is gone
 * (r NULL). For WebDAV's COPY of a collection, one member after another. body_len bytes must have
 * been counted by the caller with cf_body_budget_take (budget.h): released here when the upload ends. */
typedef void cf_upload_then_fn(struct cf_req *r, void *ctx, const struct cf_node *node);
void cf_upload_start_then(struct cf_req *r, const struct cf_id *parent, const char *name, size_t n,
                          enum cf_conflict on_conflict, uint8_t *body, size_t body_len, cf_upload_then_fn *then,
                          void *ctx);
/* cf_serve_member(r, id, view): GET /files/{id}/content for a resolved id: download level (404/403
 * as the API), file.download provenance, Range, ETag (download.c). Loop thread. */
void cf_serve_member(struct cf_req *r, const struct cf_id *id, bool view);

/* cf_serve_file(r, tenant, n, o): streams file n (already authorised by the caller) with Range,
 * ETag, HEAD and the file headers (download.c). Loop thread. */
void cf_serve_file(struct cf_req *r, const struct cf_id *tenant, const struct cf_node *n, const struct cf_serve_opts *o);

#endif
