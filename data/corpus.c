/* data/corpus.c - parallel corpus loading (lines come from data/lines.h). */
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "data/corpus.h"

cf_corpus *cf_corpus_new(void) {
    cf_corpus *c = cf_xcalloc(1, sizeof *c);
    c->src_off = cf_xcalloc(1, sizeof(int64_t));
    c->tgt_off = cf_xcalloc(1, sizeof(int64_t));
    return c;
}

void cf_corpus_add(cf_corpus *c, const int32_t *src, int64_t n_src, const int32_t *tgt, int64_t n_tgt) {
    /* the per-pair arrays grow together, to the capacity of `line` */
    size_t old = c->cap_pairs;
    c->line = cf_grow(c->line, &c->cap_pairs, (size_t)c->n + 1, sizeof(int64_t));
    if (c->cap_pairs != old) {
        size_t tmp = old;
        c->src_off = cf_grow(c->src_off, &tmp, c->cap_pairs + 1, sizeof(int64_t));
        tmp = old;
        c->tgt_off = cf_grow(c->tgt_off, &tmp, c->cap_pairs + 1, sizeof(int64_t));
        tmp = old;
        c->src_text_off = cf_grow(c->src_text_off, &tmp, c->cap_pairs, sizeof(int64_t));
        tmp = old;
        c->tgt_text_off = cf_grow(c->tgt_text_off, &tmp, c->cap_pairs, sizeof(int64_t));
    }
    int64_t s0 = c->src_off[c->n], t0 = c->tgt_off[c->n];
    c->src_ids = cf_grow(c->src_ids, &c->cap_src, (size_t)(s0 + n_src), sizeof(int32_t));
    c->tgt_ids = cf_grow(c->tgt_ids, &c->cap_tgt, (size_t)(t0 + n_tgt), sizeof(int32_t));
    memcpy(c->src_ids + s0, src, (size_t)n_src * sizeof(int32_t));
    memcpy(c->tgt_ids + t0, tgt, (size_t)n_tgt * sizeof(int32_t));
    c->src_off[c->n + 1] = s0 + n_src;
    c->tgt_off[c->n + 1] = t0 + n_tgt;
    c->line[c->n] = c->n + 1;
    c->n++;
    c->stats.n_kept = c->n;
    c->stats.src_tokens += n_src;
    c->stats.tgt_tokens += n_tgt;
    if (n_src > c->stats.max_src_len) c->stats.max_src_len = (int32_t)n_src;
    if (n_tgt > c->stats.max_tgt_len) c->stats.max_tgt_len = (int32_t)n_tgt;
}

static void add_text(char **pool, size_t *cap, int64_t *off_out, int64_t used_before, const char *s, size_t n) {
    *pool = cf_grow(*pool, cap, (size_t)used_before + n + 1, 1);
    memcpy(*pool + used_before, s, n);
    (*pool)[used_before + (int64_t)n] = '\0';
    *off_out = used_before;
}

void cf_corpus_free(cf_corpus *c) {
    if (!c) return;
    free(c->src_ids);
    free(c->tgt_ids);
    free(c->src_off);
    free(c->tgt_off);
    free(c->line);
    free(c->src_text);
    free(c->tgt_text);
    free(c->src_text_off);
    free(c->tgt_text_off);
    free(c);
}

void cf_corpus_summary(const cf_corpus *c, int64_t max_len, char *buf, size_t size) {
    const cf_corpus_stats *s = &c->stats;
    int k = snprintf(buf, size, "%lld pairs read, %lld kept, %lld dropped as empty", (long long)s->n_lines,
                     (long long)s->n_kept, (long long)s->n_empty);
    if (k >= 0 && (size_t)k < size)
        snprintf(buf + k, size - (size_t)k, max_len > 0 ? ", %lld dropped as longer than %lld tokens" : "",
                 (long long)s->n_too_long, (long long)max_len);
}

static bool all_space(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r'))) return false;
    return true;
}

/* Offset of the first byte of s[0..n) that is not part of valid UTF-8 text without NUL (no
 * overlong forms, surrogates or code points past U+10FFFF), or n when it all is. */
static size_t text_bad_offset(const unsigned char *s, size_t n) {
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (c == 0 || len == 0 || len > n - i) return i;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += len;
    }
    return n;
}

/* Count the remaining lines of r (for the misalignment message); -1 on a read error. */
static int64_t count_rest(cf_lines *r) {
    const char *l;
    size_t n;
    int rc;
    while ((rc = cf_lines_next(r, &l, &n)) > 0) {}
    return rc < 0 ? -1 : cf_lines_lineno(r);
}

cf_corpus *cf_corpus_load(const cf_corpus_opts *o, cf_tokenizer *tok) { return cf_corpus_load2(o, tok, tok); }

cf_corpus *cf_corpus_load2(const cf_corpus_opts *o, cf_tokenizer *src_tok, cf_tokenizer *tgt_tok) {
    bool tsv = o->tsv_path != NULL;
    if (tsv == (o->src_path != NULL || o->tgt_path != NULL) || (!tsv && (!o->src_path || !o->tgt_path))) {
        cf_error_set("corpus: give either a source and a target file, or one TSV file");
        return NULL;
    }
    cf_lines *rs = cf_lines_open(tsv ? o->tsv_path : o->src_path);
    if (!rs) return NULL;
    cf_lines *rt = NULL;
    if (!tsv && !(rt = cf_lines_open(o->tgt_path))) {
        cf_lines_close(rs);
        return NULL;
    }
    cf_corpus *c = cf_corpus_new();
    cf_ids xs = {0}, ys = {0};
    int64_t src_text_n = 0, tgt_text_n = 0;
    bool ok = true;
    for (;;) {
        if (o->max_pairs > 0 && c->n >= o->max_pairs) break;
        const char *a, *b;
        size_t na, nb;
        int ra = cf_lines_next(rs, &a, &na);
        if (ra < 0) {
            ok = false;
            break;
        }
        if (tsv) {
            if (ra == 0) break;
            const char *tab = memchr(a, '\t', na);
            if (!tab && na == 0) { /* a blank line is an empty pair, not a format error */
                b = a, nb = 0;
            } else if (!tab || memchr(tab + 1, '\t', na - (size_t)(tab + 1 - a))) {
                cf_error_set("%s:%lld: expected one TAB between source and target, found %s", o->tsv_path,
                             (long long)cf_lines_lineno(rs), tab ? "more than one" : "none");
                ok = false;
                break;
            } else {
                b = tab + 1;
                nb = na - (size_t)(b - a);
                na = (size_t)(tab - a);
            }
        } else {
            int rb = cf_lines_next(rt, &b, &nb);
            if (rb < 0) {
                ok = false;
                break;
            }
            if (ra != rb) {
                int64_t ns = ra ? count_rest(rs) : cf_lines_lineno(rs);
                int64_t nt = rb ? count_rest(rt) : cf_lines_lineno(rt);
                if (ns >= 0 && nt >= 0)
                    cf_error_set("misaligned corpus: %s has %lld lines but %s has %lld lines", o->src_path,
                                 (long long)ns, o->tgt_path, (long long)nt);
                ok = false;
                break;
            }
            if (ra == 0) break;
        }
        c->stats.n_lines++;
        /* a line past the reader's bound (data/lines.h) has more tokens than any model takes */
        if (cf_lines_truncated(rs) || (rt && cf_lines_truncated(rt))) {
            c->stats.n_too_long++;
            continue;
        }
        if (all_space(a, na) || all_space(b, nb)) {
            c->stats.n_empty++;
            continue;
        }
        xs.n = ys.n = 0;
        cf_tokenizer_encode(src_tok, a, na, &xs);
        cf_tokenizer_encode(tgt_tok, b, nb, &ys);
        if (o->max_len > 0 && (xs.n > o->max_len || ys.n > o->max_len)) {
            c->stats.n_too_long++;
            continue;
        }
        cf_corpus_add(c, xs.data, xs.n, ys.data, ys.n);
        c->line[c->n - 1] = c->stats.n_lines;
        if (o->keep_text) {
            /* Kept text is scored (BLEU works on characters, and stops at a NUL): it must be text. */
            const char *sides[2] = {a, b};
            size_t lens[2] = {na, nb};
            for (int k = 0; k < 2 && ok; k++) {
                size_t bad = text_bad_offset((const unsigned char *)sides[k], lens[k]);
                if (bad == lens[k]) continue;
                const char *file = tsv ? o->tsv_path : k == 0 ? o->src_path : o->tgt_path;
                size_t col = bad + (size_t)(tsv && k == 1 ? b - a : 0) + 1;
                cf_error_set("%s:%lld: byte %zu is %s (evaluation text must be UTF-8: BLEU compares characters)", file,
                             (long long)cf_lines_lineno(rs), col, sides[k][bad] ? "not valid UTF-8" : "a NUL");
                ok = false;
            }
            if (!ok) break;
            add_text(&c->src_text, &c->cap_src_text, &c->src_text_off[c->n - 1], src_text_n, a, na);
            add_text(&c->tgt_text, &c->cap_tgt_text, &c->tgt_text_off[c->n - 1], tgt_text_n, b, nb);
            src_text_n += (int64_t)na + 1;
            tgt_text_n += (int64_t)nb + 1;
        }
    }
    cf_ids_free(&xs);
    cf_ids_free(&ys);
    cf_lines_close(rs);
    cf_lines_close(rt);
    if (!ok) {
        cf_corpus_free(c);
        return NULL;
    }
    if (o->log) {
        char line[256];
        cf_corpus_summary(c, o->max_len, line, sizeof line);
        if (tsv) fprintf(o->log, "corpus %s: %s\n", o->tsv_path, line);
        else fprintf(o->log, "corpus %s + %s: %s\n", o->src_path, o->tgt_path, line);
    }
    return c;
}
