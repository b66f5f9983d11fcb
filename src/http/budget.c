/*
 * budget.c: the request-body budget (budget.h): one atomic counter of bytes held, compared with the
 * limit the caller passes (the configuration is read by the caller, not kept here).
 */
#include "budget.h"

#include <malloc.h>
#include <stdatomic.h>

static _Atomic uint64_t held; /* bytes of bodies admitted and not yet released */
static _Atomic uint64_t receiving, receiving_peak; /* bytes of bodies still arriving (the intake gate) */
static _Atomic uint64_t pauses;
static _Atomic int64_t paused;
static _Atomic bool active; /* a body was taken or began arriving since the last trim */

bool cf_body_budget_take(uint64_t limit, size_t n)
{
    uint64_t cur = atomic_load(&held);
    for (;;) {
        if (cur != 0 && (cur + n > limit || cur + n < cur))
            return false;
        if (atomic_compare_exchange_weak(&held, &cur, cur + n)) {
            atomic_store(&active, true);
            return true;
        }
    }
}

void cf_body_budget_release(size_t n)
{
    atomic_fetch_sub(&held, (uint64_t)n);
}

uint64_t cf_body_budget_held(void)
{
    return atomic_load(&held);
}

void cf_body_receiving_add(int64_t delta)
{
    uint64_t now = atomic_fetch_add(&receiving, (uint64_t)delta) + (uint64_t)delta;
    if (delta > 0)
        atomic_store(&active, true);
    uint64_t peak = atomic_load(&receiving_peak);
    while (delta > 0 && now > peak && !atomic_compare_exchange_weak(&receiving_peak, &peak, now))
        ;
}

bool cf_body_over(uint64_t limit)
{
    return atomic_load(&receiving) + atomic_load(&held) > limit;
}

void cf_body_paused(int delta)
{
    if (delta > 0)
        atomic_fetch_add(&pauses, 1);
    atomic_fetch_add(&paused, delta);
}

void cf_body_stats(struct cf_body_stats *s)
{
    s->held = atomic_load(&held);
    s->receiving = atomic_load(&receiving);
    s->receiving_peak = atomic_load(&receiving_peak);
    s->pauses = atomic_load(&pauses);
    int64_t p = atomic_load(&paused);
    s->paused = p > 0 ? (uint64_t)p : 0;
}

bool cf_body_memory_trim(void)
{
    if (!atomic_exchange(&active, false))
        return false;
    malloc_trim(0);
    return true;
}

void cf_body_memory_setup(void)
{
    mallopt(M_MMAP_THRESHOLD, (int)CF_BODY_MMAP_MIN); /* a fixed threshold: glibc stops moving it */
}
