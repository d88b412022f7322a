/* cli/cmd_tokenizer.c - `cformer tokenizer train|encode|decode|compare` (any kind). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/common.h"
#include "core/rng.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "data/unigram.h"

static const char usage[] =
    "usage: cformer tokenizer train [--kind K] --vocab-size N [--min-count C] --out tok.json FILE...\n"
    "       cformer tokenizer encode --model tok.json [--pieces] [--sample ALPHA [--seed S]] < text\n"
    "       cformer tokenizer decode --model tok.json < ids\n"
    "       cformer tokenizer compare --vocab-size N [--samples K] [--text STRING]... FILE...\n"
    "\n"
    "train    learns a tokenizer of kind K (bpe, the default; wordpiece; unigram) with N tokens\n"
    "         (4 specials + 256 bytes + learned ones) from every line of the FILEs (plain or .gz);\n"
    "         bpe and wordpiece never merge a pair seen fewer than C times (bpe: 2; wordpiece: the\n"
    "         highest floor that still fills the vocabulary)\n"
    "encode   reads text lines on stdin, writes one line of space-separated token ids per line\n"
    "         (the kind comes from the file); --pieces writes the pieces instead (U+2581 = space,\n"
    "         ## = continuation, <0xAB> = a byte); --sample draws a unigram segmentation with\n"
    "         probability ~ P^ALPHA (subword regularisation), seeded by S (default 1)\n"
    "decode   reads lines of space-separated ids on stdin, writes the text (special ids print nothing)\n"
    "compare  trains every kind on the FILEs and prints per kind: training time, encoding speed,\n"
    "         tokens per line, the share of learned tokens that are whole words and of words kept\n"
    "         whole, then K sample lines (default 4, from the FILEs in turn) or each STRING cut by\n"
    "         every kind\n";

static int bad_usage(const char *fmt, const char *arg) {
    fprintf(stderr, "cformer tokenizer: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(try 'cformer tokenizer --help')\n");
    return 2;
}

static bool is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

static int parse_vocab(const char *sub, const char *arg, long *vocab) {
    char *end;
    *vocab = strtol(arg, &end, 10);
    if (*end || *vocab < CF_TOK_N_BASE || *vocab > CF_TOK_MAX_VOCAB) {
        fprintf(stderr, "cformer tokenizer %s: --vocab-size must be an integer in [%d, %d], got '%s'\n", sub,
                CF_TOK_N_BASE, CF_TOK_MAX_VOCAB, arg);
        return 2;
    }
    return 0;
}

static int cmd_train(int argc, char **argv) {
    long vocab = 0, min_count = 0;
    int kind = CF_TOK_BPE;
    const char *out = NULL;
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    int n_files = 0;
    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(usage, stdout);
            free(files);
            return 0;
        } else if (strcmp(argv[i], "--vocab-size") == 0 && i + 1 < argc) {
            if (parse_vocab("train", argv[++i], &vocab) != 0) {
                free(files);
                return 2;
            }
        } else if (strcmp(argv[i], "--min-count") == 0 && i + 1 < argc) {
            char *end;
            min_count = strtol(argv[++i], &end, 10);
            if (*end || min_count < 1 || min_count > 1000000000) {
                free(files);
                return bad_usage("--min-count must be an integer in [1, 1e9], got '%s'", argv[i]);
            }
        } else if (strcmp(argv[i], "--kind") == 0 && i + 1 < argc) {
            kind = cf_tok_kind_parse(argv[++i]);
            if (kind < 0) {
                free(files);
                return bad_usage("--kind must be bpe, wordpiece or unigram, got '%s'", argv[i]);
            }
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            free(files);
            return bad_usage("unknown or incomplete option '%s'", argv[i]);
        } else {
            files[n_files++] = argv[i];
        }
    }
    int rc = 0;
    if (!vocab || !out || !n_files) rc = bad_usage("%s", "train needs --vocab-size N, --out FILE and at least one input file");
    cf_tok_trainer *tr = rc ? NULL : cf_tok_trainer_new();
    for (int i = 0; tr && i < n_files; i++)
        if (cf_tok_trainer_add_file(tr, files[i]) != 0) {
            cf_tok_trainer_free(tr);
            tr = NULL;
        }
    cf_tokenizer *t = tr ? cf_tok_trainer_finish_ex(tr, (cf_tok_kind)kind, (int)vocab, min_count) : NULL;
    if (!rc && !t) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        rc = 1;
    }
    if (t && cf_tokenizer_save(t, out) != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        rc = 1;
    } else if (t) {
        fprintf(stderr, "tokenizer: %s, %d tokens -> %s\n", cf_tok_kind_name((cf_tok_kind)kind), cf_tokenizer_vocab_size(t),
                out);
        if (cf_tokenizer_vocab_size(t) < vocab)
            fprintf(stderr, "tokenizer: note: stopped before %ld tokens, the corpus has no more candidates\n", vocab);
    }
    cf_tokenizer_free(t);
    free(files);
    return rc;
}

/* encode's options besides --model. */
typedef struct enc_opts {
    bool pieces;
    double alpha;               /* > 0: sample (unigram) */
    uint64_t seed;
} enc_opts;

/* Parse "--model FILE" and, for encode (eo != NULL), its options. */
static cf_tokenizer *model_arg(int argc, char **argv, const char *sub, enc_opts *eo, int *rc) {
    const char *model = NULL;
    for (int i = 0; i < argc; i++) {
        char *end;
        if (is_help(argv[i])) {
            fputs(usage, stdout);
            *rc = 0;
            return NULL;
        } else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            model = argv[++i];
        } else if (eo && strcmp(argv[i], "--pieces") == 0) {
            eo->pieces = true;
        } else if (eo && strcmp(argv[i], "--sample") == 0 && i + 1 < argc) {
            eo->alpha = strtod(argv[++i], &end);
            if (*end || !(eo->alpha > 0 && eo->alpha < 1e6)) {
                *rc = bad_usage("--sample must be a number > 0 (the smoothing alpha), got '%s'", argv[i]);
                return NULL;
            }
        } else if (eo && strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            errno = 0;
            eo->seed = strtoull(argv[++i], &end, 10);
            if (*end || errno || argv[i][0] == '-') {
                *rc = bad_usage("--seed must be a non-negative integer, got '%s'", argv[i]);
                return NULL;
            }
        } else {
            *rc = bad_usage("unexpected argument '%s'", argv[i]);
            return NULL;
        }
    }
    if (!model) {
        *rc = bad_usage("%s needs --model tok.json", sub);
        return NULL;
    }
    cf_tokenizer *t = cf_tokenizer_load(model);
    if (!t) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        *rc = 2;
    } else if (eo && eo->alpha > 0 && cf_tokenizer_kind(t) != CF_TOK_UNIGRAM) {
        fprintf(stderr, "cformer tokenizer encode: --sample needs a unigram tokenizer; %s is %s\n", model,
                cf_tok_kind_name(cf_tokenizer_kind(t)));
        cf_tokenizer_free(t);
        t = NULL;
        *rc = 2;
    }
    return t;
}

/* The pieces of ids as one line: token texts separated by spaces. */
static void print_pieces(const cf_tokenizer *t, const cf_ids *ids, FILE *f) {
    char buf[512];
    for (int64_t i = 0; i < ids->n; i++) {
        cf_tokenizer_token_text(t, ids->data[i], buf, sizeof buf);
        fprintf(f, i ? " %s" : "%s", buf);
    }
}

static int cmd_encode(int argc, char **argv) {
    int rc = 0;
    enc_opts eo = {.seed = 1};
    cf_tokenizer *t = model_arg(argc, argv, "encode", &eo, &rc);
    if (!t) return rc;
    cf_rng rng = cf_rng_init(eo.seed, CF_RNG_STREAM_DATA);
    cf_lines *in = cf_lines_open("-");
    cf_ids ids = {0};
    const char *line;
    size_t n;
    char num[16];
    while ((rc = cf_lines_next(in, &line, &n)) > 0) {
        ids.n = 0;
        if (eo.alpha > 0) cf_unigram_encode_sample(cf_tokenizer_unigram(t), line, n, eo.alpha, &rng, &ids);
        else cf_tokenizer_encode(t, line, n, &ids);
        if (eo.pieces) {
            print_pieces(t, &ids, stdout);
        } else {
            for (int64_t i = 0; i < ids.n; i++) {
                int k = snprintf(num, sizeof num, i ? " %d" : "%d", ids.data[i]);
                fwrite(num, 1, (size_t)k, stdout);
            }
        }
        fputc('\n', stdout);
    }
    if (rc < 0) fprintf(stderr, "error: %s\n", cf_error_message());
    cf_lines_close(in);
    cf_ids_free(&ids);
    cf_tokenizer_free(t);
    return rc < 0 || fflush(stdout) != 0 ? 1 : 0;
}

static int cmd_decode(int argc, char **argv) {
    int rc = 0;
    cf_tokenizer *t = model_arg(argc, argv, "decode", NULL, &rc);
    if (!t) return rc;
    cf_lines *in = cf_lines_open("-");
    cf_ids ids = {0};
    const char *line;
    size_t n, cap = 1 << 16;
    char *out = cf_xmalloc(cap);
    while ((rc = cf_lines_next(in, &line, &n)) > 0) {
        ids.n = 0;
        const char *p = line;
        while (*p) {
            while (*p == ' ' || *p == '\t') p++;
            if (!*p) break;
            char *end;
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p || errno || v < INT32_MIN || v > INT32_MAX || (*end && *end != ' ' && *end != '\t')) {
                fprintf(stderr, "error: <stdin>:%lld: '%.*s' is not a token id\n", (long long)cf_lines_lineno(in),
                        (int)strcspn(p, " \t"), p);
                rc = -2;
                break;
            }
            cf_ids_push(&ids, (int32_t)v);
            p = end;
        }
        if (rc < 0) break;
        size_t len = cf_tokenizer_decode(t, ids.data, ids.n, out, cap);
        if (len == (size_t)-1) {
            fprintf(stderr, "error: <stdin>:%lld: %s\n", (long long)cf_lines_lineno(in), cf_error_message());
            rc = -2;
            break;
        }
        if (len >= cap) {
            while (cap <= len) cap *= 2;
            free(out);
            out = cf_xmalloc(cap);
            cf_tokenizer_decode(t, ids.data, ids.n, out, cap);
        }
        fwrite(out, 1, len, stdout);
        fputc('\n', stdout);
    }
    if (rc == -1) fprintf(stderr, "error: %s\n", cf_error_message());
    cf_lines_close(in);
    cf_ids_free(&ids);
    free(out);
    cf_tokenizer_free(t);
    if (rc == -2) return 2;
    return rc < 0 || fflush(stdout) != 0 ? 1 : 0;
}

/* compare: every kind on the same files, one table row each, then sample lines side by side. */
static int cmd_compare(int argc, char **argv) {
    long vocab = 0, samples = 4;
    const char **files = calloc((size_t)argc + 1, sizeof *files), **texts = calloc((size_t)argc + 1, sizeof *texts);
    int n_files = 0, n_texts = 0, rc = 0;
    for (int i = 0; i < argc && !rc; i++) {
        char *end;
        if (is_help(argv[i])) {
            fputs(usage, stdout);
            free(files);
            free(texts);
            return 0;
        } else if (strcmp(argv[i], "--vocab-size") == 0 && i + 1 < argc) {
            rc = parse_vocab("compare", argv[++i], &vocab);
        } else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc) {
            samples = strtol(argv[++i], &end, 10);
            if (*end || samples < 0 || samples > 1000) rc = bad_usage("--samples must be in [0, 1000], got '%s'", argv[i]);
        } else if (strcmp(argv[i], "--text") == 0 && i + 1 < argc) {
            texts[n_texts++] = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            rc = bad_usage("unknown or incomplete option '%s'", argv[i]);
        } else {
            files[n_files++] = argv[i];
        }
    }
    if (!rc && (!vocab || !n_files)) rc = bad_usage("%s", "compare needs --vocab-size N and at least one input file");
    cf_tokenizer *tok[CF_TOK_N_KINDS] = {0};
    cf_tok_stats st[CF_TOK_N_KINDS];
    for (int k = 0; !rc && k < CF_TOK_N_KINDS; k++) {
        tok[k] = cf_tok_train_measured((cf_tok_kind)k, files, n_files, (int)vocab, 1, &st[k]);
        if (!tok[k]) {
            fprintf(stderr, "error: %s\n", cf_error_message());
            rc = 1;
        }
    }
    if (!rc) {
        printf("%d file(s), %lld lines, %.2f MB, %lld words; vocab %ld\n\n", n_files, (long long)st[0].lines,
               (double)st[0].bytes / 1e6, (long long)st[0].words, vocab);
        printf("| kind | tokens | train s | encode MB/s | tokens/line | learned tokens that are words | words kept whole |\n");
        printf("|---|---|---|---|---|---|---|\n");
        for (int k = 0; k < CF_TOK_N_KINDS; k++)
            printf("| %s | %d | %.2f | %.1f | %.2f | %.1f%% | %.1f%% |\n", cf_tok_kind_name((cf_tok_kind)k),
                   cf_tokenizer_vocab_size(tok[k]), st[k].train_s, st[k].encode_mb_s, st[k].tokens_per_line,
                   100 * st[k].vocab_whole_words, 100 * st[k].words_kept_whole);
        /* Samples: the given texts, else line 1 of each file, then line 2 of each, ... */
        cf_lines **in = calloc((size_t)n_files, sizeof *in);
        char *line_copy = NULL;
        cf_ids ids = {0};
        for (long s = 0; s < (n_texts ? n_texts : samples); s++) {
            const char *text = n_texts ? texts[s] : NULL;
            size_t n = text ? strlen(text) : 0;
            if (!text) {
                int f = (int)(s % n_files);
                if (!in[f]) in[f] = cf_lines_open(files[f]);
                const char *l;
                if (!in[f] || cf_lines_next(in[f], &l, &n) <= 0) continue;
                free(line_copy);
                line_copy = cf_xmalloc(n + 1);
                memcpy(line_copy, l, n + 1);
                text = line_copy;
            }
            printf("\n%.*s\n", (int)n, text);
            for (int k = 0; k < CF_TOK_N_KINDS; k++) {
                ids.n = 0;
                cf_tokenizer_encode(tok[k], text, n, &ids);
                printf("  %-10s (%2lld) ", cf_tok_kind_name((cf_tok_kind)k), (long long)ids.n);
                print_pieces(tok[k], &ids, stdout);
                printf("\n");
            }
        }
        for (int f = 0; f < n_files; f++) cf_lines_close(in[f]);
        free(in);
        free(line_copy);
        cf_ids_free(&ids);
    }
    for (int k = 0; k < CF_TOK_N_KINDS; k++) cf_tokenizer_free(tok[k]);
    free(files);
    free(texts);
    return rc ? rc : fflush(stdout) != 0;
}

int cf_cmd_tokenizer(int argc, char **argv) {
    if (argc < 1 || is_help(argv[0])) {
        fputs(usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (strcmp(argv[0], "encode") == 0) return cmd_encode(argc - 1, argv + 1);
    if (strcmp(argv[0], "decode") == 0) return cmd_decode(argc - 1, argv + 1);
    if (strcmp(argv[0], "compare") == 0) return cmd_compare(argc - 1, argv + 1);
    return bad_usage("unknown subcommand '%s' (train, encode, decode or compare)", argv[0]);
}
