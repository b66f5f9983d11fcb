/*
 * totp.c: HOTP, TOTP, base32 and otpauth:// URIs (see totp.h).
 *
 * The HMAC is OpenSSL 3's EVP_MAC "HMAC" with digest "SHA1", fetched per call: a login computes
 * three HMACs, so caching the fetched algorithm is not worth a global. SHA-1 is fine here: HOTP
 * needs only HMAC's PRF property, which SHA-1's collision weakness does not touch (RFC 4226
 * Appendix A.2), and every authenticator app implements exactly this.
 */
#include "totp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "crypto.h"
#include "log.h"

/* Three candidate steps: T-1, T, T+1 (RFC 6238 §5.2 allows at most one step of network delay and
 * clock drift either way; more only widens the guessing window). */
#define TOTP_CANDIDATES 3

/* out = HMAC-SHA-1(secret, msg). Aborts if OpenSSL fails: only an allocation failure inside it can
 * get here, which the project treats like its own out-of-memory. */
static void hmac_sha1(const uint8_t *secret, size_t n, const uint8_t msg[8], uint8_t out[CF_SHA1_LEN])
{
    /* EVP_MAC_init wants a non-NULL pointer even for an empty key (HMAC with an empty key is
     * well defined: RFC 2104 pads it with zeros). */
    static const uint8_t empty[1];
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA1", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t len = 0;
    if (ctx == NULL || EVP_MAC_init(ctx, n > 0 ? secret : empty, n, params) != 1 || EVP_MAC_update(ctx, msg, 8) != 1 ||
        EVP_MAC_final(ctx, out, &len, CF_SHA1_LEN) != 1 || len != CF_SHA1_LEN) {
        cf_log_error("%s: HMAC-SHA1 failed", __func__);
        abort();
    }
    /* EVP_MAC_CTX_free cleanses the keyed state. */
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}

uint32_t cf_hotp(const uint8_t *secret, size_t n, uint64_t counter, unsigned digits)
{
    uint8_t msg[8], h[CF_SHA1_LEN];
    /* RFC 4226 §5.2: the counter is an 8-byte big-endian value. */
    for (int i = 7; i >= 0; i--) {
        msg[i] = (uint8_t)counter;
        counter >>= 8;
    }
    hmac_sha1(secret, n, msg, h);
    /* RFC 4226 §5.3 dynamic truncation: the low nibble of the last byte is an offset (0..15), the
     * four bytes there, top bit masked off, are the 31-bit value. */
    unsigned off = h[CF_SHA1_LEN - 1] & 0x0f;
    uint32_t bin = ((uint32_t)(h[off] & 0x7f) << 24) | ((uint32_t)h[off + 1] << 16) | ((uint32_t)h[off + 2] << 8) |
                   (uint32_t)h[off + 3];
    cf_wipe(h, sizeof h);
    /* bin < 2^31 < 10^10, so ten or more digits keep it whole. */
    uint64_t mod = 1;
    for (unsigned d = 0; d < digits && d < 10; d++)
        mod *= 10;
    return (uint32_t)(bin % mod);
}

/* Writes v as exactly CF_TOTP_DIGITS decimal digits with leading zeros (no NUL). */
static void format_code(uint32_t v, char out[CF_TOTP_DIGITS])
{
    for (int i = CF_TOTP_DIGITS - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

bool cf_totp_verify(const uint8_t *secret, size_t n, const char *code, size_t code_len, uint64_t now_s,
                    uint64_t last_step, uint64_t *matched_step)
{
    if (code_len != CF_TOTP_DIGITS)
        return false;
    for (size_t i = 0; i < code_len; i++) {
        if (code[i] < '0' || code[i] > '9')
            return false;
    }
    uint64_t t = now_s / CF_TOTP_STEP_S;
    uint64_t found = 0; /* all ones once some step matched */
    uint64_t match = 0; /* the greatest matching step so far */
    char cand[CF_TOTP_DIGITS];
    /* Every candidate is computed and compared, and the bookkeeping is branch-free, so the time
     * taken does not say which step (if any) matched. Ascending order makes a later (greater)
     * step win: if a code happens to match two steps, the greater one becomes last_step and the
     * code cannot be accepted a second time for the other. */
    for (unsigned i = 0; i < TOTP_CANDIDATES; i++) {
        uint64_t step = t + i - 1; /* wraps to UINT64_MAX for T-1 when T == 0: masked out below */
        format_code(cf_hotp(secret, n, step, CF_TOTP_DIGITS), cand);
        uint64_t exists = (uint64_t)(t + i >= 1);
        uint64_t fresh = (uint64_t)(step > last_step); /* no reuse of this or any older step */
        uint64_t equal = (uint64_t)cf_ct_equal(cand, code, CF_TOTP_DIGITS);
        uint64_t m = 0 - (exists & fresh & equal);
        match = (match & ~m) | (step & m);
        found |= m;
    }
    cf_wipe(cand, sizeof cand);
    if (found == 0)
        return false;
    if (matched_step != NULL)
        *matched_step = match;
    return true;
}

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

void cf_base32_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = b32_alphabet[(acc >> bits) & 31];
        }
        acc &= (1u << bits) - 1;
    }
    /* RFC 4648 §6: the last group is zero-padded on the right; '=' padding is omitted. */
    if (bits > 0)
        out[o++] = b32_alphabet[(acc << (5 - bits)) & 31];
    out[o] = '\0';
}

/* The value of one base32 digit, either case, or -1. */
static int b32_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

enum cf_status cf_base32_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *len)
{
    /* A final group of 1, 3 or 6 characters carries fewer than 8 bits beyond whole bytes plus a
     * partial character no encoder emits. */
    size_t rem = n % 8;
    if (rem == 1 || rem == 3 || rem == 6)
        return CF_EINVAL;
    size_t need = n / 8 * 5 + rem * 5 / 8;
    if (need > cap)
        return CF_EINVAL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b32_val(in[i]);
        if (v < 0)
            goto err_wipe;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* RFC 4648 §3.5: the leftover bits of a canonical encoding are zero. */
    if (acc != 0)
        goto err_wipe;
    *len = o;
    return CF_OK;

err_wipe:
    cf_wipe(out, o);
    return CF_EINVAL;
}

/* RFC 3986 §2.3 unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" */
static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

/* Appends the percent-encoding of s at out + *o. */
static void pct_append(char *out, size_t *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (unreserved(*p)) {
            out[(*o)++] = (char)*p;
        } else {
            out[(*o)++] = '%';
            out[(*o)++] = hex[*p >> 4];
            out[(*o)++] = hex[*p & 15];
        }
    }
}

static void str_append(char *out, size_t *o, const char *s)
{
    size_t l = strlen(s);
    memcpy(out + *o, s, l);
    *o += l;
}

char *cf_totp_uri(const char *issuer, const char *account, const uint8_t *secret, size_t n)
{
    static const char scheme[] = "otpauth://totp/";
    static const char q_secret[] = "?secret=";
    static const char q_issuer[] = "&issuer=";
    static const char q_rest[] = "&algorithm=SHA1&digits=6&period=30";
    size_t il = strlen(issuer), al = strlen(account);
    size_t b32_len = (n * 8 + 4) / 5;
    /* Every input byte expands to at most three ("%XX"); the sizeofs count one NUL each, which
     * covers the ':' and the final NUL. */
    size_t cap = sizeof scheme + 3 * il + 1 + 3 * al + sizeof q_secret + b32_len + sizeof q_issuer + 3 * il +
                 sizeof q_rest;
    char *b32 = cf_xmalloc(b32_len + 1);
    char *out = cf_xmalloc(cap);
    size_t o = 0;
    cf_base32_encode(secret, n, b32);
    str_append(out, &o, scheme);
    /* Key URI format: the label is "issuer:account"; the issuer parameter repeats the issuer. */
    pct_append(out, &o, issuer);
    out[o++] = ':';
    pct_append(out, &o, account);
    str_append(out, &o, q_secret);
    str_append(out, &o, b32);
    str_append(out, &o, q_issuer);
    pct_append(out, &o, issuer);
    str_append(out, &o, q_rest);
    out[o] = '\0';
    cf_free_secret(b32, b32_len + 1);
    return out;
}
