/*
 * rescan.h: the rescan job: files accepted unscanned are scanned once signatures exist.
 *
 * A development server without signatures (scan.development) admits uploads with the verdict
 * "unchecked" (inspect.c). This job, one thread per server, watches the scanners' state
 * (cf_scan_state): whenever they have signatures after a time without (at start-up, or when
 * signatures arrive in scan.database_dir and the scanners reload), and hourly besides (an old
 * version restored as current keeps its "unchecked" verdict), it walks every tenant for
 * "unchecked" files and scans them, one at a time, through the same scanner processes uploads use.
 * The verdict is applied as the upload-safety step would have applied it (inspect.c, one policy):
 *   clean                       → the file's verdict becomes "clean" (engine, database, time)
 *   unscannable, on_unscannable: allow  → "unscannable" with the reason
 *   infected, or unscannable under reject → the file is purged (its data keys destroyed first), as
 *                                 an infected upload's bytes are never kept; a file.infected event
 *                                 (actor: system) and an alert to the file's owner record it
 *   scanner failure, or a scanner still without signatures → left "unchecked", retried at the next
 *                                 pass (next start-up or next signature change)
 * Progress (scanned/total/found) shows in `coffer status` while and after a pass runs.
 */
#ifndef CF_RESCAN_H
#define CF_RESCAN_H

#include <stdbool.h>
#include <stdint.h>

struct cf_app;

#define CF_RESCAN_POLL_S 2       /* how often the job looks at the scanners' state */
#define CF_RESCAN_PERIOD_S 3600  /* a pass at least this often while there are signatures */

struct cf_rescan_progress {
    bool running;        /* a pass is under way */
    uint64_t passes;     /* passes finished since start-up */
    uint64_t total;      /* files of the current (or last) pass */
    uint64_t scanned;    /* of those, scanned */
    uint64_t found;      /* of those, infected (or unscannable under reject): purged */
    uint64_t failed;     /* of those, not scanned (scanner failure): still "unchecked" */
};

/* cf_rescan_start(app): starts the job's thread (serve, after the scanners and the provenance
 * writer). cf_rescan_stop(): stops it, waiting for the scan under way (before cf_scan_stop). */
void cf_rescan_start(struct cf_app *app);
void cf_rescan_stop(void);
/* cf_rescan_progress(out): a snapshot (zeros if the job never ran). Any thread. */
void cf_rescan_progress(struct cf_rescan_progress *out);

#endif
