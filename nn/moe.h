/* nn/moe.h - a mixture-of-experts FFN: a learned router, top-k experts per token, shared experts.
 *
 * Usage:
 *     cf_moe_collector *col = cf_moe_collector_new(n_moe_layers, cfg.num_experts);
 *     cf_nn_moe moe;
 *     cf_nn_moe_init(&moe, &params, &rng, &cfg, 0, "encoder.layers.0.ffn");   // layer 0 of col
 *     cf_tensor *y = cf_nn_moe_forward(ctx, &moe, x, col);                    // x [B, T, d] -> [B, T, d]
 *     cf_tensor *aux = cf_moe_collector_aux(ctx, col);     // mean load-balancing loss of this forward
 *     cf_moe_load load;
 *     cf_moe_collector_take(col, &load);                   // expert shares since the last take
 *     cf_moe_collector_free(col);
 *
 * The layer (docs/model.md, "Mixture of experts"), for rows x [N, d] (padding rows included):
 *     logits = x W_r^T                     router.weight [E, d]
 *     the k experts with the largest logits, gates = softmax over those k logits
 *     y = sum_s gate_s FFN_{expert_s}(x) + FFN_shared(x)
 * Each routed expert is an FFN of the model's activation and width moe_d_ff, stored stacked:
 * experts.fc1.weight [E, F, d], experts.fc2.weight [E, d, F] (swiglu: experts.gate_proj,
 * experts.up_proj, experts.down_proj) with biases [E, F] / [E, d]; the n_shared_experts shared
 * experts are one dense FFN of width n_shared * F (shared_experts.*, DeepSeekMoE's layout).
 * Training forwards (ctx->training) record in the collector each layer's load-balancing loss
 * (cf_moe_aux_loss) and how many tokens each expert received.
 */
#ifndef CF_NN_MOE_H
#define CF_NN_MOE_H

#include "nn/layers.h"

typedef struct cf_nn_moe {
    int64_t d, n_experts, k, d_ff, n_shared;
    cf_ffn_kind kind;
    double dropout;
    int layer;                          /* this layer's slot in the collector */
    cf_tensor *router;                  /* [E, d] */
    cf_tensor *w1, *b1, *w2, *b2;       /* fc1/up_proj [E, F, d] [E, F]; fc2/down_proj [E, d, F] [E, d] */
    cf_tensor *wg, *bg;                 /* swiglu: gate_proj [E, F, d] [E, F] */
    cf_nn_ffn shared;                   /* n_shared > 0 */
} cf_nn_moe;

/* What the training forwards of one model saw: per layer, assignments to each expert. */
typedef struct cf_moe_collector {
    int n_layers;
    int64_t n_experts;
    cf_tensor **aux;                    /* [n_layers] this forward's losses (arena tensors), or NULL */
    int64_t *counts;                    /* [n_layers, E] assignments since the last take */
    double aux_sum;                     /* sum of the layers' losses since the last take ... */
    int64_t aux_n;                      /* ... over this many layer forwards */
} cf_moe_collector;

/* Expert shares since the last take: share[l * E + e] = assignments of expert e in layer l / all
 * assignments of layer l (0 when the layer saw none); aux = mean load-balancing loss. */
typedef struct cf_moe_load {
    int n_layers;
    int64_t n_experts;
    double *share;                      /* [n_layers, E], malloc'ed; cf_moe_load_free */
    double aux;
} cf_moe_load;

cf_moe_collector *cf_moe_collector_new(int n_layers, int64_t n_experts);
void cf_moe_collector_free(cf_moe_collector *c);
/* Forget this forward's losses (call before a forward). */
void cf_moe_collector_begin(cf_moe_collector *c);
/* The mean of this forward's layer losses ([1]), or NULL if none was recorded. */
cf_tensor *cf_moe_collector_aux(cf_ctx *ctx, cf_moe_collector *c);
/* The shares and mean loss since the last take; resets them. */
void cf_moe_collector_take(cf_moe_collector *c, cf_moe_load *out);
void cf_moe_load_free(cf_moe_load *l);

void cf_nn_moe_init(cf_nn_moe *m, cf_params *ps, cf_rng *r, const cf_model_config *cfg, int layer, const char *prefix);
/* x [..., d] -> [..., d]. col may be NULL (nothing recorded). */
cf_tensor *cf_nn_moe_forward(cf_ctx *ctx, const cf_nn_moe *m, cf_tensor *x, cf_moe_collector *col);
/* All of the layer's parameters, and those one token uses (router, k experts, shared experts). */
int64_t cf_nn_moe_params(const cf_nn_moe *m);
int64_t cf_nn_moe_active_params(const cf_nn_moe *m);
double cf_nn_moe_flops(const cf_nn_moe *m, int64_t rows);

#endif
