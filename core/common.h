/* core/common.h - the scalar type, error reporting, the internal assert, checked allocation and
 * the clock.
 *
 * Usage:
 *     cf_st_file *f = cf_st_open(path);            // any library call that can fail on input
 *     if (!f) { fprintf(stderr, "error: %s\n", cf_error_message()); return 2; }
 *     double t0 = cf_now_s();
 *     int64_t *ids = cf_xmalloc(n * sizeof *ids);  // out of memory: a message, then exit(1)
 *
 * The library is compiled twice from the same sources: with cf_real = float (libcformer.a, what
 * users train with) and with cf_real = double (libcformer_f64.a, used only by the finite-difference
 * gradient checks, so that their tolerances can be tight). Define CF_REAL_DOUBLE for the latter.
 */
#ifndef CF_COMMON_H
#define CF_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef CF_REAL_DOUBLE
typedef double cf_real;
#define CF_REAL_NAME "F64"
#else
typedef float cf_real;
#define CF_REAL_NAME "F32"
#endif

#define CF_VERSION "0.1.0"

/* Set the calling thread's error message (printf-style). Library functions that fail set it and
 * return NULL / a non-zero status; the CLI prints it. Messages name the file, key, shape or line. */
void cf_error_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *cf_error_message(void);

/* Internal invariants only (never user input): prints file:line and aborts. */
#define CF_ASSERT(cond, ...)                                                                     \
    do {                                                                                         \
        if (!(cond)) cf_assert_fail(__FILE__, __LINE__, #cond, "" __VA_ARGS__);                 \
    } while (0)
_Noreturn void cf_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...);

/* In a function returning int: if cond fails, set the error message and return -1. */
#define CF_REQUIRE(cond, ...)                                                                    \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            cf_error_set(__VA_ARGS__);                                                           \
            return -1;                                                                           \
        }                                                                                        \
    } while (0)

/* Allocation that cannot fail: out of memory is not recoverable in the middle of a step, so these
 * print one line naming the size, the call site and the process's memory limit (ulimit -v),
 *     error: out of memory: 805306368 bytes at core/tensor.c:26 (this process may use at most 1024 MiB: ulimit -v)
 * and end the process with exit code 1 (not abort: no core dump, no signal). Files being written
 * at that moment are crash-safe as after a kill (docs/reliability.md). */
#define cf_xmalloc(n) cf_xmalloc_at((n), __FILE__, __LINE__)
#define cf_xcalloc(n, s) cf_xcalloc_at((n), (s), __FILE__, __LINE__)
#define cf_xrealloc(p, n) cf_xrealloc_at((p), (n), __FILE__, __LINE__)
#define cf_xstrdup(s) cf_xstrdup_at((s), __FILE__, __LINE__)
void *cf_xmalloc_at(size_t n, const char *file, int line);
void *cf_xcalloc_at(size_t n, size_t size, const char *file, int line);
void *cf_xrealloc_at(void *p, size_t n, const char *file, int line);
char *cf_xstrdup_at(const char *s, const char *file, int line);
_Noreturn void cf_out_of_memory(size_t n, const char *file, int line);
/* Under a finite address-space limit (ulimit -v) keep `bytes` of it free for libraries that
 * cannot fail cleanly (OpenBLAS retries a failed buffer allocation forever; core/threads.c says
 * how much): an allocation of ours of 1 MiB or more that would leave less fails instead, with the
 * message above. Without a limit nothing is checked. cf_memory_check is that check. */
void cf_memory_reserve(size_t bytes);
void cf_memory_check(size_t n, const char *file, int line);
/* The process's address space in use (/proc/self/statm), 0 if unknown. */
size_t cf_memory_vm_bytes(void);
/* 64-byte aligned, zeroed; free with free(). */
#define cf_xalloc_aligned(n) cf_xalloc_aligned_at((n), __FILE__, __LINE__)
void *cf_xalloc_aligned_at(size_t n, const char *file, int line);
/* Grow the malloc'ed array p so that it holds need elements of elem bytes: *cap (elements)
 * doubles, from 1024, until it is large enough, so n appends cost O(n) copies. Returns the new
 * pointer (p itself when it is already large enough); out of memory as cf_xmalloc. */
void *cf_grow(void *p, size_t *cap, size_t need, size_t elem);

/* Monotonic seconds, for timings and throughput (never for anything a result depends on). */
double cf_now_s(void);
/* Median of x[0..n-1], n >= 1 (the mean of the two middle values when n is even); x is left as
 * it is. */
double cf_median(const double *x, int64_t n);

#endif
