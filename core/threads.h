/* core/threads.h - one thread pool for our kernels and OpenBLAS.
 *
 * Usage:
 *     if (cf_threads_init(0) != 0) ... ;     // 0 = all cores; also sets OpenBLAS's count
 *     int n = cf_threads_count();
 *
 * cformer links the OpenMP build of OpenBLAS, so BLAS calls and our `omp parallel for` loops
 * share one OpenMP pool; a BLAS call made inside one of our parallel regions runs on the calling
 * thread only (OpenBLAS checks omp_in_parallel), so threads are never oversubscribed.
 */
#ifndef CF_THREADS_H
#define CF_THREADS_H

/* Returns 0, or -1 with cf_error_message() set if OpenBLAS is not the OpenMP build. */
int cf_threads_init(int n_threads);
int cf_threads_count(void);
/* "OpenMP" / "pthreads" / "sequential": which OpenBLAS threading model is linked. */
const char *cf_threads_blas_model(void);

#endif
