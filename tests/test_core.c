/* tests/test_core.c - arena, tape, RNG and safetensors. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "core/ops.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "tests/test.h"
#include "tests/testlib.h"

TEST(arena_alignment_and_reuse) {
    cf_arena a = {0};
    void *p = cf_arena_alloc(&a, 3);
    void *q = cf_arena_alloc(&a, 100);
    CHECK(((uintptr_t)p & 63) == 0 && ((uintptr_t)q & 63) == 0);
    CHECK((char *)q - (char *)p == 64);
    cf_arena_alloc(&a, 5u << 20); /* forces a second chunk */
    size_t mallocs = a.mallocs;
    CHECK(mallocs == 2);
    cf_arena_reset(&a); /* merges into one chunk: one more malloc */
    CHECK(a.mallocs == mallocs + 1);
    cf_arena_reset(&a);
    cf_arena_alloc(&a, 3);
    cf_arena_alloc(&a, 100);
    cf_arena_alloc(&a, 5u << 20);
    cf_arena_reset(&a);
    CHECK(a.mallocs == mallocs + 1); /* the same step again: no malloc */
    cf_arena_free(&a);
}

/* A small graph, run twice: the second step must not allocate (arena mallocs and tape unchanged). */
static cf_tensor *small_step(cf_ctx *ctx, cf_tensor *w, cf_tensor *b, cf_tensor *x) {
    cf_tensor *h = cf_linear(ctx, x, w, b);
    cf_tensor *y = cf_add(ctx, cf_scale(ctx, h, 0.5), h);
    return cf_matmul(ctx, y, cf_reshape(ctx, y, 2, (int64_t[]){y->shape[1], y->shape[0]}), false);
}

TEST(arena_steady_state_allocates_nothing) {
    cf_tensor *w = test_param_uniform("w", 2, (int64_t[]){16, 8}, -1, 1, 1);
    cf_tensor *b = test_param_uniform("b", 1, (int64_t[]){16}, -1, 1, 2);
    cf_tensor *x = test_param_uniform("x", 2, (int64_t[]){16, 8}, -1, 1, 3);
    cf_ctx *ctx = cf_ctx_new(1);
    size_t mallocs_after_first = 0;
    for (int step = 0; step < 3; step++) {
        cf_ctx_begin_step(ctx, (uint64_t)step);
        cf_tensor *out = small_step(ctx, w, b, x);
        cf_backward(ctx, cf_sum(ctx, out));
        CHECK(ctx->n_nodes == 6);
        cf_ctx_reset(ctx);
        if (step == 0) mallocs_after_first = ctx->arena.mallocs;
        else CHECK_MSG(ctx->arena.mallocs == mallocs_after_first, "step %d: %zu mallocs, first step %zu", step,
                       ctx->arena.mallocs, mallocs_after_first);
    }
    CHECK(mallocs_after_first >= 1);
    cf_ctx_free(ctx);
    cf_param_free(w);
    cf_param_free(b);
    cf_param_free(x);
}

TEST(tape_no_grad_records_nothing) {
    cf_tensor *w = test_param_uniform("w", 2, (int64_t[]){4, 3}, -1, 1, 1);
    cf_ctx *ctx = cf_ctx_new(1);
    cf_tensor *x = cf_tensor_zeros(ctx, 2, (int64_t[]){2, 3});
    cf_ctx_set_grad(ctx, false);
    cf_tensor *y = cf_linear(ctx, x, w, NULL);
    CHECK(ctx->n_nodes == 0 && !y->requires_grad);
    cf_ctx_set_grad(ctx, true);
    y = cf_linear(ctx, x, w, NULL);
    CHECK(ctx->n_nodes == 1 && y->requires_grad);
    /* Inputs that need no gradient record nothing either. */
    cf_tensor *z = cf_scale(ctx, x, 2);
    CHECK(ctx->n_nodes == 1 && !z->requires_grad);
    cf_ctx_free(ctx);
    cf_param_free(w);
}

TEST(tape_gradients_accumulate) {
    cf_tensor *w = test_param_uniform("w", 2, (int64_t[]){3, 2}, -1, 1, 1);
    cf_ctx *ctx = cf_ctx_new(1);
    cf_tensor *x = cf_tensor_new(ctx, 2, (int64_t[]){1, 2});
    x->data[0] = 1;
    x->data[1] = 2;
    for (int rep = 0; rep < 2; rep++) {
        cf_backward(ctx, cf_sum(ctx, cf_linear(ctx, x, w, NULL)));
        cf_ctx_reset(ctx);
        x = cf_tensor_new(ctx, 2, (int64_t[]){1, 2});
        x->data[0] = 1;
        x->data[1] = 2;
    }
    /* d sum(x w^T) / dw[o, i] = x[i], twice. */
    for (int o = 0; o < 3; o++) {
        CHECK_NEAR(w->grad[o * 2 + 0], 2.0, 1e-6);
        CHECK_NEAR(w->grad[o * 2 + 1], 4.0, 1e-6);
    }
    cf_ctx_free(ctx);
    cf_param_free(w);
}

TEST(rng_philox_known_answer) {
    /* Random123's published known-answer vectors for philox4x32-10. */
    uint32_t out[4];
    cf_philox4x32((uint32_t[]){0, 0, 0, 0}, 0, out);
    CHECK(out[0] == 0x6627e8d5u && out[1] == 0xe169c58du && out[2] == 0xbc57ac4cu && out[3] == 0x9b00dbd8u);
    cf_philox4x32((uint32_t[]){0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, 0xffffffffffffffffull, out);
    CHECK(out[0] == 0x408f276du && out[1] == 0x41c83b0eu && out[2] == 0xa20bc7c6u && out[3] == 0x6d5451fdu);
    cf_philox4x32((uint32_t[]){0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                  ((uint64_t)0x299f31d0u << 32) | 0xa4093822u, out);
    CHECK(out[0] == 0xd16cfe09u && out[1] == 0x94fdccebu && out[2] == 0x5001e420u && out[3] == 0x24126ea1u);
}

TEST(rng_dropout_keep_bits_match_uniform_at) {
    /* the batched mask is exactly the scalar rule, kept iff cf_rng_uniform_at(...) >= p in double,
     * for unaligned starts, partial words, block counters above 2^32 and p on and off the 2^-24 grid */
    const uint64_t firsts[] = {0, 1, 3, 64, 1001, (UINT64_C(1) << 34) - 5};
    const int64_t ns[] = {1, 3, 63, 64, 65, 200};
    double u0 = (double)cf_rng_uniform_at(5, 7, 2, 1001); /* element 1001 sits on the grid: u0 = k / 2^24 */
    const double ps[] = {0, 0.1, 0.4, 0.7, 1, u0, nextafter(u0, 1)};
    int64_t mismatch = 0, spill = 0;
    for (size_t a = 0; a < sizeof firsts / sizeof firsts[0]; a++)
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++)
            for (size_t c = 0; c < sizeof ps / sizeof ps[0]; c++) {
                uint64_t keep[5];
                memset(keep, 0xa5, sizeof keep); /* bits past n and the word after must come back 0 / untouched */
                int64_t n = ns[b], nwords = (n + 63) / 64;
                cf_dropout_keep_bits(5, 7, 2, firsts[a], n, ps[c], keep);
                for (int64_t j = 0; j < n; j++)
                    mismatch += (int)((keep[j / 64] >> (j % 64)) & 1) !=
                                ((double)cf_rng_uniform_at(5, 7, 2, firsts[a] + (uint64_t)j) >= ps[c]);
                if (n % 64) spill += keep[nwords - 1] >> (n % 64) != 0;
                spill += keep[nwords] != UINT64_C(0xa5a5a5a5a5a5a5a5);
            }
    CHECK_MSG(mismatch == 0, "%lld keep bits differ from cf_rng_uniform_at >= p", (long long)mismatch);
    CHECK_MSG(spill == 0, "%lld masks wrote past their n bits", (long long)spill);
    /* the rule is u >= p in double: p one double above u drops the element, p = u keeps it */
    uint64_t bit;
    cf_dropout_keep_bits(5, 7, 2, 1001, 1, u0, &bit);
    CHECK(bit == 1);
    cf_dropout_keep_bits(5, 7, 2, 1001, 1, nextafter(u0, 1), &bit);
    CHECK(bit == 0);
}

TEST(rng_state_resumes_sequence) {
    cf_rng a = cf_rng_init(42, CF_RNG_STREAM_DATA);
    for (int i = 0; i < 7; i++) cf_rng_u32(&a);
    cf_rng saved = a;
    uint32_t x = cf_rng_u32(&a), y = cf_rng_u32(&a);
    CHECK(cf_rng_u32(&saved) == x && cf_rng_u32(&saved) == y);
    double mean = 0;
    for (int i = 0; i < 10000; i++) mean += cf_rng_uniform(&a);
    CHECK_NEAR(mean / 10000, 0.5, 0.02);
    cf_rng b = cf_rng_init(42, CF_RNG_STREAM_INIT);
    CHECK(cf_rng_u32(&b) != cf_rng_u32(&(cf_rng){42, CF_RNG_STREAM_DATA, 0}));
}

TEST(safetensors_roundtrip) {
    const char *dir = test_tmpdir("st");
    char path[512];
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    float a[6] = {1, 2, 3, 4, 5, 6};
    int32_t ids[3] = {7, -8, 9};
    cf_st_writer *w = cf_st_writer_new();
    cf_st_writer_add(w, "a.weight", CF_ST_F32, 2, (int64_t[]){2, 3}, a);
    cf_st_writer_add(w, "ids", CF_ST_I32, 1, (int64_t[]){3}, ids);
    cf_st_writer_meta(w, "config", "{\"d_model\": 4}");
    CHECK(cf_st_writer_write(w, path) == 0);
    cf_st_writer_free(w);
    cf_st_file *f = cf_st_open(path);
    CHECK_MSG(f != NULL, "%s", cf_error_message());
    if (f) {
        CHECK(cf_st_count(f) == 2);
        const cf_st_tensor *t = cf_st_find(f, "a.weight");
        CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && memcmp(t->data, a, sizeof a) == 0);
        t = cf_st_find(f, "ids");
        CHECK(t && t->dtype == CF_ST_I32 && memcmp(t->data, ids, sizeof ids) == 0);
        CHECK_STR(cf_st_metadata(f, "config"), "{\"d_model\": 4}");
        cf_real back[6];
        CHECK(cf_st_read_real(f, "a.weight", back, 2, (int64_t[]){2, 3}) == 0 && back[5] == 6);
        CHECK(cf_st_read_real(f, "a.weight", back, 2, (int64_t[]){3, 2}) != 0);
        CHECK(strstr(cf_error_message(), "a.weight") && strstr(cf_error_message(), "[2, 3]"));
        cf_st_close(f);
    }
    unlink(path);
    rmdir(dir);
}

/* Regression (fuzz_safetensors, CI 2026-12-02): an empty tensor before another one is written at
 * that tensor's start offset; the reader took the two for overlapping when the sort by offset put
 * the empty one second. Every order of empty and non-empty tensors must read back. */
TEST(safetensors_empty_tensors_overlap_nothing) {
    const char *dir = test_tmpdir("stempty");
    char path[512];
    snprintf(path, sizeof path, "%s/e.safetensors", dir);
    float v[4] = {1, 2, 3, 4};
    const char *names[3] = {"z", "v", "e"}; /* sorted by name: e, v, z; by offset: ties at v's start */
    for (int order = 0; order < 6; order++) {
        int perm[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
        cf_st_writer *w = cf_st_writer_new();
        for (int i = 0; i < 3; i++) {
            int k = perm[order][i];
            if (k == 1) cf_st_writer_add(w, names[k], CF_ST_F32, 1, (int64_t[]){4}, v);
            else cf_st_writer_add(w, names[k], CF_ST_F32, 2, (int64_t[]){0, 4}, v);
        }
        CHECK(cf_st_writer_write(w, path) == 0);
        cf_st_writer_free(w);
        cf_st_file *f = cf_st_open(path);
        CHECK_MSG(f && cf_st_count(f) == 3, "order %d: %s", order, f ? "wrong count" : cf_error_message());
        const cf_st_tensor *t = f ? cf_st_find(f, "v") : NULL;
        CHECK(t && t->nbytes == sizeof v && memcmp(t->data, v, sizeof v) == 0);
        cf_st_close(f);
    }
    /* An empty range inside another tensor's bytes is still harmless; a real overlap is not. */
    const char *hdr = "{\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}";
    unsigned char buf[256] = {0};
    uint64_t hlen = strlen(hdr);
    memcpy(buf, &hlen, 8);
    memcpy(buf + 8, hdr, hlen);
    FILE *fp = fopen(path, "wb");
    CHECK(fp && fwrite(buf, 1, 8 + hlen + 8, fp) == 8 + hlen + 8);
    if (fp) fclose(fp);
    cf_st_file *f = cf_st_open(path);
    CHECK_MSG(f && cf_st_count(f) == 2, "%s", f ? "wrong count" : cf_error_message());
    cf_st_close(f);
    unlink(path);
    rmdir(dir);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    fwrite(p, 1, n, fp);
    fclose(fp);
}

TEST(safetensors_rejects_malformed) {
    const char *dir = test_tmpdir("stbad");
    char path[512];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    struct {
        const char *header;
        size_t data_bytes;
        const char *expect;
    } cases[] = {
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "outside"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs"},
        {"{\"x\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets"},
        {"[1,2]", 0, "JSON object"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "overlap"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        unsigned char buf[512] = {0};
        uint64_t hlen = strlen(cases[c].header);
        memcpy(buf, &hlen, 8);
        memcpy(buf + 8, cases[c].header, hlen);
        write_bytes(path, buf, 8 + hlen + cases[c].data_bytes);
        cf_st_file *f = cf_st_open(path);
        CHECK_MSG(f == NULL, "case %zu accepted", c);
        CHECK_MSG(strstr(cf_error_message(), cases[c].expect) && strstr(cf_error_message(), path),
                  "case %zu: message '%s' lacks '%s' or the path", c, cf_error_message(), cases[c].expect);
        cf_st_close(f);
    }
    /* Header length larger than the file (truncation). */
    unsigned char tiny[12] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}', 0, 0};
    write_bytes(path, tiny, sizeof tiny);
    CHECK(cf_st_open(path) == NULL && strstr(cf_error_message(), "truncated"));
    write_bytes(path, tiny, 4);
    CHECK(cf_st_open(path) == NULL && strstr(cf_error_message(), "too short"));
    CHECK(cf_st_open("/nonexistent/x.safetensors") == NULL && strstr(cf_error_message(), "cannot open"));
    unlink(path);
    rmdir(dir);
}

/* Activation gradients are recycled: a chain of 20 ops needs a couple of live gradient buffers,
 * not 20, and the parameter's gradient is still right. */
TEST(backward_recycles_activation_gradients) {
    cf_tensor *x = test_param_uniform("x", 1, (int64_t[]){4096}, -1, 1, 1);
    cf_param_zero_grad(x);
    cf_ctx *ctx = cf_ctx_new(1);
    cf_tensor *h = x;
    for (int i = 0; i < 20; i++) h = cf_scale(ctx, h, 1.0 + 1.0 / 64);
    size_t before = ctx->arena.used_total, one = 4096 * sizeof(cf_real);
    cf_backward(ctx, cf_sum(ctx, h));
    size_t used = ctx->arena.used_total - before;
    CHECK_MSG(used <= 3 * one + 4096, "backward took %zu bytes, %zu per gradient", used, one);
    CHECK(h->grad == NULL); /* released once its node's backward ran */
    CHECK_NEAR(x->grad[7], pow(1.0 + 1.0 / 64, 20), 1e-4);
    cf_ctx_free(ctx);
    cf_param_free(x);
}
