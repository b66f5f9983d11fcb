/*
 * test_validate.c: names, byte ranges and Content-Disposition (src/validate.c), table-driven.
 */
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "validate.h"

struct name_case {
    const char *s;
    size_t n; /* 0: strlen */
    bool ok;
};

static void names(void)
{
    char long255[256], long256[257];
    memset(long255, 'a', 255);
    long255[255] = '\0';
    memset(long256, 'a', 256);
    long256[256] = '\0';
    const struct name_case cases[] = {
        {"report.pdf", 0, true},
        {"f\xc3\xa9.txt", 0, true},              /* é */
        {"\xe4\xbd\xa0\xe5\xa5\xbd", 0, true},   /* 你好 */
        {"\xf0\x9f\x93\x84 doc", 0, true},        /* 📄 */
        {".hidden", 0, true},
        {"...", 0, true},
        {"a b", 0, true},
        {long255, 0, true},
        {long256, 0, false},
        {"", 0, false},
        {".", 0, false},
        {"..", 0, false},
        {"a/b", 0, false},
        {"a\0b", 3, false},
        {"a\x01" "b", 0, false},
        {"a\x1f", 0, false},
        {"a\x7f", 0, false},
        {"a\xc2\x85", 0, false},                  /* U+0085 NEL, a C1 control */
        {"a\xc2\x9f", 0, false},                  /* U+009F */
        {"a\xc2\xa0", 0, true},                   /* U+00A0 is not a control */
        {"x\xe2\x80\xae" "fdp.exe", 0, false},    /* U+202E RIGHT-TO-LEFT OVERRIDE */
        {"x\xe2\x81\xa6", 0, false},              /* U+2066 */
        {"x\xe2\x80\x8b", 0, false},              /* U+200B ZERO WIDTH SPACE */
        {"repo\xe2\x80\x8brt.pdf", 0, false},      /* ... inside an ASCII name */
        {"repo\xe2\x80\x8drt.pdf", 0, false},      /* U+200D ZWJ between Latin letters draws nothing */
        {"repo\xe2\x80\x8crt.pdf", 0, false},      /* U+200C ZWNJ likewise */
        {"a\xe2\x80\x8e.txt", 0, false},           /* U+200E LEFT-TO-RIGHT MARK */
        {"a\xe2\x80\x8f.txt", 0, false},           /* U+200F RIGHT-TO-LEFT MARK */
        {"a\xd8\x9c.txt", 0, false},                /* U+061C ARABIC LETTER MARK */
        {"a\xe2\x80\xa8" "b", 0, false},           /* U+2028 LINE SEPARATOR */
        {"a\xe2\x80\xa9" "b", 0, false},           /* U+2029 PARAGRAPH SEPARATOR */
        {"a\xe2\x80\xaa" "b", 0, false},           /* U+202A LRE */
        {"a\xe2\x81\xa0" "b", 0, false},           /* U+2060 WORD JOINER */
        {"a\xe2\x81\xa4" "b", 0, false},           /* U+2064 INVISIBLE PLUS */
        {"a\xe2\x81\xa9" "b", 0, false},           /* U+2069 PDI */
        {"a\xe2\x81\xaf" "b", 0, false},           /* U+206F NOMINAL DIGIT SHAPES */
        {"\xef\xbb\xbfreport.pdf", 0, false},      /* U+FEFF BOM / ZWNBSP */
        {"a\xc2\xad" "b", 0, false},                /* U+00AD SOFT HYPHEN (Cf) */
        {"a\xe1\xa0\x8e" "b", 0, false},           /* U+180E MONGOLIAN VOWEL SEPARATOR (Cf) */
        {"a\xef\xbf\xb9" "b", 0, false},           /* U+FFF9 INTERLINEAR ANNOTATION ANCHOR (Cf) */
        {"a\xf3\xa0\x80\x81", 0, false},          /* U+E0001 LANGUAGE TAG */
        {"a\xf3\xa0\x81\xa1", 0, false},          /* U+E0061 TAG LATIN SMALL LETTER A */
        {"a\xf0\x9d\x85\xb3" "b", 0, false},      /* U+1D173 MUSICAL SYMBOL BEGIN BEAM (Cf) */
        {"\xe3\x85\xa4", 0, false},                /* U+3164 HANGUL FILLER (a blank name) */
        {"a\xcd\x8f" "b", 0, false},                /* U+034F COMBINING GRAPHEME JOINER */
        {"\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xae\xd9\x88\xd8\xa7\xd9\x87\xd9\x85.txt", 0, true}, /* Persian ZWNJ */
        {"\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8d\xe0\xa4\xb7", 0, true}, /* Devanagari KA VIRAMA ZWJ SSA */
        {"\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7.png", 0, true}, /* emoji family */
        {"\xe2\x9d\xa4\xef\xb8\x8f.png", 0, true}, /* U+2764 U+FE0F: variation selectors stay */
        {"\xe2\x80\x8d\xd9\x85", 0, false},      /* a joiner at the start */
        {"\xd9\x85\xe2\x80\x8c", 0, false},      /* ... at the end */
        {"\xd9\x85\xe2\x80\x8c\xe2\x80\x8c\xd9\x85", 0, false}, /* ... twice in a row */
        {"\xd9\x85\xe2\x80\x8c \xd9\x85", 0, false}, /* ... before a space */
        {"\xd9\x85\xe2\x80\x8c\xe3\x80\x80", 0, false}, /* ... before U+3000 IDEOGRAPHIC SPACE */
        {"\xd9\x85\xe2\x80\x8c\xef\xbb\xbf\xd9\x85", 0, false}, /* ... before another invisible */
        {"\xd9\x85\xe2\x80\x8c" "a", 0, false},  /* ... before a Latin letter */
        {"\xd0\xb0\xe2\x80\x8d\xd0\xb1", 0, false}, /* ... between Cyrillic letters */
        {"\xd9\x85\xe2\x80\x8c\xff", 0, false}, /* ... before an invalid byte */
        {"\xff", 0, false},                       /* invalid byte */
        {"\xc0\xaf", 0, false},                   /* overlong '/' */
        {"\xe0\x80\xaf", 0, false},               /* overlong */
        {"\xed\xa0\x80", 0, false},               /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 0, false},           /* > U+10FFFF */
        {"\xc3", 0, false},                       /* truncated */
        {"\xe4\xbd", 0, false},                   /* truncated */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = cases[i].n != 0 ? cases[i].n : strlen(cases[i].s);
        const char *why = cf_name_check(cases[i].s, n);
        CHECK((why == NULL) == cases[i].ok, "name case %zu %s (%s)", i, cases[i].ok ? "accepted" : "rejected",
              why != NULL ? why : "ok");
    }
    CHECK(cf_utf8_valid("", 0), "empty string is valid UTF-8");
    CHECK(!cf_utf8_valid("\x80", 1), "lone continuation byte is invalid");
    static const char *const tags_ok[] = {"zh-cn", "zh-TW", "zh-Hant-TW", "en", "ja", "ko", "yue-HK", "sr-Latn-RS", "de-1996"};
    for (size_t i = 0; i < sizeof tags_ok / sizeof *tags_ok; i++)
        CHECK(cf_language_tag_valid(tags_ok[i]), "language tag %s accepted", tags_ok[i]);
    static const char *const tags_bad[] = {"", "z", "zhcn", "zh-", "-zh", "zh--cn", "zh_cn", "zh cn", "1a",
                                           "zh-abcdefghi", "zh-cn\n", "zh-cn;x", "\xe4\xb8\xad",
                                           "aa-bbbbbbbb-cccccccc-dddddddd-eeeeee"};
    for (size_t i = 0; i < sizeof tags_bad / sizeof *tags_bad; i++)
        CHECK(!cf_language_tag_valid(tags_bad[i]), "bad language tag %zu refused", i);
    CHECK(!cf_language_tag_valid(NULL), "no language tag refused");
}

struct range_case {
    const char *h;
    uint64_t size;
    enum cf_range_result want;
    uint64_t first, last;
};

static void ranges(void)
{
    const struct range_case cases[] = {
        {"bytes=0-0", 100, CF_RANGE_OK, 0, 0},
        {"bytes=0-", 100, CF_RANGE_OK, 0, 99},
        {"bytes=5-9", 100, CF_RANGE_OK, 5, 9},
        {"bytes=99-", 100, CF_RANGE_OK, 99, 99},
        {"bytes=10-1000", 100, CF_RANGE_OK, 10, 99},
        {"bytes=-1", 100, CF_RANGE_OK, 99, 99},
        {"bytes=-10", 100, CF_RANGE_OK, 90, 99},
        {"bytes=-1000", 100, CF_RANGE_OK, 0, 99},
        {"BYTES=1-2", 100, CF_RANGE_OK, 1, 2},
        {"bytes= 1-2 ", 100, CF_RANGE_OK, 1, 2},
        {"bytes=100-", 100, CF_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=100-200", 100, CF_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=5-2", 100, CF_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=-0", 100, CF_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=abc", 100, CF_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=1-2x", 100, CF_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=-", 100, CF_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=", 100, CF_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=18446744073709551616-", 100, CF_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-0", 0, CF_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=-5", 0, CF_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-1,5-6", 100, CF_RANGE_NONE, 0, 0},
        {"items=0-1", 100, CF_RANGE_NONE, 0, 0},
        {"bytes", 100, CF_RANGE_NONE, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t a = 7777, b = 7777;
        enum cf_range_result r = cf_range_parse(cases[i].h, strlen(cases[i].h), cases[i].size, &a, &b);
        bool ok = r == cases[i].want && (r != CF_RANGE_OK || (a == cases[i].first && b == cases[i].last));
        CHECK(ok, "range \"%s\" on %llu bytes", cases[i].h, (unsigned long long)cases[i].size);
        if (!ok)
            printf("#   got result %d, %llu-%llu\n", (int)r, (unsigned long long)a, (unsigned long long)b);
    }
}

static void disposition(void)
{
    char *d = cf_content_disposition("attachment", "report.pdf", 10);
    CHECK_STR(d, "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf", "plain ASCII name");
    free(d);
    d = cf_content_disposition("attachment", "f\xc3\xa9 \"x\".txt", strlen("f\xc3\xa9 \"x\".txt"));
    CHECK_STR(d, "attachment; filename=\"f__ _x_.txt\"; filename*=UTF-8''f%C3%A9%20%22x%22.txt",
              "UTF-8 and quotes: ASCII fallback and RFC 5987 encoding");
    free(d);
    d = cf_content_disposition("inline", "a;b\\c%d\r\n", 9);
    CHECK_STR(d, "inline; filename=\"a;b_c_d__\"; filename*=UTF-8''a%3Bb%5Cc%25d%0D%0A",
              "separators, backslash, percent and CR/LF cannot break the header");
    free(d);
}

int main(void)
{
    names();
    ranges();
    disposition();
    return tap_done();
}
