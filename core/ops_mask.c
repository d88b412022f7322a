/* core/ops_mask.c - masked_fill: out = value where mask != 0, else x.
 *
 * The mask broadcasts against x like b in cf_add (right-aligned, each of its dims equal to x's or
 * 1), e.g. a padding mask [B, 1, 1, S] or a causal mask [T, S] over scores [B, H, T, S]. It is
 * data, not differentiated: the gradient flows to x only where the mask is 0.
 */
#include <string.h>

#include "core/broadcast.h"
#include "core/kernel.h"
#include "core/ops.h"
#include "core/parallel.h"

static void masked_fill_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    const cf_tensor *mask = node->saved;
    cf_bcast s = cf_bcast_of(x, mask, "masked_fill", "x", "mask");
    const cf_real *g = node->out->grad;
    cf_real *dx = cf_grad(ctx, x);
    int64_t cols = s.cols;
    CF_PARALLEL_FOR(s.rows * cols > CF_PAR_MIN_WORK, for (int64_t r = 0; r < s.rows; r++) {
        const cf_real *m = mask->data + cf_bcast_b_row(&s, r), *gr = g + r * cols;
        cf_real *d = dx + r * cols;
        if (s.bstride[3]) {
            for (int64_t c = 0; c < cols; c++) d[c] += m[c] != 0 ? 0 : gr[c];
        } else if (m[0] == 0) { /* mask's last dim is 1: the whole row passes or is filled */
            for (int64_t c = 0; c < cols; c++) d[c] += gr[c];
        }
    });
}

cf_tensor *cf_masked_fill(cf_ctx *ctx, cf_tensor *x, const cf_tensor *mask, double value) {
    cf_bcast s = cf_bcast_of(x, mask, "masked_fill", "x", "mask");
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, x->shape);
    cf_real v = (cf_real)value;
    int64_t cols = s.cols;
    CF_PARALLEL_FOR(s.rows * cols > CF_PAR_MIN_WORK, for (int64_t r = 0; r < s.rows; r++) {
        const cf_real *m = mask->data + cf_bcast_b_row(&s, r), *xr = x->data + r * cols;
        cf_real *o = out->data + r * cols;
        if (s.bstride[3]) {
            for (int64_t c = 0; c < cols; c++) o[c] = m[c] != 0 ? v : xr[c];
        } else if (m[0] != 0) {
            for (int64_t c = 0; c < cols; c++) o[c] = v;
        } else {
            memcpy(o, xr, (size_t)cols * sizeof(cf_real));
        }
    });
    cf_node *node = cf_tape_record(ctx, "masked_fill", masked_fill_backward, out, 1, (cf_tensor *[]){x});
    if (node) node->saved = (void *)mask; /* read-only; must stay valid until backward (arena or param) */
    return out;
}
