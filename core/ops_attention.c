/* core/ops_attention.c - fused scaled-dot-product attention with grouped KV heads (cf_attention).
 *
 * Legend: B batch, H query heads, Hkv KV heads, G = H / Hkv query heads per KV head, T query rows,
 * S keys, Dk query/key dim, Dv value dim, RB query rows per block.
 *   q [B,H,T,Dk], k [B,Hkv,S,Dk], v [B,Hkv,S,Dv] -> out [B,H,T,Dv]
 * Each operand is read through strides (cf_attn_view: batch, head and row strides), so the
 * kernel takes Q/K/V straight from a fused projection's [B, T, (H + 2 Hkv) D] output or from a KV
 * cache [B, Hkv, cap, D], and writes out as [B, T, H*Dv] for the output projection: no head
 * split or merge copies exist, forward or backward (gradients land at the same strides).
 *
 * Forward, one task per (b, h), query rows in blocks of RB:
 *   scores = q_blk k_vis^T * scale   (only the keys some row of the block can see)
 *   P = softmax over each row's visible keys, then dropout -> Pd = P * keep / (1 - p)
 *   out_blk = Pd v_vis
 * Saved for backward: P [B,H,T,S] itself (zero where masked) rather than the row logsumexp. At our
 * sizes (T, S <= 128, D 32-64) P is 2.4 MB per layer for B*H = 256, T = S = 48, while recomputing
 * it would cost backward one more GEMM (about +25% of backward's GEMM work) plus an exp per score
 * and, with dropout, the RNG again (the softmax and RNG are ~40% of forward time here). The
 * memory is a quarter of what the unfused ops keep (scores, P, mask, Pd). A weight that dropout
 * removed is stored negated (P >= 0 otherwise), so the keep mask costs neither memory nor a
 * second pass of the Philox RNG.
 *
 * Backward, one task per (b, h), for its row blocks:
 *   dPd = dO v^T;  dP = dPd * keep / (1 - p);  dS = P * (dP - rowsum(dP * P))
 *   dq += dS k * scale;  dk += dS^T q * scale;  dv += Pd^T dO
 * dq of a query head belongs to its task; dk and dv of a KV head are written by that head's task
 * (G = 1) or summed from the G query heads' partials in head order (G > 1): results are
 * bit-identical for any thread count.
 *
 * Relative positions (Shaw et al.), when a table A [2R+1, Dk] per head group is given: each block
 * also computes qa [nr, 2R+1] = q_blk A^T * scale (one small GEMM) and adds qa[i, clip(j - p_i) + R]
 * to score [i, j]; backward buckets dS by the same index into dqa [nr, 2R+1], then
 * dq_blk += dqa A * scale and dA += dqa^T q_blk * scale. A head writes its own dA partial; the
 * partials of a table are summed in (batch, head) order, like grouped dk/dv.
 *
 * The per-block products go through cf_gemm_small (core/gemm_small.c: register tiles on the calling
 * thread, A and A^T read in place, K^T and V^T copied a panel at a time). They used to be
 * cblas_sgemm calls, which beat fmaf loops vectorised over keys (256 heads at T = S = 48, D = 32 on
 * one core: q k^T 0.69 vs 1.18 ms, P v 0.37-0.59 vs 1.6 ms) but spent ~25% of the op in OpenBLAS's
 * buffer lock, packing and dispatch. With the register tiles the op's time in a bench-small step
 * (`cformer bench --profile`, 2 threads) went from 33.3 to 23.8 ms, in bench-tiny's from 5.6 to
 * 4.4 ms. The softmax and the dropout RNG are written so that gcc vectorises them (cf_vexp, omp
 * simd reductions, the batched Philox of core/rng.c). Relative-position products stay on BLAS.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/gemm.h"
#include "core/kernel.h"
#include "core/ops.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "core/threads.h"
#include "core/vecmath.h"

/* Query rows per block when the visible keys depend on the row (causal, window): small enough
 * that blocks skip most masked keys, big enough for the GEMMs. Otherwise all T rows form one
 * block (fewer, larger GEMMs). Never derived from the thread count. */
enum { ATTN_RB = 16 };

/* Element (b, h, s, 0) of an operand is at off + b*sb + h*sh + s*ss; its D elements are contiguous. */
typedef struct attn_layout {
    int64_t off, sb, sh, ss;
} attn_layout;

typedef struct attn_cfg {
    int64_t B, H, Hkv, G, T, S, Dk, Dv;
    attn_layout lq, lk, lv, lo; /* q, k, v, out (their gradients share the layouts) */
    int in_q, in_k, in_v;       /* index of each operand's tensor among the node's inputs */
    int64_t off;                /* S - T: causal offset of query row 0 */
    int64_t rb;                 /* query rows per block */
    double scale;
    bool causal;
    int64_t window;             /* 0: unlimited */
    const int32_t *key_lens;    /* [B] copy in the arena, or NULL */
    double dropout;             /* 0 when not training */
    uint64_t rng_seed, rng_step, rng_id;
    cf_real *p;                 /* [B,H,T,S] saved probabilities (dropped ones negated), or NULL */
    const cf_real *rel;         /* [Hr, 2R+1, Dk] relative-position keys, or NULL */
    int64_t rel_heads, rel_clip, rel_n; /* Hr, R, 2R+1 */
} attn_cfg;

/* The relative-position table of query head h: [2R+1, Dk]. */
static inline const cf_real *attn_rel_table(const attn_cfg *c, int64_t h) {
    return c->rel + (h / (c->H / c->rel_heads)) * c->rel_n * c->Dk;
}

/* score[i, lo:hi] += qa[i, clip(j - p_i, -R, R) + R] for the rows [i0, i1) of one head, where
 * qa [nr, 2R+1] = q_blk A^T * scale; p_i = i + off. Three ranges per row: keys R or more before the
 * query share a[0], keys R or more after it a[2R], the ones between read a[j - p_i + R]. */
static void attn_rel_forward(const attn_cfg *c, int64_t i0, int64_t i1, int64_t lo, int64_t hi, const cf_real *q_h,
                             const cf_real *rel_h, cf_real *qa, cf_real *p_h) {
    int64_t n = c->rel_n, R = c->rel_clip, S = c->S, Dk = c->Dk;
    cf_gemm_serial(false, true, i1 - i0, n, Dk, (cf_real)c->scale, q_h + i0 * c->lq.ss, c->lq.ss, rel_h, Dk, 0, qa,
                   n);
    for (int64_t i = i0; i < i1; i++) {
        const cf_real *a = qa + (i - i0) * n;
        cf_real *row = p_h + i * S;
        int64_t pos = i + c->off, m0 = pos - R > lo ? pos - R : lo, m1 = pos + R + 1 < hi ? pos + R + 1 : hi;
        int64_t j = lo;
        for (; j < m0 && j < hi; j++) row[j] += a[0];
        for (; j < m1; j++) row[j] += a[j - pos + R];
        for (; j < hi; j++) row[j] += a[2 * R];
    }
}

/* Backward of attn_rel_forward for one block: ds [nr, nk] holds dscore for keys [lo, lo + nk).
 * dqa[i, r] = sum of ds[i, j] over the keys j whose index is r; then dq_blk += dqa A * scale and
 * the head's dA partial += dqa^T q_blk * scale. */
static void attn_rel_backward(const attn_cfg *c, int64_t i0, int64_t i1, int64_t lo, int64_t nk, const cf_real *ds,
                              const cf_real *q_h, const cf_real *rel_h, cf_real *dqa, cf_real *dq_h, cf_real *drel_h) {
    int64_t n = c->rel_n, R = c->rel_clip, Dk = c->Dk, nr = i1 - i0, hi = lo + nk;
    for (int64_t i = i0; i < i1; i++) {
        const cf_real *d = ds + (i - i0) * nk - lo; /* d[j] for j in [lo, hi) */
        cf_real *g = dqa + (i - i0) * n;
        int64_t pos = i + c->off, m0 = pos - R > lo ? pos - R : lo, m1 = pos + R + 1 < hi ? pos + R + 1 : hi;
        memset(g, 0, (size_t)n * sizeof *g);
        int64_t j = lo;
        for (; j < m0 && j < hi; j++) g[0] += d[j];
        for (; j < m1; j++) g[j - pos + R] += d[j];
        for (; j < hi; j++) g[2 * R] += d[j];
    }
    int64_t ld = c->lq.ss;
    if (dq_h) cf_gemm_serial(false, false, nr, Dk, n, (cf_real)c->scale, dqa, n, rel_h, Dk, 1, dq_h + i0 * ld, ld);
    if (drel_h) cf_gemm_serial(true, false, n, Dk, nr, (cf_real)c->scale, dqa, n, q_h + i0 * ld, ld, 1, drel_h, Dk);
}

/* Keys [*lo, *hi) visible from query row i of batch b; empty when *hi <= *lo. */
static inline void attn_row_range(const attn_cfg *c, int64_t b, int64_t i, int64_t *lo, int64_t *hi) {
    int64_t h = c->S, l = 0;
    if (c->key_lens) {
        int64_t len = c->key_lens[b];
        if (len < h) h = len < 0 ? 0 : len;
    }
    if (c->causal && i + c->off + 1 < h) h = i + c->off + 1;
    if (c->window > 0 && i + c->off - c->window + 1 > l) l = i + c->off - c->window + 1;
    *lo = l;
    *hi = h > l ? h : l;
}

/* Keys [*lo, *hi) visible from any row of [i0, i1) (both bounds grow with i); false if none. */
static bool attn_block_range(const attn_cfg *c, int64_t b, int64_t i0, int64_t i1, int64_t *lo, int64_t *hi) {
    *lo = c->S;
    *hi = 0;
    for (int64_t i = i0; i < i1; i++) {
        int64_t l, h;
        attn_row_range(c, b, i, &l, &h);
        if (h <= l) continue;
        if (l < *lo) *lo = l;
        if (h > *hi) *hi = h;
    }
    return *hi > *lo;
}

/* Dropout on p[lo, hi) of the row whose element 0 has flat index `base` in [B,H,T,S]: element e is
 * kept iff cf_rng_uniform_at(seed, step, id, e) >= rate (cf_dropout's rule, via the batched
 * cf_dropout_keep_bits; a test checks it against rng.c). Dropped weights: pd = 0 and p negated;
 * kept: pd = p / (1 - rate). */
static void attn_dropout_row(const attn_cfg *c, uint64_t base, int64_t lo, int64_t hi, cf_real *p, cf_real *pd) {
    enum { CHUNK = 512 }; /* elements per mask call: one call per row at our sizes */
    cf_real keep_scale = (cf_real)(1.0 / (1.0 - c->dropout));
    uint64_t bits[CHUNK / 64];
    for (int64_t j0 = lo; j0 < hi; j0 += CHUNK) {
        int64_t n = hi - j0 < CHUNK ? hi - j0 : CHUNK;
        cf_dropout_keep_bits(c->rng_seed, c->rng_step, c->rng_id, base + (uint64_t)j0, n, c->dropout, bits);
        for (int64_t w = 0; w * 64 < n; w++) { /* a loop-invariant word per inner loop: vectorises */
            uint64_t b = bits[w];
            cf_real *pw = p + j0 + w * 64, *dw = pd + j0 + w * 64;
            int64_t len = n - w * 64 < 64 ? n - w * 64 : 64;
            for (int64_t j = 0; j < len; j++) {
                bool keep = (b >> j) & 1;
                dw[j] = keep ? pw[j] * keep_scale : 0;
                pw[j] = keep ? pw[j] : -pw[j];
            }
        }
    }
}

/* Softmax of row p[lo, hi) in place (p already holds scaled scores); zero outside. */
static void attn_softmax_row(cf_real *p, int64_t S, int64_t lo, int64_t hi) {
    /* omp simd: vector reductions in a fixed (compile-time) order, without -ffast-math */
    cf_real m = cf_row_max(p + lo, hi - lo), sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = lo; j < hi; j++) {
        p[j] = cf_vexp(p[j] - m);
        sum += p[j];
    }
    cf_real inv = 1 / sum;
#pragma omp simd
    for (int64_t j = lo; j < hi; j++) p[j] *= inv;
    memset(p, 0, (size_t)lo * sizeof *p);
    memset(p + hi, 0, (size_t)(S - hi) * sizeof *p);
}

/* Blocks of at most this many query rows skip BLAS: decoding's steps attend with one query row
 * (K for a beam-search sentence's folded cross-attention), where a cblas_sgemm call and its
 * packing cost several times the arithmetic (38% of a greedy decode of bench-small went there). */
enum { ATTN_FEW_ROWS = 4 };

/* p[i, 0:nk] = (q_i . k_j) * scale for the nr (<= ATTN_FEW_ROWS) rows of q, and out[i, 0:D] =
 * sum over j < nk of w[i, j] v_j. Each is a fixed sequence of float operations (no dependence on
 * the thread count or on other rows). With AVX-512 and D a multiple of 16: a score is one FMA
 * chain per lane over D/16 chunks, then _mm512_reduce_add_ps; a weighted sum keeps its D <= 64
 * outputs in registers, one FMA chain per element over j ascending. Elsewhere, plain loops. */
#if defined(__AVX512F__) && !defined(CF_REAL_DOUBLE)
#include <immintrin.h>
#define ATTN_FEW_AVX512 1
#endif

static void attn_few_scores(int64_t nr, int64_t nk, int64_t D, cf_real scale, const cf_real *q, int64_t ldq,
                            const cf_real *k, int64_t ldk, cf_real *p, int64_t ldp) {
#ifdef ATTN_FEW_AVX512
    if (D % 16 == 0) {
        for (int64_t i = 0; i < nr; i++) {
            const float *qi = q + i * ldq;
            int64_t j = 0;
            for (; j + 4 <= nk; j += 4) { /* four keys at a time: independent chains and reductions */
                const float *k0 = k + j * ldk;
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                for (int64_t d = 0; d < D; d += 16) {
                    __m512 qv = _mm512_loadu_ps(qi + d);
                    a0 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + d), a0);
                    a1 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + ldk + d), a1);
                    a2 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + 2 * ldk + d), a2);
                    a3 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + 3 * ldk + d), a3);
                }
                p[i * ldp + j] = _mm512_reduce_add_ps(a0) * scale;
                p[i * ldp + j + 1] = _mm512_reduce_add_ps(a1) * scale;
                p[i * ldp + j + 2] = _mm512_reduce_add_ps(a2) * scale;
                p[i * ldp + j + 3] = _mm512_reduce_add_ps(a3) * scale;
            }
            for (; j < nk; j++) { /* the same chain and reduction for the last keys */
                __m512 a0 = _mm512_setzero_ps();
                for (int64_t d = 0; d < D; d += 16)
                    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(qi + d), _mm512_loadu_ps(k + j * ldk + d), a0);
                p[i * ldp + j] = _mm512_reduce_add_ps(a0) * scale;
            }
        }
        return;
    }
#endif
    for (int64_t i = 0; i < nr; i++) {
        const cf_real *qi = q + i * ldq;
        for (int64_t j = 0; j < nk; j++) {
            const cf_real *kj = k + j * ldk;
            cf_real dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int64_t d = 0; d < D; d++) dot += qi[d] * kj[d];
            p[i * ldp + j] = dot * scale;
        }
    }
}

static void attn_few_weighted_sum(int64_t nr, int64_t nk, int64_t D, const cf_real *w, int64_t ldw, const cf_real *v,
                                  int64_t ldv, cf_real *out, int64_t ldo) {
#ifdef ATTN_FEW_AVX512
    if (D % 16 == 0 && D <= 64) {
        int64_t nc = D / 16;
        for (int64_t i = 0; i < nr; i++) {
            const float *wi = w + i * ldw;
            __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
            for (int64_t j = 0; j < nk; j++) {
                __m512 a = _mm512_set1_ps(wi[j]);
                const float *vj = v + j * ldv;
                for (int64_t c = 0; c < 4; c++)
                    if (c < nc) acc[c] = _mm512_fmadd_ps(a, _mm512_loadu_ps(vj + 16 * c), acc[c]);
            }
            for (int64_t c = 0; c < nc; c++) _mm512_storeu_ps(out + i * ldo + 16 * c, acc[c]);
        }
        return;
    }
#endif
    for (int64_t i = 0; i < nr; i++) {
        cf_real *o = out + i * ldo;
        const cf_real *wi = w + i * ldw;
        memset(o, 0, (size_t)D * sizeof *o);
        for (int64_t j = 0; j < nk; j++) {
            const cf_real *vj = v + j * ldv, a = wi[j];
#pragma omp simd
            for (int64_t d = 0; d < D; d++) o[d] += a * vj[d];
        }
    }
}

/* One (b, h): out_h [T,Dv] from q_h [T,Dk], k_h [S,Dk], v_h [S,Dv] (rows at their layouts' row
 * strides). p_h [T,S] receives the probabilities; pd [RB,S] is scratch for the dropped weights,
 * qa [RB, 2R+1] for relative positions. */
static void attn_forward_head(const attn_cfg *c, int64_t b, int64_t h, const cf_real *q_h, const cf_real *k_h,
                              const cf_real *v_h, cf_real *out_h, cf_real *p_h, cf_real *pd, cf_real *qa) {
    int64_t T = c->T, S = c->S, Dk = c->Dk, Dv = c->Dv;
    int64_t ldq = c->lq.ss, ldk = c->lk.ss, ldv = c->lv.ss, ldo = c->lo.ss;
    bool drop = c->dropout > 0;
    for (int64_t i0 = 0; i0 < T; i0 += c->rb) {
        int64_t i1 = i0 + c->rb < T ? i0 + c->rb : T, nr = i1 - i0, lo, hi;
        if (!attn_block_range(c, b, i0, i1, &lo, &hi)) {
            memset(p_h + i0 * S, 0, (size_t)(nr * S) * sizeof(cf_real));
            for (int64_t i = i0; i < i1; i++) memset(out_h + i * ldo, 0, (size_t)Dv * sizeof(cf_real));
            continue;
        }
        int64_t nk = hi - lo;
        /* scores [nr, nk] = q_blk @ k_vis^T * scale, written into P's rows */
        if (nr <= ATTN_FEW_ROWS)
            attn_few_scores(nr, nk, Dk, (cf_real)c->scale, q_h + i0 * ldq, ldq, k_h + lo * ldk, ldk, p_h + i0 * S + lo, S);
        else
            cf_gemm_small(nr, nk, Dk, (cf_real)c->scale, q_h + i0 * ldq, ldq, 1, k_h + lo * ldk, 1, ldk, 0,
                          p_h + i0 * S + lo, S);
        if (c->rel) attn_rel_forward(c, i0, i1, lo, hi, q_h, attn_rel_table(c, h), qa, p_h);
        for (int64_t i = i0; i < i1; i++) {
            cf_real *p = p_h + i * S, *d = pd + (i - i0) * S;
            int64_t l, r;
            attn_row_range(c, b, i, &l, &r);
            if (r <= l) l = r = lo; /* no visible key: an all-zero row */
            if (r > l) attn_softmax_row(p, S, l, r);
            else memset(p, 0, (size_t)S * sizeof *p);
            if (drop) {
                for (int64_t j = lo; j < l; j++) d[j] = 0;
                for (int64_t j = r; j < hi; j++) d[j] = 0;
                attn_dropout_row(c, (uint64_t)(((b * c->H + h) * T + i) * S), l, r, p, d);
            }
        }
        /* out_blk [nr, Dv] = Pd[:, lo:hi] @ v[lo:hi] */
        const cf_real *w = drop ? pd + lo : p_h + i0 * S + lo;
        if (nr <= ATTN_FEW_ROWS)
            attn_few_weighted_sum(nr, nk, Dv, w, S, v_h + lo * ldv, ldv, out_h + i0 * ldo, ldo);
        else
            cf_gemm_small(nr, Dv, nk, 1, w, S, 1, v_h + lo * ldv, ldv, 1, 0, out_h + i0 * ldo, ldo);
    }
}

/* Per-thread scratch of `per` reals each (rounded up to a cache line), for every thread. */
static cf_real *attn_thread_scratch(cf_ctx *ctx, int64_t per, int64_t *stride) {
    *stride = (per + 15) / 16 * 16;
    /* the configured maximum, not the current count: a step's arena use must not change when
     * core/threads.c adapts the count */
    int n = cf_threads_max() > omp_get_max_threads() ? cf_threads_max() : omp_get_max_threads();
    return cf_scratch(ctx, (size_t)(*stride * n) * sizeof(cf_real));
}

/* The gradient buffers of q, k and v (NULL without requires_grad) and whether each is fresh: new,
 * to be stored into. A tensor's buffer may be fresh only when the op's views of it add up to all
 * of its elements (the views are disjoint columns, so they then cover it) and there is no
 * relative-position table; otherwise it is zeroed for += as before. */
static void attn_grads(cf_ctx *ctx, const cf_node *node, const attn_cfg *c, cf_real *grad[3], bool fresh[3]) {
    const int idx[3] = {c->in_q, c->in_k, c->in_v};
    const int64_t count[3] = {c->B * c->H * c->T * c->Dk, c->B * c->Hkv * c->S * c->Dk, c->B * c->Hkv * c->S * c->Dv};
    for (int o = 0; o < 3; o++) {
        cf_tensor *t = node->in[idx[o]];
        if (!t->requires_grad) continue;
        int first = 0;
        while (idx[first] != idx[o]) first++;
        if (first < o) { /* the same tensor as an earlier operand: its buffer */
            grad[o] = grad[first];
            fresh[o] = fresh[first];
            continue;
        }
        int64_t covered = 0;
        for (int j = 0; j < 3; j++)
            if (idx[j] == idx[o]) covered += count[j];
        if (!c->rel && covered == t->numel) {
            grad[o] = cf_grad_first(ctx, t, &fresh[o]);
        } else {
            grad[o] = cf_grad(ctx, t);
            fresh[o] = false;
        }
    }
}

/* dk or dv rows [lo, hi) of one head (C at its row lo) from one block of query rows: += alpha *
 * A^T B, A the block's [nr, nk] weights (lda) at key lo, B [nr, D]. In a fresh buffer (`fresh`)
 * rows [0, done) hold values and later rows do not: those are stored (beta 0), and rows between
 * done and lo, which no block sees, are zeroed. Each element is one chain over the block's rows
 * either way (cf_gemm_small's rows are independent), so the split changes no bit. */
static void attn_key_rows(int64_t lo, int64_t hi, int64_t done, bool fresh, int64_t D, int64_t nr, cf_real alpha,
                          const cf_real *a, int64_t lda, const cf_real *b, int64_t ldb, cf_real *c, int64_t ldc) {
    int64_t mid = hi;
    if (fresh) {
        for (int64_t r = done; r < lo; r++) memset(c + (r - lo) * ldc, 0, (size_t)D * sizeof *c);
        mid = done < lo ? lo : done > hi ? hi : done;
    }
    if (mid > lo) cf_gemm_small(mid - lo, D, nr, alpha, a, 1, lda, b, ldb, 1, 1, c, ldc);
    if (hi > mid)
        cf_gemm_small(hi - mid, D, nr, alpha, a + (mid - lo), 1, lda, b, ldb, 1, 0, c + (mid - lo) * ldc, ldc);
}

static void attn_backward(cf_ctx *ctx, cf_node *node) {
    const attn_cfg *c = node->saved;
    cf_tensor *q = node->in[c->in_q], *k = node->in[c->in_k], *v = node->in[c->in_v];
    int64_t B = c->B, H = c->H, Hkv = c->Hkv, G = c->G, T = c->T, S = c->S, Dk = c->Dk, Dv = c->Dv;
    const attn_layout lq = c->lq, lk = c->lk, lv = c->lv, lo_ = c->lo;
    const cf_real *dout = node->out->grad;
    /* q, k and v may be one tensor (a fused projection: disjoint columns). A gradient buffer made
     * here is stored into, not zeroed and added to, when this op writes every element of it (its
     * views cover the tensor) and no relative-position product adds into dq; else it is zeroed. */
    bool fresh[3] = {false, false, false};
    cf_real *grad[3] = {NULL, NULL, NULL};
    attn_grads(ctx, node, c, grad, fresh);
    cf_real *dq = grad[0], *dk = grad[1], *dv = grad[2];
    const bool fq = fresh[0], fk = fresh[1], fv = fresh[2];
    cf_tensor *rel = c->rel ? node->in[node->n_in - 1] : NULL;
    bool drop = c->dropout > 0;
    cf_real keep_scale = drop ? (cf_real)(1.0 / (1.0 - c->dropout)) : 1;
    /* per thread: ds [RB, S] (dP, then dS in place), pd [RB, S] (dropped weights), dqa [RB, 2R+1] */
    int64_t stride;
    cf_real *scratch = attn_thread_scratch(ctx, 2 * c->rb * S + c->rb * c->rel_n, &stride);
    /* relative positions: each (b, h) task writes its own dA partial [2R+1, Dk] */
    int64_t rel_size = c->rel_n * Dk;
    cf_real *drel_part = rel && rel->requires_grad ? cf_scratch(ctx, (size_t)(B * H * rel_size) * sizeof(cf_real)) : NULL;
    /* Grouped heads (G > 1): one task per query head, each writing its own dk/dv partial
     * [B, H, S, D]; a second loop adds a KV head's G partials in head order. With G = 1 the task
     * writes dk/dv directly. Either way the work items are fixed by the shape (MQA: B*H tasks, not
     * B), and every sum has one order. */
    cf_real *dk_part = dk && G > 1 ? cf_scratch(ctx, (size_t)(B * H * S * Dk) * sizeof(cf_real)) : NULL;
    cf_real *dv_part = dv && G > 1 ? cf_scratch(ctx, (size_t)(B * H * S * Dv) * sizeof(cf_real)) : NULL;
    int64_t work = B * H * T * S * (Dk + Dv);
    CF_PARALLEL_FOR(work > CF_PAR_MIN_WORK, for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H, g = h / G;
        cf_real *ds = scratch + omp_get_thread_num() * stride, *pd = ds + c->rb * S, *dqa = pd + c->rb * S;
        cf_real *drel_h = drel_part ? drel_part + bh * rel_size : NULL;
        if (drel_h) memset(drel_h, 0, (size_t)rel_size * sizeof(cf_real));
        int64_t at_q = lq.off + b * lq.sb + h * lq.sh, at_k = lk.off + b * lk.sb + g * lk.sh;
        int64_t at_v = lv.off + b * lv.sb + g * lv.sh, at_o = lo_.off + b * lo_.sb + h * lo_.sh;
        const cf_real *k_h = k->data + at_k, *v_h = v->data + at_v;
        /* G > 1: this head's own contiguous partial [S, D]; G = 1: straight into the gradient */
        cf_real *dk_h = !dk ? NULL : G > 1 ? dk_part + bh * S * Dk : dk + at_k;
        cf_real *dv_h = !dv ? NULL : G > 1 ? dv_part + bh * S * Dv : dv + at_v;
        int64_t lddk = G > 1 ? Dk : lk.ss, lddv = G > 1 ? Dv : lv.ss, ldq = lq.ss, ldk = lk.ss, ldv = lv.ss;
        int64_t ldo = lo_.ss;
        /* a partial (G > 1) is this task's own new buffer: fresh like a fresh gradient */
        const bool fk_h = G > 1 || fk, fv_h = G > 1 || fv;
        int64_t done = 0; /* fresh dk_h/dv_h: keys [0, done) hold values */
        const cf_real *p_h = c->p + bh * T * S, *q_h = q->data + at_q, *do_h = dout + at_o;
        cf_real *dq_h = dq ? dq + at_q : NULL;
        for (int64_t i0 = 0; i0 < T; i0 += c->rb) {
            int64_t i1 = i0 + c->rb < T ? i0 + c->rb : T, nr = i1 - i0, lo, hi;
            if (!attn_block_range(c, b, i0, i1, &lo, &hi)) { /* no key visible: a zero dq block */
                for (int64_t i = i0; fq && dq_h && i < i1; i++) memset(dq_h + i * ldq, 0, (size_t)Dk * sizeof(cf_real));
                continue;
            }
            int64_t nk = hi - lo;
            /* ds [nr, nk] = dO_blk @ v_vis^T: the gradient of the (dropped) weights */
            cf_gemm_small(nr, nk, Dv, 1, do_h + i0 * ldo, ldo, 1, v_h + lo * ldv, 1, ldv, 0, ds, nk);
            for (int64_t i = i0; i < i1; i++) {
                const cf_real *p = p_h + i * S + lo;
                cf_real *d = ds + (i - i0) * nk, *w = pd + (i - i0) * nk;
                int64_t l, r;
                attn_row_range(c, b, i, &l, &r);
                if (r <= l) l = r = lo; /* no visible key: zero gradient */
                l -= lo;
                r -= lo;
                if (!drop) {
                    cf_real dot = 0;
                    for (int64_t j = l; j < r; j++) dot += d[j] * p[j];
                    for (int64_t j = 0; j < nk; j++) d[j] = j >= l && j < r ? p[j] * (d[j] - dot) : 0;
                } else {
                    /* dP = dPd * keep/(1-p); rowsum(dP * P) = rowsum(dPd * Pd) = dO . out */
                    cf_real dot = 0;
                    for (int64_t j = l; j < r; j++) {
                        bool kept = !(p[j] < 0);
                        d[j] = kept ? d[j] * keep_scale : 0;
                        w[j] = kept ? p[j] * keep_scale : 0;
                        dot += d[j] * (kept ? p[j] : 0);
                    }
                    for (int64_t j = 0; j < nk; j++) {
                        if (j >= l && j < r) {
                            d[j] = fabs(p[j]) * (d[j] - dot);
                        } else {
                            d[j] = 0;
                            w[j] = 0;
                        }
                    }
                }
            }
            if (c->rel)
                attn_rel_backward(c, i0, i1, lo, nk, ds, q_h, attn_rel_table(c, h), dqa, dq_h, drel_h);
            if (dq_h) /* dq_blk [nr, Dk] (+)= dS @ k_vis * scale: each block's rows once */
                cf_gemm_small(nr, Dk, nk, (cf_real)c->scale, ds, nk, 1, k_h + lo * ldk, ldk, 1, fq ? 0 : 1,
                              dq_h + i0 * ldq, ldq);
            if (dk_h) /* dk_vis [nk, Dk] += dS^T @ q_blk * scale */
                attn_key_rows(lo, hi, done, fk_h, Dk, nr, (cf_real)c->scale, ds, nk, q_h + i0 * ldq, ldq,
                              dk_h + lo * lddk, lddk);
            if (dv_h) { /* dv_vis [nk, Dv] += Pd^T @ dO_blk */
                const cf_real *wp = drop ? pd : p_h + i0 * S + lo;
                attn_key_rows(lo, hi, done, fv_h, Dv, nr, 1, wp, drop ? nk : S, do_h + i0 * ldo, ldo,
                              dv_h + lo * lddv, lddv);
            }
            if (hi > done) done = hi;
        }
        /* keys no block of this head sees (padding, say): zero in a fresh buffer */
        for (int64_t r = done; r < S; r++) {
            if (dk_h && fk_h) memset(dk_h + r * lddk, 0, (size_t)Dk * sizeof(cf_real));
            if (dv_h && fv_h) memset(dv_h + r * lddv, 0, (size_t)Dv * sizeof(cf_real));
        }
    });
    if (drel_part) { /* each table row += its heads' partials, batch-major then head order */
        cf_real *drel = cf_grad(ctx, rel);
        int64_t per = H / c->rel_heads;
        CF_PARALLEL_FOR(B * H * rel_size > CF_PAR_MIN_WORK,
        for (int64_t row = 0; row < c->rel_heads * c->rel_n; row++) {
            int64_t hr = row / c->rel_n, r = row % c->rel_n;
            cf_real *dst = drel + row * Dk;
            for (int64_t b = 0; b < B; b++)
                for (int64_t h = hr * per; h < (hr + 1) * per; h++) {
                    const cf_real *src = drel_part + (b * H + h) * rel_size + r * Dk;
                    for (int64_t j = 0; j < Dk; j++) dst[j] += src[j];
                }
        });
    }
    if (G == 1) return;
    /* dk/dv of each KV head += its G query heads' partials, g = 0..G-1, row by row in parallel */
    CF_PARALLEL_FOR(work > CF_PAR_MIN_WORK, for (int64_t row = 0; row < B * Hkv * S; row++) {
        int64_t kv = row / S, s = row % S, b = kv / Hkv, h0 = b * H + (kv % Hkv) * G;
        cf_real *dk_row = dk ? dk + lk.off + b * lk.sb + (kv % Hkv) * lk.sh + s * lk.ss : NULL;
        cf_real *dv_row = dv ? dv + lv.off + b * lv.sb + (kv % Hkv) * lv.sh + s * lv.ss : NULL;
        for (int64_t g = 0; g < G; g++) { /* a fresh row starts as the first partial (= 0 + it) */
            if (dk_row)
                for (int64_t j = 0; j < Dk; j++)
                    dk_row[j] = (fk && g == 0 ? 0 : dk_row[j]) + dk_part[((h0 + g) * S + s) * Dk + j];
            if (dv_row)
                for (int64_t j = 0; j < Dv; j++)
                    dv_row[j] = (fv && g == 0 ? 0 : dv_row[j]) + dv_part[((h0 + g) * S + s) * Dv + j];
        }
    });
}

cf_attn_view cf_attn_view_heads(cf_tensor *t) {
    int64_t S = t->shape[2], D = t->shape[3];
    return (cf_attn_view){.t = t, .offset = 0, .batch = t->shape[1] * S * D, .head = S * D, .row = D};
}

cf_attn_view cf_attn_view_cols(cf_tensor *t, int64_t col, int64_t d) {
    int64_t S = t->shape[1], W = t->shape[2];
    return (cf_attn_view){.t = t, .offset = col, .batch = S * W, .head = d, .row = W};
}

/* The view's elements lie inside its tensor, and its heads' and rows' D values do not overlap. */
static void check_view(const char *what, const cf_attn_view *v, int64_t B, int64_t heads, int64_t rows, int64_t d) {
    CF_ASSERT(v->t && v->offset >= 0 && v->batch >= 0 && v->head >= (heads > 1 ? d : 0) && v->row >= (rows > 1 ? d : 0),
              "attention: %s view (offset %lld, strides %lld/%lld/%lld) for D %lld", what, (long long)v->offset,
              (long long)v->batch, (long long)v->head, (long long)v->row, (long long)d);
    int64_t last = v->offset + (B - 1) * v->batch + (heads - 1) * v->head + (rows - 1) * v->row + d;
    CF_ASSERT(B == 0 || heads == 0 || rows == 0 || last <= v->t->numel,
              "attention: %s view reaches element %lld of a tensor of %lld", what, (long long)last,
              (long long)v->t->numel);
}

static attn_layout layout_of(const cf_attn_view *v) {
    return (attn_layout){.off = v->offset, .sb = v->batch, .sh = v->head, .ss = v->row};
}

cf_tensor *cf_attention_views(cf_ctx *ctx, const cf_attn_shape *sh, cf_attn_view q, cf_attn_view k, cf_attn_view v,
                              const cf_attn_opts *opts, bool heads_first) {
    char sk[64];
    CF_ASSERT(opts, "attention: opts is NULL");
    int64_t B = sh->B, H = sh->H, Hkv = sh->Hkv, T = sh->T, S = sh->S, Dk = sh->Dk, Dv = sh->Dv;
    CF_ASSERT(B >= 0 && T >= 0 && S >= 0 && Hkv > 0 && H % Hkv == 0 && Dk > 0 && Dv > 0,
              "attention: B %lld, H %lld, Hkv %lld, T %lld, S %lld, Dk %lld, Dv %lld (want H %% Hkv == 0)",
              (long long)B, (long long)H, (long long)Hkv, (long long)T, (long long)S, (long long)Dk, (long long)Dv);
    check_view("q", &q, B, H, T, Dk);
    check_view("k", &k, B, Hkv, S, Dk);
    check_view("v", &v, B, Hkv, S, Dv);
    CF_ASSERT(opts->dropout >= 0 && opts->dropout < 1, "attention: dropout %g not in [0, 1)", opts->dropout);
    cf_tensor *rel = opts->rel;
    if (rel) {
        int64_t hr = rel->ndim == 3 ? rel->shape[0] : 1, n = rel->shape[rel->ndim - 2];
        CF_ASSERT((rel->ndim == 2 || rel->ndim == 3) && opts->rel_clip >= 0 && n == 2 * opts->rel_clip + 1 &&
                      rel->shape[rel->ndim - 1] == Dk && hr > 0 && H % hr == 0,
                  "attention: relative table %s for clip %lld and %lld heads of %lld (want [2R+1, Dk] or [Hr, 2R+1, Dk], "
                  "H %% Hr == 0)",
                  cf_shape_str(rel, sk, 64), (long long)opts->rel_clip, (long long)H, (long long)Dk);
    }
    attn_cfg cfg = {
        .B = B, .H = H, .Hkv = Hkv, .T = T, .S = S, .Dk = Dk, .Dv = Dv,
        .lq = layout_of(&q), .lk = layout_of(&k), .lv = layout_of(&v),
        .scale = opts->scale, .causal = opts->causal, .window = opts->window, .key_lens = opts->key_lens,
    };
    cfg.lo = heads_first ? (attn_layout){.off = 0, .sb = H * T * Dv, .sh = T * Dv, .ss = Dv}
                         : (attn_layout){.off = 0, .sb = T * H * Dv, .sh = Dv, .ss = H * Dv};
    /* the node's inputs: each distinct tensor once (a fused projection gives q, k and v one tensor) */
    cf_tensor *in[4];
    int n_in = 0;
    cf_tensor *ops[3] = {q.t, k.t, v.t};
    int *idx[3] = {&cfg.in_q, &cfg.in_k, &cfg.in_v};
    for (int o = 0; o < 3; o++) {
        int j = 0;
        while (j < n_in && in[j] != ops[o]) j++;
        if (j == n_in) in[n_in++] = ops[o];
        *idx[o] = j;
    }
    if (rel) {
        cfg.rel = rel->data;
        cfg.rel_heads = rel->ndim == 3 ? rel->shape[0] : 1;
        cfg.rel_clip = opts->rel_clip;
        cfg.rel_n = 2 * opts->rel_clip + 1;
        in[n_in++] = rel;
    }
    cfg.G = H / Hkv;
    cfg.off = S - T;
    cfg.rb = opts->causal || opts->window > 0 ? ATTN_RB : T > 0 ? T : 1;
    if (ctx->training && opts->dropout > 0) {
        cfg.dropout = opts->dropout;
        cfg.rng_seed = ctx->seed;
        cfg.rng_step = ctx->step;
        cfg.rng_id = ctx->dropout_calls++;
    }
    cf_tensor *out = heads_first ? cf_tensor_new(ctx, 4, (int64_t[]){B, H, T, Dv})
                                 : cf_tensor_new(ctx, 3, (int64_t[]){B, T, H * Dv});
    bool save = false;
    for (int j = 0; j < n_in; j++) save |= in[j]->requires_grad;
    save &= ctx->grad_enabled;
    if (save) {
        cfg.p = cf_scratch(ctx, (size_t)(B * H * T * S) * sizeof(cf_real));
        if (opts->key_lens) { /* the caller's buffer may change before backward */
            int32_t *lens = cf_scratch(ctx, (size_t)B * sizeof *lens);
            memcpy(lens, opts->key_lens, (size_t)B * sizeof *lens);
            cfg.key_lens = lens;
        }
    }
    /* per thread: P [T, S] when not saved, pd [RB, S] and qa [RB, 2R+1] */
    int64_t stride;
    cf_real *scratch = attn_thread_scratch(ctx, (save ? 0 : T * S) + cfg.rb * S + cfg.rb * cfg.rel_n, &stride);
    int64_t work = B * H * T * S * (Dk + Dv);
    const attn_layout lq = cfg.lq, lk = cfg.lk, lv = cfg.lv, lo = cfg.lo;
    CF_PARALLEL_FOR(work > CF_PAR_MIN_WORK, for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H, g = h / cfg.G;
        cf_real *mine = scratch + omp_get_thread_num() * stride;
        cf_real *p_h = save ? cfg.p + bh * T * S : mine, *pd = save ? mine : mine + T * S;
        attn_forward_head(&cfg, b, h, q.t->data + lq.off + b * lq.sb + h * lq.sh,
                          k.t->data + lk.off + b * lk.sb + g * lk.sh, v.t->data + lv.off + b * lv.sb + g * lv.sh,
                          out->data + lo.off + b * lo.sb + h * lo.sh, p_h, pd, pd + cfg.rb * S);
    });
    cf_node *node = cf_tape_record(ctx, "attention", attn_backward, out, n_in, in);
    if (node) {
        attn_cfg *saved = cf_scratch(ctx, sizeof *saved);
        *saved = cfg;
        node->saved = saved;
    }
    return out;
}

cf_tensor *cf_attention(cf_ctx *ctx, cf_tensor *q, cf_tensor *k, cf_tensor *v, const cf_attn_opts *opts) {
    char sq[64], sk[64], sv[64];
    CF_ASSERT(opts, "attention: opts is NULL");
    CF_ASSERT(q->ndim == 4 && k->ndim == 4 && v->ndim == 4 && k->shape[0] == q->shape[0] &&
                  v->shape[0] == q->shape[0] && v->shape[1] == k->shape[1] && k->shape[3] == q->shape[3] &&
                  v->shape[2] == k->shape[2] && k->shape[1] > 0 && q->shape[1] % k->shape[1] == 0 &&
                  q->shape[3] > 0 && v->shape[3] > 0,
              "attention: q %s, k %s, v %s (want [B,H,T,Dk], [B,Hkv,S,Dk], [B,Hkv,S,Dv], H %% Hkv == 0)",
              cf_shape_str(q, sq, 64), cf_shape_str(k, sk, 64), cf_shape_str(v, sv, 64));
    cf_attn_shape sh = {.B = q->shape[0], .H = q->shape[1], .Hkv = k->shape[1], .T = q->shape[2], .S = k->shape[2],
                        .Dk = q->shape[3], .Dv = v->shape[3]};
    return cf_attention_views(ctx, &sh, cf_attn_view_heads(q), cf_attn_view_heads(k), cf_attn_view_heads(v), opts,
                              true);
}
