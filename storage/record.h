/*
 * record.h: the plaintext encoding of every stored record, before sealing.
 *
 * Format (all integers big-endian):
 *   record  = version:u8 (= CF_REC_VERSION) field*
 *   field   = tag:u8 length:u32 value[length]
 * A record is a flat list of fields. Readers skip tags they do not know (so newer fields can be
 * added without a migration), reject truncated fields, and the record types in storage decide which
 * tags are mandatory. Integers are fields of exactly 8 bytes, ids exactly 16, strings any length
 * without NUL. Each record is at most CF_REC_MAX bytes.
 *
 * Thread-safety: the writer and reader are plain values owned by one thread.
 */
#ifndef CF_RECORD_H
#define CF_RECORD_H

#include "base.h"

#define CF_REC_VERSION 1
#define CF_REC_MAX (1u << 20)

struct cf_rec_w {
    uint8_t *buf; /* malloc'ed, wiped on free */
    size_t len;   /* bytes used */
    size_t cap;   /* bytes allocated */
};

void cf_rec_w_init(struct cf_rec_w *w);
void cf_rec_w_free(struct cf_rec_w *w);
void cf_rec_put_bytes(struct cf_rec_w *w, uint8_t tag, const void *p, size_t n);
void cf_rec_put_str(struct cf_rec_w *w, uint8_t tag, const char *s); /* NULL writes nothing */
void cf_rec_put_u64(struct cf_rec_w *w, uint8_t tag, uint64_t v);
void cf_rec_put_id(struct cf_rec_w *w, uint8_t tag, const struct cf_id *id);

struct cf_rec_r {
    const uint8_t *p; /* the record, borrowed */
    size_t n;         /* its length */
    size_t off;       /* next field */
};

/* cf_rec_r_init(r, p, n): checks the version byte; CF_ECORRUPT if absent or unknown. */
enum cf_status cf_rec_r_init(struct cf_rec_r *r, const uint8_t *p, size_t n) CF_WUR;
/* cf_rec_next(r, tag, val, len): the next field. CF_ENOTFOUND at the end, CF_ECORRUPT on a
 * truncated field. val points into the record. */
enum cf_status cf_rec_next(struct cf_rec_r *r, uint8_t *tag, const uint8_t **val, size_t *len) CF_WUR;

/* Field decoders: CF_ECORRUPT when the length is wrong or a string contains NUL. */
enum cf_status cf_rec_u64(const uint8_t *val, size_t len, uint64_t *out) CF_WUR;
/* cf_rec_u32(val, len, out): a u64 field whose value must fit 32 bits (CF_ECORRUPT otherwise). */
enum cf_status cf_rec_u32(const uint8_t *val, size_t len, uint32_t *out) CF_WUR;
enum cf_status cf_rec_id(const uint8_t *val, size_t len, struct cf_id *out) CF_WUR;
/* cf_rec_str(val, len, out): a malloc'ed NUL-terminated copy; replaces (frees) *out. */
enum cf_status cf_rec_str(const uint8_t *val, size_t len, char **out) CF_WUR;

/* Big-endian helpers for building keys. */
void cf_put_be32(uint8_t *p, uint32_t v);
void cf_put_be64(uint8_t *p, uint64_t v);
uint32_t cf_get_be32(const uint8_t *p);
uint64_t cf_get_be64(const uint8_t *p);

#endif
