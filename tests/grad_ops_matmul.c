/* tests/grad_ops_matmul.c - finite-difference checks of matmul, linear and the binary ops. */
#include "core/ops.h"
#include "tests/gradcheck.h"
#include "tests/test.h"
#include "tests/testlib.h"

static cf_tensor *f_matmul(cf_ctx *ctx, cf_tensor **in, void *user) { return cf_matmul(ctx, in[0], in[1], user != NULL); }

TEST(grad_matmul) {
    /* shared b, with and without transpose; batched b; odd sizes and size 1 */
    const int64_t cases[][8] = {
        /* a ndim, a shape (4), b ndim, b shape(...) packed: */
        {2, 3, 5, 0, 2, 5, 4, 0},
        {2, 1, 1, 0, 2, 1, 1, 0},
        {3, 2, 3, 7, 2, 7, 5, 0},
        {3, 2, 3, 7, 3, 2, 7, 5},
    };
    for (int c = 0; c < 4; c++) {
        for (int t = 0; t < 2; t++) {
            int an = (int)cases[c][0], bn = (int)cases[c][4];
            int64_t as[3] = {cases[c][1], cases[c][2], cases[c][3]}, bs[3] = {cases[c][5], cases[c][6], cases[c][7]};
            if (t) { /* transposed b: swap its last two dims */
                int64_t tmp = bs[bn - 1];
                bs[bn - 1] = bs[bn - 2];
                bs[bn - 2] = tmp;
            }
            cf_tensor *a = test_param_uniform("a", an, as, -1, 1, 10 + c);
            cf_tensor *b = test_param_uniform("b", bn, bs, -1, 1, 20 + c);
            GRADCHECK("matmul", f_matmul, ((cf_tensor *[]){a, b}), 2, t ? (void *)1 : NULL);
            cf_param_free(a);
            cf_param_free(b);
        }
    }
}

static cf_tensor *f_linear(cf_ctx *ctx, cf_tensor **in, void *user) {
    return cf_linear(ctx, in[0], in[1], user ? in[2] : NULL);
}

TEST(grad_linear) {
    const int64_t shapes[][4] = {{3, 4, 5, 2}, {1, 1, 1, 1}, {2, 7, 3, 6}};
    for (int c = 0; c < 3; c++)
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            int64_t n0 = shapes[c][0], n1 = shapes[c][1], in = shapes[c][2], out = shapes[c][3];
            cf_tensor *x = test_param_uniform("x", 3, (int64_t[]){n0, n1, in}, -1, 1, 1 + c);
            cf_tensor *w = test_param_uniform("w", 2, (int64_t[]){out, in}, -1, 1, 2 + c);
            cf_tensor *b = test_param_uniform("b", 1, (int64_t[]){out}, -1, 1, 3 + c);
            GRADCHECK("linear", f_linear, ((cf_tensor *[]){x, w, b}), with_bias ? 3 : 2, with_bias ? (void *)1 : NULL);
            cf_param_free(x);
            cf_param_free(w);
            cf_param_free(b);
        }
}

typedef struct binary_case {
    int kind; /* 0 add, 1 sub, 2 mul */
} binary_case;

static cf_tensor *f_binary(cf_ctx *ctx, cf_tensor **in, void *user) {
    switch (((binary_case *)user)->kind) {
    case 0: return cf_add(ctx, in[0], in[1]);
    case 1: return cf_sub(ctx, in[0], in[1]);
    default: return cf_mul(ctx, in[0], in[1]);
    }
}

TEST(grad_binary_broadcast) {
    const int64_t a_shape[4] = {2, 3, 4, 5};
    const int64_t b_shapes[][5] = {
        /* ndim, shape */
        {4, 2, 3, 4, 5}, {1, 5, 0, 0, 0}, {4, 2, 1, 1, 5}, {4, 2, 1, 4, 1}, {2, 4, 1, 0, 0}, {1, 1, 0, 0, 0},
        {3, 3, 1, 5, 0},
    };
    for (int kind = 0; kind < 3; kind++)
        for (size_t c = 0; c < sizeof b_shapes / sizeof b_shapes[0]; c++) {
            cf_tensor *a = test_param_uniform("a", 4, a_shape, -1, 1, 5);
            cf_tensor *b = test_param_uniform("b", (int)b_shapes[c][0], b_shapes[c] + 1, -1, 1, 6 + c);
            binary_case bc = {kind};
            GRADCHECK(kind == 0 ? "add" : kind == 1 ? "sub" : "mul", f_binary, ((cf_tensor *[]){a, b}), 2, &bc);
            cf_param_free(a);
            cf_param_free(b);
        }
}

static cf_tensor *f_expand(cf_ctx *ctx, cf_tensor **in, void *user) {
    const int64_t *shape = user;
    return cf_expand(ctx, in[0], 4, shape);
}

TEST(grad_expand) {
    int64_t shape[4] = {2, 3, 4, 5};
    const int64_t x_shapes[][5] = {{4, 2, 1, 4, 5}, {1, 5, 0, 0, 0}, {4, 2, 3, 1, 1}, {4, 1, 3, 4, 1}, {4, 2, 3, 4, 5}};
    for (size_t c = 0; c < sizeof x_shapes / sizeof x_shapes[0]; c++) {
        cf_tensor *x = test_param_uniform("x", (int)x_shapes[c][0], x_shapes[c] + 1, -1, 1, 3 + c);
        GRADCHECK("expand", f_expand, ((cf_tensor *[]){x}), 1, shape);
        cf_param_free(x);
    }
}

static cf_tensor *f_scale(cf_ctx *ctx, cf_tensor **in, void *user) {
    (void)user;
    return cf_scale(ctx, in[0], -1.5);
}

TEST(grad_scale) {
    cf_tensor *x = test_param_uniform("x", 2, (int64_t[]){3, 1}, -1, 1, 1);
    GRADCHECK("scale", f_scale, ((cf_tensor *[]){x}), 1, NULL);
    cf_param_free(x);
}
