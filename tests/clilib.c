/* tests/clilib.c - see clilib.h. */
#include "tests/clilib.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "tests/test.h"
#include "tests/testlib.h"

#define TIMEOUT_S 600.0 /* generous: the machine is shared and sanitizers are slow */

bool cli_head_lines(const char *src, const char *dst, int n) {
    size_t len;
    char *text = test_read_file(src, &len);
    if (!text) return false;
    char *p = text;
    for (int i = 0; i < n && p; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    bool ok = test_write_file(dst, text, p ? (size_t)(p - text) : len);
    free(text);
    return ok;
}

static char root[256];

static void remove_root(void) {
    if (root[0]) test_rm_tree(root);
}

const char *cli_root(void) {
    if (root[0]) return root;
    /* In memory when we can: these runs fsync a lot, and on a disk that is most of their time. */
    snprintf(root, sizeof root, "/dev/shm/cformer-test-cli-XXXXXX");
    if (access("/dev/shm", W_OK) != 0 || !mkdtemp(root)) snprintf(root, sizeof root, "%s", test_tmpdir("cli"));
    atexit(remove_root);
    const struct { const char *name; int lines; } files[] = {
        {"train.de", 1000}, {"train.en", 1000}, {"valid.de", 20}, {"valid.en", 20}, {"test.de", 20}, {"test.en", 20}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *src = test_fmt("%s/data/toy/%s", CF_SOURCE_DIR, files[i].name), *dst = test_fmt("%s/%s", root, files[i].name);
        CHECK_MSG(cli_head_lines(src, dst, files[i].lines), "cannot copy %s to %s", src, dst);
        free(src);
        free(dst);
    }
    return root;
}

cli_proc cli_start(const cli_opts *o, int n, const char *const *args) {
    static int counter;
    static const cli_opts none;
    if (!o) o = &none;
    cli_proc p = {0};
    p.out_path = o->stdout_path ? strdup(o->stdout_path) : test_fmt("%s/run-%04d.out", cli_root(), counter);
    p.err_path = test_fmt("%s/run-%04d.err", cli_root(), counter++);
    const char *argv[CLI_MAX_ARGS + 8];
    int k = 0;
    char *limit = NULL;
    if (o->ulimit_v_kib) { /* through the shell: ulimit is a builtin */
        limit = test_fmt("ulimit -v %s && exec \"$0\" \"$@\"", o->ulimit_v_kib);
        argv[k++] = "/bin/sh";
        argv[k++] = "-c";
        argv[k++] = limit;
    }
    argv[k++] = test_cformer_path();
    for (int i = 0; i < n && k < CLI_MAX_ARGS + 7; i++) argv[k++] = args[i];
    argv[k] = NULL;
    fflush(stdout);
    p.pid = fork();
    if (p.pid == 0) {
        int in = open(o->stdin_path ? o->stdin_path : "/dev/null", O_RDONLY);
        int out = open(p.out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(p.err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0) _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        /* what build/cformer would re-exec itself with (cli/main.c): set here, it starts once */
        if (!getenv("GOMP_SPINCOUNT") && !getenv("OMP_WAIT_POLICY")) putenv("GOMP_SPINCOUNT=1000");
        for (int i = 0; i < CLI_MAX_ENV && o->env[i]; i++) putenv((char *)o->env[i]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    free(limit);
    CHECK_MSG(p.pid > 0, "fork failed: %s", strerror(errno));
    return p;
}

cli_result cli_finish(cli_proc *p) {
    cli_result r = {.code = -1};
    double t_end = cf_now_s() + TIMEOUT_S;
    for (;;) {
        int status;
        pid_t w = waitpid(p->pid, &status, WNOHANG);
        if (w == p->pid) {
            r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        if (w < 0 || cf_now_s() >= t_end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            test_fail(__FILE__, __LINE__, "timed out after %.0f s", TIMEOUT_S);
            break;
        }
        struct timespec t = {0, 2000000};
        nanosleep(&t, NULL);
    }
    r.out = test_read_file(p->out_path, NULL);
    r.err = test_read_file(p->err_path, NULL);
    if (!r.out) r.out = strdup("");
    if (!r.err) r.err = strdup("");
    free(p->out_path);
    free(p->err_path);
    return r;
}

cli_result cli_runv(const cli_opts *o, int n, const char *const *args) {
    cli_proc p = cli_start(o, n, args);
    return cli_finish(&p);
}

cli_result cli_run(const cli_opts *o, const char *arg0, ...) {
    const char *args[CLI_MAX_ARGS];
    int n = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *s = arg0; s && n < CLI_MAX_ARGS; s = va_arg(ap, const char *)) args[n++] = s;
    va_end(ap);
    return cli_runv(o, n, args);
}

void cli_result_free(cli_result *r) {
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

static const char *own(cli_args *a, char *s) {
    if (a->n_owned >= CLI_MAX_ARGS) abort();
    return a->owned[a->n_owned++] = s;
}

static void push(cli_args *a, const char *s) {
    if (a->n >= CLI_MAX_ARGS) abort();
    a->v[a->n++] = s;
}

void cli_train_args(cli_args *a, const char *dir, bool resume, const char *const *extra) {
    memset(a, 0, sizeof *a);
    const char *r = cli_root();
    push(a, "train");
    push(a, own(a, test_fmt("%s/configs/tiny.json", CF_SOURCE_DIR)));
    push(a, "--out");
    push(a, dir);
    push(a, "--quiet");
    /* schedule.total_steps explicit: a resume with another max_steps keeps the same curve */
    static const char *const sets[] = {"train.max_steps=8", "schedule.total_steps=8", "schedule.warmup_steps=2",
                                       "train.eval_every=4", "train.save_every=4", "train.log_every=2",
                                       "train.eval_max_sentences=10", "train.threads=1", "model.dropout=0.1", NULL};
    for (int i = 0; sets[i]; i++) {
        push(a, "--set");
        push(a, sets[i]);
    }
    const char *files[] = {"train_src", "train.de", "train_tgt", "train.en", "valid_src", "valid.de",
                           "valid_tgt", "valid.en", "test_src", "test.de", "test_tgt", "test.en"};
    for (int i = 0; i < 12; i += 2) {
        push(a, "--set");
        push(a, own(a, test_fmt("data.%s=%s/%s", files[i], r, files[i + 1])));
    }
    for (int i = 0; extra && extra[i]; i++) {
        push(a, "--set");
        push(a, extra[i]);
    }
    if (resume) push(a, "--resume");
}

void cli_args_free(cli_args *a) {
    for (int i = 0; i < a->n_owned; i++) free(a->owned[i]);
    memset(a, 0, sizeof *a);
}

int cli_latest_step(const char *dir) {
    char *link = test_fmt("%s/checkpoints/latest", dir), target[256];
    ssize_t n = readlink(link, target, sizeof target - 1);
    free(link);
    if (n <= 0) return -1;
    target[n] = 0;
    int step = -1;
    return sscanf(target, "step-%d", &step) == 1 ? step : -1;
}

bool cli_same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = test_read_file(a, &na), *y = test_read_file(b, &nb);
    bool same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

char *cli_metrics_digest(const char *dir) {
    char *path = test_fmt("%s/metrics.jsonl", dir), *text = test_read_file(path, NULL);
    free(path);
    size_t cap = 4096, used = 0;
    char *out = cf_xmalloc(cap);
    out[0] = 0;
    for (char *s = text, *nl; s && *s; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl) *nl = 0;
        cJSON *j = cJSON_Parse(s);
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "event");
        bool train = cJSON_IsString(ev) && strcmp(ev->valuestring, "train") == 0;
        const char *k1 = train ? "loss" : "valid_loss", *k2 = train ? "lr" : "bleu";
        char line[160];
        int len = snprintf(line, sizeof line, "%s %g %.9g %.9g%s\n", cJSON_IsString(ev) ? ev->valuestring : "?",
                           cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, "step")),
                           cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, k1)),
                           cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(j, k2)), nl ? "" : " (torn)");
        if (used + (size_t)len + 1 > cap) out = cf_xrealloc(out, cap = 2 * cap + (size_t)len);
        memcpy(out + used, line, (size_t)len + 1);
        used += (size_t)len;
        cJSON_Delete(j);
    }
    free(text);
    return out;
}

bool cli_clean_stderr(const char *err) {
    static const char *const marks[] = {"Sanitizer", "runtime error:", "internal error", "Aborted", NULL};
    for (int i = 0; marks[i]; i++)
        if (strstr(err, marks[i])) return false;
    return true;
}
