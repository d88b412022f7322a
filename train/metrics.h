/* train/metrics.h - DIR/metrics.jsonl and DIR/curves.svg.
 *
 * Usage:
 *     cf_metrics m;
 *     if (cf_metrics_open(&m, run_dir, resume_step) != 0) ...;   // -1: fresh run (truncates)
 *     cf_metrics_log_train(&m, &(cf_train_event){.step = 50, .loss = 3.2, ...});
 *     cf_metrics_log_eval(&m, &(cf_eval_event){.step = 500, .valid_loss = 2.1, .bleu = 31.4});
 *     cf_metrics_write_svg(&m);                                    // redrawn at each evaluation
 *     cf_metrics_close(&m);
 *
 * One JSON object per line: {"event":"train","step":N,"loss":x,"lr":y,"tokens_per_s":z,...} (MoE
 * models add "moe_aux":a,"expert_load":[[share of each expert] per MoE layer]) and
 * {"event":"eval","step":N,"valid_loss":x,"bleu":y,...}. On resume from step N, lines after N
 * (written by the interrupted run past its last checkpoint) are dropped, so the file reads as if
 * the run had never stopped. A line whose write fails (a full disk) is kept in m->unwritten for
 * the caller to save with its final checkpoint; every later line is kept there too, so the file
 * never has a gap.
 */
#ifndef CF_TRAIN_METRICS_H
#define CF_TRAIN_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "nn/moe.h"

typedef struct cf_train_event {
    int64_t step, epoch;
    double loss, lr, grad_norm, tokens_per_s, elapsed_s;
    double rate_tokens;             /* the target tokens tokens_per_s is over: this session's since the last line */
    int threads;                    /* threads in use at this step (core/threads.h adapts them) */
    const cf_moe_load *moe;         /* MoE models: expert shares and load-balancing loss since the last line */
} cf_train_event;

typedef struct cf_eval_event {
    int64_t step;
    double valid_loss, valid_ppl, bleu, elapsed_s;
    int64_t n_sentences;
} cf_eval_event;

typedef struct cf_point {
    double x, y;
} cf_point;

typedef struct cf_series {
    cf_point *p;
    int64_t n, cap;
} cf_series;

typedef struct cf_metrics {
    int fd;                         /* metrics.jsonl, O_APPEND */
    char *path, *svg_path;
    char *unwritten;                /* lines a failed write could not add (NULL: none) */
    cf_series train_loss, valid_loss, valid_bleu;
} cf_metrics;

int cf_metrics_open(cf_metrics *m, const char *run_dir, int64_t resume_step);
int cf_metrics_log_train(cf_metrics *m, const cf_train_event *e);
int cf_metrics_log_eval(cf_metrics *m, const cf_eval_event *e);
/* Appends whole lines as they are (a failed run's m->unwritten, from its last checkpoint). */
int cf_metrics_write_raw(cf_metrics *m, const char *lines);
/* Rewrites curves.svg atomically (temp file + rename). */
int cf_metrics_write_svg(const cf_metrics *m);
void cf_metrics_close(cf_metrics *m);

/* The SVG for given series (used by cf_metrics_write_svg; exposed for tests). malloc'ed text. */
char *cf_curves_svg(const cf_series *train_loss, const cf_series *valid_loss, const cf_series *valid_bleu);

#endif
