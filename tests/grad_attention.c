/* tests/grad_attention.c - finite-difference checks of the fused attention (w.r.t. q, k, v). */
#include <math.h>

#include "core/ops.h"
#include "tests/gradcheck.h"
#include "tests/test.h"
#include "tests/testlib.h"

typedef struct attn_case {
    const char *name;
    int64_t B, H, Hkv, T, S, Dk, Dv;
    bool causal;
    int64_t window;
    const int32_t *key_lens;    /* [B] or NULL */
    double dropout;
    int64_t rel_clip, rel_heads;    /* relative positions: R and the table's heads (0: none) */
} attn_case;

static cf_tensor *f_attention(cf_ctx *ctx, cf_tensor **in, void *user) {
    const attn_case *c = user;
    cf_attn_opts o = {1 / sqrt((double)c->Dk), c->causal, c->key_lens, c->window, c->dropout,
                      c->rel_heads ? in[3] : NULL, c->rel_clip};
    return cf_attention(ctx, in[0], in[1], in[2], &o);
}

static void check_case(const attn_case *c, uint64_t seed) {
    cf_tensor *q = test_param_uniform("q", 4, (int64_t[]){c->B, c->H, c->T, c->Dk}, -2, 2, seed);
    cf_tensor *k = test_param_uniform("k", 4, (int64_t[]){c->B, c->Hkv, c->S, c->Dk}, -2, 2, seed + 1);
    cf_tensor *v = test_param_uniform("v", 4, (int64_t[]){c->B, c->Hkv, c->S, c->Dv}, -1, 1, seed + 2);
    int64_t n = 2 * c->rel_clip + 1;
    cf_tensor *rel = !c->rel_heads ? NULL
                     : c->rel_heads == 1 ? test_param_uniform("rel", 2, (int64_t[]){n, c->Dk}, -1, 1, seed + 3)
                                         : test_param_uniform("rel", 3, (int64_t[]){c->rel_heads, n, c->Dk}, -1, 1, seed + 3);
    gradcheck_opts o = {.training = c->dropout > 0};
    GRADCHECK_OPTS(c->name, f_attention, ((cf_tensor *[]){q, k, v, rel}), rel ? 4 : 3, (void *)c, &o);
    if (rel) cf_param_free(rel);
    cf_param_free(q);
    cf_param_free(k);
    cf_param_free(v);
}

static const int32_t lens3[3] = {5, 2, 0};   /* full, padded, everything hidden (zero rows) */
static const int32_t lens2[2] = {6, 3};

TEST(grad_attention_heads) {
    const attn_case cases[] = {
        {"mha", 2, 2, 2, 4, 5, 4, 4, false, 0, NULL, 0, 0, 0},
        {"gqa", 2, 4, 2, 4, 5, 4, 4, false, 0, NULL, 0, 0, 0},
        {"mqa", 2, 3, 1, 4, 5, 4, 4, false, 0, NULL, 0, 0, 0},
        {"dv_ne_dk", 2, 4, 2, 4, 5, 4, 6, false, 0, NULL, 0, 0, 0},
        {"odd", 1, 2, 1, 3, 5, 7, 7, false, 0, NULL, 0, 0, 0},
        {"size1", 1, 1, 1, 1, 1, 1, 1, false, 0, NULL, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], 10 + 3 * i);
}

TEST(grad_attention_masks) {
    const attn_case cases[] = {
        {"causal_t_eq_s", 2, 4, 2, 5, 5, 4, 4, true, 0, NULL, 0, 0, 0},
        {"causal_cache", 2, 2, 1, 3, 6, 4, 5, true, 0, NULL, 0, 0, 0},
        {"causal_t_gt_s", 1, 2, 2, 5, 3, 4, 4, true, 0, NULL, 0, 0, 0},   /* first rows see no key */
        {"key_lens", 3, 2, 1, 4, 5, 4, 4, false, 0, lens3, 0, 0, 0},
        {"causal_key_lens", 2, 2, 2, 6, 6, 3, 4, true, 0, lens2, 0, 0, 0},
        {"window", 1, 2, 1, 6, 6, 4, 4, true, 2, NULL, 0, 0, 0},
        {"window_cache", 2, 4, 2, 3, 6, 4, 4, true, 3, lens2, 0, 0, 0},
        {"window_row_block", 1, 1, 1, 20, 20, 3, 2, true, 5, NULL, 0, 0, 0},   /* spans two row blocks */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], 40 + 3 * i);
}

/* Shaw et al.'s relative keys: shared and per-head tables, clips smaller and larger than the
 * sequence, masks, a KV-cache offset (queries after the first key), and dropout. */
TEST(grad_attention_relative) {
    const attn_case cases[] = {
        {"rel_shared", 2, 4, 2, 5, 5, 4, 4, false, 0, NULL, 0, 2, 1},
        {"rel_per_head", 2, 4, 4, 5, 5, 3, 4, false, 0, lens2, 0, 1, 4},
        {"rel_grouped_tables", 1, 4, 2, 6, 6, 4, 3, true, 0, NULL, 0, 3, 2},
        {"rel_clip0", 1, 2, 1, 4, 4, 4, 4, true, 0, NULL, 0, 0, 1},
        {"rel_clip_wide", 1, 2, 2, 3, 3, 4, 4, false, 0, NULL, 0, 9, 2},
        {"rel_cache", 2, 2, 1, 2, 6, 4, 4, true, 0, lens2, 0, 2, 1},
        {"rel_window_blocks", 1, 1, 1, 20, 20, 3, 2, true, 5, NULL, 0, 4, 1},
        {"rel_dropout", 2, 2, 2, 5, 6, 4, 3, false, 0, lens2, 0.3, 2, 2},
        {"rel_size1", 1, 1, 1, 1, 1, 1, 1, false, 0, NULL, 0, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], 120 + 4 * i);
}

TEST(grad_attention_dropout) {
    const attn_case cases[] = {
        {"dropout", 2, 4, 2, 5, 6, 4, 3, false, 0, NULL, 0.3, 0, 0},
        {"dropout_causal_pad", 2, 2, 1, 6, 6, 4, 4, true, 0, lens2, 0.3, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], 80 + 3 * i);
}

/* ---- strided operands (cf_attention_views): what the fused Q/K/V projection and the KV cache feed ---- */

typedef struct view_case {
    const char *name;
    int64_t B, H, Hkv, T, S, D;
    bool fused;                 /* q, k, v columns of one [B, T, pad + (H + 2 Hkv) D + pad] tensor (T == S) */
    bool causal;
    const int32_t *key_lens;
    double dropout;
    int64_t rel_clip;           /* > 0: a shared relative table */
} view_case;

enum { VIEW_PAD = 3 };          /* unused columns before and after the heads: offsets and row strides > H*D */

static cf_tensor *f_attention_views(cf_ctx *ctx, cf_tensor **in, void *user) {
    const view_case *c = user;
    cf_attn_opts o = {1 / sqrt((double)c->D), c->causal, c->key_lens, 0, c->dropout,
                      c->rel_clip ? in[c->fused ? 1 : 2] : NULL, c->rel_clip};
    cf_attn_shape sh = {c->B, c->H, c->Hkv, c->T, c->S, c->D, c->D};
    int64_t hq = c->H * c->D, hkv = c->Hkv * c->D;
    cf_attn_view q, k, v;
    if (c->fused) {
        q = cf_attn_view_cols(in[0], VIEW_PAD, c->D);
        k = cf_attn_view_cols(in[0], VIEW_PAD + hq, c->D);
        v = cf_attn_view_cols(in[0], VIEW_PAD + hq + hkv, c->D);
    } else { /* cross-attention shape: q alone, k and v in one tensor */
        q = cf_attn_view_cols(in[0], VIEW_PAD, c->D);
        k = cf_attn_view_cols(in[1], 0, c->D);
        v = cf_attn_view_cols(in[1], hkv, c->D);
    }
    return cf_attention_views(ctx, &sh, q, k, v, &o, false);
}

static void check_view_case(const view_case *c, uint64_t seed) {
    int64_t hq = c->H * c->D, hkv = c->Hkv * c->D;
    cf_tensor *in[3] = {0};
    int n = 0;
    if (c->fused) {
        in[n++] = test_param_uniform("qkv", 3, (int64_t[]){c->B, c->T, 2 * VIEW_PAD + hq + 2 * hkv}, -2, 2, seed);
    } else {
        in[n++] = test_param_uniform("q", 3, (int64_t[]){c->B, c->T, 2 * VIEW_PAD + hq}, -2, 2, seed);
        in[n++] = test_param_uniform("kv", 3, (int64_t[]){c->B, c->S, 2 * hkv}, -2, 2, seed + 1);
    }
    if (c->rel_clip) in[n++] = test_param_uniform("rel", 2, (int64_t[]){2 * c->rel_clip + 1, c->D}, -1, 1, seed + 2);
    gradcheck_opts o = {.training = c->dropout > 0};
    GRADCHECK_OPTS(c->name, f_attention_views, in, n, (void *)c, &o);
    for (int i = 0; i < n; i++) cf_param_free(in[i]);
}

TEST(grad_attention_views) {
    const view_case cases[] = {
        {"fused_mha", 2, 2, 2, 4, 4, 3, true, false, NULL, 0, 0},
        {"fused_gqa_causal", 2, 4, 2, 5, 5, 3, true, true, NULL, 0, 0},
        {"fused_mqa_pad", 2, 3, 1, 6, 6, 2, true, false, lens2, 0, 0},
        {"fused_dropout_rel", 2, 2, 1, 5, 5, 4, true, true, lens2, 0.3, 2},
        {"cross_gqa", 2, 4, 2, 3, 5, 3, false, false, lens2, 0, 0},
        {"cross_mha_dropout", 2, 2, 2, 4, 6, 3, false, false, NULL, 0.3, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_view_case(&cases[i], 200 + 3 * i);
}
