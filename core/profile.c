/* core/profile.c - time per op (see core/profile.h). */
#include "core/profile.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"

void cf_profile_init(cf_profile *p) { memset(p, 0, sizeof *p); }

void cf_profile_start(cf_profile *p, size_t arena_used) {
    p->mark = cf_now_s();
    p->mark_bytes = arena_used;
}

static cf_profile_entry *entry(cf_profile *p, const char *op) {
    for (int i = 0; i < p->n; i++) /* op names are string literals: the pointer usually matches */
        if (p->ops[i].op == op || strcmp(p->ops[i].op, op) == 0) return &p->ops[i];
    if (p->n == CF_PROFILE_MAX_OPS) return &p->ops[CF_PROFILE_MAX_OPS - 1];
    p->ops[p->n].op = op;
    return &p->ops[p->n++];
}

void cf_profile_forward(cf_profile *p, const char *op, size_t arena_used) {
    double now = cf_now_s();
    cf_profile_entry *e = entry(p, op);
    e->calls++;
    e->forward_s += now - p->mark;
    if (arena_used >= p->mark_bytes) e->forward_bytes += (double)(arena_used - p->mark_bytes);
    p->mark = now;
    p->mark_bytes = arena_used;
}

void cf_profile_backward(cf_profile *p, const char *op, double seconds) { entry(p, op)->backward_s += seconds; }

static int by_total(const void *a, const void *b) {
    const cf_profile_entry *x = a, *y = b;
    double tx = x->forward_s + x->backward_s, ty = y->forward_s + y->backward_s;
    return (tx < ty) - (tx > ty);
}

void cf_profile_print(const cf_profile *p, FILE *f, int64_t steps) {
    cf_profile_entry sorted[CF_PROFILE_MAX_OPS];
    memcpy(sorted, p->ops, (size_t)p->n * sizeof *sorted);
    qsort(sorted, (size_t)p->n, sizeof *sorted, by_total);
    double total = 0;
    for (int i = 0; i < p->n; i++) total += sorted[i].forward_s + sorted[i].backward_s;
    double k = steps > 0 ? 1e3 / (double)steps : 1e3;
    fprintf(f, "%-22s %8s %12s %12s %12s %7s %12s\n", "op", "calls", "forward ms", "backward ms", "total ms", "share",
            "fwd MiB");
    for (int i = 0; i < p->n; i++) {
        const cf_profile_entry *e = &sorted[i];
        double t = e->forward_s + e->backward_s;
        double per = steps > 0 ? (double)steps : 1;
        fprintf(f, "%-22s %8.1f %12.3f %12.3f %12.3f %6.1f%% %12.1f\n", e->op, (double)e->calls / per,
                e->forward_s * k, e->backward_s * k, t * k, total > 0 ? 100 * t / total : 0,
                e->forward_bytes / per / (1 << 20));
    }
    fprintf(f, "%-22s %8s %12s %12s %12.3f\n", "(all ops)", "", "", "", total * k);
}
