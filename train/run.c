/* train/run.c - open a run directory or checkpoint for evaluation and decoding. */
#include "train/run.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/safetensors.h"
#include "train/checkpoint.h"

cf_decode_opts cf_config_decode_opts(const cf_decode_config *d) {
    cf_decode_opts o = cf_decode_opts_default();
    o.beam = d->beam;
    o.length_penalty = d->length_penalty;
    o.max_len_a = d->max_len_a;
    o.max_len_b = d->max_len_b;
    return o;
}

cf_model_config cf_run_model_config(const cf_config *cfg, const cf_tokenizer *src_tok, const cf_tokenizer *tgt_tok) {
    cf_model_config m = cfg->model;
    m.src_vocab = cf_tokenizer_vocab_size(src_tok);
    m.tgt_vocab = cf_tokenizer_vocab_size(tgt_tok);
    return m;
}

int cf_run_load_tokenizers(const char *run_dir, bool shared, cf_tokenizer **src, cf_tokenizer **tgt) {
    char *path = cf_path_join(run_dir, "tokenizer.json");
    *src = cf_tokenizer_load(path);
    free(path);
    *tgt = *src;
    if (!*src || shared) return *src ? 0 : -1;
    path = cf_path_join(run_dir, "tokenizer.tgt.json");
    *tgt = cf_tokenizer_load(path);
    free(path);
    if (*tgt) return 0;
    cf_tokenizer_free(*src);
    *src = NULL;
    return -1;
}

void cf_run_free_tokenizers(cf_tokenizer *src, cf_tokenizer *tgt) {
    if (tgt && tgt != src) cf_tokenizer_free(tgt);
    if (src) cf_tokenizer_free(src);
}

cf_corpus *cf_run_load_corpus(const cf_config *cfg, cf_tokenizer *src_tok, cf_tokenizer *tgt_tok, const char *src, const char *tgt,
                              const char *tsv, bool training, bool keep_text, FILE *log) {
    /* The source gets <eos> and the decoder input <bos>: one position each. */
    int64_t limit = cfg->model.max_len - 1;
    if (training && cfg->data.max_len > 0 && cfg->data.max_len < limit) limit = cfg->data.max_len;
    cf_corpus_opts o = {.src_path = src, .tgt_path = tgt, .tsv_path = tsv, .max_len = limit, .keep_text = keep_text,
                        .log = log};
    return cf_corpus_load2(&o, src_tok, tgt_tok);
}

int cf_run_open(cf_run *r, const char *path, cJSON **state) {
    memset(r, 0, sizeof *r);
    char *config_json = NULL;
    cJSON *st = NULL;
    r->ckpt_dir = cf_checkpoint_resolve(path);
    if (!r->ckpt_dir) return -1;
    /* step dir -> checkpoints/ -> run dir */
    char *parent = cf_path_dirname(r->ckpt_dir);
    r->run_dir = cf_path_dirname(parent);
    free(parent);

    /* First only the config (weights need a model of the right shape). */
    char *model_path = cf_path_join(r->ckpt_dir, "model.safetensors");
    cf_st_file *f = cf_st_open(model_path);
    free(model_path);
    if (!f) goto fail;
    const char *meta = cf_st_metadata(f, "config");
    if (!meta) {
        cf_error_set("%s/model.safetensors: no \"config\" in __metadata__", r->ckpt_dir);
        cf_st_close(f);
        goto fail;
    }
    config_json = cf_xstrdup(meta);
    cf_st_close(f);
    char *origin = cf_path_join(r->ckpt_dir, "model.safetensors");
    int rc = cf_config_parse_opts(&r->cfg, config_json, origin, 0, NULL, &(cf_config_opts){.check_paths = false});
    free(origin);
    if (rc != 0) goto fail;

    if (cf_run_load_tokenizers(r->run_dir, r->cfg.data.shared_vocab, &r->src_tok, &r->tgt_tok) != 0) goto fail;
    cf_model_config mc = cf_run_model_config(&r->cfg, r->src_tok, r->tgt_tok);
    r->model = cf_transformer_new(&mc, r->cfg.seed);
    if (!r->model) goto fail;
    if (cf_checkpoint_load(r->ckpt_dir, &r->model->params, NULL, &st, NULL) != 0) goto fail;
    r->ctx = cf_ctx_new(r->cfg.seed);
    r->ctx->training = false;
    cf_ctx_set_grad(r->ctx, false);
    free(config_json);
    if (state) *state = st;
    else cJSON_Delete(st);
    return 0;
fail:
    free(config_json);
    cJSON_Delete(st);
    cf_run_close(r);
    return -1;
}

void cf_run_close(cf_run *r) {
    cf_transformer_free(r->model);
    cf_run_free_tokenizers(r->src_tok, r->tgt_tok);
    cf_ctx_free(r->ctx);
    if (r->cfg.name || r->cfg.source_path) cf_config_free(&r->cfg);
    free(r->run_dir);
    free(r->ckpt_dir);
    memset(r, 0, sizeof *r);
}
