/* nn/moe.c - the mixture-of-experts FFN (nn/moe.h) on core's routing, dispatch, grouped-linear and
 * combine ops, and the collector of its losses and expert loads. */
#include "nn/moe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- collector ---- */

cf_moe_collector *cf_moe_collector_new(int n_layers, int64_t n_experts) {
    cf_moe_collector *c = cf_xcalloc(1, sizeof *c);
    c->n_layers = n_layers;
    c->n_experts = n_experts;
    c->aux = cf_xcalloc((size_t)(n_layers > 0 ? n_layers : 1), sizeof *c->aux);
    c->counts = cf_xcalloc((size_t)(n_layers * n_experts > 0 ? n_layers * n_experts : 1), sizeof *c->counts);
    return c;
}

void cf_moe_collector_free(cf_moe_collector *c) {
    if (!c) return;
    free(c->aux);
    free(c->counts);
    free(c);
}

void cf_moe_collector_begin(cf_moe_collector *c) {
    for (int l = 0; l < c->n_layers; l++) c->aux[l] = NULL;
}

cf_tensor *cf_moe_collector_aux(cf_ctx *ctx, cf_moe_collector *c) {
    cf_tensor *sum = NULL;
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) { /* layers in order: a fixed sum */
        if (!c->aux[l]) continue;
        sum = sum ? cf_add(ctx, sum, c->aux[l]) : c->aux[l];
        n++;
    }
    return n > 1 ? cf_scale(ctx, sum, 1.0 / n) : sum;
}

void cf_moe_collector_take(cf_moe_collector *c, cf_moe_load *out) {
    int64_t E = c->n_experts;
    out->n_layers = c->n_layers;
    out->n_experts = E;
    out->share = cf_xcalloc((size_t)(c->n_layers * E > 0 ? c->n_layers * E : 1), sizeof *out->share);
    for (int l = 0; l < c->n_layers; l++) {
        int64_t total = 0;
        for (int64_t e = 0; e < E; e++) total += c->counts[l * E + e];
        for (int64_t e = 0; e < E; e++)
            out->share[l * E + e] = total ? (double)c->counts[l * E + e] / (double)total : 0;
    }
    out->aux = c->aux_n ? c->aux_sum / (double)c->aux_n : 0;
    memset(c->counts, 0, (size_t)(c->n_layers * E) * sizeof *c->counts);
    c->aux_sum = 0;
    c->aux_n = 0;
}

void cf_moe_load_free(cf_moe_load *l) {
    free(l->share);
    l->share = NULL;
}

/* ---- the layer ---- */

/* A stacked weight [E, out, in], each expert's slice Xavier-uniform as an [out, in] matrix, and its
 * zero bias [E, out] (when bias). */
static cf_tensor *experts_linear(cf_params *ps, cf_rng *r, int64_t E, int64_t in, int64_t out, bool bias,
                                 const char *prefix, const char *name, cf_tensor **b) {
    cf_tensor *w = cf_params_add(ps, 3, (int64_t[]){E, out, in}, "%s.experts.%s.weight", prefix, name);
    for (int64_t e = 0; e < E; e++) {
        cf_tensor slice = cf_tensor_header(2, (int64_t[]){out, in});
        slice.data = w->data + e * out * in;
        cf_init_xavier_uniform(&slice, r);
    }
    *b = NULL;
    if (bias) {
        *b = cf_params_add(ps, 2, (int64_t[]){E, out}, "%s.experts.%s.bias", prefix, name);
        cf_init_const(*b, 0);
    }
    return w;
}

void cf_nn_moe_init(cf_nn_moe *m, cf_params *ps, cf_rng *r, const cf_model_config *cfg, int layer, const char *prefix) {
    memset(m, 0, sizeof *m);
    int64_t d = cfg->d_model, E = cfg->num_experts, F = cfg->moe_d_ff ? cfg->moe_d_ff : cfg->d_ff;
    m->d = d;
    m->n_experts = E;
    m->k = cfg->num_experts_per_token;
    m->d_ff = F;
    m->n_shared = cfg->n_shared_experts;
    m->kind = cfg->activation;
    m->dropout = cfg->dropout;
    m->layer = layer;
    /* registration order: router, routed experts (as the dense FFN orders its matrices), shared */
    m->router = cf_params_add(ps, 2, (int64_t[]){E, d}, "%s.router.weight", prefix);
    cf_init_xavier_uniform(m->router, r);
    if (m->kind == CF_FFN_SWIGLU) {
        m->wg = experts_linear(ps, r, E, d, F, cfg->bias, prefix, "gate_proj", &m->bg);
        m->w1 = experts_linear(ps, r, E, d, F, cfg->bias, prefix, "up_proj", &m->b1);
        m->w2 = experts_linear(ps, r, E, F, d, cfg->bias, prefix, "down_proj", &m->b2);
    } else {
        m->w1 = experts_linear(ps, r, E, d, F, cfg->bias, prefix, "fc1", &m->b1);
        m->w2 = experts_linear(ps, r, E, F, d, cfg->bias, prefix, "fc2", &m->b2);
    }
    if (m->n_shared > 0) {
        char name[256];
        snprintf(name, sizeof name, "%s.shared_experts", prefix);
        cf_nn_ffn_init(&m->shared, ps, r, m->kind, d, m->n_shared * F, cfg->bias, cfg->dropout, name);
    }
}

/* The routed experts on their dispatched rows xs [N*k, d] -> [N*k, d]: the dense FFN's equations,
 * one grouped linear per matrix. */
static cf_tensor *experts_forward(cf_ctx *ctx, const cf_nn_moe *m, cf_tensor *xs, const int64_t *offset) {
    cf_tensor *h = cf_grouped_linear(ctx, xs, m->w1, m->b1, offset);
    switch (m->kind) {
    case CF_FFN_RELU: h = cf_relu_dropout(ctx, h, m->dropout); break;
    case CF_FFN_GELU: h = cf_dropout(ctx, cf_gelu(ctx, h, CF_GELU_ERF), m->dropout); break;
    case CF_FFN_SWIGLU:
        h = cf_mul(ctx, cf_silu(ctx, cf_grouped_linear(ctx, xs, m->wg, m->bg, offset)), h);
        h = cf_dropout(ctx, h, m->dropout);
        break;
    }
    return cf_grouped_linear(ctx, h, m->w2, m->b2, offset);
}

cf_tensor *cf_nn_moe_forward(cf_ctx *ctx, const cf_nn_moe *m, cf_tensor *x, cf_moe_collector *col) {
    int64_t N = cf_rows(x), d = m->d;
    cf_tensor *x2 = cf_reshape(ctx, x, 2, (int64_t[]){N, d});
    cf_tensor *logits = cf_linear(ctx, x2, m->router, NULL); /* [N, E] */
    cf_moe_routing *r = cf_scratch(ctx, sizeof *r);
    cf_tensor *gates = cf_moe_route(ctx, logits, m->k, r);
    cf_tensor *ys = experts_forward(ctx, m, cf_moe_dispatch(ctx, x2, r), r->offset);
    cf_tensor *y = cf_moe_combine(ctx, ys, gates, r);
    if (m->n_shared > 0) y = cf_add(ctx, y, cf_nn_ffn_forward(ctx, &m->shared, x2));
    if (col && ctx->training && m->layer >= 0 && m->layer < col->n_layers) {
        cf_tensor *aux = cf_moe_aux_loss(ctx, logits, r);
        col->aux[m->layer] = aux;
        col->aux_sum += aux->data[0];
        col->aux_n++;
        for (int64_t e = 0; e < m->n_experts; e++) col->counts[m->layer * m->n_experts + e] += r->offset[e + 1] - r->offset[e];
    }
    return cf_reshape(ctx, y, x->ndim, x->shape);
}

static int64_t numel_or_0(const cf_tensor *t) { return t ? t->numel : 0; }

/* The shared experts' parameters. */
static int64_t shared_params(const cf_nn_moe *m) {
    if (m->n_shared == 0) return 0;
    const cf_nn_linear *ls[3] = {&m->shared.fc1, &m->shared.fc2, &m->shared.gate};
    int64_t n = 0;
    for (int i = 0; i < 3; i++) n += numel_or_0(ls[i]->weight) + numel_or_0(ls[i]->bias);
    return n;
}

int64_t cf_nn_moe_params(const cf_nn_moe *m) {
    return m->router->numel + m->w1->numel + m->w2->numel + numel_or_0(m->wg) + numel_or_0(m->b1) +
           numel_or_0(m->b2) + numel_or_0(m->bg) + shared_params(m);
}

int64_t cf_nn_moe_active_params(const cf_nn_moe *m) {
    int64_t routed = cf_nn_moe_params(m) - m->router->numel - shared_params(m);
    return m->router->numel + m->k * (routed / m->n_experts) + shared_params(m);
}

double cf_nn_moe_flops(const cf_nn_moe *m, int64_t rows) {
    int64_t mats = m->kind == CF_FFN_SWIGLU ? 3 : 2;
    double routed = 2.0 * (double)rows * (double)m->k * (double)(mats * m->d * m->d_ff);
    double shared = 2.0 * (double)rows * (double)(mats * m->d * m->d_ff * m->n_shared);
    return 2.0 * (double)rows * (double)m->router->numel + routed + shared;
}
