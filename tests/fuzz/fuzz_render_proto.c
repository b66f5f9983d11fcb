/*
 * fuzz_render_proto.c: the renderer protocol (src/render/render_proto.h), whose peer parses hostile
 * documents (libvips, poppler, LibreOffice) and so is not trusted: the server's check of every
 * message a renderer sends during a job (cf_render_reply_check), the renderer's check of a JOB
 * (cf_render_job_msg_ok) and the server's check of an output's container (cf_render_output_ok).
 * The input is one message, as recv() would return it.
 *
 * Invariants, re-checked here field by field: a READ belongs to this job and asks for
 * 1..CF_RENDER_CHUNK bytes inside the input; a RESULT belongs to this job, has a known result, a
 * NUL-terminated printable reason, no output unless OK, and dimensions within the page bounds;
 * everything else is BAD with a reason. A JOB accepted has a known op and kind, a width from the
 * fixed set where the op renders, and NUL-terminated watermark lines without control bytes. An
 * output accepted as a page starts with a RIFF/WEBP header whose length is the output's.
 *
 * Seeds: tests/fuzz/corpus/render_proto, written by tests/fuzz/corpus/render_proto.py.
 */
#include <string.h>

#include "fuzz.h"
#include "render.h"

static bool printable_z(const char *s, size_t cap)
{
    const char *end = memchr(s, '\0', cap);
    if (end == NULL)
        return false;
    for (const char *p = s; p < end; p++)
        if (*p < 0x20 || *p > 0x7e)
            return false;
    return true;
}

static void check_reply(const uint8_t *m, size_t n, uint64_t id, uint64_t size)
{
    const char *why = (const char *)1;
    enum cf_render_reply r = cf_render_reply_check(m, n, id, size, &why);
    struct cf_render_hdr h = {0};
    if (n >= sizeof h)
        memcpy(&h, m, sizeof h);
    switch (r) {
    case CF_RENDER_REPLY_READ: {
        struct cf_render_msg_read rd;
        FUZZ_CHECK(n == sizeof rd);
        memcpy(&rd, m, sizeof rd);
        FUZZ_CHECK(h.magic == CF_RENDER_MAGIC && h.type == CF_RENDER_READ && h.id == id);
        FUZZ_CHECK(rd.len >= 1 && rd.len <= CF_RENDER_CHUNK && rd.offset <= size && rd.len <= size - rd.offset);
        break;
    }
    case CF_RENDER_REPLY_RESULT: {
        struct cf_render_msg_result res;
        FUZZ_CHECK(n == sizeof res);
        memcpy(&res, m, sizeof res);
        FUZZ_CHECK(h.magic == CF_RENDER_MAGIC && h.type == CF_RENDER_RESULT && h.id == id);
        FUZZ_CHECK(res.result <= CF_RENDER_RESULT_MAX && printable_z(res.why, sizeof res.why));
        FUZZ_CHECK(res.result == CF_RENDER_OK || res.out_len == 0);
        FUZZ_CHECK(res.width <= CF_RENDER_WIDTH_MAX && res.height <= CF_RENDER_WIDTH_MAX * CF_RENDER_MAX_ASPECT);
        break;
    }
    case CF_RENDER_REPLY_BAD:
        FUZZ_CHECK(why != NULL && why != (const char *)1 && why[0] != '\0');
        break;
    default:
        FUZZ_CHECK(!"unknown classification");
    }
}

static void check_job(const uint8_t *m, size_t n)
{
    struct cf_render_msg_job j;
    if (n != sizeof j)
        return;
    memcpy(&j, m, sizeof j);
    if (!cf_render_job_msg_ok(&j))
        return;
    FUZZ_CHECK(j.h.magic == CF_RENDER_MAGIC && j.h.type == CF_RENDER_JOB && j.h.id != 0);
    FUZZ_CHECK(j.kind != CF_RENDER_NONE && j.kind <= CF_RENDER_KIND_MAX && j.wm_lines <= CF_RENDER_WM_LINES);
    FUZZ_CHECK(j.op != CF_RENDER_OP_PAGE || (j.page >= 1 && cf_render_width_ok(j.width)));
    FUZZ_CHECK(j.op == CF_RENDER_OP_PAGE || (j.page == 0 && j.width == 0));
    FUZZ_CHECK(j.op >= CF_RENDER_OP_PAGES && j.op <= CF_RENDER_OP_COMPOSE);
    for (uint32_t i = 0; i < j.wm_lines; i++) {
        const char *end = memchr(j.wm[i], '\0', sizeof j.wm[i]);
        FUZZ_CHECK(end != NULL);
        for (const char *p = j.wm[i]; p < end; p++)
            FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > sizeof(struct cf_render_msg_out) + CF_RENDER_CHUNK)
        return 0;
    struct cf_render_hdr h = {0};
    if (size >= sizeof h)
        memcpy(&h, data, sizeof h);
    static const uint64_t sizes[] = {0, 1, 4096, (uint64_t)1 << 31, UINT64_MAX};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        check_reply(data, size, h.id, sizes[k]);
        check_reply(data, size, h.id + 1, sizes[k]);
    }
    check_job(data, size);
    if (cf_render_output_ok(CF_RENDER_OP_PAGE, data, size)) {
        FUZZ_CHECK(size >= 20 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0);
        FUZZ_CHECK(((uint32_t)data[4] | (uint32_t)data[5] << 8 | (uint32_t)data[6] << 16 | (uint32_t)data[7] << 24) ==
                   size - 8);
    }
    if (cf_render_output_ok(CF_RENDER_OP_CONVERT, data, size))
        FUZZ_CHECK(size >= 8 && memcmp(data, "%PDF-", 5) == 0);
    return 0;
}
