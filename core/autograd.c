/* core/autograd.c - step context and the tape. */
#include "core/autograd.h"

#include <stdlib.h>
#include <string.h>

#include "core/kernel.h"
#include "core/parallel.h"

cf_ctx *cf_ctx_new(uint64_t seed) {
    cf_ctx *ctx = cf_xcalloc(1, sizeof *ctx);
    ctx->grad_enabled = true;
    ctx->training = true;
    ctx->seed = seed;
    return ctx;
}

void cf_ctx_free(cf_ctx *ctx) {
    if (!ctx) return;
    cf_arena_free(&ctx->arena);
    free(ctx);
}

void cf_ctx_begin_step(cf_ctx *ctx, uint64_t step) {
    ctx->step = step;
    ctx->dropout_calls = 0;
    if (ctx->profile) cf_profile_start(ctx->profile, ctx->arena.used_total);
}

void cf_ctx_reset(cf_ctx *ctx) {
    cf_arena_reset(&ctx->arena);
    memset(ctx->grad_bins, 0, sizeof ctx->grad_bins);
    ctx->tape = NULL;
    ctx->n_nodes = 0;
    ctx->dropout_calls = 0;
}

bool cf_ctx_set_grad(cf_ctx *ctx, bool enabled) {
    bool prev = ctx->grad_enabled;
    ctx->grad_enabled = enabled;
    return prev;
}

cf_tensor *cf_tensor_view(cf_ctx *ctx, cf_real *data, int ndim, const int64_t *shape) {
    cf_tensor *t = cf_arena_alloc(&ctx->arena, sizeof *t);
    *t = cf_tensor_header(ndim, shape);
    t->data = data;
    return t;
}

cf_tensor *cf_tensor_new(cf_ctx *ctx, int ndim, const int64_t *shape) {
    cf_tensor *t = cf_tensor_view(ctx, NULL, ndim, shape);
    t->data = cf_arena_alloc(&ctx->arena, (size_t)t->numel * sizeof(cf_real));
    return t;
}

cf_tensor *cf_tensor_zeros(cf_ctx *ctx, int ndim, const int64_t *shape) {
    cf_tensor *t = cf_tensor_new(ctx, ndim, shape);
    memset(t->data, 0, (size_t)t->numel * sizeof(cf_real));
    return t;
}

cf_node *cf_tape_record(cf_ctx *ctx, const char *op, cf_backward_fn backward, cf_tensor *out,
                        int n_in, cf_tensor *const *in) {
    CF_ASSERT(n_in >= 0 && n_in <= CF_NODE_MAX_INPUTS, "%s: %d inputs", op, n_in);
    out->requires_grad = false;
    if (ctx->profile) cf_profile_forward(ctx->profile, op, ctx->arena.used_total);
    if (!ctx->grad_enabled) return NULL;
    bool any = false;
    for (int k = 0; k < n_in; k++) any |= in[k] != NULL && in[k]->requires_grad;
    if (!any) return NULL;
    out->requires_grad = true;
    cf_node *node = cf_arena_alloc(&ctx->arena, sizeof *node);
    memset(node, 0, sizeof *node);
    node->op = op;
    node->backward = backward;
    node->out = out;
    node->n_in = n_in;
    for (int k = 0; k < n_in; k++) node->in[k] = in[k];
    node->prev = ctx->tape;
    ctx->tape = node;
    ctx->n_nodes++;
    return node;
}

static cf_grad_bin *grad_bin(cf_ctx *ctx, size_t bytes, bool create) {
    for (int i = 0; i < CF_GRAD_BINS; i++) {
        cf_grad_bin *b = &ctx->grad_bins[i];
        if (b->bytes == bytes) return b;
        if (b->bytes == 0) {
            if (!create) return NULL;
            b->bytes = bytes;
            return b;
        }
    }
    return NULL; /* more distinct sizes than bins: those buffers simply stay in the arena */
}

/* A gradient buffer for t, contents undefined: recycled when one of its size is free. */
static cf_real *new_grad_buffer(cf_ctx *ctx, cf_tensor *t) {
    size_t bytes = (size_t)t->numel * sizeof(cf_real);
    cf_grad_bin *b = bytes >= sizeof(void *) ? grad_bin(ctx, bytes, false) : NULL;
    cf_real *g;
    if (b && b->head) {
        g = b->head;
        memcpy(&b->head, b->head, sizeof(void *)); /* next free buffer */
    } else {
        g = cf_arena_alloc(&ctx->arena, bytes);
    }
    t->grad = g;
    return g;
}

cf_real *cf_grad(cf_ctx *ctx, cf_tensor *t) {
    if (t->grad) return t->grad;
    cf_real *g = new_grad_buffer(ctx, t);
    /* Zero with the static row split the ops' loops use, so each thread's part of the buffer is
     * already in its own cache when it accumulates into it. */
    const int64_t n = t->numel;
    CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t i = 0; i < n; i++) {
        g[i] = 0;
    });
    return g;
}

cf_real *cf_grad_first(cf_ctx *ctx, cf_tensor *t, bool *fresh) {
    *fresh = t->grad == NULL;
    return t->grad ? t->grad : new_grad_buffer(ctx, t);
}

void cf_grad_pass(cf_ctx *ctx, cf_tensor *in, cf_tensor *out) {
    CF_ASSERT(in->numel == out->numel && out->grad, "grad_pass: %lld vs %lld elements", (long long)in->numel,
              (long long)out->numel);
    if (!in->grad && !in->is_param) { /* the first gradient in gets: take out's buffer as it is */
        in->grad = out->grad;
        out->grad = NULL;
        return;
    }
    cf_real *d = cf_grad(ctx, in);
    const cf_real *g = out->grad;
    const int64_t n = in->numel;
    CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t i = 0; i < n; i++) {
        d[i] += g[i];
    });
}

/* Give an op output's gradient back once nothing can add to it any more. */
static void release_grad(cf_ctx *ctx, cf_tensor *t) {
    if (!t->grad) return; /* handed on to an input (cf_grad_pass) */
    size_t bytes = (size_t)t->numel * sizeof(cf_real);
    cf_grad_bin *b = bytes >= sizeof(void *) ? grad_bin(ctx, bytes, true) : NULL;
    if (!b) return;
    memcpy(t->grad, &b->head, sizeof(void *));
    b->head = t->grad;
    t->grad = NULL;
}

static void run_tape(cf_ctx *ctx) {
    for (cf_node *n = ctx->tape; n; n = n->prev) {
        if (!n->out->grad) continue; /* no gradient flowed to this output */
        if (ctx->profile) {
            double t0 = cf_now_s();
            n->backward(ctx, n);
            cf_profile_backward(ctx->profile, n->op, cf_now_s() - t0);
        } else {
            n->backward(ctx, n);
        }
        if (!n->out->is_param) release_grad(ctx, n->out);
    }
}

void cf_backward(cf_ctx *ctx, cf_tensor *loss) {
    CF_ASSERT(loss->numel == 1, "backward needs a scalar loss, got %lld elements", (long long)loss->numel);
    cf_grad(ctx, loss)[0] += 1;
    run_tape(ctx);
}

void cf_backward_seeded(cf_ctx *ctx, cf_tensor *out, const cf_real *dout) {
    cf_real *g = cf_grad(ctx, out);
    for (int64_t i = 0; i < out->numel; i++) g[i] += dout[i];
    run_tape(ctx);
}
