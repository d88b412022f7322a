/* train/run.h - what train, eval, translate and info share: a config, its tokenizer, a model and
 * a step context, opened from a run directory or one of its checkpoints.
 *
 * Vocabularies: one tokenizer (RUN_DIR/tokenizer.json) when data.shared_vocab, else the source
 * one there and the target one in RUN_DIR/tokenizer.tgt.json; tgt_tok == src_tok when shared.
 *
 * Usage:
 *     cf_run r;
 *     if (cf_run_open(&r, "runs/toy", &state) != 0) { puts(cf_error_message()); return 2; }
 *     ... r.model, r.src_tok, r.tgt_tok, r.cfg ...
 *     cf_run_close(&r);
 */
#ifndef CF_TRAIN_RUN_H
#define CF_TRAIN_RUN_H

#include <cjson/cJSON.h>

#include "core/autograd.h"
#include "core/fileio.h"
#include "data/corpus.h"
#include "data/tokenizer.h"
#include "nn/transformer.h"
#include "train/config.h"
#include "translate/decode.h"

typedef struct cf_run {
    cf_config cfg;
    char *run_dir;          /* the run directory (parent of checkpoints/) */
    char *ckpt_dir;         /* the checkpoint loaded, or NULL */
    cf_tokenizer *src_tok, *tgt_tok;  /* the same tokenizer when the vocabulary is shared */
    cf_transformer *model;
    cf_ctx *ctx;
} cf_run;

/* Open RUN_DIR (its latest checkpoint) or a checkpoint directory: config from the checkpoint,
 * tokenizer from RUN_DIR/tokenizer.json, weights loaded. state (may be NULL) receives state.json. */
int cf_run_open(cf_run *r, const char *path, cJSON **state);
void cf_run_close(cf_run *r);

/* The decoding options of a config's decode section (beam = decode.beam; set .beam =
 * decode.eval_beam for validation BLEU). */
cf_decode_opts cf_config_decode_opts(const cf_decode_config *d);

/* Model config with the vocabulary sizes of the tokenizers filled in. */
cf_model_config cf_run_model_config(const cf_config *cfg, const cf_tokenizer *src_tok, const cf_tokenizer *tgt_tok);

/* Load RUN_DIR's tokenizer(s); *tgt = *src when shared. */
int cf_run_load_tokenizers(const char *run_dir, bool shared, cf_tokenizer **src, cf_tokenizer **tgt);
void cf_run_free_tokenizers(cf_tokenizer *src, cf_tokenizer *tgt);

/* Load a corpus. Training data drops pairs with more than data.max_len tokens on a side;
 * evaluation data only those the model cannot take (model.max_len - 1: <eos>/<bos> take one
 * position). Drops are counted in the log line. */
cf_corpus *cf_run_load_corpus(const cf_config *cfg, cf_tokenizer *src_tok, cf_tokenizer *tgt_tok, const char *src, const char *tgt,
                              const char *tsv, bool training, bool keep_text, FILE *log);

#endif
