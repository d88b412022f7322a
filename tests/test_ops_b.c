/* tests/test_ops_b.c - embedding, dropout, permute/transpose, concat, slice, split, masked_fill and
 * cross-entropy (plus matmul, linear, add/sub/mul, sum, mean) against PyTorch golden values from
 * tests/ref/ops_b.py (tests/fixtures/ops_b.safetensors); dropout's statistics and counter-based
 * mask; and bit-identical results for 1 and 2 threads.
 *
 * Tolerances (float32 here and in PyTorch), |ours - torch| <= atol + rtol * |torch|:
 *   pure data movement (embedding forward, permute, concat, slice, masked_fill): 0 difference
 *     allowed beyond 1e-12 (same floats copied);
 *   sums of a few float32 terms whose order may differ from PyTorch's (embedding / broadcast
 *     gradients, reductions, linear, matmul with K <= 30): atol 1e-5, rtol 1e-5, i.e. a few ulp of
 *     values of order 1-10;
 *   cross-entropy: our exp is a polynomial (relative error ~1e-7) and logsumexp is summed in
 *     another order: loss rtol 2e-6, gradients atol 1e-6 (they are ~1e-2 in size).
 */
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "core/rng.h"
#include "core/threads.h"
#include "tests/test.h"
#include "tests/testlib.h"

#define EXACT_ATOL 1e-12 /* copies: no difference */
#define EXACT_RTOL 0.0
#define SUMS_ATOL 1e-5 /* float sums in another order */
#define SUMS_RTOL 1e-5

static cf_st_file *open_fixture(void) {
    cf_st_file *f = cf_st_open(test_fixture_path("ops_b.safetensors"));
    CHECK_MSG(f != NULL, "%s", cf_error_message());
    return f;
}

/* An I32 fixture tensor, copied (the file's data need not be aligned); numel in *n. */
static int32_t *fixture_i32(const cf_st_file *f, const char *name, int64_t *n) {
    const cf_st_tensor *t = cf_st_find(f, name);
    CHECK_MSG(t && t->dtype == CF_ST_I32, "fixture tensor '%s' missing or not I32", name);
    if (!t || t->dtype != CF_ST_I32) return NULL;
    int32_t *v = cf_xmalloc((size_t)(t->numel ? t->numel : 1) * sizeof *v);
    memcpy(v, t->data, t->nbytes);
    if (n) *n = t->numel;
    return v;
}

static const char *nm(const char *c, const char *suffix) {
    static char buf[128];
    snprintf(buf, sizeof buf, "%s.%s", c, suffix);
    return buf;
}

/* Backward from out with the fixture's upstream gradient `<c>.R`; checks out against `<c>.out`. */
static void check_out_and_backward(cf_ctx *ctx, const cf_st_file *f, const char *c, cf_tensor *out, double atol,
                                   double rtol) {
    CHECK_FIXTURE(f, nm(c, "out"), out->data, out->numel, atol, rtol);
    cf_tensor *r = test_fixture_param(f, nm(c, "R"));
    if (!r) return;
    CHECK(r->numel == out->numel);
    if (r->numel == out->numel) cf_backward_seeded(ctx, out, r->data);
    cf_param_free(r);
}

TEST(ops_b_torch_embedding) {
    cf_st_file *f = open_fixture();
    if (!f) return;
    cf_tensor *w = test_fixture_param(f, "emb.weight");
    int64_t n = 0;
    int32_t *ids = fixture_i32(f, "emb.ids", &n);
    if (w && ids) {
        cf_ctx *ctx = cf_ctx_new(1);
        cf_param_zero_grad(w);
        cf_tensor *out = cf_embedding(ctx, w, ids, 2, (int64_t[]){2, n / 2});
        CHECK(out->ndim == 3 && out->shape[2] == w->shape[1]);
        check_out_and_backward(ctx, f, "emb", out, EXACT_ATOL, EXACT_RTOL);
        CHECK_FIXTURE(f, "emb.grad_weight", w->grad, w->numel, SUMS_ATOL, SUMS_RTOL);
        cf_ctx_free(ctx);
    }
    free(ids);
    cf_param_free(w);
    cf_st_close(f);
}

TEST(ops_b_torch_permute) {
    cf_st_file *f = open_fixture();
    if (!f) return;
    for (int k = 0; k < 3; k++) {
        char c[32];
        snprintf(c, sizeof c, "permute%d", k);
        cf_tensor *x = test_fixture_param(f, nm(c, "x"));
        int32_t *p = fixture_i32(f, nm(c, "perm"), NULL);
        if (x && p) {
            cf_ctx *ctx = cf_ctx_new(1);
            cf_param_zero_grad(x);
            int perm[4] = {p[0], p[1], p[2], p[3]};
            cf_tensor *out = cf_permute(ctx, x, perm);
            check_out_and_backward(ctx, f, c, out, EXACT_ATOL, EXACT_RTOL);
            CHECK_FIXTURE(f, nm(c, "grad_x"), x->grad, x->numel, EXACT_ATOL, EXACT_RTOL);
            cf_ctx_free(ctx);
        }
        free(p);
        cf_param_free(x);
    }
    cf_st_close(f);
}

TEST(ops_b_torch_concat_slice) {
    cf_st_file *f = open_fixture();
    if (!f) return;
    for (int dim = 0; dim <= 2; dim += 2) {
        char c[32], xn[32];
        snprintf(c, sizeof c, "concat%d", dim);
        cf_tensor *xs[3];
        bool ok = true;
        for (int k = 0; k < 3; k++) {
            snprintf(xn, sizeof xn, "x%d", k);
            xs[k] = test_fixture_param(f, nm(c, xn));
            ok &= xs[k] != NULL;
        }
        if (ok) {
            cf_ctx *ctx = cf_ctx_new(1);
            for (int k = 0; k < 3; k++) cf_param_zero_grad(xs[k]);
            check_out_and_backward(ctx, f, c, cf_concat(ctx, xs, 3, dim), EXACT_ATOL, EXACT_RTOL);
            for (int k = 0; k < 3; k++) {
                snprintf(xn, sizeof xn, "grad_x%d", k);
                CHECK_FIXTURE(f, nm(c, xn), xs[k]->grad, xs[k]->numel, EXACT_ATOL, EXACT_RTOL);
            }
            cf_ctx_free(ctx);
        }
        for (int k = 0; k < 3; k++) cf_param_free(xs[k]);
    }
    cf_tensor *x = test_fixture_param(f, "slice.x");
    if (x) {
        cf_ctx *ctx = cf_ctx_new(1);
        cf_param_zero_grad(x);
        check_out_and_backward(ctx, f, "slice", cf_slice(ctx, x, 1, 2, 4), EXACT_ATOL, EXACT_RTOL);
        CHECK_FIXTURE(f, "slice.grad_x", x->grad, x->numel, EXACT_ATOL, EXACT_RTOL);
        cf_ctx_free(ctx);
    }
    cf_param_free(x);
    cf_st_close(f);
}

TEST(ops_b_torch_masked_fill) {
    cf_st_file *f = open_fixture();
    if (!f) return;
    const char *cases[] = {"mfill_pad", "mfill_causal"};
    for (int k = 0; k < 2; k++) {
        cf_tensor *x = test_fixture_param(f, nm(cases[k], "x"));
        cf_tensor *m = test_fixture_param(f, nm(cases[k], "mask"));
        if (x && m) {
            cf_ctx *ctx = cf_ctx_new(1);
            cf_param_zero_grad(x);
            check_out_and_backward(ctx, f, cases[k], cf_masked_fill(ctx, x, m, -1e9), EXACT_ATOL, EXACT_RTOL);
            CHECK_FIXTURE(f, nm(cases[k], "grad_x"), x->grad, x->numel, EXACT_ATOL, EXACT_RTOL);
            cf_ctx_free(ctx);
        }
        cf_param_free(x);
        cf_param_free(m);
    }
    cf_st_close(f);
}

TEST(ops_b_torch_cross_entropy) {
    cf_st_file *f = open_fixture();
    if (!f) return;
    const char *cases[] = {"ce", "ce_ls"};
    const double lss[] = {0.0, 0.1};
    for (int k = 0; k < 2; k++) {
        cf_tensor *logits = test_fixture_param(f, nm(cases[k], "logits"));
        int64_t n = 0;
        int32_t *t = fixture_i32(f, nm(cases[k], "targets"), &n);
        if (logits && t) {
            CHECK(n == cf_rows(logits));
            cf_ctx *ctx = cf_ctx_new(1);
            cf_param_zero_grad(logits);
            cf_ce_stats st;
            cf_tensor *loss = cf_cross_entropy(ctx, logits, t, lss[k], -100, &st);
            CHECK_FIXTURE(f, nm(cases[k], "loss"), loss->data, 1, 0, 2e-6);
            cf_real nll = (cf_real)st.nll_sum;
            CHECK_FIXTURE(f, nm(cases[k], "nll_sum"), &nll, 1, 0, 2e-6);
            CHECK(st.n_tokens == 11); /* 15 rows, 4 ignored */
            cf_backward(ctx, loss);
            CHECK_FIXTURE(f, nm(cases[k], "grad_logits"), logits->grad, logits->numel, 1e-6, 0);
            cf_ctx_free(ctx);
        }
        free(t);
        cf_param_free(logits);
    }
    cf_st_close(f);
}

TEST(ops_b_torch_matmul_linear) {
    cf_st_file *f = open_fixture();
    if (!f) return;
    const char *cases[] = {"mm_shared", "mm_trans", "mm_batched"};
    for (int k = 0; k < 3; k++) {
        cf_tensor *a = test_fixture_param(f, nm(cases[k], "a")), *b = test_fixture_param(f, nm(cases[k], "b"));
        if (a && b) {
            cf_ctx *ctx = cf_ctx_new(1);
            cf_param_zero_grad(a);
            cf_param_zero_grad(b);
            check_out_and_backward(ctx, f, cases[k], cf_matmul(ctx, a, b, k == 1), SUMS_ATOL, SUMS_RTOL);
            CHECK_FIXTURE(f, nm(cases[k], "grad_a"), a->grad, a->numel, SUMS_ATOL, SUMS_RTOL);
            CHECK_FIXTURE(f, nm(cases[k], "grad_b"), b->grad, b->numel, SUMS_ATOL, SUMS_RTOL);
            cf_ctx_free(ctx);
        }
        cf_param_free(a);
        cf_param_free(b);
    }
    cf_tensor *x = test_fixture_param(f, "linear.x"), *w = test_fixture_param(f, "linear.w");
    cf_tensor *b = test_fixture_param(f, "linear.b");
    if (x && w && b) {
        cf_ctx *ctx = cf_ctx_new(1);
        cf_param_zero_grad(x);
        cf_param_zero_grad(w);
        cf_param_zero_grad(b);
        check_out_and_backward(ctx, f, "linear", cf_linear(ctx, x, w, b), SUMS_ATOL, SUMS_RTOL);
        CHECK_FIXTURE(f, "linear.grad_x", x->grad, x->numel, SUMS_ATOL, SUMS_RTOL);
        CHECK_FIXTURE(f, "linear.grad_w", w->grad, w->numel, SUMS_ATOL, SUMS_RTOL);
        CHECK_FIXTURE(f, "linear.grad_b", b->grad, b->numel, SUMS_ATOL, SUMS_RTOL);
        cf_ctx_free(ctx);
    }
    cf_param_free(x);
    cf_param_free(w);
    cf_param_free(b);
    cf_st_close(f);
}

TEST(ops_b_torch_binary_reduce) {
    cf_st_file *f = open_fixture();
    if (!f) return;
    const char *shapes[] = {"bias", "bmask"}, *ops[] = {"add", "sub", "mul"};
    for (int s = 0; s < 2; s++)
        for (int o = 0; o < 3; o++) {
            char c[32];
            snprintf(c, sizeof c, "%s_%s", ops[o], shapes[s]);
            cf_tensor *a = test_fixture_param(f, nm(c, "a")), *b = test_fixture_param(f, nm(c, "b"));
            if (a && b) {
                cf_ctx *ctx = cf_ctx_new(1);
                cf_param_zero_grad(a);
                cf_param_zero_grad(b);
                cf_tensor *out = o == 0 ? cf_add(ctx, a, b) : o == 1 ? cf_sub(ctx, a, b) : cf_mul(ctx, a, b);
                check_out_and_backward(ctx, f, c, out, SUMS_ATOL, SUMS_RTOL);
                CHECK_FIXTURE(f, nm(c, "grad_a"), a->grad, a->numel, SUMS_ATOL, SUMS_RTOL);
                CHECK_FIXTURE(f, nm(c, "grad_b"), b->grad, b->numel, SUMS_ATOL, SUMS_RTOL);
                cf_ctx_free(ctx);
            }
            cf_param_free(a);
            cf_param_free(b);
        }
    const char *red[] = {"sum", "mean"};
    for (int k = 0; k < 2; k++) {
        cf_tensor *x = test_fixture_param(f, nm(red[k], "x"));
        if (!x) continue;
        cf_ctx *ctx = cf_ctx_new(1);
        cf_param_zero_grad(x);
        cf_tensor *out = k ? cf_mean(ctx, x) : cf_sum(ctx, x);
        CHECK_FIXTURE(f, nm(red[k], "out"), out->data, 1, SUMS_ATOL, SUMS_RTOL);
        cf_backward(ctx, out);
        CHECK_FIXTURE(f, nm(red[k], "grad_x"), x->grad, x->numel, SUMS_ATOL, SUMS_RTOL);
        cf_ctx_free(ctx);
        cf_param_free(x);
    }
    cf_st_close(f);
}

/* ---- dropout: PyTorch's RNG can't be matched, so check its defining properties ---- */

/* x [n] in [1, 2) (never 0, so a 0 in the output means "dropped") */
static cf_tensor *nonzero_input(cf_ctx *ctx, int64_t n, uint64_t seed) {
    cf_tensor *x = cf_tensor_new(ctx, 1, (int64_t[]){n});
    test_fill_uniform(x->data, n, 1, 2, seed);
    return x;
}

TEST(dropout_fraction_and_scale) {
    const double ps[] = {0.1, 0.3, 0.5};
    cf_ctx *ctx = cf_ctx_new(42);
    for (int k = 0; k < 3; k++) {
        cf_ctx_begin_step(ctx, 5);
        int64_t n = 256 * 1024 + 37; /* odd tail: the last mask word is partial */
        cf_tensor *x = nonzero_input(ctx, n, 1 + k);
        cf_tensor *out = cf_dropout(ctx, x, ps[k]);
        cf_real scale = (cf_real)(1.0 / (1.0 - ps[k]));
        int64_t dropped = 0, bad = 0;
        for (int64_t i = 0; i < n; i++) {
            if (out->data[i] == 0) dropped++;
            else bad += out->data[i] != x->data[i] * scale;
        }
        /* binomial: sd = sqrt(p (1 - p) / n) < 0.001, so 0.006 is > 6 sd */
        CHECK_NEAR((double)dropped / (double)n, ps[k], 0.006);
        CHECK_MSG(bad == 0, "p = %g: %lld kept values not scaled by 1/(1-p)", ps[k], (long long)bad);
        cf_ctx_reset(ctx);
    }
    cf_ctx_free(ctx);
}

TEST(dropout_mask_is_counter_based) {
    const int64_t n = 1003;
    const double p = 0.4;
    cf_ctx *ctx = cf_ctx_new(9);
    cf_ctx_begin_step(ctx, 11);
    cf_tensor *x = nonzero_input(ctx, n, 3);
    cf_tensor *a0 = cf_dropout(ctx, x, p), *a1 = cf_dropout(ctx, x, p); /* calls 0 and 1 */
    /* exactly the documented function: keep iff cf_rng_uniform_at(seed, step, call, i) >= p */
    int64_t mismatch = 0, differ01 = 0;
    for (int64_t i = 0; i < n; i++) {
        mismatch += (a0->data[i] != 0) != (cf_rng_uniform_at(9, 11, 0, (uint64_t)i) >= (float)p);
        mismatch += (a1->data[i] != 0) != (cf_rng_uniform_at(9, 11, 1, (uint64_t)i) >= (float)p);
        differ01 += (a0->data[i] != 0) != (a1->data[i] != 0);
    }
    CHECK_MSG(mismatch == 0, "%lld mask bits differ from cf_rng_uniform_at", (long long)mismatch);
    CHECK(differ01 > 0); /* each call of a step has its own mask */

    /* the same (seed, step) in another context, or after a reset: the same masks */
    cf_ctx *ctx2 = cf_ctx_new(9);
    cf_ctx_begin_step(ctx2, 11);
    cf_tensor *x2 = nonzero_input(ctx2, n, 3);
    cf_tensor *b0 = cf_dropout(ctx2, x2, p);
    CHECK(memcmp(a0->data, b0->data, (size_t)n * sizeof(cf_real)) == 0);
    cf_ctx_reset(ctx2);
    cf_ctx_begin_step(ctx2, 11);
    x2 = nonzero_input(ctx2, n, 3);
    b0 = cf_dropout(ctx2, x2, p);
    CHECK(memcmp(a0->data, b0->data, (size_t)n * sizeof(cf_real)) == 0);

    /* another step, or another seed: another mask */
    cf_ctx_reset(ctx2);
    cf_ctx_begin_step(ctx2, 12);
    x2 = nonzero_input(ctx2, n, 3);
    cf_tensor *c0 = cf_dropout(ctx2, x2, p);
    CHECK(memcmp(a0->data, c0->data, (size_t)n * sizeof(cf_real)) != 0);
    cf_ctx *ctx3 = cf_ctx_new(10);
    cf_ctx_begin_step(ctx3, 11);
    cf_tensor *d0 = cf_dropout(ctx3, nonzero_input(ctx3, n, 3), p);
    CHECK(memcmp(a0->data, d0->data, (size_t)n * sizeof(cf_real)) != 0);

    /* identity, with no tape node and no call consumed, in evaluation mode or with p = 0 */
    int64_t nodes = ctx->n_nodes;
    uint64_t calls = ctx->dropout_calls;
    CHECK(cf_dropout(ctx, x, 0.0) == x);
    ctx->training = false;
    CHECK(cf_dropout(ctx, x, p) == x);
    CHECK(ctx->n_nodes == nodes && ctx->dropout_calls == calls);
    cf_ctx_free(ctx);
    cf_ctx_free(ctx2);
    cf_ctx_free(ctx3);
}

/* The fused forms give exactly the values and gradients of the ops they replace (same mask, same
 * float operations), which is why the model's numbers did not change when it started using them. */
static void run_fused_pair(bool fused, bool add, cf_tensor *x, cf_tensor *r, cf_real **out, cf_real **gx,
                           cf_real **gr) {
    cf_param_zero_grad(x);
    cf_param_zero_grad(r);
    cf_ctx *ctx = cf_ctx_new(5);
    cf_ctx_begin_step(ctx, 9);
    cf_tensor *y = add ? (fused ? cf_dropout_add(ctx, r, x, 0.3) : cf_add(ctx, r, cf_dropout(ctx, x, 0.3)))
                       : (fused ? cf_relu_dropout(ctx, x, 0.3) : cf_dropout(ctx, cf_relu(ctx, x), 0.3));
    cf_tensor *z = cf_mul(ctx, y, r); /* a non-trivial upstream gradient, and a second path into r */
    cf_backward(ctx, cf_sum(ctx, z));
    size_t bytes = (size_t)x->numel * sizeof(cf_real);
    *out = malloc(bytes), *gx = malloc(bytes), *gr = malloc(bytes);
    memcpy(*out, y->data, bytes);
    memcpy(*gx, x->grad, bytes);
    memcpy(*gr, r->grad, bytes);
    cf_ctx_free(ctx);
}

TEST(dropout_fused_forms_equal_the_unfused_ops) {
    cf_tensor *x = test_param_uniform("x", 2, (int64_t[]){37, 129}, -1, 1, 21);
    cf_tensor *r = test_param_uniform("r", 2, (int64_t[]){37, 129}, -1, 1, 22);
    size_t bytes = (size_t)x->numel * sizeof(cf_real);
    for (int add = 0; add < 2; add++) {
        cf_real *o[2], *gx[2], *gr[2];
        for (int f = 0; f < 2; f++) run_fused_pair(f, add, x, r, &o[f], &gx[f], &gr[f]);
        CHECK_MSG(memcmp(o[0], o[1], bytes) == 0 && memcmp(gx[0], gx[1], bytes) == 0 && memcmp(gr[0], gr[1], bytes) == 0,
                  "%s differs from the unfused ops", add ? "dropout_add" : "relu_dropout");
        for (int f = 0; f < 2; f++) free(o[f]), free(gx[f]), free(gr[f]);
    }
    cf_param_free(x);
    cf_param_free(r);
}

/* cf_linear_cross_entropy against cf_cross_entropy(cf_linear(x, W)): the same loss and, up to the
 * rounding of dW's sum over row chunks, the same gradients, also for an upstream gradient != 1;
 * V = 4096 gives chunks of 512 rows, so 1100 rows take three (the last one short). */
static void run_lce(bool fused, cf_tensor *x, cf_tensor *w, const int32_t *y, double seed_grad, cf_real *loss,
                    cf_real **gx, cf_real **gw) {
    cf_param_zero_grad(x);
    cf_param_zero_grad(w);
    cf_ctx *ctx = cf_ctx_new(1);
    cf_ce_stats st;
    cf_tensor *l = fused ? cf_linear_cross_entropy(ctx, x, w, y, 0.1, -100, &st)
                         : cf_cross_entropy(ctx, cf_linear(ctx, x, w, NULL), y, 0.1, -100, &st);
    cf_backward_seeded(ctx, l, (cf_real[]){(cf_real)seed_grad});
    *loss = l->data[0];
    *gx = malloc((size_t)x->numel * sizeof(cf_real));
    *gw = malloc((size_t)w->numel * sizeof(cf_real));
    memcpy(*gx, x->grad, (size_t)x->numel * sizeof(cf_real));
    memcpy(*gw, w->grad, (size_t)w->numel * sizeof(cf_real));
    cf_ctx_free(ctx);
}

TEST(linear_cross_entropy_equals_linear_then_cross_entropy) {
    enum { N = 1100, D = 24, V = 4096 };
    cf_tensor *x = test_param_uniform("x", 2, (int64_t[]){N, D}, -1, 1, 31);
    cf_tensor *w = test_param_uniform("w", 2, (int64_t[]){V, D}, -1, 1, 32);
    int32_t *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++) y[i] = i % 7 == 3 ? -100 : (i * 131) % V;
    const double seeds[2] = {1.0, 2.5};
    for (int k = 0; k < 2; k++) {
        cf_real loss[2], *gx[2], *gw[2];
        for (int f = 0; f < 2; f++) run_lce(f, x, w, y, seeds[k], &loss[f], &gx[f], &gw[f]);
        CHECK_NEAR(loss[0], loss[1], 1e-5);
        CHECK(test_max_violation(gx[1], gx[0], N * D, 1e-7, 1e-4) <= 1);
        CHECK(test_max_violation(gw[1], gw[0], V * D, 1e-7, 1e-4) <= 1);
        for (int f = 0; f < 2; f++) free(gx[f]), free(gw[f]);
    }
    /* every row ignored: loss 0 and no gradient */
    for (int i = 0; i < N; i++) y[i] = -100;
    cf_real loss, *gx, *gw;
    run_lce(true, x, w, y, 1.0, &loss, &gx, &gw);
    CHECK(loss == 0);
    int64_t nonzero = 0;
    for (int64_t i = 0; i < (int64_t)N * D; i++) nonzero += gx[i] != 0;
    CHECK(nonzero == 0);
    free(gx);
    free(gw);
    free(y);
    cf_param_free(x);
    cf_param_free(w);
}

/* cf_embed_input gives the values and gradients of embedding, scale, add and dropout in a row. */
TEST(embed_input_equals_the_unfused_ops) {
    enum { B = 3, T = 7, C = 40, V = 11 };
    cf_tensor *w = test_param_uniform("w", 2, (int64_t[]){V, C}, -1, 1, 41);
    cf_tensor *pos = test_param_uniform("pos", 2, (int64_t[]){12, C}, -1, 1, 42);
    int32_t ids[B * T], pos_ids[T];
    for (int i = 0; i < B * T; i++) ids[i] = (i * 5) % V;
    for (int t = 0; t < T; t++) pos_ids[t] = 2 + t;
    cf_real *r = malloc(B * T * C * sizeof *r);
    test_fill_uniform(r, B * T * C, -1, 1, 43);
    cf_real *out[2], *gw[2], *gp[2];
    for (int f = 0; f < 2; f++) {
        cf_param_zero_grad(w);
        cf_param_zero_grad(pos);
        cf_ctx *ctx = cf_ctx_new(3);
        cf_ctx_begin_step(ctx, 4);
        cf_tensor *y;
        if (f) {
            y = cf_embed_input(ctx, w, ids, B, T, 1.7, pos, 2, 0.2);
        } else {
            cf_tensor *e = cf_scale(ctx, cf_embedding(ctx, w, ids, 2, (int64_t[]){B, T}), 1.7);
            y = cf_dropout(ctx, cf_add(ctx, e, cf_embedding(ctx, pos, pos_ids, 1, (int64_t[]){T})), 0.2);
        }
        cf_backward_seeded(ctx, y, r);
        out[f] = malloc(B * T * C * sizeof(cf_real));
        gw[f] = malloc(V * C * sizeof(cf_real));
        gp[f] = malloc(12 * C * sizeof(cf_real));
        memcpy(out[f], y->data, B * T * C * sizeof(cf_real));
        memcpy(gw[f], w->grad, V * C * sizeof(cf_real));
        memcpy(gp[f], pos->grad, 12 * C * sizeof(cf_real));
        cf_ctx_free(ctx);
    }
    CHECK(memcmp(out[0], out[1], B * T * C * sizeof(cf_real)) == 0);
    CHECK(memcmp(gw[0], gw[1], V * C * sizeof(cf_real)) == 0);
    CHECK(memcmp(gp[0], gp[1], 12 * C * sizeof(cf_real)) == 0);
    for (int f = 0; f < 2; f++) free(out[f]), free(gw[f]), free(gp[f]);
    free(r);
    cf_param_free(w);
    cf_param_free(pos);
}

TEST(dropout_backward_uses_forward_mask) {
    cf_tensor *x = test_param_uniform("x", 2, (int64_t[]){37, 129}, 1, 2, 4);
    cf_param_zero_grad(x);
    cf_ctx *ctx = cf_ctx_new(3);
    cf_ctx_begin_step(ctx, 1);
    cf_tensor *out = cf_dropout(ctx, x, 0.25);
    cf_real *g = cf_scratch(ctx, (size_t)x->numel * sizeof(cf_real));
    test_fill_uniform(g, x->numel, -1, 1, 5);
    cf_backward_seeded(ctx, out, g);
    cf_real scale = (cf_real)(1.0 / 0.75);
    int64_t bad = 0;
    for (int64_t i = 0; i < x->numel; i++) bad += x->grad[i] != (out->data[i] != 0 ? g[i] * scale : 0);
    CHECK_MSG(bad == 0, "%lld gradient elements disagree with the forward mask", (long long)bad);
    cf_ctx_free(ctx);
    cf_param_free(x);
}

/* ---- 1 thread vs 2, 3 and 4 threads: bit-identical outputs and gradients ---- */

typedef cf_tensor *(*det_fn)(cf_ctx *ctx, cf_tensor **in, void *user);

/* Forward + backward (upstream gradient: fixed random values) with `threads` threads; returns a
 * malloc'ed buffer holding the output followed by every input's gradient, its size in *n. */
static cf_real *run_with_threads(int threads, det_fn f, cf_tensor **in, int n_in, void *user, int64_t *n) {
    cf_threads_init(threads);
    for (int k = 0; k < n_in; k++) cf_param_zero_grad(in[k]);
    cf_ctx *ctx = cf_ctx_new(77);
    cf_ctx_begin_step(ctx, 3);
    cf_tensor *out = f(ctx, in, user);
    cf_real *g = cf_scratch(ctx, (size_t)out->numel * sizeof(cf_real));
    test_fill_uniform(g, out->numel, -1, 1, 6);
    cf_backward_seeded(ctx, out, g);
    *n = out->numel;
    for (int k = 0; k < n_in; k++) *n += in[k]->numel;
    cf_real *buf = cf_xmalloc((size_t)*n * sizeof *buf), *p = buf;
    memcpy(p, out->data, (size_t)out->numel * sizeof *p);
    p += out->numel;
    for (int k = 0; k < n_in; k++) {
        memcpy(p, in[k]->grad, (size_t)in[k]->numel * sizeof *p);
        p += in[k]->numel;
    }
    cf_ctx_free(ctx);
    return buf;
}

static void check_thread_invariant(const char *name, det_fn f, cf_tensor **in, int n_in, void *user) {
    int64_t n1, n2;
    cf_real *r1 = run_with_threads(1, f, in, n_in, user, &n1);
    for (int t = 1; t < TEST_N_THREAD_COUNTS; t++) {
        int threads = test_thread_counts[t];
        cf_real *r2 = run_with_threads(threads, f, in, n_in, user, &n2);
        CHECK_MSG(n1 == n2 && memcmp(r1, r2, (size_t)n1 * sizeof *r1) == 0,
                  "%s: output or gradients differ between 1 and %d threads", name, threads);
        free(r2);
    }
    cf_threads_init(0);
    free(r1);
}

static cf_tensor *det_embedding(cf_ctx *ctx, cf_tensor **in, void *user) {
    return cf_embedding(ctx, in[0], user, 2, (int64_t[]){64, 64});
}
static cf_tensor *det_relu_dropout(cf_ctx *ctx, cf_tensor **in, void *user) {
    (void)user;
    return cf_relu_dropout(ctx, in[0], 0.1);
}
static cf_tensor *det_dropout_add(cf_ctx *ctx, cf_tensor **in, void *user) {
    (void)user;
    return cf_dropout_add(ctx, in[0], in[1], 0.1);
}
static cf_tensor *det_embed_input(cf_ctx *ctx, cf_tensor **in, void *user) {
    return cf_embed_input(ctx, in[0], user, 64, 64, 3.0, in[1], 5, 0.1);
}
static cf_tensor *det_linear_ce(cf_ctx *ctx, cf_tensor **in, void *user) {
    return cf_linear_cross_entropy(ctx, in[0], in[1], user, 0.1, -100, NULL);
}
static cf_tensor *det_dropout(cf_ctx *ctx, cf_tensor **in, void *user) {
    (void)user;
    return cf_dropout(ctx, in[0], 0.1);
}
static cf_tensor *det_permute(cf_ctx *ctx, cf_tensor **in, void *user) { return cf_permute(ctx, in[0], user); }
static cf_tensor *det_transpose(cf_ctx *ctx, cf_tensor **in, void *user) {
    (void)user;
    return cf_transpose(ctx, in[0], 1, 2);
}
static cf_tensor *det_concat0(cf_ctx *ctx, cf_tensor **in, void *user) {
    (void)user;
    return cf_concat(ctx, in, 2, 0);
}
static cf_tensor *det_concat2(cf_ctx *ctx, cf_tensor **in, void *user) {
    (void)user;
    return cf_concat(ctx, in, 2, 2);
}
static cf_tensor *det_slice(cf_ctx *ctx, cf_tensor **in, void *user) {
    (void)user;
    return cf_slice(ctx, in[0], 1, 3, 50);
}
static cf_tensor *det_split(cf_ctx *ctx, cf_tensor **in, void *user) {
    (void)user;
    cf_tensor *p[4];
    cf_split(ctx, in[0], 2, 4, p);
    return cf_concat(ctx, (cf_tensor *[]){p[3], p[1], p[2], p[0]}, 4, 2);
}
static cf_tensor *det_masked_fill(cf_ctx *ctx, cf_tensor **in, void *user) {
    return cf_masked_fill(ctx, in[0], user, -1e9);
}
static cf_tensor *det_cross_entropy(cf_ctx *ctx, cf_tensor **in, void *user) {
    return cf_cross_entropy(ctx, in[0], user, 0.1, -100, NULL);
}
static cf_tensor *det_matmul(cf_ctx *ctx, cf_tensor **in, void *user) {
    return cf_matmul(ctx, in[0], in[1], user != NULL);
}
static cf_tensor *det_linear(cf_ctx *ctx, cf_tensor **in, void *user) {
    (void)user;
    return cf_linear(ctx, in[0], in[1], in[2]);
}
static cf_tensor *det_add(cf_ctx *ctx, cf_tensor **in, void *user) {
    (void)user;
    return cf_add(ctx, in[0], in[1]);
}
static cf_tensor *det_sum(cf_ctx *ctx, cf_tensor **in, void *user) {
    (void)user;
    return cf_sum(ctx, in[0]);
}

TEST(ops_b_bit_identical_across_threads) {
    const int64_t btc[] = {8, 64, 256}; /* B, T, C: big enough for every parallel path */
    cf_tensor *x = test_param_uniform("x", 3, btc, -2, 2, 1);
    cf_tensor *y = test_param_uniform("y", 3, (int64_t[]){8, 64, 128}, -2, 2, 2);
    cf_tensor *z = test_param_uniform("z", 3, (int64_t[]){4, 64, 256}, -2, 2, 3);

    /* embedding: V = 1000, 4096 ids with many repeats */
    cf_tensor *w = test_param_uniform("w", 2, (int64_t[]){1000, 64}, -1, 1, 4);
    int32_t *ids = cf_xmalloc(4096 * sizeof *ids);
    cf_rng rng = cf_rng_init(5, CF_RNG_STREAM_TEST);
    for (int i = 0; i < 4096; i++) ids[i] = (int32_t)cf_rng_below(&rng, i % 3 ? 1000 : 10);
    check_thread_invariant("embedding", det_embedding, &w, 1, ids);
    {
        cf_tensor *pt = test_param_uniform("pt", 2, (int64_t[]){80, 64}, -1, 1, 10);
        check_thread_invariant("embed_input", det_embed_input, (cf_tensor *[]){w, pt}, 2, ids);
        cf_param_free(pt);
    }
    free(ids);
    cf_param_free(w);

    check_thread_invariant("dropout", det_dropout, &x, 1, NULL);
    check_thread_invariant("relu_dropout", det_relu_dropout, &x, 1, NULL);
    {
        cf_tensor *xs = test_param_uniform("xs", 2, (int64_t[]){1100, 64}, -1, 1, 8);
        cf_tensor *ws = test_param_uniform("ws", 2, (int64_t[]){4096, 64}, -1, 1, 9);
        int32_t *ys = cf_xmalloc(1100 * sizeof *ys);
        for (int i = 0; i < 1100; i++) ys[i] = i % 9 == 0 ? -100 : (i * 37) % 4096;
        check_thread_invariant("linear_cross_entropy", det_linear_ce, (cf_tensor *[]){xs, ws}, 2, ys);
        free(ys);
        cf_param_free(xs);
        cf_param_free(ws);
    }
    cf_tensor *x2 = test_param_uniform("x2", 3, btc, -2, 2, 7);
    check_thread_invariant("dropout_add", det_dropout_add, (cf_tensor *[]){x, x2}, 2, NULL);
    cf_param_free(x2);
    cf_tensor *x4 = test_param_uniform("x4", 4, (int64_t[]){8, 16, 16, 64}, -1, 1, 6);
    const int perms[][4] = {{0, 2, 1, 3}, {0, 1, 3, 2}, {3, 1, 2, 0}};
    for (int k = 0; k < 3; k++) check_thread_invariant("permute", det_permute, &x4, 1, (void *)perms[k]);
    cf_param_free(x4);
    check_thread_invariant("transpose", det_transpose, &x, 1, NULL);
    check_thread_invariant("concat dim 0", det_concat0, (cf_tensor *[]){x, z}, 2, NULL);
    check_thread_invariant("concat dim 2", det_concat2, (cf_tensor *[]){x, y}, 2, NULL);
    check_thread_invariant("slice", det_slice, &x, 1, NULL);
    check_thread_invariant("split", det_split, &x, 1, NULL);

    cf_tensor *mask = test_param_uniform("mask", 3, (int64_t[]){8, 1, 256}, 0, 1, 7);
    for (int64_t i = 0; i < mask->numel; i++) mask->data[i] = mask->data[i] < 0.3f;
    check_thread_invariant("masked_fill", det_masked_fill, &x, 1, mask);
    cf_param_free(mask);

    /* cross-entropy: [512, 1000] logits, every 7th row ignored */
    cf_tensor *logits = test_param_uniform("logits", 2, (int64_t[]){512, 1000}, -4, 4, 8);
    int32_t *targets = cf_xmalloc(512 * sizeof *targets);
    for (int r = 0; r < 512; r++) targets[r] = r % 7 == 0 ? -100 : (int32_t)cf_rng_below(&rng, 1000);
    check_thread_invariant("cross_entropy", det_cross_entropy, &logits, 1, targets);
    free(targets);
    cf_param_free(logits);

    /* the existing ops: matmul (shared and batched b), linear, add, sum */
    cf_tensor *b = test_param_uniform("b", 2, (int64_t[]){256, 128}, -1, 1, 9);
    check_thread_invariant("matmul shared", det_matmul, (cf_tensor *[]){x, b}, 2, NULL);
    cf_param_free(b);
    cf_tensor *bb = test_param_uniform("bb", 3, (int64_t[]){8, 64, 256}, -1, 1, 10);
    check_thread_invariant("matmul batched trans_b", det_matmul, (cf_tensor *[]){x, bb}, 2, (void *)1);
    cf_param_free(bb);
    cf_tensor *lw = test_param_uniform("lw", 2, (int64_t[]){128, 256}, -1, 1, 11);
    cf_tensor *lb = test_param_uniform("lb", 1, (int64_t[]){128}, -1, 1, 12);
    check_thread_invariant("linear", det_linear, (cf_tensor *[]){x, lw, lb}, 3, NULL);
    cf_param_free(lw);
    cf_param_free(lb);
    cf_tensor *c = test_param_uniform("c", 1, (int64_t[]){256}, -1, 1, 13);
    check_thread_invariant("add [C]", det_add, (cf_tensor *[]){x, c}, 2, NULL);
    cf_param_free(c);
    cf_tensor *b1c = test_param_uniform("b1c", 3, (int64_t[]){8, 1, 256}, -1, 1, 14);
    check_thread_invariant("add [B, 1, C]", det_add, (cf_tensor *[]){x, b1c}, 2, NULL);
    cf_param_free(b1c);
    check_thread_invariant("sum", det_sum, &x, 1, NULL);

    cf_param_free(x);
    cf_param_free(y);
    cf_param_free(z);
}

/* PyTorch returns NaN (0 / 0) when every target is ignored; our contract is 0 and zero gradients. */
TEST(cross_entropy_all_ignored) {
    cf_tensor *logits = test_param_uniform("logits", 2, (int64_t[]){3, 5}, -1, 1, 1);
    cf_param_zero_grad(logits);
    cf_ctx *ctx = cf_ctx_new(1);
    cf_ce_stats st = {-1, -1};
    cf_tensor *loss = cf_cross_entropy(ctx, logits, (int32_t[]){0, 0, 0}, 0.1, 0, &st);
    CHECK(loss->data[0] == 0 && st.nll_sum == 0 && st.n_tokens == 0);
    cf_backward(ctx, loss);
    int64_t nonzero = 0;
    for (int64_t i = 0; i < logits->numel; i++) nonzero += logits->grad[i] != 0;
    CHECK(nonzero == 0);
    cf_ctx_free(ctx);
    cf_param_free(logits);
}
