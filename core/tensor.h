/* core/tensor.h - dense tensors and parameters.
 *
 * Usage:
 *     cf_tensor *w = cf_param_new("encoder.layers.0.fc1.weight", 2, (int64_t[]){512, 128});
 *     cf_tensor *x = cf_tensor_new(ctx, 3, (int64_t[]){B, T, 128});   // core/autograd.h: the step's arena
 *     ... ops (core/ops.h) ...
 *     cf_param_free(w);
 *
 * A tensor is cf_real (float32 in the library), contiguous and row-major, with up to 4 dims and
 * int64_t sizes. Parameters own their data and gradient (malloc'ed once, zeroed). Activations
 * live in the per-step arena of a cf_ctx and vanish at cf_ctx_reset, so they are made by
 * core/autograd.h (cf_tensor_new, cf_tensor_zeros, cf_tensor_view), which owns that arena; their
 * gradient buffer is taken from the arena the first time a gradient reaches them.
 */
#ifndef CF_TENSOR_H
#define CF_TENSOR_H

#include "core/common.h"

#define CF_MAX_DIMS 4

typedef struct cf_tensor {
    cf_real *data;              /* [numel] row-major */
    cf_real *grad;              /* [numel]; NULL until a gradient reaches it (params: always set) */
    int64_t shape[CF_MAX_DIMS];
    int ndim;
    int64_t numel;
    bool requires_grad;         /* a gradient is wanted for it or for something it depends on */
    bool is_param;              /* owns data and grad (cf_param_new), or borrows them (cf_param_borrow) */
    bool borrowed;              /* a parameter whose data and grad lie inside another one's */
    char *name;                 /* parameters: PyTorch-style name; NULL otherwise */
} cf_tensor;

/* Parameters (and any tensor that must outlive a step, e.g. gradcheck inputs), owned by the
 * caller: a model registers its parameters with nn/params.h's cf_params_add instead. */
cf_tensor *cf_param_new(const char *name, int ndim, const int64_t *shape);
/* A parameter stored inside owner (another parameter) from element offset on: data and grad are
 * owner's, so parameters laid back to back in one owner can also be read as one matrix (a fused
 * Q/K/V projection). owner must outlive it; cf_param_free frees only its header and name. */
cf_tensor *cf_param_borrow(const char *name, cf_tensor *owner, int64_t offset, int ndim, const int64_t *shape);
void cf_param_free(cf_tensor *p);
void cf_param_zero_grad(cf_tensor *p);

/* A tensor of this shape with no data, no gradient and no name (the shape is checked). */
cf_tensor cf_tensor_header(int ndim, const int64_t *shape);

/* The product of the sizes, or -1 if a size is negative or the product exceeds INT64_MAX / 16
 * (so that a byte count of it cannot overflow either). */
int64_t cf_shape_numel(int ndim, const int64_t *shape);
bool cf_shape_equal(const cf_tensor *a, const cf_tensor *b);
/* Size of the last dim, and the product of all the others ("rows"). */
static inline int64_t cf_cols(const cf_tensor *t) { return t->shape[t->ndim - 1]; }
static inline int64_t cf_rows(const cf_tensor *t) { return t->numel / t->shape[t->ndim - 1]; }
/* "[2, 3, 4]" into buf, for error messages. */
const char *cf_shape_str(const cf_tensor *t, char *buf, size_t n);

#endif
