/* core/gemm.c - GEMM in fixed tiles, single-threaded BLAS per tile (see core/gemm.h for why). */
#include "core/gemm.h"

#include <limits.h>
#include <stdlib.h>
#include <omp.h>
#include <string.h>

#include "core/kernel.h"
#include "core/parallel.h"

/* The plan's constants, measured on the step's shapes (docs/performance.md, "GEMM partition"):
 * - Rows per tile >= 256 where the product is big enough: every row tile packs all of op(B) again,
 *   a cost that grows as the tiles shrink (bench-small's vocabulary dx GEMM ran 168 GFLOP/s in 16
 *   tiles and 182 in 2 on 2 threads).
 * - Whole rows: cutting n as well ran 25-45% slower on 2 threads for the FFN and vocabulary shapes,
 *   so columns are cut only when there are too few rows for two tiles (decoding's short rows).
 * - Tile counts are powers of two, so 2, 4, 8... threads get equal shares.
 * - Below ~4 MFLOP (~40 us on one core) one tile: waking a second thread costs more than it gives. */
enum { TILE_ROWS = 256, TILE_COLS = 256, MIN_ROWS = 16, ROW_ALIGN = 16, MAX_TILES = 64 };
#define SPLIT_MIN_FLOPS 4e6

static int64_t pow2_floor(int64_t x) {
    int64_t p = 1;
    while (p <= x / 2) p *= 2;
    return p;
}

/* Internal: tiles of rows x cols. */
typedef struct gemm_tiles {
    int64_t rows, cols, tm, tn;
} gemm_tiles;

static gemm_tiles tiles_of(int64_t m, int64_t n, int64_t k) {
    gemm_tiles t = {.rows = m > 0 ? m : 1, .cols = n > 0 ? n : 1, .tm = 1, .tn = 1};
    if (2.0 * (double)m * (double)n * (double)k < SPLIT_MIN_FLOPS) return t;
    int64_t tm = pow2_floor(m / TILE_ROWS);
    if (tm < 2) tm = 2;
    if (tm > MAX_TILES) tm = MAX_TILES;
    while (tm > 1 && m / tm < MIN_ROWS) tm /= 2;
    if (tm > 1) {
        int64_t rows = (m + tm - 1) / tm;
        t.rows = (rows + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
        t.tm = (m + t.rows - 1) / t.rows;
        return t;
    }
    int64_t tn = pow2_floor(n / TILE_COLS);
    if (tn > MAX_TILES) tn = MAX_TILES;
    if (tn > 1) {
        int64_t cols = (n + tn - 1) / tn;
        t.cols = (cols + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
        t.tn = (n + t.cols - 1) / t.cols;
    }
    return t;
}

cf_gemm_plan cf_gemm_plan_of(int64_t m, int64_t n, int64_t k) {
    gemm_tiles t = tiles_of(m, n, k);
    return (cf_gemm_plan){.rows = t.rows, .n_tiles = t.tm * t.tn};
}

/* C = beta * C (beta 0: zeros), what BLAS does when k = 0. */
static void gemm_scale_only(int64_t m, int64_t n, cf_real beta, cf_real *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
}

static void check_int(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
    CF_ASSERT(m >= 0 && n >= 0 && k >= 0 && m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX &&
                  ldb <= INT_MAX && ldc <= INT_MAX,
              "gemm: sizes %lld x %lld x %lld (ld %lld, %lld, %lld) exceed BLAS's int", (long long)m, (long long)n,
              (long long)k, (long long)lda, (long long)ldb, (long long)ldc);
}

void cf_gemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, cf_real alpha, const cf_real *a,
                    int64_t lda, const cf_real *b, int64_t ldb, cf_real beta, cf_real *c, int64_t ldc) {
    check_int(m, n, k, lda, ldb, ldc);
    if (m == 0 || n == 0 || k == 0) {
        gemm_scale_only(m, n, beta, c, ldc);
        return;
    }
    /* OpenMP-built OpenBLAS takes its thread count from omp_get_max_threads() at every call
     * (openblas_set_num_threads does not stick: OpenBLAS issue 5806), so make it 1 for this call. */
    int nt = omp_get_max_threads();
    if (nt != 1) omp_set_num_threads(1);
    cf_gemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n,
            (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
    if (nt != 1) omp_set_num_threads(nt);
}

/* One tile: rows [i0, i0+mm), columns [j0, j0+nn) of C. */
static void gemm_tile(bool ta, bool tb, int64_t i0, int64_t mm, int64_t j0, int64_t nn, int64_t k, cf_real alpha,
                      const cf_real *a, int64_t lda, const cf_real *b, int64_t ldb, cf_real beta, cf_real *c,
                      int64_t ldc) {
    const cf_real *at = ta ? a + i0 : a + i0 * lda;
    const cf_real *bt = tb ? b + j0 * ldb : b + j0;
    cf_gemm_serial(ta, tb, mm, nn, k, alpha, at, lda, bt, ldb, beta, c + i0 * ldc + j0, ldc);
}

static cf_gemm_log *gemm_log;

void cf_gemm_log_install(cf_gemm_log *log) { gemm_log = log; }

void cf_gemm_log_free(cf_gemm_log *log) {
    free(log->shapes);
    *log = (cf_gemm_log){0};
}

static void log_product(int64_t count, bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
    cf_gemm_log *l = gemm_log;
    for (size_t i = 0; i < l->n; i++) {
        cf_gemm_shape *s = &l->shapes[i];
        if (s->trans_a == ta && s->trans_b == tb && s->m == m && s->n == n && s->k == k) {
            s->calls += count;
            return;
        }
    }
    l->shapes = cf_grow(l->shapes, &l->cap, l->n + 1, sizeof *l->shapes);
    l->shapes[l->n++] = (cf_gemm_shape){ta, tb, m, n, k, count};
}

/* Every entry point: count products, C (+)= ..., or C = ... + bias when bias is given. */
static void gemm_run(int64_t count, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, cf_real alpha,
                     const cf_real *a, int64_t sa, int64_t lda, const cf_real *b, int64_t sb, int64_t ldb,
                     cf_real beta, const cf_real *bias, cf_real *c, int64_t sc, int64_t ldc) {
    if (count <= 0 || m == 0 || n == 0) return;
    check_int(m, n, k, lda, ldb, ldc);
    if (gemm_log && !omp_in_parallel()) log_product(count, trans_a, trans_b, m, n, k);
    gemm_tiles t = tiles_of(m, n, k);
    int64_t per = t.tm * t.tn, tasks = count * per;
    /* Dynamic: a thread that the OS deschedules holds up one tile, not a fixed share. Nested inside
     * another parallel region the loop runs on the calling thread (OpenMP's default). */
    CF_PARALLEL_FOR_DYNAMIC(tasks > 1, for (int64_t task = 0; task < tasks; task++) {
        int64_t mat = task / per, tile = task % per;
        int64_t i0 = (tile / t.tn) * t.rows, j0 = (tile % t.tn) * t.cols;
        int64_t mm = m - i0 < t.rows ? m - i0 : t.rows, nn = n - j0 < t.cols ? n - j0 : t.cols;
        cf_real *ct = c + mat * sc;
        if (bias) { /* the tile's rows start as the bias: the GEMM then adds into them (beta 1) */
            for (int64_t i = 0; i < mm; i++)
                memcpy(ct + (i0 + i) * ldc + j0, bias + j0, (size_t)nn * sizeof(cf_real));
        }
        gemm_tile(trans_a, trans_b, i0, mm, j0, nn, k, alpha, a + mat * sa, lda, b + mat * sb, ldb,
                  bias ? 1 : beta, ct, ldc);
    });
}

void cf_gemm_rm_group(const cf_gemm_args *g, int n) {
    CF_ASSERT(n >= 0 && n <= CF_GEMM_GROUP_MAX, "gemm group of %d products (at most %d)", n, CF_GEMM_GROUP_MAX);
    gemm_tiles t[CF_GEMM_GROUP_MAX];
    int64_t first[CF_GEMM_GROUP_MAX + 1] = {0}; /* product i's tiles are tasks first[i] .. first[i+1] */
    for (int i = 0; i < n; i++) {
        const cf_gemm_args *p = &g[i];
        check_int(p->m, p->n, p->k, p->lda, p->ldb, p->ldc);
        bool empty = p->m == 0 || p->n == 0;
        if (!empty && gemm_log && !omp_in_parallel()) log_product(1, p->trans_a, p->trans_b, p->m, p->n, p->k);
        t[i] = tiles_of(p->m, p->n, p->k);
        first[i + 1] = first[i] + (empty ? 0 : t[i].tm * t[i].tn);
    }
    CF_PARALLEL_FOR_DYNAMIC(first[n] > 1, for (int64_t task = 0; task < first[n]; task++) {
        int i = 0;
        while (task >= first[i + 1]) i++;
        const cf_gemm_args *p = &g[i];
        int64_t tile = task - first[i], i0 = (tile / t[i].tn) * t[i].rows, j0 = (tile % t[i].tn) * t[i].cols;
        int64_t mm = p->m - i0 < t[i].rows ? p->m - i0 : t[i].rows, nn = p->n - j0 < t[i].cols ? p->n - j0 : t[i].cols;
        gemm_tile(p->trans_a, p->trans_b, i0, mm, j0, nn, p->k, p->alpha, p->a, p->lda, p->b, p->ldb, p->beta, p->c,
                  p->ldc);
    });
}

void cf_gemm_rm_batched(int64_t count, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, cf_real alpha,
                        const cf_real *a, int64_t sa, int64_t lda, const cf_real *b, int64_t sb, int64_t ldb,
                        cf_real beta, cf_real *c, int64_t sc, int64_t ldc) {
    gemm_run(count, trans_a, trans_b, m, n, k, alpha, a, sa, lda, b, sb, ldb, beta, NULL, c, sc, ldc);
}

void cf_gemm_rm_bias(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const cf_real *a, int64_t lda,
                     const cf_real *b, int64_t ldb, const cf_real *bias, cf_real *c, int64_t ldc) {
    gemm_run(1, trans_a, trans_b, m, n, k, 1, a, 0, lda, b, 0, ldb, 0, bias, c, 0, ldc);
}

void cf_gemm_rm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, cf_real alpha, const cf_real *a,
                int64_t lda, const cf_real *b, int64_t ldb, cf_real beta, cf_real *c, int64_t ldc) {
    cf_gemm_rm_batched(1, trans_a, trans_b, m, n, k, alpha, a, 0, lda, b, 0, ldb, beta, c, 0, ldc);
}
