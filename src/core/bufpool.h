/*
 * bufpool.h: the pool of chunk buffers of downloads. A download decrypts each chunk into a buffer of
 * CF_CHUNK_SIZE bytes and h2o sends straight from it; fresh 1 MiB allocations are served by glibc
 * with fresh mmap pages, so every chunk decrypted into one paid 256 page faults (bench/README.md
 * "Where the time goes"). The pool keeps buffers that were used, so their pages stay mapped.
 *
 * One pool per process, a stack behind a mutex: a stream takes its buffers when it starts and gives
 * them back when it is freed (two short critical sections per download, on the loop threads), so the
 * lock is not worth splitting per loop. Bounded: at most max_free buffers wait in the pool (the rest
 * are freed as they come back); an empty pool allocates (cf_try_malloc: a failure is CF_EIO, and
 * fault builds can inject it). Under steady load (fewer buffers out than max_free) nothing is freed
 * or allocated.
 *
 * Plaintext never waits in the pool: cf_bufpool_give wipes the bytes the stream wrote before the
 * buffer goes back (docs/SECURITY.md "Data at rest" row on chunk buffers).
 *
 * Owns: the pool and its counters. May touch: nothing else (storage's cf_wipe and cf_try_malloc).
 */
#ifndef CF_BUFPOOL_H
#define CF_BUFPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "storage.h"

enum { CF_BUFPOOL_SIZE = CF_CHUNK_SIZE };

/* cf_bufpool_configure(max_free): keep at most max_free idle buffers (0: the default, 32). Call
 * before the loops start; later calls apply to buffers given back afterwards. */
void cf_bufpool_configure(unsigned max_free);
/* cf_bufpool_take(): a buffer of CF_BUFPOOL_SIZE bytes (contents undefined), or NULL if the pool was
 * empty and an allocation failed. Any thread. */
uint8_t *cf_bufpool_take(void) CF_WUR;
/* cf_bufpool_give(p, used): wipes p[0..used) (the bytes written since it was taken; used ≤
 * CF_BUFPOOL_SIZE) and returns p to the pool, or frees it when the pool is full. p NULL: nothing.
 * Any thread. */
void cf_bufpool_give(uint8_t *p, size_t used);
/* cf_bufpool_drain(): frees every idle buffer (at shutdown; buffers still out come back later and
 * are kept or freed as usual). */
void cf_bufpool_drain(void);

struct cf_bufpool_stats {
    uint64_t idle;        /* buffers waiting in the pool */
    uint64_t out;         /* buffers taken and not given back */
    uint64_t max_idle;    /* the bound on idle */
    uint64_t takes;       /* cf_bufpool_take calls that returned a buffer, since start */
    uint64_t allocated;   /* of those, served by a new allocation (the pool was empty) */
    uint64_t freed;       /* buffers freed because the pool was full (or drained) */
};
void cf_bufpool_stats(struct cf_bufpool_stats *out);

#endif
