/* core/safetensors.c - bounds-checked safetensors reader and a writer. */
#include "core/safetensors.h"

#include "core/fileio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

/* A header larger than this is refused as corrupt (the reference implementation uses 100 MB). */
#define ST_MAX_HEADER (100u << 20)
/* ... and one with more JSON values than this, before it is parsed: each costs cJSON ~64 bytes, so
 * a 100 MB header of "[0,0,0,..." would otherwise take ~3 GB. A tensor's entry has ~10 values, so
 * this allows 100000 tensors; cformer's checkpoints have a few hundred. */
#define ST_MAX_JSON_VALUES (1u << 20)

struct cf_st_file {
    char *path;
    unsigned char *buf;          /* whole file */
    size_t size;
    cf_st_tensor *tensors;
    int n;
    cJSON *metadata;             /* detached "__metadata__" object or NULL */
};

static const struct {
    const char *name;
    size_t size;
} dtype_info[] = {
    [CF_ST_F32] = {"F32", 4}, [CF_ST_F64] = {"F64", 8}, [CF_ST_I32] = {"I32", 4},
    [CF_ST_I64] = {"I64", 8}, [CF_ST_U8] = {"U8", 1},
};

const char *cf_st_dtype_name(cf_st_dtype d) { return dtype_info[d].name; }
size_t cf_st_dtype_size(cf_st_dtype d) { return dtype_info[d].size; }

static int dtype_parse(const char *s, cf_st_dtype *out) {
    for (size_t i = 0; i < sizeof dtype_info / sizeof dtype_info[0]; i++)
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (cf_st_dtype)i;
            return 0;
        }
    return -1;
}

static int read_whole_file(const char *path, unsigned char **buf, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        cf_error_set("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fseek(fp, 0, SEEK_END) != 0) goto io_error;
    long len = ftell(fp);
    if (len < 0 || fseek(fp, 0, SEEK_SET) != 0) goto io_error;
    *size = (size_t)len;
    *buf = cf_xmalloc(*size + 1);
    if (fread(*buf, 1, *size, fp) != *size) {
        free(*buf);
        goto io_error;
    }
    fclose(fp);
    return 0;
io_error:
    cf_error_set("%s: read error: %s", path, strerror(errno));
    fclose(fp);
    return -1;
}

/* An upper bound on the JSON values in text (every value but the first follows a ',', ':', '['
 * or '{' outside a string), counted without parsing. */
static size_t json_values_bound(const char *text, size_t n) {
    size_t count = 1;
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') i++;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == ',' || c == ':' || c == '[' || c == '{') {
            count++;
        }
    }
    return count;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const cf_st_tensor *)a)->name, ((const cf_st_tensor *)b)->name);
}

static int by_offset(const void *a, const void *b) {
    const cf_st_tensor *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data;
}

static int parse_entry(cf_st_file *f, const cJSON *item, const unsigned char *data, size_t data_len,
                       cf_st_tensor *t) {
    const char *path = f->path, *name = item->string;
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsObject(item) || !cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) ||
        cJSON_GetArraySize(offs) != 2) {
        cf_error_set("%s: tensor '%s': header entry needs dtype, shape and data_offsets [begin, end]", path, name);
        return -1;
    }
    if (dtype_parse(dtype->valuestring, &t->dtype) != 0) {
        cf_error_set("%s: tensor '%s': unsupported dtype '%s'", path, name, dtype->valuestring);
        return -1;
    }
    t->ndim = cJSON_GetArraySize(shape);
    if (t->ndim > CF_ST_MAX_DIMS) {
        cf_error_set("%s: tensor '%s': %d dims (at most %d)", path, name, t->ndim, CF_ST_MAX_DIMS);
        return -1;
    }
    t->numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        const cJSON *s = cJSON_GetArrayItem(shape, d);
        if (!cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble > 1e15 || s->valuedouble != (double)(int64_t)s->valuedouble) {
            cf_error_set("%s: tensor '%s': bad shape entry %d", path, name, d);
            return -1;
        }
        t->shape[d] = (int64_t)s->valuedouble;
        if (t->shape[d] && t->numel > INT64_MAX / 16 / t->shape[d]) {
            cf_error_set("%s: tensor '%s': shape too large", path, name);
            return -1;
        }
        t->numel *= t->shape[d];
    }
    const cJSON *b = cJSON_GetArrayItem(offs, 0), *e = cJSON_GetArrayItem(offs, 1);
    if (!cJSON_IsNumber(b) || !cJSON_IsNumber(e) || b->valuedouble < 0 || e->valuedouble < b->valuedouble ||
        e->valuedouble > (double)data_len) {
        cf_error_set("%s: tensor '%s': data_offsets outside the %zu data bytes (file truncated?)", path, name,
                     data_len);
        return -1;
    }
    size_t begin = (size_t)b->valuedouble, end = (size_t)e->valuedouble;
    t->nbytes = end - begin;
    if (t->nbytes != (size_t)t->numel * cf_st_dtype_size(t->dtype)) {
        cf_error_set("%s: tensor '%s': %zu data bytes but dtype %s x %lld elements needs %zu", path, name,
                     t->nbytes, dtype->valuestring, (long long)t->numel, (size_t)t->numel * cf_st_dtype_size(t->dtype));
        return -1;
    }
    t->data = data + begin;
    t->name = cf_xmalloc(strlen(name) + 1);
    strcpy(t->name, name);
    return 0;
}

cf_st_file *cf_st_open(const char *path) {
    cf_st_file *f = cf_xcalloc(1, sizeof *f);
    f->path = cf_xmalloc(strlen(path) + 1);
    strcpy(f->path, path);
    cJSON *root = NULL;
    if (read_whole_file(path, &f->buf, &f->size) != 0) goto fail;
    if (f->size < 8) {
        cf_error_set("%s: %zu bytes, too short for a safetensors file", path, f->size);
        goto fail;
    }
    uint64_t hlen;
    memcpy(&hlen, f->buf, 8);
    if (hlen > ST_MAX_HEADER || hlen > f->size - 8) {
        cf_error_set("%s: header length %llu exceeds the file (%zu bytes): truncated or not safetensors", path,
                     (unsigned long long)hlen, f->size);
        goto fail;
    }
    size_t values = json_values_bound((const char *)f->buf + 8, (size_t)hlen);
    if (values > ST_MAX_JSON_VALUES) {
        cf_error_set("%s: header holds about %zu JSON values, more than the %u a safetensors file of cformer's may "
                     "have (corrupted or not ours)", path, values, ST_MAX_JSON_VALUES);
        goto fail;
    }
    root = cJSON_ParseWithLength((const char *)f->buf + 8, (size_t)hlen);
    if (!cJSON_IsObject(root)) {
        cf_error_set("%s: header is not a JSON object", path);
        goto fail;
    }
    const unsigned char *data = f->buf + 8 + hlen;
    size_t data_len = f->size - 8 - (size_t)hlen;
    int count = cJSON_GetArraySize(root);
    f->tensors = cf_xcalloc((size_t)count, sizeof *f->tensors);
    for (cJSON *item = root->child; item; item = item->next) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(item)) {
                cf_error_set("%s: __metadata__ is not an object", path);
                goto fail;
            }
            continue;
        }
        if (parse_entry(f, item, data, data_len, &f->tensors[f->n]) != 0) goto fail;
        f->n++;
    }
    /* Names are unique (sorted, so that a crafted header of many tensors costs n log n, not n^2)
     * and tensors must not overlap. */
    cf_st_tensor *sorted = cf_xmalloc((size_t)(f->n ? f->n : 1) * sizeof *sorted);
    memcpy(sorted, f->tensors, (size_t)f->n * sizeof *sorted);
    qsort(sorted, (size_t)f->n, sizeof *sorted, by_name);
    for (int i = 1; i < f->n; i++)
        if (strcmp(sorted[i - 1].name, sorted[i].name) == 0) {
            cf_error_set("%s: tensor '%s' appears twice", path, sorted[i].name);
            free(sorted);
            goto fail;
        }
    qsort(sorted, (size_t)f->n, sizeof *sorted, by_offset);
    /* An empty tensor holds no bytes, so it overlaps nothing, wherever its offsets point (our own
     * writer puts one at the start of the next tensor; a fuzzed file found the check refusing it). */
    const cf_st_tensor *prev = NULL;
    for (int i = 0; i < f->n; i++) {
        if (sorted[i].nbytes == 0) continue;
        if (prev && (const unsigned char *)prev->data + prev->nbytes > (const unsigned char *)sorted[i].data) {
            cf_error_set("%s: tensors '%s' and '%s' overlap", path, prev->name, sorted[i].name);
            free(sorted);
            goto fail;
        }
        prev = &sorted[i];
    }
    free(sorted);
    f->metadata = cJSON_DetachItemFromObjectCaseSensitive(root, "__metadata__");
    cJSON_Delete(root);
    return f;
fail:
    cJSON_Delete(root);
    cf_st_close(f);
    return NULL;
}

void cf_st_close(cf_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
    free(f->tensors);
    cJSON_Delete(f->metadata);
    free(f->buf);
    free(f->path);
    free(f);
}

int cf_st_count(const cf_st_file *f) { return f->n; }
const cf_st_tensor *cf_st_at(const cf_st_file *f, int i) { return i >= 0 && i < f->n ? &f->tensors[i] : NULL; }

const cf_st_tensor *cf_st_find(const cf_st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *cf_st_metadata(const cf_st_file *f, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f->metadata, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int cf_st_read_real(const cf_st_file *f, const char *name, cf_real *dst, int ndim, const int64_t *shape) {
    const cf_st_tensor *t = cf_st_find(f, name);
    if (!t) {
        cf_error_set("%s: no tensor named '%s'", f->path, name);
        return -1;
    }
    bool same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char want[128] = "[", got[128] = "[";
        for (int d = 0; d < ndim; d++) snprintf(want + strlen(want), sizeof want - strlen(want), d ? ", %lld" : "%lld", (long long)shape[d]);
        for (int d = 0; d < t->ndim; d++) snprintf(got + strlen(got), sizeof got - strlen(got), d ? ", %lld" : "%lld", (long long)t->shape[d]);
        cf_error_set("%s: tensor '%s' has shape %s], expected %s]", f->path, name, got, want);
        return -1;
    }
    if (t->dtype == CF_ST_F32) {
        const float *src = t->data; /* may be unaligned: copy element-wise through memcpy */
        for (int64_t i = 0; i < t->numel; i++) {
            float v;
            memcpy(&v, src + i, sizeof v);
            dst[i] = (cf_real)v;
        }
    } else if (t->dtype == CF_ST_F64) {
        const double *src = t->data;
        for (int64_t i = 0; i < t->numel; i++) {
            double v;
            memcpy(&v, src + i, sizeof v);
            dst[i] = (cf_real)v;
        }
    } else {
        cf_error_set("%s: tensor '%s' has dtype %s, expected F32 or F64", f->path, name, cf_st_dtype_name(t->dtype));
        return -1;
    }
    return 0;
}

/* ---- writer ---- */

typedef struct st_entry {
    char *name;
    cf_st_dtype dtype;
    int ndim;
    int64_t shape[CF_ST_MAX_DIMS];
    const void *data;
    void *owned;                 /* converted copy, freed with the writer */
    size_t nbytes;
} st_entry;

struct cf_st_writer {
    st_entry *entries;
    int n, cap;
    cJSON *metadata;
};

cf_st_writer *cf_st_writer_new(void) {
    cf_st_writer *w = cf_xcalloc(1, sizeof *w);
    w->metadata = cJSON_CreateObject();
    return w;
}

void cf_st_writer_free(cf_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->entries[i].name);
        free(w->entries[i].owned);
    }
    free(w->entries);
    cJSON_Delete(w->metadata);
    free(w);
}

void cf_st_writer_add(cf_st_writer *w, const char *name, cf_st_dtype dtype, int ndim, const int64_t *shape,
                      const void *data) {
    CF_ASSERT(ndim >= 0 && ndim <= CF_ST_MAX_DIMS);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->entries = realloc(w->entries, (size_t)w->cap * sizeof *w->entries);
        CF_ASSERT(w->entries != NULL);
    }
    st_entry *e = &w->entries[w->n++];
    memset(e, 0, sizeof *e);
    e->name = cf_xmalloc(strlen(name) + 1);
    strcpy(e->name, name);
    e->dtype = dtype;
    e->ndim = ndim;
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (e->shape[d] = shape[d]);
    e->nbytes = (size_t)numel * cf_st_dtype_size(dtype);
    e->data = data;
}

void cf_st_writer_add_real(cf_st_writer *w, const char *name, int ndim, const int64_t *shape, const cf_real *data) {
#ifdef CF_REAL_DOUBLE
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= shape[d];
    float *copy = cf_xmalloc((size_t)(numel ? numel : 1) * sizeof *copy);
    for (int64_t i = 0; i < numel; i++) copy[i] = (float)data[i];
    cf_st_writer_add(w, name, CF_ST_F32, ndim, shape, copy);
    w->entries[w->n - 1].owned = copy;
#else
    cf_st_writer_add(w, name, CF_ST_F32, ndim, shape, data);
#endif
}

void cf_st_writer_meta(cf_st_writer *w, const char *key, const char *value) {
    cJSON_DeleteItemFromObjectCaseSensitive(w->metadata, key);
    cJSON_AddStringToObject(w->metadata, key, value);
}

int cf_st_writer_write(cf_st_writer *w, const char *path) {
    cJSON *root = cJSON_CreateObject();
    if (cJSON_GetArraySize(w->metadata) > 0) cJSON_AddItemReferenceToObject(root, "__metadata__", w->metadata);
    size_t offset = 0;
    for (int i = 0; i < w->n; i++) {
        st_entry *e = &w->entries[i];
        cJSON *item = cJSON_AddObjectToObject(root, e->name);
        cJSON_AddStringToObject(item, "dtype", cf_st_dtype_name(e->dtype));
        cJSON *shape = cJSON_AddArrayToObject(item, "shape");
        for (int d = 0; d < e->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(item, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(offset + e->nbytes)));
        offset += e->nbytes;
    }
    char *header = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!header) cf_out_of_memory(0, __FILE__, __LINE__);
    /* Pad the header with spaces so the data starts 8-byte aligned (as the reference writer does). */
    size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8;
    header = cf_xrealloc(header, padded + 1);
    memset(header + hlen, ' ', padded - hlen);
    int fd = cf_io_open(path, O_WRONLY | O_CREAT | O_TRUNC);
    if (fd < 0) {
        cf_error_set("%s: cannot create: %s", path, strerror(errno));
        free(header);
        return -1;
    }
    uint64_t len64 = padded;
    int rc = cf_write_all(fd, &len64, 8);
    if (rc == 0) rc = cf_write_all(fd, header, padded);
    for (int i = 0; rc == 0 && i < w->n; i++) rc = cf_write_all(fd, w->entries[i].data, w->entries[i].nbytes);
    if (rc == 0) rc = cf_io_fsync(fd);
    if (rc != 0) cf_error_set("%s: write failed: %s", path, strerror(errno));
    if (cf_io_close(fd) != 0 && rc == 0) {
        cf_error_set("%s: close failed: %s", path, strerror(errno));
        rc = -1;
    }
    free(header);
    return rc;
}
