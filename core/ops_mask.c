/* core/ops_mask.c - masked_fill: out = value where mask != 0, else x.
 *
 * The mask broadcasts against x like b in cf_add (right-aligned, each of its dims equal to x's or
 * 1), e.g. a padding mask [B, 1, 1, S] or a causal mask [T, S] over scores [B, H, T, S]. It is
 * data, not differentiated: the gradient flows to x only where the mask is 0.
 */
#include <string.h>

#include "core/kernel.h"
#include "core/ops.h"

/* x as [rows, cols] over its last dim; the mask row paired with x's row r starts at mask_row(r). */
typedef struct mask_bcast {
    int64_t x[4];               /* x's shape padded to 4 dims */
    int64_t stride[4];          /* mask's element stride per padded dim, 0 where broadcast */
    int64_t rows, cols;
} mask_bcast;

static mask_bcast mask_bcast_of(const cf_tensor *x, const cf_tensor *mask) {
    char sx[64], sm[64];
    CF_ASSERT(mask->ndim <= x->ndim, "masked_fill: mask %s has more dims than x %s", cf_shape_str(mask, sm, 64),
              cf_shape_str(x, sx, 64));
    mask_bcast s;
    int64_t m[4], stride = 1;
    for (int d = 0; d < 4; d++) {
        int dx = d - (4 - x->ndim), dm = d - (4 - mask->ndim);
        s.x[d] = dx >= 0 ? x->shape[dx] : 1;
        m[d] = dm >= 0 ? mask->shape[dm] : 1;
        CF_ASSERT(m[d] == s.x[d] || m[d] == 1, "masked_fill: cannot broadcast mask %s to x %s",
                  cf_shape_str(mask, sm, 64), cf_shape_str(x, sx, 64));
    }
    for (int d = 3; d >= 0; d--) {
        s.stride[d] = m[d] == 1 ? 0 : stride;
        stride *= m[d];
    }
    s.cols = s.x[3];
    s.rows = s.x[0] * s.x[1] * s.x[2];
    return s;
}

static inline int64_t mask_row(const mask_bcast *s, int64_t r) {
    int64_t i2 = r % s->x[2], i1 = (r / s->x[2]) % s->x[1], i0 = r / (s->x[2] * s->x[1]);
    return i0 * s->stride[0] + i1 * s->stride[1] + i2 * s->stride[2];
}

static void masked_fill_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    const cf_tensor *mask = node->saved;
    mask_bcast s = mask_bcast_of(x, mask);
    const cf_real *g = node->out->grad;
    cf_real *dx = cf_grad(ctx, x);
    int64_t cols = s.cols;
#pragma omp parallel for schedule(static) if (s.rows * cols > CF_PAR_MIN_WORK)
    for (int64_t r = 0; r < s.rows; r++) {
        const cf_real *m = mask->data + mask_row(&s, r), *gr = g + r * cols;
        cf_real *d = dx + r * cols;
        if (s.stride[3]) {
            for (int64_t c = 0; c < cols; c++) d[c] += m[c] != 0 ? 0 : gr[c];
        } else if (m[0] == 0) { /* mask's last dim is 1: the whole row passes or is filled */
            for (int64_t c = 0; c < cols; c++) d[c] += gr[c];
        }
    }
}

cf_tensor *cf_masked_fill(cf_ctx *ctx, cf_tensor *x, const cf_tensor *mask, double value) {
    mask_bcast s = mask_bcast_of(x, mask);
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, x->shape);
    cf_real v = (cf_real)value;
    int64_t cols = s.cols;
#pragma omp parallel for schedule(static) if (s.rows * cols > CF_PAR_MIN_WORK)
    for (int64_t r = 0; r < s.rows; r++) {
        const cf_real *m = mask->data + mask_row(&s, r), *xr = x->data + r * cols;
        cf_real *o = out->data + r * cols;
        if (s.stride[3]) {
            for (int64_t c = 0; c < cols; c++) o[c] = m[c] != 0 ? v : xr[c];
        } else if (m[0] != 0) {
            for (int64_t c = 0; c < cols; c++) o[c] = v;
        } else {
            memcpy(o, xr, (size_t)cols * sizeof(cf_real));
        }
    }
    cf_node *node = cf_tape_record(ctx, "masked_fill", masked_fill_backward, out, 1, (cf_tensor *[]){x});
    if (node) node->saved = (void *)mask; /* read-only; must stay valid until backward (arena or param) */
    return out;
}
