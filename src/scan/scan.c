/*
 * scan.c: the server side of scanning (see scan.h).
 *
 * The scanner processes are a confined child family (child.h: spawned before any key is read,
 * one thread each, deadlines, kill and restart, the idle check). What is the scanner's own is
 * here: its command line, its HELLO and engine info, and one scan: send SCAN, serve READs through
 * the job's read function until a VERDICT arrives, check every field, complete the job. Every
 * receive has a deadline; a scanner that is late, dies or says anything unexpected is killed and
 * started again, and the job fails with CF_EUNAVAIL. A streaming job (cf_scan_submit_stream: a tus
 * upload scanned while it arrives) is admitted only when a scanner is free and fewer than K-1 would
 * stream (cf_child_submit_held); its reads may wait for the client, which pushes the deadline back,
 * and a read that fails (the stream was cancelled) is answered with no data: the scanner fails the
 * scan and stays up, and the job has no verdict.
 */
#include "scan.h"
#include "storage/fault.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <signal.h>
#include <unistd.h>

#include "child.h"
#include "childio.h"
#include "config.h"
#include "log.h"
#include "metrics.h"

#define HELLO_TIMEOUT_MS (10 * 60 * 1000) /* the official signatures take ~15 s to load; allow slow disks */
#define VERDICT_MARGIN_MS 15000           /* beyond scan.max_seconds, for the scanner's own limit to act */

static struct cf_child_family fam = CF_CHILD_FAMILY_INIT;
static struct cf_scan_msg_info *infos; /* each scanner's, from its last HELLO (cf_child_lock) */
static const struct cf_config *cfg;
static char program[PATH_MAX]; /* coffer-scan, beside coffer (cf_child_program); "": not started */
static bool run_as;              /* scanners drop to run_uid/run_gid first thing (cf_scan_run_as) */
static uid_t run_uid;
static gid_t run_gid;

static struct cf_scan_job *job_of(struct cf_child_job *l)
{
    return (struct cf_scan_job *)(void *)((char *)l - offsetof(struct cf_scan_job, link));
}

static bool info_ok(const struct cf_scan_msg_info *i)
{
    return cf_field_printable(i->engine, sizeof i->engine) && cf_field_printable(i->database, sizeof i->database) && i->development <= 1;
}

/* ---- the family's hooks (child.h) ------------------------------------------------------------ */

static void args(const struct cf_child *c, const char *scratch, struct cf_child_args *a)
{
    (void)c;
    cf_child_arg(a, program);
    cf_child_arg(a, "--db");
    cf_child_arg(a, cfg->scan.database_dir);
    cf_child_arg(a, "--scratch");
    cf_child_arg(a, scratch);
    cf_child_arg(a, "--max-file");
    cf_child_argf(a, "%llu", (unsigned long long)cfg->limits.max_file_bytes);
    cf_child_arg(a, "--max-seconds");
    cf_child_argf(a, "%llu", (unsigned long long)cfg->scan.max_seconds);
    if (cfg->scan.development)
        cf_child_arg(a, "--development");
    /* The scanner logs in the server's format and at its level (log.h). */
    cf_child_arg(a, "--log-level");
    cf_child_argf(a, "%d", cfg->log.level);
    if (cfg->log.format == CF_LOG_JSON)
        cf_child_arg(a, "--log-json");
    if (run_as) { /* the scanner switches to this account before it reads anything (scanner.c) */
        cf_child_arg(a, "--uid");
        cf_child_argf(a, "%u", (unsigned)run_uid);
        cf_child_arg(a, "--gid");
        cf_child_argf(a, "%u", (unsigned)run_gid);
    }
}

/* A HELLO: at start, and after a reload (SIGUSR1) with the new engine's info. */
static bool hello_ok(const void *m, size_t n, struct cf_scan_msg_hello *h)
{
    if (n != sizeof *h)
        return false;
    memcpy(h, m, sizeof *h);
    return h->h.magic == CF_SCAN_MAGIC && h->h.type == CF_SCAN_HELLO && info_ok(&h->info);
}

static bool on_hello(struct cf_child *c, const void *m, size_t n)
{
    struct cf_scan_msg_hello h;
    if (!hello_ok(m, n, &h))
        return false;
    infos[c->index] = h.info;
    return true;
}

static bool on_idle(struct cf_child *c, const void *m, size_t n)
{
    if (!on_hello(c, m, n))
        return false;
    cf_log_info("scanner %u: new engine (%llu signatures)", c->index, (unsigned long long)infos[c->index].signatures);
    return true;
}

static bool begin(struct cf_child *c, struct cf_child_job *l)
{
    struct cf_scan_job *j = job_of(l);
    j->status = CF_EUNAVAIL;
    if (cf_fault(CF_FAULT_SCAN)) { /* fault builds: as if the scanner had died mid-scan */
        cf_log_error("scanner %u: injected fault: an upload fails with 503", c->index);
        cf_metrics_scan(j->status, 0);
        return false;
    }
    return true;
}

static void lost(struct cf_child_job *l, const char *why)
{
    (void)why;
    struct cf_scan_job *j = job_of(l);
    if (j->status == CF_OK)
        j->status = CF_EUNAVAIL;
}

static void end(struct cf_child *c, struct cf_child_job *l)
{
    (void)c;
    struct cf_scan_job *j = job_of(l);
    if (!j->stream) /* a streaming scan's outcome is counted by its user (metrics.h) */
        cf_metrics_scan(j->status, j->verdict.result);
}

static void complete(struct cf_child_job *l)
{
    struct cf_scan_job *j = job_of(l);
    j->done(j);
}

static void restarted(struct cf_child *c)
{
    (void)c;
    cf_metrics_scanner_restart();
}

/* ---- one scan --------------------------------------------------------------------------------- */

/* Runs one scan on c (the family's ops.run). */
static enum cf_child_run run(struct cf_child *c, struct cf_child_job *l)
{
    struct cf_scan_job *j = job_of(l);
    static _Thread_local uint8_t data[sizeof(struct cf_scan_msg_data) + CF_SCAN_READ_MAX];
    uint64_t id = ++c->next_id;
    uint64_t start = cf_mono_ms(), reads = 0;
    bool cancelled = false; /* a streaming job's read failed: the scanner is told, the verdict is void */
    uint64_t deadline = start + cfg->scan.max_seconds * 1000 + VERDICT_MARGIN_MS;
    struct cf_scan_msg_scan m = {.h = {CF_SCAN_MAGIC, CF_SCAN_SCAN, id}, .size = j->size};
    if (send(c->fd, &m, sizeof m, MSG_NOSIGNAL) != (ssize_t)sizeof m)
        return CF_CHILD_GONE;
    for (;;) {
        union {
            struct cf_scan_hdr h;
            struct cf_scan_msg_read rd;
            struct cf_scan_msg_verdict v;
            struct cf_scan_msg_hello hello;
        } in;
        ssize_t n = cf_recv_until(c->fd, &in, sizeof in, deadline);
        if (n == 0 && reads == 0)
            return CF_CHILD_GONE; /* died before this job (killed while idle): the file played no part */
        if (n <= 0) {
            cf_log_error("scanner %u: %s during a scan", c->index, n < 0 ? "no answer in time" : "it died");
            return CF_CHILD_FAILED;
        }
        const char *why;
        switch (cf_scan_reply_check(&in, (size_t)n, id, j->size, &why)) {
        case CF_SCAN_REPLY_HELLO:
            cf_child_lock(&fam); /* a reload finished while we scan */
            infos[c->index] = in.hello.info;
            cf_child_unlock(&fam);
            continue;
        case CF_SCAN_REPLY_READ: {
            const struct cf_scan_msg_read *rd = &in.rd;
            struct cf_scan_msg_data *d = (void *)data;
            *d = (struct cf_scan_msg_data){.h = {CF_SCAN_MAGIC, CF_SCAN_DATA, id}, .offset = rd->offset, .len = rd->len};
            uint64_t waited = j->waited_ms;
            enum cf_status rst = cancelled ? CF_EUNAVAIL : j->read(j->ctx, rd->offset, data + sizeof *d, rd->len);
            deadline += j->waited_ms - waited; /* a streaming read waited for the client: not the scanner's time */
            if (rst != CF_OK && j->stream) {
                /* The stream was cancelled (client idle, upload gone, stopping): this READ and every
                 * later one get no data, the scanner fails the scan and stays up; its verdict is void. */
                if (!cancelled)
                    cf_log_info("scanner %u: a streaming scan was cancelled", c->index);
                cancelled = true;
                d->len = 0;
                if (send(c->fd, data, sizeof *d, MSG_NOSIGNAL) != (ssize_t)sizeof *d)
                    return CF_CHILD_FAILED;
                reads++;
                continue;
            }
            if (rst != CF_OK) {
                cf_log_error("scanner %u: the file could not be read back for scanning", c->index);
                j->status = CF_EIO;
                return CF_CHILD_FAILED;
            }
            if (send(c->fd, data, sizeof *d + rd->len, MSG_NOSIGNAL) != (ssize_t)(sizeof *d + rd->len))
                return CF_CHILD_FAILED;
            reads++;
            continue;
        }
        case CF_SCAN_REPLY_VERDICT: {
            const struct cf_scan_msg_verdict *v = &in.v;
            cf_log_debug("scanner %u: %llu bytes, %llu reads, %llu ms: result %u %s", c->index,
                         (unsigned long long)j->size, (unsigned long long)reads,
                         (unsigned long long)(cf_mono_ms() - start), v->result, v->signature);
            j->verdict = *v;
            j->status = cancelled ? CF_EUNAVAIL : CF_OK;
            return CF_CHILD_DONE;
        }
        case CF_SCAN_REPLY_BAD:
            break;
        }
        cf_log_error("scanner %u: %s (type %u)", c->index, why, in.h.type);
        return CF_CHILD_FAILED;
    }
}

enum cf_scan_reply cf_scan_reply_check(const void *m, size_t n, uint64_t id, uint64_t size, const char **why)
{
    struct cf_scan_hdr h;
    *why = NULL;
    if (n < sizeof h) {
        *why = "garbage during a scan";
        return CF_SCAN_REPLY_BAD;
    }
    memcpy(&h, m, sizeof h);
    if (h.magic != CF_SCAN_MAGIC) {
        *why = "garbage during a scan";
        return CF_SCAN_REPLY_BAD;
    }
    if (h.type == CF_SCAN_HELLO && n == sizeof(struct cf_scan_msg_hello)) {
        struct cf_scan_msg_hello hello;
        memcpy(&hello, m, sizeof hello);
        if (info_ok(&hello.info))
            return CF_SCAN_REPLY_HELLO;
    }
    if (h.id != id) {
        *why = "a message for another scan";
        return CF_SCAN_REPLY_BAD;
    }
    if (h.type == CF_SCAN_READ && n == sizeof(struct cf_scan_msg_read)) {
        struct cf_scan_msg_read rd;
        memcpy(&rd, m, sizeof rd);
        if (rd.len == 0 || rd.len > CF_SCAN_READ_MAX || rd.offset > size || size - rd.offset < rd.len) {
            *why = "a read outside the file";
            return CF_SCAN_REPLY_BAD;
        }
        return CF_SCAN_REPLY_READ;
    }
    if (h.type == CF_SCAN_VERDICT && n == sizeof(struct cf_scan_msg_verdict)) {
        struct cf_scan_msg_verdict v;
        memcpy(&v, m, sizeof v);
        if (v.result > CF_SCAN_ERROR || !cf_field_printable(v.signature, sizeof v.signature) ||
            !cf_field_printable(v.mime, sizeof v.mime) || strchr(v.mime, '/') == NULL || !info_ok(&v.info) ||
            (v.result != CF_SCAN_CLEAN && v.signature[0] == '\0')) {
            *why = "a malformed verdict";
            return CF_SCAN_REPLY_BAD;
        }
        return CF_SCAN_REPLY_VERDICT;
    }
    *why = "an unexpected message";
    return CF_SCAN_REPLY_BAD;
}

/* Whether name is a signature database libclamav loads (its CLI_DBEXT, less the files that only
 * allow-list, ignore or configure: a directory of those alone holds no signature). */
static bool is_signature_file(const char *name)
{
    static const char *const exts[] = {"cvd", "cld", "cud", "db", "hdb", "hdu", "hsb", "hsu", "mdb", "mdu", "msb",
                                       "msu", "ndb", "ndu", "ldb", "ldu", "sdb", "zmd", "rmd", "cdb", "cbc", "pdb",
                                       "gdb", "wdb", "idb", "ioc", "yar", "yara", "imp"};
    const char *dot = strrchr(name, '.');
    if (dot == NULL || dot == name)
        return false;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strcasecmp(dot + 1, exts[i]) == 0)
            return true;
    return false;
}

enum cf_status cf_scan_check_config(const struct cf_config *c, char **err)
{
    const char *base = c->scan.scratch_dir, *db = c->scan.database_dir;
    struct statfs sf;
    char prog[PATH_MAX];
    cf_child_program("coffer-scan", prog, sizeof prog);
    if (access(prog, X_OK) != 0) {
        *err = cf_xasprintf("the scanner program %s is missing or not executable (%s): it is installed beside coffer",
                            prog, strerror(errno));
        return CF_EINVAL;
    }
    if (statfs(base, &sf) != 0) {
        *err = cf_xasprintf("scan.scratch_dir: %s: %s", base, strerror(errno));
        return CF_EINVAL;
    }
    if (sf.f_type != TMPFS_MAGIC) {
        *err = cf_xasprintf("scan.scratch_dir: %s is not a tmpfs: the scanners extract archive members there, "
                            "in plaintext, and they must never reach a persistent disk",
                            base);
        return CF_EINVAL;
    }
    if (c->scan.development)
        return CF_OK;
    DIR *d = opendir(db);
    if (d == NULL) {
        *err = cf_xasprintf("scan.database_dir: %s: %s", db, strerror(errno));
        return CF_EINVAL;
    }
    unsigned found = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && is_signature_file(de->d_name))
            found++;
    closedir(d);
    if (found == 0) {
        *err = cf_xasprintf("scan.database_dir: %s holds no signature database (*.cvd, *.cld, *.hdb, *.ndb, *.ldb, "
                            "...): run freshclam (scan.development allows that, for development only)",
                            db);
        return CF_EINVAL;
    }
    return CF_OK;
}

void cf_scan_run_as(uid_t uid, gid_t gid)
{
    run_as = true;
    run_uid = uid;
    run_gid = gid;
}

enum cf_status cf_scan_start(const struct cf_config *c, char **err)
{
    if (cf_scan_check_config(c, err) != CF_OK)
        return CF_EUNAVAIL;
    cfg = c;
    cf_child_program("coffer-scan", program, sizeof program);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = cfg->scan.processes != 0 ? cfg->scan.processes : (cores < 2 ? 2 : (unsigned)cores);
    infos = cf_xcalloc(n, sizeof *infos);
    const struct cf_child_spec spec = {
        .name = "scanner",
        .program = program,
        .scratch_dir = cfg->scan.scratch_dir,
        .scratch_key = "scan.scratch_dir",
        .scratch_prefix = "coffer-scan",
        .count = n,
        .fd = CF_SCAN_FD,
        .inherit_env = true,
        .hello_ms = HELLO_TIMEOUT_MS,
        .run_as = run_as,
        .uid = run_uid,
        .gid = run_gid,
        .ops = {.args = args, .hello = on_hello, .idle = on_idle, .begin = begin, .run = run, .lost = lost,
                .end = end, .complete = complete, .restarted = restarted},
    };
    enum cf_status st = cf_child_start(&fam, &spec, err);
    if (st == CF_EUNAVAIL) {
        free(*err);
        *err = cf_xasprintf("the virus scanner could not start with the signatures in %s (is the directory "
                            "empty? scan.development allows that for development only)",
                            cfg->scan.database_dir);
    }
    if (st != CF_OK) {
        cf_scan_stop();
        return CF_EUNAVAIL;
    }
    if (infos[0].development)
        cf_log_warn("DEVELOPMENT MODE: the virus scanner has NO SIGNATURES; uploads are not checked for malware");
    else
        cf_log_info("virus scanner: %s, %llu signatures, %u processes", infos[0].engine,
                    (unsigned long long)infos[0].signatures, n);
    return CF_OK;
}

void cf_scan_stop(void)
{
    if (program[0] == '\0')
        return;
    cf_child_stop(&fam);
    cf_child_lock(&fam);
    free(infos);
    infos = NULL;
    cf_child_unlock(&fam);
    program[0] = '\0';
}

void cf_scan_submit(struct cf_scan_job *job)
{
    /* Refused only when the scanners are not running: the job then fails as a dead scanner's would. */
    if (cf_child_submit(&fam, &job->link, 0) != CF_OK) {
        job->status = CF_EUNAVAIL;
        job->done(job);
    }
}

bool cf_scan_submit_stream(struct cf_scan_job *job)
{
    job->stream = true;
    return cf_child_submit_held(&fam, &job->link);
}

bool cf_scan_stopping(void)
{
    return cf_child_stopping(&fam);
}

void cf_scan_reload(void)
{
    cf_child_signal(&fam, SIGUSR1);
}

const char *cf_scan_state(void)
{
    const char *st = "down";
    cf_child_lock(&fam);
    for (unsigned i = 0; i < cf_child_count(&fam); i++)
        if (cf_child_up(&fam, i)) {
            st = infos[i].development ? "development: no signatures" : "ok";
            break;
        }
    cf_child_unlock(&fam);
    return st;
}

size_t cf_scan_pids(int *out, size_t n)
{
    return cf_child_pids(&fam, out, n);
}

size_t cf_scan_info(struct cf_scan_status *out, size_t n)
{
    size_t k = 0;
    cf_child_lock(&fam);
    for (unsigned i = 0; i < cf_child_count(&fam) && k < n; i++, k++) {
        out[k].up = cf_child_up(&fam, i);
        out[k].info = infos[i];
    }
    cf_child_unlock(&fam);
    return k;
}
