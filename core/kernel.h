/* core/kernel.h - private helpers shared by the op kernels (not part of the public API). */
#ifndef CF_KERNEL_H
#define CF_KERNEL_H

#include <cblas.h>

#include "core/common.h"
#include "core/parallel.h"

#ifdef CF_REAL_DOUBLE
#define cf_gemm cblas_dgemm
#define cf_gemv cblas_dgemv
#else
#define cf_gemm cblas_sgemm
#define cf_gemv cblas_sgemv
#endif

/* Parallelise a loop only when it has enough work to pay for waking the threads. */
#define CF_PAR_MIN_WORK 32768

/* dst[c] += sum_r x[r * ld + c] over rows, in double (bias gradients, per-block partial sums).
 * Work items are fixed by the shape: blocks of 64 columns times chunks of COL_SUM_ROWS rows, each
 * summing its rows in order into its own slot of `scratch` (cf_col_sum_scratch doubles, or NULL
 * when rows <= COL_SUM_ROWS); the chunks' sums are then added in chunk order. So the result never
 * depends on the thread count, and a [1536, 128] bias gradient is 12 work items rather than 2. */
enum { CF_COL_SUM_COLS = 64, CF_COL_SUM_ROWS = 128 };
static inline int64_t cf_col_sum_scratch(int64_t rows, int64_t cols) {
    int64_t chunks = (rows + CF_COL_SUM_ROWS - 1) / CF_COL_SUM_ROWS;
    return chunks > 1 ? chunks * cols : 0;
}
static inline void cf_col_sum_add(const cf_real *x, int64_t rows, int64_t ld, int64_t cols, cf_real *dst,
                                  double *scratch) {
    enum { BLOCK = CF_COL_SUM_COLS };
    int64_t chunks = (rows + CF_COL_SUM_ROWS - 1) / CF_COL_SUM_ROWS, blocks = (cols + BLOCK - 1) / BLOCK;
    if (chunks <= 1 || !scratch) chunks = 1;
    int64_t chunk_rows = chunks == 1 ? rows : CF_COL_SUM_ROWS;
    CF_PARALLEL_FOR(rows * cols > CF_PAR_MIN_WORK, for (int64_t task = 0; task < chunks * blocks; task++) {
        int64_t k = task / blocks, c0 = (task % blocks) * BLOCK, c1 = c0 + BLOCK < cols ? c0 + BLOCK : cols;
        int64_t r0 = k * chunk_rows, r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
        double acc[BLOCK] = {0};
        for (int64_t r = r0; r < r1; r++) {
            const cf_real *row = x + r * ld;
            for (int64_t c = c0; c < c1; c++) acc[c - c0] += (double)row[c];
        }
        if (chunks == 1)
            for (int64_t c = c0; c < c1; c++) dst[c] += (cf_real)acc[c - c0];
        else
            for (int64_t c = c0; c < c1; c++) scratch[k * cols + c] = acc[c - c0];
    });
    if (chunks == 1) return;
    for (int64_t c = 0; c < cols; c++) {
        double s = 0;
        for (int64_t k = 0; k < chunks; k++) s += scratch[k * cols + c];
        dst[c] += (cf_real)s;
    }
}

#endif
