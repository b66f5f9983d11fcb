/*
 * fuzz.h: what every libFuzzer target in tests/fuzz shares. A target defines LLVMFuzzerTestOneInput,
 * which libFuzzer (scripts/fuzz.sh) or replay.c (meson test --suite fuzz-replay) calls with one
 * input. Targets assert invariants with FUZZ_CHECK, which aborts: libFuzzer keeps the input as a
 * crash artifact and the replay test fails.
 */
#ifndef CF_FUZZ_H
#define CF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                                    \
    do {                                                                                                    \
        if (!(cond)) {                                                                                      \
            fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond);                  \
            abort();                                                                                        \
        }                                                                                                   \
    } while (0)

#endif
