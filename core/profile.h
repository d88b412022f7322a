/* core/profile.h - opt-in time per op, forward and backward (`cformer bench --profile`).
 *
 * Usage:
 *     cf_profile prof;
 *     cf_profile_init(&prof);
 *     ctx->profile = &prof;                  // every step on ctx from now on is timed
 *     ... steps ...
 *     ctx->profile = NULL;
 *     cf_profile_print(&prof, stdout, n_steps);
 *
 * Forward time of an op is the wall time from the previous op's tape record (or the step's start,
 * cf_ctx_begin_step) to its own: the op's kernel plus whatever glue ran just before it. Backward
 * time is its backward function's. Off (ctx->profile NULL) it costs one branch per op.
 */
#ifndef CF_PROFILE_H
#define CF_PROFILE_H

#include <stdint.h>
#include <stdio.h>

enum { CF_PROFILE_MAX_OPS = 96 };

typedef struct cf_profile_entry {
    const char *op;
    int64_t calls;                  /* forward calls */
    double forward_s, backward_s;
    double forward_bytes;           /* arena bytes the forward took (outputs, saved context) */
} cf_profile_entry;

typedef struct cf_profile {
    cf_profile_entry ops[CF_PROFILE_MAX_OPS];
    int n;
    double mark;                    /* time of the last forward event */
    size_t mark_bytes;              /* arena bytes in use then */
} cf_profile;

void cf_profile_init(cf_profile *p);
/* The forward clock restarts (called by cf_ctx_begin_step). */
void cf_profile_start(cf_profile *p, size_t arena_used);
/* op's forward ended now, with arena_used bytes of the step's arena in use. */
void cf_profile_forward(cf_profile *p, const char *op, size_t arena_used);
void cf_profile_backward(cf_profile *p, const char *op, double seconds);
/* A table sorted by total time, per step (divided by steps). */
void cf_profile_print(const cf_profile *p, FILE *f, int64_t steps);

#endif
