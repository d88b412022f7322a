/* dist/comm_mpi.c - the process group on MPI (built with `make MPI=1` only).
 *
 * MPI only moves bytes here; every addition happens in dist/grad_sync.c in a fixed order. All
 * waits go through one polling loop (wait_request) for three reasons: it sleeps between polls,
 * so a rank waiting for a slower one leaves the CPU to it (Open MPI's blocking calls spin, which
 * on a shared or oversubscribed node steals the time the others need); each poll also drives the
 * progress of every other outstanding non-blocking collective; and it can give up with a clear
 * message when a stop signal came and the other ranks stopped answering.
 */
#include <mpi.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "dist/dist.h"

static bool initialized, finalized;
static bool peers_gone; /* a wait gave up on the other ranks: the launcher is already ending the job */
static int my_rank, n_ranks = 1;
static const volatile sig_atomic_t *stop_flag;
static double stop_grace_s = 3.0;

enum { MAX_REQUESTS = 512 };
static MPI_Request requests[MAX_REQUESTS];
static const char *request_what[MAX_REQUESTS];
static bool request_used[MAX_REQUESTS];

bool cf_dist_compiled(void) { return true; }

const char *cf_dist_library(void) {
    static char version[MPI_MAX_LIBRARY_VERSION_STRING];
    if (!version[0]) {
        int len = 0;
        MPI_Get_library_version(version, &len);
        version[strcspn(version, "\n")] = 0; /* the first line names the implementation and version */
    }
    return version;
}

static int mpi_failed(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error %d", rc);
    cf_error_set("rank %d: %s: %s", my_rank, what, msg);
    return -1;
}

int cf_dist_init(void) {
    if (initialized || !cf_dist_launched()) return 0;
    int provided = 0;
    /* Only the main thread calls MPI; OpenMP threads run kernels between calls. */
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return mpi_failed(rc, "MPI_Init_thread");
    initialized = true;
    /* Errors come back as codes (and become messages) instead of aborting inside MPI. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    return 0;
}

void cf_dist_finalize(void) {
    if (!initialized || finalized) return;
    finalized = true;
    MPI_Finalize();
}

void cf_dist_abort(int code) {
    fflush(NULL);
    if (peers_gone) _exit(code); /* MPI_Abort would wait for ranks that are gone */
    if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

int cf_dist_rank(void) { return my_rank; }
int cf_dist_size(void) { return n_ranks; }

void cf_dist_set_stop_flag(const volatile sig_atomic_t *flag, double grace_s) {
    stop_flag = flag;
    stop_grace_s = grace_s;
}

/* ---- requests ---- */

static int new_request(const char *what) {
    for (int i = 0; i < MAX_REQUESTS; i++)
        if (!request_used[i]) {
            request_used[i] = true;
            request_what[i] = what;
            return i;
        }
    cf_error_set("rank %d: %s: more than %d exchanges in flight", my_rank, what, MAX_REQUESTS);
    return -1;
}

static void sleep_us(long us) {
    struct timespec t = {0, us * 1000};
    nanosleep(&t, NULL);
}

int cf_dist_wait(int req) {
    if (req < 0 || req >= MAX_REQUESTS || !request_used[req]) {
        cf_error_set("rank %d: cf_dist_wait: no request %d", my_rank, req);
        return -1;
    }
    const char *what = request_what[req];
    double signalled_at = -1;
    long pause_us = 0;
    for (long polls = 0;; polls++) {
        int done = 0;
        int rc = MPI_Test(&requests[req], &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) {
            request_used[req] = false;
            return mpi_failed(rc, what);
        }
        if (done) break;
        if (stop_flag && *stop_flag) {
            double now = cf_now_s();
            if (signalled_at < 0) signalled_at = now;
            if (now - signalled_at > stop_grace_s) {
                request_used[req] = false; /* abandoned: the job is ending */
                peers_gone = true;
                cf_error_set("rank %d: stopped by a signal while waiting for the other ranks in %s, and they did not "
                             "answer for %.0f s: a rank died or was killed (mpirun names it); resume from the newest "
                             "complete checkpoint with --resume", my_rank, what, stop_grace_s);
                return -1;
            }
        }
        /* A few quick polls for the common case of a short wait, then sleeps growing to 1 ms. */
        if (polls < 64) {
            sched_yield();
        } else {
            pause_us = pause_us ? (pause_us * 2 > 1000 ? 1000 : pause_us * 2) : 20;
            sleep_us(pause_us);
        }
    }
    request_used[req] = false;
    return 0;
}

/* ---- collectives ---- */

int cf_dist_alltoallv_start(const float *send, const int *send_counts, const int *send_displs, float *recv,
                            const int *recv_counts, const int *recv_displs, const char *what) {
    int req = new_request(what);
    if (req < 0) return -1;
    int rc = MPI_Ialltoallv(send, send_counts, send_displs, MPI_FLOAT, recv, recv_counts, recv_displs, MPI_FLOAT,
                            MPI_COMM_WORLD, &requests[req]);
    if (rc != MPI_SUCCESS) {
        request_used[req] = false;
        return mpi_failed(rc, what);
    }
    return req;
}

int cf_dist_allgatherv_start(const float *mine, int count, float *all, const int *counts, const int *displs,
                             const char *what) {
    int req = new_request(what);
    if (req < 0) return -1;
    int rc = MPI_Iallgatherv(mine, count, MPI_FLOAT, all, counts, displs, MPI_FLOAT, MPI_COMM_WORLD, &requests[req]);
    if (rc != MPI_SUCCESS) {
        request_used[req] = false;
        return mpi_failed(rc, what);
    }
    return req;
}

static int check_size(size_t bytes, const char *what) {
    if (bytes > (size_t)1 << 30) {
        cf_error_set("rank %d: %s: %zu bytes is more than one message takes", my_rank, what, bytes);
        return -1;
    }
    return 0;
}

int cf_dist_bcast(void *buf, size_t bytes, int root, const char *what) {
    if (n_ranks == 1 || bytes == 0) return 0;
    if (check_size(bytes, what) != 0) return -1;
    int req = new_request(what);
    if (req < 0) return -1;
    int rc = MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD, &requests[req]);
    if (rc != MPI_SUCCESS) {
        request_used[req] = false;
        return mpi_failed(rc, what);
    }
    return cf_dist_wait(req);
}

static int allgather_on(MPI_Comm comm, const void *mine, void *all, size_t bytes, const char *what) {
    if (check_size(bytes, what) != 0) return -1;
    int req = new_request(what);
    if (req < 0) return -1;
    int rc = MPI_Iallgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, comm, &requests[req]);
    if (rc != MPI_SUCCESS) {
        request_used[req] = false;
        return mpi_failed(rc, what);
    }
    return cf_dist_wait(req);
}

int cf_dist_allgather(const void *mine, void *all, size_t bytes, const char *what) {
    if (n_ranks == 1) {
        memmove(all, mine, bytes);
        return 0;
    }
    return allgather_on(MPI_COMM_WORLD, mine, all, bytes, what);
}

/* ---- ranks sharing CPUs ---- */

typedef struct cpu_owner {
    int pid;
    cpu_set_t mask;
} cpu_owner;

int cf_dist_cpu_siblings(int *pids, int max, int *n_pids) {
    *n_pids = 0;
    if (n_ranks == 1) return 1;
    MPI_Comm node;
    int rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    if (rc != MPI_SUCCESS) return mpi_failed(rc, "finding the ranks of this node");
    MPI_Comm_set_errhandler(node, MPI_ERRORS_RETURN);
    int n_local = 1;
    MPI_Comm_size(node, &n_local);
    cpu_owner me = {.pid = (int)getpid()};
    if (sched_getaffinity(0, sizeof me.mask, &me.mask) != 0) CPU_ZERO(&me.mask);
    cpu_owner *all = cf_xcalloc((size_t)n_local, sizeof *all);
    int shared = -1;
    if (allgather_on(node, &me, all, sizeof me, "exchanging CPU masks") == 0) {
        shared = 0;
        for (int i = 0; i < n_local; i++) {
            cpu_set_t both;
            CPU_AND(&both, &me.mask, &all[i].mask);
            if (CPU_COUNT(&both) == 0) continue;
            shared++;
            if (all[i].pid != me.pid && *n_pids < max) pids[(*n_pids)++] = all[i].pid;
        }
    }
    free(all);
    MPI_Comm_free(&node);
    return shared;
}
