/*
 * sniff.c: content types with libmagic (see sniff.h).
 */
#include "sniff.h"

#include <magic.h>
#include <pthread.h>
#include <string.h>

#include "log.h"

static _Thread_local magic_t cookie;
/* magic_open/magic_load are not safe to run concurrently (notes §4): serialise cookie creation. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

static magic_t get_cookie(void)
{
    if (cookie != NULL)
        return cookie;
    pthread_mutex_lock(&open_lock);
    magic_t m = magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS);
    if (m != NULL && magic_load(m, NULL) != 0) {
        cf_log_error("libmagic: %s", magic_error(m));
        magic_close(m);
        m = NULL;
    }
    pthread_mutex_unlock(&open_lock);
    cookie = m;
    return m;
}

void cf_sniff(const void *buf, size_t n, char out[CF_MIME_MAX])
{
    static const char fallback[] = "application/octet-stream";
    magic_t m = get_cookie();
    const char *t = m != NULL ? magic_buffer(m, buf, n > CF_SNIFF_PREFIX ? CF_SNIFF_PREFIX : n) : NULL;
    if (t == NULL || strlen(t) >= CF_MIME_MAX || strchr(t, '/') == NULL)
        t = fallback;
    memcpy(out, t, strlen(t) + 1);
}

void cf_sniff_thread_end(void)
{
    if (cookie != NULL) {
        magic_close(cookie);
        cookie = NULL;
    }
}
