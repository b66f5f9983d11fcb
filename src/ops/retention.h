/*
 * retention.h: the retention job: what Coffer forgets on purpose, and when.
 *
 *   - trash: nodes trashed longer ago than their tenant's policy.trash_retention are purged
 *     (file.purge events, actor "system", detail reason "trash_retention");
 *   - offboarded spaces: everything an offboarded user still owns (the archived private space,
 *     trashed items included) is purged once policy.offboarded_retention has passed since the
 *     space was archived (one space.purge event); the empty, archived root stays;
 *   - old versions: a file's non-current versions replaced (the next version committed) longer ago
 *     than policy.version_retention are purged, crypto-shredding first as for nodes (one
 *     file.version_purge event each, actor "system", detail reason "version_retention");
 *   - provenance: events older than audit.retention are purged behind a sealed checkpoint, so the
 *     chain still verifies (one audit.purge event with the count).
 *
 * The server runs it hourly on a worker thread (and once at start); `coffer retention run` runs it
 * now (through the control socket when a server runs). Runs are serialised. Every purge is counted
 * in /metrics (coffer_retention_purged_total{kind}).
 */
#ifndef CF_RETENTION_H
#define CF_RETENTION_H

#include "config.h"
#include "storage.h"

#define CF_RETENTION_PERIOD_S 3600          /* how often the server runs the job */

struct cf_retention_report {
    uint64_t trash;  /* trashed nodes purged (tops of subtrees) */
    uint64_t spaces; /* offboarded users' spaces purged */
    uint64_t audit;  /* provenance events purged */
    uint64_t versions; /* old file versions purged */
    uint64_t locks;    /* expired WebDAV lock records removed */
    uint64_t unfinished; /* contents of simple uploads and purges whose writer died (CF_STALE_MARK_MS) */
};
/* A simple upload or a purge is one request or one job: a pending mark older than this is its dead
 * writer's (in a cluster, a node that never came back to collect its own at start-up). */
#define CF_STALE_MARK_MS (24ull * 3600 * 1000)

/* cf_retention_run(cfg, store, out): one pass over every tenant (resumable uploads expire through
 * their own sweep, server.c). CF_OK if every step succeeded; on a failure the pass goes on with the
 * next tenant and returns the first error. */
enum cf_status cf_retention_run(const struct cf_config *cfg, struct cf_store *store,
                                struct cf_retention_report *out) CF_WUR;

#endif
