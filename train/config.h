/* train/config.h - one JSON file describes a run (docs/config.md lists every key and default).
 *
 * Usage:
 *     cf_config cfg;
 *     if (cf_config_load(&cfg, "configs/toy.json", n_overrides, overrides) != 0) {
 *         fprintf(stderr, "error: %s\n", cf_error_message());   // names file, key path, value
 *         return 2;
 *     }
 *     char *json = cf_config_to_json(&cfg);                      // the effective config
 *     cf_config_free(&cfg);
 *
 * overrides are "key.path=value" strings (--set); value is parsed as JSON when it parses
 * (numbers, true/false, quoted strings) and as a bare string otherwise.
 */
#ifndef CF_TRAIN_CONFIG_H
#define CF_TRAIN_CONFIG_H

#include "nn/config.h"
#include "optim/optim.h"
#include "optim/schedule.h"

typedef struct cf_data_config {
    char *train_src, *train_tgt;    /* line-aligned files (plain or .gz), or ... */
    char *train_tsv;                /* ... one "src<TAB>tgt" file instead */
    char *valid_src, *valid_tgt, *valid_tsv;
    char *test_src, *test_tgt, *test_tsv;
    char *tokenizer;                /* existing tokenizer.json to use; NULL: train one on the training data */
    int64_t vocab_size;             /* BPE vocabulary when training the tokenizer */
    bool shared_vocab;              /* one tokenizer for both sides (required by model.share_embeddings) */
    int64_t max_len;                /* training pairs with more tokens on either side are dropped (counted) */
} cf_data_config;

typedef struct cf_train_config {
    int64_t max_steps;              /* optimizer updates */
    int64_t batch_tokens;           /* token budget per micro-batch (padded source or target, whichever larger) */
    int64_t grad_accum;             /* micro-batches per update */
    double label_smoothing;
    double clip;                    /* global gradient norm; 0 disables */
    int64_t eval_every, save_every, log_every;
    int64_t keep_last;              /* checkpoints kept besides the best */
    int64_t threads;                /* 0: all cores */
    int64_t patience;               /* evaluations without a better valid BLEU before stopping; 0: never */
    int64_t max_bad_steps;          /* consecutive non-finite updates before giving up */
    int64_t eval_max_sentences;     /* valid sentences decoded for BLEU at each evaluation; 0: all */
    bool exempt_embeddings;         /* no weight decay on embeddings */
} cf_train_config;

typedef struct cf_decode_config {
    int64_t beam;                   /* 1: greedy */
    double length_penalty;          /* GNMT alpha: score / ((5 + len) / 6)^alpha */
    double max_len_a;               /* max output length = a * source length + b (capped by model.max_len) */
    int64_t max_len_b;
    int64_t eval_beam;              /* beam used for validation BLEU during training */
    int64_t batch_size;             /* sentences decoded together */
} cf_decode_config;

typedef struct cf_config {
    char *name;
    uint64_t seed;
    cf_data_config data;
    cf_model_config model;
    cf_optim_config optim;
    cf_schedule schedule;
    cf_train_config train;
    cf_decode_config decode;
    char *source_path;              /* the file it was read from, for messages */
} cf_config;

/* Defaults for every key. */
void cf_config_defaults(cf_config *c);
/* Read, apply overrides, validate. 0, or -1 with a message naming the file, key path and value. */
int cf_config_load(cf_config *c, const char *path, int n_overrides, char *const *overrides);
/* Same from a JSON string (e.g. a run directory's config.json or a checkpoint's metadata). */
int cf_config_parse(cf_config *c, const char *json, const char *origin, int n_overrides, char *const *overrides);
/* The effective config as pretty JSON (malloc'ed); every key present, paths absolute. */
char *cf_config_to_json(const cf_config *c);
void cf_config_free(cf_config *c);

#endif
