/* core/safetensors.h - read and write the safetensors format.
 *
 * Usage:
 *     cf_st_writer *w = cf_st_writer_new();
 *     cf_st_writer_add(w, "encoder.embed.weight", CF_ST_F32, 2, (int64_t[]){V, C}, data);
 *     cf_st_writer_meta(w, "config", json_text);
 *     if (cf_st_writer_write(w, "model.safetensors") != 0) puts(cf_error_message());
 *     cf_st_writer_free(w);
 *
 *     cf_st_file *f = cf_st_open("model.safetensors");          // NULL + message if malformed
 *     const cf_st_tensor *t = cf_st_find(f, "encoder.embed.weight");
 *     cf_st_read_real(f, "encoder.embed.weight", dst, 2, shape); // converts F32/F64, checks shape
 *     cf_st_close(f);
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}},
 * then the raw little-endian data; offsets are relative to the end of the header. The reader checks
 * every bound (header length, offsets inside the file, sizes matching dtype x shape, no overlap)
 * and reports the file and the offending tensor.
 */
#ifndef CF_SAFETENSORS_H
#define CF_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

typedef enum cf_st_dtype { CF_ST_F32, CF_ST_F64, CF_ST_I32, CF_ST_I64, CF_ST_U8 } cf_st_dtype;

#define CF_ST_MAX_DIMS 8

typedef struct cf_st_tensor {
    char *name;
    cf_st_dtype dtype;
    int ndim;
    int64_t shape[CF_ST_MAX_DIMS];
    int64_t numel;
    const void *data;           /* inside the file's buffer */
    size_t nbytes;
} cf_st_tensor;

typedef struct cf_st_file cf_st_file;

cf_st_file *cf_st_open(const char *path);
void cf_st_close(cf_st_file *f);
int cf_st_count(const cf_st_file *f);
const cf_st_tensor *cf_st_at(const cf_st_file *f, int i);
const cf_st_tensor *cf_st_find(const cf_st_file *f, const char *name);
/* Value of a string in __metadata__, or NULL. */
const char *cf_st_metadata(const cf_st_file *f, const char *key);
/* Copy a tensor into dst as cf_real, converting from F32 or F64; fails (message naming file and
 * tensor) if it is missing, has another dtype family or its shape differs from (ndim, shape). */
int cf_st_read_real(const cf_st_file *f, const char *name, cf_real *dst, int ndim, const int64_t *shape);
const char *cf_st_dtype_name(cf_st_dtype dtype);
size_t cf_st_dtype_size(cf_st_dtype dtype);

typedef struct cf_st_writer cf_st_writer;

cf_st_writer *cf_st_writer_new(void);
void cf_st_writer_free(cf_st_writer *w);
/* The data is referenced, not copied: it must stay valid until cf_st_writer_write returns. */
void cf_st_writer_add(cf_st_writer *w, const char *name, cf_st_dtype dtype, int ndim, const int64_t *shape,
                      const void *data);
/* Add cf_real data converted to F32 (the on-disk dtype of weights in every build). */
void cf_st_writer_add_real(cf_st_writer *w, const char *name, int ndim, const int64_t *shape, const cf_real *data);
void cf_st_writer_meta(cf_st_writer *w, const char *key, const char *value);
/* Writes the file at path (replacing it) and fsyncs it; 0 or -1 with a message. */
int cf_st_writer_write(cf_st_writer *w, const char *path);

#endif
