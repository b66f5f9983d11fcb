/*
 * log.h: the daemon's diagnostic log (not the access log, not provenance), on stderr, one line per
 * event, in one of two formats (log.format):
 *   text  2026-11-23T18:35:00.123Z coffer[info]: listening on https://127.0.0.1:8443 (4 loops)
 *   json  {"time":"2026-11-23T18:35:00.123Z","level":"info","msg":"listening on https://…"}
 * A JSON line is always one valid JSON object (RFC 8259): quotes, backslashes and control bytes in
 * the message are escaped, and bytes that are not UTF-8 become U+FFFD. Lines written by a scanner
 * process also carry "process":"scan-worker" and its "pid" (text: "scan-worker: " before the
 * message). Messages longer than CF_LOG_MSG_MAX - 1 bytes are cut.
 *
 * Never log secrets, tokens, passwords, file names or content; ids and status names are fine.
 * Thread-safe: each line is formatted on the stack and written with one call (no allocation, so the
 * out-of-memory path can log too).
 */
#ifndef CF_LOG_H
#define CF_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "base.h" /* CF_LOG_DEBUG … CF_LOG_ERROR */

enum { CF_LOG_TEXT = 0, CF_LOG_JSON = 1 };

#define CF_LOG_MSG_MAX 1024 /* bytes of message, NUL included */
#define CF_LOG_LINE_MAX (6 * CF_LOG_MSG_MAX + 256) /* a JSON line: every byte escaped as \u00XX */

/* cf_log_set_level(level): drop messages below level. Call before threads start. */
void cf_log_set_level(int level);

/* cf_log_set_format(format): CF_LOG_TEXT (the default) or CF_LOG_JSON. Call before threads start;
 * `coffer serve` sets it from log.format, the interactive commands keep text. */
void cf_log_set_format(int format);

/* cf_log_set_process(name): names the process in every later line (a scanner: "scan-worker");
 * NULL for the server. name must outlive the process's logging. Call before threads start. */
void cf_log_set_process(const char *name);

/* cf_log(level, fmt, ...): one line at level, if level is at or above the configured level. */
void cf_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cf_log_message(level, msg): the same for a ready message; the storage library's logger
 * (cf_storage_set_logger) while serving. */
void cf_log_message(int level, const char *msg);

/* cf_log_format_line(out, cap, format, ms, level, process, pid, msg): formats one line, with its
 * '\n', into out (cap ≥ 128) and returns its length (< cap, NUL-terminated). ms: the time in ms since
 * the Unix epoch; process: NULL or a name (then pid is shown too). A message that does not fit is cut
 * at a character boundary. Pure: for the logger and for tests. */
size_t cf_log_format_line(char *out, size_t cap, int format, uint64_t ms, int level, const char *process, long pid,
                          const char *msg);

#define cf_log_debug(...) cf_log(CF_LOG_DEBUG, __VA_ARGS__)
#define cf_log_info(...) cf_log(CF_LOG_INFO, __VA_ARGS__)
#define cf_log_warn(...) cf_log(CF_LOG_WARN, __VA_ARGS__)
#define cf_log_error(...) cf_log(CF_LOG_ERROR, __VA_ARGS__)

#endif
