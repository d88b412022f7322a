/* core/tensor.c - tensor and parameter construction. */
#include "core/tensor.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bound leaves room for byte sizes: numel * sizeof(double) still fits an int64_t. */
#define NUMEL_MAX (INT64_MAX / 16)

int64_t cf_shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return -1;
        if (shape[d] && n > NUMEL_MAX / shape[d]) return -1;
        n *= shape[d];
    }
    return n;
}

cf_tensor cf_tensor_header(int ndim, const int64_t *shape) {
    CF_ASSERT(ndim >= 1 && ndim <= CF_MAX_DIMS, "ndim %d", ndim);
    cf_tensor t = {.ndim = ndim};
    for (int d = 0; d < CF_MAX_DIMS; d++) t.shape[d] = d < ndim ? shape[d] : 1;
    for (int d = 0; d < ndim; d++) CF_ASSERT(shape[d] >= 0, "negative size %lld", (long long)shape[d]);
    t.numel = cf_shape_numel(ndim, shape);
    CF_ASSERT(t.numel >= 0, "shape [%lld, %lld, %lld, %lld] overflows int64", (long long)t.shape[0],
              (long long)t.shape[1], (long long)t.shape[2], (long long)t.shape[3]);
    return t;
}

cf_tensor *cf_param_new(const char *name, int ndim, const int64_t *shape) {
    cf_tensor *p = cf_xmalloc(sizeof *p);
    *p = cf_tensor_header(ndim, shape);
    p->data = cf_xalloc_aligned((size_t)p->numel * sizeof(cf_real));
    p->grad = cf_xalloc_aligned((size_t)p->numel * sizeof(cf_real));
    p->requires_grad = true;
    p->is_param = true;
    if (name) {
        p->name = cf_xmalloc(strlen(name) + 1);
        strcpy(p->name, name);
    }
    return p;
}

cf_tensor *cf_param_borrow(const char *name, cf_tensor *owner, int64_t offset, int ndim, const int64_t *shape) {
    CF_ASSERT(owner && owner->is_param && !owner->borrowed, "borrowed parameter: the owner is not a parameter");
    cf_tensor *p = cf_xmalloc(sizeof *p);
    *p = cf_tensor_header(ndim, shape);
    CF_ASSERT(offset >= 0 && offset <= owner->numel && p->numel <= owner->numel - offset,
              "borrowed parameter of %lld elements at %lld, owner has %lld", (long long)p->numel, (long long)offset,
              (long long)owner->numel);
    p->data = owner->data + offset;
    p->grad = owner->grad + offset;
    p->requires_grad = true;
    p->is_param = p->borrowed = true;
    if (name) {
        p->name = cf_xmalloc(strlen(name) + 1);
        strcpy(p->name, name);
    }
    return p;
}

void cf_param_free(cf_tensor *p) {
    if (!p) return;
    CF_ASSERT(p->is_param);
    if (!p->borrowed) {
        free(p->data);
        free(p->grad);
    }
    free(p->name);
    free(p);
}

void cf_param_zero_grad(cf_tensor *p) { memset(p->grad, 0, (size_t)p->numel * sizeof(cf_real)); }

bool cf_shape_equal(const cf_tensor *a, const cf_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

const char *cf_shape_str(const cf_tensor *t, char *buf, size_t n) {
    size_t off = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < t->ndim && off < n; d++)
        off += (size_t)snprintf(buf + off, n - off, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (off < n) snprintf(buf + off, n - off, "]");
    return buf;
}
