/* translate/decode.h - greedy and beam-search decoding with the KV cache, batched.
 *
 * Usage (validation BLEU, the CLI's translate):
 *     cf_decode_opts o = cf_decode_opts_default();                    // train/: cf_config_decode_opts
 *     o.beam = 4;
 *     cf_decode_result r = {0};                                       // reused across calls
 *     for each batch of B source sentences (padded to S with <pad>, lengths src_lens):
 *         if (cf_decode_batch(m, ctx, src, src_lens, B, S, &o, &r) != 0) die(cf_error_message());
 *         for (int64_t i = 0; i < r.n; i++)
 *             emit(r.tokens + r.offsets[i], cf_decode_result_len(&r, i));   // no <bos>/<eos>
 *     cf_decode_result_free(&r);
 *
 * Conventions (the same for greedy and beam search, so that beam 1 == greedy exactly):
 *   - Output length: sentence i gets at most L_i = min(floor(a * src_lens[i] + b), model.max_len - 1)
 *     tokens before its <eos> (floor with a 1e-9 slack so that 1.15 * 20 gives 23, clamped at 0).
 *     The decoder reads <bos> y_1 .. y_L at positions 0..L, the training layout; when a hypothesis
 *     already holds L_i tokens, only <eos> is allowed, so every hypothesis ends with <eos> and its
 *     score includes the model's log-probability of ending there.
 *   - <pad> and <bos> are never generated (their log-probability is set to -inf after the
 *     log-softmax, which is taken over the whole vocabulary, so scores are true model log-probs).
 *   - logprob = sum of log p(token) over the output tokens and the final <eos>, in double.
 *   - score = logprob / lp(len), GNMT length penalty lp(len) = ((5 + len) / 6)^alpha, where len
 *     counts the output tokens INCLUDING the final <eos> (alpha 0: score = logprob).
 *   - Beam search (beam K): candidates of a sentence are ranked by cumulative logprob, ties by lower
 *     token id, then by lower beam index. An <eos> candidate ranked among the first K becomes a
 *     finished hypothesis (scored as above); the best non-<eos> candidates (up to K) stay live. At
 *     the first step only beam 0 is live (no duplicate beams). A sentence stops, fairseq-style, once
 *     it holds K finished hypotheses, when no live beam is left, or when its beams reach L_i tokens
 *     (then all of them are closed with <eos>). The result is its finished hypothesis with the
 *     highest score (ties: the one finished first). Greedy is the beam-1 case with a lighter loop.
 *   - Deterministic: the same model, inputs and thread count give the same outputs.
 *
 * Memory and speed (translate/decode.c has the details): the encoder runs once per batch and its
 * output is read by the first step only, which fills the cross-attention caches; the context's
 * arena is reset after every decoder step, so memory does not grow with the output length; every
 * host buffer and cache lives in the result's work area and is reused by the next call, so once the
 * largest batch has been seen decoding allocates nothing, per step or per call. A sentence that is
 * done leaves the batch before the next step (its rows are dropped from every cache), beam search
 * reorders only the self-attention caches (the K rows of a sentence share its cross-attention
 * memory) and, in AVX-512 builds, the model's weights are packed once per call (once per corpus
 * in cf_translate_tokens) for the products of the encoder and of the steps (core/gemm.h; a copy
 * the size of the weights; opts.no_pack: the tiled BLAS products instead, the same outputs up to
 * float rounding).
 */
#ifndef CF_TRANSLATE_DECODE_H
#define CF_TRANSLATE_DECODE_H

#include "data/tokenizer.h"
#include "nn/transformer.h"

typedef struct cf_decode_opts {
    int64_t beam;               /* 1: greedy */
    double length_penalty;      /* GNMT alpha; 0: plain log-prob */
    double max_len_a;           /* max output tokens = floor(a * source length + b) ... */
    int64_t max_len_b;          /* ... capped at model.max_len - 1 */
    int32_t bos_id, eos_id, pad_id;
    bool no_pack;               /* products through the tiled BLAS GEMM instead of the model's weights
                                 * prepacked for them (cf_decode_pack; tests, benchmarks) */
} cf_decode_opts;

/* The searches' buffers and caches, kept across calls (translate/decode.c). */
typedef struct cf_decode_work cf_decode_work;

/* The result of one call, B sentences. Zero-initialise it once; each call reuses (and grows) the
 * buffers, including the search's own (work); cf_decode_result_free releases them. */
typedef struct cf_decode_result {
    int64_t n;                  /* sentences in the last call */
    int32_t *tokens;            /* [offsets[n]] all outputs concatenated, without <bos>/<eos> */
    int64_t *offsets;           /* [n + 1] sentence i is tokens[offsets[i] .. offsets[i + 1]) */
    double *logprob;            /* [n] sum of log-probs of the output tokens and the final <eos> */
    double *score;              /* [n] logprob / lp(len), len = output tokens + 1 */
    int64_t cap_n, cap_tokens;  /* allocated sizes */
    cf_decode_work *work;       /* decode state and host buffers of the searches, reused by the next call */
} cf_decode_result;

static inline int64_t cf_decode_result_len(const cf_decode_result *r, int64_t i) {
    return r->offsets[i + 1] - r->offsets[i];
}

/* beam 1, alpha 0.6, a 1.2, b 10 and the fixed special ids. */
cf_decode_opts cf_decode_opts_default(void);
/* GNMT length penalty ((5 + len) / 6)^alpha. */
double cf_length_penalty(int64_t len, double alpha);
/* Largest number of output tokens (without <eos>) for a source of src_len tokens. */
int64_t cf_decode_max_output(const cf_transformer *m, const cf_decode_opts *o, int64_t src_len);

/* Decode B source sentences src [B, S] (row i valid up to src_lens[i], 1 <= src_lens[i] <= S).
 * Dispatches to greedy (beam <= 1) or beam search. ctx is used as scratch: it is reset
 * (cf_ctx_reset) between steps and before returning, so it must not hold tensors the caller still
 * needs; its grad mode and training flag are switched off during the call and restored after.
 * Returns 0, or -1 with a message (bad options or lengths); out is then left with n = 0. */
int cf_decode_batch(const cf_transformer *m, cf_ctx *ctx, const int32_t *src, const int32_t *src_lens, int64_t B,
                    int64_t S, const cf_decode_opts *o, cf_decode_result *out);
/* The two searches themselves (cf_decode_batch picks one); cf_decode_beam ignores o->beam's
 * dispatch and runs beam search with K = max(o->beam, 1), so beam 1 can be compared to greedy. */
int cf_decode_greedy(const cf_transformer *m, cf_ctx *ctx, const int32_t *src, const int32_t *src_lens, int64_t B,
                     int64_t S, const cf_decode_opts *o, cf_decode_result *out);
int cf_decode_beam(const cf_transformer *m, cf_ctx *ctx, const int32_t *src, const int32_t *src_lens, int64_t B,
                   int64_t S, const cf_decode_opts *o, cf_decode_result *out);

/* A series of cf_decode_batch calls on one model whose weights do not change in between
 * (translating a corpus): cf_decode_pack packs the model's weights for the products once
 * into r's work area, and the calls use that copy until cf_decode_unpack. Without it every call
 * packs them again, so a model updated between calls (training) is always decoded as it is now. */
void cf_decode_pack(const cf_transformer *m, cf_decode_result *r);
void cf_decode_unpack(cf_decode_result *r);
/* Size r for n sentences and n_tokens tokens in all (contents not kept; n set, offsets[0] = 0). */
void cf_decode_result_reserve(cf_decode_result *r, int64_t n, int64_t n_tokens);
void cf_decode_result_free(cf_decode_result *r);

#endif
