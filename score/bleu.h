/* score/bleu.h - corpus BLEU and chrF, computed exactly as sacrebleu 2.x computes them by default.
 *
 * Usage:
 *     cf_bleu_stats bleu = {0};
 *     cf_chrf_stats chrf = {0};
 *     for (int i = 0; i < n; i++) {                    // hyps[i], and its references
 *         const char *refs[2] = {ref_a[i], ref_b[i]};
 *         if (!cf_bleu_stats_add(&bleu, hyps[i], refs, 2) || !cf_chrf_stats_add(&chrf, hyps[i], refs, 2))
 *             fprintf(stderr, "error: %s\n", cf_error_message());   // invalid UTF-8
 *     }
 *     char line[CF_BLEU_LINE_MAX];
 *     cf_bleu_score s = cf_bleu_compute(&bleu, false);
 *     cf_bleu_format(&s, line, sizeof line);  // "BLEU = 48.89 85.7/66.7/40.0/25.0 (BP = 1.000 ...)"
 *     cf_chrf_format(cf_chrf_compute(&chrf), line, sizeof line);              // "chrF2 = 61.20"
 *
 * The numbers equal those of `sacrebleu REF... -i HYP` (BLEU: 13a tokenizer, mixed case, exp
 * smoothing, max order 4, closest reference length; chrF: char order 6, word order 0, beta 2, no
 * whitespace) and the lines equal str() of sacrebleu's score objects. docs/bleu.md lists the rules;
 * tests/fixtures/bleu/ holds sacrebleu's own output on hostile inputs.
 *
 * Strings are NUL-terminated UTF-8 (sacrebleu works on Python str, so invalid UTF-8 is an error).
 * "Whitespace" always means Python's str.isspace(), not C's isspace().
 */
#ifndef CF_BLEU_H
#define CF_BLEU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CF_BLEU_MAX_ORDER 4 /* sacrebleu's MAX_NGRAM_ORDER */
#define CF_CHRF_CHAR_ORDER 6 /* CHRF.CHAR_ORDER; word order 0 (plain chrF, not chrF++) */
#define CF_CHRF_BETA 2
#define CF_BLEU_LINE_MAX 256 /* enough for any formatted line */

/* Sufficient statistics of corpus BLEU: sums over segments (sacrebleu's per-segment stats list). */
typedef struct cf_bleu_stats {
    int64_t hyp_len, ref_len; /* tokens; ref_len sums the closest reference length per segment */
    int64_t correct[CF_BLEU_MAX_ORDER], total[CF_BLEU_MAX_ORDER];
    int64_t n_segments;
} cf_bleu_stats;

typedef struct cf_bleu_score {
    double score;                         /* 0..100 */
    double precisions[CF_BLEU_MAX_ORDER]; /* percent; smoothed as sacrebleu does */
    double bp, ratio;                     /* brevity penalty, hyp_len / ref_len (0 if ref_len is 0) */
    int64_t hyp_len, ref_len;
} cf_bleu_score;

/* Sums of [hyp n-grams, ref n-grams, matches] per character order, over segments. */
typedef struct cf_chrf_stats {
    int64_t counts[CF_CHRF_CHAR_ORDER][3];
    int64_t n_segments;
} cf_chrf_stats;

/* Add one segment: a hypothesis and its n_refs >= 1 references (a NULL reference is skipped, as
 * sacrebleu skips None; "" is a real, empty reference). Returns false (cf_error_message() says
 * why, stats unchanged) if a string is not valid UTF-8. */
bool cf_bleu_stats_add(cf_bleu_stats *s, const char *hyp, const char *const *refs, int n_refs);
bool cf_chrf_stats_add(cf_chrf_stats *s, const char *hyp, const char *const *refs, int n_refs);
/* Element-wise sum (e.g. to merge per-thread accumulators). */
void cf_bleu_stats_merge(cf_bleu_stats *into, const cf_bleu_stats *from);
void cf_chrf_stats_merge(cf_chrf_stats *into, const cf_chrf_stats *from);

/* Corpus BLEU from the statistics. effective_order=false is sacrebleu's corpus default; sentence
 * BLEU (sacrebleu.sentence_bleu) is the statistics of one segment with effective_order=true. */
cf_bleu_score cf_bleu_compute(const cf_bleu_stats *s, bool effective_order);
/* chrF2 in 0..100 (sacrebleu's default effective-order averaging, not eps smoothing). */
double cf_chrf_compute(const cf_chrf_stats *s);

/* Format as str(score) in sacrebleu prints it; return snprintf's value. */
int cf_bleu_format(const cf_bleu_score *b, char *buf, size_t size);
int cf_chrf_format(double chrf, char *buf, size_t size);

/* The 13a tokenizer (mteval-v13a as sacrebleu's Tokenizer13a()(line)): a new malloc'd string of
 * tokens separated by single spaces. BLEU applies it to the right-stripped line. Expects valid UTF-8. */
char *cf_tokenize_13a(const char *line);

/* Number of bytes of the code point at s if Python's str.isspace() is true for it, else 0. */
size_t cf_py_space_len(const char *s);
/* Strict UTF-8 check as Python's decoder does it (no overlongs, surrogates or > U+10FFFF); on
 * failure *bad_offset (if non-NULL) is the byte offset of the first invalid sequence. */
bool cf_utf8_valid(const char *s, size_t n, size_t *bad_offset);

/* Read a text file's lines as the sacrebleu CLI does: split after each "\n" only (a final line
 * without "\n" counts; "\r", "\x1c", U+2028 do not end lines) and strip trailing whitespace from
 * each. universal_newlines=true splits at "\r\n", "\r" and "\n" instead (how sacrebleu reads
 * stdin). path "-" reads stdin. Returns a malloc'd array of *n_lines malloc'd strings (free with
 * cf_bleu_lines_free), or NULL with cf_error_message() naming the file (and line, for invalid
 * UTF-8 or a NUL byte). */
char **cf_bleu_read_lines(const char *path, bool universal_newlines, int64_t *n_lines);
void cf_bleu_lines_free(char **lines, int64_t n_lines);

#endif
