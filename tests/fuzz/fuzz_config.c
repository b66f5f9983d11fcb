/*
 * fuzz_config.c: the YAML configuration (src/config.c) and its value parsers. cf_config_load reads
 * a path, so the input is written to a memfd and loaded through /proc/self/fd/N. A first byte of
 * 0x01 or 0x02 fuzzes cf_parse_size or cf_parse_duration with the rest instead.
 *
 * Invariants: a refused file leaves a message naming the file and a zeroed struct; an accepted one
 * has every required path (absolute), at least one listen address, limits in their documented
 * ranges, default expiry within the maximum, pending bytes at least the largest file, an http(s)
 * public URL without trailing '/', and the master key outside data_dir. A size or duration accepted
 * is digits then a known unit and equals digits × unit without overflow.
 */
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static int fd = -1;
static char path[64];

static bool zeroed(const struct cf_config *c)
{
    static const struct cf_config zero;
    return memcmp(c, &zero, sizeof zero) == 0;
}

static void check_unit(const char *s, bool size)
{
    uint64_t v = 0;
    enum cf_status st = size ? cf_parse_size(s, &v) : cf_parse_duration(s, &v);
    if (st != CF_OK)
        return;
    size_t digits = 0;
    uint64_t ref = 0;
    while (s[digits] >= '0' && s[digits] <= '9') {
        FUZZ_CHECK(!__builtin_mul_overflow(ref, 10, &ref) && !__builtin_add_overflow(ref, (uint64_t)(s[digits] - '0'), &ref));
        digits++;
    }
    FUZZ_CHECK(digits >= 1);
    const char *u = s + digits;
    uint64_t mult;
    if (size) {
        mult = strcmp(u, "KiB") == 0   ? 1024ull
               : strcmp(u, "MiB") == 0 ? 1ull << 20
               : strcmp(u, "GiB") == 0 ? 1ull << 30
               : strcmp(u, "TiB") == 0 ? 1ull << 40
               : strcmp(u, "B") == 0 || u[0] == '\0' ? 1
                                                     : 0;
    } else {
        mult = strcmp(u, "s") == 0 ? 1 : strcmp(u, "m") == 0 ? 60 : strcmp(u, "h") == 0 ? 3600 : strcmp(u, "d") == 0 ? 86400 : 0;
    }
    uint64_t want;
    FUZZ_CHECK(mult != 0 && !__builtin_mul_overflow(ref, mult, &want) && v == want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    if (size > 0 && (data[0] == 1 || data[0] == 2)) {
        char *s = strndup((const char *)data + 1, size - 1);
        check_unit(s, data[0] == 1);
        free(s);
        return 0;
    }
    if (fd < 0) {
        fd = memfd_create("coffer-fuzz.yaml", 0);
        FUZZ_CHECK(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    FUZZ_CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);

    struct cf_config c;
    char *err = NULL;
    enum cf_status st = cf_config_load(path, &c, &err);
    if (st != CF_OK) {
        FUZZ_CHECK(st == CF_EINVAL && err != NULL && strncmp(err, path, strlen(path)) == 0 && zeroed(&c));
        free(err);
        return 0;
    }
    FUZZ_CHECK(err == NULL);
    FUZZ_CHECK(c.data_dir != NULL && c.data_dir[0] == '/' && c.master_key_file != NULL && c.master_key_file[0] == '/');
    FUZZ_CHECK(c.tls_certificate != NULL && c.tls_key != NULL && c.web_dir != NULL);
    FUZZ_CHECK(c.nlisten >= 1 && c.nlisten <= CF_CONFIG_MAX_LISTEN);
    for (size_t i = 0; i < c.nlisten; i++)
        FUZZ_CHECK(c.listen[i] != NULL && c.listen[i][0] != '\0');
    FUZZ_CHECK(c.public_url != NULL && (strncmp(c.public_url, "https://", 8) == 0 || strncmp(c.public_url, "http://", 7) == 0));
    size_t ul = strlen(c.public_url);
    FUZZ_CHECK(ul > 0 && c.public_url[ul - 1] != '/');
    FUZZ_CHECK(c.shares.default_expiry_s <= c.shares.max_expiry_s && c.shares.code_length >= 4 &&
               c.shares.code_length <= 16);
    FUZZ_CHECK(c.uploads.max_pending_bytes >= c.limits.max_file_bytes && c.uploads.max_pending >= 1);
    FUZZ_CHECK(c.auth.argon2_iterations >= 1 && c.auth.argon2_iterations <= 64 && c.auth.argon2_parallelism >= 1 &&
               c.auth.argon2_parallelism <= 16 && c.auth.argon2_memory_kib >= 8);
    FUZZ_CHECK(c.threads <= 256 && c.scan.database_dir != NULL && c.scan.scratch_dir != NULL);
    FUZZ_CHECK(strcmp(c.data_dir, "/") != 0); /* everything is inside "/", the master key too */
    FUZZ_CHECK(strcmp(c.data_dir, c.master_key_file) != 0);
    cf_config_clear(&c);
    FUZZ_CHECK(zeroed(&c));
    return 0;
}
