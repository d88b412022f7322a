/* train/optim_state.c - the optimizer's state in optim.safetensors (format: docs/optim.md). */
#include "train/optim_state.h"

#include <stdio.h>
#include <string.h>

#define STEP_NAME "optim.step"
#define KIND_KEY "optim.kind"

static cf_real *state_buffer(const cf_optimizer *opt, int s, int i) { return s == 0 ? opt->m[i] : opt->v[i]; }

void cf_optimizer_state_save(const cf_optimizer *opt, cf_st_writer *w) {
    for (int i = 0; i < opt->n; i++) {
        const cf_tensor *p = opt->params[i];
        for (int s = 0; s < opt->n_state; s++)
            cf_st_writer_add_real(w, opt->state_names[s * opt->n + i], p->ndim, p->shape, state_buffer(opt, s, i));
    }
    cf_st_writer_add(w, STEP_NAME, CF_ST_I64, 1, (int64_t[]){1}, &opt->t);
    cf_st_writer_meta(w, KIND_KEY, cf_optim_kind_name(opt->cfg.kind));
}

static bool state_tensor_ok(const cf_st_tensor *t, const cf_tensor *p) {
    if (!t || t->ndim != p->ndim || (t->dtype != CF_ST_F32 && t->dtype != CF_ST_F64)) return false;
    for (int d = 0; d < p->ndim; d++)
        if (t->shape[d] != p->shape[d]) return false;
    return true;
}

int cf_optimizer_state_load(cf_optimizer *opt, const cf_st_file *f) {
    const char *kind = cf_st_metadata(f, KIND_KEY);
    if (!kind || strcmp(kind, cf_optim_kind_name(opt->cfg.kind)) != 0) {
        cf_error_set("optimizer state: metadata '%s' is '%s', expected '%s' (state of another optimizer?)", KIND_KEY,
                     kind ? kind : "(missing)", cf_optim_kind_name(opt->cfg.kind));
        return -1;
    }
    const cf_st_tensor *st = cf_st_find(f, STEP_NAME);
    int64_t step = -1;
    if (st && st->dtype == CF_ST_I64 && st->numel == 1) memcpy(&step, st->data, sizeof step);
    if (step < 0) {
        cf_error_set("optimizer state: tensor '%s' must be one non-negative I64", STEP_NAME);
        return -1;
    }
    /* Validate everything before touching opt. For a bad tensor, let the reader produce its
     * standard message (it names the file); it refuses before copying, and the destination given
     * is a real buffer of the parameter's size in any case. */
    for (int i = 0; i < opt->n; i++) {
        const cf_tensor *p = opt->params[i];
        for (int s = 0; s < opt->n_state; s++) {
            const char *name = opt->state_names[s * opt->n + i];
            if (!state_tensor_ok(cf_st_find(f, name), p)) {
                int rc = cf_st_read_real(f, name, state_buffer(opt, s, i), p->ndim, p->shape);
                CF_ASSERT(rc != 0, "state tensor '%s' judged bad but read fine", name);
                return -1;
            }
        }
    }
    int expected = opt->n * opt->n_state + 1;
    if (cf_st_count(f) != expected) {
        /* Every expected tensor is present and names are unique, so some tensor is extra. */
        for (int k = 0; k < cf_st_count(f); k++) {
            const char *name = cf_st_at(f, k)->name;
            bool known = strcmp(name, STEP_NAME) == 0;
            for (int j = 0; !known && j < opt->n * opt->n_state; j++) known = strcmp(name, opt->state_names[j]) == 0;
            if (!known) {
                cf_error_set("optimizer state: tensor '%s' belongs to no parameter of this model (%d tensors, "
                             "expected %d)", name, cf_st_count(f), expected);
                return -1;
            }
        }
    }
    for (int i = 0; i < opt->n; i++) {
        const cf_tensor *p = opt->params[i];
        for (int s = 0; s < opt->n_state; s++) {
            int rc = cf_st_read_real(f, opt->state_names[s * opt->n + i], state_buffer(opt, s, i), p->ndim, p->shape);
            CF_ASSERT(rc == 0, "validated state tensor failed to read: %s", cf_error_message());
        }
    }
    opt->t = step;
    return 0;
}

int cf_optimizer_state_load_file(cf_optimizer *opt, const char *path) {
    cf_st_file *f = cf_st_open(path);
    if (!f) return -1;
    int rc = cf_optimizer_state_load(opt, f);
    cf_st_close(f);
    if (rc != 0 && strncmp(cf_error_message(), path, strlen(path)) != 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cf_error_message());
        cf_error_set("%s: %s", path, msg);
    }
    return rc;
}
