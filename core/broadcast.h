/* core/broadcast.h - one-sided broadcasting of b against a, shared by the binary ops and masked_fill
 * (private to the op kernels).
 *
 *     cf_bcast s = cf_bcast_of(a, b, "add", "a", "b");   // asserts b broadcasts to a
 *     for (int64_t r = 0; r < s.rows; r++) {
 *         const cf_real *br = b->data + cf_bcast_b_row(&s, r);   // b's row paired with a's row r
 *         // s.bstride[3] == 0: b's last dim is 1, use br[0] for the whole row
 *     }
 *
 * Both shapes are right-aligned and padded to 4 dims (ops have at most 4); each of b's dims must
 * equal a's or be 1, and b's stride is 0 along the dims where it is broadcast.
 */
#ifndef CF_BROADCAST_H
#define CF_BROADCAST_H

#include "core/tensor.h"

typedef struct cf_bcast {
    int64_t a[4], b[4];         /* padded shapes */
    int64_t bstride[4];         /* b's element stride per padded dim, 0 where broadcast */
    int64_t rows, cols;         /* a as [rows, cols] over its last dim */
    bool same;                  /* b has a's shape */
} cf_bcast;

/* `op`, `a_name` and `b_name` only word the assertion messages ("add: cannot broadcast b ... to a ..."). */
static inline cf_bcast cf_bcast_of(const cf_tensor *a, const cf_tensor *b, const char *op, const char *a_name,
                                   const char *b_name) {
    cf_bcast s;
    char sa[64], sb[64];
    CF_ASSERT(b->ndim <= a->ndim, "%s: %s %s has more dims than %s %s", op, b_name, cf_shape_str(b, sb, 64),
              a_name, cf_shape_str(a, sa, 64));
    for (int d = 0; d < 4; d++) {
        int da = d - (4 - a->ndim), db = d - (4 - b->ndim);
        s.a[d] = da >= 0 ? a->shape[da] : 1;
        s.b[d] = db >= 0 ? b->shape[db] : 1;
        CF_ASSERT(s.b[d] == s.a[d] || s.b[d] == 1, "%s: cannot broadcast %s %s to %s %s", op, b_name,
                  cf_shape_str(b, sb, 64), a_name, cf_shape_str(a, sa, 64));
    }
    int64_t stride = 1;
    for (int d = 3; d >= 0; d--) {
        s.bstride[d] = s.b[d] == 1 ? 0 : stride;
        stride *= s.b[d];
    }
    s.cols = s.a[3];
    s.rows = s.a[0] * s.a[1] * s.a[2];
    s.same = b->numel == a->numel;
    return s;
}

/* Offset of b's row that pairs with a's row r (its column stride is bstride[3]). */
static inline int64_t cf_bcast_b_row(const cf_bcast *s, int64_t r) {
    int64_t i2 = r % s->a[2], i1 = (r / s->a[2]) % s->a[1], i0 = r / (s->a[2] * s->a[1]);
    return i0 * s->bstride[0] + i1 * s->bstride[1] + i2 * s->bstride[2];
}

#endif
