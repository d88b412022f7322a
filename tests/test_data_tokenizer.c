/* tests/test_data_tokenizer.c - byte-level BPE: pre-tokenisation, golden merges worked out by hand,
 * agreement with a naive trainer, hostile round trips, and the JSON file. */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "data/tokenizer.h"
#include "tests/test.h"
#include "tests/testlib.h"

#define B(c) (CF_BPE_BYTE_BASE + (unsigned char)(c)) /* id of a single byte */

static cf_bpe *train_lines(const char *const *lines, int n, int vocab, int64_t min_count) {
    cf_bpe_trainer *tr = cf_bpe_trainer_new();
    for (int i = 0; i < n; i++) cf_bpe_trainer_add(tr, lines[i], strlen(lines[i]));
    return cf_bpe_trainer_finish_ex(tr, vocab, min_count);
}

static bool ids_equal(const cf_ids *a, const int32_t *b, int64_t n) {
    return a->n == n && memcmp(a->data, b, (size_t)n * sizeof *b) == 0;
}

/* decode(encode(s)) == s, byte for byte; also checks that the decoded length is exact. */
static bool round_trips(cf_bpe *t, const char *s, size_t n) {
    cf_ids ids = {0};
    cf_bpe_encode(t, s, n, &ids);
    char *out = malloc(n + 1);
    size_t m = cf_bpe_decode(t, ids.data, ids.n, out, n + 1);
    bool ok = m == n && memcmp(out, s, n) == 0;
    for (int64_t i = 0; i < ids.n; i++) ok &= ids.data[i] >= CF_BPE_N_SPECIAL && ids.data[i] < cf_bpe_vocab_size(t);
    free(out);
    cf_ids_free(&ids);
    return ok;
}

TEST(bpe_pretokenizer_words) {
    /* (text, expected word lengths) */
    const char *s = "a cat, sat  down\t\tok 42x";
    /* "a" " cat" "," " sat" " " " down" "\t\t" "ok" " 42" "x" */
    size_t want[] = {1, 4, 1, 4, 1, 5, 2, 2, 3, 1};
    size_t pos = 0, k = 0, n = strlen(s);
    while (pos < n && k < 10) {
        size_t w = cf_bpe_word_len(s + pos, n - pos);
        CHECK_MSG(w == want[k], "word %zu at %zu: length %zu, want %zu", k, pos, w, want[k]);
        pos += w, k++;
    }
    CHECK(pos == n && k == 10);
    /* Non-ASCII letters stay in the word, typographic quotes do not, invalid bytes are letters. */
    const char *u = "\xe2\x80\x9eM\xc3\xbcller\xe2\x80\x9c";     /* „Müller“ */
    CHECK(cf_bpe_word_len(u, strlen(u)) == 3);                  /* „ */
    CHECK(cf_bpe_word_len(u + 3, strlen(u) - 3) == 7);          /* Müller */
    CHECK(cf_bpe_word_len("\xff\xfe" "ab", 4) == 4);
    CHECK(cf_bpe_word_len(" ", 1) == 1);
    /* Long runs are cut into bounded pieces. */
    char longw[300];
    memset(longw, 'z', sizeof longw);
    size_t w = cf_bpe_word_len(longw, sizeof longw);
    CHECK(w > 0 && w <= 64);
}

/* Corpus "ab ab abc" + "ab c": words ab x2, " ab", " abc", " c". Pair counts (a,b)=4, (' ',a)=2,
 * (b,c)=1, (' ',c)=1. Merge 0 = (a,b) -> 260 "ab"; then (' ',260)=2 -> 261 " ab"; then, with
 * min_count 1, the tie (' ',c)=1 vs (261,c)=1 goes to the smaller left id: 262 " c"; last
 * (261,c) -> 263 " abc". */
TEST(bpe_golden_merges_by_hand) {
    const char *lines[] = {"ab ab abc", "ab c"};
    cf_bpe *t = train_lines(lines, 2, 300, 1);
    CHECK(t != NULL);
    if (!t) return;
    int32_t want[4][2] = {{B('a'), B('b')}, {B(' '), 260}, {B(' '), B('c')}, {261, B('c')}};
    CHECK(cf_bpe_n_merges(t) == 4 && cf_bpe_vocab_size(t) == 264);
    for (int i = 0; i < 4 && i < cf_bpe_n_merges(t); i++) {
        int32_t l, r;
        cf_bpe_merge(t, i, &l, &r);
        CHECK_MSG(l == want[i][0] && r == want[i][1], "merge %d = (%d, %d), want (%d, %d)", i, l, r, want[i][0],
                  want[i][1]);
    }
    size_t n;
    const char *tok = cf_bpe_token(t, 263, &n);
    CHECK(n == 4 && memcmp(tok, " abc", 4) == 0);
    /* "abc ab c": "abc" -> ab c (no merge joins 260 and c), " ab" -> 261, " c" -> 262. */
    cf_ids ids = {0};
    cf_bpe_encode(t, "abc ab c", 8, &ids);
    CHECK(ids_equal(&ids, (int32_t[]){260, B('c'), 261, 262}, 4));
    cf_ids_free(&ids);
    cf_bpe_free(t);
    /* With the default min_count 2 only the first two merges are learnt. */
    t = train_lines(lines, 2, 300, 0);
    CHECK(cf_bpe_n_merges(t) == 2);
    cf_bpe_free(t);
    /* vocab_size caps the merges. */
    t = train_lines(lines, 2, 261, 1);
    CHECK(cf_bpe_n_merges(t) == 1);
    cf_bpe_free(t);
}

/* Overlapping pairs merge left to right: "aaaa aaaa" gives (a,a)=6 -> 260, then (260,260)=2 -> 261;
 * "aaaaa" then encodes as [261, a] and "aaa" as [260, a]. */
TEST(bpe_golden_overlapping_pairs) {
    const char *lines[] = {"aaaa aaaa"};
    cf_bpe *t = train_lines(lines, 1, 300, 0);
    CHECK(cf_bpe_n_merges(t) == 2);
    int32_t l, r;
    cf_bpe_merge(t, 0, &l, &r);
    CHECK(l == B('a') && r == B('a'));
    cf_bpe_merge(t, 1, &l, &r);
    CHECK(l == 260 && r == 260);
    cf_ids ids = {0};
    cf_bpe_encode(t, "aaaaa", 5, &ids);
    CHECK(ids_equal(&ids, (int32_t[]){261, B('a')}, 2));
    ids.n = 0;
    cf_bpe_encode(t, "aaa aaaa", 8, &ids);
    CHECK(ids_equal(&ids, (int32_t[]){260, B('a'), B(' '), 261}, 4));
    cf_ids_free(&ids);
    cf_bpe_free(t);
}

/* A naive trainer (recount every pair after every merge) must learn the same merges as the
 * incremental one, and encoding a training word must give the trainer's final segmentation. */
typedef struct naive_word {
    int32_t sym[64];
    int n;
    int count;
} naive_word;

TEST(bpe_incremental_matches_naive) {
    /* Text from a tiny random language so that many pairs tie and many overlap. */
    cf_rng rng = cf_rng_init(7, CF_RNG_STREAM_TEST);
    const char *syll[] = {"ka", "ki", "a", "aa", "ta", "n", "kan", "e", "te"};
    char text[4096];
    size_t len = 0;
    for (int w = 0; w < 300; w++) {
        if (w) text[len++] = ' ';
        int ns = 1 + (int)cf_rng_below(&rng, 4);
        for (int s = 0; s < ns; s++) {
            const char *p = syll[cf_rng_below(&rng, 9)];
            memcpy(text + len, p, strlen(p));
            len += strlen(p);
        }
    }
    cf_bpe_trainer *tr = cf_bpe_trainer_new();
    cf_bpe_trainer_add(tr, text, len);
    cf_bpe *t = cf_bpe_trainer_finish_ex(tr, 400, 1);
    /* naive */
    naive_word *words = calloc(400, sizeof *words);
    int nw = 0;
    for (size_t pos = 0; pos < len;) {
        size_t n = cf_bpe_word_len(text + pos, len - pos);
        int k = 0;
        for (; k < nw; k++) {
            bool same = words[k].n == (int)n;
            for (size_t i = 0; same && i < n; i++) same = words[k].sym[i] == B(text[pos + i]);
            if (same) break;
        }
        if (k == nw) {
            words[nw].n = (int)n;
            for (size_t i = 0; i < n; i++) words[nw].sym[i] = B(text[pos + i]);
            nw++;
        }
        words[k].count++;
        pos += n;
    }
    int merges = 0;
    bool agree = true;
    int64_t *counts = malloc(400 * 400 * sizeof *counts);
    for (; merges < 400 - CF_BPE_N_BASE; merges++) {
        int32_t v = CF_BPE_N_BASE + merges;
        for (int32_t i = 0; i < v * v; i++) counts[i] = 0;
        for (int k = 0; k < nw; k++)
            for (int i = 0; i + 1 < words[k].n; i++) counts[words[k].sym[i] * v + words[k].sym[i + 1]] += words[k].count;
        int64_t best = 0;
        int32_t ba = 0, bb = 0;
        for (int32_t i = 0; i < v * v; i++) /* row-major: ties keep the smaller (a, b) */
            if (counts[i] > best) best = counts[i], ba = i / v, bb = i % v;
        if (best < 1) break;
        if (merges >= cf_bpe_n_merges(t)) {
            agree = false;
            break;
        }
        int32_t l, r;
        cf_bpe_merge(t, merges, &l, &r);
        if (l != ba || r != bb) {
            CHECK_MSG(false, "merge %d: incremental (%d, %d), naive (%d, %d) count %lld", merges, l, r, ba, bb,
                      (long long)best);
            agree = false;
            break;
        }
        for (int k = 0; k < nw; k++) {
            int o = 0;
            for (int i = 0; i < words[k].n; i++) {
                if (i + 1 < words[k].n && words[k].sym[i] == ba && words[k].sym[i + 1] == bb)
                    words[k].sym[o++] = CF_BPE_N_BASE + merges, i++;
                else words[k].sym[o++] = words[k].sym[i];
            }
            words[k].n = o;
        }
    }
    CHECK(agree && merges == cf_bpe_n_merges(t));
    CHECK(merges > 20);
    /* every distinct word encodes to the naive trainer's final symbols */
    cf_ids ids = {0};
    for (int k = 0; k < nw && agree; k++) {
        char w[64];
        int n = 0;
        /* the word's bytes, rebuilt from its symbols */
        for (int i = 0; i < words[k].n; i++) {
            size_t tl;
            const char *tb = cf_bpe_token(t, words[k].sym[i], &tl);
            memcpy(w + n, tb, tl);
            n += (int)tl;
        }
        ids.n = 0;
        cf_bpe_encode(t, w, (size_t)n, &ids);
        CHECK_MSG(ids_equal(&ids, words[k].sym, words[k].n), "word %d (%.*s) encodes differently", k, n, w);
    }
    cf_ids_free(&ids);
    free(counts);
    free(words);
    cf_bpe_free(t);
}

static const char *const sample_text[] = {
    "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.",
    "A man in an orange hat starring at something.",
    "Zwei junge Männer stehen draußen – „nahe“ vieler Büsche.",
    "東京は日本の首都です。 中文测试，标点！",
    "emoji 😀👍🏽 and flags 🇩🇪",
    "tabs\tand  double  spaces ",
};

TEST(bpe_round_trip_hostile_strings) {
    cf_bpe *t = train_lines(sample_text, 6, 400, 0);
    static char all_bytes[256];
    for (int i = 0; i < 256; i++) all_bytes[i] = (char)i;
    const char *cases[] = {
        "",
        "   leading and trailing   ",
        "\xed\xa0\x80 lone surrogate \xed\xbf\xbf",
        "\x80\x81\xfe\xff invalid \xc3 \xe2\x82 truncated \xf0\x9f\x98",
        "overlong \xc0\xaf \xe0\x80\xaf and \xf4\x90\x80\x80 too big",
        "😀👍🏽🇩🇪 emoji",
        "中文测试，标点！東京",
        "line\r\nwith CRLF\r\n",
        "\n\n\nempty lines\n\n",
        "tabs\t\t\tand\vvertical\fform",
        "nul \0 inside",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strncmp(cases[i], "nul", 3) == 0 ? 13 : strlen(cases[i]);
        CHECK_MSG(round_trips(t, cases[i], n), "case %zu does not round-trip", i);
    }
    CHECK(round_trips(t, all_bytes, 256));
    for (int i = 0; i < 6; i++) CHECK(round_trips(t, sample_text[i], strlen(sample_text[i])));
    /* 100k-byte lines: one unbroken word, and random bytes */
    size_t big = 100000;
    char *s = malloc(big);
    for (size_t i = 0; i < big; i++) s[i] = "Donaudampfschiff"[i % 16];
    CHECK(round_trips(t, s, big));
    cf_rng rng = cf_rng_init(3, CF_RNG_STREAM_TEST);
    for (size_t i = 0; i < big; i++) s[i] = (char)cf_rng_u32(&rng);
    CHECK(round_trips(t, s, big));
    /* many random short byte strings (the cache must not confuse them) */
    for (int rep = 0; rep < 2000; rep++) {
        size_t n = cf_rng_below(&rng, 12);
        for (size_t i = 0; i < n; i++) s[i] = " ab\xc3\xa4\n\r\t\x80."[cf_rng_below(&rng, 10)];
        if (!round_trips(t, s, n)) {
            CHECK_MSG(false, "random string %d does not round-trip", rep);
            break;
        }
    }
    free(s);
    cf_bpe_free(t);
}

TEST(bpe_decode_skips_specials_and_rejects_bad_ids) {
    const char *lines[] = {"ab ab"};
    cf_bpe *t = train_lines(lines, 1, 300, 0);
    char out[16];
    int32_t ids[] = {CF_BOS_ID, B('h'), B('i'), CF_EOS_ID, CF_PAD_ID};
    CHECK(cf_bpe_decode(t, ids, 5, out, sizeof out) == 2);
    CHECK_STR(out, "hi");
    /* snprintf-like truncation */
    CHECK(cf_bpe_decode(t, ids, 5, out, 2) == 2 && out[0] == 'h' && out[1] == '\0');
    int32_t bad[] = {B('x'), 99999};
    CHECK(cf_bpe_decode(t, bad, 2, out, sizeof out) == (size_t)-1);
    CHECK(strstr(cf_error_message(), "99999") != NULL);
    cf_bpe_free(t);
}

TEST(bpe_save_load_round_trip) {
    cf_bpe *t = train_lines(sample_text, 6, 420, 0);
    const char *dir = test_tmpdir("bpe");
    char path[512];
    snprintf(path, sizeof path, "%s/tok.json", dir);
    CHECK(cf_bpe_save(t, path) == 0);
    cf_bpe *u = cf_bpe_load(path);
    CHECK_MSG(u != NULL, "load: %s", cf_error_message());
    if (!u) return;
    CHECK(cf_bpe_vocab_size(u) == cf_bpe_vocab_size(t) && cf_bpe_n_merges(u) == cf_bpe_n_merges(t));
    for (int i = 0; i < cf_bpe_n_merges(t); i++) {
        int32_t a, b, c, d;
        cf_bpe_merge(t, i, &a, &b);
        cf_bpe_merge(u, i, &c, &d);
        CHECK(a == c && b == d);
    }
    cf_ids x = {0}, y = {0};
    for (int i = 0; i < 6; i++) {
        cf_bpe_encode(t, sample_text[i], strlen(sample_text[i]), &x);
        cf_bpe_encode(u, sample_text[i], strlen(sample_text[i]), &y);
    }
    CHECK(x.n == y.n && memcmp(x.data, y.data, (size_t)x.n * 4) == 0);
    size_t bytes = 0;
    for (int i = 0; i < 6; i++) bytes += strlen(sample_text[i]);
    CHECK_MSG(4 * (size_t)x.n < 3 * bytes, "%lld ids for %zu bytes", (long long)x.n, bytes); /* merges are in use */
    char *j1 = cf_bpe_to_json(t), *j2 = cf_bpe_to_json(u);
    CHECK_STR(j1, j2); /* saving again gives the same file */
    CHECK(strstr(j1, "\"\\u2581") == NULL && strstr(j1, "\"\xe2\x96\x81") != NULL); /* marker written as UTF-8 */
    free(j1);
    free(j2);
    cf_ids_free(&x);
    cf_ids_free(&y);
    cf_bpe_free(t);
    cf_bpe_free(u);
}

/* Load a modified copy of a valid file; the error must name the file and contain `want`. */
static void check_malformed(const char *json, const char *from, const char *to, const char *want, int line) {
    char *bad = malloc(strlen(json) + strlen(to) + 1);
    const char *at = from ? strstr(json, from) : NULL;
    if (from && !at) {
        test_fail(__FILE__, line, "pattern %s not in the file", from);
        free(bad);
        return;
    }
    if (from) {
        size_t k = (size_t)(at - json);
        memcpy(bad, json, k);
        strcpy(bad + k, to);
        strcat(bad, at + strlen(from));
    } else {
        strcpy(bad, to);
    }
    cf_bpe *t = cf_bpe_from_json(bad, strlen(bad), "my/tok.json");
    if (t) test_fail(__FILE__, line, "malformed file loaded (want error containing '%s')", want);
    else if (!strstr(cf_error_message(), "my/tok.json") || !strstr(cf_error_message(), want))
        test_fail(__FILE__, line, "error '%s' lacks the file or '%s'", cf_error_message(), want);
    cf_bpe_free(t);
    free(bad);
}

TEST(bpe_load_malformed_files) {
    const char *lines[] = {"ab ab abc", "ab c"};
    cf_bpe *t = train_lines(lines, 2, 300, 1);
    char *json = cf_bpe_to_json(t);
    cf_bpe *ok = cf_bpe_from_json(json, strlen(json), "my/tok.json");
    CHECK(ok != NULL);
    cf_bpe_free(ok);
    /* truncated: cut the text in half */
    char *half = strdup(json);
    half[strlen(half) / 2] = '\0';
    check_malformed(half, NULL, half, "ends early", __LINE__);
    free(half);
    check_malformed(json, "\"version\": 1", "\"version\": 2", "unsupported version 2", __LINE__);
    check_malformed(json, "\"cformer-bpe\"", "\"gpt2\"", "not a cformer tokenizer", __LINE__);
    check_malformed(json, "[261, 103]", "[261, 5000]", "unknown token 5000", __LINE__);
    check_malformed(json, "[261, 103]", "[263, 103]", "unknown token 263", __LINE__); /* itself: not earlier */
    check_malformed(json, "[261, 103]", "[261]", "merge 3 is not a pair", __LINE__);
    check_malformed(json, "\"\xe2\x96\x81" "abc\"", "\"\xe2\x96\x81" "abd\"", "vocab entry 263 does not spell", __LINE__);
    check_malformed(json, "\"<eos>\",", "\"<end>\",", "special token <eos>", __LINE__);
    check_malformed(json, ",\n    \"\xe2\x96\x81" "abc\"", "", "but there are 4 merges", __LINE__); /* count mismatch */
    check_malformed(json, NULL, "", "not valid JSON", __LINE__);
    CHECK(cf_bpe_load("/nonexistent/tok.json") == NULL && strstr(cf_error_message(), "/nonexistent/tok.json"));
    free(json);
    cf_bpe_free(t);
}
