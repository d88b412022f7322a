/* data/wordpiece.c - WordPiece: the vocabulary, greedy longest-match-first encoding, decoding and
 * the JSON file (training: wordpiece_train.c).
 *
 * Start pieces and continuation pieces live under two roots of one byte trie, so the longest
 * match at a position is one walk down the trie; words are cached like the BPE's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/tokenizer_internal.h"
#include "data/wordpiece.h"

#define WP_FORMAT_NAME "cformer-wordpiece"
#define WP_PREFIX "##"

struct cf_wordpiece {
    tok_table table;
    uint8_t *cont;                  /* [vocab]: 1 for a continuation ("##") piece */
    tok_trie trie;
    int32_t root_start, root_cont;
    tok_cache cache;
    int64_t min_count;              /* the pair-count floor training used (0: unknown) */
};

void wordpiece_set_min_count(cf_wordpiece *t, int64_t min_count) { t->min_count = min_count; }
int64_t cf_wordpiece_min_count(const cf_wordpiece *t) { return t->min_count; }

cf_wordpiece *cf_wordpiece_from_pieces(int n, const char *const *bytes, const size_t *len, const bool *cont) {
    if (tok_check_pieces("wordpiece", n, len) != 0) return NULL;
    for (int i = 0; i < n; i++) {
        if (!cont[i] && len[i] >= 2 && memcmp(bytes[i], WP_PREFIX, 2) == 0) {
            cf_error_set("vocab entry %d: a start piece may not begin with \"##\" (it would read as a continuation)",
                         CF_TOK_N_BASE + i);
            return NULL;
        }
    }
    cf_wordpiece *t = cf_xcalloc(1, sizeof *t);
    tok_table_init(&t->table, n, bytes, len);
    t->cont = cf_xcalloc((size_t)t->table.vocab, 1);
    t->root_start = tok_trie_node(&t->trie);
    t->root_cont = tok_trie_node(&t->trie);
    for (int i = 0; i < n; i++) {
        int32_t id = CF_TOK_N_BASE + i;
        t->cont[id] = cont[i];
        int32_t dup = tok_trie_insert(&t->trie, cont[i] ? t->root_cont : t->root_start, bytes[i], len[i], id);
        if (dup >= 0) {
            cf_error_set("vocab entry %d: the same piece as entry %d", id, dup);
            cf_wordpiece_free(t);
            return NULL;
        }
    }
    return t;
}

void cf_wordpiece_free(cf_wordpiece *t) {
    if (!t) return;
    tok_table_free(&t->table);
    free(t->cont);
    tok_trie_free(&t->trie);
    tok_cache_free(&t->cache);
    free(t);
}

int cf_wordpiece_vocab_size(const cf_wordpiece *t) { return t->table.vocab; }

const char *cf_wordpiece_token(const cf_wordpiece *t, int32_t id, size_t *len, bool *cont) {
    CF_ASSERT(id >= 0 && id < t->table.vocab);
    if (len) *len = (size_t)(t->table.off[id + 1] - t->table.off[id]);
    if (cont) *cont = t->cont[id];
    return t->table.bytes + t->table.off[id];
}

/* ---------------------------------------------------------------- encoding */

/* Greedy longest match: at each position the longest piece that matches (start pieces at the
 * word's first byte, continuation pieces after it); none: one UTF-8 unit as byte tokens. Writes
 * at most n ids. */
static int encode_word_uncached(const cf_wordpiece *t, const unsigned char *w, size_t n, int32_t *out) {
    int m = 0;
    size_t pos = 0;
    while (pos < n) {
        int32_t node = pos == 0 ? t->root_start : t->root_cont, best = -1;
        size_t best_len = 0;
        for (size_t k = pos; k < n; k++) {
            node = tok_trie_child(&t->trie, node, w[k]);
            if (node < 0) break;
            if (t->trie.piece[node] >= 0) best = t->trie.piece[node], best_len = k + 1 - pos;
        }
        if (best >= 0) {
            out[m++] = best;
            pos += best_len;
        } else {
            size_t u = tok_unit_len(w + pos, n - pos);
            for (size_t k = 0; k < u; k++) out[m++] = CF_TOK_BYTE_BASE + w[pos + k];
            pos += u;
        }
    }
    return m;
}

void cf_wordpiece_encode(cf_wordpiece *t, const char *text, size_t len, cf_ids *out) {
    int32_t ids[CF_TOK_MAX_TOKEN_BYTES];
    size_t pos = 0;
    while (pos < len) {
        size_t n = cf_bpe_word_len(text + pos, len - pos);
        if (!tok_cache_get(&t->cache, text + pos, n, out)) {
            int m = encode_word_uncached(t, (const unsigned char *)text + pos, n, ids);
            for (int k = 0; k < m; k++) cf_ids_push(out, ids[k]);
            tok_cache_put(&t->cache, text + pos, n, ids, m);
        }
        pos += n;
    }
}

size_t cf_wordpiece_decode(const cf_wordpiece *t, const int32_t *ids, int64_t n, char *out, size_t cap) {
    return tok_table_decode(&t->table, ids, n, out, cap);
}

/* ---------------------------------------------------------------- the file */

char *cf_wordpiece_to_json(const cf_wordpiece *t) {
    tok_buf b = {0};
    int vocab = t->table.vocab;
    tok_buf_header(&b, WP_FORMAT_NAME, CF_WORDPIECE_FORMAT_VERSION, vocab);
    tok_buf_printf(&b, "  \"continuing_subword_prefix\": \"" WP_PREFIX "\",\n  \"min_count\": %lld,\n",
                   (long long)t->min_count);
    tok_buf_str(&b, "  \"vocab\": [\n");
    for (int id = 0; id < vocab; id++) {
        size_t n;
        bool cont;
        const char *s = cf_wordpiece_token(t, id, &n, &cont);
        tok_buf_str(&b, "    ");
        if (id < CF_TOK_N_SPECIAL) tok_buf_printf(&b, "\"%s\"", tok_special_names[id]);
        else tok_buf_token(&b, cont ? WP_PREFIX : NULL, s, n);
        tok_buf_str(&b, id + 1 < vocab ? ",\n" : "\n");
    }
    tok_buf_str(&b, "  ]\n}\n");
    return b.p;
}

cf_wordpiece *wordpiece_from_root(const cJSON *root, const char *path) {
    if (tok_check_header(root, path, WP_FORMAT_NAME, CF_WORDPIECE_FORMAT_VERSION) != 0) return NULL;
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(root, "continuing_subword_prefix");
    if (prefix && !(cJSON_IsString(prefix) && strcmp(prefix->valuestring, WP_PREFIX) == 0)) {
        cf_error_set("%s: \"continuing_subword_prefix\" must be \"" WP_PREFIX "\"", path);
        return NULL;
    }
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(root, "vocab");
    if (!cJSON_IsArray(vocab)) {
        cf_error_set("%s: \"vocab\" must be an array", path);
        return NULL;
    }
    int n_vocab = cJSON_GetArraySize(vocab);
    const cJSON *item;
    if (tok_check_base(root, vocab, n_vocab, path, &item) != 0) return NULL;
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(root, "min_count");
    if (mc && !(cJSON_IsNumber(mc) && mc->valuedouble >= 0 && mc->valuedouble <= 9007199254740992.0 &&
                mc->valuedouble == (double)(int64_t)mc->valuedouble)) {
        cf_error_set("%s: \"min_count\" must be a non-negative integer", path);
        return NULL;
    }
    int n = n_vocab - CF_TOK_N_BASE;
    /* n is bounded by tok_check_base, every piece by the buffer below. */
    char *bytes = cf_xmalloc((size_t)(n ? n : 1) * CF_TOK_MAX_TOKEN_BYTES);
    const char **ptr = cf_xmalloc((size_t)(n ? n : 1) * sizeof *ptr);
    size_t *len = cf_xmalloc((size_t)(n ? n : 1) * sizeof *len);
    bool *cont = cf_xmalloc((size_t)(n ? n : 1) * sizeof *cont);
    cf_wordpiece *t = NULL;
    for (int i = 0; i < n; i++, item = item->next) {
        int id = CF_TOK_N_BASE + i;
        if (!cJSON_IsString(item)) {
            cf_error_set("%s: vocab entry %d is not a string", path, id);
            goto done;
        }
        const char *s = item->valuestring;
        cont[i] = strncmp(s, WP_PREFIX, 2) == 0;
        if (cont[i]) s += 2;
        ptr[i] = bytes + (size_t)i * CF_TOK_MAX_TOKEN_BYTES;
        int64_t k = tok_vocab_piece(s, bytes + (size_t)i * CF_TOK_MAX_TOKEN_BYTES, path, id);
        if (k < 0) goto done;
        len[i] = (size_t)k;
    }
    t = cf_wordpiece_from_pieces(n, ptr, len, cont);
    if (t && mc) t->min_count = (int64_t)mc->valuedouble;
    if (!t) tok_error_in_file(path);
done:
    free(bytes);
    free(ptr);
    free(len);
    free(cont);
    return t;
}

cf_wordpiece *cf_wordpiece_from_json(const char *json, size_t len, const char *path) {
    cJSON *root = tok_parse_json(json, len, path);
    if (!root) return NULL;
    cf_wordpiece *t = wordpiece_from_root(root, path);
    cJSON_Delete(root);
    return t;
}
