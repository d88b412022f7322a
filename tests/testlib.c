/* tests/testlib.c - see testlib.h. */
#include "tests/testlib.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "tests/test.h"

const char *test_fixture_path(const char *name) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/tests/fixtures/%s", CF_SOURCE_DIR, name);
    return buf;
}

const char *test_tmpdir(const char *tag) {
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/cformer-test-%s-XXXXXX", tag);
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        abort();
    }
    return buf;
}

const char *test_cformer_path(void) {
    static char path[4096];
    if (path[0]) return path;
    char exe[4000];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(exe, '/');
            if (slash) *slash = 0;
        }
        snprintf(path, sizeof path, "%s/cformer", exe);
    }
    if (n <= 0 || access(path, X_OK) != 0) snprintf(path, sizeof path, "%s/build/cformer", CF_SOURCE_DIR);
    return path;
}

char *test_fmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0) abort();
    va_end(ap);
    return s;
}

bool test_write_file(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return false;
    bool ok = fwrite(data, 1, n, fp) == n;
    return fclose(fp) == 0 && ok;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

void test_rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

void test_restamp_state(const char *ckpt_dir, const char *file, void (*edit)(cJSON *root)) {
    char *path = test_fmt("%s/state.json", ckpt_dir), *text = test_read_file(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    CHECK_MSG(root, "%s does not parse", path);
    if (!root) {
        free(text), free(path);
        return;
    }
    if (file) {
        char *fpath = test_fmt("%s/%s", ckpt_dir, file);
        size_t n = 0;
        char *bytes = test_read_file(fpath, &n);
        CHECK_MSG(bytes, "cannot read %s", fpath);
        char hex[16];
        snprintf(hex, sizeof hex, "%08lx", bytes ? crc32_z(0, (const Bytef *)bytes, n) : 0ul);
        cJSON *e = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "files"), file);
        cJSON_ReplaceItemInObjectCaseSensitive(e, "bytes", cJSON_CreateNumber((double)n));
        cJSON_ReplaceItemInObjectCaseSensitive(e, "crc32", cJSON_CreateString(hex));
        free(bytes), free(fpath);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, "state_crc32");
    if (edit) edit(root);
    /* the last member is the CRC32 of every byte before its comma */
    char *out = cJSON_Print(root);
    size_t len = strlen(out) - 1; /* without the closing brace and the whitespace before it */
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\t')) len--;
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f, "cannot write %s", path);
    if (f) {
        fprintf(f, "%.*s,\n\t\"state_crc32\":\t\"%08lx\"\n}\n", (int)len, out,
                crc32(0, (const Bytef *)out, (uInt)len));
        fclose(f);
    }
    free(out);
    cJSON_Delete(root);
    free(text);
    free(path);
}

void test_sleep_s(double s) {
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
}

void test_fill_uniform(cf_real *x, int64_t n, double lo, double hi, uint64_t seed) {
    cf_rng r = cf_rng_init(seed, CF_RNG_STREAM_TEST);
    for (int64_t i = 0; i < n; i++) x[i] = (cf_real)(lo + (hi - lo) * cf_rng_uniform_f64(&r));
}

cf_tensor *test_param_uniform(const char *name, int ndim, const int64_t *shape, double lo, double hi, uint64_t seed) {
    cf_tensor *p = cf_param_new(name, ndim, shape);
    test_fill_uniform(p->data, p->numel, lo, hi, seed);
    return p;
}

double test_max_violation(const cf_real *a, const float *b, int64_t n, double atol, double rtol) {
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = fabs((double)a[i] - (double)b[i]) / (atol + rtol * fabs((double)b[i]));
        if (!(v <= worst)) worst = v; /* NaN propagates as the worst */
    }
    return worst;
}

bool test_check_fixture(const cf_st_file *f, const char *name, const cf_real *a, int64_t n, double atol, double rtol,
                        const char *file, int line) {
    const cf_st_tensor *t = f ? cf_st_find(f, name) : NULL;
    if (!t || t->dtype != CF_ST_F32 || t->numel != n) {
        test_fail(file, line, "fixture tensor '%s' missing, not F32 or has %lld elements (want %lld)", name,
                  t ? (long long)t->numel : -1LL, (long long)n);
        return false;
    }
    float *b = cf_xmalloc((size_t)(n ? n : 1) * sizeof *b);
    memcpy(b, t->data, (size_t)n * sizeof *b);
    int64_t worst_i = -1;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = fabs((double)a[i] - (double)b[i]) / (atol + rtol * fabs((double)b[i]));
        if (!(v <= worst)) {
            worst = v;
            worst_i = i;
        }
    }
    bool ok = worst <= 1;
    if (!ok)
        test_fail(file, line, "'%s' differs from PyTorch at [%lld]: %.9g vs %.9g (atol %g, rtol %g)", name,
                  (long long)worst_i, (double)a[worst_i], (double)b[worst_i], atol, rtol);
    free(b);
    return ok;
}

cf_tensor *test_fixture_param(const cf_st_file *f, const char *name) {
    const cf_st_tensor *t = f ? cf_st_find(f, name) : NULL;
    if (!t || t->ndim < 1 || t->ndim > CF_MAX_DIMS) {
        test_fail(__FILE__, __LINE__, "fixture tensor '%s' missing or of unsupported rank", name);
        return NULL;
    }
    cf_tensor *p = cf_param_new(name, t->ndim, t->shape);
    if (cf_st_read_real(f, name, p->data, t->ndim, t->shape) != 0) {
        test_fail(__FILE__, __LINE__, "%s", cf_error_message());
        cf_param_free(p);
        return NULL;
    }
    return p;
}

const int test_thread_counts[TEST_N_THREAD_COUNTS] = {1, 2, 3, 4};

char *test_read_file(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = cf_xmalloc((size_t)size + 1);
    size_t got = fread(buf, 1, (size_t)size, fp);
    fclose(fp);
    buf[got] = 0;
    if (n) *n = got;
    return buf;
}
