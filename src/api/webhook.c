/*
 * webhook.c: a tenant's alert webhook: each alert event is POSTed as JSON to the tenant's https URL.
 *
 * The URL is set by a tenant admin, so it is treated as hostile input (SSRF): https only, the
 * certificate and host name are verified (system CAs, plus one CA the tenant may supply), and
 * loopback, private, link-local and unspecified addresses are refused unless the operator allows
 * them (audit.webhook_allow_private). No redirects are followed; every step has a 5 s timeout.
 * Deliveries run on worker threads (cf_work_background), one attempt each; failures are logged.
 */
#include "webhook.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "work.h"

#define TIMEOUT_S 5
#define URL_MAX 2048

struct url {
    char host[256];
    char port[8];
    char path[URL_MAX];
};

static bool parse_url(const char *u, struct url *out)
{
    size_t n = strlen(u);
    if (n > URL_MAX - 1 || strncmp(u, "https://", 8) != 0)
        return false;
    const char *h = u + 8, *slash = strchr(h, '/');
    size_t hl = slash != NULL ? (size_t)(slash - h) : strlen(h);
    const char *colon = memchr(h, ':', hl);
    size_t name_len = colon != NULL ? (size_t)(colon - h) : hl;
    if (name_len == 0 || name_len >= sizeof out->host || memchr(h, '@', hl) != NULL)
        return false;
    memcpy(out->host, h, name_len);
    out->host[name_len] = '\0';
    for (size_t i = 0; i < name_len; i++) {
        char c = out->host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
            return false; /* names and IPv4 only; no spaces, no userinfo, no percent tricks */
    }
    if (colon != NULL) {
        size_t pl = hl - name_len - 1;
        uint64_t port;
        if (pl == 0 || pl >= sizeof out->port || cf_parse_u64(colon + 1, pl, 65535, &port) != CF_OK || port == 0)
            return false;
        memcpy(out->port, colon + 1, pl);
        out->port[pl] = '\0';
    } else {
        snprintf(out->port, sizeof out->port, "443");
    }
    const char *path = slash != NULL ? slash : "/";
    for (const char *p = path; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    snprintf(out->path, sizeof out->path, "%s", path);
    return true;
}

bool cf_webhook_url_ok(const char *url)
{
    struct url u;
    return parse_url(url, &u);
}

static bool private_address(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);
        return (a >> 24) == 127 || (a >> 24) == 10 || (a >> 24) == 0 || (a >> 20) == 0xac1 /* 172.16/12 */ ||
               (a >> 16) == 0xc0a8 /* 192.168/16 */ || (a >> 16) == 0xa9fe /* 169.254/16 */ ||
               (a >> 22) == 0x191 /* 100.64/10 */ || a >= 0xe0000000u /* multicast, reserved */;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
               IN6_IS_ADDR_V4MAPPED(a) || (a->s6_addr[0] & 0xfe) == 0xfc /* fc00::/7 */ || IN6_IS_ADDR_MULTICAST(a);
    }
    return true;
}

static int connect_to(const struct url *u, bool allow_private)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(u->host, u->port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (!allow_private && private_address(ai->ai_addr)) {
            cf_log_warn("webhook: refusing a private or loopback address (audit.webhook_allow_private is off)");
            continue;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = TIMEOUT_S};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* One delivery; returns the HTTP status, or 0 on a transport failure. */
static int post(const char *url, const char *ca_pem, const char *body, bool allow_private)
{
    struct url u;
    int status = 0;
    if (!parse_url(url, &u))
        return 0;
    int fd = connect_to(&u, allow_private);
    if (fd < 0)
        return 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    if (ctx == NULL)
        goto out;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_default_verify_paths(ctx);
    if (ca_pem != NULL) {
        BIO *bio = BIO_new_mem_buf(ca_pem, -1);
        X509 *x;
        while (bio != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
            X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x);
            X509_free(x);
        }
        BIO_free(bio);
    }
    if ((ssl = SSL_new(ctx)) == NULL)
        goto out;
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, u.host);
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    struct in_addr ip4;
    if (inet_pton(AF_INET, u.host, &ip4) == 1)
        X509_VERIFY_PARAM_set1_ip_asc(param, u.host);
    else
        X509_VERIFY_PARAM_set1_host(param, u.host, 0);
    if (SSL_connect(ssl) != 1) {
        cf_log_warn("webhook: TLS handshake with the tenant's webhook failed (certificate not trusted?)");
        goto out;
    }
    char *req = cf_xasprintf("POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: coffer-webhook\r\n"
                             "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                             u.path, u.host, strlen(body), body);
    int n = (int)strlen(req);
    bool sent = SSL_write(ssl, req, n) == n;
    free(req);
    char resp[64];
    int got = sent ? SSL_read(ssl, resp, sizeof resp - 1) : 0;
    if (got > 12 && strncmp(resp, "HTTP/1.", 7) == 0) {
        uint64_t code;
        if (cf_parse_u64(resp + 9, 3, 999, &code) == CF_OK)
            status = (int)code;
    }
out:
    if (ssl != NULL) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    SSL_CTX_free(ctx);
    ERR_clear_error();
    close(fd);
    return status;
}

struct delivery {
    char *url, *ca, *body;
    bool allow_private;
};

static void deliver(void *arg)
{
    struct delivery *d = arg;
    int status = post(d->url, d->ca, d->body, d->allow_private);
    if (status < 200 || status > 299)
        cf_log_warn("webhook: delivery of an alert failed (status %d)", status);
    free(d->url);
    free(d->ca);
    free(d->body);
    free(d);
}

void cf_webhook_send(const char *url, const char *ca_pem, const char *json, bool allow_private)
{
    struct delivery *d = cf_xcalloc(1, sizeof *d);
    d->url = cf_xstrdup(url);
    d->ca = ca_pem != NULL ? cf_xstrdup(ca_pem) : NULL;
    d->body = cf_xstrdup(json);
    d->allow_private = allow_private;
    cf_work_background(deliver, d);
}
