/* dist/dist.h - data-parallel training across processes (MPI), and the gradient accumulation of
 * one update that a single process uses too.
 *
 * Usage (one update of global accumulation G on K ranks; K = 1 without MPI):
 *     if (cf_dist_init() != 0) die(cf_error_message());  // MPI_Init only under mpirun/srun
 *     cf_grad_sync *gs = cf_grad_sync_new(params, n_params, G, 16 << 20);
 *     for (int64_t m = 0; m < G; m++) {                  // the update's micro-batches, in order
 *         batch = next();                                // every rank reads every batch ...
 *         if (m % cf_dist_size() != cf_dist_rank()) continue;  // ... and trains on its own
 *         ...forward, cf_backward: this micro-batch's gradient alone is in the params' ->grad...
 *         cf_grad_sync_add(gs, m, mean_loss, n_target_tokens);
 *     }
 *     cf_grad_sync_totals tot;
 *     cf_grad_sync_finish(gs, stop_flag, &tot);          // params' ->grad = the update's gradient
 *     ... clip, optimizer step ...
 *     cf_grad_sync_free(gs);
 *     cf_dist_finalize();                                // cf_dist_abort(code) if this rank fails alone
 *
 * The update's gradient is sum over micro-batches m of (n_m * g_m), divided by N = sum of n_m,
 * where g_m is the gradient of micro-batch m's mean loss and n_m its target tokens: the gradient
 * of the summed token loss over the global batch, normalised by its target tokens (fairseq,
 * Marian). G = 1 on one process is just g_0 (no arithmetic at all).
 *
 * Bit-identity: every element is added in one fixed order, a left fold over m = 0, 1, ..., G-1
 * ((x_0 + x_1) + x_2) + ... with x_m = n_m * g_m rounded to float, then one multiplication by
 * the float 1/N. One process folds its micro-batches in that order. K ranks (rank r trains
 * micro-batches r, r + K, r + 2K, ...) exchange x_m chunk by chunk: the owner of a chunk receives
 * the K values of micro-batches aK .. aK+K-1 in rank order and folds them onto its running sum, so
 * it performs exactly the additions one process would, in the same order, whatever K, the bucket
 * size or the chunk boundaries. MPI moves bytes only (alltoallv, allgatherv); it adds nothing.
 *
 * Without MPI (the default build) cf_dist_size() is 1 and nothing links MPI.
 */
#ifndef CF_DIST_H
#define CF_DIST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

/* ---- the process group (dist/comm_mpi.c with MPI=1, dist/comm_none.c without) ---- */

/* true in a `make MPI=1` build. */
bool cf_dist_compiled(void);
/* "Open MPI v4.1.4, ..." (the library's own first line) or "no MPI" (static string). */
const char *cf_dist_library(void);
/* A launcher (mpirun, srun) started this process: its environment names a rank. */
bool cf_dist_launched(void);
/* MPI_Init when built with MPI and launched (else nothing: one process); 0 or -1 with
 * cf_error_message() set. Safe to call more than once. */
int cf_dist_init(void);
/* MPI_Finalize: when every rank ends the same way (done, stopped together, or failed together
 * in the set-up agreement). */
void cf_dist_finalize(void);
/* MPI_Abort(code): this rank fails alone (a write error, a peer gone); finalising would wait for
 * ranks that never come. Kills the job and exits. */
void cf_dist_abort(int code);
int cf_dist_rank(void);
int cf_dist_size(void);
/* While a collective waits and *flag has been set (SIGTERM/SIGINT: mpirun forwards a Ctrl-C as
 * SIGTERM to every rank, and sends it to the survivors when a rank dies) for longer than the
 * grace time without the collective completing, the wait fails with a message saying the other
 * ranks stopped answering. NULL: wait for ever. */
void cf_dist_set_stop_flag(const volatile sig_atomic_t *flag, double grace_s);

/* Blocking collectives on bytes. Waits sleep (no busy polling) so idle ranks leave their CPU to
 * the others. Each returns 0, or -1 with cf_error_message() naming `what`. */
int cf_dist_bcast(void *buf, size_t bytes, int root, const char *what);
/* all[r * bytes ..] = rank r's mine, for every r. */
int cf_dist_allgather(const void *mine, void *all, size_t bytes, const char *what);

/* Non-blocking moves of floats (counts and displacements in elements, one per rank); a request is
 * finished by cf_dist_wait. */
int cf_dist_alltoallv_start(const float *send, const int *send_counts, const int *send_displs, float *recv,
                            const int *recv_counts, const int *recv_displs, const char *what);
int cf_dist_allgatherv_start(const float *mine, int count, float *all, const int *counts, const int *displs,
                             const char *what);
/* Completes request req (cf_dist_*_start's result, >= 0); 0 or -1. */
int cf_dist_wait(int req);

/* How many ranks share this process's CPUs: ranks on this node whose affinity masks overlap ours,
 * this one included (1 without MPI); -1 on error. pids[] receives the others' process ids (at
 * most max, *n_pids of them). */
int cf_dist_cpu_siblings(int *pids, int max, int *n_pids);

/* ---- one update's gradient (dist/grad_sync.c) ---- */

typedef struct cf_grad_sync cf_grad_sync;

typedef struct cf_grad_sync_totals {
    double loss_sum;            /* sum over the update's micro-batches of mean loss x target tokens */
    double tokens;              /* target tokens of the global batch, N */
    bool stop;                  /* some rank's stop flag was set when it reached cf_grad_sync_finish */
} cf_grad_sync_totals;

/* For the params' gradients, G micro-batches an update (a multiple of cf_dist_size()), buckets of
 * about bucket_bytes (0: 16 MiB). Buffers are allocated here, once. NULL on a bad G. */
cf_grad_sync *cf_grad_sync_new(cf_tensor *const *params, int n, int64_t accum, size_t bucket_bytes);
void cf_grad_sync_free(cf_grad_sync *s);
/* Micro-batch m (in increasing order; this rank's own: m % size == rank) has just been back-
 * propagated into the params' gradients: take n_tokens * gradient (the params' gradients are
 * zeroed for the next micro-batch). 0 or -1. */
int cf_grad_sync_add(cf_grad_sync *s, int64_t m, double mean_loss, int64_t n_tokens);
/* After this rank's last micro-batch: every rank's contributions added in micro-batch order,
 * divided by the global target tokens, are in the params' gradients (identical on every rank);
 * totals of the whole global batch in *t. stop is this rank's stop flag (may be NULL). 0 or -1. */
int cf_grad_sync_finish(cf_grad_sync *s, const volatile sig_atomic_t *stop, cf_grad_sync_totals *t);
/* Seconds spent in exchanges (waiting for the network) and folding, since cf_grad_sync_new. */
double cf_grad_sync_comm_seconds(const cf_grad_sync *s);
/* The buckets the gradient vector is cut into (each exchanged on its own). */
int cf_grad_sync_buckets(const cf_grad_sync *s);

#endif
