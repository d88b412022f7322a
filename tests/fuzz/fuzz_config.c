/* tests/fuzz/fuzz_config.c - the run config: JSON text, then a NUL, then --set overrides one per
 * line. Properties: an error names the origin; an accepted config survives its own round trip
 * (cf_config_to_json, parsed again: the same values, the same text). */
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "train/config.h"

enum { MAX_SETS = 16 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t json_n = nul ? (size_t)(nul - data) : size;
    char *json = fuzz_cstr(data, json_n);
    char *rest = nul ? fuzz_cstr(nul + 1, size - json_n - 1) : fuzz_cstr(data, 0);
    char *sets[MAX_SETS];
    int n_sets = 0;
    for (char *s = rest, *nl; *s && n_sets < MAX_SETS; s = nl + 1) {
        sets[n_sets++] = s;
        if (!(nl = strchr(s, '\n'))) break;
        *nl = 0;
    }
    const cf_config_opts opts = {.check_paths = false, .no_data = true};
    cf_config c;
    if (cf_config_parse_opts(&c, json, "fuzz.json", n_sets, sets, &opts) == 0) {
        char *text = cf_config_to_json(&c);
        cf_config again;
        FUZZ_ASSERT(cf_config_parse_opts(&again, text, "fuzz.json", 0, NULL, &opts) == 0);
        FUZZ_ASSERT(cf_config_first_difference(&c, &again) == NULL);
        char *text2 = cf_config_to_json(&again);
        FUZZ_ASSERT(strcmp(text, text2) == 0);
        free(text);
        free(text2);
        cf_config_free(&again);
        cf_config_free(&c);
    } else {
        FUZZ_ASSERT(strncmp(cf_error_message(), "fuzz.json: ", 11) == 0);
    }
    free(json);
    free(rest);
    return 0;
}
