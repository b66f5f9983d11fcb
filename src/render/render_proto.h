/*
 * render_proto.h: the messages between the server and its renderer processes (coffer-render), over
 * one SOCK_SEQPACKET socket per renderer (each send is one message; boundaries are kept).
 *
 *   renderer → server  HELLO    once its libraries are loaded and it is confined
 *   server → renderer  JOB      an operation on an input of `size` bytes (op, kind, page, width, watermark)
 *   renderer → server  READ     give me `len` bytes at `offset` of the input
 *   server → renderer  DATA     the header followed by exactly `len` bytes
 *   renderer → server  RESULT   the outcome, the page count, and the length of the output that follows
 *   renderer → server  OUT      `len` bytes of the output at `offset`, in order, until out_len is reached
 *
 * Every field is checked on receipt on both sides (magic, type, id, lengths, ranges, enums,
 * NUL-terminated strings). The server trusts nothing else a renderer says: hostile documents are
 * parsed there. Sizes: a JOB is 432 bytes, a RESULT 136; READ/DATA/OUT carry at most
 * CF_RENDER_CHUNK bytes each.
 */
#ifndef CF_RENDER_PROTO_H
#define CF_RENDER_PROTO_H

#include <stdint.h>

#define CF_RENDER_MAGIC 0x43465252u        /* "CFRR" */
#define CF_RENDER_VERSION 1u               /* what a cached page was made by: part of every cache key
                                            * (phase 2); bumped whenever the same input would give
                                            * other pixels (fonts, layout, encoder settings) */
#define CF_RENDER_CHUNK (128u * 1024)      /* bytes per READ/DATA and per OUT */
#define CF_RENDER_FD 3                     /* the socket's descriptor in the renderer process */
#define CF_RENDER_WM_LINES 4               /* watermark: at most this many lines ... */
#define CF_RENDER_WM_LINE 96               /* ... of at most 95 bytes of UTF-8 each, NUL-terminated */
#define CF_RENDER_WHY 96                   /* a reason, printable ASCII, NUL-terminated */
#define CF_RENDER_MAX_ASPECT 8             /* a page image is at most 8 times as high as it is wide */

/* The widths a page may be rendered at, in pixels (the only ones: a cache key needs few). */
#define CF_RENDER_WIDTHS {480u, 960u, 1600u}
#define CF_RENDER_WIDTH_MAX 1600u

enum cf_render_type {
    CF_RENDER_HELLO = 1,
    CF_RENDER_JOB = 2,
    CF_RENDER_READ = 3,
    CF_RENDER_DATA = 4,
    CF_RENDER_RESULT = 5,
    CF_RENDER_OUT = 6,
};

enum cf_render_op {
    CF_RENDER_OP_PAGES = 1,    /* count the pages; no output */
    CF_RENDER_OP_PAGE = 2,     /* page `page` (from 1) at `width`: one WebP image (watermarked if wm_lines > 0) */
    CF_RENDER_OP_CONVERT = 3,  /* an office document to PDF: the PDF (to be cached and rendered as CF_RENDER_PDF) */
    CF_RENDER_OP_COMPOSE = 4,  /* the input is a WebP page made by OP_PAGE: the same page, watermarked */
};

enum cf_render_kind {
    CF_RENDER_NONE = 0,        /* nothing we render: "no preview" */
    CF_RENDER_IMAGE = 1,       /* JPEG, PNG, WebP, GIF, TIFF (libvips, untrusted loaders blocked) */
    CF_RENDER_PDF = 2,         /* poppler */
    CF_RENDER_TEXT = 3,        /* UTF-8 text or source code (Pango/Cairo, monospace, line numbers) */
    CF_RENDER_DOCX = 4,        /* office documents: LibreOffice converts them to PDF first */
    CF_RENDER_XLSX = 5,
    CF_RENDER_PPTX = 6,
    CF_RENDER_ODT = 7,
    CF_RENDER_ODS = 8,
    CF_RENDER_ODP = 9,
    CF_RENDER_WEBP = 10,       /* the input of OP_COMPOSE: a page this family produced */
};
#define CF_RENDER_KIND_MAX CF_RENDER_WEBP

enum cf_render_result {
    CF_RENDER_OK = 0,
    CF_RENDER_UNSUPPORTED = 1, /* not a kind or a content we render (or office conversion is off) */
    CF_RENDER_MALFORMED = 2,   /* the input does not parse (a broken PDF, a truncated image, no pages) */
    CF_RENDER_TOO_LARGE = 3,   /* over a limit: input bytes, pixels (decompression bomb), output bytes */
    CF_RENDER_NO_PAGE = 4,     /* the page is beyond the document (or beyond the page limit) */
    CF_RENDER_TIMEOUT = 5,     /* the office conversion passed its deadline and was killed */
    CF_RENDER_FAILED = 6,      /* anything else (why says what) */
};
#define CF_RENDER_RESULT_MAX CF_RENDER_FAILED

struct cf_render_hdr {
    uint32_t magic;
    uint32_t type;   /* enum cf_render_type */
    uint64_t id;     /* the job this message belongs to (0 for HELLO) */
};

struct cf_render_msg_job {
    struct cf_render_hdr h;
    uint64_t size;        /* bytes in the input */
    uint32_t op;          /* enum cf_render_op */
    uint32_t kind;        /* enum cf_render_kind */
    uint32_t page;        /* OP_PAGE: 1..pages; 0 otherwise */
    uint32_t width;       /* OP_PAGE: one of CF_RENDER_WIDTHS; 0 otherwise */
    uint32_t wm_lines;    /* 0..CF_RENDER_WM_LINES (OP_COMPOSE: at least 1) */
    uint32_t wm_opacity;  /* percent, 1..100, when wm_lines > 0 */
    char wm[CF_RENDER_WM_LINES][CF_RENDER_WM_LINE]; /* UTF-8, NUL-terminated, no control characters */
};

struct cf_render_msg_read {
    struct cf_render_hdr h;
    uint64_t offset;
    uint32_t len;    /* 1..CF_RENDER_CHUNK, within the input */
    uint32_t pad;
};

struct cf_render_msg_data { /* followed by exactly len bytes */
    struct cf_render_hdr h;
    uint64_t offset;
    uint32_t len;
    uint32_t pad;
};

struct cf_render_msg_hello {
    struct cf_render_hdr h;
    uint32_t office;      /* 1: office conversion is available */
    uint32_t pad;
    char versions[64];    /* "vips 8.14.1 poppler 22.12.0" */
};

struct cf_render_msg_result {
    struct cf_render_hdr h;
    uint32_t result;      /* enum cf_render_result */
    uint32_t pages;       /* the document's page count (capped at the page limit); 0 if unknown */
    uint32_t width;       /* the output image's pixels (OP_PAGE, OP_COMPOSE), else 0 */
    uint32_t height;
    uint64_t out_len;     /* bytes of output that follow in OUT messages (0 unless result is OK) */
    char why[CF_RENDER_WHY];
};

struct cf_render_msg_out { /* followed by exactly len bytes */
    struct cf_render_hdr h;
    uint64_t offset;      /* the bytes sent before this message */
    uint32_t len;         /* 1..CF_RENDER_CHUNK */
    uint32_t pad;
};

#endif
