/* core/threads.h - one OpenMP thread pool for our kernels and BLAS, sized to the free cores.
 *
 * Usage:
 *     if (cf_threads_init(0) != 0) ... ;     // 0 = the CPUs this process may use
 *     cf_threads_set_adaptive(true);         // follow the machine's load (the trainer's default)
 *     for each training step:
 *         cf_threads_adapt();                // between steps: may lower or raise the count
 *         ... the step ...
 *
 * BLAS never starts threads of its own: core/gemm.h cuts every GEMM into fixed tiles and runs one
 * single-threaded BLAS call per tile inside our OpenMP loop, so nothing is oversubscribed and no
 * result depends on the thread count. That is also what makes it safe to change the count between
 * steps: a step computes the same bits with 1 thread or 8.
 *
 * Why adapt: OpenMP threads meet at a barrier after every parallel loop. When another process
 * holds a core, one of our threads is descheduled for a time slice (milliseconds) at a time and the
 * others wait for it at every barrier; a 2-thread step beside one busy process ran 3.4x slower than
 * alone, and 1.8x slower than 1 thread. cf_threads_adapt measures, over the last half second, how
 * many of our CPUs other processes kept busy (/proc/stat minus our own CPU time, steal included;
 * niced processes' time only when we are niced too: a nice-10 job leaves us ~90% of its core) and
 * runs on the cores that are left (at least 1, at most the configured count).
 */
#ifndef CF_THREADS_H
#define CF_THREADS_H

#include <stdbool.h>

/* Sets the maximum thread count (0 = cf_threads_available()) and starts there. Returns 0, or -1
 * with cf_error_message() set if the linked OpenBLAS is not the OpenMP build. */
int cf_threads_init(int n_threads);
/* Threads the next parallel loop uses (<= cf_threads_max()). */
int cf_threads_count(void);
/* The configured maximum: per-thread scratch buffers are sized by it, so that a change of the
 * current count never changes how much memory a step takes. */
int cf_threads_max(void);
/* CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (containers). */
int cf_threads_available(void);
/* "OpenMP" / "pthreads" / "sequential": which OpenBLAS threading model is linked. */
const char *cf_threads_blas_model(void);

/* This process shares its CPUs with n_sharing - 1 siblings (pids): the ranks of a data-parallel
 * job on one node that are bound to the same cores, or to none. Call before cf_threads_init:
 * its default count becomes cf_threads_available() / n_sharing (at least 1), and load following
 * counts the siblings' CPU time as ours (not as a busy neighbour) and takes a 1/n_sharing share
 * of the CPUs that other processes leave free. */
void cf_threads_set_siblings(int n_sharing, const int *pids, int n_pids);

/* Sets the count for the next parallel loops, clamped to [1, cf_threads_max()]; returns it. For a
 * benchmark that compares thread counts step by step in one process (`cformer bench --scaling`);
 * load following, when on, may change it again at its next sample. */
int cf_threads_set_count(int n);

/* Load following (off by default; cf_threads_init keeps the setting). */
void cf_threads_set_adaptive(bool on);
bool cf_threads_adaptive(void);
/* Call between steps. At most every half second it samples the load and sets the thread count to
 * the CPUs other processes leave free. Returns the count now in force. No allocation. */
int cf_threads_adapt(void);
/* The last sample: average CPUs other processes used (-1 before the first full interval), and how
 * often the count was changed. */
double cf_threads_load_others(void);
long cf_threads_changes(void);

#endif
