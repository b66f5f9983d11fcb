/*
 * fuzz_sealed.c: sealed values as they come back from the disk, under a fixed key: content chunks
 * (cf_chunk_open, storage/content.c), sealed records (cf_unseal, storage/db.c) and the AEAD under
 * both (cf_aead_open, storage/crypto.c).
 *
 * The first byte picks the mode: even → the rest is a stored value that must be refused (a value
 * that authenticates under the fixed key cannot be produced without it); odd → the rest is a
 * plaintext that goes through seal → open and must come back unchanged, after which every
 * single-byte change of the sealed value (position and mask from the input), a wrong position,
 * last-ness, content or size must be refused.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "fuzz.h"
#include "store_internal.h"

#define MAX_PT 4096

static const struct cf_key key = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
                                   24, 25, 26, 27, 28, 29, 30, 31, 32}};
static const struct cf_id tenant = {{0xaa, 1, 2, 3}}, content = {{0xbb, 4, 5, 6}}, other = {{0xcc}};

static uint8_t out[CF_CHUNK_SIZE];

static void refuse_value(const uint8_t *v, size_t n)
{
    size_t len = 12345;
    /* Sizes that make the length check pass, so that the AEAD itself is exercised. */
    uint64_t payload = n > 1 + CF_SEAL_OVERHEAD ? n - 1 - CF_SEAL_OVERHEAD : 0;
    const uint64_t sizes[] = {payload, CF_CHUNK_SIZE + payload, 0, CF_CHUNK_SIZE, UINT64_MAX};
    const uint32_t idx[] = {0, 1, 0, 0, UINT32_MAX};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        FUZZ_CHECK(cf_chunk_open(&key, &tenant, &content, sizes[k], idx[k], v, n, out, &len) == CF_ECORRUPT);
        FUZZ_CHECK(len == 12345);
    }
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    /* cf_unseal logs each refusal (as it should on a server): keep millions of them out of the log. */
    int saved = dup(2), null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    enum cf_status st = cf_unseal(CF_CF_NODES, &key, "k", 1, v, n, &pt, &ptlen);
    dup2(saved, 2);
    close(saved);
    close(null);
    FUZZ_CHECK(st != CF_OK && pt == NULL);
    FUZZ_CHECK(cf_aead_open(&key, "a", 1, v, n, out) == CF_ECORRUPT);
}

static void round_trip(const uint8_t *d, size_t n)
{
    /* d[0..1]: where to flip, d[2]: the mask; the rest is the plaintext. */
    if (n < 3)
        return;
    size_t pos = (size_t)d[0] << 8 | d[1];
    uint8_t mask = d[2] != 0 ? d[2] : 1;
    const uint8_t *pt = d + 3;
    size_t ptn = n - 3 > MAX_PT ? MAX_PT : n - 3;
    uint8_t val[1 + MAX_PT + CF_SEAL_OVERHEAD];
    size_t vl = 1 + ptn + CF_SEAL_OVERHEAD, len = 0;
    /* The last chunk of a 3 MiB + ptn file; an empty file has one empty chunk. */
    uint32_t index = ptn == 0 ? 0 : 3;
    uint64_t size = ptn == 0 ? 0 : 3ull * CF_CHUNK_SIZE + ptn;

    FUZZ_CHECK(cf_chunk_seal(&key, &tenant, &content, index, true, pt, ptn, val) == CF_OK);
    FUZZ_CHECK(cf_chunk_open(&key, &tenant, &content, size, index, val, vl, out, &len) == CF_OK);
    FUZZ_CHECK(len == ptn && memcmp(out, pt, ptn) == 0);
    /* Bound to its content, position, last-ness and size. */
    FUZZ_CHECK(cf_chunk_open(&key, &other, &content, size, index, val, vl, out, &len) == CF_ECORRUPT);
    FUZZ_CHECK(cf_chunk_open(&key, &tenant, &other, size, index, val, vl, out, &len) == CF_ECORRUPT);
    FUZZ_CHECK(cf_chunk_open(&key, &tenant, &content, size + CF_CHUNK_SIZE, index, val, vl, out, &len) ==
               CF_ECORRUPT);
    FUZZ_CHECK(cf_chunk_open(&key, &tenant, &content, size + 1, index, val, vl, out, &len) == CF_ECORRUPT);
    FUZZ_CHECK(cf_chunk_open(&key, &tenant, &content, size, index - 1, val, vl, out, &len) == CF_ECORRUPT);
    /* Any single-byte change. */
    val[pos % vl] ^= mask;
    FUZZ_CHECK(cf_chunk_open(&key, &tenant, &content, size, index, val, vl, out, &len) == CF_ECORRUPT);
    val[pos % vl] ^= mask;
    /* Truncated or extended by one byte. */
    FUZZ_CHECK(cf_chunk_open(&key, &tenant, &content, size, index, val, vl - 1, out, &len) == CF_ECORRUPT);

    /* The bare AEAD with its AAD. */
    uint8_t sealed[MAX_PT + CF_SEAL_OVERHEAD];
    FUZZ_CHECK(cf_aead_seal(&key, "aad", 3, pt, ptn, sealed) == CF_OK);
    FUZZ_CHECK(cf_aead_open(&key, "aad", 3, sealed, ptn + CF_SEAL_OVERHEAD, out) == CF_OK);
    FUZZ_CHECK(memcmp(out, pt, ptn) == 0);
    FUZZ_CHECK(cf_aead_open(&key, "aae", 3, sealed, ptn + CF_SEAL_OVERHEAD, out) == CF_ECORRUPT);
    sealed[pos % (ptn + CF_SEAL_OVERHEAD)] ^= mask;
    FUZZ_CHECK(cf_aead_open(&key, "aad", 3, sealed, ptn + CF_SEAL_OVERHEAD, out) == CF_ECORRUPT);
    /* A failed open releases nothing. */
    for (size_t i = 0; i < ptn; i++)
        FUZZ_CHECK(out[i] == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 1 + CF_SEAL_OVERHEAD + 2 * MAX_PT)
        return 0;
    if (data[0] % 2 == 0)
        refuse_value(data + 1, size - 1);
    else
        round_trip(data + 1, size - 1);
    return 0;
}
