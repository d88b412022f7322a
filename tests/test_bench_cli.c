/* tests/test_bench_cli.c - `cformer bench CONFIG` through build/cformer: the report's fields and
 * the --scaling mode (1 thread and N interleaved in one process). Nothing here depends on time:
 * only that the figures exist, are positive and that the timed steps allocate nothing.
 */
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
