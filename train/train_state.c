/* train/train_state.c - the trainer's state.json fields (train/train_state.h). */
#include "train/train_state.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/json.h"

#define MAX_EXACT (9007199254740992.0) /* 2^53 */

cf_train_state cf_train_state_init(void) { return (cf_train_state){.best_bleu = -1, .ranks = 1}; }

cJSON *cf_train_state_to_json(const cf_train_state *t, const char *schedule_kind, double next_lr) {
    cJSON *s = cJSON_CreateObject();
    char buf[32];
    cJSON_AddItemToObject(s, "step", cf_json_number((double)t->step));
    cJSON_AddItemToObject(s, "epoch", cf_json_number((double)t->data.epoch));
    cJSON *data = cJSON_AddObjectToObject(s, "data");
    const struct { const char *k; uint64_t v; } fields[] = {{"epoch", t->data.epoch}, {"index", t->data.index},
        {"rng_seed", t->data.rng_seed}, {"rng_stream", t->data.rng_stream}, {"rng_counter", t->data.rng_counter}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)fields[i].v);
        cJSON_AddStringToObject(data, fields[i].k, buf);
    }
    cJSON_AddItemToObject(s, "best_bleu", cf_json_number(t->best_bleu));
    cJSON_AddItemToObject(s, "best_step", cf_json_number((double)t->best_step));
    cJSON_AddItemToObject(s, "evals_since_best", cf_json_number((double)t->evals_since_best));
    cJSON_AddItemToObject(s, "bad_steps_in_a_row", cf_json_number(t->bad_steps_in_a_row));
    cJSON_AddItemToObject(s, "bad_steps_total", cf_json_number((double)t->bad_steps_total));
    cJSON *sched = cJSON_AddObjectToObject(s, "schedule");
    cJSON_AddStringToObject(sched, "kind", schedule_kind ? schedule_kind : "");
    cJSON_AddItemToObject(sched, "next_lr", cf_json_number(next_lr));
    cJSON_AddItemToObject(s, "elapsed_s", cf_json_number(t->elapsed_s));
    cJSON *win = cJSON_AddObjectToObject(s, "log_window");
    cJSON_AddItemToObject(win, "loss_sum", cf_json_number(t->window_loss_sum));
    cJSON_AddItemToObject(win, "tokens", cf_json_number(t->window_tokens));
    cJSON_AddItemToObject(win, "updates", cf_json_number((double)t->window_updates));
    cJSON_AddItemToObject(s, "threads", cf_json_number(t->threads));
    cJSON_AddItemToObject(s, "ranks", cf_json_number(t->ranks));
    /* only when set, so that files of runs never stopped mid-evaluation keep their old shape */
    if (t->eval_pending) cJSON_AddBoolToObject(s, "eval_pending", true);
    return s;
}

/* ---- reading, every value checked before it is converted ---- */

typedef struct reader {
    const char *where;
    int rc;
} reader;

static void bad(reader *r, const char *key, const char *what) {
    if (r->rc == 0) cf_error_set("%s: \"%s\": %s", r->where, key, what);
    r->rc = -1;
}

/* A 64-bit unsigned integer written as a decimal string (or a small exact number). */
static uint64_t get_u64(reader *r, const cJSON *obj, const char *key, const char *label) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        char *end;
        errno = 0;
        unsigned long long x = strtoull(s, &end, 10);
        if (*s >= '0' && *s <= '9' && !errno && !*end && end - s <= 20) return x;
    } else if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= MAX_EXACT &&
               v->valuedouble == floor(v->valuedouble)) {
        return (uint64_t)v->valuedouble;
    }
    bad(r, label, v ? "expected an unsigned 64-bit integer as a decimal string" : "missing");
    return 0;
}

/* An integer in [lo, hi]; fallback when absent. */
static int64_t get_int(reader *r, const cJSON *obj, const char *key, int64_t lo, int64_t hi, int64_t fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return fallback;
    if (cJSON_IsNumber(v) && v->valuedouble >= (double)lo && v->valuedouble <= (double)hi &&
        v->valuedouble == floor(v->valuedouble))
        return (int64_t)v->valuedouble;
    char what[96];
    snprintf(what, sizeof what, "expected an integer in [%lld, %lld]", (long long)lo, (long long)hi);
    bad(r, key, what);
    return fallback;
}

/* A finite number in [lo, hi]; fallback when absent. */
static double get_num(reader *r, const cJSON *obj, const char *key, double lo, double hi, double fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return fallback;
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= lo && v->valuedouble <= hi)
        return v->valuedouble;
    char what[96];
    snprintf(what, sizeof what, "expected a finite number in [%g, %g]", lo, hi);
    bad(r, key, what);
    return fallback;
}

int cf_train_state_from_json(cf_train_state *s, const cJSON *obj, const char *where) {
    reader r = {.where = where};
    *s = cf_train_state_init();
    if (!cJSON_IsObject(obj)) {
        cf_error_set("%s: not a JSON object", where);
        return -1;
    }
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(obj, "step");
    if (!step) bad(&r, "step", "missing");
    s->step = get_int(&r, obj, "step", 0, (int64_t)MAX_EXACT, 0);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(obj, "data");
    if (!cJSON_IsObject(data)) bad(&r, "data", "missing or not an object (the data position)");
    s->data.epoch = get_u64(&r, data, "epoch", "data.epoch");
    s->data.index = get_u64(&r, data, "index", "data.index");
    s->data.rng_seed = get_u64(&r, data, "rng_seed", "data.rng_seed");
    s->data.rng_stream = get_u64(&r, data, "rng_stream", "data.rng_stream");
    s->data.rng_counter = get_u64(&r, data, "rng_counter", "data.rng_counter");
    s->best_bleu = get_num(&r, obj, "best_bleu", -1, 100, -1);
    s->best_step = get_int(&r, obj, "best_step", 0, s->step, 0);
    s->evals_since_best = get_int(&r, obj, "evals_since_best", 0, (int64_t)MAX_EXACT, 0);
    s->bad_steps_in_a_row = (int)get_int(&r, obj, "bad_steps_in_a_row", 0, INT_MAX, 0);
    s->bad_steps_total = get_int(&r, obj, "bad_steps_total", 0, (int64_t)MAX_EXACT, 0);
    s->elapsed_s = get_num(&r, obj, "elapsed_s", 0, 1e12, 0);
    const cJSON *win = cJSON_GetObjectItemCaseSensitive(obj, "log_window");
    if (win && !cJSON_IsObject(win)) bad(&r, "log_window", "not an object");
    char first[1024] = ""; /* an earlier field's message: a bad window must not replace it */
    if (r.rc != 0) snprintf(first, sizeof first, "%s", cf_error_message());
    reader wr = {.where = where};
    s->window_loss_sum = get_num(&wr, win, "loss_sum", -1e300, 1e300, 0);
    s->window_tokens = get_num(&wr, win, "tokens", 0, MAX_EXACT, 0);
    s->window_updates = get_int(&wr, win, "updates", 0, (int64_t)MAX_EXACT, 0);
    if (wr.rc != 0 && r.rc == 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cf_error_message());
        cf_error_set("%s (in \"log_window\")", msg);
        r.rc = -1;
    } else if (wr.rc != 0) {
        cf_error_set("%s", first);
    }
    s->threads = (int)get_int(&r, obj, "threads", 0, 1 << 20, 0);
    s->ranks = (int)get_int(&r, obj, "ranks", 1, 1 << 20, 1);
    const cJSON *pending = cJSON_GetObjectItemCaseSensitive(obj, "eval_pending");
    if (pending && !cJSON_IsBool(pending)) bad(&r, "eval_pending", "expected true or false");
    s->eval_pending = cJSON_IsTrue(pending);
    return r.rc;
}
