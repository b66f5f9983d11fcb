/*
 * base.c: shared primitives (see base.h). Allocation failures and CSPRNG failures abort: a server
 * that holds keys must not limp on with a degraded allocator or a predictable generator.
 */
#include "base.h"
#include "fault.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const status_names[CF_STATUS_COUNT] = {
    [CF_OK] = "ok",
    [CF_EINVAL] = "bad_request",
    [CF_EUNAUTH] = "unauthorized",
    [CF_EMFA] = "mfa_required",
    [CF_EDENIED] = "forbidden",
    [CF_EFROZEN] = "account_frozen",
    [CF_ENOTFOUND] = "not_found",
    [CF_EEXIST] = "conflict",
    [CF_EEXPIRED] = "expired",
    [CF_EREVOKED] = "revoked",
    [CF_EEXHAUSTED] = "download_limit_reached",
    [CF_ELENGTH] = "length_required",
    [CF_ETOOBIG] = "payload_too_large",
    [CF_EMEDIA] = "unsupported_media_type",
    [CF_ERANGE] = "range_not_satisfiable",
    [CF_EINFECTED] = "infected",
    [CF_EUNSCANNABLE] = "unscannable",
    [CF_EBLOCKED] = "blocked_type",
    [CF_ELOCKED] = "locked",
    [CF_ERATE] = "rate_limited",
    [CF_EPRECOND] = "precondition_failed",
    [CF_ECHECKSUM] = "checksum_mismatch",
    [CF_EUNAVAIL] = "unavailable",
    [CF_ECORRUPT] = "corrupt",
    [CF_EIO] = "io_error",
    [CF_ECRYPTO] = "crypto_error",
    [CF_EBUSY] = "busy",
    [CF_ESUSPENDED] = "suspended",
    [CF_EDISABLED] = "links_disabled",
    [CF_EROLLBACK] = "rolled_back",
    [CF_EQUOTA] = "quota_exceeded",
};

const char *cf_status_name(enum cf_status st)
{
    if ((unsigned)st >= CF_STATUS_COUNT || status_names[st] == NULL)
        return "internal";
    return status_names[st];
}

static void (*storage_logger)(int level, const char *msg);

void cf_storage_set_logger(void (*fn)(int level, const char *msg))
{
    storage_logger = fn;
}

void cf_storage_log(int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (storage_logger != NULL)
        storage_logger(level, msg);
    else
        fprintf(stderr, "coffer: %s\n", msg);
}

static void oom(size_t n)
{
    cf_storage_log(CF_LOG_ERROR, "out of memory allocating %zu bytes", n);
    abort();
}

void *cf_xmalloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);
    if (p == NULL)
        oom(n);
    return p;
}

void *cf_try_malloc(size_t n)
{
    if (cf_fault(CF_FAULT_ALLOC))
        return NULL;
    return malloc(n == 0 ? 1 : n);
}

void *cf_xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n == 0 ? 1 : n, sz == 0 ? 1 : sz);
    if (p == NULL)
        oom(n * sz);
    return p;
}

void *cf_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n == 0 ? 1 : n);
    if (q == NULL)
        oom(n);
    return q;
}

char *cf_xstrdup(const char *s)
{
    return cf_xstrndup(s, strlen(s));
}

char *cf_xstrndup(const char *s, size_t n)
{
    char *p = cf_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *cf_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    char *p = cf_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void cf_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

void cf_free_secret(void *p, size_t n)
{
    if (p == NULL)
        return;
    cf_wipe(p, n);
    free(p);
}

bool cf_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

bool cf_ct_streq(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

void cf_random(void *buf, size_t n)
{
    if (RAND_bytes(buf, (int)n) != 1) {
        cf_storage_log(CF_LOG_ERROR, "the CSPRNG failed; refusing to continue");
        abort();
    }
}

void cf_id_new(struct cf_id *id)
{
    do
        cf_random(id->b, sizeof id->b);
    while (cf_id_is_zero(id));
}

bool cf_id_is_zero(const struct cf_id *id)
{
    static const struct cf_id zero;
    return memcmp(id->b, zero.b, sizeof zero.b) == 0;
}

bool cf_id_equal(const struct cf_id *a, const struct cf_id *b)
{
    return memcmp(a->b, b->b, sizeof a->b) == 0;
}

void cf_id_hex(const struct cf_id *id, char out[CF_ID_HEX_LEN + 1])
{
    cf_hex_encode(id->b, sizeof id->b, out);
}

enum cf_status cf_id_parse(const char *s, size_t n, struct cf_id *out)
{
    size_t len;
    if (n != CF_ID_HEX_LEN)
        return CF_EINVAL;
    if (cf_hex_decode(s, n, out->b, sizeof out->b, &len) != CF_OK || len != CF_ID_LEN)
        return CF_EINVAL;
    return CF_OK;
}

void cf_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

enum cf_status cf_hex_decode(const char *in, size_t n, uint8_t *out, size_t out_cap, size_t *out_len)
{
    if (n % 2 != 0 || n / 2 > out_cap)
        return CF_EINVAL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return CF_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *out_len = n / 2;
    return CF_OK;
}

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t cf_b64url_len(size_t n)
{
    return (n / 3) * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

void cf_b64url_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
}

static int b64url_val(char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

static enum cf_status b64_decode(const char *in, size_t n, bool url, uint8_t *out, size_t out_cap, size_t *out_len);

enum cf_status cf_b64url_decode(const char *in, size_t n, uint8_t *out, size_t out_cap, size_t *out_len)
{
    return b64_decode(in, n, true, out, out_cap, out_len);
}

enum cf_status cf_b64_decode(const char *in, size_t n, uint8_t *out, size_t out_cap, size_t *out_len)
{
    /* Padding, when present, must be exactly what completes the last quantum. */
    if (n > 0 && in[n - 1] == '=') {
        if (n % 4 != 0)
            return CF_EINVAL;
        n -= n >= 2 && in[n - 2] == '=' ? 2 : 1;
        if (n % 4 == 1 || n % 4 == 0)
            return CF_EINVAL;
    }
    return b64_decode(in, n, false, out, out_cap, out_len);
}

static enum cf_status b64_decode(const char *in, size_t n, bool url, uint8_t *out, size_t out_cap, size_t *out_len)
{
    if (n % 4 == 1)
        return CF_EINVAL;
    size_t need = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    if (need > out_cap)
        return CF_EINVAL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val(in[i], url);
        if (v < 0)
            return CF_EINVAL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* RFC 4648 §3.5: the leftover bits of a canonical encoding are zero. */
    if (acc != 0)
        return CF_EINVAL;
    *out_len = o;
    return CF_OK;
}

enum cf_status cf_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    if (n == 0 || n > 20)
        return CF_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return CF_EINVAL;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return CF_EINVAL;
        v = v * 10 + d;
    }
    if (v > max)
        return CF_EINVAL;
    *out = v;
    return CF_OK;
}

uint64_t cf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void cf_deadline(int clock, uint64_t ns, struct timespec *out)
{
    clock_gettime((clockid_t)clock, out);
    uint64_t n = (uint64_t)out->tv_nsec + ns;
    out->tv_sec += (time_t)(n / 1000000000u);
    out->tv_nsec = (long)(n % 1000000000u);
}

void cf_time_rfc3339(uint64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* Every field is in range for a valid struct tm; the wide buffer only quiets -Wformat-truncation. */
    char buf[96];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
    size_t n = strnlen(buf, 31);
    memcpy(out, buf, n);
    out[n] = '\0';
}
