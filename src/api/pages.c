/*
 * pages.c: server-rendered, watermarked pages of a file (issue 20): GET /api/v1/files/{id}/pages,
 * GET /api/v1/files/{id}/pages/{n}?w=W, and the same for link recipients (share.c resolves the link
 * and calls cf_pages_summary / cf_pages_image).
 *
 * Preparing a file (cf_pages_prepare, on upload and on the first request): the kind comes from the
 * MIME type the scanner's libmagic gave (never the client's claim); an office document is converted
 * to PDF once (OP_CONVERT) and the PDF is cached; OP_PAGES counts the pages; the summary (ready with
 * N pages, or unsupported with the renderer's reason) is cached; then the first EAGER_PAGES pages
 * are rendered at the viewer's default width. All of it runs as a chain of render jobs on the
 * render threads (cf_render_submit), never on a loop and never in the upload's answer. A renderer
 * lost during preparation (crash, kill, deadline) is retried once; a second loss marks the file
 * unsupported ("the renderer failed on this file"), so a hostile file cannot kill renderers forever.
 *
 * Serving a page (short worker steps, the renders between them on the render threads: no worker
 * ever waits for a renderer; see "A page image" below): the page image is taken from the cache or
 * rendered (OP_PAGE, cached), then composited per request with the viewer's watermark (OP_COMPOSE):
 * the cache never holds a viewer's identity, and two viewers never get the same bytes. When
 * render.processes x 8 renders already wait, a page request is answered 503 render_busy at once.
 * Every object is cached sealed under the file's data key beside its chunks (storage/pages.c),
 * keyed by content, page, width and CF_RENDER_VERSION, and goes with the content.
 *
 * Limits: a viewer (a member, or a link from one address) may fetch render.pages_per_minute pages a
 * minute (429 with Retry-After). Provenance: one file.page_view event per viewer, file and page per
 * PAGE_VIEW_WINDOW_MS (the first view of the page in that window), with page and width: a reader
 * paging back and forth does not flood the log, and every page seen is in it.
 */
#include "pages.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "config.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "render.h"
#include "throttle.h"
#include "validate.h"
#include "work.h"

#define EAGER_PAGES 2                      /* rendered on upload, at DEFAULT_WIDTH */
#define DEFAULT_WIDTH 960u
#define PAGE_MAX 0x3FFFFFu                 /* fits the slot's page bits */
#define PAGE_VIEW_WINDOW_MS (10ull * 60 * 1000)
#define PREP_SLOTS 64                      /* preparations under way at once */
#define RETRY_PENDING_S "2"
#define RETRY_UNAVAIL_S "10"

static const unsigned widths[] = CF_RENDER_WIDTHS;

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* What a request keeps of its node: a copy with its own strings (the scan summary left out). */
static void node_copy(struct cf_node *dst, const struct cf_node *src)
{
    *dst = *src;
    memset(&dst->scan, 0, sizeof dst->scan);
    dst->name = cf_xstrdup(src->name != NULL ? src->name : "");
    dst->mime = src->mime != NULL ? cf_xstrdup(src->mime) : NULL;
}

/* ---- cache slots (storage/pages.c) ------------------------------------------------------------ */

static uint32_t slot_base(void)
{
    return CF_DERIVED_SLOT | ((CF_RENDER_VERSION & 0x7Fu) << 24);
}

static uint32_t slot_summary(void)
{
    return slot_base() | (3u << 22);
}

static uint32_t slot_pdf(void)
{
    return slot_base() | (3u << 22) | 1u;
}

static int width_index(unsigned w)
{
    for (unsigned i = 0; i < sizeof widths / sizeof widths[0]; i++)
        if (widths[i] == w)
            return (int)i;
    return -1;
}

static uint32_t slot_page(unsigned page, unsigned w)
{
    return slot_base() | ((uint32_t)width_index(w) << 22) | (page & PAGE_MAX);
}

/* The summary: state (0 ready, 1 unsupported), pages (u32), why (NUL-terminated). */
enum { SUM_READY = 0, SUM_UNSUPPORTED = 1 };
struct summary {
    unsigned state, pages;
    char why[CF_RENDER_WHY];
};

static enum cf_status summary_get(struct cf_reader *rd, struct summary *s)
{
    uint8_t *v;
    size_t n;
    enum cf_status st = cf_derived_get(rd, slot_summary(), &v, &n);
    if (st != CF_OK)
        return st;
    memset(s, 0, sizeof *s);
    if (n < 5 || n > 5 + CF_RENDER_WHY - 1 || v[0] > SUM_UNSUPPORTED) {
        free(v);
        return CF_ECORRUPT;
    }
    s->state = v[0];
    s->pages = get_be32(v + 1);
    memcpy(s->why, v + 5, n - 5);
    s->why[n - 5] = '\0';
    free(v);
    return CF_OK;
}

static enum cf_status summary_put(struct cf_reader *rd, unsigned state, unsigned pages, const char *why)
{
    uint8_t v[5 + CF_RENDER_WHY];
    size_t wl = strnlen(why, CF_RENDER_WHY - 1);
    v[0] = (uint8_t)state;
    put_be32(v + 1, pages);
    memcpy(v + 5, why, wl);
    return cf_derived_put(rd, slot_summary(), v, 5 + wl);
}

/* ---- inputs: a file's content, or bytes in memory ---------------------------------------------- */

struct source {
    struct cf_reader *rd;   /* the content (NULL: mem) */
    const uint8_t *mem;
    uint64_t size;
    uint8_t *chunk;         /* the last decrypted chunk */
    size_t chunk_len, chunk_cap;
    uint32_t chunk_idx;
    bool have;
};

static enum cf_status source_read(void *ctx, uint64_t off, void *buf, size_t len)
{
    struct source *s = ctx;
    if (off > s->size || len > s->size - off)
        return CF_EINVAL;
    if (s->rd == NULL) {
        memcpy(buf, s->mem + off, len);
        return CF_OK;
    }
    uint8_t *out = buf;
    while (len > 0) {
        uint32_t idx = (uint32_t)(off / CF_CHUNK_SIZE);
        if (!s->have || idx != s->chunk_idx) {
            if (s->chunk == NULL) {
                s->chunk_cap = s->size < CF_CHUNK_SIZE ? (size_t)s->size : CF_CHUNK_SIZE;
                s->chunk = cf_xmalloc(s->chunk_cap + 1);
            }
            s->have = false;
            enum cf_status st = cf_reader_chunk(s->rd, idx, s->chunk, &s->chunk_len);
            if (st != CF_OK)
                return st;
            s->chunk_idx = idx;
            s->have = true;
        }
        size_t at = (size_t)(off - (uint64_t)idx * CF_CHUNK_SIZE);
        if (at >= s->chunk_len)
            return CF_ECORRUPT;
        size_t take = s->chunk_len - at < len ? s->chunk_len - at : len;
        memcpy(out, s->chunk + at, take);
        out += take;
        off += take;
        len -= take;
    }
    return CF_OK;
}

static void source_content(struct source *s, struct cf_reader *rd)
{
    memset(s, 0, sizeof *s);
    s->rd = rd;
    s->size = cf_reader_size(rd);
}

static void source_mem(struct source *s, const uint8_t *p, size_t n)
{
    memset(s, 0, sizeof *s);
    s->mem = p;
    s->size = n;
}

static void source_clear(struct source *s)
{
    if (s->chunk != NULL)
        cf_free_secret(s->chunk, s->chunk_cap + 1);
    s->chunk = NULL;
    s->have = false;
}

static void job_input(struct cf_render_job *j, struct source *s)
{
    j->size = s->size;
    j->read = source_read;
    j->ctx = s;
}

/* ---- preparation (render threads) ----------------------------------------------------------- */

static bool office_kind(enum cf_render_kind k)
{
    return k >= CF_RENDER_DOCX && k <= CF_RENDER_ODP;
}

/* Preparations under way, by (tenant, file, version), so that polls do not start one each. */
struct prep_key {
    struct cf_id tenant, file;
    uint32_t version;
    bool used;
};
static struct prep_key preps[PREP_SLOTS];
static pthread_mutex_t prep_lock = PTHREAD_MUTEX_INITIALIZER;

static bool prep_claim(const struct cf_id *tenant, const struct cf_id *file, uint32_t version)
{
    int free_at = -1;
    pthread_mutex_lock(&prep_lock);
    for (int i = 0; i < PREP_SLOTS; i++) {
        if (!preps[i].used) {
            if (free_at < 0)
                free_at = i;
        } else if (preps[i].version == version && cf_id_equal(&preps[i].file, file) &&
                   cf_id_equal(&preps[i].tenant, tenant)) {
            pthread_mutex_unlock(&prep_lock);
            return false;
        }
    }
    if (free_at >= 0)
        preps[free_at] = (struct prep_key){*tenant, *file, version, true};
    pthread_mutex_unlock(&prep_lock);
    return free_at >= 0;
}

static void prep_release(const struct cf_id *tenant, const struct cf_id *file, uint32_t version)
{
    pthread_mutex_lock(&prep_lock);
    for (int i = 0; i < PREP_SLOTS; i++)
        if (preps[i].used && preps[i].version == version && cf_id_equal(&preps[i].file, file) &&
            cf_id_equal(&preps[i].tenant, tenant))
            preps[i].used = false;
    pthread_mutex_unlock(&prep_lock);
}

enum prep_stage { STAGE_CONVERT, STAGE_PAGES, STAGE_EAGER };

struct prep {
    struct cf_render_job job;
    struct cf_id tenant, file;
    uint32_t version;
    struct cf_reader *rd;
    struct source src;
    uint8_t *pdf;               /* an office document's PDF */
    size_t pdf_len;
    enum cf_render_kind kind;   /* of the file */
    enum prep_stage stage;
    unsigned pages, eager, retries;
};

static void prep_done(struct cf_render_job *j);

static void prep_free(struct prep *p)
{
    source_clear(&p->src);
    cf_render_job_clear(&p->job);
    prep_release(&p->tenant, &p->file, p->version);
    cf_reader_free(p->rd);
    free(p->pdf);
    free(p);
}

/* Submits the job of p's current stage. */
static void prep_submit(struct prep *p)
{
    struct cf_render_job *j = &p->job;
    cf_render_job_clear(j);
    source_clear(&p->src);
    memset(j, 0, sizeof *j);
    j->done = prep_done;
    if (p->stage == STAGE_CONVERT) {
        source_content(&p->src, p->rd);
        j->op = CF_RENDER_OP_CONVERT;
        j->kind = p->kind;
    } else {
        if (p->pdf != NULL)
            source_mem(&p->src, p->pdf, p->pdf_len);
        else
            source_content(&p->src, p->rd);
        j->kind = p->pdf != NULL ? CF_RENDER_PDF : p->kind;
        j->op = p->stage == STAGE_PAGES ? CF_RENDER_OP_PAGES : CF_RENDER_OP_PAGE;
        if (p->stage == STAGE_EAGER) {
            j->page = p->eager;
            j->width = DEFAULT_WIDTH;
        }
    }
    job_input(j, &p->src);
    cf_render_submit(j);
}

/* A render the preparation cannot go on from: the file is unsupported (why), or the renderers are
 * gone (nothing stored: the next request tries again). */
static void prep_fail(struct prep *p, const char *why, bool store)
{
    if (store && summary_put(p->rd, SUM_UNSUPPORTED, 0, why) != CF_OK)
        cf_log_warn("pages: cannot store a file's page summary");
    prep_free(p);
}

static void prep_done(struct cf_render_job *j)
{
    struct prep *p = (struct prep *)j;
    /* The family stopped or never started: nothing is wrong with the file. */
    bool gone = !cf_render_running();
    if (j->status == CF_EUNAVAIL && p->retries == 0 && p->stage != STAGE_EAGER && !gone) {
        p->retries++;
        prep_submit(p);
        return;
    }
    if (j->status == CF_EUNAVAIL && p->stage != STAGE_EAGER) {
        cf_log_warn("pages: preparing a file failed: %s", j->why);
        prep_fail(p, "the renderer failed on this file", !gone);
        return;
    }
    if (j->status != CF_OK) {
        if (p->stage == STAGE_EAGER) {
            prep_free(p);
            return;
        }
        prep_fail(p, "the file could not be read", false);
        return;
    }
    switch (p->stage) {
    case STAGE_CONVERT:
        if (j->result != CF_RENDER_OK) {
            prep_fail(p, j->why[0] != '\0' ? j->why : "the document could not be converted", true);
            return;
        }
        if (cf_derived_put(p->rd, slot_pdf(), j->out, j->out_len) != CF_OK) {
            prep_fail(p, "", false);
            return;
        }
        p->pdf = j->out;
        p->pdf_len = j->out_len;
        j->out = NULL;
        p->stage = STAGE_PAGES;
        p->retries = 0;
        prep_submit(p);
        return;
    case STAGE_PAGES:
        if (j->result != CF_RENDER_OK || j->pages == 0) {
            prep_fail(p, j->why[0] != '\0' ? j->why : "the document has no pages", true);
            return;
        }
        p->pages = j->pages;
        if (summary_put(p->rd, SUM_READY, p->pages, "") != CF_OK) {
            prep_fail(p, "", false);
            return;
        }
        p->stage = STAGE_EAGER;
        p->eager = 1;
        prep_submit(p);
        return;
    case STAGE_EAGER:
        if (j->result == CF_RENDER_OK &&
            cf_derived_put(p->rd, slot_page(p->eager, DEFAULT_WIDTH), j->out, j->out_len) != CF_OK)
            cf_log_warn("pages: cannot cache a rendered page");
        if (j->result != CF_RENDER_OK || ++p->eager > EAGER_PAGES || p->eager > p->pages) {
            prep_free(p);
            return;
        }
        prep_submit(p);
        return;
    }
}

/* Starts preparing version of file (a worker; rd is taken). Nothing if one is under way. */
static void prepare_reader(const struct cf_id *tenant, const struct cf_id *file, uint32_t version, const char *mime,
                           struct cf_reader *rd)
{
    enum cf_render_kind kind = cf_render_kind_of(mime != NULL ? mime : "");
    if (kind == CF_RENDER_NONE) {
        if (summary_put(rd, SUM_UNSUPPORTED, 0, "no preview for this type") != CF_OK)
            cf_log_warn("pages: cannot store a file's page summary");
        cf_reader_free(rd);
        return;
    }
    if (!prep_claim(tenant, file, version)) {
        cf_reader_free(rd);
        return;
    }
    struct prep *p = cf_xcalloc(1, sizeof *p);
    p->tenant = *tenant;
    p->file = *file;
    p->version = version;
    p->rd = rd;
    p->kind = kind;
    /* An office document converted before: its PDF is cached. */
    if (office_kind(kind) && cf_derived_get(rd, slot_pdf(), &p->pdf, &p->pdf_len) != CF_OK)
        p->pdf = NULL;
    p->stage = office_kind(kind) && p->pdf == NULL ? STAGE_CONVERT : STAGE_PAGES;
    prep_submit(p);
}

void cf_pages_prepare(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *file, uint32_t version,
                      const char *mime)
{
    struct cf_reader *rd;
    struct summary s;
    if (!cf_render_running() || cf_reader_open(store, tenant, file, version, &rd) != CF_OK)
        return;
    if (summary_get(rd, &s) == CF_OK) {
        cf_reader_free(rd);
        return;
    }
    prepare_reader(tenant, file, version, mime, rd);
}

/* ---- limits and provenance ------------------------------------------------------------------ */

static struct cf_throttle *rate, *seen;
static pthread_once_t limits_once = PTHREAD_ONCE_INIT;
static unsigned rate_limit = 120;

static void limits_init(void)
{
    rate = cf_throttle_new(rate_limit, 60 * 1000, 65536);
    seen = cf_throttle_new(1, PAGE_VIEW_WINDOW_MS, 262144);
    if (rate == NULL || seen == NULL)
        abort(); /* the configuration bounds pages_per_minute to the throttle's range */
    /* Cluster mode: counted across nodes (throttle.h; nothing changes without a shared backend). */
    cf_throttle_share(rate, "page-rate");
    cf_throttle_share(seen, "page-view");
}

/* The viewer's rate key: the member, or the link and the client's address. */
static size_t viewer_key(const struct cf_viewer *v, uint8_t *key)
{
    size_t n = 0;
    key[n++] = (uint8_t)v->actor_type;
    memcpy(key + n, v->actor.b, CF_ID_LEN);
    n += CF_ID_LEN;
    if (v->actor_type == CF_ACTOR_SHARE) {
        size_t il = strnlen(v->ip, sizeof v->ip);
        memcpy(key + n, v->ip, il);
        n += il;
    }
    return n;
}

static void page_view_event(const struct cf_viewer *v, struct cf_store *store, const struct cf_node *node,
                            unsigned page, unsigned width)
{
    uint8_t key[1 + CF_ID_LEN + sizeof v->ip + CF_ID_LEN + 4];
    size_t n = viewer_key(v, key);
    memcpy(key + n, node->id.b, CF_ID_LEN);
    n += CF_ID_LEN;
    put_be32(key + n, page);
    n += 4;
    uint64_t retry;
    struct cf_throttle_ticket t;
    if (!cf_throttle_reserve(seen, key, n, cf_now_ms(), &retry, &t))
        return; /* this viewer saw this page within the window: already in the log */
    (void)store;
    struct cf_event *e = cf_event_new(&v->tenant, "file.page_view", "ok");
    e->actor_type = v->actor_type;
    e->actor = v->actor;
    e->actor_name = v->actor_name[0] != '\0' ? cf_xstrdup(v->actor_name) : NULL;
    e->has_share = v->actor_type == CF_ACTOR_SHARE;
    e->share = v->actor;
    snprintf(e->ip, sizeof e->ip, "%s", v->ip);
    e->user_agent = v->user_agent[0] != '\0' ? cf_xstrdup(v->user_agent) : NULL;
    cf_event_node(e, node);
    cf_event_detail(e, "page", json_integer(page));
    cf_event_detail(e, "width", json_integer(width));
    cf_event_detail(e, "window_s", json_integer((json_int_t)(PAGE_VIEW_WINDOW_MS / 1000)));
    cf_audit_submit(e);
}

/* ---- the requests --------------------------------------------------------------------------------- */

/* What a request answers when it is not the content: status, error code, message, Retry-After. */
struct answer {
    int http;
    const char *code, *message;
    const char *retry_after;
};

static void fail(struct answer *a, int http, const char *code, const char *message, const char *retry)
{
    a->http = http;
    a->code = code;
    a->message = message;
    a->retry_after = retry;
}

/* Opens the node's current version and reads its summary, starting a preparation if there is none.
 * CF_OK with *s, CF_EBUSY (pending), CF_EUNAVAIL (no renderers), or an error. A worker. */
static enum cf_status open_summary(const struct cf_app *app, const struct cf_viewer *v, const struct cf_node *node,
                                   struct cf_reader **rd, struct summary *s)
{
    enum cf_status st = cf_reader_open(app->store, &v->tenant, &node->id, node->version, rd);
    if (st != CF_OK)
        return st == CF_ENOTFOUND ? CF_ECORRUPT : st;
    st = summary_get(*rd, s);
    if (st == CF_OK)
        return CF_OK;
    if (st != CF_ENOTFOUND) {
        cf_reader_free(*rd);
        *rd = NULL;
        return st;
    }
    if (!cf_render_running()) {
        cf_reader_free(*rd);
        *rd = NULL;
        return CF_EUNAVAIL;
    }
    struct cf_reader *prep_rd;
    if (cf_reader_open(app->store, &v->tenant, &node->id, node->version, &prep_rd) == CF_OK)
        prepare_reader(&v->tenant, &node->id, node->version, node->mime, prep_rd);
    /* A type with no preview was decided at once. */
    if (summary_get(*rd, s) == CF_OK)
        return CF_OK;
    cf_reader_free(*rd);
    *rd = NULL;
    return CF_EBUSY;
}

/* The summary: one worker step (cf_async), no render. */
struct summary_req {
    struct cf_async a;
    struct cf_viewer v;
    struct cf_node node;
    struct answer ans;
    json_t *json;
};

static void summary_run(struct cf_async *a)
{
    struct summary_req *q = (struct summary_req *)a;
    struct cf_reader *rd = NULL;
    struct summary s;
    json_t *w = json_array();
    for (unsigned i = 0; i < sizeof widths / sizeof widths[0]; i++)
        json_array_append_new(w, json_integer(widths[i]));
    enum cf_status st = open_summary(a->app, &q->v, &q->node, &rd, &s);
    if (st == CF_OK) {
        q->json = json_pack("{s:I, s:o, s:s}", "pages", (json_int_t)(s.state == SUM_READY ? s.pages : 0), "widths", w,
                            "status", s.state == SUM_READY ? "ready" : "unsupported");
        if (s.state != SUM_READY)
            json_object_set_new(q->json, "reason", json_string(s.why));
    } else if (st == CF_EBUSY) {
        q->json = json_pack("{s:i, s:o, s:s}", "pages", 0, "widths", w, "status", "pending");
        q->ans.retry_after = RETRY_PENDING_S;
    } else if (st == CF_EUNAVAIL) {
        json_decref(w);
        fail(&q->ans, 503, "unavailable", "page rendering is not available right now", RETRY_UNAVAIL_S);
    } else {
        json_decref(w);
        fail(&q->ans, 500, "internal", NULL, NULL);
    }
    cf_reader_free(rd);
    q->ans.http = q->ans.http != 0 ? q->ans.http : 200;
}

static void respond_error(struct cf_req *r, const struct answer *a)
{
    if (a->retry_after != NULL)
        cf_add_header_str(r, "retry-after", a->retry_after);
    cf_respond_error(r, a->http != 0 ? a->http : 500, a->code != NULL ? a->code : "internal", a->message);
}

static void summary_reply(struct cf_req *r, struct cf_async *a)
{
    struct summary_req *q = (struct summary_req *)a;
    if (q->ans.http != 200 || q->json == NULL) {
        respond_error(r, &q->ans);
        return;
    }
    if (q->ans.retry_after != NULL)
        cf_add_header_str(r, "retry-after", q->ans.retry_after);
    cf_add_header_str(r, "cache-control", "no-store");
    cf_respond_json(r, 200, q->json);
    q->json = NULL;
}

static void summary_free(struct cf_async *a)
{
    struct summary_req *q = (struct summary_req *)a;
    json_decref(q->json);
    cf_node_clear(&q->node);
    free(q);
}

/* Maps a render that did not produce an image to the answer. */
static void render_failed(struct answer *a, const struct cf_render_job *j)
{
    if (j->status == CF_EUNAVAIL) {
        fail(a, 503, "unavailable", "the renderer failed; try again", RETRY_UNAVAIL_S);
        return;
    }
    if (j->status != CF_OK) {
        fail(a, 500, "internal", NULL, NULL);
        return;
    }
    switch (j->result) {
    case CF_RENDER_NO_PAGE:
        fail(a, 404, "not_found", "no such page", NULL);
        return;
    case CF_RENDER_TIMEOUT:
        fail(a, 503, "unavailable", "rendering took too long; try again", RETRY_UNAVAIL_S);
        return;
    default: /* unsupported, malformed, too large, failed */
        fail(a, 422, "render_failed", "this page cannot be rendered", NULL);
        return;
    }
}

/*
 * A page image: a state machine whose steps run on workers, and whose renders run on the render
 * threads without a worker waiting for them (cf_render_submit_async):
 *
 *   STEP_OPEN (worker)      summary, cached page → COMPOSED's submit, or the page's render → RENDERED
 *   STEP_RENDERED (worker)  after the page's render: caches it, then the watermark's compose → COMPOSED
 *   STEP_COMPOSED (worker)  after the compose: the image and its provenance event → ANSWER
 *   STEP_ANSWER (loop)      the answer, if the client is still there; then the request is freed
 *
 * A render's completion comes back to the request's loop (img_back), which checks whether the client
 * went away (the request guard, http.h) and sends the request on to a worker for the next step: a
 * page rendered for a client that left is still cached, but no watermark is composed for no one.
 */
enum img_step { STEP_OPEN, STEP_RENDERED, STEP_COMPOSED, STEP_ANSWER };

struct img_req {
    struct cf_job job;              /* worker steps and returns to the loop (work.h) */
    struct cf_req *r;               /* watched: NULL once the client is gone (loop thread only) */
    const struct cf_app *app;
    bool gone;                      /* the client went away (set by the loop before a worker step) */
    enum img_step step;
    struct cf_viewer v;
    struct cf_node node;
    unsigned page, width;
    struct cf_reader *rd;           /* the file's current version */
    struct cf_render_job rj;        /* the render under way */
    struct source src;              /* its input */
    uint8_t *pdf;                   /* an office document's cached PDF (the page's input) */
    size_t pdf_len;
    uint8_t *plain;                 /* the page without a watermark (the compose's input) */
    size_t plain_len;
    struct answer ans;
    uint8_t *img;                   /* the answer's image */
    size_t img_len;
};

/* Queues q's render (q->rj, input q->src). True: handed to the render family (the request comes back
 * through img_back); false: refused, with the answer set. */
static bool img_submit(struct img_req *q, enum img_step next)
{
    job_input(&q->rj, &q->src);
    q->step = next;
    enum cf_status st = cf_render_submit_async(&q->rj, &q->job);
    if (st == CF_OK)
        return true;
    source_clear(&q->src);
    q->step = STEP_ANSWER;
    if (st == CF_EBUSY)
        fail(&q->ans, 503, "render_busy", "the renderers are busy; try again", RETRY_PENDING_S);
    else
        fail(&q->ans, 503, "unavailable", "page rendering is not available right now", RETRY_UNAVAIL_S);
    return false;
}

/* The watermark, per request, on the page in q->plain. */
static bool img_compose(struct img_req *q)
{
    memset(&q->rj, 0, sizeof q->rj);
    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
    const char *lines[3] = {q->v.label, q->v.ip, when};
    cf_render_wm_set(&q->rj, lines, 3, q->app->cfg->render.watermark_opacity);
    q->rj.op = CF_RENDER_OP_COMPOSE;
    q->rj.kind = CF_RENDER_WEBP;
    source_mem(&q->src, q->plain, q->plain_len);
    return img_submit(q, STEP_COMPOSED);
}

/* STEP_OPEN: true when handed to the render family. */
static bool img_open(struct img_req *q)
{
    struct summary s;
    q->step = STEP_ANSWER;
    enum cf_status st = open_summary(q->app, &q->v, &q->node, &q->rd, &s);
    if (st == CF_EBUSY) {
        fail(&q->ans, 503, "pending", "the pages are being prepared", RETRY_PENDING_S);
        return false;
    }
    if (st == CF_EUNAVAIL) {
        fail(&q->ans, 503, "unavailable", "page rendering is not available right now", RETRY_UNAVAIL_S);
        return false;
    }
    if (st != CF_OK) {
        fail(&q->ans, 500, "internal", NULL, NULL);
        return false;
    }
    if (s.state != SUM_READY) {
        fail(&q->ans, 415, "no_preview", "this file has no page preview", NULL);
        return false;
    }
    if (q->page > s.pages) {
        fail(&q->ans, 404, "not_found", "no such page", NULL);
        return false;
    }
    st = cf_derived_get(q->rd, slot_page(q->page, q->width), &q->plain, &q->plain_len);
    if (st == CF_OK)
        return img_compose(q);
    if (st != CF_ENOTFOUND) {
        fail(&q->ans, 500, "internal", NULL, NULL);
        return false;
    }
    /* Lazily: render it now (and cache it when it comes back). */
    memset(&q->rj, 0, sizeof q->rj);
    enum cf_render_kind kind = cf_render_kind_of(q->node.mime != NULL ? q->node.mime : "");
    if (office_kind(kind)) {
        if (cf_derived_get(q->rd, slot_pdf(), &q->pdf, &q->pdf_len) != CF_OK) {
            fail(&q->ans, 500, "internal", NULL, NULL);
            return false;
        }
        source_mem(&q->src, q->pdf, q->pdf_len);
        kind = CF_RENDER_PDF;
    } else {
        source_content(&q->src, q->rd);
    }
    q->rj.op = CF_RENDER_OP_PAGE;
    q->rj.kind = kind;
    q->rj.page = q->page;
    q->rj.width = q->width;
    return img_submit(q, STEP_RENDERED);
}

/* STEP_RENDERED: the page's render is back. True when the compose was handed on. */
static bool img_rendered(struct img_req *q)
{
    source_clear(&q->src);
    q->step = STEP_ANSWER;
    if (q->rj.status != CF_OK || q->rj.result != CF_RENDER_OK) {
        render_failed(&q->ans, &q->rj);
        return false;
    }
    q->plain = q->rj.out;
    q->plain_len = q->rj.out_len;
    q->rj.out = NULL;
    if (cf_derived_put(q->rd, slot_page(q->page, q->width), q->plain, q->plain_len) != CF_OK)
        cf_log_warn("pages: cannot cache a rendered page");
    if (q->gone)
        return false; /* cached for the next viewer; no watermark for no one */
    return img_compose(q);
}

/* STEP_COMPOSED: the watermarked page is back. */
static void img_composed(struct img_req *q)
{
    source_clear(&q->src);
    q->step = STEP_ANSWER;
    if (q->rj.status != CF_OK || q->rj.result != CF_RENDER_OK) {
        render_failed(&q->ans, &q->rj);
        return;
    }
    q->img = q->rj.out;
    q->img_len = q->rj.out_len;
    q->rj.out = NULL;
    q->ans.http = 200;
    page_view_event(&q->v, q->app->store, &q->node, q->page, q->width);
}

/* A worker step. False: handed to the render family (it comes back through img_back). */
static bool img_run(struct cf_job *job)
{
    struct img_req *q = (struct img_req *)(void *)job;
    switch (q->step) {
    case STEP_OPEN:
        return !img_open(q);
    case STEP_RENDERED:
        return !img_rendered(q);
    case STEP_COMPOSED:
        img_composed(q);
        return true;
    case STEP_ANSWER:
        break;
    }
    return true;
}

static void img_free(struct img_req *q)
{
    source_clear(&q->src);
    cf_render_job_clear(&q->rj);
    cf_reader_free(q->rd);
    free(q->pdf);
    free(q->plain);
    free(q->img);
    cf_node_clear(&q->node);
    free(q);
}

static void img_reply(struct cf_req *r, struct img_req *q)
{
    if (q->ans.http != 200 || q->img == NULL) {
        respond_error(r, &q->ans);
        return;
    }
    cf_add_header_str(r, "cache-control", "no-store");
    cf_add_header_str(r, "x-content-type-options", "nosniff");
    cf_add_header_str(r, "cross-origin-resource-policy", "same-origin");
    cf_add_header_str(r, "content-disposition", "inline");
    cf_respond_text(r, 200, "image/webp", (const char *)q->img, q->img_len);
}

/* On the request's loop: a worker step ended, or a render came back. */
static void img_back(struct cf_job *job)
{
    struct img_req *q = (struct img_req *)(void *)job;
    if (q->step == STEP_RENDERED || (q->step == STEP_COMPOSED && q->r != NULL)) {
        q->gone = q->r == NULL;
        cf_work_submit(&q->job); /* the next step, on a worker */
        return;
    }
    if (q->r != NULL) {
        cf_req_unwatch(q->r);
        img_reply(q->r, q);
    }
    img_free(q);
}

/* ---- entry points ------------------------------------------------------------------------------ */

void cf_pages_viewer_init(struct cf_viewer *v, struct cf_req *r)
{
    memset(v, 0, sizeof *v);
    snprintf(v->ip, sizeof v->ip, "%s", r->ip);
    h2o_iovec_t ua = cf_header(r, "user-agent");
    char *uas = ua.base != NULL ? cf_text_clean(ua.base, ua.len, sizeof v->user_agent - 1) : NULL;
    if (uas != NULL)
        snprintf(v->user_agent, sizeof v->user_agent, "%s", uas);
    free(uas);
}

static bool node_ok_or_respond(struct cf_req *r, const struct cf_node *node)
{
    if (node->type != CF_NODE_FILE) {
        cf_respond_status(r, CF_EINVAL, "not a file");
        return false;
    }
    return true;
}

void cf_pages_summary(struct cf_req *r, const struct cf_viewer *v, const struct cf_node *node)
{
    if (!node_ok_or_respond(r, node))
        return;
    struct summary_req *q = cf_xcalloc(1, sizeof *q);
    q->v = *v;
    node_copy(&q->node, node);
    q->a.run = summary_run;
    q->a.reply = summary_reply;
    q->a.free = summary_free;
    cf_async_start(r, &q->a);
}

/* Parses the page number (path capture) and the width (?w=, default DEFAULT_WIDTH). */
static bool page_args_or_respond(struct cf_req *r, h2o_iovec_t pn, unsigned *page, unsigned *width)
{
    uint64_t n = 0, w = DEFAULT_WIDTH;
    h2o_iovec_t v;
    bool bad = false;
    if (pn.len == 0 || pn.len > 7 || cf_parse_u64(pn.base, pn.len, PAGE_MAX, &n) != CF_OK || n == 0) {
        cf_respond_status(r, CF_EINVAL, "the page is a number from 1");
        return false;
    }
    if (cf_query(r, "w", &v, &bad) && (v.len > 5 || cf_parse_u64(v.base, v.len, 100000, &w) != CF_OK))
        bad = true;
    if (bad || width_index((unsigned)w) < 0) {
        cf_respond_status(r, CF_EINVAL, "w must be one of 480, 960, 1600");
        return false;
    }
    *page = (unsigned)n;
    *width = (unsigned)w;
    return true;
}

void cf_pages_image(struct cf_req *r, const struct cf_viewer *v, const struct cf_node *node, h2o_iovec_t page)
{
    unsigned n, w;
    if (!node_ok_or_respond(r, node) || !page_args_or_respond(r, page, &n, &w))
        return;
    rate_limit = r->app->cfg->render.pages_per_minute;
    pthread_once(&limits_once, limits_init);
    uint8_t key[1 + CF_ID_LEN + sizeof v->ip];
    size_t kl = viewer_key(v, key);
    uint64_t retry;
    struct cf_throttle_ticket t;
    if (!cf_throttle_reserve(rate, key, kl, cf_now_ms(), &retry, &t)) {
        char ra[24];
        snprintf(ra, sizeof ra, "%llu", (unsigned long long)retry);
        cf_add_header_str(r, "retry-after", ra);
        cf_respond_status(r, CF_ERATE, "too many pages: slow down");
        return;
    }
    struct img_req *q = cf_xcalloc(1, sizeof *q);
    q->app = r->app;
    q->v = *v;
    node_copy(&q->node, node);
    q->page = n;
    q->width = w;
    q->step = STEP_OPEN;
    q->job.run = img_run;
    q->job.done = img_back;
    q->job.reply_to = &r->loop->work_done;
    cf_req_watch(r, &q->r);
    cf_work_submit(&q->job);
}

/* Members: view is enough for pages (the level that view-only members have). */
void cf_h_file_pages(struct cf_req *r)
{
    struct cf_node n;
    enum cf_level level;
    if (!cf_acl_param_or_respond(r, 0, CF_LEVEL_VIEW, &n, &level))
        return;
    struct cf_viewer v;
    cf_pages_viewer_init(&v, r);
    cf_pages_member(&v, r);
    cf_pages_summary(r, &v, &n);
    cf_node_clear(&n);
}

void cf_h_file_page(struct cf_req *r)
{
    struct cf_node n;
    enum cf_level level;
    if (!cf_acl_param_or_respond(r, 0, CF_LEVEL_VIEW, &n, &level))
        return;
    struct cf_viewer v;
    cf_pages_viewer_init(&v, r);
    cf_pages_member(&v, r);
    cf_pages_image(r, &v, &n, r->params[1]);
    cf_node_clear(&n);
}

void cf_pages_member(struct cf_viewer *v, struct cf_req *r)
{
    const struct cf_user *u = &r->who.user;
    v->tenant = u->tenant;
    v->actor_type = CF_ACTOR_USER;
    v->actor = u->id;
    snprintf(v->actor_name, sizeof v->actor_name, "%s", u->username != NULL ? u->username : "");
    const char *name = u->display_name != NULL && u->display_name[0] != '\0' ? u->display_name : u->username;
    snprintf(v->label, sizeof v->label, "%s", name != NULL ? name : "");
}
