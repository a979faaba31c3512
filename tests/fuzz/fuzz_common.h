/*
 * fuzz_common.h - what every libFuzzer target of tests/fuzz/ shares: the entry point's prototype and FUZZ_ASSERT,
 * which aborts (a finding, with the input saved) when a property the parser promises does not hold.
 */
#ifndef BERTH_FUZZ_COMMON_H
#define BERTH_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(c)                                                                                                 \
    do {                                                                                                               \
        if (!(c))                                                                                                      \
            abort();                                                                                                   \
    } while (0)

#endif
