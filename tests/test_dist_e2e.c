/* tests/test_dist_e2e.c - data-parallel training across processes: `mpirun --oversubscribe -np K`
 * over loopback against one process with grad_accum K (byte-identical model.safetensors and
 * optim.safetensors for K = 2 and 3), a resume with another rank count, a killed rank, Ctrl-C to
 * mpirun, a stop while rank 0's output is stalled, a stop that comes during rank 0's evaluation, a run directory another trainer holds, and
 * ranks that disagree on the config.
 *
 * Only in a `make MPI=1` build with mpirun on the PATH; otherwise each test says so and passes.
 * Runs are configs/tiny.json shrunk to 8 updates with dropout on (the masks are keyed by the
 * global micro-batch number) and an evaluation every 4 (rank 0 evaluates, the others wait for its
 * verdict). Timing never decides a result: waits have generous limits and poll for files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dist/dist.h"
#include "tests/test.h"
#include "tests/testlib.h"
#include "train/lock.h"

#define STEPS 8
#define TIMEOUT_S 600.0 /* a run takes seconds; the machine is shared */



/* MPI=1 build and mpirun present; also lets Open MPI run as root (CI runs as root). */
static bool mpi_ready(const char *test) {
    if (!cf_dist_compiled() || system("command -v mpirun >/dev/null 2>&1") != 0) {
        printf("  (%s: skipped: not a `make MPI=1` build or no mpirun)\n", test);
        return false;
    }
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    return true;
}

static char root[256];
static void remove_root(void) {
    if (root[0]) test_rm_tree(root);
}

/* The shared directory with the 40-line valid file every run uses. */
static const char *root_dir(void) {
    if (root[0]) return root;
    snprintf(root, sizeof root, "%s", test_tmpdir("dist"));
    atexit(remove_root);
    char *cmd = test_fmt("head -40 '%s/data/toy/valid.de' > '%s/v.de' && head -40 '%s/data/toy/valid.en' > '%s/v.en'",
                    CF_SOURCE_DIR, root, CF_SOURCE_DIR, root);
    CHECK(system(cmd) == 0);
    free(cmd);
    return root;
}

/* `[mpirun --oversubscribe -np K] cformer train tiny.json --out DIR <shared sets> EXTRA` as a shell
 * command (K = 0: no mpirun). */
static char *train_cmd(int ranks, const char *dir, const char *extra) {
    const char *r = root_dir();
    char *launcher = ranks > 0 ? test_fmt("mpirun --oversubscribe -np %d ", ranks) : strdup("");
    char *cmd = test_fmt("%s'%s' train '%s/configs/tiny.json' --out '%s' --set train.max_steps=%d "
                    "--set schedule.total_steps=%d --set schedule.warmup_steps=2 --set train.eval_every=4 "
                    "--set train.save_every=4 --set train.log_every=2 --set train.eval_max_sentences=20 "
                    "--set model.dropout=0.1 --set data.valid_src=%s/v.de --set data.valid_tgt=%s/v.en "
                    "--set data.test_src=null --set data.test_tgt=null %s",
                    launcher, test_cformer_path(), CF_SOURCE_DIR, dir, STEPS, STEPS, r, r, extra ? extra : "");
    free(launcher);
    return cmd;
}

typedef struct job {
    pid_t pid;
    char *log;
    int code; /* exit code, 128 + signal, -1 on timeout */
} job;

/* Starts /bin/sh -c cmd in a process group of its own, stdout and stderr into a log file. */
static job start(const char *cmd) {
    static int counter;
    job j = {.code = -1, .log = test_fmt("%s/cmd-%03d.log", root_dir(), counter++)};
    fflush(stdout);
    j.pid = fork();
    if (j.pid == 0) {
        setpgid(0, 0);
        int fd = open(j.log, O_WRONLY | O_CREAT | O_TRUNC, 0644), in = open("/dev/null", O_RDONLY);
        if (fd < 0 || in < 0) _exit(126);
        dup2(in, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    CHECK(j.pid > 0);
    return j;
}

static bool wait_job(job *j, double timeout_s) {
    double end = cf_now_s() + timeout_s;
    for (;;) {
        int st;
        pid_t r = waitpid(j->pid, &st, WNOHANG);
        if (r == j->pid) {
            j->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return true;
        }
        if (r < 0 || cf_now_s() > end) return false;
        test_sleep_s(0.01);
    }
}

/* Runs to completion; returns the exit code and (if out) the log. */
static int run(const char *cmd, char **out) {
    job j = start(cmd);
    if (!wait_job(&j, TIMEOUT_S)) {
        kill(-j.pid, SIGKILL);
        wait_job(&j, 10);
        test_fail(__FILE__, __LINE__, "timed out: %s", cmd);
        j.code = -1;
    }
    if (out) {
        *out = test_read_file(j.log, NULL);
        if (!*out) *out = strdup("");
    }
    free(j.log);
    return j.code;
}

static bool same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = test_read_file(a, &na), *y = test_read_file(b, &nb);
    bool same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* model.safetensors and optim.safetensors of step STEPS are byte-identical in runs a and b. */
static void check_same_checkpoint(const char *a, const char *b, const char *what) {
    const char *names[] = {"model.safetensors", "optim.safetensors"};
    for (int i = 0; i < 2; i++) {
        char *x = test_fmt("%s/checkpoints/step-%08d/%s", a, STEPS, names[i]);
        char *y = test_fmt("%s/checkpoints/step-%08d/%s", b, STEPS, names[i]);
        CHECK_MSG(same_file(x, y), "%s: %s and %s differ", what, x, y);
        free(x);
        free(y);
    }
}

/* Each `"key":value` of metrics.jsonl, in order, one a line (the value ends at a character of end). */
static char *metric_fields(const char *dir, const char *key, const char *end) {
    char *path = test_fmt("%s/metrics.jsonl", dir), *text = test_read_file(path, NULL), *out = strdup("");
    char *needle = test_fmt("\"%s\":", key);
    for (char *p = text ? strstr(text, needle) : NULL; p; p = strstr(p + 1, needle)) {
        char *more = test_fmt("%s%.*s\n", out, (int)strcspn(p, end), p);
        free(out);
        out = more;
    }
    free(needle);
    free(text);
    free(path);
    return out;
}

static char *losses(const char *dir) { return metric_fields(dir, "loss", ","); }

/* One process with grad_accum k, run once per k and shared by the tests. */
static const char *reference(int k) {
    static char *dirs[4];
    if (dirs[k]) return dirs[k];
    dirs[k] = test_fmt("%s/one-accum%d", root_dir(), k);
    char *extra = test_fmt("--set train.grad_accum=%d --set train.threads=1", k);
    char *cmd = train_cmd(0, dirs[k], extra), *out = NULL;
    int code = run(cmd, &out);
    CHECK_MSG(code == 0, "reference run (grad_accum %d) failed (%d):\n%s", k, code, out);
    free(out);
    free(cmd);
    free(extra);
    return dirs[k];
}

/* Both builds: `cformer version` says which one it is, and a build without MPI=1 links no MPI
 * library (ldd lists none). */
TEST(dist_e2e_version_names_the_build) {
    char *cmd = test_fmt("'%s' version", test_cformer_path()), *out = NULL;
    CHECK(run(cmd, &out) == 0);
    bool says_mpi = out && strstr(out, "MPI data-parallel training") && strstr(out, "\nMPI: ");
    bool says_none = out && strstr(out, "no MPI: built without MPI=1");
    CHECK_MSG(cf_dist_compiled() ? says_mpi && !says_none : says_none && !says_mpi, "version of a%s build:\n%s",
              cf_dist_compiled() ? "n MPI" : " plain", out);
    free(out), free(cmd);
    cmd = test_fmt("ldd '%s'", test_cformer_path());
    out = NULL;
    if (run(cmd, &out) == 0) { /* ldd is part of Debian's libc-bin; skip the check where it is missing */
        bool links_mpi = strstr(out, "libmpi") != NULL;
        CHECK_MSG(links_mpi == cf_dist_compiled(), "%s build, ldd says:\n%s", cf_dist_compiled() ? "MPI" : "plain",
                  out);
    }
    free(out), free(cmd);
}

TEST(dist_e2e_k_ranks_equal_grad_accum_k) {
    if (!mpi_ready(__func__)) return;
    for (int k = 2; k <= 3; k++) {
        const char *ref = reference(k);
        char *dir = test_fmt("%s/ranks%d", root_dir(), k), *cmd = train_cmd(k, dir, NULL), *out = NULL;
        int code = run(cmd, &out);
        CHECK_MSG(code == 0, "%d ranks: exit %d:\n%s", k, code, out);
        char *banner = test_fmt("| %d ranks x ", k);
        CHECK_MSG(strstr(out, banner) && strstr(out, "per rank"), "not a %d-rank run:\n%s", k, out);
        char *what = test_fmt("%d ranks vs grad_accum %d", k, k);
        check_same_checkpoint(ref, dir, what);
        char *la = losses(ref), *lb = losses(dir);
        CHECK_MSG(strcmp(la, lb) == 0 && la[0], "%s: logged losses differ:\n%s---\n%s", what, lb, la);
        free(la), free(lb), free(what), free(banner), free(out), free(cmd), free(dir);
    }
}

/* The gradient cut into several buckets (d_ff 4096: 3 buckets of about 1 MiB, each split into 3
 * chunks): 3 ranks still train what one process with grad_accum 3 trains. */
TEST(dist_e2e_several_buckets_equal_grad_accum) {
    if (!mpi_ready(__func__)) return;
    const char *wide = "--set model.d_ff=4096";
    char *one = test_fmt("%s/one-wide", root_dir()), *dir = test_fmt("%s/ranks3-buckets", root_dir());
    char *ref_extra = test_fmt("%s --set train.grad_accum=3 --set train.threads=1", wide);
    char *ranks_extra = test_fmt("%s --set train.bucket_mb=1", wide);
    char *ref_cmd = train_cmd(0, one, ref_extra), *cmd = train_cmd(3, dir, ranks_extra), *out = NULL;
    int code = run(ref_cmd, &out);
    CHECK_MSG(code == 0, "reference run failed (%d):\n%s", code, out);
    free(out);
    out = NULL;
    code = run(cmd, &out);
    CHECK_MSG(code == 0, "3 ranks: exit %d:\n%s", code, out);
    const char *b = out ? strstr(out, " gradient buckets |") : NULL;
    int buckets = 0;
    while (b && b > out && b[-1] >= '0' && b[-1] <= '9') b--;
    if (b) buckets = atoi(b);
    CHECK_MSG(buckets >= 2, "expected the gradient in 2 or more buckets, the banner says %d:\n%s", buckets, out);
    check_same_checkpoint(one, dir, "3 ranks in 1 MiB buckets vs grad_accum 3");
    char *la = losses(one), *lb = losses(dir);
    CHECK_MSG(strcmp(la, lb) == 0 && la[0], "logged losses differ:\n%s---\n%s", lb, la);
    free(la), free(lb), free(out), free(cmd), free(ref_cmd), free(ranks_extra), free(ref_extra), free(dir), free(one);
}

/* A mixture-of-experts model: 2 ranks train what one process with grad_accum 2 trains, and the
 * logged expert load is the global batch's (the ranks' counts summed), not rank 0's half. */
TEST(dist_e2e_moe_ranks_log_the_global_expert_load) {
    if (!mpi_ready(__func__)) return;
    const char *moe = "--set model.num_experts=4 --set model.num_experts_per_token=2";
    char *ref = test_fmt("%s/moe-accum2", root_dir()), *dir = test_fmt("%s/moe-ranks2", root_dir());
    char *extra = test_fmt("%s --set train.grad_accum=2 --set train.threads=1", moe);
    char *cmd_ref = train_cmd(0, ref, extra), *cmd = train_cmd(2, dir, moe), *out = NULL;
    int code = run(cmd_ref, &out);
    CHECK_MSG(code == 0, "grad_accum 2: exit %d:\n%s", code, out);
    free(out);
    code = run(cmd, &out);
    CHECK_MSG(code == 0, "2 ranks: exit %d:\n%s", code, out);
    free(out);
    check_same_checkpoint(ref, dir, "MoE: 2 ranks vs grad_accum 2");
    char *la = metric_fields(ref, "expert_load", "}"), *lb = metric_fields(dir, "expert_load", "}");
    CHECK_MSG(la[0] && strcmp(la, lb) == 0, "logged expert load, 2 ranks:\n%s--- grad_accum 2:\n%s", lb, la);
    free(la), free(lb), free(cmd), free(cmd_ref), free(extra), free(dir), free(ref);
}

/* 2 ranks to update 4, then one process with grad_accum 2 to 8; and the other way round. */
TEST(dist_e2e_resume_with_another_rank_count) {
    if (!mpi_ready(__func__)) return;
    const char *ref = reference(2);
    char *dirs[2] = {test_fmt("%s/two-then-one", root_dir()), test_fmt("%s/one-then-two", root_dir())};
    for (int order = 0; order < 2; order++) {
        for (int part = 0; part < 2; part++) {
            bool mpi = (order == 0) == (part == 0);
            char *extra = test_fmt("%s%s", part == 0 ? "--set train.max_steps=4" : "--resume",
                              mpi ? "" : " --set train.grad_accum=2 --set train.threads=1");
            char *cmd = train_cmd(mpi ? 2 : 0, dirs[order], extra), *out = NULL;
            int code = run(cmd, &out);
            CHECK_MSG(code == 0, "exit %d:\n%s", code, out);
            if (part == 1) CHECK_MSG(strstr(out, "(step 4)"), "did not resume at step 4:\n%s", out);
            free(out), free(cmd), free(extra);
        }
        check_same_checkpoint(ref, dirs[order], order == 0 ? "2 ranks resumed as 1 process" : "1 process resumed on 2 ranks");
        free(dirs[order]);
    }
}

/* The process ids of the ranks of the run into dir: argv[0] ends in cformer (mpirun's does not;
 * comm says "exe" after cformer's re-exec of /proc/self/exe). */
static int rank_pids(const char *dir, pid_t *pids, int max) {
    int n = 0;
    DIR *d = opendir("/proc");
    for (struct dirent *e; d && n < max && (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char *cmd_path = test_fmt("/proc/%s/cmdline", e->d_name), cmd_buf[8192];
        int fd = open(cmd_path, O_RDONLY); /* /proc files have no size: read, not stat */
        ssize_t got = fd >= 0 ? read(fd, cmd_buf, sizeof cmd_buf - 1) : -1;
        if (fd >= 0) close(fd);
        size_t len = got > 0 ? (size_t)got : 0;
        cmd_buf[len] = 0;
        char *cmd = len ? cmd_buf : NULL;
        size_t arg0 = cmd ? strlen(cmd) : 0;
        bool hit = false;
        if (cmd && arg0 >= 7 && strcmp(cmd + arg0 - 7, "cformer") == 0)
            for (size_t i = 0; i < len; i += strlen(cmd + i) + 1) hit |= strcmp(cmd + i, dir) == 0;
        if (hit) pids[n++] = (pid_t)atoi(e->d_name);
        free(cmd_path);
    }
    if (d) closedir(d);
    return n;
}

static bool exists(const char *dir, const char *name) {
    char *p = test_fmt("%s/%s", dir, name);
    bool ok = access(p, F_OK) == 0;
    free(p);
    return ok;
}

/* A long run (so that it is still training when we act) that has written its first checkpoint. */
static job start_long(const char *dir, const char *env) {
    /* Few progress lines: mpirun stops reading a rank's output at Ctrl-C, and what the rank prints
     * after that must fit in its pty for the stop message to arrive (see the stalled-output test). */
    char *base = train_cmd(2, dir, "--set train.max_steps=100000 --set schedule.total_steps=100000 "
                                   "--set train.eval_every=100000 --set train.save_every=20 --set train.log_every=1000");
    char *cmd = test_fmt("%s exec %s", env, base);
    job j = start(cmd);
    double end = cf_now_s() + TIMEOUT_S;
    while (!exists(dir, "checkpoints/latest") && cf_now_s() < end && !wait_job(&j, 0)) test_sleep_s(0.05);
    CHECK_MSG(exists(dir, "checkpoints/latest"), "no checkpoint appeared: %s", cmd);
    free(cmd);
    free(base);
    return j;
}

/* SIGKILL one rank: mpirun ends the job with an error (it names the rank and the signal) instead of
 * hanging, and the newest complete checkpoint resumes, as one process with grad_accum 2. */
TEST(dist_e2e_killed_rank_ends_the_job) {
    if (!mpi_ready(__func__)) return;
    char *dir = test_fmt("%s/killed", root_dir());
    job j = start_long(dir, "");
    pid_t pids[8];
    int n = rank_pids(dir, pids, 8);
    CHECK_MSG(n == 2, "found %d rank processes", n);
    if (n >= 2) kill(pids[1], SIGKILL);
    double t_kill = cf_now_s();
    bool ended = wait_job(&j, 120); /* seconds in practice: mpirun notices at once */
    double t_end = cf_now_s();
    if (!ended) kill(-j.pid, SIGKILL), wait_job(&j, 10);
    CHECK_MSG(ended, "the job did not end within 120 s of a rank's death");
    /* printed, not asserted (a loaded machine stretches it): docs/distributed.md quotes it */
    if (ended) printf("  (the job ended %.2f s after rank 1's SIGKILL)\n", t_end - t_kill);
    char *out = test_read_file(j.log, NULL);
    CHECK_MSG(j.code != 0 && out && (strstr(out, "signal 9") || strstr(out, "Killed")),
              "exit %d, no word of the killed rank:\n%s", j.code, out ? out : "");
    free(out);
    char link[64] = "", *latest = test_fmt("%s/checkpoints/latest", dir);
    long long step = 0;
    ssize_t len = readlink(latest, link, sizeof link - 1);
    CHECK_MSG(len > 0 && sscanf(link, "step-%lld", &step) == 1, "%s names no checkpoint", latest);
    free(latest);
    char *extra = test_fmt("--resume --set train.grad_accum=2 --set train.threads=1 --set train.max_steps=%lld "
                      "--set schedule.total_steps=100000 --set train.eval_every=100000 --set train.save_every=20",
                      step + 2);
    char *cmd = train_cmd(0, dir, extra);
    free(extra);
    int code = run(cmd, &out);
    CHECK_MSG(code == 0 && strstr(out, "continuing from"), "resume after the kill: exit %d:\n%s", code, out);
    free(out), free(cmd), free(j.log), free(dir);
}

/* Ctrl-C to mpirun: after odls_base_sigkill_timeout seconds it sends SIGTERM to every rank and
 * after as long again SIGKILL. The ranks agree on the update to stop after, rank 0 writes one
 * checkpoint of it and prints how to continue. The delay is raised from 1 s to 5 s so that the
 * checkpoint never races the SIGKILL on a loaded machine. */
TEST(dist_e2e_ctrl_c_writes_one_checkpoint) {
    if (!mpi_ready(__func__)) return;
    char *dir = test_fmt("%s/ctrl-c", root_dir());
    job j = start_long(dir, "OMPI_MCA_odls_base_sigkill_timeout=5");
    kill(j.pid, SIGINT); /* sh exec'ed mpirun: same pid */
    bool ended = wait_job(&j, TIMEOUT_S);
    if (!ended) kill(-j.pid, SIGKILL), wait_job(&j, 10);
    CHECK(ended);
    char *out = test_read_file(j.log, NULL);
    long long step = -1;
    const char *s = out ? strstr(out, "stopped at step ") : NULL;
    CHECK_MSG(s && sscanf(s, "stopped at step %lld", &step) == 1, "no stop message:\n%s", out ? out : "");
    CHECK_MSG(out && strstr(out, "continue with: mpirun -np 2 cformer train "), "no resume hint:\n%s", out ? out : "");
    char link[64] = "";
    char *latest = test_fmt("%s/checkpoints/latest", dir);
    ssize_t n = readlink(latest, link, sizeof link - 1);
    char *want = test_fmt("step-%08lld", step);
    CHECK_MSG(n > 0 && strcmp(link, want) == 0, "latest is %s, want %s", n > 0 ? link : "(none)", want);
    /* one save of the stop step in the whole job's output (rank 0's; no rank writes it twice) */
    char *saved = test_fmt("saved checkpoint step %lld\n", step);
    int saves = 0;
    for (const char *p = out ? strstr(out, saved) : NULL; p; p = strstr(p + 1, saved)) saves++;
    CHECK_MSG(saves == 1, "the stop step %lld was saved %d times:\n%s", step, saves, out ? out : "");
    free(saved), free(want), free(latest), free(out), free(j.log), free(dir);
}

/* Bytes in dir's metrics.jsonl (rank 0 appends a line per progress line, just before printing it). */
static long metrics_size(const char *dir) {
    char *p = test_fmt("%s/metrics.jsonl", dir);
    struct stat st;
    long n = stat(p, &st) == 0 ? (long)st.st_size : -1;
    free(p);
    return n;
}

/* After Ctrl-C, mpirun stops reading the ranks' output (their stdout is a pty it holds) and sends
 * SIGTERM odls_base_sigkill_timeout seconds later. Rank 0, printing a line per update, filled its
 * pty in that time on a fast machine and blocked in write(); it never wrote its stop checkpoint
 * before the SIGKILL. Made exact here: mpirun is stopped (SIGSTOP) until rank 0's metrics stop
 * growing (it is blocked on the full pty), then both ranks get SIGTERM, as mpirun would send it.
 * The stop checkpoint must appear while mpirun is still stopped (no regular saves in this run). */
TEST(dist_e2e_stalled_output_does_not_block_the_stop_checkpoint) {
    if (!mpi_ready(__func__)) return;
    char *dir = test_fmt("%s/stalled", root_dir());
    char *base = train_cmd(2, dir, "--set train.max_steps=100000 --set schedule.total_steps=100000 "
                                   "--set train.eval_every=100000 --set train.save_every=100000 --set train.log_every=1");
    char *cmd = test_fmt("exec %s", base);
    job j = start(cmd);
    double end = cf_now_s() + TIMEOUT_S;
    while (metrics_size(dir) <= 0 && cf_now_s() < end && !wait_job(&j, 0)) test_sleep_s(0.05);
    kill(j.pid, SIGSTOP);
    long last = -1;
    for (double still_since = cf_now_s(); cf_now_s() < end && cf_now_s() - still_since < 1.5; test_sleep_s(0.1)) {
        long now = metrics_size(dir);
        if (now != last) last = now, still_since = cf_now_s();
    }
    pid_t pids[8];
    int n = rank_pids(dir, pids, 8);
    CHECK_MSG(n == 2, "found %d rank processes", n);
    for (int i = 0; i < n; i++) kill(pids[i], SIGTERM);
    while (!exists(dir, "checkpoints/latest") && cf_now_s() < end) test_sleep_s(0.05);
    CHECK_MSG(exists(dir, "checkpoints/latest"), "no stop checkpoint while rank 0's output was stalled");
    kill(j.pid, SIGCONT);
    bool ended = wait_job(&j, TIMEOUT_S);
    if (!ended) kill(-j.pid, SIGKILL), wait_job(&j, 10);
    CHECK(ended);
    free(cmd), free(base), free(j.log), free(dir);
}

/* Ranks that would train different things (here: another dropout) refuse to start. */
TEST(dist_e2e_ranks_must_agree) {
    if (!mpi_ready(__func__)) return;
    char *dir = test_fmt("%s/disagree", root_dir());
    char *a = train_cmd(0, dir, NULL), *b = train_cmd(0, dir, "--set model.dropout=0.2");
    char *cmd = test_fmt("mpirun --oversubscribe -np 1 %s : -np 1 %s", a, b), *out = NULL;
    int code = run(cmd, &out);
    CHECK_MSG(code != 0 && strstr(out, "rank 1's config differs from rank 0's"), "exit %d:\n%s", code, out);
    CHECK_MSG(!exists(dir, "checkpoints/latest") && !exists(dir, "metrics.jsonl"), "a refused job wrote %s", dir);
    free(out), free(cmd), free(a), free(b), free(dir);

    /* The same config, but rank 1 reads other bytes under the same training-data path, as on a
     * node without a shared file system: rank 1 runs in its own mount namespace where a copy of
     * train.de with one sentence changed is bound over the original. Needs the right to unshare
     * and mount (root, as in CI); skipped without it. */
    if (system("unshare --mount true >/dev/null 2>&1") != 0) {
        printf("  (%s: the data case skipped: no right to unshare a mount namespace)\n", __func__);
        return;
    }
    char *alt = test_fmt("%s/other-node.de", root_dir());
    char *setup = test_fmt("sed '1s/^/changed /' '%s/data/toy/train.de' > '%s'", CF_SOURCE_DIR, alt);
    CHECK(system(setup) == 0);
    dir = test_fmt("%s/disagree-data", root_dir());
    a = train_cmd(0, dir, NULL);
    /* rank 1's command as a script: no shell quoting of the train command inside mpirun's line */
    char *script = test_fmt("%s/rank1.sh", root_dir());
    char *body = test_fmt("mount --bind '%s' '%s/data/toy/train.de' && exec %s\n", alt, CF_SOURCE_DIR, a);
    CHECK(test_write_file(script, body, strlen(body)));
    cmd = test_fmt("mpirun --oversubscribe -np 1 %s : -np 1 unshare --mount sh '%s'", a, script);
    out = NULL;
    code = run(cmd, &out);
    CHECK_MSG(code != 0 && strstr(out, "rank 1's data (tokenizer or corpora) differs from rank 0's"), "exit %d:\n%s",
              code, out);
    CHECK_MSG(!exists(dir, "checkpoints/latest") && !exists(dir, "metrics.jsonl"), "a refused job wrote %s", dir);
    free(out), free(cmd), free(a), free(dir), free(setup), free(alt), free(script), free(body);
}

/* The I/O point (core/fileio.h) of the n-th write to metrics.jsonl in a CF_FAULT_TRACE file; -1. */
static long nth_metrics_write(const char *trace, int nth) {
    char *text = test_read_file(trace, NULL);
    long found = -1;
    for (char *p = text, *nl; p && *p && found < 0; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl) *nl = 0;
        long n;
        char op[16], path[512];
        if (sscanf(p, "%ld %15s %511s", &n, op, path) == 3 && strcmp(op, "write") == 0 &&
            strstr(path, "metrics.jsonl") && --nth == 0)
            found = n;
    }
    free(text);
    return found;
}

/* A stop that reaches rank 0 alone, just before its evaluation of update 4 (CF_FAULT_SIGNAL raises
 * SIGINT inside the write of that update's train line: an exact moment, not a race). Rank 0's
 * evaluation stops at its first batch and its verdict tells the other rank: the job stops
 * together, rank 0 writes the checkpoint of update 4 marked eval_pending, and a 2-rank resume
 * redoes the evaluation first and ends byte-identical to one process with grad_accum 2. */
TEST(dist_e2e_stop_during_rank0_evaluation_then_resume) {
    if (!mpi_ready(__func__)) return;
    const char *ref = reference(2);
    char *probe = test_fmt("%s/eval-stop-probe", root_dir()), *trace = test_fmt("%s/eval-stop.trace", root_dir());
    char *base = train_cmd(2, probe, "--set train.max_steps=4"), *cmd = test_fmt("CF_FAULT_TRACE='%s' %s", trace, base);
    char *out = NULL;
    int code = run(cmd, &out);
    CHECK_MSG(code == 0, "traced run: exit %d:\n%s", code, out);
    free(out), free(cmd), free(base);
    long point = nth_metrics_write(trace, 2); /* train lines at updates 2 and 4 */
    CHECK_MSG(point > 0, "no second metrics write in %s", trace);

    char *dir = test_fmt("%s/eval-stop", root_dir());
    base = train_cmd(2, dir, NULL);
    cmd = test_fmt("CF_FAULT_SIGNAL=%ld:%d %s", point, SIGINT, base);
    code = run(cmd, &out);
    CHECK_MSG(code != 0 && strstr(out, "interrupted (signal 2) during the evaluation: writing a checkpoint at step 4") &&
                  strstr(out, "continue with: mpirun -np 2 cformer train "),
              "exit %d, not stopped together in the evaluation:\n%s", code, out);
    CHECK_MSG(!strstr(out, "did not answer"), "a rank waited for the others in vain:\n%s", out);
    free(out), free(cmd), free(base);
    char link[64] = "", *latest = test_fmt("%s/checkpoints/latest", dir);
    ssize_t n = readlink(latest, link, sizeof link - 1);
    CHECK_MSG(n > 0 && strcmp(link, "step-00000004") == 0, "latest is %s, want step-00000004", n > 0 ? link : "(none)");
    char *state = test_fmt("%s/checkpoints/step-00000004/state.json", dir), *text = test_read_file(state, NULL);
    CHECK_MSG(text && strstr(text, "\"eval_pending\":\ttrue"), "%s does not mark the evaluation pending", state);
    free(text), free(state), free(latest);

    cmd = train_cmd(2, dir, "--resume");
    code = run(cmd, &out);
    CHECK_MSG(code == 0 && strstr(out, "running the evaluation of step 4 that was interrupted"), "resume: exit %d:\n%s",
              code, out);
    free(out), free(cmd);
    check_same_checkpoint(ref, dir, "2 ranks stopped in the evaluation, resumed");
    char *la = losses(ref), *lb = losses(dir);
    CHECK_MSG(strcmp(la, lb) == 0 && la[0], "logged losses differ:\n%s---\n%s", lb, la);
    char *mpath = test_fmt("%s/metrics.jsonl", dir), *metrics = test_read_file(mpath, NULL);
    int evals = 0;
    for (const char *p = metrics; p && (p = strstr(p, "\"event\":\"eval\"")); p++) evals++;
    CHECK_MSG(evals == 2, "%d eval lines in %s, want 2 (steps 4 and 8)", evals, mpath);
    free(metrics), free(mpath), free(la), free(lb), free(dir), free(trace), free(probe);
}

/* A run directory that another trainer holds (here: this test process, through train/lock.h):
 * rank 0 is refused with the holder's PID, and its refusal ends every rank before anything is
 * written. */
TEST(dist_e2e_locked_run_directory_refuses_the_job) {
    if (!mpi_ready(__func__)) return;
    char *dir = test_fmt("%s/locked", root_dir());
    CHECK(mkdir(dir, 0755) == 0);
    cf_run_lock *lock = cf_run_lock_acquire(dir);
    CHECK_MSG(lock != NULL, "%s", cf_error_message());
    char *cmd = train_cmd(2, dir, NULL), *out = NULL, *holder = test_fmt("(pid %ld holds", (long)getpid());
    int code = run(cmd, &out);
    CHECK_MSG(code != 0 && strstr(out, "is in use by another trainer") && strstr(out, holder), "exit %d:\n%s", code,
              out);
    CHECK_MSG(!exists(dir, "metrics.jsonl") && !exists(dir, "tokenizer.json"), "a refused job wrote into %s", dir);
    cf_run_lock_release(lock);
    free(holder), free(out), free(cmd), free(dir);
}
