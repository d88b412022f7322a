/* train/copy_task.h - the course's training practice: learn to copy random symbol sequences.
 *
 * Usage (what `cformer train configs/copy.json` runs when data.task is "copy"):
 *     cf_config cfg;
 *     cf_config_load(&cfg, "configs/copy.json", 0, NULL);
 *     cf_copy_result r;
 *     int code = cf_copy_train(&cfg, "runs/copy", false, &r);   // 0 done, 1 failure, 2 bad config
 *     printf("%.2f%% exact after %lld steps\n", r.valid_exact, (long long)r.steps);
 *
 * Data (data/copy.h): every training epoch is data.copy_train new sequences of data.copy_len
 * symbols, cut into batches of train.batch_tokens / (copy_len + 1) sequences. Updates are
 * cf_train_step's (train/step.h): the config's model, optimizer, schedule (configs/copy.json: Noam,
 * warmup 400), label smoothing and clipping. Every train.eval_every updates the validation set is
 * decoded greedily and a copy counts when it equals the source exactly; training stops after two
 * evaluations in a row where every copy is exact, or at train.max_steps. The run directory gets
 * config.json and metrics.jsonl (train lines as `cformer train` writes them, eval lines
 * {"event":"eval","step":N,"exact":percent,"copies":k,"sentences":n,"elapsed_s":t}); no
 * checkpoints: a run takes seconds.
 */
#ifndef CF_TRAIN_COPY_TASK_H
#define CF_TRAIN_COPY_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include "train/config.h"

typedef struct cf_copy_result {
    int64_t steps;                  /* updates run */
    double valid_exact, test_exact; /* percent of exact greedy copies (test: the same count of sequences) */
    double seconds;                 /* wall time of the training loop and its evaluations */
} cf_copy_result;

int cf_copy_train(const cf_config *cfg, const char *run_dir, bool quiet, cf_copy_result *out);

#endif
