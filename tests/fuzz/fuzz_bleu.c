/* tests/fuzz/fuzz_bleu.c - the 13a tokenizer, BLEU/chrF statistics and the sacrebleu-style file
 * reader. The input's first line is a hypothesis, the next up to three its references, and the
 * whole input is also read as a hypothesis file. Properties: 13a output has single spaces and
 * none at the ends; scores are finite in [0, 100]; a hypothesis scored against itself gets BLEU
 * 100 when it has at least four tokens, and chrF 100 when it has a non-space character; the
 * formatted line fits CF_BLEU_LINE_MAX; invalid UTF-8 is refused, never scored. */
#include <math.h>
#include <string.h>

#include "core/common.h"
#include "score/bleu.h"
#include "tests/fuzz/fuzz.h"

static int count_tokens(const char *tok) {
    int n = 0;
    for (const char *p = tok; *p; p++) n += (p == tok || p[-1] == ' ') && *p != ' ';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_cstr(data, size); /* stops at a NUL, as a C string does */
    char *lines[4] = {0};
    int n = 0;
    for (char *s = text, *nl; n < 4; s = nl + 1) {
        lines[n++] = s;
        if (!(nl = strchr(s, '\n'))) break;
        *nl = 0;
    }
    const char *hyp = lines[0];
    bool valid = cf_utf8_valid(hyp, strlen(hyp), NULL);
    if (valid) {
        char *tok = cf_tokenize_13a(hyp);
        size_t len = strlen(tok);
        FUZZ_ASSERT(!strstr(tok, "  ") && (len == 0 || (tok[0] != ' ' && tok[len - 1] != ' ')));
        cf_bleu_stats self = {0};
        cf_chrf_stats self_chrf = {0};
        FUZZ_ASSERT(cf_bleu_stats_add(&self, hyp, &hyp, 1) && cf_chrf_stats_add(&self_chrf, hyp, &hyp, 1));
        cf_bleu_score b = cf_bleu_compute(&self, false);
        if (count_tokens(tok) >= 4) FUZZ_ASSERT(fabs(b.score - 100) < 1e-9);
        bool has_char = false;
        for (const char *p = hyp; *p && !has_char; p += cf_py_space_len(p) ? cf_py_space_len(p) : 1)
            has_char = cf_py_space_len(p) == 0;
        if (has_char) FUZZ_ASSERT(fabs(cf_chrf_compute(&self_chrf) - 100) < 1e-9);
        free(tok);
    }
    cf_bleu_stats st = {0};
    cf_chrf_stats ch = {0};
    const char *empty = "", *const *refs = n > 1 ? (const char *const *)lines + 1 : &empty;
    int n_refs = n > 1 ? n - 1 : 1;
    bool ok = cf_bleu_stats_add(&st, hyp, refs, n_refs) && cf_chrf_stats_add(&ch, hyp, refs, n_refs);
    bool all_valid = valid;
    for (int i = 0; i < n_refs; i++) all_valid = all_valid && cf_utf8_valid(refs[i], strlen(refs[i]), NULL);
    FUZZ_ASSERT(ok == all_valid);
    cf_bleu_score b = cf_bleu_compute(&st, false);
    FUZZ_ASSERT(isfinite(b.score) && b.score >= 0 && b.score <= 100 + 1e-9);
    double c = cf_chrf_compute(&ch);
    FUZZ_ASSERT(isfinite(c) && c >= 0 && c <= 100 + 1e-9);
    char line[CF_BLEU_LINE_MAX];
    FUZZ_ASSERT(cf_bleu_format(&b, line, sizeof line) < (int)sizeof line);
    free(text);

    const char *path = fuzz_file(data, size, NULL);
    for (int universal = 0; universal < 2; universal++) {
        int64_t n_lines;
        char **got = cf_bleu_read_lines(path, universal, &n_lines);
        if (!got) {
            FUZZ_ASSERT(strstr(cf_error_message(), path) != NULL);
            continue;
        }
        for (int64_t i = 0; i < n_lines; i++) FUZZ_ASSERT(cf_utf8_valid(got[i], strlen(got[i]), NULL));
        cf_bleu_lines_free(got, n_lines);
    }
    return 0;
}
