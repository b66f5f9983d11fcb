/*
 * fault.h: fault injection for tests (meson option fault_injection; never in production builds).
 *
 * A test arms one kind with N; the N-th following call of that kind fails, once, and the kind is
 * disarmed. The call sites:
 *   CF_FAULT_ALLOC  fallible allocations (cf_try_malloc: the per-request chunk buffers; everything
 *                   else aborts on OOM by design, see base.h)
 *   CF_FAULT_WRITE  write(2)/pwrite(2)/writev(2) to a regular file (RocksDB's WAL, tables, manifest)
 *   CF_FAULT_FSYNC  fsync(2)/fdatasync(2)
 *   CF_FAULT_DB     a RocksDB write call (cf_db_write/cf_db_put/cf_db_delete), failed before RocksDB sees it
 *   CF_FAULT_SCAN   a scanner call (the job fails as if the scanner had crashed)
 *   CF_FAULT_CLEARTEXT  the TLS check of a request with HTTP Basic (src/http/conn.c, cf_conn_is_tls):
 *                   the request is treated as if it came over a cleartext listener (none exists)
 * WRITE and FSYNC are caught below RocksDB by interposing the system calls (src/fault_sys.c, linked
 * into fault builds of the server only). Without CF_FAULT_INJECTION every hook is a constant false.
 */
#ifndef CF_FAULT_H
#define CF_FAULT_H

#include <stdbool.h>
#include <stdint.h>

enum cf_fault_kind { CF_FAULT_ALLOC, CF_FAULT_WRITE, CF_FAULT_FSYNC, CF_FAULT_DB, CF_FAULT_SCAN, CF_FAULT_CLEARTEXT,
                     CF_FAULT_KINDS };

#ifdef CF_FAULT_INJECTION
/* cf_fault(k): true if this call of kind k must fail. Thread: any. */
bool cf_fault(enum cf_fault_kind k);
/* cf_fault_armed(k): whether a fault of kind k is armed (cheap; lets hot paths skip work). */
bool cf_fault_armed(enum cf_fault_kind k);
/* cf_fault_arm(k, n): the n-th following call of kind k fails (n ≥ 1); n = 0 disarms. */
void cf_fault_arm(enum cf_fault_kind k, uint64_t n);
/* cf_fault_fired(k): how many faults of kind k fired since the process started. */
uint64_t cf_fault_fired(enum cf_fault_kind k);
/* cf_fault_kind_name(k): "alloc", "write", "fsync", "db", "scan" or "cleartext". */
const char *cf_fault_kind_name(enum cf_fault_kind k);
/* cf_fault_kind_parse(name): the kind named as cf_fault_kind_name says; -1 if none. */
int cf_fault_kind_parse(const char *name);
#else
static inline bool cf_fault(enum cf_fault_kind k)
{
    (void)k;
    return false;
}
#endif

#endif
