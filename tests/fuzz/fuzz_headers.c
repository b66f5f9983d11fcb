/*
 * fuzz_headers.c: request headers parsed by hand: Range (cf_range_parse), Cookie (cf_cookie_find,
 * then cf_auth_token_hash as the session lookup does), and the tus headers: Upload-Metadata
 * (cf_tus_metadata_parse), Upload-Checksum (cf_tus_checksum_parse), Upload-Offset/Upload-Length
 * (cf_parse_u64 with CF_TUS_U64_MAX).
 *
 * The first byte picks the parser ('r', 'c', 'm', 's', 'n'; the rest is the header value); any other
 * first byte runs every parser on the whole input.
 *
 * Invariants: a satisfiable range lies within the representation (first <= last < size) and a
 * multi-range or non-bytes header is ignored; a cookie value found lies inside the header, after
 * "name=" at the start of a cookie, and holds no ';'; a session token accepted is 43 canonical
 * base64url characters; accepted metadata carries a valid name and an id and re-encodes to a header
 * that parses to the same struct; an accepted checksum has the algorithm's digest length and
 * re-encodes to the same digest; an accepted number is all decimal digits, at most 2^53, and equals
 * its digits' value.
 */
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "auth.h"
#include "fuzz.h"
#include "tus.h"
#include "validate.h"

static void check_range(const char *s, size_t n)
{
    static const uint64_t sizes[] = {0, 1, 100, 1u << 20, (uint64_t)1 << 53, UINT64_MAX};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint64_t first = 7, last = 7;
        enum cf_range_result r = cf_range_parse(s, n, sizes[k], &first, &last);
        bool bytes = n >= 6 && strncasecmp(s, "bytes=", 6) == 0;
        if (!bytes || memchr(s, ',', n) != NULL)
            FUZZ_CHECK(r == CF_RANGE_NONE);
        else
            FUZZ_CHECK(r != CF_RANGE_NONE);
        if (r == CF_RANGE_OK)
            FUZZ_CHECK(first <= last && last < sizes[k]);
        else
            FUZZ_CHECK(first == 7 && last == 7); /* nothing written on refusal */
    }
}

static void check_cookie(const char *s, size_t n)
{
    static const char *const names[] = {CF_SESSION_COOKIE, "coffer_share", "a"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const char *v = NULL;
        size_t vl = 0;
        size_t nl = strlen(names[k]);
        if (!cf_cookie_find(s, n, names[k], &v, &vl))
            continue;
        FUZZ_CHECK(v >= s + nl + 1 && v + vl <= s + n);
        FUZZ_CHECK(v[-1] == '=' && memcmp(v - 1 - nl, names[k], nl) == 0);
        const char *start = v - 1 - nl;
        FUZZ_CHECK(start == s || start[-1] == ' ' || start[-1] == ';');
        FUZZ_CHECK(memchr(v, ';', vl) == NULL);
        uint8_t hash[CF_SHA256_LEN];
        if (cf_auth_token_hash(v, vl, hash)) {
            uint8_t raw[CF_TOKEN_BYTES];
            size_t rl;
            char text[CF_TOKEN_TEXT_LEN + 1];
            FUZZ_CHECK(vl == CF_TOKEN_TEXT_LEN);
            FUZZ_CHECK(cf_b64url_decode(v, vl, raw, sizeof raw, &rl) == CF_OK && rl == CF_TOKEN_BYTES);
            cf_b64url_encode(raw, rl, text);
            FUZZ_CHECK(memcmp(text, v, vl) == 0); /* one text per token */
        }
    }
}

static size_t b64(const void *in, size_t n, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static void check_metadata(const char *s, size_t n)
{
    struct cf_tus_metadata m, m2;
    char why[160] = "";
    if (cf_tus_metadata_parse(s, n, &m, why, sizeof why) != CF_OK) {
        FUZZ_CHECK(why[0] != '\0');
        return;
    }
    FUZZ_CHECK(m.name_len >= 1 && m.name_len <= CF_NAME_MAX && m.name[m.name_len] == '\0');
    FUZZ_CHECK(cf_name_check(m.name, m.name_len) == NULL);
    FUZZ_CHECK(m.on_conflict == CF_CONFLICT_FAIL || m.on_conflict == CF_CONFLICT_RENAME ||
               m.on_conflict == CF_CONFLICT_REPLACE);
    /* Re-encode what was understood and parse it again: the same struct. */
    static const char *const conflicts[] = {[CF_CONFLICT_FAIL] = "fail", [CF_CONFLICT_RENAME] = "rename",
                                            [CF_CONFLICT_REPLACE] = "replace"};
    char hex[CF_ID_HEX_LEN + 1];
    cf_id_hex(&m.parent, hex);
    char hdr[1024];
    size_t o = 0;
    memcpy(hdr, "filename ", 9);
    o = 9;
    o += b64(m.name, m.name_len, hdr + o);
    memcpy(hdr + o, ",parent ", 8);
    o += 8;
    o += b64(hex, CF_ID_HEX_LEN, hdr + o);
    memcpy(hdr + o, ",on_conflict ", 13);
    o += 13;
    o += b64(conflicts[m.on_conflict], strlen(conflicts[m.on_conflict]), hdr + o);
    FUZZ_CHECK(cf_tus_metadata_parse(hdr, o, &m2, why, sizeof why) == CF_OK);
    FUZZ_CHECK(m2.name_len == m.name_len && memcmp(m2.name, m.name, m.name_len) == 0);
    FUZZ_CHECK(cf_id_equal(&m2.parent, &m.parent) && m2.on_conflict == m.on_conflict);
}

static void check_checksum(const char *s, size_t n)
{
    struct cf_tus_checksum c, c2;
    enum cf_status st = cf_tus_checksum_parse(s, n, &c);
    FUZZ_CHECK(st == CF_OK || st == CF_EINVAL || st == CF_EMEDIA);
    if (st != CF_OK)
        return;
    FUZZ_CHECK(c.alg == CF_HASH_SHA1 ? c.len == CF_SHA1_LEN : c.alg == CF_HASH_SHA256 && c.len == CF_SHA256_LEN);
    char hdr[128];
    size_t o = (size_t)snprintf(hdr, sizeof hdr, "%s ", c.alg == CF_HASH_SHA1 ? "sha1" : "sha256");
    o += b64(c.digest, c.len, hdr + o);
    FUZZ_CHECK(cf_tus_checksum_parse(hdr, o, &c2) == CF_OK);
    FUZZ_CHECK(c2.alg == c.alg && c2.len == c.len && memcmp(c2.digest, c.digest, c.len) == 0);
}

static void check_number(const char *s, size_t n)
{
    uint64_t v = 12345;
    if (cf_parse_u64(s, n, CF_TUS_U64_MAX, &v) != CF_OK)
        return;
    uint64_t ref = 0;
    FUZZ_CHECK(n >= 1);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(s[i] >= '0' && s[i] <= '9');
        FUZZ_CHECK(ref <= (CF_TUS_U64_MAX - (uint64_t)(s[i] - '0')) / 10);
        ref = ref * 10 + (uint64_t)(s[i] - '0');
    }
    FUZZ_CHECK(v == ref && v <= CF_TUS_U64_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    if (size > 8192)
        return 0;
    if (size > 0) {
        const char *v = s + 1;
        size_t vl = size - 1;
        switch (s[0]) {
        case 'r':
            check_range(v, vl);
            return 0;
        case 'c':
            check_cookie(v, vl);
            return 0;
        case 'm':
            check_metadata(v, vl);
            return 0;
        case 's':
            check_checksum(v, vl);
            return 0;
        case 'n':
            check_number(v, vl);
            return 0;
        default:
            break;
        }
    }
    check_range(s, size);
    check_cookie(s, size);
    check_metadata(s, size);
    check_checksum(s, size);
    check_number(s, size);
    return 0;
}
