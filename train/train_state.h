/* train/train_state.h - the trainer's fields of a checkpoint's state.json, written and read back
 * with every value checked (a state.json is input: damaged, edited or crafted).
 *
 * Usage:
 *     cf_train_state s = cf_train_state_init();
 *     s.step = 200;
 *     cJSON *j = cf_train_state_to_json(&s, "cosine", 4.9e-4);   // merged into state.json
 *     cf_train_state back;
 *     if (cf_train_state_from_json(&back, j, "runs/x/checkpoints/step-00000200/state.json") != 0)
 *         fprintf(stderr, "error: %s\n", cf_error_message());   // names the file and the key
 *     cJSON_Delete(j);
 *
 * 64-bit integers (data position, RNG) are written as decimal strings: JSON numbers hold 53 bits.
 * Every number read is checked to be finite and in its range before it is converted, so no value
 * of a file can overflow a C integer; a missing optional field takes its initial value (files of
 * older versions lack eval_pending), a present but malformed one is an error naming its key.
 */
#ifndef CF_TRAIN_TRAIN_STATE_H
#define CF_TRAIN_TRAIN_STATE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "data/batch.h"

typedef struct cf_train_state {
    int64_t step;                   /* updates done (required) */
    cf_batch_state data;            /* the batcher's position (required) */
    double best_bleu;               /* -1: no evaluation yet */
    int64_t best_step, evals_since_best;
    int bad_steps_in_a_row;         /* the NaN guard's counters */
    int64_t bad_steps_total;
    double elapsed_s;               /* wall time of the run so far */
    double window_loss_sum, window_tokens;  /* the log window since the last train line */
    int64_t window_updates;
    int threads;                    /* the thread count that wrote it (informational; 0: unknown) */
    int ranks;                      /* the data-parallel ranks that wrote it (informational; 1 when absent) */
    bool eval_pending;              /* stopped during the evaluation of `step`: a resume redoes it first */
} cf_train_state;

cf_train_state cf_train_state_init(void);
/* A new object holding s (and the schedule's kind and next learning rate, for reading only). */
cJSON *cf_train_state_to_json(const cf_train_state *s, const char *schedule_kind, double next_lr);
/* Reads obj into *s; 0, or -1 with "where: \"key\": problem" (s is then unspecified). */
int cf_train_state_from_json(cf_train_state *s, const cJSON *obj, const char *where);

#endif
