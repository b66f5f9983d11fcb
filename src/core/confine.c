/*
 * confine.c: a family child's own confinement (confine.h): rlimits, Landlock, seccomp.
 */
#include "confine.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/landlock.h>
#include <linux/magic.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <termios.h>
#include <unistd.h>

#include "base.h"
#include "log.h"
#include "priv.h"

void cf_confine_die(const char *what)
{
    cf_log_error("%s", what);
    _exit(3);
}

void cf_confine_begin(const char *name, int fd, int argc, char **argv)
{
    close_range((unsigned)fd + 1, ~0u, 0);
    if (getsid(0) != getpid() && setsid() == (pid_t)-1)
        cf_confine_die("cannot leave the terminal session it was started in");
    cf_log_set_process(name);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--log-json") == 0)
            cf_log_set_format(CF_LOG_JSON);
    signal(SIGXFSZ, SIG_IGN);
}

bool cf_confine_arg(const char *a, const char *val, struct cf_confine_ids *ids)
{
    uint64_t u;
    if (strcmp(a, "--uid") == 0 && cf_parse_u64(val, strlen(val), UINT32_MAX - 1, &u) == CF_OK) {
        ids->uid = (uid_t)u;
        ids->drop = true;
        return true;
    }
    if (strcmp(a, "--gid") == 0 && cf_parse_u64(val, strlen(val), UINT32_MAX - 1, &u) == CF_OK) {
        ids->gid = (gid_t)u;
        return true;
    }
    if (strcmp(a, "--log-level") == 0 && cf_parse_u64(val, strlen(val), CF_LOG_ERROR, &u) == CF_OK) {
        cf_log_set_level((int)u);
        return true;
    }
    return false;
}

void cf_confine_account(const struct cf_confine_ids *ids, const char *scratch)
{
    char *why = NULL;
    struct statfs sf;
    if (ids->drop && cf_priv_drop_ids(ids->uid, ids->gid, &why) != 0)
        cf_confine_die(why);
    if (statfs(scratch, &sf) != 0 || sf.f_type != TMPFS_MAGIC)
        cf_confine_die("the scratch directory is missing or not on tmpfs");
}

void cf_confine_limits(uint64_t fsize, uint64_t as)
{
    struct rlimit zero = {0, 0}, files = {64, 64}, fs = {(rlim_t)fsize, (rlim_t)fsize};
    setrlimit(RLIMIT_CORE, &zero);
    setrlimit(RLIMIT_NOFILE, &files);
    setrlimit(RLIMIT_FSIZE, &fs);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) /* both reserve terabytes of address space */
    struct rlimit a = {(rlim_t)as, (rlim_t)as};
    setrlimit(RLIMIT_AS, &a);
#else
    (void)as;
#endif
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

uint64_t cf_landlock_all(void)
{
    return LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
           LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
           LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
           LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
           LANDLOCK_ACCESS_FS_MAKE_SYM;
}

uint64_t cf_landlock_read(void)
{
    return LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
}

uint64_t cf_landlock_scratch(void)
{
    return cf_landlock_all() & ~(uint64_t)(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
                                           LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SOCK |
                                           LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM);
}

int cf_confine_landlock(const struct cf_landlock_rule *rules, size_t n, bool skip_missing, const char **why)
{
    struct landlock_ruleset_attr ra = {.handled_access_fs = cf_landlock_all()};
    int rs = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof ra, 0);
    if (rs < 0)
        return 1;
    for (size_t i = 0; i < n; i++) {
        struct landlock_path_beneath_attr pb = {.allowed_access = rules[i].access};
        pb.parent_fd = open(rules[i].path, O_PATH | O_CLOEXEC);
        if (pb.parent_fd < 0 && skip_missing)
            continue; /* a directory this system does not have */
        if (pb.parent_fd < 0) {
            *why = "cannot open a directory for the Landlock ruleset";
            close(rs);
            return -1;
        }
        long rc = syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
        close(pb.parent_fd);
        if (rc != 0) {
            *why = "cannot add a Landlock rule";
            close(rs);
            return -1;
        }
    }
    long rc = syscall(SYS_landlock_restrict_self, rs, 0);
    close(rs);
    if (rc != 0) {
        *why = "cannot enter the Landlock sandbox";
        return -1;
    }
    return 0;
}

static int add_all(scmp_filter_ctx f, uint32_t action, const int *calls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (seccomp_rule_add(f, action, calls[i], 0) != 0)
            return -1;
    return 0;
}

int cf_confine_seccomp(const int *allow, size_t na, const int *kill, size_t nk, const char **why)
{
    static const int common_allow[] = {
        SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(readv), SCMP_SYS(writev),
        SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(lseek), SCMP_SYS(mmap),
        SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(brk), SCMP_SYS(openat),
        SCMP_SYS(getdents64), SCMP_SYS(mkdir), SCMP_SYS(mkdirat), SCMP_SYS(rmdir), SCMP_SYS(unlink),
        SCMP_SYS(unlinkat), SCMP_SYS(rename), SCMP_SYS(renameat), SCMP_SYS(ftruncate), SCMP_SYS(fsync),
        SCMP_SYS(fdatasync), SCMP_SYS(fcntl), SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(access),
        SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getcwd),
        SCMP_SYS(statfs), SCMP_SYS(fstatfs), SCMP_SYS(futex), SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep),
        SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(getpid), SCMP_SYS(gettid),
        SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(rt_sigprocmask),
        SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack), SCMP_SYS(exit), SCMP_SYS(exit_group),
        SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity), SCMP_SYS(getrandom), SCMP_SYS(set_robust_list),
        SCMP_SYS(rseq), SCMP_SYS(prlimit64), SCMP_SYS(getrlimit), SCMP_SYS(sendto), SCMP_SYS(recvfrom),
        SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(tgkill),
        SCMP_SYS(membarrier), SCMP_SYS(umask), SCMP_SYS(uname), SCMP_SYS(sysinfo), SCMP_SYS(getppid),
        SCMP_SYS(fchmod), SCMP_SYS(sched_getparam), SCMP_SYS(sched_getscheduler),
    };
    static const int common_kill[] = {
        SCMP_SYS(execve), SCMP_SYS(execveat), SCMP_SYS(socket), SCMP_SYS(socketpair), SCMP_SYS(connect),
        SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(ptrace),
        SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev), SCMP_SYS(mount), SCMP_SYS(umount2),
        SCMP_SYS(unshare), SCMP_SYS(setns), SCMP_SYS(pivot_root), SCMP_SYS(chroot), SCMP_SYS(bpf),
        SCMP_SYS(keyctl), SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(init_module),
        SCMP_SYS(finit_module), SCMP_SYS(delete_module), SCMP_SYS(kexec_load), SCMP_SYS(perf_event_open),
        SCMP_SYS(userfaultfd), SCMP_SYS(setuid), SCMP_SYS(setgid), SCMP_SYS(fork), SCMP_SYS(vfork),
    };
    /* The request is compared whole (64 bits), so nothing else can pass as one of these. */
    static const unsigned long ioctls[] = {TCGETS, FIONREAD, FIONBIO, FIOCLEX, FIONCLEX};
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (f == NULL) {
        *why = "seccomp_init failed";
        return -1;
    }
    int rc = add_all(f, SCMP_ACT_ALLOW, common_allow, sizeof common_allow / sizeof common_allow[0]) |
             add_all(f, SCMP_ACT_ALLOW, allow, na) |
             add_all(f, SCMP_ACT_KILL_PROCESS, common_kill, sizeof common_kill / sizeof common_kill[0]) |
             add_all(f, SCMP_ACT_KILL_PROCESS, kill, nk);
    for (size_t i = 0; i < sizeof ioctls / sizeof ioctls[0]; i++) {
        /* Spelt out: SCMP_A1(SCMP_CMP_EQ, x) leaves datum_b to the compiler, which clang's
         * -Wmissing-field-initializers refuses (scripts/fuzz.sh builds with clang). */
        const struct scmp_arg_cmp req = {.arg = 1, .op = SCMP_CMP_EQ, .datum_a = ioctls[i], .datum_b = 0};
        if (seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, req) != 0)
            rc = -1;
    }
    /* Threads only: clone without CLONE_THREAD would be a new process. */
    const struct scmp_arg_cmp thread = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
    const struct scmp_arg_cmp process = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0);
    if (seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, thread) != 0 ||
        seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1, process) != 0 ||
        seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0)
        rc = -1;
    if (rc != 0) {
        *why = "seccomp_rule_add failed";
        seccomp_release(f);
        return -1;
    }
    if (seccomp_load(f) != 0) {
        *why = "cannot load the seccomp filter";
        seccomp_release(f);
        return -1;
    }
    seccomp_release(f);
    return 0;
}

const char *cf_confine_enter(const struct cf_confinement *c)
{
    const char *why = NULL;
    int rc = cf_confine_landlock(c->rules, c->nrules, c->skip_missing, &why);
    if (rc < 0)
        return why;
    if (rc > 0)
        cf_log_warn("Landlock unavailable (%s); relying on seccomp", strerror(errno));
    if (cf_confine_seccomp(c->allow, c->nallow, c->kill, c->nkill, &why) != 0)
        return why;
    return NULL;
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

void cf_rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
