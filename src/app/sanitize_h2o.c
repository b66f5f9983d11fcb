/*
 * sanitize_h2o.c: linked into sanitizer builds only (meson: b_sanitize contains "address").
 *
 * libh2o keeps freed memory-pool chunks and socket buffers on per-thread recycle lists and hands
 * them out again, so a use after free of request-pool memory is invisible to AddressSanitizer: the
 * chunk is never really freed. These definitions take the place of libh2o's own (its calls go
 * through the PLT) and make every recycle a real malloc/free, so ASan sees such bugs.
 */
#include <stdlib.h>

#include <h2o/memory.h>

#include "base.h"

void *h2o_mem_alloc_recycle(h2o_mem_recycle_t *allocator, size_t sz)
{
    (void)allocator;
    return cf_xmalloc(sz);
}

void h2o_mem_free_recycle(h2o_mem_recycle_t *allocator, void *p)
{
    (void)allocator;
    free(p);
}
