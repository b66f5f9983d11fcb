/*
 * record.c: TLV encoding of stored records (see record.h for the format).
 */
#include "record.h"

#include <stdlib.h>
#include <string.h>

void cf_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void cf_put_be64(uint8_t *p, uint64_t v)
{
    cf_put_be32(p, (uint32_t)(v >> 32));
    cf_put_be32(p + 4, (uint32_t)v);
}

uint32_t cf_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t cf_get_be64(const uint8_t *p)
{
    return (uint64_t)cf_get_be32(p) << 32 | cf_get_be32(p + 4);
}

void cf_rec_w_init(struct cf_rec_w *w)
{
    w->cap = 256;
    w->buf = cf_xmalloc(w->cap);
    w->buf[0] = CF_REC_VERSION;
    w->len = 1;
}

void cf_rec_w_free(struct cf_rec_w *w)
{
    cf_free_secret(w->buf, w->cap);
    w->buf = NULL;
    w->len = w->cap = 0;
}

static void reserve(struct cf_rec_w *w, size_t more)
{
    if (w->len + more <= w->cap)
        return;
    size_t cap = w->cap;
    while (cap < w->len + more)
        cap *= 2;
    /* Grow by copy so that the old buffer, which may hold secrets, is wiped. */
    uint8_t *nb = cf_xmalloc(cap);
    memcpy(nb, w->buf, w->len);
    cf_free_secret(w->buf, w->cap);
    w->buf = nb;
    w->cap = cap;
}

void cf_rec_put_bytes(struct cf_rec_w *w, uint8_t tag, const void *p, size_t n)
{
    reserve(w, 5 + n);
    w->buf[w->len] = tag;
    cf_put_be32(w->buf + w->len + 1, (uint32_t)n);
    if (n > 0)
        memcpy(w->buf + w->len + 5, p, n);
    w->len += 5 + n;
}

void cf_rec_put_str(struct cf_rec_w *w, uint8_t tag, const char *s)
{
    if (s != NULL)
        cf_rec_put_bytes(w, tag, s, strlen(s));
}

void cf_rec_put_u64(struct cf_rec_w *w, uint8_t tag, uint64_t v)
{
    uint8_t b[8];
    cf_put_be64(b, v);
    cf_rec_put_bytes(w, tag, b, sizeof b);
}

void cf_rec_put_id(struct cf_rec_w *w, uint8_t tag, const struct cf_id *id)
{
    cf_rec_put_bytes(w, tag, id->b, sizeof id->b);
}

enum cf_status cf_rec_r_init(struct cf_rec_r *r, const uint8_t *p, size_t n)
{
    if (n < 1 || n > CF_REC_MAX || p[0] != CF_REC_VERSION)
        return CF_ECORRUPT;
    r->p = p;
    r->n = n;
    r->off = 1;
    return CF_OK;
}

enum cf_status cf_rec_next(struct cf_rec_r *r, uint8_t *tag, const uint8_t **val, size_t *len)
{
    if (r->off == r->n)
        return CF_ENOTFOUND;
    if (r->n - r->off < 5)
        return CF_ECORRUPT;
    uint32_t l = cf_get_be32(r->p + r->off + 1);
    if (l > r->n - r->off - 5)
        return CF_ECORRUPT;
    *tag = r->p[r->off];
    *val = r->p + r->off + 5;
    *len = l;
    r->off += 5 + (size_t)l;
    return CF_OK;
}

enum cf_status cf_rec_u64(const uint8_t *val, size_t len, uint64_t *out)
{
    if (len != 8)
        return CF_ECORRUPT;
    *out = cf_get_be64(val);
    return CF_OK;
}

enum cf_status cf_rec_u32(const uint8_t *val, size_t len, uint32_t *out)
{
    uint64_t v;
    if (cf_rec_u64(val, len, &v) != CF_OK || v > UINT32_MAX)
        return CF_ECORRUPT;
    *out = (uint32_t)v;
    return CF_OK;
}

enum cf_status cf_rec_id(const uint8_t *val, size_t len, struct cf_id *out)
{
    if (len != CF_ID_LEN)
        return CF_ECORRUPT;
    memcpy(out->b, val, CF_ID_LEN);
    return CF_OK;
}

enum cf_status cf_rec_str(const uint8_t *val, size_t len, char **out)
{
    if (memchr(val, '\0', len) != NULL)
        return CF_ECORRUPT;
    free(*out);
    *out = cf_xstrndup((const char *)val, len);
    return CF_OK;
}
