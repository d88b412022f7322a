/* data/lines.c - the line reader under corpora and tokenizer training (plain or gzip files). */
#include "data/lines.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/common.h"

/* One chunked reader for both kinds of file: it splits on '\n' itself, so lines of any length and
 * lines with NUL bytes come through intact (gzgets/fgets would truncate or hide them). */
struct cf_lines {
    char *path;
    FILE *f;
    gzFile gz;
    char *buf;
    size_t cap, start, end;
    bool eof;
    int64_t lineno;
    size_t max;                 /* longest line returned whole */
    bool skipping;              /* inside the rest of a line that was cut */
    bool truncated;             /* the last line returned was cut */
};

cf_lines *cf_lines_open(const char *path) {
    size_t n = strlen(path);
    bool is_gz = n > 3 && strcmp(path + n - 3, ".gz") == 0;
    cf_lines *r = cf_xcalloc(1, sizeof *r);
    if (strcmp(path, "-") == 0) r->f = stdin;
    else if (is_gz) r->gz = gzopen(path, "rb");
    else r->f = fopen(path, "rb");
    if (!r->gz && !r->f) {
        cf_error_set("%s: cannot open: %s", path, strerror(errno));
        free(r);
        return NULL;
    }
    if (r->gz) gzbuffer(r->gz, 1 << 17);
    r->path = cf_xstrdup(r->f == stdin ? "<stdin>" : path);
    r->max = CF_LINES_MAX_BYTES;
    r->cap = 1 << 16;
    r->buf = cf_xmalloc(r->cap);
    return r;
}

/* Read more bytes after buf[end]; returns -1 on error (message set). */
static int fill(cf_lines *r) {
    if (r->start > 0) { /* keep the partial line at the front */
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end + 1 >= r->cap) {
        r->cap *= 2;
        r->buf = cf_xrealloc(r->buf, r->cap);
    }
    size_t want = r->cap - 1 - r->end; /* one byte spare for the terminating NUL */
    if (r->gz) {
        int got = gzread(r->gz, r->buf + r->end, (unsigned)(want > (1u << 30) ? 1u << 30 : want));
        int err;
        const char *msg = gzerror(r->gz, &err);
        if (got < 0 || (err != Z_OK && err != Z_STREAM_END)) {
            cf_error_set("%s: gzip error near line %lld: %s", r->path, (long long)r->lineno + 1, msg);
            return -1;
        }
        if (got == 0) r->eof = true;
        r->end += (size_t)got;
    } else {
        size_t got = fread(r->buf + r->end, 1, want, r->f);
        if (got < want) {
            if (ferror(r->f)) {
                cf_error_set("%s: read error near line %lld: %s", r->path, (long long)r->lineno + 1, strerror(errno));
                return -1;
            }
            if (got == 0) r->eof = true;
        }
        r->end += got;
    }
    return 0;
}

int cf_lines_next(cf_lines *r, const char **line, size_t *len) {
    r->truncated = false;
    for (;;) {
        char *s = r->buf + r->start;
        size_t avail = r->end - r->start;
        if (r->skipping) { /* the rest of a cut line: drop it up to its newline */
            char *nl = memchr(s, '\n', avail);
            r->start = nl ? (size_t)(nl + 1 - r->buf) : r->end;
            if (nl) r->skipping = false;
            else if (r->eof) return 0;
            else if (fill(r) < 0) return -1;
            continue;
        }
        char *nl = memchr(s, '\n', avail < r->max + 1 ? avail : r->max + 1);
        size_t n;
        if (nl) {
            n = (size_t)(nl - s);
            r->start += n + 1;
        } else if (avail > r->max) {
            /* Longer than the maximum: hand out its first max bytes, skip the rest (the byte
             * after them is not a newline, or memchr would have found it). */
            n = r->max;
            r->start += n;
            r->skipping = true;
            r->truncated = true; /* the NUL below overwrites the first skipped byte: no newline */
        } else if (r->eof) {
            if (r->start == r->end) return 0;
            n = r->end - r->start; /* the last line has no newline */
            r->start = r->end;
        } else {
            if (fill(r) < 0) return -1;
            continue;
        }
        if (!r->truncated && n > 0 && s[n - 1] == '\r') n--;
        s[n] = '\0';
        r->lineno++;
        *line = s;
        *len = n;
        return 1;
    }
}

void cf_lines_set_max(cf_lines *r, size_t max_bytes) { r->max = max_bytes ? max_bytes : 1; }

bool cf_lines_truncated(const cf_lines *r) { return r->truncated; }

int64_t cf_lines_lineno(const cf_lines *r) { return r->lineno; }

void cf_lines_close(cf_lines *r) {
    if (!r) return;
    if (r->gz) gzclose(r->gz);
    if (r->f && r->f != stdin) fclose(r->f);
    free(r->path);
    free(r->buf);
    free(r);
}
