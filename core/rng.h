/* core/rng.h - counter-based random numbers (Philox4x32-10).
 *
 * Usage:
 *     cf_rng r = cf_rng_init(seed, CF_RNG_STREAM_INIT);
 *     float u = cf_rng_uniform(&r);              // [0, 1)
 *     float z = cf_rng_normal(&r);
 *     // dropout: a pure function of (seed, step, tensor id, element), whatever the thread count
 *     float u2 = cf_rng_uniform_at(seed, step, id, i);
 *
 * Every random number is a pure function of (key, counter): results do not depend on the thread
 * count or on the order threads run in, and a generator's whole state is three integers that a
 * checkpoint can store (so a resumed run continues the same sequence).
 */
#ifndef CF_RNG_H
#define CF_RNG_H

#include <stdint.h>

/* Streams keep independent uses of one seed apart. */
enum cf_rng_stream {
    CF_RNG_STREAM_INIT = 1,     /* parameter initialisation */
    CF_RNG_STREAM_DATA = 2,     /* shuffling, batching */
    CF_RNG_STREAM_DROPOUT = 3,
    CF_RNG_STREAM_TEST = 4,
};

typedef struct cf_rng {
    uint64_t seed;
    uint64_t stream;
    uint64_t counter;           /* number of 32-bit words drawn so far */
} cf_rng;

cf_rng cf_rng_init(uint64_t seed, uint64_t stream);
uint32_t cf_rng_u32(cf_rng *r);
uint64_t cf_rng_u64(cf_rng *r);
float cf_rng_uniform(cf_rng *r);                 /* [0, 1), 24 bits */
double cf_rng_uniform_f64(cf_rng *r);            /* [0, 1), 53 bits */
double cf_rng_normal(cf_rng *r);                 /* standard normal (Box-Muller) */
uint64_t cf_rng_below(cf_rng *r, uint64_t n);    /* uniform in [0, n), unbiased */

/* Philox4x32-10 block: 4 words from a 128-bit counter and a 64-bit key. */
void cf_philox4x32(const uint32_t ctr[4], uint64_t key, uint32_t out[4]);
/* Stateless uniform in [0, 1) for element i of tensor `id` at `step`: (word >> 8) / 2^24 of word
 * i % 4 of the Philox block with counter {i / 4 (64 bits), id (32), step (32)} and key
 * seed ^ (CF_RNG_STREAM_DROPOUT << 56). */
float cf_rng_uniform_at(uint64_t seed, uint64_t step, uint64_t id, uint64_t i);
/* The dropout keep mask of elements first .. first + n - 1: bit j % 64 of keep[j / 64] is 1 iff
 * element first + j is kept, i.e. iff cf_rng_uniform_at(seed, step, id, first + j) >= p compared
 * in double (the one drop rule: drop iff u < p). keep has (n + 63) / 64 words; bits past n are 0.
 * Bit-identical to the scalar function, but 16 Philox blocks are computed side by side so that gcc
 * vectorises the rounds (the scalar call is ~7 ns per element, more than the ops that use it). */
void cf_dropout_keep_bits(uint64_t seed, uint64_t step, uint64_t id, uint64_t first, int64_t n, double p,
                          uint64_t *keep);

#endif
