/*
 * dispatch.c: the engine chosen at run time. Every cf_eng_* / cf_batch_* / cf_eiter_* call of engine.h
 * is one indirect call through the operations table the store, batch or iterator starts with
 * (engine_impl.h): rocks.c fills one, pg.c another. Opening is engine-specific (cf_eng_open for
 * RocksDB in a directory, cf_eng_open_pg for PostgreSQL); everything after is the same seam.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine_impl.h"

void cf_eng_free(void *p)
{
    free(p); /* RocksDB's C API returns malloc'ed strings too (rocksdb_free is free) */
}

char *cf_eng_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *m = malloc(n > 0 ? (size_t)n + 1 : 1);
    if (m == NULL)
        abort();
    va_start(ap, fmt);
    vsnprintf(m, n > 0 ? (size_t)n + 1 : 1, fmt, ap);
    va_end(ap);
    return m;
}

const char *cf_eng_name(const struct cf_eng *e)
{
    return e->ops->name;
}

void cf_eng_close(struct cf_eng *e)
{
    if (e != NULL)
        e->ops->close(e);
}

bool cf_eng_has(const struct cf_eng *e, unsigned ks)
{
    return e->ops->has(e, ks);
}

int cf_eng_flush(struct cf_eng *e, char **err)
{
    return e->ops->flush(e, err);
}

void cf_eng_stats(struct cf_eng *e, struct cf_eng_stats *out)
{
    e->ops->stats(e, out);
}

int cf_eng_get(struct cf_eng *e, unsigned ks, const void *key, size_t klen, char **val, size_t *vlen, char **err)
{
    return e->ops->get(e, ks, key, klen, val, vlen, err);
}

int cf_eng_get_view(struct cf_eng *e, unsigned ks, const void *key, size_t klen,
                    void (*fn)(void *ctx, const char *val, size_t vlen), void *ctx, char **err)
{
    return e->ops->get_view(e, ks, key, klen, fn, ctx, err);
}

int cf_eng_write(struct cf_eng *e, const struct cf_batch *b, bool sync, char **err)
{
    return e->ops->write(e, b, sync, err);
}

int cf_eng_sync(struct cf_eng *e, char **err)
{
    return e->ops->sync(e, err);
}

void cf_eng_compact(struct cf_eng *e, unsigned ks, const void *lo, size_t lolen, const void *hi, size_t hilen,
                    bool force)
{
    e->ops->compact(e, ks, lo, lolen, hi, hilen, force);
}

/* ---- the change feed ------------------------------------------------------------------------ */

int cf_eng_change_seq(struct cf_eng *e, uint64_t *seq, char **err)
{
    *seq = 0;
    *err = NULL;
    return e->ops->change_seq != NULL ? e->ops->change_seq(e, seq, err) : CF_ENG_NOTFOUND;
}

int cf_eng_changes(struct cf_eng *e, uint64_t after, cf_batch_fn fn, void *ctx, uint64_t *last, char **err)
{
    *last = after;
    *err = NULL;
    return e->ops->changes != NULL ? e->ops->changes(e, after, fn, ctx, last, err) : CF_ENG_NOTFOUND;
}

/* ---- cluster locks ---------------------------------------------------------------------------- */

int cf_eng_lock(struct cf_eng *e, enum cf_eng_lock which, char **err)
{
    *err = NULL;
    return e->ops->lock != NULL ? e->ops->lock(e, which, err) : CF_ENG_OK;
}

void cf_eng_unlock(struct cf_eng *e, enum cf_eng_lock which)
{
    if (e->ops->unlock != NULL)
        e->ops->unlock(e, which);
}

bool cf_eng_multiwriter(const struct cf_eng *e)
{
    return e->ops->multiwriter != NULL && e->ops->multiwriter(e);
}

/* ---- leases and shared counters (issue 24) ------------------------------------------------- */

/* The checks every engine relies on: a bad argument is an error, never a query. */
static bool coord_key_ok(const void *k, size_t kl)
{
    return k != NULL && kl >= 1 && kl <= CF_ENG_COORD_KEY_MAX;
}

bool cf_eng_shared(const struct cf_eng *e)
{
    return e->ops->lease != NULL && e->ops->lease_drop != NULL && e->ops->counter != NULL;
}

int cf_eng_lease(struct cf_eng *e, const void *name, size_t nl, const uint8_t *holder, uint32_t ttl_ms, bool *held,
                 char **err)
{
    *held = false;
    *err = NULL;
    if (!coord_key_ok(name, nl) || holder == NULL || ttl_ms < 1 || ttl_ms > 86400000) {
        *err = cf_eng_msg("lease: bad argument (name of 1..%d bytes, a holder, ttl 1..86400000 ms)",
                          CF_ENG_COORD_KEY_MAX);
        return CF_ENG_ERR;
    }
    return e->ops->lease != NULL ? e->ops->lease(e, name, nl, holder, ttl_ms, held, err) : CF_ENG_NOTFOUND;
}

int cf_eng_lease_drop(struct cf_eng *e, const void *name, size_t nl, const uint8_t *holder, char **err)
{
    *err = NULL;
    if (!coord_key_ok(name, nl) || holder == NULL) {
        *err = cf_eng_msg("lease: bad argument (name of 1..%d bytes, a holder)", CF_ENG_COORD_KEY_MAX);
        return CF_ENG_ERR;
    }
    return e->ops->lease_drop != NULL ? e->ops->lease_drop(e, name, nl, holder, err) : CF_ENG_NOTFOUND;
}

int cf_eng_counter(struct cf_eng *e, enum cf_eng_ctr_op op, const void *key, size_t kl, struct cf_eng_ctr *c,
                   char **err)
{
    *err = NULL;
    if (!coord_key_ok(key, kl) || c == NULL || op < CF_CTR_RESERVE || op > CF_CTR_COUNT || c->limit < 1 ||
        c->limit > 1024 || c->window_ms < 1 || c->window_ms > (UINT64_C(1) << 40) ||
        ((op == CF_CTR_RELEASE || op == CF_CTR_SETTLE) && c->id <= 0)) {
        *err = cf_eng_msg("counter: bad argument (key of 1..%d bytes, limit 1..1024, window 1..2^40 ms, an event id)",
                          CF_ENG_COORD_KEY_MAX);
        return CF_ENG_ERR;
    }
    c->at_ms = 0;
    c->count = 0;
    c->granted = false;
    c->retry_ms = 0;
    return e->ops->counter != NULL ? e->ops->counter(e, op, key, kl, c, err) : CF_ENG_NOTFOUND;
}

int cf_eng_window(struct cf_eng *e, const void *key, size_t kl, struct cf_eng_window *w, char **err)
{
    *err = NULL;
    if (!coord_key_ok(key, kl) || w == NULL || w->window_ms < 1 || w->window_ms > (UINT64_C(1) << 40) ||
        w->files > (UINT64_C(1) << 52) || w->bytes > (UINT64_C(1) << 52)) {
        *err = cf_eng_msg("window: bad argument (key of 1..%d bytes, window 1..2^40 ms, additions below 2^52)",
                          CF_ENG_COORD_KEY_MAX);
        return CF_ENG_ERR;
    }
    w->fire = false;
    return e->ops->window != NULL ? e->ops->window(e, key, kl, w, err) : CF_ENG_NOTFOUND;
}

/* ---- batches -------------------------------------------------------------------------------- */

struct cf_batch *cf_batch_new(struct cf_eng *e)
{
    return e->ops->batch_new(e);
}

void cf_batch_free(struct cf_batch *b)
{
    if (b != NULL)
        b->ops->batch_free(b);
}

void cf_batch_put(struct cf_batch *b, unsigned ks, const void *key, size_t klen, const void *val, size_t vlen)
{
    b->ops->batch_put(b, ks, key, klen, val, vlen);
}

void cf_batch_delete(struct cf_batch *b, unsigned ks, const void *key, size_t klen)
{
    b->ops->batch_delete(b, ks, key, klen);
}

void cf_batch_delete_range(struct cf_batch *b, unsigned ks, const void *lo, size_t lolen, const void *hi,
                           size_t hilen)
{
    b->ops->batch_delete_range(b, ks, lo, lolen, hi, hilen);
}

size_t cf_batch_count(const struct cf_batch *b)
{
    return b->ops->batch_count(b);
}

void cf_batch_clear(struct cf_batch *b)
{
    b->ops->batch_clear(b);
}

void cf_batch_save(struct cf_batch *b)
{
    b->ops->batch_save(b);
}

int cf_batch_rollback(struct cf_batch *b, char **err)
{
    return b->ops->batch_rollback(b, err);
}

int cf_batch_each(const struct cf_batch *b, cf_batch_fn fn, void *ctx)
{
    return b->ops->batch_each(b, fn, ctx);
}

/* ---- iteration ------------------------------------------------------------------------------ */

struct cf_eiter *cf_eiter_open(struct cf_eng *e, unsigned ks, const void *lo, size_t lolen, const void *hi,
                               size_t hilen)
{
    return e->ops->iter_open(e, ks, lo, lolen, hi, hilen);
}

void cf_eiter_close(struct cf_eiter *it)
{
    if (it != NULL)
        it->ops->iter_close(it);
}

void cf_eiter_seek_to_first(struct cf_eiter *it)
{
    it->ops->iter_seek_to_first(it);
}

void cf_eiter_seek(struct cf_eiter *it, const void *k, size_t kl)
{
    it->ops->iter_seek(it, k, kl);
}

void cf_eiter_seek_for_prev(struct cf_eiter *it, const void *k, size_t kl)
{
    it->ops->iter_seek_for_prev(it, k, kl);
}

bool cf_eiter_valid(const struct cf_eiter *it)
{
    return it->ops->iter_valid(it);
}

void cf_eiter_next(struct cf_eiter *it)
{
    it->ops->iter_next(it);
}

void cf_eiter_prev(struct cf_eiter *it)
{
    it->ops->iter_prev(it);
}

const char *cf_eiter_key(const struct cf_eiter *it, size_t *kl)
{
    return it->ops->iter_key(it, kl);
}

const char *cf_eiter_value(const struct cf_eiter *it, size_t *vl)
{
    return it->ops->iter_value(it, vl);
}

int cf_eiter_status(const struct cf_eiter *it, char **err)
{
    return it->ops->iter_status(it, err);
}
