/*
 * scanner.c: the scanner process, the program `coffer-scan` (installed beside coffer, started by
 * scan.c with posix_spawn before any key is loaded). A program of its own, not a command of coffer:
 * it maps libclamav, libmagic and what they need, and none of the server's libraries (RocksDB, Ceph,
 * PostgreSQL, LDAP, h2o), so that none of their code is in the process that parses hostile files and
 * none of their pages are in each scanner's memory; and the server does not map libclamav. It holds
 * no key and no store handle, and after start-up it cannot open a network socket, execute a
 * program, or touch files outside its scratch directory: parsers of hostile formats (libclamav,
 * libmagic) run here, not in the process that holds every tenant's keys.
 *
 * Start-up: a session of its own (no controlling terminal) → rlimits → libclamav engine from --db
 * (limits and heuristics below) → EICAR canary → libmagic cookie → Landlock (scratch read-write,
 * signatures read-only) → seccomp allowlist → HELLO. The stderr it shares with the server may be an
 * operator's terminal: besides having no controlling terminal, the filter lets through only the
 * ioctl requests confine.h lets through, none of which can write to or reconfigure a terminal
 * (TIOCSTI, TIOCSETD, TIOCLINUX, TIOCCONS... answer EPERM).
 * Then, one scan at a time: the server sends SCAN, we pull the bytes we need with READ/DATA (libclamav
 * reads through cl_fmap_open_handle: no copy of the file is kept), and answer one VERDICT.
 *
 * libclamav pitfalls handled (notes/clamav-libmagic.md):
 * - a missing or unwritable temp directory makes scans say CLEAN: the scratch directory is created
 *   and checked at start, and the canary proves the engine detects through it;
 * - limits without CL_SCAN_HEURISTIC_EXCEEDS_MAX, encrypted archives without ENCRYPTED_ARCHIVE, and
 *   overlapping-zip bombs without GENERAL_HEURISTICS pass silently: all three are on;
 * - RAR cannot be unpacked by Debian's libclamav: the pre-cache callback turns it into a verdict;
 * - a top-level file over MAX_FILESIZE reports CL_VIRUS with no name: handled as unscannable;
 * - files of 2 GiB or more cannot be scanned at all: unscannable, without trying;
 * - one fixed option set per engine;
 * - a handle fmap claims to be a file descriptor: libclamav 1.4 sets handle_is_fd for every
 *   cl_fmap_open_handle map, and before it reads a page into a locked range it fstat()s
 *   (int)handle and compares st_mtime with the map's (0). With a pointer as handle that read
 *   failed and the parser gave up without a word: a 20 MiB zip whose first member was EICAR
 *   scanned clean once aging had dropped its first pages. The handle is therefore a real
 *   descriptor with mtime 0 (an empty, unlinked file in the scratch directory, `fmap_anchor`),
 *   and the reads find their scan through `current`;
 * - the clean cache is off: checking it hashes the whole file first, in 10 MiB reads that the handle
 *   fmap's aging (≤ 8 MiB freed per read) cannot keep up with, so ~20 % of every file stayed resident
 *   (≈ 200 MiB per 1 GiB scan) and every file was pulled and decrypted twice. Hash signatures (.hdb,
 *   .hsb) are still matched, by the matcher's own pass;
 * - the engine is compiled once per build; reloads build a new engine and swap it in.
 */
#include <clamav.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <magic.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "confine.h"
#include "log.h"
#include "scan.h"
#include "scan_proto.h"

#define SNIFF_PREFIX (64u * 1024)
#define DB_CHECK_INTERVAL_S 5
#define TOO_LARGE ((uint64_t)INT32_MAX - 2) /* libclamav clamps and cannot scan at or beyond this */

struct opts {
    const char *db;
    const char *scratch;
    uint64_t max_file;
    unsigned max_seconds;
    bool development;
    struct cf_confine_ids ids; /* --uid/--gid given: switch to them before reading anything */
};

static struct opts opt;
static int sock = CF_SCAN_FD;
static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t send_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cl_engine *engine;
static struct cf_scan_msg_info info;
static magic_t cookie;
static int fmap_anchor = -1;     /* the fmap handle: see the pitfalls at the top */
static struct scan_ctx *current; /* the scan the fmap reads are for (one at a time) */

static void die(const char *what)
{
    cf_confine_die(what);
}

/* libclamav's own messages (by default printed raw on stderr) go through our log, in its format;
 * its verbose messages only at debug level. */
static void clamav_message(enum cl_msg severity, const char *full, const char *msg, void *ctx)
{
    (void)full;
    (void)ctx;
    char line[512];
    int n = snprintf(line, sizeof line, "libclamav: %s", msg != NULL ? msg : "");
    size_t len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    while (len > 0 && line[len - 1] == '\n') /* its messages end in one; a path inside may hold more */
        line[--len] = '\0';
    cf_log_message(severity >= CL_MSG_ERROR ? CF_LOG_ERROR : severity >= CL_MSG_WARN ? CF_LOG_WARN : CF_LOG_DEBUG,
                   line);
}

static void send_msg(const void *m, size_t n)
{
    pthread_mutex_lock(&send_lock);
    ssize_t w = send(sock, m, n, MSG_NOSIGNAL);
    pthread_mutex_unlock(&send_lock);
    if (w != (ssize_t)n)
        _exit(0); /* the server went away */
}

/* ---- the engine --------------------------------------------------------------------------------- */

/* The scan's own state, handed to callbacks through the ctx of cl_scanmap_callback. */
struct scan_ctx {
    uint64_t id;
    uint64_t size;
    bool saw_rar;          /* the pre-cache callback met a RAR layer */
    bool member_too_large; /* ... or an extracted member that reached MAX_FILESIZE */
    uint64_t member_max;   /* the engine's MAX_FILESIZE */
    /* read-ahead: the last block pulled from the server */
    uint64_t block_off;
    uint32_t block_len;
    bool have_block;
    bool cancelled;        /* the server answered a READ with no data: the scan is abandoned */
    char first_virus[128]; /* the first name the virus-found callback reported */
};

static cl_error_t pre_cache(int fd, const char *type, void *ctx)
{
    struct scan_ctx *c = ctx;
    struct stat st;
    if (c == NULL)
        return CL_SUCCESS;
    if (type != NULL && strcmp(type, "CL_TYPE_RAR") == 0) {
        /* Debian's libclamav cannot unpack RAR: refuse to call what we could not look into clean. */
        c->saw_rar = true;
        return CL_VIRUS;
    }
    /* An archive member larger than MAX_FILESIZE is silently cut to that size when extracted, with
     * no EXCEEDS_MAX alert (notes §2): a member that reached the limit was not scanned whole. */
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size >= c->member_max) {
        c->member_too_large = true;
        return CL_VIRUS;
    }
    return CL_SUCCESS;
}

static void virus_found(int fd, const char *name, void *ctx)
{
    (void)fd;
    struct scan_ctx *c = ctx;
    if (c != NULL && name != NULL && c->first_virus[0] == '\0')
        snprintf(c->first_virus, sizeof c->first_virus, "%s", name);
}

/* A digest of the signature files (names, sizes, modification times) as the database version. */
static void db_digest(const char *dir, char out[64])
{
    DIR *d = opendir(dir);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char h[32];
    unsigned hl = 0;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    if (d != NULL) {
        struct dirent *de;
        char *names[512];
        size_t n = 0;
        while ((de = readdir(d)) != NULL && n < 512)
            if (de->d_name[0] != '.')
                names[n++] = cf_xstrdup(de->d_name);
        closedir(d);
        for (size_t i = 0; i < n; i++) /* a stable order */
            for (size_t j = i + 1; j < n; j++)
                if (strcmp(names[i], names[j]) > 0) {
                    char *t = names[i];
                    names[i] = names[j];
                    names[j] = t;
                }
        for (size_t i = 0; i < n; i++) {
            char path[4096], line[4600];
            struct stat st;
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            if (stat(path, &st) == 0) {
                int l = snprintf(line, sizeof line, "%s %lld %lld\n", names[i], (long long)st.st_size,
                                 (long long)st.st_mtime);
                EVP_DigestUpdate(md, line, (size_t)l);
            }
            free(names[i]);
        }
    }
    EVP_DigestFinal_ex(md, h, &hl);
    EVP_MD_CTX_free(md);
    cf_hex_encode(h, 16, out);
}

/* EICAR, assembled at run time so that no scanner ever flags this program. */
static size_t eicar(char out[80])
{
    static const char *const parts[] = {"X5O!P%@AP[4\\PZX54(P^)7CC)7}$", "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!",
                                        "$H+H*"};
    size_t n = 0;
    for (size_t i = 0; i < 3; i++) {
        memcpy(out + n, parts[i], strlen(parts[i]));
        n += strlen(parts[i]);
    }
    out[n] = '\0';
    return n;
}

static struct cl_scan_options scan_options(void)
{
    struct cl_scan_options o = {0};
    o.general = CL_SCAN_GENERAL_HEURISTICS;
    o.parse = ~0u;
    o.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX | CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE;
    return o;
}

/* Builds, compiles and checks a new engine; NULL (with a reason in the log) if it cannot be trusted. */
static struct cl_engine *build_engine(struct cf_scan_msg_info *out)
{
    unsigned sigs = 0;
    struct cl_engine *e = cl_engine_new();
    if (e == NULL)
        return NULL;
    uint64_t maxfile = opt.max_file < TOO_LARGE ? opt.max_file : TOO_LARGE;
    cl_engine_set_num(e, CL_ENGINE_MAX_FILESIZE, (long long)maxfile);
    /* Scan budget: the whole file and what unpacks from it, several times over; the hard limits
     * are the time, the recursion depth and the member count, all reported through EXCEEDS_MAX. */
    cl_engine_set_num(e, CL_ENGINE_MAX_SCANSIZE, (long long)(maxfile > TOO_LARGE / 4 ? TOO_LARGE : maxfile * 4));
    cl_engine_set_num(e, CL_ENGINE_MAX_SCANTIME, (long long)opt.max_seconds * 1000);
    cl_engine_set_num(e, CL_ENGINE_MAX_RECURSION, 16);
    cl_engine_set_num(e, CL_ENGINE_MAX_FILES, 10000);
    cl_engine_set_str(e, CL_ENGINE_TMPDIR, opt.scratch);
    cl_engine_set_num(e, CL_ENGINE_DISABLE_CACHE, 1); /* see the pitfalls at the top */
    cl_engine_set_clcb_pre_cache(e, pre_cache);
    cl_engine_set_clcb_virus_found(e, virus_found);
    cl_error_t rc = cl_load(opt.db, e, &sigs, CL_DB_STDOPT);
    if (rc != CL_SUCCESS && !(rc == CL_EOPEN && opt.development)) {
        cf_log_error("loading signatures from %s: %s", opt.db, cl_strerror(rc));
        cl_engine_free(e);
        return NULL;
    }
    if (sigs == 0 && !opt.development) {
        cf_log_error("%s holds no signatures (scan.development allows that, for development only)", opt.db);
        cl_engine_free(e);
        return NULL;
    }
    if ((rc = cl_engine_compile(e)) != CL_SUCCESS) {
        cf_log_error("compiling the engine: %s", cl_strerror(rc));
        cl_engine_free(e);
        return NULL;
    }
    /* The canary: with signatures, EICAR must be found through the very path real scans take. */
    if (sigs > 0) {
        char buf[80];
        size_t n = eicar(buf);
        const char *vir = NULL;
        unsigned long scanned = 0;
        struct scan_ctx sc = {0};
        struct cl_scan_options o = scan_options();
        cl_fmap_t *map = cl_fmap_open_memory(buf, n);
        rc = map != NULL ? cl_scanmap_callback(map, "canary", &vir, &scanned, e, &o, &sc) : CL_EMAP;
        if (map != NULL)
            cl_fmap_close(map);
        if (rc != CL_VIRUS) {
            cf_log_error("the EICAR canary was not detected (%s): refusing this engine", cl_strerror(rc));
            cl_engine_free(e);
            return NULL;
        }
    }
    memset(out, 0, sizeof *out);
    snprintf(out->engine, sizeof out->engine, "ClamAV %s", cl_retver());
    db_digest(opt.db, out->database);
    out->signatures = sigs;
    out->development = sigs == 0;
    return e;
}

/* ---- reloading ---------------------------------------------------------------------------------- */

static void reload(const char *why)
{
    struct cf_scan_msg_info ni;
    struct cl_engine *n = build_engine(&ni);
    if (n == NULL) {
        cf_log_error("reload (%s) failed; keeping the current engine", why);
        return;
    }
    pthread_mutex_lock(&engine_lock);
    struct cl_engine *old = engine;
    engine = n;
    info = ni;
    pthread_mutex_unlock(&engine_lock);
    cl_engine_free(old); /* freed for good when the last scan using it releases it */
    struct cf_scan_msg_hello h = {.h = {CF_SCAN_MAGIC, CF_SCAN_HELLO, 0}, .info = ni};
    send_msg(&h, sizeof h);
}

/* SIGUSR1 (the server's SIGHUP) or a change in the signature directory: a new engine. */
static void *reloader(void *arg)
{
    sigset_t *set = arg;
    struct cl_stat st;
    memset(&st, 0, sizeof st);
    cl_statinidir(opt.db, &st);
    for (;;) {
        struct timespec ts = {.tv_sec = DB_CHECK_INTERVAL_S};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGUSR1) {
            reload("signal");
        } else if (cl_statchkdir(&st) == 1) {
            cl_statfree(&st);
            memset(&st, 0, sizeof st);
            cl_statinidir(opt.db, &st);
            reload("signature directory changed");
        }
    }
    return NULL;
}

/* ---- the sandbox -------------------------------------------------------------------------------- */

/* The fmap handle (see the pitfalls at the top): an empty file whose mtime is the epoch, unlinked at
 * once, so that libclamav's fstat of the handle finds the mtime it expects. */
static void make_anchor(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/.fmap-anchor", opt.scratch);
    (void)unlink(path); /* a crashed scanner's, if any */
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    const struct timespec epoch[2] = {{0, 0}, {0, 0}};
    if (fd < 0 || futimens(fd, epoch) != 0 || unlink(path) != 0)
        die("cannot create the fmap anchor in the scratch directory");
    fmap_anchor = fd;
}

static void limits(void)
{
    /* Extracted archive members are written to the scratch tmpfs: bound what one file may be.
     * Address space: the official signatures need about 1.2 GB, twice that while reloading. */
    cf_confine_limits(opt.max_file < TOO_LARGE ? opt.max_file : TOO_LARGE, (uint64_t)6 << 30);
}

/* Landlock: the scratch directory read-write, the signature directory read-only, nothing else (best
 * effort: kernels without Landlock keep the seccomp filter only). seccomp (confine.h): besides the
 * common allowlist, what libclamav and libmagic use. strace of the scan suite (every archive kind,
 * reloads) saw no ioctl at all after the filter is loaded; those confine.h lets through are what the
 * libraries could still call: isatty/tcgetattr (TCGETS, read-only), libmagic's FIONREAD, and the
 * Rust standard library's descriptor flags inside libclamav (FIONBIO, FIOCLEX, FIONCLEX). */
static void confine(void)
{
    const struct cf_landlock_rule rules[] = {
        {opt.scratch, cf_landlock_scratch()},
        {opt.db, cf_landlock_read()},
    };
    static const int allow[] = {SCMP_SYS(rt_sigtimedwait), SCMP_SYS(getpgrp), SCMP_SYS(fchmodat),
                                SCMP_SYS(utimensat)};
    const struct cf_confinement c = {.rules = rules, .nrules = sizeof rules / sizeof rules[0],
                                     .allow = allow, .nallow = sizeof allow / sizeof allow[0]};
    const char *why = cf_confine_enter(&c);
    if (why != NULL)
        die(why);
}

/* ---- scanning ----------------------------------------------------------------------------------- */

/* One READ/DATA round trip: up to len (≤ CF_SCAN_READ_MAX) bytes at offset into buf. -1 if the
 * server answered with no data (a scan it abandoned: an upload scanned while it arrived whose client
 * went away): every later read fails at once and the verdict says so. */
static ssize_t pull(struct scan_ctx *c, void *buf, size_t len, uint64_t offset)
{
    static uint8_t msg[sizeof(struct cf_scan_msg_data) + CF_SCAN_READ_MAX];
    struct cf_scan_msg_read rq = {.h = {CF_SCAN_MAGIC, CF_SCAN_READ, c->id}, .offset = offset, .len = (uint32_t)len};
    send_msg(&rq, sizeof rq);
    ssize_t got = recv(sock, msg, sizeof msg, 0);
    if (got >= 0 && cf_scan_data_ok(msg, (size_t)got, c->id, offset, 0)) {
        c->cancelled = true;
        return -1;
    }
    if (got < 0 || !cf_scan_data_ok(msg, (size_t)got, c->id, offset, len))
        _exit(4); /* the server broke the protocol: nothing sensible is left to do */
    memcpy(buf, msg + sizeof(struct cf_scan_msg_data), len);
    return (ssize_t)len;
}

/* libclamav's and libmagic's reads, served from aligned CF_SCAN_READ_MAX blocks pulled from the server
 * (the fmap asks for pages; one round trip per page would be slow). */
static off_t pread_cb(void *handle, void *buf, size_t count, off_t offset)
{
    static uint8_t block[CF_SCAN_READ_MAX];
    struct scan_ctx *c = current;
    (void)handle; /* fmap_anchor */
    size_t done = 0;
    if (offset < 0 || c->cancelled)
        return -1;
    while (done < count && (uint64_t)offset + done < c->size) {
        uint64_t at = (uint64_t)offset + done;
        uint64_t boff = at - at % CF_SCAN_READ_MAX;
        if (!c->have_block || c->block_off != boff) {
            uint64_t left = c->size - boff;
            size_t want = left < CF_SCAN_READ_MAX ? (size_t)left : CF_SCAN_READ_MAX;
            c->have_block = false;
            if (pull(c, block, want, boff) < 0)
                return -1;
            c->block_off = boff;
            c->block_len = (uint32_t)want;
            c->have_block = true;
        }
        size_t within = (size_t)(at - boff);
        size_t n = c->block_len - within;
        if (n > count - done)
            n = count - done;
        memcpy((char *)buf + done, block + within, n);
        done += n;
    }
    return (off_t)done;
}

static bool starts_with(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static void scan(uint64_t id, uint64_t size)
{
    struct cf_scan_msg_verdict v = {.h = {CF_SCAN_MAGIC, CF_SCAN_VERDICT, id}};
    struct scan_ctx c = {.id = id, .size = size, .member_max = opt.max_file < TOO_LARGE ? opt.max_file : TOO_LARGE};
    pthread_mutex_lock(&engine_lock);
    struct cl_engine *e = engine;
    cl_engine_addref(e); /* a reload may swap the engine; this scan keeps the one it started with */
    v.info = info;
    pthread_mutex_unlock(&engine_lock);

    /* The type, from a bounded prefix of the content (never from a name or a header). */
    static uint8_t head[SNIFF_PREFIX];
    size_t hn = (size_t)(size < SNIFF_PREFIX ? size : SNIFF_PREFIX);
    current = &c;
    off_t hr = hn > 0 ? pread_cb(NULL, head, hn, 0) : 0;
    size_t got = hr > 0 ? (size_t)hr : 0;
    const char *mime = size == 0 ? "application/x-empty" : magic_buffer(cookie, head, got);
    snprintf(v.mime, sizeof v.mime, "%s", mime != NULL && strchr(mime, '/') != NULL ? mime : "application/octet-stream");

    if (size == 0) {
        v.result = CF_SCAN_CLEAN;
    } else if (size >= TOO_LARGE) {
        v.result = CF_SCAN_UNSCANNABLE;
        snprintf(v.signature, sizeof v.signature, "Coffer.Unscannable.TooLarge");
    } else if (v.info.development && v.info.signatures == 0) {
        v.result = CF_SCAN_CLEAN; /* development mode: said loudly at start and in /healthz */
    } else {
        const char *vir = NULL;
        unsigned long scanned = 0;
        struct cl_scan_options o = scan_options();
        cl_fmap_t *map = cl_fmap_open_handle((void *)(intptr_t)fmap_anchor, 0, (size_t)size, pread_cb, 1);
        cl_error_t rc = map != NULL ? cl_scanmap_callback(map, NULL, &vir, &scanned, e, &o, &c) : CL_EMAP;
        if (map != NULL)
            cl_fmap_close(map);
        const char *name = vir != NULL ? vir : c.first_virus[0] != '\0' ? c.first_virus : NULL;
        if (rc == CL_CLEAN) {
            v.result = CF_SCAN_CLEAN;
        } else if (rc == CL_VIRUS) {
            if (c.saw_rar)
                name = "Coffer.Unscannable.RAR";
            else if (c.member_too_large)
                name = "Coffer.Unscannable.MemberTooLarge";
            else if (name == NULL)
                name = "Heuristics.Limits.Exceeded"; /* top-level MAX_FILESIZE reports no name */
            bool unscannable = starts_with(name, "Heuristics.Limits.Exceeded") ||
                               starts_with(name, "Heuristics.Encrypted.") || starts_with(name, "Coffer.Unscannable.");
            v.result = unscannable ? CF_SCAN_UNSCANNABLE : CF_SCAN_INFECTED;
            snprintf(v.signature, sizeof v.signature, "%s", name);
        } else {
            v.result = CF_SCAN_ERROR;
            snprintf(v.signature, sizeof v.signature, "%s", cl_strerror(rc));
        }
    }
    if (c.cancelled) { /* whatever libclamav made of the failed reads: no verdict */
        v.result = CF_SCAN_ERROR;
        snprintf(v.signature, sizeof v.signature, "Coffer.Cancelled");
    }
    current = NULL; /* c ends here */
    /* The name lives in the engine's memory: it was copied above, before this reference goes. */
    cl_engine_free(e);
    send_msg(&v, sizeof v);
}

static void parse_args(int argc, char **argv)
{
    opt.max_seconds = 60;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        if (strcmp(a, "--development") == 0) {
            opt.development = true;
            continue;
        }
        if (strcmp(a, "--log-json") == 0)
            continue; /* taken by main (cf_confine_begin) before anything is logged */
        if (val == NULL)
            die("usage: coffer-scan --db DIR --scratch DIR --max-file BYTES --max-seconds N [--development] "
                "[--log-json] [--log-level N]");
        i++;
        if (strcmp(a, "--db") == 0)
            opt.db = val;
        else if (strcmp(a, "--scratch") == 0)
            opt.scratch = val;
        else if (strcmp(a, "--max-file") == 0 && cf_parse_u64(val, strlen(val), UINT64_MAX, &u) == CF_OK)
            opt.max_file = u;
        else if (strcmp(a, "--max-seconds") == 0 && cf_parse_u64(val, strlen(val), 3600, &u) == CF_OK && u > 0)
            opt.max_seconds = (unsigned)u;
        else if (!cf_confine_arg(a, val, &opt.ids))
            die("bad arguments");
    }
    if (opt.db == NULL || opt.scratch == NULL || opt.max_file == 0)
        die("--db, --scratch and --max-file are required");
}

#ifdef CF_FAULT_INJECTION
/* Fault-injection builds only (never a release build): with COFFER_TEST_SCANNER_IOCTL=1 in the
 * environment, the confined scanner tries terminal ioctls on its stderr and logs what the kernel
 * answered, so that tests/integration/hardening.test.mjs can prove the filter from outside. Each
 * probe is harmless where it is allowed: TIOCSETD sets the line discipline the terminal already
 * has. */
static void ioctl_self_check(void)
{
    const char *on = getenv("COFFER_TEST_SCANNER_IOCTL");
    if (on == NULL || strcmp(on, "1") != 0)
        return;
    struct termios t;
    char c = '\n', sub = 0; /* TIOCLINUX subcode 0 does nothing (EINVAL even on a console) */
    int ldisc = N_TTY;
    const struct {
        const char *name;
        unsigned long req;
        void *arg;
    } probes[] = {{"TCGETS", TCGETS, &t}, {"TIOCSTI", TIOCSTI, &c}, {"TIOCSETD", TIOCSETD, &ldisc},
                  {"TIOCLINUX", TIOCLINUX, &sub}};
    char line[160] = "";
    size_t len = 0;
    for (size_t i = 0; i < sizeof probes / sizeof probes[0] && len < sizeof line; i++) {
        int rc = ioctl(STDERR_FILENO, probes[i].req, probes[i].arg);
        int n = snprintf(line + len, sizeof line - len, " %s=%d/%d", probes[i].name, rc, rc < 0 ? errno : 0);
        len += n > 0 ? (size_t)n : 0;
    }
    cf_log_warn("ioctl self-check (test build):%s", line);
}
#endif

/* Started only by the server (scan.c), with its socket as CF_SCAN_FD; by hand it refuses to run. */
int main(int argc, char **argv)
{
    sigset_t set;
    pthread_t rt;
    umask(077); /* what it creates in its scratch directory is its own, as everything of coffer's */
    /* Only the socket and stdio, no controlling terminal, our lines in the server's format on the
     * stderr we share with it; a write past RLIMIT_FSIZE fails (scan error) instead of killing us. */
    cf_confine_begin("scan-worker", CF_SCAN_FD, argc, argv);
    cl_set_clcb_msg(clamav_message);
    parse_args(argc, argv);
    /* The service account before anything is read; archive members that libclamav extracts into the
     * scratch directory are plaintext: it must be a tmpfs. */
    cf_confine_account(&opt.ids, opt.scratch);
    limits();
    make_anchor();
    tzset(); /* libclamav names its temp directories with localtime: load the zone before the sandbox */
    if (cl_init(CL_INIT_DEFAULT) != CL_SUCCESS)
        die("cl_init failed");
    if ((engine = build_engine(&info)) == NULL)
        die("no usable engine");
    if ((cookie = magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS)) == NULL || magic_load(cookie, NULL) != 0)
        die("libmagic could not load its database");
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* Both confinements bind the calling thread and the threads it creates later: the reload thread
     * is created after them. */
    confine();
#ifdef CF_FAULT_INJECTION
    ioctl_self_check();
#endif
    if (pthread_create(&rt, NULL, reloader, &set) != 0)
        die("cannot start the reload thread");
    struct cf_scan_msg_hello h = {.h = {CF_SCAN_MAGIC, CF_SCAN_HELLO, 0}, .info = info};
    send_msg(&h, sizeof h);
    for (;;) {
        struct cf_scan_msg_scan m;
        ssize_t got = recv(sock, &m, sizeof m, 0);
        if (got == 0)
            _exit(0); /* the server closed the socket: it is stopping */
        if (got != (ssize_t)sizeof m || m.h.magic != CF_SCAN_MAGIC || m.h.type != CF_SCAN_SCAN)
            _exit(4);
        scan(m.h.id, m.size);
    }
}
