/* data/batch.h - token-budget batches for training and evaluation, with exact resume.
 *
 * Usage:
 *     cf_batcher *it = cf_batcher_new(corpus, &(cf_batch_opts){.batch_tokens = 4096, .seed = 1,
 *                                                              .shuffle = true});
 *     for (int step = 0; step < max_steps; step++) {
 *         const cf_batch *b = cf_batcher_next(it);   // endless: epochs follow one another
 *         // b->src [n, S], b->tgt_in [n, T], b->tgt_out [n, T], padded with CF_PAD_ID
 *     }
 *     cf_batch_state st = cf_batcher_state(it);      // five integers for the checkpoint
 *     cf_batcher_set_state(it2, &st);                // it2 now yields what it would have yielded
 *     for (int64_t i = 0; i < cf_batcher_n_batches(it); i++) eval(cf_batcher_get(it, i));
 *     cf_batcher_free(it);
 *
 * Pairs are sorted by (source length, target length) and cut greedily into batches whose padded
 * size n * max(S, T) stays within batch_tokens (fairseq's max_tokens); a pair longer than the
 * budget gets a batch of its own. The batches are fixed; each epoch visits all of them once in an
 * order shuffled by a pure function of (seed, epoch), so a restored (epoch, index) continues the
 * exact sequence. Sequences: src = x <eos>, tgt_in = <bos> y, tgt_out = y <eos> (teacher forcing).
 * The batch buffers belong to the iterator and are reused: no allocation after cf_batcher_new.
 */
#ifndef CF_BATCH_H
#define CF_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "data/corpus.h"

typedef struct cf_batch_opts {
    int64_t batch_tokens;  /* padded tokens per batch: n * max(S, T) <= batch_tokens */
    int64_t max_pairs;     /* and at most this many pairs (0 = no limit) */
    uint64_t seed;
    bool shuffle;          /* shuffle the batch order every epoch (training) */
} cf_batch_opts;

typedef struct cf_batch {
    int64_t n, S, T;       /* pairs, padded source length, padded target length */
    int32_t *src;          /* [n, S]  x <eos> <pad>... */
    int32_t *tgt_in;       /* [n, T]  <bos> y <pad>... */
    int32_t *tgt_out;      /* [n, T]  y <eos> <pad>... */
    uint8_t *src_mask;     /* [n, S]  1 = token, 0 = padding */
    uint8_t *tgt_mask;     /* [n, T] */
    int32_t *src_len;      /* [n] tokens incl. <eos> */
    int32_t *tgt_len;      /* [n] tokens of tgt_out incl. <eos> (= of tgt_in incl. <bos>) */
    int64_t *pair;         /* [n] index of each row's pair in the corpus */
    int64_t n_src_tokens;  /* non-pad tokens */
    int64_t n_tgt_tokens;  /* non-pad target tokens: what the loss is averaged over */
} cf_batch;

/* The iterator's position: the next batch is number `index` of epoch `epoch`'s order; the RNG
 * fields are the data generator (seed, stream, counter) after shuffling that epoch. */
typedef struct cf_batch_state {
    uint64_t epoch, index;
    uint64_t rng_seed, rng_stream, rng_counter;
} cf_batch_state;

typedef struct cf_batcher cf_batcher;

/* NULL + error if batch_tokens < 1. The corpus must outlive the iterator. */
cf_batcher *cf_batcher_new(const cf_corpus *c, const cf_batch_opts *o);
void cf_batcher_free(cf_batcher *it);
int64_t cf_batcher_n_batches(const cf_batcher *it);
/* Next batch in training order (NULL only for an empty corpus). */
const cf_batch *cf_batcher_next(cf_batcher *it);
/* Batch i in length order, 0 <= i < n_batches (evaluation); does not move the position. */
const cf_batch *cf_batcher_get(cf_batcher *it, int64_t i);
cf_batch_state cf_batcher_state(const cf_batcher *it);
/* Restore a position; -1 + error if it cannot belong to this corpus and these options. */
int cf_batcher_set_state(cf_batcher *it, const cf_batch_state *s);

#endif
