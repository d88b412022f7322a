/* core/kernel.h - private helpers shared by the op kernels (not part of the public API). */
#ifndef CF_KERNEL_H
#define CF_KERNEL_H

#include <cblas.h>

#include "core/common.h"

#ifdef CF_REAL_DOUBLE
#define cf_gemm cblas_dgemm
#define cf_gemv cblas_dgemv
#else
#define cf_gemm cblas_sgemm
#define cf_gemv cblas_sgemv
#endif

/* Parallelise a loop only when it has enough work to pay for waking the threads. */
#define CF_PAR_MIN_WORK 32768

#endif
