/* bench/bench_tokenizer.c - training time of every tokenizer kind on Multi30k (de+en train, vocab
 * 8000; issue 14's bar: under 10 s each), encode and decode throughput (bar: encode >= 20 MB/s),
 * and the cost of filling a batch (which decides whether prefetching pays). */
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
    /* Every kind: training time (gzip reading included) and encoding speed with a fresh word cache
     * (what corpus loading sees), both medians of RUNS, as `cformer tokenizer compare` measures. */
    cf_tokenizer *tok = NULL;
    for (int k = 0; k < CF_TOK_N_KINDS; k++) {
        cf_tok_stats st;
        cf_tokenizer *tk = cf_tok_train_measured((cf_tok_kind)k, files, 2, 8000, RUNS, &st);
        if (!tk) {
            fprintf(stderr, "error: %s\n", cf_error_message());
            return 1;
        }
        printf("tokenizer %-9s: train on Multi30k train de+en (58k lines, gzip read included), vocab %d: %.3f s; "
               "encode %.1f MB: %.1f MB/s cold cache; %.2f tokens/line (medians of %d)\n",
               cf_tok_kind_name((cf_tok_kind)k), cf_tokenizer_vocab_size(tk), st.train_s, (double)st.bytes / 1e6,
               st.encode_mb_s, st.tokens_per_line, RUNS);
        if (k == CF_TOK_BPE) tok = tk;
        else cf_tokenizer_free(tk);
    }

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
    double warm[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double t0 = cf_now_s();
        for (size_t i = 0; i < n_lines; i++) {
            ids.n = 0;
            cf_tokenizer_encode(tok, text + line_off[i], line_off[i + 1] - line_off[i] - 1, &ids);
        }
        warm[r] = (double)n / 1e6 / (cf_now_s() - t0);
    }
    printf("tokenizer bpe      : encode %.1f MB/s warm cache (median of %d)\n", cf_median(warm, RUNS), RUNS);

    /* decode: all lines, ids -> bytes */
    cf_ids all = {0};
    cf_tokenizer_encode(tok, text, n, &all);
    char *out = cf_xmalloc(n + 1);
    for (int r = 0; r < RUNS; r++) {
        double t0 = cf_now_s();
        size_t m = cf_tokenizer_decode(tok, all.data, all.n, out, n + 1);
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
    cf_ids_free(&all);
    cf_ids_free(&ids);
    free(text);
    free(line_off);
    cf_tokenizer_free(tok);
    return 0;
}
