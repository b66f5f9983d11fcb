/*
 * test_davif.c: the WebDAV If header parser and evaluator (src/dav/davif.h): every form litmus and
 * neon send (untagged lists, tagged lists with absolute URIs, Not, entity tags, several lists),
 * their evaluation against a resource through the callbacks, and hostile headers (unbalanced, empty
 * lists, tags after untagged lists, controls, NUL, over the byte, list and condition limits), each
 * refused with CF_EINVAL. Leaks and overreads are ASan's to find (the header is copied into a
 * buffer of its exact size).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dav/davif.h"
#include "tap.h"

/* Parses a copy of exactly n bytes, so that ASan sees any read past the end. */
static enum cf_status parse(const char *h, size_t n, struct cf_davif *out, char **keep)
{
    char *copy = malloc(n > 0 ? n : 1);
    memcpy(copy, h, n);
    enum cf_status st = cf_davif_parse(copy, n, out);
    *keep = copy;
    return st;
}

static bool ok(const char *h)
{
    struct cf_davif f;
    char *k;
    enum cf_status st = parse(h, strlen(h), &f, &k);
    free(k);
    return st == CF_OK;
}

/* The resource: path "/dav/private/a", lock token "opaquelocktoken:good", etag "\"e1\"". */
static bool applies(void *ctx, const char *tag, size_t n)
{
    (void)ctx;
    static const char me[] = "https://h/dav/private/a";
    return (n == strlen(me) && memcmp(tag, me, n) == 0) || (n == 14 && memcmp(tag, "/dav/private/a", 14) == 0);
}

static bool holds(void *ctx, const struct cf_davif_cond *c)
{
    (void)ctx;
    if (c->etag)
        return c->len == 4 && memcmp(c->s, "\"e1\"", 4) == 0;
    return c->len == 20 && memcmp(c->s, "opaquelocktoken:good", 20) == 0;
}

static int eval(const char *h)
{
    struct cf_davif f;
    char *k;
    if (parse(h, strlen(h), &f, &k) != CF_OK) {
        free(k);
        return -1;
    }
    struct cf_davif_eval ev = {applies, holds, NULL};
    int r = cf_davif_true(&f, &ev) ? 1 : 0;
    free(k);
    return r;
}

int main(void)
{
    struct cf_davif f;
    char *k;

    /* Shapes. */
    const char *h = "(<opaquelocktoken:good> [\"e1\"]) (Not <DAV:no-lock>)";
    CHECK(parse(h, strlen(h), &f, &k) == CF_OK, "two untagged lists");
    CHECK_INT(f.nlists, 2, "two lists");
    CHECK_INT(f.nconds, 3, "three conditions");
    CHECK(!f.tagged && f.lists[0].tag == NULL, "untagged");
    CHECK(!f.conds[0].negate && !f.conds[0].etag && f.conds[0].len == 20 &&
              memcmp(f.conds[0].s, "opaquelocktoken:good", 20) == 0, "a state token without <>");
    CHECK(f.conds[1].etag && f.conds[1].len == 4 && memcmp(f.conds[1].s, "\"e1\"", 4) == 0, "an etag with its quotes");
    CHECK(f.conds[2].negate && f.conds[2].len == 11, "Not <DAV:no-lock>");
    free(k);
    h = "<https://h/dav/private/coll/> (<opaquelocktoken:x>) <https://h/dav/private/a> (<opaquelocktoken:y>)([W/\"w\"])";
    CHECK(parse(h, strlen(h), &f, &k) == CF_OK, "tagged lists");
    CHECK(f.tagged && f.nlists == 3, "three tagged lists");
    CHECK(f.lists[0].tag_len == 27 && f.lists[2].tag == f.lists[1].tag, "a tag covers the lists after it");
    CHECK(f.conds[2].etag && f.conds[2].len == 5, "a weak etag");
    free(k);
    CHECK(ok("\t( <a:b> )  "), "whitespace around");

    /* Evaluation. */
    CHECK_INT(eval("(<opaquelocktoken:good>)"), 1, "the token holds");
    CHECK_INT(eval("(<opaquelocktoken:bad>)"), 0, "another token does not");
    CHECK_INT(eval("(<DAV:no-lock>)"), 0, "DAV:no-lock never holds");
    CHECK_INT(eval("(Not <DAV:no-lock>)"), 1, "Not inverts");
    CHECK_INT(eval("(<opaquelocktoken:good> [\"e1\"])"), 1, "token and etag");
    CHECK_INT(eval("(<opaquelocktoken:good> [\"e2\"])"), 0, "every condition of a list must hold");
    CHECK_INT(eval("(<opaquelocktoken:goodx>) (Not <DAV:no-lock>)"), 1, "one list true is enough");
    CHECK_INT(eval("(<opaquelocktoken:good> [\"e1x\"]) (Not <DAV:no-lock> [\"e1x\"])"), 0, "no list true");
    CHECK_INT(eval("</dav/private/a> (<opaquelocktoken:bad>)"), 0, "a tagged list about the resource counts");
    CHECK_INT(eval("<https://h/dav/private/other> (<opaquelocktoken:bad>)"), 1, "a list about another resource is ignored");
    CHECK_INT(eval("<https://h/dav/private/other> (<opaquelocktoken:bad>) </dav/private/a> (<opaquelocktoken:good>)"), 1,
              "the list about the resource decides");

    /* Hostile and malformed: all CF_EINVAL. */
    static const char *const bad[] = {
        "", " ", "()", "(", ")", "(<a:b>", "<a:b>", "(<a:b>) <t:u>", "(<>)", "(<a:b)", "([\"e])", "([e])",
        "([\"e\"]", "(Not)", "(Not <a:b> Not)", "(<a b>)", "(<a\x01>)", "x(<a:b>)", "(<a:b>)x", "<t:u> (<a:b>) (",
        "(<a:b>) (<c:d>) <t:u> (<e:f>)", "<t:u><v:w> (<a:b>)", "(< a:b>)", "(<a<b>)", "(NOT <a:b>)", "([W/e])",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(!ok(bad[i]), "refused: [%s]", bad[i]);
    CHECK(parse("(<a:\0b>)", 8, &f, &k) == CF_EINVAL, "a NUL inside");
    free(k);
    CHECK(cf_davif_parse(NULL, 0, &f) == CF_EINVAL, "NULL");

    /* Limits. */
    char big[CF_DAVIF_MAX_BYTES + 16];
    size_t n = 0;
    for (unsigned i = 0; i < CF_DAVIF_MAX_LISTS; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "(<a:%u>)", i);
    CHECK(parse(big, n, &f, &k) == CF_OK && f.nlists == CF_DAVIF_MAX_LISTS, "%u lists", CF_DAVIF_MAX_LISTS);
    free(k);
    n += (size_t)snprintf(big + n, sizeof big - n, "(<a:x>)");
    CHECK(parse(big, n, &f, &k) == CF_EINVAL, "one list more: refused");
    free(k);
    n = (size_t)snprintf(big, sizeof big, "(");
    for (unsigned i = 0; i <= CF_DAVIF_MAX_CONDS; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "<a:%u>", i);
    n += (size_t)snprintf(big + n, sizeof big - n, ")");
    CHECK(parse(big, n, &f, &k) == CF_EINVAL, "%u conditions: refused", CF_DAVIF_MAX_CONDS + 1);
    free(k);
    memset(big, ' ', sizeof big);
    memcpy(big + CF_DAVIF_MAX_BYTES - 7, "(<a:b>)", 7);
    CHECK(parse(big, CF_DAVIF_MAX_BYTES, &f, &k) == CF_OK, "a header of exactly the byte limit");
    free(k);
    CHECK(parse(big, CF_DAVIF_MAX_BYTES + 1, &f, &k) == CF_EINVAL, "one byte over: refused");
    free(k);
    /* Every prefix of a valid header parses or is refused, never read past its end. */
    h = "<https://h/dav/private/a> (<opaquelocktoken:good> [W/\"e1\"]) (Not <DAV:no-lock>)";
    int refused = 0;
    for (size_t i = 0; i < strlen(h); i++) {
        if (parse(h, i, &f, &k) != CF_OK)
            refused++;
        free(k);
    }
    CHECK(refused > 0, "prefixes: %d refused, none overread", refused);
    return tap_done();
}
