/* core/ops_activation.c - relu, gelu (exact erf form and tanh approximation) and silu.
 *
 * Elementwise over the flat tensor x [numel] -> out [numel]; the backward passes recompute what they
 * need from x instead of saving intermediates (no extra activation memory). Formulas follow
 * PyTorch's (aten GeluKernel / SiLU / threshold_backward). Loops are branch-free so that gcc
 * vectorizes them; transcendental functions come from core/vecmath.h.
 */
#include "core/kernel.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "core/vecmath.h"

#define SQRT1_2 0.70710678118654752440      /* 1/sqrt(2) */
#define INV_SQRT_2PI 0.39894228040143267794 /* 1/sqrt(2 pi) */
#define GELU_BETA 0.79788456080286535588    /* sqrt(2/pi) */
#define GELU_KAPPA 0.044715

/* ---- relu ---- */

static void relu_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    if (!x->requires_grad) return;
    const cf_real *xd = x->data, *g = node->out->grad; /* [numel] */
    cf_real *dx = cf_grad(ctx, x);
    int64_t n = x->numel;
    /* PyTorch's threshold_backward: 0 where x <= 0 (so exactly at 0 too), g elsewhere (NaN too). */
    CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t i = 0; i < n; i++) {
        dx[i] += xd[i] <= 0 ? (cf_real)0 : g[i];
    });
}

cf_tensor *cf_relu(cf_ctx *ctx, cf_tensor *x) {
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, x->shape);
    const cf_real *xd = x->data;
    cf_real *o = out->data;
    int64_t n = x->numel;
    /* written so that NaN propagates (as in PyTorch) instead of being hidden as 0 */
    CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t i = 0; i < n; i++) {
        o[i] = xd[i] < 0 ? (cf_real)0 : xd[i];
    });
    cf_tape_record(ctx, "relu", relu_backward, out, 1, (cf_tensor *[]){x});
    return out;
}

/* ---- gelu ---- */

/* erf form: x * Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2; d/dx = Phi(x) + x * phi(x). */
static void gelu_erf_forward(const cf_real *x, cf_real *o, int64_t n) {
    const cf_real k = (cf_real)SQRT1_2;
    CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t i = 0; i < n; i++) {
        o[i] = (cf_real)0.5 * x[i] * ((cf_real)1 + cf_verf(x[i] * k));
    });
}

static void gelu_erf_backward(const cf_real *x, const cf_real *g, cf_real *dx, int64_t n) {
    const cf_real k = (cf_real)SQRT1_2, a = (cf_real)INV_SQRT_2PI;
    CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t i = 0; i < n; i++) {
        cf_real cdf = (cf_real)0.5 * ((cf_real)1 + cf_verf(x[i] * k));
        cf_real pdf = a * cf_vexp((cf_real)-0.5 * x[i] * x[i]);
        dx[i] += g[i] * (cdf + x[i] * pdf);
    });
}

/* tanh form: x/2 * (1 + tanh(u)), u = beta (x + kappa x^3);
 * d/dx = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) beta (1 + 3 kappa x^2). */
static void gelu_tanh_forward(const cf_real *x, cf_real *o, int64_t n) {
    const cf_real beta = (cf_real)GELU_BETA, kappa = (cf_real)GELU_KAPPA;
    CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t i = 0; i < n; i++) {
        cf_real v = x[i], u = beta * (v + kappa * v * v * v);
        o[i] = (cf_real)0.5 * v * ((cf_real)1 + cf_vtanh(u));
    });
}

static void gelu_tanh_backward(const cf_real *x, const cf_real *g, cf_real *dx, int64_t n) {
    const cf_real beta = (cf_real)GELU_BETA, kappa = (cf_real)GELU_KAPPA;
    CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t i = 0; i < n; i++) {
        cf_real v = x[i], v2 = v * v, t = cf_vtanh(beta * (v + kappa * v2 * v));
        cf_real left = (cf_real)0.5 * ((cf_real)1 + t);
        cf_real right = (cf_real)0.5 * v * ((cf_real)1 - t * t) * beta * ((cf_real)1 + (cf_real)3 * kappa * v2);
        dx[i] += g[i] * (left + right);
    });
}

static void gelu_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    if (!x->requires_grad) return;
    cf_real *dx = cf_grad(ctx, x);
    if ((cf_gelu_kind)node->i[0] == CF_GELU_TANH)
        gelu_tanh_backward(x->data, node->out->grad, dx, x->numel);
    else
        gelu_erf_backward(x->data, node->out->grad, dx, x->numel);
}

cf_tensor *cf_gelu(cf_ctx *ctx, cf_tensor *x, cf_gelu_kind kind) {
    CF_ASSERT(kind == CF_GELU_ERF || kind == CF_GELU_TANH, "gelu: unknown kind %d", (int)kind);
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, x->shape);
    if (kind == CF_GELU_TANH)
        gelu_tanh_forward(x->data, out->data, x->numel);
    else
        gelu_erf_forward(x->data, out->data, x->numel);
    cf_node *node = cf_tape_record(ctx, kind == CF_GELU_TANH ? "gelu_tanh" : "gelu", gelu_backward, out, 1,
                                   (cf_tensor *[]){x});
    if (node) node->i[0] = kind;
    return out;
}

/* ---- silu ---- */

/* x * s, s = sigmoid(x); d/dx = s (1 + x (1 - s)). */
static void silu_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    if (!x->requires_grad) return;
    const cf_real *xd = x->data, *g = node->out->grad; /* [numel] */
    cf_real *dx = cf_grad(ctx, x);
    int64_t n = x->numel;
    CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t i = 0; i < n; i++) {
        cf_real s = (cf_real)1 / ((cf_real)1 + cf_vexp(-xd[i]));
        dx[i] += g[i] * s * ((cf_real)1 + xd[i] * ((cf_real)1 - s));
    });
}

cf_tensor *cf_silu(cf_ctx *ctx, cf_tensor *x) {
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, x->shape);
    const cf_real *xd = x->data;
    cf_real *o = out->data;
    int64_t n = x->numel;
    CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t i = 0; i < n; i++) {
        o[i] = xd[i] / ((cf_real)1 + cf_vexp(-xd[i]));
    });
    cf_tape_record(ctx, "silu", silu_backward, out, 1, (cf_tensor *[]){x});
    return out;
}
