/* cli/cmd_data.c - `cformer data toy`: write the toy German -> English set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/toy.h"
#include "cli/commands.h"

static const char usage[] =
    "usage: cformer data toy --out DIR [--seed S] [--train N] [--valid N] [--test N]\n"
    "\n"
    "Writes DIR/{train,valid,test}.{de,en}: the toy German -> English translation set (see\n"
    "docs/data.md). Defaults: seed 1, 20000 train, 500 valid, 500 test pairs. The output is a pure\n"
    "function of the options; data/toy/ in the repository is `--out data/toy --seed 1`.\n";

static bool parse_count(const char *s, int64_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || end == s || v < 0 || v > 100000000) return false;
    *out = v;
    return true;
}

int cf_cmd_data(int argc, char **argv) {
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        fputs(usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "toy") != 0) {
        fprintf(stderr, "cformer data: unknown subcommand '%s' (try 'cformer data --help')\n", argv[0]);
        return 2;
    }
    cf_toy_opts o = cf_toy_defaults();
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int64_t v = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "cformer data toy: '%s' needs a value (try 'cformer data --help')\n", a);
            return 2;
        }
        const char *val = argv[++i];
        if (strcmp(a, "--out") == 0) {
            out = val;
            continue;
        }
        if (!parse_count(val, &v)) {
            fprintf(stderr, "cformer data toy: %s needs a non-negative integer, got '%s'\n", a, val);
            return 2;
        }
        if (strcmp(a, "--seed") == 0) o.seed = (uint64_t)v;
        else if (strcmp(a, "--train") == 0) o.n_train = v;
        else if (strcmp(a, "--valid") == 0) o.n_valid = v;
        else if (strcmp(a, "--test") == 0) o.n_test = v;
        else {
            fprintf(stderr, "cformer data toy: unknown option '%s' (try 'cformer data --help')\n", a);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "cformer data toy: --out DIR is required (try 'cformer data --help')\n");
        return 2;
    }
    if (cf_toy_write(out, &o) != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        return 1;
    }
    fprintf(stderr, "toy set (seed %llu): %lld train, %lld valid, %lld test pairs -> %s/\n", (unsigned long long)o.seed,
            (long long)o.n_train, (long long)o.n_valid, (long long)o.n_test, out);
    return 0;
}
