/* core/ops_norm.c - layernorm and rmsnorm over the last dim, fused forward and backward.
 *
 * x viewed as [N, C]; w, b [C] optional. One implementation serves both: rmsnorm is layernorm
 * without centering (mean taken as 0) and without bias.
 *   forward:  m = mean(x) (0 for rmsnorm), rstd = 1 / sqrt(mean((x - m)^2) + eps)  (biased),
 *             xh = (x - m) * rstd, y = xh * w + b.
 *             Row statistics are accumulated in double, the variance from the centered values
 *             (a second pass over a row that is still in L1), so there is no E[x^2] - E[x]^2
 *             cancellation. mean and rstd are saved per row for backward (2N numbers).
 *   backward: dh = g * w; dx = rstd * (dh - mean(dh) - xh * mean(dh * xh))
 *             (rmsnorm: no mean(dh) term); dw = sum_rows g * xh; db = sum_rows g.
 * dw/db are reductions over rows: each fixed block of NORM_ROWBLK rows writes its own partial
 * [C] into scratch, then the partials are summed in block order, in double, in parallel over
 * columns. The partition never depends on the thread count, so neither do the bits.
 */
#include <string.h>

#include "core/kernel.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "core/vecmath.h"

#define NORM_ROWBLK 32

typedef struct norm_saved {
    cf_real *mean; /* [N]; NULL for rmsnorm */
    cf_real *rstd; /* [N] */
} norm_saved;

static void norm_forward(const cf_real *x, const cf_real *w, const cf_real *b, int64_t rows, int64_t cols,
                         double eps, cf_real *y, cf_real *mean, cf_real *rstd) {
    CF_PARALLEL_FOR(rows * cols > CF_PAR_MIN_WORK, for (int64_t r = 0; r < rows; r++) {
        const cf_real *xr = x + r * cols;
        cf_real *yr = y + r * cols;
        double md = mean ? cf_row_sum_d(xr, cols) / (double)cols : 0.0;
        double var = cf_row_sqdev_d(xr, md, cols) / (double)cols;
        cf_real m = (cf_real)md, rs = (cf_real)(1.0 / sqrt(var + eps));
        if (mean) mean[r] = m;
        rstd[r] = rs;
        if (w && b)
            for (int64_t c = 0; c < cols; c++) yr[c] = (xr[c] - m) * rs * w[c] + b[c];
        else if (w)
            for (int64_t c = 0; c < cols; c++) yr[c] = (xr[c] - m) * rs * w[c];
        else if (b)
            for (int64_t c = 0; c < cols; c++) yr[c] = (xr[c] - m) * rs + b[c];
        else
            for (int64_t c = 0; c < cols; c++) yr[c] = (xr[c] - m) * rs;
    });
}

/* sum_c dh * xh for one row, dh = g * w (w NULL: 1), xh = (x - m) * rs. Kept apart from the
 * sum of dh: gcc vectorizes each lane loop alone but not the two fused (4x slower measured). */
static double row_dh_xh_sum(const cf_real *x, const cf_real *g, const cf_real *w, cf_real m, cf_real rs,
                            int64_t n) {
    double acc[CF_LANES] = {0};
    int64_t c = 0;
    if (w) {
        for (; c + CF_LANES <= n; c += CF_LANES)
            for (int j = 0; j < CF_LANES; j++) acc[j] += (double)(g[c + j] * w[c + j] * ((x[c + j] - m) * rs));
        for (int j = 0; c + j < n; j++) acc[j] += (double)(g[c + j] * w[c + j] * ((x[c + j] - m) * rs));
    } else {
        for (; c + CF_LANES <= n; c += CF_LANES)
            for (int j = 0; j < CF_LANES; j++) acc[j] += (double)(g[c + j] * ((x[c + j] - m) * rs));
        for (int j = 0; c + j < n; j++) acc[j] += (double)(g[c + j] * ((x[c + j] - m) * rs));
    }
    return cf_lanes_sum_d(acc);
}

static void norm_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0], *w = node->in[1], *b = node->in[2];
    const norm_saved *sv = node->saved;
    int64_t rows = cf_rows(x), cols = cf_cols(x);
    bool need_x = x->requires_grad, need_w = w && w->requires_grad, need_b = b && b->requires_grad;
    const cf_real *xd = x->data, *g = node->out->grad; /* [N, C] */
    const cf_real *wd = w ? w->data : NULL;            /* [C] */
    bool fresh = false; /* a new dx buffer is stored into: no zero-fill pass */
    cf_real *dx = need_x ? cf_grad_first(ctx, x, &fresh) : NULL; /* [N, C] */
    int64_t nblk = (rows + NORM_ROWBLK - 1) / NORM_ROWBLK;
    /* [nblk, 2, C]: per row block, the partial dw then the partial db */
    cf_real *part = need_w || need_b ? cf_scratch(ctx, (size_t)(nblk * 2 * cols) * sizeof(cf_real)) : NULL;
    double inv_c = 1.0 / (double)cols;
    CF_PARALLEL_FOR(rows * cols > CF_PAR_MIN_WORK, for (int64_t k = 0; k < nblk; k++) {
        cf_real *pw = part ? part + k * 2 * cols : NULL, *pb = part ? pw + cols : NULL;
        if (part) memset(pw, 0, (size_t)(2 * cols) * sizeof(cf_real));
        int64_t r1 = (k + 1) * NORM_ROWBLK < rows ? (k + 1) * NORM_ROWBLK : rows;
        for (int64_t r = k * NORM_ROWBLK; r < r1; r++) {
            const cf_real *xr = xd + r * cols, *gr = g + r * cols;
            cf_real m = sv->mean ? sv->mean[r] : (cf_real)0, rs = sv->rstd[r];
            if (need_w && need_b)
                for (int64_t c = 0; c < cols; c++) {
                    pw[c] += gr[c] * ((xr[c] - m) * rs);
                    pb[c] += gr[c];
                }
            else if (need_w)
                for (int64_t c = 0; c < cols; c++) pw[c] += gr[c] * ((xr[c] - m) * rs);
            else if (need_b)
                for (int64_t c = 0; c < cols; c++) pb[c] += gr[c];
            if (!need_x) continue;
            /* a = mean(dh) (layernorm only), bb = mean(dh * xh) */
            double s1 = !sv->mean ? 0.0 : wd ? cf_row_dot_d(gr, wd, cols) : cf_row_sum_d(gr, cols);
            cf_real a = (cf_real)(s1 * inv_c), bb = (cf_real)(row_dh_xh_sum(xr, gr, wd, m, rs, cols) * inv_c);
            cf_real *d = dx + r * cols;
            if (fresh && wd)
                for (int64_t c = 0; c < cols; c++) d[c] = rs * (gr[c] * wd[c] - a - (xr[c] - m) * rs * bb);
            else if (fresh)
                for (int64_t c = 0; c < cols; c++) d[c] = rs * (gr[c] - a - (xr[c] - m) * rs * bb);
            else if (wd)
                for (int64_t c = 0; c < cols; c++) d[c] += rs * (gr[c] * wd[c] - a - (xr[c] - m) * rs * bb);
            else
                for (int64_t c = 0; c < cols; c++) d[c] += rs * (gr[c] - a - (xr[c] - m) * rs * bb);
        }
    });
    double *scratch = cf_scratch(ctx, (size_t)cf_col_sum_scratch(nblk, cols) * sizeof(double));
    if (need_w) cf_col_sum_add(part, nblk, 2 * cols, cols, cf_grad(ctx, w), scratch);
    if (need_b) cf_col_sum_add(part + cols, nblk, 2 * cols, cols, cf_grad(ctx, b), scratch);
}

static cf_tensor *norm(cf_ctx *ctx, const char *name, cf_tensor *x, cf_tensor *w, cf_tensor *b, double eps,
                       bool center) {
    char sx[64], sp[64];
    int64_t cols = cf_cols(x);
    CF_ASSERT(cols > 0, "%s: empty last dim in %s", name, cf_shape_str(x, sx, 64));
    int64_t rows = cf_rows(x);
    CF_ASSERT(!w || (w->ndim == 1 && w->shape[0] == cols), "%s: weight %s for x %s", name,
              cf_shape_str(w, sp, 64), cf_shape_str(x, sx, 64));
    CF_ASSERT(!b || (b->ndim == 1 && b->shape[0] == cols), "%s: bias %s for x %s", name,
              cf_shape_str(b, sp, 64), cf_shape_str(x, sx, 64));
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, x->shape);
    /* Row statistics always go to the arena (2N numbers): cheaper than deciding twice. */
    norm_saved *sv = cf_scratch(ctx, sizeof *sv);
    sv->mean = center ? cf_scratch(ctx, (size_t)rows * sizeof(cf_real)) : NULL;
    sv->rstd = cf_scratch(ctx, (size_t)rows * sizeof(cf_real));
    norm_forward(x->data, w ? w->data : NULL, b ? b->data : NULL, rows, cols, eps, out->data, sv->mean, sv->rstd);
    cf_node *node = cf_tape_record(ctx, name, norm_backward, out, 3, (cf_tensor *[]){x, w, b});
    if (node) node->saved = sv;
    return out;
}

cf_tensor *cf_layernorm(cf_ctx *ctx, cf_tensor *x, cf_tensor *w, cf_tensor *b, double eps) {
    return norm(ctx, "layernorm", x, w, b, eps, true);
}

cf_tensor *cf_rmsnorm(cf_ctx *ctx, cf_tensor *x, cf_tensor *w, double eps) {
    return norm(ctx, "rmsnorm", x, w, NULL, eps, false);
}
