/*
 * render.c: the server side of rendering (see render.h).
 *
 * The renderer processes are a confined child family (child.h: spawned before any key is read, one
 * render thread each, the queue, deadlines, kill of the whole process group (the office converter
 * and LibreOffice are in it) and restart, recycling, the idle check). What is the renderer's own is
 * here: its command line and HELLO, the checks of jobs, results and outputs, and one job: send JOB,
 * serve READs through the job's read function until a RESULT arrives, check every field, collect
 * the OUT messages that follow (in order, exactly out_len bytes, at most max_output), check the
 * output's container header and complete the job. A renderer that is late, dies or says anything
 * unexpected fails the job with CF_EUNAVAIL.
 */
#include "render.h"

#include <errno.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "child.h"
#include "childio.h"
#include "log.h"

#define HELLO_TIMEOUT_MS (120 * 1000) /* fonts and libraries load in well under a second; slow disks */
#define RESULT_MARGIN_MS 15000        /* beyond max_seconds, for the renderer's own deadline to act */
#define DEFAULT_SOFFICE "/usr/lib/libreoffice/program/soffice.bin"
#define MAX_PROCESSES 64

static struct cf_child_family fam = CF_CHILD_FAMILY_INIT;
static bool office[MAX_PROCESSES];   /* each renderer's HELLO said office conversion works (cf_child_lock) */
static struct cf_render_opts opt;
static char *worker, *soffice, *scratch_base;

static struct cf_render_job *job_of(struct cf_child_job *l)
{
    return (struct cf_render_job *)(void *)((char *)l - offsetof(struct cf_render_job, link));
}

/* A watermark line: NUL-terminated in its field, valid UTF-8 (shortest forms, no surrogates), no
 * control characters. */
static bool wm_line_ok(const char *s, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s, *end = memchr(s, '\0', cap);
    if (end == NULL)
        return false;
    while (p < end) {
        unsigned c = *p, need, cp;
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            need = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            need = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            need = 3, cp = c & 0x07;
        else
            return false;
        if ((size_t)(end - p) <= need)
            return false;
        for (unsigned i = 1; i <= need; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0x80 && cp < 0xa0)) /* overlong, surrogate, C1 */
            return false;
        p += need + 1;
    }
    return true;
}

bool cf_render_width_ok(unsigned w)
{
    static const unsigned widths[] = CF_RENDER_WIDTHS;
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++)
        if (widths[i] == w)
            return true;
    return false;
}

static bool is_office(uint32_t kind)
{
    return kind >= CF_RENDER_DOCX && kind <= CF_RENDER_ODP;
}

bool cf_render_job_msg_ok(const struct cf_render_msg_job *m)
{
    if (m->h.magic != CF_RENDER_MAGIC || m->h.type != CF_RENDER_JOB || m->h.id == 0)
        return false;
    if (m->kind == CF_RENDER_NONE || m->kind > CF_RENDER_KIND_MAX || m->wm_lines > CF_RENDER_WM_LINES)
        return false;
    if (m->wm_lines > 0 && (m->wm_opacity < 1 || m->wm_opacity > 100))
        return false;
    for (uint32_t i = 0; i < m->wm_lines; i++)
        if (!wm_line_ok(m->wm[i], sizeof m->wm[i]))
            return false;
    switch (m->op) {
    case CF_RENDER_OP_PAGES:
        return m->page == 0 && m->width == 0 && m->wm_lines == 0 && m->kind != CF_RENDER_WEBP;
    case CF_RENDER_OP_PAGE:
        return m->page >= 1 && cf_render_width_ok(m->width) && m->kind != CF_RENDER_WEBP;
    case CF_RENDER_OP_CONVERT:
        return m->page == 0 && m->width == 0 && m->wm_lines == 0 && is_office(m->kind);
    case CF_RENDER_OP_COMPOSE:
        return m->page == 0 && m->width == 0 && m->wm_lines >= 1 && m->kind == CF_RENDER_WEBP;
    default:
        return false;
    }
}

enum cf_render_reply cf_render_reply_check(const void *m, size_t n, uint64_t id, uint64_t size, const char **why)
{
    struct cf_render_hdr h;
    *why = NULL;
    if (n < sizeof h) {
        *why = "garbage during a job";
        return CF_RENDER_REPLY_BAD;
    }
    memcpy(&h, m, sizeof h);
    if (h.magic != CF_RENDER_MAGIC) {
        *why = "garbage during a job";
        return CF_RENDER_REPLY_BAD;
    }
    if (h.id != id) {
        *why = "a message for another job";
        return CF_RENDER_REPLY_BAD;
    }
    if (h.type == CF_RENDER_READ && n == sizeof(struct cf_render_msg_read)) {
        struct cf_render_msg_read rd;
        memcpy(&rd, m, sizeof rd);
        if (rd.len == 0 || rd.len > CF_RENDER_CHUNK || rd.offset > size || size - rd.offset < rd.len) {
            *why = "a read outside the input";
            return CF_RENDER_REPLY_BAD;
        }
        return CF_RENDER_REPLY_READ;
    }
    if (h.type == CF_RENDER_RESULT && n == sizeof(struct cf_render_msg_result)) {
        struct cf_render_msg_result r;
        memcpy(&r, m, sizeof r);
        if (r.result > CF_RENDER_RESULT_MAX || !cf_field_printable(r.why, sizeof r.why) ||
            (r.result != CF_RENDER_OK && r.out_len != 0) || r.width > CF_RENDER_WIDTH_MAX ||
            r.height > (uint64_t)CF_RENDER_WIDTH_MAX * CF_RENDER_MAX_ASPECT) {
            *why = "a malformed result";
            return CF_RENDER_REPLY_BAD;
        }
        return CF_RENDER_REPLY_RESULT;
    }
    *why = "an unexpected message";
    return CF_RENDER_REPLY_BAD;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

bool cf_render_output_ok(enum cf_render_op op, const uint8_t *out, size_t n)
{
    if (op == CF_RENDER_OP_CONVERT)
        return n >= 8 && memcmp(out, "%PDF-", 5) == 0;
    if (op != CF_RENDER_OP_PAGE && op != CF_RENDER_OP_COMPOSE)
        return false;
    /* RIFF container: "RIFF" <size of what follows> "WEBP" and a first chunk VP8 / VP8L / VP8X. */
    return n >= 20 && memcmp(out, "RIFF", 4) == 0 && le32(out + 4) == n - 8 && memcmp(out + 8, "WEBP", 4) == 0 &&
           (memcmp(out + 12, "VP8 ", 4) == 0 || memcmp(out + 12, "VP8L", 4) == 0 || memcmp(out + 12, "VP8X", 4) == 0);
}

enum cf_render_kind cf_render_kind_of(const char *mime)
{
    static const struct {
        const char *mime;
        enum cf_render_kind kind;
    } map[] = {
        {"image/jpeg", CF_RENDER_IMAGE},
        {"image/png", CF_RENDER_IMAGE},
        {"image/webp", CF_RENDER_IMAGE},
        {"image/gif", CF_RENDER_IMAGE},
        {"image/tiff", CF_RENDER_IMAGE},
        {"application/pdf", CF_RENDER_PDF},
        {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", CF_RENDER_DOCX},
        {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", CF_RENDER_XLSX},
        {"application/vnd.openxmlformats-officedocument.presentationml.presentation", CF_RENDER_PPTX},
        {"application/vnd.oasis.opendocument.text", CF_RENDER_ODT},
        {"application/vnd.oasis.opendocument.spreadsheet", CF_RENDER_ODS},
        {"application/vnd.oasis.opendocument.presentation", CF_RENDER_ODP},
    };
    if (mime == NULL)
        return CF_RENDER_NONE;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(mime, map[i].mime) == 0)
            return map[i].kind;
    /* text/plain, text/x-c, text/x-script.python, ...: libmagic's text types (never text/html or
     * image/svg+xml: those are markup, rendered as their source would be misleading; "no preview"). */
    if (strncmp(mime, "text/", 5) == 0 && strcmp(mime, "text/html") != 0 && strcmp(mime, "text/xml") != 0)
        return CF_RENDER_TEXT;
    if (strcmp(mime, "application/json") == 0 || strcmp(mime, "application/javascript") == 0)
        return CF_RENDER_TEXT;
    return CF_RENDER_NONE;
}

void cf_render_wm_set(struct cf_render_job *job, const char *const *lines, unsigned n, unsigned opacity)
{
    memset(job->wm, 0, sizeof job->wm);
    job->wm_lines = n > CF_RENDER_WM_LINES ? CF_RENDER_WM_LINES : n;
    job->wm_opacity = opacity < 1 ? 1 : opacity > 100 ? 100 : opacity;
    for (unsigned i = 0; i < job->wm_lines; i++) {
        size_t len = strlen(lines[i]);
        if (len > CF_RENDER_WM_LINE - 1) {
            len = CF_RENDER_WM_LINE - 1;
            while (len > 0 && ((unsigned char)lines[i][len] & 0xc0) == 0x80) /* not inside a character */
                len--;
        }
        memcpy(job->wm[i], lines[i], len);
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)job->wm[i][k] < 0x20 || job->wm[i][k] == 0x7f)
                job->wm[i][k] = ' ';
    }
}

void cf_render_job_clear(struct cf_render_job *job)
{
    if (job == NULL)
        return;
    free(job->out);
    job->out = NULL;
    job->out_len = 0;
}

/* ---- the family's hooks (child.h) ------------------------------------------------------------- */

static void args(const struct cf_child *c, const char *scratch, struct cf_child_args *a)
{
    (void)c;
    cf_child_arg(a, worker);
    cf_child_arg(a, "--scratch");
    cf_child_arg(a, scratch);
    cf_child_arg(a, "--max-seconds");
    cf_child_argf(a, "%u", opt.max_seconds);
    cf_child_arg(a, "--max-pages");
    cf_child_argf(a, "%u", opt.max_pages);
    cf_child_arg(a, "--max-input");
    cf_child_argf(a, "%llu", (unsigned long long)opt.max_input);
    cf_child_arg(a, "--max-output");
    cf_child_argf(a, "%llu", (unsigned long long)opt.max_output);
    cf_child_arg(a, "--max-pixels");
    cf_child_argf(a, "%llu", (unsigned long long)opt.max_pixels);
    cf_child_arg(a, "--memory");
    cf_child_argf(a, "%llu", (unsigned long long)opt.memory);
    cf_child_arg(a, "--language");
    cf_child_arg(a, opt.text_language != NULL ? opt.text_language : "zh-cn");
    cf_child_arg(a, "--log-level");
    cf_child_argf(a, "%d", opt.log_level);
    cf_child_arg(a, "--soffice");
    cf_child_arg(a, soffice);
    if (opt.log_json)
        cf_child_arg(a, "--log-json");
    if (opt.run_as) {
        cf_child_arg(a, "--uid");
        cf_child_argf(a, "%u", (unsigned)opt.uid);
        cf_child_arg(a, "--gid");
        cf_child_argf(a, "%u", (unsigned)opt.gid);
    }
}

static bool on_hello(struct cf_child *c, const void *m, size_t n)
{
    struct cf_render_msg_hello h;
    if (n != sizeof h)
        return false;
    memcpy(&h, m, sizeof h);
    if (h.h.magic != CF_RENDER_MAGIC || h.h.type != CF_RENDER_HELLO || h.h.id != 0 || h.office > 1 ||
        !cf_field_printable(h.versions, sizeof h.versions))
        return false;
    office[c->index] = h.office == 1;
    cf_log_debug("renderer %u up (pid %ld): %s%s", c->index, (long)c->pid, h.versions,
                 h.office ? ", office conversion" : "");
    return true;
}

static void lost(struct cf_child_job *l, const char *why)
{
    struct cf_render_job *j = job_of(l);
    if (why != NULL)
        snprintf(j->why, sizeof j->why, "%s", why);
    if (j->status == CF_OK)
        j->status = CF_EUNAVAIL;
}

static void complete(struct cf_child_job *l)
{
    struct cf_render_job *j = job_of(l);
    j->done(j);
}

static void cancel(struct cf_child_job *l)
{
    struct cf_render_job *j = job_of(l);
    j->status = CF_EUNAVAIL;
    snprintf(j->why, sizeof j->why, "the renderers are stopping");
    j->done(j);
}

/* ---- one job ---------------------------------------------------------------------------------- */

/* The OUT messages after a RESULT with out_len bytes. */
static enum cf_child_run collect(struct cf_child *r, struct cf_render_job *j, uint64_t id, uint64_t out_len,
                               uint64_t deadline)
{
    static _Thread_local uint8_t msg[sizeof(struct cf_render_msg_out) + CF_RENDER_CHUNK];
    j->out = cf_xmalloc(out_len);
    uint64_t have = 0;
    while (have < out_len) {
        ssize_t n = cf_recv_until(r->fd, msg, sizeof msg, deadline);
        struct cf_render_msg_out o;
        if (n <= 0) {
            cf_log_error("renderer %u: %s while sending its output", r->index, n < 0 ? "no answer in time" : "it died");
            return CF_CHILD_FAILED;
        }
        if ((size_t)n < sizeof o)
            goto bad;
        memcpy(&o, msg, sizeof o);
        if (o.h.magic != CF_RENDER_MAGIC || o.h.type != CF_RENDER_OUT || o.h.id != id || o.offset != have ||
            o.len == 0 || o.len > CF_RENDER_CHUNK || o.len > out_len - have || (size_t)n != sizeof o + o.len)
            goto bad;
        memcpy(j->out + have, msg + sizeof o, o.len);
        have += o.len;
    }
    j->out_len = (size_t)out_len;
    if (!cf_render_output_ok(j->op, j->out, j->out_len)) {
        cf_log_error("renderer %u: its output is not a %s", r->index,
                     j->op == CF_RENDER_OP_CONVERT ? "PDF" : "WebP image");
        return CF_CHILD_FAILED;
    }
    return CF_CHILD_DONE;
bad:
    cf_log_error("renderer %u: a malformed output message", r->index);
    return CF_CHILD_FAILED;
}

/* One job on r (the family's ops.run). */
static enum cf_child_run run(struct cf_child *r, struct cf_child_job *l)
{
    struct cf_render_job *j = job_of(l);
    static _Thread_local uint8_t data[sizeof(struct cf_render_msg_data) + CF_RENDER_CHUNK];
    uint64_t id = ++r->next_id, reads = 0, start = cf_mono_ms();
    uint64_t deadline = start + (uint64_t)opt.max_seconds * 1000 + RESULT_MARGIN_MS;
    struct cf_render_msg_job m = {.h = {CF_RENDER_MAGIC, CF_RENDER_JOB, id},
                                  .size = j->size,
                                  .op = j->op,
                                  .kind = j->kind,
                                  .page = j->page,
                                  .width = j->width,
                                  .wm_lines = j->wm_lines,
                                  .wm_opacity = j->wm_opacity};
    memcpy(m.wm, j->wm, sizeof m.wm);
    j->pid = r->pid;
    if (send(r->fd, &m, sizeof m, MSG_NOSIGNAL) != (ssize_t)sizeof m)
        return CF_CHILD_GONE;
    for (;;) {
        union {
            struct cf_render_hdr h;
            struct cf_render_msg_read rd;
            struct cf_render_msg_result res;
        } in;
        ssize_t n = cf_recv_until(r->fd, &in, sizeof in, deadline);
        if (n == 0 && reads == 0)
            return CF_CHILD_GONE;
        if (n <= 0) {
            cf_log_error("renderer %u: %s during a job", r->index, n < 0 ? "no answer in time" : "it died");
            snprintf(j->why, sizeof j->why, "%s", n < 0 ? "the renderer passed its deadline" : "the renderer died");
            return CF_CHILD_FAILED;
        }
        const char *why;
        switch (cf_render_reply_check(&in, (size_t)n, id, j->size, &why)) {
        case CF_RENDER_REPLY_READ: {
            struct cf_render_msg_data *d = (void *)data;
            *d = (struct cf_render_msg_data){.h = {CF_RENDER_MAGIC, CF_RENDER_DATA, id}, .offset = in.rd.offset,
                                             .len = in.rd.len};
            if (j->read(j->ctx, in.rd.offset, data + sizeof *d, in.rd.len) != CF_OK) {
                cf_log_error("renderer %u: the input could not be read", r->index);
                j->status = CF_EIO;
                snprintf(j->why, sizeof j->why, "the input could not be read");
                return CF_CHILD_FAILED;
            }
            if (send(r->fd, data, sizeof *d + in.rd.len, MSG_NOSIGNAL) != (ssize_t)(sizeof *d + in.rd.len))
                return CF_CHILD_FAILED;
            reads++;
            continue;
        }
        case CF_RENDER_REPLY_RESULT: {
            const struct cf_render_msg_result *res = &in.res;
            if (res->out_len > opt.max_output || (res->result == CF_RENDER_OK && j->op != CF_RENDER_OP_PAGES &&
                                                  res->out_len == 0) ||
                (j->op == CF_RENDER_OP_PAGES && res->out_len != 0) || res->pages > opt.max_pages ||
                (res->result == CF_RENDER_OK && j->op == CF_RENDER_OP_PAGE &&
                 (res->width == 0 || res->width > j->width || res->height == 0 ||
                  res->height > (uint64_t)j->width * CF_RENDER_MAX_ASPECT))) {
                cf_log_error("renderer %u: a result out of bounds", r->index);
                return CF_CHILD_FAILED;
            }
            j->result = (enum cf_render_result)res->result;
            j->pages = res->pages;
            j->out_width = res->width;
            j->out_height = res->height;
            memcpy(j->why, res->why, sizeof j->why);
            enum cf_child_run rr = res->out_len > 0 ? collect(r, j, id, res->out_len, deadline) : CF_CHILD_DONE;
            if (rr != CF_CHILD_DONE) {
                cf_render_job_clear(j);
                return rr;
            }
            j->status = CF_OK;
            cf_log_debug("renderer %u: op %u kind %u, %llu bytes in, %zu out, %llu reads, %llu ms: result %u %s",
                         r->index, j->op, j->kind, (unsigned long long)j->size, j->out_len,
                         (unsigned long long)reads, (unsigned long long)(cf_mono_ms() - start), j->result, j->why);
            /* A parser that refused a hostile input may be in any state: a fresh process for the next. */
            return j->result == CF_RENDER_MALFORMED || j->result == CF_RENDER_TOO_LARGE ||
                           j->result == CF_RENDER_TIMEOUT || j->result == CF_RENDER_FAILED
                       ? CF_CHILD_RECYCLE
                       : CF_CHILD_DONE;
        }
        case CF_RENDER_REPLY_BAD:
            break;
        }
        cf_log_error("renderer %u: %s (type %u)", r->index, why, in.h.type);
        return CF_CHILD_FAILED;
    }
}

static bool job_ok(const struct cf_render_job *j)
{
    struct cf_render_msg_job m = {.h = {CF_RENDER_MAGIC, CF_RENDER_JOB, 1}, .op = j->op, .kind = j->kind,
                                  .page = j->page, .width = j->width, .wm_lines = j->wm_lines,
                                  .wm_opacity = j->wm_opacity};
    memcpy(m.wm, j->wm, sizeof m.wm);
    return j->read != NULL && cf_render_job_msg_ok(&m);
}

/* Before a job goes to a renderer: its results reset; "no preview" and an invalid job complete here. */
static bool begin(struct cf_child *c, struct cf_child_job *l)
{
    (void)c;
    struct cf_render_job *j = job_of(l);
    j->status = CF_EUNAVAIL;
    j->result = CF_RENDER_FAILED;
    j->pages = j->out_width = j->out_height = 0;
    j->out = NULL;
    j->out_len = 0;
    j->pid = 0;
    memset(j->why, 0, sizeof j->why);
    if (j->kind == CF_RENDER_NONE && j->read != NULL) { /* "no preview": no renderer needs to see it */
        j->status = CF_OK;
        j->result = CF_RENDER_UNSUPPORTED;
        snprintf(j->why, sizeof j->why, "not a kind of file that is rendered");
        return false;
    }
    if (!job_ok(j)) {
        j->status = CF_EINVAL;
        snprintf(j->why, sizeof j->why, "an invalid job");
        return false;
    }
    return true;
}

/* ---- starting and stopping ------------------------------------------------------------------ */

enum cf_status cf_render_check_opts(const struct cf_render_opts *o, char **err)
{
    struct statfs sf;
    if (o->worker == NULL || access(o->worker, X_OK) != 0) {
        *err = cf_xasprintf("render: the renderer program %s is missing or not executable",
                            o->worker != NULL ? o->worker : "(none)");
        return CF_EINVAL;
    }
    if (o->scratch_dir == NULL || statfs(o->scratch_dir, &sf) != 0) {
        *err = cf_xasprintf("render.scratch_dir: %s: %s", o->scratch_dir != NULL ? o->scratch_dir : "(none)",
                            strerror(errno));
        return CF_EINVAL;
    }
    if (sf.f_type != TMPFS_MAGIC) {
        *err = cf_xasprintf("render.scratch_dir: %s is not a tmpfs: office documents are written there, in "
                            "plaintext, for LibreOffice, and they must never reach a persistent disk",
                            o->scratch_dir);
        return CF_EINVAL;
    }
    if (o->max_seconds > 3600 || o->processes > 64) {
        *err = cf_xasprintf("render: max_seconds (at most 3600) or processes (at most 64) out of range");
        return CF_EINVAL;
    }
    return CF_OK;
}

enum cf_status cf_render_start(const struct cf_render_opts *o, char **err)
{
    if (cf_render_check_opts(o, err) != CF_OK)
        return CF_EUNAVAIL;
    opt = *o;
    worker = cf_xstrdup(o->worker);
    soffice = cf_xstrdup(o->soffice != NULL ? o->soffice : DEFAULT_SOFFICE);
    scratch_base = cf_xstrdup(o->scratch_dir);
    opt.worker = worker;
    opt.soffice = soffice;
    opt.scratch_dir = scratch_base;
    if (opt.max_seconds == 0)
        opt.max_seconds = 60;
    if (opt.max_pages == 0)
        opt.max_pages = 500;
    if (opt.max_input == 0)
        opt.max_input = 64ull << 20;
    if (opt.max_output == 0)
        opt.max_output = 32ull << 20;
    if (opt.max_pixels == 0)
        opt.max_pixels = 100000000ull;
    if (opt.memory == 0)
        opt.memory = 2ull << 30;
    if (opt.processes == 0)
        opt.processes = 2;
    if (opt.max_queued == 0)
        opt.max_queued = CF_RENDER_QUEUE_PER_PROCESS * opt.processes;
    const struct cf_child_spec spec = {
        .name = "renderer",
        .program = worker,
        .scratch_dir = scratch_base,
        .scratch_key = "render.scratch_dir",
        .scratch_prefix = "coffer-render",
        .count = opt.processes,
        .fd = CF_RENDER_FD,
        .inherit_env = false,
        .hello_ms = HELLO_TIMEOUT_MS,
        .recycle = CF_RENDER_RECYCLE,
        .idle_stop_s = opt.idle_stop_s,
        .run_as = opt.run_as,
        .uid = opt.uid,
        .gid = opt.gid,
        .ops = {.args = args, .hello = on_hello, .begin = begin, .run = run, .lost = lost, .complete = complete,
                .cancel = cancel},
    };
    if (cf_child_start(&fam, &spec, err) != CF_OK) {
        cf_render_stop();
        return CF_EUNAVAIL;
    }
    char idle[48] = "";
    if (opt.idle_stop_s > 0)
        snprintf(idle, sizeof idle, ", each stopped after %u s without a job", opt.idle_stop_s);
    cf_log_info("renderers: %u processes%s%s", opt.processes,
                cf_render_office() ? ", office conversion on" : ", office conversion off", idle);
    return CF_OK;
}

void cf_render_stop(void)
{
    cf_child_stop(&fam); /* the queued jobs fail (cancel) */
    free(worker);
    free(soffice);
    free(scratch_base);
    worker = soffice = scratch_base = NULL;
}

void cf_render_submit(struct cf_render_job *job)
{
    if (cf_child_submit(&fam, &job->link, 0) != CF_OK) {
        job->status = CF_EUNAVAIL;
        snprintf(job->why, sizeof job->why, "the renderers are not running");
        job->done(job);
    }
}

static void async_done(struct cf_render_job *job)
{
    cf_work_reply(job->then); /* job may be gone after this */
}

enum cf_status cf_render_submit_async(struct cf_render_job *job, struct cf_job *then)
{
    job->then = then;
    job->done = async_done;
    return cf_child_submit(&fam, &job->link, opt.max_queued);
}

size_t cf_render_queued(void)
{
    return cf_child_queued(&fam);
}

/* cf_render_run's waiting: one mutex and condition for every waiter (jobs are few and long). */
static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_cond = PTHREAD_COND_INITIALIZER;

/* The job's own ctx belongs to its read function: the waiter is found through a wrapper job. */
struct sync_job {
    struct cf_render_job job;
    struct cf_render_job *orig;
    bool done;
};

static enum cf_status sync_read(void *ctx, uint64_t offset, void *buf, size_t len)
{
    struct sync_job *s = ctx;
    s->orig->pid = s->job.pid; /* the caller's read function may want to know who reads */
    return s->orig->read(s->orig->ctx, offset, buf, len);
}

static void sync_done(struct cf_render_job *job)
{
    struct sync_job *s = (struct sync_job *)job;
    pthread_mutex_lock(&wait_lock);
    s->done = true;
    pthread_cond_broadcast(&wait_cond);
    pthread_mutex_unlock(&wait_lock);
}

enum cf_status cf_render_run(struct cf_render_job *job)
{
    struct sync_job s = {.job = *job, .orig = job};
    s.job.ctx = &s;
    s.job.read = job->read != NULL ? sync_read : NULL;
    s.job.done = sync_done;
    cf_render_submit(&s.job);
    pthread_mutex_lock(&wait_lock);
    while (!s.done)
        pthread_cond_wait(&wait_cond, &wait_lock);
    pthread_mutex_unlock(&wait_lock);
    s.job.ctx = job->ctx;
    s.job.read = job->read;
    s.job.done = job->done;
    s.job.link.next = NULL;
    *job = s.job;
    return job->status;
}

size_t cf_render_pids(int *out, size_t n)
{
    return cf_child_pids(&fam, out, n);
}

void cf_render_states(size_t *up, size_t *stopped, size_t *down)
{
    *up = *stopped = *down = 0;
    cf_child_lock(&fam);
    for (unsigned i = 0; i < cf_child_count(&fam); i++) {
        if (cf_child_up(&fam, i))
            ++*up;
        else if (cf_child_stopped(&fam, i))
            ++*stopped;
        else
            ++*down;
    }
    cf_child_unlock(&fam);
}

bool cf_render_running(void)
{
    return cf_child_running(&fam);
}

bool cf_render_office(void)
{
    cf_child_lock(&fam);
    bool on = cf_child_count(&fam) > 0;
    for (unsigned i = 0; i < cf_child_count(&fam); i++) /* down or stopped: what it said last */
        if (!office[i])
            on = false;
    cf_child_unlock(&fam);
    return on;
}
