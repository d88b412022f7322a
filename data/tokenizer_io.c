/* data/tokenizer_io.c - the tokenizer's JSON file: write by hand (one token or merge a line, so
 * diffs stay readable), read with cJSON and validate everything, naming file and entry on error.
 *
 * Tokens are byte strings, not always valid UTF-8, so each byte is shown as one character:
 * printable ASCII as itself, the space as U+2581 (the word-boundary marker, as in SentencePiece),
 * any other byte b as U+0100 + b. The mapping is one-to-one, so the file is exact. Merges are
 * stored as id pairs [left, right]; merge i makes id 260 + i.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/common.h"
#include "data/tokenizer_internal.h"

#define BPE_FORMAT_NAME "cformer-bpe"

static uint32_t byte_to_cp(unsigned char b) {
    if (b > 0x20 && b < 0x7f) return b;
    if (b == 0x20) return 0x2581;
    return 0x100u + b;
}

static int cp_to_byte(uint32_t cp) {
    if (cp > 0x20 && cp < 0x7f) return (int)cp;
    if (cp == 0x2581) return 0x20;
    if (cp >= 0x100 && cp <= 0x1ff && !(cp - 0x100 >= 0x20 && cp - 0x100 < 0x7f)) return (int)(cp - 0x100);
    return -1;
}

/* A growable output buffer. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 1 << 16;
        while (c < b->n + n + 1) c *= 2;
        b->p = realloc(b->p, c);
        CF_ASSERT(b->p != NULL, "out of memory");
        b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A token as a JSON string literal (specials verbatim, other tokens through the byte mapping). */
static void sb_token(sbuf *b, const cf_bpe *t, int32_t id) {
    size_t n;
    const char *s = cf_bpe_token(t, id, &n);
    sb_put(b, "\"", 1);
    if (id < CF_BPE_N_SPECIAL) sb_put(b, s, n);
    else
        for (size_t i = 0; i < n; i++) {
            uint32_t cp = byte_to_cp((unsigned char)s[i]);
            char u[4];
            if (cp == '"' || cp == '\\') u[0] = '\\', u[1] = (char)cp, sb_put(b, u, 2);
            else if (cp < 0x80) u[0] = (char)cp, sb_put(b, u, 1);
            else if (cp < 0x800) u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), sb_put(b, u, 2);
            else {
                u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char)(0x80 | (cp & 0x3F));
                sb_put(b, u, 3);
            }
        }
    sb_put(b, "\"", 1);
}

char *cf_bpe_to_json(const cf_bpe *t) {
    sbuf b = {0};
    char line[160];
    snprintf(line, sizeof line,
             "{\n  \"format\": \"%s\",\n  \"version\": %d,\n  \"special_tokens\": {\"<pad>\": %d, \"<unk>\": %d, "
             "\"<bos>\": %d, \"<eos>\": %d},\n  \"vocab_size\": %d,\n  \"vocab\": [\n",
             BPE_FORMAT_NAME, CF_BPE_FORMAT_VERSION, CF_PAD_ID, CF_UNK_ID, CF_BOS_ID, CF_EOS_ID, cf_bpe_vocab_size(t));
    sb_str(&b, line);
    int vocab = cf_bpe_vocab_size(t);
    for (int id = 0; id < vocab; id++) {
        sb_str(&b, "    ");
        sb_token(&b, t, id);
        sb_str(&b, id + 1 < vocab ? ",\n" : "\n");
    }
    sb_str(&b, "  ],\n  \"merges\": [\n");
    for (int i = 0; i < t->n_merges; i++) {
        snprintf(line, sizeof line, "    [%d, %d]%s\n", t->merge_left[i], t->merge_right[i],
                 i + 1 < t->n_merges ? "," : "");
        sb_str(&b, line);
    }
    sb_str(&b, "  ]\n}\n");
    return b.p;
}

int cf_bpe_save(const cf_bpe *t, const char *path) {
    char *json = cf_bpe_to_json(t);
    FILE *f = fopen(path, "wb");
    if (!f) {
        cf_error_set("%s: cannot open for writing: %m", path);
        free(json);
        return -1;
    }
    size_t n = strlen(json);
    bool ok = fwrite(json, 1, n, f) == n;
    ok &= fclose(f) == 0;
    free(json);
    if (!ok) {
        cf_error_set("%s: write failed: %m", path);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- loading */

/* Map a token string from the file back to bytes; -1 (with the offending code point) if it uses
 * a character outside the byte alphabet. */
static int64_t token_bytes(const char *s, char *out, size_t cap, uint32_t *bad) {
    const unsigned char *u = (const unsigned char *)s;
    size_t n = 0;
    while (*u) {
        uint32_t cp;
        int len;
        if (u[0] < 0x80) cp = u[0], len = 1;
        else if ((u[0] & 0xE0) == 0xC0 && (u[1] & 0xC0) == 0x80) cp = (u[0] & 0x1Fu) << 6 | (u[1] & 0x3F), len = 2;
        else if ((u[0] & 0xF0) == 0xE0 && (u[1] & 0xC0) == 0x80 && (u[2] & 0xC0) == 0x80)
            cp = (u[0] & 0x0Fu) << 12 | (u[1] & 0x3Fu) << 6 | (u[2] & 0x3F), len = 3;
        else cp = u[0], len = 0;
        int b = len ? cp_to_byte(cp) : -1;
        if (b < 0 || n >= cap) {
            *bad = cp;
            return -1;
        }
        out[n++] = (char)b;
        u += len;
    }
    return (int64_t)n;
}

static cf_bpe *load_fail(cJSON *root, int32_t *l, int32_t *r) {
    cJSON_Delete(root);
    free(l);
    free(r);
    return NULL;
}

cf_bpe *cf_bpe_from_json(const char *json, size_t len, const char *path) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= json && at <= json + len ? (size_t)(at - json) : len;
        int line = 1, col = 1;
        for (size_t i = 0; i < off; i++) json[i] == '\n' ? (line++, col = 1) : col++;
        size_t last = len;
        while (last > 0 && (json[last - 1] == ' ' || json[last - 1] == '\n' || json[last - 1] == '\r')) last--;
        bool truncated = last == 0 || json[last - 1] != '}';
        cf_error_set("%s: not valid JSON (line %d, column %d)%s", path, line, col,
                     truncated ? ": the file ends early (truncated?)" : "");
        return NULL;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, BPE_FORMAT_NAME) != 0) {
        cf_error_set("%s: not a cformer tokenizer (\"format\" must be \"%s\")", path, BPE_FORMAT_NAME);
        return load_fail(root, NULL, NULL);
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!cJSON_IsNumber(ver)) {
        cf_error_set("%s: missing \"version\" (a number)", path);
        return load_fail(root, NULL, NULL);
    }
    if (ver->valuedouble != CF_BPE_FORMAT_VERSION) {
        cf_error_set("%s: unsupported version %g (this build reads version %d)", path, ver->valuedouble,
                     CF_BPE_FORMAT_VERSION);
        return load_fail(root, NULL, NULL);
    }
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(root, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(root, "merges");
    if (!cJSON_IsArray(vocab) || !cJSON_IsArray(merges)) {
        cf_error_set("%s: \"vocab\" and \"merges\" must be arrays", path);
        return load_fail(root, NULL, NULL);
    }
    int n_vocab = cJSON_GetArraySize(vocab), n_merges = cJSON_GetArraySize(merges);
    if (n_vocab != CF_BPE_N_BASE + n_merges) {
        cf_error_set("%s: \"vocab\" has %d tokens but there are %d merges (expected %d + merges = %d tokens)", path,
                     n_vocab, n_merges, CF_BPE_N_BASE, CF_BPE_N_BASE + n_merges);
        return load_fail(root, NULL, NULL);
    }
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(root, "vocab_size");
    if (vs && (!cJSON_IsNumber(vs) || vs->valuedouble != n_vocab)) {
        cf_error_set("%s: \"vocab_size\" does not match the %d entries of \"vocab\"", path, n_vocab);
        return load_fail(root, NULL, NULL);
    }
    /* The first 260 entries are fixed: check them, so that a file from another tokenizer with a
     * different id layout is rejected rather than silently misread. */
    static const char *const names[CF_BPE_N_SPECIAL] = {"<pad>", "<unk>", "<bos>", "<eos>"};
    const cJSON *item = vocab->child;
    char buf[1024];
    uint32_t bad = 0;
    for (int id = 0; id < CF_BPE_N_BASE; id++, item = item->next) {
        if (!cJSON_IsString(item)) {
            cf_error_set("%s: vocab entry %d is not a string", path, id);
            return load_fail(root, NULL, NULL);
        }
        bool ok = id < CF_BPE_N_SPECIAL ? strcmp(item->valuestring, names[id]) == 0
                                        : token_bytes(item->valuestring, buf, sizeof buf, &bad) == 1 &&
                                              (unsigned char)buf[0] == id - CF_BPE_BYTE_BASE;
        if (!ok) {
            if (id < CF_BPE_N_SPECIAL)
                cf_error_set("%s: vocab entry %d is \"%s\" but must be the special token %s", path, id,
                             item->valuestring, names[id]);
            else
                cf_error_set("%s: vocab entry %d must be the single byte 0x%02x", path, id, id - CF_BPE_BYTE_BASE);
            return load_fail(root, NULL, NULL);
        }
    }
    /* Merges in order, as id pairs (token strings could be ambiguous: two merges may spell the
     * same bytes); each may only use bytes and earlier merges. */
    int32_t *l = cf_xmalloc((size_t)(n_merges ? n_merges : 1) * sizeof(int32_t));
    int32_t *r = cf_xmalloc((size_t)(n_merges ? n_merges : 1) * sizeof(int32_t));
    const cJSON *m = merges->child;
    for (int i = 0; i < n_merges; i++, m = m->next) {
        if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) != 2 || !cJSON_IsNumber(m->child) ||
            !cJSON_IsNumber(m->child->next)) {
            cf_error_set("%s: merge %d is not a pair of two token ids", path, i);
            return load_fail(root, l, r);
        }
        double ids[2] = {m->child->valuedouble, m->child->next->valuedouble};
        for (int k = 0; k < 2; k++)
            if (!(ids[k] >= CF_BPE_BYTE_BASE && ids[k] < CF_BPE_N_BASE + i) || ids[k] != (int32_t)ids[k]) {
                cf_error_set("%s: merge %d [%g, %g] refers to unknown token %g (merge %d may only use byte tokens "
                             "%d..%d and earlier merges up to id %d)",
                             path, i, ids[0], ids[1], ids[k], i, CF_BPE_BYTE_BASE, CF_BPE_N_BASE - 1, CF_BPE_N_BASE + i - 1);
                return load_fail(root, l, r);
            }
        l[i] = (int32_t)ids[0];
        r[i] = (int32_t)ids[1];
    }
    cf_bpe *t = bpe_from_merges(l, r, n_merges);
    /* The vocab strings are redundant (each is its merge joined) but are what people read: check. */
    for (int id = CF_BPE_N_BASE; id < n_vocab; id++, item = item->next) {
        size_t tn;
        const char *tok = cf_bpe_token(t, id, &tn);
        int64_t vn = cJSON_IsString(item) ? token_bytes(item->valuestring, buf, sizeof buf, &bad) : -1;
        if (vn != (int64_t)tn || memcmp(buf, tok, tn) != 0) {
            cf_error_set("%s: vocab entry %d does not spell merge %d [%d, %d] (its two tokens joined)", path, id,
                         id - CF_BPE_N_BASE, l[id - CF_BPE_N_BASE], r[id - CF_BPE_N_BASE]);
            cf_bpe_free(t);
            return load_fail(root, l, r);
        }
    }
    load_fail(root, l, r);
    return t;
}

cf_bpe *cf_bpe_load(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cf_error_set("%s: cannot open tokenizer: %m", path);
        return NULL;
    }
    sbuf b = {0};
    char chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sb_put(&b, chunk, n);
    bool err = ferror(f);
    fclose(f);
    if (err) {
        cf_error_set("%s: read error", path);
        free(b.p);
        return NULL;
    }
    if (!b.p) {
        cf_error_set("%s: the file is empty", path);
        return NULL;
    }
    cf_bpe *t = cf_bpe_from_json(b.p, b.n, path);
    free(b.p);
    return t;
}
