/* bench/bench_matmul.c - cf_linear / cf_matmul GFLOP/s next to a direct cblas_sgemm of the same
 * shape: the gap is cformer's overhead (tape, arena, bias fill). Shapes are the GEMMs of the
 * bench-tiny and bench-small models (rows = batch 32 x length). */
#include <cblas.h>
#include <stdio.h>

#include "bench/bench.h"
#include "core/ops.h"

typedef struct mm_case {
    const char *what;
    int64_t m, n, k;                 /* [m, k] @ [n, k]^T -> [m, n] */
    cf_ctx *ctx;
    cf_tensor *x, *w, *b;
    float *c;
} mm_case;

static void run_sgemm(void *arg) {
    mm_case *mc = arg;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)mc->m, (int)mc->n, (int)mc->k, 1, mc->x->data,
                (int)mc->k, mc->w->data, (int)mc->k, 0, mc->c, (int)mc->n);
}

static void run_linear(void *arg) {
    mm_case *mc = arg;
    cf_ctx_reset(mc->ctx);
    cf_linear(mc->ctx, mc->x, mc->w, mc->b);
}

static void run_matmul(void *arg) {
    mm_case *mc = arg;
    cf_ctx_reset(mc->ctx);
    cf_matmul(mc->ctx, mc->x, mc->w, true);
}

static void run_linear_fwd_bwd(void *arg) {
    mm_case *mc = arg;
    cf_ctx_reset(mc->ctx);
    cf_tensor *y = cf_linear(mc->ctx, mc->x, mc->w, mc->b);
    cf_backward_seeded(mc->ctx, y, mc->c);
}

int bench_matmul(void) {
    static const struct { const char *what; int64_t m, n, k; } shapes[] = {
        {"tiny  qkv/out proj", 1024, 128, 128},
        {"tiny  ffn up", 1024, 512, 128},
        {"tiny  ffn down", 1024, 128, 512},
        {"tiny  vocab proj", 1024, 2000, 128},
        {"small ffn up", 1536, 1024, 256},
        {"small vocab proj", 1536, 8000, 256},
        {"square 1024", 1024, 1024, 1024},
    };
    printf("\n== matmul: cformer vs direct cblas_sgemm (GFLOP/s, median of 15) ==\n");
    printf("%-20s %16s %8s %8s %8s %10s %9s\n", "gemm", "m x n x k", "sgemm", "linear", "matmul", "lin f+b", "lin/sgemm");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        mm_case mc = {shapes[s].what, shapes[s].m, shapes[s].n, shapes[s].k, cf_ctx_new(1), NULL, NULL, NULL, NULL};
        mc.x = bench_param(2, (int64_t[]){mc.m, mc.k}, 1);
        mc.w = bench_param(2, (int64_t[]){mc.n, mc.k}, 2);
        mc.b = bench_param(1, (int64_t[]){mc.n}, 3);
        cf_tensor *cbuf = bench_param(2, (int64_t[]){mc.m, mc.n}, 4);
        mc.c = cbuf->data;
        double flops = 2.0 * (double)mc.m * (double)mc.n * (double)mc.k;
        double t_sgemm = bench_median(run_sgemm, &mc, 3, 15);
        double t_lin = bench_median(run_linear, &mc, 3, 15);
        double t_mm = bench_median(run_matmul, &mc, 3, 15);
        double t_fb = bench_median(run_linear_fwd_bwd, &mc, 2, 9);
        printf("%-20s %5lldx%5lldx%4lld %8.1f %8.1f %8.1f %10.1f %8.2fx\n", mc.what, (long long)mc.m, (long long)mc.n,
               (long long)mc.k, flops / t_sgemm * 1e-9, flops / t_lin * 1e-9, flops / t_mm * 1e-9,
               3 * flops / t_fb * 1e-9, t_sgemm / t_lin);
        cf_param_free(mc.x);
        cf_param_free(mc.w);
        cf_param_free(mc.b);
        cf_param_free(cbuf);
        cf_ctx_free(mc.ctx);
    }
    return 0;
}
