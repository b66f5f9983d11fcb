/*
 * ctl.h: the control socket: how operator commands (ops.h) reach a running server.
 *
 * A Unix stream socket at control_socket (default <data_dir>/control.sock), mode 0600, owned by the
 * server's account, inside the 0700 data directory; the server also checks each peer's uid
 * (SO_PEERCRED): root or the server's own account, nobody else. One thread accepts connections and
 * runs one command at a time against the open store (ops.c), so operator actions never race each
 * other. Wire format (all integers u32 big-endian; limits enforced before allocation):
 *   request   "CFCTL1" argc { len bytes }*argc  secret_len secret      (argc ≤ 32, arg ≤ 4096 B, secret ≤ 256 B)
 *   reply     exit_code  out_len out  err_len err
 * The secret (a new master key, a password) never appears in argv, in logs or in the reply, and both
 * ends wipe it.
 */
#ifndef CF_CTL_H
#define CF_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "storage.h"

/* cf_ctl_start(cfg, store, started_at, err): binds the socket (replacing a stale one left by a dead
 * server, refusing if a live server answers on it) and starts the control thread, whose commands run
 * on store for a server that started at started_at (ms since the epoch). CF_EINVAL with *err. */
enum cf_status cf_ctl_start(const struct cf_config *cfg, struct cf_store *store, uint64_t started_at,
                            char **err) CF_WUR;
/* cf_ctl_stop(): stops accepting, waits for a command under way to finish, removes the socket. */
void cf_ctl_stop(void);

enum cf_ctl_call {
    CF_CTL_DONE,      /* a server ran the command; *rc is its exit code */
    CF_CTL_NO_SERVER, /* nothing listens on the socket (no file, or a stale one) */
    CF_CTL_FAILED,    /* a server is there but the exchange failed (message written to stderr) */
};
/* cf_ctl_call(path, argc, argv, secret, slen, rc): the CLI side: sends the command, copies the
 * server's stdout and stderr to ours. */
enum cf_ctl_call cf_ctl_call(const char *path, int argc, char **argv, const uint8_t *secret, size_t slen, int *rc);

#endif
