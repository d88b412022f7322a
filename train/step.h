/* train/step.h - one optimizer update: the function `cformer train` and `cformer bench` share.
 *
 * Usage:
 *     cf_nan_guard guard;
 *     cf_nan_guard_init(&guard, 10);
 *     cf_grad_sync *sync = cf_grad_sync_new(opt->params, opt->n, 2, 0);   // dist/dist.h
 *     cf_step_setup s = {.ctx = ctx, .model = model, .opt = opt, .schedule = &cfg.schedule,
 *                        .label_smoothing = 0.1, .clip = 1.0, .grad_accum = 2, .guard = &guard,
 *                        .sync = sync};
 *     cf_step_result r;
 *     if (cf_train_step(&s, step, next_batch, batches, &r) != CF_GUARD_OK) puts(guard.message);
 *
 * Update number step + 1 is, in this order:
 *   cf_threads_adapt()                                      load following (core/threads.h); the
 *                                                            results do not depend on it
 *   for each of grad_accum micro-batches m, b = next(arg):  grad_accum is the GLOBAL count
 *       (on K ranks, rank r trains on m = r, r + K, ... and only reads the others' batches)
 *       cf_ctx_begin_step(ctx, step * grad_accum + m)       dropout masks: distinct per micro-batch,
 *                                                            a pure function of the step (resume)
 *       loss = label-smoothed cross-entropy of b; cf_backward (this micro-batch's gradient)
 *       cf_grad_sync_add(sync, m, loss, target tokens)      folds tokens x gradient (dist/dist.h)
 *       cf_ctx_reset(ctx)                                    activations gone, arena kept
 *   cf_grad_sync_finish: gradient = sum of tokens x gradient over the global batch / its target
 *   tokens (the same update for K ranks, grad_accum K, or one K-times larger batch; bit-identical
 *   for the first two); the global norm (one pass)
 *   the guard's verdict on (loss, norm): OK -> cf_optimizer_step_and_zero(opt, lr(step + 1),
 *   clip coefficient): clipping, the update and zero-grad in one pass; SKIP or STOP -> no update
 *   (cf_nan_guard), gradients zeroed
 * loss is the token-weighted mean over the global batch. After warm-up (the arena has reached
 * its size) a step performs no malloc.
 */
#ifndef CF_TRAIN_STEP_H
#define CF_TRAIN_STEP_H

#include <signal.h>

#include "dist/dist.h"
#include "nn/transformer.h"
#include "optim/clip.h"
#include "optim/optim.h"
#include "optim/schedule.h"

/* The next micro-batch; it must stay valid until the next call. */
typedef const cf_seq_batch *(*cf_batch_source)(void *arg);

typedef struct cf_step_setup {
    cf_ctx *ctx;
    const cf_transformer *model;
    cf_optimizer *opt;              /* its parameters are the ones clipped and updated */
    const cf_schedule *schedule;
    double label_smoothing;
    double clip;                    /* max global gradient norm; 0: no clipping */
    int64_t grad_accum;             /* micro-batches per update over all ranks, >= 1 */
    cf_nan_guard *guard;            /* skips non-finite updates; counts and stops as configured */
    cf_grad_sync *sync;             /* made for opt's parameters and grad_accum */
    const volatile sig_atomic_t *stop; /* this process's stop request (NULL: none), shared at the exchange */
} cf_step_setup;

typedef struct cf_step_result {
    double loss_sum;                /* sum over the global batch of (mean loss x target tokens) */
    double tokens;                  /* target tokens (not padding) of the global batch */
    double loss;                    /* loss_sum / tokens; 0 without tokens */
    double grad_norm;               /* global norm of the averaged gradients, before clipping */
    double lr;                      /* the schedule's rate for this update (applied only if OK) */
    cf_guard_verdict verdict;
    bool stop;                      /* some rank had its stop flag set: every rank stops after this update */
    bool failed;                    /* the exchange failed (a rank gone): verdict STOP, cf_error_message() says why */
    int threads;                    /* threads the update ran on (cf_threads_adapt's choice) */
    /* seconds in each phase, summed over micro-batches (what `cformer bench` reports) */
    double forward_s, backward_s, reset_s, update_s;
    double sync_s;                  /* accumulating and exchanging gradients (part of update_s) */
} cf_step_result;

/* One update as above; returns r->verdict (CF_GUARD_STOP also sets cf_error_message()). */
cf_guard_verdict cf_train_step(const cf_step_setup *s, int64_t step, cf_batch_source next, void *arg,
                               cf_step_result *r);

#endif
