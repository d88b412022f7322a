/* tests/test_bench_cli.c - `cformer bench CONFIG` through build/cformer: the report's fields and
 * the --scaling mode (1 thread and N interleaved in one process). Nothing here depends on time:
 * only that the figures exist, are positive and that the timed steps allocate nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tests/clilib.h"
#include "tests/test.h"
#include "tests/testlib.h"

static double field(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

TEST(bench_scaling_times_both_counts_in_one_run) {
    char *cfg = test_fmt("%s/configs/tiny.json", CF_SOURCE_DIR);
    cli_result r = cli_run(NULL, "bench", cfg, "--steps", "4", "--warmup", "1", "--threads", "2", "--scaling", "--json",
                           NULL);
    CHECK_MSG(r.code == 0, "exit %d\n%s", r.code, r.err);
    cJSON *o = cJSON_Parse(r.out);
    CHECK_MSG(o, "not one JSON object:\n%s", r.out);
    if (o) {
        CHECK(field(o, "threads") == 2 && cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "adaptive")));
        const char *positive[] = {"step_ms", "scaling_step_ms_1_thread", "scaling_speedup", "scaling_pair_median",
                                  "scaling_pair_min", "scaling_tiled_gemm_speedup"};
        for (size_t i = 0; i < sizeof positive / sizeof *positive; i++)
            CHECK_MSG(field(o, positive[i]) > 0, "%s is %g in:\n%s", positive[i], field(o, positive[i]), r.out);
        CHECK(field(o, "scaling_pair_min") <= field(o, "scaling_pair_median") &&
              field(o, "scaling_pair_median") <= field(o, "scaling_pair_max"));
        CHECK_MSG(field(o, "arena_mallocs") == 0 && field(o, "heap_delta_bytes") == 0,
                  "switching the thread count between steps allocated:\n%s", r.out);
        cJSON_Delete(o);
    }
    cli_result_free(&r);

    /* the text report, with the per-op table of both counts */
    r = cli_run(NULL, "bench", cfg, "--steps", "2", "--warmup", "1", "--threads", "2", "--scaling", "--profile", NULL);
    CHECK_MSG(r.code == 0 && strstr(r.out, "1 -> 2 threads") && strstr(r.out, "1 thread ms") &&
                  strstr(r.out, "linear_cross_entropy"),
              "exit %d\n%s%s", r.code, r.out, r.err);
    cli_result_free(&r);

    /* one thread has nothing to compare with: a clear error, exit 1 */
    r = cli_run(NULL, "bench", cfg, "--steps", "2", "--warmup", "1", "--threads", "1", "--scaling", NULL);
    CHECK_MSG(r.code == 1 && strstr(r.err, "--scaling") && strstr(r.err, "--threads 2"), "exit %d\n%s", r.code, r.err);
    cli_result_free(&r);
    free(cfg);
}

/* The command line picks libgomp's spin count (cli/main.c): 30000 when load following runs, 1000
 * with the threads pinned, and the user's own setting always wins. `cformer version` prints it. */
static char *capture(const char *cmd) {
    FILE *p = popen(cmd, "r");
    if (!p) return strdup("");
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    for (size_t got; (got = fread(buf + n, 1, cap - 1 - n, p)) > 0;) {
        n += got;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    pclose(p);
    return buf;
}

TEST(cli_spin_count_follows_the_thread_mode) {
    const struct { const char *env, *args, *want; } cases[] = {
        {"env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY", "", "GOMP_SPINCOUNT=30000\n"},
        {"env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY", " --fixed-threads", "GOMP_SPINCOUNT=1000\n"},
        {"env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY", " --set train.adapt_threads=false", "GOMP_SPINCOUNT=1000\n"},
        {"env GOMP_SPINCOUNT=777", " --fixed-threads", "GOMP_SPINCOUNT=777\n"},
        {"env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=passive", "", "GOMP_SPINCOUNT=(unset), OMP_WAIT_POLICY=passive\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *cmd = test_fmt("%s '%s' version%s 2>&1", cases[i].env, test_cformer_path(), cases[i].args);
        char *out = capture(cmd);
        CHECK_MSG(strstr(out, cases[i].want), "%s: want %s in:\n%s", cmd, cases[i].want, out);
        free(out);
        free(cmd);
    }
}
