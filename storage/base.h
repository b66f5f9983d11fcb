/*
 * base.h: the few definitions that both the storage library and the daemon share: the status enum
 * every fallible function returns, the out-of-memory-aborting allocators, opaque 128-bit ids,
 * hex/base64url codecs, checked number parsing, wall-clock time and secret wiping.
 *
 * Invariants: nothing here knows about HTTP or RocksDB. A status is never an HTTP code: the daemon
 * maps it in exactly one place (src/http.c, cf_status_http).
 */
#ifndef CF_BASE_H
#define CF_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CF_WUR __attribute__((warn_unused_result))

/* Every fallible operation returns one of these. Keep names stable: tests and logs use them. */
enum cf_status {
    CF_OK = 0,
    CF_EINVAL,       /* malformed input (bad_request) */
    CF_EUNAUTH,      /* no or invalid credentials */
    CF_EMFA,         /* a TOTP code is required */
    CF_EDENIED,      /* some access, not enough */
    CF_EFROZEN,      /* account frozen */
    CF_ENOTFOUND,    /* does not exist, or may not be seen */
    CF_EEXIST,       /* name taken, state conflict */
    CF_EEXPIRED,     /* share link expired */
    CF_EREVOKED,     /* share link revoked */
    CF_EEXHAUSTED,   /* share download limit reached */
    CF_ELENGTH,      /* length required */
    CF_ETOOBIG,      /* over a size limit */
    CF_EMEDIA,       /* unsupported media type */
    CF_ERANGE,       /* unsatisfiable range */
    CF_EINFECTED,    /* scanner found a signature */
    CF_EUNSCANNABLE, /* scanner could not scan, policy rejects */
    CF_EBLOCKED,     /* content type blocked by policy */
    CF_ELOCKED,      /* resource locked */
    CF_ERATE,        /* rate limited */
    CF_EPRECOND,     /* precondition failed (tus version) */
    CF_ECHECKSUM,    /* checksum mismatch (tus) */
    CF_EUNAVAIL,     /* a required service (scanner) is down */
    CF_ECORRUPT,     /* stored data failed authentication or is inconsistent */
    CF_EIO,          /* storage or system failure */
    CF_ECRYPTO,      /* a cryptographic primitive failed (not an auth failure) */
    CF_EBUSY,        /* the store is held by another process */
    CF_ESUSPENDED,   /* share link suspended (its creator was frozen) */
    CF_EDISABLED,    /* share links disabled by the tenant policy */
    CF_EROLLBACK,    /* the store is older than its journal anchor, or its journal is damaged */
    CF_EQUOTA,       /* a user's or tenant's storage quota would be exceeded */
    CF_STATUS_COUNT
};

/* cf_status_name(st): the stable lower-case name of st ("ok", "not_found", ...), for logs and tests. */
const char *cf_status_name(enum cf_status st);

/* Allocation: abort with a message on failure, so callers never check for NULL (h2o_mem_alloc). */
void *cf_xmalloc(size_t n);
void *cf_xcalloc(size_t n, size_t sz);
void *cf_xrealloc(void *p, size_t n);
/* cf_try_malloc(n): NULL on failure. For large per-request buffers whose failure the caller turns
 * into a clean error (CF_EIO → 503) instead of aborting; fault builds fail it on demand (fault.h). */
void *cf_try_malloc(size_t n);
char *cf_xstrdup(const char *s);
char *cf_xstrndup(const char *s, size_t n);
/* cf_xasprintf(fmt, ...): a malloc'ed formatted string; aborts on failure. */
char *cf_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cf_wipe(p, n): zero n bytes in a way the compiler may not elide (OPENSSL_cleanse). */
void cf_wipe(void *p, size_t n);
/* cf_free_secret(p, n): wipe then free; NULL is ignored. */
void cf_free_secret(void *p, size_t n);
/* cf_ct_equal(a, b, n): constant-time comparison of two n-byte buffers. */
bool cf_ct_equal(const void *a, const void *b, size_t n);
/* cf_ct_streq(a, b): two NUL-terminated secrets (e.g. encoded password hashes) are equal; constant
 * time in their content (the lengths, not secret here, are compared first). */
bool cf_ct_streq(const char *a, const char *b);

/* cf_random(buf, n): fill buf from the CSPRNG. A CSPRNG failure is fatal (aborts), never a fallback. */
void cf_random(void *buf, size_t n);

/* Opaque ids: 128 random bits, rendered as 32 lower-case hex digits. The all-zero id means "none". */
#define CF_ID_LEN 16
#define CF_ID_HEX_LEN (2 * CF_ID_LEN)
struct cf_id {
    uint8_t b[CF_ID_LEN];
};
void cf_id_new(struct cf_id *id);
bool cf_id_is_zero(const struct cf_id *id);
bool cf_id_equal(const struct cf_id *a, const struct cf_id *b);
/* cf_id_hex(id, out): writes CF_ID_HEX_LEN digits and a NUL into out[CF_ID_HEX_LEN + 1]. */
void cf_id_hex(const struct cf_id *id, char out[CF_ID_HEX_LEN + 1]);
/* cf_id_parse(s, n, out): exactly 32 lower-case hex digits; anything else is CF_EINVAL. */
enum cf_status cf_id_parse(const char *s, size_t n, struct cf_id *out) CF_WUR;

/* Hex (lower case). cf_hex_decode accepts only lower-case digits and an even length. */
void cf_hex_encode(const uint8_t *in, size_t n, char *out /* 2n + 1 */);
enum cf_status cf_hex_decode(const char *in, size_t n, uint8_t *out, size_t out_cap, size_t *out_len) CF_WUR;

/* base64url without padding (RFC 4648 §5). Decoding rejects padding, other alphabets and
 * non-canonical trailing bits, so every byte string has exactly one text form. */
size_t cf_b64url_len(size_t n);
void cf_b64url_encode(const uint8_t *in, size_t n, char *out /* cf_b64url_len(n) + 1 */);
enum cf_status cf_b64url_decode(const char *in, size_t n, uint8_t *out, size_t out_cap, size_t *out_len) CF_WUR;
/* cf_b64_decode: standard base64 (RFC 4648 §4, as tus headers use it), padded or not; the same
 * strictness (no whitespace, canonical trailing bits, padding only where it belongs). */
enum cf_status cf_b64_decode(const char *in, size_t n, uint8_t *out, size_t out_cap, size_t *out_len) CF_WUR;

/* Checked number parsing: the whole input must be consumed, no sign, no spaces, no overflow. */
enum cf_status cf_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out) CF_WUR;

/* Wall-clock time in milliseconds since the Unix epoch. */
uint64_t cf_now_ms(void);
/* cf_deadline(clock, ns, out): the time ns nanoseconds from now on clock (CLOCK_REALTIME,
 * CLOCK_MONOTONIC), normalised, for pthread_cond_timedwait on a condition of that clock. */
struct timespec;
void cf_deadline(int clock, uint64_t ns, struct timespec *out);
/* cf_time_rfc3339(ms, out): "2026-11-23T18:35:00.123Z" into out[32]. */
void cf_time_rfc3339(uint64_t ms, char out[32]);

/* Diagnostic levels, shared by the daemon's log (src/log.h) and the storage library's messages. */
enum { CF_LOG_DEBUG = 0, CF_LOG_INFO = 1, CF_LOG_WARN = 2, CF_LOG_ERROR = 3 };

/* cf_storage_set_logger(fn): where the storage library's diagnostics go (RocksDB errors, records
 * that fail authentication, out of memory). NULL (the default): stderr, as "coffer: MESSAGE". The
 * server installs its own log (cf_log_message) so that these lines share its format. fn gets a level
 * and a NUL-terminated message, from any thread, possibly on the out-of-memory path (it must not
 * allocate). Set once, before threads start. */
void cf_storage_set_logger(void (*fn)(int level, const char *msg));

/* cf_storage_log(level, fmt, ...): one diagnostic through that logger (messages are cut at 1023
 * bytes). For the storage library's own use. */
void cf_storage_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
