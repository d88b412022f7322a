/* cli/cmd_model.c - `cformer eval`, `cformer translate` and `cformer info` on a trained run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "core/fileio.h"
#include "core/threads.h"
#include "data/lines.h"
#include "train/evaluate.h"
#include "train/run.h"

typedef struct model_args {
    const char *path;
    const char *split;
    int64_t beam;               /* 0: the config's */
    const char *hyp_out;
    int threads;
} model_args;

/* Shared option parsing; returns -1 (printed usage, exit 0) for --help, 2 for errors, 0 ok. */
static int parse(int argc, char **argv, const char *usage, bool allow_split, model_args *a) {
    memset(a, 0, sizeof *a);
    a->split = "valid";
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage, stdout);
            return -1;
        } else if (strcmp(arg, "--beam") == 0 && i + 1 < argc) {
            char *end;
            a->beam = strtoll(argv[++i], &end, 10);
            if (*end || a->beam < 1) {
                fprintf(stderr, "error: --beam needs a positive integer, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(arg, "--threads") == 0 && i + 1 < argc) {
            char *end;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 0 || v > 4096) {
                fprintf(stderr, "error: --threads needs an integer in [0, 4096] (0: every CPU), got '%s'\n", argv[i]);
                return 2;
            }
            a->threads = (int)v;
        } else if (allow_split && strcmp(arg, "--split") == 0 && i + 1 < argc) {
            a->split = argv[++i];
            if (strcmp(a->split, "valid") != 0 && strcmp(a->split, "test") != 0) {
                fprintf(stderr, "error: --split must be valid or test, got '%s'\n", a->split);
                return 2;
            }
        } else if (allow_split && strcmp(arg, "--hyp-out") == 0 && i + 1 < argc) {
            a->hyp_out = argv[++i];
        } else if (arg[0] == '-' || a->path) {
            fprintf(stderr, "error: unexpected argument '%s'\n%s", arg, usage);
            return 2;
        } else {
            a->path = arg;
        }
    }
    if (!a->path) {
        fprintf(stderr, "error: missing RUN_DIR or CKPT_DIR\n%s", usage);
        return 2;
    }
    if (cf_threads_init(a->threads) != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        return 1;
    }
    cf_threads_set_adaptive(true); /* between batches: the free cores, same results */
    return 0;
}

static const char *eval_usage =
    "usage: cformer eval RUN_DIR|CKPT_DIR [--split valid|test] [--beam N] [--hyp-out FILE] [--threads N]\n"
    "\n"
    "Loss, perplexity and sacrebleu-exact BLEU of a checkpoint (a run directory means its latest) on\n"
    "the run config's valid or test data. Hypotheses go to FILE (default CKPT_DIR/<split>.hyp).\n";

int cf_cmd_eval(int argc, char **argv) {
    model_args a;
    int rc = parse(argc, argv, eval_usage, true, &a);
    if (rc) return rc < 0 ? 0 : rc;
    cf_run r;
    if (cf_run_open(&r, a.path, NULL) != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        return 2;
    }
    const cf_data_config *d = &r.cfg.data;
    bool test = strcmp(a.split, "test") == 0;
    const char *src = test ? d->test_src : d->valid_src, *tgt = test ? d->test_tgt : d->valid_tgt,
               *tsv = test ? d->test_tsv : d->valid_tsv;
    if (!src && !tsv) {
        fprintf(stderr, "error: the run's config has no %s data (data.%s_src / data.%s_tsv)\n", a.split, a.split,
                a.split);
        cf_run_close(&r);
        return 2;
    }
    printf("%s: ", a.split);
    cf_corpus *c = cf_run_load_corpus(&r.cfg, r.src_tok, r.tgt_tok, src, tgt, tsv, false, true, stdout);
    if (!c) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        cf_run_close(&r);
        return 2;
    }
    cf_eval_loss_result l;
    if (cf_eval_loss(r.ctx, r.model, c, r.cfg.train.batch_tokens, &l) != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        cf_corpus_free(c);
        cf_run_close(&r);
        return 1;
    }
    cf_decode_opts o = cf_config_decode_opts(&r.cfg.decode);
    if (a.beam) o.beam = a.beam;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char **hyps = cf_translate_corpus(r.ctx, r.model, r.tgt_tok, c, 0, &o, r.cfg.decode.batch_size);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!hyps) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        cf_corpus_free(c);
        cf_run_close(&r);
        return 1;
    }
    cf_bleu_score b = cf_eval_bleu(c, hyps, c->n);
    char line[CF_BLEU_LINE_MAX], *hyp_path = NULL;
    cf_bleu_format(&b, line, sizeof line);
    if (a.hyp_out) {
        hyp_path = cf_xstrdup(a.hyp_out);
    } else {
        char name[32];
        snprintf(name, sizeof name, "%s.hyp", a.split);
        hyp_path = cf_path_join(r.ckpt_dir, name);
    }
    /* Atomic and checked: a hypothesis file is either complete or not there (and then said so). */
    int written = cf_write_lines_atomic(hyp_path, (const char *const *)hyps, c->n);
    if (written != 0) fprintf(stderr, "error: %s\n", cf_error_message());
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("checkpoint: %s\n", r.ckpt_dir);
    printf("loss %.4f | perplexity %.2f | %lld sentences, %lld target tokens\n", l.loss, l.ppl,
           (long long)l.n_sentences, (long long)l.n_tokens);
    printf("beam %lld, length penalty %.2f: %.1f sentences/s; %s%s\n", (long long)o.beam, o.length_penalty,
           secs > 0 ? (double)c->n / secs : 0, written == 0 ? "hypotheses in " : "hypotheses NOT written: ",
           hyp_path);
    printf("%s\n", line);
    free(hyp_path);
    cf_strings_free(hyps, c->n);
    cf_corpus_free(c);
    cf_run_close(&r);
    return written == 0 ? 0 : 1;
}

static const char *translate_usage =
    "usage: cformer translate RUN_DIR|CKPT_DIR [--beam N] [--threads N] < source.txt > translations.txt\n"
    "\n"
    "Translates stdin, one sentence per line, to stdout: exactly one line out per line in, whatever\n"
    "the bytes (docs/decoding.md, \"Text out\"). Lines are read and translated 4096 at a time; a line\n"
    "longer than 16 MiB is cut to its first 16 MiB (the model reads at most model.max_len - 1 tokens).\n";

enum { TRANSLATE_CHUNK = 4096 }; /* lines held at once: memory is bounded whatever stdin holds */

/* Translates and prints one chunk of encoded lines; 0 or -1 (message set). */
static int translate_chunk(cf_run *r, const cf_decode_opts *o, cf_ids *ids, int64_t n) {
    const int32_t **src = cf_xmalloc((size_t)(n ? n : 1) * sizeof *src);
    int64_t *lens = cf_xmalloc((size_t)(n ? n : 1) * sizeof *lens);
    for (int64_t i = 0; i < n; i++) {
        src[i] = ids[i].data;
        lens[i] = ids[i].n;
    }
    char **out = cf_translate_ids(r->ctx, r->model, r->tgt_tok, src, lens, n, o, r->cfg.decode.batch_size);
    free(src);
    free(lens);
    if (!out) return -1;
    for (int64_t i = 0; i < n; i++) { /* cf_hyp_line: no newline or NUL inside, so one line each */
        fputs(out[i], stdout);
        putchar('\n');
    }
    cf_strings_free(out, n);
    if (fflush(stdout) != 0) {
        cf_error_set("<stdout>: write failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int cf_cmd_translate(int argc, char **argv) {
    model_args a;
    int rc = parse(argc, argv, translate_usage, false, &a);
    if (rc) return rc < 0 ? 0 : rc;
    cf_run r;
    if (cf_run_open(&r, a.path, NULL) != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        return 2;
    }
    cf_decode_opts o = cf_config_decode_opts(&r.cfg.decode);
    if (a.beam) o.beam = a.beam;
    /* In chunks: sentences are decoded in length-sorted batches within a chunk, and a sentence's
     * translation does not depend on the others in its batch, so chunking changes nothing but
     * the memory (a chunk's ids, each cut to what the model reads). */
    cf_lines *in = cf_lines_open("-");
    cf_ids *ids = cf_xcalloc(TRANSLATE_CHUNK, sizeof *ids);
    int64_t limit = r.model->cfg.max_len - 1, n = 0, total = 0, n_cut = 0, n_huge = 0;
    const char *line;
    size_t len;
    int got;
    rc = 0;
    while (rc == 0 && (got = cf_lines_next(in, &line, &len)) >= 0) {
        if (got > 0) {
            n_huge += cf_lines_truncated(in);
            ids[n].n = 0;
            cf_tokenizer_encode(r.src_tok, line, len, &ids[n]);
            if (ids[n].n > limit) { /* only what the model reads is kept */
                n_cut++;
                ids[n].n = limit;
            }
            if (ids[n].cap > 2 * limit + 64) { /* ... and only room for it: a chunk holds at most
                                                   TRANSLATE_CHUNK x max_len ids, whatever came */
                ids[n].data = cf_xrealloc(ids[n].data, (size_t)(limit > 0 ? limit : 1) * sizeof *ids[n].data);
                ids[n].cap = limit > 0 ? limit : 1;
            }
            n++;
            total++;
        }
        if (n == TRANSLATE_CHUNK || (got == 0 && n > 0)) {
            rc = translate_chunk(&r, &o, ids, n);
            n = 0;
        }
        if (got == 0) break;
    }
    if (rc == 0 && got < 0) rc = -1; /* a read error: message set, names <stdin> and the line */
    if (rc != 0) fprintf(stderr, "error: %s\n", cf_error_message());
    if (n_cut)
        fprintf(stderr, "warning: %lld of %lld source lines have more than model.max_len - 1 = %lld tokens: only "
                "their first %lld tokens are translated\n", (long long)n_cut, (long long)total, (long long)limit,
                (long long)limit);
    if (n_huge)
        fprintf(stderr, "warning: %lld source lines are longer than %zu bytes: only their first %zu bytes were read\n",
                (long long)n_huge, CF_LINES_MAX_BYTES, CF_LINES_MAX_BYTES);
    for (int64_t i = 0; i < TRANSLATE_CHUNK; i++) cf_ids_free(&ids[i]);
    free(ids);
    cf_lines_close(in);
    cf_run_close(&r);
    return rc == 0 ? 0 : 1;
}

static const char *info_usage = "usage: cformer info RUN_DIR|CKPT_DIR\n\nConfig, parameter count, step and best metric.\n";

int cf_cmd_info(int argc, char **argv) {
    model_args a;
    int rc = parse(argc, argv, info_usage, false, &a);
    if (rc) return rc < 0 ? 0 : rc;
    cf_run r;
    cJSON *state = NULL;
    if (cf_run_open(&r, a.path, &state) != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        return 2;
    }
    const cf_model_config *m = &r.model->cfg;
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(state, "step");
    const cJSON *best = cJSON_GetObjectItemCaseSensitive(state, "best_bleu");
    const cJSON *best_step = cJSON_GetObjectItemCaseSensitive(state, "best_step");
    printf("run:        %s\ncheckpoint: %s\nname:       %s\n", r.run_dir, r.ckpt_dir, r.cfg.name);
    printf("step:       %lld\n", cJSON_IsNumber(step) ? (long long)step->valuedouble : -1LL);
    if (cJSON_IsNumber(best) && best->valuedouble >= 0)
        printf("best valid BLEU: %.2f (step %lld)\n", best->valuedouble,
               cJSON_IsNumber(best_step) ? (long long)best_step->valuedouble : -1LL);
    printf("model:      %s attention, d_model %lld, %lld heads (%lld kv), %lld+%lld layers, d_ff %lld, %s %s, %s\n",
           cf_attn_kind_name(m->attention), (long long)m->d_model, (long long)m->n_heads,
           (long long)r.model->dec[0].self_attn.n_kv_heads, (long long)m->enc_layers, (long long)m->dec_layers,
           (long long)m->d_ff, m->pre_norm ? "pre" : "post", cf_norm_kind_name(m->norm), cf_pos_kind_name(m->pos_encoding));
    printf("parameters: %lld (%.2fM)\n", (long long)cf_transformer_num_params(r.model),
           (double)cf_transformer_num_params(r.model) / 1e6);
    if (m->num_experts > 0)
        printf("MoE:        %lld experts of %lld, top %lld, %lld shared: %lld parameters active per token\n",
               (long long)m->num_experts, (long long)(m->moe_d_ff ? m->moe_d_ff : m->d_ff),
               (long long)m->num_experts_per_token, (long long)m->n_shared_experts,
               (long long)cf_transformer_active_params(r.model));
    if (m->pos_encoding == CF_POS_RELATIVE || m->qk_norm)
        printf("options:    %s%s\n", m->pos_encoding == CF_POS_RELATIVE ? "relative positions" : "",
               m->qk_norm ? (m->pos_encoding == CF_POS_RELATIVE ? ", qk_norm" : "qk_norm") : "");
    if (r.cfg.data.shared_vocab)
        printf("vocabulary: %lld tokens, shared\n", (long long)m->tgt_vocab);
    else
        printf("vocabulary: %lld source, %lld target tokens\n", (long long)m->src_vocab, (long long)m->tgt_vocab);
    printf("KV cache:   %lld bytes per token per decoder layer (self-attention)\n",
           (long long)cf_kv_cache_bytes_per_token(&r.model->dec[0].self_attn));
    char *json = cf_config_to_json(&r.cfg);
    printf("config:\n%s\n", json);
    free(json);
    cJSON_Delete(state);
    cf_run_close(&r);
    return 0;
}
