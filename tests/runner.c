/* tests/runner.c - runs the registered tests; the last line is "N passed, M failed". */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/common.h"
#include "core/threads.h"
#include "tests/test.h"

typedef struct test_case {
    const char *name, *file;
    test_fn fn;
} test_case;

static test_case *cases;
static int n_cases, cap_cases;
static int current_failures;

void test_register(const char *name, const char *file, test_fn fn) {
    if (n_cases == cap_cases) {
        cap_cases = cap_cases ? cap_cases * 2 : 64;
        cases = realloc(cases, (size_t)cap_cases * sizeof *cases);
        if (!cases) abort();
    }
    cases[n_cases++] = (test_case){name, file, fn};
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    if (++current_failures <= 10) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stdout, "    %s:%d: ", file, line);
        vfprintf(stdout, fmt, ap);
        fputc('\n', stdout);
        va_end(ap);
    } else if (current_failures == 11) {
        fprintf(stdout, "    (further failures in this test not shown)\n");
    }
}

int test_failures(void) { return current_failures; }

static int by_file_then_name(const void *a, const void *b) {
    const test_case *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->name, y->name);
}

int main(int argc, char **argv) {
    if (cf_threads_init(0) != 0) {
        fprintf(stdout, "error: %s\n0 passed, 1 failed\n", cf_error_message());
        return 1;
    }
    qsort(cases, (size_t)n_cases, sizeof *cases, by_file_then_name);
    int passed = 0, failed = 0;
    for (int i = 0; i < n_cases; i++) {
        bool selected = argc < 2;
        for (int a = 1; a < argc; a++) selected |= strstr(cases[i].name, argv[a]) != NULL;
        if (!selected) continue;
        current_failures = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cases[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (current_failures) {
            failed++;
            printf("FAIL %-44s %s (%d failed checks)\n", cases[i].name, cases[i].file, current_failures);
        } else {
            passed++;
            printf("ok   %-44s %8.1f ms\n", cases[i].name, ms);
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    free(cases);
    return failed ? 1 : 0;
}
