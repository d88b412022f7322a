/* tests/fuzz/fuzz_lines.c - the line reader, plain and gzip. The input is read as a plain file,
 * gzip-compressed and read as a .gz file, and read as a .gz file as it is (a broken or foreign
 * stream). Properties: plain and compressed give exactly the lines a reference split gives (on
 * '\n', one '\r' before it dropped, a line past the maximum cut to it and flagged); a broken
 * stream ends in an error naming the file, or in lines. */
#include <string.h>
#include <zlib.h>

#include "core/common.h"
#include "data/lines.h"
#include "tests/fuzz/fuzz.h"

enum { MAX_LINE = 64 }; /* small, so that long lines and the cut are common */

/* Checks the reader's lines against the reference split of data. */
static void check_lines(const char *path, const uint8_t *data, size_t size) {
    cf_lines *r = cf_lines_open(path);
    FUZZ_ASSERT(r != NULL);
    cf_lines_set_max(r, MAX_LINE);
    size_t pos = 0;
    int64_t expect_no = 0;
    const char *line;
    size_t n;
    int rc;
    while ((rc = cf_lines_next(r, &line, &n)) > 0) {
        FUZZ_ASSERT(pos < size);
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - (data + pos)) : size - pos;
        bool cut = len > MAX_LINE;
        size_t want = cut ? MAX_LINE : len;
        if (!cut && want > 0 && data[pos + want - 1] == '\r') want--;
        FUZZ_ASSERT(n == want && memcmp(line, data + pos, n) == 0 && line[n] == 0);
        FUZZ_ASSERT(cf_lines_truncated(r) == cut);
        FUZZ_ASSERT(cf_lines_lineno(r) == ++expect_no);
        pos += len + (nl ? 1 : 0);
    }
    FUZZ_ASSERT(rc == 0 && pos == size);
    cf_lines_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_lines(fuzz_file(data, size, NULL), data, size);

    /* gzip it (windowBits 31: a gzip header) and read that */
    z_stream z = {0};
    FUZZ_ASSERT(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    uLong cap = deflateBound(&z, (uLong)size) + 64;
    uint8_t *gz = malloc(cap);
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)size;
    z.next_out = gz;
    z.avail_out = (uInt)cap;
    FUZZ_ASSERT(deflate(&z, Z_FINISH) == Z_STREAM_END);
    size_t gz_n = cap - z.avail_out;
    deflateEnd(&z);
    check_lines(fuzz_file(gz, gz_n, ".gz"), data, size);
    free(gz);

    /* the raw bytes as a .gz file: zlib reads a non-gzip file as it is, a broken one fails */
    const char *raw = fuzz_file(data, size, ".raw.gz");
    cf_lines *r = cf_lines_open(raw);
    FUZZ_ASSERT(r != NULL);
    const char *line;
    size_t n;
    int rc;
    while ((rc = cf_lines_next(r, &line, &n)) > 0) FUZZ_ASSERT(line[n] == 0);
    if (rc < 0) FUZZ_ASSERT(strstr(cf_error_message(), raw) != NULL);
    cf_lines_close(r);
    return 0;
}
