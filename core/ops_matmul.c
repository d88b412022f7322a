/* core/ops_matmul.c - matmul (plain and batched) and linear, through core/gemm.h (OpenBLAS in fixed tiles). */
#include <string.h>

#include "core/gemm.h"
#include "core/kernel.h"
#include "core/ops.h"

/* ---- matmul ---- */

typedef struct matmul_dims {
    int64_t batch, m, k, n; /* a [batch, m, k]; b [k, n] / [n, k] (shared) or [batch, ...] */
    bool b_batched, trans_b;
} matmul_dims;

static matmul_dims matmul_dims_of(const cf_tensor *a, const cf_tensor *b, bool trans_b) {
    char sa[64], sb[64];
    CF_ASSERT(a->ndim >= 2 && b->ndim >= 2, "matmul: a %s, b %s", cf_shape_str(a, sa, 64), cf_shape_str(b, sb, 64));
    matmul_dims d = {0};
    d.trans_b = trans_b;
    d.m = a->shape[a->ndim - 2];
    d.k = a->shape[a->ndim - 1];
    int64_t bk = trans_b ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    d.n = trans_b ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    CF_ASSERT(bk == d.k, "matmul: inner dims differ: a %s, b %s%s", cf_shape_str(a, sa, 64),
              cf_shape_str(b, sb, 64), trans_b ? " (transposed)" : "");
    d.b_batched = b->ndim > 2;
    if (d.b_batched) {
        CF_ASSERT(b->ndim == a->ndim, "matmul: batched b needs a's leading dims");
        for (int i = 0; i < a->ndim - 2; i++)
            CF_ASSERT(a->shape[i] == b->shape[i], "matmul: leading dims differ: a %s, b %s",
                      cf_shape_str(a, sa, 64), cf_shape_str(b, sb, 64));
        d.batch = a->numel / (d.m * d.k > 0 ? d.m * d.k : 1);
    } else {
        /* b shared: fold a's leading dims into M and make one GEMM. */
        d.batch = 1;
        d.m = a->numel / (d.k > 0 ? d.k : 1);
    }
    return d;
}

/* C[b] (+)= A[b] @ op(B[b]) for each batch index (core/gemm.h: fixed tiles, any thread count). */
static void gemm_batched(int64_t batch, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const cf_real *A,
                         int64_t sa, const cf_real *B, int64_t sb, cf_real beta, cf_real *C, int64_t sc) {
    cf_gemm_rm_batched(batch, ta, tb, m, n, k, 1, A, sa, ta ? m : k, B, sb, tb ? k : n, beta, C, sc, n);
}

static void matmul_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *a = node->in[0], *b = node->in[1];
    matmul_dims d = matmul_dims_of(a, b, node->i[0] != 0);
    const cf_real *dc = node->out->grad;
    int64_t sa = d.m * d.k, sb = d.b_batched ? d.k * d.n : 0, sc = d.m * d.n;
    if (a->requires_grad) {
        /* dA[m,k] += dC[m,n] @ op(B)^T */
        gemm_batched(d.batch, false, !d.trans_b, d.m, d.k, d.n, dc, sc, b->data, sb, 1, cf_grad(ctx, a), sa);
    }
    if (b->requires_grad) {
        cf_real *db = cf_grad(ctx, b);
        if (d.b_batched) {
            if (d.trans_b) /* dB[n,k] += dC^T @ A */
                gemm_batched(d.batch, true, false, d.n, d.k, d.m, dc, sc, a->data, sa, 1, db, sb);
            else /* dB[k,n] += A^T @ dC */
                gemm_batched(d.batch, true, false, d.k, d.n, d.m, a->data, sa, dc, sc, 1, db, sb);
        } else {
            if (d.trans_b)
                gemm_batched(1, true, false, d.n, d.k, d.m, dc, 0, a->data, 0, 1, db, 0);
            else
                gemm_batched(1, true, false, d.k, d.n, d.m, a->data, 0, dc, 0, 1, db, 0);
        }
    }
}

cf_tensor *cf_matmul(cf_ctx *ctx, cf_tensor *a, cf_tensor *b, bool trans_b) {
    matmul_dims d = matmul_dims_of(a, b, trans_b);
    int64_t shape[CF_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[a->ndim - 1] = d.n;
    cf_tensor *out = cf_tensor_new(ctx, a->ndim, shape);
    if (d.k == 0)
        memset(out->data, 0, (size_t)out->numel * sizeof(cf_real));
    else
        gemm_batched(d.batch, false, trans_b, d.m, d.n, d.k, a->data, d.m * d.k, b->data,
                     d.b_batched ? d.k * d.n : 0, 0, out->data, d.m * d.n);
    cf_node *node = cf_tape_record(ctx, "matmul", matmul_backward, out, 2, (cf_tensor *[]){a, b});
    if (node) node->i[0] = trans_b;
    return out;
}

/* ---- linear ---- */

static void linear_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0], *w = node->in[1], *bias = node->in[2];
    int64_t rows = cf_rows(x), in = cf_cols(x), outc = w->shape[0];
    const cf_real *dy = node->out->grad;
    if (rows == 0) return;
    /* dx and dW in one parallel loop (core/gemm.h: the same bits as two calls) */
    cf_gemm_args prod[2];
    int n = 0;
    if (x->requires_grad) { /* dx[R,IN] += dy[R,OUT] @ w[OUT,IN] */
        bool fresh; /* a new gradient buffer is stored into (beta 0): no zero-fill pass */
        cf_real *dx = cf_grad_first(ctx, x, &fresh);
        prod[n++] = (cf_gemm_args){false, false, rows, in, outc, 1, dy, outc, w->data, in, fresh ? 0 : 1, dx, in};
    }
    if (w->requires_grad) /* dw[OUT,IN] += dy^T @ x */
        prod[n++] = (cf_gemm_args){true, false, outc, in, rows, 1, dy, outc, x->data, in, 1, cf_grad(ctx, w), in};
    cf_gemm_rm_group(prod, n);
    if (bias && bias->requires_grad) {
        double *scratch = cf_scratch(ctx, (size_t)cf_col_sum_scratch(rows, outc) * sizeof(double));
        cf_col_sum_add(dy, rows, outc, outc, cf_grad(ctx, bias), scratch);
    }
}

cf_tensor *cf_linear(cf_ctx *ctx, cf_tensor *x, cf_tensor *w, cf_tensor *bias) {
    char sx[64], sw[64];
    CF_ASSERT(w->ndim == 2 && cf_cols(x) == w->shape[1], "linear: x %s, weight %s", cf_shape_str(x, sx, 64),
              cf_shape_str(w, sw, 64));
    CF_ASSERT(!bias || (bias->ndim == 1 && bias->shape[0] == w->shape[0]), "linear: bias shape");
    int64_t rows = cf_rows(x), in = w->shape[1], outc = w->shape[0];
    int64_t shape[CF_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = outc;
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, shape);
    /* out[R,OUT] = x[R,IN] @ w[OUT,IN]^T (+ bias on every row, inside the GEMM's tiles) */
    const cf_gemm_packed *pw = NULL;
    if (ctx->packed && !ctx->grad_enabled) { /* decoding: the weight packed once for the whole decode */
        pw = cf_gemm_packed_find(ctx->packed, w->data, outc, in);
        if (!pw) ctx->packed_misses++;
    }
    if (pw)
        cf_gemm_packed_bias(rows, x->data, in, pw, bias ? bias->data : NULL, out->data, outc);
    else if (bias)
        cf_gemm_rm_bias(false, true, rows, outc, in, x->data, in, w->data, in, bias->data, out->data, outc);
    else
        cf_gemm_rm(false, true, rows, outc, in, 1, x->data, in, w->data, in, 0, out->data, outc);
    cf_tape_record(ctx, "linear", linear_backward, out, 3, (cf_tensor *[]){x, w, bias});
    return out;
}
