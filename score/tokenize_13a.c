/* score/tokenize_13a.c - sacrebleu's 13a tokenizer, Python whitespace and strict UTF-8 (bleu.h).
 *
 * sacrebleu runs its rules on Python str (code points); we run them on UTF-8 bytes. That is exact
 * because every character the rules look at is ASCII: a byte of a multi-byte sequence is never a
 * digit, '.', ',', '-', '&', '<' or '\n', so a byte-wise scan matches at the same places as the
 * code-point scan (a multi-byte character on the "any non-digit" side of a rule is matched through
 * its last byte, or its first, and the output bytes are the same). Only whitespace needs code
 * points: Python's str.split() also splits at U+0085, U+00A0, U+2000.., U+3000 etc.
 */
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "score/bleu.h"

/* ---- Python's whitespace ----------------------------------------------------------------------
 * The code points with str.isspace() true (bidirectional class WS, B or S, or category Zs), as
 * Python 3.11 lists them (tests/fixtures/bleu/whitespace.txt): U+0009..000D, U+001C..001F, U+0020,
 * U+0085, U+00A0, U+1680, U+2000..200A, U+2028, U+2029, U+202F, U+205F, U+3000. Not U+200B (zero
 * width space), U+180E or U+FEFF. */
size_t cf_py_space_len(const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    unsigned c = s[0];
    if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20)) return 1;
    if (c == 0xc2) return (s[1] == 0x85 || s[1] == 0xa0) ? 2 : 0;
    if (c == 0xe1) return (s[1] == 0x9a && s[2] == 0x80) ? 3 : 0; /* U+1680 */
    if (c == 0xe2) {
        if (s[1] == 0x80) {
            unsigned t = s[2];
            if ((t >= 0x80 && t <= 0x8a) || t == 0xa8 || t == 0xa9 || t == 0xaf) return 3; /* U+2000..200A, 2028, 2029, 202F */
            return 0;
        }
        return (s[1] == 0x81 && s[2] == 0x9f) ? 3 : 0; /* U+205F */
    }
    if (c == 0xe3) return (s[1] == 0x80 && s[2] == 0x80) ? 3 : 0; /* U+3000 */
    return 0;
}

bool cf_utf8_valid(const char *str, size_t n, size_t *bad_offset) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c < 0x80) len = 1;
        else if (c >= 0xc2 && c <= 0xdf) len = 2;
        else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0) lo = 0xa0;      /* overlong */
            else if (c == 0xed) hi = 0x9f; /* UTF-16 surrogates, which Python's decoder rejects */
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0) lo = 0x90;      /* overlong */
            else if (c == 0xf4) hi = 0x8f; /* > U+10FFFF */
        } else goto bad;
        if (i + len > n) goto bad;
        for (size_t k = 1; k < len; k++) {
            unsigned b = s[i + k];
            if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) goto bad;
        }
        i += len;
    }
    return true;
bad:
    if (bad_offset) *bad_offset = i;
    return false;
}

/* ---- a growable byte buffer --------------------------------------------------------------------- */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_reserve(buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = cf_xmalloc(cap);
    if (b->len) memcpy(p, b->p, b->len);
    free(b->p);
    b->p = p;
    b->cap = cap;
}

static void buf_put(buf *b, const char *s, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void buf_putc(buf *b, char c) { buf_put(b, &c, 1); }

/* Python's str.replace(old, new): every non-overlapping occurrence, scanning left to right once
 * (so "<skip<skipped>ped>" becomes "<skipped>", not ""). */
static buf replace_all(const char *s, size_t n, const char *old, const char *new_) {
    buf out = {0};
    size_t old_len = strlen(old), new_len = strlen(new_);
    buf_reserve(&out, n);
    size_t i = 0;
    while (i < n) {
        if (i + old_len <= n && memcmp(s + i, old, old_len) == 0) {
            buf_put(&out, new_, new_len);
            i += old_len;
        } else {
            buf_putc(&out, s[i++]);
        }
    }
    if (!out.p) buf_put(&out, "", 0);
    return out;
}

/* Apply replace_all in place of *b. */
static void replace_in(buf *b, const char *old, const char *new_) {
    if (!memmem(b->p, b->len, old, strlen(old))) return;
    buf r = replace_all(b->p, b->len, old, new_);
    free(b->p);
    *b = r;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Rule 1's class [\{-\~\[-\` -\&\(-\+\:-\@\/]: the ASCII ranges {|}~, [\]^_`, space!"#$%&, ()*+,
 * :;<=>?@ and '/'. Not included: ' , - . digits letters. */
static bool rule1_char(unsigned char c) {
    return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') || (c >= '(' && c <= '+') ||
           (c >= ':' && c <= '@') || c == '/';
}

char *cf_tokenize_13a(const char *line) {
    size_t n = strlen(line);
    buf b = replace_all(line, n, "<skipped>", ""); /* line.replace('<skipped>', '') */
    replace_in(&b, "-\n", "");                      /* line.replace('-\n', '') */
    replace_in(&b, "\n", " ");                      /* line.replace('\n', ' ') */
    if (memchr(b.p, '&', b.len)) {                  /* entities, in this order, each one pass */
        replace_in(&b, "&quot;", "\"");
        replace_in(&b, "&amp;", "&");
        replace_in(&b, "&lt;", "<");
        replace_in(&b, "&gt;", ">");
    }

    /* f' {line} ' then rule 1: ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 ' */
    buf r1 = {0};
    buf_reserve(&r1, 3 * b.len + 2);
    buf_putc(&r1, ' ');
    for (size_t i = 0; i < b.len; i++) {
        unsigned char c = (unsigned char)b.p[i];
        if (rule1_char(c)) {
            char t[3] = {' ', (char)c, ' '};
            buf_put(&r1, t, 3);
        } else {
            buf_putc(&r1, (char)c);
        }
    }
    buf_putc(&r1, ' ');
    free(b.p);

    /* Rule 2: ([^0-9])([\.,]) -> '\1 \2 ' (period and comma not preceded by a digit). re.sub scans
     * left to right and resumes after each match, so in "a.." only the first period matches. */
    buf r2 = {0};
    buf_reserve(&r2, r1.len + r1.len / 2 + 1);
    for (size_t i = 0; i < r1.len;) {
        char c = r1.p[i];
        if (!is_digit(c) && i + 1 < r1.len && (r1.p[i + 1] == '.' || r1.p[i + 1] == ',')) {
            char t[4] = {c, ' ', r1.p[i + 1], ' '};
            buf_put(&r2, t, 4);
            i += 2;
        } else {
            buf_putc(&r2, c);
            i++;
        }
    }
    free(r1.p);

    /* Rule 3: ([\.,])([^0-9]) -> ' \1 \2' (period and comma not followed by a digit). */
    buf r3 = {0};
    buf_reserve(&r3, r2.len + r2.len / 2 + 1);
    for (size_t i = 0; i < r2.len;) {
        char c = r2.p[i];
        if ((c == '.' || c == ',') && i + 1 < r2.len && !is_digit(r2.p[i + 1])) {
            char t[4] = {' ', c, ' ', r2.p[i + 1]};
            buf_put(&r3, t, 4);
            i += 2;
        } else {
            buf_putc(&r3, c);
            i++;
        }
    }
    free(r2.p);

    /* Rule 4: ([0-9])(-) -> '\1 \2 ' (dash preceded by a digit). */
    buf r4 = {0};
    buf_reserve(&r4, r3.len + r3.len / 2 + 1);
    for (size_t i = 0; i < r3.len;) {
        char c = r3.p[i];
        if (is_digit(c) && i + 1 < r3.len && r3.p[i + 1] == '-') {
            char t[4] = {c, ' ', '-', ' '};
            buf_put(&r4, t, 4);
            i += 2;
        } else {
            buf_putc(&r4, c);
            i++;
        }
    }
    free(r3.p);

    /* ' '.join(line.split()): split at runs of Python whitespace, drop empty pieces. */
    char *out = cf_xmalloc(r4.len + 1);
    size_t o = 0;
    for (size_t i = 0; i < r4.len;) {
        size_t w = cf_py_space_len(r4.p + i);
        if (w) {
            i += w;
            continue;
        }
        if (o) out[o++] = ' ';
        while (i < r4.len && !cf_py_space_len(r4.p + i)) out[o++] = r4.p[i++];
    }
    out[o] = 0;
    free(r4.p);
    return out;
}
