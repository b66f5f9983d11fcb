/*
 * sniff.h: the stored content type comes from the content (libmagic), never from the client's
 * Content-Type or the file name. One libmagic cookie per thread (a shared cookie is not
 * thread-safe: notes/clamav-libmagic.md §4), fed a bounded prefix.
 */
#ifndef CF_SNIFF_H
#define CF_SNIFF_H

#include <stddef.h>

#define CF_SNIFF_PREFIX (64u * 1024) /* bytes of a file that libmagic sees */
#define CF_MIME_MAX 128

/* cf_sniff(buf, n, out): the MIME type of a file that starts with buf[0..n) (n ≤ CF_SNIFF_PREFIX
 * is enough) into out. Falls back to application/octet-stream. Worker threads. */
void cf_sniff(const void *buf, size_t n, char out[CF_MIME_MAX]);
/* cf_sniff_thread_end(): releases this thread's cookie. */
void cf_sniff_thread_end(void);

#endif
