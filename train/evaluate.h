/* train/evaluate.h - validation loss, batched translation and BLEU of a model.
 *
 * Usage:
 *     cf_eval_loss_result l;
 *     cf_eval_loss(&run, corpus, 4096, &l);                   // teacher-forced NLL, perplexity
 *     char **hyps = cf_translate_corpus(&run, corpus, n, &opts);   // detokenised, corpus order
 *     cf_bleu_score s = cf_eval_bleu(corpus, hyps, n);        // against the corpus' target text
 *     cf_strings_free(hyps, n);
 */
#ifndef CF_TRAIN_EVALUATE_H
#define CF_TRAIN_EVALUATE_H

#include "train/bleu.h"
#include "train/decode.h"
#include "train/run.h"

typedef struct cf_eval_loss_result {
    double loss;                /* mean NLL per target token (no label smoothing) */
    double ppl;                 /* exp(loss) */
    int64_t n_tokens, n_sentences;
} cf_eval_loss_result;

int cf_eval_loss(cf_ctx *ctx, const cf_transformer *m, const cf_corpus *c, int64_t batch_tokens,
                 cf_eval_loss_result *out);

/* Translate n source token sequences (without <eos>; it is added) in batches of similar length;
 * returns n strings detokenised with the target tokenizer in input order (malloc'ed array of malloc'ed strings). */
char **cf_translate_ids(cf_ctx *ctx, const cf_transformer *m, const cf_tokenizer *tgt_tok, const int32_t *const *src,
                        const int64_t *src_len, int64_t n, const cf_decode_opts *o, int64_t batch_size);
/* The first n pairs' sources of a corpus (n <= c->n; 0 = all). */
char **cf_translate_corpus(cf_ctx *ctx, const cf_transformer *m, const cf_tokenizer *tgt_tok, const cf_corpus *c, int64_t n,
                           const cf_decode_opts *o, int64_t batch_size);
/* Corpus BLEU of hyps against the corpus' target text (kept with keep_text). */
cf_bleu_score cf_eval_bleu(const cf_corpus *c, char *const *hyps, int64_t n);
void cf_strings_free(char **s, int64_t n);

#endif
