/*
 * addr.h: the key of a client address, for everything that limits clients by address (connections
 * per address in conn.c, failed logins and wrong share codes per address in the throttles).
 *
 * One rule: an IPv4 address is itself; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is that IPv4
 * address; any other IPv6 address is its /64 prefix, because one client (a home line, a VM)
 * routinely holds a whole /64 and could otherwise pick a fresh address for every request. Keys are
 * CF_ADDR_KEY_LEN bytes: a family byte (4 or 6; 0 for an address that could not be read) and the
 * IPv4 address or the first 8 bytes of the IPv6 address, zero-padded, so equal keys mean the same
 * client under the rule and nothing else.
 */
#ifndef CF_ADDR_H
#define CF_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define CF_ADDR_KEY_LEN 9 /* family byte + IPv4 address, or the /64 prefix of an IPv6 address */

/* cf_addr_key(sa, len, key): the key of the socket address sa (len bytes, as from getpeername).
 * Anything that is not a complete AF_INET or AF_INET6 address gets the all-zero key (all such
 * clients share one budget). Never fails. Any thread. */
void cf_addr_key(const struct sockaddr *sa, socklen_t len, uint8_t key[CF_ADDR_KEY_LEN]);

/* cf_addr_key_text(ip, key): the key of a numeric address as text (a request's r->ip: dotted IPv4,
 * or IPv6 in any RFC 4291 form, compressed or not, with an optional %zone, which is ignored).
 * Returns false, with the all-zero key, if ip is not such an address (e.g. "unknown"). Any thread. */
bool cf_addr_key_text(const char *ip, uint8_t key[CF_ADDR_KEY_LEN]);

#endif
