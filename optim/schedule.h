/* optim/schedule.h - learning-rate schedules, each a pure function of the update number.
 *
 * Usage:
 *     cf_schedule s = {.kind = CF_SCHED_COSINE, .lr = 5e-4, .min_lr = 1e-5,
 *                      .warmup_steps = 400, .total_steps = 20000};
 *     if (cf_schedule_check(&s) != 0) die(cf_error_message());
 *     cf_optimizer_step(opt, cf_schedule_lr(&s, opt->t + 1));
 *
 * Step convention: `step` is the 1-based number of the update the lr is used for (the value
 * cf_optimizer's t takes during that update), so the first update uses cf_schedule_lr(s, 1),
 * which is lr/warmup_steps, not 0. This equals PyTorch's LambdaLR with
 * lr_lambda = lambda e: f(e + 1) / lr, stepped after each optimizer.step() (LambdaLR hands the
 * lambda t-1 during update t). Steps below 1 are treated as 1.
 *
 *   CF_SCHED_COSINE   (default) t <= W: lr*t/W; then min_lr + (lr-min_lr)/2 * (1 + cos(pi*p))
 *   CF_SCHED_LINEAR   t <= W: lr*t/W; then min_lr + (lr-min_lr) * (1 - p)
 *   CF_SCHED_CONSTANT t <= W: lr*t/W; then lr
 *   CF_SCHED_NOAM     noam_factor * d_model^-0.5 * min(t^-0.5, t * W^-1.5)   (lr, min_lr unused)
 * with W = warmup_steps (0: no warmup) and p = min(1, (t - W) / (total_steps - W)) the decay
 * progress (1 when total_steps <= W), so after total_steps the lr stays at min_lr.
 */
#ifndef CF_SCHEDULE_H
#define CF_SCHEDULE_H

#include <stdint.h>

typedef enum cf_schedule_kind { CF_SCHED_COSINE, CF_SCHED_LINEAR, CF_SCHED_CONSTANT, CF_SCHED_NOAM } cf_schedule_kind;

typedef struct cf_schedule {
    cf_schedule_kind kind;
    double lr;                  /* peak lr, reached at the end of warmup */
    double min_lr;              /* cosine / linear: lr at and after total_steps */
    int64_t warmup_steps;       /* W; Noam needs W >= 1 */
    int64_t total_steps;        /* cosine / linear: the decay ends here */
    double noam_factor;         /* Noam only */
    int64_t d_model;            /* Noam only */
} cf_schedule;

double cf_schedule_lr(const cf_schedule *s, int64_t step);
/* 0, or -1 with a message naming the bad field (negative lr, min_lr > lr, Noam without warmup...). */
int cf_schedule_check(const cf_schedule *s);
const char *cf_schedule_kind_name(cf_schedule_kind kind);          /* "cosine", "linear", "constant", "noam" */
int cf_schedule_kind_parse(const char *name, cf_schedule_kind *out); /* 0, or -1 with a message */

#endif
