/* train/dist_setup.c - threads per rank and the start-up agreement (train/dist_setup.h). */
#include "train/dist_setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/threads.h"
#include "dist/dist.h"

int cf_dist_share_cpus(void) {
    if (cf_dist_size() == 1) return 0;
    enum { MAX_PIDS = 256 };
    int pids[MAX_PIDS], n_pids = 0;
    int n = cf_dist_cpu_siblings(pids, MAX_PIDS, &n_pids);
    if (n < 0) return -1;
    cf_threads_set_siblings(n, pids, n_pids);
    return 0;
}

/* 8 bytes at a time through a multiply-xorshift mix: fast enough for a 100M-parameter model
 * (one pass at memory speed), and any changed byte changes the hash. */
void cf_fingerprint_add(uint64_t *h, const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    uint64_t x = *h ^ (0x9e3779b97f4a7c15ull * (n + 1));
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        x = (x ^ w) * 0xbf58476d1ce4e5b9ull;
        x ^= x >> 31;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    x = (x ^ w ^ n) * 0x94d049bb133111ebull;
    *h = x ^ (x >> 29);
}

typedef struct rank_report {
    int32_t code;
    int32_t pad;
    uint64_t error_hash;
    cf_fingerprint fp;
} rank_report;

int cf_dist_agree_start(int code, const cf_fingerprint *fp) {
    const int size = cf_dist_size(), rank = cf_dist_rank();
    if (size == 1) return code;
    const char *msg = cf_error_message();
    rank_report me = {.code = code};
    if (code != 0) cf_fingerprint_add(&me.error_hash, msg, strlen(msg));
    else if (fp) me.fp = *fp;
    rank_report *all = cf_xcalloc((size_t)size, sizeof *all);
    if (cf_dist_allgather(&me, all, sizeof me, "the start-up agreement") != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        free(all);
        return 1;
    }
    int job = 0;
    for (int r = 0; r < size; r++)
        if (all[r].code > job) job = all[r].code;
    if (job != 0) {
        /* Print this rank's error unless a lower rank fails with the same message. */
        bool printed_below = false;
        for (int r = 0; r < rank && code != 0; r++) printed_below |= all[r].code != 0 && all[r].error_hash == me.error_hash;
        if (code != 0 && !printed_below) {
            if (rank == 0) fprintf(stderr, "error: %s\n", msg);
            else fprintf(stderr, "error: rank %d of %d: %s\n", rank, size, msg);
        }
        free(all);
        return job;
    }
    static const char *const parts[] = {"config", "data (tokenizer or corpora)", "starting state (weights, step, data position)"};
    for (int r = 1; r < size; r++) {
        const uint64_t a[3] = {all[0].fp.config, all[0].fp.data, all[0].fp.state};
        const uint64_t b[3] = {all[r].fp.config, all[r].fp.data, all[r].fp.state};
        for (int k = 0; k < 3; k++) {
            if (a[k] == b[k]) continue;
            job = 2;
            if (rank == 0)
                fprintf(stderr, "error: rank %d's %s differs from rank 0's: every rank must read the same config, data "
                        "files and run directory (a shared file system) to train one model\n", r, parts[k]);
            break;
        }
    }
    free(all);
    return job;
}
