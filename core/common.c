/* core/common.c - error message buffer, assert, checked allocation, clock and median. */
#include "core/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char error_message[1024];

void cf_error_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
}

const char *cf_error_message(void) { return error_message[0] ? error_message : "unknown error"; }

void cf_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
    fprintf(stderr, "%s:%d: internal error: assertion '%s' failed", file, line, cond);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    abort();
}

static size_t reserve_bytes;
static size_t as_limit; /* 0: not read yet; SIZE_MAX: unlimited */

static size_t address_space_limit(void) {
    if (!as_limit) {
        struct rlimit rl;
        as_limit = getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < SIZE_MAX
                       ? (size_t)rl.rlim_cur
                       : SIZE_MAX;
    }
    return as_limit;
}

/* No malloc here (there is no memory): the message is formatted on the stack and written with
 * write(2). _exit, not exit: another thread may be inside an OpenMP region, and atexit handlers
 * would run beside it; stdout is flushed first so the progress already printed is kept. */
void cf_out_of_memory(size_t n, const char *file, int line) {
    char msg[512], limit[240] = "";
    if (address_space_limit() != SIZE_MAX)
        snprintf(limit, sizeof limit, " (this process may use at most %zu MiB: ulimit -v, %zu MiB of it kept for "
                 "OpenBLAS's buffers; a smaller model, train.batch_tokens or decode.batch_size needs less)",
                 as_limit >> 20, reserve_bytes >> 20);
    int k = snprintf(msg, sizeof msg, "error: out of memory: %zu bytes at %s:%d%s\n", n, file, line, limit);
    fflush(stdout);
    if (k > 0) {
        ssize_t w = write(STDERR_FILENO, msg, (size_t)k < sizeof msg ? (size_t)k : sizeof msg - 1);
        (void)w;
    }
    _exit(1);
}

void cf_memory_reserve(size_t bytes) { reserve_bytes = bytes; }

size_t cf_memory_vm_bytes(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t k = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (k <= 0) return 0;
    buf[k] = 0;
    return (size_t)strtoull(buf, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE);
}

void cf_memory_check(size_t n, const char *file, int line) {
    if (n < ((size_t)1 << 20) || address_space_limit() == SIZE_MAX) return;
    size_t vm = cf_memory_vm_bytes();
    if (vm && (n > as_limit || vm + reserve_bytes > as_limit - n)) cf_out_of_memory(n, file, line);
}

void *cf_xmalloc_at(size_t n, const char *file, int line) {
    cf_memory_check(n, file, line);
    void *p = malloc(n ? n : 1);
    if (!p) cf_out_of_memory(n, file, line);
    return p;
}

void *cf_xcalloc_at(size_t n, size_t size, const char *file, int line) {
    cf_memory_check(size && n > SIZE_MAX / size ? SIZE_MAX : n * size, file, line);
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) cf_out_of_memory(size && n > SIZE_MAX / size ? SIZE_MAX : n * size, file, line);
    return p;
}

void *cf_xrealloc_at(void *p, size_t n, const char *file, int line) {
    cf_memory_check(n, file, line);
    void *q = realloc(p, n ? n : 1);
    if (!q) cf_out_of_memory(n, file, line);
    return q;
}

char *cf_xstrdup_at(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *d = cf_xmalloc_at(n, file, line);
    memcpy(d, s, n);
    return d;
}

void *cf_xalloc_aligned_at(size_t n, const char *file, int line) {
    size_t rounded = (n + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    cf_memory_check(n, file, line);
    void *p = rounded >= n ? aligned_alloc(64, rounded) : NULL;
    if (!p) cf_out_of_memory(n, file, line);
    memset(p, 0, rounded);
    return p;
}

void *cf_grow(void *p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c = c > SIZE_MAX / 2 ? need : c * 2;
    if (elem && c > SIZE_MAX / elem) cf_out_of_memory(SIZE_MAX, __FILE__, __LINE__);
    p = cf_xrealloc(p, c * elem);
    *cap = c;
    return p;
}

double cf_now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cf_median(const double *x, int64_t n) {
    CF_ASSERT(n >= 1, "median of %lld values", (long long)n);
    double *s = cf_xmalloc((size_t)n * sizeof *s);
    memcpy(s, x, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}
