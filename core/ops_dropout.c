/* core/ops_dropout.c - inverted dropout with a counter-based keep mask.
 *
 * Element i of the c-th dropout call of a step is kept iff cf_rng_uniform_at(seed, step, c, i) >= p,
 * so the mask is a pure function of (seed, step, call index, element index): independent of the
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

/* The keep bits of mask word w (elements 64w .. 64w + 63): 16 Philox4x32-10 blocks computed
 * side by side so that gcc vectorises the rounds (one cf_philox4x32 call per block is ~4x slower).
 * Same key, counter layout and uniform conversion as cf_rng_uniform_at in core/rng.c, so bit j is
 * cf_rng_uniform_at(seed, step, id, 64w + j) >= p; the test dropout_mask_is_counter_based checks it. */
static uint64_t keep_bits(uint64_t seed, uint64_t step, uint64_t id, uint64_t w, float p) {
    enum { NB = 16 };
    uint32_t c0[NB], c1[NB], c2[NB], c3[NB];
    uint64_t key = seed ^ ((uint64_t)CF_RNG_STREAM_DROPOUT << 56);
    for (int b = 0; b < NB; b++) {
        uint64_t block = w * NB + (uint64_t)b;
        c0[b] = (uint32_t)block;
        c1[b] = (uint32_t)(block >> 32);
        c2[b] = (uint32_t)id;
        c3[b] = (uint32_t)step;
    }
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        for (int b = 0; b < NB; b++) {
            uint64_t p0 = (uint64_t)0xD2511F53u * c0[b], p1 = (uint64_t)0xCD9E8D57u * c2[b];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[b] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[b] ^ k1;
            c1[b] = (uint32_t)p1;
            c3[b] = (uint32_t)p0;
            c0[b] = n0;
            c2[b] = n2;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    /* u = (word >> 8) / 2^24 >= p, compared in float exactly as cf_rng_uniform_at's value is */
    uint64_t bits = 0;
    for (int b = 0; b < NB; b++) {
        uint32_t out[4] = {c0[b], c1[b], c2[b], c3[b]};
        for (int j = 0; j < 4; j++)
            bits |= (uint64_t)((float)(out[j] >> 8) * (1.0f / 16777216.0f) >= p) << (4 * b + j);
    }
    return bits;
}

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
    float pf = (float)p;
    cf_real scale = p < 1 ? (cf_real)(1.0 / (1.0 - p)) : 0;
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, x->shape);
    uint64_t *mask = cf_scratch(ctx, (size_t)(nwords ? nwords : 1) * sizeof *mask); /* [nwords] */
    /* One job per 64-element word: each thread owns whole words of the mask. */
#pragma omp parallel for schedule(static) if (n > CF_PAR_MIN_WORK / 4)
    for (int64_t w = 0; w < nwords; w++) {
        int64_t i0 = w * 64, len = n - i0 < 64 ? n - i0 : 64;
        uint64_t bits = keep_bits(ctx->seed, ctx->step, id, (uint64_t)w, pf);
        if (len < 64) bits &= (UINT64_C(1) << len) - 1;
        mask[w] = bits;
        const cf_real *xr = x->data + i0;
        cf_real *o = out->data + i0;
        for (int64_t j = 0; j < len; j++) o[j] = ((bits >> j) & 1) ? xr[j] * scale : 0;
    }
    cf_node *node = cf_tape_record(ctx, "dropout", dropout_backward, out, 1, (cf_tensor *[]){x});
    if (node) {
        node->saved = mask;
        node->f[0] = (double)scale;
    }
    return out;
}
