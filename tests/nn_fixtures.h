/* tests/nn_fixtures.h - tiny model configs and batches shared by the nn tests. */
#ifndef CF_TESTS_NN_FIXTURES_H
#define CF_TESTS_NN_FIXTURES_H

#include "nn/transformer.h"

/* A tiny config: d 8, 2 heads, 1+1 layers (2+2 when `deep`), vocab 11, no dropout. */
static inline cf_model_config tiny_model_config(cf_attn_kind kind) {
    cf_model_config c = cf_model_config_default();
    c.src_vocab = c.tgt_vocab = 11;
    c.d_model = 8;
    c.n_heads = 4;
    c.n_kv_heads = kind == CF_ATTN_GQA ? 2 : kind == CF_ATTN_MQA ? 1 : 4;
    c.attention = kind;
    c.kv_lora_rank = 6;
    c.q_lora_rank = 0;
    c.qk_nope_dim = 2;
    c.qk_rope_dim = 2;
    c.v_head_dim = 3;
    c.enc_layers = 1;
    c.dec_layers = 1;
    c.d_ff = 12;
    c.max_len = 16;
    c.dropout = 0;
    return c;
}

/* Batch of 2: source lengths 5 and 3 (padded with 0), target length 4 with one padded position. */
static const int32_t tiny_src[2 * 5] = {5, 6, 7, 8, 3, 9, 4, 3, 0, 0};
static const int32_t tiny_src_lens[2] = {5, 3};
static const int32_t tiny_tgt_in[2 * 4] = {2, 5, 6, 7, 2, 8, 9, 0};
static const int32_t tiny_tgt_out[2 * 4] = {5, 6, 7, 3, 8, 9, 3, 0};

static inline cf_seq_batch tiny_batch(void) {
    return (cf_seq_batch){.batch = 2, .src_len = 5, .tgt_len = 4, .src = tiny_src, .src_lens = tiny_src_lens,
                          .tgt_in = tiny_tgt_in, .tgt_out = tiny_tgt_out, .pad_id = 0};
}

#endif
