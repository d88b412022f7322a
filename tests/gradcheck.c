/* tests/gradcheck.c - central finite differences in double precision against backward. */
#include "tests/gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "tests/test.h"

static double weighted_sum(const cf_tensor *out, const double *r) {
    double s = 0;
    for (int64_t i = 0; i < out->numel; i++) s += out->data[i] * r[i];
    return s;
}

static double eval_loss(cf_ctx *ctx, gradcheck_fn f, cf_tensor **inputs, void *user, const double **r,
                        int64_t *numel) {
    cf_ctx_reset(ctx);
    cf_ctx_begin_step(ctx, 7);
    bool prev = cf_ctx_set_grad(ctx, false);
    cf_tensor *out = f(ctx, inputs, user);
    cf_ctx_set_grad(ctx, prev);
    CF_ASSERT(out->numel == *numel, "gradcheck: output size changed");
    return weighted_sum(out, *r);
}

bool gradcheck_run(const char *name, gradcheck_fn f, cf_tensor **inputs, int n_inputs, void *user,
                   const gradcheck_opts *opts, const char *file, int line) {
    gradcheck_opts o = {1e-6, 1e-6, 1e-5, false};
    if (opts) {
        o = *opts;
        if (o.eps == 0) o.eps = 1e-6;
        if (o.atol == 0) o.atol = 1e-6;
        if (o.rtol == 0) o.rtol = 1e-5;
    }
    cf_ctx *ctx = cf_ctx_new(1234);
    ctx->training = o.training;
    for (int k = 0; k < n_inputs; k++) cf_param_zero_grad(inputs[k]);

    /* Analytic: backward from out with upstream gradient R. */
    cf_ctx_begin_step(ctx, 7);
    cf_tensor *out = f(ctx, inputs, user);
    int64_t numel = out->numel;
    double *r = cf_xmalloc((size_t)(numel ? numel : 1) * sizeof *r);
    cf_rng rng = cf_rng_init(99, CF_RNG_STREAM_TEST);
    for (int64_t i = 0; i < numel; i++) r[i] = 2 * cf_rng_uniform_f64(&rng) - 1;
    bool any_requires = out->requires_grad;
    if (any_requires) cf_backward_seeded(ctx, out, r);

    bool ok = true;
    double worst = 0, worst_a = 0, worst_n = 0;
    int worst_k = -1;
    int64_t worst_i = -1;
    const double *rr = r;
    for (int k = 0; k < n_inputs; k++) {
        cf_tensor *x = inputs[k];
        int64_t n = x->numel, probes = n < GRADCHECK_MAX_PROBES ? n : GRADCHECK_MAX_PROBES;
        for (int64_t p = 0; p < probes; p++) {
            int64_t i = probes > 1 ? p * (n - 1) / (probes - 1) : 0;
            double saved = x->data[i];
            x->data[i] = saved + o.eps;
            double lp = eval_loss(ctx, f, inputs, user, &rr, &numel);
            x->data[i] = saved - o.eps;
            double lm = eval_loss(ctx, f, inputs, user, &rr, &numel);
            x->data[i] = saved;
            double numeric = (lp - lm) / (2 * o.eps), analytic = x->grad[i];
            double v = fabs(analytic - numeric) / (o.atol + o.rtol * fabs(numeric));
            if (!(v <= worst)) {
                worst = v;
                worst_k = k;
                worst_i = i;
                worst_a = analytic;
                worst_n = numeric;
            }
        }
    }
    if (!(worst <= 1)) {
        ok = false;
        test_fail(file, line, "%s: d/d%s[%lld]: backward %.10g, finite difference %.10g (atol %g, rtol %g)", name,
                  inputs[worst_k]->name ? inputs[worst_k]->name : "input", (long long)worst_i, worst_a, worst_n,
                  o.atol, o.rtol);
    }
    free(r);
    cf_ctx_free(ctx);
    return ok;
}
