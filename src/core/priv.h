/*
 * priv.h: running as the configured service account (`user:`).
 *
 * Started as root, `coffer serve` does what only root may (bind the listeners, read the master key
 * and the TLS key, spawn the scanners, open the access log) and then drops to `user:` and its groups
 * for good, before it opens the store or accepts a connection. The offline commands (init, tenant,
 * user, audit) drop the same way after reading the master key, so that every file in the data
 * directory belongs to the service account. Rules (docs/SECURITY.md, "Process"):
 *   root, no `user:`           → refused (exit 2): say which account to run as, or `user: root`
 *   root, `user: root`         → runs as root, with a warning
 *   root, `user: NAME`         → drops to NAME (initgroups, setgid, setuid; setuid(0) must then fail)
 *   not root, `user:` unset or naming the current account → runs as is
 *   not root, `user:` another  → refused (exit 2)
 */
#ifndef CF_PRIV_H
#define CF_PRIV_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

struct cf_priv {
    bool drop;      /* started as root and must become uid/gid */
    uid_t uid;
    gid_t gid;
    char name[64];  /* the account, for messages and initgroups */
};

/* cf_priv_resolve(cfg, command, out, err): applies the rules above. 0, or the exit code (2) with a
 * malloc'ed message in *err. command names the command in messages. For commands other than
 * `serve`, root without `user:` runs as root (the data directory then belongs to root). */
int cf_priv_resolve(const struct cf_config *cfg, const char *command, struct cf_priv *out, char **err);

/* cf_priv_check_dir(p, dir, create, err): before the drop, makes sure the service account owns dir:
 * created (mode 0700, owned by the account) when missing and create is set; refused (with the
 * chown command to run) when it or any entry directly in it belongs to another account. Coffer never
 * chowns an existing directory itself. 0 or 1 with a message. */
int cf_priv_check_dir(const struct cf_priv *p, const char *dir, bool create, char **err);

/* cf_priv_drop(p, err): setgroups (initgroups), setgid, setuid, then checks that the ids took and that
 * root cannot be regained. Nothing to do if !p->drop. 0 or 1 with a message. */
int cf_priv_drop(const struct cf_priv *p, char **err);

/* cf_priv_unreadable(cert, key): NULL if this process can read both, else a malloc'ed sentence naming
 * the one it cannot read and how to fix it (SIGHUP re-reads them after the drop). */
char *cf_priv_unreadable(const char *cert, const char *key);

/* cf_priv_drop_ids(uid, gid, err): the scanner's drop: no supplementary groups, setgid, setuid and the
 * same checks; nothing to do if already uid/gid and not root (spawned by a server that dropped). */
int cf_priv_drop_ids(uid_t uid, gid_t gid, char **err);

/* cf_priv_no_dumps(): no core file and no memory access by other processes of the same account,
 * however the process was started (the server holds every tenant's keys; every command may hold the
 * master key): RLIMIT_CORE 0, soft and hard (it cannot be raised again without root), and
 * PR_SET_DUMPABLE 0 (no core either, /proc/PID files owned by root, no ptrace without
 * CAP_SYS_PTRACE). main() calls it before anything else; cf_priv_drop and cf_priv_drop_ids call it
 * again, because a change of uid resets dumpable to the fs.suid_dumpable sysctl, which may be 1 or
 * 2; an exec resets it to 1, and the executed coffer's main() sets it again. 0, or -1 with errno.
 * Process-wide; any thread. */
int cf_priv_no_dumps(void) CF_WUR;

#endif
