/* data/tokenizer_internal.h - what tokenizer.c and tokenizer_io.c share; not a public header. */
#ifndef CF_TOKENIZER_INTERNAL_H
#define CF_TOKENIZER_INTERNAL_H

#include "data/tokenizer.h"

/* Encode cache slot: a word's bytes (in cache_bytes) and its ids (in cache_ids). */
typedef struct bpe_cache_slot {
    uint64_t hash;                 /* 0 = empty */
    uint32_t word_off, word_len;
    uint32_t ids_off, ids_len;
} bpe_cache_slot;

struct cf_bpe {
    int n_merges;
    int32_t *merge_left, *merge_right;     /* [n_merges] */
    char *tok_bytes;                       /* all token strings back to back */
    int64_t *tok_off;                      /* [vocab + 1] */
    /* (left, right) -> merge rank, open addressing; key 0 means empty (no pair has left id 0). */
    uint64_t *rank_keys;
    int32_t *rank_vals;
    size_t rank_mask;
    /* Encode cache (the reason encode is not thread-safe). */
    bpe_cache_slot *cache;
    size_t cache_mask, cache_used;
    char *cache_bytes;
    size_t cache_bytes_n, cache_bytes_cap;
    int32_t *cache_ids;
    size_t cache_ids_n, cache_ids_cap;
};

/* Build a tokenizer from its ordered merges (ids must refer to earlier tokens: checked by callers). */
cf_bpe *bpe_from_merges(const int32_t *left, const int32_t *right, int n_merges);

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

#endif
