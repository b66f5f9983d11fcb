/*
 * zip.c: a folder as one streamed ZIP archive: GET /api/v1/folders/{id}/zip (members, download
 * level on the folder) and, through share.c, GET /s/{token}/zip (folder links that allow download).
 *
 * Steps. On the loop: authorise (the caller). On a worker (cf_async): walk the folder breadth-first
 * (live children only: trashed nodes have left the children index; archived spaces are skipped;
 * members: every node below at their level, which only grows down the tree, so nothing below a
 * downloadable folder is view-only, and a level below download would be skipped as invisible), at
 * most limits.max_zip_entries entries, the folder itself included (else 413 naming the limit); lay the archive out (src/core/zipw.h:
 * stored entries, so its length is known and sent as Content-Length); for a link draw every file's
 * bytes from the link's budget (per file, as /s/{token}/files/{id}/content does: a folder link's
 * max_downloads is "each file that many times"; the first file whose budget cannot pay refuses the
 * whole archive with the budget's error and gives back what was drawn); then one provenance event
 * per file (the single download's action, "file.download" or "share.download", phase "began",
 * detail "via": "zip" and the archive's folder), all durable before the first byte.
 *
 * Streaming. Two buffers from the download pool (src/core/bufpool.h); a worker fills one (headers,
 * then each file's chunks decrypted straight into it with the CRC-32 running over them, then its
 * data descriptor; at the end the central directory and the end records) while h2o sends the other.
 * No plaintext goes anywhere but these buffers, which are wiped before they go back. The first
 * buffer is filled before the status line: a file whose first chunk fails answers 500. A chunk that
 * fails later (or a version purged meanwhile) cuts the stream (h2o resets it): the client holds a
 * broken archive, never wrong bytes, and the end events say which files were not completed.
 *
 * The end: when the response is over, one "end" event per file (phase "end", bytes_sent of that
 * file, completed), and for a link the bytes of files not sent go back to their budgets (a file cut
 * in the middle gets resume credit for what was sent, as a single download does).
 *
 * Owns: the archive stream. May touch: the reader (storage.h), the pool (bufpool.h), provenance
 * (audit.h), link budgets (storage.h), the writer (zipw.h).
 */
#include "zip.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "bufpool.h"
#include "config.h"
#include "files.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "validate.h"
#include "work.h"
#include "zipw.h"

/* One entry of the archive. */
struct item {
    struct cf_zip_entry z;   /* z.name points at path */
    char *path;
    struct cf_id id;         /* files: the node */
    uint32_t version;        /* files: the version archived (the current one at the walk) */
    uint64_t began;          /* files: seq of its "began" event (0: not durable) */
    uint64_t drawn;          /* files of a link: bytes drawn from the budget */
};

enum phase { P_LOCAL, P_DATA, P_DESC, P_CENTRAL, P_END, P_DONE };

/* The archive: what the walk found, and the producer's position (worker side, one job at a time). */
struct archive {
    struct cf_store *store;
    struct cf_id tenant;
    struct item *it;
    size_t n, cap, files;
    uint64_t total, cd_offset, cd_size, bytes;
    /* producer */
    enum phase phase;
    size_t cur, cd_i;
    uint32_t chunk, nchunks;
    uint32_t crc;
    struct cf_reader *rd;
    /* provenance */
    bool link;
    struct cf_id share;
    struct cf_id root;
    struct cf_event *tmpl;   /* actor, address, agent: copied into each event */
    const char *action;
    pthread_mutex_t lock;    /* the began callbacks */
    pthread_cond_t cond;
    size_t pending;
    enum cf_status durable_st;
};

static void archive_free(struct archive *a)
{
    if (a == NULL)
        return;
    cf_reader_free(a->rd);
    for (size_t i = 0; i < a->n; i++)
        free(a->it[i].path);
    free(a->it);
    cf_event_free(a->tmpl);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a);
}

static struct item *push(struct archive *a)
{
    if (a->n == a->cap) {
        a->cap = a->cap != 0 ? a->cap * 2 : 64;
        a->it = cf_xrealloc(a->it, a->cap * sizeof *a->it);
    }
    struct item *i = &a->it[a->n++];
    memset(i, 0, sizeof *i);
    return i;
}

/* ---- the walk (worker) -------------------------------------------------------------------------- */

/* A folder still to open: its id, path in the archive ("" or ending in '/') and the caller's level. */
struct todo {
    struct cf_id id;
    char *path;
    enum cf_level level;
};

/* prefix + name (with '\' as '_') + (dir ? "/" : ""), or NULL if the segment may not go into an
 * archive or the path is too long. */
static char *join(const char *prefix, const char *name, bool dir)
{
    size_t pl = strlen(prefix), nl = strlen(name);
    if (pl + nl + 1 > CF_ZIP_NAME_MAX)
        return NULL;
    char *p = cf_xasprintf("%s%s%s", prefix, name, dir ? "/" : "");
    for (size_t k = pl; k < pl + nl; k++)
        if (p[k] == '\\')
            p[k] = '_';
    if (!cf_zip_name_ok(p + pl, nl)) {
        free(p);
        return NULL;
    }
    return p;
}

struct zip_job {
    struct cf_async a;       /* first */
    struct archive *ar;
    struct cf_uploader who;  /* members: the actor, groups copied (files.h) */
    enum cf_level level;
    struct cf_node root;
    const char *why;         /* a 4xx message */
    char msg[160];
    bool have_who;
    unsigned max;            /* limits.max_zip_entries */
};

/* The caller's level on child, given its parent's (members; links see everything). */
static enum cf_status child_level(struct zip_job *j, const struct cf_node *child, enum cf_level parent,
                                  enum cf_level *out)
{
    struct cf_acl_entry *e;
    size_t ne;
    *out = parent;
    if (j->ar->link)
        return CF_OK;
    enum cf_status st = cf_acl_get(j->ar->store, &j->ar->tenant, &child->id, &e, &ne);
    if (st != CF_OK)
        return st;
    for (size_t k = 0; k < ne; k++)
        if (cf_acl_entry_matches(&j->who.who, &e[k]) && e[k].level > *out)
            *out = (enum cf_level)e[k].level;
    free(e);
    return CF_OK;
}

static enum cf_status too_many(struct zip_job *j)
{
    snprintf(j->msg, sizeof j->msg,
             "the folder holds more than %u files and folders (itself included), the most one archive may hold "
             "(limits.max_zip_entries)",
             j->max);
    j->why = j->msg;
    return CF_ETOOBIG;
}

static enum cf_status walk_one(struct zip_job *j, struct todo *t, struct todo **queue, size_t *qn, size_t *qcap)
{
    struct archive *a = j->ar;
    uint8_t cursor[CF_CURSOR_LEN];
    bool more = true, first = true;
    enum cf_status st = CF_OK;
    while (more && st == CF_OK) {
        struct cf_node *kids;
        size_t cnt;
        uint8_t next[CF_CURSOR_LEN];
        st = cf_children_list(a->store, &a->tenant, &t->id, first ? NULL : cursor, 1000, &kids, &cnt, next, &more);
        if (st != CF_OK)
            break;
        first = false;
        memcpy(cursor, next, sizeof cursor);
        for (size_t i = 0; i < cnt; i++) {
            struct cf_node *k = &kids[i];
            enum cf_level lv;
            if (st != CF_OK || k->trashed_at != 0 || k->archived_at != 0)
                continue;
            if ((st = child_level(j, k, t->level, &lv)) != CF_OK)
                continue;
            if (lv < CF_LEVEL_DOWNLOAD)
                continue; /* not downloadable for this caller: left out, as if it were not there */
            if (a->n >= j->max) {
                st = too_many(j);
                continue;
            }
            char *path = join(t->path, k->name, k->type == CF_NODE_FOLDER);
            if (path == NULL) {
                j->why = "a path inside the folder cannot be put into a ZIP archive (too long, or a name it may not hold)";
                st = CF_EINVAL;
                continue;
            }
            struct item *it = push(a);
            it->path = path;
            it->z.name = path;
            it->z.name_len = strlen(path);
            it->z.dir = k->type == CF_NODE_FOLDER;
            cf_zip_dos_time(k->modified_at, &it->z.dos_time, &it->z.dos_date);
            it->id = k->id;
            if (it->z.dir) {
                if (*qn == *qcap) {
                    *qcap *= 2;
                    *queue = cf_xrealloc(*queue, *qcap * sizeof **queue);
                }
                (*queue)[(*qn)++] = (struct todo){k->id, cf_xstrdup(path), lv};
            } else {
                it->z.size = k->size;
                it->version = k->version;
                a->files++;
                a->bytes += k->size;
            }
        }
        for (size_t i = 0; i < cnt; i++)
            cf_node_clear(&kids[i]);
        free(kids);
    }
    return st;
}

static enum cf_status walk(struct zip_job *j)
{
    struct archive *a = j->ar;
    size_t qn = 0, qcap = 16;
    struct todo *queue = cf_xmalloc(qcap * sizeof *queue);
    char *top = j->root.name[0] != '\0' ? join("", j->root.name, true) : cf_xstrdup("");
    if (top == NULL) {
        free(queue);
        j->why = "the folder's name cannot be put into a ZIP archive";
        return CF_EINVAL;
    }
    if (top[0] != '\0') { /* the folder itself, so that an empty folder still makes an archive with it */
        struct item *it = push(a);
        it->path = cf_xstrdup(top);
        it->z.name = it->path;
        it->z.name_len = strlen(it->path);
        it->z.dir = true;
        cf_zip_dos_time(j->root.modified_at, &it->z.dos_time, &it->z.dos_date);
        it->id = j->root.id;
    }
    queue[qn++] = (struct todo){j->root.id, top, j->level};
    enum cf_status st = CF_OK;
    for (size_t q = 0; q < qn; q++) {
        if (st == CF_OK)
            st = walk_one(j, &queue[q], &queue, &qn, &qcap);
        free(queue[q].path);
    }
    free(queue);
    return st;
}

/* ---- budgets and provenance (worker) -------------------------------------------------------------- */

static struct cf_event *event_for(struct archive *a, const char *result)
{
    struct cf_event *e = cf_event_new(&a->tenant, a->action, result);
    e->actor_type = a->tmpl->actor_type;
    e->actor = a->tmpl->actor;
    e->actor_name = a->tmpl->actor_name != NULL ? cf_xstrdup(a->tmpl->actor_name) : NULL;
    e->has_share = a->link;
    e->share = a->share;
    memcpy(e->ip, a->tmpl->ip, sizeof e->ip);
    e->user_agent = a->tmpl->user_agent != NULL ? cf_xstrdup(a->tmpl->user_agent) : NULL;
    char root[CF_ID_HEX_LEN + 1];
    cf_id_hex(&a->root, root);
    cf_event_detail(e, "via", json_string("zip"));
    cf_event_detail(e, "archive", json_string(root));
    return e;
}

/* Gives back to the link's budget what each file drew and did not send (sent: bytes of each file
 * that went out; NULL: none). */
static void give_back_all(struct archive *a, const uint64_t *sent)
{
    for (size_t i = 0; i < a->n; i++) {
        struct item *it = &a->it[i];
        uint64_t s = sent != NULL ? sent[i] : 0;
        if (it->drawn == 0 || s >= it->drawn)
            continue;
        if (cf_share_give_back(a->store, &a->tenant, &a->share, &it->id, it->z.size, it->drawn - s, s) != CF_OK)
            cf_log_warn("zip: a share link's unsent bytes could not be given back (the reservation stands)");
        it->drawn = 0;
    }
}

static enum cf_status draw_all(struct zip_job *j)
{
    struct archive *a = j->ar;
    uint64_t now = cf_now_ms();
    for (size_t i = 0; i < a->n; i++) {
        struct item *it = &a->it[i];
        bool counted;
        if (it->z.dir || it->z.size == 0)
            continue;
        enum cf_status st = cf_share_draw(a->store, &a->tenant, &a->share, &it->id, it->z.size, it->z.size, now, &counted);
        if (st != CF_OK) {
            give_back_all(a, NULL);
            struct cf_event *e = event_for(a, "denied");
            struct cf_node n;
            if (cf_node_get(a->store, &a->tenant, &it->id, &n) == CF_OK) {
                cf_event_node(e, &n);
                cf_node_clear(&n);
            }
            cf_event_detail(e, "reason", json_string(cf_status_name(st)));
            cf_audit_submit(e);
            j->why = st == CF_EEXHAUSTED ? "a file in this folder has reached its download limit" : NULL;
            return st;
        }
        it->drawn = it->z.size;
    }
    return CF_OK;
}

struct began_cb {
    struct archive *a;
    struct item *it;
};

static void began_written(void *arg, enum cf_status st, uint64_t seq)
{
    struct began_cb *b = arg;
    struct archive *a = b->a;
    pthread_mutex_lock(&a->lock);
    if (st == CF_OK)
        b->it->began = seq;
    else
        a->durable_st = st;
    if (--a->pending == 0)
        pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    free(b);
}

/* One "began" event per file, all durable before this returns (the writer group-commits them). */
static enum cf_status record_began(struct zip_job *j)
{
    struct archive *a = j->ar;
    a->pending = 1; /* ours, dropped below: no callback can see zero before every event is queued */
    for (size_t i = 0; i < a->n; i++) {
        struct item *it = &a->it[i];
        struct cf_node n;
        if (it->z.dir)
            continue;
        struct cf_event *e = event_for(a, "ok");
        if (cf_node_get(a->store, &a->tenant, &it->id, &n) == CF_OK) {
            cf_event_node(e, &n);
            cf_node_clear(&n);
        } else {
            e->has_node = true;
            e->node = it->id;
        }
        cf_event_detail(e, "phase", json_string("began"));
        cf_event_detail(e, "range", json_null());
        cf_event_detail(e, "size", json_integer((json_int_t)it->z.size));
        cf_event_detail(e, "version", json_integer(it->version));
        struct began_cb *b = cf_xmalloc(sizeof *b);
        *b = (struct began_cb){a, it};
        pthread_mutex_lock(&a->lock);
        a->pending++;
        pthread_mutex_unlock(&a->lock);
        cf_audit_submit_cb(e, began_written, b);
    }
    pthread_mutex_lock(&a->lock);
    a->pending--;
    while (a->pending > 0)
        pthread_cond_wait(&a->cond, &a->lock);
    enum cf_status st = a->durable_st;
    pthread_mutex_unlock(&a->lock);
    /* Bulk downloads: a member or a link downloading n files (members' inline views are not counted,
     * nor is anything here a view). */
    cf_audit_count_download(&a->tenant, a->tmpl->actor_type, &a->tmpl->actor, a->tmpl->ip, a->files, a->bytes);
    return st != CF_OK ? CF_EUNAVAIL : CF_OK;
}

static void zip_run(struct cf_async *as)
{
    struct zip_job *j = (struct zip_job *)as;
    struct archive *a = j->ar;
    if ((as->st = walk(j)) != CF_OK)
        return;
    /* cf_zip_layout's arithmetic, over entries that sit inside items. */
    uint64_t at = 0, cd = 0;
    for (size_t i = 0; i < a->n; i++) {
        struct cf_zip_entry *z = &a->it[i].z;
        z->offset = at;
        at += cf_zip_local_len(z) + (z->dir ? 0 : z->size) + cf_zip_desc_len(z);
        cd += cf_zip_central_len(z);
    }
    a->cd_offset = at;
    a->cd_size = cd;
    a->total = at + cd + cf_zip_end_len(a->n, at, cd);
    if (a->link && (as->st = draw_all(j)) != CF_OK)
        return;
    as->st = record_began(j);
    if (as->st != CF_OK && a->link)
        give_back_all(a, NULL);
}

/* ---- the stream (loop thread, and fill jobs on workers) ------------------------------------------ */

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_SENDING };

struct zstream;

struct fill_job {
    struct cf_job job;
    struct zstream *s;
    unsigned slot;
    size_t len;
    bool last;              /* the archive's last bytes are in this slot */
    enum cf_status st;
};

struct zstream {
    h2o_generator_t gen;    /* must be first */
    h2o_req_t *req;         /* NULL once disposed */
    struct cf_req *r;       /* watched until the headers are out */
    struct archive *a;
    struct {
        uint8_t *buf;
        size_t len, used;   /* bytes to send; bytes ever written (wiped before the buffer goes back) */
        bool last;
        enum slot_state state;
    } slot[2];
    unsigned fill_next, send_next;
    uint64_t sent;
    bool job_busy, sending, started, stopped, failed, aborted, produced_all;
    char *disposition;
    int refs;
    struct fill_job job;
};

/* The producer (worker): fills buf with the archive's next bytes, up to cap; whole headers and whole
 * chunks only, so a buffer of CF_CHUNK_SIZE bytes always makes progress. */
static enum cf_status produce(struct archive *a, uint8_t *buf, size_t cap, size_t *len, bool *last)
{
    size_t used = 0;
    enum cf_status st = CF_OK;
    for (;;) {
        struct cf_zip_entry *z = a->cur < a->n ? &a->it[a->cur].z : NULL;
        if (a->phase == P_LOCAL) {
            if (z == NULL) {
                a->phase = P_CENTRAL;
                continue;
            }
            if (cap - used < cf_zip_local_len(z))
                break;
            used += cf_zip_local(z, buf + used);
            if (z->dir) {
                a->cur++;
                continue;
            }
            struct item *it = &a->it[a->cur];
            if ((st = cf_reader_open(a->store, &a->tenant, &it->id, it->version, &a->rd)) != CF_OK) {
                st = CF_ECORRUPT; /* purged or replaced away since the walk: the archive cannot be completed */
                break;
            }
            if (cf_reader_size(a->rd) != z->size) {
                st = CF_ECORRUPT;
                break;
            }
            a->chunk = 0;
            a->nchunks = cf_reader_chunk_count(a->rd);
            a->crc = 0;
            a->phase = P_DATA;
        } else if (a->phase == P_DATA) {
            if (a->chunk == a->nchunks) {
                cf_reader_free(a->rd);
                a->rd = NULL;
                z->crc = a->crc;
                a->phase = P_DESC;
                continue;
            }
            size_t need = z->size < CF_CHUNK_SIZE ? (size_t)z->size : CF_CHUNK_SIZE;
            if (cap - used < need)
                break;
            size_t got = 0;
            if ((st = cf_reader_chunk(a->rd, a->chunk, buf + used, &got)) != CF_OK) {
                used = cap; /* unauthenticated bytes may be anywhere in the room: wipe it all */
                break;
            }
            a->crc = cf_zip_crc32(a->crc, buf + used, got);
            used += got;
            a->chunk++;
        } else if (a->phase == P_DESC) {
            if (cap - used < cf_zip_desc_len(z))
                break;
            used += cf_zip_desc(z, buf + used);
            a->cur++;
            a->phase = P_LOCAL;
        } else if (a->phase == P_CENTRAL) {
            if (a->cd_i == a->n) {
                a->phase = P_END;
                continue;
            }
            struct cf_zip_entry *c = &a->it[a->cd_i].z;
            if (cap - used < cf_zip_central_len(c))
                break;
            used += cf_zip_central(c, buf + used);
            a->cd_i++;
        } else if (a->phase == P_END) {
            if (cap - used < cf_zip_end_len(a->n, a->cd_offset, a->cd_size))
                break;
            used += cf_zip_end(a->n, a->cd_offset, a->cd_size, buf + used);
            a->phase = P_DONE;
        } else {
            break;
        }
    }
    *len = used;
    *last = a->phase == P_DONE;
    return st;
}

static bool fill_run(struct cf_job *job)
{
    struct fill_job *j = (struct fill_job *)(void *)job;
    j->st = produce(j->s->a, j->s->slot[j->slot].buf, CF_BUFPOOL_SIZE, &j->len, &j->last);
    return true;
}

/* The end events (loop thread) and the link's give-back (a worker), once the response is over. */
struct zip_end {
    struct archive *a;
    uint64_t sent;          /* bytes of the archive handed to the connection */
};

static void end_run(void *arg)
{
    struct zip_end *e = arg;
    struct archive *a = e->a;
    /* Each file's bytes handed to the connection, from where its data starts in the archive; a file
     * is complete once its data descriptor went out too. */
    uint64_t *sent = cf_xcalloc(a->n + 1, sizeof *sent);
    bool *done = cf_xcalloc(a->n + 1, sizeof *done);
    for (size_t i = 0; i < a->n; i++) {
        struct cf_zip_entry *z = &a->it[i].z;
        uint64_t data = z->offset + cf_zip_local_len(z);
        if (z->dir)
            continue;
        if (e->sent > data)
            sent[i] = e->sent - data < z->size ? e->sent - data : z->size;
        done[i] = e->sent >= data + z->size + cf_zip_desc_len(z);
    }
    if (a->link)
        give_back_all(a, sent);
    for (size_t i = 0; i < a->n; i++) {
        struct item *it = &a->it[i];
        if (it->z.dir || it->began == 0)
            continue;
        struct cf_event *ev = event_for(a, "ok");
        ev->has_node = true;
        ev->node = it->id;
        ev->began = it->began;
        cf_event_detail(ev, "phase", json_string("end"));
        cf_event_detail(ev, "bytes_sent", json_integer((json_int_t)sent[i]));
        cf_event_detail(ev, "completed", json_boolean(done[i]));
        cf_audit_submit(ev);
    }
    free(sent);
    free(done);
    archive_free(a);
    free(e);
}

static void stream_unref(struct zstream *s)
{
    if (--s->refs > 0)
        return;
    struct zip_end *e = cf_xcalloc(1, sizeof *e);
    e->a = s->a;
    e->sent = s->sent; /* handed to the connection, as a single download counts it */
    cf_work_background(end_run, e);
    for (unsigned i = 0; i < 2; i++)
        cf_bufpool_give(s->slot[i].buf, s->slot[i].used);
    free(s->disposition);
    free(s);
}

static void on_req_dispose(void *p)
{
    struct zstream *s = *(struct zstream **)p;
    s->req = NULL;
    stream_unref(s);
}

static void fill_done(struct cf_job *job);

static void maybe_fill(struct zstream *s)
{
    if (s->job_busy || s->failed || s->produced_all || s->req == NULL || s->stopped)
        return;
    unsigned k = s->fill_next;
    if (s->slot[k].state != SLOT_FREE)
        return;
    s->slot[k].state = SLOT_FILLING;
    s->fill_next ^= 1;
    s->job.s = s;
    s->job.slot = k;
    s->job.job.run = fill_run;
    s->job.job.done = fill_done;
    s->job.job.reply_to = &cf_loop_of(s->req)->work_done;
    s->job_busy = true;
    s->refs++;
    cf_work_submit(&s->job.job);
}

static void pump(struct zstream *s)
{
    if (s->req == NULL || s->stopped || !s->started || s->aborted)
        return;
    if (!s->sending) {
        if (s->failed) {
            s->aborted = true;
            h2o_send(s->req, NULL, 0, H2O_SEND_STATE_ERROR);
            return;
        }
        unsigned k = s->send_next;
        if (s->slot[k].state == SLOT_READY) {
            h2o_iovec_t v = h2o_iovec_init(s->slot[k].buf, s->slot[k].len);
            s->slot[k].state = SLOT_SENDING;
            s->send_next ^= 1;
            s->sending = true;
            s->sent += v.len;
            h2o_send(s->req, &v, 1, s->slot[k].last ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
        }
    }
    maybe_fill(s);
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    struct zstream *s = (struct zstream *)gen;
    (void)req;
    s->sending = false;
    for (unsigned i = 0; i < 2; i++)
        if (s->slot[i].state == SLOT_SENDING)
            s->slot[i].state = SLOT_FREE;
    pump(s);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    struct zstream *s = (struct zstream *)gen;
    (void)req;
    s->stopped = true;
}

static void send_headers(struct zstream *s)
{
    struct cf_req *r = s->r;
    cf_req_unwatch(r);
    r->answered = true;
    cf_add_header(r, "content-disposition", s->disposition, strlen(s->disposition));
    cf_add_header_str(r, "content-type", "application/zip");
    cf_add_header_str(r, "cache-control", "private, no-store");
    cf_add_header_str(r, "cross-origin-resource-policy", "same-origin");
    cf_add_header_str(r, "content-security-policy", "default-src 'none'; frame-ancestors 'none'; sandbox");
    s->req->res.status = 200;
    s->req->res.reason = "OK";
    s->req->res.content_length = (size_t)s->a->total;
    h2o_start_response(s->req, &s->gen);
    s->started = true;
}

static void fill_done(struct cf_job *job)
{
    struct fill_job *j = (struct fill_job *)(void *)job;
    struct zstream *s = j->s;
    s->job_busy = false;
    size_t wrote = j->st == CF_OK ? j->len : CF_BUFPOOL_SIZE;
    if (wrote > s->slot[j->slot].used)
        s->slot[j->slot].used = wrote;
    if (j->st == CF_OK) {
        s->slot[j->slot].len = j->len;
        s->slot[j->slot].last = j->last;
        s->slot[j->slot].state = SLOT_READY;
        s->produced_all = j->last;
    } else {
        s->slot[j->slot].state = SLOT_FREE;
        cf_log_error("zip: a file of the archive could not be read (%s); the archive is cut", cf_status_name(j->st));
    }
    if (s->req == NULL || s->stopped) {
        stream_unref(s);
        return;
    }
    if (j->st != CF_OK) {
        s->failed = true;
        if (!s->started) {
            s->aborted = true;
            cf_req_unwatch(s->r);
            cf_respond_status(s->r, j->st, NULL);
        } else {
            pump(s);
        }
        stream_unref(s);
        return;
    }
    if (!s->started)
        send_headers(s);
    pump(s);
    stream_unref(s);
}

static void zip_reply(struct cf_req *r, struct cf_async *as)
{
    struct zip_job *j = (struct zip_job *)as;
    if (as->st != CF_OK) {
        if (as->st == CF_EUNAVAIL)
            cf_respond_status(r, as->st, "the download could not be recorded; try again");
        else
            cf_respond_status(r, as->st, j->why);
        return;
    }
    struct zstream *s = cf_xcalloc(1, sizeof *s);
    for (unsigned i = 0; i < 2; i++)
        s->slot[i].buf = cf_bufpool_take();
    s->gen.proceed = on_proceed;
    s->gen.stop = on_stop;
    s->req = r->req;
    s->a = j->ar;
    j->ar = NULL;
    s->refs = 1; /* the request's */
    const char *name = j->root.name[0] != '\0' ? j->root.name : "files";
    char *fname = cf_xasprintf("%s.zip", name);
    s->disposition = cf_content_disposition("attachment", fname, strlen(fname));
    free(fname);
    struct zstream **guard = h2o_mem_alloc_shared(&r->req->pool, sizeof *guard, on_req_dispose);
    *guard = s;
    if (s->slot[0].buf == NULL || s->slot[1].buf == NULL) {
        s->failed = s->aborted = true; /* the end events say nothing was sent */
        cf_respond_status(r, CF_EIO, NULL);
        return;
    }
    s->r = r;
    cf_req_watch(r, &s->r);
    maybe_fill(s);
}

static void zip_free(struct cf_async *as)
{
    struct zip_job *j = (struct zip_job *)as;
    if (j->ar != NULL) { /* never streamed: what was drawn goes back, began events get their end */
        if (as->st == CF_OK) {
            struct zip_end *e = cf_xcalloc(1, sizeof *e);
            e->a = j->ar;
            cf_work_background(end_run, e);
        } else {
            archive_free(j->ar);
        }
    }
    if (j->have_who)
        cf_uploader_clear(&j->who);
    cf_node_clear(&j->root);
    free(j);
}

void cf_zip_serve(struct cf_req *r, const struct cf_zip_request *z)
{
    struct zip_job *j = cf_xcalloc(1, sizeof *j);
    struct archive *a = cf_xcalloc(1, sizeof *a);
    j->a.run = zip_run;
    j->a.reply = zip_reply;
    j->a.free = zip_free;
    j->ar = a;
    j->level = z->level;
    j->max = r->app->cfg->limits.max_zip_entries;
    j->root.id = z->root->id;
    j->root.name = cf_xstrdup(z->root->name);
    j->root.modified_at = z->root->modified_at;
    a->store = r->app->store;
    a->tenant = z->tenant;
    a->root = z->root->id;
    a->link = z->link;
    a->share = z->share;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    a->tmpl = cf_event_new(&z->tenant, "file.download", "ok");
    if (z->link) {
        a->action = "share.download";
        a->tmpl->actor_type = CF_ACTOR_SHARE;
        a->tmpl->actor = z->share;
        snprintf(a->tmpl->ip, sizeof a->tmpl->ip, "%s", r->ip);
        h2o_iovec_t ua = cf_header(r, "user-agent");
        a->tmpl->user_agent = ua.base != NULL ? cf_text_clean(ua.base, ua.len, 512) : NULL;
    } else {
        a->action = "file.download";
        cf_event_from_req(a->tmpl, r);
        cf_uploader_init(&j->who, r);
        j->have_who = true;
    }
    cf_async_start(r, &j->a);
}

void cf_h_folder_zip(struct cf_req *r)
{
    struct cf_node n;
    enum cf_level level;
    /* View-only callers get 403 here, like every content path (they may see that it exists). */
    if (!cf_acl_param_or_respond(r, 0, CF_LEVEL_DOWNLOAD, &n, &level))
        return;
    if (n.type != CF_NODE_FOLDER) {
        cf_node_clear(&n);
        cf_respond_status(r, CF_EINVAL, "not a folder: download a file with /api/v1/files/{id}/content");
        return;
    }
    struct cf_zip_request z = {.tenant = r->who.user.tenant, .root = &n, .level = level};
    cf_zip_serve(r, &z);
    cf_node_clear(&n);
}
