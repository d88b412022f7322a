/* tests/test_attention.c - cf_attention against a naive double-precision reference, PyTorch golden
 * fixtures, thread-count determinism and the allocation-free steady state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "core/rng.h"
#include "core/threads.h"
#include "tests/test.h"
#include "tests/testlib.h"

typedef struct attn_case {
    const char *name;
    int64_t B, H, Hkv, T, S, Dk, Dv;
    bool causal;
    int64_t window;
    const int32_t *key_lens;
    double dropout;
    int64_t rel_clip, rel_heads;    /* relative positions: R and the table's heads (0: none) */
} attn_case;

/* ---- naive reference: triple loops in double, straight from the contract in core/ops.h ---- */

static bool ref_visible(const attn_case *c, int64_t b, int64_t i, int64_t j) {
    int64_t off = c->S - c->T;
    if (c->key_lens && j >= c->key_lens[b]) return false;
    if (c->causal && j > i + off) return false;
    if (c->window > 0 && j < i + off - c->window + 1) return false;
    return true;
}

/* out [B,H,T,Dv] and, given dout, dq/dk/dv (zeroed here). Dropout draws like the contract says. */
static void ref_attention(const attn_case *c, const float *q, const float *k, const float *v, const float *rel,
                          const float *dout, uint64_t seed, uint64_t step, uint64_t call, double *out, double *dq,
                          double *dk, double *dv, double *drel) {
    int64_t R = c->rel_clip, n_rel = 2 * R + 1;
    int64_t B = c->B, H = c->H, G = c->H / c->Hkv, T = c->T, S = c->S, Dk = c->Dk, Dv = c->Dv;
    double scale = 1 / sqrt((double)Dk), keep = 1 / (1 - c->dropout);
    double *p = malloc((size_t)S * sizeof *p), *pd = malloc((size_t)S * sizeof *pd), *dp = malloc((size_t)S * sizeof *dp);
    bool *kept = malloc((size_t)S * sizeof *kept);
    memset(dq, 0, (size_t)(B * H * T * Dk) * sizeof *dq);
    memset(dk, 0, (size_t)(B * c->Hkv * S * Dk) * sizeof *dk);
    memset(dv, 0, (size_t)(B * c->Hkv * S * Dv) * sizeof *dv);
    if (c->rel_heads) memset(drel, 0, (size_t)(c->rel_heads * n_rel * Dk) * sizeof *drel);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                int64_t bh = b * H + h, kv = b * c->Hkv + h / G;
                const float *qi = q + (bh * T + i) * Dk, *doi = dout + (bh * T + i) * Dv;
                int64_t table = c->rel_heads ? h / (H / c->rel_heads) : 0;
                double m = -INFINITY, sum = 0;
                for (int64_t j = 0; j < S; j++) {
                    double s = 0;
                    for (int64_t d = 0; d < Dk; d++) s += (double)qi[d] * k[(kv * S + j) * Dk + d];
                    if (c->rel_heads) { /* + q . a[clip(j - pos) + R] */
                        int64_t dist = j - (i + S - T), r = (dist < -R ? -R : dist > R ? R : dist) + R;
                        for (int64_t d = 0; d < Dk; d++) s += (double)qi[d] * rel[(table * n_rel + r) * Dk + d];
                    }
                    p[j] = ref_visible(c, b, i, j) ? s * scale : -INFINITY;
                    if (p[j] > m) m = p[j];
                }
                for (int64_t j = 0; j < S; j++) sum += p[j] = m == -INFINITY ? 0 : exp(p[j] - m);
                for (int64_t j = 0; j < S; j++) {
                    p[j] = sum > 0 ? p[j] / sum : 0;
                    kept[j] = !(c->dropout > 0) ||
                              cf_rng_uniform_at(seed, step, call, (uint64_t)((bh * T + i) * S + j)) >= c->dropout;
                    pd[j] = kept[j] ? p[j] * keep : 0;
                }
                double *o = out + (bh * T + i) * Dv, rowdot = 0;
                for (int64_t d = 0; d < Dv; d++) {
                    o[d] = 0;
                    for (int64_t j = 0; j < S; j++) o[d] += pd[j] * v[(kv * S + j) * Dv + d];
                }
                for (int64_t j = 0; j < S; j++) {
                    double g = 0;
                    for (int64_t d = 0; d < Dv; d++) g += (double)doi[d] * v[(kv * S + j) * Dv + d];
                    dp[j] = kept[j] ? g * keep : 0; /* d out / d p[j] */
                    rowdot += dp[j] * p[j];
                    for (int64_t d = 0; d < Dv; d++) dv[(kv * S + j) * Dv + d] += pd[j] * doi[d];
                }
                for (int64_t j = 0; j < S; j++) {
                    double ds = p[j] * (dp[j] - rowdot) * scale;
                    for (int64_t d = 0; d < Dk; d++) {
                        dq[(bh * T + i) * Dk + d] += ds * k[(kv * S + j) * Dk + d];
                        dk[(kv * S + j) * Dk + d] += ds * qi[d];
                    }
                    if (c->rel_heads) {
                        int64_t dist = j - (i + S - T), r = (dist < -R ? -R : dist > R ? R : dist) + R;
                        for (int64_t d = 0; d < Dk; d++) {
                            dq[(bh * T + i) * Dk + d] += ds * rel[(table * n_rel + r) * Dk + d];
                            drel[(table * n_rel + r) * Dk + d] += ds * qi[d];
                        }
                    }
                }
            }
    free(p);
    free(pd);
    free(dp);
    free(kept);
}

/* Worst |a - b| / (atol + rtol |b|); *abs_err receives the worst |a - b|. */
static double violation(const float *a, const double *b, int64_t n, double atol, double rtol, double *abs_err) {
    double worst = 0;
    *abs_err = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]), w = e / (atol + rtol * fabs(b[i]));
        if (!(w <= worst)) worst = w;
        if (!(e <= *abs_err)) *abs_err = e;
    }
    return worst;
}

static cf_tensor *attn_run(cf_ctx *ctx, const attn_case *c, cf_tensor *q, cf_tensor *k, cf_tensor *v,
                           cf_tensor *rel) {
    cf_attn_opts o = {1 / sqrt((double)c->Dk), c->causal, c->key_lens, c->window, c->dropout, rel, c->rel_clip};
    return cf_attention(ctx, q, k, v, &o);
}

/* A relative-position table for the case ([2R+1, Dk] when shared, else [Hr, 2R+1, Dk]), or NULL. */
static cf_tensor *rel_table(const attn_case *c, uint64_t seed) {
    int64_t n = 2 * c->rel_clip + 1;
    if (!c->rel_heads) return NULL;
    if (c->rel_heads == 1) return test_param_uniform("rel", 2, (int64_t[]){n, c->Dk}, -1, 1, seed);
    return test_param_uniform("rel", 3, (int64_t[]){c->rel_heads, n, c->Dk}, -1, 1, seed);
}

static void check_against_reference(const attn_case *c, uint64_t seed) {
    enum { STEP = 3 };
    cf_tensor *q = test_param_uniform("q", 4, (int64_t[]){c->B, c->H, c->T, c->Dk}, -2, 2, seed);
    cf_tensor *k = test_param_uniform("k", 4, (int64_t[]){c->B, c->Hkv, c->S, c->Dk}, -2, 2, seed + 1);
    cf_tensor *v = test_param_uniform("v", 4, (int64_t[]){c->B, c->Hkv, c->S, c->Dv}, -1, 1, seed + 2);
    cf_tensor *rel = rel_table(c, seed + 4);
    int64_t no = c->B * c->H * c->T * c->Dv;
    cf_real *r = malloc((size_t)no * sizeof *r);
    test_fill_uniform(r, no, -1, 1, seed + 3);
    double *out = malloc((size_t)no * sizeof *out), *dq = malloc((size_t)q->numel * sizeof *dq);
    double *dk = malloc((size_t)k->numel * sizeof *dk), *dv = malloc((size_t)v->numel * sizeof *dv);
    double *drel = rel ? malloc((size_t)rel->numel * sizeof *drel) : NULL;

    cf_ctx *ctx = cf_ctx_new(42);
    cf_ctx_begin_step(ctx, STEP);
    ctx->dropout_calls = 5; /* the call id must come from the counter, not be 0 by luck */
    cf_param_zero_grad(q);
    cf_param_zero_grad(k);
    cf_param_zero_grad(v);
    if (rel) cf_param_zero_grad(rel);
    cf_tensor *y = attn_run(ctx, c, q, k, v, rel);
    CHECK(ctx->dropout_calls == (c->dropout > 0 ? 6u : 5u));
    cf_backward_seeded(ctx, y, r);
    ref_attention(c, q->data, k->data, v->data, rel ? rel->data : NULL, r, 42, STEP, 5, out, dq, dk, dv, drel);

    /* float32 kernels, sums over <= 64 terms of O(1) values */
    const double atol = 5e-6, rtol = 5e-5; /* worst seen: ~7e-7 absolute */
    const struct { const char *what; const float *a; const double *b; int64_t n; } cmp[] = {
        {"out", y->data, out, no}, {"dq", q->grad, dq, q->numel}, {"dk", k->grad, dk, k->numel},
        {"dv", v->grad, dv, v->numel}, {"drel", rel ? rel->grad : NULL, drel, rel ? rel->numel : 0},
    };
    for (int t = 0; t < (rel ? 5 : 4); t++) {
        double err, w = violation(cmp[t].a, cmp[t].b, cmp[t].n, atol, rtol, &err);
        CHECK_MSG(w <= 1, "%s: %s differs from the naive reference: max abs error %.3g (atol %g, rtol %g)", c->name,
                  cmp[t].what, err, atol, rtol);
        if (getenv("CF_TEST_VERBOSE")) printf("     %-18s %-3s max abs err %.3g\n", c->name, cmp[t].what, err);
    }

    /* Without grad mode (P not saved) the output is bit-identical (y's memory is reused at reset). */
    cf_real *y1 = malloc((size_t)no * sizeof *y1);
    memcpy(y1, y->data, (size_t)no * sizeof *y1);
    cf_ctx_reset(ctx);
    cf_ctx_begin_step(ctx, STEP);
    ctx->dropout_calls = 5;
    cf_ctx_set_grad(ctx, false);
    cf_tensor *y2 = attn_run(ctx, c, q, k, v, rel);
    CHECK_MSG(memcmp(y2->data, y1, (size_t)no * sizeof(cf_real)) == 0, "%s: no-grad output differs", c->name);
    CHECK(!y2->requires_grad);

    /* q, k and v as op outputs (x * 1): their gradient buffers are new, and the kernel stores into
     * them instead of adding to zeros (arena memory that still holds the last step's values). The
     * gradients reaching the parameters are the same numbers (-0 and +0 aside). */
    cf_tensor *ops[3] = {q, k, v};
    cf_real *first[3];
    for (int o = 0; o < 3; o++) {
        first[o] = malloc((size_t)ops[o]->numel * sizeof(cf_real));
        memcpy(first[o], ops[o]->grad, (size_t)ops[o]->numel * sizeof(cf_real));
        cf_param_zero_grad(ops[o]);
    }
    if (rel) cf_param_zero_grad(rel);
    cf_ctx_reset(ctx);
    cf_ctx_begin_step(ctx, STEP);
    ctx->dropout_calls = 5;
    cf_ctx_set_grad(ctx, true);
    cf_tensor *y3 = attn_run(ctx, c, cf_scale(ctx, q, 1), cf_scale(ctx, k, 1), cf_scale(ctx, v, 1), rel);
    cf_backward_seeded(ctx, y3, r);
    for (int o = 0; o < 3; o++) {
        int64_t differ = 0;
        for (int64_t i = 0; i < ops[o]->numel; i++) differ += !(ops[o]->grad[i] == first[o][i]);
        CHECK_MSG(differ == 0, "%s: %s through a fresh gradient buffer: %lld of %lld values differ", c->name,
                  cmp[1 + o].what, (long long)differ, (long long)ops[o]->numel);
        free(first[o]);
    }

    cf_ctx_free(ctx);
    free(r);
    free(y1);
    free(out);
    free(dq);
    free(dk);
    free(dv);
    free(drel);
    if (rel) cf_param_free(rel);
    cf_param_free(q);
    cf_param_free(k);
    cf_param_free(v);
}

static const int32_t lens4[4] = {40, 17, 0, 64};
static const int32_t lens2[2] = {48, 9};

TEST(attention_matches_naive_reference) {
    const attn_case cases[] = {
        {"mha", 2, 4, 4, 9, 11, 16, 16, false, 0, NULL, 0, 0, 0},
        {"gqa_causal", 2, 8, 2, 40, 40, 32, 32, true, 0, NULL, 0, 0, 0},
        {"mqa_cache", 2, 4, 1, 7, 40, 16, 24, true, 0, lens4, 0, 0, 0},
        {"pad_window", 4, 2, 1, 37, 40, 8, 8, true, 6, lens4, 0, 0, 0},
        {"t_gt_s_causal", 1, 2, 2, 20, 6, 8, 8, true, 0, NULL, 0, 0, 0},
        {"decode", 4, 4, 2, 1, 40, 32, 32, true, 0, lens4, 0, 0, 0},
        {"dropout", 2, 4, 2, 48, 48, 32, 32, false, 0, lens2, 0.25, 0, 0},
        {"dropout_causal", 2, 4, 2, 33, 40, 16, 16, true, 9, lens2, 0.5, 0, 0},
        {"rel_encoder", 2, 4, 2, 9, 9, 16, 16, false, 0, lens2, 0, 3, 1},
        {"rel_per_head_causal", 2, 4, 4, 40, 40, 8, 8, true, 0, NULL, 0, 5, 4},
        {"rel_grouped_cache", 4, 4, 2, 7, 40, 16, 24, true, 6, lens4, 0, 16, 2},
        {"rel_decode", 4, 4, 2, 1, 40, 32, 32, true, 0, lens4, 0, 8, 1},
        {"rel_dropout", 2, 4, 2, 48, 48, 32, 32, false, 0, lens2, 0.25, 2, 4},
        /* blocks of <= 4 query rows take the BLAS-free loops (decoding's steps) */
        {"few_rows_cross", 4, 4, 2, 4, 23, 16, 24, false, 0, lens4, 0, 0, 0},
        {"few_rows_dropout", 2, 4, 2, 3, 20, 8, 12, false, 0, lens2, 0.25, 0, 0},
        {"few_rows_rel_window", 2, 4, 4, 2, 30, 16, 16, true, 5, lens2, 0, 3, 2},
        {"five_rows_blas", 2, 4, 2, 5, 19, 16, 8, false, 0, lens2, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_against_reference(&cases[i], 100 + 4 * i);
}

/* ---- strided operands (cf_attention_views) against the same reference ---- */

/* dst[b, h, s, :] (contiguous [B, heads, rows, D]) <-> view positions of a strided tensor. */
static void view_copy(const cf_attn_view *v, float *base, float *heads_first, int64_t B, int64_t heads, int64_t rows,
                      int64_t d, bool to_view) {
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < heads; h++)
            for (int64_t s = 0; s < rows; s++) {
                float *at = base + v->offset + b * v->batch + h * v->head + s * v->row;
                float *hf = heads_first + ((b * heads + h) * rows + s) * d;
                if (to_view) memcpy(at, hf, (size_t)d * sizeof *at);
                else memcpy(hf, at, (size_t)d * sizeof *at);
            }
}

/* Layouts: "fused" q, k, v as columns of one [B, T, 2 + (H + 2 Hkv) D] tensor (self-attention);
 * "cache" q columns of [B, T, H D + 3], k and v blocks [B, Hkv, S + 5, D] of a KV cache. Out
 * [B, T, H*Dv]; values and gradients must match the naive reference like cf_attention's. */
static void check_views_against_reference(const attn_case *c, bool fused, uint64_t seed) {
    enum { STEP = 3 };
    int64_t B = c->B, H = c->H, Hkv = c->Hkv, T = c->T, S = c->S, D = c->Dk, cap = S + 5;
    cf_tensor *qh = test_param_uniform("q", 4, (int64_t[]){B, H, T, D}, -2, 2, seed);
    cf_tensor *kh = test_param_uniform("k", 4, (int64_t[]){B, Hkv, S, D}, -2, 2, seed + 1);
    cf_tensor *vh = test_param_uniform("v", 4, (int64_t[]){B, Hkv, S, D}, -1, 1, seed + 2);
    cf_tensor *qt, *kt, *vt;
    cf_attn_view qv, kv, vv;
    if (fused) {
        qt = kt = vt = test_param_uniform("qkv", 3, (int64_t[]){B, T, 2 + (H + 2 * Hkv) * D}, -9, 9, seed + 5);
        qv = cf_attn_view_cols(qt, 1, D);
        kv = cf_attn_view_cols(qt, 1 + H * D, D);
        vv = cf_attn_view_cols(qt, 1 + (H + Hkv) * D, D);
    } else {
        qt = test_param_uniform("q", 3, (int64_t[]){B, T, H * D + 3}, -9, 9, seed + 5);
        kt = test_param_uniform("k", 4, (int64_t[]){B, Hkv, cap, D}, -9, 9, seed + 6);
        vt = test_param_uniform("v", 4, (int64_t[]){B, Hkv, cap, D}, -9, 9, seed + 7);
        qv = cf_attn_view_cols(qt, 2, D);
        kv = cf_attn_view_heads(kt);
        vv = cf_attn_view_heads(vt);
    }
    view_copy(&qv, qt->data, qh->data, B, H, T, D, true);
    view_copy(&kv, kt->data, kh->data, B, Hkv, S, D, true);
    view_copy(&vv, vt->data, vh->data, B, Hkv, S, D, true);
    int64_t no = B * H * T * D;
    cf_real *r = malloc((size_t)no * sizeof *r), *r_bt = malloc((size_t)no * sizeof *r_bt);
    test_fill_uniform(r, no, -1, 1, seed + 3);
    for (int64_t b = 0; b < B; b++) /* the upstream gradient in the output's [B, T, H, D] order */
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++)
                memcpy(r_bt + ((b * T + t) * H + h) * D, r + ((b * H + h) * T + t) * D, (size_t)D * sizeof *r);
    double *out = malloc((size_t)no * sizeof *out), *dq = malloc((size_t)qh->numel * sizeof *dq);
    double *dk = malloc((size_t)kh->numel * sizeof *dk), *dv = malloc((size_t)vh->numel * sizeof *dv);

    cf_ctx *ctx = cf_ctx_new(42);
    cf_ctx_begin_step(ctx, STEP);
    ctx->dropout_calls = 5;
    cf_param_zero_grad(qt);
    if (!fused) cf_param_zero_grad(kt), cf_param_zero_grad(vt);
    cf_attn_opts o = {1 / sqrt((double)D), c->causal, c->key_lens, c->window, c->dropout, NULL, 0};
    cf_attn_shape sh = {B, H, Hkv, T, S, D, D};
    cf_tensor *y = cf_attention_views(ctx, &sh, qv, kv, vv, &o, false);
    CHECK(y->ndim == 3 && y->shape[0] == B && y->shape[1] == T && y->shape[2] == H * D);
    cf_backward_seeded(ctx, y, r_bt);
    ref_attention(c, qh->data, kh->data, vh->data, NULL, r, 42, STEP, 5, out, dq, dk, dv, NULL);
    /* gather ours back into [B, H, T, D] order (q, k, v hold the gathered gradients now) */
    float *yo = malloc((size_t)no * sizeof *yo);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++)
                memcpy(yo + ((b * H + h) * T + t) * D, y->data + ((b * T + t) * H + h) * D, (size_t)D * sizeof *yo);
    view_copy(&qv, qt->grad, qh->data, B, H, T, D, false);
    view_copy(&kv, kt->grad, kh->data, B, Hkv, S, D, false);
    view_copy(&vv, vt->grad, vh->data, B, Hkv, S, D, false);
    const double atol = 5e-6, rtol = 5e-5;
    const struct { const char *what; const float *a; const double *b; int64_t n; } cmp[] = {
        {"out", yo, out, no}, {"dq", qh->data, dq, qh->numel}, {"dk", kh->data, dk, kh->numel},
        {"dv", vh->data, dv, vh->numel},
    };
    for (int t = 0; t < 4; t++) {
        double err, w = violation(cmp[t].a, cmp[t].b, cmp[t].n, atol, rtol, &err);
        CHECK_MSG(w <= 1, "%s (%s layout): %s differs from the naive reference: max abs error %.3g", c->name,
                  fused ? "fused" : "cache", cmp[t].what, err);
    }
    /* nothing outside the views got a gradient: q's padding columns, cache positions >= S */
    int64_t W = qt->shape[2], heads_at = fused ? 1 : 2, heads_w = fused ? (H + 2 * Hkv) * D : H * D, stray = 0;
    for (int64_t i = 0; i < qt->numel; i++)
        if ((i % W < heads_at || i % W >= heads_at + heads_w) && qt->grad[i] != 0) stray++;
    if (!fused)
        for (int64_t i = 0; i < kt->numel; i++)
            if ((i / D) % cap >= S && (kt->grad[i] != 0 || vt->grad[i] != 0)) stray++;
    CHECK_MSG(stray == 0, "%s: %lld gradients outside the views", c->name, (long long)stray);
    cf_ctx_free(ctx);
    free(r);
    free(r_bt);
    free(yo);
    free(out);
    free(dq);
    free(dk);
    free(dv);
    cf_param_free(qt);
    if (!fused) cf_param_free(kt), cf_param_free(vt);
    cf_param_free(qh);
    cf_param_free(kh);
    cf_param_free(vh);
}

TEST(attention_views_match_naive_reference) {
    const attn_case self[] = {
        {"mha", 2, 4, 4, 9, 9, 16, 16, false, 0, lens2, 0, 0, 0},
        {"gqa_causal", 2, 8, 2, 40, 40, 32, 32, true, 0, NULL, 0, 0, 0},
        {"mqa_window_dropout", 2, 4, 1, 33, 33, 16, 16, true, 9, lens2, 0.5, 0, 0},
    };
    for (size_t i = 0; i < sizeof self / sizeof self[0]; i++) check_views_against_reference(&self[i], true, 300 + 8 * i);
    const attn_case cached[] = {
        {"decode", 4, 4, 2, 1, 40, 32, 32, true, 0, lens4, 0, 0, 0},
        {"mqa_cache", 2, 4, 1, 7, 40, 16, 16, true, 0, lens4, 0, 0, 0},
        {"cross_dropout", 2, 4, 4, 12, 30, 8, 8, false, 0, lens2, 0.25, 0, 0},
        {"beam_cross", 4, 4, 2, 4, 23, 16, 16, false, 0, lens4, 0, 0, 0}, /* 4 folded beams, few-row loops */
    };
    for (size_t i = 0; i < sizeof cached / sizeof cached[0]; i++)
        check_views_against_reference(&cached[i], false, 400 + 8 * i);
}

/* ---- PyTorch golden fixtures (tests/ref/attention.py) ---- */

TEST(attention_matches_pytorch) {
    /* name, causal, window, rel_clip: mirrors CASES in tests/ref/attention.py (shapes come from the
     * file; a "<name>.rel" tensor means relative positions with that clip) */
    const struct { const char *name; bool causal; int64_t window, rel_clip; } cases[] = {
        {"mha", false, 0, 0}, {"gqa", false, 0, 0}, {"mqa_causal", true, 0, 0}, {"causal_pad", true, 0, 0},
        {"window_cache", true, 4, 0}, {"dv_ne_dk", false, 0, 0}, {"decode", true, 0, 0},
        {"rel_shared_pad", false, 0, 3}, {"rel_per_head_causal", true, 0, 2}, {"rel_grouped_cache", true, 0, 4},
    };
    cf_st_file *f = cf_st_open(test_fixture_path("attention.safetensors"));
    CHECK_MSG(f, "%s", cf_error_message());
    if (!f) return;
    cf_ctx *ctx = cf_ctx_new(1);
    char name[128];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cf_tensor *in[5] = {NULL};
        const char *tags[5] = {"q", "k", "v", "R", "rel"};
        for (int t = 0; t < (cases[c].rel_clip ? 5 : 4); t++) {
            snprintf(name, sizeof name, "%s.%s", cases[c].name, tags[t]);
            in[t] = test_fixture_param(f, name);
        }
        if (!in[0] || !in[1] || !in[2] || !in[3] || (cases[c].rel_clip && !in[4])) break;
        int32_t lens[16];
        snprintf(name, sizeof name, "%s.key_lens", cases[c].name);
        const cf_st_tensor *kl = cf_st_find(f, name);
        if (kl) {
            CHECK(kl->dtype == CF_ST_I32 && kl->numel == in[0]->shape[0] && kl->numel <= 16);
            memcpy(lens, kl->data, (size_t)kl->numel * sizeof *lens);
        }
        for (int t = 0; t < 5; t++)
            if (t != 3 && in[t]) cf_param_zero_grad(in[t]);
        cf_attn_opts o = {1 / sqrt((double)in[0]->shape[3]), cases[c].causal, kl ? lens : NULL, cases[c].window, 0,
                          in[4], cases[c].rel_clip};
        cf_ctx_begin_step(ctx, 0);
        cf_tensor *y = cf_attention(ctx, in[0], in[1], in[2], &o);
        cf_backward_seeded(ctx, y, in[3]->data);
        /* float32 against float64 PyTorch: inputs in [-2, 2], D <= 24 */
        const double atol = 5e-6, rtol = 5e-5; /* worst seen: ~7e-7 absolute */
        const cf_real *got[5] = {y->data, in[0]->grad, in[1]->grad, in[2]->grad, in[4] ? in[4]->grad : NULL};
        const int64_t n[5] = {y->numel, in[0]->numel, in[1]->numel, in[2]->numel, in[4] ? in[4]->numel : 0};
        const char *outs[5] = {"out", "dq", "dk", "dv", "drel"};
        for (int t = 0; t < (in[4] ? 5 : 4); t++) {
            snprintf(name, sizeof name, "%s.%s", cases[c].name, outs[t]);
            CHECK_FIXTURE(f, name, got[t], n[t], atol, rtol);
            const cf_st_tensor *want = cf_st_find(f, name);
            if (getenv("CF_TEST_VERBOSE") && want && want->numel == n[t])
                printf("     %-18s %-3s max abs err %.3g\n", cases[c].name, outs[t],
                       test_max_violation(got[t], want->data, n[t], 1, 0));
        }
        cf_ctx_reset(ctx);
        for (int t = 0; t < 5; t++)
            if (in[t]) cf_param_free(in[t]);
    }
    cf_ctx_free(ctx);
    cf_st_close(f);
}

/* ---- determinism and memory ---- */

typedef struct attn_result {
    cf_real *buf[5];            /* out, dq, dk, dv, drel */
    int64_t n[5];
} attn_result;

static const int32_t det_lens[8] = {48, 40, 31, 48, 12, 47, 48, 1};

static void run_big(const attn_case *c, cf_tensor *q, cf_tensor *k, cf_tensor *v, cf_tensor *rel, const cf_real *r,
                    attn_result *res) {
    cf_ctx *ctx = cf_ctx_new(7);
    cf_ctx_begin_step(ctx, 11);
    cf_tensor *src[5] = {NULL, q, k, v, rel};
    for (int t = 1; t < 5; t++)
        if (src[t]) cf_param_zero_grad(src[t]);
    cf_tensor *y = attn_run(ctx, c, q, k, v, rel);
    cf_backward_seeded(ctx, y, r);
    for (int t = 0; t < 5; t++) {
        const cf_real *from = t == 0 ? y->data : src[t] ? src[t]->grad : NULL;
        res->n[t] = t == 0 ? y->numel : src[t] ? src[t]->numel : 0;
        res->buf[t] = malloc((size_t)(res->n[t] + 1) * sizeof(cf_real));
        if (from) memcpy(res->buf[t], from, (size_t)res->n[t] * sizeof(cf_real));
    }
    cf_ctx_free(ctx);
}

/* Grouped heads with dropout and padding, without and with relative positions (a table per head
 * pair: the dA partials of 4 query heads go to each table). */
TEST(attention_deterministic_across_threads) {
    const attn_case cases[] = {
        {"det", 8, 8, 2, 48, 48, 32, 32, true, 0, det_lens, 0.1, 0, 0},
        {"det_rel", 8, 8, 2, 48, 48, 32, 32, false, 0, det_lens, 0.1, 8, 2},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const attn_case *c = &cases[ci];
        cf_tensor *q = test_param_uniform("q", 4, (int64_t[]){8, 8, 48, 32}, -2, 2, 1);
        cf_tensor *k = test_param_uniform("k", 4, (int64_t[]){8, 2, 48, 32}, -2, 2, 2);
        cf_tensor *v = test_param_uniform("v", 4, (int64_t[]){8, 2, 48, 32}, -1, 1, 3);
        cf_tensor *rel = rel_table(c, 5);
        cf_real *r = malloc((size_t)q->numel * sizeof *r);
        test_fill_uniform(r, q->numel, -1, 1, 4);
        attn_result one, other;
        cf_threads_init(1);
        run_big(c, q, k, v, rel, r, &one);
        for (int t = 1; t < TEST_N_THREAD_COUNTS; t++) {
            cf_threads_init(test_thread_counts[t]);
            run_big(c, q, k, v, rel, r, &other);
            bool same = true;
            for (int i = 0; i < 5; i++)
                same &= memcmp(one.buf[i], other.buf[i], (size_t)one.n[i] * sizeof(cf_real)) == 0;
            CHECK_MSG(same, "%s: 1 and %d threads differ", c->name, test_thread_counts[t]);
            for (int i = 0; i < 5; i++) free(other.buf[i]);
        }
        cf_threads_init(0);
        for (int i = 0; i < 5; i++) free(one.buf[i]);
        free(r);
        if (rel) cf_param_free(rel);
        cf_param_free(q);
        cf_param_free(k);
        cf_param_free(v);
    }
}

TEST(attention_steady_state_allocates_nothing) {
    /* big enough (P alone 1.2 MB) that the arena's 1 MB minimum chunk cannot hide a growing demand */
    attn_case c = {"arena", 8, 8, 2, 48, 64, 32, 32, true, 0, NULL, 0.1, 0, 0};
    cf_tensor *q = test_param_uniform("q", 4, (int64_t[]){8, 8, 48, 32}, -1, 1, 1);
    cf_tensor *k = test_param_uniform("k", 4, (int64_t[]){8, 2, 64, 32}, -1, 1, 2);
    cf_tensor *v = test_param_uniform("v", 4, (int64_t[]){8, 2, 64, 32}, -1, 1, 3);
    cf_ctx *ctx = cf_ctx_new(1);
    size_t first = 0, first_used = 0;
    for (int step = 0; step < 3; step++) {
        cf_ctx_begin_step(ctx, (uint64_t)step);
        cf_tensor *y = attn_run(ctx, &c, q, k, v, NULL);
        cf_backward(ctx, cf_sum(ctx, y));
        size_t used = ctx->arena.used_total; /* bytes this step: a growing demand could hide in slack */
        cf_ctx_reset(ctx);
        if (step == 0) {
            first = ctx->arena.mallocs;
            first_used = used;
        } else {
            CHECK_MSG(ctx->arena.mallocs == first, "step %d: %zu mallocs, first step %zu", step, ctx->arena.mallocs, first);
            CHECK_MSG(used == first_used, "step %d: %zu arena bytes, first step %zu", step, used, first_used);
        }
    }
    cf_ctx_free(ctx);
    cf_param_free(q);
    cf_param_free(k);
    cf_param_free(v);
}
