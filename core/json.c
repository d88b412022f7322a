/* core/json.c - see json.h. */
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

/* The shortest %.Ng (N = 1..17) that strtod reads back as x; 17 digits always do. */
static void exact_text(double x, char *buf, size_t size) {
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, x);
        if (strtod(buf, NULL) == x) return;
    }
}

cJSON *cf_json_number(double x) {
    if (!isfinite(x)) return cJSON_CreateNull();
    char buf[40];
    exact_text(x, buf, sizeof buf);
    cJSON *n = cJSON_CreateRaw(buf);
    if (!n) cf_out_of_memory(sizeof buf, __FILE__, __LINE__);
    return n;
}

void cf_json_exact(cJSON *node) {
    for (cJSON *c = node ? node->child : NULL; c; c = c->next) cf_json_exact(c);
    if (!cJSON_IsNumber(node) || !isfinite(node->valuedouble)) return;
    char buf[40];
    exact_text(node->valuedouble, buf, sizeof buf);
    /* in place: a raw node prints its text as it is, and cJSON_Delete frees it (default hooks) */
    node->valuestring = cf_xstrdup(buf);
    node->type = cJSON_Raw | (node->type & (cJSON_IsReference | cJSON_StringIsConst));
}
