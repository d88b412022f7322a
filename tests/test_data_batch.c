/* tests/test_data_batch.c - token-budget batches: coverage per epoch, budget, teacher forcing
 * layout, determinism and exact resume across an epoch boundary. */
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "data/batch.h"
#include "tests/test.h"

/* 300 pairs of random lengths 1..40 (target), 1..30 (source); ids encode (pair, position). */
static cf_corpus *random_corpus(int n) {
    cf_corpus *c = cf_corpus_new();
    cf_rng r = cf_rng_init(5, CF_RNG_STREAM_TEST);
    int32_t x[64], y[64];
    for (int i = 0; i < n; i++) {
        int ls = 1 + (int)cf_rng_below(&r, 30), lt = 1 + (int)cf_rng_below(&r, 40);
        if (i == 7) lt = 60; /* one long pair: it exceeds a small budget on its own */
        for (int j = 0; j < ls; j++) x[j] = 10 + (i * 7 + j) % 1000;
        for (int j = 0; j < lt; j++) y[j] = 10 + (i * 13 + j) % 1000;
        cf_corpus_add(c, x, ls, y, lt);
    }
    return c;
}

TEST(batch_layout_and_budget) {
    cf_corpus *c = random_corpus(300);
    cf_batcher *it = cf_batcher_new(c, &(cf_batch_opts){.batch_tokens = 200, .seed = 1, .shuffle = true});
    CHECK(it != NULL);
    int64_t nb = cf_batcher_n_batches(it), pairs = 0, padded = 0, real = 0;
    bool budget_ok = true, layout_ok = true;
    for (int64_t k = 0; k < nb; k++) {
        const cf_batch *b = cf_batcher_get(it, k);
        int64_t L = b->S > b->T ? b->S : b->T;
        if (b->n * L > 200 && b->n != 1) budget_ok = false;
        pairs += b->n;
        padded += b->n * (b->S + b->T);
        int64_t ntgt = 0;
        for (int64_t r = 0; r < b->n; r++) {
            int64_t p = b->pair[r], ls = cf_corpus_src_len(c, p), lt = cf_corpus_tgt_len(c, p);
            const int32_t *src = b->src + r * b->S, *ti = b->tgt_in + r * b->T, *to = b->tgt_out + r * b->T;
            layout_ok &= memcmp(src, cf_corpus_src(c, p), (size_t)ls * 4) == 0 && src[ls] == CF_EOS_ID;
            layout_ok &= ti[0] == CF_BOS_ID && memcmp(ti + 1, cf_corpus_tgt(c, p), (size_t)lt * 4) == 0;
            layout_ok &= memcmp(to, cf_corpus_tgt(c, p), (size_t)lt * 4) == 0 && to[lt] == CF_EOS_ID;
            for (int64_t j = ls + 1; j < b->S; j++) layout_ok &= src[j] == CF_PAD_ID && !b->src_mask[r * b->S + j];
            for (int64_t j = lt + 1; j < b->T; j++) layout_ok &= ti[j] == CF_PAD_ID && to[j] == CF_PAD_ID && !b->tgt_mask[r * b->T + j];
            layout_ok &= b->src_mask[r * b->S + ls] == 1 && b->tgt_mask[r * b->T + lt] == 1;
            layout_ok &= b->src_len[r] == ls + 1 && b->tgt_len[r] == lt + 1;
            ntgt += lt + 1;
            real += ls + lt + 2;
        }
        layout_ok &= b->n_tgt_tokens == ntgt;
    }
    CHECK(budget_ok);
    CHECK(layout_ok);
    CHECK(pairs == 300);
    CHECK_MSG(real * 10 > padded * 7, "%lld of %lld padded tokens are real", (long long)real, (long long)padded);
    /* max_pairs caps rows */
    cf_batcher *it2 = cf_batcher_new(c, &(cf_batch_opts){.batch_tokens = 100000, .max_pairs = 16});
    CHECK(cf_batcher_n_batches(it2) == (300 + 15) / 16);
    cf_batcher_free(it2);
    CHECK(cf_batcher_new(c, &(cf_batch_opts){.batch_tokens = 0}) == NULL);
    cf_batcher_free(it);
    cf_corpus_free(c);
}

TEST(batch_every_pair_once_per_epoch) {
    cf_corpus *c = random_corpus(300);
    cf_batcher *it = cf_batcher_new(c, &(cf_batch_opts){.batch_tokens = 256, .seed = 3, .shuffle = true});
    int64_t nb = cf_batcher_n_batches(it);
    int *seen = calloc(300, sizeof *seen);
    int64_t first_pair[2] = {-1, -1};
    const int32_t *buf = NULL;
    bool same_buffers = true;
    for (int epoch = 0; epoch < 2; epoch++) {
        memset(seen, 0, 300 * sizeof *seen);
        for (int64_t k = 0; k < nb; k++) {
            const cf_batch *b = cf_batcher_next(it);
            if (k == 0) first_pair[epoch] = b->pair[0];
            if (!buf) buf = b->src;
            same_buffers &= b->src == buf; /* reused, not reallocated */
            for (int64_t r = 0; r < b->n; r++) seen[b->pair[r]]++;
        }
        int bad = 0;
        for (int i = 0; i < 300; i++) bad += seen[i] != 1;
        CHECK_MSG(bad == 0, "epoch %d: %d pairs not seen exactly once", epoch, bad);
        cf_batch_state s = cf_batcher_state(it);
        CHECK(s.epoch == (uint64_t)epoch && s.index == (uint64_t)nb);
    }
    CHECK(same_buffers);
    CHECK(first_pair[0] != first_pair[1]); /* reshuffled (the chance of equal first batches is ~1/nb) */
    free(seen);
    cf_batcher_free(it);
    cf_corpus_free(c);
}

/* The pair indices of the next k batches, flattened. */
static int64_t take(cf_batcher *it, int k, int64_t *out) {
    int64_t n = 0;
    for (int i = 0; i < k; i++) {
        const cf_batch *b = cf_batcher_next(it);
        for (int64_t r = 0; r < b->n; r++) out[n++] = b->pair[r] * 1000 + b->S;
    }
    return n;
}

TEST(batch_resume_continues_identical_sequence) {
    cf_corpus *c = random_corpus(300);
    cf_batch_opts o = {.batch_tokens = 256, .seed = 42, .shuffle = true};
    cf_batcher *a = cf_batcher_new(c, &o);
    int64_t nb = cf_batcher_n_batches(a);
    CHECK(nb > 10);
    int64_t *x = malloc(4 * 300 * sizeof *x), *y = malloc(4 * 300 * sizeof *y);
    take(a, (int)nb - 3, x); /* stop 3 batches before the end of epoch 0 */
    cf_batch_state s = cf_batcher_state(a);
    int64_t nx = take(a, 8, x); /* crosses into epoch 1 */
    /* a fresh iterator built with another seed adopts the saved one */
    cf_batcher *b = cf_batcher_new(c, &(cf_batch_opts){.batch_tokens = 256, .seed = 7, .shuffle = true});
    CHECK(cf_batcher_set_state(b, &s) == 0);
    int64_t ny = take(b, 8, y);
    CHECK(nx == ny && memcmp(x, y, (size_t)nx * sizeof *x) == 0);
    cf_batch_state sa = cf_batcher_state(a), sb = cf_batcher_state(b);
    CHECK(memcmp(&sa, &sb, sizeof sa) == 0 && sa.epoch == 1 && sa.index == 5);
    /* deterministic: the same seed gives the same sequence from scratch; another seed does not */
    cf_batcher *c1 = cf_batcher_new(c, &o), *c2 = cf_batcher_new(c, &o);
    o.seed = 43;
    cf_batcher *c3 = cf_batcher_new(c, &o);
    nx = take(c1, 20, x);
    ny = take(c2, 20, y);
    CHECK(nx == ny && memcmp(x, y, (size_t)nx * sizeof *x) == 0);
    ny = take(c3, 20, y);
    CHECK(nx != ny || memcmp(x, y, (size_t)nx * sizeof *x) != 0);
    /* bad states are refused with a message */
    cf_batch_state bad = s;
    bad.index = (uint64_t)nb + 1;
    CHECK(cf_batcher_set_state(b, &bad) == -1 && strstr(cf_error_message(), "index"));
    bad = s;
    bad.rng_counter += 1;
    CHECK(cf_batcher_set_state(b, &bad) == -1 && strstr(cf_error_message(), "counter"));
    free(x);
    free(y);
    cf_batcher_free(a);
    cf_batcher_free(b);
    cf_batcher_free(c1);
    cf_batcher_free(c2);
    cf_batcher_free(c3);
    cf_corpus_free(c);
}

TEST(batch_unshuffled_is_length_order_and_empty_corpus) {
    cf_corpus *c = random_corpus(100);
    cf_batcher *it = cf_batcher_new(c, &(cf_batch_opts){.batch_tokens = 128});
    int64_t last_s = 0;
    bool sorted = true;
    for (int64_t k = 0; k < cf_batcher_n_batches(it); k++) {
        const cf_batch *b = cf_batcher_next(it);
        sorted &= b->S >= last_s;
        last_s = b->S;
    }
    CHECK(sorted);
    cf_batcher_free(it);
    cf_corpus_free(c);
    cf_corpus *e = cf_corpus_new();
    it = cf_batcher_new(e, &(cf_batch_opts){.batch_tokens = 128});
    CHECK(cf_batcher_n_batches(it) == 0 && cf_batcher_next(it) == NULL);
    cf_batcher_free(it);
    cf_corpus_free(e);
}
