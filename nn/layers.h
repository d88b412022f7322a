/* nn/layers.h - Linear, Norm (LayerNorm/RMSNorm), FFN (ReLU/GELU/SwiGLU) and positional encodings.
 *
 * Usage:
 *     cf_nn_linear fc;
 *     cf_nn_linear_init(&fc, &params, &rng, 128, 512, true, "encoder.layers.0.ffn.fc1");
 *     cf_tensor *h = cf_nn_linear_forward(ctx, &fc, x);          // x [B, T, 128] -> [B, T, 512]
 *
 * Each module registers its parameters in a cf_params under "<prefix>.weight" / "<prefix>.bias"
 * and keeps pointers to them; it owns nothing else (except the sinusoid table).
 */
#ifndef CF_NN_LAYERS_H
#define CF_NN_LAYERS_H

#include "core/ops.h"
#include "nn/config.h"
#include "nn/params.h"

typedef struct cf_nn_linear {
    cf_tensor *weight;          /* [out, in] */
    cf_tensor *bias;            /* [out] or NULL */
} cf_nn_linear;

/* Xavier-uniform weight, zero bias. */
void cf_nn_linear_init(cf_nn_linear *l, cf_params *ps, cf_rng *r, int64_t in, int64_t out, bool bias,
                       const char *prefix);
static inline cf_tensor *cf_nn_linear_forward(cf_ctx *ctx, const cf_nn_linear *l, cf_tensor *x) {
    return cf_linear(ctx, x, l->weight, l->bias);
}

typedef struct cf_nn_norm {
    cf_norm_kind kind;
    double eps;
    cf_tensor *weight;          /* [d], ones */
    cf_tensor *bias;            /* [d], zeros; LayerNorm only */
} cf_nn_norm;

void cf_nn_norm_init(cf_nn_norm *n, cf_params *ps, cf_norm_kind kind, int64_t d, double eps, const char *prefix);
cf_tensor *cf_nn_norm_forward(cf_ctx *ctx, const cf_nn_norm *n, cf_tensor *x);

/* relu/gelu: fc2(dropout(act(fc1(x))));  swiglu: down_proj(dropout(silu(gate_proj(x)) * up_proj(x))). */
typedef struct cf_nn_ffn {
    cf_ffn_kind kind;
    double dropout;
    cf_nn_linear fc1, fc2;      /* relu/gelu: prefix.fc1, prefix.fc2; swiglu: prefix.up_proj, prefix.down_proj */
    cf_nn_linear gate;          /* swiglu: prefix.gate_proj */
} cf_nn_ffn;

void cf_nn_ffn_init(cf_nn_ffn *f, cf_params *ps, cf_rng *r, cf_ffn_kind kind, int64_t d, int64_t d_ff, bool bias,
                    double dropout, const char *prefix);
cf_tensor *cf_nn_ffn_forward(cf_ctx *ctx, const cf_nn_ffn *f, cf_tensor *x);

/* Absolute positional encodings added to token embeddings. Sinusoidal (Vaswani et al.; base
 * 10000, sin on even and cos on odd dims) is a fixed table; learned is a parameter
 * "<prefix>.weight" [max_len, d]; rope and none add nothing here (rope acts inside attention). */
typedef struct cf_nn_positions {
    cf_pos_kind kind;
    int64_t max_len, d;
    cf_tensor *table;           /* sinusoidal: [max_len, d], not a parameter; learned: the parameter */
} cf_nn_positions;

void cf_nn_positions_init(cf_nn_positions *p, cf_params *ps, cf_rng *r, cf_pos_kind kind, int64_t max_len, int64_t d,
                          const char *prefix);
void cf_nn_positions_free(cf_nn_positions *p);
/* The sinusoid value for (pos, i), as the table holds it. */
double cf_sinusoid(int64_t pos, int64_t i, int64_t d);

#endif
