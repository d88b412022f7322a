/* core/ops_dropout.c - inverted dropout with a counter-based keep mask.
 *
 * Element i of the c-th dropout call of a step is kept iff cf_rng_uniform_at(seed, step, c, i) >= p
 * (compared in double; cf_dropout_keep_bits in core/rng.c, shared with cf_attention's dropout), so
 * the mask is a pure function of (seed, step, call index, element index): independent of the
 * thread count and reproducible after a resume. Kept elements are scaled by 1 / (1 - p).
 *
 * The forward saves the mask as bits in the arena (numel / 8 bytes, 1/32 of the activation) rather
 * than re-deriving it in backward: the Philox rounds are the expensive part of this op, and a bit
 * mask makes backward a plain streaming multiply.
 */
#include <string.h>

#include "core/kernel.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "core/rng.h"

/* The three forms share one forward and one backward: plain dropout(x), dropout(relu(x)) (the FFN's
 * activation, so that the relu output never exists), and res + dropout(x) (a residual branch, so
 * that the dropped branch never exists and its gradient is the residual's own buffer). */
typedef enum dropout_form { DROPOUT_PLAIN, DROPOUT_RELU, DROPOUT_ADD } dropout_form;

static void dropout_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    dropout_form form = (dropout_form)node->i[0];
    const uint64_t *mask = node->saved; /* [ceil(numel / 64)] bit i % 64 of word i / 64: keep */
    const cf_real *g = node->out->grad, *xd = x->data;
    cf_real scale = (cf_real)node->f[0];
    int64_t n = x->numel, nwords = (n + 63) / 64;
    if (x->requires_grad) {
        bool fresh;
        cf_real *dx = cf_grad_first(ctx, x, &fresh); /* fresh: store, no zero-fill pass */
        CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t w = 0; w < nwords; w++) {
            int64_t i0 = w * 64, len = n - i0 < 64 ? n - i0 : 64;
            uint64_t bits = mask[w];
            const cf_real *gw = g + i0, *xw = xd + i0;
            cf_real *d = dx + i0;
            if (form == DROPOUT_RELU) { /* relu's threshold_backward: 0 where x <= 0 */
                if (fresh)
                    for (int64_t j = 0; j < len; j++) d[j] = ((bits >> j) & 1) && !(xw[j] <= 0) ? gw[j] * scale : 0;
                else
                    for (int64_t j = 0; j < len; j++) d[j] += ((bits >> j) & 1) && !(xw[j] <= 0) ? gw[j] * scale : 0;
            } else if (fresh) {
                for (int64_t j = 0; j < len; j++) d[j] = ((bits >> j) & 1) ? gw[j] * scale : 0;
            } else {
                for (int64_t j = 0; j < len; j++) d[j] += ((bits >> j) & 1) ? gw[j] * scale : 0;
            }
        });
    }
    if (form == DROPOUT_ADD && node->in[1]->requires_grad) cf_grad_pass(ctx, node->in[1], node->out);
}

static cf_tensor *dropout_forward(cf_ctx *ctx, const char *name, dropout_form form, cf_tensor *x, cf_tensor *res,
                                  double p) {
    uint64_t id = ctx->dropout_calls++;
    int64_t n = x->numel, nwords = (n + 63) / 64;
    cf_real scale = p < 1 ? (cf_real)(1.0 / (1.0 - p)) : 0;
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, x->shape);
    uint64_t *mask = cf_scratch(ctx, (size_t)(nwords ? nwords : 1) * sizeof *mask); /* [nwords] */
    const cf_real *rd = res ? res->data : NULL;
    /* One job per 64 mask words (4096 elements): each thread owns whole words of the mask, and
     * the mask call's fixed cost (threshold, clearing) is spread over 64 words. */
    enum { JOB_WORDS = 64 };
    int64_t njobs = (nwords + JOB_WORDS - 1) / JOB_WORDS;
    CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK / 4, for (int64_t job = 0; job < njobs; job++) {
        int64_t w0 = job * JOB_WORDS, i0 = w0 * 64, len = n - i0 < JOB_WORDS * 64 ? n - i0 : JOB_WORDS * 64;
        cf_dropout_keep_bits(ctx->seed, ctx->step, id, (uint64_t)i0, len, p, mask + w0);
        for (int64_t w = w0; w * 64 < i0 + len; w++) { /* a loop-invariant word per inner loop: vectorises */
            uint64_t bits = mask[w];
            const cf_real *xr = x->data + w * 64;
            cf_real *o = out->data + w * 64;
            int64_t wl = n - w * 64 < 64 ? n - w * 64 : 64;
            /* the same float operations as relu / dropout / add one after the other */
            if (form == DROPOUT_PLAIN)
                for (int64_t j = 0; j < wl; j++) o[j] = ((bits >> j) & 1) ? xr[j] * scale : 0;
            else if (form == DROPOUT_RELU)
                for (int64_t j = 0; j < wl; j++) o[j] = ((bits >> j) & 1) ? (xr[j] < 0 ? (cf_real)0 : xr[j]) * scale : 0;
            else
                for (int64_t j = 0; j < wl; j++) o[j] = rd[w * 64 + j] + (((bits >> j) & 1) ? xr[j] * scale : 0);
        }
    });
    cf_node *node = cf_tape_record(ctx, name, dropout_backward, out, res ? 2 : 1, (cf_tensor *[]){x, res});
    if (node) {
        node->saved = mask;
        node->f[0] = (double)scale;
        node->i[0] = form;
    }
    return out;
}

cf_tensor *cf_dropout(cf_ctx *ctx, cf_tensor *x, double p) {
    CF_ASSERT(p >= 0 && p <= 1, "dropout: p = %g outside [0, 1]", p);
    if (!ctx->training || p == 0) return x;
    return dropout_forward(ctx, "dropout", DROPOUT_PLAIN, x, NULL, p);
}

cf_tensor *cf_relu_dropout(cf_ctx *ctx, cf_tensor *x, double p) {
    CF_ASSERT(p >= 0 && p <= 1, "relu_dropout: p = %g outside [0, 1]", p);
    if (!ctx->training || p == 0) return cf_relu(ctx, x);
    return dropout_forward(ctx, "relu_dropout", DROPOUT_RELU, x, NULL, p);
}

cf_tensor *cf_dropout_add(cf_ctx *ctx, cf_tensor *res, cf_tensor *x, double p) {
    char sr[64], sx[64];
    CF_ASSERT(p >= 0 && p <= 1, "dropout_add: p = %g outside [0, 1]", p);
    CF_ASSERT(res->ndim == x->ndim && res->numel == x->numel &&
                  memcmp(res->shape, x->shape, (size_t)x->ndim * sizeof *x->shape) == 0,
              "dropout_add: residual %s, branch %s", cf_shape_str(res, sr, 64), cf_shape_str(x, sx, 64));
    if (!ctx->training || p == 0) return cf_add(ctx, res, x);
    return dropout_forward(ctx, "dropout_add", DROPOUT_ADD, x, res, p);
}
