/* nn/memory.h - the memory lecture's arithmetic: parameters, weight bytes and KV-cache bytes of
 * decoder-only LLMs (presets from the public model configs) and of cformer's own models.
 *
 * Usage:
 *     const cf_llm_arch *a = cf_llm_preset("qwen3-32b");            // NULL for an unknown name
 *     cf_llm_counts n = cf_llm_count(a);                            // 32.76e9 parameters
 *     int64_t kv = cf_llm_kv_bytes_per_token(a, CF_ATTN_MHA, 2);     // bf16: 2 x 64 x 5120 x 2
 *     double gb = (double)kv * 16 * 2048 / 1e9;                     // 42.9 GB at batch 16, 2048 tokens
 *
 * KV cache per token and layer, in elements (docs/course.md, "Parameters"):
 *     mha  2 d_model             K and V as wide as the model (the lecture's convention; a model
 *                                 whose heads are wider, H x head_dim > d_model, would cache more)
 *     gqa  2 n_kv_heads head_dim  the model's own grouping
 *     mqa  2 head_dim
 *     mla  kv_lora_rank + qk_rope_dim  (a model without MLA dims: 4 head_dim + head_dim / 2, the
 *                                 ratio of DeepSeek's 512 + 64 to its 128-wide heads)
 * Parameters count every matrix and norm of the architecture: embeddings (and the output head
 * unless tied), per layer the attention (with Qwen3's q_norm/k_norm), two RMSNorms and the FFN
 * (SwiGLU, 3 d F; MoE layers: router, routed and shared experts; DeepSeek's first dense layers a
 * dense FFN), the final norm. "Active" counts k routed experts instead of all of them.
 */
#ifndef CF_NN_MEMORY_H
#define CF_NN_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "nn/config.h"

typedef struct cf_llm_arch {
    const char *name;               /* preset name, e.g. "qwen3-32b" */
    const char *source;             /* where the numbers come from (a config.json address) */
    double nominal_params;          /* the count in the model's name (32e9), 0 if none */
    int64_t layers, d_model, n_heads, n_kv_heads, head_dim, d_ff, vocab;
    bool tied, qk_norm;
    cf_attn_kind attention;         /* the model's own: gqa or mla */
    int64_t q_lora_rank, kv_lora_rank, qk_nope_dim, qk_rope_dim, v_head_dim;   /* mla */
    int64_t num_experts, experts_per_token, n_shared_experts, moe_d_ff;       /* 0 experts: dense */
    int64_t dense_layers;           /* MoE models: the first layers keep a dense FFN of d_ff */
    bool router_bias;               /* DeepSeek-V3's expert score correction bias [E] */
} cf_llm_arch;

typedef struct cf_llm_counts {
    int64_t params, active_params;
} cf_llm_counts;

/* The presets in table order (n receives their count). */
const cf_llm_arch *cf_llm_presets(int *n);
const cf_llm_arch *cf_llm_preset(const char *name);
cf_llm_counts cf_llm_count(const cf_llm_arch *a);
/* Cached bytes per token over all layers for `attention` (the model's own when it equals
 * a->attention) at dtype_bytes per element. */
int64_t cf_llm_kv_bytes_per_token(const cf_llm_arch *a, cf_attn_kind attention, int dtype_bytes);
/* The per-layer element count behind it, and the MLA dims used (for the printout). */
int64_t cf_llm_kv_elems_per_layer(const cf_llm_arch *a, cf_attn_kind attention, int64_t *mla_rank, int64_t *mla_rope);

#endif
