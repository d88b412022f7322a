/* cli/cmd_bleu.c - `cformer bleu`: sacrebleu's default corpus BLEU (and chrF) of text files. */
#include "cli/commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "score/bleu.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: cformer bleu --ref FILE [--ref FILE]... [--hyp FILE] [--metrics bleu,chrf] [--chrf] [--sentence]\n"
            "\n"
            "Scores detokenized hypotheses against one or more references exactly as sacrebleu 2.x does\n"
            "by default and prints its lines, e.g.\n"
            "  BLEU = 48.89 85.7/66.7/40.0/25.0 (BP = 1.000 ratio = 1.000 hyp_len = 7 ref_len = 7)\n"
            "  chrF2 = 61.20\n"
            "(BLEU: 13a tokenizer, mixed case, exp smoothing, 4-grams, closest reference length;\n"
            " chrF: character 6-grams, beta 2, whitespace ignored). Files are UTF-8, one segment a line,\n"
            "trailing whitespace ignored; every --ref file needs as many lines as the hypotheses.\n"
            "\n"
            "  --ref, -r FILE     a reference file (repeat for multiple references)\n"
            "  --hyp, -i FILE     the hypotheses (default: stdin, where \\r also ends a line and a tab\n"
            "                     is refused, since sacrebleu would read tab-separated systems)\n"
            "  --metrics LIST     comma-separated: bleu (default), chrf\n"
            "  --chrf             the same as --metrics bleu,chrf\n"
            "  --sentence         one score line per segment (sentence BLEU uses the effective order,\n"
            "                     as sacrebleu.sentence_bleu does); needs exactly one metric\n"
            "\n"
            "Exit status: 0 scored, 2 bad usage or input (missing file, line counts differ, bad UTF-8).\n");
}

static int fail_usage(const char *fmt, const char *arg) {
    fprintf(stderr, "cformer bleu: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(try 'cformer bleu --help')\n");
    return 2;
}

/* "--opt VALUE" or "--opt=VALUE": returns the value and advances *i, or NULL if this is not opt. */
static const char *option_value(int argc, char **argv, int *i, const char *long_name, const char *short_name,
                                bool *missing) {
    const char *a = argv[*i];
    size_t n = strlen(long_name);
    if (strncmp(a, long_name, n) == 0 && a[n] == '=') return a + n + 1;
    if (strcmp(a, long_name) != 0 && !(short_name && strcmp(a, short_name) == 0)) return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static bool parse_metrics(const char *list, bool *bleu, bool *chrf) {
    *bleu = *chrf = false;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 4 && strncmp(p, "bleu", 4) == 0) *bleu = true;
        else if (n == 4 && strncmp(p, "chrf", 4) == 0) *chrf = true;
        else return false;
        p += n;
        if (*p == ',') p++;
    }
    return *bleu || *chrf;
}

int cf_cmd_bleu(int argc, char **argv) {
    const char **ref_paths = cf_xcalloc((size_t)argc + 1, sizeof(char *));
    int n_refs = 0;
    const char *hyp_path = NULL;
    bool want_bleu = true, want_chrf = false, sentence = false;
    int status = 2;

    for (int i = 0; i < argc; i++) {
        bool missing = false;
        const char *v;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            free(ref_paths);
            return 0;
        } else if ((v = option_value(argc, argv, &i, "--ref", "-r", &missing))) {
            ref_paths[n_refs++] = v;
        } else if ((v = option_value(argc, argv, &i, "--hyp", "-i", &missing))) {
            if (hyp_path) {
                fail_usage("--hyp given twice (multi-system scoring is not supported)%s", "");
                goto done;
            }
            hyp_path = v;
        } else if ((v = option_value(argc, argv, &i, "--metrics", "-m", &missing))) {
            if (!parse_metrics(v, &want_bleu, &want_chrf)) {
                fail_usage("--metrics takes a comma-separated list of bleu, chrf (got '%s')", v);
                goto done;
            }
        } else if (missing) {
            fail_usage("%s needs a value", argv[i]);
            goto done;
        } else if (strcmp(argv[i], "--chrf") == 0) {
            want_bleu = want_chrf = true;
        } else if (strcmp(argv[i], "--sentence") == 0) {
            sentence = true;
        } else {
            fail_usage("unknown argument '%s'", argv[i]);
            goto done;
        }
    }
    if (n_refs == 0) {
        fail_usage("at least one --ref FILE is needed%s", "");
        goto done;
    }
    if (sentence && want_bleu && want_chrf) {
        fail_usage("--sentence prints one metric: choose --metrics bleu or --metrics chrf%s", "");
        goto done;
    }

    /* Read everything first, so that a missing or bad file is reported before any output. */
    int64_t n_hyps = 0;
    bool from_stdin = hyp_path == NULL || strcmp(hyp_path, "-") == 0;
    char **hyps = cf_bleu_read_lines(from_stdin ? "-" : hyp_path, from_stdin, &n_hyps);
    char ***refs = cf_xcalloc((size_t)n_refs, sizeof(char **));
    int64_t *ref_lines = cf_xcalloc((size_t)n_refs, sizeof(int64_t));
    const char **seg_refs = cf_xcalloc((size_t)n_refs, sizeof(char *));
    if (!hyps) {
        fprintf(stderr, "cformer bleu: %s\n", cf_error_message());
        goto free_all;
    }
    if (from_stdin && n_hyps == 0) {
        /* sacrebleu reads the first stdin line with readline(), so empty input is one empty line. */
        hyps[0] = cf_xcalloc(1, 1);
        n_hyps = 1;
    }
    if (from_stdin)
        for (int64_t l = 0; l < n_hyps; l++)
            if (strchr(hyps[l], '\t')) {
                fprintf(stderr,
                        "cformer bleu: <stdin> line %lld contains a tab; sacrebleu reads tab-separated columns on "
                        "stdin as separate systems. Use --hyp FILE to score such lines.\n",
                        (long long)(l + 1));
                goto free_all;
            }
    if (n_hyps == 0) {
        fprintf(stderr, "cformer bleu: %s has no lines\n", hyp_path);
        goto free_all;
    }
    for (int r = 0; r < n_refs; r++) {
        refs[r] = cf_bleu_read_lines(ref_paths[r], false, &ref_lines[r]);
        if (!refs[r]) {
            fprintf(stderr, "cformer bleu: %s\n", cf_error_message());
            goto free_all;
        }
    }
    for (int r = 0; r < n_refs; r++)
        if (ref_lines[r] != n_hyps) {
            fprintf(stderr, "cformer bleu: the hypotheses (%s) have %lld lines but the reference %s has %lld\n",
                    from_stdin ? "<stdin>" : hyp_path, (long long)n_hyps, ref_paths[r], (long long)ref_lines[r]);
            goto free_all;
        }

    cf_bleu_stats bleu = {0};
    cf_chrf_stats chrf = {0};
    char line[CF_BLEU_LINE_MAX];
    for (int64_t l = 0; l < n_hyps; l++) {
        for (int r = 0; r < n_refs; r++) seg_refs[r] = refs[r][l];
        cf_bleu_stats seg_bleu = {0};
        cf_chrf_stats seg_chrf = {0};
        /* Lines were validated when read, so adding cannot fail. */
        if (want_bleu) CF_ASSERT(cf_bleu_stats_add(&seg_bleu, hyps[l], seg_refs, n_refs));
        if (want_chrf) CF_ASSERT(cf_chrf_stats_add(&seg_chrf, hyps[l], seg_refs, n_refs));
        if (sentence) {
            if (want_bleu) {
                cf_bleu_score s = cf_bleu_compute(&seg_bleu, true);
                cf_bleu_format(&s, line, sizeof line);
            } else {
                cf_chrf_format(cf_chrf_compute(&seg_chrf), line, sizeof line);
            }
            puts(line);
        }
        cf_bleu_stats_merge(&bleu, &seg_bleu);
        cf_chrf_stats_merge(&chrf, &seg_chrf);
    }
    if (!sentence) {
        /* sacrebleu prints its metrics sorted by name: BLEU, then chrF. */
        if (want_bleu) {
            cf_bleu_score s = cf_bleu_compute(&bleu, false);
            cf_bleu_format(&s, line, sizeof line);
            puts(line);
        }
        if (want_chrf) {
            cf_chrf_format(cf_chrf_compute(&chrf), line, sizeof line);
            puts(line);
        }
    }
    status = fflush(stdout) == 0 ? 0 : 1;

free_all:
    cf_bleu_lines_free(hyps, n_hyps);
    for (int r = 0; r < n_refs; r++) cf_bleu_lines_free(refs[r], ref_lines[r]);
    free(refs);
    free(ref_lines);
    free(seg_refs);
done:
    free(ref_paths);
    return status;
}
