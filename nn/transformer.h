/* nn/transformer.h - the encoder-decoder Transformer for translation.
 *
 * Usage (training step):
 *     cf_transformer *m = cf_transformer_new(&cfg, seed);            // registers and inits params
 *     cf_tensor *loss = cf_transformer_loss(ctx, m, &batch_view, 0.1, &stats);
 *     cf_backward(ctx, loss);
 *
 * Usage (inference, grad mode off):
 *     cf_tensor *mem = cf_transformer_encode(ctx, m, src, B, S, src_lens);
 *     cf_decode_state *st = cf_decode_state_new(m, B, max_len, S);    // caches for max_len tokens
 *     logits = cf_transformer_decode_step(ctx, m, st, mem, src_lens, ids);   // [B, 1, V]
 *
 * Layout (docs/model.md gives every parameter's name and shape):
 *   encoder.embed_tokens, [encoder.embed_positions], encoder.layers.i.{self_attn_norm, self_attn,
 *   ffn_norm, ffn}, encoder.norm (pre-LN); decoder likewise with cross_attn_norm/cross_attn;
 *   output_proj unless tied to the target embedding.
 */
#ifndef CF_NN_TRANSFORMER_H
#define CF_NN_TRANSFORMER_H

#include "nn/attention.h"
#include "nn/moe.h"

typedef struct cf_nn_encoder_layer {
    cf_nn_norm self_attn_norm, ffn_norm;
    cf_nn_attention self_attn;
    cf_nn_ffn ffn;                      /* dense FFN, or ... */
    cf_nn_moe moe;                      /* ... a mixture of experts when cfg.num_experts > 0 */
} cf_nn_encoder_layer;

typedef struct cf_nn_decoder_layer {
    cf_nn_norm self_attn_norm, cross_attn_norm, ffn_norm;
    cf_nn_attention self_attn, cross_attn;
    cf_nn_ffn ffn;
    cf_nn_moe moe;
} cf_nn_decoder_layer;

typedef struct cf_transformer {
    cf_model_config cfg;
    cf_params params;
    cf_tensor *src_embed, *tgt_embed;   /* the same tensor when embeddings are shared */
    cf_tensor *output_proj;             /* [V, d]: tgt_embed when tied */
    cf_nn_positions enc_pos, dec_pos;
    cf_nn_encoder_layer *enc;
    cf_nn_decoder_layer *dec;
    cf_nn_norm enc_norm, dec_norm;      /* pre-LN only */
    cf_moe_collector *moe;              /* MoE models: load-balancing losses and expert loads (layers
                                         * 0..enc_layers-1 the encoder's, then the decoder's); NULL if dense */
} cf_transformer;

/* Token ids of a batch, padded with CF_PAD_ID-style ids past each length. */
typedef struct cf_seq_batch {
    int64_t batch, src_len, tgt_len;
    const int32_t *src;                 /* [B, S] */
    const int32_t *src_lens;            /* [B] */
    const int32_t *tgt_in;              /* [B, T] <bos> y */
    const int32_t *tgt_out;             /* [B, T] y <eos>, pad = ignore_index */
    int32_t pad_id;
} cf_seq_batch;

/* NULL and a message if the config is inconsistent. */
cf_transformer *cf_transformer_new(const cf_model_config *cfg, uint64_t seed);
void cf_transformer_free(cf_transformer *m);

cf_tensor *cf_transformer_encode(cf_ctx *ctx, const cf_transformer *m, const int32_t *src, int64_t batch,
                                 int64_t src_len, const int32_t *src_lens);
/* Full teacher-forced decoder: logits [B, T, V]. */
cf_tensor *cf_transformer_decode(cf_ctx *ctx, const cf_transformer *m, cf_tensor *memory, const int32_t *src_lens,
                                 const int32_t *tgt_in, int64_t tgt_len);
/* Label-smoothed cross-entropy over non-pad target tokens; in training mode an MoE model adds
 * model.moe_aux_weight times the mean load-balancing loss of its MoE layers (docs/model.md). */
cf_tensor *cf_transformer_loss(cf_ctx *ctx, const cf_transformer *m, const cf_seq_batch *b, double label_smoothing,
                               cf_ce_stats *stats);

/* Incremental decoding: per-layer self- and cross-attention caches. */
typedef struct cf_decode_state {
    int64_t batch, cap, pos;            /* pos: tokens decoded so far */
    cf_kv_cache **self_cache, **cross_cache;
    int n_layers;
    cf_real *scratch;                   /* for cf_decode_state_reorder: allocated at its first call */
    int64_t scratch_len;
} cf_decode_state;

cf_decode_state *cf_decode_state_new(const cf_transformer *m, int64_t batch, int64_t max_len, int64_t src_len);
void cf_decode_state_free(cf_decode_state *st);
/* Feed ids [B] (the tokens at position st->pos); returns logits [B, 1, V] for the next position. */
cf_tensor *cf_transformer_decode_step(cf_ctx *ctx, const cf_transformer *m, cf_decode_state *st, cf_tensor *memory,
                                      const int32_t *src_lens, const int32_t *ids);
/* Beam search: row i of every self-attention cache becomes old row order[i] (i < n), and of every
 * cross-attention cache too when cross. A search whose rows only take parents that read the same
 * source (beams of one sentence) leaves the cross caches as they are. The scratch buffer is
 * allocated once, at the first call: later calls do not malloc. */
void cf_decode_state_reorder(cf_decode_state *st, const int32_t *order, int64_t n, bool cross);

int64_t cf_transformer_num_params(const cf_transformer *m);
/* Parameters one token uses: all of them for a dense model; an MoE layer counts its router, k
 * routed experts and the shared experts. */
int64_t cf_transformer_active_params(const cf_transformer *m);
/* Forward FLOPs (multiply-adds x 2) for one sentence pair of the given lengths. */
double cf_transformer_flops(const cf_transformer *m, int64_t src_len, int64_t tgt_len);

#endif
