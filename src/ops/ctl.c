/*
 * ctl.c: the control socket (see ctl.h): the server's control thread, and the CLI's client side.
 * The thread owns its socket and nothing else; commands run through ops.c against the store the
 * server opened, with their output captured in memory streams.
 */
#include "ctl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "ops.h"
#include "record.h"

#define MAGIC "CFCTL1"
#define MAX_ARGS 32
#define MAX_ARG 4096
#define MAX_REPLY (16u << 20)
#define IO_TIMEOUT_S 10

static int listen_fd = -1;
static pthread_t thread;
static bool running;
static char *sock_path;
static const struct cf_config *ctl_cfg;
static struct cf_store *ctl_store;
static uint64_t ctl_started_at;

/* ---- framing ---------------------------------------------------------------------------------- */

static bool read_full(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static bool write_full(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static bool read_u32(int fd, uint32_t *v)
{
    uint8_t b[4];
    if (!read_full(fd, b, 4))
        return false;
    *v = cf_get_be32(b);
    return true;
}

static bool write_u32(int fd, uint32_t v)
{
    uint8_t b[4];
    cf_put_be32(b, v);
    return write_full(fd, b, 4);
}

static bool write_blob(int fd, const void *p, size_t n)
{
    return write_u32(fd, (uint32_t)n) && write_full(fd, p, n);
}

static void set_timeouts(int fd)
{
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* ---- server side ------------------------------------------------------------------------------ */

/* Reads one request; false (and nothing run) on anything malformed. */
static bool read_request(int fd, int *argc, char **argv, uint8_t *secret, size_t *slen)
{
    char magic[sizeof MAGIC - 1];
    uint32_t n, len;
    *argc = 0;
    if (!read_full(fd, magic, sizeof magic) || memcmp(magic, MAGIC, sizeof magic) != 0 || !read_u32(fd, &n) ||
        n == 0 || n > MAX_ARGS)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        if (!read_u32(fd, &len) || len > MAX_ARG)
            return false;
        argv[i] = cf_xmalloc(len + 1);
        (*argc)++;
        if (!read_full(fd, argv[i], len) || memchr(argv[i], '\0', len) != NULL)
            return false;
        argv[i][len] = '\0';
    }
    argv[n] = NULL;
    if (!read_u32(fd, &len) || len > CF_OP_SECRET_MAX || !read_full(fd, secret, len))
        return false;
    *slen = len;
    return true;
}

static void serve_one(int fd)
{
    struct ucred cred;
    socklen_t cl = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || (cred.uid != 0 && cred.uid != geteuid())) {
        cf_log_warn("ctl: refused a connection from uid %ld (only root and the server's account may control it)",
                    (long)cred.uid);
        return;
    }
    set_timeouts(fd);
    char *argv[MAX_ARGS + 1] = {0};
    uint8_t secret[CF_OP_SECRET_MAX];
    size_t slen = 0;
    int argc = 0;
    if (!read_request(fd, &argc, argv, secret, &slen)) {
        cf_log_warn("ctl: dropped a malformed request from uid %ld", (long)cred.uid);
    } else {
        char *out = NULL, *err = NULL;
        size_t outn = 0, errn = 0;
        struct cf_op op = {.cfg = ctl_cfg, .store = ctl_store, .online = true, .started_at = ctl_started_at,
                           .secret = secret, .secret_len = slen};
        op.out = open_memstream(&out, &outn);
        op.err = open_memstream(&err, &errn);
        if (op.out == NULL || op.err == NULL)
            abort();
        /* the command and sub-command only: arguments may name tenants or users */
        cf_log_info("ctl: %s%s%s (uid %ld)", argv[0], argc > 1 ? " " : "", argc > 1 ? argv[1] : "", (long)cred.uid);
        int rc = cf_op_run(&op, argc, argv);
        fclose(op.out);
        fclose(op.err);
        if (outn > MAX_REPLY)
            outn = MAX_REPLY;
        if (errn > MAX_REPLY)
            errn = MAX_REPLY;
        if (!write_u32(fd, (uint32_t)rc) || !write_blob(fd, out, outn) || !write_blob(fd, err, errn))
            cf_log_warn("ctl: the client left before the reply of %s", argv[0]);
        /* a generated password may be in the output */
        cf_wipe(out, outn);
        free(out);
        free(err);
    }
    cf_wipe(secret, sizeof secret);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
}

static void *ctl_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* shutdown() by cf_ctl_stop, or a fatal error */
        }
        serve_one(fd);
        close(fd);
    }
    return NULL;
}

static bool fill_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n >= sizeof sa->sun_path)
        return false;
    memcpy(sa->sun_path, path, n + 1);
    return true;
}

enum cf_status cf_ctl_start(const struct cf_config *cfg, struct cf_store *store, uint64_t started_at, char **err)
{
    struct sockaddr_un sa;
    const char *path = cfg->control_socket;
    if (!fill_addr(path, &sa)) {
        *err = cf_xasprintf("%s: control socket path too long", path);
        return CF_EINVAL;
    }
    /* A socket file left by a server that died is stale: nothing accepts on it. A live one means a
     * second server on the same configuration, which the store's lock refuses anyway. */
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
        close(probe);
        *err = cf_xasprintf("%s: another server answers on this control socket", path);
        return CF_EINVAL;
    }
    if (probe >= 0)
        close(probe);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            *err = cf_xasprintf("%s: exists and is not a socket; remove it or set control_socket", path);
            return CF_EINVAL;
        }
        unlink(path);
    }
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) {
        *err = cf_xasprintf("control socket: %s", strerror(errno));
        return CF_EINVAL;
    }
    /* umask 077 makes the socket 0600 from its creation; fchmod-free, no window. */
    if (bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 || chmod(path, 0600) != 0 || listen(listen_fd, 8) != 0) {
        *err = cf_xasprintf("%s: cannot listen: %s", path, strerror(errno));
        close(listen_fd);
        listen_fd = -1;
        return CF_EINVAL;
    }
    ctl_cfg = cfg;
    ctl_store = store;
    ctl_started_at = started_at;
    sock_path = cf_xstrdup(path);
    if (pthread_create(&thread, NULL, ctl_main, NULL) != 0) {
        cf_log_error("cannot start the control thread");
        abort();
    }
    running = true;
    cf_log_info("control socket %s", path);
    return CF_OK;
}

void cf_ctl_stop(void)
{
    if (!running)
        return;
    /* Unlink first: a CLI started from now on finds no server and says so, instead of waiting. */
    unlink(sock_path);
    shutdown(listen_fd, SHUT_RDWR);
    pthread_join(thread, NULL);
    close(listen_fd);
    listen_fd = -1;
    free(sock_path);
    sock_path = NULL;
    running = false;
}

/* ---- client side ------------------------------------------------------------------------------ */

/* Copies a length-prefixed blob from fd to fp. */
static bool relay(int fd, FILE *fp)
{
    uint32_t n;
    char buf[8192];
    if (!read_u32(fd, &n) || n > MAX_REPLY)
        return false;
    while (n > 0) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        if (!read_full(fd, buf, k))
            return false;
        fwrite(buf, 1, k, fp);
        n -= (uint32_t)k;
    }
    fflush(fp);
    return true;
}

enum cf_ctl_call cf_ctl_call(const char *path, int argc, char **argv, const uint8_t *secret, size_t slen, int *rc)
{
    struct sockaddr_un sa;
    if (!fill_addr(path, &sa)) {
        fprintf(stderr, "coffer: %s: control socket path too long\n", path);
        return CF_CTL_FAILED;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "coffer: control socket: %s\n", strerror(errno));
        return CF_CTL_FAILED;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        if (e == ENOENT || e == ECONNREFUSED)
            return CF_CTL_NO_SERVER;
        if (e == EACCES || e == EPERM)
            fprintf(stderr, "coffer: %s: permission denied: run this as root or as the server's account\n", path);
        else
            fprintf(stderr, "coffer: %s: cannot reach the server: %s\n", path, strerror(e));
        return CF_CTL_FAILED;
    }
    /* No receive timeout: a backup or a key rotation takes as long as it takes. */
    bool ok = argc > 0 && argc <= MAX_ARGS && write_full(fd, MAGIC, sizeof MAGIC - 1) && write_u32(fd, (uint32_t)argc);
    for (int i = 0; ok && i < argc; i++)
        ok = strlen(argv[i]) <= MAX_ARG && write_blob(fd, argv[i], strlen(argv[i]));
    ok = ok && write_blob(fd, secret, slen);
    uint32_t code = 1;
    ok = ok && read_u32(fd, &code) && relay(fd, stdout) && relay(fd, stderr);
    close(fd);
    if (!ok) {
        fprintf(stderr, "coffer: %s: the server closed the control connection before answering (its log says why)\n",
                path);
        return CF_CTL_FAILED;
    }
    *rc = (int)code;
    return CF_CTL_DONE;
}
