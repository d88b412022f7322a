/* data/tokenizer.c - byte-level BPE: pre-tokenisation, training, encoding, decoding.
 *
 * Training keeps, for every adjacent symbol pair, its count (weighted by word frequency) and the
 * list of words it occurs in. A merge rewrites only the words that contain the merged pair and
 * updates the counts of their pairs; a max-heap with lazy deletion finds the next best pair (an
 * entry whose stored count is stale is re-pushed with the current count when it surfaces). Nothing
 * rescans the corpus per merge.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/lines.h"
#include "data/tokenizer_internal.h"

/* Words longer than this are cut into pieces: it bounds the per-word merge loop (a 100k-byte line
 * without spaces stays linear) and the encode cache's memory. Natural words are far shorter. */
#define BPE_MAX_WORD CF_TOK_MAX_TOKEN_BYTES

void cf_ids_push(cf_ids *a, int32_t id) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->data = cf_xrealloc(a->data, (size_t)a->cap * sizeof *a->data); /* out of memory: a message, exit 1 */
    }
    a->data[a->n++] = id;
}

void cf_ids_free(cf_ids *a) {
    free(a->data);
    *a = (cf_ids){0};
}

/* ---------------------------------------------------------------- pre-tokenisation */

enum { CL_WS, CL_LETTER, CL_DIGIT, CL_PUNCT };

static int is_ws(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static int ascii_class(unsigned char c) {
    if (is_ws(c)) return CL_WS;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CL_LETTER;
    if (c >= '0' && c <= '9') return CL_DIGIT;
    return CL_PUNCT; /* ASCII punctuation and control characters */
}

/* Punctuation and symbols outside ASCII (Latin-1 signs, general punctuation, currency, CJK and
 * full-width punctuation), so that e.g. „ “ « » 。 do not glue onto words. */
static int codepoint_class(uint32_t cp) {
    if ((cp >= 0xA0 && cp <= 0xBF) || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2000 && cp <= 0x206F) ||
        (cp >= 0x20A0 && cp <= 0x20CF) || (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFF01 && cp <= 0xFF0F) ||
        (cp >= 0xFF1A && cp <= 0xFF20))
        return CL_PUNCT;
    return CL_LETTER;
}

/* Length of the UTF-8 unit at s[0] (1 for a byte that does not start a valid sequence) and its
 * class. Invalid bytes count as letters: they are just bytes to the BPE. */
static size_t unit_at(const unsigned char *s, size_t n, int *cls) {
    unsigned c = s[0];
    if (c < 0x80) {
        *cls = ascii_class((unsigned char)c);
        return 1;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else goto invalid;
    if (len > n) goto invalid;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) goto invalid;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        goto invalid; /* overlong forms and surrogates */
    *cls = codepoint_class(cp);
    return len;
invalid:
    *cls = CL_LETTER;
    return 1;
}

/* A run of units of one class starting at s[0], at most max bytes (but at least one unit). */
static size_t class_run(const unsigned char *s, size_t n, size_t max) {
    int cls, c2;
    size_t k = unit_at(s, n, &cls);
    while (k < n) {
        size_t u = unit_at(s + k, n - k, &c2);
        if (c2 != cls || k + u > max) break;
        k += u;
    }
    return k;
}

/* Words: a run of letters, digits or punctuation, with the single space before it attached (the
 * word-boundary marker: "a cat" -> "a", " cat"); other whitespace forms words of its own. */
size_t cf_bpe_word_len(const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    if (len == 0) return 0;
    if (!is_ws(s[0])) return class_run(s, len, BPE_MAX_WORD);
    size_t j = 1;
    while (j < len && j < BPE_MAX_WORD && is_ws(s[j])) j++;
    if (j < len && !is_ws(s[j]) && s[j - 1] == ' ') {
        if (j > 1) return j - 1; /* leave the last space to mark the next word */
        return 1 + class_run(s + 1, len - 1, BPE_MAX_WORD - 1);
    }
    return j;
}

/* ---------------------------------------------------------------- building a tokenizer */

static size_t rank_slot(const cf_bpe *t, uint64_t key) {
    size_t i = bpe_hash_u64(key) & t->rank_mask;
    while (t->rank_keys[i] != 0 && t->rank_keys[i] != key) i = (i + 1) & t->rank_mask;
    return i;
}

static inline uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

cf_bpe *bpe_from_merges(const int32_t *left, const int32_t *right, int n_merges) {
    /* Lengths first, bounded before anything is allocated from them: a crafted file whose merges
     * each join the previous merge with itself doubles a length per merge (issue 10). */
    if (n_merges < 0 || n_merges > CF_TOK_MAX_VOCAB - CF_BPE_N_BASE) {
        cf_error_set("tokenizer: %d merges (at most %d)", n_merges, CF_TOK_MAX_VOCAB - CF_BPE_N_BASE);
        return NULL;
    }
    int vocab = CF_BPE_N_BASE + n_merges;
    int64_t *len = cf_xmalloc((size_t)vocab * sizeof(int64_t));
    size_t total = 0;
    for (int id = 0; id < vocab; id++) {
        if (id < CF_BPE_N_SPECIAL) len[id] = (int64_t)strlen(tok_special_names[id]);
        else if (id < CF_BPE_N_BASE) len[id] = 1;
        else {
            int32_t l = left[id - CF_BPE_N_BASE], r = right[id - CF_BPE_N_BASE];
            CF_ASSERT(l >= CF_BPE_BYTE_BASE && l < id && r >= CF_BPE_BYTE_BASE && r < id,
                      "merge %d refers to a later token", id - CF_BPE_N_BASE);
            len[id] = len[l] + len[r];
            if (len[id] > CF_TOK_MAX_TOKEN_BYTES) {
                cf_error_set("tokenizer: merge %d [%d, %d] makes a token of %lld bytes (at most %d)",
                             id - CF_BPE_N_BASE, l, r, (long long)len[id], CF_TOK_MAX_TOKEN_BYTES);
                free(len);
                return NULL;
            }
        }
        total += (size_t)len[id];
    }
    cf_bpe *t = cf_xcalloc(1, sizeof *t);
    t->n_merges = n_merges;
    t->merge_left = cf_xmalloc((size_t)(n_merges ? n_merges : 1) * sizeof(int32_t));
    t->merge_right = cf_xmalloc((size_t)(n_merges ? n_merges : 1) * sizeof(int32_t));
    if (n_merges) {
        memcpy(t->merge_left, left, (size_t)n_merges * sizeof(int32_t));
        memcpy(t->merge_right, right, (size_t)n_merges * sizeof(int32_t));
    }
    t->tok_off = cf_xmalloc((size_t)(vocab + 1) * sizeof(int64_t));
    size_t at = 0;
    for (int id = 0; id < vocab; id++) {
        t->tok_off[id] = (int64_t)at;
        at += (size_t)len[id];
    }
    t->tok_off[vocab] = (int64_t)at;
    t->tok_bytes = cf_xmalloc(total + 1);
    for (int id = 0; id < vocab; id++) {
        char *dst = t->tok_bytes + t->tok_off[id];
        if (id < CF_BPE_N_SPECIAL) memcpy(dst, tok_special_names[id], (size_t)len[id]);
        else if (id < CF_BPE_N_BASE) dst[0] = (char)(id - CF_BPE_BYTE_BASE);
        else {
            int32_t l = left[id - CF_BPE_N_BASE], r = right[id - CF_BPE_N_BASE];
            memcpy(dst, t->tok_bytes + t->tok_off[l], (size_t)len[l]);
            memcpy(dst + len[l], t->tok_bytes + t->tok_off[r], (size_t)len[r]);
        }
    }
    free(len);
    size_t cap = 16;
    while (cap < 2 * (size_t)n_merges + 2) cap *= 2;
    t->rank_mask = cap - 1;
    t->rank_keys = cf_xcalloc(cap, sizeof(uint64_t));
    t->rank_vals = cf_xmalloc(cap * sizeof(int32_t));
    for (int i = 0; i < n_merges; i++) {
        uint64_t key = pair_key(left[i], right[i]);
        size_t s = rank_slot(t, key);
        if (t->rank_keys[s] == 0) { /* a duplicate merge keeps its first (lowest) rank */
            t->rank_keys[s] = key;
            t->rank_vals[s] = i;
        }
    }
    return t;
}

void cf_bpe_free(cf_bpe *t) {
    if (!t) return;
    free(t->merge_left);
    free(t->merge_right);
    free(t->tok_bytes);
    free(t->tok_off);
    free(t->rank_keys);
    free(t->rank_vals);
    tok_cache_free(&t->cache);
    free(t);
}

int cf_bpe_vocab_size(const cf_bpe *t) { return CF_BPE_N_BASE + t->n_merges; }
int cf_bpe_n_merges(const cf_bpe *t) { return t->n_merges; }

const char *cf_bpe_token(const cf_bpe *t, int32_t id, size_t *len) {
    CF_ASSERT(id >= 0 && id < cf_bpe_vocab_size(t));
    if (len) *len = (size_t)(t->tok_off[id + 1] - t->tok_off[id]);
    return t->tok_bytes + t->tok_off[id];
}

void cf_bpe_merge(const cf_bpe *t, int i, int32_t *left, int32_t *right) {
    CF_ASSERT(i >= 0 && i < t->n_merges);
    *left = t->merge_left[i];
    *right = t->merge_right[i];
}

/* ---------------------------------------------------------------- encoding and decoding */

static int32_t rank_of(const cf_bpe *t, int32_t a, int32_t b) {
    size_t s = rank_slot(t, pair_key(a, b));
    return t->rank_keys[s] ? t->rank_vals[s] : INT32_MAX;
}

/* Apply the merges to one word by rank: repeatedly merge every (left-to-right, non-overlapping)
 * occurrence of the lowest-ranked pair present. This reproduces what training did to the word. */
static int encode_word_uncached(const cf_bpe *t, const unsigned char *w, size_t n, int32_t *sym) {
    int m = (int)n;
    for (int i = 0; i < m; i++) sym[i] = CF_BPE_BYTE_BASE + w[i];
    while (m > 1) {
        int32_t best = INT32_MAX;
        for (int i = 0; i + 1 < m; i++) {
            int32_t r = rank_of(t, sym[i], sym[i + 1]);
            if (r < best) best = r;
        }
        if (best == INT32_MAX) break;
        int32_t a = t->merge_left[best], b = t->merge_right[best], z = CF_BPE_N_BASE + best;
        int k = 0;
        for (int i = 0; i < m; i++) {
            if (i + 1 < m && sym[i] == a && sym[i + 1] == b) sym[k++] = z, i++;
            else sym[k++] = sym[i];
        }
        m = k;
    }
    return m;
}

static void encode_word(cf_bpe *t, const char *w, size_t n, cf_ids *out) {
    if (tok_cache_get(&t->cache, w, n, out)) return;
    int32_t sym[BPE_MAX_WORD];
    int m = encode_word_uncached(t, (const unsigned char *)w, n, sym);
    for (int k = 0; k < m; k++) cf_ids_push(out, sym[k]);
    tok_cache_put(&t->cache, w, n, sym, m);
}

void cf_bpe_encode(cf_bpe *t, const char *text, size_t len, cf_ids *out) {
    size_t pos = 0;
    while (pos < len) {
        size_t n = cf_bpe_word_len(text + pos, len - pos);
        encode_word(t, text + pos, n, out);
        pos += n;
    }
}

size_t cf_bpe_decode(const cf_bpe *t, const int32_t *ids, int64_t n, char *out, size_t cap) {
    int vocab = cf_bpe_vocab_size(t);
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= vocab) {
            cf_error_set("decode: token id %d at position %lld is outside the vocabulary [0, %d)", id, (long long)i,
                         vocab);
            return (size_t)-1;
        }
        if (id < CF_BPE_N_SPECIAL) continue;
        size_t len = (size_t)(t->tok_off[id + 1] - t->tok_off[id]);
        if (total + len < cap) memcpy(out + total, t->tok_bytes + t->tok_off[id], len);
        else if (total < cap) memcpy(out + total, t->tok_bytes + t->tok_off[id], cap - 1 - total);
        total += len;
    }
    if (cap > 0) out[total < cap ? total : cap - 1] = '\0';
    return total;
}

/* ---------------------------------------------------------------- training */

struct cf_bpe_trainer {
    /* Distinct words: bytes in `bytes`, dense arrays indexed by word, a hash table of indices. */
    char *bytes;
    size_t bytes_n, bytes_cap;
    int64_t *w_off, *w_count;
    uint32_t *w_len;
    uint64_t *w_hash;
    size_t n_words, words_cap;
    int32_t *slots; /* -1 = empty */
    size_t slot_mask;
};

cf_bpe_trainer *cf_bpe_trainer_new(void) {
    cf_bpe_trainer *tr = cf_xcalloc(1, sizeof *tr);
    tr->slot_mask = (1u << 12) - 1;
    tr->slots = cf_xmalloc((tr->slot_mask + 1) * sizeof(int32_t));
    memset(tr->slots, 0xff, (tr->slot_mask + 1) * sizeof(int32_t));
    return tr;
}

tok_words bpe_trainer_words(const cf_bpe_trainer *tr) {
    return (tok_words){.bytes = tr->bytes, .off = tr->w_off, .count = tr->w_count, .len = tr->w_len, .n = tr->n_words};
}

void cf_bpe_trainer_free(cf_bpe_trainer *tr) {
    if (!tr) return;
    free(tr->bytes);
    free(tr->w_off);
    free(tr->w_count);
    free(tr->w_len);
    free(tr->w_hash);
    free(tr->slots);
    free(tr);
}

static void trainer_add_word(cf_bpe_trainer *tr, const char *w, size_t n) {
    uint64_t h = bpe_hash_bytes(w, n);
    size_t i = h & tr->slot_mask;
    for (; tr->slots[i] >= 0; i = (i + 1) & tr->slot_mask) {
        int32_t k = tr->slots[i];
        if (tr->w_hash[k] == h && tr->w_len[k] == n && memcmp(tr->bytes + tr->w_off[k], w, n) == 0) {
            tr->w_count[k]++;
            return;
        }
    }
    if (tr->n_words == tr->words_cap) {
        size_t c = tr->words_cap ? tr->words_cap * 2 : 1024;
        tr->w_off = realloc(tr->w_off, c * sizeof *tr->w_off);
        tr->w_count = realloc(tr->w_count, c * sizeof *tr->w_count);
        tr->w_len = realloc(tr->w_len, c * sizeof *tr->w_len);
        tr->w_hash = realloc(tr->w_hash, c * sizeof *tr->w_hash);
        CF_ASSERT(tr->w_off && tr->w_count && tr->w_len && tr->w_hash, "out of memory");
        tr->words_cap = c;
    }
    tr->bytes = cf_grow(tr->bytes, &tr->bytes_cap, tr->bytes_n + n, 1);
    memcpy(tr->bytes + tr->bytes_n, w, n);
    size_t k = tr->n_words++;
    tr->w_off[k] = (int64_t)tr->bytes_n;
    tr->w_len[k] = (uint32_t)n;
    tr->w_hash[k] = h;
    tr->w_count[k] = 1;
    tr->bytes_n += n;
    tr->slots[i] = (int32_t)k;
    if (2 * tr->n_words > tr->slot_mask + 1) {
        size_t cap = 2 * (tr->slot_mask + 1);
        free(tr->slots);
        tr->slots = cf_xmalloc(cap * sizeof(int32_t));
        memset(tr->slots, 0xff, cap * sizeof(int32_t));
        tr->slot_mask = cap - 1;
        for (size_t j = 0; j < tr->n_words; j++) {
            size_t s = tr->w_hash[j] & tr->slot_mask;
            while (tr->slots[s] >= 0) s = (s + 1) & tr->slot_mask;
            tr->slots[s] = (int32_t)j;
        }
    }
}

void cf_bpe_trainer_add(cf_bpe_trainer *tr, const char *text, size_t len) {
    size_t pos = 0;
    while (pos < len) {
        size_t n = cf_bpe_word_len(text + pos, len - pos);
        trainer_add_word(tr, text + pos, n);
        pos += n;
    }
}

/* Pair statistics during training. */
typedef struct pair_info {
    uint64_t key;
    int64_t count;
    int32_t *words; /* words the pair occurs (or once occurred) in; may hold stale entries */
    int32_t n_words, cap_words;
    int32_t pushed_at; /* the merge after which it was last pushed as a new pair */
} pair_info;

typedef struct heap_entry {
    int64_t count;
    uint64_t key;
} heap_entry;

typedef struct pair_table {
    pair_info *p;
    size_t n, cap;
    int32_t *slots;
    size_t mask;
    heap_entry *heap;
    size_t heap_n, heap_cap;
} pair_table;

static int32_t pair_find(pair_table *pt, uint64_t key, bool create) {
    size_t i = bpe_hash_u64(key) & pt->mask;
    for (; pt->slots[i] >= 0; i = (i + 1) & pt->mask)
        if (pt->p[pt->slots[i]].key == key) return pt->slots[i];
    if (!create) return -1;
    if (pt->n == pt->cap) {
        pt->cap = pt->cap ? pt->cap * 2 : 4096;
        pt->p = realloc(pt->p, pt->cap * sizeof *pt->p);
        CF_ASSERT(pt->p != NULL, "out of memory");
    }
    int32_t idx = (int32_t)pt->n++;
    pt->p[idx] = (pair_info){.key = key, .pushed_at = -1};
    pt->slots[i] = idx;
    if (2 * pt->n > pt->mask + 1) {
        size_t cap = 2 * (pt->mask + 1);
        free(pt->slots);
        pt->slots = cf_xmalloc(cap * sizeof(int32_t));
        memset(pt->slots, 0xff, cap * sizeof(int32_t));
        pt->mask = cap - 1;
        for (size_t j = 0; j < pt->n; j++) {
            size_t s = bpe_hash_u64(pt->p[j].key) & pt->mask;
            while (pt->slots[s] >= 0) s = (s + 1) & pt->mask;
            pt->slots[s] = (int32_t)j;
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

/* Max-heap order: higher count first; ties go to the smaller (left id, right id). */
static bool heap_before(heap_entry x, heap_entry y) { return x.count > y.count || (x.count == y.count && x.key < y.key); }

static void heap_push(pair_table *pt, int64_t count, uint64_t key) {
    if (pt->heap_n == pt->heap_cap) {
        pt->heap_cap = pt->heap_cap ? 2 * pt->heap_cap : 4096;
        pt->heap = realloc(pt->heap, pt->heap_cap * sizeof *pt->heap);
        CF_ASSERT(pt->heap != NULL, "out of memory");
    }
    size_t i = pt->heap_n++;
    heap_entry e = {count, key};
    while (i > 0 && heap_before(e, pt->heap[(i - 1) / 2])) {
        pt->heap[i] = pt->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    pt->heap[i] = e;
}

static heap_entry heap_pop(pair_table *pt) {
    heap_entry top = pt->heap[0], last = pt->heap[--pt->heap_n];
    size_t i = 0, n = pt->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_before(pt->heap[c + 1], pt->heap[c])) c++;
        if (!heap_before(pt->heap[c], last)) break;
        pt->heap[i] = pt->heap[c];
        i = c;
    }
    if (n) pt->heap[i] = last;
    return top;
}

cf_bpe *cf_bpe_trainer_finish(cf_bpe_trainer *tr, int vocab_size) { return cf_bpe_trainer_finish_ex(tr, vocab_size, 2); }

cf_bpe *cf_bpe_trainer_finish_ex(cf_bpe_trainer *tr, int vocab_size, int64_t min_count) {
    if (vocab_size < CF_BPE_N_BASE) {
        cf_error_set("tokenizer: vocab size %d is too small (the %d special and byte tokens come first)", vocab_size,
                     CF_BPE_N_BASE);
        cf_bpe_trainer_free(tr);
        return NULL;
    }
    if (min_count <= 0) min_count = 2;
    int target = vocab_size - CF_BPE_N_BASE;
    size_t nw = tr->n_words;
    /* Symbols of every word, in place: word w is sym[w_off[w] .. w_off[w] + len[w]). */
    int32_t *sym = cf_xmalloc((tr->bytes_n ? tr->bytes_n : 1) * sizeof(int32_t));
    uint32_t *len = cf_xmalloc((nw ? nw : 1) * sizeof(uint32_t));
    for (size_t i = 0; i < tr->bytes_n; i++) sym[i] = CF_BPE_BYTE_BASE + (unsigned char)tr->bytes[i];
    if (nw) memcpy(len, tr->w_len, nw * sizeof(uint32_t));

    pair_table pt = {0};
    pt.mask = (1u << 14) - 1;
    pt.slots = cf_xmalloc((pt.mask + 1) * sizeof(int32_t));
    memset(pt.slots, 0xff, (pt.mask + 1) * sizeof(int32_t));
    for (size_t w = 0; w < nw; w++) {
        const int32_t *s = sym + tr->w_off[w];
        for (uint32_t i = 0; i + 1 < len[w]; i++) {
            int32_t q = pair_find(&pt, pair_key(s[i], s[i + 1]), true); /* may move pt.p */
            pair_info *p = &pt.p[q];
            p->count += tr->w_count[w];
            pair_add_word(p, (int32_t)w);
        }
    }
    for (size_t i = 0; i < pt.n; i++) heap_push(&pt, pt.p[i].count, pt.p[i].key);

    int32_t *left = cf_xmalloc((size_t)(target ? target : 1) * sizeof(int32_t));
    int32_t *right = cf_xmalloc((size_t)(target ? target : 1) * sizeof(int32_t));
    int32_t *seen = cf_xmalloc((nw ? nw : 1) * sizeof(int32_t)); /* merge that last rewrote word w */
    memset(seen, 0xff, (nw ? nw : 1) * sizeof(int32_t));
    int32_t *touched = NULL; /* pairs containing the new token, to push after the merge */
    size_t n_touched = 0, cap_touched = 0;
    int n_merges = 0;
    while (n_merges < target && pt.heap_n > 0) {
        heap_entry e = heap_pop(&pt);
        int32_t pi = pair_find(&pt, e.key, false);
        int64_t now = pt.p[pi].count;
        if (now != e.count) { /* stale: counts only drop for existing pairs, so re-queue */
            if (now > 0) heap_push(&pt, now, e.key);
            continue;
        }
        if (now < min_count) break;
        int32_t a = (int32_t)(e.key >> 32), b = (int32_t)(e.key & 0xffffffffu);
        int32_t z = CF_BPE_N_BASE + n_merges;
        left[n_merges] = a;
        right[n_merges] = b;
        /* The pair's word list is not appended to during this merge (only pairs with z are). */
        int32_t *words = pt.p[pi].words;
        int32_t n_list = pt.p[pi].n_words;
        n_touched = 0;
        for (int32_t k = 0; k < n_list; k++) {
            int32_t w = words[k];
            if (seen[w] == n_merges) continue;
            seen[w] = n_merges;
            int32_t *s = sym + tr->w_off[w];
            uint32_t m = len[w];
            bool has = false;
            for (uint32_t i = 0; i + 1 < m && !has; i++) has = s[i] == a && s[i + 1] == b;
            if (!has) continue;
            int64_t wc = tr->w_count[w];
            for (uint32_t i = 0; i + 1 < m; i++) pt.p[pair_find(&pt, pair_key(s[i], s[i + 1]), false)].count -= wc;
            uint32_t out = 0;
            for (uint32_t i = 0; i < m; i++) {
                if (i + 1 < m && s[i] == a && s[i + 1] == b) s[out++] = z, i++;
                else s[out++] = s[i];
            }
            len[w] = m = out;
            for (uint32_t i = 0; i + 1 < m; i++) {
                bool fresh = s[i] == z || s[i + 1] == z;
                int32_t q = pair_find(&pt, pair_key(s[i], s[i + 1]), fresh);
                pt.p[q].count += wc;
                if (fresh) {
                    pair_add_word(&pt.p[q], w);
                    touched = cf_grow(touched, &cap_touched, n_touched + 1, sizeof(int32_t));
                    touched[n_touched++] = q;
                }
            }
        }
        pt.p[pi].count = 0;
        free(pt.p[pi].words);
        pt.p[pi].words = NULL;
        pt.p[pi].n_words = pt.p[pi].cap_words = 0;
        /* Push each new pair once with its final count (duplicates would only be lazily skipped). */
        for (size_t k = 0; k < n_touched; k++) {
            pair_info *p = &pt.p[touched[k]];
            if (p->count > 0 && p->pushed_at != n_merges) {
                heap_push(&pt, p->count, p->key);
                p->pushed_at = n_merges;
            }
        }
        n_merges++;
    }
    cf_bpe *t = bpe_from_merges(left, right, n_merges);
    for (size_t i = 0; i < pt.n; i++) free(pt.p[i].words);
    free(pt.p);
    free(pt.slots);
    free(pt.heap);
    free(touched);
    free(seen);
    free(left);
    free(right);
    free(sym);
    free(len);
    cf_bpe_trainer_free(tr);
    return t;
}

cf_bpe *cf_bpe_train_files(const char *const *paths, int n_paths, int vocab_size) {
    cf_bpe_trainer *tr = cf_bpe_trainer_new();
    for (int i = 0; i < n_paths; i++) {
        cf_lines *r = cf_lines_open(paths[i]);
        if (!r) {
            cf_bpe_trainer_free(tr);
            return NULL;
        }
        const char *line;
        size_t n;
        int rc;
        while ((rc = cf_lines_next(r, &line, &n)) > 0) cf_bpe_trainer_add(tr, line, n);
        cf_lines_close(r);
        if (rc < 0) {
            cf_bpe_trainer_free(tr);
            return NULL;
        }
    }
    return cf_bpe_trainer_finish(tr, vocab_size);
}
