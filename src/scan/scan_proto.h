/*
 * scan_proto.h: the messages between the server and its scanner processes, over one SOCK_SEQPACKET
 * socket per scanner (each send is one message; message boundaries are kept).
 *
 *   scanner → server  HELLO     once the engine is built and the canary passed (also after reloads)
 *   server → scanner  SCAN      scan a file of `size` bytes
 *   scanner → server  READ      give me `len` bytes at `offset` (libclamav and libmagic pull data)
 *   server → scanner  DATA      the header followed by exactly `len` bytes (or `len` 0: no data; the
 *                               scan is abandoned, the scanner fails it and answers a VERDICT)
 *   scanner → server  VERDICT   the result
 *
 * Every message starts with the same header; every field is checked on receipt (magic, type, id,
 * lengths, ranges, NUL-terminated printable strings). The server trusts nothing else the scanner
 * says: a scanner is where hostile parsers run.
 */
#ifndef CF_SCAN_PROTO_H
#define CF_SCAN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CF_SCAN_MAGIC 0x43465343u /* "CFSC" */
#define CF_SCAN_READ_MAX (128u * 1024) /* bytes per READ/DATA */
#define CF_SCAN_FD 3                   /* the socket's descriptor in the scanner process */

enum cf_scan_type {
    CF_SCAN_HELLO = 1,
    CF_SCAN_SCAN = 2,
    CF_SCAN_READ = 3,
    CF_SCAN_DATA = 4,
    CF_SCAN_VERDICT = 5,
};

enum cf_scan_result {
    CF_SCAN_CLEAN = 0,
    CF_SCAN_INFECTED = 1,    /* a signature matched: signature names it */
    CF_SCAN_UNSCANNABLE = 2, /* could not be scanned completely (limits, encryption, format): signature says why */
    CF_SCAN_ERROR = 3,       /* the scan failed: never treated as clean */
};

struct cf_scan_hdr {
    uint32_t magic;
    uint32_t type;   /* enum cf_scan_type */
    uint64_t id;     /* the scan this message belongs to (0 for HELLO) */
};

struct cf_scan_msg_scan {
    struct cf_scan_hdr h;
    uint64_t size;   /* bytes in the file */
};

struct cf_scan_msg_read {
    struct cf_scan_hdr h;
    uint64_t offset;
    uint32_t len;    /* 1..CF_SCAN_READ_MAX, within the file */
    uint32_t pad;
};

struct cf_scan_msg_data {
    struct cf_scan_hdr h;
    uint64_t offset;
    uint32_t len;    /* bytes that follow the header in this message */
    uint32_t pad;
};

struct cf_scan_msg_info {
    char engine[32];    /* "ClamAV 1.4.6" */
    char database[64];  /* a digest of the signature files (names, sizes, times) */
    uint64_t signatures;
    uint32_t development; /* 1: no signatures loaded (development mode) */
    uint32_t pad;
};

struct cf_scan_msg_hello {
    struct cf_scan_hdr h;
    struct cf_scan_msg_info info;
};

struct cf_scan_msg_verdict {
    struct cf_scan_hdr h;
    uint32_t result;    /* enum cf_scan_result */
    uint32_t pad;
    char signature[128];
    char mime[128];
    struct cf_scan_msg_info info;
};

/* cf_scan_data_ok(m, n, id, offset, len): the scanner's check (scanner.c) of the server's DATA answer
 * to its READ of len bytes at offset in scan id: header, offset and length match, and exactly len
 * bytes follow the header (scan_proto.c, linked into both programs). */
bool cf_scan_data_ok(const void *m, size_t n, uint64_t id, uint64_t offset, size_t len);

#endif
