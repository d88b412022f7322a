/* translate/decode.c - greedy and beam search over the incremental decoder (conventions in decode.h).
 *
 * Shapes: B sentences, K beams, N = B*K decoder rows (row b*K + k is beam k of sentence b), S padded
 * source length, d model width, V target vocabulary, L the largest output length of the batch.
 *
 * The search itself (log-softmax of every row, top-k) runs in parallel over sentences (rows for
 * greedy): each one writes only its own slots, so results do not depend on the thread count.
 */
/* Work below which the selection loops stay on one thread (a parallel region costs microseconds). */
#define DECODE_PAR_MIN_WORK 32768
#include "translate/decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "core/autograd.h"

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

void cf_decode_result_free(cf_decode_result *r) {
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

/* What both searches share: the encoded (replicated) memory, the caches and the caller's ctx state. */
typedef struct decode_run {
    const cf_transformer *m;
    cf_ctx *ctx;
    bool saved_grad, saved_training;
    int64_t B, K, N, S, d, V;
    int64_t L;                  /* largest output length in the batch */
    int64_t *max_out;           /* [B] L_i */
    cf_real *memory;            /* [N, S, d] encoder output, row b*K + k = sentence b */
    int32_t *row_lens;          /* [N] source length of each row */
    int n_threads;
    double *logp;               /* [n_threads, V] a row's log-probabilities, one row per thread */
    cf_decode_state *st;
} decode_run;

static void run_begin(decode_run *r, const cf_transformer *m, cf_ctx *ctx, const int32_t *src, const int32_t *src_lens,
                      int64_t B, int64_t S, int64_t K, const cf_decode_opts *o) {
    *r = (decode_run){.m = m, .ctx = ctx, .B = B, .K = K, .N = B * K, .S = S, .d = m->cfg.d_model,
                      .V = m->cfg.tgt_vocab};
    r->saved_grad = cf_ctx_set_grad(ctx, false);
    r->saved_training = ctx->training;
    ctx->training = false;
    cf_ctx_reset(ctx);

    r->max_out = cf_xmalloc((size_t)B * sizeof *r->max_out);
    for (int64_t b = 0; b < B; b++) {
        r->max_out[b] = cf_decode_max_output(m, o, src_lens[b]);
        if (r->max_out[b] > r->L) r->L = r->max_out[b];
    }
    r->n_threads = omp_get_max_threads(); /* fixed for the call: threads adapt only between calls */
    r->logp = cf_xmalloc((size_t)(r->n_threads * r->V) * sizeof *r->logp);
    r->row_lens = cf_xmalloc((size_t)r->N * sizeof *r->row_lens);
    for (int64_t i = 0; i < r->N; i++) r->row_lens[i] = src_lens[i / K];

    /* Encode each sentence once, then copy its memory to K rows of a buffer we own: the cross-attention
     * caches read it at the first step, and owning it lets every step reset the arena. */
    cf_tensor *mem = cf_transformer_encode(ctx, m, src, B, S, src_lens); /* [B, S, d] */
    size_t row_bytes = (size_t)(S * r->d) * sizeof(cf_real);
    r->memory = cf_xmalloc((size_t)r->N * row_bytes);
    for (int64_t i = 0; i < r->N; i++) memcpy(r->memory + i * S * r->d, mem->data + (i / K) * S * r->d, row_bytes);
    cf_ctx_reset(ctx);
    /* the decoder reads <bos> y_1 .. y_L: at most L + 1 positions */
    r->st = cf_decode_state_new(m, r->N, r->L + 1, S);
}

/* One decoder step over all N rows: logits [N, V], valid until the arena is reset. */
static const cf_real *run_step(decode_run *r, const int32_t *ids) {
    cf_tensor *mem = cf_tensor_view(r->ctx, r->memory, 3, (int64_t[]){r->N, r->S, r->d});
    cf_tensor *logits = cf_transformer_decode_step(r->ctx, r->m, r->st, mem, r->row_lens, ids); /* [N, 1, V] */
    return logits->data;
}

static void run_end(decode_run *r) {
    cf_ctx_reset(r->ctx);
    r->ctx->training = r->saved_training;
    cf_ctx_set_grad(r->ctx, r->saved_grad);
    cf_decode_state_free(r->st);
    free(r->max_out);
    free(r->memory);
    free(r->row_lens);
    free(r->logp);
}

/* logp[v] = x[v] - logsumexp(x) in double over the whole vocabulary; then <pad> and <bos> (never
 * generated) and, when only_eos, everything but <eos> are set to -inf. */
static void row_log_softmax(const cf_real *x, int64_t V, const cf_decode_opts *o, bool only_eos, double *logp) {
    double mx = -INFINITY;
    for (int64_t v = 0; v < V; v++)
        if ((double)x[v] > mx) mx = (double)x[v];
    double sum = 0;
    for (int64_t v = 0; v < V; v++) sum += exp((double)x[v] - mx);
    double lse = mx + log(sum);
    if (only_eos) {
        for (int64_t v = 0; v < V; v++) logp[v] = -INFINITY;
        logp[o->eos_id] = (double)x[o->eos_id] - lse;
        return;
    }
    for (int64_t v = 0; v < V; v++) logp[v] = (double)x[v] - lse;
    logp[o->pad_id] = -INFINITY;
    logp[o->bos_id] = -INFINITY;
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
    run_begin(&r, m, ctx, src, src_lens, B, S, 1, o);
    int64_t L1 = r.L > 0 ? r.L : 1;
    int32_t *ids = cf_xmalloc((size_t)B * sizeof *ids);        /* [B] next decoder input */
    int32_t *toks = cf_xmalloc((size_t)(B * L1) * sizeof *toks); /* [B, L] outputs */
    int64_t *len = cf_xcalloc((size_t)B, sizeof *len);          /* [B] outputs so far */
    double *lp = cf_xcalloc((size_t)B, sizeof *lp);             /* [B] sum of log-probs */
    bool *done = cf_xcalloc((size_t)B, sizeof *done);
    for (int64_t b = 0; b < B; b++) ids[b] = o->bos_id;

    int64_t n_done = 0;
    for (int64_t t = 0; n_done < B; t++) {
        const cf_real *logits = run_step(&r, ids);
        int64_t finished = 0;
#pragma omp parallel for schedule(static) reduction(+ : finished) if (B * r.V > DECODE_PAR_MIN_WORK)
        for (int64_t b = 0; b < B; b++) {
            if (done[b]) continue; /* keeps feeding <eos>; its outputs are ignored */
            double *logp = r.logp + omp_get_thread_num() * r.V;
            row_log_softmax(logits + b * r.V, r.V, o, t >= r.max_out[b], logp);
            /* argmax, ties to the lower id (as beam search ranks them); <eos> if nothing is finite */
            int32_t best = o->eos_id;
            double best_lp = -INFINITY;
            for (int64_t v = 0; v < r.V; v++)
                if (logp[v] > best_lp) best_lp = logp[v], best = (int32_t)v;
            lp[b] += logp[best];
            ids[b] = best;
            if (best == o->eos_id) {
                done[b] = true;
                finished++;
            } else {
                toks[b * L1 + len[b]++] = best;
            }
        }
        n_done += finished;
        cf_ctx_reset(ctx);
    }

    int64_t total = 0;
    for (int64_t b = 0; b < B; b++) total += len[b];
    cf_decode_result_reserve(out, B, total);
    for (int64_t b = 0; b < B; b++) {
        int64_t off = out->offsets[b];
        memcpy(out->tokens + off, toks + b * L1, (size_t)len[b] * sizeof *toks);
        out->offsets[b + 1] = off + len[b];
        out->logprob[b] = lp[b];
        out->score[b] = lp[b] / cf_length_penalty(len[b] + 1, o->length_penalty);
    }
    free(ids);
    free(toks);
    free(len);
    free(lp);
    free(done);
    run_end(&r);
    return 0;
}

/* ---- beam search ---- */

typedef struct cand {
    double lp;                  /* cumulative log-prob */
    int32_t tok, beam;
} cand;

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
    int64_t K = o->beam, N = B * K;
    decode_run r;
    run_begin(&r, m, ctx, src, src_lens, B, S, K, o);
    int64_t L1 = r.L > 0 ? r.L : 1;
    double alpha = o->length_penalty;
    int32_t *ids = cf_xmalloc((size_t)N * sizeof *ids);                  /* [N] next decoder input */
    int32_t *order = cf_xmalloc((size_t)N * sizeof *order);              /* [N] parent row of each row */
    double *beam_lp = cf_xmalloc((size_t)N * sizeof *beam_lp);           /* [N] -inf: dead row */
    double *next_lp = cf_xmalloc((size_t)N * sizeof *next_lp);
    int32_t *hist = cf_xmalloc((size_t)(N * L1) * sizeof *hist);         /* [N, L] tokens of live beams */
    int32_t *next_hist = cf_xmalloc((size_t)(N * L1) * sizeof *next_hist);
    int32_t *fin_tok = cf_xmalloc((size_t)(N * L1) * sizeof *fin_tok);   /* [B, K, L] finished hypotheses */
    int64_t *fin_len = cf_xmalloc((size_t)N * sizeof *fin_len);          /* [B, K] without <eos> */
    double *fin_lp = cf_xmalloc((size_t)N * sizeof *fin_lp);
    double *fin_score = cf_xmalloc((size_t)N * sizeof *fin_score);
    int64_t *fin_n = cf_xcalloc((size_t)B, sizeof *fin_n);
    bool *done = cf_xcalloc((size_t)B, sizeof *done);
    cand *top_all = cf_xmalloc((size_t)(r.n_threads * 2 * K) * sizeof *top_all); /* [threads, 2K] */
    /* 2K candidates always suffice: at most K <eos> ones can be finished, K others fill the beams */

    for (int64_t i = 0; i < N; i++) {
        ids[i] = o->bos_id;
        beam_lp[i] = i % K == 0 ? 0.0 : -INFINITY; /* only beam 0 at the first step: no duplicates */
    }
    int64_t n_done = 0;
    for (int64_t t = 0; n_done < B; t++) {
        const cf_real *logits = run_step(&r, ids);
        int reorder = 0;
        int64_t finished = 0;
#pragma omp parallel for schedule(static) reduction(| : reorder) reduction(+ : finished) \
    if (N * r.V > DECODE_PAR_MIN_WORK)
        for (int64_t b = 0; b < B; b++) {
            int64_t row0 = b * K;
            double *logp = r.logp + omp_get_thread_num() * r.V;
            cand *top = top_all + omp_get_thread_num() * 2 * K;
            for (int64_t k = 0; k < K; k++) order[row0 + k] = (int32_t)(row0 + k);
            if (done[b]) continue;
            bool only_eos = t >= r.max_out[b];
            int64_t n_top = 0;
            for (int64_t k = 0; k < K; k++) {
                if (beam_lp[row0 + k] == -INFINITY) continue;
                row_log_softmax(logits + (row0 + k) * r.V, r.V, o, only_eos, logp);
                for (int64_t v = 0; v < r.V; v++)
                    if (logp[v] > -INFINITY) /* also drops NaN */
                        cand_insert(top, &n_top, 2 * K, (cand){beam_lp[row0 + k] + logp[v], (int32_t)v, (int32_t)k});
            }
            int64_t n_live = 0;
            for (int64_t i = 0; i < n_top; i++) {
                const cand *c = &top[i];
                const int32_t *parent = hist + (row0 + c->beam) * L1;
                if (c->tok == o->eos_id) {
                    if (i >= K || fin_n[b] >= K) continue;
                    int64_t f = row0 + fin_n[b]++;
                    memcpy(fin_tok + f * L1, parent, (size_t)t * sizeof *hist);
                    fin_len[f] = t;
                    fin_lp[f] = c->lp;
                    fin_score[f] = c->lp / cf_length_penalty(t + 1, alpha);
                } else if (n_live < K) {
                    int64_t row = row0 + n_live++;
                    order[row] = (int32_t)(row0 + c->beam);
                    memcpy(next_hist + row * L1, parent, (size_t)t * sizeof *hist);
                    next_hist[row * L1 + t] = c->tok;
                    next_lp[row] = c->lp;
                    ids[row] = c->tok;
                }
            }
            for (int64_t k = n_live; k < K; k++) { /* dead rows: never expanded again */
                next_lp[row0 + k] = -INFINITY;
                ids[row0 + k] = o->eos_id;
            }
            for (int64_t k = 0; k < K; k++) {
                beam_lp[row0 + k] = next_lp[row0 + k];
                reorder |= order[row0 + k] != row0 + k;
            }
            if (fin_n[b] >= K || n_live == 0) {
                done[b] = true;
                finished++;
                for (int64_t k = 0; k < K; k++) ids[row0 + k] = o->eos_id;
            }
        }
        n_done += finished;
        int32_t *tmp = hist;
        hist = next_hist;
        next_hist = tmp;
        /* Only the self-attention caches: every row of a sentence holds the same cross-attention
         * memory, and parents never cross sentences, so those caches need no reordering. */
        if (reorder && n_done < B) cf_decode_state_reorder(r.st, order, N, false);
        cf_ctx_reset(ctx);
    }

    /* best finished hypothesis per sentence (ties: the one finished first) */
    int64_t *best = cf_xmalloc((size_t)B * sizeof *best);
    int64_t total = 0;
    for (int64_t b = 0; b < B; b++) {
        best[b] = -1;
        for (int64_t j = 0; j < fin_n[b]; j++)
            if (best[b] < 0 || fin_score[b * K + j] > fin_score[best[b]]) best[b] = b * K + j;
        if (best[b] >= 0) total += fin_len[best[b]];
    }
    cf_decode_result_reserve(out, B, total);
    for (int64_t b = 0; b < B; b++) {
        int64_t off = out->offsets[b], f = best[b], n = f >= 0 ? fin_len[f] : 0;
        if (n) memcpy(out->tokens + off, fin_tok + f * L1, (size_t)n * sizeof *fin_tok);
        out->offsets[b + 1] = off + n;
        /* no hypothesis only if the model gave no finite log-probability (NaN weights) */
        out->logprob[b] = f >= 0 ? fin_lp[f] : -INFINITY;
        out->score[b] = f >= 0 ? fin_score[f] : -INFINITY;
    }
    free(best);
    free(ids);
    free(order);
    free(beam_lp);
    free(next_lp);
    free(hist);
    free(next_hist);
    free(fin_tok);
    free(fin_len);
    free(fin_lp);
    free(fin_score);
    free(fin_n);
    free(done);
    free(top_all);
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
