/*
 * dav_props.c: WebDAV dead properties (RFC 4918 §4, §9.2): PROPPATCH, and their copy for COPY.
 * PROPFIND (here too) reads them through storage/davprop.h.
 *
 * PROPPATCH is atomic (RFC 4918 §9.2): the body's set/remove instructions are applied in document
 * order in one store batch, or none is. Live DAV: properties are protected: one of them in a
 * request answers 403 <D:cannot-modify-protected-property> for it and 424 for the rest, and nothing
 * is stored. Any other property is dead (Explorer's Win32* times among them: their namespace is
 * urn:schemas-microsoft-com:) and stored sealed per node, values as davxml.c's canonical fragments,
 * so PROPFIND gives back namespaces, the empty namespace, xml:lang and any Unicode as sent. Limits:
 * storage/davprop.h (1024 properties, 1 MiB of values per node: 507 past them).
 *
 * Thread: the handlers on the loop thread; PROPFIND's answer (dead properties, lock discovery, the
 * Depth 1 listing) and the store writes on workers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acl.h"
#include "audit.h"
#include "config.h"
#include "dav_lock.h"
#include "dav_props.h"
#include "quota.h"

/* ---- PROPFIND ---------------------------------------------------------------------------------- */

/* What a PROPFIND answers about one resource. */
struct dav_props {
    const char *name; /* displayname */
    bool collection;
    const struct cf_node *node; /* NULL for the virtual collections */
};

/* What one PROPFIND reads once for all its responses. */
struct dav_pf {
    struct cf_store *store;
    struct cf_id tenant, user;
    const struct cf_davxml_propfind *q;
    bool quota_read;      /* the caller's usage and limits, read at the first quota property */
    bool quota_ok;
    uint64_t used;        /* DAV:quota-used-bytes: the caller's bytes (docs/API.md "Quotas") */
    bool limited;         /* a limit applies: DAV:quota-available-bytes is answered */
    uint64_t available;   /* the smaller of what the user's and the tenant's limits leave */
};

/* Live properties: RFC 4918 §15 (allprop answers these) and RFC 4331 (only when named). */
enum {
    P_DISPLAYNAME, P_RESOURCETYPE, P_LENGTH, P_TYPE, P_ETAG, P_MODIFIED, P_CREATED, P_LOCKDISCOVERY,
    P_SUPPORTEDLOCK, P_ALLPROP_END, P_QUOTA_AVAILABLE = P_ALLPROP_END, P_QUOTA_USED, P_COUNT
};
static const char *const live[P_COUNT] = {"displayname", "resourcetype", "getcontentlength", "getcontenttype",
                                          "getetag", "getlastmodified", "creationdate", "lockdiscovery",
                                          "supportedlock", "quota-available-bytes", "quota-used-bytes"};

static void fmt_time(uint64_t ms, bool rfc1123, char out[64])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (rfc1123)
        snprintf(out, 64, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday % 7], tm.tm_mday, mo[tm.tm_mon % 12],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    else
        snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
}

/* The caller's usage and limits, once per PROPFIND (RFC 4331). */
static void quota_read(struct dav_pf *pf)
{
    if (pf->quota_read)
        return;
    pf->quota_read = true;
    struct cf_quota q;
    uint64_t total;
    cf_quota_of(pf->store, &pf->tenant, &q);
    if (cf_usage_get(pf->store, &pf->tenant, &pf->user, &pf->used, &total) != CF_OK)
        return;
    pf->quota_ok = true;
    uint64_t avail = UINT64_MAX;
    if (q.user_bytes != 0)
        avail = q.user_bytes > pf->used ? q.user_bytes - pf->used : 0;
    if (q.tenant_bytes != 0) {
        uint64_t t = q.tenant_bytes > total ? q.tenant_bytes - total : 0;
        avail = t < avail ? t : avail;
    }
    pf->limited = avail != UINT64_MAX;
    pf->available = avail;
}

/* Writes live property i of d into b; false when d has no such property (a 404 propstat). */
static bool write_live(struct cf_davxml_buf *b, const struct dav_props *d, int i, bool names_only, struct dav_pf *pf)
{
    const struct cf_node *n = d->node;
    bool file = n != NULL && n->type == CF_NODE_FILE;
    char v[80];
    switch (i) {
    case P_DISPLAYNAME:
        break;
    case P_RESOURCETYPE:
        if (names_only || !d->collection) {
            cf_davxml_ms_prop_text(b, "DAV:", "resourcetype", NULL, 0);
        } else {
            cf_davxml_ms_prop_open(b, "DAV:", "resourcetype");
            cf_davxml_ms_prop_text(b, "DAV:", "collection", NULL, 0);
            cf_davxml_ms_prop_close(b, "DAV:", "resourcetype");
        }
        return true;
    case P_LENGTH:
        if (!file)
            return false;
        snprintf(v, sizeof v, "%llu", (unsigned long long)n->size);
        break;
    case P_TYPE:
        if (!file)
            return false;
        snprintf(v, sizeof v, "%s", n->mime != NULL ? n->mime : "application/octet-stream");
        break;
    case P_ETAG:
        if (n == NULL)
            return false;
        cf_dav_etag(n, v);
        break;
    case P_MODIFIED:
    case P_CREATED:
        if (n == NULL)
            return false;
        fmt_time(i == P_MODIFIED ? n->modified_at : n->created_at, i == P_MODIFIED, v);
        break;
    case P_LOCKDISCOVERY:
    case P_SUPPORTEDLOCK:
        if (names_only || n == NULL)
            cf_davxml_ms_prop_text(b, "DAV:", live[i], NULL, 0);
        else if (i == P_LOCKDISCOVERY)
            cf_dav_lockdiscovery(pf->store, &pf->tenant, b, n);
        else
            cf_dav_supportedlock(b);
        return true;
    case P_QUOTA_AVAILABLE:
    case P_QUOTA_USED:
        if (n == NULL)
            return false;
        quota_read(pf);
        if (!pf->quota_ok || (i == P_QUOTA_AVAILABLE && !pf->limited))
            return false; /* RFC 4331 §3: no limit, no property */
        snprintf(v, sizeof v, "%llu", (unsigned long long)(i == P_QUOTA_USED ? pf->used : pf->available));
        break;
    default:
        return false;
    }
    if (names_only)
        cf_davxml_ms_prop_text(b, "DAV:", live[i], NULL, 0);
    else if (i == P_DISPLAYNAME)
        cf_davxml_ms_prop_text(b, "DAV:", live[i], d->name, strlen(d->name));
    else
        cf_davxml_ms_prop_text(b, "DAV:", live[i], v, strlen(v));
    return true;
}

/* The live property named nm, or -1. */
static int live_index(const struct cf_davxml_name *nm)
{
    if (strcmp(nm->ns, "DAV:") != 0)
        return -1;
    for (int i = 0; i < P_COUNT; i++)
        if (strcmp(nm->local, live[i]) == 0)
            return i;
    return -1;
}

/* One <D:response> for d at href: live properties, then the node's dead ones (RFC 4918 §9.1). */
static void write_response(struct cf_davxml_buf *b, const char *href, size_t hlen, const struct dav_props *d,
                           struct dav_pf *pf)
{
    const struct cf_davxml_propfind *q = pf->q;
    struct cf_davprop *dead = NULL;
    size_t ndead = 0;
    if (d->node != NULL &&
        cf_davprop_list(pf->store, &pf->tenant, &d->node->id, &dead, &ndead) != CF_OK) {
        dead = NULL;
        ndead = 0; /* answered without them: the live ones still hold */
    }
    struct cf_davxml_buf ok = {0}, missing = {0};
    if (q->kind != CF_DAVXML_PROP) {
        bool names = q->kind == CF_DAVXML_PROPNAME;
        for (int i = 0; i < (names ? P_COUNT : P_ALLPROP_END); i++)
            (void)write_live(&ok, d, i, names, pf);
        for (size_t k = 0; !names && k < q->n_names; k++) { /* DAV:include */
            int i = live_index(&q->names[k]);
            if (i >= P_ALLPROP_END)
                (void)write_live(&ok, d, i, false, pf);
        }
        for (size_t k = 0; k < ndead; k++) {
            if (names)
                cf_davxml_ms_prop_text(&ok, dead[k].ns, dead[k].local, NULL, 0);
            else
                cf_davxml_ms_prop_raw(&ok, dead[k].value, dead[k].value_len);
        }
    } else {
        for (size_t k = 0; k < q->n_names; k++) {
            const struct cf_davxml_name *nm = &q->names[k];
            int i = live_index(nm);
            bool found = i >= 0 && write_live(&ok, d, i, false, pf);
            for (size_t j = 0; i < 0 && !found && j < ndead; j++)
                if (strcmp(dead[j].ns, nm->ns) == 0 && strcmp(dead[j].local, nm->local) == 0) {
                    cf_davxml_ms_prop_raw(&ok, dead[j].value, dead[j].value_len);
                    found = true;
                }
            if (!found)
                cf_davxml_ms_prop_text(&missing, nm->ns, nm->local, NULL, 0);
        }
    }
    cf_davxml_ms_response_begin(b, href, hlen);
    if (ok.len > 0 || missing.len == 0) {
        cf_davxml_ms_propstat_begin(b);
        if (ok.len > 0)
            cf_davxml_ms_prop_raw(b, ok.data, ok.len);
        cf_davxml_ms_propstat_end(b, 200);
    }
    if (missing.len > 0) {
        cf_davxml_ms_propstat_begin(b);
        cf_davxml_ms_prop_raw(b, missing.data, missing.len);
        cf_davxml_ms_propstat_end(b, 404);
    }
    cf_davxml_ms_response_end(b);
    cf_davxml_buf_free(&ok);
    cf_davxml_buf_free(&missing);
    cf_davprops_free(dead, ndead);
}

/* A PROPFIND answered on a worker (the dead properties, lock discovery and a Depth 1 listing are
 * storage reads: a big collection must not stall the loop). The request's own resolution and
 * authorisation ran on the loop first, as the API's do. */
struct pf_job {
    struct cf_async a;
    struct cf_davxml_propfind q; /* owned */
    struct cf_actor who;         /* the caller; groups owned (the listing's levels) */
    struct cf_id *groups;
    enum dav_kind kind;          /* DAV_ROOT, DAV_LISTING or DAV_NODE */
    bool one;                    /* Depth 1 */
    char *href;                  /* the request's canonical href */
    char *name;                  /* its displayname */
    struct cf_node node;         /* DAV_NODE (owned) */
    struct cf_node *roots;       /* DAV_LISTING, Depth 1: the caller's shared roots (owned) */
    size_t nroots;
    unsigned max;                /* dav.max_propfind_members */
    struct cf_davxml_buf out;
};

/* The members of the job's collection, each visible one a response; CF_ETOOBIG past j->max. */
static enum cf_status pf_members(struct pf_job *j, struct dav_pf *pf, struct cf_davxml_buf *href)
{
    size_t base_len = href->len, listed = 0;
    uint8_t cursor[CF_CURSOR_LEN];
    bool more = true, have_cursor = false;
    enum cf_status st = CF_OK;
    while (more && st == CF_OK) {
        struct cf_node *items;
        size_t cnt;
        st = cf_children_list(pf->store, &pf->tenant, &j->node.id, have_cursor ? cursor : NULL, 1000, &items, &cnt,
                              cursor, &more);
        if (st != CF_OK)
            break;
        have_cursor = true;
        for (size_t i = 0; i < cnt; i++) {
            struct cf_node cn;
            enum cf_level cl;
            if (st == CF_OK && cf_acl_level(&j->who, &items[i].id, &cn, &cl) == CF_OK) {
                if (cl > CF_LEVEL_NONE && ++listed > j->max) {
                    st = CF_ETOOBIG;
                } else if (cl > CF_LEVEL_NONE) {
                    struct dav_props c = {.name = cn.name, .collection = cn.type == CF_NODE_FOLDER, .node = &cn};
                    href->len = base_len;
                    href->data[base_len] = '\0';
                    cf_dav_href_append(href, cn.name, strlen(cn.name));
                    if (c.collection)
                        cf_dav_raw_append(href, "/");
                    write_response(&j->out, href->data, href->len, &c, pf);
                }
                cf_node_clear(&cn);
            }
            cf_node_clear(&items[i]);
        }
        free(items);
    }
    return st;
}

static void pf_run(struct cf_async *a)
{
    struct pf_job *j = (struct pf_job *)a;
    struct dav_pf pf = {.store = a->app->store, .tenant = j->who.tenant, .user = j->who.id, .q = &j->q};
    struct cf_davxml_buf href = {0};
    j->who.app = a->app;
    j->who.groups = j->groups;
    cf_davxml_ms_begin(&j->out);
    struct dav_props d = {.name = j->name, .collection = j->kind != DAV_NODE || j->node.type == CF_NODE_FOLDER,
                          .node = j->kind == DAV_NODE ? &j->node : NULL};
    write_response(&j->out, j->href, strlen(j->href), &d, &pf);
    if (j->one && j->kind == DAV_ROOT) {
        static const char *const spaces[] = {"private", "team", "shared"};
        for (int i = 0; i < 3; i++) {
            struct dav_props c = {.name = spaces[i], .collection = true};
            href.len = 0;
            cf_dav_raw_append(&href, "/dav/");
            cf_dav_raw_append(&href, spaces[i]);
            cf_dav_raw_append(&href, "/");
            write_response(&j->out, href.data, href.len, &c, &pf);
        }
    } else if (j->one && j->kind == DAV_LISTING) {
        char **names = cf_dav_shared_names(pf.store, &pf.tenant, j->roots, j->nroots);
        for (size_t i = 0; i < j->nroots && a->st == CF_OK; i++) {
            if (i >= j->max) {
                a->st = CF_ETOOBIG;
                break;
            }
            struct dav_props c = {.name = names[i], .collection = j->roots[i].type == CF_NODE_FOLDER,
                                  .node = &j->roots[i]};
            href.len = 0;
            cf_dav_raw_append(&href, "/dav/shared/");
            cf_dav_href_append(&href, names[i], strlen(names[i]));
            if (c.collection)
                cf_dav_raw_append(&href, "/");
            write_response(&j->out, href.data, href.len, &c, &pf);
        }
        cf_dav_names_free(names, j->nroots);
    } else if (j->one && d.collection) {
        cf_dav_raw_append(&href, j->href);
        a->st = pf_members(j, &pf, &href);
    }
    cf_davxml_ms_end(&j->out);
    cf_davxml_buf_free(&href);
}

static void pf_reply(struct cf_req *r, struct cf_async *a)
{
    struct pf_job *j = (struct pf_job *)a;
    if (a->st == CF_ETOOBIG) { /* RFC 4918 §11.5 (below) */
        char msg[200];
        snprintf(msg, sizeof msg,
                 "the collection has more than %u members: a Depth 1 PROPFIND lists at most %u "
                 "(dav.max_propfind_members); list it through /api/v1 or in parts",
                 j->max, j->max);
        cf_respond_error(r, 507, "too_many_members", msg);
    } else if (a->st != CF_OK) {
        cf_respond_status(r, a->st, NULL);
    } else {
        cf_dav_respond_xml(r, 207, &j->out);
    }
}

static void pf_free(struct cf_async *a)
{
    struct pf_job *j = (struct pf_job *)a;
    cf_davxml_propfind_clear(&j->q);
    free(j->groups);
    free(j->href);
    free(j->name);
    cf_node_clear(&j->node);
    for (size_t i = 0; i < j->nroots; i++)
        cf_node_clear(&j->roots[i]);
    free(j->roots);
    cf_davxml_buf_free(&j->out);
    free(j);
}

void cf_dav_propfind(struct cf_req *r, const struct dav_path *p, struct dav_res *res)
{
    h2o_iovec_t depth = cf_header(r, "depth");
    bool one;
    if (depth.base != NULL && h2o_memis(depth.base, depth.len, H2O_STRLIT("0")))
        one = false;
    else if (depth.base != NULL && h2o_memis(depth.base, depth.len, H2O_STRLIT("1")))
        one = true;
    else { /* "infinity", or absent (RFC 4918 §9.1: infinity) */
        struct cf_davxml_buf b = {0};
        cf_davxml_error(&b, "propfind-finite-depth", NULL);
        cf_dav_respond_xml(r, 403, &b);
        return;
    }
    struct cf_davxml_propfind q;
    enum cf_davxml_err xe;
    size_t blen;
    const char *body = cf_dav_body(r, &blen);
    if (cf_davxml_parse_propfind(body, blen, r->app->cfg->limits.max_json_bytes, &q, &xe) != CF_OK) {
        cf_dav_refuse_body(r, xe);
        return;
    }
    struct cf_node *roots = NULL;
    enum cf_level *levels = NULL;
    size_t nroots = 0;
    if (res->kind == DAV_LISTING && one) { /* the grants, read as GET /api/v1/shared reads them */
        enum cf_status st = cf_shared_roots(r, &roots, &levels, &nroots);
        free(levels);
        if (st != CF_OK) {
            cf_davxml_propfind_clear(&q);
            cf_respond_status(r, st, NULL);
            return;
        }
    }
    struct pf_job *j = cf_xcalloc(1, sizeof *j);
    j->a.run = pf_run;
    j->a.reply = pf_reply;
    j->a.free = pf_free;
    j->q = q; /* taken over */
    j->who = cf_actor_of(r);
    j->groups = cf_xcalloc(r->who.ngroups + 1, sizeof *j->groups);
    memcpy(j->groups, r->who.groups, r->who.ngroups * sizeof *j->groups);
    j->kind = res->kind;
    j->one = one;
    j->roots = roots;
    j->nroots = nroots;
    j->max = r->app->cfg->dav.max_propfind_members;
    struct cf_davxml_buf href = {0};
    if (res->kind == DAV_NODE) {
        j->node = res->node; /* taken over: res no longer holds a node */
        memset(&res->node, 0, sizeof res->node);
        res->kind = DAV_ROOT;
        j->name = cf_xstrdup(p->n > 0 ? p->seg[p->n - 1] : (p->space == DAV_PRIVATE ? "private" : "team"));
        cf_dav_href(&href, p, j->node.type == CF_NODE_FOLDER);
    } else {
        j->name = cf_xstrdup(res->kind == DAV_ROOT ? "dav" : "shared");
        cf_dav_href(&href, p, true);
    }
    j->href = cf_xstrdup(href.data);
    cf_davxml_buf_free(&href);
    cf_async_start(r, &j->a);
}

/* ---- PROPPATCH --------------------------------------------------------------------------------- */

/* DAV: properties the server computes (RFC 4918 §15, RFC 4331 §3): never stored as dead ones. */
static bool is_protected(const struct cf_davxml_name *nm)
{
    static const char *const names[] = {"creationdate",  "getcontentlength", "getcontenttype",
                                        "getetag",       "getlastmodified",  "lockdiscovery",
                                        "resourcetype",  "supportedlock",    "quota-available-bytes",
                                        "quota-used-bytes"};
    if (strcmp(nm->ns, "DAV:") != 0)
        return false;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(nm->local, names[i]) == 0)
            return true;
    return false;
}

/* The 207 answer of a PROPPATCH: every property named, with status (or 403 for the protected
 * ones and failed for the others, when protected is set). */
static void respond_patch(struct cf_req *r, const struct dav_path *p, bool collection,
                          const struct cf_davxml_propertyupdate *pu, int status, bool protected_seen, int failed)
{
    struct cf_davxml_buf b = {0}, href = {0};
    cf_dav_href(&href, p, collection);
    cf_davxml_ms_begin(&b);
    cf_davxml_ms_response_begin(&b, href.data, href.len);
    for (int pass = 0; pass < (protected_seen ? 2 : 1); pass++) {
        bool any = false;
        for (size_t i = 0; i < pu->n_ops; i++) {
            bool prot = is_protected(&pu->ops[i].name);
            if (protected_seen && prot != (pass == 0))
                continue;
            if (!any)
                cf_davxml_ms_propstat_begin(&b);
            any = true;
            cf_davxml_ms_prop_text(&b, pu->ops[i].name.ns, pu->ops[i].name.local, NULL, 0);
        }
        if (any)
            cf_davxml_ms_propstat_end(&b, protected_seen ? (pass == 0 ? 403 : failed) : status);
    }
    if (protected_seen) { /* RFC 4918 §9.2.1 */
        static const char err[] = "<D:error><D:cannot-modify-protected-property/></D:error>";
        cf_davxml_ms_prop_raw(&b, err, sizeof err - 1);
    }
    cf_davxml_ms_response_end(&b);
    cf_davxml_ms_end(&b);
    cf_davxml_buf_free(&href);
    cf_dav_respond_xml(r, 207, &b);
}

struct patch_job {
    struct cf_async a;
    struct cf_id tenant, node;
    struct cf_davxml_propertyupdate pu; /* owned */
    struct dav_path path;               /* segments in the request pool (the request outlives the job's reply) */
    bool collection;
    struct cf_event *ev;                /* dav.proppatch */
};

static void patch_run(struct cf_async *a)
{
    struct patch_job *j = (struct patch_job *)a;
    struct cf_davprop_op *ops = cf_xcalloc(j->pu.n_ops + 1, sizeof *ops);
    size_t set = 0;
    for (size_t i = 0; i < j->pu.n_ops; i++) {
        const struct cf_davxml_propop *o = &j->pu.ops[i];
        ops[i] = (struct cf_davprop_op){o->remove, o->name.ns, o->name.local, o->value, o->value_len};
        set += !o->remove;
    }
    a->st = cf_davprop_apply(a->app->store, &j->tenant, &j->node, ops, j->pu.n_ops);
    free(ops);
    if (a->st == CF_OK) {
        struct cf_node n;
        if (cf_node_get(a->app->store, &j->tenant, &j->node, &n) == CF_OK) {
            cf_event_node(j->ev, &n);
            cf_node_clear(&n);
        }
        cf_event_detail(j->ev, "set", json_integer((json_int_t)set));
        cf_event_detail(j->ev, "removed", json_integer((json_int_t)(j->pu.n_ops - set)));
        a->st = cf_audit_submit_wait(j->ev, NULL);
        j->ev = NULL;
    }
}

static void patch_reply(struct cf_req *r, struct cf_async *a)
{
    struct patch_job *j = (struct patch_job *)a;
    if (a->st == CF_OK || a->st == CF_ETOOBIG) /* RFC 4918 §9.2.1: 507 per property, nothing applied */
        respond_patch(r, &j->path, j->collection, &j->pu, a->st == CF_OK ? 200 : 507, false, 0);
    else
        cf_respond_status(r, a->st, NULL);
}

static void patch_free(struct cf_async *a)
{
    struct patch_job *j = (struct patch_job *)a;
    cf_davxml_propertyupdate_clear(&j->pu);
    cf_event_free(j->ev);
    free(j);
}

void cf_dav_proppatch(struct cf_req *r, const struct dav_path *p, struct dav_res *res)
{
    if (res->kind != DAV_NODE) {
        cf_respond_status(r, res->kind == DAV_ROOT || res->kind == DAV_LISTING ? CF_EDENIED : CF_ENOTFOUND,
                          res->kind == DAV_ROOT || res->kind == DAV_LISTING ? "this collection has no properties to set"
                                                                            : NULL);
        return;
    }
    struct cf_node n;
    enum cf_level level;
    if (!cf_acl_node_or_respond(r, &res->node.id, CF_LEVEL_EDIT, &n, &level))
        return;
    cf_node_clear(&n);
    struct cf_davxml_propertyupdate pu;
    enum cf_davxml_err xe;
    size_t blen;
    const char *body = cf_dav_body(r, &blen);
    if (cf_davxml_parse_propertyupdate(body, blen, r->app->cfg->limits.max_json_bytes, &pu, &xe) != CF_OK) {
        cf_dav_refuse_body(r, xe);
        return;
    }
    bool collection = res->node.type == CF_NODE_FOLDER, prot = false;
    for (size_t i = 0; i < pu.n_ops; i++)
        prot |= is_protected(&pu.ops[i].name);
    if (prot) { /* RFC 4918 §9.2: all or nothing; the others fail with 424 */
        respond_patch(r, p, collection, &pu, 0, true, 424);
        cf_davxml_propertyupdate_clear(&pu);
        return;
    }
    struct patch_job *j = cf_xcalloc(1, sizeof *j);
    j->a.run = patch_run;
    j->a.reply = patch_reply;
    j->a.free = patch_free;
    j->tenant = r->who.user.tenant;
    j->node = res->node.id;
    j->pu = pu; /* taken over */
    j->path = *p;
    j->collection = collection;
    j->ev = cf_event_new(&j->tenant, "dav.proppatch", "ok");
    cf_event_from_req(j->ev, r);
    cf_async_start(r, &j->a);
}

/* ---- COPY ------------------------------------------------------------------------------------- */

struct props_copy {
    struct cf_async a;
    struct cf_id tenant, src, dst;
    int status;
    cf_dav_then_fn *then; /* NULL: answer status */
    void *ctx;
};

static void props_copy_run(struct cf_async *a)
{
    struct props_copy *c = (struct props_copy *)a;
    a->st = cf_davprop_copy(a->app->store, &c->tenant, &c->src, &c->dst);
}

static void props_copy_reply(struct cf_req *r, struct cf_async *a)
{
    struct props_copy *c = (struct props_copy *)a;
    if (a->st != CF_OK)
        cf_respond_status(r, a->st, "the copy was made, its properties were not");
    else if (c->then == NULL)
        cf_respond_empty(r, c->status);
    if (c->then != NULL) {
        c->then(a->st == CF_OK ? r : NULL, c->ctx);
        c->then = NULL;
    }
}

static void props_copy_free(struct cf_async *a)
{
    struct props_copy *c = (struct props_copy *)a;
    if (c->then != NULL) /* the client went away: the continuation only frees */
        c->then(NULL, c->ctx);
    free(c);
}

void cf_dav_props_copy_start(struct cf_req *r, const struct cf_id *src, const struct cf_id *dst, int status,
                             cf_dav_then_fn *then, void *ctx)
{
    struct props_copy *c = cf_xcalloc(1, sizeof *c);
    c->a.run = props_copy_run;
    c->a.reply = props_copy_reply;
    c->a.free = props_copy_free;
    c->tenant = r->who.user.tenant;
    c->src = *src;
    c->dst = *dst;
    c->status = status;
    c->then = then;
    c->ctx = ctx;
    cf_async_start(r, &c->a);
}
