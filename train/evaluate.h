/* train/evaluate.h - validation loss and corpus BLEU of a model.
 *
 * Usage:
 *     cf_eval_loss_result l;
 *     if (cf_eval_loss(ctx, model, corpus, 4096, &l) != 0) ...;   // teacher-forced NLL, perplexity
 *     char **hyps = cf_translate_corpus(ctx, model, tgt_tok, corpus, n, &opts, 64);
 *     cf_bleu_score s = cf_eval_bleu(corpus, hyps, n);            // against the corpus' target text
 *     cf_strings_free(hyps, n);
 */
#ifndef CF_TRAIN_EVALUATE_H
#define CF_TRAIN_EVALUATE_H

#include "score/bleu.h"
#include "translate/translate.h"

typedef struct cf_eval_loss_result {
    double loss;                /* mean NLL per target token (no label smoothing) */
    double ppl;                 /* exp(loss) */
    int64_t n_tokens, n_sentences;
} cf_eval_loss_result;

/* Teacher-forced loss over every pair of c, in batches of batch_tokens (no dropout, no smoothing). */
int cf_eval_loss(cf_ctx *ctx, const cf_transformer *m, const cf_corpus *c, int64_t batch_tokens,
                 cf_eval_loss_result *out);

/* Corpus BLEU of hyps against the first n pairs' target text (loaded with keep_text). */
cf_bleu_score cf_eval_bleu(const cf_corpus *c, char *const *hyps, int64_t n);

#endif
