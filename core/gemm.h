/* core/gemm.h - row-major GEMM whose results do not depend on the thread count.
 *
 * Usage:
 *     // C[m,n] = alpha * A[m,k] @ B[n,k]^T + beta * C   (row-major, leading dimensions given)
 *     cf_gemm_rm(false, true, m, n, k, 1, a, k, b, k, 0, c, n);
 *     // the same for `count` matrices at fixed strides
 *     cf_gemm_rm_batched(count, false, false, m, n, k, 1, a, m * k, k, b, k * n, n, 0, c, m * n, n);
 *     // decoding: weights packed once, then products against them (AVX-512 builds)
 *     cf_gemm_packed_set set = {0};
 *     cf_gemm_packed_set_build(&set, (const cf_real *[]){w}, (int64_t[]){n}, (int64_t[]){k}, 1);
 *     cf_gemm_packed_bias(m, a, k, cf_gemm_packed_find(&set, w, n, k), bias, c, n);   // c = a @ w^T + bias
 *     cf_gemm_packed_set_free(&set);
 *
 * Why not call cblas_sgemm with several threads: OpenBLAS splits a threaded GEMM in a way that
 * depends on the thread count (and the CPU), so the same product rounds differently on 1 and 2
 * threads. Here the output is cut into row tiles whose boundaries depend only on the shape
 * (cf_gemm_plan), each tile is one single-threaded BLAS call (OpenBLAS runs with one thread: see
 * core/threads.c), and the tiles are shared among OpenMP threads dynamically. Every element is then
 * computed by the same BLAS call with the same arguments whatever the thread count or the order the
 * tiles run in; the reduction dimension k is never split. Called inside a parallel region (an
 * attention head, say), the tiles run one after the other on the calling thread: same results.
 */
#ifndef CF_GEMM_H
#define CF_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/common.h"

/* How a product [m, n] (reduction k) is cut: tiles of `rows` rows, `n_tiles` of them (the last
 * may be shorter). A function of (m, n, k) alone; docs/performance.md lists it for the step's shapes. */
typedef struct cf_gemm_plan {
    int64_t rows, n_tiles;
} cf_gemm_plan;

cf_gemm_plan cf_gemm_plan_of(int64_t m, int64_t n, int64_t k);

/* The products the cf_gemm_rm* entry points run, recorded while a log is installed: `cformer
 * bench` times cblas_sgemm on a step's own shapes, the ceiling its GFLOP/s are measured against.
 * Calls made inside a parallel region (an attention head's products) are not recorded. Not for
 * concurrent use: one log, installed around one step. */
typedef struct cf_gemm_shape {
    bool trans_a, trans_b;
    int64_t m, n, k;
    int64_t calls;                  /* products of this shape (a batched call counts its count) */
} cf_gemm_shape;
typedef struct cf_gemm_log {
    cf_gemm_shape *shapes;          /* distinct shapes, in order of first use */
    size_t n, cap;
} cf_gemm_log;
void cf_gemm_log_install(cf_gemm_log *log); /* NULL: stop recording */
void cf_gemm_log_free(cf_gemm_log *log);

/* C = alpha * op(A) op(B) + beta * C, row-major; op(X) = X^T when trans_x. Sizes must fit in int
 * (BLAS's interface; asserted). beta 0 ignores C's contents (NaN included). */
void cf_gemm_rm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, cf_real alpha, const cf_real *a,
                int64_t lda, const cf_real *b, int64_t ldb, cf_real beta, cf_real *c, int64_t ldc);

/* `count` independent products at strides sa, sb, sc (sb 0: B shared); tiles of all of them share
 * one parallel loop. */
void cf_gemm_rm_batched(int64_t count, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, cf_real alpha,
                        const cf_real *a, int64_t sa, int64_t lda, const cf_real *b, int64_t sb, int64_t ldb,
                        cf_real beta, cf_real *c, int64_t sc, int64_t ldc);

/* Independent products (their C's do not overlap) whose tiles share one parallel loop: a thread
 * that is done with one product's tiles takes the next one's, and there is one barrier, not n.
 * Each product is computed exactly as cf_gemm_rm would compute it (same tiles, same calls), so
 * grouping changes no bit. A backward pass's dx and dW products, for instance. */
typedef struct cf_gemm_args {
    bool trans_a, trans_b;
    int64_t m, n, k;
    cf_real alpha;
    const cf_real *a;
    int64_t lda;
    const cf_real *b;
    int64_t ldb;
    cf_real beta;
    cf_real *c;
    int64_t ldc;
} cf_gemm_args;
enum { CF_GEMM_GROUP_MAX = 8 };
void cf_gemm_rm_group(const cf_gemm_args *products, int n);

/* The whole product in one single-threaded BLAS call on the calling thread: for kernels that
 * partition their own work (an attention head per task). Every BLAS call in cformer goes through
 * this function, which is what keeps OpenBLAS from starting threads of its own. */
void cf_gemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, cf_real alpha, const cf_real *a,
                    int64_t lda, const cf_real *b, int64_t ldb, cf_real beta, cf_real *c, int64_t ldc);

/* C[m, n] = alpha * A B + beta * C for the small products of one attention head, on the calling
 * thread: A(i, l) = a[i*a_rs + l*a_cs], B(l, j) = b[l*b_rs + j*b_cs] (so either may be a transpose;
 * one of each pair of strides must be 1), C row-major. Each element of C is one FMA chain over l
 * ascending, then * alpha + beta * C, whatever m and n (core/gemm_small.c); beta 0 ignores C. */
void cf_gemm_small(int64_t m, int64_t n, int64_t k, cf_real alpha, const cf_real *a, int64_t a_rs, int64_t a_cs,
                   const cf_real *b, int64_t b_rs, int64_t b_cs, cf_real beta, cf_real *c, int64_t ldc);

/* C[m,n] = op(A) op(B) + bias[n] on every row (linear layers: the bias rides in the GEMM's tiles). */
void cf_gemm_rm_bias(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const cf_real *a, int64_t lda,
                     const cf_real *b, int64_t ldb, const cf_real *bias, cf_real *c, int64_t ldc);

/* ---- prepacked weights (core/gemm_packed.c): decoding's products ----
 * W [n, k] (a linear layer's weight, row-major, used as op(B) = W^T) in panels of
 * CF_GEMM_PACK_NR columns, packed once and read by every product of a decode instead of being
 * repacked by BLAS at each call. Each element of C is one FMA chain over k from 0, then + bias,
 * whatever the thread count and the number of rows. Only in float builds with AVX-512
 * (cf_gemm_packed_available); callers fall back to cf_gemm_rm_bias elsewhere. */
enum { CF_GEMM_PACK_NR = 64 };

typedef struct cf_gemm_packed {
    const cf_real *src;         /* the weight it was packed from and its shape: the lookup key (a fused
                                 * projection [3d, d] starts where its first part [d, d] does) */
    int64_t n, k;
    const cf_real *data;        /* cf_gemm_pack_len(n, k) reals, 64-byte aligned */
} cf_gemm_packed;

/* Packed copies of several weights in one block, reused (and grown) by each build. */
typedef struct cf_gemm_packed_set {
    cf_gemm_packed *items;
    int n, cap;
    cf_real *block;
    int64_t block_cap;          /* reals */
} cf_gemm_packed_set;

bool cf_gemm_packed_available(void);
int64_t cf_gemm_pack_len(int64_t n, int64_t k);
void cf_gemm_pack_wt(const cf_real *w, int64_t n, int64_t k, cf_real *out);
/* Pack count weights w[i] [n[i], k[i]] (a weight listed twice, same pointer and shape, is packed
 * once); replaces the set's contents. Does nothing when packing is not available. */
void cf_gemm_packed_set_build(cf_gemm_packed_set *s, const cf_real *const *w, const int64_t *n, const int64_t *k,
                              int count);
/* The packed copy of weight w [n, k], or NULL. */
const cf_gemm_packed *cf_gemm_packed_find(const cf_gemm_packed_set *s, const cf_real *w, int64_t n, int64_t k);
void cf_gemm_packed_set_free(cf_gemm_packed_set *s);
/* C[m, n] = A[m, k] @ W^T (+ bias[n]), lda and ldc in reals. */
void cf_gemm_packed_bias(int64_t m, const cf_real *a, int64_t lda, const cf_gemm_packed *w, const cf_real *bias,
                         cf_real *c, int64_t ldc);

#endif
