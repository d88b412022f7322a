/* nn/transformer.c - encoder, decoder, loss, incremental decoding. */
#include "nn/transformer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The FFN sub-layer's parameters: dense, or a mixture of experts (collector slot `layer`). */
static void ffn_init(cf_nn_ffn *ffn, cf_nn_moe *moe, cf_params *ps, cf_rng *r, const cf_model_config *c, int layer,
                     const char *prefix) {
    if (c->num_experts > 0)
        cf_nn_moe_init(moe, ps, r, c, layer, prefix);
    else
        cf_nn_ffn_init(ffn, ps, r, c->activation, c->d_model, c->d_ff, c->bias, c->dropout, prefix);
}

static void encoder_layer_init(cf_nn_encoder_layer *l, cf_params *ps, cf_rng *r, const cf_model_config *c, int i) {
    char p[256];
    snprintf(p, sizeof p, "encoder.layers.%d.self_attn_norm", i);
    cf_nn_norm_init(&l->self_attn_norm, ps, c->norm, c->d_model, c->norm_eps, p);
    snprintf(p, sizeof p, "encoder.layers.%d.self_attn", i);
    cf_nn_attention_init(&l->self_attn, ps, r, c, p, true);
    /* The sliding window is a causal (decoder) notion: the kernel's window bounds keys before the
     * query only, which in the bidirectional encoder would be a lopsided mask. */
    l->self_attn.window = 0;
    snprintf(p, sizeof p, "encoder.layers.%d.ffn_norm", i);
    cf_nn_norm_init(&l->ffn_norm, ps, c->norm, c->d_model, c->norm_eps, p);
    snprintf(p, sizeof p, "encoder.layers.%d.ffn", i);
    ffn_init(&l->ffn, &l->moe, ps, r, c, i, p);
}

static void decoder_layer_init(cf_nn_decoder_layer *l, cf_params *ps, cf_rng *r, const cf_model_config *c, int i) {
    char p[256];
    snprintf(p, sizeof p, "decoder.layers.%d.self_attn_norm", i);
    cf_nn_norm_init(&l->self_attn_norm, ps, c->norm, c->d_model, c->norm_eps, p);
    snprintf(p, sizeof p, "decoder.layers.%d.self_attn", i);
    cf_nn_attention_init(&l->self_attn, ps, r, c, p, true);
    snprintf(p, sizeof p, "decoder.layers.%d.cross_attn_norm", i);
    cf_nn_norm_init(&l->cross_attn_norm, ps, c->norm, c->d_model, c->norm_eps, p);
    snprintf(p, sizeof p, "decoder.layers.%d.cross_attn", i);
    cf_nn_attention_init(&l->cross_attn, ps, r, c, p, false);
    snprintf(p, sizeof p, "decoder.layers.%d.ffn_norm", i);
    cf_nn_norm_init(&l->ffn_norm, ps, c->norm, c->d_model, c->norm_eps, p);
    snprintf(p, sizeof p, "decoder.layers.%d.ffn", i);
    ffn_init(&l->ffn, &l->moe, ps, r, c, (int)c->enc_layers + i, p);
}

cf_transformer *cf_transformer_new(const cf_model_config *cfg, uint64_t seed) {
    if (cf_model_config_check(cfg) != 0) return NULL;
    if (cfg->src_vocab <= 4 || cfg->tgt_vocab <= 4) {
        cf_error_set("model vocabulary sizes must be set (source %lld, target %lld)", (long long)cfg->src_vocab,
                     (long long)cfg->tgt_vocab);
        return NULL;
    }
    cf_transformer *m = cf_xcalloc(1, sizeof *m);
    m->cfg = *cfg;
    const cf_model_config *c = &m->cfg;
    cf_params *ps = &m->params;
    cf_rng r = cf_rng_init(seed, CF_RNG_STREAM_INIT);
    int64_t d = c->d_model;

    /* Xavier-uniform like every other matrix (the embedding is [V, d]). */
    m->src_embed = cf_params_add(ps, 2, (int64_t[]){c->src_vocab, d}, "encoder.embed_tokens.weight");
    cf_init_xavier_uniform(m->src_embed, &r);
    if (c->share_embeddings) {
        m->tgt_embed = m->src_embed;
    } else {
        m->tgt_embed = cf_params_add(ps, 2, (int64_t[]){c->tgt_vocab, d}, "decoder.embed_tokens.weight");
        cf_init_xavier_uniform(m->tgt_embed, &r);
    }
    cf_nn_positions_init(&m->enc_pos, ps, &r, c->pos_encoding, c->max_len, d, "encoder.embed_positions");
    cf_nn_positions_init(&m->dec_pos, ps, &r, c->pos_encoding, c->max_len, d, "decoder.embed_positions");

    if (c->num_experts > 0) m->moe = cf_moe_collector_new((int)(c->enc_layers + c->dec_layers), c->num_experts);
    m->enc = cf_xcalloc((size_t)(c->enc_layers ? c->enc_layers : 1), sizeof *m->enc);
    m->dec = cf_xcalloc((size_t)c->dec_layers, sizeof *m->dec);
    for (int i = 0; i < c->enc_layers; i++) encoder_layer_init(&m->enc[i], ps, &r, c, i);
    if (c->pre_norm) cf_nn_norm_init(&m->enc_norm, ps, c->norm, d, c->norm_eps, "encoder.norm");
    for (int i = 0; i < c->dec_layers; i++) decoder_layer_init(&m->dec[i], ps, &r, c, i);
    if (c->pre_norm) cf_nn_norm_init(&m->dec_norm, ps, c->norm, d, c->norm_eps, "decoder.norm");

    if (c->tie_output) {
        m->output_proj = m->tgt_embed;
    } else {
        m->output_proj = cf_params_add(ps, 2, (int64_t[]){c->tgt_vocab, d}, "output_proj.weight");
        cf_init_xavier_uniform(m->output_proj, &r);
    }
    return m;
}

void cf_transformer_free(cf_transformer *m) {
    if (!m) return;
    cf_nn_positions_free(&m->enc_pos);
    cf_nn_positions_free(&m->dec_pos);
    cf_params_free(&m->params);
    cf_moe_collector_free(m->moe);
    free(m->enc);
    free(m->dec);
    free(m);
}

int64_t cf_transformer_num_params(const cf_transformer *m) { return cf_params_numel(&m->params); }

int64_t cf_transformer_active_params(const cf_transformer *m) {
    int64_t n = cf_params_numel(&m->params);
    for (int i = 0; m->moe && i < m->cfg.enc_layers + m->cfg.dec_layers; i++) {
        const cf_nn_moe *moe = i < m->cfg.enc_layers ? &m->enc[i].moe : &m->dec[i - m->cfg.enc_layers].moe;
        n -= cf_nn_moe_params(moe) - cf_nn_moe_active_params(moe);
    }
    return n;
}

/* token embedding (scaled) + absolute positions, then dropout: [B, T, d] */
static cf_tensor *embed(cf_ctx *ctx, const cf_transformer *m, cf_tensor *table, const cf_nn_positions *pos,
                        const int32_t *ids, int64_t batch, int64_t len, int64_t offset) {
    /* one pass: gather, scale, add the position table (sinusoidal or learned), dropout */
    bool table_pos = pos->kind == CF_POS_SINUSOIDAL || pos->kind == CF_POS_LEARNED;
    CF_ASSERT(!table_pos || offset + len <= pos->max_len, "positions %lld..%lld exceed model.max_len %lld",
              (long long)offset, (long long)(offset + len - 1), (long long)pos->max_len);
    double scale = m->cfg.scale_embedding ? sqrt((double)m->cfg.d_model) : 1.0;
    return cf_embed_input(ctx, table, ids, batch, len, scale, table_pos ? pos->table : NULL, offset, m->cfg.dropout);
}

/* A residual sub-layer f with its norm: pre-LN x + drop(f(norm(x))), post-LN norm(x + drop(f(x))).
 * Written as two calls around f, so that a layer reads as the list of its sub-layers:
 *     h = sublayer_in(ctx, m, &norm, x);  x = sublayer_out(ctx, m, &norm, x, f(h)); */
static cf_tensor *sublayer_in(cf_ctx *ctx, const cf_transformer *m, const cf_nn_norm *norm, cf_tensor *x) {
    return m->cfg.pre_norm ? cf_nn_norm_forward(ctx, norm, x) : x;
}

static cf_tensor *sublayer_out(cf_ctx *ctx, const cf_transformer *m, const cf_nn_norm *norm, cf_tensor *x,
                               cf_tensor *fx) {
    cf_tensor *sum = cf_dropout_add(ctx, x, fx, m->cfg.dropout); /* x + dropout(fx), one pass */
    return m->cfg.pre_norm ? sum : cf_nn_norm_forward(ctx, norm, sum);
}

/* The FFN sub-layer's function: the dense FFN, or the mixture of experts (its training losses and
 * loads go to m's collector). */
static cf_tensor *ffn_block(cf_ctx *ctx, const cf_transformer *m, const cf_nn_ffn *ffn, const cf_nn_moe *moe,
                            cf_tensor *h) {
    return m->moe ? cf_nn_moe_forward(ctx, moe, h, m->moe) : cf_nn_ffn_forward(ctx, ffn, h);
}

/* x [B, S, d]: self-attention over the source (padding keys masked), then the FFN. */
static cf_tensor *encoder_layer(cf_ctx *ctx, const cf_transformer *m, const cf_nn_encoder_layer *l, cf_tensor *x,
                                const int32_t *src_lens) {
    const cf_nn_attn_mask pad = {.key_lens = src_lens};
    cf_tensor *h = sublayer_in(ctx, m, &l->self_attn_norm, x);
    x = sublayer_out(ctx, m, &l->self_attn_norm, x, cf_nn_attention_forward(ctx, &l->self_attn, h, h, &pad, NULL, 0));
    h = sublayer_in(ctx, m, &l->ffn_norm, x);
    x = sublayer_out(ctx, m, &l->ffn_norm, x, ffn_block(ctx, m, &l->ffn, &l->moe, h));
    return x;
}

cf_tensor *cf_transformer_encode(cf_ctx *ctx, const cf_transformer *m, const int32_t *src, int64_t batch,
                                 int64_t src_len, const int32_t *src_lens) {
    cf_tensor *x = embed(ctx, m, m->src_embed, &m->enc_pos, src, batch, src_len, 0);
    for (int i = 0; i < m->cfg.enc_layers; i++) x = encoder_layer(ctx, m, &m->enc[i], x, src_lens);
    return m->cfg.pre_norm ? cf_nn_norm_forward(ctx, &m->enc_norm, x) : x; /* memory [B, S, d] */
}

/* x [B, T, d] at positions pos..: causal self-attention, cross-attention on memory [B, S, d], then
 * the FFN. Teacher forcing passes no caches (pos 0); incremental decoding passes this layer's
 * caches: self-attention appends x's keys, and cross-attention projects memory only while its
 * cache is empty (the first step) and reads the cache afterwards. */
static cf_tensor *decoder_layer(cf_ctx *ctx, const cf_transformer *m, const cf_nn_decoder_layer *l, cf_tensor *x,
                                cf_tensor *memory, const int32_t *src_lens, cf_kv_cache *self_cache,
                                cf_kv_cache *cross_cache, int64_t pos) {
    const cf_nn_attn_mask causal = {.causal = true}, pad = {.key_lens = src_lens};
    cf_tensor *mem = cross_cache && cross_cache->len > 0 ? NULL : memory;
    cf_tensor *h = sublayer_in(ctx, m, &l->self_attn_norm, x);
    x = sublayer_out(ctx, m, &l->self_attn_norm, x,
                     cf_nn_attention_forward(ctx, &l->self_attn, h, h, &causal, self_cache, pos));
    h = sublayer_in(ctx, m, &l->cross_attn_norm, x);
    x = sublayer_out(ctx, m, &l->cross_attn_norm, x,
                     cf_nn_attention_forward(ctx, &l->cross_attn, h, mem, &pad, cross_cache, pos));
    h = sublayer_in(ctx, m, &l->ffn_norm, x);
    x = sublayer_out(ctx, m, &l->ffn_norm, x, ffn_block(ctx, m, &l->ffn, &l->moe, h));
    return x;
}

/* Decoder stack over x [B, T, d], up to the final norm: [B, T, d]. st NULL: teacher forcing. */
static cf_tensor *decoder_hidden(cf_ctx *ctx, const cf_transformer *m, cf_tensor *x, cf_tensor *memory,
                                 const int32_t *src_lens, cf_decode_state *st) {
    for (int i = 0; i < m->cfg.dec_layers; i++)
        x = decoder_layer(ctx, m, &m->dec[i], x, memory, src_lens, st ? st->self_cache[i] : NULL,
                          st ? st->cross_cache[i] : NULL, st ? st->pos : 0);
    return m->cfg.pre_norm ? cf_nn_norm_forward(ctx, &m->dec_norm, x) : x;
}

/* ... and the output projection: logits [B, T, V]. */
static cf_tensor *decoder_stack(cf_ctx *ctx, const cf_transformer *m, cf_tensor *x, cf_tensor *memory,
                                const int32_t *src_lens, cf_decode_state *st) {
    return cf_linear(ctx, decoder_hidden(ctx, m, x, memory, src_lens, st), m->output_proj, NULL);
}

cf_tensor *cf_transformer_decode(cf_ctx *ctx, const cf_transformer *m, cf_tensor *memory, const int32_t *src_lens,
                                 const int32_t *tgt_in, int64_t tgt_len) {
    int64_t batch = memory->shape[0];
    cf_tensor *x = embed(ctx, m, m->tgt_embed, &m->dec_pos, tgt_in, batch, tgt_len, 0);
    return decoder_stack(ctx, m, x, memory, src_lens, NULL);
}

cf_tensor *cf_transformer_loss(cf_ctx *ctx, const cf_transformer *m, const cf_seq_batch *b, double label_smoothing,
                               cf_ce_stats *stats) {
    if (m->moe) cf_moe_collector_begin(m->moe);
    cf_tensor *memory = cf_transformer_encode(ctx, m, b->src, b->batch, b->src_len, b->src_lens);
    cf_tensor *x = embed(ctx, m, m->tgt_embed, &m->dec_pos, b->tgt_in, b->batch, b->tgt_len, 0);
    cf_tensor *h = decoder_hidden(ctx, m, x, memory, b->src_lens, NULL); /* [B, T, d] */
    /* the output projection and the loss in chunks of rows: [B*T, V] logits never exist whole */
    cf_tensor *loss = cf_linear_cross_entropy(ctx, h, m->output_proj, b->tgt_out, label_smoothing, b->pad_id, stats);
    cf_tensor *aux = m->moe && ctx->training ? cf_moe_collector_aux(ctx, m->moe) : NULL;
    if (aux && m->cfg.moe_aux_weight > 0) loss = cf_add(ctx, loss, cf_scale(ctx, aux, m->cfg.moe_aux_weight));
    return loss;
}

/* ---- incremental decoding ---- */

cf_decode_state *cf_decode_state_new(const cf_transformer *m, int64_t batch, int64_t max_len, int64_t src_len) {
    cf_decode_state *st = cf_xcalloc(1, sizeof *st);
    st->batch = batch;
    st->cap = max_len;
    st->n_layers = (int)m->cfg.dec_layers;
    st->self_cache = cf_xcalloc((size_t)st->n_layers, sizeof *st->self_cache);
    st->cross_cache = cf_xcalloc((size_t)st->n_layers, sizeof *st->cross_cache);
    for (int i = 0; i < st->n_layers; i++) {
        st->self_cache[i] = cf_kv_cache_new(&m->dec[i].self_attn, batch, max_len);
        st->cross_cache[i] = cf_kv_cache_new(&m->dec[i].cross_attn, batch, src_len);
    }
    return st;
}

void cf_decode_state_free(cf_decode_state *st) {
    if (!st) return;
    for (int i = 0; i < st->n_layers; i++) {
        cf_kv_cache_free(st->self_cache[i]);
        cf_kv_cache_free(st->cross_cache[i]);
    }
    free(st->self_cache);
    free(st->cross_cache);
    free(st->scratch);
    free(st);
}

cf_tensor *cf_transformer_decode_step(cf_ctx *ctx, const cf_transformer *m, cf_decode_state *st, cf_tensor *memory,
                                      const int32_t *src_lens, const int32_t *ids) {
    cf_tensor *x = embed(ctx, m, m->tgt_embed, &m->dec_pos, ids, st->batch, 1, st->pos);
    cf_tensor *logits = decoder_stack(ctx, m, x, memory, src_lens, st);
    st->pos++;
    return logits;
}

void cf_decode_state_reorder(cf_decode_state *st, const int32_t *order, int64_t n, bool cross) {
    int64_t need = 0;
    for (int i = 0; i < st->n_layers; i++) {
        int64_t s = cf_kv_cache_scratch_len(st->self_cache[i]);
        int64_t c = cross ? cf_kv_cache_scratch_len(st->cross_cache[i]) : 0;
        need = s > need ? s : need;
        need = c > need ? c : need;
    }
    if (need > st->scratch_len) {
        free(st->scratch);
        st->scratch = cf_xmalloc((size_t)need * sizeof *st->scratch);
        st->scratch_len = need;
    }
    for (int i = 0; i < st->n_layers; i++) {
        cf_kv_cache_reorder(st->self_cache[i], order, n, st->scratch);
        if (cross) cf_kv_cache_reorder(st->cross_cache[i], order, n, st->scratch);
    }
}

/* ---- FLOPs ---- */

static double linear_flops(const cf_nn_linear *l, int64_t rows) {
    return l->weight ? 2.0 * (double)rows * (double)l->weight->numel : 0;
}

static double attn_flops(const cf_nn_attention *a, int64_t t, int64_t s) {
    double f = linear_flops(&a->q_proj, t) + linear_flops(&a->k_proj, s) + linear_flops(&a->v_proj, s) +
               linear_flops(&a->out_proj, t) + linear_flops(&a->q_a_proj, t) + linear_flops(&a->q_b_proj, t) +
               linear_flops(&a->kv_a_proj, s) + linear_flops(&a->kv_b_proj, s);
    /* scores q k^T and the weighted sum P v */
    return f + 2.0 * (double)a->n_heads * (double)t * (double)s * (double)(a->qk_dim + a->v_dim);
}

static double ffn_flops(const cf_transformer *m, const cf_nn_ffn *f, const cf_nn_moe *moe, int64_t t) {
    if (m->moe) return cf_nn_moe_flops(moe, t);
    return linear_flops(&f->fc1, t) + linear_flops(&f->fc2, t) + linear_flops(&f->gate, t);
}

double cf_transformer_flops(const cf_transformer *m, int64_t src_len, int64_t tgt_len) {
    double f = 0;
    for (int i = 0; i < m->cfg.enc_layers; i++)
        f += attn_flops(&m->enc[i].self_attn, src_len, src_len) + ffn_flops(m, &m->enc[i].ffn, &m->enc[i].moe, src_len);
    for (int i = 0; i < m->cfg.dec_layers; i++)
        f += attn_flops(&m->dec[i].self_attn, tgt_len, tgt_len) + attn_flops(&m->dec[i].cross_attn, tgt_len, src_len) +
             ffn_flops(m, &m->dec[i].ffn, &m->dec[i].moe, tgt_len);
    return f + 2.0 * (double)tgt_len * (double)m->output_proj->numel;
}
