/* core/ops_softmax.c - softmax and log-softmax over the last dim.
 *
 * x viewed as [N, C] (N = all leading dims). Both subtract the row max before exponentiating, so
 * large logits cannot overflow. Backward uses only the saved output y:
 *   softmax:     dx = y * (g - sum_c g y)
 *   log_softmax: dx = g - exp(y) * sum_c g
 * Rows are independent and reduced in a fixed lane order (core/vecmath.h), so results do not depend
 * on the thread count.
 */
#include "core/kernel.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "core/vecmath.h"

/* yr[c] = exp(xr[c] - m); returns sum_c yr[c]. Two plain loops rather than one fused loop: gcc
 * vectorizes the exp loop and the lane-wise sum separately, but not the two fused, and the row is
 * still in L1 for the second pass. */
static double exp_shift_sum(const cf_real *xr, cf_real m, cf_real *yr, int64_t n) {
    for (int64_t c = 0; c < n; c++) yr[c] = cf_vexp(xr[c] - m);
    return cf_row_sum_d(yr, n);
}

static void softmax_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    if (!x->requires_grad) return;
    const cf_real *y = node->out->data, *g = node->out->grad; /* [N, C] */
    cf_real *dx = cf_grad(ctx, x);                            /* [N, C] */
    int64_t rows = cf_rows(x), cols = cf_cols(x);
    CF_PARALLEL_FOR(rows * cols > CF_PAR_MIN_WORK, for (int64_t r = 0; r < rows; r++) {
        const cf_real *yr = y + r * cols, *gr = g + r * cols;
        cf_real *d = dx + r * cols;
        cf_real dot = (cf_real)cf_row_dot_d(gr, yr, cols);
        for (int64_t c = 0; c < cols; c++) d[c] += yr[c] * (gr[c] - dot);
    });
}

static void log_softmax_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    if (!x->requires_grad) return;
    const cf_real *y = node->out->data, *g = node->out->grad; /* [N, C] */
    cf_real *dx = cf_grad(ctx, x);                            /* [N, C] */
    int64_t rows = cf_rows(x), cols = cf_cols(x);
    CF_PARALLEL_FOR(rows * cols > CF_PAR_MIN_WORK, for (int64_t r = 0; r < rows; r++) {
        const cf_real *yr = y + r * cols, *gr = g + r * cols;
        cf_real *d = dx + r * cols;
        cf_real gsum = (cf_real)cf_row_sum_d(gr, cols);
        for (int64_t c = 0; c < cols; c++) d[c] += gr[c] - cf_vexp(yr[c]) * gsum;
    });
}

/* softmax or log-softmax of each row of x (the two share the max and the sum of exps). */
static cf_tensor *softmax_forward(cf_ctx *ctx, cf_tensor *x, bool log_space) {
    char sx[64];
    CF_ASSERT(cf_cols(x) > 0, "%s: empty last dim in %s", log_space ? "log_softmax" : "softmax",
              cf_shape_str(x, sx, 64));
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, x->shape);
    const cf_real *xd = x->data; /* [N, C] */
    cf_real *y = out->data;       /* [N, C] */
    int64_t rows = cf_rows(x), cols = cf_cols(x);
    CF_PARALLEL_FOR(rows * cols > CF_PAR_MIN_WORK, for (int64_t r = 0; r < rows; r++) {
        const cf_real *xr = xd + r * cols;
        cf_real *yr = y + r * cols;
        cf_real m = cf_row_max(xr, cols);
        double sum = exp_shift_sum(xr, m, yr, cols);
        if (!log_space) {
            cf_real inv = (cf_real)(1.0 / sum);
            for (int64_t c = 0; c < cols; c++) yr[c] *= inv;
        } else {
            /* log-sum-exp = m + log(sum exp(x - m)); subtract in two steps so the largest entry
             * keeps full precision (x - m is exact for it). yr held the exps until now. */
            cf_real lse = (cf_real)log(sum);
            for (int64_t c = 0; c < cols; c++) yr[c] = (xr[c] - m) - lse;
        }
    });
    return out;
}

cf_tensor *cf_softmax(cf_ctx *ctx, cf_tensor *x) {
    cf_tensor *out = softmax_forward(ctx, x, false);
    cf_tape_record(ctx, "softmax", softmax_backward, out, 1, (cf_tensor *[]){x});
    return out;
}

cf_tensor *cf_log_softmax(cf_ctx *ctx, cf_tensor *x) {
    cf_tensor *out = softmax_forward(ctx, x, true);
    cf_tape_record(ctx, "log_softmax", log_softmax_backward, out, 1, (cf_tensor *[]){x});
    return out;
}
