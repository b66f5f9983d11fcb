/*
 * blob_contract.h: the blob seam's contract (storage/engine/blob.h; docs/DESIGN.md "Chunk bodies: the
 * blob seam"), checked against any blob store: test_store.c runs it over the engine's chunks keyspace,
 * test_blob_rados.c over a RADOS pool of a throw-away Ceph. Include after tap.h.
 *
 * blob_contract(b, label) expects b empty and leaves exactly two blobs in it: blob_contract_key(2, 1,
 * 0) holding "sealed chunk 4" and blob_contract_key(0xff, 0xff, 0) holding "sealed chunk 5".
 */
#ifndef CF_TEST_BLOB_CONTRACT_H
#define CF_TEST_BLOB_CONTRACT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/blob.h"

struct blob_listing {
    size_t n, stop_after;
    uint8_t keys[8][CF_BLOB_KEY_LEN];
};

static int blob_collect(void *ctx, const uint8_t *key, size_t klen)
{
    struct blob_listing *l = ctx;
    if (klen == CF_BLOB_KEY_LEN && l->n < 8)
        memcpy(l->keys[l->n], key, klen);
    l->n++;
    return l->stop_after != 0 && l->n >= l->stop_after;
}

/* How many blobs start with prefix (SIZE_MAX if the listing failed); l gets the first 8. */
static size_t blob_list_count(struct cf_blobs *b, const uint8_t *prefix, size_t plen, struct blob_listing *l)
{
    char *err = NULL;
    memset(l, 0, sizeof *l);
    if (cf_blob_list(b, prefix, plen, blob_collect, l, &err) != CF_ENG_OK) {
        fprintf(stderr, "blob list: %s\n", err);
        cf_eng_free(err);
        return SIZE_MAX;
    }
    return l->n;
}

static void blob_contract_key(uint8_t t, uint8_t c, uint32_t index, uint8_t key[CF_BLOB_KEY_LEN])
{
    memset(key, t, CF_BLOB_TENANT_LEN);
    memset(key + CF_BLOB_TENANT_LEN, c, CF_BLOB_OWNER_LEN - CF_BLOB_TENANT_LEN);
    key[32] = (uint8_t)(index >> 24);
    key[33] = (uint8_t)(index >> 16);
    key[34] = (uint8_t)(index >> 8);
    key[35] = (uint8_t)index;
}

struct blob_view_seen {
    int calls;
    size_t len;
    char first[16];
};

static void blob_view_note(void *ctx, const char *val, size_t vlen)
{
    struct blob_view_seen *v = ctx;
    v->calls++;
    v->len = vlen;
    memcpy(v->first, val, vlen < sizeof v->first ? vlen : sizeof v->first);
}

static void blob_contract(struct cf_blobs *b, const char *label)
{
    struct blob_listing l;
    char *err = NULL, *v = NULL;
    size_t vl = 0;
    uint8_t k[6][CF_BLOB_KEY_LEN];
    /* Tenant 1: content 1 (three chunks, put out of order), content 2 (one); tenant 2 (one); an
     * all-0xff tenant (no upper bound for its listing). */
    blob_contract_key(1, 1, 2, k[0]);
    blob_contract_key(1, 1, 0, k[1]);
    blob_contract_key(1, 1, 1, k[2]);
    blob_contract_key(1, 2, 0, k[3]);
    blob_contract_key(2, 1, 0, k[4]);
    blob_contract_key(0xff, 0xff, 0, k[5]);
    for (int i = 0; i < 6; i++) {
        char val[40];
        int n = snprintf(val, sizeof val, "sealed chunk %d", i);
        CHECK_INT(cf_blob_put(b, k[i], val, (size_t)n, &err), CF_ENG_OK, "%s: put", label);
    }
    CHECK_INT(cf_blob_flush(b, &err), CF_ENG_OK, "%s: flush", label);
    CHECK_INT(cf_blob_get(b, k[3], &v, &vl, &err), CF_ENG_OK, "%s: get", label);
    CHECK(v != NULL && vl == 14 && memcmp(v, "sealed chunk 3", 14) == 0, "%s: get returns the bytes put", label);
    cf_eng_free(v);
    struct blob_view_seen seen;
    memset(&seen, 0, sizeof seen);
    CHECK_INT(cf_blob_view(b, k[2], blob_view_note, &seen, &err), CF_ENG_OK, "%s: view", label);
    CHECK(seen.calls == 1 && seen.len == 14 && memcmp(seen.first, "sealed chunk 2", 14) == 0,
          "%s: view shows the bytes put, once", label);
    /* A put replaces. */
    CHECK_INT(cf_blob_put(b, k[2], "replaced", 8, &err), CF_ENG_OK, "%s: put over a blob", label);
    memset(&seen, 0, sizeof seen);
    CHECK_INT(cf_blob_view(b, k[2], blob_view_note, &seen, &err), CF_ENG_OK, "%s: view the replaced blob", label);
    CHECK(seen.calls == 1 && seen.len == 8 && memcmp(seen.first, "replaced", 8) == 0,
          "%s: the new bytes, the old length gone", label);
    uint8_t absent[CF_BLOB_KEY_LEN];
    blob_contract_key(1, 1, 3, absent);
    v = NULL;
    CHECK_INT(cf_blob_get(b, absent, &v, &vl, &err), CF_ENG_NOTFOUND, "%s: an absent blob", label);
    CHECK(v == NULL, "%s: nothing returned for an absent blob", label);
    memset(&seen, 0, sizeof seen);
    CHECK_INT(cf_blob_view(b, absent, blob_view_note, &seen, &err), CF_ENG_NOTFOUND, "%s: view of an absent blob",
              label);
    CHECK_INT(seen.calls, 0, "%s: fn not called for an absent blob", label);

    CHECK_INT(blob_list_count(b, NULL, 0, &l), 6, "%s: list everything", label);
    CHECK(memcmp(l.keys[0], k[1], CF_BLOB_KEY_LEN) == 0 && memcmp(l.keys[3], k[3], CF_BLOB_KEY_LEN) == 0 &&
              memcmp(l.keys[4], k[4], CF_BLOB_KEY_LEN) == 0 && memcmp(l.keys[5], k[5], CF_BLOB_KEY_LEN) == 0,
          "%s: everything in key order", label);
    CHECK_INT(blob_list_count(b, k[0], CF_BLOB_TENANT_LEN, &l), 4, "%s: list a tenant", label);
    CHECK_INT(blob_list_count(b, k[0], CF_BLOB_OWNER_LEN, &l), 3, "%s: list a content", label);
    CHECK(memcmp(l.keys[0], k[1], CF_BLOB_KEY_LEN) == 0 && memcmp(l.keys[1], k[2], CF_BLOB_KEY_LEN) == 0 &&
              memcmp(l.keys[2], k[0], CF_BLOB_KEY_LEN) == 0,
          "%s: a content's chunks listed in index order", label);
    CHECK_INT(blob_list_count(b, k[0], 20, &l), 3, "%s: list a prefix between tenant and content", label);
    CHECK_INT(blob_list_count(b, k[0], 8, &l), 4, "%s: list a prefix shorter than a tenant", label);
    CHECK_INT(blob_list_count(b, k[5], CF_BLOB_TENANT_LEN, &l), 1, "%s: list the all-0xff tenant", label);
    memset(&l, 0, sizeof l);
    l.stop_after = 2;
    CHECK_INT(cf_blob_list(b, NULL, 0, blob_collect, &l, &err), CF_ENG_OK, "%s: list, stop early", label);
    CHECK_INT(l.n, 2, "%s: the callback stops the listing", label);

    CHECK_INT(cf_blob_delete_owner(b, k[0], &err), CF_ENG_OK, "%s: delete a content", label);
    CHECK_INT(blob_list_count(b, k[0], CF_BLOB_TENANT_LEN, &l), 1, "%s: the tenant's other content stays", label);
    CHECK(memcmp(l.keys[0], k[3], CF_BLOB_KEY_LEN) == 0, "%s: and it is content 2", label);
    CHECK_INT(cf_blob_get(b, k[1], &v, &vl, &err), CF_ENG_NOTFOUND, "%s: a deleted content's chunk is gone", label);
    CHECK_INT(cf_blob_delete_owner(b, k[0], &err), CF_ENG_OK, "%s: deleting it again is no error", label);
    CHECK_INT(cf_blob_delete_tenant(b, k[3], &err), CF_ENG_OK, "%s: delete a tenant", label);
    CHECK_INT(blob_list_count(b, NULL, 0, &l), 2, "%s: the other tenants' blobs stay", label);
    CHECK(memcmp(l.keys[0], k[4], CF_BLOB_KEY_LEN) == 0 && memcmp(l.keys[1], k[5], CF_BLOB_KEY_LEN) == 0,
          "%s: and they are tenant 2's and 0xff's", label);
    CHECK_INT(cf_blob_delete_tenant(b, k[3], &err), CF_ENG_OK, "%s: deleting a tenant again is no error", label);
}

#endif
