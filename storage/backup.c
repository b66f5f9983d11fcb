/*
 * backup.c: online, consistent, incremental backups of a store with RocksDB's BackupEngine.
 *
 * A backup directory (one per store, any number of backups in it) looks like this:
 *   coffer-backup              marker ("coffer-backup-v1"); also the lock every command takes
 *   meta/ID                    the engine's list of files of backup ID, each with its CRC32C
 *   shared_checksum/NAME.sst   table and blob files (.blob), named by content and shared between backups
 *   private/ID/                the backup's own MANIFEST, CURRENT, OPTIONS and live WAL tail
 *
 * Consistency: the engine stops file deletions, flushes every column family, and copies the live
 * table and blob files with the WAL up to its size at that moment, so a restore replays whole write
 * batches only: a backup is the store as of one instant, never half a commit (a batch spans column
 * families). Incremental: a table or blob file already in shared_checksum/ is not copied again; as
 * chunks live in blob files that are never rewritten (blob GC aside), a new backup copies roughly
 * the content uploaded since the last one.
 *
 * What a backup holds is exactly what the data directory holds: ciphertext, opaque ids, keyed
 * hashes, tenant keys wrapped under the master key. The master key is not in it, so a backup alone
 * opens nothing; it must be kept (separately) with the master key it was made under.
 *
 * Files are private because the process umask is 077 (cli.c sets it first thing); the directory and
 * the marker are created 0700 and 0600 explicitly. Every command holds an exclusive flock on the
 * marker: the engine, opened read-write by every command (the 7.8 C API has no read-only engine),
 * may delete the partial files of a backup it believes abandoned.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"

#define MARKER_NAME "coffer-backup"
#define MARKER_FORMAT "coffer-backup-v1\n"
#define MARKER_TEXT                                                                                                    \
    MARKER_FORMAT "This directory holds RocksDB BackupEngine backups of a Coffer store (ciphertext only).\n"            \
                  "The master key is not in it: keep a copy of the master key file separately (docs/OPERATIONS.md).\n"
#define META_MAX (64u << 20)     /* bytes of one meta file we are willing to read */
#define READ_BUF (1u << 20)      /* bytes read at a time while checksumming */
#define MAX_REPORTED_PROBLEMS 10 /* problems spelled out in one verify message */

/* ---- the directory and its lock ------------------------------------------------------------- */

static bool dir_is_empty(const char *dir, bool *empty)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return false;
    struct dirent *de;
    *empty = true;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            *empty = false;
            break;
        }
    closedir(d);
    return true;
}

/* Opens (for create: makes) the backup directory and takes its lock; *fd is the locked marker. */
static enum cf_status lock_dir(const char *dir, bool create, int *fd, char **why)
{
    struct stat st;
    char *marker = cf_xasprintf("%s/" MARKER_NAME, dir);
    enum cf_status status = CF_OK;
    *fd = -1;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || !create) {
            *why = cf_xasprintf("%s: %s", dir, strerror(errno));
            status = errno == ENOENT ? CF_ENOTFOUND : CF_EIO;
            goto out;
        }
        if (mkdir(dir, 0700) != 0) {
            *why = cf_xasprintf("%s: cannot create the backup directory: %s", dir, strerror(errno));
            status = CF_EIO;
            goto out;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        *why = cf_xasprintf("%s is not a directory", dir);
        status = CF_EINVAL;
        goto out;
    }
    *fd = open(marker, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (*fd < 0 && errno == ENOENT && create) {
        bool empty;
        if (!dir_is_empty(dir, &empty)) {
            *why = cf_xasprintf("%s: %s", dir, strerror(errno));
            status = CF_EIO;
            goto out;
        }
        if (!empty) {
            /* Never mix backups with other files: restore and purge own everything in here. */
            *why = cf_xasprintf("%s is not empty and is not a Coffer backup directory (it has no %s file); "
                                "choose a new or empty directory",
                                dir, MARKER_NAME);
            status = CF_EINVAL;
            goto out;
        }
        *fd = open(marker, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (*fd >= 0 && (write(*fd, MARKER_TEXT, sizeof MARKER_TEXT - 1) != (ssize_t)(sizeof MARKER_TEXT - 1) ||
                         fsync(*fd) != 0)) {
            *why = cf_xasprintf("%s: %s", marker, strerror(errno));
            status = CF_EIO;
            goto out;
        }
    }
    if (*fd < 0) {
        if (errno == ENOENT) {
            *why = cf_xasprintf("%s is not a Coffer backup directory (it has no %s file)", dir, MARKER_NAME);
            status = CF_EINVAL;
        } else {
            *why = cf_xasprintf("%s: %s", marker, strerror(errno));
            status = CF_EIO;
        }
        goto out;
    }
    char head[sizeof MARKER_FORMAT - 1];
    if (pread(*fd, head, sizeof head, 0) != (ssize_t)sizeof head || memcmp(head, MARKER_FORMAT, sizeof head) != 0) {
        *why = cf_xasprintf("%s: not a Coffer backup marker (or a newer format than this coffer reads)", marker);
        status = CF_EINVAL;
        goto out;
    }
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            *why = cf_xasprintf("%s is in use by another coffer command (a backup, verify or restore); "
                                "try again when it has finished",
                                dir);
            status = CF_EBUSY;
        } else {
            *why = cf_xasprintf("%s: cannot lock: %s", marker, strerror(errno));
            status = CF_EIO;
        }
        goto out;
    }
out:
    if (status != CF_OK && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    free(marker);
    return status;
}

/* Bytes in regular files under dir (recursively): what the directory occupies. */
static uint64_t tree_bytes(int dfd)
{
    uint64_t sum = 0;
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return 0;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode))
            sum += (uint64_t)st.st_size;
        else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
            if (sub >= 0)
                sum += tree_bytes(sub);
        }
    }
    closedir(d);
    return sum;
}

static uint64_t dir_bytes(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? 0 : tree_bytes(fd);
}

/* ---- the engine ------------------------------------------------------------------------------ */

/* The storage engine's backups (engine/engine.h), as this file calls them. */
struct engine {
    struct cf_eng_backups *be;
};

static enum cf_status engine_open(const char *dir, struct engine *e, char **why)
{
    char *err = NULL;
    if (cf_eng_backups_open(dir, &e->be, &err) != CF_ENG_OK) {
        *why = cf_xasprintf("%s: cannot open the backups: %s", dir, err);
        cf_eng_free(err);
        return CF_EIO;
    }
    return CF_OK;
}

static void engine_close(struct engine *e)
{
    cf_eng_backups_close(e->be);
}

/* Every backup in the directory, oldest first (the engine lists them by id). */
static void engine_list(struct engine *e, struct cf_backup_info **out, size_t *n)
{
    struct cf_eng_backup *info;
    size_t count = cf_eng_backups_list(e->be, &info);
    *out = cf_xcalloc(count > 0 ? count : 1, sizeof **out);
    *n = count;
    for (size_t i = 0; i < count; i++) {
        struct cf_backup_info *b = &(*out)[i];
        b->id = info[i].id;
        b->created_at = info[i].timestamp > 0 ? (uint64_t)info[i].timestamp * 1000 : 0;
        b->size = info[i].size;
        b->files = info[i].files;
    }
    free(info);
}

/* The ids of meta/ files that the engine did not load: it leaves out, silently, a backup one of whose
 * files is missing or has the wrong size. Malloc'ed array of *n ids (NULL when none). */
static uint32_t *unloaded_ids(const char *dir, const struct cf_backup_info *list, size_t n, size_t *out_n)
{
    char *meta = cf_xasprintf("%s/meta", dir);
    DIR *d = opendir(meta);
    uint32_t *ids = NULL;
    size_t count = 0;
    free(meta);
    *out_n = 0;
    if (d == NULL)
        return NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t id;
        if (cf_parse_u64(de->d_name, strlen(de->d_name), UINT32_MAX, &id) != CF_OK || id == 0)
            continue; /* ".", "..", and the engine's temporary files */
        bool loaded = false;
        for (size_t i = 0; i < n && !loaded; i++)
            loaded = list[i].id == id;
        if (!loaded) {
            ids = cf_xrealloc(ids, (count + 1) * sizeof *ids);
            ids[count++] = (uint32_t)id;
        }
    }
    closedir(d);
    *out_n = count;
    return ids;
}

/* ---- create and list --------------------------------------------------------------------------- */

enum cf_status cf_backup_create(struct cf_store *s, const char *dir, uint32_t keep, struct cf_backup_created *out,
                                char **why)
{
    struct engine e;
    struct cf_backup_info *list = NULL;
    size_t n = 0;
    char *err = NULL;
    int fd;
    enum cf_status st;

    *why = NULL;
    memset(out, 0, sizeof *out);
    if (atomic_load(&s->write_failed)) {
        *why = cf_xstrdup("the store failed a write earlier and refuses to flush; restart the server first");
        return CF_EIO;
    }
    if ((st = lock_dir(dir, true, &fd, why)) != CF_OK)
        return st;
    uint64_t before = dir_bytes(dir);
    if ((st = engine_open(dir, &e, why)) != CF_OK)
        goto err0;
    /* The engine flushes first and keeps the backup consistent across keyspaces. */
    if (cf_eng_backup_create(e.be, s->eng, &err) != CF_ENG_OK) {
        *why = cf_xasprintf("%s: the backup failed: %s", dir, err);
        cf_eng_free(err);
        st = CF_EIO;
        goto err1;
    }
    uint64_t after = dir_bytes(dir);
    out->copied = after > before ? after - before : 0;
    engine_list(&e, &list, &n);
    if (n == 0) {
        *why = cf_xasprintf("%s: the engine reports no backup after creating one", dir);
        st = CF_EIO;
        goto err1;
    }
    out->info = list[n - 1];
    for (size_t i = 0; i < n; i++)
        if (list[i].id > out->info.id)
            out->info = list[i];
    out->count = (uint32_t)n;
    if (keep > 0 && n > keep) {
        if (cf_eng_backups_purge(e.be, keep, &err) != CF_ENG_OK) {
            *why = cf_xasprintf("%s: backup %u was created, but purging the older ones failed: %s", dir,
                                out->info.id, err);
            cf_eng_free(err);
            st = CF_EIO;
            goto err1;
        }
        out->purged = (uint32_t)(n - keep);
        out->count = keep;
    }
    st = CF_OK;
err1:
    free(list);
    engine_close(&e);
err0:
    close(fd);
    return st;
}

enum cf_status cf_backup_list(const char *dir, struct cf_backup_info **out, size_t *n, size_t *damaged, char **why)
{
    struct engine e;
    int fd;
    enum cf_status st;
    *why = NULL;
    *out = NULL;
    *n = 0;
    *damaged = 0;
    if ((st = lock_dir(dir, false, &fd, why)) != CF_OK)
        return st;
    if ((st = engine_open(dir, &e, why)) == CF_OK) {
        engine_list(&e, out, n);
        engine_close(&e);
        free(unloaded_ids(dir, *out, *n, damaged));
    }
    close(fd);
    return st;
}

/* ---- verify: every file against the CRC32C the engine recorded ------------------------------- */

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum BackupEngine records in its
 * meta files. A byte-at-a-time table: fast enough next to the disk for a verification pass. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n-- > 0)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* One file named by a meta file. */
struct meta_file {
    char *path;      /* relative to the backup directory */
    uint32_t crc;    /* CRC32C of its content */
    uint32_t backup; /* a backup that lists it (for messages) */
};

struct meta_files {
    struct meta_file *v;
    size_t n, cap;
};

static void meta_files_clear(struct meta_files *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].path);
    free(m->v);
}

static bool path_is_safe(const char *p)
{
    /* The engine writes names like shared_checksum/000010_…blob and private/3/MANIFEST-000005. */
    if (p[0] == '\0' || p[0] == '/' || strstr(p, "..") != NULL)
        return false;
    for (const char *c = p; *c != '\0'; c++)
        if (*c < 0x21 || *c > 0x7e)
            return false;
    return true;
}

/* The whole of a small file, NUL-terminated; NULL (errno set) if unreadable or over META_MAX. */
static char *read_small_file(const char *path, size_t *len)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    int bad = fstat(fd, &sb) != 0 ? errno : !S_ISREG(sb.st_mode) || sb.st_size > (off_t)META_MAX ? EFBIG : 0;
    if (bad != 0) {
        close(fd);
        errno = bad;
        return NULL;
    }
    size_t cap = (size_t)sb.st_size, n = 0;
    char *buf = cf_xmalloc(cap + 1);
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r <= 0) {
            if (r == 0)
                errno = EIO; /* shrank under us */
            free(buf);
            close(fd);
            return NULL;
        }
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Reads meta/ID: the timestamp, the sequence number, optional lines (metadata), the file count,
 * then one line per file: "PATH crc32 DECIMAL" (possibly followed by more key/value pairs). */
static enum cf_status meta_read(const char *dir, const struct cf_backup_info *b, struct meta_files *m, char **why)
{
    char *path = cf_xasprintf("%s/meta/%u", dir, b->id);
    size_t len, listed = 0;
    errno = 0;
    char *text = read_small_file(path, &len);
    enum cf_status st = CF_OK;
    if (text == NULL) {
        *why = cf_xasprintf("backup %u: %s: %s", b->id, path, errno != 0 ? strerror(errno) : "unreadable");
        free(path);
        return CF_ECORRUPT;
    }
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *tok_save = NULL;
        char *name = strtok_r(line, " ", &tok_save);
        char *key = name != NULL ? strtok_r(NULL, " ", &tok_save) : NULL;
        bool found = false;
        uint64_t crc = 0;
        while (key != NULL) {
            char *val = strtok_r(NULL, " ", &tok_save);
            if (val == NULL)
                break;
            if (strcmp(key, "crc32") == 0) {
                if (cf_parse_u64(val, strlen(val), UINT32_MAX, &crc) != CF_OK)
                    break;
                found = true;
            }
            key = strtok_r(NULL, " ", &tok_save);
        }
        if (!found)
            continue; /* a header line */
        if (!path_is_safe(name)) {
            *why = cf_xasprintf("backup %u: %s names an unexpected file", b->id, path);
            st = CF_ECORRUPT;
            break;
        }
        if (m->n == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 64;
            m->v = cf_xrealloc(m->v, m->cap * sizeof *m->v);
        }
        m->v[m->n++] = (struct meta_file){.path = cf_xstrdup(name), .crc = (uint32_t)crc, .backup = b->id};
        listed++;
    }
    if (st == CF_OK && b->files != UINT32_MAX && listed != b->files) {
        *why = cf_xasprintf("backup %u: %s lists %zu files, the engine counts %u", b->id, path, listed, b->files);
        st = CF_ECORRUPT;
    }
    free(text);
    free(path);
    return st;
}

static int meta_file_cmp(const void *a, const void *b)
{
    return strcmp(((const struct meta_file *)a)->path, ((const struct meta_file *)b)->path);
}

/* Appends a problem to the report (the first MAX_REPORTED_PROBLEMS are spelled out). */
static void add_problem(char **why, size_t *count, char *msg)
{
    if (*count < MAX_REPORTED_PROBLEMS) {
        char *joined = *why == NULL ? cf_xstrdup(msg) : cf_xasprintf("%s\n%s", *why, msg);
        free(*why);
        *why = joined;
    }
    (*count)++;
    free(msg);
}

/* The backups (among the checked ones) that need path, as text: "backups 2, 3". */
static char *backups_with(const struct meta_files *m, const char *path)
{
    char *s = NULL;
    size_t count = 0;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].path, path) == 0) {
            char *t = s == NULL ? cf_xasprintf("%u", m->v[i].backup) : cf_xasprintf("%s, %u", s, m->v[i].backup);
            free(s);
            s = t;
            count++;
        }
    char *r = cf_xasprintf("%s %s", count == 1 ? "backup" : "backups", s != NULL ? s : "?");
    free(s);
    return r;
}

static enum cf_status check_file(const char *dir, const struct meta_file *f, uint8_t *buf, uint64_t *bytes,
                                 char **problem)
{
    char *path = cf_xasprintf("%s/%s", dir, f->path);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    free(path);
    if (fd < 0) {
        *problem = cf_xasprintf("%s: %s", f->path, strerror(errno));
        return CF_ECORRUPT;
    }
    uint32_t crc = 0;
    ssize_t r;
    while ((r = read(fd, buf, READ_BUF)) > 0) {
        crc = crc32c_update(crc, buf, (size_t)r);
        *bytes += (uint64_t)r;
    }
    int e = errno;
    close(fd);
    if (r < 0) {
        *problem = cf_xasprintf("%s: cannot read: %s", f->path, strerror(e));
        return CF_EIO;
    }
    if (crc != f->crc) {
        *problem = cf_xasprintf("%s: content differs from when it was backed up (CRC32C %08x, recorded %08x)",
                                f->path, crc, f->crc);
        return CF_ECORRUPT;
    }
    return CF_OK;
}

enum cf_status cf_backup_verify(const char *dir, uint32_t id, struct cf_backup_check *out, char **why)
{
    struct engine e;
    struct cf_backup_info *list = NULL;
    struct meta_files m = {0};
    size_t n = 0, problems = 0;
    int fd;
    enum cf_status st;

    *why = NULL;
    memset(out, 0, sizeof *out);
    pthread_once(&crc_once, crc_init);
    if ((st = lock_dir(dir, false, &fd, why)) != CF_OK)
        return st;
    if ((st = engine_open(dir, &e, why)) != CF_OK)
        goto err0;
    engine_list(&e, &list, &n);
    bool any = false;
    size_t nbad;
    uint32_t *bad = unloaded_ids(dir, list, n, &nbad);
    for (size_t i = 0; i < nbad; i++) {
        if (id != 0 && bad[i] != id)
            continue;
        any = true;
        out->backups++;
        add_problem(why, &problems,
                    cf_xasprintf("backup %u: RocksDB cannot load it (a file it needs is missing or has the wrong "
                                 "size); its files follow",
                                 bad[i]));
        /* Its files still get checked below, so that the missing or damaged one is named. */
        struct cf_backup_info b = {.id = bad[i], .files = UINT32_MAX};
        char *merr = NULL;
        if (meta_read(dir, &b, &m, &merr) != CF_OK)
            add_problem(why, &problems, merr);
    }
    free(bad);
    for (size_t i = 0; i < n; i++) {
        if (id != 0 && list[i].id != id)
            continue;
        any = true;
        out->backups++;
        /* The engine's own check: every file there, with its recorded size. */
        char *err = NULL;
        if (cf_eng_backup_verify(e.be, list[i].id, &err) != CF_ENG_OK) {
            add_problem(why, &problems, cf_xasprintf("backup %u: %s", list[i].id, err));
            cf_eng_free(err);
            continue;
        }
        char *merr = NULL;
        if (meta_read(dir, &list[i], &m, &merr) != CF_OK)
            add_problem(why, &problems, merr);
    }
    if (!any) {
        if (n == 0)
            *why = cf_xasprintf("%s holds no backups", dir);
        else
            *why = cf_xasprintf("%s has no backup %u (`coffer backup list` shows the ids)", dir, id);
        st = CF_ENOTFOUND;
        goto err1;
    }
    /* Each file once, however many backups share it. */
    struct meta_files sorted = {.v = cf_xmalloc((m.n ? m.n : 1) * sizeof *m.v), .n = m.n};
    memcpy(sorted.v, m.v, m.n * sizeof *m.v);
    qsort(sorted.v, sorted.n, sizeof *sorted.v, meta_file_cmp);
    uint8_t *buf = cf_xmalloc(READ_BUF);
    for (size_t i = 0; i < sorted.n; i++) {
        if (i > 0 && strcmp(sorted.v[i].path, sorted.v[i - 1].path) == 0) {
            if (sorted.v[i].crc != sorted.v[i - 1].crc)
                add_problem(why, &problems,
                            cf_xasprintf("%s: backups %u and %u record different checksums", sorted.v[i].path,
                                         sorted.v[i - 1].backup, sorted.v[i].backup));
            continue;
        }
        char *problem = NULL;
        out->files++;
        if (check_file(dir, &sorted.v[i], buf, &out->bytes, &problem) != CF_OK) {
            char *who = backups_with(&m, sorted.v[i].path);
            add_problem(why, &problems, cf_xasprintf("%s: %s", who, problem));
            free(who);
            free(problem);
        }
    }
    free(buf);
    free(sorted.v);
    if (problems > MAX_REPORTED_PROBLEMS) {
        char *t = cf_xasprintf("%s\n(and %zu more problems)", *why, problems - MAX_REPORTED_PROBLEMS);
        free(*why);
        *why = t;
    }
    st = problems == 0 ? CF_OK : CF_ECORRUPT;
err1:
    meta_files_clear(&m);
    free(list);
    engine_close(&e);
err0:
    close(fd);
    return st;
}

/* ---- restore ----------------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Empties dir (and removes it if remove_dir). */
static void empty_dir(const char *dir, bool remove_dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char *p = cf_xasprintf("%s/%s", dir, de->d_name);
            nftw(p, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
            free(p);
        }
        closedir(d);
    }
    if (remove_dir)
        rmdir(dir);
}

void cf_backup_discard(const char *dir)
{
    if (dir != NULL)
        empty_dir(dir, true);
}

enum cf_status cf_backup_restore(const char *dir, uint32_t id, const char *to, uint32_t *restored, char **why)
{
    struct engine e;
    struct cf_backup_info *list = NULL;
    size_t n = 0;
    int fd;
    bool created = false, discard = false;
    enum cf_status st;
    struct stat sb;

    *why = NULL;
    *restored = 0;
    if ((st = lock_dir(dir, false, &fd, why)) != CF_OK)
        return st;
    /* The target: a new directory, or an empty one. Never a store, never anything else (the engine
     * deletes what it finds in the target). */
    if (lstat(to, &sb) == 0) {
        bool empty;
        if (!S_ISDIR(sb.st_mode)) {
            *why = cf_xasprintf("%s exists and is not a directory", to);
            st = CF_EEXIST;
            goto err0;
        }
        if (cf_store_is_initialised(to)) {
            *why = cf_xasprintf("%s already holds a store: restore into a new directory (nothing was changed)", to);
            st = CF_EEXIST;
            goto err0;
        }
        if (!dir_is_empty(to, &empty)) {
            *why = cf_xasprintf("%s: %s", to, strerror(errno));
            st = CF_EIO;
            goto err0;
        }
        if (!empty) {
            *why = cf_xasprintf("%s is not empty: restore into a new or empty directory (nothing was changed)", to);
            st = CF_EEXIST;
            goto err0;
        }
    } else if (errno != ENOENT) {
        *why = cf_xasprintf("%s: %s", to, strerror(errno));
        st = CF_EIO;
        goto err0;
    }
    if ((st = engine_open(dir, &e, why)) != CF_OK)
        goto err0;
    engine_list(&e, &list, &n);
    uint32_t pick = 0;
    for (size_t i = 0; i < n; i++)
        if ((id == 0 && list[i].id > pick) || (id != 0 && list[i].id == id))
            pick = list[i].id;
    if (pick == 0) {
        size_t nbad;
        uint32_t *bad = unloaded_ids(dir, list, n, &nbad);
        bool damaged = false;
        for (size_t i = 0; i < nbad; i++)
            damaged |= bad[i] == id;
        free(bad);
        if (damaged) {
            *why = cf_xasprintf("backup %u in %s cannot be loaded (a file it needs is missing or damaged; "
                                "`coffer backup verify` names it): restore another one with --id",
                                id, dir);
            st = CF_ECORRUPT;
        } else {
            *why = n == 0 ? cf_xasprintf("%s holds no backups", dir)
                          : cf_xasprintf("%s has no backup %u (`coffer backup list` shows the ids)", dir, id);
            st = CF_ENOTFOUND;
        }
        goto err1;
    }
    if (mkdir(to, 0700) == 0)
        created = true;
    else if (errno != EEXIST) {
        *why = cf_xasprintf("%s: cannot create: %s", to, strerror(errno));
        st = CF_EIO;
        goto err1;
    }
    /* The engine checks every file's CRC32C as it copies it. */
    char *err = NULL;
    if (cf_eng_backup_restore(e.be, pick, to, &err) != CF_ENG_OK) {
        *why = cf_xasprintf("restoring backup %u failed (nothing is left in %s): %s", pick, to, err);
        cf_eng_free(err);
        discard = true;
        st = strstr(*why, "Corruption") != NULL || strstr(*why, "hecksum") != NULL ? CF_ECORRUPT : CF_EIO;
        goto err1;
    }
    *restored = pick;
    st = CF_OK;
err1:
    free(list);
    engine_close(&e);
    /* After the close: on a failed file the engine returns at once while its copy threads go on
     * writing the others into to until the close joins them. */
    if (discard)
        empty_dir(to, created);
err0:
    close(fd);
    return st;
}
