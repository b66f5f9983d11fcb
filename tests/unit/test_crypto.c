/*
 * test_crypto.c: known-answer and negative tests for storage/crypto.c and storage/base.c.
 *
 * Vectors: HKDF-SHA256 from RFC 5869 appendix A.1-A.3; AES-256-GCM from McGrew & Viega, "The
 * Galois/Counter Mode of Operation", test cases 13-16 (also NIST SP 800-38D); HMAC-SHA256 from
 * RFC 4231; SHA-256 and SHA-1 from FIPS 180 examples; base64url from RFC 4648 section 10.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base.h"
#include "crypto.h"
#include "tap.h"

/* Decodes a lower-case hex literal into a fresh buffer (test helper; aborts on a bad literal). */
static uint8_t *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    uint8_t *out = cf_xmalloc(n / 2 + 1);
    size_t got = 0;
    if (cf_hex_decode(hex, n, out, n / 2 + 1, &got) != CF_OK) {
        fprintf(stderr, "bad hex literal in test: %s\n", hex);
        abort();
    }
    *len = got;
    return out;
}

/* Compares n bytes of p with a hex literal. */
static bool eq_hex(const uint8_t *p, size_t n, const char *hex)
{
    size_t len;
    uint8_t *want = unhex(hex, &len);
    bool ok = len == n && memcmp(p, want, n) == 0;
    free(want);
    return ok;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* ---- HKDF ----------------------------------------------------------------------------------- */

static void test_hkdf(void)
{
    uint8_t okm[82];
    uint8_t ikm[80], salt[80], info[80];

    /* RFC 5869 A.1 */
    memset(ikm, 0x0b, 22);
    for (int i = 0; i < 13; i++)
        salt[i] = (uint8_t)i;
    for (int i = 0; i < 10; i++)
        info[i] = (uint8_t)(0xf0 + i);
    memset(okm, 0, sizeof okm);
    CHECK_INT(cf_hkdf_raw(salt, 13, ikm, 22, info, 10, okm, 42), CF_OK, "hkdf A.1 succeeds");
    CHECK(eq_hex(okm, 42, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"),
          "hkdf RFC 5869 A.1 OKM");

    /* RFC 5869 A.2 */
    for (int i = 0; i < 80; i++) {
        ikm[i] = (uint8_t)i;
        salt[i] = (uint8_t)(0x60 + i);
        info[i] = (uint8_t)(0xb0 + i);
    }
    memset(okm, 0, sizeof okm);
    CHECK_INT(cf_hkdf_raw(salt, 80, ikm, 80, info, 80, okm, 82), CF_OK, "hkdf A.2 succeeds");
    CHECK(eq_hex(okm, 82,
                 "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09"
                 "da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"),
          "hkdf RFC 5869 A.2 OKM");

    /* RFC 5869 A.3: zero-length salt and info */
    memset(ikm, 0x0b, 22);
    memset(okm, 0, sizeof okm);
    CHECK_INT(cf_hkdf_raw(NULL, 0, ikm, 22, NULL, 0, okm, 42), CF_OK, "hkdf A.3 succeeds");
    CHECK(eq_hex(okm, 42, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
          "hkdf RFC 5869 A.3 OKM (empty salt and info)");

    /* cf_hkdf is cf_hkdf_raw with the fixed salt "coffer-hkdf-v1" and a 32-byte output. */
    struct cf_key k1, k2, k3;
    uint8_t raw[32];
    static const char salt_label[] = "coffer-hkdf-v1";
    CHECK_INT(cf_hkdf(ikm, 22, "purpose/a", &k1), CF_OK, "cf_hkdf succeeds");
    CHECK_INT(cf_hkdf_raw(salt_label, sizeof salt_label - 1, ikm, 22, "purpose/a", 9, raw, sizeof raw), CF_OK,
              "cf_hkdf_raw with the fixed salt succeeds");
    CHECK(memcmp(k1.k, raw, 32) == 0, "cf_hkdf equals cf_hkdf_raw with salt coffer-hkdf-v1");
    CHECK_INT(cf_hkdf(ikm, 22, "purpose/b", &k2), CF_OK, "cf_hkdf with another label succeeds");
    CHECK(memcmp(k1.k, k2.k, 32) != 0, "different info labels give different keys");
    CHECK_INT(cf_hkdf(ikm, 22, "purpose/a", &k3), CF_OK, "cf_hkdf again succeeds");
    CHECK(memcmp(k1.k, k3.k, 32) == 0, "cf_hkdf is deterministic");
    cf_key_wipe(&k1);
    CHECK(all_zero(k1.k, sizeof k1.k), "cf_key_wipe zeroes the key");
}

/* ---- AES-256-GCM ---------------------------------------------------------------------------- */

#define TC_KEY "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
#define TC_IV "cafebabefacedbaddecaf888"
#define TC_PT60                                                                                                 \
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5" \
    "aa0de657ba637b39"
#define TC_CT60                                                                                                 \
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e63" \
    "93ba7a0abcc9f662"
#define TC_AAD "feedfacedeadbeeffeedfacedeadbeefabaddad2"

/* Builds nonce ‖ ct ‖ tag from hex parts. */
static uint8_t *sealed_from(const char *nonce, const char *ct, const char *tag, size_t *len)
{
    size_t nl, cl, tl;
    uint8_t *n = unhex(nonce, &nl), *c = unhex(ct, &cl), *t = unhex(tag, &tl);
    uint8_t *out = cf_xmalloc(nl + cl + tl);
    memcpy(out, n, nl);
    memcpy(out + nl, c, cl);
    memcpy(out + nl + cl, t, tl);
    *len = nl + cl + tl;
    free(n);
    free(c);
    free(t);
    return out;
}

static void key_from_hex(struct cf_key *k, const char *hex)
{
    size_t len;
    uint8_t *b = unhex(hex, &len);
    if (len != CF_KEY_LEN)
        abort();
    memcpy(k->k, b, CF_KEY_LEN);
    free(b);
}

static void test_gcm_vectors(void)
{
    struct cf_key key;
    uint8_t out[64];
    size_t inlen;
    uint8_t *in;

    /* Test case 13: zero key, zero IV, empty plaintext, no AAD. */
    memset(key.k, 0, sizeof key.k);
    in = sealed_from("000000000000000000000000", "", "530f8afbc74536b9a963b4f1c4cb738b", &inlen);
    CHECK_INT(inlen, CF_SEAL_OVERHEAD, "TC13 input is exactly the overhead");
    CHECK_INT(cf_aead_open(&key, NULL, 0, in, inlen, out), CF_OK, "GCM TC13 (empty plaintext) opens");
    in[inlen - 1] ^= 1;
    CHECK_INT(cf_aead_open(&key, NULL, 0, in, inlen, out), CF_ECORRUPT, "GCM TC13 with a flipped tag bit fails");
    free(in);

    /* Test case 14: zero key, zero IV, one zero block. */
    in = sealed_from("000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919",
                     &inlen);
    memset(out, 0xaa, sizeof out);
    CHECK_INT(cf_aead_open(&key, NULL, 0, in, inlen, out), CF_OK, "GCM TC14 opens");
    CHECK(all_zero(out, 16), "GCM TC14 plaintext is 16 zero bytes");
    CHECK(out[16] == 0xaa, "GCM TC14 writes exactly 16 bytes");
    free(in);

    /* Test case 15: 64-byte plaintext, no AAD. */
    key_from_hex(&key, TC_KEY);
    in = sealed_from(TC_IV, TC_CT60 "898015ad", "b094dac5d93471bdec1a502270e3cc6c", &inlen);
    memset(out, 0, sizeof out);
    CHECK_INT(cf_aead_open(&key, NULL, 0, in, inlen, out), CF_OK, "GCM TC15 opens");
    CHECK(eq_hex(out, 64, TC_PT60 "1aafd255"), "GCM TC15 plaintext");
    free(in);

    /* Test case 16: 60-byte plaintext, 20-byte AAD. */
    size_t aadlen;
    uint8_t *aad = unhex(TC_AAD, &aadlen);
    in = sealed_from(TC_IV, TC_CT60, "76fc6ece0f4e1768cddf8853bb2d551b", &inlen);
    CHECK_INT(inlen, 12 + 60 + 16, "TC16 input length");
    memset(out, 0, sizeof out);
    CHECK_INT(cf_aead_open(&key, aad, aadlen, in, inlen, out), CF_OK, "GCM TC16 opens");
    CHECK(eq_hex(out, 60, TC_PT60), "GCM TC16 plaintext");
    CHECK_INT(cf_aead_open(&key, NULL, 0, in, inlen, out), CF_ECORRUPT, "GCM TC16 without its AAD fails");
    CHECK(all_zero(out, 60), "GCM TC16 without AAD: output wiped");

    /* Every single-bit flip of nonce, ciphertext or tag must fail and wipe the output. */
    int bad_nonce = 0, bad_ct = 0, bad_tag = 0, bad_aad = 0, bad_wipe = 0;
    for (size_t byte = 0; byte < inlen; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            in[byte] ^= (uint8_t)(1u << bit);
            memset(out, 0xaa, sizeof out);
            enum cf_status st = cf_aead_open(&key, aad, aadlen, in, inlen, out);
            in[byte] ^= (uint8_t)(1u << bit);
            if (st != CF_ECORRUPT) {
                if (byte < CF_NONCE_LEN)
                    bad_nonce++;
                else if (byte < inlen - CF_TAG_LEN)
                    bad_ct++;
                else
                    bad_tag++;
            }
            if (!all_zero(out, inlen - CF_SEAL_OVERHEAD))
                bad_wipe++;
        }
    }
    for (size_t byte = 0; byte < aadlen; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            aad[byte] ^= (uint8_t)(1u << bit);
            memset(out, 0xaa, sizeof out);
            enum cf_status st = cf_aead_open(&key, aad, aadlen, in, inlen, out);
            aad[byte] ^= (uint8_t)(1u << bit);
            if (st != CF_ECORRUPT)
                bad_aad++;
            if (!all_zero(out, inlen - CF_SEAL_OVERHEAD))
                bad_wipe++;
        }
    }
    CHECK_INT(bad_nonce, 0, "all 96 nonce bit flips give CF_ECORRUPT");
    CHECK_INT(bad_ct, 0, "all 480 ciphertext bit flips give CF_ECORRUPT");
    CHECK_INT(bad_tag, 0, "all 128 tag bit flips give CF_ECORRUPT");
    CHECK_INT(bad_aad, 0, "all 160 AAD bit flips give CF_ECORRUPT");
    CHECK_INT(bad_wipe, 0, "output is wiped after every failed open");
    /* The untouched vector still opens (the flips were undone). */
    CHECK_INT(cf_aead_open(&key, aad, aadlen, in, inlen, out), CF_OK, "GCM TC16 still opens after the flips");

    /* Wrong key. */
    struct cf_key other = key;
    other.k[31] ^= 0x80;
    CHECK_INT(cf_aead_open(&other, aad, aadlen, in, inlen, out), CF_ECORRUPT, "GCM TC16 with a wrong key fails");
    /* Truncated and extended inputs. */
    CHECK_INT(cf_aead_open(&key, aad, aadlen, in, inlen - 1, out), CF_ECORRUPT, "TC16 minus one byte fails");
    int short_ok = 0;
    for (size_t n = 0; n < CF_SEAL_OVERHEAD; n++)
        if (cf_aead_open(&key, aad, aadlen, in, n, out) != CF_ECORRUPT)
            short_ok++;
    CHECK_INT(short_ok, 0, "every input shorter than nonce+tag (0..27 bytes) gives CF_ECORRUPT");
    free(in);
    free(aad);
}

static void test_gcm_roundtrip(void)
{
    struct cf_key key, other;
    uint8_t pt[100], sealed[100 + CF_SEAL_OVERHEAD], sealed2[100 + CF_SEAL_OVERHEAD], back[100];
    static const char aad[] = "some associated data";
    cf_key_random(&key);
    cf_key_random(&other);
    for (size_t i = 0; i < sizeof pt; i++)
        pt[i] = (uint8_t)(i * 7 + 3);

    CHECK_INT(cf_aead_seal(&key, aad, sizeof aad - 1, pt, sizeof pt, sealed), CF_OK, "seal 100 bytes");
    CHECK(memcmp(sealed + CF_NONCE_LEN, pt, sizeof pt) != 0, "ciphertext differs from plaintext");
    memset(back, 0, sizeof back);
    CHECK_INT(cf_aead_open(&key, aad, sizeof aad - 1, sealed, sizeof sealed, back), CF_OK, "open what was sealed");
    CHECK(memcmp(back, pt, sizeof pt) == 0, "round trip returns the plaintext");
    CHECK_INT(cf_aead_seal(&key, aad, sizeof aad - 1, pt, sizeof pt, sealed2), CF_OK, "seal again");
    CHECK(memcmp(sealed, sealed2, CF_NONCE_LEN) != 0, "two seals use different random nonces");
    CHECK(memcmp(sealed + CF_NONCE_LEN, sealed2 + CF_NONCE_LEN, sizeof pt) != 0, "two seals give different ciphertexts");
    memset(back, 0xaa, sizeof back);
    CHECK_INT(cf_aead_open(&other, aad, sizeof aad - 1, sealed, sizeof sealed, back), CF_ECORRUPT,
              "open with another key fails");
    CHECK(all_zero(back, sizeof back), "failed open wipes the output");
    CHECK_INT(cf_aead_open(&key, aad, sizeof aad - 2, sealed, sizeof sealed, back), CF_ECORRUPT,
              "open with shortened AAD fails");
    CHECK_INT(cf_aead_open(&key, NULL, 0, sealed, sizeof sealed, back), CF_ECORRUPT, "open without AAD fails");

    /* Empty plaintext, no AAD. */
    uint8_t esealed[CF_SEAL_OVERHEAD];
    CHECK_INT(cf_aead_seal(&key, NULL, 0, NULL, 0, esealed), CF_OK, "seal empty plaintext");
    CHECK_INT(cf_aead_open(&key, NULL, 0, esealed, sizeof esealed, back), CF_OK, "open empty plaintext");
    CHECK_INT(cf_aead_open(&key, "x", 1, esealed, sizeof esealed, back), CF_ECORRUPT,
              "empty plaintext with added AAD fails");
    cf_key_wipe(&key);
    cf_key_wipe(&other);
}

/* ---- HMAC and hashes ------------------------------------------------------------------------ */

static void test_hmac(void)
{
    struct cf_key key;
    uint8_t mac[32], mac2[32];

    /* RFC 4231 test case 1: key = 0x0b x 20. HMAC zero-pads any key shorter than the hash block
     * (64 bytes for SHA-256) before use, so a 20-byte key and the same key zero-padded to 32 bytes
     * are the same HMAC key: the 32-byte cf_key holds the 20 bytes then 12 zero bytes. */
    memset(key.k, 0, sizeof key.k);
    memset(key.k, 0x0b, 20);
    cf_hmac_sha256(&key, "Hi There", 8, mac);
    CHECK(eq_hex(mac, 32, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
          "HMAC-SHA256 RFC 4231 case 1 (20-byte key zero-padded to 32)");

    /* RFC 4231 test case 2: key "Jefe", same zero-padding argument. */
    memset(key.k, 0, sizeof key.k);
    memcpy(key.k, "Jefe", 4);
    cf_hmac_sha256(&key, "what do ya want for nothing?", 28, mac);
    CHECK(eq_hex(mac, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
          "HMAC-SHA256 RFC 4231 case 2 (key \"Jefe\" zero-padded to 32)");

    /* RFC 4231 test case 4: key 0x01..0x19 (25 bytes), data 0xcd x 50. */
    uint8_t data[50];
    memset(key.k, 0, sizeof key.k);
    for (int i = 0; i < 25; i++)
        key.k[i] = (uint8_t)(i + 1);
    memset(data, 0xcd, sizeof data);
    cf_hmac_sha256(&key, data, sizeof data, mac);
    CHECK(eq_hex(mac, 32, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
          "HMAC-SHA256 RFC 4231 case 4 (25-byte key zero-padded to 32)");

    /* cf_hmac2_sha256(a, b) is the HMAC of a ‖ b. */
    cf_hmac2_sha256(&key, data, 20, data + 20, 30, mac2);
    CHECK(memcmp(mac, mac2, 32) == 0, "hmac2(a, b) equals hmac(a ‖ b)");
    cf_hmac2_sha256(&key, data, 50, "", 0, mac2);
    CHECK(memcmp(mac, mac2, 32) == 0, "hmac2(a, empty) equals hmac(a)");
    key.k[31] = 1; /* no longer a zero pad: a different key */
    cf_hmac_sha256(&key, data, sizeof data, mac2);
    CHECK(memcmp(mac, mac2, 32) != 0, "changing a key byte changes the MAC");
}

static void test_hashes(void)
{
    uint8_t d[32], d2[32];
    cf_sha256("abc", 3, d);
    CHECK(eq_hex(d, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "SHA-256(\"abc\")");
    cf_sha256("", 0, d);
    CHECK(eq_hex(d, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "SHA-256(\"\")");
    static const char two_blocks[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    cf_sha256(two_blocks, sizeof two_blocks - 1, d);
    CHECK(eq_hex(d, 32, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
          "SHA-256 of the 448-bit FIPS 180 message");

    /* Incremental equals one-shot, whatever the split. */
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i ^ (i >> 3));
    cf_sha256(buf, sizeof buf, d);
    int mismatches = 0;
    static const size_t splits[] = {0, 1, 63, 64, 65, 500, 999, 1000};
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
        struct cf_hash *h = cf_hash_new(CF_HASH_SHA256);
        cf_hash_update(h, buf, splits[i]);
        cf_hash_update(h, buf + splits[i], sizeof buf - splits[i]);
        size_t n = cf_hash_final(h, d2);
        if (n != 32 || memcmp(d, d2, 32) != 0)
            mismatches++;
        cf_hash_free(h);
    }
    CHECK_INT(mismatches, 0, "incremental SHA-256 equals one-shot for every split");

    /* Byte at a time. */
    struct cf_hash *h = cf_hash_new(CF_HASH_SHA256);
    for (size_t i = 0; i < sizeof buf; i++)
        cf_hash_update(h, buf + i, 1);
    CHECK_INT(cf_hash_final(h, d2), 32, "SHA-256 final returns 32");
    CHECK(memcmp(d, d2, 32) == 0, "byte-at-a-time SHA-256 equals one-shot");
    cf_hash_free(h);

    /* cf_hash_copy: an independent snapshot. */
    h = cf_hash_new(CF_HASH_SHA256);
    cf_hash_update(h, "ab", 2);
    struct cf_hash *c = cf_hash_copy(h);
    cf_hash_update(h, "c", 1);
    cf_hash_final(h, d);
    CHECK(eq_hex(d, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
          "original continues to SHA-256(\"abc\") after a copy");
    cf_hash_final(c, d2);
    cf_sha256("ab", 2, d);
    CHECK(memcmp(d, d2, 32) == 0, "the copy finalises to SHA-256(\"ab\"), unaffected by later updates");
    cf_hash_free(h);
    cf_hash_free(c);

    /* SHA-1. */
    uint8_t s1[CF_SHA1_LEN + 4];
    memset(s1, 0xee, sizeof s1);
    h = cf_hash_new(CF_HASH_SHA1);
    cf_hash_update(h, "a", 1);
    cf_hash_update(h, "bc", 2);
    CHECK_INT(cf_hash_final(h, s1), 20, "SHA-1 final returns 20");
    CHECK(eq_hex(s1, 20, "a9993e364706816aba3e25717850c26c9cd0d89d"), "SHA-1(\"abc\")");
    CHECK(s1[20] == 0xee, "SHA-1 final writes exactly 20 bytes");
    cf_hash_free(h);
    cf_hash_free(NULL);
}

/* ---- base.c --------------------------------------------------------------------------------- */

static void test_hex(void)
{
    uint8_t in[256], out[256];
    char txt[513];
    size_t n;
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)i;
    cf_hex_encode(in, sizeof in, txt);
    CHECK_INT(strlen(txt), 512, "hex of 256 bytes is 512 digits");
    CHECK(strncmp(txt, "000102", 6) == 0 && strcmp(txt + 506, "fdfeff") == 0, "hex is lower case, in order");
    CHECK_INT(cf_hex_decode(txt, 512, out, sizeof out, &n), CF_OK, "hex decode of the encoding");
    CHECK(n == 256 && memcmp(in, out, 256) == 0, "hex round trip");
    CHECK_INT(cf_hex_decode("", 0, out, sizeof out, &n), CF_OK, "empty hex decodes");
    CHECK_INT(n, 0, "empty hex gives 0 bytes");
    CHECK_INT(cf_hex_decode("ABCD", 4, out, sizeof out, &n), CF_EINVAL, "upper-case hex rejected");
    CHECK_INT(cf_hex_decode("abc", 3, out, sizeof out, &n), CF_EINVAL, "odd-length hex rejected");
    CHECK_INT(cf_hex_decode("0g", 2, out, sizeof out, &n), CF_EINVAL, "non-hex digit rejected");
    CHECK_INT(cf_hex_decode("0 ", 2, out, sizeof out, &n), CF_EINVAL, "space rejected");
    CHECK_INT(cf_hex_decode("aabb", 4, out, 1, &n), CF_EINVAL, "output too small rejected");
    CHECK_INT(cf_hex_decode("aabb", 4, out, 2, &n), CF_OK, "exactly fitting output accepted");
}

/* Standard base64 (tus headers): padded or not, padding only where it belongs. */
static void test_b64(void)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const padded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *const bare[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    uint8_t out[64];
    size_t n;
    int bad = 0;
    for (int i = 0; i < 7; i++) {
        size_t pl = strlen(plain[i]);
        if (cf_b64_decode(padded[i], strlen(padded[i]), out, sizeof out, &n) != CF_OK || n != pl ||
            memcmp(out, plain[i], pl) != 0)
            bad++;
        if (cf_b64_decode(bare[i], strlen(bare[i]), out, sizeof out, &n) != CF_OK || n != pl ||
            memcmp(out, plain[i], pl) != 0)
            bad++;
    }
    CHECK_INT(bad, 0, "RFC 4648 section 10 vectors decode, padded and unpadded");
    CHECK_INT(cf_b64_decode("+/8=", 4, out, sizeof out, &n), CF_OK, "the standard alphabet + /");
    CHECK(n == 2 && out[0] == 0xfb && out[1] == 0xff, "+/8= gives fb ff");
    CHECK_INT(cf_b64_decode("-_8=", 4, out, sizeof out, &n), CF_EINVAL, "the URL alphabet is rejected");
    CHECK_INT(cf_b64_decode("Zg=", 3, out, sizeof out, &n), CF_EINVAL, "incomplete padding rejected");
    CHECK_INT(cf_b64_decode("Zm8==", 5, out, sizeof out, &n), CF_EINVAL, "padding past the quantum rejected");
    CHECK_INT(cf_b64_decode("Zm9v====", 8, out, sizeof out, &n), CF_EINVAL, "a padding-only quantum rejected");
    CHECK_INT(cf_b64_decode("=", 1, out, sizeof out, &n), CF_EINVAL, "lone padding rejected");
    CHECK_INT(cf_b64_decode("Zh==", 4, out, sizeof out, &n), CF_EINVAL, "non-canonical trailing bits rejected");
    CHECK_INT(cf_b64_decode("Zm 9v", 5, out, sizeof out, &n), CF_EINVAL, "whitespace rejected");
    CHECK_INT(cf_b64_decode("Zm9vYmFy", 8, out, 5, &n), CF_EINVAL, "output too small rejected");
}

static void test_b64url(void)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char txt[80]; /* cf_b64url_len(48) + 1 = 65 */
    uint8_t out[64];
    size_t n;
    int bad = 0;
    for (int i = 0; i < 7; i++) {
        size_t pl = strlen(plain[i]);
        if (cf_b64url_len(pl) != strlen(enc[i]))
            bad++;
        cf_b64url_encode((const uint8_t *)plain[i], pl, txt);
        if (strcmp(txt, enc[i]) != 0)
            bad++;
        if (cf_b64url_decode(enc[i], strlen(enc[i]), out, sizeof out, &n) != CF_OK || n != pl ||
            memcmp(out, plain[i], pl) != 0)
            bad++;
    }
    CHECK_INT(bad, 0, "RFC 4648 section 10 vectors encode, decode and have the right length (unpadded)");

    /* The URL alphabet: 0xfb 0xff → "-_8" (standard base64 would be "+/8"). */
    static const uint8_t ub[] = {0xfb, 0xff};
    cf_b64url_encode(ub, 2, txt);
    CHECK_STR(txt, "-_8", "base64url uses - and _");
    CHECK_INT(cf_b64url_decode("-_8", 3, out, sizeof out, &n), CF_OK, "decode -_8");
    CHECK(n == 2 && out[0] == 0xfb && out[1] == 0xff, "decode -_8 gives fb ff");
    CHECK_INT(cf_b64url_decode("+/8", 3, out, sizeof out, &n), CF_EINVAL, "standard alphabet + / rejected");

    /* Round trip of every length 0..48 with all byte values. */
    uint8_t in[48];
    bad = 0;
    for (size_t len = 0; len <= sizeof in; len++) {
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)(i * 37 + len * 11 + 255);
        cf_b64url_encode(in, len, txt);
        if (strlen(txt) != cf_b64url_len(len))
            bad++;
        if (cf_b64url_decode(txt, strlen(txt), out, sizeof out, &n) != CF_OK || n != len || memcmp(in, out, len) != 0)
            bad++;
    }
    CHECK_INT(bad, 0, "base64url round trip for lengths 0..48");

    /* Canonical form only. */
    CHECK_INT(cf_b64url_decode("QQ", 2, out, sizeof out, &n), CF_OK, "\"QQ\" (canonical) accepted");
    CHECK(n == 1 && out[0] == 'A', "\"QQ\" decodes to \"A\"");
    CHECK_INT(cf_b64url_decode("QR", 2, out, sizeof out, &n), CF_EINVAL, "\"QR\" (non-zero trailing bits) rejected");
    CHECK_INT(cf_b64url_decode("QUI", 3, out, sizeof out, &n), CF_OK, "\"QUI\" accepted");
    CHECK(n == 2 && out[0] == 'A' && out[1] == 'B', "\"QUI\" decodes to \"AB\"");
    CHECK_INT(cf_b64url_decode("QUJ", 3, out, sizeof out, &n), CF_EINVAL, "\"QUJ\" (non-zero trailing bits) rejected");
    CHECK_INT(cf_b64url_decode("Q", 1, out, sizeof out, &n), CF_EINVAL, "length 1 mod 4 rejected");
    CHECK_INT(cf_b64url_decode("Zm9vY", 5, out, sizeof out, &n), CF_EINVAL, "length 5 (1 mod 4) rejected");
    CHECK_INT(cf_b64url_decode("Zg==", 4, out, sizeof out, &n), CF_EINVAL, "padding rejected");
    CHECK_INT(cf_b64url_decode("Zm8=", 4, out, sizeof out, &n), CF_EINVAL, "single padding char rejected");
    CHECK_INT(cf_b64url_decode("Zm 8", 4, out, sizeof out, &n), CF_EINVAL, "space rejected");
    CHECK_INT(cf_b64url_decode("Zm.8", 4, out, sizeof out, &n), CF_EINVAL, "'.' rejected");
    CHECK_INT(cf_b64url_decode("Zm\n8", 4, out, sizeof out, &n), CF_EINVAL, "newline rejected");
    CHECK_INT(cf_b64url_decode("Zm9v", 4, out, 2, &n), CF_EINVAL, "output too small rejected");
    CHECK_INT(cf_b64url_decode("Zm9v", 4, out, 3, &n), CF_OK, "exactly fitting output accepted");
}

static void test_parse_u64(void)
{
    uint64_t v = 12345;
    CHECK_INT(cf_parse_u64("0", 1, UINT64_MAX, &v), CF_OK, "\"0\" accepted");
    CHECK(v == 0, "\"0\" is 0");
    CHECK_INT(cf_parse_u64("18446744073709551615", 20, UINT64_MAX, &v), CF_OK, "UINT64_MAX accepted");
    CHECK(v == UINT64_MAX, "\"18446744073709551615\" is UINT64_MAX");
    CHECK_INT(cf_parse_u64("42", 2, 100, &v), CF_OK, "42 accepted");
    CHECK(v == 42, "\"42\" is 42");
    CHECK_INT(cf_parse_u64("100", 3, 100, &v), CF_OK, "value equal to max accepted");
    v = 7;
    CHECK_INT(cf_parse_u64("101", 3, 100, &v), CF_EINVAL, "value over max rejected");
    CHECK(v == 7, "rejected parse leaves the output alone");
    CHECK_INT(cf_parse_u64("", 0, UINT64_MAX, &v), CF_EINVAL, "empty rejected");
    CHECK_INT(cf_parse_u64("-1", 2, UINT64_MAX, &v), CF_EINVAL, "\"-1\" rejected");
    CHECK_INT(cf_parse_u64("+1", 2, UINT64_MAX, &v), CF_EINVAL, "\"+1\" rejected");
    CHECK_INT(cf_parse_u64(" 1", 2, UINT64_MAX, &v), CF_EINVAL, "\" 1\" rejected");
    CHECK_INT(cf_parse_u64("1 ", 2, UINT64_MAX, &v), CF_EINVAL, "\"1 \" rejected");
    CHECK_INT(cf_parse_u64("18446744073709551616", 20, UINT64_MAX, &v), CF_EINVAL, "UINT64_MAX + 1 rejected");
    CHECK_INT(cf_parse_u64("18446744073709551620", 20, UINT64_MAX, &v), CF_EINVAL, "UINT64_MAX + 5 rejected");
    CHECK_INT(cf_parse_u64("99999999999999999999", 20, UINT64_MAX, &v), CF_EINVAL, "20 nines rejected");
    CHECK_INT(cf_parse_u64("184467440737095516150", 21, UINT64_MAX, &v), CF_EINVAL, "21 digits rejected");
    CHECK_INT(cf_parse_u64("1a", 2, UINT64_MAX, &v), CF_EINVAL, "\"1a\" rejected");
    CHECK_INT(cf_parse_u64("0x10", 4, UINT64_MAX, &v), CF_EINVAL, "\"0x10\" rejected");
    /* Only n bytes are read: "12" out of "123". */
    CHECK_INT(cf_parse_u64("123", 2, UINT64_MAX, &v), CF_OK, "prefix of length 2 accepted");
    CHECK(v == 12, "only n bytes are parsed");
}

static void test_ids(void)
{
    struct cf_id id, back;
    char hex[CF_ID_HEX_LEN + 1];
    static const char good[] = "00112233445566778899aabbccddeeff";
    CHECK_INT(cf_id_parse(good, 32, &id), CF_OK, "32 lower-case hex digits accepted");
    CHECK(id.b[0] == 0x00 && id.b[1] == 0x11 && id.b[15] == 0xff, "id bytes parsed in order");
    cf_id_hex(&id, hex);
    CHECK_STR(hex, good, "cf_id_hex renders the same digits");
    CHECK_INT(cf_id_parse("00112233445566778899AABBCCDDEEFF", 32, &back), CF_EINVAL, "upper-case id rejected");
    CHECK_INT(cf_id_parse("00112233445566778899aabbccddeeF", 31, &back), CF_EINVAL, "31 chars rejected");
    CHECK_INT(cf_id_parse(good, 31, &back), CF_EINVAL, "31 lower-case digits rejected");
    CHECK_INT(cf_id_parse("00112233445566778899aabbccddeeff0", 33, &back), CF_EINVAL, "33 chars rejected");
    CHECK_INT(cf_id_parse("00112233445566778899aabbccddeefg", 32, &back), CF_EINVAL, "non-hex char rejected");
    CHECK_INT(cf_id_parse("", 0, &back), CF_EINVAL, "empty id rejected");

    struct cf_id a, b, zero;
    memset(&zero, 0, sizeof zero);
    cf_id_new(&a);
    cf_id_new(&b);
    CHECK(!cf_id_is_zero(&a), "a new id is not zero");
    CHECK(cf_id_is_zero(&zero), "the zero id is zero");
    CHECK(!cf_id_equal(&a, &b), "two new ids differ");
    CHECK(cf_id_equal(&a, &a), "an id equals itself");
    cf_id_hex(&a, hex);
    CHECK_INT(cf_id_parse(hex, strlen(hex), &back), CF_OK, "a rendered id parses");
    CHECK(cf_id_equal(&a, &back), "id hex round trip");
}

static void test_deadline(void)
{
    /* Normalised whatever the sum of nanoseconds; never before now, at most ns after it. */
    const uint64_t steps[] = {0, 1, 999999999u, 1000000000u, 1500000000u, 3000000000u, 250000000u};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct timespec before, d, after;
        clock_gettime(CLOCK_MONOTONIC, &before);
        cf_deadline(CLOCK_MONOTONIC, steps[i], &d);
        clock_gettime(CLOCK_MONOTONIC, &after);
        CHECK(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L, "deadline: tv_nsec normalised");
        int64_t lo = (int64_t)before.tv_sec * 1000000000 + before.tv_nsec + (int64_t)steps[i];
        int64_t hi = (int64_t)after.tv_sec * 1000000000 + after.tv_nsec + (int64_t)steps[i];
        int64_t got = (int64_t)d.tv_sec * 1000000000 + d.tv_nsec;
        CHECK(got >= lo && got <= hi, "deadline: now + ns");
    }
}

static void test_time_and_misc(void)
{
    char out[32];
    cf_time_rfc3339(0, out);
    CHECK_STR(out, "1970-01-01T00:00:00.000Z", "rfc3339(0)");
    cf_time_rfc3339(1700000000123ull, out);
    CHECK_STR(out, "2023-11-14T22:13:20.123Z", "rfc3339(1700000000123)");
    cf_time_rfc3339(951782400000ull, out);
    CHECK_STR(out, "2000-02-29T00:00:00.000Z", "rfc3339 on a leap day");
    cf_time_rfc3339(253402300799999ull, out);
    CHECK_STR(out, "9999-12-31T23:59:59.999Z", "rfc3339 at the end of year 9999");
    cf_time_rfc3339(1005ull, out);
    CHECK_STR(out, "1970-01-01T00:00:01.005Z", "milliseconds are zero-padded");

    uint64_t now = cf_now_ms();
    CHECK(now > 1600000000000ull && now < 4102444800000ull, "cf_now_ms is a plausible epoch time in ms");

    CHECK_STR(cf_status_name(CF_OK), "ok", "status name ok");
    CHECK_STR(cf_status_name(CF_ECORRUPT), "corrupt", "status name corrupt");
    CHECK_STR(cf_status_name(CF_EBUSY), "busy", "status name busy");
    CHECK_STR(cf_status_name(CF_STATUS_COUNT), "internal", "out-of-range status is internal");
    int unnamed = 0;
    for (int i = 0; i < CF_STATUS_COUNT; i++)
        if (strcmp(cf_status_name((enum cf_status)i), "internal") == 0)
            unnamed++;
    CHECK_INT(unnamed, 0, "every status has a name");

    CHECK(cf_ct_equal("abcd", "abcd", 4), "ct_equal on equal buffers");
    CHECK(!cf_ct_equal("abcd", "abce", 4), "ct_equal on different buffers");
    CHECK(cf_ct_streq("$argon2id$x", "$argon2id$x") && !cf_ct_streq("$argon2id$x", "$argon2id$y") &&
              !cf_ct_streq("$argon2id$x", "$argon2id$xx") && !cf_ct_streq("", "a") && cf_ct_streq("", ""),
          "ct_streq: equal strings only, whatever their lengths");

    uint8_t buf[16];
    memset(buf, 0x5a, sizeof buf);
    cf_wipe(buf, sizeof buf);
    CHECK(all_zero(buf, sizeof buf), "cf_wipe zeroes");
    cf_wipe(NULL, 10); /* must not crash */
    cf_free_secret(NULL, 10);

    char *s = cf_xasprintf("%s-%d", "x", 42);
    CHECK_STR(s, "x-42", "cf_xasprintf formats");
    free(s);
    s = cf_xstrndup("abcdef", 3);
    CHECK_STR(s, "abc", "cf_xstrndup copies n bytes");
    free(s);
}

int main(void)
{
    test_hkdf();
    test_gcm_vectors();
    test_gcm_roundtrip();
    test_hmac();
    test_hashes();
    test_hex();
    test_b64url();
    test_b64();
    test_parse_u64();
    test_ids();
    test_time_and_misc();
    test_deadline();
    return tap_done();
}
