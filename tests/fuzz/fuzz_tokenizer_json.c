/* tests/fuzz/fuzz_tokenizer_json.c - the tokenizer.json loaders of all three kinds (the "format"
 * field picks one; the seeds hold one file of each). Properties: an error names the file; an
 * accepted tokenizer is within the bounds (vocabulary, token length), encodes and decodes a sample
 * exactly, and saving it and loading that again gives the same file. */
#include <string.h>

#include "data/tokenizer.h"
#include "tests/fuzz/fuzz.h"

static const char sample[] = "Ein Hund läuft über die Straße.\n\t\x01\xff\xfe \xe2\x82 zwei  Katzen!";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cf_tokenizer *t = cf_tokenizer_from_json((const char *)data, size, "fuzz-tokenizer.json");
    if (!t) {
        FUZZ_ASSERT(strncmp(cf_error_message(), "fuzz-tokenizer.json", 19) == 0);
        return 0;
    }
    int v = cf_tokenizer_vocab_size(t);
    FUZZ_ASSERT(v >= CF_TOK_N_BASE && v <= CF_TOK_MAX_VOCAB);
    for (int32_t id = 0; id < v; id++) {
        size_t n;
        FUZZ_ASSERT(cf_tokenizer_token(t, id, &n, NULL) != NULL);
        FUZZ_ASSERT(id < CF_TOK_N_SPECIAL || n <= CF_TOK_MAX_TOKEN_BYTES);
    }
    cf_ids ids = {0};
    cf_tokenizer_encode(t, sample, sizeof sample - 1, &ids);
    char out[4 * sizeof sample];
    size_t n = cf_tokenizer_decode(t, ids.data, ids.n, out, sizeof out);
    FUZZ_ASSERT(n == sizeof sample - 1 && memcmp(out, sample, n) == 0);
    cf_ids_free(&ids);
    char *json = cf_tokenizer_to_json(t);
    cf_tokenizer *again = cf_tokenizer_from_json(json, strlen(json), "again.json");
    FUZZ_ASSERT(again != NULL && cf_tokenizer_vocab_size(again) == v);
    char *json2 = cf_tokenizer_to_json(again);
    FUZZ_ASSERT(strcmp(json, json2) == 0);
    free(json);
    free(json2);
    cf_tokenizer_free(again);
    cf_tokenizer_free(t);
    return 0;
}
