/* tests/ref/write_checkpoint.c - write a freshly initialised model as model.safetensors (F32 tensors
 * by parameter name, __metadata__ "config" = the model config JSON with nn/config.h's field names),
 * the way checkpoints store it, and print the loss of tests/ref/model.py's fixed batch, so that
 * tests/ref/load_checkpoint.py can check the round trip into PyTorch. Not part of the build:
 *
 *     make && gcc -std=c11 -O2 -fopenmp -I. -I/usr/include/x86_64-linux-gnu/openblas-openmp \
 *         tests/ref/write_checkpoint.c build/libcformer.a -L/usr/lib/x86_64-linux-gnu/openblas-openmp \
 *         -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp -lopenblas -lcjson -lz -lm -o /tmp/write_checkpoint
 *     /tmp/write_checkpoint /tmp/model.safetensors mla        # mha|gqa|mqa|mla [rope] [swiglu] [untied] [postln] [rms]
 *     /usr/bin/python3 tests/ref/load_checkpoint.py /tmp/model.safetensors --expect-loss <printed loss>
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/safetensors.h"
#include "nn/transformer.h"

/* tests/ref/model.py's batch: B 3, S 7, T 6, pad 0. */
static const int32_t src[3 * 7] = {5, 9, 12, 4, 18, 7, 6, 11, 4, 4, 16, 8, 0, 0, 17, 13, 10, 0, 0, 0, 0};
static const int32_t src_lens[3] = {7, 5, 3};
static const int32_t tgt_in[3 * 6] = {2, 14, 6, 9, 15, 5, 2, 10, 13, 12, 0, 0, 2, 8, 0, 0, 0, 0};
static const int32_t tgt_out[3 * 6] = {14, 6, 9, 15, 5, 3, 10, 13, 12, 3, 0, 0, 8, 3, 0, 0, 0, 0};

/* The model config as JSON, every field of cf_model_config under its C name. */
static char *config_json(const cf_model_config *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "src_vocab", (double)c->src_vocab);
    cJSON_AddNumberToObject(o, "tgt_vocab", (double)c->tgt_vocab);
    cJSON_AddNumberToObject(o, "d_model", (double)c->d_model);
    cJSON_AddNumberToObject(o, "n_heads", (double)c->n_heads);
    cJSON_AddNumberToObject(o, "n_kv_heads", (double)c->n_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", (double)c->head_dim);
    cJSON_AddStringToObject(o, "attention", cf_attn_kind_name(c->attention));
    cJSON_AddNumberToObject(o, "kv_lora_rank", (double)c->kv_lora_rank);
    cJSON_AddNumberToObject(o, "q_lora_rank", (double)c->q_lora_rank);
    cJSON_AddNumberToObject(o, "qk_nope_dim", (double)c->qk_nope_dim);
    cJSON_AddNumberToObject(o, "qk_rope_dim", (double)c->qk_rope_dim);
    cJSON_AddNumberToObject(o, "v_head_dim", (double)c->v_head_dim);
    cJSON_AddNumberToObject(o, "enc_layers", (double)c->enc_layers);
    cJSON_AddNumberToObject(o, "dec_layers", (double)c->dec_layers);
    cJSON_AddNumberToObject(o, "d_ff", (double)c->d_ff);
    cJSON_AddStringToObject(o, "activation", cf_ffn_kind_name(c->activation));
    cJSON_AddStringToObject(o, "norm", cf_norm_kind_name(c->norm));
    cJSON_AddBoolToObject(o, "pre_norm", c->pre_norm);
    cJSON_AddNumberToObject(o, "norm_eps", c->norm_eps);
    cJSON_AddStringToObject(o, "pos_encoding", cf_pos_kind_name(c->pos_encoding));
    cJSON_AddNumberToObject(o, "rope_base", c->rope_base);
    cJSON_AddNumberToObject(o, "max_len", (double)c->max_len);
    cJSON_AddNumberToObject(o, "window", (double)c->window);
    cJSON_AddNumberToObject(o, "dropout", c->dropout);
    cJSON_AddNumberToObject(o, "attn_dropout", c->attn_dropout);
    cJSON_AddBoolToObject(o, "bias", c->bias);
    cJSON_AddBoolToObject(o, "share_embeddings", c->share_embeddings);
    cJSON_AddBoolToObject(o, "tie_output", c->tie_output);
    cJSON_AddBoolToObject(o, "scale_embedding", c->scale_embedding);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

int main(int argc, char **argv) {
    if (argc < 3 || cf_attn_kind_parse(argv[2]) < 0) {
        fprintf(stderr, "usage: %s OUT.safetensors mha|gqa|mqa|mla [rope] [swiglu] [untied] [postln] [rms]\n", argv[0]);
        return 2;
    }
    cf_model_config c = cf_model_config_default();
    c.src_vocab = c.tgt_vocab = 50;
    c.d_model = 32;
    c.n_heads = 4;
    c.enc_layers = c.dec_layers = 2;
    c.d_ff = 64;
    c.max_len = 32;
    c.attention = (cf_attn_kind)cf_attn_kind_parse(argv[2]);
    c.n_kv_heads = c.attention == CF_ATTN_GQA ? 2 : 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "rope") == 0) c.pos_encoding = CF_POS_ROPE;
        else if (strcmp(argv[i], "swiglu") == 0) c.activation = CF_FFN_SWIGLU;
        else if (strcmp(argv[i], "untied") == 0) c.tgt_vocab = 40, c.share_embeddings = c.tie_output = false;
        else if (strcmp(argv[i], "postln") == 0) c.pre_norm = false;
        else if (strcmp(argv[i], "rms") == 0) c.norm = CF_NORM_RMSNORM;
        else return fprintf(stderr, "unknown option %s\n", argv[i]), 2;
    }
    cf_transformer *m = cf_transformer_new(&c, 42);
    if (!m) return fprintf(stderr, "error: %s\n", cf_error_message()), 1;

    cf_st_writer *w = cf_st_writer_new();
    for (int i = 0; i < m->params.n; i++) {
        const cf_tensor *p = m->params.items[i];
        cf_st_writer_add_real(w, p->name, p->ndim, p->shape, p->data);
    }
    char *cfg_text = config_json(&c);
    cf_st_writer_meta(w, "config", cfg_text);
    int rc = cf_st_writer_write(w, argv[1]);
    cf_st_writer_free(w);
    free(cfg_text);
    if (rc != 0) return fprintf(stderr, "error: %s\n", cf_error_message()), 1;

    cf_ctx *ctx = cf_ctx_new(1);
    ctx->training = false; /* no dropout: PyTorch's eval mode */
    cf_ctx_set_grad(ctx, false);
    cf_seq_batch b = {.batch = 3, .src_len = 7, .tgt_len = 6, .src = src, .src_lens = src_lens, .tgt_in = tgt_in,
                      .tgt_out = tgt_out, .pad_id = 0};
    cf_tensor *loss = cf_transformer_loss(ctx, m, &b, 0.1, NULL);
    printf("wrote %s (%d tensors, %lld parameters); loss of the fixed batch %.7f\n", argv[1], m->params.n,
           (long long)cf_transformer_num_params(m), (double)loss->data[0]);
    cf_ctx_free(ctx);
    cf_transformer_free(m);
    return 0;
}
