/*
 * tls.h: the server's TLS context: TLS 1.2 and 1.3 only, forward-secret AEAD suites only, ALPN h2
 * and http/1.1 (registered through h2o), no renegotiation, no compression.
 */
#ifndef CF_TLS_H
#define CF_TLS_H

#include <openssl/ssl.h>

/* cf_tls_ctx_new(cert, key, err): a new context, or NULL with a malloc'ed reason in *err. The
 * caller owns the reference. Any thread (used again on SIGHUP to reload the certificate). */
SSL_CTX *cf_tls_ctx_new(const char *cert, const char *key, char **err);

#endif
