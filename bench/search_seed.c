/*
 * search_seed.c: fills a stopped server's store with many small files, fast, for bench/search.sh
 * (issue 21: search on 100 000 files). It writes through the storage library exactly as an upload
 * does (a sealed chunk, then the synced commit batch with its journal entry), only without HTTP and
 * the scanner, from several threads at once, and keeps the journal anchor current as the server
 * would, so that the server starts on the result.
 *
 *   cf-search-seed DATA_DIR MASTER_KEY ANCHOR TENANT USERNAME FILES [THREADS]
 *
 * Layout, in USERNAME's private space: FILES/1000 folders "project-NNN", each holding 1000 files
 * "doc-NNNNNN-WORD-TAG.EXT": NNNNNN the file's number (a unique match), WORD one of 10 words (10 %),
 * TAG "invoice" on every 100th file (1 %) and "zebra" on every 1000th (0.1 %), else "misc". Prints
 * files/s, then builds the search index as the server's start-up does and prints its size and the
 * time it took. Nothing here asserts a time.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "search.h"
#include "storage.h"

#define THREADS_MAX 16
#define PER_FOLDER 1000

static const char *const words[10] = {"alpha", "bravo", "charlie", "delta", "echo",
                                      "foxtrot", "golf", "hotel", "india", "juliet"};
static const char *const exts[4] = {"pdf", "txt", "xlsx", "md"};
static const struct cf_scan_summary g_scan = {.result = (char *)"clean", .engine = (char *)"search-seed", .at = 1};

struct job {
    struct cf_store *s;
    struct cf_id tenant, owner;
    const struct cf_id *folders;
    int from, to; /* file numbers [from, to) */
    int failed;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    for (int i = j->from; i < j->to; i++) {
        char name[96], data[64];
        const char *tag = i % 1000 == 0 ? "zebra" : i % 100 == 0 ? "invoice" : "misc";
        int n = snprintf(name, sizeof name, "doc-%06d-%s-%s.%s", i, words[i % 10], tag, exts[i % 4]);
        int dn = snprintf(data, sizeof data, "file %d\n", i);
        struct cf_commit c = {.parent = j->folders[i / PER_FOLDER], .name = name, .name_len = (size_t)n,
                              .uploader = j->owner, .size = (uint64_t)dn, .mime = "text/plain", .scan = &g_scan};
        cf_sha256(data, (size_t)dn, c.sha256);
        struct cf_upload *u;
        struct cf_node node;
        if (cf_upload_begin(j->s, &j->tenant, &u) != CF_OK) {
            j->failed++;
            continue;
        }
        if (cf_upload_put_chunk(u, 0, data, (size_t)dn, true) != CF_OK || cf_upload_commit(u, &c, &node) != CF_OK) {
            cf_upload_abort(u);
            j->failed++;
        } else {
            cf_node_clear(&node);
        }
        cf_upload_free(u);
    }
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: cf-search-seed DATA_DIR MASTER_KEY ANCHOR TENANT USERNAME FILES [THREADS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 7 || argc > 8)
        return usage();
    long files = strtol(argv[6], NULL, 10), threads = argc == 8 ? strtol(argv[7], NULL, 10) : 8;
    if (files < 1 || files > 10000000 || threads < 1 || threads > THREADS_MAX)
        return usage();
    struct cf_key master;
    int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, master.k, sizeof master.k) != (ssize_t)sizeof master.k) {
        fprintf(stderr, "cf-search-seed: cannot read the master key %s\n", argv[2]);
        return 1;
    }
    close(fd);
    struct cf_anchor *anchor = NULL;
    char *err = NULL;
    struct cf_store *s = NULL;
    if (cf_anchor_open(argv[3], true, &anchor, &err) != CF_OK) {
        fprintf(stderr, "cf-search-seed: %s\n", err);
        return 1;
    }
    if (cf_store_open_anchored(argv[1], &master, anchor, CF_ANCHOR_CHECK, &s) != CF_OK) {
        fprintf(stderr, "cf-search-seed: cannot open the store in %s (is the server running?)\n", argv[1]);
        return 1;
    }
    cf_key_wipe(&master);
    struct cf_id tenant, uid;
    struct cf_user user;
    if (cf_tenant_find(s, argv[4], strlen(argv[4]), &tenant) != CF_OK ||
        cf_user_find(s, &tenant, argv[5], strlen(argv[5]), &uid) != CF_OK || cf_user_get(s, &tenant, &uid, &user) != CF_OK) {
        fprintf(stderr, "cf-search-seed: no user %s in tenant %s\n", argv[5], argv[4]);
        return 1;
    }
    size_t nfolders = (size_t)(files + PER_FOLDER - 1) / PER_FOLDER;
    struct cf_id *folders = cf_xcalloc(nfolders, sizeof *folders);
    for (size_t f = 0; f < nfolders; f++) {
        char name[32];
        int n = snprintf(name, sizeof name, "project-%03zu", f);
        struct cf_node node;
        if (cf_folder_create(s, &tenant, &user.private_root, name, (size_t)n, &uid, &node) != CF_OK) {
            fprintf(stderr, "cf-search-seed: cannot create folder %s (already seeded?)\n", name);
            return 1;
        }
        folders[f] = node.id;
        cf_node_clear(&node);
    }
    pthread_t tid[THREADS_MAX];
    struct job jobs[THREADS_MAX];
    double t0 = now_s();
    for (long t = 0; t < threads; t++) {
        jobs[t] = (struct job){.s = s, .tenant = tenant, .owner = uid, .folders = folders,
                               .from = (int)(files * t / threads), .to = (int)(files * (t + 1) / threads)};
        pthread_create(&tid[t], NULL, job_main, &jobs[t]);
    }
    int failed = 0;
    for (long t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        failed += jobs[t].failed;
    }
    double dt = now_s() - t0;
    printf("seeded %ld files in %zu folders in %.1f s (%.0f files/s), %d failed\n", files, nfolders, dt,
           (double)files / dt, failed);
    /* What the server's start-up will do: build the index, and how big it is. */
    struct cf_search_stats st;
    uint64_t names = 0;
    t0 = now_s();
    if (cf_store_search_build(s, &names) != CF_OK) {
        fprintf(stderr, "cf-search-seed: the index does not build\n");
        return 1;
    }
    dt = now_s() - t0;
    /* The first search builds the flat copy of the names: do one, and time it with the build. */
    struct cf_search_query q;
    const char *why;
    struct cf_id got[1], last;
    size_t ngot;
    bool end;
    double f0 = now_s();
    if (cf_search_query_parse("x", 1, &q, &why) != CF_OK ||
        cf_search_candidates(s, &tenant, &q, NULL, 0, 1, 1, got, NULL, &ngot, &last, &end) != CF_OK) {
        fprintf(stderr, "cf-search-seed: the index does not answer\n");
        return 1;
    }
    cf_search_query_clear(&q);
    double flat_s = now_s() - f0;
    cf_store_search_stats(s, &st);
    printf("search index: %llu names in %llu tenant(s), %.1f MiB (%.0f bytes per name), built in %.2f s "
           "(+ %.3f s for the flat copy at the first search)\n",
           (unsigned long long)st.entries, (unsigned long long)st.tenants, (double)st.bytes / (1 << 20),
           st.entries > 0 ? (double)st.bytes / (double)st.entries : 0.0, dt, flat_s);
    cf_user_clear(&user);
    free(folders);
    cf_store_close(s);
    return failed == 0 ? 0 : 1;
}
