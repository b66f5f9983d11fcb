/*
 * test_jsonw.c: the direct JSON writer (src/api/jsonw.h) against jansson: every string and every node
 * it writes must be byte for byte what json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII) gives for the
 * tree cf_node_json builds (the metadata GET and the children listing send the writer's bytes), and
 * where jansson refuses a value (invalid UTF-8, a NULL string) the writer must say so (w.bad).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/files.h"
#include "api/jsonw.h"
#include "tap.h"

static uint32_t rng = 2463534242u;
static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* A random string: ASCII with every escape, controls, 2/3/4-byte UTF-8, sometimes broken. */
static void random_name(char *out, size_t cap, bool allow_invalid)
{
    static const char *const pieces[] = {
        "a", "Z", "0", " ", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x01", "\x1f", "\x7f", "é", "ß", "€",
        "中文", "😀", "\xf4\x8f\xbf\xbf" /* U+10FFFF */, "\xef\xbf\xbf" /* U+FFFF */, "\xc2\x80", "'", "<", "&", "%"};
    static const char *const broken[] = {"\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80" /* a surrogate */,
                                         "\xf5\x80\x80\x80", "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xff"};
    size_t n = 0, parts = next_rand() % 12;
    out[0] = 0;
    for (size_t i = 0; i < parts; i++) {
        const char *p = allow_invalid && next_rand() % 8 == 0 ? broken[next_rand() % (sizeof broken / sizeof *broken)]
                                                               : pieces[next_rand() % (sizeof pieces / sizeof *pieces)];
        size_t l = strlen(p);
        if (n + l + 1 > cap)
            break;
        memcpy(out + n, p, l + 1);
        n += l;
    }
}

static void test_strings(void)
{
    int diff = 0, badmiss = 0, bad = 0;
    char s[256];
    for (int i = 0; i < 20000; i++) {
        random_name(s, sizeof s, true);
        json_t *j = json_string(s);
        struct cf_jw w;
        cf_jw_init(&w, 8);
        cf_jw_str(&w, s);
        if (j == NULL) {
            bad++;
            if (!w.bad)
                badmiss++;
        } else {
            char *d = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
            if (w.bad || strlen(d) != w.n || memcmp(d, w.p, w.n) != 0) {
                if (diff++ < 3)
                    printf("# differs: jansson %s, writer %.*s\n", d, (int)w.n, w.p);
            }
            free(d);
            json_decref(j);
        }
        cf_jw_free(&w);
    }
    CHECK_INT(diff, 0, "20000 random strings: the writer's bytes are jansson's");
    CHECK(bad > 100, "invalid UTF-8 was exercised (%d strings)", bad);
    CHECK_INT(badmiss, 0, "every string jansson refuses sets bad");

    /* Every BMP code point but the surrogates, and a sample of astral ones, one at a time. */
    int cpdiff = 0;
    for (uint32_t cp = 1; cp <= 0x10FFFF; cp += cp < 0x10000 ? 1 : 97) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        char u[5] = {0};
        if (cp < 0x80)
            u[0] = (char)cp;
        else if (cp < 0x800) {
            u[0] = (char)(0xC0 | cp >> 6);
            u[1] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            u[0] = (char)(0xE0 | cp >> 12);
            u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (char)(0x80 | (cp & 0x3F));
        } else {
            u[0] = (char)(0xF0 | cp >> 18);
            u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[3] = (char)(0x80 | (cp & 0x3F));
        }
        json_t *j = json_string(u);
        char *d = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY) : NULL;
        struct cf_jw w;
        cf_jw_init(&w, 8);
        cf_jw_str(&w, u);
        if (d == NULL || w.bad || strlen(d) != w.n || memcmp(d, w.p, w.n) != 0)
            cpdiff++;
        free(d);
        json_decref(j);
        cf_jw_free(&w);
    }
    CHECK_INT(cpdiff, 0, "every code point is escaped as jansson escapes it");

    struct cf_jw w;
    cf_jw_init(&w, 8);
    cf_jw_str(&w, NULL);
    CHECK(w.bad, "a NULL string sets bad");
    cf_jw_free(&w);
}

static void random_id(struct cf_id *id, bool maybe_zero)
{
    for (size_t i = 0; i < CF_ID_LEN; i++)
        id->b[i] = (uint8_t)next_rand();
    if (maybe_zero && next_rand() % 4 == 0)
        memset(id->b, 0, CF_ID_LEN);
}

static void test_nodes(void)
{
    int diff = 0, same = 0, fallbacks = 0, wrongbad = 0;
    char name[256], mime[64], det[64];
    for (int i = 0; i < 5000; i++) {
        struct cf_node n;
        memset(&n, 0, sizeof n);
        random_id(&n.id, false);
        random_id(&n.parent, true);
        random_id(&n.owner, true);
        n.type = next_rand() % 2 ? CF_NODE_FILE : CF_NODE_FOLDER;
        n.root_kind = (enum cf_space_kind)(next_rand() % 3);
        random_name(name, sizeof name, next_rand() % 10 == 0);
        n.name = next_rand() % 50 == 0 ? NULL : name;
        n.created_at = (uint64_t)next_rand() * 1000 + (next_rand() % 1000);
        n.modified_at = n.created_at + next_rand() % 100000;
        n.version = next_rand() % 3 == 0 ? 0xffffffffu : next_rand() % 100 + 1;
        n.size = next_rand() % 4 == 0 ? ((uint64_t)next_rand() << 32 | next_rand()) >> 1 : next_rand() % 100000;
        for (size_t k = 0; k < CF_SHA256_LEN; k++)
            n.sha256[k] = (uint8_t)next_rand();
        random_name(mime, sizeof mime, next_rand() % 20 == 0);
        n.mime = next_rand() % 30 == 0 ? NULL : mime;
        if (next_rand() % 3 != 0) {
            n.scan.result = next_rand() % 2 ? (char *)"clean" : (char *)"unscannable";
            random_name(det, sizeof det, next_rand() % 20 == 0);
            n.scan.detail = next_rand() % 2 ? det : NULL;
            n.scan.engine = next_rand() % 4 ? (char *)"ClamAV 1.0.7" : NULL;
            n.scan.database = next_rand() % 4 ? (char *)"daily.cvd 27461" : NULL;
            n.scan.at = n.modified_at;
        }
        enum cf_level level = (enum cf_level)(next_rand() % 5);
        json_t *o = cf_node_json(&n, level);
        char *d = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        /* The tree drops a key whose value jansson refused: then it is not the full object. */
        size_t want = 12 + (n.type == CF_NODE_FILE && n.scan.result != NULL) + (n.root_kind != CF_SPACE_NONE);
        bool tree_refused = json_object_size(o) < want;
        json_decref(o);
        struct cf_jw w;
        cf_jw_init(&w, 64);
        cf_node_json_write(&w, &n, level);
        if (w.bad) {
            /* Only where the tree would differ from a full object: then the handler uses the tree. */
            fallbacks++;
            if (!tree_refused)
                wrongbad++;
        } else if (strlen(d) != w.n || memcmp(d, w.p, w.n) != 0) {
            if (diff++ < 3)
                printf("# differs:\n#  jansson %s\n#  writer  %.*s\n", d, (int)w.n, w.p);
        } else {
            same++;
        }
        free(d);
        cf_jw_free(&w);
    }
    CHECK_INT(diff, 0, "5000 random nodes: the writer's bytes are jansson's (%d compared, %d fell back)", same,
              fallbacks);
    CHECK(same > 4000, "most nodes were compared (%d)", same);
    CHECK_INT(wrongbad, 0, "the writer falls back only where jansson would refuse a value");
}

static void test_times(void)
{
    /* Direct dates against cf_time_rfc3339 (gmtime_r + snprintf), as cf_json_time would write them. */
    int diff = 0;
    for (int i = 0; i < 200000; i++) {
        uint64_t ms;
        switch (i % 4) {
        case 0: ms = (uint64_t)next_rand() * 1000 + next_rand() % 1000; break;        /* 1970..2106 */
        case 1: ms = ((uint64_t)next_rand() << 32 | next_rand()) % 253402300800000ull; break; /* ..9999 */
        case 2: ms = 253402300800000ull - 1 - next_rand() % 100000; break;             /* the last ms of 9999 */
        default: ms = (uint64_t)(i / 4) * 86400000ull + next_rand() % 3; break;        /* midnights */
        }
        char t[32];
        cf_time_rfc3339(ms, t);
        json_t *j = json_string(t);
        char *d = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
        json_decref(j);
        struct cf_jw w;
        cf_jw_init(&w, 8);
        cf_jw_time(&w, ms);
        if (strlen(d) != w.n || memcmp(d, w.p, w.n) != 0)
            if (diff++ < 3)
                printf("# %llu: jansson %s, writer %.*s\n", (unsigned long long)ms, d, (int)w.n, w.p);
        free(d);
        cf_jw_free(&w);
    }
    CHECK_INT(diff, 0, "200000 times from 1970 to 9999 are written as cf_json_time writes them");

    int idiff = 0;
    for (int i = 0; i < 100000; i++) {
        long long v = i < 40 ? (long long)(i % 2 ? -1 : 1) * (i < 20 ? i : (1ll << 62) + i)
                             : (long long)((uint64_t)next_rand() << 32 | next_rand()) >> (next_rand() % 63);
        json_t *j = json_integer(v);
        char *d = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(j);
        struct cf_jw w;
        cf_jw_init(&w, 8);
        cf_jw_int(&w, v);
        if (strlen(d) != w.n || memcmp(d, w.p, w.n) != 0)
            idiff++;
        free(d);
        cf_jw_free(&w);
    }
    CHECK_INT(idiff, 0, "integers are written as jansson writes them");
}

int main(void)
{
    test_times();
    test_strings();
    test_nodes();
    return tap_done();
}
