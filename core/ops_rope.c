/* core/ops_rope.c - rotary position embedding (RoFormer), "rotate half" pairing. */
#include <math.h>

#include "core/kernel.h"
#include "core/ops.h"
#include "core/parallel.h"

/* cos/sin tables [T, D/2], computed in double then rounded, from the arena. */
static void rope_tables(cf_ctx *ctx, int64_t t_len, int64_t half, int64_t pos_offset, double base, cf_real **cos_out,
                        cf_real **sin_out) {
    cf_real *c = cf_scratch(ctx, (size_t)(t_len * half) * sizeof(cf_real));
    cf_real *s = cf_scratch(ctx, (size_t)(t_len * half) * sizeof(cf_real));
    for (int64_t t = 0; t < t_len; t++)
        for (int64_t i = 0; i < half; i++) {
            double angle = (double)(pos_offset + t) * pow(base, -2.0 * (double)i / (double)(2 * half));
            c[t * half + i] = (cf_real)cos(angle);
            s[t * half + i] = (cf_real)sin(angle);
        }
    *cos_out = c;
    *sin_out = s;
}

/* out = rotate(x, sign * angle): sign +1 forward, -1 for the backward (the transpose). */
static void rope_apply(const cf_real *x, cf_real *out, bool accumulate, int64_t rows, int64_t t_len, int64_t half,
                       const cf_real *cs, const cf_real *sn, cf_real sign) {
    int64_t d = 2 * half;
    CF_PARALLEL_FOR(rows * d > CF_PAR_MIN_WORK, for (int64_t r = 0; r < rows; r++) {
        const cf_real *xr = x + r * d, *c = cs + (r % t_len) * half, *s = sn + (r % t_len) * half;
        cf_real *o = out + r * d;
        for (int64_t i = 0; i < half; i++) {
            cf_real a = xr[i], b = xr[i + half], si = sign * s[i];
            cf_real lo = a * c[i] - b * si, hi = b * c[i] + a * si;
            if (accumulate) {
                o[i] += lo;
                o[i + half] += hi;
            } else {
                o[i] = lo;
                o[i + half] = hi;
            }
        }
    });
}

static void rope_backward(cf_ctx *ctx, cf_node *node) {
    cf_tensor *x = node->in[0];
    cf_real **tables = node->saved;
    int64_t t_len = node->i[0], half = node->i[1];
    rope_apply(node->out->grad, cf_grad(ctx, x), true, cf_rows(x), t_len, half, tables[0], tables[1], -1);
}

cf_tensor *cf_rope(cf_ctx *ctx, cf_tensor *x, int64_t pos_offset, double base) {
    char sx[64];
    CF_ASSERT(x->ndim >= 2 && cf_cols(x) % 2 == 0, "rope: x %s needs [..., T, even D]", cf_shape_str(x, sx, 64));
    int64_t t_len = x->shape[x->ndim - 2], half = cf_cols(x) / 2;
    cf_real *cs, *sn;
    rope_tables(ctx, t_len, half, pos_offset, base, &cs, &sn);
    cf_tensor *out = cf_tensor_new(ctx, x->ndim, x->shape);
    rope_apply(x->data, out->data, false, cf_rows(x), t_len, half, cs, sn, 1);
    cf_node *node = cf_tape_record(ctx, "rope", rope_backward, out, 1, (cf_tensor *[]){x});
    if (node) {
        cf_real **tables = cf_scratch(ctx, 2 * sizeof *tables);
        tables[0] = cs;
        tables[1] = sn;
        node->saved = tables;
        node->i[0] = t_len;
        node->i[1] = half;
    }
    return out;
}
