/* tests/test_bleu.c - BLEU, chrF and the 13a tokenizer against sacrebleu's own output.
 *
 * tests/fixtures/bleu/ is made by tests/ref/bleu_fixtures.py (sacrebleu 2.6.0): expected.txt holds
 * sacrebleu's score lines per case, tok13a.json its tokenizations, whitespace.txt Python's
 * whitespace code points. Every comparison is an exact string compare.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/common.h"
#include "tests/test.h"
#include "tests/testlib.h"
#include "score/bleu.h"

/* ---- expected.txt: CASE <TAB> KIND <TAB> VALUE ------------------------------------------------ */
typedef struct record {
    char *name, *kind, *value;
} record;

static record *records;
static int64_t n_records; /* loaded once, kept until exit */

static bool load_expected(void) {
    if (records) return true;
    int64_t n = 0;
    char **lines = cf_bleu_read_lines(test_fixture_path("bleu/expected.txt"), false, &n);
    if (!lines) {
        test_fail(__FILE__, __LINE__, "%s", cf_error_message());
        return false;
    }
    records = cf_xcalloc((size_t)n, sizeof(record));
    for (int64_t i = 0; i < n; i++) {
        char *a = strchr(lines[i], '\t'), *b = a ? strchr(a + 1, '\t') : NULL;
        if (!b) {
            test_fail(__FILE__, __LINE__, "expected.txt line %lld is not CASE<TAB>KIND<TAB>VALUE", (long long)i + 1);
            continue;
        }
        *a = *b = 0;
        records[n_records++] = (record){lines[i], a + 1, b + 1};
    }
    free(lines); /* the strings stay, owned by records[] */
    return true;
}

/* The value of the k-th record of this case and kind, or NULL. */
static const char *expected(const char *name, const char *kind, int k) {
    for (int64_t i = 0; i < n_records; i++)
        if (strcmp(records[i].name, name) == 0 && strcmp(records[i].kind, kind) == 0 && k-- == 0) return records[i].value;
    return NULL;
}

/* One fixture case read exactly as `cformer bleu --hyp CASE.hyp --ref CASE.ref0 ...` reads it. */
typedef struct fixture_case {
    char **hyps, **refs[8];
    int64_t n_hyps, n_ref_lines[8];
    int n_refs;
} fixture_case;

static bool case_load(const char *name, fixture_case *c) {
    memset(c, 0, sizeof *c);
    const char *nrefs = expected(name, "refs", 0);
    c->n_refs = nrefs ? atoi(nrefs) : 0;
    CHECK_MSG(c->n_refs >= 1 && c->n_refs <= 8, "%s: bad refs record", name);
    if (c->n_refs < 1 || c->n_refs > 8) return false;
    char path[256];
    snprintf(path, sizeof path, "bleu/%s.hyp", name);
    c->hyps = cf_bleu_read_lines(test_fixture_path(path), false, &c->n_hyps);
    CHECK_MSG(c->hyps, "%s", cf_error_message());
    for (int r = 0; r < c->n_refs; r++) {
        snprintf(path, sizeof path, "bleu/%s.ref%d", name, r);
        c->refs[r] = cf_bleu_read_lines(test_fixture_path(path), false, &c->n_ref_lines[r]);
        CHECK_MSG(c->refs[r], "%s", cf_error_message());
        if (c->refs[r]) CHECK_MSG(c->n_ref_lines[r] == c->n_hyps, "%s: ref %d has %lld lines", name, r, (long long)c->n_ref_lines[r]);
        if (!c->refs[r] || c->n_ref_lines[r] != c->n_hyps) return false;
    }
    return c->hyps != NULL;
}

static void case_free(fixture_case *c) {
    cf_bleu_lines_free(c->hyps, c->n_hyps);
    for (int r = 0; r < c->n_refs; r++) cf_bleu_lines_free(c->refs[r], c->n_ref_lines[r]);
}

static void segment_refs(const fixture_case *c, int64_t l, const char **out) {
    for (int r = 0; r < c->n_refs; r++) out[r] = c->refs[r][l];
}

TEST(bleu_corpus_lines_equal_sacrebleu) {
    if (!load_expected()) return;
    int cases = 0;
    for (int64_t i = 0; i < n_records; i++) {
        if (strcmp(records[i].kind, "refs") != 0) continue;
        const char *name = records[i].name;
        fixture_case c;
        if (!case_load(name, &c)) {
            case_free(&c);
            continue;
        }
        cf_bleu_stats bleu = {0};
        cf_chrf_stats chrf = {0};
        for (int64_t l = 0; l < c.n_hyps; l++) {
            const char *refs[8];
            segment_refs(&c, l, refs);
            CHECK(cf_bleu_stats_add(&bleu, c.hyps[l], refs, c.n_refs));
            CHECK(cf_chrf_stats_add(&chrf, c.hyps[l], refs, c.n_refs));
        }
        char line[CF_BLEU_LINE_MAX];
        cf_bleu_score s = cf_bleu_compute(&bleu, false);
        cf_bleu_format(&s, line, sizeof line);
        CHECK_MSG(expected(name, "bleu", 0) && strcmp(line, expected(name, "bleu", 0)) == 0, "%s:\n      ours      %s\n      sacrebleu %s",
                  name, line, expected(name, "bleu", 0));
        cf_chrf_format(cf_chrf_compute(&chrf), line, sizeof line);
        CHECK_MSG(expected(name, "chrf", 0) && strcmp(line, expected(name, "chrf", 0)) == 0, "%s:\n      ours      %s\n      sacrebleu %s",
                  name, line, expected(name, "chrf", 0));
        case_free(&c);
        cases++;
    }
    CHECK_MSG(cases >= 39, "only %d fixture cases", cases);
}

TEST(bleu_chrf_sentence_lines_equal_sacrebleu) {
    if (!load_expected()) return;
    int checked = 0;
    for (int64_t i = 0; i < n_records; i++) {
        if (strcmp(records[i].kind, "refs") != 0 || !expected(records[i].name, "sent", 0)) continue;
        const char *name = records[i].name;
        fixture_case c;
        if (!case_load(name, &c)) {
            case_free(&c);
            continue;
        }
        for (int64_t l = 0; l < c.n_hyps; l++) {
            const char *refs[8];
            segment_refs(&c, l, refs);
            cf_bleu_stats st = {0};
            CHECK(cf_bleu_stats_add(&st, c.hyps[l], refs, c.n_refs));
            cf_bleu_score s = cf_bleu_compute(&st, true);
            char line[CF_BLEU_LINE_MAX];
            cf_bleu_format(&s, line, sizeof line);
            const char *want = expected(name, "sent", (int)l);
            CHECK_MSG(want && strcmp(line, want) == 0, "%s segment %lld:\n      ours      %s\n      sacrebleu %s", name,
                      (long long)l + 1, line, want ? want : "(missing)");
            cf_chrf_stats ch = {0};
            CHECK(cf_chrf_stats_add(&ch, c.hyps[l], refs, c.n_refs));
            cf_chrf_format(cf_chrf_compute(&ch), line, sizeof line);
            want = expected(name, "sentchrf", (int)l);
            CHECK_MSG(want && strcmp(line, want) == 0, "%s segment %lld:\n      ours      %s\n      sacrebleu %s", name,
                      (long long)l + 1, line, want ? want : "(missing)");
            checked++;
        }
        case_free(&c);
    }
    CHECK_MSG(checked >= 100, "only %d sentence lines", checked);
}

TEST(bleu_guide_example_and_sensitivity) {
    const char *refs[] = {"the cat sat on the mat ."};
    cf_bleu_stats st = {0};
    CHECK(cf_bleu_stats_add(&st, "the cat sat on a mat .", refs, 1));
    char line[CF_BLEU_LINE_MAX];
    cf_bleu_score s = cf_bleu_compute(&st, false);
    cf_bleu_format(&s, line, sizeof line);
    CHECK_STR(line, "BLEU = 48.89 85.7/66.7/40.0/25.0 (BP = 1.000 ratio = 1.000 hyp_len = 7 ref_len = 7)");
    /* The score moves when the input does (the fixture compare is not vacuous). */
    cf_bleu_stats other = {0};
    CHECK(cf_bleu_stats_add(&other, "the cat sat on a mat", refs, 1));
    cf_bleu_score s2 = cf_bleu_compute(&other, false);
    CHECK(s2.score < s.score && s2.hyp_len == 6);
    /* Trailing Python whitespace is stripped (sacrebleu's rstrip), a NULL reference skipped. */
    cf_bleu_stats st2 = {0};
    const char *refs2[] = {NULL, "the cat sat on the mat .\xe3\x80\x80"};
    CHECK(cf_bleu_stats_add(&st2, "the cat sat on a mat .\xc2\xa0\t", refs2, 2));
    cf_bleu_score s3 = cf_bleu_compute(&st2, false);
    char line3[CF_BLEU_LINE_MAX];
    cf_bleu_format(&s3, line3, sizeof line3);
    CHECK_STR(line3, line);
    /* Merging two halves equals adding both segments to one accumulator. */
    cf_bleu_stats both = {0}, half = {0};
    CHECK(cf_bleu_stats_add(&both, "a b c d e", (const char *[]){"a b c d"}, 1));
    CHECK(cf_bleu_stats_add(&both, "x y z", (const char *[]){"x y z w"}, 1));
    CHECK(cf_bleu_stats_add(&half, "x y z", (const char *[]){"x y z w"}, 1));
    cf_bleu_stats merged = {0};
    CHECK(cf_bleu_stats_add(&merged, "a b c d e", (const char *[]){"a b c d"}, 1));
    cf_bleu_stats_merge(&merged, &half);
    CHECK(memcmp(&merged, &both, sizeof both) == 0);
}

TEST(bleu_invalid_utf8_is_an_error) {
    cf_bleu_stats st = {0};
    cf_chrf_stats ch = {0};
    const char *refs[] = {"ok"};
    CHECK(!cf_bleu_stats_add(&st, "bad \xff byte", refs, 1));
    CHECK(strstr(cf_error_message(), "UTF-8") != NULL);
    CHECK(!cf_chrf_stats_add(&ch, "ok", (const char *[]){"\xed\xa0\x80"}, 1));
    CHECK(st.n_segments == 0 && st.total[0] == 0 && ch.n_segments == 0);

    size_t bad = 0;
    CHECK(cf_utf8_valid("a\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80", 10, NULL));
    CHECK(!cf_utf8_valid("ab\xc0\x80", 4, &bad) && bad == 2);  /* overlong NUL */
    CHECK(!cf_utf8_valid("\xe0\x80\xaf", 3, &bad) && bad == 0); /* overlong '/' */
    CHECK(!cf_utf8_valid("\xed\xbf\xbf", 3, NULL));             /* surrogate */
    CHECK(!cf_utf8_valid("\xf4\x90\x80\x80", 4, NULL));         /* > U+10FFFF */
    CHECK(!cf_utf8_valid("x\xe2\x82", 3, &bad) && bad == 1);    /* truncated */
    CHECK(!cf_utf8_valid("\x80", 1, NULL));                     /* stray continuation */
}

TEST(tokenize_13a_equals_sacrebleu) {
    FILE *f = fopen(test_fixture_path("bleu/tok13a.json"), "rb");
    CHECK_MSG(f, "missing %s", test_fixture_path("bleu/tok13a.json"));
    if (!f) return;
    char *text = cf_xmalloc(1 << 20);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[n] = 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
    CHECK(cJSON_IsArray(root));
    int checked = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        const char *in = cJSON_GetStringValue(cJSON_GetObjectItem(item, "in"));
        const char *want = cJSON_GetStringValue(cJSON_GetObjectItem(item, "out"));
        CHECK(in && want);
        if (!in || !want) continue;
        char *got = cf_tokenize_13a(in);
        CHECK_MSG(strcmp(got, want) == 0, "13a(\"%s\"):\n      ours      \"%s\"\n      sacrebleu \"%s\"", in, got, want);
        free(got);
        checked++;
    }
    cJSON_Delete(root);
    CHECK_MSG(checked >= 50, "only %d tokenizer cases", checked);
}

static size_t utf8_encode(uint32_t c, char *out) {
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xc0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xe0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    out[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

/* Every code point: cf_py_space_len agrees with Python's str.isspace() (whitespace.txt). */
TEST(python_whitespace_set_is_exact) {
    int64_t n = 0;
    char **lines = cf_bleu_read_lines(test_fixture_path("bleu/whitespace.txt"), false, &n);
    CHECK_MSG(lines, "%s", cf_error_message());
    if (!lines) return;
    static bool is_space[0x110000];
    memset(is_space, 0, sizeof is_space);
    for (int64_t i = 0; i < n; i++) is_space[strtoul(lines[i], NULL, 16)] = true;
    cf_bleu_lines_free(lines, n);
    CHECK(n == 29); /* Python 3.11 */
    int wrong = 0;
    for (uint32_t c = 1; c < 0x110000; c++) {
        if (c >= 0xd800 && c <= 0xdfff) continue;
        char s[8] = {0};
        size_t len = utf8_encode(c, s);
        size_t got = cf_py_space_len(s);
        if (got != (is_space[c] ? len : 0) && wrong++ < 5) test_fail(__FILE__, __LINE__, "U+%04X: %zu", c, got);
    }
    CHECK(wrong == 0);
}

/* Reading: split at "\n" only in files, at "\r" too on stdin (universal newlines), rstrip each. */
TEST(bleu_read_lines_like_sacrebleu) {
    const char *dir = test_tmpdir("bleu");
    char path[512];
    snprintf(path, sizeof path, "%s/t.txt", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f);
    if (!f) return;
    fputs("a b \r\nc\rd\xe2\x80\xa8" "e\xc2\xa0\n\n  \nlast\x1c", f);
    fclose(f);
    int64_t n = 0;
    char **l = cf_bleu_read_lines(path, false, &n);
    CHECK(l && n == 5);
    if (l && n == 5) {
        CHECK_STR(l[0], "a b");
        CHECK_STR(l[1], "c\rd\xe2\x80\xa8" "e");
        CHECK_STR(l[2], "");
        CHECK_STR(l[3], "");
        CHECK_STR(l[4], "last");
    }
    cf_bleu_lines_free(l, n);
    l = cf_bleu_read_lines(path, true, &n);
    CHECK(l && n == 6);
    if (l && n == 6) {
        CHECK_STR(l[1], "c");
        CHECK_STR(l[2], "d\xe2\x80\xa8" "e");
    }
    cf_bleu_lines_free(l, n);
    CHECK(cf_bleu_read_lines("/nonexistent/ref.txt", false, &n) == NULL);
    CHECK(strstr(cf_error_message(), "/nonexistent/ref.txt") != NULL);
    unlink(path);
    rmdir(dir);
}

/* ---- the CLI ------------------------------------------------------------------------------------ */

/* build/cformer next to this test binary (build/tests/unit -> build/cformer; build-asan under
 * `make asan`), else the default build directory. */
static const char *cli_path(void) {
    static char path[4096];
    char self[2048];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            snprintf(path, sizeof path, "%s/../cformer", self);
            if (access(path, X_OK) == 0) return path;
        }
    }
    snprintf(path, sizeof path, "%s/build/cformer", CF_SOURCE_DIR);
    return path;
}

/* Run `cformer bleu ARGS` in the fixture directory; stdout into out (first line), exit status. */
static int run_cli(const char *args, char *out, size_t out_size) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' bleu %s 2>/dev/null", test_fixture_path("bleu"), cli_path(), args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, out_size - 1, p);
    out[n] = 0;
    while (n > 0 && out[n - 1] == '\n') out[--n] = 0;
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(bleu_cli_end_to_end) {
    CHECK_MSG(access(cli_path(), X_OK) == 0, "%s is missing (make builds it)", cli_path());
    if (access(cli_path(), X_OK) != 0) return;
    if (!load_expected()) return;
    char out[4096], want[1024];

    CHECK(run_cli("--ref guide7.ref0 --hyp guide7.hyp", out, sizeof out) == 0);
    CHECK_STR(out, expected("guide7", "bleu", 0));
    snprintf(want, sizeof want, "%s\n%s", expected("multi_ref", "bleu", 0), expected("multi_ref", "chrf", 0));
    CHECK(run_cli("-r multi_ref.ref0 --ref=multi_ref.ref1 -i multi_ref.hyp --chrf", out, sizeof out) == 0);
    CHECK_STR(out, want);
    CHECK(run_cli("-r clipping.ref0 -r clipping.ref1 -i clipping.hyp --sentence -m chrf", out, sizeof out) == 0);
    CHECK_STR(out, expected("clipping", "sentchrf", 0));
    CHECK(run_cli("-r crlf.ref0 -i crlf.hyp --metrics chrf", out, sizeof out) == 0);
    CHECK_STR(out, expected("crlf", "chrf", 0));
    CHECK(run_cli("-r apostrophes.ref0 -i apostrophes.hyp --sentence", out, sizeof out) == 0);
    snprintf(want, sizeof want, "%s\n%s\n%s", expected("apostrophes", "sent", 0), expected("apostrophes", "sent", 1),
             expected("apostrophes", "sent", 2));
    CHECK_STR(out, want);

    /* Hypotheses on stdin, as the sacrebleu CLI reads them ("error" records: it refused them). */
    int stdin_cases = 0;
    for (int64_t i = 0; i < n_records; i++) {
        if (strcmp(records[i].kind, "stdin") != 0) continue;
        const char *name = records[i].name;
        char args[512] = "";
        int nrefs = atoi(expected(name, "refs", 0));
        for (int r = 0; r < nrefs; r++)
            snprintf(args + strlen(args), sizeof args - strlen(args), "--ref %s.ref%d ", name, r);
        snprintf(args + strlen(args), sizeof args - strlen(args), "< %s.hyp", name);
        int status = run_cli(args, out, sizeof out);
        if (strncmp(records[i].value, "error", 5) == 0) {
            CHECK_MSG(status == 2, "%s on stdin: exit %d, sacrebleu refuses it (%s)", name, status, records[i].value);
        } else {
            CHECK_MSG(status == 0, "%s on stdin: exit %d", name, status);
            CHECK_STR(out, records[i].value);
        }
        stdin_cases++;
    }
    CHECK(stdin_cases >= 4);

    CHECK(run_cli("--help", out, sizeof out) == 0 && strstr(out, "usage: cformer bleu") == out);
    CHECK(run_cli("", out, sizeof out) == 2);                                          /* no --ref */
    CHECK(run_cli("--ref guide7.ref0 --frobnicate", out, sizeof out) == 2);            /* unknown flag */
    CHECK(run_cli("--ref guide7.ref0 --hyp", out, sizeof out) == 2);                   /* missing value */
    CHECK(run_cli("--ref no_such_file --hyp guide7.hyp", out, sizeof out) == 2);       /* missing ref */
    CHECK(run_cli("--ref guide7.ref0 --hyp no_such_file", out, sizeof out) == 2);      /* missing hyp */
    CHECK(run_cli("--ref guide7.ref0 --hyp multi_ref.hyp", out, sizeof out) == 2);     /* 1 vs 3 lines */
    CHECK(run_cli("--ref guide7.ref0 --metrics bleu,ter --hyp guide7.hyp", out, sizeof out) == 2);
    CHECK(strcmp(out, "") == 0); /* errors print nothing on stdout */

    /* The line-count error names both files and counts. */
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' bleu --ref guide7.ref0 --hyp multi_ref.hyp 2>&1 >/dev/null",
             test_fixture_path("bleu"), cli_path());
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    if (p) pclose(p);
    CHECK_MSG(strstr(out, "multi_ref.hyp") && strstr(out, "guide7.ref0") && strstr(out, "3") && strstr(out, "1"),
              "message: %s", out);
}
