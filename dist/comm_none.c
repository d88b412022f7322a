/* dist/comm_none.c - the process group of a build without MPI: one process, rank 0 of 1.
 * Only the exchange entry points can fail here: grad_sync never calls them with one rank. */
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "dist/dist.h"

bool cf_dist_compiled(void) { return false; }
const char *cf_dist_library(void) { return "no MPI"; }

int cf_dist_init(void) { return 0; }
void cf_dist_finalize(void) {}
void cf_dist_abort(int code) { exit(code); }
int cf_dist_rank(void) { return 0; }
int cf_dist_size(void) { return 1; }
void cf_dist_set_stop_flag(const volatile sig_atomic_t *flag, double grace_s) { (void)flag, (void)grace_s; }

int cf_dist_bcast(void *buf, size_t bytes, int root, const char *what) {
    (void)buf, (void)bytes, (void)what;
    return root == 0 ? 0 : -1;
}

int cf_dist_allgather(const void *mine, void *all, size_t bytes, const char *what) {
    (void)what;
    memmove(all, mine, bytes);
    return 0;
}

static int no_mpi(const char *what) {
    cf_error_set("%s: this cformer was built without MPI (make MPI=1)", what);
    return -1;
}

int cf_dist_alltoallv_start(const float *send, const int *send_counts, const int *send_displs, float *recv,
                            const int *recv_counts, const int *recv_displs, const char *what) {
    (void)send, (void)send_counts, (void)send_displs, (void)recv, (void)recv_counts, (void)recv_displs;
    return no_mpi(what);
}

int cf_dist_allgatherv_start(const float *mine, int count, float *all, const int *counts, const int *displs,
                             const char *what) {
    (void)mine, (void)count, (void)all, (void)counts, (void)displs;
    return no_mpi(what);
}

int cf_dist_wait(int req) { return req < 0 ? -1 : 0; }

int cf_dist_cpu_siblings(int *pids, int max, int *n_pids) {
    (void)pids, (void)max;
    *n_pids = 0;
    return 1;
}
