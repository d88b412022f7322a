/* bench/bench_attention.c - time the fused attention forward and backward.
 *
 *     int bench_attention(void);   // called from bench/bench_main.c; returns 0
 *
 * B=32, H=8, T=S=48, D=32, with MHA (Hkv=8) and GQA (Hkv=2), no mask and causal, and with
 * dropout 0.1 (training). FLOPs counted as 4*B*H*T*S*D for forward (two GEMMs) and twice that for
 * backward (four GEMMs), whatever the mask skips, so GFLOP/s are comparable across rows. Uses the
 * thread count the caller set with cf_threads_init. Prints medians over the repetitions.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/ops.h"
#include "core/threads.h"
#include "core/rng.h"

static void fill(cf_tensor *t, uint64_t seed) {
    cf_rng r = cf_rng_init(seed, CF_RNG_STREAM_TEST);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = (cf_real)(2 * cf_rng_uniform(&r) - 1);
}

static void bench_case(const char *name, int64_t B, int64_t H, int64_t Hkv, int64_t T, int64_t D, bool causal,
                       double dropout) {
    enum { REPS = 21 };
    cf_tensor *q = cf_param_new("q", 4, (int64_t[]){B, H, T, D});
    cf_tensor *k = cf_param_new("k", 4, (int64_t[]){B, Hkv, T, D});
    cf_tensor *v = cf_param_new("v", 4, (int64_t[]){B, Hkv, T, D});
    fill(q, 1);
    fill(k, 2);
    fill(v, 3);
    cf_real *dout = malloc((size_t)q->numel * sizeof *dout);
    cf_rng r = cf_rng_init(4, CF_RNG_STREAM_TEST);
    for (int64_t i = 0; i < q->numel; i++) dout[i] = (cf_real)(2 * cf_rng_uniform(&r) - 1);
    cf_attn_opts o = {.scale = 1 / sqrt((double)D), .causal = causal, .dropout = dropout};
    cf_ctx *ctx = cf_ctx_new(1);
    double fwd[REPS], bwd[REPS], tot[REPS];
    for (int rep = -2; rep < REPS; rep++) { /* two warm-up runs size the arena */
        cf_ctx_begin_step(ctx, (uint64_t)rep + 2);
        double t0 = 1e3 * cf_now_s();
        cf_tensor *y = cf_attention(ctx, q, k, v, &o);
        double t1 = 1e3 * cf_now_s();
        cf_backward_seeded(ctx, y, dout);
        double t2 = 1e3 * cf_now_s();
        cf_ctx_reset(ctx);
        if (rep >= 0) {
            fwd[rep] = t1 - t0;
            bwd[rep] = t2 - t1;
            tot[rep] = t2 - t0;
        }
    }
    double fl = 4.0 * B * H * T * T * D, f = cf_median(fwd, REPS), b = cf_median(bwd, REPS), t = cf_median(tot, REPS);
    printf("attention %-14s B%lld H%lld Hkv%lld T=S=%lld D%lld: fwd %6.2f ms (%5.1f GFLOP/s)  bwd %6.2f ms "
           "(%5.1f GFLOP/s)  fwd+bwd %6.2f ms (%5.1f GFLOP/s)\n",
           name, (long long)B, (long long)H, (long long)Hkv, (long long)T, (long long)D, f, fl / f * 1e-6, b,
           2 * fl / b * 1e-6, t, 3 * fl / t * 1e-6);
    cf_ctx_free(ctx);
    free(dout);
    cf_param_free(q);
    cf_param_free(k);
    cf_param_free(v);
}

int bench_attention(void) {
    printf("attention: %d threads, OpenBLAS %s\n", cf_threads_count(), cf_threads_blas_model());
    bench_case("mha", 32, 8, 8, 48, 32, false, 0);
    bench_case("gqa", 32, 8, 2, 48, 32, false, 0);
    bench_case("mha causal", 32, 8, 8, 48, 32, true, 0);
    bench_case("gqa causal", 32, 8, 2, 48, 32, true, 0);
    bench_case("mha dropout", 32, 8, 8, 48, 32, false, 0.1);
    return 0;
}
