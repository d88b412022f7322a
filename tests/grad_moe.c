/* tests/grad_moe.c - finite-difference checks of the mixture-of-experts ops and layer (float64).
 *
 * Top-k routing is piecewise: a probe could cross a tie between two logits and jump. With logits
 * drawn from spread-out random weights the gaps are ~1e-2, far beyond the 1e-6 step.
 */
#include <string.h>

#include "core/ops.h"
#include "nn/moe.h"
#include "tests/gradcheck.h"
#include "tests/test.h"
#include "tests/testlib.h"

typedef struct moe_case {
    const char *name;
    int64_t N, d, E, k, F;
    bool bias;
} moe_case;

/* The routed experts by hand from the ops: combine(fc2(relu(fc1(dispatch(x)))), gates). */
static cf_tensor *f_moe_ops(cf_ctx *ctx, cf_tensor **in, void *user) {
    const moe_case *c = user;
    cf_tensor *x = in[0], *wr = in[1];
    cf_moe_routing *r = cf_scratch(ctx, sizeof *r);
    cf_tensor *gates = cf_moe_route(ctx, cf_linear(ctx, x, wr, NULL), c->k, r);
    cf_tensor *h = cf_grouped_linear(ctx, cf_moe_dispatch(ctx, x, r), in[2], c->bias ? in[3] : NULL, r->offset);
    h = cf_grouped_linear(ctx, cf_relu(ctx, h), in[4], c->bias ? in[5] : NULL, r->offset);
    return cf_moe_combine(ctx, h, gates, r);
}

/* The load-balancing loss alone, as a function of the router. */
static cf_tensor *f_moe_aux(cf_ctx *ctx, cf_tensor **in, void *user) {
    const moe_case *c = user;
    cf_tensor *logits = cf_linear(ctx, in[0], in[1], NULL);
    cf_moe_routing *r = cf_scratch(ctx, sizeof *r);
    cf_moe_route(ctx, logits, c->k, r);
    return cf_moe_aux_loss(ctx, logits, r);
}

TEST(grad_moe_ops) {
    const moe_case cases[] = {
        {"top2_of_4", 7, 5, 4, 2, 6, true},
        {"top1_of_3", 9, 4, 3, 1, 5, false},
        {"all_experts", 5, 3, 3, 3, 4, true},
        {"one_expert", 4, 3, 1, 1, 2, true},
        {"one_token", 1, 3, 4, 2, 3, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const moe_case *c = &cases[i];
        uint64_t s = 300 + 10 * i;
        cf_tensor *x = test_param_uniform("x", 2, (int64_t[]){c->N, c->d}, -1, 1, s);
        cf_tensor *wr = test_param_uniform("wr", 2, (int64_t[]){c->E, c->d}, -2, 2, s + 1);
        cf_tensor *w1 = test_param_uniform("w1", 3, (int64_t[]){c->E, c->F, c->d}, -1, 1, s + 2);
        cf_tensor *b1 = test_param_uniform("b1", 2, (int64_t[]){c->E, c->F}, -0.5, 0.5, s + 3);
        cf_tensor *w2 = test_param_uniform("w2", 3, (int64_t[]){c->E, c->d, c->F}, -1, 1, s + 4);
        cf_tensor *b2 = test_param_uniform("b2", 2, (int64_t[]){c->E, c->d}, -0.5, 0.5, s + 5);
        cf_tensor *in[6] = {x, wr, w1, b1, w2, b2};
        char name[96];
        snprintf(name, sizeof name, "moe ops %s", c->name);
        GRADCHECK(name, f_moe_ops, in, c->bias ? 6 : 5, (void *)c); /* without biases b1 is probed, unused */
        snprintf(name, sizeof name, "moe aux %s", c->name);
        GRADCHECK(name, f_moe_aux, in, 2, (void *)c);
        for (int t = 0; t < 6; t++) cf_param_free(in[t]);
    }
}

/* The whole layer: router, experts of each activation, shared experts, with and without biases. */
typedef struct layer_arg {
    cf_nn_moe moe;
    cf_moe_collector *col;
} layer_arg;

static cf_tensor *f_moe_layer(cf_ctx *ctx, cf_tensor **in, void *user) {
    layer_arg *a = user;
    cf_moe_collector_begin(a->col);
    cf_tensor *y = cf_nn_moe_forward(ctx, &a->moe, in[0], a->col);
    cf_tensor *aux = cf_moe_collector_aux(ctx, a->col); /* training mode: the loss is recorded */
    return cf_add(ctx, y, cf_scale(ctx, aux, 0.3));     /* broadcast over y: both get checked */
}

TEST(grad_moe_layer) {
    const struct { cf_ffn_kind kind; int64_t E, k, shared; bool bias; } cases[] = {
        {CF_FFN_RELU, 4, 2, 0, true}, {CF_FFN_GELU, 3, 1, 1, false}, {CF_FFN_SWIGLU, 4, 2, 2, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cf_model_config c = cf_model_config_default();
        c.d_model = 6;
        c.d_ff = 5;
        c.activation = cases[i].kind;
        c.num_experts = cases[i].E;
        c.num_experts_per_token = cases[i].k;
        c.n_shared_experts = cases[i].shared;
        c.moe_d_ff = 4;
        c.bias = cases[i].bias;
        c.dropout = 0;
        cf_params ps = {0};
        cf_rng r = cf_rng_init(5 + i, CF_RNG_STREAM_INIT);
        layer_arg a = {.col = cf_moe_collector_new(1, c.num_experts)};
        cf_nn_moe_init(&a.moe, &ps, &r, &c, 0, "ffn");
        for (int p = 0; p < ps.n; p++) /* spread the router so no two logits are close */
            if (strstr(ps.items[p]->name, "router")) test_fill_uniform(ps.items[p]->data, ps.items[p]->numel, -2, 2, 9);
        cf_tensor *x = test_param_uniform("x", 3, (int64_t[]){2, 5, 6}, -1, 1, 40 + i);
        cf_tensor *in[16] = {x};
        for (int p = 0; p < ps.n && p < 15; p++) in[p + 1] = ps.items[p];
        char name[64];
        snprintf(name, sizeof name, "moe layer %s", cf_ffn_kind_name(cases[i].kind));
        gradcheck_opts o = {.training = true};
        GRADCHECK_OPTS(name, f_moe_layer, in, ps.n + 1, &a, &o);
        cf_param_free(x);
        cf_params_free(&ps);
        cf_moe_collector_free(a.col);
    }
}
