/*
 * crypto.c: AES-256-GCM, HKDF-SHA256, HMAC-SHA256 and SHA-256 over OpenSSL 3 (see crypto.h).
 * A cipher context is created per call: the cost (~0.3 µs) is noise next to a RocksDB read, and it
 * keeps every function free of shared state.
 */
#include "crypto.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <pthread.h>
#include <string.h>

static const char hkdf_salt[] = "coffer-hkdf-v1";

void cf_key_wipe(struct cf_key *k)
{
    cf_wipe(k->k, sizeof k->k);
}

void cf_key_random(struct cf_key *k)
{
    cf_random(k->k, sizeof k->k);
}

enum cf_status cf_aead_seal(const struct cf_key *key, const void *aad, size_t aad_len, const void *pt, size_t n,
                            uint8_t *out)
{
    enum cf_status st = CF_ECRYPTO;
    int len;
    if (n > INT32_MAX || aad_len > INT32_MAX)
        return CF_EINVAL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        goto err0;
    cf_random(out, CF_NONCE_LEN);
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->k, out) != 1)
        goto err1;
    if (aad_len > 0 && EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aad_len) != 1)
        goto err1;
    if (n > 0 && EVP_EncryptUpdate(ctx, out + CF_NONCE_LEN, &len, pt, (int)n) != 1)
        goto err1;
    if (EVP_EncryptFinal_ex(ctx, out + CF_NONCE_LEN + n, &len) != 1)
        goto err1;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CF_TAG_LEN, out + CF_NONCE_LEN + n) != 1)
        goto err1;
    st = CF_OK;
err1:
    EVP_CIPHER_CTX_free(ctx);
err0:
    ERR_clear_error();
    return st;
}

enum cf_status cf_aead_open(const struct cf_key *key, const void *aad, size_t aad_len, const uint8_t *in,
                            size_t in_len, uint8_t *out)
{
    enum cf_status st = CF_ECRYPTO;
    int len;
    if (in_len < CF_SEAL_OVERHEAD)
        return CF_ECORRUPT;
    size_t n = in_len - CF_SEAL_OVERHEAD;
    if (n > INT32_MAX || aad_len > INT32_MAX)
        return CF_EINVAL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        goto err0;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->k, in) != 1)
        goto err1;
    if (aad_len > 0 && EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aad_len) != 1)
        goto err1;
    if (n > 0 && EVP_DecryptUpdate(ctx, out, &len, in + CF_NONCE_LEN, (int)n) != 1)
        goto err1;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CF_TAG_LEN, (void *)(in + CF_NONCE_LEN + n)) != 1)
        goto err1;
    if (EVP_DecryptFinal_ex(ctx, out + n, &len) != 1) {
        /* Authentication failed: release nothing. */
        cf_wipe(out, n);
        st = CF_ECORRUPT;
        goto err1;
    }
    st = CF_OK;
err1:
    EVP_CIPHER_CTX_free(ctx);
err0:
    ERR_clear_error();
    return st;
}

enum cf_status cf_hkdf_raw(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len, const void *info,
                           size_t info_len, uint8_t *out, size_t out_len)
{
    enum cf_status st = CF_ECRYPTO;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (kdf == NULL)
        goto err0;
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    if (kctx == NULL)
        goto err1;
    /* An empty salt or info is left out rather than passed as (NULL, 0), which OpenSSL 3.0 rejects;
     * without a salt HKDF uses HashLen zero bytes (RFC 5869 §2.2), the same as an empty one. */
    OSSL_PARAM params[5];
    size_t np = 0;
    params[np++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[np++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    if (salt_len > 0)
        params[np++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    if (info_len > 0)
        params[np++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    params[np] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, out_len, params) != 1)
        goto err2;
    st = CF_OK;
err2:
    EVP_KDF_CTX_free(kctx);
err1:
    EVP_KDF_free(kdf);
err0:
    ERR_clear_error();
    return st;
}

enum cf_status cf_hkdf(const void *ikm, size_t ikm_len, const char *info, struct cf_key *out)
{
    return cf_hkdf_raw(hkdf_salt, sizeof hkdf_salt - 1, ikm, ikm_len, info, strlen(info), out->k, sizeof out->k);
}

/* The HMAC implementation, fetched once: a fetch takes a lock and a property lookup, about half the
 * cost of a short HMAC, and every write batch computes several (storage/journal.c). */
static EVP_MAC *hmac_alg;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

void cf_hmac2_sha256(const struct cf_key *key, const void *a, size_t an, const void *b, size_t bn,
                     uint8_t out[CF_SHA256_LEN])
{
    pthread_once(&hmac_once, hmac_fetch);
    EVP_MAC_CTX *ctx = hmac_alg != NULL ? EVP_MAC_CTX_new(hmac_alg) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t len = 0;
    if (ctx == NULL || EVP_MAC_init(ctx, key->k, sizeof key->k, params) != 1 || EVP_MAC_update(ctx, a, an) != 1 ||
        EVP_MAC_update(ctx, b, bn) != 1 || EVP_MAC_final(ctx, out, &len, CF_SHA256_LEN) != 1 || len != CF_SHA256_LEN) {
        /* Only an allocation failure inside OpenSSL can get here; treat it like our own OOM. */
        cf_storage_log(CF_LOG_ERROR, "HMAC-SHA256 failed");
        abort();
    }
    EVP_MAC_CTX_free(ctx);
}

void cf_hmac_sha256(const struct cf_key *key, const void *msg, size_t n, uint8_t out[CF_SHA256_LEN])
{
    cf_hmac2_sha256(key, msg, n, "", 0, out);
}

void cf_sha256(const void *msg, size_t n, uint8_t out[CF_SHA256_LEN])
{
    unsigned len = 0;
    if (EVP_Digest(msg, n, out, &len, EVP_sha256(), NULL) != 1 || len != CF_SHA256_LEN) {
        cf_storage_log(CF_LOG_ERROR, "SHA-256 failed");
        abort();
    }
}

struct cf_hash {
    EVP_MD_CTX *ctx; /* owned */
};

struct cf_hash *cf_hash_new(enum cf_hash_alg alg)
{
    struct cf_hash *h = cf_xmalloc(sizeof *h);
    h->ctx = EVP_MD_CTX_new();
    if (h->ctx == NULL || EVP_DigestInit_ex(h->ctx, alg == CF_HASH_SHA1 ? EVP_sha1() : EVP_sha256(), NULL) != 1) {
        cf_storage_log(CF_LOG_ERROR, "digest init failed");
        abort();
    }
    return h;
}

void cf_hash_update(struct cf_hash *h, const void *p, size_t n)
{
    if (n > 0 && EVP_DigestUpdate(h->ctx, p, n) != 1) {
        cf_storage_log(CF_LOG_ERROR, "digest update failed");
        abort();
    }
}

size_t cf_hash_final(struct cf_hash *h, uint8_t *out)
{
    unsigned len = 0;
    if (EVP_DigestFinal_ex(h->ctx, out, &len) != 1) {
        cf_storage_log(CF_LOG_ERROR, "digest final failed");
        abort();
    }
    return len;
}

struct cf_hash *cf_hash_copy(const struct cf_hash *h)
{
    struct cf_hash *c = cf_xmalloc(sizeof *c);
    c->ctx = EVP_MD_CTX_new();
    if (c->ctx == NULL || EVP_MD_CTX_copy_ex(c->ctx, h->ctx) != 1) {
        cf_storage_log(CF_LOG_ERROR, "digest copy failed");
        abort();
    }
    return c;
}

void cf_hash_free(struct cf_hash *h)
{
    if (h == NULL)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}
