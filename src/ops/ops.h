/*
 * ops.h: operator commands (`coffer tenant …`, `coffer user add`, `coffer keys …`, `coffer backup
 * create`, `coffer retention run`, `coffer status`), written once and run in one of two places:
 *
 *   - offline: the CLI opens the store itself (no server holds it) and runs the command;
 *   - online: a server holds the store; the CLI sends its arguments over the control socket (ctl.c)
 *     and the server runs the same command against its open store, on its control thread, with
 *     stdout and stderr captured and sent back. `coffer ctl …` insists on this path.
 *
 * So a command never knows which path it is on, except through op->online (for what only a live
 * server can do, such as reloading certificates). One command runs at a time per server.
 * Commands that do not need the store (init, serve, backup list|verify|restore, audit verify, fsck)
 * are not operator commands in this sense and stay in cli.c.
 */
#ifndef CF_OPS_H
#define CF_OPS_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"
#include "storage.h"

#define CF_OP_SECRET_MAX 256 /* bytes of secret a client may pass (a master key, a password) */

struct cf_op {
    const struct cf_config *cfg;
    struct cf_store *store;     /* open read-write */
    bool online;                /* run by a serving process (ctl.c) */
    uint64_t started_at;        /* online: when that server started, ms since the epoch */
    FILE *out, *err;            /* the command's stdout and stderr */
    /* A secret the CLI read on the caller's side and passed along (never in argv, never logged):
     * the new master key of `keys rotate-master` (32 bytes), or $COFFER_USER_PASSWORD for `user add`.
     * Wiped by whoever owns the buffer after the command. */
    const uint8_t *secret;
    size_t secret_len;
};

/* cf_op_known(name): whether name (argv[0]) is an operator command. */
bool cf_op_known(const char *name);

/* cf_op_run(op, argc, argv): runs the command argv[0] with its arguments. Returns the exit code
 * (SPEC §1: 0 ok, 1 runtime failure, 2 usage error); messages go to op->out and op->err. */
int cf_op_run(struct cf_op *op, int argc, char **argv);

/* cf_op_secret_for(argc, argv, buf, cap, len, err): the CLI side: reads the secret the command needs
 * (the file of --new-key; $COFFER_USER_PASSWORD) into buf. Returns 0 (with *len possibly 0), or an
 * exit code after writing a message to err. */
int cf_op_secret_for(int argc, char **argv, uint8_t *buf, size_t cap, size_t *len, FILE *err);

/* cf_op_add_user(op, tenant, username, role, display_name): creates a user whose password is
 * op->secret (validated), or a generated one printed once to op->out (also used by `coffer init`). */
int cf_op_add_user(struct cf_op *op, const struct cf_id *tenant, const char *username, enum cf_role role,
                   const char *display_name);

/* Commands implemented outside ops.c, registered in its table. */
int cf_op_backup_create(struct cf_op *op, int argc, char **argv); /* backup_cli.c: `backup create DIR [--keep N]` */
int cf_op_directory(struct cf_op *op, int argc, char **argv); /* directory.c: `directory sync [--dry-run]` */

#endif
