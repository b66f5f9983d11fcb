/*
 * tap.h: a tiny TAP producer for unit tests (meson test, protocol 'tap'). Each CHECK prints one
 * "ok N - description" or "not ok N - description" line with the failing file and line; tap_done()
 * prints the plan and returns the exit status (non-zero if any check failed).
 */
#ifndef CF_TAP_H
#define CF_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        tap_n++;                                                                                   \
        int tap_ok_ = (cond) ? 1 : 0;                                                              \
        if (!tap_ok_)                                                                              \
            tap_failed++;                                                                          \
        printf("%sok %d - ", tap_ok_ ? "" : "not ", tap_n);                                        \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        if (!tap_ok_)                                                                              \
            printf("# failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                          \
        fflush(stdout);                                                                            \
    } while (0)

/* CHECK_INT(a, b, desc): equality of two integers, printing both on failure. */
#define CHECK_INT(a, b, ...)                                                                       \
    do {                                                                                           \
        long long tap_a_ = (long long)(a), tap_b_ = (long long)(b);                                \
        CHECK(tap_a_ == tap_b_, __VA_ARGS__);                                                      \
        if (tap_a_ != tap_b_)                                                                      \
            printf("#   got %lld, expected %lld\n", tap_a_, tap_b_);                               \
    } while (0)

/* CHECK_STR(a, b, desc): equality of two C strings (NULL-safe). */
#define CHECK_STR(a, b, ...)                                                                       \
    do {                                                                                           \
        const char *tap_a_ = (a), *tap_b_ = (b);                                                   \
        int tap_eq_ = (tap_a_ == NULL || tap_b_ == NULL) ? tap_a_ == tap_b_ : strcmp(tap_a_, tap_b_) == 0; \
        CHECK(tap_eq_, __VA_ARGS__);                                                               \
        if (!tap_eq_)                                                                              \
            printf("#   got \"%s\", expected \"%s\"\n", tap_a_ ? tap_a_ : "(null)", tap_b_ ? tap_b_ : "(null)"); \
    } while (0)

/* tap_diag(prefix, text): a diagnostic that may span lines (a library's error message), each line
 * printed as a TAP comment so that the harness never sees a line it cannot parse. */
static inline void tap_diag(const char *prefix, const char *text)
{
    const char *p = text != NULL ? text : "(null)";
    do {
        const char *nl = strchr(p, '\n');
        int len = nl != NULL ? (int)(nl - p) : (int)strlen(p);
        if (len > 0 || nl == NULL)
            printf("# %s%.*s\n", prefix, len, p);
        p = nl != NULL ? nl + 1 : NULL;
        prefix = "  ";
    } while (p != NULL && *p != '\0');
}

static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed == 0 ? 0 : 1;
}

#endif
