/* core/vecmath.h - private math for the op kernels: exp/erf/tanh that gcc can vectorize, and
 * lane-wise row reductions (not part of the public API).
 *
 *     for (int64_t c = 0; c < C; c++) y[c] = cf_vexp(x[c] - m);   // one zmm of 16 floats per step
 *     double s = cf_row_sum_d(y, C);                              // same bits for any thread count
 *
 * glibc's expf/erff/tanhf are scalar calls unless -ffast-math, which would make a 16-wide loop
 * ~5-10x slower than it needs to be. The float build therefore uses the branch-free polynomial
 * versions below (written with fmaf and integer bit tricks only, so they vectorize under plain
 * -O3 -march=native); the float64 build (gradient checks) uses libm so that finite differences
 * see a smooth, exact function.
 *
 * Accuracy of the float versions (checked in tests/test_ops_a.c over a dense grid):
 *   cf_fast_expf   relative error < 7.9e-8 (measured over every float) on [-87.3, 88.3], < 7.6e-7 on
 *                  (88.3, ln FLT_MAX]; +inf above; subnormal results on (-87.68, -87.34), exactly 0
 *                  below -87.68 and for -inf; NaN stays NaN.
 *   cf_fast_tanhf  absolute error < 2.5e-7.
 *   cf_fast_erff   absolute error < 5e-7 (Abramowitz & Stegun 7.1.26 form, 1.5e-7, plus float rounding).
 *
 * Row reductions keep CF_LANES independent partial sums (a vector register's worth, so no float
 * reassociation is needed to vectorize) and combine them in a fixed order: the result depends only
 * on the row's values, never on threads.
 */
#ifndef CF_VECMATH_H
#define CF_VECMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/common.h"

/* e^x: x = n ln2 + r, |r| <= ln2/2; e^r by a degree-7 Taylor polynomial (truncation < 1e-8
 * relative), 2^n by building the exponent bits. The one exp of the float kernels (softmax,
 * log_softmax, cross-entropy, attention, gelu, silu).
 *
 * The ends cost two clamps and no select: x >= -88 gives n >= -127, and n = -127 builds an
 * exponent field of 0, i.e. 2^n = +0, so the result is exactly 0 (the true value is below
 * FLT_MIN/2); capping n at 127 leaves r up to ln2 near the top, where e^r * 2^127 overflows to
 * +inf by itself exactly when x > ln FLT_MAX (the polynomial on [ln2/2, ln2] costs accuracy there:
 * 7.6e-7). +inf and NaN flow through the polynomial unchanged.
 *
 * Chosen from the three copies the kernels had (every float of the range against double exp;
 * ns/element for 4096 floats in L1, one thread, median of 21 runs, -O3 -march=native):
 *   this file's (clamp [-87.3, 88.3], 2 selects)   7.89e-8 on [-87.3, 88.3]   0.32 ns
 *   ops_loss.c's (no fma, clamp [-87, 88])          1.03e-7 on [-87, 88]       0.38 ns  e^-87 / e^88 at the ends
 *   ops_attention.c's (fma, clamp below only)       7.89e-8 on [-87, 88]       0.25 ns  garbage above 88.7
 *   this one (same polynomial, clamp + cap)         7.89e-8 on [-87.3, 88.3]   0.29 ns  correct ends
 *   (libm expf, a scalar call:                      5.96e-8                    3.0 ns)
 * The polynomial and the fma'd two-part ln2 are the accurate pair; the speed difference is only
 * in the range handling, which is why the ends are done through the exponent field. The cap that
 * ops_attention.c's copy did without (its inputs are <= 0) costs ~4% of a dropout-free attention
 * forward at B32 H8 T=S=48 D32 on one core; one exp with correct ends was judged worth that. */
static inline float cf_fast_expf(float x) {
    float xc = x < -88.0f ? -88.0f : x;
    float k = xc * 1.44269504f + 12582912.0f;            /* 1.5 * 2^23: rounds to an integer in the low bits */
    k = k > 12583039.0f ? 12583039.0f : k;               /* n <= 127 */
    uint32_t kb;
    memcpy(&kb, &k, sizeof kb);
    float n = k - 12582912.0f;
    float r = fmaf(-n, 0.693115234375f, xc);             /* ln2 split hi + lo */
    r = fmaf(-n, 3.19461833e-05f, r);
    float p = 1.0f / 5040;
    p = fmaf(p, r, 1.0f / 720);
    p = fmaf(p, r, 1.0f / 120);
    p = fmaf(p, r, 1.0f / 24);
    p = fmaf(p, r, 1.0f / 6);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    uint32_t sb = (kb - 0x4b400000u + 127u) << 23;       /* bits of 2^n; n = -127 gives +0 */
    float scale;
    memcpy(&scale, &sb, sizeof scale);
    return p * scale;
}

/* tanh(u) = 1 - 2 / (e^{2u} + 1): saturates cleanly to +-1 at both ends. */
static inline float cf_fast_tanhf(float u) { return 1.0f - 2.0f / (cf_fast_expf(2.0f * u) + 1.0f); }

/* erf(x) = 1 - t (a1 + t (a2 + ... t a5)) e^{-x^2}, t = 1 / (1 + p |x|), odd extension. */
static inline float cf_fast_erff(float x) {
    float ax = x < 0 ? -x : x;
    float t = 1.0f / fmaf(0.3275911f, ax, 1.0f);
    float q = 1.061405429f;
    q = fmaf(q, t, -1.453152027f);
    q = fmaf(q, t, 1.421413741f);
    q = fmaf(q, t, -0.284496736f);
    q = fmaf(q, t, 0.254829592f);
    float y = 1.0f - q * t * cf_fast_expf(-ax * ax);
    return x < 0 ? -y : y;
}

#ifdef CF_REAL_DOUBLE
static inline cf_real cf_vexp(cf_real x) { return exp(x); }
static inline cf_real cf_vtanh(cf_real x) { return tanh(x); }
static inline cf_real cf_verf(cf_real x) { return erf(x); }
#else
static inline cf_real cf_vexp(cf_real x) { return cf_fast_expf(x); }
static inline cf_real cf_vtanh(cf_real x) { return cf_fast_tanhf(x); }
static inline cf_real cf_verf(cf_real x) { return cf_fast_erff(x); }
#endif

/* ---- lane-wise row reductions ---- */

#define CF_LANES 16

/* Combine lanes pairwise in a fixed order. */
static inline double cf_lanes_sum_d(const double *acc) {
    double s8[8];
    for (int j = 0; j < 8; j++) s8[j] = acc[j] + acc[j + 8];
    for (int j = 0; j < 4; j++) s8[j] += s8[j + 4];
    return (s8[0] + s8[2]) + (s8[1] + s8[3]);
}

/* sum x[0..n) in double */
static inline double cf_row_sum_d(const cf_real *x, int64_t n) {
    double acc[CF_LANES] = {0};
    int64_t c = 0;
    for (; c + CF_LANES <= n; c += CF_LANES)
        for (int j = 0; j < CF_LANES; j++) acc[j] += (double)x[c + j];
    for (int j = 0; c + j < n; j++) acc[j] += (double)x[c + j];
    return cf_lanes_sum_d(acc);
}

/* sum (x - m)^2 in double */
static inline double cf_row_sqdev_d(const cf_real *x, double m, int64_t n) {
    double acc[CF_LANES] = {0};
    int64_t c = 0;
    for (; c + CF_LANES <= n; c += CF_LANES)
        for (int j = 0; j < CF_LANES; j++) {
            double d = (double)x[c + j] - m;
            acc[j] += d * d;
        }
    for (int j = 0; c + j < n; j++) {
        double d = (double)x[c + j] - m;
        acc[j] += d * d;
    }
    return cf_lanes_sum_d(acc);
}

/* sum a * b in double */
static inline double cf_row_dot_d(const cf_real *a, const cf_real *b, int64_t n) {
    double acc[CF_LANES] = {0};
    int64_t c = 0;
    for (; c + CF_LANES <= n; c += CF_LANES)
        for (int j = 0; j < CF_LANES; j++) acc[j] += (double)a[c + j] * (double)b[c + j];
    for (int j = 0; c + j < n; j++) acc[j] += (double)a[c + j] * (double)b[c + j];
    return cf_lanes_sum_d(acc);
}

/* max of x[0..n), n >= 1. max is exact in any order, so an OpenMP simd reduction is safe here
 * (and it is what lets gcc vectorize the compare-select). */
static inline cf_real cf_row_max(const cf_real *x, int64_t n) {
    cf_real m = x[0];
#pragma omp simd reduction(max : m)
    for (int64_t c = 0; c < n; c++) m = x[c] > m ? x[c] : m;
    return m;
}

#endif
