/*
 * budget.h: the global budget for request bodies held after receipt (limits.max_buffered_body_bytes).
 *
 * libh2o 2.2.5 buffers a whole request body before it calls the handler, and keeps that buffer until
 * the request is disposed; an upload handler then holds it (and its own copy) until the bytes are
 * sealed and written. Upload handlers take the body's size from this budget when they receive it
 * and give it back once the body is sealed (or refused); past the budget a new body is refused with
 * a retryable answer (503 + Retry-After) instead of memory growing with the number of clients. One
 * body alone is always admitted (else a body larger than the budget could never be stored).
 * Bodies h2o is still receiving (before any handler runs) are counted here too, by the intake gate
 * (conn.c): while the bodies in memory (received + held) are over the limit, it stops reading from
 * the connections that are sending them, so TCP slows their clients down, and lets one connection
 * at a time finish its body once nothing is held (docs/DESIGN.md "Memory").
 * Any thread; mutex-free counters.
 */
#ifndef CF_BUDGET_H
#define CF_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CF_BODY_RETRY_AFTER_S 1 /* Retry-After of a refused body: a PATCH is sealed in well under that */

/* cf_body_budget_take(limit, n): counts n more bytes held if that stays within limit bytes, or if
 * nothing is held at all; false (nothing counted) otherwise. */
bool cf_body_budget_take(uint64_t limit, size_t n);
/* cf_body_budget_release(n): gives back n bytes taken by cf_body_budget_take. */
void cf_body_budget_release(size_t n);
/* cf_body_budget_held(): bytes held now (metrics, tests). */
uint64_t cf_body_budget_held(void);

/* The intake gate's side (conn.c, loop threads). cf_body_receiving_add(delta): bytes of bodies
 * being received changed by delta. cf_body_over(limit): whether the bodies in memory, received and
 * held, are over limit. cf_body_held_now(): same as cf_body_budget_held. cf_body_paused(delta): a
 * connection was stopped (+1, counted as one more pause) or read again (-1). */
void cf_body_receiving_add(int64_t delta);
bool cf_body_over(uint64_t limit);
void cf_body_paused(int delta);

/* What /metrics shows of bodies in memory. */
struct cf_body_stats {
    uint64_t held;           /* bytes held by upload handlers (the budget) */
    uint64_t receiving;      /* bytes of bodies still arriving */
    uint64_t receiving_peak; /* the highest receiving since start */
    uint64_t pauses;         /* times a connection was stopped by the gate */
    uint64_t paused;         /* connections stopped now */
};
void cf_body_stats(struct cf_body_stats *s);

/* cf_body_memory_setup(): glibc's allocator for large request bodies, once at start-up before any
 * thread: allocations from CF_BODY_MMAP_MIN on (h2o's body buffers) always get their own mapping,
 * returned to the system when freed. By default glibc raises that threshold to the size of the
 * last such block freed (up to 32 MiB), after which 16 MiB bodies come from the heaps and arenas,
 * whose freed memory stays resident: measured, 8 concurrent uploads in 16 MiB pieces peaked about
 * 80 MiB higher (docs/DESIGN.md). Chunk buffers (1 MiB) stay below it, on the heap. */
#define CF_BODY_MMAP_MIN (4u << 20)
void cf_body_memory_setup(void);

/* cf_body_memory_trim(): if bodies came or were taken since the last call, gives the heap memory
 * freed since back to the system (malloc_trim: what h2o's growing socket and body buffers below
 * CF_BODY_MMAP_MIN left free in the threads' arenas stays resident otherwise); true if it did.
 * The main thread calls it every second; an idle server never pays for it. Any thread. */
bool cf_body_memory_trim(void);

#endif
