/* train/copy_task.c - the copy task's training loop (train/copy_task.h). */
#include "train/copy_task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/threads.h"
#include "data/copy.h"
#include "dist/dist.h"
#include "optim/clip.h"
#include "train/metrics.h"
#include "train/step.h"
#include "translate/decode.h"

/* The batch source: batch `index` of epoch `epoch` holds sequences index*n .. index*n + n - 1 of
 * that epoch (the last batch of an epoch may be shorter). Every row has the same length, so there
 * is no padding. */
typedef struct copy_batches {
    cf_copy_task task;
    int64_t per_epoch, batch_size, n_batches; /* sequences, sequences a batch, batches an epoch */
    uint64_t epoch;
    int64_t index;
    int32_t *src, *tgt_in, *tgt_out, *lens;   /* [n, L+1] each, lens [n] */
    cf_seq_batch view;
} copy_batches;

/* Rows [0, n) of a batch from sequences first .. first+n-1 of epoch: src = x <eos>, tgt_in =
 * <bos> x, tgt_out = x <eos>. */
static void fill_rows(copy_batches *b, uint64_t epoch, int64_t first, int64_t n) {
    int64_t L = b->task.len, W = L + 1;
    for (int64_t r = 0; r < n; r++) {
        int32_t *s = b->src + r * W, *ti = b->tgt_in + r * W, *to = b->tgt_out + r * W;
        cf_copy_sequence(&b->task, epoch, first + r, s);
        s[L] = cf_copy_eos(&b->task);
        ti[0] = CF_COPY_BOS;
        memcpy(ti + 1, s, (size_t)L * sizeof *ti);
        memcpy(to, s, (size_t)W * sizeof *to);
        b->lens[r] = (int32_t)W;
    }
    b->view = (cf_seq_batch){.batch = n, .src_len = W, .tgt_len = W, .src = b->src, .src_lens = b->lens,
                             .tgt_in = b->tgt_in, .tgt_out = b->tgt_out, .pad_id = CF_COPY_PAD};
}

static const cf_seq_batch *next_batch(void *arg) {
    copy_batches *b = arg;
    int64_t first = b->index * b->batch_size, n = b->per_epoch - first < b->batch_size ? b->per_epoch - first
                                                                                      : b->batch_size;
    fill_rows(b, b->epoch, first, n);
    if (++b->index == b->n_batches) {
        b->index = 0;
        b->epoch++;
    }
    return &b->view;
}

/* Percent of the n sequences of `epoch` that greedy decoding copies exactly; *copies the count. */
static double exact_copies(const cf_transformer *m, cf_ctx *ctx, copy_batches *b, uint64_t epoch, int64_t n,
                           int64_t *copies) {
    cf_decode_opts o = cf_decode_opts_default();
    o.beam = 1;
    o.length_penalty = 0;
    o.max_len_a = 1; /* up to L + 1 tokens before <eos>: a longer output is wrong, not cut */
    o.max_len_b = 0;
    o.bos_id = CF_COPY_BOS;
    o.eos_id = cf_copy_eos(&b->task);
    o.pad_id = CF_COPY_PAD;
    cf_decode_result res = {0};
    int64_t L = b->task.len, ok = 0;
    for (int64_t first = 0; first < n; first += b->batch_size) {
        int64_t rows = n - first < b->batch_size ? n - first : b->batch_size;
        fill_rows(b, epoch, first, rows);
        if (cf_decode_greedy(m, ctx, b->src, b->lens, rows, L + 1, &o, &res) != 0) {
            cf_decode_result_free(&res);
            return -1;
        }
        for (int64_t r = 0; r < rows; r++)
            ok += cf_decode_result_len(&res, r) == L &&
                  memcmp(res.tokens + res.offsets[r], b->src + r * (L + 1), (size_t)L * sizeof(int32_t)) == 0;
    }
    cf_decode_result_free(&res);
    *copies = ok;
    return n ? 100.0 * (double)ok / (double)n : 0;
}

int cf_copy_train(const cf_config *cfg, const char *run_dir, bool quiet, cf_copy_result *out) {
    memset(out, 0, sizeof *out);
    const cf_data_config *d = &cfg->data;
    const cf_train_config *tc = &cfg->train;
    copy_batches b = {.task = {.seed = cfg->seed, .vocab = d->copy_vocab, .len = d->copy_len}};
    if (cf_copy_task_check(&b.task) != 0) return 2;
    int64_t W = d->copy_len + 1;
    b.per_epoch = d->copy_train;
    b.batch_size = tc->batch_tokens / W > 0 ? tc->batch_tokens / W : 1;
    if (b.batch_size > b.per_epoch) b.batch_size = b.per_epoch;
    b.n_batches = (b.per_epoch + b.batch_size - 1) / b.batch_size;
    size_t cells = (size_t)(b.batch_size * W);
    b.src = cf_xmalloc(cells * sizeof *b.src);
    b.tgt_in = cf_xmalloc(cells * sizeof *b.tgt_in);
    b.tgt_out = cf_xmalloc(cells * sizeof *b.tgt_out);
    b.lens = cf_xmalloc((size_t)b.batch_size * sizeof *b.lens);

    int code = 2;
    cf_model_config mc = cfg->model;
    mc.src_vocab = mc.tgt_vocab = d->copy_vocab;
    cf_transformer *m = cf_transformer_new(&mc, cfg->seed);
    cf_param_list pl;
    cf_param_list_init(&pl);
    cf_optimizer *opt = NULL;
    cf_ctx *ctx = NULL;
    cf_metrics metrics = {0};
    char *json = NULL, *cfg_path = NULL;
    cf_grad_sync *sync = NULL;
    if (!m) goto done;
    for (int i = 0; i < m->params.n; i++)
        if (cf_param_list_add_auto(&pl, m->params.items[i], tc->exempt_embeddings) != 0) goto done;
    if (!(opt = cf_optimizer_new(&pl, &cfg->optim))) goto done;
    if (cf_dist_size() > 1) { /* the practice is one small process: ranks would all write run_dir */
        fprintf(stderr, "error: the copy task runs in one process (started as %d ranks)\n", cf_dist_size());
        goto done;
    }
    if (!(sync = cf_grad_sync_new(opt->params, opt->n, tc->grad_accum, 0))) goto done;
    code = 1;
    if (cf_threads_init((int)tc->threads) != 0) goto done;
    cf_threads_set_adaptive(tc->adapt_threads);
    if (cf_mkdir_p(run_dir) != 0) goto done;
    json = cf_config_to_json(cfg);
    cfg_path = cf_path_join(run_dir, "config.json");
    if (cf_write_file_atomic(cfg_path, json, strlen(json)) != 0) goto done;
    if (cf_metrics_open(&metrics, run_dir, -1) != 0) goto done;
    ctx = cf_ctx_new(cfg->seed);
    if (!quiet)
        printf("copy task: vocab %lld (<bos> 1, <eos> %lld, pad 0), %lld symbols a sequence, %lld sequences an epoch "
               "in batches of %lld | model d_model %lld, %lld+%lld layers, %lld heads, d_ff %lld: %lld parameters | "
               "%d threads\n", (long long)d->copy_vocab, (long long)cf_copy_eos(&b.task), (long long)d->copy_len,
               (long long)b.per_epoch, (long long)b.batch_size, (long long)mc.d_model, (long long)mc.enc_layers,
               (long long)mc.dec_layers, (long long)mc.n_heads, (long long)mc.d_ff,
               (long long)cf_transformer_num_params(m), cf_threads_count());

    cf_nan_guard guard;
    cf_nan_guard_init(&guard, (int)tc->max_bad_steps);
    const cf_step_setup setup = {.ctx = ctx, .model = m, .opt = opt, .schedule = &cfg->schedule,
                                 .label_smoothing = tc->label_smoothing, .clip = tc->clip, .grad_accum = tc->grad_accum,
                                 .guard = &guard, .sync = sync};
    double t0 = cf_now_s(), loss_sum = 0, tokens = 0;
    int64_t step = 0, perfect = 0;
    for (; step < tc->max_steps;) {
        cf_step_result r;
        cf_guard_verdict v = cf_train_step(&setup, step, next_batch, &b, &r);
        if (v == CF_GUARD_STOP) goto done;
        step++;
        if (v == CF_GUARD_OK) loss_sum += r.loss_sum, tokens += r.tokens;
        if (step % tc->log_every == 0) {
            cf_train_event e = {.step = step, .epoch = (int64_t)b.epoch, .loss = tokens > 0 ? loss_sum / tokens : 0,
                                .lr = r.lr, .grad_norm = r.grad_norm, .elapsed_s = cf_now_s() - t0,
                                .threads = cf_threads_count()};
            if (cf_metrics_log_train(&metrics, &e) != 0) goto done;
            loss_sum = tokens = 0;
        }
        if (step % tc->eval_every == 0 || step == tc->max_steps) {
            int64_t copies = 0;
            double exact = exact_copies(m, ctx, &b, CF_COPY_VALID, d->copy_valid, &copies);
            if (exact < 0) goto done;
            out->valid_exact = exact;
            char line[256];
            snprintf(line, sizeof line, "{\"event\":\"eval\",\"step\":%lld,\"exact\":%.2f,\"copies\":%lld,"
                     "\"sentences\":%lld,\"elapsed_s\":%.2f}\n", (long long)step, exact, (long long)copies,
                     (long long)d->copy_valid, cf_now_s() - t0);
            if (cf_metrics_write_raw(&metrics, line) != 0) goto done;
            if (!quiet)
                printf("step %6lld | epoch %lld | lr %.2e | exact greedy copies %6.2f%% (%lld/%lld) | %.1f s\n",
                       (long long)step, (long long)b.epoch, r.lr, exact, (long long)copies, (long long)d->copy_valid,
                       cf_now_s() - t0);
            /* every validation copy exact at two evaluations in a row: done (one perfect score of 200
             * sequences can be luck; the test set then agrees) */
            perfect = copies == d->copy_valid ? perfect + 1 : 0;
            if (perfect == 2) break;
        }
    }
    out->steps = step;
    out->seconds = cf_now_s() - t0;
    int64_t test_copies = 0;
    out->test_exact = exact_copies(m, ctx, &b, CF_COPY_TEST, d->copy_valid, &test_copies);
    if (out->test_exact < 0) goto done;
    if (!quiet)
        printf("done: %lld steps in %.1f s | valid %.2f%% exact copies | test %.2f%% (%lld/%lld)\n", (long long)step,
               out->seconds, out->valid_exact, out->test_exact, (long long)test_copies, (long long)d->copy_valid);
    code = 0;
done:
    cf_grad_sync_free(sync);
    cf_metrics_close(&metrics);
    cf_ctx_free(ctx);
    cf_optimizer_free(opt);
    cf_param_list_free(&pl);
    cf_transformer_free(m);
    free(json);
    free(cfg_path);
    free(b.src);
    free(b.tgt_in);
    free(b.tgt_out);
    free(b.lens);
    return code;
}
