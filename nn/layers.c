/* nn/layers.c - Linear, Norm, FFN and positional encodings. */
#include "nn/layers.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void cf_nn_linear_init(cf_nn_linear *l, cf_params *ps, cf_rng *r, int64_t in, int64_t out, bool bias,
                       const char *prefix) {
    l->weight = cf_params_add(ps, 2, (int64_t[]){out, in}, "%s.weight", prefix);
    cf_init_xavier_uniform(l->weight, r);
    l->bias = NULL;
    if (bias) {
        l->bias = cf_params_add(ps, 1, (int64_t[]){out}, "%s.bias", prefix);
        cf_init_const(l->bias, 0);
    }
}

void cf_nn_norm_init(cf_nn_norm *n, cf_params *ps, cf_norm_kind kind, int64_t d, double eps, const char *prefix) {
    n->kind = kind;
    n->eps = eps;
    n->weight = cf_params_add(ps, 1, (int64_t[]){d}, "%s.weight", prefix);
    cf_init_const(n->weight, 1);
    n->bias = NULL;
    if (kind == CF_NORM_LAYERNORM) {
        n->bias = cf_params_add(ps, 1, (int64_t[]){d}, "%s.bias", prefix);
        cf_init_const(n->bias, 0);
    }
}

cf_tensor *cf_nn_norm_forward(cf_ctx *ctx, const cf_nn_norm *n, cf_tensor *x) {
    return n->kind == CF_NORM_LAYERNORM ? cf_layernorm(ctx, x, n->weight, n->bias, n->eps)
                                        : cf_rmsnorm(ctx, x, n->weight, n->eps);
}

void cf_nn_ffn_init(cf_nn_ffn *f, cf_params *ps, cf_rng *r, cf_ffn_kind kind, int64_t d, int64_t d_ff, bool bias,
                    double dropout, const char *prefix) {
    char name[256];
    f->kind = kind;
    f->dropout = dropout;
    memset(&f->gate, 0, sizeof f->gate);
    if (kind == CF_FFN_SWIGLU) {
        snprintf(name, sizeof name, "%s.gate_proj", prefix);
        cf_nn_linear_init(&f->gate, ps, r, d, d_ff, bias, name);
        snprintf(name, sizeof name, "%s.up_proj", prefix);
        cf_nn_linear_init(&f->fc1, ps, r, d, d_ff, bias, name);
        snprintf(name, sizeof name, "%s.down_proj", prefix);
        cf_nn_linear_init(&f->fc2, ps, r, d_ff, d, bias, name);
    } else {
        snprintf(name, sizeof name, "%s.fc1", prefix);
        cf_nn_linear_init(&f->fc1, ps, r, d, d_ff, bias, name);
        snprintf(name, sizeof name, "%s.fc2", prefix);
        cf_nn_linear_init(&f->fc2, ps, r, d_ff, d, bias, name);
    }
}

cf_tensor *cf_nn_ffn_forward(cf_ctx *ctx, const cf_nn_ffn *f, cf_tensor *x) {
    cf_tensor *h = cf_nn_linear_forward(ctx, &f->fc1, x);
    switch (f->kind) {
    case CF_FFN_RELU: return cf_nn_linear_forward(ctx, &f->fc2, cf_relu_dropout(ctx, h, f->dropout)); /* one pass */
    case CF_FFN_GELU: h = cf_gelu(ctx, h, CF_GELU_ERF); break;
    case CF_FFN_SWIGLU: h = cf_mul(ctx, cf_silu(ctx, cf_nn_linear_forward(ctx, &f->gate, x)), h); break;
    }
    h = cf_dropout(ctx, h, f->dropout);
    return cf_nn_linear_forward(ctx, &f->fc2, h);
}

double cf_sinusoid(int64_t pos, int64_t i, int64_t d) {
    /* PE(pos, 2k) = sin(pos / 10000^(2k/d)), PE(pos, 2k+1) = cos(pos / 10000^(2k/d)) */
    double angle = (double)pos / pow(10000.0, (double)(i - i % 2) / (double)d);
    return i % 2 == 0 ? sin(angle) : cos(angle);
}

void cf_nn_positions_init(cf_nn_positions *p, cf_params *ps, cf_rng *r, cf_pos_kind kind, int64_t max_len, int64_t d,
                          const char *prefix) {
    p->kind = kind;
    p->max_len = max_len;
    p->d = d;
    p->table = NULL;
    if (kind == CF_POS_SINUSOIDAL) {
        p->table = cf_param_new("sinusoid", 2, (int64_t[]){max_len, d});
        p->table->requires_grad = false;
        for (int64_t pos = 0; pos < max_len; pos++)
            for (int64_t i = 0; i < d; i++) p->table->data[pos * d + i] = (cf_real)cf_sinusoid(pos, i, d);
    } else if (kind == CF_POS_LEARNED) {
        p->table = cf_params_add(ps, 2, (int64_t[]){max_len, d}, "%s.weight", prefix);
        cf_init_normal(p->table, 0.02, r);
    }
}

void cf_nn_positions_free(cf_nn_positions *p) {
    if (p->kind == CF_POS_SINUSOIDAL) cf_param_free(p->table);
    p->table = NULL;
}

