/* nn/attention.c - MHA/GQA/MQA/MLA projections around the fused cf_attention kernel, and the KV cache. */
#include "nn/attention.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cf_mla_dims(const cf_model_config *c, int64_t *kv_lora_rank, int64_t *qk_nope, int64_t *qk_rope, int64_t *v_dim) {
    int64_t hd = cf_model_head_dim(c);
    *kv_lora_rank = c->kv_lora_rank ? c->kv_lora_rank : c->d_model / 2;
    *qk_nope = c->qk_nope_dim ? c->qk_nope_dim : hd;
    *qk_rope = c->qk_rope_dim ? c->qk_rope_dim : hd / 2;
    *v_dim = c->v_head_dim ? c->v_head_dim : hd;
}

static void linear_at(cf_nn_linear *l, cf_params *ps, cf_rng *r, int64_t in, int64_t out, bool bias, const char *prefix,
                      const char *name) {
    char full[256];
    snprintf(full, sizeof full, "%s.%s", prefix, name);
    cf_nn_linear_init(l, ps, r, in, out, bias, full);
}

/* QK-norm and relative positions, registered after the projections (docs/model.md, section 6). */
static void attention_options_init(cf_nn_attention *a, cf_params *ps, cf_rng *r, const cf_model_config *cfg,
                                   const char *prefix, bool self_attn) {
    char name[256];
    a->qk_norm = cfg->qk_norm && a->kind != CF_ATTN_MLA;
    if (a->qk_norm) {
        snprintf(name, sizeof name, "%s.q_norm", prefix);
        cf_nn_norm_init(&a->q_norm, ps, CF_NORM_RMSNORM, a->qk_dim, cfg->norm_eps, name);
        snprintf(name, sizeof name, "%s.k_norm", prefix);
        cf_nn_norm_init(&a->k_norm, ps, CF_NORM_RMSNORM, a->qk_dim, cfg->norm_eps, name);
    }
    /* Shaw et al. relate positions within one sequence: self-attention only */
    if (self_attn && cfg->pos_encoding == CF_POS_RELATIVE) {
        a->rel_clip = cfg->rel_clip;
        int64_t n = 2 * cfg->rel_clip + 1;
        a->rel_pos = cfg->rel_per_head
                         ? cf_params_add(ps, 3, (int64_t[]){a->n_heads, n, a->qk_dim}, "%s.rel_pos.weight", prefix)
                         : cf_params_add(ps, 2, (int64_t[]){n, a->qk_dim}, "%s.rel_pos.weight", prefix);
        cf_init_normal(a->rel_pos, 0.02, r);
    }
}

void cf_nn_attention_init(cf_nn_attention *a, cf_params *ps, cf_rng *r, const cf_model_config *cfg, const char *prefix,
                          bool self_attn) {
    memset(a, 0, sizeof *a);
    a->kind = cfg->attention;
    a->d_model = cfg->d_model;
    a->n_heads = cfg->n_heads;
    a->rope_base = cfg->rope_base;
    a->attn_dropout = cfg->attn_dropout;
    a->window = self_attn ? cfg->window : 0;
    int64_t d = cfg->d_model, h = cfg->n_heads, hd = cf_model_head_dim(cfg);
    bool bias = cfg->bias;
    if (a->kind == CF_ATTN_MLA) {
        cf_mla_dims(cfg, &a->kv_lora_rank, &a->qk_nope_dim, &a->qk_rope_dim, &a->v_dim);
        a->q_lora_rank = cfg->q_lora_rank;
        a->n_kv_heads = h;
        a->qk_dim = a->qk_nope_dim + a->qk_rope_dim;
        a->rope = a->qk_rope_dim > 0;
        char name[256];
        if (a->q_lora_rank > 0) {
            linear_at(&a->q_a_proj, ps, r, d, a->q_lora_rank, bias, prefix, "q_a_proj");
            snprintf(name, sizeof name, "%s.q_a_norm", prefix);
            cf_nn_norm_init(&a->q_a_norm, ps, CF_NORM_RMSNORM, a->q_lora_rank, 1e-6, name);
            linear_at(&a->q_b_proj, ps, r, a->q_lora_rank, h * a->qk_dim, bias, prefix, "q_b_proj");
        } else {
            linear_at(&a->q_proj, ps, r, d, h * a->qk_dim, bias, prefix, "q_proj");
        }
        linear_at(&a->kv_a_proj, ps, r, d, a->kv_lora_rank + a->qk_rope_dim, bias, prefix, "kv_a_proj");
        snprintf(name, sizeof name, "%s.kv_a_norm", prefix);
        cf_nn_norm_init(&a->kv_a_norm, ps, CF_NORM_RMSNORM, a->kv_lora_rank, 1e-6, name);
        linear_at(&a->kv_b_proj, ps, r, a->kv_lora_rank, h * (a->qk_nope_dim + a->v_dim), bias, prefix, "kv_b_proj");
        linear_at(&a->out_proj, ps, r, h * a->v_dim, d, bias, prefix, "out_proj");
        attention_options_init(a, ps, r, cfg, prefix, self_attn);
        return;
    }
    a->n_kv_heads = a->kind == CF_ATTN_MQA ? 1 : a->kind == CF_ATTN_GQA ? cfg->n_kv_heads : h;
    a->qk_dim = a->v_dim = hd;
    a->rope = self_attn && cfg->pos_encoding == CF_POS_ROPE;
    /* q, k, v back to back (same names, shapes, order and initial values as three separate layers) */
    int64_t nq = h * hd, nkv = a->n_kv_heads * hd, rows[3] = {nq, nkv, nkv};
    const char *names[3] = {"q_proj", "k_proj", "v_proj"};
    cf_nn_linear *lins[3] = {&a->q_proj, &a->k_proj, &a->v_proj};
    cf_tensor *wb = cf_params_block(ps, (nq + 2 * nkv) * d), *bb = bias ? cf_params_block(ps, nq + 2 * nkv) : NULL;
    for (int j = 0, row = 0; j < 3; row += rows[j++]) {
        lins[j]->weight = cf_params_add_in(ps, wb, row * d, 2, (int64_t[]){rows[j], d}, "%s.%s.weight", prefix, names[j]);
        cf_init_xavier_uniform(lins[j]->weight, r);
        lins[j]->bias = bb ? cf_params_add_in(ps, bb, row, 1, (int64_t[]){rows[j]}, "%s.%s.bias", prefix, names[j]) : NULL;
    }
    a->qkv_weight = cf_params_block_view(ps, wb, 0, 2, (int64_t[]){nq + 2 * nkv, d});
    a->kv_weight = cf_params_block_view(ps, wb, nq * d, 2, (int64_t[]){2 * nkv, d});
    a->qkv_bias = bb ? cf_params_block_view(ps, bb, 0, 1, (int64_t[]){nq + 2 * nkv}) : NULL;
    a->kv_bias = bb ? cf_params_block_view(ps, bb, nq, 1, (int64_t[]){2 * nkv}) : NULL;
    linear_at(&a->out_proj, ps, r, h * hd, d, bias, prefix, "out_proj");
    attention_options_init(a, ps, r, cfg, prefix, self_attn);
}

/* [B, T, H*D] -> [B, H, T, D] */
static cf_tensor *split_heads(cf_ctx *ctx, cf_tensor *x, int64_t heads, int64_t dim) {
    cf_tensor *r = cf_reshape(ctx, x, 4, (int64_t[]){x->shape[0], x->shape[1], heads, dim});
    return cf_permute(ctx, r, (int[]){0, 2, 1, 3});
}

/* Queries [B, H, T, qk_dim], rotated where this variant uses RoPE. */
static cf_tensor *project_q(cf_ctx *ctx, const cf_nn_attention *a, cf_tensor *xq, int64_t offset) {
    if (a->kind != CF_ATTN_MLA) {
        cf_tensor *q = split_heads(ctx, cf_nn_linear_forward(ctx, &a->q_proj, xq), a->n_heads, a->qk_dim);
        if (a->qk_norm) q = cf_nn_norm_forward(ctx, &a->q_norm, q); /* over each head's D, before RoPE */
        return a->rope ? cf_rope(ctx, q, offset, a->rope_base) : q;
    }
    cf_tensor *q = a->q_lora_rank > 0
                       ? cf_nn_linear_forward(ctx, &a->q_b_proj,
                                              cf_nn_norm_forward(ctx, &a->q_a_norm,
                                                                 cf_nn_linear_forward(ctx, &a->q_a_proj, xq)))
                       : cf_nn_linear_forward(ctx, &a->q_proj, xq);
    q = split_heads(ctx, q, a->n_heads, a->qk_dim);
    if (a->qk_rope_dim == 0) return q;
    cf_tensor *q_rope = cf_rope(ctx, cf_slice(ctx, q, 3, a->qk_nope_dim, a->qk_rope_dim), offset, a->rope_base);
    if (a->qk_nope_dim == 0) return q_rope;
    return cf_concat(ctx, (cf_tensor *[]){cf_slice(ctx, q, 3, 0, a->qk_nope_dim), q_rope}, 2, 3);
}

/* MLA: latent c [B, S, r] (normed) and the shared rotated key k_r [B, 1, S, dr] from x [B, S, d]. */
static void mla_latent(cf_ctx *ctx, const cf_nn_attention *a, cf_tensor *x, int64_t offset, cf_tensor **c,
                       cf_tensor **k_rope) {
    cf_tensor *kv_a = cf_nn_linear_forward(ctx, &a->kv_a_proj, x);
    *c = cf_nn_norm_forward(ctx, &a->kv_a_norm, a->qk_rope_dim ? cf_slice(ctx, kv_a, 2, 0, a->kv_lora_rank) : kv_a);
    *k_rope = NULL;
    if (a->qk_rope_dim) {
        cf_tensor *kr = cf_slice(ctx, kv_a, 2, a->kv_lora_rank, a->qk_rope_dim);
        kr = cf_reshape(ctx, kr, 4, (int64_t[]){x->shape[0], 1, x->shape[1], a->qk_rope_dim});
        *k_rope = cf_rope(ctx, kr, offset, a->rope_base);
    }
}

/* MLA: per-head keys [B, H, S, dn+dr] and values [B, H, S, dv] from the latent and the shared RoPE key. */
static void mla_expand(cf_ctx *ctx, const cf_nn_attention *a, cf_tensor *c, cf_tensor *k_rope, cf_tensor **k,
                       cf_tensor **v) {
    cf_tensor *kv = split_heads(ctx, cf_nn_linear_forward(ctx, &a->kv_b_proj, c), a->n_heads, a->qk_nope_dim + a->v_dim);
    *v = cf_slice(ctx, kv, 3, a->qk_nope_dim, a->v_dim);
    if (!k_rope) {
        *k = cf_slice(ctx, kv, 3, 0, a->qk_nope_dim);
        return;
    }
    /* The RoPE key is shared by all heads: broadcast it (its gradient sums over heads). */
    cf_tensor *kr = cf_expand(ctx, k_rope, 4, (int64_t[]){c->shape[0], a->n_heads, c->shape[1], a->qk_rope_dim});
    if (a->qk_nope_dim == 0) {
        *k = kr;
        return;
    }
    *k = cf_concat(ctx, (cf_tensor *[]){cf_slice(ctx, kv, 3, 0, a->qk_nope_dim), kr}, 2, 3);
}

/* ---- KV cache ---- */

cf_kv_cache *cf_kv_cache_new(const cf_nn_attention *a, int64_t batch, int64_t cap) {
    cf_kv_cache *c = cf_xcalloc(1, sizeof *c);
    c->batch = batch;
    c->cap = cap;
    if (a->kind == CF_ATTN_MLA) {
        c->groups_a = 1, c->width_a = a->kv_lora_rank;
        c->groups_b = 1, c->width_b = a->qk_rope_dim;
    } else {
        c->groups_a = c->groups_b = a->n_kv_heads;
        c->width_a = a->qk_dim;
        c->width_b = a->v_dim;
    }
    c->a = cf_xalloc_aligned((size_t)(batch * c->groups_a * cap * c->width_a) * sizeof(cf_real));
    c->b = cf_xalloc_aligned((size_t)(batch * c->groups_b * cap * c->width_b) * sizeof(cf_real));
    return c;
}

void cf_kv_cache_free(cf_kv_cache *c) {
    if (!c) return;
    free(c->a);
    free(c->b);
    free(c);
}

int64_t cf_kv_cache_bytes_per_token(const cf_nn_attention *a) {
    if (a->kind == CF_ATTN_MLA) return (a->kv_lora_rank + a->qk_rope_dim) * 4;
    return a->n_kv_heads * (a->qk_dim + a->v_dim) * 4;
}

/* block [B, G, cap, W] <- n rows of each of the G heads of src (any strides) at positions pos.. */
static void cache_write(cf_real *block, int64_t batch, int64_t groups, int64_t cap, int64_t width, int64_t pos,
                        int64_t n, cf_attn_view src) {
    for (int64_t b = 0; b < batch; b++)
        for (int64_t g = 0; g < groups; g++)
            for (int64_t s = 0; s < n; s++)
                memcpy(block + ((b * groups + g) * cap + pos + s) * width,
                       src.t->data + src.offset + b * src.batch + g * src.head + s * src.row,
                       (size_t)width * sizeof(cf_real));
}

/* The filled part of a block [B, G, cap, W], read in place by the attention kernel. */
static cf_attn_view cache_view(cf_ctx *ctx, cf_real *block, int64_t batch, int64_t groups, int64_t cap, int64_t width) {
    return cf_attn_view_heads(cf_tensor_view(ctx, block, 4, (int64_t[]){batch, groups, cap, width}));
}

/* [B, G, len, W] copy of the filled part of a block (what the attention kernel reads). */
static cf_tensor *cache_read(cf_ctx *ctx, const cf_real *block, int64_t batch, int64_t groups, int64_t cap,
                             int64_t width, int64_t len) {
    cf_tensor *t = cf_tensor_new(ctx, 4, (int64_t[]){batch, groups, len, width});
    for (int64_t bg = 0; bg < batch * groups; bg++)
        memcpy(t->data + bg * len * width, block + bg * cap * width, (size_t)(len * width) * sizeof(cf_real));
    return t;
}

int64_t cf_kv_cache_scratch_len(const cf_kv_cache *c) {
    int64_t a = c->groups_a * c->cap * c->width_a, b = c->groups_b * c->cap * c->width_b;
    return c->batch * (a > b ? a : b);
}

/* One block [batch, groups, cap, width]: each row r with order[r] != r takes the first len
 * positions of old row order[r]. Every source is read into scratch before any row is written, so
 * rows may swap. */
static void reorder_block(cf_real *data, int64_t groups, int64_t cap, int64_t width, int64_t len,
                          const int32_t *order, int64_t n, cf_real *scratch) {
    if (!data || !width) return;
    int64_t row = groups * cap * width, part = len * width; /* floats per row, per filled group */
    for (int64_t r = 0; r < n; r++)
        if (order[r] != r)
            for (int64_t g = 0; g < groups; g++)
                memcpy(scratch + (r * groups + g) * part, data + order[r] * row + g * cap * width,
                       (size_t)part * sizeof(cf_real));
    for (int64_t r = 0; r < n; r++)
        if (order[r] != r)
            for (int64_t g = 0; g < groups; g++)
                memcpy(data + r * row + g * cap * width, scratch + (r * groups + g) * part,
                       (size_t)part * sizeof(cf_real));
}

void cf_kv_cache_reorder(cf_kv_cache *c, const int32_t *order, int64_t n, cf_real *scratch) {
    CF_ASSERT(n <= c->batch, "cache reorder of %lld rows, batch %lld", (long long)n, (long long)c->batch);
    for (int64_t r = 0; r < n; r++)
        CF_ASSERT(order[r] >= 0 && order[r] < c->batch, "cache reorder index %d", order[r]);
    reorder_block(c->a, c->groups_a, c->cap, c->width_a, c->len, order, n, scratch);
    reorder_block(c->b, c->groups_b, c->cap, c->width_b, c->len, order, n, scratch);
}

/* ---- forward ---- */

/* Q/K/V come from one projection and are read in place (cf_attention_views): mha/gqa/mqa without
 * RoPE or QK-norm, which transform per-head copies (the general path). */
static bool projects_in_place(const cf_nn_attention *a) { return a->kind != CF_ATTN_MLA && !a->rope && !a->qk_norm; }

/* Append n positions of keys k and values v (views) to the cache. */
static void cache_append(cf_kv_cache *cache, int64_t batch, int64_t n, cf_attn_view k, cf_attn_view v) {
    CF_ASSERT(cache->len + n <= cache->cap, "KV cache full: %lld + %lld > %lld", (long long)cache->len, (long long)n,
              (long long)cache->cap);
    CF_ASSERT(batch == cache->batch, "KV cache batch %lld, input %lld", (long long)cache->batch, (long long)batch);
    cache_write(cache->a, batch, cache->groups_a, cache->cap, cache->width_a, cache->len, n, k);
    if (v.t) cache_write(cache->b, batch, cache->groups_b, cache->cap, cache->width_b, cache->len, n, v);
    cache->len += n;
}

static cf_tensor *attend(cf_ctx *ctx, const cf_nn_attention *a, int64_t batch, int64_t t, int64_t s, cf_attn_view q,
                         cf_attn_view k, cf_attn_view v, const cf_attn_opts *opts) {
    cf_attn_shape sh = {.B = batch, .H = a->n_heads, .Hkv = a->kind == CF_ATTN_MLA ? a->n_heads : a->n_kv_heads,
                        .T = t, .S = s, .Dk = a->qk_dim, .Dv = a->v_dim};
    cf_tensor *o = cf_attention_views(ctx, &sh, q, k, v, opts, false); /* [B, T, H*Dv] */
    return cf_nn_linear_forward(ctx, &a->out_proj, o);
}

static cf_tensor *forward_in_place(cf_ctx *ctx, const cf_nn_attention *a, cf_tensor *xq, cf_tensor *xkv,
                                   cf_kv_cache *cache, const cf_attn_opts *opts) {
    int64_t batch = xq->shape[0], t = xq->shape[1], hq = a->n_heads * a->qk_dim, hkv = a->n_kv_heads * a->qk_dim;
    int64_t s = xkv ? xkv->shape[1] : 0;
    cf_attn_view q, k = {0}, v = {0};
    if (xkv == xq) { /* self-attention: [B, T, (H + 2 Hkv) D] in one GEMM */
        cf_tensor *qkv = cf_linear(ctx, xq, a->qkv_weight, a->qkv_bias);
        q = cf_attn_view_cols(qkv, 0, a->qk_dim);
        k = cf_attn_view_cols(qkv, hq, a->qk_dim);
        v = cf_attn_view_cols(qkv, hq + hkv, a->v_dim);
    } else {
        q = cf_attn_view_cols(cf_nn_linear_forward(ctx, &a->q_proj, xq), 0, a->qk_dim);
        if (xkv) { /* cross-attention: keys and values [B, S, 2 Hkv D] in one GEMM */
            cf_tensor *kv = cf_linear(ctx, xkv, a->kv_weight, a->kv_bias);
            k = cf_attn_view_cols(kv, 0, a->qk_dim);
            v = cf_attn_view_cols(kv, hkv, a->v_dim);
        }
    }
    if (cache) {
        if (xkv) cache_append(cache, batch, s, k, v);
        CF_ASSERT(batch <= cache->batch, "KV cache batch %lld, input %lld", (long long)cache->batch, (long long)batch);
        k = cache_view(ctx, cache->a, cache->batch, cache->groups_a, cache->cap, cache->width_a);
        v = cache_view(ctx, cache->b, cache->batch, cache->groups_b, cache->cap, cache->width_b);
        s = cache->len;
    }
    return attend(ctx, a, batch, t, s, q, k, v, opts);
}

cf_tensor *cf_nn_attention_forward(cf_ctx *ctx, const cf_nn_attention *a, cf_tensor *xq, cf_tensor *xkv,
                                   const cf_nn_attn_mask *mask, cf_kv_cache *cache, int64_t q_offset) {
    int64_t batch = xq->shape[0], t = xq->shape[1];
    int64_t kv_offset = cache ? cache->len : 0;
    CF_ASSERT(xkv || (cache && cache->len > 0), "attention: no keys (xkv NULL and cache empty)");
    cf_attn_opts opts = {
        .scale = 1.0 / sqrt((double)a->qk_dim),
        .causal = mask && mask->causal,
        .key_lens = mask ? mask->key_lens : NULL,
        .window = a->window,
        .dropout = ctx->training ? a->attn_dropout : 0.0,
        .rel = a->rel_pos,
        .rel_clip = a->rel_clip,
    };
    if (projects_in_place(a)) return forward_in_place(ctx, a, xq, xkv, cache, &opts);

    cf_tensor *q = project_q(ctx, a, xq, q_offset);
    cf_tensor *blk_a = NULL, *blk_b = NULL;
    if (a->kind != CF_ATTN_MLA) {
        if (xkv) {
            blk_a = split_heads(ctx, cf_nn_linear_forward(ctx, &a->k_proj, xkv), a->n_kv_heads, a->qk_dim);
            if (a->qk_norm) blk_a = cf_nn_norm_forward(ctx, &a->k_norm, blk_a);
            if (a->rope) blk_a = cf_rope(ctx, blk_a, kv_offset, a->rope_base);
            blk_b = split_heads(ctx, cf_nn_linear_forward(ctx, &a->v_proj, xkv), a->n_kv_heads, a->v_dim);
        }
    } else if (xkv) {
        cf_tensor *c, *kr;
        mla_latent(ctx, a, xkv, kv_offset, &c, &kr);
        blk_a = cf_reshape(ctx, c, 4, (int64_t[]){batch, 1, c->shape[1], a->kv_lora_rank});
        blk_b = kr;
    }
    if (cache && xkv)
        cache_append(cache, batch, blk_a->shape[2], cf_attn_view_heads(blk_a),
                     blk_b ? cf_attn_view_heads(blk_b) : (cf_attn_view){0});
    if (a->kind != CF_ATTN_MLA) { /* keys and values: the new ones, or the whole cache in place */
        cf_attn_view k = cache ? cache_view(ctx, cache->a, cache->batch, cache->groups_a, cache->cap, cache->width_a)
                               : cf_attn_view_heads(blk_a);
        cf_attn_view v = cache ? cache_view(ctx, cache->b, cache->batch, cache->groups_b, cache->cap, cache->width_b)
                               : cf_attn_view_heads(blk_b);
        return attend(ctx, a, batch, t, cache ? cache->len : blk_a->shape[2], cf_attn_view_heads(q), k, v, &opts);
    }
    if (cache) { /* MLA expands the cached latent per head: a [B, 1, len, W] copy of the filled part */
        blk_a = cache_read(ctx, cache->a, batch, cache->groups_a, cache->cap, cache->width_a, cache->len);
        blk_b = cache->width_b
                    ? cache_read(ctx, cache->b, batch, cache->groups_b, cache->cap, cache->width_b, cache->len)
                    : NULL;
    }
    cf_tensor *k, *v;
    cf_tensor *c = cf_reshape(ctx, blk_a, 3, (int64_t[]){batch, blk_a->shape[2], a->kv_lora_rank});
    mla_expand(ctx, a, c, blk_b, &k, &v);
    return attend(ctx, a, batch, t, k->shape[2], cf_attn_view_heads(q), cf_attn_view_heads(k), cf_attn_view_heads(v),
                  &opts);
}
