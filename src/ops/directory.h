/*
 * directory.h: the directory sync (issue 23; docs/OPERATIONS.md "Directory (LDAP / Active
 * Directory)"): the users, groups and departments of one tenant kept as an LDAP directory has them.
 *
 * A sync reads everything first (users, the disabled ones, groups: paged searches through
 * src/core/ldapc.c), then computes a plan against the store, then applies it (unless dry-run), one
 * provenance event per change with actor "directory". A directory that cannot be reached, refuses
 * the service bind, or fails any search aborts the sync before the plan: nothing is created,
 * changed, frozen or offboarded. So is a search that finds no user at all while the tenant has
 * active directory users (a wrong base or filter must not freeze everyone).
 *
 * Lifecycle of a directory user: created on first sight (frozen if the directory disables it);
 * updated (display name, e-mail, primary department from the DN's ou chain) on every sync; frozen
 * (sessions ended, links suspended) when the directory disables it or it leaves the users filter;
 * active again when the directory enables it again (its links stay suspended: an admin restores
 * them); offboarded (links revoked, private space archived for retention) once it has been missing
 * from the directory for directory.offboard_after. Local users are never touched; a directory entry
 * whose username a local user holds is skipped and reported.
 *
 * Runs are serialised (one mutex): the periodic thread, the control socket, the CLI offline and the
 * admin API never sync at the same time.
 */
#ifndef CF_DIRECTORY_H
#define CF_DIRECTORY_H

#include <jansson.h>
#include <stdbool.h>

#include "config.h"
#include "context.h"
#include "storage.h"

/* cf_directory_sync(cfg, store, dry_run, report, err): one sync of cfg's directory into its tenant.
 * CF_OK with *report (a new JSON object: what was, or with dry_run would be, created, updated,
 * frozen, reactivated, offboarded and skipped, by name, and the counts); CF_EUNAVAIL (directory
 * down), CF_ENOTFOUND (no such tenant), CF_EINVAL (no directory configured) or a store error with a
 * malloc'ed *err and no change made (a store error part-way leaves what was applied, each with its
 * event; the next sync completes it). Blocking: worker threads, the sync thread, the CLI. */
enum cf_status cf_directory_sync(const struct cf_config *cfg, struct cf_store *store, bool dry_run, json_t **report,
                                 char **err) CF_WUR;

/* cf_directory_start(app) / cf_directory_stop(): the periodic sync, every directory.sync_interval on
 * a thread of its own (first run at start); nothing if no directory is configured or the interval is
 * 0. Stop waits for a run under way. */
void cf_directory_start(const struct cf_app *app);
void cf_directory_stop(void);

/* cf_directory_admin_sync(app, dry_run, report, err): the admin API's entry (struct cf_app's
 * directory_sync hook): cf_directory_sync on the server's store. */
enum cf_status cf_directory_admin_sync(const struct cf_app *app, bool dry_run, json_t **report, char **err);

#endif
