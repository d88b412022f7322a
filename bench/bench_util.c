/* bench/bench_util.c - timing helpers. */
#include <stdlib.h>
#include <time.h>

#include "bench/bench.h"
#include "core/rng.h"
#include "core/tensor.h"

double bench_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(void (*fn)(void *), void *arg, int warmup, int n) {
    for (int i = 0; i < warmup; i++) fn(arg);
    double *t = malloc((size_t)n * sizeof *t);
    for (int i = 0; i < n; i++) {
        double t0 = bench_now();
        fn(arg);
        t[i] = bench_now() - t0;
    }
    qsort(t, (size_t)n, sizeof *t, by_value);
    double m = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    free(t);
    return m;
}

cf_tensor *bench_param(int ndim, const int64_t *shape, uint64_t seed) {
    cf_tensor *p = cf_param_new(NULL, ndim, shape);
    cf_rng r = cf_rng_init(seed, CF_RNG_STREAM_TEST);
    for (int64_t i = 0; i < p->numel; i++) p->data[i] = 2 * cf_rng_uniform(&r) - 1;
    return p;
}
