/* core/tensor.h - dense tensors and parameters.
 *
 * Usage:
 *     cf_tensor *w = cf_param_new("encoder.layers.0.fc1.weight", 2, (int64_t[]){512, 128});
 *     cf_tensor *x = cf_tensor_new(ctx, 3, (int64_t[]){B, T, 128});   // from the step's arena
 *     ... ops (core/ops.h) ...
 *     cf_param_free(w);
 *
 * A tensor is cf_real (float32 in the library), contiguous and row-major, with up to 4 dims and
 * int64_t sizes. Parameters own their data and gradient (malloc'ed once, zeroed). Activations
 * live in the per-step arena of a cf_ctx (core/autograd.h) and vanish at cf_ctx_reset; their
 * gradient buffer is taken from the arena the first time a gradient reaches them.
 */
#ifndef CF_TENSOR_H
#define CF_TENSOR_H

#include "core/common.h"

#define CF_MAX_DIMS 4

typedef struct cf_ctx cf_ctx;

typedef struct cf_tensor {
    cf_real *data;              /* [numel] row-major */
    cf_real *grad;              /* [numel]; NULL until a gradient reaches it (params: always set) */
    int64_t shape[CF_MAX_DIMS];
    int ndim;
    int64_t numel;
    bool requires_grad;         /* a gradient is wanted for it or for something it depends on */
    bool is_param;              /* owns data and grad (cf_param_new) */
    char *name;                 /* parameters: PyTorch-style name; NULL otherwise */
} cf_tensor;

/* Parameters (and any tensor that must outlive a step, e.g. gradcheck inputs). */
cf_tensor *cf_param_new(const char *name, int ndim, const int64_t *shape);
void cf_param_free(cf_tensor *p);
void cf_param_zero_grad(cf_tensor *p);

/* Activations / inputs in the context's arena. Contents are uninitialised (cf_tensor_zeros: 0). */
cf_tensor *cf_tensor_new(cf_ctx *ctx, int ndim, const int64_t *shape);
cf_tensor *cf_tensor_zeros(cf_ctx *ctx, int ndim, const int64_t *shape);
/* A tensor header in the arena over memory owned by someone else (no copy). */
cf_tensor *cf_tensor_view(cf_ctx *ctx, cf_real *data, int ndim, const int64_t *shape);

int64_t cf_shape_numel(int ndim, const int64_t *shape);
bool cf_shape_equal(const cf_tensor *a, const cf_tensor *b);
/* Size of the last dim, and the product of all the others ("rows"). */
static inline int64_t cf_cols(const cf_tensor *t) { return t->shape[t->ndim - 1]; }
static inline int64_t cf_rows(const cf_tensor *t) { return t->numel / t->shape[t->ndim - 1]; }
/* "[2, 3, 4]" into buf, for error messages. */
const char *cf_shape_str(const cf_tensor *t, char *buf, size_t n);

#endif
