/*
 * metrics_page.c: GET /metrics, the page. It gathers what a scrape reads beyond the counters (the
 * scanners' state, the audit queue, the store's RocksDB statistics) on a worker thread, has
 * core/metrics.c render the text, and sends it from the loop. Only clients in metrics.allow get
 * here (route.c, CF_ROUTE_ALLOWLIST); others get 404 as for an unknown path.
 */
#include <stdlib.h>

#include "audit.h"
#include "budget.h"
#include "handlers.h"
#include "http.h"
#include "metrics.h"
#include "scan.h"
#include "search.h"

#define MAX_SCANNERS 256 /* scanners looked at per scrape (scan.processes ≤ 64; 0 = cores) */

/* read_all(x): the readings of one scrape. Reads the store's statistics: a worker thread. */
static void read_all(const struct cf_app *app, struct cf_metrics_readings *x)
{
    struct cf_scan_status *ss = cf_xcalloc(MAX_SCANNERS, sizeof *ss);
    size_t nscan = cf_scan_info(ss, MAX_SCANNERS), up = 0;
    for (size_t i = 0; i < nscan; i++)
        up += ss[i].up;
    free(ss);
    x->scanners_up = up;
    x->scanners_down = nscan - up;
    x->audit_queue_depth = cf_audit_queue_depth();
    cf_store_stats(app->store, &x->store);
    struct cf_search_stats ss_index;
    cf_store_search_stats(app->store, &ss_index);
    x->search_entries = ss_index.entries;
    x->search_bytes = ss_index.bytes;
    x->search_ready = ss_index.ready;
    struct cf_body_stats b;
    cf_body_stats(&b);
    x->body_held = b.held;
    x->body_receiving = b.receiving;
    x->body_receiving_peak = b.receiving_peak;
    x->body_paused = b.paused;
    x->body_pauses = b.pauses;
}

struct scrape {
    struct cf_async a; /* first */
    char *text;
    size_t len;
};

static void scrape_run(struct cf_async *a)
{
    struct scrape *s = (struct scrape *)a;
    struct cf_metrics_readings x;
    read_all(a->app, &x);
    cf_metrics_render(&x, &s->text, &s->len);
    a->st = CF_OK;
}

static void scrape_reply(struct cf_req *r, struct cf_async *a)
{
    struct scrape *s = (struct scrape *)a;
    cf_respond_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", s->text, s->len);
}

static void scrape_free(struct cf_async *a)
{
    struct scrape *s = (struct scrape *)a;
    free(s->text);
    free(s);
}

void cf_h_metrics(struct cf_req *r)
{
    /* The address check happened in the pipeline (CF_ROUTE_ALLOWLIST): others never get here. */
    struct scrape *s = cf_xcalloc(1, sizeof *s);
    s->a.run = scrape_run;
    s->a.reply = scrape_reply;
    s->a.free = scrape_free;
    cf_async_start(r, &s->a);
}
