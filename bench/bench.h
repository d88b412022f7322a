/* bench/bench.h - shared helpers for the benchmarks run by `make bench`. */
#ifndef CF_BENCH_H
#define CF_BENCH_H

#include <stdint.h>

typedef struct cf_tensor cf_tensor;

/* Median of n timings of fn(arg), after `warmup` untimed calls. */
double bench_median(void (*fn)(void *), void *arg, int warmup, int n);

/* A parameter filled with uniform values in [-1, 1). */
cf_tensor *bench_param(int ndim, const int64_t *shape, uint64_t seed);

int bench_matmul(void);
int bench_attention(void);
int bench_tokenizer(void);
int bench_decode(void);

#endif
