/*
 * test_record.c: the TLV record encoding of storage/record.c: writer and reader round trips, exact
 * wire bytes, skipping of unknown tags, rejection of truncated or malformed records and fields.
 */
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "tap.h"

enum { T_U64 = 1, T_ID = 2, T_STR = 3, T_BYTES = 4, T_EMPTY = 5, T_UNKNOWN = 200 };

static void test_be(void)
{
    uint8_t b[8];
    cf_put_be32(b, 0x01020304u);
    CHECK(b[0] == 1 && b[1] == 2 && b[2] == 3 && b[3] == 4, "put_be32 is big-endian");
    CHECK(cf_get_be32(b) == 0x01020304u, "get_be32 reads it back");
    cf_put_be64(b, 0x0102030405060708ull);
    CHECK(b[0] == 1 && b[3] == 4 && b[7] == 8, "put_be64 is big-endian");
    CHECK(cf_get_be64(b) == 0x0102030405060708ull, "get_be64 reads it back");
    cf_put_be64(b, UINT64_MAX);
    CHECK(cf_get_be64(b) == UINT64_MAX, "be64 round trip of UINT64_MAX");
    cf_put_be32(b, 0xfffffffeu);
    CHECK(cf_get_be32(b) == 0xfffffffeu, "be32 round trip of 0xfffffffe (no sign extension)");
}

static void test_exact_bytes(void)
{
    struct cf_rec_w w;
    cf_rec_w_init(&w);
    CHECK_INT(w.len, 1, "a new record holds only the version byte");
    CHECK_INT(w.buf[0], CF_REC_VERSION, "first byte is CF_REC_VERSION");
    cf_rec_put_u64(&w, 7, 0x0102030405060708ull);
    static const uint8_t want[] = {CF_REC_VERSION, 7, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
    CHECK_INT(w.len, sizeof want, "u64 field is 13 bytes");
    CHECK(memcmp(w.buf, want, sizeof want) == 0, "u64 field bytes: tag, be32 length 8, be64 value");
    cf_rec_put_str(&w, 9, NULL);
    CHECK_INT(w.len, sizeof want, "put_str(NULL) writes nothing");
    cf_rec_put_str(&w, 9, "hi");
    static const uint8_t want2[] = {9, 0, 0, 0, 2, 'h', 'i'};
    CHECK_INT(w.len, sizeof want + sizeof want2, "str field is 5 + length bytes");
    CHECK(memcmp(w.buf + sizeof want, want2, sizeof want2) == 0, "str field bytes, no NUL stored");
    cf_rec_w_free(&w);
    CHECK(w.buf == NULL && w.len == 0 && w.cap == 0, "free resets the writer");
}

static void test_roundtrip(void)
{
    struct cf_rec_w w;
    struct cf_id id, id2;
    uint8_t big[10000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 13);
    for (int i = 0; i < CF_ID_LEN; i++)
        id.b[i] = (uint8_t)(0xa0 + i);

    cf_rec_w_init(&w);
    cf_rec_put_u64(&w, T_U64, 0xdeadbeefcafef00dull);
    cf_rec_put_bytes(&w, T_UNKNOWN, "ignored", 7);
    cf_rec_put_id(&w, T_ID, &id);
    cf_rec_put_str(&w, T_STR, "hello, world");
    cf_rec_put_bytes(&w, T_BYTES, big, sizeof big); /* forces the buffer to grow past 256 */
    cf_rec_put_bytes(&w, T_EMPTY, NULL, 0);
    cf_rec_put_u64(&w, T_UNKNOWN + 1, 1);
    CHECK(w.cap >= w.len, "capacity covers the length");
    CHECK_INT(w.len, 1 + 13 + 12 + 21 + 17 + (5 + sizeof big) + 5 + 13, "record length is the sum of its fields");

    struct cf_rec_r r;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    uint64_t u = 0;
    char *str = NULL;
    int seen_u64 = 0, seen_id = 0, seen_str = 0, seen_bytes = 0, seen_empty = 0, unknown = 0, fields = 0;
    enum cf_status st;
    CHECK_INT(cf_rec_r_init(&r, w.buf, w.len), CF_OK, "reader accepts the record");
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        fields++;
        switch (tag) {
        case T_U64:
            seen_u64 = cf_rec_u64(v, vl, &u) == CF_OK && u == 0xdeadbeefcafef00dull;
            break;
        case T_ID:
            seen_id = cf_rec_id(v, vl, &id2) == CF_OK && cf_id_equal(&id, &id2);
            break;
        case T_STR:
            seen_str = cf_rec_str(v, vl, &str) == CF_OK && strcmp(str, "hello, world") == 0;
            break;
        case T_BYTES:
            seen_bytes = vl == sizeof big && memcmp(v, big, sizeof big) == 0;
            break;
        case T_EMPTY:
            seen_empty = vl == 0;
            break;
        default:
            unknown++; /* a reader skips tags it does not know */
            break;
        }
    }
    CHECK_INT(st, CF_ENOTFOUND, "iteration ends with CF_ENOTFOUND");
    CHECK_INT(fields, 7, "seven fields read");
    CHECK(seen_u64, "u64 field round trip");
    CHECK(seen_id, "id field round trip");
    CHECK(seen_str, "string field round trip");
    CHECK(seen_bytes, "10000-byte field round trip across buffer growth");
    CHECK(seen_empty, "empty field round trip");
    CHECK_INT(unknown, 2, "two unknown tags skipped without error");
    CHECK_INT(cf_rec_next(&r, &tag, &v, &vl), CF_ENOTFOUND, "next after the end is still CF_ENOTFOUND");
    free(str);
    cf_rec_w_free(&w);

    /* An empty record (version byte only). */
    static const uint8_t empty[] = {CF_REC_VERSION};
    CHECK_INT(cf_rec_r_init(&r, empty, 1), CF_OK, "version-only record accepted");
    CHECK_INT(cf_rec_next(&r, &tag, &v, &vl), CF_ENOTFOUND, "version-only record has no fields");
}

/* Every truncation of a sample record: a cut at a field boundary is a shorter valid record (fewer
 * fields), any other cut must give CF_ECORRUPT; never a field read past the cut. */
static void test_truncation(void)
{
    struct cf_rec_w w;
    struct cf_id id;
    size_t bounds[8], nb = 0;
    memset(id.b, 0x42, sizeof id.b);
    cf_rec_w_init(&w);
    bounds[nb++] = w.len;
    cf_rec_put_u64(&w, T_U64, 99);
    bounds[nb++] = w.len;
    cf_rec_put_id(&w, T_ID, &id);
    bounds[nb++] = w.len;
    cf_rec_put_str(&w, T_STR, "some text");
    bounds[nb++] = w.len;
    cf_rec_put_bytes(&w, T_EMPTY, NULL, 0);
    bounds[nb++] = w.len;
    cf_rec_put_bytes(&w, T_BYTES, "\x01\x02\x03", 3);
    bounds[nb++] = w.len;

    struct cf_rec_r r;
    CHECK_INT(cf_rec_r_init(&r, w.buf, 0), CF_ECORRUPT, "zero-length record rejected");

    int wrong = 0, corrupt_cuts = 0, valid_cuts = 0;
    for (size_t cut = 1; cut < w.len; cut++) {
        size_t boundary_fields = SIZE_MAX;
        for (size_t i = 0; i < nb; i++)
            if (bounds[i] == cut)
                boundary_fields = i;
        /* Copy into an exactly-sized buffer so that ASan catches any read past the cut. */
        uint8_t *p = cf_xmalloc(cut);
        memcpy(p, w.buf, cut);
        uint8_t tag;
        const uint8_t *v;
        size_t vl, fields = 0;
        enum cf_status st = cf_rec_r_init(&r, p, cut);
        if (st != CF_OK) {
            wrong++;
            free(p);
            continue;
        }
        while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
            fields++;
            if (v + vl > p + cut)
                wrong++;
        }
        if (boundary_fields != SIZE_MAX) {
            valid_cuts++;
            if (st != CF_ENOTFOUND || fields != boundary_fields)
                wrong++;
        } else {
            corrupt_cuts++;
            if (st != CF_ECORRUPT)
                wrong++;
        }
        free(p);
    }
    CHECK_INT(valid_cuts, nb - 1, "cuts at the 5 field boundaries before the end are shorter valid records");
    CHECK_INT(corrupt_cuts, w.len - 1 - (nb - 1), "every other cut is a mid-field cut");
    CHECK_INT(wrong, 0, "every mid-field truncation gives CF_ECORRUPT, every boundary cut is valid");

    /* A length field claiming more than the record holds, including one that would wrap. */
    uint8_t bad[16] = {CF_REC_VERSION, 1, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    CHECK_INT(cf_rec_r_init(&r, bad, 14), CF_OK, "init ok");
    CHECK_INT(cf_rec_next(&r, &tag, &v, &vl), CF_ECORRUPT, "length one past the end rejected");
    bad[2] = bad[3] = bad[4] = bad[5] = 0xff;
    CHECK_INT(cf_rec_r_init(&r, bad, 14), CF_OK, "init ok");
    CHECK_INT(cf_rec_next(&r, &tag, &v, &vl), CF_ECORRUPT, "length 0xffffffff rejected");
    cf_rec_w_free(&w);
}

static void test_bad_records(void)
{
    struct cf_rec_r r;
    uint8_t rec[6] = {CF_REC_VERSION, 1, 0, 0, 0, 0};
    CHECK_INT(cf_rec_r_init(&r, rec, sizeof rec), CF_OK, "version 1 accepted");
    rec[0] = 0;
    CHECK_INT(cf_rec_r_init(&r, rec, sizeof rec), CF_ECORRUPT, "version byte 0 rejected");
    rec[0] = CF_REC_VERSION + 1;
    CHECK_INT(cf_rec_r_init(&r, rec, sizeof rec), CF_ECORRUPT, "version byte 2 rejected");
    rec[0] = 0xff;
    CHECK_INT(cf_rec_r_init(&r, rec, sizeof rec), CF_ECORRUPT, "version byte 0xff rejected");

    /* Over CF_REC_MAX. */
    uint8_t *huge = cf_xcalloc(CF_REC_MAX + 1, 1);
    huge[0] = CF_REC_VERSION;
    CHECK_INT(cf_rec_r_init(&r, huge, CF_REC_MAX + 1), CF_ECORRUPT, "record over CF_REC_MAX rejected");
    CHECK_INT(cf_rec_r_init(&r, huge, CF_REC_MAX), CF_OK, "record of exactly CF_REC_MAX accepted");
    free(huge);
}

static void test_decoders(void)
{
    uint8_t buf[32];
    uint64_t u = 77;
    struct cf_id id;
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(i + 1);
    CHECK_INT(cf_rec_u64(buf, 8, &u), CF_OK, "u64 of 8 bytes");
    CHECK(u == 0x0102030405060708ull, "u64 value is big-endian");
    u = 77;
    CHECK_INT(cf_rec_u64(buf, 7, &u), CF_ECORRUPT, "u64 of 7 bytes rejected");
    CHECK_INT(cf_rec_u64(buf, 9, &u), CF_ECORRUPT, "u64 of 9 bytes rejected");
    CHECK_INT(cf_rec_u64(buf, 0, &u), CF_ECORRUPT, "u64 of 0 bytes rejected");
    CHECK(u == 77, "rejected u64 leaves the output alone");
    CHECK_INT(cf_rec_id(buf, 16, &id), CF_OK, "id of 16 bytes");
    CHECK(id.b[0] == 1 && id.b[15] == 16, "id bytes copied");
    CHECK_INT(cf_rec_id(buf, 15, &id), CF_ECORRUPT, "id of 15 bytes rejected");
    CHECK_INT(cf_rec_id(buf, 17, &id), CF_ECORRUPT, "id of 17 bytes rejected");

    char *s = NULL;
    CHECK_INT(cf_rec_str((const uint8_t *)"abc", 3, &s), CF_OK, "plain string accepted");
    CHECK_STR(s, "abc", "string copied and NUL-terminated");
    /* A second decode replaces (and frees: LeakSanitizer would see otherwise) the first. */
    CHECK_INT(cf_rec_str((const uint8_t *)"xyzw", 2, &s), CF_OK, "second string accepted");
    CHECK_STR(s, "xy", "string is exactly len bytes");
    CHECK_INT(cf_rec_str((const uint8_t *)"a\0c", 3, &s), CF_ECORRUPT, "embedded NUL rejected");
    CHECK_STR(s, "xy", "rejected string leaves the previous value");
    CHECK_INT(cf_rec_str((const uint8_t *)"ab\0", 3, &s), CF_ECORRUPT, "trailing NUL inside the length rejected");
    CHECK_INT(cf_rec_str((const uint8_t *)"\0", 1, &s), CF_ECORRUPT, "lone NUL rejected");
    CHECK_INT(cf_rec_str((const uint8_t *)"", 0, &s), CF_OK, "empty string accepted");
    CHECK_STR(s, "", "empty string decodes to \"\"");
    free(s);
}

int main(void)
{
    test_be();
    test_exact_bytes();
    test_roundtrip();
    test_truncation();
    test_bad_records();
    test_decoders();
    return tap_done();
}
