/* data/tokenizer_stats.c - measure a tokenizer kind on a corpus: training time, encoding speed,
 * tokens per line, and how often pieces are whole words (`cformer tokenizer compare`, make bench).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/common.h"
#include "data/lines.h"
#include "data/tokenizer_internal.h"

/* Every line of the files in memory: line i is text[off[i] .. off[i + 1]). */
typedef struct lines_buf {
    tok_buf text;
    int64_t *off;
    int64_t n, cap;
} lines_buf;

static int read_lines(lines_buf *L, const char *const *paths, int n_paths) {
    for (int f = 0; f < n_paths; f++) {
        cf_lines *r = cf_lines_open(paths[f]);
        if (!r) return -1;
        const char *line;
        size_t n;
        int rc;
        while ((rc = cf_lines_next(r, &line, &n)) > 0) {
            if (L->n + 2 > L->cap) {
                L->cap = L->cap ? 2 * L->cap : 1 << 16;
                L->off = realloc(L->off, (size_t)L->cap * sizeof *L->off);
                CF_ASSERT(L->off != NULL, "out of memory");
            }
            L->off[L->n++] = (int64_t)L->text.n;
            tok_buf_put(&L->text, line, n);
        }
        cf_lines_close(r);
        if (rc < 0) return -1;
    }
    if (!L->off) L->off = cf_xmalloc(sizeof *L->off);
    L->off[L->n] = (int64_t)L->text.n;
    return 0;
}

/* A set of byte strings (the corpus's distinct words). */
typedef struct word_set {
    uint64_t *hash;
    int64_t *at;                    /* offset into the text, -1 = empty */
    uint32_t *len;
    size_t mask, n;
    const char *text;
} word_set;

static bool set_has(const word_set *S, const char *w, size_t n, uint64_t h, size_t *slot) {
    size_t i = h & S->mask;
    for (; S->at[i] >= 0; i = (i + 1) & S->mask)
        if (S->hash[i] == h && S->len[i] == n && memcmp(S->text + S->at[i], w, n) == 0) break;
    if (slot) *slot = i;
    return S->at[i] >= 0;
}

static void set_init(word_set *S, const char *text, size_t cap) {
    S->text = text;
    S->mask = cap - 1;
    S->n = 0;
    S->hash = cf_xmalloc(cap * sizeof *S->hash);
    S->at = cf_xmalloc(cap * sizeof *S->at);
    S->len = cf_xmalloc(cap * sizeof *S->len);
    memset(S->at, 0xff, cap * sizeof *S->at);
}

static void set_add(word_set *S, int64_t at, size_t n) {
    uint64_t h = bpe_hash_bytes(S->text + at, n);
    size_t slot;
    if (set_has(S, S->text + at, n, h, &slot)) return;
    S->hash[slot] = h, S->at[slot] = at, S->len[slot] = (uint32_t)n;
    if (2 * ++S->n <= S->mask + 1) return;
    word_set bigger;
    set_init(&bigger, S->text, 2 * (S->mask + 1));
    for (size_t i = 0; i <= S->mask; i++)
        if (S->at[i] >= 0) set_add(&bigger, S->at[i], S->len[i]);
    free(S->hash), free(S->at), free(S->len);
    *S = bigger;
}

cf_tokenizer *cf_tok_train_measured(cf_tok_kind kind, const char *const *paths, int n_paths, int vocab_size, int runs,
                                    cf_tok_stats *st) {
    memset(st, 0, sizeof *st);
    if (runs < 1) runs = 1;
    double *t = cf_xmalloc((size_t)runs * sizeof *t);
    cf_tokenizer *tok = NULL;
    for (int r = 0; r < runs; r++) {
        cf_tokenizer_free(tok);
        double t0 = cf_now_s();
        tok = cf_tokenizer_train_files(kind, paths, n_paths, vocab_size);
        t[r] = cf_now_s() - t0;
        if (!tok) {
            free(t);
            return NULL;
        }
    }
    st->train_s = cf_median(t, runs);

    lines_buf L = {0};
    if (read_lines(&L, paths, n_paths) != 0) {
        free(t);
        free(L.text.p);
        free(L.off);
        cf_tokenizer_free(tok);
        return NULL;
    }
    const char *text = L.text.p ? L.text.p : "";
    st->lines = L.n;
    st->bytes = (int64_t)L.text.n;
    /* Encoding speed: each run a fresh copy of the tokenizer (empty word cache), all lines. */
    char *json = cf_tokenizer_to_json(tok);
    cf_ids ids = {0};
    for (int r = 0; r < runs; r++) {
        cf_tokenizer *fresh = cf_tokenizer_from_json(json, strlen(json), "measure");
        CF_ASSERT(fresh != NULL, "%s", cf_error_message());
        st->tokens = 0;
        double t0 = cf_now_s();
        for (int64_t i = 0; i < L.n; i++) {
            ids.n = 0;
            cf_tokenizer_encode(fresh, text + L.off[i], (size_t)(L.off[i + 1] - L.off[i]), &ids);
            st->tokens += ids.n;
        }
        double dt = cf_now_s() - t0;
        t[r] = dt > 0 ? (double)st->bytes / 1e6 / dt : 0;
        cf_tokenizer_free(fresh);
    }
    st->encode_mb_s = cf_median(t, runs);
    st->tokens_per_line = L.n ? (double)st->tokens / (double)L.n : 0;

    /* Words: how many occurrences come out as one token, and which learned tokens are words. */
    word_set S;
    set_init(&S, text, 1 << 16);
    int64_t whole = 0;
    for (int64_t i = 0; i < L.n; i++)
        for (int64_t pos = L.off[i]; pos < L.off[i + 1];) {
            size_t n = cf_bpe_word_len(text + pos, (size_t)(L.off[i + 1] - pos));
            set_add(&S, pos, n);
            ids.n = 0;
            cf_tokenizer_encode(tok, text + pos, n, &ids);
            whole += ids.n == 1;
            st->words++;
            pos += (int64_t)n;
        }
    st->words_kept_whole = st->words ? (double)whole / (double)st->words : 0;
    int vocab = cf_tokenizer_vocab_size(tok), learned = 0, words = 0;
    for (int32_t id = CF_TOK_N_BASE; id < vocab; id++) {
        size_t n;
        bool cont;
        const char *s = cf_tokenizer_token(tok, id, &n, &cont);
        learned++;
        words += !cont && set_has(&S, s, n, bpe_hash_bytes(s, n), NULL);
    }
    st->vocab_whole_words = learned ? (double)words / learned : 0;
    free(S.hash), free(S.at), free(S.len);
    cf_ids_free(&ids);
    free(json);
    free(t);
    free(L.text.p);
    free(L.off);
    return tok;
}
