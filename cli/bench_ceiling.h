/* cli/bench_ceiling.h - how fast a training step's products could run: the ceiling `cformer bench`
 * compares the step's GFLOP/s with.
 *
 *     cf_gemm_log log = {0};
 *     cf_gemm_log_install(&log);  one_step();  cf_gemm_log_install(NULL);   // core/gemm.h
 *     cf_gemm_ceiling c;
 *     cf_gemm_ceiling_measure(&log, &c);
 *     printf("%.1f GFLOP/s\n", c.flops / c.sgemm_s * 1e-9);
 *
 * Each recorded shape is timed twice, the median of several calls on buffers of its size: as one
 * cblas_sgemm call on all the threads (what a program calling OpenBLAS directly gets) and as
 * cformer's own cf_gemm_rm (fixed row tiles of single-threaded BLAS calls, core/gemm.h). The sums
 * over the step's products are the time its products alone would take.
 */
#ifndef CF_CLI_BENCH_CEILING_H
#define CF_CLI_BENCH_CEILING_H

#include <stdint.h>

#include "core/gemm.h"

typedef struct cf_gemm_ceiling {
    int64_t shapes, products;
    double flops;                   /* of the recorded products */
    double sgemm_s, tiled_s;        /* the products' time as cblas_sgemm calls, as cf_gemm_rm calls */
} cf_gemm_ceiling;

void cf_gemm_ceiling_measure(const cf_gemm_log *log, cf_gemm_ceiling *out);

#endif
