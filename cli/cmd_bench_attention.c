/* cli/cmd_bench_attention.c - `cformer bench attention`: the attention practice's comparison.
 *
 * One self-attention module of each variant (nn/attention.h: projections, the fused kernel, the
 * output projection) at the practice's shape, batch 2, length 1024, d_model 512, 8 heads (head dim
 * 64), no mask as in the practice: MHA, MQA, GQA with 2 and 4 KV heads, and DeepSeek's MLA with
 * cf_mla_dims' defaults (latent d/2 = 256, 64 + 32 rotary query/key dims, values of 64). For each:
 * parameters, the median forward time (no grad, as the practice's torch.no_grad loop), the median
 * forward + backward time (gradients of the input and every weight), and the KV-cache bytes a token
 * costs per layer in float32 and bf16. Times depend on the machine and its load; docs/model.md
 * records a run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/rng.h"
#include "core/threads.h"
#include "nn/attention.h"

static const char *usage =
    "usage: cformer bench attention [--batch N] [--seq-len N] [--d-model N] [--heads N] [--reps N]\n"
    "                               [--threads N] [--causal]\n"
    "\n"
    "The attention practice's table: for MHA, MQA, GQA (2 and 4 KV heads) and MLA self-attention\n"
    "modules, parameters, median forward and forward+backward times over --reps runs, and KV-cache\n"
    "bytes per token per layer (float32, bf16). Defaults: batch 2, length 1024, d_model 512, 8 heads,\n"
    "5 reps, every CPU this process may use, no mask (--causal: a decoder's causal mask).\n";

typedef struct variant {
    const char *name;
    cf_attn_kind kind;
    int64_t n_kv_heads;
} variant;

static void fill_uniform(cf_real *x, int64_t n, uint64_t seed) {
    cf_rng r = cf_rng_init(seed, CF_RNG_STREAM_TEST);
    for (int64_t i = 0; i < n; i++) x[i] = (cf_real)(2 * cf_rng_uniform(&r) - 1);
}

/* One variant: its row of the table. */
static void bench_variant(const variant *v, int64_t B, int64_t T, int64_t d, int64_t H, int reps, bool causal) {
    cf_model_config c = cf_model_config_default();
    c.d_model = d;
    c.n_heads = H;
    c.attention = v->kind;
    c.n_kv_heads = v->n_kv_heads;
    c.dropout = 0;
    cf_params ps = {0};
    cf_rng r = cf_rng_init(1, CF_RNG_STREAM_INIT);
    cf_nn_attention a;
    cf_nn_attention_init(&a, &ps, &r, &c, "self_attn", true);
    cf_tensor *x = cf_param_new("x", 3, (int64_t[]){B, T, d});
    fill_uniform(x->data, x->numel, 2);
    cf_real *dy = cf_xmalloc((size_t)x->numel * sizeof *dy);
    fill_uniform(dy, x->numel, 3);
    const cf_nn_attn_mask mask = {.causal = causal};
    cf_ctx *ctx = cf_ctx_new(1);
    ctx->training = false;
    double *fwd = cf_xmalloc((size_t)reps * sizeof *fwd), *both = cf_xmalloc((size_t)reps * sizeof *both);
    for (int rep = -1; rep < reps; rep++) { /* one untimed round: the arena reaches its size */
        cf_ctx_set_grad(ctx, false);
        double t0 = cf_now_s();
        cf_nn_attention_forward(ctx, &a, x, x, &mask, NULL, 0);
        double t1 = cf_now_s();
        cf_ctx_reset(ctx);
        cf_ctx_set_grad(ctx, true);
        cf_params_zero_grad(&ps);
        cf_param_zero_grad(x);
        double t2 = cf_now_s();
        cf_tensor *y = cf_nn_attention_forward(ctx, &a, x, x, &mask, NULL, 0);
        cf_backward_seeded(ctx, y, dy);
        double t3 = cf_now_s();
        cf_ctx_reset(ctx);
        if (rep >= 0) fwd[rep] = t1 - t0, both[rep] = t3 - t2;
    }
    int64_t kv = cf_kv_cache_bytes_per_token(&a);
    printf("| %-11s | %10lld | %9.1f | %14.1f | %11lld | %11lld | %5.1f%% |\n", v->name,
           (long long)cf_params_numel(&ps), 1e3 * cf_median(fwd, reps), 1e3 * cf_median(both, reps), (long long)kv,
           (long long)kv / 2, 100.0 * (double)kv / (double)(2 * d * 4));
    free(fwd);
    free(both);
    free(dy);
    cf_ctx_free(ctx);
    cf_param_free(x);
    cf_params_free(&ps);
}

static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || end == s || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int cf_cmd_bench_attention(int argc, char **argv) {
    int64_t B = 2, T = 1024, d = 512, H = 8, reps = 5, threads = 0;
    bool causal = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(a, "--causal") == 0) {
            causal = true;
            continue;
        }
        const struct { const char *flag; int64_t *dst, lo, hi; } opts[] = {
            {"--batch", &B, 1, 4096}, {"--seq-len", &T, 1, 65536}, {"--d-model", &d, 1, 65536},
            {"--heads", &H, 1, 4096}, {"--reps", &reps, 1, 1000}, {"--threads", &threads, 0, 4096}};
        bool ok = false;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !ok; k++)
            if (strcmp(a, opts[k].flag) == 0 && i + 1 < argc) {
                if (!parse_int(argv[++i], opts[k].lo, opts[k].hi, opts[k].dst)) {
                    fprintf(stderr, "cformer bench attention: %s needs an integer in %lld..%lld, got '%s'\n", a,
                            (long long)opts[k].lo, (long long)opts[k].hi, argv[i]);
                    return 2;
                }
                ok = true;
            }
        if (!ok) {
            fprintf(stderr, "cformer bench attention: unknown or incomplete option '%s'\n%s", a, usage);
            return 2;
        }
    }
    /* MLA's default rotary width is half the head dim, which must be even (cf_model_config_check) */
    if (d % H != 0 || H % 4 != 0 || (d / H / 2) % 2 != 0) {
        fprintf(stderr, "cformer bench attention: d_model %lld must be a multiple of --heads %lld, the heads a "
                "multiple of 4 (GQA with 4 KV heads), and the head dim a multiple of 4 (MLA's rotary half)\n",
                (long long)d, (long long)H);
        return 2;
    }
    if (cf_threads_init((int)threads) != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        return 1;
    }
    printf("attention: batch %lld, length %lld, d_model %lld, %lld heads of %lld, %s, %d threads, median of %lld\n\n",
           (long long)B, (long long)T, (long long)d, (long long)H, (long long)(d / H), causal ? "causal" : "no mask",
           cf_threads_count(), (long long)reps);
    printf("| variant     | parameters | fwd ms    | fwd+bwd ms     | KV B/token  | (bf16)      | of MHA |\n");
    printf("|-------------|-----------:|----------:|---------------:|------------:|------------:|-------:|\n");
    const variant vs[] = {
        {"MHA", CF_ATTN_MHA, 0}, {"MQA", CF_ATTN_MQA, 1}, {"GQA 2 KV", CF_ATTN_GQA, 2},
        {"GQA 4 KV", CF_ATTN_GQA, 4}, {"MLA", CF_ATTN_MLA, 0},
    };
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) bench_variant(&vs[i], B, T, d, H, (int)reps, causal);
    printf("\nKV B/token: what one token costs in one layer's cache (K and V; MLA: latent + rotary key).\n");
    return 0;
}
