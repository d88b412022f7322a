/* tests/test_data_tok_kinds.c - every tokenizer kind through cf_tokenizer: the lecture's examples,
 * hostile round trips, determinism, dispatch by "format", and loaders fed crafted, truncated and
 * garbled files (bounded sizes, errors naming the file, never a crash). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/rng.h"
#include "data/tokenizer.h"
#include "data/unigram.h"
#include "data/wordpiece.h"
#include "tests/test.h"
#include "tests/testlib.h"

#define B(c) (CF_TOK_BYTE_BASE + (unsigned char)(c))

static cf_tokenizer *train_kind(cf_tok_kind kind, const char *const *lines, int n, int vocab) {
    cf_tok_trainer *tr = cf_tok_trainer_new();
    for (int i = 0; i < n; i++) cf_tok_trainer_add(tr, lines[i], strlen(lines[i]));
    return cf_tok_trainer_finish(tr, kind, vocab);
}

static bool round_trips(cf_tokenizer *t, const char *s, size_t n) {
    cf_ids ids = {0};
    cf_tokenizer_encode(t, s, n, &ids);
    char *out = malloc(n + 1);
    size_t m = cf_tokenizer_decode(t, ids.data, ids.n, out, n + 1);
    bool ok = m == n && memcmp(out, s, n) == 0;
    for (int64_t i = 0; i < ids.n; i++) ok &= ids.data[i] >= CF_TOK_N_SPECIAL && ids.data[i] < cf_tokenizer_vocab_size(t);
    free(out);
    cf_ids_free(&ids);
    return ok;
}

static const char *const corpus[] = {
    "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.",
    "A man in an orange hat starring at something.",
    "Zwei junge Männer stehen draußen – „nahe“ vieler Büsche.",
    "東京は日本の首都です。 中文测试，标点！你好",
    "emoji 😀👍🏽 and flags 🇩🇪 Hello",
    "tabs\tand  double  spaces ",
    "a man a man a dog a dog the man the dog",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
};
enum { N_CORPUS = sizeof corpus / sizeof corpus[0] };

/* ---- the lecture's examples ---- */

/* The BPE walk-through: aaabdaaabac -> ZabdZabac (aa = Z) -> ZYdZYac (ab = Y) -> XdXac (ZY = X).
 * Our trainer gets the same merges: aa occurs 4 times; then Za and ab tie at 2 and the tie goes
 * to the smaller ids ((a, b) = (101, 102) < (Z, a) = (260, 101)); then ZY twice; every other pair
 * occurs once, below the default floor of 2. */
TEST(tok_lecture_bpe_walkthrough) {
    const char *text = "aaabdaaabac";
    const char *want[] = {"aaabdaaabac", "ZabdZabac", "ZYdZYac", "XdXac", "XdXac"};
    const int vocab[] = {260, 261, 262, 263, 300};
    for (int k = 0; k < 5; k++) {
        cf_tokenizer *t = train_kind(CF_TOK_BPE, &text, 1, vocab[k]);
        cf_ids ids = {0};
        cf_tokenizer_encode(t, text, strlen(text), &ids);
        char s[32];
        int n = 0;
        for (int64_t i = 0; i < ids.n && n < 31; i++)
            s[n++] = ids.data[i] >= CF_TOK_N_BASE ? "ZYX"[ids.data[i] - CF_TOK_N_BASE] : (char)(ids.data[i] - CF_TOK_BYTE_BASE);
        s[n] = 0;
        CHECK_MSG(strcmp(s, want[k]) == 0, "vocab %d: %s, want %s", vocab[k], s, want[k]);
        CHECK(round_trips(t, text, strlen(text)));
        cf_ids_free(&ids);
        cf_tokenizer_free(t);
    }
}

/* UTF-8: 你好 is E4 BD A0 E5 A5 BD, Hello 48 65 6C 6C 6F, 😀 F0 9F 98 80. Without learned tokens
 * every kind encodes them as exactly these bytes; with some, they still decode to them. */
TEST(tok_lecture_utf8_bytes) {
    const struct {
        const char *text;
        unsigned char bytes[8];
        int n;
    } cases[] = {
        {"你好", {0xE4, 0xBD, 0xA0, 0xE5, 0xA5, 0xBD}, 6},
        {"Hello", {0x48, 0x65, 0x6C, 0x6C, 0x6F}, 5},
        {"😀", {0xF0, 0x9F, 0x98, 0x80}, 4},
    };
    for (int k = 0; k < CF_TOK_N_KINDS; k++) {
        cf_tokenizer *bytes_only = train_kind((cf_tok_kind)k, corpus, N_CORPUS, CF_TOK_N_BASE);
        cf_tokenizer *trained = train_kind((cf_tok_kind)k, corpus, N_CORPUS, 400);
        for (int c = 0; c < 3; c++) {
            CHECK(strlen(cases[c].text) == (size_t)cases[c].n && memcmp(cases[c].text, cases[c].bytes, 4) == 0);
            cf_ids ids = {0};
            cf_tokenizer_encode(bytes_only, cases[c].text, strlen(cases[c].text), &ids);
            bool same = ids.n == cases[c].n;
            for (int i = 0; same && i < cases[c].n; i++) same = ids.data[i] == B(cases[c].bytes[i]);
            CHECK_MSG(same, "%s: %s is not its UTF-8 bytes", cf_tok_kind_name((cf_tok_kind)k), cases[c].text);
            ids.n = 0;
            cf_tokenizer_encode(trained, cases[c].text, strlen(cases[c].text), &ids);
            char out[16];
            size_t n = cf_tokenizer_decode(trained, ids.data, ids.n, out, sizeof out);
            CHECK(n == (size_t)cases[c].n && memcmp(out, cases[c].bytes, n) == 0);
            cf_ids_free(&ids);
        }
        cf_tokenizer_free(bytes_only);
        cf_tokenizer_free(trained);
    }
}

/* ---- every kind: lossless, deterministic, dispatched by format ---- */

TEST(tok_round_trip_hostile_text_every_kind) {
    static char all_bytes[256];
    for (int i = 0; i < 256; i++) all_bytes[i] = (char)i;
    const char *cases[] = {
        "", " ", "   leading and trailing   ", "\xed\xa0\x80 lone surrogate \xed\xbf\xbf",
        "\x80\x81\xfe\xff invalid \xc3 \xe2\x82 truncated \xf0\x9f\x98",
        "overlong \xc0\xaf \xe0\x80\xaf and \xf4\x90\x80\x80 too big", "😀👍🏽🇩🇪 emoji", "中文测试，标点！東京 mixed Ελληνικά русский",
        "line\r\nwith CRLF\r\n", "\n\n\nempty lines\n\n", "tabs\t\t\tand\vvertical\fform", "## ### #a a## ##",
    };
    size_t big = 100000;
    char *s = malloc(big);
    for (int k = 0; k < CF_TOK_N_KINDS; k++) {
        const char *name = cf_tok_kind_name((cf_tok_kind)k);
        cf_tokenizer *t = train_kind((cf_tok_kind)k, corpus, N_CORPUS, 420);
        CHECK_MSG(cf_tokenizer_vocab_size(t) > 300, "%s: only %d tokens", name, cf_tokenizer_vocab_size(t));
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            CHECK_MSG(round_trips(t, cases[i], strlen(cases[i])), "%s: case %zu does not round-trip", name, i);
        CHECK_MSG(round_trips(t, "nul \0 inside \0", 14), "%s: NUL bytes", name);
        CHECK(round_trips(t, all_bytes, 256));
        for (int i = 0; i < N_CORPUS; i++) CHECK(round_trips(t, corpus[i], strlen(corpus[i])));
        memset(s, 'a', big); /* a long run of one character */
        CHECK_MSG(round_trips(t, s, big), "%s: 100k 'a'", name);
        for (size_t i = 0; i < big; i++) s[i] = "Donaudampfschiff"[i % 16];
        CHECK(round_trips(t, s, big));
        cf_rng rng = cf_rng_init(3, CF_RNG_STREAM_TEST);
        for (size_t i = 0; i < big; i++) s[i] = (char)cf_rng_u32(&rng);
        CHECK_MSG(round_trips(t, s, big), "%s: random bytes", name);
        for (int rep = 0; rep < 2000; rep++) { /* the word cache must not confuse them */
            size_t n = cf_rng_below(&rng, 12);
            for (size_t i = 0; i < n; i++) s[i] = " ab\xc3\xa4\n\r\t\x80.#"[cf_rng_below(&rng, 11)];
            if (!round_trips(t, s, n)) {
                CHECK_MSG(false, "%s: random string %d does not round-trip", name, rep);
                break;
            }
        }
        cf_tokenizer_free(t);
    }
    free(s);
}

TEST(tok_same_corpus_same_file_every_kind) {
    const char *dir = test_tmpdir("tok_kinds");
    for (int k = 0; k < CF_TOK_N_KINDS; k++) {
        cf_tokenizer *a = train_kind((cf_tok_kind)k, corpus, N_CORPUS, 400);
        cf_tokenizer *b = train_kind((cf_tok_kind)k, corpus, N_CORPUS, 400);
        char *ja = cf_tokenizer_to_json(a), *jb = cf_tokenizer_to_json(b);
        CHECK_MSG(strcmp(ja, jb) == 0, "%s: two trainings on one corpus differ", cf_tok_kind_name((cf_tok_kind)k));
        char path[512];
        snprintf(path, sizeof path, "%s/%s.json", dir, cf_tok_kind_name((cf_tok_kind)k));
        CHECK(cf_tokenizer_save(a, path) == 0);
        cf_tokenizer *c = cf_tokenizer_load(path);
        CHECK_MSG(c != NULL, "load: %s", cf_error_message());
        if (c) {
            CHECK(cf_tokenizer_kind(c) == (cf_tok_kind)k && cf_tokenizer_vocab_size(c) == cf_tokenizer_vocab_size(a));
            char *jc = cf_tokenizer_to_json(c);
            CHECK_STR(jc, ja); /* saving what was loaded gives the same bytes */
            free(jc);
            cf_ids x = {0}, y = {0};
            for (int i = 0; i < N_CORPUS; i++) {
                cf_tokenizer_encode(a, corpus[i], strlen(corpus[i]), &x);
                cf_tokenizer_encode(c, corpus[i], strlen(corpus[i]), &y);
            }
            CHECK(x.n == y.n && memcmp(x.data, y.data, (size_t)x.n * 4) == 0);
            cf_ids_free(&x);
            cf_ids_free(&y);
        }
        free(ja);
        free(jb);
        cf_tokenizer_free(a);
        cf_tokenizer_free(b);
        cf_tokenizer_free(c);
    }
}

TEST(tok_token_text_for_people) {
    cf_wordpiece *w = cf_wordpiece_from_pieces(2, (const char *[]){" cat", "s"}, (size_t[]){4, 1}, (bool[]){false, true});
    cf_tokenizer *t = cf_tokenizer_from_wordpiece(w);
    char buf[64];
    cf_tokenizer_token_text(t, 260, buf, sizeof buf);
    CHECK_STR(buf, "\xe2\x96\x81" "cat");
    cf_tokenizer_token_text(t, 261, buf, sizeof buf);
    CHECK_STR(buf, "##s");
    cf_tokenizer_token_text(t, B(0xE4), buf, sizeof buf);
    CHECK_STR(buf, "<0xE4>");
    cf_tokenizer_token_text(t, B('a'), buf, sizeof buf);
    CHECK_STR(buf, "a");
    cf_tokenizer_token_text(t, CF_EOS_ID, buf, sizeof buf);
    CHECK_STR(buf, "<eos>");
    CHECK(cf_tokenizer_token_text(t, 260, buf, 3) == 6 && strlen(buf) == 2); /* snprintf-like */
    cf_tokenizer_free(t);
}

/* ---- untrusted files ---- */

static void check_error(cf_tokenizer *t, const char *path, const char *want, int line) {
    if (t) test_fail(__FILE__, line, "loaded (want an error containing '%s')", want);
    else if (!strstr(cf_error_message(), path) || !strstr(cf_error_message(), want))
        test_fail(__FILE__, line, "error '%s' lacks '%s' or '%s'", cf_error_message(), path, want);
    cf_tokenizer_free(t);
}

/* Issue 10: merges that each join the previous merge with itself double a token's length (~40
 * exhaust memory, ~63 wrap the size and overrun a small buffer). Refused at the first token
 * longer than any word, before anything is allocated from the lengths. */
TEST(tok_bpe_crafted_doubling_merges_refused) {
    enum { N = 63 };
    char *json = malloc(64 * 1024);
    size_t n = (size_t)sprintf(json, "{\"format\": \"cformer-bpe\", \"version\": 1, \"vocab\": [\"<pad>\", \"<unk>\", "
                                     "\"<bos>\", \"<eos>\"");
    for (int b = 0; b < 256; b++) {
        if (b > 0x20 && b < 0x7f && b != '"' && b != '\\') n += (size_t)sprintf(json + n, ", \"%c\"", b);
        else if (b == '"' || b == '\\') n += (size_t)sprintf(json + n, ", \"\\%c\"", b);
        else if (b == ' ') n += (size_t)sprintf(json + n, ", \"\xe2\x96\x81\"");
        else n += (size_t)sprintf(json + n, ", \"%c%c\"", 0xC0 | (0x100 + b) >> 6, 0x80 | ((0x100 + b) & 0x3F));
    }
    for (int i = 0; i < N; i++) n += (size_t)sprintf(json + n, ", \"x\"");
    n += (size_t)sprintf(json + n, "], \"merges\": [[4, 4]");
    for (int i = 1; i < N; i++) n += (size_t)sprintf(json + n, ", [%d, %d]", 259 + i, 259 + i);
    n += (size_t)sprintf(json + n, "]}");
    /* merge 5 is 64 bytes (allowed), merge 6 would be 128 */
    check_error(cf_tokenizer_from_json(json, n, "crafted/tok.json"), "crafted/tok.json",
                "merge 6 [265, 265] makes a token of 128 bytes (at most 64", __LINE__);
    CHECK(cf_bpe_from_json(json, n, "crafted/tok.json") == NULL && strstr(cf_error_message(), "merge 6"));
    free(json);
    const char *dir = test_tmpdir("crafted");
    char path[512];
    snprintf(path, sizeof path, "%s/huge.json", dir);
    /* a file past the size bound is refused before it is read (sparse: no disk is used) */
    FILE *f = fopen(path, "wb");
    CHECK(f && ftruncate(fileno(f), (off_t)CF_TOK_MAX_FILE_BYTES + 1) == 0);
    if (f) fclose(f);
    check_error(cf_tokenizer_load(path), path, "a tokenizer file may have at most", __LINE__);
    unlink(path);
}

/* More entries than CF_TOK_MAX_VOCAB: refused before any per-entry allocation; more JSON values
 * than any allowed file has: refused before cJSON allocates them. */
TEST(tok_vocab_size_bound) {
    size_t cap = 8 * (size_t)CF_TOK_MAX_VOCAB + 4096, n = 0;
    char *json = malloc(cap);
    n += (size_t)sprintf(json, "{\"format\": \"cformer-unigram\", \"version\": 1, \"vocab\": [");
    for (int i = 0; i <= CF_TOK_MAX_VOCAB; i++) n += (size_t)sprintf(json + n, i ? ",\"a\"" : "\"a\"");
    n += (size_t)sprintf(json + n, "]}");
    check_error(cf_tokenizer_from_json(json, n, "big/ug.json"), "big/ug.json", "has 1000001 entries (must be 260 to 1000000",
                __LINE__);
    free(json);
    /* Millions of tiny values would cost cJSON ~64 bytes each: refused before parsing. */
    size_t values = CF_TOK_MAX_JSON_VALUES + 1;
    json = malloc(2 * values + 16);
    n = 0;
    json[n++] = '[';
    for (size_t i = 0; i < values; i++) json[n++] = '0', json[n++] = ',';
    json[n - 1] = ']';
    check_error(cf_tokenizer_from_json(json, n, "many/tok.json"), "many/tok.json", "JSON values: a tokenizer file may have at most",
                __LINE__);
    free(json);
}

TEST(tok_load_dispatch_and_header_errors) {
    cf_tokenizer *t = train_kind(CF_TOK_UNIGRAM, corpus, N_CORPUS, 300);
    char *json = cf_tokenizer_to_json(t);
    char *bad = strdup(json);
    memcpy(strstr(bad, "cformer-unigram"), "cformer-unigrum", 15);
    check_error(cf_tokenizer_from_json(bad, strlen(bad), "x/tok.json"), "x/tok.json",
                "not a cformer tokenizer (\"format\" must be \"cformer-bpe\", \"cformer-wordpiece\" or \"cformer-unigram\")",
                __LINE__);
    strcpy(bad, json);
    memcpy(strstr(bad, "\"version\": 1"), "\"version\": 7", 12);
    check_error(cf_tokenizer_from_json(bad, strlen(bad), "x/tok.json"), "x/tok.json", "unsupported version 7", __LINE__);
    strcpy(bad, json);
    memcpy(strstr(bad, "\"<bos>\",\n"), "\"<BOS>\",\n", 9);
    check_error(cf_tokenizer_from_json(bad, strlen(bad), "x/tok.json"), "x/tok.json", "vocab entry 2", __LINE__);
    check_error(cf_tokenizer_from_json("[1, 2]", 6, "x/tok.json"), "x/tok.json", "not a cformer tokenizer", __LINE__);
    check_error(cf_tokenizer_from_json("", 0, "x/tok.json"), "x/tok.json", "not valid JSON", __LINE__);
    check_error(cf_tokenizer_load("/nonexistent/tok.json"), "/nonexistent/tok.json", "cannot open", __LINE__);
    free(bad);
    free(json);
    cf_tokenizer_free(t);
}

/* Every prefix of a valid file and many random corruptions: an error naming the file or a
 * tokenizer that still round-trips; never a crash (the asan build checks the memory). */
TEST(tok_loaders_survive_truncation_and_garbage) {
    cf_rng rng = cf_rng_init(13, CF_RNG_STREAM_TEST);
    for (int k = 0; k < CF_TOK_N_KINDS; k++) {
        cf_tokenizer *t = train_kind((cf_tok_kind)k, corpus, N_CORPUS, 290);
        char *json = cf_tokenizer_to_json(t);
        size_t n = strlen(json);
        char *buf = malloc(n + 1);
        int loaded = 0, refused = 0;
        for (size_t cut = 0; cut + 1 < n; cut += 1 + cut / 512) { /* (n - 1 drops only the final newline) */
            memcpy(buf, json, cut);
            buf[cut] = 0;
            cf_tokenizer *u = cf_tokenizer_from_json(buf, cut, "cut/tok.json");
            if (u) loaded++;
            else refused += strstr(cf_error_message(), "cut/tok.json") != NULL;
            cf_tokenizer_free(u);
        }
        CHECK_MSG(loaded == 0 && refused > 100, "%s: %d truncated files loaded, %d refused", cf_tok_kind_name((cf_tok_kind)k),
                  loaded, refused);
        const char garbage[] = "\"[]{},:0123456789-.e\\\xff\x80 ##ab";
        for (int rep = 0; rep < 1500; rep++) {
            memcpy(buf, json, n + 1);
            int flips = 1 + (int)cf_rng_below(&rng, 4);
            for (int f = 0; f < flips; f++) buf[cf_rng_below(&rng, n)] = garbage[cf_rng_below(&rng, sizeof garbage - 1)];
            cf_tokenizer *u = cf_tokenizer_from_json(buf, n, "bad/tok.json");
            if (u) CHECK(round_trips(u, corpus[rep % N_CORPUS], strlen(corpus[rep % N_CORPUS])));
            else CHECK_MSG(strstr(cf_error_message(), "bad/tok.json"), "error without the file: %s", cf_error_message());
            cf_tokenizer_free(u);
        }
        free(buf);
        free(json);
        cf_tokenizer_free(t);
    }
}

/* What `cformer tokenizer compare` reports, on a file small enough to check by hand. */
TEST(tok_compare_stats) {
    const char *dir = test_tmpdir("tok_stats");
    char path[512];
    snprintf(path, sizeof path, "%s/a.txt", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 50; i++) fprintf(f, "the cat sat on the mat\nthe dog sat on the log\n");
    fclose(f);
    const char *files[] = {path};
    for (int k = 0; k < CF_TOK_N_KINDS; k++) {
        cf_tok_stats st;
        cf_tokenizer *t = cf_tok_train_measured((cf_tok_kind)k, files, 1, 300, 2, &st);
        CHECK_MSG(t != NULL, "%s", cf_error_message());
        CHECK(st.lines == 100 && st.bytes == 50 * 44 && st.words == 100 * 6);
        CHECK(st.tokens_per_line >= 1 && st.tokens_per_line <= 22 && st.encode_mb_s > 0 && st.train_s > 0);
        CHECK(st.vocab_whole_words >= 0 && st.vocab_whole_words <= 1);
        /* every kind learns these few words whole */
        CHECK_MSG(st.words_kept_whole > 0.99, "%s: %.3f of the words kept whole", cf_tok_kind_name((cf_tok_kind)k),
                  st.words_kept_whole);
        cf_tokenizer_free(t);
    }
    CHECK(cf_tok_train_measured(CF_TOK_BPE, (const char *[]){"/nonexistent/x"}, 1, 300, 1, &(cf_tok_stats){0}) == NULL);
}
