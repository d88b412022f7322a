/* bench/bench_main.c - `make bench`: every benchmark, or those named on the command line. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int bench_tokenizer(void);

static const struct {
    const char *name;
    int (*run)(void);
} benches[] = {
    {"tokenizer", bench_tokenizer},
};

int main(int argc, char **argv) {
    int rc = 0;
    for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++) {
        bool selected = argc < 2;
        for (int a = 1; a < argc; a++) selected |= strcmp(argv[a], benches[i].name) == 0;
        if (selected) rc |= benches[i].run();
    }
    return rc;
}
