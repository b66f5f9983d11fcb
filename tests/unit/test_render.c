/*
 * test_render.c: the renderer family (src/render) on its own: real coffer-render processes started
 * by cf_render_start, fed files built here at test time (a 3-page PDF drawn with Cairo, a PNG and a
 * JPEG made with libvips, a docx and an xlsx made with python3-docx and python3-openpyxl, a UTF-8
 * text), and every page decoded back with libvips (fine in a test; the server never does) to check
 * that it is a WebP of the requested width. Then the hostile side: unsupported kinds, a corpus of
 * malformed PDFs and a decompression-bomb PNG (a clear result, the renderer replaced, the next job
 * fine), a renderer SIGKILLed in the middle of a job (CF_EUNAVAIL, the next job fine), the office
 * scratch emptied after each conversion, and the watermark (two viewers' texts give different
 * bytes, both unlike the plain page), limits, deadlines, LibreOffice's confinement seen from inside
 * (tests/unit/fake_soffice.c), the service account, many jobs at once, renderers killed while idle,
 * and renderers stopped when idle (idle_stop_s) and started again by the next job. The protocol
 * checks are tested as pure functions first.
 *
 * COFFER_RENDER names the coffer-render executable, COFFER_FAKE_SOFFICE the stand-in for LibreOffice
 * (tests/unit/meson.build sets both).
 */
#include <cairo-pdf.h>
#include <cairo.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <vips/vips.h>

#include "childio.h"
#include "render.h"
#include "tap.h"

struct mem {
    const uint8_t *b;
    size_t n;
};

static enum cf_status mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    struct mem *m = ctx;
    if (off > m->n || m->n - off < len)
        return CF_EIO;
    memcpy(buf, m->b + off, len);
    return CF_OK;
}

/* A job on a buffer, run to completion. */
static void job_on(struct cf_render_job *j, struct mem *m, enum cf_render_op op, enum cf_render_kind kind,
                   unsigned page, unsigned width)
{
    memset(j, 0, sizeof *j);
    j->size = m->n;
    j->read = mem_read;
    j->ctx = m;
    j->op = op;
    j->kind = kind;
    j->page = page;
    j->width = width;
}

static enum cf_status run(struct cf_render_job *j)
{
    return cf_render_run(j);
}


/* Decodes a WebP with libvips: its width and height, or false. */
static bool webp_size(const uint8_t *b, size_t n, int *w, int *h)
{
    const char *loader = vips_foreign_find_load_buffer(b, n);
    if (loader == NULL || strcmp(loader, "VipsForeignLoadWebpBuffer") != 0)
        return false;
    VipsImage *img = vips_image_new_from_buffer(b, n, "", NULL);
    if (img == NULL)
        return false;
    double avg = 0;
    bool ok = vips_avg(img, &avg, NULL) == 0; /* decodes every pixel */
    *w = vips_image_get_width(img);
    *h = vips_image_get_height(img);
    g_object_unref(img);
    return ok;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* ---- inputs built here ------------------------------------------------------------------------ */

static cairo_status_t grow(void *closure, const unsigned char *data, unsigned int len)
{
    GByteArray *a = closure;
    g_byte_array_append(a, data, len);
    return CAIRO_STATUS_SUCCESS;
}

/* A PDF of `pages` A4 pages, each saying its number. */
static GByteArray *make_pdf(int pages)
{
    GByteArray *a = g_byte_array_new();
    cairo_surface_t *s = cairo_pdf_surface_create_for_stream(grow, a, 595, 842);
    cairo_t *cr = cairo_create(s);
    for (int i = 1; i <= pages; i++) {
        char t[32];
        snprintf(t, sizeof t, "Page %d", i);
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
        cairo_set_font_size(cr, 40);
        cairo_move_to(cr, 100, 200);
        cairo_show_text(cr, t);
        cairo_rectangle(cr, 50, 300, 495, 400);
        cairo_stroke(cr);
        cairo_show_page(cr);
    }
    cairo_destroy(cr);
    cairo_surface_finish(s);
    cairo_surface_destroy(s);
    return a;
}

/* An 800×600 gradient saved by libvips in the given format ("png" or "jpeg"). */
static void *make_image(const char *fmt, size_t *n)
{
    VipsImage *x = NULL, *x3 = NULL, *y = NULL;
    void *buf = NULL;
    if (vips_xyz(&x, 800, 600, NULL) != 0 || vips_bandjoin_const1(x, &x3, 128, NULL) != 0 ||
        vips_cast_uchar(x3, &y, NULL) != 0)
        return NULL;
    g_object_unref(x3);
    int rc = strcmp(fmt, "png") == 0 ? vips_pngsave_buffer(y, &buf, n, NULL) : vips_jpegsave_buffer(y, &buf, n, NULL);
    g_object_unref(x);
    g_object_unref(y);
    return rc == 0 ? buf : NULL;
}

static uint32_t crc32_of(const uint8_t *b, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= b[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* A PNG that declares 50000×50000 RGB pixels (7.5 GB decoded) in a few dozen bytes: valid signature,
 * IHDR with its CRC, an IDAT of a tiny zlib stream, IEND. */
static size_t make_bomb(uint8_t *out)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t n = 0;
    memcpy(out, sig, 8);
    n = 8;
    uint8_t ihdr[17] = {'I', 'H', 'D', 'R'};
    put32(ihdr + 4, 50000);
    put32(ihdr + 8, 50000);
    ihdr[12] = 8; /* bit depth */
    ihdr[13] = 2; /* RGB */
    put32(out + n, 13);
    memcpy(out + n + 4, ihdr, 17);
    put32(out + n + 21, crc32_of(ihdr, 17));
    n += 25;
    static const uint8_t idat[] = {'I', 'D', 'A', 'T', 0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
    put32(out + n, sizeof idat - 4);
    memcpy(out + n + 4, idat, sizeof idat);
    put32(out + n + 4 + sizeof idat, crc32_of(idat, sizeof idat));
    n += 8 + sizeof idat;
    static const uint8_t iend[] = {'I', 'E', 'N', 'D'};
    put32(out + n, 0);
    memcpy(out + n + 4, iend, 4);
    put32(out + n + 8, crc32_of(iend, 4));
    return n + 12;
}

/* ---- the pure checks -------------------------------------------------------------------------- */

static void pure(void)
{
    CHECK(cf_render_width_ok(480) && cf_render_width_ok(960) && cf_render_width_ok(1600), "the fixed widths");
    CHECK(!cf_render_width_ok(0) && !cf_render_width_ok(481) && !cf_render_width_ok(3200), "no other width");
    CHECK_INT(cf_render_kind_of("application/pdf"), CF_RENDER_PDF, "kind: PDF");
    CHECK_INT(cf_render_kind_of("image/png"), CF_RENDER_IMAGE, "kind: PNG");
    CHECK_INT(cf_render_kind_of("text/x-c"), CF_RENDER_TEXT, "kind: C source");
    CHECK_INT(cf_render_kind_of("text/html"), CF_RENDER_NONE, "kind: HTML is not previewed");
    CHECK_INT(cf_render_kind_of("image/svg+xml"), CF_RENDER_NONE, "kind: SVG is not previewed");
    CHECK_INT(cf_render_kind_of("application/zip"), CF_RENDER_NONE, "kind: zip");
    CHECK_INT(cf_render_kind_of("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
              CF_RENDER_DOCX, "kind: docx");

    struct cf_render_msg_job m = {.h = {CF_RENDER_MAGIC, CF_RENDER_JOB, 7}, .op = CF_RENDER_OP_PAGE,
                                  .kind = CF_RENDER_PDF, .page = 1, .width = 960};
    CHECK(cf_render_job_msg_ok(&m), "job: a page");
    m.width = 1000;
    CHECK(!cf_render_job_msg_ok(&m), "job: a width outside the set");
    m.width = 960, m.page = 0;
    CHECK(!cf_render_job_msg_ok(&m), "job: page 0");
    m.page = 1, m.wm_lines = 1, m.wm_opacity = 30;
    snprintf(m.wm[0], sizeof m.wm[0], "alice@example.com \xc3\xa9");
    CHECK(cf_render_job_msg_ok(&m), "job: a UTF-8 watermark");
    m.wm[0][3] = '\x1b';
    CHECK(!cf_render_job_msg_ok(&m), "job: a control character in the watermark");
    snprintf(m.wm[0], sizeof m.wm[0], "bad \xc3");
    CHECK(!cf_render_job_msg_ok(&m), "job: truncated UTF-8 in the watermark");
    memset(m.wm[0], 'a', sizeof m.wm[0]);
    CHECK(!cf_render_job_msg_ok(&m), "job: an unterminated watermark line");
    memset(m.wm[0], 0, sizeof m.wm[0]);
    m.wm_opacity = 0;
    CHECK(!cf_render_job_msg_ok(&m), "job: opacity 0 with a watermark");
    m = (struct cf_render_msg_job){.h = {CF_RENDER_MAGIC, CF_RENDER_JOB, 7}, .op = CF_RENDER_OP_CONVERT,
                                   .kind = CF_RENDER_PDF};
    CHECK(!cf_render_job_msg_ok(&m), "job: CONVERT needs an office kind");
    m.kind = CF_RENDER_XLSX;
    CHECK(cf_render_job_msg_ok(&m), "job: CONVERT of an xlsx");

    const char *why;
    struct cf_render_msg_read rd = {.h = {CF_RENDER_MAGIC, CF_RENDER_READ, 5}, .offset = 90, .len = 10};
    CHECK_INT(cf_render_reply_check(&rd, sizeof rd, 5, 100, &why), CF_RENDER_REPLY_READ, "reply: a read to the end");
    rd.len = 11;
    CHECK_INT(cf_render_reply_check(&rd, sizeof rd, 5, 100, &why), CF_RENDER_REPLY_BAD, "reply: a read past the end");
    rd.len = 10;
    CHECK_INT(cf_render_reply_check(&rd, sizeof rd, 6, 100, &why), CF_RENDER_REPLY_BAD, "reply: another job's id");
    CHECK_INT(cf_render_reply_check(&rd, sizeof rd - 1, 5, 100, &why), CF_RENDER_REPLY_BAD, "reply: a short message");
    struct cf_render_msg_result r = {.h = {CF_RENDER_MAGIC, CF_RENDER_RESULT, 5}, .result = CF_RENDER_OK, .pages = 2};
    CHECK_INT(cf_render_reply_check(&r, sizeof r, 5, 100, &why), CF_RENDER_REPLY_RESULT, "reply: a result");
    r.result = CF_RENDER_RESULT_MAX + 1;
    CHECK_INT(cf_render_reply_check(&r, sizeof r, 5, 100, &why), CF_RENDER_REPLY_BAD, "reply: an unknown result");
    r.result = CF_RENDER_MALFORMED, r.out_len = 5;
    CHECK_INT(cf_render_reply_check(&r, sizeof r, 5, 100, &why), CF_RENDER_REPLY_BAD, "reply: output with a failure");
    r.out_len = 0;
    memset(r.why, 'x', sizeof r.why);
    CHECK_INT(cf_render_reply_check(&r, sizeof r, 5, 100, &why), CF_RENDER_REPLY_BAD, "reply: an unterminated why");

    uint8_t webp[20] = {'R', 'I', 'F', 'F', 12, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'L'};
    CHECK(cf_render_output_ok(CF_RENDER_OP_PAGE, webp, sizeof webp), "output: a WebP header");
    webp[4] = 13;
    CHECK(!cf_render_output_ok(CF_RENDER_OP_PAGE, webp, sizeof webp), "output: a RIFF length that does not match");
    CHECK(!cf_render_output_ok(CF_RENDER_OP_PAGE, (const uint8_t *)"%PDF-1.7 xxxxxxxxxxx", 20),
          "output: a PDF is not a page image");
    CHECK(cf_render_output_ok(CF_RENDER_OP_CONVERT, (const uint8_t *)"%PDF-1.7 xxxxxxxxxxx", 20),
          "output: a converted PDF");
}

/* ---- the family ------------------------------------------------------------------------------- */

static bool pid_is_up(pid_t pid)
{
    int pids[8];
    size_t n = cf_render_pids(pids, 8);
    for (size_t i = 0; i < n; i++)
        if (pids[i] == pid)
            return true;
    return false;
}

/* Page `page` of a document at `width`: a decodable WebP of that width; its bytes are kept. */
static void check_page(struct mem *m, enum cf_render_kind kind, unsigned page, unsigned width, int want_h,
                       const char *what, GByteArray *keep)
{
    struct cf_render_job j;
    job_on(&j, m, CF_RENDER_OP_PAGE, kind, page, width);
    CHECK_INT(run(&j), CF_OK, "%s page %u: status", what, page);
    CHECK_INT(j.result, CF_RENDER_OK, "%s page %u at %u: rendered (%s)", what, page, width, j.why);
    int w = 0, h = 0;
    CHECK(j.out != NULL && webp_size(j.out, j.out_len, &w, &h), "%s page %u: a WebP libvips decodes", what, page);
    CHECK_INT(w, width, "%s page %u: width", what, page);
    CHECK_INT(j.out_width, (unsigned)w, "%s page %u: the width the renderer reported", what, page);
    CHECK_INT(j.out_height, (unsigned)h, "%s page %u: the height the renderer reported", what, page);
    if (want_h > 0)
        CHECK(h >= want_h - 2 && h <= want_h + 2, "%s page %u: height %d (want about %d)", what, page, h, want_h);
    if (keep != NULL && j.out != NULL)
        g_byte_array_append(keep, j.out, (guint)j.out_len);
    cf_render_job_clear(&j);
}

static unsigned count_pages(struct mem *m, enum cf_render_kind kind, enum cf_render_result *res)
{
    struct cf_render_job j;
    job_on(&j, m, CF_RENDER_OP_PAGES, kind, 0, 0);
    enum cf_status st = run(&j);
    *res = st == CF_OK ? j.result : CF_RENDER_FAILED;
    CHECK(j.out == NULL, "a page count has no output");
    return st == CF_OK ? j.pages : 0;
}

static void documents(GByteArray *pdf)
{
    enum cf_render_result res;
    struct mem m = {pdf->data, pdf->len};
    CHECK_INT(count_pages(&m, CF_RENDER_PDF, &res), 3, "PDF: 3 pages");
    CHECK_INT(res, CF_RENDER_OK, "PDF: counted");
    for (unsigned p = 1; p <= 3; p++)
        check_page(&m, CF_RENDER_PDF, p, 960, (int)(842.0 * 960 / 595 + 0.99), "PDF", NULL);
    check_page(&m, CF_RENDER_PDF, 1, 480, 0, "PDF", NULL);
    check_page(&m, CF_RENDER_PDF, 2, 1600, 0, "PDF", NULL);
    struct cf_render_job j;
    job_on(&j, &m, CF_RENDER_OP_PAGE, CF_RENDER_PDF, 4, 960);
    CHECK(run(&j) == CF_OK && j.result == CF_RENDER_NO_PAGE && j.pages == 3, "PDF: page 4 of 3 is NO_PAGE");

    size_t n = 0;
    void *png = make_image("png", &n);
    struct mem mp = {png, n};
    CHECK_INT(count_pages(&mp, CF_RENDER_IMAGE, &res), 1, "PNG: one page");
    check_page(&mp, CF_RENDER_IMAGE, 1, 480, 360, "PNG", NULL);
    g_free(png);
    void *jpg = make_image("jpeg", &n);
    struct mem mj = {jpg, n};
    check_page(&mj, CF_RENDER_IMAGE, 1, 1600, 1200, "JPEG (scaled up)", NULL);
    check_page(&mj, CF_RENDER_IMAGE, 1, 960, 720, "JPEG", NULL);
    g_free(jpg);

    /* 130 lines of UTF-8, non-ASCII included: 3 pages of 60 lines. */
    GString *t = g_string_new(NULL);
    for (int i = 1; i <= 130; i++)
        g_string_append_printf(t, "line %d: Grüße, 你好, Ελληνικά, emoji \xf0\x9f\x99\x82 and a\ttab\r\n", i);
    g_string_append(t, "invalid UTF-8 here: \xff\xfe and a NUL: ");
    g_string_append_c(t, 'x');
    struct mem mt = {(const uint8_t *)t->str, t->len};
    CHECK_INT(count_pages(&mt, CF_RENDER_TEXT, &res), 3, "text: 131 lines make 3 pages");
    check_page(&mt, CF_RENDER_TEXT, 1, 960, 0, "text", NULL);
    check_page(&mt, CF_RENDER_TEXT, 3, 480, 0, "text", NULL);
    g_string_free(t, TRUE);
}

/* The office documents, made with Debian's python3-docx and python3-openpyxl. */
static void office(const char *dir)
{
    char cmd[2048], path[600];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"\n"
             "import docx, openpyxl\n"
             "d = docx.Document()\n"
             "for i in range(3):\n"
             "    d.add_heading('Chapter %%d' %% (i + 1), 1)\n"
             "    d.add_paragraph('Grüße aus dem Kapitel %%d.' %% (i + 1))\n"
             "    if i < 2: d.add_page_break()\n"
             "d.save('%s/t.docx')\n"
             "wb = openpyxl.Workbook()\n"
             "ws = wb.active\n"
             "for r in range(1, 40): ws.append([r, r * r, 'row %%d' %% r])\n"
             "wb.save('%s/t.xlsx')\n"
             "\"",
             dir, dir);
    if (system(cmd) != 0 || !cf_render_office()) {
        printf("# no office documents: %s\n", cf_render_office() ? "python3-docx/openpyxl missing" : "no LibreOffice");
        CHECK(false, "office documents can be made and converted (scripts/deps.sh installs both)");
        return;
    }
    size_t n;
    enum cf_render_result res;
    snprintf(path, sizeof path, "%s/t.docx", dir);
    uint8_t *docx = slurp(path, &n);
    struct mem md = {docx, n};
    CHECK_INT(count_pages(&md, CF_RENDER_DOCX, &res), 3, "docx: 3 pages (page breaks)");
    CHECK_INT(res, CF_RENDER_OK, "docx: converted and counted");
    check_page(&md, CF_RENDER_DOCX, 2, 960, 0, "docx", NULL);
    struct cf_render_job j;
    job_on(&j, &md, CF_RENDER_OP_CONVERT, CF_RENDER_DOCX, 0, 0);
    CHECK(run(&j) == CF_OK && j.result == CF_RENDER_OK && j.out_len > 5 && memcmp(j.out, "%PDF-", 5) == 0,
          "docx: CONVERT gives a PDF");
    if (j.out != NULL) {
        struct mem mc = {j.out, j.out_len};
        CHECK_INT(count_pages(&mc, CF_RENDER_PDF, &res), 3, "docx: the converted PDF has the same 3 pages");
    }
    cf_render_job_clear(&j);
    /* The document existed on the scratch tmpfs only during the conversion. */
    glob_t g;
    char pat[128];
    snprintf(pat, sizeof pat, "/dev/shm/coffer-render-%ld-*/*/office", (long)getpid());
    CHECK_INT(glob(pat, 0, NULL, &g), GLOB_NOMATCH, "no office directory is left in the scratch");
    globfree(&g);
    free(docx);

    snprintf(path, sizeof path, "%s/t.xlsx", dir);
    uint8_t *xlsx = slurp(path, &n);
    struct mem mx = {xlsx, n};
    unsigned pages = count_pages(&mx, CF_RENDER_XLSX, &res);
    CHECK(res == CF_RENDER_OK && pages >= 1, "xlsx: converted, %u page(s)", pages);
    check_page(&mx, CF_RENDER_XLSX, 1, 480, 0, "xlsx", NULL);
    free(xlsx);

    /* Not a document at all, said to be one: LibreOffice's failure is a clear result. */
    static const uint8_t junk[] = "PK\x03\x04 this is no zip and no document";
    struct mem mjunk = {junk, sizeof junk - 1};
    job_on(&j, &mjunk, CF_RENDER_OP_PAGES, CF_RENDER_PPTX, 0, 0);
    CHECK(run(&j) == CF_OK && j.result != CF_RENDER_OK, "a broken pptx: a clear failure (%d: %s)", j.result, j.why);
}

/* Runs a hostile input: a clear result (not OK), the renderer that ran it replaced, the next job fine. */
static void hostile(const uint8_t *b, size_t n, enum cf_render_kind kind, enum cf_render_result want, const char *what,
                    GByteArray *good)
{
    struct mem m = {b, n};
    struct cf_render_job j;
    job_on(&j, &m, CF_RENDER_OP_PAGE, kind, 1, 960);
    enum cf_status st = run(&j);
    CHECK_INT(st, CF_OK, "%s: the renderer answered", what);
    CHECK_INT(j.result, want, "%s: result (%s)", what, j.why);
    CHECK(j.out == NULL && j.out_len == 0, "%s: no output", what);
    CHECK(j.pid > 0 && !pid_is_up(j.pid), "%s: the renderer that refused it was replaced", what);
    struct mem mg = {good->data, good->len};
    enum cf_render_result res;
    CHECK_INT(count_pages(&mg, CF_RENDER_PDF, &res), 3, "%s: the next job works", what);
}

static void malformed(GByteArray *pdf)
{
    /* Truncated: the catalog and the page tree are at the end. */
    hostile(pdf->data, pdf->len / 3, CF_RENDER_PDF, CF_RENDER_MALFORMED, "truncated PDF", pdf);
    /* Garbage everywhere after the header, a garbage xref and a trailer that names no object. */
    GByteArray *g = g_byte_array_new();
    static const char head[] = "%PDF-1.7\n";
    g_byte_array_append(g, (const guint8 *)head, sizeof head - 1);
    for (int i = 0; i < 4000; i++) {
        guint8 c = (guint8)(i * 7919 % 251);
        g_byte_array_append(g, &c, 1);
    }
    static const char tail[] = "\nxref\n0 9999999999\ngarbage garbage f\ntrailer\n<< /Size -5 /Root 77 0 R >>\n"
                               "startxref\n999999999\n%%EOF\n";
    g_byte_array_append(g, (const guint8 *)tail, sizeof tail - 1);
    hostile(g->data, g->len, CF_RENDER_PDF, CF_RENDER_MALFORMED, "garbage-xref PDF", pdf);
    g_byte_array_free(g, TRUE);
    /* A page tree that contains itself, and an object whose length is itself. */
    static const char loop[] = "%PDF-1.4\n"
                               "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
                               "2 0 obj << /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 /Parent 2 0 R >> endobj\n"
                               "3 0 obj << /Type /Pages /Kids [2 0 R] /Count 1 /Parent 3 0 R >> endobj\n"
                               "4 0 obj << /Length 4 0 R >> stream\nxx\nendstream endobj\n"
                               "trailer << /Root 1 0 R /Size 5 >>\n%%EOF\n";
    hostile((const uint8_t *)loop, sizeof loop - 1, CF_RENDER_PDF, CF_RENDER_MALFORMED, "recursive PDF", pdf);
    /* Not a PDF at all. */
    hostile((const uint8_t *)"hello", 5, CF_RENDER_PDF, CF_RENDER_MALFORMED, "not a PDF", pdf);
    /* The decompression bomb: refused from its header, before a pixel is decoded. */
    uint8_t bomb[128];
    size_t bn = make_bomb(bomb);
    hostile(bomb, bn, CF_RENDER_IMAGE, CF_RENDER_TOO_LARGE, "a PNG declaring 50000x50000", pdf);
    /* An image kind that is no image. */
    hostile((const uint8_t *)"GIF89a\x01", 7, CF_RENDER_IMAGE, CF_RENDER_MALFORMED, "a truncated GIF", pdf);
}

/* ---- the kill test, with a read function that sees its job ---------------------------------- */

struct kill_ctx {
    struct cf_render_job *job;
    const uint8_t *b;
    size_t n;
    pid_t killed;
};

static enum cf_status read_then_kill(void *ctx, uint64_t off, void *buf, size_t len)
{
    struct kill_ctx *k = ctx;
    if (k->killed == 0 && k->job->pid > 0) {
        k->killed = k->job->pid;
        kill(k->killed, SIGKILL); /* mid-job: the renderer has asked for the input */
    }
    memcpy(buf, k->b + off, len);
    return CF_OK;
}

static void kill_mid_job(GByteArray *pdf)
{
    struct cf_render_job j;
    struct kill_ctx k = {.job = &j, .b = pdf->data, .n = pdf->len};
    memset(&j, 0, sizeof j);
    j.size = pdf->len;
    j.read = read_then_kill;
    j.ctx = &k;
    j.op = CF_RENDER_OP_PAGE;
    j.kind = CF_RENDER_PDF;
    j.page = 1;
    j.width = 960;
    enum cf_status st = cf_render_run(&j);
    CHECK(k.killed > 0, "the renderer was killed while it read the input (pid %ld)", (long)k.killed);
    CHECK_INT(st, CF_EUNAVAIL, "a renderer killed mid-job: CF_EUNAVAIL");
    CHECK(j.out == NULL, "a renderer killed mid-job: no output");
    CHECK(!pid_is_up(k.killed), "the killed renderer is not counted as up");
    struct mem mg = {pdf->data, pdf->len};
    enum cf_render_result res;
    CHECK_INT(count_pages(&mg, CF_RENDER_PDF, &res), 3, "after the kill: the next job works");
    int pids[8];
    CHECK_INT(cf_render_pids(pids, 8), 2, "after the kill: both renderers are up again");
    cf_render_job_clear(&j);
}

static void unsupported(void)
{
    struct mem m = {(const uint8_t *)"PK\x03\x04", 4};
    struct cf_render_job j;
    job_on(&j, &m, CF_RENDER_OP_PAGES, cf_render_kind_of("application/zip"), 0, 0);
    CHECK(run(&j) == CF_OK && j.result == CF_RENDER_UNSUPPORTED, "a zip: unsupported");
    /* A BMP (only ImageMagick reads it here, and that loader is blocked): no loader. */
    static const uint8_t bmp[] = "BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x01\0\0\0\x01\0\0\0\x01\0\x18\0";
    struct mem mb = {bmp, sizeof bmp - 1};
    job_on(&j, &mb, CF_RENDER_OP_PAGE, CF_RENDER_IMAGE, 1, 480);
    CHECK(run(&j) == CF_OK && j.result != CF_RENDER_OK, "a BMP: not rendered (%d: %s)", j.result, j.why);
    job_on(&j, &m, CF_RENDER_OP_PAGE, CF_RENDER_PDF, 1, 500);
    CHECK_INT(run(&j), CF_EINVAL, "a width outside the set: refused before any renderer sees it");
}

static void watermarks(GByteArray *pdf)
{
    struct mem m = {pdf->data, pdf->len};
    GByteArray *plain = g_byte_array_new(), *alice = g_byte_array_new(), *bob = g_byte_array_new();
    check_page(&m, CF_RENDER_PDF, 1, 960, 0, "plain", plain);
    const char *la[] = {"Alice Example <alice@example.com>", "2026-12-05 16:00 UTC \xe2\x80\x94 view only"};
    const char *lb[] = {"Bob Example <bob@example.com>", "2026-12-05 16:00 UTC \xe2\x80\x94 view only"};
    struct cf_render_job j;
    for (int who = 0; who < 2; who++) {
        struct mem mp = {plain->data, plain->len};
        job_on(&j, &mp, CF_RENDER_OP_COMPOSE, CF_RENDER_WEBP, 0, 0);
        cf_render_wm_set(&j, who == 0 ? la : lb, 2, 25);
        CHECK_INT(run(&j), CF_OK, "compose %s: status", who == 0 ? "alice" : "bob");
        CHECK_INT(j.result, CF_RENDER_OK, "compose %s: result (%s)", who == 0 ? "alice" : "bob", j.why);
        int w = 0, h = 0;
        CHECK(j.out != NULL && webp_size(j.out, j.out_len, &w, &h) && w == 960, "compose: a 960-wide WebP");
        if (j.out != NULL)
            g_byte_array_append(who == 0 ? alice : bob, j.out, (guint)j.out_len);
        cf_render_job_clear(&j);
    }
    CHECK(alice->len > 0 && bob->len > 0 && (alice->len != bob->len || memcmp(alice->data, bob->data, alice->len) != 0),
          "two viewers' watermarks give different bytes");
    CHECK(alice->len != plain->len || memcmp(alice->data, plain->data, plain->len) != 0,
          "a watermarked page differs from the plain one");
    /* The watermark in one step (OP_PAGE with lines) differs from the plain page too. */
    job_on(&j, &m, CF_RENDER_OP_PAGE, CF_RENDER_PDF, 1, 960);
    cf_render_wm_set(&j, la, 2, 25);
    CHECK(run(&j) == CF_OK && j.result == CF_RENDER_OK &&
              (j.out_len != plain->len || memcmp(j.out, plain->data, plain->len) != 0),
          "a page rendered with a watermark differs from the plain one");
    cf_render_job_clear(&j);
    /* COMPOSE refuses what is not a WebP page. */
    job_on(&j, &m, CF_RENDER_OP_COMPOSE, CF_RENDER_WEBP, 0, 0);
    cf_render_wm_set(&j, la, 1, 25);
    CHECK(run(&j) == CF_OK && j.result != CF_RENDER_OK, "compose of a PDF: refused (%d)", j.result);
    g_byte_array_free(plain, TRUE);
    g_byte_array_free(alice, TRUE);
    g_byte_array_free(bob, TRUE);
}

/* Limits, with a family started again with small ones: the page count capped, the pages beyond
 * the cap refused, an output over max_output, an input over max_input, an image over max_pixels. */
static void limits(const char *worker, GByteArray *pdf)
{
    struct cf_render_opts o = {.worker = worker, .scratch_dir = "/dev/shm", .processes = 1, .max_seconds = 240,
                               .max_pages = 2, .max_output = 3000, .max_input = pdf->len + 10,
                               .max_pixels = 100000};
    char *err = NULL;
    enum cf_status st = cf_render_start(&o, &err);
    CHECK_INT(st, CF_OK, "limits: the renderers start again (%s)", err != NULL ? err : "");
    free(err);
    if (st != CF_OK)
        return;
    struct mem m = {pdf->data, pdf->len};
    enum cf_render_result res;
    CHECK_INT(count_pages(&m, CF_RENDER_PDF, &res), 2, "limits: 3 pages counted as max_pages (2)");
    struct cf_render_job j;
    job_on(&j, &m, CF_RENDER_OP_PAGE, CF_RENDER_PDF, 3, 480);
    CHECK(run(&j) == CF_OK && j.result == CF_RENDER_NO_PAGE, "limits: page 3 is beyond max_pages");
    job_on(&j, &m, CF_RENDER_OP_PAGE, CF_RENDER_PDF, 1, 1600);
    CHECK(run(&j) == CF_OK && j.result == CF_RENDER_TOO_LARGE && j.out == NULL,
          "limits: a page over max_output is TOO_LARGE (%d: %s)", j.result, j.why);
    GByteArray *big = g_byte_array_new();
    g_byte_array_append(big, pdf->data, pdf->len);
    g_byte_array_append(big, (const guint8 *)"%% padding %%", 11);
    struct mem mb = {big->data, big->len};
    job_on(&j, &mb, CF_RENDER_OP_PAGES, CF_RENDER_PDF, 0, 0);
    CHECK(run(&j) == CF_OK && j.result == CF_RENDER_TOO_LARGE, "limits: an input over max_input is TOO_LARGE");
    g_byte_array_free(big, TRUE);
    size_t n = 0;
    void *png = make_image("png", &n); /* 800×600: 480000 pixels, over 100000 */
    struct mem mp = {png, n};
    job_on(&j, &mp, CF_RENDER_OP_PAGE, CF_RENDER_IMAGE, 1, 480);
    CHECK(run(&j) == CF_OK && j.result == CF_RENDER_TOO_LARGE, "limits: an image over max_pixels is TOO_LARGE");
    g_free(png);
    cf_render_stop();
}

/* A renderer, seen from outside: seccomp in filter mode, no new privileges, not dumpable (its
 * /proc files belong to root), a session of its own. */
static void confined(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    bool seccomp = false, nnp = false;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strcmp(line, "Seccomp:\t2\n") == 0)
            seccomp = true;
        if (strcmp(line, "NoNewPrivs:\t1\n") == 0)
            nnp = true;
    }
    if (f != NULL)
        fclose(f);
    CHECK(seccomp, "renderer %ld: a seccomp filter is loaded", (long)pid);
    CHECK(nnp, "renderer %ld: no new privileges", (long)pid);
    CHECK_INT(getsid(pid), pid, "renderer %ld: a session of its own", (long)pid);
    /* libvips' optional modules (ImageMagick above all) are not even loaded. */
    snprintf(path, sizeof path, "/proc/%ld/maps", (long)pid);
    f = fopen(path, "r");
    bool vips = false, modules = false;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        vips |= strstr(line, "libvips.so") != NULL;
        modules |= strstr(line, "vips-modules") != NULL || strstr(line, "Magick") != NULL ||
                   strstr(line, "openslide") != NULL;
    }
    if (f != NULL)
        fclose(f);
    CHECK(vips && !modules, "renderer %ld: libvips without its modules (no ImageMagick, no OpenSlide)", (long)pid);
}

/* Started as root, the family runs as the service account (here nobody): the renderer switches
 * before it reads anything, and LibreOffice, unprivileged, still gets its namespaces (through a
 * user namespace) or its fallback confinement, and converts. */
static void as_account(const char *worker, GByteArray *pdf, const char *dir)
{
    if (geteuid() != 0) {
        printf("# not root: the service-account case is skipped\n");
        return;
    }
    struct cf_render_opts o = {.worker = worker, .scratch_dir = "/dev/shm", .processes = 1, .max_seconds = 240,
                               .run_as = true, .uid = 65534, .gid = 65534};
    char *err = NULL;
    enum cf_status st = cf_render_start(&o, &err);
    CHECK_INT(st, CF_OK, "as nobody: the renderer starts (%s)", err != NULL ? err : "");
    free(err);
    if (st != CF_OK)
        return;
    int pid;
    CHECK_INT(cf_render_pids(&pid, 1), 1, "as nobody: one renderer");
    char path[64], line[256];
    bool uid_ok = false;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strcmp(line, "Uid:\t65534\t65534\t65534\t65534\n") == 0)
            uid_ok = true;
    if (f != NULL)
        fclose(f);
    CHECK(uid_ok, "as nobody: the renderer runs as uid 65534");
    struct mem m = {pdf->data, pdf->len};
    enum cf_render_result res;
    CHECK_INT(count_pages(&m, CF_RENDER_PDF, &res), 3, "as nobody: a PDF renders");
    char p2[600];
    size_t n = 0;
    snprintf(p2, sizeof p2, "%s/t.docx", dir);
    uint8_t *docx = slurp(p2, &n);
    if (docx != NULL) {
        struct mem md = {docx, n};
        CHECK_INT(count_pages(&md, CF_RENDER_DOCX, &res), 3, "as nobody: LibreOffice converts a docx");
        free(docx);
    }
    cf_render_stop();
}

/* LibreOffice's seat, with a stand-in for soffice.bin (tests/unit/fake_soffice.c) that checks its
 * confinement from inside (no network socket, no interface but loopback, no capability, seccomp,
 * a private /tmp, no write outside its directory) and converts only if all hold; then deadlines,
 * with jobs of 1 s: the stand-in told to hang is killed at the deadline (TIMEOUT); a renderer that
 * hangs (fault-injection builds: a text that asks for it) is killed by the server at the deadline
 * plus its margin (CF_EUNAVAIL); the next job works. As root, and as nobody (user namespaces). */
static void office_seat(const char *worker, GByteArray *pdf, bool as_nobody)
{
    const char *fake = getenv("COFFER_FAKE_SOFFICE");
    const char *who = as_nobody ? "as nobody" : "as root";
    if (fake == NULL) {
        CHECK(false, "COFFER_FAKE_SOFFICE names the stand-in for LibreOffice");
        return;
    }
    if (as_nobody && geteuid() != 0)
        return;
    if (strncmp(fake, "/tmp/", 5) == 0) /* the seat mounts a private /tmp over the real one */
        printf("# the stand-in %s is under /tmp, which LibreOffice's seat hides (exit 127): build outside /tmp\n",
               fake);
    struct cf_render_opts o = {.worker = worker, .scratch_dir = "/dev/shm", .processes = 1, .max_seconds = 1,
                               .soffice = fake, .run_as = as_nobody, .uid = 65534, .gid = 65534};
    char *err = NULL;
    enum cf_status st = cf_render_start(&o, &err);
    CHECK_INT(st, CF_OK, "seat %s: the renderer starts (%s)", who, err != NULL ? err : "");
    free(err);
    if (st != CF_OK)
        return;
    static const uint8_t doc[] = "PK\x03\x04 a document for the stand-in";
    struct mem md = {doc, sizeof doc - 1};
    struct cf_render_job j;
    job_on(&j, &md, CF_RENDER_OP_PAGES, CF_RENDER_ODT, 0, 0);
    st = run(&j);
    CHECK(st == CF_OK && j.result == CF_RENDER_OK && j.pages == 1,
          "seat %s: LibreOffice's seat is confined (see 'LibreOffice exited with status N' above for the check "
          "that failed) (%d, %d: %s)",
          who, st, j.result, j.why);
    static const uint8_t hang[] = "PK\x03\x04 HANG";
    struct mem mh = {hang, sizeof hang - 1};
    job_on(&j, &mh, CF_RENDER_OP_PAGES, CF_RENDER_ODT, 0, 0);
    st = run(&j);
    CHECK(st == CF_OK && j.result == CF_RENDER_TIMEOUT, "seat %s: LibreOffice past the deadline: TIMEOUT (%d, %d: %s)",
          who, st, j.result, j.why);
    CHECK(j.pid > 0 && !pid_is_up(j.pid), "seat %s: that renderer was replaced", who);
#ifdef CF_FAULT_INJECTION
    if (!as_nobody) {
        static const char hang_text[] = "COFFER-TEST-RENDERER-HANG\nthen nothing";
        struct mem mt = {(const uint8_t *)hang_text, sizeof hang_text - 1};
        job_on(&j, &mt, CF_RENDER_OP_PAGES, CF_RENDER_TEXT, 0, 0);
        st = run(&j);
        CHECK_INT(st, CF_EUNAVAIL, "deadlines: a renderer that hangs: CF_EUNAVAIL (%s)", j.why);
        CHECK(j.pid > 0 && !pid_is_up(j.pid), "deadlines: the hung renderer was killed");
    }
#endif
    struct mem m = {pdf->data, pdf->len};
    enum cf_render_result res;
    CHECK_INT(count_pages(&m, CF_RENDER_PDF, &res), 3, "seat %s: the next job works", who);
    cf_render_stop();
}

/* Many jobs at once through cf_render_submit (as phase 2's upload path will queue them): every one
 * completes, on one of the two renderers, with its own page. */
static pthread_mutex_t many_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t many_cond = PTHREAD_COND_INITIALIZER;
static int many_done;

static void many_cb(struct cf_render_job *j)
{
    (void)j;
    pthread_mutex_lock(&many_lock);
    many_done++;
    pthread_cond_broadcast(&many_cond);
    pthread_mutex_unlock(&many_lock);
}

static void concurrent(GByteArray *pdf)
{
    enum { N = 9 };
    static struct cf_render_job jobs[N];
    struct mem m = {pdf->data, pdf->len};
    many_done = 0;
    for (int i = 0; i < N; i++) {
        job_on(&jobs[i], &m, CF_RENDER_OP_PAGE, CF_RENDER_PDF, (unsigned)(i % 3) + 1, 480);
        jobs[i].done = many_cb;
        cf_render_submit(&jobs[i]);
    }
    pthread_mutex_lock(&many_lock);
    while (many_done < N)
        pthread_cond_wait(&many_cond, &many_lock);
    pthread_mutex_unlock(&many_lock);
    int ok = 0, same = 0;
    for (int i = 0; i < N; i++) {
        ok += jobs[i].status == CF_OK && jobs[i].result == CF_RENDER_OK && jobs[i].out != NULL;
        /* the same page twice gives the same bytes (rendering is deterministic: a cache can trust it) */
        if (i >= 3 && jobs[i].out_len == jobs[i - 3].out_len &&
            memcmp(jobs[i].out, jobs[i - 3].out, jobs[i].out_len) == 0)
            same++;
    }
    CHECK_INT(ok, N, "%d jobs submitted at once: all rendered", N);
    CHECK_INT(same, N - 3, "the same page rendered twice gives the same bytes");
    CHECK(jobs[0].out_len != jobs[1].out_len || memcmp(jobs[0].out, jobs[1].out, jobs[0].out_len) != 0,
          "two different pages give different bytes");
    for (int i = 0; i < N; i++)
        cf_render_job_clear(&jobs[i]);
}

/* cf_render_submit_async (the pages API's way, render.h): at most max_queued jobs wait (16 for two
 * renderers); past that CF_EBUSY at once and nothing is queued; every job taken completes and hands
 * its `then` job back (here with no loop: then->done runs on the render thread). */
struct bounded_then {
    struct cf_job job;
    struct cf_render_job *rj;
};

static void bounded_done(struct cf_job *job)
{
    (void)job;
    pthread_mutex_lock(&many_lock);
    many_done++;
    pthread_cond_broadcast(&many_cond);
    pthread_mutex_unlock(&many_lock);
}

static void bounded(GByteArray *pdf)
{
    enum { N = 24, BOUND = 2 * CF_RENDER_QUEUE_PER_PROCESS };
    static struct cf_render_job jobs[N];
    static struct bounded_then thens[N];
    struct mem m = {pdf->data, pdf->len};
    int accepted = 0, busy = 0, other = 0;
    many_done = 0;
    for (int i = 0; i < N; i++) {
        job_on(&jobs[i], &m, CF_RENDER_OP_PAGE, CF_RENDER_PDF, (unsigned)(i % 3) + 1, 1600);
        thens[i] = (struct bounded_then){.job = {.done = bounded_done, .reply_to = NULL}, .rj = &jobs[i]};
        enum cf_status st = cf_render_submit_async(&jobs[i], &thens[i].job);
        accepted += st == CF_OK;
        busy += st == CF_EBUSY;
        other += st != CF_OK && st != CF_EBUSY;
    }
    /* The loop above takes microseconds, a render of a 1600-px page many milliseconds: the two render
     * threads have taken at most one job each meanwhile. */
    CHECK(accepted >= BOUND && accepted <= BOUND + 2 && busy == N - accepted && other == 0,
          "async submits: %d taken (the bound is %d waiting, 2 rendering), %d refused with CF_EBUSY", accepted, BOUND,
          busy);
    pthread_mutex_lock(&many_lock);
    while (many_done < accepted)
        pthread_cond_wait(&many_cond, &many_lock);
    pthread_mutex_unlock(&many_lock);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ok += jobs[i].status == CF_OK && jobs[i].result == CF_RENDER_OK && jobs[i].out != NULL;
        cf_render_job_clear(&jobs[i]);
    }
    CHECK_INT(ok, accepted, "every job taken was rendered and handed back");
    CHECK(cf_render_queued() == 0, "nothing waits afterwards");
    job_on(&jobs[0], &m, CF_RENDER_OP_PAGE, CF_RENDER_PDF, 1, 480);
    thens[0] = (struct bounded_then){.job = {.done = bounded_done, .reply_to = NULL}, .rj = &jobs[0]};
    many_done = 0;
    CHECK_INT(cf_render_submit_async(&jobs[0], &thens[0].job), CF_OK, "once the queue drained, a job is taken again");
    pthread_mutex_lock(&many_lock);
    while (many_done < 1)
        pthread_cond_wait(&many_cond, &many_lock);
    pthread_mutex_unlock(&many_lock);
    cf_render_job_clear(&jobs[0]);
}

/* A renderer that dies while idle: the next job still works (the idle check or the retry on a
 * fresh renderer takes care of it; the job played no part in the death). */
static void killed_idle(GByteArray *pdf)
{
    int pids[8];
    size_t n = cf_render_pids(pids, 8);
    for (size_t i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    struct mem m = {pdf->data, pdf->len};
    struct cf_render_job j;
    job_on(&j, &m, CF_RENDER_OP_PAGE, CF_RENDER_PDF, 2, 480);
    CHECK(run(&j) == CF_OK && j.result == CF_RENDER_OK, "after both idle renderers were killed: a job works (%s)",
          j.why);
    cf_render_job_clear(&j);
}

/* Every renderer of this process is stopped: none up, the processes of `gone` (n of them) reaped, no
 * renderer's scratch directory left. */
static bool all_stopped(const int *gone, size_t n)
{
    int pids[8];
    glob_t g;
    char pat[128];
    if (cf_render_pids(pids, 8) != 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (kill(gone[i], 0) == 0 || errno != ESRCH)
            return false;
    snprintf(pat, sizeof pat, "/dev/shm/coffer-render-%ld-*/[0-9]", (long)getpid());
    int rc = glob(pat, 0, NULL, &g);
    globfree(&g);
    return rc == GLOB_NOMATCH;
}

/* Renderers stopped when idle (idle_stop_s, render.idle_stop): with 1 s, both are stopped (their
 * processes gone, their scratch directories removed) and stay so; a job starts one again and is
 * answered exactly as on a renderer that never stopped; the other stays stopped (the idle check
 * does not restart it); office conversion is still reported; stopping the family with stopped
 * renderers works (ASan at exit, the scratch removed: main). Polls with a generous deadline. */
static void idle_stop(const char *worker, GByteArray *pdf)
{
    struct cf_render_opts o = {.worker = worker, .scratch_dir = "/dev/shm", .processes = 2, .max_seconds = 240,
                               .idle_stop_s = 1};
    char *err = NULL;
    enum cf_status st = cf_render_start(&o, &err);
    CHECK_INT(st, CF_OK, "idle stop: the renderers start (%s)", err != NULL ? err : "");
    free(err);
    if (st != CF_OK)
        return;
    int first[8];
    CHECK_INT(cf_render_pids(first, 8), 2, "idle stop: both renderers are spawned at start, as always");
    bool office_on = cf_render_office();
    int pids[8];
    uint64_t deadline = cf_mono_ms() + 120000;
    while (!all_stopped(first, 2) && cf_mono_ms() < deadline)
        usleep(20000);
    CHECK(all_stopped(first, 2), "idle stop: after 1 s without a job, no renderer is up, both processes are "
                                 "reaped, their scratch directories removed");
    CHECK(cf_render_running(), "idle stop: the family still runs");
    size_t up, stopped, down;
    cf_render_states(&up, &stopped, &down);
    CHECK(up == 0 && stopped == 2 && down == 0, "idle stop: states: %zu up, %zu stopped, %zu down", up, stopped,
          down);
    CHECK(cf_render_office() == office_on, "idle stop: office conversion is reported as before (%d)", office_on);

    struct mem m = {pdf->data, pdf->len};
    struct cf_render_job j;
    job_on(&j, &m, CF_RENDER_OP_PAGE, CF_RENDER_PDF, 2, 480);
    CHECK_INT(run(&j), CF_OK, "idle stop: a job on a stopped family: status (%s)", j.why);
    CHECK_INT(j.result, CF_RENDER_OK, "idle stop: the page is rendered (%s)", j.why);
    int w = 0, h = 0;
    CHECK(j.out != NULL && webp_size(j.out, j.out_len, &w, &h) && w == 480 && (unsigned)h == j.out_height,
          "idle stop: a WebP 480 wide that libvips decodes (%d x %d)", w, h);
    CHECK(j.pid > 0 && j.pid != first[0] && j.pid != first[1], "idle stop: on a renderer started again (pid %ld)",
          (long)j.pid);
    size_t n = cf_render_pids(pids, 8);
    CHECK(n <= 1 && (n == 0 || pids[0] == j.pid),
          "idle stop: only the renderer the job needed was started (%zu up)", n);
    cf_render_states(&up, &stopped, &down);
    CHECK(up + stopped == 2 && stopped >= 1 && down == 0, "idle stop: states after the job: %zu up, %zu stopped, "
          "%zu down", up, stopped, down);
    /* Two at once on a stopped family: whichever threads take them start their renderers; both answered. */
    struct cf_render_job jobs[2];
    for (int i = 0; i < 2; i++)
        job_on(&jobs[i], &m, CF_RENDER_OP_PAGES, CF_RENDER_PDF, 0, 0);
    int again = j.pid;
    deadline = cf_mono_ms() + 120000;
    while (!all_stopped(&again, 1) && cf_mono_ms() < deadline)
        usleep(20000);
    CHECK(all_stopped(&again, 1), "idle stop: stopped again after the job");
    many_done = 0;
    for (int i = 0; i < 2; i++) {
        jobs[i].done = many_cb;
        cf_render_submit(&jobs[i]);
    }
    pthread_mutex_lock(&many_lock);
    while (many_done < 2)
        pthread_cond_wait(&many_cond, &many_lock);
    pthread_mutex_unlock(&many_lock);
    for (int i = 0; i < 2; i++)
        CHECK(jobs[i].status == CF_OK && jobs[i].result == CF_RENDER_OK && jobs[i].pages == 3,
              "idle stop: job %d of two at once counts 3 pages (%s)", i, jobs[i].why);
    cf_render_job_clear(&j);
    cf_render_stop();
    cf_render_states(&up, &stopped, &down);
    CHECK(up + stopped + down == 0, "idle stop: no renderer once the family is stopped");
}

int main(int argc, char **argv)
{
    (void)argc;
    if (VIPS_INIT(argv[0]) != 0)
        return 99;
    pure();
    const char *worker = getenv("COFFER_RENDER");
    if (worker == NULL) {
        printf("# COFFER_RENDER is not set\n");
        CHECK(false, "COFFER_RENDER names coffer-render");
        return tap_done();
    }
    /* A scratch directory on a disk is refused: office documents are written there in plaintext. */
    struct statfs sf;
    if (statfs("/var/tmp", &sf) == 0 && sf.f_type != TMPFS_MAGIC) {
        struct cf_render_opts bad = {.worker = worker, .scratch_dir = "/var/tmp"};
        char *why = NULL;
        CHECK(cf_render_check_opts(&bad, &why) == CF_EINVAL && why != NULL &&
                  strstr(why, "render.scratch_dir: /var/tmp is not a tmpfs") == why,
              "a scratch directory on a disk is refused (%s)", why != NULL ? why : "");
        free(why);
    }
    char dir[] = "/dev/shm/coffer-test-render-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 99;
    struct cf_render_opts o = {.worker = worker, .scratch_dir = "/dev/shm", .processes = 2, .max_seconds = 240};
    char *err = NULL;
    enum cf_status st = cf_render_start(&o, &err);
    CHECK_INT(st, CF_OK, "the renderers start (%s)", err != NULL ? err : "");
    free(err);
    if (st != CF_OK)
        return tap_done();
    int pids[8];
    CHECK_INT(cf_render_pids(pids, 8), 2, "two renderers are up");
    size_t up, stopped, down;
    cf_render_states(&up, &stopped, &down);
    CHECK(up == 2 && stopped == 0 && down == 0, "states: %zu up, %zu stopped, %zu down", up, stopped, down);
    confined(pids[0]);
    confined(pids[1]);

    GByteArray *pdf = make_pdf(3);
    documents(pdf);
    unsupported();
    watermarks(pdf);
    malformed(pdf);
    kill_mid_job(pdf);
    concurrent(pdf);
    bounded(pdf);
    killed_idle(pdf);
    office(dir);
    cf_render_stop();
    limits(worker, pdf);
    as_account(worker, pdf, dir);
    office_seat(worker, pdf, false);
    office_seat(worker, pdf, true);
    idle_stop(worker, pdf);
    g_byte_array_free(pdf, TRUE);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm) != 0)
        printf("# could not remove %s\n", dir);
    glob_t g;
    char pat[128];
    snprintf(pat, sizeof pat, "/dev/shm/coffer-render-%ld-*", (long)getpid());
    CHECK_INT(glob(pat, 0, NULL, &g), GLOB_NOMATCH, "cf_render_stop removed the scratch directory");
    globfree(&g);
    vips_shutdown();
    return tap_done();
}
