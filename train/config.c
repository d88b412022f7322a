/* train/config.c - read, override, validate and write the run config (keys: train/config_table.c).
 *
 * Messages have one shape, "ORIGIN: KEY: problem", where ORIGIN is the file (or the caller's
 * origin string) and KEY the JSON key path or "--set key=value" for an override, so that every
 * error names where the bad value came from.
 */
#include "train/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/common.h"
#include "core/json.h"

#define MAX_EXACT_INT 9007199254740992.0 /* 2^53: larger JSON numbers are not exact integers */
#define CF_CONFIG_MAX_BYTES (16 << 20)   /* the bound on a config file read (docs/reliability.md) */

static const char *const group_names[] = {"data", "model", "optim", "schedule", "train", "decode", "bench"};
enum { N_GROUPS = sizeof group_names / sizeof group_names[0] };

static bool is_group(const char *s) {
    for (int g = 0; g < N_GROUPS; g++)
        if (strcmp(s, group_names[g]) == 0) return true;
    return false;
}

/* ---- field access through the table ---- */

static void *field(cf_config *c, const cf_config_key *k) { return (char *)c + k->offset; }
static const void *cfield(const cf_config *c, const cf_config_key *k) { return (const char *)c + k->offset; }
static bool is_string(const cf_config_key *k) { return k->type == CF_CONFIG_STRING || k->type == CF_CONFIG_PATH; }

static bool is_word(const cf_config_key *k, const char *s) {
    for (int i = 0; s && k->words && k->words[i]; i++)
        if (strcmp(s, k->words[i]) == 0) return true;
    return false;
}

static void set_string(cf_config *c, const cf_config_key *k, const char *s) {
    char **p = field(c, k);
    free(*p);
    *p = s ? cf_xstrdup(s) : NULL;
}

/* ---- suggestions: Levenshtein distance over key paths ---- */

static size_t edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64) return SIZE_MAX; /* nothing that long is a typo of a key */
    size_t row[65];
    for (size_t j = 0; j <= m; j++) row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

static const char *leaf(const char *path) {
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : path;
}

/* The known key (or group) a mistyped path most likely meant, or NULL. A key put in the wrong
 * group ("optim.lr") is found by its last component; otherwise the nearest path wins when it is
 * within about a third of the length in edits, so that unrelated keys are not offered. */
static const char *suggest(const char *path) {
    int n;
    const cf_config_key *keys = cf_config_keys(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(leaf(keys[i].path), leaf(path)) == 0 && strcmp(keys[i].path, path) != 0) return keys[i].path;
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (int i = 0; i < n + N_GROUPS; i++) {
        const char *cand = i < n ? keys[i].path : group_names[i - n];
        size_t d = edit_distance(path, cand);
        if (d < best_d) best_d = d, best = cand;
    }
    size_t limit = strlen(path) / 3 > 2 ? strlen(path) / 3 : 2;
    return best_d <= limit ? best : NULL;
}

static void unknown_key_error(const char *origin, const char *where, const char *path) {
    const char *s = suggest(path);
    if (s) cf_error_set("%s: %sunknown key \"%s\" (did you mean \"%s\"?)", origin, where, path, s);
    else cf_error_set("%s: %sunknown key \"%s\" (docs/config.md lists the keys)", origin, where, path);
}

/* ---- setting one key from a JSON value ---- */

/* Short JSON text of v for messages (static buffer). */
static const char *show(const cJSON *v) {
    static _Thread_local char buf[96];
    char *s = cJSON_PrintUnformatted(v);
    snprintf(buf, sizeof buf, "%s", s ? s : "?");
    if (s && strlen(s) >= sizeof buf) memcpy(buf + sizeof buf - 4, "...", 4);
    free(s);
    return buf;
}

static bool in_range(const cf_config_key *k, double x) {
    bool lo_ok = k->lo_open ? x > k->lo : x >= k->lo;
    bool hi_ok = k->hi_open ? x < k->hi : x <= k->hi;
    return lo_ok && hi_ok;
}

static void range_text(const cf_config_key *k, char *buf, size_t size) {
    if (isinf(k->hi)) snprintf(buf, size, "must be %s %.17g", k->lo_open ? ">" : ">=", k->lo);
    else snprintf(buf, size, "must be in %s%.17g, %.17g%s", k->lo_open ? "(" : "[", k->lo, k->hi, k->hi_open ? ")" : "]");
}

/* where: "model.d_model" for a file's key, "--set model.d_model=1.5" for an override. */
static int set_value(cf_config *c, const cf_config_key *k, const cJSON *v, const char *origin, const char *where) {
    char range[96];
    switch (k->type) {
    case CF_CONFIG_INT:
    case CF_CONFIG_U64:
    case CF_CONFIG_DOUBLE: {
        const bool integral = k->type != CF_CONFIG_DOUBLE;
        if (!cJSON_IsNumber(v)) {
            cf_error_set("%s: %s: expected %s, got %s", origin, where, integral ? "an integer" : "a number", show(v));
            return -1;
        }
        double x = v->valuedouble;
        if (!isfinite(x)) { /* cJSON reads 1e999 as infinity */
            cf_error_set("%s: %s: expected a finite number, got %g", origin, where, x);
            return -1;
        }
        if (integral && (x != floor(x) || fabs(x) > MAX_EXACT_INT)) {
            cf_error_set("%s: %s: expected an integer, got %s", origin, where, show(v));
            return -1;
        }
        if (!in_range(k, x)) {
            range_text(k, range, sizeof range);
            cf_error_set("%s: %s: %s is out of range (%s)", origin, where, show(v), range);
            return -1;
        }
        if (k->type == CF_CONFIG_INT) *(int64_t *)field(c, k) = (int64_t)x;
        else if (k->type == CF_CONFIG_U64) *(uint64_t *)field(c, k) = (uint64_t)x;
        else *(double *)field(c, k) = x;
        return 0;
    }
    case CF_CONFIG_BOOL:
        if (!cJSON_IsBool(v)) {
            cf_error_set("%s: %s: expected true or false, got %s", origin, where, show(v));
            return -1;
        }
        *(bool *)field(c, k) = cJSON_IsTrue(v);
        return 0;
    case CF_CONFIG_STRING:
        if (!cJSON_IsString(v) || !v->valuestring[0] || strchr(v->valuestring, '/') ||
            strcmp(v->valuestring, ".") == 0 || strcmp(v->valuestring, "..") == 0) {
            cf_error_set("%s: %s: expected a non-empty string without '/', got %s", origin, where, show(v));
            return -1;
        }
        set_string(c, k, v->valuestring);
        return 0;
    case CF_CONFIG_PATH:
        if (cJSON_IsNull(v) || (cJSON_IsString(v) && !v->valuestring[0])) {
            set_string(c, k, NULL);
            return 0;
        }
        if (!cJSON_IsString(v)) {
            cf_error_set("%s: %s: expected a path string or null, got %s", origin, where, show(v));
            return -1;
        }
        /* the first word is the unset value, so that it and null compare equal */
        set_string(c, k, k->words && strcmp(v->valuestring, k->words[0]) == 0 ? NULL : v->valuestring);
        return 0;
    case CF_CONFIG_ENUM: {
        if (cJSON_IsString(v)) {
            for (int e = 0; e < k->n_enum; e++) {
                if (strcmp(v->valuestring, k->enum_name(e)) == 0) {
                    *(int *)field(c, k) = e;
                    return 0;
                }
            }
        }
        char allowed[128] = "";
        for (int e = 0; e < k->n_enum; e++) {
            size_t used = strlen(allowed);
            snprintf(allowed + used, sizeof allowed - used, "%s%s", e ? ", " : "", k->enum_name(e));
        }
        cf_error_set("%s: %s: %s %s (expected one of %s)", origin, where, cJSON_IsString(v) ? "unknown value" : "expected a name, got",
                     show(v), allowed);
        return -1;
    }
    }
    CF_ASSERT(0, "bad key type %d", (int)k->type);
    return -1;
}

/* ---- the file's JSON ---- */

static int parse_tree(cf_config *c, const cJSON *root, const char *origin) {
    if (!cJSON_IsObject(root)) {
        cf_error_set("%s: expected a JSON object at the top level, got %s", origin, show(root));
        return -1;
    }
    int n;
    const cf_config_key *keys = cf_config_keys(&n);
    bool *seen = cf_xcalloc((size_t)n, sizeof *seen);
    char path[256];
    int status = 0;
    const cJSON *top;
    cJSON_ArrayForEach(top, root) {
        const bool group = is_group(top->string);
        for (const cJSON *before = root->child; group && before != top; before = before->next) {
            if (strcmp(before->string, top->string) == 0) {
                cf_error_set("%s: %s: key given twice", origin, top->string);
                status = -1;
                break;
            }
        }
        if (status) break;
        if (group && !cJSON_IsObject(top)) {
            cf_error_set("%s: %s: expected an object, got %s", origin, top->string, show(top));
            status = -1;
            break;
        }
        const cJSON *item = group ? top->child : top;
        for (; item; item = group ? item->next : NULL) {
            if (group) snprintf(path, sizeof path, "%s.%s", top->string, item->string);
            else snprintf(path, sizeof path, "%s", top->string);
            const cf_config_key *k = cf_config_key_find(path);
            if (!k) {
                unknown_key_error(origin, "", path);
                status = -1;
                break;
            }
            /* cJSON keeps both copies of a repeated key; which one wins would be arbitrary */
            if (seen[k - keys]) {
                cf_error_set("%s: %s: key given twice", origin, path);
                status = -1;
                break;
            }
            seen[k - keys] = true;
            if (set_value(c, k, item, origin, path) != 0) {
                status = -1;
                break;
            }
        }
        if (status) break;
    }
    free(seen);
    return status;
}

/* ---- overrides ---- */

static int apply_override(cf_config *c, const char *text, const char *origin) {
    const char *eq = strchr(text, '=');
    char where[320];
    snprintf(where, sizeof where, "--set %s", text);
    if (!eq || eq == text) {
        cf_error_set("%s: %s: expected key.path=value", origin, where);
        return -1;
    }
    char path[256];
    snprintf(path, sizeof path, "%.*s", (int)(eq - text), text);
    const cf_config_key *k = cf_config_key_find(path);
    if (!k) {
        snprintf(where, sizeof where, "--set %s: ", text);
        unknown_key_error(origin, where, path);
        return -1;
    }
    const char *value = eq + 1;
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithOpts(value, &end, 1);
    /* A string key takes the text as it is unless it was a quoted string or null: name=2024 is
     * a name, and paths or enum names need no quotes on a command line. */
    if (!v || (is_string(k) && !cJSON_IsString(v) && !cJSON_IsNull(v)) ||
        (k->type == CF_CONFIG_ENUM && !cJSON_IsString(v))) {
        cJSON_Delete(v);
        v = cJSON_CreateString(value);
    }
    int status = set_value(c, k, v, origin, where);
    cJSON_Delete(v);
    return status;
}

/* ---- validation ---- */

/* Prefix the current message (set by another module's check) with the origin and a label. */
static int prefix_error(const char *origin, const char *label) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", cf_error_message());
    cf_error_set("%s: %s%s", origin, label, msg);
    return -1;
}

/* One data split: src+tgt or tsv, not both; a lone src or tgt is an error. */
static int check_split(const char *origin, const char *split, const char *src, const char *tgt, const char *tsv,
                       bool required) {
    CF_REQUIRE(!((src || tgt) && tsv), "%s: data.%s_tsv and data.%s_src/data.%s_tgt are both set: use one", origin, split,
            split, split);
    CF_REQUIRE(!src == !tgt, "%s: data.%s_%s is set but data.%s_%s is not", origin, split, src ? "src" : "tgt", split,
            src ? "tgt" : "src");
    CF_REQUIRE(!required || src || tsv, "%s: no %s data: set data.%s_src and data.%s_tgt, or data.%s_tsv", origin,
            strcmp(split, "train") == 0 ? "training" : "validation", split, split, split);
    return 0;
}

/* Resolve against the working directory and store absolute; when the file must exist, realpath
 * both checks that and removes "..", so config.json names files unambiguously. */
static int resolve_path(cf_config *c, const cf_config_key *k, const char *origin, bool check) {
    char **p = field(c, k);
    if (!*p || is_word(k, *p)) return 0;
    char *abs = realpath(*p, NULL);
    if (!abs) {
        if (check && k->words) {
            char names[128] = "";
            for (int i = 0; k->words[i]; i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", k->words[i]);
            cf_error_set("%s: %s: cannot open \"%s\": %s (nor is it one of the names %s)", origin, k->path, *p,
                         strerror(errno), names);
            return -1;
        }
        CF_REQUIRE(!check, "%s: %s: cannot open \"%s\": %s", origin, k->path, *p, strerror(errno));
        if ((*p)[0] == '/') return 0;
        char cwd[PATH_MAX];
        CF_REQUIRE(getcwd(cwd, sizeof cwd), "%s: cannot get the working directory: %s", origin, strerror(errno));
        size_t size = strlen(cwd) + strlen(*p) + 2;
        abs = cf_xmalloc(size);
        snprintf(abs, size, "%s/%s", cwd, *p);
    }
    free(*p);
    *p = abs;
    return 0;
}

static int validate(cf_config *c, const char *origin, const cf_config_opts *opts) {
    if (cf_model_config_check(&c->model) != 0) return prefix_error(origin, "");
    CF_REQUIRE(!c->model.share_embeddings || c->data.shared_vocab,
            "%s: model.share_embeddings: true needs data.shared_vocab true (one vocabulary for both sides)", origin);
    CF_REQUIRE(c->data.max_len <= c->model.max_len || c->data.task == CF_TASK_COPY,
            "%s: data.max_len: %lld exceeds model.max_len %lld", origin,
            (long long)c->data.max_len, (long long)c->model.max_len);

    const cf_data_config *d = &c->data;
    const bool need_files = !opts->no_data && d->task == CF_TASK_TRANSLATION; /* the copy task makes its data */
    if (check_split(origin, "train", d->train_src, d->train_tgt, d->train_tsv, need_files) != 0) return -1;
    if (check_split(origin, "valid", d->valid_src, d->valid_tgt, d->valid_tsv, need_files) != 0) return -1;
    CF_REQUIRE(d->task != CF_TASK_COPY || d->copy_len + 1 <= c->model.max_len,
            "%s: data.copy_len: %lld symbols and <eos> need model.max_len >= %lld (got %lld)", origin,
            (long long)d->copy_len, (long long)(d->copy_len + 1), (long long)c->model.max_len);
    if (check_split(origin, "test", d->test_src, d->test_tgt, d->test_tsv, false) != 0) return -1;

    /* The optimizer's own check runs only when it is built, after the data is loaded: repeat the
     * one cross-key rule here so that it fails before any work. */
    CF_REQUIRE(!c->optim.nesterov || c->optim.kind != CF_OPTIM_SGD || (c->optim.momentum > 0 && c->optim.dampening == 0),
            "%s: optim.nesterov: true needs optim.momentum > 0 and optim.dampening 0 (got %g, %g)", origin,
            c->optim.momentum, c->optim.dampening);

    /* The two schedule mistakes a config makes most often, named by key; cf_schedule_check
     * stays the authority for the rest. */
    cf_schedule *s = &c->schedule;
    const bool decays = s->kind == CF_SCHED_COSINE || s->kind == CF_SCHED_LINEAR;
    CF_REQUIRE(!decays || s->min_lr <= s->lr, "%s: schedule.min_lr: %g exceeds schedule.lr %g", origin, s->min_lr, s->lr);
    if (s->total_steps == 0) {
        CF_REQUIRE(!decays || s->warmup_steps <= c->train.max_steps,
                "%s: schedule.warmup_steps: %lld exceeds train.max_steps %lld (the end of the decay when "
                "schedule.total_steps is 0)", origin, (long long)s->warmup_steps, (long long)c->train.max_steps);
        s->total_steps = c->train.max_steps;
    }
    CF_REQUIRE(!decays || s->warmup_steps <= s->total_steps, "%s: schedule.warmup_steps: %lld exceeds schedule.total_steps %lld",
            origin, (long long)s->warmup_steps, (long long)s->total_steps);
    s->d_model = c->model.d_model;
    if (cf_schedule_check(s) != 0) return prefix_error(origin, "schedule: ");

    CF_REQUIRE(c->decode.max_len_a > 0 || c->decode.max_len_b > 0,
            "%s: decode.max_len_a and decode.max_len_b are both 0: no output length allowed", origin);
    /* The model has positions for model.max_len tokens only. */
    CF_REQUIRE(c->bench.src_len <= c->model.max_len && c->bench.tgt_len <= c->model.max_len,
            "%s: bench.src_len/bench.tgt_len: %lld/%lld exceed model.max_len %lld", origin, (long long)c->bench.src_len,
            (long long)c->bench.tgt_len, (long long)c->model.max_len);

    int n;
    const cf_config_key *keys = cf_config_keys(&n);
    for (int i = 0; i < n; i++)
        if (keys[i].type == CF_CONFIG_PATH && resolve_path(c, &keys[i], origin, opts->check_paths) != 0) return -1;
    return 0;
}

/* ---- entry points ---- */

/* "configs/toy.json" -> "toy"; NULL when the origin has no usable file name. */
static char *name_from_origin(const char *origin) {
    if (!origin) return NULL;
    const char *base = strrchr(origin, '/');
    base = base ? base + 1 : origin;
    size_t len = strcspn(base, ".");
    if (len == 0) return NULL;
    char *s = cf_xmalloc(len + 1);
    memcpy(s, base, len);
    s[len] = 0;
    return s;
}

int cf_config_parse_opts(cf_config *c, const char *json, const char *origin, int n_overrides, char *const *overrides,
                         const cf_config_opts *opts) {
    const cf_config_opts default_opts = {.check_paths = true};
    if (!opts) opts = &default_opts;
    if (!origin) origin = "config";
    cf_config_defaults(c);
    c->source_path = cf_xstrdup(origin);

    cJSON *root = cJSON_ParseWithOpts(json, NULL, 1);
    if (!root) {
        /* cJSON reports where it stopped; a line number is what an editor needs */
        const char *at = cJSON_GetErrorPtr();
        int line = 1;
        if (at && at >= json && at <= json + strlen(json))
            for (const char *p = json; p < at; p++) line += *p == '\n';
        cf_error_set("%s: line %d: invalid JSON near \"%.20s\"", origin, line, at ? at : "");
        cf_config_free(c);
        return -1;
    }
    int status = parse_tree(c, root, origin);
    cJSON_Delete(root);
    for (int i = 0; status == 0 && i < n_overrides; i++) status = apply_override(c, overrides[i], origin);
    if (status == 0 && !c->name) {
        c->name = name_from_origin(origin);
        if (!c->name) c->name = cf_xstrdup("run");
    }
    if (status == 0) status = validate(c, origin, opts);
    if (status != 0) cf_config_free(c);
    return status;
}

int cf_config_parse(cf_config *c, const char *json, const char *origin, int n_overrides, char *const *overrides) {
    return cf_config_parse_opts(c, json, origin, n_overrides, overrides, NULL);
}

int cf_config_load_opts(cf_config *c, const char *path, int n_overrides, char *const *overrides,
                        const cf_config_opts *opts) {
    cf_config_defaults(c);
    FILE *f = fopen(path, "rb");
    CF_REQUIRE(f, "%s: cannot read the config: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    bool too_big = false;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 16384;
            text = cf_xrealloc(text, cap);
        }
        size_t got = fread(text + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
        if (len > CF_CONFIG_MAX_BYTES) { /* a config is a few KB: this is not one (or is /dev/zero) */
            too_big = true;
            break;
        }
    }
    bool failed = ferror(f);
    fclose(f);
    text[len] = 0;
    if (too_big) {
        cf_error_set("%s: larger than %d MiB: not a config", path, CF_CONFIG_MAX_BYTES >> 20);
        free(text);
        return -1;
    }
    if (failed || strlen(text) != len) {
        cf_error_set("%s: cannot read the config (%s)", path, failed ? "read error" : "NUL byte in the file");
        free(text);
        return -1;
    }
    int status = cf_config_parse_opts(c, text, path, n_overrides, overrides, opts);
    free(text);
    return status;
}

int cf_config_load(cf_config *c, const char *path, int n_overrides, char *const *overrides) {
    return cf_config_load_opts(c, path, n_overrides, overrides, NULL);
}

/* ---- output ---- */

static cJSON *value_json(const cf_config *c, const cf_config_key *k) {
    const void *p = cfield(c, k);
    switch (k->type) {
    /* exact: cJSON's own printing keeps 15 digits (core/json.h) */
    case CF_CONFIG_INT: return cf_json_number((double)*(const int64_t *)p);
    case CF_CONFIG_U64: return cf_json_number((double)*(const uint64_t *)p);
    case CF_CONFIG_DOUBLE: return cf_json_number(*(const double *)p);
    case CF_CONFIG_BOOL: return cJSON_CreateBool(*(const bool *)p);
    case CF_CONFIG_STRING:
    case CF_CONFIG_PATH: {
        const char *s = *(char *const *)p;
        if (!s && k->words) s = k->words[0];
        return s ? cJSON_CreateString(s) : cJSON_CreateNull();
    }
    case CF_CONFIG_ENUM: {
        int e = *(const int *)p;
        return e >= 0 && e < k->n_enum ? cJSON_CreateString(k->enum_name(e)) : cJSON_CreateNull();
    }
    }
    return cJSON_CreateNull();
}

char *cf_config_to_json(const cf_config *c) {
    cJSON *root = cJSON_CreateObject();
    int n;
    const cf_config_key *keys = cf_config_keys(&n);
    char group[32];
    for (int i = 0; i < n; i++) {
        const char *dot = strchr(keys[i].path, '.');
        cJSON *parent = root;
        if (dot) {
            snprintf(group, sizeof group, "%.*s", (int)(dot - keys[i].path), keys[i].path);
            parent = cJSON_GetObjectItemCaseSensitive(root, group);
            if (!parent) parent = cJSON_AddObjectToObject(root, group);
        }
        cJSON_AddItemToObject(parent, dot ? dot + 1 : keys[i].path, value_json(c, &keys[i]));
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    CF_ASSERT(text, "cJSON_Print failed");
    return text;
}

const char *cf_config_first_difference(const cf_config *a, const cf_config *b) {
    int n;
    const cf_config_key *keys = cf_config_keys(&n);
    for (int i = 0; i < n; i++) {
        const cf_config_key *k = &keys[i];
        const void *x = cfield(a, k), *y = cfield(b, k);
        bool same;
        switch (k->type) {
        case CF_CONFIG_INT: same = *(const int64_t *)x == *(const int64_t *)y; break;
        case CF_CONFIG_U64: same = *(const uint64_t *)x == *(const uint64_t *)y; break;
        case CF_CONFIG_DOUBLE: same = *(const double *)x == *(const double *)y; break;
        case CF_CONFIG_BOOL: same = *(const bool *)x == *(const bool *)y; break;
        case CF_CONFIG_ENUM: same = *(const int *)x == *(const int *)y; break;
        default: {
            const char *s = *(char *const *)x, *t = *(char *const *)y;
            same = (!s && !t) || (s && t && strcmp(s, t) == 0);
        }
        }
        if (!same) return k->path;
    }
    return NULL;
}

void cf_config_free(cf_config *c) {
    int n;
    const cf_config_key *keys = cf_config_keys(&n);
    for (int i = 0; i < n; i++) {
        if (!is_string(&keys[i])) continue;
        char **p = field(c, &keys[i]);
        free(*p);
        *p = NULL;
    }
    free(c->source_path);
    c->source_path = NULL;
}
