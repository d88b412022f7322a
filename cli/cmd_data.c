/* cli/cmd_data.c - `cformer data toy|copy`: write the toy German -> English set or the copy task. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/copy.h"
#include "data/toy.h"
#include "cli/commands.h"

static const char usage[] =
    "usage: cformer data toy --out DIR [--seed S] [--train N] [--valid N] [--test N]\n"
    "       cformer data copy --out DIR [--seed S] [--epochs E] [--train N] [--valid N] [--test N]\n"
    "                         [--vocab V] [--len L]\n"
    "\n"
    "toy: writes DIR/{train,valid,test}.{de,en}: the toy German -> English translation set (see\n"
    "docs/data.md). Defaults: seed 1, 20000 train, 500 valid, 500 test pairs. The output is a pure\n"
    "function of the options; data/toy/ in the repository is `--out data/toy --seed 1`.\n"
    "copy: writes the course's copy task as `cformer train configs/copy.json` generates it in memory:\n"
    "DIR/train.eNNN.txt for each training epoch (new sequences every epoch), DIR/valid.txt and\n"
    "DIR/test.txt, one sequence of L symbol ids a line (the target is the source). Ids: <pad> 0,\n"
    "<bos> 1, <eos> V-1, symbols 2..V-2. Defaults: seed 1, 1 epoch of 3000, 200 valid, 200 test,\n"
    "vocab 11, length 10 (configs/copy.json's data section).\n";

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
    bool copy = strcmp(argv[0], "copy") == 0;
    if (strcmp(argv[0], "toy") != 0 && !copy) {
        fprintf(stderr, "cformer data: unknown subcommand '%s' (try 'cformer data --help')\n", argv[0]);
        return 2;
    }
    cf_toy_opts o = cf_toy_defaults();
    cf_copy_task task = cf_copy_task_default();
    int64_t epochs = 1;
    if (copy) o.n_train = 3000, o.n_valid = 200, o.n_test = 200;
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
            fprintf(stderr, "cformer data %s: %s needs a non-negative integer, got '%s'\n", argv[0], a, val);
            return 2;
        }
        if (copy && strcmp(a, "--epochs") == 0) epochs = v;
        else if (copy && strcmp(a, "--vocab") == 0) task.vocab = v;
        else if (copy && strcmp(a, "--len") == 0) task.len = v;
        else if (strcmp(a, "--seed") == 0) o.seed = (uint64_t)v;
        else if (strcmp(a, "--train") == 0) o.n_train = v;
        else if (strcmp(a, "--valid") == 0) o.n_valid = v;
        else if (strcmp(a, "--test") == 0) o.n_test = v;
        else {
            fprintf(stderr, "cformer data %s: unknown option '%s' (try 'cformer data --help')\n", argv[0], a);
            return 2;
        }
    }
    if (copy) {
        task.seed = o.seed;
        if (!out) {
            fprintf(stderr, "cformer data copy: --out DIR is required (try 'cformer data --help')\n");
            return 2;
        }
        if (cf_copy_task_check(&task) != 0) {
            fprintf(stderr, "error: %s\n", cf_error_message());
            return 2;
        }
        if (cf_copy_write(out, &task, epochs, o.n_train, o.n_valid, o.n_test) != 0) {
            fprintf(stderr, "error: %s\n", cf_error_message());
            return 1;
        }
        fprintf(stderr, "copy task (seed %llu, vocab %lld, length %lld): %lld epochs of %lld, %lld valid, %lld test "
                "sequences -> %s/\n", (unsigned long long)task.seed, (long long)task.vocab, (long long)task.len,
                (long long)epochs, (long long)o.n_train, (long long)o.n_valid, (long long)o.n_test, out);
        return 0;
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
