/*
 * child.h: a family of confined child processes of one executable, from the server's side: the
 * scanners (src/scan/scan.c) and the renderers (src/render/render.c) are two such families. The
 * family does what both need alike; the caller keeps its protocol and its results.
 *
 * What the family does: K children are spawned (posix_spawn, never fork: no copy of the server's
 * memory, so never of a key) at start-up, before any key is read, each in a session and process
 * group of its own (no controlling terminal; kill(-pid) reaches whatever it started), with its end
 * of a SOCK_SEQPACKET socketpair as descriptor spec.fd, stdin and stdout on /dev/null, nothing else
 * open, stderr shared for its log lines, and a private scratch directory on a tmpfs
 * (<scratch_dir>/<prefix>-<server pid>-XXXXXX/<index>, emptied before each start; those of servers
 * that are gone are removed at start). A child is up once its HELLO arrived and passed ops.hello.
 *
 * One thread per child owns it: it takes jobs from the family's FIFO queue one at a time, makes sure
 * its child is up (restarting one that died, at most every CF_CHILD_RESPAWN_MS after a failed
 * start), and calls ops.run, which speaks the caller's protocol with cf_recv_until deadlines
 * (childio.h). A child that fails a job (FAILED) is killed with its process group and restarted, and
 * the job fails; one that was already dead when the job reached it (GONE: it read nothing) is
 * restarted and the job tried once more; one that asks to be replaced (RECYCLE) or has run
 * spec.recycle jobs is replaced after the job. While idle, a thread checks its child every
 * CF_CHILD_IDLE_S: a closed socket, or a message ops.idle does not take, gets it restarted.
 *
 * Stopped when idle (spec.idle_stop_s > 0): a child that has run no job for that long is stopped
 * (killed with its process group, its scratch emptied) and not restarted by the idle check; its
 * thread waits for the next job, which starts it again (the usual start: HELLO checked). That is no
 * failure: no ops.restarted, no CF_CHILD_RESPAWN_MS wait before the start. Such a child is not up
 * (cf_child_pids and cf_child_signal skip it; cf_child_stopped tells it from one that is down); the
 * queue, its bound and cf_child_submit_held count threads, which stay. Children are still all
 * spawned at cf_child_start, which is how a broken installation is found at start-up.
 *
 * Threads: cf_child_start/stop from one thread (start-up, shutdown); submit, queued, running,
 * stopping, pids and signal from any thread; the ops from the family's threads (hello also from the
 * thread that calls cf_child_start), with cf_child_lock held for ops.hello and ops.idle.
 */
#ifndef CF_CHILD_H
#define CF_CHILD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base.h"

#define CF_CHILD_RESPAWN_MS 5000 /* a child that failed to start is tried again this often */
#define CF_CHILD_IDLE_S 1        /* an idle thread checks on its child this often */
#define CF_CHILD_MSG_MAX 512     /* the largest HELLO or idle message a family's protocol has */

/* The link a family's job embeds (its queue link; private to the family). */
struct cf_child_job {
    struct cf_child_job *next;
    bool held;                   /* admitted by cf_child_submit_held */
};

/* One child. Its thread owns fd, next_id and jobs; pid and up change under the family's lock. */
struct cf_child {
    unsigned index;
    pid_t pid;
    int fd;                      /* our end of the socketpair; -1 when down */
    bool up;
    uint64_t next_id;            /* for the caller's job ids */
    unsigned jobs;               /* jobs run since it started */
    uint64_t failed_spawn;       /* ms (monotonic) of the last failed start; 0 after a success */
    uint64_t last_job;           /* ms (monotonic) of the start or end of its last job, or of its first start */
    bool stopped;                /* stopped for idleness (spec.idle_stop_s): not up, not a failure; changes
                                  * under the family's lock */
    pthread_t thread;
    struct cf_child_family *fam;
};

/* How a job went on its child (ops.run). */
enum cf_child_run {
    CF_CHILD_DONE,     /* the job's results are set; the child may stay */
    CF_CHILD_RECYCLE,  /* the results are set; the child is replaced (a parser that refused an input) */
    CF_CHILD_FAILED,   /* the child must be killed; the job fails */
    CF_CHILD_GONE,     /* the child was dead before the job reached it: once more, on a fresh one */
};

/* A command line being built (ops.args). */
struct cf_child_args {
    char *argv[48];
    size_t argc;
    char buf[1024];              /* formatted values */
    size_t used;
};
/* cf_child_program(name, out, cap): the path of the program `name` installed beside this one (in
 * the directory of /proc/self/exe, also when that file was replaced or deleted since it started):
 * the children's programs (coffer-scan, coffer-render) live beside coffer. */
void cf_child_program(const char *name, char *out, size_t cap);
/* cf_child_arg(a, s): appends s (kept by pointer: it must live until the spawn). */
void cf_child_arg(struct cf_child_args *a, const char *s);
/* cf_child_argf(a, fmt, ...): appends a formatted value (copied into a->buf). */
void cf_child_argf(struct cf_child_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct cf_child_ops {
    /* args(c, scratch, a): the command line of c's next start (a->argv[0] is the program). */
    void (*args)(const struct cf_child *c, const char *scratch, struct cf_child_args *a);
    /* hello(c, m, n): c's first message: true if it is a valid HELLO (then kept). Lock held. */
    bool (*hello)(struct cf_child *c, const void *m, size_t n);
    /* idle(c, m, n): a message from an idle child: true to take it (a HELLO after a reload). Lock
     * held. NULL: an idle child says nothing. */
    bool (*idle)(struct cf_child *c, const void *m, size_t n);
    /* begin(j): before a job goes to a child; false when it is complete without one (its results
     * set). NULL: always true. */
    bool (*begin)(struct cf_child *c, struct cf_child_job *j);
    /* run(c, j): one job on c, which is up. */
    enum cf_child_run (*run)(struct cf_child *c, struct cf_child_job *j);
    /* lost(j, why): the job failed for want of a child: it died, broke the protocol or passed its
     * deadline (why NULL: run said why), or none could be started (why says so). */
    void (*lost)(struct cf_child_job *j, const char *why);
    /* end(c, j): after the attempts (not after a begin that returned false). NULL: nothing. */
    void (*end)(struct cf_child *c, struct cf_child_job *j);
    /* complete(j): the job is finished, its child free: the job's owner is told (j may be gone after). */
    void (*complete)(struct cf_child_job *j);
    /* cancel(j): at stop, a job no thread took: complete it as failed. NULL: such jobs are left. */
    void (*cancel)(struct cf_child_job *j);
    /* restarted(c): a child came back after a restart (metrics). NULL: nothing. */
    void (*restarted)(struct cf_child *c);
};

struct cf_child_spec {
    const char *name;            /* "scanner", "renderer": log lines ("scanner 1 was killed ...") */
    const char *program;         /* the executable */
    const char *scratch_dir;     /* a tmpfs (the caller checked) */
    const char *scratch_key;     /* the configuration key of scratch_dir, for messages */
    const char *scratch_prefix;  /* "coffer-scan": the private directory's name */
    unsigned count;              /* children (at least 1) */
    int fd;                      /* the socket's descriptor in the child */
    bool inherit_env;            /* the server's environment; else PATH, LANG and the sanitizers' options */
    unsigned hello_ms;           /* how long a start may take */
    unsigned recycle;            /* jobs before a child is replaced; 0: never */
    unsigned idle_stop_s;        /* a child that has run no job for this long (seconds) is stopped until the
                                  * next job; 0: never (scanners: loading signatures takes tens of seconds) */
    bool run_as;                 /* started as root: the scratch directories go to uid/gid */
    uid_t uid;
    gid_t gid;
    struct cf_child_ops ops;
};

struct cf_child_family {
    /* private */
    pthread_mutex_t qlock, state_lock;
    pthread_cond_t qcond;
    struct cf_child_spec spec;
    struct cf_child *children;
    unsigned n;
    struct cf_child_job *qhead, *qtail;
    size_t nqueued;
    unsigned nbusy, nheld;
    bool started, stopping;      /* (qlock) */
    char scratch[256];
};
#define CF_CHILD_FAMILY_INIT \
    {.qlock = PTHREAD_MUTEX_INITIALIZER, .state_lock = PTHREAD_MUTEX_INITIALIZER, .qcond = PTHREAD_COND_INITIALIZER}

/* cf_child_start(f, spec, err): makes the scratch directory, spawns spec.count children and waits
 * until each said HELLO, then starts their threads. spec is copied (its strings must outlive the
 * family). CF_OK; CF_EIO if the scratch directory cannot be made, CF_EUNAVAIL if a child does not
 * come up (the family is then stopped), each with a malloc'ed *err. */
enum cf_status cf_child_start(struct cf_child_family *f, const struct cf_child_spec *spec, char **err) CF_WUR;
/* cf_child_stop(f): waits for the jobs under way, cancels the queued ones (ops.cancel), kills the
 * children, removes the scratch. Safe without a start; the family can be started again. */
void cf_child_stop(struct cf_child_family *f);

/* cf_child_submit(f, j, max_queued): queues j. CF_OK; CF_EUNAVAIL if the family is not running
 * (not started, or stopping); CF_EBUSY if max_queued > 0 and that many jobs wait already. Nothing
 * is queued unless CF_OK. */
enum cf_status cf_child_submit(struct cf_child_family *f, struct cf_child_job *j, size_t max_queued) CF_WUR;
/* cf_child_submit_held(f, j): queues j only if a child is free for it right now (nothing queued, a
 * thread idle) and fewer than K-1 of the K children would then run such jobs: a job that may hold
 * its child a long time (a scan of an upload still arriving) never takes the last one. */
bool cf_child_submit_held(struct cf_child_family *f, struct cf_child_job *j) CF_WUR;
/* cf_child_queued(f): jobs waiting for a child. */
size_t cf_child_queued(struct cf_child_family *f);
/* cf_child_running(f): started and not stopping. cf_child_stopping(f): being stopped. */
bool cf_child_running(struct cf_child_family *f);
bool cf_child_stopping(struct cf_child_family *f);

/* cf_child_pids(f, out, n): the process ids of the children that are up (not those stopped for
 * idleness, nor those down). */
size_t cf_child_pids(struct cf_child_family *f, int *out, size_t n);
/* cf_child_signal(f, sig): sends sig to every child that is up (under the lock: never a reused pid);
 * one stopped for idleness starts with what the signal would have made it reload. */
void cf_child_signal(struct cf_child_family *f, int sig);
/* cf_child_lock/unlock(f): the lock under which ops.hello and ops.idle run, for what the caller
 * keeps of each child (its HELLO's fields). cf_child_count(f), cf_child_up(f, i) and
 * cf_child_stopped(f, i) (stopped for idleness: it starts with the next job): with it held. */
void cf_child_lock(struct cf_child_family *f);
void cf_child_unlock(struct cf_child_family *f);
unsigned cf_child_count(const struct cf_child_family *f);
bool cf_child_up(const struct cf_child_family *f, unsigned i);
bool cf_child_stopped(const struct cf_child_family *f, unsigned i);

#endif
