/* dist/grad_sync.c - one update's gradient: accumulation over micro-batches and, on K ranks, the
 * exchange. The order of every addition is the one dist/dist.h states; this file is the only
 * place that adds gradients of different micro-batches, for one process and for K ranks alike.
 *
 * Layout: the parameters' gradients are seen as one flat vector of T floats, parameters in
 * reverse order (the last layers' gradients are complete first in a backward pass, so a future
 * overlap of the exchange with the backward pass would send the first buckets first). The vector
 * is cut into buckets of about bucket_bytes, each bucket into K chunks; rank c owns chunk c of
 * every bucket: it receives every rank's values of that chunk (alltoallv), folds them, scales
 * them, and sends the result to every rank (allgatherv).
 *
 * Buffers (K ranks): send [T] (n_m * g_m, later the gathered result), recv [about T] (K slots of
 * this rank's chunk of each bucket), mine [about T / K] (the running sums of its chunks). One
 * process with G > 1: acc [T]. One process with G = 1: nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/parallel.h"
#include "dist/dist.h"

_Static_assert(sizeof(cf_real) == sizeof(float), "the exchange sends MPI_FLOAT");

enum { PAR_MIN = 1 << 15 }; /* elements below which a pass runs on one thread */

typedef struct bucket {
    int64_t lo, len;            /* flat range */
    int *send_counts, *send_displs, *recv_counts, *recv_displs; /* [K] each, in elements */
    int64_t mine_lo, mine_len;  /* this rank's chunk (flat) */
    float *recv;                /* [K * mine_len] slot j: rank j's values of the chunk */
    float *mine;                /* [mine_len] */
    int req;                    /* the exchange in flight, -1 if none */
} bucket;

struct cf_grad_sync {
    cf_tensor **params;         /* [n] in flat order (reverse of the given order) */
    int64_t *offset;            /* [n] flat offset of params[i] */
    int n;
    int64_t total;              /* T */
    int64_t accum, local;       /* G, and G / K micro-batches per rank */
    int rank, size;
    float *acc;                 /* one process, G > 1: [T] */
    float *send;                /* K ranks: [T] */
    float *recv_all, *mine_all;
    bucket *buckets;
    int n_buckets;
    double *records;            /* [2 * local + 1]: (mean loss, tokens) per local micro-batch, flags */
    double *records_all;        /* [K * (2 * local + 1)] */
    int64_t added;              /* local micro-batches added in this update */
    int64_t next_m;             /* the smallest m the next add may take */
    double comm_s;
};

cf_grad_sync *cf_grad_sync_new(cf_tensor *const *params, int n, int64_t accum, size_t bucket_bytes) {
    int size = cf_dist_size();
    if (accum < 1 || accum % size != 0) {
        cf_error_set("gradient accumulation %lld is not a multiple of the %d ranks", (long long)accum, size);
        return NULL;
    }
    cf_grad_sync *s = cf_xcalloc(1, sizeof *s);
    s->n = n;
    s->accum = accum;
    s->size = size;
    s->rank = cf_dist_rank();
    s->local = accum / size;
    s->params = cf_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *s->params);
    s->offset = cf_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *s->offset);
    for (int i = 0; i < n; i++) {
        s->params[i] = params[n - 1 - i];
        s->offset[i] = s->total;
        s->total += s->params[i]->numel;
    }
    s->records = cf_xcalloc((size_t)(2 * s->local + 1), sizeof *s->records);
    s->records_all = cf_xcalloc((size_t)size * (size_t)(2 * s->local + 1), sizeof *s->records_all);
    if (size == 1) {
        if (accum > 1) s->acc = cf_xmalloc((size_t)(s->total > 0 ? s->total : 1) * sizeof *s->acc);
        return s;
    }
    int64_t per_bucket = (int64_t)((bucket_bytes ? bucket_bytes : 16u << 20) / sizeof(float));
    if (per_bucket < size) per_bucket = size;
    if (per_bucket > (1 << 28)) per_bucket = 1 << 28; /* MPI counts are ints */
    s->n_buckets = (int)((s->total + per_bucket - 1) / per_bucket);
    if (s->n_buckets < 1) s->n_buckets = 1;
    s->buckets = cf_xcalloc((size_t)s->n_buckets, sizeof *s->buckets);
    s->send = cf_xmalloc((size_t)(s->total > 0 ? s->total : 1) * sizeof *s->send);
    int64_t recv_total = 0, mine_total = 0;
    for (int b = 0; b < s->n_buckets; b++) {
        bucket *k = &s->buckets[b];
        k->lo = s->total * b / s->n_buckets;
        k->len = s->total * (b + 1) / s->n_buckets - k->lo;
        k->send_counts = cf_xmalloc(4 * (size_t)size * sizeof(int));
        k->send_displs = k->send_counts + size;
        k->recv_counts = k->send_counts + 2 * size;
        k->recv_displs = k->send_counts + 3 * size;
        for (int c = 0; c < size; c++) { /* chunk c of the bucket goes to rank c */
            int64_t c_lo = k->len * c / size, c_hi = k->len * (c + 1) / size;
            k->send_counts[c] = (int)(c_hi - c_lo);
            k->send_displs[c] = (int)c_lo;
            if (c == s->rank) {
                k->mine_lo = k->lo + c_lo;
                k->mine_len = c_hi - c_lo;
            }
        }
        for (int j = 0; j < size; j++) { /* slot j: rank j's values of my chunk */
            k->recv_counts[j] = (int)k->mine_len;
            k->recv_displs[j] = (int)(j * k->mine_len);
        }
        k->req = -1;
        recv_total += size * k->mine_len;
        mine_total += k->mine_len;
    }
    s->recv_all = cf_xmalloc((size_t)(recv_total > 0 ? recv_total : 1) * sizeof(float));
    s->mine_all = cf_xmalloc((size_t)(mine_total > 0 ? mine_total : 1) * sizeof(float));
    for (int b = 0, r = 0, m = 0; b < s->n_buckets; b++) {
        s->buckets[b].recv = s->recv_all + r;
        s->buckets[b].mine = s->mine_all + m;
        r += (int)(size * s->buckets[b].mine_len);
        m += (int)s->buckets[b].mine_len;
    }
    return s;
}

void cf_grad_sync_free(cf_grad_sync *s) {
    if (!s) return;
    for (int b = 0; b < s->n_buckets; b++) free(s->buckets[b].send_counts);
    free(s->buckets);
    free(s->send);
    free(s->recv_all);
    free(s->mine_all);
    free(s->acc);
    free(s->records);
    free(s->records_all);
    free(s->params);
    free(s->offset);
    free(s);
}

double cf_grad_sync_comm_seconds(const cf_grad_sync *s) { return s->comm_s; }

int cf_grad_sync_buckets(const cf_grad_sync *s) { return s->n_buckets; }

/* ---- the arithmetic: the only additions across micro-batches ---- */

/* out[e] = w * g[e] (first) or out[e] + w * g[e], with the product rounded to float first, so
 * that one process (acc) and K ranks (send here, the fold below) add the very same values. g is
 * zeroed: the next micro-batch's backward starts from nothing. */
static void fold_weighted(float *restrict out, float *restrict g, int64_t n, float w, bool first) {
    CF_PARALLEL_FOR(n > PAR_MIN, for (int64_t e = 0; e < n; e++) {
        float x = w * g[e];
        out[e] = first ? x : out[e] + x;
        g[e] = 0;
    });
}

/* mine[e] = (first ? slot 0 : mine[e] + slot 0) + slot 1 + ... + slot K-1: micro-batches
 * aK .. aK+K-1 folded onto the running sum in rank order, as one process folds them. */
static void fold_slots(float *restrict mine, const float *restrict recv, int64_t n, int k, bool first) {
    CF_PARALLEL_FOR(n * k > PAR_MIN, for (int64_t e = 0; e < n; e++) {
        float v = first ? recv[e] : mine[e] + recv[e];
        for (int j = 1; j < k; j++) v = v + recv[(int64_t)j * n + e];
        mine[e] = v;
    });
}

static void scale(float *restrict x, int64_t n, float f) {
    CF_PARALLEL_FOR(n > PAR_MIN, for (int64_t e = 0; e < n; e++) {
        x[e] = x[e] * f;
    });
}

/* 1 / N as the float every path multiplies by; no tokens: a zero gradient. */
static float inverse_tokens(double tokens) { return tokens > 0 ? (float)(1.0 / tokens) : 0.0f; }

/* ---- one process ---- */

static void add_local(cf_grad_sync *s, float w, bool first) {
    for (int i = 0; i < s->n; i++)
        fold_weighted(s->acc + s->offset[i], s->params[i]->grad, s->params[i]->numel, w, first);
}

static void finish_local(cf_grad_sync *s, float inv) {
    for (int i = 0; i < s->n; i++) {
        cf_tensor *p = s->params[i];
        const float *a = s->acc + s->offset[i];
        CF_PARALLEL_FOR(p->numel > PAR_MIN, for (int64_t e = 0; e < p->numel; e++) {
            p->grad[e] = a[e] * inv;
        });
    }
}

/* ---- K ranks ---- */

/* Calls fn(param, element offset in param, flat position, count) for every piece of [lo, lo+len). */
#define FOR_PIECES(s, lo_, len_, BODY)                                                             \
    do {                                                                                           \
        int64_t lo__ = (lo_), hi__ = (lo_) + (len_);                                               \
        for (int i__ = 0; i__ < (s)->n; i__++) {                                                   \
            int64_t p_lo = (s)->offset[i__], p_hi = p_lo + (s)->params[i__]->numel;                \
            if (p_hi <= lo__ || p_lo >= hi__) continue;                                            \
            int64_t from = p_lo > lo__ ? p_lo : lo__, to = p_hi < hi__ ? p_hi : hi__;              \
            cf_tensor *param = (s)->params[i__];                                                   \
            int64_t at = from - p_lo, flat = from, count = to - from;                              \
            BODY;                                                                                  \
        }                                                                                          \
    } while (0)

/* Waits for bucket b's exchange of the previous round and folds it in. */
static int drain(cf_grad_sync *s, bucket *k, bool first_round) {
    if (k->req < 0) return 0;
    double t0 = cf_now_s();
    int rc = cf_dist_wait(k->req);
    k->req = -1;
    if (rc == 0) fold_slots(k->mine, k->recv, k->mine_len, s->size, first_round);
    s->comm_s += cf_now_s() - t0;
    return rc;
}

static int add_ranks(cf_grad_sync *s, float w, int64_t round) {
    for (int b = 0; b < s->n_buckets; b++) {
        bucket *k = &s->buckets[b];
        if (drain(s, k, round - 1 == 0) != 0) return -1; /* the send and recv buffers are free again */
        FOR_PIECES(s, k->lo, k->len, fold_weighted(s->send + flat, param->grad + at, count, w, true));
        double t0 = cf_now_s();
        k->req = cf_dist_alltoallv_start(s->send + k->lo, k->send_counts, k->send_displs, k->recv, k->recv_counts,
                                         k->recv_displs, "the gradient exchange");
        s->comm_s += cf_now_s() - t0;
        if (k->req < 0) return -1;
    }
    return 0;
}

static int finish_ranks(cf_grad_sync *s, float inv) {
    for (int b = 0; b < s->n_buckets; b++) { /* fold, scale and send back each bucket in turn */
        bucket *k = &s->buckets[b];
        if (drain(s, k, s->local == 1) != 0) return -1;
        scale(k->mine, k->mine_len, inv);
        int *counts = k->send_counts, *displs = k->send_displs; /* chunk c comes from rank c */
        double t0 = cf_now_s();
        k->req = cf_dist_allgatherv_start(k->mine, (int)k->mine_len, s->send + k->lo, counts, displs,
                                          "gathering the summed gradients");
        s->comm_s += cf_now_s() - t0;
        if (k->req < 0) return -1;
    }
    for (int b = 0; b < s->n_buckets; b++) {
        bucket *k = &s->buckets[b];
        double t0 = cf_now_s();
        int rc = cf_dist_wait(k->req);
        s->comm_s += cf_now_s() - t0;
        k->req = -1;
        if (rc != 0) return -1;
        FOR_PIECES(s, k->lo, k->len, memcpy(param->grad + at, s->send + flat, (size_t)count * sizeof(float)));
    }
    return 0;
}

/* ---- the update ---- */

int cf_grad_sync_add(cf_grad_sync *s, int64_t m, double mean_loss, int64_t n_tokens) {
    if (m < s->next_m || m >= s->accum || m % s->size != s->rank || s->added >= s->local) {
        cf_error_set("rank %d: micro-batch %lld is not the next of this rank's (%d ranks, accumulation %lld)", s->rank,
                     (long long)m, s->size, (long long)s->accum);
        return -1;
    }
    int64_t round = m / s->size;
    s->records[2 * s->added] = mean_loss;
    s->records[2 * s->added + 1] = (double)n_tokens;
    s->added++;
    s->next_m = m + 1;
    float w = (float)n_tokens; /* exact: a micro-batch holds far fewer than 2^24 tokens */
    if (s->size > 1) return add_ranks(s, w, round);
    if (s->accum > 1) add_local(s, w, m == 0);
    return 0;
}

int cf_grad_sync_finish(cf_grad_sync *s, const volatile sig_atomic_t *stop, cf_grad_sync_totals *t) {
    *t = (cf_grad_sync_totals){0};
    int rc = 0;
    if (s->added != s->local) {
        cf_error_set("rank %d: %lld of its %lld micro-batches were added", s->rank, (long long)s->added,
                     (long long)s->local);
        rc = -1;
    }
    const int64_t per_rank = 2 * s->local + 1;
    s->records[2 * s->local] = stop && *stop ? 1.0 : 0.0;
    double t0 = cf_now_s();
    if (rc == 0 && cf_dist_allgather(s->records, s->records_all, (size_t)per_rank * sizeof(double),
                                     "exchanging the losses and token counts") != 0)
        rc = -1;
    s->comm_s += cf_now_s() - t0;
    if (rc == 0) {
        /* micro-batch m = a*K + r is record a of rank r: sums in micro-batch order */
        for (int64_t a = 0; a < s->local; a++)
            for (int r = 0; r < s->size; r++) {
                const double *x = s->records_all + r * per_rank + 2 * a;
                t->loss_sum += x[0] * x[1];
                t->tokens += x[1];
            }
        for (int r = 0; r < s->size; r++) t->stop |= s->records_all[r * per_rank + 2 * s->local] != 0;
        float inv = inverse_tokens(t->tokens);
        if (s->size > 1) rc = finish_ranks(s, inv);
        else if (s->accum > 1) finish_local(s, inv);
    }
    s->added = 0;
    s->next_m = 0;
    return rc;
}
