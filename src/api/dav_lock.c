/*
 * dav_lock.c: WebDAV class 2 (RFC 4918 §6, §9.10, §9.11, §10.4): LOCK and UNLOCK, lock discovery,
 * and the check every write through /dav/ makes (cf_dav_write_ok_or_respond): the If header
 * (src/dav/davif.c parses it) and the locks that cover the target.
 *
 * Rules (docs/WEBDAV.md "Dead properties and locks in the store"):
 *   - write locks, exclusive or shared, Depth 0 or infinity (infinity covers a collection's members,
 *     found by walking the target's parents: at most CF_DAVLOCK_MAX_DEPTH of them);
 *   - tokens opaquelocktoken:<random v4 UUID>; Timeout Second-N clamped to 1 s … 1 h (default
 *     10 min, Infinite → 1 h); expired locks are ignored on read (storage/davprop.c);
 *   - a locked resource (or a member of a locked collection) refuses writes with 423 unless the If
 *     header names the lock's token and the request comes from the user who took it;
 *   - LOCK on an unmapped URL creates an empty file through the upload path (scan, quota, event),
 *     then locks it (201);
 *   - LOCK and UNLOCK are events of the provenance log (dav.lock, dav.unlock).
 * LOCKs are serialised by one mutex around "check conflicts, then store", on a worker.
 *
 * Thread: the handlers on the loop thread, the store writes on workers.
 */
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "audit.h"
#include "config.h"
#include "dav_lock.h"
#include "davif.h"

#define DAV_LOCK_DEFAULT_S 600u      /* Timeout when the client names none */
#define DAV_LOCK_MAX_S 3600u         /* the longest lock granted (Infinite too) */
#define DAV_LOCK_MIN_S 1u

static pthread_mutex_t lock_mutex = PTHREAD_MUTEX_INITIALIZER; /* LOCK: conflict check + store */

/* A set of locks (malloc'ed). */
struct lockvec {
    struct cf_davlock *v;
    size_t n, cap;
};

static void lockvec_free(struct lockvec *lv)
{
    cf_davlocks_free(lv->v, lv->n);
    memset(lv, 0, sizeof *lv);
}

/* Appends the locks that cover node id (storage/davprop.h: rooted at it, or depth infinity above)
 * to lv. Any thread. */
static enum cf_status cover_collect(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                    uint64_t now, struct lockvec *lv)
{
    struct cf_davlock *l;
    size_t n;
    enum cf_status st = cf_davlock_covering(s, tenant, id, now, &l, &n);
    if (st != CF_OK || n == 0)
        return st;
    if (lv->cap - lv->n < n) {
        lv->cap = lv->n + n;
        lv->v = cf_xrealloc(lv->v, (lv->cap + 1) * sizeof *lv->v);
    }
    memcpy(lv->v + lv->n, l, n * sizeof *l); /* moved */
    lv->n += n;
    free(l);
    return CF_OK;
}

/* ---- the If header ------------------------------------------------------------------------------ */

/* The request's If header, parsed (present false when there is none). */
struct dav_ifh {
    bool present;
    struct cf_davif h;
};

/* Parses the If header; 400 and false when malformed. */
static bool ifh_or_respond(struct cf_req *r, struct dav_ifh *ih)
{
    h2o_iovec_t h = cf_header(r, "if");
    ih->present = h.base != NULL;
    if (!ih->present)
        return true;
    if (cf_davif_parse(h.base, h.len, &ih->h) != CF_OK) {
        cf_respond_status(r, CF_EINVAL, "malformed If header (RFC 4918 §10.4)");
        return false;
    }
    return true;
}

/* Whether l's token is submitted in the If header (in any list, not negated) by its creator. */
static bool submitted(const struct cf_req *r, const struct dav_ifh *ih, const struct cf_davlock *l)
{
    if (!ih->present || !cf_id_equal(&l->creator, &r->who.user.id))
        return false;
    size_t tl = strlen(l->token);
    for (size_t i = 0; i < ih->h.nconds; i++) {
        const struct cf_davif_cond *c = &ih->h.conds[i];
        if (!c->etag && !c->negate && c->len == tl && CRYPTO_memcmp(c->s, l->token, tl) == 0)
            return true;
    }
    return false;
}

/* What an If header's conditions mean for the request's resource. */
struct if_ctx {
    struct cf_req *r;
    const char *href; /* the resource's canonical href, without a trailing slash */
    size_t hlen;
    const struct lockvec *cover;
    char etag[80];    /* "" when the resource does not exist */
};

/* The canonical href (no trailing slash) of a tag or URL naming a /dav/ resource of this server,
 * into b; false when it names something else. */
static bool canonical(struct cf_req *r, const char *u, size_t n, struct cf_davxml_buf *b)
{
    const char *path = u;
    size_t plen = n;
    if (n == 0 || u[0] != '/') {
        h2o_url_t url;
        if (h2o_url_parse(u, n, &url) != 0 ||
            !h2o_lcstris(url.authority.base, url.authority.len, r->req->authority.base, r->req->authority.len))
            return false;
        path = url.path.base;
        plen = url.path.len;
    }
    struct dav_path p;
    const char *why;
    if (plen == 4 && memcmp(path, "/dav", 4) == 0)
        plen = 5; /* "/dav" is "/dav/" */
    if (plen < 5 || memcmp(path, "/dav/", 5) != 0 || cf_dav_parse(&r->req->pool, path + 5, plen - 5, &p, &why) != CF_OK)
        return false;
    cf_dav_href(b, &p, false);
    return true;
}

static bool if_applies(void *ctx, const char *tag, size_t n)
{
    struct if_ctx *c = ctx;
    struct cf_davxml_buf b = {0};
    bool same = canonical(c->r, tag, n, &b) && b.len == c->hlen && memcmp(b.data, c->href, b.len) == 0;
    cf_davxml_buf_free(&b);
    return same;
}

static bool if_holds(void *ctx, const struct cf_davif_cond *cd)
{
    struct if_ctx *c = ctx;
    if (cd->etag)
        return c->etag[0] != '\0' && strlen(c->etag) == cd->len && memcmp(c->etag, cd->s, cd->len) == 0;
    for (size_t i = 0; i < c->cover->n; i++) {
        const char *t = c->cover->v[i].token;
        if (strlen(t) == cd->len && memcmp(t, cd->s, cd->len) == 0)
            return true;
    }
    return false;
}

/* The node whose covering locks stand for res: itself, or the folder a missing name would be in. */
static const struct cf_id *res_anchor(const struct dav_res *res)
{
    return res->kind == DAV_NODE ? &res->node.id : res->kind == DAV_MISSING ? &res->parent : NULL;
}

/* Evaluates the If header for (p, res) with the locks that cover it (cover). 412 and false when
 * it is false. */
static bool if_true_or_respond(struct cf_req *r, const struct dav_path *p, const struct dav_res *res,
                               const struct dav_ifh *ih, const struct lockvec *cover)
{
    if (!ih->present)
        return true;
    struct cf_davxml_buf href = {0};
    cf_dav_href(&href, p, false);
    struct if_ctx c = {.r = r, .href = href.data, .hlen = href.len, .cover = cover};
    if (res->kind == DAV_NODE)
        cf_dav_etag(&res->node, c.etag);
    struct cf_davif_eval ev = {if_applies, if_holds, &c};
    bool ok = cf_davif_true(&ih->h, &ev);
    cf_davxml_buf_free(&href);
    if (!ok)
        cf_respond_status(r, CF_EPRECOND, "the If header is false for this resource (RFC 4918 §10.4)");
    return ok;
}

/* 423 with <D:lock-token-submitted><D:href>root</D:href></D:lock-token-submitted>. */
static void respond_locked(struct cf_req *r, const struct cf_davlock *l)
{
    struct cf_davxml_buf b = {0};
    cf_davxml_error(&b, "lock-token-submitted", l->root);
    cf_dav_respond_xml(r, 423, &b);
}

/* Every exclusive lock in lv submitted, and one of the shared ones if there are any; else 423. */
static bool submitted_or_respond(struct cf_req *r, const struct dav_ifh *ih, const struct lockvec *lv)
{
    const struct cf_davlock *shared = NULL;
    bool shared_ok = false;
    for (size_t i = 0; i < lv->n; i++) {
        const struct cf_davlock *l = &lv->v[i];
        bool ok = submitted(r, ih, l);
        if (!l->shared && !ok) {
            respond_locked(r, l);
            return false;
        }
        if (l->shared) {
            shared = l;
            shared_ok |= ok;
        }
    }
    if (shared != NULL && !shared_ok) {
        respond_locked(r, shared);
        return false;
    }
    return true;
}

bool cf_dav_write_ok_or_respond(struct cf_req *r, const struct dav_path *p, const struct dav_res *res, unsigned what)
{
    struct dav_ifh ih;
    struct lockvec self = {0}, members = {0};
    struct cf_store *s = r->app->store;
    const struct cf_id *tenant = &r->who.user.tenant;
    uint64_t now = cf_now_ms();
    const struct cf_id *anchor = res_anchor(res);
    bool ok = false;
    enum cf_status st = CF_OK;
    if (!ifh_or_respond(r, &ih))
        return false;
    if (anchor != NULL && (ih.present || (what & (DAV_CHECK_SELF | DAV_CHECK_MEMBERSHIP)) != 0))
        st = cover_collect(s, tenant, anchor, now, &self);
    if (st == CF_OK && (what & DAV_CHECK_MEMBERSHIP) && res->kind == DAV_NODE && !cf_id_is_zero(&res->node.parent))
        st = cover_collect(s, tenant, &res->node.parent, now, &members);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        goto out;
    }
    if ((what & DAV_CHECK_IF) && !if_true_or_respond(r, p, res, &ih, &self))
        goto out;
    /* A missing resource's anchor is its parent: those locks are the membership's. */
    if (((what & DAV_CHECK_SELF) || (res->kind == DAV_MISSING && (what & DAV_CHECK_MEMBERSHIP))) &&
        !submitted_or_respond(r, &ih, &self))
        goto out;
    if ((what & DAV_CHECK_MEMBERSHIP) && !submitted_or_respond(r, &ih, &members))
        goto out;
    ok = true;
out:
    lockvec_free(&self);
    lockvec_free(&members);
    return ok;
}

/* The locks rooted at a node dropped on a worker (before a MOVE), then the continuation. */
struct drop_job {
    struct cf_async a;
    struct cf_id tenant, node;
    void (*then)(struct cf_req *r, void *ctx); /* NULL once called */
    void *ctx;
};

static void drop_run(struct cf_async *a)
{
    struct drop_job *j = (struct drop_job *)a;
    struct cf_davlock *l = NULL;
    size_t n = 0;
    if ((a->st = cf_davlock_list(a->app->store, &j->tenant, &j->node, 0, &l, &n)) != CF_OK)
        return;
    pthread_mutex_lock(&lock_mutex);
    for (size_t i = 0; i < n && a->st == CF_OK; i++)
        a->st = cf_davlock_delete(a->app->store, &j->tenant, &l[i]);
    pthread_mutex_unlock(&lock_mutex);
    cf_davlocks_free(l, n);
}

static void drop_reply(struct cf_req *r, struct cf_async *a)
{
    struct drop_job *j = (struct drop_job *)a;
    if (a->st != CF_OK)
        cf_respond_status(r, a->st, NULL);
    void (*then)(struct cf_req *, void *) = j->then;
    j->then = NULL;
    then(a->st == CF_OK ? r : NULL, j->ctx);
}

static void drop_free(struct cf_async *a)
{
    struct drop_job *j = (struct drop_job *)a;
    if (j->then != NULL) /* the client went away: the continuation only frees */
        j->then(NULL, j->ctx);
    free(j);
}

void cf_dav_locks_drop_start(struct cf_req *r, const struct cf_id *id, void (*then)(struct cf_req *r, void *ctx),
                             void *ctx)
{
    struct drop_job *j = cf_xcalloc(1, sizeof *j);
    j->a.run = drop_run;
    j->a.reply = drop_reply;
    j->a.free = drop_free;
    j->tenant = r->who.user.tenant;
    j->node = *id;
    j->then = then;
    j->ctx = ctx;
    cf_async_start(r, &j->a);
}

/* ---- lock discovery ------------------------------------------------------------------------------ */

static void activelock_of(const struct cf_davlock *l, uint64_t now, struct cf_davxml_activelock *a)
{
    memset(a, 0, sizeof *a);
    a->shared = l->shared;
    a->depth_infinity = l->infinity;
    a->owner = l->owner;
    a->owner_len = l->owner_len;
    uint64_t left = l->expires_at > now ? (l->expires_at - now + 999) / 1000 : 1;
    a->timeout_s = (unsigned long)(left > 0 ? left : 1);
    a->token = l->token;
    a->root = l->root;
}

void cf_dav_lockdiscovery(struct cf_store *s, const struct cf_id *tenant, struct cf_davxml_buf *b,
                          const struct cf_node *node)
{
    struct lockvec lv = {0};
    uint64_t now = cf_now_ms();
    if (cover_collect(s, tenant, &node->id, now, &lv) != CF_OK || lv.n == 0) {
        cf_davxml_ms_prop_text(b, "DAV:", "lockdiscovery", NULL, 0);
    } else {
        cf_davxml_ms_prop_open(b, "DAV:", "lockdiscovery");
        for (size_t i = 0; i < lv.n; i++) {
            struct cf_davxml_activelock a;
            activelock_of(&lv.v[i], now, &a);
            cf_davxml_activelock(b, &a);
        }
        cf_davxml_ms_prop_close(b, "DAV:", "lockdiscovery");
    }
    lockvec_free(&lv);
}

void cf_dav_supportedlock(struct cf_davxml_buf *b)
{
    static const char *const scopes[] = {"exclusive", "shared"};
    cf_davxml_ms_prop_open(b, "DAV:", "supportedlock");
    for (int i = 0; i < 2; i++) {
        cf_davxml_ms_prop_open(b, "DAV:", "lockentry");
        cf_davxml_ms_prop_open(b, "DAV:", "lockscope");
        cf_davxml_ms_prop_text(b, "DAV:", scopes[i], NULL, 0);
        cf_davxml_ms_prop_close(b, "DAV:", "lockscope");
        cf_davxml_ms_prop_open(b, "DAV:", "locktype");
        cf_davxml_ms_prop_text(b, "DAV:", "write", NULL, 0);
        cf_davxml_ms_prop_close(b, "DAV:", "locktype");
        cf_davxml_ms_prop_close(b, "DAV:", "lockentry");
    }
    cf_davxml_ms_prop_close(b, "DAV:", "supportedlock");
}

/* ---- LOCK ------------------------------------------------------------------------------------- */

/* Timeout (RFC 4918 §10.7): the first "Second-N" or "Infinite" of the list, clamped. */
static uint64_t timeout_of(struct cf_req *r)
{
    h2o_iovec_t h = cf_header(r, "timeout");
    const char *p = h.base, *end = h.base + h.len;
    while (p != NULL && p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *e = p;
        while (e < end && *e != ',' && *e != ' ' && *e != '\t')
            e++;
        uint64_t v;
        if ((size_t)(e - p) == 8 && memcmp(p, "Infinite", 8) == 0)
            return DAV_LOCK_MAX_S;
        if (e - p > 7 && memcmp(p, "Second-", 7) == 0 && cf_parse_u64(p + 7, (size_t)(e - p - 7), UINT64_MAX, &v) == CF_OK)
            return v < DAV_LOCK_MIN_S ? DAV_LOCK_MIN_S : v > DAV_LOCK_MAX_S ? DAV_LOCK_MAX_S : v;
        p = e;
    }
    return DAV_LOCK_DEFAULT_S;
}

/* A LOCK (new or refresh) on a worker: the conflict check and the store under lock_mutex. */
struct lock_job {
    struct cf_async a;
    struct cf_id tenant;
    struct cf_davlock lock; /* to store (new: fresh id and token; refresh: the lock with new times) */
    bool refresh;
    bool conflict;          /* set by run: another lock stands in the way (423) */
    int status;             /* 200, or 201 when the file was created for it */
    struct cf_event *ev;    /* dav.lock */
};

/* Whether a new lock conflicts (RFC 4918 §6.1) with the locks covering its node: an exclusive one,
 * or any when the new one is exclusive. */
static bool conflicts(const struct lockvec *lv, bool shared)
{
    for (size_t i = 0; i < lv->n; i++)
        if (!lv->v[i].shared || !shared)
            return true;
    return false;
}

/* Whether a depth-infinity lock on folder id would conflict with a lock below it (RFC 4918 §9.10.3:
 * the whole tree is locked or nothing): walks the members breadth-first, at most DAV_LOCK_MAX_WALK
 * of them (CF_ETOOBIG past it). Any thread. */
#define DAV_LOCK_MAX_WALK 10000u

static enum cf_status below_conflict(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                     bool shared, uint64_t now, bool *conflict)
{
    struct cf_id *todo = cf_xmalloc(sizeof *todo);
    size_t n = 1, cap = 1;
    enum cf_status st = CF_OK;
    todo[0] = *id;
    *conflict = false;
    for (size_t i = 0; i < n && st == CF_OK && !*conflict; i++) {
        uint8_t cursor[CF_CURSOR_LEN];
        bool more = true, have_cursor = false;
        while (more && st == CF_OK && !*conflict) {
            struct cf_node *items;
            size_t cnt;
            struct cf_id parent = todo[i];
            if ((st = cf_children_list(s, tenant, &parent, have_cursor ? cursor : NULL, 1000, &items, &cnt, cursor,
                                       &more)) != CF_OK)
                break;
            have_cursor = true;
            for (size_t k = 0; k < cnt; k++) {
                struct cf_davlock *l;
                size_t nl;
                if (st == CF_OK && !*conflict && (st = cf_davlock_list(s, tenant, &items[k].id, now, &l, &nl)) == CF_OK) {
                    for (size_t j = 0; j < nl; j++)
                        *conflict |= !shared || !l[j].shared;
                    cf_davlocks_free(l, nl);
                }
                if (st == CF_OK && items[k].type == CF_NODE_FOLDER) {
                    if (n == DAV_LOCK_MAX_WALK) {
                        st = CF_ETOOBIG;
                    } else {
                        if (n == cap) {
                            cap *= 2;
                            todo = cf_xrealloc(todo, cap * sizeof *todo);
                        }
                        todo[n++] = items[k].id;
                    }
                }
                cf_node_clear(&items[k]);
            }
            free(items);
        }
    }
    free(todo);
    return st;
}

static void lock_run(struct cf_async *a)
{
    struct lock_job *j = (struct lock_job *)a;
    struct cf_store *s = a->app->store;
    uint64_t now = cf_now_ms();
    j->lock.expires_at = now + j->lock.timeout_s * 1000;
    pthread_mutex_lock(&lock_mutex);
    if (!j->refresh) {
        struct lockvec lv = {0};
        j->lock.created_at = now;
        a->st = cover_collect(s, &j->tenant, &j->lock.node, now, &lv);
        j->conflict = a->st == CF_OK && conflicts(&lv, j->lock.shared);
        if (a->st == CF_OK && !j->conflict && j->lock.infinity)
            a->st = below_conflict(s, &j->tenant, &j->lock.node, j->lock.shared, now, &j->conflict);
        lockvec_free(&lv);
    }
    if (j->refresh) { /* still there? (an UNLOCK may have come first: never bring it back) */
        struct cf_davlock cur;
        a->st = cf_davlock_by_token(s, &j->tenant, j->lock.token, strlen(j->lock.token), now, &cur);
        if (a->st == CF_ENOTFOUND)
            a->st = CF_EPRECOND;
        cf_davlock_clear(&cur);
    }
    if (a->st == CF_OK && !j->conflict)
        a->st = cf_davlock_put(s, &j->tenant, &j->lock, now);
    pthread_mutex_unlock(&lock_mutex);
    if (a->st == CF_OK && !j->conflict && !j->refresh) {
        struct cf_node n;
        if (cf_node_get(s, &j->tenant, &j->lock.node, &n) == CF_OK) {
            cf_event_node(j->ev, &n);
            cf_node_clear(&n);
        }
        cf_event_detail(j->ev, "scope", json_string(j->lock.shared ? "shared" : "exclusive"));
        cf_event_detail(j->ev, "depth", json_string(j->lock.infinity ? "infinity" : "0"));
        cf_event_detail(j->ev, "timeout_s", json_integer((json_int_t)j->lock.timeout_s));
        a->st = cf_audit_submit_wait(j->ev, NULL);
        j->ev = NULL;
    }
}

static void lock_reply(struct cf_req *r, struct cf_async *a)
{
    struct lock_job *j = (struct lock_job *)a;
    if (a->st == CF_OK && j->conflict) { /* RFC 4918 §9.10.6 */
        struct cf_davxml_buf b = {0};
        cf_davxml_error(&b, "no-conflicting-lock", NULL);
        cf_dav_respond_xml(r, 423, &b);
        return;
    }
    if (a->st != CF_OK) {
        cf_respond_status(r, a->st, a->st == CF_ETOOBIG   ? "too many locks on this resource, or members below it"
                                    : a->st == CF_EPRECOND ? "the lock is gone"
                                                           : NULL);
        return;
    }
    char hdr[CF_DAVLOCK_TOKEN_MAX + 3];
    int n = snprintf(hdr, sizeof hdr, "<%s>", j->lock.token);
    if (!j->refresh) /* RFC 4918 §10.5: only in the answer to a LOCK that created a lock */
        cf_add_header(r, "lock-token", hdr, (size_t)n);
    struct cf_davxml_activelock al;
    activelock_of(&j->lock, cf_now_ms(), &al);
    struct cf_davxml_buf b = {0};
    cf_davxml_lock_answer(&b, &al);
    cf_dav_respond_xml(r, j->status, &b);
}

static void lock_free(struct cf_async *a)
{
    struct lock_job *j = (struct lock_job *)a;
    cf_davlock_clear(&j->lock);
    cf_event_free(j->ev);
    free(j);
}

static void lock_start(struct cf_req *r, struct lock_job *j)
{
    j->a.run = lock_run;
    j->a.reply = lock_reply;
    j->a.free = lock_free;
    j->tenant = r->who.user.tenant;
    if (!j->refresh) {
        j->ev = cf_event_new(&j->tenant, "dav.lock", "ok");
        cf_event_from_req(j->ev, r);
    }
    cf_async_start(r, &j->a);
}

/* A fresh opaquelocktoken:<v4 UUID> (RFC 4918 §6.5, RFC 4122 §4.4). */
static void new_token(char out[CF_DAVLOCK_TOKEN_MAX + 1])
{
    uint8_t u[16];
    cf_random(u, sizeof u);
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    char hex[33];
    cf_hex_encode(u, sizeof u, hex);
    snprintf(out, CF_DAVLOCK_TOKEN_MAX + 1, "opaquelocktoken:%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
             hex + 16, hex + 20);
}

/* A lock-null LOCK: the empty file exists now; lock it. */
static void lock_null_made(struct cf_req *r, void *ctx, const struct cf_node *node)
{
    struct lock_job *j = ctx;
    if (r == NULL || node == NULL) { /* refused (answered) or nobody to answer */
        lock_free(&j->a);
        return;
    }
    j->lock.node = node->id;
    lock_start(r, j);
}

/* The refresh of a lock named in the If header (RFC 4918 §9.10.2): 412 when none is. */
static void lock_refresh(struct cf_req *r, const struct dav_res *res, const struct dav_ifh *ih)
{
    struct lockvec lv = {0};
    if (res->kind != DAV_NODE) {
        cf_respond_status(r, CF_EPRECOND, "no lock to refresh here");
        return;
    }
    enum cf_status st = cover_collect(r->app->store, &r->who.user.tenant, &res->node.id, cf_now_ms(), &lv);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    for (size_t i = 0; i < lv.n; i++)
        if (submitted(r, ih, &lv.v[i])) {
            struct lock_job *j = cf_xcalloc(1, sizeof *j);
            j->lock = lv.v[i]; /* moved */
            memset(&lv.v[i], 0, sizeof lv.v[i]);
            j->lock.timeout_s = timeout_of(r);
            j->refresh = true;
            j->status = 200;
            lockvec_free(&lv);
            lock_start(r, j);
            return;
        }
    lockvec_free(&lv);
    cf_respond_status(r, CF_EPRECOND, "the If header names no lock of yours on this resource");
}

void cf_dav_lock(struct cf_req *r, const struct dav_path *p, struct dav_res *res)
{
    struct dav_ifh ih;
    if (res->kind == DAV_ROOT || res->kind == DAV_LISTING) {
        cf_respond_status(r, CF_EDENIED, "this collection cannot be locked");
        return;
    }
    if (res->kind == DAV_NOPARENT) {
        cf_respond_status(r, CF_EEXIST, "the parent collection does not exist");
        return;
    }
    h2o_iovec_t depth = cf_header(r, "depth");
    bool infinity = true;
    if (depth.base != NULL && h2o_memis(depth.base, depth.len, H2O_STRLIT("0")))
        infinity = false;
    else if (depth.base != NULL && !h2o_memis(depth.base, depth.len, H2O_STRLIT("infinity"))) {
        cf_respond_status(r, CF_EINVAL, "LOCK takes Depth 0 or infinity (RFC 4918 §9.10.3)");
        return;
    }
    if (!ifh_or_respond(r, &ih))
        return;
    /* Writing the lock is an edit of the resource (or of the folder a lock-null file goes in). */
    enum cf_level level;
    if (res->kind == DAV_NODE) {
        struct cf_node n;
        if (!cf_acl_node_or_respond(r, &res->node.id, CF_LEVEL_EDIT, &n, &level))
            return;
        cf_node_clear(&n);
    } else if (!cf_acl_folder_or_respond(r, &res->parent, CF_LEVEL_EDIT, &level)) {
        return;
    }
    struct cf_davxml_lockinfo li;
    enum cf_davxml_err xe;
    size_t blen;
    const char *body = cf_dav_body(r, &blen);
    if (cf_davxml_parse_lockinfo(body, blen, r->app->cfg->limits.max_json_bytes, &li, &xe) != CF_OK) {
        cf_dav_refuse_body(r, xe);
        return;
    }
    if (li.refresh) {
        cf_davxml_lockinfo_clear(&li);
        if (!ih.present)
            cf_respond_status(r, CF_EINVAL, "a LOCK without a body refreshes the lock named in the If header");
        else
            lock_refresh(r, res, &ih);
        return;
    }
    /* The If header, when there is one, must hold (a new lock may be asked for conditionally). */
    struct lockvec cover = {0};
    const struct cf_id *anchor = res_anchor(res);
    enum cf_status st = cover_collect(r->app->store, &r->who.user.tenant, anchor, cf_now_ms(), &cover);
    bool ok = st == CF_OK && if_true_or_respond(r, p, res, &ih, &cover);
    if (st != CF_OK)
        cf_respond_status(r, st, NULL);
    /* A lock-null resource adds a member: the parent's locks must be submitted (RFC 4918 §7.3). */
    if (ok && res->kind == DAV_MISSING)
        ok = submitted_or_respond(r, &ih, &cover);
    lockvec_free(&cover);
    if (!ok) {
        cf_davxml_lockinfo_clear(&li);
        return;
    }
    struct lock_job *j = cf_xcalloc(1, sizeof *j);
    cf_id_new(&j->lock.id);
    new_token(j->lock.token);
    j->lock.shared = li.shared;
    j->lock.infinity = infinity && (res->kind != DAV_NODE || res->node.type == CF_NODE_FOLDER);
    j->lock.owner = li.owner; /* taken over */
    j->lock.owner_len = li.owner_len;
    li.owner = NULL;
    cf_davxml_lockinfo_clear(&li);
    j->lock.creator = r->who.user.id;
    j->lock.timeout_s = timeout_of(r);
    struct cf_davxml_buf href = {0};
    cf_dav_href(&href, p, res->kind == DAV_NODE && res->node.type == CF_NODE_FOLDER);
    j->lock.root = href.data; /* taken over */
    if (res->kind == DAV_NODE) {
        j->lock.node = res->node.id;
        j->status = 200;
        lock_start(r, j);
        return;
    }
    /* RFC 4918 §9.10.4: an unmapped URL becomes an empty resource, through the upload path. */
    j->status = 201;
    cf_upload_start_then(r, &res->parent, res->name, res->name_len, CF_CONFLICT_FAIL, cf_xmalloc(1), 0,
                         lock_null_made, j);
}

/* ---- UNLOCK ----------------------------------------------------------------------------------- */

struct unlock_job {
    struct cf_async a;
    struct cf_id tenant;
    struct cf_davlock lock;
    struct cf_event *ev; /* dav.unlock */
};

static void unlock_run(struct cf_async *a)
{
    struct unlock_job *j = (struct unlock_job *)a;
    pthread_mutex_lock(&lock_mutex);
    a->st = cf_davlock_delete(a->app->store, &j->tenant, &j->lock);
    pthread_mutex_unlock(&lock_mutex);
    if (a->st == CF_OK) {
        struct cf_node n;
        if (cf_node_get(a->app->store, &j->tenant, &j->lock.node, &n) == CF_OK) {
            cf_event_node(j->ev, &n);
            cf_node_clear(&n);
        }
        a->st = cf_audit_submit_wait(j->ev, NULL);
        j->ev = NULL;
    }
}

static void unlock_reply(struct cf_req *r, struct cf_async *a)
{
    if (a->st != CF_OK)
        cf_respond_status(r, a->st, NULL);
    else
        cf_respond_empty(r, 204);
}

static void unlock_free(struct cf_async *a)
{
    struct unlock_job *j = (struct unlock_job *)a;
    cf_davlock_clear(&j->lock);
    cf_event_free(j->ev);
    free(j);
}

/* 409 with <D:lock-token-matches-request-uri> (RFC 4918 §9.11.1). */
static void respond_no_such_lock(struct cf_req *r)
{
    struct cf_davxml_buf b = {0};
    cf_davxml_error(&b, "lock-token-matches-request-uri", NULL);
    cf_dav_respond_xml(r, 409, &b);
}

void cf_dav_unlock(struct cf_req *r, const struct dav_path *p, struct dav_res *res)
{
    (void)p;
    h2o_iovec_t h = cf_header(r, "lock-token");
    if (h.base == NULL || h.len < 3 || h.base[0] != '<' || h.base[h.len - 1] != '>') {
        cf_respond_status(r, CF_EINVAL, "UNLOCK needs a Lock-Token header: <token> (RFC 4918 §10.5)");
        return;
    }
    if (res->kind != DAV_NODE) {
        cf_respond_status(r, res->kind == DAV_ROOT || res->kind == DAV_LISTING ? CF_EDENIED : CF_ENOTFOUND, NULL);
        return;
    }
    struct cf_node n;
    enum cf_level level;
    if (!cf_acl_node_or_respond(r, &res->node.id, CF_LEVEL_EDIT, &n, &level))
        return;
    cf_node_clear(&n);
    const char *tok = h.base + 1;
    size_t tl = h.len - 2;
    struct lockvec lv = {0};
    enum cf_status st = cover_collect(r->app->store, &r->who.user.tenant, &res->node.id, cf_now_ms(), &lv);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    for (size_t i = 0; i < lv.n; i++) {
        struct cf_davlock *l = &lv.v[i];
        if (strlen(l->token) != tl || CRYPTO_memcmp(l->token, tok, tl) != 0)
            continue;
        /* Only the user who took a lock may remove it (the token alone is not enough: lock
         * discovery shows it to everyone who may see the resource). */
        if (!cf_id_equal(&l->creator, &r->who.user.id)) {
            cf_respond_status(r, CF_EDENIED, "this lock was taken by another user");
            lockvec_free(&lv);
            return;
        }
        struct unlock_job *j = cf_xcalloc(1, sizeof *j);
        j->a.run = unlock_run;
        j->a.reply = unlock_reply;
        j->a.free = unlock_free;
        j->tenant = r->who.user.tenant;
        j->lock = *l; /* moved */
        memset(l, 0, sizeof *l);
        j->ev = cf_event_new(&j->tenant, "dav.unlock", "ok");
        cf_event_from_req(j->ev, r);
        lockvec_free(&lv);
        cf_async_start(r, &j->a);
        return;
    }
    lockvec_free(&lv);
    respond_no_such_lock(r);
}
