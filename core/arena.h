/* core/arena.h - a bump allocator for one training step's activations.
 *
 * Usage:
 *     cf_arena a = {0};
 *     float *x = cf_arena_alloc(&a, 1024 * sizeof(float));   // 64-byte aligned
 *     ...
 *     cf_arena_reset(&a);      // everything from this step is gone; memory is kept
 *     cf_arena_free(&a);
 *
 * The first steps grow the arena (malloc); at reset, several chunks are merged into one of their
 * total size, so that once the largest step has been seen no step calls malloc again.
 * `mallocs` counts every malloc ever made, which is how the tests prove the steady state is
 * allocation-free.
 */
#ifndef CF_ARENA_H
#define CF_ARENA_H

#include <stddef.h>

typedef struct cf_arena_chunk cf_arena_chunk;

typedef struct cf_arena {
    cf_arena_chunk *head;   /* first chunk; after a warm reset the only one */
    cf_arena_chunk *cur;    /* chunk being bumped */
    size_t used_total;      /* bytes handed out since the last reset */
    size_t high_water;      /* largest used_total seen at a reset */
    size_t mallocs;         /* chunks ever malloc'ed */
} cf_arena;

void *cf_arena_alloc(cf_arena *a, size_t bytes);          /* uninitialised, 64-byte aligned */
void *cf_arena_calloc(cf_arena *a, size_t bytes);         /* zeroed */
void cf_arena_reset(cf_arena *a);
void cf_arena_free(cf_arena *a);
size_t cf_arena_capacity(const cf_arena *a);

#endif
