/*
 * fuzz_davxml.c: the WebDAV request-body parser and multistatus writer (src/dav/davxml.h). Every
 * input goes to the three parsers (PROPFIND, PROPPATCH, LOCK).
 *
 * Invariants: a refusal has a reason, the matching status (CF_ETOOBIG only for the size) and leaves
 * nothing allocated; what is accepted respects every limit (property count, name and value
 * lengths), its strings are NUL-terminated at their stated length and valid UTF-8; a canonical
 * value (dead property, lock owner) is a fixed point: embedded in a fresh body and parsed again it
 * gives the same name and the same bytes; a multistatus (with an activelock per accepted LOCK) and
 * a LOCK answer written from what was parsed are well-formed, namespace-well-formed XML (libxml2
 * reads them back).
 */
#include <libxml/parser.h>
#include <string.h>

#include "dav/davxml.h"
#include "fuzz.h"
#include "validate.h"

#define MAX_BODY 65536

static void check_name(const struct cf_davxml_name *n)
{
    FUZZ_CHECK(n->ns != NULL && n->local != NULL);
    FUZZ_CHECK(strlen(n->ns) == n->ns_len && n->ns_len <= CF_DAVXML_MAX_NAME);
    FUZZ_CHECK(strlen(n->local) == n->local_len && n->local_len >= 1 && n->local_len <= CF_DAVXML_MAX_NAME);
    FUZZ_CHECK(cf_utf8_valid(n->ns, n->ns_len) && cf_utf8_valid(n->local, n->local_len));
}

static void check_refusal(enum cf_status st, enum cf_davxml_err e, size_t size)
{
    FUZZ_CHECK(e != CF_DAVXML_OK && e < CF_DAVXML_ERR_COUNT);
    FUZZ_CHECK(st == (e == CF_DAVXML_ETOOBIG ? CF_ETOOBIG : CF_EINVAL));
    FUZZ_CHECK((e == CF_DAVXML_ETOOBIG) == (size > MAX_BODY));
    int http = cf_davxml_err_http(e);
    FUZZ_CHECK(http == 400 || http == 413 || http == 422 || http == 507);
}

static void check_wellformed(const struct cf_davxml_buf *b)
{
    xmlParserCtxt *ctxt = xmlNewParserCtxt();
    FUZZ_CHECK(ctxt != NULL);
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, b->data, (int)b->len, NULL, NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_HUGE);
    FUZZ_CHECK(doc != NULL && ctxt->wellFormed && ctxt->nsWellFormed);
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
}

/* A canonical value wrapped in a fresh PROPPATCH parses back to itself. */
static void check_fixed_point(const struct cf_davxml_propop *op)
{
    static const char head[] = "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop>";
    static const char tail[] = "</D:prop></D:set></D:propertyupdate>";
    struct cf_davxml_buf b = {0};
    cf_davxml_ms_prop_raw(&b, head, sizeof head - 1);
    cf_davxml_ms_prop_raw(&b, op->value, op->value_len);
    cf_davxml_ms_prop_raw(&b, tail, sizeof tail - 1);
    struct cf_davxml_propertyupdate again;
    enum cf_davxml_err e;
    FUZZ_CHECK(cf_davxml_parse_propertyupdate(b.data, b.len, b.len, &again, &e) == CF_OK);
    FUZZ_CHECK(again.n_ops == 1 && !again.ops[0].remove);
    FUZZ_CHECK(strcmp(again.ops[0].name.ns, op->name.ns) == 0 && strcmp(again.ops[0].name.local, op->name.local) == 0);
    FUZZ_CHECK(again.ops[0].value_len == op->value_len && memcmp(again.ops[0].value, op->value, op->value_len) == 0);
    cf_davxml_propertyupdate_clear(&again);
    cf_davxml_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    if (size > 2 * MAX_BODY)
        return 0;
    enum cf_davxml_err e = CF_DAVXML_ERR_COUNT;
    struct cf_davxml_buf ms = {0};
    cf_davxml_ms_begin(&ms);
    cf_davxml_ms_response_begin(&ms, body, size < 64 && cf_utf8_valid(body, size) && memchr(body, 0, size) == NULL ? size : 0);
    cf_davxml_ms_propstat_begin(&ms);

    struct cf_davxml_propfind pf;
    enum cf_status st = cf_davxml_parse_propfind(body, size, MAX_BODY, &pf, &e);
    if (st != CF_OK) {
        check_refusal(st, e, size);
        FUZZ_CHECK(pf.names == NULL && pf.n_names == 0);
    } else {
        FUZZ_CHECK(e == CF_DAVXML_OK && pf.n_names <= CF_DAVXML_MAX_PROPS);
        FUZZ_CHECK(pf.kind != CF_DAVXML_PROPNAME || pf.n_names == 0);
        for (size_t i = 0; i < pf.n_names; i++) {
            check_name(&pf.names[i]);
            cf_davxml_ms_prop_text(&ms, pf.names[i].ns, pf.names[i].local, pf.names[i].local, pf.names[i].local_len);
        }
    }
    cf_davxml_propfind_clear(&pf);

    struct cf_davxml_propertyupdate pu;
    st = cf_davxml_parse_propertyupdate(body, size, MAX_BODY, &pu, &e);
    if (st != CF_OK) {
        check_refusal(st, e, size);
        FUZZ_CHECK(pu.ops == NULL && pu.n_ops == 0);
    } else {
        FUZZ_CHECK(e == CF_DAVXML_OK && pu.n_ops <= CF_DAVXML_MAX_PROPS);
        for (size_t i = 0; i < pu.n_ops; i++) {
            const struct cf_davxml_propop *op = &pu.ops[i];
            check_name(&op->name);
            if (op->remove) {
                FUZZ_CHECK(op->value == NULL && op->value_len == 0);
                cf_davxml_ms_prop_text(&ms, op->name.ns, op->name.local, NULL, 0);
                continue;
            }
            FUZZ_CHECK(op->value != NULL && strlen(op->value) == op->value_len);
            FUZZ_CHECK(op->value_len >= 1 && op->value_len <= CF_DAVXML_MAX_VALUE);
            FUZZ_CHECK(cf_utf8_valid(op->value, op->value_len));
            check_fixed_point(op);
            cf_davxml_ms_prop_raw(&ms, op->value, op->value_len);
        }
    }
    cf_davxml_propertyupdate_clear(&pu);

    struct cf_davxml_lockinfo li;
    st = cf_davxml_parse_lockinfo(body, size, MAX_BODY, &li, &e);
    if (st != CF_OK) {
        check_refusal(st, e, size);
        FUZZ_CHECK(li.owner == NULL);
    } else {
        FUZZ_CHECK(li.refresh == (size == 0));
        if (li.owner != NULL) {
            FUZZ_CHECK(strlen(li.owner) == li.owner_len && li.owner_len <= CF_DAVXML_MAX_VALUE);
            FUZZ_CHECK(cf_utf8_valid(li.owner, li.owner_len));
        }
        struct cf_davxml_activelock lk = {.shared = li.shared, .owner = li.owner, .owner_len = li.owner_len,
                                          .timeout_s = size, .token = "opaquelocktoken:x", .root = "/dav/&<>"};
        cf_davxml_ms_prop_open(&ms, "DAV:", "lockdiscovery");
        cf_davxml_activelock(&ms, &lk);
        cf_davxml_ms_prop_close(&ms, "DAV:", "lockdiscovery");
        struct cf_davxml_buf answer = {0};
        cf_davxml_lock_answer(&answer, &lk);
        check_wellformed(&answer);
        cf_davxml_buf_free(&answer);
    }
    cf_davxml_lockinfo_clear(&li);

    cf_davxml_ms_propstat_end(&ms, 200);
    cf_davxml_ms_response_end(&ms);
    cf_davxml_ms_end(&ms);
    check_wellformed(&ms);
    cf_davxml_buf_free(&ms);
    return 0;
}
