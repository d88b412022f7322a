/* tests/test_gemm.c - core/gemm.h: products against a double-precision loop, the fixed partition,
 * and bit-identical results for 1, 2, 3 and 4 threads (the property the tiling exists for). */
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"
#include "tests/testlib.h"
#include "core/gemm.h"
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
