/* core/rng.c - Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011). */
#include "core/rng.h"

#include <math.h>
#include <string.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void cf_philox4x32(const uint32_t ctr[4], uint64_t key, uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

cf_rng cf_rng_init(uint64_t seed, uint64_t stream) {
    cf_rng r = {seed, stream, 0};
    return r;
}

uint32_t cf_rng_u32(cf_rng *r) {
    uint64_t block = r->counter / 4;
    uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)r->stream,
                       (uint32_t)(r->stream >> 32)};
    uint32_t out[4];
    cf_philox4x32(ctr, r->seed, out);
    return out[r->counter++ % 4];
}

uint64_t cf_rng_u64(cf_rng *r) {
    uint64_t hi = cf_rng_u32(r);
    return (hi << 32) | cf_rng_u32(r);
}

float cf_rng_uniform(cf_rng *r) { return (float)(cf_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

double cf_rng_uniform_f64(cf_rng *r) { return (double)(cf_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

double cf_rng_normal(cf_rng *r) {
    double u1 = cf_rng_uniform_f64(r), u2 = cf_rng_uniform_f64(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t cf_rng_below(cf_rng *r, uint64_t n) {
    if (n <= 1) return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* reject the biased tail */
    uint64_t x;
    do x = cf_rng_u64(r);
    while (x >= limit);
    return x % n;
}

float cf_rng_uniform_at(uint64_t seed, uint64_t step, uint64_t id, uint64_t i) {
    uint64_t block = i / 4;
    uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)id, (uint32_t)step};
    uint32_t out[4];
    cf_philox4x32(ctr, seed ^ ((uint64_t)CF_RNG_STREAM_DROPOUT << 56), out);
    return (float)(out[i % 4] >> 8) * (1.0f / 16777216.0f);
}

enum { PHILOX_LANES = 8 };

/* Keep flags of the 32 elements of the 8 counter blocks {blk0 + l, id, step}, l = 0..7: bit
 * 4 l + j is word j of block l (cf_philox4x32's out[j]) with (word >> 8) >= thr. One block per
 * lane so that gcc vectorises the rounds; the 32-bit words live in 64-bit lanes because gcc
 * vectorises 32x32->64 products (vpmuludq) but not the high halves of 32-bit ones, and 8 lanes
 * are one zmm register per variable (16 lanes ran ~1.5x slower). The compare and the bit packing
 * are done in the lanes too (an OR reduction), not in a scalar loop over the 32 words. */
static inline __attribute__((always_inline)) uint32_t philox_keep_x8(uint64_t blk0, uint32_t id, uint32_t step, uint64_t key, uint32_t thr) {
    const uint64_t lo32 = 0xFFFFFFFFu;
    uint64_t flags = 0;
#pragma omp simd reduction(| : flags)
    for (int l = 0; l < PHILOX_LANES; l++) {
        uint64_t c0 = (blk0 + (uint64_t)l) & lo32, c1 = (blk0 + (uint64_t)l) >> 32, c2 = id, c3 = step;
        uint64_t k0 = key & lo32, k1 = key >> 32;
        for (int round = 0; round < 10; round++) {
            uint64_t p0 = PHILOX_M0 * c0, p1 = PHILOX_M1 * c2;
            c0 = (p1 >> 32) ^ c1 ^ k0;
            c2 = (p0 >> 32) ^ c3 ^ k1;
            c1 = p1 & lo32;
            c3 = p0 & lo32;
            k0 = (k0 + PHILOX_W0) & lo32;
            k1 = (k1 + PHILOX_W1) & lo32;
        }
        uint64_t nib = (uint64_t)(c0 >> 8 >= thr) | (uint64_t)(c1 >> 8 >= thr) << 1 |
                       (uint64_t)(c2 >> 8 >= thr) << 2 | (uint64_t)(c3 >> 8 >= thr) << 3;
        flags |= nib << (4 * l);
    }
    return (uint32_t)flags;
}

void cf_dropout_keep_bits(uint64_t seed, uint64_t step, uint64_t id, uint64_t first, int64_t n, double p,
                          uint64_t *keep) {
    if (n <= 0) return;
    int64_t nwords = (n + 63) / 64;
    for (int64_t i = 0; i < nwords; i++) keep[i] = 0; /* usually 1-2 words: no memset call */
    /* u = k / 2^24 exactly (k = word >> 8), and p * 2^24 is exact in double, so u >= p iff
     * k >= ceil(p * 2^24): an integer compare that vectorises, with no rounding of p to float. */
    double t = ceil(p * 16777216.0);
    uint32_t thr = t <= 0 ? 0 : t >= 16777216.0 ? 16777216u : (uint32_t)t;
    uint64_t key = seed ^ ((uint64_t)CF_RNG_STREAM_DROPOUT << 56), end = first + (uint64_t)n;
    /* Groups of 32 elements (8 blocks) from the block holding `first`; a group's flags land at
     * bit offset pos = (its first element) - first of the output, which is < 0 (by first % 4)
     * only for the first group. */
    for (uint64_t blk = first / 4; 4 * blk < end; blk += PHILOX_LANES) {
        uint64_t flags = philox_keep_x8(blk, (uint32_t)id, (uint32_t)step, key, thr);
        int64_t pos = (int64_t)(4 * blk - first);
        if (pos < 0) {
            flags >>= -pos;
            pos = 0;
        }
        int64_t wi = pos / 64, sh = pos % 64;
        keep[wi] |= flags << sh;
        if (sh > 32 && wi + 1 < nwords) keep[wi + 1] |= flags >> (64 - sh);
    }
    if (n % 64) keep[nwords - 1] &= (UINT64_C(1) << (n % 64)) - 1;
}
