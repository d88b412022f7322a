/* data/unigram.c - the Unigram model: vocabulary, Viterbi encoding, sampling, decoding and the
 * JSON file (training: unigram_train.c).
 *
 * The lattice of a word (at most CF_TOK_MAX_TOKEN_BYTES bytes) is built on the fly: from each
 * reachable byte position one walk down the piece trie yields every piece that starts there.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/tokenizer_internal.h"
#include "data/unigram.h"

#define UG_FORMAT_NAME "cformer-unigram"
#define UG_FALLBACK_PENALTY 10.0    /* SentencePiece's penalty for an unknown character */
#define MAX_WORD CF_TOK_MAX_TOKEN_BYTES

struct cf_unigram {
    tok_table table;
    float *score;                   /* [vocab]: log-probability of piece ids; 0 below 260 */
    double fallback;                /* score of a byte-fallback edge */
    tok_trie trie;
    int32_t root;
    tok_cache cache;
};

cf_unigram *cf_unigram_from_pieces(int n, const char *const *bytes, const size_t *len, const float *score) {
    if (tok_check_pieces("unigram", n, len) != 0) return NULL;
    double lowest = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(score[i])) {
            cf_error_set("vocab entry %d: score %g is not a finite number", CF_TOK_N_BASE + i, (double)score[i]);
            return NULL;
        }
        if (i == 0 || score[i] < lowest) lowest = score[i];
    }
    cf_unigram *t = cf_xcalloc(1, sizeof *t);
    tok_table_init(&t->table, n, bytes, len);
    t->score = cf_xcalloc((size_t)t->table.vocab, sizeof *t->score);
    t->fallback = lowest - UG_FALLBACK_PENALTY;
    t->root = tok_trie_node(&t->trie);
    for (int i = 0; i < n; i++) {
        int32_t id = CF_TOK_N_BASE + i;
        t->score[id] = score[i];
        int32_t dup = tok_trie_insert(&t->trie, t->root, bytes[i], len[i], id);
        if (dup >= 0) {
            cf_error_set("vocab entry %d: the same piece as entry %d", id, dup);
            cf_unigram_free(t);
            return NULL;
        }
    }
    return t;
}

void cf_unigram_free(cf_unigram *t) {
    if (!t) return;
    tok_table_free(&t->table);
    free(t->score);
    tok_trie_free(&t->trie);
    tok_cache_free(&t->cache);
    free(t);
}

int cf_unigram_vocab_size(const cf_unigram *t) { return t->table.vocab; }
double cf_unigram_fallback_score(const cf_unigram *t) { return t->fallback; }

const char *cf_unigram_token(const cf_unigram *t, int32_t id, size_t *len, float *score) {
    CF_ASSERT(id >= 0 && id < t->table.vocab);
    if (len) *len = (size_t)(t->table.off[id + 1] - t->table.off[id]);
    if (score) *score = t->score[id];
    return t->table.bytes + t->table.off[id];
}

size_t cf_unigram_decode(const cf_unigram *t, const int32_t *ids, int64_t n, char *out, size_t cap) {
    return tok_table_decode(&t->table, ids, n, out, cap);
}

/* ---------------------------------------------------------------- the lattice */

/* An edge: bytes [s, e) of the word as piece id, or as byte fallback (id -1). */
typedef struct edge {
    uint8_t s, e;
    int32_t id;
    double score;
} edge;

enum { MAX_EDGES = MAX_WORD * (MAX_WORD + 1) / 2 + MAX_WORD };

/* Every edge of the word, grouped by start position in increasing order. Positions that no
 * path reaches still get their edges: it is simpler, and a crafted piece that ends inside a
 * UTF-8 unit can make any position reachable. */
static int lattice(const cf_unigram *t, const unsigned char *w, size_t n, edge *E) {
    int m = 0;
    for (size_t s = 0; s < n; s++) {
        size_t u = tok_unit_len(w + s, n - s);
        bool single = false;
        int32_t node = t->root;
        for (size_t k = s; k < n; k++) {
            node = tok_trie_child(&t->trie, node, w[k]);
            if (node < 0) break;
            int32_t id = t->trie.piece[node];
            if (id < 0) continue;
            single |= k + 1 - s == u;
            E[m++] = (edge){(uint8_t)s, (uint8_t)(k + 1), id, t->score[id]};
        }
        if (!single) E[m++] = (edge){(uint8_t)s, (uint8_t)(s + u), -1, t->fallback};
    }
    return m;
}

/* Append the ids of the segment [s, e) taken as edge id. */
static int emit(const unsigned char *w, int s, int e, int32_t id, int32_t *out, int m) {
    if (id >= 0) out[m++] = id;
    else
        for (int k = s; k < e; k++) out[m++] = CF_TOK_BYTE_BASE + w[k];
    return m;
}

/* Viterbi: the segmentation with the highest sum of scores (summed left to right in double);
 * ties go to the candidate found first, i.e. the one whose last piece starts earliest. */
static int viterbi_word(const cf_unigram *t, const unsigned char *w, size_t n, int32_t *out) {
    edge E[MAX_EDGES];
    int ne = lattice(t, w, n, E);
    double best[MAX_WORD + 1];
    int back[MAX_WORD + 1];
    best[0] = 0;
    for (size_t e = 1; e <= n; e++) best[e] = -INFINITY;
    for (int k = 0; k < ne; k++) {
        const edge *x = &E[k];
        if (best[x->s] == -INFINITY) continue;
        double v = best[x->s] + x->score;
        if (v > best[x->e]) best[x->e] = v, back[x->e] = k;
    }
    /* n is always reachable: units chain from 0 to n through single pieces or fallbacks. */
    int seg[MAX_WORD], ns = 0;
    for (int pos = (int)n; pos > 0; pos = E[back[pos]].s) seg[ns++] = back[pos];
    int m = 0;
    for (int k = ns - 1; k >= 0; k--) m = emit(w, E[seg[k]].s, E[seg[k]].e, E[seg[k]].id, out, m);
    return m;
}

void cf_unigram_encode(cf_unigram *t, const char *text, size_t len, cf_ids *out) {
    int32_t ids[MAX_WORD];
    size_t pos = 0;
    while (pos < len) {
        size_t n = cf_bpe_word_len(text + pos, len - pos);
        if (!tok_cache_get(&t->cache, text + pos, n, out)) {
            int m = viterbi_word(t, (const unsigned char *)text + pos, n, ids);
            for (int k = 0; k < m; k++) cf_ids_push(out, ids[k]);
            tok_cache_put(&t->cache, text + pos, n, ids, m);
        }
        pos += n;
    }
}

static double log_add(double a, double b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

/* Forward filtering, backward sampling: alpha[e] = log sum over paths to e of exp(alpha * score);
 * from the end, the last edge into e is drawn with weight exp(alpha[s] + alpha * score - alpha[e]). */
static int sample_word(const cf_unigram *t, const unsigned char *w, size_t n, double a, cf_rng *rng, int32_t *out) {
    edge E[MAX_EDGES];
    int ne = lattice(t, w, n, E);
    double fwd[MAX_WORD + 1];
    fwd[0] = 0;
    for (size_t e = 1; e <= n; e++) fwd[e] = -INFINITY;
    for (int k = 0; k < ne; k++)
        if (fwd[E[k].s] != -INFINITY) fwd[E[k].e] = log_add(fwd[E[k].e], fwd[E[k].s] + a * E[k].score);
    int seg[MAX_WORD], ns = 0;
    for (int pos = (int)n; pos > 0;) {
        double u = cf_rng_uniform_f64(rng), acc = 0;
        int pick = -1;
        for (int k = 0; k < ne; k++) {
            if (E[k].e != pos || fwd[E[k].s] == -INFINITY) continue;
            acc += exp(fwd[E[k].s] + a * E[k].score - fwd[pos]);
            pick = k; /* rounding may leave acc a hair below 1: the last edge takes the rest */
            if (u < acc) break;
        }
        CF_ASSERT(pick >= 0);
        seg[ns++] = pick;
        pos = E[pick].s;
    }
    int m = 0;
    for (int k = ns - 1; k >= 0; k--) m = emit(w, E[seg[k]].s, E[seg[k]].e, E[seg[k]].id, out, m);
    return m;
}

void cf_unigram_encode_sample(const cf_unigram *t, const char *text, size_t len, double alpha, cf_rng *rng,
                              cf_ids *out) {
    int32_t ids[MAX_WORD];
    size_t pos = 0;
    while (pos < len) {
        size_t n = cf_bpe_word_len(text + pos, len - pos);
        int m = sample_word(t, (const unsigned char *)text + pos, n, alpha, rng, ids);
        for (int k = 0; k < m; k++) cf_ids_push(out, ids[k]);
        pos += n;
    }
}

/* ---------------------------------------------------------------- the file */

char *cf_unigram_to_json(const cf_unigram *t) {
    tok_buf b = {0};
    int vocab = t->table.vocab;
    tok_buf_header(&b, UG_FORMAT_NAME, CF_UNIGRAM_FORMAT_VERSION, vocab);
    tok_buf_str(&b, "  \"vocab\": [\n");
    for (int id = 0; id < vocab; id++) {
        size_t n;
        float score;
        const char *s = cf_unigram_token(t, id, &n, &score);
        tok_buf_str(&b, "    ");
        if (id < CF_TOK_N_SPECIAL) {
            tok_buf_printf(&b, "\"%s\"", tok_special_names[id]);
        } else if (id < CF_TOK_N_BASE) {
            tok_buf_token(&b, NULL, s, n);
        } else {
            /* %.9g: a float survives the round trip through decimal exactly */
            tok_buf_str(&b, "[");
            tok_buf_token(&b, NULL, s, n);
            tok_buf_printf(&b, ", %.9g]", (double)score);
        }
        tok_buf_str(&b, id + 1 < vocab ? ",\n" : "\n");
    }
    tok_buf_str(&b, "  ]\n}\n");
    return b.p;
}

cf_unigram *unigram_from_root(const cJSON *root, const char *path) {
    if (tok_check_header(root, path, UG_FORMAT_NAME, CF_UNIGRAM_FORMAT_VERSION) != 0) return NULL;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(root, "vocab");
    if (!cJSON_IsArray(vocab)) {
        cf_error_set("%s: \"vocab\" must be an array", path);
        return NULL;
    }
    int n_vocab = cJSON_GetArraySize(vocab);
    const cJSON *item;
    if (tok_check_base(root, vocab, n_vocab, path, &item) != 0) return NULL;
    int n = n_vocab - CF_TOK_N_BASE;
    /* n is bounded by tok_check_base, every piece by the buffer below. */
    char *bytes = cf_xmalloc((size_t)(n ? n : 1) * CF_TOK_MAX_TOKEN_BYTES);
    const char **ptr = cf_xmalloc((size_t)(n ? n : 1) * sizeof *ptr);
    size_t *len = cf_xmalloc((size_t)(n ? n : 1) * sizeof *len);
    float *score = cf_xmalloc((size_t)(n ? n : 1) * sizeof *score);
    cf_unigram *t = NULL;
    for (int i = 0; i < n; i++, item = item->next) {
        int id = CF_TOK_N_BASE + i;
        if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 2 || !cJSON_IsString(item->child) ||
            !cJSON_IsNumber(item->child->next)) {
            cf_error_set("%s: vocab entry %d is not a pair [piece, score]", path, id);
            goto done;
        }
        double v = item->child->next->valuedouble;
        if (!isfinite(v) || fabs(v) > FLT_MAX) {
            cf_error_set("%s: vocab entry %d: score %g is not a finite float", path, id, v);
            goto done;
        }
        score[i] = (float)v;
        ptr[i] = bytes + (size_t)i * CF_TOK_MAX_TOKEN_BYTES;
        int64_t k = tok_vocab_piece(item->child->valuestring, bytes + (size_t)i * CF_TOK_MAX_TOKEN_BYTES, path, id);
        if (k < 0) goto done;
        len[i] = (size_t)k;
    }
    t = cf_unigram_from_pieces(n, ptr, len, score);
    if (!t) tok_error_in_file(path);
done:
    free(bytes);
    free(ptr);
    free(len);
    free(score);
    return t;
}

cf_unigram *cf_unigram_from_json(const char *json, size_t len, const char *path) {
    cJSON *root = tok_parse_json(json, len, path);
    if (!root) return NULL;
    cf_unigram *t = unigram_from_root(root, path);
    cJSON_Delete(root);
    return t;
}
