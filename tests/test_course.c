/* tests/test_course.c - the course chapter's practices end to end through build/cformer: the copy
 * task reaches exact copies, each new model option (relative positions, QK-norm, MoE) trains on
 * the toy set, `cformer memory` prints the lecture's numbers, `cformer bench attention` its table.
 *
 * Runs use one thread (see tests/test_train_e2e.c: two OpenMP threads on a busy 2-core machine
 * are slower for these tiny models). No assertion depends on time.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/copy.h"
#include "tests/test.h"
#include "tests/testlib.h"

/* ---- running build/cformer ---- */

/* One temporary directory for every run of this file, removed at exit. */
static char root[256];

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

static void remove_root(void) {
    if (root[0]) nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* root/name (static buffer per call site: copy it if needed). */
static const char *under_root(const char *name, char *buf, size_t n) {
    if (!root[0]) {
        snprintf(root, sizeof root, "%s", test_tmpdir("course"));
        atexit(remove_root);
    }
    snprintf(buf, n, "%s/%s", root, name);
    return buf;
}

typedef struct run_out {
    int code;
    char *out;                  /* stdout and stderr, malloc'ed */
} run_out;

/* cformer args[0] args[1]... (NULL-terminated), stdout and stderr captured together. */
static run_out run_argv(const char *const *args) {
    const char *argv[64] = {test_cformer_path()};
    int n = 1;
    for (; n < 63 && args[n - 1]; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    char log[512];
    under_root("out.txt", log, sizeof log);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "w", stdout) || dup2(fileno(stdout), 2) < 0) _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    run_out r = {.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)};
    r.out = test_read_file(log, NULL);
    if (!r.out) r.out = strdup("");
    return r;
}

#define run_cformer(...) run_argv((const char *const[]){__VA_ARGS__})

#define CHECK_RUN(r, want) CHECK_MSG((r).code == (want), "exit code %d, want %d; output:\n%s", (r).code, (want), (r).out)

/* The numbers after `"key":` in the JSON lines of path that contain `tag`, in order (at most max). */
static int json_values(const char *path, const char *tag, const char *key, double *v, int max) {
    char *text = test_read_file(path, NULL), pat[64];
    int n = 0;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    for (char *line = text; line && *line && n < max;) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        char *at = strstr(line, pat);
        if (strstr(line, tag) && at) v[n++] = strtod(at + strlen(pat), NULL);
        line = end ? end + 1 : NULL;
    }
    free(text);
    return n;
}

/* ---- the copy task ---- */

/* configs/copy.json (the practice's model: d_model 32, 2+2 layers, 4 heads, d_ff 64, Noam warmup
 * 400) copies every validation sequence exactly by greedy decoding, then the test set too. */
TEST(course_copy_task_reaches_exact_copies) {
    char dir[512];
    under_root("copy-run", dir, sizeof dir);
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/configs/copy.json", CF_SOURCE_DIR);
    run_out r = run_cformer("train", cfg, "--out", dir, "--set", "train.threads=1", NULL);
    CHECK_RUN(r, 0);
    CHECK_MSG(strstr(r.out, "valid 100.00% exact copies | test 100.00% (200/200)"), "not every copy exact:\n%s", r.out);
    char metrics[600];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
    double exact[128], loss[128];
    int n_eval = json_values(metrics, "\"eval\"", "exact", exact, 128);
    int n_train = json_values(metrics, "\"train\"", "loss", loss, 128);
    CHECK(n_eval >= 2 && exact[n_eval - 1] == 100.0 && exact[n_eval - 2] == 100.0 && exact[0] < 100.0);
    CHECK(n_train >= 2 && loss[n_train - 1] < 0.1 * loss[0]);
    free(r.out);
}

/* `cformer data copy` writes what the trainer generates: each line is cf_copy_sequence's. */
TEST(course_data_copy_files_are_the_training_data) {
    char dir[512];
    under_root("copy-data", dir, sizeof dir);
    run_out r = run_cformer("data", "copy", "--out", dir, "--epochs", "2", "--train", "5", "--valid", "3", "--test",
                            "3", "--seed", "7", NULL);
    CHECK_RUN(r, 0);
    free(r.out);
    cf_copy_task t = cf_copy_task_default();
    t.seed = 7;
    const struct { const char *file; uint64_t epoch; int n; } sets[] = {
        {"train.e000.txt", 0, 5}, {"train.e001.txt", 1, 5}, {"valid.txt", CF_COPY_VALID, 3}, {"test.txt", CF_COPY_TEST, 3}};
    for (int s = 0; s < 4; s++) {
        char path[600], want[256];
        snprintf(path, sizeof path, "%s/%s", dir, sets[s].file);
        char *text = test_read_file(path, NULL), *p = text;
        CHECK_MSG(text, "%s missing", path);
        for (int i = 0; text && i < sets[s].n; i++) {
            int32_t x[10];
            cf_copy_sequence(&t, sets[s].epoch, i, x);
            int k = 0;
            for (int j = 0; j < 10; j++) {
                CHECK(x[j] >= CF_COPY_FIRST_SYMBOL && x[j] <= 8 + CF_COPY_FIRST_SYMBOL - 1);
                k += snprintf(want + k, sizeof want - (size_t)k, j ? " %d" : "%d", x[j]);
            }
            snprintf(want + k, sizeof want - (size_t)k, "\n");
            CHECK_MSG(strncmp(p, want, strlen(want)) == 0, "%s line %d differs from the generator", sets[s].file, i + 1);
            p += strlen(want);
        }
        free(text);
    }
    int32_t a[10], b[10];
    cf_copy_sequence(&t, 0, 0, a);
    cf_copy_sequence(&t, 1, 0, b);
    CHECK_MSG(memcmp(a, b, sizeof a) != 0, "epochs 0 and 1 start with the same sequence: not regenerated");
}

/* ---- each new option trains on the toy set ---- */

/* configs/tiny.json (d_model 32, 1+1 layers, BPE 300) for 60 updates with the option: the loss
 * of the last update is at most 80% of the first's. */
static void check_option_trains(const char *what, const char *const *sets) {
    static int runs;
    char dir[512], cfg[512], name[32];
    snprintf(name, sizeof name, "option-%d", runs++);
    under_root(name, dir, sizeof dir);
    snprintf(cfg, sizeof cfg, "%s/configs/tiny.json", CF_SOURCE_DIR);
    const char *argv[40] = {"train", cfg, "--out", dir, "--quiet"};
    int n = 5;
    /* 60 updates logged one by one, one evaluation of 10 sentences, no final test */
    const char *common[] = {"train.threads=1", "train.log_every=1", "train.eval_every=60", "train.save_every=60",
                            "train.eval_max_sentences=10", "data.test_src=null", "data.test_tgt=null", NULL};
    for (int i = 0; common[i]; i++) argv[n++] = "--set", argv[n++] = common[i];
    for (int i = 0; sets[i]; i++) argv[n++] = "--set", argv[n++] = sets[i];
    argv[n] = NULL;
    run_out r = run_argv(argv);
    CHECK_MSG(r.code == 0, "%s: exit code %d:\n%s", what, r.code, r.out);
    char metrics[600];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
    double loss[64];
    int k = json_values(metrics, "\"train\"", "loss", loss, 64);
    CHECK_MSG(k == 60 && loss[59] <= 0.8 * loss[0], "%s: %d train lines, loss %g -> %g (want a 20%% fall)", what, k,
              k ? loss[0] : 0, k ? loss[k - 1] : 0);
    if (getenv("CF_TEST_VERBOSE")) printf("     %-32s loss %.4f -> %.4f\n", what, loss[0], loss[k - 1]);
    free(r.out);
}

TEST(course_new_options_train_on_toy) {
    check_option_trains("relative positions, per head", (const char *[]){"model.pos_encoding=relative",
                        "model.rel_clip=8", "model.rel_per_head=true", NULL});
    check_option_trains("qk_norm with rope, gqa", (const char *[]){"model.qk_norm=true", "model.pos_encoding=rope",
                        "model.attention=gqa", "model.n_kv_heads=1", NULL});
    check_option_trains("moe top-2 of 4, a shared expert", (const char *[]){"model.num_experts=4",
                        "model.num_experts_per_token=2", "model.n_shared_experts=1", "model.moe_d_ff=32", NULL});
}

/* ---- the memory lecture ---- */

/* The lecture's example, Qwen3-32B in bf16 with 2048 tokens and MHA: 64 GB of weights (its 32 B
 * parameters by name), 42.9 GB of KV cache at batch 16 and 85.9 GB at batch 32 (the lecture
 * truncates 85.899 to 85.8 and prints 149.8 for 64 + 85.9), and what GQA and MLA make of it. */
TEST(course_memory_reproduces_the_lecture) {
    run_out r = run_cformer("memory", "--preset", "qwen3-32b", "--dtype", "bf16", "--seq-len", "2048", "--attention",
                            "mha", "--batch", "16", NULL);
    CHECK_RUN(r, 0);
    const char *want16[] = {"parameters      32.76 B counted", "64.0 GB from the name's 32.0 B",
                            "KV cache        1,310,720 bytes per token", "KV cache        42.9 GB for 16 x 2048 tokens",
                            "106.9 GB with the name's", "gqa (8 KV heads) 8.6 GB", "mla (512 + 64) 2.4 GB", NULL};
    for (int i = 0; want16[i]; i++) CHECK_MSG(strstr(r.out, want16[i]), "missing \"%s\" in:\n%s", want16[i], r.out);
    free(r.out);
    r = run_cformer("memory", "--preset", "qwen3-32b", "--dtype", "bf16", "--seq-len", "2048", "--attention", "mha",
                    "--batch", "32", NULL);
    CHECK_RUN(r, 0);
    const char *want32[] = {"KV cache        85.9 GB for 32 x 2048 tokens (85,899,345,920 bytes)",
                            "149.9 GB with the name's", "gqa (8 KV heads) 17.2 GB", NULL};
    for (int i = 0; want32[i]; i++) CHECK_MSG(strstr(r.out, want32[i]), "missing \"%s\" in:\n%s", want32[i], r.out);
    free(r.out);
    /* the preset's own GQA, and a MoE preset's active parameters */
    r = run_cformer("memory", "--preset", "qwen3-30b-a3b", "--batch", "8", "--seq-len", "4096", NULL);
    CHECK_RUN(r, 0);
    CHECK_MSG(strstr(r.out, "attention gqa (the preset's own)") && strstr(r.out, "30.53 B counted") &&
                  strstr(r.out, "active          3.35 B") && strstr(r.out, "KV cache        98,304 bytes per token"),
              "qwen3-30b-a3b:\n%s", r.out);
    free(r.out);
    r = run_cformer("memory", "--preset", "deepseek-v3", "--dtype", "fp8", NULL);
    CHECK_RUN(r, 2);
    free(r.out);
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/configs/toy.json", CF_SOURCE_DIR);
    r = run_cformer("memory", cfg, "--attention", "gqa", "--kv-heads", "2", NULL);
    CHECK_RUN(r, 0);
    CHECK_MSG(strstr(r.out, "gqa attention (2 KV heads)") && strstr(r.out, "per target token"), "toy:\n%s", r.out);
    free(r.out);
}

/* `cformer bench attention` prints the practice's five rows; at a short length it takes
 * milliseconds. Parameters at d_model 512, 8 heads: MHA 4 (512 x 512 + 512), MQA and GQA with
 * K/V of 64, 128, 256 columns, and MLA with cf_mla_dims' defaults. */
TEST(course_bench_attention_table) {
    run_out r = run_cformer("bench", "attention", "--seq-len", "8", "--reps", "1", "--threads", "1", NULL);
    CHECK_RUN(r, 0);
    const char *rows[] = {"| MHA         |    1050624 |", "| MQA         |     590976 |", "| GQA 2 KV    |     656640 |",
                          "| GQA 4 KV    |     787968 |", "| MLA         |    1067808 |", NULL};
    for (int i = 0; rows[i]; i++) CHECK_MSG(strstr(r.out, rows[i]), "missing \"%s\" in:\n%s", rows[i], r.out);
    CHECK(strstr(r.out, "4096 |        2048 | 100.0%") && strstr(r.out, "1152 |         576 |  28.1%"));
    free(r.out);
}
