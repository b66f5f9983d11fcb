/*
 * journal.c: the metadata journal, which makes a record rolled back to an earlier sealed value, or
 * put back after its deletion, detectable. A seal binds a value to its key (AAD = column family ‖
 * key), so a value copied to another key fails; but an older value of the same key still opens.
 * The journal remembers which value is the last one written.
 *
 * Every write batch that touches a column family the journal covers (cf_journal_covers) goes through
 * cf_journal_write, the one choke point (cf_db_write and cf_db_put call it), which appends, in the
 * same atomic RocksDB batch:
 *   journal       'e' ‖ seq:u64 → entry: 0x01 ‖ prev:32 ‖ at:u64 ‖ n:u32 ‖ item*n ‖ mac:32
 *                   item = 'p' ‖ cf:u8 ‖ klen:u16 ‖ key ‖ SHA-256(new value)   a put
 *                        | 'd' ‖ cf:u8 ‖ klen:u16 ‖ key                        a deletion
 *                        | 'r' ‖ cf:u8 ‖ klen:u16 ‖ lo ‖ hlen:u16 ‖ hi          a range deletion [lo, hi)
 *                   mac  = HMAC(mac key, "entry\0" ‖ seq ‖ everything before mac); prev = mac of seq-1
 *                   (entry 0's "mac" is the genesis HMAC(mac key, "genesis\0" ‖ id))
 *   journal       'h' → AES-256-GCM(seal key, AAD "coffer/v1/journal/head") of
 *                   0x01 ‖ id:16 ‖ seq:u64 ‖ mac:32 ‖ first:u64 ‖ first_prev:32 ‖ sum:32 ‖ nkeys:u64 ‖ at:u64
 *   journal_keys  cf:u8 ‖ key → seq:u64 ‖ SHA-256(value) ‖ HMAC(mac key, "key\0" ‖ cf ‖ seq ‖ digest ‖ key)
 * journal_keys is the checkpoint: the last write of every covered key that exists, kept up to date
 * in the same batch, so entries older than the last `keep` need not be kept (they are trimmed
 * `step` at a time, and the head records where the kept ones start and the MAC before them). The
 * head also holds, sealed so that nobody without the key learns it, the sum mod 2^256 of
 * HMAC(sum key, "key\0" ‖ cf ‖ seq ‖ digest ‖ key) over journal_keys: an index entry swapped for an
 * older, authentic one (a record rolled back together with its index entry, before the kept
 * entries) changes that sum. Numbers and the reasons for them: docs/DESIGN.md §4 "Metadata journal".
 *
 * Keys: mac, sum, seal and anchor keys are HKDF subkeys of the global key (which the master key
 * wraps), like the provenance chain's: nobody without the master key can forge any of it.
 *
 * Group commit: one thread at a time writes (the leader); batches that arrive meanwhile queue and the
 * next leader writes them one after another, in order, each with its own entry, syncing only the
 * last (the WAL is sequential: that sync makes the earlier ones durable too), and then answers all
 * of them. So entries reach the WAL in sequence order (a crash leaves a prefix, never a gap) while
 * concurrent committers still share one fsync. Everything a leader changes (head, sum) is owned by
 * it; the hand-over goes through the queue's mutex.
 *
 * Several nodes on one store (cluster mode, cf_eng_multiwriter): the head is the store's, and the
 * in-memory one only a cache. Each batch is then its own group, written by its own thread (its
 * owner) under the journal's cluster lock (the leader's turn in this process, then CF_ENG_LOCK_JOURNAL
 * in the database, on the connection that holds the thread's other cluster locks and writes the
 * batch), after reading the head again from the store: entries from every node form one chain, and a
 * write under a lock whose session died cannot commit (engine.h). PostgreSQL shares WAL flushes
 * between concurrent commits by itself; what is lost is only this process's batching of them.
 *
 * The anchor: the head (journal id, seq, MAC) also lives in a small file outside data_dir, next to
 * the master key (journal_anchor_file), written after every synced group through a descriptor opened
 * before the server drops privileges. A data_dir older than the anchor is refused at open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"

#define ENTRY_VERSION 1
#define HEAD_VERSION 1
#define ENTRY_KEY_LEN 9
#define HEAD_PT_LEN (1 + 16 + 8 + 32 + 8 + 32 + 32 + 8 + 8)
#define ADOPT_BATCH 4096
#define ANCHOR_SLOT 128
#define ANCHOR_BODY 72 /* magic 8 ‖ id 16 ‖ seq 8 ‖ mac 32 ‖ at 8 */
static const char anchor_magic[8] = {'C', 'F', 'A', 'N', 'C', 'H', 'R', '1'};
static const char head_aad[] = "coffer/v1/journal/head";

/* ---- what is covered ------------------------------------------------------------------------- */

bool cf_journal_covers(enum cf_cf cf)
{
    switch (cf) {
    case CF_CF_CHUNKS:       /* sealed under their version's data key, bound to content id and position;
                                a content id is never written twice, so there is no older value */
    case CF_CF_AUDIT:        /* per-tenant MAC chain; its head (audit_meta) is covered */
    case CF_CF_AUDIT_INDEX:  /* derived from the events, which the chain covers */
    case CF_CF_JOURNAL:      /* the journal itself */
    case CF_CF_JOURNAL_KEYS:
        return false;
    default:
        return (unsigned)cf < CF_CF_COUNT;
    }
}

/* ---- small helpers --------------------------------------------------------------------------- */

void cf_jbuf_put(struct cf_jbuf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap == 0 ? 256 : b->cap;
        while (cap < b->n + n)
            cap *= 2;
        b->p = cf_xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void jbuf_u8(struct cf_jbuf *b, uint8_t v)
{
    cf_jbuf_put(b, &v, 1);
}

static void jbuf_u16(struct cf_jbuf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    cf_jbuf_put(b, x, 2);
}

static void jbuf_u32(struct cf_jbuf *b, uint32_t v)
{
    uint8_t x[4];
    cf_put_be32(x, v);
    cf_jbuf_put(b, x, 4);
}

static void jbuf_u64(struct cf_jbuf *b, uint64_t v)
{
    uint8_t x[8];
    cf_put_be64(x, v);
    cf_jbuf_put(b, x, 8);
}

void cf_jsum_add(uint8_t acc[32], const uint8_t t[32])
{
    unsigned c = 0;
    for (int i = 31; i >= 0; i--) {
        unsigned v = (unsigned)acc[i] + t[i] + c;
        acc[i] = (uint8_t)v;
        c = v >> 8;
    }
}

void cf_jsum_sub(uint8_t acc[32], const uint8_t t[32])
{
    int borrow = 0;
    for (int i = 31; i >= 0; i--) {
        int v = (int)acc[i] - t[i] - borrow;
        borrow = v < 0;
        acc[i] = (uint8_t)(v + (borrow ? 256 : 0));
    }
}

void cf_jentry_key(uint64_t seq, uint8_t out[ENTRY_KEY_LEN])
{
    out[0] = 'e';
    cf_put_be64(out + 1, seq);
}

void cf_jgenesis(const struct cf_journal *j, uint8_t out[32])
{
    cf_hmac2_sha256(&j->mac_key, "genesis", 8, j->head.id, sizeof j->head.id, out);
}

/* The MAC (stored) or the sum term (never stored) of one index entry. */
void cf_jindex_mac(const struct cf_key *k, uint8_t cf, uint64_t seq, const uint8_t digest[32], const uint8_t *key,
                   size_t klen, uint8_t out[32])
{
    uint8_t msg[4 + 1 + 8 + 32];
    memcpy(msg, "key", 4);
    msg[4] = cf;
    cf_put_be64(msg + 5, seq);
    memcpy(msg + 13, digest, 32);
    cf_hmac2_sha256(k, msg, sizeof msg, key, klen, out);
}

void cf_jentry_mac(const struct cf_journal *j, uint64_t seq, const uint8_t *body, size_t n, uint8_t out[32])
{
    uint8_t msg[6 + 8];
    memcpy(msg, "entry", 6);
    cf_put_be64(msg + 6, seq);
    cf_hmac2_sha256(&j->mac_key, msg, sizeof msg, body, n, out);
}

/* ---- listing a write batch's operations (engine.h cf_batch_each) ----------------------------- */

void cf_jops_free(struct cf_jops *o)
{
    free(o->v);
    free(o->arena.p);
    memset(o, 0, sizeof *o);
}

/* Appends one covered operation; keys are copied (the batch may grow, and move, afterwards). */
static void ops_push(struct cf_jops *o, uint8_t kind, uint8_t cf, const uint8_t *k, uint32_t kl, const uint8_t *v,
                     uint32_t vl)
{
    if (o->n == o->cap) {
        o->cap = o->cap == 0 ? 8 : o->cap * 2;
        o->v = cf_xrealloc(o->v, o->cap * sizeof *o->v);
    }
    struct cf_jop *op = &o->v[o->n++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->cf = cf;
    op->klen = (uint16_t)kl;
    op->key_off = o->arena.n;
    cf_jbuf_put(&o->arena, k, kl);
    if (kind == CF_JOP_PUT) {
        cf_sha256(v, vl, op->digest);
    } else if (kind == CF_JOP_RANGE) {
        op->hlen = (uint16_t)vl;
        op->hi_off = o->arena.n;
        cf_jbuf_put(&o->arena, v, vl);
    }
}

/* One operation of the batch: refused if it writes the journal, skipped if not covered. */
static int parse_op(void *ctx, enum cf_batch_op op, unsigned ks, const uint8_t *k, size_t kl, const uint8_t *v,
                    size_t vl)
{
    struct cf_jops *out = ctx;
    enum cf_cf cf = (enum cf_cf)ks;
    if (cf == CF_CF_JOURNAL || cf == CF_CF_JOURNAL_KEYS) {
        /* Only this file writes the journal: anything else doing so is a bug (or a range deletion
         * that reaches too far), and would break the chain silently. */
        cf_storage_log(CF_LOG_ERROR, "storage: journal: a write batch from outside the journal writes %s",
                       cf_cf_names[cf]);
        return 1;
    }
    if (!cf_journal_covers(cf))
        return 0;
    uint8_t kind = op == CF_BATCH_PUT ? CF_JOP_PUT : op == CF_BATCH_DELETE_RANGE ? CF_JOP_RANGE : CF_JOP_DEL;
    if (kl > UINT16_MAX || (kind == CF_JOP_RANGE && vl > UINT16_MAX)) {
        cf_storage_log(CF_LOG_ERROR, "storage: journal: a key in %s is too long", cf_cf_names[cf]);
        return 1;
    }
    ops_push(out, kind, (uint8_t)cf, k, (uint32_t)kl, v, (uint32_t)vl);
    return 0;
}

enum cf_status cf_journal_parse(const struct cf_batch *b, struct cf_jops *out)
{
    memset(out, 0, sizeof *out);
    if (cf_batch_each(b, parse_op, out) == CF_ENG_OK)
        return CF_OK;
    /* A merge, a transaction marker, a blob index, a wide-column entity: nothing in Coffer writes
     * these; refuse rather than write what the journal cannot describe. */
    cf_storage_log(CF_LOG_ERROR, "storage: journal: refusing a write batch it cannot read");
    cf_jops_free(out);
    return CF_EINVAL;
}

/* ---- a map of (column family, key) ------------------------------------------------------------ */

static uint64_t key_hash(uint8_t cf, const uint8_t *k, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ cf;
    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

struct cf_jstate *cf_jmap_get(struct cf_jmap *m, uint8_t cf, const uint8_t *key, size_t klen, bool create)
{
    if (create && (m->n + 1) * 2 > m->cap) {
        struct cf_jmap g = {.cap = m->cap == 0 ? 16 : m->cap * 2};
        g.v = cf_xcalloc(g.cap, sizeof *g.v);
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->v[i].used)
                continue;
            size_t at = key_hash(m->v[i].cf, cf_jkey(m, &m->v[i]), m->v[i].klen) & (g.cap - 1);
            while (g.v[at].used)
                at = (at + 1) & (g.cap - 1);
            g.v[at] = m->v[i];
        }
        g.n = m->n;
        g.arena = m->arena;
        free(m->v);
        *m = g;
    }
    if (m->cap == 0)
        return NULL;
    size_t at = key_hash(cf, key, klen) & (m->cap - 1);
    for (; m->v[at].used; at = (at + 1) & (m->cap - 1))
        if (m->v[at].cf == cf && m->v[at].klen == klen && memcmp(cf_jkey(m, &m->v[at]), key, klen) == 0)
            return &m->v[at];
    if (!create)
        return NULL;
    struct cf_jstate *e = &m->v[at];
    memset(e, 0, sizeof *e);
    e->used = true;
    e->cf = cf;
    e->klen = (uint16_t)klen;
    e->key_off = (uint32_t)m->arena.n;
    cf_jbuf_put(&m->arena, key, klen);
    m->n++;
    return e;
}

void cf_jmap_free(struct cf_jmap *m)
{
    free(m->v);
    free(m->arena.p);
    memset(m, 0, sizeof *m);
}

/* ---- the head --------------------------------------------------------------------------------- */

static void head_encode(const struct cf_journal *j, uint8_t pt[HEAD_PT_LEN])
{
    uint8_t *p = pt;
    *p++ = HEAD_VERSION;
    memcpy(p, j->head.id, 16);
    p += 16;
    cf_put_be64(p, j->head.seq);
    p += 8;
    memcpy(p, j->head.mac, 32);
    p += 32;
    cf_put_be64(p, j->head.first);
    p += 8;
    memcpy(p, j->head.first_prev, 32);
    p += 32;
    memcpy(p, j->head.sum, 32);
    p += 32;
    cf_put_be64(p, j->head.nkeys);
    p += 8;
    cf_put_be64(p, j->head.at);
}

static void head_put(struct cf_store *s, struct cf_batch *b)
{
    uint8_t pt[HEAD_PT_LEN], val[HEAD_PT_LEN + CF_SEAL_OVERHEAD];
    head_encode(&s->journal, pt);
    if (cf_aead_seal(&s->journal.seal_key, head_aad, sizeof head_aad - 1, pt, sizeof pt, val) != CF_OK) {
        cf_storage_log(CF_LOG_ERROR, "storage: sealing the journal head failed");
        abort();
    }
    cf_wipe(pt, sizeof pt);
    cf_batch_put(b, CF_CF_JOURNAL, "h", 1, (const char *)val, sizeof val);
}

enum cf_status cf_journal_head_read(struct cf_store *s, struct cf_jhead *out)
{
    char *val;
    size_t vlen;
    uint8_t pt[HEAD_PT_LEN];
    enum cf_status st = cf_db_get(s, CF_CF_JOURNAL, "h", 1, &val, &vlen);
    if (st != CF_OK)
        return st;
    if (vlen != sizeof pt + CF_SEAL_OVERHEAD ||
        cf_aead_open(&s->journal.seal_key, head_aad, sizeof head_aad - 1, (const uint8_t *)val, vlen, pt) != CF_OK ||
        pt[0] != HEAD_VERSION) {
        free(val);
        return CF_ECORRUPT;
    }
    free(val);
    const uint8_t *p = pt + 1;
    memcpy(out->id, p, 16);
    p += 16;
    out->seq = cf_get_be64(p);
    p += 8;
    memcpy(out->mac, p, 32);
    p += 32;
    out->first = cf_get_be64(p);
    p += 8;
    memcpy(out->first_prev, p, 32);
    p += 32;
    memcpy(out->sum, p, 32);
    p += 32;
    out->nkeys = cf_get_be64(p);
    p += 8;
    out->at = cf_get_be64(p);
    cf_wipe(pt, sizeof pt);
    if (out->first == 0 || out->first > out->seq + 1)
        return CF_ECORRUPT;
    return CF_OK;
}

/* ---- entries ---------------------------------------------------------------------------------- */

enum cf_status cf_jentry_parse(const uint8_t *v, size_t n, struct cf_jentry *out)
{
    if (n < 1 + 32 + 8 + 4 + 32 || v[0] != ENTRY_VERSION)
        return CF_ECORRUPT;
    out->prev = v + 1;
    out->at = cf_get_be64(v + 33);
    out->n = cf_get_be32(v + 41);
    out->items = v + 45;
    out->items_len = n - 45 - 32;
    out->body_len = n - 32;
    out->mac = v + n - 32;
    return CF_OK;
}

bool cf_jentry_next(struct cf_jentry *e, size_t *off, struct cf_jitem *it)
{
    const uint8_t *p = e->items + *off, *end = e->items + e->items_len;
    if ((size_t)(end - p) < 4)
        return false;
    it->kind = p[0];
    it->cf = p[1];
    it->klen = (uint16_t)(p[2] << 8 | p[3]);
    p += 4;
    if ((size_t)(end - p) < it->klen)
        return false;
    it->key = p;
    p += it->klen;
    it->digest = NULL;
    it->hi = NULL;
    it->hlen = 0;
    if (it->kind == CF_JOP_PUT) {
        if (end - p < 32)
            return false;
        it->digest = p;
        p += 32;
    } else if (it->kind == CF_JOP_RANGE) {
        if (end - p < 2)
            return false;
        it->hlen = (uint16_t)(p[0] << 8 | p[1]);
        p += 2;
        if ((size_t)(end - p) < it->hlen)
            return false;
        it->hi = p;
        p += it->hlen;
    } else if (it->kind != CF_JOP_DEL) {
        return false;
    }
    if (it->cf >= CF_CF_COUNT)
        return false;
    *off = (size_t)(p - e->items);
    return true;
}

/* The prev field of entry seq, read from the store. */
static enum cf_status entry_prev(struct cf_store *s, uint64_t seq, uint8_t out[32])
{
    uint8_t k[ENTRY_KEY_LEN];
    char *v;
    size_t vl;
    struct cf_jentry e;
    cf_jentry_key(seq, k);
    enum cf_status st = cf_db_get(s, CF_CF_JOURNAL, k, sizeof k, &v, &vl);
    if (st != CF_OK)
        return st;
    st = cf_jentry_parse((const uint8_t *)v, vl, &e);
    if (st == CF_OK)
        memcpy(out, e.prev, 32);
    free(v);
    return st;
}

/* The MAC of entry seq as stored (its last 32 bytes), or the genesis/first_prev MAC before first. */
enum cf_status cf_journal_mac_at(struct cf_store *s, uint64_t seq, uint8_t out[32])
{
    struct cf_journal *j = &s->journal;
    if (seq == 0) {
        cf_jgenesis(j, out);
        return CF_OK;
    }
    if (seq + 1 == j->head.first) {
        memcpy(out, j->head.first_prev, 32);
        return CF_OK;
    }
    if (seq < j->head.first || seq > j->head.seq)
        return CF_ENOTFOUND;
    uint8_t k[ENTRY_KEY_LEN];
    char *v;
    size_t vl;
    struct cf_jentry e;
    cf_jentry_key(seq, k);
    enum cf_status st = cf_db_get(s, CF_CF_JOURNAL, k, sizeof k, &v, &vl);
    if (st != CF_OK)
        return st == CF_ENOTFOUND ? CF_ECORRUPT : st;
    if ((st = cf_jentry_parse((const uint8_t *)v, vl, &e)) == CF_OK) {
        uint8_t want[32];
        cf_jentry_mac(j, seq, (const uint8_t *)v, e.body_len, want);
        if (cf_ct_equal(want, e.mac, 32))
            memcpy(out, e.mac, 32);
        else
            st = CF_ECORRUPT;
    }
    free(v);
    return st;
}

/* ---- the writer ------------------------------------------------------------------------------- */

/* What one key's index entry is before and after a batch (the writer's use of cf_jstate). */
static enum cf_status index_old(struct cf_store *s, const struct cf_jmap *m, struct cf_jstate *e)
{
    uint8_t *k = cf_xmalloc(1 + (size_t)e->klen);
    char *v;
    size_t vl;
    k[0] = e->cf;
    memcpy(k + 1, cf_jkey(m, e), e->klen);
    enum cf_status st = cf_db_get(s, CF_CF_JOURNAL_KEYS, k, 1 + (size_t)e->klen, &v, &vl);
    free(k);
    if (st == CF_ENOTFOUND) {
        e->old = 0;
        return CF_OK;
    }
    if (st != CF_OK)
        return st;
    if (vl != CF_JINDEX_VAL_LEN) {
        /* Damage or tampering: fsck reports it (the sum no longer adds up). Writing on treats it as
         * absent, which keeps the sum honest: it is never "repaired" by a later write. */
        cf_storage_log(CF_LOG_ERROR, "storage: journal: an index entry of %s has the wrong length",
                       cf_cf_names[e->cf]);
        e->old = 0;
    } else {
        e->old = 1;
        e->old_seq = cf_get_be64((const uint8_t *)v);
        memcpy(e->old_digest, v + 8, 32);
    }
    free(v);
    return CF_OK;
}

static bool in_range(const uint8_t *k, size_t kl, const uint8_t *lo, size_t ll, const uint8_t *hi, size_t hl)
{
    size_t m = kl < ll ? kl : ll;
    int c = memcmp(k, lo, m);
    if (c < 0 || (c == 0 && kl < ll))
        return false;
    m = kl < hl ? kl : hl;
    c = memcmp(k, hi, m);
    return c < 0 || (c == 0 && kl < hl);
}

/* A range deletion: every key of the batch so far in [lo, hi) and every indexed key there. */
static enum cf_status pend_range(struct cf_store *s, struct cf_jmap *pend, uint8_t cf, const uint8_t *lo, size_t ll,
                                 const uint8_t *hi, size_t hl)
{
    for (size_t i = 0; i < pend->cap; i++) {
        struct cf_jstate *e = &pend->v[i];
        if (e->used && e->cf == cf && in_range(cf_jkey(pend, e), e->klen, lo, ll, hi, hl))
            e->op = CF_JOP_DEL;
    }
    uint8_t *l = cf_xmalloc(1 + ll), *h = cf_xmalloc(1 + hl);
    l[0] = h[0] = cf;
    memcpy(l + 1, lo, ll);
    memcpy(h + 1, hi, hl);
    struct cf_eiter *it = cf_eiter_open(s->eng, CF_CF_JOURNAL_KEYS, NULL, 0, h, 1 + hl);
    enum cf_status st = CF_OK;
    for (cf_eiter_seek(it, (const char *)l, 1 + ll); cf_eiter_valid(it); cf_eiter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)cf_eiter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)cf_eiter_value(it, &vl);
        if (kl < 1 || k[0] != cf)
            break;
        struct cf_jstate *e = cf_jmap_get(pend, cf, k + 1, kl - 1, true);
        if (!e->known) {
            e->known = true;
            e->old = vl == CF_JINDEX_VAL_LEN;
            if (e->old) {
                e->old_seq = cf_get_be64(v);
                memcpy(e->old_digest, v + 8, 32);
            }
        }
        e->op = CF_JOP_DEL;
    }
    char *err = NULL;
    if (cf_eiter_status(it, &err) != CF_ENG_OK) {
        cf_storage_log(CF_LOG_ERROR, "storage: journal: %s", err);
        cf_eng_free(err);
        st = CF_EIO;
    }
    cf_eiter_close(it);
    free(l);
    free(h);
    return st;
}

/* Adds to b the entry for ops as entry seq, the index changes and the head; updates *j (which the
 * caller restores if the write fails). */
static enum cf_status journal_append(struct cf_store *s, const struct cf_jops *ops, struct cf_batch *b)
{
    struct cf_journal *j = &s->journal;
    struct cf_jmap pend = {0};
    struct cf_jbuf e = {0};
    enum cf_status st = CF_OK;
    uint64_t seq = j->head.seq + 1, now = cf_now_ms();

    /* The entry body, and the state of each key after the batch (in order: a later operation on a
     * key wins, a range deletion deletes what came before it). */
    jbuf_u8(&e, ENTRY_VERSION);
    cf_jbuf_put(&e, j->head.mac, 32);
    jbuf_u64(&e, now > j->head.at ? now : j->head.at);
    jbuf_u32(&e, (uint32_t)ops->n);
    for (size_t i = 0; i < ops->n && st == CF_OK; i++) {
        const struct cf_jop *op = &ops->v[i];
        const uint8_t *key = ops->arena.p + op->key_off;
        jbuf_u8(&e, op->kind);
        jbuf_u8(&e, op->cf);
        jbuf_u16(&e, op->klen);
        cf_jbuf_put(&e, key, op->klen);
        if (op->kind == CF_JOP_PUT) {
            cf_jbuf_put(&e, op->digest, 32);
            struct cf_jstate *ps = cf_jmap_get(&pend, op->cf, key, op->klen, true);
            ps->op = CF_JOP_PUT;
            memcpy(ps->digest, op->digest, 32);
        } else if (op->kind == CF_JOP_DEL) {
            cf_jmap_get(&pend, op->cf, key, op->klen, true)->op = CF_JOP_DEL;
        } else {
            const uint8_t *hi = ops->arena.p + op->hi_off;
            jbuf_u16(&e, op->hlen);
            cf_jbuf_put(&e, hi, op->hlen);
            st = pend_range(s, &pend, op->cf, key, op->klen, hi, op->hlen);
        }
    }

    /* The index and its sum. */
    uint8_t term[32], ival[CF_JINDEX_VAL_LEN];
    for (size_t i = 0; i < pend.cap && st == CF_OK; i++) {
        struct cf_jstate *ps = &pend.v[i];
        if (!ps->used)
            continue;
        if (!ps->known && (st = index_old(s, &pend, ps)) != CF_OK)
            break;
        const uint8_t *key = cf_jkey(&pend, ps);
        uint8_t *ik = cf_xmalloc(1 + (size_t)ps->klen);
        ik[0] = ps->cf;
        memcpy(ik + 1, key, ps->klen);
        if (ps->old == 1) {
            cf_jindex_mac(&j->sum_key, ps->cf, ps->old_seq, ps->old_digest, key, ps->klen, term);
            cf_jsum_sub(j->head.sum, term);
            j->head.nkeys--;
        }
        if (ps->op == CF_JOP_PUT) {
            cf_put_be64(ival, seq);
            memcpy(ival + 8, ps->digest, 32);
            cf_jindex_mac(&j->mac_key, ps->cf, seq, ps->digest, key, ps->klen, ival + 40);
            cf_batch_put(b, CF_CF_JOURNAL_KEYS, (const char *)ik, 1 + (size_t)ps->klen,
                         (const char *)ival, sizeof ival);
            cf_jindex_mac(&j->sum_key, ps->cf, seq, ps->digest, key, ps->klen, term);
            cf_jsum_add(j->head.sum, term);
            j->head.nkeys++;
        } else if (ps->old == 1) {
            cf_batch_delete(b, CF_CF_JOURNAL_KEYS, (const char *)ik, 1 + (size_t)ps->klen);
        }
        free(ik);
    }
    cf_jmap_free(&pend);
    cf_wipe(term, sizeof term);

    /* Trim: keep the last `keep` entries once `keep + step` have piled up. */
    if (st == CF_OK && seq >= j->head.first + j->keep + j->step) {
        uint64_t nf = seq + 1 - j->keep;
        uint8_t prev[32], lo[ENTRY_KEY_LEN], hi[ENTRY_KEY_LEN];
        enum cf_status pst = nf == seq ? (memcpy(prev, j->head.mac, 32), CF_OK) : entry_prev(s, nf, prev);
        if (pst == CF_OK) {
            cf_jentry_key(j->head.first, lo);
            cf_jentry_key(nf, hi);
            cf_batch_delete_range(b, CF_CF_JOURNAL, (const char *)lo, sizeof lo, (const char *)hi, sizeof hi);
            j->head.first = nf;
            memcpy(j->head.first_prev, prev, 32);
        } else {
            cf_storage_log(CF_LOG_WARN, "storage: journal: cannot read entry %llu to trim before it (%s)",
                           (unsigned long long)nf, cf_status_name(pst));
        }
    }

    if (st == CF_OK) {
        uint8_t ek[ENTRY_KEY_LEN], mac[32];
        cf_jentry_mac(j, seq, e.p, e.n, mac);
        cf_jbuf_put(&e, mac, 32);
        cf_jentry_key(seq, ek);
        cf_batch_put(b, CF_CF_JOURNAL, (const char *)ek, sizeof ek, (const char *)e.p, e.n);
        j->head.seq = seq;
        memcpy(j->head.mac, mac, 32);
        j->head.at = cf_get_be64(e.p + 33);
        head_put(s, b);
    }
    free(e.p);
    return st;
}

struct cf_jwait {
    struct cf_batch *b;
    struct cf_jops ops;
    bool sync;
    bool done;
    enum cf_status st;
    pthread_cond_t cv;
    struct cf_jwait *next;
};

/* Writes one queued batch with its entry; the batch is given back to its owner unchanged. */
static enum cf_status write_one(struct cf_store *s, struct cf_jwait *w, bool sync)
{
    struct cf_journal *j = &s->journal;
    struct cf_jhead saved = j->head; /* what the append changes; put back if the write fails */
    cf_batch_save(w->b);
    enum cf_status st = journal_append(s, &w->ops, w->b);
    if (st == CF_OK)
        st = cf_db_write_raw(s, w->b, sync);
    char *err = NULL;
    if (cf_batch_rollback(w->b, &err) != CF_ENG_OK) {
        cf_storage_log(CF_LOG_ERROR, "storage: journal: %s", err);
        cf_eng_free(err);
    }
    if (st != CF_OK)
        j->head = saved;
    cf_wipe(&saved, sizeof saved);
    return st;
}

/* Cluster mode: the head as the store has it now (another node may have written since this process
 * last did). Caller holds the journal's cluster lock. */
static enum cf_status head_reload(struct cf_store *s)
{
    struct cf_jhead h;
    enum cf_status st = cf_journal_head_read(s, &h);
    if (st == CF_ENOTFOUND && s->journal.head.seq == 0)
        return CF_OK; /* a new store: its genesis head goes with its first batch (cf_journal_create) */
    if (st == CF_ENOTFOUND || st == CF_ECORRUPT) {
        cf_storage_log(CF_LOG_ERROR, "storage: journal: the head in the store is %s",
                       st == CF_ENOTFOUND ? "gone" : "damaged (does not open)");
        return CF_ECORRUPT;
    }
    if (st == CF_OK)
        s->journal.head = h;
    cf_wipe(&h, sizeof h);
    return st;
}

/* The journal's cluster lock (a no-op on RocksDB) and, with several writers, the head re-read under
 * it. CF_OK, or the status every write of the group answers. */
static enum cf_status group_lock(struct cf_store *s)
{
    char *err = NULL;
    if (cf_eng_lock(s->eng, CF_ENG_LOCK_JOURNAL, &err) != CF_ENG_OK)
        return cf_db_error("taking the journal lock", err);
    return cf_eng_multiwriter(s->eng) ? head_reload(s) : CF_OK;
}

/* The leader's work: the group in order, syncing the last write if anyone asked for a sync. */
static void write_group(struct cf_store *s, struct cf_jwait *group)
{
    enum cf_status lst = group_lock(s);
    if (lst != CF_OK) {
        for (struct cf_jwait *g = group; g != NULL; g = g->next)
            g->st = lst;
        cf_eng_unlock(s->eng, CF_ENG_LOCK_JOURNAL);
        return;
    }
    struct cf_jwait *last = NULL;
    bool any_sync = false;
    for (struct cf_jwait *g = group; g != NULL; g = g->next) {
        any_sync = any_sync || g->sync;
        last = g;
    }
    for (struct cf_jwait *g = group; g != NULL; g = g->next)
        g->st = atomic_load(&s->write_failed) ? CF_EIO : write_one(s, g, any_sync && g == last);
    if (!any_sync) {
        cf_eng_unlock(s->eng, CF_ENG_LOCK_JOURNAL);
        return;
    }
    enum cf_status st = last->st;
    if (st != CF_OK && !atomic_load(&s->write_failed)) {
        /* The synced write did not happen: the earlier ones of the group still need their sync. An
         * empty synced write gives it. Not rocksdb_flush_wal: when another thread's write has just
         * failed (chunk writes do not queue here), RocksDB's WAL writer asserts on a flush after
         * an error, where a write returns the error. */
        struct cf_batch *empty = cf_batch_new(s->eng);
        st = cf_db_write_raw(s, empty, true);
        cf_batch_free(empty);
    }
    for (struct cf_jwait *g = group; g != NULL; g = g->next)
        if (g->sync && g->st == CF_OK && st != CF_OK)
            g->st = st;
    if (st == CF_OK && s->journal.anchor != NULL && cf_anchor_store(s, s->journal.anchor) != CF_OK) {
        /* Logged; the store is fine, only the anchor lags (a later write catches it up). */
    }
    cf_eng_unlock(s->eng, CF_ENG_LOCK_JOURNAL);
}

enum cf_status cf_journal_write(struct cf_store *s, struct cf_batch *b, bool sync)
{
    struct cf_journal *j = &s->journal;
    struct cf_jwait w = {.b = b, .sync = sync};
    enum cf_status st = cf_journal_parse(b, &w.ops);
    if (st != CF_OK)
        return st;
    if (w.ops.n == 0) {
        cf_jops_free(&w.ops);
        return cf_db_write_raw(s, b, sync); /* nothing the journal covers (chunks, provenance events) */
    }
    pthread_cond_init(&w.cv, NULL);
    pthread_mutex_lock(&j->lock);
    if (j->tail != NULL)
        j->tail->next = &w;
    else
        j->queue = &w;
    j->tail = &w;
    while (!w.done && (j->writing || j->queue != &w))
        pthread_cond_wait(&w.cv, &j->lock);
    if (!w.done) {
        /* Leader: take the queue as it is now and write it (cluster mode: only its own batch, which
         * then goes over the connection of its own cluster locks; the next in line leads next). */
        struct cf_jwait *group = j->queue;
        if (cf_eng_multiwriter(s->eng)) {
            j->queue = w.next;
            if (j->tail == &w)
                j->tail = NULL;
            w.next = NULL;
        } else {
            j->queue = j->tail = NULL;
        }
        j->writing = true;
        pthread_mutex_unlock(&j->lock);
        write_group(s, group);
        pthread_mutex_lock(&j->lock);
        j->writing = false;
        for (struct cf_jwait *g = group, *next; g != NULL; g = next) {
            next = g->next; /* read before g's owner may return and free it */
            g->done = true;
            if (g != &w)
                pthread_cond_signal(&g->cv);
        }
        if (j->queue != NULL)
            pthread_cond_signal(&j->queue->cv);
    }
    pthread_mutex_unlock(&j->lock);
    pthread_cond_destroy(&w.cv);
    cf_jops_free(&w.ops);
    return w.st;
}

/* ---- keys, creation, opening ------------------------------------------------------------------ */

enum cf_status cf_journal_keys(struct cf_store *s, const struct cf_key *global)
{
    struct cf_journal *j = &s->journal;
    if (cf_hkdf(global->k, sizeof global->k, "coffer/v1/global/journal-mac", &j->mac_key) != CF_OK ||
        cf_hkdf(global->k, sizeof global->k, "coffer/v1/global/journal-sum", &j->sum_key) != CF_OK ||
        cf_hkdf(global->k, sizeof global->k, "coffer/v1/global/journal-seal", &j->seal_key) != CF_OK ||
        cf_hkdf(global->k, sizeof global->k, "coffer/v1/global/journal-anchor", &j->anchor_key) != CF_OK)
        return CF_ECRYPTO;
    return CF_OK;
}

void cf_journal_setup(struct cf_store *s)
{
    struct cf_journal *j = &s->journal;
    pthread_mutex_init(&j->lock, NULL);
    j->keep = CF_JOURNAL_KEEP;
    j->step = CF_JOURNAL_STEP;
}

void cf_journal_free(struct cf_store *s)
{
    struct cf_journal *j = &s->journal;
    if (j->anchor != NULL) {
        cf_anchor_close(j->anchor);
        j->anchor = NULL;
    }
    cf_key_wipe(&j->mac_key);
    cf_key_wipe(&j->sum_key);
    cf_key_wipe(&j->seal_key);
    cf_key_wipe(&j->anchor_key);
    cf_wipe(j->head.sum, sizeof j->head.sum);
    pthread_mutex_destroy(&j->lock);
}

void cf_journal_create(struct cf_store *s)
{
    struct cf_journal *j = &s->journal;
    cf_random(j->head.id, sizeof j->head.id);
    j->head.seq = 0;
    cf_jgenesis(j, j->head.mac);
    j->head.first = 1;
    memcpy(j->head.first_prev, j->head.mac, 32);
    memset(j->head.sum, 0, sizeof j->head.sum);
    j->head.nkeys = 0;
    j->head.at = cf_now_ms();
    j->on = true;
}

/* Deletes the whole journal (raw). */
static void wipe_journal(struct cf_batch *b)
{
    static const char lo[1] = {0}, hi[1] = {(char)0xff};
    cf_batch_delete_range(b, CF_CF_JOURNAL, lo, 0, hi, 1);
    cf_batch_delete_range(b, CF_CF_JOURNAL_KEYS, lo, 0, hi, 1);
}

/* A journal over the store as it is: every covered key indexed as written "before the journal"
 * (seq 0). For stores made before the journal existed, and for `coffer journal accept` when the
 * journal itself is unusable. Crash-safe: the head is written last, and a missing head restarts it. */
static enum cf_status adopt(struct cf_store *s, uint64_t *count)
{
    struct cf_journal *j = &s->journal;
    enum cf_status st;
    struct cf_batch *b = cf_batch_new(s->eng);
    wipe_journal(b);
    if ((st = cf_db_write_raw(s, b, false)) != CF_OK)
        goto out;
    cf_batch_clear(b);
    cf_journal_create(s);
    j->on = false;
    *count = 0;
    for (int cf = 0; cf < CF_CF_COUNT && st == CF_OK; cf++) {
        if (!cf_journal_covers((enum cf_cf)cf))
            continue;
        struct cf_iter it;
        uint8_t zero = 0;
        cf_iter_open(s, (enum cf_cf)cf, &zero, 0, &it);
        cf_eiter_seek_to_first(it.it);
        for (; cf_eiter_valid(it.it) && st == CF_OK; cf_eiter_next(it.it)) {
            size_t kl, vl;
            const uint8_t *k = (const uint8_t *)cf_eiter_key(it.it, &kl);
            const uint8_t *v = (const uint8_t *)cf_eiter_value(it.it, &vl);
            if (kl > UINT16_MAX) {
                st = CF_ECORRUPT;
                break;
            }
            uint8_t ival[CF_JINDEX_VAL_LEN], term[32];
            uint8_t *ik = cf_xmalloc(1 + kl);
            ik[0] = (uint8_t)cf;
            memcpy(ik + 1, k, kl);
            cf_put_be64(ival, 0);
            cf_sha256(v, vl, ival + 8);
            cf_jindex_mac(&j->mac_key, (uint8_t)cf, 0, ival + 8, k, kl, ival + 40);
            cf_jindex_mac(&j->sum_key, (uint8_t)cf, 0, ival + 8, k, kl, term);
            cf_jsum_add(j->head.sum, term);
            j->head.nkeys++;
            cf_batch_put(b, CF_CF_JOURNAL_KEYS, (const char *)ik, 1 + kl, (const char *)ival, sizeof ival);
            free(ik);
            if (cf_batch_count(b) >= ADOPT_BATCH) {
                st = cf_db_write_raw(s, b, false);
                cf_batch_clear(b);
            }
        }
        if (st == CF_OK)
            st = cf_iter_status(&it);
        cf_iter_close(&it);
    }
    if (st == CF_OK) {
        head_put(s, b);
        st = cf_db_write_raw(s, b, true);
    }
    if (st == CF_OK) {
        *count = j->head.nkeys;
        j->on = true;
    }
out:
    cf_batch_free(b);
    return st;
}

static void when(uint64_t ms, char out[32])
{
    if (ms == 0)
        snprintf(out, 32, "an unknown time");
    else
        cf_time_rfc3339(ms, out);
}

/* Whether the journal's last entry is where the head says: entry seq exists and has the head's MAC,
 * and nothing follows it. */
static const char *tail_problem(struct cf_store *s)
{
    struct cf_journal *j = &s->journal;
    uint8_t mac[32], k[ENTRY_KEY_LEN];
    char *v;
    size_t vl;
    if (j->head.seq >= j->head.first) {
        enum cf_status st = cf_journal_mac_at(s, j->head.seq, mac);
        if (st == CF_ECORRUPT)
            return "its last entry is missing or does not verify (the journal was truncated or altered)";
        if (st != CF_OK)
            return "its last entry cannot be read";
        if (!cf_ct_equal(mac, j->head.mac, 32))
            return "its last entry is not the one its head names (the journal was altered)";
    }
    cf_jentry_key(j->head.seq + 1, k);
    if (cf_db_get(s, CF_CF_JOURNAL, k, sizeof k, &v, &vl) == CF_OK) {
        free(v);
        return "it holds entries past its head (the head was rolled back)";
    }
    return NULL;
}

static enum cf_status journal_open(struct cf_store *s, bool readonly, struct cf_anchor *anchor,
                                   enum cf_anchor_mode mode)
{
    struct cf_journal *j = &s->journal;
    struct cf_jhead h;
    enum cf_status st;
    if (!cf_eng_has(s->eng, CF_CF_JOURNAL) || !cf_eng_has(s->eng, CF_CF_JOURNAL_KEYS))
        return readonly ? CF_OK : CF_EIO; /* read-only, from before the journal: it reads as absent */
    enum cf_status hst = cf_journal_head_read(s, &h);
    if (hst == CF_OK)
        j->head = h;
    if (readonly) {
        /* Read-only opens only report (cf_journal_check); writes are refused anyway. */
        j->present = hst == CF_OK;
        j->head_bad = hst == CF_ECORRUPT;
        return hst == CF_OK || hst == CF_ENOTFOUND || hst == CF_ECORRUPT ? CF_OK : hst;
    }
    if (hst != CF_OK && hst != CF_ENOTFOUND && hst != CF_ECORRUPT)
        return hst;
    bool accept = mode == CF_ANCHOR_ACCEPT, rebuild = false;
    const char *problem = NULL;
    char why[512];
    if (hst == CF_ENOTFOUND) {
        /* No journal: a store from before it, or a journal that was deleted. The anchor tells
         * which, when there is one. */
        struct cf_anchor_slot a;
        int b = anchor != NULL ? cf_anchor_best(s, anchor, &a) : 0;
        if (b != 0 && !accept) {
            if (b > 0)
                cf_storage_log(CF_LOG_ERROR,
                               "storage: journal: %s has no metadata journal, but its anchor %s recorded one (entry "
                               "%llu): the journal was deleted, or data_dir was replaced",
                               s->dir, cf_anchor_path(anchor), (unsigned long long)a.seq);
            else
                cf_storage_log(CF_LOG_ERROR,
                               "storage: journal: %s has no metadata journal, and its anchor %s does not verify",
                               s->dir, cf_anchor_path(anchor));
            return CF_EROLLBACK;
        }
        rebuild = true;
    } else if (hst == CF_ECORRUPT) {
        problem = "its head does not verify (altered, or not written with this master key)";
    } else {
        problem = tail_problem(s);
    }
    if (problem != NULL && !accept) {
        cf_storage_log(CF_LOG_ERROR, "storage: journal: the metadata journal of %s is damaged: %s", s->dir, problem);
        return CF_EROLLBACK;
    }
    if (accept) {
        /* The operator's word: the store as it is now is the truth. Say what is being accepted, then
         * start the journal over it (so that fsck agrees from here on). */
        if (problem != NULL)
            cf_storage_log(CF_LOG_WARN, "storage: journal: accepted on the operator's word: the metadata journal "
                                        "of %s was damaged: %s",
                           s->dir, problem);
        else if (hst == CF_OK && anchor != NULL && cf_anchor_verdict(s, anchor, why, sizeof why) != 0)
            cf_storage_log(CF_LOG_WARN, "storage: journal: accepted on the operator's word: %s", why);
        rebuild = true;
    }
    if (rebuild) {
        uint64_t n = 0;
        if ((st = adopt(s, &n)) != CF_OK)
            return st;
        cf_storage_log(CF_LOG_WARN, "storage: journal: %s: started a metadata journal over the %llu record(s) the "
                                    "store holds now, trusting them as they are",
                       s->dir, (unsigned long long)n);
    } else if (anchor != NULL && cf_anchor_verdict(s, anchor, why, sizeof why) != 0) {
        cf_storage_log(CF_LOG_ERROR, "storage: journal: %s", why);
        return CF_EROLLBACK;
    }
    j->on = true;
    if (anchor != NULL) {
        if ((st = cf_anchor_store(s, anchor)) != CF_OK)
            return st;
        j->anchor = anchor;
    }
    return CF_OK;
}

/* Cluster mode: under the journal's cluster lock, so that another node's write between the head read
 * and the tail check does not look like a rolled-back head. */
enum cf_status cf_journal_open(struct cf_store *s, bool readonly, struct cf_anchor *anchor, enum cf_anchor_mode mode)
{
    if (readonly || !cf_eng_multiwriter(s->eng))
        return journal_open(s, readonly, anchor, mode);
    char *err = NULL;
    enum cf_status st = cf_eng_lock(s->eng, CF_ENG_LOCK_JOURNAL, &err) == CF_ENG_OK
                            ? journal_open(s, readonly, anchor, mode)
                            : cf_db_error("taking the journal lock", err);
    cf_eng_unlock(s->eng, CF_ENG_LOCK_JOURNAL);
    return st;
}

void cf_journal_close(struct cf_store *s)
{
    struct cf_journal *j = &s->journal;
    if (!j->on || j->anchor == NULL || atomic_load(&s->write_failed))
        return;
    char *err = NULL;
    if (cf_eng_multiwriter(s->eng)) {
        /* The newest head any node wrote (this node may have been idle), so that the anchor does not
         * fall behind the entries the journal keeps. Kept as it is if it cannot be read. */
        if (cf_eng_lock(s->eng, CF_ENG_LOCK_JOURNAL, &err) == CF_ENG_OK) {
            if (head_reload(s) != CF_OK) {
                /* logged */
            }
        } else {
            cf_eng_free(err);
            err = NULL;
        }
        cf_eng_unlock(s->eng, CF_ENG_LOCK_JOURNAL);
    }
    /* Unsynced entries (pending marks) become durable now: the anchor may name them. */
    if (cf_eng_sync(s->eng, &err) != CF_ENG_OK) {
        cf_storage_log(CF_LOG_WARN, "storage: journal: cannot sync the WAL at close: %s", err);
        cf_eng_free(err);
        return;
    }
    if (cf_anchor_store(s, j->anchor) == CF_OK && fdatasync(cf_anchor_fd(j->anchor)) != 0)
        cf_storage_log(CF_LOG_WARN, "storage: journal: cannot sync %s: %s", cf_anchor_path(j->anchor),
                       strerror(errno));
}

enum cf_status cf_store_anchor_verdict(struct cf_store *s, struct cf_anchor *anchor, char **why)
{
    const struct cf_journal *j = &s->journal;
    struct cf_anchor_slot a;
    char buf[512];
    *why = NULL;
    if (anchor == NULL)
        return CF_OK;
    if (!j->on && !j->present) {
        int b = cf_anchor_best(s, anchor, &a);
        if (j->head_bad)
            *why = cf_xasprintf("the metadata journal of %s is damaged: its head does not open", s->dir);
        else if (b > 0)
            *why = cf_xasprintf("%s has no metadata journal, but the anchor %s recorded one (entry %llu)", s->dir,
                                cf_anchor_path(anchor), (unsigned long long)a.seq);
        return *why != NULL ? CF_EROLLBACK : CF_OK;
    }
    if (cf_anchor_verdict(s, anchor, buf, sizeof buf) == 0)
        return CF_OK;
    *why = cf_xstrdup(buf);
    return CF_EROLLBACK;
}

void cf_journal_describe(struct cf_store *s, struct cf_journal_state *out)
{
    const struct cf_journal *j = &s->journal;
    memset(out, 0, sizeof *out);
    out->present = j->on || j->present;
    out->seq = j->head.seq;
    out->first = j->head.first;
    out->keys = j->head.nkeys;
    out->at = j->head.at;
}

/* ---- the anchor file ---------------------------------------------------------------------------- */

struct cf_anchor {
    int fd;
    char *path;
    bool writable;
    uint8_t raw[2 * ANCHOR_SLOT]; /* as read at open */
    size_t rawlen;
    int next;                     /* the slot the next write goes to */
};

const char *cf_anchor_path(const struct cf_anchor *a)
{
    return a->path;
}

int cf_anchor_fd(const struct cf_anchor *a)
{
    return a->fd;
}

enum cf_status cf_anchor_open(const char *path, bool writable, struct cf_anchor **out, char **err)
{
    struct stat st;
    int fd = open(path, (writable ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && !writable && errno == ENOENT) {
        fd = -1; /* nothing recorded yet: reading finds an empty anchor */
    } else if (fd < 0 && writable && (errno == EROFS || errno == EACCES || errno == EPERM)) {
        *err = cf_xasprintf("%s: cannot open the journal anchor for writing: %s (the server rewrites it: create it "
                            "once as root, `install -m 600 /dev/null %s`, and under systemd list it in "
                            "ReadWritePaths=; or point journal_anchor_file elsewhere outside data_dir)",
                            path, strerror(errno), path);
        return CF_EIO;
    } else if (fd < 0) {
        *err = cf_xasprintf("%s: cannot open the journal anchor: %s", path, strerror(errno));
        return CF_EIO;
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *err = cf_xasprintf("%s: the journal anchor is not a regular file", path);
        return CF_EINVAL;
    } else if ((st.st_mode & 077) != 0) {
        close(fd);
        *err = cf_xasprintf("%s: the journal anchor must not be accessible to group or others (chmod 600)", path);
        return CF_EINVAL;
    }
    struct cf_anchor *a = cf_xcalloc(1, sizeof *a);
    a->fd = fd;
    a->path = cf_xstrdup(path);
    a->writable = writable;
    if (fd >= 0) {
        ssize_t n = pread(fd, a->raw, sizeof a->raw, 0);
        if (n < 0) {
            *err = cf_xasprintf("%s: cannot read the journal anchor: %s", path, strerror(errno));
            cf_anchor_close(a);
            return CF_EIO;
        }
        a->rawlen = (size_t)n;
    }
    *out = a;
    return CF_OK;
}

void cf_anchor_close(struct cf_anchor *a)
{
    if (a == NULL)
        return;
    if (a->fd >= 0)
        close(a->fd);
    free(a->path);
    free(a);
}

enum cf_status cf_anchor_reset(struct cf_anchor *a)
{
    if (!a->writable || ftruncate(a->fd, 0) != 0) {
        cf_storage_log(CF_LOG_ERROR, "storage: journal: cannot reset %s: %s", a->path,
                       a->writable ? strerror(errno) : "opened read-only");
        return CF_EIO;
    }
    a->rawlen = 0;
    memset(a->raw, 0, sizeof a->raw);
    a->next = 0;
    return CF_OK;
}

static void slot_mac(const struct cf_store *s, const uint8_t body[ANCHOR_BODY], uint8_t out[32])
{
    cf_hmac_sha256(&s->journal.anchor_key, body, ANCHOR_BODY, out);
}

/* 1 and *out: the newer of the two slots that verify; 0: an empty anchor (nothing written yet);
 * -1: something is there but no slot verifies. */
int cf_anchor_best(struct cf_store *s, struct cf_anchor *a, struct cf_anchor_slot *out)
{
    int found = 0;
    bool any = false;
    for (int i = 0; i < 2; i++) {
        const uint8_t *p = a->raw + i * ANCHOR_SLOT;
        if (a->rawlen < (size_t)(i + 1) * ANCHOR_SLOT) {
            for (size_t k = (size_t)i * ANCHOR_SLOT; k < a->rawlen; k++)
                any = any || a->raw[k] != 0;
            continue;
        }
        uint8_t mac[32];
        for (size_t k = 0; k < ANCHOR_SLOT; k++)
            any = any || p[k] != 0;
        slot_mac(s, p, mac);
        if (memcmp(p, anchor_magic, 8) != 0 || !cf_ct_equal(mac, p + ANCHOR_BODY, 32))
            continue;
        uint64_t seq = cf_get_be64(p + 24);
        if (found && seq < out->seq)
            continue;
        found = 1;
        memcpy(out->id, p + 8, 16);
        out->seq = seq;
        memcpy(out->mac, p + 32, 32);
        out->at = cf_get_be64(p + 64);
        a->next = 1 - i;
    }
    return found ? 1 : any ? -1 : 0;
}

enum cf_status cf_anchor_store(struct cf_store *s, struct cf_anchor *a)
{
    const struct cf_journal *j = &s->journal;
    uint8_t slot[ANCHOR_SLOT] = {0};
    memcpy(slot, anchor_magic, 8);
    memcpy(slot + 8, j->head.id, 16);
    cf_put_be64(slot + 24, j->head.seq);
    memcpy(slot + 32, j->head.mac, 32);
    cf_put_be64(slot + 64, j->head.at);
    slot_mac(s, slot, slot + ANCHOR_BODY);
    /* Alternate slots, so that a write torn by a power cut leaves the other, older, slot. No fsync:
     * the anchor only has to be at least as old as the durable store (it is written after the synced
     * store write), and an attacker who stops the server cannot stop the page cache reaching disk. */
    off_t off = (off_t)a->next * ANCHOR_SLOT;
    if (!a->writable || pwrite(a->fd, slot, sizeof slot, off) != (ssize_t)sizeof slot) {
        cf_storage_log(CF_LOG_ERROR, "storage: journal: cannot write the anchor %s: %s", a->path,
                       a->writable ? strerror(errno) : "opened read-only");
        return CF_EIO;
    }
    memcpy(a->raw + off, slot, sizeof slot);
    if (a->rawlen < (size_t)off + sizeof slot)
        a->rawlen = (size_t)off + sizeof slot;
    a->next = 1 - a->next;
    return CF_OK;
}

int cf_anchor_verdict(struct cf_store *s, struct cf_anchor *a, char *why, size_t n)
{
    const struct cf_journal *j = &s->journal;
    struct cf_anchor_slot sl;
    char t[32];
    int b = cf_anchor_best(s, a, &sl);
    if (b == 0)
        return 0;
    if (b < 0) {
        snprintf(why, n, "the journal anchor %s does not verify (altered, or written under another master key)",
                 a->path);
        return 1;
    }
    when(sl.at, t);
    if (memcmp(sl.id, j->head.id, 16) != 0) {
        snprintf(why, n, "the journal anchor %s belongs to another store (or the journal of %s was recreated)",
                 a->path, s->dir);
        return 1;
    }
    if (sl.seq > j->head.seq) {
        snprintf(why, n,
                 "%s is at metadata journal entry %llu, but the anchor %s recorded entry %llu (written %s): the "
                 "data directory was rolled back or replaced by an older copy",
                 s->dir, (unsigned long long)j->head.seq, a->path, (unsigned long long)sl.seq, t);
        return 1;
    }
    uint8_t mac[32];
    enum cf_status st = cf_journal_mac_at(s, sl.seq, mac);
    if (st == CF_ENOTFOUND) {
        snprintf(why, n,
                 "the anchor %s recorded entry %llu (written %s), older than the oldest entry %s keeps (%llu): "
                 "cannot prove that the store continues from it",
                 a->path, (unsigned long long)sl.seq, t, s->dir, (unsigned long long)j->head.first);
        return 1;
    }
    if (st != CF_OK || !cf_ct_equal(mac, sl.mac, 32)) {
        snprintf(why, n,
                 "entry %llu of the metadata journal of %s is not the one the anchor %s recorded (written %s): "
                 "the data directory holds another history",
                 (unsigned long long)sl.seq, s->dir, a->path, t);
        return 1;
    }
    return 0;
}
