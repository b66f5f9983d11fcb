/*
 * fuzz_scan_proto.c: the scanner protocol (src/scan_proto.h), whose peer runs libclamav and
 * libmagic on hostile files and so is not trusted: the server's check of every message a scanner
 * sends during a scan (cf_scan_reply_check, src/scan.c) and the scanner's check of the server's DATA
 * answers (cf_scan_data_ok, src/scan/scan_proto.c). The input is one message, as recv() would return it.
 *
 * Invariants, re-checked here field by field: a HELLO has the exact size, the magic and valid info;
 * a READ belongs to this scan and asks for 1..CF_SCAN_READ_MAX bytes inside the file; a VERDICT
 * belongs to this scan, has a known result, NUL-terminated printable strings, a MIME type with '/',
 * and a signature unless clean; everything else is BAD with a reason. A DATA accepted carries
 * exactly the bytes asked for.
 */
#include <string.h>

#include "fuzz.h"
#include "scan.h"

static bool printable_z(const char *s, size_t cap)
{
    const char *end = memchr(s, '\0', cap);
    if (end == NULL)
        return false;
    for (const char *p = s; p < end; p++)
        if (*p < 0x20 || *p > 0x7e)
            return false;
    return true;
}

static bool info_valid(const struct cf_scan_msg_info *i)
{
    return printable_z(i->engine, sizeof i->engine) && printable_z(i->database, sizeof i->database) &&
           i->development <= 1;
}

static void check_reply(const uint8_t *m, size_t n, uint64_t id, uint64_t size)
{
    const char *why = (const char *)1;
    enum cf_scan_reply r = cf_scan_reply_check(m, n, id, size, &why);
    struct cf_scan_hdr h = {0};
    if (n >= sizeof h)
        memcpy(&h, m, sizeof h);
    switch (r) {
    case CF_SCAN_REPLY_HELLO: {
        struct cf_scan_msg_hello hello;
        FUZZ_CHECK(n == sizeof hello);
        memcpy(&hello, m, sizeof hello);
        FUZZ_CHECK(h.magic == CF_SCAN_MAGIC && h.type == CF_SCAN_HELLO && info_valid(&hello.info));
        break;
    }
    case CF_SCAN_REPLY_READ: {
        struct cf_scan_msg_read rd;
        FUZZ_CHECK(n == sizeof rd);
        memcpy(&rd, m, sizeof rd);
        FUZZ_CHECK(h.magic == CF_SCAN_MAGIC && h.type == CF_SCAN_READ && h.id == id);
        FUZZ_CHECK(rd.len >= 1 && rd.len <= CF_SCAN_READ_MAX && rd.offset <= size && rd.len <= size - rd.offset);
        break;
    }
    case CF_SCAN_REPLY_VERDICT: {
        struct cf_scan_msg_verdict v;
        FUZZ_CHECK(n == sizeof v);
        memcpy(&v, m, sizeof v);
        FUZZ_CHECK(h.magic == CF_SCAN_MAGIC && h.type == CF_SCAN_VERDICT && h.id == id);
        FUZZ_CHECK(v.result <= CF_SCAN_ERROR && printable_z(v.signature, sizeof v.signature) &&
                   printable_z(v.mime, sizeof v.mime) && strchr(v.mime, '/') != NULL && info_valid(&v.info));
        FUZZ_CHECK(v.result == CF_SCAN_CLEAN || v.signature[0] != '\0');
        break;
    }
    case CF_SCAN_REPLY_BAD:
        FUZZ_CHECK(why != NULL && why != (const char *)1 && why[0] != '\0');
        break;
    default:
        FUZZ_CHECK(!"unknown classification");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > sizeof(struct cf_scan_msg_data) + CF_SCAN_READ_MAX)
        return 0;
    struct cf_scan_hdr h = {0};
    if (size >= sizeof h)
        memcpy(&h, data, sizeof h);
    /* The scan this message claims, another scan, and files of several sizes. */
    static const uint64_t sizes[] = {0, 1, 4096, (uint64_t)1 << 31, UINT64_MAX};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        check_reply(data, size, h.id, sizes[k]);
        check_reply(data, size, h.id + 1, sizes[k]);
    }
    /* The scanner's side: a DATA answer to the READ it claims to answer. */
    struct cf_scan_msg_data d = {0};
    if (size >= sizeof d)
        memcpy(&d, data, sizeof d);
    if (cf_scan_data_ok(data, size, d.h.id, d.offset, d.len)) {
        FUZZ_CHECK(size >= sizeof d && d.h.magic == CF_SCAN_MAGIC && d.h.type == CF_SCAN_DATA);
        FUZZ_CHECK(d.len <= CF_SCAN_READ_MAX && size == sizeof d + d.len);
    }
    FUZZ_CHECK(!cf_scan_data_ok(data, size, d.h.id + 1, d.offset, d.len));
    FUZZ_CHECK(!cf_scan_data_ok(data, size, d.h.id, d.offset, (size_t)d.len + 1));
    return 0;
}
