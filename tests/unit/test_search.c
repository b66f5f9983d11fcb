/*
 * test_search.c: the name index (storage/search.h). The pure parts (normalisation, query parsing and
 * its refusals, the path rule), then through a real store: the index built at open, kept current by
 * every write (create, rename, move, trash, purge, tenant deletion), candidates in id order with
 * paging and bounded steps, two tenants apart, and no index at all without the build (CLI opens).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "search.h"
#include "store_internal.h"
#include "tap.h"

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void check_fold(const char *in, const char *want)
{
    size_t n;
    char *got = cf_search_fold(in, strlen(in), &n);
    CHECK(got != NULL && strcmp(got, want) == 0 && n == strlen(want), "fold(%s) = %s (got %s)", in, want,
          got != NULL ? got : "NULL");
    free(got);
}

static void test_fold(void)
{
    check_fold("Report-2024.PDF", "report-2024.pdf");
    check_fold("already lower", "already lower");
    check_fold("Straße", "strasse");
    check_fold("ＦＵＬＬ", "full");
    check_fold("Cafe\xcc\x81", "caf\xc3\xa9");   /* decomposed é composes */
    check_fold("ΣΟΦΙΑ", "σοφια");
    check_fold("ﬁle", "file");                    /* the ligature */
    check_fold("a\xe2\x80\x8b" "b", "ab");          /* a zero-width space is dropped */
    size_t n;
    static const char *const bad[] = {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\xe2\x82", "\xe2\x28\xa1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(cf_search_fold(bad[i], strlen(bad[i]), &n) == NULL, "invalid UTF-8 %zu refused", i);
    CHECK(cf_search_fold("a\0b", 3, &n) == NULL, "NUL refused");
}

static void test_query(void)
{
    struct cf_search_query q;
    const char *why = NULL;
    char big[CF_SEARCH_QUERY_MAX + 2];
    memset(big, 'a', sizeof big);
    CHECK_INT(cf_search_query_parse("", 0, &q, &why), CF_EINVAL, "empty refused");
    CHECK_INT(cf_search_query_parse(big, CF_SEARCH_QUERY_MAX + 1, &q, &why), CF_EINVAL, "201 bytes refused");
    CHECK_INT(cf_search_query_parse(big, CF_SEARCH_QUERY_MAX, &q, &why), CF_OK, "200 bytes taken");
    cf_search_query_clear(&q);
    CHECK_INT(cf_search_query_parse("//", 2, &q, &why), CF_EINVAL, "only slashes refused");
    CHECK_INT(cf_search_query_parse(" / ", 3, &q, &why), CF_EINVAL, "only slashes and spaces refused");
    CHECK_INT(cf_search_query_parse("\xff", 1, &q, &why), CF_EINVAL, "invalid UTF-8 refused");
    CHECK_INT(cf_search_query_parse("a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", 33, &q, &why), CF_EINVAL, "17 segments refused");
    CHECK_INT(cf_search_query_parse("a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p", 31, &q, &why), CF_OK, "16 segments taken");
    cf_search_query_clear(&q);

    /* The path rule. anc: nearest first. */
    const char *anc[] = {"drafts", "year-2023", "projects"};
    struct {
        const char *q, *name;
        size_t nanc;
        bool want;
    } cases[] = {
        {"BUDGET", "budget-final.xlsx", 3, true},
        {"get-fi", "budget-final.xlsx", 3, true},
        {"budgets", "budget-final.xlsx", 3, false},
        {"projects/budget", "budget-final.xlsx", 3, true},
        {"projects/2023/budget", "budget-final.xlsx", 3, true},
        {"2023/projects/budget", "budget-final.xlsx", 3, false}, /* order from the top */
        {"drafts/", "budget-final.xlsx", 3, true},               /* anything below */
        {"/projects//final", "budget-final.xlsx", 3, true},     /* empty parts skipped */
        {"projects/budget", "budget-final.xlsx", 1, false},      /* "projects" not visible */
        {"drafts/drafts/budget", "budget-final.xlsx", 3, false}, /* distinct ancestors */
        {"budget/final", "budget-final.xlsx", 3, false},         /* the name alone is one part */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_INT(cf_search_query_parse(cases[i].q, strlen(cases[i].q), &q, &why), CF_OK, "parse %s", cases[i].q);
        CHECK(cf_search_match(&q, cases[i].name, anc, cases[i].nanc) == cases[i].want, "%s on %s with %zu ancestors: %s",
              cases[i].q, cases[i].name, cases[i].nanc, cases[i].want ? "match" : "no match");
        cf_search_query_clear(&q);
    }
}

/* Every candidate of tenant for query text, in id order, in pages of `step` entries examined. */
static size_t find(struct cf_store *s, const struct cf_id *tenant, const char *text, unsigned flags, size_t step,
                   struct cf_id *out, size_t max)
{
    struct cf_search_query q;
    const char *why;
    if (cf_search_query_parse(text, strlen(text), &q, &why) != CF_OK)
        return (size_t)-1;
    size_t total = 0;
    struct cf_id after, last;
    bool have = false, end = false;
    while (!end && total < max) {
        size_t n;
        struct cf_id parents[16];
        if (cf_search_candidates(s, tenant, &q, have ? &after : NULL, flags, max - total < 16 ? max - total : 16, step,
                                 out + total, parents, &n, &last, &end) != CF_OK) {
            total = (size_t)-1;
            break;
        }
        total += n;
        after = last;
        have = true;
    }
    cf_search_query_clear(&q);
    return total;
}

static void test_store(const char *base)
{
    struct cf_key master;
    cf_key_random(&master);
    char *dir = cf_xasprintf("%s/store", base);
    struct cf_store *s = NULL;
    struct cf_id ids[64];
    CHECK_INT(cf_store_create(dir, &master), CF_OK, "store created");
    CHECK_INT(cf_store_open(dir, &master, &s), CF_OK, "store opened");
    if (s == NULL) {
        free(dir);
        return;
    }
    struct cf_tenant t, t2;
    CHECK_INT(cf_tenant_create(s, "acme", &t), CF_OK, "tenant");
    CHECK_INT(cf_tenant_create(s, "other", &t2), CF_OK, "second tenant");
    struct cf_id owner;
    cf_id_new(&owner);
    struct cf_node reports, old, f, g;
    CHECK_INT(cf_folder_create(s, &t.id, &t.root, "Reports", 7, &owner, &reports), CF_OK, "folder before the build");
    CHECK_INT(cf_folder_create(s, &t2.id, &t2.root, "Reports", 7, &owner, &old), CF_OK, "same name, other tenant");
    cf_node_clear(&old);
    CHECK_INT(find(s, &t.id, "report", 0, 100, ids, 64), (size_t)-1, "no index before the build (CLI opens)");

    uint64_t names = 0;
    CHECK_INT(cf_store_search_build(s, &names), CF_OK, "built");
    CHECK_INT(names, 2, "two names indexed (roots are not)");
    CHECK_INT(cf_store_search_build(s, &names), CF_EEXIST, "built once");
    CHECK_INT(find(s, &t.id, "REPORTS", 0, 100, ids, 64), 1, "found after the build");
    CHECK(cf_id_equal(&ids[0], &reports.id), "the right one (not the other tenant's)");

    /* Writes after the build: create, rename, move, trash, purge. */
    CHECK_INT(cf_folder_create(s, &t.id, &reports.id, "Q3-2024", 7, &owner, &f), CF_OK, "created below");
    CHECK_INT(find(s, &t.id, "reports/2024", 0, 100, ids, 64), 1, "a path query finds it");
    CHECK_INT(find(s, &t.id, "q3", 0, 100, ids, 64), 1, "a name query finds it");
    CHECK_INT(cf_node_move(s, &t.id, &f.id, NULL, "Q4-2024", 7, &g), CF_OK, "renamed");
    cf_node_clear(&g);
    CHECK_INT(find(s, &t.id, "q3", 0, 100, ids, 64), 0, "the old name is gone at once");
    CHECK_INT(find(s, &t.id, "q4", 0, 100, ids, 64), 1, "the new one is there");
    CHECK_INT(cf_node_move(s, &t.id, &f.id, &t.root, NULL, 0, &g), CF_OK, "moved to the root");
    cf_node_clear(&g);
    CHECK_INT(find(s, &t.id, "reports/q4", 0, 100, ids, 64), 0, "no longer below Reports");
    CHECK_INT(cf_node_trash(s, &t.id, &f.id), CF_OK, "trashed");
    CHECK_INT(find(s, &t.id, "q4", 0, 100, ids, 64), 0, "trashed: not a candidate");
    CHECK_INT(find(s, &t.id, "q4", CF_SEARCH_TRASHED, 100, ids, 64), 1, "unless asked for (provenance)");
    CHECK_INT(cf_node_purge(s, &t.id, &f.id), CF_OK, "purged");
    CHECK_INT(find(s, &t.id, "q4", CF_SEARCH_TRASHED, 100, ids, 64), 0, "purged: gone");
    cf_node_clear(&f);

    /* Paging: 40 names, found in id order whatever the step size. */
    for (int i = 0; i < 40; i++) {
        char name[32];
        int n = snprintf(name, sizeof name, "page-%02d", i);
        CHECK_INT(cf_folder_create(s, &t.id, &reports.id, name, (size_t)n, &owner, &g), CF_OK, "page folder %d", i);
        cf_node_clear(&g);
    }
    for (size_t step = 1; step <= 64; step *= 4) {
        CHECK_INT(find(s, &t.id, "page-", 0, step, ids, 64), 40, "40 found with steps of %zu", step);
        bool sorted = true;
        for (int i = 1; i < 40; i++)
            sorted = sorted && memcmp(ids[i - 1].b, ids[i].b, CF_ID_LEN) < 0;
        CHECK(sorted, "in increasing id order, no repeats (step %zu)", step);
    }
    struct cf_search_stats st;
    cf_store_search_stats(s, &st);
    CHECK(st.ready && st.tenants == 2 && st.entries == 42 && st.bytes > 42 * 40, "stats: %llu entries, %llu bytes",
          (unsigned long long)st.entries, (unsigned long long)st.bytes);

    /* Refresh (cluster mode): a record changed behind the index's back is re-read. */
    CHECK_INT(cf_store_search_refresh(s, &t.id, &reports.id), CF_OK, "refresh of a live node");
    CHECK_INT(find(s, &t.id, "reports", 0, 100, ids, 64), 1, "still there");

    /* Deleting a tenant drops its names at once. */
    CHECK_INT(cf_tenant_delete(s, &t2.id, NULL), CF_OK, "tenant deleted");
    CHECK_INT(find(s, &t2.id, "reports", CF_SEARCH_TRASHED, 100, ids, 64), 0, "its names are gone");
    CHECK_INT(find(s, &t.id, "reports", 0, 100, ids, 64), 1, "the other tenant's stay");
    cf_store_search_stats(s, &st);
    CHECK(st.entries == 41, "41 entries left (%llu)", (unsigned long long)st.entries);

    cf_node_clear(&reports);
    cf_tenant_clear(&t);
    cf_tenant_clear(&t2);
    cf_store_close(s); /* frees the index: the sanitizer build checks for leaks */

    /* Reopened and rebuilt: the same answers from the sealed records. */
    CHECK_INT(cf_store_open(dir, &master, &s), CF_OK, "reopened");
    if (s != NULL) {
        CHECK_INT(cf_store_search_build(s, &names), CF_OK, "rebuilt");
        CHECK_INT(names, 41, "41 names");
        struct cf_id tid;
        CHECK_INT(cf_tenant_find(s, "acme", 4, &tid), CF_OK, "tenant");
        CHECK_INT(find(s, &tid, "page-1", 0, 100, ids, 64), 10, "page-1x found after the rebuild");
        cf_store_close(s);
    }
    cf_key_wipe(&master);
    free(dir);
}

int main(void)
{
    char base[] = "/tmp/coffer-unit-search-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_fold();
    test_query();
    test_store(base);
    nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
