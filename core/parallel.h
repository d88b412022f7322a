/* core/parallel.h - a loop on the OpenMP pool when its work pays for the threads, else a plain loop.
 *
 * Usage (the loop is the macro's last argument, braces and all):
 *     CF_PARALLEL_FOR(rows * cols > CF_PAR_MIN_WORK, for (int64_t r = 0; r < rows; r++) {
 *         ...one row...
 *     });
 *     CF_PARALLEL_FOR_DYNAMIC(tasks > 1, for (int64_t t = 0; t < tasks; t++) { ... });  // schedule(dynamic, 1)
 *
 * Why not `#pragma omp parallel for if (big)`: a region whose if-clause is false, or that runs on
 * one thread (train.threads 1, or load following down to 1 on a busy machine), still enters
 * libgomp, which allocates and frees a team descriptor for it every time (it caches only teams of
 * two or more threads). Here such a loop never enters OpenMP, so the steady-state training step
 * and decoding call no allocator (tests/test_steady_state.c). Inside another parallel region the
 * loop runs on the calling thread, as a nested region would by OpenMP's default.
 *
 * Each iteration must be independent of the others (as for any `omp for`): the results are then
 * the same whichever branch runs, for any thread count.
 */
#ifndef CF_PARALLEL_H
#define CF_PARALLEL_H

#include <omp.h>
#include <stdbool.h>

static inline bool cf_parallel_pays(bool big) { return big && !omp_in_parallel() && omp_get_max_threads() > 1; }

#define CF_PRAGMA(x) _Pragma(#x)
#define CF_PARALLEL_FOR_SCHEDULE(schedule, big, ...) \
    do {                                             \
        if (cf_parallel_pays(big)) {                 \
            CF_PRAGMA(omp parallel for schedule)     \
            __VA_ARGS__                              \
        } else {                                     \
            __VA_ARGS__                              \
        }                                            \
    } while (0)
#define CF_PARALLEL_FOR(big, ...) CF_PARALLEL_FOR_SCHEDULE(schedule(static), big, __VA_ARGS__)
#define CF_PARALLEL_FOR_DYNAMIC(big, ...) CF_PARALLEL_FOR_SCHEDULE(schedule(dynamic, 1), big, __VA_ARGS__)

#endif
