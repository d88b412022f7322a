/* tests/test_data_unigram.c - Unigram LM: Viterbi against an exhaustive search, sampling against
 * the exact distribution, byte fallback, training on a small language, and the file's validation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "data/unigram.h"
#include "tests/test.h"

#define B(c) (CF_TOK_BYTE_BASE + (unsigned char)(c))

/* ---- exhaustive search over every segmentation of a word ---- */

typedef struct search {
    const char *const *piece;
    const size_t *plen;
    const float *score;
    int np;
    double fallback;
    const char *w;
    size_t n;
    /* results */
    double best;
    int n_best;                     /* segmentations reaching `best` */
    int32_t best_ids[64];
    int n_best_ids;
    int n_paths;
    double alpha, z;                /* sum of exp(alpha * score) over every path */
    /* path probability tally, for the sampling test: path ids joined */
    char (*paths)[256];
    double *path_w;
    int cap_paths;
} search;

static size_t unit(const char *s) {
    unsigned char c = (unsigned char)*s;
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

static void path_key(const int32_t *ids, int m, char *out) {
    out[0] = 0;
    for (int k = 0; k < m; k++) sprintf(out + strlen(out), "%d,", ids[k]);
}

/* Sum left to right in double, as Viterbi does, so the best total compares exactly. */
static void walk(search *S, size_t pos, double sum, int32_t *ids, int m) {
    if (pos == S->n) {
        S->n_paths++;
        if (sum > S->best) S->best = sum, S->n_best = 1, S->n_best_ids = m, memcpy(S->best_ids, ids, (size_t)m * 4);
        else if (sum == S->best) S->n_best++;
        double w = exp(S->alpha * sum);
        S->z += w;
        if (S->paths && S->n_paths <= S->cap_paths) {
            path_key(ids, m, S->paths[S->n_paths - 1]);
            S->path_w[S->n_paths - 1] = w;
        }
        return;
    }
    size_t u = unit(S->w + pos);
    bool single = false;
    for (int i = 0; i < S->np; i++) {
        if (S->plen[i] > S->n - pos || memcmp(S->piece[i], S->w + pos, S->plen[i]) != 0) continue;
        single |= S->plen[i] == u;
        ids[m] = CF_TOK_N_BASE + i;
        walk(S, pos + S->plen[i], sum + S->score[i], ids, m + 1);
    }
    if (!single) {
        for (size_t k = 0; k < u; k++) ids[m + (int)k] = B(S->w[pos + k]);
        walk(S, pos + u, sum + S->fallback, ids, m + (int)u);
    }
}

/* Random distinct pieces over {a, b, c, ä} and random scores in [-8, -0.5). */
static int random_pieces(cf_rng *rng, int np, char buf[][16], const char **piece, size_t *plen, float *score) {
    const char *alpha[] = {"a", "b", "c", "\xc3\xa4"};
    int n = 0;
    for (int tries = 0; n < np && tries < 1000; tries++) {
        size_t len = 0;
        int k = 1 + (int)cf_rng_below(rng, 3);
        for (int j = 0; j < k; j++) {
            const char *a = alpha[cf_rng_below(rng, 4)];
            memcpy(buf[n] + len, a, strlen(a));
            len += strlen(a);
        }
        bool dup = false;
        for (int i = 0; i < n; i++) dup |= plen[i] == len && memcmp(buf[i], buf[n], len) == 0;
        if (dup) continue;
        piece[n] = buf[n], plen[n] = len, score[n] = (float)(-0.5 - 7.5 * cf_rng_uniform_f64(rng));
        n++;
    }
    return n;
}

TEST(unigram_viterbi_matches_exhaustive_search) {
    cf_rng rng = cf_rng_init(21, CF_RNG_STREAM_TEST);
    const char *alpha[] = {"a", "b", "c", "\xc3\xa4"};
    int checked = 0;
    for (int rep = 0; rep < 20; rep++) {
        char buf[24][16];
        const char *piece[24];
        size_t plen[24];
        float score[24];
        int np = random_pieces(&rng, 6 + rep % 18, buf, piece, plen, score);
        cf_unigram *t = cf_unigram_from_pieces(np, piece, plen, score);
        CHECK_MSG(t != NULL, "%s", cf_error_message());
        if (!t) return;
        for (int s = 0; s < 100; s++) {
            char w[64];
            size_t n = 0;
            int k = 1 + (int)cf_rng_below(&rng, 9);
            for (int j = 0; j < k; j++) {
                const char *a = alpha[cf_rng_below(&rng, 4)];
                memcpy(w + n, a, strlen(a));
                n += strlen(a);
            }
            search S = {.piece = piece, .plen = plen, .score = score, .np = np,
                        .fallback = cf_unigram_fallback_score(t), .w = w, .n = n, .best = -INFINITY};
            int32_t ids[64];
            walk(&S, 0, 0, ids, 0);
            cf_ids got = {0};
            cf_unigram_encode(t, w, n, &got);
            /* the score of what Viterbi chose, summed the same way */
            double sum = 0;
            for (int64_t i = 0; i < got.n;) {
                int32_t id = got.data[i];
                if (id >= CF_TOK_N_BASE) sum += score[id - CF_TOK_N_BASE], i++;
                else sum += S.fallback, i += (int64_t)unit((const char[]){(char)(id - CF_TOK_BYTE_BASE), 0});
            }
            CHECK_MSG(sum == S.best, "rep %d \"%.*s\": Viterbi %.17g, exhaustive best %.17g over %d paths", rep, (int)n,
                      w, sum, S.best, S.n_paths);
            if (S.n_best == 1) {
                CHECK_MSG(got.n == S.n_best_ids && memcmp(got.data, S.best_ids, (size_t)got.n * 4) == 0,
                          "rep %d \"%.*s\": another segmentation than the unique best", rep, (int)n, w);
                checked++;
            }
            cf_ids_free(&got);
        }
        cf_unigram_free(t);
    }
    CHECK(checked > 1000);
}

/* Sampling draws each segmentation with probability exp(alpha * score) / Z. */
TEST(unigram_sampling_matches_the_exact_distribution) {
    const char *piece[] = {"a", "b", "ab", "ba", "aba", "bab"};
    size_t plen[] = {1, 1, 2, 2, 3, 3};
    float score[] = {-1.0f, -1.5f, -2.0f, -2.5f, -2.2f, -3.0f};
    cf_unigram *t = cf_unigram_from_pieces(6, piece, plen, score);
    const char *w = "ababa";
    const double alpha = 0.7;
    enum { CAP = 64, N = 40000 };
    char paths[CAP][256];
    double pw[CAP];
    search S = {.piece = piece, .plen = plen, .score = score, .np = 6, .fallback = cf_unigram_fallback_score(t),
                .w = w, .n = 5, .best = -INFINITY, .alpha = alpha, .paths = paths, .path_w = pw, .cap_paths = CAP};
    int32_t ids[64];
    walk(&S, 0, 0, ids, 0);
    CHECK(S.n_paths > 5 && S.n_paths <= CAP);
    int counts[CAP] = {0};
    cf_rng rng = cf_rng_init(3, CF_RNG_STREAM_DATA);
    cf_ids got = {0};
    char key[256];
    for (int i = 0; i < N; i++) {
        got.n = 0;
        cf_unigram_encode_sample(t, w, 5, alpha, &rng, &got);
        path_key(got.data, (int)got.n, key);
        int k = 0;
        while (k < S.n_paths && strcmp(paths[k], key) != 0) k++;
        CHECK_MSG(k < S.n_paths, "sampled a segmentation that does not exist: %s", key);
        if (k < S.n_paths) counts[k]++;
    }
    for (int k = 0; k < S.n_paths; k++) {
        double p = pw[k] / S.z, f = (double)counts[k] / N;
        double tol = 5 * sqrt(p * (1 - p) / N) + 1e-3;
        CHECK_MSG(fabs(f - p) <= tol, "segmentation %s: sampled %.4f, exact %.4f", paths[k], f, p);
    }
    /* A large alpha is Viterbi; the same seed draws the same segmentations. */
    cf_ids best = {0}, again = {0};
    cf_unigram_encode(t, w, 5, &best);
    got.n = 0;
    cf_unigram_encode_sample(t, w, 5, 200.0, &rng, &got);
    CHECK(got.n == best.n && memcmp(got.data, best.data, (size_t)got.n * 4) == 0);
    cf_rng r1 = cf_rng_init(9, CF_RNG_STREAM_DATA), r2 = cf_rng_init(9, CF_RNG_STREAM_DATA);
    got.n = 0;
    for (int i = 0; i < 50; i++) cf_unigram_encode_sample(t, "ab ba abab", 10, 0.3, &r1, &got);
    for (int i = 0; i < 50; i++) cf_unigram_encode_sample(t, "ab ba abab", 10, 0.3, &r2, &again);
    CHECK(got.n == again.n && memcmp(got.data, again.data, (size_t)got.n * 4) == 0);
    cf_ids_free(&got);
    cf_ids_free(&best);
    cf_ids_free(&again);
    cf_unigram_free(t);
}

/* A small language: frequent words become single pieces, every unit stays, scores are log
 * probabilities, and the model never loses a byte. */
TEST(unigram_training_on_a_small_language) {
    cf_rng rng = cf_rng_init(17, CF_RNG_STREAM_TEST);
    const char *words[] = {"the", "cat", "sat", "on", "mat", "hat", "that", "cats", "sitting", "matting"};
    cf_tok_trainer *tr = cf_tok_trainer_new();
    char line[256];
    for (int l = 0; l < 500; l++) {
        size_t n = 0;
        for (int w = 0; w < 8; w++) {
            unsigned r = (unsigned)cf_rng_below(&rng, 100);
            const char *x = words[r < 40 ? 0 : r < 55 ? 1 : r % 10];
            if (w) line[n++] = ' ';
            memcpy(line + n, x, strlen(x)), n += strlen(x);
        }
        cf_tok_trainer_add(tr, line, n);
    }
    cf_unigram *u = cf_unigram_train(tr, &(cf_unigram_opts){.vocab_size = 300});
    CHECK_MSG(u != NULL, "%s", cf_error_message());
    if (!u) return;
    CHECK(cf_unigram_vocab_size(u) <= 300 && cf_unigram_vocab_size(u) > 280);
    cf_ids ids = {0};
    cf_unigram_encode(u, " the", 4, &ids);
    CHECK_MSG(ids.n == 1, "\" the\" takes %lld pieces", (long long)ids.n);
    /* every letter of the corpus is a piece */
    const char *letters = "thecasonmgi ";
    for (const char *c = letters; *c; c++) {
        ids.n = 0;
        cf_unigram_encode(u, c, 1, &ids);
        CHECK_MSG(ids.n == 1 && ids.data[0] >= CF_TOK_N_BASE, "unit '%c' is not a piece", *c);
    }
    double total = 0;
    float prev = 0;
    for (int32_t id = CF_TOK_N_BASE; id < cf_unigram_vocab_size(u); id++) {
        float s;
        cf_unigram_token(u, id, NULL, &s);
        CHECK(s < 0 && (id == CF_TOK_N_BASE || s <= prev)); /* ordered by score */
        prev = s;
        total += exp(s);
    }
    CHECK_MSG(total < 1.05, "sum of piece probabilities %.3f", total);
    /* an unknown character: byte fallback */
    ids.n = 0;
    cf_unigram_encode(u, "x\xe2\x82\xac", 4, &ids);
    CHECK(ids.n == 4 && ids.data[0] == B('x') && ids.data[1] == B(0xe2) && ids.data[3] == B(0xac));
    cf_ids_free(&ids);
    cf_unigram_free(u);
}

static void check_bad(const char *json, const char *want, int line) {
    cf_unigram *t = cf_unigram_from_json(json, strlen(json), "my/ug.json");
    if (t) test_fail(__FILE__, line, "malformed file loaded (want an error containing '%s')", want);
    else if (!strstr(cf_error_message(), "my/ug.json") || !strstr(cf_error_message(), want))
        test_fail(__FILE__, line, "error '%s' lacks the file or '%s'", cf_error_message(), want);
    cf_unigram_free(t);
}

static char *with_pieces(const char *pieces) {
    cf_unigram *t = cf_unigram_from_pieces(0, NULL, NULL, NULL);
    char *json = cf_unigram_to_json(t);
    cf_unigram_free(t);
    char *vs = strstr(json, "  \"vocab_size\": 260,\n");
    if (vs) memmove(vs, vs + 21, strlen(vs + 21) + 1);
    char *end = strrchr(json, ']');
    char *out = malloc(strlen(json) + strlen(pieces) + 1);
    size_t k = (size_t)(end - json);
    while (k > 0 && (json[k - 1] == '\n' || json[k - 1] == ' ')) k--;
    memcpy(out, json, k);
    strcpy(out + k, pieces);
    strcat(out, "\n  ]\n}\n");
    free(json);
    return out;
}

TEST(unigram_load_rejects_bad_entries) {
    char *j = with_pieces(",\n    [\"\xe2\x96\x81" "cat\", -1.5],\n    [\"s\", -2.25]");
    cf_unigram *t = cf_unigram_from_json(j, strlen(j), "my/ug.json");
    CHECK_MSG(t && cf_unigram_vocab_size(t) == 262, "%s", cf_error_message());
    float s;
    if (t) {
        cf_unigram_token(t, 261, NULL, &s);
        CHECK(s == -2.25f && cf_unigram_fallback_score(t) == -12.25);
    }
    cf_unigram_free(t);
    free(j);
    const struct {
        const char *pieces, *want;
    } cases[] = {
        {",\n    [\"cat\", -1],\n    [\"cat\", -2]", "vocab entry 261: the same piece as entry 260"},
        {",\n    [\"\", -1]", "vocab entry 260 is an empty piece"},
        {",\n    [\"a\", 1e999]", "vocab entry 260: score"},
        {",\n    [\"a\", 1e300]", "not a finite float"},
        {",\n    [\"a\"]", "vocab entry 260 is not a pair [piece, score]"},
        {",\n    \"a\"", "vocab entry 260 is not a pair [piece, score]"},
        {",\n    [-1, \"a\"]", "vocab entry 260 is not a pair"},
        {",\n    [\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", -1]", "longer than 64 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        j = with_pieces(cases[i].pieces);
        check_bad(j, cases[i].want, __LINE__);
        free(j);
    }
}
