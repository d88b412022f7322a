/* data/copy.h - the course's copy task: random symbol sequences that the model must copy.
 *
 * Usage:
 *     cf_copy_task t = cf_copy_task_default();          // vocab 11, length 10, seed 1
 *     int32_t x[10];
 *     cf_copy_sequence(&t, 3, 17, x);                   // sequence 17 of training epoch 3
 *     cf_copy_sequence(&t, CF_COPY_VALID, 0, x);        // the fixed validation set
 *     if (cf_copy_write("data/copy", &t, 2, 3000, 200, 200) != 0) puts(cf_error_message());
 *
 * Ids (the training practice's): 0 <pad>, 1 <bos>, vocab - 1 <eos>, symbols 2 .. vocab - 2 (eight
 * of them for vocab 11). A sequence is `len` symbols drawn uniformly; the target is the source.
 * As every pair of the translation corpora, the model sees src = x <eos>, tgt_in = <bos> x and
 * tgt_out = x <eos>. Sequence i of epoch e is a pure function of (seed, e, i), so each training
 * epoch is new data (the practice regenerates its batches every epoch) and any run, resumed or
 * repeated, sees the same sequences; the validation and test sets are two reserved "epochs".
 */
#ifndef CF_COPY_H
#define CF_COPY_H

#include <stdint.h>

enum { CF_COPY_PAD = 0, CF_COPY_BOS = 1, CF_COPY_FIRST_SYMBOL = 2 };
/* Reserved epoch numbers of the held-out sets (far above any training epoch; epochs stay below
 * 2^28 so that data/copy.c's counter layout fits 64 bits). */
#define CF_COPY_VALID ((uint64_t)1 << 27)
#define CF_COPY_TEST (((uint64_t)1 << 27) + 1)

typedef struct cf_copy_task {
    uint64_t seed;
    int64_t vocab;              /* >= 4: <pad>, <bos>, <eos> and at least one symbol */
    int64_t len;                /* symbols per sequence, >= 1 */
} cf_copy_task;

cf_copy_task cf_copy_task_default(void);
static inline int32_t cf_copy_eos(const cf_copy_task *t) { return (int32_t)(t->vocab - 1); }
/* 0, or -1 with a message naming the bad field. */
int cf_copy_task_check(const cf_copy_task *t);
/* out[0 .. len) = sequence `index` of `epoch`. */
void cf_copy_sequence(const cf_copy_task *t, uint64_t epoch, int64_t index, int32_t *out);
/* dir/train.eNNN.txt for epochs 0 .. epochs-1 (n_train lines each), dir/valid.txt, dir/test.txt:
 * one sequence a line, ids separated by spaces (no <bos>/<eos>). 0, or -1 + error naming the file. */
int cf_copy_write(const char *dir, const cf_copy_task *t, int64_t epochs, int64_t n_train, int64_t n_valid,
                  int64_t n_test);

#endif
