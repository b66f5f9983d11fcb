/*
 * fuzz_text.c: the validators and encoders of untrusted text (src/validate.c, src/provenance.c):
 * cf_utf8_valid, cf_name_check, cf_text_clean, cf_content_disposition, cf_csv_cell.
 *
 * Invariants: cf_utf8_valid agrees with an independent RFC 3629 decoder; an accepted name is 1..255
 * bytes of valid UTF-8 without '/', controls (C0, DEL, C1), bidi controls or other invisible characters
 * (a joiner only between two characters it joins) and is not "." or "..";
 * cleaned text is valid UTF-8 without controls, within its limit, and unchanged when it was already
 * clean and short enough; a Content-Disposition value has no control character, an ASCII fallback
 * without quote or backslash, and a filename* that percent-decodes to the original bytes; a CSV cell
 * parses back (RFC 4180) to the original string (with the apostrophe the code promises before a
 * formula) and never starts with = + - @ TAB or CR.
 */
#include <stdbool.h>
#include <string.h>

#include "audit.h"
#include "fuzz.h"
#include "validate.h"

/* Reference decoder, written from RFC 3629 §4's table (not from validate.c): the length of the
 * well-formed sequence at s, or 0. */
static size_t ref_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char b = s[0];
    if (b <= 0x7f) {
        *cp = b;
        return 1;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf)
        len = 2;
    else if (b == 0xe0)
        len = 3, lo = 0xa0;
    else if (b >= 0xe1 && b <= 0xec)
        len = 3;
    else if (b == 0xed)
        len = 3, hi = 0x9f;
    else if (b >= 0xee && b <= 0xef)
        len = 3;
    else if (b == 0xf0)
        len = 4, lo = 0x90;
    else if (b >= 0xf1 && b <= 0xf3)
        len = 4;
    else if (b == 0xf4)
        len = 4, hi = 0x8f;
    else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    uint32_t c = b & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
    for (size_t i = 1; i < len; i++)
        c = c << 6 | (s[i] & 0x3f);
    *cp = c;
    return len;
}

static bool is_control(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f);
}

/* Valid UTF-8; with clean, also free of control characters. */
static bool ref_valid(const char *s, size_t n, bool clean)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = ref_seq(p + i, n - i, &cp);
        if (l == 0 || (clean && is_control(cp)))
            return false;
        i += l;
    }
    return true;
}

/* Invisible code points refused in names, listed one block at a time from the Unicode 15.1 tables
 * (general category Cf, Zl, Zp, and the blank Default_Ignorable_Code_Point ones), not from
 * validate.c. The variation selectors are not refused. */
static bool ref_invisible(uint32_t c)
{
    if (c < 0x80)
        return false;
    if (c == 0xad || c == 0x34f || c == 0x61c || c == 0x6dd || c == 0x70f || c == 0x8e2 || c == 0x3164 ||
        c == 0xfeff || c == 0xffa0 || c == 0x110bd || c == 0x110cd)
        return true;
    if ((c >= 0x600 && c <= 0x605) || (c >= 0x890 && c <= 0x891) || (c >= 0x115f && c <= 0x1160) ||
        (c >= 0x17b4 && c <= 0x17b5) || (c >= 0x180b && c <= 0x180f))
        return true;
    if (c >> 8 == 0x20) /* General Punctuation: 200B..200F, 2028..202E, 2060..206F */
        return (c >= 0x200b && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) || (c >= 0x2060 && c <= 0x206f);
    if ((c >= 0xfff0 && c <= 0xfffb) || (c >= 0x13430 && c <= 0x1343f) || (c >= 0x1bca0 && c <= 0x1bca3) ||
        (c >= 0x1d173 && c <= 0x1d17a))
        return true;
    return c >> 12 == 0xe0 && !(c >= 0xe0100 && c <= 0xe01ef); /* plane 14 but its variation selectors */
}

static bool ref_name_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cps[256];
    size_t k = 0;
    if (n == 0 || n > 255 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < n;) {
        size_t l = ref_seq(p + i, n - i, &cps[k]);
        if (l == 0 || is_control(cps[k]) || cps[k] == '/')
            return false;
        k++;
        i += l;
    }
    /* ZWNJ/ZWJ only between two joinable characters: U+0590 or above, not a space, not invisible. */
    for (size_t i = 0; i < k; i++) {
        bool joiner = cps[i] == 0x200c || cps[i] == 0x200d;
        if (!joiner && ref_invisible(cps[i]))
            return false;
        if (!joiner)
            continue;
        for (int side = -1; side <= 1; side += 2) {
            if ((side < 0 && i == 0) || (side > 0 && i + 1 == k))
                return false;
            uint32_t c = cps[(size_t)((long)i + side)];
            bool space = c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x202f || c == 0x205f || c == 0x3000;
            if (c < 0x590 || space || ref_invisible(c))
                return false;
        }
    }
    return true;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void check_disposition(const char *s, size_t n)
{
    char *h = cf_content_disposition("attachment", s, n);
    size_t hl = strlen(h);
    for (size_t i = 0; i < hl; i++)
        FUZZ_CHECK((unsigned char)h[i] >= 0x20 && (unsigned char)h[i] < 0x7f); /* header-safe */
    static const char pre[] = "attachment; filename=\"";
    FUZZ_CHECK(strncmp(h, pre, sizeof pre - 1) == 0);
    const char *fb = h + sizeof pre - 1;
    const char *q = strchr(fb, '"');
    FUZZ_CHECK(q != NULL && (size_t)(q - fb) == n); /* one fallback byte per name byte, no quote inside */
    FUZZ_CHECK(memchr(fb, '\\', n) == NULL);
    static const char mid[] = "\"; filename*=UTF-8''";
    FUZZ_CHECK(strncmp(q, mid, sizeof mid - 1) == 0);
    const char *enc = q + sizeof mid - 1;
    size_t o = 0;
    for (const char *p = enc; *p != '\0'; o++) {
        FUZZ_CHECK(o < n);
        if (*p == '%') {
            int a = hexval(p[1]), b = a < 0 ? -1 : hexval(p[2]);
            FUZZ_CHECK(a >= 0 && b >= 0);
            FUZZ_CHECK((unsigned char)(a << 4 | b) == (unsigned char)s[o]);
            p += 3;
        } else {
            FUZZ_CHECK(strchr(" \"';,\\", *p) == NULL); /* RFC 5987 attr-char only */
            FUZZ_CHECK(*p == s[o]);
            p++;
        }
    }
    FUZZ_CHECK(o == n);
    free(h);
}

static void check_csv(const char *s)
{
    struct cf_csv b = {0};
    cf_csv_cell(&b, "x", true);
    size_t start = b.len;
    cf_csv_cell(&b, s, false);
    FUZZ_CHECK(b.p[start] == ',');
    const char *c = b.p + start + 1;
    size_t cl = b.len - start - 1;
    bool formula = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r';
    /* Parse the cell back as RFC 4180 does. */
    char *back = malloc(cl + 1);
    size_t bl = 0;
    if (cl > 0 && c[0] == '"') {
        FUZZ_CHECK(cl >= 2 && c[cl - 1] == '"');
        for (size_t i = 1; i < cl - 1; i++) {
            if (c[i] == '"') {
                FUZZ_CHECK(i + 1 < cl - 1 && c[i + 1] == '"'); /* every inner quote doubled */
                i++;
            }
            back[bl++] = c[i];
        }
    } else {
        FUZZ_CHECK(strpbrk(c, ",\"\r\n") == NULL); /* an unquoted cell cannot end the field or row */
        memcpy(back, c, cl);
        bl = cl;
    }
    back[bl] = '\0';
    /* What a spreadsheet sees never starts a formula. */
    FUZZ_CHECK(bl == 0 || strchr("=+-@\t\r", back[0]) == NULL);
    if (formula) {
        FUZZ_CHECK(back[0] == '\'' && strcmp(back + 1, s) == 0);
    } else {
        FUZZ_CHECK(strcmp(back, s) == 0);
    }
    free(back);
    free(b.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    if (size > 4096)
        return 0;

    FUZZ_CHECK(cf_utf8_valid(s, size) == ref_valid(s, size, false));

    const char *why = cf_name_check(s, size);
    FUZZ_CHECK((why == NULL) == ref_name_ok(s, size));
    FUZZ_CHECK(why == NULL || why[0] != '\0');

    static const size_t limits[] = {0, 1, 3, 7, 255, 4096};
    for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
        size_t max = limits[k];
        char *t = cf_text_clean(s, size, max);
        size_t tl = strlen(t);
        FUZZ_CHECK(tl <= max);
        FUZZ_CHECK(ref_valid(t, tl, true));
        if (size <= max && ref_valid(s, size, true))
            FUZZ_CHECK(tl == size && memcmp(t, s, size) == 0);
        free(t);
    }

    check_disposition(s, size);

    char *z = malloc(size + 1);
    memcpy(z, s, size);
    z[size] = '\0';
    check_csv(z);
    free(z);
    return 0;
}
