/* tests/test_steady_state.c - no heap allocation in the steady state (docs/performance.md): a
 * training update (cf_train_step: forward, backward, gradient exchange, clip + AdamW) and a
 * decoding call (greedy and beam search, weights packed once), after warm-up, call malloc, calloc,
 * realloc and the aligned allocators zero times. The arena tests (test_core.c, test_attention.c,
 * test_decode.c) see only the arena; this counts every call in the process, ours and our
 * libraries' (OpenBLAS, libgomp), through tests/alloc_count.h. Sanitizer builds keep their own
 * allocator: there the tests say so and pass.
 */
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "dist/dist.h"
#include "nn/transformer.h"
#include "optim/optim.h"
#include "tests/alloc_count.h"
#include "tests/test.h"
#include "tests/testlib.h"
#include "train/step.h"
#include "translate/decode.h"

static bool counting_available(const char *test) {
    if (test_alloc_counting()) return true;
    printf("    %s: skipped (a sanitizer build counts allocations itself)\n", test);
    return false;
}

/* A model with every hot path of a real one at a small size: dropout, label smoothing,
 * grad_accum 2, a vocabulary large enough for the chunked output cross-entropy. */
static cf_model_config model_config(cf_attn_kind kind) {
    cf_model_config c = cf_model_config_default();
    c.src_vocab = c.tgt_vocab = 300;
    c.d_model = 32;
    c.n_heads = 4;
    c.n_kv_heads = kind == CF_ATTN_GQA ? 2 : 4;
    c.attention = kind;
    c.kv_lora_rank = 16;
    c.q_lora_rank = 0;
    c.qk_nope_dim = 4;
    c.qk_rope_dim = 4;
    c.v_head_dim = 8;
    c.enc_layers = 2;
    c.dec_layers = 2;
    c.d_ff = 64;
    c.max_len = 32;
    c.dropout = 0.1;
    return c;
}

enum { B = 6, S = 11, T = 9, A = 2 };

typedef struct batches {
    int32_t src[A][B * S], src_lens[B], tgt_in[A][B * T], tgt_out[A][B * T];
    cf_seq_batch b[A];
    int next;
} batches;

static const cf_seq_batch *next_batch(void *arg) {
    batches *bs = arg;
    return &bs->b[bs->next++ % A];
}

static void fill(batches *bs, cf_rng *r, int64_t V) {
    for (int a = 0; a < A; a++) {
        for (int i = 0; i < B * S; i++) bs->src[a][i] = 4 + (int32_t)cf_rng_below(r, (uint64_t)(V - 4));
        for (int b = 0; b < B; b++) {
            bs->src_lens[b] = S - b % 3; /* padded rows too */
            for (int s = bs->src_lens[b]; s < S; s++) bs->src[a][b * S + s] = CF_PAD_ID;
            bs->tgt_in[a][b * T] = CF_BOS_ID;
            for (int t = 0; t < T; t++) bs->tgt_out[a][b * T + t] = 4 + (int32_t)cf_rng_below(r, (uint64_t)(V - 4));
            for (int t = 1; t < T; t++) bs->tgt_in[a][b * T + t] = bs->tgt_out[a][b * T + t - 1];
            bs->tgt_out[a][b * T + T - 1] = b % 2 ? CF_PAD_ID : CF_EOS_ID;
        }
        bs->b[a] = (cf_seq_batch){.batch = B, .src_len = S, .tgt_len = T, .src = bs->src[a], .src_lens = bs->src_lens,
                                  .tgt_in = bs->tgt_in[a], .tgt_out = bs->tgt_out[a], .pad_id = CF_PAD_ID};
    }
}

TEST(steady_state_training_update_calls_no_allocator) {
    if (!counting_available(__func__)) return;
    const cf_attn_kind kinds[] = {CF_ATTN_MHA, CF_ATTN_GQA, CF_ATTN_MLA};
    cf_threads_set_adaptive(false); /* a changing team size may make libgomp allocate */
    for (int k = 0; k < 3; k++) {
        cf_model_config mc = model_config(kinds[k]);
        cf_transformer *m = cf_transformer_new(&mc, 5);
        cf_param_list pl;
        cf_param_list_init(&pl);
        for (int i = 0; i < m->params.n; i++) CHECK(cf_param_list_add_auto(&pl, m->params.items[i], true) == 0);
        cf_optim_config oc = cf_optim_config_default(CF_OPTIM_ADAMW);
        cf_optimizer *opt = cf_optimizer_new(&pl, &oc);
        cf_ctx *ctx = cf_ctx_new(7);
        cf_schedule sched = {.kind = CF_SCHED_COSINE, .lr = 1e-3, .min_lr = 1e-4, .warmup_steps = 2, .total_steps = 100};
        cf_nan_guard guard;
        cf_nan_guard_init(&guard, 0);
        cf_grad_sync *sync = cf_grad_sync_new(opt->params, opt->n, A, 0);
        cf_step_setup s = {.ctx = ctx, .model = m, .opt = opt, .schedule = &sched, .label_smoothing = 0.1,
                           .clip = 1.0, .grad_accum = A, .guard = &guard, .sync = sync};
        batches *bs = calloc(1, sizeof *bs);
        cf_rng r = cf_rng_init(11, CF_RNG_STREAM_TEST);
        long calls = -1;
        for (int64_t step = 0; step < 6; step++) {
            fill(bs, &r, mc.tgt_vocab);
            if (step == 3) test_alloc_count_start(); /* three updates warm the arena, the pools and the caches */
            cf_step_result res;
            CHECK(cf_train_step(&s, step, next_batch, bs, &res) == CF_GUARD_OK);
        }
        calls = test_alloc_count_stop();
        CHECK_MSG(calls == 0, "%s: %ld allocator calls in 3 steady-state updates", cf_attn_kind_name(kinds[k]), calls);
        free(bs);
        cf_grad_sync_free(sync);
        cf_ctx_free(ctx);
        cf_optimizer_free(opt);
        cf_param_list_free(&pl);
        cf_transformer_free(m);
    }
    cf_threads_set_adaptive(true);
}

TEST(steady_state_decoding_calls_no_allocator) {
    if (!counting_available(__func__)) return;
    const cf_attn_kind kinds[] = {CF_ATTN_MHA, CF_ATTN_GQA, CF_ATTN_MLA};
    cf_threads_set_adaptive(false);
    for (int k = 0; k < 3; k++) {
        cf_model_config mc = model_config(kinds[k]);
        mc.dropout = 0;
        cf_transformer *m = cf_transformer_new(&mc, 5);
        cf_ctx *ctx = cf_ctx_new(1);
        batches *bs = calloc(1, sizeof *bs);
        cf_rng r = cf_rng_init(12, CF_RNG_STREAM_TEST);
        fill(bs, &r, mc.src_vocab);
        for (int64_t beam = 1; beam <= 4; beam += 3) {
            cf_decode_opts o = cf_decode_opts_default();
            o.beam = beam;
            o.max_len_a = 0;
            o.max_len_b = 20; /* random weights: most sentences run to the limit, some end early */
            cf_decode_result res = {0};
            cf_decode_pack(m, &res);
            CHECK(cf_decode_batch(m, ctx, bs->src[0], bs->src_lens, B, S, &o, &res) == 0);
            test_alloc_count_start();
            CHECK(cf_decode_batch(m, ctx, bs->src[1], bs->src_lens, B, S, &o, &res) == 0);
            long calls = test_alloc_count_stop();
            CHECK_MSG(calls == 0, "%s beam %lld: %ld allocator calls in a second decoding call",
                      cf_attn_kind_name(kinds[k]), (long long)beam, calls);
            cf_decode_result_free(&res);
        }
        free(bs);
        cf_ctx_free(ctx);
        cf_transformer_free(m);
    }
    cf_threads_set_adaptive(true);
}
