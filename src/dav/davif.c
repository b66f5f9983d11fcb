/*
 * davif.c: the WebDAV If header (davif.h has the grammar and the contract). A single left-to-right
 * pass over the bytes with no allocation and no recursion; every loop advances by at least one byte,
 * so the work is linear in the (bounded) header.
 */
#include "davif.h"

#include <string.h>

struct cursor {
    const char *p, *end;
};

static void skip_ws(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

/* Bytes allowed inside <...> and [...]: visible ASCII and UTF-8 (no controls, no space). */
static bool ok_byte(unsigned char ch)
{
    return ch > 0x20 && ch != 0x7f;
}

/* "<" 1*(byte but ">") ">": the content into s/len. */
static bool coded(struct cursor *c, const char **s, size_t *len)
{
    if (c->p >= c->end || *c->p != '<')
        return false;
    const char *start = ++c->p;
    while (c->p < c->end && *c->p != '>') {
        if (!ok_byte((unsigned char)*c->p) || *c->p == '<')
            return false;
        c->p++;
    }
    if (c->p >= c->end || c->p == start)
        return false;
    *s = start;
    *len = (size_t)(c->p - start);
    c->p++;
    return true;
}

/* "[" entity-tag "]" with entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE (RFC 9110 §8.8.3). */
static bool etag(struct cursor *c, const char **s, size_t *len)
{
    if (c->p >= c->end || *c->p != '[')
        return false;
    const char *start = ++c->p;
    if (c->end - c->p >= 2 && c->p[0] == 'W' && c->p[1] == '/')
        c->p += 2;
    if (c->p >= c->end || *c->p != '"')
        return false;
    c->p++;
    while (c->p < c->end && *c->p != '"') {
        if (!ok_byte((unsigned char)*c->p))
            return false;
        c->p++;
    }
    if (c->p >= c->end)
        return false;
    c->p++; /* the closing quote */
    if (c->p >= c->end || *c->p != ']')
        return false;
    *s = start;
    *len = (size_t)(c->p - start);
    c->p++;
    return true;
}

/* "(" 1*Condition ")" appended to out. */
static bool list(struct cursor *c, struct cf_davif *out, const char *tag, size_t tag_len)
{
    if (c->p >= c->end || *c->p != '(' || out->nlists == CF_DAVIF_MAX_LISTS)
        return false;
    c->p++;
    struct cf_davif_list *l = &out->lists[out->nlists];
    l->tag = tag;
    l->tag_len = tag_len;
    l->first = out->nconds;
    l->n = 0;
    for (;;) {
        skip_ws(c);
        if (c->p < c->end && *c->p == ')') {
            c->p++;
            break;
        }
        if (out->nconds == CF_DAVIF_MAX_CONDS)
            return false;
        struct cf_davif_cond *cd = &out->conds[out->nconds];
        memset(cd, 0, sizeof *cd);
        if (c->end - c->p >= 3 && memcmp(c->p, "Not", 3) == 0) {
            cd->negate = true;
            c->p += 3;
            skip_ws(c);
        }
        if (c->p < c->end && *c->p == '[') {
            cd->etag = true;
            if (!etag(c, &cd->s, &cd->len))
                return false;
        } else if (!coded(c, &cd->s, &cd->len)) {
            return false;
        }
        out->nconds++;
        l->n++;
    }
    if (l->n == 0)
        return false;
    out->nlists++;
    return true;
}

enum cf_status cf_davif_parse(const char *h, size_t n, struct cf_davif *out)
{
    memset(out, 0, sizeof *out);
    if (h == NULL || n == 0 || n > CF_DAVIF_MAX_BYTES)
        return CF_EINVAL;
    struct cursor c = {h, h + n};
    const char *tag = NULL;
    size_t tag_len = 0;
    bool any = false;
    for (;;) {
        skip_ws(&c);
        if (c.p == c.end)
            break;
        if (*c.p == '<') {
            /* A resource tag: only in a header of tagged lists, and followed by a list. */
            if (any && !out->tagged)
                return CF_EINVAL;
            if (!coded(&c, &tag, &tag_len))
                return CF_EINVAL;
            out->tagged = true;
            skip_ws(&c);
            if (c.p == c.end || *c.p != '(')
                return CF_EINVAL;
            continue;
        }
        if (*c.p != '(' || (out->tagged && tag == NULL))
            return CF_EINVAL;
        if (!list(&c, out, tag, tag_len))
            return CF_EINVAL;
        any = true;
    }
    return any ? CF_OK : CF_EINVAL;
}

bool cf_davif_true(const struct cf_davif *h, const struct cf_davif_eval *ev)
{
    bool applied = false;
    for (size_t i = 0; i < h->nlists; i++) {
        const struct cf_davif_list *l = &h->lists[i];
        if (l->tag != NULL && !ev->applies(ev->ctx, l->tag, l->tag_len))
            continue;
        applied = true;
        bool all = true;
        for (size_t k = 0; k < l->n && all; k++) {
            const struct cf_davif_cond *cd = &h->conds[l->first + k];
            all = ev->holds(ev->ctx, cd) != cd->negate;
        }
        if (all)
            return true;
    }
    return !applied;
}
