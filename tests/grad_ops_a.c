/* tests/grad_ops_a.c - finite-difference checks of the activations (relu, gelu erf/tanh, silu),
 * softmax, log_softmax, layernorm and rmsnorm, on 1-D to 4-D inputs with odd and size-1 dims. */
#include <math.h>

#include "core/ops.h"
#include "tests/gradcheck.h"
#include "tests/test.h"
#include "tests/testlib.h"

/* Shapes shared by the tests: {ndim, sizes...}. */
static const int64_t shapes[][5] = {
    {1, 7, 0, 0, 0},     /* 1-D */
    {2, 3, 5, 0, 0},
    {2, 4, 1, 0, 0},     /* last dim 1 */
    {3, 2, 1, 17, 0},    /* size-1 middle dim, odd last dim */
    {4, 2, 3, 1, 19},    /* 4-D */
    {2, 1, 33, 0, 0},    /* one row, more than a vector's worth of lanes plus a tail */
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

static cf_tensor *input(int s, double lo, double hi, uint64_t seed) {
    return test_param_uniform("x", (int)shapes[s][0], shapes[s] + 1, lo, hi, seed);
}

/* ---- activations ---- */

typedef enum act_kind { ACT_RELU, ACT_GELU_ERF, ACT_GELU_TANH, ACT_SILU } act_kind;

static cf_tensor *f_act(cf_ctx *ctx, cf_tensor **in, void *user) {
    switch (*(act_kind *)user) {
    case ACT_RELU: return cf_relu(ctx, in[0]);
    case ACT_GELU_ERF: return cf_gelu(ctx, in[0], CF_GELU_ERF);
    case ACT_GELU_TANH: return cf_gelu(ctx, in[0], CF_GELU_TANH);
    default: return cf_silu(ctx, in[0]);
    }
}

TEST(grad_relu) {
    act_kind k = ACT_RELU;
    for (int s = 0; s < N_SHAPES; s++) {
        cf_tensor *x = input(s, -2, 2, 100 + s);
        /* keep away from the kink: finite differences straddling 0 are meaningless */
        for (int64_t i = 0; i < x->numel; i++)
            if (fabs(x->data[i]) < 1e-3) x->data[i] = x->data[i] < 0 ? -0.5 : 0.5;
        GRADCHECK("relu", f_act, ((cf_tensor *[]){x}), 1, &k);
        cf_param_free(x);
    }
}

TEST(grad_gelu_erf) {
    act_kind k = ACT_GELU_ERF;
    for (int s = 0; s < N_SHAPES; s++) {
        cf_tensor *x = input(s, -4, 4, 200 + s);
        GRADCHECK("gelu_erf", f_act, ((cf_tensor *[]){x}), 1, &k);
        cf_param_free(x);
    }
}

TEST(grad_gelu_tanh) {
    act_kind k = ACT_GELU_TANH;
    for (int s = 0; s < N_SHAPES; s++) {
        cf_tensor *x = input(s, -4, 4, 300 + s);
        GRADCHECK("gelu_tanh", f_act, ((cf_tensor *[]){x}), 1, &k);
        cf_param_free(x);
    }
}

TEST(grad_silu) {
    act_kind k = ACT_SILU;
    for (int s = 0; s < N_SHAPES; s++) {
        cf_tensor *x = input(s, -6, 6, 400 + s);
        GRADCHECK("silu", f_act, ((cf_tensor *[]){x}), 1, &k);
        cf_param_free(x);
    }
}

/* ---- softmax ---- */

static cf_tensor *f_softmax(cf_ctx *ctx, cf_tensor **in, void *user) {
    return user ? cf_log_softmax(ctx, in[0]) : cf_softmax(ctx, in[0]);
}

TEST(grad_softmax) {
    for (int s = 0; s < N_SHAPES; s++) {
        cf_tensor *x = input(s, -3, 3, 500 + s);
        x->data[0] += 40; /* a dominant logit: the max subtraction must keep this finite and exact */
        GRADCHECK("softmax", f_softmax, ((cf_tensor *[]){x}), 1, NULL);
        cf_param_free(x);
    }
}

TEST(grad_log_softmax) {
    for (int s = 0; s < N_SHAPES; s++) {
        cf_tensor *x = input(s, -3, 3, 600 + s);
        x->data[0] += 40;
        GRADCHECK("log_softmax", f_softmax, ((cf_tensor *[]){x}), 1, (void *)1);
        cf_param_free(x);
    }
}

/* ---- norms ---- */

typedef struct norm_case {
    bool rms, use_w, use_b;
} norm_case;

static cf_tensor *f_norm(cf_ctx *ctx, cf_tensor **in, void *user) {
    const norm_case *nc = user;
    cf_tensor *w = nc->use_w ? in[1] : NULL, *b = nc->use_b ? in[nc->use_w ? 2 : 1] : NULL;
    return nc->rms ? cf_rmsnorm(ctx, in[0], w, 1e-6) : cf_layernorm(ctx, in[0], w, b, 1e-5);
}

static void check_norm(bool rms, bool use_w, bool use_b) {
    norm_case nc = {rms, use_w, use_b};
    for (int s = 0; s < N_SHAPES; s++) {
        int64_t c = shapes[s][shapes[s][0]];
        /* an offset mean checks the centering; rmsnorm gets a spread that keeps mean(x^2) >> eps */
        cf_tensor *x = input(s, rms ? -2 : 1, rms ? 2 : 4, 700 + s);
        cf_tensor *w = test_param_uniform("w", 1, (int64_t[]){c}, 0.5, 1.5, 800 + s);
        cf_tensor *b = test_param_uniform("b", 1, (int64_t[]){c}, -1, 1, 900 + s);
        cf_tensor *in[3] = {x, NULL, NULL};
        int n = 1;
        if (use_w) in[n++] = w;
        if (use_b) in[n++] = b;
        GRADCHECK(rms ? "rmsnorm" : "layernorm", f_norm, in, n, &nc);
        cf_param_free(x);
        cf_param_free(w);
        cf_param_free(b);
    }
}

TEST(grad_layernorm_affine) { check_norm(false, true, true); }
TEST(grad_layernorm_plain) { check_norm(false, false, false); }
TEST(grad_layernorm_bias_only) { check_norm(false, false, true); }
TEST(grad_rmsnorm_weight) { check_norm(true, true, false); }
TEST(grad_rmsnorm_plain) { check_norm(true, false, false); }

/* Frozen weight (no grad wanted): x's gradient must still use it, and w->grad stays untouched. */
TEST(grad_layernorm_frozen_weight) {
    cf_tensor *x = test_param_uniform("x", 2, (int64_t[]){3, 9}, -1, 1, 1);
    cf_tensor *w = test_param_uniform("w", 1, (int64_t[]){9}, 0.5, 1.5, 2);
    w->requires_grad = false;
    norm_case nc = {false, true, false};
    GRADCHECK("layernorm(frozen w)", f_norm, ((cf_tensor *[]){x, w}), 1, &nc);
    bool zero = true;
    for (int i = 0; i < 9; i++) zero &= w->grad[i] == 0;
    CHECK(zero);
    cf_param_free(x);
    cf_param_free(w);
}
