/*
 * scan.h: scanning uploads in the scanner processes (scanner.c), from the server's side.
 *
 * K scanner processes (one per core, at least 2) are spawned at start-up, before any key is read,
 * each with one scan thread here that owns it. A scan job names a file by its size and a read
 * function; the scan thread answers the scanner's READ requests through that function (the scanner
 * never sees anything else of the server) and completes the job with a validated verdict. A
 * scanner that crashes, times out (scan.max_seconds plus a margin) or breaks the protocol is killed,
 * the job fails with CF_EUNAVAIL (503: never a silent pass), and the scanner is restarted. The
 * processes, threads, queue and restarts are a confined child family (src/core/child.h), as the
 * renderers are; this module keeps the scan protocol and its verdicts.
 */
#ifndef CF_SCAN_H
#define CF_SCAN_H

#include <sys/types.h>

#include "base.h"
#include "child.h"
#include "scan_proto.h"

struct cf_config;

struct cf_scan_job {
    uint64_t size;
    /* read(ctx, offset, buf, len): fills buf with len bytes of the file at offset (scan thread). */
    enum cf_status (*read)(void *ctx, uint64_t offset, void *buf, size_t len);
    void *ctx;
    /* A streaming scan (cf_scan_submit_stream): read may wait for bytes still arriving and adds the
     * milliseconds it waited to waited_ms; the scanner's deadline is pushed back by them, so only the
     * scanner's own time counts. */
    bool stream;
    uint64_t waited_ms;
    /* done(job): on the scan thread, once status and verdict are set. */
    void (*done)(struct cf_scan_job *job);
    /* results */
    enum cf_status status;                /* CF_OK: verdict is valid; CF_EUNAVAIL: scanner down/timeout */
    struct cf_scan_msg_verdict verdict;   /* validated: strings NUL-terminated, result in range */
    struct cf_child_job link;             /* the family's queue link (private) */
};

/* cf_scan_run_as(uid, gid): before cf_scan_start, when the server runs as root and will drop to uid/gid
 * (priv.h): the scratch directory is given to that account and every scanner switches to it before it
 * reads anything (its signatures included), so no scanner ever runs as root. */
void cf_scan_run_as(uid_t uid, gid_t gid);

/* cf_scan_check_config(cfg, err): what the scanners need of the configuration, checked without
 * starting one (coffer serve --check, and cf_scan_start first): scan.scratch_dir is a tmpfs, and
 * scan.database_dir holds at least one signature database unless scan.development is set, and the
 * scanner program (coffer-scan) is beside this one. CF_OK,
 * or CF_EINVAL with a malloc'ed message in *err that starts with the key ("scan.database_dir: ..."). */
enum cf_status cf_scan_check_config(const struct cf_config *cfg, char **err) CF_WUR;

/* cf_scan_start(cfg, err): spawns the scanners (the coffer-scan program beside this one, scanner.c)
 * and waits until each has built its engine and passed the canary. CF_EUNAVAIL with a reason if not. */
enum cf_status cf_scan_start(const struct cf_config *cfg, char **err) CF_WUR;
void cf_scan_stop(void);
/* cf_scan_submit(job): queues a scan. Any thread; job->done runs on a scan thread. */
void cf_scan_submit(struct cf_scan_job *job);
/* cf_scan_submit_stream(job): queues a streaming scan only if a scanner is free for it right now
 * (nothing queued, a scan thread idle) and fewer than K-1 of the K scanners would then be streaming,
 * so a completed upload can always be scanned. false: not queued (the caller scans after completion). */
bool cf_scan_submit_stream(struct cf_scan_job *job) CF_WUR;
/* cf_scan_stopping(): the scanners are being stopped (a streaming read stops waiting). */
bool cf_scan_stopping(void);
/* cf_scan_reload(): every scanner builds a new engine (SIGHUP). */
void cf_scan_reload(void);
/* cf_scan_state(): "ok", "development: no signatures", or "down". */
const char *cf_scan_state(void);
/* cf_scan_pids(out, n): the scanners' process ids. */
size_t cf_scan_pids(int *out, size_t n);
/* cf_scan_info(out, n): each scanner's state and engine (for the admin API). */
struct cf_scan_status {
    bool up;
    struct cf_scan_msg_info info;
};
size_t cf_scan_info(struct cf_scan_status *out, size_t n);

/* cf_scan_reply_check(m, n, id, size, why): classifies one message of n bytes that a scanner sent
 * during scan id of a file of size bytes, checking every field (scan_proto.h): a HELLO with valid
 * info, a READ of 1..CF_SCAN_READ_MAX bytes within the file, a VERDICT with a known result and
 * NUL-terminated printable strings (a MIME type with '/', a signature unless clean), or BAD with a
 * static reason in *why. m need not be aligned. Pure, any thread (tests/fuzz/fuzz_scan_proto.c). */
enum cf_scan_reply { CF_SCAN_REPLY_BAD, CF_SCAN_REPLY_HELLO, CF_SCAN_REPLY_READ, CF_SCAN_REPLY_VERDICT };
enum cf_scan_reply cf_scan_reply_check(const void *m, size_t n, uint64_t id, uint64_t size, const char **why);

#endif
