/*
 * log.c: diagnostic log lines on stderr, as text or JSON (see log.h).
 *
 * Each line is built in a stack buffer (CF_LOG_LINE_MAX, about 6 KiB) and written with one fwrite
 * on the unbuffered stderr, so lines from different threads and processes never interleave within
 * a line (a pipe write of up to PIPE_BUF bytes is atomic; longer lines are rare).
 */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int min_level = CF_LOG_INFO;
static int format = CF_LOG_TEXT;
static const char *process; /* NULL: the server itself */
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cf_log_set_level(int level)
{
    min_level = level;
}

void cf_log_set_format(int f)
{
    format = f == CF_LOG_JSON ? CF_LOG_JSON : CF_LOG_TEXT;
}

void cf_log_set_process(const char *name)
{
    process = name;
}

/* The length of the well-formed UTF-8 sequence at s (n bytes left), or 0 if s does not start one:
 * RFC 3629 §4, so no overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/* Appends s as the inside of a JSON string (RFC 8259 §7) to out[*o .. cap - reserve), stopping
 * before a character that would not fit; invalid UTF-8 bytes become U+FFFD, one per byte. */
static void json_escape(const char *str, char *out, size_t *o, size_t cap, size_t reserve)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    size_t limit = cap - reserve;
    for (size_t i = 0; i < n;) {
        char esc[8];
        const char *piece = esc;
        size_t plen, adv = 1;
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            plen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            static const char shorts[] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
            if (c < sizeof shorts && shorts[c] != 0) {
                esc[0] = '\\';
                esc[1] = shorts[c];
                plen = 2;
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                plen = 6;
            }
        } else if (c < 0x80) {
            piece = (const char *)s + i;
            plen = 1;
        } else if ((adv = utf8_len(s + i, n - i)) != 0) {
            piece = (const char *)s + i;
            plen = adv;
        } else {
            piece = "\\ufffd";
            plen = 6;
            adv = 1;
        }
        if (*o + plen > limit)
            return;
        memcpy(out + *o, piece, plen);
        *o += plen;
        i += adv;
    }
}

/* Appends the NUL-terminated s if it fits before cap - reserve. */
static void put(const char *s, char *out, size_t *o, size_t cap, size_t reserve)
{
    size_t n = strlen(s);
    if (*o + n + reserve <= cap) {
        memcpy(out + *o, s, n);
        *o += n;
    }
}

/* Appends the first bytes of msg that fit in text form, cut at a character boundary. */
static void text_message(const char *msg, char *out, size_t *o, size_t cap, size_t reserve)
{
    size_t n = strlen(msg);
    size_t room = cap - reserve - *o;
    if (n > room) {
        n = room;
        while (n > 0 && ((unsigned char)msg[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(out + *o, msg, n);
    *o += n;
}

size_t cf_log_format_line(char *out, size_t cap, int fmt, uint64_t ms, int level, const char *proc, long pid,
                          const char *msg)
{
    char ts[32], tail[64];
    size_t o = 0;
    const char *lv = level >= CF_LOG_DEBUG && level <= CF_LOG_ERROR ? level_names[level] : "error";
    cf_time_rfc3339(ms, ts);
    if (fmt == CF_LOG_JSON) {
        /* Room kept for the closing part: "}\n", or the process and pid. */
        if (proc != NULL)
            snprintf(tail, sizeof tail, "\",\"process\":\"%.24s\",\"pid\":%ld}\n", proc, pid);
        else
            snprintf(tail, sizeof tail, "\"}\n");
        size_t reserve = strlen(tail) + 1;
        put("{\"time\":\"", out, &o, cap, reserve);
        put(ts, out, &o, cap, reserve);
        put("\",\"level\":\"", out, &o, cap, reserve);
        put(lv, out, &o, cap, reserve);
        put("\",\"msg\":\"", out, &o, cap, reserve);
        json_escape(msg, out, &o, cap, reserve);
        put(tail, out, &o, cap, 1);
    } else {
        char head[96];
        if (proc != NULL)
            snprintf(head, sizeof head, "%s coffer[%s]: %.24s: ", ts, lv, proc);
        else
            snprintf(head, sizeof head, "%s coffer[%s]: ", ts, lv);
        put(head, out, &o, cap, 2);
        text_message(msg, out, &o, cap, 2);
        out[o++] = '\n';
    }
    out[o] = '\0';
    return o;
}

void cf_log_message(int level, const char *msg)
{
    char line[CF_LOG_LINE_MAX];
    if (level < min_level || level < CF_LOG_DEBUG || level > CF_LOG_ERROR)
        return;
    size_t n = cf_log_format_line(line, sizeof line, format, cf_now_ms(), level, process,
                                  process != NULL ? (long)getpid() : 0, msg);
    fwrite(line, 1, n, stderr);
}

void cf_log(int level, const char *fmt, ...)
{
    char msg[CF_LOG_MSG_MAX];
    va_list ap;
    if (level < min_level || level < CF_LOG_DEBUG || level > CF_LOG_ERROR)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cf_log_message(level, msg);
}
