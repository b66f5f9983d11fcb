/*
 * test_davxml.c: the WebDAV body parser and multistatus writer (src/dav/davxml.h). Every body a
 * litmus run and the common clients send (allprop, propname, prop over several namespaces and the
 * empty one, PROPPATCH set/remove in order with structured values, LOCK with an owner href), and
 * hostile ones (DOCTYPE with entities, external entities, deep nesting, huge names, invalid UTF-8,
 * unbalanced tags, wrong roots, too many properties), each with its exact refusal; canonical values
 * byte for byte; a multistatus document byte-compared to the expected one and read back by
 * python3's xml.etree (an independent parser). Leaks are ASan's to find.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dav/davxml.h"
#include "tap.h"

#define MAX (64u * 1024u)
#define S(lit) lit, sizeof(lit) - 1

static enum cf_davxml_err pf_err(const char *body, size_t len)
{
    struct cf_davxml_propfind pf;
    enum cf_davxml_err e = CF_DAVXML_ERR_COUNT;
    enum cf_status st = cf_davxml_parse_propfind(body, len, MAX, &pf, &e);
    if ((st == CF_OK) != (e == CF_DAVXML_OK) || (st != CF_OK && (pf.names != NULL || pf.n_names != 0)))
        return CF_DAVXML_ERR_COUNT; /* status and reason disagree, or a refusal left data */
    cf_davxml_propfind_clear(&pf);
    return e;
}

static enum cf_davxml_err pu_err(const char *body, size_t len)
{
    struct cf_davxml_propertyupdate pu;
    enum cf_davxml_err e = CF_DAVXML_ERR_COUNT;
    enum cf_status st = cf_davxml_parse_propertyupdate(body, len, MAX, &pu, &e);
    if ((st == CF_OK) != (e == CF_DAVXML_OK) || (st != CF_OK && (pu.ops != NULL || pu.n_ops != 0)))
        return CF_DAVXML_ERR_COUNT;
    cf_davxml_propertyupdate_clear(&pu);
    return e;
}

static enum cf_davxml_err li_err(const char *body, size_t len)
{
    struct cf_davxml_lockinfo li;
    enum cf_davxml_err e = CF_DAVXML_ERR_COUNT;
    enum cf_status st = cf_davxml_parse_lockinfo(body, len, MAX, &li, &e);
    if ((st == CF_OK) != (e == CF_DAVXML_OK) || (st != CF_OK && li.owner != NULL))
        return CF_DAVXML_ERR_COUNT;
    cf_davxml_lockinfo_clear(&li);
    return e;
}

static void test_propfind(void)
{
    struct cf_davxml_propfind pf;
    enum cf_davxml_err e;

    CHECK(cf_davxml_parse_propfind("", 0, MAX, &pf, &e) == CF_OK && pf.kind == CF_DAVXML_ALLPROP && pf.n_names == 0,
          "empty PROPFIND body is allprop (RFC 4918 §9.1)");

    static const char allprop[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                                  "<propfind xmlns=\"DAV:\"><allprop/></propfind>";
    CHECK(cf_davxml_parse_propfind(S(allprop), MAX, &pf, &e) == CF_OK && pf.kind == CF_DAVXML_ALLPROP &&
              pf.n_names == 0 && e == CF_DAVXML_OK,
          "allprop");
    cf_davxml_propfind_clear(&pf);

    static const char include[] = "<D:propfind xmlns:D=\"DAV:\"><D:allprop/><D:include><D:supported-live-property-set/>"
                                  "<D:supported-report-set/></D:include></D:propfind>";
    CHECK(cf_davxml_parse_propfind(S(include), MAX, &pf, &e) == CF_OK && pf.kind == CF_DAVXML_ALLPROP &&
              pf.n_names == 2,
          "allprop with include: two names");
    if (pf.n_names == 2) {
        CHECK_STR(pf.names[0].ns, "DAV:", "include ns");
        CHECK_STR(pf.names[1].local, "supported-report-set", "include order kept");
    }
    cf_davxml_propfind_clear(&pf);

    static const char propname[] = "<?xml version=\"1.0\" encoding=\"utf-8\" ?><propfind xmlns=\"DAV:\"><propname/></propfind>";
    CHECK(cf_davxml_parse_propfind(S(propname), MAX, &pf, &e) == CF_OK && pf.kind == CF_DAVXML_PROPNAME,
          "propname");
    cf_davxml_propfind_clear(&pf);

    /* litmus props: several namespaces, the empty namespace (propnullns), whitespace, comments. */
    static const char prop[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<propfind xmlns=\"DAV:\">\n  <prop>\n"
        "    <getcontentlength xmlns=\"DAV:\"/>\n    <!-- a comment -->\n"
        "    <x:foo xmlns:x=\"http://example.com/neon/litmus/\"/>\n"
        "    <nonamespace xmlns=\"\"/>\n    <y:bar xmlns:y=\"urn:ex\">ignored text</y:bar>\n  </prop>\n</propfind>\n";
    CHECK(cf_davxml_parse_propfind(S(prop), MAX, &pf, &e) == CF_OK && pf.kind == CF_DAVXML_PROP && pf.n_names == 4,
          "prop: four names");
    if (pf.n_names == 4) {
        CHECK(strcmp(pf.names[0].ns, "DAV:") == 0 && strcmp(pf.names[0].local, "getcontentlength") == 0 &&
                  pf.names[0].ns_len == 4 && pf.names[0].local_len == 16,
              "prop 0: DAV:getcontentlength");
        CHECK(strcmp(pf.names[1].ns, "http://example.com/neon/litmus/") == 0 && strcmp(pf.names[1].local, "foo") == 0,
              "prop 1: litmus namespace, prefix resolved");
        CHECK(strcmp(pf.names[2].ns, "") == 0 && pf.names[2].ns_len == 0 && strcmp(pf.names[2].local, "nonamespace") == 0,
              "prop 2: the empty namespace");
        CHECK(strcmp(pf.names[3].ns, "urn:ex") == 0 && strcmp(pf.names[3].local, "bar") == 0, "prop 3");
    }
    cf_davxml_propfind_clear(&pf);

    static const char empty_prop[] = "<propfind xmlns=\"DAV:\"><prop/></propfind>";
    CHECK(cf_davxml_parse_propfind(S(empty_prop), MAX, &pf, &e) == CF_OK && pf.kind == CF_DAVXML_PROP &&
              pf.n_names == 0 && pf.names == NULL,
          "empty prop: no names");

    static const char unknown[] = "<propfind xmlns=\"DAV:\"><x:ext xmlns:x=\"urn:x\"/><propname/><futurething/></propfind>";
    CHECK_INT(pf_err(S(unknown)), CF_DAVXML_OK, "unknown elements ignored (RFC 4918 §17)");

    /* Structure. */
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"/>")), CF_DAVXML_ESTRUCTURE, "propfind with nothing");
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"><allprop/><propname/></propfind>")), CF_DAVXML_ESTRUCTURE,
              "allprop and propname");
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"><prop/><prop/></propfind>")), CF_DAVXML_ESTRUCTURE, "two props");
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"><propname/><include/></propfind>")), CF_DAVXML_ESTRUCTURE,
              "include without allprop");
    CHECK_INT(pf_err(S("<propfind><allprop/></propfind>")), CF_DAVXML_EROOT, "propfind in no namespace");
    CHECK_INT(pf_err(S("<D:propertyupdate xmlns:D=\"DAV:\"/>")), CF_DAVXML_EROOT, "wrong root");
    /* litmus propfind_invalid and propfind_invalid2. */
    CHECK_INT(pf_err(S("<foo>")), CF_DAVXML_EMALFORMED, "litmus propfind_invalid: unclosed");
    CHECK_INT(pf_err(S("<D:propfind xmlns:D=\"DAV:\"><D:prop><bar:foo xmlns:bar=\"\"/></D:prop></D:propfind>")),
              CF_DAVXML_EMALFORMED, "litmus propfind_invalid2: xmlns:bar=\"\" (Namespaces 1.0)");
    CHECK_INT(pf_err(S("<D:propfind xmlns:D=\"DAV:\"><D:prop><z:foo/></D:prop></D:propfind>")), CF_DAVXML_EMALFORMED,
              "undeclared prefix");
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"><prop></propfind></prop>")), CF_DAVXML_EMALFORMED, "unbalanced tags");
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"><allprop/></propfind><propfind xmlns=\"DAV:\"/>")), CF_DAVXML_EMALFORMED,
              "two roots");
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"><allprop/>&undefined;</propfind>")), CF_DAVXML_EMALFORMED,
              "undefined entity");
    CHECK_INT(pf_err(S("just text")), CF_DAVXML_EMALFORMED, "no element");
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"><allprop/>\0</propfind>")), CF_DAVXML_EMALFORMED, "NUL byte");
}

static void test_hostile(void)
{
    static const char laughs[] =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n"
        " <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
        " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n]>\n"
        "<propfind xmlns=\"DAV:\"><prop><x xmlns=\"urn:a\">&lol3;</x></prop></propfind>";
    CHECK_INT(pf_err(S(laughs)), CF_DAVXML_EDOCTYPE, "billion laughs: DOCTYPE refused");
    static const char xxe[] = "<?xml version=\"1.0\"?><!DOCTYPE p [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
                              "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><a xmlns=\"urn:a\">&x;</a>"
                              "</D:prop></D:set></D:propertyupdate>";
    CHECK_INT(pu_err(S(xxe)), CF_DAVXML_EDOCTYPE, "external entity: DOCTYPE refused");
    static const char ext_dtd[] = "<!DOCTYPE lockinfo SYSTEM \"http://127.0.0.1:1/x.dtd\"><lockinfo xmlns=\"DAV:\"/>";
    CHECK_INT(li_err(S(ext_dtd)), CF_DAVXML_EDOCTYPE, "external DTD: refused, never fetched");
    /* An entity reference without a DOCTYPE is undefined: never expanded. */
    CHECK_INT(pu_err(S("<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><a xmlns=\"urn:a\">&x;</a></D:prop>"
                       "</D:set></D:propertyupdate>")),
              CF_DAVXML_EMALFORMED, "entity reference without a DTD");
    /* XInclude is never processed: it stays an ordinary element of a value. */
    struct cf_davxml_propertyupdate pu;
    enum cf_davxml_err e;
    static const char xi[] = "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><a xmlns=\"urn:a\"><xi:include "
                             "xmlns:xi=\"http://www.w3.org/2001/XInclude\" href=\"file:///etc/passwd\"/></a></D:prop>"
                             "</D:set></D:propertyupdate>";
    CHECK(cf_davxml_parse_propertyupdate(S(xi), MAX, &pu, &e) == CF_OK && pu.n_ops == 1 &&
              strcmp(pu.ops[0].value, "<n0:a xmlns:n0=\"urn:a\" xmlns:n1=\"http://www.w3.org/2001/XInclude\">"
                                      "<n1:include href=\"file:///etc/passwd\"/></n0:a>") == 0,
          "xi:include kept as data");
    cf_davxml_propertyupdate_clear(&pu);

    /* Depth: 32 levels pass, 33 do not, 4000 neither (libxml2's own limit is 256). */
    for (int values = 29; values <= 30; values++) {
        /* propertyupdate, set, prop: 3 levels, then the value's elements */
        size_t cap = 4096, n = 0;
        char *doc = malloc(cap);
        n += (size_t)snprintf(doc, cap, "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop>");
        for (int i = 0; i < values; i++)
            n += (size_t)snprintf(doc + n, cap - n, "<a xmlns=\"urn:a\">");
        for (int i = 0; i < values; i++)
            n += (size_t)snprintf(doc + n, cap - n, "</a>");
        n += (size_t)snprintf(doc + n, cap - n, "</D:prop></D:set></D:propertyupdate>");
        CHECK_INT(pu_err(doc, n), 3 + values <= 32 ? CF_DAVXML_OK : CF_DAVXML_EDEPTH, "depth %d", 3 + values);
        free(doc);
    }
    {
        size_t cap = 4000 * 8 + 200, n = 0;
        char *doc = malloc(cap);
        n += (size_t)snprintf(doc, cap, "<propfind xmlns=\"DAV:\"><prop>");
        for (int i = 0; i < 4000; i++)
            n += (size_t)snprintf(doc + n, cap - n, "<a>");
        CHECK_INT(pf_err(doc, n), CF_DAVXML_EMALFORMED, "4000 open elements, unterminated");
        for (int i = 0; i < 4000; i++)
            n += (size_t)snprintf(doc + n, cap - n, "</a>");
        n += (size_t)snprintf(doc + n, cap - n, "</prop></propfind>");
        enum cf_davxml_err got = pf_err(doc, n);
        CHECK(got == CF_DAVXML_EMALFORMED || got == CF_DAVXML_EDEPTH, "4000 levels refused (%s)", cf_davxml_err_name(got));
        free(doc);
    }

    /* Elements: 8192 '<' pass the pre-count, 8193 do not (libxml2 never builds the tree). */
    for (size_t count = 8192; count <= 8193; count++) {
        static const char head[] = "<propfind xmlns=\"DAV:\"><prop><a xmlns=\"urn:a\">";
        static const char tail[] = "</a></prop></propfind>";
        size_t inner = count - 6, cap = sizeof head + inner * 4 + sizeof tail, n = 0; /* head 3 '<', tail 3 */
        char *doc = malloc(cap);
        memcpy(doc, head, sizeof head - 1);
        n = sizeof head - 1;
        for (size_t i = 0; i < inner; i++, n += 4)
            memcpy(doc + n, "<b/>", 4);
        memcpy(doc + n, tail, sizeof tail - 1);
        n += sizeof tail - 1;
        struct cf_davxml_propfind pf;
        enum cf_status st = cf_davxml_parse_propfind(doc, n, 1u << 20, &pf, &e);
        CHECK(count == 8192 ? st == CF_OK && pf.n_names == 1 : st == CF_EINVAL && e == CF_DAVXML_ETOOMANY,
              "%zu '<' in a body", count);
        cf_davxml_propfind_clear(&pf);
        free(doc);
    }

    /* Names: 256 bytes pass, 257 do not; a 40 000-byte name neither. */
    for (size_t len = 256; len <= 257; len++) {
        char doc[1024], name[300];
        memset(name, 'n', len);
        name[len] = 0;
        int n = snprintf(doc, sizeof doc, "<propfind xmlns=\"DAV:\"><prop><%s xmlns=\"urn:a\"/></prop></propfind>", name);
        CHECK_INT(pf_err(doc, (size_t)n), len == 256 ? CF_DAVXML_OK : CF_DAVXML_ENAME, "local name of %zu bytes", len);
        n = snprintf(doc, sizeof doc, "<propfind xmlns=\"DAV:\"><prop><a xmlns=\"urn:%s\"/></prop></propfind>", name);
        CHECK_INT(pf_err(doc, (size_t)n), len + 4 <= 256 ? CF_DAVXML_OK : CF_DAVXML_ENAME, "namespace of %zu bytes",
                  len + 4);
    }
    {
        size_t len = 40000, cap = len + 200;
        char *doc = malloc(cap), *name = malloc(len + 1);
        memset(name, 'n', len);
        name[len] = 0;
        int n = snprintf(doc, cap, "<propfind xmlns=\"DAV:\"><prop><%s/></prop></propfind>", name);
        CHECK_INT(pf_err(doc, (size_t)n), CF_DAVXML_ENAME, "a 40 000-byte name");
        free(doc);
        free(name);
    }

    /* Encoding. */
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"><prop><a\xff xmlns=\"urn:a\"/></prop></propfind>")), CF_DAVXML_EENCODING,
              "invalid UTF-8 byte");
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"><prop><a xmlns=\"urn:\xc0\xaf\"/></prop></propfind>")),
              CF_DAVXML_EENCODING, "overlong UTF-8");
    CHECK_INT(pf_err(S("\xff\xfe<\0p\0")), CF_DAVXML_EENCODING, "UTF-16 with a BOM");
    CHECK_INT(pf_err(S("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><propfind xmlns=\"DAV:\"><allprop/></propfind>")),
              CF_DAVXML_EENCODING, "declared Latin-1");
    CHECK_INT(pf_err(S("<?xml version='1.0' encoding = 'utf-16'?><propfind xmlns=\"DAV:\"><allprop/></propfind>")),
              CF_DAVXML_EENCODING, "declared UTF-16 over UTF-8 bytes");
    CHECK_INT(pf_err(S("<?xml version=\"1.0\" encoding=\"UTF-8\"?><?xml-stylesheet encoding=\"x\"?>"
                       "<propfind xmlns=\"DAV:\"><allprop/></propfind>")),
              CF_DAVXML_OK, "only the XML declaration's encoding counts");
    CHECK_INT(pf_err(S("<?xml version=\"1.0\" encoding=UTF-8?><propfind xmlns=\"DAV:\"><allprop/></propfind>")),
              CF_DAVXML_EMALFORMED, "unquoted encoding");
    CHECK_INT(pf_err(S("<?xml version=\"1.0\" encoding=\"UTF-8\"?><propfind xmlns=\"DAV:\"><prop><a xmlns=\"urn:a\" "
                       "b=\"\xe2\x82\xac\"/></prop></propfind>")),
              CF_DAVXML_OK, "UTF-8 declared, non-ASCII content");
    CHECK_INT(pf_err(S("\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-8\"?><propfind xmlns=\"DAV:\"><allprop/></propfind>")),
              CF_DAVXML_OK, "UTF-8 BOM accepted");
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"><prop><\xc3\xa9t\xc3\xa9 xmlns=\"urn:x\"/></prop></propfind>")),
              CF_DAVXML_OK, "non-ASCII local name");
    /* libxml2 holds a namespace name to be a URI reference (Namespaces in XML 1.0 §2.2): an IRI is not. */
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"><prop><a xmlns=\"urn:\xe4\xb8\xad\"/></prop></propfind>")),
              CF_DAVXML_EMALFORMED, "non-ASCII namespace name");
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"><prop><a xmlns=\"urn:a b\"/></prop></propfind>")),
              CF_DAVXML_EMALFORMED, "namespace name with a space");
    /* libxml2 2.9 checks a namespace name holding '&' in an escaped form, passing one and failing
     * two: refused every time (found by fuzzing). */
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"><prop><a xmlns=\"http://x/?a=1&amp;b=2\"/></prop></propfind>")),
              CF_DAVXML_EMALFORMED, "one '&' in a namespace name");
    CHECK_INT(pf_err(S("<propfind xmlns=\"DAV:\"><prop><a xmlns=\"http://x/?a=1&amp;b=2&#38;c\"/></prop></propfind>")),
              CF_DAVXML_EMALFORMED, "two '&' in a namespace name");

    /* Size. */
    {
        struct cf_davxml_propfind pf;
        CHECK(cf_davxml_parse_propfind(S("<propfind xmlns=\"DAV:\"><allprop/></propfind>"), 10, &pf, &e) == CF_ETOOBIG &&
                  e == CF_DAVXML_ETOOBIG,
              "body over the max: CF_ETOOBIG");
        size_t big = CF_DAVXML_MAX_BODY + 1;
        char *doc = malloc(big);
        memset(doc, ' ', big);
        memcpy(doc, "<propfind xmlns=\"DAV:\"><allprop/></propfind>", 44);
        CHECK(cf_davxml_parse_propfind(doc, big, SIZE_MAX, &pf, &e) == CF_ETOOBIG && e == CF_DAVXML_ETOOBIG,
              "max_body is capped at CF_DAVXML_MAX_BODY");
        CHECK(cf_davxml_parse_propfind(doc, big - 1, SIZE_MAX, &pf, &e) == CF_OK && pf.kind == CF_DAVXML_ALLPROP,
              "a body of exactly CF_DAVXML_MAX_BODY is parsed");
        cf_davxml_propfind_clear(&pf);
        free(doc);
    }

    /* Too many properties: 1024 pass, 1025 do not (PROPFIND and PROPPATCH). */
    for (size_t count = 1024; count <= 1025; count++) {
        size_t cap = count * 40 + 200, n = 0;
        char *doc = malloc(cap);
        n += (size_t)snprintf(doc, cap, "<propfind xmlns=\"DAV:\"><prop>");
        for (size_t i = 0; i < count; i++)
            n += (size_t)snprintf(doc + n, cap - n, "<p%zu xmlns=\"urn:a\"/>", i);
        n += (size_t)snprintf(doc + n, cap - n, "</prop></propfind>");
        CHECK_INT(pf_err(doc, n), count == 1024 ? CF_DAVXML_OK : CF_DAVXML_ETOOMANY, "PROPFIND of %zu properties", count);
        n = (size_t)snprintf(doc, cap, "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop>");
        for (size_t i = 0; i < count; i++)
            n += (size_t)snprintf(doc + n, cap - n, "<p%zu xmlns=\"urn:a\">v</p%zu>", i, i);
        n += (size_t)snprintf(doc + n, cap - n, "</D:prop></D:set></D:propertyupdate>");
        struct cf_davxml_propertyupdate big;
        enum cf_status st = cf_davxml_parse_propertyupdate(doc, n, 1u << 20, &big, &e);
        CHECK_INT(e, count == 1024 ? CF_DAVXML_OK : CF_DAVXML_ETOOMANY, "PROPPATCH of %zu properties", count);
        CHECK(st == (count == 1024 ? CF_OK : CF_EINVAL) && big.n_ops == (count == 1024 ? 1024 : 0), "status and ops");
        cf_davxml_propertyupdate_clear(&big);
        free(doc);
    }

    /* Namespaces in one value: 64 pass, 65 do not. */
    for (int count = 64; count <= 65; count++) {
        char doc[8192];
        size_t n = (size_t)snprintf(doc, sizeof doc, "<propertyupdate xmlns=\"DAV:\"><set><prop><v xmlns=\"urn:0\">");
        for (int i = 1; i < count; i++)
            n += (size_t)snprintf(doc + n, sizeof doc - n, "<e xmlns=\"urn:%d\"/>", i);
        n += (size_t)snprintf(doc + n, sizeof doc - n, "</v></prop></set></propertyupdate>");
        CHECK_INT(pu_err(doc, n), count == 64 ? CF_DAVXML_OK : CF_DAVXML_EVALUE, "%d namespaces in a value", count);
    }

    /* A value past 64 KiB. */
    {
        size_t cap = 70000 + 200, n = 0;
        char *doc = malloc(cap);
        n += (size_t)snprintf(doc, cap, "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><a xmlns=\"urn:a\">");
        memset(doc + n, 'v', 70000);
        n += 70000;
        n += (size_t)snprintf(doc + n, cap - n, "</a></D:prop></D:set></D:propertyupdate>");
        struct cf_davxml_propertyupdate pu2;
        CHECK(cf_davxml_parse_propertyupdate(doc, n, 1u << 20, &pu2, &e) == CF_EINVAL && e == CF_DAVXML_EVALUE &&
                  pu2.n_ops == 0,
              "a 70 000-byte value: EVALUE");
        free(doc);
    }
}

static void test_proppatch(void)
{
    struct cf_davxml_propertyupdate pu;
    enum cf_davxml_err e;
    /* Ordered set/remove; a value with nested elements, attributes, xml:lang inherited from the
     * DAV:prop, CDATA, comments, characters to escape and prefixes to canonicalise. */
    static const char body[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<D:propertyupdate xmlns:D=\"DAV:\" xmlns:Z=\"http://ns.example.com/standards/z39.50/\">\n"
        "  <D:set><D:prop xml:lang=\"en\"><Z:Authors>\n    <Z:Author b=\"2\" a=\"1 &amp; &lt;&quot;\">Jim &amp; "
        "<![CDATA[<Roy>]]></Z:Author><!-- c --><?pi x?>\n  </Z:Authors></D:prop></D:set>\n"
        "  <D:remove><D:prop><Z:Copyright-Owner/><nons xmlns=\"\"/></D:prop></D:remove>\n"
        "  <D:set><D:prop><Win32LastModifiedTime xmlns=\"urn:schemas-microsoft-com:\">Sat, 05 Dec 2026 19:00:00 "
        "GMT</Win32LastModifiedTime><D:displayname xml:lang=\"fr\">\xc3\xa9t\xc3\xa9</D:displayname>"
        "<e xmlns=\"urn:e\" xmlns:q=\"urn:q\" q:at=\"x\"><q:in/></e></D:prop></D:set>\n"
        "</D:propertyupdate>";
    CHECK(cf_davxml_parse_propertyupdate(S(body), MAX, &pu, &e) == CF_OK && e == CF_DAVXML_OK && pu.n_ops == 6,
          "PROPPATCH: six instructions");
    if (pu.n_ops == 6) {
        CHECK(!pu.ops[0].remove && strcmp(pu.ops[0].name.ns, "http://ns.example.com/standards/z39.50/") == 0 &&
                  strcmp(pu.ops[0].name.local, "Authors") == 0,
              "op 0: set Z:Authors");
        CHECK_STR(pu.ops[0].value,
                  "<n0:Authors xmlns:n0=\"http://ns.example.com/standards/z39.50/\" xml:lang=\"en\">\n    "
                  "<n0:Author a=\"1 &amp; &lt;&quot;\" b=\"2\">Jim &amp; &lt;Roy&gt;</n0:Author>\n  </n0:Authors>",
                  "op 0: canonical value");
        CHECK_INT(pu.ops[0].value_len, strlen(pu.ops[0].value), "op 0: value_len");
        CHECK(pu.ops[1].remove && strcmp(pu.ops[1].name.local, "Copyright-Owner") == 0 && pu.ops[1].value == NULL &&
                  pu.ops[1].value_len == 0,
              "op 1: remove Z:Copyright-Owner");
        CHECK(pu.ops[2].remove && strcmp(pu.ops[2].name.ns, "") == 0 && strcmp(pu.ops[2].name.local, "nons") == 0,
              "op 2: remove the no-namespace property");
        CHECK_STR(pu.ops[3].value,
                  "<n0:Win32LastModifiedTime xmlns:n0=\"urn:schemas-microsoft-com:\">Sat, 05 Dec 2026 19:00:00 "
                  "GMT</n0:Win32LastModifiedTime>",
                  "op 3: Explorer's Win32 time");
        CHECK_STR(pu.ops[4].value, "<D:displayname xmlns:D=\"DAV:\" xml:lang=\"fr\">\xc3\xa9t\xc3\xa9</D:displayname>",
                  "op 4: DAV: property, own xml:lang");
        CHECK_STR(pu.ops[5].value, "<n0:e xmlns:n0=\"urn:e\" xmlns:n1=\"urn:q\" n1:at=\"x\"><n1:in/></n0:e>",
                  "op 5: namespaced attribute, unused declarations dropped");
    }
    cf_davxml_propertyupdate_clear(&pu);

    /* Same value, other prefixes and attribute order: same bytes. */
    static const char a[] = "<propertyupdate xmlns=\"DAV:\"><set><prop><x:v xmlns:x=\"urn:v\" b=\"1\" a=\"2\">t"
                            "<x:w/></x:v></prop></set></propertyupdate>";
    static const char b[] = "<k:propertyupdate xmlns:k=\"DAV:\"><k:set><k:prop><v xmlns=\"urn:v\" a=\"2\" b=\"1\">"
                            "<![CDATA[t]]><!--x--><w></w></v></k:prop></k:set></k:propertyupdate>";
    struct cf_davxml_propertyupdate pa, pb;
    CHECK(cf_davxml_parse_propertyupdate(S(a), MAX, &pa, &e) == CF_OK &&
              cf_davxml_parse_propertyupdate(S(b), MAX, &pb, &e) == CF_OK,
          "two spellings parse");
    if (pa.n_ops == 1 && pb.n_ops == 1)
        CHECK(strcmp(pa.ops[0].value, pb.ops[0].value) == 0 &&
                  strcmp(pa.ops[0].value, "<n0:v xmlns:n0=\"urn:v\" a=\"2\" b=\"1\">t<n0:w/></n0:v>") == 0,
              "canonical: same bytes (%s)", pa.ops[0].value);
    cf_davxml_propertyupdate_clear(&pa);
    cf_davxml_propertyupdate_clear(&pb);

    /* An attribute holding tab, LF and CR; text holding CR (as character references). */
    static const char ws[] = "<propertyupdate xmlns=\"DAV:\"><set><prop><v xmlns=\"urn:v\" t=\"a&#9;b&#10;c&#13;\">"
                             "x&#13;y</v></prop></set></propertyupdate>";
    CHECK(cf_davxml_parse_propertyupdate(S(ws), MAX, &pu, &e) == CF_OK && pu.n_ops == 1 &&
              strcmp(pu.ops[0].value, "<n0:v xmlns:n0=\"urn:v\" t=\"a&#x9;b&#xA;c&#xD;\">x&#xD;y</n0:v>") == 0,
          "whitespace in attributes and CR in text survive");
    cf_davxml_propertyupdate_clear(&pu);

    /* litmus props: prophighunicode (U+10000 and up), propvalnspace (a value whose elements change the
     * default namespace), propmanyns (one property per namespace). */
    static const char high[] = "<?xml version=\"1.0\" encoding=\"utf-8\" ?><propertyupdate xmlns=\"DAV:\"><set><prop>"
                               "<high-unicode xmlns=\"http://example.com/neon/litmus/\">\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"
                               "</high-unicode></prop></set></propertyupdate>";
    CHECK(cf_davxml_parse_propertyupdate(S(high), MAX, &pu, &e) == CF_OK && pu.n_ops == 1 &&
              strcmp(pu.ops[0].value, "<n0:high-unicode xmlns:n0=\"http://example.com/neon/litmus/\">\xf0\x90\x80\x80"
                                      "\xf4\x8f\xbf\xbf</n0:high-unicode>") == 0,
          "prophighunicode");
    cf_davxml_propertyupdate_clear(&pu);
    static const char valns[] = "<propertyupdate xmlns=\"DAV:\"><set><prop><t:valnspace xmlns:t=\"http://example.com/"
                                "neon/litmus/\"><foo xmlns=\"bar:\">foo</foo><t:x/><y xmlns=\"\"/></t:valnspace></prop>"
                                "</set></propertyupdate>";
    CHECK(cf_davxml_parse_propertyupdate(S(valns), MAX, &pu, &e) == CF_OK && pu.n_ops == 1 &&
              strcmp(pu.ops[0].value, "<n0:valnspace xmlns:n0=\"http://example.com/neon/litmus/\" xmlns:n1=\"bar:\">"
                                      "<n1:foo>foo</n1:foo><n0:x/><y/></n0:valnspace>") == 0,
          "propvalnspace: inner default namespaces, and none");
    cf_davxml_propertyupdate_clear(&pu);
    {
        char doc[4096];
        size_t n = (size_t)snprintf(doc, sizeof doc, "<propertyupdate xmlns=\"DAV:\"><set><prop>");
        for (int i = 0; i < 10; i++)
            n += (size_t)snprintf(doc + n, sizeof doc - n, "<somename xmlns=\"http://example.com/ns%d\">v%d</somename>", i, i);
        n += (size_t)snprintf(doc + n, sizeof doc - n, "</prop></set></propertyupdate>");
        CHECK(cf_davxml_parse_propertyupdate(doc, n, MAX, &pu, &e) == CF_OK && pu.n_ops == 10 &&
                  strcmp(pu.ops[9].name.ns, "http://example.com/ns9") == 0 &&
                  strcmp(pu.ops[9].value, "<n0:somename xmlns:n0=\"http://example.com/ns9\">v9</n0:somename>") == 0,
              "propmanyns: one local name in ten namespaces");
        cf_davxml_propertyupdate_clear(&pu);
    }

    CHECK_INT(pu_err("", 0), CF_DAVXML_EROOT, "empty PROPPATCH body");
    CHECK_INT(pu_err(S("<propertyupdate xmlns=\"DAV:\"/>")), CF_DAVXML_ESTRUCTURE, "no set or remove");
    CHECK_INT(pu_err(S("<propertyupdate xmlns=\"DAV:\"><set/></propertyupdate>")), CF_DAVXML_ESTRUCTURE, "set without prop");
    CHECK_INT(pu_err(S("<propertyupdate xmlns=\"DAV:\"><set><prop/><prop/></set></propertyupdate>")),
              CF_DAVXML_ESTRUCTURE, "set with two props");
    CHECK_INT(pu_err(S("<propertyupdate xmlns=\"DAV:\"><set><prop/></set></propertyupdate>")), CF_DAVXML_OK,
              "set of an empty prop: nothing to do");
    CHECK_INT(pu_err(S("<propfind xmlns=\"DAV:\"><allprop/></propfind>")), CF_DAVXML_EROOT, "PROPPATCH with propfind");
    CHECK_INT(pu_err(S("<propertyupdate xmlns=\"DAV:\"><set><prop><a xmlns=\"urn:a\"></b></prop></set></propertyupdate>")),
              CF_DAVXML_EMALFORMED, "unbalanced value");
}

static void test_lock(void)
{
    struct cf_davxml_lockinfo li;
    enum cf_davxml_err e;
    /* litmus locks (neon's body) */
    static const char neon[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<lockinfo xmlns='DAV:'>\n"
                               " <lockscope><exclusive/></lockscope>\n<locktype><write/></locktype><owner><href>"
                               "http://example.org/~joe/contact.html</href></owner>\n</lockinfo>\n";
    CHECK(cf_davxml_parse_lockinfo(S(neon), MAX, &li, &e) == CF_OK && !li.refresh && !li.shared && li.owner != NULL,
          "exclusive write lock with an owner href");
    CHECK_STR(li.owner, "<D:owner xmlns:D=\"DAV:\"><D:href>http://example.org/~joe/contact.html</D:href></D:owner>",
              "owner canonical");
    cf_davxml_lockinfo_clear(&li);
    static const char shared[] = "<D:lockinfo xmlns:D=\"DAV:\"><D:locktype><D:write/></D:locktype><D:lockscope>"
                                 "<D:shared/></D:lockscope><D:owner>litmus test suite</D:owner></D:lockinfo>";
    CHECK(cf_davxml_parse_lockinfo(S(shared), MAX, &li, &e) == CF_OK && li.shared &&
              strcmp(li.owner, "<D:owner xmlns:D=\"DAV:\">litmus test suite</D:owner>") == 0,
          "shared lock, text owner, any order");
    cf_davxml_lockinfo_clear(&li);
    static const char no_owner[] = "<lockinfo xmlns=\"DAV:\"><lockscope><exclusive/></lockscope><locktype><write/>"
                                   "</locktype></lockinfo>";
    CHECK(cf_davxml_parse_lockinfo(S(no_owner), MAX, &li, &e) == CF_OK && li.owner == NULL && li.owner_len == 0,
          "no owner");
    cf_davxml_lockinfo_clear(&li);
    CHECK(cf_davxml_parse_lockinfo("", 0, MAX, &li, &e) == CF_OK && li.refresh, "empty LOCK body: refresh");

    CHECK_INT(li_err(S("<lockinfo xmlns=\"DAV:\"><locktype><write/></locktype></lockinfo>")), CF_DAVXML_ESTRUCTURE,
              "no lockscope");
    CHECK_INT(li_err(S("<lockinfo xmlns=\"DAV:\"><lockscope><exclusive/></lockscope></lockinfo>")), CF_DAVXML_ESTRUCTURE,
              "no locktype");
    CHECK_INT(li_err(S("<lockinfo xmlns=\"DAV:\"><lockscope><exclusive/><shared/></lockscope><locktype><write/>"
                       "</locktype></lockinfo>")),
              CF_DAVXML_ESTRUCTURE, "exclusive and shared");
    CHECK_INT(li_err(S("<lockinfo xmlns=\"DAV:\"><lockscope/><locktype><write/></locktype></lockinfo>")),
              CF_DAVXML_ESTRUCTURE, "empty lockscope");
    CHECK_INT(li_err(S("<lockinfo xmlns=\"DAV:\"><lockscope><exclusive/></lockscope><lockscope><exclusive/></lockscope>"
                       "<locktype><write/></locktype></lockinfo>")),
              CF_DAVXML_ESTRUCTURE, "two lockscopes");
    CHECK_INT(li_err(S("<lockinfo xmlns=\"DAV:\"><lockscope><x:sticky xmlns:x=\"urn:x\"/></lockscope><locktype><write/>"
                       "</locktype></lockinfo>")),
              CF_DAVXML_EUNSUPPORTED, "unknown scope");
    CHECK_INT(li_err(S("<lockinfo xmlns=\"DAV:\"><lockscope><exclusive/></lockscope><locktype><read/></locktype>"
                       "</lockinfo>")),
              CF_DAVXML_EUNSUPPORTED, "read lock");
    CHECK_INT(li_err(S("<propfind xmlns=\"DAV:\"><allprop/></propfind>")), CF_DAVXML_EROOT, "LOCK with propfind");
}

static void test_http_map(void)
{
    static const int want[CF_DAVXML_ERR_COUNT] = {200, 413, 400, 400, 400, 400, 400, 400, 413, 422, 507, 422};
    for (int i = 0; i < CF_DAVXML_ERR_COUNT; i++)
        CHECK_INT(cf_davxml_err_http((enum cf_davxml_err)i), want[i], "%s → %d", cf_davxml_err_name((enum cf_davxml_err)i),
                  want[i]);
    CHECK_INT(cf_davxml_err_http(CF_DAVXML_ERR_COUNT), 500, "out of range");
}

/* Runs python3 on the document: parses it with xml.etree and prints what it read, one line each. */
static char *etree_read(const char *doc, size_t len)
{
    char path[] = "/tmp/test_davxml_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "w");
    fwrite(doc, 1, len, f);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys, xml.etree.ElementTree as T\n"
             "r = T.parse(sys.argv[1]).getroot()\n"
             "for e in r.iter():\n"
             "  print(e.tag, sorted(e.attrib.items()), repr((e.text or \"\").strip()))' %s",
             path);
    FILE *p = popen(cmd, "r");
    struct cf_davxml_buf out = {0};
    char line[1024];
    while (p != NULL && fgets(line, sizeof line, p) != NULL)
        cf_davxml_ms_prop_raw(&out, line, strlen(line));
    int rc = p != NULL ? pclose(p) : -1;
    unlink(path);
    if (rc != 0) {
        cf_davxml_buf_free(&out);
        return NULL;
    }
    return out.data;
}

static void test_writer(void)
{
    struct cf_davxml_propertyupdate pu;
    enum cf_davxml_err e;
    static const char body[] = "<propertyupdate xmlns=\"DAV:\"><set><prop><D:x xmlns:D=\"urn:not-dav\" "
                               "xml:lang=\"de\">a<b>&amp;</b></D:x></prop></set></propertyupdate>";
    if (cf_davxml_parse_propertyupdate(S(body), MAX, &pu, &e) != CF_OK || pu.n_ops != 1) {
        CHECK(false, "writer fixture parses");
        return;
    }
    struct cf_davxml_buf b = {0};
    cf_davxml_ms_begin(&b);
    cf_davxml_ms_response_begin(&b, S("/dav/private/a%20b/<&>"));
    cf_davxml_ms_propstat_begin(&b);
    cf_davxml_ms_prop_text(&b, "DAV:", "getetag", S("\"3f-a&b\""));
    cf_davxml_ms_prop_open(&b, "DAV:", "resourcetype");
    cf_davxml_ms_prop_text(&b, "DAV:", "collection", NULL, 0);
    cf_davxml_ms_prop_close(&b, "DAV:", "resourcetype");
    cf_davxml_ms_prop_text(&b, "", "nons", S("x<y"));
    cf_davxml_ms_prop_raw(&b, pu.ops[0].value, pu.ops[0].value_len);
    cf_davxml_ms_propstat_end(&b, 200);
    cf_davxml_ms_propstat_begin(&b);
    cf_davxml_ms_prop_text(&b, "http://example.com/?a=1&b=2", "missing", NULL, 0);
    cf_davxml_ms_propstat_end(&b, 404);
    cf_davxml_ms_response_end(&b);
    cf_davxml_ms_response_begin(&b, S("/dav/private/gone"));
    cf_davxml_ms_response_status(&b, 424);
    cf_davxml_ms_response_end(&b);
    cf_davxml_ms_end(&b);
    cf_davxml_propertyupdate_clear(&pu);

    static const char want[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">"
        "<D:response><D:href>/dav/private/a%20b/&lt;&amp;&gt;</D:href>"
        "<D:propstat><D:prop><D:getetag>\"3f-a&amp;b\"</D:getetag><D:resourcetype><D:collection/></D:resourcetype>"
        "<nons>x&lt;y</nons><n0:x xmlns:n0=\"urn:not-dav\" xmlns:D=\"DAV:\" xml:lang=\"de\">a<D:b>&amp;</D:b></n0:x>"
        "</D:prop>"
        "<D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
        "<D:propstat><D:prop><P:missing xmlns:P=\"http://example.com/?a=1&amp;b=2\"/></D:prop>"
        "<D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response>"
        "<D:response><D:href>/dav/private/gone</D:href><D:status>HTTP/1.1 424 Failed Dependency</D:status></D:response>"
        "</D:multistatus>\n";
    CHECK(b.len == sizeof want - 1 && memcmp(b.data, want, b.len) == 0, "multistatus bytes");
    if (b.len != sizeof want - 1 || memcmp(b.data, want, b.len) != 0)
        printf("# got: %s\n", b.data);

    /* An independent parser reads back what was meant. */
    static const char read_back[] =
        "{DAV:}multistatus [] ''\n"
        "{DAV:}response [] ''\n"
        "{DAV:}href [] '/dav/private/a%20b/<&>'\n"
        "{DAV:}propstat [] ''\n"
        "{DAV:}prop [] ''\n"
        "{DAV:}getetag [] '\"3f-a&b\"'\n"
        "{DAV:}resourcetype [] ''\n"
        "{DAV:}collection [] ''\n"
        "nons [] 'x<y'\n"
        "{urn:not-dav}x [('{http://www.w3.org/XML/1998/namespace}lang', 'de')] 'a'\n"
        "{DAV:}b [] '&'\n"
        "{DAV:}status [] 'HTTP/1.1 200 OK'\n"
        "{DAV:}propstat [] ''\n"
        "{DAV:}prop [] ''\n"
        "{http://example.com/?a=1&b=2}missing [] ''\n"
        "{DAV:}status [] 'HTTP/1.1 404 Not Found'\n"
        "{DAV:}response [] ''\n"
        "{DAV:}href [] '/dav/private/gone'\n"
        "{DAV:}status [] 'HTTP/1.1 424 Failed Dependency'\n";
    char *got = etree_read(b.data, b.len);
    CHECK_STR(got, read_back, "xml.etree reads the multistatus back");
    free(got);

    cf_davxml_buf_free(&b);
    cf_davxml_buf_free(&b); /* twice: harmless */

    CHECK_STR(cf_davxml_status_line(207), "HTTP/1.1 500 Internal Server Error", "unknown status in a propstat");
    CHECK_STR(cf_davxml_status_line(423), "HTTP/1.1 423 Locked", "423");
}

static void test_lock_answer(void)
{
    struct cf_davxml_lockinfo li;
    enum cf_davxml_err e;
    static const char body[] = "<lockinfo xmlns=\"DAV:\"><lockscope><shared/></lockscope><locktype><write/></locktype>"
                               "<owner><href>mailto:joe@example.org</href></owner></lockinfo>";
    if (cf_davxml_parse_lockinfo(S(body), MAX, &li, &e) != CF_OK) {
        CHECK(false, "lock fixture parses");
        return;
    }
    struct cf_davxml_activelock lk = {.shared = li.shared, .depth_infinity = true, .owner = li.owner,
                                      .owner_len = li.owner_len, .timeout_s = 600,
                                      .token = "opaquelocktoken:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
                                      .root = "/dav/private/a&b/"};
    struct cf_davxml_buf b = {0};
    cf_davxml_lock_answer(&b, &lk);
    CHECK_STR(b.data,
              "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery><D:activelock>"
              "<D:locktype><D:write/></D:locktype><D:lockscope><D:shared/></D:lockscope><D:depth>infinity</D:depth>"
              "<D:owner xmlns:D=\"DAV:\"><D:href>mailto:joe@example.org</D:href></D:owner><D:timeout>Second-600"
              "</D:timeout><D:locktoken><D:href>opaquelocktoken:f81d4fae-7dec-11d0-a765-00a0c91e6bf6</D:href>"
              "</D:locktoken><D:lockroot><D:href>/dav/private/a&amp;b/</D:href></D:lockroot></D:activelock>"
              "</D:lockdiscovery></D:prop>\n",
              "LOCK answer bytes");
    char *got = etree_read(b.data, b.len);
    CHECK(got != NULL && strstr(got, "{DAV:}owner [] ''\n{DAV:}href [] 'mailto:joe@example.org'\n") != NULL &&
              strstr(got, "{DAV:}href [] '/dav/private/a&b/'\n") != NULL,
          "xml.etree reads the LOCK answer");
    free(got);
    cf_davxml_buf_free(&b);
    lk.timeout_s = 0;
    lk.owner = NULL;
    lk.shared = false;
    lk.depth_infinity = false;
    cf_davxml_activelock(&b, &lk);
    CHECK(strstr(b.data, "<D:timeout>Infinite</D:timeout>") != NULL && strstr(b.data, "<D:exclusive/>") != NULL &&
              strstr(b.data, "<D:depth>0</D:depth>") != NULL && strstr(b.data, "owner") == NULL,
          "exclusive, depth 0, infinite, no owner");
    cf_davxml_buf_free(&b);
    cf_davxml_lockinfo_clear(&li);

    cf_davxml_error(&b, "propfind-finite-depth", NULL);
    CHECK_STR(b.data, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\"><D:propfind-finite-depth/>"
                      "</D:error>\n",
              "error body");
    cf_davxml_buf_free(&b);
    cf_davxml_error(&b, "lock-token-submitted", "/dav/private/x<y");
    CHECK_STR(b.data, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\"><D:lock-token-submitted>"
                      "<D:href>/dav/private/x&lt;y</D:href></D:lock-token-submitted></D:error>\n",
              "error body with an href");
    got = etree_read(b.data, b.len);
    CHECK_STR(got, "{DAV:}error [] ''\n{DAV:}lock-token-submitted [] ''\n{DAV:}href [] '/dav/private/x<y'\n",
              "xml.etree reads the error body");
    free(got);
    cf_davxml_buf_free(&b);

    /* Characters XML cannot carry become U+FFFD; the document stays well-formed. */
    cf_davxml_ms_begin(&b);
    cf_davxml_ms_response_begin(&b, S("/a\x01" "b\xef\xbf\xbe"));
    cf_davxml_ms_response_status(&b, 404);
    cf_davxml_ms_response_end(&b);
    cf_davxml_ms_end(&b);
    got = etree_read(b.data, b.len);
    CHECK(got != NULL && strstr(got, "{DAV:}href [] '/a\xef\xbf\xbd" "b\xef\xbf\xbd'") != NULL,
          "controls and U+FFFE replaced");
    free(got);
    cf_davxml_buf_free(&b);
}

int main(void)
{
    test_propfind();
    test_hostile();
    test_proppatch();
    test_lock();
    test_http_map();
    test_writer();
    test_lock_answer();
    return tap_done();
}
