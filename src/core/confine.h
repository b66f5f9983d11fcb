/*
 * confine.h: the confinement a child process of a family (child.h) puts itself in, from its own
 * side: the scanner (src/scan/scanner.c) and the renderer (src/render/renderer.c) load their
 * libraries, then call these in this order: limits, Landlock, seccomp. Each binds the calling thread
 * and the threads it creates later. Linux only; any failure that would leave the process less
 * confined than asked is reported, never ignored (the caller dies).
 */
#ifndef CF_CONFINE_H
#define CF_CONFINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* cf_confine_die(what): logs what and exits with status 3 (a child that cannot confine itself). */
void cf_confine_die(const char *what) __attribute__((noreturn));

/* cf_confine_begin(name, fd, argc, argv): a child's first steps. Only its socket (fd) and stdin,
 * stdout and stderr stay open (the server spawns it with nothing else, and this makes sure of it);
 * a session of its own, so no controlling terminal (the server spawns it as a session leader;
 * anyone else who runs it gets a new session here, or nothing); its log lines named `name`, in the
 * server's format (--log-json among argv); SIGXFSZ ignored (a write past RLIMIT_FSIZE fails instead
 * of killing it). */
void cf_confine_begin(const char *name, int fd, int argc, char **argv);

/* The account a child runs as: --uid N and --gid N, given when the server was started as root. */
struct cf_confine_ids {
    bool drop;
    uid_t uid;
    gid_t gid;
};
/* cf_confine_arg(a, val, ids): takes the options every child has (--uid, --gid, --log-level) with
 * their value; false if a is not one of them or val is not valid. */
bool cf_confine_arg(const char *a, const char *val, struct cf_confine_ids *ids);
/* cf_confine_account(ids, scratch): not root, whatever the server started as: the service account
 * (priv.h, no supplementary groups), before anything is read; then the scratch directory must exist
 * and live in memory (tmpfs): what a child writes there is plaintext and must never reach a
 * persistent disk. Dies on failure. */
void cf_confine_account(const struct cf_confine_ids *ids, const char *scratch);

/* cf_confine_limits(fsize, as): no core dumps, at most 64 descriptors, no file written beyond fsize
 * bytes (RLIMIT_FSIZE), an address space of at most `as` bytes (RLIMIT_AS; not under ASan or TSan,
 * which reserve terabytes), no new privileges (PR_SET_NO_NEW_PRIVS), not dumpable. */
void cf_confine_limits(uint64_t fsize, uint64_t as);

/* Landlock (ABI 1): the accesses a ruleset handles (all of them), reads, and what a scratch
 * directory allows (everything but executing and making devices, sockets, FIFOs and links). */
uint64_t cf_landlock_all(void);
uint64_t cf_landlock_read(void);
uint64_t cf_landlock_scratch(void);
struct cf_landlock_rule {
    const char *path;
    uint64_t access;
};
/* cf_confine_landlock(rules, n, skip_missing, why): from now on only the rules' paths, with their
 * accesses, are reachable. 0 when confined; 1 when the kernel has no Landlock (nothing changed:
 * the caller says so and relies on seccomp); -1 with a static reason in *why (a path that cannot be
 * opened unless skip_missing, a rule refused, the restriction refused). */
int cf_confine_landlock(const struct cf_landlock_rule *rules, size_t n, bool skip_missing, const char **why);

/* cf_confine_seccomp(allow, na, kill, nk, why): loads a filter under which a system call fails with
 * EPERM unless it is in the common allowlist (reading, writing, memory, files, time, signals,
 * threads' basics, sendmsg/recvmsg on existing sockets) or in allow; those that would let a
 * compromised parser reach out (exec, sockets, tracing, namespaces, modules, keys, setuid, fork)
 * kill the process, and so do those in kill; clone makes threads only (anything else kills;
 * clone3 answers ENOSYS so that the C library falls back to clone); ioctl passes only for TCGETS,
 * FIONREAD, FIONBIO, FIOCLEX and FIONCLEX (never a request that writes to or reconfigures a
 * terminal: TIOCSTI, TIOCSETD, TIOCLINUX, TIOCCONS answer EPERM). 0, or -1 with *why. */
int cf_confine_seccomp(const int *allow, size_t na, const int *kill, size_t nk, const char **why);

/* A child's whole confinement after its limits (cf_confine_enter): Landlock, then seccomp. */
struct cf_confinement {
    const struct cf_landlock_rule *rules;   /* Landlock: the paths reachable from now on */
    size_t nrules;
    bool skip_missing;                      /* a rule's path this system does not have is left out */
    const int *allow;                       /* seccomp: system calls allowed beyond the common list */
    size_t nallow;
    const int *kill;                        /* ... and those that kill beyond the common list */
    size_t nkill;
};
/* cf_confine_enter(c): Landlock (on a kernel without it, a warning says the process relies on
 * seccomp alone), then the seccomp filter. NULL, or the reason it failed (the caller dies). */
const char *cf_confine_enter(const struct cf_confinement *c);

/* cf_rm_tree(dir): removes dir and everything below it, following no link (scratch directories). */
void cf_rm_tree(const char *dir);

#endif
