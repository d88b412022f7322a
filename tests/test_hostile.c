/* tests/test_hostile.c - hostile input through the real CLI: absurd config sizes, a model that
 * decodes line breaks and NUL bytes, crafted tokenizer.json, model.safetensors, state.json and
 * latest/best links in a run directory, evaluation text that is not text, and translate's stdin.
 *
 * Each case asserts the exit code (2: bad input; never a signal), a one-line message naming the
 * file, key or line at fault, and a stderr free of sanitizer reports. The run directories are
 * tests/clilib.h's small tiny.json run, trained once and copied per case.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "tests/clilib.h"
#include "tests/test.h"
#include "tests/testlib.h"
#include "train/checkpoint.h"
#include "train/run.h"

/* exit code, culprit named, one line, clean */
static void check_refused(cli_result *r, int code, const char *culprit, const char *what) {
    CHECK_MSG(r->code == code, "%s: exit %d, want %d\n%s", what, r->code, code, r->err);
    CHECK_MSG(cli_clean_stderr(r->err), "%s: sanitizer report:\n%s", what, r->err);
    CHECK_MSG(strstr(r->err, culprit), "%s: the message does not name %s:\n%s", what, culprit, r->err);
    const char *nl = strchr(r->err, '\n');
    CHECK_MSG(nl && nl[1] == 0, "%s: not one line:\n%s", what, r->err);
    cli_result_free(r);
}

/* ---- a run to damage ---- */

static const char *base_run(void) {
    static char *dir;
    if (dir) return dir;
    dir = test_fmt("%s/base", cli_root());
    cli_args a;
    cli_train_args(&a, dir, false, NULL);
    cli_result r = cli_runv(NULL, a.n, a.v);
    cli_args_free(&a);
    CHECK_EXIT(r, 0);
    cli_result_free(&r);
    return dir;
}

/* A fresh copy of the base run (cp -a keeps the links). */
static char *copy_run(const char *tag) {
    char *dir = test_fmt("%s/%s", cli_root(), tag), *cmd = test_fmt("rm -rf '%s' && cp -a '%s' '%s'", dir, base_run(), dir);
    CHECK(system(cmd) == 0);
    free(cmd);
    return dir;
}

/* ---- 1. sizes ---- */

TEST(hostile_absurd_sizes_are_config_errors_naming_the_key) {
    const char *cases[][2] = {
        {"model.d_model=1000000000", "model.d_model"}, {"model.d_ff=1e12", "model.d_ff"},
        {"model.max_len=1e9", "model.max_len"},         {"data.vocab_size=1e9", "data.vocab_size"},
        {"train.batch_tokens=1e12", "train.batch_tokens"}, {"decode.batch_size=1e9", "decode.batch_size"},
        {"model.n_heads=1e7", "model.n_heads"},         {"model.dec_layers=1e6", "model.dec_layers"},
        {"train.grad_accum=1e10", "train.grad_accum"},  {"decode.max_len_a=1e300", "decode.max_len_a"},
        {"model.rope_base=1e999", "model.rope_base"},   {"schedule.lr=-1e999", "schedule.lr"},
        {"seed=1e300", "seed"},                         {"train.max_bad_steps=1e12", "train.max_bad_steps"},
    };
    char *cfg = test_fmt("%s/configs/tiny.json", CF_SOURCE_DIR);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_result r = cli_run(NULL, "config", cfg, "--no-check-paths", "--set", cases[i][0], NULL);
        check_refused(&r, 2, cases[i][1], cases[i][0]);
    }
    /* a "config" that is not one: 20 MiB of zeros, bounded before it is read whole */
    char *big = test_fmt("%s/big.json", cli_root());
    FILE *f = fopen(big, "wb");
    CHECK(f && ftruncate(fileno(f), 20 << 20) == 0);
    if (f) fclose(f);
    cli_result r = cli_run(NULL, "config", big, NULL);
    check_refused(&r, 2, "larger than 16 MiB", "a 20 MiB config");
    unlink(big);
    free(big);
    free(cfg);
}

/* ---- 2. the line contract of translate and eval ---- */

/* A copy of the base run whose latest checkpoint is a model that always emits token `id`: the
 * decoder's final norm outputs the constant e_0 and only that token's (tied) embedding has a 0-th
 * component, so its logit is 10 and every other's 0. */
static char *forced_token_run(int32_t id, const char *tag) {
    char *dir = copy_run(tag);
    cf_run r;
    CHECK_MSG(cf_run_open(&r, dir, NULL) == 0, "%s", cf_error_message());
    char *config = NULL;
    CHECK(cf_checkpoint_load(r.ckpt_dir, &r.model->params, NULL, NULL, &config) == 0);
    cf_tensor *w = cf_params_find(&r.model->params, "decoder.norm.weight");
    cf_tensor *b = cf_params_find(&r.model->params, "decoder.norm.bias");
    cf_tensor *e = r.model->output_proj;
    CHECK(w && b && e);
    if (w && b && e) {
        memset(w->data, 0, (size_t)w->numel * sizeof(cf_real));
        memset(b->data, 0, (size_t)b->numel * sizeof(cf_real));
        b->data[0] = 1;
        int64_t d = e->shape[1];
        for (int64_t v = 0; v < e->shape[0]; v++) e->data[v * d] = v == id ? 10 : 0;
        CHECK_MSG(cf_checkpoint_save(dir, 100, &r.model->params, NULL, NULL, config, false, 10) == 0, "%s",
                  cf_error_message());
    }
    free(config);
    cf_run_close(&r);
    return dir;
}

/* Counts '\n' in text and checks that no line holds a NUL, CR or other line break, and that it
 * is valid UTF-8 (n bytes). */
static int count_clean_lines(const char *text, size_t n, const char *what) {
    int lines = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        lines += c == '\n';
        CHECK_MSG(c == '\n' || (c >= 0x20 && c != 0x7f) || c >= 0x80, "%s: byte 0x%02x at %zu", what, c, i);
    }
    return lines;
}

TEST(hostile_translate_and_eval_write_one_line_per_input_whatever_the_model_decodes) {
    /* stdin: 200 lines, among them empty ones, a NUL, a lone CR, invalid UTF-8 and a last line
     * without its newline */
    char *in = test_fmt("%s/in200", cli_root());
    FILE *f = fopen(in, "wb");
    for (int i = 0; i < 199; i++) {
        if (i % 50 == 7) fputs("\n", f);
        else if (i % 50 == 8) fwrite("ein\0Hund\n", 1, 9, f);
        else if (i % 50 == 9) fputs("\r\n", f);
        else if (i % 50 == 10) fputs("a\rb \xff\xfe c\n", f);
        else fprintf(f, "der Hund %d schläft .\n", i);
    }
    fputs("zuletzt", f);
    fclose(f);
    /* bytes whose token the model then emits: LF, CR, NUL, RS (Python's splitlines breaks there);
     * every byte value is checked by bounds_hypothesis_lines_hold_no_line_break_or_control */
    const int bytes[] = {0x0A, 0x0D, 0x00, 0x1E};
    for (size_t k = 0; k < sizeof bytes / sizeof bytes[0]; k++) {
        char tag[32], what[64];
        snprintf(tag, sizeof tag, "forced-%02x", bytes[k]);
        snprintf(what, sizeof what, "a model that emits byte 0x%02x", bytes[k]);
        char *dir = forced_token_run(CF_TOK_BYTE_BASE + bytes[k], tag);
        char *out = test_fmt("%s/%s.out", cli_root(), tag);
        cli_result r = cli_run(&(cli_opts){.stdin_path = in, .stdout_path = out}, "translate", dir, NULL);
        CHECK_MSG(r.code == 0 && cli_clean_stderr(r.err), "%s: exit %d\n%s", what, r.code, r.err);
        cli_result_free(&r);
        size_t n;
        char *text = test_read_file(out, &n);
        int lines = text ? count_clean_lines(text, n, what) : -1;
        CHECK_MSG(lines == 200, "%s: %d lines out for 200 in", what, lines);
        /* the model did emit: a line is not empty */
        CHECK_MSG(text && n > 400, "%s: the outputs are empty (%zu bytes): the forced model did not work", what, n);
        free(text);
        /* eval's hypothesis file: one line per test sentence, written atomically */
        r = cli_run(NULL, "eval", dir, "--split", "test", NULL);
        CHECK_MSG(r.code == 0 && strstr(r.out, "hypotheses in "), "%s: eval exit %d\n%s%s", what, r.code, r.out, r.err);
        cli_result_free(&r);
        char *hyp = test_fmt("%s/checkpoints/step-00000100/test.hyp", dir);
        text = test_read_file(hyp, &n);
        lines = text ? count_clean_lines(text, n, what) : -1;
        CHECK_MSG(lines == 20, "%s: %s has %d lines for 20 sentences", what, hyp, lines);
        free(text);
        free(hyp);
        free(out);
        test_rm_tree(dir);
        free(dir);
    }
    free(in);
}

TEST(hostile_eval_reports_a_hypothesis_file_it_cannot_write) {
    const char *dir = base_run();
    cli_result r = cli_run(NULL, "eval", dir, "--split", "test", "--hyp-out", "/nonexistent/dir/x.hyp", NULL);
    CHECK_EXIT(r, 1);
    CHECK(strstr(r.err, "/nonexistent/dir/x.hyp") && strstr(r.out, "hypotheses NOT written"));
    cli_result_free(&r);
    /* translate into a full device */
    char *in = test_fmt("%s/test.de", cli_root());
    r = cli_run(&(cli_opts){.stdin_path = in, .stdout_path = "/dev/full"}, "translate", dir, NULL);
    check_refused(&r, 1, "<stdout>: write failed: No space left on device", "translate > /dev/full");
    free(in);
}

TEST(hostile_translate_stdin_long_lines_are_bounded) {
    /* a 17 MiB line (cut to 16 MiB, warned about) between two short ones: three lines out */
    char *in = test_fmt("%s/huge.in", cli_root());
    FILE *f = fopen(in, "wb");
    fputs("der Hund\n", f);
    for (int i = 0; i < (17 << 20) / 8; i++) fputs("Hunde x ", f);
    fputs("\ndie Katze\n", f);
    fclose(f);
    char *out = test_fmt("%s/huge.out", cli_root());
    cli_result r = cli_run(&(cli_opts){.stdin_path = in, .stdout_path = out}, "translate", base_run(), NULL);
    CHECK_EXIT(r, 0);
    CHECK_CLEAN(r);
    CHECK_MSG(strstr(r.err, "longer than 16777216 bytes"), "%s", r.err);
    cli_result_free(&r);
    size_t n;
    char *text = test_read_file(out, &n);
    CHECK(text && count_clean_lines(text, n, "huge line") == 3);
    free(text);
    unlink(in);
    free(in);
    free(out);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(CF_SANITIZER)
#define UNDER_SANITIZER 1 /* their allocators reserve terabytes of address space: no ulimit -v */
#else
#define UNDER_SANITIZER 0
#endif

/* 48 lines of 4 MiB (1M tokens each, of which the model reads 127): translate keeps only what it
 * reads, so the run fits the 600 MB that fits a training run. It used to keep each line's whole
 * encoding until its chunk of 4096 lines was done (~15 MB a line: here 720 MB, and an assertion
 * when the allocation failed; found in the review after the merge). */
TEST(hostile_translate_memory_stays_bounded_over_many_long_lines) {
    if (UNDER_SANITIZER) {
        printf("    skipped under a sanitizer (it needs more address space than any limit)\n");
        return;
    }
    char *in = test_fmt("%s/long48.in", cli_root()), *out = test_fmt("%s/long48.out", cli_root());
    FILE *f = fopen(in, "wb");
    for (int i = 0; i < 48; i++) {
        for (int k = 0; k < (4 << 20) / 8; k++) fputs("Hunde x ", f);
        fputc('\n', f);
    }
    fclose(f);
    cli_result r = cli_run(&(cli_opts){.stdin_path = in, .stdout_path = out, .ulimit_v_kib = "600000"}, "translate",
                           base_run(), "--threads", "1", NULL);
    CHECK_EXIT(r, 0);
    CHECK_CLEAN(r);
    cli_result_free(&r);
    size_t n;
    char *text = test_read_file(out, &n);
    CHECK(text && count_clean_lines(text, n, "48 long lines") == 48);
    free(text);
    unlink(in);
    free(in);
    free(out);
}

/* ---- 3. crafted files in a run directory ---- */

static void write_text(const char *path, const char *text) { CHECK(test_write_file(path, text, strlen(text))); }

TEST(hostile_crafted_tokenizer_json_is_refused) {
    char *dir = copy_run("tok"), *tok = test_fmt("%s/tokenizer.json", dir);
    write_text(tok, "{\"format\": \"cformer-bpe\", \"version\": 1, \"vocab\": [\"<pad>\"], \"merges\": [[4, 4]]}");
    cli_result r = cli_run(NULL, "translate", dir, NULL);
    check_refused(&r, 2, tok, "a crafted tokenizer.json");
    test_rm_tree(dir);
    free(tok);
    free(dir);
}

/* Writes a safetensors file: an 8-byte header length then the header text (and nothing else). */
static void write_st(const char *path, uint64_t hlen, const char *header) {
    FILE *f = fopen(path, "wb");
    fwrite(&hlen, 8, 1, f);
    fputs(header, f);
    fclose(f);
}

TEST(hostile_crafted_safetensors_are_refused_with_bounded_memory) {
    char *dir = copy_run("st"), *model = test_fmt("%s/checkpoints/step-00000008/model.safetensors", dir);
    /* 1. a header length of 1 TB */
    write_st(model, (uint64_t)1 << 40, "{}");
    cli_result r = cli_run(NULL, "info", dir, NULL);
    check_refused(&r, 2, model, "a 1 TB header length");
    /* 2. a header of two million JSON values (cJSON would take ~128 MB for them) */
    size_t n = 4u << 20;
    char *h = malloc(n + 1);
    h[0] = '[';
    for (size_t i = 1; i + 1 < n; i += 2) h[i] = '0', h[i + 1] = ',';
    h[n - 1] = ']';
    h[n] = 0;
    write_st(model, n, h);
    free(h);
    r = cli_run(NULL, "info", dir, NULL);
    check_refused(&r, 2, "JSON values", "a header of 2M values");
    /* 3. shapes whose product overflows, 4. offsets past the file */
    const char *headers[][2] = {
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,0]}}",
         "shape too large"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "data_offsets outside"},
        {"{\"w\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}", "unsupported dtype 'F16'"},
    };
    for (int i = 0; i < 3; i++) {
        write_st(model, strlen(headers[i][0]), headers[i][0]);
        r = cli_run(NULL, "info", dir, NULL);
        check_refused(&r, 2, headers[i][1], headers[i][0]);
    }
    test_rm_tree(dir);
    free(model);
    free(dir);
}

static void edit_step(cJSON *r) { cJSON_ReplaceItemInObject(r, "best_step", cJSON_CreateNumber(1e300)); }
static void edit_counter(cJSON *r) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(r, "data"), "rng_counter", cJSON_CreateString("12abc"));
}
static void edit_window(cJSON *r) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(r, "log_window"), "tokens", cJSON_CreateNumber(-5));
}
static void edit_bleu(cJSON *r) { cJSON_ReplaceItemInObject(r, "best_bleu", cJSON_CreateNumber(1e308)); }
static void edit_pending(cJSON *r) { cJSON_AddStringToObject(r, "eval_pending", "yes"); }

TEST(hostile_crafted_state_json_is_refused_naming_the_key) {
    const struct { void (*edit)(cJSON *); const char *key; } cases[] = {
        {edit_step, "\"best_step\""}, {edit_counter, "\"data.rng_counter\""}, {edit_window, "\"tokens\""},
        {edit_bleu, "\"best_bleu\""}, {edit_pending, "\"eval_pending\""}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = copy_run("state");
        char *ckpt = test_fmt("%s/checkpoints/step-00000008", dir);
        test_restamp_state(ckpt, NULL, cases[i].edit);
        free(ckpt);
        cli_args a;
        cli_train_args(&a, dir, true, NULL);
        cli_result r = cli_runv(NULL, a.n, a.v);
        cli_args_free(&a);
        check_refused(&r, 2, cases[i].key, cases[i].key);
        test_rm_tree(dir);
        free(dir);
    }
    /* a changed digit without a new checksum: the checksum says so */
    char *dir = copy_run("state-crc"), *path = test_fmt("%s/checkpoints/step-00000008/state.json", dir);
    char *text = test_read_file(path, NULL), *p = strstr(text, "\"best_step\":\t");
    CHECK(p != NULL);
    if (p) p[strlen("\"best_step\":\t")] ^= 1; /* 4 -> 5 */
    write_text(path, text);
    cli_result r = cli_run(NULL, "info", dir, NULL);
    check_refused(&r, 2, "state.json: checksum mismatch", "an edited state.json");
    test_rm_tree(dir);
    free(text);
    free(path);
    free(dir);
}

TEST(hostile_latest_and_best_links_must_name_a_step_beside_them) {
    const char *targets[] = {"/etc", "../../", "step-00000004/../../..", "step-1", "../base/checkpoints/step-00000008"};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        char *dir = copy_run("link"), *latest = test_fmt("%s/checkpoints/latest", dir);
        CHECK(unlink(latest) == 0 && symlink(targets[i], latest) == 0);
        cli_result r = cli_run(NULL, "info", dir, NULL);
        check_refused(&r, 2, "not a step-NNNNNNNN directory", targets[i]);
        char *best = test_fmt("%s/checkpoints/best", dir);
        CHECK(unlink(best) == 0 && symlink(targets[i], best) == 0);
        r = cli_run(NULL, "eval", best, NULL);
        check_refused(&r, 2, "not a step-NNNNNNNN directory", targets[i]);
        test_rm_tree(dir);
        free(best);
        free(latest);
        free(dir);
    }
}

/* ---- 4. evaluation text ---- */

TEST(hostile_evaluation_text_must_be_text) {
    /* it used to end in an assertion (abort) when BLEU met the reference */
    const struct { const char *line; const char *what; } cases[] = {
        {"a \xff b\n", "not valid UTF-8"}, {"ein\0Hund\n", "a NUL"}, {"\xed\xa0\x80 surrogate\n", "not valid UTF-8"}};
    for (int i = 0; i < 3; i++) {
        char *ref = test_fmt("%s/bad-%d.en", cli_root(), i), *src = test_fmt("%s/valid.en", cli_root());
        char *good = test_read_file(src, NULL);
        FILE *f = fopen(ref, "wb");
        fputs(good, f);
        fwrite(cases[i].line, 1, i == 1 ? 9 : strlen(cases[i].line), f); /* line 21 */
        fclose(f);
        char *de = test_fmt("%s/bad.de", cli_root()), *valid_de = test_fmt("%s/valid.de", cli_root());
        char *text = test_read_file(valid_de, NULL);
        f = fopen(de, "wb");
        fprintf(f, "%sder Hund\n", text);
        fclose(f);
        char *set_src = test_fmt("data.valid_src=%s", de), *set_tgt = test_fmt("data.valid_tgt=%s", ref);
        const char *extra[] = {set_src, set_tgt, NULL};
        char *dir = test_fmt("%s/badref-%d", cli_root(), i), *where = test_fmt("%s:21:", ref);
        cli_args a;
        cli_train_args(&a, dir, false, extra);
        cli_result r = cli_runv(NULL, a.n, a.v);
        cli_args_free(&a);
        check_refused(&r, 2, where, cases[i].what);
        test_rm_tree(dir);
        free(where);
        free(dir);
        free(set_src);
        free(set_tgt);
        free(de);
        free(valid_de);
        free(text);
        free(good);
        free(src);
        free(ref);
    }
}
