/*
 * log.c: diagnostic log lines on stderr (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include "base.h"

static int min_level = CF_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cf_log_set_level(int level)
{
    min_level = level;
}

void cf_log(int level, const char *fmt, ...)
{
    char ts[32], msg[1024];
    va_list ap;
    if (level < min_level || level < CF_LOG_DEBUG || level > CF_LOG_ERROR)
        return;
    cf_time_rfc3339(cf_now_ms(), ts);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s coffer[%s]: %s\n", ts, level_names[level], msg);
}
