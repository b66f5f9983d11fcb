/*
 * render.h: rendering documents to page images in the renderer processes (renderer.c, the
 * coffer-render executable), from the server's side.
 *
 * K renderer processes are spawned (posix_spawn, never fork) at start-up, before any key is read,
 * each with one render thread here that owns it: a confined child family (src/core/child.h), as the
 * scanners are. A job names its input by size and a read function;
 * the render thread answers the renderer's READ requests through it (the renderer sees nothing else
 * of the server), receives a checked RESULT and the output, and completes the job. A renderer that
 * crashes, passes the deadline (max_seconds plus a margin) or breaks the protocol is killed with its
 * whole process group (its office converter and LibreOffice included); the job fails with
 * CF_EUNAVAIL and the renderer is started again. A renderer that refused an input as malformed or
 * too large is replaced too (a parser that choked may be in any state), and so is one that has run
 * CF_RENDER_RECYCLE jobs. A renderer that has run no job for idle_stop_s is stopped (its memory,
 * some 45 MiB, returned) and started again by the next job that needs it (child.h "Stopped when
 * idle"). This process never decodes what a renderer produced: it checks the output's container
 * header (WebP or PDF) and its length, no more.
 */
#ifndef CF_RENDER_H
#define CF_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "base.h"
#include "child.h"
#include "render_proto.h"
#include "work.h"

#define CF_RENDER_RECYCLE 200 /* jobs a renderer runs before it is replaced */
#define CF_RENDER_QUEUE_PER_PROCESS 8 /* the default bound of the waiting jobs, per renderer */

/* What the family needs (phase 2 fills it from the configuration's render: section). */
struct cf_render_opts {
    const char *worker;        /* path of the coffer-render executable */
    const char *scratch_dir;   /* a tmpfs (checked): office documents and LibreOffice profiles live there */
    unsigned processes;        /* renderer processes; 0 = 2 */
    unsigned max_seconds;      /* one job's deadline (1..3600); 0 = 60 */
    unsigned max_pages;        /* pages of a document that can be rendered; 0 = 500 */
    unsigned idle_stop_s;      /* a renderer that has run no job for this long is stopped until the next
                                * job needs it (render.idle_stop; the configuration's default is 60); 0 = never */
    unsigned max_queued;       /* jobs waiting for a renderer before cf_render_submit_async refuses one;
                                * 0 = CF_RENDER_QUEUE_PER_PROCESS per process */
    uint64_t max_input;        /* bytes a renderer reads of an input; 0 = 64 MiB */
    uint64_t max_output;       /* bytes of one output (an image, a converted PDF); 0 = 32 MiB */
    uint64_t max_pixels;       /* pixels an image may declare (decompression bombs); 0 = 100 million */
    uint64_t memory;           /* RLIMIT_AS of a renderer, bytes; 0 = 2 GiB (not applied under ASan) */
    const char *soffice;       /* soffice.bin; NULL = /usr/lib/libreoffice/program/soffice.bin; "" = no office */
    const char *text_language; /* BCP 47 tag of text pages and watermarks (checked); NULL = zh-cn */
    int log_level;             /* log.h level for the renderers' lines */
    bool log_json;
    bool run_as;               /* started as root: renderers switch to uid/gid before reading anything */
    uid_t uid;
    gid_t gid;
};

struct cf_render_job {
    /* input */
    uint64_t size;
    /* read(ctx, offset, buf, len): fills buf with len bytes of the input at offset (render thread). */
    enum cf_status (*read)(void *ctx, uint64_t offset, void *buf, size_t len);
    void *ctx;
    enum cf_render_op op;
    enum cf_render_kind kind;      /* cf_render_kind_of(mime); CF_RENDER_WEBP for OP_COMPOSE */
    unsigned page;                 /* OP_PAGE: from 1 */
    unsigned width;                /* OP_PAGE: cf_render_width_ok */
    unsigned wm_lines;             /* watermark lines (0: none; OP_COMPOSE needs at least 1) */
    unsigned wm_opacity;           /* percent 1..100 */
    char wm[CF_RENDER_WM_LINES][CF_RENDER_WM_LINE]; /* UTF-8 lines, NUL-terminated */
    /* done(job): on the render thread, once the results are set (cf_render_run waits instead;
     * cf_render_submit_async sets it). */
    void (*done)(struct cf_render_job *job);
    struct cf_job *then;           /* cf_render_submit_async: sent back to its loop when done (private) */
    /* results */
    pid_t pid;                     /* the renderer running the job (set before its first read) */
    enum cf_status status;         /* CF_OK: result is valid; CF_EUNAVAIL: renderer crashed, killed, late or
                                    * broke the protocol (or none is up); CF_EIO: read failed; CF_EINVAL: bad job */
    enum cf_render_result result;  /* when status is CF_OK */
    unsigned pages;                /* page count (OP_PAGES, OP_PAGE), capped at max_pages */
    unsigned out_width, out_height;/* the image's pixels (OP_PAGE, OP_COMPOSE) */
    uint8_t *out;                  /* malloc'ed output (WebP or PDF) when result is CF_RENDER_OK; the job's
                                    * owner frees it (cf_render_job_clear) */
    size_t out_len;
    char why[CF_RENDER_WHY];       /* the renderer's reason, or ours (printable ASCII) */
    struct cf_child_job link;      /* the family's queue link (private) */
};

/* cf_render_check_opts(o, err): the options checked without starting anything: scratch_dir is a
 * tmpfs, worker is executable, limits in range. CF_OK or CF_EINVAL with a malloc'ed message. */
enum cf_status cf_render_check_opts(const struct cf_render_opts *o, char **err) CF_WUR;

/* cf_render_start(o, err): spawns the renderers and waits until each said HELLO. o is copied. Call
 * once, before keys are loaded (so no key is ever in a renderer's address space; posix_spawn copies
 * nothing anyway). CF_EUNAVAIL with a malloc'ed reason if one does not come up. */
enum cf_status cf_render_start(const struct cf_render_opts *o, char **err) CF_WUR;
/* cf_render_stop(): waits for the jobs under way, fails the queued ones with CF_EUNAVAIL, kills the
 * renderers, removes the scratch. Safe without a start. */
void cf_render_stop(void);

/* cf_render_submit(job): queues a job. Any thread; job->done runs on a render thread. */
void cf_render_submit(struct cf_render_job *job);
/* cf_render_submit_async(job, then): the way a request renders without holding a worker. Queues job
 * if fewer than max_queued jobs wait for a renderer; once its results are set, `then` (a work.h job
 * whose reply_to is the submitting loop's receiver) goes back to that loop: then->done runs there,
 * where it may hand `then` to a worker again (cf_work_submit) to use the results. The job and its
 * read function's context must live until then. Any thread; job->done is taken. CF_OK: queued;
 * CF_EBUSY: too many jobs wait (nothing queued: answer 503 with Retry-After); CF_EUNAVAIL: the
 * family is not running (nothing queued). */
enum cf_status cf_render_submit_async(struct cf_render_job *job, struct cf_job *then) CF_WUR;
/* cf_render_queued(): jobs waiting for a renderer (not those being rendered). */
size_t cf_render_queued(void);
/* cf_render_run(job): submits and waits for the job (job->done is ignored). Any thread but a render
 * thread (a read function must not call it). Returns job->status. */
enum cf_status cf_render_run(struct cf_render_job *job);
/* cf_render_job_clear(job): frees the output; the job can be reused. NULL-safe. */
void cf_render_job_clear(struct cf_render_job *job);

/* cf_render_pids(out, n): the process ids of the renderers that are up (not those stopped for
 * idleness: 0 when every renderer is). */
size_t cf_render_pids(int *out, size_t n);
/* cf_render_states(up, stopped, down): how many renderers are up, stopped for idleness (started
 * again by the next job: not a fault) and down (died or failed to start: restarting). All 0 when
 * the family is not started. Any thread (for a /metrics gauge). */
void cf_render_states(size_t *up, size_t *stopped, size_t *down);
/* cf_render_running(): whether the family was started and is not stopping (a renderer may be
 * restarting: jobs then wait for it). */
bool cf_render_running(void);
/* cf_render_office(): whether office conversion is available (every renderer's last HELLO said so,
 * a renderer stopped for idleness included). */
bool cf_render_office(void);

/* cf_render_kind_of(mime): the kind for a MIME type as the scanner's libmagic gave it (never a client's
 * claim); CF_RENDER_NONE for anything we do not render. Pure. */
enum cf_render_kind cf_render_kind_of(const char *mime);
/* cf_render_width_ok(w): w is one of CF_RENDER_WIDTHS. */
bool cf_render_width_ok(unsigned w);
/* cf_render_wm_set(job, lines, n, opacity): copies up to CF_RENDER_WM_LINES lines into the job's
 * watermark, each cut at a UTF-8 boundary to fit; control characters become spaces. */
void cf_render_wm_set(struct cf_render_job *job, const char *const *lines, unsigned n, unsigned opacity);

/* cf_render_reply_check(m, n, id, size, why): classifies one message of n bytes a renderer sent
 * during job id on an input of size bytes: READ (1..CF_RENDER_CHUNK within the input), RESULT
 * (known result, NUL-terminated printable why, no output unless OK), or BAD with a static reason.
 * m need not be aligned. Pure, any thread. */
enum cf_render_reply { CF_RENDER_REPLY_BAD, CF_RENDER_REPLY_READ, CF_RENDER_REPLY_RESULT };
enum cf_render_reply cf_render_reply_check(const void *m, size_t n, uint64_t id, uint64_t size, const char **why);
/* cf_render_job_msg_ok(m): the renderer's check of a JOB message (renderer.c): known op and kind, a
 * page and width where the op needs them, watermark lines NUL-terminated valid UTF-8 without control
 * characters, opacity in range. Pure. */
bool cf_render_job_msg_ok(const struct cf_render_msg_job *m);
/* cf_render_output_ok(op, out, n, width, height): the server's check of an output: a WebP (RIFF
 * header, length matching, VP8/VP8L/VP8X chunk) for OP_PAGE and OP_COMPOSE, a PDF header for
 * OP_CONVERT. Not a decode. Pure. */
bool cf_render_output_ok(enum cf_render_op op, const uint8_t *out, size_t n);

#endif
