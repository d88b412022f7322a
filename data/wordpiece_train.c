/* data/wordpiece_train.c - WordPiece training by likelihood score.
 *
 * Symbols are interned strings with a start/continuation flag; every distinct word is a row of
 * symbols. Each adjacent pair keeps its count (weighted by word frequency) and the words it
 * occurs in, as in the BPE trainer. The best pair maximises count(ab) / (count(a) count(b)).
 * Unlike BPE's count, that score also changes when a pair's parts change count, so after a merge
 * of (a, b) every pair that touches a or b (listed per symbol) and every pair whose count changed
 * is pushed again with its new score; a heap entry whose score is no longer the pair's current
 * score is stale and skipped when it surfaces (exact comparison: both come from the same
 * expression). The heap is rebuilt when stale entries outnumber live ones.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/tokenizer_internal.h"
#include "data/wordpiece.h"

/* ---------------------------------------------------------------- symbols */

typedef struct symbols {
    char *bytes;
    size_t bytes_n, bytes_cap;
    int64_t *off;
    uint32_t *len;
    uint8_t *cont;
    int64_t *count;                 /* occurrences in the current segmentation of the corpus */
    size_t n, cap;
    int32_t *slots;                 /* intern table, -1 = empty */
    size_t mask;
} symbols;

static uint64_t sym_hash(const char *s, size_t n, bool cont) { return bpe_hash_bytes(s, n) ^ (cont ? 0x5bd1e995u : 0); }

static void sym_rehash(symbols *S, size_t cap) {
    free(S->slots);
    S->slots = cf_xmalloc(cap * sizeof *S->slots);
    memset(S->slots, 0xff, cap * sizeof *S->slots);
    S->mask = cap - 1;
    for (size_t k = 0; k < S->n; k++) {
        size_t i = sym_hash(S->bytes + S->off[k], S->len[k], S->cont[k]) & S->mask;
        while (S->slots[i] >= 0) i = (i + 1) & S->mask;
        S->slots[i] = (int32_t)k;
    }
}

/* The id of (s, cont), created if new (*created tells). */
static int32_t sym_intern(symbols *S, const char *s, size_t n, bool cont, bool *created) {
    size_t i = sym_hash(s, n, cont) & S->mask;
    for (; S->slots[i] >= 0; i = (i + 1) & S->mask) {
        int32_t k = S->slots[i];
        if (S->len[k] == n && S->cont[k] == cont && memcmp(S->bytes + S->off[k], s, n) == 0) {
            if (created) *created = false;
            return k;
        }
    }
    if (S->n == S->cap) {
        S->cap = S->cap ? 2 * S->cap : 1024;
        S->off = realloc(S->off, S->cap * sizeof *S->off);
        S->len = realloc(S->len, S->cap * sizeof *S->len);
        S->cont = realloc(S->cont, S->cap * sizeof *S->cont);
        S->count = realloc(S->count, S->cap * sizeof *S->count);
        CF_ASSERT(S->off && S->len && S->cont && S->count, "out of memory");
    }
    /* s may point into S->bytes: copy through a local buffer before the buffer can move */
    char tmp[2 * CF_TOK_MAX_TOKEN_BYTES];
    CF_ASSERT(n <= sizeof tmp);
    memcpy(tmp, s, n);
    S->bytes = cf_grow(S->bytes, &S->bytes_cap, S->bytes_n + n, 1);
    memcpy(S->bytes + S->bytes_n, tmp, n);
    int32_t k = (int32_t)S->n++;
    S->off[k] = (int64_t)S->bytes_n;
    S->len[k] = (uint32_t)n;
    S->cont[k] = cont;
    S->count[k] = 0;
    S->bytes_n += n;
    S->slots[i] = k;
    if (2 * S->n > S->mask + 1) sym_rehash(S, 2 * (S->mask + 1));
    if (created) *created = true;
    return k;
}

static void sym_free(symbols *S) {
    free(S->bytes);
    free(S->off);
    free(S->len);
    free(S->cont);
    free(S->count);
    free(S->slots);
}

/* ---------------------------------------------------------------- pairs and the heap */

typedef struct pair_info {
    uint64_t key;                   /* left << 32 | right */
    int64_t count;
    int32_t *words;                 /* words it occurs (or once occurred) in; may hold stale entries */
    int32_t n_words, cap_words;
    int32_t stamp;                  /* last merge that queued it */
    bool listed;                    /* in the per-symbol lists of its two parts */
} pair_info;

typedef struct heap_entry {
    double score;
    uint64_t key;
} heap_entry;

typedef struct trainer {
    symbols S;
    pair_info *p;
    size_t n_pairs, cap_pairs;
    int32_t *slots;
    size_t mask;
    heap_entry *heap;
    size_t heap_n, heap_cap;
    int32_t **sym_pairs;            /* [symbol] pairs that have it as a part (may hold dead ones) */
    int32_t *sym_pairs_n, *sym_pairs_cap;
    size_t sym_pairs_len;           /* entries allocated in the three arrays above */
    uint8_t *blocked;               /* [symbol] not in the vocabulary: never merged */
    int64_t min_count;
} trainer;

static inline uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }
static inline int32_t key_left(uint64_t k) { return (int32_t)(k >> 32); }
static inline int32_t key_right(uint64_t k) { return (int32_t)(k & 0xffffffffu); }

static int32_t pair_find(trainer *T, uint64_t key, bool create) {
    size_t i = bpe_hash_u64(key) & T->mask;
    for (; T->slots[i] >= 0; i = (i + 1) & T->mask)
        if (T->p[T->slots[i]].key == key) return T->slots[i];
    if (!create) return -1;
    T->p = cf_grow(T->p, &T->cap_pairs, T->n_pairs + 1, sizeof *T->p);
    int32_t idx = (int32_t)T->n_pairs++;
    T->p[idx] = (pair_info){.key = key, .stamp = -1};
    T->slots[i] = idx;
    if (2 * T->n_pairs > T->mask + 1) {
        size_t cap = 2 * (T->mask + 1);
        free(T->slots);
        T->slots = cf_xmalloc(cap * sizeof *T->slots);
        memset(T->slots, 0xff, cap * sizeof *T->slots);
        T->mask = cap - 1;
        for (size_t j = 0; j < T->n_pairs; j++) {
            size_t s = bpe_hash_u64(T->p[j].key) & T->mask;
            while (T->slots[s] >= 0) s = (s + 1) & T->mask;
            T->slots[s] = (int32_t)j;
        }
    }
    return idx;
}

static void pair_add_word(pair_info *p, int32_t w) {
    if (p->n_words && p->words[p->n_words - 1] == w) return;
    if (p->n_words == p->cap_words) {
        p->cap_words = p->cap_words ? 2 * p->cap_words : 4;
        p->words = realloc(p->words, (size_t)p->cap_words * sizeof(int32_t));
        CF_ASSERT(p->words != NULL, "out of memory");
    }
    p->words[p->n_words++] = w;
}

static void sym_pairs_reserve(trainer *T, size_t n_syms) {
    if (n_syms <= T->sym_pairs_len) return;
    size_t c = T->sym_pairs_len ? T->sym_pairs_len : 1024;
    while (c < n_syms) c *= 2;
    T->sym_pairs = realloc(T->sym_pairs, c * sizeof *T->sym_pairs);
    T->sym_pairs_n = realloc(T->sym_pairs_n, c * sizeof *T->sym_pairs_n);
    T->sym_pairs_cap = realloc(T->sym_pairs_cap, c * sizeof *T->sym_pairs_cap);
    T->blocked = realloc(T->blocked, c);
    CF_ASSERT(T->sym_pairs && T->sym_pairs_n && T->sym_pairs_cap && T->blocked, "out of memory");
    for (size_t s = T->sym_pairs_len; s < c; s++) T->sym_pairs[s] = NULL, T->sym_pairs_n[s] = T->sym_pairs_cap[s] = 0;
    memset(T->blocked + T->sym_pairs_len, 0, c - T->sym_pairs_len);
    T->sym_pairs_len = c;
}

static void sym_pairs_add(trainer *T, int32_t s, int32_t q) {
    if (T->sym_pairs_n[s] == T->sym_pairs_cap[s]) {
        T->sym_pairs_cap[s] = T->sym_pairs_cap[s] ? 2 * T->sym_pairs_cap[s] : 4;
        T->sym_pairs[s] = realloc(T->sym_pairs[s], (size_t)T->sym_pairs_cap[s] * sizeof(int32_t));
        CF_ASSERT(T->sym_pairs[s] != NULL, "out of memory");
    }
    T->sym_pairs[s][T->sym_pairs_n[s]++] = q;
}

/* A pair with a count: make sure its parts list it. */
static void pair_list(trainer *T, int32_t q) {
    pair_info *p = &T->p[q];
    if (p->listed) return;
    p->listed = true;
    int32_t a = key_left(p->key), b = key_right(p->key);
    sym_pairs_add(T, a, q);
    if (b != a) sym_pairs_add(T, b, q);
}

static double pair_score(const trainer *T, const pair_info *p) {
    int32_t a = key_left(p->key), b = key_right(p->key);
    return (double)p->count / ((double)T->S.count[a] * (double)T->S.count[b]);
}

/* Mergeable: both parts in the vocabulary, seen often enough, and not a start piece that would
 * begin with "##" (the file could not tell it from a continuation piece). */
static bool pair_eligible(const trainer *T, const pair_info *p) {
    if (p->count < T->min_count) return false;
    int32_t a = key_left(p->key), b = key_right(p->key);
    if (T->blocked[a] || T->blocked[b]) return false;
    if (!T->S.cont[a] && T->S.bytes[T->S.off[a]] == '#') {
        char second = T->S.len[a] > 1 ? T->S.bytes[T->S.off[a] + 1] : T->S.bytes[T->S.off[b]];
        if (second == '#') return false;
    }
    return true;
}

/* Higher score first; ties go to the smaller (left, right). */
static bool heap_before(heap_entry x, heap_entry y) {
    return x.score > y.score || (x.score == y.score && x.key < y.key);
}

static void heap_push(trainer *T, double score, uint64_t key) {
    T->heap = cf_grow(T->heap, &T->heap_cap, T->heap_n + 1, sizeof *T->heap);
    size_t i = T->heap_n++;
    heap_entry e = {score, key};
    while (i > 0 && heap_before(e, T->heap[(i - 1) / 2])) {
        T->heap[i] = T->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    T->heap[i] = e;
}

static heap_entry heap_pop(trainer *T) {
    heap_entry top = T->heap[0], last = T->heap[--T->heap_n];
    size_t i = 0, n = T->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_before(T->heap[c + 1], T->heap[c])) c++;
        if (!heap_before(T->heap[c], last)) break;
        T->heap[i] = T->heap[c];
        i = c;
    }
    if (n) T->heap[i] = last;
    return top;
}

/* All live eligible pairs with their current scores (start, and when stale entries pile up). */
static void heap_rebuild(trainer *T) {
    T->heap_n = 0;
    for (size_t q = 0; q < T->n_pairs; q++)
        if (pair_eligible(T, &T->p[q])) heap_push(T, pair_score(T, &T->p[q]), T->p[q].key);
}

/* ---------------------------------------------------------------- training */

/* Alphabet order: more frequent first, then start before continuation, then by bytes. */
static int by_count(const void *x, const void *y, void *ctx) {
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    const symbols *S = ctx;
    if (S->count[a] != S->count[b]) return S->count[a] > S->count[b] ? -1 : 1;
    if (S->cont[a] != S->cont[b]) return S->cont[a] - S->cont[b];
    size_t n = S->len[a] < S->len[b] ? S->len[a] : S->len[b];
    int c = memcmp(S->bytes + S->off[a], S->bytes + S->off[b], n);
    if (c) return c;
    return (S->len[a] > S->len[b]) - (S->len[a] < S->len[b]);
}

static void trainer_free(trainer *T) {
    sym_free(&T->S);
    for (size_t q = 0; q < T->n_pairs; q++) free(T->p[q].words);
    free(T->p);
    free(T->slots);
    free(T->heap);
    for (size_t s = 0; s < T->sym_pairs_len; s++) free(T->sym_pairs[s]);
    free(T->sym_pairs);
    free(T->sym_pairs_n);
    free(T->sym_pairs_cap);
    free(T->blocked);
}

/* One training run with a fixed count threshold. */
static cf_wordpiece *train(const tok_words W, int vocab_size, int64_t min_count) {
    const int budget = vocab_size - CF_TOK_N_BASE;
    trainer T = {.min_count = min_count};
    T.S.mask = 1023;
    T.S.slots = cf_xmalloc(1024 * sizeof *T.S.slots);
    memset(T.S.slots, 0xff, 1024 * sizeof *T.S.slots);

    /* Units: word w is sym[off[w] .. off[w] + len[w]) (never more symbols than bytes). The first
     * unit carries the word's leading space, so " cat" starts with the symbol " c". */
    size_t total_bytes = W.n ? (size_t)(W.off[W.n - 1] + W.len[W.n - 1]) : 0;
    int32_t *sym = cf_xmalloc((total_bytes ? total_bytes : 1) * sizeof *sym);
    uint32_t *len = cf_xmalloc((W.n ? W.n : 1) * sizeof *len);
    for (size_t w = 0; w < W.n; w++) {
        const unsigned char *s = (const unsigned char *)W.bytes + W.off[w];
        size_t n = W.len[w], pos = 0;
        uint32_t m = 0;
        while (pos < n) {
            size_t u = tok_unit_len(s + pos, n - pos);
            if (pos == 0 && s[0] == ' ' && n > 1 && s[1] != ' ' && !(s[1] >= '\t' && s[1] <= '\r'))
                u = 1 + tok_unit_len(s + 1, n - 1);
            int32_t k = sym_intern(&T.S, (const char *)s + pos, u, pos > 0, NULL);
            T.S.count[k] += W.count[w];
            sym[W.off[w] + m++] = k;
            pos += u;
        }
        len[w] = m;
    }
    /* The alphabet in a fixed order (ids follow it), the most frequent first; past the budget a
     * unit stays out of the vocabulary (encoded by byte fallback). */
    size_t n_alpha = T.S.n;
    int32_t *order = cf_xmalloc((n_alpha ? n_alpha : 1) * sizeof *order);
    for (size_t k = 0; k < n_alpha; k++) order[k] = (int32_t)k;
    qsort_r(order, n_alpha, sizeof *order, by_count, &T.S);
    symbols S2 = {.mask = 1023};
    S2.slots = cf_xmalloc(1024 * sizeof *S2.slots);
    memset(S2.slots, 0xff, 1024 * sizeof *S2.slots);
    int32_t *remap = cf_xmalloc((n_alpha ? n_alpha : 1) * sizeof *remap);
    for (size_t r = 0; r < n_alpha; r++) {
        int32_t k = order[r];
        remap[k] = sym_intern(&S2, T.S.bytes + T.S.off[k], T.S.len[k], T.S.cont[k], NULL);
        S2.count[remap[k]] = T.S.count[k];
    }
    sym_free(&T.S);
    T.S = S2;
    for (size_t w = 0; w < W.n; w++)
        for (uint32_t i = 0; i < len[w]; i++) sym[W.off[w] + i] = remap[sym[W.off[w] + i]];
    free(remap);
    free(order);
    sym_pairs_reserve(&T, n_alpha);
    int n_pieces = 0;
    for (size_t k = 0; k < n_alpha; k++) {
        T.blocked[k] = (int)k >= budget;
        n_pieces += !T.blocked[k];
    }

    T.mask = (1u << 14) - 1;
    T.slots = cf_xmalloc((T.mask + 1) * sizeof *T.slots);
    memset(T.slots, 0xff, (T.mask + 1) * sizeof *T.slots);
    for (size_t w = 0; w < W.n; w++) {
        const int32_t *s = sym + W.off[w];
        for (uint32_t i = 0; i + 1 < len[w]; i++) {
            int32_t q = pair_find(&T, pair_key(s[i], s[i + 1]), true);
            T.p[q].count += W.count[w];
            pair_add_word(&T.p[q], (int32_t)w);
            pair_list(&T, q);
        }
    }
    heap_rebuild(&T);

    int32_t *seen = cf_xmalloc((W.n ? W.n : 1) * sizeof *seen); /* merge that last rewrote word w */
    memset(seen, 0xff, (W.n ? W.n : 1) * sizeof *seen);
    int32_t *changed = NULL;
    size_t n_changed = 0, cap_changed = 0;
    int32_t *merged = cf_xmalloc((size_t)(budget ? budget : 1) * sizeof *merged); /* new symbols in order */
    int n_merged = 0;
    for (int32_t iter = 0; n_pieces < budget && T.heap_n > 0; iter++) {
        heap_entry e = heap_pop(&T);
        int32_t pi = pair_find(&T, e.key, false);
        pair_info *p = &T.p[pi];
        if (!pair_eligible(&T, p) || pair_score(&T, p) != e.score) continue; /* stale */
        int32_t a = key_left(e.key), b = key_right(e.key);
        char joined[2 * CF_TOK_MAX_TOKEN_BYTES];
        memcpy(joined, T.S.bytes + T.S.off[a], T.S.len[a]);
        memcpy(joined + T.S.len[a], T.S.bytes + T.S.off[b], T.S.len[b]);
        bool created;
        int32_t z = sym_intern(&T.S, joined, T.S.len[a] + T.S.len[b], T.S.cont[a], &created);
        sym_pairs_reserve(&T, T.S.n);
        if (created) { /* two merge paths can spell the same piece: it counts once */
            merged[n_merged++] = z;
            n_pieces++;
        }
        n_changed = 0;
#define MARK(q)                                                                                    \
    do {                                                                                           \
        if (T.p[q].stamp != iter) {                                                                \
            T.p[q].stamp = iter;                                                                   \
            changed = cf_grow(changed, &cap_changed, n_changed + 1, sizeof *changed);                 \
            changed[n_changed++] = (q);                                                            \
        }                                                                                          \
    } while (0)
        /* The pair's word list is not appended to during this merge (only pairs with z are, and
         * (a, b) contains z only if z == a or z == b, impossible: z is longer than both). */
        int32_t *words = p->words;
        int32_t n_list = p->n_words;
        for (int32_t k = 0; k < n_list; k++) {
            int32_t w = words[k];
            if (seen[w] == iter) continue;
            seen[w] = iter;
            int32_t *s = sym + W.off[w];
            uint32_t m = len[w];
            bool has = false;
            for (uint32_t i = 0; i + 1 < m && !has; i++) has = s[i] == a && s[i + 1] == b;
            if (!has) continue;
            int64_t wc = W.count[w];
            for (uint32_t i = 0; i + 1 < m; i++) {
                int32_t q = pair_find(&T, pair_key(s[i], s[i + 1]), false);
                T.p[q].count -= wc;
                MARK(q);
            }
            uint32_t out = 0;
            for (uint32_t i = 0; i < m; i++) {
                if (i + 1 < m && s[i] == a && s[i + 1] == b) {
                    s[out++] = z, i++;
                    T.S.count[a] -= wc;
                    T.S.count[b] -= wc;
                    T.S.count[z] += wc;
                } else {
                    s[out++] = s[i];
                }
            }
            len[w] = m = out;
            for (uint32_t i = 0; i + 1 < m; i++) {
                bool with_z = s[i] == z || s[i + 1] == z;
                int32_t q = pair_find(&T, pair_key(s[i], s[i + 1]), with_z);
                T.p[q].count += wc;
                if (with_z) {
                    pair_add_word(&T.p[q], w);
                    pair_list(&T, q);
                }
                MARK(q);
            }
        }
        p = &T.p[pi]; /* pair_find may have moved the array */
        p->count = 0;
        free(p->words);
        p->words = NULL;
        p->n_words = p->cap_words = 0;
        /* The parts' counts changed: so did the score of every pair that has one of them. Dead
         * pairs leave the lists on the way. */
        int32_t parts[2] = {a, b};
        for (int k = 0; k < (a == b ? 1 : 2); k++) {
            int32_t x = parts[k], kept = 0;
            for (int32_t j = 0; j < T.sym_pairs_n[x]; j++) {
                int32_t q = T.sym_pairs[x][j];
                if (T.p[q].count <= 0) {
                    /* Dropped from x's list; the other part drops it when it walks its own. If
                     * the pair comes back (z existed already), pair_list lists it again: a
                     * duplicate entry costs a visit, MARK keeps it from being queued twice. */
                    T.p[q].listed = false;
                    continue;
                }
                T.sym_pairs[x][kept++] = q;
                MARK(q);
            }
            T.sym_pairs_n[x] = kept;
        }
#undef MARK
        for (size_t k = 0; k < n_changed; k++) {
            pair_info *c = &T.p[changed[k]];
            if (pair_eligible(&T, c)) heap_push(&T, pair_score(&T, c), c->key);
        }
        if (T.heap_n > 4 * T.n_pairs + (1u << 16)) heap_rebuild(&T);
    }

    /* The vocabulary: the alphabet in the vocabulary, then the merged pieces in order. */
    int n_out = 0;
    const char **pb = cf_xmalloc((size_t)(n_pieces ? n_pieces : 1) * sizeof *pb);
    size_t *pl = cf_xmalloc((size_t)(n_pieces ? n_pieces : 1) * sizeof *pl);
    bool *pc = cf_xmalloc((size_t)(n_pieces ? n_pieces : 1) * sizeof *pc);
    for (size_t k = 0; k < n_alpha + (size_t)n_merged; k++) {
        int32_t s = k < n_alpha ? (int32_t)k : merged[k - n_alpha];
        if (k < n_alpha && T.blocked[s]) continue;
        pb[n_out] = T.S.bytes + T.S.off[s];
        pl[n_out] = T.S.len[s];
        pc[n_out] = T.S.cont[s];
        n_out++;
    }
    CF_ASSERT(n_out == n_pieces);
    cf_wordpiece *wp = cf_wordpiece_from_pieces(n_out, pb, pl, pc);
    CF_ASSERT(wp != NULL, "%s", cf_error_message()); /* interned, bounded by the word length */
    wordpiece_set_min_count(wp, min_count);
    free(pb);
    free(pl);
    free(pc);
    free(merged);
    free(changed);
    free(seen);
    free(sym);
    free(len);
    trainer_free(&T);
    return wp;
}

cf_wordpiece *cf_wordpiece_train(cf_tok_trainer *tr, const cf_wordpiece_opts *o) {
    if (o->vocab_size < CF_TOK_N_BASE || o->vocab_size > CF_TOK_MAX_VOCAB) {
        cf_error_set("wordpiece: vocab size %d must be in [%d, %d] (the %d special and byte tokens come first)",
                     o->vocab_size, CF_TOK_N_BASE, CF_TOK_MAX_VOCAB, CF_TOK_N_BASE);
        cf_tok_trainer_free(tr);
        return NULL;
    }
    const tok_words W = tok_trainer_words(tr);
    cf_wordpiece *wp = NULL;
    if (o->min_count > 0) {
        wp = train(W, o->vocab_size, o->min_count);
    } else {
        /* The score is a ratio of counts, noisy for rare pairs and highest for pairs whose parts
         * are rare: with a floor of 2 the budget goes on spelling out rare words letter by letter
         * while "##e" + "##r" never merges (docs/data.md). So the floor is (about) the highest one
         * that still fills the vocabulary: double it while it does, then bisect (geometrically)
         * until the bracket is within 25%. */
        int64_t lo = 2, hi = 0, most = 0; /* no pair occurs more often than all words together */
        for (size_t w = 0; w < W.n; w++) most += W.count[w];
        wp = train(W, o->vocab_size, lo);
        if (o->vocab_size == CF_TOK_N_BASE) hi = lo; /* nothing to learn: any floor "fills" it */
        while (cf_wordpiece_vocab_size(wp) == o->vocab_size && (hi == 0 || (double)hi > 1.25 * (double)lo) &&
               lo < most) {
            int64_t mid = hi ? (int64_t)sqrt((double)lo * (double)hi) : 2 * lo;
            if (mid <= lo) break;
            cf_wordpiece *t = train(W, o->vocab_size, mid);
            if (cf_wordpiece_vocab_size(t) == o->vocab_size) {
                cf_wordpiece_free(wp);
                wp = t, lo = mid;
            } else {
                cf_wordpiece_free(t);
                hi = mid;
            }
        }
    }
    cf_tok_trainer_free(tr);
    return wp;
}
