/*
 * test_zip.c: the ZIP writer (src/core/zipw.c) checked by real readers. Archives are written to
 * files exactly as the folder download streams them (local header, content, data descriptor per
 * entry; central directory; end records), then opened by python3's zipfile and Info-ZIP's unzip:
 * a small archive with a folder, UTF-8 names and an empty file (every byte and CRC compared); a
 * ZIP64 archive without writing 4 GiB (a sparse file: a 4.5 GiB entry of zeros, whose bytes are a
 * hole, then a small entry whose local header lies past 4 GiB); and 70 000 entries (the ZIP64 end
 * record for the count). Also the layout's length, MS-DOS times and the name guard.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/zipw.h"
#include "tap.h"

static char dir[64];

struct src {
    const char *name;
    bool dir;
    uint64_t size;      /* zeros past data_len (a hole in the file) */
    const char *data;   /* NULL: all zeros */
};

/* Writes the archive of n entries to path; returns its length on disk, or 0 on failure. */
static uint64_t write_archive(const char *path, const struct src *src, size_t n, uint64_t *layout_len)
{
    struct cf_zip_entry *e = calloc(n, sizeof *e);
    static uint8_t zeros[1 << 20];
    uint8_t *hdr = malloc(CF_ZIP_HEADER_MAX + CF_ZIP_END_MAX);
    for (size_t i = 0; i < n; i++) {
        e[i].name = src[i].name;
        e[i].name_len = strlen(src[i].name);
        e[i].dir = src[i].dir;
        e[i].size = src[i].size;
        cf_zip_dos_time(1733400000000ull, &e[i].dos_time, &e[i].dos_date);
    }
    uint64_t cdo, cds;
    *layout_len = cf_zip_layout(e, n, &cdo, &cds);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 0;
    uint64_t at = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        ok = at == e[i].offset;
        size_t l = cf_zip_local(&e[i], hdr);
        ok = ok && l == cf_zip_local_len(&e[i]) && pwrite(fd, hdr, l, (off_t)at) == (ssize_t)l;
        at += l;
        if (!e[i].dir) {
            uint32_t crc = 0;
            if (src[i].data != NULL) {
                size_t dl = strlen(src[i].data);
                ok = ok && pwrite(fd, src[i].data, dl, (off_t)at) == (ssize_t)dl;
                crc = cf_zip_crc32(crc, src[i].data, dl);
            } else {
                for (uint64_t left = e[i].size; left > 0;) {
                    size_t k = left > sizeof zeros ? sizeof zeros : (size_t)left;
                    crc = cf_zip_crc32(crc, zeros, k);
                    left -= k;
                }
            }
            at += e[i].size;
            e[i].crc = crc;
            l = cf_zip_desc(&e[i], hdr);
            ok = ok && l == cf_zip_desc_len(&e[i]) && pwrite(fd, hdr, l, (off_t)at) == (ssize_t)l;
            at += l;
        }
    }
    ok = ok && at == cdo;
    for (size_t i = 0; i < n && ok; i++) {
        size_t l = cf_zip_central(&e[i], hdr);
        ok = l == cf_zip_central_len(&e[i]) && pwrite(fd, hdr, l, (off_t)at) == (ssize_t)l;
        at += l;
    }
    ok = ok && at == cdo + cds;
    size_t l = cf_zip_end(n, cdo, cds, hdr);
    ok = ok && l == cf_zip_end_len(n, cdo, cds) && pwrite(fd, hdr, l, (off_t)at) == (ssize_t)l;
    at += l;
    close(fd);
    free(hdr);
    free(e);
    return ok ? at : 0;
}

/* Runs a shell command; its exit status. */
static int run(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void small(void)
{
    static const struct src src[] = {
        {"Reports/", true, 0, NULL},
        {"Reports/Grüße – 日本語.txt", false, 13, "hello, world\n"},
        {"Reports/empty.bin", false, 0, ""},
        {"Reports/sub/", true, 0, NULL},
        {"Reports/sub/a.txt", false, 3, "abc"},
    };
    char path[128], cmd[1024];
    snprintf(path, sizeof path, "%s/small.zip", dir);
    uint64_t layout;
    uint64_t len = write_archive(path, src, sizeof src / sizeof src[0], &layout);
    CHECK(len != 0, "small: written");
    CHECK_INT(len, layout, "small: the layout's length is the archive's");
    snprintf(cmd, sizeof cmd,
             "python3 -c '\n"
             "import sys, zipfile\n"
             "z = zipfile.ZipFile(sys.argv[1])\n"
             "assert z.testzip() is None\n"
             "names = [i.filename for i in z.infolist()]\n"
             "assert names == [\"Reports/\", \"Reports/Grüße – 日本語.txt\", \"Reports/empty.bin\", \"Reports/sub/\", "
             "\"Reports/sub/a.txt\"], names\n"
             "assert z.read(\"Reports/Grüße – 日本語.txt\") == b\"hello, world\\n\"\n"
             "assert z.read(\"Reports/sub/a.txt\") == b\"abc\"\n"
             "assert z.read(\"Reports/empty.bin\") == b\"\"\n"
             "assert z.getinfo(\"Reports/sub/\").is_dir()\n"
             "assert all(i.flag_bits & 0x800 for i in z.infolist())\n"
             "assert z.getinfo(\"Reports/sub/a.txt\").flag_bits & 0x8\n"
             "assert z.getinfo(\"Reports/sub/a.txt\").date_time == (2024, 12, 5, 12, 0, 0), z.getinfo(\"Reports/sub/a.txt\").date_time\n"
             "' %s",
             path);
    CHECK_INT(run(cmd), 0, "small: python3 zipfile reads every entry, byte for byte, CRCs checked");
    snprintf(cmd, sizeof cmd, "unzip -tq %s >/dev/null", path);
    CHECK_INT(run(cmd), 0, "small: unzip -t passes");
}

static void zip64_sizes(void)
{
    const uint64_t big = (4ull << 30) + (512ull << 20); /* 4.5 GiB */
    const struct src src[] = {
        {"big/", true, 0, NULL},
        {"big/zeros.bin", false, big, NULL},
        {"big/after.txt", false, 6, "after\n"},
    };
    char path[128], cmd[1024];
    snprintf(path, sizeof path, "%s/big.zip", dir);
    uint64_t layout;
    uint64_t len = write_archive(path, src, 3, &layout);
    CHECK(len > big, "zip64: written (sparse)");
    CHECK_INT(len, layout, "zip64: the layout's length is the archive's");
    snprintf(cmd, sizeof cmd,
             "python3 -c '\n"
             "import sys, zipfile\n"
             "z = zipfile.ZipFile(sys.argv[1])\n"
             "b = z.getinfo(\"big/zeros.bin\")\n"
             "assert b.file_size == %llu and b.compress_size == %llu, (b.file_size, b.compress_size)\n"
             "a = z.getinfo(\"big/after.txt\")\n"
             "assert a.header_offset > 2**32, a.header_offset\n"
             "assert z.read(\"big/after.txt\") == b\"after\\n\"\n"
             "with z.open(\"big/zeros.bin\") as f:\n"
             "    assert f.read(1 << 20) == bytes(1 << 20)\n"
             "' %s",
             (unsigned long long)big, (unsigned long long)big, path);
    CHECK_INT(run(cmd), 0, "zip64: python3 zipfile reads a 4.5 GiB size and an entry past 4 GiB");
    snprintf(cmd, sizeof cmd, "unzip -l %s | grep -q '%llu .*big/zeros.bin' && unzip -p %s big/after.txt | grep -qx after",
             path, (unsigned long long)big, path);
    CHECK_INT(run(cmd), 0, "zip64: unzip lists the 4.5 GiB entry and extracts the one past 4 GiB");
    unlink(path);
}

static void zip64_count(void)
{
    enum { N = 70000 };
    struct src *src = calloc(N, sizeof *src);
    char (*names)[16] = calloc(N, sizeof *names);
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "d%05zu/", i);
        src[i].name = names[i];
        src[i].dir = true;
    }
    char path[128], cmd[512];
    snprintf(path, sizeof path, "%s/many.zip", dir);
    uint64_t layout;
    uint64_t len = write_archive(path, src, N, &layout);
    CHECK(len != 0 && len == layout, "count: 70000 entries written, length as laid out");
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); n = z.namelist(); "
             "assert len(n) == 70000 and n[69999] == \"d69999/\", len(n)' %s",
             path);
    CHECK_INT(run(cmd), 0, "count: python3 zipfile finds all 70000 entries (ZIP64 end record)");
    snprintf(cmd, sizeof cmd, "unzip -tq %s >/dev/null", path);
    CHECK_INT(run(cmd), 0, "count: unzip -t passes");
    unlink(path);
    free(src);
    free(names);
}

static void pieces(void)
{
    uint16_t t, d;
    cf_zip_dos_time(0, &t, &d);
    CHECK(t == 0 && d == ((1 << 5) | 1), "dos time: before 1980 is 1980-01-01");
    cf_zip_dos_time(1733400000000ull, &t, &d); /* 2024-12-05 12:00:00 UTC */
    CHECK(d == (((2024 - 1980) << 9) | (12 << 5) | 5) && t == (12 << 11), "dos time: 2024-12-05 12:00:00");
    CHECK(cf_zip_name_ok("a b.txt", 7), "name: ordinary");
    CHECK(!cf_zip_name_ok("..", 2) && !cf_zip_name_ok(".", 1) && !cf_zip_name_ok("", 0), "name: . .. empty refused");
    CHECK(!cf_zip_name_ok("a/b", 3) && !cf_zip_name_ok("a\\b", 3), "name: separators refused");
    CHECK_INT(cf_zip_crc32(0, "123456789", 9), 0xCBF43926u, "crc32: the check value");
    struct cf_zip_entry e = {.name = "x", .name_len = 1, .size = 0xFFFFFFFFull};
    CHECK_INT(cf_zip_local_len(&e), 30 + 1 + 20, "a size of exactly 0xFFFFFFFF goes ZIP64");
    CHECK_INT(cf_zip_desc_len(&e), 24, "... with an 8-byte-size descriptor");
    e.size = 0xFFFFFFFEull;
    CHECK_INT(cf_zip_desc_len(&e), 16, "one byte less does not");
    CHECK_INT(cf_zip_end_len(0xFFFE, 0, 0), 22, "end: 65534 entries fit the plain end record");
    CHECK_INT(cf_zip_end_len(0xFFFF, 0, 0), 22 + 76, "end: 65535 entries need ZIP64");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/coffer-zip-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    pieces();
    small();
    zip64_count();
    zip64_sizes();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (run(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return tap_done();
}
