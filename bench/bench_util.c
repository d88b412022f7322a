/* bench/bench_util.c - timing helpers. */
#include <stdlib.h>
#include <time.h>

#include "bench/bench.h"
#include "core/rng.h"
#include "core/tensor.h"

double bench_median(void (*fn)(void *), void *arg, int warmup, int n) {
    for (int i = 0; i < warmup; i++) fn(arg);
    double *t = malloc((size_t)n * sizeof *t);
    for (int i = 0; i < n; i++) {
        double t0 = cf_now_s();
        fn(arg);
        t[i] = cf_now_s() - t0;
    }
    double m = cf_median(t, n);
    free(t);
    return m;
}

cf_tensor *bench_param(int ndim, const int64_t *shape, uint64_t seed) {
    cf_tensor *p = cf_param_new(NULL, ndim, shape);
    cf_rng r = cf_rng_init(seed, CF_RNG_STREAM_TEST);
    for (int64_t i = 0; i < p->numel; i++) p->data[i] = 2 * cf_rng_uniform(&r) - 1;
    return p;
}
