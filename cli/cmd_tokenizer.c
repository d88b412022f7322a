/* cli/cmd_tokenizer.c - `cformer tokenizer train|encode|decode`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "cli/commands.h"

static const char usage[] =
    "usage: cformer tokenizer train --vocab-size N --out tok.json FILE...\n"
    "       cformer tokenizer encode --model tok.json    < text     (one line of ids per line)\n"
    "       cformer tokenizer decode --model tok.json    < ids      (one line of text per line)\n"
    "\n"
    "train   learns a byte-level BPE with N tokens (4 specials + 256 bytes + merges) from every\n"
    "        line of the FILEs (plain or .gz)\n"
    "encode  reads text lines on stdin, writes space-separated token ids\n"
    "decode  reads lines of space-separated ids on stdin, writes the text (special ids print nothing)\n";

static int bad_usage(const char *fmt, const char *arg) {
    fprintf(stderr, "cformer tokenizer: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(try 'cformer tokenizer --help')\n");
    return 2;
}

static bool is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

static int cmd_train(int argc, char **argv) {
    long vocab = 0;
    const char *out = NULL;
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    int n_files = 0;
    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(usage, stdout);
            free(files);
            return 0;
        } else if (strcmp(argv[i], "--vocab-size") == 0 && i + 1 < argc) {
            char *end;
            vocab = strtol(argv[++i], &end, 10);
            if (*end || vocab < CF_BPE_N_BASE || vocab > 1000000) {
                free(files);
                fprintf(stderr, "cformer tokenizer train: --vocab-size must be an integer in [%d, 1000000], got '%s'\n",
                        CF_BPE_N_BASE, argv[i]);
                return 2;
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
    cf_bpe *t = rc ? NULL : cf_bpe_train_files(files, n_files, (int)vocab);
    if (!rc && !t) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        rc = 1;
    }
    if (t && cf_bpe_save(t, out) != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        rc = 1;
    } else if (t) {
        fprintf(stderr, "tokenizer: %d tokens (%d merges) -> %s\n", cf_bpe_vocab_size(t), cf_bpe_n_merges(t), out);
        if (cf_bpe_vocab_size(t) < vocab)
            fprintf(stderr, "tokenizer: note: stopped before %ld tokens, no pair occurs twice any more\n", vocab);
    }
    cf_bpe_free(t);
    free(files);
    return rc;
}

/* Parse "--model FILE" (the only option of encode/decode). */
static cf_bpe *model_arg(int argc, char **argv, const char *sub, int *rc) {
    const char *model = NULL;
    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(usage, stdout);
            *rc = 0;
            return NULL;
        } else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            model = argv[++i];
        } else {
            *rc = bad_usage("unexpected argument '%s'", argv[i]);
            return NULL;
        }
    }
    if (!model) {
        *rc = bad_usage("%s needs --model tok.json", sub);
        return NULL;
    }
    cf_bpe *t = cf_bpe_load(model);
    if (!t) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        *rc = 2;
    }
    return t;
}

static int cmd_encode(int argc, char **argv) {
    int rc = 0;
    cf_bpe *t = model_arg(argc, argv, "encode", &rc);
    if (!t) return rc;
    cf_lines *in = cf_lines_open("-");
    cf_ids ids = {0};
    const char *line;
    size_t n;
    char num[16];
    while ((rc = cf_lines_next(in, &line, &n)) > 0) {
        ids.n = 0;
        cf_bpe_encode(t, line, n, &ids);
        for (int64_t i = 0; i < ids.n; i++) {
            int k = snprintf(num, sizeof num, i ? " %d" : "%d", ids.data[i]);
            fwrite(num, 1, (size_t)k, stdout);
        }
        fputc('\n', stdout);
    }
    if (rc < 0) fprintf(stderr, "error: %s\n", cf_error_message());
    cf_lines_close(in);
    cf_ids_free(&ids);
    cf_bpe_free(t);
    return rc < 0 || fflush(stdout) != 0 ? 1 : 0;
}

static int cmd_decode(int argc, char **argv) {
    int rc = 0;
    cf_bpe *t = model_arg(argc, argv, "decode", &rc);
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
        size_t len = cf_bpe_decode(t, ids.data, ids.n, out, cap);
        if (len == (size_t)-1) {
            fprintf(stderr, "error: <stdin>:%lld: %s\n", (long long)cf_lines_lineno(in), cf_error_message());
            rc = -2;
            break;
        }
        if (len >= cap) {
            while (cap <= len) cap *= 2;
            free(out);
            out = cf_xmalloc(cap);
            cf_bpe_decode(t, ids.data, ids.n, out, cap);
        }
        fwrite(out, 1, len, stdout);
        fputc('\n', stdout);
    }
    if (rc == -1) fprintf(stderr, "error: %s\n", cf_error_message());
    cf_lines_close(in);
    cf_ids_free(&ids);
    free(out);
    cf_bpe_free(t);
    if (rc == -2) return 2;
    return rc < 0 || fflush(stdout) != 0 ? 1 : 0;
}

int cf_cmd_tokenizer(int argc, char **argv) {
    if (argc < 1 || is_help(argv[0])) {
        fputs(usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (strcmp(argv[0], "encode") == 0) return cmd_encode(argc - 1, argv + 1);
    if (strcmp(argv[0], "decode") == 0) return cmd_decode(argc - 1, argv + 1);
    return bad_usage("unknown subcommand '%s' (train, encode or decode)", argv[0]);
}
