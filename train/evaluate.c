/* train/evaluate.c - validation loss and corpus BLEU of a model. */
#include "train/evaluate.h"

#include <math.h>
#include <string.h>

#include "core/interrupt.h"
#include "core/ops.h"
#include "core/threads.h"
#include "data/batch.h"

int cf_eval_loss(cf_ctx *ctx, const cf_transformer *m, const cf_corpus *c, int64_t batch_tokens,
                 cf_eval_loss_result *out) {
    memset(out, 0, sizeof *out);
    cf_batcher *it = cf_batcher_new(c, &(cf_batch_opts){.batch_tokens = batch_tokens, .seed = 1, .shuffle = false});
    if (!it) return -1;
    bool was_training = ctx->training, had_grad = cf_ctx_set_grad(ctx, false);
    ctx->training = false;
    double nll = 0;
    int rc = 0;
    for (int64_t i = 0; i < cf_batcher_n_batches(it); i++) {
        if (cf_interrupted()) { /* between batches: a stop request does not wait for the whole set */
            cf_error_set("interrupted");
            rc = -1;
            break;
        }
        cf_threads_adapt();
        const cf_batch *b = cf_batcher_get(it, i);
        cf_seq_batch sb = {.batch = b->n, .src_len = b->S, .tgt_len = b->T, .src = b->src, .src_lens = b->src_len,
                           .tgt_in = b->tgt_in, .tgt_out = b->tgt_out, .pad_id = CF_PAD_ID};
        cf_ce_stats stats = {0};
        cf_transformer_loss(ctx, m, &sb, 0.0, &stats);
        nll += stats.nll_sum;
        out->n_tokens += stats.n_tokens;
        out->n_sentences += b->n;
        cf_ctx_reset(ctx);
    }
    ctx->training = was_training;
    cf_ctx_set_grad(ctx, had_grad);
    cf_batcher_free(it);
    out->loss = out->n_tokens ? nll / (double)out->n_tokens : 0;
    out->ppl = exp(out->loss);
    return rc;
}

cf_bleu_score cf_eval_bleu(const cf_corpus *c, char *const *hyps, int64_t n) {
    cf_bleu_stats st = {0};
    for (int64_t i = 0; i < n; i++) {
        const char *ref = c->tgt_text + c->tgt_text_off[i];
        bool ok = cf_bleu_stats_add(&st, hyps[i], &ref, 1);
        CF_ASSERT(ok, "hypotheses are sanitised UTF-8 and references were read as UTF-8: %s", cf_error_message());
    }
    return cf_bleu_compute(&st, false);
}

