/* core/ops_shape.c - reshape (shares data), permute/transpose, concat, slice, split. */
#include <string.h>

#include "core/kernel.h"
#include "core/ops.h"
#include "core/parallel.h"

/* ---- reshape ---- */

static void reshape_backward(cf_ctx *ctx, cf_node *node) { cf_grad_pass(ctx, node->in[0], node->out); }

cf_tensor *cf_reshape(cf_ctx *ctx, cf_tensor *x, int ndim, const int64_t *shape) {
    char sx[64];
    CF_ASSERT(cf_shape_numel(ndim, shape) == x->numel, "reshape: %s has %lld elements, new shape %lld",
              cf_shape_str(x, sx, 64), (long long)x->numel, (long long)cf_shape_numel(ndim, shape));
    cf_tensor *out = cf_tensor_view(ctx, x->data, ndim, shape);
    cf_tape_record(ctx, "reshape", reshape_backward, out, 1, (cf_tensor *[]){x});
    return out;
}

/* ---- strided block copy, shared by concat, slice and split ----
 * dst[o * dst_stride + j] (+)= src[o * src_stride + j] for o < outer, j < len. Work is cut into
 * (row, chunk) jobs so that it parallelises whatever the shape (concat along dim 0 has outer = 1);
 * every element is written by exactly one job, so the result does not depend on the thread count. */
static void block_copy(cf_real *dst, int64_t dst_stride, const cf_real *src, int64_t src_stride, int64_t outer,
                       int64_t len, bool accumulate) {
    enum { CHUNK = 4096 };
    if (outer == 0 || len == 0) return;
    int64_t nchunk = (len + CHUNK - 1) / CHUNK;
    CF_PARALLEL_FOR(outer * len > CF_PAR_MIN_WORK, for (int64_t job = 0; job < outer * nchunk; job++) {
        int64_t o = job / nchunk, j0 = (job % nchunk) * CHUNK, j1 = j0 + CHUNK < len ? j0 + CHUNK : len;
        cf_real *d = dst + o * dst_stride;
        const cf_real *s = src + o * src_stride;
        if (accumulate)
            for (int64_t j = j0; j < j1; j++) d[j] += s[j];
        else
            memcpy(d + j0, s + j0, (size_t)(j1 - j0) * sizeof(cf_real));
    });
}

/* x viewed as [outer, x.shape[dim], inner] */
static void split_dims(const cf_tensor *x, int dim, int64_t *outer, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < dim; d++) *outer *= x->shape[d];
    for (int d = dim + 1; d < x->ndim; d++) *inner *= x->shape[d];
}

/* ---- permute / transpose ---- */

/* dst (+)= src permuted: dst.shape[d] = src.shape[perm[d]], both padded to 4 dims (leading 1s).
 * Parallel over dst rows; the inner loop reads src with the stride of the dim that lands last
 * (contiguous when the last dim stays in place, the common attention-head reshuffle). */
static void permute_kernel(const cf_real *src, const int64_t src_shape[4], const int perm[4], cf_real *dst,
                           bool accumulate) {
    int64_t sstride[4], dshape[4];
    sstride[3] = 1;
    for (int d = 2; d >= 0; d--) sstride[d] = sstride[d + 1] * src_shape[d + 1];
    for (int d = 0; d < 4; d++) dshape[d] = src_shape[perm[d]];
    int64_t rows = dshape[0] * dshape[1] * dshape[2], cols = dshape[3];
    int64_t st0 = sstride[perm[0]], st1 = sstride[perm[1]], st2 = sstride[perm[2]], st3 = sstride[perm[3]];
    CF_PARALLEL_FOR(rows * cols > CF_PAR_MIN_WORK, for (int64_t r = 0; r < rows; r++) {
        int64_t i2 = r % dshape[2], i1 = (r / dshape[2]) % dshape[1], i0 = r / (dshape[2] * dshape[1]);
        const cf_real *s = src + i0 * st0 + i1 * st1 + i2 * st2;
        cf_real *d = dst + r * cols;
        if (st3 == 1) {
            if (accumulate)
                for (int64_t c = 0; c < cols; c++) d[c] += s[c];
            else
                memcpy(d, s, (size_t)cols * sizeof(cf_real));
        } else if (accumulate) {
            for (int64_t c = 0; c < cols; c++) d[c] += s[c * st3];
        } else {
            for (int64_t c = 0; c < cols; c++) d[c] = s[c * st3];
        }
    });
}

/* x's shape and perm padded to 4 dims: a leading pad dim p maps to itself. */
static void permute_pad(const cf_tensor *x, const int *perm, int64_t shape4[4], int perm4[4]) {
    int pad = 4 - x->ndim;
    for (int d = 0; d < 4; d++) {
        shape4[d] = d < pad ? 1 : x->shape[d - pad];
        perm4[d] = d < pad ? d : perm[d - pad] + pad;
    }
}

static void permute_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0], *out = node->out;
    int perm[CF_MAX_DIMS], inv[CF_MAX_DIMS], perm4[4];
    int64_t oshape4[4];
    for (int d = 0; d < x->ndim; d++) perm[d] = (int)node->i[d];
    for (int d = 0; d < x->ndim; d++) inv[perm[d]] = d;
    /* dx = permute(dout, inverse perm), accumulated */
    permute_pad(out, inv, oshape4, perm4);
    bool fresh; /* a new gradient buffer is written, not added to */
    cf_real *dx = cf_grad_first(ctx, x, &fresh);
    permute_kernel(out->grad, oshape4, perm4, dx, !fresh);
}

cf_tensor *cf_permute(cf_ctx *ctx, cf_tensor *x, const int *perm) {
    char sx[64];
    int seen = 0;
    for (int d = 0; d < x->ndim; d++) {
        CF_ASSERT(perm[d] >= 0 && perm[d] < x->ndim && !(seen & (1 << perm[d])), "permute: bad perm for %s",
                  cf_shape_str(x, sx, 64));
        seen |= 1 << perm[d];
    }
    int64_t shape[CF_MAX_DIMS], shape4[4];
    int perm4[4];
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[perm[d]];
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, shape);
    permute_pad(x, perm, shape4, perm4);
    permute_kernel(x->data, shape4, perm4, out->data, false);
    cf_node *node = cf_tape_record(ctx, "permute", permute_backward, out, 1, (cf_tensor *[]){x});
    if (node)
        for (int d = 0; d < x->ndim; d++) node->i[d] = perm[d];
    return out;
}

cf_tensor *cf_transpose(cf_ctx *ctx, cf_tensor *x, int dim0, int dim1) {
    CF_ASSERT(dim0 >= 0 && dim0 < x->ndim && dim1 >= 0 && dim1 < x->ndim, "transpose: dims %d, %d of %d-dim tensor",
              dim0, dim1, x->ndim);
    int perm[CF_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) perm[d] = d;
    perm[dim0] = dim1;
    perm[dim1] = dim0;
    return cf_permute(ctx, x, perm);
}

/* ---- concat ---- */

static void concat_backward(cf_ctx *ctx, cf_node *node) {
    int dim = (int)node->i[0];
    int64_t outer, inner;
    split_dims(node->out, dim, &outer, &inner);
    int64_t out_row = node->out->shape[dim] * inner, off = 0;
    for (int k = 0; k < node->n_in; k++) {
        cf_tensor *x = node->in[k];
        int64_t row = x->shape[dim] * inner;
        if (x->requires_grad) block_copy(cf_grad(ctx, x), row, node->out->grad + off, out_row, outer, row, true);
        off += row;
    }
}

cf_tensor *cf_concat(cf_ctx *ctx, cf_tensor *const *xs, int n, int dim) {
    char s0[64], sk[64];
    CF_ASSERT(n >= 1 && n <= CF_NODE_MAX_INPUTS, "concat: %d inputs (1..%d)", n, CF_NODE_MAX_INPUTS);
    CF_ASSERT(dim >= 0 && dim < xs[0]->ndim, "concat: dim %d of %s", dim, cf_shape_str(xs[0], s0, 64));
    int64_t shape[CF_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[dim] = 0;
    for (int k = 0; k < n; k++) {
        bool ok = xs[k]->ndim == xs[0]->ndim;
        for (int d = 0; ok && d < xs[0]->ndim; d++) ok = d == dim || xs[k]->shape[d] == xs[0]->shape[d];
        CF_ASSERT(ok, "concat: input %d %s does not match input 0 %s along dims other than %d", k,
                  cf_shape_str(xs[k], sk, 64), cf_shape_str(xs[0], s0, 64), dim);
        shape[dim] += xs[k]->shape[dim];
    }
    cf_tensor *out = cf_tensor_new(ctx, xs[0]->ndim, shape);
    int64_t outer, inner;
    split_dims(out, dim, &outer, &inner);
    /* out viewed as [outer, out_row]: input k fills columns [off, off + row_k) of every row */
    int64_t out_row = shape[dim] * inner, off = 0;
    for (int k = 0; k < n; k++) {
        int64_t row = xs[k]->shape[dim] * inner;
        block_copy(out->data + off, out_row, xs[k]->data, row, outer, row, false);
        off += row;
    }
    cf_node *node = cf_tape_record(ctx, "concat", concat_backward, out, n, xs);
    if (node) node->i[0] = dim;
    return out;
}

/* ---- slice / split ---- */

static void slice_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    int dim = (int)node->i[0];
    int64_t start = node->i[1], len = node->out->shape[dim], outer, inner;
    split_dims(x, dim, &outer, &inner);
    block_copy(cf_grad(ctx, x) + start * inner, x->shape[dim] * inner, node->out->grad, len * inner, outer,
               len * inner, true);
}

cf_tensor *cf_slice(cf_ctx *ctx, cf_tensor *x, int dim, int64_t start, int64_t len) {
    char sx[64];
    CF_ASSERT(dim >= 0 && dim < x->ndim && start >= 0 && len >= 0 && start + len <= x->shape[dim],
              "slice: dim %d, [%lld, %lld) of %s", dim, (long long)start, (long long)(start + len),
              cf_shape_str(x, sx, 64));
    int64_t shape[CF_MAX_DIMS], outer, inner;
    memcpy(shape, x->shape, sizeof shape);
    shape[dim] = len;
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, shape);
    split_dims(x, dim, &outer, &inner);
    /* x viewed as [outer, x.shape[dim] * inner]; out row o is a contiguous piece of x's row o */
    block_copy(out->data, len * inner, x->data + start * inner, x->shape[dim] * inner, outer, len * inner, false);
    cf_node *node = cf_tape_record(ctx, "slice", slice_backward, out, 1, (cf_tensor *[]){x});
    if (node) {
        node->i[0] = dim;
        node->i[1] = start;
    }
    return out;
}

void cf_split(cf_ctx *ctx, cf_tensor *x, int dim, int n, cf_tensor **outs) {
    char sx[64];
    CF_ASSERT(dim >= 0 && dim < x->ndim && n >= 1 && x->shape[dim] % n == 0, "split: %d parts along dim %d of %s", n,
              dim, cf_shape_str(x, sx, 64));
    int64_t len = x->shape[dim] / n;
    for (int k = 0; k < n; k++) outs[k] = cf_slice(ctx, x, dim, k * len, len);
}
