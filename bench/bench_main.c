/* bench/bench_main.c - `make bench`: every benchmark, or those named on the command line. */
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "core/common.h"
#include "core/threads.h"

static const struct {
    const char *name;
    int (*run)(void);
} benches[] = {
    {"matmul", bench_matmul},
    {"attention", bench_attention},
    {"tokenizer", bench_tokenizer},
    {"decode", bench_decode},
};

int main(int argc, char **argv) {
    if (cf_threads_init(0) != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        return 1;
    }
    printf("cformer bench: %d threads, OpenBLAS %s threading\n", cf_threads_count(), cf_threads_blas_model());
    int rc = 0;
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++) {
        bool selected = argc < 2;
        for (int a = 1; a < argc; a++) selected |= strcmp(argv[a], benches[i].name) == 0;
        if (selected) rc |= benches[i].run();
    }
    return rc;
}
