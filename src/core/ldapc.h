/*
 * ldapc.h: the directory client (issue 23): a thin, blocking wrapper over OpenLDAP's libldap for the
 * two things Coffer asks of a directory: reading its users and groups (the sync, src/ops/directory.c)
 * and checking a directory user's password by a simple bind (sign-in, src/api/auth.c).
 *
 * Every connection is TLS (ldaps://, or ldap:// with StartTLS) with the server's certificate checked
 * against directory.ca, unless the operator set allow_plaintext; referrals are not chased; every
 * operation has the configured network timeout. Calls block: worker threads, the sync's thread or the
 * CLI only, never an event loop. libldap is thread-safe per handle; a handle is used by one thread.
 * Passwords are never logged, never stored, and the caller's copy is the caller's to wipe.
 */
#ifndef CF_LDAPC_H
#define CF_LDAPC_H

#include <stdbool.h>
#include <stddef.h>

#include "base.h"
#include "config.h"

#define CF_LDAP_PAGE 500 /* entries per page of a paged search (RFC 2696) */

struct cf_ldap;       /* one connection, bound as the service account */
struct cf_ldap_entry; /* one entry of a search, valid during its callback */

/* cf_ldap_open(cfg, out, err): connects to directory.url (TLS as configured) and binds as
 * directory.bind_dn (anonymous if none). CF_EUNAVAIL with a malloc'ed reason in *err (the server
 * cannot be reached, TLS fails, the service bind is refused); never logs the password. */
enum cf_status cf_ldap_open(const struct cf_config *cfg, struct cf_ldap **out, char **err) CF_WUR;
/* cf_ldap_close(l): unbinds and frees; NULL is ignored. */
void cf_ldap_close(struct cf_ldap *l);

/* cf_ldap_search(l, base, filter, attrs, cb, ctx, err): a subtree search of base with the paged
 * results control, calling cb(ctx, l, e) for every entry (a non-zero return stops the search with
 * CF_EINVAL). attrs is NULL-terminated. CF_OK once every page was read; CF_EUNAVAIL (with *err) if
 * the directory failed part-way: the caller must then treat what it saw as incomplete. */
enum cf_status cf_ldap_search(struct cf_ldap *l, const char *base, const char *filter, const char *const *attrs,
                              int (*cb)(void *ctx, struct cf_ldap *l, struct cf_ldap_entry *e), void *ctx,
                              char **err) CF_WUR;
/* cf_ldap_entry_dn(e): the entry's DN (borrowed, valid during the callback). */
const char *cf_ldap_entry_dn(const struct cf_ldap_entry *e);
/* cf_ldap_entry_value(l, e, attr): the first value of attr as a malloc'ed string, or NULL if it has
 * none or the value holds a NUL byte. */
char *cf_ldap_entry_value(struct cf_ldap *l, struct cf_ldap_entry *e, const char *attr);
/* cf_ldap_entry_values(l, e, attr, out): every value of attr (malloc'ed strings in a malloc'ed
 * array; values holding a NUL byte are skipped); returns the count (0: *out NULL). */
size_t cf_ldap_entry_values(struct cf_ldap *l, struct cf_ldap_entry *e, const char *attr, char ***out);

/* cf_ldap_filter_escape(s): s escaped for use as an assertion value in a filter (RFC 4515 §3:
 * '*', '(', ')', '\' and NUL as \XX), malloc'ed. */
char *cf_ldap_filter_escape(const char *s);

/* cf_ldap_dn_below(dn, base, ous, n): whether dn lies strictly below base (compared RDN by RDN,
 * attribute types and values case-insensitively); if so, *ous gets the values of the `ou` RDNs between
 * them, outermost first, not counting dn's own RDN (malloc'ed strings in a malloc'ed array; *n may
 * be 0 and *ous NULL). */
bool cf_ldap_dn_below(const char *dn, const char *base, char ***ous, size_t *n);
/* cf_ldap_dn_norm(dn): dn in a canonical form (RFC 4514 string, ASCII lower case), malloc'ed; a
 * copy of dn, lower-cased, if it does not parse. For comparing DNs (group members). */
char *cf_ldap_dn_norm(const char *dn);
/* cf_ldap_dn_equal(a, b): the two DNs name the same entry (normalised comparison). */
bool cf_ldap_dn_equal(const char *a, const char *b);

/* The outcome of a sign-in by directory bind. */
enum cf_ldap_login {
    CF_LDAP_LOGIN_OK,          /* the directory accepted the password */
    CF_LDAP_LOGIN_DENIED,      /* wrong password, no such (enabled) entry, or another entry than expected */
    CF_LDAP_LOGIN_UNAVAILABLE, /* the directory could not be asked: the answer is unknown */
};
/* cf_ldap_login(cfg, username, expect_id, pw, n): finds the one entry with directory.users.username
 * = username under users.base that matches users.filter and not users.disabled (as the service
 * account), checks that its entryUUID (else its DN) is expect_id when expect_id is not NULL, then
 * binds as its DN with pw[0..n). An empty password is refused before any bind (RFC 4513 §5.1.2: an
 * empty password is an unauthenticated bind, which "succeeds"). Blocking; worker threads only. */
enum cf_ldap_login cf_ldap_login(const struct cf_config *cfg, const char *username, const char *expect_id,
                                 const char *pw, size_t n);
/* cf_ldap_login_decoy(cfg, username, pw, n): what cf_ldap_login costs, for a name that is no directory
 * user (unknown, or a local account): the same checks of pw, connection, service bind and search for
 * username, then one bind to a DN that names no entry (a random RDN below users.base) with a random
 * password of n bytes. pw itself is never sent. Never CF_LDAP_LOGIN_OK. cf_ldap_login makes the same
 * decoy bind when its search finds no entry, or another than expected, so every path binds once. */
enum cf_ldap_login cf_ldap_login_decoy(const struct cf_config *cfg, const char *username, const char *pw, size_t n);

#endif
