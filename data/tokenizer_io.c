/* data/tokenizer_io.c - the BPE's JSON file: write by hand (one token or merge a line, so diffs
 * stay readable), read with cJSON and validate everything, naming file and entry on error.
 *
 * Tokens are byte strings, not always valid UTF-8, so each byte is shown as one character
 * (tok_buf_token: printable ASCII as itself, the space as U+2581, any other byte b as U+0100 + b).
 * Merges are stored as id pairs [left, right]; merge i makes id 260 + i.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/fileio.h"
#include "data/tokenizer_internal.h"

#define BPE_FORMAT_NAME "cformer-bpe"

char *cf_bpe_to_json(const cf_bpe *t) {
    tok_buf b = {0};
    int vocab = cf_bpe_vocab_size(t);
    tok_buf_header(&b, BPE_FORMAT_NAME, CF_BPE_FORMAT_VERSION, vocab);
    tok_buf_str(&b, "  \"vocab\": [\n");
    for (int id = 0; id < vocab; id++) {
        size_t n;
        const char *s = cf_bpe_token(t, id, &n);
        tok_buf_str(&b, "    ");
        if (id < CF_BPE_N_SPECIAL) tok_buf_printf(&b, "\"%s\"", tok_special_names[id]);
        else tok_buf_token(&b, NULL, s, n);
        tok_buf_str(&b, id + 1 < vocab ? ",\n" : "\n");
    }
    tok_buf_str(&b, "  ],\n  \"merges\": [\n");
    for (int i = 0; i < t->n_merges; i++)
        tok_buf_printf(&b, "    [%d, %d]%s\n", t->merge_left[i], t->merge_right[i], i + 1 < t->n_merges ? "," : "");
    tok_buf_str(&b, "  ]\n}\n");
    return b.p;
}

int cf_bpe_save(const cf_bpe *t, const char *path) {
    char *json = cf_bpe_to_json(t);
    int rc = cf_write_file_atomic(path, json, strlen(json));
    free(json);
    return rc;
}

/* ---------------------------------------------------------------- loading */

static cf_bpe *load_fail(int32_t *l, int32_t *r, int64_t *len) {
    free(l);
    free(r);
    free(len);
    return NULL;
}

cf_bpe *bpe_from_root(const cJSON *root, const char *path) {
    if (tok_check_header(root, path, BPE_FORMAT_NAME, CF_BPE_FORMAT_VERSION) != 0) return NULL;
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(root, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(root, "merges");
    if (!cJSON_IsArray(vocab) || !cJSON_IsArray(merges)) {
        cf_error_set("%s: \"vocab\" and \"merges\" must be arrays", path);
        return NULL;
    }
    int n_vocab = cJSON_GetArraySize(vocab), n_merges = cJSON_GetArraySize(merges);
    if (n_vocab != CF_BPE_N_BASE + n_merges) {
        cf_error_set("%s: \"vocab\" has %d tokens but there are %d merges (expected %d + merges = %d tokens)", path,
                     n_vocab, n_merges, CF_BPE_N_BASE, CF_BPE_N_BASE + n_merges);
        return NULL;
    }
    const cJSON *item;
    if (tok_check_base(root, vocab, n_vocab, path, &item) != 0) return NULL;
    /* Merges in order, as id pairs (token strings could be ambiguous: two merges may spell the
     * same bytes); each may only use bytes and earlier merges, and every token's length is
     * bounded here, before bpe_from_merges allocates from the lengths. */
    int32_t *l = cf_xmalloc((size_t)(n_merges ? n_merges : 1) * sizeof(int32_t));
    int32_t *r = cf_xmalloc((size_t)(n_merges ? n_merges : 1) * sizeof(int32_t));
    int64_t *len = cf_xmalloc((size_t)n_vocab * sizeof(int64_t));
    for (int id = CF_BPE_BYTE_BASE; id < CF_BPE_N_BASE; id++) len[id] = 1;
    const cJSON *m = merges->child;
    for (int i = 0; i < n_merges; i++, m = m->next) {
        if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) != 2 || !cJSON_IsNumber(m->child) ||
            !cJSON_IsNumber(m->child->next)) {
            cf_error_set("%s: merge %d is not a pair of two token ids", path, i);
            return load_fail(l, r, len);
        }
        double ids[2] = {m->child->valuedouble, m->child->next->valuedouble};
        for (int k = 0; k < 2; k++)
            if (!(ids[k] >= CF_BPE_BYTE_BASE && ids[k] < CF_BPE_N_BASE + i) || ids[k] != (int32_t)ids[k]) {
                cf_error_set("%s: merge %d [%g, %g] refers to unknown token %g (merge %d may only use byte tokens "
                             "%d..%d and earlier merges up to id %d)",
                             path, i, ids[0], ids[1], ids[k], i, CF_BPE_BYTE_BASE, CF_BPE_N_BASE - 1, CF_BPE_N_BASE + i - 1);
                return load_fail(l, r, len);
            }
        l[i] = (int32_t)ids[0];
        r[i] = (int32_t)ids[1];
        int64_t n = len[l[i]] + len[r[i]];
        if (n > CF_TOK_MAX_TOKEN_BYTES) {
            cf_error_set("%s: merge %d [%d, %d] makes a token of %lld bytes (at most %d: no word is longer)", path, i,
                         l[i], r[i], (long long)n, CF_TOK_MAX_TOKEN_BYTES);
            return load_fail(l, r, len);
        }
        len[CF_BPE_N_BASE + i] = n;
    }
    cf_bpe *t = bpe_from_merges(l, r, n_merges);
    CF_ASSERT(t != NULL, "%s", cf_error_message()); /* every bound was checked above */
    /* The vocab strings are redundant (each is its merge joined) but are what people read: check. */
    char buf[CF_TOK_MAX_TOKEN_BYTES];
    uint32_t bad = 0;
    for (int id = CF_BPE_N_BASE; id < n_vocab; id++, item = item->next) {
        size_t tn;
        const char *tok = cf_bpe_token(t, id, &tn);
        int64_t vn = cJSON_IsString(item) ? tok_token_bytes(item->valuestring, buf, sizeof buf, &bad) : -1;
        if (vn != (int64_t)tn || memcmp(buf, tok, tn) != 0) {
            cf_error_set("%s: vocab entry %d does not spell merge %d [%d, %d] (its two tokens joined)", path, id,
                         id - CF_BPE_N_BASE, l[id - CF_BPE_N_BASE], r[id - CF_BPE_N_BASE]);
            cf_bpe_free(t);
            return load_fail(l, r, len);
        }
    }
    load_fail(l, r, len);
    return t;
}

cf_bpe *cf_bpe_from_json(const char *json, size_t len, const char *path) {
    cJSON *root = tok_parse_json(json, len, path);
    if (!root) return NULL;
    cf_bpe *t = bpe_from_root(root, path);
    cJSON_Delete(root);
    return t;
}

cf_bpe *cf_bpe_load(const char *path) {
    size_t n;
    char *json = tok_read_file(path, &n);
    if (!json) return NULL;
    cf_bpe *t = cf_bpe_from_json(json, n, path);
    free(json);
    return t;
}
