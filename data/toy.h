/* data/toy.h - the toy German -> English translation set (a small grammar with real words).
 *
 * Usage:
 *     cf_toy_opts o = cf_toy_defaults();          // 20000 train, 500 valid, 500 test
 *     o.seed = 1;
 *     if (cf_toy_write("data/toy", &o) != 0) fprintf(stderr, "%s\n", cf_error_message());
 *     // -> data/toy/{train,valid,test}.{de,en}, one sentence a line
 *
 *     cf_rng r = cf_rng_init(1, CF_RNG_STREAM_DATA);
 *     char de[512], en[512];
 *     cf_toy_sentence(&r, de, sizeof de, en, sizeof en);   // one random pair
 *
 * The English side is a deterministic function of the German side (one canonical translation),
 * so a perfect model scores BLEU 100. The grammar needs reordering (perfect participles and
 * subordinate verbs at the end, V2 inversion, genitive possessors moved before the noun) and
 * agreement (article and adjective endings by gender/case/number, verb endings by person). Output
 * is a pure function of the seed. See docs/data.md for the grammar and examples.
 */
#ifndef CF_TOY_H
#define CF_TOY_H

#include <stdint.h>

#include "core/rng.h"

typedef struct cf_toy_opts {
    uint64_t seed;
    int64_t n_train, n_valid, n_test;
} cf_toy_opts;

cf_toy_opts cf_toy_defaults(void);
/* Write the six files into dir (created if missing). Sources are unique across all splits, so no
 * valid/test source occurs in train. 0 on success, -1 + error naming the file. */
int cf_toy_write(const char *dir, const cf_toy_opts *o);
/* One sentence pair (3-20 words a side, punctuation not counted), NUL-terminated. */
void cf_toy_sentence(cf_rng *r, char *de, size_t de_cap, char *en, size_t en_cap);

#endif
