/*
 * bufpool.c: see bufpool.h. A LIFO stack of idle buffers (the most recently used buffer is the most
 * likely to be in cache) and its counters, all under one mutex.
 *
 * Owns: the pool. May touch: nothing else.
 */
#include "bufpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define DEFAULT_MAX_IDLE 32

struct idle_buf {
    struct idle_buf *next; /* kept in the buffer's own first bytes while it is idle */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct idle_buf *top;
static struct cf_bufpool_stats stats = {.max_idle = DEFAULT_MAX_IDLE};

void cf_bufpool_configure(unsigned max_free)
{
    pthread_mutex_lock(&lock);
    stats.max_idle = max_free != 0 ? max_free : DEFAULT_MAX_IDLE;
    pthread_mutex_unlock(&lock);
}

uint8_t *cf_bufpool_take(void)
{
    pthread_mutex_lock(&lock);
    struct idle_buf *b = top;
    if (b != NULL) {
        top = b->next;
        stats.idle--;
        stats.out++;
        stats.takes++;
    }
    pthread_mutex_unlock(&lock);
    if (b != NULL)
        return (uint8_t *)b;
    uint8_t *p = cf_try_malloc(CF_BUFPOOL_SIZE);
    if (p == NULL)
        return NULL;
    pthread_mutex_lock(&lock);
    stats.out++;
    stats.takes++;
    stats.allocated++;
    pthread_mutex_unlock(&lock);
    return p;
}

void cf_bufpool_give(uint8_t *p, size_t used)
{
    if (p == NULL)
        return;
    /* Plaintext does not wait in the pool (nor in freed memory). */
    cf_wipe(p, used < CF_BUFPOOL_SIZE ? used : CF_BUFPOOL_SIZE);
    pthread_mutex_lock(&lock);
    stats.out--;
    bool keep = stats.idle < stats.max_idle;
    if (keep) {
        struct idle_buf *b = (struct idle_buf *)(void *)p;
        b->next = top;
        top = b;
        stats.idle++;
    } else {
        stats.freed++;
    }
    pthread_mutex_unlock(&lock);
    if (!keep)
        free(p);
}

void cf_bufpool_drain(void)
{
    pthread_mutex_lock(&lock);
    struct idle_buf *b = top;
    top = NULL;
    stats.freed += stats.idle;
    stats.idle = 0;
    pthread_mutex_unlock(&lock);
    while (b != NULL) {
        struct idle_buf *next = b->next;
        free(b);
        b = next;
    }
}

void cf_bufpool_stats(struct cf_bufpool_stats *out)
{
    pthread_mutex_lock(&lock);
    *out = stats;
    pthread_mutex_unlock(&lock);
}
