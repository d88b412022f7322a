/* nn/params.h - a model's named parameters, in registration order.
 *
 * Usage:
 *     cf_params ps = {0};
 *     cf_tensor *w = cf_params_add(&ps, 2, (int64_t[]){512, 128}, "encoder.layers.%d.ffn.fc1.weight", i);
 *     cf_init_xavier_uniform(w, &rng);         // or cf_init_normal / cf_init_const
 *     ... cf_params_find(&ps, "encoder.layers.0.ffn.fc1.weight") ...
 *     cf_params_free(&ps);                      // frees the tensors too
 *
 * cf_params_add makes the parameter (core's cf_param_new, which registers nothing) and adds it to
 * the registry, which owns it from then on. Names follow PyTorch's state_dict conventions so that
 * checkpoints load into an equivalent PyTorch module (docs/model.md lists every name and shape).
 */
#ifndef CF_PARAMS_H
#define CF_PARAMS_H

#include "core/rng.h"
#include "core/tensor.h"

typedef struct cf_params {
    cf_tensor **items;
    int n, cap;
    cf_tensor **blocks;         /* unregistered storage that registered parameters borrow (cf_params_block) */
    int n_blocks, cap_blocks;
} cf_params;

/* A new zeroed parameter named fmt..., registered in ps (which frees it); a name may be used once. */
cf_tensor *cf_params_add(cf_params *ps, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Storage of numel reals for parameters laid back to back (owned by ps, not registered: the
 * optimizer and checkpoints see only what borrows from it); cf_params_add_in registers a parameter
 * at an element offset of it, cf_params_block_view makes an unregistered [rows, cols] matrix over
 * a part of it (e.g. q_proj, k_proj and v_proj weights read as one [3d, d] projection). */
cf_tensor *cf_params_block(cf_params *ps, int64_t numel);
cf_tensor *cf_params_add_in(cf_params *ps, cf_tensor *block, int64_t offset, int ndim, const int64_t *shape,
                            const char *fmt, ...) __attribute__((format(printf, 6, 7)));
cf_tensor *cf_params_block_view(cf_params *ps, cf_tensor *block, int64_t offset, int ndim, const int64_t *shape);
cf_tensor *cf_params_find(const cf_params *ps, const char *name);
int64_t cf_params_numel(const cf_params *ps);
void cf_params_zero_grad(cf_params *ps);
void cf_params_free(cf_params *ps);

/* Initialisers (draws come from r in element order: deterministic for a seed). */
void cf_init_xavier_uniform(cf_tensor *w, cf_rng *r);   /* U(+-sqrt(6 / (fan_in + fan_out))) for [out, in] */
void cf_init_normal(cf_tensor *w, double std, cf_rng *r);
void cf_init_const(cf_tensor *w, double value);

#endif
