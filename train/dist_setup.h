/* train/dist_setup.h - what the trainer adds for K ranks: threads per rank, and the start-up
 * agreement that every rank is about to train the same thing.
 *
 * Usage (in cf_train, every rank the same calls in the same order):
 *     cf_dist_init();
 *     cf_dist_share_cpus();                    // before cf_threads_init: 1/n of shared cores
 *     ... load config, data, model, resume (an error jumps to the agreement with its code) ...
 *     cf_fingerprint fp = {0};
 *     cf_fingerprint_add(&fp.config, text, strlen(text));  // also .data and .state
 *     int code = cf_dist_agree_start(0, &fp); // 0: all ranks ready and identical
 *
 * The agreement is the one collective every rank reaches whatever happened before: a rank that
 * failed brings its exit code (and prints its error, unless a lower rank printed the same one),
 * a rank that did not brings the fingerprints of its config, data and starting state. If any rank
 * failed, all exit with the largest code; if some fingerprint differs from rank 0's, rank 0 names
 * the rank and what differs and all exit with 2. So a job never starts with ranks that would
 * silently compute different things (another config file, other data on a node, a run directory
 * that some node does not see).
 */
#ifndef CF_TRAIN_DIST_SETUP_H
#define CF_TRAIN_DIST_SETUP_H

#include <stddef.h>
#include <stdint.h>

/* Declares the ranks sharing this rank's CPUs to core/threads.h (a collective; nothing with one
 * process). 0 or -1. */
int cf_dist_share_cpus(void);

/* 64-bit hashes of what each rank is about to train on. */
typedef struct cf_fingerprint {
    uint64_t config, data, state;
} cf_fingerprint;

/* Mixes n bytes into *h (start from 0). */
void cf_fingerprint_add(uint64_t *h, const void *bytes, size_t n);

/* code: this rank's exit code so far (0: ready; cf_error_message() holds its error otherwise).
 * Returns the job's code: 0 to start. With one process it returns code and prints nothing. */
int cf_dist_agree_start(int code, const cf_fingerprint *fp);

#endif
