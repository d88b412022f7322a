/* tests/test_train_e2e.c - end-to-end tests of the real `cformer` binary: a training run and its
 * run directory, eval/translate/info on it, bit-identical resume (after a planned stop, SIGKILLs
 * at random and chosen moments, and Ctrl-C), determinism, and the refusals (exit code 2).
 *
 * The binary is the one of this test binary's build directory (BUILD/tests/unit -> BUILD/cformer),
 * so `make asan` tests the sanitized CLI. Every run is configs/tiny.json shrunk with --set to 16
 * steps, with dropout on (so that resume also covers the dropout masks) and 40-line valid/test
 * files; run A, the reference, is trained once and shared. The runs use one thread: on this shared
 * 2-core machine two OpenMP threads make the tiny model up to 30x slower when the other core is
 * busy; the determinism test runs two threads. Everything lives under one temporary directory
 * that is removed at exit.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/rng.h"
#include "core/safetensors.h"
#include "tests/test.h"
#include "tests/testlib.h"

#define STEPS 16
/* Generous: an unloaded run takes under a second, but the machine is shared and asan is slower. */
#define TIMEOUT_S 600.0

/* ---- small utilities ---- */



static bool write_text(const char *path, const char *text) { return test_write_file(path, text, strlen(text)); }

static bool exists(const char *path) { return access(path, F_OK) == 0; }

/* The first n lines of src copied to dst. */
static bool head_lines(const char *src, const char *dst, int n) {
    char *text = test_read_file(src, NULL);
    if (!text) return false;
    char *p = text;
    for (int i = 0; i < n && p; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (p) *p = 0;
    bool ok = write_text(dst, text);
    free(text);
    return ok;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

static void rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* ---- where things are ---- */

static char root[256];          /* our temporary directory, removed at exit */

static void remove_root(void) {
    if (root[0]) rm_tree(root);
}

/* The root directory, made on first use with the small valid/test files every run uses. */
static const char *root_dir(void) {
    if (root[0]) return root;
    snprintf(root, sizeof root, "%s", test_tmpdir("e2e"));
    atexit(remove_root);
    const char *names[] = {"valid.de", "valid.en", "test.de", "test.en"};
    for (int i = 0; i < 4; i++) {
        char *src = test_fmt("%s/data/toy/%s", CF_SOURCE_DIR, names[i]), *dst = test_fmt("%s/%s", root, names[i]);
        CHECK_MSG(head_lines(src, dst, 40), "cannot copy %s to %s", src, dst);
        free(src);
        free(dst);
    }
    return root;
}

/* ---- running a command ---- */

typedef struct argv_list {
    char *v[64];
    int n;
} argv_list;

static void arg(argv_list *a, char *owned) {
    if (a->n >= 63) abort();
    a->v[a->n++] = owned;
    a->v[a->n] = NULL;
}

static void argv_free(argv_list *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    a->n = 0;
}

typedef struct proc {
    pid_t pid;
    char *out_path, *err_path;
    int code;                   /* exit code, 128 + signal if killed, -1 on timeout */
} proc;

/* Start argv with stdout and stderr going to files under the root, stdin from stdin_path or
 * /dev/null. */
static proc start(const argv_list *a, const char *stdin_path) {
    static int counter;
    proc p = {.code = -1};
    p.out_path = test_fmt("%s/cmd-%03d.out", root_dir(), counter);
    p.err_path = test_fmt("%s/cmd-%03d.err", root_dir(), counter++);
    fflush(stdout);
    p.pid = fork();
    if (p.pid == 0) {
        int in = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
        int out = open(p.out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(p.err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0) _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(a->v[0], a->v);
        _exit(127);
    }
    CHECK_MSG(p.pid > 0, "fork failed: %s", strerror(errno));
    return p;
}

static int decode_status(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

/* Waits up to timeout_s; true (and p->code set) if the process ended. */
static bool wait_for(proc *p, double timeout_s) {
    double t_end = cf_now_s() + timeout_s;
    for (;;) {
        int status;
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid) {
            p->code = decode_status(status);
            return true;
        }
        if (r < 0 || cf_now_s() >= t_end) return false;
        test_sleep_s(0.002);
    }
}

static void kill_and_reap(proc *p, int sig) {
    kill(p->pid, sig);
    int status;
    if (waitpid(p->pid, &status, 0) == p->pid) p->code = decode_status(status);
}

typedef struct result {
    int code;
    char *out, *err;
} result;

static result finish(proc *p) {
    if (!wait_for(p, TIMEOUT_S)) {
        kill_and_reap(p, SIGKILL);
        p->code = -1;
        test_fail(__FILE__, __LINE__, "timed out after %.0f s", TIMEOUT_S);
    }
    result r = {.code = p->code, .out = test_read_file(p->out_path, NULL), .err = test_read_file(p->err_path, NULL)};
    if (!r.out) r.out = strdup("");
    if (!r.err) r.err = strdup("");
    free(p->out_path);
    free(p->err_path);
    return r;
}

static void result_free(result *r) {
    free(r->out);
    free(r->err);
}

/* Runs argv to completion (consumes it). */
static result run(argv_list *a, const char *stdin_path) {
    proc p = start(a, stdin_path);
    argv_free(a);
    return finish(&p);
}

/* `cformer train tiny.json --out dir [--resume] --set ...` with the shared overrides, then the
 * extra ones (later --set wins); extra is NULL-terminated (may be NULL). Started, not waited for. */
static proc start_train(const char *dir, bool resume, const char *const *extra) {
    const char *r = root_dir();
    argv_list a = {0};
    arg(&a, strdup(test_cformer_path()));
    arg(&a, strdup("train"));
    arg(&a, test_fmt("%s/configs/tiny.json", CF_SOURCE_DIR));
    arg(&a, strdup("--out"));
    arg(&a, strdup(dir));
    if (resume) arg(&a, strdup("--resume"));
    /* Four evaluations: the BLEU of so short a run stays flat, so all but the first are "not
     * better" and a resume in between must restore the patience counter and the best step.
     * schedule.total_steps is explicit: left at 0 it resolves to train.max_steps, so a run
     * stopped by a smaller max_steps would follow another learning-rate curve. */
    const char *sets[] = {"train.max_steps=16", "schedule.total_steps=16", "schedule.warmup_steps=2",
                          "train.eval_every=4", "train.save_every=4", "train.log_every=2",
                          "train.eval_max_sentences=20", "train.threads=1", "model.dropout=0.1", NULL};
    for (int i = 0; sets[i]; i++) {
        arg(&a, strdup("--set"));
        arg(&a, strdup(sets[i]));
    }
    const char *files[][2] = {{"valid_src", "valid.de"}, {"valid_tgt", "valid.en"}, {"test_src", "test.de"},
                              {"test_tgt", "test.en"}};
    for (int i = 0; i < 4; i++) {
        arg(&a, strdup("--set"));
        arg(&a, test_fmt("data.%s=%s/%s", files[i][0], r, files[i][1]));
    }
    for (int i = 0; extra && extra[i]; i++) {
        arg(&a, strdup("--set"));
        arg(&a, strdup(extra[i]));
    }
    proc p = start(&a, NULL);
    argv_free(&a);
    return p;
}

static result train(const char *dir, bool resume, const char *const *extra) {
    proc p = start_train(dir, resume, extra);
    return finish(&p);
}

/* `cformer SUB ARG...` (NULL-terminated). */
static result cli(const char *stdin_path, const char *sub, ...) {
    argv_list a = {0};
    arg(&a, strdup(test_cformer_path()));
    arg(&a, strdup(sub));
    va_list ap;
    va_start(ap, sub);
    for (const char *s; (s = va_arg(ap, const char *));) arg(&a, strdup(s));
    va_end(ap);
    return run(&a, stdin_path);
}

#define CHECK_CODE(r, want)                                                                        \
    CHECK_MSG((r).code == (want), "exit code %d, want %d\n--- stdout:\n%s--- stderr:\n%s", (r).code, (want), (r).out, \
              (r).err)

/* ---- what runs leave behind ---- */

static char *run_path(const char *dir, const char *name) { return test_fmt("%s/%s", dir, name); }

static char *ckpt_file(const char *dir, int step, const char *name) {
    return test_fmt("%s/checkpoints/step-%08d/%s", dir, step, name);
}

static double run_a_secs;      /* how long run A took: the time scale of the kill test */

/* The reference run A: 16 uninterrupted steps, trained once. */
static const char *run_a(void) {
    static char *dir;
    static bool ok;
    if (dir) {
        CHECK_MSG(ok, "run A failed (see the first test that used it)");
        return dir;
    }
    dir = run_path(root_dir(), "A");
    double t0 = cf_now_s();
    result r = train(dir, false, NULL);
    run_a_secs = cf_now_s() - t0;
    CHECK_CODE(r, 0);
    ok = r.code == 0;
    result_free(&r);
    return dir;
}

/* Files a and b are byte-identical. */
static bool same_bytes(const char *a, const char *b) {
    size_t na, nb;
    char *x = test_read_file(a, &na), *y = test_read_file(b, &nb);
    bool same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* The two safetensors files hold the same tensors (names, dtypes, shapes, data bytes), whatever
 * their metadata; reports the first difference. */
static bool same_tensors(const char *a, const char *b, const char *file, int line) {
    cf_st_file *x = cf_st_open(a), *y = cf_st_open(b);
    bool same = x && y && cf_st_count(x) == cf_st_count(y);
    const char *why = !x || !y ? cf_error_message() : "tensor counts differ";
    for (int i = 0; same && i < cf_st_count(x); i++) {
        const cf_st_tensor *s = cf_st_at(x, i), *t = cf_st_find(y, s->name);
        same = t && s->dtype == t->dtype && s->ndim == t->ndim && s->nbytes == t->nbytes &&
               memcmp(s->shape, t->shape, (size_t)s->ndim * sizeof s->shape[0]) == 0 &&
               memcmp(s->data, t->data, s->nbytes) == 0;
        if (!same) why = s->name;
    }
    if (!same) test_fail(file, line, "%s and %s differ: %s", a, b, why);
    cf_st_close(x);
    cf_st_close(y);
    return same;
}
#define CHECK_SAME_TENSORS(a, b) same_tensors((a), (b), __FILE__, __LINE__)

/* Model and optimizer state of step STEPS of run dir equal run A's, tensor by tensor, and byte for
 * byte as whole files when the run had A's config. */
static void check_final_like_a(const char *dir, bool same_config) {
    const char *a = run_a();
    const char *names[] = {"model.safetensors", "optim.safetensors"};
    for (int i = 0; i < 2; i++) {
        char *x = ckpt_file(a, STEPS, names[i]), *y = ckpt_file(dir, STEPS, names[i]);
        if (CHECK_SAME_TENSORS(x, y) && same_config) CHECK_MSG(same_bytes(x, y), "%s and %s differ", x, y);
        free(x);
        free(y);
    }
}

/* metrics.jsonl as one line per event with the fields that must not depend on timing:
 * "train STEP LOSS LR" and "eval STEP VALID_LOSS BLEU". Checks every line against the contract. */
static char *metrics_digest(const char *dir, const char *file, int line) {
    char *path = run_path(dir, "metrics.jsonl");
    char *text = test_read_file(path, NULL);
    size_t cap = 1024, used = 0;
    char *out = cf_xmalloc(cap);
    out[0] = 0;
    if (!text) test_fail(file, line, "%s: cannot read", path);
    int n = 0;
    for (char *s = text, *nl; s && *s; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl) *nl = 0;
        n++;
        cJSON *j = cJSON_Parse(s);
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "event");
        const char *kind = cJSON_IsString(ev) ? ev->valuestring : "";
        bool train = strcmp(kind, "train") == 0, eval = strcmp(kind, "eval") == 0;
        const char *keys[] = {"step", train ? "loss" : "valid_loss", train ? "lr" : "bleu", "tokens_per_s"};
        double v[4] = {0};
        bool ok = j && (train || eval) && nl; /* a line without '\n' is torn */
        for (int k = 0; ok && k < (train ? 4 : 3); k++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
            ok = cJSON_IsNumber(x);
            if (ok) v[k] = x->valuedouble;
        }
        if (!ok) test_fail(file, line, "%s line %d breaks the contract: %s", path, n, s);
        char buf[128];
        int len = snprintf(buf, sizeof buf, "%s %lld %.9g %.9g\n", kind, (long long)v[0], v[1], v[2]);
        if (used + (size_t)len + 1 > cap) out = realloc(out, cap = 2 * cap + (size_t)len);
        memcpy(out + used, buf, (size_t)len + 1);
        used += (size_t)len;
        cJSON_Delete(j);
    }
    free(text);
    free(path);
    return out;
}

static void check_metrics_like_a(const char *dir) {
    char *a = metrics_digest(run_a(), __FILE__, __LINE__), *b = metrics_digest(dir, __FILE__, __LINE__);
    CHECK_MSG(strcmp(a, b) == 0, "metrics.jsonl of %s differs from run A's:\n%s--- A:\n%s", dir, b, a);
    free(a);
    free(b);
}

/* state.json of step STEPS equals run A's but for the wall-clock time. */
static void check_state_like_a(const char *dir) {
    char *pa = ckpt_file(run_a(), STEPS, "state.json"), *pb = ckpt_file(dir, STEPS, "state.json");
    char *ta = test_read_file(pa, NULL), *tb = test_read_file(pb, NULL);
    cJSON *a = cJSON_Parse(ta ? ta : ""), *b = cJSON_Parse(tb ? tb : "");
    for (int i = 0; i < 2; i++) { /* the wall-clock time, and the checksum that covers it */
        cJSON_DeleteItemFromObjectCaseSensitive(i ? b : a, "elapsed_s");
        cJSON_DeleteItemFromObjectCaseSensitive(i ? b : a, "state_crc32");
    }
    CHECK_MSG(a && b && cJSON_Compare(a, b, true), "%s differs from %s:\n%s\n--- A:\n%s", pb, pa, tb, ta);
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(ta);
    free(tb);
    free(pa);
    free(pb);
}

/* The step named by dir's checkpoints/latest, or -1. */
static int latest_step(const char *dir) {
    char *link = run_path(dir, "checkpoints/latest");
    char target[256];
    ssize_t n = readlink(link, target, sizeof target - 1);
    free(link);
    if (n <= 0) return -1;
    target[n] = 0;
    int step = -1;
    return sscanf(target, "step-%d", &step) == 1 ? step : -1;
}

/* Process pid is writing a checkpoint into dir (or was, when it died): its .tmp-step-NNNNNNNN-PID
 * directory exists. */
static bool save_in_progress(const char *dir, pid_t pid) {
    char *ck = run_path(dir, "checkpoints"), suffix[32];
    int n_suffix = snprintf(suffix, sizeof suffix, "-%ld", (long)pid);
    DIR *d = opendir(ck);
    free(ck);
    bool found = false;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        found = strncmp(e->d_name, ".tmp-step-", 10) == 0 && n > (size_t)n_suffix &&
                strcmp(e->d_name + n - (size_t)n_suffix, suffix) == 0;
    }
    if (d) closedir(d);
    return found;
}

static bool has_tmp_leftovers(const char *dir) {
    char *ck = run_path(dir, "checkpoints");
    DIR *d = opendir(ck);
    free(ck);
    bool found = false;
    for (struct dirent *e; d && !found && (e = readdir(d));) found = strncmp(e->d_name, ".tmp-", 5) == 0;
    if (d) closedir(d);
    return found;
}

/* ---- 1. a run and the commands that use it ---- */

TEST(e2e_train_run_dir_eval_translate_info) {
    const char *a = run_a();
    const char *files[] = {"config.json", "tokenizer.json", "metrics.jsonl", "curves.svg",
                           "checkpoints/step-00000016/model.safetensors", "checkpoints/step-00000016/optim.safetensors",
                           "checkpoints/step-00000016/state.json", "checkpoints/latest", "checkpoints/best"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *p = run_path(a, files[i]);
        CHECK_MSG(exists(p), "%s missing", p);
        free(p);
    }
    CHECK(latest_step(a) == STEPS);
    char *best = run_path(a, "checkpoints/best/model.safetensors");
    CHECK_MSG(exists(best), "best does not name a checkpoint");
    free(best);
    char *cfg_path = run_path(a, "config.json"), *cfg_text = test_read_file(cfg_path, NULL);
    cJSON *cfg = cJSON_Parse(cfg_text ? cfg_text : "");
    CHECK_MSG(cJSON_IsObject(cfg), "%s is not a JSON object", cfg_path);
    cJSON_Delete(cfg);
    free(cfg_text);
    free(cfg_path);
    char *svg_path = run_path(a, "curves.svg"), *svg = test_read_file(svg_path, NULL);
    CHECK_MSG(svg && strstr(svg, "<svg") && strstr(svg, "</svg>"), "%s is not an SVG", svg_path);
    free(svg);
    free(svg_path);

    /* metrics: a train line every log_every steps, an eval line every eval_every, loss falling */
    char *digest = metrics_digest(a, __FILE__, __LINE__);
    int n_train = 0, n_eval = 0;
    double first = 0, last = 0;
    for (char *s = digest; *s; s = strchr(s, '\n') + 1) {
        long long step;
        double x;
        if (sscanf(s, "train %lld %lf", &step, &x) == 2) {
            CHECK_MSG(step == 2LL * ++n_train, "train line %d has step %lld", n_train, step);
            if (n_train == 1) first = x;
            last = x;
        } else if (sscanf(s, "eval %lld", &step) == 1) {
            CHECK_MSG(step == 4LL * ++n_eval, "eval line %d has step %lld", n_eval, step);
        }
    }
    CHECK(n_train == STEPS / 2 && n_eval == STEPS / 4);
    CHECK_MSG(last < first - 0.1, "loss did not fall: %g -> %g", first, last);
    free(digest);

    result r = cli(NULL, "eval", a, "--split", "test", "--beam", "1", NULL);
    CHECK_CODE(r, 0);
    const char *line = strstr(r.out, "\nBLEU = ");
    double bleu, p[4], bp, ratio;
    int hyp_len, ref_len;
    CHECK_MSG(line && sscanf(line, "\nBLEU = %lf %lf/%lf/%lf/%lf (BP = %lf ratio = %lf hyp_len = %d ref_len = %d)",
                             &bleu, &p[0], &p[1], &p[2], &p[3], &bp, &ratio, &hyp_len, &ref_len) == 9,
              "no sacrebleu line in:\n%s", r.out);
    CHECK(strstr(r.out, "checkpoint: ") && strstr(r.out, "step-00000016"));
    result_free(&r);

    char *src = run_path(root_dir(), "three.de"), *test_de = run_path(root_dir(), "test.de");
    CHECK(head_lines(test_de, src, 3));
    free(test_de);
    r = cli(src, "translate", a, NULL);
    CHECK_CODE(r, 0);
    int lines = 0;
    for (const char *s = r.out; *s; s++) lines += *s == '\n';
    CHECK_MSG(lines == 3, "translate printed %d lines for 3:\n%s", lines, r.out);
    result_free(&r);
    free(src);

    r = cli(NULL, "info", a, NULL);
    CHECK_CODE(r, 0);
    char *model = ckpt_file(a, STEPS, "model.safetensors");
    cf_st_file *f = cf_st_open(model);
    long long n_params = 0, shown = -1;
    for (int i = 0; f && i < cf_st_count(f); i++) n_params += cf_st_at(f, i)->numel;
    cf_st_close(f);
    free(model);
    const char *pl = strstr(r.out, "parameters: ");
    CHECK_MSG(pl && sscanf(pl, "parameters: %lld", &shown) == 1 && shown == n_params,
              "info shows %lld parameters, model.safetensors holds %lld:\n%s", shown, n_params, r.out);
    CHECK_MSG(strstr(r.out, "step:       16\n"), "info does not show step 16:\n%s", r.out);
    result_free(&r);
}

/* ---- 2. a planned stop and --resume ---- */

TEST(e2e_resume_is_bit_identical) {
    char *b = run_path(root_dir(), "B");
    result r = train(b, false, (const char *[]){"train.max_steps=8", NULL});
    CHECK_CODE(r, 0);
    CHECK(latest_step(b) == 8);
    result_free(&r);
    r = train(b, true, NULL);
    CHECK_CODE(r, 0);
    CHECK_MSG(strstr(r.out, "resume: train.max_steps changed from 8 to 16"), "change not reported:\n%s", r.out);
    CHECK_MSG(strstr(r.out, "(step 8)"), "resume step not reported:\n%s", r.out);
    result_free(&r);
    check_final_like_a(b, true);
    check_state_like_a(b);
    check_metrics_like_a(b);
    rm_tree(b);
    free(b);
}

/* The config in the metadata of a checkpoint's model.safetensors, with key SECTION.NAME removed
 * (as a cformer from before that key would have written it), header re-padded and state.json
 * re-stamped. */
static void drop_saved_config_key(const char *ckpt, const char *section, const char *name) {
    char *path = test_fmt("%s/model.safetensors", ckpt);
    size_t n = 0;
    unsigned char *bytes = (unsigned char *)test_read_file(path, &n);
    uint64_t hlen = 0;
    for (int i = 7; bytes && n >= 8 && i >= 0; i--) hlen = hlen << 8 | bytes[i];
    CHECK_MSG(bytes && n >= 8 && hlen <= n - 8, "%s: no safetensors header", path);
    if (!bytes || n < 8 || hlen > n - 8) {
        free(bytes), free(path);
        return;
    }
    cJSON *header = cJSON_ParseWithLength((const char *)bytes + 8, (size_t)hlen);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(header, "__metadata__");
    cJSON *cfg_item = cJSON_GetObjectItemCaseSensitive(meta, "config");
    cJSON *cfg = cJSON_IsString(cfg_item) ? cJSON_Parse(cfg_item->valuestring) : NULL;
    cJSON *sec = cJSON_GetObjectItemCaseSensitive(cfg, section);
    CHECK_MSG(cJSON_GetObjectItemCaseSensitive(sec, name), "%s: the saved config has no %s.%s", path, section, name);
    cJSON_DeleteItemFromObjectCaseSensitive(sec, name);
    char *cfg_text = cJSON_PrintUnformatted(cfg);
    cJSON_ReplaceItemInObjectCaseSensitive(meta, "config", cJSON_CreateString(cfg_text));
    char *h = cJSON_PrintUnformatted(header);
    size_t len = strlen(h), padded = (len + 8 + 7) / 8 * 8 - 8; /* the data stays 8-byte aligned */
    FILE *f = fopen(path, "wb");
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    bool ok = f && fwrite(le, 1, 8, f) == 8 && fwrite(h, 1, len, f) == len;
    for (size_t i = len; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fwrite(bytes + 8 + hlen, 1, n - 8 - hlen, f) == n - 8 - hlen;
    CHECK_MSG(f && fclose(f) == 0 && ok, "cannot rewrite %s", path);
    test_restamp_state(ckpt, "model.safetensors", NULL);
    free(h), free(cfg_text), cJSON_Delete(cfg), cJSON_Delete(header), free(bytes), free(path);
}

/* A checkpoint written before a config key existed (data.task came later) resumes: the key it
 * lacks has its default, which is what the run uses, so nothing changed (the first Multi30k
 * checkpoints were refused: "data.task changed from (absent) to \"translation\""). Still
 * bit-identical to run A. */
TEST(e2e_resume_a_checkpoint_from_before_a_new_key) {
    char *b = run_path(root_dir(), "old-key");
    result r = train(b, false, (const char *[]){"train.max_steps=8", NULL});
    CHECK_CODE(r, 0);
    result_free(&r);
    char *ckpt = test_fmt("%s/checkpoints/step-00000008", b);
    drop_saved_config_key(ckpt, "data", "task");
    r = train(b, true, NULL);
    CHECK_CODE(r, 0);
    CHECK_MSG(strstr(r.out, "(step 8)") && !strstr(r.out, "data.task") && !strstr(r.err, "data.task"),
              "resume of a checkpoint without data.task:\n%s%s", r.out, r.err);
    result_free(&r);
    check_final_like_a(b, true);
    rm_tree(b);
    free(ckpt);
    free(b);
}

/* ---- 3. SIGKILL at any moment, then --resume ---- */

/* Starts run dir (always with --resume: the first session finds no checkpoint and starts from 0)
 * and SIGKILLs it when until(dir, pid) first holds or after max_s. Returns true if it was killed
 * (*mid_save: while writing a checkpoint), false if it ended first (*code set). */
static bool kill_when(const char *dir, const char *const *extra, bool (*until)(const char *, pid_t), double max_s,
                      int *code, bool *mid_save) {
    proc p = start_train(dir, true, extra);
    double t_end = cf_now_s() + max_s;
    bool ended = false;
    /* a short poll: a checkpoint of the tiny model is written in a few milliseconds */
    while (!(ended = wait_for(&p, 0)) && cf_now_s() < t_end && !(until && until(dir, p.pid))) test_sleep_s(0.0002);
    if (!ended) {
        kill_and_reap(&p, SIGKILL);
        /* it may have ended on its own between the check and the kill */
        ended = p.code != 128 + SIGKILL;
    }
    *code = p.code;
    *mid_save = !ended && save_in_progress(dir, p.pid);
    free(p.out_path);
    free(p.err_path);
    return !ended;
}

static bool has_latest(const char *dir, pid_t pid) {
    (void)pid;
    return latest_step(dir) > 0;
}

TEST(e2e_sigkill_at_any_moment_then_resume) {
    char *c = run_path(root_dir(), "C");
    /* save_every 3 with log_every 2: checkpoints 3, 9 and 15 fall inside a log window, so a resume
     * from them must restore the window's sums to log the same losses. */
    const char *extra[] = {"train.save_every=3", NULL};
    run_a();
    cf_rng rng = cf_rng_init(2024, CF_RNG_STREAM_TEST);
    int kills = 0, mid_saves = 0, code = 0, sessions = 0;
    bool done = false;
    /* 1: right after the first checkpoint (step 3, mid-window); 2: while a checkpoint is being
     * written; then at random moments, scaled to the time run A took (~0.4 s here unloaded, far
     * more under asan): 0.2-0.7 of it falls from start-up to the last steps of a resumed session.
     * On a loaded machine a session can finish before its kill or a poll can miss the save: then
     * the sequence starts again in a fresh directory with shorter delays (the timing only decides
     * how much the test covers, never whether the results must match). */
    for (int attempt = 0; attempt < 3; attempt++) {
        rm_tree(c);
        kills = mid_saves = sessions = 0;
        done = false;
        double scale = 1.0 / (1 << attempt);
        for (; sessions < 6 && !done; sessions++) {
            bool (*until)(const char *, pid_t) = sessions == 0 ? has_latest : sessions == 1 ? save_in_progress : NULL;
            double delay = until ? TIMEOUT_S : scale * run_a_secs * (0.2 + 0.5 * cf_rng_uniform_f64(&rng));
            bool mid_save;
            if (kill_when(c, extra, until, delay, &code, &mid_save)) {
                kills++;
                mid_saves += mid_save;
            } else {
                CHECK_MSG(code == 0, "a resumed session failed with exit code %d", code);
                done = true;
            }
        }
        if (kills >= 3 && mid_saves >= 1) break;
    }
    CHECK_MSG(kills >= 3, "only %d of %d sessions were killed before they finished", kills, sessions);
    CHECK_MSG(mid_saves >= 1, "no kill landed while a checkpoint was being written");
    if (!done) {
        result r = train(c, true, extra);
        CHECK_CODE(r, 0);
        result_free(&r);
    }
    CHECK(latest_step(c) == STEPS);
    CHECK_MSG(!has_tmp_leftovers(c), "%s/checkpoints holds .tmp- leftovers after a complete save", c);
    check_final_like_a(c, false); /* its config differs in save_every */
    check_metrics_like_a(c);
    rm_tree(c);
    free(c);
}

/* ---- 4. Ctrl-C ---- */

static bool logged_a_step(const char *out_path) {
    char *text = test_read_file(out_path, NULL);
    bool yes = text && strstr(text, "\nstep ");
    free(text);
    return yes;
}

TEST(e2e_ctrl_c_writes_a_checkpoint_and_resumes) {
    char *d = run_path(root_dir(), "D");
    proc p = start_train(d, false, NULL);
    /* SIGINT once the loop runs (before, the default action would just end the process). */
    double t_end = cf_now_s() + TIMEOUT_S;
    while (!wait_for(&p, 0) && !logged_a_step(p.out_path) && cf_now_s() < t_end) test_sleep_s(0.001);
    kill(p.pid, SIGINT);
    result r = finish(&p);
    CHECK_CODE(r, 130);
    long long step = -1;
    const char *stopped = strstr(r.out, "stopped at step ");
    CHECK_MSG(stopped && sscanf(stopped, "stopped at step %lld", &step) == 1, "no stop message:\n%s", r.out);
    CHECK_MSG(step > 0 && step < STEPS, "stopped at step %lld, not inside the run", step);
    CHECK_MSG(latest_step(d) == step, "latest is step %d, stopped at %lld", latest_step(d), step);
    /* Continue with the command the message gives, as a user would paste it (with `cformer`
     * defined as this build's binary): it must carry the --set overrides to finish like A. */
    const char *hint = strstr(r.out, "continue with: cformer train ");
    char *command = hint ? strndup(hint + 15, strcspn(hint + 15, "\n")) : NULL;
    CHECK_MSG(command && strstr(command, " --resume"), "the message does not say how to resume:\n%s", r.out);
    result_free(&r);
    if (command) {
        argv_list sh = {0};
        arg(&sh, strdup("/bin/sh"));
        arg(&sh, strdup("-c"));
        arg(&sh, test_fmt("cformer() { \"$0\" \"$@\"; }; %s", command));
        arg(&sh, strdup(test_cformer_path()));
        r = run(&sh, NULL);
        CHECK_CODE(r, 0);
        CHECK_MSG(strstr(r.out, "continuing from"), "the given command did not resume:\n%s", r.out);
        result_free(&r);
    }
    free(command);
    check_final_like_a(d, true);
    check_state_like_a(d);
    check_metrics_like_a(d);
    rm_tree(d);
    free(d);
}

/* ---- 5. refusals: exit code 2 and a message that names the problem ---- */

#define CHECK_REFUSED(r, needle)                                                                   \
    do {                                                                                           \
        CHECK_CODE(r, 2);                                                                          \
        CHECK_MSG(strstr((r).err, needle), "stderr lacks \"%s\":\n%s", needle, (r).err);            \
    } while (0)

TEST(e2e_refuse_shape_change_on_resume) {
    const char *a = run_a();
    char *metrics = run_path(a, "metrics.jsonl"), *before = test_read_file(metrics, NULL);
    result r = train(a, true, (const char *[]){"model.d_model=64", NULL});
    CHECK_REFUSED(r, "model.d_model changed from 32 to 64");
    result_free(&r);
    char *after = test_read_file(metrics, NULL);
    CHECK_MSG(before && after && strcmp(before, after) == 0, "a refused resume changed %s", metrics);
    CHECK(latest_step(a) == STEPS);
    free(before);
    free(after);
    free(metrics);
}

TEST(e2e_refuse_fresh_run_over_checkpoints) {
    result r = train(run_a(), false, NULL);
    CHECK_REFUSED(r, "already holds checkpoints: pass --resume");
    result_free(&r);
}

TEST(e2e_refuse_unknown_config_key) {
    char *path = run_path(root_dir(), "typo.json");
    CHECK(write_text(path, "{\"seed\": 1, \"train\": {\"max_stesp\": 5}}\n"));
    char *out = run_path(root_dir(), "typo-run");
    result r = cli(NULL, "train", path, "--out", out, NULL);
    CHECK_REFUSED(r, "unknown key \"train.max_stesp\" (did you mean \"train.max_steps\"?)");
    result_free(&r);
    char *tiny = test_fmt("%s/configs/tiny.json", CF_SOURCE_DIR);
    r = cli(NULL, "train", tiny, "--out", out, "--set", "train.eval_evry=3", NULL);
    free(tiny);
    CHECK_REFUSED(r, "did you mean \"train.eval_every\"");
    result_free(&r);
    CHECK_MSG(!exists(out), "a refused config created %s", out);
    free(out);
    free(path);
}

TEST(e2e_refuse_missing_config) {
    char *path = run_path(root_dir(), "no-such-config.json"), *out = run_path(root_dir(), "missing-run");
    result r = cli(NULL, "train", path, "--out", out, NULL);
    CHECK_REFUSED(r, path);
    result_free(&r);
    free(path);
    free(out);
}

TEST(e2e_refuse_eval_without_checkpoints) {
    /* a directory that is no run at all */
    char *dir = run_path(root_dir(), "empty-run");
    CHECK(mkdir(dir, 0755) == 0);
    result r = cli(NULL, "eval", dir, NULL);
    CHECK_REFUSED(r, "not a checkpoint directory");
    result_free(&r);
    /* a run killed before its first checkpoint */
    char *src = run_path(run_a(), "config.json"), *dst = run_path(dir, "config.json"), *text = test_read_file(src, NULL);
    CHECK(text && write_text(dst, text));
    r = cli(NULL, "eval", dir, NULL);
    CHECK_REFUSED(r, "no checkpoints yet");
    result_free(&r);
    r = cli(NULL, "translate", dir, NULL);
    CHECK_REFUSED(r, "no checkpoints yet");
    result_free(&r);
    r = cli(NULL, "info", dir, NULL);
    CHECK_REFUSED(r, "no checkpoints yet");
    result_free(&r);
    free(text);
    free(src);
    free(dst);
    rm_tree(dir);
    free(dir);
}

TEST(e2e_refuse_corrupted_checkpoint) {
    char *dir = run_path(root_dir(), "corrupt");
    argv_list cp = {0};
    arg(&cp, strdup("/bin/cp"));
    arg(&cp, strdup("-a"));
    arg(&cp, strdup(run_a()));
    arg(&cp, strdup(dir));
    result r = run(&cp, NULL);
    CHECK_CODE(r, 0);
    result_free(&r);
    /* one flipped bit in the last tensor's data: the header still parses, only the CRC can tell */
    char *model = ckpt_file(dir, STEPS, "model.safetensors");
    size_t n = 0;
    char *bytes = test_read_file(model, &n);
    CHECK(bytes && n > 100);
    if (bytes && n > 100) {
        bytes[n - 7] ^= 0x10;
        FILE *fp = fopen(model, "wb");
        CHECK(fp && fwrite(bytes, 1, n, fp) == n);
        if (fp) fclose(fp);
    }
    free(bytes);
    r = train(dir, true, NULL);
    CHECK_REFUSED(r, model);
    CHECK_MSG(strstr(r.err, "checksum"), "not reported as a checksum mismatch:\n%s", r.err);
    result_free(&r);
    r = cli(NULL, "eval", dir, NULL);
    CHECK_REFUSED(r, model);
    result_free(&r);
    rm_tree(dir);
    free(model);
    free(dir);
}

/* ---- 6. determinism ---- */

/* Two fresh runs on two threads (the parallel kernels must not depend on timing) give the same
 * files; 4 steps without the final test keep it short. (One-thread determinism is covered by the
 * resume tests, which compare fresh and resumed one-thread runs byte for byte.) */
TEST(e2e_identical_runs_give_identical_files) {
    const char *extra[] = {"train.threads=2", "train.max_steps=4", "schedule.total_steps=4", "train.eval_every=4",
                           "data.test_src=null", "data.test_tgt=null", NULL};
    char *dirs[2] = {run_path(root_dir(), "E1"), run_path(root_dir(), "E2")};
    for (int i = 0; i < 2; i++) {
        result r = train(dirs[i], false, extra);
        CHECK_CODE(r, 0);
        result_free(&r);
    }
    const char *names[] = {"model.safetensors", "optim.safetensors"};
    for (int i = 0; i < 2; i++) {
        char *x = ckpt_file(dirs[0], 4, names[i]), *y = ckpt_file(dirs[1], 4, names[i]);
        CHECK_MSG(same_bytes(x, y), "%s and %s differ", x, y);
        free(x);
        free(y);
    }
    char *m0 = metrics_digest(dirs[0], __FILE__, __LINE__), *m1 = metrics_digest(dirs[1], __FILE__, __LINE__);
    CHECK_MSG(strcmp(m0, m1) == 0, "metrics differ:\n%s---\n%s", m0, m1);
    free(m0);
    free(m1);
    for (int i = 0; i < 2; i++) {
        rm_tree(dirs[i]);
        free(dirs[i]);
    }
}

/* configs/tiny.json widened until every parallel path runs (GEMMs of ~1000 x 128 x 128 and more in
 * tiles, elementwise loops over > 32768 elements, attention over > 32768 score x dim products, the
 * optimizer's and norm's block loops), with dropout: 30 updates (the issue's count) on 1, 2, 3 and 4 threads (load
 * following off, so each count really runs) write byte-identical model and optimizer files, and a
 * run stopped at update 15 on 2 threads and resumed on 1 ends identical to the uninterrupted run. */
static const char *wide_sets[] = {"model.d_model=128", "model.n_heads=4", "model.d_ff=512",
                                  "train.batch_tokens=1024", "train.max_steps=30", "schedule.total_steps=30",
                                  "train.save_every=15", "train.eval_every=30", "train.log_every=15",
                                  "data.test_src=null", "data.test_tgt=null", "train.adapt_threads=false"};
enum { N_WIDE = sizeof wide_sets / sizeof wide_sets[0] };

static result train_wide(const char *dir, bool resume, int threads, int max_steps) {
    const char *extra[N_WIDE + 3];
    memcpy(extra, wide_sets, sizeof wide_sets);
    char *t = test_fmt("train.threads=%d", threads), *m = test_fmt("train.max_steps=%d", max_steps);
    extra[N_WIDE] = t;
    extra[N_WIDE + 1] = m;
    extra[N_WIDE + 2] = NULL;
    result r = train(dir, resume, extra);
    free(t);
    free(m);
    return r;
}

TEST(e2e_any_thread_count_gives_identical_files) {
    char *ref = run_path(root_dir(), "W1");
    result r = train_wide(ref, false, 1, 30);
    CHECK_CODE(r, 0);
    result_free(&r);
    const char *names[] = {"model.safetensors", "optim.safetensors"};
    for (int threads = 2; threads <= 4; threads++) {
        char *dir = test_fmt("%s/W%d", root_dir(), threads);
        r = train_wide(dir, false, threads, 30);
        CHECK_CODE(r, 0);
        char *banner = test_fmt("| %d threads |", threads);
        CHECK_MSG(strstr(r.out, banner) != NULL, "not run on %d threads:\n%s", threads, r.out);
        free(banner);
        result_free(&r);
        for (int i = 0; i < 2; i++) {
            char *x = ckpt_file(ref, 30, names[i]), *y = ckpt_file(dir, 30, names[i]);
            CHECK_MSG(same_bytes(x, y), "%s: 1 and %d threads differ", names[i], threads);
            free(x);
            free(y);
        }
        if (threads != 2) rm_tree(dir);
        free(dir);
    }
    /* 2 threads to update 15, then 1 thread from its checkpoint to 30 */
    char *two = test_fmt("%s/W2", root_dir()), *resumed = run_path(root_dir(), "W2to1");
    r = train_wide(resumed, false, 2, 15);
    CHECK_CODE(r, 0);
    result_free(&r);
    r = train_wide(resumed, true, 1, 30);
    CHECK_CODE(r, 0);
    CHECK_MSG(strstr(r.out, "written with 2 threads, this run uses 1"), "thread change not reported:\n%s", r.out);
    result_free(&r);
    for (int i = 0; i < 2; i++) {
        char *x = ckpt_file(two, 30, names[i]), *y = ckpt_file(resumed, 30, names[i]);
        CHECK_MSG(same_bytes(x, y), "%s: the run resumed on 1 thread differs from the 2-thread run", names[i]);
        free(x);
        free(y);
    }
    rm_tree(ref);
    rm_tree(two);
    rm_tree(resumed);
    free(ref);
    free(two);
    free(resumed);
}

/* data.shared_vocab false: a tokenizer per side (tokenizer.json, tokenizer.tgt.json), separate
 * embeddings; eval, translate and resume use the right one for each side. */
TEST(e2e_separate_vocabularies) {
    char *dir = run_path(root_dir(), "separate");
    const char *extra[] = {"data.shared_vocab=false", "model.share_embeddings=false", "train.max_steps=8",
                           "schedule.total_steps=8", NULL};
    result r = train(dir, false, extra);
    CHECK_CODE(r, 0);
    result_free(&r);
    char *src_tok = run_path(dir, "tokenizer.json"), *tgt_tok = run_path(dir, "tokenizer.tgt.json");
    CHECK(exists(src_tok) && exists(tgt_tok));
    CHECK_MSG(!same_bytes(src_tok, tgt_tok), "German and English got the same tokenizer");
    char *model = ckpt_file(dir, 8, "model.safetensors");
    cf_st_file *f = cf_st_open(model);
    CHECK_MSG(f && cf_st_find(f, "decoder.embed_tokens.weight"), "%s: no separate target embedding", model);
    cf_st_close(f);
    r = cli(NULL, "info", dir, NULL);
    CHECK_CODE(r, 0);
    CHECK_MSG(strstr(r.out, "source") && strstr(r.out, "target tokens"), "info does not show both vocabularies:\n%s",
              r.out);
    result_free(&r);
    r = cli(NULL, "eval", dir, "--split", "test", "--beam", "1", NULL);
    CHECK_CODE(r, 0);
    CHECK(strstr(r.out, "\nBLEU = ") != NULL);
    result_free(&r);
    const char *more[] = {"data.shared_vocab=false", "model.share_embeddings=false", "train.max_steps=10",
                          "schedule.total_steps=8", NULL};
    r = train(dir, true, more);
    CHECK_CODE(r, 0);
    CHECK(latest_step(dir) == 10);
    result_free(&r);
    free(model);
    free(src_tok);
    free(tgt_tok);
    free(dir);
}

/* data.max_len filters training pairs (and says how many); evaluation data is only limited by
 * what the model can take. */
TEST(e2e_data_max_len_filters_training_pairs) {
    char *dir = run_path(root_dir(), "maxlen");
    const char *extra[] = {"data.max_len=12", "train.max_steps=2", "schedule.total_steps=2", NULL};
    result r = train(dir, false, extra);
    CHECK_CODE(r, 0);
    CHECK_MSG(strstr(r.out, "dropped as longer than 12 tokens") != NULL, "no count of long training pairs in:\n%s", r.out);
    CHECK_MSG(strstr(r.out, "dropped as longer than 127 tokens") != NULL, "evaluation data was filtered by data.max_len:\n%s",
              r.out);
    result_free(&r);
    free(dir);
}

/* data.tokenizer names the kind: each trains, writes its tokenizer.json (whose "format" says the
 * kind), evaluates and translates; a resume reloads it by format, and a typo is refused. */
TEST(e2e_wordpiece_and_unigram_runs) {
    const char *kinds[] = {"wordpiece", "unigram"};
    for (int k = 0; k < 2; k++) {
        char *dir = run_path(root_dir(), kinds[k]);
        char *set_kind = test_fmt("data.tokenizer=%s", kinds[k]);
        const char *extra[] = {set_kind, "train.max_steps=4", "schedule.total_steps=4", "data.vocab_size=600", NULL};
        result r = train(dir, false, extra);
        CHECK_CODE(r, 0);
        CHECK_MSG(strstr(r.out, kinds[k]) != NULL, "the log does not name the kind:\n%s", r.out);
        result_free(&r);
        char *tok = run_path(dir, "tokenizer.json");
        size_t n;
        char *json = test_read_file(tok, &n);
        char *want = test_fmt("\"format\": \"cformer-%s\"", kinds[k]);
        CHECK_MSG(json && strstr(json, want), "%s is not a %s file", tok, kinds[k]);
        char *config = run_path(dir, "config.json");
        char *cj = test_read_file(config, &n);
        char *want_cfg = test_fmt("\"tokenizer\":\t\"%s\"", kinds[k]);
        CHECK_MSG(cj && strstr(cj, want_cfg), "config.json does not name the kind");
        r = cli(NULL, "eval", dir, "--split", "test", "--beam", "1", NULL);
        CHECK_CODE(r, 0);
        CHECK(strstr(r.out, "\nBLEU = ") != NULL);
        result_free(&r);
        char *in = run_path(dir, "in.txt");
        write_text(in, "ein hund läuft .\n\xff\x00 kaputt\n");
        r = cli(in, "translate", dir, "--beam", "1", NULL);
        CHECK_CODE(r, 0);
        result_free(&r);
        const char *more[] = {set_kind, "train.max_steps=6", "schedule.total_steps=4", "data.vocab_size=600", NULL};
        r = train(dir, true, more);
        CHECK_CODE(r, 0);
        CHECK(latest_step(dir) == 6);
        result_free(&r);
        free(json), free(want), free(cj), free(want_cfg), free(config), free(in), free(tok), free(set_kind), free(dir);
    }
    char *dir = run_path(root_dir(), "typo");
    const char *extra[] = {"data.tokenizer=unigam", NULL};
    result r = train(dir, false, extra);
    CHECK_CODE(r, 2);
    CHECK_MSG(strstr(r.err, "data.tokenizer") && strstr(r.err, "bpe, wordpiece, unigram"), "no helpful message:\n%s", r.err);
    result_free(&r);
    free(dir);
}
