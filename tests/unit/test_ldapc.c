/*
 * test_ldapc.c: the pure parts of the directory client (src/core/ldapc.c): filter escaping (RFC
 * 4515), the ou chain of a DN below a base (the sync's department path), DN comparison and
 * canonical form, and the empty-password refusal of a sign-in, which must not reach the network.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ldapc.h"
#include "tap.h"

static void test_escape(void)
{
    char *e = cf_ldap_filter_escape("a*b(c)d\\e");
    CHECK_STR(e, "a\\2ab\\28c\\29d\\5ce", "* ( ) \\ escaped as \\XX");
    free(e);
    e = cf_ldap_filter_escape("alice.smith@example-1_x");
    CHECK_STR(e, "alice.smith@example-1_x", "a username's own characters pass through");
    free(e);
    e = cf_ldap_filter_escape("x\x01y");
    CHECK_STR(e, "x\\01y", "control characters escaped");
    free(e);
}

static void test_below(void)
{
    char **ous;
    size_t n;
    const char *base = "ou=people,dc=example,dc=org";
    CHECK(cf_ldap_dn_below("uid=u1,ou=Storage,ou=Platform,ou=Engineering,ou=people,dc=example,dc=org", base, &ous, &n),
          "below the base");
    CHECK_INT((long)n, 3L, "three ous between");
    if (n == 3) {
        CHECK_STR(ous[0], "Engineering", "outermost first");
        CHECK_STR(ous[1], "Platform", "then the middle");
        CHECK_STR(ous[2], "Storage", "innermost last");
    }
    for (size_t i = 0; i < n; i++)
        free(ous[i]);
    free(ous);
    CHECK(cf_ldap_dn_below("UID=u1,OU=People,DC=Example,DC=org", base, &ous, &n), "case-insensitive RDNs");
    CHECK_INT((long)n, 0L, "directly below: no department");
    CHECK(ous == NULL, "no array");
    CHECK(!cf_ldap_dn_below("ou=people,dc=example,dc=org", base, &ous, &n), "the base itself is not below it");
    CHECK(!cf_ldap_dn_below("uid=x,ou=other,dc=example,dc=org", base, &ous, &n), "another subtree");
    CHECK(!cf_ldap_dn_below("not a dn", base, &ous, &n), "garbage");
    CHECK(cf_ldap_dn_below("uid=x,cn=box,ou=Sales\\2C EMEA,ou=people,dc=example,dc=org", base, &ous, &n),
          "escaped comma, non-ou RDN");
    CHECK_INT((long)n, 1L, "only ou RDNs count");
    if (n == 1)
        CHECK_STR(ous[0], "Sales, EMEA", "the value unescaped");
    for (size_t i = 0; i < n; i++)
        free(ous[i]);
    free(ous);
}

static void test_dn_equal(void)
{
    CHECK(cf_ldap_dn_equal("uid=a,ou=X,dc=example,dc=org", "UID=a, OU=x,DC=example,DC=org"), "same entry");
    CHECK(!cf_ldap_dn_equal("uid=a,ou=X,dc=example,dc=org", "uid=b,ou=X,dc=example,dc=org"), "another entry");
    char *a = cf_ldap_dn_norm("UID=a, OU=X,DC=example,DC=org"), *b = cf_ldap_dn_norm("uid=a,ou=x,dc=example,dc=org");
    CHECK_STR(a, b, "canonical forms agree");
    free(a);
    free(b);
}

static void test_empty_password(void)
{
    /* No directory listens on port 1: were a bind attempted, the answer would be UNAVAILABLE. */
    struct cf_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.directory.enabled = true;
    cfg.directory.url = (char *)"ldaps://127.0.0.1:1";
    cfg.directory.user_base = (char *)"ou=people,dc=example,dc=org";
    cfg.directory.user_filter = (char *)"(objectClass=inetOrgPerson)";
    cfg.directory.user_username = (char *)"uid";
    cfg.directory.timeout_s = 2;
    CHECK(cf_ldap_login(&cfg, "alice", NULL, "", 0) == CF_LDAP_LOGIN_DENIED, "empty password: denied before any bind");
    CHECK(cf_ldap_login(&cfg, "alice", NULL, "a\0b", 3) == CF_LDAP_LOGIN_DENIED, "NUL in the password: denied");
    CHECK(cf_ldap_login(&cfg, "alice", NULL, "secret-1", 8) == CF_LDAP_LOGIN_UNAVAILABLE,
          "a real password against no directory: unavailable, not denied");
    /* The decoy (an unknown name's sign-in) checks the password alike and asks the directory alike. */
    CHECK(cf_ldap_login_decoy(&cfg, "alice", "", 0) == CF_LDAP_LOGIN_DENIED, "decoy, empty password: denied");
    CHECK(cf_ldap_login_decoy(&cfg, "alice", "a\0b", 3) == CF_LDAP_LOGIN_DENIED, "decoy, NUL: denied");
    CHECK(cf_ldap_login_decoy(&cfg, "alice", "secret-1", 8) == CF_LDAP_LOGIN_UNAVAILABLE,
          "decoy against no directory: it tried to connect, as a directory user's sign-in does");
}

int main(void)
{
    test_escape();
    test_below();
    test_dn_equal();
    test_empty_password();
    return tap_done();
}
