/* cli/cmd_memory.c - `cformer memory CONFIG|--preset NAME`: the memory lecture's arithmetic.
 *
 * Weights = parameters x bytes per element; KV cache = bytes per token x batch x sequence length;
 * GB are 10^9 bytes. Presets (nn/memory.h) are decoder-only LLMs; a CONFIG is one of cformer's
 * encoder-decoder models, whose decoder caches its self-attention per target token and its
 * cross-attention per source token (docs/model.md, section 8).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "nn/memory.h"
#include "nn/transformer.h"
#include "train/config.h"

static const char *usage =
    "usage: cformer memory CONFIG|--preset NAME [--dtype fp32|bf16|fp16|int8] [--batch N] [--seq-len N]\n"
    "                      [--attention mha|gqa|mqa|mla] [--kv-heads N]\n"
    "       cformer memory --list\n"
    "\n"
    "Parameters, weight bytes, KV-cache bytes per token and for batch x seq-len tokens, and the total,\n"
    "in GB (10^9 bytes), for a preset LLM (its public config: --list) or a cformer run config. The\n"
    "options override the preset's (bf16, batch 1, 2048 tokens, its own attention) or the config's\n"
    "(fp32, batch 1, model.max_len tokens). --attention changes the KV cache only (mha: K and V as\n"
    "wide as d_model each, the lecture's convention); the last line compares all four. --kv-heads sets\n"
    "the KV heads of a CONFIG's gqa.\n";

typedef struct memory_opts {
    int dtype_bytes;
    const char *dtype;
    int64_t batch, seq_len, kv_heads;
    int attention;              /* -1: the model's own */
} memory_opts;

static double gb(double bytes) { return bytes / 1e9; }

/* "1,310,720" */
static const char *grouped(int64_t v, char *buf, size_t n) {
    char digits[32];
    snprintf(digits, sizeof digits, "%lld", (long long)v);
    size_t len = strlen(digits), k = 0;
    for (size_t i = 0; i < len && k + 2 < n; i++) {
        buf[k++] = digits[i];
        if ((len - i - 1) % 3 == 0 && i + 1 < len) buf[k++] = ',';
    }
    buf[k] = 0;
    return buf;
}

static int print_preset(const cf_llm_arch *a, const memory_opts *o) {
    cf_attn_kind att = o->attention >= 0 ? (cf_attn_kind)o->attention : a->attention;
    int64_t batch = o->batch ? o->batch : 1, len = o->seq_len ? o->seq_len : 2048;
    cf_llm_counts n = cf_llm_count(a);
    char b1[32], b2[32];
    printf("%s: %lld layers, d_model %lld, %lld heads x %lld", a->name, (long long)a->layers, (long long)a->d_model,
           (long long)a->n_heads, (long long)a->head_dim);
    if (a->attention == CF_ATTN_MLA)
        printf(" (MLA: latent %lld + rotary %lld, q rank %lld)", (long long)a->kv_lora_rank, (long long)a->qk_rope_dim,
               (long long)a->q_lora_rank);
    else
        printf(" (%lld KV heads)", (long long)a->n_kv_heads);
    printf(", d_ff %lld", (long long)a->d_ff);
    if (a->num_experts)
        printf(", MoE %lld experts of %lld (top %lld, %lld shared, first %lld layers dense)", (long long)a->num_experts,
               (long long)a->moe_d_ff, (long long)a->experts_per_token, (long long)a->n_shared_experts,
               (long long)a->dense_layers);
    printf(", vocab %lld, %s\n  source: %s\n", (long long)a->vocab, a->tied ? "tied output head" : "untied output head",
           a->source);
    printf("  dtype %s (%d bytes), batch %lld, seq-len %lld, attention %s%s%s\n\n", o->dtype, o->dtype_bytes,
           (long long)batch, (long long)len, cf_attn_kind_name(att), att == a->attention ? " (the preset's own)" : "",
           att == a->attention ? "" : a->attention == CF_ATTN_MLA ? " (the preset's own: mla)" : " (the preset's own: gqa)");

    double nominal_w = a->nominal_params * o->dtype_bytes, counted_w = (double)n.params * o->dtype_bytes;
    printf("parameters      %.2f B counted from the architecture (the name says %.1f B)\n", (double)n.params / 1e9,
           a->nominal_params / 1e9);
    if (a->num_experts) printf("active          %.2f B a token uses (router, %lld routed and %lld shared experts)\n",
                               (double)n.active_params / 1e9, (long long)a->experts_per_token, (long long)a->n_shared_experts);
    printf("weights         %.1f GB counted; %.1f GB from the name's %.1f B (the lecture's way)\n", gb(counted_w),
           gb(nominal_w), a->nominal_params / 1e9);
    int64_t rank, rope, per_layer = cf_llm_kv_elems_per_layer(a, att, &rank, &rope);
    int64_t per_token = cf_llm_kv_bytes_per_token(a, att, o->dtype_bytes);
    double kv = (double)per_token * (double)batch * (double)len;
    printf("KV cache        %s bytes per token (%lld layers x %lld values x %d bytes)\n", grouped(per_token, b1, sizeof b1),
           (long long)a->layers, (long long)per_layer, o->dtype_bytes);
    printf("KV cache        %.1f GB for %lld x %lld tokens (%s bytes)\n", gb(kv), (long long)batch, (long long)len,
           grouped((int64_t)kv, b2, sizeof b2));
    printf("total           %.1f GB with the counted weights; %.1f GB with the name's\n", gb(counted_w + kv),
           gb(nominal_w + kv));
    if (att == CF_ATTN_MHA && a->n_heads * a->head_dim != a->d_model) {
        double wide = (double)a->layers * 2.0 * (double)(a->n_heads * a->head_dim) * o->dtype_bytes * (double)batch * (double)len;
        printf("note            mha here caches K and V of d_model %lld each; a KV head for each of the %lld query "
               "heads (%lld wide) would take %.1f GB\n", (long long)a->d_model, (long long)a->n_heads,
               (long long)(a->n_heads * a->head_dim), gb(wide));
    }
    printf("by attention    mha %.1f GB | gqa (%lld KV heads) %.1f GB | mqa %.1f GB | mla (%lld + %lld) %.1f GB\n",
           gb((double)cf_llm_kv_bytes_per_token(a, CF_ATTN_MHA, o->dtype_bytes) * (double)(batch * len)),
           (long long)a->n_kv_heads, gb((double)cf_llm_kv_bytes_per_token(a, CF_ATTN_GQA, o->dtype_bytes) * (double)(batch * len)),
           gb((double)cf_llm_kv_bytes_per_token(a, CF_ATTN_MQA, o->dtype_bytes) * (double)(batch * len)),
           (long long)rank, (long long)rope,
           gb((double)cf_llm_kv_bytes_per_token(a, CF_ATTN_MLA, o->dtype_bytes) * (double)(batch * len)));
    return 0;
}

/* KV-cache bytes per token of one decoder's caches (float32 elements x dtype bytes / 4). */
static int64_t decoder_cache_bytes(const cf_transformer *m, bool cross, int dtype_bytes) {
    int64_t b = 0;
    for (int i = 0; i < m->cfg.dec_layers; i++)
        b += cf_kv_cache_bytes_per_token(cross ? &m->dec[i].cross_attn : &m->dec[i].self_attn) / 4 * dtype_bytes;
    return b;
}

static int print_config(const char *path, const memory_opts *o) {
    cf_config cfg;
    if (cf_config_load_opts(&cfg, path, 0, NULL, &(cf_config_opts){.check_paths = false, .no_data = true}) != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        return 2;
    }
    cf_model_config mc = cfg.model;
    mc.src_vocab = mc.tgt_vocab = cfg.data.task == CF_TASK_COPY ? cfg.data.copy_vocab : cfg.data.vocab_size;
    if (o->attention >= 0) {
        mc.attention = (cf_attn_kind)o->attention;
        mc.n_kv_heads = o->attention == CF_ATTN_GQA ? (o->kv_heads ? o->kv_heads : mc.n_kv_heads ? mc.n_kv_heads : 1)
                        : o->attention == CF_ATTN_MQA ? 1 : 0;
    }
    cf_transformer *m = cf_transformer_new(&mc, 1);
    if (!m) {
        fprintf(stderr, "error: %s: %s\n", path, cf_error_message());
        cf_config_free(&cfg);
        return 2;
    }
    int64_t batch = o->batch ? o->batch : 1, len = o->seq_len ? o->seq_len : mc.max_len;
    int64_t self = decoder_cache_bytes(m, false, o->dtype_bytes), cross = decoder_cache_bytes(m, true, o->dtype_bytes);
    int64_t params = cf_transformer_num_params(m), active = cf_transformer_active_params(m);
    printf("%s: encoder-decoder, %lld+%lld layers, d_model %lld, %lld heads, %s attention (%lld KV heads), vocab %lld "
           "(data.%s)\n  dtype %s (%d bytes), batch %lld, seq-len %lld (source and target)\n\n", path,
           (long long)mc.enc_layers, (long long)mc.dec_layers, (long long)mc.d_model, (long long)mc.n_heads,
           cf_attn_kind_name(mc.attention), (long long)m->dec[0].self_attn.n_kv_heads, (long long)mc.src_vocab,
           cfg.data.task == CF_TASK_COPY ? "copy_vocab" : "vocab_size", o->dtype, o->dtype_bytes, (long long)batch,
           (long long)len);
    double w = (double)params * o->dtype_bytes, kv = (double)(self + cross) * (double)(batch * len);
    printf("parameters      %lld (%.2f M)\n", (long long)params, (double)params / 1e6);
    if (active != params) printf("active          %lld a token uses (MoE)\n", (long long)active);
    printf("weights         %.4f GB\n", gb(w));
    printf("KV cache        %lld bytes per target token (self-attention, %lld layers) + %lld per source token "
           "(cross-attention)\n", (long long)self, (long long)mc.dec_layers, (long long)cross);
    printf("KV cache        %.4f GB for %lld x %lld target and source tokens\n", gb(kv), (long long)batch,
           (long long)len);
    printf("total           %.4f GB\n", gb(w + kv));
    cf_transformer_free(m);
    cf_config_free(&cfg);
    return 0;
}

static bool parse_count(const char *s, int64_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || end == s || v < 1 || v > ((long long)1 << 40)) return false;
    *out = v;
    return true;
}

int cf_cmd_memory(int argc, char **argv) {
    memory_opts o = {.dtype_bytes = 0, .dtype = NULL, .attention = -1};
    const char *preset = NULL, *config = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--list") == 0) {
            int n;
            const cf_llm_arch *p = cf_llm_presets(&n);
            for (int k = 0; k < n; k++) {
                cf_llm_counts c = cf_llm_count(&p[k]);
                printf("%-14s %7.2f B parameters (%.2f B active)  %s\n", p[k].name, (double)c.params / 1e9,
                       (double)c.active_params / 1e9, p[k].source);
            }
            return 0;
        } else if (!v && a[0] == '-') {
            fprintf(stderr, "cformer memory: '%s' needs a value\n%s", a, usage);
            return 2;
        } else if (strcmp(a, "--preset") == 0) {
            preset = argv[++i];
        } else if (strcmp(a, "--dtype") == 0) {
            static const struct { const char *name; int bytes; } dt[] = {{"fp32", 4}, {"bf16", 2}, {"fp16", 2}, {"int8", 1}};
            o.dtype = NULL;
            for (int k = 0; k < 4; k++)
                if (strcmp(v, dt[k].name) == 0) o.dtype = dt[k].name, o.dtype_bytes = dt[k].bytes;
            if (!o.dtype) {
                fprintf(stderr, "cformer memory: --dtype must be fp32, bf16, fp16 or int8, got '%s'\n", v);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--attention") == 0) {
            o.attention = cf_attn_kind_parse(v);
            if (o.attention < 0) {
                fprintf(stderr, "cformer memory: --attention must be mha, gqa, mqa or mla, got '%s'\n", v);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--batch") == 0 || strcmp(a, "--seq-len") == 0 || strcmp(a, "--kv-heads") == 0) {
            int64_t *dst = a[2] == 'b' ? &o.batch : a[2] == 's' ? &o.seq_len : &o.kv_heads;
            if (!parse_count(v, dst)) {
                fprintf(stderr, "cformer memory: %s needs a positive integer, got '%s'\n", a, v);
                return 2;
            }
            i++;
        } else if (a[0] != '-' && !config) {
            config = a;
        } else {
            fprintf(stderr, "cformer memory: unknown or extra argument '%s'\n%s", a, usage);
            return 2;
        }
    }
    if (!preset == !config) {
        fprintf(stderr, "cformer memory: give a CONFIG or --preset NAME (one of them)\n%s", usage);
        return 2;
    }
    if (preset) {
        const cf_llm_arch *a = cf_llm_preset(preset);
        if (!a) {
            fprintf(stderr, "cformer memory: unknown preset '%s' (cformer memory --list)\n", preset);
            return 2;
        }
        if (!o.dtype) o.dtype = "bf16", o.dtype_bytes = 2;
        return print_preset(a, &o);
    }
    if (!o.dtype) o.dtype = "fp32", o.dtype_bytes = 4;
    return print_config(config, &o);
}
