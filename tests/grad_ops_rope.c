/* tests/grad_ops_rope.c - finite-difference check of the rotary embedding. */
#include "core/ops.h"
#include "tests/gradcheck.h"
#include "tests/test.h"
#include "tests/testlib.h"

static cf_tensor *f_rope(cf_ctx *ctx, cf_tensor **in, void *user) { return cf_rope(ctx, in[0], *(int64_t *)user, 10000); }

TEST(grad_rope) {
    const int64_t shapes[][4] = {{2, 3, 5, 8}, {1, 1, 1, 2}, {1, 2, 7, 6}};
    for (int c = 0; c < 3; c++)
        for (int64_t offset = 0; offset <= 9; offset += 9) {
            cf_tensor *x = test_param_uniform("x", 4, shapes[c], -1, 1, 40 + c);
            GRADCHECK("rope", f_rope, ((cf_tensor *[]){x}), 1, &offset);
            cf_param_free(x);
        }
}
