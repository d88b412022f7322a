/* tests/fuzz/fuzz_safetensors.c - the safetensors reader (and cf_params_load on top of it).
 * Properties: an error names the file; every tensor of an accepted file reads back, its bytes
 * match dtype x shape, names are unique; writing the tensors again and reading that file gives
 * the same tensors; cf_params_load refuses what does not fit with a message naming the file. */
#include <string.h>

#include "core/safetensors.h"
#include "nn/params.h"
#include "tests/fuzz/fuzz.h"
#include "train/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, NULL);
    cf_st_file *f = cf_st_open(path);
    if (!f) {
        FUZZ_ASSERT(strncmp(cf_error_message(), path, strlen(path)) == 0);
        return 0;
    }
    cf_st_writer *w = cf_st_writer_new();
    for (int i = 0; i < cf_st_count(f); i++) {
        const cf_st_tensor *t = cf_st_at(f, i);
        FUZZ_ASSERT(cf_st_find(f, t->name) == t);
        FUZZ_ASSERT(t->nbytes == (size_t)t->numel * cf_st_dtype_size(t->dtype) && t->nbytes <= size);
        if (t->dtype == CF_ST_F32 || t->dtype == CF_ST_F64) {
            cf_real *buf = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *buf);
            FUZZ_ASSERT(cf_st_read_real(f, t->name, buf, t->ndim, t->shape) == 0);
            free(buf);
        }
        cf_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
    }
    const char *cfg = cf_st_metadata(f, "config");
    if (cfg) cf_st_writer_meta(w, "config", cfg);
    /* write them again (into a second in-memory file) and read that back */
    const char *copy = fuzz_file((const uint8_t *)"", 0, ".st");
    FUZZ_ASSERT(cf_st_writer_write(w, copy) == 0);
    cf_st_file *g = cf_st_open(copy);
    FUZZ_ASSERT(g && cf_st_count(g) == cf_st_count(f));
    for (int i = 0; i < cf_st_count(f); i++) {
        const cf_st_tensor *a = cf_st_at(f, i), *b = cf_st_find(g, a->name);
        FUZZ_ASSERT(b && b->dtype == a->dtype && b->ndim == a->ndim && b->nbytes == a->nbytes);
        FUZZ_ASSERT(memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) == 0);
        FUZZ_ASSERT(a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0);
    }
    cf_st_close(g);
    cf_st_writer_free(w);
    cf_st_close(f);
    /* a two-parameter model: loads only a file with exactly these F32 tensors */
    cf_params ps = {0};
    cf_params_add(&ps, 2, (int64_t[]){2, 3}, "a.weight");
    cf_params_add(&ps, 1, (int64_t[]){4}, "b.bias");
    if (cf_params_load(&ps, path) != 0) FUZZ_ASSERT(strstr(cf_error_message(), path) != NULL);
    cf_params_free(&ps);
    return 0;
}
