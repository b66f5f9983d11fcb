/*
 * log.h: the daemon's diagnostic log (not the access log, not provenance). One line per event on
 * stderr: time, level, and a message. Never log secrets, tokens, passwords, file names or content;
 * ids and status names are fine. Thread-safe (one fprintf per line).
 */
#ifndef CF_LOG_H
#define CF_LOG_H

enum { CF_LOG_DEBUG = 0, CF_LOG_INFO = 1, CF_LOG_WARN = 2, CF_LOG_ERROR = 3 };

/* cf_log_set_level(level): drop messages below level. Call before threads start. */
void cf_log_set_level(int level);
void cf_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define cf_log_debug(...) cf_log(CF_LOG_DEBUG, __VA_ARGS__)
#define cf_log_info(...) cf_log(CF_LOG_INFO, __VA_ARGS__)
#define cf_log_warn(...) cf_log(CF_LOG_WARN, __VA_ARGS__)
#define cf_log_error(...) cf_log(CF_LOG_ERROR, __VA_ARGS__)

#endif
