/* tests/test_faults.c - the fault suite: a disk that fills at every write-side I/O point of a
 * training run (injected, core/fileio.h) and for real (a small tmpfs, when we may mount one), a
 * failed metrics write, signals at chosen and random moments (during evaluation too), a memory
 * limit too small for the model, and a second trainer on a locked run directory.
 *
 * Every case asserts the exit code (never a signal), a message naming the culprit, a stderr free
 * of sanitizer reports, and for the faults that the latest checkpoint left behind still loads
 * (`cformer info`) and that `--resume`, once the fault is gone, ends with model, optimizer state
 * and metrics byte-identical to a run that never failed. The runs are tests/clilib.h's small
 * tiny.json run (8 steps, checkpoints at 4 and 8); cases run two at a time (2 cores, one thread
 * each).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "tests/clilib.h"
#include "tests/test.h"
#include "tests/testlib.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(CF_SANITIZER)
#define UNDER_SANITIZER 1 /* their allocators reserve terabytes of address space: no ulimit -v */
#else
#define UNDER_SANITIZER 0
#endif

/* ---- the reference run ---- */

static char *ckpt_file(const char *dir, int step, const char *name) {
    return test_fmt("%s/checkpoints/step-%08d/%s", dir, step, name);
}

/* A training run into dir (options o may be NULL); extra overrides NULL-terminated. */
static cli_result train_run(const cli_opts *o, const char *dir, bool resume, const char *const *extra) {
    cli_args a;
    cli_train_args(&a, dir, resume, extra);
    cli_result r = cli_runv(o, a.n, a.v);
    cli_args_free(&a);
    return r;
}

static cli_proc train_start(const cli_opts *o, const char *dir, bool resume, const char *const *extra) {
    cli_args a;
    cli_train_args(&a, dir, resume, extra);
    cli_proc p = cli_start(o, a.n, a.v);
    cli_args_free(&a);
    return p;
}

/* The run that never failed, trained once; with its I/O points traced into REF/trace. */
static const char *reference(void) {
    static char *dir;
    if (dir) return dir;
    dir = test_fmt("%s/ref", cli_root());
    char *env = test_fmt("CF_FAULT_TRACE=%s/ref.trace", cli_root());
    cli_result r = train_run(&(cli_opts){.env = {env}}, dir, false, NULL);
    CHECK_EXIT(r, 0);
    CHECK_CLEAN(r);
    cli_result_free(&r);
    free(env);
    return dir;
}

/* dir ended like the reference: final model and optimizer state byte for byte, and the same
 * metrics (every loss, learning rate, validation loss and BLEU). */
static bool same_as_reference(const char *dir, const char *what) {
    const char *ref = reference();
    bool ok = true;
    const char *names[] = {"model.safetensors", "optim.safetensors"};
    for (int i = 0; i < 2; i++) {
        char *a = ckpt_file(ref, 8, names[i]), *b = ckpt_file(dir, 8, names[i]);
        if (!cli_same_file(a, b)) {
            test_fail(__FILE__, __LINE__, "%s: %s differs from the reference run's", what, b);
            ok = false;
        }
        free(a);
        free(b);
    }
    char *ma = cli_metrics_digest(ref), *mb = cli_metrics_digest(dir);
    if (strcmp(ma, mb) != 0) {
        test_fail(__FILE__, __LINE__, "%s: metrics differ from the reference run's:\n%s--- reference:\n%s", what, mb, ma);
        ok = false;
    }
    free(ma);
    free(mb);
    return ok;
}

/* The latest checkpoint of dir (if any) loads: `cformer info` checks every checksum and shape. */
static void check_latest_loads(const char *dir, const char *what) {
    if (cli_latest_step(dir) < 0) return;
    cli_result r = cli_run(NULL, "info", dir, NULL);
    CHECK_MSG(r.code == 0, "%s: the checkpoint left behind does not load (exit %d): %s", what, r.code, r.err);
    cli_result_free(&r);
}

/* ---- 1. a full disk at every I/O point ---- */

typedef struct io_point {
    long n;                     /* its number in the reference run */
    char op[16];
    char path[512];
} io_point;

/* The I/O points of the reference run, one per distinct (operation, file) with the step numbers
 * and PIDs of temporary names left out; of those that happen at both checkpoints, the one of the
 * second (so that a complete checkpoint exists when the disk fills). */
static int distinct_points(io_point *out, int max) {
    reference();
    char *path = test_fmt("%s/ref.trace", cli_root()), *text = test_read_file(path, NULL);
    free(path);
    CHECK_MSG(text, "no I/O trace from the reference run");
    int n = 0;
    char keys[256][512];
    for (char *s = text, *nl; s && *s; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl) *nl = 0;
        io_point p;
        if (sscanf(s, "%ld %15s %511s", &p.n, p.op, p.path) != 3) continue;
        char key[512];
        int k = snprintf(key, sizeof key, "%s ", p.op);
        for (const char *c = p.path; *c && k < (int)sizeof key - 1; c++)
            if (*c < '0' || *c > '9') key[k++] = *c;
        key[k] = 0;
        int i = 0;
        while (i < n && strcmp(keys[i], key) != 0) i++;
        if (i == n) {
            if (n == max || n == 256) break;
            snprintf(keys[n], sizeof keys[n], "%s", key);
            out[n++] = p;
        } else if (strstr(p.path, "step-") && strstr(out[i].path, "00000004") && strstr(p.path, "00000008")) {
            out[i] = p; /* the second checkpoint's */
        }
    }
    free(text);
    return n;
}

/* One I/O point: the disk is full from it on. The run stops with a message naming the file; the
 * latest checkpoint loads; once there is space again --resume ends like the reference. */
typedef struct fault_case {
    io_point p;
    char *dir, *env;
    cli_proc proc;
} fault_case;

static void fault_start(fault_case *c, int index) {
    c->dir = test_fmt("%s/full-%02d", cli_root(), index);
    c->env = test_fmt("CF_FAULT_INJECT=%ld+", c->p.n);
    c->proc = train_start(&(cli_opts){.env = {c->env}}, c->dir, false, NULL);
}

/* s with every run of digits replaced by one '#' (malloc'ed): step numbers and PIDs in temporary
 * names differ between runs, in their number of digits too (PID 948 in one run, 1002 in the next). */
static char *no_digits(const char *s) {
    char *d = strdup(s), *o = d;
    for (const char *p = s; *p; p++) {
        bool digit = *p >= '0' && *p <= '9';
        if (!digit) *o++ = *p;
        else if (p == s || p[-1] < '0' || p[-1] > '9') *o++ = '#';
    }
    *o = 0;
    return d;
}

static void fault_check(fault_case *c) {
    cli_result r = cli_finish(&c->proc);
    char what[700];
    snprintf(what, sizeof what, "disk full at I/O point %ld (%s %s)", c->p.n, c->p.op, c->p.path);
    CHECK_MSG(r.code == 1, "%s: exit code %d, want 1\n%s", what, r.code, r.err);
    CHECK_MSG(cli_clean_stderr(r.err), "%s: sanitizer report:\n%s", what, r.err);
    /* the file of the failed call, in this run's directory rather than the reference's */
    const char *ref = reference();
    char *file = test_fmt("%s%s", c->dir, c->p.path + strlen(ref));
    char *want = no_digits(file), *got = no_digits(r.err);
    CHECK_MSG(strstr(r.err, "No space left on device") && strstr(got, want),
              "%s: the message does not say that the disk is full or does not name %s:\n%s", what, file, r.err);
    free(file);
    free(want);
    free(got);
    CHECK_MSG(!strchr(strchr(r.err, '\n') ? strchr(r.err, '\n') + 1 : "", '\n') || strstr(r.err, "warning"),
              "%s: more than one line on stderr:\n%s", what, r.err);
    cli_result_free(&r);
    /* The latest checkpoint is not loaded separately here: the resume below loads it (with its
     * optimizer state, refusing rather than falling back if it were damaged) and must then end
     * byte-identical to the reference. */
}

static void fault_resume(fault_case *c) {
    c->proc = train_start(NULL, c->dir, true, NULL);
}

static void fault_finish(fault_case *c) {
    cli_result r = cli_finish(&c->proc);
    char what[700];
    snprintf(what, sizeof what, "resume after a full disk at I/O point %ld (%s %s)", c->p.n, c->p.op, c->p.path);
    CHECK_MSG(r.code == 0 && cli_clean_stderr(r.err), "%s: exit %d\n%s", what, r.code, r.err);
    cli_result_free(&r);
    same_as_reference(c->dir, what);
    test_rm_tree(c->dir);
    free(c->dir);
    free(c->env);
}

/* The file of a point without digits: the writer it belongs to (tokenizer, config, a checkpoint
 * file, a link, metrics, curves, hypotheses...). */
static void file_key(const io_point *p, char *key, size_t size) {
    size_t k = 0;
    for (const char *c = p->path; *c && k + 1 < size; c++)
        if (*c < '0' || *c > '9') key[k++] = *c;
    key[k] = 0;
}

/* make test's share of them: for every file one operation (in turn), and every operation at
 * least once; CF_TEST_FAULTS=all (CI's plain `make test`) takes them all. */
static int sample_points(io_point *p, int n) {
    const char *all = getenv("CF_TEST_FAULTS");
    if (all && strcmp(all, "all") == 0) return n;
    char files[128][512], ops[16][16];
    int n_files = 0, n_ops = 0, kept = 0;
    bool keep[128] = {false};
    for (int i = 0; i < n; i++) {
        char key[512];
        file_key(&p[i], key, sizeof key);
        int f = 0, o = 0;
        while (f < n_files && strcmp(files[f], key) != 0) f++;
        while (o < n_ops && strcmp(ops[o], p[i].op) != 0) o++;
        bool new_file = f == n_files, new_op = o == n_ops;
        if (new_file && n_files < 128) snprintf(files[n_files++], sizeof files[0], "%s", key);
        if (new_op && n_ops < 16) snprintf(ops[n_ops++], sizeof ops[0], "%s", p[i].op);
        /* the first point of a file whose index is odd, the second of one whose index is even...:
         * a file's first point is usually its open, so take a later one every other file */
        keep[i] = new_op || (new_file && f % 2 == 0);
        if (!new_file && f % 2 == 1) {
            bool have = false;
            for (int j = 0; j < i; j++) {
                char other[512];
                file_key(&p[j], other, sizeof other);
                have |= keep[j] && strcmp(other, key) == 0;
            }
            keep[i] = keep[i] || !have;
        }
    }
    for (int i = 0; i < n; i++)
        if (keep[i]) p[kept++] = p[i];
    return kept;
}

TEST(faults_disk_full_at_every_io_point_then_resume) {
    io_point points[128];
    int n = distinct_points(points, 128);
    CHECK_MSG(n >= 30, "only %d distinct I/O points traced", n);
    int all = n;
    n = sample_points(points, n);
    /* two at a time: the faulted runs, then their resumes */
    for (int i = 0; i < n; i += 2) {
        fault_case c[2] = {{.p = points[i]}, {.p = points[i + 1 < n ? i + 1 : i]}};
        int k = i + 1 < n ? 2 : 1;
        for (int j = 0; j < k; j++) fault_start(&c[j], i + j);
        for (int j = 0; j < k; j++) fault_check(&c[j]);
        for (int j = 0; j < k; j++) fault_resume(&c[j]);
        for (int j = 0; j < k; j++) fault_finish(&c[j]);
    }
    if (n < all || getenv("CF_TEST_VERBOSE"))
        printf("    %d of the %d distinct I/O points failed in turn%s\n", n, all,
               n < all ? " (CF_TEST_FAULTS=all: every one)" : "");
}

/* ---- 2. one failed metrics write: the final checkpoint still holds everything ---- */

/* The I/O point of the n-th write to `file` (1-based) in the trace at trace_path, or -1. */
static long nth_write_in(const char *trace_path, const char *file, int nth) {
    char *text = test_read_file(trace_path, NULL);
    long found = -1;
    for (char *s = text, *nl; s && *s && found < 0; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl) *nl = 0;
        long n;
        char op[16], p[512];
        if (sscanf(s, "%ld %15s %511s", &n, op, p) == 3 && strcmp(op, "write") == 0 && strstr(p, file) &&
            --nth == 0)
            found = n;
    }
    free(text);
    return found;
}

/* The same in the reference run's trace. */
static long nth_write(const char *file, int nth) {
    reference();
    char *path = test_fmt("%s/ref.trace", cli_root());
    long found = nth_write_in(path, file, nth);
    free(path);
    return found;
}

TEST(faults_failed_metrics_write_still_saves_a_checkpoint) {
    /* metrics.jsonl's writes: train lines at steps 2, 4 (then the eval line of 4), 6, 8, eval 8 */
    const struct { int nth; int step; const char *what; } cases[] = {
        {3, 4, "the eval line of step 4"}, {4, 6, "the train line of step 6"}};
    for (int i = 0; i < 2; i++) {
        long point = nth_write("metrics.jsonl", cases[i].nth);
        CHECK_MSG(point > 0, "no write %d to metrics.jsonl in the trace", cases[i].nth);
        char *dir = test_fmt("%s/metrics-%d", cli_root(), i), *env = test_fmt("CF_FAULT_INJECT=%ld", point);
        cli_result r = train_run(&(cli_opts){.env = {env}}, dir, false, NULL);
        CHECK_EXIT(r, 1);
        CHECK_CLEAN(r);
        CHECK_MSG(strstr(r.err, "metrics.jsonl: write failed: No space left on device") &&
                      strstr(r.err, "was written: --resume continues"),
                  "%s: %s", cases[i].what, r.err);
        CHECK_MSG(cli_latest_step(dir) == cases[i].step, "%s: latest is step %d, want %d", cases[i].what,
                  cli_latest_step(dir), cases[i].step);
        cli_result_free(&r);
        r = train_run(NULL, dir, true, NULL);
        CHECK_EXIT(r, 0);
        cli_result_free(&r);
        same_as_reference(dir, cases[i].what);
        test_rm_tree(dir);
        free(dir);
        free(env);
    }
}

/* ---- 3. a real full disk: a small tmpfs ---- */

TEST(faults_real_full_tmpfs_then_more_space) {
    char *mnt = test_fmt("%s/tmpfs", cli_root()), *dir = test_fmt("%s/run", mnt);
    CHECK(mkdir(mnt, 0755) == 0);
    /* Room for the tokenizer, config and the first checkpoint (~0.4 MB) but not for everything. */
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=700k") != 0) {
        printf("    skipped: cannot mount a tmpfs here (%s); the injected faults cover the same paths\n",
               strerror(errno));
        free(mnt);
        free(dir);
        return;
    }
    cli_result r = train_run(NULL, dir, false, NULL);
    CHECK_EXIT(r, 1);
    CHECK_CLEAN(r);
    CHECK_MSG(strstr(r.err, "No space left on device") && strstr(r.err, dir), "%s", r.err);
    cli_result_free(&r);
    check_latest_loads(dir, "full tmpfs");
    CHECK(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT, "size=16m") == 0);
    r = train_run(NULL, dir, true, NULL);
    CHECK_EXIT(r, 0);
    cli_result_free(&r);
    same_as_reference(dir, "resume on the grown tmpfs");
    CHECK(umount(mnt) == 0);
    rmdir(mnt);
    free(mnt);
    free(dir);
}

/* ---- 4. signals ---- */

/* Waits until path holds needle (or the process ended); true if found. The process decides: the
 * 600 s bound only keeps a hung run from hanging the suite (the machine is shared, sanitizers are
 * slow). */
static bool wait_for_text(const char *path, const char *needle, pid_t pid) {
    for (double end = cf_now_s() + 600; cf_now_s() < end;) {
        char *text = test_read_file(path, NULL);
        bool found = text && strstr(text, needle);
        free(text);
        if (found) return true;
        if (waitpid(pid, NULL, WNOHANG) != 0) return false;
        struct timespec t = {0, 1000000};
        nanosleep(&t, NULL);
    }
    return false;
}

TEST(faults_sigint_during_evaluation_then_resume) {
    /* The 1000 training pairs as validation data (200 of them decoded), one train line at step 4
     * just before its evaluation. The signal comes at an exact moment, not at one the test hopes to
     * hit: CF_FAULT_SIGNAL (core/fileio.h) raises SIGINT inside the write of that train line, the
     * trainer's last I/O before the evaluation, which then stops at its first batch. */
    const char *ref_dir = test_fmt("%s/sig-ref", cli_root()), *dir = test_fmt("%s/sig", cli_root());
    char *valid_src = test_fmt("data.valid_src=%s/train.de", cli_root());
    char *valid_tgt = test_fmt("data.valid_tgt=%s/train.en", cli_root());
    const char *extra[] = {valid_src, valid_tgt, "train.eval_max_sentences=200", "train.log_every=4", NULL};
    char *trace = test_fmt("%s/sig-ref.trace", cli_root()), *trace_env = test_fmt("CF_FAULT_TRACE=%s", trace);
    cli_result ref = train_run(&(cli_opts){.env = {trace_env}}, ref_dir, false, extra);
    CHECK_EXIT(ref, 0);
    cli_result_free(&ref);
    long point = nth_write_in(trace, "metrics.jsonl", 1);
    CHECK_MSG(point > 0, "no write to metrics.jsonl in %s", trace);
    char *signal_env = test_fmt("CF_FAULT_SIGNAL=%ld:%d", point, SIGINT);

    cli_args a;
    cli_train_args(&a, dir, false, extra);
    memmove(&a.v[4], &a.v[5], (size_t)(--a.n - 4) * sizeof a.v[0]); /* no --quiet: the messages say where it stopped */
    cli_result r = cli_runv(&(cli_opts){.env = {signal_env}}, a.n, a.v);
    cli_args_free(&a);
    CHECK_EXIT(r, 130);
    CHECK_CLEAN(r);
    CHECK_MSG(strstr(r.out, "interrupted (signal 2) during the evaluation: writing a checkpoint at step 4") &&
                  strstr(r.out, "--resume"),
              "not stopped inside the evaluation:\n%s", r.out);
    CHECK(cli_latest_step(dir) == 4);
    char *state = test_fmt("%s/checkpoints/step-00000004/state.json", dir), *text = test_read_file(state, NULL);
    CHECK_MSG(text && strstr(text, "\"eval_pending\":\ttrue"), "%s does not say that the evaluation is pending", state);
    free(text);
    free(state);
    cli_result_free(&r);
    r = train_run(NULL, dir, true, extra);
    CHECK_EXIT(r, 0);
    cli_result_free(&r);
    const char *names[] = {"model.safetensors", "optim.safetensors"};
    for (int i = 0; i < 2; i++) {
        char *x = ckpt_file(ref_dir, 8, names[i]), *y = ckpt_file(dir, 8, names[i]);
        CHECK_MSG(cli_same_file(x, y), "%s differs from %s", y, x);
        free(x);
        free(y);
    }
    char *ma = cli_metrics_digest(ref_dir), *mb = cli_metrics_digest(dir);
    CHECK_MSG(strcmp(ma, mb) == 0, "metrics after the interrupted evaluation:\n%s--- uninterrupted:\n%s", mb, ma);
    free(ma);
    free(mb);
    char *ba = test_fmt("%s/checkpoints/best", ref_dir), *bb = test_fmt("%s/checkpoints/best", dir);
    char ta[64] = "", tb[64] = "";
    CHECK(readlink(ba, ta, sizeof ta - 1) > 0 && readlink(bb, tb, sizeof tb - 1) > 0 && strcmp(ta, tb) == 0);
    free(ba);
    free(bb);
    free(signal_env);
    free(trace_env);
    free(trace);
    free(valid_src);
    free(valid_tgt);
    free((char *)ref_dir);
    free((char *)dir);
}

TEST(faults_sigterm_at_random_moments_then_resume) {
    /* How long a run takes here, then SIGTERM at seeded moments spread over it, counted from the
     * moment the run directory appears (the first two during the set-up: tokenizer, corpora,
     * model): each run exits cleanly (130, or 0 when it had finished) and resumes to the
     * reference. */
    reference();
    char *probe = test_fmt("%s/term-probe", cli_root());
    double t0 = cf_now_s();
    cli_result r = train_run(NULL, probe, false, NULL);
    double run_s = cf_now_s() - t0;
    CHECK_EXIT(r, 0);
    cli_result_free(&r);
    test_rm_tree(probe);
    free(probe);
    cf_rng rng = cf_rng_init(2024, 7);
    for (int i = 0; i < 4; i++) {
        char *dir = test_fmt("%s/term-%d", cli_root(), i);
        cli_proc p = train_start(NULL, dir, false, NULL);
        for (int k = 0; k < 100000 && access(dir, F_OK) != 0 && waitpid(p.pid, NULL, WNOHANG) == 0; k++) {
            struct timespec t = {0, 200000};
            nanosleep(&t, NULL);
        }
        double at = i == 0 ? 0 : i == 1 ? 0.002 : 0.9 * run_s * cf_rng_uniform(&rng);
        struct timespec t = {(time_t)at, (long)((at - (double)(time_t)at) * 1e9)};
        nanosleep(&t, NULL);
        kill(p.pid, SIGTERM);
        r = cli_finish(&p);
        CHECK_MSG(r.code == 130 || r.code == 0, "SIGTERM %.3f s into the run: exit %d\n%s", at, r.code, r.err);
        CHECK_CLEAN(r);
        CHECK_MSG(r.code == 0 || cli_latest_step(dir) >= 0, "SIGTERM %.3f s into the run: no checkpoint", at);
        cli_result_free(&r);
        r = train_run(NULL, dir, true, NULL);
        CHECK_EXIT(r, 0);
        cli_result_free(&r);
        same_as_reference(dir, "resume after SIGTERM");
        test_rm_tree(dir);
        free(dir);
    }
}

/* The value of `key` in the train line of `step` in dir's metrics.jsonl; -1 if none. */
static double train_field(const char *dir, int step, const char *key) {
    char *path = test_fmt("%s/metrics.jsonl", dir), *text = test_read_file(path, NULL);
    free(path);
    double v = -1;
    for (char *s = text, *nl; s && *s; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl) *nl = 0;
        cJSON *j = cJSON_Parse(s);
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "event");
        if (cJSON_IsString(ev) && strcmp(ev->valuestring, "train") == 0 &&
            cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "step")) == step) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
            if (cJSON_IsNumber(x)) v = x->valuedouble;
        }
        cJSON_Delete(j);
    }
    free(text);
    return v;
}

/* The first progress line after --resume (issue 10: a run resumed at 1090 showed 9791 tok/s at
 * 1100, the tokens of the window before the stop over the time since the resume). Stopped at
 * update 2 with the log window open (lines every 4; SIGTERM raised inside the write of update 2's
 * state.json, so the stop comes after that checkpoint at an exact moment), the resumed run's line
 * of update 4 has the loss of updates 1-4 as always, but its rate counts only updates 3 and 4:
 * rate_tokens, what tokens_per_s divides by the session's time, equals the tokens of updates 3-4
 * in a run that logs every 2 updates. Token counts, not times: nothing here depends on speed. */
TEST(faults_first_progress_line_after_resume_counts_this_session) {
    const char *every4[] = {"train.log_every=4", "train.save_every=2", NULL};
    const char *every2[] = {"train.log_every=2", "train.save_every=2", NULL};
    char *a = test_fmt("%s/rate-a", cli_root()), *b = test_fmt("%s/rate-b", cli_root());
    char *c = test_fmt("%s/rate-c", cli_root()), *trace = test_fmt("%s/rate.trace", cli_root());
    char *trace_env = test_fmt("CF_FAULT_TRACE=%s", trace);
    cli_result r = train_run(&(cli_opts){.env = {trace_env}}, a, false, every4);
    CHECK_EXIT(r, 0);
    cli_result_free(&r);
    r = train_run(NULL, c, false, every2);
    CHECK_EXIT(r, 0);
    cli_result_free(&r);
    long point = nth_write_in(trace, "state.json", 1); /* the checkpoint of update 2 */
    CHECK_MSG(point > 0, "no state.json write in %s", trace);
    char *signal_env = test_fmt("CF_FAULT_SIGNAL=%ld:%d", point, SIGTERM);
    r = train_run(&(cli_opts){.env = {signal_env}}, b, false, every4);
    CHECK_EXIT(r, 130);
    CHECK_CLEAN(r);
    cli_result_free(&r);
    CHECK_MSG(cli_latest_step(b) == 2, "stopped at step %d, want 2", cli_latest_step(b));
    r = train_run(NULL, b, true, every4);
    CHECK_EXIT(r, 0);
    cli_result_free(&r);
    char *ma = cli_metrics_digest(a), *mb = cli_metrics_digest(b);
    CHECK_MSG(strcmp(ma, mb) == 0, "the resumed run's metrics differ:\n%s--- uninterrupted:\n%s", mb, ma);
    free(ma);
    free(mb);
    double c2 = train_field(c, 2, "rate_tokens"), c4 = train_field(c, 4, "rate_tokens");
    double a4 = train_field(a, 4, "rate_tokens"), b4 = train_field(b, 4, "rate_tokens");
    CHECK_MSG(c2 > 0 && c4 > 0 && a4 == c2 + c4, "uninterrupted: %g tokens at update 4, want %g + %g", a4, c2, c4);
    CHECK_MSG(b4 == c4, "after the resume at 2 the line of update 4 rates %g tokens, want those of updates 3-4: %g",
              b4, c4);
    CHECK(train_field(b, 4, "tokens_per_s") > 0);
    free(signal_env);
    free(trace_env);
    free(trace);
    free(a);
    free(b);
    free(c);
}

/* ---- 5. a memory limit ---- */

TEST(faults_memory_limit_too_small_is_a_clear_error) {
    if (UNDER_SANITIZER) {
        printf("    skipped under a sanitizer (it needs more address space than any limit)\n");
        return;
    }
    /* d_ff 100000 with d_model 256: ~200 MB of parameters per feed-forward block, 1.6 GB with
     * gradients and Adam's moments: far beyond 600 MB, while start-up fits. */
    char *dir = test_fmt("%s/oom", cli_root());
    const char *extra[] = {"model.d_model=256", "model.n_heads=4", "model.d_ff=100000", NULL};
    cli_result r = train_run(&(cli_opts){.ulimit_v_kib = "600000"}, dir, false, extra);
    CHECK_EXIT(r, 1);
    CHECK_CLEAN(r);
    CHECK_MSG(strstr(r.err, "error: out of memory") && strstr(r.err, "ulimit -v"), "%s", r.err);
    cli_result_free(&r);
    /* and a run that fits trains under the same limit */
    test_rm_tree(dir);
    r = train_run(&(cli_opts){.ulimit_v_kib = "600000"}, dir, false, NULL);
    CHECK_EXIT(r, 0);
    cli_result_free(&r);
    same_as_reference(dir, "a run under ulimit -v 600000");
    test_rm_tree(dir);
    free(dir);
}

/* ---- 6. the run-directory lock ---- */

TEST(faults_second_trainer_is_refused_and_a_dead_ones_lock_is_not) {
    char *dir = test_fmt("%s/locked", cli_root());
    const char *extra[] = {"train.max_steps=100000", "schedule.total_steps=100000", NULL};
    cli_proc first = train_start(NULL, dir, false, extra);
    char *lock = test_fmt("%s/trainer.lock", dir), *pid = test_fmt("%ld\n", (long)first.pid);
    bool locked = wait_for_text(lock, pid, first.pid);
    CHECK_MSG(locked, "the first trainer did not take the lock");
    char *holder = test_fmt("(pid %ld holds", (long)first.pid);
    for (int resume = 0; resume < 2; resume++) {
        cli_result r = train_run(NULL, dir, resume, NULL);
        CHECK_EXIT(r, 2);
        CHECK_CLEAN(r);
        CHECK_MSG(strstr(r.err, "is in use by another trainer") && strstr(r.err, holder) && strstr(r.err, dir),
                  "%s", r.err);
        cli_result_free(&r);
    }
    kill(first.pid, SIGKILL); /* the lock file stays; the kernel drops the lock */
    cli_result r = cli_finish(&first);
    CHECK(r.code == 128 + SIGKILL);
    cli_result_free(&r);
    CHECK(access(lock, F_OK) == 0);
    r = train_run(NULL, dir, true, NULL);
    CHECK_MSG(r.code == 0, "the stale lock of a killed trainer blocked --resume (exit %d): %s", r.code, r.err);
    cli_result_free(&r);
    test_rm_tree(dir);
    free(dir);
    free(lock);
    free(pid);
    free(holder);
}

/* Train lines in dir's metrics.jsonl. */
static int train_lines(const char *dir) {
    char *digest = cli_metrics_digest(dir);
    int n = 0;
    for (const char *s = digest; s && (s = strstr(s, "train ")); s++) n += s == digest || s[-1] == '\n';
    free(digest);
    return n;
}

/* `cformer train ... | tee log`, then Ctrl-C: the terminal's SIGINT ends tee as well, so the
 * trainer's next progress line goes to a pipe nobody reads. That write must fail (EPIPE), not kill
 * the trainer (SIGPIPE) before its checkpoint. Here the reader closes its end after the first
 * progress line; the trainer goes on (its metrics grow), and the SIGINT that follows ends it as
 * always: exit 130 and a checkpoint of the step it stopped at (the only one: no regular saves). */
TEST(faults_closed_stdout_pipe_then_sigint_still_checkpoints) {
    char *dir = test_fmt("%s/pipe", cli_root()), *fifo = test_fmt("%s/pipe.out", cli_root());
    CHECK(mkfifo(fifo, 0600) == 0);
    const char *extra[] = {"train.max_steps=100000", "schedule.total_steps=100000", "train.save_every=100000",
                           "train.eval_every=100000", NULL};
    cli_args a;
    cli_train_args(&a, dir, false, extra);
    CHECK(strcmp(a.v[4], "--quiet") == 0);
    memmove(&a.v[4], &a.v[5], (size_t)(--a.n - 4) * sizeof a.v[0]); /* progress lines wanted */
    cli_proc p = cli_start(&(cli_opts){.stdout_path = fifo}, a.n, a.v);
    cli_args_free(&a);
    int fd = open(fifo, O_RDONLY); /* meets the child's open for writing */
    unlink(fifo);                  /* (so cli_finish reads no output file) */
    char buf[4096];
    size_t have = 0;
    for (ssize_t got; fd >= 0 && have < sizeof buf - 1 && (got = read(fd, buf + have, sizeof buf - 1 - have)) > 0;) {
        have += (size_t)got;
        buf[have] = 0;
        if (strstr(buf, "\nstep ")) break;
    }
    buf[have] = 0;
    CHECK_MSG(strstr(buf, "\nstep "), "no progress line on stdout:\n%s", buf);
    if (fd >= 0) close(fd);
    int lines = train_lines(dir);
    siginfo_t info = {0};
    for (int k = 0; k < 30000 && train_lines(dir) < lines + 2; k++) {
        if (waitid(P_PID, (id_t)p.pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == p.pid) break;
        struct timespec t = {0, 1000000};
        nanosleep(&t, NULL);
    }
    kill(p.pid, SIGINT);
    cli_result r = cli_finish(&p);
    CHECK_MSG(r.code == 130, "exit %d (%d: SIGPIPE) after stdout's reader went away\n%s", r.code, 128 + SIGPIPE, r.err);
    CHECK_CLEAN(r);
    CHECK_MSG(cli_latest_step(dir) > 2 * lines, "no checkpoint of the stop (latest %d, %d train lines before the close)",
              cli_latest_step(dir), lines);
    cli_result_free(&r);
    test_rm_tree(dir);
    free(dir);
    free(fifo);
}
