/* data/tokenizer.h - byte-level BPE: train, encode, decode, save, load.
 *
 * Usage:
 *     cf_bpe_trainer *tr = cf_bpe_trainer_new();
 *     cf_bpe_trainer_add(tr, "ein Hund läuft .", 17);          // once per line of training text
 *     cf_bpe *tok = cf_bpe_trainer_finish(tr, 8000);           // frees tr; NULL + cf_error_message()
 *     cf_ids ids = {0};
 *     cf_bpe_encode(tok, text, len, &ids);                     // appends ids.data[0..ids.n)
 *     size_t n = cf_bpe_decode(tok, ids.data, ids.n, buf, sizeof buf);   // snprintf-like
 *     cf_bpe_save(tok, "tok.json");  tok = cf_bpe_load("tok.json");
 *     cf_ids_free(&ids); cf_bpe_free(tok);
 *
 * Ids 0..3 are the special tokens, ids 4..259 the 256 single bytes (id = 4 + byte), and id 260 + i
 * is the token made by merge i. Encoding never fails and never produces <unk>: every byte has a
 * token, so decode(encode(s)) == s for every byte string s (invalid UTF-8 included). Decoding skips
 * the special tokens. See docs/data.md for the pre-tokenisation rules and the file format.
 *
 * A cf_bpe is read-only after training/loading except for its encode cache: cf_bpe_encode is not
 * thread-safe on one cf_bpe (use one per thread); decode is.
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
};

/* A growable array of token ids. Zero-initialise; free with cf_ids_free. */
typedef struct cf_ids {
    int32_t *data;
    int64_t n, cap;
} cf_ids;
void cf_ids_push(cf_ids *a, int32_t id);
void cf_ids_free(cf_ids *a);

typedef struct cf_bpe cf_bpe;
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

/* Pre-tokenisation, exposed for tests: the length of the word that starts at text[0] (> 0 when
 * len > 0). Words partition the text; merges never cross them. */
size_t cf_bpe_word_len(const char *text, size_t len);

#endif
