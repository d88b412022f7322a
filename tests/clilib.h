/* tests/clilib.h - running the real build/cformer from a test, for the hostile-input and fault
 * suites (tests/test_hostile.c, tests/test_faults.c).
 *
 *     cli_result r = cli_run(&(cli_opts){.env = {"CF_FAULT_INJECT=12+"}}, "train", cfg, "--out", dir, NULL);
 *     CHECK_EXIT(r, 1);                       // the exit code, not a signal
 *     CHECK_CLEAN(r);                         // no sanitizer report on stderr
 *     CHECK(strstr(r.err, "No space left on device"));
 *     cli_result_free(&r);
 *
 * The binary is the one of this test binary's build directory (BUILD/tests/unit ->
 * BUILD/cformer: test_cformer_path, tests/testlib.h), so `make asan`, `make lsan` and `make tsan` run their own CLI. Output goes to
 * files under one temporary directory, removed at exit, which also holds the small data files.
 */
#ifndef CF_TESTS_CLILIB_H
#define CF_TESTS_CLILIB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum { CLI_MAX_ENV = 8 };

typedef struct cli_opts {
    const char *stdin_path;         /* NULL: /dev/null */
    const char *stdout_path;        /* NULL: a file of ours, read into the result */
    const char *env[CLI_MAX_ENV];   /* "NAME=value" added to the environment */
    const char *ulimit_v_kib;       /* run under `ulimit -v` of this many KiB */
} cli_opts;

typedef struct cli_result {
    int code;                       /* exit code; 128 + N when killed by signal N; -1 timed out */
    char *out, *err;
} cli_result;

typedef struct cli_proc {
    pid_t pid;
    char *out_path, *err_path;
} cli_proc;

/* Our temporary directory (made on first use; removed at exit). */
const char *cli_root(void);
/* The first n lines of src into dst. */
bool cli_head_lines(const char *src, const char *dst, int n);

/* `cformer ARGS...` (NULL-terminated, after the binary) with options o (may be NULL). */
cli_result cli_run(const cli_opts *o, const char *arg0, ...) __attribute__((sentinel));
/* The same from an argv array (n arguments after the binary). */
cli_result cli_runv(const cli_opts *o, int n, const char *const *args);
cli_proc cli_start(const cli_opts *o, int n, const char *const *args);
cli_result cli_finish(cli_proc *p);
void cli_result_free(cli_result *r);

/* The small tiny.json run every fault test shares: its data under the root (training 1000 pairs,
 * validation and test 20) and the --set overrides: 8 steps, a checkpoint and an evaluation every
 * 4, a log line every 2, one thread. args receives "train", config, "--out", dir, then "--set",
 * key=value pairs, then extra (NULL-terminated, may be NULL), then "--resume" if resume; returns
 * the count. The strings are static or owned by the caller's `storage` (free with cli_args_free). */
enum { CLI_MAX_ARGS = 64 };
typedef struct cli_args {
    const char *v[CLI_MAX_ARGS];
    char *owned[CLI_MAX_ARGS];
    int n, n_owned;
} cli_args;
void cli_train_args(cli_args *a, const char *dir, bool resume, const char *const *extra);
void cli_args_free(cli_args *a);

/* The step latest names in dir, or -1. */
int cli_latest_step(const char *dir);
/* files a and b have the same bytes */
bool cli_same_file(const char *a, const char *b);
/* metrics.jsonl of dir as "train STEP LOSS LR" / "eval STEP LOSS BLEU" lines (timing left out). */
char *cli_metrics_digest(const char *dir);
/* No sanitizer report (ASan, UBSan, LSan, TSan) and no assertion on stderr. */
bool cli_clean_stderr(const char *err);

#define CHECK_EXIT(r, want)                                                                       \
    CHECK_MSG((r).code == (want), "exit code %d, want %d\n--- stdout:\n%.3000s--- stderr:\n%.3000s", (r).code, \
              (want), (r).out, (r).err)
#define CHECK_CLEAN(r) CHECK_MSG(cli_clean_stderr((r).err), "stderr has a sanitizer report:\n%.4000s", (r).err)

#endif
