/* train/config.h - one JSON file describes a run (docs/config.md lists every key and default).
 *
 * Usage:
 *     cf_config cfg;
 *     if (cf_config_load(&cfg, "configs/toy.json", n_overrides, overrides) != 0) {
 *         fprintf(stderr, "error: %s\n", cf_error_message());   // names file, key path, value
 *         return 2;
 *     }
 *     char *json = cf_config_to_json(&cfg);                      // the effective config
 *     cf_config_free(&cfg);
 *
 * overrides are "key.path=value" strings (--set); value is parsed as JSON when it parses
 * (numbers, true/false, null, quoted strings) and as a bare string otherwise.
 *
 * Every key is one row of the table in train/config_table.h: parsing, defaults, cf_config_to_json,
 * the "did you mean" suggestions and docs/config.md (cformer config --doc) all read that table.
 * Validation happens before any work: wrong types, out-of-range values, inconsistent dimensions,
 * unknown keys and missing data files are one-line errors naming the file, the key path and the
 * value. Relative data paths are resolved against the working directory and stored absolute.
 */
#ifndef CF_TRAIN_CONFIG_H
#define CF_TRAIN_CONFIG_H

#include "train/config_table.h"

/* Read, apply overrides, validate. 0, or -1 with a message naming the file, key path and value.
 * On failure c holds nothing to free (cf_config_free is still safe). schedule.total_steps 0 is
 * resolved to train.max_steps and schedule.d_model is set from model.d_model. */
int cf_config_load(cf_config *c, const char *path, int n_overrides, char *const *overrides);
/* Same from a JSON string (e.g. a run directory's config.json or a checkpoint's metadata). */
int cf_config_parse(cf_config *c, const char *json, const char *origin, int n_overrides, char *const *overrides);
/* The effective config as pretty JSON (malloc'ed); every key present, paths absolute. */
char *cf_config_to_json(const cf_config *c);
void cf_config_free(cf_config *c);

typedef struct cf_config_opts {
    bool check_paths;               /* data files must exist (true by default); false for linting configs */
    bool no_data;                   /* train/valid data may be absent (synthetic benchmarks) */
} cf_config_opts;
int cf_config_load_opts(cf_config *c, const char *path, int n_overrides, char *const *overrides,
                        const cf_config_opts *opts);
int cf_config_parse_opts(cf_config *c, const char *json, const char *origin, int n_overrides,
                         char *const *overrides, const cf_config_opts *opts);
/* The first key path whose values differ ("model.d_model"), or NULL if every key is equal
 * (e.g. to tell a resumed run what changed). */
const char *cf_config_first_difference(const cf_config *a, const cf_config *b);

#endif
