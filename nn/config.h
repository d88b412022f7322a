/* nn/config.h - the architecture of an encoder-decoder Transformer.
 *
 * Usage:
 *     cf_model_config c = cf_model_config_default();
 *     c.d_model = 256; c.n_heads = 8; c.n_kv_heads = 2;   // GQA
 *     if (cf_model_config_check(&c) != 0) puts(cf_error_message());   // names the bad key
 *
 * train/ fills this from the JSON config's "model" object (docs/config.md); the field names are the
 * JSON keys.
 */
#ifndef CF_NN_CONFIG_H
#define CF_NN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum cf_attn_kind { CF_ATTN_MHA, CF_ATTN_GQA, CF_ATTN_MQA, CF_ATTN_MLA } cf_attn_kind;
typedef enum cf_ffn_kind { CF_FFN_RELU, CF_FFN_GELU, CF_FFN_SWIGLU } cf_ffn_kind;
typedef enum cf_norm_kind { CF_NORM_LAYERNORM, CF_NORM_RMSNORM } cf_norm_kind;
typedef enum cf_pos_kind { CF_POS_SINUSOIDAL, CF_POS_LEARNED, CF_POS_ROPE, CF_POS_NONE, CF_POS_RELATIVE } cf_pos_kind;

typedef struct cf_model_config {
    int64_t src_vocab, tgt_vocab;   /* set from the tokenizer */
    int64_t d_model;
    int64_t n_heads;
    int64_t n_kv_heads;             /* = n_heads for MHA, 1 for MQA, a divisor for GQA */
    int64_t head_dim;               /* 0: d_model / n_heads */
    cf_attn_kind attention;
    /* MLA (DeepSeek-V2): latent ranks and the split of each head's query/key dims */
    int64_t kv_lora_rank, q_lora_rank;  /* q_lora_rank 0: queries projected directly */
    int64_t qk_nope_dim, qk_rope_dim, v_head_dim;
    int64_t enc_layers, dec_layers;
    int64_t d_ff;
    cf_ffn_kind activation;
    cf_norm_kind norm;
    bool pre_norm;                  /* pre-LN (final norm on each stack) or post-LN */
    double norm_eps;
    cf_pos_kind pos_encoding;
    double rope_base;
    int64_t rel_clip;               /* relative: distances beyond +-rel_clip share one entry */
    bool rel_per_head;              /* relative: one table per head (else one shared by all heads) */
    bool qk_norm;                   /* RMSNorm of each head's q and k before RoPE (Qwen3) */
    /* Mixture of experts in place of every FFN (docs/model.md); num_experts 0: dense FFNs */
    int64_t num_experts, num_experts_per_token, n_shared_experts;
    int64_t moe_d_ff;               /* hidden width of one expert; 0: d_ff */
    double moe_aux_weight;          /* weight of the load-balancing loss added to the training loss */
    int64_t max_len;                /* positions available (learned table / sinusoid table) */
    int64_t window;                 /* sliding-window self-attention; 0 = full */
    double dropout;                 /* residual, embedding and FFN dropout */
    double attn_dropout;            /* on attention weights */
    bool bias;                      /* biases in projections and FFN */
    bool share_embeddings;          /* one table for source and target (needs equal vocabularies) */
    bool tie_output;                /* output projection = target embedding^T */
    bool scale_embedding;           /* multiply embeddings by sqrt(d_model) */
} cf_model_config;

cf_model_config cf_model_config_default(void);
/* 0, or -1 with a message naming the key ("model.n_heads") and the offending value. */
int cf_model_config_check(const cf_model_config *c);
/* Head dims actually used (resolving head_dim 0). */
int64_t cf_model_head_dim(const cf_model_config *c);

const char *cf_attn_kind_name(cf_attn_kind k);
const char *cf_ffn_kind_name(cf_ffn_kind k);
const char *cf_norm_kind_name(cf_norm_kind k);
const char *cf_pos_kind_name(cf_pos_kind k);
/* Parse a name; -1 if unknown. */
int cf_attn_kind_parse(const char *s);
int cf_ffn_kind_parse(const char *s);
int cf_norm_kind_parse(const char *s);
int cf_pos_kind_parse(const char *s);

#endif
