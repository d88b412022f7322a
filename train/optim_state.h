/* train/optim_state.h - an optimizer's state as safetensors (a checkpoint's optim.safetensors).
 *
 * Usage:
 *     cf_st_writer *w = cf_st_writer_new();
 *     cf_optimizer_state_save(opt, w);                     // references opt's buffers
 *     if (cf_st_writer_write(w, "optim.safetensors") != 0) ...;
 *     cf_st_writer_free(w);
 *     if (cf_optimizer_state_load_file(opt, "optim.safetensors") != 0)
 *         fprintf(stderr, "error: %s\n", cf_error_message());   // opt unchanged
 *
 * The optimizer (optim/optim.h) holds the buffers and their names; this is where they meet the
 * file format, so optim/ needs no I/O.
 */
#ifndef CF_TRAIN_OPTIM_STATE_H
#define CF_TRAIN_OPTIM_STATE_H

#include "core/safetensors.h"
#include "optim/optim.h"

/* Checkpoint state (optim.safetensors): F32 tensors "<param>.exp_avg" and "<param>.exp_avg_sq"
 * (Adam kinds) or "<param>.momentum_buffer" (SGD with momentum), the I64 tensor "optim.step" = [t]
 * and metadata "optim.kind". Save references opt's buffers: write w before the next step. */
void cf_optimizer_state_save(const cf_optimizer *opt, cf_st_writer *w);
/* Loads a saved state after checking every name, shape and dtype, the kind and the step; on
 * failure returns -1 with a message naming the file or tensor, and leaves opt unchanged. */
int cf_optimizer_state_load(cf_optimizer *opt, const cf_st_file *f);
/* The same from a path (the message then always starts with the path). */
int cf_optimizer_state_load_file(cf_optimizer *opt, const char *path);

#endif
