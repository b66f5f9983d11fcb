/*
 * crypto.h: the only cryptographic primitives Coffer uses, as thin checked wrappers over OpenSSL 3.
 *
 * - AEAD: AES-256-GCM, 96-bit random nonce per message, 128-bit tag. A sealed message is
 *   nonce ‖ ciphertext ‖ tag (CF_SEAL_OVERHEAD bytes longer than the plaintext). Nothing is ever
 *   released from cf_aead_open unless the tag verified.
 * - HKDF-SHA256 (RFC 5869) to derive independent subkeys for independent purposes.
 * - HMAC-SHA256 for keyed hashes (name indexes, MAC chains), SHA-256 for unkeyed digests.
 *
 * Every function here is thread-safe and may run on any thread. Failures inside OpenSSL are
 * reported as CF_ECRYPTO; the OpenSSL error queue never leaves this module.
 */
#ifndef CF_CRYPTO_H
#define CF_CRYPTO_H

#include "base.h"

#define CF_KEY_LEN 32
#define CF_NONCE_LEN 12
#define CF_TAG_LEN 16
#define CF_SEAL_OVERHEAD (CF_NONCE_LEN + CF_TAG_LEN)
#define CF_SHA256_LEN 32
#define CF_SHA1_LEN 20

/* A 256-bit symmetric key. Wipe with cf_key_wipe when done. */
struct cf_key {
    uint8_t k[CF_KEY_LEN];
};
void cf_key_wipe(struct cf_key *k);
void cf_key_random(struct cf_key *k);

/* cf_aead_seal(key, aad, aad_len, pt, n, out): encrypts n bytes of pt with a fresh random nonce into
 * out, which must have room for n + CF_SEAL_OVERHEAD bytes. pt and out must not overlap. */
enum cf_status cf_aead_seal(const struct cf_key *key, const void *aad, size_t aad_len, const void *pt, size_t n,
                            uint8_t *out) CF_WUR;

/* cf_aead_open(key, aad, aad_len, in, in_len, out): verifies and decrypts a sealed message into out
 * (in_len - CF_SEAL_OVERHEAD bytes). Returns CF_ECORRUPT if in is too short or fails
 * authentication; out is wiped in that case. */
enum cf_status cf_aead_open(const struct cf_key *key, const void *aad, size_t aad_len, const uint8_t *in,
                            size_t in_len, uint8_t *out) CF_WUR;

/* cf_hkdf(ikm, ikm_len, info, out): HKDF-SHA256 with the fixed salt "coffer-hkdf-v1" and the given
 * info string (a purpose label), producing one 32-byte key. */
enum cf_status cf_hkdf(const void *ikm, size_t ikm_len, const char *info, struct cf_key *out) CF_WUR;

/* cf_hkdf_raw(salt, salt_len, ikm, ikm_len, info, info_len, out, out_len): the general form, for
 * known-answer tests against RFC 5869. */
enum cf_status cf_hkdf_raw(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len, const void *info,
                           size_t info_len, uint8_t *out, size_t out_len) CF_WUR;

/* cf_hmac_sha256(key, msg, n, out): out = HMAC-SHA256(key, msg). */
void cf_hmac_sha256(const struct cf_key *key, const void *msg, size_t n, uint8_t out[CF_SHA256_LEN]);
/* cf_hmac2_sha256: the HMAC of the concatenation a ‖ b, without building it. */
void cf_hmac2_sha256(const struct cf_key *key, const void *a, size_t an, const void *b, size_t bn,
                     uint8_t out[CF_SHA256_LEN]);

/* cf_sha256(msg, n, out): out = SHA-256(msg). */
void cf_sha256(const void *msg, size_t n, uint8_t out[CF_SHA256_LEN]);

/* Incremental SHA-256 and SHA-1 (SHA-1 only for the tus checksum extension). */
struct cf_hash;
enum cf_hash_alg { CF_HASH_SHA256, CF_HASH_SHA1 };
struct cf_hash *cf_hash_new(enum cf_hash_alg alg);
void cf_hash_update(struct cf_hash *h, const void *p, size_t n);
/* cf_hash_final(h, out): writes the digest (32 or 20 bytes) and returns its length; h is spent
 * (free it). */
size_t cf_hash_final(struct cf_hash *h, uint8_t *out);
void cf_hash_free(struct cf_hash *h);
/* cf_hash_copy(h): an independent copy of the running state (to checksum a tail without ending h). */
struct cf_hash *cf_hash_copy(const struct cf_hash *h);

#endif
