/* optim/schedule.c - learning-rate schedules (formulas and step convention in schedule.h). */
#include "optim/schedule.h"

#include <math.h>
#include <string.h>

#include "core/common.h"

static const char *const kind_names[] = {
    [CF_SCHED_COSINE] = "cosine", [CF_SCHED_LINEAR] = "linear", [CF_SCHED_CONSTANT] = "constant",
    [CF_SCHED_NOAM] = "noam"};
#define N_KINDS ((int)(sizeof kind_names / sizeof kind_names[0]))

const char *cf_schedule_kind_name(cf_schedule_kind kind) {
    return (unsigned)kind < (unsigned)N_KINDS ? kind_names[kind] : "unknown";
}

int cf_schedule_kind_parse(const char *name, cf_schedule_kind *out) {
    for (int k = 0; k < N_KINDS; k++) {
        if (name && strcmp(name, kind_names[k]) == 0) {
            *out = (cf_schedule_kind)k;
            return 0;
        }
    }
    cf_error_set("unknown lr schedule '%s' (expected cosine, linear, constant or noam)", name ? name : "(null)");
    return -1;
}

int cf_schedule_check(const cf_schedule *s) {
    if ((unsigned)s->kind >= (unsigned)N_KINDS) {
        cf_error_set("lr schedule: invalid kind %d", (int)s->kind);
        return -1;
    }
    if (s->warmup_steps < 0) {
        cf_error_set("lr schedule: warmup_steps %lld must be >= 0", (long long)s->warmup_steps);
        return -1;
    }
    if (s->kind == CF_SCHED_NOAM) {
        if (s->warmup_steps < 1 || s->d_model < 1 || !(s->noam_factor > 0) || !isfinite(s->noam_factor)) {
            cf_error_set("lr schedule noam: needs warmup_steps >= 1, d_model >= 1 and a finite noam_factor > 0 "
                         "(got %lld, %lld, %g)", (long long)s->warmup_steps, (long long)s->d_model, s->noam_factor);
            return -1;
        }
        return 0;
    }
    if (!(s->lr >= 0) || !isfinite(s->lr)) {
        cf_error_set("lr schedule: lr %g must be finite and >= 0", s->lr);
        return -1;
    }
    if (s->kind != CF_SCHED_CONSTANT) {
        if (!(s->min_lr >= 0) || s->min_lr > s->lr) {
            cf_error_set("lr schedule %s: min_lr %g must lie in [0, lr = %g]", kind_names[s->kind], s->min_lr, s->lr);
            return -1;
        }
        if (s->total_steps < s->warmup_steps) {
            cf_error_set("lr schedule %s: total_steps %lld is below warmup_steps %lld", kind_names[s->kind],
                         (long long)s->total_steps, (long long)s->warmup_steps);
            return -1;
        }
    }
    return 0;
}

double cf_schedule_lr(const cf_schedule *s, int64_t step) {
    const double t = (double)(step < 1 ? 1 : step);
    const double w = (double)s->warmup_steps;
    if (s->kind == CF_SCHED_NOAM) {
        /* Vaswani et al.'s schedule: linear rise for w steps, then decay as 1/sqrt(t); it peaks
         * at t = w with factor / sqrt(d_model * w). */
        double warm = w > 0 ? w : 1;
        return s->noam_factor * pow((double)s->d_model, -0.5) * fmin(pow(t, -0.5), t * pow(warm, -1.5));
    }
    if (t <= w) return s->lr * t / w;
    if (s->kind == CF_SCHED_CONSTANT) return s->lr;
    double span = (double)s->total_steps - w;
    double progress = span > 0 ? fmin(1.0, (t - w) / span) : 1.0;
    if (s->kind == CF_SCHED_LINEAR) return s->min_lr + (s->lr - s->min_lr) * (1.0 - progress);
    return s->min_lr + 0.5 * (s->lr - s->min_lr) * (1.0 + cos(M_PI * progress));
}
