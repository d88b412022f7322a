/* train/checkpoint.h - model weights and crash-safe training checkpoints.
 *
 * Usage:
 *     // every save_every steps (state: the trainer's own fields: epoch, data position, RNG, ...)
 *     cJSON *st = cJSON_CreateObject();
 *     cJSON_AddNumberToObject(st, "epoch", epoch);
 *     cJSON_AddStringToObject(st, "rng", "12345678901234567890");   // 64-bit values as strings
 *     if (cf_checkpoint_save("runs/toy", step, &model->params, opt, st, config_json, is_best,
 *                            cfg.train.keep_last) != 0)
 *         fprintf(stderr, "error: %s\n", cf_error_message());
 *     cJSON_Delete(st);
 *
 *     // --resume, eval, translate
 *     char *dir = cf_checkpoint_resolve("runs/toy");   // -> "runs/toy/checkpoints/step-00000200"
 *     cJSON *state; char *config_json;
 *     if (!dir || cf_checkpoint_load(dir, &model->params, opt, &state, &config_json) != 0)
 *         fprintf(stderr, "error: %s\n", cf_error_message());  // names the file and the problem
 *
 * Layout of a run directory's checkpoints/ (see docs/checkpoint.md):
 *     step-00000200/{model.safetensors, optim.safetensors, state.json}
 *     latest -> step-00000200          (relative symlinks, replaced atomically)
 *     best   -> step-00000100
 *     .tmp-*                           (being written, or left by a crash; removed by the next save)
 *
 * model.safetensors: every parameter as F32 under its PyTorch-style name, in registration order,
 * with __metadata__ {"format": "cformer", "version": CF_VERSION, "config": <run config JSON>}.
 * optim.safetensors: cf_optimizer_state_save's tensors (train/optim_state.h, docs/optim.md).
 * state.json: the caller's fields plus "format": "cformer-checkpoint-2", "version", "step",
 * "files": {"model.safetensors": {"bytes": n, "crc32": "1a2b3c4d"}, "optim.safetensors": {...}}
 * and, last, "state_crc32": the CRC32 of the file's bytes before that member's comma (format 1,
 * written before, had none and is still read).
 *
 * Crash safety: a checkpoint is written and fsync'ed in a .tmp- directory and renamed into place
 * as a whole, and latest/best are repointed only afterwards, so a kill at any instant leaves
 * latest naming a complete checkpoint (the old one or the new one). Loading verifies sizes and
 * CRC32s before parsing, then every name, shape and dtype before changing anything: on failure
 * the model and optimizer are unchanged. One process saves into a run directory at a time.
 */
#ifndef CF_TRAIN_CHECKPOINT_H
#define CF_TRAIN_CHECKPOINT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "nn/params.h"
#include "optim/optim.h"

#define CF_CHECKPOINT_FORMAT "cformer-checkpoint-2"
#define CF_WEIGHTS_FORMAT "cformer"

/* Writes every parameter (F32, registration order) to path and fsyncs it; config_json (may be
 * NULL) goes to the metadata key "config". 0, or -1 with a message naming the path. */
int cf_params_save(const cf_params *ps, const char *path, const char *config_json);

/* Loads path into ps: the file must be a cformer weights file holding exactly ps's parameters,
 * each F32 with the parameter's shape. Everything is checked before anything is copied, so on
 * failure (-1, message naming the file and tensor) ps is unchanged. */
int cf_params_load(cf_params *ps, const char *path);

/* Saves a checkpoint of step into run_dir/checkpoints/step-NNNNNNNN (replacing an existing one of
 * the same step), repoints latest (and best if is_best), then keeps the keep_last newest step
 * directories plus latest's and best's targets and removes the rest and any .tmp- leftovers.
 * opt may be NULL (no optim.safetensors); state (an object, may be NULL) is merged into
 * state.json; config_json may be NULL. 0, or -1 with a message naming the path. */
int cf_checkpoint_save(const char *run_dir, int64_t step, const cf_params *ps, const cf_optimizer *opt,
                       const cJSON *state, const char *config_json, bool is_best, int keep_last);

/* The step directory meant by path: a run directory (its checkpoints/latest, or the newest step
 * directory if latest is missing), a checkpoints directory, a latest/best link, or a step
 * directory. Returns a malloc'ed path (links followed, relative to the same base as path), or NULL
 * with a message ("runs/x: no checkpoints yet", "not a checkpoint directory: ..."). */
char *cf_checkpoint_resolve(const char *path);

/* Loads the step directory ckpt_dir into ps and opt (may be NULL: optimizer state ignored).
 * On success *state (may be NULL) receives state.json (free with cJSON_Delete) and *config_json
 * (may be NULL) the config from the model's metadata (malloc'ed; NULL if none was saved).
 * On failure: -1 with a message naming the file and what is wrong; ps and opt unchanged. */
int cf_checkpoint_load(const char *ckpt_dir, cf_params *ps, cf_optimizer *opt, cJSON **state, char **config_json);

/* Parses and checks state.json's text (n bytes, at most 1 MiB): a JSON object with our format
 * (its checksum when format 2), a version of ours, a step that is a non-negative integer (equal
 * to dir's step-NNNNNNNN name when dir is given; may be NULL) and a "files" object. Returns the
 * object (cJSON_Delete it), or NULL with a message naming path. The caller's fields are not
 * checked here: the trainer validates its own (train/train_state.h). */
cJSON *cf_checkpoint_state_parse(const char *text, size_t n, const char *path, const char *dir);

/* The steps of run_dir/checkpoints/step-* directories, ascending (*steps malloc'ed, NULL if none).
 * A run without checkpoints/ has none. 0, or -1 with a message. */
int cf_checkpoint_list(const char *run_dir, int64_t **steps, int *n);

#endif
