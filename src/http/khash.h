/*
 * khash.h: just enough of the klib hash table's declarations for <h2o/http2_internal.h> to compile.
 *
 * Debian's libh2o-dev installs http2_internal.h, which includes "khash.h", but not khash.h itself.
 * conn.c needs that header to read HTTP/2 connection and stream state (the connection limits).
 * This file declares the table's memory layout as libh2o 2.2.5 was built with it (four 32-bit
 * counters, then the flag, key and value arrays; two flag bits per bucket: empty and deleted) and
 * iteration over it. Lookup (kh_get) is a plain scan of the buckets: correct for any table, and only
 * the header's unused inline helper refers to it. Nothing here inserts or removes: libh2o alone
 * changes its tables, on the same thread.
 */
#ifndef CF_KHASH_SHIM_H
#define CF_KHASH_SHIM_H

#include <stdint.h>

typedef uint32_t khint32_t;
typedef uint64_t khint64_t;
typedef khint32_t khint_t;
typedef khint_t khiter_t;

#define cf_kh_flag_(h, i) (((h)->flags[(i) >> 4] >> (((i)&0xfU) << 1)) & 3U)

#define KHASH_MAP_INIT_INT64(name, khval_t)                                                                            \
    typedef struct kh_##name##_s {                                                                                     \
        khint_t n_buckets, size, n_occupied, upper_bound;                                                              \
        khint32_t *flags;                                                                                              \
        khint64_t *keys;                                                                                               \
        khval_t *vals;                                                                                                 \
    } kh_##name##_t;                                                                                                   \
    static inline __attribute__((unused)) khint_t kh_get_##name(const kh_##name##_t *h, khint64_t key)                 \
    {                                                                                                                  \
        for (khint_t i = 0; i < h->n_buckets; i++)                                                                     \
            if (cf_kh_flag_(h, i) == 0 && h->keys[i] == key)                                                           \
                return i;                                                                                              \
        return h->n_buckets;                                                                                           \
    }

#define khash_t(name) kh_##name##_t
#define kh_get(name, h, k) kh_get_##name(h, k)
#define kh_begin(h) ((khint_t)0)
#define kh_end(h) ((h)->n_buckets)
#define kh_exist(h, i) (cf_kh_flag_(h, i) == 0)
#define kh_key(h, i) ((h)->keys[i])
#define kh_val(h, i) ((h)->vals[i])
#define kh_size(h) ((h)->size)

#endif
