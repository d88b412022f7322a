/* bench/bench_tokenizer.c - BPE training time on Multi30k (de+en train, vocab 8000), encode and
 * decode throughput, and the cost of filling a batch (which decides whether prefetching pays). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/common.h"
#include "data/batch.h"
#include "data/corpus.h"
#include "data/tokenizer.h"

int bench_tokenizer(void);

/* Multi30k lives next to the main checkout (../shared/data/multi30k); worktrees sit one level deeper. */
static const char *find_multi30k(char *buf, size_t size) {
    const char *env = getenv("CF_MULTI30K_DIR");
    const char *cands[] = {env, CF_SOURCE_DIR "/../shared/data/multi30k", CF_SOURCE_DIR "/../../shared/data/multi30k"};
    for (int i = 0; i < 3; i++) {
        if (!cands[i]) continue;
        snprintf(buf, size, "%s/train.de.gz", cands[i]);
        struct stat st;
        if (stat(buf, &st) == 0) {
            snprintf(buf, size, "%s", cands[i]);
            return buf;
        }
    }
    return NULL;
}

int bench_tokenizer(void) {
    char dir[1024], de[1100], en[1100];
    if (!find_multi30k(dir, sizeof dir)) {
        printf("tokenizer: Multi30k not found (set CF_MULTI30K_DIR); skipped\n");
        return 0;
    }
    snprintf(de, sizeof de, "%s/train.de.gz", dir);
    snprintf(en, sizeof en, "%s/train.en.gz", dir);
    const char *files[2] = {de, en};
    enum { RUNS = 5 };
    double t[RUNS];
    cf_bpe *tok = NULL;
    for (int r = 0; r < RUNS; r++) {
        cf_bpe_free(tok);
        double t0 = cf_now_s();
        tok = cf_bpe_train_files(files, 2, 8000);
        t[r] = cf_now_s() - t0;
        if (!tok) {
            fprintf(stderr, "error: %s\n", cf_error_message());
            return 1;
        }
    }
    printf("tokenizer: train on Multi30k train de+en (58k lines, gzip read included), vocab %d: %.3f s (median of %d)\n",
           cf_bpe_vocab_size(tok), cf_median(t, RUNS), RUNS);

    /* The text in memory, one buffer of lines. */
    size_t cap = 1 << 22, n = 0, n_lines = 0;
    char *text = cf_xmalloc(cap);
    size_t *line_off = cf_xmalloc(70000 * sizeof(size_t));
    for (int f = 0; f < 2; f++) {
        cf_lines *r = cf_lines_open(files[f]);
        const char *l;
        size_t len;
        while (r && cf_lines_next(r, &l, &len) > 0 && n_lines < 69999) {
            if (n + len + 1 > cap) text = realloc(text, cap *= 2);
            line_off[n_lines++] = n;
            memcpy(text + n, l, len);
            n += len;
            text[n++] = '\n';
        }
        cf_lines_close(r);
    }
    line_off[n_lines] = n;
    cf_ids ids = {0};
    double cold[RUNS], warm[RUNS];
    char *json = cf_bpe_to_json(tok);
    for (int r = 0; r < RUNS; r++) {
        /* cold: a freshly loaded tokenizer, empty word cache (what corpus loading sees) */
        cf_bpe *fresh = cf_bpe_from_json(json, strlen(json), "bench");
        for (int pass = 0; pass < 2; pass++) {
            double t0 = cf_now_s();
            for (size_t i = 0; i < n_lines; i++) {
                ids.n = 0;
                cf_bpe_encode(fresh, text + line_off[i], line_off[i + 1] - line_off[i] - 1, &ids);
            }
            (pass ? warm : cold)[r] = (double)n / 1e6 / (cf_now_s() - t0);
        }
        cf_bpe_free(fresh);
    }
    printf("tokenizer: encode %.1f MB of Multi30k text: %.1f MB/s cold cache, %.1f MB/s warm (median of %d)\n",
           (double)n / 1e6, cf_median(cold, RUNS), cf_median(warm, RUNS), RUNS);

    /* decode: all lines, ids -> bytes */
    cf_ids all = {0};
    cf_bpe_encode(tok, text, n, &all);
    char *out = cf_xmalloc(n + 1);
    for (int r = 0; r < RUNS; r++) {
        double t0 = cf_now_s();
        size_t m = cf_bpe_decode(tok, all.data, all.n, out, n + 1);
        t[r] = (double)m / 1e6 / (cf_now_s() - t0);
    }
    printf("tokenizer: decode %.1f MB/s (%.2f bytes per token)\n", cf_median(t, RUNS), (double)n / (double)all.n);

    /* batches: fill cost at a typical budget, against the cost of a training step (milliseconds) */
    cf_corpus_opts co = {.src_path = de, .tgt_path = en, .max_len = 128};
    cf_corpus *c = cf_corpus_load(&co, tok);
    if (c) {
        cf_batcher *it = cf_batcher_new(c, &(cf_batch_opts){.batch_tokens = 4096, .seed = 1, .shuffle = true});
        int64_t nb = cf_batcher_n_batches(it);
        for (int r = 0; r < RUNS; r++) {
            double t0 = cf_now_s();
            for (int64_t k = 0; k < nb; k++) cf_batcher_next(it);
            t[r] = (cf_now_s() - t0) / (double)nb * 1e6;
        }
        printf("batching: %lld batches of <= 4096 tokens per epoch, %.1f us to fill one (median of %d epochs): "
               "no prefetch thread needed\n",
               (long long)nb, cf_median(t, RUNS), RUNS);
        cf_batcher_free(it);
        cf_corpus_free(c);
    }
    free(out);
    free(json);
    cf_ids_free(&all);
    cf_ids_free(&ids);
    free(text);
    free(line_off);
    cf_bpe_free(tok);
    return 0;
}
