/*
 * tls.c: building the TLS server context (see tls.h).
 */
#include "tls.h"

#include <h2o.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "base.h"

/* TLS 1.2: ECDHE key exchange with AEAD ciphers only (forward secrecy, no CBC, no RSA kex). TLS 1.3
 * suites are all AEAD and forward-secret; OpenSSL's default list is kept. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                                    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";

static char *ssl_error(const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return cf_xasprintf("%s%s%s: %s", what, path != NULL ? " " : "", path != NULL ? path : "", buf);
}

SSL_CTX *cf_tls_ctx_new(const char *cert, const char *key, char **err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        *err = ssl_error("cannot create a TLS context", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1) {
        *err = ssl_error("cannot configure TLS ciphers", NULL);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        *err = ssl_error("cannot load the TLS certificate", cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        /* OpenSSL checks the pair as it loads the key: name that case plainly. */
        unsigned long e = ERR_peek_error();
        bool mismatch = ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
        *err = ssl_error(mismatch ? "the TLS key does not match the certificate" : "cannot load the TLS key", key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        *err = ssl_error("the TLS key does not match the certificate", key);
        goto fail;
    }
    /* h2o installs its own ALPN selector; offering http/1.1 too keeps h1-only clients working. */
    h2o_ssl_register_alpn_protocols(ctx, h2o_alpn_protocols);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}
