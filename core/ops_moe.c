/* core/ops_moe.c - the mixture-of-experts ops: top-k routing, the load-balancing loss, dispatch
 * of token rows to experts, one linear layer per expert over its rows, and the weighted combine.
 *
 * Legend: N tokens (rows), E experts, K experts per token, d model width, M = N*K dispatched rows.
 *
 * Routing (cf_moe_route) is serial over tokens and cheap (N*E work); it fixes an order that every
 * other op follows: dispatched rows are grouped by expert, and within an expert ordered by token,
 * so expert e owns rows [offset[e], offset[e+1]). Each (token, slot) has exactly one row, and each
 * row one (token, slot): dispatch's backward sums a token's K rows in slot order, combine's
 * backward writes each row once, and the grouped linear runs one tiled GEMM (core/gemm.h) per
 * expert. Nothing depends on the thread count, by construction.
 */
#include <math.h>
#include <string.h>

#include "core/gemm.h"
#include "core/kernel.h"
#include "core/ops.h"
#include "core/parallel.h"

/* ---- routing ---- */

/* The k largest of z[0..E) by value (ties: the lower index first), in descending order. */
static void top_k(const cf_real *z, int64_t E, int64_t k, int32_t *out) {
    for (int64_t s = 0; s < k; s++) {
        int32_t best = -1;
        for (int64_t e = 0; e < E; e++) {
            bool taken = false;
            for (int64_t t = 0; t < s; t++) taken |= out[t] == e;
            if (!taken && (best < 0 || z[e] > z[best])) best = (int32_t)e;
        }
        out[s] = best;
    }
}

static void route_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *logits = node->in[0];
    if (!logits->requires_grad) return;
    const cf_moe_routing *r = node->saved;
    int64_t N = r->n_tokens, E = r->n_experts, K = r->k;
    const cf_real *g = node->out->data, *dg = node->out->grad;
    cf_real *dz = cf_grad(ctx, logits);
    /* g = softmax over the chosen logits: dz_s = g_s (dg_s - sum_s' g_s' dg_s'); the others get 0 */
    CF_PARALLEL_FOR(N * K > CF_PAR_MIN_WORK, for (int64_t t = 0; t < N; t++) {
        double dot = 0;
        for (int64_t s = 0; s < K; s++) dot += (double)g[t * K + s] * dg[t * K + s];
        for (int64_t s = 0; s < K; s++)
            dz[t * E + r->expert[t * K + s]] += (cf_real)(g[t * K + s] * (dg[t * K + s] - dot));
    });
}

cf_tensor *cf_moe_route(cf_ctx *ctx, cf_tensor *logits, int64_t k, cf_moe_routing *r) {
    char sl[64];
    CF_ASSERT(logits->ndim == 2 && k >= 1 && k <= logits->shape[1], "moe_route: logits %s, k %lld",
              cf_shape_str(logits, sl, 64), (long long)k);
    int64_t N = logits->shape[0], E = logits->shape[1], M = N * k;
    memset(r, 0, sizeof *r);
    r->n_tokens = N;
    r->n_experts = E;
    r->k = k;
    r->expert = cf_scratch(ctx, (size_t)(M ? M : 1) * sizeof *r->expert);       /* [N, K] */
    r->slot_row = cf_scratch(ctx, (size_t)(M ? M : 1) * sizeof *r->slot_row);   /* [N, K] */
    r->row_token = cf_scratch(ctx, (size_t)(M ? M : 1) * sizeof *r->row_token); /* [M] */
    r->offset = cf_scratch(ctx, (size_t)(E + 1) * sizeof *r->offset);           /* [E + 1] */
    r->probs = cf_scratch(ctx, (size_t)(N * E > 0 ? N * E : 1) * sizeof *r->probs); /* [N, E] */
    cf_tensor *gates = cf_tensor_new(ctx, 2, (int64_t[]){N, k});
    CF_PARALLEL_FOR(N * E * k > CF_PAR_MIN_WORK, for (int64_t t = 0; t < N; t++) {
        const cf_real *z = logits->data + t * E;
        cf_real *p = r->probs + t * E, *g = gates->data + t * k;
        int32_t *chosen = r->expert + t * k;
        cf_real m = z[0];
        for (int64_t e = 1; e < E; e++) m = z[e] > m ? z[e] : m;
        double sum = 0;
        for (int64_t e = 0; e < E; e++) sum += p[e] = (cf_real)exp((double)(z[e] - m));
        for (int64_t e = 0; e < E; e++) p[e] = (cf_real)(p[e] / sum);
        top_k(z, E, k, chosen);
        double gsum = 0;
        for (int64_t s = 0; s < k; s++) gsum += g[s] = (cf_real)exp((double)(z[chosen[s]] - m));
        for (int64_t s = 0; s < k; s++) g[s] = (cf_real)(g[s] / gsum);
    });
    /* rows by expert, tokens in order within an expert (a stable counting sort) */
    memset(r->offset, 0, (size_t)(E + 1) * sizeof *r->offset);
    for (int64_t i = 0; i < M; i++) r->offset[r->expert[i] + 1]++;
    for (int64_t e = 0; e < E; e++) r->offset[e + 1] += r->offset[e];
    int64_t *fill = cf_scratch(ctx, (size_t)E * sizeof *fill);
    memcpy(fill, r->offset, (size_t)E * sizeof *fill);
    for (int64_t i = 0; i < M; i++) {
        int64_t row = fill[r->expert[i]]++;
        r->slot_row[i] = (int32_t)row;
        r->row_token[row] = (int32_t)(i / k);
    }
    cf_node *node = cf_tape_record(ctx, "moe_route", route_backward, gates, 1, (cf_tensor *[]){logits});
    if (node) node->saved = r;
    return gates;
}

/* ---- load-balancing loss ---- */

typedef struct aux_saved {
    const cf_moe_routing *r;
    cf_real *frac;              /* [E] f_e: the share of the N*K assignments expert e received */
} aux_saved;

static void aux_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *logits = node->in[0];
    if (!logits->requires_grad) return;
    const aux_saved *sv = node->saved;
    const cf_moe_routing *r = sv->r;
    int64_t N = r->n_tokens, E = r->n_experts;
    cf_real *dz = cf_grad(ctx, logits);
    /* L = E sum_e f_e P_e with P_e = mean_t p[t, e] (f is a constant: counts do not differentiate):
     * dL/dz[t, j] = (E / N) p_j (f_j - sum_e f_e p_e) */
    double c = (double)node->out->grad[0] * (double)E / (double)N;
    CF_PARALLEL_FOR(N * E > CF_PAR_MIN_WORK, for (int64_t t = 0; t < N; t++) {
        const cf_real *p = r->probs + t * E;
        double dot = 0;
        for (int64_t e = 0; e < E; e++) dot += (double)sv->frac[e] * p[e];
        for (int64_t e = 0; e < E; e++) dz[t * E + e] += (cf_real)(c * p[e] * ((double)sv->frac[e] - dot));
    });
}

cf_tensor *cf_moe_aux_loss(cf_ctx *ctx, cf_tensor *logits, const cf_moe_routing *r) {
    CF_ASSERT(logits->ndim == 2 && logits->shape[0] == r->n_tokens && logits->shape[1] == r->n_experts,
              "moe_aux_loss: logits do not match the routing");
    int64_t N = r->n_tokens, E = r->n_experts, M = N * r->k;
    aux_saved *sv = cf_scratch(ctx, sizeof *sv);
    sv->r = r;
    sv->frac = cf_scratch(ctx, (size_t)E * sizeof *sv->frac);
    double loss = 0;
    for (int64_t e = 0; e < E; e++) {
        double col = 0; /* N P_e, tokens in order */
        for (int64_t t = 0; t < N; t++) col += (double)r->probs[t * E + e];
        double fe = M ? (double)(r->offset[e + 1] - r->offset[e]) / (double)M : 0;
        sv->frac[e] = (cf_real)fe;
        loss += fe * (N ? col / (double)N : 0);
    }
    cf_tensor *out = cf_tensor_new(ctx, 1, (int64_t[]){1});
    out->data[0] = (cf_real)(loss * (double)E);
    cf_node *node = N ? cf_tape_record(ctx, "moe_aux_loss", aux_backward, out, 1, (cf_tensor *[]){logits}) : NULL;
    if (node) node->saved = sv;
    return out;
}

/* ---- dispatch and combine ---- */

static void dispatch_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    if (!x->requires_grad) return;
    const cf_moe_routing *r = node->saved;
    int64_t N = r->n_tokens, K = r->k, d = cf_cols(x);
    const cf_real *g = node->out->grad;
    cf_real *dx = cf_grad(ctx, x);
    CF_PARALLEL_FOR(N * K * d > CF_PAR_MIN_WORK, for (int64_t t = 0; t < N; t++)
        for (int64_t s = 0; s < K; s++) { /* a token's rows in slot order */
            const cf_real *src = g + (int64_t)r->slot_row[t * K + s] * d;
            for (int64_t j = 0; j < d; j++) dx[t * d + j] += src[j];
        });
}

cf_tensor *cf_moe_dispatch(cf_ctx *ctx, cf_tensor *x, const cf_moe_routing *r) {
    CF_ASSERT(cf_rows(x) == r->n_tokens, "moe_dispatch: %lld rows, routing of %lld tokens", (long long)cf_rows(x),
              (long long)r->n_tokens);
    int64_t M = r->n_tokens * r->k, d = cf_cols(x);
    cf_tensor *out = cf_tensor_new(ctx, 2, (int64_t[]){M, d});
    CF_PARALLEL_FOR(M * d > CF_PAR_MIN_WORK, for (int64_t row = 0; row < M; row++) {
        memcpy(out->data + row * d, x->data + (int64_t)r->row_token[row] * d, (size_t)d * sizeof(cf_real));
    });
    cf_node *node = cf_tape_record(ctx, "moe_dispatch", dispatch_backward, out, 1, (cf_tensor *[]){x});
    if (node) node->saved = (void *)r;
    return out;
}

static void combine_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *ys = node->in[0], *gates = node->in[1];
    const cf_moe_routing *r = node->saved;
    int64_t N = r->n_tokens, K = r->k, d = cf_cols(ys);
    const cf_real *dy = node->out->grad;
    cf_real *dys = ys->requires_grad ? cf_grad(ctx, ys) : NULL;
    cf_real *dg = gates->requires_grad ? cf_grad(ctx, gates) : NULL;
    CF_PARALLEL_FOR(N * K * d > CF_PAR_MIN_WORK, for (int64_t t = 0; t < N; t++)
        for (int64_t s = 0; s < K; s++) {
            int64_t row = r->slot_row[t * K + s];
            cf_real g = gates->data[t * K + s];
            const cf_real *y = ys->data + row * d, *gy = dy + t * d;
            if (dys)
                for (int64_t j = 0; j < d; j++) dys[row * d + j] += g * gy[j];
            if (dg) {
                double dot = 0;
                for (int64_t j = 0; j < d; j++) dot += (double)gy[j] * y[j];
                dg[t * K + s] += (cf_real)dot;
            }
        });
}

cf_tensor *cf_moe_combine(cf_ctx *ctx, cf_tensor *ys, cf_tensor *gates, const cf_moe_routing *r) {
    int64_t N = r->n_tokens, K = r->k, d = cf_cols(ys);
    CF_ASSERT(cf_rows(ys) == N * K && gates->numel == N * K, "moe_combine: %lld rows and %lld gates for %lld x %lld",
              (long long)cf_rows(ys), (long long)gates->numel, (long long)N, (long long)K);
    cf_tensor *out = cf_tensor_new(ctx, 2, (int64_t[]){N, d});
    CF_PARALLEL_FOR(N * K * d > CF_PAR_MIN_WORK, for (int64_t t = 0; t < N; t++) {
        cf_real *o = out->data + t * d;
        for (int64_t j = 0; j < d; j++) o[j] = 0;
        for (int64_t s = 0; s < K; s++) { /* slots in order: the largest gate first */
            cf_real g = gates->data[t * K + s];
            const cf_real *y = ys->data + (int64_t)r->slot_row[t * K + s] * d;
            for (int64_t j = 0; j < d; j++) o[j] += g * y[j];
        }
    });
    cf_node *node = cf_tape_record(ctx, "moe_combine", combine_backward, out, 2, (cf_tensor *[]){ys, gates});
    if (node) node->saved = (void *)r;
    return out;
}

/* ---- one linear layer per expert ---- */

static void grouped_linear_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0], *w = node->in[1], *bias = node->in[2];
    const int64_t *offset = node->saved;
    int64_t G = w->shape[0], outc = w->shape[1], in = w->shape[2];
    const cf_real *dy = node->out->grad;
    cf_real *dx = x->requires_grad ? cf_grad(ctx, x) : NULL;
    cf_real *dw = w->requires_grad ? cf_grad(ctx, w) : NULL;
    cf_real *db = bias && bias->requires_grad ? cf_grad(ctx, bias) : NULL;
    double *scratch = db ? cf_scratch(ctx, (size_t)(cf_col_sum_scratch(cf_rows(x), outc) + 1) * sizeof(double)) : NULL;
    for (int64_t g = 0; g < G; g++) {
        int64_t r0 = offset[g], rows = offset[g + 1] - r0;
        if (rows == 0) continue;
        const cf_real *dyg = dy + r0 * outc, *wg = w->data + g * outc * in;
        if (dx) /* dx_g [rows, in] += dy_g @ w_g */
            cf_gemm_rm(false, false, rows, in, outc, 1, dyg, outc, wg, in, 1, dx + r0 * in, in);
        if (dw) /* dw_g [out, in] += dy_g^T @ x_g */
            cf_gemm_rm(true, false, outc, in, rows, 1, dyg, outc, x->data + r0 * in, in, 1, dw + g * outc * in, in);
        if (db) cf_col_sum_add(dyg, rows, outc, outc, db + g * outc, scratch);
    }
}

cf_tensor *cf_grouped_linear(cf_ctx *ctx, cf_tensor *x, cf_tensor *w, cf_tensor *bias, const int64_t *offset) {
    char sx[64], sw[64];
    CF_ASSERT(x->ndim == 2 && w->ndim == 3 && w->shape[2] == x->shape[1], "grouped_linear: x %s, weight %s",
              cf_shape_str(x, sx, 64), cf_shape_str(w, sw, 64));
    int64_t G = w->shape[0], outc = w->shape[1], in = w->shape[2], M = x->shape[0];
    CF_ASSERT(!bias || (bias->ndim == 2 && bias->shape[0] == G && bias->shape[1] == outc), "grouped_linear: bias shape");
    CF_ASSERT(offset[0] == 0 && offset[G] == M, "grouped_linear: groups cover rows 0..%lld, x has %lld",
              (long long)offset[G], (long long)M);
    cf_tensor *out = cf_tensor_new(ctx, 2, (int64_t[]){M, outc});
    for (int64_t g = 0; g < G; g++) {
        int64_t r0 = offset[g], rows = offset[g + 1] - r0;
        CF_ASSERT(rows >= 0, "grouped_linear: group %lld has %lld rows", (long long)g, (long long)rows);
        if (rows == 0) continue;
        const cf_real *wg = w->data + g * outc * in;
        if (bias)
            cf_gemm_rm_bias(false, true, rows, outc, in, x->data + r0 * in, in, wg, in, bias->data + g * outc,
                            out->data + r0 * outc, outc);
        else
            cf_gemm_rm(false, true, rows, outc, in, 1, x->data + r0 * in, in, wg, in, 0, out->data + r0 * outc, outc);
    }
    cf_node *node = cf_tape_record(ctx, "grouped_linear", grouped_linear_backward, out, 3, (cf_tensor *[]){x, w, bias});
    if (node) {
        int64_t *saved = cf_scratch(ctx, (size_t)(G + 1) * sizeof *saved); /* the caller's offsets may change */
        memcpy(saved, offset, (size_t)(G + 1) * sizeof *saved);
        node->saved = saved;
    }
    return out;
}
