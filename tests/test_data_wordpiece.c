/* tests/test_data_wordpiece.c - WordPiece: training worked out by hand (the likelihood score and
 * its ties), greedy longest match against a brute-force search, byte fallback, the count floor,
 * and the file's validation. */
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "data/wordpiece.h"
#include "tests/test.h"

#define B(c) (CF_TOK_BYTE_BASE + (unsigned char)(c))

static cf_wordpiece *train_lines(const char *const *lines, int n, int vocab, int64_t min_count) {
    cf_tok_trainer *tr = cf_tok_trainer_new();
    for (int i = 0; i < n; i++) cf_tok_trainer_add(tr, lines[i], strlen(lines[i]));
    return cf_wordpiece_train(tr, &(cf_wordpiece_opts){.vocab_size = vocab, .min_count = min_count});
}

static bool piece_is(const cf_wordpiece *t, int32_t id, const char *want) {
    bool cont = strncmp(want, "##", 2) == 0, c;
    size_t n;
    const char *s = cf_wordpiece_token(t, id, &n, &c);
    const char *w = cont ? want + 2 : want;
    return c == cont && n == strlen(w) && memcmp(s, w, n) == 0;
}

/* The course's corpus: hug x10, pug x5, pun x12, bun x4, hugs x5 (one word a line, no spaces).
 * Units and counts: ##u 36, ##g 20, p 17, ##n 16, h 15, ##s 5, b 4 (the alphabet, ids 260..266 in
 * this order). Score = count(ab) / (count(a) count(b)):
 *   1. (##g,##s) 5/(20*5) = 1/20 beats the 1/36 of every other pair       -> ##gs
 *   2. all six pairs score 1/36: the smallest (left, right) ids, (##u,##g) -> ##ug
 *   3. (##u,##gs), (##u,##n), (b,##u) all 1/21: (##u,##n)                  -> ##un
 *   4. (##u,##gs) 5/(5*5)                                                  -> ##ugs
 *   5. (h,##ugs) 5/(15*5)                                                  -> hugs
 *   6. (h,##ug) 10/(10*15)                                                 -> hug
 *   7. (b,##un) 4/(4*16)                                                   -> bun
 *   8. (p,##ug) 5/(17*5) ties (p,##un) 12/(17*12): smaller right id        -> pug
 *   9. (p,##un) 12/(12*12)                                                 -> pun  */
TEST(wordpiece_golden_training_by_hand) {
    const char *words[] = {"hug", "pug", "pun", "bun", "hugs"};
    const int times[] = {10, 5, 12, 4, 5};
    const char *lines[36];
    int n = 0;
    for (int w = 0; w < 5; w++)
        for (int k = 0; k < times[w]; k++) lines[n++] = words[w];
    cf_wordpiece *t = train_lines(lines, n, 1000, 1);
    const char *want[] = {"##u", "##g", "p", "##n", "h", "##s", "b", "##gs", "##ug", "##un", "##ugs",
                          "hugs", "hug", "bun", "pug", "pun"};
    CHECK(cf_wordpiece_vocab_size(t) == CF_TOK_N_BASE + 16);
    for (int i = 0; i < 16 && CF_TOK_N_BASE + i < cf_wordpiece_vocab_size(t); i++)
        CHECK_MSG(piece_is(t, CF_TOK_N_BASE + i, want[i]), "piece %d is not %s", CF_TOK_N_BASE + i, want[i]);
    /* Greedy longest match: "hugs" is one piece; "bugs" = b ##ugs; "mug": m is no piece (byte
     * fallback), then the continuation ##ug; "hun" = h ##un. */
    cf_ids ids = {0};
    cf_wordpiece_encode(t, "hugs", 4, &ids);
    CHECK(ids.n == 1 && ids.data[0] == CF_TOK_N_BASE + 11);
    ids.n = 0;
    cf_wordpiece_encode(t, "bugs", 4, &ids);
    CHECK(ids.n == 2 && ids.data[0] == CF_TOK_N_BASE + 6 && ids.data[1] == CF_TOK_N_BASE + 10);
    ids.n = 0;
    cf_wordpiece_encode(t, "mug", 3, &ids);
    CHECK(ids.n == 2 && ids.data[0] == B('m') && ids.data[1] == CF_TOK_N_BASE + 8);
    ids.n = 0;
    cf_wordpiece_encode(t, "hun", 3, &ids);
    CHECK(ids.n == 2 && ids.data[0] == CF_TOK_N_BASE + 4 && ids.data[1] == CF_TOK_N_BASE + 9);
    cf_ids_free(&ids);
    cf_wordpiece_free(t);
    /* The vocabulary size caps it: the alphabet and the first three merges. */
    t = train_lines(lines, n, CF_TOK_N_BASE + 10, 1);
    CHECK(cf_wordpiece_vocab_size(t) == CF_TOK_N_BASE + 10 && piece_is(t, CF_TOK_N_BASE + 9, "##un"));
    cf_wordpiece_free(t);
    /* Past the alphabet's size the most frequent units stay; the others fall back to bytes. */
    t = train_lines(lines, n, CF_TOK_N_BASE + 2, 1);
    CHECK(cf_wordpiece_vocab_size(t) == CF_TOK_N_BASE + 2 && piece_is(t, CF_TOK_N_BASE + 1, "##g"));
    cf_wordpiece_free(t);
}

/* The leading space is part of a word's first unit, so " cat" starts with the piece "▁c". */
TEST(wordpiece_space_belongs_to_the_first_unit) {
    const char *lines[] = {"a cat a cat a cat"};
    cf_wordpiece *t = train_lines(lines, 1, 300, 1);
    cf_ids ids = {0};
    cf_wordpiece_encode(t, " cat", 4, &ids);
    CHECK(ids.n == 1);
    bool cont;
    size_t n;
    const char *s = ids.n ? cf_wordpiece_token(t, ids.data[0], &n, &cont) : "";
    CHECK(ids.n == 1 && !cont && n == 4 && memcmp(s, " cat", 4) == 0);
    cf_ids_free(&ids);
    cf_wordpiece_free(t);
}

/* Reference: greedy longest match by linear search over the piece list. */
static int brute_greedy(const char *const *piece, const size_t *plen, const bool *pcont, int np, const char *w,
                        size_t n, int32_t *out) {
    int m = 0;
    for (size_t pos = 0; pos < n;) {
        int best = -1;
        for (size_t len = n - pos; len >= 1 && best < 0; len--)
            for (int i = 0; i < np && best < 0; i++)
                if (plen[i] == len && pcont[i] == (pos > 0) && memcmp(piece[i], w + pos, len) == 0) best = i;
        if (best >= 0) {
            out[m++] = CF_TOK_N_BASE + best;
            pos += plen[best];
        } else { /* one UTF-8 character (the test text is valid UTF-8) */
            unsigned char c = (unsigned char)w[pos];
            size_t u = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            for (size_t k = 0; k < u; k++) out[m++] = B(w[pos + k]);
            pos += u;
        }
    }
    return m;
}

TEST(wordpiece_greedy_matches_brute_force) {
    cf_rng rng = cf_rng_init(11, CF_RNG_STREAM_TEST);
    const char *alpha[] = {"a", "b", "c", "\xc3\xa4", " "}; /* ä */
    for (int rep = 0; rep < 20; rep++) {
        /* random distinct pieces of 1-4 characters (a space only first, as words have it) */
        enum { NP = 40 };
        char buf[NP][32];
        const char *piece[NP];
        size_t plen[NP];
        bool pcont[NP];
        int np = 0;
        for (int tries = 0; np < NP && tries < 1000; tries++) {
            size_t len = 0;
            int k = 1 + (int)cf_rng_below(&rng, 4);
            bool cont = cf_rng_below(&rng, 2);
            for (int j = 0; j < k; j++) {
                const char *a = alpha[cf_rng_below(&rng, (j == 0 && !cont) ? 5 : 4)];
                memcpy(buf[np] + len, a, strlen(a));
                len += strlen(a);
            }
            if (len == 1 && buf[np][0] == ' ') continue;
            bool dup = false;
            for (int i = 0; i < np; i++) dup |= plen[i] == len && pcont[i] == cont && memcmp(buf[i], buf[np], len) == 0;
            if (dup) continue;
            piece[np] = buf[np], plen[np] = len, pcont[np] = cont;
            np++;
        }
        cf_wordpiece *t = cf_wordpiece_from_pieces(np, piece, plen, pcont);
        CHECK_MSG(t != NULL, "from_pieces: %s", cf_error_message());
        if (!t) return;
        for (int s = 0; s < 200; s++) {
            char w[64];
            size_t n = 0;
            int k = 1 + (int)cf_rng_below(&rng, 8);
            if (cf_rng_below(&rng, 2)) w[n++] = ' ';
            for (int j = 0; j < k; j++) {
                const char *a = alpha[cf_rng_below(&rng, 4)];
                memcpy(w + n, a, strlen(a));
                n += strlen(a);
            }
            int32_t want[64];
            int m = brute_greedy(piece, plen, pcont, np, w, n, want);
            cf_ids ids = {0};
            cf_wordpiece_encode(t, w, n, &ids);
            bool same = ids.n == m && memcmp(ids.data, want, (size_t)m * sizeof *want) == 0;
            CHECK_MSG(same, "rep %d: \"%.*s\" encodes differently from the brute-force greedy match", rep, (int)n, w);
            cf_ids_free(&ids);
            if (!same) break;
        }
        cf_wordpiece_free(t);
    }
}

/* A start piece may not begin with "##" (the file could not tell it from a continuation), so
 * training never makes one out of "#" + "##"... words. */
TEST(wordpiece_no_start_piece_begins_with_hashes) {
    const char *lines[] = {"## ## ## ##a ##a ###", "## ## ##"};
    cf_wordpiece *t = train_lines(lines, 2, 400, 1);
    for (int32_t id = CF_TOK_N_BASE; id < cf_wordpiece_vocab_size(t); id++) {
        size_t n;
        bool cont;
        const char *s = cf_wordpiece_token(t, id, &n, &cont);
        CHECK_MSG(cont || n < 2 || memcmp(s, "##", 2) != 0, "start piece %d is \"%.*s\"", id, (int)n, s);
    }
    const char *bad[] = {"##x"};
    CHECK(cf_wordpiece_from_pieces(1, bad, (size_t[]){3}, (bool[]){false}) == NULL);
    CHECK(strstr(cf_error_message(), "may not begin with") != NULL);
    char *json = cf_wordpiece_to_json(t);
    cf_wordpiece *u = cf_wordpiece_from_json(json, strlen(json), "wp.json");
    CHECK_MSG(u != NULL, "%s", cf_error_message());
    if (u) {
        char *again = cf_wordpiece_to_json(u);
        CHECK_STR(again, json);
        free(again);
    }
    free(json);
    cf_wordpiece_free(u);
    cf_wordpiece_free(t);
}

/* Default floor: the highest pair count that still fills the vocabulary; a floor of 2 spends the
 * budget on rare words and needs more tokens for the same text. */
TEST(wordpiece_count_floor_fills_the_vocabulary) {
    cf_rng rng = cf_rng_init(5, CF_RNG_STREAM_TEST);
    const char *syll[] = {"ka", "ri", "to", "me", "su", "na", "lo", "pe", "zu", "qi", "xo", "vy"};
    char *text = malloc(1 << 16);
    size_t len = 0;
    for (int w = 0; w < 6000; w++) {
        /* Zipf-like: a few frequent words, a long tail */
        unsigned r = (unsigned)cf_rng_below(&rng, 1000);
        int ns = 1 + (int)(r % 4), base = (int)(r < 600 ? r % 6 : r % 12);
        if (w) text[len++] = ' ';
        for (int s = 0; s < ns; s++) {
            const char *p = syll[(base + s * (r % 7 + 1)) % 12];
            memcpy(text + len, p, 2), len += 2;
        }
    }
    cf_tok_trainer *tr = cf_tok_trainer_new();
    cf_tok_trainer_add(tr, text, len);
    cf_wordpiece *automatic = cf_wordpiece_train(tr, &(cf_wordpiece_opts){.vocab_size = 400});
    tr = cf_tok_trainer_new();
    cf_tok_trainer_add(tr, text, len);
    cf_wordpiece *floor2 = cf_wordpiece_train(tr, &(cf_wordpiece_opts){.vocab_size = 400, .min_count = 2});
    CHECK(cf_wordpiece_vocab_size(automatic) == 400 && cf_wordpiece_vocab_size(floor2) == 400);
    CHECK_MSG(cf_wordpiece_min_count(automatic) > 2, "floor %lld", (long long)cf_wordpiece_min_count(automatic));
    CHECK(cf_wordpiece_min_count(floor2) == 2);
    cf_ids a = {0}, b = {0};
    cf_wordpiece_encode(automatic, text, len, &a);
    cf_wordpiece_encode(floor2, text, len, &b);
    CHECK_MSG(a.n <= b.n, "automatic floor: %lld tokens, floor 2: %lld", (long long)a.n, (long long)b.n);
    cf_ids_free(&a);
    cf_ids_free(&b);
    cf_wordpiece_free(automatic);
    cf_wordpiece_free(floor2);
    free(text);
}

static void check_bad(const char *json, const char *want, int line) {
    cf_wordpiece *t = cf_wordpiece_from_json(json, strlen(json), "my/wp.json");
    if (t) test_fail(__FILE__, line, "malformed file loaded (want an error containing '%s')", want);
    else if (!strstr(cf_error_message(), "my/wp.json") || !strstr(cf_error_message(), want))
        test_fail(__FILE__, line, "error '%s' lacks the file or '%s'", cf_error_message(), want);
    cf_wordpiece_free(t);
}

/* The file with its learned entries replaced by `pieces` (a JSON fragment, starting with ","). */
static char *with_pieces(const char *pieces) {
    cf_wordpiece *t = cf_wordpiece_from_pieces(0, NULL, NULL, NULL);
    char *json = cf_wordpiece_to_json(t);
    cf_wordpiece_free(t);
    char *vs = strstr(json, "  \"vocab_size\": 260,\n"); /* optional; it would not match */
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

TEST(wordpiece_load_rejects_bad_entries) {
    char *j = with_pieces(",\n    \"\xe2\x96\x81" "cat\",\n    \"##s\"");
    cf_wordpiece *t = cf_wordpiece_from_json(j, strlen(j), "my/wp.json");
    CHECK_MSG(t && cf_wordpiece_vocab_size(t) == 262, "%s", cf_error_message());
    bool cont;
    size_t n;
    if (t) CHECK(memcmp(cf_wordpiece_token(t, 261, &n, &cont), "s", 1) == 0 && cont && n == 1);
    cf_wordpiece_free(t);
    free(j);
    const struct {
        const char *pieces, *want;
    } cases[] = {
        {",\n    \"cat\",\n    \"cat\"", "vocab entry 261: the same piece as entry 260"},
        {",\n    \"##\"", "vocab entry 260 is an empty piece"},
        {",\n    \"\"", "vocab entry 260 is an empty piece"},
        {",\n    \"a\xc3\xa9\"", "vocab entry 260 uses U+00E9"},
        {",\n    17", "vocab entry 260 is not a string"},
        {",\n    \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "longer than 64 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        j = with_pieces(cases[i].pieces);
        check_bad(j, cases[i].want, __LINE__);
        free(j);
    }
    j = with_pieces("");
    char *p = strstr(j, "\"##\"");
    CHECK(p != NULL);
    if (p) {
        p[1] = '@';
        check_bad(j, "\"continuing_subword_prefix\" must be", __LINE__);
    }
    free(j);
}
