/* train/trainer.c - the training loop: batches, updates, logging, evaluation, checkpoints, resume. */
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/interrupt.h"
#include "core/json.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "core/threads.h"
#include "data/batch.h"
#include "dist/dist.h"
#include "optim/clip.h"
#include "train/checkpoint.h"
#include "train/dist_setup.h"
#include "train/evaluate.h"
#include "train/lock.h"
#include "train/metrics.h"
#include "train/run.h"
#include "train/step.h"
#include "train/train_state.h"

/* Ctrl-C and SIGTERM (core/interrupt.h): the first asks to stop at the next safe point, a second
 * one kills at once (checkpoints are crash-safe anyway). */
#define stop_requested cf_interrupted()

/* Sums since the last log line; kept in checkpoints so a resumed run logs the same losses. The
 * rate (tokens/s, ETA) counts only what this session trained since t0: after a resume the window
 * holds tokens of the stopped session, which took no time in this one. */
typedef struct window {
    double loss_sum, tokens, t0;
    int64_t updates;
    double rate_tokens;
    int64_t rate_updates;
} window;

/* Everything a training run holds. */
typedef struct trainer {
    const cf_train_args *args;
    cf_config cfg;
    char *dir;
    char *config_json;              /* the effective config: config.json */
    char *ckpt_config_json;         /* the same without how-to-run keys: the checkpoints' metadata */
    cf_tokenizer *src_tok, *tgt_tok;  /* the same tokenizer when the vocabulary is shared */
    cf_corpus *train, *valid, *test;
    cf_transformer *model;
    cf_param_list plist;
    cf_optimizer *opt;
    cf_batcher *batches;
    cf_seq_batch micro;         /* the micro-batch cf_train_step is working on */
    cf_ctx *ctx;
    cf_metrics metrics;
    cf_nan_guard guard;
    int64_t step;               /* updates done */
    double best_bleu;
    int64_t best_step, evals_since_best;
    double elapsed_before;      /* seconds trained before a resume */
    double t_start;
    window w;
    bool tty;
    bool eval_pending;          /* the evaluation of `step` did not finish: redo it on resume */
    bool pending_best;          /* the evaluation in progress found a new best */
    char *metrics_unwritten;    /* metrics lines of a resumed run's predecessor that a write failure kept */
    cf_run_lock *lock;          /* rank 0's: the one process that writes the run directory holds it */
    bool io_failed;             /* a write into the run directory failed: exit 1, not 2 (bad input) */
    bool quiet;                 /* --quiet, or not rank 0: only rank 0 prints progress */
    bool root;                  /* rank 0: the one that writes the run directory */
    int ranks;                  /* data-parallel processes (1 without mpirun) */
    bool stopped;               /* a stop signal ended the loop (on some rank: all stopped together) */
    bool failure_agreed;        /* the loop failed the same way on every rank (non-finite updates) */
    cf_grad_sync *sync;
} trainer;

static void say(const trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const trainer *t, const char *fmt, ...) {
    if (t->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    if (t->tty) fputs("\r\033[K", stdout);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* ---- set-up ---- */

/* Train a tokenizer of the configured kind on files and save it in the run directory under name. */
static cf_tokenizer *train_tokenizer(trainer *t, cf_tok_kind kind, const char *const *files, int n_files,
                                     const char *name) {
    double t0 = cf_now_s();
    cf_tokenizer *tok = cf_tokenizer_train_files(kind, files, n_files, (int)t->cfg.data.vocab_size);
    if (!tok) return NULL;
    say(t, "%s: %s, %d tokens, trained in %.2f s\n", name, cf_tok_kind_name(kind), cf_tokenizer_vocab_size(tok),
        cf_now_s() - t0);
    char *path = cf_path_join(t->dir, name);
    int rc = t->root ? cf_tokenizer_save(tok, path) : 0;
    free(path);
    if (rc != 0) {
        t->io_failed = true;
        cf_tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

/* data.tokenizer: a kind to train (NULL: bpe), else the path of an existing file of any kind. */
static int setup_tokenizer(trainer *t, bool resume) {
    const cf_data_config *d = &t->cfg.data;
    if (resume) return cf_run_load_tokenizers(t->dir, d->shared_vocab, &t->src_tok, &t->tgt_tok);
    int kind = d->tokenizer ? cf_tok_kind_parse(d->tokenizer) : CF_TOK_BPE;
    if (kind < 0) {
        t->src_tok = t->tgt_tok = cf_tokenizer_load(d->tokenizer);
        char *path = cf_path_join(t->dir, "tokenizer.json");
        int rc = !t->src_tok ? -1 : t->root ? cf_tokenizer_save(t->src_tok, path) : 0;
        if (t->src_tok && rc != 0) t->io_failed = true;
        free(path);
        return rc;
    }
    if (d->shared_vocab) {
        const char *files[2] = {d->train_tsv ? d->train_tsv : d->train_src, d->train_tgt};
        t->src_tok = t->tgt_tok = train_tokenizer(t, (cf_tok_kind)kind, files, d->train_tsv ? 1 : 2, "tokenizer.json");
        return t->src_tok ? 0 : -1;
    }
    t->src_tok = train_tokenizer(t, (cf_tok_kind)kind, (const char *[]){d->train_src}, 1, "tokenizer.json");
    t->tgt_tok = t->src_tok ? train_tokenizer(t, (cf_tok_kind)kind, (const char *[]){d->train_tgt}, 1, "tokenizer.tgt.json")
                            : NULL;
    return t->tgt_tok ? 0 : -1;
}

static int setup_data(trainer *t) {
    const cf_data_config *d = &t->cfg.data;
    FILE *log = t->quiet ? NULL : stdout;
    if (!t->quiet) printf("train: ");
    t->train = cf_run_load_corpus(&t->cfg, t->src_tok, t->tgt_tok, d->train_src, d->train_tgt, d->train_tsv, true, false, log);
    if (!t->train) return -1;
    if (!t->quiet) printf("valid: ");
    t->valid = cf_run_load_corpus(&t->cfg, t->src_tok, t->tgt_tok, d->valid_src, d->valid_tgt, d->valid_tsv, false, true, log);
    if (!t->valid) return -1;
    if (t->train->n == 0) {
        cf_error_set("%s: no training pairs left after filtering", d->train_tsv ? d->train_tsv : d->train_src);
        return -1;
    }
    t->batches = cf_batcher_new(t->train, &(cf_batch_opts){.batch_tokens = t->cfg.train.batch_tokens,
                                                            .seed = t->cfg.seed, .shuffle = true});
    return t->batches ? 0 : -1;
}

static int setup_model(trainer *t) {
    cf_model_config mc = cf_run_model_config(&t->cfg, t->src_tok, t->tgt_tok);
    t->model = cf_transformer_new(&mc, t->cfg.seed);
    if (!t->model) return -1;
    cf_param_list_init(&t->plist);
    for (int i = 0; i < t->model->params.n; i++)
        if (cf_param_list_add_auto(&t->plist, t->model->params.items[i], t->cfg.train.exempt_embeddings) != 0) return -1;
    t->opt = cf_optimizer_new(&t->plist, &t->cfg.optim);
    if (!t->opt) return -1;
    t->ctx = cf_ctx_new(t->cfg.seed);
    return 0;
}

/* ---- checkpoint state ---- */

static cJSON *state_to_json(const trainer *t, double elapsed) {
    cf_train_state st = {.step = t->step, .data = cf_batcher_state(t->batches), .best_bleu = t->best_bleu,
                         .best_step = t->best_step, .evals_since_best = t->evals_since_best,
                         .bad_steps_in_a_row = t->guard.consecutive, .bad_steps_total = t->guard.skipped,
                         .elapsed_s = elapsed, .window_loss_sum = t->w.loss_sum, .window_tokens = t->w.tokens,
                         .window_updates = t->w.updates, .threads = cf_threads_max(), .ranks = t->ranks,
                         .eval_pending = t->eval_pending};
    cJSON *s = cf_train_state_to_json(&st, cf_schedule_kind_name(t->cfg.schedule.kind),
                                      cf_schedule_lr(&t->cfg.schedule, t->step + 1));
    if (t->metrics.unwritten) cJSON_AddStringToObject(s, "metrics_unwritten", t->metrics.unwritten);
    return s;
}

static int state_from_json(trainer *t, const cJSON *s, const char *where) {
    char *path = cf_path_join(where, "state.json");
    cf_train_state st;
    int rc = cf_train_state_from_json(&st, s, path);
    const cJSON *unwritten = cJSON_GetObjectItemCaseSensitive(s, "metrics_unwritten");
    if (rc == 0 && unwritten && !cJSON_IsString(unwritten)) {
        cf_error_set("%s: \"metrics_unwritten\": expected a string", path);
        rc = -1;
    }
    free(path);
    if (rc != 0) return -1;
    if (cf_batcher_set_state(t->batches, &st.data) != 0) return -1;
    t->step = st.step;
    t->best_bleu = st.best_bleu;
    t->best_step = st.best_step;
    t->evals_since_best = st.evals_since_best;
    t->guard.consecutive = st.bad_steps_in_a_row;
    t->guard.skipped = st.bad_steps_total;
    t->elapsed_before = st.elapsed_s;
    t->w.loss_sum = st.window_loss_sum;
    t->w.tokens = st.window_tokens;
    t->w.updates = st.window_updates;
    t->eval_pending = st.eval_pending;
    if (unwritten) t->metrics_unwritten = cf_xstrdup(unwritten->valuestring);
    return 0;
}

/* The table marks the keys that fix parameter or optimizer-state shapes. */
static bool changes_shapes(const char *key) {
    const cf_config_key *k = cf_config_key_find(key);
    return k && k->sets_shapes;
}

/* The table marks the keys that say how a run executes, not what it computes (RUN_ONLY): they are
 * left out of the checkpoints' metadata, so that the same training on 1 or 8 threads writes
 * byte-identical files (config.json keeps them; state.json records the thread count). */
static bool is_run_only(const char *section, const char *key) {
    char path[128];
    snprintf(path, sizeof path, "%s.%s", section, key);
    const cf_config_key *k = cf_config_key_find(path);
    return k && k->run_only;
}

static char *checkpoint_config_json(const char *config_json) {
    cJSON *root = cJSON_Parse(config_json);
    CF_ASSERT(root, "the effective config does not parse");
    int n;
    const cf_config_key *keys = cf_config_keys(&n);
    char section[32];
    for (int i = 0; i < n; i++) {
        const char *dot = strchr(keys[i].path, '.');
        if (!keys[i].run_only || !dot) continue;
        snprintf(section, sizeof section, "%.*s", (int)(dot - keys[i].path), keys[i].path);
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, section), dot + 1);
    }
    cf_json_exact(root); /* printed again: keep every digit (core/json.h) */
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    CF_ASSERT(text, "cJSON_Print failed");
    return text;
}

/* K ranks: the expert assignments and load-balancing losses since the last log line, summed over
 * the ranks in rank order, so that the log shows the global batch's expert load as one process
 * with grad_accum K does (the counts exactly; the mean loss up to the order of its sum). Every
 * rank calls it at the same update. 0, or -1 with a message (the exchange failed). */
static int moe_sum_over_ranks(trainer *t) {
    cf_moe_collector *c = t->model->moe;
    const int64_t n = c->n_layers * c->n_experts;
    const size_t per = (size_t)n + 2;
    double *mine = cf_xmalloc(per * sizeof *mine), *all = cf_xmalloc(per * (size_t)t->ranks * sizeof *all);
    for (int64_t i = 0; i < n; i++) mine[i] = (double)c->counts[i]; /* exact below 2^53 */
    mine[n] = c->aux_sum;
    mine[n + 1] = (double)c->aux_n;
    int rc = cf_dist_allgather(mine, all, per * sizeof *mine, "expert load");
    if (rc == 0) {
        for (size_t i = 0; i < per; i++) {
            double sum = 0;
            for (int r = 0; r < t->ranks; r++) sum += all[(size_t)r * per + i];
            mine[i] = sum;
        }
        for (int64_t i = 0; i < n; i++) c->counts[i] = (int64_t)mine[i];
        c->aux_sum = mine[n];
        c->aux_n = (int64_t)mine[n + 1];
    }
    free(mine);
    free(all);
    return rc;
}

/* Compare the checkpoint's config with the one given now: refuse shape changes, report others.
 * The saved config is compared as parsed today: a key it lacks (one added to cformer after the
 * checkpoint was written) has its default, so it differs only if the run now sets another value. */
static int check_resume_config(trainer *t, const char *saved_json, const char *ckpt) {
    cf_config saved;
    if (cf_config_parse_opts(&saved, saved_json, ckpt, 0, NULL, &(cf_config_opts){.check_paths = false}) != 0)
        return -1;
    int rc = 0;
    char *saved_full = cf_config_to_json(&saved);
    cJSON *a = cJSON_Parse(saved_full);
    free(saved_full);
    char *now_json = cf_config_to_json(&t->cfg);
    cJSON *b = cJSON_Parse(now_json);
    for (const cJSON *sec = b ? b->child : NULL; sec; sec = sec->next) {
        const cJSON *old_sec = cJSON_GetObjectItemCaseSensitive(a, sec->string);
        const cJSON *items = cJSON_IsObject(sec) ? sec->child : sec;
        for (const cJSON *it = items; it; it = cJSON_IsObject(sec) ? it->next : NULL) {
            char key[128];
            const cJSON *old = cJSON_IsObject(sec) ? cJSON_GetObjectItemCaseSensitive(old_sec, it->string) : old_sec;
            snprintf(key, sizeof key, cJSON_IsObject(sec) ? "%s.%s" : "%s", sec->string, it->string);
            if (old && cJSON_Compare(old, it, true)) continue;
            if (cJSON_IsObject(sec) && is_run_only(sec->string, it->string)) continue;
            char *was = old ? cJSON_PrintUnformatted(old) : cf_xstrdup("(absent)");
            char *is = cJSON_PrintUnformatted(it);
            if (changes_shapes(key)) {
                cf_error_set("cannot resume %s: %s changed from %s to %s (it changes parameter shapes)", t->dir, key,
                             was, is);
                rc = -1;
            } else if (!t->quiet) {
                printf("resume: %s changed from %s to %s\n", key, was, is);
            }
            free(was);
            free(is);
            if (rc) break;
        }
        if (rc) break;
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(now_json);
    cf_config_free(&saved);
    return rc;
}

static int resume_from_checkpoint(trainer *t, bool *resumed) {
    *resumed = false;
    char *ckpt = cf_checkpoint_resolve(t->dir);
    if (!ckpt) {
        say(t, "resume: no checkpoint in %s yet, starting from step 0\n", t->dir);
        return 1; /* nothing to resume */
    }
    char *saved_config = NULL;
    cJSON *state = NULL;
    int rc = -1;
    char *model_path = cf_path_join(ckpt, "model.safetensors");
    cf_st_file *f = cf_st_open(model_path);
    free(model_path);
    if (!f) goto out;
    const char *meta = cf_st_metadata(f, "config");
    saved_config = meta ? cf_xstrdup(meta) : NULL;
    cf_st_close(f);
    if (!saved_config) {
        cf_error_set("%s/model.safetensors: no config in its metadata", ckpt);
        goto out;
    }
    if (check_resume_config(t, saved_config, ckpt) != 0) goto out;
    if (cf_checkpoint_load(ckpt, &t->model->params, t->opt, &state, NULL) != 0) goto out;
    if (state_from_json(t, state, ckpt) != 0) goto out;
    say(t, "resume: continuing from %s (step %lld)\n", ckpt, (long long)t->step);
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(state, "threads"); /* validated by state_from_json */
    int saved_threads = cJSON_IsNumber(th) ? (int)th->valuedouble : 0;
    if (saved_threads > 0 && saved_threads != cf_threads_max())
        say(t, "resume: the checkpoint was written with %d threads, this run uses %d (results are identical for "
               "any thread count)\n", saved_threads, cf_threads_max());
    const cJSON *rk = cJSON_GetObjectItemCaseSensitive(state, "ranks"); /* validated too; absent: 1 */
    int saved_ranks = cJSON_IsNumber(rk) ? (int)rk->valuedouble : 1;
    if (saved_ranks != t->ranks)
        say(t, "resume: the checkpoint was written by %d rank%s, this run has %d (identical results for the same "
               "global train.grad_accum, %lld)\n", saved_ranks, saved_ranks == 1 ? "" : "s", t->ranks,
            (long long)t->cfg.train.grad_accum);
    *resumed = true;
    rc = 0;
out:
    free(ckpt);
    free(saved_config);
    cJSON_Delete(state);
    return rc;
}

/* ---- evaluation and saving ---- */

enum { EVAL_NOT_BEST = 0, EVAL_BEST = 1, EVAL_FAILED = -1, EVAL_INTERRUPTED = -2 };

static int save(trainer *t, bool is_best, double elapsed) {
    if (!t->root) return 0; /* rank 0 alone writes the run directory */
    cJSON *state = state_to_json(t, elapsed);
    int rc = cf_checkpoint_save(t->dir, t->step, &t->model->params, t->opt, state, t->ckpt_config_json, is_best,
                                (int)t->cfg.train.keep_last);
    cJSON_Delete(state);
    if (rc == 0) say(t, "saved checkpoint step %lld%s\n", (long long)t->step, is_best ? " (best)" : "");
    return rc;
}

/* A metrics or curves write failed (most likely a full disk). Keep its message and still try to
 * write this step's checkpoint: it holds the lines that could not be written (metrics_unwritten),
 * so if it succeeds the run loses nothing; if not, the latest complete checkpoint stays as it was.
 * Returns 1 (the run stops). */
static int fail_after_checkpoint(trainer *t, double elapsed) {
    char first[1024];
    snprintf(first, sizeof first, "%s", cf_error_message());
    if (save(t, t->pending_best, elapsed) == 0) {
        cf_error_set("%s (the checkpoint of step %lld was written: --resume continues once there is space)", first,
                     (long long)t->step);
    } else {
        char second[1024];
        snprintf(second, sizeof second, "%s", cf_error_message());
        cf_error_set("%s; the checkpoint of step %lld could not be written either (%s): --resume continues from the "
                     "latest complete one", first, (long long)t->step, second);
    }
    return 1;
}

/* Validation loss and BLEU of t->step, on rank 0. EVAL_INTERRUPTED leaves t->eval_pending set (the
 * checkpoint written next says so, and a resume redoes this evaluation first); EVAL_FAILED has
 * written what fail_after_checkpoint could. */
static int evaluate_here(trainer *t, double elapsed) {
    double t0 = cf_now_s();
    t->eval_pending = true;
    t->pending_best = false;
    cf_eval_loss_result l;
    if (cf_eval_loss(t->ctx, t->model, t->valid, t->cfg.train.batch_tokens, &l) != 0)
        return stop_requested ? EVAL_INTERRUPTED : EVAL_FAILED;
    int64_t n = t->cfg.train.eval_max_sentences;
    if (n <= 0 || n > t->valid->n) n = t->valid->n;
    cf_decode_opts o = cf_config_decode_opts(&t->cfg.decode);
    o.beam = t->cfg.decode.eval_beam;
    char **hyps = cf_translate_corpus(t->ctx, t->model, t->tgt_tok, t->valid, n, &o, t->cfg.decode.batch_size);
    if (!hyps) return stop_requested ? EVAL_INTERRUPTED : EVAL_FAILED;
    cf_bleu_score b = cf_eval_bleu(t->valid, hyps, n);
    cf_strings_free(hyps, n);
    t->eval_pending = false;
    bool best = b.score > t->best_bleu;
    if (best) {
        t->best_bleu = b.score;
        t->best_step = t->step;
        t->evals_since_best = 0;
    } else {
        t->evals_since_best++;
    }
    t->pending_best = best;
    cf_eval_event e = {.step = t->step, .valid_loss = l.loss, .valid_ppl = l.ppl, .bleu = b.score,
                       .elapsed_s = elapsed, .n_sentences = n};
    if (cf_metrics_log_eval(&t->metrics, &e) != 0 || cf_metrics_write_svg(&t->metrics) != 0) {
        fail_after_checkpoint(t, elapsed);
        return EVAL_FAILED;
    }
    say(t, "eval  step %6lld | valid loss %.4f ppl %.2f | BLEU %.2f on %lld sentences%s | %.1f s\n",
        (long long)t->step, l.loss, l.ppl, b.score, (long long)n, best ? " (best)" : "", cf_now_s() - t0);
    return best ? EVAL_BEST : EVAL_NOT_BEST;
}

/* Rank 0 evaluates (the others wait); its verdict steers saving, early stopping and a stop during
 * the evaluation everywhere. EVAL_FAILED on rank 0 (a write error, after fail_after_checkpoint) is
 * its own: the caller ends the job. */
static int evaluate(trainer *t, double elapsed) {
    int r = t->root ? evaluate_here(t, elapsed) : EVAL_NOT_BEST;
    if (r == EVAL_FAILED || t->ranks == 1) return r;
    struct { double best_bleu; int64_t best_step, evals_since_best, r; } b = {t->best_bleu, t->best_step,
                                                                              t->evals_since_best, r};
    if (cf_dist_bcast(&b, sizeof b, 0, "sharing the evaluation") != 0) return EVAL_FAILED;
    t->best_bleu = b.best_bleu;
    t->best_step = b.best_step;
    t->evals_since_best = b.evals_since_best;
    t->eval_pending = b.r == EVAL_INTERRUPTED;
    t->pending_best = b.r == EVAL_BEST;
    return (int)b.r;
}

/* ---- the loop ---- */

/* cf_train_step's source of micro-batches: the batcher's next batch, as the model reads it. */
static const cf_seq_batch *next_micro_batch(void *arg) {
    trainer *t = arg;
    const cf_batch *b = cf_batcher_next(t->batches);
    t->micro = (cf_seq_batch){.batch = b->n, .src_len = b->S, .tgt_len = b->T, .src = b->src,
                              .src_lens = b->src_len, .tgt_in = b->tgt_in, .tgt_out = b->tgt_out,
                              .pad_id = CF_PAD_ID};
    return &t->micro;
}

typedef enum step_end { STEP_GO_ON, STEP_DONE, STEP_INTERRUPTED, STEP_FAILED } step_end;

/* What follows the update of t->step: the evaluation when due, the patience check, and a
 * checkpoint when one is due (save_every, max_steps) or the evaluation found a new best. */
static step_end eval_and_save(trainer *t, bool eval_due, double elapsed, bool *saved) {
    const cf_train_config *tc = &t->cfg.train;
    bool is_best = false;
    *saved = false;
    if (eval_due) {
        if (t->tty && !t->quiet) printf("\n");
        int r = evaluate(t, elapsed);
        if (r == EVAL_INTERRUPTED) return STEP_INTERRUPTED;
        if (r == EVAL_FAILED) return STEP_FAILED;
        is_best = r == EVAL_BEST;
        if (tc->patience > 0 && t->evals_since_best >= tc->patience) {
            say(t, "early stop: no better BLEU in %lld evaluations (best %.2f at step %lld)\n",
                (long long)t->evals_since_best, t->best_bleu, (long long)t->best_step);
            if (save(t, is_best, elapsed) != 0) return STEP_FAILED;
            *saved = true;
            return STEP_DONE;
        }
    }
    if (t->step % tc->save_every == 0 || t->step == tc->max_steps || is_best) {
        if (save(t, is_best, elapsed) != 0) return STEP_FAILED;
        *saved = true;
    }
    return STEP_GO_ON;
}

static void rate_restart(window *w) {
    w->t0 = cf_now_s();
    w->rate_tokens = 0;
    w->rate_updates = 0;
}

static int train_loop(trainer *t) {
    const cf_train_config *tc = &t->cfg.train;
    const cf_step_setup setup = {.ctx = t->ctx, .model = t->model, .opt = t->opt, .schedule = &t->cfg.schedule,
                                 .label_smoothing = tc->label_smoothing, .clip = tc->clip,
                                 .grad_accum = tc->grad_accum, .guard = &t->guard, .sync = t->sync,
                                 .stop = cf_interrupt_flag()};
    window w = t->w;
    rate_restart(&w); /* the window's tokens from before a resume took no time in this session */
    bool saved_now = false;
    /* K ranks stop after the update at which any of them had a signal (the exchange carries the
     * flags), or together when rank 0's evaluation was interrupted; one process also stops between
     * an evaluation and the next update. */
    bool stop = false;
    /* (K ranks all take this branch: the evaluation is shared, and rank 0's verdict says whether it
     * was interrupted.) */
    if (t->eval_pending && (t->ranks > 1 || !stop_requested)) {
        /* The run was stopped during this step's evaluation: do it now, as the run that never
         * stopped did, so that metrics, best link and patience come out the same. */
        say(t, "resume: running the evaluation of step %lld that was interrupted\n", (long long)t->step);
        step_end r = eval_and_save(t, true, t->elapsed_before, &saved_now);
        if (r == STEP_FAILED) return 1;
        if (r == STEP_DONE) return 0;
        if (r == STEP_INTERRUPTED) stop = true;
        rate_restart(&w);
    }
    while (t->step < tc->max_steps && !(stop || (t->ranks == 1 && stop_requested))) {
        cf_step_result res;
        cf_guard_verdict v = cf_train_step(&setup, t->step, next_micro_batch, t, &res);
        if (res.failed) return 1;
        stop = res.stop;
        double lr = res.lr, grad_norm = res.grad_norm;
        if (v != CF_GUARD_OK) {
            say(t, "step %lld: %s\n", (long long)(t->step + 1), t->guard.message);
            if (v == CF_GUARD_STOP) {
                t->failure_agreed = true;
                cf_error_set("stopping: %d updates in a row had a non-finite loss or gradient", t->guard.consecutive);
                return 1;
            }
        }
        t->step++;
        saved_now = false;
        if (v == CF_GUARD_OK) {
            w.loss_sum += res.loss_sum;
            w.tokens += res.tokens;
            w.rate_tokens += res.tokens;
        }
        w.updates++;
        w.rate_updates++;

        double elapsed = t->elapsed_before + cf_now_s() - t->t_start;
        const bool eval_due = t->step % tc->eval_every == 0 || t->step == tc->max_steps;
        if (t->step % tc->log_every == 0 || t->step == tc->max_steps) {
            double dt = cf_now_s() - w.t0, tps = dt > 0 ? w.rate_tokens / dt : 0;
            cf_moe_load moe = {0}; /* MoE: expert shares since the last line */
            if (t->model->moe && t->ranks > 1 && moe_sum_over_ranks(t) != 0) return 1;
            if (t->model->moe) cf_moe_collector_take(t->model->moe, &moe);
            cf_train_event e = {.step = t->step, .epoch = (int64_t)cf_batcher_state(t->batches).epoch,
                                .loss = w.tokens > 0 ? w.loss_sum / w.tokens : 0, .lr = lr, .grad_norm = grad_norm,
                                .tokens_per_s = tps, .rate_tokens = w.rate_tokens, .elapsed_s = elapsed,
                                .threads = cf_threads_count(),
                                .moe = t->model->moe ? &moe : NULL};
            bool logged = !t->root || cf_metrics_log_train(&t->metrics, &e) == 0;
            double moe_max = 0; /* the busiest expert's share, as a multiple of the even share 1/E */
            for (int i = 0; i < moe.n_layers * moe.n_experts; i++) moe_max = fmax(moe_max, moe.share[i] * moe.n_experts);
            cf_moe_load_free(&moe);
            double eta = dt / (double)w.rate_updates * (double)(tc->max_steps - t->step);
            w = (window){.t0 = cf_now_s()};
            t->w = w;
            if (!logged) { /* the line waits in the checkpoint; so does this step's evaluation */
                t->eval_pending = eval_due;
                t->pending_best = false;
                return fail_after_checkpoint(t, elapsed);
            }
            if (!t->quiet) {
                if (t->tty) printf("\r\033[K");
                printf("step %6lld/%lld | epoch %lld | loss %.4f | lr %.2e | gnorm %.2f | %.0f tok/s | ETA %02d:%02d",
                       (long long)t->step, (long long)tc->max_steps, (long long)e.epoch, e.loss, lr, grad_norm, tps,
                       (int)(eta / 60), (int)eta % 60);
                if (t->model->moe) printf(" | moe aux %.3f, busiest expert %.2fx even", e.moe->aux, moe_max);
                if (cf_threads_count() != cf_threads_max()) /* the machine is busy: say why it is slower */
                    printf(" | %d of %d threads (other processes use %.1f CPUs)", cf_threads_count(),
                           cf_threads_max(), cf_threads_load_others());
                if (!t->tty) printf("\n");
                fflush(stdout);
            }
        }
        t->w = w;
        step_end r = eval_and_save(t, eval_due, elapsed, &saved_now);
        if (r == STEP_FAILED) return 1;
        if (r == STEP_DONE) return 0;
        if (r == STEP_INTERRUPTED) {
            stop = true;
            break;
        }
        if (eval_due) rate_restart(&w); /* evaluation time is not training throughput */
    }
    t->stopped = stop || (t->ranks == 1 && stop_requested);
    if (t->stopped && !saved_now) {
        if (t->tty && !t->quiet) printf("\n");
        say(t, "interrupted (signal %d)%s: writing a checkpoint at step %lld\n", (int)stop_requested,
            t->eval_pending ? " during the evaluation" : "", (long long)t->step);
        if (save(t, false, t->elapsed_before + cf_now_s() - t->t_start) != 0) return 1;
    }
    return 0;
}

/* 1: interrupted (the run is complete; only its test BLEU is missing). */
static int final_test(trainer *t) {
    const cf_data_config *d = &t->cfg.data;
    if (!d->test_src && !d->test_tsv) return 0;
    /* Evaluate the best checkpoint's weights, as `cformer eval RUN_DIR --split test` would. */
    char *link = cf_path_join(t->dir, "checkpoints/best");
    char *best = access(link, F_OK) == 0 ? cf_checkpoint_resolve(link) : NULL;
    free(link);
    if (best && cf_checkpoint_load(best, &t->model->params, NULL, NULL, NULL) != 0) {
        free(best);
        return -1;
    }
    free(best);
    if (!t->quiet) printf("test: ");
    t->test = cf_run_load_corpus(&t->cfg, t->src_tok, t->tgt_tok, d->test_src, d->test_tgt, d->test_tsv, false, true,
                                 t->quiet ? NULL : stdout);
    if (!t->test) return -1;
    cf_decode_opts o = cf_config_decode_opts(&t->cfg.decode);
    double t0 = cf_now_s();
    char **hyps = cf_translate_corpus(t->ctx, t->model, t->tgt_tok, t->test, 0, &o, t->cfg.decode.batch_size);
    if (!hyps) {
        if (!stop_requested) return -1;
        say(t, "interrupted during the final test: training is complete (cformer eval %s --split test gives its "
               "test BLEU)\n", t->dir);
        return 1;
    }
    cf_bleu_score b = cf_eval_bleu(t->test, hyps, t->test->n);
    char line[CF_BLEU_LINE_MAX];
    cf_bleu_format(&b, line, sizeof line);
    char *path = cf_path_join(t->dir, "test.hyp");
    int rc = cf_write_lines_atomic(path, (const char *const *)hyps, t->test->n);
    cf_strings_free(hyps, t->test->n);
    printf("test BLEU (best checkpoint, step %lld, beam %lld, %lld sentences, %.1f s): %s\n",
           (long long)t->best_step, (long long)o.beam, (long long)t->test->n, cf_now_s() - t0, line);
    if (rc == 0) printf("hypotheses: %s\n", path);
    free(path);
    return rc;
}

/* s as one shell word: as it is when it is safe, else single-quoted. */
static void print_shell_word(const char *s) {
    const char *safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./=:,+-@%";
    if (*s && strspn(s, safe) == strlen(s)) {
        fputs(s, stdout);
        return;
    }
    putchar('\'');
    for (; *s; s++) {
        if (*s == '\'') fputs("'\\''", stdout); /* close the quote, an escaped quote, reopen */
        else putchar(*s);
    }
    putchar('\'');
}

/* The command that continues the run: the one given, with --out and --resume and the same --set
 * overrides (without them the resume would read another config: a changed max_steps, or a
 * refusal if a shape key was overridden). */
static void print_resume_hint(const trainer *t) {
    printf("stopped at step %lld; continue with: ", (long long)t->step);
    if (t->ranks > 1) printf("mpirun -np %d ", t->ranks);
    fputs("cformer train ", stdout);
    print_shell_word(t->args->config_path);
    fputs(" --out ", stdout);
    print_shell_word(t->dir);
    fputs(" --resume", stdout);
    for (int i = 0; i < t->args->n_sets; i++) {
        fputs(" --set ", stdout);
        print_shell_word(t->args->sets[i]);
    }
    putchar('\n');
}

static void trainer_free(trainer *t) {
    cf_grad_sync_free(t->sync);
    cf_metrics_close(&t->metrics);
    cf_batcher_free(t->batches);
    cf_corpus_free(t->train);
    cf_corpus_free(t->valid);
    cf_corpus_free(t->test);
    cf_optimizer_free(t->opt);
    cf_param_list_free(&t->plist);
    cf_transformer_free(t->model);
    cf_ctx_free(t->ctx);
    cf_run_free_tokenizers(t->src_tok, t->tgt_tok);
    free(t->config_json);
    free(t->ckpt_config_json);
    free(t->metrics_unwritten);
    free(t->dir);
    if (t->cfg.source_path) cf_config_free(&t->cfg);
    cf_run_lock_release(t->lock); /* last: until here this process may still write into the run */
}

/* What every rank must agree on before the first update (train/dist_setup.h). */
static cf_fingerprint fingerprint(const trainer *t) {
    cf_fingerprint fp = {0};
    cf_fingerprint_add(&fp.config, t->ckpt_config_json, strlen(t->ckpt_config_json));
    const cf_corpus *cs[2] = {t->train, t->valid};
    for (int k = 0; k < 2; k++) {
        const cf_corpus *c = cs[k];
        cf_fingerprint_add(&fp.data, &c->n, sizeof c->n);
        cf_fingerprint_add(&fp.data, c->src_off, (size_t)(c->n + 1) * sizeof *c->src_off);
        cf_fingerprint_add(&fp.data, c->tgt_off, (size_t)(c->n + 1) * sizeof *c->tgt_off);
        cf_fingerprint_add(&fp.data, c->src_ids, (size_t)c->src_off[c->n] * sizeof *c->src_ids);
        cf_fingerprint_add(&fp.data, c->tgt_ids, (size_t)c->tgt_off[c->n] * sizeof *c->tgt_ids);
    }
    const int vocab[2] = {cf_tokenizer_vocab_size(t->src_tok), cf_tokenizer_vocab_size(t->tgt_tok)};
    cf_fingerprint_add(&fp.data, vocab, sizeof vocab);
    const cf_params *ps = &t->model->params;
    for (int i = 0; i < ps->n; i++)
        cf_fingerprint_add(&fp.state, ps->items[i]->data, (size_t)ps->items[i]->numel * sizeof(cf_real));
    cf_batch_state b = cf_batcher_state(t->batches);
    const int64_t where[4] = {t->step, (int64_t)b.epoch, (int64_t)b.index, (int64_t)b.rng_counter};
    cf_fingerprint_add(&fp.state, where, sizeof where);
    return fp;
}

/* Single process: the exit code. K ranks: a failure every rank shares (the set-up agreement, a
 * non-finite stop, a stop signal) ends through MPI_Finalize; one this rank has alone (a write
 * error on rank 0, a peer gone) through MPI_Abort, since the others would wait for it for ever. */
static int leave(trainer *t, int code, bool agreed) {
    /* The stop handler stays until the process exits: a signal that comes now, with the work done
     * (or, on K ranks, while MPI_Finalize waits for rank 0's final test), only sets the flag, so
     * the exit code is the run's and never a kill in the middle of the clean-up. */
    trainer_free(t);
    if (t->ranks > 1 && !agreed) cf_dist_abort(code);
    cf_dist_finalize();
    return code;
}

int cf_train(const cf_train_args *a) {
    trainer t = {0};
    t.args = a;
    t.tty = isatty(STDOUT_FILENO);
    t.best_bleu = -1;
    int code = 1;
    bool agreed = false; /* past the start-up agreement: a failure now is this rank's alone */
    if (cf_dist_init() != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        return 1;
    }
    /* From here a signal only asks to stop (core/interrupt.h): the set-up finishes, the loop does
     * not start, and the checkpoint written says where the run is. (build/cformer holds the signals
     * back until now, so MPI's threads, started above, keep them blocked.) */
    cf_interrupt_install();
    t.ranks = cf_dist_size();
    t.root = cf_dist_rank() == 0;
    t.quiet = a->quiet || !t.root;
    t.tty = t.tty && t.ranks == 1; /* mpirun gives each rank a pty: rewriting lines would garble its log */
    cf_interrupt_output_nonblocking_on_stop(t.ranks > 1); /* ... which it stops reading at Ctrl-C */
    /* While a stop signal is pending, an exchange that does not complete within 3 s means the
     * other ranks are gone (mpirun sends SIGTERM to the survivors when a rank dies). */
    cf_dist_set_stop_flag(cf_interrupt_flag(), 3.0);
    if (cf_dist_share_cpus() != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        return leave(&t, 1, false);
    }
    code = 2;
    if (cf_config_load(&t.cfg, a->config_path, a->n_sets, a->sets) != 0) goto fail;
    /* The effective config holds the global accumulation: K ranks x grad_accum A write the same
     * config (and so byte-identical checkpoints) as one process with grad_accum K x A. */
    t.cfg.train.grad_accum *= t.ranks;
    const bool tokenizer_file = t.cfg.data.tokenizer && cf_tok_kind_parse(t.cfg.data.tokenizer) < 0;
    if (!t.cfg.data.shared_vocab && (tokenizer_file || t.cfg.data.train_tsv)) {
        cf_error_set("%s: data.shared_vocab false trains one tokenizer per side from data.train_src and "
                     "data.train_tgt (not from a data.tokenizer file or data.train_tsv)", a->config_path);
        goto fail;
    }
    if (a->out_dir) {
        t.dir = cf_xstrdup(a->out_dir);
    } else {
        t.dir = cf_xmalloc(strlen(t.cfg.name) + 8);
        sprintf(t.dir, "runs/%s", t.cfg.name);
    }
    code = 1;
    if (cf_threads_init((int)t.cfg.train.threads) != 0) goto fail;
    cf_threads_set_adaptive(t.cfg.train.adapt_threads);
    /* One trainer per run directory (train/lock.h), before anything in it is read or written: rank
     * 0's, the one process that writes it (a second job's rank 0 is refused, and its ranks with it). */
    if (t.root && cf_mkdir_p(t.dir) != 0) goto fail;
    if (t.root && !(t.lock = cf_run_lock_acquire(t.dir))) {
        code = 2;
        goto fail;
    }
    char *latest = cf_path_join(t.dir, "checkpoints/latest");
    bool has_ckpt = access(latest, F_OK) == 0;
    free(latest);
    if (has_ckpt && !a->resume) {
        cf_error_set("%s already holds checkpoints: pass --resume to continue it, or --out for a new run", t.dir);
        code = 2;
        goto fail;
    }
    t.config_json = cf_config_to_json(&t.cfg);
    t.ckpt_config_json = checkpoint_config_json(t.config_json);
    code = 2;
    if (setup_tokenizer(&t, a->resume && has_ckpt) != 0) goto fail;
    if (setup_data(&t) != 0) goto fail;
    if (setup_model(&t) != 0) goto fail;
    t.sync = cf_grad_sync_new(t.opt->params, t.opt->n, t.cfg.train.grad_accum,
                              (size_t)t.cfg.train.bucket_mb << 20);
    if (!t.sync) goto fail;
    code = 1;
    cf_nan_guard_init(&t.guard, (int)t.cfg.train.max_bad_steps); /* before a resume restores its counters */
    bool resumed = false;
    if (a->resume) {
        int r = resume_from_checkpoint(&t, &resumed);
        if (r < 0) {
            code = 2;
            goto fail;
        }
    }
    cf_fingerprint fp = fingerprint(&t);
    code = cf_dist_agree_start(0, &fp);
    agreed = true;
    if (code != 0) return leave(&t, code, true);
    code = 1; /* an I/O failure from here on */
    if (t.root) {
        char *cfg_path = cf_path_join(t.dir, "config.json");
        int rc = cf_write_file_atomic(cfg_path, t.config_json, strlen(t.config_json));
        free(cfg_path);
        if (rc != 0 || cf_metrics_open(&t.metrics, t.dir, resumed ? t.step : -1) != 0) goto fail;
        /* lines the stopped run could not write (a full disk) come first, so the file has no gap */
        if (t.metrics_unwritten && cf_metrics_write_raw(&t.metrics, t.metrics_unwritten) != 0) goto fail;
    }
    if (!t.quiet) {
        cf_model_config mc = t.model->cfg;
        printf("model: %s attention, d_model %lld, %lld heads (%lld kv), %lld+%lld layers, d_ff %lld, vocab %lld: "
               "%.2fM parameters\n", cf_attn_kind_name(mc.attention), (long long)mc.d_model, (long long)mc.n_heads,
               (long long)t.model->dec[0].self_attn.n_kv_heads, (long long)mc.enc_layers, (long long)mc.dec_layers,
               (long long)mc.d_ff, (long long)mc.tgt_vocab, (double)cf_transformer_num_params(t.model) / 1e6);
        if (t.ranks > 1)
            printf("run: %s | %d ranks x %d threads | grad_accum %lld (%lld per rank) | %d gradient bucket%s | "
                   "%lld batches per epoch | max_steps %lld\n", t.dir, t.ranks, cf_threads_count(),
                   (long long)t.cfg.train.grad_accum, (long long)(t.cfg.train.grad_accum / t.ranks),
                   cf_grad_sync_buckets(t.sync), cf_grad_sync_buckets(t.sync) == 1 ? "" : "s",
                   (long long)cf_batcher_n_batches(t.batches), (long long)t.cfg.train.max_steps);
        else
            printf("run: %s | %d threads | %lld batches per epoch | max_steps %lld\n", t.dir, cf_threads_count(),
                   (long long)cf_batcher_n_batches(t.batches), (long long)t.cfg.train.max_steps);
    }
    t.t_start = cf_now_s();
    code = train_loop(&t);
    if (code != 0) goto fail;
    if (t.stopped) {
        if (t.root) print_resume_hint(&t);
        return leave(&t, 130, true);
    }
    double total = t.elapsed_before + cf_now_s() - t.t_start;
    if (!t.quiet)
        printf("done: %lld steps in %.1f s (this session %.1f s); best valid BLEU %.2f at step %lld; "
               "step memory (arena high-water) %.1f MB\n", (long long)t.step, total, cf_now_s() - t.t_start, t.best_bleu,
               (long long)t.best_step, (double)t.ctx->arena.high_water / 1048576.0);
    if (t.ranks > 1)
        say(&t, "gradient exchange: %.2f s of this session on rank 0 (waiting included)\n",
            cf_grad_sync_comm_seconds(t.sync));
    int tested = t.root ? final_test(&t) : 0;
    if (tested < 0) {
        code = 1;
        goto fail;
    }
    return leave(&t, tested == 1 ? 130 : 0, true);
fail:
    if (t.io_failed) code = 1;
    /* Before the agreement every rank reaches it, this one with its failure (it prints the error):
     * the job ends together. */
    if (!agreed && t.ranks > 1) return leave(&t, cf_dist_agree_start(code, NULL), true);
    fprintf(stderr, "error: %s\n", cf_error_message());
    /* A non-finite stop is decided identically on every rank; anything else is this rank's own. */
    return leave(&t, code, !agreed || t.failure_agreed);
}
