/*
 * zipw.c: see zipw.h. Little-endian fields, one function per header; every length function is the
 * exact size its writer produces, so that cf_zip_layout can give the archive's length before any
 * content is read.
 *
 * Owns: nothing (pure). May touch: zlib's crc32.
 */
#include "zipw.h"

#include <string.h>
#include <time.h>
#include <zlib.h>

enum {
    SIG_LOCAL = 0x04034b50,
    SIG_DESC = 0x08074b50,
    SIG_CENTRAL = 0x02014b50,
    SIG_END64 = 0x06064b50,
    SIG_LOC64 = 0x07064b50,
    SIG_END = 0x06054b50,
    FLAG_DESC = 1u << 3,
    FLAG_UTF8 = 1u << 11,
    VER_20 = 20,               /* 2.0: folders, descriptors */
    VER_45 = 45,               /* 4.5: ZIP64 */
    MADE_BY_UNIX = 3u << 8,
    EXTRA_ZIP64 = 0x0001,
};
#define MAX32 0xFFFFFFFFull
#define MAX16 0xFFFFull

static uint8_t *le16(uint8_t *p, uint64_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *le32(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

static uint8_t *le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}

void cf_zip_dos_time(uint64_t ms, uint16_t *dtime, uint16_t *ddate)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year < 80) {
        *dtime = 0;
        *ddate = (uint16_t)((0 << 9) | (1 << 5) | 1);
        return;
    }
    if (tm.tm_year > 207) {
        *dtime = (uint16_t)((23 << 11) | (59 << 5) | 29);
        *ddate = (uint16_t)((127 << 9) | (12 << 5) | 31);
        return;
    }
    *dtime = (uint16_t)((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
    *ddate = (uint16_t)(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
}

/* A file whose size needs 64 bits: ZIP64 extra in its local header, 8-byte sizes in its descriptor. */
static bool big(const struct cf_zip_entry *e)
{
    return !e->dir && e->size >= MAX32;
}

static unsigned flags(const struct cf_zip_entry *e)
{
    return FLAG_UTF8 | (e->dir ? 0 : FLAG_DESC);
}

size_t cf_zip_local_len(const struct cf_zip_entry *e)
{
    return 30 + e->name_len + (big(e) ? 20 : 0);
}

size_t cf_zip_local(const struct cf_zip_entry *e, uint8_t *out)
{
    uint8_t *p = out;
    p = le32(p, SIG_LOCAL);
    p = le16(p, big(e) ? VER_45 : VER_20);
    p = le16(p, flags(e));
    p = le16(p, 0); /* stored */
    p = le16(p, e->dos_time);
    p = le16(p, e->dos_date);
    /* CRC and sizes follow the data (bit 3); folders have none. A big file says "see ZIP64". */
    p = le32(p, 0);
    p = le32(p, big(e) ? MAX32 : 0);
    p = le32(p, big(e) ? MAX32 : 0);
    p = le16(p, e->name_len);
    p = le16(p, big(e) ? 20 : 0);
    memcpy(p, e->name, e->name_len);
    p += e->name_len;
    if (big(e)) { /* sizes zero here: the descriptor has them (APPNOTE 4.4.4, 4.5.3) */
        p = le16(p, EXTRA_ZIP64);
        p = le16(p, 16);
        p = le64(p, 0);
        p = le64(p, 0);
    }
    return (size_t)(p - out);
}

size_t cf_zip_desc_len(const struct cf_zip_entry *e)
{
    return e->dir ? 0 : big(e) ? 24 : 16;
}

size_t cf_zip_desc(const struct cf_zip_entry *e, uint8_t *out)
{
    if (e->dir)
        return 0;
    uint8_t *p = out;
    p = le32(p, SIG_DESC);
    p = le32(p, e->crc);
    if (big(e)) {
        p = le64(p, e->size);
        p = le64(p, e->size);
    } else {
        p = le32(p, e->size);
        p = le32(p, e->size);
    }
    return (size_t)(p - out);
}

/* The central entry's ZIP64 extra: the fields that do not fit, in APPNOTE's order. */
static size_t central_extra(const struct cf_zip_entry *e)
{
    size_t n = 0;
    if (e->size >= MAX32)
        n += 16; /* uncompressed and compressed size */
    if (e->offset >= MAX32)
        n += 8;
    return n != 0 ? 4 + n : 0;
}

size_t cf_zip_central_len(const struct cf_zip_entry *e)
{
    return 46 + e->name_len + central_extra(e);
}

size_t cf_zip_central(const struct cf_zip_entry *e, uint8_t *out)
{
    uint8_t *p = out;
    size_t extra = central_extra(e);
    bool size64 = e->size >= MAX32, off64 = e->offset >= MAX32;
    p = le32(p, SIG_CENTRAL);
    p = le16(p, MADE_BY_UNIX | VER_45);
    p = le16(p, extra != 0 || big(e) ? VER_45 : VER_20);
    p = le16(p, flags(e));
    p = le16(p, 0);
    p = le16(p, e->dos_time);
    p = le16(p, e->dos_date);
    p = le32(p, e->dir ? 0 : e->crc);
    p = le32(p, size64 ? MAX32 : e->size);
    p = le32(p, size64 ? MAX32 : e->size);
    p = le16(p, e->name_len);
    p = le16(p, extra);
    p = le16(p, 0);     /* comment */
    p = le16(p, 0);     /* disk */
    p = le16(p, 0);     /* internal attributes */
    /* Unix mode in the high half (drwxr-xr-x, -rw-r--r--), MS-DOS directory bit in the low. */
    p = le32(p, e->dir ? (0040755u << 16) | 0x10u : (0100644u << 16));
    p = le32(p, off64 ? MAX32 : e->offset);
    memcpy(p, e->name, e->name_len);
    p += e->name_len;
    if (extra != 0) {
        p = le16(p, EXTRA_ZIP64);
        p = le16(p, extra - 4);
        if (size64) {
            p = le64(p, e->size);
            p = le64(p, e->size);
        }
        if (off64)
            p = le64(p, e->offset);
    }
    return (size_t)(p - out);
}

static bool end64(uint64_t count, uint64_t cd_offset, uint64_t cd_size)
{
    return count >= MAX16 || cd_offset >= MAX32 || cd_size >= MAX32;
}

size_t cf_zip_end_len(uint64_t count, uint64_t cd_offset, uint64_t cd_size)
{
    return (end64(count, cd_offset, cd_size) ? 56 + 20 : 0) + 22;
}

size_t cf_zip_end(uint64_t count, uint64_t cd_offset, uint64_t cd_size, uint8_t *out)
{
    uint8_t *p = out;
    if (end64(count, cd_offset, cd_size)) {
        uint64_t at = cd_offset + cd_size; /* where the ZIP64 end record starts */
        p = le32(p, SIG_END64);
        p = le64(p, 44);
        p = le16(p, MADE_BY_UNIX | VER_45);
        p = le16(p, VER_45);
        p = le32(p, 0);
        p = le32(p, 0);
        p = le64(p, count);
        p = le64(p, count);
        p = le64(p, cd_size);
        p = le64(p, cd_offset);
        p = le32(p, SIG_LOC64);
        p = le32(p, 0);
        p = le64(p, at);
        p = le32(p, 1);
    }
    p = le32(p, SIG_END);
    p = le16(p, 0);
    p = le16(p, 0);
    p = le16(p, count >= MAX16 ? MAX16 : count);
    p = le16(p, count >= MAX16 ? MAX16 : count);
    p = le32(p, cd_size >= MAX32 ? MAX32 : cd_size);
    p = le32(p, cd_offset >= MAX32 ? MAX32 : cd_offset);
    p = le16(p, 0);
    return (size_t)(p - out);
}

uint64_t cf_zip_layout(struct cf_zip_entry *e, size_t n, uint64_t *cd_offset, uint64_t *cd_size)
{
    uint64_t at = 0, cd = 0;
    for (size_t i = 0; i < n; i++) {
        e[i].offset = at;
        at += cf_zip_local_len(&e[i]) + (e[i].dir ? 0 : e[i].size) + cf_zip_desc_len(&e[i]);
    }
    for (size_t i = 0; i < n; i++)
        cd += cf_zip_central_len(&e[i]);
    *cd_offset = at;
    *cd_size = cd;
    return at + cd + cf_zip_end_len(n, at, cd);
}

uint32_t cf_zip_crc32(uint32_t crc, const void *p, size_t n)
{
    const Bytef *b = p;
    while (n > 0) { /* zlib takes uInt lengths */
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, b, k);
        b += k;
        n -= k;
    }
    return crc;
}

bool cf_zip_name_ok(const char *seg, size_t n)
{
    if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (seg[i] == '/' || seg[i] == '\\' || seg[i] == '\0')
            return false;
    return true;
}
