/* nn/memory.c - presets and arithmetic of the memory lecture (nn/memory.h).
 *
 * The architectural numbers are those of the models' public Hugging Face config.json files (Qwen3
 * dense and MoE) and of the configs in DeepSeek-V3's repository (inference/configs/config_236B.json
 * for DeepSeek-V2, config_671B.json for V3); docs/course.md lists the addresses. The counts they
 * give are checked against the published totals in tests/test_memory.c.
 */
#include "nn/memory.h"

#include <string.h>

#define QWEN3(nm, url, nom, L, d, H, F, tie)                                                                       \
    {.name = nm, .source = url, .nominal_params = nom, .layers = L, .d_model = d, .n_heads = H, .n_kv_heads = 8, \
     .head_dim = 128, .d_ff = F, .vocab = 151936, .tied = tie, .qk_norm = true, .attention = CF_ATTN_GQA}

static const cf_llm_arch presets[] = {
    QWEN3("qwen3-0.6b", "https://huggingface.co/Qwen/Qwen3-0.6B/blob/main/config.json", 0.6e9, 28, 1024, 16, 3072, true),
    QWEN3("qwen3-1.7b", "https://huggingface.co/Qwen/Qwen3-1.7B/blob/main/config.json", 1.7e9, 28, 2048, 16, 6144, true),
    QWEN3("qwen3-4b", "https://huggingface.co/Qwen/Qwen3-4B/blob/main/config.json", 4e9, 36, 2560, 32, 9728, true),
    QWEN3("qwen3-8b", "https://huggingface.co/Qwen/Qwen3-8B/blob/main/config.json", 8e9, 36, 4096, 32, 12288, false),
    QWEN3("qwen3-14b", "https://huggingface.co/Qwen/Qwen3-14B/blob/main/config.json", 14e9, 40, 5120, 40, 17408, false),
    QWEN3("qwen3-32b", "https://huggingface.co/Qwen/Qwen3-32B/blob/main/config.json", 32e9, 64, 5120, 64, 25600, false),
    {.name = "qwen3-30b-a3b", .source = "https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/config.json",
     .nominal_params = 30e9, .layers = 48, .d_model = 2048, .n_heads = 32, .n_kv_heads = 4, .head_dim = 128,
     .d_ff = 6144, .vocab = 151936, .tied = false, .qk_norm = true, .attention = CF_ATTN_GQA, .num_experts = 128,
     .experts_per_token = 8, .moe_d_ff = 768},
    {.name = "deepseek-v2",
     .source = "https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/inference/configs/config_236B.json",
     .nominal_params = 236e9, .layers = 60, .d_model = 5120, .n_heads = 128, .n_kv_heads = 128, .head_dim = 128,
     .d_ff = 12288, .vocab = 102400, .attention = CF_ATTN_MLA, .q_lora_rank = 1536, .kv_lora_rank = 512,
     .qk_nope_dim = 128, .qk_rope_dim = 64, .v_head_dim = 128, .num_experts = 160, .experts_per_token = 6,
     .n_shared_experts = 2, .moe_d_ff = 1536, .dense_layers = 1},
    {.name = "deepseek-v3",
     .source = "https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/inference/configs/config_671B.json",
     .nominal_params = 671e9, .layers = 61, .d_model = 7168, .n_heads = 128, .n_kv_heads = 128, .head_dim = 128,
     .d_ff = 18432, .vocab = 129280, .attention = CF_ATTN_MLA, .q_lora_rank = 1536, .kv_lora_rank = 512,
     .qk_nope_dim = 128, .qk_rope_dim = 64, .v_head_dim = 128, .num_experts = 256, .experts_per_token = 8,
     .n_shared_experts = 1, .moe_d_ff = 2048, .dense_layers = 3, .router_bias = true},
};
enum { N_PRESETS = sizeof presets / sizeof presets[0] };

const cf_llm_arch *cf_llm_presets(int *n) {
    *n = N_PRESETS;
    return presets;
}

const cf_llm_arch *cf_llm_preset(const char *name) {
    for (int i = 0; i < N_PRESETS; i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    return NULL;
}

static int64_t attention_params(const cf_llm_arch *a) {
    int64_t d = a->d_model, H = a->n_heads;
    if (a->attention == CF_ATTN_MLA) {
        int64_t rq = a->q_lora_rank, r = a->kv_lora_rank, qk = a->qk_nope_dim + a->qk_rope_dim;
        int64_t q = rq ? d * rq + rq + rq * H * qk : d * H * qk; /* q_a_proj, q_a_norm, q_b_proj | q_proj */
        return q + d * (r + a->qk_rope_dim) + r + r * H * (a->qk_nope_dim + a->v_head_dim) + H * a->v_head_dim * d;
    }
    int64_t hd = a->head_dim; /* q, k, v, o projections, no biases; q_norm and k_norm over a head */
    return d * H * hd + 2 * d * a->n_kv_heads * hd + H * hd * d + (a->qk_norm ? 2 * hd : 0);
}

cf_llm_counts cf_llm_count(const cf_llm_arch *a) {
    int64_t d = a->d_model, swiglu = 3 * d; /* gate, up, down: 3 d F */
    int64_t dense_ffn = swiglu * a->d_ff, expert = swiglu * a->moe_d_ff;
    int64_t router = a->num_experts * d + (a->router_bias ? a->num_experts : 0);
    int64_t per_layer = attention_params(a) + 2 * d; /* + input and post-attention RMSNorms */
    cf_llm_counts c = {0, 0};
    for (int64_t l = 0; l < a->layers; l++) {
        bool moe = a->num_experts > 0 && l >= a->dense_layers;
        int64_t shared = a->n_shared_experts * expert;
        c.params += per_layer + (moe ? router + a->num_experts * expert + shared : dense_ffn);
        c.active_params += per_layer + (moe ? router + a->experts_per_token * expert + shared : dense_ffn);
    }
    int64_t embed = a->vocab * d * (a->tied ? 1 : 2) + d; /* tables (+ output head) and the final norm */
    c.params += embed;
    c.active_params += embed;
    return c;
}

int64_t cf_llm_kv_elems_per_layer(const cf_llm_arch *a, cf_attn_kind attention, int64_t *mla_rank, int64_t *mla_rope) {
    int64_t rank = a->kv_lora_rank ? a->kv_lora_rank : 4 * a->head_dim;
    int64_t rope = a->qk_rope_dim ? a->qk_rope_dim : a->head_dim / 2;
    if (mla_rank) *mla_rank = rank;
    if (mla_rope) *mla_rope = rope;
    switch (attention) {
    case CF_ATTN_MHA: return 2 * a->d_model;
    case CF_ATTN_GQA: return 2 * a->n_kv_heads * a->head_dim;
    case CF_ATTN_MQA: return 2 * a->head_dim;
    case CF_ATTN_MLA: return rank + rope;
    }
    return 0;
}

int64_t cf_llm_kv_bytes_per_token(const cf_llm_arch *a, cf_attn_kind attention, int dtype_bytes) {
    return a->layers * cf_llm_kv_elems_per_layer(a, attention, NULL, NULL) * dtype_bytes;
}
