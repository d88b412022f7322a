/* core/threads.c - the thread count: configured maximum, CPUs available, and load following. */
#include "core/threads.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "core/gemm.h"

static int max_threads = 1, cur_threads = 1;

typedef struct load_sample {
    double wall, own_cpu;    /* seconds; own_cpu includes the siblings' */
    double busy;             /* seconds of busy time summed over our CPUs (steal included) */
    bool valid;
} load_sample;
static load_sample last;
static int quota_cpus = -1; /* cgroup_cpus(), read once: adapting must not open files with stdio */
static bool adaptive;
/* Sibling processes sharing our CPUs (the ranks of a data-parallel job on one node, bound to the
 * same cores or to none): their CPU time is ours, not foreign load. */
enum { MAX_SIBLINGS = 256 };
static int share = 1, sibling_pids[MAX_SIBLINGS], n_siblings;

const char *cf_threads_blas_model(void) {
    switch (openblas_get_parallel()) {
    case 0: return "sequential";
    case 1: return "pthreads";
    case 2: return "OpenMP";
    default: return "unknown";
    }
}

/* CPUs a cgroup quota allows (v2 cpu.max, else v1 cfs quota/period), rounded up; 0 if unlimited. */
static int cgroup_cpus(void) {
    long long quota = -1, period = 0;
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char q[32] = "";
        if (fscanf(f, "%31s %lld", q, &period) == 2 && strcmp(q, "max") != 0) quota = atoll(q);
        fclose(f);
    } else if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r"))) {
        if (fscanf(f, "%lld", &quota) != 1) quota = -1;
        fclose(f);
        if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r"))) {
            if (fscanf(f, "%lld", &period) != 1) period = 0;
            fclose(f);
        }
    }
    if (quota <= 0 || period <= 0) return 0;
    return (int)((quota + period - 1) / period);
}

int cf_threads_available(void) {
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : omp_get_num_procs();
    if (quota_cpus < 0) quota_cpus = cgroup_cpus();
    if (quota_cpus > 0 && quota_cpus < n) n = quota_cpus;
    return n > 0 ? n : 1;
}

static void set_current(int n) {
    cur_threads = n;
    omp_set_num_threads(n);
}

int cf_threads_set_count(int n) {
    int max = cf_threads_max();
    set_current(n < 1 ? 1 : n > max ? max : n);
    return cur_threads;
}

/* Under a finite address-space limit (ulimit -v), OpenBLAS's per-call buffers (128 MiB each) are
 * the one allocation that cannot fail cleanly: blas_memory_alloc retries a failed allocation
 * forever, so a thread that needs its first buffer once memory is used up hangs the run (seen:
 * 2 threads, d_ff 8000, ulimit -v 600000). So let every thread take its buffer now, while there is
 * room (n products started together), and keep room for those that did not, and for each thread's
 * malloc arena (cf_memory_reserve: our own allocations then fail first, with a message). Without
 * a limit none of this runs. */
static void blas_buffers_warm_up(int n) {
    size_t before = cf_memory_vm_bytes();
    enum { W = 256 };
    cf_real *buf = cf_xcalloc((size_t)(3 * W * W) * (size_t)n, sizeof *buf);
#pragma omp parallel num_threads(n)
    {
        cf_real *a = buf + (size_t)omp_get_thread_num() * 3 * W * W;
#pragma omp barrier
        cf_gemm_serial(false, false, W, W, W, 1, a, W, a + W * W, W, 0, a + 2 * W * W, W);
    }
    free(buf);
    size_t grown = cf_memory_vm_bytes() - before, buffer = (size_t)128 << 20;
    int have = (int)(grown / buffer), missing = n - 1 - have;
    if (missing < 0) missing = 0;
    cf_memory_reserve((size_t)missing * (buffer + ((size_t)8 << 20)) + (size_t)(n - 1) * ((size_t)64 << 20) +
                      ((size_t)16 << 20));
}

void cf_threads_set_siblings(int n_sharing, const int *pids, int n_pids) {
    share = n_sharing > 1 ? n_sharing : 1;
    n_siblings = 0;
    for (int i = 0; i < n_pids && n_siblings < MAX_SIBLINGS; i++) sibling_pids[n_siblings++] = pids[i];
    last.valid = false;
}

int cf_threads_init(int n_threads) {
    quota_cpus = cgroup_cpus();
    if (n_threads <= 0) n_threads = cf_threads_available() / share;
    if (n_threads < 1) n_threads = 1;
    max_threads = n_threads;
    /* BLAS runs single-threaded inside core/gemm.h's tiles; in the OpenMP build this call also sets
     * OpenMP's count, so it goes first. */
    openblas_set_num_threads(1);
    set_current(n_threads);
    if (openblas_get_parallel() != 2) {
        cf_error_set("OpenBLAS threading model is %s, expected OpenMP: link the openblas-openmp "
                     "build (see Makefile)", cf_threads_blas_model());
        return -1;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) blas_buffers_warm_up(n_threads);
    return 0;
}

int cf_threads_count(void) { return cur_threads; }
int cf_threads_max(void) { return max_threads; }

/* ---- load following ---- */

enum { LOAD_MAX_CPUS = 1024 };
#define LOAD_INTERVAL_S 0.5
/* Keep a thread only while at least this much of its CPU is free: a core that another process uses
 * 40% of the time already costs more in barrier waits than the thread gives. */
#define LOAD_KEEP_FRACTION 0.6


static double others = -1;
static long n_changes;

static double clock_s(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Busy seconds of the CPUs in our affinity mask, from /proc/stat's per-CPU lines, and how many
 * CPUs that is; -1 if unreadable. read(2) into a static buffer: no allocation between steps. */
static double busy_seconds(int *n_cpus) {
    static char buf[1 << 17];
    errno = 0;
    int prio = getpriority(PRIO_PROCESS, 0);
    bool count_nice = errno != 0 || prio > 0;
    int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)r;
    close(fd);
    if (len == sizeof buf - 1) return -1; /* truncated: more CPUs than we parse */
    buf[len] = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    double hz = (double)sysconf(_SC_CLK_TCK), busy = 0;
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9') continue;
        char *end;
        long cpu = strtol(line + 3, &end, 10);
        if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET((int)cpu, &set)) continue;
        /* user nice system idle iowait irq softirq steal */
        unsigned long long v[8] = {0};
        for (int i = 0; i < 8; i++) v[i] = strtoull(end, &end, 10);
        /* Niced processes' time ("nice") is not load for a process at priority 0: the scheduler
         * gives us ~90% of a core beside a nice-10 job (weights 1024 vs 110), so giving up a
         * thread for it costs more than sharing the core (docs/performance.md "Load"). A niced
         * process of our own counts it: its competitors then run at its level. */
        unsigned long long niced = count_nice ? v[1] : 0;
        busy += (double)(v[0] + niced + v[2] + v[5] + v[6] + v[7]) / hz;
        ++*n_cpus;
    }
    return *n_cpus > 0 ? busy : -1;
}

/* CPU seconds (user + system) the sibling processes used so far, from /proc/PID/stat; a sibling
 * that is gone counts 0 (its share of the machine is then free). read(2): no allocation. */
static double siblings_cpu_seconds(void) {
    static char buf[4096];
    double hz = (double)sysconf(_SC_CLK_TCK), total = 0;
    for (int i = 0; i < n_siblings; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", sibling_pids[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len <= 0) continue;
        buf[len] = 0;
        char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
        if (!p) continue;
        p++;
        /* fields after the name: state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
        for (int field = 3; field < 14 && p; field++) p = strchr(p + 1, ' ');
        if (!p) continue;
        char *end;
        unsigned long long ut = strtoull(p, &end, 10), st = strtoull(end, &end, 10);
        total += (double)(ut + st) / hz;
    }
    return total;
}

void cf_threads_set_adaptive(bool on) {
    adaptive = on;
    last.valid = false;
    if (!on && cur_threads != max_threads) set_current(max_threads);
}

bool cf_threads_adaptive(void) { return adaptive; }
double cf_threads_load_others(void) { return others; }
long cf_threads_changes(void) { return n_changes; }

int cf_threads_adapt(void) {
    if (!adaptive || max_threads <= 1) return cur_threads;
    double wall = clock_s(CLOCK_MONOTONIC);
    if (last.valid && wall - last.wall < LOAD_INTERVAL_S) return cur_threads;
    int cpus = 0;
    load_sample s = {.wall = wall, .own_cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) + siblings_cpu_seconds(),
                     .busy = busy_seconds(&cpus)};
    s.valid = s.busy >= 0;
    if (!s.valid) return cur_threads;
    if (last.valid) {
        double dt = s.wall - last.wall;
        double used = (s.busy - last.busy) - (s.own_cpu - last.own_cpu);
        others = used > 0 ? used / dt : 0;
        if (quota_cpus > 0 && quota_cpus < cpus) cpus = quota_cpus;
        double free_cpus = ((double)cpus - others) / share; /* siblings split what others leave */
        int want = (int)floor(free_cpus + (1 - LOAD_KEEP_FRACTION));
        if (want > max_threads) want = max_threads;
        if (want < 1) want = 1;
        if (want != cur_threads) {
            set_current(want);
            n_changes++;
        }
    }
    last = s;
    return cur_threads;
}
