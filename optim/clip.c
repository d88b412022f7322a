/* optim/clip.c - deterministic gradient norm, clipping, scaling and the non-finite guard. */
#include "optim/clip.h"

#include <math.h>
#include <stdio.h>

#include "core/common.h"
#include "core/parallel.h"

/* The norm's summation order is fixed by these two constants, never by the thread count: each
 * block of NORM_BLOCK elements is summed by one thread into NORM_LANES interleaved partial sums
 * (lanes let the compiler vectorise without reassociating), and the blocks' sums are added
 * sequentially, in order (tensor by tensor), NORM_CHUNK blocks per parallel region (a stack buffer,
 * no malloc). */
#define NORM_BLOCK 8192
#define NORM_LANES 8
#define NORM_CHUNK 256
#define CLIP_PAR_MIN 32768

static double block_sumsq(const cf_real *g, int64_t n) {
    double lane[NORM_LANES] = {0};
    int64_t i = 0;
    for (; i + NORM_LANES <= n; i += NORM_LANES)
        for (int j = 0; j < NORM_LANES; j++) lane[j] += (double)g[i + j] * (double)g[i + j];
    for (int j = 0; i < n; i++, j++) lane[j] += (double)g[i] * (double)g[i];
    double s = 0;
    for (int j = 0; j < NORM_LANES; j++) s += lane[j];
    return s;
}

/* Sums the squares of chunk[0..n) in parallel and adds them to total in chunk order. */
static double chunk_sumsq(const cf_real *const *ptr, const int64_t *len, int n, int64_t elems, double total) {
    double partial[NORM_CHUNK];
    CF_PARALLEL_FOR(elems > CLIP_PAR_MIN, for (int b = 0; b < n; b++) {
        partial[b] = block_sumsq(ptr[b], len[b]);
    });
    for (int b = 0; b < n; b++) total += partial[b];
    return total;
}

double cf_grad_norm(cf_tensor *const *params, int n) {
    /* The blocks of all tensors, in tensor order, go through one parallel loop per NORM_CHUNK of
     * them (not one per tensor): the many small biases and norms no longer run serially. */
    const cf_real *ptr[NORM_CHUNK];
    int64_t len[NORM_CHUNK], elems = 0;
    int nb = 0;
    double total = 0;
    for (int i = 0; i < n; i++)
        for (int64_t begin = 0; begin < params[i]->numel; begin += NORM_BLOCK) {
            ptr[nb] = params[i]->grad + begin;
            len[nb] = params[i]->numel - begin < NORM_BLOCK ? params[i]->numel - begin : NORM_BLOCK;
            elems += len[nb];
            if (++nb == NORM_CHUNK) {
                total = chunk_sumsq(ptr, len, nb, elems, total);
                nb = 0;
                elems = 0;
            }
        }
    total = chunk_sumsq(ptr, len, nb, elems, total);
    return sqrt(total);
}

void cf_grads_scale(cf_tensor *const *params, int n, double factor) {
    const cf_real f = (cf_real)factor;
    for (int k = 0; k < n; k++) {
        cf_real *g = params[k]->grad;
        int64_t len = params[k]->numel;
        CF_PARALLEL_FOR(len > CLIP_PAR_MIN, for (int64_t i = 0; i < len; i++) {
            g[i] *= f;
        });
    }
}

double cf_clip_coef(double norm, double max_norm) {
    if (!isfinite(norm) || !(max_norm > 0) || !isfinite(max_norm)) return 1.0;
    double coef = max_norm / (norm + 1e-6);
    return coef < 1.0 ? coef : 1.0;
}

double cf_clip_grad_norm(cf_tensor *const *params, int n, double max_norm) {
    double norm = cf_grad_norm(params, n);
    double coef = cf_clip_coef(norm, max_norm);
    if (coef < 1.0) cf_grads_scale(params, n, coef);
    return norm;
}

bool cf_grads_finite(cf_tensor *const *params, int n) { return isfinite(cf_grad_norm(params, n)); }

void cf_nan_guard_init(cf_nan_guard *g, int max_consecutive) {
    *g = (cf_nan_guard){.max_consecutive = max_consecutive, .last_skipped_step = -1};
}

cf_guard_verdict cf_nan_guard_check(cf_nan_guard *g, int64_t step, double loss, double grad_norm) {
    if (isfinite(loss) && isfinite(grad_norm)) {
        g->consecutive = 0;
        g->message[0] = '\0';
        return CF_GUARD_OK;
    }
    g->consecutive++;
    g->skipped++;
    g->last_skipped_step = step;
    const char *what = !isfinite(loss) ? "loss" : "gradient norm";
    double value = !isfinite(loss) ? loss : grad_norm;
    snprintf(g->message, sizeof g->message, "step %lld: %s is %s, update skipped (%d in a row, %lld in total)",
             (long long)step, what, isnan(value) ? "NaN" : value > 0 ? "+Inf" : "-Inf", g->consecutive,
             (long long)g->skipped);
    if (g->max_consecutive > 0 && g->consecutive >= g->max_consecutive) {
        cf_error_set("%s; stopping after %d non-finite updates in a row (lower the learning rate, or check the "
                     "data)", g->message, g->consecutive);
        return CF_GUARD_STOP;
    }
    return CF_GUARD_SKIP;
}
