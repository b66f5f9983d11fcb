/*
 * totp.h: time-based one-time passwords for login second factors: TOTP (RFC 6238) over HOTP
 * (RFC 4226) with HMAC-SHA-1, 6 digits and 30-second steps, the parameters every authenticator app
 * understands; the base32 codec (RFC 4648 §6) the secrets travel in; and the otpauth:// URI that
 * apps scan from a QR code.
 *
 * Invariants: a code is accepted for at most the steps T-1, T, T+1 (T = now / 30 s) and only for a
 * step strictly greater than the last step the caller recorded as used, so a code accepted once is
 * never accepted again and neither is an older one. Candidates are compared in constant time and
 * all of them are always computed. HMAC outputs and candidate codes are wiped after use.
 *
 * Pure functions: no I/O, no clock (the caller passes the time), no globals; any thread.
 */
#ifndef CF_TOTP_H
#define CF_TOTP_H

#include "base.h"

#define CF_TOTP_SECRET_LEN 20 /* bytes: RFC 4226 §4 R6 recommends 160 bits, the HMAC-SHA-1 output size */
#define CF_TOTP_STEP_S 30     /* seconds per time step (RFC 6238 §5.2 default) */
#define CF_TOTP_DIGITS 6      /* digits in a code */

/* cf_hotp(secret, n, counter, digits): the RFC 4226 HOTP value of counter under the n-byte key
 * secret: HMAC-SHA-1(secret, 8-byte big-endian counter), dynamic truncation to 31 bits, modulo
 * 10^digits. digits is 1..9 (8 for the RFC 6238 test vectors); for digits >= 10 the untruncated
 * 31-bit value is returned, and digits == 0 gives 0. The caller formats the result with leading
 * zeros. Aborts (like an allocation failure) if OpenSSL cannot compute an HMAC. Any thread. */
uint32_t cf_hotp(const uint8_t *secret, size_t n, uint64_t counter, unsigned digits);

/* cf_totp_verify(secret, n, code, code_len, now_s, last_step, matched_step): checks a user-typed
 * code (untrusted, code_len bytes, not necessarily NUL-terminated) against the n-byte secret at
 * Unix time now_s (seconds). The code must be exactly CF_TOTP_DIGITS ASCII digits, else false at
 * once (the format of the input is not secret). Otherwise the codes for the steps T-1, T and T+1
 * (T = now_s / CF_TOTP_STEP_S; T-1 does not exist when T == 0) are all computed and compared in
 * constant time; a step <= last_step never matches (pass 0 for a secret never used). Returns true
 * if some step matched, and then stores in *matched_step (if not NULL) the greatest matching
 * step, which the caller must record as the new last_step before answering so that the code
 * cannot be replayed; *matched_step is untouched on false. Any thread; the caller serialises
 * verifications for one secret with its update of last_step. */
bool cf_totp_verify(const uint8_t *secret, size_t n, const char *code, size_t code_len, uint64_t now_s,
                    uint64_t last_step, uint64_t *matched_step);

/* cf_base32_encode(in, n, out): RFC 4648 §6 base32 of n bytes, upper case, without '=' padding,
 * into out, which must have room for (n * 8 + 4) / 5 + 1 bytes (NUL included). */
void cf_base32_encode(const uint8_t *in, size_t n, char *out);

/* cf_base32_decode(in, n, out, cap, len): decodes n characters of unpadded base32, upper or lower
 * case, into out (cap bytes) and stores the byte count in *len. Returns CF_EINVAL for any other
 * character (padding '=', spaces, '0', '1', '8', '9'...), for a length that no byte string encodes
 * (n % 8 of 1, 3 or 6), for non-zero leftover bits (RFC 4648 §3.5: only the canonical text is
 * accepted), or if the result would not fit in cap bytes (checked before writing); on CF_EINVAL
 * the bytes already written are wiped, as out usually receives a secret. */
enum cf_status cf_base32_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *len) CF_WUR;

/* cf_totp_uri(issuer, account, secret, n): the malloc'ed key URI
 *   otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
 * where issuer and account (trusted NUL-terminated text) are percent-encoded (RFC 3986: the
 * unreserved characters A-Z a-z 0-9 - . _ ~ are kept, every other byte becomes %XX, including ':'
 * and '@'). The URI contains the secret: the caller owns it and frees it with
 * cf_free_secret(uri, strlen(uri)). Never fails (aborts on out of memory). Any thread. */
char *cf_totp_uri(const char *issuer, const char *account, const uint8_t *secret, size_t n);

#endif
