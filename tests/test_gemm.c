/* tests/test_gemm.c - core/gemm.h: products against a double-precision loop, the fixed partition,
 * and bit-identical results for 1, 2, 3 and 4 threads (the property the tiling exists for); the
 * packed few-row products of decoding against their FMA-chain error bound, for any thread and row count. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"
#include "tests/testlib.h"
#include "core/autograd.h"
#include "core/gemm.h"
#include "core/ops.h"
#include "core/threads.h"

/* op(X)[i][j] of a row-major X with leading dimension ld */
static double at(const cf_real *x, int64_t ld, bool trans, int64_t i, int64_t j) {
    return trans ? (double)x[j * ld + i] : (double)x[i * ld + j];
}

typedef struct gemm_case {
    bool ta, tb;
    int64_t m, n, k, pad; /* pad: extra columns in every leading dimension */
    double beta;
    bool bias;
} gemm_case;

/* Runs one case with `threads` threads; returns C (malloc'ed, m x ldc). */
static cf_real *run_case(const gemm_case *g, int threads, const cf_real *a, const cf_real *b, const cf_real *bias,
                         const cf_real *c0) {
    int64_t lda = (g->ta ? g->m : g->k) + g->pad, ldb = (g->tb ? g->k : g->n) + g->pad, ldc = g->n + g->pad;
    cf_real *c = malloc((size_t)(g->m * ldc) * sizeof *c + 1);
    memcpy(c, c0, (size_t)(g->m * ldc) * sizeof *c);
    cf_threads_init(threads);
    if (g->bias)
        cf_gemm_rm_bias(g->ta, g->tb, g->m, g->n, g->k, a, lda, b, ldb, bias, c, ldc);
    else
        cf_gemm_rm(g->ta, g->tb, g->m, g->n, g->k, 0.5, a, lda, b, ldb, (cf_real)g->beta, c, ldc);
    return c;
}

TEST(gemm_matches_reference_and_any_thread_count) {
    const gemm_case cases[] = {
        {false, true, 1024, 128, 128, 0, 0, true},   /* linear forward: row tiles, bias */
        {false, false, 1000, 72, 130, 3, 1, false},  /* dx with += and padded leading dims */
        {true, false, 128, 96, 1024, 0, 1, false},   /* dW: few rows, long k */
        {false, true, 12, 5000, 64, 0, 0, false},    /* decoding's logits: column tiles */
        {true, true, 300, 257, 33, 1, 0.25, false},  /* both transposed, ragged last tile */
        {false, false, 7, 9, 0, 0, 0, false},        /* k = 0: C = beta * C */
        {false, false, 1, 1, 5, 0, 0, false},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const gemm_case *g = &cases[ci];
        int64_t lda = (g->ta ? g->m : g->k) + g->pad, ldb = (g->tb ? g->k : g->n) + g->pad, ldc = g->n + g->pad;
        int64_t na = (g->ta ? g->k : g->m) * lda, nb = (g->tb ? g->n : g->k) * ldb, nc = g->m * ldc;
        cf_real *a = malloc((size_t)na * sizeof *a + 1), *b = malloc((size_t)nb * sizeof *b + 1);
        cf_real *bias = malloc((size_t)g->n * sizeof *bias), *c0 = malloc((size_t)nc * sizeof *c0 + 1);
        test_fill_uniform(a, na, -1, 1, 10 + ci);
        test_fill_uniform(b, nb, -1, 1, 20 + ci);
        test_fill_uniform(bias, g->n, -1, 1, 30 + ci);
        test_fill_uniform(c0, nc, -1, 1, 40 + ci);
        cf_real *one = run_case(g, 1, a, b, bias, c0);
        double worst = 0;
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t j = 0; j < g->n; j++) {
                double s = 0;
                for (int64_t p = 0; p < g->k; p++) s += at(a, lda, g->ta, i, p) * at(b, ldb, g->tb, p, j);
                double want = g->bias ? s + bias[j] : 0.5 * s + g->beta * c0[i * ldc + j];
                double err = fabs(one[i * ldc + j] - want) / (1e-5 * (1 + sqrt((double)g->k)) * (1 + fabs(want)));
                if (err > worst) worst = err;
            }
        CHECK_MSG(worst <= 1, "case %zu: %lld x %lld x %lld off the double reference (%.3g of tolerance)", ci,
                  (long long)g->m, (long long)g->n, (long long)g->k, worst);
        /* padding columns of C are never written */
        for (int64_t i = 0; i < g->m; i++)
            for (int64_t j = g->n; j < ldc; j++) CHECK(one[i * ldc + j] == c0[i * ldc + j]);
        for (int t = 1; t < TEST_N_THREAD_COUNTS; t++) {
            cf_real *other = run_case(g, test_thread_counts[t], a, b, bias, c0);
            CHECK_MSG(memcmp(one, other, (size_t)nc * sizeof *one) == 0, "case %zu: 1 and %d threads differ", ci,
                      test_thread_counts[t]);
            free(other);
        }
        free(one);
        free(a);
        free(b);
        free(bias);
        free(c0);
    }
    cf_threads_init(0);
}

TEST(gemm_batched_equals_one_product_at_a_time) {
    enum { COUNT = 3, M = 300, N = 40, K = 50 };
    cf_real *a = malloc(COUNT * M * K * sizeof *a), *b = malloc(COUNT * K * N * sizeof *b);
    cf_real *c1 = calloc(COUNT * M * N, sizeof *c1), *c2 = calloc(COUNT * M * N, sizeof *c2);
    test_fill_uniform(a, COUNT * M * K, -1, 1, 1);
    test_fill_uniform(b, COUNT * K * N, -1, 1, 2);
    cf_threads_init(2);
    cf_gemm_rm_batched(COUNT, false, false, M, N, K, 1, a, M * K, K, b, K * N, N, 0, c1, M * N, N);
    for (int i = 0; i < COUNT; i++)
        cf_gemm_rm(false, false, M, N, K, 1, a + i * M * K, K, b + i * K * N, N, 0, c2 + i * M * N, N);
    CHECK(memcmp(c1, c2, COUNT * M * N * sizeof *c1) == 0);
    /* shared B (stride 0) */
    cf_gemm_rm_batched(COUNT, false, false, M, N, K, 1, a, M * K, K, b, 0, N, 0, c1, M * N, N);
    cf_gemm_rm(false, false, COUNT * M, N, K, 1, a, K, b, N, 0, c2, N);
    for (int i = 0; i < COUNT; i++) /* same values up to rounding: the tiles differ */
        for (int j = 0; j < M * N; j += 97) CHECK_NEAR(c1[i * M * N + j], c2[i * M * N + j], 1e-4);
    cf_threads_init(0);
    free(a);
    free(b);
    free(c1);
    free(c2);
}

/* The plan is a function of the shape alone, cuts rows before columns, in powers of two, never
 * below 16 rows, and leaves small products whole. */
/* A group (one parallel loop over the tiles of several products) gives the bits of separate calls,
 * on 1 and 2 threads, with transposes, beta 1 accumulation, an empty product and a tiny one. */
TEST(gemm_group_equals_separate_calls) {
    enum { M = 700, N = 96, K = 130 };
    cf_real *a = malloc(M * K * sizeof *a), *b = malloc(K * N * sizeof *b), *d = malloc(M * N * sizeof *d);
    cf_real *dx1 = malloc(M * K * sizeof *dx1), *dx2 = malloc(M * K * sizeof *dx2);
    cf_real *dw1 = malloc(K * N * sizeof *dw1), *dw2 = malloc(K * N * sizeof *dw2), s1[4], s2[4];
    test_fill_uniform(a, M * K, -1, 1, 3);
    test_fill_uniform(b, K * N, -1, 1, 4);
    test_fill_uniform(d, M * N, -1, 1, 5);
    for (int threads = 1; threads <= 2; threads++) {
        cf_threads_init(threads);
        test_fill_uniform(dw1, K * N, -1, 1, 6); /* beta 1: accumulated into */
        memcpy(dw2, dw1, K * N * sizeof *dw1);
        /* dx = d @ b^T, dW += a^T @ d, an empty product, a 2 x 2 one: a linear layer's backward */
        cf_gemm_rm(false, true, M, K, N, 1, d, N, b, N, 0, dx1, K);
        cf_gemm_rm(true, false, K, N, M, 1, a, K, d, N, 1, dw1, N);
        cf_gemm_rm(false, false, 2, 2, 3, 1, a, K, b, N, 0, s1, 2);
        cf_gemm_args g[] = {{false, true, M, K, N, 1, d, N, b, N, 0, dx2, K},
                            {true, false, K, N, M, 1, a, K, d, N, 1, dw2, N},
                            {false, false, 0, N, K, 1, a, K, b, N, 0, NULL, N},
                            {false, false, 2, 2, 3, 1, a, K, b, N, 0, s2, 2}};
        cf_gemm_rm_group(g, 4);
        CHECK_MSG(memcmp(dx1, dx2, M * K * sizeof *dx1) == 0, "dx differs on %d threads", threads);
        CHECK_MSG(memcmp(dw1, dw2, K * N * sizeof *dw1) == 0, "dW differs on %d threads", threads);
        CHECK(memcmp(s1, s2, sizeof s1) == 0);
    }
    cf_threads_init(0);
    free(a);
    free(b);
    free(d);
    free(dx1);
    free(dx2);
    free(dw1);
    free(dw2);
}

TEST(gemm_plan_is_fixed_by_the_shape) {
    const int64_t shapes[][3] = {{1024, 128, 128}, {1536, 8000, 256}, {128, 128, 1024}, {16, 9000, 64},
                                 {8, 8, 8},         {100000, 64, 64},  {40, 40, 4000}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int64_t m = shapes[i][0], n = shapes[i][1], k = shapes[i][2];
        cf_threads_init(1);
        cf_gemm_plan p1 = cf_gemm_plan_of(m, n, k);
        cf_threads_init(3);
        cf_gemm_plan p3 = cf_gemm_plan_of(m, n, k);
        CHECK(p1.rows == p3.rows && p1.n_tiles == p3.n_tiles);
        CHECK(p1.n_tiles >= 1 && p1.n_tiles <= 64 && (p1.n_tiles & (p1.n_tiles - 1)) == 0);
        CHECK(p1.rows == m || (p1.rows >= 16 && p1.rows % 16 == 0));
        if (2.0 * (double)m * (double)n * (double)k < 4e6) CHECK(p1.n_tiles == 1);
    }
    cf_threads_init(0);
    CHECK(cf_gemm_plan_of(1024, 128, 128).n_tiles == 4);  /* 256-row tiles */
    CHECK(cf_gemm_plan_of(128, 128, 1024).n_tiles == 2);  /* two 64-row tiles rather than one */
    CHECK(cf_gemm_plan_of(16, 9000, 64).rows == 16);      /* too few rows: column tiles */
    CHECK(cf_gemm_plan_of(16, 9000, 64).n_tiles == 32);
}

/* ---- prepacked weights (core/gemm_packed.c) ---- */

/* C = A[m, k] @ W[n, k]^T (+ bias) through a packed copy of W, with `threads` threads; C is
 * malloc'ed [m, ldc] and starts as c0. */
static cf_real *run_packed(const cf_gemm_packed *p, int threads, int64_t m, const cf_real *a, int64_t lda,
                           const cf_real *bias, const cf_real *c0, int64_t ldc) {
    cf_real *c = malloc((size_t)(m * ldc) * sizeof *c + 1);
    memcpy(c, c0, (size_t)(m * ldc) * sizeof *c);
    cf_threads_init(threads);
    cf_gemm_packed_bias(m, a, lda, p, bias, c, ldc);
    return c;
}

/* Error bound: every element is one FMA chain s_j = fl(s_{j-1} + a_j b_j) from s_0 = 0, then
 * fl(s_k + bias). Each FMA rounds once, |delta| <= u = 2^-24, so (Higham, recursive summation)
 * |s_k - sum a_j b_j| <= gamma_k * sum |a_j b_j|, and the bias adds one rounding:
 * |c - (sum a_j b_j + bias)| <= gamma_{k+1} * (sum |a_j b_j| + |bias|), gamma_n = n u / (1 - n u).
 * The double reference errs by ~k 2^-53 of the same sum: 1e-9 of slack covers it. The products
 * must also be bit-identical for any thread count and any row count: a row alone, in a batch or in
 * any slice of it gives the same bits (decoding's rows come and go as sentences finish). */
TEST(gemm_packed_within_fma_bound_and_invariant) {
    if (!cf_gemm_packed_available()) { /* the fallback: nothing is packed, callers use BLAS */
        cf_gemm_packed_set s = {0};
        cf_real w[4] = {1, 2, 3, 4};
        cf_gemm_packed_set_build(&s, (const cf_real *[]){w}, (int64_t[]){2}, (int64_t[]){2}, 1);
        CHECK(s.n == 0 && !cf_gemm_packed_find(&s, w, 2, 2));
        cf_gemm_packed_set_free(&s);
        return;
    }
    typedef struct { int64_t m, n, k, pad; bool bias; } pcase;
    const pcase cases[] = {
        {1, 1, 1, 0, true},       /* smallest */
        {5, 63, 3, 2, false},     /* n < one panel, m < one tile, small k */
        {6, 64, 7, 0, true},      /* exactly one tile by one panel */
        {7, 65, 1, 1, true},      /* one row and one column past them, k 1 */
        {13, 130, 17, 3, false},  /* ragged everywhere, padded leading dimensions */
        {49, 257, 128, 0, true},  /* one row past a row block, ragged last panel */
        {100, 1000, 256, 5, true},/* several blocks, enough work for threads */
        {3, 2000, 0, 0, true},    /* k 0: C = bias */
        {2, 100, 0, 0, false},    /* k 0, no bias: C = 0 */
        {24, 8000, 64, 0, false}, /* a vocabulary projection */
    };
    const double u = 1.0 / 16777216.0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const pcase *g = &cases[ci];
        int64_t m = g->m, n = g->n, k = g->k, lda = k + g->pad, ldc = n + g->pad;
        cf_real *a = malloc((size_t)(m * lda) * sizeof *a + 1), *w = malloc((size_t)(n * k) * sizeof *w + 1);
        cf_real *bias = malloc((size_t)n * sizeof *bias), *c0 = malloc((size_t)(m * ldc) * sizeof *c0);
        test_fill_uniform(a, m * lda, -1, 1, 50 + ci);
        test_fill_uniform(w, n * k, -1, 1, 60 + ci);
        test_fill_uniform(bias, n, -1, 1, 70 + ci);
        test_fill_uniform(c0, m * ldc, -1, 1, 80 + ci);
        const cf_real *b = g->bias ? bias : NULL;
        cf_gemm_packed_set s = {0};
        cf_gemm_packed_set_build(&s, (const cf_real *[]){w}, (int64_t[]){n}, (int64_t[]){k}, 1);
        const cf_gemm_packed *p = cf_gemm_packed_find(&s, w, n, k);
        CHECK(p && p->n == n && p->k == k && ((uintptr_t)p->data & 63) == 0);
        if (!p) continue;
        cf_real *one = run_packed(p, 1, m, a, lda, b, c0, ldc);
        double gamma = (double)(k + 1) * u / (1 - (double)(k + 1) * u), worst = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double sum = g->bias ? bias[j] : 0, mag = g->bias ? fabs(bias[j]) : 0;
                for (int64_t q = 0; q < k; q++) {
                    sum += (double)a[i * lda + q] * w[j * k + q];
                    mag += fabs((double)a[i * lda + q] * w[j * k + q]);
                }
                double err = fabs(one[i * ldc + j] - sum), tol = gamma * mag + 1e-9 * mag;
                if (k == 0) tol = 0; /* exactly the bias, or 0 */
                double r = err == 0 ? 0 : err / tol;
                if (r > worst) worst = r;
            }
        CHECK_MSG(worst <= 1, "case %zu (%lld x %lld x %lld): error %.3g of the FMA-chain bound", ci, (long long)m,
                  (long long)n, (long long)k, worst);
        for (int64_t i = 0; i < m; i++) /* padding columns of C are never written */
            for (int64_t j = n; j < ldc; j++) CHECK(one[i * ldc + j] == c0[i * ldc + j]);
        for (int t = 1; t < TEST_N_THREAD_COUNTS; t++) {
            cf_real *other = run_packed(p, test_thread_counts[t], m, a, lda, b, c0, ldc);
            CHECK_MSG(memcmp(one, other, (size_t)(m * ldc) * sizeof *one) == 0, "case %zu: 1 and %d threads differ", ci,
                      test_thread_counts[t]);
            free(other);
        }
        /* every row alone, and the slices [r0, r0 + len) of every length, on 2 threads */
        for (int64_t len = 1; len <= m; len += len < 8 ? 1 : 7) {
            for (int64_t r0 = 0; r0 + len <= m; r0 += len < 3 ? 1 : len) {
                cf_real *part = run_packed(p, 2, len, a + r0 * lda, lda, b, c0 + r0 * ldc, ldc);
                CHECK_MSG(memcmp(part, one + r0 * ldc, (size_t)(len * ldc) * sizeof *one) == 0,
                          "case %zu: rows %lld..%lld alone differ from the batch", ci, (long long)r0,
                          (long long)(r0 + len - 1));
                free(part);
            }
        }
        free(one);
        cf_gemm_packed_set_free(&s);
        free(a);
        free(w);
        free(bias);
        free(c0);
    }
    cf_threads_init(0);
}

/* The packed product equals the tiled BLAS one up to rounding, and the set packs each weight once,
 * finds it by its pointer, and is rebuilt in place with other weights. */
TEST(gemm_packed_set_finds_dedups_and_rebuilds) {
    if (!cf_gemm_packed_available()) return;
    enum { M = 9, N = 70, K = 33, N2 = 300 };
    cf_real *w1 = malloc(N * K * sizeof *w1), *w2 = malloc(N2 * K * sizeof *w2), *a = malloc(M * K * sizeof *a);
    cf_real *c1 = malloc(M * N2 * sizeof *c1), *c2 = malloc(M * N2 * sizeof *c2), *bias = malloc(N2 * sizeof *bias);
    test_fill_uniform(w1, N * K, -1, 1, 1);
    test_fill_uniform(w2, N2 * K, -1, 1, 2);
    test_fill_uniform(a, M * K, -1, 1, 3);
    test_fill_uniform(bias, N2, -1, 1, 4);
    cf_gemm_packed_set s = {0};
    cf_gemm_packed_set_build(&s, (const cf_real *[]){w1, w1}, (int64_t[]){N, N}, (int64_t[]){K, K}, 2);
    CHECK(s.n == 1 && cf_gemm_packed_find(&s, w1, N, K) && !cf_gemm_packed_find(&s, w2, N2, K));
    CHECK(!cf_gemm_packed_find(&s, w1, N - 1, K) && !cf_gemm_packed_find(&s, w1, N, K - 1)); /* the shape is part of the key */
    cf_gemm_packed_set_build(&s, (const cf_real *[]){w2, w1, w2}, (int64_t[]){N2, N, N2}, (int64_t[]){K, K, K}, 3);
    CHECK(s.n == 2);
    const cf_real *ws[2] = {w1, w2};
    const int64_t ns[2] = {N, N2};
    for (int i = 0; i < 2; i++) {
        const cf_gemm_packed *p = cf_gemm_packed_find(&s, ws[i], ns[i], K);
        CHECK(p && p->n == ns[i] && ((uintptr_t)p->data & 63) == 0);
        if (!p) continue;
        cf_gemm_packed_bias(M, a, K, p, bias, c1, ns[i]);
        cf_gemm_rm_bias(false, true, M, ns[i], K, a, K, ws[i], K, bias, c2, ns[i]);
        for (int64_t j = 0; j < M * ns[i]; j++) CHECK_NEAR(c1[j], c2[j], 1e-5);
    }
    cf_gemm_packed_set_free(&s);
    CHECK(s.n == 0 && !s.block && !s.items);
    free(w1);
    free(w2);
    free(a);
    free(c1);
    free(c2);
    free(bias);
}

/* cf_linear reads the packed copy of its weight in no-grad mode when ctx->packed holds one (the
 * decoder's steps), bit for bit what cf_gemm_packed_bias gives; with gradients on, or for a
 * weight not in the set, it keeps the tiled BLAS product. */
TEST(gemm_packed_used_by_linear_without_grad) {
    if (!cf_gemm_packed_available()) return;
    enum { R = 10, IN = 40, OUT = 90 };
    cf_tensor *w = cf_param_new("w", 2, (int64_t[]){OUT, IN}), *b = cf_param_new("b", 1, (int64_t[]){OUT});
    cf_tensor *w2 = cf_param_new("w2", 2, (int64_t[]){OUT, IN});
    test_fill_uniform(w->data, OUT * IN, -1, 1, 5);
    test_fill_uniform(w2->data, OUT * IN, -1, 1, 6);
    test_fill_uniform(b->data, OUT, -1, 1, 7);
    cf_ctx *ctx = cf_ctx_new(1);
    cf_tensor *x = cf_tensor_new(ctx, 2, (int64_t[]){R, IN});
    test_fill_uniform(x->data, R * IN, -1, 1, 8);
    cf_gemm_packed_set s = {0};
    cf_gemm_packed_set_build(&s, (const cf_real *[]){w->data}, (int64_t[]){OUT}, (int64_t[]){IN}, 1);
    cf_real want_packed[R * OUT], want_blas[R * OUT];
    cf_gemm_packed_bias(R, x->data, IN, cf_gemm_packed_find(&s, w->data, OUT, IN), b->data, want_packed, OUT);
    cf_gemm_rm_bias(false, true, R, OUT, IN, x->data, IN, w->data, IN, b->data, want_blas, OUT);
    ctx->packed = &s;
    cf_ctx_set_grad(ctx, false);
    CHECK(memcmp(cf_linear(ctx, x, w, b)->data, want_packed, sizeof want_packed) == 0);
    cf_ctx_set_grad(ctx, true);
    CHECK(memcmp(cf_linear(ctx, x, w, b)->data, want_blas, sizeof want_blas) == 0);
    cf_ctx_set_grad(ctx, false);
    cf_gemm_rm_bias(false, true, R, OUT, IN, x->data, IN, w2->data, IN, b->data, want_blas, OUT);
    CHECK(memcmp(cf_linear(ctx, x, w2, b)->data, want_blas, sizeof want_blas) == 0); /* not packed */
    ctx->packed = NULL;
    cf_gemm_packed_set_free(&s);
    cf_ctx_free(ctx);
    cf_param_free(w);
    cf_param_free(w2);
    cf_param_free(b);
}

/* The log `cformer bench` takes its ceiling from: distinct shapes in order of first use, with the
 * products counted (a batched call counts each matrix); nothing recorded inside a parallel region
 * or once the log is removed. */
TEST(gemm_log_records_each_shape_and_its_products) {
    float a[6 * 5], b[5 * 4], c[3 * 6 * 4];
    test_fill_uniform(a, 30, -1, 1, 1);
    test_fill_uniform(b, 20, -1, 1, 2);
    cf_gemm_log log = {0};
    cf_gemm_log_install(&log);
    cf_gemm_rm(false, true, 6, 4, 5, 1, a, 5, b, 5, 0, c, 4);
    cf_gemm_rm_batched(3, false, false, 2, 4, 5, 1, a, 10, 5, b, 0, 4, 0, c, 8, 4);
    cf_gemm_rm(false, true, 6, 4, 5, 1, a, 5, b, 5, 1, c, 4);
    int active = 0; /* whether the region had two threads (the only case that skips the log) */
#pragma omp parallel num_threads(2) reduction(| : active)
    {
        active |= omp_in_parallel();
        cf_gemm_rm(true, false, 5, 4, 6, 1, a, 5, b, 4, 0, c + 24 * omp_get_thread_num(), 4);
    }
    cf_gemm_log_install(NULL);
    cf_gemm_rm(false, false, 1, 1, 1, 1, a, 1, b, 1, 0, c, 1);
    CHECK_MSG(log.n == (active ? 2u : 3u), "%zu shapes logged", log.n);
    if (log.n == 2) {
        CHECK(!log.shapes[0].trans_a && log.shapes[0].trans_b && log.shapes[0].m == 6 && log.shapes[0].n == 4 &&
              log.shapes[0].k == 5 && log.shapes[0].calls == 2);
        CHECK(!log.shapes[1].trans_a && !log.shapes[1].trans_b && log.shapes[1].m == 2 && log.shapes[1].calls == 3);
    }
    cf_gemm_log_free(&log);
    CHECK(log.n == 0 && log.shapes == NULL);
}

/* cf_gemm_small (an attention head's products): every stride pattern the attention kernel uses (A
 * or A^T, B or B^T, padded leading dimensions), ragged register tiles in m and n, n past one panel,
 * beta 0 over NaN and beta 1; within the FMA-chain bound of a double reference; and each element
 * the same when its row or column is computed alone (it may depend on its row of A and column of B
 * only, which is what makes attention's results independent of blocks and threads). */
TEST(gemm_small_within_fma_bound_and_row_column_independent) {
    typedef struct { int64_t m, n, k; bool ta, tb; double beta; } scase;
    const scase cases[] = {
        {16, 48, 32, false, true, 0},   /* scores = q k^T */
        {16, 32, 48, false, false, 0},  /* out = P v */
        {48, 32, 16, true, false, 1},   /* dk += dS^T q */
        {7, 17, 5, false, false, 1},    /* ragged in every direction */
        {13, 130, 9, true, true, 0},    /* n past two panels, both transposed */
        {1, 1, 1, false, false, 0},
        {6, 70, 200, false, true, 1},   /* B^T panels of 200 x 64 and 200 x 6 */
        {4, 20, 300, false, true, 0},   /* B^T with k > 256: the BLAS fallback */
        {5, 3, 0, false, false, 1},     /* k 0: C = beta * C */
    };
    const double u = 1.0 / 16777216.0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const scase *g = &cases[ci];
        const int64_t m = g->m, n = g->n, k = g->k, pad = 3;
        /* A(i, l) = a[i*ars + l*acs]; stored [m][k+pad] or, transposed, [k][m+pad] */
        int64_t ars = g->ta ? 1 : k + pad, acs = g->ta ? m + pad : 1;
        int64_t brs = g->tb ? 1 : n + pad, bcs = g->tb ? k + pad : 1, ldc = n + pad;
        int64_t na = (g->ta ? k : m) * (g->ta ? m + pad : k + pad), nb = (g->tb ? n : k) * (g->tb ? k + pad : n + pad);
        cf_real *a = malloc((size_t)na * sizeof *a + 1), *b = malloc((size_t)nb * sizeof *b + 1);
        cf_real *c0 = malloc((size_t)(m * ldc) * sizeof *c0), *c = malloc((size_t)(m * ldc) * sizeof *c);
        cf_real *part = malloc((size_t)(m * ldc) * sizeof *part);
        test_fill_uniform(a, na, -1, 1, 90 + ci);
        test_fill_uniform(b, nb, -1, 1, 100 + ci);
        test_fill_uniform(c0, m * ldc, -1, 1, 110 + ci);
        if (g->beta == 0)
            for (int64_t i = 0; i < m * ldc; i++)
                if (i % ldc < n) c0[i] = NAN; /* beta 0 must not read C */
        const cf_real alpha = 0.75f;
        memcpy(c, c0, (size_t)(m * ldc) * sizeof *c);
        cf_gemm_small(m, n, k, alpha, a, ars, acs, b, brs, bcs, (cf_real)g->beta, c, ldc);
        double gamma = (double)(k + 2) * u / (1 - (double)(k + 2) * u), worst = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0, mag = 0;
                for (int64_t l = 0; l < k; l++) {
                    double t = (double)a[i * ars + l * acs] * b[l * brs + j * bcs];
                    s += t;
                    mag += fabs(t);
                }
                double c_in = g->beta == 0 ? 0 : (double)c0[i * ldc + j];
                double want = alpha * s + g->beta * c_in, tol = gamma * (alpha * mag + fabs(c_in)) + 1e-30;
                double r = fabs(c[i * ldc + j] - want) / tol;
                if (!(r <= worst)) worst = r; /* NaN counts as a failure */
            }
        CHECK_MSG(worst <= 1, "case %zu (%lld x %lld x %lld): error %.3g of the FMA-chain bound", ci, (long long)m,
                  (long long)n, (long long)k, worst);
        for (int64_t i = 0; i < m; i++) /* padding columns of C are never written */
            for (int64_t j = n; j < ldc; j++) CHECK(memcmp(&c[i * ldc + j], &c0[i * ldc + j], sizeof *c) == 0);
        /* each row alone, then each column alone (the register path: AVX-512 floats, B^T only to k 256) */
        bool in_registers = cf_gemm_packed_available() && !(g->tb && k > 256);
        for (int64_t i = 0; in_registers && i < m; i++) {
            memcpy(part + i * ldc, c0 + i * ldc, (size_t)ldc * sizeof *part);
            cf_gemm_small(1, n, k, alpha, a + i * ars, ars, acs, b, brs, bcs, (cf_real)g->beta, part + i * ldc, ldc);
        }
        CHECK_MSG(!in_registers || memcmp(part, c, (size_t)(m * ldc) * sizeof *c) == 0, "case %zu: a row alone differs",
                  ci);
        memcpy(part, c0, (size_t)(m * ldc) * sizeof *part);
        for (int64_t j = 0; in_registers && j < n; j++)
            cf_gemm_small(m, 1, k, alpha, a, ars, acs, b + j * bcs, brs, bcs, (cf_real)g->beta, part + j, ldc);
        CHECK_MSG(!in_registers || memcmp(part, c, (size_t)(m * ldc) * sizeof *c) == 0,
                  "case %zu: a column alone differs", ci);
        free(a);
        free(b);
        free(c0);
        free(c);
        free(part);
    }
    /* both strides of A equal 1: the head block that sees one key (dk of 1 row from nr query
     * rows, A^T of a [nr, 1] block) and a single row of A; on BLAS (builds without AVX-512) one
     * of the two layouts has an illegal leading dimension */
    const cf_real a1[5] = {1, -2, 3, 0.5f, 4}, b1[5 * 3] = {1, 2, 3, -1, 0, 1, 2, 2, 2, 0, 1, -3, 1, 1, 1};
    cf_real c1[3] = {0, 0, 0};
    cf_gemm_small(1, 3, 5, 1, a1, 1, 1, b1, 3, 1, 0, c1, 3);
    for (int j = 0; j < 3; j++) {
        double want = 0;
        for (int l = 0; l < 5; l++) want += (double)a1[l] * b1[l * 3 + j];
        CHECK_MSG(fabs(c1[j] - want) < 1e-5, "one row of A, both strides 1: column %d is %g, want %g", j, c1[j], want);
    }
    cf_real c2[5 * 3];
    cf_gemm_small(5, 3, 1, 1, a1, 1, 1, b1, 3, 1, 0, c2, 3); /* one column of A (k 1), both strides 1 */
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 3; j++)
            CHECK_MSG(fabs(c2[i * 3 + j] - a1[i] * b1[j]) < 1e-6, "one column of A: (%d, %d) is %g", i, j, c2[i * 3 + j]);
}
