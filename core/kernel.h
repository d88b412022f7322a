/* core/kernel.h - private helpers shared by the op kernels (not part of the public API). */
#ifndef CF_KERNEL_H
#define CF_KERNEL_H

#include <cblas.h>

#include "core/common.h"

#ifdef CF_REAL_DOUBLE
#define cf_gemm cblas_dgemm
#define cf_gemv cblas_dgemv
#else
#define cf_gemm cblas_sgemm
#define cf_gemv cblas_sgemv
#endif

/* Parallelise a loop only when it has enough work to pay for waking the threads. */
#define CF_PAR_MIN_WORK 32768

/* dst[c] += sum_r x[r * ld + c] for r = 0..rows-1 in order, in double (bias gradients, per-block
 * partial sums). Each thread owns a block of columns, so the result does not depend on threads. */
static inline void cf_col_sum_add(const cf_real *x, int64_t rows, int64_t ld, int64_t cols, cf_real *dst) {
    enum { BLOCK = 64 };
#pragma omp parallel for schedule(static) if (rows * cols > CF_PAR_MIN_WORK)
    for (int64_t c0 = 0; c0 < cols; c0 += BLOCK) {
        int64_t c1 = c0 + BLOCK < cols ? c0 + BLOCK : cols;
        double acc[BLOCK] = {0};
        for (int64_t r = 0; r < rows; r++) {
            const cf_real *row = x + r * ld;
            for (int64_t c = c0; c < c1; c++) acc[c - c0] += (double)row[c];
        }
        for (int64_t c = c0; c < c1; c++) dst[c] += (cf_real)acc[c - c0];
    }
}

#endif
