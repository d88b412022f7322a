/* optim/clip.c - deterministic gradient norm, clipping, scaling and the non-finite guard. */
#include "optim/clip.h"

#include <math.h>
#include <stdio.h>

#include "core/common.h"

/* The norm's summation order is fixed by these two constants, never by the thread count: each
 * block of NORM_BLOCK elements is summed by one thread into NORM_LANES interleaved partial sums
 * (lanes let the compiler vectorise without reassociating), and the blocks' sums are added
 * sequentially, in order, NORM_CHUNK blocks per parallel region (a stack buffer, no malloc). */
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

static double tensor_sumsq(const cf_real *g, int64_t n, double total) {
    int64_t n_blocks = (n + NORM_BLOCK - 1) / NORM_BLOCK;
    for (int64_t b0 = 0; b0 < n_blocks; b0 += NORM_CHUNK) {
        int64_t nb = n_blocks - b0 < NORM_CHUNK ? n_blocks - b0 : NORM_CHUNK;
        double partial[NORM_CHUNK];
#pragma omp parallel for schedule(static) if (nb * NORM_BLOCK > CLIP_PAR_MIN)
        for (int64_t b = 0; b < nb; b++) {
            int64_t begin = (b0 + b) * NORM_BLOCK;
            int64_t len = n - begin < NORM_BLOCK ? n - begin : NORM_BLOCK;
            partial[b] = block_sumsq(g + begin, len);
        }
        for (int64_t b = 0; b < nb; b++) total += partial[b];
    }
    return total;
}

double cf_grad_norm(cf_tensor *const *params, int n) {
    double total = 0;
    for (int i = 0; i < n; i++) total = tensor_sumsq(params[i]->grad, params[i]->numel, total);
    return sqrt(total);
}

void cf_grads_scale(cf_tensor *const *params, int n, double factor) {
    const cf_real f = (cf_real)factor;
    for (int k = 0; k < n; k++) {
        cf_real *g = params[k]->grad;
        int64_t len = params[k]->numel;
#pragma omp parallel for schedule(static) if (len > CLIP_PAR_MIN)
        for (int64_t i = 0; i < len; i++) g[i] *= f;
    }
}

double cf_clip_grad_norm(cf_tensor *const *params, int n, double max_norm) {
    double norm = cf_grad_norm(params, n);
    if (!isfinite(norm) || !(max_norm > 0) || !isfinite(max_norm)) return norm;
    double coef = max_norm / (norm + 1e-6);
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
