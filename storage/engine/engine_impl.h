/*
 * engine_impl.h: what an engine implementation fills in (engine room only: rocks.c, pg.c, dispatch.c).
 * Every open store, batch and iterator starts with the table of its engine's operations; dispatch.c's
 * cf_eng_* / cf_batch_* / cf_eiter_* are one indirect call through it, so the engine is chosen at run
 * time (cf_eng_open: RocksDB in a directory; cf_eng_open_pg: PostgreSQL) and the model never knows
 * which one it talks to. Each operation has the contract engine.h states for its cf_ name.
 */
#ifndef CF_ENGINE_IMPL_H
#define CF_ENGINE_IMPL_H

#include "engine.h"

struct cf_eng_ops {
    const char *name; /* "rocksdb", "postgresql" */
    void (*close)(struct cf_eng *e);
    bool (*has)(const struct cf_eng *e, unsigned ks);
    int (*flush)(struct cf_eng *e, char **err);
    void (*stats)(struct cf_eng *e, struct cf_eng_stats *out);
    int (*get)(struct cf_eng *e, unsigned ks, const void *key, size_t klen, char **val, size_t *vlen, char **err);
    int (*get_view)(struct cf_eng *e, unsigned ks, const void *key, size_t klen,
                    void (*fn)(void *ctx, const char *val, size_t vlen), void *ctx, char **err);
    int (*write)(struct cf_eng *e, const struct cf_batch *b, bool sync, char **err);
    int (*sync)(struct cf_eng *e, char **err);
    void (*compact)(struct cf_eng *e, unsigned ks, const void *lo, size_t lolen, const void *hi, size_t hilen,
                    bool force);
    /* batches */
    struct cf_batch *(*batch_new)(struct cf_eng *e);
    void (*batch_free)(struct cf_batch *b);
    void (*batch_put)(struct cf_batch *b, unsigned ks, const void *key, size_t klen, const void *val, size_t vlen);
    void (*batch_delete)(struct cf_batch *b, unsigned ks, const void *key, size_t klen);
    void (*batch_delete_range)(struct cf_batch *b, unsigned ks, const void *lo, size_t lolen, const void *hi,
                               size_t hilen);
    size_t (*batch_count)(const struct cf_batch *b);
    void (*batch_clear)(struct cf_batch *b);
    void (*batch_save)(struct cf_batch *b);
    int (*batch_rollback)(struct cf_batch *b, char **err);
    int (*batch_each)(const struct cf_batch *b, cf_batch_fn fn, void *ctx);
    /* the change feed: NULL for an engine without one (cf_eng_* answer CF_ENG_NOTFOUND) */
    int (*change_seq)(struct cf_eng *e, uint64_t *seq, char **err);
    int (*changes)(struct cf_eng *e, uint64_t after, cf_batch_fn fn, void *ctx, uint64_t *last, char **err);
    /* cluster locks (engine.h cf_eng_lock): RocksDB's do nothing (one process writes its store) */
    int (*lock)(struct cf_eng *e, enum cf_eng_lock which, char **err);
    void (*unlock)(struct cf_eng *e, enum cf_eng_lock which);
    bool (*multiwriter)(const struct cf_eng *e);
    /* leases and shared counters: NULL for an engine without shared state (CF_ENG_NOTFOUND) */
    int (*lease)(struct cf_eng *e, const void *name, size_t nl, const uint8_t *holder, uint32_t ttl_ms, bool *held,
                 char **err);
    int (*lease_drop)(struct cf_eng *e, const void *name, size_t nl, const uint8_t *holder, char **err);
    int (*counter)(struct cf_eng *e, enum cf_eng_ctr_op op, const void *key, size_t kl, struct cf_eng_ctr *c,
                   char **err);
    int (*window)(struct cf_eng *e, const void *key, size_t kl, struct cf_eng_window *w, char **err);
    /* iterators */
    struct cf_eiter *(*iter_open)(struct cf_eng *e, unsigned ks, const void *lo, size_t lolen, const void *hi,
                                  size_t hilen);
    void (*iter_close)(struct cf_eiter *it);
    void (*iter_seek_to_first)(struct cf_eiter *it);
    void (*iter_seek)(struct cf_eiter *it, const void *k, size_t kl);
    void (*iter_seek_for_prev)(struct cf_eiter *it, const void *k, size_t kl);
    bool (*iter_valid)(const struct cf_eiter *it);
    void (*iter_next)(struct cf_eiter *it);
    void (*iter_prev)(struct cf_eiter *it);
    const char *(*iter_key)(const struct cf_eiter *it, size_t *kl);
    const char *(*iter_value)(const struct cf_eiter *it, size_t *vl);
    int (*iter_status)(const struct cf_eiter *it, char **err);
};

/* The first member of every engine's store, batch and iterator. */
struct cf_eng {
    const struct cf_eng_ops *ops;
};
struct cf_batch {
    const struct cf_eng_ops *ops;
};
struct cf_eiter {
    const struct cf_eng_ops *ops;
};

/* Messages: malloc'ed copies (cf_eng_free is free()). */
char *cf_eng_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
