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

/* cf_serve_file(r, tenant, n, o): streams file n (already authorised by the caller) with Range,
 * ETag, HEAD and the file headers (download.c). Loop thread. */
void cf_serve_file(struct cf_req *r, const struct cf_id *tenant, const struct cf_node *n, const struct cf_serve_opts *o);

#endif
