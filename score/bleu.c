/* score/bleu.c - BLEU and chrF statistics, scores and score lines as sacrebleu 2.x makes them.
 *
 * The floating-point expressions below follow sacrebleu's Python expressions operation by
 * operation (same operands, same order; Python floats are C doubles and math.log/exp are libm's),
 * so the printed digits agree even where a rounding boundary is close. This relies on no FMA
 * contraction, which -std=c11 guarantees in gcc (-ffp-contract=off outside GNU modes).
 */
#include "score/bleu.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

/* ---- n-gram counting ---------------------------------------------------------------------------
 * An n-gram is a byte range of a string that outlives the map: for words, tokens i..i+n-1 of the
 * single-spaced tokenized line (tokens contain no spaces, so the bytes determine the tuple); for
 * characters, code points i..i+n-1 (UTF-8 is prefix-free, so the bytes determine them too). Keys of
 * different orders can therefore share one map. The map never grows: it is sized for all n-grams. */
typedef struct ngram {
    const char *key; /* NULL: empty slot */
    uint32_t len;
    int32_t order;   /* n - 1 */
    int64_t count;
} ngram;

typedef struct ngram_map {
    ngram *slots;
    size_t mask;
} ngram_map;

static ngram_map map_new(size_t max_entries) {
    size_t cap = 16;
    while (cap < 2 * max_entries) cap *= 2;
    ngram_map m = {cf_xcalloc(cap, sizeof(ngram)), cap - 1};
    return m;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static ngram *map_slot(const ngram_map *m, const char *key, size_t len) {
    size_t i = (size_t)hash_bytes(key, len) & m->mask;
    for (;;) {
        ngram *e = &m->slots[i];
        if (!e->key || (e->len == len && memcmp(e->key, key, len) == 0)) return e;
        i = (i + 1) & m->mask;
    }
}

static ngram *map_add(ngram_map *m, const char *key, size_t len, int order, int64_t count) {
    ngram *e = map_slot(m, key, len);
    if (!e->key) {
        e->key = key;
        e->len = (uint32_t)len;
        e->order = order;
    }
    e->count += count;
    return e;
}

static int64_t map_get(const ngram_map *m, const char *key, size_t len) {
    const ngram *e = map_slot(m, key, len);
    return e->key ? e->count : 0;
}

/* ---- words -------------------------------------------------------------------------------------- */
typedef struct words {
    char *text;      /* tokenized, single-spaced */
    size_t *start;   /* [n] byte offset of each token */
    size_t *end;     /* [n] one past its last byte */
    int64_t n;
} words;

/* BLEU's _preprocess_segment: sent.rstrip() then the 13a tokenizer; then str.split(). */
static words words_of(const char *sent) {
    size_t len = strlen(sent);
    while (len > 0) { /* rstrip: back over trailing Python whitespace, one code point at a time */
        size_t k = len - 1;
        while (k > 0 && ((unsigned char)sent[k] & 0xc0) == 0x80) k--;
        if (!cf_py_space_len(sent + k)) break;
        len = k;
    }
    char *stripped = cf_xmalloc(len + 1);
    memcpy(stripped, sent, len);
    stripped[len] = 0;
    words w = {cf_tokenize_13a(stripped), NULL, NULL, 0};
    free(stripped);
    size_t n_bytes = strlen(w.text);
    int64_t count = n_bytes ? 1 : 0;
    for (size_t i = 0; i < n_bytes; i++) count += w.text[i] == ' ';
    w.start = cf_xmalloc((size_t)(count ? count : 1) * sizeof(size_t));
    w.end = cf_xmalloc((size_t)(count ? count : 1) * sizeof(size_t));
    size_t pos = 0;
    for (int64_t t = 0; t < count; t++) {
        w.start[t] = pos;
        while (pos < n_bytes && w.text[pos] != ' ') pos++;
        w.end[t] = pos++;
    }
    w.n = count;
    return w;
}

static void words_free(words *w) {
    free(w->text);
    free(w->start);
    free(w->end);
}

/* extract_all_word_ngrams(line, 1, 4) as counts in a map. */
static ngram_map word_ngrams(const words *w) {
    ngram_map m = map_new((size_t)w->n * CF_BLEU_MAX_ORDER);
    for (int n = 1; n <= CF_BLEU_MAX_ORDER; n++)
        for (int64_t i = 0; i + n <= w->n; i++)
            map_add(&m, w->text + w->start[i], w->end[i + n - 1] - w->start[i], n - 1, 1);
    return m;
}

static bool check_utf8(const char *what, const char *s) {
    size_t bad;
    if (cf_utf8_valid(s, strlen(s), &bad)) return true;
    cf_error_set("%s is not valid UTF-8 (byte %zu)", what, bad);
    return false;
}

static bool check_segment(const char *hyp, const char *const *refs, int n_refs) {
    if (!check_utf8("hypothesis", hyp)) return false;
    for (int r = 0; r < n_refs; r++)
        if (refs[r] && !check_utf8("reference", refs[r])) return false;
    return true;
}

bool cf_bleu_stats_add(cf_bleu_stats *s, const char *hyp, const char *const *refs, int n_refs) {
    if (!check_segment(hyp, refs, n_refs)) return false;

    /* _extract_reference_info: per n-gram the maximum count over the references ("clipping"
     * against the max); every reference length, for the closest-length rule. */
    words *rw = cf_xcalloc((size_t)(n_refs > 0 ? n_refs : 1), sizeof(words));
    int64_t ref_total = 0;
    for (int r = 0; r < n_refs; r++)
        if (refs[r]) {
            rw[r] = words_of(refs[r]);
            ref_total += rw[r].n;
        }
    ngram_map ref_max = map_new((size_t)ref_total * CF_BLEU_MAX_ORDER);
    for (int r = 0; r < n_refs; r++) {
        if (!refs[r]) continue;
        ngram_map this_ref = word_ngrams(&rw[r]);
        for (size_t i = 0; i <= this_ref.mask; i++) {
            const ngram *e = &this_ref.slots[i];
            if (!e->key) continue;
            ngram *m = map_add(&ref_max, e->key, e->len, e->order, 0);
            if (e->count > m->count) m->count = e->count;
        }
        free(this_ref.slots);
    }

    words hw = words_of(hyp);

    /* _get_closest_ref_len: smallest |hyp_len - ref_len|, ties to the shorter reference. With no
     * reference at all sacrebleu's loop leaves -1; we keep that quirk out and use 0. */
    int64_t closest_diff = -1, closest_len = 0;
    for (int r = 0; r < n_refs; r++) {
        if (!refs[r]) continue;
        int64_t diff = llabs(hw.n - rw[r].n);
        if (closest_diff == -1 || diff < closest_diff) {
            closest_diff = diff;
            closest_len = rw[r].n;
        } else if (diff == closest_diff && rw[r].n < closest_len) {
            closest_len = rw[r].n;
        }
    }

    /* _compute_segment_statistics: totals of hypothesis n-grams, matches clipped at ref_max. */
    ngram_map hyp_ngrams = word_ngrams(&hw);
    for (size_t i = 0; i <= hyp_ngrams.mask; i++) {
        const ngram *e = &hyp_ngrams.slots[i];
        if (!e->key) continue;
        int64_t in_ref = map_get(&ref_max, e->key, e->len);
        s->total[e->order] += e->count;
        s->correct[e->order] += e->count < in_ref ? e->count : in_ref;
    }
    s->hyp_len += hw.n;
    s->ref_len += closest_len;
    s->n_segments++;

    free(hyp_ngrams.slots);
    free(ref_max.slots);
    words_free(&hw);
    for (int r = 0; r < n_refs; r++)
        if (refs[r]) words_free(&rw[r]);
    free(rw);
    return true;
}

void cf_bleu_stats_merge(cf_bleu_stats *into, const cf_bleu_stats *from) {
    into->hyp_len += from->hyp_len;
    into->ref_len += from->ref_len;
    for (int n = 0; n < CF_BLEU_MAX_ORDER; n++) {
        into->correct[n] += from->correct[n];
        into->total[n] += from->total[n];
    }
    into->n_segments += from->n_segments;
}

/* utils.my_log: log floored to -9999999999 at 0. */
static double my_log(double x) { return x == 0.0 ? -9999999999.0 : log(x); }

/* BLEU.compute_bleu with smooth_method='exp' (mteval's NIST smoothing). */
cf_bleu_score cf_bleu_compute(const cf_bleu_stats *s, bool effective_order) {
    cf_bleu_score b = {0};
    b.hyp_len = s->hyp_len;
    b.ref_len = s->ref_len;
    b.ratio = s->ref_len ? (double)s->hyp_len / (double)s->ref_len : 0.0;
    /* Brevity penalty: exp(1 - ref_len / sys_len) when shorter, 0 for an empty system. */
    b.bp = 1.0;
    if (s->hyp_len < s->ref_len) b.bp = s->hyp_len > 0 ? exp(1.0 - (double)s->ref_len / (double)s->hyp_len) : 0.0;

    /* No match of any order: score 0 and all precisions 0, whatever the smoothing (#141). */
    bool any = false;
    for (int n = 0; n < CF_BLEU_MAX_ORDER; n++) any |= s->correct[n] != 0;
    if (!any) return b;

    double smooth_mteval = 1.0;
    int eff_order = CF_BLEU_MAX_ORDER;
    for (int n = 1; n <= CF_BLEU_MAX_ORDER; n++) {
        if (s->total[n - 1] == 0) break; /* later precisions stay 0 (and log-floor the score) */
        if (effective_order) eff_order = n;
        if (s->correct[n - 1] == 0) {
            smooth_mteval *= 2; /* exp smoothing: 1/2, 1/4, ... of a match for each zero order */
            b.precisions[n - 1] = 100.0 / (smooth_mteval * (double)s->total[n - 1]);
        } else {
            b.precisions[n - 1] = 100.0 * (double)s->correct[n - 1] / (double)s->total[n - 1];
        }
    }
    /* bp * exp(sum(my_log(p) for p in precisions[:eff_order]) / eff_order), summed left to right */
    double sum = 0.0;
    for (int n = 0; n < eff_order; n++) sum += my_log(b.precisions[n]);
    b.score = b.bp * exp(sum / eff_order);
    return b;
}

/* BLEUScore.format(): score with width 2, precisions with 1 decimal, BP and ratio with 3. Python's
 * f"{x:.2f}" and glibc's "%.2f" both round the exact binary value half-to-even. */
int cf_bleu_format(const cf_bleu_score *b, char *buf, size_t size) {
    return snprintf(buf, size, "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %lld ref_len = %lld)",
                    b->score, b->precisions[0], b->precisions[1], b->precisions[2], b->precisions[3], b->bp, b->ratio,
                    (long long)b->hyp_len, (long long)b->ref_len);
}

/* ---- chrF --------------------------------------------------------------------------------------- */
typedef struct chars {
    char *text;    /* the line without any Python whitespace: ''.join(line.split()) */
    size_t *start; /* [n + 1] byte offset of each code point, and the end */
    int64_t n;     /* code points */
} chars;

static chars chars_of(const char *line) {
    size_t len = strlen(line);
    chars c = {cf_xmalloc(len + 1), cf_xmalloc((len + 1) * sizeof(size_t)), 0};
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t w = cf_py_space_len(line + i);
        if (w) {
            i += w;
            continue;
        }
        c.start[c.n++] = o;
        do c.text[o++] = line[i++];
        while (i < len && ((unsigned char)line[i] & 0xc0) == 0x80);
    }
    c.start[c.n] = o;
    c.text[o] = 0;
    return c;
}

/* extract_all_char_ngrams(line, 6): counts of code-point n-grams, n = 1..6. */
static ngram_map char_ngrams(const chars *c) {
    ngram_map m = map_new((size_t)c->n * CF_CHRF_CHAR_ORDER);
    for (int n = 1; n <= CF_CHRF_CHAR_ORDER; n++)
        for (int64_t i = 0; i + n <= c->n; i++)
            map_add(&m, c->text + c->start[i], c->start[i + n] - c->start[i], n - 1, 1);
    return m;
}

/* CHRF._compute_f_score without eps smoothing: average precision and recall over the orders where
 * both the hypothesis and the reference have n-grams, then F-beta of the averages. */
static double chrf_f_score(const int64_t counts[CF_CHRF_CHAR_ORDER][3]) {
    const double factor = CF_CHRF_BETA * CF_CHRF_BETA;
    double avg_prec = 0.0, avg_rec = 0.0;
    int effective_order = 0;
    for (int i = 0; i < CF_CHRF_CHAR_ORDER; i++) {
        int64_t n_hyp = counts[i][0], n_ref = counts[i][1], n_match = counts[i][2];
        if (n_hyp > 0 && n_ref > 0) {
            avg_prec += (double)n_match / (double)n_hyp;
            avg_rec += (double)n_match / (double)n_ref;
            effective_order++;
        }
    }
    if (effective_order == 0) return 0.0;
    avg_prec /= effective_order;
    avg_rec /= effective_order;
    if (avg_prec + avg_rec == 0.0) return 0.0;
    double score = (1 + factor) * avg_prec * avg_rec; /* ((1 + factor) * p) * r, as Python evaluates */
    score /= factor * avg_prec + avg_rec;
    return 100 * score;
}

bool cf_chrf_stats_add(cf_chrf_stats *s, const char *hyp, const char *const *refs, int n_refs) {
    if (!check_segment(hyp, refs, n_refs)) return false;
    chars hc = chars_of(hyp);
    ngram_map hyp_ngrams = char_ngrams(&hc);

    /* _compute_segment_statistics: the statistics of the reference with the best sentence-level
     * F score (strictly better; the first one wins ties). */
    int64_t best[CF_CHRF_CHAR_ORDER][3] = {{0}};
    double best_f = -1.0;
    for (int r = 0; r < n_refs; r++) {
        if (!refs[r]) continue;
        chars rc = chars_of(refs[r]);
        ngram_map ref_ngrams = char_ngrams(&rc);
        int64_t st[CF_CHRF_CHAR_ORDER][3];
        for (int n = 1; n <= CF_CHRF_CHAR_ORDER; n++) {
            int64_t n_hyp = hc.n - n + 1 > 0 ? hc.n - n + 1 : 0;
            int64_t n_ref = rc.n - n + 1 > 0 ? rc.n - n + 1 : 0;
            /* _get_match_statistics: hypothesis n-grams count only if the reference has some. */
            st[n - 1][0] = n_ref > 0 ? n_hyp : 0;
            st[n - 1][1] = n_ref;
            st[n - 1][2] = 0;
        }
        for (size_t i = 0; i <= hyp_ngrams.mask; i++) {
            const ngram *e = &hyp_ngrams.slots[i];
            if (!e->key) continue;
            int64_t in_ref = map_get(&ref_ngrams, e->key, e->len);
            st[e->order][2] += e->count < in_ref ? e->count : in_ref;
        }
        double f = chrf_f_score((const int64_t(*)[3])st);
        if (f > best_f) {
            best_f = f;
            memcpy(best, st, sizeof best);
        }
        free(ref_ngrams.slots);
        free(rc.text);
        free(rc.start);
    }
    for (int n = 0; n < CF_CHRF_CHAR_ORDER; n++)
        for (int k = 0; k < 3; k++) s->counts[n][k] += best[n][k];
    s->n_segments++;
    free(hyp_ngrams.slots);
    free(hc.text);
    free(hc.start);
    return true;
}

void cf_chrf_stats_merge(cf_chrf_stats *into, const cf_chrf_stats *from) {
    for (int n = 0; n < CF_CHRF_CHAR_ORDER; n++)
        for (int k = 0; k < 3; k++) into->counts[n][k] += from->counts[n][k];
    into->n_segments += from->n_segments;
}

double cf_chrf_compute(const cf_chrf_stats *s) { return chrf_f_score((const int64_t(*)[3])s->counts); }

/* CHRFScore: name f'chrF{beta}' ('+' per word order, none here), score with width 2. */
int cf_chrf_format(double chrf, char *buf, size_t size) {
    return snprintf(buf, size, "chrF%d = %.2f", CF_CHRF_BETA, chrf);
}

/* ---- reading files as the sacrebleu CLI does ----------------------------------------------------- */
static char *slurp(FILE *f, size_t *n) {
    size_t cap = 1 << 16, len = 0;
    char *p = cf_xmalloc(cap);
    for (;;) {
        if (len == cap) {
            char *q = cf_xmalloc(cap * 2);
            memcpy(q, p, len);
            free(p);
            p = q;
            cap *= 2;
        }
        size_t got = fread(p + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(p);
        return NULL;
    }
    *n = len;
    return p;
}

char **cf_bleu_read_lines(const char *path, bool universal_newlines, int64_t *n_lines) {
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        cf_error_set("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t len = 0;
    char *data = slurp(f, &len);
    int read_errno = errno;
    if (!is_stdin) fclose(f);
    if (!data) {
        cf_error_set("cannot read %s: %s", name, strerror(read_errno));
        return NULL;
    }

    /* Count lines first: a line ends after "\n" (or "\r", "\r\n" in universal mode); a last
     * piece without terminator is a line too; an empty file has none. */
    int64_t count = 0;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') count++;
        else if (universal_newlines && data[i] == '\r' && !(i + 1 < len && data[i + 1] == '\n')) count++;
    }
    if (len > 0 && data[len - 1] != '\n' && !(universal_newlines && data[len - 1] == '\r')) count++;

    char **lines = cf_xcalloc((size_t)(count ? count : 1), sizeof(char *));
    size_t pos = 0;
    for (int64_t l = 0; l < count; l++) {
        size_t end = pos;
        while (end < len && data[end] != '\n' && !(universal_newlines && data[end] == '\r')) end++;
        size_t next = end < len ? end + 1 : end;
        if (universal_newlines && end < len && data[end] == '\r' && end + 1 < len && data[end + 1] == '\n') next++;
        size_t bad;
        const char *why = NULL;
        if (memchr(data + pos, 0, end - pos)) why = "contains a NUL byte";
        else if (!cf_utf8_valid(data + pos, end - pos, &bad)) why = "is not valid UTF-8";
        if (why) {
            cf_error_set("%s: line %lld %s", name, (long long)(l + 1), why);
            cf_bleu_lines_free(lines, l);
            free(data);
            return NULL;
        }
        /* line.rstrip(): drop trailing Python whitespace (this also drops a "\r" before "\n"). */
        size_t stop = end;
        while (stop > pos) {
            size_t k = stop - 1;
            while (k > pos && ((unsigned char)data[k] & 0xc0) == 0x80) k--;
            if (!cf_py_space_len(data + k) || k + cf_py_space_len(data + k) != stop) break;
            stop = k;
        }
        lines[l] = cf_xmalloc(stop - pos + 1);
        memcpy(lines[l], data + pos, stop - pos);
        lines[l][stop - pos] = 0;
        pos = next;
    }
    free(data);
    *n_lines = count;
    return lines;
}

void cf_bleu_lines_free(char **lines, int64_t n_lines) {
    if (!lines) return;
    for (int64_t i = 0; i < n_lines; i++) free(lines[i]);
    free(lines);
}
