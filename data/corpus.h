/* data/corpus.h - parallel corpora in memory (token ids after one shared tokenizer, or one per
 * side), read through the line reader of data/lines.h (plain or gzip files).
 *
 * Usage:
 *     cf_corpus_opts o = {.src_path = "train.de.gz", .tgt_path = "train.en.gz", .max_len = 100,
 *                         .log = stderr};            // or .tsv_path = "train.tsv"
 *     cf_corpus *c = cf_corpus_load(&o, tok);        // NULL + cf_error_message() on failure
 *     for (int64_t i = 0; i < c->n; i++) {
 *         const int32_t *x = cf_corpus_src(c, i);    // cf_corpus_src_len(c, i) ids, no <bos>/<eos>
 *         ...
 *     }
 *     cf_corpus_free(c);
 *
 * Rules (docs/data.md): files are read as data/lines.h reads them (plain or .gz, CRLF endings and
 * a missing final newline accepted). Source and target files must have the
 * same number of lines (else an error naming both files and counts). A pair with an empty (or
 * all-whitespace) side, or with more than max_len tokens on a side, is dropped and counted; the
 * counts are in c->stats and in the summary line written to opts.log.
 */
#ifndef CF_CORPUS_H
#define CF_CORPUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "data/lines.h"
#include "data/tokenizer.h"

typedef struct cf_corpus_opts {
    const char *src_path, *tgt_path; /* line-aligned pair of files ... */
    const char *tsv_path;            /* ... or one file of "source TAB target" lines */
    int64_t max_len;                 /* drop pairs with more tokens than this on a side; 0 = no limit */
    int64_t max_pairs;               /* stop after this many kept pairs; 0 = all */
    bool keep_text;                  /* also keep the raw lines (e.g. BLEU references) */
    FILE *log;                       /* where to write the one-line summary; NULL = nowhere */
} cf_corpus_opts;

typedef struct cf_corpus_stats {
    int64_t n_lines;                 /* pairs read */
    int64_t n_kept;
    int64_t n_empty;                 /* dropped: a side empty or only whitespace */
    int64_t n_too_long;              /* dropped: a side longer than max_len tokens */
    int64_t src_tokens, tgt_tokens;  /* in the kept pairs */
    int32_t max_src_len, max_tgt_len;
} cf_corpus_stats;

typedef struct cf_corpus {
    int64_t n;                       /* pairs kept */
    int32_t *src_ids, *tgt_ids;      /* all pairs back to back */
    int64_t *src_off, *tgt_off;      /* [n + 1]: pair i is ids[off[i] .. off[i + 1]) */
    int64_t *line;                   /* [n]: 1-based input line of pair i */
    char *src_text, *tgt_text;       /* keep_text only: NUL-terminated lines back to back */
    int64_t *src_text_off, *tgt_text_off; /* [n] */
    cf_corpus_stats stats;
    size_t cap_pairs, cap_src, cap_tgt, cap_src_text, cap_tgt_text; /* internal growth (cf_grow) */
} cf_corpus;

cf_corpus *cf_corpus_load(const cf_corpus_opts *o, cf_tokenizer *tok);
/* The same with separate source and target vocabularies. */
cf_corpus *cf_corpus_load2(const cf_corpus_opts *o, cf_tokenizer *src_tok, cf_tokenizer *tgt_tok);
/* An empty corpus to fill by hand with cf_corpus_add (tests, generated data). */
cf_corpus *cf_corpus_new(void);
void cf_corpus_add(cf_corpus *c, const int32_t *src, int64_t n_src, const int32_t *tgt, int64_t n_tgt);
void cf_corpus_free(cf_corpus *c);
/* "N pairs read, K kept, E empty dropped, L longer than M tokens dropped" into buf. */
void cf_corpus_summary(const cf_corpus *c, int64_t max_len, char *buf, size_t size);

static inline const int32_t *cf_corpus_src(const cf_corpus *c, int64_t i) { return c->src_ids + c->src_off[i]; }
static inline const int32_t *cf_corpus_tgt(const cf_corpus *c, int64_t i) { return c->tgt_ids + c->tgt_off[i]; }
static inline int64_t cf_corpus_src_len(const cf_corpus *c, int64_t i) { return c->src_off[i + 1] - c->src_off[i]; }
static inline int64_t cf_corpus_tgt_len(const cf_corpus *c, int64_t i) { return c->tgt_off[i + 1] - c->tgt_off[i]; }

#endif
