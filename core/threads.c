/* core/threads.c - set the OpenMP and OpenBLAS thread counts together. */
#include "core/threads.h"

#include <cblas.h>
#include <omp.h>

#include "core/common.h"

static int thread_count = 1;

const char *cf_threads_blas_model(void) {
    switch (openblas_get_parallel()) {
    case 0: return "sequential";
    case 1: return "pthreads";
    case 2: return "OpenMP";
    default: return "unknown";
    }
}

int cf_threads_init(int n_threads) {
    if (n_threads <= 0) n_threads = omp_get_num_procs();
    thread_count = n_threads;
    /* BLAS always runs single-threaded (core/gemm.h tiles the GEMMs itself). In the OpenMP build,
     * openblas_set_num_threads also sets OpenMP's count, so it goes first. */
    openblas_set_num_threads(1);
    omp_set_num_threads(n_threads);
    if (openblas_get_parallel() != 2) {
        cf_error_set("OpenBLAS threading model is %s, expected OpenMP: link the openblas-openmp "
                     "build (see Makefile)", cf_threads_blas_model());
        return -1;
    }
    return 0;
}

int cf_threads_count(void) { return thread_count; }
