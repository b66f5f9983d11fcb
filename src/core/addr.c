/*
 * addr.c: client address keys (see addr.h).
 */
#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#define ZONE_TEXT_MAX 64 /* longest address text accepted with a %zone (INET6_ADDRSTRLEN is 46) */

/* The key of a raw IPv4 address (4 bytes) or IPv6 address (16 bytes, family 6). */
static void key_of(int family, const uint8_t *a, uint8_t key[CF_ADDR_KEY_LEN])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(key, 0, CF_ADDR_KEY_LEN);
    if (family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, a, 4);
    } else if (memcmp(a, mapped, sizeof mapped) == 0) {
        /* RFC 4291 §2.5.5.2: an IPv4 client reaching a dual-stack socket. */
        key[0] = 4;
        memcpy(key + 1, a + 12, 4);
    } else {
        key[0] = 6;
        memcpy(key + 1, a, 8);
    }
}

void cf_addr_key(const struct sockaddr *sa, socklen_t len, uint8_t key[CF_ADDR_KEY_LEN])
{
    if (len >= (socklen_t)sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        key_of(AF_INET, (const uint8_t *)&in->sin_addr, key);
    } else if (len >= (socklen_t)sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        key_of(AF_INET6, in6->sin6_addr.s6_addr, key);
    } else {
        memset(key, 0, CF_ADDR_KEY_LEN);
    }
}

bool cf_addr_key_text(const char *ip, uint8_t key[CF_ADDR_KEY_LEN])
{
    uint8_t a[16];
    memset(key, 0, CF_ADDR_KEY_LEN);
    if (strchr(ip, ':') == NULL) {
        if (inet_pton(AF_INET, ip, a) != 1)
            return false;
        key_of(AF_INET, a, key);
        return true;
    }
    /* getnameinfo writes a link-local address's scope as "%zone": not part of the address. */
    char buf[ZONE_TEXT_MAX];
    const char *pct = strchr(ip, '%');
    if (pct != NULL) {
        size_t n = (size_t)(pct - ip);
        if (n >= sizeof buf || pct[1] == '\0')
            return false;
        memcpy(buf, ip, n);
        buf[n] = '\0';
        ip = buf;
    }
    if (inet_pton(AF_INET6, ip, a) != 1)
        return false;
    key_of(AF_INET6, a, key);
    return true;
}
