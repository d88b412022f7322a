/* nn/attention.h - multi-head attention in the course's variants: MHA, GQA, MQA and MLA.
 *
 * Usage (training: full sequences):
 *     cf_nn_attention a;
 *     cf_nn_attention_init(&a, &params, &rng, &cfg, "decoder.layers.0.self_attn", true);
 *     cf_tensor *y = cf_nn_attention_forward(ctx, &a, x, x, &(cf_nn_attn_mask){.causal = true}, NULL, 0);
 *
 * Usage (incremental decoding):
 *     cf_kv_cache *c = cf_kv_cache_new(&a, batch, max_len);
 *     for each step: y = cf_nn_attention_forward(ctx, &a, x_new, x_new, &mask, c, 0);   // appends
 *     cross-attention: the first call appends the whole memory; later calls pass kv = NULL.
 *
 * Variants, selected by cfg.attention (docs/model.md has the equations):
 *   mha/gqa/mqa: q_proj [H*D, d], k_proj/v_proj [Hkv*D, d], out_proj [d, H*D]; query head h reads
 *                KV head h / (H/Hkv). The cache holds K and V: [B, Hkv, len, D] each.
 *   mla:         DeepSeek-V2 multi-head latent attention. KV: kv_a_proj [r + dr, d] gives a latent
 *                c (RMS-normed by kv_a_norm) and a RoPE key k_r shared by all heads;
 *                kv_b_proj [H*(dn+dv), r] expands c into per-head k_nope and v. Queries go through
 *                q_a_proj/q_a_norm/q_b_proj when q_lora_rank > 0, else q_proj. The cache holds
 *                only c [B, len, r] and the rotated k_r [B, len, dr].
 * Options of mha/gqa/mqa: qk_norm (RMSNorm of each head's q and k, q_norm/k_norm [D], before
 * RoPE); in self-attention, relative positions (rel_pos [2R+1, D], or [H, 2R+1, D] per head:
 * Shaw et al.'s relative keys, added to the scores inside cf_attention; MLA too).
 */
#ifndef CF_NN_ATTENTION_H
#define CF_NN_ATTENTION_H

#include "nn/layers.h"

typedef struct cf_nn_attention {
    cf_attn_kind kind;
    int64_t d_model, n_heads, n_kv_heads;
    int64_t qk_dim, v_dim;              /* per head: query/key and value dims */
    bool rope;                          /* rotate queries and keys (mha/gqa/mqa with pos_encoding rope) */
    double rope_base, attn_dropout;
    int64_t window;                     /* sliding window (self-attention), 0 = full */
    cf_nn_linear q_proj, k_proj, v_proj, out_proj;
    /* mha/gqa/mqa: q_proj, k_proj and v_proj's weights (and biases) lie back to back in one block,
     * read as one projection: qkv [(H + 2 Hkv) D, d] for self-attention, kv [2 Hkv D, d] (its
     * last rows) for cross-attention's keys and values (nn/params.h's blocks) */
    cf_tensor *qkv_weight, *qkv_bias, *kv_weight, *kv_bias;
    /* MLA */
    int64_t kv_lora_rank, q_lora_rank, qk_nope_dim, qk_rope_dim;
    cf_nn_linear q_a_proj, q_b_proj, kv_a_proj, kv_b_proj;
    cf_nn_norm q_a_norm, kv_a_norm;
    /* options */
    bool qk_norm;
    cf_nn_norm q_norm, k_norm;          /* qk_norm: RMSNorm over each head's D */
    cf_tensor *rel_pos;                 /* relative positions (self-attention): [2R+1, Dqk] or [H, 2R+1, Dqk] */
    int64_t rel_clip;
} cf_nn_attention;

typedef struct cf_nn_attn_mask {
    bool causal;
    const int32_t *key_lens;            /* [B] valid keys per batch row, or NULL */
} cf_nn_attn_mask;

/* What a KV cache holds per position: two blocks [B, groups, cap, width]. */
typedef struct cf_kv_cache {
    int64_t batch, cap, len;            /* len positions filled */
    int64_t groups_a, width_a, groups_b, width_b;
    cf_real *a, *b;                     /* mha: K and V; mla: latent c and rotated k_r */
} cf_kv_cache;

/* MLA's derived dims when the config leaves them 0 (docs/config.md). */
void cf_mla_dims(const cf_model_config *c, int64_t *kv_lora_rank, int64_t *qk_nope, int64_t *qk_rope, int64_t *v_dim);

/* self_attn: sliding window and RoPE positions as for self-attention (cross-attention has no window). */
void cf_nn_attention_init(cf_nn_attention *a, cf_params *ps, cf_rng *r, const cf_model_config *cfg, const char *prefix,
                          bool self_attn);
/* xq [B, T, d] queries; xkv [B, S, d] keys/values source (== xq for self-attention).
 * Without a cache: positions start at 0. With a cache: xkv (if not NULL) is projected and appended
 * at positions cache->len.., queries sit at positions q_offset..; attention covers the whole cache. */
cf_tensor *cf_nn_attention_forward(cf_ctx *ctx, const cf_nn_attention *a, cf_tensor *xq, cf_tensor *xkv,
                                   const cf_nn_attn_mask *mask, cf_kv_cache *cache, int64_t q_offset);

cf_kv_cache *cf_kv_cache_new(const cf_nn_attention *a, int64_t batch, int64_t cap);
void cf_kv_cache_free(cf_kv_cache *c);
/* Cached bytes per position per batch row (float32), the figure the course compares. */
int64_t cf_kv_cache_bytes_per_token(const cf_nn_attention *a);
/* Beam search: row i becomes old row order[i], for i < n <= batch. Copies only the filled
 * positions, and only of the rows that change, through scratch: a buffer of at least
 * cf_kv_cache_scratch_len(c) values that the caller keeps across calls (no malloc here). */
void cf_kv_cache_reorder(cf_kv_cache *c, const int32_t *order, int64_t n, cf_real *scratch);
int64_t cf_kv_cache_scratch_len(const cf_kv_cache *c);

#endif
