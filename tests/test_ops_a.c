/* tests/test_ops_a.c - activations, softmax family and norms (float32 build): against PyTorch
 * golden values, accuracy of the vectorizable exp/tanh/erf, and bit-identical results for 1 and 2
 * threads.
 *
 * Fixture tolerances (tests/fixtures/ops_a.safetensors from tests/ref/ops_a.py, PyTorch 1.13 in
 * float32): |ours - torch| <= atol + rtol * |torch| with atol 1e-5, rtol 1e-4 for outputs and
 * gradients alike. Both sides round differently (our exp/erf are polynomial, PyTorch's are
 * Sleef's; our row sums are in double), so bit equality is not expected; 1e-4 relative is still
 * ~1000 float ulps tighter than any real bug.
 */
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "core/threads.h"
#include "core/vecmath.h"
#include "tests/test.h"
#include "tests/testlib.h"

#define FIX_ATOL 1e-5
#define FIX_RTOL 1e-4

typedef enum op_kind {
    OP_RELU, OP_GELU_ERF, OP_GELU_TANH, OP_SILU, OP_SOFTMAX, OP_LOG_SOFTMAX, OP_LAYERNORM, OP_RMSNORM
} op_kind;

/* w, b may be NULL. eps as in tests/ref/ops_a.py: 1e-5 for layernorm, 1e-6 for rmsnorm. */
static cf_tensor *run_op(cf_ctx *ctx, op_kind op, cf_tensor *x, cf_tensor *w, cf_tensor *b) {
    switch (op) {
    case OP_RELU: return cf_relu(ctx, x);
    case OP_GELU_ERF: return cf_gelu(ctx, x, CF_GELU_ERF);
    case OP_GELU_TANH: return cf_gelu(ctx, x, CF_GELU_TANH);
    case OP_SILU: return cf_silu(ctx, x);
    case OP_SOFTMAX: return cf_softmax(ctx, x);
    case OP_LOG_SOFTMAX: return cf_log_softmax(ctx, x);
    case OP_LAYERNORM: return cf_layernorm(ctx, x, w, b, 1e-5);
    default: return cf_rmsnorm(ctx, x, w, 1e-6);
    }
}

/* ---- PyTorch fixtures ---- */

typedef struct fixture_case {
    const char *name;
    op_kind op;
    bool has_w, has_b;
} fixture_case;

TEST(ops_a_match_pytorch) {
    static const fixture_case cases[] = {
        {"relu", OP_RELU, false, false},
        {"gelu_erf", OP_GELU_ERF, false, false},
        {"gelu_tanh", OP_GELU_TANH, false, false},
        {"silu", OP_SILU, false, false},
        {"softmax", OP_SOFTMAX, false, false},
        {"softmax_3d", OP_SOFTMAX, false, false},
        {"log_softmax", OP_LOG_SOFTMAX, false, false},
        {"layernorm", OP_LAYERNORM, true, true},
        {"layernorm_plain", OP_LAYERNORM, false, false},
        {"rmsnorm", OP_RMSNORM, true, false},
        {"rmsnorm_plain", OP_RMSNORM, false, false},
    };
    cf_st_file *f = cf_st_open(test_fixture_path("ops_a.safetensors"));
    CHECK_MSG(f != NULL, "%s", cf_error_message());
    if (!f) return;
    cf_ctx *ctx = cf_ctx_new(1);
    char key[128];
#define FIX(suffix) (snprintf(key, sizeof key, "%s.%s", c->name, suffix), key)
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const fixture_case *c = &cases[i];
        cf_tensor *x = test_fixture_param(f, FIX("x"));
        cf_tensor *r = test_fixture_param(f, FIX("r"));
        cf_tensor *w = c->has_w ? test_fixture_param(f, FIX("w")) : NULL;
        cf_tensor *b = c->has_b ? test_fixture_param(f, FIX("b")) : NULL;
        if (x && r && (w || !c->has_w) && (b || !c->has_b)) {
            cf_tensor *out = run_op(ctx, c->op, x, w, b);
            CHECK_FIXTURE(f, FIX("out"), out->data, out->numel, FIX_ATOL, FIX_RTOL);
            cf_backward_seeded(ctx, out, r->data);
            CHECK_FIXTURE(f, FIX("grad_x"), x->grad, x->numel, FIX_ATOL, FIX_RTOL);
            if (w) CHECK_FIXTURE(f, FIX("grad_w"), w->grad, w->numel, FIX_ATOL, FIX_RTOL);
            if (b) CHECK_FIXTURE(f, FIX("grad_b"), b->grad, b->numel, FIX_ATOL, FIX_RTOL);
        }
        cf_ctx_reset(ctx);
        cf_param_free(x);
        cf_param_free(r);
        cf_param_free(w);
        cf_param_free(b);
    }
#undef FIX
    cf_ctx_free(ctx);
    cf_st_close(f);
}

/* ---- the float kernels' exp / tanh / erf against libm in double ---- */

TEST(vecmath_fast_functions_accuracy) {
    double worst_exp = 0, worst_tanh = 0, worst_erf = 0;
    for (float x = -87.3f; x <= 88.3f; x += 0.00731f) {
        double want = exp((double)x);
        double e = fabs((double)cf_fast_expf(x) - want) / want;
        worst_exp = e > worst_exp ? e : worst_exp;
    }
    for (float x = -12.0f; x <= 12.0f; x += 0.000917f) {
        double t = fabs((double)cf_fast_tanhf(x) - tanh((double)x));
        double e = fabs((double)cf_fast_erff(x) - erf((double)x));
        worst_tanh = t > worst_tanh ? t : worst_tanh;
        worst_erf = e > worst_erf ? e : worst_erf;
    }
    CHECK_MSG(worst_exp < 1.5e-7, "exp relative error %g", worst_exp);
    CHECK_MSG(worst_tanh < 2.5e-7, "tanh absolute error %g", worst_tanh);
    CHECK_MSG(worst_erf < 5e-7, "erf absolute error %g", worst_erf);
    /* the ends: underflow to 0, overflow to inf, NaN stays NaN, exact at 0 */
    CHECK(cf_fast_expf(-1e9f) == 0.0f && cf_fast_expf(-100.0f) == 0.0f);
    CHECK(isinf(cf_fast_expf(100.0f)) && cf_fast_expf(0.0f) == 1.0f);
    CHECK(isnan(cf_fast_expf(NAN)));
    CHECK(cf_fast_tanhf(50.0f) == 1.0f && cf_fast_tanhf(-50.0f) == -1.0f);
    CHECK(cf_fast_erff(10.0f) == 1.0f && cf_fast_erff(-10.0f) == -1.0f);
}

/* ---- determinism: 1 thread vs 2 threads, bit for bit ---- */

/* Runs op forward + backward (upstream r) and returns out | grad_x | grad_w | grad_b, malloc'ed. */
static cf_real *run_collect(op_kind op, cf_tensor *x, cf_tensor *w, cf_tensor *b, const cf_tensor *r, size_t *n) {
    cf_param_zero_grad(x);
    if (w) cf_param_zero_grad(w);
    if (b) cf_param_zero_grad(b);
    cf_ctx *ctx = cf_ctx_new(1);
    cf_tensor *out = run_op(ctx, op, x, w, b);
    cf_backward_seeded(ctx, out, r->data);
    int64_t total = out->numel + x->numel + (w ? w->numel : 0) + (b ? b->numel : 0);
    cf_real *buf = cf_xmalloc((size_t)total * sizeof *buf), *p = buf;
    memcpy(p, out->data, (size_t)out->numel * sizeof *p);
    p += out->numel;
    memcpy(p, x->grad, (size_t)x->numel * sizeof *p);
    p += x->numel;
    if (w) memcpy(p, w->grad, (size_t)w->numel * sizeof *p), p += w->numel;
    if (b) memcpy(p, b->grad, (size_t)b->numel * sizeof *p);
    *n = (size_t)total * sizeof *buf;
    cf_ctx_free(ctx);
    return buf;
}

TEST(ops_a_bit_identical_across_threads) {
    /* 512 x 300 = 153600 elements: well above CF_PAR_MIN_WORK, so every kernel takes its OpenMP path */
    const int64_t shape[2] = {512, 300};
    cf_tensor *x = test_param_uniform("x", 2, shape, -3, 3, 11);
    cf_tensor *w = test_param_uniform("w", 1, shape + 1, 0.5, 1.5, 12);
    cf_tensor *b = test_param_uniform("b", 1, shape + 1, -1, 1, 13);
    cf_tensor *r = test_param_uniform("r", 2, shape, -1, 1, 14);
    static const char *names[] = {"relu", "gelu_erf", "gelu_tanh", "silu", "softmax", "log_softmax",
                                  "layernorm", "rmsnorm"};
    for (int op = OP_RELU; op <= OP_RMSNORM; op++) {
        cf_tensor *wo = op >= OP_LAYERNORM ? w : NULL, *bo = op == OP_LAYERNORM ? b : NULL;
        size_t n1, n2;
        cf_threads_init(1);
        cf_real *one = run_collect((op_kind)op, x, wo, bo, r, &n1);
        for (int t = 1; t < TEST_N_THREAD_COUNTS; t++) {
            cf_threads_init(test_thread_counts[t]);
            cf_real *other = run_collect((op_kind)op, x, wo, bo, r, &n2);
            CHECK_MSG(n1 == n2 && memcmp(one, other, n1) == 0, "%s: 1 and %d threads differ", names[op],
                      test_thread_counts[t]);
            free(other);
        }
        free(one);
    }
    cf_threads_init(0);
    cf_param_free(x);
    cf_param_free(w);
    cf_param_free(b);
    cf_param_free(r);
}

/* ---- edge cases ---- */

TEST(relu_zero_and_nan_like_pytorch) {
    cf_tensor *x = cf_param_new("x", 1, (int64_t[]){4});
    const cf_real v[4] = {-1, 0, 2, NAN};
    memcpy(x->data, v, sizeof v);
    cf_ctx *ctx = cf_ctx_new(1);
    cf_tensor *y = cf_relu(ctx, x);
    CHECK(y->data[0] == 0 && y->data[1] == 0 && y->data[2] == 2 && isnan(y->data[3]));
    cf_backward_seeded(ctx, y, (const cf_real[]){1, 1, 1, 1});
    CHECK(x->grad[0] == 0 && x->grad[1] == 0 && x->grad[2] == 1 && x->grad[3] == 1);
    cf_ctx_free(ctx);
    cf_param_free(x);
}

TEST(ops_a_no_grad_records_nothing) {
    cf_tensor *x = test_param_uniform("x", 2, (int64_t[]){3, 8}, -1, 1, 1);
    cf_tensor *w = test_param_uniform("w", 1, (int64_t[]){8}, -1, 1, 2);
    cf_ctx *ctx = cf_ctx_new(1);
    cf_ctx_set_grad(ctx, false);
    for (int op = OP_RELU; op <= OP_RMSNORM; op++) {
        cf_tensor *y = run_op(ctx, (op_kind)op, x, w, w);
        CHECK(!y->requires_grad);
    }
    CHECK(ctx->n_nodes == 0);
    cf_ctx_set_grad(ctx, true);
    for (int op = OP_RELU; op <= OP_RMSNORM; op++) run_op(ctx, (op_kind)op, x, w, w);
    CHECK(ctx->n_nodes == OP_RMSNORM + 1);
    cf_ctx_free(ctx);
    cf_param_free(x);
    cf_param_free(w);
}

/* cf_expand is the broadcast MLA used to get by adding a zeros tensor: the same values, and the
 * same gradient (one reduction order), bit for bit, on 1 and 2 threads. */
TEST(ops_expand_equals_adding_to_zeros) {
    const int64_t shape[4] = {3, 8, 40, 64}; /* large enough for the parallel paths */
    cf_tensor *x = test_param_uniform("x", 4, (int64_t[]){3, 1, 40, 64}, -1, 1, 21);
    cf_tensor *r = test_param_uniform("r", 4, shape, -1, 1, 22);
    cf_real *grad_first = NULL;
    for (int threads = 1; threads <= 2; threads++) {
        cf_threads_init(threads);
        cf_real *grads[2], *outs[2];
        cf_ctx *ctx = cf_ctx_new(1);
        for (int way = 0; way < 2; way++) { /* one backward per reset, as a training step does */
            cf_param_zero_grad(x);
            cf_tensor *y = way == 0 ? cf_expand(ctx, x, 4, shape) : cf_add(ctx, cf_tensor_zeros(ctx, 4, shape), x);
            cf_backward(ctx, cf_sum(ctx, cf_mul(ctx, y, r)));
            outs[way] = malloc((size_t)y->numel * sizeof(cf_real));
            memcpy(outs[way], y->data, (size_t)y->numel * sizeof(cf_real));
            grads[way] = malloc((size_t)x->numel * sizeof(cf_real));
            memcpy(grads[way], x->grad, (size_t)x->numel * sizeof(cf_real));
            cf_ctx_reset(ctx);
        }
        CHECK(memcmp(outs[0], outs[1], (size_t)r->numel * sizeof(cf_real)) == 0);
        CHECK(memcmp(grads[0], grads[1], (size_t)x->numel * sizeof(cf_real)) == 0);
        free(outs[0]);
        free(outs[1]);
        if (grad_first) CHECK(memcmp(grads[0], grad_first, (size_t)x->numel * sizeof(cf_real)) == 0);
        free(grad_first);
        grad_first = grads[0];
        free(grads[1]);
        cf_ctx_free(ctx);
    }
    free(grad_first);
    cf_threads_init(0);
    cf_param_free(x);
    cf_param_free(r);
}
