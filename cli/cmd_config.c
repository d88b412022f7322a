/* cli/cmd_config.c - `cformer config`: validate a config and print it as the trainer would use it. */
#include "cli/commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "train/config.h"
#include "train/config_doc.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: cformer config CONFIG [--set key.path=value]... [--no-check-paths]\n"
            "       cformer config --doc\n"
            "\n"
            "Reads CONFIG, applies the overrides, validates everything the trainer would (types, ranges,\n"
            "dimensions, data files) and prints the effective config as JSON: every key, data paths\n"
            "absolute. --doc prints the key reference (docs/config.md) generated from the key table.\n"
            "\n"
            "  --set key.path=value  override one key (repeatable); value is JSON or a bare string\n"
            "  --no-check-paths      do not require the data files to exist\n"
            "\n"
            "Exit status: 0 valid, 2 bad usage or an invalid config (the message names the key).\n");
}

int cf_cmd_config(int argc, char **argv) {
    const char *path = NULL;
    char **overrides = cf_xcalloc((size_t)argc + 1, sizeof(char *));
    int n_overrides = 0, status = 2;
    cf_config_opts opts = {.check_paths = true};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            status = 0;
            goto done;
        } else if (strcmp(a, "--doc") == 0) {
            char *doc = cf_config_doc_markdown();
            fputs(doc, stdout);
            free(doc);
            status = 0;
            goto done;
        } else if (strcmp(a, "--set") == 0 && i + 1 < argc) {
            overrides[n_overrides++] = argv[++i];
        } else if (strncmp(a, "--set=", 6) == 0) {
            overrides[n_overrides++] = argv[i] + 6;
        } else if (strcmp(a, "--no-check-paths") == 0) {
            opts.check_paths = false;
        } else if (a[0] != '-' && !path) {
            path = a;
        } else {
            fprintf(stderr, "cformer config: unexpected argument '%s'\n(try 'cformer config --help')\n", a);
            goto done;
        }
    }
    if (!path) {
        usage(stderr);
        goto done;
    }
    cf_config cfg;
    if (cf_config_load_opts(&cfg, path, n_overrides, overrides, &opts) != 0) {
        fprintf(stderr, "error: %s\n", cf_error_message());
        goto done;
    }
    char *json = cf_config_to_json(&cfg);
    puts(json);
    free(json);
    cf_config_free(&cfg);
    status = 0;
done:
    free(overrides);
    return status;
}
