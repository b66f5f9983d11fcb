/*
 * scan_proto.c: the checks of scan_proto.h's messages that both sides need, compiled into the server
 * (cfscan) and into the scanner program (coffer-scan): cf_scan_data_ok.
 */
#include <string.h>

#include "scan_proto.h"

bool cf_scan_data_ok(const void *m, size_t n, uint64_t id, uint64_t offset, size_t len)
{
    struct cf_scan_msg_data d;
    if (n < sizeof d)
        return false;
    memcpy(&d, m, sizeof d);
    return d.h.magic == CF_SCAN_MAGIC && d.h.type == CF_SCAN_DATA && d.h.id == id && d.offset == offset &&
           d.len == len && len <= CF_SCAN_READ_MAX && n == sizeof d + d.len;
}
