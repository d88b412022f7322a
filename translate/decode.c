/* translate/decode.c - greedy and beam search over the incremental decoder (conventions in decode.h).
 *
 * Shapes: B sentences, K beams (1: greedy), N = B*K rows; the n sentences still decoding sit in
 * slots 0..n-1, slot j on decoder rows j*K .. j*K+K-1 (beam k on row j*K + k); S padded source
 * length, d model width, V target vocabulary, L the largest output length of the batch.
 *
 * Where the time goes and what keeps it low (docs/performance.md, "Decoding"):
 *   - A sentence that is done leaves the batch before the next step: its slot is closed, the later
 *     slots move down and the caches follow (cf_decode_state_compact), so a step costs the rows
 *     still decoding, not the batch's longest output.
 *   - The encoder output is read at the first step only (it fills the cross-attention caches), so it
 *     stays in the arena; beam search keeps one cross cache row per sentence that its K rows attend
 *     to together (nn/transformer.h, cross_group), instead of K copies.
 *   - Every host buffer comes from one block kept in the result (cf_decode_work) and the caches are
 *     re-armed in place (cf_decode_state_renew): once the largest batch has been seen, decoding
 *     allocates nothing, per step or per call; the arena is reset after every step.
 *   - The model's weights are packed once per call (per corpus in cf_translate_tokens, which
 *     calls cf_decode_pack) and every product of the encoder and the steps reads them through an
 *     AVX-512 kernel (core/gemm.h): BLAS would repack each weight at every call, which for a few
 *     dozen rows costs as much as the product, and runs the AVX2 kernel this environment selects.
 *     Outputs equal the BLAS products' up to float rounding. The copy costs the weights' size again.
 * The selection (log-softmax of every row, argmax or top-2K) runs in parallel over slots, each
 * writing only its own rows, so results do not depend on the thread count; the bookkeeping that
 * moves slots is serial and cheap.
 */
/* Work below which the selection loops stay on one thread (a parallel region costs microseconds). */
#define DECODE_PAR_MIN_WORK 32768
#include "translate/decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "core/autograd.h"
#include "core/gemm.h"
#include "core/parallel.h"
#include "core/profile.h"

cf_decode_opts cf_decode_opts_default(void) {
    return (cf_decode_opts){.beam = 1, .length_penalty = 0.6, .max_len_a = 1.2, .max_len_b = 10,
                            .bos_id = CF_BOS_ID, .eos_id = CF_EOS_ID, .pad_id = CF_PAD_ID};
}

double cf_length_penalty(int64_t len, double alpha) {
    return alpha == 0 ? 1.0 : pow((5.0 + (double)len) / 6.0, alpha);
}

int64_t cf_decode_max_output(const cf_transformer *m, const cf_decode_opts *o, int64_t src_len) {
    /* the slack keeps products such as 1.15 * 20 = 22.999999999999996 from losing a token */
    double f = floor(o->max_len_a * (double)src_len + (double)o->max_len_b + 1e-9);
    int64_t cap = m->cfg.max_len - 1;
    if (!(f > 0)) return 0;
    return f >= (double)cap ? cap : (int64_t)f;
}

/* What the searches keep across calls: the decode state (its caches), one block of host buffers and
 * the model's weights packed for the products (core/gemm.h). */
struct cf_decode_work {
    cf_decode_state *st;
    void *buf;
    size_t cap;
    cf_gemm_packed_set packed;        /* the weights decoding multiplies by, packed (core/gemm.h) */
    const cf_transformer *packed_for; /* set between cf_decode_pack and cf_decode_unpack */
    /* the list of weights pack_weights hands to cf_gemm_packed_set_build, kept so that packing
     * again (every cf_decode_batch call outside a series) allocates nothing */
    const cf_tensor **list_t;
    const cf_real **list_w;
    int64_t *list_rows, *list_cols;
    int list_cap;
};

/* Every weight decoding multiplies by through cf_linear (cf_transformer_decode_weights: the
 * encoder's and the decoder's attention projections, dense FFNs or MoE routers and shared experts,
 * the output projection), packed into w->packed. The encoder's products have many rows, but the
 * AVX-512 kernel beats BLAS's Haswell one there too (about 2x at 1000-3000 rows). */
static void pack_weights(const cf_transformer *m, cf_decode_work *w) {
    int n = cf_transformer_decode_weights(m, NULL);
    if (n > w->list_cap) {
        free(w->list_t);
        free(w->list_w);
        free(w->list_rows);
        free(w->list_cols);
        w->list_cap = n;
        w->list_t = cf_xmalloc((size_t)n * sizeof *w->list_t);
        w->list_w = cf_xmalloc((size_t)n * sizeof *w->list_w);
        w->list_rows = cf_xmalloc((size_t)n * sizeof *w->list_rows);
        w->list_cols = cf_xmalloc((size_t)n * sizeof *w->list_cols);
    }
    cf_transformer_decode_weights(m, w->list_t);
    for (int i = 0; i < n; i++) {
        w->list_w[i] = w->list_t[i]->data;
        w->list_rows[i] = w->list_t[i]->shape[0];
        w->list_cols[i] = w->list_t[i]->shape[1];
    }
    cf_gemm_packed_set_build(&w->packed, w->list_w, w->list_rows, w->list_cols, n);
}

static cf_decode_work *work_of(cf_decode_result *r) {
    if (!r->work) r->work = cf_xcalloc(1, sizeof *r->work);
    return r->work;
}

void cf_decode_pack(const cf_transformer *m, cf_decode_result *r) {
    cf_decode_work *w = work_of(r);
    pack_weights(m, w);
    w->packed_for = m;
}

void cf_decode_unpack(cf_decode_result *r) {
    if (r->work) r->work->packed_for = NULL;
}

void cf_decode_result_free(cf_decode_result *r) {
    if (r->work) {
        cf_decode_state_free(r->work->st);
        cf_gemm_packed_set_free(&r->work->packed);
        free(r->work->list_t);
        free(r->work->list_w);
        free(r->work->list_rows);
        free(r->work->list_cols);
        free(r->work->buf);
        free(r->work);
    }
    free(r->tokens);
    free(r->offsets);
    free(r->logprob);
    free(r->score);
    *r = (cf_decode_result){0};
}

/* Grow the result to n sentences and n_tokens tokens (contents not kept). */
void cf_decode_result_reserve(cf_decode_result *r, int64_t n, int64_t n_tokens) {
    if (n > r->cap_n || !r->offsets) {
        free(r->offsets);
        free(r->logprob);
        free(r->score);
        r->cap_n = n > r->cap_n ? n : r->cap_n;
        r->offsets = cf_xmalloc((size_t)(r->cap_n + 1) * sizeof *r->offsets);
        r->logprob = cf_xmalloc((size_t)(r->cap_n ? r->cap_n : 1) * sizeof *r->logprob);
        r->score = cf_xmalloc((size_t)(r->cap_n ? r->cap_n : 1) * sizeof *r->score);
    }
    if (n_tokens > r->cap_tokens || !r->tokens) {
        free(r->tokens);
        r->cap_tokens = n_tokens > r->cap_tokens ? n_tokens : r->cap_tokens;
        r->tokens = cf_xmalloc((size_t)(r->cap_tokens ? r->cap_tokens : 1) * sizeof *r->tokens);
    }
    r->n = n;
    r->offsets[0] = 0;
}

static int check_inputs(const cf_transformer *m, const int32_t *src, const int32_t *src_lens, int64_t B, int64_t S,
                        const cf_decode_opts *o) {
    int64_t V = m->cfg.tgt_vocab;
    if (B < 0 || S < 1) {
        cf_error_set("decode: bad batch shape [%lld, %lld]", (long long)B, (long long)S);
        return -1;
    }
    if (o->beam < 1 || o->beam > 100000) {
        cf_error_set("decode: beam %lld out of range (1..100000)", (long long)o->beam);
        return -1;
    }
    if (!isfinite(o->length_penalty) || !isfinite(o->max_len_a)) {
        cf_error_set("decode: length_penalty %g and max_len_a %g must be finite", o->length_penalty, o->max_len_a);
        return -1;
    }
    const int32_t ids[3] = {o->bos_id, o->eos_id, o->pad_id};
    for (int i = 0; i < 3; i++)
        if (ids[i] < 0 || ids[i] >= V) {
            cf_error_set("decode: special id %d outside the target vocabulary [0, %lld)", ids[i], (long long)V);
            return -1;
        }
    if (o->eos_id == o->pad_id || o->eos_id == o->bos_id) {
        cf_error_set("decode: <eos> id %d must differ from <pad> %d and <bos> %d", o->eos_id, o->pad_id, o->bos_id);
        return -1;
    }
    for (int64_t b = 0; b < B; b++) {
        if (src_lens[b] < 1 || src_lens[b] > S) {
            cf_error_set("decode: sentence %lld has length %d, outside [1, %lld]", (long long)b, src_lens[b],
                         (long long)S);
            return -1;
        }
        for (int64_t s = 0; s < S; s++)
            if (src[b * S + s] < 0 || src[b * S + s] >= m->cfg.src_vocab) {
                cf_error_set("decode: sentence %lld position %lld: token id %d outside the source vocabulary "
                             "[0, %lld)", (long long)b, (long long)s, src[b * S + s], (long long)m->cfg.src_vocab);
                return -1;
            }
    }
    return 0;
}

/* Host buffers of one call, carved from the work block. */
typedef struct search_bufs {
    int64_t *max_out;           /* [B] L_i of each sentence */
    int32_t *act;               /* [B] sentence in each slot */
    int32_t *slot_lens;         /* [B] source length of each slot */
    int32_t *cross_lens;        /* [N] source length of each cross-cache row (slots, or rows when unfolded) */
    uint8_t *slot_done;         /* [B] the slot's sentence finished this step */
    int32_t *groups;            /* [B] kept slots, for compaction */
    int32_t *ids;               /* [N] next decoder input of each row */
    int32_t *order;             /* [N] parent row of each row */
    double *beam_lp, *next_lp;  /* [N] cumulative log-prob of each live beam; -inf: dead row */
    int32_t *hist, *next_hist;  /* [N, L1] tokens of live beams */
    int32_t *fin_tok;           /* [B, K, L1] finished hypotheses; greedy: [B, L1] outputs */
    int64_t *fin_len;           /* [B, K] without <eos>; greedy [B] */
    double *fin_lp, *fin_score; /* [B, K]; greedy [B] */
    int64_t *fin_n;             /* [B] finished hypotheses of each sentence */
    void *top;                  /* [n_threads, 2K] candidates (beam search) */
} search_bufs;

typedef struct cand {
    double lp;                  /* cumulative log-prob */
    int32_t tok, beam;
} cand;

/* Lay the buffers out from base (NULL: only measure); returns the bytes needed. */
static size_t bufs_layout(search_bufs *b, char *base, int64_t B, int64_t K, bool beam, int64_t L1, int n_threads) {
    int64_t N = B * K;
    size_t off = 0;
#define TAKE(field, count)                                                                      \
    do {                                                                                        \
        b->field = (void *)(base ? base + off : NULL);                                          \
        off += ((size_t)(count) * sizeof *b->field + 63) / 64 * 64; /* cache-line aligned */    \
    } while (0)
    TAKE(max_out, B);
    TAKE(act, B);
    TAKE(slot_lens, B);
    TAKE(cross_lens, N);
    TAKE(slot_done, B);
    TAKE(groups, B);
    TAKE(ids, N);
    TAKE(order, N);
    TAKE(beam_lp, N);
    TAKE(next_lp, N);
    TAKE(hist, beam ? N * L1 : 0);
    TAKE(next_hist, beam ? N * L1 : 0);
    TAKE(fin_tok, N * L1);
    TAKE(fin_len, N);
    TAKE(fin_lp, N);
    TAKE(fin_score, N);
    TAKE(fin_n, B);
#undef TAKE
    b->top = base ? base + off : NULL;
    off += (size_t)(n_threads * 2 * K) * sizeof(cand);
    return off;
}

/* What both searches share: the caches, the buffers and the caller's ctx state. */
typedef struct decode_run {
    const cf_transformer *m;
    cf_ctx *ctx;
    const cf_decode_opts *o;
    bool saved_grad, saved_training;
    int64_t B, K, S, d, V;
    bool beam;                  /* beam search (also with K 1), not greedy */
    int64_t L, L1;              /* largest output length in the batch; max(L, 1) */
    int64_t n;                  /* active slots */
    int n_threads;
    search_bufs b;
    cf_decode_state *st;
    cf_tensor *memory;          /* encoder output, valid until the first step's reset */
    const cf_gemm_packed_set *saved_packed; /* the caller's ctx->packed */
} decode_run;

static void run_begin(decode_run *r, const cf_transformer *m, cf_ctx *ctx, const int32_t *src, const int32_t *src_lens,
                      int64_t B, int64_t S, int64_t K, bool beam, const cf_decode_opts *o, cf_decode_result *out) {
    *r = (decode_run){.m = m, .ctx = ctx, .o = o, .B = B, .K = K, .S = S, .d = m->cfg.d_model,
                      .V = m->cfg.tgt_vocab, .n = B, .beam = beam};
    r->saved_grad = cf_ctx_set_grad(ctx, false);
    r->saved_training = ctx->training;
    ctx->training = false;
    cf_ctx_reset(ctx);
    for (int64_t b = 0; b < B; b++) {
        int64_t mo = cf_decode_max_output(m, o, src_lens[b]);
        if (mo > r->L) r->L = mo;
    }
    r->L1 = r->L > 0 ? r->L : 1;
    r->n_threads = omp_get_max_threads(); /* fixed for the call: threads adapt only between calls */

    cf_decode_work *w = work_of(out);
    /* The weights, packed once for the encoder and all the steps (a series packed them already); the
     * products read them in place of the weights themselves (cf_linear, no-grad mode) */
    r->saved_packed = ctx->packed;
    ctx->packed = NULL;
    if (!o->no_pack && w->packed_for != m) pack_weights(m, w);
    if (!o->no_pack && w->packed.n > 0) ctx->packed = &w->packed; /* the encoder's and the steps' products */
    size_t need = bufs_layout(&r->b, NULL, B, K, beam, r->L1, r->n_threads);
    if (need > w->cap) {
        free(w->buf);
        w->cap = need > w->cap + w->cap / 2 ? need : w->cap + w->cap / 2;
        w->buf = cf_xalloc_aligned(w->cap);
    }
    bufs_layout(&r->b, w->buf, B, K, beam, r->L1, r->n_threads);
    /* the decoder reads <bos> y_1 .. y_L: at most L + 1 positions */
    w->st = cf_decode_state_renew(w->st, m, B * K, K, r->L + 1, S);
    r->st = w->st;

    search_bufs *b = &r->b;
    for (int64_t i = 0; i < B; i++) {
        b->max_out[i] = cf_decode_max_output(m, o, src_lens[i]);
        b->act[i] = (int32_t)i;
        b->slot_lens[i] = src_lens[i];
    }
    int64_t cg = r->st->cross_group, rows = B * K / cg; /* cross rows */
    for (int64_t i = 0; i < rows; i++) b->cross_lens[i] = src_lens[i * cg / K];
    /* Encode each sentence once. The memory is read only by the first step, which puts its K/V into
     * the cross caches, so it can stay in the arena until that step's reset. An unfolded cross cache
     * (MLA) wants one memory row per decoder row. */
    cf_tensor *mem = cf_transformer_encode(ctx, m, src, B, S, src_lens); /* [B, S, d] */
    if (rows != B) {
        cf_tensor *rep = cf_tensor_new(ctx, 3, (int64_t[]){rows, S, r->d});
        size_t row_bytes = (size_t)(S * r->d) * sizeof(cf_real);
        for (int64_t i = 0; i < rows; i++) memcpy(rep->data + i * S * r->d, mem->data + (i / K) * S * r->d, row_bytes);
        mem = rep;
    }
    r->memory = mem;
}

/* One decoder step over the active rows: logits [n*K, V], valid until the arena is reset. */
static const cf_real *run_step(decode_run *r, const int32_t *ids) {
    cf_tensor *logits = cf_transformer_decode_step(r->ctx, r->m, r->st, r->memory, r->b.cross_lens, ids);
    r->memory = NULL;
    return logits->data;
}

/* After the selection: close the slots whose sentence is done, move the others down (rows, their
 * next inputs, histories and log-probs, the caches with them) and apply the beam parents in order.
 * Returns the number of slots left. */
static int64_t run_compact(decode_run *r) {
    search_bufs *b = &r->b;
    int64_t K = r->K, n = r->n, L1 = r->L1, g = 0, cg = r->st->cross_group;
    bool reorder = false;
    for (int64_t j = 0; j < n; j++) {
        if (b->slot_done[j]) continue;
        b->groups[g] = (int32_t)j;
        b->act[g] = b->act[j];
        b->slot_lens[g] = b->slot_lens[j];
        for (int64_t k = 0; k < K; k++) { /* new row g*K + k <= old row j*K + k: ascending is safe */
            int64_t to = g * K + k, from = j * K + k;
            int32_t parent = b->order[from];
            reorder |= parent != from;
            b->order[to] = parent; /* old numbering: the caches read old rows */
            b->ids[to] = b->ids[from];
            if (r->beam) {
                b->beam_lp[to] = b->next_lp[from];
                memcpy(b->hist + to * L1, b->next_hist + from * L1, (size_t)L1 * sizeof *b->hist);
            }
        }
        g++;
    }
    if (g > 0 && g < n) {
        for (int64_t i = 0; i < g * K / cg; i++) b->cross_lens[i] = b->slot_lens[i * cg / K];
        cf_decode_state_compact(r->st, b->order, b->groups, g);
    } else if (g > 0 && reorder) {
        /* Only the self-attention caches: every row of a sentence holds the same cross-attention
         * memory, and parents never cross sentences, so those caches need no reordering. */
        cf_decode_state_reorder(r->st, b->order, n * K, false);
    }
    r->n = g;
    return g;
}

/* Profile marks between the model's ops (cformer bench decode --profile). */
static void run_mark(decode_run *r, const char *what) {
    if (r->ctx->profile) cf_profile_forward(r->ctx->profile, what, r->ctx->arena.used_total);
}

static void run_end(decode_run *r) {
    cf_ctx_reset(r->ctx);
    r->ctx->packed = r->saved_packed;
    r->ctx->training = r->saved_training;
    cf_ctx_set_grad(r->ctx, r->saved_grad);
}

/* ---- the log-softmax and the selection of one row ----
 *
 * A row's log-probabilities are logp[v] = x[v] - lse, lse = logsumexp(x) in double over the whole
 * vocabulary, with <pad> and <bos> (never generated) and, at the length limit, everything but <eos>
 * at -inf (decode.h). They are never stored: lse costs one pass of exps, and the selection then
 * reads x directly, since x -> (double)x - lse is non-decreasing (float ties stay ties, and two
 * floats can merge into one double only where both compare equal below, so ranks are unchanged). */

/* e^x for x <= 0 in double, vectorisable (glibc's exp is a scalar call): x = k ln2 + r with
 * |r| <= ln2/2 (Cody-Waite split of ln2, exact for |k| <= 1023), e^r by its Taylor polynomial to
 * degree 13 (truncation < 1e-17), 2^k from the exponent bits. About 1 ulp; exactly 0 below -708
 * (where the true value is under 3.3e-308: no term of a sum that holds e^0 = 1 notices) and NaN
 * for NaN. */
static inline double exp_nonpos(double x) {
    const double log2e = 1.4426950408889634, ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    double xc = x < -708.0 ? -708.0 : x;
    double k = (xc * log2e + 0x1.8p52) - 0x1.8p52; /* round to nearest */
    double r = fma(-k, ln2_lo, fma(-k, ln2_hi, xc));
    double p = 1.0 / 6227020800.0; /* 1/13! */
    p = fma(p, r, 1.0 / 479001600.0);
    p = fma(p, r, 1.0 / 39916800.0);
    p = fma(p, r, 1.0 / 3628800.0);
    p = fma(p, r, 1.0 / 362880.0);
    p = fma(p, r, 1.0 / 40320.0);
    p = fma(p, r, 1.0 / 5040.0);
    p = fma(p, r, 1.0 / 720.0);
    p = fma(p, r, 1.0 / 120.0);
    p = fma(p, r, 1.0 / 24.0);
    p = fma(p, r, 1.0 / 6.0);
    p = fma(p, r, 0.5);
    p = fma(p, r, 1.0);
    p = fma(p, r, 1.0);
    int64_t ki = (int64_t)k; /* in [-1022, 0] */
    uint64_t bits = (uint64_t)(ki + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return x < -708.0 ? 0.0 : p * scale;
}

/* logsumexp of x [V] in double (NaN if any x is NaN or +inf, as the formula gives). */
static double row_lse(const cf_real *x, int64_t V) {
    cf_real m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t v = 0; v < V; v++) m = x[v] > m ? x[v] : m;
    double mx = (double)m, sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t v = 0; v < V; v++) sum += exp_nonpos((double)x[v] - mx);
    return mx + log(sum);
}

/* Greedy: the argmax of logp, ties to the lower id; <eos> if nothing is finite. *lp = logp[best]. */
static int32_t row_argmax(const cf_real *x, int64_t V, const cf_decode_opts *o, bool only_eos, double *lp) {
    double lse = row_lse(x, V);
    int32_t best = o->eos_id;
    if (!only_eos) {
        cf_real m = -INFINITY;
        int32_t pad = o->pad_id, bos = o->bos_id;
#pragma omp simd reduction(max : m)
        for (int64_t v = 0; v < V; v++) {
            cf_real xv = v == pad || v == bos ? -INFINITY : x[v];
            m = xv > m ? xv : m;
        }
        double target = (double)m - lse; /* the largest logp */
        if (target > -INFINITY)
            for (int64_t v = 0; v < V; v++) /* the first v whose logp equals it */
                if (v != pad && v != bos && (double)x[v] - lse == target) {
                    best = (int32_t)v;
                    break;
                }
    }
    *lp = (double)x[best] - lse;
    return best;
}

/* Rank order: higher log-prob, then lower token id, then lower beam index. */
static bool cand_before(const cand *a, const cand *b) {
    if (a->lp != b->lp) return a->lp > b->lp;
    if (a->tok != b->tok) return a->tok < b->tok;
    return a->beam < b->beam;
}

/* Insert c into the ranked list top[0..*n) holding at most cap entries. */
static void cand_insert(cand *top, int64_t *n, int64_t cap, cand c) {
    if (*n == cap && !cand_before(&c, &top[cap - 1])) return;
    int64_t i = *n < cap ? (*n)++ : cap - 1;
    while (i > 0 && cand_before(&c, &top[i - 1])) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = c;
}

/* Chunks whose best candidate cannot enter the list are skipped on their float maximum. */
enum { SELECT_CHUNK = 32 };

/* Beam search: every candidate of beam k with finite logp, scored beam_lp + logp[v], into the
 * ranked list top (cap entries). */
static void row_candidates(const cf_real *x, int64_t V, const cf_decode_opts *o, bool only_eos, double beam_lp,
                           int32_t k, cand *top, int64_t *n_top, int64_t cap) {
    double lse = row_lse(x, V);
    if (only_eos) {
        double l = (double)x[o->eos_id] - lse;
        if (l > -INFINITY) cand_insert(top, n_top, cap, (cand){beam_lp + l, o->eos_id, k});
        return;
    }
    for (int64_t v0 = 0; v0 < V; v0 += SELECT_CHUNK) {
        int64_t v1 = v0 + SELECT_CHUNK < V ? v0 + SELECT_CHUNK : V;
        cf_real m = -INFINITY;
#pragma omp simd reduction(max : m)
        for (int64_t v = v0; v < v1; v++) m = x[v] > m ? x[v] : m;
        /* monotone: no candidate of the chunk scores above beam_lp + (m - lse) */
        if (*n_top == cap && beam_lp + ((double)m - lse) < top[cap - 1].lp) continue;
        for (int64_t v = v0; v < v1; v++) {
            if (v == o->pad_id || v == o->bos_id) continue;
            double l = (double)x[v] - lse;
            if (l > -INFINITY) /* also drops NaN */
                cand_insert(top, n_top, cap, (cand){beam_lp + l, (int32_t)v, k});
        }
    }
}

/* ---- greedy ---- */

int cf_decode_greedy(const cf_transformer *m, cf_ctx *ctx, const int32_t *src, const int32_t *src_lens, int64_t B,
                     int64_t S, const cf_decode_opts *o, cf_decode_result *out) {
    if (check_inputs(m, src, src_lens, B, S, o) != 0) {
        out->n = 0;
        return -1;
    }
    if (B == 0) {
        cf_decode_result_reserve(out, 0, 0);
        return 0;
    }
    decode_run r;
    run_begin(&r, m, ctx, src, src_lens, B, S, 1, false, o, out);
    search_bufs *sb = &r.b;
    int64_t L1 = r.L1;
    for (int64_t b = 0; b < B; b++) {
        sb->ids[b] = o->bos_id;
        sb->order[b] = (int32_t)b;
        sb->fin_len[b] = 0;  /* outputs so far */
        sb->fin_lp[b] = 0;   /* sum of log-probs */
    }
    for (int64_t t = 0; r.n > 0; t++) {
        const cf_real *logits = run_step(&r, sb->ids);
        int64_t n = r.n;
        CF_PARALLEL_FOR(n * r.V > DECODE_PAR_MIN_WORK, for (int64_t j = 0; j < n; j++) {
            int64_t b = sb->act[j];
            sb->order[j] = (int32_t)j;
            double lp;
            int32_t best = row_argmax(logits + j * r.V, r.V, o, t >= sb->max_out[b], &lp);
            sb->fin_lp[b] += lp;
            sb->ids[j] = best;
            sb->slot_done[j] = best == o->eos_id;
            if (best != o->eos_id) sb->fin_tok[b * L1 + sb->fin_len[b]++] = best;
        });
        run_mark(&r, "decode: select");
        run_compact(&r);
        run_mark(&r, "decode: compact");
        cf_ctx_reset(ctx);
    }

    int64_t total = 0;
    for (int64_t b = 0; b < B; b++) total += sb->fin_len[b];
    cf_decode_result_reserve(out, B, total);
    for (int64_t b = 0; b < B; b++) {
        int64_t off = out->offsets[b];
        memcpy(out->tokens + off, sb->fin_tok + b * L1, (size_t)sb->fin_len[b] * sizeof *sb->fin_tok);
        out->offsets[b + 1] = off + sb->fin_len[b];
        out->logprob[b] = sb->fin_lp[b];
        out->score[b] = sb->fin_lp[b] / cf_length_penalty(sb->fin_len[b] + 1, o->length_penalty);
    }
    run_end(&r);
    return 0;
}

/* ---- beam search ---- */

int cf_decode_beam(const cf_transformer *m, cf_ctx *ctx, const int32_t *src, const int32_t *src_lens, int64_t B,
                   int64_t S, const cf_decode_opts *o, cf_decode_result *out) {
    if (check_inputs(m, src, src_lens, B, S, o) != 0) {
        out->n = 0;
        return -1;
    }
    if (B == 0) {
        cf_decode_result_reserve(out, 0, 0);
        return 0;
    }
    int64_t K = o->beam < 1 ? 1 : o->beam, N = B * K;
    decode_run r;
    run_begin(&r, m, ctx, src, src_lens, B, S, K, true, o, out);
    search_bufs *sb = &r.b;
    int64_t L1 = r.L1;
    double alpha = o->length_penalty;
    /* 2K candidates always suffice: at most K <eos> ones can be finished, K others fill the beams */
    for (int64_t i = 0; i < N; i++) {
        sb->ids[i] = o->bos_id;
        sb->beam_lp[i] = i % K == 0 ? 0.0 : -INFINITY; /* only beam 0 at the first step: no duplicates */
    }
    for (int64_t b = 0; b < B; b++) sb->fin_n[b] = 0;
    for (int64_t t = 0; r.n > 0; t++) {
        const cf_real *logits = run_step(&r, sb->ids);
        int64_t n = r.n;
        CF_PARALLEL_FOR(n * K * r.V > DECODE_PAR_MIN_WORK, for (int64_t j = 0; j < n; j++) {
            int64_t row0 = j * K, b = sb->act[j];
            cand *top = (cand *)sb->top + omp_get_thread_num() * 2 * K;
            for (int64_t k = 0; k < K; k++) sb->order[row0 + k] = (int32_t)(row0 + k);
            bool only_eos = t >= sb->max_out[b];
            int64_t n_top = 0;
            for (int64_t k = 0; k < K; k++)
                if (sb->beam_lp[row0 + k] > -INFINITY)
                    row_candidates(logits + (row0 + k) * r.V, r.V, o, only_eos, sb->beam_lp[row0 + k], (int32_t)k, top,
                                   &n_top, 2 * K);
            int64_t n_live = 0;
            for (int64_t i = 0; i < n_top; i++) {
                const cand *c = &top[i];
                const int32_t *parent = sb->hist + (row0 + c->beam) * L1;
                if (c->tok == o->eos_id) {
                    if (i >= K || sb->fin_n[b] >= K) continue;
                    int64_t f = b * K + sb->fin_n[b]++;
                    memcpy(sb->fin_tok + f * L1, parent, (size_t)t * sizeof *sb->hist);
                    sb->fin_len[f] = t;
                    sb->fin_lp[f] = c->lp;
                    sb->fin_score[f] = c->lp / cf_length_penalty(t + 1, alpha);
                } else if (n_live < K) {
                    int64_t row = row0 + n_live++;
                    sb->order[row] = (int32_t)(row0 + c->beam);
                    memcpy(sb->next_hist + row * L1, parent, (size_t)t * sizeof *sb->hist);
                    sb->next_hist[row * L1 + t] = c->tok;
                    sb->next_lp[row] = c->lp;
                    sb->ids[row] = c->tok;
                }
            }
            for (int64_t k = n_live; k < K; k++) { /* dead rows: never expanded again */
                sb->next_lp[row0 + k] = -INFINITY;
                sb->ids[row0 + k] = o->eos_id;
            }
            sb->slot_done[j] = sb->fin_n[b] >= K || n_live == 0;
        });
        run_mark(&r, "decode: select");
        run_compact(&r);
        run_mark(&r, "decode: compact");
        cf_ctx_reset(ctx);
    }

    /* best finished hypothesis per sentence (ties: the one finished first) */
    int64_t total = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t best = -1;
        for (int64_t j = 0; j < sb->fin_n[b]; j++)
            if (best < 0 || sb->fin_score[b * K + j] > sb->fin_score[best]) best = b * K + j;
        sb->order[b] = (int32_t)best; /* order is free now: the best hypothesis of each sentence */
        if (best >= 0) total += sb->fin_len[best];
    }
    cf_decode_result_reserve(out, B, total);
    for (int64_t b = 0; b < B; b++) {
        int64_t off = out->offsets[b], f = sb->order[b], n = f >= 0 ? sb->fin_len[f] : 0;
        if (n) memcpy(out->tokens + off, sb->fin_tok + f * L1, (size_t)n * sizeof *sb->fin_tok);
        out->offsets[b + 1] = off + n;
        /* no hypothesis only if the model gave no finite log-probability (NaN weights) */
        out->logprob[b] = f >= 0 ? sb->fin_lp[f] : -INFINITY;
        out->score[b] = f >= 0 ? sb->fin_score[f] : -INFINITY;
    }
    run_end(&r);
    return 0;
}

int cf_decode_batch(const cf_transformer *m, cf_ctx *ctx, const int32_t *src, const int32_t *src_lens, int64_t B,
                    int64_t S, const cf_decode_opts *o, cf_decode_result *out) {
    if (o->beam <= 1) {
        cf_decode_opts g = *o;
        g.beam = 1;
        return cf_decode_greedy(m, ctx, src, src_lens, B, S, &g, out);
    }
    return cf_decode_beam(m, ctx, src, src_lens, B, S, o, out);
}
