/* core/ops_shape.c - reshape (shares data), permute/transpose, concat, slice, split. */
#include <string.h>

#include "core/kernel.h"
#include "core/ops.h"

/* ---- reshape ---- */

static void reshape_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    cf_real *dx = cf_grad(ctx, x);
    const cf_real *g = node->out->grad;
#pragma omp parallel for schedule(static) if (x->numel > CF_PAR_MIN_WORK)
    for (int64_t i = 0; i < x->numel; i++) dx[i] += g[i];
}

cf_tensor *cf_reshape(cf_ctx *ctx, cf_tensor *x, int ndim, const int64_t *shape) {
    char sx[64];
    CF_ASSERT(cf_shape_numel(ndim, shape) == x->numel, "reshape: %s has %lld elements, new shape %lld",
              cf_shape_str(x, sx, 64), (long long)x->numel, (long long)cf_shape_numel(ndim, shape));
    cf_tensor *out = cf_tensor_view(ctx, x->data, ndim, shape);
    cf_tape_record(ctx, "reshape", reshape_backward, out, 1, (cf_tensor *[]){x});
    return out;
}
