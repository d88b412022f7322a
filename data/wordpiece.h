/* data/wordpiece.h - WordPiece (BERT's subwords): training by likelihood score, "##" continuation
 * pieces, greedy longest-match-first encoding with byte fallback.
 *
 * Usage:
 *     cf_tok_trainer *tr = cf_tok_trainer_new();
 *     cf_tok_trainer_add(tr, "ein Hund läuft .", 17);           // once per line
 *     cf_wordpiece *wp = cf_wordpiece_train(tr, &(cf_wordpiece_opts){.vocab_size = 8000});  // frees tr
 *     cf_ids ids = {0};
 *     cf_wordpiece_encode(wp, " Hunde", 6, &ids);               // "▁Hund" "##e"
 *     size_t n = cf_wordpiece_decode(wp, ids.data, ids.n, buf, sizeof buf);
 *     cf_wordpiece_free(wp);                                    // (or wrap: cf_tokenizer_from_wordpiece)
 *
 * Words are those of the BPE's pre-tokeniser (data/tokenizer.h), the single space before a word
 * attached to it. A word is spelt by a start piece then continuation pieces ("##" in the file):
 * " Hunde" = "▁Hund" + "##e". Training starts from the units (UTF-8 characters; the first unit of
 * a word carries its leading space) and repeatedly merges the adjacent pair (a, b) with the highest
 * score count(ab) / (count(a) * count(b)), i.e. the merge that raises the corpus likelihood most
 * per use of its parts. Encoding takes, at each position, the longest piece that matches (a start
 * piece at the word's start, a continuation piece after it); where none matches, the bytes of one
 * UTF-8 unit are emitted as byte tokens (BERT would emit [UNK] for the whole word), so every input
 * round-trips.
 */
#ifndef CF_WORDPIECE_H
#define CF_WORDPIECE_H

#include "data/tokenizer.h"

enum { CF_WORDPIECE_FORMAT_VERSION = 1 };

typedef struct cf_wordpiece_opts {
    int vocab_size;         /* specials and bytes included; at least 260 */
    int64_t min_count;      /* a pair seen fewer times is never merged; 0: the highest count that
                             * still fills the vocabulary (found by binary search, see docs/data.md) */
} cf_wordpiece_opts;

/* Learn a vocabulary from the trainer's word counts (frees tr). Ties in score go to the pair
 * whose parts have the smaller ids (the more frequent units, earlier merges). NULL + error on a
 * bad vocab_size. */
cf_wordpiece *cf_wordpiece_train(cf_tok_trainer *tr, const cf_wordpiece_opts *o);
/* A tokenizer from explicit pieces (ids 260 .. 260 + n - 1 in order): tests and the loader. NULL +
 * error for an empty, too long or duplicate piece. */
cf_wordpiece *cf_wordpiece_from_pieces(int n, const char *const *bytes, const size_t *len, const bool *cont);

void cf_wordpiece_encode(cf_wordpiece *t, const char *text, size_t len, cf_ids *out);
size_t cf_wordpiece_decode(const cf_wordpiece *t, const int32_t *ids, int64_t n, char *out, size_t cap);
int cf_wordpiece_vocab_size(const cf_wordpiece *t);
int64_t cf_wordpiece_min_count(const cf_wordpiece *t);   /* the floor training used (0: unknown) */
/* Token id's bytes (without "##"); *cont (may be NULL) = it is a continuation piece. */
const char *cf_wordpiece_token(const cf_wordpiece *t, int32_t id, size_t *len, bool *cont);

/* JSON: {"format": "cformer-wordpiece", "version": 1, ..., "vocab": [...]} (docs/data.md). */
char *cf_wordpiece_to_json(const cf_wordpiece *t);
cf_wordpiece *cf_wordpiece_from_json(const char *json, size_t len, const char *path);
void cf_wordpiece_free(cf_wordpiece *t);

#endif
