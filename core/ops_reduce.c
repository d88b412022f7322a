/* core/ops_reduce.c - sum and mean to one element. */
#include <stdlib.h>

#include "core/kernel.h"
#include "core/ops.h"
#include "core/parallel.h"

/* Fixed-order blocked summation in double: the same result for any thread count. */
static double sum_all(const cf_real *x, int64_t n) {
    enum { BLOCK = 4096 };
    int64_t nblk = (n + BLOCK - 1) / BLOCK;
    if (nblk <= 1) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += x[i];
        return s;
    }
    double partial_stack[64], *partial = partial_stack;
    if (nblk > 64) partial = cf_xmalloc((size_t)nblk * sizeof *partial);
    CF_PARALLEL_FOR(n > CF_PAR_MIN_WORK, for (int64_t b = 0; b < nblk; b++) {
        int64_t i1 = (b + 1) * BLOCK < n ? (b + 1) * BLOCK : n;
        double s = 0;
        for (int64_t i = b * BLOCK; i < i1; i++) s += x[i];
        partial[b] = s;
    });
    double s = 0;
    for (int64_t b = 0; b < nblk; b++) s += partial[b];
    if (partial != partial_stack) free(partial);
    return s;
}

static void sum_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    cf_real g = (cf_real)(node->out->grad[0] * node->f[0]), *dx = cf_grad(ctx, x);
    CF_PARALLEL_FOR(x->numel > CF_PAR_MIN_WORK, for (int64_t i = 0; i < x->numel; i++) {
        dx[i] += g;
    });
}

static cf_tensor *reduce(cf_ctx *ctx, cf_tensor *x, double factor, const char *name) {
    cf_tensor *out = cf_tensor_new(ctx, 1, (int64_t[]){1});
    out->data[0] = (cf_real)(sum_all(x->data, x->numel) * factor);
    cf_node *node = cf_tape_record(ctx, name, sum_backward, out, 1, (cf_tensor *[]){x});
    if (node) node->f[0] = factor;
    return out;
}

cf_tensor *cf_sum(cf_ctx *ctx, cf_tensor *x) { return reduce(ctx, x, 1.0, "sum"); }
cf_tensor *cf_mean(cf_ctx *ctx, cf_tensor *x) { return reduce(ctx, x, x->numel ? 1.0 / (double)x->numel : 0.0, "mean"); }
