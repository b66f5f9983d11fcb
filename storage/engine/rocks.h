/*
 * rocks.h: the RocksDB engine's own entry points beyond engine.h, for its backup code and for unit
 * tests that build batches the model never writes (odd records, damaged serialized forms). Nothing
 * in the model includes it: what a batch holds is listed by engine.h's cf_batch_each.
 */
#ifndef CF_ENGINE_ROCKS_H
#define CF_ENGINE_ROCKS_H

#include <rocksdb/c.h>

#include "engine.h"

/* Whether e is a RocksDB engine (the calls below take only those). */
bool cf_rocks_is(const struct cf_eng *e);
/* The RocksDB database under e and the column family of keyspace ks (rocks_backup.c; unit tests
 * that build what the model never writes). */
rocksdb_t *cf_rocks_db(const struct cf_eng *e);
rocksdb_column_family_handle_t *cf_rocks_cf(const struct cf_eng *e, unsigned ks);
/* The RocksDB write batch under b, and its serialized form (what journal.c parses; tests build odd
 * batches through the first). */
rocksdb_writebatch_t *cf_rocks_batch(const struct cf_batch *b);
const char *cf_rocks_batch_rep(const struct cf_batch *b, size_t *size);
/* A batch of e made from a serialized form (tests: truncated or damaged batches); free with
 * cf_batch_free. */
struct cf_batch *cf_rocks_batch_from(struct cf_eng *e, const char *rep, size_t size);
/* The column family id of keyspace ks (the number a serialized batch names it by). */
uint32_t cf_rocks_ks_id(const struct cf_eng *e, unsigned ks);

#endif
