/* tests/test_moe.c - the mixture of experts: routing against a brute-force reference, the
 * load-balancing loss's fixed points, the collector's loads, parameter names and counts, and
 * bit-identical results on 1-4 threads. (Gradients: tests/grad_moe.c; PyTorch: test_model_ref.c.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "nn/transformer.h"
#include "tests/nn_fixtures.h"
#include "tests/test.h"
#include "tests/testlib.h"

/* Every token's experts are its k largest logits in descending order, gates are the softmax of
 * those logits, the rows of an expert list its tokens in increasing order, and every (token, slot)
 * maps to one row that maps back. */
TEST(moe_route_matches_brute_force) {
    enum { N = 37, E = 6, K = 3 };
    cf_tensor *z = test_param_uniform("z", 2, (int64_t[]){N, E}, -3, 3, 1);
    cf_ctx *ctx = cf_ctx_new(1);
    cf_moe_routing r;
    cf_tensor *g = cf_moe_route(ctx, z, K, &r);
    int64_t rows_seen = 0;
    for (int t = 0; t < N; t++) {
        const cf_real *zt = z->data + t * E;
        double gsum = 0, denom = 0;
        for (int s = 0; s < K; s++) denom += exp((double)zt[r.expert[t * K + s]]);
        for (int s = 0; s < K; s++) {
            int e = r.expert[t * K + s];
            int bigger = 0; /* brute force: exactly s logits exceed the slot-s expert's */
            for (int j = 0; j < E; j++) bigger += zt[j] > zt[e];
            CHECK_MSG(bigger == s, "token %d slot %d: expert %d has %d larger logits", t, s, e, bigger);
            CHECK(fabs((double)g->data[t * K + s] - exp((double)zt[e]) / denom) < 1e-6);
            gsum += g->data[t * K + s];
            int row = r.slot_row[t * K + s];
            CHECK(row >= r.offset[e] && row < r.offset[e + 1] && r.row_token[row] == t);
        }
        CHECK(fabs(gsum - 1) < 1e-6);
    }
    for (int e = 0; e < E; e++) {
        for (int64_t row = r.offset[e] + 1; row < r.offset[e + 1]; row++) CHECK(r.row_token[row - 1] < r.row_token[row]);
        rows_seen += r.offset[e + 1] - r.offset[e];
    }
    CHECK(rows_seen == N * K && r.offset[0] == 0 && r.offset[E] == N * K);
    cf_ctx_free(ctx);
    cf_param_free(z);
}

/* Switch's loss is E sum_e f_e P_e: 1 when routing and probabilities are uniform, E when one
 * expert takes every token with probability ~1. */
TEST(moe_aux_loss_fixed_points) {
    enum { N = 8, E = 4 };
    cf_tensor *z = test_param_uniform("z", 2, (int64_t[]){N, E}, 0, 0, 1);
    cf_ctx *ctx = cf_ctx_new(1);
    for (int t = 0; t < N; t++) /* token t prefers expert t % E by a hair: uniform p, balanced counts */
        for (int e = 0; e < E; e++) z->data[t * E + e] = e == t % E ? 1e-6f : 0;
    cf_moe_routing r;
    cf_moe_route(ctx, z, 1, &r);
    cf_tensor *aux = cf_moe_aux_loss(ctx, z, &r);
    CHECK_MSG(fabs((double)aux->data[0] - 1) < 1e-5, "balanced: aux %g, want 1", (double)aux->data[0]);
    for (int i = 0; i < N * E; i++) z->data[i] = i % E == 2 ? 30.0f : 0; /* all on expert 2 */
    cf_moe_route(ctx, z, 1, &r);
    aux = cf_moe_aux_loss(ctx, z, &r);
    CHECK_MSG(fabs((double)aux->data[0] - E) < 1e-5, "collapsed: aux %g, want %d", (double)aux->data[0], E);
    cf_ctx_free(ctx);
    cf_param_free(z);
}

/* A model's collector counts every assignment of a training forward and nothing in eval mode. */
TEST(moe_collector_counts_training_forwards) {
    cf_model_config c = tiny_model_config(CF_ATTN_MHA);
    c.num_experts = 4;
    c.num_experts_per_token = 2;
    cf_transformer *m = cf_transformer_new(&c, 3);
    CHECK(m && m->moe && m->moe->n_layers == 2);
    cf_seq_batch b = tiny_batch();
    cf_ctx *ctx = cf_ctx_new(1);
    cf_tensor *loss = cf_transformer_loss(ctx, m, &b, 0.1, NULL);
    CHECK(loss->numel == 1 && isfinite(loss->data[0]));
    cf_ctx_reset(ctx);
    ctx->training = false;
    cf_transformer_loss(ctx, m, &b, 0.1, NULL);
    cf_moe_load load;
    cf_moe_collector_take(m->moe, &load);
    CHECK(load.n_layers == 2 && load.n_experts == 4 && load.aux > 0);
    for (int l = 0; l < 2; l++) {
        int64_t rows = l == 0 ? 2 * 5 : 2 * 4; /* encoder: B x S source rows; decoder: B x T */
        double sum = 0;
        for (int e = 0; e < 4; e++) sum += load.share[l * 4 + e];
        CHECK_MSG(fabs(sum - 1) < 1e-12, "layer %d shares sum to %g", l, sum);
        for (int e = 0; e < 4; e++) /* each share is a count over rows * k assignments */
            CHECK(fabs(load.share[l * 4 + e] * (double)(rows * 2) - round(load.share[l * 4 + e] * (double)(rows * 2))) < 1e-9);
    }
    cf_moe_load_free(&load);
    cf_moe_collector_take(m->moe, &load); /* taken: empty now */
    CHECK(load.share[0] == 0 && load.aux == 0);
    cf_moe_load_free(&load);
    cf_ctx_free(ctx);
    cf_transformer_free(m);
}

/* docs/model.md's names and shapes, the active-parameter count, and the equivalent dense width. */
TEST(moe_param_names_and_active_count) {
    cf_model_config c = tiny_model_config(CF_ATTN_MHA);
    c.num_experts = 4;
    c.num_experts_per_token = 2;
    c.n_shared_experts = 1;
    c.moe_d_ff = 6;
    c.activation = CF_FFN_SWIGLU;
    cf_transformer *m = cf_transformer_new(&c, 3);
    const struct { const char *name; int ndim; int64_t shape[3]; } want[] = {
        {"encoder.layers.0.ffn.router.weight", 2, {4, 8}},
        {"encoder.layers.0.ffn.experts.gate_proj.weight", 3, {4, 6, 8}},
        {"encoder.layers.0.ffn.experts.up_proj.bias", 2, {4, 6}},
        {"decoder.layers.0.ffn.experts.down_proj.weight", 3, {4, 8, 6}},
        {"decoder.layers.0.ffn.shared_experts.gate_proj.weight", 2, {6, 8}},
        {"decoder.layers.0.ffn.shared_experts.down_proj.bias", 1, {8}},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        cf_tensor *p = cf_params_find(&m->params, want[i].name);
        CHECK_MSG(p && p->ndim == want[i].ndim && memcmp(p->shape, want[i].shape, (size_t)p->ndim * sizeof(int64_t)) == 0,
                  "%s missing or misshaped", want[i].name);
    }
    CHECK(!cf_params_find(&m->params, "encoder.layers.0.ffn.gate_proj.weight"));
    /* per MoE layer: router 32; an expert 3 * 48 + 2 * 6 + 8 = 164; shared 164 */
    int64_t per_layer_all = 32 + 4 * 164 + 164, per_layer_active = 32 + 2 * 164 + 164;
    CHECK(cf_transformer_num_params(m) - cf_transformer_active_params(m) == 2 * (per_layer_all - per_layer_active));
    cf_transformer_free(m);
}

/* One MoE layer's forward and backward, and a whole MoE model's gradients, on 1-4 threads. */
static cf_real *run_layer(int threads, cf_nn_moe *moe, cf_params *ps, cf_tensor *x, int64_t *n) {
    cf_threads_init(threads);
    cf_params_zero_grad(ps);
    cf_param_zero_grad(x);
    cf_ctx *ctx = cf_ctx_new(5);
    cf_ctx_begin_step(ctx, 2);
    cf_moe_collector *col = cf_moe_collector_new(1, moe->n_experts);
    cf_tensor *y = cf_nn_moe_forward(ctx, moe, x, col);
    cf_tensor *aux = cf_moe_collector_aux(ctx, col);
    cf_real *g = cf_scratch(ctx, (size_t)y->numel * sizeof(cf_real));
    test_fill_uniform(g, y->numel, -1, 1, 6);
    cf_backward_seeded(ctx, cf_add(ctx, y, aux), g);
    *n = y->numel + x->numel + cf_params_numel(ps);
    cf_real *buf = cf_xmalloc((size_t)*n * sizeof *buf), *p = buf;
    memcpy(p, y->data, (size_t)y->numel * sizeof *p);
    p += y->numel;
    memcpy(p, x->grad, (size_t)x->numel * sizeof *p);
    p += x->numel;
    for (int i = 0; i < ps->n; i++) {
        memcpy(p, ps->items[i]->grad, (size_t)ps->items[i]->numel * sizeof *p);
        p += ps->items[i]->numel;
    }
    cf_moe_collector_free(col);
    cf_ctx_free(ctx);
    return buf;
}

TEST(moe_deterministic_across_threads) {
    cf_model_config c = cf_model_config_default();
    c.d_model = 64;
    c.num_experts = 8;
    c.num_experts_per_token = 2;
    c.n_shared_experts = 1;
    c.moe_d_ff = 96;
    c.dropout = 0.1; /* the experts' hidden dropout draws by element: thread-independent too */
    cf_params ps = {0};
    cf_rng r = cf_rng_init(3, CF_RNG_STREAM_INIT);
    cf_nn_moe moe;
    cf_nn_moe_init(&moe, &ps, &r, &c, 0, "ffn");
    cf_tensor *x = test_param_uniform("x", 3, (int64_t[]){16, 40, 64}, -1, 1, 7); /* 640 tokens */
    int64_t n1, n2;
    cf_real *one = run_layer(1, &moe, &ps, x, &n1);
    for (int t = 1; t < TEST_N_THREAD_COUNTS; t++) {
        cf_real *other = run_layer(test_thread_counts[t], &moe, &ps, x, &n2);
        CHECK_MSG(n1 == n2 && memcmp(one, other, (size_t)n1 * sizeof *one) == 0,
                  "moe layer: 1 and %d threads differ", test_thread_counts[t]);
        free(other);
    }
    cf_threads_init(0);
    free(one);
    cf_param_free(x);
    cf_params_free(&ps);
}
