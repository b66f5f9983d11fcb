/*
 * zipw.h: the byte layout of a streamed ZIP archive (PKWARE APPNOTE 6.3.x), written into caller
 * buffers; no I/O, no allocation. Used by the folder download (src/api/zip.c) and unit-tested on
 * its own (tests/unit/test_zip.c, with python3's zipfile and Info-ZIP's unzip as the readers).
 *
 * What it writes: every entry stored (method 0: file content is already compressed or encrypted at
 * the user's choice, and stored entries keep the archive's length known before the first byte, so
 * the response has a Content-Length); names in UTF-8 (general-purpose flag bit 11); files with a
 * data descriptor (bit 3) because their CRC-32 is known only once their bytes went out; ZIP64
 * extra fields where a size or an offset does not fit 32 bits, and the ZIP64 end records where
 * the entry count, the central directory's size or its offset does not fit. An entry whose size is
 * 0xFFFFFFFF or more carries a ZIP64 extra field (sizes zero) in its local header too, and so an
 * 8-byte-size data descriptor (APPNOTE 4.3.9.1). Folder entries end in '/', have no data and no
 * descriptor.
 */
#ifndef CF_ZIPW_H
#define CF_ZIPW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CF_ZIP_NAME_MAX 65535u  /* bytes in an entry name (a 16-bit field) */
/* The most bytes one header can take: a central entry with the longest name and a full ZIP64 extra. */
#define CF_ZIP_HEADER_MAX (46u + CF_ZIP_NAME_MAX + 28u)
#define CF_ZIP_END_MAX (56u + 20u + 22u) /* ZIP64 end record + locator + end record */

struct cf_zip_entry {
    const char *name;    /* UTF-8 path inside the archive, '/'-separated, folders ending in '/' */
    size_t name_len;     /* ≤ CF_ZIP_NAME_MAX */
    bool dir;
    uint64_t size;       /* files: bytes of content */
    uint32_t crc;        /* files: CRC-32 of the content, set before the descriptor and the central entry */
    uint64_t offset;     /* where its local header starts (cf_zip_layout) */
    uint16_t dos_time, dos_date; /* modification time, MS-DOS format (cf_zip_dos_time) */
};

/* cf_zip_dos_time(ms, time, date): ms since the epoch (UTC) as MS-DOS time and date; before 1980 is
 * 1980-01-01 00:00, after 2107 is 2107-12-31 23:59:58. */
void cf_zip_dos_time(uint64_t ms, uint16_t *time, uint16_t *date);

/* The headers of entry e, each written at out (room for the matching _len bytes), returning its
 * length: the local header (with the name), the data descriptor (files only; 0 for folders), the
 * central directory entry. */
size_t cf_zip_local_len(const struct cf_zip_entry *e);
size_t cf_zip_local(const struct cf_zip_entry *e, uint8_t *out);
size_t cf_zip_desc_len(const struct cf_zip_entry *e);
size_t cf_zip_desc(const struct cf_zip_entry *e, uint8_t *out);
size_t cf_zip_central_len(const struct cf_zip_entry *e);
size_t cf_zip_central(const struct cf_zip_entry *e, uint8_t *out);

/* The end of the archive after a central directory of count entries, cd_size bytes, starting at
 * cd_offset: the ZIP64 end record and its locator when needed, then the end record. */
size_t cf_zip_end_len(uint64_t count, uint64_t cd_offset, uint64_t cd_size);
size_t cf_zip_end(uint64_t count, uint64_t cd_offset, uint64_t cd_size, uint8_t *out);

/* cf_zip_layout(e, n, cd_offset, cd_size): sets every entry's offset and returns the archive's total
 * length; *cd_offset and *cd_size get the central directory's place. */
uint64_t cf_zip_layout(struct cf_zip_entry *e, size_t n, uint64_t *cd_offset, uint64_t *cd_size);

/* cf_zip_crc32(crc, p, n): the running CRC-32 (ISO-HDLC, as ZIP uses; start from 0). zlib's. */
uint32_t cf_zip_crc32(uint32_t crc, const void *p, size_t n);

/* cf_zip_name_ok(seg, n): whether one path segment may go into an archive: not empty, not "." or
 * "..", no '/', '\\' or NUL (names were validated at creation, but they may hold a backslash, which
 * Windows extractors take for a separator: callers put '_' in its place first). The writer's own
 * guard against a path that would escape the folder it is extracted into. */
bool cf_zip_name_ok(const char *seg, size_t n);

#endif
