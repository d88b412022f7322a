/* tests/test_data_toy.c - the toy translation set: deterministic, English a function of German,
 * lengths in range, splits disjoint, and the committed data/toy matches the generator. */
#include <stdlib.h>
#include <string.h>

#include "data/corpus.h"
#include "data/toy.h"
#include "tests/test.h"
#include "tests/testlib.h"

typedef struct pair_txt {
    char de[256], en[256];
} pair_txt;

static int by_de(const void *a, const void *b) { return strcmp(((const pair_txt *)a)->de, ((const pair_txt *)b)->de); }

static int n_words(const char *s) {
    int n = 0;
    for (const char *p = s; *p;) {
        while (*p == ' ') p++;
        if (!*p) break;
        const char *q = p;
        while (*q && *q != ' ') q++;
        if (!(q - p == 1 && strchr(".,?", *p))) n++;
        p = q;
    }
    return n;
}

TEST(toy_english_is_a_function_of_german) {
    enum { N = 20000 };
    pair_txt *p = malloc(N * sizeof *p);
    cf_rng r = cf_rng_init(11, CF_RNG_STREAM_DATA);
    int short_long = 0;
    for (int i = 0; i < N; i++) {
        cf_toy_sentence(&r, p[i].de, sizeof p[i].de, p[i].en, sizeof p[i].en);
        int a = n_words(p[i].de), b = n_words(p[i].en);
        short_long += a < 3 || a > 20 || b < 3 || b > 20;
    }
    CHECK(short_long == 0);
    qsort(p, N, sizeof *p, by_de);
    int conflicts = 0, distinct = 1;
    for (int i = 1; i < N; i++) {
        if (strcmp(p[i].de, p[i - 1].de) != 0) {
            distinct++;
            continue;
        }
        if (strcmp(p[i].en, p[i - 1].en) != 0 && conflicts++ < 3)
            CHECK_MSG(false, "'%s' -> '%s' and '%s'", p[i].de, p[i].en, p[i - 1].en);
    }
    CHECK(conflicts == 0);
    CHECK(distinct > N * 8 / 10); /* a rich enough grammar that most sentences are new */
    free(p);
}

TEST(toy_grammar_examples) {
    /* Phenomena the grammar promises, looked for in a sample: participle at the end, verb-final
     * subordinate clauses, V2 inversion after an adverb, genitive reordering. */
    cf_rng r = cf_rng_init(3, CF_RNG_STREAM_DATA);
    char de[512], en[512];
    bool perfect = false, dass = false, inversion = false, genitive = false, kein = false;
    for (int i = 0; i < 3000; i++) {
        cf_toy_sentence(&r, de, sizeof de, en, sizeof en);
        perfect |= strstr(de, " gesehen .") && strstr(en, "has seen the ");
        dass |= strstr(de, ", dass ") && strstr(de, " hat .") && strstr(en, " that ");
        inversion |= strncmp(de, "heute ", 6) == 0 && strncmp(en, "today ", 6) == 0;
        genitive |= strstr(de, " des ") && strstr(en, "'s ");
        kein |= strstr(de, " keinen ") && strstr(en, " no ");
    }
    CHECK_MSG(perfect && dass && inversion && genitive && kein, "perfect %d dass %d inversion %d genitive %d kein %d",
              perfect, dass, inversion, genitive, kein);
}

TEST(toy_committed_set_matches_generator) {
    cf_toy_opts o = cf_toy_defaults();
    const char *dir = test_tmpdir("toy");
    CHECK(cf_toy_write(dir, &o) == 0);
    const char *files[] = {"train.de", "train.en", "valid.de", "valid.en", "test.de", "test.en"};
    for (int k = 0; k < 6; k++) {
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/%s", dir, files[k]);
        snprintf(b, sizeof b, "%s/data/toy/%s", CF_SOURCE_DIR, files[k]);
        cf_lines *x = cf_lines_open(a), *y = cf_lines_open(b);
        CHECK_MSG(x && y, "%s", cf_error_message());
        if (!x || !y) {
            cf_lines_close(x);
            cf_lines_close(y);
            continue;
        }
        const char *lx, *ly;
        size_t nx, ny;
        int rx, ry;
        int64_t diffs = 0, lines = 0;
        do {
            rx = cf_lines_next(x, &lx, &nx);
            ry = cf_lines_next(y, &ly, &ny);
            if (rx > 0 && ry > 0) diffs += nx != ny || memcmp(lx, ly, nx) != 0, lines++;
        } while (rx > 0 && ry > 0);
        CHECK_MSG(rx == 0 && ry == 0 && diffs == 0, "%s: %lld of %lld lines differ from the generator (rerun "
                  "`build/cformer data toy --out data/toy --seed 1`)", files[k], (long long)diffs, (long long)lines);
        cf_lines_close(x);
        cf_lines_close(y);
    }
    /* no valid/test source in train: sources are unique across the three files */
    char path[600];
    snprintf(path, sizeof path, "%s/train.de", dir);
    int64_t total = 0;
    pair_txt *p = malloc(21000 * sizeof *p);
    const char *split[] = {"train.de", "valid.de", "test.de"};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, split[k]);
        cf_lines *x = cf_lines_open(path);
        const char *l;
        size_t n;
        while (x && cf_lines_next(x, &l, &n) > 0 && total < 21000) snprintf(p[total++].de, sizeof p->de, "%s", l);
        cf_lines_close(x);
    }
    CHECK(total == 21000);
    qsort(p, (size_t)total, sizeof *p, by_de);
    int dup = 0;
    for (int64_t i = 1; i < total; i++) dup += strcmp(p[i].de, p[i - 1].de) == 0;
    CHECK(dup == 0);
    free(p);
}
