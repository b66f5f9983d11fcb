/*
 * validate.h: checks and encoders for untrusted text at the edge: node names, byte ranges, and
 * the Content-Disposition header. Pure functions: no I/O, no globals, any thread.
 */
#ifndef CF_VALIDATE_H
#define CF_VALIDATE_H

#include "base.h"

/* The longest retention period a tenant policy may set (trash_retention, offboarded_retention). */
#define CF_RETENTION_MAX_S (3650ull * 86400)
#define CF_QUOTA_MAX_BYTES (1ull << 60) /* policy quotas: 1 EiB, far beyond any disk, within JSON integers */

/* cf_name_check(s, n): a node name is 1..255 bytes of valid UTF-8 (no overlongs, surrogates or
 * code points past U+10FFFF), without '/', NUL, C0/C1 control characters, DEL, the line and
 * paragraph separators, the Unicode bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E,
 * U+2066–U+2069: they make "exe.txt" look like "txt.exe"), or any other invisible character (every
 * format character, category Cf: U+200B, U+2060–U+2064, U+FEFF, tags...; Hangul fillers and the
 * other blank default-ignorables), and is not "." or "..". The one exception: a zero width
 * non-joiner or joiner (U+200C, U+200D) between two characters it visibly joins (both U+0590 or
 * above, not spaces: Persian, Indic scripts, emoji sequences), never at an end, twice in a row or
 * next to Latin, Greek or Cyrillic. Returns NULL if acceptable, else a short reason for the client. */
const char *cf_name_check(const char *s, size_t n);

/* cf_text_clean(s, n, max): a malloc'ed copy of untrusted header text (user agents) that is valid
 * UTF-8 of at most max bytes, cut on a character boundary, with every invalid byte and control
 * character replaced by '?'. So that stored and logged text can always be encoded as JSON. */
char *cf_text_clean(const char *s, size_t n, size_t max);

/* cf_utf8_valid(s, n): well-formed UTF-8 (RFC 3629). */
bool cf_utf8_valid(const char *s, size_t n);

/* cf_language_tag_valid(s): the shape of a BCP 47 language tag (RFC 5646 §2.1) as configuration
 * accepts it: a 2-3 letter language then subtags of 1-8 letters or digits joined by '-', at most 35
 * bytes in all ("zh-cn", "zh-Hant-TW", "en"). NULL is not valid. */
bool cf_language_tag_valid(const char *s);

/* Byte ranges (RFC 9110 §14). */
enum cf_range_result {
    CF_RANGE_NONE,          /* no usable Range: serve the whole representation (other unit, several ranges) */
    CF_RANGE_OK,            /* one satisfiable range: *first..*last inclusive */
    CF_RANGE_UNSATISFIABLE, /* answer 416 with Content-Range: bytes * /size */
};
/* cf_range_parse(s, n, size, first, last): parses one Range header value against a representation
 * of size bytes. Malformed byte ranges are unsatisfiable. */
enum cf_range_result cf_range_parse(const char *s, size_t n, uint64_t size, uint64_t *first, uint64_t *last);

/* cf_content_disposition(type, name, n): a malloc'ed header value,
 *   type; filename="ascii fallback"; filename*=UTF-8''percent-encoded
 * (RFC 6266, RFC 5987/8187). The fallback replaces non-ASCII, quotes, backslashes, '%' and
 * control characters with '_'. */
char *cf_content_disposition(const char *type, const char *name, size_t n);

#endif
