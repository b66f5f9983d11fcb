/*
 * journal_check.c: the replay behind `coffer fsck` and `coffer audit verify` (cf_journal_check in
 * storage.h): does every covered key hold the value the journal says was written last?
 *
 * 1. The anchor (if given): the store must not be older than it, nor another history.
 * 2. The chain: entries first..seq, contiguous, each MAC'd and naming its predecessor's MAC, the
 *    last one the head's; none before first (trimmed ones put back) or after seq (a rolled-back
 *    head). The items of the kept entries give, per key, its last write (the "window").
 * 3. The index: every entry verifies; the sum of their terms and their number match the head.
 * 4. The records: for every key in the store or the index, what it should be is its last write in
 *    the window if it has one, else its index entry (or a range deletion in the window newer than
 *    that), and what it is, is the SHA-256 of the stored value. Every difference is a finding
 *    naming the key: rolled back (to the value the window shows was written at entry N), not the
 *    last value, resurrected after deletion, deleted, or not in the journal at all.
 * Findings are collected and reported in key order at the end.
 * Memory: the window map (about 100 bytes per key written in the kept entries, tens of MB for
 * CF_JOURNAL_KEEP busy entries); one record at a time otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"

/* What a column family's records are, in words an operator reads. */
static const char *kind_of(uint8_t cf, const uint8_t *key, size_t klen)
{
    switch ((enum cf_cf)cf) {
    case CF_CF_DEFAULT:
        return "store format marker";
    case CF_CF_KEYS:
        return "wrapped key";
    case CF_CF_TENANTS:
        return "tenant record";
    case CF_CF_TENANT_NAMES:
        return "tenant name index entry";
    case CF_CF_USERS:
        return "user record";
    case CF_CF_USER_NAMES:
        return "username index entry";
    case CF_CF_SESSIONS:
        return "session";
    case CF_CF_NODES:
        return "node/file record";
    case CF_CF_CHILDREN:
        return "folder entry";
    case CF_CF_VERSIONS:
        return "file version record";
    case CF_CF_PENDING:
        return "pending-content mark";
    case CF_CF_TRASH:
        return "trash entry";
    case CF_CF_OWNED:
        return "ownership index entry";
    case CF_CF_GROUPS:
        return klen == 33 ? "department record" : "group record";
    case CF_CF_GROUP_NAMES:
        return klen == 49 ? "department name index entry" : "group name index entry";
    case CF_CF_MEMBERS:
    case CF_CF_MEMBERSHIPS:
        return klen == 49 ? "department membership" : "group membership";
    case CF_CF_ACL:
        return "ACL record";
    case CF_CF_GRANTS:
        return "grant index entry";
    case CF_CF_USER_SESSIONS:
        return "session index entry";
    case CF_CF_LOGINS:
        return "login record";
    case CF_CF_DEVICES:
        return "device record";
    case CF_CF_ALERTS:
        return "alert";
    case CF_CF_SHARES:
        return klen > 32 ? "share link tally" : "share record";
    case CF_CF_SHARE_TOKENS:
        return "share token index entry";
    case CF_CF_NODE_SHARES:
    case CF_CF_USER_SHARES:
        return "share index entry";
    case CF_CF_SHARE_ACCESS:
        return "share access grant";
    case CF_CF_AUDIT_META:
        return klen == 17 && key[16] == 'c' ? "provenance retention checkpoint" : "provenance head";
    case CF_CF_UPLOADS:
        if (klen > 16 && key[16] == 'q')
            return "usage counter";
        if (klen > 16 && (key[16] == 'd' || key[16] == 'l' || key[16] == 'k')) /* davprop.c */
            return key[16] == 'd' ? "WebDAV dead property" : key[16] == 'l' ? "WebDAV lock" : "WebDAV lock token entry";
        return klen > 16 && key[16] == 't' ? "resumable upload tail" : klen > 16 && key[16] == 'o'
                                                                          ? "upload accounting entry"
                                                                          : "resumable upload record";
    default:
        return "record";
    }
}

struct finding {
    uint8_t cf;          /* 0xff: about the journal itself */
    uint8_t *key;
    size_t klen;
    const char *what;
    char *detail;
    uint8_t actual[32];  /* NOT_LAST: the stored value's digest, to look for in the window */
    uint64_t last_seq;   /* NOT_LAST: the last write */
};

struct range {
    uint8_t cf;
    uint8_t *lo, *hi;
    uint16_t ll, hl;
    uint64_t seq, at;
};

struct check {
    struct cf_store *s;
    struct cf_jmap window;
    struct range *ranges;
    size_t nranges;
    struct finding *f;
    size_t nf, capf;
    bool index_blamed; /* a finding already accounts for an index entry that is not what it should be */
    uint64_t *ats;     /* when each kept entry was written: ats[seq - first] (NULL: not known) */
    uint64_t nats;
};

#define ATS_MAX (1u << 22) /* kept entries whose times are remembered (the window is far smaller) */

static uint64_t at_of(const struct check *c, uint64_t seq)
{
    uint64_t first = c->s->journal.head.first;
    return seq >= first && seq - first < c->nats ? c->ats[seq - first] : 0;
}

static void add(struct check *c, uint8_t cf, const uint8_t *key, size_t klen, const char *what, char *detail)
{
    if (c->nf == c->capf) {
        c->capf = c->capf == 0 ? 16 : c->capf * 2;
        c->f = cf_xrealloc(c->f, c->capf * sizeof *c->f);
    }
    struct finding *f = &c->f[c->nf++];
    memset(f, 0, sizeof *f);
    f->cf = cf;
    f->klen = klen;
    f->key = cf_xmalloc(klen + 1);
    if (klen > 0)
        memcpy(f->key, key, klen);
    f->what = what;
    f->detail = detail;
}

static void journal_finding(struct check *c, char *detail)
{
    add(c, 0xff, NULL, 0, "metadata journal", detail);
}

static void when(uint64_t ms, char out[32])
{
    if (ms == 0)
        snprintf(out, 32, "before the journal");
    else
        cf_time_rfc3339(ms, out);
}

static bool in_range(const uint8_t *k, size_t kl, const uint8_t *lo, size_t ll, const uint8_t *hi, size_t hl)
{
    size_t m = kl < ll ? kl : ll;
    int r = memcmp(k, lo, m);
    if (r < 0 || (r == 0 && kl < ll))
        return false;
    m = kl < hl ? kl : hl;
    r = memcmp(k, hi, m);
    return r < 0 || (r == 0 && kl < hl);
}

/* ---- 2. the chain ----------------------------------------------------------------------------- */

static void apply_item(struct check *c, const struct cf_jitem *it, uint64_t seq, uint64_t at)
{
    if (!cf_journal_covers((enum cf_cf)it->cf))
        return;
    if (it->kind == CF_JOP_RANGE) {
        for (size_t i = 0; i < c->window.cap; i++) {
            struct cf_jstate *e = &c->window.v[i];
            if (e->used && e->cf == it->cf &&
                in_range(cf_jkey(&c->window, e), e->klen, it->key, it->klen, it->hi, it->hlen)) {
                e->op = CF_JOP_DEL;
                e->seq = seq;
            }
        }
        c->ranges = cf_xrealloc(c->ranges, (c->nranges + 1) * sizeof *c->ranges);
        struct range *r = &c->ranges[c->nranges++];
        r->cf = it->cf;
        r->ll = it->klen;
        r->hl = it->hlen;
        r->lo = cf_xmalloc(r->ll + 1u);
        r->hi = cf_xmalloc(r->hl + 1u);
        memcpy(r->lo, it->key, r->ll);
        memcpy(r->hi, it->hi, r->hl);
        r->seq = seq;
        r->at = at;
        return;
    }
    struct cf_jstate *e = cf_jmap_get(&c->window, it->cf, it->key, it->klen, true);
    e->op = it->kind;
    e->seq = seq;
    if (it->kind == CF_JOP_PUT)
        memcpy(e->digest, it->digest, 32);
}

/* The newest range deletion of the window that covers key (NULL: none). */
static const struct range *covering_range(const struct check *c, uint8_t cf, const uint8_t *k, size_t kl)
{
    const struct range *best = NULL;
    for (size_t i = 0; i < c->nranges; i++) {
        const struct range *r = &c->ranges[i];
        if (r->cf == cf && in_range(k, kl, r->lo, r->ll, r->hi, r->hl) && (best == NULL || r->seq > best->seq))
            best = r;
    }
    return best;
}

static enum cf_status check_chain(struct check *c, uint64_t *entries)
{
    struct cf_store *s = c->s;
    const struct cf_journal *j = &s->journal;
    const struct cf_jhead *h = &j->head;
    uint8_t running[32], lo[9];
    uint64_t expect = h->first, stale = 0, past = 0;
    bool chain_ok = true;
    memcpy(running, h->first_prev, 32);
    cf_jentry_key(0, lo);
    if (h->seq >= h->first && h->seq - h->first < ATS_MAX) {
        c->nats = h->seq - h->first + 1;
        c->ats = cf_xcalloc(c->nats, sizeof *c->ats);
    }
    static const char upper[1] = {'e' + 1};
    struct cf_eiter *it = cf_eiter_open(s->eng, CF_CF_JOURNAL, NULL, 0, upper, 1);
    enum cf_status st = CF_OK;
    for (cf_eiter_seek(it, (const char *)lo, 1); cf_eiter_valid(it); cf_eiter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)cf_eiter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)cf_eiter_value(it, &vl);
        if (kl != 9 || k[0] != 'e') {
            journal_finding(c, cf_xasprintf("the journal holds a key that is not an entry"));
            continue;
        }
        uint64_t seq = cf_get_be64(k + 1);
        if (seq < h->first) {
            stale++;
            continue;
        }
        if (seq > h->seq) {
            past++;
            continue;
        }
        if (seq != expect) {
            journal_finding(c, cf_xasprintf("entries %llu to %llu are missing (deleted)", (unsigned long long)expect,
                                            (unsigned long long)seq - 1));
            chain_ok = false;
        }
        struct cf_jentry e;
        uint8_t mac[32];
        if (cf_jentry_parse(v, vl, &e) != CF_OK) {
            journal_finding(c, cf_xasprintf("entry %llu is malformed", (unsigned long long)seq));
            chain_ok = false;
            expect = seq + 1;
            continue;
        }
        cf_jentry_mac(j, seq, v, e.body_len, mac);
        if (!cf_ct_equal(mac, e.mac, 32)) {
            journal_finding(c, cf_xasprintf("entry %llu does not verify (altered)", (unsigned long long)seq));
            chain_ok = false;
            expect = seq + 1;
            continue;
        }
        if (seq == expect && !cf_ct_equal(e.prev, running, 32)) {
            journal_finding(c, cf_xasprintf("entry %llu does not follow the one before it (replaced by an entry of "
                                            "another history)",
                                            (unsigned long long)seq));
            chain_ok = false;
        }
        memcpy(running, e.mac, 32);
        expect = seq + 1;
        (*entries)++;
        if (seq - h->first < c->nats)
            c->ats[seq - h->first] = e.at;
        size_t off = 0;
        struct cf_jitem item;
        uint32_t items = 0;
        while (cf_jentry_next(&e, &off, &item)) {
            apply_item(c, &item, seq, e.at);
            items++;
        }
        if (off != e.items_len || items != e.n)
            journal_finding(c, cf_xasprintf("entry %llu lists malformed items", (unsigned long long)seq));
    }
    char *err = NULL;
    if (cf_eiter_status(it, &err) != CF_ENG_OK) {
        cf_storage_log(CF_LOG_ERROR, "storage: journal check: %s", err);
        cf_eng_free(err);
        st = CF_EIO;
    }
    cf_eiter_close(it);
    if (st != CF_OK)
        return st;
    if (expect != h->seq + 1) {
        journal_finding(c, cf_xasprintf("it ends at entry %llu, but its head is at entry %llu (truncated)",
                                        (unsigned long long)expect - 1, (unsigned long long)h->seq));
    } else if (chain_ok && h->seq >= h->first && !cf_ct_equal(running, h->mac, 32)) {
        journal_finding(c, cf_xasprintf("its last entry is not the one its head names (altered)"));
    }
    if (stale > 0)
        journal_finding(c, cf_xasprintf("it holds %llu entr%s older than the oldest its head keeps (%llu): put back "
                                        "from an older copy",
                                        (unsigned long long)stale, stale == 1 ? "y" : "ies",
                                        (unsigned long long)h->first));
    if (past > 0)
        journal_finding(c, cf_xasprintf("it holds %llu entr%s past its head (entry %llu): the head was rolled back",
                                        (unsigned long long)past, past == 1 ? "y" : "ies", (unsigned long long)h->seq));
    return CF_OK;
}

/* ---- 3. the index ----------------------------------------------------------------------------- */

/* Verifies every index entry and adds up their terms; *adds_up: whether sum and count match the head. */
static enum cf_status check_index_sum(struct check *c, uint64_t *nkeys, bool *adds_up)
{
    struct cf_store *s = c->s;
    const struct cf_journal *j = &s->journal;
    uint8_t sum[32] = {0}, term[32], mac[32];
    uint64_t n = 0, bad_cf = 0;
    struct cf_iter it;
    uint8_t zero = 0;
    cf_iter_open(s, CF_CF_JOURNAL_KEYS, &zero, 0, &it);
    cf_eiter_seek_to_first(it.it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)cf_eiter_key(it.it, &kl);
        const uint8_t *v = (const uint8_t *)cf_eiter_value(it.it, &vl);
        n++;
        if (kl < 1 || !cf_journal_covers((enum cf_cf)k[0]) || vl != CF_JINDEX_VAL_LEN) {
            bad_cf++;
            continue;
        }
        cf_jindex_mac(&j->mac_key, k[0], cf_get_be64(v), v + 8, k + 1, kl - 1, mac);
        if (!cf_ct_equal(mac, v + 40, 32)) {
            add(c, k[0], k + 1, kl - 1, CF_JFIND_INDEX, cf_xasprintf("the index entry does not verify (altered)"));
            c->index_blamed = true;
        }
        cf_jindex_mac(&j->sum_key, k[0], cf_get_be64(v), v + 8, k + 1, kl - 1, term);
        cf_jsum_add(sum, term);
    }
    enum cf_status st = cf_iter_status(&it);
    cf_iter_close(&it);
    if (st != CF_OK)
        return st;
    if (bad_cf > 0) {
        journal_finding(c, cf_xasprintf("its index holds %llu malformed entr%s", (unsigned long long)bad_cf,
                                        bad_cf == 1 ? "y" : "ies"));
        c->index_blamed = true;
    }
    *nkeys = n;
    *adds_up = n == j->head.nkeys && cf_ct_equal(sum, j->head.sum, 32);
    cf_wipe(term, sizeof term);
    cf_wipe(sum, sizeof sum);
    return CF_OK;
}

/* ---- 4. the records --------------------------------------------------------------------------- */

static char *entry_text(uint64_t seq, uint64_t at)
{
    char t[32];
    when(at, t);
    if (seq == 0)
        return cf_xasprintf("when the journal was started");
    if (at == 0) /* an entry no longer kept (only its number is known, from the index) */
        return cf_xasprintf("at journal entry %llu", (unsigned long long)seq);
    return cf_xasprintf("at journal entry %llu (%s)", (unsigned long long)seq, t);
}

/* One key: what it should be (window, ranges, index) against what it is (present, digest). */
static void judge(struct check *c, uint8_t cf, const uint8_t *key, size_t kl, bool present, const uint8_t digest[32],
                  bool indexed, uint64_t iseq, const uint8_t idigest[32])
{
    struct cf_jstate *w = cf_jmap_get(&c->window, cf, key, kl, false);
    const struct range *r = covering_range(c, cf, key, kl);
    if (w != NULL)
        w->seen = true;
    bool exp_put = false, known = true;
    uint64_t seq = 0, at = 0;
    const uint8_t *exp_digest = NULL;
    bool index_ok = true;
    if (w != NULL) {
        /* The window knows the last write (ranges after it were applied to it already). */
        exp_put = w->op == CF_JOP_PUT;
        seq = w->seq;
        at = at_of(c, w->seq);
        exp_digest = w->digest;
        index_ok = exp_put ? indexed && iseq == w->seq && memcmp(idigest, w->digest, 32) == 0 : !indexed;
    } else if (r != NULL && (!indexed || iseq < r->seq)) {
        exp_put = false;
        seq = r->seq;
        at = r->at;
        index_ok = !indexed;
    } else if (indexed) {
        exp_put = true;
        seq = iseq;
        exp_digest = idigest;
        /* An index entry written within the kept entries must be named by them. */
        index_ok = iseq < c->s->journal.head.first;
    } else {
        known = false;
    }
    char *when_s = NULL;
    if (!known) {
        if (present)
            add(c, cf, key, kl, CF_JFIND_UNJOURNALED,
                cf_xasprintf("no write of it is recorded: written outside Coffer, or put back after a deletion older "
                             "than the entries the journal keeps"));
        return;
    }
    if (exp_put && !present) {
        when_s = entry_text(seq, at);
        add(c, cf, key, kl, CF_JFIND_DELETED, cf_xasprintf("it was last written %s", when_s));
    } else if (exp_put && memcmp(digest, exp_digest, 32) != 0) {
        when_s = entry_text(seq, at);
        add(c, cf, key, kl, CF_JFIND_NOT_LAST, cf_xasprintf("the last write was %s", when_s));
        memcpy(c->f[c->nf - 1].actual, digest, 32);
        c->f[c->nf - 1].last_seq = seq;
    } else if (!exp_put && present) {
        when_s = entry_text(seq, at);
        add(c, cf, key, kl, CF_JFIND_RESURRECTED, cf_xasprintf("it was deleted %s", when_s));
    } else if (!index_ok) {
        add(c, cf, key, kl, CF_JFIND_INDEX,
            indexed ? cf_xasprintf("the index says entry %llu, the journal entries say otherwise",
                                   (unsigned long long)iseq)
                    : cf_xasprintf("the index has no entry for it"));
    }
    if (!index_ok)
        c->index_blamed = true;
    free(when_s);
}

static enum cf_status check_records(struct check *c, uint8_t cf, uint64_t *records)
{
    struct cf_store *s = c->s;
    struct cf_iter st_it, ix_it;
    uint8_t zero = 0;
    cf_iter_open(s, (enum cf_cf)cf, &zero, 0, &st_it);
    cf_eiter_seek_to_first(st_it.it);
    cf_iter_open(s, CF_CF_JOURNAL_KEYS, &cf, 1, &ix_it);
    for (;;) {
        bool sv = cf_eiter_valid(st_it.it), iv = cf_eiter_valid(ix_it.it);
        if (!sv && !iv)
            break;
        size_t skl = 0, ikl = 0, vl;
        const uint8_t *sk = sv ? (const uint8_t *)cf_eiter_key(st_it.it, &skl) : NULL;
        const uint8_t *ik = iv ? (const uint8_t *)cf_eiter_key(ix_it.it, &ikl) : NULL;
        int order;
        if (!sv)
            order = 1;
        else if (!iv)
            order = -1;
        else {
            size_t m = skl < ikl - 1 ? skl : ikl - 1;
            order = memcmp(sk, ik + 1, m);
            if (order == 0)
                order = skl < ikl - 1 ? -1 : skl > ikl - 1 ? 1 : 0;
        }
        uint8_t digest[32] = {0};
        bool present = order <= 0, indexed = order >= 0;
        uint64_t iseq = 0;
        uint8_t idigest[32] = {0};
        if (present) {
            const uint8_t *v = (const uint8_t *)cf_eiter_value(st_it.it, &vl);
            cf_sha256(v, vl, digest);
            (*records)++;
        }
        if (indexed) {
            const uint8_t *v = (const uint8_t *)cf_eiter_value(ix_it.it, &vl);
            if (vl == CF_JINDEX_VAL_LEN) {
                iseq = cf_get_be64(v);
                memcpy(idigest, v + 8, 32);
            } else {
                indexed = false; /* reported with the index */
            }
        }
        if (present)
            judge(c, cf, sk, skl, true, digest, indexed, iseq, idigest);
        else
            judge(c, cf, ik + 1, ikl - 1, false, digest, indexed, iseq, idigest);
        if (order <= 0)
            cf_eiter_next(st_it.it);
        if (order >= 0)
            cf_eiter_next(ix_it.it);
    }
    enum cf_status st = cf_iter_status(&st_it);
    if (st == CF_OK)
        st = cf_iter_status(&ix_it);
    cf_iter_close(&st_it);
    cf_iter_close(&ix_it);
    /* Keys the window wrote last and that are neither stored nor indexed. */
    for (size_t i = 0; i < c->window.cap && st == CF_OK; i++) {
        struct cf_jstate *w = &c->window.v[i];
        if (!w->used || w->seen || w->cf != cf || w->op != CF_JOP_PUT)
            continue;
        char *t = entry_text(w->seq, at_of(c, w->seq));
        add(c, cf, cf_jkey(&c->window, w), w->klen, CF_JFIND_DELETED,
            cf_xasprintf("it was last written %s (its index entry is gone too)", t));
        free(t);
        c->index_blamed = true;
    }
    return st;
}

/* NOT_LAST findings whose stored value the window shows as an earlier write become ROLLED_BACK. */
static enum cf_status name_earlier(struct check *c)
{
    struct cf_store *s = c->s;
    const struct cf_jhead *h = &s->journal.head;
    bool any = false;
    for (size_t i = 0; i < c->nf; i++)
        any = any || strcmp(c->f[i].what, CF_JFIND_NOT_LAST) == 0;
    if (!any)
        return CF_OK;
    struct cf_iter it;
    uint8_t lo[9];
    cf_jentry_key(h->first, lo);
    cf_iter_open(s, CF_CF_JOURNAL, "e", 1, &it);
    cf_eiter_seek(it.it, (const char *)lo, sizeof lo);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)cf_eiter_key(it.it, &kl);
        const uint8_t *v = (const uint8_t *)cf_eiter_value(it.it, &vl);
        struct cf_jentry e;
        if (kl != 9 || cf_get_be64(k + 1) > h->seq || cf_jentry_parse(v, vl, &e) != CF_OK)
            continue;
        uint64_t seq = cf_get_be64(k + 1);
        size_t off = 0;
        struct cf_jitem item;
        while (cf_jentry_next(&e, &off, &item)) {
            if (item.kind != CF_JOP_PUT)
                continue;
            for (size_t i = 0; i < c->nf; i++) {
                struct finding *f = &c->f[i];
                if (strcmp(f->what, CF_JFIND_NOT_LAST) != 0 || f->cf != item.cf || f->klen != item.klen ||
                    seq >= f->last_seq || memcmp(f->key, item.key, f->klen) != 0 ||
                    memcmp(f->actual, item.digest, 32) != 0)
                    continue;
                char t[32];
                when(e.at, t);
                char *d = cf_xasprintf("it holds the value written at journal entry %llu (%s); %s",
                                       (unsigned long long)seq, t, f->detail);
                free(f->detail);
                f->detail = d;
                f->what = CF_JFIND_ROLLED_BACK;
            }
        }
    }
    enum cf_status st = cf_iter_status(&it);
    cf_iter_close(&it);
    return st;
}

static int finding_cmp(const void *a, const void *b)
{
    const struct finding *x = a, *y = b;
    if (x->cf != y->cf)
        return x->cf < y->cf ? -1 : 1;
    size_t m = x->klen < y->klen ? x->klen : y->klen;
    int r = m > 0 ? memcmp(x->key, y->key, m) : 0;
    return r != 0 ? r : x->klen < y->klen ? -1 : x->klen > y->klen ? 1 : 0;
}

static void emit(struct check *c, void (*fn)(void *ctx, const struct cf_journal_finding *f), void *ctx)
{
    if (c->nf > 1)
        qsort(c->f, c->nf, sizeof *c->f, finding_cmp);
    for (size_t i = 0; i < c->nf; i++) {
        struct finding *f = &c->f[i];
        struct cf_journal_finding out = {
            .kind = f->cf == 0xff ? NULL : kind_of(f->cf, f->key, f->klen),
            .cf = f->cf == 0xff ? NULL : cf_cf_names[f->cf],
            .key = f->key,
            .klen = f->klen,
            .what = f->what,
            .detail = f->detail,
        };
        fn(ctx, &out);
    }
}

static void check_free(struct check *c)
{
    for (size_t i = 0; i < c->nf; i++) {
        free(c->f[i].key);
        free(c->f[i].detail);
    }
    free(c->f);
    for (size_t i = 0; i < c->nranges; i++) {
        free(c->ranges[i].lo);
        free(c->ranges[i].hi);
    }
    free(c->ranges);
    free(c->ats);
    cf_jmap_free(&c->window);
}

enum cf_status cf_journal_check(struct cf_store *s, struct cf_anchor *anchor,
                                void (*fn)(void *ctx, const struct cf_journal_finding *f), void *ctx,
                                struct cf_journal_report *out)
{
    struct check c = {.s = s};
    const struct cf_journal *j = &s->journal;
    enum cf_status st = CF_OK;
    memset(out, 0, sizeof *out);
    if (!j->on && !j->present) {
        struct cf_anchor_slot a;
        if (j->head_bad)
            journal_finding(&c, cf_xasprintf("its head does not open (altered, or not written with this master key)"));
        else if (anchor != NULL && cf_anchor_best(s, anchor, &a) > 0)
            journal_finding(&c, cf_xasprintf("the store has none, but the anchor %s recorded entry %llu: it was "
                                             "deleted, or data_dir was replaced",
                                             cf_anchor_path(anchor), (unsigned long long)a.seq));
        goto out; /* else: a store from before the journal, opened read-only (the next start adds one) */
    }
    out->present = true;
    out->seq = j->head.seq;
    out->first = j->head.first;
    out->keys = j->head.nkeys;
    char why[512];
    if (anchor != NULL && cf_anchor_verdict(s, anchor, why, sizeof why) != 0)
        journal_finding(&c, cf_xstrdup(why));
    if ((st = check_chain(&c, &out->entries)) != CF_OK)
        goto out;
    bool adds_up = true;
    uint64_t nkeys = 0;
    if ((st = check_index_sum(&c, &nkeys, &adds_up)) != CF_OK)
        goto out;
    out->keys = nkeys;
    for (int cf = 0; cf < CF_CF_COUNT && st == CF_OK; cf++)
        if (cf_journal_covers((enum cf_cf)cf))
            st = check_records(&c, (uint8_t)cf, &out->records);
    if (st == CF_OK)
        st = name_earlier(&c);
    if (st != CF_OK)
        goto out;
    /* A sum that does not add up, with no finding that explains it: an index entry and its record
     * were both put back to an earlier (authentic) pair, older than the kept entries. */
    if (!adds_up && !c.index_blamed)
        journal_finding(&c, cf_xasprintf("its index does not add up to its head (%llu entries, the head counts "
                                         "%llu): index entries were replaced by earlier ones, with their records, "
                                         "before the oldest entry kept (%llu)",
                                         (unsigned long long)nkeys, (unsigned long long)j->head.nkeys,
                                         (unsigned long long)j->head.first));
out:
    if (st == CF_OK) {
        out->findings = c.nf;
        emit(&c, fn, ctx);
    }
    check_free(&c);
    return st;
}
