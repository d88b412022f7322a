/* core/arena.c - chunked bump allocator; see arena.h for the contract. */
#include "core/arena.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"

struct cf_arena_chunk {
    cf_arena_chunk *next;
    size_t cap;
    size_t used;
    char *base; /* 64-byte aligned */
};

enum { ARENA_ALIGN = 64, ARENA_MIN_CHUNK = 1 << 20 };

static cf_arena_chunk *chunk_new(cf_arena *a, size_t cap) {
    cf_arena_chunk *c = cf_xmalloc(sizeof *c);
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    cf_memory_check(cap, __FILE__, __LINE__);
    c->base = aligned_alloc(ARENA_ALIGN, cap);
    if (!c->base) cf_out_of_memory(cap, __FILE__, __LINE__); /* a step's activations: ulimit -v, batch size */
    a->mallocs++;
    return c;
}

void *cf_arena_alloc(cf_arena *a, size_t bytes) {
    size_t need = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (need == 0) need = ARENA_ALIGN;
    if (!a->cur) {
        size_t cap = need > ARENA_MIN_CHUNK ? need : ARENA_MIN_CHUNK;
        a->head = a->cur = chunk_new(a, cap);
    }
    /* Walk forward through chunks kept from earlier steps before growing. */
    while (a->cur->used + need > a->cur->cap) {
        if (!a->cur->next) {
            size_t cap = a->cur->cap * 2;
            if (cap < need) cap = need;
            a->cur->next = chunk_new(a, cap);
        }
        a->cur = a->cur->next;
    }
    void *p = a->cur->base + a->cur->used;
    a->cur->used += need;
    a->used_total += need;
    return p;
}

void *cf_arena_calloc(cf_arena *a, size_t bytes) {
    void *p = cf_arena_alloc(a, bytes);
    memset(p, 0, bytes);
    return p;
}

static void chunks_free(cf_arena_chunk *c) {
    while (c) {
        cf_arena_chunk *next = c->next;
        free(c->base);
        free(c);
        c = next;
    }
}

size_t cf_arena_capacity(const cf_arena *a) {
    size_t cap = 0;
    for (const cf_arena_chunk *c = a->head; c; c = c->next) cap += c->cap;
    return cap;
}

void cf_arena_reset(cf_arena *a) {
    if (a->used_total > a->high_water) a->high_water = a->used_total;
    if (a->head && a->head->next) {
        /* This step needed more than one chunk: replace them by one chunk that holds it all,
         * so the next step of the same size is a single bump region with no malloc. */
        size_t cap = cf_arena_capacity(a);
        chunks_free(a->head);
        a->head = NULL;
        a->head = chunk_new(a, cap);
    }
    if (a->head) a->head->used = 0;
    a->cur = a->head;
    a->used_total = 0;
}

void cf_arena_free(cf_arena *a) {
    chunks_free(a->head);
    memset(a, 0, sizeof *a);
}
