/*
 * fuzz_share.c: share links' untrusted text: the link token in /s/{token} and in access cookies or
 * bearer headers (cf_auth_token_hash and the base64url codec under it), custom extraction codes
 * (cf_share_code_ok), the case folding unlock applies before the MAC (cf_share_code_fold), and the
 * ids and hex cursors that share routes parse (cf_id_parse, cf_hex_decode).
 *
 * Invariants: a token accepted is exactly 43 characters that decode to 32 bytes and re-encode to the
 * same text, and its hash is the SHA-256 of those bytes; base64url and base64 decoding are canonical
 * (re-encoding gives the input back); an accepted custom code is 4..16 ASCII letters and digits; a
 * code and its upper- and lower-case forms fold to the same bytes, at most CF_SHARE_CODE_MAX, with no
 * lower-case letter left; an id or hex string accepted is lower-case hex that re-encodes to the input.
 */
#include <ctype.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth.h"
#include "crypto.h"
#include "fuzz.h"
#include "share.h"
#include "storage.h"

static void check_token(const char *s, size_t n)
{
    uint8_t hash[CF_SHA256_LEN], raw[64], want[CF_SHA256_LEN];
    size_t rl;
    bool ok = cf_auth_token_hash(s, n, hash);
    enum cf_status st = cf_b64url_decode(s, n, raw, sizeof raw, &rl);
    if (st == CF_OK) {
        char *text = malloc(cf_b64url_len(rl) + 1);
        cf_b64url_encode(raw, rl, text);
        FUZZ_CHECK(strlen(text) == n && memcmp(text, s, n) == 0);
        free(text);
    }
    FUZZ_CHECK(ok == (n == CF_TOKEN_TEXT_LEN && st == CF_OK && rl == CF_TOKEN_BYTES));
    if (ok) {
        cf_sha256(raw, rl, want);
        FUZZ_CHECK(memcmp(hash, want, sizeof hash) == 0);
    }
    /* Standard base64 (tus headers): canonical, with or without padding. */
    if (n <= 256 && cf_b64_decode(s, n, raw, sizeof raw, &rl) == CF_OK) {
        char text[128];
        size_t tl = (size_t)EVP_EncodeBlock((unsigned char *)text, raw, (int)rl);
        size_t unpadded = tl;
        while (unpadded > 0 && text[unpadded - 1] == '=')
            unpadded--;
        FUZZ_CHECK((n == tl && memcmp(text, s, n) == 0) || (n == unpadded && memcmp(text, s, n) == 0));
    }
}

static void check_code(const char *s, size_t n)
{
    if (cf_share_code_ok(s, n)) {
        FUZZ_CHECK(n >= 4 && n <= CF_SHARE_CODE_MAX);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(isascii((unsigned char)s[i]) && isalnum((unsigned char)s[i]));
    }
    char a[CF_SHARE_CODE_MAX], b[CF_SHARE_CODE_MAX], c[CF_SHARE_CODE_MAX];
    char lower[CF_SHARE_CODE_MAX], upper[CF_SHARE_CODE_MAX];
    size_t m = n < CF_SHARE_CODE_MAX ? n : CF_SHARE_CODE_MAX;
    for (size_t i = 0; i < m; i++) {
        lower[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
        upper[i] = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 32) : s[i];
    }
    size_t la = cf_share_code_fold(s, n, a);
    size_t lb = cf_share_code_fold(lower, m, b);
    size_t lc = cf_share_code_fold(upper, m, c);
    FUZZ_CHECK(la == m && lb == m && lc == m);
    FUZZ_CHECK(memcmp(a, b, m) == 0 && memcmp(a, c, m) == 0);
    for (size_t i = 0; i < m; i++)
        FUZZ_CHECK(!(a[i] >= 'a' && a[i] <= 'z') && (a[i] == s[i] || a[i] == s[i] - 32));
}

static void check_hex(const char *s, size_t n)
{
    struct cf_id id;
    if (cf_id_parse(s, n, &id) == CF_OK) {
        char hex[CF_ID_HEX_LEN + 1];
        cf_id_hex(&id, hex);
        FUZZ_CHECK(n == CF_ID_HEX_LEN && memcmp(hex, s, n) == 0);
    }
    uint8_t raw[64];
    size_t rl;
    if (cf_hex_decode(s, n, raw, sizeof raw, &rl) == CF_OK) {
        char hex[2 * sizeof raw + 1];
        FUZZ_CHECK(rl <= sizeof raw && 2 * rl == n);
        cf_hex_encode(raw, rl, hex);
        FUZZ_CHECK(memcmp(hex, s, n) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    if (size > 1024)
        return 0;
    check_token(s, size);
    check_code(s, size);
    check_hex(s, size);
    return 0;
}
