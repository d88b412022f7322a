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

static void embedding_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *w = node->in[0];
    if (!w->requires_grad) return;
    const int32_t *ids = node->saved; /* [N] */
    int64_t V = w->shape[0], C = w->shape[1], N = node->i[0];
    const cf_real *dout = node->out->grad; /* [N, C] */
    cf_real *dw = cf_grad(ctx, w);         /* [V, C] */
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
#pragma omp parallel for schedule(static) if (N * C > CF_PAR_MIN_WORK)
    for (int64_t v = 0; v < V; v++) {
        cf_real *row = dw + v * C;
        for (int64_t k = start[v]; k < start[v + 1]; k++) {
            const cf_real *g = dout + order[k] * C;
            for (int64_t c = 0; c < C; c++) row[c] += g[c];
        }
    }
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
#pragma omp parallel for schedule(static) if (N * C > CF_PAR_MIN_WORK)
    for (int64_t n = 0; n < N; n++)
        memcpy(out->data + n * C, weight->data + (int64_t)ids[n] * C, (size_t)C * sizeof(cf_real));
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
