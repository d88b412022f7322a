/* optim/clip.h - gradient norm, clipping, accumulation scaling and the non-finite guard.
 *
 * Usage (end of a training step with grad_accum micro-batches, before cf_optimizer_step):
 *     for (int k = 0; k < grad_accum; k++) { ...forward...; cf_backward(ctx, loss_k); }  // grads +=
 *     cf_grads_scale(pl.params, pl.n, 1.0 / grad_accum);        // mean over micro-batches
 *     double norm = cf_clip_grad_norm(pl.params, pl.n, max_norm); // norm before clipping
 *     switch (cf_nan_guard_check(&guard, step, loss, norm)) {
 *     case CF_GUARD_OK:   cf_optimizer_step(opt, lr); break;
 *     case CF_GUARD_SKIP: log(guard.message); break;            // no update, t unchanged
 *     case CF_GUARD_STOP: die(cf_error_message());
 *     }
 *     cf_optimizer_zero_grad(opt);
 *
 * Norms are computed in double in a fixed order (fixed-size blocks, partial sums added
 * sequentially), so they are bit-identical for any thread count. A norm is finite exactly when
 * every gradient element is finite (squares of float32 values cannot overflow a double sum), so
 * the norm doubles as the non-finite check at no extra pass over the gradients.
 */
#ifndef CF_CLIP_H
#define CF_CLIP_H

#include "core/tensor.h"

/* sqrt(sum over params and elements of grad^2), in double; NaN/Inf if any gradient is. */
double cf_grad_norm(cf_tensor *const *params, int n);
/* torch.nn.utils.clip_grad_norm_ (L2): returns the norm before clipping; when it is finite and
 * coef = max_norm / (norm + 1e-6) < 1, every gradient is multiplied by coef. A non-finite norm
 * leaves the gradients untouched (the update is to be skipped, see cf_nan_guard).
 * max_norm <= 0 or infinite: only computes the norm. */
double cf_clip_grad_norm(cf_tensor *const *params, int n, double max_norm);
/* The factor cf_clip_grad_norm would multiply the gradients by for this norm: max_norm / (norm +
 * 1e-6) when that is < 1 (and norm finite, max_norm > 0 finite), else 1. */
double cf_clip_coef(double norm, double max_norm);
/* true when every gradient element is finite. */
bool cf_grads_finite(cf_tensor *const *params, int n);
/* grad *= factor, e.g. 1/grad_accum after accumulating micro-batch gradients. */
void cf_grads_scale(cf_tensor *const *params, int n, double factor);

/* Skips updates whose loss or gradient is NaN/Inf and stops after max_consecutive in a row. */
typedef struct cf_nan_guard {
    int max_consecutive;        /* CF_GUARD_STOP at this many skipped updates in a row; <= 0: never */
    int consecutive;            /* skipped updates in a row so far */
    int64_t skipped;            /* skipped updates in total */
    int64_t last_skipped_step;  /* -1 if none */
    char message[256];          /* why the last update was skipped */
} cf_nan_guard;

typedef enum cf_guard_verdict { CF_GUARD_OK, CF_GUARD_SKIP, CF_GUARD_STOP } cf_guard_verdict;

void cf_nan_guard_init(cf_nan_guard *g, int max_consecutive);
/* OK when loss and grad_norm are finite (resets the run of skips); otherwise SKIP with
 * g->message set, or STOP (with cf_error_message() set too) on the max_consecutive-th skip in a
 * row. step is only used in the messages. */
cf_guard_verdict cf_nan_guard_check(cf_nan_guard *g, int64_t step, double loss, double grad_norm);

#endif
