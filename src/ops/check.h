/*
 * check.h: `coffer serve --check`: everything `coffer serve` verifies at start-up, run without
 * serving, so that an operator (or `systemctl reload`, conf/coffer.service) learns that a
 * configuration is unusable before the server does.
 */
#ifndef CF_CHECK_H
#define CF_CHECK_H

struct cf_config;

/* cf_check_serve(cfg): given a configuration that parsed (config.h), checks, through the same
 * functions serve uses and in serve's order:
 *   - the account rules of `user:` and the owner of data_dir (priv.h);
 *   - scan.scratch_dir is a tmpfs and scan.database_dir holds signatures (scan.h);
 *   - the master key: a regular file of 32 bytes, not readable by group or others;
 *   - the TLS certificate and key load and match (tls.h);
 *   - web_dir can be read; the access log can be opened (its directory exists);
 *   - every `listen:` address resolves (nothing is bound: a running server may hold them);
 *   - then, after the drop to `user:` as serve does, the master key opens data_dir, read-only
 *     (cf_store_open_readonly works beside a running server).
 * Each problem is one line on stderr, "coffer: CONFIG: KEY: what" (naming the file at fault), and
 * every check runs even after a failure. Returns the exit code: 0 after printing
 * "coffer: CONFIG: configuration ok" on stdout, 2 if anything is wrong with the configuration or
 * the files it names, 1 if the store could not be read for another reason (I/O). Main thread;
 * may drop privileges for good (priv.h), so the process must exit afterwards. */
int cf_check_serve(struct cf_config *cfg);

#endif
