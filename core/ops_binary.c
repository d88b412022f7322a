/* core/ops_binary.c - add, sub, mul with one-sided broadcasting, expand, and scale. */
#include <string.h>

#include "core/broadcast.h"
#include "core/kernel.h"
#include "core/ops.h"
#include "core/parallel.h"

typedef enum binary_kind { BINARY_ADD, BINARY_SUB, BINARY_MUL } binary_kind;

static void binary_forward(binary_kind kind, const cf_bcast *s, const cf_real *a, const cf_real *b, cf_real *out) {
    int64_t cols = s->cols, bc = s->bstride[3];
    CF_PARALLEL_FOR(s->rows * cols > CF_PAR_MIN_WORK, for (int64_t r = 0; r < s->rows; r++) {
        const cf_real *ar = a + r * cols, *br = b + cf_bcast_b_row(s, r);
        cf_real *o = out + r * cols;
        if (bc) {
            switch (kind) {
            case BINARY_ADD: for (int64_t c = 0; c < cols; c++) o[c] = ar[c] + br[c]; break;
            case BINARY_SUB: for (int64_t c = 0; c < cols; c++) o[c] = ar[c] - br[c]; break;
            case BINARY_MUL: for (int64_t c = 0; c < cols; c++) o[c] = ar[c] * br[c]; break;
            }
        } else {
            cf_real v = br[0];
            switch (kind) {
            case BINARY_ADD: for (int64_t c = 0; c < cols; c++) o[c] = ar[c] + v; break;
            case BINARY_SUB: for (int64_t c = 0; c < cols; c++) o[c] = ar[c] - v; break;
            case BINARY_MUL: for (int64_t c = 0; c < cols; c++) o[c] = ar[c] * v; break;
            }
        }
    });
}

/* db += reduce over broadcast dims of (dout * factor), factor = +1, -1, or a (for mul).
 * Each thread owns whole elements of db and sums in a fixed order: deterministic. */
static void reduce_into_b(const cf_bcast *s, const cf_real *dout, const cf_real *a_or_null, double sign, cf_real *db) {
    int64_t brows = s->b[0] * s->b[1] * s->b[2], bcols = s->b[3], cols = s->cols;
    enum { BLOCK = 256 };
    int64_t nblk = (bcols + BLOCK - 1) / BLOCK;
    CF_PARALLEL_FOR(s->rows * cols > CF_PAR_MIN_WORK, for (int64_t job = 0; job < brows * nblk; job++) {
        int64_t br = job / nblk, c0 = (job % nblk) * BLOCK, c1 = c0 + BLOCK < bcols ? c0 + BLOCK : bcols;
        int64_t j2 = br % s->b[2], j1 = (br / s->b[2]) % s->b[1], j0 = br / (s->b[2] * s->b[1]);
        double acc[BLOCK] = {0};
        for (int64_t i0 = (s->b[0] == 1 ? 0 : j0); i0 < (s->b[0] == 1 ? s->a[0] : j0 + 1); i0++)
            for (int64_t i1 = (s->b[1] == 1 ? 0 : j1); i1 < (s->b[1] == 1 ? s->a[1] : j1 + 1); i1++)
                for (int64_t i2 = (s->b[2] == 1 ? 0 : j2); i2 < (s->b[2] == 1 ? s->a[2] : j2 + 1); i2++) {
                    int64_t r = (i0 * s->a[1] + i1) * s->a[2] + i2;
                    const cf_real *g = dout + r * cols, *x = a_or_null ? a_or_null + r * cols : NULL;
                    if (bcols == cols) {
                        for (int64_t c = c0; c < c1; c++) acc[c - c0] += x ? (double)g[c] * x[c] : g[c];
                    } else { /* b's last dim is 1: sum the whole row */
                        double t = 0;
                        for (int64_t c = 0; c < cols; c++) t += x ? (double)g[c] * x[c] : g[c];
                        acc[0] += t;
                    }
                }
        for (int64_t c = c0; c < c1; c++) db[br * bcols + c] += (cf_real)(sign * acc[c - c0]);
    });
}

static void binary_backward(cf_ctx *ctx, cf_node *node) {
    binary_kind kind = (binary_kind)node->i[0];
    cf_tensor *a = node->in[0], *b = node->in[1];
    cf_bcast s = cf_bcast_of(a, b, node->op, "a", "b");
    const cf_real *dout = node->out->grad;
    int64_t cols = s.cols, bc = s.bstride[3];
    /* b first: a's share of an add may take dout's buffer itself (cf_grad_pass, below) */
    if (b->requires_grad) {
        cf_real *db = cf_grad(ctx, b);
        double sign = kind == BINARY_SUB ? -1 : 1;
        const cf_real *factor = kind == BINARY_MUL ? a->data : NULL;
        if (s.same) {
            CF_PARALLEL_FOR(a->numel > CF_PAR_MIN_WORK, for (int64_t i = 0; i < a->numel; i++) {
                db[i] += (cf_real)(factor ? dout[i] * factor[i] : sign * dout[i]);
            });
        } else {
            reduce_into_b(&s, dout, factor, sign, db);
        }
    }
    if (a->requires_grad && kind != BINARY_MUL) {
        cf_grad_pass(ctx, a, node->out);
    } else if (a->requires_grad) {
        cf_real *da = cf_grad(ctx, a);
        CF_PARALLEL_FOR(s.rows * cols > CF_PAR_MIN_WORK, for (int64_t r = 0; r < s.rows; r++) {
            const cf_real *g = dout + r * cols, *br = b->data + cf_bcast_b_row(&s, r);
            cf_real *d = da + r * cols;
            if (bc)
                for (int64_t c = 0; c < cols; c++) d[c] += g[c] * br[c];
            else
                for (int64_t c = 0; c < cols; c++) d[c] += g[c] * br[0];
        });
    }
}

static cf_tensor *binary(cf_ctx *ctx, binary_kind kind, const char *name, cf_tensor *a, cf_tensor *b) {
    cf_bcast s = cf_bcast_of(a, b, name, "a", "b");
    cf_tensor *out = cf_tensor_new(ctx, a->ndim, a->shape);
    binary_forward(kind, &s, a->data, b->data, out->data);
    cf_node *node = cf_tape_record(ctx, name, binary_backward, out, 2, (cf_tensor *[]){a, b});
    if (node) node->i[0] = kind;
    return out;
}

cf_tensor *cf_add(cf_ctx *ctx, cf_tensor *a, cf_tensor *b) { return binary(ctx, BINARY_ADD, "add", a, b); }
cf_tensor *cf_sub(cf_ctx *ctx, cf_tensor *a, cf_tensor *b) { return binary(ctx, BINARY_SUB, "sub", a, b); }
cf_tensor *cf_mul(cf_ctx *ctx, cf_tensor *a, cf_tensor *b) { return binary(ctx, BINARY_MUL, "mul", a, b); }

/* ---- expand: broadcast x to a shape, without an operand to add ---- */

static void expand_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    cf_bcast s = cf_bcast_of(node->out, x, "expand", "shape", "x");
    /* the same fixed-order reduction as add's broadcast operand */
    if (s.same) {
        cf_real *dx = cf_grad(ctx, x);
        const cf_real *g = node->out->grad;
        CF_PARALLEL_FOR(x->numel > CF_PAR_MIN_WORK, for (int64_t i = 0; i < x->numel; i++) {
            dx[i] += g[i];
        });
    } else {
        reduce_into_b(&s, node->out->grad, NULL, 1, cf_grad(ctx, x));
    }
}

cf_tensor *cf_expand(cf_ctx *ctx, cf_tensor *x, int ndim, const int64_t *shape) {
    cf_tensor *out = cf_tensor_new(ctx, ndim, shape);
    cf_bcast s = cf_bcast_of(out, x, "expand", "shape", "x");
    int64_t cols = s.cols, bc = s.bstride[3];
    CF_PARALLEL_FOR(s.rows * cols > CF_PAR_MIN_WORK, for (int64_t r = 0; r < s.rows; r++) {
        const cf_real *xr = x->data + cf_bcast_b_row(&s, r);
        cf_real *o = out->data + r * cols;
        if (bc) memcpy(o, xr, (size_t)cols * sizeof *o);
        else
            for (int64_t c = 0; c < cols; c++) o[c] = xr[0];
    });
    cf_tape_record(ctx, "expand", expand_backward, out, 1, (cf_tensor *[]){x});
    return out;
}

/* ---- scale ---- */

static void scale_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    cf_real s = (cf_real)node->f[0], *dx = cf_grad(ctx, x);
    const cf_real *g = node->out->grad;
    CF_PARALLEL_FOR(x->numel > CF_PAR_MIN_WORK, for (int64_t i = 0; i < x->numel; i++) {
        dx[i] += s * g[i];
    });
}

cf_tensor *cf_scale(cf_ctx *ctx, cf_tensor *x, double s) {
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, x->shape);
    cf_real sr = (cf_real)s;
    CF_PARALLEL_FOR(x->numel > CF_PAR_MIN_WORK, for (int64_t i = 0; i < x->numel; i++) {
        out->data[i] = sr * x->data[i];
    });
    cf_node *node = cf_tape_record(ctx, "scale", scale_backward, out, 1, (cf_tensor *[]){x});
    if (node) node->f[0] = s;
    return out;
}
