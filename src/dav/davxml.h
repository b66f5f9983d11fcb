/*
 * davxml.h: the XML of WebDAV (RFC 4918): the request bodies of PROPFIND, PROPPATCH and LOCK parsed
 * into plain C structs, and a writer for multistatus answers. Pure protocol: knows no request, no
 * store, no ACL (docs/WEBDAV.md says who calls it and how).
 *
 * Parsing: libxml2 (already in the process through libclamav) with every DTD feature off: a body
 * holding "<!DOCTYPE" is refused before libxml2 sees it (no internal subset, so no entity is ever
 * declared: no XXE, no billion laughs), no network, no entity substitution, no DTD loading; the
 * bytes must be UTF-8 (and any encoding declaration must say UTF-8); nesting is bounded; element
 * and namespace names are bounded; the number of properties is bounded; every string is copied out,
 * so nothing of libxml2 outlives a call. Unknown elements are ignored (RFC 4918 §17).
 *
 * Dead property values and lock owners are kept as canonical XML fragments (the element itself
 * with its content), self-contained so that the writer can embed them verbatim in any document:
 *   - every namespace used in the fragment is declared on its root element, in order of first use,
 *     "DAV:" with prefix D, the others n0, n1, …; the source's prefixes are not kept; elements in no
 *     namespace are written unprefixed (the writer never declares a default namespace);
 *   - attributes sorted by (namespace, local name); xml:lang in scope on the property (inherited
 *     from an ancestor such as DAV:set or DAV:prop) is written on the root (RFC 4918 §4.3);
 *   - CDATA sections become text, comments and processing instructions are dropped, empty
 *     elements are written <a/>, text escapes & < > and CR, attribute values & < " TAB LF CR.
 * Two bodies that differ only in prefixes, attribute order, CDATA or comments give the same bytes.
 *
 * Thread safety: every function may be called from any thread; the parser initialises libxml2 once
 * (pthread_once). Sizes: bodies are small (the caller's max, 64 KiB in the design, 256 KiB at
 * most); a parse builds a libxml2 tree, freed before returning, of at most 8192 elements (counted
 * as '<' before libxml2 runs). Measured peak RSS above the process's: +2.4 MiB for a 64 KiB body
 * of empty elements, +2.2 MiB for 64 KiB of attributes (+37 MiB for 1 MiB of attributes, hence the
 * 256 KiB ceiling).
 */
#ifndef CF_DAVXML_H
#define CF_DAVXML_H

#include <stdbool.h>
#include <stddef.h>

#include "base.h"

#define CF_DAVXML_MAX_BODY (256u * 1024u)  /* bytes: the ceiling for max_body (docs/WEBDAV.md: callers pass less) */
#define CF_DAVXML_MAX_PROPS 1024u          /* properties named in one request */
#define CF_DAVXML_MAX_NAME 256u            /* bytes of a property's local name, and of its namespace */
#define CF_DAVXML_MAX_VALUE 65536u         /* bytes of one canonical value (dead property, lock owner) */
#define CF_DAVXML_MAX_VALUE_NS 64u         /* distinct namespaces in one canonical value */
#define CF_DAVXML_MAX_DEPTH 32u            /* element nesting of the whole document (root is 1) */
#define CF_DAVXML_MAX_MARKUP 8192u         /* '<' characters in a body: bounds libxml2's tree (elements) */

/* Why a body was refused. cf_davxml_err_http gives the answer RFC 4918 calls for (docs/WEBDAV.md,
 * "Request bodies"). Keep names stable: tests use them. */
enum cf_davxml_err {
    CF_DAVXML_OK = 0,
    CF_DAVXML_ETOOBIG,     /* body over the caller's max: 413 */
    CF_DAVXML_EENCODING,   /* bytes not UTF-8, a BOM other than UTF-8's, or a declared encoding other than UTF-8: 400 */
    CF_DAVXML_EDOCTYPE,    /* a document type declaration (DTDs are never processed): 400 */
    CF_DAVXML_EMALFORMED,  /* not well-formed XML 1.0 or not namespace-well-formed (RFC 4918 §8.2): 400 */
    CF_DAVXML_EDEPTH,      /* elements nested deeper than CF_DAVXML_MAX_DEPTH: 400 */
    CF_DAVXML_EROOT,       /* well-formed, but the root is not the method's element: 400 */
    CF_DAVXML_ESTRUCTURE,  /* a required element missing or repeated, or two exclusive ones: 400 */
    CF_DAVXML_ETOOMANY,    /* more than CF_DAVXML_MAX_PROPS properties or CF_DAVXML_MAX_MARKUP '<': 413 */
    CF_DAVXML_ENAME,       /* a property's name or namespace over CF_DAVXML_MAX_NAME bytes: 422 */
    CF_DAVXML_EVALUE,      /* a canonical value over CF_DAVXML_MAX_VALUE bytes or CF_DAVXML_MAX_VALUE_NS
                            * namespaces: 507 (RFC 4918 §9.2.1) */
    CF_DAVXML_EUNSUPPORTED,/* a lock scope or type other than exclusive|shared / write: 422 (RFC 4918 §11.2) */
    CF_DAVXML_ERR_COUNT
};

/* A property's name. ns is "" for no namespace (xmlns=""); both NUL-terminated, malloc'ed, valid
 * UTF-8, the lengths exclude the NUL; local is a valid XML NCName. */
struct cf_davxml_name {
    char *ns;
    size_t ns_len;   /* 0 ..= CF_DAVXML_MAX_NAME */
    char *local;
    size_t local_len; /* 1 ..= CF_DAVXML_MAX_NAME */
};

enum cf_davxml_propfind_kind {
    CF_DAVXML_ALLPROP,  /* DAV:allprop (or an empty body, RFC 4918 §9.1); names = DAV:include's */
    CF_DAVXML_PROPNAME, /* DAV:propname; no names */
    CF_DAVXML_PROP,     /* DAV:prop; names = the properties asked for, in body order (may be 0) */
};

struct cf_davxml_propfind {
    enum cf_davxml_propfind_kind kind;
    struct cf_davxml_name *names; /* n_names entries, NULL when 0 */
    size_t n_names;               /* 0 ..= CF_DAVXML_MAX_PROPS */
};

/* One instruction of a PROPPATCH, in body order (RFC 4918 §9.2: applied in document order). */
struct cf_davxml_propop {
    bool remove;                /* DAV:remove (value NULL) or DAV:set */
    struct cf_davxml_name name;
    char *value;                /* set: the canonical fragment of the property element, NUL-terminated */
    size_t value_len;           /* 1 ..= CF_DAVXML_MAX_VALUE; 0 for remove */
};

struct cf_davxml_propertyupdate {
    struct cf_davxml_propop *ops; /* n_ops entries */
    size_t n_ops;                 /* 0 ..= CF_DAVXML_MAX_PROPS (0 when every DAV:prop was empty) */
};

struct cf_davxml_lockinfo {
    bool refresh;      /* empty body: a refresh of the locks named in the If header (RFC 4918 §9.10.2) */
    bool shared;       /* DAV:shared, else DAV:exclusive; the type is always DAV:write */
    char *owner;       /* canonical fragment of the DAV:owner element, NUL-terminated, or NULL */
    size_t owner_len;  /* 0 ..= CF_DAVXML_MAX_VALUE */
};

/* cf_davxml_parse_propfind(body, len, max_body, out, err): parses a PROPFIND body (len 0 means
 * allprop). On CF_OK *out holds what was asked (free with cf_davxml_propfind_clear) and *err is
 * CF_DAVXML_OK; otherwise *out is zeroed, *err says why and the status is CF_ETOOBIG (body over
 * max_body, which is capped at CF_DAVXML_MAX_BODY) or CF_EINVAL (everything else). Any thread. */
enum cf_status cf_davxml_parse_propfind(const char *body, size_t len, size_t max_body, struct cf_davxml_propfind *out,
                                        enum cf_davxml_err *err) CF_WUR;
void cf_davxml_propfind_clear(struct cf_davxml_propfind *pf);

/* cf_davxml_parse_propertyupdate(...): the same for a PROPPATCH body (DAV:propertyupdate, at
 * least one DAV:set or DAV:remove, each with one DAV:prop). An empty body is CF_DAVXML_EROOT. */
enum cf_status cf_davxml_parse_propertyupdate(const char *body, size_t len, size_t max_body,
                                              struct cf_davxml_propertyupdate *out, enum cf_davxml_err *err) CF_WUR;
void cf_davxml_propertyupdate_clear(struct cf_davxml_propertyupdate *pu);

/* cf_davxml_parse_lockinfo(...): the same for a LOCK body (DAV:lockinfo with one DAV:lockscope and
 * one DAV:locktype, DAV:owner optional); an empty body gives refresh = true. */
enum cf_status cf_davxml_parse_lockinfo(const char *body, size_t len, size_t max_body, struct cf_davxml_lockinfo *out,
                                        enum cf_davxml_err *err) CF_WUR;
void cf_davxml_lockinfo_clear(struct cf_davxml_lockinfo *li);

/* cf_davxml_err_http(err): the HTTP status a refused body gets (the table above), and its name. */
int cf_davxml_err_http(enum cf_davxml_err err);
const char *cf_davxml_err_name(enum cf_davxml_err err);

/* --- Writer --------------------------------------------------------------------------------- */

/* A growable output buffer. Zero-initialise; cf_davxml_buf_free releases it. Allocation failure
 * aborts (cf_xrealloc). */
struct cf_davxml_buf {
    char *data; /* NUL-terminated when len > 0 */
    size_t len; /* bytes written */
    size_t cap; /* bytes allocated */
};
void cf_davxml_buf_free(struct cf_davxml_buf *b);

/* The multistatus writer (RFC 4918 §13, §14.16). Calls must nest as
 *   begin { response_begin (propstat_begin prop_* propstat_end)* | response_status) response_end }* end
 * Text arguments are pointer + length of UTF-8 and are escaped (characters XML cannot carry, C0
 * controls and U+FFFE/U+FFFF, become U+FFFD); href must already be a URI (percent-encoded
 * by the caller). ns/local name a property: ns "" for no namespace, "DAV:" written with the D
 * prefix, any other namespace declared on the element itself (xmlns:P); local must be an XML NCName
 * (the parser's names and constants are). status is an HTTP status code, written with its reason. */
void cf_davxml_ms_begin(struct cf_davxml_buf *b);
void cf_davxml_ms_response_begin(struct cf_davxml_buf *b, const char *href, size_t href_len);
void cf_davxml_ms_response_status(struct cf_davxml_buf *b, int status);
void cf_davxml_ms_propstat_begin(struct cf_davxml_buf *b);
/* <ns:local>text</ns:local> (text NULL: an empty element, as in a propname answer or a 404 propstat) */
void cf_davxml_ms_prop_text(struct cf_davxml_buf *b, const char *ns, const char *local, const char *text,
                            size_t text_len);
/* <ns:local> … </ns:local> around what the caller writes next (resourcetype, quota, lockdiscovery) */
void cf_davxml_ms_prop_open(struct cf_davxml_buf *b, const char *ns, const char *local);
void cf_davxml_ms_prop_close(struct cf_davxml_buf *b, const char *ns, const char *local);
/* A canonical fragment (a stored dead property or lock owner), written verbatim. */
void cf_davxml_ms_prop_raw(struct cf_davxml_buf *b, const char *frag, size_t frag_len);
void cf_davxml_ms_propstat_end(struct cf_davxml_buf *b, int status);
void cf_davxml_ms_response_end(struct cf_davxml_buf *b);
void cf_davxml_ms_end(struct cf_davxml_buf *b);

/* One DAV:activelock (RFC 4918 §14.1), for DAV:lockdiscovery in a PROPFIND answer and in the body
 * of a LOCK answer. owner: a canonical fragment from cf_davxml_parse_lockinfo (or NULL); timeout_s:
 * seconds left (0: "Infinite"); token: the lock token URI (opaquelocktoken:…); root: the lock
 * root's href (a URI, escaped here). */
struct cf_davxml_activelock {
    bool shared;           /* DAV:shared, else DAV:exclusive; the type is always DAV:write */
    bool depth_infinity;   /* Depth: infinity, else 0 */
    const char *owner;     /* canonical DAV:owner fragment or NULL */
    size_t owner_len;
    unsigned long timeout_s;
    const char *token;     /* NUL-terminated URI */
    const char *root;      /* NUL-terminated URI */
};
void cf_davxml_activelock(struct cf_davxml_buf *b, const struct cf_davxml_activelock *lk);

/* The body of a LOCK answer (RFC 4918 §9.10.1): the prop document with one lockdiscovery. */
void cf_davxml_lock_answer(struct cf_davxml_buf *b, const struct cf_davxml_activelock *lk);

/* An error body naming one precondition or postcondition (RFC 4918 §16), for example
 * "propfind-finite-depth", "lock-token-submitted" (then href, the locked resource, else NULL),
 * "lock-token-matches-request-uri", "cannot-modify-protected-property". condition is a DAV: local
 * name (an XML NCName). */
void cf_davxml_error(struct cf_davxml_buf *b, const char *condition, const char *href);

/* cf_davxml_status_line(status): "HTTP/1.1 200 OK" and the like, for DAV:status. */
const char *cf_davxml_status_line(int status);

#endif
