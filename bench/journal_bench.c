/*
 * journal_bench.c: what the metadata journal (storage/journal.c) costs on the write path, measured
 * on the storage library itself (no HTTP, no scanner), with the journal on and, for comparison, off
 * (writes go straight to RocksDB, as before the journal existed):
 *   - uploads/s of 4 KiB files (begin, one sealed chunk, the synced commit batch), by 1 and by 8
 *     threads (8: concurrent commits share fsyncs, RocksDB's group commit without the journal, the
 *     journal's own with it);
 *   - synced one-record batches/s (a ~300-byte sealed value, the size of a share record), 1 and 8
 *     threads;
 *   - and how fast `coffer fsck` replays the journal over the resulting store (records/s).
 * Each figure is the median of RUNS runs on a fresh store, on/off alternating. Prints a markdown
 * table. Build it in a release build directory:
 *   meson setup build-rel --buildtype=release && ninja -C build-rel bench/cf-journal-bench
 *   build-rel/bench/cf-journal-bench /var/tmp/jbench [uploads]
 * Numbers go to docs/DESIGN.md §4 "Metadata journal"; nothing here asserts a time.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal.h"

#define RUNS 3
#define THREADS_MAX 8
#define FILE_BYTES 4096
#define RECORD_BYTES 300

static struct cf_key g_master;
static const struct cf_scan_summary g_scan = {.result = (char *)"clean", .engine = (char *)"bench", .at = 1};
static const char *g_base;
static int g_seq;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct job {
    struct cf_store *s;
    struct cf_tenant *t;
    struct cf_id uploader;
    int id, count;
    bool records;
    int failed;
};

static void *job_main(void *arg)
{
    struct job *j = arg;
    uint8_t data[FILE_BYTES], rec[RECORD_BYTES];
    cf_random(data, sizeof data);
    cf_random(rec, sizeof rec);
    for (int i = 0; i < j->count; i++) {
        if (j->records) {
            char k[48];
            int n = snprintf(k, sizeof k, "%.16sbench-%02d-%08d", (const char *)j->t->id.b, j->id, i % 1000);
            struct cf_batch *b = cf_batch_new(j->s->eng);
            cf_batch_put(b, CF_CF_SHARES, k, (size_t)n, (const char *)rec, sizeof rec);
            j->failed += cf_db_write(j->s, b, true) != CF_OK;
            cf_batch_free(b);
            continue;
        }
        struct cf_upload *u;
        struct cf_node node;
        char name[64];
        snprintf(name, sizeof name, "f-%d-%d.bin", j->id, i);
        struct cf_commit c = {.parent = j->t->root, .name = name, .name_len = strlen(name), .uploader = j->uploader,
                              .size = sizeof data, .mime = "application/octet-stream", .scan = &g_scan};
        cf_sha256(data, sizeof data, c.sha256);
        if (cf_upload_begin(j->s, &j->t->id, &u) != CF_OK) {
            j->failed++;
            continue;
        }
        if (cf_upload_put_chunk(u, 0, data, sizeof data, true) != CF_OK || cf_upload_commit(u, &c, &node) != CF_OK) {
            cf_upload_abort(u);
            j->failed++;
        } else {
            cf_node_clear(&node);
        }
        cf_upload_free(u);
    }
    return NULL;
}

static void ignore(void *ctx, const struct cf_journal_finding *f)
{
    (void)ctx;
    (void)f;
}

/* One run: a fresh store, the journal on or off, `total` operations over `threads` threads.
 * Returns operations per second; *check_rate: records/s of the journal replay afterwards (on only). */
static double run(bool journal, bool records, int threads, int total, double *check_rate)
{
    char *dir = cf_xasprintf("%s/run-%d", g_base, ++g_seq);
    struct cf_store *s = NULL;
    struct cf_tenant t;
    if (cf_store_create(dir, &g_master) != CF_OK || cf_store_open(dir, &g_master, &s) != CF_OK) {
        fprintf(stderr, "cannot create a store in %s\n", dir);
        exit(1);
    }
    s->journal.on = journal; /* off: every write goes straight to RocksDB, as before the journal */
    if (cf_tenant_create(s, "bench", &t) != CF_OK)
        exit(1);
    pthread_t tid[THREADS_MAX];
    struct job jobs[THREADS_MAX];
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        jobs[i] = (struct job){.s = s, .t = &t, .id = i, .count = total / threads, .records = records};
        cf_id_new(&jobs[i].uploader);
        pthread_create(&tid[i], NULL, job_main, &jobs[i]);
    }
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        failed += jobs[i].failed;
    }
    double dt = now_s() - t0;
    if (failed != 0) {
        fprintf(stderr, "%d operations failed\n", failed);
        exit(1);
    }
    *check_rate = 0;
    if (journal) {
        struct cf_journal_report rep;
        double c0 = now_s();
        if (cf_journal_check(s, NULL, ignore, NULL, &rep) != CF_OK || rep.findings != 0) {
            fprintf(stderr, "the journal check failed\n");
            exit(1);
        }
        *check_rate = (double)rep.records / (now_s() - c0);
    }
    cf_tenant_clear(&t);
    cf_store_close(s);
    char *cmd = cf_xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
    free(cmd);
    free(dir);
    return (double)(threads * (total / threads)) / dt;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v)
{
    qsort(v, RUNS, sizeof *v, dcmp);
    return v[RUNS / 2];
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: cf-journal-bench DIR [OPERATIONS]\n");
        return 2;
    }
    g_base = argv[1];
    int total = argc == 3 ? atoi(argv[2]) : 2000;
    if (total < THREADS_MAX) {
        fprintf(stderr, "cf-journal-bench: OPERATIONS must be at least %d\n", THREADS_MAX);
        return 2;
    }
    char *mk = cf_xasprintf("mkdir -p '%s'", g_base);
    if (system(mk) != 0)
        return 1;
    free(mk);
    cf_key_random(&g_master);
    printf("| write path (%d operations, median of %d) | journal off | journal on | on/off |\n", total, RUNS);
    printf("| --- | ---: | ---: | ---: |\n");
    double replay[RUNS * 4];
    int nreplay = 0;
    for (int records = 0; records <= 1; records++) {
        for (int threads = 1; threads <= THREADS_MAX; threads *= THREADS_MAX) {
            double off[RUNS], on[RUNS], c;
            for (int r = 0; r < RUNS; r++) {
                off[r] = run(false, records, threads, total, &c);
                on[r] = run(true, records, threads, total, &c);
                if (!records)
                    replay[nreplay++] = c;
            }
            double mo = median(off), mn = median(on);
            printf("| %s, %d thread%s | %.0f/s | %.0f/s | %.2f |\n",
                   records ? "synced one-record batches" : "4 KiB uploads (begin, chunk, commit)", threads,
                   threads == 1 ? "" : "s", mo, mn, mn / mo);
            fflush(stdout);
        }
    }
    qsort(replay, (size_t)nreplay, sizeof *replay, dcmp);
    printf("\njournal replay (cf_journal_check, what fsck adds): %.0f records/s (median)\n", replay[nreplay / 2]);
    return 0;
}
