/*
 * dav_path.c: what every WebDAV handler file shares (dav_path.h): /dav/ URLs to nodes for the caller
 * (percent-decoding once, cf_name_check on every segment as the API names are checked, ACL levels with
 * 404 for the invisible, the shared roots by name), canonical hrefs, entity tags, XML answers.
 *
 * Thread: the loop thread (storage reads, as the API's authorisation step does); cf_dav_shared_names
 * any thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acl.h"
#include "dav_path.h"
#include "files.h"
#include "validate.h"

void cf_dav_res_clear(struct dav_res *res)
{
    if (res->kind == DAV_NODE)
        cf_node_clear(&res->node);
}

enum cf_status cf_dav_parse(h2o_mem_pool_t *pool, const char *raw, size_t rlen, struct dav_path *p, const char **why)
{
    memset(p, 0, sizeof *p);
    const char *s = raw, *end = raw + rlen;
    size_t idx = 0;
    *why = NULL;
    while (s < end) {
        const char *e = memchr(s, '/', (size_t)(end - s));
        if (e == NULL)
            e = end;
        if (e == s) {
            *why = "empty path segment";
            return CF_EINVAL;
        }
        h2o_iovec_t dec;
        if (!cf_pct_decode(pool, s, (size_t)(e - s), CF_PCT_NO_NUL, &dec)) {
            *why = "malformed percent-encoding in the path";
            return CF_EINVAL;
        }
        const char *d = dec.base;
        size_t dl = dec.len;
        if (idx == 0) {
            if (dl == 7 && memcmp(d, "private", 7) == 0)
                p->space = DAV_PRIVATE;
            else if (dl == 4 && memcmp(d, "team", 4) == 0)
                p->space = DAV_TEAM;
            else if (dl == 6 && memcmp(d, "shared", 6) == 0)
                p->space = DAV_SHARED;
            else
                return CF_ENOTFOUND;
        } else {
            if ((*why = cf_name_check(d, dl)) != NULL)
                return CF_EINVAL;
            if (p->n == DAV_MAX_SEGS) {
                *why = "the path is too deep";
                return CF_EINVAL;
            }
            p->seg[p->n] = d;
            p->len[p->n++] = dl;
        }
        idx++;
        s = e < end ? e + 1 : e;
        if (s == end && e < end)
            break; /* a trailing slash */
    }
    return CF_OK;
}

/* The visible level of node id (the tenant root answers every member: CF_ACL_TEAM_ROOT); CF_ENOTFOUND
 * when it may not be seen. */
static enum cf_status visible(struct cf_req *r, const struct cf_id *id, struct cf_node *node, enum cf_level *level)
{
    struct cf_actor a = cf_actor_of(r);
    enum cf_status st = cf_acl_resolve(&a, id, CF_ACL_TEAM_ROOT, node, level, NULL);
    if (st != CF_OK)
        return st;
    if (*level == CF_LEVEL_NONE && !(node->root_kind == CF_SPACE_TENANT)) {
        cf_node_clear(node);
        return CF_ENOTFOUND;
    }
    return CF_OK;
}

/* ---- the names under /dav/shared/ --------------------------------------------------------------- */

/* Whether a equals one of names[0..n) (ASCII case-insensitively: Explorer and Finder are). */
static bool name_taken(char *const *names, size_t n, const char *a)
{
    for (size_t i = 0; i < n; i++)
        if (names[i] != NULL && strcasecmp(names[i], a) == 0)
            return true;
    return false;
}

/* base + " (k)", base cut on a UTF-8 boundary so that the whole stays ≤ 255 bytes; NULL when the
 * result is not a valid name. */
static char *suffixed(const char *base, unsigned k)
{
    char suf[24];
    int sl = snprintf(suf, sizeof suf, " (%u)", k);
    size_t bl = strlen(base), room = 255 - (size_t)sl;
    if (bl > room) {
        bl = room;
        while (bl > 0 && ((unsigned char)base[bl] & 0xC0) == 0x80)
            bl--;
    }
    size_t n = bl + (size_t)sl;
    char *out = cf_xmalloc(n + 1);
    memcpy(out, base, bl);
    memcpy(out + bl, suf, (size_t)sl + 1);
    if (cf_name_check(out, n) != NULL) {
        free(out);
        return NULL;
    }
    return out;
}

/* The owner's part of a colliding root's name: "name (display name)", else "name (username)", else
 * NULL (neither makes a valid name). */
static char *with_owner(struct cf_store *s, const struct cf_id *tenant, const struct cf_node *n)
{
    struct cf_user u;
    if (cf_id_is_zero(&n->owner) || cf_user_get(s, tenant, &n->owner, &u) != CF_OK)
        return NULL;
    const char *who[2] = {u.display_name, u.username};
    char *out = NULL;
    for (int i = 0; i < 2 && out == NULL; i++) {
        if (who[i] == NULL || who[i][0] == '\0')
            continue;
        size_t len = strlen(n->name) + strlen(who[i]) + 3;
        char *c = cf_xmalloc(len + 1);
        snprintf(c, len + 1, "%s (%s)", n->name, who[i]);
        if (cf_name_check(c, len) == NULL)
            out = c;
        else
            free(c);
    }
    cf_user_clear(&u);
    return out;
}

struct by_id {
    struct cf_id id;
    size_t i;
};

static int by_id_cmp(const void *a, const void *b)
{
    return memcmp(&((const struct by_id *)a)->id, &((const struct by_id *)b)->id, sizeof(struct cf_id));
}

char **cf_dav_shared_names(struct cf_store *s, const struct cf_id *tenant, const struct cf_node *items, size_t n)
{
    char **names = cf_xcalloc(n + 1, sizeof *names);
    struct by_id *order = cf_xcalloc(n + 1, sizeof *order);
    for (size_t i = 0; i < n; i++)
        order[i] = (struct by_id){items[i].id, i};
    qsort(order, n, sizeof *order, by_id_cmp);
    /* The base name: its own when no other root has it, else with its owner's name. */
    char **base = cf_xcalloc(n + 1, sizeof *base);
    for (size_t i = 0; i < n; i++) {
        bool unique = true;
        for (size_t k = 0; k < n && unique; k++)
            unique = k == i || strcasecmp(items[k].name, items[i].name) != 0;
        base[i] = unique ? NULL : with_owner(s, tenant, &items[i]);
        if (base[i] == NULL)
            base[i] = cf_xstrdup(items[i].name);
    }
    /* Still colliding: " (2)", " (3)"... in node id order (the first keeps the base). */
    for (size_t o = 0; o < n; o++) {
        size_t i = order[o].i;
        if (!name_taken(names, n, base[i])) {
            names[i] = base[i];
            base[i] = NULL;
            continue;
        }
        for (unsigned k = 2; names[i] == NULL && k <= (unsigned)n + 1; k++) {
            char *c = suffixed(base[i], k);
            if (c != NULL && name_taken(names, n, c)) {
                free(c);
                c = NULL;
            }
            names[i] = c;
        }
        if (names[i] == NULL) { /* cannot happen with valid names; a name that always is */
            names[i] = cf_xmalloc(2 * sizeof(struct cf_id) + 1);
            cf_hex_encode((const uint8_t *)&items[i].id, sizeof(struct cf_id), names[i]);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(base[i]);
    free(base);
    free(order);
    return names;
}

void cf_dav_names_free(char **names, size_t n)
{
    for (size_t i = 0; names != NULL && i < n; i++)
        free(names[i]);
    free(names);
}

/* The root others granted the caller (GET /api/v1/shared) that /dav/shared/<name> names. */
static enum cf_status shared_root(struct cf_req *r, const char *name, size_t n, struct cf_id *out)
{
    struct cf_node *items;
    enum cf_level *levels;
    size_t cnt;
    enum cf_status st = cf_shared_roots(r, &items, &levels, &cnt);
    if (st != CF_OK)
        return st;
    char **names = cf_dav_shared_names(r->app->store, &r->who.user.tenant, items, cnt);
    st = CF_ENOTFOUND;
    for (size_t i = 0; i < cnt; i++) {
        if (st == CF_ENOTFOUND && strlen(names[i]) == n && memcmp(names[i], name, n) == 0) {
            *out = items[i].id;
            st = CF_OK;
        }
        cf_node_clear(&items[i]);
    }
    cf_dav_names_free(names, cnt);
    free(items);
    free(levels);
    return st;
}

/* Resolves p for the caller. Answers (404, 500) and returns false when it cannot say more. */
bool cf_dav_resolve_or_respond(struct cf_req *r, const struct dav_path *p, struct dav_res *res)
{
    memset(res, 0, sizeof *res);
    if (p->space == DAV_NONE) {
        res->kind = DAV_ROOT;
        return true;
    }
    struct cf_id cur;
    size_t first = 0;
    enum cf_status st = CF_OK;
    if (p->space == DAV_PRIVATE) {
        cur = r->who.user.private_root;
    } else if (p->space == DAV_TEAM) {
        struct cf_tenant t;
        if ((st = cf_tenant_get(r->app->store, &r->who.user.tenant, &t)) == CF_OK) {
            cur = t.root;
            cf_tenant_clear(&t);
        }
    } else {
        if (p->n == 0) {
            res->kind = DAV_LISTING;
            return true;
        }
        st = shared_root(r, p->seg[0], p->len[0], &cur);
        first = 1;
    }
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return false;
    }
    size_t i = first;
    for (; i < p->n; i++) {
        struct cf_id next;
        st = cf_node_find_child(r->app->store, &r->who.user.tenant, &cur, p->seg[i], p->len[i], &next);
        if (st == CF_ENOTFOUND)
            break;
        if (st != CF_OK) {
            cf_respond_status(r, st, NULL);
            return false;
        }
        cur = next;
    }
    /* cur is the deepest node that exists: it must be visible, whatever comes next. */
    struct cf_node node;
    enum cf_level level;
    st = visible(r, &cur, &node, &level);
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return false;
    }
    if (i == p->n) {
        res->kind = DAV_NODE;
        res->node = node;
        res->level = level;
        return true;
    }
    bool folder = node.type == CF_NODE_FOLDER;
    cf_node_clear(&node);
    if (i + 1 == p->n && folder) {
        res->kind = DAV_MISSING;
        res->parent = cur;
        res->name = p->seg[i];
        res->name_len = p->len[i];
    } else {
        res->kind = DAV_NOPARENT;
    }
    return true;
}

/* ---- hrefs and properties ---------------------------------------------------------------------- */

/* Appends s percent-encoded (RFC 3986 unreserved kept) to b. */
void cf_dav_href_append(struct cf_davxml_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[3];
        size_t k = 1;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            tmp[0] = (char)c;
        } else {
            tmp[0] = '%';
            tmp[1] = hex[c >> 4];
            tmp[2] = hex[c & 15];
            k = 3;
        }
        if (b->len + k + 1 > b->cap) {
            b->cap = b->cap < 64 ? 128 : b->cap * 2;
            b->data = cf_xrealloc(b->data, b->cap);
        }
        memcpy(b->data + b->len, tmp, k);
        b->len += k;
        b->data[b->len] = '\0';
    }
}

void cf_dav_raw_append(struct cf_davxml_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = b->len + n + 128;
        b->data = cf_xrealloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

/* The canonical href of p (a collection ends with '/'). */
void cf_dav_href(struct cf_davxml_buf *b, const struct dav_path *p, bool collection)
{
    static const char *const names[] = {"", "private", "team", "shared"};
    cf_dav_raw_append(b, "/dav/");
    if (p->space == DAV_NONE)
        return;
    cf_dav_raw_append(b, names[p->space]);
    for (size_t i = 0; i < p->n; i++) {
        cf_dav_raw_append(b, "/");
        cf_dav_href_append(b, p->seg[i], p->len[i]);
    }
    if (collection)
        cf_dav_raw_append(b, "/");
}

void cf_dav_etag(const struct cf_node *n, char out[80])
{
    if (n->type == CF_NODE_FILE) {
        char sha[2 * CF_SHA256_LEN + 1];
        cf_hex_encode(n->sha256, CF_SHA256_LEN, sha);
        snprintf(out, 80, "\"%.32s\"", sha); /* the same strong tag as GET …/content (download.c) */
    } else {
        snprintf(out, 80, "W/\"%llx\"", (unsigned long long)n->modified_at);
    }
}

const char *cf_dav_body(struct cf_req *r, size_t *len)
{
    *len = r->req->entity.base != NULL ? r->req->entity.len : 0;
    return r->req->entity.base != NULL ? r->req->entity.base : "";
}

void cf_dav_refuse_body(struct cf_req *r, enum cf_davxml_err xe)
{
    cf_respond_error(r, cf_davxml_err_http(xe), "bad_request", cf_davxml_err_name(xe));
}

void cf_dav_respond_xml(struct cf_req *r, int status, struct cf_davxml_buf *b)
{
    cf_respond_text(r, status, "application/xml; charset=utf-8", b->data != NULL ? b->data : "", b->len);
    cf_davxml_buf_free(b);
}
