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
    const char *spin = getenv("GOMP_SPINCOUNT"), *policy = getenv("OMP_WAIT_POLICY");
    printf("OpenMP waiting: GOMP_SPINCOUNT=%s%s%s\n", spin ? spin : "(unset)", policy ? ", OMP_WAIT_POLICY=" : "",
           policy ? policy : "");
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
 * milliseconds) is right for a machine of our own; beside another busy process it is a disaster
 * when the thread count is pinned: the spinning thread burns the time slice its partner needs, and
 * a bench-tiny step went from 57 ms to 1.0-1.5 s on 2 threads. Two counts (docs/performance.md,
 * "Wait policy"):
 * - Threads pinned (`--fixed-threads`, `--set train.adapt_threads=false`): 1000 iterations (~10 us),
 *   which kept that loaded step at 109-114 ms.
 * - Otherwise load following (core/threads.h) runs one thread whenever another process takes a
 *   core, so a second thread spins only on a machine that is free for it. There 1000 iterations
 *   were too few: a worker that waits longer than ~10 us at a barrier or between two parallel
 *   regions goes to sleep, and waking it took ~90 us on this VM, a few hundred times a step.
 *   30000 (~0.3 ms) made bench-tiny 54.8 instead of 64.1 ms quiet (medians of 3 interleaved
 *   rounds), 101 instead of 103 ms beside a busy loop, and bench-small's 1 -> 2 thread speed-up
 *   1.84-1.86x instead of 1.79-1.81x. */
#define CF_SPIN_PINNED "1000"
#define CF_SPIN_FOLLOWING "30000"

static bool threads_pinned(char **argv) {
    for (int i = 1; argv[i]; i++) {
        if (strcmp(argv[i], "--fixed-threads") == 0) return true;
        if (strstr(argv[i], "train.adapt_threads=false") || strstr(argv[i], "train.adapt_threads=0")) return true;
    }
    return false;
}

/* libgomp reads GOMP_SPINCOUNT once, before main, so setting it means starting again: re-exec
 * ourselves with it set, unless the user chose a policy (GOMP_SPINCOUNT, OMP_WAIT_POLICY) or we run
 * under valgrind (the new image would leave it). A failed exec just keeps the default. Under mpirun
 * this is harmless: the exec keeps the process id and the environment the launcher gave, and
 * happens before MPI_Init (cf_train calls it), so the launcher sees one process that started a
 * little later. A config file's train.adapt_threads is not read here: pinned runs on a shared
 * machine set GOMP_SPINCOUNT=1000 themselves (docs/training.md). */
static void set_wait_policy(char **argv) {
    if (getenv("GOMP_SPINCOUNT") || getenv("OMP_WAIT_POLICY")) return;
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload")) return;
    if (setenv("GOMP_SPINCOUNT", threads_pinned(argv) ? CF_SPIN_PINNED : CF_SPIN_FOLLOWING, 1) != 0) return;
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
