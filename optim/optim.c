/* optim/optim.c - parameter lists and the AdamW / Adam / SGD updates. */
#include "optim/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"

/* Parallelise an element-wise loop only when it has enough work to pay for waking the threads. */
#define OPTIM_PAR_MIN 32768
/* Elements per work item of the update: every parameter, small or large, in one parallel loop
 * (a loop per tensor left the many biases and norms serial, and woke the threads 100+ times). */
#define OPTIM_BLOCK 16384
#ifdef CF_REAL_DOUBLE
#define OPTIM_SQRT sqrt
#else
#define OPTIM_SQRT sqrtf
#endif
/* State buffers start on 64-byte boundaries: 16 floats (or 8 doubles). */
#define OPTIM_ALIGN_ELEMS (64 / (int64_t)sizeof(cf_real))

/* ---- parameter list ---- */

void cf_param_list_init(cf_param_list *l) { memset(l, 0, sizeof *l); }

void cf_param_list_free(cf_param_list *l) {
    free(l->params);
    free(l->decay);
    memset(l, 0, sizeof *l);
}

int cf_param_list_add(cf_param_list *l, cf_tensor *p, bool decay) {
    if (!p || !p->is_param || !p->name || !p->grad) {
        cf_error_set("optimizer: '%s' is not a named parameter with a gradient buffer",
                     p && p->name ? p->name : "(unnamed tensor)");
        return -1;
    }
    for (int i = 0; i < l->n; i++) {
        if (l->params[i] == p || strcmp(l->params[i]->name, p->name) == 0) {
            cf_error_set("optimizer: parameter '%s' listed twice (tied weights must be listed once)", p->name);
            return -1;
        }
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->params = realloc(l->params, (size_t)l->cap * sizeof *l->params);
        l->decay = realloc(l->decay, (size_t)l->cap * sizeof *l->decay);
        CF_ASSERT(l->params && l->decay, "out of memory");
    }
    l->params[l->n] = p;
    l->decay[l->n] = decay;
    l->n++;
    return 0;
}

bool cf_param_wants_decay(const cf_tensor *p, bool exempt_embeddings) {
    /* Decaying a bias or a norm's gain pulls it towards 0 (the gain towards "switch the layer
     * off"), which only hurts; the 2-D matrices are what weight decay is meant to regularise. */
    if (p->ndim < 2) return false;
    if (exempt_embeddings && p->name && strstr(p->name, "embed")) return false;
    return true;
}

int cf_param_list_add_auto(cf_param_list *l, cf_tensor *p, bool exempt_embeddings) {
    return cf_param_list_add(l, p, p && cf_param_wants_decay(p, exempt_embeddings));
}

int64_t cf_param_list_numel(const cf_param_list *l) {
    int64_t n = 0;
    for (int i = 0; i < l->n; i++) n += l->params[i]->numel;
    return n;
}

/* ---- configuration ---- */

static const char *const kind_names[] = {[CF_OPTIM_ADAMW] = "adamw", [CF_OPTIM_ADAM] = "adam", [CF_OPTIM_SGD] = "sgd"};

const char *cf_optim_kind_name(cf_optim_kind kind) {
    return (unsigned)kind < sizeof kind_names / sizeof kind_names[0] ? kind_names[kind] : "unknown";
}

int cf_optim_kind_parse(const char *name, cf_optim_kind *out) {
    for (int k = 0; k < (int)(sizeof kind_names / sizeof kind_names[0]); k++) {
        if (name && strcmp(name, kind_names[k]) == 0) {
            *out = (cf_optim_kind)k;
            return 0;
        }
    }
    cf_error_set("unknown optimizer '%s' (expected adamw, adam or sgd)", name ? name : "(null)");
    return -1;
}

cf_optim_config cf_optim_config_default(cf_optim_kind kind) {
    return (cf_optim_config){.kind = kind, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                             .weight_decay = kind == CF_OPTIM_ADAMW ? 0.01 : 0.0};
}

static int check_config(const cf_optim_config *c) {
    if ((unsigned)c->kind > CF_OPTIM_SGD) {
        cf_error_set("optimizer: invalid kind %d", (int)c->kind);
        return -1;
    }
    if (c->kind != CF_OPTIM_SGD) {
        if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1)) {
            cf_error_set("optimizer: betas (%g, %g) must lie in [0, 1)", c->beta1, c->beta2);
            return -1;
        }
        if (!(c->eps >= 0) || !isfinite(c->eps)) {
            cf_error_set("optimizer: eps %g must be finite and >= 0", c->eps);
            return -1;
        }
    } else {
        if (!(c->momentum >= 0) || !isfinite(c->momentum) || !(c->dampening >= 0) || !isfinite(c->dampening)) {
            cf_error_set("optimizer: momentum %g and dampening %g must be finite and >= 0", c->momentum, c->dampening);
            return -1;
        }
        if (c->nesterov && (c->momentum <= 0 || c->dampening != 0)) {
            cf_error_set("optimizer: Nesterov momentum needs momentum > 0 and dampening 0");
            return -1;
        }
    }
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay)) {
        cf_error_set("optimizer: weight_decay %g must be finite and >= 0", c->weight_decay);
        return -1;
    }
    return 0;
}

/* ---- creation ---- */

static const char *state_suffix(const cf_optimizer *opt, int s) {
    if (opt->cfg.kind == CF_OPTIM_SGD) return "momentum_buffer";
    return s == 0 ? "exp_avg" : "exp_avg_sq";
}

cf_optimizer *cf_optimizer_new(const cf_param_list *params, const cf_optim_config *cfg) {
    if (check_config(cfg) != 0) return NULL;
    cf_optimizer *opt = cf_xcalloc(1, sizeof *opt);
    opt->cfg = *cfg;
    opt->n = params->n;
    int n_alloc = opt->n ? opt->n : 1;
    opt->params = cf_xmalloc((size_t)n_alloc * sizeof *opt->params);
    opt->decay = cf_xmalloc((size_t)n_alloc * sizeof *opt->decay);
    memcpy(opt->params, params->params, (size_t)opt->n * sizeof *opt->params);
    memcpy(opt->decay, params->decay, (size_t)opt->n * sizeof *opt->decay);
    opt->m = cf_xcalloc((size_t)n_alloc, sizeof *opt->m);
    opt->v = cf_xcalloc((size_t)n_alloc, sizeof *opt->v);

    if (cfg->kind == CF_OPTIM_SGD) opt->n_state = cfg->momentum != 0 ? 1 : 0;
    else opt->n_state = 2;

    /* One block for all state: each buffer rounded up to a 64-byte multiple so every m[i] and
     * v[i] stays aligned for the vector loops. */
    int64_t total = 0;
    for (int i = 0; i < opt->n; i++) {
        int64_t padded = (opt->params[i]->numel + OPTIM_ALIGN_ELEMS - 1) / OPTIM_ALIGN_ELEMS * OPTIM_ALIGN_ELEMS;
        total += padded * opt->n_state;
    }
    opt->state_block = cf_xalloc_aligned((size_t)(total ? total : 1) * sizeof(cf_real)); /* zeroed */
    cf_real *next = opt->state_block;
    for (int i = 0; i < opt->n; i++) {
        int64_t padded = (opt->params[i]->numel + OPTIM_ALIGN_ELEMS - 1) / OPTIM_ALIGN_ELEMS * OPTIM_ALIGN_ELEMS;
        if (opt->n_state >= 1) opt->m[i] = next, next += padded;
        if (opt->n_state >= 2) opt->v[i] = next, next += padded;
    }

    int64_t nb = 0;
    for (int i = 0; i < opt->n; i++) nb += (opt->params[i]->numel + OPTIM_BLOCK - 1) / OPTIM_BLOCK;
    opt->blocks = cf_xmalloc((size_t)(nb ? nb : 1) * sizeof *opt->blocks);
    for (int i = 0; i < opt->n; i++)
        for (int64_t b = 0; b < opt->params[i]->numel; b += OPTIM_BLOCK) {
            int64_t len = opt->params[i]->numel - b < OPTIM_BLOCK ? opt->params[i]->numel - b : OPTIM_BLOCK;
            opt->blocks[opt->n_blocks++] = (struct cf_optim_block){i, b, len};
            opt->n_elems += len;
        }

    /* Checkpoint names, built once so that saving allocates no more than the writer does. */
    opt->state_names = cf_xcalloc((size_t)(opt->n_state * opt->n + 1), sizeof *opt->state_names);
    for (int i = 0; i < opt->n; i++) {
        for (int s = 0; s < opt->n_state; s++) {
            const char *suffix = state_suffix(opt, s);
            size_t len = strlen(opt->params[i]->name) + 1 + strlen(suffix) + 1;
            char *name = cf_xmalloc(len);
            snprintf(name, len, "%s.%s", opt->params[i]->name, suffix);
            opt->state_names[s * opt->n + i] = name;
        }
    }
    return opt;
}

void cf_optimizer_free(cf_optimizer *opt) {
    if (!opt) return;
    for (int k = 0; k < opt->n_state * opt->n; k++) free(opt->state_names[k]);
    free(opt->state_names);
    free(opt->state_block);
    free(opt->blocks);
    free(opt->m);
    free(opt->v);
    free(opt->params);
    free(opt->decay);
    free(opt);
}

/* ---- updates ----
 * Each loop body mirrors PyTorch's sequence of in-place tensor ops (adamw.py / adam.py / sgd.py,
 * _single_tensor_*), one float32 rounding per op, scalars rounded to float as ATen does when it
 * applies a Python number to a float tensor. ISO C mode (-std=c11) keeps gcc from contracting
 * a*b+c into an FMA, so vector and scalar iterations round identically: the result does not
 * depend on how the loop is split across threads. */

/* Note: gcc 12 keeps sqrtf scalar here (an errno branch per element, 3.3 ns/element on one core)
 * unless the build passes -fno-math-errno (0.7 ns/element); neither the optimize attribute nor
 * the pragma lifts it. The results are the same either way. */
/* gscale multiplies each gradient as it is read (x * 1 is exact, so 1 changes nothing); zero
 * clears the gradient after use: clipping, the update and zero-grad in one pass over memory. */
static void adam_update(cf_real *restrict p, cf_real *restrict g, cf_real *restrict m, cf_real *restrict v,
                        int64_t n, const cf_optimizer *opt, double lr, double wd, cf_real gscale, bool zero) {
    const cf_optim_config *c = &opt->cfg;
    const double t = (double)opt->t;
    const double bias_correction1 = 1.0 - pow(c->beta1, t);
    const double bias_correction2 = 1.0 - pow(c->beta2, t);
    const cf_real neg_step_size = (cf_real)(-(lr / bias_correction1));
    const cf_real bc2_sqrt = (cf_real)sqrt(bias_correction2);
    const cf_real beta1 = (cf_real)c->beta1, one_minus_beta1 = (cf_real)(1.0 - c->beta1);
    const cf_real beta2 = (cf_real)c->beta2, one_minus_beta2 = (cf_real)(1.0 - c->beta2);
    const cf_real eps = (cf_real)c->eps;
    const bool decoupled = c->kind == CF_OPTIM_ADAMW && wd != 0;
    const bool coupled = c->kind == CF_OPTIM_ADAM && wd != 0;
    const cf_real param_scale = (cf_real)(1.0 - lr * wd);   /* AdamW: param.mul_(1 - lr * wd) */
    const cf_real wd_r = (cf_real)wd;                        /* Adam: grad.add(param, alpha=wd) */

    for (int64_t i = 0; i < n; i++) {
        cf_real pi = p[i], gi = g[i] * gscale;
        if (zero) g[i] = 0;
        if (decoupled) pi = pi * param_scale;
        if (coupled) gi = gi + wd_r * pi;
        cf_real mi = m[i] * beta1 + one_minus_beta1 * gi;       /* exp_avg.mul_(b1).add_(g, 1-b1) */
        cf_real vi = v[i] * beta2 + one_minus_beta2 * gi * gi;  /* exp_avg_sq.mul_(b2).addcmul_(g, g, 1-b2) */
        cf_real denom = OPTIM_SQRT(vi) / bc2_sqrt + eps;             /* (v.sqrt() / sqrt(bc2)).add_(eps) */
        p[i] = pi + neg_step_size * mi / denom;                 /* addcdiv_(m, denom, -lr/bc1) */
        m[i] = mi;
        v[i] = vi;
    }
}

static void sgd_update(cf_real *restrict p, cf_real *restrict g, cf_real *restrict buf, int64_t n,
                       const cf_optimizer *opt, double lr, double wd, cf_real gscale, bool zero) {
    const cf_optim_config *c = &opt->cfg;
    const bool first = opt->t == 1;        /* PyTorch: the buffer starts as a copy of d_p */
    const bool has_momentum = c->momentum != 0;
    const cf_real wd_r = (cf_real)wd, momentum = (cf_real)c->momentum;
    const cf_real one_minus_dampening = (cf_real)(1.0 - c->dampening), neg_lr = (cf_real)(-lr);
    const bool nesterov = c->nesterov;

    for (int64_t i = 0; i < n; i++) {
        cf_real pi = p[i], d = g[i] * gscale;
        if (zero) g[i] = 0;
        if (wd != 0) d = d + wd_r * pi;
        if (has_momentum) {
            cf_real b = first ? d : buf[i] * momentum + one_minus_dampening * d;
            buf[i] = b;
            d = nesterov ? d + momentum * b : b;
        }
        p[i] = pi + neg_lr * d;
    }
}

static void optimizer_update(cf_optimizer *opt, double lr, double grad_scale, bool zero) {
    CF_ASSERT(isfinite(lr) && lr >= 0, "learning rate %g", lr);
    CF_ASSERT(isfinite(grad_scale), "gradient scale %g", grad_scale);
    const cf_real gs = (cf_real)grad_scale;
    opt->t++;
    CF_PARALLEL_FOR(opt->n_elems > OPTIM_PAR_MIN, for (int64_t k = 0; k < opt->n_blocks; k++) {
        const struct cf_optim_block *blk = &opt->blocks[k];
        int i = blk->param;
        cf_tensor *p = opt->params[i];
        double wd = opt->decay[i] ? opt->cfg.weight_decay : 0.0;
        int64_t b = blk->begin;
        if (opt->cfg.kind == CF_OPTIM_SGD)
            sgd_update(p->data + b, p->grad + b, opt->m[i] ? opt->m[i] + b : NULL, blk->len, opt, lr, wd, gs, zero);
        else
            adam_update(p->data + b, p->grad + b, opt->m[i] + b, opt->v[i] + b, blk->len, opt, lr, wd, gs, zero);
    });
}

void cf_optimizer_step(cf_optimizer *opt, double lr) { optimizer_update(opt, lr, 1.0, false); }

void cf_optimizer_step_and_zero(cf_optimizer *opt, double lr, double grad_scale) {
    optimizer_update(opt, lr, grad_scale, true);
}

void cf_optimizer_zero_grad(cf_optimizer *opt) {
    CF_PARALLEL_FOR(opt->n_elems > OPTIM_PAR_MIN, for (int64_t k = 0; k < opt->n_blocks; k++) {
        const struct cf_optim_block *blk = &opt->blocks[k];
        memset(opt->params[blk->param]->grad + blk->begin, 0, (size_t)blk->len * sizeof(cf_real));
    });
}
