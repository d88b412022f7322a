/* nn/config.c - model config defaults, names and consistency checks. */
#include "nn/config.h"

#include <string.h>

#include "core/common.h"

cf_model_config cf_model_config_default(void) {
    return (cf_model_config){
        .src_vocab = 0, .tgt_vocab = 0,
        .d_model = 256, .n_heads = 8, .n_kv_heads = 0, .head_dim = 0,
        .attention = CF_ATTN_MHA,
        .kv_lora_rank = 0, .q_lora_rank = 0, .qk_nope_dim = 0, .qk_rope_dim = 0, .v_head_dim = 0,
        .enc_layers = 3, .dec_layers = 3, .d_ff = 1024,
        .activation = CF_FFN_RELU, .norm = CF_NORM_LAYERNORM, .pre_norm = true, .norm_eps = 1e-5,
        .pos_encoding = CF_POS_SINUSOIDAL, .rope_base = 10000, .rel_clip = 16, .rel_per_head = false, .qk_norm = false,
        .num_experts = 0, .num_experts_per_token = 2, .n_shared_experts = 0, .moe_d_ff = 0, .moe_aux_weight = 0.01,
        .max_len = 256, .window = 0,
        .dropout = 0.1, .attn_dropout = 0.0, .bias = true,
        .share_embeddings = true, .tie_output = true, .scale_embedding = true,
    };
}

int64_t cf_model_head_dim(const cf_model_config *c) {
    return c->head_dim ? c->head_dim : (c->n_heads ? c->d_model / c->n_heads : 0);
}

static const char *attn_names[] = {"mha", "gqa", "mqa", "mla"};
static const char *ffn_names[] = {"relu", "gelu", "swiglu"};
static const char *norm_names[] = {"layernorm", "rmsnorm"};
static const char *pos_names[] = {"sinusoidal", "learned", "rope", "none", "relative"};

static int parse(const char *s, const char **names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

const char *cf_attn_kind_name(cf_attn_kind k) { return attn_names[k]; }
const char *cf_ffn_kind_name(cf_ffn_kind k) { return ffn_names[k]; }
const char *cf_norm_kind_name(cf_norm_kind k) { return norm_names[k]; }
const char *cf_pos_kind_name(cf_pos_kind k) { return pos_names[k]; }
int cf_attn_kind_parse(const char *s) { return parse(s, attn_names, 4); }
int cf_ffn_kind_parse(const char *s) { return parse(s, ffn_names, 3); }
int cf_norm_kind_parse(const char *s) { return parse(s, norm_names, 2); }
int cf_pos_kind_parse(const char *s) { return parse(s, pos_names, 5); }

int cf_model_config_check(const cf_model_config *c) {
    CF_REQUIRE(c->d_model > 0, "model.d_model must be positive (got %lld)", (long long)c->d_model);
    CF_REQUIRE(c->n_heads > 0, "model.n_heads must be positive (got %lld)", (long long)c->n_heads);
    CF_REQUIRE(c->head_dim > 0 || c->d_model % c->n_heads == 0,
            "model.d_model (%lld) must be divisible by model.n_heads (%lld), or set model.head_dim",
            (long long)c->d_model, (long long)c->n_heads);
    CF_REQUIRE(c->head_dim >= 0, "model.head_dim must be >= 0 (got %lld)", (long long)c->head_dim);
    int64_t kv = c->n_kv_heads;
    switch (c->attention) {
    case CF_ATTN_MHA:
        CF_REQUIRE(kv == 0 || kv == c->n_heads, "model.n_kv_heads (%lld) must equal model.n_heads (%lld) for "
                "attention \"mha\" (use \"gqa\" for fewer KV heads)", (long long)kv, (long long)c->n_heads);
        break;
    case CF_ATTN_MQA:
        CF_REQUIRE(kv == 0 || kv == 1, "model.n_kv_heads must be 1 for attention \"mqa\" (got %lld)", (long long)kv);
        break;
    case CF_ATTN_GQA:
        CF_REQUIRE(kv > 0 && c->n_heads % kv == 0, "model.n_heads (%lld) must be a multiple of model.n_kv_heads "
                "(%lld) for attention \"gqa\"", (long long)c->n_heads, (long long)kv);
        break;
    case CF_ATTN_MLA:
        CF_REQUIRE(c->kv_lora_rank >= 0 && c->q_lora_rank >= 0, "model.kv_lora_rank and model.q_lora_rank must be >= 0");
        /* 0 means head_dim / 2 (cf_mla_dims), which can be odd too: check the width actually used */
        CF_REQUIRE((c->qk_rope_dim ? c->qk_rope_dim : cf_model_head_dim(c) / 2) % 2 == 0,
                "model.qk_rope_dim must be even (got %lld; 0 means head_dim / 2 = %lld)", (long long)c->qk_rope_dim,
                (long long)(cf_model_head_dim(c) / 2));
        CF_REQUIRE(c->qk_nope_dim >= 0 && c->v_head_dim >= 0, "model.qk_nope_dim and model.v_head_dim must be >= 0");
        break;
    }
    CF_REQUIRE(c->pos_encoding != CF_POS_ROPE || cf_model_head_dim(c) % 2 == 0,
            "model.pos_encoding \"rope\" needs an even head dim (got %lld)", (long long)cf_model_head_dim(c));
    CF_REQUIRE(c->rel_clip >= 0, "model.rel_clip must be >= 0 (got %lld)", (long long)c->rel_clip);
    CF_REQUIRE(!c->qk_norm || c->attention != CF_ATTN_MLA,
            "model.qk_norm normalises mha/gqa/mqa heads; attention \"mla\" already normalises its latents");
    if (c->num_experts > 0) {
        CF_REQUIRE(c->num_experts_per_token >= 1 && c->num_experts_per_token <= c->num_experts,
                "model.num_experts_per_token must be in 1 .. model.num_experts (%lld), got %lld",
                (long long)c->num_experts, (long long)c->num_experts_per_token);
        CF_REQUIRE(c->n_shared_experts >= 0 && c->moe_d_ff >= 0,
                "model.n_shared_experts and model.moe_d_ff must be >= 0");
        CF_REQUIRE(c->moe_aux_weight >= 0, "model.moe_aux_weight must be >= 0 (got %g)", c->moe_aux_weight);
    }
    CF_REQUIRE(c->num_experts >= 0, "model.num_experts must be >= 0 (got %lld)", (long long)c->num_experts);
    CF_REQUIRE(c->enc_layers >= 0 && c->dec_layers > 0, "model.enc_layers must be >= 0 and model.dec_layers > 0");
    CF_REQUIRE(c->d_ff > 0, "model.d_ff must be positive (got %lld)", (long long)c->d_ff);
    CF_REQUIRE(c->max_len > 0, "model.max_len must be positive (got %lld)", (long long)c->max_len);
    CF_REQUIRE(c->window >= 0, "model.window must be >= 0 (got %lld)", (long long)c->window);
    CF_REQUIRE(c->dropout >= 0 && c->dropout < 1, "model.dropout must be in [0, 1) (got %g)", c->dropout);
    CF_REQUIRE(c->attn_dropout >= 0 && c->attn_dropout < 1, "model.attn_dropout must be in [0, 1) (got %g)",
            c->attn_dropout);
    CF_REQUIRE(c->norm_eps > 0, "model.norm_eps must be positive (got %g)", c->norm_eps);
    CF_REQUIRE(c->rope_base > 1, "model.rope_base must be > 1 (got %g)", c->rope_base);
    CF_REQUIRE(!c->share_embeddings || c->src_vocab == c->tgt_vocab,
            "model.share_embeddings needs one vocabulary (source %lld, target %lld tokens)", (long long)c->src_vocab,
            (long long)c->tgt_vocab);
    return 0;
}
