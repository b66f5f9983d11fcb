/*
 * test_derived.c: derived objects of a content (storage/pages.c: rendered pages, issue 20) on a fresh
 * store: sealed round trip, slots kept apart, a value moved to another slot or altered fails
 * authentication, fsck counts them with their committed content (no orphan), a purge deletes them
 * with the chunks, and a put that comes after a purge leaves nothing behind.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_internal.h"
#include "tap.h"

static struct cf_key g_master;
static const struct cf_scan_summary g_scan = {
    .result = (char *)"clean", .engine = (char *)"ClamAV test", .database = (char *)"0123abcd", .at = 1234};

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int count_one(void *ctx, const uint8_t *k, size_t kl)
{
    (void)k;
    (void)kl;
    (*(size_t *)ctx)++;
    return 0;
}

/* Blobs of a content (chunks and derived objects). */
static size_t blobs_of(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *content)
{
    uint8_t owner[32];
    size_t n = 0;
    char *err = NULL;
    cf_key2(owner, tenant, content);
    if (cf_blob_list(s->blobs, owner, sizeof owner, count_one, &n, &err) != CF_ENG_OK) {
        cf_eng_free(err);
        return SIZE_MAX;
    }
    return n;
}

static enum cf_status put_file(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *parent,
                               const char *name, const uint8_t *data, size_t size, struct cf_node *out,
                               struct cf_id *content)
{
    struct cf_upload *u;
    struct cf_upload_view v;
    enum cf_status st = cf_upload_begin(s, tenant, &u);
    if (st != CF_OK)
        return st;
    if ((st = cf_upload_put_chunk(u, 0, data, size, true)) != CF_OK)
        goto fail;
    struct cf_commit c;
    memset(&c, 0, sizeof c);
    c.parent = *parent;
    c.name = name;
    c.name_len = strlen(name);
    c.on_conflict = CF_CONFLICT_FAIL;
    cf_id_new(&c.uploader);
    c.size = size;
    cf_sha256(data, size, c.sha256);
    c.mime = "application/pdf";
    c.scan = &g_scan;
    cf_upload_view(u, &v);
    *content = *v.content;
    if ((st = cf_upload_commit(u, &c, out)) != CF_OK)
        goto fail;
    cf_upload_free(u);
    return CF_OK;
fail:
    cf_upload_abort(u);
    cf_upload_free(u);
    return st;
}

int main(void)
{
    char base[] = "/tmp/coffer-unit-derived-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    cf_key_random(&g_master);
    char *dir = cf_xasprintf("%s/store", base);
    struct cf_store *s = NULL;
    struct cf_tenant t;
    struct cf_node node, other;
    struct cf_id content, other_content;
    struct cf_reader *r = NULL, *ro = NULL;
    memset(&t, 0, sizeof t);
    memset(&node, 0, sizeof node);
    memset(&other, 0, sizeof other);
    const uint8_t data[] = "%PDF-1.4 a file whose pages are rendered";
    const uint32_t slot_a = CF_DERIVED_SLOT | 0x01400001u, slot_b = CF_DERIVED_SLOT | 0x01400002u;
    uint8_t page[3000];
    for (size_t i = 0; i < sizeof page; i++)
        page[i] = (uint8_t)(i * 31 + 7);

    CHECK_INT(cf_store_create(dir, &g_master), CF_OK, "create store");
    CHECK_INT(cf_store_open(dir, &g_master, &s), CF_OK, "open store");
    if (s == NULL)
        goto out;
    CHECK_INT(cf_tenant_create(s, "pages", &t), CF_OK, "tenant");
    CHECK_INT(put_file(s, &t.id, &t.root, "a.pdf", data, sizeof data, &node, &content), CF_OK, "file a");
    CHECK_INT(put_file(s, &t.id, &t.root, "b.pdf", data, sizeof data, &other, &other_content), CF_OK, "file b");
    CHECK_INT(cf_reader_open(s, &t.id, &node.id, 0, &r), CF_OK, "reader a");
    CHECK_INT(cf_reader_open(s, &t.id, &other.id, 0, &ro), CF_OK, "reader b");
    if (r == NULL || ro == NULL)
        goto out;

    /* Round trip, slots apart, absent, bad slot. */
    uint8_t *got = NULL;
    size_t len = 0;
    CHECK_INT(cf_derived_get(r, slot_a, &got, &len), CF_ENOTFOUND, "absent → CF_ENOTFOUND");
    CHECK_INT(cf_derived_put(r, 7, page, sizeof page), CF_EINVAL, "a chunk index is not a derived slot");
    CHECK_INT(cf_derived_get(r, 7, &got, &len), CF_EINVAL, "nor for reading");
    CHECK_INT(cf_derived_put(r, slot_a, page, sizeof page), CF_OK, "put page");
    CHECK_INT(cf_derived_put(r, slot_b, page, 10), CF_OK, "put another slot");
    CHECK_INT(cf_derived_get(r, slot_a, &got, &len), CF_OK, "get page");
    CHECK(got != NULL && len == sizeof page && memcmp(got, page, len) == 0, "the same bytes");
    free(got);
    got = NULL;
    CHECK_INT(cf_derived_get(r, slot_b, &got, &len), CF_OK, "get the other slot");
    CHECK_INT(len, 10, "its own length");
    free(got);
    got = NULL;
    CHECK_INT(cf_derived_get(ro, slot_a, &got, &len), CF_ENOTFOUND, "another content does not see it");
    CHECK_INT(blobs_of(s, &t.id, &content), 3, "one chunk and two derived objects under the content");

    /* Sealed at rest: the page is not on disk in the clear, and a value moved to another slot or
     * altered fails authentication. */
    uint8_t ka[CF_BLOB_KEY_LEN], kb[CF_BLOB_KEY_LEN];
    char *val = NULL, *err = NULL;
    size_t vl = 0;
    cf_key2(ka, &t.id, &content);
    cf_put_be32(ka + 32, slot_a);
    memcpy(kb, ka, 32);
    cf_put_be32(kb + 32, slot_b);
    CHECK_INT(cf_blob_get(s->blobs, ka, &val, &vl, &err), CF_ENG_OK, "raw value");
    CHECK(val != NULL && vl == 1 + sizeof page + CF_SEAL_OVERHEAD, "sealed: format byte, nonce, tag");
    CHECK(val != NULL && memmem(val, vl, page, 64) == NULL, "no 64 bytes of the page in the clear");
    if (val != NULL) {
        CHECK_INT(cf_db_blob_put(s, kb, val, vl), CF_OK, "move page a's value to slot b");
        CHECK_INT(cf_derived_get(r, slot_b, &got, &len), CF_ECORRUPT, "moved → CF_ECORRUPT");
        val[vl - 1] ^= 1;
        CHECK_INT(cf_db_blob_put(s, ka, val, vl), CF_OK, "alter page a");
        CHECK_INT(cf_derived_get(r, slot_a, &got, &len), CF_ECORRUPT, "altered → CF_ECORRUPT");
        CHECK(got == NULL, "nothing released");
        cf_eng_free(val);
    }
    CHECK_INT(cf_derived_put(r, slot_a, page, sizeof page), CF_OK, "put page again");
    CHECK_INT(cf_derived_put(r, slot_b, page, 10), CF_OK, "put the other again");

    /* fsck: derived objects belong to their committed content. */
    struct cf_check_report rep;
    CHECK_INT(cf_store_check(s, &rep), CF_OK, "fsck");
    CHECK_INT(rep.corrupt, 0, "fsck: nothing corrupt");
    CHECK_INT(rep.orphan_contents, 0, "fsck: no orphan");
    CHECK_INT(rep.versions, 2, "fsck: two versions");

    /* A purge deletes them with the chunks; a later put (a render that finished late) is undone. */
    CHECK_INT(cf_node_purge(s, &t.id, &node.id), CF_OK, "purge a");
    CHECK_INT(blobs_of(s, &t.id, &content), 0, "nothing left of a: chunks and pages");
    CHECK_INT(cf_derived_put(r, slot_a, page, sizeof page), CF_ENOTFOUND, "a put after the purge → CF_ENOTFOUND");
    CHECK_INT(blobs_of(s, &t.id, &content), 0, "and it left nothing behind");
    CHECK_INT(blobs_of(s, &t.id, &other_content), 1, "b untouched");
    CHECK_INT(cf_store_check(s, &rep), CF_OK, "fsck after the purge");
    CHECK_INT(rep.orphan_contents + rep.corrupt + rep.unfinished_contents, 0, "fsck: clean");
out:
    cf_reader_free(r);
    cf_reader_free(ro);
    cf_store_close(s);
    cf_tenant_clear(&t);
    cf_node_clear(&node);
    cf_node_clear(&other);
    free(dir);
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    cf_key_wipe(&g_master);
    return tap_done();
}
