/* tests/grad_ops_b.c - finite-difference checks of embedding, dropout, permute/transpose, concat,
 * slice, split, masked_fill and cross-entropy (float64 build). */
#include <string.h>

#include "core/ops.h"
#include "tests/gradcheck.h"
#include "tests/test.h"
#include "tests/testlib.h"

/* ---- embedding ---- */

typedef struct ids_case {
    const int32_t *ids;
    int ndim;
    int64_t shape[3];
} ids_case;

static cf_tensor *f_embedding(cf_ctx *ctx, cf_tensor **in, void *user) {
    const ids_case *c = user;
    return cf_embedding(ctx, in[0], c->ids, c->ndim, c->shape);
}

TEST(grad_embedding) {
    /* repeated ids (3 appears three times), an unused row, odd sizes, C = 1 */
    const int32_t ids[] = {3, 0, 3, 5, 1, 3, 4, 0};
    const ids_case cases[] = {{ids, 2, {2, 4}}, {ids, 1, {5}}, {ids + 3, 3, {1, 1, 1}}, {ids, 3, {2, 2, 2}}};
    const int64_t wshapes[][2] = {{6, 5}, {7, 1}, {6, 3}, {6, 2}};
    for (int c = 0; c < 4; c++) {
        cf_tensor *w = test_param_uniform("w", 2, wshapes[c], -1, 1, 30 + c);
        GRADCHECK("embedding", f_embedding, ((cf_tensor *[]){w}), 1, (void *)&cases[c]);
        cf_param_free(w);
    }
}

/* ---- the fused model input: gather * scale + positions, dropout ---- */

typedef struct embed_case {
    const int32_t *ids;
    int64_t batch, len, offset;
    double p;
} embed_case;

static cf_tensor *f_embed_input(cf_ctx *ctx, cf_tensor **in, void *user) {
    const embed_case *c = user;
    return cf_embed_input(ctx, in[0], c->ids, c->batch, c->len, 2.5, in[1], c->offset, c->p);
}

TEST(grad_embed_input) {
    const int32_t ids[6] = {3, 1, 3, 0, 4, 3}; /* repeats: the scatter must add them */
    gradcheck_opts o = {0, 0, 0, true};
    for (int k = 0; k < 2; k++) {
        embed_case c = {ids, 2, 3, 1, k ? 0.3 : 0.0};
        cf_tensor *w = test_param_uniform("w", 2, (int64_t[]){5, 4}, -1, 1, 70 + k);
        cf_tensor *pos = test_param_uniform("pos", 2, (int64_t[]){6, 4}, -1, 1, 72 + k);
        GRADCHECK_OPTS("embed_input", f_embed_input, ((cf_tensor *[]){w, pos}), 2, &c, &o);
        cf_param_free(w);
        cf_param_free(pos);
    }
}

/* ---- dropout ---- */

static cf_tensor *f_dropout(cf_ctx *ctx, cf_tensor **in, void *user) {
    /* two calls in one step: the second must use its own mask (call index 1) */
    double p = *(const double *)user;
    return cf_dropout(ctx, cf_dropout(ctx, in[0], p), p);
}

TEST(grad_dropout) {
    const double ps[] = {0.0, 0.3, 0.5};
    const int64_t shapes[][3] = {{3, 5, 7}, {1, 1, 1}, {2, 1, 65}};
    gradcheck_opts o = {0, 0, 0, true};
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 3; k++) {
            cf_tensor *x = test_param_uniform("x", 3, shapes[c], -1, 1, 40 + c);
            GRADCHECK_OPTS("dropout", f_dropout, ((cf_tensor *[]){x}), 1, (void *)&ps[k], &o);
            cf_param_free(x);
        }
    /* evaluation mode: identity */
    cf_tensor *x = test_param_uniform("x", 2, (int64_t[]){4, 3}, -1, 1, 45);
    GRADCHECK("dropout_eval", f_dropout, ((cf_tensor *[]){x}), 1, (void *)&ps[2]);
    cf_param_free(x);
}

/* The fused forms: dropout(relu(x)) and res + dropout(x), each with a second use of the output so
 * that the upstream gradient is not trivial. */
static cf_tensor *f_relu_dropout(cf_ctx *ctx, cf_tensor **in, void *user) {
    double p = *(const double *)user;
    return cf_relu_dropout(ctx, in[0], p);
}
static cf_tensor *f_dropout_add(cf_ctx *ctx, cf_tensor **in, void *user) {
    double p = *(const double *)user;
    cf_tensor *y = cf_dropout_add(ctx, in[0], in[1], p);
    return cf_mul(ctx, y, in[1]); /* res's gradient then flows on through another op */
}

TEST(grad_dropout_fused) {
    const double ps[] = {0.0, 0.3};
    const int64_t shapes[][3] = {{3, 5, 7}, {1, 1, 1}, {2, 1, 65}};
    gradcheck_opts o = {0, 0, 0, true};
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 2; k++) {
            cf_tensor *x = test_param_uniform("x", 3, shapes[c], -1, 1, 50 + c);
            cf_tensor *r = test_param_uniform("r", 3, shapes[c], -1, 1, 60 + c);
            for (int64_t i = 0; i < x->numel; i++) /* away from relu's kink */
                if (fabs(x->data[i]) < 1e-3) x->data[i] = x->data[i] < 0 ? -0.5 : 0.5;
            GRADCHECK_OPTS("relu_dropout", f_relu_dropout, ((cf_tensor *[]){x}), 1, (void *)&ps[k], &o);
            GRADCHECK_OPTS("dropout_add", f_dropout_add, ((cf_tensor *[]){r, x}), 2, (void *)&ps[k], &o);
            cf_param_free(x);
            cf_param_free(r);
        }
}

/* ---- permute / transpose ---- */

typedef struct perm_case {
    int perm[4];
} perm_case;

static cf_tensor *f_permute(cf_ctx *ctx, cf_tensor **in, void *user) {
    return cf_permute(ctx, in[0], ((const perm_case *)user)->perm);
}

TEST(grad_permute) {
    const int64_t s4[] = {2, 3, 1, 5}, s3[] = {3, 4, 5}, s2[] = {3, 7};
    const perm_case p4[] = {{{0, 2, 1, 3}}, {{0, 1, 3, 2}}, {{3, 2, 1, 0}}, {{1, 3, 0, 2}}, {{0, 1, 2, 3}}};
    const perm_case p3[] = {{{2, 0, 1}}, {{1, 0, 2}}, {{0, 2, 1}}};
    cf_tensor *x = test_param_uniform("x", 4, s4, -1, 1, 50);
    for (int k = 0; k < 5; k++) GRADCHECK("permute4", f_permute, ((cf_tensor *[]){x}), 1, (void *)&p4[k]);
    cf_param_free(x);
    x = test_param_uniform("x", 3, s3, -1, 1, 51);
    for (int k = 0; k < 3; k++) GRADCHECK("permute3", f_permute, ((cf_tensor *[]){x}), 1, (void *)&p3[k]);
    cf_param_free(x);
    x = test_param_uniform("x", 2, s2, -1, 1, 52);
    const perm_case p2 = {{1, 0}};
    GRADCHECK("permute2", f_permute, ((cf_tensor *[]){x}), 1, (void *)&p2);
    cf_param_free(x);
}

static cf_tensor *f_transpose(cf_ctx *ctx, cf_tensor **in, void *user) {
    const int *d = user;
    return cf_transpose(ctx, in[0], d[0], d[1]);
}

TEST(grad_transpose) {
    cf_tensor *x = test_param_uniform("x", 4, (int64_t[]){2, 3, 4, 5}, -1, 1, 53);
    const int dims[][2] = {{1, 2}, {2, 3}, {0, 3}, {1, 1}};
    for (int k = 0; k < 4; k++) GRADCHECK("transpose", f_transpose, ((cf_tensor *[]){x}), 1, (void *)dims[k]);
    cf_param_free(x);
}

/* ---- concat ---- */

typedef struct concat_case {
    int n, dim;
} concat_case;

static cf_tensor *f_concat(cf_ctx *ctx, cf_tensor **in, void *user) {
    const concat_case *c = user;
    return cf_concat(ctx, in, c->n, c->dim);
}

typedef struct concat_mid_case {
    cf_tensor *mid;             /* a constant between the two checked inputs */
    int dim;
} concat_mid_case;

static cf_tensor *f_concat_mid(cf_ctx *ctx, cf_tensor **in, void *user) {
    const concat_mid_case *c = user;
    return cf_concat(ctx, (cf_tensor *[]){in[0], c->mid, in[1]}, 3, c->dim);
}

TEST(grad_concat) {
    /* base shape [2, 3, 4, 5]; input k has size 1 + k along dim (size-1 parts included) */
    const int64_t base[] = {2, 3, 4, 5};
    for (int dim = 0; dim < 4; dim++) {
        cf_tensor *xs[3];
        for (int k = 0; k < 3; k++) {
            int64_t s[4];
            memcpy(s, base, sizeof s);
            s[dim] = 1 + k;
            xs[k] = test_param_uniform("x", 4, s, -1, 1, 60 + k);
        }
        concat_case c = {3, dim};
        GRADCHECK("concat", f_concat, xs, 3, &c);
        /* the middle input does not require grad: the others' gradients must still be right */
        xs[1]->requires_grad = false;
        concat_mid_case cm = {xs[1], dim};
        GRADCHECK("concat_partial", f_concat_mid, ((cf_tensor *[]){xs[0], xs[2]}), 2, &cm);
        for (int k = 0; k < 3; k++) cf_param_free(xs[k]);
    }
    /* 2-dim and a single input */
    cf_tensor *a = test_param_uniform("a", 2, (int64_t[]){3, 2}, -1, 1, 64);
    cf_tensor *b = test_param_uniform("b", 2, (int64_t[]){3, 5}, -1, 1, 65);
    concat_case c2 = {2, 1}, c1 = {1, 0};
    GRADCHECK("concat2", f_concat, ((cf_tensor *[]){a, b}), 2, &c2);
    GRADCHECK("concat1", f_concat, ((cf_tensor *[]){a}), 1, &c1);
    cf_param_free(a);
    cf_param_free(b);
}

/* ---- slice / split ---- */

static cf_tensor *f_slice(cf_ctx *ctx, cf_tensor **in, void *user) {
    const int64_t *c = user; /* dim, start, len */
    return cf_slice(ctx, in[0], (int)c[0], c[1], c[2]);
}

TEST(grad_slice) {
    cf_tensor *x = test_param_uniform("x", 3, (int64_t[]){3, 5, 7}, -1, 1, 70);
    const int64_t cases[][3] = {{0, 1, 2}, {1, 0, 5}, {1, 4, 1}, {2, 2, 3}, {2, 6, 1}};
    for (int k = 0; k < 5; k++) GRADCHECK("slice", f_slice, ((cf_tensor *[]){x}), 1, (void *)cases[k]);
    cf_param_free(x);
}

static cf_tensor *f_split(cf_ctx *ctx, cf_tensor **in, void *user) {
    /* split then recombine with different weights per part: out = part0 - 2 * part1 + 3 * part2 */
    int dim = *(const int *)user;
    cf_tensor *parts[3];
    cf_split(ctx, in[0], dim, 3, parts);
    return cf_add(ctx, cf_sub(ctx, parts[0], cf_scale(ctx, parts[1], 2)), cf_scale(ctx, parts[2], 3));
}

TEST(grad_split) {
    cf_tensor *x = test_param_uniform("x", 3, (int64_t[]){3, 6, 9}, -1, 1, 71);
    for (int dim = 0; dim < 3; dim++) GRADCHECK("split", f_split, ((cf_tensor *[]){x}), 1, &dim);
    cf_param_free(x);
}

/* ---- masked_fill ---- */

static cf_tensor *f_masked_fill(cf_ctx *ctx, cf_tensor **in, void *user) {
    /* a moderate fill value: with -1e9 the checked sum would be ~1e10 and swallow the eps nudges */
    return cf_masked_fill(ctx, in[0], (const cf_tensor *)user, -7.5);
}

TEST(grad_masked_fill) {
    const int64_t x_shape[] = {2, 3, 4, 5};
    const int64_t m_shapes[][5] = {{4, 2, 3, 4, 5}, {4, 2, 1, 1, 5}, {2, 4, 5, 0, 0}, {4, 2, 1, 4, 1}, {1, 1, 0, 0, 0}};
    cf_tensor *x = test_param_uniform("x", 4, x_shape, -1, 1, 80);
    for (int c = 0; c < 5; c++) {
        cf_tensor *m = test_param_uniform("mask", (int)m_shapes[c][0], m_shapes[c] + 1, 0, 1, 81 + c);
        for (int64_t i = 0; i < m->numel; i++) m->data[i] = m->data[i] < 0.4 ? 1 : 0;
        if (c == 4) m->data[0] = 0; /* a single broadcast 0: everything passes */
        GRADCHECK("masked_fill", f_masked_fill, ((cf_tensor *[]){x}), 1, m);
        cf_param_free(m);
    }
    cf_param_free(x);
}

/* ---- cross-entropy ---- */

typedef struct ce_case {
    const int32_t *targets;
    double ls;
} ce_case;

static cf_tensor *f_ce(cf_ctx *ctx, cf_tensor **in, void *user) {
    const ce_case *c = user;
    return cf_cross_entropy(ctx, in[0], c->targets, c->ls, -100, NULL);
}

static cf_tensor *f_linear_ce(cf_ctx *ctx, cf_tensor **in, void *user) {
    const ce_case *c = user;
    return cf_linear_cross_entropy(ctx, in[0], in[1], c->targets, c->ls, -100, NULL);
}

TEST(grad_cross_entropy) {
    const int32_t t_some[] = {2, -100, 0, 6, -100, 3};
    const int32_t t_none[] = {-100, -100, -100, -100, -100, -100};
    const int32_t t_all[] = {1, 4, 0, 6, 5, 3};
    const int32_t *ts[] = {t_all, t_some, t_none};
    const double lss[] = {0.0, 0.1};
    for (int t = 0; t < 3; t++)
        for (int k = 0; k < 2; k++) {
            ce_case c = {ts[t], lss[k]};
            cf_tensor *x = test_param_uniform("logits", 3, (int64_t[]){2, 3, 7}, -3, 3, 90 + t);
            GRADCHECK("cross_entropy", f_ce, ((cf_tensor *[]){x}), 1, &c);
            cf_param_free(x);
        }
    /* V = 1 and a single row */
    ce_case c = {t_all + 2, 0.1};
    cf_tensor *x = test_param_uniform("logits", 2, (int64_t[]){1, 1}, -3, 3, 95);
    GRADCHECK("cross_entropy_v1", f_ce, ((cf_tensor *[]){x}), 1, &c);
    cf_param_free(x);
}

/* The chunked projection + loss: x [6, 5] (rows of [2, 3]) and W [7, 5]; with V = 7 a chunk holds
 * 1024 rows, and V = 2100 (targets below 7) gives chunks of 998 rows over 1200 rows. */
TEST(grad_linear_cross_entropy) {
    const int32_t t_some[] = {2, -100, 0, 6, -100, 3};
    const int32_t t_none[] = {-100, -100, -100, -100, -100, -100};
    const int32_t *ts[] = {t_some, t_none};
    for (int t = 0; t < 2; t++) {
        ce_case c = {ts[t], 0.1};
        cf_tensor *x = test_param_uniform("x", 3, (int64_t[]){2, 3, 5}, -1, 1, 97 + t);
        cf_tensor *w = test_param_uniform("w", 2, (int64_t[]){7, 5}, -1, 1, 99 + t);
        GRADCHECK("linear_cross_entropy", f_linear_ce, ((cf_tensor *[]){x, w}), 2, &c);
        cf_param_free(x);
        cf_param_free(w);
    }
    enum { N = 1200 };
    static int32_t many[N];
    for (int i = 0; i < N; i++) many[i] = i % 5 == 1 ? -100 : i % 7;
    ce_case c = {many, 0.1};
    cf_tensor *x = test_param_uniform("x", 2, (int64_t[]){N, 3}, -1, 1, 101);
    cf_tensor *w = test_param_uniform("w", 2, (int64_t[]){2100, 3}, -1, 1, 102);
    GRADCHECK("linear_cross_entropy_chunks", f_linear_ce, ((cf_tensor *[]){x, w}), 2, &c);
    cf_param_free(x);
    cf_param_free(w);
}
