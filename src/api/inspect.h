/*
 * inspect.h: the upload-safety step (SPEC §7). Every path that makes content visible (a simple
 * upload, a tus completion, a new version) runs it between writing its last chunk and committing:
 *
 *   chunks written (sealed, pending) → cf_inspect → scanner process reads them back through
 *   cf_upload_read_chunk, scans (libclamav) and sniffs (libmagic) → verdict → tenant policy
 *   (blocked_types) and scan.on_unscannable → done(): commit with the detected type and the scan
 *   summary, or reject.
 *
 * The content is never written anywhere in plaintext for this: the scanner pulls the bytes it needs
 * over its socket, one piece at a time, from the sealed chunks.
 */
#ifndef CF_INSPECT_H
#define CF_INSPECT_H

#include "context.h"
#include "scan.h"
#include "storage/storage.h"

struct cf_req;
struct cf_event;

struct cf_inspection {
    /* in: set by the caller */
    const struct cf_app *app;      /* the uploading request's context (policy, scan settings) */
    struct cf_upload *up;          /* every chunk written, not committed */
    uint64_t size;
    struct cf_id tenant;           /* whose policy applies */
    void (*done)(struct cf_inspection *in); /* on a scan thread once the outcome below is set */
    void *ctx;
    /* out */
    enum cf_status st;             /* CF_OK: commit with mime and scan; else CF_EINFECTED, CF_EUNSCANNABLE,
                                    * CF_EBLOCKED, CF_EUNAVAIL (scanner down, timed out, failed), CF_EIO */
    char mime[128];                /* detected type (valid whenever the scanner answered) */
    char signature[128];           /* infected: the signature; unscannable: why */
    struct cf_scan_summary scan;   /* for cf_commit; points into the buffers below */
    char result_buf[16], engine_buf[32], database_buf[64], detail_buf[128];
    /* private */
    struct cf_scan_job job;
    uint8_t *chunk;                /* plaintext of one chunk (wiped when freed) */
    size_t chunk_len;
    uint32_t chunk_index;
    bool cached;
};

/* cf_inspect(in): starts the step. Any thread; in->done runs later on a scan thread. */
void cf_inspect(struct cf_inspection *in);
/* cf_inspect_verdict(in, scanned_job): the step decided from a scan already run on exactly these
 * bytes (a tus upload's streaming scan, DESIGN.md): policy and type as cf_inspect, in->done on the
 * calling thread. */
void cf_inspect_verdict(struct cf_inspection *in, const struct cf_scan_job *scanned_job);
/* cf_inspection_clear(in): wipes and frees the read cache (after done). */
void cf_inspection_clear(struct cf_inspection *in);
/* cf_inspect_respond(r, in): the error response for a rejected inspection (loop thread): 422 with
 * the signature or the type, 503 when no verdict could be had. */
void cf_inspect_respond(struct cf_req *r, const struct cf_inspection *in);
/* cf_inspect_event(in, ev): the details of an upload.rejected event (reason, signature, type). */
void cf_inspect_event(const struct cf_inspection *in, struct cf_event *ev);
/* cf_blocked_type(policy, mime): true if the tenant policy blocks this detected type. Entries are
 * exact types, "type/" followed by "*" (a whole family), or application/x-executable, which stands for every native
 * executable and shared-object format libmagic reports (ELF, PE/DOS, Mach-O). */
bool cf_blocked_type(const struct cf_policy *p, const char *mime);

#endif
