/* data/tokenizer_internal.h - what the tokenizer files share (BPE: tokenizer.c, tokenizer_io.c;
 * WordPiece: wordpiece*.c; Unigram: unigram*.c; helpers: tokenizer_util.c); not a public header. */
#ifndef CF_TOKENIZER_INTERNAL_H
#define CF_TOKENIZER_INTERNAL_H

#include <cjson/cJSON.h>

#include "data/tokenizer.h"

/* ---------------------------------------------------------------- hashing */

static inline uint64_t bpe_hash_bytes(const char *s, size_t n) {
    /* FNV-1a, then a final mix; never returns 0 (0 marks an empty slot). */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    h ^= h >> 31;
    h *= 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    return h ? h : 1;
}

static inline uint64_t bpe_hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

extern const char *const tok_special_names[CF_TOK_N_SPECIAL]; /* "<pad>", "<unk>", "<bos>", "<eos>" */

/* ---------------------------------------------------------------- word cache (encode) */

/* word bytes -> ids, bounded: past 2^20 slots it starts over, so no input makes it grow without
 * end. The reason encoding is not thread-safe. Zero-initialise. */
typedef struct tok_cache_slot {
    uint64_t hash;                 /* 0 = empty */
    uint32_t word_off, word_len;
    uint32_t ids_off, ids_len;
} tok_cache_slot;

typedef struct tok_cache {
    tok_cache_slot *slots;
    size_t mask, used;
    char *bytes;
    size_t bytes_n, bytes_cap;
    int32_t *ids;
    size_t ids_n, ids_cap;
} tok_cache;

/* Append the cached ids of word w to out and return true, or return false. */
bool tok_cache_get(tok_cache *c, const char *w, size_t n, cf_ids *out);
void tok_cache_put(tok_cache *c, const char *w, size_t n, const int32_t *ids, int m);
void tok_cache_free(tok_cache *c);

/* ---------------------------------------------------------------- BPE */

struct cf_bpe {
    int n_merges;
    int32_t *merge_left, *merge_right;     /* [n_merges] */
    char *tok_bytes;                       /* all token strings back to back */
    int64_t *tok_off;                      /* [vocab + 1] */
    /* (left, right) -> merge rank, open addressing; key 0 means empty (no pair has left id 0). */
    uint64_t *rank_keys;
    int32_t *rank_vals;
    size_t rank_mask;
    tok_cache cache;
};

/* Build a tokenizer from its ordered merges (ids must refer to earlier tokens: checked by callers).
 * NULL and an error if a token would be longer than CF_TOK_MAX_TOKEN_BYTES. */
cf_bpe *bpe_from_merges(const int32_t *left, const int32_t *right, int n_merges);
cf_bpe *bpe_from_root(const cJSON *root, const char *path);

/* ---------------------------------------------------------------- distinct words of a corpus */

/* A view of a trainer's word counts: word i is bytes[off[i] .. off[i] + len[i]), seen count[i]
 * times, in order of first occurrence. */
typedef struct tok_words {
    const char *bytes;
    const int64_t *off, *count;
    const uint32_t *len;
    size_t n;
} tok_words;
tok_words bpe_trainer_words(const cf_bpe_trainer *tr);
tok_words tok_trainer_words(const cf_tok_trainer *tr);

/* ---------------------------------------------------------------- pieces (WordPiece, Unigram) */

/* Length of the UTF-8 unit at s[0] (n > 0): a valid sequence (no overlong forms or surrogates),
 * else 1 byte. Pieces are made of whole units. */
size_t tok_unit_len(const unsigned char *s, size_t n);

/* A byte trie over the pieces: node ids are int32, a node's children live in one hash table
 * keyed by (node, byte). Zero-initialise, then add roots with tok_trie_node. */
typedef struct tok_trie {
    uint64_t *keys;                /* (node + 1) << 8 | byte; 0 = empty */
    int32_t *child;
    size_t mask, used;
    int32_t *piece;                /* [n_nodes]: the piece id that ends at this node, or -1 */
    int32_t n_nodes, cap_nodes;
} tok_trie;
int32_t tok_trie_node(tok_trie *t);
/* Insert s under root with piece id; returns the id already there (a duplicate), or -1. */
int32_t tok_trie_insert(tok_trie *t, int32_t root, const char *s, size_t n, int32_t id);
void tok_trie_free(tok_trie *t);

static inline int32_t tok_trie_child(const tok_trie *t, int32_t node, unsigned char b) {
    uint64_t key = (uint64_t)(node + 1) << 8 | b;
    size_t i = bpe_hash_u64(key) & t->mask;
    for (; t->keys[i]; i = (i + 1) & t->mask)
        if (t->keys[i] == key) return t->child[i];
    return -1;
}

/* The token bytes of a pieces-kind tokenizer: specials' names, the 256 bytes, then the pieces. */
typedef struct tok_table {
    int vocab;
    char *bytes;
    int64_t *off;                  /* [vocab + 1] */
} tok_table;
/* Specials and bytes, then the given pieces; NULL-free. */
void tok_table_init(tok_table *t, int n_pieces, const char *const *piece, const size_t *piece_len);
void tok_table_free(tok_table *t);
size_t tok_table_decode(const tok_table *t, const int32_t *ids, int64_t n, char *out, size_t cap);

/* ---------------------------------------------------------------- JSON files */

/* Each kind's loader from a parsed file (the caller owns root; NULL + error naming path). */
cf_wordpiece *wordpiece_from_root(const cJSON *root, const char *path);
cf_unigram *unigram_from_root(const cJSON *root, const char *path);
void wordpiece_set_min_count(cf_wordpiece *t, int64_t min_count);

typedef struct tok_buf {
    char *p;
    size_t n, cap;
} tok_buf;
void tok_buf_put(tok_buf *b, const char *s, size_t n);
void tok_buf_str(tok_buf *b, const char *s);
void tok_buf_printf(tok_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A token as a JSON string literal: the verbatim prefix (e.g. "##", may be NULL), then each byte
 * shown as one character: printable ASCII as itself, the space as U+2581, byte b as U+0100 + b. */
void tok_buf_token(tok_buf *b, const char *prefix, const char *s, size_t n);
/* The header every kind writes: format, version, special_tokens, vocab_size. */
void tok_buf_header(tok_buf *b, const char *format, int version, int vocab_size);
/* The inverse mapping of a token string (without its prefix): its length, or -1 when it uses a
 * character outside the byte alphabet (*bad = that code point) or is longer than cap. */
int64_t tok_token_bytes(const char *s, char *out, size_t cap, uint32_t *bad);
/* Vocabulary entry id's piece string s (its prefix removed) as bytes into out (room for
 * CF_TOK_MAX_TOKEN_BYTES): its length, or -1 + an error naming the file and entry (empty, a
 * character outside the byte alphabet, too long). */
int64_t tok_vocab_piece(const char *s, char *out, const char *path, int id);
/* The checks every kind's from_pieces makes first: n pieces fit the vocabulary bound (kind names
 * the kind in the message) and each is 1 to CF_TOK_MAX_TOKEN_BYTES bytes; 0 or -1 + error. */
int tok_check_pieces(const char *kind, int n, const size_t *len);
/* Prefix the pending error with "path: " (a from_pieces error, reported by a file loader). */
void tok_error_in_file(const char *path);

/* The whole file, NUL-terminated, refused past CF_TOK_MAX_FILE_BYTES; NULL + error naming it. */
char *tok_read_file(const char *path, size_t *len);
/* Parse; NULL + "PATH: not valid JSON (line L, column C)" (+ "the file ends early" if truncated). */
cJSON *tok_parse_json(const char *json, size_t len, const char *path);
/* "format" of a parsed file (NULL when missing or not a string). */
const char *tok_format(const cJSON *root);
/* Check "format" == format and "version" == version; -1 + error naming the file and key. */
int tok_check_header(const cJSON *root, const char *path, const char *format, int version);
/* Check that vocab (an array) starts with the 4 specials and the 256 single bytes, and, when
 * "vocab_size" is present, that it matches n_vocab. *rest = the entry after the fixed ones. */
int tok_check_base(const cJSON *root, const cJSON *vocab, int n_vocab, const char *path, const cJSON **rest);

#endif
