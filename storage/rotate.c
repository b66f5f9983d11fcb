/*
 * rotate.c: a tenant's content-key rotation (cf_tenant_rotate_key), an orchestrator above keyring.c
 * (the generations), content.c (version records) and tus.c (unfinished uploads):
 *   1. a new generation, stored first, then current: every wrap from now on uses it (keyring.c);
 *   2. every wrapper under an older generation is rewritten under the new one;
 *   3. a check that none is left (none can appear any more: every wrap since step 1 used the new
 *      generation, and step 1 held ns_lock, which every wrap and the write of its wrapper hold), then
 *      the older generations are destroyed, on disk in one synced batch and in memory (keyring.c).
 */
#include <string.h>

#include "store_internal.h"

enum cf_status cf_tenant_rotate_key(struct cf_store *s, const struct cf_id *tenant, const struct cf_tus_claim *claim,
                                    struct cf_rotate_report *out)
{
    const struct cf_tkeys *tk;
    enum cf_status st = cf_tkeys_get(s, tenant, &tk);
    if (st != CF_OK)
        return st;
    memset(out, 0, sizeof *out);
    uint32_t gen;
    if ((st = cf_keygen_add(s, tk, &gen)) != CF_OK)
        return st;
    out->generation = gen;
    if ((st = cf_versions_rewrap(s, tk, gen, false, &out->versions)) != CF_OK ||
        (st = cf_tus_rewrap(s, tk, gen, false, claim, &out->uploads)) != CF_OK)
        return st;
    uint64_t left_v = 0, left_u = 0;
    st = cf_versions_rewrap(s, tk, gen, true, &left_v);
    if (st == CF_OK)
        st = cf_tus_rewrap(s, tk, gen, true, claim, &left_u);
    if (st == CF_OK && left_v + left_u != 0)
        st = CF_EBUSY;
    if (st != CF_OK)
        return st;
    return cf_keygen_retire(s, tk, gen, &out->retired);
}
