/*
 * davxml.c: WebDAV request bodies (PROPFIND, PROPPATCH, LOCK) into plain structs, and the
 * multistatus writer (davxml.h has the contract, docs/WEBDAV.md the design).
 *
 * Invariants: a body reaches libxml2 only after it passed the size, UTF-8, NUL and DOCTYPE checks;
 * libxml2 runs without DTD loading, entity substitution or network; its tree never outlives the
 * parse call and every string handed out is our own copy; everything produced is bounded by the
 * limits of davxml.h (a canonical value is cut off, not grown, past CF_DAVXML_MAX_VALUE).
 */
#include "davxml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

#define DAV_NS "DAV:"
#define XML_NS "http://www.w3.org/XML/1998/namespace"

/* No DTD loading, no entity substitution, no network, CDATA merged into text, the declared encoding
 * ignored (the body is read as UTF-8, checked before), no libxml2 output on stderr; not
 * XML_PARSE_HUGE, so libxml2's own limits (depth 256, names 50 000) hold too. */
#define PARSE_OPTIONS                                                                                             \
    (XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_IGNORE_ENC | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libxml(void)
{
    xmlInitParser();
}

/* --- Output buffer -------------------------------------------------------------------------- */

void cf_davxml_buf_free(struct cf_davxml_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static void buf_put(struct cf_davxml_buf *b, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap == 0 ? 256 : b->cap;
        while (cap - b->len < n + 1)
            cap *= 2;
        b->data = cf_xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

static void buf_puts(struct cf_davxml_buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* XML-escapes text (attr: for an attribute value in double quotes). Characters XML 1.0 cannot
 * carry at all (C0 controls other than TAB, LF, CR; U+FFFE, U+FFFF) become U+FFFD, so that the
 * output stays well-formed whatever the caller passes. */
static void buf_escape(struct cf_davxml_buf *b, const char *s, size_t n, bool attr)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        size_t skip = 1;
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') {
            rep = "\xef\xbf\xbd";
        } else if (ch == 0xef && n - i >= 3 && (unsigned char)s[i + 1] == 0xbf &&
                   ((unsigned char)s[i + 2] == 0xbe || (unsigned char)s[i + 2] == 0xbf)) {
            rep = "\xef\xbf\xbd";
            skip = 3;
        }
        if (rep != NULL) {
            buf_put(b, s + run, i - run);
            buf_puts(b, rep);
            run = i + skip;
            i += skip - 1;
            continue;
        }
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = attr ? NULL : "&gt;"; break;
        case '"': rep = attr ? "&quot;" : NULL; break;
        case '\t': rep = attr ? "&#x9;" : NULL; break;
        case '\n': rep = attr ? "&#xA;" : NULL; break;
        case '\r': rep = "&#xD;"; break;
        default: break;
        }
        if (rep == NULL)
            continue;
        buf_put(b, s + run, i - run);
        buf_puts(b, rep);
        run = i + 1;
    }
    buf_put(b, s + run, n - run);
}

/* --- Errors --------------------------------------------------------------------------------- */

static const struct {
    int http;
    const char *name;
} err_map[CF_DAVXML_ERR_COUNT] = {
    [CF_DAVXML_OK] = {200, "ok"},
    [CF_DAVXML_ETOOBIG] = {413, "body_too_big"},
    [CF_DAVXML_EENCODING] = {400, "not_utf8"},
    [CF_DAVXML_EDOCTYPE] = {400, "doctype"},
    [CF_DAVXML_EMALFORMED] = {400, "malformed"},
    [CF_DAVXML_EDEPTH] = {400, "too_deep"},
    [CF_DAVXML_EROOT] = {400, "wrong_root"},
    [CF_DAVXML_ESTRUCTURE] = {400, "bad_structure"},
    [CF_DAVXML_ETOOMANY] = {413, "too_many_properties"},
    [CF_DAVXML_ENAME] = {422, "name_too_long"},
    [CF_DAVXML_EVALUE] = {507, "value_too_big"},
    [CF_DAVXML_EUNSUPPORTED] = {422, "unsupported_lock"},
};

int cf_davxml_err_http(enum cf_davxml_err err)
{
    return (unsigned)err < CF_DAVXML_ERR_COUNT ? err_map[err].http : 500;
}

const char *cf_davxml_err_name(enum cf_davxml_err err)
{
    return (unsigned)err < CF_DAVXML_ERR_COUNT ? err_map[err].name : "internal";
}

/* --- Reading the tree ----------------------------------------------------------------------- */

static bool is_dav(const xmlNode *n, const char *local)
{
    return n->type == XML_ELEMENT_NODE && n->ns != NULL && n->ns->href != NULL &&
           strcmp((const char *)n->ns->href, DAV_NS) == 0 && strcmp((const char *)n->name, local) == 0;
}

/* The first element at or after n, or NULL. */
static xmlNode *element_from(xmlNode *n)
{
    while (n != NULL && n->type != XML_ELEMENT_NODE)
        n = n->next;
    return n;
}

static const char *ns_of(const xmlNode *n)
{
    return n->ns != NULL && n->ns->href != NULL ? (const char *)n->ns->href : "";
}

/* Checks the nesting under n (n counts depth) and the namespace names declared there. Without
 * XML_PARSE_NOENT libxml2 keeps an '&' of a declaration's value (written &amp; or &#38;) as the five
 * characters "&#38;", and its URI check then accepts or refuses the name depending on what follows
 * (one '&' passes, two fail on the second '#'). A namespace name holding '&' is therefore refused
 * outright, the same way every time; no WebDAV client uses one. */
static enum cf_davxml_err prepare_tree(const xmlNode *n, unsigned depth)
{
    if (depth > CF_DAVXML_MAX_DEPTH)
        return CF_DAVXML_EDEPTH;
    for (const xmlNs *ns = n->nsDef; ns != NULL; ns = ns->next)
        if (ns->href != NULL && strchr((const char *)ns->href, '&') != NULL)
            return CF_DAVXML_EMALFORMED;
    for (const xmlNode *c = n->children; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        enum cf_davxml_err e = prepare_tree(c, depth + 1);
        if (e != CF_DAVXML_OK)
            return e;
    }
    return CF_DAVXML_OK;
}

/* The encoding an XML declaration names must be UTF-8 (any case). Read here, before libxml2, which
 * is told to ignore it (XML_PARSE_IGNORE_ENC) so that no transcoder ever runs on a body. */
static enum cf_davxml_err check_xml_decl(const char *body, size_t len)
{
    static const char bom[] = "\xef\xbb\xbf";
    if (len >= 3 && memcmp(body, bom, 3) == 0)
        body += 3, len -= 3;
    if (len < 6 || memcmp(body, "<?xml", 5) != 0 || !(body[5] == ' ' || body[5] == '\t' || body[5] == '\r' ||
                                                      body[5] == '\n'))
        return CF_DAVXML_OK;
    const char *end = memmem(body, len < 256 ? len : 256, "?>", 2);
    if (end == NULL)
        return CF_DAVXML_EMALFORMED; /* no client writes a declaration that long */
    size_t dlen = (size_t)(end - body);
    const char *enc = memmem(body, dlen, "encoding", 8);
    if (enc == NULL)
        return CF_DAVXML_OK;
    const char *p = enc + 8, *stop = body + dlen;
    while (p < stop && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '='))
        p++;
    if (p >= stop || (*p != '"' && *p != '\''))
        return CF_DAVXML_EMALFORMED;
    char quote = *p++;
    const char *q = memchr(p, quote, (size_t)(stop - p));
    if (q == NULL)
        return CF_DAVXML_EMALFORMED;
    return q - p == 5 && strncasecmp(p, "UTF-8", 5) == 0 ? CF_DAVXML_OK : CF_DAVXML_EENCODING;
}

/* Parses body into a tree whose root element is *root. The caller frees *doc then *ctxt. */
static enum cf_davxml_err parse_doc(const char *body, size_t len, size_t max_body, xmlParserCtxt **ctxt_out,
                                    xmlDoc **doc_out, xmlNode **root)
{
    static const char doctype[] = "<!DOCTYPE";
    *ctxt_out = NULL;
    *doc_out = NULL;
    if (len > max_body || len > CF_DAVXML_MAX_BODY)
        return CF_DAVXML_ETOOBIG;
    if (!cf_utf8_valid(body, len))
        return CF_DAVXML_EENCODING;
    if (memchr(body, 0, len) != NULL)
        return CF_DAVXML_EMALFORMED; /* XML 1.0 §2.2: NUL is never a character */
    /* No DTD is ever processed: refused before libxml2 reads it (XXE, entity expansion). A
     * "<!DOCTYPE" inside a comment or CDATA section is refused too; no client sends one. */
    if (memmem(body, len, doctype, sizeof doctype - 1) != NULL)
        return CF_DAVXML_EDOCTYPE;
    enum cf_davxml_err e = check_xml_decl(body, len);
    if (e != CF_DAVXML_OK)
        return e;
    /* Every element costs libxml2 a node of ~120 bytes: bound them before building the tree. */
    size_t markup = 0;
    for (const char *p = body; (p = memchr(p, '<', len - (size_t)(p - body))) != NULL; p++)
        if (++markup > CF_DAVXML_MAX_MARKUP)
            return CF_DAVXML_ETOOMANY;

    pthread_once(&init_once, init_libxml);
    xmlParserCtxt *ctxt = xmlNewParserCtxt();
    if (ctxt == NULL)
        abort(); /* out of memory, as cf_xmalloc */
    *ctxt_out = ctxt;
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, body, (int)len, NULL, "UTF-8", PARSE_OPTIONS);
    *doc_out = doc;
    if (doc == NULL || !ctxt->wellFormed || !ctxt->nsWellFormed)
        return CF_DAVXML_EMALFORMED;
    if (doc->intSubset != NULL || doc->extSubset != NULL)
        return CF_DAVXML_EDOCTYPE;
    /* A second guard: check_xml_decl refused any other declared encoding, IGNORE_ENC ignores it. */
    if (doc->encoding != NULL && strcasecmp((const char *)doc->encoding, "UTF-8") != 0)
        return CF_DAVXML_EENCODING;
    *root = xmlDocGetRootElement(doc);
    if (*root == NULL)
        return CF_DAVXML_EMALFORMED;
    return prepare_tree(*root, 1);
}

static void parse_done(xmlParserCtxt *ctxt, xmlDoc *doc)
{
    if (doc != NULL)
        xmlFreeDoc(doc);
    if (ctxt != NULL)
        xmlFreeParserCtxt(ctxt);
}

static void name_clear(struct cf_davxml_name *n)
{
    free(n->ns);
    free(n->local);
    memset(n, 0, sizeof *n);
}

static enum cf_davxml_err name_copy(const xmlNode *el, struct cf_davxml_name *out)
{
    const char *ns = ns_of(el), *local = (const char *)el->name;
    size_t ns_len = strlen(ns), local_len = strlen(local);
    if (ns_len > CF_DAVXML_MAX_NAME || local_len > CF_DAVXML_MAX_NAME || local_len == 0)
        return CF_DAVXML_ENAME;
    out->ns = cf_xstrndup(ns, ns_len);
    out->ns_len = ns_len;
    out->local = cf_xstrndup(local, local_len);
    out->local_len = local_len;
    return CF_DAVXML_OK;
}

/* --- Canonical fragments -------------------------------------------------------------------- */

struct canon {
    struct cf_davxml_buf out;
    size_t limit;            /* bytes: past it, over is set and nothing more is kept */
    bool over;
    const char **ns;         /* distinct namespaces in order of first use */
    char (*prefix)[16];      /* their prefixes: "D" for DAV:, n0, n1, … */
    size_t n_ns, cap_ns;
    size_t others;           /* namespaces other than DAV: so far (the next n<i>) */
};

static void canon_put(struct canon *c, const char *s, size_t n)
{
    if (c->over || c->out.len + n > c->limit) {
        c->over = true;
        return;
    }
    buf_put(&c->out, s, n);
}

static void canon_puts(struct canon *c, const char *s)
{
    canon_put(c, s, strlen(s));
}

static void canon_escape(struct canon *c, const char *s, bool attr)
{
    struct cf_davxml_buf tmp = {0};
    buf_escape(&tmp, s, strlen(s), attr);
    canon_put(c, tmp.data, tmp.len);
    cf_davxml_buf_free(&tmp);
}

static void canon_add_ns(struct canon *c, const char *href)
{
    if (href[0] == 0 || strcmp(href, XML_NS) == 0)
        return;
    for (size_t i = 0; i < c->n_ns; i++)
        if (strcmp(c->ns[i], href) == 0)
            return;
    /* The lookups above and in canon_prefix are linear: the bound keeps a value's cost linear too. */
    if (c->n_ns == CF_DAVXML_MAX_VALUE_NS) {
        c->over = true;
        return;
    }
    if (c->n_ns == c->cap_ns) {
        c->cap_ns = c->cap_ns == 0 ? 4 : c->cap_ns * 2;
        c->ns = cf_xrealloc(c->ns, c->cap_ns * sizeof *c->ns);
        c->prefix = cf_xrealloc(c->prefix, c->cap_ns * sizeof *c->prefix);
    }
    c->ns[c->n_ns] = href;
    if (strcmp(href, DAV_NS) == 0)
        snprintf(c->prefix[c->n_ns], sizeof c->prefix[0], "D");
    else
        snprintf(c->prefix[c->n_ns], sizeof c->prefix[0], "n%zu", c->others++);
    c->n_ns++;
}

static void canon_collect(struct canon *c, const xmlNode *n)
{
    canon_add_ns(c, ns_of(n));
    for (const xmlAttr *a = n->properties; a != NULL; a = a->next)
        if (a->ns != NULL && a->ns->href != NULL)
            canon_add_ns(c, (const char *)a->ns->href);
    for (const xmlNode *k = n->children; k != NULL; k = k->next)
        if (k->type == XML_ELEMENT_NODE)
            canon_collect(c, k);
}

/* "prefix:" for a namespace ("" for none, "xml:" for the XML namespace). */
static void canon_prefix(struct canon *c, const char *href)
{
    if (href[0] == 0)
        return;
    if (strcmp(href, XML_NS) == 0) {
        canon_puts(c, "xml:");
        return;
    }
    for (size_t i = 0; i < c->n_ns; i++)
        if (strcmp(c->ns[i], href) == 0) {
            canon_puts(c, c->prefix[i]);
            canon_puts(c, ":");
            return;
        }
}

struct canon_attr {
    const char *ns, *name;
    xmlChar *value; /* xmlFree */
};

static int attr_cmp(const void *pa, const void *pb)
{
    const struct canon_attr *a = pa, *b = pb;
    int d = strcmp(a->ns, b->ns);
    return d != 0 ? d : strcmp(a->name, b->name);
}

static void canon_element(struct canon *c, const xmlNode *n, bool root)
{
    const char *ns = ns_of(n);
    canon_puts(c, "<");
    canon_prefix(c, ns);
    canon_puts(c, (const char *)n->name);
    if (root)
        for (size_t i = 0; i < c->n_ns; i++) {
            canon_puts(c, " xmlns:");
            canon_puts(c, c->prefix[i]);
            canon_puts(c, "=\"");
            canon_escape(c, c->ns[i], true);
            canon_puts(c, "\"");
        }

    size_t na = 0;
    bool has_lang = false;
    for (const xmlAttr *a = n->properties; a != NULL; a = a->next, na++)
        has_lang |= a->ns != NULL && a->ns->href != NULL && strcmp((const char *)a->ns->href, XML_NS) == 0 &&
                    strcmp((const char *)a->name, "lang") == 0;
    /* RFC 4918 §4.3: xml:lang in scope on a property is part of its value. */
    xmlChar *lang = root && !has_lang ? xmlNodeGetLang(n) : NULL;
    struct canon_attr *attrs = cf_xmalloc((na + 1) * sizeof *attrs);
    size_t k = 0;
    for (const xmlAttr *a = n->properties; a != NULL; a = a->next, k++) {
        attrs[k].ns = a->ns != NULL && a->ns->href != NULL ? (const char *)a->ns->href : "";
        attrs[k].name = (const char *)a->name;
        attrs[k].value = xmlNodeGetContent((const xmlNode *)a);
    }
    if (lang != NULL)
        attrs[k++] = (struct canon_attr){XML_NS, "lang", lang};
    qsort(attrs, k, sizeof *attrs, attr_cmp);
    for (size_t i = 0; i < k; i++) {
        canon_puts(c, " ");
        canon_prefix(c, attrs[i].ns);
        canon_puts(c, attrs[i].name);
        canon_puts(c, "=\"");
        canon_escape(c, attrs[i].value != NULL ? (const char *)attrs[i].value : "", true);
        canon_puts(c, "\"");
        xmlFree(attrs[i].value);
    }
    free(attrs);

    bool empty = true;
    for (const xmlNode *ch = n->children; ch != NULL && !c->over; ch = ch->next) {
        bool text = ch->type == XML_TEXT_NODE || ch->type == XML_CDATA_SECTION_NODE;
        if (!text && ch->type != XML_ELEMENT_NODE)
            continue; /* comments, processing instructions */
        if (text && (ch->content == NULL || ch->content[0] == 0))
            continue;
        if (empty)
            canon_puts(c, ">");
        empty = false;
        if (text)
            canon_escape(c, (const char *)ch->content, false);
        else
            canon_element(c, ch, false);
    }
    if (empty) {
        canon_puts(c, "/>");
        return;
    }
    canon_puts(c, "</");
    canon_prefix(c, ns);
    canon_puts(c, (const char *)n->name);
    canon_puts(c, ">");
}

/* The canonical fragment of element n into a malloc'ed string. CF_DAVXML_EVALUE past the limit. */
static enum cf_davxml_err canonical(const xmlNode *n, char **out, size_t *out_len)
{
    struct canon c = {.limit = CF_DAVXML_MAX_VALUE};
    canon_collect(&c, n);
    if (!c.over)
        canon_element(&c, n, true);
    free(c.ns);
    free(c.prefix);
    if (c.over) {
        cf_davxml_buf_free(&c.out);
        return CF_DAVXML_EVALUE;
    }
    *out = c.out.data;
    *out_len = c.out.len;
    return CF_DAVXML_OK;
}

/* --- PROPFIND ------------------------------------------------------------------------------- */

/* Appends the element children of parent as names. */
static enum cf_davxml_err collect_names(xmlNode *parent, struct cf_davxml_name **names, size_t *n)
{
    for (xmlNode *c = element_from(parent->children); c != NULL; c = element_from(c->next)) {
        if (*n >= CF_DAVXML_MAX_PROPS)
            return CF_DAVXML_ETOOMANY;
        if (*n % 16 == 0)
            *names = cf_xrealloc(*names, (*n + 16) * sizeof **names);
        memset(&(*names)[*n], 0, sizeof **names);
        enum cf_davxml_err e = name_copy(c, &(*names)[*n]);
        if (e != CF_DAVXML_OK)
            return e;
        (*n)++;
    }
    return CF_DAVXML_OK;
}

static enum cf_davxml_err propfind_from(xmlNode *root, struct cf_davxml_propfind *out)
{
    if (!is_dav(root, "propfind"))
        return CF_DAVXML_EROOT;
    xmlNode *kind_el = NULL, *include = NULL;
    for (xmlNode *c = element_from(root->children); c != NULL; c = element_from(c->next)) {
        if (is_dav(c, "allprop") || is_dav(c, "propname") || is_dav(c, "prop")) {
            if (kind_el != NULL)
                return CF_DAVXML_ESTRUCTURE; /* RFC 4918 §14.20: exactly one of them */
            kind_el = c;
        } else if (is_dav(c, "include")) {
            if (include != NULL)
                return CF_DAVXML_ESTRUCTURE;
            include = c;
        } /* anything else: ignored (RFC 4918 §17) */
    }
    if (kind_el == NULL)
        return CF_DAVXML_ESTRUCTURE;
    out->kind = is_dav(kind_el, "allprop") ? CF_DAVXML_ALLPROP
                : is_dav(kind_el, "propname") ? CF_DAVXML_PROPNAME
                                              : CF_DAVXML_PROP;
    if (include != NULL && out->kind != CF_DAVXML_ALLPROP)
        return CF_DAVXML_ESTRUCTURE;
    xmlNode *list = out->kind == CF_DAVXML_PROP ? kind_el : include;
    return list == NULL ? CF_DAVXML_OK : collect_names(list, &out->names, &out->n_names);
}

void cf_davxml_propfind_clear(struct cf_davxml_propfind *pf)
{
    if (pf == NULL)
        return;
    for (size_t i = 0; i < pf->n_names; i++)
        name_clear(&pf->names[i]);
    free(pf->names);
    memset(pf, 0, sizeof *pf);
}

static enum cf_status finish(enum cf_davxml_err e, enum cf_davxml_err *err)
{
    *err = e;
    return e == CF_DAVXML_OK ? CF_OK : e == CF_DAVXML_ETOOBIG ? CF_ETOOBIG : CF_EINVAL;
}

enum cf_status cf_davxml_parse_propfind(const char *body, size_t len, size_t max_body, struct cf_davxml_propfind *out,
                                        enum cf_davxml_err *err)
{
    memset(out, 0, sizeof *out);
    if (len == 0) { /* RFC 4918 §9.1: an empty body is allprop */
        out->kind = CF_DAVXML_ALLPROP;
        return finish(CF_DAVXML_OK, err);
    }
    xmlParserCtxt *ctxt;
    xmlDoc *doc;
    xmlNode *root = NULL;
    enum cf_davxml_err e = parse_doc(body, len, max_body, &ctxt, &doc, &root);
    if (e == CF_DAVXML_OK)
        e = propfind_from(root, out);
    parse_done(ctxt, doc);
    if (e != CF_DAVXML_OK)
        cf_davxml_propfind_clear(out);
    return finish(e, err);
}

/* --- PROPPATCH ------------------------------------------------------------------------------ */

static enum cf_davxml_err propop_add(xmlNode *prop_el, bool remove, struct cf_davxml_propertyupdate *out)
{
    if (out->n_ops >= CF_DAVXML_MAX_PROPS)
        return CF_DAVXML_ETOOMANY;
    if (out->n_ops % 16 == 0)
        out->ops = cf_xrealloc(out->ops, (out->n_ops + 16) * sizeof *out->ops);
    struct cf_davxml_propop *op = &out->ops[out->n_ops];
    memset(op, 0, sizeof *op);
    out->n_ops++; /* counted now, so that clear frees what name_copy kept */
    op->remove = remove;
    enum cf_davxml_err e = name_copy(prop_el, &op->name);
    if (e == CF_DAVXML_OK && !remove)
        e = canonical(prop_el, &op->value, &op->value_len);
    return e;
}

static enum cf_davxml_err propertyupdate_from(xmlNode *root, struct cf_davxml_propertyupdate *out)
{
    if (!is_dav(root, "propertyupdate"))
        return CF_DAVXML_EROOT;
    size_t instructions = 0;
    for (xmlNode *c = element_from(root->children); c != NULL; c = element_from(c->next)) {
        bool remove = is_dav(c, "remove");
        if (!remove && !is_dav(c, "set"))
            continue; /* RFC 4918 §17 */
        instructions++;
        xmlNode *prop = NULL;
        for (xmlNode *p = element_from(c->children); p != NULL; p = element_from(p->next)) {
            if (!is_dav(p, "prop"))
                continue;
            if (prop != NULL)
                return CF_DAVXML_ESTRUCTURE; /* RFC 4918 §14.26, §14.23: one DAV:prop */
            prop = p;
        }
        if (prop == NULL)
            return CF_DAVXML_ESTRUCTURE;
        for (xmlNode *p = element_from(prop->children); p != NULL; p = element_from(p->next)) {
            enum cf_davxml_err e = propop_add(p, remove, out);
            if (e != CF_DAVXML_OK)
                return e;
        }
    }
    return instructions == 0 ? CF_DAVXML_ESTRUCTURE : CF_DAVXML_OK;
}

void cf_davxml_propertyupdate_clear(struct cf_davxml_propertyupdate *pu)
{
    if (pu == NULL)
        return;
    for (size_t i = 0; i < pu->n_ops; i++) {
        name_clear(&pu->ops[i].name);
        free(pu->ops[i].value);
    }
    free(pu->ops);
    memset(pu, 0, sizeof *pu);
}

enum cf_status cf_davxml_parse_propertyupdate(const char *body, size_t len, size_t max_body,
                                              struct cf_davxml_propertyupdate *out, enum cf_davxml_err *err)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return finish(CF_DAVXML_EROOT, err);
    xmlParserCtxt *ctxt;
    xmlDoc *doc;
    xmlNode *root = NULL;
    enum cf_davxml_err e = parse_doc(body, len, max_body, &ctxt, &doc, &root);
    if (e == CF_DAVXML_OK)
        e = propertyupdate_from(root, out);
    parse_done(ctxt, doc);
    if (e != CF_DAVXML_OK)
        cf_davxml_propertyupdate_clear(out);
    return finish(e, err);
}

/* --- LOCK ----------------------------------------------------------------------------------- */

/* The one element of parent among the accepted names (index in *which); unknown elements alone
 * are CF_DAVXML_EUNSUPPORTED, none or two known ones CF_DAVXML_ESTRUCTURE. */
static enum cf_davxml_err one_of(xmlNode *parent, const char *a, const char *b, int *which)
{
    int known = 0, unknown = 0;
    for (xmlNode *c = element_from(parent->children); c != NULL; c = element_from(c->next)) {
        if (is_dav(c, a) || (b != NULL && is_dav(c, b))) {
            known++;
            *which = is_dav(c, a) ? 0 : 1;
        } else {
            unknown++;
        }
    }
    if (known == 1)
        return CF_DAVXML_OK;
    return known == 0 && unknown > 0 ? CF_DAVXML_EUNSUPPORTED : CF_DAVXML_ESTRUCTURE;
}

static enum cf_davxml_err lockinfo_from(xmlNode *root, struct cf_davxml_lockinfo *out)
{
    if (!is_dav(root, "lockinfo"))
        return CF_DAVXML_EROOT;
    xmlNode *scope = NULL, *type = NULL, *owner = NULL;
    for (xmlNode *c = element_from(root->children); c != NULL; c = element_from(c->next)) {
        xmlNode **slot = is_dav(c, "lockscope") ? &scope : is_dav(c, "locktype") ? &type
                                                       : is_dav(c, "owner")       ? &owner
                                                                                  : NULL;
        if (slot == NULL)
            continue; /* RFC 4918 §17 */
        if (*slot != NULL)
            return CF_DAVXML_ESTRUCTURE; /* RFC 4918 §14.11: one of each */
        *slot = c;
    }
    if (scope == NULL || type == NULL)
        return CF_DAVXML_ESTRUCTURE;
    int which = 0;
    enum cf_davxml_err e = one_of(scope, "exclusive", "shared", &which);
    if (e != CF_DAVXML_OK)
        return e;
    out->shared = which == 1;
    e = one_of(type, "write", NULL, &which);
    if (e != CF_DAVXML_OK)
        return e;
    return owner == NULL ? CF_DAVXML_OK : canonical(owner, &out->owner, &out->owner_len);
}

void cf_davxml_lockinfo_clear(struct cf_davxml_lockinfo *li)
{
    if (li == NULL)
        return;
    free(li->owner);
    memset(li, 0, sizeof *li);
}

enum cf_status cf_davxml_parse_lockinfo(const char *body, size_t len, size_t max_body, struct cf_davxml_lockinfo *out,
                                        enum cf_davxml_err *err)
{
    memset(out, 0, sizeof *out);
    if (len == 0) {
        out->refresh = true;
        return finish(CF_DAVXML_OK, err);
    }
    xmlParserCtxt *ctxt;
    xmlDoc *doc;
    xmlNode *root = NULL;
    enum cf_davxml_err e = parse_doc(body, len, max_body, &ctxt, &doc, &root);
    if (e == CF_DAVXML_OK)
        e = lockinfo_from(root, out);
    parse_done(ctxt, doc);
    if (e != CF_DAVXML_OK)
        cf_davxml_lockinfo_clear(out);
    return finish(e, err);
}

/* --- Multistatus writer --------------------------------------------------------------------- */

const char *cf_davxml_status_line(int status)
{
    switch (status) {
    case 200: return "HTTP/1.1 200 OK";
    case 201: return "HTTP/1.1 201 Created";
    case 204: return "HTTP/1.1 204 No Content";
    case 400: return "HTTP/1.1 400 Bad Request";
    case 403: return "HTTP/1.1 403 Forbidden";
    case 404: return "HTTP/1.1 404 Not Found";
    case 409: return "HTTP/1.1 409 Conflict";
    case 412: return "HTTP/1.1 412 Precondition Failed";
    case 413: return "HTTP/1.1 413 Content Too Large";
    case 422: return "HTTP/1.1 422 Unprocessable Content";
    case 423: return "HTTP/1.1 423 Locked";
    case 424: return "HTTP/1.1 424 Failed Dependency";
    case 507: return "HTTP/1.1 507 Insufficient Storage";
    default: return "HTTP/1.1 500 Internal Server Error";
    }
}

void cf_davxml_ms_begin(struct cf_davxml_buf *b)
{
    buf_puts(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">");
}

void cf_davxml_ms_response_begin(struct cf_davxml_buf *b, const char *href, size_t href_len)
{
    buf_puts(b, "<D:response><D:href>");
    buf_escape(b, href, href_len, false);
    buf_puts(b, "</D:href>");
}

void cf_davxml_ms_response_status(struct cf_davxml_buf *b, int status)
{
    buf_puts(b, "<D:status>");
    buf_puts(b, cf_davxml_status_line(status));
    buf_puts(b, "</D:status>");
}

void cf_davxml_ms_propstat_begin(struct cf_davxml_buf *b)
{
    buf_puts(b, "<D:propstat><D:prop>");
}

/* <D:local, <local or <P:local xmlns:P="ns" (then the caller closes the tag). */
static void open_tag(struct cf_davxml_buf *b, const char *ns, const char *local)
{
    buf_puts(b, "<");
    if (strcmp(ns, DAV_NS) == 0) {
        buf_puts(b, "D:");
        buf_puts(b, local);
    } else if (ns[0] == 0) {
        buf_puts(b, local);
    } else {
        buf_puts(b, "P:");
        buf_puts(b, local);
        buf_puts(b, " xmlns:P=\"");
        buf_escape(b, ns, strlen(ns), true);
        buf_puts(b, "\"");
    }
}

void cf_davxml_ms_prop_close(struct cf_davxml_buf *b, const char *ns, const char *local)
{
    buf_puts(b, strcmp(ns, DAV_NS) == 0 ? "</D:" : ns[0] == 0 ? "</" : "</P:");
    buf_puts(b, local);
    buf_puts(b, ">");
}

void cf_davxml_ms_prop_text(struct cf_davxml_buf *b, const char *ns, const char *local, const char *text,
                            size_t text_len)
{
    open_tag(b, ns, local);
    if (text == NULL) {
        buf_puts(b, "/>");
        return;
    }
    buf_puts(b, ">");
    buf_escape(b, text, text_len, false);
    cf_davxml_ms_prop_close(b, ns, local);
}

void cf_davxml_ms_prop_open(struct cf_davxml_buf *b, const char *ns, const char *local)
{
    open_tag(b, ns, local);
    buf_puts(b, ">");
}

void cf_davxml_ms_prop_raw(struct cf_davxml_buf *b, const char *frag, size_t frag_len)
{
    buf_put(b, frag, frag_len);
}

void cf_davxml_ms_propstat_end(struct cf_davxml_buf *b, int status)
{
    buf_puts(b, "</D:prop>");
    cf_davxml_ms_response_status(b, status);
    buf_puts(b, "</D:propstat>");
}

void cf_davxml_ms_response_end(struct cf_davxml_buf *b)
{
    buf_puts(b, "</D:response>");
}

void cf_davxml_ms_end(struct cf_davxml_buf *b)
{
    buf_puts(b, "</D:multistatus>\n");
}

/* --- Locks and error bodies ----------------------------------------------------------------- */

void cf_davxml_activelock(struct cf_davxml_buf *b, const struct cf_davxml_activelock *lk)
{
    char timeout[40];
    if (lk->timeout_s == 0)
        snprintf(timeout, sizeof timeout, "Infinite");
    else
        snprintf(timeout, sizeof timeout, "Second-%lu", lk->timeout_s);
    buf_puts(b, "<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope>");
    buf_puts(b, lk->shared ? "<D:shared/>" : "<D:exclusive/>");
    buf_puts(b, "</D:lockscope><D:depth>");
    buf_puts(b, lk->depth_infinity ? "infinity" : "0");
    buf_puts(b, "</D:depth>");
    if (lk->owner != NULL)
        buf_put(b, lk->owner, lk->owner_len);
    buf_puts(b, "<D:timeout>");
    buf_puts(b, timeout);
    buf_puts(b, "</D:timeout><D:locktoken><D:href>");
    buf_escape(b, lk->token, strlen(lk->token), false);
    buf_puts(b, "</D:href></D:locktoken><D:lockroot><D:href>");
    buf_escape(b, lk->root, strlen(lk->root), false);
    buf_puts(b, "</D:href></D:lockroot></D:activelock>");
}

void cf_davxml_lock_answer(struct cf_davxml_buf *b, const struct cf_davxml_activelock *lk)
{
    buf_puts(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery>");
    cf_davxml_activelock(b, lk);
    buf_puts(b, "</D:lockdiscovery></D:prop>\n");
}

void cf_davxml_error(struct cf_davxml_buf *b, const char *condition, const char *href)
{
    buf_puts(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\"><D:");
    buf_puts(b, condition);
    if (href == NULL) {
        buf_puts(b, "/>");
    } else {
        buf_puts(b, "><D:href>");
        buf_escape(b, href, strlen(href), false);
        buf_puts(b, "</D:href></D:");
        buf_puts(b, condition);
        buf_puts(b, ">");
    }
    buf_puts(b, "</D:error>\n");
}
