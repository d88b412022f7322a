/* core/ops_embedding.c - embedding lookup with a deterministic, parallel scatter-add backward.
 *
 * Forward copies rows of weight [V, C] into out [N, C] (N = number of ids). Backward must add row n
 * of dout into row ids[n] of dweight; several n may share an id, so threads would race on that row.
 * Instead of atomics we bucket the token positions by id (a counting sort into arena scratch,
 * stable, so each bucket lists its positions in increasing order) and give each weight row to one
 * thread, which sums its positions in that order: bit-identical for any thread count.
 */
#include <string.h>

#include "core/kernel.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "core/rng.h"

/* dw[ids[n]] += scale * src[n] for n < N, rows of C: positions bucketed by id (a stable counting
 * sort into arena scratch), each weight row owned by one thread, which adds its positions in
 * increasing order: bit-identical for any thread count. scale 1 adds src exactly. */
static void scatter_rows(cf_ctx *ctx, cf_real *dw, int64_t V, int64_t C, const int32_t *ids, int64_t N,
                         const cf_real *src, cf_real scale) {
    /* CSR buckets: the positions with id v are order[start[v] .. start[v + 1]) */
    int64_t *start = cf_scratch(ctx, (size_t)(V + 1) * sizeof *start); /* [V + 1] */
    int64_t *order = cf_scratch(ctx, (size_t)(N ? N : 1) * sizeof *order); /* [N] */
    memset(start, 0, (size_t)(V + 1) * sizeof *start);
    for (int64_t n = 0; n < N; n++) start[ids[n] + 1]++;
    for (int64_t v = 0; v < V; v++) start[v + 1] += start[v];
    int64_t *fill = cf_scratch(ctx, (size_t)(V ? V : 1) * sizeof *fill); /* [V] next free slot */
    memcpy(fill, start, (size_t)V * sizeof *fill);
    for (int64_t n = 0; n < N; n++) order[fill[ids[n]]++] = n;
    /* Rows without ids cost one comparison, so a static split over V stays balanced enough. */
    CF_PARALLEL_FOR(N * C > CF_PAR_MIN_WORK, for (int64_t v = 0; v < V; v++) {
        cf_real *row = dw + v * C;
        for (int64_t k = start[v]; k < start[v + 1]; k++) {
            const cf_real *g = src + order[k] * C;
            for (int64_t c = 0; c < C; c++) row[c] += scale * g[c];
        }
    });
}

static void embedding_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *w = node->in[0];
    if (!w->requires_grad) return;
    const int32_t *ids = node->saved; /* [N] */
    scatter_rows(ctx, cf_grad(ctx, w), w->shape[0], w->shape[1], ids, node->i[0], node->out->grad, 1);
}

cf_tensor *cf_embedding(cf_ctx *ctx, cf_tensor *weight, const int32_t *ids, int ndim, const int64_t *shape) {
    char sw[64];
    CF_ASSERT(weight->ndim == 2, "embedding: weight %s is not [V, C]", cf_shape_str(weight, sw, 64));
    CF_ASSERT(ndim >= 1 && ndim < CF_MAX_DIMS, "embedding: ids have %d dims (1..%d)", ndim, CF_MAX_DIMS - 1);
    int64_t V = weight->shape[0], C = weight->shape[1], N = cf_shape_numel(ndim, shape);
    for (int64_t n = 0; n < N; n++)
        CF_ASSERT(ids[n] >= 0 && ids[n] < V, "embedding: id %d at position %lld is outside [0, %lld)", (int)ids[n],
                  (long long)n, (long long)V);
    int64_t oshape[CF_MAX_DIMS];
    memcpy(oshape, shape, (size_t)ndim * sizeof *oshape);
    oshape[ndim] = C;
    cf_tensor *out = cf_tensor_new(ctx, ndim + 1, oshape); /* [..., C] */
    CF_PARALLEL_FOR(N * C > CF_PAR_MIN_WORK, for (int64_t n = 0; n < N; n++) {
        memcpy(out->data + n * C, weight->data + (int64_t)ids[n] * C, (size_t)C * sizeof(cf_real));
    });
    cf_node *node = cf_tape_record(ctx, "embedding", embedding_backward, out, 1, (cf_tensor *[]){weight});
    if (node) {
        /* a copy: the caller's ids need not outlive the forward */
        int32_t *saved = cf_scratch(ctx, (size_t)(N ? N : 1) * sizeof *saved); /* [N] */
        memcpy(saved, ids, (size_t)N * sizeof *saved);
        node->saved = saved;
        node->i[0] = N;
    }
    return out;
}

/* ---- the model's input: dropout(weight[id] * scale + positions) in one pass ---- */

typedef struct embed_saved {
    int32_t *ids;               /* [N] copy */
    uint64_t *mask;             /* [ceil(N*C / 64)] keep bits, or NULL without dropout */
    cf_real drop_scale;         /* 1 / (1 - p) */
    int64_t batch, len, pos_offset;
} embed_saved;

static void embed_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *w = node->in[0], *pos = node->in[1];
    const embed_saved *s = node->saved;
    const int64_t C = w->shape[1], N = s->batch * s->len, n = N * C;
    const cf_real sr = (cf_real)node->f[0];
    const cf_real *g = node->out->grad;
    /* the gradient below the dropout: the same values cf_dropout's backward stores */
    const cf_real *da = g;
    if (s->mask) {
        cf_real *buf = cf_scratch(ctx, (size_t)(n ? n : 1) * sizeof *buf); /* [N, C] */
        const int64_t nwords = (n + 63) / 64;
        const cf_real ds = s->drop_scale; /* a local: a load through s could alias buf (no vectors) */
        CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t word = 0; word < nwords; word++) {
            const uint64_t bits = s->mask[word]; /* a loop-invariant word per inner loop: vectorises */
            const int64_t i0 = word * 64, len = n - i0 < 64 ? n - i0 : 64;
            for (int64_t j = 0; j < len; j++) buf[i0 + j] = ((bits >> j) & 1) ? g[i0 + j] * ds : 0;
        });
        da = buf;
    }
    if (pos && pos->requires_grad) { /* rows offset.. of the table: the sum over the batch, in order */
        cf_real *dp = cf_grad(ctx, pos) + s->pos_offset * C;
        CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t tc = 0; tc < s->len * C; tc++) {
            double acc = 0;
            for (int64_t b = 0; b < s->batch; b++) acc += da[b * s->len * C + tc];
            dp[tc] += (cf_real)acc;
        });
    }
    if (w->requires_grad) scatter_rows(ctx, cf_grad(ctx, w), w->shape[0], C, s->ids, N, da, sr);
}

cf_tensor *cf_embed_input(cf_ctx *ctx, cf_tensor *weight, const int32_t *ids, int64_t batch, int64_t len, double scale,
                          cf_tensor *pos, int64_t pos_offset, double p) {
    char sw[64], sp[64];
    CF_ASSERT(weight->ndim == 2, "embed_input: weight %s is not [V, C]", cf_shape_str(weight, sw, 64));
    const int64_t V = weight->shape[0], C = weight->shape[1], N = batch * len, n = N * C;
    CF_ASSERT(!pos || (pos->ndim == 2 && pos->shape[1] == C && pos_offset >= 0 && pos_offset + len <= pos->shape[0]),
              "embed_input: positions %s for %lld positions from %lld, width %lld", pos ? cf_shape_str(pos, sp, 64) : "",
              (long long)len, (long long)pos_offset, (long long)C);
    CF_ASSERT(p >= 0 && p <= 1, "embed_input: dropout %g outside [0, 1]", p);
    for (int64_t i = 0; i < N; i++)
        CF_ASSERT(ids[i] >= 0 && ids[i] < V, "embed_input: id %d at position %lld is outside [0, %lld)", (int)ids[i],
                  (long long)i, (long long)V);
    const bool drop = ctx->training && p > 0;
    embed_saved *s = cf_scratch(ctx, sizeof *s);
    *s = (embed_saved){.batch = batch, .len = len, .pos_offset = pos_offset,
                       .drop_scale = drop && p < 1 ? (cf_real)(1.0 / (1.0 - p)) : 0};
    const int64_t nwords = (n + 63) / 64;
    s->mask = drop ? cf_scratch(ctx, (size_t)(nwords ? nwords : 1) * sizeof *s->mask) : NULL;
    const uint64_t drop_id = drop ? ctx->dropout_calls++ : 0;
    const cf_real sr = (cf_real)scale;
    const cf_real *pe = pos ? pos->data + pos_offset * C : NULL, ds = s->drop_scale; /* locals: no aliasing */
    cf_tensor *out = cf_tensor_new(ctx, 3, (int64_t[]){batch, len, C});
    /* jobs of 64 mask words (4096 elements) as in cf_dropout, so the mask is the one it would draw */
    enum { JOB_WORDS = 64 };
    int64_t njobs = (nwords + JOB_WORDS - 1) / JOB_WORDS;
    CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK / 4, for (int64_t job = 0; job < njobs; job++) {
        int64_t i0 = job * JOB_WORDS * 64, i1 = i0 + JOB_WORDS * 64 < n ? i0 + JOB_WORDS * 64 : n;
        if (drop) cf_dropout_keep_bits(ctx->seed, ctx->step, drop_id, (uint64_t)i0, i1 - i0, p, s->mask + job * JOB_WORDS);
        /* word by word (a word's 64 elements may span rows), each a loop-invariant mask word: the
         * same float operations as gather, scale, add, dropout one after the other */
        for (int64_t w = i0 / 64; w * 64 < i1; w++) {
            const uint64_t bits = drop ? s->mask[w] : 0;
            const int64_t we = w * 64 + 64 < i1 ? w * 64 + 64 : i1;
            for (int64_t i = w * 64; i < we;) {
                const int64_t r = i / C, c0 = i % C, seg = we - i < C - c0 ? we - i : C - c0, off = i - w * 64;
                const cf_real *wr = weight->data + (int64_t)ids[r] * C + c0, *pr = pe ? pe + (r % len) * C + c0 : NULL;
                cf_real *o = out->data + r * C + c0;
                if (drop && pr)
                    for (int64_t j = 0; j < seg; j++) o[j] = ((bits >> (off + j)) & 1) ? (wr[j] * sr + pr[j]) * ds : 0;
                else if (drop)
                    for (int64_t j = 0; j < seg; j++) o[j] = ((bits >> (off + j)) & 1) ? wr[j] * sr * ds : 0;
                else if (pr)
                    for (int64_t j = 0; j < seg; j++) o[j] = wr[j] * sr + pr[j];
                else
                    for (int64_t j = 0; j < seg; j++) o[j] = wr[j] * sr;
                i += seg;
            }
        }
    });
    cf_node *node = cf_tape_record(ctx, "embed_input", embed_backward, out, 2, (cf_tensor *[]){weight, pos});
    if (node) {
        s->ids = cf_scratch(ctx, (size_t)(N ? N : 1) * sizeof *s->ids);
        memcpy(s->ids, ids, (size_t)N * sizeof *s->ids);
        node->saved = s;
        node->f[0] = scale;
    }
    return out;
}
