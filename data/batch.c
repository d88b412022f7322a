/* data/batch.c - token-budget batching, per-epoch shuffling and resume (see data/batch.h). */
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "data/batch.h"

struct cf_batcher {
    const cf_corpus *c;
    cf_batch_opts o;
    int64_t *sorted;            /* [c->n] pair indices by (src len, tgt len, index) */
    int64_t *start;             /* [n_batches + 1]: batch k is sorted[start[k] .. start[k + 1]) */
    int64_t n_batches;
    int64_t *order;             /* [n_batches] this epoch's batch order */
    uint64_t epoch, index;
    cf_rng rng;                 /* after shuffling `epoch` */
    cf_batch b;                 /* buffers sized for the largest batch */
};

/* Each epoch draws from its own block of 2^32 counter values of the data stream, so the order of
 * epoch e depends only on (seed, e), not on how many numbers earlier epochs happened to use. */
static cf_rng epoch_rng(uint64_t seed, uint64_t epoch) {
    cf_rng r = cf_rng_init(seed, CF_RNG_STREAM_DATA);
    r.counter = epoch << 32;
    return r;
}

static void shuffle_epoch(cf_batcher *it) {
    for (int64_t k = 0; k < it->n_batches; k++) it->order[k] = k;
    it->rng = epoch_rng(it->o.seed, it->epoch);
    if (!it->o.shuffle) return;
    for (int64_t k = it->n_batches - 1; k > 0; k--) { /* Fisher-Yates */
        int64_t j = (int64_t)cf_rng_below(&it->rng, (uint64_t)k + 1);
        int64_t t = it->order[k];
        it->order[k] = it->order[j];
        it->order[j] = t;
    }
}

static const cf_corpus *sort_corpus; /* qsort has no context argument; set just around the call */

static int by_length(const void *pa, const void *pb) {
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    int64_t d = cf_corpus_src_len(sort_corpus, a) - cf_corpus_src_len(sort_corpus, b);
    if (!d) d = cf_corpus_tgt_len(sort_corpus, a) - cf_corpus_tgt_len(sort_corpus, b);
    if (!d) d = a - b;
    return d < 0 ? -1 : d > 0;
}

cf_batcher *cf_batcher_new(const cf_corpus *c, const cf_batch_opts *o) {
    if (o->batch_tokens < 1) {
        cf_error_set("batching: batch_tokens must be positive, got %lld", (long long)o->batch_tokens);
        return NULL;
    }
    cf_batcher *it = cf_xcalloc(1, sizeof *it);
    it->c = c;
    it->o = *o;
    int64_t n = c->n;
    it->sorted = cf_xmalloc((size_t)(n ? n : 1) * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) it->sorted[i] = i;
    sort_corpus = c;
    qsort(it->sorted, (size_t)n, sizeof(int64_t), by_length);
    sort_corpus = NULL;
    /* Greedy cut; +1 for <eos> on the source and for <bos>/<eos> on the target. */
    it->start = cf_xmalloc((size_t)(n + 1) * sizeof(int64_t));
    int64_t max_rows = 1, max_src = 1, max_tgt = 1, S = 0, T = 0, rows = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t p = it->sorted[i];
        int64_t s = cf_corpus_src_len(c, p) + 1, t = cf_corpus_tgt_len(c, p) + 1;
        int64_t S2 = s > S ? s : S, T2 = t > T ? t : T, L = S2 > T2 ? S2 : T2;
        bool fits = rows > 0 && (rows + 1) * L <= o->batch_tokens && (o->max_pairs <= 0 || rows < o->max_pairs);
        if (!fits) {
            if (rows) {
                if (rows * S > max_src) max_src = rows * S;
                if (rows * T > max_tgt) max_tgt = rows * T;
                if (rows > max_rows) max_rows = rows;
            }
            it->start[it->n_batches++] = i;
            rows = 0, S = s, T = t;
        } else {
            S = S2, T = T2;
        }
        rows++;
    }
    if (rows) {
        if (rows * S > max_src) max_src = rows * S;
        if (rows * T > max_tgt) max_tgt = rows * T;
        if (rows > max_rows) max_rows = rows;
    }
    it->start[it->n_batches] = n;
    it->order = cf_xmalloc((size_t)(it->n_batches ? it->n_batches : 1) * sizeof(int64_t));
    cf_batch *b = &it->b;
    b->src = cf_xmalloc((size_t)max_src * sizeof(int32_t));
    b->src_mask = cf_xmalloc((size_t)max_src);
    b->tgt_in = cf_xmalloc((size_t)max_tgt * sizeof(int32_t));
    b->tgt_out = cf_xmalloc((size_t)max_tgt * sizeof(int32_t));
    b->tgt_mask = cf_xmalloc((size_t)max_tgt);
    b->src_len = cf_xmalloc((size_t)max_rows * sizeof(int32_t));
    b->tgt_len = cf_xmalloc((size_t)max_rows * sizeof(int32_t));
    b->pair = cf_xmalloc((size_t)max_rows * sizeof(int64_t));
    shuffle_epoch(it);
    return it;
}

void cf_batcher_free(cf_batcher *it) {
    if (!it) return;
    free(it->sorted);
    free(it->start);
    free(it->order);
    free(it->b.src);
    free(it->b.src_mask);
    free(it->b.tgt_in);
    free(it->b.tgt_out);
    free(it->b.tgt_mask);
    free(it->b.src_len);
    free(it->b.tgt_len);
    free(it->b.pair);
    free(it);
}

int64_t cf_batcher_n_batches(const cf_batcher *it) { return it->n_batches; }

static const cf_batch *fill(cf_batcher *it, int64_t k) {
    const cf_corpus *c = it->c;
    cf_batch *b = &it->b;
    int64_t first = it->start[k], n = it->start[k + 1] - first;
    int64_t S = 0, T = 0;
    for (int64_t r = 0; r < n; r++) {
        int64_t p = it->sorted[first + r];
        int64_t s = cf_corpus_src_len(c, p) + 1, t = cf_corpus_tgt_len(c, p) + 1;
        if (s > S) S = s;
        if (t > T) T = t;
    }
    b->n = n, b->S = S, b->T = T;
    b->n_src_tokens = b->n_tgt_tokens = 0;
    for (int64_t r = 0; r < n; r++) {
        int64_t p = it->sorted[first + r];
        int64_t ls = cf_corpus_src_len(c, p), lt = cf_corpus_tgt_len(c, p);
        const int32_t *x = cf_corpus_src(c, p), *y = cf_corpus_tgt(c, p);
        int32_t *src = b->src + r * S, *ti = b->tgt_in + r * T, *to = b->tgt_out + r * T;
        memcpy(src, x, (size_t)ls * sizeof(int32_t));
        src[ls] = CF_EOS_ID;
        for (int64_t j = ls + 1; j < S; j++) src[j] = CF_PAD_ID;
        ti[0] = CF_BOS_ID;
        memcpy(ti + 1, y, (size_t)lt * sizeof(int32_t));
        memcpy(to, y, (size_t)lt * sizeof(int32_t));
        to[lt] = CF_EOS_ID;
        for (int64_t j = lt + 1; j < T; j++) ti[j] = to[j] = CF_PAD_ID;
        memset(b->src_mask + r * S, 1, (size_t)ls + 1);
        memset(b->src_mask + r * S + ls + 1, 0, (size_t)(S - ls - 1));
        memset(b->tgt_mask + r * T, 1, (size_t)lt + 1);
        memset(b->tgt_mask + r * T + lt + 1, 0, (size_t)(T - lt - 1));
        b->src_len[r] = (int32_t)(ls + 1);
        b->tgt_len[r] = (int32_t)(lt + 1);
        b->pair[r] = p;
        b->n_src_tokens += ls + 1;
        b->n_tgt_tokens += lt + 1;
    }
    return b;
}

const cf_batch *cf_batcher_next(cf_batcher *it) {
    if (it->n_batches == 0) return NULL;
    if (it->index >= (uint64_t)it->n_batches) {
        it->epoch++;
        it->index = 0;
        shuffle_epoch(it);
    }
    return fill(it, it->order[it->index++]);
}

const cf_batch *cf_batcher_get(cf_batcher *it, int64_t i) {
    CF_ASSERT(i >= 0 && i < it->n_batches, "batch %lld of %lld", (long long)i, (long long)it->n_batches);
    return fill(it, i);
}

cf_batch_state cf_batcher_state(const cf_batcher *it) {
    return (cf_batch_state){it->epoch, it->index, it->rng.seed, it->rng.stream, it->rng.counter};
}

int cf_batcher_set_state(cf_batcher *it, const cf_batch_state *s) {
    if (s->index > (uint64_t)it->n_batches) {
        cf_error_set("batch state: index %llu is past the %lld batches of an epoch (different data or batch_tokens?)",
                     (unsigned long long)s->index, (long long)it->n_batches);
        return -1;
    }
    if (s->rng_stream != CF_RNG_STREAM_DATA || s->epoch >= (1ull << 31)) {
        cf_error_set("batch state: rng stream %llu / epoch %llu are not a data iterator's",
                     (unsigned long long)s->rng_stream, (unsigned long long)s->epoch);
        return -1;
    }
    uint64_t old_seed = it->o.seed, old_epoch = it->epoch;
    it->o.seed = s->rng_seed;
    it->epoch = s->epoch;
    shuffle_epoch(it);
    if (it->rng.counter != s->rng_counter) {
        cf_error_set("batch state: rng counter %llu does not match epoch %llu (expected %llu; different data or options?)",
                     (unsigned long long)s->rng_counter, (unsigned long long)s->epoch,
                     (unsigned long long)it->rng.counter);
        it->o.seed = old_seed;
        it->epoch = old_epoch;
        shuffle_epoch(it);
        return -1;
    }
    it->index = s->index;
    return 0;
}
