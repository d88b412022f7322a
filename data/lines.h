/* data/lines.h - read a text file line by line, plain or gzip (a leaf: corpora and tokenizer
 * training both read through it).
 *
 * Usage:
 *     cf_lines *r = cf_lines_open("file.gz");        // any line-oriented input; "-" is stdin
 *     const char *line; size_t n;
 *     while (cf_lines_next(r, &line, &n) > 0) ...;   // line without "\n" / "\r\n", NUL-terminated
 *     cf_lines_close(r);
 *
 * A file ending in .gz is read through zlib, anything else as plain bytes; CRLF endings and a
 * missing final newline are accepted; lines holding NUL bytes come through whole (n counts every
 * byte). Memory is bounded: a line longer than the reader's maximum (CF_LINES_MAX_BYTES unless
 * cf_lines_set_max says otherwise) comes back cut to that many bytes, with cf_lines_truncated
 * true, and the rest of it is skipped without being held; the reader never holds more than about
 * twice the maximum.
 */
#ifndef CF_LINES_H
#define CF_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 16 MiB: no sentence is that long; a corpus line of that size has more tokens than any
 * model.max_len allows (a token spans at most 64 bytes) and is dropped as too long anyway. */
#define CF_LINES_MAX_BYTES ((size_t)16 << 20)

typedef struct cf_lines cf_lines;
cf_lines *cf_lines_open(const char *path);               /* "-" = stdin; NULL + error naming the file */
/* 1 = a line (valid until the next call), 0 = end of file, -1 = read error (message names file:line). */
int cf_lines_next(cf_lines *r, const char **line, size_t *len);
int64_t cf_lines_lineno(const cf_lines *r);              /* 1-based number of the last line returned */
void cf_lines_set_max(cf_lines *r, size_t max_bytes);    /* before the first line; >= 1 */
bool cf_lines_truncated(const cf_lines *r);              /* the last line returned was cut to the maximum */
void cf_lines_close(cf_lines *r);

#endif
