/*
 * fuzz_davif.c: the WebDAV If header parser and evaluator (src/dav/davif.h).
 *
 * Invariants: a parse either refuses (CF_EINVAL, for every input over CF_DAVIF_MAX_BYTES too) or
 * gives at least one list, each with at least one condition, within the limits; every condition
 * and tag lies inside the input and has no control character, space or the delimiter that ends it;
 * tagged and untagged lists never mix; evaluation with any answers terminates, and with every
 * condition holding, a header without Not is true.
 */
#include <string.h>

#include "dav/davif.h"
#include "fuzz.h"

static bool inside(const uint8_t *data, size_t size, const char *p, size_t n)
{
    return (const uint8_t *)p >= data && n <= size && (const uint8_t *)p + n <= data + size;
}

static bool yes(void *ctx, const char *tag, size_t n)
{
    (void)ctx, (void)tag, (void)n;
    return true;
}

static bool holds_all(void *ctx, const struct cf_davif_cond *c)
{
    (void)ctx, (void)c;
    return true;
}

static bool parity(void *ctx, const struct cf_davif_cond *c)
{
    (void)ctx;
    return (c->len & 1) != 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cf_davif h;
    enum cf_status st = cf_davif_parse((const char *)data, size, &h);
    if (st != CF_OK) {
        FUZZ_CHECK(st == CF_EINVAL);
        return 0;
    }
    FUZZ_CHECK(size <= CF_DAVIF_MAX_BYTES);
    FUZZ_CHECK(h.nlists >= 1 && h.nlists <= CF_DAVIF_MAX_LISTS && h.nconds <= CF_DAVIF_MAX_CONDS);
    bool any_not = false;
    size_t next = 0;
    for (size_t i = 0; i < h.nlists; i++) {
        const struct cf_davif_list *l = &h.lists[i];
        FUZZ_CHECK(l->n >= 1 && l->first == next && l->first + l->n <= h.nconds);
        next += l->n;
        FUZZ_CHECK((l->tag != NULL) == h.tagged);
        if (l->tag != NULL)
            FUZZ_CHECK(l->tag_len >= 1 && inside(data, size, l->tag, l->tag_len) && memchr(l->tag, '>', l->tag_len) == NULL);
    }
    FUZZ_CHECK(next == h.nconds);
    for (size_t i = 0; i < h.nconds; i++) {
        const struct cf_davif_cond *c = &h.conds[i];
        FUZZ_CHECK(c->len >= 1 && inside(data, size, c->s, c->len));
        for (size_t k = 0; k < c->len; k++)
            FUZZ_CHECK((unsigned char)c->s[k] > 0x20 && c->s[k] != 0x7f);
        if (!c->etag)
            FUZZ_CHECK(memchr(c->s, '>', c->len) == NULL && memchr(c->s, '<', c->len) == NULL);
        any_not |= c->negate;
    }
    struct cf_davif_eval all = {yes, holds_all, NULL}, some = {yes, parity, NULL};
    bool t = cf_davif_true(&h, &all);
    if (!any_not)
        FUZZ_CHECK(t);
    (void)cf_davif_true(&h, &some);
    return 0;
}
