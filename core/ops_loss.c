/* core/ops_loss.c - fused log_softmax + cross-entropy with label smoothing and an ignore index.
 *
 * PyTorch's F.cross_entropy(logits, y, ignore_index, label_smoothing=ls, reduction='mean'): with
 * lse = logsumexp(logits[r]) and -logp[v] = lse - logits[r, v], a counted row contributes
 *     loss_r = (1 - ls) * (lse - logits[r, y]) + ls * (lse - mean_v logits[r, v])
 * and the result is sum_r loss_r / n_tokens over the rows whose target is not ignore_index (0 when
 * none is counted). The forward saves lse per row, so backward is one pass:
 *     dlogits[r, v] += g / n_tokens * (exp(logits[r, v] - lse) - ls / V - (1 - ls) * [v == y]).
 * Rows run in parallel; the loss is summed from per-row values in row order, so it is bit-identical
 * for any thread count.
 */
#include <math.h>
#include <string.h>

#include "core/gemm.h"
#include "core/kernel.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "core/vecmath.h"

typedef struct ce_saved {
    int32_t *targets;           /* [N] copy */
    cf_real *lse;               /* [N] logsumexp of each row */
    int64_t n_tokens;
} ce_saved;

/* sum_v exp(x[v] - m) and sum_v x[v] in one pass: CF_LANES float accumulators each (a vector
 * register's worth, so gcc vectorises without reassociating), combined in lane order, so the row
 * sums do not depend on threads. Float lanes rather than cf_row_sum_d's double ones: at V = 8000
 * the double version made the forward ~8% slower, and 500 terms per lane stay well inside float
 * precision. */
static void row_sums(const cf_real *x, int64_t V, cf_real m, cf_real *sum_exp, cf_real *sum_x) {
    cf_real le[CF_LANES] = {0}, lx[CF_LANES] = {0};
    int64_t v = 0;
    for (; v + CF_LANES <= V; v += CF_LANES)
        for (int j = 0; j < CF_LANES; j++) {
            le[j] += cf_vexp(x[v + j] - m);
            lx[j] += x[v + j];
        }
    cf_real se = 0, sx = 0;
    for (int j = 0; j < CF_LANES; j++) {
        se += le[j];
        sx += lx[j];
    }
    for (; v < V; v++) {
        se += cf_vexp(x[v] - m);
        sx += x[v];
    }
    *sum_exp = se;
    *sum_x = sx;
}

static void cross_entropy_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *logits = node->in[0];
    const ce_saved *s = node->saved;
    if (s->n_tokens == 0) return; /* every row ignored: zero gradient */
    int64_t N = cf_rows(logits), V = cf_cols(logits);
    double ls = node->f[0];
    int32_t ignore = (int32_t)node->i[0];
    cf_real coef = (cf_real)(node->out->grad[0] / (double)s->n_tokens);
    cf_real smooth = (cf_real)(ls / (double)V), hit = (cf_real)(1 - ls);
    bool fresh; /* a new buffer is stored into (ignored rows get zeros): no zero-fill pass */
    cf_real *dl = cf_grad_first(ctx, logits, &fresh); /* [N, V] */
    CF_PARALLEL_FOR(N * V > CF_PAR_MIN_WORK, for (int64_t r = 0; r < N; r++) {
        int32_t y = s->targets[r];
        cf_real *d = dl + r * V;
        if (y == ignore) {
            if (fresh) memset(d, 0, (size_t)V * sizeof *d);
            continue;
        }
        const cf_real *x = logits->data + r * V;
        cf_real lse = s->lse[r];
        if (fresh)
            for (int64_t v = 0; v < V; v++) d[v] = coef * (cf_vexp(x[v] - lse) - smooth);
        else
            for (int64_t v = 0; v < V; v++) d[v] += coef * (cf_vexp(x[v] - lse) - smooth);
        d[y] -= coef * hit;
    });
}

cf_tensor *cf_cross_entropy(cf_ctx *ctx, cf_tensor *logits, const int32_t *targets, double label_smoothing,
                            int32_t ignore_index, cf_ce_stats *stats) {
    CF_ASSERT(label_smoothing >= 0 && label_smoothing <= 1, "cross_entropy: label_smoothing %g", label_smoothing);
    int64_t N = cf_rows(logits), V = cf_cols(logits);
    ce_saved *s = cf_scratch(ctx, sizeof *s);
    s->targets = cf_scratch(ctx, (size_t)(N ? N : 1) * sizeof *s->targets); /* [N] */
    s->lse = cf_scratch(ctx, (size_t)(N ? N : 1) * sizeof *s->lse);         /* [N] */
    double *row_loss = cf_scratch(ctx, (size_t)(N ? N : 1) * sizeof *row_loss); /* [N] smoothed */
    double *row_nll = cf_scratch(ctx, (size_t)(N ? N : 1) * sizeof *row_nll);   /* [N] unsmoothed */
    memcpy(s->targets, targets, (size_t)N * sizeof *targets);
    s->n_tokens = 0;
    for (int64_t r = 0; r < N; r++) {
        int32_t y = targets[r];
        if (y == ignore_index) continue;
        CF_ASSERT(y >= 0 && y < V, "cross_entropy: target %d of row %lld is outside [0, %lld)", (int)y, (long long)r,
                  (long long)V);
        s->n_tokens++;
    }
    double ls = label_smoothing;
    CF_PARALLEL_FOR(N * V > CF_PAR_MIN_WORK, for (int64_t r = 0; r < N; r++) {
        int32_t y = targets[r];
        if (y == ignore_index) {
            s->lse[r] = 0;
            row_loss[r] = row_nll[r] = 0;
            continue;
        }
        const cf_real *x = logits->data + r * V;
        cf_real m = cf_row_max(x, V), sum_exp, sum_x;
        row_sums(x, V, m, &sum_exp, &sum_x);
        cf_real lse = m + (cf_real)log((double)sum_exp);
        s->lse[r] = lse;
        double nll = (double)lse - (double)x[y];
        row_nll[r] = nll;
        row_loss[r] = (1 - ls) * nll + ls * ((double)lse - (double)sum_x / (double)V);
    });
    double loss = 0, nll_sum = 0;
    for (int64_t r = 0; r < N; r++) {
        loss += row_loss[r];
        nll_sum += row_nll[r];
    }
    if (stats) {
        stats->nll_sum = nll_sum;
        stats->n_tokens = s->n_tokens;
    }
    cf_tensor *out = cf_tensor_new(ctx, 1, (int64_t[]){1});
    out->data[0] = s->n_tokens ? (cf_real)(loss / (double)s->n_tokens) : 0;
    cf_node *node = cf_tape_record(ctx, "cross_entropy", cross_entropy_backward, out, 1, (cf_tensor *[]){logits});
    if (node) {
        node->saved = s;
        node->f[0] = ls;
        node->i[0] = ignore_index;
    }
    return out;
}

/* ---- linear + cross-entropy, chunked ----
 * loss = cross_entropy(x W^T) without the [N, V] logits: rows go in chunks of `rows` (a function
 * of V alone, ~8 MB of logits); each chunk's logits are computed, turned into loss terms and, when
 * a gradient is wanted, into dlogits in place (for an upstream gradient of 1), and folded at once
 * into dx = dlogits W and dW = sum over chunks of dlogits^T x. Backward only scales those by the
 * upstream gradient (x * 1 is exact). dW is thus a sum over fixed chunks of rows, in chunk order:
 * another rounding than one GEMM over all rows, the same for any thread count. */

typedef struct lce_saved {
    cf_real *dx;                /* [N, d] for an upstream gradient of 1, or NULL */
    cf_real *dw;                /* [V, d] likewise, or NULL */
} lce_saved;

/* A multiple of 64 rows: the GEMMs of a chunk then split into equal row tiles (core/gemm.c rounds a
 * tile to 16 rows; 262 rows went as 144 + 118, one thread idle for 9% of each product). */
static int64_t lce_chunk_rows(int64_t V) {
    int64_t r = (int64_t)(1 << 21) / (V > 0 ? V : 1) / 64 * 64;
    return r < 64 ? 64 : r > 1024 ? 1024 : r;
}

static void linear_ce_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0], *w = node->in[1];
    const lce_saved *s = node->saved;
    const cf_real g = node->out->grad[0];
    if (s->dx && x->requires_grad) {
        bool fresh;
        cf_real *dx = cf_grad_first(ctx, x, &fresh);
        const int64_t n = x->numel;
        CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t i = 0; i < n; i++) {
            dx[i] = fresh ? g * s->dx[i] : dx[i] + g * s->dx[i];
        });
    }
    if (s->dw && w->requires_grad) {
        cf_real *dw = cf_grad(ctx, w);
        const int64_t n = w->numel;
        CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t i = 0; i < n; i++) {
            dw[i] += g * s->dw[i];
        });
    }
}

cf_tensor *cf_linear_cross_entropy(cf_ctx *ctx, cf_tensor *x, cf_tensor *w, const int32_t *targets,
                                   double label_smoothing, int32_t ignore_index, cf_ce_stats *stats) {
    char sx[64], sw[64];
    CF_ASSERT(w->ndim == 2 && cf_cols(x) == w->shape[1], "linear_cross_entropy: x %s, weight %s",
              cf_shape_str(x, sx, 64), cf_shape_str(w, sw, 64));
    CF_ASSERT(label_smoothing >= 0 && label_smoothing <= 1, "linear_cross_entropy: label_smoothing %g",
              label_smoothing);
    const int64_t N = cf_rows(x), d = cf_cols(x), V = w->shape[0];
    int64_t n_tokens = 0;
    for (int64_t r = 0; r < N; r++) {
        int32_t y = targets[r];
        if (y == ignore_index) continue;
        CF_ASSERT(y >= 0 && y < V, "linear_cross_entropy: target %d of row %lld is outside [0, %lld)", (int)y,
                  (long long)r, (long long)V);
        n_tokens++;
    }
    const bool want_grad = ctx->grad_enabled && n_tokens > 0 && (x->requires_grad || w->requires_grad);
    lce_saved *s = cf_scratch(ctx, sizeof *s);
    s->dx = want_grad && x->requires_grad ? cf_scratch(ctx, (size_t)(N * d) * sizeof(cf_real)) : NULL; /* [N, d] */
    s->dw = want_grad && w->requires_grad ? cf_scratch(ctx, (size_t)(V * d) * sizeof(cf_real)) : NULL; /* [V, d] */
    const int64_t CH = lce_chunk_rows(V);
    cf_real *logits = cf_scratch(ctx, (size_t)((N < CH ? N : CH) * V + 1) * sizeof(cf_real)); /* [CH, V] */
    double *row_loss = cf_scratch(ctx, (size_t)(N ? N : 1) * sizeof *row_loss);                /* [N] */
    double *row_nll = cf_scratch(ctx, (size_t)(N ? N : 1) * sizeof *row_nll);                  /* [N] */
    const double ls = label_smoothing;
    const cf_real coef = (cf_real)(1.0 / (double)(n_tokens ? n_tokens : 1));
    const cf_real smooth = (cf_real)(ls / (double)V), hit = (cf_real)(1 - ls);
    for (int64_t c0 = 0; c0 < N; c0 += CH) {
        const int64_t nr = N - c0 < CH ? N - c0 : CH;
        const cf_real *xc = x->data + c0 * d;
        cf_gemm_rm(false, true, nr, V, d, 1, xc, d, w->data, d, 0, logits, V); /* [nr, V] */
        CF_PARALLEL_FOR(nr * V > CF_PAR_MIN_WORK, for (int64_t i = 0; i < nr; i++) {
            const int64_t r = c0 + i;
            const int32_t y = targets[r];
            cf_real *l = logits + i * V;
            if (y == ignore_index) {
                row_loss[r] = row_nll[r] = 0;
                if (want_grad) memset(l, 0, (size_t)V * sizeof *l);
                continue;
            }
            cf_real m = cf_row_max(l, V), sum_exp, sum_x;
            row_sums(l, V, m, &sum_exp, &sum_x);
            cf_real lse = m + (cf_real)log((double)sum_exp);
            double nll = (double)lse - (double)l[y];
            row_nll[r] = nll;
            row_loss[r] = (1 - ls) * nll + ls * ((double)lse - (double)sum_x / (double)V);
            if (want_grad) { /* dlogits for an upstream gradient of 1, over the logits */
                for (int64_t v = 0; v < V; v++) l[v] = coef * (cf_vexp(l[v] - lse) - smooth);
                l[y] -= coef * hit;
            }
        });
        /* dx and dW of the chunk in one parallel loop (core/gemm.h: the same bits as two calls) */
        cf_gemm_args prod[2];
        int np = 0;
        if (s->dx) prod[np++] = (cf_gemm_args){false, false, nr, d, V, 1, logits, V, w->data, d, 0, s->dx + c0 * d, d};
        if (s->dw) prod[np++] = (cf_gemm_args){true, false, V, d, nr, 1, logits, V, xc, d, c0 == 0 ? 0 : 1, s->dw, d};
        cf_gemm_rm_group(prod, np);
    }
    double loss = 0, nll_sum = 0;
    for (int64_t r = 0; r < N; r++) {
        loss += row_loss[r];
        nll_sum += row_nll[r];
    }
    if (stats) {
        stats->nll_sum = nll_sum;
        stats->n_tokens = n_tokens;
    }
    cf_tensor *out = cf_tensor_new(ctx, 1, (int64_t[]){1});
    out->data[0] = n_tokens ? (cf_real)(loss / (double)n_tokens) : 0;
    cf_node *node = cf_tape_record(ctx, "linear_cross_entropy", linear_ce_backward, out, 2, (cf_tensor *[]){x, w});
    if (node) node->saved = s; /* no token counted: dx and dw are NULL, a zero gradient */
    return out;
}
