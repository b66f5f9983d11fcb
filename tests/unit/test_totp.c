/*
 * test_totp.c: HOTP/TOTP (src/totp.c) against the RFC 4226 and RFC 6238 known answers, the
 * verification window and replay rule, base32 (RFC 4648 vectors), the otpauth:// URI, and interop
 * with the real oathtool (OATH Toolkit) for random secrets at fixed times and now.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "tap.h"
#include "totp.h"

static const uint8_t rfc_secret[] = "12345678901234567890"; /* RFC 4226 Appendix D, RFC 6238 Appendix B */
#define RFC_SECRET_LEN 20

/* Formats cf_hotp's value for step as the 6-digit code a user would type. */
static void code_for(const uint8_t *secret, size_t n, uint64_t step, char out[CF_TOTP_DIGITS + 1])
{
    snprintf(out, CF_TOTP_DIGITS + 1, "%06u", (unsigned)cf_hotp(secret, n, step, CF_TOTP_DIGITS));
}

static void rfc6238(void)
{
    /* RFC 6238 Appendix B, SHA-1 column (8 digits, T0 = 0, X = 30). */
    static const struct {
        uint64_t t;
        uint32_t code;
    } v[] = {
        {59, 94287082u},         {1111111109, 7081804u}, {1111111111, 14050471u},
        {1234567890, 89005924u}, {2000000000, 69279037u}, {20000000000ull, 65353130u},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        CHECK_INT(cf_hotp(rfc_secret, RFC_SECRET_LEN, v[i].t / 30, 8), v[i].code, "RFC 6238 SHA-1 at t=%llu",
                  (unsigned long long)v[i].t);
}

static void rfc4226(void)
{
    /* RFC 4226 Appendix D: HOTP values for counters 0..9. */
    static const uint32_t v[10] = {755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489};
    for (uint64_t c = 0; c < 10; c++)
        CHECK_INT(cf_hotp(rfc_secret, RFC_SECRET_LEN, c, 6), v[c], "RFC 4226 HOTP counter %llu", (unsigned long long)c);
    /* The same truncated value, other digit counts: 1284755224 is the Appendix D decimal for 0. */
    CHECK_INT(cf_hotp(rfc_secret, RFC_SECRET_LEN, 0, 10), 1284755224u, "10 digits keep the whole 31-bit value");
    CHECK_INT(cf_hotp(rfc_secret, RFC_SECRET_LEN, 0, 9), 284755224u, "9 digits");
    CHECK_INT(cf_hotp(rfc_secret, RFC_SECRET_LEN, 0, 1), 4u, "1 digit");
}

static void verify(void)
{
    const uint64_t now = 1111111111; /* T = 37037037, one second into the step */
    const uint64_t t = now / CF_TOTP_STEP_S;
    char c[5][CF_TOTP_DIGITS + 1]; /* codes for T-2 .. T+2 */
    for (int i = 0; i < 5; i++)
        code_for(rfc_secret, RFC_SECRET_LEN, t - 2 + (uint64_t)i, c[i]);
    /* The window tests below rely on the five codes being distinct (true for this secret). */
    bool distinct = true;
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            distinct = distinct && strcmp(c[i], c[j]) != 0;
    CHECK(distinct, "codes for T-2..T+2 are distinct");

    uint64_t m = 0;
    CHECK(cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[1], 6, now, 0, &m) && m == t - 1, "T-1 accepted, matched T-1");
    m = 0;
    CHECK(cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[2], 6, now, 0, &m) && m == t, "T accepted, matched T");
    m = 0;
    CHECK(cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[3], 6, now, 0, &m) && m == t + 1, "T+1 accepted, matched T+1");
    m = 12345;
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[0], 6, now, 0, &m), "T-2 rejected");
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[4], 6, now, 0, &m), "T+2 rejected");
    CHECK_INT(m, 12345, "matched_step untouched on rejection");
    CHECK(cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[2], 6, now, 0, NULL), "matched_step may be NULL");

    /* Step boundaries: the last second of step T still accepts T-1; the first of T+1 does not. */
    CHECK(cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[1], 6, t * 30 + 29, 0, &m) && m == t - 1, "T-1 at end of T");
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[1], 6, (t + 1) * 30, 0, &m), "T-1 gone at start of T+1");
    CHECK(cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[3], 6, (t + 1) * 30, 0, &m) && m == t + 1, "T+1 at start of T+1");

    /* Replay: the step a code matched becomes last_step; then that code, and any older one, fails. */
    m = 0;
    CHECK(cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[2], 6, now, 0, &m) && m == t, "first use of T's code");
    uint64_t last = m;
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[2], 6, now, last, &m), "same code replayed: rejected");
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[2], 6, now + 20, last, &m), "replayed later in the window: rejected");
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[1], 6, now, last, &m), "older T-1 code after T used: rejected");
    CHECK(cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[3], 6, now, last, &m) && m == t + 1, "newer T+1 code still accepted");
    last = m;
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[2], 6, now, last, &m), "T's code after T+1 used: rejected");
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[3], 6, now + 30, last, &m), "T+1's code replayed in T+1: rejected");
    CHECK(cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[2], 6, now, t - 1, &m) && m == t, "last_step T-1 still allows T");

    /* Format: exactly six ASCII digits. Variants of a valid code, so only the format can fail. */
    char longer[8], shorter[6], spaced[8], letter[7];
    snprintf(longer, sizeof longer, "%s7", c[2]);
    memcpy(shorter, c[2], 5);
    shorter[5] = '\0';
    snprintf(spaced, sizeof spaced, " %s", c[2]);
    memcpy(letter, c[2], 7);
    letter[5] = 'a';
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, longer, 7, now, 0, &m), "valid code + digit (7 digits) rejected");
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, shorter, 5, now, 0, &m), "5 digits of a valid code rejected");
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, spaced, 7, now, 0, &m), "leading space rejected");
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c[2], 5, now, 0, &m), "code_len 5 of a valid code rejected");
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, letter, 6, now, 0, &m), "letter in a valid code rejected");
    static const char *const bad[] = {"12345", "1234567", "12345a", " 123456", "", "123 45", "+12345", "12345\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, bad[i], strlen(bad[i]), now, 0, &m), "\"%.*s\" rejected",
              (int)strcspn(bad[i], "\n"), bad[i]);
    char nul[7];
    memcpy(nul, c[2], 7);
    nul[3] = '\0';
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, nul, 6, now, 0, &m), "embedded NUL rejected");

    /* T == 0: there is no step T-1 (it must not wrap to 2^64-1), and step 0 is never > last_step 0. */
    char c0[7], c1[7], cmax[7];
    code_for(rfc_secret, RFC_SECRET_LEN, 0, c0);
    code_for(rfc_secret, RFC_SECRET_LEN, 1, c1);
    code_for(rfc_secret, RFC_SECRET_LEN, UINT64_MAX, cmax);
    CHECK(strcmp(cmax, c0) != 0 && strcmp(cmax, c1) != 0, "code of step 2^64-1 differs from steps 0 and 1");
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, cmax, 6, 5, 0, &m), "no wrapped T-1 at T == 0");
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c0, 6, 5, 0, &m), "step 0 never beats last_step 0");
    CHECK(cf_totp_verify(rfc_secret, RFC_SECRET_LEN, c1, 6, 5, 0, &m) && m == 1, "T+1 at T == 0");
    CHECK(cf_totp_verify(rfc_secret, RFC_SECRET_LEN, "287082", 6, 59, 0, &m) && m == 1, "RFC code 287082 at t=59");

    /* A code that two candidate steps share (found offline: steps 35465068 and 35465070 both give
     * 073567 for the RFC secret). The greater step must be reported, or recording it as last_step
     * would let the same code in a second time through the other step. */
    const uint64_t tc = 35465069;
    char ca[7], cb[7];
    code_for(rfc_secret, RFC_SECRET_LEN, tc - 1, ca);
    code_for(rfc_secret, RFC_SECRET_LEN, tc + 1, cb);
    CHECK(strcmp(ca, "073567") == 0 && strcmp(cb, "073567") == 0, "steps T-1 and T+1 share 073567");
    m = 0;
    CHECK(cf_totp_verify(rfc_secret, RFC_SECRET_LEN, "073567", 6, tc * 30, 0, &m), "shared code accepted");
    CHECK_INT(m, tc + 1, "the greater of the two matching steps is reported");
    CHECK(!cf_totp_verify(rfc_secret, RFC_SECRET_LEN, "073567", 6, tc * 30, m, &m), "and the shared code is not accepted twice");
    CHECK(cf_totp_verify(rfc_secret, RFC_SECRET_LEN, "073567", 6, tc * 30, tc - 1, &m) && m == tc + 1,
          "with T-1 used, the same code still matches T+1");

    /* Another secret gives other codes. */
    uint8_t other[RFC_SECRET_LEN];
    memcpy(other, rfc_secret, sizeof other);
    other[0] ^= 1;
    CHECK(!cf_totp_verify(other, sizeof other, c[2], 6, now, 0, &m) && !cf_totp_verify(other, sizeof other, c[1], 6, now, 0, &m) &&
              !cf_totp_verify(other, sizeof other, c[3], 6, now, 0, &m),
          "codes of one secret rejected for another (this pair)");
}

static void base32(void)
{
    /* RFC 4648 §10, without the padding. */
    static const struct {
        const char *raw, *b32;
    } v[] = {
        {"", ""}, {"f", "MY"}, {"fo", "MZXQ"}, {"foo", "MZXW6"}, {"foob", "MZXW6YQ"}, {"fooba", "MZXW6YTB"}, {"foobar", "MZXW6YTBOI"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t rn = strlen(v[i].raw);
        char enc[32];
        memset(enc, 'x', sizeof enc);
        cf_base32_encode((const uint8_t *)v[i].raw, rn, enc);
        CHECK_STR(enc, v[i].b32, "encode \"%s\"", v[i].raw);
        CHECK_INT(strlen(enc), (rn * 8 + 4) / 5, "encoded length of \"%s\"", v[i].raw);
        uint8_t dec[16];
        size_t dl = 99;
        enum cf_status st = cf_base32_decode(v[i].b32, strlen(v[i].b32), dec, sizeof dec, &dl);
        CHECK(st == CF_OK && dl == rn && memcmp(dec, v[i].raw, rn) == 0, "decode \"%s\"", v[i].b32);
    }
    uint8_t dec[16];
    size_t dl = 0;
    CHECK(cf_base32_decode("mzxw6ytboi", 10, dec, sizeof dec, &dl) == CF_OK && dl == 6 && memcmp(dec, "foobar", 6) == 0,
          "lower case decodes");
    CHECK(cf_base32_decode("MzXw6YtBoI", 10, dec, sizeof dec, &dl) == CF_OK && dl == 6 && memcmp(dec, "foobar", 6) == 0,
          "mixed case decodes");
    char rfc_b32[40];
    cf_base32_encode(rfc_secret, RFC_SECRET_LEN, rfc_b32);
    CHECK_STR(rfc_b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "RFC secret in base32");

    /* The first eight have a valid length (mod 8), so only the offending character rejects them. */
    static const char *const bad[] = {
        "MZXW=",      /* padding */
        "MZXW6===",   /* padded "foo" */
        "MY======",   /* padded "f" */
        "MZXW1",      /* '1' is not in the alphabet */
        "MZX86",      /* nor '8' */
        "MZXW0",      /* nor '0' */
        "MZXW9",      /* nor '9' */
        "MZ W6",      /* space */
        "MZXW6YT\n",  /* trailing newline */
        "MZ",         /* leftover bits not zero (non-canonical "f") */
        "MZXR",       /* non-canonical "fo" */
        "M",          /* lengths 1, 3, 6 (mod 8) encode nothing */
        "MZX",
        "MZXW6Y",
        "MZXW6YTBM",
        "MZXW6YT-",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(cf_base32_decode(bad[i], strlen(bad[i]), dec, sizeof dec, &dl) == CF_EINVAL, "decode rejects \"%.*s\"",
              (int)strcspn(bad[i], "\n"), bad[i]);
    CHECK(cf_base32_decode("MZXW6YTBOI", 10, dec, 5, &dl) == CF_EINVAL, "6 bytes do not fit in cap 5");
    CHECK(cf_base32_decode("MZXW6YTBOI", 10, dec, 6, &dl) == CF_OK && dl == 6, "6 bytes fit in cap 6");
    /* A late bad character: the 5 bytes already written are wiped, nothing past them touched. */
    memset(dec, 0xaa, sizeof dec);
    CHECK(cf_base32_decode("MZXW6YTB1I", 10, dec, sizeof dec, &dl) == CF_EINVAL, "late '1' rejected");
    static const uint8_t zero5[5];
    CHECK(memcmp(dec, zero5, 5) == 0 && dec[5] == 0xaa, "partial output wiped");

    /* Random round trips of every length 0..40. */
    bool ok = true;
    for (size_t n = 0; n <= 40; n++) {
        uint8_t raw[40], back[40];
        char enc[80];
        cf_random(raw, n);
        cf_base32_encode(raw, n, enc);
        size_t bl = 0;
        ok = ok && strlen(enc) == (n * 8 + 4) / 5 && cf_base32_decode(enc, strlen(enc), back, sizeof back, &bl) == CF_OK &&
             bl == n && memcmp(raw, back, n) == 0;
    }
    CHECK(ok, "random round trips, lengths 0..40");
}

static void uri(void)
{
    char *u = cf_totp_uri("Coffer", "bob@acme", rfc_secret, RFC_SECRET_LEN);
    CHECK_STR(u,
              "otpauth://totp/Coffer:bob%40acme?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Coffer&algorithm=SHA1&digits=6"
              "&period=30",
              "URI for Coffer / bob@acme");
    cf_free_secret(u, strlen(u));
    u = cf_totp_uri("Acme Corp:EU", "a b/c~d.e_f-g:h\xc3\xa9%", (const uint8_t *)"foobar", 6);
    CHECK_STR(u,
              "otpauth://totp/Acme%20Corp%3AEU:a%20b%2Fc~d.e_f-g%3Ah%C3%A9%25?secret=MZXW6YTBOI&issuer=Acme%20Corp%3AEU"
              "&algorithm=SHA1&digits=6&period=30",
              "URI percent-encodes everything but unreserved characters");
    cf_free_secret(u, strlen(u));
    u = cf_totp_uri("", "", (const uint8_t *)"", 0);
    CHECK_STR(u, "otpauth://totp/:?secret=&issuer=&algorithm=SHA1&digits=6&period=30", "URI with empty parts");
    cf_free_secret(u, strlen(u));
}

/* ---- interop with oathtool ------------------------------------------------------------------ */

/* Runs oathtool for a base32 secret at Unix time at (or now if at == 0) with the given digits;
 * returns its code as text in out (digits characters and a NUL) or false. */
static bool oathtool(const char *b32, uint64_t at, unsigned digits, char *out, size_t cap)
{
    char cmd[256], when[40] = "";
    if (at != 0)
        snprintf(when, sizeof when, " -N @%llu", (unsigned long long)at);
    snprintf(cmd, sizeof cmd, "oathtool --totp -b -d %u%s %s 2>/dev/null", digits, when, b32);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return false;
    char line[64];
    bool got = fgets(line, sizeof line, p) != NULL;
    int status = pclose(p);
    if (!got || status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return false;
    line[strcspn(line, "\r\n")] = '\0';
    if (strlen(line) != digits || strspn(line, "0123456789") != digits || digits + 1 > cap)
        return false;
    memcpy(out, line, digits + 1);
    return true;
}

static bool have_oathtool(void)
{
    int status = system("oathtool --version >/dev/null 2>&1");
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static uint32_t to_u32(const char *s)
{
    uint64_t v = 0;
    if (cf_parse_u64(s, strlen(s), UINT32_MAX, &v) != CF_OK)
        return UINT32_MAX;
    return (uint32_t)v;
}

static void interop(void)
{
    if (!have_oathtool()) {
        tap_n++;
        printf("ok %d # SKIP oathtool is not installed (Debian package oathtool)\n", tap_n);
        return;
    }
    char code[16];
    /* Sanity: oathtool agrees with RFC 6238 on the RFC secret. */
    CHECK(oathtool("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 1111111109, 8, code, sizeof code) && strcmp(code, "07081804") == 0,
          "oathtool reproduces RFC 6238 at t=1111111109");

    static const uint64_t times[] = {59, 1111111109, 1767225600 /* 2026-01-01 00:00:00 UTC */, 1767225629, 2000000000,
                                     20000000000ull};
    static const size_t lens[] = {CF_TOTP_SECRET_LEN, 16, 32}; /* 16 and 32 leave a partial base32 group */
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
        uint8_t secret[32];
        char b32[64];
        cf_random(secret, lens[l]);
        cf_base32_encode(secret, lens[l], b32);
        for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
            uint64_t at = times[i], step = at / CF_TOTP_STEP_S, m = 0;
            bool ran = oathtool(b32, at, 6, code, sizeof code);
            CHECK(ran, "oathtool ran (%zu-byte secret, t=%llu)", lens[l], (unsigned long long)at);
            if (!ran)
                continue;
            CHECK_INT(cf_hotp(secret, lens[l], step, 6), to_u32(code), "cf_hotp = oathtool (%zu-byte secret, t=%llu)",
                      lens[l], (unsigned long long)at);
            CHECK(cf_totp_verify(secret, lens[l], code, strlen(code), at, 0, &m) && m == step,
                  "cf_totp_verify accepts oathtool's code at its step (%zu-byte secret, t=%llu)", lens[l],
                  (unsigned long long)at);
        }
        CHECK(oathtool(b32, 1767225600, 8, code, sizeof code) && cf_hotp(secret, lens[l], 1767225600 / 30, 8) == to_u32(code),
              "8 digits agree too (%zu-byte secret)", lens[l]);
        cf_wipe(secret, sizeof secret);
    }

    /* Now: oathtool reads its own clock; a step may begin between our two reads, so either counts. */
    uint8_t secret[CF_TOTP_SECRET_LEN];
    char b32[40];
    cf_random(secret, sizeof secret);
    cf_base32_encode(secret, sizeof secret, b32);
    uint64_t t0 = (uint64_t)time(NULL);
    bool ran = oathtool(b32, 0, 6, code, sizeof code);
    uint64_t t1 = (uint64_t)time(NULL);
    CHECK(ran, "oathtool ran for the current time");
    if (ran) {
        uint64_t s0 = t0 / CF_TOTP_STEP_S, s1 = t1 / CF_TOTP_STEP_S, m = 0;
        uint32_t v = to_u32(code);
        CHECK(cf_hotp(secret, sizeof secret, s0, 6) == v || cf_hotp(secret, sizeof secret, s1, 6) == v,
              "cf_hotp = oathtool for the current step");
        CHECK(cf_totp_verify(secret, sizeof secret, code, strlen(code), t1, 0, &m) && (m == s0 || m == s1),
              "cf_totp_verify accepts oathtool's current code");
        CHECK(!cf_totp_verify(secret, sizeof secret, code, strlen(code), t1, m, &m), "and only once");
    }
    cf_wipe(secret, sizeof secret);
}

int main(void)
{
    rfc6238();
    rfc4226();
    verify();
    base32();
    uri();
    interop();
    return tap_done();
}
