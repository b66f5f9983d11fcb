/*
 * validate.c: names, ranges, Content-Disposition (see validate.h).
 */
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "storage.h"

/* Decodes one code point; returns its length (1..4) or 0 if malformed. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t min;
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        min = 0x80;
        *cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        min = 0x800;
        *cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        min = 0x10000;
        *cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3f);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return len;
}

bool cf_language_tag_valid(const char *s)
{
    if (s == NULL || strlen(s) > 35)
        return false;
    size_t run = 0, subtags = 0;
    for (const char *p = s;; p++) {
        if (*p == '-' || *p == '\0') {
            bool ok = subtags == 0 ? run >= 2 && run <= 3 : run >= 1 && run <= 8;
            if (!ok)
                return false;
            if (*p == '\0')
                return true;
            subtags++;
            run = 0;
        } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (subtags > 0 && *p >= '0' && *p <= '9')) {
            run++;
        } else {
            return false;
        }
    }
}

bool cf_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_next(p + i, n - i, &cp);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

char *cf_text_clean(const char *s, size_t n, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    char *out = cf_xmalloc((n < max ? n : max) + 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_next(p + i, n - i, &cp);
        if (l == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) {
            if (o + 1 > max)
                break;
            out[o++] = '?';
            i += l == 0 ? 1 : l;
            continue;
        }
        if (o + l > max)
            break;
        memcpy(out + o, s + i, l);
        o += l;
        i += l;
    }
    out[o] = '\0';
    return out;
}

/* Code points that draw nothing (or nothing where they stand) and so let two different names look
 * the same, or hide part of a name: every format character of Unicode 15.1 (general category Cf: zero
 * width space, joiners, marks, word joiner, invisible operators, BOM, tags, ...), the line and
 * paragraph separators, and the other default-ignorable code points that render blank (Hangul fillers,
 * the combining grapheme joiner, Mongolian free variation selectors, Khmer inherent vowels, reserved
 * ones). Variation selectors (U+FE00..U+FE0F, U+E0100..U+E01EF) stay allowed: emoji need U+FE0F.
 * The bidirectional controls are among them; name_reason() gives them their own message. */
static const struct {
    uint32_t lo, hi;
} invisible[] = {
    {0x00ad, 0x00ad},   {0x034f, 0x034f},   {0x0600, 0x0605},   {0x061c, 0x061c},   {0x06dd, 0x06dd},
    {0x070f, 0x070f},   {0x0890, 0x0891},   {0x08e2, 0x08e2},   {0x115f, 0x1160},   {0x17b4, 0x17b5},
    {0x180b, 0x180f},   {0x200b, 0x200f},   {0x2028, 0x202e},   {0x2060, 0x206f},   {0x3164, 0x3164},
    {0xfeff, 0xfeff},   {0xffa0, 0xffa0},   {0xfff0, 0xfffb},   {0x110bd, 0x110bd}, {0x110cd, 0x110cd},
    {0x13430, 0x1343f}, {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a}, {0xe0000, 0xe00ff}, {0xe01f0, 0xe0fff},
};

static bool is_invisible(uint32_t cp)
{
    for (size_t i = 0; i < sizeof invisible / sizeof invisible[0]; i++)
        if (cp >= invisible[i].lo && cp <= invisible[i].hi)
            return true;
    return false;
}

static bool is_bidi_control(uint32_t cp)
{
    /* LRM, RLM, ALM; the embeddings and overrides; the isolates */
    return cp == 0x200e || cp == 0x200f || cp == 0x061c || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

static bool is_joiner(uint32_t cp)
{
    return cp == 0x200c || cp == 0x200d; /* ZERO WIDTH NON-JOINER, ZERO WIDTH JOINER */
}

/* A character a joiner may stand next to: one of the scripts from Hebrew on (Arabic, Persian, the
 * Indic scripts, emoji...: where ZWNJ and ZWJ change how the neighbours are drawn, so they are seen),
 * not a space, not invisible, not a joiner. Next to Latin, Greek or Cyrillic letters, next to ASCII
 * punctuation or at either end of a name a joiner draws nothing at all ("repo<ZWJ>rt.pdf" would look
 * like "report.pdf"). Simpler than RFC 5892's CONTEXTJ, in the same spirit. */
static bool joins(uint32_t cp)
{
    bool space = cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x202f || cp == 0x205f || cp == 0x3000;
    return cp >= 0x0590 && !space && !is_invisible(cp);
}

const char *cf_name_check(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0)
        return "a name must not be empty";
    if (n > CF_NAME_MAX)
        return "a name is at most 255 bytes";
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return "a name must not be . or ..";
    uint32_t prev = 0; /* the code point before this one; 0 at the start */
    for (size_t i = 0; i < n;) {
        uint32_t cp, next = 0;
        size_t l = utf8_next(p + i, n - i, &cp);
        if (l == 0)
            return "a name must be valid UTF-8";
        if (cp == '/')
            return "a name must not contain /";
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029)
            return "a name must not contain control characters or line separators";
        if (is_bidi_control(cp))
            return "a name must not contain bidirectional control characters";
        if (is_joiner(cp)) {
            if (i + l < n && utf8_next(p + i + l, n - i - l, &next) == 0)
                return "a name must be valid UTF-8";
            if (prev == 0 || next == 0 || !joins(prev) || !joins(next))
                return "a name may hold a zero width joiner or non-joiner only between letters or emoji that it joins "
                       "(Arabic, Indic and other such scripts, emoji)";
        } else if (is_invisible(cp)) {
            return "a name must not contain invisible or format characters (zero width spaces, word joiners, "
                   "byte order marks, tags...)";
        }
        prev = cp;
        i += l;
    }
    return NULL;
}

/* Parses a decimal number from s[*i..]; false if none or too large. */
static bool number(const char *s, size_t n, size_t *i, uint64_t *out)
{
    size_t start = *i;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9')
        (*i)++;
    return cf_parse_u64(s + start, *i - start, UINT64_MAX, out) == CF_OK;
}

enum cf_range_result cf_range_parse(const char *s, size_t n, uint64_t size, uint64_t *first, uint64_t *last)
{
    size_t i = 0;
    /* RFC 9110 §14.1: the unit is case-insensitive; another unit means "ignore the header". */
    if (n < 6 || strncasecmp(s, "bytes=", 6) != 0)
        return CF_RANGE_NONE;
    i = 6;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (memchr(s + i, ',', n - i) != NULL) {
        /* Several ranges: a server may ignore Range and send the whole representation; that also
         * keeps overlapping-range amplification away. */
        return CF_RANGE_NONE;
    }
    uint64_t a = 0, b = 0;
    bool have_a = false, have_b = false;
    if (i < n && s[i] != '-') {
        if (!number(s, n, &i, &a))
            return CF_RANGE_UNSATISFIABLE;
        have_a = true;
    }
    if (i >= n || s[i] != '-')
        return CF_RANGE_UNSATISFIABLE;
    i++;
    if (i < n && s[i] >= '0' && s[i] <= '9') {
        if (!number(s, n, &i, &b))
            return CF_RANGE_UNSATISFIABLE;
        have_b = true;
    }
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i != n || (!have_a && !have_b))
        return CF_RANGE_UNSATISFIABLE;
    if (!have_a) {
        /* suffix: the last b bytes */
        if (b == 0 || size == 0)
            return CF_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return CF_RANGE_OK;
    }
    if (have_b && b < a)
        return CF_RANGE_UNSATISFIABLE;
    if (a >= size)
        return CF_RANGE_UNSATISFIABLE;
    *first = a;
    *last = !have_b || b >= size ? size - 1 : b;
    return CF_RANGE_OK;
}

/* RFC 5987 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" */
static bool attr_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$&+-.^_`|~", c) != NULL;
}

char *cf_content_disposition(const char *type, const char *name, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t tl = strlen(type);
    char *out = cf_xmalloc(tl + 64 + n + 3 * n);
    size_t o = 0;
    memcpy(out, type, tl);
    o = tl;
    memcpy(out + o, "; filename=\"", 12);
    o += 12;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        out[o++] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '%') ? '_' : (char)c;
    }
    memcpy(out + o, "\"; filename*=UTF-8''", 20);
    o += 20;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (attr_char(c) && c != '\0') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}
