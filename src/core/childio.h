/*
 * childio.h: what the server's side of a confined child family (the scanners, src/scan/scan.c; the
 * renderers, src/render/render.c) needs to talk to its children: a monotonic clock in milliseconds,
 * a receive of one message bounded by a deadline, and the check of a fixed-size string field a
 * child sent. Pure helpers; no state. Any thread.
 */
#ifndef CF_CHILDIO_H
#define CF_CHILDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* cf_mono_ms(): CLOCK_MONOTONIC in milliseconds (deadlines). */
uint64_t cf_mono_ms(void);
/* cf_recv_until(fd, buf, cap, deadline): one message received before deadline (cf_mono_ms): its
 * length, 0 when the child is gone (EOF, reset), -1 on timeout or another error. */
ssize_t cf_recv_until(int fd, void *buf, size_t cap, uint64_t deadline);
/* cf_field_printable(s, cap): s is NUL-terminated within its cap bytes and printable ASCII. */
bool cf_field_printable(const char *s, size_t cap);

#endif
