/* data/unigram.h - the Unigram language model (SentencePiece's): EM training with pruning, Viterbi
 * encoding, and sampling for subword regularisation.
 *
 * Usage:
 *     cf_tok_trainer *tr = cf_tok_trainer_new();
 *     cf_tok_trainer_add(tr, "ein Hund läuft .", 17);              // once per line
 *     cf_unigram *u = cf_unigram_train(tr, &(cf_unigram_opts){.vocab_size = 8000});   // frees tr
 *     cf_ids ids = {0};
 *     cf_unigram_encode(u, text, len, &ids);                       // the most likely segmentation
 *     cf_rng rng = cf_rng_init(seed, CF_RNG_STREAM_DATA);
 *     cf_unigram_encode_sample(u, text, len, 0.2, &rng, &ids);     // one drawn from P(x)^alpha
 *     cf_unigram_free(u);                                          // (or wrap: cf_tokenizer_from_unigram)
 *
 * The model: each piece has a log-probability (its score) and a word's segmentation x = x1..xk has
 * log P(x) = sum of the scores. Words are those of the BPE's pre-tokeniser (data/tokenizer.h).
 * Encoding finds the best segmentation by Viterbi over the lattice of pieces that match inside the
 * word. A UTF-8 unit that no single-unit piece covers gets an edge of score (lowest score - 10)
 * that emits its bytes as byte tokens (byte fallback), so every input round-trips.
 *
 * Training (as SentencePiece describes it; docs/data.md): the seed vocabulary is every unit plus
 * the most frequent substrings of the words (frequency x length, all occurrences counted); then
 * rounds of EM (forward-backward over every distinct word gives each piece's expected count; the
 * new score is digamma(count) - digamma(total)) and pruning (drop the pieces whose removal loses
 * the least likelihood, re-segmenting each by its best alternative) until 1.1 x the target size;
 * the final vocabulary is the single units plus the best-scoring pieces. Deterministic: the same
 * corpus gives the same file.
 */
#ifndef CF_UNIGRAM_H
#define CF_UNIGRAM_H

#include "core/rng.h"
#include "data/tokenizer.h"

enum { CF_UNIGRAM_FORMAT_VERSION = 1 };

typedef struct cf_unigram_opts {
    int vocab_size;         /* specials and bytes included; at least 260 */
    int max_piece_units;    /* longest piece in UTF-8 units; 0: 16 */
    int seed_size;          /* seed substrings kept; 0: 1000000 */
    double char_coverage;   /* share of unit occurrences that get single-unit pieces; 0: 0.9995 */
    int em_iterations;      /* EM iterations per pruning round; 0: 2 */
    double shrink;          /* share of pieces a pruning round keeps; 0: 0.75 */
} cf_unigram_opts;

/* Learn the model from the trainer's word counts (frees tr). NULL + error on bad options. */
cf_unigram *cf_unigram_train(cf_tok_trainer *tr, const cf_unigram_opts *o);
/* A model from explicit pieces and scores (ids 260 .. 260 + n - 1): tests and the loader. NULL +
 * error for an empty, too long or duplicate piece or a score that is not finite. */
cf_unigram *cf_unigram_from_pieces(int n, const char *const *bytes, const size_t *len, const float *score);

void cf_unigram_encode(cf_unigram *t, const char *text, size_t len, cf_ids *out);
/* Sample a segmentation of each word with probability proportional to P(x)^alpha (alpha > 0;
 * small alpha: nearly uniform, large: nearly Viterbi), by forward filtering and backward sampling.
 * A pure function of the text and the generator's state; advances rng. */
void cf_unigram_encode_sample(const cf_unigram *t, const char *text, size_t len, double alpha, cf_rng *rng,
                              cf_ids *out);
size_t cf_unigram_decode(const cf_unigram *t, const int32_t *ids, int64_t n, char *out, size_t cap);
int cf_unigram_vocab_size(const cf_unigram *t);
/* Token id's bytes; *score (may be NULL) its log-probability (0 for specials and bytes). */
const char *cf_unigram_token(const cf_unigram *t, int32_t id, size_t *len, float *score);
/* The score of a byte-fallback edge (one UTF-8 unit): the lowest piece score - 10. */
double cf_unigram_fallback_score(const cf_unigram *t);

/* JSON: {"format": "cformer-unigram", "version": 1, ..., "vocab": [..., ["▁the", -3.14], ...]}. */
char *cf_unigram_to_json(const cf_unigram *t);
cf_unigram *cf_unigram_from_json(const char *json, size_t len, const char *path);
void cf_unigram_free(cf_unigram *t);

#endif
