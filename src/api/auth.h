/*
 * auth.h: passwords (Argon2id), sessions and API tokens (256-bit random, stored as SHA-256), the
 * authentication stage of the pipeline, and the CSRF rule for cookie sessions.
 */
#ifndef CF_AUTH_H
#define CF_AUTH_H

#include <h2o.h>
#include <jansson.h>

#include "base.h"
#include "config.h"
#include "storage.h"

struct cf_req;

#define CF_TOKEN_BYTES 32     /* session tokens, CSRF tokens */
#define CF_TOKEN_TEXT_LEN 43  /* their base64url text */
#define CF_PASSWORD_MIN 8     /* bytes */
#define CF_PASSWORD_MAX 1024  /* bytes: Argon2 takes longer inputs, but nobody types them */
#define CF_SESSION_COOKIE "coffer_session"
#define CF_DEVICE_COOKIE "coffer_device" /* a browser's long-lived device id (login only) */

/* cf_auth_authenticate_or_respond(r, restricted_ok): fills r->who (user, groups, session) from the
 * bearer token or session cookie; answers 401 (no, unknown, expired session; user gone or not
 * active; a session that must enrol TOTP first, unless restricted_ok has CF_SESSION_MFA_ENROL), 403
 * password_change_required (a session that must change its password first, unless restricted_ok
 * has CF_SESSION_PW_CHANGE; checked before enrolment) or 403 (cookie session without a valid
 * X-CSRF-Token on an unsafe method) and returns false otherwise. Loop thread. */
bool cf_auth_authenticate_or_respond(struct cf_req *r, unsigned restricted_ok);
/* cf_auth_session_hash(r, hash): the SHA-256 of the request's session credential (bearer token or
 * session cookie), as cf_auth_authenticate_or_respond would look it up; false if it carries none or a
 * malformed one (answers nothing). Loop thread. */
bool cf_auth_session_hash(struct cf_req *r, uint8_t hash[CF_SHA256_LEN]);
/* cf_auth_member_of(r, tenant): whether the request carries the session cookie of an active user of
 * tenant (internal-only share links; answers nothing). Loop thread. */
bool cf_auth_member_of(struct cf_req *r, const struct cf_id *tenant);
/* What carries a request's credential. */
enum cf_cred { CF_CRED_NONE, CF_CRED_BEARER, CF_CRED_COOKIE, CF_CRED_MALFORMED };
/* cf_auth_credential(r, cookie, tok): the request's `Authorization: Bearer` token, else the value
 * of the cookie called `cookie` (the session's, or a share link's); an Authorization header of
 * another scheme is CF_CRED_MALFORMED (the cookie is then not looked at). *tok points into the
 * request. Loop thread. */
enum cf_cred cf_auth_credential(struct cf_req *r, const char *cookie, h2o_iovec_t *tok);

/* cf_cookie_find(c, n, name, val, vlen): the value of the first cookie called name in one Cookie
 * header value c[0..n) ("a=1; name=v"), pointing into c; false if there is none. Pure, any thread. */
bool cf_cookie_find(const char *c, size_t n, const char *name, const char **val, size_t *vlen);
/* cf_auth_token_hash(tok, n, hash): SHA-256 of a token given as its text; false if malformed. */
bool cf_auth_token_hash(const char *tok, size_t n, uint8_t hash[CF_SHA256_LEN]);
/* cf_auth_new_token(out, hash): a fresh token's text and its SHA-256. */
void cf_auth_new_token(char out[CF_TOKEN_TEXT_LEN + 1], uint8_t hash[CF_SHA256_LEN]);

/* cf_auth_hash_password(cfg, pw, n, out): a new Argon2id encoded hash with the configured cost.
 * Slow (tens of ms): worker threads or the CLI only. */
enum cf_status cf_auth_hash_password(const struct cf_config *cfg, const char *pw, size_t n, char **out) CF_WUR;
/* cf_auth_verify_password(encoded, pw, n): constant-time verification. Worker threads or CLI. */
bool cf_auth_verify_password(const char *encoded, const char *pw, size_t n);
/* cf_auth_user_password(cfg, u, pw, n): whether pw[0..n) is u's password, for a re-authentication
 * (recovery codes): Argon2id against the stored hash for a local user, an LDAP bind for a directory
 * user (issue 23; never an empty password). CF_OK, CF_EDENIED (wrong), CF_EUNAVAIL (the directory
 * could not be asked: no verdict). Blocking: worker threads only. */
enum cf_status cf_auth_user_password(const struct cf_config *cfg, const struct cf_user *u, const char *pw,
                                     size_t n) CF_WUR;
/* cf_auth_password_ok(pw, n): the password policy (length CF_PASSWORD_MIN..MAX, no NUL). */
bool cf_auth_password_ok(const char *pw, size_t n);
/* cf_auth_dummy_hash(cfg): the hash of a random password, verified when a user does not exist so
 * that unknown users and wrong passwords cost the same time. NULL on failure (logged). */
char *cf_auth_dummy_hash(const struct cf_config *cfg);
/* cf_auth_random_password(out, n): a generated password of n-1 characters (letters and digits). */
void cf_auth_random_password(char *out, size_t n);

/* Recovery codes (issue 21): stand-ins for the second factor, each good once.
 * A recovery code is 16 characters of a 31-letter alphabet without look-alikes (a-z without i l o,
 * 2-9), shown as four groups of four ("k7pm-3xq2-..."); typed in any case, with or without dashes
 * and spaces. About 79 bits. The user record keeps for each unused code "TAG$" + its Argon2id
 * encoding (as passwords are), TAG being the code's first CF_RECOVERY_TAG_LEN characters: the tags
 * are compared in constant time over every stored code, so that exactly one Argon2id verification
 * is made per attempt (against a dummy hash when no tag matches), whatever the input.
 */
#define CF_RECOVERY_CODE_LEN 16  /* characters of a code, without its dashes */
#define CF_RECOVERY_TEXT_LEN 19  /* as shown: four groups of four and three dashes */

/* cf_recovery_generate(cfg, codes, stored): CF_RECOVERY_CODES new codes, as shown (malloc'ed; free
 * each with cf_free_secret(p, strlen(p))) and their stored forms (likewise), with distinct tags.
 * Slow (CF_RECOVERY_CODES Argon2id hashes): worker threads only. */
enum cf_status cf_recovery_generate(const struct cf_config *cfg, char *codes[CF_RECOVERY_CODES],
                                    char *stored[CF_RECOVERY_CODES]) CF_WUR;

/* cf_recovery_normalise(in, n, out): the code typed (untrusted, n bytes) in canonical form: lower
 * case, dashes and spaces dropped, exactly CF_RECOVERY_CODE_LEN characters of the alphabet, into
 * out (CF_RECOVERY_CODE_LEN + 1 bytes); false for anything else (its format is not secret). */
bool cf_recovery_normalise(const char *in, size_t n, char out[CF_RECOVERY_CODE_LEN + 1]);

/* cf_recovery_match(u, code, dummy): the index in u->recovery of the stored code that the
 * normalised code is, or -1. Always exactly one Argon2id verification (against dummy, an encoded
 * hash, when no tag matches). Worker threads only. */
int cf_recovery_match(const struct cf_user *u, const char *code, const char *dummy);

/* cf_recovery_take(u, stored): removes the stored code equal to stored from u (constant-time
 * comparison); false if it is no longer there (another login used it first). */
bool cf_recovery_take(struct cf_user *u, const char *stored);

/* cf_recovery_replace(u, stored): u's codes become stored (taken: the array's pointers are moved
 * into u and set to NULL); n is 0 to remove every code. */
void cf_recovery_replace(struct cf_user *u, char **stored, size_t n);

/* App passwords (issue 22): per-device passwords for apps that cannot do TOTP (WebDAV clients),
 * sent as HTTP Basic. 24 characters of the recovery-code alphabet (31 letters and digits without
 * look-alikes; about 119 bits), shown as four groups of six ("k7pm3x-..."); typed in any case, with
 * or without dashes and spaces. Stored as sessions flagged CF_SESSION_APP_PASSWORD under
 * cf_app_password_hash (storage.h), a keyed hash: a random 119-bit secret needs no slow hash. */
#define CF_APPPW_LEN 24      /* characters, without dashes */
#define CF_APPPW_TEXT_LEN 27 /* as shown */
#define CF_APPPW_MAX 20      /* per user; one more answers 409 */
#define CF_APPPW_TOUCH_MS 60000 /* last_used_at is written at most this often per app password */

/* cf_app_password_generate(text, norm): a new app password as shown and in canonical form. */
void cf_app_password_generate(char text[CF_APPPW_TEXT_LEN + 1], char norm[CF_APPPW_LEN + 1]);
/* cf_app_password_normalise(in, n, out): as cf_recovery_normalise, for app passwords. */
bool cf_app_password_normalise(const char *in, size_t n, char out[CF_APPPW_LEN + 1]);

/* cf_auth_basic_or_respond(r): the authentication stage for a request carrying `Authorization:
 * Basic` on a CF_ROUTE_BASIC route (route.h; /dav/ later): the user-id is "username" (the default
 * tenant) or "tenant\username" (also "tenant/username"), the password one of that user's app
 * passwords; a main password is never accepted here. Throttled with the login throttles (same
 * account and address keys; a failure keeps its attempts, 429 with Retry-After past the limits).
 * Refused over plain HTTP and for cross-site unsafe requests (a browser may replay cached Basic
 * credentials). Fills r->who as a bearer token would (kind CF_AUTH_BEARER, session_id the app
 * password's id), records the use at most once a minute, sets no cookie; answers 401 (with
 * WWW-Authenticate: Basic) and returns false otherwise. Loop thread: one HMAC, no slow hash. */
bool cf_auth_basic_or_respond(struct cf_req *r);
/* cf_auth_is_basic(r): whether the request carries `Authorization: Basic ...`. */
bool cf_auth_is_basic(struct cf_req *r);

/* cf_user_json(u, tenant_name): the public view of a user (no hash, no secrets). */
json_t *cf_user_json(const struct cf_user *u, const char *tenant_name);
const char *cf_role_name(enum cf_role role);
const char *cf_user_status_name(enum cf_user_status st);

#endif
