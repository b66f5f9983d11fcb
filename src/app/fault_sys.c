/*
 * fault_sys.c: write and sync failures injected below RocksDB (fault builds only, linked into the
 * server executable; see storage/fault.h). The executable's definitions of write, pwrite, writev,
 * fsync and fdatasync take precedence over libc's for every shared library, librocksdb included;
 * they call through to the next definition (libc's, or the sanitizer's interceptor) unless a fault
 * of their kind is armed and the descriptor is a regular file (sockets and pipes are never failed).
 */
/* Both pwrite and pwrite64 are defined below; with 64-bit off_t (x86-64) they are the same call. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "storage/fault.h"

#define NEXT(name, type)                                                                                     \
    static _Atomic(type) next_##name;                                                                        \
    type fn = atomic_load(&next_##name);                                                                     \
    if (fn == NULL) {                                                                                        \
        void *sym = dlsym(RTLD_NEXT, #name);                                                                 \
        memcpy(&fn, &sym, sizeof fn);                                                                        \
        atomic_store(&next_##name, fn);                                                                      \
    }

static bool fail_on(enum cf_fault_kind k, int fd)
{
    struct stat st;
    if (!cf_fault_armed(k) || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !cf_fault(k))
        return false;
    errno = EIO;
    return true;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef int (*sync_fn)(int);

ssize_t write(int fd, const void *buf, size_t n)
{
    NEXT(write, write_fn)
    return fail_on(CF_FAULT_WRITE, fd) ? -1 : fn(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    NEXT(pwrite, pwrite_fn)
    return fail_on(CF_FAULT_WRITE, fd) ? -1 : fn(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    NEXT(pwrite64, pwrite_fn)
    return fail_on(CF_FAULT_WRITE, fd) ? -1 : fn(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    NEXT(writev, writev_fn)
    return fail_on(CF_FAULT_WRITE, fd) ? -1 : fn(fd, iov, cnt);
}

int fsync(int fd)
{
    NEXT(fsync, sync_fn)
    return fail_on(CF_FAULT_FSYNC, fd) ? -1 : fn(fd);
}

int fdatasync(int fd)
{
    NEXT(fdatasync, sync_fn)
    return fail_on(CF_FAULT_FSYNC, fd) ? -1 : fn(fd);
}
