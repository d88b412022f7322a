/* cli/cmd_bench_decode.c - `cformer bench decode RUN_DIR|CKPT_DIR|CONFIG [options]`
 *
 * Times the decoding of a whole set of sources through cf_translate_tokens, the code path of
 * `cformer translate` and `cformer eval` (length-sorted batches of decode.batch_size sentences,
 * greedy or beam search, translate/decode.h), for each beam size asked for. Two kinds of input:
 *   - a run or checkpoint directory: its model and source tokenizer; the sources are the lines of
 *     --src (default: the run config's data.test_src, read in place, gzip or plain);
 *   - a config file: a random model of that config's shapes (vocabulary data.vocab_size, seed
 *     `seed`) and --n random sources of exactly bench.src_len ids (plus <eos>).
 * One untimed pass sizes the buffers, then --reps timed passes; it reports the median, sentences/s
 * and target tokens/s (output tokens + the final <eos> of each sentence: the decoder steps that
 * produced something), and the allocations made during the timed passes: the arena's malloc count
 * and glibc's heap in use (mallinfo2), as `cformer bench` does for training. It also reports the
 * process's CPU time per pass (median; all threads): on a shared machine the wall time of a
 * 1-thread run moves with the neighbours' load, its CPU time much less.
 *
 * --out-dir DIR writes what bench/ref/torch_decode_bench.py needs to decode the same set with the
 * same model: DIR/src.ids (one source a line, space-separated ids, no <eos>), DIR/beamK.ids (our
 * outputs, input order, no <bos>/<eos>) and, for a random model, DIR/model.safetensors (its
 * config in the metadata). bench/compare_decode.sh runs the two side by side.
 */
#include "cli/commands.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/gemm.h"
#include "core/profile.h"
#include "core/rng.h"
#include "core/threads.h"
#include "data/lines.h"
#include "train/checkpoint.h"
#include "train/run.h"
#include "translate/translate.h"

static const char *usage =
    "usage: cformer bench decode RUN_DIR|CKPT_DIR|CONFIG [--src FILE] [--n N] [--beam K[,K...]] [--batch N]\n"
    "                           [--reps N] [--threads N] [--fixed-threads] [--set key.path=value]...\n"
    "                           [--out-dir DIR] [--json] [--profile] [--no-pack]\n"
    "\n"
    "Time the decoding of a set of sources (greedy and beam search, the code path of translate/eval:\n"
    "length-sorted batches of decode.batch_size sentences). A run or checkpoint directory decodes the\n"
    "lines of FILE (default: the run's data.test_src); a config file gets a random model of its shapes\n"
    "(vocabulary data.vocab_size) and N random sources of bench.src_len tokens. Prints sentences/s,\n"
    "target tokens/s (outputs + <eos>) and the mallocs of the timed passes.\n"
    "  --src FILE       source sentences, one a line (plain or .gz)\n"
    "  --n N            sentences: the first N of FILE (0: all, the default), or N random ones (default 128)\n"
    "  --beam K,...     beam sizes to time, 1 = greedy (default 1,4)\n"
    "  --batch N        sentences per batch (decode.batch_size)\n"
    "  --reps N         timed passes after one untimed pass (default 3)\n"
    "  --threads N      threads (0 = every CPU this process may use)\n"
    "  --fixed-threads  keep that count even when other processes take cores\n"
    "  --set key=v      override a key of the config or of the run's config (decode.*, bench.*, seed)\n"
    "  --out-dir DIR    write DIR/src.ids, DIR/beamK.ids and, for a random model, DIR/model.safetensors\n"
    "  --json           one JSON object per beam size on stdout instead of the report\n"
    "  --profile        also print the time per op and per decoding phase, per pass (core/profile.h)\n"
    "  --no-pack        products through the tiled BLAS GEMM, not the model's weights packed once per\n"
    "                   call for an AVX-512 kernel (core/gemm.h; the same outputs up to rounding)\n";

enum { MAX_BEAMS = 8 };

typedef struct bench_args {
    const char *path, *src, *out_dir;
    int64_t n, batch, reps, beams[MAX_BEAMS];
    int n_beams, threads;
    bool fixed_threads, json, profile, no_pack;
    char **sets;
    int n_sets;
} bench_args;

/* The model and the sources, from a run directory or a config. */
typedef struct bench_input {
    cf_run run;                 /* run mode */
    bool from_run;
    cf_config cfg;              /* config mode (run mode: run.cfg) */
    cf_transformer *model;
    cf_ctx *ctx;
    const char *set_name;       /* what was decoded, for the report */
    cf_ids *ids;                /* [n] sources, without <eos> */
    int64_t n;
} bench_input;

/* CPU time of the process (all its threads), seconds. */
static double cpu_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static bool is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int load_run(bench_input *in, const bench_args *a) {
    if (cf_run_open(&in->run, a->path, NULL) != 0) return -1;
    in->from_run = true;
    cf_config *cfg = &in->run.cfg;
    if (a->n_sets > 0) { /* decode.* and friends: the run's config again, with the overrides */
        char *json = cf_config_to_json(cfg);
        cf_config c2;
        int rc = cf_config_parse_opts(&c2, json, a->path, a->n_sets, a->sets,
                                      &(cf_config_opts){.check_paths = false, .no_data = true});
        free(json);
        if (rc != 0) return -1;
        cf_config_free(cfg);
        *cfg = c2;
    }
    in->model = in->run.model;
    in->ctx = in->run.ctx;
    const char *src = a->src ? a->src : cfg->data.test_src;
    if (!src) {
        cf_error_set("%s: the run's config has no data.test_src: give --src FILE", a->path);
        return -1;
    }
    in->set_name = src;
    cf_lines *lr = cf_lines_open(src);
    if (!lr) return -1;
    int64_t cap = 256;
    in->ids = cf_xcalloc((size_t)cap, sizeof *in->ids);
    const char *line;
    size_t len;
    while ((a->n <= 0 || in->n < a->n) && cf_lines_next(lr, &line, &len) > 0) {
        if (in->n == cap) {
            in->ids = realloc(in->ids, (size_t)(cap *= 2) * sizeof *in->ids);
            CF_ASSERT(in->ids != NULL);
            memset(in->ids + in->n, 0, (size_t)(cap - in->n) * sizeof *in->ids);
        }
        cf_tokenizer_encode(in->run.src_tok, line, len, &in->ids[in->n++]);
    }
    cf_lines_close(lr);
    return 0;
}

static int load_config(bench_input *in, const bench_args *a) {
    if (cf_config_load_opts(&in->cfg, a->path, a->n_sets, a->sets,
                            &(cf_config_opts){.check_paths = false, .no_data = true}) != 0)
        return -1;
    cf_model_config mc = in->cfg.model;
    mc.src_vocab = mc.tgt_vocab = in->cfg.data.vocab_size;
    in->model = cf_transformer_new(&mc, in->cfg.seed);
    if (!in->model) return -1;
    in->ctx = cf_ctx_new(in->cfg.seed);
    in->set_name = "random";
    in->n = a->n > 0 ? a->n : 128;
    int64_t S = in->cfg.bench.src_len, V = mc.src_vocab;
    if (S > mc.max_len - 1) S = mc.max_len - 1;
    in->ids = cf_xcalloc((size_t)in->n, sizeof *in->ids);
    cf_rng rng = cf_rng_init(in->cfg.seed, CF_RNG_STREAM_DATA);
    for (int64_t i = 0; i < in->n; i++)
        for (int64_t j = 0; j < S; j++)
            cf_ids_push(&in->ids[i], CF_BPE_N_SPECIAL + (int32_t)cf_rng_below(&rng, (uint64_t)(V - CF_BPE_N_SPECIAL)));
    return 0;
}

static void input_free(bench_input *in) {
    for (int64_t i = 0; i < in->n; i++) cf_ids_free(&in->ids[i]);
    free(in->ids);
    if (in->from_run) {
        cf_run_close(&in->run);
    } else {
        cf_ctx_free(in->ctx);
        cf_transformer_free(in->model);
        cf_config_free(&in->cfg);
    }
}

static int write_ids(const char *dir, const char *name, const cf_decode_result *r, const cf_ids *src, int64_t n) {
    char *path = cf_path_join(dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        cf_error_set("cannot write %s", path);
        free(path);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        const int32_t *t = r ? r->tokens + r->offsets[i] : src[i].data;
        int64_t len = r ? cf_decode_result_len(r, i) : src[i].n;
        for (int64_t j = 0; j < len; j++) fprintf(f, j ? " %d" : "%d", t[j]);
        fputc('\n', f);
    }
    int bad = ferror(f) | fclose(f);
    if (bad) cf_error_set("cannot write %s", path);
    free(path);
    return bad ? -1 : 0;
}

static int run_bench(bench_input *in, const bench_args *a) {
    const cf_config *cfg = in->from_run ? &in->run.cfg : &in->cfg;
    int64_t batch = a->batch > 0 ? a->batch : cfg->decode.batch_size;
    const int32_t **src = cf_xmalloc((size_t)(in->n ? in->n : 1) * sizeof *src);
    int64_t *lens = cf_xmalloc((size_t)(in->n ? in->n : 1) * sizeof *lens), src_tokens = 0;
    for (int64_t i = 0; i < in->n; i++) {
        src[i] = in->ids[i].data;
        lens[i] = in->ids[i].n;
        src_tokens += lens[i];
    }
    if (a->out_dir) {
        if (cf_mkdir_p(a->out_dir) != 0 || write_ids(a->out_dir, "src.ids", NULL, in->ids, in->n) != 0) goto fail;
        if (!in->from_run) {
            char *path = cf_path_join(a->out_dir, "model.safetensors"), *json = cf_config_to_json(cfg);
            int rc = cf_params_save(&in->model->params, path, json);
            free(path);
            free(json);
            if (rc != 0) goto fail;
        }
    }
    const cf_model_config *mc = &in->model->cfg;
    bool packed = !a->no_pack && cf_gemm_packed_available();
    if (!a->json)
        printf("bench decode: %s, %lld sentences (%.1f source tokens each), model d_model %lld, %lld heads, "
               "%lld+%lld layers, vocab %lld; batch %lld, %d threads, OPENBLAS_CORETYPE=%s, %s\n",
               in->set_name, (long long)in->n, in->n ? (double)src_tokens / (double)in->n : 0,
               (long long)mc->d_model, (long long)mc->n_heads, (long long)mc->enc_layers, (long long)mc->dec_layers,
               (long long)mc->tgt_vocab, (long long)batch, cf_threads_max(),
               getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)",
               packed ? "packed weights" : "BLAS products");
    cf_decode_result r = {0};
    double *secs = cf_xmalloc((size_t)a->reps * sizeof *secs), *cpus = cf_xmalloc((size_t)a->reps * sizeof *cpus);
    cf_profile *prof = a->profile ? cf_xmalloc(sizeof *prof) : NULL;
    for (int bi = 0; bi < a->n_beams; bi++) {
        cf_decode_opts o = cf_config_decode_opts(&cfg->decode);
        o.beam = a->beams[bi];
        o.no_pack = a->no_pack;
        size_t mallocs0 = 0, heap0 = 0;
        for (int64_t rep = -1; rep < a->reps; rep++) {
            if (rep == 0) {
                mallocs0 = in->ctx->arena.mallocs;
                heap0 = heap_in_use();
                if (prof) {
                    cf_profile_init(prof);
                    in->ctx->profile = prof;
                }
            }
            if (prof && rep >= 0) cf_profile_start(prof, in->ctx->arena.used_total);
            double t0 = cf_now_s(), c0 = cpu_now_s();
            if (cf_translate_tokens(in->ctx, in->model, src, lens, in->n, &o, batch, &r) != 0) goto fail_run;
            if (rep >= 0) secs[rep] = cf_now_s() - t0, cpus[rep] = cpu_now_s() - c0;
        }
        in->ctx->profile = NULL;
        size_t arena_mallocs = in->ctx->arena.mallocs - mallocs0;
        long long heap_delta = (long long)heap_in_use() - (long long)heap0;
        int64_t tokens = r.offsets[r.n] + r.n; /* + one <eos> per sentence */
        double t = cf_median(secs, a->reps), cpu = cf_median(cpus, a->reps), lo = secs[0], hi = secs[0];
        for (int64_t i = 1; i < a->reps; i++) lo = secs[i] < lo ? secs[i] : lo, hi = secs[i] > hi ? secs[i] : hi;
        if (a->json) {
            printf("{\"impl\":\"cformer\",\"set\":\"%s\",\"beam\":%lld,\"batch\":%lld,\"threads\":%d,\"sentences\":%lld,"
                   "\"src_tokens\":%lld,\"tgt_tokens\":%lld,\"reps\":%lld,\"seconds\":%.6f,\"seconds_min\":%.6f,"
                   "\"seconds_max\":%.6f,\"sent_s\":%.3f,\"tgt_tok_s\":%.1f,\"arena_mallocs\":%zu,"
                   "\"heap_delta_bytes\":%lld,\"length_penalty\":%g,\"max_len_a\":%g,\"max_len_b\":%lld,\"packed\":%s,"
                   "\"cpu_seconds\":%.6f,\"sent_per_cpu_s\":%.3f}\n",
                   in->set_name, (long long)o.beam, (long long)batch, cf_threads_max(), (long long)in->n,
                   (long long)src_tokens, (long long)tokens, (long long)a->reps, t, lo, hi, (double)in->n / t,
                   (double)tokens / t, arena_mallocs, heap_delta, o.length_penalty, o.max_len_a, (long long)o.max_len_b,
                   packed ? "true" : "false", cpu, cpu > 0 ? (double)in->n / cpu : 0);
        } else {
            printf("%-7s %8.1f ms (%.1f-%.1f)  %8.1f sentences/s  %9.0f target tokens/s  (%.1f tokens/sentence); "
                   "CPU %.1f ms; timed passes: %zu arena mallocs, heap in use %+lld bytes\n",
                   o.beam == 1 ? "greedy" : "beam", t * 1e3, lo * 1e3, hi * 1e3, (double)in->n / t,
                   (double)tokens / t, in->n ? (double)tokens / (double)in->n : 0, cpu * 1e3, arena_mallocs,
                   heap_delta);
            if (o.beam != 1) printf("        (beam %lld, length penalty %g)\n", (long long)o.beam, o.length_penalty);
        }
        if (prof) {
            printf("\nbeam %lld, per pass over the set (forward: time since the previous record):\n", (long long)o.beam);
            cf_profile_print(prof, stdout, a->reps);
            printf("\n");
        }
        if (a->out_dir) {
            char name[32];
            snprintf(name, sizeof name, "beam%lld.ids", (long long)o.beam);
            if (write_ids(a->out_dir, name, &r, NULL, in->n) != 0) goto fail_run;
        }
    }
    free(prof);
    free(secs);
    free(cpus);
    cf_decode_result_free(&r);
    free(src);
    free(lens);
    return 0;
fail_run:
    in->ctx->profile = NULL;
    free(prof);
    free(secs);
    free(cpus);
    cf_decode_result_free(&r);
fail:
    free(src);
    free(lens);
    return -1;
}

static int parse_int(const char *flag, const char *s, int64_t min, int64_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v < min) {
        fprintf(stderr, "cformer bench decode: %s needs an integer >= %lld, got '%s'\n", flag, (long long)min, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cf_cmd_bench_decode(int argc, char **argv) {
    bench_args a = {.reps = 3, .n_beams = 2, .beams = {1, 4}};
    a.sets = cf_xcalloc((size_t)argc + 1, sizeof *a.sets);
    int status = 2;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        bool more = i + 1 < argc;
        int64_t v;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage, stdout);
            status = 0;
            goto done;
        } else if (strcmp(arg, "--src") == 0 && more) {
            a.src = argv[++i];
        } else if (strcmp(arg, "--out-dir") == 0 && more) {
            a.out_dir = argv[++i];
        } else if (strcmp(arg, "--n") == 0 && more) {
            if (parse_int(arg, argv[++i], 0, &a.n) != 0) goto done;
        } else if (strcmp(arg, "--batch") == 0 && more) {
            if (parse_int(arg, argv[++i], 1, &a.batch) != 0) goto done;
        } else if (strcmp(arg, "--reps") == 0 && more) {
            if (parse_int(arg, argv[++i], 1, &a.reps) != 0) goto done;
        } else if (strcmp(arg, "--threads") == 0 && more) {
            if (parse_int(arg, argv[++i], 0, &v) != 0) goto done;
            a.threads = (int)v;
        } else if (strcmp(arg, "--beam") == 0 && more) {
            char *list = argv[++i], *save = NULL, *copy = strdup(list);
            a.n_beams = 0;
            for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (a.n_beams == MAX_BEAMS || parse_int("--beam", tok, 1, &a.beams[a.n_beams]) != 0) {
                    free(copy);
                    if (a.n_beams == MAX_BEAMS) fprintf(stderr, "cformer bench decode: at most %d beam sizes\n", MAX_BEAMS);
                    goto done;
                }
                a.n_beams++;
            }
            free(copy);
            if (a.n_beams == 0) {
                fprintf(stderr, "cformer bench decode: --beam needs a list such as 1,4\n");
                goto done;
            }
        } else if (strcmp(arg, "--set") == 0 && more) {
            a.sets[a.n_sets++] = argv[++i];
        } else if (strcmp(arg, "--fixed-threads") == 0) {
            a.fixed_threads = true;
        } else if (strcmp(arg, "--json") == 0) {
            a.json = true;
        } else if (strcmp(arg, "--profile") == 0) {
            a.profile = true;
        } else if (strcmp(arg, "--no-pack") == 0) {
            a.no_pack = true;
        } else if (arg[0] != '-' && !a.path) {
            a.path = arg;
        } else {
            fprintf(stderr, "cformer bench decode: unknown, incomplete or extra argument '%s'\n%s", arg, usage);
            goto done;
        }
    }
    if (!a.path) {
        fprintf(stderr, "cformer bench decode: missing RUN_DIR, CKPT_DIR or CONFIG\n%s", usage);
        goto done;
    }
    if (cf_threads_init(a.threads) != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        status = 1;
        goto done;
    }
    cf_threads_set_adaptive(!a.fixed_threads);
    bench_input in;
    memset(&in, 0, sizeof in);
    int rc = is_dir(a.path) ? load_run(&in, &a) : load_config(&in, &a);
    status = 2;
    if (rc == 0) {
        status = 1;
        rc = run_bench(&in, &a);
        if (rc == 0) status = 0;
    }
    if (rc != 0) fprintf(stderr, "error: %s\n", cf_error_message());
    input_free(&in);
done:
    free(a.sets);
    return status;
}
