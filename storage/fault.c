/* fault.c: see fault.h. Compiled only into fault-injection builds. */
#include "fault.h"

#ifdef CF_FAULT_INJECTION
#include <stdatomic.h>
#include <string.h>

static _Atomic uint64_t countdown[CF_FAULT_KINDS]; /* 0: disarmed */
static _Atomic uint64_t fired[CF_FAULT_KINDS];

bool cf_fault(enum cf_fault_kind k)
{
    uint64_t c = atomic_load(&countdown[k]);
    while (c != 0) {
        if (atomic_compare_exchange_weak(&countdown[k], &c, c - 1)) {
            if (c == 1) {
                atomic_fetch_add(&fired[k], 1);
                return true;
            }
            return false;
        }
    }
    return false;
}

bool cf_fault_armed(enum cf_fault_kind k)
{
    return atomic_load_explicit(&countdown[k], memory_order_relaxed) != 0;
}

void cf_fault_arm(enum cf_fault_kind k, uint64_t n)
{
    atomic_store(&countdown[k], n);
}

uint64_t cf_fault_fired(enum cf_fault_kind k)
{
    return atomic_load(&fired[k]);
}

static const char *const names[CF_FAULT_KINDS] = {"alloc", "write", "fsync", "db", "scan", "cleartext"};

const char *cf_fault_kind_name(enum cf_fault_kind k)
{
    return names[k];
}

int cf_fault_kind_parse(const char *name)
{
    for (int i = 0; i < CF_FAULT_KINDS; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}
#endif
