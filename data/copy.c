/* data/copy.c - the copy task's sequences and files (data/copy.h). */
#include "data/copy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/fileio.h"
#include "core/rng.h"

/* Its own stream, so that the copy data of a seed never shares draws with the toy set or the init. */
enum { COPY_STREAM = 5, WORDS_PER_SEQUENCE_LOG2 = 12 };

cf_copy_task cf_copy_task_default(void) { return (cf_copy_task){.seed = 1, .vocab = 11, .len = 10}; }

int cf_copy_task_check(const cf_copy_task *t) {
    CF_REQUIRE(t->vocab >= 4 && t->vocab <= 1000000, "copy task: vocab %lld must be in 4 .. 1000000 (<pad>, <bos>, "
               "<eos> and at least one symbol)", (long long)t->vocab);
    CF_REQUIRE(t->len >= 1 && t->len <= 1000, "copy task: len %lld must be in 1 .. 1000", (long long)t->len);
    return 0;
}

void cf_copy_sequence(const cf_copy_task *t, uint64_t epoch, int64_t index, int32_t *out) {
    /* Each (epoch, index) owns a block of 2^12 counter words (a sequence of 1000 symbols draws at
     * most ~1000 words plus rare rejections), placed at (epoch * 2^24 + index) * 2^12: indices
     * below 2^24 never overlap the next epoch's, and epochs below 2^28 fit the 64-bit counter. */
    cf_rng r = cf_rng_init(t->seed, COPY_STREAM);
    r.counter = ((epoch << 24) + (uint64_t)index) << WORDS_PER_SEQUENCE_LOG2;
    uint64_t n_symbols = (uint64_t)(t->vocab - 3);
    for (int64_t i = 0; i < t->len; i++) out[i] = CF_COPY_FIRST_SYMBOL + (int32_t)cf_rng_below(&r, n_symbols);
}

/* n sequences of `epoch` into path, one a line. */
static int write_set(const char *path, const cf_copy_task *t, uint64_t epoch, int64_t n) {
    FILE *f = fopen(path, "w");
    CF_REQUIRE(f, "%s: cannot write: %s", path, strerror(errno));
    int32_t *x = cf_xmalloc((size_t)t->len * sizeof *x);
    for (int64_t i = 0; i < n; i++) {
        cf_copy_sequence(t, epoch, i, x);
        for (int64_t j = 0; j < t->len; j++) fprintf(f, j ? " %d" : "%d", x[j]);
        fputc('\n', f);
    }
    free(x);
    bool ok = !ferror(f);
    ok &= fclose(f) == 0;
    CF_REQUIRE(ok, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

int cf_copy_write(const char *dir, const cf_copy_task *t, int64_t epochs, int64_t n_train, int64_t n_valid,
                  int64_t n_test) {
    if (cf_copy_task_check(t) != 0) return -1;
    CF_REQUIRE(n_train < ((int64_t)1 << 24) && n_valid < ((int64_t)1 << 24) && n_test < ((int64_t)1 << 24),
               "copy task: at most 2^24 - 1 sequences a set");
    if (cf_mkdir_p(dir) != 0) return -1;
    char name[64];
    for (int64_t e = 0; e < epochs; e++) {
        snprintf(name, sizeof name, "train.e%03lld.txt", (long long)e);
        char *path = cf_path_join(dir, name);
        int rc = write_set(path, t, (uint64_t)e, n_train);
        free(path);
        if (rc != 0) return -1;
    }
    const struct { const char *name; uint64_t epoch; int64_t n; } held[] = {
        {"valid.txt", CF_COPY_VALID, n_valid}, {"test.txt", CF_COPY_TEST, n_test}};
    for (int i = 0; i < 2; i++) {
        char *path = cf_path_join(dir, held[i].name);
        int rc = write_set(path, t, held[i].epoch, held[i].n);
        free(path);
        if (rc != 0) return -1;
    }
    return 0;
}
