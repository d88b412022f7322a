/* core/rng.c - Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011). */
#include "core/rng.h"

#include <math.h>

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
