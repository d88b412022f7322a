/* cli/bench_ceiling.c - see bench_ceiling.h. */
#include "cli/bench_ceiling.h"

#include <cblas.h>
#include <stdlib.h>

#include "core/common.h"
#include "core/rng.h"

enum { WARM = 2, RUNS = 7 };

typedef struct product {
    const cf_gemm_shape *s;
    const float *a, *b;
    float *c;
} product;

/* The shapes were recorded by core/gemm.c's entry points after their check that every size fits
 * BLAS's int, so the casts below cannot truncate. */
static void run_sgemm(const product *p) {
    const cf_gemm_shape *s = p->s;
    cblas_sgemm(CblasRowMajor, s->trans_a ? CblasTrans : CblasNoTrans, s->trans_b ? CblasTrans : CblasNoTrans,
                (int)s->m, (int)s->n, (int)s->k, 1, p->a, (int)(s->trans_a ? s->m : s->k), p->b,
                (int)(s->trans_b ? s->k : s->n), 0, p->c, (int)s->n);
}

static void run_tiled(const product *p) {
    const cf_gemm_shape *s = p->s;
    cf_gemm_rm(s->trans_a, s->trans_b, s->m, s->n, s->k, 1, p->a, s->trans_a ? s->m : s->k, p->b,
               s->trans_b ? s->k : s->n, 0, p->c, s->n);
}

static double median_time(void (*run)(const product *), const product *p) {
    double t[RUNS];
    for (int i = 0; i < WARM; i++) run(p);
    for (int i = 0; i < RUNS; i++) {
        double t0 = cf_now_s();
        run(p);
        t[i] = cf_now_s() - t0;
    }
    return cf_median(t, RUNS);
}

void cf_gemm_ceiling_measure(const cf_gemm_log *log, cf_gemm_ceiling *out) {
    *out = (cf_gemm_ceiling){.shapes = (int64_t)log->n};
    size_t max_a = 1, max_b = 1, max_c = 1;
    for (size_t i = 0; i < log->n; i++) {
        const cf_gemm_shape *s = &log->shapes[i];
        size_t a = (size_t)(s->m * s->k), b = (size_t)(s->k * s->n), c = (size_t)(s->m * s->n);
        max_a = a > max_a ? a : max_a, max_b = b > max_b ? b : max_b, max_c = c > max_c ? c : max_c;
    }
    float *a = cf_xmalloc(max_a * sizeof *a), *b = cf_xmalloc(max_b * sizeof *b), *c = cf_xmalloc(max_c * sizeof *c);
    cf_rng r = cf_rng_init(1, CF_RNG_STREAM_DATA);
    for (size_t i = 0; i < max_a; i++) a[i] = (float)cf_rng_uniform(&r) - 0.5f;
    for (size_t i = 0; i < max_b; i++) b[i] = (float)cf_rng_uniform(&r) - 0.5f;
    for (size_t i = 0; i < log->n; i++) {
        const cf_gemm_shape *s = &log->shapes[i];
        product p = {s, a, b, c};
        double calls = (double)s->calls;
        out->products += s->calls;
        out->flops += calls * 2.0 * (double)s->m * (double)s->n * (double)s->k;
        out->sgemm_s += calls * median_time(run_sgemm, &p);
        out->tiled_s += calls * median_time(run_tiled, &p);
    }
    free(a);
    free(b);
    free(c);
}
