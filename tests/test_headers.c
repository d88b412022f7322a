/* tests/test_headers.c - every header's usage example is true: each cf_ function that a header's
 * opening comment calls is declared (or defined as a macro) in some header, with that number of
 * arguments. Examples drift when code moves; this keeps them from naming functions that do not
 * exist (cf_params_init_xavier) or calling real ones with the wrong arguments (cf_eval_loss(&run, ...)).
 */
#include <ctype.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "tests/test.h"
#include "tests/testlib.h"

enum { MAX_NAMES = 4096, NAME_LEN = 64, MAX_ARITIES = 4 };

/* Every cf_ name that header code (comments removed) follows with "(", and the argument counts
 * seen: prototypes, inline definitions, function-like macros. -1 means variadic. */
typedef struct known {
    char name[NAME_LEN];
    int arity[MAX_ARITIES], n_arity;
} known;

static known names[MAX_NAMES];
static int n_names;

/* Arguments of the call or declaration whose "(" is at s: 0 for "()" or "(void)", -1 when "..."
 * stands among them (variadic, or an example that elides them), -2 when there is no ")". */
static int count_args(const char *s) {
    int depth = 0, commas = 0;
    bool any = false, dots = false;
    const char *open = s;
    for (; *s; s++) {
        char c = *s;
        if (c == '"' || c == '\'') { /* skip a literal */
            for (s++; *s && *s != c; s++)
                if (*s == '\\' && s[1]) s++;
            if (!*s) return -2;
            any = true;
            continue;
        }
        if (c == '(' || c == '[' || c == '{') depth++;
        else if (c == ')' || c == ']' || c == '}') {
            if (--depth == 0) break;
        } else if (depth == 1 && c == ',') commas++;
        else if (depth == 1 && strncmp(s, "...", 3) == 0) dots = true;
        if (depth >= 1 && s != open && !isspace((unsigned char)c)) any = true;
    }
    if (!*s) return -2;
    if (dots) return -1;
    size_t inner = (size_t)(s - open - 1);
    if (!any || (inner >= 4 && strncmp(open + 1, "void", 4) == 0 && strspn(open + 5, " \t") == inner - 4)) return 0;
    return commas + 1;
}

static known *find(const char *name) {
    for (int i = 0; i < n_names; i++)
        if (strcmp(names[i].name, name) == 0) return &names[i];
    return NULL;
}

/* The cf_ identifier right before the "(" at p, or 0 length ("cf_real (float32)" in prose is no call). */
static size_t ident_before(const char *start, const char *p, const char **begin) {
    const char *e = p;
    const char *b = e;
    while (b > start && (isalnum((unsigned char)b[-1]) || b[-1] == '_')) b--;
    *begin = b;
    size_t n = (size_t)(e - b);
    return n > 3 && n < NAME_LEN && strncmp(b, "cf_", 3) == 0 ? n : 0;
}

/* Code with comments blanked out (string contents kept). */
static void strip_comments(char *s) {
    for (char *p = s; *p; p++) {
        if (p[0] == '/' && p[1] == '*') {
            char *end = strstr(p + 2, "*/");
            char *stop = end ? end + 2 : p + strlen(p);
            for (; p < stop; p++)
                if (*p != '\n') *p = ' ';
            p--;
        } else if (p[0] == '/' && p[1] == '/') {
            for (; *p && *p != '\n'; p++) *p = ' ';
            if (!*p) break;
        } else if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1]) p++;
            if (!*p) break;
        }
    }
}

/* The next "cf_name(" in text at or after p: its "(" (NULL when there is none), name filled in. */
static const char *next_call(const char *text, const char *p, char name[NAME_LEN]) {
    for (p = strchr(p, '('); p; p = strchr(p + 1, '(')) {
        const char *b;
        size_t n = ident_before(text, p, &b);
        if (!n) continue;
        memcpy(name, b, n);
        name[n] = '\0';
        return p;
    }
    return NULL;
}

static void learn(const char *code) {
    char name[NAME_LEN];
    for (const char *p = next_call(code, code, name); p; p = next_call(code, p + 1, name)) {
        known *k = find(name);
        if (!k) {
            CF_ASSERT(n_names < MAX_NAMES, "too many names");
            k = &names[n_names++];
            snprintf(k->name, sizeof k->name, "%s", name);
        }
        int a = count_args(p);
        bool have = false;
        for (int i = 0; i < k->n_arity; i++) have |= k->arity[i] == a;
        if (!have && k->n_arity < MAX_ARITIES) k->arity[k->n_arity++] = a;
    }
}

/* The header's opening comment, with each line's leading " * " removed (malloc'ed), or NULL. */
static char *opening_comment(const char *text) {
    const char *a = strstr(text, "/*"), *b = a ? strstr(a, "*/") : NULL;
    if (!a || !b) return NULL;
    char *out = cf_xmalloc((size_t)(b - a) + 1), *o = out;
    for (const char *p = a + 2; p < b;) {
        while (p < b && (*p == ' ' || *p == '\t')) p++;
        if (p < b && *p == '*' && p[1] != '/') p++;
        while (p < b && *p != '\n') *o++ = *p++;
        if (p < b) *o++ = *p++;
    }
    *o = '\0';
    return out;
}

TEST(headers_usage_examples_name_real_functions) {
    glob_t g;
    char pattern[1024];
    snprintf(pattern, sizeof pattern, "%s/*/*.h", CF_SOURCE_DIR);
    CHECK(glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc > 30);
    char **texts = cf_xcalloc(g.gl_pathc + 1, sizeof *texts);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        texts[i] = test_read_file(g.gl_pathv[i], NULL);
        CHECK_MSG(texts[i], "cannot read %s", g.gl_pathv[i]);
        if (!texts[i]) continue;
        char *code = strdup(texts[i]);
        strip_comments(code);
        learn(code);
        free(code);
    }
    int n_calls = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char *usage = texts[i] ? opening_comment(texts[i]) : NULL;
        const char *rel = g.gl_pathv[i] + strlen(CF_SOURCE_DIR) + 1;
        if (!usage) continue;
        char name[NAME_LEN];
        for (const char *p = next_call(usage, usage, name); p; p = next_call(usage, p + 1, name)) {
            n_calls++;
            const known *k = find(name);
            if (!k) {
                test_fail(__FILE__, __LINE__, "%s: the usage example calls %s, which no header declares", rel, name);
                continue;
            }
            int a = count_args(p);
            bool ok = a < 0;
            for (int j = 0; j < k->n_arity; j++) ok |= k->arity[j] == a || k->arity[j] == -1;
            CHECK_MSG(ok, "%s: the usage example calls %s with %d arguments; its declaration takes %d", rel, name, a,
                      k->arity[0]);
        }
        free(usage);
    }
    CHECK_MSG(n_calls > 100, "only %d calls found in usage examples: is the scan broken?", n_calls);
    for (size_t i = 0; i < g.gl_pathc; i++) free(texts[i]);
    free(texts);
    globfree(&g);
}
