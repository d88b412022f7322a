/* train/trainer.h - `cformer train`: the training loop and its run directory.
 *
 * Usage:
 *     cf_train_args a = {.config_path = "configs/toy.json", .out_dir = NULL, .resume = false};
 *     int exit_code = cf_train(&a);      // 0 done, 1 runtime failure, 2 bad config or input
 *
 * Run directory (GUIDE section 3): config.json, tokenizer.json, metrics.jsonl, curves.svg,
 * checkpoints/step-NNNNNNNN/, checkpoints/latest, checkpoints/best. SIGINT/SIGTERM stop the loop
 * after the current update and write a checkpoint; --resume continues bit-identically.
 */
#ifndef CF_TRAIN_TRAINER_H
#define CF_TRAIN_TRAINER_H

#include <stdbool.h>

typedef struct cf_train_args {
    const char *config_path;
    const char *out_dir;        /* NULL: runs/<name> */
    bool resume;
    int n_sets;
    char **sets;                /* "key.path=value" overrides */
    bool quiet;                 /* no progress lines (tests) */
} cf_train_args;

int cf_train(const cf_train_args *a);

#endif
