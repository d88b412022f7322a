/* tests/blas_naive.c - the few CBLAS entry points cformer calls, as plain C loops, for the
 * sanitizer builds that cannot use OpenBLAS (make tsan, make fuzz; docs/reliability.md).
 *
 * Why: OpenBLAS is neither instrumented (ThreadSanitizer would not see its reads and writes of
 * our buffers, so a race between a tile's GEMM and another thread would go unnoticed) nor built
 * against clang's OpenMP runtime (its OpenMP build pulls in libgomp beside libomp). These loops are
 * compiled with the sanitizer like the rest, so every access to a tensor is checked. Each output
 * element is computed by one loop in a fixed order (accumulated in double), so results do not
 * depend on how cformer tiles a product: the determinism tests hold here as with OpenBLAS.
 * Slow, and only ever linked into sanitizer builds.
 */
#include <cblas.h>

/* Element (i, j) of op(X) for a matrix stored with leading dimension ld. */
static inline long at(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE t, long i, long j, long ld) {
    const int trans = t == CblasTrans || t == CblasConjTrans;
    if (order == CblasRowMajor) return trans ? j * ld + i : i * ld + j;
    return trans ? i * ld + j : j * ld + i;
}

#define GEMM(NAME, T)                                                                                     \
    void NAME(OPENBLAS_CONST enum CBLAS_ORDER order, OPENBLAS_CONST enum CBLAS_TRANSPOSE ta,              \
              OPENBLAS_CONST enum CBLAS_TRANSPOSE tb, OPENBLAS_CONST blasint m, OPENBLAS_CONST blasint n,   \
              OPENBLAS_CONST blasint k, OPENBLAS_CONST T alpha, OPENBLAS_CONST T *a,                       \
              OPENBLAS_CONST blasint lda, OPENBLAS_CONST T *b, OPENBLAS_CONST blasint ldb,                 \
              OPENBLAS_CONST T beta, T *c, OPENBLAS_CONST blasint ldc) {                                    \
        for (long i = 0; i < m; i++)                                                                      \
            for (long j = 0; j < n; j++) {                                                                \
                double s = 0;                                                                             \
                for (long p = 0; p < k; p++)                                                              \
                    s += (double)a[at(order, ta, i, p, lda)] * (double)b[at(order, tb, p, j, ldb)];       \
                long o = at(order, CblasNoTrans, i, j, ldc);                                              \
                c[o] = (T)(alpha * s + (beta == 0 ? 0 : (double)beta * (double)c[o]));                    \
            }                                                                                             \
    }

#define GEMV(NAME, T)                                                                                     \
    void NAME(OPENBLAS_CONST enum CBLAS_ORDER order, OPENBLAS_CONST enum CBLAS_TRANSPOSE t,                \
              OPENBLAS_CONST blasint m, OPENBLAS_CONST blasint n, OPENBLAS_CONST T alpha,                  \
              OPENBLAS_CONST T *a, OPENBLAS_CONST blasint lda, OPENBLAS_CONST T *x,                        \
              OPENBLAS_CONST blasint incx, OPENBLAS_CONST T beta, T *y, OPENBLAS_CONST blasint incy) {      \
        const int trans = t == CblasTrans || t == CblasConjTrans;                                          \
        long rows = trans ? n : m, cols = trans ? m : n;                                                  \
        for (long i = 0; i < rows; i++) {                                                                 \
            double s = 0;                                                                                 \
            for (long j = 0; j < cols; j++)                                                               \
                s += (double)a[at(order, t, i, j, lda)] * (double)x[j * incx];                            \
            y[i * incy] = (T)(alpha * s + (beta == 0 ? 0 : (double)beta * (double)y[i * incy]));          \
        }                                                                                                 \
    }

GEMM(cblas_sgemm, float)
GEMM(cblas_dgemm, double)
GEMV(cblas_sgemv, float)
GEMV(cblas_dgemv, double)

/* cformer checks at start-up that BLAS shares its OpenMP pool (core/threads.c); these loops have
 * no threads of their own, which is what that check protects, so they answer "OpenMP". */
int openblas_get_parallel(void) { return 2; }
void openblas_set_num_threads(int n) { (void)n; }
