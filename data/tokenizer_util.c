/* data/tokenizer_util.c - what every tokenizer kind shares: the word cache, UTF-8 units, the
 * piece trie, the token table, and the JSON file's helpers (byte mapping, bounded reading, the
 * checks of the header and of the 260 fixed entries).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "data/tokenizer_internal.h"

const char *const tok_special_names[CF_TOK_N_SPECIAL] = {"<pad>", "<unk>", "<bos>", "<eos>"};

/* ---------------------------------------------------------------- word cache */

enum { CACHE_MIN_SLOTS = 1 << 14, CACHE_MAX_SLOTS = 1 << 20 };

static void cache_reset(tok_cache *c, size_t slots) {
    free(c->slots);
    c->slots = cf_xcalloc(slots, sizeof *c->slots);
    c->mask = slots - 1;
    c->used = 0;
    c->bytes_n = 0;
    c->ids_n = 0;
}

bool tok_cache_get(tok_cache *c, const char *w, size_t n, cf_ids *out) {
    if (!c->slots) return false;
    uint64_t h = bpe_hash_bytes(w, n);
    for (size_t i = h & c->mask; c->slots[i].hash; i = (i + 1) & c->mask) {
        const tok_cache_slot *s = &c->slots[i];
        if (s->hash == h && s->word_len == n && memcmp(c->bytes + s->word_off, w, n) == 0) {
            for (uint32_t k = 0; k < s->ids_len; k++) cf_ids_push(out, c->ids[s->ids_off + k]);
            return true;
        }
    }
    return false;
}

void tok_cache_put(tok_cache *c, const char *w, size_t n, const int32_t *ids, int m) {
    if (!c->slots) cache_reset(c, CACHE_MIN_SLOTS);
    /* Past half full the table doubles; at its maximum it starts over. */
    if (2 * (c->used + 1) > c->mask + 1) {
        if (c->mask + 1 >= CACHE_MAX_SLOTS) {
            cache_reset(c, c->mask + 1);
        } else {
            tok_cache_slot *old = c->slots;
            size_t old_n = c->mask + 1;
            c->slots = cf_xcalloc(2 * old_n, sizeof *c->slots);
            c->mask = 2 * old_n - 1;
            for (size_t s = 0; s < old_n; s++) {
                if (!old[s].hash) continue;
                size_t j = old[s].hash & c->mask;
                while (c->slots[j].hash) j = (j + 1) & c->mask;
                c->slots[j] = old[s];
            }
            free(old);
        }
    }
    uint64_t h = bpe_hash_bytes(w, n);
    size_t i = h & c->mask;
    while (c->slots[i].hash) i = (i + 1) & c->mask;
    c->bytes = cf_grow(c->bytes, &c->bytes_cap, c->bytes_n + n, 1);
    c->ids = cf_grow(c->ids, &c->ids_cap, c->ids_n + (size_t)m, sizeof(int32_t));
    memcpy(c->bytes + c->bytes_n, w, n);
    memcpy(c->ids + c->ids_n, ids, (size_t)m * sizeof(int32_t));
    c->slots[i] = (tok_cache_slot){h, (uint32_t)c->bytes_n, (uint32_t)n, (uint32_t)c->ids_n, (uint32_t)m};
    c->bytes_n += n;
    c->ids_n += (size_t)m;
    c->used++;
}

void tok_cache_free(tok_cache *c) {
    free(c->slots);
    free(c->bytes);
    free(c->ids);
    *c = (tok_cache){0};
}

/* ---------------------------------------------------------------- UTF-8 units */

size_t tok_unit_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return 1;
    if (len > n) return 1;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 1;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 1;
    return len;
}

/* ---------------------------------------------------------------- trie */

static void trie_rehash(tok_trie *t, size_t cap) {
    uint64_t *keys = t->keys;
    int32_t *child = t->child;
    size_t old = t->keys ? t->mask + 1 : 0;
    t->keys = cf_xcalloc(cap, sizeof *t->keys);
    t->child = cf_xmalloc(cap * sizeof *t->child);
    t->mask = cap - 1;
    for (size_t i = 0; i < old; i++) {
        if (!keys[i]) continue;
        size_t j = bpe_hash_u64(keys[i]) & t->mask;
        while (t->keys[j]) j = (j + 1) & t->mask;
        t->keys[j] = keys[i];
        t->child[j] = child[i];
    }
    free(keys);
    free(child);
}

int32_t tok_trie_node(tok_trie *t) {
    if (!t->keys) trie_rehash(t, 1024); /* lookups never meet an empty table */
    if (t->n_nodes == t->cap_nodes) {
        t->cap_nodes = t->cap_nodes ? 2 * t->cap_nodes : 1024;
        t->piece = realloc(t->piece, (size_t)t->cap_nodes * sizeof *t->piece);
        CF_ASSERT(t->piece != NULL, "out of memory");
    }
    t->piece[t->n_nodes] = -1;
    return t->n_nodes++;
}

int32_t tok_trie_insert(tok_trie *t, int32_t root, const char *s, size_t n, int32_t id) {
    int32_t node = root;
    for (size_t k = 0; k < n; k++) {
        int32_t next = tok_trie_child(t, node, (unsigned char)s[k]);
        if (next < 0) {
            if (2 * (t->used + 1) > t->mask + 1) trie_rehash(t, 2 * (t->mask + 1));
            next = tok_trie_node(t);
            uint64_t key = (uint64_t)(node + 1) << 8 | (unsigned char)s[k];
            size_t i = bpe_hash_u64(key) & t->mask;
            while (t->keys[i]) i = (i + 1) & t->mask;
            t->keys[i] = key;
            t->child[i] = next;
            t->used++;
        }
        node = next;
    }
    if (t->piece[node] >= 0) return t->piece[node];
    t->piece[node] = id;
    return -1;
}

void tok_trie_free(tok_trie *t) {
    free(t->keys);
    free(t->child);
    free(t->piece);
    *t = (tok_trie){0};
}

/* ---------------------------------------------------------------- token table */

void tok_table_init(tok_table *t, int n_pieces, const char *const *piece, const size_t *piece_len) {
    t->vocab = CF_TOK_N_BASE + n_pieces;
    size_t total = 0;
    for (int i = 0; i < CF_TOK_N_SPECIAL; i++) total += strlen(tok_special_names[i]);
    total += 256;
    for (int i = 0; i < n_pieces; i++) total += piece_len[i];
    t->bytes = cf_xmalloc(total + 1);
    t->off = cf_xmalloc(((size_t)t->vocab + 1) * sizeof *t->off);
    size_t at = 0;
    for (int id = 0; id < t->vocab; id++) {
        t->off[id] = (int64_t)at;
        if (id < CF_TOK_N_SPECIAL) {
            size_t k = strlen(tok_special_names[id]);
            memcpy(t->bytes + at, tok_special_names[id], k);
            at += k;
        } else if (id < CF_TOK_N_BASE) {
            t->bytes[at++] = (char)(id - CF_TOK_BYTE_BASE);
        } else {
            memcpy(t->bytes + at, piece[id - CF_TOK_N_BASE], piece_len[id - CF_TOK_N_BASE]);
            at += piece_len[id - CF_TOK_N_BASE];
        }
    }
    t->off[t->vocab] = (int64_t)at;
}

void tok_table_free(tok_table *t) {
    free(t->bytes);
    free(t->off);
    *t = (tok_table){0};
}

size_t tok_table_decode(const tok_table *t, const int32_t *ids, int64_t n, char *out, size_t cap) {
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->vocab) {
            cf_error_set("decode: token id %d at position %lld is outside the vocabulary [0, %d)", id, (long long)i,
                         t->vocab);
            return (size_t)-1;
        }
        if (id < CF_TOK_N_SPECIAL) continue;
        size_t len = (size_t)(t->off[id + 1] - t->off[id]);
        if (total + len < cap) memcpy(out + total, t->bytes + t->off[id], len);
        else if (total < cap) memcpy(out + total, t->bytes + t->off[id], cap - 1 - total);
        total += len;
    }
    if (cap > 0) out[total < cap ? total : cap - 1] = '\0';
    return total;
}

/* ---------------------------------------------------------------- JSON: writing */

void tok_buf_put(tok_buf *b, const char *s, size_t n) {
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

void tok_buf_str(tok_buf *b, const char *s) { tok_buf_put(b, s, strlen(s)); }

void tok_buf_printf(tok_buf *b, const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    CF_ASSERT(k >= 0 && (size_t)k < sizeof line);
    tok_buf_put(b, line, (size_t)k);
}

/* The byte alphabet: one character per byte, so that any byte string is a readable JSON string
 * and the mapping is exact both ways. */
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

void tok_buf_token(tok_buf *b, const char *prefix, const char *s, size_t n) {
    tok_buf_put(b, "\"", 1);
    if (prefix) tok_buf_str(b, prefix);
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = byte_to_cp((unsigned char)s[i]);
        char u[4];
        if (cp == '"' || cp == '\\') u[0] = '\\', u[1] = (char)cp, tok_buf_put(b, u, 2);
        else if (cp < 0x80) u[0] = (char)cp, tok_buf_put(b, u, 1);
        else if (cp < 0x800) u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), tok_buf_put(b, u, 2);
        else {
            u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (char)(0x80 | (cp & 0x3F));
            tok_buf_put(b, u, 3);
        }
    }
    tok_buf_put(b, "\"", 1);
}

void tok_buf_header(tok_buf *b, const char *format, int version, int vocab_size) {
    tok_buf_printf(b,
                   "{\n  \"format\": \"%s\",\n  \"version\": %d,\n  \"special_tokens\": {\"<pad>\": %d, \"<unk>\": %d, "
                   "\"<bos>\": %d, \"<eos>\": %d},\n  \"vocab_size\": %d,\n",
                   format, version, CF_PAD_ID, CF_UNK_ID, CF_BOS_ID, CF_EOS_ID, vocab_size);
}

/* ---------------------------------------------------------------- JSON: reading */

int64_t tok_token_bytes(const char *s, char *out, size_t cap, uint32_t *bad) {
    const unsigned char *u = (const unsigned char *)s;
    size_t n = 0;
    while (*u) {
        uint32_t cp;
        int len;
        /* (the string is NUL-terminated, so a short sequence fails its continuation test) */
        if (u[0] < 0x80) cp = u[0], len = 1;
        else if ((u[0] & 0xE0) == 0xC0 && (u[1] & 0xC0) == 0x80) cp = (u[0] & 0x1Fu) << 6 | (u[1] & 0x3F), len = 2;
        else if ((u[0] & 0xF0) == 0xE0 && (u[1] & 0xC0) == 0x80 && (u[2] & 0xC0) == 0x80)
            cp = (u[0] & 0x0Fu) << 12 | (u[1] & 0x3Fu) << 6 | (u[2] & 0x3F), len = 3;
        else cp = u[0], len = 0;
        int byte = len ? cp_to_byte(cp) : -1;
        if (byte < 0 || n >= cap) {
            *bad = byte < 0 ? cp : 0;
            return -1;
        }
        out[n++] = (char)byte;
        u += len;
    }
    return (int64_t)n;
}

int64_t tok_vocab_piece(const char *s, char *out, const char *path, int id) {
    uint32_t bad = 0;
    int64_t k = tok_token_bytes(s, out, CF_TOK_MAX_TOKEN_BYTES, &bad);
    if (k == 0) cf_error_set("%s: vocab entry %d is an empty piece", path, id);
    else if (k < 0 && bad) cf_error_set("%s: vocab entry %d uses U+%04X, outside the byte alphabet", path, id, bad);
    else if (k < 0) cf_error_set("%s: vocab entry %d is longer than %d bytes", path, id, CF_TOK_MAX_TOKEN_BYTES);
    return k > 0 ? k : -1;
}

int tok_check_pieces(const char *kind, int n, const size_t *len) {
    if (n < 0 || n > CF_TOK_MAX_VOCAB - CF_TOK_N_BASE) {
        cf_error_set("%s: %d pieces (at most %d)", kind, n, CF_TOK_MAX_VOCAB - CF_TOK_N_BASE);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (len[i] == 0 || len[i] > CF_TOK_MAX_TOKEN_BYTES) {
            cf_error_set("vocab entry %d: a piece of %zu bytes (must be 1 to %d)", CF_TOK_N_BASE + i, len[i],
                         CF_TOK_MAX_TOKEN_BYTES);
            return -1;
        }
    return 0;
}

void tok_error_in_file(const char *path) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", cf_error_message());
    cf_error_set("%s: %s", path, msg);
}

char *tok_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cf_error_set("%s: cannot open tokenizer: %m", path);
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > CF_TOK_MAX_FILE_BYTES) {
        cf_error_set("%s: %lld bytes: a tokenizer file may have at most %zu", path, (long long)st.st_size,
                     CF_TOK_MAX_FILE_BYTES);
        fclose(f);
        return NULL;
    }
    tok_buf b = {0};
    char chunk[1 << 16];
    size_t n;
    bool too_big = false;
    while (!too_big && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        too_big = b.n + n > CF_TOK_MAX_FILE_BYTES; /* a pipe or a growing file */
        if (!too_big) tok_buf_put(&b, chunk, n);
    }
    bool err = ferror(f);
    fclose(f);
    if (err || too_big) {
        if (too_big) cf_error_set("%s: a tokenizer file may have at most %zu bytes", path, CF_TOK_MAX_FILE_BYTES);
        else cf_error_set("%s: read error", path);
        free(b.p);
        return NULL;
    }
    if (!b.p) {
        cf_error_set("%s: the file is empty", path);
        return NULL;
    }
    *len = b.n;
    return b.p;
}

/* An upper bound on the values cJSON would allocate (one node each, ~64 bytes): separators and
 * openings outside strings, plus one. */
static size_t count_values(const char *json, size_t len) {
    size_t n = 1;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else {
            n += c == ',' || c == '[' || c == '{';
        }
    }
    return n;
}

cJSON *tok_parse_json(const char *json, size_t len, const char *path) {
    if (len > CF_TOK_MAX_FILE_BYTES) {
        cf_error_set("%s: %zu bytes: a tokenizer file may have at most %zu", path, len, CF_TOK_MAX_FILE_BYTES);
        return NULL;
    }
    size_t values = count_values(json, len);
    if (values > CF_TOK_MAX_JSON_VALUES) {
        cf_error_set("%s: about %zu JSON values: a tokenizer file may have at most %zu", path, values,
                     (size_t)CF_TOK_MAX_JSON_VALUES);
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (root) return root;
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

const char *tok_format(const cJSON *root) {
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    return cJSON_IsString(fmt) ? fmt->valuestring : NULL;
}

int tok_check_header(const cJSON *root, const char *path, const char *format, int version) {
    const char *fmt = tok_format(root);
    CF_REQUIRE(fmt && strcmp(fmt, format) == 0, "%s: not a cformer tokenizer (\"format\" must be \"%s\")", path,
               format);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    CF_REQUIRE(cJSON_IsNumber(ver), "%s: missing \"version\" (a number)", path);
    CF_REQUIRE(ver->valuedouble == version, "%s: unsupported version %g (this build reads version %d)", path,
               ver->valuedouble, version);
    return 0;
}

int tok_check_base(const cJSON *root, const cJSON *vocab, int n_vocab, const char *path, const cJSON **rest) {
    CF_REQUIRE(n_vocab >= CF_TOK_N_BASE && n_vocab <= CF_TOK_MAX_VOCAB,
               "%s: \"vocab\" has %d entries (must be %d to %d: the %d special and byte tokens first)", path, n_vocab,
               CF_TOK_N_BASE, CF_TOK_MAX_VOCAB, CF_TOK_N_BASE);
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(root, "vocab_size");
    CF_REQUIRE(!vs || (cJSON_IsNumber(vs) && vs->valuedouble == n_vocab),
               "%s: \"vocab_size\" does not match the %d entries of \"vocab\"", path, n_vocab);
    /* Fixed entries: a file from a tokenizer with another id layout is refused, not misread. */
    const cJSON *item = vocab->child;
    char buf[8];
    uint32_t bad = 0;
    for (int id = 0; id < CF_TOK_N_BASE; id++, item = item->next) {
        CF_REQUIRE(cJSON_IsString(item), "%s: vocab entry %d is not a string", path, id);
        if (id < CF_TOK_N_SPECIAL)
            CF_REQUIRE(strcmp(item->valuestring, tok_special_names[id]) == 0,
                       "%s: vocab entry %d is \"%.40s\" but must be the special token %s", path, id, item->valuestring,
                       tok_special_names[id]);
        else
            CF_REQUIRE(tok_token_bytes(item->valuestring, buf, sizeof buf, &bad) == 1 &&
                           (unsigned char)buf[0] == id - CF_TOK_BYTE_BASE,
                       "%s: vocab entry %d must be the single byte 0x%02x", path, id, id - CF_TOK_BYTE_BASE);
    }
    *rest = item;
    return 0;
}
