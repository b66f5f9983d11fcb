/*
 * fuzz_record.c: the on-disk record format (storage/record.c) and the node record built on it
 * (cf_node_decode in storage/node.c), as read back after unsealing.
 *
 * Invariants: the reader never reads outside the record; the fields it returns tile the record
 * exactly (version byte, then tag ‖ length ‖ value back to back), so writing them again with the
 * writer gives the same bytes; a string field accepted has no NUL; integers and ids only at their
 * exact lengths; a node decoded from hostile bytes has a valid type and a name, and everything the
 * encoder persists survives encode → decode unchanged.
 */
#include <string.h>

#include "fuzz.h"
#include "record.h"
#include "store_internal.h"

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void check_reader(const uint8_t *p, size_t n)
{
    struct cf_rec_r r;
    if (cf_rec_r_init(&r, p, n) != CF_OK) {
        FUZZ_CHECK(n == 0 || n > CF_REC_MAX || p[0] != CF_REC_VERSION);
        return;
    }
    struct cf_rec_w w;
    cf_rec_w_init(&w);
    size_t expect_off = 1;
    uint8_t tag;
    const uint8_t *v;
    size_t vl;
    enum cf_status st;
    while ((st = cf_rec_next(&r, &tag, &v, &vl)) == CF_OK) {
        FUZZ_CHECK(tag == p[expect_off] && v == p + expect_off + 5 && v + vl <= p + n);
        expect_off += 5 + vl;
        cf_rec_put_bytes(&w, tag, v, vl);
        uint64_t u;
        struct cf_id id;
        char *str = NULL;
        FUZZ_CHECK((cf_rec_u64(v, vl, &u) == CF_OK) == (vl == 8));
        if (vl == 8)
            FUZZ_CHECK(u == cf_get_be64(v));
        FUZZ_CHECK((cf_rec_id(v, vl, &id) == CF_OK) == (vl == CF_ID_LEN));
        if (cf_rec_str(v, vl, &str) == CF_OK) {
            FUZZ_CHECK(strlen(str) == vl && memcmp(str, v, vl) == 0);
        } else {
            FUZZ_CHECK(memchr(v, '\0', vl) != NULL);
        }
        free(str);
    }
    FUZZ_CHECK(st == CF_ENOTFOUND || st == CF_ECORRUPT);
    if (st == CF_ENOTFOUND) {
        FUZZ_CHECK(expect_off == n && w.len == n && memcmp(w.buf, p, n) == 0);
    } else {
        /* Refused only for a truncated field. */
        FUZZ_CHECK(n - expect_off < 5 || cf_get_be32(p + expect_off + 1) > n - expect_off - 5);
    }
    cf_rec_w_free(&w);
}

static void check_node(const uint8_t *p, size_t n)
{
    struct cf_node a, b;
    memset(&a, 0, sizeof a);
    cf_id_new(&a.tenant);
    cf_id_new(&a.id);
    struct cf_id tenant = a.tenant, id = a.id;
    enum cf_status st = cf_node_decode(p, n, &a);
    FUZZ_CHECK(cf_id_equal(&a.tenant, &tenant) && cf_id_equal(&a.id, &id)); /* kept either way */
    if (st != CF_OK) {
        FUZZ_CHECK(st == CF_ECORRUPT && a.name == NULL && a.mime == NULL && a.scan.result == NULL);
        return;
    }
    FUZZ_CHECK(a.type == CF_NODE_FOLDER || a.type == CF_NODE_FILE);
    FUZZ_CHECK(a.name != NULL && (a.type == CF_NODE_FOLDER || a.mime != NULL));
    struct cf_rec_w w;
    cf_rec_w_init(&w);
    cf_node_encode(&a, &w);
    memset(&b, 0, sizeof b);
    FUZZ_CHECK(cf_node_decode(w.buf, w.len, &b) == CF_OK);
    FUZZ_CHECK(a.type == b.type && a.root_kind == b.root_kind && same_str(a.name, b.name));
    FUZZ_CHECK(cf_id_equal(&a.parent, &b.parent) && cf_id_equal(&a.owner, &b.owner));
    FUZZ_CHECK(a.created_at == b.created_at && a.modified_at == b.modified_at && a.trashed_at == b.trashed_at &&
               a.archived_at == b.archived_at);
    if (a.type == CF_NODE_FILE) {
        FUZZ_CHECK(a.version == b.version && a.size == b.size && memcmp(a.sha256, b.sha256, sizeof a.sha256) == 0);
        FUZZ_CHECK(same_str(a.mime, b.mime) && same_str(a.scan.result, b.scan.result));
        if (a.scan.result != NULL)
            FUZZ_CHECK(same_str(a.scan.detail, b.scan.detail) && a.scan.at == b.scan.at);
    }
    cf_rec_w_free(&w);
    cf_node_clear(&a);
    cf_node_clear(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CF_REC_MAX + 1)
        return 0;
    check_reader(data, size);
    check_node(data, size);
    return 0;
}
