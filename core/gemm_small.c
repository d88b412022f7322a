/* core/gemm_small.c - the small products of one attention head, in registers (see core/gemm.h).
 *
 * Why: an attention head at our sizes multiplies blocks of 16-128 rows by 32-64 columns, ~65 KFLOP
 * a product, thousands of them a step. Through cblas_sgemm each call also takes OpenBLAS's buffer
 * lock (blas_memory_alloc/free), packs both operands and dispatches: in a perf profile of
 * bench-tiny's attention on 2 threads those were ~25% of its time against ~30% in the kernel
 * proper. Here A is read in place (any row and column stride, so A^T costs nothing), B in place
 * when its rows are contiguous and otherwise copied 64 columns at a time into a [k][64] panel on
 * the stack, and C is computed in MR x 64 register tiles.
 *
 * Every element of C is one FMA chain over k = 0..K-1 from 0, times alpha, plus beta * C: it
 * depends on its row of A and its column of B alone, not on m, n, the tile it falls in, or the
 * thread. AVX-512 float builds; elsewhere (the float64 gradient-check build, other CPUs), and for a
 * transposed B with k > 256, the same call goes to cf_gemm_serial.
 */
#include "core/gemm.h"

#if defined(__AVX512F__) && !defined(CF_REAL_DOUBLE)
#define CF_GEMM_SMALL_AVX512 1
#include <immintrin.h>
#endif

/* PACK_MAX: floats of a B^T panel copied on the stack (64 KB), so k <= 256 there; larger k goes to BLAS */
enum { MR = 6, NR = 64, PACK_MAX = 16384 };

#ifdef CF_GEMM_SMALL_AVX512
/* C[mr, cols] (cols <= NR, nc = ceil(cols / 16) vectors) from A rows at a (strides ars, acs) and B
 * rows at b (ldb); mr and nc are compile-time constants in each copy (the switches below). */
static inline __attribute__((always_inline)) void small_tile(int mr, int nc, int64_t K, float alpha, const float *a,
                                                            int64_t ars, int64_t acs, const float *b, int64_t ldb,
                                                            float beta, float *c, int64_t ldc, __mmask16 tail) {
    __m512 acc[MR][NR / 16];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NR / 16; j++) acc[i][j] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < K; kk++) {
        __m512 bv[NR / 16];
        const float *bk = b + kk * ldb;
#pragma GCC unroll 4
        for (int j = 0; j < NR / 16; j++)
            if (j < nc) bv[j] = j == nc - 1 ? _mm512_maskz_loadu_ps(tail, bk + 16 * j) : _mm512_loadu_ps(bk + 16 * j);
        const float *ak = a + kk * acs;
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++)
            if (i < mr) {
                __m512 av = _mm512_set1_ps(ak[i * ars]);
#pragma GCC unroll 4
                for (int j = 0; j < NR / 16; j++)
                    if (j < nc) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
            }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NR / 16; j++) {
            if (i >= mr || j >= nc) continue;
            __mmask16 m = j == nc - 1 ? tail : (__mmask16)0xFFFF;
            float *cij = c + i * ldc + 16 * j;
            __m512 r = _mm512_mul_ps(acc[i][j], va);
            if (beta != 0) r = _mm512_add_ps(r, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m, cij)));
            _mm512_mask_storeu_ps(cij, m, r);
        }
}

#define SMALL_TILE_NC(mr)                                                                                   \
    switch (nc) {                                                                                           \
    case 4: small_tile(mr, 4, K, alpha, a, ars, acs, b, ldb, beta, c, ldc, tail); break;                    \
    case 3: small_tile(mr, 3, K, alpha, a, ars, acs, b, ldb, beta, c, ldc, tail); break;                    \
    case 2: small_tile(mr, 2, K, alpha, a, ars, acs, b, ldb, beta, c, ldc, tail); break;                    \
    default: small_tile(mr, 1, K, alpha, a, ars, acs, b, ldb, beta, c, ldc, tail); break;                   \
    }

static void small_tile_any(int mr, int nc, int64_t K, float alpha, const float *a, int64_t ars, int64_t acs,
                           const float *b, int64_t ldb, float beta, float *c, int64_t ldc, __mmask16 tail) {
    switch (mr) {
    case 6: SMALL_TILE_NC(6) break;
    case 5: SMALL_TILE_NC(5) break;
    case 4: SMALL_TILE_NC(4) break;
    case 3: SMALL_TILE_NC(3) break;
    case 2: SMALL_TILE_NC(2) break;
    default: SMALL_TILE_NC(1) break;
    }
}
#endif

void cf_gemm_small(int64_t m, int64_t n, int64_t k, cf_real alpha, const cf_real *a, int64_t a_rs, int64_t a_cs,
                   const cf_real *b, int64_t b_rs, int64_t b_cs, cf_real beta, cf_real *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
#ifdef CF_GEMM_SMALL_AVX512
    if (k > 0 && (b_cs == 1 || k * NR <= PACK_MAX)) {
        float panel[b_cs == 1 ? 1 : k * NR] __attribute__((aligned(64)));
        for (int64_t j0 = 0; j0 < n; j0 += NR) {
            int64_t cols = n - j0 < NR ? n - j0 : NR;
            const float *bp = b + j0 * b_cs;
            int64_t ldb = b_rs;
            if (b_cs != 1) { /* B's rows are not contiguous (B = K^T of a head): copy the panel as [k][cols] */
                for (int64_t j = 0; j < cols; j++)
                    for (int64_t kk = 0; kk < k; kk++) panel[kk * cols + j] = bp[kk * b_rs + j * b_cs];
                bp = panel;
                ldb = cols;
            }
            int nc = (int)((cols + 15) / 16);
            int64_t left = cols - 16 * (nc - 1);
            __mmask16 tail = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            for (int64_t i0 = 0; i0 < m; i0 += MR) {
                int mr = (int)(m - i0 < MR ? m - i0 : MR);
                small_tile_any(mr, nc, k, alpha, a + i0 * a_rs, a_rs, a_cs, bp, ldb, beta, c + i0 * ldc + j0, ldc, tail);
            }
        }
        return;
    }
#endif
    /* BLAS: op(X) = X with ld = the row stride when X's columns are contiguous, else X^T stored
     * with ld = the column stride. When both strides are 1 (a single row or column, e.g. a block
     * that sees one key) the layout whose leading dimension is legal wins. */
    bool ta = !(a_cs == 1 && a_rs >= (k > 1 ? k : 1)), tb = !(b_cs == 1 && b_rs >= (n > 1 ? n : 1));
    CF_ASSERT((!ta || (a_rs == 1 && a_cs >= (m > 1 ? m : 1))) && (!tb || (b_rs == 1 && b_cs >= (k > 1 ? k : 1))),
              "gemm_small: %lld x %lld x %lld with strides A %lld/%lld, B %lld/%lld (one of each must be 1)",
              (long long)m, (long long)n, (long long)k, (long long)a_rs, (long long)a_cs, (long long)b_rs,
              (long long)b_cs);
    cf_gemm_serial(ta, tb, m, n, k, alpha, a, ta ? a_cs : a_rs, b, tb ? b_cs : b_rs, beta, c, ldc);
}
