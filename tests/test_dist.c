/* tests/test_dist.c - one update's gradient (dist/dist.h) in one process: the fixed fold order,
 * the normalisation by the global batch's target tokens, and that grad_accum K over K
 * micro-batches is the update of the one batch that holds them all. (Across ranks:
 * tests/test_dist_e2e.c.)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/autograd.h"
#include "dist/dist.h"
#include "nn/transformer.h"
#include "tests/nn_fixtures.h"
#include "tests/test.h"
#include "tests/testlib.h"

TEST(dist_single_process_defaults) {
    CHECK(cf_dist_size() == 1 && cf_dist_rank() == 0); /* the unit runner never calls cf_dist_init */
    CHECK(cf_dist_library() != NULL);
    CHECK(cf_grad_sync_new(NULL, 0, 0, 0) == NULL);
}

/* G = 3 micro-batches of two parameters: the result is exactly
 * ((fl(n0 g0) + fl(n1 g1)) + fl(n2 g2)) * fl(1 / N), element by element; G = 1 leaves the gradient
 * alone. The fold is the contract K ranks reproduce (dist/dist.h), so it is checked bit for bit. */
TEST(dist_grad_sync_fold_order_and_normalisation) {
    enum { G = 3 };
    cf_tensor *p[2] = {test_param_uniform("a", 1, (int64_t[]){5}, -1, 1, 1),
                       test_param_uniform("b", 2, (int64_t[]){40000, 3}, -1, 1, 2)}; /* > one thread's share */
    const int64_t tokens[G] = {7, 3, 11};
    const double losses[G] = {2.5, 1.25, 3.0};
    float *g[2][G], *want[2];
    for (int i = 0; i < 2; i++) {
        want[i] = malloc((size_t)p[i]->numel * sizeof(float));
        for (int m = 0; m < G; m++) {
            g[i][m] = malloc((size_t)p[i]->numel * sizeof(float));
            test_fill_uniform(g[i][m], p[i]->numel, -3, 3, 100 + (uint64_t)(10 * i + m));
        }
        float inv = (float)(1.0 / (7 + 3 + 11));
        for (int64_t e = 0; e < p[i]->numel; e++) {
            float x0 = (float)tokens[0] * g[i][0][e], x1 = (float)tokens[1] * g[i][1][e];
            float x2 = (float)tokens[2] * g[i][2][e];
            float acc = x0 + x1;
            acc = acc + x2;
            want[i][e] = acc * inv;
        }
    }
    cf_grad_sync *s = cf_grad_sync_new(p, 2, G, 0);
    CHECK(s != NULL);
    for (int m = 0; m < G; m++) {
        for (int i = 0; i < 2; i++) memcpy(p[i]->grad, g[i][m], (size_t)p[i]->numel * sizeof(float));
        CHECK(cf_grad_sync_add(s, m, losses[m], tokens[m]) == 0);
        for (int i = 0; i < 2; i++) CHECK_MSG(p[i]->grad[0] == 0 && p[i]->grad[p[i]->numel - 1] == 0,
                                              "micro-batch %d: gradient not zeroed for the next one", m);
    }
    volatile sig_atomic_t stop = 1;
    cf_grad_sync_totals t;
    CHECK(cf_grad_sync_finish(s, &stop, &t) == 0);
    for (int i = 0; i < 2; i++)
        CHECK_MSG(memcmp(p[i]->grad, want[i], (size_t)p[i]->numel * sizeof(float)) == 0,
                  "param %d: not the fixed fold ((x0 + x1) + x2) / N", i);
    CHECK(t.tokens == 21 && t.stop);
    CHECK(t.loss_sum == 2.5 * 7 + 1.25 * 3 + 3.0 * 11);
    /* out of order: refused */
    CHECK(cf_grad_sync_add(s, 1, 0, 1) == 0);
    CHECK(cf_grad_sync_add(s, 0, 0, 1) != 0);
    CHECK(cf_grad_sync_finish(s, NULL, &t) != 0); /* 1 of 3 added */
    cf_grad_sync_free(s);

    /* G = 1: the micro-batch's gradient of its mean loss is the update's, untouched */
    s = cf_grad_sync_new(p, 2, 1, 0);
    memcpy(p[0]->grad, g[0][0], 5 * sizeof(float));
    CHECK(cf_grad_sync_add(s, 0, 1.5, 4) == 0);
    CHECK(cf_grad_sync_finish(s, NULL, &t) == 0);
    CHECK(memcmp(p[0]->grad, g[0][0], 5 * sizeof(float)) == 0 && t.tokens == 4 && t.loss_sum == 6 && !t.stop);
    cf_grad_sync_free(s);
    for (int i = 0; i < 2; i++) {
        for (int m = 0; m < G; m++) free(g[i][m]);
        free(want[i]);
        cf_param_free(p[i]);
    }
}

/* Rows 0 and 1 of the tiny batch (4 and 3 target tokens) as two micro-batches with grad_accum 2
 * give the gradient of the whole batch's mean token loss (up to float rounding), and not the
 * mean of the two micro-batch means that a 1/grad_accum scaling would give. */
TEST(dist_grad_accum_equals_one_larger_batch) {
    cf_model_config c = tiny_model_config(CF_ATTN_MHA);
    cf_transformer *m = cf_transformer_new(&c, 5);
    CHECK(m != NULL);
    if (!m) return;
    cf_ctx *ctx = cf_ctx_new(1);
    const cf_params *ps = &m->params;
    int64_t total = cf_params_numel(ps);
    float *whole = calloc((size_t)total, sizeof(float)), *means[2];
    int64_t n_tok[2];
    /* the whole batch */
    cf_seq_batch b = tiny_batch();
    cf_backward(ctx, cf_transformer_loss(ctx, m, &b, 0.1, NULL));
    cf_ctx_reset(ctx);
    for (int i = 0, off = 0; i < ps->n; off += (int)ps->items[i]->numel, i++) {
        memcpy(whole + off, ps->items[i]->grad, (size_t)ps->items[i]->numel * sizeof(float));
        cf_param_zero_grad(ps->items[i]);
    }
    /* each row alone, kept for the mean of means */
    for (int r = 0; r < 2; r++) {
        means[r] = calloc((size_t)total, sizeof(float));
        cf_seq_batch row = {.batch = 1, .src_len = 5, .tgt_len = 4, .src = tiny_src + 5 * r,
                            .src_lens = tiny_src_lens + r, .tgt_in = tiny_tgt_in + 4 * r,
                            .tgt_out = tiny_tgt_out + 4 * r, .pad_id = 0};
        cf_ce_stats st = {0};
        cf_backward(ctx, cf_transformer_loss(ctx, m, &row, 0.1, &st));
        cf_ctx_reset(ctx);
        n_tok[r] = st.n_tokens;
        for (int i = 0, off = 0; i < ps->n; off += (int)ps->items[i]->numel, i++) {
            memcpy(means[r] + off, ps->items[i]->grad, (size_t)ps->items[i]->numel * sizeof(float));
            cf_param_zero_grad(ps->items[i]);
        }
    }
    CHECK(n_tok[0] == 4 && n_tok[1] == 3);
    /* grad_accum 2 through the sync */
    cf_grad_sync *s = cf_grad_sync_new(ps->items, ps->n, 2, 0);
    for (int r = 0; r < 2; r++) {
        for (int i = 0, off = 0; i < ps->n; off += (int)ps->items[i]->numel, i++)
            memcpy(ps->items[i]->grad, means[r] + off, (size_t)ps->items[i]->numel * sizeof(float));
        CHECK(cf_grad_sync_add(s, r, 1.0, n_tok[r]) == 0);
    }
    cf_grad_sync_totals t;
    CHECK(cf_grad_sync_finish(s, NULL, &t) == 0 && t.tokens == 7);
    double worst = 0, worst_mean_of_means = 0;
    for (int i = 0, off = 0; i < ps->n; off += (int)ps->items[i]->numel, i++)
        for (int64_t e = 0; e < ps->items[i]->numel; e++) {
            /* float rounding of sums of contributions: absolute 1e-6 at gradients of order 0.1-1 */
            double w = whole[off + e], d = fabs(ps->items[i]->grad[e] - w) / (1e-6 + 1e-4 * fabs(w));
            double mm = fabs(0.5 * (means[0][off + e] + means[1][off + e]) - w) / (1e-6 + 1e-4 * fabs(w));
            if (d > worst) worst = d;
            if (mm > worst_mean_of_means) worst_mean_of_means = mm;
        }
    CHECK_MSG(worst <= 1, "grad_accum 2 differs from the whole batch: %g x the tolerance", worst);
    CHECK_MSG(worst_mean_of_means > 100, "the test cannot tell token weighting from a mean of means (%g)",
              worst_mean_of_means);
    cf_grad_sync_free(s);
    for (int r = 0; r < 2; r++) free(means[r]);
    free(whole);
    cf_ctx_free(ctx);
    cf_transformer_free(m);
}
