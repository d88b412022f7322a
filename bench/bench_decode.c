/* bench/bench_decode.c - time greedy and beam-4 decoding with the KV cache.
 *
 *     int bench_decode(void);   // called from bench/bench_main.c; returns 0, 1 on error
 *
 * A random bench-tiny model (d 128, 4 heads, 2+2 layers, d_ff 512, vocab 2000, pre-LN, tied
 * embeddings) decodes 64 random source sentences of 16..24 tokens, max output 1.2 * src + 10,
 * in one batch of 64 and in batches of 16. A random tied model rarely emits <eos> (it tends to
 * repeat its input token), so most outputs run to their length limit: the worst case per sentence.
 * Tokens/s counts generated tokens including each final <eos>. Medians over the repetitions; uses
 * the thread count the caller set with cf_threads_init.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "core/rng.h"
#include "core/threads.h"
#include "translate/decode.h"

int bench_decode(void);

enum { BD_SENTENCES = 64, BD_SRC_MAX = 24, BD_REPS = 5 };

/* Decode all sentences in batches of `batch`; returns seconds, *tokens the generated tokens. */
static double decode_all(const cf_transformer *m, cf_ctx *ctx, const int32_t *src, const int32_t *lens,
                         int64_t batch, const cf_decode_opts *o, cf_decode_result *r, int64_t *tokens) {
    double t0 = cf_now_s();
    *tokens = 0;
    cf_decode_pack(m, r); /* weights packed once for the set, as cf_translate_tokens does */
    for (int64_t s = 0; s < BD_SENTENCES; s += batch) {
        int64_t n = BD_SENTENCES - s < batch ? BD_SENTENCES - s : batch, S = 0;
        for (int64_t i = 0; i < n; i++) S = lens[s + i] > S ? lens[s + i] : S;
        /* the rows are stored padded to BD_SRC_MAX; repack to the batch's own S */
        int32_t packed[BD_SENTENCES * BD_SRC_MAX];
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < S; j++) packed[i * S + j] = src[(s + i) * BD_SRC_MAX + j];
        if (cf_decode_batch(m, ctx, packed, lens + s, n, S, o, r) != 0) {
            cf_decode_unpack(r);
            return -1;
        }
        *tokens += r->offsets[r->n] + r->n;
    }
    cf_decode_unpack(r);
    return cf_now_s() - t0;
}

int bench_decode(void) {
    cf_model_config c = cf_model_config_default();
    c.src_vocab = c.tgt_vocab = 2000;
    c.d_model = 128;
    c.n_heads = 4;
    c.enc_layers = c.dec_layers = 2;
    c.d_ff = 512;
    c.dropout = 0;
    cf_transformer *m = cf_transformer_new(&c, 1);
    if (!m) {
        fprintf(stderr, "bench_decode: %s\n", cf_error_message());
        return 1;
    }
    int32_t src[BD_SENTENCES * BD_SRC_MAX], lens[BD_SENTENCES];
    cf_rng rng = cf_rng_init(7, CF_RNG_STREAM_TEST);
    for (int64_t i = 0; i < BD_SENTENCES; i++) {
        lens[i] = 16 + (int32_t)cf_rng_below(&rng, 9);
        for (int64_t j = 0; j < BD_SRC_MAX; j++)
            src[i * BD_SRC_MAX + j] = j < lens[i] ? 4 + (int32_t)cf_rng_below(&rng, 1996) : CF_PAD_ID;
    }
    cf_ctx *ctx = cf_ctx_new(1);
    cf_decode_result r = {0};
    printf("decode: bench-tiny model, %d sentences of 16..24 tokens, max output 1.2*src+10, %d threads\n",
           BD_SENTENCES, cf_threads_count());
    const int64_t beams[2] = {1, 4}, batches[2] = {64, 16};
    int rc = 0;
    for (int bi = 0; bi < 2 && rc == 0; bi++)
        for (int bb = 0; bb < 2 && rc == 0; bb++) {
            cf_decode_opts o = cf_decode_opts_default();
            o.beam = beams[bi];
            double secs[BD_REPS];
            int64_t tokens = 0;
            for (int rep = -1; rep < BD_REPS; rep++) { /* one warm-up sizes the arena */
                double s = decode_all(m, ctx, src, lens, batches[bb], &o, &r, &tokens);
                if (s < 0) {
                    fprintf(stderr, "bench_decode: %s\n", cf_error_message());
                    rc = 1;
                    break;
                }
                if (rep >= 0) secs[rep] = s;
            }
            if (rc) break;
            double t = cf_median(secs, BD_REPS);
            printf("decode %-7s batch %2lld: %7.1f ms  %7.1f sentences/s  %8.0f tokens/s  (%.1f tokens/sentence)\n",
                   beams[bi] == 1 ? "greedy" : "beam 4", (long long)batches[bb], t * 1e3, BD_SENTENCES / t,
                   (double)tokens / t, (double)tokens / BD_SENTENCES);
        }
    cf_decode_result_free(&r);
    cf_ctx_free(ctx);
    cf_transformer_free(m);
    return rc;
}
