/* core/json.h - numbers in JSON text without loss.
 *
 * Usage:
 *     cJSON *o = cJSON_CreateObject();
 *     cJSON_AddItemToObject(o, "best_bleu", cf_json_number(34.567890123456783));   // all 17 digits
 *     cf_json_exact(tree);            // every number of a parsed tree, before it is printed again
 *     char *text = cJSON_Print(o);
 *
 * cJSON prints a double with 15 significant digits whenever its own tolerant comparison calls
 * that close enough, so 34.567890123456783, 5555555.5555555513 or the seed 9007199254740991 come
 * back as other numbers (found by tests/fuzz/fuzz_config.c). These nodes hold the shortest text
 * that reads back as exactly the same double (at most 17 digits), so configs and checkpoint
 * state survive a write and a read bit for bit.
 */
#ifndef CF_CORE_JSON_H
#define CF_CORE_JSON_H

#include <cjson/cJSON.h>

/* A node printing x exactly (JSON null for a non-finite x, which JSON cannot hold). */
cJSON *cf_json_number(double x);
/* Rewrites every number node under node (node included) as cf_json_number of its value. */
void cf_json_exact(cJSON *node);

#endif
