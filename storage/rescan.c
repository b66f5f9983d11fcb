/*
 * rescan.c: files accepted unscanned (a development server without signatures records their
 * current version's verdict as "unchecked"), found again once signatures exist, and the later
 * verdict recorded on them (src/ops/rescan.c drives the scans).
 *
 * Finding them walks the tenant's node records (T ‖ node in `nodes`): one pass per rescan, which
 * runs only when a server with signatures starts or when signatures arrive, never per request.
 * The verdict is written under the namespace lock, and only if the file's current version is still
 * the one scanned and still "unchecked": a new version committed meanwhile has its own verdict.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

static bool unchecked(const struct cf_node *n)
{
    return n->type == CF_NODE_FILE && n->scan.result != NULL && strcmp(n->scan.result, "unchecked") == 0;
}

enum cf_status cf_unchecked_files(struct cf_store *s, const struct cf_id *tenant, struct cf_id **out, size_t *n)
{
    const struct cf_tkeys *tk;
    struct cf_iter it;
    struct cf_idvec ids = {0};
    enum cf_status st = CF_OK;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    cf_iter_open(s, CF_CF_NODES, tenant->b, CF_ID_LEN, &it);
    for (; cf_eiter_valid(it.it); cf_eiter_next(it.it)) {
        size_t kl, vl, ptlen;
        const char *k = cf_eiter_key(it.it, &kl);
        const char *v = cf_eiter_value(it.it, &vl);
        uint8_t *pt;
        struct cf_node node;
        if (kl != 32) {
            st = CF_ECORRUPT;
            break;
        }
        if ((st = cf_unseal(CF_CF_NODES, &tk->record, k, kl, (const uint8_t *)v, vl, &pt, &ptlen)) != CF_OK)
            break;
        memset(&node, 0, sizeof node);
        st = cf_node_decode(pt, ptlen, &node);
        cf_free_secret(pt, ptlen);
        if (st != CF_OK)
            break;
        if (unchecked(&node)) {
            struct cf_id id;
            memcpy(id.b, k + 16, CF_ID_LEN);
            cf_idvec_push(&ids, &id);
        }
        cf_node_clear(&node);
    }
    if (st == CF_OK)
        st = cf_iter_status(&it);
    cf_iter_close(&it);
    if (st != CF_OK) {
        free(ids.v);
        return st;
    }
    *out = ids.v != NULL ? ids.v : cf_xcalloc(1, sizeof **out);
    *n = ids.n;
    return CF_OK;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? cf_xstrdup(s) : NULL;
}

enum cf_status cf_node_set_scan(struct cf_store *s, const struct cf_id *tenant, const struct cf_id *id,
                                uint32_t version, const struct cf_scan_summary *scan, bool *changed)
{
    const struct cf_tkeys *tk;
    struct cf_node node = {0};
    *changed = false;
    if (cf_tkeys_get(s, tenant, &tk) != CF_OK)
        return CF_ENOTFOUND;
    cf_ns_lock(s);
    enum cf_status st = cf_node_load(s, tk, id, &node);
    if (st == CF_OK && unchecked(&node) && node.version == version) {
        cf_scan_summary_clear(&node.scan);
        node.scan.result = cf_xstrdup(scan->result);
        node.scan.detail = dup_or_null(scan->detail);
        node.scan.engine = dup_or_null(scan->engine);
        node.scan.database = dup_or_null(scan->database);
        node.scan.at = scan->at;
        struct cf_batch *b = cf_batch_new(s->eng);
        cf_node_batch_put(b, s, tk, &node);
        st = cf_db_write(s, b, true);
        cf_batch_free(b);
        *changed = st == CF_OK;
    }
    cf_ns_unlock(s);
    cf_node_clear(&node);
    return st;
}
