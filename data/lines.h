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
 * missing final newline are accepted; lines of any length and lines holding NUL bytes come
 * through whole (n counts every byte).
 */
#ifndef CF_LINES_H
#define CF_LINES_H

#include <stddef.h>
#include <stdint.h>

typedef struct cf_lines cf_lines;
cf_lines *cf_lines_open(const char *path);               /* "-" = stdin; NULL + error naming the file */
/* 1 = a line (valid until the next call), 0 = end of file, -1 = read error (message names file:line). */
int cf_lines_next(cf_lines *r, const char **line, size_t *len);
int64_t cf_lines_lineno(const cf_lines *r);              /* 1-based number of the last line returned */
void cf_lines_close(cf_lines *r);

#endif
