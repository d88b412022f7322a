/* tests/test_nn.c - module behaviour: sinusoid table, masks, KV cache, GQA/MQA/MHA relations. */
#include <math.h>
#include <string.h>

#include "nn/transformer.h"
#include "tests/nn_fixtures.h"
#include "tests/test.h"
#include "tests/testlib.h"

/* The course's table: positions 0..2, d_model 4 (values to 3 decimals). */
TEST(nn_sinusoid_matches_course_table) {
    const double expect[3][4] = {
        {0.000, 1.000, 0.000, 1.000},
        {0.841, 0.540, 0.010, 1.000},
        {0.909, -0.416, 0.020, 1.000},
    };
    cf_nn_positions p;
    cf_nn_positions_init(&p, NULL, NULL, CF_POS_SINUSOIDAL, 3, 4, "pos");
    for (int pos = 0; pos < 3; pos++)
        for (int i = 0; i < 4; i++) CHECK_NEAR(p.table->data[pos * 4 + i], expect[pos][i], 5e-4);
    cf_nn_positions_free(&p);
}

TEST(nn_param_names_and_count) {
    cf_model_config c = tiny_model_config(CF_ATTN_MHA);
    cf_transformer *m = cf_transformer_new(&c, 1);
    CHECK(m != NULL);
    const char *names[] = {"encoder.embed_tokens.weight", "encoder.layers.0.self_attn.q_proj.weight",
                           "encoder.layers.0.self_attn.out_proj.bias", "encoder.layers.0.ffn.fc1.weight",
                           "encoder.layers.0.self_attn_norm.weight", "encoder.norm.bias",
                           "decoder.layers.0.cross_attn.k_proj.weight", "decoder.layers.0.cross_attn_norm.bias",
                           "decoder.norm.weight"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK_MSG(cf_params_find(&m->params, names[i]) != NULL, "missing %s", names[i]);
    CHECK(cf_params_find(&m->params, "output_proj.weight") == NULL); /* tied */
    /* d=8, V=11, ff=12: embed 88; per attention 4*(64+8)=288; norm 16; ffn 8*12+12+12*8+8=212
     * encoder: 288+212+2*16 = 532, final norm 16; decoder: 2*288+212+3*16 = 836, final norm 16 */
    CHECK_MSG(cf_transformer_num_params(m) == 88 + 532 + 16 + 836 + 16, "%lld params",
              (long long)cf_transformer_num_params(m));
    cf_transformer_free(m);
}

TEST(nn_config_errors_name_the_key) {
    cf_model_config c = tiny_model_config(CF_ATTN_GQA);
    c.n_kv_heads = 3;
    CHECK(cf_transformer_new(&c, 1) == NULL && strstr(cf_error_message(), "model.n_kv_heads"));
    c = tiny_model_config(CF_ATTN_MHA);
    c.d_model = 10;
    c.n_heads = 4;
    CHECK(cf_transformer_new(&c, 1) == NULL && strstr(cf_error_message(), "model.d_model"));
    c = tiny_model_config(CF_ATTN_MHA);
    c.dropout = 1.5;
    CHECK(cf_transformer_new(&c, 1) == NULL && strstr(cf_error_message(), "model.dropout"));
}

/* Changing a future target token changes no earlier decoder output. */
TEST(nn_causal_mask_leaks_nothing) {
    for (int kind = 0; kind < 4; kind++) {
        cf_model_config c = tiny_model_config((cf_attn_kind)kind);
        cf_transformer *m = cf_transformer_new(&c, 3);
        cf_ctx *ctx = cf_ctx_new(1);
        ctx->training = false;
        cf_ctx_set_grad(ctx, false);
        int32_t tgt[2 * 4];
        memcpy(tgt, tiny_tgt_in, sizeof tgt);
        cf_tensor *mem = cf_transformer_encode(ctx, m, tiny_src, 2, 5, tiny_src_lens);
        cf_tensor *a = cf_transformer_decode(ctx, m, mem, tiny_src_lens, tgt, 4);
        tgt[2] = 10; /* batch 0, position 2 */
        cf_tensor *b = cf_transformer_decode(ctx, m, mem, tiny_src_lens, tgt, 4);
        int64_t v = c.tgt_vocab;
        CHECK(memcmp(a->data, b->data, (size_t)(2 * v) * sizeof(cf_real)) == 0);           /* b0, t0..1 */
        CHECK(memcmp(a->data + 2 * v, b->data + 2 * v, (size_t)v * sizeof(cf_real)) != 0); /* b0, t2 */
        CHECK(memcmp(a->data + 4 * v, b->data + 4 * v, (size_t)(4 * v) * sizeof(cf_real)) == 0); /* batch 1 */
        cf_ctx_free(ctx);
        cf_transformer_free(m);
    }
}

/* Source padding is invisible: changing a padded source token changes nothing. */
TEST(nn_key_padding_hides_pad) {
    cf_model_config c = tiny_model_config(CF_ATTN_MHA);
    cf_transformer *m = cf_transformer_new(&c, 3);
    cf_ctx *ctx = cf_ctx_new(1);
    ctx->training = false;
    cf_ctx_set_grad(ctx, false);
    int32_t src[10];
    memcpy(src, tiny_src, sizeof src);
    cf_tensor *mem = cf_transformer_encode(ctx, m, src, 2, 5, tiny_src_lens);
    cf_tensor *a = cf_transformer_decode(ctx, m, mem, tiny_src_lens, tiny_tgt_in, 4);
    src[9] = 7; /* batch 1 position 4 is padding */
    mem = cf_transformer_encode(ctx, m, src, 2, 5, tiny_src_lens);
    cf_tensor *b = cf_transformer_decode(ctx, m, mem, tiny_src_lens, tiny_tgt_in, 4);
    CHECK(memcmp(a->data, b->data, (size_t)a->numel * sizeof(cf_real)) == 0);
    cf_ctx_free(ctx);
    cf_transformer_free(m);
}

static double max_abs_diff(const cf_real *a, const cf_real *b, int64_t n) {
    double w = 0;
    for (int64_t i = 0; i < n; i++) w = fmax(w, fabs((double)a[i] - (double)b[i]));
    return w;
}

/* Decoding token by token with the KV cache reproduces the full teacher-forced forward. */
static void check_cache_equivalence(cf_model_config c, const char *what) {
    cf_transformer *m = cf_transformer_new(&c, 5);
    cf_ctx *ctx = cf_ctx_new(1);
    ctx->training = false;
    cf_ctx_set_grad(ctx, false);
    cf_tensor *mem = cf_transformer_encode(ctx, m, tiny_src, 2, 5, tiny_src_lens);
    cf_tensor *full = cf_transformer_decode(ctx, m, mem, tiny_src_lens, tiny_tgt_in, 4); /* [2, 4, V] */
    int64_t v = c.tgt_vocab;
    cf_decode_state *st = cf_decode_state_new(m, 2, 8, 5);
    double worst = 0;
    for (int t = 0; t < 4; t++) {
        int32_t ids[2] = {tiny_tgt_in[t], tiny_tgt_in[4 + t]};
        cf_tensor *step = cf_transformer_decode_step(ctx, m, st, mem, tiny_src_lens, ids); /* [2, 1, V] */
        for (int b = 0; b < 2; b++)
            worst = fmax(worst, max_abs_diff(step->data + b * v, full->data + (b * 4 + t) * v, v));
    }
    CHECK_MSG(worst < 1e-5, "%s: cached decoding differs from the full forward by %g", what, worst);
    cf_decode_state_free(st);
    cf_ctx_free(ctx);
    cf_transformer_free(m);
}

TEST(nn_kv_cache_equals_full_forward) {
    const char *names[] = {"mha", "gqa", "mqa", "mla"};
    for (int kind = 0; kind < 4; kind++) {
        cf_model_config c = tiny_model_config((cf_attn_kind)kind);
        check_cache_equivalence(c, names[kind]);
        c.pos_encoding = CF_POS_ROPE;
        check_cache_equivalence(c, "rope");
        c.pos_encoding = CF_POS_LEARNED;
        c.pre_norm = false;
        check_cache_equivalence(c, "learned, post-LN");
    }
    cf_model_config c = tiny_model_config(CF_ATTN_MLA);
    c.q_lora_rank = 5;
    check_cache_equivalence(c, "mla with q_lora");
    c = tiny_model_config(CF_ATTN_GQA);
    c.window = 2;
    check_cache_equivalence(c, "sliding window");
    /* the course's remaining options: relative positions read the query's position off the cache
     * length, QK-norm normalises keys before they are cached, MoE routes each step's rows alone */
    c = tiny_model_config(CF_ATTN_MHA);
    c.pos_encoding = CF_POS_RELATIVE;
    c.rel_clip = 2;
    check_cache_equivalence(c, "relative, clip 2");
    c = tiny_model_config(CF_ATTN_GQA);
    c.pos_encoding = CF_POS_RELATIVE;
    c.rel_per_head = true;
    c.rel_clip = 1;
    check_cache_equivalence(c, "relative per head, gqa");
    c = tiny_model_config(CF_ATTN_MQA);
    c.pos_encoding = CF_POS_ROPE;
    c.qk_norm = true;
    check_cache_equivalence(c, "qk_norm, rope");
    c = tiny_model_config(CF_ATTN_MHA);
    c.num_experts = 4;
    c.num_experts_per_token = 2;
    c.n_shared_experts = 1;
    check_cache_equivalence(c, "moe");
}

/* Copy every parameter of `from` into `to` where names match; K/V projections of an
 * n_kv_heads = H model are built from a grouped model by repeating each group's rows. */
static void copy_expanding_kv(cf_transformer *to, const cf_transformer *from) {
    for (int i = 0; i < to->params.n; i++) {
        cf_tensor *p = to->params.items[i];
        cf_tensor *q = cf_params_find(&from->params, p->name);
        CF_ASSERT(q != NULL, "%s", p->name);
        bool kv = strstr(p->name, "k_proj") || strstr(p->name, "v_proj");
        if (!kv || p->numel == q->numel) {
            memcpy(p->data, q->data, (size_t)p->numel * sizeof(cf_real));
            continue;
        }
        int64_t hd = cf_model_head_dim(&to->cfg), h = to->cfg.n_heads;
        int64_t g = q->shape[0] / hd, per = h / g, cols = p->ndim == 2 ? p->shape[1] : 1;
        for (int64_t head = 0; head < h; head++)
            memcpy(p->data + head * hd * cols, q->data + (head / per) * hd * cols, (size_t)(hd * cols) * sizeof(cf_real));
    }
}

static cf_tensor *logits_of(cf_ctx *ctx, cf_transformer *m) {
    cf_tensor *mem = cf_transformer_encode(ctx, m, tiny_src, 2, 5, tiny_src_lens);
    return cf_transformer_decode(ctx, m, mem, tiny_src_lens, tiny_tgt_in, 4);
}

TEST(nn_gqa_one_group_is_mqa_and_h_groups_is_mha) {
    cf_ctx *ctx = cf_ctx_new(1);
    ctx->training = false;
    cf_ctx_set_grad(ctx, false);
    /* GQA with 1 group vs MQA: identical parameter shapes, identical outputs. */
    cf_model_config cg = tiny_model_config(CF_ATTN_GQA), cm = tiny_model_config(CF_ATTN_MQA);
    cg.n_kv_heads = 1;
    cf_transformer *gqa = cf_transformer_new(&cg, 7), *mqa = cf_transformer_new(&cm, 8);
    copy_expanding_kv(mqa, gqa);
    cf_tensor *a = logits_of(ctx, gqa), *b = logits_of(ctx, mqa);
    CHECK(memcmp(a->data, b->data, (size_t)a->numel * sizeof(cf_real)) == 0);
    /* GQA with 2 groups vs MHA whose K/V heads repeat each group: same function. */
    cf_transformer_free(gqa);
    cg.n_kv_heads = 2;
    gqa = cf_transformer_new(&cg, 7);
    cf_model_config ch = tiny_model_config(CF_ATTN_MHA);
    cf_transformer *mha = cf_transformer_new(&ch, 9);
    copy_expanding_kv(mha, gqa);
    a = logits_of(ctx, gqa);
    b = logits_of(ctx, mha);
    CHECK_MSG(max_abs_diff(a->data, b->data, a->numel) < 1e-5, "GQA vs expanded MHA: %g",
              max_abs_diff(a->data, b->data, a->numel));
    /* And GQA with n_heads groups is MHA exactly. */
    cf_transformer_free(gqa);
    cg.n_kv_heads = 4;
    gqa = cf_transformer_new(&cg, 7);
    copy_expanding_kv(mha, gqa);
    a = logits_of(ctx, gqa);
    b = logits_of(ctx, mha);
    CHECK(memcmp(a->data, b->data, (size_t)a->numel * sizeof(cf_real)) == 0);
    cf_transformer_free(gqa);
    cf_transformer_free(mqa);
    cf_transformer_free(mha);
    cf_ctx_free(ctx);
}

TEST(nn_kv_cache_bytes_per_token) {
    /* d 8, 4 heads of 2: MHA caches 4*(2+2) floats, GQA(2) 2*(2+2), MQA 1*(2+2), MLA r + dr = 6 + 2 */
    const int64_t expect[4] = {64, 32, 16, 32};
    for (int kind = 0; kind < 4; kind++) {
        cf_model_config c = tiny_model_config((cf_attn_kind)kind);
        cf_transformer *m = cf_transformer_new(&c, 1);
        CHECK_MSG(cf_kv_cache_bytes_per_token(&m->dec[0].self_attn) == expect[kind], "kind %d: %lld", kind,
                  (long long)cf_kv_cache_bytes_per_token(&m->dec[0].self_attn));
        cf_transformer_free(m);
    }
}

/* Reordering the caches of a batch of two (row 0 <- row 1 and row 1 <- row 0, as beam search does)
 * gives the next step's logits of the swapped batch; with cross false only self-attention moves. */
TEST(nn_decode_state_reorder_swaps_rows) {
    for (int kind = 0; kind < 4; kind++) {
        cf_model_config c = tiny_model_config((cf_attn_kind)kind);
        cf_transformer *m = cf_transformer_new(&c, 3);
        cf_ctx *ctx = cf_ctx_new(1);
        ctx->training = false;
        cf_ctx_set_grad(ctx, false);
        /* both rows read the same source, so only the self-attention history tells them apart */
        const int32_t src[10] = {5, 6, 7, 8, 2, 5, 6, 7, 8, 2}, lens[2] = {5, 5};
        const int32_t step0[2] = {1, 1}, step1[2] = {9, 10}, step2[2] = {4, 4};
        cf_tensor *mem = cf_transformer_encode(ctx, m, src, 2, 5, lens);
        cf_decode_state *a = cf_decode_state_new(m, 2, 4, 5), *b = cf_decode_state_new(m, 2, 4, 5);
        const int32_t swapped1[2] = {10, 9};
        cf_transformer_decode_step(ctx, m, a, mem, lens, step0);
        cf_transformer_decode_step(ctx, m, a, mem, lens, step1);
        cf_decode_state_reorder(a, (const int32_t[]){1, 0}, 2, false);
        cf_tensor *la = cf_transformer_decode_step(ctx, m, a, mem, lens, step2);
        cf_transformer_decode_step(ctx, m, b, mem, lens, step0);
        cf_transformer_decode_step(ctx, m, b, mem, lens, swapped1);
        cf_tensor *lb = cf_transformer_decode_step(ctx, m, b, mem, lens, step2);
        CHECK_MSG(memcmp(la->data, lb->data, (size_t)la->numel * sizeof(cf_real)) == 0, "kind %d", kind);
        CHECK(a->scratch != NULL && a->scratch_len >= cf_kv_cache_scratch_len(a->self_cache[0]));
        cf_decode_state_free(a);
        cf_decode_state_free(b);
        cf_ctx_free(ctx);
        cf_transformer_free(m);
    }
}
