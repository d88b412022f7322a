/* tests/fuzz/fuzz_tokenizer_roundtrip.c - encode then decode arbitrary bytes with a tokenizer of
 * each kind (trained once on the toy corpus). Properties: decode(encode(x)) == x byte for byte,
 * every id is a real, non-special token, and encoding twice (the word cache warm) gives the same
 * ids. */
#include <string.h>

#include "data/lines.h"
#include "data/tokenizer.h"
#include "tests/fuzz/fuzz.h"

static cf_tokenizer *toks[CF_TOK_N_KINDS];

static void train_all(void) {
    for (int k = 0; k < CF_TOK_N_KINDS; k++) {
        cf_tok_trainer *tr = cf_tok_trainer_new();
        const char *files[] = {CF_SOURCE_DIR "/data/toy/train.de", CF_SOURCE_DIR "/data/toy/train.en"};
        for (int f = 0; f < 2; f++) {
            cf_lines *r = cf_lines_open(files[f]);
            FUZZ_ASSERT(r != NULL);
            const char *line;
            size_t n;
            for (int i = 0; i < 1500 && cf_lines_next(r, &line, &n) > 0; i++) cf_tok_trainer_add(tr, line, n);
            cf_lines_close(r);
        }
        toks[k] = cf_tok_trainer_finish(tr, (cf_tok_kind)k, 500);
        FUZZ_ASSERT(toks[k] != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!toks[0]) train_all();
    char *out = malloc(size + 1);
    for (int k = 0; k < CF_TOK_N_KINDS; k++) {
        cf_ids a = {0}, b = {0};
        cf_tokenizer_encode(toks[k], (const char *)data, size, &a);
        cf_tokenizer_encode(toks[k], (const char *)data, size, &b);
        FUZZ_ASSERT(a.n == b.n && (a.n == 0 || memcmp(a.data, b.data, (size_t)a.n * sizeof *a.data) == 0));
        int v = cf_tokenizer_vocab_size(toks[k]);
        for (int64_t i = 0; i < a.n; i++) FUZZ_ASSERT(a.data[i] >= CF_TOK_N_SPECIAL && a.data[i] < v);
        size_t n = cf_tokenizer_decode(toks[k], a.data, a.n, out, size + 1);
        FUZZ_ASSERT(n == size && memcmp(out, data, size) == 0);
        cf_ids_free(&a);
        cf_ids_free(&b);
    }
    free(out);
    return 0;
}
