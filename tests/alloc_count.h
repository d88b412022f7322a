/* tests/alloc_count.h - counting every allocator call in the unit-test process.
 *
 *     if (test_alloc_counting()) {
 *         test_alloc_count_start();
 *         work();                                   // anything: ours, OpenBLAS's, libgomp's
 *         CHECK(test_alloc_count_stop() == 0);      // malloc/calloc/realloc/aligned calls made
 *     }
 *
 * tests/alloc_count.c defines malloc, calloc, realloc, aligned_alloc, memalign and posix_memalign,
 * forwarding to glibc's own entry points (__libc_malloc, ...) and counting while started, so an
 * allocation that is freed again before the work returns is seen too. Sanitizer builds keep their
 * own allocator (make lsan and make tsan define CF_SANITIZER: gcc has no macro for LeakSanitizer,
 * clang none of these): there test_alloc_counting() is false and nothing is counted.
 */
#ifndef CF_TESTS_ALLOC_COUNT_H
#define CF_TESTS_ALLOC_COUNT_H

#include <stdbool.h>

bool test_alloc_counting(void);
void test_alloc_count_start(void);
long test_alloc_count_stop(void);

#endif
