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
#include "core/rng.h"

static void dropout_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    const uint64_t *mask = node->saved; /* [ceil(numel / 64)] bit i % 64 of word i / 64: keep */
    const cf_real *g = node->out->grad;
    cf_real scale = (cf_real)node->f[0], *dx = cf_grad(ctx, x);
    int64_t n = x->numel, nwords = (n + 63) / 64;
#pragma omp parallel for schedule(static) if (n > CF_PAR_MIN_WORK)
    for (int64_t w = 0; w < nwords; w++) {
        int64_t i0 = w * 64, len = n - i0 < 64 ? n - i0 : 64;
        uint64_t bits = mask[w];
        for (int64_t j = 0; j < len; j++) dx[i0 + j] += ((bits >> j) & 1) ? g[i0 + j] * scale : 0;
    }
}

cf_tensor *cf_dropout(cf_ctx *ctx, cf_tensor *x, double p) {
    CF_ASSERT(p >= 0 && p <= 1, "dropout: p = %g outside [0, 1]", p);
    if (!ctx->training || p == 0) return x;
    uint64_t id = ctx->dropout_calls++;
    int64_t n = x->numel, nwords = (n + 63) / 64;
    cf_real scale = p < 1 ? (cf_real)(1.0 / (1.0 - p)) : 0;
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, x->shape);
    uint64_t *mask = cf_scratch(ctx, (size_t)(nwords ? nwords : 1) * sizeof *mask); /* [nwords] */
    /* One job per 64 mask words (4096 elements): each thread owns whole words of the mask, and
     * the mask call's fixed cost (threshold, clearing) is spread over 64 words. */
    enum { JOB_WORDS = 64 };
    int64_t njobs = (nwords + JOB_WORDS - 1) / JOB_WORDS;
#pragma omp parallel for schedule(static) if (n > CF_PAR_MIN_WORK / 4)
    for (int64_t job = 0; job < njobs; job++) {
        int64_t w0 = job * JOB_WORDS, i0 = w0 * 64, len = n - i0 < JOB_WORDS * 64 ? n - i0 : JOB_WORDS * 64;
        cf_dropout_keep_bits(ctx->seed, ctx->step, id, (uint64_t)i0, len, p, mask + w0);
        for (int64_t w = w0; w * 64 < i0 + len; w++) { /* a loop-invariant word per inner loop: vectorises */
            uint64_t bits = mask[w];
            const cf_real *xr = x->data + w * 64;
            cf_real *o = out->data + w * 64;
            int64_t wl = n - w * 64 < 64 ? n - w * 64 : 64;
            for (int64_t j = 0; j < wl; j++) o[j] = ((bits >> j) & 1) ? xr[j] * scale : 0;
        }
    }
    cf_node *node = cf_tape_record(ctx, "dropout", dropout_backward, out, 1, (cf_tensor *[]){x});
    if (node) {
        node->saved = mask;
        node->f[0] = (double)scale;
    }
    return out;
}
