/*
 * renderer.c: the renderer process (the coffer-render executable, started by render.c with
 * posix_spawn before any key is loaded). It holds no key and no store handle, and once confined it
 * cannot open a socket, execute a program or touch files outside its scratch directory (the fonts
 * and libraries it reads are read-only): the parsers of hostile documents (libvips' loaders, poppler,
 * LibreOffice) run here or below, never in the process that holds every tenant's keys.
 *
 * Start-up: close every descriptor but the socket (3) → a session of its own → the service account
 * → the office converter forked (before anything is loaded or read: it is the only part that can
 * still execute a program, and it only ever runs LibreOffice on the one file name it knows) →
 * rlimits → libvips (no optional modules, untrusted loaders blocked, no cache, one thread, no orc),
 * Pango, fontconfig, warmed up by a rendering of our own → Landlock (scratch read-write; fonts and
 * configuration read-only) → seccomp allowlist → HELLO.
 * Then one job at a time: JOB → the input pulled with READ/DATA (whole, at most --max-input bytes:
 * every format here needs random access) → RESULT and the output in OUT messages.
 *
 * Outputs: WebP images (lossy, quality 85, no metadata: nothing of the input's EXIF goes through) of
 * the requested width (a tall image or page is at most CF_RENDER_MAX_ASPECT times as high, a taller
 * image is scaled to fit, a taller page cut), or the PDF that LibreOffice made (OP_CONVERT).
 *
 * The office converter: LibreOffice (soffice.bin, run directly, not through its oosplash launcher,
 * so that the process we watch is the one that works) converts <scratch>/office/in.<ext> to
 * in.pdf, with a fresh profile (-env:UserInstallation) in that directory, HOME and TMPDIR there too,
 * as its own process: no new privileges, no capabilities, rlimits (memory, CPU, file size), network
 * and mount namespaces of its own (no interface; /tmp is its directory's tmp/; through a user
 * namespace when not root), a seccomp filter that refuses every socket family but AF_UNIX and kills
 * on ptrace, mounts and the like, Landlock (writes only in its directory), killed at the deadline,
 * and the directory removed after each conversion.
 *
 * Sizes: a JOB is 432 bytes; inputs up to --max-input (64 MiB) are held whole in memory; a 1600 ×
 * 12800 page is at most 82 MB of pixels while it is drawn.
 */
#include <cairo.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <poll.h>
#include <poppler.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <vips/vips.h>
#include <vips/vector.h>

#include "base.h"
#include "confine.h"
#include "log.h"
#include "priv.h"
#include "render.h"
#include "render_proto.h"
#include "validate.h"

#define TEXT_LINES_PER_PAGE 60         /* a text page: this many source lines */
#define TEXT_COLUMNS 100               /* characters across a text page, line numbers included */
#define TEXT_FONT "DejaVu Sans Mono"
#define WM_FONT "DejaVu Sans Bold"
#define WEBP_QUALITY 85
#define OFFICE_AS ((rlim_t)4 << 30)    /* LibreOffice's address space */
#define OFFICE_RESTART 81              /* soffice.bin's exit code after it created a fresh profile: run again */

struct opts {
    const char *scratch;
    const char *soffice;       /* "" = no office conversion */
    unsigned max_seconds;
    unsigned max_pages;
    uint64_t max_input;
    uint64_t max_output;
    uint64_t max_pixels;
    uint64_t memory;
    const char *language;      /* BCP 47 tag given to Pango (zh-cn) */
    struct cf_confine_ids ids; /* --uid/--gid given: switch to them before reading anything */
};

static struct opts opt;
static int sock = CF_RENDER_FD;
static int office_fd = -1;     /* our end of the socket to the office converter; -1: none */
static char office_dir[512];   /* <scratch>/office */

/* A job's state. */
struct job {
    struct cf_render_msg_job m;
    uint8_t *in;               /* the whole input (g_malloc'ed), in_len bytes */
    size_t in_len;
    struct cf_render_msg_result r;
    uint8_t *out;              /* g_malloc'ed output */
    size_t out_len;
};

static void die(const char *what)
{
    cf_confine_die(what);
}

static void send_msg(const void *m, size_t n)
{
    if (send(sock, m, n, MSG_NOSIGNAL) != (ssize_t)n)
        _exit(0); /* the server went away */
}

static void fail(struct job *j, enum cf_render_result res, const char *why)
{
    j->r.result = res;
    snprintf(j->r.why, sizeof j->r.why, "%s", why);
    for (char *p = j->r.why; *p != '\0'; p++) /* printable ASCII only (the server checks) */
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
}

/* ---- input ---------------------------------------------------------------------------------- */

static bool data_ok(const void *m, size_t n, uint64_t id, uint64_t offset, size_t len)
{
    struct cf_render_msg_data d;
    if (n < sizeof d)
        return false;
    memcpy(&d, m, sizeof d);
    return d.h.magic == CF_RENDER_MAGIC && d.h.type == CF_RENDER_DATA && d.h.id == id && d.offset == offset &&
           d.len == len && len <= CF_RENDER_CHUNK && n == sizeof d + d.len;
}

/* The whole input into j->in; false (with the result set) when it is over the limit. */
static bool load_input(struct job *j)
{
    static uint8_t msg[sizeof(struct cf_render_msg_data) + CF_RENDER_CHUNK];
    uint64_t size = j->m.size;
    if (size > opt.max_input) {
        fail(j, CF_RENDER_TOO_LARGE, "the input is over the renderer's size limit");
        return false;
    }
    j->in = g_malloc(size + 1); /* + 1: text gets a NUL */
    j->in_len = (size_t)size;
    for (uint64_t off = 0; off < size;) {
        uint32_t len = size - off < CF_RENDER_CHUNK ? (uint32_t)(size - off) : CF_RENDER_CHUNK;
        struct cf_render_msg_read rq = {.h = {CF_RENDER_MAGIC, CF_RENDER_READ, j->m.h.id}, .offset = off, .len = len};
        send_msg(&rq, sizeof rq);
        ssize_t got = recv(sock, msg, sizeof msg, 0);
        if (got < 0 || !data_ok(msg, (size_t)got, j->m.h.id, off, len))
            _exit(4); /* the server broke the protocol */
        memcpy(j->in + off, msg + sizeof(struct cf_render_msg_data), len);
        off += len;
    }
    j->in[size] = 0;
    return true;
}

/* ---- pages as Cairo surfaces, and their encoding -------------------------------------------- */

static cairo_surface_t *new_page(int w, int h)
{
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return NULL;
    }
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_destroy(cr);
    return s;
}

/* RGB bytes (w × h × 3) into a new page. */
static cairo_surface_t *page_from_rgb(const uint8_t *rgb, int w, int h)
{
    cairo_surface_t *s = new_page(w, h);
    if (s == NULL)
        return NULL;
    cairo_surface_flush(s);
    uint8_t *px = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < h; y++) {
        uint32_t *row = (uint32_t *)(void *)(px + (size_t)y * (size_t)stride);
        const uint8_t *in = rgb + (size_t)y * (size_t)w * 3;
        for (int x = 0; x < w; x++)
            row[x] = (uint32_t)in[3 * x] << 16 | (uint32_t)in[3 * x + 1] << 8 | in[3 * x + 2];
    }
    cairo_surface_mark_dirty(s);
    return s;
}

/* Encodes a page as WebP into j->out; the result is set. */
static void encode(struct job *j, cairo_surface_t *s)
{
    cairo_surface_flush(s);
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    int stride = cairo_image_surface_get_stride(s);
    const uint8_t *px = cairo_image_surface_get_data(s);
    size_t n = (size_t)w * (size_t)h * 3;
    uint8_t *rgb = g_malloc(n);
    for (int y = 0; y < h; y++) {
        const uint32_t *row = (const uint32_t *)(const void *)(px + (size_t)y * (size_t)stride);
        uint8_t *o = rgb + (size_t)y * (size_t)w * 3;
        for (int x = 0; x < w; x++) {
            o[3 * x] = (uint8_t)(row[x] >> 16);
            o[3 * x + 1] = (uint8_t)(row[x] >> 8);
            o[3 * x + 2] = (uint8_t)row[x];
        }
    }
    VipsImage *img = vips_image_new_from_memory(rgb, n, w, h, 3, VIPS_FORMAT_UCHAR);
    void *buf = NULL;
    size_t len = 0;
    if (img == NULL || vips_webpsave_buffer(img, &buf, &len, "Q", WEBP_QUALITY, "strip", TRUE, NULL) != 0) {
        fail(j, CF_RENDER_FAILED, "the WebP encoder failed");
    } else if (len > opt.max_output) {
        fail(j, CF_RENDER_TOO_LARGE, "the image is over the output limit");
        g_free(buf);
    } else {
        j->out = buf;
        j->out_len = len;
        j->r.result = CF_RENDER_OK;
        j->r.width = (uint32_t)w;
        j->r.height = (uint32_t)h;
    }
    if (img != NULL)
        g_object_unref(img);
    g_free(rgb);
    vips_error_clear();
}

/* ---- the watermark -------------------------------------------------------------------------- */

/* A Pango layout on cr in the configured language (render.text_language, zh-cn by default: Han
 * characters in their Simplified Chinese forms, Noto Sans CJK SC; zh-tw, ja or ko pick those faces).
 * In the C locale Pango gives fontconfig no language, and fontconfig picks the Japanese face first,
 * whose forms of many shared characters differ (今, 骨, 海, ...). Latin text keeps its own font. */
static PangoLayout *new_layout(cairo_t *cr)
{
    PangoLayout *layout = pango_cairo_create_layout(cr);
    pango_context_set_language(pango_layout_get_context(layout), pango_language_from_string(opt.language));
    pango_layout_context_changed(layout);
    return layout;
}

/* The watermark lines tiled diagonally over the page, in grey at the given opacity: every part of
 * the page is crossed by the text, so that a crop still names the viewer. */
static void watermark(cairo_surface_t *s, const struct cf_render_msg_job *m)
{
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    GString *text = g_string_new(NULL);
    for (uint32_t i = 0; i < m->wm_lines; i++) {
        if (i > 0)
            g_string_append_c(text, '\n');
        g_string_append(text, m->wm[i]);
    }
    cairo_t *cr = cairo_create(s);
    PangoLayout *layout = new_layout(cr);
    PangoFontDescription *font = pango_font_description_from_string(WM_FONT);
    pango_font_description_set_absolute_size(font, (double)w / 36.0 * PANGO_SCALE);
    pango_layout_set_font_description(layout, font);
    pango_layout_set_alignment(layout, PANGO_ALIGN_CENTER);
    pango_layout_set_text(layout, text->str, -1);
    int lw, lh;
    pango_layout_get_pixel_size(layout, &lw, &lh);
    double stepx = lw + w / 6.0, stepy = lh + w / 8.0;
    double diag = sqrt((double)w * w + (double)h * h);
    cairo_translate(cr, w / 2.0, h / 2.0);
    cairo_rotate(cr, -M_PI / 6); /* 30° up to the right */
    cairo_set_source_rgba(cr, 0.45, 0.45, 0.45, m->wm_opacity / 100.0);
    int row = 0;
    for (double y = -diag / 2 - stepy; y < diag / 2 + stepy; y += stepy, row++)
        for (double x = -diag / 2 - stepx + (row % 2) * stepx / 2; x < diag / 2 + stepx; x += stepx) {
            cairo_move_to(cr, x, y);
            pango_cairo_show_layout(cr, layout);
        }
    pango_font_description_free(font);
    g_object_unref(layout);
    cairo_destroy(cr);
    g_string_free(text, TRUE);
}

/* ---- images (libvips) ----------------------------------------------------------------------- */

/* The formats we let near libvips, recognised here from their signatures, each opened with its
 * own loader: libvips' own format detection would also ask its other loaders (ImageMagick among
 * them, a module Debian ships) whether they know the bytes. vips_block_untrusted_set blocks those
 * loaders too. */
enum image_format { IMG_NONE, IMG_JPEG, IMG_PNG, IMG_WEBP, IMG_GIF, IMG_TIFF };

static enum image_format sniff_image(const uint8_t *b, size_t n)
{
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return IMG_JPEG;
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
        return IMG_PNG;
    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return IMG_WEBP;
    if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0))
        return IMG_GIF;
    if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0))
        return IMG_TIFF;
    return IMG_NONE;
}

/* The image's header only (libvips reads no pixel yet): format, dimensions, and the pixel limit
 * checked before anything is decoded. The image (sequential access, failing on errors) or NULL with
 * the result set. */
static VipsImage *image_header(struct job *j, enum image_format only)
{
    enum image_format f = sniff_image(j->in, j->in_len);
    VipsImage *img = NULL;
    int rc = -1;
    if (f == IMG_NONE || (only != IMG_NONE && f != only)) {
        fail(j, f == IMG_NONE ? CF_RENDER_MALFORMED : CF_RENDER_UNSUPPORTED,
             f == IMG_NONE ? "not an image format that is rendered" : "not the image format expected");
        return NULL;
    }
    const void *b = j->in;
    size_t n = j->in_len;
    VipsAccess seq = VIPS_ACCESS_SEQUENTIAL;
    VipsFailOn on = VIPS_FAIL_ON_ERROR;
    switch (f) {
    case IMG_JPEG: rc = vips_jpegload_buffer((void *)b, n, &img, "access", seq, "fail_on", on, NULL); break;
    case IMG_PNG: rc = vips_pngload_buffer((void *)b, n, &img, "access", seq, "fail_on", on, NULL); break;
    case IMG_WEBP: rc = vips_webpload_buffer((void *)b, n, &img, "access", seq, "fail_on", on, NULL); break;
    case IMG_GIF: rc = vips_gifload_buffer((void *)b, n, &img, "access", seq, "fail_on", on, NULL); break;
    case IMG_TIFF: rc = vips_tiffload_buffer((void *)b, n, &img, "access", seq, "fail_on", on, NULL); break;
    case IMG_NONE: break;
    }
    if (rc != 0 || img == NULL) {
        fail(j, CF_RENDER_MALFORMED, "the image header does not parse");
        vips_error_clear();
        return NULL;
    }
    uint64_t w = (uint64_t)vips_image_get_width(img), h = (uint64_t)vips_image_get_height(img);
    if (w == 0 || h == 0 || w * h > opt.max_pixels) {
        fail(j, CF_RENDER_TOO_LARGE, "the image declares more pixels than the limit (a decompression bomb?)");
        g_object_unref(img);
        return NULL;
    }
    j->r.pages = 1;
    return img;
}

/* A decoded image as 8-bit sRGB on white, into a new page. */
static cairo_surface_t *image_to_page(struct job *j, VipsImage *in)
{
    VipsImage *t[4] = {NULL, NULL, NULL, NULL};
    cairo_surface_t *s = NULL;
    VipsImage *cur = in;
    if (vips_image_hasalpha(cur)) {
        VipsArrayDouble *white = vips_array_double_newv(1, 255.0);
        int rc = vips_flatten(cur, &t[0], "background", white, NULL);
        vips_area_unref(VIPS_AREA(white));
        if (rc != 0)
            goto done;
        cur = t[0];
    }
    if (vips_colourspace(cur, &t[1], VIPS_INTERPRETATION_sRGB, NULL) != 0)
        goto done;
    cur = t[1];
    if (vips_cast_uchar(cur, &t[2], NULL) != 0)
        goto done;
    cur = t[2];
    if (vips_image_get_bands(cur) > 3) {
        if (vips_extract_band(cur, &t[3], 0, "n", 3, NULL) != 0)
            goto done;
        cur = t[3];
    }
    size_t n = 0;
    uint8_t *rgb = vips_image_write_to_memory(cur, &n);
    int w = vips_image_get_width(cur), h = vips_image_get_height(cur);
    if (rgb != NULL && vips_image_get_bands(cur) == 3 && n == (size_t)w * (size_t)h * 3)
        s = page_from_rgb(rgb, w, h);
    g_free(rgb);
done:
    if (s == NULL) {
        cf_log_debug("an image did not decode: %s", vips_error_buffer());
        fail(j, CF_RENDER_MALFORMED, "the image does not decode");
    }
    for (int i = 0; i < 4; i++)
        if (t[i] != NULL)
            g_object_unref(t[i]);
    vips_error_clear();
    return s;
}

static cairo_surface_t *render_image(struct job *j)
{
    VipsImage *img = image_header(j, IMG_NONE);
    if (img == NULL || j->m.op == CF_RENDER_OP_PAGES) {
        if (img != NULL)
            g_object_unref(img);
        return NULL;
    }
    if (j->m.page != 1) {
        fail(j, CF_RENDER_NO_PAGE, "an image has one page");
        g_object_unref(img);
        return NULL;
    }
    /* The requested width, unless the image is more than CF_RENDER_MAX_ASPECT times as high: then it
     * is scaled to fit that height. Decoded in one sequential pass, within the pixel limit. */
    int W = (int)j->m.width, H = (int)j->m.width * CF_RENDER_MAX_ASPECT;
    VipsImage *thumb = NULL;
    cairo_surface_t *s = NULL;
    if (vips_thumbnail_image(img, &thumb, W, "height", H, "size", VIPS_SIZE_BOTH, NULL) != 0) {
        fail(j, CF_RENDER_MALFORMED, "the image does not decode");
        vips_error_clear();
    } else {
        s = image_to_page(j, thumb);
        g_object_unref(thumb);
    }
    g_object_unref(img);
    return s;
}

/* OP_COMPOSE's input: a WebP page of ours (from the server's cache), decoded again here. */
static cairo_surface_t *load_page(struct job *j)
{
    VipsImage *hdr = image_header(j, IMG_WEBP);
    if (hdr == NULL)
        return NULL;
    cairo_surface_t *s = NULL;
    if ((unsigned)vips_image_get_width(hdr) > CF_RENDER_WIDTH_MAX ||
        (unsigned)vips_image_get_height(hdr) > CF_RENDER_WIDTH_MAX * CF_RENDER_MAX_ASPECT)
        fail(j, CF_RENDER_TOO_LARGE, "not a page this renderer made");
    else
        s = image_to_page(j, hdr);
    g_object_unref(hdr);
    return s;
}

/* ---- PDF (poppler) -------------------------------------------------------------------------- */

static bool pdf_sniff(const uint8_t *b, size_t n)
{
    size_t lim = n < 1024 ? n : 1024; /* the header may follow some junk, as readers allow */
    for (size_t i = 0; i + 5 <= lim; i++)
        if (memcmp(b + i, "%PDF-", 5) == 0)
            return true;
    return false;
}

/* A PDF in memory: the page count (capped at max_pages), and for OP_PAGE the page. */
static cairo_surface_t *render_pdf(struct job *j, const uint8_t *pdf, size_t len)
{
    if (!pdf_sniff(pdf, len)) {
        fail(j, CF_RENDER_MALFORMED, "not a PDF");
        return NULL;
    }
    GError *err = NULL;
    GBytes *bytes = g_bytes_new_static(pdf, len);
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &err);
    cairo_surface_t *s = NULL;
    if (doc == NULL) {
        bool locked = err != NULL && err->domain == POPPLER_ERROR && err->code == POPPLER_ERROR_ENCRYPTED;
        fail(j, locked ? CF_RENDER_UNSUPPORTED : CF_RENDER_MALFORMED,
             locked ? "the PDF is encrypted" : "the PDF does not parse");
        goto out;
    }
    int n = poppler_document_get_n_pages(doc);
    if (n <= 0) {
        fail(j, CF_RENDER_MALFORMED, "the PDF has no page");
        goto out;
    }
    j->r.pages = (uint32_t)n > opt.max_pages ? opt.max_pages : (uint32_t)n;
    if (j->m.op != CF_RENDER_OP_PAGE)
        goto out;
    if (j->m.page > j->r.pages) {
        fail(j, CF_RENDER_NO_PAGE, "no such page");
        goto out;
    }
    PopplerPage *page = poppler_document_get_page(doc, (int)j->m.page - 1);
    double pw = 0, ph = 0;
    if (page != NULL)
        poppler_page_get_size(page, &pw, &ph);
    if (page == NULL || !(pw >= 1 && pw <= 1e6 && ph >= 1 && ph <= 1e6)) {
        fail(j, CF_RENDER_MALFORMED, "the page has no usable size");
        if (page != NULL)
            g_object_unref(page);
        goto out;
    }
    double scale = j->m.width / pw;
    double hh = ceil(ph * scale);
    int H = hh > (double)j->m.width * CF_RENDER_MAX_ASPECT ? (int)j->m.width * CF_RENDER_MAX_ASPECT : (int)hh;
    s = new_page((int)j->m.width, H < 1 ? 1 : H);
    if (s == NULL) {
        fail(j, CF_RENDER_FAILED, "out of memory");
    } else {
        cairo_t *cr = cairo_create(s);
        cairo_scale(cr, scale, scale);
        poppler_page_render(page, cr);
        cairo_destroy(cr);
    }
    g_object_unref(page);
out:
    if (doc != NULL)
        g_object_unref(doc);
    g_bytes_unref(bytes);
    if (err != NULL)
        g_error_free(err);
    return s;
}

/* ---- text (Pango) --------------------------------------------------------------------------- */

/* The text's lines: valid UTF-8 (invalid bytes become U+FFFD), split at \n, a trailing \r dropped. */
static char **text_lines(struct job *j, unsigned *count)
{
    char *valid = g_utf8_make_valid((const char *)j->in, (gssize)j->in_len); /* NULs become U+FFFD too */
    char **lines = g_strsplit(valid, "\n", -1);
    g_free(valid);
    unsigned n = g_strv_length(lines);
    if (n > 1 && lines[n - 1][0] == '\0') /* a final newline ends the last line; it opens none */
        n--;
    for (unsigned i = 0; i < n; i++) {
        size_t l = strlen(lines[i]);
        if (l > 0 && lines[i][l - 1] == '\r')
            lines[i][l - 1] = '\0';
    }
    *count = n == 0 ? 1 : n;
    return lines;
}

/* A text page's rows: a source line longer than TEXT_TEXT_CELLS display cells wraps onto more rows
 * (CJK and other wide characters take two cells, combining marks none, a tab runs to the next
 * multiple of 8), so that nothing a viewer may read is cut off. The wrap counts cells, not pixels:
 * every width gets the same rows and so the same page count. */
#define TEXT_NUM_CELLS 7                               /* "99999  " */
#define TEXT_TEXT_CELLS (TEXT_COLUMNS - TEXT_NUM_CELLS) /* cells of text per row */
struct text_row {
    const char *start; /* into the line */
    unsigned len;      /* bytes */
    unsigned line;     /* 1-based source line number; 0 on a continuation row */
};

static unsigned cell_width(gunichar c, unsigned col)
{
    if (c == '\t')
        return 8 - col % 8;
    if (g_unichar_iszerowidth(c))
        return 0;
    return g_unichar_iswide(c) ? 2 : 1;
}

/* The rows of lines[0..nlines), at most max_rows of them (malloc'ed; *count set). */
static struct text_row *text_rows(char **lines, unsigned nlines, unsigned max_rows, unsigned *count)
{
    size_t cap = 64, n = 0;
    struct text_row *rows = g_new(struct text_row, cap);
    for (unsigned i = 0; i < nlines && n < max_rows; i++) {
        const char *l = lines[i] != NULL ? lines[i] : "", *row = l;
        unsigned col = 0, line = i + 1;
        for (const char *p = l;; p = g_utf8_next_char(p)) {
            gunichar c = *p != '\0' ? g_utf8_get_char(p) : 0;
            unsigned w = c != 0 ? cell_width(c, col) : 0;
            if (c == 0 || (col + w > TEXT_TEXT_CELLS && p > row)) {
                if (n == cap) {
                    cap *= 2;
                    rows = g_renew(struct text_row, rows, cap);
                }
                rows[n++] = (struct text_row){row, (unsigned)(p - row), line};
                line = 0;
                if (c == 0 || n == max_rows)
                    break;
                row = p;
                col = 0;
                w = cell_width(c, 0);
            }
            col += w;
        }
    }
    *count = n == 0 ? 1 : (unsigned)n;
    if (n == 0)
        rows[0] = (struct text_row){"", 0, 1};
    return rows;
}

static cairo_surface_t *render_text(struct job *j)
{
    unsigned nlines, nrows;
    char **lines = text_lines(j, &nlines);
    struct text_row *rows = text_rows(lines, nlines, opt.max_pages * TEXT_LINES_PER_PAGE, &nrows);
    unsigned pages = (nrows + TEXT_LINES_PER_PAGE - 1) / TEXT_LINES_PER_PAGE;
    cairo_surface_t *s = NULL;
    j->r.pages = pages > opt.max_pages ? opt.max_pages : pages;
    if (j->m.op != CF_RENDER_OP_PAGE)
        goto out;
    if (j->m.page > j->r.pages) {
        fail(j, CF_RENDER_NO_PAGE, "no such page");
        goto out;
    }
    double W = j->m.width, margin = W * 0.04, px = (W - 2 * margin) / (TEXT_COLUMNS * 0.602), lh = px * 1.3;
    s = new_page((int)W, (int)ceil(2 * margin + TEXT_LINES_PER_PAGE * lh));
    if (s == NULL) {
        fail(j, CF_RENDER_FAILED, "out of memory");
        goto out;
    }
    cairo_t *cr = cairo_create(s);
    PangoLayout *layout = new_layout(cr);
    PangoFontDescription *font = pango_font_description_from_string(TEXT_FONT);
    pango_font_description_set_absolute_size(font, px * PANGO_SCALE);
    pango_layout_set_font_description(layout, font);
    pango_layout_set_single_paragraph_mode(layout, TRUE);
    double numw = px * 0.602 * TEXT_NUM_CELLS;
    unsigned first = (j->m.page - 1) * TEXT_LINES_PER_PAGE;
    for (unsigned i = 0; i < TEXT_LINES_PER_PAGE && first + i < nrows; i++) {
        const struct text_row *row = &rows[first + i];
        double y = margin + i * lh;
        if (row->line != 0) { /* a continuation row has no number */
            char num[16];
            snprintf(num, sizeof num, "%5u", row->line);
            pango_layout_set_width(layout, -1);
            pango_layout_set_ellipsize(layout, PANGO_ELLIPSIZE_NONE);
            pango_layout_set_text(layout, num, -1);
            cairo_set_source_rgb(cr, 0.55, 0.55, 0.55);
            cairo_move_to(cr, margin, y);
            pango_cairo_show_layout(cr, layout);
        }
        if (row->len == 0)
            continue;
        /* The row already fits its cells; the ellipsis only guards a font wider than its cells. */
        pango_layout_set_width(layout, (int)((W - 2 * margin - numw) * PANGO_SCALE));
        pango_layout_set_ellipsize(layout, PANGO_ELLIPSIZE_END);
        pango_layout_set_text(layout, row->start, (int)row->len);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        cairo_move_to(cr, margin + numw, y);
        pango_cairo_show_layout(cr, layout);
    }
    pango_font_description_free(font);
    g_object_unref(layout);
    cairo_destroy(cr);
out:
    g_free(rows);
    g_strfreev(lines);
    return s;
}

/* ---- office documents (LibreOffice, in the office converter) -------------------------------- */

struct office_req {
    uint32_t kind;     /* enum cf_render_kind, an office one */
};
struct office_rep {
    uint32_t result;   /* enum cf_render_result: OK (in.pdf written), TIMEOUT or FAILED */
};

static const char *office_ext(uint32_t kind)
{
    switch (kind) {
    case CF_RENDER_DOCX: return "docx";
    case CF_RENDER_XLSX: return "xlsx";
    case CF_RENDER_PPTX: return "pptx";
    case CF_RENDER_ODT: return "odt";
    case CF_RENDER_ODS: return "ods";
    case CF_RENDER_ODP: return "odp";
    default: return NULL;
    }
}

static bool write_file(const char *path, const uint8_t *b, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, b + off, n - off);
        if (w <= 0) {
            close(fd);
            return false;
        }
        off += (size_t)w;
    }
    return close(fd) == 0;
}

/* The whole file, at most max bytes, g_malloc'ed; NULL if missing or larger. */
static uint8_t *read_file(const char *path, size_t max, size_t *len, bool *too_large)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    *too_large = false;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        *too_large = fstat(fd, &st) == 0 && (uint64_t)st.st_size > max;
        close(fd);
        return NULL;
    }
    uint8_t *b = g_malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != (size_t)st.st_size) {
        g_free(b);
        return NULL;
    }
    *len = got;
    return b;
}

/* In the office converter's child, just before exec: no network (a namespace where the kernel gives
 * one; sockets other than AF_UNIX refused by seccomp in any case), writes only in the office
 * directory (Landlock), limits. Failures here are reported by exit code 120 + step. */
static void office_confine(void)
{
    struct rlimit cpu = {opt.max_seconds + 5, opt.max_seconds + 5},
                  fsz = {(rlim_t)opt.max_output * 2, (rlim_t)opt.max_output * 2}, zero = {0, 0},
                  files = {256, 256};
    setrlimit(RLIMIT_CPU, &cpu);
    setrlimit(RLIMIT_FSIZE, &fsz);
    setrlimit(RLIMIT_CORE, &zero);
    setrlimit(RLIMIT_NOFILE, &files);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        _exit(121);
    /* Namespaces of its own: a network namespace (no interface but a down loopback) and a mount
     * namespace whose /tmp is the office directory's tmp/ (LibreOffice puts its single-instance
     * pipe in /tmp, whatever TMPDIR says). As root directly; otherwise inside a user namespace that
     * maps only our own ids. Where the kernel allows neither, /tmp gets a Landlock rule instead
     * (sockets and removals there) and the seccomp filter below still refuses every network socket. */
    uid_t uid = getuid();
    gid_t gid = getgid();
    bool ns = unshare(CLONE_NEWNS | CLONE_NEWNET) == 0;
    if (!ns && unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) == 0) {
        char map[64];
        int fd;
        if ((fd = open("/proc/self/setgroups", O_WRONLY)) >= 0) {
            (void)!write(fd, "deny", 4);
            close(fd);
        }
        int n = snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
        if ((fd = open("/proc/self/uid_map", O_WRONLY)) >= 0) {
            (void)!write(fd, map, (size_t)n);
            close(fd);
        }
        n = snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
        if ((fd = open("/proc/self/gid_map", O_WRONLY)) >= 0) {
            (void)!write(fd, map, (size_t)n);
            close(fd);
        }
        ns = true;
    }
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/tmp", office_dir);
    bool private_tmp = ns && (mkdir(tmp, 0700) == 0 || errno == EEXIST) &&
                       mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
                       mount(tmp, "/tmp", NULL, MS_BIND, NULL) == 0;
    /* No capabilities, and none to regain at exec (a server run as `user: root` makes this root):
     * without CAP_SYS_PTRACE and CAP_DAC_OVERRIDE it cannot read the server's memory or files
     * through /proc, nor anything Landlock lets it read that root alone could. */
    for (int c = 0; c <= 63; c++)
        prctl(PR_CAPBSET_DROP, c, 0, 0, 0); /* EINVAL past the last capability, EPERM when not root */
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    struct __user_cap_header_struct caph = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct capd[2];
    memset(capd, 0, sizeof capd);
    if (syscall(SYS_capset, &caph, capd) != 0)
        _exit(125);
    /* Landlock: read and execute the system, write only the office directory. */
    const uint64_t rd = cf_landlock_read(), all = cf_landlock_all();
    char soffice_dir[512];
    snprintf(soffice_dir, sizeof soffice_dir, "%s", opt.soffice);
    char *slash = strrchr(soffice_dir, '/');
    if (slash != NULL && slash != soffice_dir)
        *slash = '\0';
    const struct cf_landlock_rule rules[] = {
        {"/usr", rd | LANDLOCK_ACCESS_FS_EXECUTE},
        {soffice_dir, rd | LANDLOCK_ACCESS_FS_EXECUTE}, /* where the configured soffice.bin lives */
        {"/etc", rd},
        {"/proc", rd},
        {"/sys", rd},
        {"/dev", rd | LANDLOCK_ACCESS_FS_WRITE_FILE}, /* /dev/null, /dev/urandom: no device can be made */
        {"/var/cache/fontconfig", rd},
        {"/var/lib/libreoffice", rd},   /* Debian's registry of bundled extensions */
        {"/var/spool/libreoffice", rd}, /* ... and the shared extensions' cache */
        /* /tmp: our private one (the office directory's tmp/), or else only for the pipe. */
        {"/tmp", private_tmp ? all & ~(uint64_t)(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
                                                   LANDLOCK_ACCESS_FS_MAKE_BLOCK)
                             : rd | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_REMOVE_FILE},
        {office_dir, all & ~(uint64_t)(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
                                         LANDLOCK_ACCESS_FS_MAKE_BLOCK)},
    };
    const char *why = NULL;
    if (cf_confine_landlock(rules, sizeof rules / sizeof rules[0], true, &why) < 0)
        _exit(122); /* a rule or the restriction refused */
    /* seccomp: allow by default (LibreOffice is a large program), but no socket other than AF_UNIX
     * (EACCES), and the process-level escapes kill it. */
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
    if (f == NULL)
        _exit(124);
    static const int kill[] = {SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev),
                               SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(unshare), SCMP_SYS(setns),
                               SCMP_SYS(pivot_root), SCMP_SYS(chroot), SCMP_SYS(bpf), SCMP_SYS(keyctl),
                               SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(init_module),
                               SCMP_SYS(finit_module), SCMP_SYS(delete_module), SCMP_SYS(kexec_load),
                               SCMP_SYS(perf_event_open), SCMP_SYS(userfaultfd), SCMP_SYS(io_uring_setup)};
    for (size_t i = 0; i < sizeof kill / sizeof kill[0]; i++)
        if (seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, kill[i], 0) != 0)
            _exit(124);
    if (seccomp_rule_add(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX)) != 0 ||
        seccomp_rule_add(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socketpair), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX)) != 0 ||
        seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, TIOCSTI)) != 0 ||
        seccomp_load(f) != 0)
        _exit(124);
    seccomp_release(f);
}

/* One LibreOffice run; its exit status, or -1 if it was killed at the deadline. */
static int office_run(const char *ext, uint64_t deadline_ms)
{
    char in[600], profile[600], home[600], tmp[600];
    snprintf(in, sizeof in, "%s/in.%s", office_dir, ext);
    snprintf(profile, sizeof profile, "-env:UserInstallation=file://%s/profile", office_dir);
    snprintf(home, sizeof home, "HOME=%s", office_dir);
    snprintf(tmp, sizeof tmp, "TMPDIR=%s", office_dir);
    char *argv[] = {(char *)opt.soffice, (char *)"--headless", (char *)"--invisible", (char *)"--nologo",
                    (char *)"--norestore", (char *)"--nolockcheck", (char *)"--nodefault",
                    (char *)"--nofirststartwizard",
                    profile, (char *)"--convert-to", (char *)"pdf", (char *)"--outdir", office_dir, in, NULL};
    char *env[] = {home, tmp, (char *)"PATH=/usr/bin:/bin", (char *)"LANG=C.UTF-8", (char *)"SAL_USE_VCLPLUGIN=svp",
                   NULL};
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2); /* LibreOffice's messages are not ours to log */
        close_range(3, ~0u, 0);
        office_confine();
        /* The address space limit last: under ASan this process has terabytes reserved, and any
         * allocation after the limit would fail; LibreOffice starts with it. */
        struct rlimit as = {OFFICE_AS, OFFICE_AS};
        setrlimit(RLIMIT_AS, &as);
        execve(opt.soffice, argv, env);
        _exit(127);
    }
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    for (;;) {
        int status;
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid) {
            if (pfd >= 0)
                close(pfd);
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        if (now >= deadline_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            if (pfd >= 0)
                close(pfd);
            return -1;
        }
        /* Wait for its exit (pidfd), the renderer's death (our socket), or the deadline. */
        struct pollfd p[2] = {{.fd = pfd, .events = POLLIN}, {.fd = office_fd, .events = POLLIN}};
        uint64_t left = deadline_ms - now;
        int rc = poll(p, 2, (int)(left > 200 ? 200 : left));
        if (rc > 0 && (p[1].revents & (POLLHUP | POLLERR | POLLIN)) != 0) {
            char b;
            if (recv(office_fd, &b, 1, MSG_DONTWAIT | MSG_PEEK) == 0) { /* the renderer is gone */
                kill(pid, SIGKILL);
                _exit(0);
            }
        }
    }
}

/* The office converter's loop (a process of its own, forked before the renderer loads anything). */
static void office_main(int fd)
{
    office_fd = fd;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() == 1)
        _exit(0);
    cf_log_set_process("render-office");
    for (;;) {
        struct office_req rq;
        struct office_rep rep = {CF_RENDER_FAILED};
        ssize_t n = recv(fd, &rq, sizeof rq, 0);
        if (n == 0)
            _exit(0);
        const char *ext = n == (ssize_t)sizeof rq ? office_ext(rq.kind) : NULL;
        if (ext == NULL)
            _exit(4);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t deadline = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + opt.max_seconds * 1000ull;
        int rc = office_run(ext, deadline);
        if (rc == OFFICE_RESTART) /* a fresh profile was made: the conversion itself is the second run */
            rc = office_run(ext, deadline);
        if (rc == 0)
            rep.result = CF_RENDER_OK;
        else if (rc < 0)
            rep.result = CF_RENDER_TIMEOUT;
        else
            cf_log_warn("LibreOffice exited with status %d", rc);
        if (send(fd, &rep, sizeof rep, MSG_NOSIGNAL) != (ssize_t)sizeof rep)
            _exit(0);
    }
}

/* Converts the input (an office document) to PDF: g_malloc'ed, at most max bytes; NULL with the
 * result set. The document exists only in the office directory on tmpfs, only during the call. */
static uint8_t *office_convert(struct job *j, size_t max, size_t *len)
{
    char in[600], out[600];
    const char *ext = office_ext(j->m.kind);
    uint8_t *pdf = NULL;
    if (office_fd < 0) {
        fail(j, CF_RENDER_UNSUPPORTED, "office conversion is off");
        return NULL;
    }
    cf_rm_tree(office_dir);
    if (mkdir(office_dir, 0700) != 0) {
        fail(j, CF_RENDER_FAILED, "cannot create the office directory");
        return NULL;
    }
    snprintf(in, sizeof in, "%s/in.%s", office_dir, ext);
    snprintf(out, sizeof out, "%s/in.pdf", office_dir);
    if (!write_file(in, j->in, j->in_len)) {
        fail(j, CF_RENDER_FAILED, "cannot write the office document to the scratch directory");
        goto out;
    }
    struct office_req rq = {j->m.kind};
    struct office_rep rep;
    if (send(office_fd, &rq, sizeof rq, MSG_NOSIGNAL) != (ssize_t)sizeof rq ||
        recv(office_fd, &rep, sizeof rep, 0) != (ssize_t)sizeof rep)
        die("the office converter is gone");
    if (rep.result == CF_RENDER_TIMEOUT) {
        fail(j, CF_RENDER_TIMEOUT, "LibreOffice passed its deadline");
        goto out;
    }
    bool too_large = false;
    if (rep.result != CF_RENDER_OK || (pdf = read_file(out, max, len, &too_large)) == NULL) {
        fail(j, too_large ? CF_RENDER_TOO_LARGE : CF_RENDER_MALFORMED,
             too_large ? "the converted document is over the size limit"
                       : "LibreOffice could not convert the document");
        goto out;
    }
out:
    cf_rm_tree(office_dir); /* the plaintext, the PDF and the profile */
    return pdf;
}

/* Forks the office converter: before anything is loaded, while this process is single-threaded. */
static void office_start(void)
{
    int sv[2];
    if (opt.soffice[0] == '\0' || access(opt.soffice, X_OK) != 0) {
        if (opt.soffice[0] != '\0')
            cf_log_warn("%s is not there: office documents get no preview", opt.soffice);
        return;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        die("socketpair failed");
    pid_t pid = fork();
    if (pid < 0)
        die("cannot fork the office converter");
    if (pid == 0) {
        close(sv[0]);
        close(sock);
        office_main(sv[1]);
        _exit(0);
    }
    close(sv[1]);
    office_fd = sv[0];
}

/* ---- jobs ----------------------------------------------------------------------------------- */

static void run_job(struct job *j)
{
    cairo_surface_t *s = NULL;
    j->r = (struct cf_render_msg_result){.h = {CF_RENDER_MAGIC, CF_RENDER_RESULT, j->m.h.id}};
    fail(j, CF_RENDER_FAILED, "");
    if (!load_input(j))
        return;
#ifdef CF_FAULT_INJECTION
    /* Fault-injection builds only (never a release build): a text that starts with this line makes
     * the renderer hang, so that tests/unit/test_render.c can prove the server's deadline. */
    static const char hang[] = "COFFER-TEST-RENDERER-HANG\n";
    if (j->m.kind == CF_RENDER_TEXT && j->in_len >= sizeof hang - 1 && memcmp(j->in, hang, sizeof hang - 1) == 0)
        for (;;)
            sleep(3600);
    /* ... and one that starts with this line hangs only when page 3 or a later one is drawn: its page
     * count and first pages (what an upload prepares) come back, so that
     * tests/integration/pages.test.mjs can hold renderers busy with requests of its own. */
    static const char hang_late[] = "COFFER-TEST-RENDERER-HANG-LATE-PAGES\n";
    if (j->m.kind == CF_RENDER_TEXT && j->m.op == CF_RENDER_OP_PAGE && j->m.page >= 3 &&
        j->in_len >= sizeof hang_late - 1 && memcmp(j->in, hang_late, sizeof hang_late - 1) == 0)
        for (;;)
            sleep(3600);
#endif
    switch (j->m.kind) {
    case CF_RENDER_IMAGE:
        s = render_image(j);
        break;
    case CF_RENDER_PDF:
        s = render_pdf(j, j->in, j->in_len);
        break;
    case CF_RENDER_TEXT:
        s = render_text(j);
        break;
    case CF_RENDER_WEBP:
        s = load_page(j);
        break;
    default: { /* office */
        size_t len = 0;
        uint8_t *pdf = office_convert(j, j->m.op == CF_RENDER_OP_CONVERT ? opt.max_output : opt.max_input, &len);
        if (pdf == NULL)
            break;
        if (j->m.op == CF_RENDER_OP_CONVERT) {
            j->out = pdf;
            j->out_len = len;
            fail(j, CF_RENDER_OK, "");
            return;
        }
        s = render_pdf(j, pdf, len);
        g_free(pdf);
        break;
    }
    }
    if (j->m.op == CF_RENDER_OP_PAGES && j->r.pages > 0 && s == NULL && j->r.why[0] == '\0') {
        j->r.result = CF_RENDER_OK;
        return;
    }
    if (s == NULL)
        return;
    if (j->m.wm_lines > 0)
        watermark(s, &j->m);
    fail(j, CF_RENDER_FAILED, "");
    encode(j, s);
    cairo_surface_destroy(s);
}

static void answer(struct job *j)
{
    if (j->r.result != CF_RENDER_OK) {
        g_free(j->out);
        j->out = NULL;
        j->out_len = 0;
    }
    j->r.out_len = j->out_len;
    send_msg(&j->r, sizeof j->r);
    static uint8_t msg[sizeof(struct cf_render_msg_out) + CF_RENDER_CHUNK];
    for (size_t off = 0; off < j->out_len;) {
        uint32_t len = j->out_len - off < CF_RENDER_CHUNK ? (uint32_t)(j->out_len - off) : CF_RENDER_CHUNK;
        struct cf_render_msg_out o = {.h = {CF_RENDER_MAGIC, CF_RENDER_OUT, j->m.h.id}, .offset = off, .len = len};
        memcpy(msg, &o, sizeof o);
        memcpy(msg + sizeof o, j->out + off, len);
        send_msg(msg, sizeof o + len);
        off += len;
    }
}

/* ---- the sandbox ---------------------------------------------------------------------------- */

static void limits(void)
{
    cf_confine_limits(opt.max_input + 1, opt.memory); /* the office document is the largest file written */
}

/* Loads what the libraries load lazily (fontconfig's configuration and caches, the fonts, Pango's
 * shapers, the WebP encoder) by rendering pages of our own, before the sandbox closes. */
static void warm_up(void)
{
    static const char text[] = "warm-up: ASCII, Ünïcödé, Ελληνικά, Кириллица\tTab\n";
    struct job j = {.m = {.h = {CF_RENDER_MAGIC, CF_RENDER_JOB, 1}, .op = CF_RENDER_OP_PAGE, .kind = CF_RENDER_TEXT,
                          .page = 1, .width = 480, .wm_lines = 1, .wm_opacity = 20}};
    snprintf(j.m.wm[0], sizeof j.m.wm[0], "warm-up");
    struct opts saved = opt; /* our own page: not held to the limits set for inputs */
    opt.max_output = 64u << 20;
    opt.max_pixels = 100000000u;
    j.in = (uint8_t *)g_strdup(text);
    j.in_len = sizeof text - 1;
    cairo_surface_t *s = render_text(&j);
    if (s == NULL)
        die("the text renderer does not work");
    watermark(s, &j.m);
    encode(&j, s);
    cairo_surface_destroy(s);
    if (j.r.result != CF_RENDER_OK)
        die("the WebP encoder does not work");
    /* And decode it back, as OP_COMPOSE does. */
    g_free(j.in);
    j.in = j.out;
    j.in_len = j.out_len;
    j.out = NULL;
    s = load_page(&j);
    if (s == NULL) {
        cf_log_error("%s: %s", j.r.why, vips_error_buffer());
        die("the WebP decoder does not work");
    }
    cairo_surface_destroy(s);
    g_free(j.in);
    opt = saved;
}

/* Landlock: the scratch directory read-write, the fonts and the libraries' data read-only. seccomp
 * (confine.h): besides the common allowlist, what GLib, libvips and Cairo use (their wake-up
 * descriptors and poll loops, resource usage, affinity); io_uring kills. */
static void confine(void)
{
    const struct cf_landlock_rule rules[] = {
        {opt.scratch, cf_landlock_scratch()},
        {"/usr/share", cf_landlock_read()}, /* fonts, poppler's and glib's data */
        {"/etc/fonts", cf_landlock_read()},
        {"/var/cache/fontconfig", cf_landlock_read()},
    };
    static const int allow[] = {
        SCMP_SYS(clock_getres), SCMP_SYS(getrusage), SCMP_SYS(eventfd2), SCMP_SYS(pipe2), SCMP_SYS(epoll_create1),
        SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(sched_setaffinity),
    };
    static const int kill[] = {SCMP_SYS(io_uring_setup)};
    const struct cf_confinement c = {.rules = rules, .nrules = sizeof rules / sizeof rules[0], .skip_missing = true,
                                     .allow = allow, .nallow = sizeof allow / sizeof allow[0], .kill = kill,
                                     .nkill = sizeof kill / sizeof kill[0]};
    const char *why = cf_confine_enter(&c);
    if (why != NULL)
        die(why);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void parse_args(int argc, char **argv)
{
    opt.max_seconds = 60;
    opt.max_pages = 500;
    opt.max_input = 64ull << 20;
    opt.max_output = 32ull << 20;
    opt.max_pixels = 100000000ull;
    opt.memory = 2ull << 30;
    opt.soffice = "";
    opt.language = "zh-cn";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        if (strcmp(a, "--log-json") == 0)
            continue;
        if (val == NULL)
            die("usage: coffer-render --scratch DIR [--soffice PATH] [--max-seconds N] [--max-pages N] "
                "[--max-input B] [--max-output B] [--max-pixels N] [--memory B] [--language TAG] [--uid N --gid N] "
                "[--log-level N] [--log-json] (started by coffer serve only)");
        i++;
        if (strcmp(a, "--scratch") == 0)
            opt.scratch = val;
        else if (strcmp(a, "--soffice") == 0)
            opt.soffice = val;
        else if (strcmp(a, "--language") == 0 && cf_language_tag_valid(val))
            opt.language = val;
        else if (strcmp(a, "--max-seconds") == 0 && cf_parse_u64(val, strlen(val), 3600, &u) == CF_OK && u > 0)
            opt.max_seconds = (unsigned)u;
        else if (strcmp(a, "--max-pages") == 0 && cf_parse_u64(val, strlen(val), 100000, &u) == CF_OK && u > 0)
            opt.max_pages = (unsigned)u;
        else if (strcmp(a, "--max-input") == 0 && cf_parse_u64(val, strlen(val), 1ull << 32, &u) == CF_OK && u > 0)
            opt.max_input = u;
        else if (strcmp(a, "--max-output") == 0 && cf_parse_u64(val, strlen(val), 1ull << 32, &u) == CF_OK && u > 0)
            opt.max_output = u;
        else if (strcmp(a, "--max-pixels") == 0 && cf_parse_u64(val, strlen(val), 1ull << 40, &u) == CF_OK && u > 0)
            opt.max_pixels = u;
        else if (strcmp(a, "--memory") == 0 && cf_parse_u64(val, strlen(val), 1ull << 40, &u) == CF_OK &&
                 u >= (256u << 20))
            opt.memory = u;
        else if (!cf_confine_arg(a, val, &opt.ids))
            die("bad arguments");
    }
    if (opt.scratch == NULL)
        die("--scratch is required");
}

int main(int argc, char **argv)
{
    if (cf_priv_no_dumps() != 0)
        die("cannot turn core dumps off");
    cf_confine_begin("render-worker", CF_RENDER_FD, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    parse_args(argc, argv);
    /* The service account before anything is read; office documents are written into the scratch
     * directory in plaintext: it must be a tmpfs. */
    cf_confine_account(&opt.ids, opt.scratch);
    snprintf(office_dir, sizeof office_dir, "%s/office", opt.scratch);
    office_start();
    limits();
    /* libvips loads its optional modules (ImageMagick, OpenSlide, HEIF, JPEG XL, poppler) from
     * $VIPSHOME/lib: pointing it nowhere keeps that code out of this process altogether. */
    setenv("VIPSHOME", "/nonexistent", 1);
    if (VIPS_INIT(argv[0]) != 0)
        die("libvips does not start");
    vips_block_untrusted_set(TRUE); /* ImageMagick, OpenSlide, ...: never near a hostile file */
    vips_cache_set_max(0);
    vips_concurrency_set(1);
    vips_vector_set_enabled(FALSE); /* no run-time code generation (orc) in a process that parses hostile input */
    warm_up();
    confine();
    struct cf_render_msg_hello h = {.h = {CF_RENDER_MAGIC, CF_RENDER_HELLO, 0}, .office = office_fd >= 0};
    snprintf(h.versions, sizeof h.versions, "vips %s poppler %s", vips_version_string(), poppler_get_version());
    send_msg(&h, sizeof h);
    for (;;) {
        struct job j = {0};
        ssize_t got = recv(sock, &j.m, sizeof j.m, 0);
        if (got == 0)
            _exit(0); /* the server closed the socket: it is stopping */
        if (got != (ssize_t)sizeof j.m || !cf_render_job_msg_ok(&j.m))
            _exit(4);
        run_job(&j);
        answer(&j);
        if (j.in != NULL) /* the plaintext: gone before the next job */
            explicit_bzero(j.in, j.in_len);
        g_free(j.in);
        g_free(j.out);
    }
}
