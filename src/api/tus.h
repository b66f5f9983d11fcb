/*
 * tus.h: the parsers of tus 1.0.0 request headers (tus.c), apart from the handlers so that they can
 * be tested and fuzzed without a request (tests/fuzz/fuzz_headers.c). Pure functions: any thread.
 */
#ifndef CF_TUS_H
#define CF_TUS_H

#include "base.h"
#include "crypto.h"
#include "storage.h"

#define CF_TUS_METADATA_MAX 4096        /* bytes of Upload-Metadata */
#define CF_TUS_U64_MAX ((uint64_t)1 << 53) /* largest Upload-Offset / Upload-Length (a JSON-safe integer) */

/* Upload-Metadata as Coffer uses it. */
struct cf_tus_metadata {
    char name[CF_NAME_MAX + 1];   /* "filename": a valid node name (cf_name_check), NUL-terminated */
    size_t name_len;              /* its bytes, 1..CF_NAME_MAX */
    struct cf_id parent;          /* "parent": the folder id */
    enum cf_conflict on_conflict; /* "on_conflict": fail (default), rename or replace */
};

/* cf_tus_metadata_parse(v, n, m, why): Upload-Metadata (comma-separated "key base64(value)" pairs,
 * at most 16, keys printable ASCII of at most 31 bytes, no key twice); filename and parent required,
 * on_conflict optional, other keys accepted and ignored. CF_OK and *m filled, or CF_EINVAL and a
 * message for the client in why[0..cap) (it names no value). */
enum cf_status cf_tus_metadata_parse(const char *v, size_t n, struct cf_tus_metadata *m, char *why,
                                     size_t cap) CF_WUR;

/* Upload-Checksum (checksum extension). */
struct cf_tus_checksum {
    enum cf_hash_alg alg;
    uint8_t digest[CF_SHA256_LEN];
    size_t len;                   /* 20 (sha1) or 32 (sha256) */
};
/* cf_tus_checksum_parse(v, n, c): "sha1 BASE64" or "sha256 BASE64" with a digest of the algorithm's
 * length. CF_OK; CF_EMEDIA for another algorithm (answered 400 unsupported_checksum); CF_EINVAL
 * when malformed. */
enum cf_status cf_tus_checksum_parse(const char *v, size_t n, struct cf_tus_checksum *c) CF_WUR;

#endif
