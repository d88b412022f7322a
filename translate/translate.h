/* translate/translate.h - translate many sentences: length-sorted batches through the decoder.
 *
 * Usage (cformer translate, validation BLEU):
 *     cf_decode_opts o = cf_decode_opts_default();
 *     o.beam = 4;
 *     char **hyps = cf_translate_corpus(ctx, model, tgt_tok, corpus, 0, &o, 64);   // corpus order
 *     for (int64_t i = 0; i < corpus->n; i++) puts(hyps[i]);
 *     cf_strings_free(hyps, corpus->n);
 *
 * Sources are decoded in batches of batch_size sentences of similar length (less padding), each
 * with <eos> appended, and the outputs come back in input order, detokenised with the target
 * tokenizer. A source longer than model.max_len - 1 tokens is cut to its first max_len - 1 tokens
 * (the <eos> takes the last position) rather than refused. Every output is one line of text
 * (cf_hyp_line), so n sources give exactly n lines whatever bytes the model decodes.
 * docs/decoding.md has the rules.
 */
#ifndef CF_TRANSLATE_TRANSLATE_H
#define CF_TRANSLATE_TRANSLATE_H

#include "data/corpus.h"
#include "translate/decode.h"

/* The decoding half of cf_translate_ids: the output ids (no <bos>/<eos>) of n source token
 * sequences in input order, sentence i at out->tokens + out->offsets[i]. 0, or -1 with a message. */
int cf_translate_tokens(cf_ctx *ctx, const cf_transformer *m, const int32_t *const *src, const int64_t *src_len,
                        int64_t n, const cf_decode_opts *o, int64_t batch_size, cf_decode_result *out);
/* Translate n source token sequences (without <eos>; it is added) in batches of batch_size;
 * returns n malloc'ed strings in input order (a malloc'ed array), or NULL with a message
 * ("interrupted" when cf_interrupted(), core/interrupt.h, was set between two batches). */
char **cf_translate_ids(cf_ctx *ctx, const cf_transformer *m, const cf_tokenizer *tgt_tok, const int32_t *const *src,
                        const int64_t *src_len, int64_t n, const cf_decode_opts *o, int64_t batch_size);
/* The sources of the first n pairs of a corpus (n <= c->n; 0 = all). */
char **cf_translate_corpus(cf_ctx *ctx, const cf_transformer *m, const cf_tokenizer *tgt_tok, const cf_corpus *c, int64_t n,
                           const cf_decode_opts *o, int64_t batch_size);
/* Decoded bytes s[0..n) as one line of UTF-8 text without NUL (malloc'ed): each byte that does
 * not begin a valid UTF-8 sequence becomes U+FFFD; tab, CR, LF, VT, FF, U+001C..U+001F, U+0085,
 * U+2028 and U+2029 (whitespace and every line break of Python's str.splitlines) become a space;
 * the other C0 controls (NUL included) and DEL become U+FFFD. */
char *cf_hyp_line(const char *s, size_t n);
/* Free n strings and their array (NULL is fine). */
void cf_strings_free(char **s, int64_t n);

#endif
