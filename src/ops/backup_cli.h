/*
 * backup_cli.h: the `coffer backup` command line (see backup_cli.c). `backup create` is an operator
 * command (ops.h: cf_op_backup_create, run offline or by the serving process); list, verify and
 * restore work on a backup directory without any server and stay here.
 */
#ifndef CF_BACKUP_CLI_H
#define CF_BACKUP_CLI_H

#include "config.h"

/* cf_cli_backup(cfg, argc, argv): `backup list DIR`, `backup verify DIR [--id N] [--deep]`,
 * `backup restore DIR [--id N] --to DATA_DIR`; argv[0] is "backup". Drops privileges like the other
 * offline commands (priv.h). Writes to stdout and stderr; returns the exit code (0, 1, 2). */
int cf_cli_backup(const struct cf_config *cfg, int argc, char **argv);

/* cf_backup_cli_prepare(argc, argv, owned): the CLI side of `backup create DIR [--keep N]` (argv[0]
 * is "backup", argv[1] "create"), before the command is run offline or sent to a server: checks the
 * arguments (exit code 2 and a message on stderr if they are wrong) and makes DIR absolute against
 * the caller's working directory (a server resolves relative paths against its own), replacing its
 * argv entry with *owned, which the caller frees after the command (NULL if DIR was absolute
 * already). Returns 0 or 2. */
int cf_backup_cli_prepare(int argc, char **argv, char **owned);

#endif
