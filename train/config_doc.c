/* train/config_doc.c - docs/config.md, generated from the key table and the defaults. */
#include "train/config_doc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "train/config.h"

static const struct {
    const char *group, *blurb;
} groups[] = {
    {"", "The run's identity."},
    {"data", "Corpora and tokenizer. Training data is `train_src` + `train_tgt` or `train_tsv` (exactly one); "
             "validation data is required the same way; test data is optional. Relative paths are resolved "
             "against the working directory; files must exist."},
    {"model", "The encoder-decoder Transformer (`nn/config.h`); the vocabulary sizes come from the tokenizer."},
    {"optim", "The optimizer (`optim/optim.h`); its learning rate is `schedule.lr`."},
    {"schedule", "The learning rate at each update (`optim/schedule.h`); noam uses `model.d_model`."},
    {"train", "The training loop."},
    {"decode", "Beam search, for evaluation and `cformer translate`."},
    {"bench", "`cformer bench`: timed training steps on random token ids of fixed shape (no padding); the "
              "vocabulary is `data.vocab_size` and the data files are not needed. `cformer train` ignores it."},
};

static const char *type_name(const cf_config_key *k) {
    if (k->words) return "name or path";
    switch (k->type) {
    case CF_CONFIG_INT: return "int";
    case CF_CONFIG_U64: return "uint";
    case CF_CONFIG_DOUBLE: return "float";
    case CF_CONFIG_BOOL: return "bool";
    case CF_CONFIG_STRING: return "string";
    case CF_CONFIG_PATH: return "path";
    case CF_CONFIG_ENUM: return "enum";
    }
    return "?";
}

static void print_range(FILE *f, const cf_config_key *k) {
    for (int v = 0; k->words && k->words[v]; v++) fprintf(f, "%s`%s`", v ? ", " : "", k->words[v]);
    if (k->type == CF_CONFIG_ENUM) {
        for (int v = 0; v < k->n_enum; v++) fprintf(f, "%s`%s`", v ? ", " : "", k->enum_name(v));
        return;
    }
    if (k->type != CF_CONFIG_INT && k->type != CF_CONFIG_U64 && k->type != CF_CONFIG_DOUBLE) return;
    if (isinf(k->hi)) fprintf(f, "%s %.17g", k->lo_open ? ">" : ">=", k->lo);
    else if (k->hi == 9007199254740992.0) fprintf(f, "[%.17g, 2^53]", k->lo); /* the seed: JSON's exact integers */
    else fprintf(f, "%s%.17g, %.17g%s", k->lo_open ? "(" : "[", k->lo, k->hi, k->hi_open ? ")" : "]");
}

static bool in_group(const cf_config_key *k, const char *group) {
    size_t n = strlen(group);
    if (n == 0) return strchr(k->path, '.') == NULL;
    return strncmp(k->path, group, n) == 0 && k->path[n] == '.';
}

char *cf_config_doc_markdown(void) {
    int n_keys;
    const cf_config_key *keys = cf_config_keys(&n_keys);
    cf_config d;
    cf_config_defaults(&d);
    d.schedule.d_model = d.model.d_model;
    char *json = cf_config_to_json(&d);
    cJSON *defaults = cJSON_Parse(json);
    free(json);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) cf_out_of_memory(0, __FILE__, __LINE__); /* its only failure */
    fprintf(f, "# Run configuration\n\n"
               "<!-- Generated from the key table in train/config_table.c: regenerate with\n"
               "     `build/cformer config --doc > docs/config.md`; tests/test_config.c fails when they differ. -->\n\n"
               "One JSON file describes a run (see `configs/`). Every key is optional and has the default below; "
               "`--set key.path=value` overrides any key (the value is read as JSON when it parses, else as a "
               "string). The trainer writes the effective config, every key included, to `DIR/config.json`. "
               "Unknown keys, wrong types, out-of-range values, inconsistent dimensions and missing data files "
               "are errors naming the key path and the value. Integers must be integral numbers, booleans "
               "`true`/`false`, enums one of the names listed; a path may be `null` (unset).\n");
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        fprintf(f, "\n## %s\n\n%s\n\n", groups[g].group[0] ? groups[g].group : "(top level)", groups[g].blurb);
        fprintf(f, "| key | type | default | range | meaning |\n|---|---|---|---|---|\n");
        for (int i = 0; i < n_keys; i++) {
            const cf_config_key *k = &keys[i];
            if (!in_group(k, groups[g].group)) continue;
            fprintf(f, "| `%s` | %s | ", k->path, type_name(k));
            if (k->default_doc) {
                fprintf(f, "%s", k->default_doc);
            } else {
                const char *dot = strchr(k->path, '.');
                const cJSON *v = dot ? cJSON_GetObjectItemCaseSensitive(
                                           cJSON_GetObjectItemCaseSensitive(defaults, groups[g].group), dot + 1)
                                     : cJSON_GetObjectItemCaseSensitive(defaults, k->path);
                char *s = v ? cJSON_PrintUnformatted(v) : NULL;
                fprintf(f, "`%s`", s ? s : "?");
                free(s);
            }
            fprintf(f, " | ");
            print_range(f, k);
            fprintf(f, " | %s |\n", k->doc);
        }
    }
    fclose(f);
    cJSON_Delete(defaults);
    return text;
}
