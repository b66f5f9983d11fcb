/*
 * scan.c: the server side of scanning (see scan.h).
 *
 * One scan thread per scanner process. A thread takes a job from the shared queue, sends SCAN,
 * serves READs through the job's read function until a VERDICT arrives, checks every field, and
 * completes the job. Every receive has a deadline; a scanner that is late, dies or says anything
 * unexpected is killed and started again by the same thread, and the job fails with CF_EUNAVAIL.
 * A streaming job (cf_scan_submit_stream: a tus upload scanned while it arrives) is admitted only
 * when a thread is idle and fewer than K-1 threads would stream; its reads may wait for the client,
 * which pushes the deadline back, and a read that fails (the stream was cancelled) is answered with
 * no data: the scanner fails the scan and stays up, and the job has no verdict.
 *
 * Scanners are started with posix_spawn (no copy of the server's memory, so never of its keys),
 * in a session of their own (no controlling terminal), with their socket as descriptor 3, stdin and
 * stdout on /dev/null, nothing else open, and stderr shared with the server for their diagnostics.
 */
#include "scan.h"
#include "storage/fault.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#include "childio.h"
#include "config.h"
#include "log.h"
#include "metrics.h"

#define HELLO_TIMEOUT_MS (10 * 60 * 1000) /* the official signatures take ~15 s to load; allow slow disks */
#define VERDICT_MARGIN_MS 15000           /* beyond scan.max_seconds, for the scanner's own limit to act */
#define SOCK_BUF (1u << 20)
#define IDLE_CHECK_S 1                    /* an idle scan thread checks on its scanner this often */
#define RESPAWN_MS 5000                   /* a scanner that fails to start is retried this often */

extern char **environ;

struct scanner {
    unsigned index;
    pid_t pid;
    int fd;                          /* our end of the socketpair */
    pthread_t thread;
    struct cf_scan_msg_info info;    /* from the last HELLO (guarded by state_lock) */
    bool up;
    uint64_t next_id;
    uint64_t failed_spawn;           /* ms (monotonic) of the last failed restart; 0 after a success */
};

static struct scanner *scanners;
static unsigned nscanners;
static const struct cf_config *cfg;
static char *self_path;
static bool run_as;              /* scanners drop to run_uid/run_gid first thing (cf_scan_run_as) */
static uid_t run_uid;
static gid_t run_gid;
static char scratch[256];
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cf_scan_job *qhead, *qtail;
static bool stopping;
static unsigned nbusy;            /* scan threads running a job (qlock) */
static unsigned nstreaming;       /* ... of which streaming scans (qlock) */

static bool info_ok(const struct cf_scan_msg_info *i)
{
    return cf_field_printable(i->engine, sizeof i->engine) && cf_field_printable(i->database, sizeof i->database) && i->development <= 1;
}

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

/* A scanner's own scratch directory, emptied: what a killed scanner left behind (extracted members
 * are plaintext, in memory) goes before the next one starts. */
static bool fresh_scratch(const struct scanner *s, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/%u", scratch, s->index);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (mkdir(dir, 0700) != 0) {
        cf_log_error("scanner %u: cannot create %s: %s", s->index, dir, strerror(errno));
        return false;
    }
    if (run_as && chown(dir, run_uid, run_gid) != 0) { /* as root, before the server drops too */
        cf_log_error("scanner %u: cannot give %s to uid %u: %s", s->index, dir, (unsigned)run_uid, strerror(errno));
        return false;
    }
    return true;
}

static bool spawn(struct scanner *s)
{
    int sv[2];
    char max_file[24], max_seconds[16], dir[300];
    if (!fresh_scratch(s, dir, sizeof dir))
        return false;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return false;
    int buf = SOCK_BUF;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    snprintf(max_file, sizeof max_file, "%llu", (unsigned long long)cfg->limits.max_file_bytes);
    snprintf(max_seconds, sizeof max_seconds, "%llu", (unsigned long long)cfg->scan.max_seconds);
    char uid[16], gid[16], level[16];
    char *argv[20] = {self_path, (char *)"scan-worker", (char *)"--db", cfg->scan.database_dir, (char *)"--scratch",
                      dir, (char *)"--max-file", max_file, (char *)"--max-seconds", max_seconds};
    size_t argc = 10;
    if (cfg->scan.development)
        argv[argc++] = (char *)"--development";
    /* The scanner logs in the server's format and at its level (log.h). */
    snprintf(level, sizeof level, "%d", cfg->log.level);
    argv[argc++] = (char *)"--log-level";
    argv[argc++] = level;
    if (cfg->log.format == CF_LOG_JSON)
        argv[argc++] = (char *)"--log-json";
    if (run_as) { /* the scanner switches to this account before it reads anything (scanner.c) */
        snprintf(uid, sizeof uid, "%u", (unsigned)run_uid);
        snprintf(gid, sizeof gid, "%u", (unsigned)run_gid);
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
    posix_spawn_file_actions_adddup2(&fa, sv[1], CF_SCAN_FD); /* dup2 clears CLOEXEC on fd 3 */
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0); /* it logs on stderr only */
    /* Nothing else of ours: not a client socket, not a store file (restarts happen while serving). */
    posix_spawn_file_actions_addclosefrom_np(&fa, CF_SCAN_FD + 1);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    sigfillset(&dflt);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dflt);
    /* A session of its own (setsid): no controlling terminal, so a compromised parser cannot push
     * keystrokes into the terminal the server was started from (TIOCSTI), and a Ctrl-C there does
     * not reach it. The scanner checks this again first thing, and its seccomp filter refuses
     * terminal ioctls on the stderr it shares with us. */
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
    int rc = posix_spawn(&s->pid, self_path, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        cf_log_error("scanner %u: cannot start: %s", s->index, strerror(rc));
        return false;
    }
    s->fd = sv[0];
    struct cf_scan_msg_hello h;
    ssize_t n = cf_recv_until(s->fd, &h, sizeof h, cf_mono_ms() + HELLO_TIMEOUT_MS);
    if (n != (ssize_t)sizeof h || h.h.magic != CF_SCAN_MAGIC || h.h.type != CF_SCAN_HELLO || !info_ok(&h.info)) {
        cf_log_error("scanner %u: did not come up (see its messages above)", s->index);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
        close(s->fd);
        s->fd = -1;
        return false;
    }
    pthread_mutex_lock(&state_lock);
    s->info = h.info;
    s->up = true;
    pthread_mutex_unlock(&state_lock);
    return true;
}

static void kill_scanner(struct scanner *s)
{
    /* The pid is forgotten (under the lock cf_scan_reload signals under) before it is reaped, so
     * no signal can reach a recycled pid. */
    pthread_mutex_lock(&state_lock);
    s->up = false;
    pid_t pid = s->pid;
    s->pid = 0;
    pthread_mutex_unlock(&state_lock);
    if (pid > 0) {
        int status = 0;
        pid_t got = 0;
        /* A scanner that died is a zombie a moment after its socket closes: give it that moment, so
         * the log says how it ended, before killing one that is merely stuck. */
        for (int i = 0; i < 20 && (got = waitpid(pid, &status, WNOHANG)) == 0; i++)
            usleep(10000);
        if (got == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        } else if (got == pid && WIFSIGNALED(status)) {
            cf_log_error("scanner %u was killed by signal %d", s->index, WTERMSIG(status));
        } else if (got == pid && WIFEXITED(status)) {
            cf_log_error("scanner %u exited with status %d", s->index, WEXITSTATUS(status));
        }
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

/* Between scans: takes what an idle scanner said (a HELLO after a reload) and notices its death.
 * False if it must be restarted. */
static bool idle_check(struct scanner *s)
{
    for (;;) {
        struct cf_scan_msg_hello h;
        ssize_t n = recv(s->fd, &h, sizeof h, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n < 0 && errno == EINTR)
            continue;
        if (n == (ssize_t)sizeof h && h.h.magic == CF_SCAN_MAGIC && h.h.type == CF_SCAN_HELLO && info_ok(&h.info)) {
            pthread_mutex_lock(&state_lock);
            s->info = h.info;
            pthread_mutex_unlock(&state_lock);
            cf_log_info("scanner %u: new engine (%llu signatures)", s->index, (unsigned long long)h.info.signatures);
            continue;
        }
        if (n != 0)
            cf_log_error("scanner %u: an unexpected message while idle", s->index);
        return false;
    }
}

/* Makes sure s is up: restarts it if it died (after a failed restart, retries at most every
 * RESPAWN_MS: a broken signature directory must not turn into a busy loop). */
static bool ensure_up(struct scanner *s)
{
    if (s->up && idle_check(s))
        return true;
    if (s->up || s->pid > 0)
        kill_scanner(s);
    uint64_t now = cf_mono_ms();
    if (s->failed_spawn != 0 && now - s->failed_spawn < RESPAWN_MS)
        return false;
    if (!spawn(s)) {
        s->failed_spawn = now;
        return false;
    }
    s->failed_spawn = 0;
    cf_log_info("scanner %u restarted", s->index);
    cf_metrics_scanner_restart();
    return true;
}

enum run_result {
    RUN_DONE,      /* j->verdict is set */
    RUN_FAILED,    /* the scanner must be restarted; the job fails */
    RUN_GONE,      /* the scanner was already dead when the job reached it (it read nothing): retry */
};

/* Runs one scan on s. */
static enum run_result run(struct scanner *s, struct cf_scan_job *j)
{
    static _Thread_local uint8_t data[sizeof(struct cf_scan_msg_data) + CF_SCAN_READ_MAX];
    uint64_t id = ++s->next_id;
    uint64_t start = cf_mono_ms(), reads = 0;
    bool cancelled = false; /* a streaming job's read failed: the scanner is told, the verdict is void */
    uint64_t deadline = start + cfg->scan.max_seconds * 1000 + VERDICT_MARGIN_MS;
    struct cf_scan_msg_scan m = {.h = {CF_SCAN_MAGIC, CF_SCAN_SCAN, id}, .size = j->size};
    if (send(s->fd, &m, sizeof m, MSG_NOSIGNAL) != (ssize_t)sizeof m)
        return RUN_GONE;
    for (;;) {
        union {
            struct cf_scan_hdr h;
            struct cf_scan_msg_read rd;
            struct cf_scan_msg_verdict v;
            struct cf_scan_msg_hello hello;
        } in;
        ssize_t n = cf_recv_until(s->fd, &in, sizeof in, deadline);
        if (n == 0 && reads == 0)
            return RUN_GONE; /* died before this job (killed while idle): the file played no part */
        if (n <= 0) {
            cf_log_error("scanner %u: %s during a scan", s->index, n < 0 ? "no answer in time" : "it died");
            return RUN_FAILED;
        }
        const char *why;
        switch (cf_scan_reply_check(&in, (size_t)n, id, j->size, &why)) {
        case CF_SCAN_REPLY_HELLO:
            pthread_mutex_lock(&state_lock); /* a reload finished while we scan */
            s->info = in.hello.info;
            pthread_mutex_unlock(&state_lock);
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
                    cf_log_info("scanner %u: a streaming scan was cancelled", s->index);
                cancelled = true;
                d->len = 0;
                if (send(s->fd, data, sizeof *d, MSG_NOSIGNAL) != (ssize_t)sizeof *d)
                    return RUN_FAILED;
                reads++;
                continue;
            }
            if (rst != CF_OK) {
                cf_log_error("scanner %u: the file could not be read back for scanning", s->index);
                j->status = CF_EIO;
                return RUN_FAILED;
            }
            if (send(s->fd, data, sizeof *d + rd->len, MSG_NOSIGNAL) != (ssize_t)(sizeof *d + rd->len))
                return RUN_FAILED;
            reads++;
            continue;
        }
        case CF_SCAN_REPLY_VERDICT: {
            const struct cf_scan_msg_verdict *v = &in.v;
            cf_log_debug("scanner %u: %llu bytes, %llu reads, %llu ms: result %u %s", s->index,
                         (unsigned long long)j->size, (unsigned long long)reads,
                         (unsigned long long)(cf_mono_ms() - start), v->result, v->signature);
            j->verdict = *v;
            j->status = cancelled ? CF_EUNAVAIL : CF_OK;
            return RUN_DONE;
        }
        case CF_SCAN_REPLY_BAD:
            break;
        }
        cf_log_error("scanner %u: %s (type %u)", s->index, why, in.h.type);
        return RUN_FAILED;
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

/* A scan thread is done with its job (a streaming one if stream). */
static void release(bool stream)
{
    pthread_mutex_lock(&qlock);
    nbusy--;
    if (stream)
        nstreaming--;
    pthread_mutex_unlock(&qlock);
}

static void *scan_thread(void *arg)
{
    struct scanner *s = arg;
    for (;;) {
        pthread_mutex_lock(&qlock);
        while (qhead == NULL && !stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += IDLE_CHECK_S;
            if (pthread_cond_timedwait(&qcond, &qlock, &ts) != 0 && qhead == NULL && !stopping) {
                pthread_mutex_unlock(&qlock);
                ensure_up(s); /* idle: keep the scanner alive and its info fresh */
                pthread_mutex_lock(&qlock);
            }
        }
        if (qhead == NULL) {
            pthread_mutex_unlock(&qlock);
            return NULL;
        }
        struct cf_scan_job *j = qhead;
        qhead = j->next;
        if (qhead == NULL)
            qtail = NULL;
        nbusy++;
        pthread_mutex_unlock(&qlock);
        bool stream = j->stream;

        j->status = CF_EUNAVAIL;
        if (cf_fault(CF_FAULT_SCAN)) { /* fault builds: as if the scanner had died mid-scan */
            cf_log_error("scanner %u: injected fault: an upload fails with 503", s->index);
            cf_metrics_scan(j->status, 0);
            release(stream);
            j->done(j);
            continue;
        }
        for (int attempt = 0; attempt < 2; attempt++) {
            if (!ensure_up(s)) {
                cf_log_error("scanner %u is down: an upload fails with 503", s->index);
                break;
            }
            enum run_result rr = run(s, j);
            if (rr == RUN_DONE)
                break;
            if (j->status == CF_OK)
                j->status = CF_EUNAVAIL;
            kill_scanner(s);
            if (rr == RUN_FAILED) {
                if (!cf_scan_stopping() && !ensure_up(s))
                    cf_log_error("scanner %u could not be restarted; retrying", s->index);
                break;
            }
        }
        if (!stream) /* a streaming scan's outcome is counted by its user (metrics.h) */
            cf_metrics_scan(j->status, j->verdict.result);
        release(stream); /* before done: whoever learns of the outcome finds the scanner free */
        j->done(j);      /* j may be gone after this */
    }
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

/* A private scratch directory on tmpfs (cf_scan_check_config) for extracted archive members. */
static bool make_scratch(char **err)
{
    const char *base = cfg->scan.scratch_dir;
    /* A server that was killed left its scratch behind: remove those of processes that are gone. */
    DIR *d = opendir(base);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        long pid;
        char stale[512];
        if (sscanf(de->d_name, "coffer-scan-%ld-", &pid) == 1 && pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            snprintf(stale, sizeof stale, "%s/%s", base, de->d_name);
            nftw(stale, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        }
    }
    if (d != NULL)
        closedir(d);
    snprintf(scratch, sizeof scratch, "%s/coffer-scan-%ld-XXXXXX", base, (long)getpid());
    if (mkdtemp(scratch) == NULL) {
        *err = cf_xasprintf("scan.scratch_dir %s: cannot create a private directory: %s", base, strerror(errno));
        return false;
    }
    if (run_as && chown(scratch, run_uid, run_gid) != 0) {
        *err = cf_xasprintf("%s: cannot give the scanners' directory to uid %u: %s", scratch, (unsigned)run_uid,
                            strerror(errno));
        rmdir(scratch);
        return false;
    }
    return true;
}

void cf_scan_run_as(uid_t uid, gid_t gid)
{
    run_as = true;
    run_uid = uid;
    run_gid = gid;
}

enum cf_status cf_scan_start(const struct cf_config *c, const char *self, char **err)
{
    if (cf_scan_check_config(c, err) != CF_OK)
        return CF_EUNAVAIL;
    cfg = c;
    self_path = cf_xstrdup(self);
    if (!make_scratch(err))
        return CF_EUNAVAIL;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    nscanners = cfg->scan.processes != 0 ? cfg->scan.processes : (cores < 2 ? 2 : (unsigned)cores);
    scanners = cf_xcalloc(nscanners, sizeof *scanners);
    for (unsigned i = 0; i < nscanners; i++) {
        scanners[i].index = i;
        scanners[i].fd = -1;
        if (!spawn(&scanners[i])) {
            *err = cf_xasprintf("the virus scanner could not start with the signatures in %s (is the directory "
                                "empty? scan.development allows that for development only)",
                                cfg->scan.database_dir);
            cf_scan_stop();
            return CF_EUNAVAIL;
        }
    }
    stopping = false;
    for (unsigned i = 0; i < nscanners; i++)
        if (pthread_create(&scanners[i].thread, NULL, scan_thread, &scanners[i]) != 0) {
            cf_log_error("cannot start scan thread %u", i);
            abort();
        }
    if (scanners[0].info.development)
        cf_log_warn("DEVELOPMENT MODE: the virus scanner has NO SIGNATURES; uploads are not checked for malware");
    else
        cf_log_info("virus scanner: %s, %llu signatures, %u processes", scanners[0].info.engine,
                    (unsigned long long)scanners[0].info.signatures, nscanners);
    return CF_OK;
}

void cf_scan_stop(void)
{
    if (scanners == NULL)
        return;
    pthread_mutex_lock(&qlock);
    stopping = true;
    pthread_cond_broadcast(&qcond);
    pthread_mutex_unlock(&qlock);
    for (unsigned i = 0; i < nscanners; i++) {
        if (scanners[i].thread != 0)
            pthread_join(scanners[i].thread, NULL);
        kill_scanner(&scanners[i]);
    }
    free(scanners);
    scanners = NULL;
    if (scratch[0] != '\0')
        nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(self_path);
    self_path = NULL;
}

void cf_scan_submit(struct cf_scan_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&qlock);
    if (qtail == NULL)
        qhead = job;
    else
        qtail->next = job;
    qtail = job;
    pthread_cond_signal(&qcond);
    pthread_mutex_unlock(&qlock);
}

bool cf_scan_submit_stream(struct cf_scan_job *job)
{
    bool ok;
    job->next = NULL;
    job->stream = true;
    pthread_mutex_lock(&qlock);
    ok = scanners != NULL && !stopping && qhead == NULL && nbusy < nscanners && nstreaming + 1 < nscanners;
    if (ok) {
        nstreaming++;
        qhead = qtail = job;
        pthread_cond_signal(&qcond);
    }
    pthread_mutex_unlock(&qlock);
    return ok;
}

bool cf_scan_stopping(void)
{
    pthread_mutex_lock(&qlock);
    bool st = stopping;
    pthread_mutex_unlock(&qlock);
    return st;
}

void cf_scan_reload(void)
{
    pthread_mutex_lock(&state_lock);
    for (unsigned i = 0; i < nscanners; i++)
        if (scanners[i].up && scanners[i].pid > 0)
            kill(scanners[i].pid, SIGUSR1);
    pthread_mutex_unlock(&state_lock);
}

const char *cf_scan_state(void)
{
    const char *st = "down";
    pthread_mutex_lock(&state_lock);
    for (unsigned i = 0; i < nscanners; i++)
        if (scanners[i].up) {
            st = scanners[i].info.development ? "development: no signatures" : "ok";
            break;
        }
    pthread_mutex_unlock(&state_lock);
    return st;
}

size_t cf_scan_pids(int *out, size_t n)
{
    size_t k = 0;
    pthread_mutex_lock(&state_lock);
    for (unsigned i = 0; i < nscanners && k < n; i++)
        if (scanners[i].up)
            out[k++] = scanners[i].pid;
    pthread_mutex_unlock(&state_lock);
    return k;
}

size_t cf_scan_info(struct cf_scan_status *out, size_t n)
{
    size_t k = 0;
    pthread_mutex_lock(&state_lock);
    for (unsigned i = 0; i < nscanners && k < n; i++, k++) {
        out[k].up = scanners[i].up;
        out[k].info = scanners[i].info;
    }
    pthread_mutex_unlock(&state_lock);
    return k;
}
