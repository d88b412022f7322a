/* data/unigram_train.c - Unigram LM training: seed vocabulary, EM, pruning (SentencePiece's recipe).
 *
 * Everything works on the distinct words of the corpus with their counts (a word of Multi30k
 * repeats ~25 times on average). A piece is a substring of a word at UTF-8 unit boundaries, so
 * the seed vocabulary - every substring of up to max_piece_units units with its frequency - is
 * found by enumerating each distinct word's substrings into one hash table: this counts every
 * occurrence, as the suffix array SentencePiece uses does, in time linear in the corpus's distinct
 * text. Each word's lattice (every (start, end, piece) it contains) is built once; pieces only
 * disappear during training, so later rounds just skip the dead ones and compact the lists.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/tokenizer_internal.h"
#include "data/unigram.h"

#define EXPECTED_MIN 0.5            /* M-step: pieces expected less often than this are dropped */
#define FALLBACK_PENALTY 10.0

/* ---------------------------------------------------------------- candidate substrings */

typedef struct cand {
    uint64_t hash;
    int64_t off;                    /* bytes W.bytes[off .. off + len): the first occurrence */
    uint8_t len, units;
    uint8_t rep_s, rep_e;           /* ... as units [rep_s, rep_e) of word rep_word */
    int32_t rep_word;
    int64_t freq;                   /* occurrences in the corpus */
    int32_t piece;                  /* index in the piece list, or -1 */
} cand;

typedef struct cand_table {
    cand *c;
    size_t n, cap;
    int32_t *slots;
    size_t mask;
} cand_table;

static int32_t cand_find(const cand_table *T, const char *bytes, const char *s, size_t n, uint64_t h) {
    for (size_t i = h & T->mask; T->slots[i] >= 0; i = (i + 1) & T->mask) {
        const cand *c = &T->c[T->slots[i]];
        if (c->hash == h && c->len == n && memcmp(bytes + c->off, s, n) == 0) return T->slots[i];
    }
    return -1;
}

static void cand_add(cand_table *T, const char *bytes, int64_t off, size_t n, int units, int32_t w, int s, int e,
                     int64_t count) {
    uint64_t h = bpe_hash_bytes(bytes + off, n);
    size_t i = h & T->mask;
    for (; T->slots[i] >= 0; i = (i + 1) & T->mask) {
        cand *c = &T->c[T->slots[i]];
        if (c->hash == h && c->len == n && memcmp(bytes + c->off, bytes + off, n) == 0) {
            c->freq += count;
            return;
        }
    }
    T->c = cf_grow(T->c, &T->cap, T->n + 1, sizeof *T->c);
    T->c[T->n] = (cand){.hash = h, .off = off, .len = (uint8_t)n, .units = (uint8_t)units, .rep_s = (uint8_t)s,
                        .rep_e = (uint8_t)e, .rep_word = w, .freq = count, .piece = -1};
    T->slots[i] = (int32_t)T->n++;
    if (2 * T->n > T->mask + 1) {
        size_t cap = 2 * (T->mask + 1);
        free(T->slots);
        T->slots = cf_xmalloc(cap * sizeof *T->slots);
        memset(T->slots, 0xff, cap * sizeof *T->slots);
        T->mask = cap - 1;
        for (size_t k = 0; k < T->n; k++) {
            size_t j = T->c[k].hash & T->mask;
            while (T->slots[j] >= 0) j = (j + 1) & T->mask;
            T->slots[j] = (int32_t)k;
        }
    }
}

/* ---------------------------------------------------------------- training state */

typedef struct edge {
    uint8_t s, e;                   /* units [s, e) of the word */
    int32_t piece;                  /* -1: byte fallback of an uncovered unit */
} edge;

typedef struct piece {
    int32_t cand;
    bool required;                  /* a single unit: always kept */
    bool alive;
    double score;
} piece;

typedef struct model {
    tok_words W;
    const char *bytes;
    edge *edges;                    /* word w's edges: [eoff[w], eoff[w + 1]), by start then end */
    int64_t *eoff;
    uint8_t *n_units;               /* [word] */
    piece *p;
    int n_pieces, n_alive, n_required;
    cand_table C;
    double *expected, *vfreq, *wfreq; /* [piece] */
} model;

static double fallback_score(const model *M) {
    double lo = 0;
    bool any = false;
    for (int i = 0; i < M->n_pieces; i++)
        if (M->p[i].alive && (!any || M->p[i].score < lo)) lo = M->p[i].score, any = true;
    return lo - FALLBACK_PENALTY;
}

static inline double edge_score(const model *M, const edge *x, double fb) {
    return x->piece >= 0 ? M->p[x->piece].score : fb;
}

static double log_add(double a, double b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

static double digamma(double x) {
    double r = 0;
    while (x < 6) r -= 1 / x, x += 1;
    double f = 1 / (x * x);
    return r + log(x) - 0.5 / x - f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))));
}

/* E-step: expected count of every piece (posterior edge marginals x word count), by
 * forward-backward over each word's lattice. Returns the log-likelihood of the corpus. */
static double e_step(model *M) {
    double fb = fallback_score(M), loglik = 0;
    memset(M->expected, 0, (size_t)M->n_pieces * sizeof *M->expected);
    double alpha[CF_TOK_MAX_TOKEN_BYTES + 1], beta[CF_TOK_MAX_TOKEN_BYTES + 1];
    for (size_t w = 0; w < M->W.n; w++) {
        int k = M->n_units[w];
        const edge *E = M->edges + M->eoff[w];
        int64_t ne = M->eoff[w + 1] - M->eoff[w];
        for (int i = 0; i <= k; i++) alpha[i] = beta[i] = -INFINITY;
        alpha[0] = 0;
        beta[k] = 0;
        for (int64_t j = 0; j < ne; j++) /* by start: alpha[s] is final when its edges come */
            alpha[E[j].e] = log_add(alpha[E[j].e], alpha[E[j].s] + edge_score(M, &E[j], fb));
        for (int64_t j = ne - 1; j >= 0; j--) /* by start, backwards: beta[e] is final */
            beta[E[j].s] = log_add(beta[E[j].s], edge_score(M, &E[j], fb) + beta[E[j].e]);
        double z = alpha[k], c = (double)M->W.count[w];
        loglik += c * z;
        for (int64_t j = 0; j < ne; j++) {
            if (E[j].piece < 0) continue;
            double post = exp(alpha[E[j].s] + edge_score(M, &E[j], fb) + beta[E[j].e] - z);
            M->expected[E[j].piece] += c * post;
        }
    }
    return loglik;
}

/* M-step: drop rarely expected pieces, then score = digamma(expected) - digamma(total): the
 * variational-Bayes update SentencePiece uses, which favours dropping rare pieces. */
static void m_step(model *M) {
    double sum = 0;
    for (int i = 0; i < M->n_pieces; i++) {
        piece *p = &M->p[i];
        if (!p->alive) continue;
        if (!p->required && M->expected[i] < EXPECTED_MIN) {
            p->alive = false;
            M->n_alive--;
            continue;
        }
        if (M->expected[i] < EXPECTED_MIN) M->expected[i] = EXPECTED_MIN; /* a unit nobody uses alone */
        sum += M->expected[i];
    }
    double lsum = digamma(sum);
    for (int i = 0; i < M->n_pieces; i++)
        if (M->p[i].alive) M->p[i].score = digamma(M->expected[i]) - lsum;
}

/* Drop the edges of dead pieces (they never come back). */
static void compact_edges(model *M) {
    int64_t out = 0;
    for (size_t w = 0; w < M->W.n; w++) {
        int64_t from = M->eoff[w], to = M->eoff[w + 1];
        M->eoff[w] = out;
        for (int64_t j = from; j < to; j++)
            if (M->edges[j].piece < 0 || M->p[M->edges[j].piece].alive) M->edges[out++] = M->edges[j];
    }
    M->eoff[M->W.n] = out;
}

/* Best path over the edges of word w inside units [lo, hi), skipping piece `skip`; writes the
 * edges' pieces to path, returns their number. Same order and tie rule as cf_unigram_encode. */
static int viterbi(const model *M, size_t w, int lo, int hi, int32_t skip, double fb, int32_t *path) {
    double best[CF_TOK_MAX_TOKEN_BYTES + 1];
    int32_t back_piece[CF_TOK_MAX_TOKEN_BYTES + 1];
    uint8_t back_s[CF_TOK_MAX_TOKEN_BYTES + 1];
    for (int i = lo; i <= hi; i++) best[i] = -INFINITY;
    best[lo] = 0;
    const edge *E = M->edges + M->eoff[w];
    int64_t ne = M->eoff[w + 1] - M->eoff[w];
    for (int64_t j = 0; j < ne; j++) {
        const edge *x = &E[j];
        if (x->s < lo || x->e > hi || x->piece == skip || best[x->s] == -INFINITY) continue;
        double v = best[x->s] + edge_score(M, x, fb);
        if (v > best[x->e]) best[x->e] = v, back_piece[x->e] = x->piece, back_s[x->e] = x->s;
    }
    int n = 0;
    for (int pos = hi; pos > lo; pos = back_s[pos]) path[n++] = back_piece[pos];
    return n;
}

/* Highest loss first; ties to the lower index. */
static int by_loss(const void *x, const void *y, void *ctx) {
    const double *loss = ctx;
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    if (loss[a] != loss[b]) return loss[a] > loss[b] ? -1 : 1;
    return (a > b) - (a < b);
}

/* One pruning round: keep the pieces whose removal would cost the most likelihood. */
static void prune(model *M, int desired, double shrink) {
    const int before = M->n_alive;
    double fb = fallback_score(M);
    memset(M->vfreq, 0, (size_t)M->n_pieces * sizeof *M->vfreq);
    memset(M->wfreq, 0, (size_t)M->n_pieces * sizeof *M->wfreq);
    int32_t path[CF_TOK_MAX_TOKEN_BYTES];
    double n_words = 0;
    for (size_t w = 0; w < M->W.n; w++) {
        double c = (double)M->W.count[w];
        int n = viterbi(M, w, 0, M->n_units[w], -2, fb, path);
        n_words += c;
        for (int k = 0; k < n; k++) {
            if (path[k] < 0) continue;
            M->vfreq[path[k]] += c;
            bool again = false; /* once per word for wfreq */
            for (int j = 0; j < k && !again; j++) again = path[j] == path[k];
            if (!again) M->wfreq[path[k]] += c;
        }
    }
    double sum = 0;
    for (int i = 0; i < M->n_pieces; i++)
        if (M->p[i].alive) sum += M->vfreq[i];
    double log_sum = log(sum);
    /* Loss of removing piece i (SentencePiece's estimate): its Viterbi uses go to its best
     * alternative segmentation, whose pieces each gain freq[i] uses; weighted by the share of
     * words that contain it. */
    int32_t *cand_ids = cf_xmalloc((size_t)M->n_pieces * sizeof *cand_ids);
    double *loss = cf_xmalloc((size_t)M->n_pieces * sizeof *loss);
    int n_cand = 0, n_kept = 0;
    for (int i = 0; i < M->n_pieces; i++) {
        piece *p = &M->p[i];
        if (!p->alive) continue;
        if (p->required) {
            n_kept++;
            continue;
        }
        if (M->vfreq[i] == 0) continue; /* never on a best path: dropped below, after the losses */
        const cand *c = &M->C.c[p->cand];
        int n = viterbi(M, (size_t)c->rep_word, c->rep_s, c->rep_e, i, fb, path);
        double f = M->vfreq[i];
        double log_sum_alt = log(sum + f * (n - 1)), log_alt = 0;
        for (int k = 0; k < n; k++) log_alt += log((path[k] >= 0 ? M->vfreq[path[k]] : 0) + f) - log_sum_alt;
        double log_here = log(f) - log_sum;
        loss[i] = M->wfreq[i] / n_words * (log_here - log_alt);
        cand_ids[n_cand++] = i;
    }
    for (int i = 0; i < M->n_pieces; i++)
        if (M->p[i].alive && !M->p[i].required && M->vfreq[i] == 0) {
            M->p[i].alive = false;
            M->n_alive--;
        }
    int keep = (int)(shrink * before);
    if (keep < desired) keep = desired;
    int room = keep - n_kept;
    if (room < n_cand) {
        qsort_r(cand_ids, (size_t)n_cand, sizeof *cand_ids, by_loss, loss);
        for (int k = room < 0 ? 0 : room; k < n_cand; k++) {
            M->p[cand_ids[k]].alive = false;
            M->n_alive--;
        }
    }
    free(cand_ids);
    free(loss);
}

/* ---------------------------------------------------------------- training */

/* Order of single units by coverage: more frequent first, then by bytes. */
static int by_freq(const void *x, const void *y, void *ctx) {
    const model *M = ctx;
    const cand *a = &M->C.c[*(const int32_t *)x], *b = &M->C.c[*(const int32_t *)y];
    if (a->freq != b->freq) return a->freq > b->freq ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(M->bytes + a->off, M->bytes + b->off, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* Seed order: frequency x length (in units), then by bytes. */
static int by_seed_score(const void *x, const void *y, void *ctx) {
    const model *M = ctx;
    const cand *a = &M->C.c[*(const int32_t *)x], *b = &M->C.c[*(const int32_t *)y];
    int64_t sa = a->freq * a->units, sb = b->freq * b->units;
    if (sa != sb) return sa > sb ? -1 : 1;
    return by_freq(x, y, ctx);
}

/* Final order: higher score first, then by bytes. */
static int by_score(const void *x, const void *y, void *ctx) {
    const model *M = ctx;
    const piece *a = &M->p[*(const int32_t *)x], *b = &M->p[*(const int32_t *)y];
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    const cand *ca = &M->C.c[a->cand], *cb = &M->C.c[b->cand];
    size_t n = ca->len < cb->len ? ca->len : cb->len;
    int c = memcmp(M->bytes + ca->off, M->bytes + cb->off, n);
    return c ? c : (ca->len > cb->len) - (ca->len < cb->len);
}

static void model_free(model *M) {
    free(M->edges);
    free(M->eoff);
    free(M->n_units);
    free(M->p);
    free(M->C.c);
    free(M->C.slots);
    free(M->expected);
    free(M->vfreq);
    free(M->wfreq);
}

cf_unigram *cf_unigram_train(cf_tok_trainer *tr, const cf_unigram_opts *o) {
    const int max_units = o->max_piece_units > 0 ? o->max_piece_units : 16;
    const int seed_size = o->seed_size > 0 ? o->seed_size : 1000000;
    const double coverage = o->char_coverage > 0 ? o->char_coverage : 0.9995;
    const int em_iters = o->em_iterations > 0 ? o->em_iterations : 2;
    const double shrink = o->shrink > 0 ? o->shrink : 0.75;
    if (o->vocab_size < CF_TOK_N_BASE || o->vocab_size > CF_TOK_MAX_VOCAB || coverage > 1 || shrink >= 1 ||
        max_units > CF_TOK_MAX_TOKEN_BYTES) {
        cf_error_set("unigram: bad options (vocab size %d must be in [%d, %d], character coverage <= 1, shrink < 1, "
                     "max piece units <= %d)",
                     o->vocab_size, CF_TOK_N_BASE, CF_TOK_MAX_VOCAB, CF_TOK_MAX_TOKEN_BYTES);
        cf_tok_trainer_free(tr);
        return NULL;
    }
    const int budget = o->vocab_size - CF_TOK_N_BASE;
    model M = {.W = tok_trainer_words(tr)};
    const tok_words *W = &M.W;
    M.bytes = W->bytes;
    M.C.mask = (1u << 16) - 1;
    M.C.slots = cf_xmalloc((M.C.mask + 1) * sizeof *M.C.slots);
    memset(M.C.slots, 0xff, (M.C.mask + 1) * sizeof *M.C.slots);

    /* Unit boundaries of every word: bound[boff[w] + i] is the byte offset of unit i. */
    M.n_units = cf_xmalloc((W->n ? W->n : 1) * sizeof *M.n_units);
    int64_t *boff = cf_xmalloc((W->n + 1) * sizeof *boff);
    size_t total_bytes = W->n ? (size_t)(W->off[W->n - 1] + W->len[W->n - 1]) : 0;
    uint8_t *bound = cf_xmalloc(total_bytes + W->n + 1);
    int64_t nb = 0;
    for (size_t w = 0; w < W->n; w++) {
        const unsigned char *s = (const unsigned char *)W->bytes + W->off[w];
        boff[w] = nb;
        int k = 0;
        for (size_t pos = 0; pos < W->len[w]; k++) {
            bound[nb++] = (uint8_t)pos;
            pos += tok_unit_len(s + pos, W->len[w] - pos);
        }
        bound[nb++] = (uint8_t)W->len[w];
        M.n_units[w] = (uint8_t)k;
    }
    boff[W->n] = nb;
#define BYTE_AT(w, i) (W->off[w] + bound[boff[w] + (i)])

    /* Single units, and which of them the vocabulary covers. */
    for (size_t w = 0; w < W->n; w++)
        for (int i = 0; i < M.n_units[w]; i++)
            cand_add(&M.C, W->bytes, BYTE_AT(w, i), (size_t)(BYTE_AT(w, i + 1) - BYTE_AT(w, i)), 1, (int32_t)w, i,
                     i + 1, W->count[w]);
    size_t n_unit_cands = M.C.n;
    int32_t *order = cf_xmalloc((n_unit_cands ? n_unit_cands : 1) * sizeof *order);
    int64_t unit_total = 0;
    for (size_t k = 0; k < n_unit_cands; k++) order[k] = (int32_t)k, unit_total += M.C.c[k].freq;
    qsort_r(order, n_unit_cands, sizeof *order, by_freq, &M);
    bool *covered = cf_xcalloc(n_unit_cands ? n_unit_cands : 1, sizeof *covered);
    int64_t acc = 0;
    int n_required = 0;
    for (size_t r = 0; r < n_unit_cands && n_required < budget; r++) {
        if (r > 0 && (double)acc >= coverage * (double)unit_total) break;
        covered[order[r]] = true;
        acc += M.C.c[order[r]].freq;
        n_required++;
    }
    /* Is unit i of word w covered? Units were added first, so their candidate index is < n_unit_cands. */
#define UNIT_CAND(w, i)                                                                            \
    cand_find(&M.C, W->bytes, W->bytes + BYTE_AT(w, i), (size_t)(BYTE_AT(w, i + 1) - BYTE_AT(w, i)), \
              bpe_hash_bytes(W->bytes + BYTE_AT(w, i), (size_t)(BYTE_AT(w, i + 1) - BYTE_AT(w, i))))
    uint8_t *unit_ok = cf_xmalloc(nb ? (size_t)nb : 1); /* per unit of each word, at bound's index */
    for (size_t w = 0; w < W->n; w++)
        for (int i = 0; i < M.n_units[w]; i++) unit_ok[boff[w] + i] = covered[UNIT_CAND(w, i)];

    /* Seeds: every substring of 2..max_units covered units, counted over all occurrences. */
    if (budget > n_required)
        for (size_t w = 0; w < W->n; w++)
            for (int i = 0; i < M.n_units[w]; i++) {
                if (!unit_ok[boff[w] + i]) continue;
                for (int j = i + 2; j <= M.n_units[w] && j - i <= max_units; j++) {
                    if (!unit_ok[boff[w] + j - 1]) break;
                    cand_add(&M.C, W->bytes, BYTE_AT(w, i), (size_t)(BYTE_AT(w, j) - BYTE_AT(w, i)), j - i, (int32_t)w,
                             i, j, W->count[w]);
                }
            }
    int32_t *seeds = cf_xmalloc((M.C.n - n_unit_cands + 1) * sizeof *seeds);
    size_t n_seeds = 0;
    for (size_t k = n_unit_cands; k < M.C.n; k++)
        if (M.C.c[k].freq >= 2) seeds[n_seeds++] = (int32_t)k;
    qsort_r(seeds, n_seeds, sizeof *seeds, by_seed_score, &M);
    if (n_seeds > (size_t)seed_size) n_seeds = (size_t)seed_size;

    /* Pieces: the covered units, then the seeds; scores start as log relative frequencies. */
    M.p = cf_xmalloc(((size_t)n_required + n_seeds + 1) * sizeof *M.p);
    double freq_sum = 0;
    for (size_t r = 0; r < (size_t)n_required; r++) {
        M.C.c[order[r]].piece = M.n_pieces;
        M.p[M.n_pieces++] = (piece){.cand = order[r], .required = true, .alive = true};
    }
    for (size_t r = 0; r < n_seeds; r++) {
        M.C.c[seeds[r]].piece = M.n_pieces;
        M.p[M.n_pieces++] = (piece){.cand = seeds[r], .alive = true};
    }
    for (int i = 0; i < M.n_pieces; i++) freq_sum += (double)M.C.c[M.p[i].cand].freq;
    for (int i = 0; i < M.n_pieces; i++) M.p[i].score = log((double)M.C.c[M.p[i].cand].freq) - log(freq_sum);
    M.n_alive = M.n_pieces;
    M.n_required = n_required;

    /* Each word's lattice, once: every (start, end) whose substring is a piece, by start then
     * end; an uncovered unit gets a fallback edge. */
    M.eoff = cf_xmalloc((W->n + 1) * sizeof *M.eoff);
    size_t n_edges = 0, cap_edges = 0;
    for (size_t w = 0; w < W->n; w++) {
        M.eoff[w] = (int64_t)n_edges;
        for (int i = 0; i < M.n_units[w]; i++) {
            if (!unit_ok[boff[w] + i]) {
                M.edges = cf_grow(M.edges, &cap_edges, n_edges + 1, sizeof *M.edges);
                M.edges[n_edges++] = (edge){(uint8_t)i, (uint8_t)(i + 1), -1};
                continue;
            }
            for (int j = i + 1; j <= M.n_units[w] && j - i <= max_units; j++) {
                if (!unit_ok[boff[w] + j - 1]) break;
                const char *s = W->bytes + BYTE_AT(w, i);
                size_t n = (size_t)(BYTE_AT(w, j) - BYTE_AT(w, i));
                int32_t c = cand_find(&M.C, W->bytes, s, n, bpe_hash_bytes(s, n));
                if (c < 0 || M.C.c[c].piece < 0) continue;
                M.edges = cf_grow(M.edges, &cap_edges, n_edges + 1, sizeof *M.edges);
                M.edges[n_edges++] = (edge){(uint8_t)i, (uint8_t)j, M.C.c[c].piece};
            }
        }
    }
    M.eoff[W->n] = (int64_t)n_edges;
#undef UNIT_CAND
#undef BYTE_AT
    free(unit_ok);
    free(covered);
    free(seeds);
    free(bound);
    free(boff);

    /* EM and pruning until 1.1 x the budget (SentencePiece's margin for the final cut). */
    M.expected = cf_xmalloc(((size_t)M.n_pieces + 1) * sizeof *M.expected);
    M.vfreq = cf_xmalloc(((size_t)M.n_pieces + 1) * sizeof *M.vfreq);
    M.wfreq = cf_xmalloc(((size_t)M.n_pieces + 1) * sizeof *M.wfreq);
    const int desired = (int)(1.1 * budget) > budget ? (int)(1.1 * budget) : budget;
    for (int round = 0; round < 100; round++) {
        for (int it = 0; it < em_iters; it++) {
            e_step(&M);
            m_step(&M);
        }
        compact_edges(&M);
        if (M.n_alive <= desired) break;
        int alive = M.n_alive;
        prune(&M, desired, shrink);
        compact_edges(&M);
        if (M.n_alive == alive) break; /* nothing left to prune */
    }

    /* The final vocabulary: every required unit, then the best-scoring pieces up to the budget,
     * all in order of score. */
    int32_t *final = cf_xmalloc(((size_t)M.n_pieces + 1) * sizeof *final);
    int n_final = 0;
    for (int i = 0; i < M.n_pieces; i++)
        if (M.p[i].alive && !M.p[i].required) final[n_final++] = i;
    qsort_r(final, (size_t)n_final, sizeof *final, by_score, &M);
    if (n_final > budget - n_required) n_final = budget - n_required;
    for (int i = 0; i < M.n_pieces; i++)
        if (M.p[i].required) final[n_final++] = i;
    qsort_r(final, (size_t)n_final, sizeof *final, by_score, &M);
    const char **pb = cf_xmalloc(((size_t)n_final + 1) * sizeof *pb);
    size_t *pl = cf_xmalloc(((size_t)n_final + 1) * sizeof *pl);
    float *ps = cf_xmalloc(((size_t)n_final + 1) * sizeof *ps);
    for (int k = 0; k < n_final; k++) {
        const cand *c = &M.C.c[M.p[final[k]].cand];
        pb[k] = W->bytes + c->off;
        pl[k] = c->len;
        ps[k] = (float)M.p[final[k]].score;
    }
    cf_unigram *u = cf_unigram_from_pieces(n_final, pb, pl, ps);
    CF_ASSERT(u != NULL, "%s", cf_error_message()); /* distinct substrings, bounded by the word length */
    free(pb);
    free(pl);
    free(ps);
    free(final);
    free(order);
    model_free(&M);
    cf_tok_trainer_free(tr);
    return u;
}
