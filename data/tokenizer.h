/* data/tokenizer.h - tokenizers: byte-level BPE (the default), WordPiece and Unigram behind one
 * interface, and the BPE itself.
 *
 * Usage (any kind):
 *     cf_tokenizer *tok = cf_tokenizer_train_files(CF_TOK_UNIGRAM, files, 2, 8000);  // NULL + cf_error_message()
 *     cf_ids ids = {0};
 *     cf_tokenizer_encode(tok, text, len, &ids);                           // appends ids.data[0..ids.n)
 *     size_t n = cf_tokenizer_decode(tok, ids.data, ids.n, buf, sizeof buf);  // snprintf-like
 *     cf_tokenizer_save(tok, "tok.json");
 *     cf_tokenizer *again = cf_tokenizer_load("tok.json");                // the kind comes from "format"
 *     cf_ids_free(&ids); cf_tokenizer_free(tok); cf_tokenizer_free(again);
 *
 * Usage (BPE directly; WordPiece and Unigram: data/wordpiece.h, data/unigram.h):
 *     cf_bpe_trainer *tr = cf_bpe_trainer_new();
 *     cf_bpe_trainer_add(tr, "ein Hund läuft .", 17);          // once per line of training text
 *     cf_bpe *bpe = cf_bpe_trainer_finish(tr, 8000);           // frees tr; NULL + cf_error_message()
 *     cf_bpe_encode(bpe, text, len, &ids);
 *     cf_bpe_free(bpe);
 *
 * Every kind uses one id layout: ids 0..3 are the special tokens, ids 4..259 the 256 single bytes
 * (id = 4 + byte), and ids from 260 the learned tokens (BPE: id 260 + i is the token made by merge
 * i). Encoding never fails and never produces <unk>: a byte that no learned token covers is
 * encoded as its byte token (byte fallback), so decode(encode(s)) == s for every byte string s
 * (invalid UTF-8, NUL and whitespace included). Decoding skips the special tokens. Every kind cuts
 * text into the same words first (cf_bpe_word_len) and no token crosses a word. See docs/data.md
 * for each kind's algorithm and file format.
 *
 * A tokenizer is read-only after training/loading except for its encode cache: encoding is not
 * thread-safe on one tokenizer (use one per thread); decoding is.
 */
#ifndef CF_TOKENIZER_H
#define CF_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    CF_PAD_ID = 0,
    CF_UNK_ID = 1,
    CF_BOS_ID = 2,
    CF_EOS_ID = 3,
    CF_BPE_N_SPECIAL = 4,
    CF_BPE_BYTE_BASE = 4,         /* id of byte b is CF_BPE_BYTE_BASE + b */
    CF_BPE_N_BASE = 4 + 256,      /* the smallest possible vocabulary */
    CF_BPE_FORMAT_VERSION = 1,
    /* The same layout under kind-neutral names. */
    CF_TOK_N_SPECIAL = CF_BPE_N_SPECIAL,
    CF_TOK_BYTE_BASE = CF_BPE_BYTE_BASE,
    CF_TOK_N_BASE = CF_BPE_N_BASE,
    /* Bounds, for trained and loaded tokenizers alike (docs/data.md). No word is longer than
     * CF_TOK_MAX_TOKEN_BYTES, so no longer token can ever be produced. */
    CF_TOK_MAX_TOKEN_BYTES = 64,
    CF_TOK_MAX_VOCAB = 1000000,
};
/* A tokenizer file larger than this, or with more JSON values (arrays, numbers, strings...: each
 * costs cJSON ~64 bytes), is refused before it is parsed: the largest file the bounds above allow
 * in practice (a million tokens: its vocab strings, and merge pairs or scores) fits both. */
#define CF_TOK_MAX_FILE_BYTES ((size_t)64 << 20)
#define CF_TOK_MAX_JSON_VALUES (4 * (size_t)CF_TOK_MAX_VOCAB + 1024)

/* A growable array of token ids. Zero-initialise; free with cf_ids_free. */
typedef struct cf_ids {
    int32_t *data;
    int64_t n, cap;
} cf_ids;
void cf_ids_push(cf_ids *a, int32_t id);
void cf_ids_free(cf_ids *a);

/* ---------------------------------------------------------------- any kind */

typedef enum cf_tok_kind {
    CF_TOK_BPE,             /* byte-level BPE (GPT-2 style): merges by frequency */
    CF_TOK_WORDPIECE,       /* BERT's WordPiece: merges by likelihood score, "##" continuations */
    CF_TOK_UNIGRAM,         /* SentencePiece's Unigram LM: EM + pruning, Viterbi encoding */
    CF_TOK_N_KINDS,
} cf_tok_kind;

const char *cf_tok_kind_name(cf_tok_kind k);          /* "bpe", "wordpiece", "unigram" */
int cf_tok_kind_parse(const char *name);              /* the kind, or -1 for an unknown name */

typedef struct cf_tokenizer cf_tokenizer;
typedef struct cf_tok_trainer cf_tok_trainer;

/* Training: count the words of every line, then learn a vocabulary of vocab_size tokens (specials
 * and bytes included; fewer when the corpus runs out of candidates). */
cf_tok_trainer *cf_tok_trainer_new(void);
void cf_tok_trainer_add(cf_tok_trainer *tr, const char *text, size_t len);   /* one line, no newline */
int cf_tok_trainer_add_file(cf_tok_trainer *tr, const char *path);          /* every line; -1 + error */
cf_tokenizer *cf_tok_trainer_finish(cf_tok_trainer *tr, cf_tok_kind kind, int vocab_size);  /* frees tr */
/* The same with a pair-count floor for bpe and wordpiece (0: the kind's default; unigram ignores it). */
cf_tokenizer *cf_tok_trainer_finish_ex(cf_tok_trainer *tr, cf_tok_kind kind, int vocab_size, int64_t min_count);
void cf_tok_trainer_free(cf_tok_trainer *tr);
cf_tokenizer *cf_tokenizer_train_files(cf_tok_kind kind, const char *const *paths, int n_paths, int vocab_size);

cf_tok_kind cf_tokenizer_kind(const cf_tokenizer *t);
int cf_tokenizer_vocab_size(const cf_tokenizer *t);
void cf_tokenizer_encode(cf_tokenizer *t, const char *text, size_t len, cf_ids *out);
/* Like cf_bpe_decode: snprintf-like; (size_t)-1 and an error for an id outside the vocabulary. */
size_t cf_tokenizer_decode(const cf_tokenizer *t, const int32_t *ids, int64_t n, char *out, size_t cap);
/* The bytes token id decodes to (specials: their name, e.g. "<eos>"); *cont is set for WordPiece
 * "##" pieces (may be NULL). */
const char *cf_tokenizer_token(const cf_tokenizer *t, int32_t id, size_t *len, bool *cont);
/* Token id for people (snprintf-like): the UTF-8 text with the space as U+2581, "##" before a
 * continuation piece, <0xAB> for a byte that is not printable text on its own. */
size_t cf_tokenizer_token_text(const cf_tokenizer *t, int32_t id, char *out, size_t cap);

/* JSON file with "format" (cformer-bpe | cformer-wordpiece | cformer-unigram) and "version".
 * Loading validates everything, with bounded sizes; errors name the file and the key or entry. */
int cf_tokenizer_save(const cf_tokenizer *t, const char *path);
cf_tokenizer *cf_tokenizer_load(const char *path);
char *cf_tokenizer_to_json(const cf_tokenizer *t);
cf_tokenizer *cf_tokenizer_from_json(const char *json, size_t len, const char *path);
void cf_tokenizer_free(cf_tokenizer *t);

/* Wrap one kind's tokenizer (ownership moves to the result) and look inside (NULL: another kind). */
typedef struct cf_bpe cf_bpe;
typedef struct cf_wordpiece cf_wordpiece;
typedef struct cf_unigram cf_unigram;
cf_tokenizer *cf_tokenizer_from_bpe(cf_bpe *b);
cf_tokenizer *cf_tokenizer_from_wordpiece(cf_wordpiece *w);
cf_tokenizer *cf_tokenizer_from_unigram(cf_unigram *u);
cf_bpe *cf_tokenizer_bpe(const cf_tokenizer *t);
cf_wordpiece *cf_tokenizer_wordpiece(const cf_tokenizer *t);
cf_unigram *cf_tokenizer_unigram(const cf_tokenizer *t);

/* What `cformer tokenizer compare` and `make bench` report for one kind (data/tokenizer_stats.c). */
typedef struct cf_tok_stats {
    double train_s;             /* training, reading the files included (median of the runs) */
    double encode_mb_s;         /* encoding every line with a fresh tokenizer: an empty word cache */
    int64_t lines, bytes, tokens, words;    /* words: pre-tokeniser words (occurrences) */
    double tokens_per_line;
    double vocab_whole_words;   /* share of the learned tokens (ids >= 260) that are a whole word of the corpus */
    double words_kept_whole;    /* share of the word occurrences encoded as a single token */
} cf_tok_stats;
/* Train kind on the files `runs` times (timed) and measure the last tokenizer on every line of
 * them; returns it (NULL + error). */
cf_tokenizer *cf_tok_train_measured(cf_tok_kind kind, const char *const *paths, int n_paths, int vocab_size, int runs,
                                    cf_tok_stats *st);

/* ---------------------------------------------------------------- byte-level BPE */

typedef struct cf_bpe_trainer cf_bpe_trainer;

cf_bpe_trainer *cf_bpe_trainer_new(void);
/* Count the pre-tokenised words of one piece of text (a line, without its newline). */
void cf_bpe_trainer_add(cf_bpe_trainer *tr, const char *text, size_t len);
/* Learn merges until the vocabulary has vocab_size tokens (specials and bytes included) or no pair
 * occurs at least min_count times (default 2; <= 0 means 2). The most frequent pair wins; ties go
 * to the smallest (left id, right id). Frees tr. NULL on a bad vocab_size. */
cf_bpe *cf_bpe_trainer_finish(cf_bpe_trainer *tr, int vocab_size);
cf_bpe *cf_bpe_trainer_finish_ex(cf_bpe_trainer *tr, int vocab_size, int64_t min_count);
void cf_bpe_trainer_free(cf_bpe_trainer *tr);
/* Convenience: train on every line of the given files (plain or .gz). NULL + error naming the file. */
cf_bpe *cf_bpe_train_files(const char *const *paths, int n_paths, int vocab_size);

/* Append the ids of text[0..len) to out. */
void cf_bpe_encode(cf_bpe *tok, const char *text, size_t len, cf_ids *out);
/* Write the bytes of ids into out (at most cap bytes, NUL-terminated when cap > 0) and return the
 * full decoded length, like snprintf. Specials decode to nothing. Returns (size_t)-1 and sets the
 * error if an id is out of range. */
size_t cf_bpe_decode(const cf_bpe *tok, const int32_t *ids, int64_t n, char *out, size_t cap);

int cf_bpe_vocab_size(const cf_bpe *tok);
int cf_bpe_n_merges(const cf_bpe *tok);
/* The bytes of token id (not NUL-terminated; specials give their name, e.g. "<eos>"). */
const char *cf_bpe_token(const cf_bpe *tok, int32_t id, size_t *len);
/* Merge i as (left id, right id); the merged token is id CF_BPE_N_BASE + i. */
void cf_bpe_merge(const cf_bpe *tok, int i, int32_t *left, int32_t *right);

/* JSON file (see docs/data.md). 0 on success; on failure -1 and an error naming the file. */
int cf_bpe_save(const cf_bpe *tok, const char *path);
cf_bpe *cf_bpe_load(const char *path);
/* The same from/to memory (the path is only used in error messages). */
char *cf_bpe_to_json(const cf_bpe *tok);
cf_bpe *cf_bpe_from_json(const char *json, size_t len, const char *path);
void cf_bpe_free(cf_bpe *tok);

/* Pre-tokenisation, shared by every kind: the length of the word that starts at text[0] (> 0 when
 * len > 0, at most CF_TOK_MAX_TOKEN_BYTES). Words partition the text; no token crosses them. */
size_t cf_bpe_word_len(const char *text, size_t len);

#endif
