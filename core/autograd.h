/* core/autograd.h - the step context: arena, tape, grad mode, dropout seed.
 *
 * Usage (one training step):
 *     cf_ctx *ctx = cf_ctx_new(seed);
 *     cf_ctx_begin_step(ctx, step);                // step number feeds dropout's RNG
 *     cf_tensor *loss = ... ops on params and inputs ...;
 *     cf_backward(ctx, loss);                      // params' ->grad += dloss/dparam
 *     ... optimizer ...
 *     cf_ctx_reset(ctx);                           // activations and tape gone, memory kept
 *
 * Define-by-run: each differentiable op appends a node (inputs, output, saved context, backward
 * function) to the tape when grad mode is on and an input requires grad. cf_backward walks the
 * tape in reverse; gradients accumulate (+=). With grad mode off nothing is recorded
 * (evaluation, decoding).
 *
 * Memory: an op output's gradient is dead once its node's backward has run (every consumer of the
 * output was recorded later, so it has already contributed). cf_backward then returns the buffer
 * to a per-size free list inside the arena, and the next gradient of that size reuses it: the
 * backward pass needs a few live gradients instead of one per activation. So after cf_backward,
 * only parameters (and leaf tensors that are no op's output) still hold gradients.
 */
#ifndef CF_AUTOGRAD_H
#define CF_AUTOGRAD_H

#include "core/arena.h"
#include "core/profile.h"
#include "core/tensor.h"

#define CF_NODE_MAX_INPUTS 8

typedef struct cf_ctx cf_ctx;
typedef struct cf_node cf_node;
typedef void (*cf_backward_fn)(cf_ctx *ctx, cf_node *node);

struct cf_node {
    cf_node *prev;                           /* previous node on the tape */
    const char *op;                          /* op name, for debugging */
    cf_backward_fn backward;
    cf_tensor *out;
    cf_tensor *in[CF_NODE_MAX_INPUTS];
    int n_in;
    void *saved;                             /* op-specific saved context (arena) */
    double f[4];                             /* small saved scalars */
    int64_t i[4];                            /* small saved integers */
};

/* Free gradient buffers of one byte size (a singly linked list through the buffers). */
typedef struct cf_grad_bin {
    size_t bytes;
    void *head;
} cf_grad_bin;

#define CF_GRAD_BINS 32

struct cf_ctx {
    cf_arena arena;
    cf_grad_bin grad_bins[CF_GRAD_BINS];     /* recycled activation gradients, reset with the arena */
    cf_node *tape;                           /* last node recorded; NULL when empty */
    int64_t n_nodes;
    bool grad_enabled;
    bool training;                           /* dropout active */
    uint64_t seed;                           /* run seed, for dropout */
    uint64_t step;                           /* current step, for dropout */
    uint64_t dropout_calls;                  /* dropout calls this step: the "tensor id" */
    cf_profile *profile;                     /* time per op when set (core/profile.h); NULL: off */
};

cf_ctx *cf_ctx_new(uint64_t seed);
void cf_ctx_free(cf_ctx *ctx);
void cf_ctx_begin_step(cf_ctx *ctx, uint64_t step);
void cf_ctx_reset(cf_ctx *ctx);
/* Returns the previous setting, so callers can restore it. */
bool cf_ctx_set_grad(cf_ctx *ctx, bool enabled);

/* Activations and inputs live in the context's arena until the next reset. Contents are
 * uninitialised (cf_tensor_zeros: 0). */
cf_tensor *cf_tensor_new(cf_ctx *ctx, int ndim, const int64_t *shape);
cf_tensor *cf_tensor_zeros(cf_ctx *ctx, int ndim, const int64_t *shape);
/* A tensor header in the arena over memory owned by someone else (no copy). */
cf_tensor *cf_tensor_view(cf_ctx *ctx, cf_real *data, int ndim, const int64_t *shape);

/* For op implementations: record a node if grad mode is on and any input requires grad; returns
 * the node (to fill saved context) or NULL. Marks out->requires_grad accordingly. */
cf_node *cf_tape_record(cf_ctx *ctx, const char *op, cf_backward_fn backward, cf_tensor *out,
                        int n_in, cf_tensor *const *in);
/* The gradient buffer of t, taken zeroed from the arena on first use. */
cf_real *cf_grad(cf_ctx *ctx, cf_tensor *t);
/* For a backward that writes every element of t's gradient: the buffer, and *fresh = true when it
 * was just created, its contents undefined; the caller then stores (=) instead of adding (+=), so
 * no zero-fill pass is needed. */
cf_real *cf_grad_first(cf_ctx *ctx, cf_tensor *t, bool *fresh);
/* in's gradient += out's gradient (same element count), for pass-through ops (reshape, add, the
 * residual of cf_dropout_add): when in has no gradient yet and is not a parameter, it takes out's
 * buffer instead of copying it (out's gradient is dead once its node ran, and in's later
 * gradients accumulate into the buffer it now owns). Call it last in a backward: out->grad is
 * NULL afterwards. */
void cf_grad_pass(cf_ctx *ctx, cf_tensor *in, cf_tensor *out);
/* Scratch memory for a kernel, valid until the next reset. */
static inline void *cf_scratch(cf_ctx *ctx, size_t bytes) { return cf_arena_alloc(&ctx->arena, bytes); }

/* loss must hold one element; its gradient is seeded with 1. */
void cf_backward(cf_ctx *ctx, cf_tensor *loss);
/* Backward from any output with a given upstream gradient dout [out->numel] (added to out's grad). */
void cf_backward_seeded(cf_ctx *ctx, cf_tensor *out, const cf_real *dout);

#endif
