/*
 * replay.c: runs a fuzz target without libFuzzer. Every argument is a file or a directory whose
 * regular files (sorted by name, not recursive) are each fed once to LLVMFuzzerTestOneInput. Used by
 * meson (suite fuzz-replay) on the seed corpora in tests/fuzz/corpus, so that every build, sanitized
 * or not, replays them; an invariant that breaks aborts the test.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static size_t replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    if (buf == NULL || ferror(f)) {
        fprintf(stderr, "replay: %s: read failed\n", path);
        exit(2);
    }
    fclose(f);
    /* An exact-size copy, so that ASan sees a read one byte past the input. */
    uint8_t *exact = malloc(n > 0 ? n : 1);
    if (exact == NULL)
        exit(2);
    memcpy(exact, buf, n);
    free(buf);
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    size_t total = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE-OR-DIRECTORY...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 2;
        }
        if (!S_ISDIR(st.st_mode)) {
            total += replay_file(argv[i]);
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (d == NULL) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 2;
        }
        char **names = NULL;
        size_t nn = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            names = realloc(names, (nn + 1) * sizeof *names);
            if (names == NULL || (names[nn] = malloc(strlen(argv[i]) + strlen(e->d_name) + 2)) == NULL)
                return 2;
            snprintf(names[nn], strlen(argv[i]) + strlen(e->d_name) + 2, "%s/%s", argv[i], e->d_name);
            nn++;
        }
        closedir(d);
        qsort(names, nn, sizeof *names, by_name);
        for (size_t k = 0; k < nn; k++) {
            if (stat(names[k], &st) == 0 && S_ISREG(st.st_mode))
                total += replay_file(names[k]);
            free(names[k]);
        }
        free(names);
    }
    if (total == 0) {
        fprintf(stderr, "replay: no input found\n");
        return 1;
    }
    printf("replayed %zu inputs\n", total);
    return 0;
}
