/* tests/testlib.h - helpers shared by test files: fixtures, files and processes, random tensors,
 * comparisons. */
#ifndef CF_TESTLIB_H
#define CF_TESTLIB_H

#include "core/autograd.h"
#include "core/rng.h"
#include "core/safetensors.h"

/* Absolute path of tests/fixtures/<name> (static buffer, valid until the next call). */
const char *test_fixture_path(const char *name);
/* A fresh empty temporary directory under /tmp (static buffer). */
const char *test_tmpdir(const char *tag);
/* The whole file, NUL-terminated (malloc'ed; *n its size when n is not NULL), or NULL. */
char *test_read_file(const char *path, size_t *n);
/* BUILD/cformer next to the running test binary (BUILD/tests/unit), so that `make asan` runs the
 * asan CLI; build/cformer of the source tree if there is none (static buffer). */
const char *test_cformer_path(void);
/* A malloc'ed printf. */
char *test_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* path's bytes become data[0..n); false if it cannot be written. */
bool test_write_file(const char *path, const void *data, size_t n);
/* rm -rf path (no symlink is followed). */
void test_rm_tree(const char *path);
/* Rewrites CKPT_DIR/state.json by the checkpoint rules (docs/checkpoint.md) so that its checks
 * pass again after a test changed the checkpoint on purpose: the size and CRC32 of
 * CKPT_DIR/file (NULL: none) as they are now, then edit(root) (NULL: none), then state.json's
 * own checksum. The trainer's later checks are then what sees the change. */
struct cJSON;
void test_restamp_state(const char *ckpt_dir, const char *file, void (*edit)(struct cJSON *root));
/* Sleep s seconds (through signals). */
void test_sleep_s(double s);
/* Uniform values in [lo, hi) from a seeded generator. */
void test_fill_uniform(cf_real *x, int64_t n, double lo, double hi, uint64_t seed);
/* A parameter (persistent tensor) filled with uniform values. */
cf_tensor *test_param_uniform(const char *name, int ndim, const int64_t *shape, double lo, double hi, uint64_t seed);
/* max |a - b| / (atol + rtol * |b|) over n elements: <= 1 means within tolerance. */
double test_max_violation(const cf_real *a, const float *b, int64_t n, double atol, double rtol);
/* Compare n values against the F32 fixture tensor `name` of f; reports failures via CHECK. Returns
 * true when present and within |a - b| <= atol + rtol * |b|. */
bool test_check_fixture(const cf_st_file *f, const char *name, const cf_real *a, int64_t n, double atol, double rtol,
                        const char *file, int line);
#define CHECK_FIXTURE(f, name, a, n, atol, rtol) test_check_fixture((f), (name), (a), (n), (atol), (rtol), __FILE__, __LINE__)
/* Copy fixture tensor `name` (F32/F64) into a new parameter; NULL (and a failed check) if absent. */
cf_tensor *test_fixture_param(const cf_st_file *f, const char *name);

/* Thread counts every determinism test compares (1 is the reference): enough to take every split
 * path of the kernels, including odd counts, whatever cores the machine has. */
enum { TEST_N_THREAD_COUNTS = 4 };
extern const int test_thread_counts[TEST_N_THREAD_COUNTS];

#endif
