/*
 * audit.c: provenance events (see audit.h): building them, the writer thread that group-commits
 * them, and bulk-download accounting (retention lives in retention.c).
 *
 * The writer takes every queued event at once (up to WRITE_BATCH), appends them in one synchronous
 * RocksDB batch, and wakes the threads waiting for them: N concurrent downloads cost one fsync, not
 * N. A batch that nobody waits on (a transfer's end record, an event after its change committed)
 * lingers up to LINGER_US for an event someone waits on, then both go in one fsync: a client
 * downloading file after file sends its next request as the last one's end record is queued, and
 * the next "began" then shares that record's fsync instead of waiting behind it (measured: two
 * fsyncs per download before, bench (8)). Nothing that anyone waits on is delayed: such an event
 * wakes the lingering writer at once; what lingers is only later by at most LINGER_US, and just as
 * durable.
 */
#include "audit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "validate.h"
#include "webhook.h"

#define WRITE_BATCH 1024
#define LINGER_US 1000 /* how long a batch nobody waits on waits for one somebody does */
#define BULK_SLOTS 4096 /* actors tracked at once for bulk-download alerts */
#define BULK_PROBES 16  /* slots an actor may occupy (open addressing) */

struct pending {
    struct cf_event *e;
    struct pending *next;
    void (*cb)(void *arg, enum cf_status st, uint64_t seq); /* called once durable (or failed) */
    void *cb_arg;
    bool wait;             /* a thread waits on done */
    bool done;
    enum cf_status st;
    uint64_t seq;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_cond = PTHREAD_COND_INITIALIZER; /* the writer: something queued */
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER; /* waiters: a batch finished */
static struct pending *head, *tail;
static bool stopping, running;
static bool writer_idle; /* the writer waits on work_cond: only then is a wake-up needed */
static bool writer_lingering; /* ... for an event someone waits on (LINGER_US): only such a one wakes it */
static pthread_t writer;
static struct cf_store *store;
static bool webhook_allow_private; /* audit.webhook_allow_private, from cf_audit_start */
static atomic_size_t queued; /* events enqueued and not yet written (cf_audit_queue_depth) */

/* ---- events -------------------------------------------------------------------------------------- */

struct cf_event *cf_event_new(const struct cf_id *tenant, const char *action, const char *result)
{
    struct cf_event *e = cf_xcalloc(1, sizeof *e);
    e->tenant = *tenant;
    e->action = action;
    e->result = result;
    e->actor_type = CF_ACTOR_SYSTEM;
    e->at = cf_now_ms();
    e->detail = json_object();
    return e;
}

void cf_event_free(struct cf_event *e)
{
    if (e == NULL)
        return;
    free(e->actor_name);
    free(e->node_name);
    free(e->node_path);
    free(e->space);
    free(e->user_agent);
    json_decref(e->detail);
    free(e);
}

void cf_event_user(struct cf_event *e, const struct cf_id *id, const char *name)
{
    e->actor_type = CF_ACTOR_USER;
    e->actor = *id;
    free(e->actor_name);
    e->actor_name = name != NULL ? cf_xstrdup(name) : NULL;
}

void cf_event_from_req(struct cf_event *e, const struct cf_req *r)
{
    if (r->who.authenticated)
        cf_event_user(e, &r->who.user.id, r->who.user.username);
    else
        e->actor_type = CF_ACTOR_ANONYMOUS;
    snprintf(e->ip, sizeof e->ip, "%s", r->ip);
    ssize_t i = h2o_find_header(&r->req->headers, H2O_TOKEN_USER_AGENT, -1);
    if (i != -1) {
        h2o_iovec_t ua = r->req->headers.entries[i].value;
        e->user_agent = cf_text_clean(ua.base, ua.len, 512);
    }
}

void cf_event_node(struct cf_event *e, const struct cf_node *n)
{
    struct cf_node cur = {0};
    e->has_node = true;
    e->node = n->id;
    free(e->node_name);
    e->node_name = cf_xstrdup(n->name);
    /* The path at this moment: walk to the space root collecting names (bounded like every walk). */
    char *acc = cf_xstrdup(cf_id_is_zero(&n->parent) ? "" : n->name);
    enum cf_space_kind kind = n->root_kind;
    struct cf_id root_owner = n->owner, walk = n->parent;
    for (int depth = 0; !cf_id_is_zero(&walk) && depth < 1024; depth++) {
        cf_node_clear(&cur);
        if (cf_node_get(store, &e->tenant, &walk, &cur) != CF_OK)
            break;
        kind = cur.root_kind;
        root_owner = cur.owner;
        if (!cf_id_is_zero(&cur.parent)) {
            char *x = cf_xasprintf("%s/%s", cur.name, acc);
            free(acc);
            acc = x;
        }
        walk = cur.parent;
    }
    cf_node_clear(&cur);
    free(e->node_path);
    e->node_path = cf_xasprintf("/%s", acc);
    free(acc);
    free(e->space);
    struct cf_user u;
    if (kind == CF_SPACE_TENANT)
        e->space = cf_xstrdup("tenant");
    else if (kind == CF_SPACE_PRIVATE && cf_user_get(store, &e->tenant, &root_owner, &u) == CF_OK) {
        e->space = cf_xasprintf("private:%s", u.username);
        cf_user_clear(&u);
    } else
        e->space = cf_xstrdup("private");
}

void cf_event_detail(struct cf_event *e, const char *key, json_t *value)
{
    json_object_set_new(e->detail, key, value != NULL ? value : json_null());
}

static const char *actor_type_name(enum cf_actor_type t)
{
    switch (t) {
    case CF_ACTOR_USER:
        return "user";
    case CF_ACTOR_SHARE:
        return "share";
    case CF_ACTOR_ANONYMOUS:
        return "anonymous";
    default:
        return "system";
    }
}

/* The stored form of an event: SPEC §5's event without seq and hash (those come from the chain). */
static char *event_json(const struct cf_event *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "at", cf_json_time(e->at));
    json_object_set_new(o, "tenant", cf_json_id(&e->tenant));
    json_object_set_new(o, "action", json_string(e->action));
    json_object_set_new(o, "actor", json_pack("{s:s, s:o, s:s?}", "type", actor_type_name(e->actor_type), "id",
                                              cf_json_id(&e->actor), "name", e->actor_name));
    if (e->has_node)
        json_object_set_new(o, "node", json_pack("{s:o, s:s?, s:s?, s:s?}", "id", cf_json_id(&e->node), "name",
                                                 e->node_name, "path", e->node_path, "space", e->space));
    else
        json_object_set_new(o, "node", json_null());
    json_object_set_new(o, "share", e->has_share ? cf_json_id(&e->share) : json_null());
    json_object_set_new(o, "ip", e->ip[0] != '\0' ? json_string(e->ip) : json_null());
    json_object_set_new(o, "user_agent", e->user_agent != NULL ? json_string(e->user_agent) : json_null());
    json_object_set_new(o, "result", json_string(e->result));
    json_object_set_new(o, "detail", json_incref(e->detail));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* ---- the writer ---------------------------------------------------------------------------------- */

/* An alert goes to the tenant's webhook, if it has one. */
static void notify(const struct cf_id *tenant, const char *text, uint64_t seq)
{
    struct cf_tenant t;
    if (cf_tenant_get(store, tenant, &t) != CF_OK)
        return;
    if (t.policy.webhook_url != NULL) {
        json_t *o = json_loads(text, 0, NULL);
        if (o != NULL) {
            json_object_set_new(o, "seq", json_integer((json_int_t)seq));
            char *body = json_dumps(o, JSON_COMPACT);
            cf_webhook_send(t.policy.webhook_url, t.policy.webhook_ca, body, webhook_allow_private);
            free(body);
            json_decref(o);
        }
    }
    cf_tenant_clear(&t);
}

static void write_batch(struct pending **items, size_t n)
{
    struct cf_audit_rec *recs = cf_xcalloc(n, sizeof *recs);
    uint64_t *seqs = cf_xcalloc(n, sizeof *seqs);
    char **texts = cf_xcalloc(n, sizeof *texts);
    for (size_t i = 0; i < n; i++) {
        struct cf_event *e = items[i]->e;
        texts[i] = event_json(e);
        recs[i].tenant = e->tenant;
        recs[i].json = texts[i];
        recs[i].len = strlen(texts[i]);
        recs[i].has_node = e->has_node;
        recs[i].node = e->node;
        if (e->actor_type == CF_ACTOR_USER || e->actor_type == CF_ACTOR_SHARE) {
            recs[i].actor_kind = (uint8_t)e->actor_type;
            recs[i].actor = e->actor_type == CF_ACTOR_SHARE && e->has_share ? e->share : e->actor;
        }
        recs[i].began = e->began;
        recs[i].at = e->at;
    }
    enum cf_status st = cf_audit_append(store, recs, n, seqs);
    /* One more try: a refused batch changed nothing (the heads are restored), and the operation
     * waiting on these events (an upload already committed) should not fail for a passing refusal.
     * After a real I/O error the store refuses everything and the server is stopping (fail-stop). */
    if (st == CF_EIO)
        st = cf_audit_append(store, recs, n, seqs);
    if (st != CF_OK)
        cf_log_error("provenance: could not write %zu event(s): %s", n, cf_status_name(st));
    else
        cf_metrics_audit_commit(n);
    for (size_t i = 0; i < n && st == CF_OK; i++)
        if (strncmp(items[i]->e->action, "alert.", 6) == 0)
            notify(&recs[i].tenant, texts[i], seqs[i]);
    for (size_t i = 0; i < n; i++) {
        cf_event_free(items[i]->e);
        items[i]->e = NULL;
        if (items[i]->cb != NULL) {
            items[i]->cb(items[i]->cb_arg, st, st == CF_OK ? seqs[i] : 0);
            free(items[i]);
            items[i] = NULL;
        }
    }
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n; i++) {
        if (items[i] == NULL)
            continue;
        items[i]->st = st;
        items[i]->seq = st == CF_OK ? seqs[i] : 0;
        items[i]->done = true;
        if (!items[i]->wait)
            free(items[i]); /* nobody waits: the writer owns it */
    }
    pthread_cond_broadcast(&done_cond);
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(recs);
    free(seqs);
}

static bool awaited(const struct pending *p)
{
    return p->wait || p->cb != NULL;
}

/* Moves queued events into items (up to WRITE_BATCH); true if one of them is awaited. Lock held. */
static bool take(struct pending **items, size_t *n)
{
    bool any = false;
    while (head != NULL && *n < WRITE_BATCH) {
        any = any || awaited(head);
        items[(*n)++] = head;
        head = head->next;
    }
    if (head == NULL)
        tail = NULL;
    return any;
}

static void *writer_main(void *arg)
{
    (void)arg;
    struct pending **items = cf_xmalloc(WRITE_BATCH * sizeof *items);
    for (;;) {
        pthread_mutex_lock(&lock);
        while (head == NULL && !stopping) {
            writer_idle = true;
            pthread_cond_wait(&work_cond, &lock);
            writer_idle = false;
        }
        size_t n = 0;
        if (!take(items, &n) && !stopping && n < WRITE_BATCH) {
            /* Nobody waits on these: linger once for an event somebody does (enqueue wakes us). */
            struct timespec until;
            cf_deadline(CLOCK_MONOTONIC, LINGER_US * 1000u, &until);
            writer_lingering = true;
            while (head == NULL && !stopping && pthread_cond_timedwait(&work_cond, &lock, &until) == 0)
                ;
            writer_lingering = false;
            take(items, &n);
        }
        bool stop = stopping && n == 0;
        pthread_mutex_unlock(&lock);
        if (n > 0) {
            write_batch(items, n);
            atomic_fetch_sub_explicit(&queued, n, memory_order_relaxed);
        }
        if (stop)
            break;
    }
    free(items);
    return NULL;
}

void cf_audit_start(const struct cf_config *cfg, struct cf_store *s)
{
    /* The writer's lingering deadline is on the monotonic clock: a wall-clock step cannot stretch it. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_destroy(&work_cond);
    pthread_cond_init(&work_cond, &ca);
    pthread_condattr_destroy(&ca);
    store = s;
    webhook_allow_private = cfg->audit.webhook_allow_private;
    stopping = false;
    running = true;
    if (pthread_create(&writer, NULL, writer_main, NULL) != 0) {
        cf_log_error("cannot start the provenance writer");
        abort();
    }
}

void cf_audit_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&lock);
    stopping = true;
    pthread_cond_signal(&work_cond);
    pthread_mutex_unlock(&lock);
    pthread_join(writer, NULL);
    running = false;
}

static struct pending *enqueue(struct cf_event *e, bool wait, void (*cb)(void *, enum cf_status, uint64_t),
                               void *cb_arg)
{
    struct pending *p = cf_xcalloc(1, sizeof *p);
    p->e = e;
    p->wait = wait;
    p->cb = cb;
    p->cb_arg = cb_arg;
    pthread_mutex_lock(&lock);
    if (!running || stopping) {
        pthread_mutex_unlock(&lock);
        cf_log_error("provenance: an event arrived after the writer stopped (%s)", e->action);
        cf_event_free(e);
        free(p);
        return NULL;
    }
    if (tail == NULL)
        head = p;
    else
        tail->next = p;
    tail = p;
    atomic_fetch_add_explicit(&queued, 1, memory_order_relaxed);
    if (writer_idle || (writer_lingering && awaited(p)))
        pthread_cond_signal(&work_cond);
    pthread_mutex_unlock(&lock);
    return p;
}

void cf_audit_submit(struct cf_event *e)
{
    enqueue(e, false, NULL, NULL);
}

void cf_audit_submit_cb(struct cf_event *e, void (*cb)(void *arg, enum cf_status st, uint64_t seq), void *arg)
{
    if (enqueue(e, false, cb, arg) == NULL)
        cb(arg, CF_EUNAVAIL, 0);
}

enum cf_status cf_audit_submit_wait(struct cf_event *e, uint64_t *seq)
{
    struct pending *p = enqueue(e, true, NULL, NULL);
    if (p == NULL)
        return CF_EUNAVAIL;
    pthread_mutex_lock(&lock);
    while (!p->done)
        pthread_cond_wait(&done_cond, &lock);
    pthread_mutex_unlock(&lock);
    enum cf_status st = p->st;
    if (seq != NULL)
        *seq = p->seq;
    free(p);
    return st;
}

size_t cf_audit_queue_depth(void)
{
    return atomic_load_explicit(&queued, memory_order_relaxed);
}

/* ---- bulk downloads ------------------------------------------------------------------------------ */

/* A fixed table of recent actors; an actor's window restarts when it expires. */
struct bulk_slot {
    struct cf_id tenant;
    uint8_t type;
    struct cf_id actor;
    char ip[64];              /* anonymous/share actors are told apart by address too */
    uint64_t window_start;    /* ms */
    uint64_t files, bytes;
    bool alerted;             /* one alert per window */
    bool used;
};

static struct bulk_slot bulk[BULK_SLOTS];
static pthread_mutex_t bulk_lock = PTHREAD_MUTEX_INITIALIZER;

/* One node's own window per actor (a store without shared state, or a cluster whose database did not
 * answer). Always true. */
static bool bulk_local(const struct cf_id *tenant, enum cf_actor_type type, const struct cf_id *actor, const char *ip,
                       const struct cf_policy *p, uint64_t window, uint64_t nfiles, uint64_t bytes, bool *fire,
                       uint64_t *files, uint64_t *total)
{
    uint64_t now = cf_now_ms();
    /* The actor's slot is found by hashing into a short probe sequence (not by scanning the whole
     * table on every download); when the sequence is full, its oldest window gives way. */
    uint64_t hv = 1469598103934665603ull;
    const uint8_t *parts[2] = {tenant->b, actor->b};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < CF_ID_LEN; i++)
            hv = (hv ^ parts[k][i]) * 1099511628211ull;
    for (const char *c = type == CF_ACTOR_USER ? "" : ip; *c != '\0'; c++)
        hv = (hv ^ (uint8_t)*c) * 1099511628211ull;
    hv ^= type;
    pthread_mutex_lock(&bulk_lock);
    struct bulk_slot *slot = NULL, *oldest = &bulk[hv % BULK_SLOTS];
    for (size_t probe = 0; probe < BULK_PROBES; probe++) {
        struct bulk_slot *b = &bulk[(hv + probe) % BULK_SLOTS];
        if (b->used && b->type == type && cf_id_equal(&b->tenant, tenant) && cf_id_equal(&b->actor, actor) &&
            (type == CF_ACTOR_USER || strcmp(b->ip, ip) == 0)) {
            slot = b;
            break;
        }
        if (!b->used || b->window_start < oldest->window_start)
            oldest = b;
    }
    if (slot == NULL) {
        slot = oldest;
        memset(slot, 0, sizeof *slot);
        slot->used = true;
        slot->tenant = *tenant;
        slot->type = (uint8_t)type;
        slot->actor = *actor;
        snprintf(slot->ip, sizeof slot->ip, "%s", ip);
        slot->window_start = now;
    }
    if (now - slot->window_start >= window) {
        slot->window_start = now;
        slot->files = slot->bytes = 0;
        slot->alerted = false;
    }
    slot->files += nfiles;
    slot->bytes += bytes;
    /* The alert fires when a threshold is reached within the window (not before), once per window. */
    *fire = !slot->alerted && ((p->bulk_files != 0 && slot->files >= p->bulk_files) ||
                                (p->bulk_bytes != 0 && slot->bytes >= p->bulk_bytes));
    *files = slot->files;
    *total = slot->bytes;
    if (*fire)
        slot->alerted = true;
    pthread_mutex_unlock(&bulk_lock);
    return true;
}

/* In a cluster (storage.h cf_coord_window): the actor's window is one across all nodes, so downloads
 * spread over several nodes add up, and exactly one node fires the alert. False if the store has no
 * shared state or could not answer (the node then counts on its own: bulk_local). */
static bool bulk_shared(const struct cf_id *tenant, enum cf_actor_type type, const struct cf_id *actor, const char *ip,
                        const struct cf_policy *p, uint64_t nfiles, uint64_t bytes, bool *fire, uint64_t *files,
                        uint64_t *total)
{
    if (!cf_coord_shared(store))
        return false;
    uint8_t key[CF_ID_LEN + 1 + CF_ID_LEN + 64];
    size_t kl = 0;
    memcpy(key, tenant->b, CF_ID_LEN);
    key[CF_ID_LEN] = (uint8_t)type;
    memcpy(key + CF_ID_LEN + 1, actor->b, CF_ID_LEN);
    kl = 2 * CF_ID_LEN + 1;
    if (type != CF_ACTOR_USER) { /* anonymous and share actors are told apart by address too */
        size_t il = strnlen(ip, 63);
        memcpy(key + kl, ip, il);
        kl += il;
    }
    struct cf_coord_window w = {.window_ms = p->bulk_window_s * 1000, .files = nfiles, .bytes = bytes,
                                .files_max = p->bulk_files, .bytes_max = p->bulk_bytes};
    enum cf_status st = cf_coord_window(store, "bulk-download", key, kl, &w);
    if (st != CF_OK) {
        cf_log_warn("bulk-download accounting: the shared window is unavailable (%s): this node counts alone",
                    cf_status_name(st));
        return false;
    }
    *fire = w.fire;
    *files = w.files;
    *total = w.bytes;
    return true;
}

void cf_audit_count_download(const struct cf_id *tenant, enum cf_actor_type type, const struct cf_id *actor,
                             const char *ip, uint64_t nfiles, uint64_t bytes)
{
    struct cf_tenant t;
    if (cf_tenant_get(store, tenant, &t) != CF_OK)
        return;
    struct cf_policy p = t.policy;
    uint64_t window = p.bulk_window_s * 1000;
    bool enabled = p.bulk_window_s != 0 && (p.bulk_files != 0 || p.bulk_bytes != 0);
    cf_tenant_clear(&t);
    if (!enabled)
        return;
    bool fire = false;
    uint64_t files = 0, total = 0;
    if (!bulk_shared(tenant, type, actor, ip, &p, nfiles, bytes, &fire, &files, &total) &&
        !bulk_local(tenant, type, actor, ip, &p, window, nfiles, bytes, &fire, &files, &total))
        return;
    if (!fire)
        return;
    struct cf_event *e = cf_event_new(tenant, "alert.bulk_download", "ok");
    e->actor_type = type;
    if (type == CF_ACTOR_SHARE) {
        e->has_share = true;
        e->share = *actor;
        e->actor = *actor;
    } else {
        e->actor = *actor;
        struct cf_user u;
        if (type == CF_ACTOR_USER && cf_user_get(store, tenant, actor, &u) == CF_OK) {
            e->actor_name = cf_xstrdup(u.username);
            cf_user_clear(&u);
        }
    }
    snprintf(e->ip, sizeof e->ip, "%s", ip);
    cf_event_detail(e, "files", json_integer((json_int_t)files));
    cf_event_detail(e, "bytes", json_integer((json_int_t)total));
    cf_event_detail(e, "window_s", json_integer((json_int_t)p.bulk_window_s));
    cf_event_detail(e, "threshold_files", json_integer((json_int_t)p.bulk_files));
    cf_event_detail(e, "threshold_bytes", json_integer((json_int_t)p.bulk_bytes));
    cf_audit_submit(e);
}
