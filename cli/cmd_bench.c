/* cli/cmd_bench.c - `cformer bench CONFIG [--steps N] [--warmup N] [--threads N] [--set k=v]... [--json]`
 *
 * Times full training steps of the model CONFIG describes on synthetic batches: bench.batch_size
 * sentence pairs of exactly bench.src_len / bench.tgt_len random token ids (no padding), vocabulary
 * data.vocab_size. A step is the trainer's own update, cf_train_step (train/step.h): for each of
 * train.grad_accum micro-batches forward, label-smoothed loss, backward and the arena reset; then
 * gradient clipping, the optimizer step and zero grad. Batches are drawn before each step's clock
 * starts. After bench.warmup untimed steps (the arena reaches its final size) it reports the median of bench.steps timed steps, throughput,
 * GFLOP/s (forward FLOPs x 3 for forward + backward), peak RSS and the allocations made during the
 * timed steps: the arena's malloc count (must be 0: GUIDE section 2) and glibc's heap-in-use delta.
 *
 * bench/compare_torch.sh runs it next to bench/ref/torch_train_bench.py (same shapes, same step).
 */
#include "cli/bench_ceiling.h"
#include "cli/commands.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "core/profile.h"
#include "core/rng.h"
#include "core/threads.h"
#include "data/tokenizer.h"
#include "nn/transformer.h"
#include "optim/optim.h"
#include "train/config.h"
#include "train/step.h"

static const char *usage =
    "usage: cformer bench CONFIG [--steps N] [--warmup N] [--threads N] [--fixed-threads] [--set key.path=value]...\n"
    "                    [--json] [--profile] [--scaling]\n"
    "\n"
    "Time the trainer's own training steps (forward, label-smoothed loss, backward and arena reset for\n"
    "each of train.grad_accum micro-batches, then clip, optimizer step, zero grad) of CONFIG's model on\n"
    "random micro-batches of bench.batch_size x bench.src_len/bench.tgt_len tokens (vocabulary\n"
    "data.vocab_size; no data files needed). Prints the median step time, target and source+target\n"
    "tokens/s, GFLOP/s, peak RSS and the mallocs made during the timed steps.\n"
    "  --steps N        timed steps (bench.steps)\n"
    "  --warmup N       untimed steps first (bench.warmup)\n"
    "  --threads N      threads (train.threads; 0 = every CPU this process may use)\n"
    "  --fixed-threads  keep that count even when other processes take cores (train.adapt_threads false)\n"
    "  --set key.path=v override a config key (repeatable), e.g. --set bench.batch_size=64\n"
    "  --json           one JSON object on stdout instead of the report\n"
    "  --profile        also print forward and backward time per op (core/profile.h)\n"
    "  --scaling        time bench.steps steps on 1 thread and as many on --threads N (fixed), interleaved\n"
    "                   in blocks of 4 steps (1 N N 1 1 N N 1 ...; a block's first step untimed) so that the\n"
    "                   machine's drift falls on both; prints the speed-up\n"
    "                   (with --profile: per op)\n"
    "\n"
    "cformer bench attention: the attention variants side by side (cformer bench attention --help).\n"
    "cformer bench decode: greedy and beam-search decoding of a run or a config (cformer bench decode --help).\n";

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
}

/* Bytes glibc has handed out and not taken back (small-block arenas + mmapped blocks). */
static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* Random ids in [CF_BPE_N_SPECIAL, V): no pad, so every target token counts; tgt_in is <bos> y. */
static void fill_batch(cf_rng *r, int64_t V, int64_t B, int64_t S, int64_t T, int32_t *src, int32_t *tgt_in,
                       int32_t *tgt_out) {
    uint64_t span = (uint64_t)(V - CF_BPE_N_SPECIAL);
    for (int64_t i = 0; i < B * S; i++) src[i] = CF_BPE_N_SPECIAL + (int32_t)cf_rng_below(r, span);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t < T; t++) tgt_out[b * T + t] = CF_BPE_N_SPECIAL + (int32_t)cf_rng_below(r, span);
        tgt_in[b * T] = CF_BOS_ID;
        for (int64_t t = 1; t < T; t++) tgt_in[b * T + t] = tgt_out[b * T + t - 1];
    }
}

/* The micro-batches of one step, drawn before its clock starts; cf_train_step takes them in turn. */
typedef struct micro_batches {
    cf_seq_batch *b;
    int64_t n, next;
} micro_batches;

static const cf_seq_batch *next_micro_batch(void *arg) {
    micro_batches *mb = arg;
    return &mb->b[mb->next++ % mb->n];
}

/* Phases of one step, timed separately to show where the time goes. */
enum { PH_FORWARD, PH_BACKWARD, PH_OPTIM, PH_RESET, PH_TOTAL, N_PHASES };
static const char *phase_names[N_PHASES] = {"forward+loss", "backward", "clip+adamw+zero", "arena reset", "step"};

/* --scaling: the steps after the warm-up go in blocks of SCALING_BLOCK on one count, blocks on 1
 * thread and on N in the order 1 N N 1 1 N N 1..., so that a drift of the machine's speed (other
 * tenants of the host) falls on both counts alike. A block's first step is not timed: right after
 * the count changes a step runs slower than in a steady run (on this VM the idle vCPU comes back
 * cold; bench-small's 2-thread steps alternating with 1-thread ones one by one gave 1.81x where
 * separate 1- and 2-thread runs, alternated, gave 1.94x). The j-th timed step of each count form
 * pair j. */
enum { SCALING_BLOCK = 4 };
static bool scaling_one_thread(int64_t k) {
    int64_t block = k / SCALING_BLOCK;
    return block % 4 == 0 || block % 4 == 3;
}

/* The two profiles of --scaling --profile side by side, by the N-thread total, per step. */
static void print_profile_scaling(const cf_profile *one, const cf_profile *all, int threads, int64_t steps) {
    bool done[CF_PROFILE_MAX_OPS] = {false};
    double k = 1e3 / (double)(steps > 0 ? steps : 1), sum1 = 0, sumn = 0;
    printf("%-22s %14s %14s %9s\n", "op", "1 thread ms", "threads ms", "speed-up");
    for (int printed = 0; printed < all->n; printed++) {
        int best = -1;
        for (int i = 0; i < all->n; i++) {
            double t = all->ops[i].forward_s + all->ops[i].backward_s;
            if (!done[i] && (best < 0 || t > all->ops[best].forward_s + all->ops[best].backward_s)) best = i;
        }
        done[best] = true;
        const cf_profile_entry *e = &all->ops[best];
        double tn = (e->forward_s + e->backward_s) * k, t1 = 0;
        for (int i = 0; i < one->n; i++)
            if (strcmp(one->ops[i].op, e->op) == 0) t1 = (one->ops[i].forward_s + one->ops[i].backward_s) * k;
        sum1 += t1;
        sumn += tn;
        printf("%-22s %14.3f %14.3f %8.2fx\n", e->op, t1, tn, tn > 0 ? t1 / tn : 0);
    }
    printf("%-22s %14.3f %14.3f %8.2fx  (%d threads)\n", "(all ops)", sum1, sumn, sumn > 0 ? sum1 / sumn : 0, threads);
}

static int run_bench(const cf_config *cfg, bool json, bool profile, bool scaling) {
    const cf_bench_config *bc = &cfg->bench;
    const int64_t B = bc->batch_size, S = bc->src_len, T = bc->tgt_len, V = cfg->data.vocab_size;
    const int64_t n_steps = bc->steps, n_warm = bc->warmup;
    const int threads = cf_threads_max();
    if (scaling && threads < 2) {
        cf_error_set("bench --scaling compares 1 thread with more: it needs --threads 2 or more (this run has %d)",
                     threads);
        return -1;
    }
    /* --scaling: n_steps timed steps on each count, in blocks of SCALING_BLOCK - 1 timed steps */
    const int64_t per_count = (n_steps + SCALING_BLOCK - 2) / (SCALING_BLOCK - 1); /* blocks of each count */
    const int64_t n_timed = scaling ? 2 * per_count * SCALING_BLOCK : n_steps;
    double rss_start = peak_rss_mib();

    cf_model_config mc = cfg->model;
    mc.src_vocab = mc.tgt_vocab = V;
    cf_transformer *m = cf_transformer_new(&mc, cfg->seed);
    if (!m) return -1;
    cf_param_list pl;
    cf_param_list_init(&pl);
    cf_optimizer *opt = NULL;
    for (int i = 0; i < m->params.n; i++)
        if (cf_param_list_add_auto(&pl, m->params.items[i], cfg->train.exempt_embeddings) != 0) goto fail;
    opt = cf_optimizer_new(&pl, &cfg->optim);
    if (!opt) goto fail;
    cf_ctx *ctx = cf_ctx_new(cfg->seed);
    double rss_model = peak_rss_mib();

    /* A = grad_accum micro-batches of B pairs a step, the trainer's unit of work. */
    const int64_t A = cfg->train.grad_accum;
    int32_t *src = cf_xmalloc((size_t)(A * B * S) * sizeof *src), *src_lens = cf_xmalloc((size_t)B * sizeof *src_lens);
    int32_t *tgt_in = cf_xmalloc((size_t)(A * B * T) * sizeof *tgt_in);
    int32_t *tgt_out = cf_xmalloc((size_t)(A * B * T) * sizeof *tgt_out);
    for (int64_t b = 0; b < B; b++) src_lens[b] = (int32_t)S;
    double *times = cf_xcalloc((size_t)(N_PHASES * n_steps), sizeof *times); /* [phase][step] */
    double *times1 = cf_xcalloc((size_t)n_steps + 1, sizeof *times1);       /* --scaling: 1-thread steps */
    double *pair_ratio = cf_xcalloc((size_t)n_steps + 1, sizeof *pair_ratio);
    cf_rng rng = cf_rng_init(cfg->seed, CF_RNG_STREAM_DATA);
    micro_batches mb = {.b = cf_xmalloc((size_t)A * sizeof *mb.b), .n = A};
    for (int64_t a = 0; a < A; a++)
        mb.b[a] = (cf_seq_batch){.batch = B, .src_len = S, .tgt_len = T, .src = src + a * B * S, .src_lens = src_lens,
                                 .tgt_in = tgt_in + a * B * T, .tgt_out = tgt_out + a * B * T, .pad_id = CF_PAD_ID};
    /* The trainer's guard without its limit: a non-finite step is skipped, and the timing counts. */
    cf_nan_guard guard;
    cf_nan_guard_init(&guard, 0);
    cf_grad_sync *sync = cf_grad_sync_new(opt->params, opt->n, A, 0);
    CF_ASSERT(sync, "grad sync");
    cf_profile *prof = profile ? cf_xmalloc(sizeof *prof) : NULL, *prof1 = profile && scaling ? cf_xmalloc(sizeof *prof1) : NULL;
    if (prof) cf_profile_init(prof);
    if (prof1) cf_profile_init(prof1);
    const cf_step_setup setup = {.ctx = ctx, .model = m, .opt = opt, .schedule = &cfg->schedule,
                                 .label_smoothing = cfg->train.label_smoothing, .clip = cfg->train.clip,
                                 .grad_accum = A, .guard = &guard, .sync = sync};

    size_t arena_mallocs0 = 0, heap0 = 0;
    double first_loss = 0, last_loss = 0;
    int min_threads = cf_threads_max(), max_used = 0; /* over the timed steps (load following) */
    int64_t n_all = 0, n_one = 0; /* timed steps so far on all threads, on one (--scaling) */
    for (int64_t step = 0; step < n_warm + n_timed; step++) {
        for (int64_t a = 0; a < A; a++)
            fill_batch(&rng, V, B, S, T, src + a * B * S, tgt_in + a * B * T, tgt_out + a * B * T);
        if (step == n_warm) {
            arena_mallocs0 = ctx->arena.mallocs;
            heap0 = heap_in_use();
        }
        bool one = scaling && step >= n_warm && scaling_one_thread(step - n_warm);
        bool timed = step >= n_warm;
        if (scaling && timed) /* a block's first step re-warms; each count keeps n_steps */
            timed = (step - n_warm) % SCALING_BLOCK != 0 && (one ? n_one : n_all) < n_steps;
        if (scaling) cf_threads_set_count(one ? 1 : threads);
        ctx->profile = profile && timed ? (one ? prof1 : prof) : NULL;
        double t0 = cf_now_s();
        cf_step_result r;
        cf_train_step(&setup, step, next_micro_batch, &mb, &r);
        double t1 = cf_now_s();
        if (step == 0) first_loss = r.loss;
        last_loss = r.loss;
        if (!timed) continue;
        if (one) {
            times1[n_one++] = t1 - t0;
        } else {
            int64_t k = n_all++;
            times[PH_FORWARD * n_steps + k] = r.forward_s;
            times[PH_BACKWARD * n_steps + k] = r.backward_s;
            times[PH_OPTIM * n_steps + k] = r.update_s;
            times[PH_RESET * n_steps + k] = r.reset_s;
            times[PH_TOTAL * n_steps + k] = t1 - t0;
            if (r.threads < min_threads) min_threads = r.threads;
            if (r.threads > max_used) max_used = r.threads;
        }
    }
    for (int64_t j = 0; scaling && j < n_steps; j++) pair_ratio[j] = times1[j] / times[PH_TOTAL * n_steps + j];
    ctx->profile = NULL;
    if (scaling) cf_threads_set_count(threads);
    size_t arena_mallocs = ctx->arena.mallocs - arena_mallocs0;
    long long heap_delta = (long long)heap_in_use() - (long long)heap0;
    double rss_peak = peak_rss_mib();
    /* The ceiling: the products of one more step, each shape timed alone (cli/bench_ceiling.h). */
    cf_gemm_log glog = {0};
    for (int64_t a = 0; a < A; a++)
        fill_batch(&rng, V, B, S, T, src + a * B * S, tgt_in + a * B * T, tgt_out + a * B * T);
    cf_gemm_log_install(&glog);
    cf_step_result r_extra;
    cf_train_step(&setup, n_warm + n_timed, next_micro_batch, &mb, &r_extra);
    cf_gemm_log_install(NULL);
    cf_gemm_ceiling ceiling, ceiling1 = {0};
    if (scaling) { /* the products alone on one thread: how well the GEMMs themselves scale */
        cf_threads_set_count(1);
        cf_gemm_ceiling_measure(&glog, &ceiling1);
        cf_threads_set_count(threads);
    }
    cf_gemm_ceiling_measure(&glog, &ceiling);
    cf_gemm_log_free(&glog);
    double med[N_PHASES];
    for (int p = 0; p < N_PHASES; p++) med[p] = cf_median(times + p * n_steps, n_steps);
    double t_step = med[PH_TOTAL];
    double t_step1 = scaling ? cf_median(times1, n_steps) : 0, pair_med = scaling ? cf_median(pair_ratio, n_steps) : 0;
    double pair_lo = pair_med, pair_hi = pair_med;
    for (int64_t j = 0; scaling && j < n_steps; j++) {
        if (pair_ratio[j] < pair_lo) pair_lo = pair_ratio[j];
        if (pair_ratio[j] > pair_hi) pair_hi = pair_ratio[j];
    }
    double tiled_scaling = scaling && ceiling.tiled_s > 0 ? ceiling1.tiled_s / ceiling.tiled_s : 0;
    double fwd_flops = cf_transformer_flops(m, S, T) * (double)(A * B);
    double tgt_tps = (double)(A * B * T) / t_step, all_tps = (double)(A * B * (S + T)) / t_step;
    double gflops = 3.0 * fwd_flops / t_step * 1e-9;
    double sgemm_gflops = ceiling.flops / ceiling.sgemm_s * 1e-9, tiled_gflops = ceiling.flops / ceiling.tiled_s * 1e-9;
    const char *coretype = getenv("OPENBLAS_CORETYPE");

    if (json) {
        printf("{\"impl\":\"cformer\",\"config\":\"%s\",\"threads\":%d,\"threads_min\":%d,\"threads_max_used\":%d,"
               "\"adaptive\":%s,\"batch\":%lld,\"src_len\":%lld,\"tgt_len\":%lld,"
               "\"vocab\":%lld,\"params\":%lld,\"steps\":%lld,\"warmup\":%lld,\"step_ms\":%.4f,\"tgt_tok_s\":%.1f,"
               "\"tok_s\":%.1f,\"gflop_s\":%.2f,\"peak_rss_mib\":%.1f,\"rss_start_mib\":%.1f,\"arena_mallocs\":%zu,"
               "\"heap_delta_bytes\":%lld,\"arena_mib\":%.1f,\"arena_used_mib\":%.1f,\"first_loss\":%.4f,\"last_loss\":%.4f,"
               "\"forward_ms\":%.4f,\"backward_ms\":%.4f,\"optim_ms\":%.4f,\"reset_ms\":%.4f,\"openblas_coretype\":\"%s\","
               "\"ceiling_gemm_flop\":%.0f,\"ceiling_sgemm_gflop_s\":%.2f,\"ceiling_tiled_gflop_s\":%.2f",
               cfg->name, cf_threads_max(), min_threads, max_used, cf_threads_adaptive() ? "true" : "false", (long long)B, (long long)S, (long long)T, (long long)V,
               (long long)cf_transformer_num_params(m), (long long)n_steps, (long long)n_warm, t_step * 1e3, tgt_tps,
               all_tps, gflops, rss_peak, rss_start, arena_mallocs, heap_delta,
               (double)cf_arena_capacity(&ctx->arena) / (1 << 20), (double)ctx->arena.high_water / (1 << 20), first_loss, last_loss, med[PH_FORWARD] * 1e3,
               med[PH_BACKWARD] * 1e3, med[PH_OPTIM] * 1e3, med[PH_RESET] * 1e3, coretype ? coretype : "",
               ceiling.flops, sgemm_gflops, tiled_gflops);
        if (scaling)
            printf(",\"scaling_step_ms_1_thread\":%.4f,\"scaling_speedup\":%.4f,\"scaling_pair_median\":%.4f,"
                   "\"scaling_pair_min\":%.4f,\"scaling_pair_max\":%.4f,\"scaling_tiled_gemm_speedup\":%.4f",
                   t_step1 * 1e3, t_step1 / t_step, pair_med, pair_lo, pair_hi, tiled_scaling);
        printf("}\n");
    } else {
        printf("bench %s: d_model %lld, %lld heads, %lld+%lld layers, d_ff %lld, vocab %lld: %.2fM parameters\n",
               cfg->name, (long long)mc.d_model, (long long)mc.n_heads, (long long)mc.enc_layers,
               (long long)mc.dec_layers, (long long)mc.d_ff, (long long)V, (double)cf_transformer_num_params(m) / 1e6);
        printf("batch %lld x %lld/%lld tokens, %d threads (OpenBLAS %s), OPENBLAS_CORETYPE=%s, %lld warm-up + %lld "
               "timed steps\n", (long long)B, (long long)S, (long long)T, cf_threads_max(), cf_threads_blas_model(),
               coretype ? coretype : "(unset)", (long long)n_warm, (long long)n_steps);
        if (cf_threads_adaptive())
            printf("threads used    %d-%d of %d (load following; other processes used %.2f CPUs at the last "
                   "sample)\n", min_threads, max_used, cf_threads_max(), cf_threads_load_others());
        printf("loss %.4f (first step) -> %.4f (last step)\n", first_loss, last_loss);
        printf("median step     %9.2f ms\n", t_step * 1e3);
        for (int p = 0; p < PH_TOTAL; p++)
            printf("  %-15s %8.2f ms  (%4.1f%%)\n", phase_names[p], med[p] * 1e3, 100 * med[p] / t_step);
        printf("target tokens/s %9.0f\n", tgt_tps);
        printf("src+tgt tokens/s%9.0f\n", all_tps);
        printf("GFLOP/s         %9.1f  (forward FLOPs x 3 = %.2f GFLOP a step)\n", gflops, 3 * fwd_flops * 1e-9);
        printf("GEMM ceiling    %9.1f  GFLOP/s: cblas_sgemm on %d threads, timed on the step's %lld products "
               "(%lld shapes, %.2f GFLOP); the step runs at %.0f%% of it\n", sgemm_gflops, cf_threads_max(),
               (long long)ceiling.products, (long long)ceiling.shapes, ceiling.flops * 1e-9, 100 * gflops / sgemm_gflops);
        printf("                %9.1f  GFLOP/s: cformer's tiled GEMM on the same products (%.0f%% of it)\n",
               tiled_gflops, 100 * gflops / tiled_gflops);
        printf("peak RSS        %9.1f MiB  (%.1f MiB before the model, %.1f MiB with model + AdamW state; "
               "arena: a step uses %.1f MiB of %.1f MiB)\n", rss_peak, rss_start, rss_model,
               (double)ctx->arena.high_water / (1 << 20), (double)cf_arena_capacity(&ctx->arena) / (1 << 20));
        printf("timed steps: %zu arena mallocs, heap in use %+lld bytes (glibc mallinfo2)\n", arena_mallocs,
               heap_delta);
        if (scaling)
            printf("1 -> %d threads  %.2f -> %.2f ms a step: %.2fx (median over %lld interleaved pairs %.2fx, "
                   "range %.2f-%.2fx); the step's products alone, tiled: %.2fx\n", threads, t_step1 * 1e3,
                   t_step * 1e3, t_step1 / t_step, (long long)n_steps, pair_med, pair_lo, pair_hi, tiled_scaling);
    }
    cf_grad_sync_free(sync);
    if (prof && !json) {
        printf("\nper op, per step (forward: time since the previous op's record; --profile slows the step):\n");
        if (prof1)
            print_profile_scaling(prof1, prof, threads, n_steps);
        else
            cf_profile_print(prof, stdout, n_steps);
    }
    free(prof);
    free(prof1);
    free(times);
    free(times1);
    free(pair_ratio);
    free(mb.b);
    free(src);
    free(src_lens);
    free(tgt_in);
    free(tgt_out);
    cf_ctx_free(ctx);
    cf_optimizer_free(opt);
    cf_param_list_free(&pl);
    cf_transformer_free(m);
    return 0;
fail:
    cf_optimizer_free(opt);
    cf_param_list_free(&pl);
    cf_transformer_free(m);
    return -1;
}

int cf_cmd_bench(int argc, char **argv) {
    if (argc > 0 && strcmp(argv[0], "decode") == 0) return cf_cmd_bench_decode(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "attention") == 0) return cf_cmd_bench_attention(argc - 1, argv + 1);
    const char *path = NULL;
    bool json = false, profile = false, scaling = false;
    /* --steps/--warmup/--threads become overrides, so the config's validation covers them */
    char **sets = cf_xcalloc((size_t)argc + 1, sizeof *sets);
    char **owned = cf_xcalloc((size_t)argc + 1, sizeof *owned);
    int n_sets = 0, n_owned = 0, status = 2;
    static const struct { const char *flag, *key; } flags[] = {
        {"--steps", "bench.steps"}, {"--warmup", "bench.warmup"}, {"--threads", "train.threads"}};
    static char fixed[] = "train.adapt_threads=false";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool matched = false;
        for (size_t f = 0; f < sizeof flags / sizeof flags[0] && !matched; f++) {
            if (strcmp(a, flags[f].flag) != 0 || i + 1 >= argc) continue;
            size_t n = strlen(flags[f].key) + strlen(argv[i + 1]) + 2;
            char *s = cf_xmalloc(n);
            snprintf(s, n, "%s=%s", flags[f].key, argv[++i]);
            owned[n_owned++] = sets[n_sets++] = s;
            matched = true;
        }
        if (matched) continue;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            status = 0;
            goto done;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--profile") == 0) {
            profile = true;
        } else if (strcmp(a, "--scaling") == 0) {
            scaling = true;
            sets[n_sets++] = fixed;
        } else if (strcmp(a, "--fixed-threads") == 0) {
            sets[n_sets++] = fixed;
        } else if (strcmp(a, "--set") == 0 && i + 1 < argc) {
            sets[n_sets++] = argv[++i];
        } else if (strncmp(a, "--set=", 6) == 0) {
            sets[n_sets++] = argv[i] + 6;
        } else if (a[0] != '-' && !path) {
            path = a;
        } else {
            fprintf(stderr, "cformer bench: unknown, incomplete or extra argument '%s'\n%s", a, usage);
            goto done;
        }
    }
    if (!path) {
        fprintf(stderr, "cformer bench: missing CONFIG\n%s", usage);
        goto done;
    }
    cf_config cfg;
    if (cf_config_load_opts(&cfg, path, n_sets, sets, &(cf_config_opts){.check_paths = false, .no_data = true}) != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        goto done;
    }
    status = 1;
    int rc = cf_threads_init((int)cfg.train.threads);
    if (rc == 0) {
        cf_threads_set_adaptive(cfg.train.adapt_threads);
        rc = run_bench(&cfg, json, profile, scaling);
    }
    if (rc != 0)
        fprintf(stderr, "error: %s\n", cf_error_message());
    else
        status = 0;
    cf_config_free(&cfg);
done:
    for (int i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    free(sets);
    return status;
}
