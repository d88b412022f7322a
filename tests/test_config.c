/* tests/test_config.c - the run config: defaults, every error kind, --set, round trip, configs/, docs. */
#include <glob.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "tests/test.h"
#include "tests/testlib.h"
#include "train/config.h"
#include "train/config_doc.h"

#define ORIGIN "cfgs/unit.json"

/* A directory with small train/valid files, made once: validation requires data paths to exist. */
static const char *data_dir(void) {
    static char dir[256];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "%s", test_tmpdir("config"));
    const char *names[] = {"train.de", "train.en", "valid.de", "valid.en", "pairs.tsv"};
    for (int i = 0; i < 5; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "w");
        if (!f) abort();
        fputs("hallo\n", f);
        fclose(f);
    }
    return dir;
}

/* A valid config: the temp data files plus `extra` (more top-level members, or ""). malloc'ed. */
static char *json_with(const char *extra) {
    const char *d = data_dir();
    size_t size = 4 * strlen(d) + strlen(extra) + 256;
    char *s = cf_xmalloc(size);
    snprintf(s, size,
             "{\"data\": {\"train_src\": \"%s/train.de\", \"train_tgt\": \"%s/train.en\", "
             "\"valid_src\": \"%s/valid.de\", \"valid_tgt\": \"%s/valid.en\"}%s%s}",
             d, d, d, d, extra[0] ? ", " : "", extra);
    return s;
}

/* Parses json_with(extra) with overrides; returns the error message (malloc'ed) or NULL on success. */
static char *error_of(const char *extra, int n_overrides, char *const *overrides) {
    char *json = json_with(extra);
    cf_config c;
    int status = cf_config_parse(&c, json, ORIGIN, n_overrides, overrides);
    free(json);
    if (status == 0) {
        cf_config_free(&c);
        return NULL;
    }
    return strdup(cf_error_message());
}

/* The message exists and contains every one of the NULL-terminated strings. */
static void check_message(const char *msg, const char *const *parts, const char *file, int line) {
    if (!msg) {
        test_fail(file, line, "expected an error, the config was accepted");
        return;
    }
    for (int i = 0; parts[i]; i++)
        if (!strstr(msg, parts[i])) test_fail(file, line, "message \"%s\" lacks \"%s\"", msg, parts[i]);
}
#define CHECK_ERROR(msg, ...) check_message((msg), (const char *const[]){__VA_ARGS__, NULL}, __FILE__, __LINE__)

static char *error_of_set(const char *extra, const char *override) {
    char *ov[] = {(char *)override};
    return error_of(extra, 1, ov);
}

TEST(config_defaults) {
    cf_config c;
    cf_config_defaults(&c);
    cf_model_config m = cf_model_config_default();
    CHECK(c.model.d_model == m.d_model && c.model.n_heads == m.n_heads && c.model.d_ff == m.d_ff);
    CHECK(c.seed == 1 && c.name == NULL);
    CHECK(c.data.vocab_size == 8000 && c.data.shared_vocab && c.data.max_len == 128);
    CHECK(c.optim.kind == CF_OPTIM_ADAMW && c.optim.beta1 == 0.9 && c.optim.beta2 == 0.98 && c.optim.eps == 1e-9 &&
          c.optim.weight_decay == 0.01);
    CHECK(c.schedule.kind == CF_SCHED_COSINE && c.schedule.lr == 5e-4 && c.schedule.min_lr == 1e-5 &&
          c.schedule.warmup_steps == 400);
    CHECK(c.train.max_steps == 10000 && c.train.batch_tokens == 4096 && c.train.grad_accum == 1);
    CHECK(c.train.label_smoothing == 0.1 && c.train.clip == 1.0 && c.train.eval_every == 1000 &&
          c.train.save_every == 1000 && c.train.log_every == 50 && c.train.keep_last == 3 && c.train.threads == 0);
    CHECK(c.train.patience == 0 && c.train.max_bad_steps == 10 && c.train.eval_max_sentences == 0 &&
          c.train.exempt_embeddings);
    CHECK(c.decode.beam == 4 && c.decode.length_penalty == 0.6 && c.decode.max_len_a == 1.2 &&
          c.decode.max_len_b == 10 && c.decode.eval_beam == 1 && c.decode.batch_size == 64);

    /* Parsing a file with only data paths: the name from the file name, derived fields resolved. */
    char *json = json_with("");
    CHECK(cf_config_parse(&c, json, ORIGIN, 0, NULL) == 0);
    free(json);
    CHECK_STR(c.name, "unit");
    CHECK(c.schedule.total_steps == 10000 && c.schedule.d_model == 256);
    CHECK(c.data.train_src && c.data.train_src[0] == '/' && c.data.test_src == NULL);
    CHECK_STR(c.source_path, ORIGIN);
    cf_config_free(&c);
    cf_config_free(&c); /* harmless twice */
}

/* Every default lies in its key's range, and every path is unique and in a known group. */
TEST(config_table_consistent) {
    int n;
    const cf_config_key *keys = cf_config_keys(&n);
    CHECK(n == 96);
    cf_config c;
    cf_config_defaults(&c);
    const char *groups[] = {"data.", "model.", "optim.", "schedule.", "train.", "decode.", "bench."};
    for (int i = 0; i < n; i++) {
        const cf_config_key *k = &keys[i];
        CHECK_MSG(cf_config_key_find(k->path) == k, "%s is not unique", k->path);
        bool grouped = !strchr(k->path, '.');
        for (int g = 0; g < 7; g++) grouped |= strncmp(k->path, groups[g], strlen(groups[g])) == 0;
        CHECK_MSG(grouped, "%s is in no known group", k->path);
        CHECK_MSG(k->doc && k->doc[0], "%s has no doc", k->path);
        double x = 0;
        const char *p = (const char *)&c + k->offset;
        if (k->type == CF_CONFIG_INT) x = (double)*(const int64_t *)p;
        else if (k->type == CF_CONFIG_U64) x = (double)*(const uint64_t *)p;
        else if (k->type == CF_CONFIG_DOUBLE) x = *(const double *)p;
        else continue;
        bool ok = (k->lo_open ? x > k->lo : x >= k->lo) && (k->hi_open ? x < k->hi : x <= k->hi);
        CHECK_MSG(ok, "default of %s (%g) is out of its range", k->path, x);
    }
}

TEST(config_error_wrong_type) {
    char *e = error_of("\"model\": {\"d_model\": \"big\"}", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": model.d_model: expected an integer, got \"big\"");
    free(e);
    e = error_of("\"train\": {\"max_steps\": 1.5}", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": train.max_steps: expected an integer, got 1.5");
    free(e);
    e = error_of("\"model\": {\"bias\": 1}", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": model.bias: expected true or false, got 1");
    free(e);
    e = error_of("\"model\": {\"dropout\": true}", 0, NULL);
    CHECK_ERROR(e, "model.dropout: expected a number, got true");
    free(e);
    e = error_of("\"train\": 3", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": train: expected an object, got 3");
    free(e);
    e = error_of("\"name\": \"a/b\"", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": name:", "\"a/b\"");
    free(e);
}

TEST(config_error_out_of_range) {
    char *e = error_of("\"train\": {\"max_steps\": 0}", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": train.max_steps: 0 is out of range (must be >= 1)");
    free(e);
    e = error_of("\"model\": {\"dropout\": 1}", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": model.dropout: 1 is out of range (must be in [0, 1))");
    free(e);
    e = error_of("\"train\": {\"label_smoothing\": -0.1}", 0, NULL);
    CHECK_ERROR(e, "train.label_smoothing: -0.1 is out of range");
    free(e);
    e = error_of("\"decode\": {\"beam\": 0}", 0, NULL);
    CHECK_ERROR(e, "decode.beam: 0 is out of range");
    free(e);
    e = error_of("\"seed\": -1", 0, NULL);
    CHECK_ERROR(e, "seed: -1 is out of range");
    free(e);
}

TEST(config_error_inconsistent) {
    char *e = error_of("\"model\": {\"d_model\": 128, \"n_heads\": 6}", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": ", "model.d_model (128)", "model.n_heads (6)");
    free(e);
    e = error_of("\"model\": {\"attention\": \"gqa\", \"n_heads\": 8, \"n_kv_heads\": 3}", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": ", "model.n_kv_heads (3)");
    free(e);
    e = error_of("\"data\": {\"shared_vocab\": false}", 0, NULL); /* a second "data": duplicates are caught */
    CHECK_ERROR(e, "key given twice");
    free(e);
    e = error_of_set("", "data.shared_vocab=false");
    CHECK_ERROR(e, ORIGIN ": model.share_embeddings", "data.shared_vocab");
    free(e);
    e = error_of("\"schedule\": {\"lr\": 1e-4, \"min_lr\": 1e-3}", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": schedule.min_lr: 0.001 exceeds schedule.lr 0.0001");
    free(e);
    /* warmup longer than the run: total_steps 0 resolves to max_steps, below the warmup */
    e = error_of("\"train\": {\"max_steps\": 100}", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": schedule.warmup_steps: 400 exceeds train.max_steps 100");
    free(e);
    e = error_of("\"schedule\": {\"total_steps\": 300}", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": schedule.warmup_steps: 400 exceeds schedule.total_steps 300");
    free(e);
    e = error_of("\"schedule\": {\"kind\": \"noam\", \"warmup_steps\": 0}", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": schedule: lr schedule noam: needs warmup_steps >= 1");
    free(e);
    e = error_of("\"data\": {\"max_len\": 300}", 0, NULL);
    CHECK_ERROR(e, "key given twice");
    free(e);
    e = error_of_set("", "data.max_len=300");
    CHECK_ERROR(e, ORIGIN ": data.max_len: 300 exceeds model.max_len 256");
    free(e);
    e = error_of("\"optim\": {\"kind\": \"sgd\", \"nesterov\": true}", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": optim.nesterov");
    free(e);
}

TEST(config_error_unknown_key_suggests) {
    char *e = error_of("\"model\": {\"dmodel\": 128}", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": unknown key \"model.dmodel\" (did you mean \"model.d_model\"?)");
    free(e);
    e = error_of("\"sed\": 3", 0, NULL);
    CHECK_ERROR(e, "unknown key \"sed\" (did you mean \"seed\"?)");
    free(e);
    e = error_of("\"optim\": {\"lr\": 0.1}", 0, NULL); /* the right name in the wrong group */
    CHECK_ERROR(e, "unknown key \"optim.lr\" (did you mean \"schedule.lr\"?)");
    free(e);
    e = error_of("\"modle\": {}", 0, NULL);
    CHECK_ERROR(e, "unknown key \"modle\" (did you mean \"model\"?)");
    free(e);
    e = error_of("\"model\": {\"qqqqqqqqqq\": 1}", 0, NULL);
    CHECK_ERROR(e, "unknown key \"model.qqqqqqqqqq\" (docs/config.md lists the keys)");
    free(e);
}

TEST(config_error_unknown_override_key) {
    char *e = error_of_set("", "train.max_step=5");
    CHECK_ERROR(e, ORIGIN ": --set train.max_step=5: unknown key \"train.max_step\" (did you mean \"train.max_steps\"?)");
    free(e);
    e = error_of_set("", "model=5");
    CHECK_ERROR(e, "--set model=5: unknown key \"model\"");
    free(e);
    e = error_of_set("", "model.d_model");
    CHECK_ERROR(e, "--set model.d_model: expected key.path=value");
    free(e);
}

TEST(config_error_bad_override_value) {
    char *e = error_of_set("", "model.d_model=abc");
    CHECK_ERROR(e, ORIGIN ": --set model.d_model=abc: expected an integer, got \"abc\"");
    free(e);
    e = error_of_set("", "train.max_steps=1.5");
    CHECK_ERROR(e, "--set train.max_steps=1.5: expected an integer, got 1.5");
    free(e);
    e = error_of_set("", "model.pre_norm=yes");
    CHECK_ERROR(e, "--set model.pre_norm=yes: expected true or false, got \"yes\"");
    free(e);
    e = error_of_set("", "train.grad_accum=0");
    CHECK_ERROR(e, "--set train.grad_accum=0: 0 is out of range");
    free(e);
}

TEST(config_error_missing_data_file) {
    char *e = error_of_set("", "data.train_src=/nonexistent/cformer/x.de");
    CHECK_ERROR(e, ORIGIN ": data.train_src: cannot open \"/nonexistent/cformer/x.de\"");
    free(e);
    e = error_of_set("", "data.tokenizer=no-such-tokenizer.json");
    CHECK_ERROR(e, "data.tokenizer: cannot open \"no-such-tokenizer.json\"");
    free(e);
    /* ... unless path checks are off: then the path is only made absolute */
    char *json = json_with("");
    char *ov[] = {"data.train_src=missing/x.de"};
    cf_config c;
    CHECK(cf_config_parse_opts(&c, json, ORIGIN, 1, ov, &(cf_config_opts){.check_paths = false}) == 0);
    CHECK(c.data.train_src && c.data.train_src[0] == '/' && strstr(c.data.train_src, "/missing/x.de"));
    cf_config_free(&c);
    free(json);
    CHECK(cf_config_load(&c, "/nonexistent/cformer/run.json", 0, NULL) != 0);
    CHECK_ERROR(cf_error_message(), "/nonexistent/cformer/run.json: cannot read the config");
}

TEST(config_error_train_data_both_or_neither) {
    char tsv[512];
    snprintf(tsv, sizeof tsv, "data.train_tsv=%s/pairs.tsv", data_dir());
    char *e = error_of_set("", tsv);
    CHECK_ERROR(e, ORIGIN ": data.train_tsv and data.train_src/data.train_tgt are both set");
    free(e);
    char *neither[] = {"data.train_src=null", "data.train_tgt="};
    e = error_of("", 2, neither);
    CHECK_ERROR(e, ORIGIN ": no training data: set data.train_src and data.train_tgt, or data.train_tsv");
    free(e);
    e = error_of_set("", "data.train_tgt=null");
    CHECK_ERROR(e, "data.train_src is set but data.train_tgt is not");
    free(e);
    char *no_valid[] = {"data.valid_src=null", "data.valid_tgt=null"};
    e = error_of("", 2, no_valid);
    CHECK_ERROR(e, "no validation data");
    free(e);
    char *tsv_only[] = {"data.train_src=null", "data.train_tgt=null", tsv};
    e = error_of("", 3, tsv_only);
    CHECK(e == NULL);
    free(e);
}

/* cformer bench: no data needed with no_data; its lengths must fit the model's positions. */
TEST(config_bench_section) {
    cf_config c;
    cf_config_opts opts = {.check_paths = false, .no_data = true};
    CHECK(cf_config_parse_opts(&c, "{\"bench\": {\"src_len\": 48}}", ORIGIN, 0, NULL, &opts) == 0);
    CHECK(c.bench.src_len == 48 && c.bench.tgt_len == 32 && c.bench.batch_size == 32 && c.data.train_src == NULL);
    cf_config_free(&c);
    CHECK(cf_config_parse_opts(&c, "{}", ORIGIN, 0, NULL, &(cf_config_opts){.check_paths = false}) != 0);
    CHECK_ERROR(cf_error_message(), "no training data");
    char *too_long[] = {"bench.tgt_len=300"};
    CHECK(cf_config_parse_opts(&c, "{}", ORIGIN, 1, too_long, &opts) != 0);
    CHECK_ERROR(cf_error_message(), "bench.src_len/bench.tgt_len: 32/300 exceed model.max_len 256");
}

TEST(config_error_enum_lists_allowed) {
    char *e = error_of("\"model\": {\"attention\": \"mhx\"}", 0, NULL);
    CHECK_ERROR(e, ORIGIN ": model.attention: unknown value \"mhx\" (expected one of mha, gqa, mqa, mla)");
    free(e);
    e = error_of_set("", "schedule.kind=exp");
    CHECK_ERROR(e, "--set schedule.kind=exp: unknown value \"exp\" (expected one of cosine, linear, constant, noam)");
    free(e);
    e = error_of("\"optim\": {\"kind\": 1}", 0, NULL);
    CHECK_ERROR(e, "optim.kind: expected a name, got 1", "adamw, adam, sgd");
    free(e);
}

TEST(config_error_invalid_json) {
    cf_config c;
    CHECK(cf_config_parse(&c, "{\n  \"seed\": 1,\n  \"model\": {\"d_model\": }\n}", ORIGIN, 0, NULL) != 0);
    CHECK_ERROR(cf_error_message(), ORIGIN ": line 3: invalid JSON");
    CHECK(cf_config_parse(&c, "[1, 2]", ORIGIN, 0, NULL) != 0);
    CHECK_ERROR(cf_error_message(), "expected a JSON object at the top level");
}

TEST(config_overrides_each_type) {
    char path[512];
    snprintf(path, sizeof path, "data.valid_tsv=%s/pairs.tsv", data_dir());
    char *ov[] = {"model.d_model=512",      "model.dropout=0.25",   "model.bias=false", "name=2024",
                  "model.attention=gqa",    "model.n_kv_heads=2",   "optim.kind=\"sgd\"", "data.valid_src=null",
                  "data.valid_tgt=",        path,                   "train.max_steps=100", "schedule.warmup_steps=10",
                  "seed=12345678901"};
    char *json = json_with("\"model\": {\"d_model\": 128, \"bias\": true}");
    cf_config c;
    int status = cf_config_parse(&c, json, ORIGIN, (int)(sizeof ov / sizeof ov[0]), ov);
    free(json);
    CHECK_MSG(status == 0, "%s", cf_error_message());
    if (status != 0) return;
    CHECK(c.model.d_model == 512 && c.schedule.d_model == 512);
    CHECK(c.model.dropout == 0.25 && !c.model.bias);
    CHECK_STR(c.name, "2024");
    CHECK(c.model.attention == CF_ATTN_GQA && c.model.n_kv_heads == 2 && c.optim.kind == CF_OPTIM_SGD);
    CHECK(c.data.valid_src == NULL && c.data.valid_tgt == NULL && c.data.valid_tsv && c.data.valid_tsv[0] == '/');
    CHECK(c.train.max_steps == 100 && c.schedule.total_steps == 100 && c.seed == 12345678901ull);
    cf_config_free(&c);
}

TEST(config_round_trip) {
    char *ov[] = {"model.attention=mla", "model.kv_lora_rank=48", "model.pos_encoding=rope", "schedule.kind=linear",
                  "schedule.lr=0.00123", "decode.length_penalty=0.7", "train.exempt_embeddings=false", "name=rt",
                  "model.norm_eps=1e-6", "optim.eps=3e-9"};
    char *json = json_with("\"model\": {\"norm\": \"rmsnorm\", \"activation\": \"swiglu\"}");
    cf_config a, b;
    int status = cf_config_parse(&a, json, ORIGIN, (int)(sizeof ov / sizeof ov[0]), ov);
    free(json);
    CHECK_MSG(status == 0, "%s", cf_error_message());
    if (status != 0) return;
    char *text = cf_config_to_json(&a);
    status = cf_config_parse(&b, text, "elsewhere/config.json", 0, NULL);
    CHECK_MSG(status == 0, "%s", cf_error_message());
    if (status == 0) {
        const char *diff = cf_config_first_difference(&a, &b);
        CHECK_MSG(diff == NULL, "%s differs after the round trip", diff);
        char *again = cf_config_to_json(&b);
        CHECK_STR(again, text);
        free(again);
        b.model.d_ff++;
        CHECK_STR(cf_config_first_difference(&a, &b), "model.d_ff");
        cf_config_free(&b);
    }
    /* every key is written */
    int n;
    const cf_config_key *keys = cf_config_keys(&n);
    for (int i = 0; i < n; i++) {
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", strrchr(keys[i].path, '.') ? strrchr(keys[i].path, '.') + 1 : keys[i].path);
        CHECK_MSG(strstr(text, quoted), "%s missing from to_json", keys[i].path);
    }
    free(text);
    cf_config_free(&a);
}

TEST(config_all_configs_parse) {
    char pattern[4096];
    snprintf(pattern, sizeof pattern, "%s/configs/*.json", CF_SOURCE_DIR);
    glob_t g;
    CHECK(glob(pattern, 0, NULL, &g) == 0);
    CHECK_MSG(g.gl_pathc >= 9, "only %zu configs", (size_t)g.gl_pathc);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        cf_config c;
        const char *base = strrchr(g.gl_pathv[i], '/') + 1;
        /* the synthetic benchmark configs (cformer bench) have no data section */
        cf_config_opts opts = {.check_paths = false, .no_data = strncmp(base, "bench_", 6) == 0};
        if (cf_config_load_opts(&c, g.gl_pathv[i], 0, NULL, &opts) != 0) {
            test_fail(__FILE__, __LINE__, "%s", cf_error_message());
            continue;
        }
        CHECK_MSG(strncmp(c.name, base, strlen(c.name)) == 0 && base[strlen(c.name)] == '.', "%s: name %s", base, c.name);
        if (strcmp(base, "tiny.json") == 0)
            CHECK(c.model.d_model == 32 && c.model.n_heads == 2 && c.train.max_steps <= 100 && c.data.vocab_size == 300);
        if (strcmp(base, "toy.json") == 0)
            CHECK(c.model.d_model == 128 && c.model.n_heads == 4 && c.model.d_ff == 512 && c.data.vocab_size == 1000);
        if (strcmp(base, "toy_mla.json") == 0) CHECK(c.model.attention == CF_ATTN_MLA);
        if (strcmp(base, "bench_tiny.json") == 0)
            CHECK(c.model.d_model == 128 && c.model.n_heads == 4 && c.model.enc_layers == 2 && c.model.d_ff == 512 &&
                  c.data.vocab_size == 2000 && c.bench.batch_size == 32 && c.bench.src_len == 32 && c.bench.tgt_len == 32);
        if (strcmp(base, "bench_small.json") == 0)
            CHECK(c.model.d_model == 256 && c.model.n_heads == 8 && c.model.enc_layers == 3 && c.model.d_ff == 1024 &&
                  c.data.vocab_size == 8000 && c.bench.batch_size == 32 && c.bench.src_len == 48 && c.bench.tgt_len == 48);
        if (strcmp(base, "practice03.json") == 0)
            CHECK(c.schedule.kind == CF_SCHED_NOAM && c.optim.kind == CF_OPTIM_ADAM && c.decode.beam == 5);
        cf_config_free(&c);
    }
    globfree(&g);
}

TEST(config_doc_in_sync) {
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/config.md", CF_SOURCE_DIR);
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f, "cannot open %s", path);
    if (!f) return;
    char *on_disk = cf_xcalloc(1 << 20, 1);
    size_t len = fread(on_disk, 1, (1 << 20) - 1, f);
    fclose(f);
    on_disk[len] = 0;
    char *generated = cf_config_doc_markdown();
    CHECK_MSG(strcmp(on_disk, generated) == 0,
              "docs/config.md differs from the key table: run `build/cformer config --doc > docs/config.md`");
    int n;
    const cf_config_key *keys = cf_config_keys(&n);
    for (int i = 0; i < n; i++) {
        char row[80];
        snprintf(row, sizeof row, "| `%s` |", keys[i].path);
        CHECK_MSG(strstr(generated, row), "%s has no row", keys[i].path);
    }
    free(generated);
    free(on_disk);
}

/* The resume check refuses a change to exactly these keys (they fix parameter, optimizer-state or
 * vocabulary shapes); the table's SHAPES flag is where that list lives, as RUN_ONLY is for the
 * keys checkpoints leave out. */
TEST(config_shape_keys_are_flagged_in_the_table) {
    static const char *expected[] = {"data.tokenizer", "data.vocab_size", "data.shared_vocab", "model.d_model",
        "model.n_heads", "model.n_kv_heads", "model.head_dim", "model.attention", "model.kv_lora_rank",
        "model.q_lora_rank", "model.qk_nope_dim", "model.qk_rope_dim", "model.v_head_dim", "model.enc_layers",
        "model.dec_layers", "model.d_ff", "model.activation", "model.norm", "model.pre_norm", "model.pos_encoding",
        "model.max_len", "model.bias", "model.share_embeddings", "model.tie_output", "optim.kind",
        "model.rel_clip", "model.rel_per_head", "model.qk_norm", "model.num_experts", "model.n_shared_experts",
        "model.moe_d_ff", "data.task", "data.copy_vocab"};
    const size_t n_expected = sizeof expected / sizeof expected[0];
    int n;
    const cf_config_key *keys = cf_config_keys(&n);
    size_t flagged = 0;
    for (int i = 0; i < n; i++) {
        bool want = false;
        for (size_t j = 0; j < n_expected; j++) want |= strcmp(keys[i].path, expected[j]) == 0;
        CHECK_MSG(keys[i].sets_shapes == want, "%s: sets_shapes is %d", keys[i].path, keys[i].sets_shapes);
        flagged += keys[i].sets_shapes;
        /* and these say how to run, not what to compute: kept out of checkpoint metadata */
        bool run_only = strcmp(keys[i].path, "train.threads") == 0 || strcmp(keys[i].path, "train.adapt_threads") == 0 ||
                        strcmp(keys[i].path, "train.bucket_mb") == 0;
        CHECK_MSG(keys[i].run_only == run_only, "%s: run_only is %d", keys[i].path, keys[i].run_only);
    }
    CHECK(flagged == n_expected);
}
