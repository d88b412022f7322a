/* nn/params.c - parameter registry and initialisers. */
#include "nn/params.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Register a parameter named by fmt/ap: new storage (block NULL) or borrowed from block at offset. */
static cf_tensor *add_named(cf_params *ps, cf_tensor *block, int64_t offset, int ndim, const int64_t *shape,
                            const char *fmt, va_list ap) {
    char name[256];
    vsnprintf(name, sizeof name, fmt, ap);
    CF_ASSERT(!cf_params_find(ps, name), "parameter '%s' registered twice", name);
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 64;
        ps->items = realloc(ps->items, (size_t)ps->cap * sizeof *ps->items);
        CF_ASSERT(ps->items != NULL);
    }
    cf_tensor *p = block ? cf_param_borrow(name, block, offset, ndim, shape) : cf_param_new(name, ndim, shape);
    ps->items[ps->n++] = p;
    return p;
}

cf_tensor *cf_params_add(cf_params *ps, int ndim, const int64_t *shape, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cf_tensor *p = add_named(ps, NULL, 0, ndim, shape, fmt, ap);
    va_end(ap);
    return p;
}

static void keep_block(cf_params *ps, cf_tensor *t) {
    if (ps->n_blocks == ps->cap_blocks) {
        ps->cap_blocks = ps->cap_blocks ? 2 * ps->cap_blocks : 16;
        ps->blocks = realloc(ps->blocks, (size_t)ps->cap_blocks * sizeof *ps->blocks);
        CF_ASSERT(ps->blocks != NULL);
    }
    ps->blocks[ps->n_blocks++] = t;
}

cf_tensor *cf_params_block(cf_params *ps, int64_t numel) {
    cf_tensor *b = cf_param_new(NULL, 1, (int64_t[]){numel});
    memset(b->data, 0, (size_t)numel * sizeof(cf_real));
    memset(b->grad, 0, (size_t)numel * sizeof(cf_real));
    keep_block(ps, b);
    return b;
}

cf_tensor *cf_params_add_in(cf_params *ps, cf_tensor *block, int64_t offset, int ndim, const int64_t *shape,
                            const char *fmt, ...) {
    CF_ASSERT(block, "cf_params_add_in: no block");
    va_list ap;
    va_start(ap, fmt);
    cf_tensor *p = add_named(ps, block, offset, ndim, shape, fmt, ap);
    va_end(ap);
    return p;
}

cf_tensor *cf_params_block_view(cf_params *ps, cf_tensor *block, int64_t offset, int ndim, const int64_t *shape) {
    cf_tensor *v = cf_param_borrow(NULL, block, offset, ndim, shape);
    keep_block(ps, v);
    return v;
}

cf_tensor *cf_params_find(const cf_params *ps, const char *name) {
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i]->name, name) == 0) return ps->items[i];
    return NULL;
}

int64_t cf_params_numel(const cf_params *ps) {
    int64_t n = 0;
    for (int i = 0; i < ps->n; i++) n += ps->items[i]->numel;
    return n;
}

void cf_params_zero_grad(cf_params *ps) {
    for (int i = 0; i < ps->n; i++) cf_param_zero_grad(ps->items[i]);
}

void cf_params_free(cf_params *ps) {
    for (int i = 0; i < ps->n; i++) cf_param_free(ps->items[i]);
    for (int i = ps->n_blocks - 1; i >= 0; i--) cf_param_free(ps->blocks[i]); /* views before their owners */
    free(ps->items);
    free(ps->blocks);
    memset(ps, 0, sizeof *ps);
}

void cf_init_xavier_uniform(cf_tensor *w, cf_rng *r) {
    CF_ASSERT(w->ndim == 2, "xavier init needs a matrix: %s", w->name);
    double a = sqrt(6.0 / (double)(w->shape[0] + w->shape[1]));
    for (int64_t i = 0; i < w->numel; i++) w->data[i] = (cf_real)(a * (2 * cf_rng_uniform_f64(r) - 1));
}

void cf_init_normal(cf_tensor *w, double std, cf_rng *r) {
    for (int64_t i = 0; i < w->numel; i++) w->data[i] = (cf_real)(std * cf_rng_normal(r));
}

void cf_init_const(cf_tensor *w, double value) {
    for (int64_t i = 0; i < w->numel; i++) w->data[i] = (cf_real)value;
}
