/* core/gemm_packed.c - products with prepacked weights (decoding); see core/gemm.h.
 *
 * Why: a decoder step multiplies a few dozen rows by every weight matrix of the decoder. OpenBLAS
 * packs op(B) again at every call, and with few rows that copy costs about as much as the product;
 * on this machine it also runs the AVX2 (Haswell) kernel the environment selects. Packing each
 * weight once for a whole decode and running an AVX-512 kernel over the panels made these shapes
 * 2-4x faster at 8-256 rows and about 2x at the encoder's 1000-3000 (docs/performance.md,
 * "Decoding").
 *
 * Layout: W [n, k] (a linear layer's weight, row-major) becomes ceil(n / NR) panels of [k][NR]
 * floats, panel p holding columns p*NR .. p*NR+NR-1 of W^T (zero past n). The kernel computes an
 * MR x NR block of C with MR*NR/16 zmm accumulators: for each k, NR/16 panel loads, MR broadcasts of
 * A and MR*NR/16 FMAs. Every element of C is one FMA chain over k = 0..K-1 from 0, then + bias, on
 * whichever thread and in whichever block it falls: results depend neither on the thread count
 * nor on the number of rows m (a row's result is the same alone or in a batch).
 */
#include "core/gemm.h"
#include "core/parallel.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) && !defined(CF_REAL_DOUBLE)
#define CF_GEMM_PACKED_AVX512 1
#include <immintrin.h>
#endif

enum { NR = CF_GEMM_PACK_NR, MR = 6, BLOCK_ROWS = 48 };
/* Below this many FLOPs one thread does the product (waking the other costs more). */
#define PACKED_PAR_MIN_FLOPS 2e6

bool cf_gemm_packed_available(void) {
#ifdef CF_GEMM_PACKED_AVX512
    return true;
#else
    return false;
#endif
}

int64_t cf_gemm_pack_len(int64_t n, int64_t k) { return (n + NR - 1) / NR * k * NR; }

void cf_gemm_pack_wt(const cf_real *w, int64_t n, int64_t k, cf_real *out) {
    int64_t panels = (n + NR - 1) / NR;
    CF_PARALLEL_FOR(n * k > (1 << 16), for (int64_t p = 0; p < panels; p++) {
        cf_real *dst = out + p * k * NR;
        int64_t cols = n - p * NR < NR ? n - p * NR : NR;
        for (int64_t j = 0; j < cols; j++) {
            const cf_real *src = w + (p * NR + j) * k;
            for (int64_t kk = 0; kk < k; kk++) dst[kk * NR + j] = src[kk];
        }
        for (int64_t j = cols; j < NR; j++)
            for (int64_t kk = 0; kk < k; kk++) dst[kk * NR + j] = 0;
    });
}

#ifdef CF_GEMM_PACKED_AVX512
/* C[mr, cols] (cols <= NR) = A[mr, K] @ panel (+ bias), mr <= MR: a compile-time constant in each
 * copy (always_inline + the switch below), so the loops over rows unroll into registers. */
static inline __attribute__((always_inline)) void tile(int mr, int64_t K, const float *a, int64_t lda,
                                                        const float *bp, const float *bias, float *c, int64_t ldc,
                                                        int64_t cols) {
    __m512 acc[MR][NR / 16];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR / 16; j++) acc[i][j] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < K; kk++) {
        __m512 b[NR / 16];
        for (int j = 0; j < NR / 16; j++) b[j] = _mm512_load_ps(bp + kk * NR + 16 * j);
        for (int i = 0; i < MR; i++)
            if (i < mr) {
                __m512 av = _mm512_set1_ps(a[i * lda + kk]);
                for (int j = 0; j < NR / 16; j++) acc[i][j] = _mm512_fmadd_ps(av, b[j], acc[i][j]);
            }
    }
    for (int j = 0; j < NR / 16; j++) {
        int64_t left = cols - 16 * j;
        if (left <= 0) break;
        __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m512 bv = bias ? _mm512_maskz_loadu_ps(mask, bias + 16 * j) : _mm512_setzero_ps();
        for (int i = 0; i < mr; i++)
            _mm512_mask_storeu_ps(c + i * ldc + 16 * j, mask, bias ? _mm512_add_ps(acc[i][j], bv) : acc[i][j]);
    }
}

static void tile_any(int mr, int64_t K, const float *a, int64_t lda, const float *bp, const float *bias, float *c,
                     int64_t ldc, int64_t cols) {
    switch (mr) {
    case 6: tile(6, K, a, lda, bp, bias, c, ldc, cols); break;
    case 5: tile(5, K, a, lda, bp, bias, c, ldc, cols); break;
    case 4: tile(4, K, a, lda, bp, bias, c, ldc, cols); break;
    case 3: tile(3, K, a, lda, bp, bias, c, ldc, cols); break;
    case 2: tile(2, K, a, lda, bp, bias, c, ldc, cols); break;
    default: tile(1, K, a, lda, bp, bias, c, ldc, cols); break;
    }
}
#endif

void cf_gemm_packed_bias(int64_t m, const cf_real *a, int64_t lda, const cf_gemm_packed *w, const cf_real *bias,
                         cf_real *c, int64_t ldc) {
    CF_ASSERT(cf_gemm_packed_available(), "gemm: packed products need the AVX-512 float build");
#ifdef CF_GEMM_PACKED_AVX512
    int64_t n = w->n, K = w->k, panels = (n + NR - 1) / NR, blocks = (m + BLOCK_ROWS - 1) / BLOCK_ROWS;
    int64_t tasks = panels * blocks;
    /* tasks: a panel of NR columns times a block of rows; any split gives the same numbers */
    CF_PARALLEL_FOR_DYNAMIC(tasks > 1 && 2.0 * (double)m * (double)n * (double)K > PACKED_PAR_MIN_FLOPS,
    for (int64_t t = 0; t < tasks; t++) {
        int64_t p = t / blocks, r0 = (t % blocks) * BLOCK_ROWS, r1 = r0 + BLOCK_ROWS < m ? r0 + BLOCK_ROWS : m;
        int64_t cols = n - p * NR < NR ? n - p * NR : NR;
        const float *bp = w->data + p * K * NR;
        const float *bb = bias ? bias + p * NR : NULL;
        for (int64_t i = r0; i < r1; i += MR) {
            int mr = (int)(r1 - i < MR ? r1 - i : MR);
            tile_any(mr, K, a + i * lda, lda, bp, bb, c + i * ldc + p * NR, ldc, cols);
        }
    });
#else
    (void)m, (void)a, (void)lda, (void)w, (void)bias, (void)c, (void)ldc;
#endif
}

void cf_gemm_packed_set_build(cf_gemm_packed_set *s, const cf_real *const *w, const int64_t *n, const int64_t *k,
                              int count) {
    s->n = 0;
    if (!cf_gemm_packed_available()) return;
    if (count > s->cap) {
        free(s->items);
        s->cap = count;
        s->items = cf_xmalloc((size_t)count * sizeof *s->items);
    }
    int64_t total = 0;
    for (int i = 0; i < count; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) seen = w[j] == w[i] && n[j] == n[i] && k[j] == k[i];
        if (!seen) total += (cf_gemm_pack_len(n[i], k[i]) + 15) / 16 * 16; /* keep panels 64-byte aligned */
    }
    if (total > s->block_cap) {
        free(s->block);
        s->block_cap = total;
        s->block = cf_xalloc_aligned((size_t)total * sizeof(cf_real));
    }
    int64_t off = 0;
    for (int i = 0; i < count; i++) {
        if (cf_gemm_packed_find(s, w[i], n[i], k[i])) continue;
        cf_real *dst = s->block + off;
        cf_gemm_pack_wt(w[i], n[i], k[i], dst);
        s->items[s->n++] = (cf_gemm_packed){.src = w[i], .n = n[i], .k = k[i], .data = dst};
        off += (cf_gemm_pack_len(n[i], k[i]) + 15) / 16 * 16;
    }
}

const cf_gemm_packed *cf_gemm_packed_find(const cf_gemm_packed_set *s, const cf_real *w, int64_t n, int64_t k) {
    for (int i = 0; i < s->n; i++)
        if (s->items[i].src == w && s->items[i].n == n && s->items[i].k == k) return &s->items[i];
    return NULL;
}

void cf_gemm_packed_set_free(cf_gemm_packed_set *s) {
    free(s->items);
    free(s->block);
    *s = (cf_gemm_packed_set){0};
}
