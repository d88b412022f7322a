/* tests/alloc_count.c - see alloc_count.h. */
#include "tests/alloc_count.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h> /* (defines __GLIBC__) */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(CF_SANITIZER) || !defined(__GLIBC__)
#define COUNTING 0
#else
#define COUNTING 1
#endif

static atomic_int counting;
static atomic_long calls;

bool test_alloc_counting(void) { return COUNTING; }

void test_alloc_count_start(void) {
    atomic_store(&calls, 0);
    atomic_store(&counting, 1);
}

long test_alloc_count_stop(void) {
    atomic_store(&counting, 0);
    return atomic_load(&calls);
}

#if COUNTING
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);

static inline void count(void) {
    if (atomic_load_explicit(&counting, memory_order_relaxed)) atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
}

void *malloc(size_t n) {
    count();
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size) {
    count();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n) {
    count();
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n) {
    count();
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n) {
    count();
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n) {
    count();
    if (align < sizeof(void *) || (align & (align - 1)) != 0) return 22; /* EINVAL */
    void *p = __libc_memalign(align, n);
    if (!p && n) return 12; /* ENOMEM */
    *out = p;
    return 0;
}
#endif
