/*
 * child.c: a family of confined child processes, the server's side (child.h): spawning, the HELLO,
 * the job queue and one thread per child, deadlines' consequences (kill the process group, restart,
 * retry once), recycling, the idle check, stopping when idle, stopping.
 */
#include "child.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "childio.h"
#include "confine.h"
#include "log.h"

#define SOCK_BUF (1u << 20)

extern char **environ;

void cf_child_program(const char *name, char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0 || (size_t)sl >= sizeof self - 1)
        sl = 0;
    self[sl] = '\0';
    /* A replaced or deleted program reads "/usr/bin/coffer (deleted)": its directory is still right. */
    const char *slash = strrchr(self, '/');
    if (slash != NULL)
        snprintf(out, cap, "%.*s/%s", (int)(slash - self), self, name);
    else
        snprintf(out, cap, "./%s", name);
}

void cf_child_arg(struct cf_child_args *a, const char *s)
{
    if (a->argc + 1 < sizeof a->argv / sizeof a->argv[0])
        a->argv[a->argc++] = (char *)s;
    a->argv[a->argc] = NULL;
}

void cf_child_argf(struct cf_child_args *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(a->buf + a->used, sizeof a->buf - a->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof a->buf - a->used) {
        cf_log_error("a child's command line is too long");
        abort(); /* the callers' arguments are a few numbers: never */
    }
    cf_child_arg(a, a->buf + a->used);
    a->used += (size_t)n + 1;
}

/* ---- one child ---------------------------------------------------------------------------------- */

/* c's own scratch directory, emptied: what a killed child left behind (plaintext, in memory) goes
 * before the next one starts. */
static bool fresh_scratch(const struct cf_child *c, char *dir, size_t cap)
{
    const struct cf_child_spec *sp = &c->fam->spec;
    snprintf(dir, cap, "%s/%u", c->fam->scratch, c->index);
    cf_rm_tree(dir);
    if (mkdir(dir, 0700) != 0) {
        cf_log_error("%s %u: cannot create %s: %s", sp->name, c->index, dir, strerror(errno));
        return false;
    }
    if (sp->run_as && chown(dir, sp->uid, sp->gid) != 0) { /* as root, before the server drops too */
        cf_log_error("%s %u: cannot give %s to uid %u: %s", sp->name, c->index, dir, (unsigned)sp->uid,
                     strerror(errno));
        return false;
    }
    return true;
}

/* The environment of a child that does not inherit the server's: nothing of the server's (no
 * COFFER_* variable, no proxy settings); the sanitizers' options pass so that sanitizer builds
 * report in the child too. */
static void minimal_env(char **env, size_t cap)
{
    static const char *const pass[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};
    size_t envc = 0;
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++)
        for (char **e = environ; *e != NULL && envc + 3 < cap; e++)
            if (strncmp(*e, pass[i], strlen(pass[i])) == 0 && (*e)[strlen(pass[i])] == '=')
                env[envc++] = *e;
    env[envc++] = (char *)"PATH=/usr/bin:/bin";
    env[envc++] = (char *)"LANG=C.UTF-8";
    env[envc] = NULL;
}

static pid_t spawn_process(const struct cf_child_spec *sp, int child_fd, char **argv)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dflt;
    char *env[8];
    pid_t pid = 0;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, child_fd, sp->fd); /* dup2 clears CLOEXEC on it */
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0); /* it logs on stderr only */
    /* Nothing else of ours: not a client socket, not a store file (restarts happen while serving). */
    posix_spawn_file_actions_addclosefrom_np(&fa, sp->fd + 1);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    sigfillset(&dflt);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dflt);
    /* A session and process group of its own (setsid): no controlling terminal, so a compromised
     * parser cannot push keystrokes into the terminal the server was started from (TIOCSTI), a
     * Ctrl-C there does not reach it, and kill(-pid) reaches it and whatever it started at once. */
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
    if (!sp->inherit_env)
        minimal_env(env, sizeof env / sizeof env[0]);
    int rc = posix_spawn(&pid, sp->program, &fa, &attr, argv, sp->inherit_env ? environ : env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return 0;
    }
    return pid;
}

static bool spawn(struct cf_child *c)
{
    struct cf_child_family *f = c->fam;
    const struct cf_child_spec *sp = &f->spec;
    int sv[2];
    char dir[300];
    if (!fresh_scratch(c, dir, sizeof dir))
        return false;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return false;
    int buf = SOCK_BUF;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    struct cf_child_args a;
    memset(&a, 0, sizeof a);
    sp->ops.args(c, dir, &a);
    pid_t pid = spawn_process(sp, sv[1], a.argv);
    close(sv[1]);
    if (pid == 0) {
        cf_log_error("%s %u: cannot start %s: %s", sp->name, c->index, sp->program, strerror(errno));
        close(sv[0]);
        return false;
    }
    c->pid = pid;
    c->fd = sv[0];
    union {
        uint64_t align;
        uint8_t b[CF_CHILD_MSG_MAX];
    } m;
    ssize_t n = cf_recv_until(c->fd, m.b, sizeof m.b, cf_mono_ms() + sp->hello_ms);
    pthread_mutex_lock(&f->state_lock);
    bool ok = n > 0 && sp->ops.hello(c, m.b, (size_t)n);
    if (ok) {
        c->up = true;
        c->jobs = 0;
    }
    pthread_mutex_unlock(&f->state_lock);
    if (!ok) {
        cf_log_error("%s %u: did not come up (see its messages above)", sp->name, c->index);
        kill(-c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
        c->pid = 0;
        close(c->fd);
        c->fd = -1;
        return false;
    }
    return true;
}

static void kill_child(struct cf_child *c)
{
    struct cf_child_family *f = c->fam;
    /* The pid is forgotten (under the lock cf_child_signal signals under) before it is reaped, so
     * no signal can reach a recycled pid. */
    pthread_mutex_lock(&f->state_lock);
    c->up = false;
    pid_t pid = c->pid;
    c->pid = 0;
    pthread_mutex_unlock(&f->state_lock);
    /* The socket first: an idle child that is merely being replaced sees EOF and exits. */
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (pid <= 0)
        return;
    /* Observe (without reaping, so that the pid and its process group cannot be reused meanwhile)
     * how it ended, giving one that is dying a moment (a child that died is a zombie a moment after
     * its socket closes, and the log says how it ended); then SIGKILL the whole group, and reap. */
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
        cf_log_error("%s %u was killed by signal %d", f->spec.name, c->index, si.si_status);
    else if (si.si_pid == pid && si.si_code == CLD_EXITED && si.si_status != 0)
        cf_log_error("%s %u exited with status %d", f->spec.name, c->index, si.si_status);
}

/* Between jobs: takes what an idle child said (ops.idle) and notices its death. False if it must be
 * restarted. */
static bool idle_check(struct cf_child *c)
{
    struct cf_child_family *f = c->fam;
    union {
        uint64_t align;
        uint8_t b[CF_CHILD_MSG_MAX];
    } m;
    for (;;) {
        ssize_t n = recv(c->fd, m.b, sizeof m.b, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0 && f->spec.ops.idle != NULL) {
            pthread_mutex_lock(&f->state_lock);
            bool taken = f->spec.ops.idle(c, m.b, (size_t)n);
            pthread_mutex_unlock(&f->state_lock);
            if (taken)
                continue;
        }
        if (n != 0)
            cf_log_error("%s %u: an unexpected message while idle", f->spec.name, c->index);
        return false;
    }
}

static void set_stopped(struct cf_child *c, bool stopped)
{
    pthread_mutex_lock(&c->fam->state_lock);
    c->stopped = stopped;
    pthread_mutex_unlock(&c->fam->state_lock);
}

/* Makes sure c is up: restarts it if it died (after a failed start, at most every
 * CF_CHILD_RESPAWN_MS: a broken installation must not turn into a busy loop), or starts it again
 * if it was stopped for idleness (at once: that was no failure). */
static bool ensure_up(struct cf_child *c)
{
    const struct cf_child_spec *sp = &c->fam->spec;
    if (c->up && idle_check(c))
        return true;
    if (c->up || c->pid > 0)
        kill_child(c);
    bool wake = c->stopped;
    uint64_t now = cf_mono_ms();
    if (!wake && c->failed_spawn != 0 && now - c->failed_spawn < CF_CHILD_RESPAWN_MS)
        return false;
    if (wake)
        set_stopped(c, false); /* from here on it is up, or down like any child that failed to start */
    if (!spawn(c)) {
        c->failed_spawn = now;
        return false;
    }
    c->failed_spawn = 0;
    if (wake) {
        cf_log_info("%s %u started again for a job (pid %ld)", sp->name, c->index, (long)c->pid);
        return true;
    }
    cf_log_info("%s %u restarted", sp->name, c->index);
    if (sp->ops.restarted != NULL)
        sp->ops.restarted(c);
    return true;
}

/* One job on c: at most two attempts (the second only when the child was found dead). */
static void run_job(struct cf_child *c, struct cf_child_job *j)
{
    struct cf_child_family *f = c->fam;
    const struct cf_child_spec *sp = &f->spec;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!ensure_up(c)) {
            cf_log_error("%s %u is down: a job fails", sp->name, c->index);
            char why[64];
            snprintf(why, sizeof why, "no %s is up", sp->name);
            sp->ops.lost(j, why);
            return;
        }
        enum cf_child_run rr = sp->ops.run(c, j);
        c->jobs++;
        if (rr == CF_CHILD_DONE && (sp->recycle == 0 || c->jobs < sp->recycle))
            return;
        if (rr == CF_CHILD_DONE || rr == CF_CHILD_RECYCLE) {
            kill_child(c);
            (void)ensure_up(c);
            return;
        }
        sp->ops.lost(j, NULL);
        kill_child(c);
        if (rr == CF_CHILD_FAILED) {
            if (!cf_child_stopping(f) && !ensure_up(c))
                cf_log_error("%s %u could not be restarted; retrying", sp->name, c->index);
            return;
        }
        /* CF_CHILD_GONE: once more, on a fresh child */
    }
}

/* Stops c for idleness (spec.idle_stop_s): killed with its process group (the socket closed first:
 * it sees EOF and exits), its scratch removed (what it left there, in plaintext, goes now, not at
 * its next start). No failure: nothing counted, no CF_CHILD_RESPAWN_MS wait; the next job starts it. */
static void stop_idle(struct cf_child *c)
{
    struct cf_child_family *f = c->fam;
    char dir[300];
    kill_child(c);
    snprintf(dir, sizeof dir, "%s/%u", f->scratch, c->index);
    cf_rm_tree(dir);
    set_stopped(c, true);
    cf_log_info("%s %u stopped: no job for %u s (the next job starts it again)", f->spec.name, c->index,
                f->spec.idle_stop_s);
}

/* An idle thread's check, every CF_CHILD_IDLE_S: a child idle for spec.idle_stop_s is stopped, one
 * already stopped is left so, any other is kept alive and what it said fresh. */
static void idle_tick(struct cf_child *c)
{
    const struct cf_child_spec *sp = &c->fam->spec;
    if (c->stopped)
        return;
    if (sp->idle_stop_s > 0 && cf_mono_ms() - c->last_job >= (uint64_t)sp->idle_stop_s * 1000) {
        stop_idle(c);
        return;
    }
    (void)ensure_up(c);
}

static void *child_thread(void *arg)
{
    struct cf_child *c = arg;
    struct cf_child_family *f = c->fam;
    const struct cf_child_ops *ops = &f->spec.ops;
    for (;;) {
        pthread_mutex_lock(&f->qlock);
        while (f->qhead == NULL && !f->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += CF_CHILD_IDLE_S;
            if (pthread_cond_timedwait(&f->qcond, &f->qlock, &ts) != 0 && f->qhead == NULL && !f->stopping) {
                pthread_mutex_unlock(&f->qlock);
                idle_tick(c);
                pthread_mutex_lock(&f->qlock);
            }
        }
        if (f->qhead == NULL) {
            pthread_mutex_unlock(&f->qlock);
            return NULL;
        }
        struct cf_child_job *j = f->qhead;
        f->qhead = j->next;
        if (f->qhead == NULL)
            f->qtail = NULL;
        f->nqueued--;
        f->nbusy++;
        pthread_mutex_unlock(&f->qlock);
        bool held = j->held;

        c->last_job = cf_mono_ms();
        if (ops->begin == NULL || ops->begin(c, j)) {
            run_job(c, j);
            if (ops->end != NULL)
                ops->end(c, j);
        }
        c->last_job = cf_mono_ms();
        pthread_mutex_lock(&f->qlock); /* before complete: whoever learns of the outcome finds the child free */
        f->nbusy--;
        if (held)
            f->nheld--;
        pthread_mutex_unlock(&f->qlock);
        ops->complete(j); /* j may be gone after this */
    }
}

/* ---- the family --------------------------------------------------------------------------------- */

/* A private scratch directory on the tmpfs; those of servers that are gone are removed first. */
static bool make_scratch(struct cf_child_family *f, char **err)
{
    const struct cf_child_spec *sp = &f->spec;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s-%%ld-", sp->scratch_prefix);
    DIR *d = opendir(sp->scratch_dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        long pid;
        char stale[512];
        if (sscanf(de->d_name, prefix, &pid) == 1 && pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            snprintf(stale, sizeof stale, "%s/%s", sp->scratch_dir, de->d_name);
            cf_rm_tree(stale);
        }
    }
    if (d != NULL)
        closedir(d);
    snprintf(f->scratch, sizeof f->scratch, "%s/%s-%ld-XXXXXX", sp->scratch_dir, sp->scratch_prefix, (long)getpid());
    if (mkdtemp(f->scratch) == NULL) {
        *err = cf_xasprintf("%s %s: cannot create a private directory: %s", sp->scratch_key, sp->scratch_dir,
                            strerror(errno));
        f->scratch[0] = '\0';
        return false;
    }
    if (sp->run_as && chown(f->scratch, sp->uid, sp->gid) != 0) {
        *err = cf_xasprintf("%s: cannot give the %ss' directory to uid %u: %s", f->scratch, sp->name,
                            (unsigned)sp->uid, strerror(errno));
        rmdir(f->scratch);
        f->scratch[0] = '\0';
        return false;
    }
    return true;
}

enum cf_status cf_child_start(struct cf_child_family *f, const struct cf_child_spec *spec, char **err)
{
    f->spec = *spec;
    if (!make_scratch(f, err))
        return CF_EIO;
    unsigned n = spec->count != 0 ? spec->count : 1;
    struct cf_child *children = cf_xcalloc(n, sizeof *children);
    for (unsigned i = 0; i < n; i++) {
        children[i].index = i;
        children[i].fd = -1;
        children[i].fam = f;
    }
    pthread_mutex_lock(&f->state_lock);
    f->children = children;
    f->n = n;
    pthread_mutex_unlock(&f->state_lock);
    for (unsigned i = 0; i < n; i++)
        if (!spawn(&children[i])) {
            *err = cf_xasprintf("the %s %s could not start (see its messages above)", spec->name, spec->program);
            cf_child_stop(f);
            return CF_EUNAVAIL;
        }
    for (unsigned i = 0; i < n; i++)
        children[i].last_job = cf_mono_ms(); /* idle from now on, not from before the slowest HELLO */
    pthread_mutex_lock(&f->qlock);
    f->started = true;
    f->stopping = false;
    f->nbusy = f->nheld = 0;
    pthread_mutex_unlock(&f->qlock);
    for (unsigned i = 0; i < n; i++)
        if (pthread_create(&children[i].thread, NULL, child_thread, &children[i]) != 0) {
            cf_log_error("cannot start the thread of %s %u", spec->name, i);
            abort();
        }
    return CF_OK;
}

void cf_child_stop(struct cf_child_family *f)
{
    pthread_mutex_lock(&f->qlock);
    f->stopping = true;
    pthread_cond_broadcast(&f->qcond);
    pthread_mutex_unlock(&f->qlock);
    for (unsigned i = 0; f->children != NULL && i < f->n; i++) {
        if (f->children[i].thread != 0)
            pthread_join(f->children[i].thread, NULL);
        kill_child(&f->children[i]);
    }
    /* Jobs still queued (no thread took them): failed, never lost, where the caller says so. */
    pthread_mutex_lock(&f->qlock);
    struct cf_child_job *j = f->spec.ops.cancel != NULL ? f->qhead : NULL;
    if (j != NULL) {
        f->qhead = f->qtail = NULL;
        f->nqueued = 0;
    }
    pthread_mutex_unlock(&f->qlock);
    while (j != NULL) {
        struct cf_child_job *next = j->next;
        f->spec.ops.cancel(j);
        j = next;
    }
    pthread_mutex_lock(&f->qlock);
    f->started = false;
    pthread_mutex_unlock(&f->qlock);
    pthread_mutex_lock(&f->state_lock); /* cf_child_pids and the callers' readers look under it */
    free(f->children);
    f->children = NULL;
    f->n = 0;
    pthread_mutex_unlock(&f->state_lock);
    if (f->scratch[0] != '\0')
        cf_rm_tree(f->scratch);
    f->scratch[0] = '\0';
}

static void enqueue(struct cf_child_family *f, struct cf_child_job *j)
{
    j->next = NULL;
    if (f->qtail == NULL)
        f->qhead = j;
    else
        f->qtail->next = j;
    f->qtail = j;
    f->nqueued++;
    pthread_cond_signal(&f->qcond);
}

enum cf_status cf_child_submit(struct cf_child_family *f, struct cf_child_job *j, size_t max_queued)
{
    enum cf_status st = CF_OK;
    j->held = false;
    pthread_mutex_lock(&f->qlock);
    if (!f->started || f->stopping)
        st = CF_EUNAVAIL;
    else if (max_queued > 0 && f->nqueued >= max_queued)
        st = CF_EBUSY;
    else
        enqueue(f, j);
    pthread_mutex_unlock(&f->qlock);
    return st;
}

bool cf_child_submit_held(struct cf_child_family *f, struct cf_child_job *j)
{
    j->held = true;
    pthread_mutex_lock(&f->qlock);
    bool ok = f->started && !f->stopping && f->qhead == NULL && f->nbusy < f->n && f->nheld + 1 < f->n;
    if (ok) {
        f->nheld++;
        enqueue(f, j);
    }
    pthread_mutex_unlock(&f->qlock);
    return ok;
}

size_t cf_child_queued(struct cf_child_family *f)
{
    pthread_mutex_lock(&f->qlock);
    size_t n = f->nqueued;
    pthread_mutex_unlock(&f->qlock);
    return n;
}

bool cf_child_running(struct cf_child_family *f)
{
    pthread_mutex_lock(&f->qlock);
    bool on = f->started && !f->stopping;
    pthread_mutex_unlock(&f->qlock);
    return on;
}

bool cf_child_stopping(struct cf_child_family *f)
{
    pthread_mutex_lock(&f->qlock);
    bool st = f->stopping;
    pthread_mutex_unlock(&f->qlock);
    return st;
}

size_t cf_child_pids(struct cf_child_family *f, int *out, size_t n)
{
    size_t k = 0;
    pthread_mutex_lock(&f->state_lock);
    for (unsigned i = 0; i < f->n && k < n; i++)
        if (f->children[i].up)
            out[k++] = f->children[i].pid;
    pthread_mutex_unlock(&f->state_lock);
    return k;
}

void cf_child_signal(struct cf_child_family *f, int sig)
{
    pthread_mutex_lock(&f->state_lock);
    for (unsigned i = 0; i < f->n; i++)
        if (f->children[i].up && f->children[i].pid > 0)
            kill(f->children[i].pid, sig);
    pthread_mutex_unlock(&f->state_lock);
}

void cf_child_lock(struct cf_child_family *f)
{
    pthread_mutex_lock(&f->state_lock);
}

void cf_child_unlock(struct cf_child_family *f)
{
    pthread_mutex_unlock(&f->state_lock);
}

unsigned cf_child_count(const struct cf_child_family *f)
{
    return f->n;
}

bool cf_child_up(const struct cf_child_family *f, unsigned i)
{
    return i < f->n && f->children[i].up;
}

bool cf_child_stopped(const struct cf_child_family *f, unsigned i)
{
    return i < f->n && f->children[i].stopped;
}
