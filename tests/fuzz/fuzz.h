/* tests/fuzz/fuzz.h - what the libFuzzer harnesses share (make fuzz, docs/reliability.md).
 *
 *     int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
 *         const char *path = fuzz_file(data, size, NULL);   // the bytes as a file, for path APIs
 *         cf_st_file *f = cf_st_open(path);
 *         FUZZ_ASSERT(f || cf_error_message()[0]);           // a property: trap when it fails
 *         ...
 *     }
 *
 * Each harness feeds one untrusted-input entry point and checks properties beyond "no crash"
 * (round trips, bounds of results); a broken property traps, which libFuzzer reports with the
 * input like a crash. ASan+UBSan report memory and undefined-behaviour errors.
 */
#ifndef CF_FUZZ_H
#define CF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/common.h"

#define FUZZ_ASSERT(cond)                                                                         \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #cond);      \
            abort();                                                                              \
        }                                                                                         \
    } while (0)

/* The input as a file: an in-memory file (memfd) rewritten on each call, returned as a path that
 * ends in suffix (e.g. ".gz", through a symlink; NULL: no suffix). The path stays the same. */
const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix);
/* A malloc'ed NUL-terminated copy of data[0..size). */
char *fuzz_cstr(const uint8_t *data, size_t size);

#endif
