/* tests/fuzz/fuzz_state.c - a checkpoint's state.json: the checkpoint's own checks (format,
 * checksum, version, step against the directory name, files) and then the trainer's fields.
 * Properties: errors name the file; accepted fields survive their round trip exactly. */
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "train/checkpoint.h"
#include "train/train_state.h"

static bool same(const cf_train_state *a, const cf_train_state *b) {
    return a->step == b->step && memcmp(&a->data, &b->data, sizeof a->data) == 0 && a->best_bleu == b->best_bleu &&
           a->best_step == b->best_step && a->evals_since_best == b->evals_since_best &&
           a->bad_steps_in_a_row == b->bad_steps_in_a_row && a->bad_steps_total == b->bad_steps_total &&
           a->elapsed_s == b->elapsed_s && a->window_loss_sum == b->window_loss_sum &&
           a->window_tokens == b->window_tokens && a->window_updates == b->window_updates &&
           a->threads == b->threads && a->ranks == b->ranks && a->eval_pending == b->eval_pending;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The directory's step is checked against the file's for inputs of even length (the seeds are
     * of step 16). */
    const char *dir = size % 2 ? NULL : "run/checkpoints/step-00000016";
    cJSON *root = cf_checkpoint_state_parse((const char *)data, size, "state.json", dir);
    if (!root) {
        FUZZ_ASSERT(strncmp(cf_error_message(), "state.json", 10) == 0);
        return 0;
    }
    cf_train_state s;
    if (cf_train_state_from_json(&s, root, "state.json") == 0) {
        /* through text, as on disk: the writer's numbers are raw nodes holding exact text
         * (core/json.h), which only a parse turns back into numbers */
        cJSON *j = cf_train_state_to_json(&s, "cosine", 1e-3);
        char *text = cJSON_Print(j);
        cJSON *again = cJSON_Parse(text);
        cf_train_state back;
        FUZZ_ASSERT(again && cf_train_state_from_json(&back, again, "again") == 0 && same(&s, &back));
        cJSON_Delete(again);
        free(text);
        cJSON_Delete(j);
    } else {
        FUZZ_ASSERT(strncmp(cf_error_message(), "state.json", 10) == 0);
    }
    cJSON_Delete(root);
    return 0;
}
