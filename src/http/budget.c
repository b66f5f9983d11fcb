/*
 * budget.c: the request-body budget (budget.h): one atomic counter of bytes held, compared with the
 * limit the caller passes (the configuration is read by the caller, not kept here).
 */
#include "budget.h"

#include <malloc.h>
#include <stdatomic.h>

static _Atomic uint64_t held; /* bytes of bodies admitted and not yet released */

bool cf_body_budget_take(uint64_t limit, size_t n)
{
    uint64_t cur = atomic_load(&held);
    for (;;) {
        if (cur != 0 && (cur + n > limit || cur + n < cur))
            return false;
        if (atomic_compare_exchange_weak(&held, &cur, cur + n))
            return true;
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

void cf_body_memory_setup(void)
{
    mallopt(M_MMAP_THRESHOLD, (int)CF_BODY_MMAP_MIN); /* a fixed threshold: glibc stops moving it */
}
