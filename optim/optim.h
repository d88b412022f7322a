/* optim/optim.h - AdamW, Adam and SGD with momentum over a list of parameters.
 *
 * Usage (one training run; see optim/schedule.h for the lr and optim/clip.h for clipping):
 *     cf_param_list pl;
 *     cf_param_list_init(&pl);
 *     for (each parameter p of the model) cf_param_list_add_auto(&pl, p, exempt_embeddings);
 *     cf_optim_config oc = cf_optim_config_default(CF_OPTIM_ADAMW);
 *     oc.beta2 = 0.98; oc.eps = 1e-9;
 *     cf_optimizer *opt = cf_optimizer_new(&pl, &oc);          // NULL + message if oc is invalid
 *     for (...) {
 *         ... forward, cf_backward (grads accumulate) ...
 *         cf_optimizer_step(opt, cf_schedule_lr(&sched, opt->t + 1));
 *         cf_optimizer_zero_grad(opt);
 *     }
 *     cf_optimizer_free(opt);
 *     cf_param_list_free(&pl);
 *
 * The update equations are PyTorch 1.13's (torch.optim.AdamW / Adam / SGD, single-tensor path)
 * and are written out in docs/optim.md. Arithmetic is float32 element-wise in PyTorch's order,
 * with the scalar coefficients (bias corrections, step size) computed in double, so results
 * match PyTorch to a few float32 ulps and are bit-identical for any thread count.
 * All state is allocated by cf_optimizer_new: cf_optimizer_step never allocates. Saving and
 * loading that state is the checkpoint's business (train/optim_state.h): this module knows no
 * file format.
 */
#ifndef CF_OPTIM_H
#define CF_OPTIM_H

#include "core/tensor.h"

/* ---- parameter list with a weight-decay flag per parameter (PyTorch's two param groups) ---- */

typedef struct cf_param_list {
    cf_tensor **params;         /* [n] parameters (not owned) */
    bool *decay;                /* [n] weight decay applies to params[i] */
    int n, cap;
} cf_param_list;

void cf_param_list_init(cf_param_list *l);
void cf_param_list_free(cf_param_list *l);
/* Appends p. Fails (-1, message) if p is not a named parameter or is already in the list (tied
 * weights must be listed once, or they would be updated twice). */
int cf_param_list_add(cf_param_list *l, cf_tensor *p, bool decay);
/* The usual Transformer rule: tensors with fewer than 2 dims (biases, LayerNorm/RMSNorm weights)
 * get no weight decay; with exempt_embeddings, neither do parameters whose name contains "embed". */
bool cf_param_wants_decay(const cf_tensor *p, bool exempt_embeddings);
int cf_param_list_add_auto(cf_param_list *l, cf_tensor *p, bool exempt_embeddings);
int64_t cf_param_list_numel(const cf_param_list *l);

/* ---- optimizer ---- */

typedef enum cf_optim_kind {
    CF_OPTIM_ADAMW,             /* decoupled weight decay: p *= 1 - lr*wd before the Adam step */
    CF_OPTIM_ADAM,              /* L2 weight decay folded into the gradient: g += wd*p */
    CF_OPTIM_SGD,               /* SGD, optional momentum / dampening / Nesterov, L2 decay */
} cf_optim_kind;

typedef struct cf_optim_config {
    cf_optim_kind kind;
    double beta1, beta2, eps;   /* Adam kinds */
    double weight_decay;        /* applied only to parameters whose decay flag is set */
    double momentum, dampening; /* SGD */
    bool nesterov;              /* SGD; needs momentum > 0 and dampening 0 (as PyTorch) */
} cf_optim_config;

/* PyTorch's defaults: betas (0.9, 0.999), eps 1e-8; weight_decay 0.01 for AdamW, 0 otherwise;
 * SGD momentum 0. */
cf_optim_config cf_optim_config_default(cf_optim_kind kind);
const char *cf_optim_kind_name(cf_optim_kind kind);          /* "adamw", "adam", "sgd" */
int cf_optim_kind_parse(const char *name, cf_optim_kind *out); /* 0, or -1 with a message */

typedef struct cf_optimizer {
    cf_optim_config cfg;
    int n;
    cf_tensor **params;         /* [n] copied from the list */
    bool *decay;                /* [n] */
    char **state_names;         /* [n_state * n] "<param>.exp_avg", ...: the checkpoint names */
    int n_state;                /* state tensors per parameter: 2 (Adam kinds), 1 (SGD with momentum), 0 */
    cf_real **m;                /* [n][numel] exp_avg (Adam) or momentum_buffer (SGD); NULL if unused */
    cf_real **v;                /* [n][numel] exp_avg_sq (Adam kinds); NULL otherwise */
    cf_real *state_block;       /* one aligned allocation behind every m[i] and v[i] */
    int64_t n_blocks;           /* the update's work items: every parameter cut into fixed blocks */
    int64_t n_elems;            /* elements of all parameters */
    struct cf_optim_block { int param; int64_t begin, len; } *blocks;
    int64_t t;                  /* updates applied so far: update number t+1 comes next */
} cf_optimizer;

/* Copies the list (the parameters themselves are not owned) and allocates zeroed state. */
cf_optimizer *cf_optimizer_new(const cf_param_list *params, const cf_optim_config *cfg);
void cf_optimizer_free(cf_optimizer *opt);
/* One update with learning rate lr, from the gradients in params[i]->grad: t += 1, then PyTorch's
 * update (docs/optim.md). No allocation; one parallel loop over fixed blocks of every parameter
 * (the split depends on the shapes alone, and each element's update is independent). */
void cf_optimizer_step(cf_optimizer *opt, double lr);
void cf_optimizer_zero_grad(cf_optimizer *opt);
/* The training step's form: each gradient is multiplied by grad_scale (float32, exactly as
 * cf_grads_scale would: clipping and 1/accumulation folded in) as the update reads it, and zeroed
 * after. Bit-identical to cf_grads_scale + cf_optimizer_step + cf_optimizer_zero_grad, in one pass
 * over the parameters instead of three. */
void cf_optimizer_step_and_zero(cf_optimizer *opt, double lr, double grad_scale);

#endif
