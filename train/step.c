/* train/step.c - one optimizer update (the order of its parts is in step.h). */
#include "train/step.h"

#include "core/common.h"
#include "core/threads.h"

cf_guard_verdict cf_train_step(const cf_step_setup *s, int64_t step, cf_batch_source next, void *arg,
                               cf_step_result *r) {
    *r = (cf_step_result){0};
    r->threads = cf_threads_adapt(); /* safe between updates: results do not depend on the thread count */
    const int ranks = cf_dist_size(), rank = cf_dist_rank();
    double sync_s = 0;
    for (int64_t micro = 0; micro < s->grad_accum; micro++) {
        const cf_seq_batch *b = next(arg);
        if (micro % ranks != rank) continue; /* another rank's micro-batch: read to keep the data in step */
        double t0 = cf_now_s();
        cf_ctx_begin_step(s->ctx, (uint64_t)(step * s->grad_accum + micro));
        cf_ce_stats stats = {0};
        cf_tensor *loss = cf_transformer_loss(s->ctx, s->model, b, s->label_smoothing, &stats);
        double t1 = cf_now_s();
        cf_backward(s->ctx, loss);
        double t2 = cf_now_s();
        int rc = cf_grad_sync_add(s->sync, micro, loss->data[0], stats.n_tokens);
        double t3 = cf_now_s();
        cf_ctx_reset(s->ctx);
        double t4 = cf_now_s();
        r->forward_s += t1 - t0;
        r->backward_s += t2 - t1;
        r->reset_s += t4 - t3;
        sync_s += t3 - t2;
        if (rc != 0) {
            r->failed = true;
            return r->verdict = CF_GUARD_STOP;
        }
    }
    double t0 = cf_now_s();
    cf_grad_sync_totals tot;
    if (cf_grad_sync_finish(s->sync, s->stop, &tot) != 0) {
        r->failed = true;
        return r->verdict = CF_GUARD_STOP;
    }
    r->sync_s = sync_s + cf_now_s() - t0;
    r->loss_sum = tot.loss_sum;
    r->tokens = tot.tokens;
    r->stop = tot.stop;
    cf_tensor **params = s->opt->params;
    int n_params = s->opt->n;
    /* Two passes over the parameters: the norm, then clip + update + zero-grad in one loop. */
    r->grad_norm = cf_grad_norm(params, n_params);
    r->loss = r->tokens > 0 ? r->loss_sum / r->tokens : 0;
    r->verdict = cf_nan_guard_check(s->guard, step + 1, r->loss, r->grad_norm);
    r->lr = cf_schedule_lr(s->schedule, step + 1);
    if (r->verdict == CF_GUARD_OK)
        cf_optimizer_step_and_zero(s->opt, r->lr, s->clip > 0 ? cf_clip_coef(r->grad_norm, s->clip) : 1.0);
    else
        cf_optimizer_zero_grad(s->opt);
    r->update_s = sync_s + cf_now_s() - t0;
    return r->verdict;
}
