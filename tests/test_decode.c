/* tests/test_decode.c - greedy and beam search on tiny random models: the outputs are arbitrary,
 * the relations between them must hold (beam 1 == greedy, batched == one by one, cached == naive,
 * beam search finds the exhaustive optimum on a tiny vocabulary, length and <eos> conventions). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/nn_fixtures.h"
#include "tests/test.h"
#include "tests/testlib.h"
#include "core/threads.h"
#include "translate/decode.h"

/* Four sources of different lengths, padded to S = 6 with <pad>. */
enum { NB = 4, NS = 6 };
static const int32_t four_lens[NB] = {6, 2, 4, 5};

static void make_sources(int32_t *src, const int32_t *lens, int64_t B, int64_t S, int64_t vocab, uint64_t seed) {
    cf_rng r = cf_rng_init(seed, CF_RNG_STREAM_TEST);
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++)
            src[b * S + s] = s < lens[b] ? (int32_t)(4 + cf_rng_below(&r, (uint64_t)(vocab - 4))) : CF_PAD_ID;
}

static cf_decode_opts opts(int64_t beam, double alpha, double a, int64_t b) {
    cf_decode_opts o = cf_decode_opts_default();
    o.beam = beam;
    o.length_penalty = alpha;
    o.max_len_a = a;
    o.max_len_b = b;
    return o;
}

static bool same_tokens(const cf_decode_result *x, int64_t i, const cf_decode_result *y, int64_t j) {
    int64_t n = cf_decode_result_len(x, i);
    return n == cf_decode_result_len(y, j) &&
           memcmp(x->tokens + x->offsets[i], y->tokens + y->offsets[j], (size_t)n * sizeof(int32_t)) == 0;
}

/* The tiny config with an untied output projection: a random tied model mostly repeats its input
 * token (the residual stream keeps the embedding), so it would never emit <eos>. */
static cf_model_config random_config(cf_attn_kind kind) {
    cf_model_config c = tiny_model_config(kind);
    c.tie_output = false;
    return c;
}

/* Lower <eos>'s logit by `shift` nats (pre-LN, fresh norm weights of 1): with the final norm's bias
 * set to 1, x = z + 1 with sum(z) = 0, so subtracting c from row <eos> of the (untied) output
 * projection subtracts c * d from its logit only (every logit gains the constant sum of its row). */
static void lower_eos(cf_transformer *m, double shift) {
    int64_t d = m->cfg.d_model;
    cf_init_const(cf_params_find(&m->params, "decoder.norm.bias"), 1);
    for (int64_t j = 0; j < d; j++) m->output_proj->data[CF_EOS_ID * d + j] -= (cf_real)(shift / (double)d);
}

static cf_ctx *eval_ctx(void) {
    cf_ctx *ctx = cf_ctx_new(1);
    ctx->training = false;
    cf_ctx_set_grad(ctx, false);
    return ctx;
}

/* ---- 1. beam 1 == greedy ---- */

TEST(decode_beam1_equals_greedy) {
    const cf_attn_kind kinds[] = {CF_ATTN_MHA, CF_ATTN_GQA, CF_ATTN_MLA};
    int32_t src[NB * NS];
    for (int ki = 0; ki < 3; ki++) {
        cf_model_config c = random_config(kinds[ki]);
        if (ki == 1) c.pos_encoding = CF_POS_ROPE;
        cf_transformer *m = cf_transformer_new(&c, 11 + (uint64_t)ki);
        cf_ctx *ctx = eval_ctx();
        make_sources(src, four_lens, NB, NS, c.src_vocab, 3 + (uint64_t)ki);
        cf_decode_opts o = opts(1, 0.6, 1.5, 3);
        cf_decode_result g = {0}, b1 = {0};
        CHECK(cf_decode_greedy(m, ctx, src, four_lens, NB, NS, &o, &g) == 0);
        CHECK(cf_decode_beam(m, ctx, src, four_lens, NB, NS, &o, &b1) == 0);
        CHECK(g.n == NB && b1.n == NB);
        for (int64_t i = 0; i < NB && g.n == NB && b1.n == NB; i++) {
            CHECK_MSG(same_tokens(&g, i, &b1, i), "%s sentence %lld: beam 1 tokens differ from greedy",
                      cf_attn_kind_name(kinds[ki]), (long long)i);
            CHECK_NEAR(g.logprob[i], b1.logprob[i], 1e-12);
            CHECK_NEAR(g.score[i], b1.score[i], 1e-12);
            CHECK(isfinite(g.score[i]) && g.logprob[i] < 0);
        }
        cf_decode_result_free(&g);
        cf_decode_result_free(&b1);
        cf_ctx_free(ctx);
        cf_transformer_free(m);
    }
}

/* ---- 2. batched == one by one ---- */

/* Returns how many outputs ended with a chosen <eos> before their length limit. */
static int64_t check_batched_vs_single(cf_model_config c, int64_t beam, uint64_t seed) {
    cf_transformer *m = cf_transformer_new(&c, seed);
    cf_ctx *ctx = eval_ctx();
    int32_t src[NB * NS];
    make_sources(src, four_lens, NB, NS, c.src_vocab, seed + 100);
    cf_decode_opts o = opts(beam, 0.6, 1.5, 3);
    cf_decode_result all = {0}, one = {0};
    CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &o, &all) == 0);
    int64_t natural = 0;
    for (int64_t i = 0; i < NB && all.n == NB; i++) {
        /* alone and unpadded: S = its own length */
        CHECK(cf_decode_batch(m, ctx, src + i * NS, &four_lens[i], 1, four_lens[i], &o, &one) == 0);
        CHECK_MSG(one.n == 1 && same_tokens(&all, i, &one, 0), "beam %lld seed %llu sentence %lld: batched tokens differ",
                  (long long)beam, (unsigned long long)seed, (long long)i);
        CHECK_NEAR(all.logprob[i], one.logprob[0], 1e-5);
        CHECK_NEAR(all.score[i], one.score[0], 1e-5);
        int64_t n = cf_decode_result_len(&all, i);
        natural += n > 0 && n < cf_decode_max_output(m, &o, four_lens[i]);
    }
    cf_decode_result_free(&all);
    cf_decode_result_free(&one);
    cf_ctx_free(ctx);
    cf_transformer_free(m);
    return natural;
}

TEST(decode_batched_equals_one_by_one) {
    int64_t natural[2] = {0, 0};
    for (uint64_t seed = 21; seed <= 23; seed++) {
        cf_model_config c = random_config(CF_ATTN_MHA);
        natural[0] += check_batched_vs_single(c, 1, seed);
        natural[1] += check_batched_vs_single(c, 4, seed);
        c = random_config(CF_ATTN_MLA);
        c.dec_layers = 2;
        natural[0] += check_batched_vs_single(c, 1, seed + 10);
        natural[1] += check_batched_vs_single(c, 4, seed + 10);
    }
    /* rows finishing at different steps are what batching could get wrong */
    CHECK_MSG(natural[0] > 0 && natural[1] > 0, "no output ended early (greedy %lld, beam %lld): the test proves little",
              (long long)natural[0], (long long)natural[1]);
}

/* ---- 3. greedy == naive greedy re-running the full decoder on the prefix ---- */

/* log_softmax of x [V] in double at token tok, with the decoder's conventions (pad/bos excluded). */
static double naive_logp(const cf_real *x, int64_t V, int32_t tok) {
    double mx = -INFINITY, sum = 0;
    for (int64_t v = 0; v < V; v++) mx = fmax(mx, x[v]);
    for (int64_t v = 0; v < V; v++) sum += exp(x[v] - mx);
    return x[tok] - mx - log(sum);
}

/* The greedy output of sentence src[0..len) without any cache; returns its length, *lp its log-prob. */
static int64_t naive_greedy(const cf_transformer *m, const int32_t *src, int32_t len, int64_t max_out, int32_t *out,
                            double *lp) {
    cf_ctx *ctx = eval_ctx();
    int64_t V = m->cfg.tgt_vocab, n = 0;
    int32_t prefix[64] = {CF_BOS_ID};
    *lp = 0;
    for (;;) {
        cf_tensor *mem = cf_transformer_encode(ctx, m, src, 1, len, &len);
        cf_tensor *logits = cf_transformer_decode(ctx, m, mem, &len, prefix, n + 1); /* [1, n+1, V] */
        const cf_real *x = logits->data + n * V;
        int32_t best = CF_EOS_ID;
        if (n < max_out)
            for (int32_t v = 0; v < V; v++)
                if (v != CF_PAD_ID && v != CF_BOS_ID && x[v] > x[best]) best = v;
        /* ties go to the lower id */
        if (n < max_out)
            for (int32_t v = 0; v < best; v++)
                if (v != CF_PAD_ID && v != CF_BOS_ID && x[v] == x[best]) best = v;
        *lp += naive_logp(x, V, best);
        cf_ctx_reset(ctx);
        if (best == CF_EOS_ID) break;
        out[n++] = best;
        prefix[n] = best;
    }
    cf_ctx_free(ctx);
    return n;
}

TEST(decode_greedy_equals_naive_greedy) {
    const cf_attn_kind kinds[] = {CF_ATTN_MHA, CF_ATTN_MQA, CF_ATTN_MLA};
    int32_t src[NB * NS], naive[64];
    int64_t nonempty = 0;
    for (int ki = 0; ki < 3; ki++) {
        cf_model_config c = random_config(kinds[ki]);
        if (ki == 1) c.pre_norm = false, c.pos_encoding = CF_POS_LEARNED;
        if (ki == 2) c.pos_encoding = CF_POS_ROPE;
        cf_transformer *m = cf_transformer_new(&c, 31 + (uint64_t)ki);
        cf_ctx *ctx = eval_ctx();
        make_sources(src, four_lens, NB, NS, c.src_vocab, 41 + (uint64_t)ki);
        cf_decode_opts o = opts(1, 1.0, 1.5, 3);
        cf_decode_result g = {0};
        CHECK(cf_decode_greedy(m, ctx, src, four_lens, NB, NS, &o, &g) == 0);
        for (int64_t i = 0; i < NB && g.n == NB; i++) {
            double lp;
            int64_t n = naive_greedy(m, src + i * NS, four_lens[i], cf_decode_max_output(m, &o, four_lens[i]), naive,
                                     &lp);
            CHECK_MSG(n == cf_decode_result_len(&g, i) &&
                          memcmp(naive, g.tokens + g.offsets[i], (size_t)n * sizeof(int32_t)) == 0,
                      "%s sentence %lld: cached greedy differs from the naive one", cf_attn_kind_name(kinds[ki]),
                      (long long)i);
            CHECK_NEAR(g.logprob[i], lp, 1e-4);
            CHECK_NEAR(g.score[i], lp / pow((5.0 + (double)n + 1) / 6.0, 1.0), 1e-4);
            nonempty += n > 0;
        }
        cf_decode_result_free(&g);
        cf_ctx_free(ctx);
        cf_transformer_free(m);
    }
    CHECK(nonempty > 0);
}

/* ---- 4. beam search quality ---- */

/* Exact log-prob of <bos> y <eos> under the full forward (pad/bos excluded like the decoder). */
static double exact_logprob(const cf_transformer *m, cf_ctx *ctx, const int32_t *src, int32_t len, const int32_t *y,
                            int64_t n) {
    int64_t V = m->cfg.tgt_vocab;
    int32_t in[64] = {CF_BOS_ID};
    for (int64_t i = 0; i < n; i++) in[i + 1] = y[i];
    cf_tensor *mem = cf_transformer_encode(ctx, m, src, 1, len, &len);
    cf_tensor *logits = cf_transformer_decode(ctx, m, mem, &len, in, n + 1);
    double lp = 0;
    for (int64_t i = 0; i <= n; i++) lp += naive_logp(logits->data + i * V, V, i < n ? y[i] : CF_EOS_ID);
    cf_ctx_reset(ctx);
    return lp;
}

/* Reference beam search for one sentence, written from decode.h's rules alone and without a cache:
 * every live hypothesis is scored by a full forward of <bos> y (exact_logprob's model call), so the
 * two implementations share nothing but the model. Returns false when the search was "fragile": two
 * candidates adjacent in some step's ranking, or the two best finished scores, lie within `margin`,
 * so float rounding (which differs between a full forward and the cached step) could flip a
 * decision; such sentences prove nothing either way and are skipped by the caller. */
typedef struct ref_hyp {
    int32_t tok[32];
    int64_t n;
    double lp;
} ref_hyp;

static int cmp_cand(const void *pa, const void *pb) {
    const double *a = pa, *b = pb; /* {lp, tok, beam} */
    if (a[0] != b[0]) return a[0] > b[0] ? -1 : 1;
    if (a[1] != b[1]) return a[1] < b[1] ? -1 : 1;
    return a[2] < b[2] ? -1 : a[2] > b[2];
}

static bool ref_beam(const cf_transformer *m, cf_ctx *ctx, const int32_t *src, int32_t len, int64_t K, double alpha,
                     int64_t max_out, double margin, ref_hyp *best, double *best_score) {
    enum { MAXK = 8, MAXV = 16 };
    int64_t V = m->cfg.tgt_vocab;
    CF_ASSERT(K <= MAXK && V <= MAXV && max_out < 31, "ref_beam: sizes");
    ref_hyp live[MAXK], next[MAXK], fin[MAXK];
    double fin_score[MAXK], cand[MAXK * MAXV][3];
    int64_t n_live = 1, n_fin = 0;
    live[0] = (ref_hyp){.n = 0, .lp = 0};
    bool robust = true;
    for (int64_t t = 0; n_fin < K && n_live > 0; t++) {
        int64_t nc = 0;
        for (int64_t k = 0; k < n_live; k++) {
            int32_t in[32] = {CF_BOS_ID};
            memcpy(in + 1, live[k].tok, (size_t)t * sizeof(int32_t));
            cf_tensor *mem = cf_transformer_encode(ctx, m, src, 1, len, &len);
            cf_tensor *logits = cf_transformer_decode(ctx, m, mem, &len, in, t + 1);
            const cf_real *x = logits->data + t * V;
            for (int32_t v = 0; v < V; v++) {
                bool allowed = t >= max_out ? v == CF_EOS_ID : v != CF_PAD_ID && v != CF_BOS_ID;
                if (allowed) {
                    cand[nc][0] = live[k].lp + naive_logp(x, V, v);
                    cand[nc][1] = v;
                    cand[nc++][2] = (double)k;
                }
            }
            cf_ctx_reset(ctx);
        }
        qsort(cand, (size_t)nc, sizeof cand[0], cmp_cand);
        int64_t n_top = nc < 2 * K ? nc : 2 * K;
        for (int64_t i = 0; i + 1 < nc && i < n_top; i++) robust &= cand[i][0] - cand[i + 1][0] > margin;
        int64_t n_next = 0;
        for (int64_t i = 0; i < n_top; i++) {
            const ref_hyp *parent = &live[(int64_t)cand[i][2]];
            if ((int32_t)cand[i][1] == CF_EOS_ID) {
                if (i >= K || n_fin >= K) continue;
                fin[n_fin] = *parent;
                fin[n_fin].lp = cand[i][0];
                fin_score[n_fin++] = cand[i][0] / cf_length_penalty(t + 1, alpha);
            } else if (n_next < K) {
                next[n_next] = *parent;
                next[n_next].tok[t] = (int32_t)cand[i][1];
                next[n_next].n = t + 1;
                next[n_next++].lp = cand[i][0];
            }
        }
        memcpy(live, next, (size_t)n_next * sizeof *live);
        n_live = n_next;
    }
    int64_t b = 0;
    for (int64_t j = 1; j < n_fin; j++)
        if (fin_score[j] > fin_score[b]) b = j;
    for (int64_t j = 0; j < n_fin; j++) robust &= j == b || fin_score[b] - fin_score[j] > margin;
    *best = fin[b];
    *best_score = fin_score[b];
    return robust;
}

/* Beam 4 returns exactly what the reference search above returns, for MHA/GQA models, with and
 * without a length penalty; a property of the algorithm, so it holds on any machine. Sentences whose
 * search had a near-tie (within 1e-4 nats; rounding differs by ~1e-6) are skipped, and most must not
 * be. The reported log-prob is that of the reported tokens (catches cache reordering bugs). */
TEST(decode_beam_matches_reference_search) {
    int64_t compared = 0, skipped = 0;
    int32_t src[NB * NS];
    for (uint64_t seed = 1; seed <= 4; seed++) {
        cf_model_config c = random_config(seed % 2 ? CF_ATTN_MHA : CF_ATTN_GQA);
        cf_transformer *m = cf_transformer_new(&c, 50 + seed);
        cf_ctx *ctx = eval_ctx();
        make_sources(src, four_lens, NB, NS, c.src_vocab, 60 + seed);
        double alpha = seed <= 2 ? 0 : 1.0;
        cf_decode_opts ob = opts(4, alpha, 1.5, 3);
        cf_decode_result b = {0};
        CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &ob, &b) == 0 && b.n == NB);
        for (int64_t i = 0; i < NB && b.n == NB; i++) {
            int64_t n = cf_decode_result_len(&b, i);
            const int32_t *toks = b.tokens + b.offsets[i];
            CHECK_NEAR(b.logprob[i], exact_logprob(m, ctx, src + i * NS, four_lens[i], toks, n), 1e-4);
            ref_hyp want;
            double want_score;
            int64_t max_out = cf_decode_max_output(m, &ob, four_lens[i]);
            if (!ref_beam(m, ctx, src + i * NS, four_lens[i], 4, alpha, max_out, 1e-4, &want, &want_score)) {
                skipped++;
                continue;
            }
            compared++;
            CHECK_MSG(n == want.n && memcmp(toks, want.tok, (size_t)n * sizeof *toks) == 0,
                      "model %llu sentence %lld: beam search and the reference search disagree",
                      (unsigned long long)seed, (long long)i);
            CHECK_NEAR(b.score[i], want_score, 1e-4);
        }
        cf_decode_result_free(&b);
        cf_ctx_free(ctx);
        cf_transformer_free(m);
    }
    CHECK_MSG(compared >= 8, "only %lld of %lld sentences had no near-tie", (long long)compared,
              (long long)(compared + skipped));
}

/* V = 6 (outputs 1, 4, 5 and <eos>), at most 3 tokens: score all 40 hypotheses exactly with one
 * batched full forward over the 27 three-token sequences (every shorter hypothesis is a prefix of
 * one, and the decoder is causal); beam search with K = V^3 keeps every prefix and must return the
 * true best, with and without a length penalty. */
TEST(decode_beam_finds_exhaustive_best) {
    enum { NSEQ = 27 };
    const int32_t alphabet[3] = {CF_UNK_ID, 4, 5};
    const int32_t lens[2] = {4, 2};
    int64_t deep = 0;
    for (int run = 0; run < 4; run++) {
        double alpha = run % 2 ? 1.0 : 0.0;
        cf_model_config c = random_config(run / 2 ? CF_ATTN_MLA : CF_ATTN_MHA);
        c.src_vocab = c.tgt_vocab = 6;
        cf_transformer *m = cf_transformer_new(&c, 70 + (uint64_t)run);
        lower_eos(m, 2.0); /* else the empty output mostly wins and the search depth goes untested */
        cf_ctx *ctx = eval_ctx();
        int32_t src[2 * 4];
        make_sources(src, lens, 2, 4, 6, 80 + (uint64_t)run);
        cf_decode_opts o = opts(216, alpha, 0, 3);
        cf_decode_result r = {0};
        CHECK(cf_decode_beam(m, ctx, src, lens, 2, 4, &o, &r) == 0);
        for (int64_t b = 0; b < 2 && r.n == 2; b++) {
            int32_t rep_src[NSEQ * 4], rep_lens[NSEQ], in[NSEQ * 4];
            for (int64_t q = 0; q < NSEQ; q++) {
                memcpy(rep_src + q * 4, src + b * 4, 4 * sizeof(int32_t));
                rep_lens[q] = lens[b];
                in[q * 4] = CF_BOS_ID;
                for (int64_t i = 0, x = q; i < 3; i++, x /= 3) in[q * 4 + 1 + i] = alphabet[x % 3];
            }
            cf_tensor *mem = cf_transformer_encode(ctx, m, rep_src, NSEQ, 4, rep_lens);
            cf_tensor *logits = cf_transformer_decode(ctx, m, mem, rep_lens, in, 4); /* [27, 4, 6] */
            double best = -INFINITY, best_lp = 0;
            int64_t best_q = 0, best_n = 0;
            for (int64_t q = 0; q < NSEQ; q++) {
                double lp = 0; /* of y_1 .. y_n */
                for (int64_t n = 0; n <= 3; n++) {
                    const cf_real *x = logits->data + (q * 4 + n) * 6;
                    double total = lp + naive_logp(x, 6, CF_EOS_ID);
                    double s = total / pow((5.0 + (double)n + 1) / 6.0, alpha);
                    if (s > best) best = s, best_lp = total, best_q = q, best_n = n;
                    if (n < 3) lp += naive_logp(x, 6, in[q * 4 + 1 + n]);
                }
            }
            cf_ctx_reset(ctx);
            CHECK_MSG(cf_decode_result_len(&r, b) == best_n &&
                          memcmp(r.tokens + r.offsets[b], in + best_q * 4 + 1, (size_t)best_n * sizeof(int32_t)) == 0,
                      "run %d sentence %lld: beam search missed the exhaustive best", run, (long long)b);
            CHECK_NEAR(r.score[b], best, 1e-5);
            CHECK_NEAR(r.logprob[b], best_lp, 1e-5);
            deep += best_n >= 2;
        }
        cf_decode_result_free(&r);
        cf_ctx_free(ctx);
        cf_transformer_free(m);
    }
    CHECK_MSG(deep >= 2, "only %lld best hypotheses have 2+ tokens: the search depth goes untested", (long long)deep);
}

/* ---- 6. length and <eos> conventions ---- */

/* A model whose output ignores its input: the decoder's final norm emits the constant vector 1, so
 * logit v = sum of output_proj row v; row <eos> is set to `eos_row` everywhere. */
static cf_transformer *constant_model(double eos_row) {
    cf_model_config c = tiny_model_config(CF_ATTN_MHA);
    cf_transformer *m = cf_transformer_new(&c, 90);
    cf_init_const(cf_params_find(&m->params, "decoder.norm.weight"), 0);
    cf_init_const(cf_params_find(&m->params, "decoder.norm.bias"), 1);
    for (int64_t j = 0; j < c.d_model; j++) m->output_proj->data[CF_EOS_ID * c.d_model + j] = (cf_real)eos_row;
    return m;
}

TEST(decode_eos_ends_and_is_not_output) {
    cf_transformer *m = constant_model(2.0); /* logit(<eos>) = 16: always ends at once */
    cf_ctx *ctx = eval_ctx();
    int32_t src[NB * NS];
    make_sources(src, four_lens, NB, NS, 11, 5);
    for (int64_t beam = 1; beam <= 4; beam += 3) {
        cf_decode_opts o = opts(beam, 0.6, 1.5, 3);
        cf_decode_result r = {0};
        CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &o, &r) == 0);
        for (int64_t i = 0; i < NB && r.n == NB; i++) {
            CHECK(cf_decode_result_len(&r, i) == 0);
            CHECK(r.logprob[i] < 0 && r.logprob[i] > -1e-3);
            CHECK_NEAR(r.score[i], r.logprob[i] / cf_length_penalty(1, 0.6), 1e-15);
        }
        cf_decode_result_free(&r);
    }
    cf_ctx_free(ctx);
    cf_transformer_free(m);
}

TEST(decode_max_length_respected) {
    cf_transformer *m = constant_model(-2.0); /* logit(<eos>) = -16: never chosen before the limit */
    cf_ctx *ctx = eval_ctx();
    int32_t src[NB * NS];
    make_sources(src, four_lens, NB, NS, 11, 6);
    /* lens 6, 2, 4, 5: floor(1.5 len + 1) = 10, 4, 7, 8; with a = 3, b = 5 all capped at max_len - 1 = 15 */
    const int64_t expect[2][NB] = {{10, 4, 7, 8}, {15, 11, 15, 15}};
    const double a[2] = {1.5, 3.0};
    const int64_t bb[2] = {1, 5};
    for (int li = 0; li < 2; li++)
        for (int64_t beam = 1; beam <= 4; beam += 3) {
            cf_decode_opts o = opts(beam, 0.6, a[li], bb[li]);
            cf_decode_result r = {0};
            CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &o, &r) == 0);
            for (int64_t i = 0; i < NB && r.n == NB; i++) {
                CHECK_MSG(cf_decode_result_len(&r, i) == expect[li][i], "beam %lld sentence %lld: length %lld, want %lld",
                          (long long)beam, (long long)i, (long long)cf_decode_result_len(&r, i),
                          (long long)expect[li][i]);
                CHECK(cf_decode_max_output(m, &o, four_lens[i]) == expect[li][i]);
                for (int64_t t = r.offsets[i]; t < r.offsets[i + 1]; t++)
                    CHECK(r.tokens[t] != CF_EOS_ID && r.tokens[t] != CF_PAD_ID && r.tokens[t] != CF_BOS_ID);
                CHECK(r.logprob[i] < -15); /* the forced final <eos> is scored */
            }
            cf_decode_result_free(&r);
        }
    cf_ctx_free(ctx);
    cf_transformer_free(m);
}

TEST(decode_length_rule_and_penalty) {
    cf_model_config c = tiny_model_config(CF_ATTN_MHA);
    c.max_len = 64;
    cf_transformer *m = cf_transformer_new(&c, 1);
    cf_decode_opts o = opts(1, 0.6, 1.16, 0);
    CHECK(cf_decode_max_output(m, &o, 25) == 29);   /* 1.16 * 25 = 28.999999999999996 */
    CHECK(cf_decode_max_output(m, &o, 60) == 63);  /* capped at max_len - 1 */
    o.max_len_a = 0.7;
    CHECK(cf_decode_max_output(m, &o, 10) == 7);    /* 7.000000000000001 */
    o.max_len_b = -20;
    CHECK(cf_decode_max_output(m, &o, 10) == 0);
    CHECK_NEAR(cf_length_penalty(1, 0.6), 1.0, 1e-15);
    CHECK_NEAR(cf_length_penalty(7, 1.0), 2.0, 1e-15);
    CHECK_NEAR(cf_length_penalty(7, 0.0), 1.0, 0);
    cf_transformer_free(m);
}

/* Exact ties go to the lower token id, then the lower beam index: tokens 4 and 5 always tie. */
TEST(decode_ties_prefer_lower_token_and_beam) {
    cf_transformer *m = constant_model(-2.0);
    int64_t d = m->cfg.d_model;
    for (int64_t j = 0; j < d; j++) m->output_proj->data[4 * d + j] = m->output_proj->data[5 * d + j] = 1.0f;
    cf_ctx *ctx = eval_ctx();
    int32_t src[NB * NS];
    make_sources(src, four_lens, NB, NS, 11, 8);
    for (int64_t beam = 1; beam <= 3; beam++) {
        cf_decode_opts o = opts(beam, 0.6, 0, 5);
        cf_decode_result r = {0};
        CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &o, &r) == 0);
        for (int64_t i = 0; i < NB && r.n == NB; i++) {
            CHECK(cf_decode_result_len(&r, i) == 5);
            for (int64_t t = r.offsets[i]; t < r.offsets[i + 1]; t++)
                CHECK_MSG(r.tokens[t] == 4, "beam %lld sentence %lld: token %d, want 4", (long long)beam, (long long)i,
                          r.tokens[t]);
        }
        cf_decode_result_free(&r);
    }
    cf_ctx_free(ctx);
    cf_transformer_free(m);
}

/* The arena is reset every step: a repeated call mallocs nothing in the arena, and the high-water
 * mark hardly grows with the number of steps. */
TEST(decode_arena_is_reused) {
    cf_model_config c = random_config(CF_ATTN_GQA);
    cf_transformer *m = cf_transformer_new(&c, 3);
    cf_ctx *ctx = eval_ctx();
    int32_t src[NB * NS];
    make_sources(src, four_lens, NB, NS, c.src_vocab, 9);
    cf_decode_result r = {0};
    for (int64_t beam = 1; beam <= 4; beam += 3) {
        cf_decode_opts o = opts(beam, 0.6, 1.5, 3);
        CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &o, &r) == 0);
        size_t mallocs = ctx->arena.mallocs, cap = cf_arena_capacity(&ctx->arena);
        CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &o, &r) == 0);
        CHECK_MSG(ctx->arena.mallocs == mallocs, "beam %lld: %zu arena mallocs in a repeated call", (long long)beam,
                  ctx->arena.mallocs - mallocs);
        CHECK(cf_arena_capacity(&ctx->arena) == cap);
        CHECK(ctx->arena.used_total == 0); /* left reset */
    }
    /* memory does not grow with the output length: 16 steps need about what 3 steps need */
    size_t high[2];
    for (int i = 0; i < 2; i++) {
        cf_ctx *fresh = eval_ctx();
        cf_decode_opts o = opts(4, 0.6, 0, i ? 15 : 2);
        CHECK(cf_decode_batch(m, fresh, src, four_lens, NB, NS, &o, &r) == 0);
        high[i] = fresh->arena.high_water;
        cf_ctx_free(fresh);
    }
    CHECK_MSG(high[1] < 2 * high[0], "arena high water %zu bytes for 15 steps, %zu for 2", high[1], high[0]);
    cf_decode_result_free(&r);
    cf_ctx_free(ctx);
    cf_transformer_free(m);
}

/* A vocabulary large enough for the parallel selection loops and tiled GEMMs: 1, 2, 3 and 4 threads
 * give identical results. */
TEST(decode_same_for_any_thread_count) {
    cf_model_config c = random_config(CF_ATTN_MHA);
    c.src_vocab = c.tgt_vocab = 9000;
    c.d_model = 64; /* the output projection, 16 x 9000 x 64, is cut into column tiles */
    c.d_ff = 128;
    cf_transformer *m = cf_transformer_new(&c, 4);
    cf_ctx *ctx = eval_ctx();
    int32_t src[NB * NS];
    make_sources(src, four_lens, NB, NS, 50, 10);
    int threads = cf_threads_count();
    for (int64_t beam = 1; beam <= 4; beam += 3) {
        cf_decode_opts o = opts(beam, 0.6, 1.5, 3);
        cf_decode_result r1 = {0}, r2 = {0};
        CHECK(cf_threads_init(1) == 0);
        CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &o, &r1) == 0);
        for (int t = 1; t < TEST_N_THREAD_COUNTS; t++) {
            CHECK(cf_threads_init(test_thread_counts[t]) == 0);
            CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &o, &r2) == 0);
            for (int64_t i = 0; i < NB && r1.n == NB && r2.n == NB; i++) {
                CHECK_MSG(same_tokens(&r1, i, &r2, i) && r1.score[i] == r2.score[i],
                          "beam %lld sentence %lld: 1 and %d threads differ", (long long)beam, (long long)i,
                          test_thread_counts[t]);
            }
        }
        cf_decode_result_free(&r1);
        cf_decode_result_free(&r2);
    }
    CHECK(cf_threads_init(threads) == 0);
    cf_ctx_free(ctx);
    cf_transformer_free(m);
}

/* Bad input is an error (not a crash), and the caller's ctx flags come back as they were. */
TEST(decode_rejects_bad_input_and_restores_ctx) {
    cf_model_config c = tiny_model_config(CF_ATTN_MHA);
    cf_transformer *m = cf_transformer_new(&c, 1);
    cf_ctx *ctx = cf_ctx_new(1);
    ctx->training = true;
    cf_ctx_set_grad(ctx, true);
    int32_t src[NB * NS];
    make_sources(src, four_lens, NB, NS, c.src_vocab, 7);
    cf_decode_result r = {0};
    cf_decode_opts o = opts(2, 0.6, 1.5, 3);
    CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &o, &r) == 0 && r.n == NB);
    CHECK(ctx->training && ctx->grad_enabled);
    const int32_t zero_len[NB] = {6, 0, 4, 5};
    CHECK(cf_decode_batch(m, ctx, src, zero_len, NB, NS, &o, &r) == -1 && r.n == 0);
    src[3] = 11;
    CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &o, &r) == -1);
    CHECK(strstr(cf_error_message(), "source vocabulary") != NULL);
    src[3] = 4;
    o.eos_id = 99;
    CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &o, &r) == -1);
    o.eos_id = CF_PAD_ID;
    CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &o, &r) == -1);
    CHECK(cf_decode_batch(m, ctx, src, four_lens, 0, NS, &(cf_decode_opts){.beam = 1, .eos_id = 3, .bos_id = 2},
                          &r) == 0 && r.n == 0);
    cf_decode_result_free(&r);
    cf_ctx_free(ctx);
    cf_transformer_free(m);
}

/* The decoder's weights packed for few-row products (the default where AVX-512 is built in) and
 * the tiled BLAS products (no_pack) round differently but compute the same model: on models large
 * enough for several panels and row tiles, every attention variant and option (the fused in-place
 * projections and the general path: RoPE, QK-norm, relative positions, MLA; SwiGLU, MoE with a
 * shared expert), greedy and beam 4 give the same tokens and log-probs within float rounding,
 * and no product of a step missed its packed weight (ctx->packed_misses). */
TEST(decode_packed_equals_blas_products) {
    typedef struct { cf_attn_kind kind; cf_pos_kind pos; bool qk_norm, swiglu, moe; } variant;
    const variant vs[] = {
        {CF_ATTN_MHA, CF_POS_SINUSOIDAL, false, false, false}, /* fused projections, in place */
        {CF_ATTN_GQA, CF_POS_ROPE, false, true, false},
        {CF_ATTN_MQA, CF_POS_RELATIVE, true, false, false},
        {CF_ATTN_MLA, CF_POS_SINUSOIDAL, false, false, false},
        {CF_ATTN_MHA, CF_POS_LEARNED, false, false, true},
    };
    for (size_t vi = 0; vi < sizeof vs / sizeof vs[0]; vi++) {
        const variant *v = &vs[vi];
        cf_model_config c = random_config(v->kind);
        c.src_vocab = c.tgt_vocab = 300;
        c.d_model = 64;
        c.n_heads = 4;
        c.n_kv_heads = v->kind == CF_ATTN_GQA ? 2 : v->kind == CF_ATTN_MQA ? 1 : 4;
        c.kv_lora_rank = 24;
        c.q_lora_rank = v->kind == CF_ATTN_MLA ? 20 : 0;
        c.qk_nope_dim = 8;
        c.qk_rope_dim = 8;
        c.v_head_dim = 12;
        c.d_ff = 136; /* not a multiple of the 64-column panels */
        c.enc_layers = c.dec_layers = 2;
        c.max_len = 32;
        c.pos_encoding = v->pos;
        c.rel_clip = 4;
        c.qk_norm = v->qk_norm;
        if (v->swiglu) c.activation = CF_FFN_SWIGLU;
        if (v->moe) {
            c.num_experts = 4;
            c.num_experts_per_token = 2;
            c.n_shared_experts = 1;
        }
        cf_transformer *m = cf_transformer_new(&c, 20 + vi);
        CHECK_MSG(m != NULL, "variant %zu: %s", vi, cf_error_message());
        if (!m) continue;
        cf_ctx *ctx = eval_ctx();
        int32_t src[NB * NS];
        make_sources(src, four_lens, NB, NS, c.src_vocab, 30 + vi);
        for (int64_t beam = 1; beam <= 4; beam += 3) {
            cf_decode_opts o = opts(beam, 0.6, 1.5, 4);
            cf_decode_result rp = {0}, rb = {0};
            ctx->packed_misses = 0;
            CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &o, &rp) == 0);
            CHECK_MSG(ctx->packed_misses == 0, "variant %zu beam %lld: %lld products of a step not packed", vi,
                      (long long)beam, (long long)ctx->packed_misses);
            o.no_pack = true;
            CHECK(cf_decode_batch(m, ctx, src, four_lens, NB, NS, &o, &rb) == 0);
            CHECK(ctx->packed == NULL);
            for (int64_t i = 0; i < NB && rp.n == NB && rb.n == NB; i++) {
                CHECK_MSG(same_tokens(&rp, i, &rb, i), "variant %zu beam %lld sentence %lld: packed and BLAS tokens differ",
                          vi, (long long)beam, (long long)i);
                CHECK_NEAR(rp.logprob[i], rb.logprob[i], 1e-4 * (1 + fabs(rb.logprob[i])));
            }
            cf_decode_result_free(&rp);
            cf_decode_result_free(&rb);
        }
        cf_ctx_free(ctx);
        cf_transformer_free(m);
    }
}
