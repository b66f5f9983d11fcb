/*
 * provenance.c: querying the provenance log: GET /api/v1/audit (admins and auditors) and
 * GET /api/v1/files/{id}/activity (managers of the node), as JSON or CSV.
 *
 * Scans go newest first through the node or actor index when the query names one, else through the
 * whole tenant log, and stop after MAX_SCAN events: a selective filter over a long log answers with
 * fewer items and a next_cursor to continue, never with an unbounded scan. A transfer appears once,
 * as its "began" event joined with its end record (range, bytes sent, completed); end records are
 * not listed on their own. Other tenants' events are unreachable: every key starts with the tenant.
 *
 * A node's activity shows its caller only what they may see (the audit log is for admins and
 * auditors and is shown whole): a manager through a grant deep in someone's private space must not
 * learn the names of the folders above the grant from the paths stored in the events, nor the ids of
 * folders the node was moved out of. A stored path is shown whole when it lies in a space whose every
 * folder the caller may view (their own private space; the tenant space for those who may view its
 * root: levels only ever add up downwards). Elsewhere it keeps, from the node up, only the folder
 * names that match, at the same distance, a folder above the node now that the caller may view; the
 * rest becomes "…" (such a path has no leading '/'). A `from_parent` the caller cannot view is null.
 *
 * `name=TEXT` (issue 21) finds the nodes first, through the name index (storage/search.h, the same
 * normalisation and path rule as GET /api/v1/search; admins and auditors see every node of their
 * tenant, trashed ones included), at most MAX_NAME_NODES of them, and answers the events of those
 * nodes: one node-index scan each, merged newest first. The cursor stays an event seq: a page keeps
 * only events above the highest seq at which any node's scan stopped, so the next page loses none.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "acl.h"
#include "audit.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "search.h"

#define MAX_SCAN 20000
#define JSON_LIMIT_DEFAULT 100
#define JSON_LIMIT_MAX 1000
#define CSV_LIMIT_MAX 100000
#define MAX_ACTIONS 32
#define MAX_PLACE_DEPTH 64 /* ancestors compared with stored paths; the names of deeper ones are hidden */
#define MAX_NAME_NODES 64  /* nodes a name= query may resolve to (more: 400, be more specific) */
#define NAME_SCAN_STEP 4096

/* Where a node is now, as the caller of its activity may see it: the names of its ancestors, nearest
 * first, up to the first one the caller may not view (or the space root, which has no name in a
 * path). */
struct place {
    struct cf_actor actor;
    const char *names[MAX_PLACE_DEPTH]; /* pool strings */
    size_t n;
    const char *own_space;              /* "private:USERNAME", as events name the caller's space */
    bool tenant_space;                  /* the caller may view the tenant space's root, so all of it */
};

struct query {
    struct cf_req *r;
    struct place *place;              /* node activity: redact to this; NULL for the audit log */
    const char *actions[MAX_ACTIONS]; /* pool strings */
    size_t nactions;
    h2o_iovec_t ip;
    uint64_t since, until;           /* ms, inclusive; until 0: no bound */
    size_t limit;
    json_t *items;                   /* output events */
    bool done;                       /* an event older than since was reached */
};

/* "2026-11-23T18:35:00Z", "2026-11-23T18:35:00.123Z", "2026-11-23" or milliseconds since the epoch. */
static bool parse_time(const char *s, size_t n, uint64_t *out)
{
    if (n > 0 && n <= 20 && strspn(s, "0123456789") == n)
        return cf_parse_u64(s, n, UINT64_MAX, out) == CF_OK;
    char buf[40];
    if (n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    struct tm tm = {0};
    unsigned ms = 0;
    int used = 0;
    if (n == 10) {
        if (sscanf(buf, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &used) != 3 || used != 10)
            return false;
    } else if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                      &tm.tm_min, &tm.tm_sec, &used) == 6 && used == 19) {
        const char *rest = buf + 19;
        if (rest[0] == '.') {
            int l = 0;
            if (sscanf(rest, ".%3u%n", &ms, &l) != 1 || l != 4)
                return false;
            rest += 4;
        }
        if (strcmp(rest, "Z") != 0)
            return false;
    } else {
        return false;
    }
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t < 0)
        return false;
    *out = (uint64_t)t * 1000 + ms;
    return true;
}

/* The API form of a stored event: seq, hash, and for a transfer its end. */
static json_t *event_out(struct cf_store *store, const struct cf_id *tenant, const struct cf_audit_event *e, json_t *ev)
{
    char mac[65];
    cf_hex_encode(e->mac, 32, mac);
    json_object_set_new(ev, "seq", json_integer((json_int_t)e->seq));
    json_object_set_new(ev, "hash", json_string(mac));
    json_t *detail = json_object_get(ev, "detail");
    const char *phase = json_string_value(json_object_get(detail, "phase"));
    if (phase != NULL && strcmp(phase, "began") == 0) {
        struct cf_audit_event end;
        json_t *transfer = json_pack("{s:O?, s:n, s:b}", "range", json_object_get(detail, "range"), "bytes_sent",
                                     "completed", 0);
        if (cf_audit_end_of(store, tenant, e->seq, &end) == CF_OK) {
            json_t *ej = json_loads(end.json, 0, NULL);
            json_t *ed = json_object_get(ej, "detail");
            json_object_set(transfer, "bytes_sent", json_object_get(ed, "bytes_sent"));
            json_object_set(transfer, "completed", json_object_get(ed, "completed"));
            json_object_set_new(transfer, "ended_at", json_incref(json_object_get(ej, "at")));
            json_decref(ej);
            cf_audit_event_clear(&end);
        }
        json_object_set_new(ev, "transfer", transfer);
    }
    return ev;
}

/* ---- node activity: what the caller may see ------------------------------------------------------ */

static enum cf_status place_of(struct cf_req *r, const struct cf_node *n, struct place *pl)
{
    struct cf_node cur = {0};
    enum cf_level level;
    struct cf_id walk = n->parent;
    enum cf_status st = CF_OK;
    struct cf_tenant t;
    pl->actor = cf_actor_of(r);
    pl->n = 0;
    size_t own_len = sizeof "private:" + strlen(r->who.user.username);
    char *own = h2o_mem_alloc_pool(&r->req->pool, own_len);
    snprintf(own, own_len, "private:%s", r->who.user.username);
    pl->own_space = own;
    pl->tenant_space = false;
    if ((st = cf_tenant_get(r->app->store, &r->who.user.tenant, &t)) != CF_OK)
        return st;
    st = cf_acl_level(&pl->actor, &t.root, &cur, &level);
    cf_tenant_clear(&t);
    if (st != CF_OK && st != CF_ENOTFOUND)
        goto out;
    pl->tenant_space = st == CF_OK && level >= CF_LEVEL_VIEW;
    st = CF_OK;
    while (pl->n < MAX_PLACE_DEPTH && !cf_id_is_zero(&walk)) {
        cf_node_clear(&cur);
        st = cf_acl_level(&pl->actor, &walk, &cur, &level);
        if (st == CF_ENOTFOUND || (st == CF_OK && level < CF_LEVEL_VIEW)) {
            st = CF_OK;
            break;
        }
        if (st != CF_OK || cf_id_is_zero(&cur.parent)) /* a storage error; or the root: no name in paths */
            break;
        pl->names[pl->n++] = h2o_strdup(&r->req->pool, cur.name, SIZE_MAX).base;
        walk = cur.parent;
    }
out:
    cf_node_clear(&cur);
    return st;
}

/* The stored path "/a/b/node" as the caller may see it: each folder name kept, from the node up,
 * while it matches the caller's view of the folder at that distance now; the rest is "…". */
static const char *redact_path(struct cf_req *r, const struct place *pl, const char *path)
{
    size_t len = strlen(path);
    if (len == 0 || path[0] != '/' || len == 1)
        return path; /* "/": a space root itself */
    const char *keep = memrchr(path, '/', len); /* the '/' before the node's own name */
    for (size_t d = 0; keep > path; d++) {
        const char *prev = memrchr(path, '/', (size_t)(keep - path));
        size_t cl = (size_t)(keep - prev - 1);
        if (d == pl->n || strlen(pl->names[d]) != cl || memcmp(pl->names[d], prev + 1, cl) != 0)
            break;
        keep = prev;
    }
    if (keep == path)
        return path;
    static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026 */
    size_t rest = strlen(keep);
    char *out = h2o_mem_alloc_pool(&r->req->pool, sizeof ellipsis - 1 + rest + 1);
    memcpy(out, ellipsis, sizeof ellipsis - 1);
    memcpy(out + sizeof ellipsis - 1, keep, rest + 1);
    return out;
}

static void redact(struct query *q, json_t *ev)
{
    json_t *node = json_object_get(ev, "node");
    const char *path = json_string_value(json_object_get(node, "path"));
    const char *space = json_string_value(json_object_get(node, "space"));
    bool whole = space != NULL && (strcmp(space, q->place->own_space) == 0 ||
                                   (q->place->tenant_space && strcmp(space, "tenant") == 0));
    if (path != NULL && !whole) {
        const char *seen = redact_path(q->r, q->place, path);
        if (seen != path)
            json_object_set_new(node, "path", json_string(seen));
    }
    json_t *detail = json_object_get(ev, "detail");
    const char *from = json_string_value(json_object_get(detail, "from_parent"));
    if (from != NULL) {
        struct cf_id id;
        struct cf_node pn = {0};
        enum cf_level level = CF_LEVEL_NONE;
        bool visible = cf_id_parse(from, strlen(from), &id) == CF_OK &&
                       cf_acl_level(&q->place->actor, &id, &pn, &level) == CF_OK && level >= CF_LEVEL_VIEW;
        cf_node_clear(&pn);
        if (!visible)
            json_object_set_new(detail, "from_parent", json_null());
    }
}

static bool visit(void *ctx, const struct cf_audit_event *e)
{
    struct query *q = ctx;
    json_t *ev = json_loads(e->json, 0, NULL);
    if (ev == NULL)
        return true;
    const char *phase = json_string_value(json_object_get(json_object_get(ev, "detail"), "phase"));
    uint64_t at = 0;
    const char *ats = json_string_value(json_object_get(ev, "at"));
    bool keep = ats != NULL && parse_time(ats, strlen(ats), &at);
    if (keep && at < q->since) {
        /* newest first: everything below is older still */
        q->done = true;
        json_decref(ev);
        return false;
    }
    keep = keep && (q->until == 0 || at <= q->until) && (phase == NULL || strcmp(phase, "end") != 0);
    if (keep && q->nactions > 0) {
        const char *a = json_string_value(json_object_get(ev, "action"));
        bool hit = false;
        for (size_t i = 0; i < q->nactions && a != NULL; i++)
            hit = hit || strcmp(a, q->actions[i]) == 0;
        keep = hit;
    }
    if (keep && q->ip.base != NULL) {
        const char *ip = json_string_value(json_object_get(ev, "ip"));
        keep = ip != NULL && strlen(ip) == q->ip.len && memcmp(ip, q->ip.base, q->ip.len) == 0;
    }
    if (keep && q->place != NULL)
        redact(q, ev);
    if (keep)
        json_array_append_new(q->items, event_out(q->r->app->store, &q->r->who.user.tenant, e, ev));
    else
        json_decref(ev);
    return json_array_size(q->items) < q->limit;
}

/* ---- CSV (RFC 4180, formula-injection safe) ------------------------------------------------------ */

static void buf_add(struct cf_csv *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap = b->cap == 0 ? 4096 : b->cap * 2;
        b->p = cf_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* One cell: quoted when it holds a comma, quote, CR or LF; a leading = + - @ TAB or CR (which
 * spreadsheets would run as a formula) is neutralised with a leading apostrophe. */
void cf_csv_cell(struct cf_csv *b, const char *s, bool first)
{
    if (!first)
        buf_add(b, ",", 1);
    if (s == NULL)
        return;
    bool formula = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r';
    bool quote = formula || strpbrk(s, ",\"\r\n") != NULL;
    if (quote)
        buf_add(b, "\"", 1);
    if (formula)
        buf_add(b, "'", 1);
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '"')
            buf_add(b, "\"\"", 2);
        else
            buf_add(b, p, 1);
    }
    if (quote)
        buf_add(b, "\"", 1);
}

static const char *str_at(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (b != NULL)
        v = json_object_get(v, b);
    return json_string_value(v);
}

static void csv_row(struct cf_csv *out, json_t *ev)
{
    char num[32], bytes[32];
    snprintf(num, sizeof num, "%lld", (long long)json_integer_value(json_object_get(ev, "seq")));
    json_t *t = json_object_get(ev, "transfer");
    json_t *bs = json_object_get(t, "bytes_sent");
    if (json_is_integer(bs))
        snprintf(bytes, sizeof bytes, "%lld", (long long)json_integer_value(bs));
    else
        bytes[0] = '\0';
    json_t *completed = json_object_get(t, "completed");
    char *detail = json_dumps(json_object_get(ev, "detail"), JSON_COMPACT | JSON_ENCODE_ANY);
    const char *cells[] = {
        num,
        str_at(ev, "at", NULL),
        str_at(ev, "action", NULL),
        str_at(ev, "actor", "type"),
        str_at(ev, "actor", "id"),
        str_at(ev, "actor", "name"),
        str_at(ev, "node", "id"),
        str_at(ev, "node", "name"),
        str_at(ev, "node", "path"),
        str_at(ev, "share", NULL),
        str_at(ev, "ip", NULL),
        str_at(ev, "user_agent", NULL),
        str_at(ev, "result", NULL),
        str_at(ev, "transfer", "range"),
        bytes,
        t == NULL ? "" : json_is_true(completed) ? "true" : "false",
        detail,
        str_at(ev, "hash", NULL),
    };
    for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++)
        cf_csv_cell(out, cells[i], i == 0);
    buf_add(out, "\r\n", 2);
    free(detail);
}

static void respond_events(struct cf_req *r, struct query *q, uint64_t next, bool csv)
{
    if (!csv) {
        char cur[24];
        snprintf(cur, sizeof cur, "%llu", (unsigned long long)next);
        cf_respond_json(r, 200, json_pack("{s:O, s:o}", "events", q->items,
                                          "next_cursor", next != 0 && !q->done ? json_string(cur) : json_null()));
        return;
    }
    struct cf_csv out = {0};
    static const char header[] = "seq,at,action,actor_type,actor_id,actor_name,node_id,node_name,node_path,share,ip,"
                                 "user_agent,result,range,bytes_sent,completed,detail,hash\r\n";
    buf_add(&out, header, sizeof header - 1);
    size_t i;
    json_t *ev;
    json_array_foreach(q->items, i, ev) csv_row(&out, ev);
    static const char disp[] = "attachment; filename=\"provenance.csv\"";
    cf_add_header(r, "content-disposition", disp, sizeof disp - 1);
    if (next != 0 && !q->done) {
        char cur[24];
        int l = snprintf(cur, sizeof cur, "%llu", (unsigned long long)next);
        cf_add_header(r, "x-next-cursor", cur, (size_t)l);
    }
    cf_respond_text(r, 200, "text/csv; charset=utf-8", out.p, out.len);
    free(out.p);
}

/* Common query parameters; false if it answered 400. */
static bool parse_query(struct cf_req *r, struct query *q, bool *csv, uint64_t *before)
{
    h2o_iovec_t v;
    bool bad = false;
    *csv = false;
    *before = 0;
    h2o_iovec_t accept = cf_header(r, "accept");
    if (accept.base != NULL && accept.len >= 8 && strncasecmp(accept.base, "text/csv", 8) == 0)
        *csv = true;
    if (cf_query(r, "format", &v, &bad)) {
        if (h2o_memis(v.base, v.len, H2O_STRLIT("csv")))
            *csv = true;
        else if (!h2o_memis(v.base, v.len, H2O_STRLIT("json")))
            bad = true;
    }
    uint64_t limit = *csv ? CSV_LIMIT_MAX : JSON_LIMIT_DEFAULT;
    if (!bad && cf_query(r, "limit", &v, &bad) &&
        (cf_parse_u64(v.base, v.len, *csv ? CSV_LIMIT_MAX : JSON_LIMIT_MAX, &limit) != CF_OK || limit == 0))
        bad = true;
    q->limit = (size_t)limit;
    if (!bad && cf_query(r, "cursor", &v, &bad) &&
        (cf_parse_u64(v.base, v.len, UINT64_MAX, before) != CF_OK || *before == 0))
        bad = true;
    if (!bad && cf_query(r, "since", &v, &bad) && !parse_time(v.base, v.len, &q->since))
        bad = true;
    if (!bad && cf_query(r, "until", &v, &bad) && !parse_time(v.base, v.len, &q->until))
        bad = true;
    if (!bad && cf_query(r, "ip", &v, &bad))
        q->ip = v;
    if (!bad && cf_query(r, "action", &v, &bad)) {
        const char *p = v.base, *end = v.base + v.len;
        while (p < end && !bad) {
            const char *c = memchr(p, ',', (size_t)(end - p));
            const char *e = c != NULL ? c : end;
            if (e == p || q->nactions == MAX_ACTIONS)
                bad = true;
            else
                q->actions[q->nactions++] = h2o_strdup(&r->req->pool, p, (size_t)(e - p)).base;
            p = e + 1;
        }
    }
    if (bad) {
        cf_respond_status(r, CF_EINVAL,
                          "malformed query: node, actor, action (comma list), ip, since/until (RFC 3339 or ms), "
                          "limit, cursor, format=json|csv");
        return false;
    }
    return true;
}

/* ---- the audit log by name ----------------------------------------------------------------------- */

/* The ids of the tenant's nodes that match q (trashed ones included): CF_OK, CF_ETOOBIG past
 * MAX_NAME_NODES, CF_EUNAVAIL without an index. */
static enum cf_status nodes_named(struct cf_req *r, const struct cf_search_query *q, struct cf_id *ids, size_t *n)
{
    struct cf_id after, last;
    bool have_after = false, end = false;
    *n = 0;
    while (!end) {
        size_t got;
        enum cf_status st = cf_search_candidates(r->app->store, &r->who.user.tenant, q, have_after ? &after : NULL,
                                                 CF_SEARCH_TRASHED, MAX_NAME_NODES + 1 - *n, NAME_SCAN_STEP,
                                                 ids + *n, NULL, &got, &last, &end);
        if (st != CF_OK)
            return st;
        *n += got;
        if (*n > MAX_NAME_NODES)
            return CF_ETOOBIG;
        after = last;
        have_after = true;
    }
    return CF_OK;
}

static json_int_t seq_of(json_t *ev)
{
    return json_integer_value(json_object_get(ev, "seq"));
}

static int newest_first(const void *a, const void *b)
{
    json_int_t x = seq_of(*(json_t *const *)a), y = seq_of(*(json_t *const *)b);
    return (x < y) - (x > y);
}

static void audit_by_name(struct cf_req *r, struct query *proto, h2o_iovec_t v, uint64_t before, bool csv)
{
    struct cf_search_query sq;
    const char *why;
    struct cf_id ids[MAX_NAME_NODES + 1];
    size_t n;
    if (cf_search_query_parse(v.base, v.len, &sq, &why) != CF_OK) {
        cf_respond_status(r, CF_EINVAL, why);
        return;
    }
    enum cf_status st = nodes_named(r, &sq, ids, &n);
    cf_search_query_clear(&sq);
    if (st == CF_ETOOBIG) {
        cf_respond_status(r, CF_EINVAL, "name matches more than 64 nodes: be more specific (a path such as folder/name)");
        return;
    }
    if (st != CF_OK) {
        cf_respond_status(r, st, st == CF_EUNAVAIL ? "search is not available right now" : NULL);
        return;
    }
    /* Each node's newest events below before, at most limit each; what a scan did not reach lies below
     * its stopping point, and the page keeps only events above the highest such point. */
    json_t *all = json_array();
    uint64_t floor = 0;
    bool done_all = true;
    for (size_t i = 0; i < n && st == CF_OK; i++) {
        struct query q = *proto;
        uint64_t next = 0;
        q.items = json_array();
        q.done = false;
        st = cf_audit_scan(r->app->store, &r->who.user.tenant, CF_AUDIT_BY_NODE, 0, &ids[i], before, MAX_SCAN, visit,
                           &q, &next);
        size_t got = json_array_size(q.items);
        uint64_t stop = 0;
        if (got == q.limit)
            stop = (uint64_t)seq_of(json_array_get(q.items, got - 1)); /* the rest is older than its last */
        else if (next != 0 && !q.done)
            stop = next; /* the scan budget ran out: below next is unvisited */
        if (stop > floor)
            floor = stop;
        done_all = done_all && q.done;
        json_array_extend(all, q.items);
        json_decref(q.items);
    }
    if (st != CF_OK) {
        json_decref(all);
        cf_respond_status(r, st, NULL);
        return;
    }
    size_t total = json_array_size(all);
    json_t **v2 = cf_xmalloc((total + 1) * sizeof *v2);
    for (size_t i = 0; i < total; i++)
        v2[i] = json_array_get(all, i);
    qsort(v2, total, sizeof *v2, newest_first);
    struct query out = *proto;
    out.items = json_array();
    uint64_t next = 0;
    for (size_t i = 0; i < total; i++) {
        if ((uint64_t)seq_of(v2[i]) < floor)
            break;
        if (json_array_size(out.items) == out.limit) {
            next = (uint64_t)seq_of(json_array_get(out.items, out.limit - 1));
            break;
        }
        json_array_append(out.items, v2[i]);
    }
    if (next == 0 && floor != 0)
        next = floor;
    out.done = next == 0 && done_all;
    free(v2);
    json_decref(all);
    respond_events(r, &out, next, csv);
    json_decref(out.items);
}

void cf_h_audit(struct cf_req *r)
{
    struct query q = {.r = r};
    bool csv, bad = false;
    uint64_t before, next = 0;
    h2o_iovec_t v;
    /* Admins and auditors only: the route's CF_ROUTE_AUDIT (route.c). */
    if (!parse_query(r, &q, &csv, &before))
        return;
    enum cf_audit_by by = CF_AUDIT_ALL;
    uint8_t kind = 0;
    struct cf_id id = {0};
    if (cf_query(r, "node", &v, &bad)) {
        by = CF_AUDIT_BY_NODE;
        if (cf_id_parse(v.base, v.len, &id) != CF_OK)
            bad = true;
    }
    if (!bad && cf_query(r, "actor", &v, &bad)) {
        if (by != CF_AUDIT_ALL) {
            bad = true; /* one index at a time */
        } else {
            by = CF_AUDIT_BY_ACTOR;
            kind = CF_ACTOR_USER;
            const char *s = v.base;
            size_t n = v.len;
            if (n > 5 && memcmp(s, "user:", 5) == 0) {
                s += 5;
                n -= 5;
            } else if (n > 6 && memcmp(s, "share:", 6) == 0) {
                kind = CF_ACTOR_SHARE;
                s += 6;
                n -= 6;
            }
            if (cf_id_parse(s, n, &id) != CF_OK &&
                (kind != CF_ACTOR_USER || cf_user_find(r->app->store, &r->who.user.tenant, s, n, &id) != CF_OK))
                cf_id_new(&id); /* an unknown username matches nothing, like an unknown id */
        }
    }
    if (!bad && cf_query(r, "name", &v, &bad)) {
        if (by != CF_AUDIT_ALL || bad)
            bad = true; /* one index at a time */
        else {
            audit_by_name(r, &q, v, before, csv);
            return;
        }
    }
    if (bad) {
        cf_respond_status(r, CF_EINVAL, "node must be an id; actor is user:ID, share:ID or a username; name is text; "
                                        "only one of them");
        return;
    }
    q.items = json_array();
    enum cf_status st = cf_audit_scan(r->app->store, &r->who.user.tenant, by, kind, &id, before, MAX_SCAN, visit, &q,
                                      &next);
    if (st != CF_OK)
        cf_respond_status(r, st, NULL);
    else
        respond_events(r, &q, next, csv);
    json_decref(q.items);
}

void cf_h_file_activity(struct cf_req *r)
{
    struct place place;
    struct query q = {.r = r, .place = &place};
    struct cf_node n;
    enum cf_level level;
    bool csv;
    uint64_t before, next = 0;
    if (!parse_query(r, &q, &csv, &before))
        return;
    if (!cf_acl_param_or_respond(r, 0, CF_LEVEL_MANAGE, &n, &level))
        return;
    enum cf_status st = place_of(r, &n, &place);
    if (st != CF_OK) {
        cf_node_clear(&n);
        cf_respond_status(r, st, NULL);
        return;
    }
    q.items = json_array();
    st = cf_audit_scan(r->app->store, &r->who.user.tenant, CF_AUDIT_BY_NODE, 0, &n.id, before, MAX_SCAN, visit, &q,
                       &next);
    cf_node_clear(&n);
    if (st != CF_OK)
        cf_respond_status(r, st, NULL);
    else
        respond_events(r, &q, next, csv);
    json_decref(q.items);
}
