/* tests/test_model_ref.c - the whole model against PyTorch, and the figures docs/model.md quotes.
 *
 * Golden test (in the manner of llm.c's test_gpt2): tests/ref/model.py re-implements the model in
 * PyTorch from docs/model.md alone and writes tests/fixtures/model_<case>.safetensors: the config
 * (__metadata__ "config"), every parameter by our name, a padded batch (B 3, S 7, T 6), the
 * label-smoothed loss and the gradient "grad.<name>" of every parameter, computed in float64 from
 * float32-rounded weights. Here each case builds cf_transformer_new from that config, copies the
 * parameters in by name (a missing or extra name, or a shape mismatch, fails), runs
 * cf_transformer_loss and cf_backward in float32, and compares.
 *
 * Tolerances, |ours - torch| <= atol + rtol * |torch| (the reference is float64, rounded to float32):
 *   loss: rtol 2e-6. A mean of 12 row losses of size ~4 after 4 layers of float32 GEMMs (K <= 24),
 *     norms and softmaxes; observed relative error <= 6e-8 (mostly 0: both round to the same float).
 *   gradients: atol 1e-6, rtol 1e-5. Entries are ~1e-4..0.5; float32 rounding through the backward
 *     of every layer (softmax backward subtracts nearly equal products) gives absolute errors
 *     <= 4e-7 and relative errors up to 6e-5 on small entries. The worst entry of any case uses
 *     <= 11% of this tolerance, so thread counts or BLAS kernels that sum in another order leave a
 *     wide margin, while it is tight enough to catch MLA's RMSNorm eps being 1e-5 instead of 1e-6
 *     (a 1e-4 relative change in some gradients, which atol 1e-5 / rtol 1e-4 would have missed).
 *   CF_MODEL_REF_VERBOSE=1 prints each case's errors.
 *
 * The second test pins the parameter counts and KV-cache bytes of docs/model.md's reference table.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/transformer.h"
#include "tests/test.h"
#include "tests/testlib.h"

#define LOSS_RTOL 2e-6
#define GRAD_ATOL 1e-6
#define GRAD_RTOL 1e-5

/* Mirrors CASES in tests/ref/model.py. */
static const char *const ref_cases[] = {
    "mha",    "gqa",         "mqa",    "mla",           "mla_qlora", "post_ln", "rmsnorm",
    "rope",   "learned",     "swiglu", "gelu_window",   "untied",    "unshared_tied",
    "relative", "relative_per_head", "qk_norm", "moe", "moe_swiglu_shared",
};

/* ---- config from the fixture's metadata ---- */

static bool json_int(const cJSON *o, const char *key, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

static bool json_real(const cJSON *o, const char *key, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) return false;
    *out = v->valuedouble;
    return true;
}

static bool json_bool(const cJSON *o, const char *key, bool *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsBool(v)) return false;
    *out = cJSON_IsTrue(v);
    return true;
}

/* An enum given by name: parse returns -1 for an unknown name. */
static bool json_enum(const cJSON *o, const char *key, int (*parse)(const char *), int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v) || parse(v->valuestring) < 0) return false;
    *out = parse(v->valuestring);
    return true;
}

/* Every field of cf_model_config must be present: the fixture states the whole config, so a
 * default changing here cannot silently change what is compared. */
static bool config_from_json(const char *text, cf_model_config *c) {
    cJSON *o = cJSON_Parse(text);
    if (!o) return false;
    *c = cf_model_config_default();
    int attention = 0, activation = 0, norm = 0, pos = 0;
    bool ok = json_int(o, "src_vocab", &c->src_vocab) && json_int(o, "tgt_vocab", &c->tgt_vocab) &&
              json_int(o, "d_model", &c->d_model) && json_int(o, "n_heads", &c->n_heads) &&
              json_int(o, "n_kv_heads", &c->n_kv_heads) && json_int(o, "head_dim", &c->head_dim) &&
              json_enum(o, "attention", cf_attn_kind_parse, &attention) &&
              json_int(o, "kv_lora_rank", &c->kv_lora_rank) && json_int(o, "q_lora_rank", &c->q_lora_rank) &&
              json_int(o, "qk_nope_dim", &c->qk_nope_dim) && json_int(o, "qk_rope_dim", &c->qk_rope_dim) &&
              json_int(o, "v_head_dim", &c->v_head_dim) && json_int(o, "enc_layers", &c->enc_layers) &&
              json_int(o, "dec_layers", &c->dec_layers) && json_int(o, "d_ff", &c->d_ff) &&
              json_enum(o, "activation", cf_ffn_kind_parse, &activation) &&
              json_enum(o, "norm", cf_norm_kind_parse, &norm) && json_bool(o, "pre_norm", &c->pre_norm) &&
              json_real(o, "norm_eps", &c->norm_eps) &&
              json_enum(o, "pos_encoding", cf_pos_kind_parse, &pos) && json_real(o, "rope_base", &c->rope_base) &&
              json_int(o, "rel_clip", &c->rel_clip) && json_bool(o, "rel_per_head", &c->rel_per_head) &&
              json_bool(o, "qk_norm", &c->qk_norm) && json_int(o, "num_experts", &c->num_experts) &&
              json_int(o, "num_experts_per_token", &c->num_experts_per_token) &&
              json_int(o, "n_shared_experts", &c->n_shared_experts) && json_int(o, "moe_d_ff", &c->moe_d_ff) &&
              json_real(o, "moe_aux_weight", &c->moe_aux_weight) &&
              json_int(o, "max_len", &c->max_len) && json_int(o, "window", &c->window) &&
              json_real(o, "dropout", &c->dropout) && json_real(o, "attn_dropout", &c->attn_dropout) &&
              json_bool(o, "bias", &c->bias) && json_bool(o, "share_embeddings", &c->share_embeddings) &&
              json_bool(o, "tie_output", &c->tie_output) && json_bool(o, "scale_embedding", &c->scale_embedding);
    c->attention = (cf_attn_kind)attention;
    c->activation = (cf_ffn_kind)activation;
    c->norm = (cf_norm_kind)norm;
    c->pos_encoding = (cf_pos_kind)pos;
    cJSON_Delete(o);
    return ok;
}

/* ---- fixture helpers ---- */

/* An I32 fixture tensor of n elements, copied (the file's data need not be aligned). */
static int32_t *fixture_ids(const cf_st_file *f, const char *name, int64_t n) {
    const cf_st_tensor *t = cf_st_find(f, name);
    CHECK_MSG(t && t->dtype == CF_ST_I32 && t->numel == n, "fixture tensor '%s' missing, not I32 or not %lld long",
              name, (long long)n);
    if (!t || t->dtype != CF_ST_I32 || t->numel != n) return NULL;
    int32_t *v = cf_xmalloc((size_t)n * sizeof *v);
    memcpy(v, t->data, t->nbytes);
    return v;
}

static bool is_batch_tensor(const char *name) {
    return strcmp(name, "src") == 0 || strcmp(name, "src_lens") == 0 || strcmp(name, "tgt_in") == 0 ||
           strcmp(name, "tgt_out") == 0 || strcmp(name, "loss") == 0;
}

/* Copy every parameter of m from f by name; every other tensor in f must be a gradient or the batch. */
static bool load_params(const cf_st_file *f, cf_transformer *m, const char *what) {
    bool ok = true;
    for (int i = 0; i < m->params.n; i++) {
        cf_tensor *p = m->params.items[i];
        if (cf_st_read_real(f, p->name, p->data, p->ndim, p->shape) != 0) {
            test_fail(__FILE__, __LINE__, "%s: %s", what, cf_error_message());
            ok = false;
        }
    }
    for (int i = 0; i < cf_st_count(f); i++) {
        const char *name = cf_st_at(f, i)->name;
        const char *pname = strncmp(name, "grad.", 5) == 0 ? name + 5 : name;
        if (!is_batch_tensor(name) && !cf_params_find(&m->params, pname)) {
            test_fail(__FILE__, __LINE__, "%s: fixture tensor '%s' is not a parameter of our model", what, name);
            ok = false;
        }
    }
    return ok;
}

/* max over n of |a - b| / (atol + rtol |b|), with the largest absolute and relative differences. */
typedef struct diff_stats {
    double violation, max_abs, max_rel;
    int64_t at;
    double got, want;           /* the values at `at` */
} diff_stats;

static diff_stats compare(const cf_real *a, const float *b, int64_t n, double atol, double rtol) {
    diff_stats s = {0, 0, 0, -1, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]), ref = fabs((double)b[i]);
        double v = d / (atol + rtol * ref);
        if (!(v <= s.violation)) s.violation = v, s.at = i, s.got = (double)a[i], s.want = (double)b[i]; /* NaN: worst */
        s.max_abs = fmax(s.max_abs, d);
        if (ref > 1e-3) s.max_rel = fmax(s.max_rel, d / ref); /* relative error of entries that are not ~0 */
    }
    return s;
}

static void run_case(const char *name, bool verbose) {
    char file[96], what[96];
    snprintf(file, sizeof file, "model_%s.safetensors", name);
    snprintf(what, sizeof what, "model %s", name);
    cf_st_file *f = cf_st_open(test_fixture_path(file));
    CHECK_MSG(f != NULL, "%s: %s", what, cf_error_message());
    if (!f) return;
    cf_model_config cfg;
    const char *cfg_text = cf_st_metadata(f, "config");
    const char *ls_text = cf_st_metadata(f, "label_smoothing"), *pad_text = cf_st_metadata(f, "pad_id");
    bool have_cfg = cfg_text && ls_text && pad_text && config_from_json(cfg_text, &cfg);
    CHECK_MSG(have_cfg, "%s: metadata config/label_smoothing/pad_id missing or incomplete", what);
    cf_transformer *m = have_cfg ? cf_transformer_new(&cfg, 1) : NULL;
    CHECK_MSG(!have_cfg || m, "%s: %s", what, cf_error_message());
    const cf_st_tensor *src_t = cf_st_find(f, "src"), *tgt_t = cf_st_find(f, "tgt_in");
    CHECK_MSG(src_t && tgt_t && src_t->ndim == 2 && tgt_t->ndim == 2, "%s: src/tgt_in missing", what);
    if (!m || !src_t || !tgt_t || src_t->ndim != 2 || tgt_t->ndim != 2 || !load_params(f, m, what)) {
        cf_transformer_free(m);
        cf_st_close(f);
        return;
    }
    int64_t batch = src_t->shape[0], src_len = src_t->shape[1], tgt_len = tgt_t->shape[1];
    int32_t *src = fixture_ids(f, "src", batch * src_len), *src_lens = fixture_ids(f, "src_lens", batch);
    int32_t *tgt_in = fixture_ids(f, "tgt_in", batch * tgt_len), *tgt_out = fixture_ids(f, "tgt_out", batch * tgt_len);
    if (src && src_lens && tgt_in && tgt_out) {
        cf_seq_batch b = {.batch = batch, .src_len = src_len, .tgt_len = tgt_len, .src = src, .src_lens = src_lens,
                          .tgt_in = tgt_in, .tgt_out = tgt_out, .pad_id = (int32_t)atoi(pad_text)};
        cf_ctx *ctx = cf_ctx_new(1);
        cf_params_zero_grad(&m->params);
        cf_tensor *loss = cf_transformer_loss(ctx, m, &b, atof(ls_text), NULL);
        cf_backward(ctx, loss);

        const cf_st_tensor *ref_loss = cf_st_find(f, "loss");
        float want = 0;
        if (ref_loss && ref_loss->dtype == CF_ST_F32 && ref_loss->numel == 1) memcpy(&want, ref_loss->data, sizeof want);
        CHECK_MSG(ref_loss && fabs((double)loss->data[0] - want) <= LOSS_RTOL * fabs(want),
                  "%s: loss %.9g vs PyTorch %.9g (rtol %g)", what, (double)loss->data[0], (double)want, LOSS_RTOL);

        /* Gradients: report the tensor with the largest violation (and where). */
        const char *worst_name = "-";
        diff_stats worst = {0, 0, 0, -1, 0, 0};
        double max_abs = 0, max_rel = 0;
        for (int i = 0; i < m->params.n; i++) {
            cf_tensor *p = m->params.items[i];
            char gname[300];
            snprintf(gname, sizeof gname, "grad.%s", p->name);
            const cf_st_tensor *g = cf_st_find(f, gname);
            if (!g || g->dtype != CF_ST_F32 || g->numel != p->numel) {
                test_fail(__FILE__, __LINE__, "%s: '%s' missing or not F32 of %lld elements", what, gname,
                          (long long)p->numel);
                continue;
            }
            float *want_g = cf_xmalloc((size_t)p->numel * sizeof *want_g);
            memcpy(want_g, g->data, g->nbytes);
            diff_stats s = compare(p->grad, want_g, p->numel, GRAD_ATOL, GRAD_RTOL);
            max_abs = fmax(max_abs, s.max_abs);
            max_rel = fmax(max_rel, s.max_rel);
            if (!(s.violation <= worst.violation)) {
                worst = s;
                worst_name = p->name;
            }
            free(want_g);
        }
        CHECK_MSG(worst.violation <= 1, "%s: worst gradient is %s's, at [%lld]: %.9g vs PyTorch %.9g (%.3g x the "
                  "tolerance atol %g + rtol %g)", what, worst_name, (long long)worst.at, worst.got, worst.want,
                  worst.violation, GRAD_ATOL, GRAD_RTOL);
        if (verbose)
            printf("     %-14s loss %.7f rel err %.1e | grads: max abs err %.1e, max rel err %.1e (|g| > 1e-3), "
                   "worst/tol %.2f in %s\n", name, (double)loss->data[0],
                   fabs((double)loss->data[0] - want) / fabs(want), max_abs, max_rel, worst.violation, worst_name);
        cf_ctx_free(ctx);
    }
    free(src);
    free(src_lens);
    free(tgt_in);
    free(tgt_out);
    cf_transformer_free(m);
    cf_st_close(f);
}

TEST(model_ref_matches_pytorch) {
    bool verbose = getenv("CF_MODEL_REF_VERBOSE") != NULL;
    for (size_t i = 0; i < sizeof ref_cases / sizeof ref_cases[0]; i++) run_case(ref_cases[i], verbose);
}

/* ---- docs/model.md's reference table ---- */

/* d_model 256, 8 heads, 3+3 layers, d_ff 1024, vocab 8000, shared and tied embeddings, the other
 * fields at their defaults (biases, LayerNorm, pre-LN, sinusoidal positions, ReLU). */
static cf_model_config reference_config(cf_attn_kind kind) {
    cf_model_config c = cf_model_config_default();
    c.src_vocab = c.tgt_vocab = 8000;
    c.attention = kind;
    c.n_kv_heads = kind == CF_ATTN_GQA ? 2 : 0;
    c.kv_lora_rank = 128; /* MLA dims = the defaults cf_mla_dims derives for this d_model and head dim */
    c.qk_nope_dim = 32;
    c.qk_rope_dim = 16;
    c.v_head_dim = 32;
    return c;
}

/* Building the whole 7.6M-parameter model costs ~0.35 s (its initialisation draws every weight), so
 * only MHA is built whole; the other variants differ from it only inside the 9 attention modules
 * (3 encoder self, 3 decoder self, 3 cross), so their totals are MHA's plus 9 times the difference
 * of one module, which is built on its own. */
TEST(model_ref_reference_table) {
    struct row {
        const char *name;
        cf_attn_kind kind;
        int64_t q_lora_rank;
        int64_t params, attn_params, kv_bytes;
    } rows[] = {
        /* total params, params of one attention module, KV-cache bytes per token per attention layer */
        {"mha", CF_ATTN_MHA, 0, 7578624, 263168, 2048},
        {"gqa", CF_ATTN_GQA, 0, 6690432, 164480, 512},
        {"mqa", CF_ATTN_MQA, 0, 6542400, 148032, 256},
        {"mla", CF_ATTN_MLA, 0, 7619088, 267664, 576},
        {"mla q_lora 128", CF_ATTN_MLA, 128, 7473936, 251536, 576},
    };
    bool verbose = getenv("CF_MODEL_REF_VERBOSE") != NULL;
    cf_model_config c = reference_config(CF_ATTN_MHA);
    cf_transformer *m = cf_transformer_new(&c, 1);
    CHECK_MSG(m != NULL, "%s", cf_error_message());
    if (!m) return;
    int64_t mha_total = cf_transformer_num_params(m);
    cf_transformer_free(m);
    CHECK_MSG(mha_total == rows[0].params, "mha: %lld params (docs/model.md says %lld)", (long long)mha_total,
              (long long)rows[0].params);
    int64_t n_attn = c.enc_layers + 2 * c.dec_layers;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        c = reference_config(rows[i].kind);
        c.q_lora_rank = rows[i].q_lora_rank;
        CHECK_MSG(cf_model_config_check(&c) == 0, "%s: %s", rows[i].name, cf_error_message());
        cf_params ps = {0};
        cf_rng r = cf_rng_init(1, CF_RNG_STREAM_INIT);
        cf_nn_attention self_attn, cross_attn;
        cf_nn_attention_init(&self_attn, &ps, &r, &c, "self_attn", true);
        int64_t attn = cf_params_numel(&ps);
        cf_params ps_cross = {0};
        cf_nn_attention_init(&cross_attn, &ps_cross, &r, &c, "cross_attn", false);
        CHECK(cf_params_numel(&ps_cross) == attn); /* cross-attention has the same parameters */
        int64_t total = mha_total + n_attn * (attn - rows[0].attn_params);
        int64_t kv = cf_kv_cache_bytes_per_token(&self_attn), kv_cross = cf_kv_cache_bytes_per_token(&cross_attn);
        if (verbose)
            printf("     %-15s params %lld, per attention %lld, KV bytes/token/layer %lld (cross %lld)\n", rows[i].name,
                   (long long)total, (long long)attn, (long long)kv, (long long)kv_cross);
        CHECK_MSG(total == rows[i].params, "%s: %lld params (docs/model.md says %lld)", rows[i].name, (long long)total,
                  (long long)rows[i].params);
        CHECK_MSG(attn == rows[i].attn_params, "%s: %lld params per attention (docs/model.md says %lld)", rows[i].name,
                  (long long)attn, (long long)rows[i].attn_params);
        CHECK_MSG(kv == rows[i].kv_bytes && kv_cross == kv, "%s: %lld (cross %lld) KV bytes (docs/model.md says %lld)",
                  rows[i].name, (long long)kv, (long long)kv_cross, (long long)rows[i].kv_bytes);
        cf_params_free(&ps);
        cf_params_free(&ps_cross);
    }
}

/* MLA's RoPE width defaults to head_dim / 2 (cf_mla_dims), which is odd for head dims like 6 or 30:
 * the config check must reject that up front rather than let cf_rope abort in the first forward. */
TEST(model_ref_mla_default_rope_dim_checked) {
    cf_model_config c = cf_model_config_default();
    c.src_vocab = c.tgt_vocab = 11;
    c.attention = CF_ATTN_MLA;
    c.d_model = 12;
    c.n_heads = 2; /* head dim 6: default qk_rope_dim 3 */
    cf_transformer *m = cf_transformer_new(&c, 1);
    CHECK_MSG(m == NULL && strstr(cf_error_message(), "model.qk_rope_dim"),
              "an odd default qk_rope_dim (3) was accepted");
    cf_transformer_free(m);
    c.qk_rope_dim = 2; /* stated explicitly: fine */
    m = cf_transformer_new(&c, 1);
    CHECK_MSG(m != NULL, "%s", cf_error_message());
    cf_transformer_free(m);
}
