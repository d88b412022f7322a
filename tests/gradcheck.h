/* tests/gradcheck.h - compare backward against central finite differences (float64 build).
 *
 *     static cf_tensor *f(cf_ctx *ctx, cf_tensor **in, void *user) { return cf_relu(ctx, in[0]); }
 *     TEST(grad_relu) {
 *         cf_tensor *x = test_param_uniform("x", 2, (int64_t[]){3, 5}, -1, 1, 1);
 *         GRADCHECK("relu", f, (cf_tensor *[]){x}, 1, NULL);
 *         cf_param_free(x);
 *     }
 *
 * f may return a tensor of any shape: the checked scalar is L = sum(out * R) for a fixed random R,
 * so every output element's gradient path is exercised. Inputs must be parameters (their data is
 * nudged in place and restored). At most `GRADCHECK_MAX_PROBES` elements of each input are probed
 * (evenly spread, always including the first and last).
 */
#ifndef CF_GRADCHECK_H
#define CF_GRADCHECK_H

#include "core/autograd.h"

#ifndef CF_REAL_DOUBLE
#error "gradient checks are compiled against the float64 build (CF_REAL_DOUBLE)"
#endif

typedef cf_tensor *(*gradcheck_fn)(cf_ctx *ctx, cf_tensor **inputs, void *user);

typedef struct gradcheck_opts {
    double eps;                 /* finite-difference step (default 1e-6) */
    double atol, rtol;          /* |analytic - numeric| <= atol + rtol * |numeric| (default 1e-6, 1e-5) */
    bool training;              /* ctx->training, for dropout (default false) */
} gradcheck_opts;

#define GRADCHECK_MAX_PROBES 48

/* Returns true if every probed element is within tolerance; reports the worst one otherwise. */
bool gradcheck_run(const char *name, gradcheck_fn f, cf_tensor **inputs, int n_inputs, void *user,
                   const gradcheck_opts *opts, const char *file, int line);
#define GRADCHECK(name, f, inputs, n, user) gradcheck_run((name), (f), (inputs), (n), (user), NULL, __FILE__, __LINE__)
#define GRADCHECK_OPTS(name, f, inputs, n, user, opts) gradcheck_run((name), (f), (inputs), (n), (user), (opts), __FILE__, __LINE__)

#endif
