/*
 * test_trash.c: the trash and old versions in the store (issue 21), on a fresh RocksDB in a
 * temporary directory: cf_trash_list, cf_node_restore (to the original folder, into another, the
 * original gone, name conflicts and rename, the access callback, what is not a trashed top),
 * cf_versions_list / cf_version_get, cf_version_restore (a copy under a new content, the callback),
 * and cf_versions_expire (never the current version; nothing left behind for fsck).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage.h"
#include "tap.h"

static const struct cf_scan_summary g_scan = {
    .result = (char *)"clean", .engine = (char *)"ClamAV test", .database = (char *)"0123abcd", .at = 1234};

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static uint8_t *make_data(size_t n, uint32_t seed)
{
    uint8_t *p = cf_xmalloc(n == 0 ? 1 : n);
    uint32_t x = seed * 2654435761u ^ 0x9e3779b9u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)(x >> 8);
    }
    return p;
}

static enum cf_status put(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *parent, const char *name,
                          const uint8_t *data, size_t size, enum cf_conflict oc, const struct cf_id *who,
                          struct cf_node *out)
{
    struct cf_upload *u;
    enum cf_status st = cf_upload_begin(s, tenant, &u);
    if (st != CF_OK)
        return st;
    uint32_t n = size == 0 ? 1 : (uint32_t)((size + CF_CHUNK_SIZE - 1) / CF_CHUNK_SIZE);
    for (uint32_t i = 0; i < n && st == CF_OK; i++) {
        size_t off = (size_t)i * CF_CHUNK_SIZE;
        size_t len = size - off < CF_CHUNK_SIZE ? size - off : CF_CHUNK_SIZE;
        st = cf_upload_put_chunk(u, i, data + off, len, i == n - 1);
    }
    struct cf_commit c;
    memset(&c, 0, sizeof c);
    c.parent = *parent;
    c.name = name;
    c.name_len = strlen(name);
    c.on_conflict = oc;
    c.uploader = *who;
    c.size = size;
    cf_sha256(data, size, c.sha256);
    c.mime = "application/x-test";
    c.scan = &g_scan;
    if (st == CF_OK)
        st = cf_upload_commit(u, &c, out);
    if (st != CF_OK)
        cf_upload_abort(u);
    cf_upload_free(u);
    return st;
}

/* Reads version v (0: current) whole and compares it with data. */
static bool reads(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *file, uint32_t v,
                  const uint8_t *data, size_t size)
{
    struct cf_reader *r;
    if (cf_reader_open(s, tenant, file, v, &r) != CF_OK)
        return false;
    uint8_t *buf = cf_xmalloc(CF_CHUNK_SIZE);
    bool ok = cf_reader_size(r) == size;
    uint64_t off = 0;
    for (uint32_t i = 0; ok && i < cf_reader_chunk_count(r); i++) {
        size_t len;
        ok = cf_reader_chunk(r, i, buf, &len) == CF_OK && off + len <= size && memcmp(buf, data + off, len) == 0;
        off += len;
    }
    free(buf);
    cf_reader_free(r);
    return ok && off == size;
}

static bool in_trash(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id)
{
    struct cf_trash_item *items;
    size_t n;
    bool found = false;
    if (cf_trash_list(s, tenant, &items, &n) != CF_OK)
        return false;
    for (size_t i = 0; i < n; i++)
        found = found || cf_id_equal(&items[i].id, id);
    free(items);
    return found;
}

static enum cf_status deny(void *ctx, const struct cf_node *node, const struct cf_id *dest)
{
    (void)node;
    (void)dest;
    ++*(int *)ctx;
    return CF_EDENIED;
}

static bool refuse(void *ctx, const struct cf_node *existing)
{
    (void)existing;
    ++*(int *)ctx;
    return false;
}

static void test_restore(struct cf_store *s, const struct cf_tenant *t, const struct cf_id *who)
{
    struct cf_node d, f, g, g2, out, tmp;
    struct cf_id id;
    bool gone;
    uint8_t *data = make_data(5000, 1);
    CHECK(cf_folder_create(s, &t->id, &t->root, "D", 1, who, &d) == CF_OK, "folder D");
    CHECK(put(s, &t->id, &d.id, "x.txt", data, 5000, CF_CONFLICT_FAIL, who, &f) == CF_OK, "file D/x.txt");

    CHECK(cf_node_trash(s, &t->id, &f.id) == CF_OK, "trash x.txt");
    struct cf_trash_item *items;
    size_t n;
    CHECK(cf_trash_list(s, &t->id, &items, &n) == CF_OK && n == 1 && cf_id_equal(&items[0].id, &f.id) &&
              items[0].trashed_at > 0,
          "the trash lists it with its time");
    free(items);
    CHECK(cf_node_find_child(s, &t->id, &d.id, "x.txt", 5, &id) == CF_ENOTFOUND, "its name is free meanwhile");

    CHECK(cf_node_restore(s, &t->id, &f.id, NULL, false, NULL, NULL, &gone, &out) == CF_OK, "restored in place");
    CHECK(cf_id_equal(&out.parent, &d.id) && out.trashed_at == 0 && strcmp(out.name, "x.txt") == 0,
          "back in D, not trashed, same name");
    cf_node_clear(&out);
    CHECK(cf_node_find_child(s, &t->id, &d.id, "x.txt", 5, &id) == CF_OK && cf_id_equal(&id, &f.id),
          "found by name again");
    CHECK(!in_trash(s, &t->id, &f.id), "gone from the trash");
    CHECK(reads(s, &t->id, &f.id, 0, data, 5000), "its content reads back");
    CHECK_INT(cf_node_restore(s, &t->id, &f.id, NULL, false, NULL, NULL, &gone, &out), CF_EINVAL,
              "a live node is not restored");
    CHECK_INT(cf_node_restore(s, &t->id, &t->root, NULL, false, NULL, NULL, &gone, &out), CF_EINVAL,
              "nor a space root");
    CHECK(cf_node_restore(s, &t->id, &(struct cf_id){{1}}, NULL, false, NULL, NULL, &gone, &out) == CF_ENOTFOUND &&
              !gone,
          "an unknown id is not found (not 'gone')");

    /* The folder trashed after the file: the original is gone; a chosen folder works. */
    CHECK(cf_node_trash(s, &t->id, &f.id) == CF_OK && cf_node_trash(s, &t->id, &d.id) == CF_OK, "trash file, folder");
    CHECK(cf_trash_list(s, &t->id, &items, &n) == CF_OK && n == 2 && items[0].trashed_at >= items[1].trashed_at,
          "newest first");
    free(items);
    CHECK(cf_node_restore(s, &t->id, &f.id, NULL, false, NULL, NULL, &gone, &out) == CF_ENOTFOUND && gone,
          "original folder in the trash: gone");
    CHECK(in_trash(s, &t->id, &f.id), "still in the trash");
    int calls = 0;
    CHECK(cf_node_restore(s, &t->id, &f.id, &t->root, false, deny, &calls, &gone, &out) == CF_EDENIED && calls == 1,
          "the access callback decides under the lock");
    CHECK(in_trash(s, &t->id, &f.id), "a refused restore changes nothing");
    struct cf_node e;
    CHECK(put(s, &t->id, &t->root, "e.txt", data, 10, CF_CONFLICT_FAIL, who, &e) == CF_OK, "a file e.txt");
    CHECK(cf_node_restore(s, &t->id, &f.id, &e.id, false, NULL, NULL, &gone, &out) == CF_ENOTFOUND && gone,
          "a file is no destination");
    CHECK(cf_node_restore(s, &t->id, &f.id, &t->root, false, NULL, NULL, &gone, &out) == CF_OK &&
              cf_id_equal(&out.parent, &t->root),
          "restored into the root instead");
    cf_node_clear(&out);
    /* Below a trashed folder is gone too: a folder inside D. */
    CHECK(cf_node_restore(s, &t->id, &d.id, NULL, false, NULL, NULL, &gone, &out) == CF_OK, "D restored");
    cf_node_clear(&out);
    CHECK(cf_folder_create(s, &t->id, &d.id, "sub", 3, who, &tmp) == CF_OK, "D/sub");
    CHECK(cf_node_trash(s, &t->id, &e.id) == CF_OK && cf_node_trash(s, &t->id, &d.id) == CF_OK, "trash e, D");
    CHECK(cf_node_restore(s, &t->id, &e.id, &tmp.id, false, NULL, NULL, &gone, &out) == CF_ENOTFOUND && gone,
          "a folder below a trashed one is no destination");
    CHECK_INT(cf_node_restore(s, &t->id, &tmp.id, NULL, false, NULL, NULL, &gone, &out), CF_EINVAL,
              "what lies below a trashed top is not restored on its own");
    CHECK(cf_node_restore(s, &t->id, &d.id, NULL, false, NULL, NULL, &gone, &out) == CF_OK, "D again");
    cf_node_clear(&out);
    CHECK(cf_node_find_child(s, &t->id, &d.id, "sub", 3, &id) == CF_OK, "its subtree came back with it");
    cf_node_clear(&tmp);

    /* Name conflicts. */
    CHECK(put(s, &t->id, &t->root, "y.txt", data, 1, CF_CONFLICT_FAIL, who, &g) == CF_OK, "y.txt");
    CHECK(cf_node_trash(s, &t->id, &g.id) == CF_OK, "trash y.txt");
    CHECK(put(s, &t->id, &t->root, "y.txt", data, 2, CF_CONFLICT_FAIL, who, &g2) == CF_OK, "another y.txt");
    CHECK_INT(cf_node_restore(s, &t->id, &g.id, NULL, false, NULL, NULL, &gone, &out), CF_EEXIST, "name taken");
    CHECK(cf_node_restore(s, &t->id, &g.id, NULL, true, NULL, NULL, &gone, &out) == CF_OK, "rename");
    CHECK_STR(out.name, "y (1).txt", "restored as y (1).txt");
    cf_node_clear(&out);
    CHECK(reads(s, &t->id, &g.id, 0, data, 1) && reads(s, &t->id, &g2.id, 0, data, 2), "both files intact");
    cf_node_clear(&d);
    cf_node_clear(&f);
    cf_node_clear(&e);
    cf_node_clear(&g);
    cf_node_clear(&g2);
    free(data);
}

static void test_versions(struct cf_store *s, const struct cf_tenant *t, const struct cf_id *who,
                          const struct cf_id *other)
{
    size_t sizes[3] = {CF_CHUNK_SIZE + 1000, 7, 0};
    uint8_t *data[3];
    struct cf_node v, out;
    for (int i = 0; i < 3; i++) {
        data[i] = make_data(sizes[i], 10 + (uint32_t)i);
        CHECK(put(s, &t->id, &t->root, "v.bin", data[i], sizes[i], i == 0 ? CF_CONFLICT_FAIL : CF_CONFLICT_REPLACE,
                  who, &v) == CF_OK,
              "version %d", i + 1);
        if (i < 2)
            cf_node_clear(&v);
    }
    struct cf_version_info *vs;
    size_t n;
    CHECK(cf_versions_list(s, &t->id, &v.id, &vs, &n) == CF_OK && n == 3, "three versions");
    for (size_t i = 0; i < n; i++) {
        uint8_t sha[CF_SHA256_LEN];
        cf_sha256(data[i], sizes[i], sha);
        CHECK(vs[i].version == i + 1 && vs[i].size == sizes[i] && memcmp(vs[i].sha256, sha, sizeof sha) == 0 &&
                  cf_id_equal(&vs[i].uploader, who) && vs[i].scan.result != NULL &&
                  strcmp(vs[i].scan.result, "clean") == 0 && strcmp(vs[i].mime, "application/x-test") == 0,
              "version %zu: number, size, hash, uploader, verdict, type", i + 1);
        CHECK(i == 0 || vs[i].created_at >= vs[i - 1].created_at, "oldest first");
        cf_version_info_clear(&vs[i]);
    }
    free(vs);
    struct cf_version_info vi;
    CHECK(cf_version_get(s, &t->id, &v.id, 2, &vi) == CF_OK && vi.size == 7, "get version 2");
    cf_version_info_clear(&vi);
    CHECK_INT(cf_version_get(s, &t->id, &v.id, 9, &vi), CF_ENOTFOUND, "no version 9");
    CHECK(cf_versions_list(s, &t->id, &t->root, &vs, &n) == CF_OK && n == 0, "a folder has none");
    free(vs);

    /* Restore version 1: version 4 with its bytes, under another content. */
    CHECK(cf_version_restore(s, &t->id, &v.id, 1, other, NULL, NULL, NULL, NULL, &out) == CF_OK && out.version == 4 &&
              out.size == sizes[0],
          "version 1 restored as version 4");
    cf_node_clear(&out);
    CHECK(reads(s, &t->id, &v.id, 0, data[0], sizes[0]) && reads(s, &t->id, &v.id, 1, data[0], sizes[0]) &&
              reads(s, &t->id, &v.id, 3, data[2], sizes[2]),
          "current = version 1's bytes; the others unchanged");
    CHECK(cf_version_get(s, &t->id, &v.id, 4, &vi) == CF_OK && cf_id_equal(&vi.uploader, other), "the restorer is its uploader");
    cf_version_info_clear(&vi);
    int calls = 0;
    CHECK(cf_version_restore(s, &t->id, &v.id, 2, other, refuse, &calls, NULL, NULL, &out) == CF_EDENIED && calls == 1,
          "the access callback refuses");
    CHECK(cf_versions_list(s, &t->id, &v.id, &vs, &n) == CF_OK && n == 4, "nothing added");
    for (size_t i = 0; i < n; i++)
        cf_version_info_clear(&vs[i]);
    free(vs);
    CHECK_INT(cf_version_restore(s, &t->id, &v.id, 9, other, NULL, NULL, NULL, NULL, &out), CF_ENOTFOUND, "no version 9");

    /* Retention: everything replaced before the cutoff goes, never the current version. */
    struct cf_version_ref *refs;
    CHECK(cf_versions_expire(s, &t->id, 1, &refs, &n) == CF_OK && n == 0, "a cutoff in the past purges nothing");
    free(refs);
    CHECK(cf_versions_expire(s, &t->id, cf_now_ms() + 60000, &refs, &n) == CF_OK, "expire");
    size_t mine = 0;
    for (size_t i = 0; i < n; i++)
        if (cf_id_equal(&refs[i].file, &v.id)) {
            mine++;
            CHECK(refs[i].version < 4 && refs[i].replaced_at > 0, "purged version %u (replaced)", refs[i].version);
        }
    CHECK_INT(mine, 3, "versions 1-3 of v.bin purged");
    free(refs);
    CHECK(cf_versions_list(s, &t->id, &v.id, &vs, &n) == CF_OK && n == 1 && vs[0].version == 4, "only version 4 left");
    for (size_t i = 0; i < n; i++)
        cf_version_info_clear(&vs[i]);
    free(vs);
    CHECK(reads(s, &t->id, &v.id, 0, data[0], sizes[0]), "the current version still reads");
    struct cf_reader *r;
    CHECK_INT(cf_reader_open(s, &t->id, &v.id, 2, &r), CF_ENOTFOUND, "a purged version cannot be opened");
    CHECK(cf_versions_expire(s, &t->id, cf_now_ms() + 60000, &refs, &n) == CF_OK && n == 0, "a second pass finds nothing");
    free(refs);
    struct cf_check_report rep;
    CHECK(cf_store_check(s, &rep) == CF_OK && rep.corrupt == 0 && rep.orphan_contents == 0 &&
              rep.unfinished_contents == 0,
          "fsck: no chunk left behind, nothing corrupt");
    cf_node_clear(&v);
    for (int i = 0; i < 3; i++)
        free(data[i]);
}

int main(void)
{
    char base[] = "/tmp/coffer-unit-trash-XXXXXX";
    struct cf_key master;
    struct cf_store *s = NULL;
    struct cf_tenant t;
    struct cf_id who, other;
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char *dir = cf_xasprintf("%s/store", base);
    cf_key_random(&master);
    cf_id_new(&who);
    cf_id_new(&other);
    CHECK(cf_store_create(dir, &master) == CF_OK && cf_store_open(dir, &master, &s) == CF_OK, "store");
    CHECK(s != NULL && cf_tenant_create(s, "acme", &t) == CF_OK, "tenant");
    if (s != NULL) {
        test_restore(s, &t, &who);
        test_versions(s, &t, &who, &other);
        cf_tenant_clear(&t);
        cf_store_close(s);
    }
    cf_key_wipe(&master);
    free(dir);
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
