/* tests/test_data_corpus.c - line reader (plain, gzip, CRLF, long lines) and parallel corpora
 * (misaligned files, empty and over-long pairs, TSV). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "data/corpus.h"
#include "tests/test.h"
#include "tests/testlib.h"

static char paths[8][512];

static const char *write_file(int slot, const char *dir, const char *name, const char *data, size_t n) {
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", dir, name);
    size_t len = strlen(name);
    if (len > 3 && strcmp(name + len - 3, ".gz") == 0) {
        gzFile g = gzopen(paths[slot], "wb");
        gzwrite(g, data, (unsigned)n);
        gzclose(g);
    } else {
        FILE *f = fopen(paths[slot], "wb");
        fwrite(data, 1, n, f);
        fclose(f);
    }
    return paths[slot];
}

static const char *write_text(int slot, const char *dir, const char *name, const char *text) {
    return write_file(slot, dir, name, text, strlen(text));
}

/* A tokenizer without merges: one id per byte, so token counts equal byte counts. */
static cf_tokenizer *bytes_tokenizer(void) {
    return cf_tokenizer_from_bpe(cf_bpe_trainer_finish(cf_bpe_trainer_new(), CF_BPE_N_BASE));
}

TEST(corpus_misaligned_files_name_both) {
    const char *dir = test_tmpdir("corpus");
    const char *a = write_text(0, dir, "a.de", "eins\nzwei\ndrei\n");
    const char *b = write_text(1, dir, "b.en", "one\ntwo\n");
    cf_tokenizer *t = bytes_tokenizer();
    cf_corpus *c = cf_corpus_load(&(cf_corpus_opts){.src_path = a, .tgt_path = b}, t);
    CHECK(c == NULL);
    const char *m = cf_error_message();
    CHECK_MSG(strstr(m, a) && strstr(m, b) && strstr(m, "3 lines") && strstr(m, "2 lines"), "message: %s", m);
    /* and the other way round, target longer */
    c = cf_corpus_load(&(cf_corpus_opts){.src_path = b, .tgt_path = a}, t);
    CHECK(c == NULL && strstr(cf_error_message(), "2 lines") && strstr(cf_error_message(), "3 lines"));
    c = cf_corpus_load(&(cf_corpus_opts){.src_path = a, .tgt_path = "/nonexistent/x.en"}, t);
    CHECK(c == NULL && strstr(cf_error_message(), "/nonexistent/x.en"));
    cf_tokenizer_free(t);
}

TEST(corpus_crlf_and_missing_final_newline) {
    const char *dir = test_tmpdir("corpus");
    const char *a = write_text(0, dir, "a.de", "x y\r\nzz\r\nlast");
    const char *b = write_text(1, dir, "b.en", "X\nYY\r\nLAST\n");
    cf_tokenizer *t = bytes_tokenizer();
    cf_corpus *c = cf_corpus_load(&(cf_corpus_opts){.src_path = a, .tgt_path = b, .keep_text = true}, t);
    CHECK_MSG(c != NULL, "%s", cf_error_message());
    if (!c) return;
    CHECK(c->n == 3 && c->stats.n_lines == 3);
    CHECK_STR(c->src_text + c->src_text_off[0], "x y");
    CHECK_STR(c->src_text + c->src_text_off[1], "zz");
    CHECK_STR(c->src_text + c->src_text_off[2], "last");
    CHECK_STR(c->tgt_text + c->tgt_text_off[1], "YY");
    CHECK_STR(c->tgt_text + c->tgt_text_off[2], "LAST");
    CHECK(cf_corpus_src_len(c, 0) == 3 && cf_corpus_tgt_len(c, 1) == 2); /* no '\r' token */
    CHECK(cf_corpus_src(c, 2)[0] == CF_BPE_BYTE_BASE + 'l');
    cf_corpus_free(c);
    cf_tokenizer_free(t);
}

TEST(corpus_empty_and_long_pairs_dropped_and_counted) {
    const char *dir = test_tmpdir("corpus");
    /* line 2: empty target; line 3: blank source; line 4: long source; line 6: long target */
    const char *a = write_text(0, dir, "a.de", "ab\ncd\n   \nabcdefgh\nok\nk\n\n");
    const char *b = write_text(1, dir, "b.en", "AB\n\nCD\nEF\nOK\nKLMNOPQRS\n\n");
    cf_tokenizer *t = bytes_tokenizer();
    char *logbuf = NULL;
    size_t logn = 0;
    FILE *log = open_memstream(&logbuf, &logn);
    cf_corpus *c = cf_corpus_load(&(cf_corpus_opts){.src_path = a, .tgt_path = b, .max_len = 5, .log = log}, t);
    fclose(log);
    CHECK(c != NULL);
    if (!c) return;
    CHECK(c->stats.n_lines == 7);
    CHECK(c->n == 2 && c->stats.n_kept == 2);
    CHECK(c->stats.n_empty == 3);
    CHECK(c->stats.n_too_long == 2);
    CHECK(c->line[0] == 1 && c->line[1] == 5); /* kept pairs remember their input line */
    CHECK_MSG(logbuf && strstr(logbuf, "7 pairs read, 2 kept, 3 dropped as empty, 2 dropped as longer than 5 tokens"),
              "log: %s", logbuf ? logbuf : "(none)");
    CHECK(c->stats.src_tokens == 4 && c->stats.max_tgt_len == 2);
    free(logbuf);
    cf_corpus_free(c);
    /* max_pairs stops early */
    c = cf_corpus_load(&(cf_corpus_opts){.src_path = a, .tgt_path = b, .max_pairs = 1}, t);
    CHECK(c && c->n == 1);
    cf_corpus_free(c);
    cf_tokenizer_free(t);
}

TEST(corpus_gzip_matches_plain_and_long_lines) {
    const char *dir = test_tmpdir("corpus");
    /* A 300k-byte line (several reader buffers), CRLF, no final newline. */
    size_t big = 300000, n = 0;
    char *data = malloc(big + 64);
    n += (size_t)sprintf(data + n, "first\r\n");
    for (size_t i = 0; i < big; i++) data[n++] = "abc "[i % 4];
    n += (size_t)sprintf(data + n, "\nend");
    const char *gz = write_file(0, dir, "x.gz", data, n);
    const char *plain = write_file(1, dir, "x.txt", data, n);
    for (int k = 0; k < 2; k++) {
        cf_lines *r = cf_lines_open(k ? plain : gz);
        CHECK(r != NULL);
        if (!r) continue;
        const char *line;
        size_t len;
        CHECK(cf_lines_next(r, &line, &len) == 1 && len == 5 && strcmp(line, "first") == 0);
        CHECK(cf_lines_next(r, &line, &len) == 1 && len == big && memcmp(line, data + 7, big) == 0);
        CHECK(cf_lines_next(r, &line, &len) == 1 && len == 3 && strcmp(line, "end") == 0);
        CHECK(cf_lines_next(r, &line, &len) == 0 && cf_lines_lineno(r) == 3);
        cf_lines_close(r);
    }
    /* A corrupt gzip file is an error naming it, not a silent short read. */
    gzFile g = gzopen(gz, "wb");
    gzwrite(g, data, (unsigned)n);
    gzclose(g);
    FILE *f = fopen(gz, "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    CHECK(ftruncate(fileno(f), size / 2) == 0);
    fclose(f);
    cf_lines *r = cf_lines_open(gz);
    const char *line;
    size_t len;
    int rc;
    while ((rc = cf_lines_next(r, &line, &len)) > 0) {}
    CHECK(rc < 0 && strstr(cf_error_message(), gz) != NULL);
    cf_lines_close(r);
    free(data);
}

TEST(corpus_gzip_parallel_files) {
    const char *dir = test_tmpdir("corpus");
    const char *a = write_text(0, dir, "train.de.gz", "ein Hund\nzwei Katzen\n");
    const char *b = write_text(1, dir, "train.en", "a dog\ntwo cats\n");
    cf_tokenizer *t = bytes_tokenizer();
    cf_corpus *c = cf_corpus_load(&(cf_corpus_opts){.src_path = a, .tgt_path = b}, t);
    CHECK(c && c->n == 2 && cf_corpus_src_len(c, 1) == 11 && cf_corpus_tgt_len(c, 1) == 8);
    cf_corpus_free(c);
    cf_tokenizer_free(t);
}

TEST(corpus_tsv) {
    const char *dir = test_tmpdir("corpus");
    const char *p = write_text(0, dir, "pairs.tsv", "hallo\thello\r\n\nleer\t \nja\tyes");
    cf_tokenizer *t = bytes_tokenizer();
    cf_corpus *c = cf_corpus_load(&(cf_corpus_opts){.tsv_path = p, .keep_text = true}, t);
    CHECK_MSG(c != NULL, "%s", cf_error_message());
    if (c) {
        CHECK(c->n == 2 && c->stats.n_empty == 2 && c->stats.n_lines == 4);
        CHECK_STR(c->tgt_text + c->tgt_text_off[0], "hello");
        CHECK_STR(c->src_text + c->src_text_off[1], "ja");
    }
    cf_corpus_free(c);
    p = write_text(1, dir, "bad.tsv", "a\tb\nno tab here\n");
    c = cf_corpus_load(&(cf_corpus_opts){.tsv_path = p}, t);
    CHECK(c == NULL);
    char want[600];
    snprintf(want, sizeof want, "%s:2:", p);
    CHECK_MSG(strstr(cf_error_message(), want) != NULL, "message: %s", cf_error_message());
    p = write_text(2, dir, "bad2.tsv", "a\tb\tc\n");
    c = cf_corpus_load(&(cf_corpus_opts){.tsv_path = p}, t);
    CHECK(c == NULL && strstr(cf_error_message(), "more than one"));
    c = cf_corpus_load(&(cf_corpus_opts){.tsv_path = p, .src_path = p}, t);
    CHECK(c == NULL && strstr(cf_error_message(), "either"));
    cf_tokenizer_free(t);
}
