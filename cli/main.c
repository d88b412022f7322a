/* cli/main.c - build/cformer: dispatch to subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/interrupt.h"
#include "core/threads.h"
#include "dist/dist.h"
#include "cli/cli.h"
#include "cli/commands.h"

static int cmd_help(int argc, char **argv);

static int cmd_version(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cf_threads_init(0);
    printf("cformer %s (OpenBLAS %s threading, float32, %s)\n", CF_VERSION, cf_threads_blas_model(),
           cf_dist_compiled() ? "MPI data-parallel training" : "no MPI: built without MPI=1");
    if (cf_dist_compiled()) printf("MPI: %s\n", cf_dist_library());
    return 0;
}

/* One line per subcommand; `cformer help` prints this table. */
static const cf_cli_command commands[] = {
    {"help", cmd_help, "list the subcommands"},
    {"version", cmd_version, "print the version, the linked BLAS threading model and MPI (if built with it)"},
    {"train", cf_cmd_train, "train a model from a JSON config (resumable)"},
    {"eval", cf_cmd_eval, "loss, perplexity and BLEU of a run or checkpoint"},
    {"translate", cf_cmd_translate, "translate stdin to stdout with a run or checkpoint"},
    {"info", cf_cmd_info, "config, parameter count, step and best metric of a run"},
    {"bleu", cf_cmd_bleu, "corpus BLEU exactly as sacrebleu computes it"},
    {"config", cf_cmd_config, "validate a run config and print it with every default filled in"},
    {"tokenizer", cf_cmd_tokenizer, "train a tokenizer (bpe, wordpiece, unigram), encode, decode, compare"},
    {"data", cf_cmd_data, "generate the toy German -> English data set or the copy task"},
    {"bench", cf_cmd_bench, "time training steps of a config's model on synthetic batches; bench attention: the "
                            "variants; bench decode: decoding of a run or config"},
    {"memory", cf_cmd_memory, "parameters, weight and KV-cache bytes of a config or a preset LLM (Qwen3, DeepSeek)"},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static int cmd_help(int argc, char **argv) {
    (void)argc;
    (void)argv;
    printf("usage: cformer COMMAND [ARGS...]   (cformer COMMAND --help for details)\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) printf("  %-10s %s\n", commands[i].name, commands[i].summary);
    return 0;
}

/* How long an idle OpenMP thread spins before it sleeps. libgomp's default (300000 iterations,
 * milliseconds) is right for a machine of our own; beside another busy process it is a disaster:
 * the spinning thread burns the time slice its partner needs, and a bench-tiny step went from 57 ms
 * to 1.0-1.5 s on 2 threads. 1000 iterations (tens of microseconds) cost ~1% on a quiet machine and
 * kept the same loaded step at 160-210 ms (docs/performance.md, "Load"); with load following
 * (core/threads.h) the trainer then drops to the free cores. */
#define CF_GOMP_SPINCOUNT "1000"

/* libgomp reads GOMP_SPINCOUNT once, before main, so setting it means starting again: re-exec
 * ourselves with it set, unless the user chose a policy (GOMP_SPINCOUNT, OMP_WAIT_POLICY) or we run
 * under valgrind (the new image would leave it). A failed exec just keeps the default. Under mpirun
 * this is harmless: the exec keeps the process id and the environment the launcher gave, and
 * happens before MPI_Init (cf_train calls it), so the launcher sees one process that started a
 * little later. */
static void set_wait_policy(char **argv) {
    if (getenv("GOMP_SPINCOUNT") || getenv("OMP_WAIT_POLICY")) return;
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload")) return;
    if (setenv("GOMP_SPINCOUNT", CF_GOMP_SPINCOUNT, 1) != 0) return;
    execv("/proc/self/exe", argv);
}

int main(int argc, char **argv) {
    /* Until the trainer installs its handler a Ctrl-C waits (pending, across the re-exec too),
     * so that one at start-up also ends in a checkpoint and a clean exit; other commands keep
     * the default action. */
    cf_interrupt_block();
    set_wait_policy(argv);
    if (argc < 2 || strcmp(argv[1], "train") != 0) cf_interrupt_unblock();
    if (argc < 2) {
        cmd_help(0, NULL);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) return cmd_help(0, NULL);
    if (strcmp(argv[1], "--version") == 0) return cmd_version(0, NULL);
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "cformer: unknown command '%s' (try 'cformer help')\n", argv[1]);
    return 2;
}
