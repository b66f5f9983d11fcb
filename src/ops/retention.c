/*
 * retention.c: the retention job (see retention.h). Storage does the purging (cf_node_purge,
 * cf_audit_purge_before); this file decides what is due and records it in provenance and metrics.
 */
#include "retention.h"

#include <pthread.h>
#include <stdlib.h>

#include "audit.h"
#include "davprop.h"
#include "log.h"
#include "metrics.h"

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t cutoff_of(uint64_t now, uint64_t period_s)
{
    uint64_t ms = period_s * 1000;
    return now > ms ? now - ms : 0;
}

/* Trashed nodes past the tenant's trash retention. */
static enum cf_status purge_trash(struct cf_store *s, const struct cf_tenant *t, uint64_t now, uint64_t *count)
{
    struct cf_id *ids;
    size_t n;
    if (t->policy.trash_retention_s == 0)
        return CF_OK;
    enum cf_status st = cf_trash_expired(s, &t->id, cutoff_of(now, t->policy.trash_retention_s), &ids, &n);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; i < n && st == CF_OK; i++) {
        struct cf_node node;
        if (cf_node_get(s, &t->id, &ids[i], &node) != CF_OK)
            continue; /* purged meanwhile (with an ancestor, or by its owner) */
        struct cf_event *e = cf_event_new(&t->id, "file.purge", "ok"); /* actor: system */
        cf_event_node(e, &node);
        cf_event_detail(e, "reason", json_string("trash_retention"));
        cf_event_detail(e, "trashed_at", json_integer((json_int_t)node.trashed_at));
        cf_node_clear(&node);
        st = cf_node_purge(s, &t->id, &ids[i]);
        if (st == CF_OK) {
            cf_audit_submit(e);
            (*count)++;
        } else {
            cf_event_free(e);
            if (st == CF_ENOTFOUND)
                st = CF_OK;
        }
    }
    free(ids);
    return st;
}

/* The archived private spaces of offboarded users, once past the tenant's retention: the space
 * whole (root included) and nothing else. Nodes the user created in other people's spaces belong
 * to those spaces and are never touched; a space handed over to a successor is no longer a root. */
static enum cf_status purge_spaces(struct cf_store *s, const struct cf_tenant *t, uint64_t now, uint64_t *count)
{
    struct cf_user *us;
    size_t nu;
    if (t->policy.offboarded_retention_s == 0)
        return CF_OK;
    uint64_t cutoff = cutoff_of(now, t->policy.offboarded_retention_s);
    enum cf_status st = cf_user_list(s, &t->id, &us, &nu);
    if (st != CF_OK)
        return st;
    for (size_t i = 0; i < nu; i++) {
        struct cf_node root;
        if (st != CF_OK || us[i].status != CF_USER_OFFBOARDED ||
            cf_node_get(s, &t->id, &us[i].private_root, &root) != CF_OK)
            goto next;
        bool due = root.root_kind == CF_SPACE_PRIVATE && cf_id_is_zero(&root.parent) && root.archived_at != 0 &&
                   root.archived_at < cutoff;
        cf_node_clear(&root);
        if (!due)
            goto next;
        st = cf_space_purge(s, &t->id, &us[i].private_root);
        if (st == CF_ENOTFOUND)
            st = CF_OK; /* purged meanwhile */
        else if (st == CF_OK) {
            struct cf_event *e = cf_event_new(&t->id, "space.purge", "ok");
            char hex[CF_ID_HEX_LEN + 1];
            cf_id_hex(&us[i].id, hex);
            cf_event_detail(e, "reason", json_string("offboarded_retention"));
            cf_event_detail(e, "user", json_string(us[i].username));
            cf_event_detail(e, "user_id", json_string(hex));
            cf_event_detail(e, "space", json_string("private"));
            cf_audit_submit(e);
            (*count)++;
        }
    next:
        cf_user_clear(&us[i]);
    }
    free(us);
    return st;
}

/* Old versions past the tenant's version retention (counted from when each was replaced). */
static enum cf_status purge_versions(struct cf_store *s, const struct cf_tenant *t, uint64_t now, uint64_t *count)
{
    struct cf_version_ref *refs;
    size_t n;
    if (t->policy.version_retention_s == 0)
        return CF_OK;
    enum cf_status st = cf_versions_expire(s, &t->id, cutoff_of(now, t->policy.version_retention_s), &refs, &n);
    for (size_t i = 0; i < n; i++) { /* what was purged, even if a later file failed */
        struct cf_node node;
        struct cf_event *e = cf_event_new(&t->id, "file.version_purge", "ok"); /* actor: system */
        if (cf_node_get(s, &t->id, &refs[i].file, &node) == CF_OK) {
            cf_event_node(e, &node);
            cf_node_clear(&node);
        } else {
            e->has_node = true;
            e->node = refs[i].file;
        }
        cf_event_detail(e, "reason", json_string("version_retention"));
        cf_event_detail(e, "version", json_integer(refs[i].version));
        cf_event_detail(e, "size", json_integer((json_int_t)refs[i].size));
        cf_event_detail(e, "replaced_at", json_integer((json_int_t)refs[i].replaced_at));
        cf_audit_submit(e);
        (*count)++;
    }
    free(refs);
    return st;
}

static enum cf_status purge_audit(const struct cf_config *cfg, struct cf_store *s, const struct cf_tenant *t,
                                  uint64_t now, uint64_t *count)
{
    uint64_t purged = 0;
    if (cfg->audit.retention_s == 0)
        return CF_OK;
    uint64_t cutoff = cutoff_of(now, cfg->audit.retention_s);
    enum cf_status st = cf_audit_purge_before(s, &t->id, cutoff, &purged);
    if (st == CF_OK && purged > 0) {
        struct cf_event *e = cf_event_new(&t->id, "audit.purge", "ok");
        cf_event_detail(e, "reason", json_string("audit_retention"));
        cf_event_detail(e, "events", json_integer((json_int_t)purged));
        cf_event_detail(e, "before", json_integer((json_int_t)cutoff));
        cf_audit_submit(e);
        *count += purged;
    }
    return st;
}

/* WebDAV locks past their timeout: already ignored on read, their records go here (no event: a lock
 * that lapses changes nothing anyone could see; its LOCK and UNLOCK are the events). */
static enum cf_status purge_locks(struct cf_store *s, const struct cf_tenant *t, uint64_t now, uint64_t *count)
{
    uint64_t removed = 0;
    enum cf_status st = cf_davlock_sweep(s, &t->id, now, &removed);
    *count += removed;
    return st;
}

enum cf_status cf_retention_run(const struct cf_config *cfg, struct cf_store *store, struct cf_retention_report *out)
{
    struct cf_tenant *ts;
    size_t n;
    struct cf_retention_report rep = {0};
    pthread_mutex_lock(&run_lock);
    uint64_t now = cf_now_ms();
    enum cf_status first = cf_tenant_list(store, &ts, &n);
    if (first != CF_OK) {
        pthread_mutex_unlock(&run_lock);
        cf_metrics_retention_run(false, now);
        return first;
    }
    for (size_t i = 0; i < n; i++) {
        struct cf_retention_report t = {0};
        enum cf_status st;
        if ((st = purge_trash(store, &ts[i], now, &t.trash)) != CF_OK)
            cf_log_error("retention: purging the trash of tenant %s failed (%s)", ts[i].name, cf_status_name(st));
        enum cf_status st2 = purge_spaces(store, &ts[i], now, &t.spaces);
        if (st2 != CF_OK)
            cf_log_error("retention: purging offboarded spaces of tenant %s failed (%s)", ts[i].name,
                         cf_status_name(st2));
        enum cf_status st4 = purge_versions(store, &ts[i], now, &t.versions);
        if (st4 != CF_OK)
            cf_log_error("retention: purging old versions of tenant %s failed (%s)", ts[i].name, cf_status_name(st4));
        enum cf_status st3 = purge_audit(cfg, store, &ts[i], now, &t.audit);
        if (st3 != CF_OK)
            cf_log_error("retention: purging old provenance of tenant %s failed (%s)", ts[i].name,
                         cf_status_name(st3));
        enum cf_status st5 = purge_locks(store, &ts[i], now, &t.locks);
        if (st5 != CF_OK)
            cf_log_error("retention: removing expired WebDAV locks of tenant %s failed (%s)", ts[i].name,
                         cf_status_name(st5));
        if (first == CF_OK)
            first = st != CF_OK ? st : st2 != CF_OK ? st2 : st4 != CF_OK ? st4 : st3 != CF_OK ? st3 : st5;
        if (t.trash + t.spaces + t.audit + t.versions + t.locks > 0)
            cf_log_info("retention: tenant %s: %llu trashed node(s), %llu offboarded space(s), %llu old version(s), "
                        "%llu provenance event(s), %llu expired WebDAV lock(s) purged",
                        ts[i].name, (unsigned long long)t.trash, (unsigned long long)t.spaces,
                        (unsigned long long)t.versions, (unsigned long long)t.audit, (unsigned long long)t.locks);
        rep.trash += t.trash;
        rep.spaces += t.spaces;
        rep.audit += t.audit;
        rep.versions += t.versions;
        rep.locks += t.locks;
        cf_tenant_clear(&ts[i]);
    }
    free(ts);
    /* Store-wide: what a writer that died left (its own start-up collects the rest: server.c). */
    enum cf_status st6 = cf_store_collect_stale(store, CF_STALE_MARK_MS, &rep.unfinished);
    if (st6 != CF_OK)
        cf_log_error("retention: collecting unfinished uploads failed (%s)", cf_status_name(st6));
    else if (rep.unfinished > 0)
        cf_log_info("retention: %llu unfinished upload(s) or purge(s) of a writer gone for a day collected",
                    (unsigned long long)rep.unfinished);
    if (first == CF_OK)
        first = st6;
    cf_metrics_retention_purged("trash", rep.trash);
    cf_metrics_retention_purged("space", rep.spaces);
    cf_metrics_retention_purged("audit", rep.audit);
    cf_metrics_retention_purged("version", rep.versions);
    cf_metrics_retention_purged("dav_lock", rep.locks);
    cf_metrics_retention_purged("unfinished", rep.unfinished);
    cf_metrics_retention_run(first == CF_OK, now);
    pthread_mutex_unlock(&run_lock);
    if (out != NULL)
        *out = rep;
    return first;
}
