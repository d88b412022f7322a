/* cli/cmd_train.c - `cformer train CONFIG [--out DIR] [--resume] [--set key.path=value]...` */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "train/copy_task.h"
#include "train/trainer.h"

static const char *usage =
    "usage: cformer train CONFIG [--out DIR] [--resume] [--set key.path=value]... [--quiet]\n"
    "\n"
    "Train the model that CONFIG (JSON, see docs/config.md) describes, into DIR (default runs/<name>):\n"
    "config.json, tokenizer.json, metrics.jsonl, curves.svg and checkpoints/. Ctrl-C writes a\n"
    "checkpoint and stops; --resume continues from DIR/checkpoints/latest, bit-identically.\n"
    "  --out DIR            run directory\n"
    "  --resume             continue the run in DIR\n"
    "  --set key.path=v     override a config key (repeatable), e.g. --set train.max_steps=100\n"
    "  --quiet              no progress output\n"
    "With data.task \"copy\" (configs/copy.json) it runs the course's copy task instead: it stops when\n"
    "every validation sequence is copied exactly by greedy decoding (docs/course.md).\n";

/* data.task "copy": the copy task's own loop (train/copy_task.h); 0 ran, -1 not a copy config. */
static int run_copy_task(const cf_train_args *a, int *code) {
    cf_config cfg;
    if (cf_config_load(&cfg, a->config_path, a->n_sets, a->sets) != 0) return -1; /* cf_train reports it */
    if (cfg.data.task != CF_TASK_COPY) {
        cf_config_free(&cfg);
        return -1;
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s%s", a->out_dir ? "" : "runs/", a->out_dir ? a->out_dir : cfg.name);
    cf_copy_result r;
    *code = a->resume ? 2 : cf_copy_train(&cfg, dir, a->quiet, &r);
    if (a->resume) fprintf(stderr, "error: the copy task has no checkpoints to resume (a run takes seconds)\n");
    else if (*code != 0) fprintf(stderr, "error: %s\n", cf_error_message());
    cf_config_free(&cfg);
    return 0;
}

int cf_cmd_train(int argc, char **argv) {
    cf_train_args a = {0};
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage, stdout);
            free(sets);
            return 0;
        } else if (strcmp(arg, "--resume") == 0) {
            a.resume = true;
        } else if (strcmp(arg, "--quiet") == 0) {
            a.quiet = true;
        } else if ((strcmp(arg, "--out") == 0 || strcmp(arg, "--set") == 0) && i + 1 < argc) {
            if (arg[2] == 'o') a.out_dir = argv[++i];
            else sets[a.n_sets++] = argv[++i];
        } else if (strncmp(arg, "--set=", 6) == 0) {
            sets[a.n_sets++] = argv[i] + 6;
        } else if (strncmp(arg, "--out=", 6) == 0) {
            a.out_dir = arg + 6;
        } else if (arg[0] == '-') {
            fprintf(stderr, "cformer train: unknown or incomplete option '%s'\n%s", arg, usage);
            free(sets);
            return 2;
        } else if (!a.config_path) {
            a.config_path = arg;
        } else {
            fprintf(stderr, "cformer train: unexpected argument '%s'\n%s", arg, usage);
            free(sets);
            return 2;
        }
    }
    if (!a.config_path) {
        fprintf(stderr, "cformer train: missing CONFIG\n%s", usage);
        free(sets);
        return 2;
    }
    a.sets = sets;
    int rc;
    if (run_copy_task(&a, &rc) != 0) rc = cf_train(&a);
    free(sets);
    return rc;
}
