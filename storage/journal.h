/*
 * journal.h: the metadata journal's internals, shared by journal.c (the writer, opening, the anchor
 * file), journal_check.c (the replay behind `coffer fsck`) and db.c (which routes every write
 * through it). Nothing outside storage/ includes this; the public part is in storage.h.
 * journal.c's header comment has the on-disk format.
 */
#ifndef CF_JOURNAL_H
#define CF_JOURNAL_H

#include "store_internal.h"

#define CF_JINDEX_VAL_LEN (8 + 32 + 32) /* journal_keys value: seq ‖ digest ‖ MAC */

/* Operation kinds, as stored in entry items. */
enum { CF_JOP_PUT = 'p', CF_JOP_DEL = 'd', CF_JOP_RANGE = 'r' };

/* cf_journal_covers(cf): whether the journal records writes of cf (every column family of records
 * and index entries; not chunks, provenance events and their index, or the journal itself). */
bool cf_journal_covers(enum cf_cf cf);

/* A growable byte buffer. */
struct cf_jbuf {
    uint8_t *p;
    size_t n, cap;
};
void cf_jbuf_put(struct cf_jbuf *b, const void *p, size_t n);

/* The covered operations of one write batch, in batch order. Keys live in arena (offsets, because
 * the arena moves as it grows). */
struct cf_jop {
    uint8_t kind;       /* CF_JOP_* */
    uint8_t cf;         /* enum cf_cf */
    uint16_t klen;      /* key (RANGE: start) length */
    uint16_t hlen;      /* RANGE: end length */
    size_t key_off;     /* key in arena */
    size_t hi_off;      /* RANGE: exclusive end in arena */
    uint8_t digest[32]; /* PUT: SHA-256 of the value */
};
struct cf_jops {
    struct cf_jop *v;
    size_t n, cap;
    struct cf_jbuf arena;
};
void cf_jops_free(struct cf_jops *o);

/* cf_journal_parse(b, out): the covered operations of write batch b (listed by the engine,
 * cf_batch_each). CF_EINVAL (logged) for a batch it cannot describe: an operation other than put,
 * delete and range delete, an unknown keyspace, a write to the journal's own families, a key over
 * 65535 bytes, a malformed batch. Pure. */
enum cf_status cf_journal_parse(const struct cf_batch *b, struct cf_jops *out) CF_WUR;

/* cf_journal_write(s, b, sync): writes b with its journal entry (group commit, see journal.c). b is
 * given back unchanged. The same contract as cf_db_write. */
enum cf_status cf_journal_write(struct cf_store *s, struct cf_batch *b, bool sync) CF_WUR;

/* A map of (column family, key) → state, open addressing; used by the writer (one batch) and by the
 * check (the kept entries). */
struct cf_jstate {
    uint64_t seq;          /* check: the entry of the key's last operation */
    uint64_t old_seq;      /* writer: see old */
    uint32_t key_off;      /* the key, in the map's arena (cf_jkey) */
    uint16_t klen;
    uint8_t cf;
    uint8_t op;            /* CF_JOP_PUT or CF_JOP_DEL: the key's state after the last operation */
    bool used;
    bool known;            /* writer: old_* were read */
    bool seen;             /* check: the key was met in the store or the index */
    int8_t old;            /* writer: 1 the index holds the key (old_seq, old_digest), 0 it does not */
    uint8_t digest[32];    /* PUT: the value's SHA-256 */
    uint8_t old_digest[32];
};
struct cf_jmap {
    struct cf_jstate *v;
    size_t n, cap;         /* cap: a power of two (or 0) */
    struct cf_jbuf arena;  /* every key, once */
};
static inline const uint8_t *cf_jkey(const struct cf_jmap *m, const struct cf_jstate *e)
{
    return m->arena.p + e->key_off;
}
/* cf_jmap_get(m, cf, key, klen, create): the state of a key, added (zeroed) when create is true;
 * NULL if absent. Pointers (to states and to keys) are valid until the next call with create. */
struct cf_jstate *cf_jmap_get(struct cf_jmap *m, uint8_t cf, const uint8_t *key, size_t klen, bool create);
void cf_jmap_free(struct cf_jmap *m);

/* 256-bit sums mod 2^256 (big-endian). */
void cf_jsum_add(uint8_t acc[32], const uint8_t t[32]);
void cf_jsum_sub(uint8_t acc[32], const uint8_t t[32]);

/* Formats. */
void cf_jentry_key(uint64_t seq, uint8_t out[9]);
void cf_jgenesis(const struct cf_journal *j, uint8_t out[32]);
void cf_jindex_mac(const struct cf_key *k, uint8_t cf, uint64_t seq, const uint8_t digest[32], const uint8_t *key,
                   size_t klen, uint8_t out[32]);
void cf_jentry_mac(const struct cf_journal *j, uint64_t seq, const uint8_t *body, size_t n, uint8_t out[32]);
/* A stored entry, parsed in place. */
struct cf_jentry {
    const uint8_t *prev;  /* 32 bytes */
    uint64_t at;
    uint32_t n;           /* items */
    const uint8_t *items;
    size_t items_len;
    size_t body_len;      /* what the MAC covers */
    const uint8_t *mac;   /* 32 bytes */
};
enum cf_status cf_jentry_parse(const uint8_t *v, size_t n, struct cf_jentry *out) CF_WUR;
struct cf_jitem {
    uint8_t kind, cf;
    uint16_t klen, hlen;
    const uint8_t *key, *digest, *hi;
};
/* cf_jentry_next(e, off, it): the item at *off (start at 0); false at the end or on a malformed item
 * (the caller tells them apart by *off == e->items_len). */
bool cf_jentry_next(struct cf_jentry *e, size_t *off, struct cf_jitem *it);

/* cf_journal_head_read(s, out): the stored head; CF_ENOTFOUND if none, CF_ECORRUPT if it does not
 * open. */
enum cf_status cf_journal_head_read(struct cf_store *s, struct cf_jhead *out) CF_WUR;
/* cf_journal_mac_at(s, seq, out): the chain MAC after entry seq (genesis for 0, first_prev for
 * first - 1), verified; CF_ENOTFOUND if seq is not kept, CF_ECORRUPT if the entry is missing or
 * does not verify. */
enum cf_status cf_journal_mac_at(struct cf_store *s, uint64_t seq, uint8_t out[32]) CF_WUR;

/* Lifecycle (db.c): setup when the store struct is made; keys once the global key is unwrapped;
 * create for a new store (a genesis head in memory, written with the store's first batch); open
 * once the database is open; close before it closes; free with the store. */
void cf_journal_setup(struct cf_store *s);
enum cf_status cf_journal_keys(struct cf_store *s, const struct cf_key *global) CF_WUR;
void cf_journal_create(struct cf_store *s);
/* cf_journal_open(s, readonly, anchor, mode): loads the head. Read-write: checks the journal's tail
 * and, with an anchor, that data_dir is not older than it (CF_EROLLBACK, logged, if it is); starts a
 * journal over a store that has none, and, with CF_ANCHOR_ACCEPT, a new one over the store as it is
 * whatever the checks said (logged); then records the head in the anchor and keeps it (the store
 * owns it from here). Read-only: loads what there is, for cf_journal_check. */
enum cf_status cf_journal_open(struct cf_store *s, bool readonly, struct cf_anchor *anchor,
                               enum cf_anchor_mode mode) CF_WUR;
void cf_journal_close(struct cf_store *s);
void cf_journal_free(struct cf_store *s);

/* The anchor file (journal.c). */
struct cf_anchor_slot {
    uint8_t id[16];
    uint64_t seq;
    uint8_t mac[32];
    uint64_t at;
};
const char *cf_anchor_path(const struct cf_anchor *a);
int cf_anchor_fd(const struct cf_anchor *a);
int cf_anchor_best(struct cf_store *s, struct cf_anchor *a, struct cf_anchor_slot *out);
enum cf_status cf_anchor_store(struct cf_store *s, struct cf_anchor *a) CF_WUR;
/* cf_anchor_verdict(s, a, why, n): 0 if the store continues the history the anchor recorded (or the
 * anchor is empty); 1 with the reason in why otherwise. */
int cf_anchor_verdict(struct cf_store *s, struct cf_anchor *a, char *why, size_t n);

#endif
