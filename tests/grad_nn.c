/* tests/grad_nn.c - finite-difference checks of the modules and the whole model (float64 build). */
#include <string.h>

#include "nn/transformer.h"
#include "tests/gradcheck.h"
#include "tests/nn_fixtures.h"
#include "tests/test.h"
#include "tests/testlib.h"

typedef struct model_arg {
    cf_transformer *m;
} model_arg;

static cf_tensor *f_model_loss(cf_ctx *ctx, cf_tensor **in, void *user) {
    (void)in;
    cf_seq_batch b = tiny_batch();
    return cf_transformer_loss(ctx, ((model_arg *)user)->m, &b, 0.1, NULL);
}

/* Whole-model gradient of the label-smoothed loss w.r.t. every parameter; in training mode (dropout
 * is 0) an MoE model's loss includes its load-balancing term. */
static void check_model_mode(cf_model_config c, const char *what, bool training) {
    cf_transformer *m = cf_transformer_new(&c, 11);
    CHECK_MSG(m != NULL, "%s: %s", what, cf_error_message());
    if (!m) return;
    model_arg arg = {m};
    char name[128];
    snprintf(name, sizeof name, "model %s", what);
    gradcheck_opts o = {.training = training};
    GRADCHECK_OPTS(name, f_model_loss, m->params.items, m->params.n, &arg, &o);
    cf_transformer_free(m);
}

static void check_model(cf_model_config c, const char *what) { check_model_mode(c, what, false); }

TEST(grad_model_attention_variants) {
    const char *names[] = {"mha", "gqa", "mqa", "mla"};
    for (int kind = 0; kind < 4; kind++) check_model(tiny_model_config((cf_attn_kind)kind), names[kind]);
    cf_model_config c = tiny_model_config(CF_ATTN_MLA);
    c.q_lora_rank = 5;
    check_model(c, "mla q_lora");
}

TEST(grad_model_norms_positions_ffn) {
    cf_model_config c = tiny_model_config(CF_ATTN_MHA);
    c.pre_norm = false;
    check_model(c, "post-LN");
    c = tiny_model_config(CF_ATTN_GQA);
    c.norm = CF_NORM_RMSNORM;
    check_model(c, "rmsnorm");
    c = tiny_model_config(CF_ATTN_MHA);
    c.pos_encoding = CF_POS_LEARNED;
    check_model(c, "learned positions");
    c.pos_encoding = CF_POS_ROPE;
    check_model(c, "rope");
    c = tiny_model_config(CF_ATTN_MHA);
    c.activation = CF_FFN_SWIGLU;
    c.share_embeddings = false;
    c.tie_output = false;
    c.scale_embedding = false;
    check_model(c, "swiglu, separate embeddings and output");
    c = tiny_model_config(CF_ATTN_MQA);
    c.activation = CF_FFN_GELU;
    c.window = 2;
    c.enc_layers = 2;
    c.dec_layers = 2;
    check_model(c, "gelu, window, 2+2 layers");
}

/* Relative positions (shared and per-head tables; relative keys in both self-attentions), QK-norm
 * (with RoPE, and GQA), and the mixture of experts (with its load-balancing loss). */
TEST(grad_model_course_options) {
    cf_model_config c = tiny_model_config(CF_ATTN_MHA);
    c.pos_encoding = CF_POS_RELATIVE;
    c.rel_clip = 2;
    check_model(c, "relative, shared table");
    c = tiny_model_config(CF_ATTN_GQA);
    c.pos_encoding = CF_POS_RELATIVE;
    c.rel_clip = 1;
    c.rel_per_head = true;
    check_model(c, "relative, per-head tables, gqa");
    c = tiny_model_config(CF_ATTN_MLA);
    c.pos_encoding = CF_POS_RELATIVE;
    c.rel_clip = 3;
    check_model(c, "relative, mla");
    c = tiny_model_config(CF_ATTN_GQA);
    c.qk_norm = true;
    c.pos_encoding = CF_POS_ROPE;
    check_model(c, "qk_norm, rope, gqa");
    c = tiny_model_config(CF_ATTN_MHA);
    c.num_experts = 3;
    c.num_experts_per_token = 2;
    c.moe_d_ff = 5;
    c.moe_aux_weight = 0.5;
    check_model_mode(c, "moe top-2 of 3, aux loss", true);
    c.activation = CF_FFN_SWIGLU;
    c.n_shared_experts = 1;
    c.num_experts_per_token = 1;
    check_model_mode(c, "moe swiglu top-1, a shared expert", true);
}
