/*
 * jsonw.c: the JSON writer (jsonw.h). Owns its buffer only. The UTF-8 check and the escapes follow
 * jansson 2.14's utf8.c and dump.c (dump_string with JSON_ENSURE_ASCII) rule for rule.
 */
#include "jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cf_jw_init(struct cf_jw *w, size_t cap)
{
    w->cap = cap > 16 ? cap : 16;
    w->p = cf_xmalloc(w->cap);
    w->n = 0;
    w->bad = false;
}

void cf_jw_free(struct cf_jw *w)
{
    free(w->p);
    w->p = NULL;
    w->n = w->cap = 0;
}

static void reserve(struct cf_jw *w, size_t more)
{
    if (w->n + more <= w->cap)
        return;
    while (w->n + more > w->cap)
        w->cap *= 2;
    w->p = cf_xrealloc(w->p, w->cap);
}

void cf_jw_raw(struct cf_jw *w, const char *s, size_t n)
{
    reserve(w, n);
    memcpy(w->p + w->n, s, n);
    w->n += n;
}

/* One code point at s (jansson's utf8_check_first / utf8_check_full): its length, 0 if invalid. */
static size_t utf8_next(const uint8_t *s, const uint8_t *end, uint32_t *cp)
{
    uint8_t u = s[0];
    size_t len;
    uint32_t v;
    if (u < 0x80) {
        *cp = u;
        return 1;
    }
    if (u < 0xC2 || u > 0xF4)
        return 0; /* a continuation byte, an overlong 2-byte lead, or beyond U+10FFFF */
    if (u < 0xE0) {
        len = 2;
        v = u & 0x1F;
    } else if (u < 0xF0) {
        len = 3;
        v = u & 0x0F;
    } else {
        len = 4;
        v = u & 0x07;
    }
    if ((size_t)(end - s) < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (len == 3 && v < 0x800) || (len == 4 && v < 0x10000))
        return 0;
    *cp = v;
    return len;
}

static void esc_u(struct cf_jw *w, uint32_t v)
{
    static const char hex[] = "0123456789ABCDEF";
    char seq[6] = {'\\', 'u', hex[(v >> 12) & 15], hex[(v >> 8) & 15], hex[(v >> 4) & 15], hex[v & 15]};
    cf_jw_raw(w, seq, sizeof seq);
}

void cf_jw_str(struct cf_jw *w, const char *s)
{
    if (s == NULL) {
        w->bad = true;
        return;
    }
    size_t n = strlen(s);
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    reserve(w, n + 2);
    w->p[w->n++] = '"';
    while (p < end) {
        const uint8_t *run = p;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            cf_jw_raw(w, (const char *)run, (size_t)(p - run));
        if (p == end)
            break;
        uint32_t cp;
        size_t len = utf8_next(p, end, &cp);
        if (len == 0) {
            w->bad = true;
            return;
        }
        p += len;
        switch (cp) {
        case '\\': cf_jw_lit(w, "\\\\"); break;
        case '"': cf_jw_lit(w, "\\\""); break;
        case '\b': cf_jw_lit(w, "\\b"); break;
        case '\f': cf_jw_lit(w, "\\f"); break;
        case '\n': cf_jw_lit(w, "\\n"); break;
        case '\r': cf_jw_lit(w, "\\r"); break;
        case '\t': cf_jw_lit(w, "\\t"); break;
        default:
            if (cp < 0x10000) {
                esc_u(w, cp);
            } else {
                cp -= 0x10000;
                esc_u(w, 0xD800 | ((cp & 0xffc00) >> 10));
                esc_u(w, 0xDC00 | (cp & 0x003ff));
            }
        }
    }
    cf_jw_lit(w, "\"");
}

void cf_jw_str_or_null(struct cf_jw *w, const char *s)
{
    if (s == NULL)
        cf_jw_lit(w, "null");
    else
        cf_jw_str(w, s);
}

void cf_jw_int(struct cf_jw *w, long long v)
{
    char b[24];
    if (v < 0) {
        int k = snprintf(b, sizeof b, "%lld", v);
        cf_jw_raw(w, b, (size_t)k);
        return;
    }
    size_t i = sizeof b;
    unsigned long long u = (unsigned long long)v;
    do {
        b[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    cf_jw_raw(w, b + i, sizeof b - i);
}

void cf_jw_id(struct cf_jw *w, const struct cf_id *id)
{
    char hex[CF_ID_HEX_LEN + 3];
    if (cf_id_is_zero(id)) {
        cf_jw_lit(w, "null");
        return;
    }
    hex[0] = '"';
    cf_id_hex(id, hex + 1);
    hex[CF_ID_HEX_LEN + 1] = '"';
    cf_jw_raw(w, hex, CF_ID_HEX_LEN + 2);
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

/* cf_time_rfc3339 without gmtime_r and snprintf (three per node): days to a civil date (Howard
 * Hinnant's algorithm). Years 1970..9999 only; anything else goes through cf_time_rfc3339. */
void cf_jw_time(struct cf_jw *w, uint64_t ms)
{
    char t[32];
    if (ms >= 253402300800000ull) { /* 10000-01-01T00:00:00Z */
        cf_time_rfc3339(ms, t);
        cf_jw_str(w, t);
        return;
    }
    uint64_t secs = ms / 1000, days = secs / 86400, sod = secs % 86400;
    uint64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    unsigned d = (unsigned)(doy - (153 * mp + 2) / 5 + 1), m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    unsigned y = (unsigned)(yoe + era * 400 + (m <= 2)), msec = (unsigned)(ms % 1000);
    /* "YYYY-MM-DDTHH:MM:SS.mmmZ" in quotes */
    t[0] = '"';
    put2(t + 1, y / 100);
    put2(t + 3, y % 100);
    t[5] = '-';
    put2(t + 6, m);
    t[8] = '-';
    put2(t + 9, d);
    t[11] = 'T';
    put2(t + 12, (unsigned)(sod / 3600));
    t[14] = ':';
    put2(t + 15, (unsigned)(sod / 60 % 60));
    t[17] = ':';
    put2(t + 18, (unsigned)(sod % 60));
    t[20] = '.';
    t[21] = (char)('0' + msec / 100);
    put2(t + 22, msec % 100);
    t[24] = 'Z';
    t[25] = '"';
    cf_jw_raw(w, t, 26);
}
