/*
 * render.c: the server side of rendering (see render.h).
 *
 * One render thread per renderer process. A thread takes a job from the shared queue, sends JOB,
 * serves READs through the job's read function until a RESULT arrives, checks every field, collects
 * the OUT messages that follow (in order, exactly out_len bytes, at most max_output), checks the
 * output's container header and completes the job. Every receive has a deadline; a renderer that is
 * late, dies or says anything unexpected is killed (its whole process group: the office converter
 * and LibreOffice are in it) and started again, and the job fails with CF_EUNAVAIL.
 *
 * Renderers are started with posix_spawn in a session of their own, with their socket as
 * descriptor 3, stdin and stdout on /dev/null, nothing else open, stderr shared for their log lines.
 */
#include "render.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/magic.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "childio.h"
#include "log.h"

#define HELLO_TIMEOUT_MS (120 * 1000) /* fonts and libraries load in well under a second; slow disks */
#define RESULT_MARGIN_MS 15000        /* beyond max_seconds, for the renderer's own deadline to act */
#define SOCK_BUF (1u << 20)
#define IDLE_CHECK_S 1
#define RESPAWN_MS 5000
#define DEFAULT_SOFFICE "/usr/lib/libreoffice/program/soffice.bin"

extern char **environ;

struct renderer {
    unsigned index;
    pid_t pid;
    int fd;                  /* our end of the socketpair */
    pthread_t thread;
    bool up;
    bool office;             /* its HELLO said office conversion works */
    uint64_t next_id;
    unsigned jobs;           /* run since it started (CF_RENDER_RECYCLE) */
    uint64_t failed_spawn;   /* ms (monotonic) of the last failed start; 0 after a success */
};

static struct renderer *renderers;
static unsigned nrenderers;
static struct cf_render_opts opt;
static char *worker, *soffice, *scratch_base;
static char scratch[256];
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cf_render_job *qhead, *qtail;
static bool stopping;

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

/* ---- the processes -------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* A renderer's own scratch directory, emptied: whatever a killed renderer or LibreOffice left
 * (documents in plaintext, profiles) goes before the next one starts. */
static bool fresh_scratch(const struct renderer *r, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/%u", scratch, r->index);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (mkdir(dir, 0700) != 0) {
        cf_log_error("renderer %u: cannot create %s: %s", r->index, dir, strerror(errno));
        return false;
    }
    if (opt.run_as && chown(dir, opt.uid, opt.gid) != 0) {
        cf_log_error("renderer %u: cannot give %s to uid %u: %s", r->index, dir, (unsigned)opt.uid, strerror(errno));
        return false;
    }
    return true;
}

static bool spawn(struct renderer *r)
{
    int sv[2];
    char dir[300], secs[16], pages[16], input[24], output[24], pixels[24], mem[24], level[16], uid[16], gid[16];
    if (!fresh_scratch(r, dir, sizeof dir))
        return false;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return false;
    int buf = SOCK_BUF;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    snprintf(secs, sizeof secs, "%u", opt.max_seconds);
    snprintf(pages, sizeof pages, "%u", opt.max_pages);
    snprintf(input, sizeof input, "%llu", (unsigned long long)opt.max_input);
    snprintf(output, sizeof output, "%llu", (unsigned long long)opt.max_output);
    snprintf(pixels, sizeof pixels, "%llu", (unsigned long long)opt.max_pixels);
    snprintf(mem, sizeof mem, "%llu", (unsigned long long)opt.memory);
    snprintf(level, sizeof level, "%d", opt.log_level);
    char *argv[32] = {worker, (char *)"--scratch", dir, (char *)"--max-seconds", secs, (char *)"--max-pages", pages,
                      (char *)"--max-input", input, (char *)"--max-output", output, (char *)"--max-pixels", pixels,
                      (char *)"--memory", mem, (char *)"--log-level", level, (char *)"--soffice", soffice};
    size_t argc = 19;
    if (opt.log_json)
        argv[argc++] = (char *)"--log-json";
    if (opt.run_as) {
        snprintf(uid, sizeof uid, "%u", (unsigned)opt.uid);
        snprintf(gid, sizeof gid, "%u", (unsigned)opt.gid);
        argv[argc++] = (char *)"--uid";
        argv[argc++] = uid;
        argv[argc++] = (char *)"--gid";
        argv[argc++] = gid;
    }
    argv[argc] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dflt;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], CF_RENDER_FD);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&fa, CF_RENDER_FD + 1);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    sigfillset(&dflt);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dflt);
    /* A session and process group of its own (no controlling terminal; kill(-pid) reaches the
     * renderer, its office converter and LibreOffice at once). */
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
    /* A minimal environment: nothing of the server's (no COFFER_* variable, no proxy settings);
     * ASan's and UBSan's options pass so that sanitizer builds report in the renderer too. */
    char *env[8];
    size_t envc = 0;
    static const char *const pass[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++)
        for (char **e = environ; *e != NULL; e++)
            if (strncmp(*e, pass[i], strlen(pass[i])) == 0 && (*e)[strlen(pass[i])] == '=')
                env[envc++] = *e;
    env[envc++] = (char *)"PATH=/usr/bin:/bin";
    env[envc++] = (char *)"LANG=C.UTF-8";
    env[envc] = NULL;
    int rc = posix_spawn(&r->pid, worker, &fa, &attr, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        r->pid = 0;
        cf_log_error("renderer %u: cannot start %s: %s", r->index, worker, strerror(rc));
        return false;
    }
    r->fd = sv[0];
    struct cf_render_msg_hello h;
    ssize_t n = cf_recv_until(r->fd, &h, sizeof h, cf_mono_ms() + HELLO_TIMEOUT_MS);
    if (n != (ssize_t)sizeof h || h.h.magic != CF_RENDER_MAGIC || h.h.type != CF_RENDER_HELLO || h.h.id != 0 ||
        h.office > 1 || !cf_field_printable(h.versions, sizeof h.versions)) {
        cf_log_error("renderer %u: did not come up (see its messages above)", r->index);
        kill(-r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
        close(r->fd);
        r->fd = -1;
        return false;
    }
    pthread_mutex_lock(&state_lock);
    r->up = true;
    r->office = h.office == 1;
    r->jobs = 0;
    pthread_mutex_unlock(&state_lock);
    cf_log_debug("renderer %u up (pid %ld): %s%s", r->index, (long)r->pid, h.versions,
                 h.office ? ", office conversion" : "");
    return true;
}

static void kill_renderer(struct renderer *r)
{
    pthread_mutex_lock(&state_lock);
    r->up = false;
    pid_t pid = r->pid;
    r->pid = 0;
    pthread_mutex_unlock(&state_lock);
    /* The socket first: an idle renderer that is merely being replaced sees EOF and exits. */
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
    if (pid <= 0)
        return;
    /* Observe (without reaping, so that the pid and its process group cannot be reused meanwhile)
     * how it ended, giving one that is dying a moment; then SIGKILL the whole group (the office
     * converter and a LibreOffice under way are in it), and reap. */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    for (int i = 0; i < 20; i++) {
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == pid)
            break;
        usleep(10000);
    }
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (si.si_pid == pid && (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED))
        cf_log_error("renderer %u was killed by signal %d", r->index, si.si_status);
    else if (si.si_pid == pid && si.si_code == CLD_EXITED && si.si_status != 0)
        cf_log_error("renderer %u exited with status %d", r->index, si.si_status);
}

/* Between jobs: an idle renderer says nothing; a closed socket or a message means it must go. */
static bool idle_check(struct renderer *r)
{
    char b[64];
    for (;;) {
        ssize_t n = recv(r->fd, b, sizeof b, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            cf_log_error("renderer %u: an unexpected message while idle", r->index);
        return false;
    }
}

static bool ensure_up(struct renderer *r)
{
    if (r->up && idle_check(r))
        return true;
    if (r->up || r->pid > 0)
        kill_renderer(r);
    uint64_t now = cf_mono_ms();
    if (r->failed_spawn != 0 && now - r->failed_spawn < RESPAWN_MS)
        return false;
    if (!spawn(r)) {
        r->failed_spawn = now;
        return false;
    }
    r->failed_spawn = 0;
    return true;
}

enum run_result {
    RUN_DONE,     /* the job's results are set; the renderer may stay */
    RUN_RECYCLE,  /* the results are set; the renderer is replaced (it refused a hostile input) */
    RUN_FAILED,   /* the renderer must be killed; the job fails */
    RUN_GONE,     /* the renderer was dead before the job reached it: retry on a fresh one */
};

/* The OUT messages after a RESULT with out_len bytes. */
static enum run_result collect(struct renderer *r, struct cf_render_job *j, uint64_t id, uint64_t out_len,
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
            return RUN_FAILED;
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
        return RUN_FAILED;
    }
    return RUN_DONE;
bad:
    cf_log_error("renderer %u: a malformed output message", r->index);
    return RUN_FAILED;
}

static enum run_result run(struct renderer *r, struct cf_render_job *j)
{
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
        return RUN_GONE;
    for (;;) {
        union {
            struct cf_render_hdr h;
            struct cf_render_msg_read rd;
            struct cf_render_msg_result res;
        } in;
        ssize_t n = cf_recv_until(r->fd, &in, sizeof in, deadline);
        if (n == 0 && reads == 0)
            return RUN_GONE;
        if (n <= 0) {
            cf_log_error("renderer %u: %s during a job", r->index, n < 0 ? "no answer in time" : "it died");
            snprintf(j->why, sizeof j->why, "%s", n < 0 ? "the renderer passed its deadline" : "the renderer died");
            return RUN_FAILED;
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
                return RUN_FAILED;
            }
            if (send(r->fd, data, sizeof *d + in.rd.len, MSG_NOSIGNAL) != (ssize_t)(sizeof *d + in.rd.len))
                return RUN_FAILED;
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
                return RUN_FAILED;
            }
            j->result = (enum cf_render_result)res->result;
            j->pages = res->pages;
            j->out_width = res->width;
            j->out_height = res->height;
            memcpy(j->why, res->why, sizeof j->why);
            enum run_result rr = res->out_len > 0 ? collect(r, j, id, res->out_len, deadline) : RUN_DONE;
            if (rr != RUN_DONE) {
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
                       ? RUN_RECYCLE
                       : RUN_DONE;
        }
        case CF_RENDER_REPLY_BAD:
            break;
        }
        cf_log_error("renderer %u: %s (type %u)", r->index, why, in.h.type);
        return RUN_FAILED;
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

static void run_job(struct renderer *r, struct cf_render_job *j)
{
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
        return;
    }
    if (!job_ok(j)) {
        j->status = CF_EINVAL;
        snprintf(j->why, sizeof j->why, "an invalid job");
        return;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!ensure_up(r)) {
            cf_log_error("renderer %u is down: a render fails", r->index);
            snprintf(j->why, sizeof j->why, "no renderer is up");
            return;
        }
        enum run_result rr = run(r, j);
        r->jobs++;
        if (rr == RUN_DONE && r->jobs < CF_RENDER_RECYCLE)
            return;
        if (rr == RUN_DONE || rr == RUN_RECYCLE) {
            kill_renderer(r);
            (void)ensure_up(r);
            return;
        }
        if (j->status == CF_OK)
            j->status = CF_EUNAVAIL;
        kill_renderer(r);
        if (rr == RUN_FAILED) {
            if (!ensure_up(r))
                cf_log_error("renderer %u could not be restarted; retrying", r->index);
            return;
        }
        j->status = CF_EUNAVAIL; /* RUN_GONE: once more, on a fresh renderer */
    }
}

static void *render_thread(void *arg)
{
    struct renderer *r = arg;
    for (;;) {
        pthread_mutex_lock(&qlock);
        while (qhead == NULL && !stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += IDLE_CHECK_S;
            if (pthread_cond_timedwait(&qcond, &qlock, &ts) != 0 && qhead == NULL && !stopping) {
                pthread_mutex_unlock(&qlock);
                ensure_up(r);
                pthread_mutex_lock(&qlock);
            }
        }
        if (qhead == NULL) {
            pthread_mutex_unlock(&qlock);
            return NULL;
        }
        struct cf_render_job *j = qhead;
        qhead = j->next;
        if (qhead == NULL)
            qtail = NULL;
        pthread_mutex_unlock(&qlock);
        run_job(r, j);
        j->done(j);
    }
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

static bool make_scratch(char **err)
{
    snprintf(scratch, sizeof scratch, "%s/coffer-render-%ld-XXXXXX", scratch_base, (long)getpid());
    if (mkdtemp(scratch) == NULL) {
        *err = cf_xasprintf("render.scratch_dir %s: cannot create a private directory: %s", scratch_base,
                            strerror(errno));
        scratch[0] = '\0';
        return false;
    }
    if (opt.run_as && chown(scratch, opt.uid, opt.gid) != 0) {
        *err = cf_xasprintf("%s: cannot give the renderers' directory to uid %u: %s", scratch, (unsigned)opt.uid,
                            strerror(errno));
        rmdir(scratch);
        scratch[0] = '\0';
        return false;
    }
    return true;
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
    if (!make_scratch(err)) {
        cf_render_stop();
        return CF_EUNAVAIL;
    }
    nrenderers = opt.processes != 0 ? opt.processes : 2;
    renderers = cf_xcalloc(nrenderers, sizeof *renderers);
    for (unsigned i = 0; i < nrenderers; i++) {
        renderers[i].index = i;
        renderers[i].fd = -1;
        if (!spawn(&renderers[i])) {
            *err = cf_xasprintf("the renderer %s could not start (see its messages above)", worker);
            cf_render_stop();
            return CF_EUNAVAIL;
        }
    }
    stopping = false;
    for (unsigned i = 0; i < nrenderers; i++)
        if (pthread_create(&renderers[i].thread, NULL, render_thread, &renderers[i]) != 0) {
            cf_log_error("cannot start render thread %u", i);
            abort();
        }
    cf_log_info("renderers: %u processes%s", nrenderers,
                cf_render_office() ? ", office conversion on" : ", office conversion off");
    return CF_OK;
}

void cf_render_stop(void)
{
    pthread_mutex_lock(&qlock);
    stopping = true;
    pthread_cond_broadcast(&qcond);
    pthread_mutex_unlock(&qlock);
    for (unsigned i = 0; renderers != NULL && i < nrenderers; i++) {
        if (renderers[i].thread != 0)
            pthread_join(renderers[i].thread, NULL);
        kill_renderer(&renderers[i]);
    }
    /* Jobs still queued (no thread took them): failed, never lost. */
    pthread_mutex_lock(&qlock);
    struct cf_render_job *j = qhead;
    qhead = qtail = NULL;
    pthread_mutex_unlock(&qlock);
    while (j != NULL) {
        struct cf_render_job *next = j->next;
        j->status = CF_EUNAVAIL;
        snprintf(j->why, sizeof j->why, "the renderers are stopping");
        j->done(j);
        j = next;
    }
    pthread_mutex_lock(&state_lock); /* cf_render_pids and cf_render_office read these under it */
    free(renderers);
    renderers = NULL;
    nrenderers = 0;
    pthread_mutex_unlock(&state_lock);
    if (scratch[0] != '\0')
        nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    scratch[0] = '\0';
    free(worker);
    free(soffice);
    free(scratch_base);
    worker = soffice = scratch_base = NULL;
}

void cf_render_submit(struct cf_render_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&qlock);
    if (stopping || renderers == NULL) {
        pthread_mutex_unlock(&qlock);
        job->status = CF_EUNAVAIL;
        snprintf(job->why, sizeof job->why, "the renderers are not running");
        job->done(job);
        return;
    }
    if (qtail == NULL)
        qhead = job;
    else
        qtail->next = job;
    qtail = job;
    pthread_cond_signal(&qcond);
    pthread_mutex_unlock(&qlock);
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
    s.job.next = NULL;
    *job = s.job;
    return job->status;
}

size_t cf_render_pids(int *out, size_t n)
{
    size_t k = 0;
    pthread_mutex_lock(&state_lock);
    for (unsigned i = 0; i < nrenderers && k < n; i++)
        if (renderers[i].up)
            out[k++] = renderers[i].pid;
    pthread_mutex_unlock(&state_lock);
    return k;
}

bool cf_render_running(void)
{
    pthread_mutex_lock(&qlock);
    bool on = renderers != NULL && !stopping;
    pthread_mutex_unlock(&qlock);
    return on;
}

bool cf_render_office(void)
{
    pthread_mutex_lock(&state_lock);
    bool on = nrenderers > 0;
    for (unsigned i = 0; i < nrenderers; i++)
        if (renderers[i].up && !renderers[i].office)
            on = false;
    pthread_mutex_unlock(&state_lock);
    return on;
}
