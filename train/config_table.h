/* train/config_table.h - the run config's sections and the table of its keys, one row a key.
 *
 * Usage:
 *     cf_config c;
 *     cf_config_defaults(&c);                                      // every key's default
 *     const cf_config_key *k = cf_config_key_find("model.d_model");
 *     int64_t d = *(const int64_t *)((const char *)&c + k->offset);   // 256
 *
 * Parsing and writing (train/config.h), the "did you mean" suggestions, the resume check and
 * docs/config.md (train/config_doc.h) all walk this table, so a key added here is parsed,
 * written, suggested, checked and documented at once. The table knows nothing of JSON text.
 */
#ifndef CF_TRAIN_CONFIG_TABLE_H
#define CF_TRAIN_CONFIG_TABLE_H

#include <stddef.h>

#include "nn/config.h"
#include "optim/optim.h"
#include "optim/schedule.h"

/* What a run trains on: translation corpora (files and a tokenizer), or the course's synthetic
 * copy task (data/copy.h; train/copy_task.h runs it). */
typedef enum cf_data_task { CF_TASK_TRANSLATION, CF_TASK_COPY } cf_data_task;
const char *cf_data_task_name(cf_data_task t);

typedef struct cf_data_config {
    cf_data_task task;
    char *train_src, *train_tgt;    /* line-aligned files (plain or .gz), or ... */
    char *train_tsv;                /* ... one "src<TAB>tgt" file instead */
    char *valid_src, *valid_tgt, *valid_tsv;
    char *test_src, *test_tgt, *test_tsv;
    char *tokenizer;                /* kind to train ("wordpiece", "unigram"; NULL: bpe) or an existing tokenizer.json */
    int64_t vocab_size;             /* vocabulary when training the tokenizer */
    bool shared_vocab;              /* one tokenizer for both sides (required by model.share_embeddings) */
    int64_t max_len;                /* training pairs with more tokens on either side are dropped (counted) */
    /* task copy: vocabulary (<pad> 0, <bos> 1, <eos> vocab-1), symbols per sequence, sequences per
     * training epoch (new ones every epoch), validation sequences */
    int64_t copy_vocab, copy_len, copy_train, copy_valid;
} cf_data_config;

typedef struct cf_train_config {
    int64_t max_steps;              /* optimizer updates */
    int64_t batch_tokens;           /* token budget per micro-batch (padded source or target, whichever larger) */
    int64_t grad_accum;             /* micro-batches per update */
    double label_smoothing;
    double clip;                    /* global gradient norm; 0 disables */
    int64_t eval_every, save_every, log_every;
    int64_t keep_last;              /* checkpoints kept besides the best */
    int64_t threads;                /* 0: all cores this process may use */
    bool adapt_threads;             /* run on the cores other processes leave free (core/threads.h) */
    int64_t bucket_mb;              /* gradient bucket size of a data-parallel run (dist/dist.h) */
    int64_t patience;               /* evaluations without a better valid BLEU before stopping; 0: never */
    int64_t max_bad_steps;          /* consecutive non-finite updates before giving up */
    int64_t eval_max_sentences;     /* valid sentences decoded for BLEU at each evaluation; 0: all */
    bool exempt_embeddings;         /* no weight decay on embeddings */
} cf_train_config;

typedef struct cf_decode_config {
    int64_t beam;                   /* 1: greedy */
    double length_penalty;          /* GNMT alpha: score / ((5 + len) / 6)^alpha */
    double max_len_a;               /* max output tokens = floor(a * source length incl. <eos> + b) ... */
    int64_t max_len_b;              /* ... at most model.max_len - 1 (translate/decode.h) */
    int64_t eval_beam;              /* beam used for validation BLEU during training */
    int64_t batch_size;             /* sentences decoded together */
} cf_decode_config;

/* Synthetic training-step benchmark (`cformer bench`): fixed shapes, random ids, no padding.
 * The vocabulary is data.vocab_size; the trainer ignores this section. */
typedef struct cf_bench_config {
    int64_t batch_size;             /* sentence pairs per step */
    int64_t src_len, tgt_len;       /* tokens per source / target sentence (<= model.max_len) */
    int64_t steps;                  /* timed steps (the median is reported) */
    int64_t warmup;                 /* untimed steps first (the arena reaches its size) */
} cf_bench_config;

typedef struct cf_config {
    char *name;
    uint64_t seed;
    cf_data_config data;
    cf_model_config model;
    cf_optim_config optim;
    cf_schedule schedule;
    cf_train_config train;
    cf_decode_config decode;
    cf_bench_config bench;
    char *source_path;              /* the file it was read from, for messages */
} cf_config;

/* Defaults for every key (name stays NULL: parsing takes it from the file name). */
void cf_config_defaults(cf_config *c);
typedef enum cf_config_type {
    CF_CONFIG_INT,                  /* int64_t; the JSON number must be integral */
    CF_CONFIG_U64,                  /* uint64_t (the seed); integral, 0 .. 2^53 */
    CF_CONFIG_DOUBLE,
    CF_CONFIG_BOOL,                 /* JSON true / false */
    CF_CONFIG_STRING,               /* char *, never NULL after parsing */
    CF_CONFIG_PATH,                 /* char *, NULL (JSON null or "") when unset; must exist */
    CF_CONFIG_ENUM,                 /* an int-sized C enum, written as its name */
} cf_config_type;

typedef struct cf_config_key {
    const char *path;               /* "model.d_model": the JSON key path */
    cf_config_type type;
    size_t offset;                  /* of the field in cf_config */
    double lo, hi;                  /* numbers: allowed range ... */
    bool lo_open, hi_open;          /* ... excluding lo / hi when set */
    const char *(*enum_name)(int value);  /* ENUM: the name of value 0 .. n_enum-1 */
    const char *const *words;       /* PATH: NULL-terminated names that are values, not paths; the
                                     * first stands for unset (NULL) and is written instead of null */
    int n_enum;
    bool sets_shapes;               /* parameter or optimizer-state shapes follow from it: a resume cannot change it */
    bool run_only;                  /* how the run executes, not what it computes: not in checkpoint metadata */
    const char *default_doc;        /* docs/config.md's default when it is computed; NULL: the value */
    const char *doc;                /* one line for docs/config.md */
} cf_config_key;

/* The table, in docs/config.md's order. */
const cf_config_key *cf_config_keys(int *n);
/* The row for a key path, or NULL. */
const cf_config_key *cf_config_key_find(const char *path);

#endif
