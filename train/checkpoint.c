/* train/checkpoint.c - weights files and crash-safe checkpoint directories (train/checkpoint.h). */
#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/fileio.h"
#include "core/safetensors.h"
#include "train/optim_state.h"

#define MODEL_FILE "model.safetensors"
#define OPTIM_FILE "optim.safetensors"
#define STATE_FILE "state.json"
#define TMP_PREFIX ".tmp-"
/* state.json is small (about 1 KB); anything larger is not ours. */
#define STATE_MAX_BYTES (1u << 20)
/* The last member of state.json: the CRC32 of every byte before the comma that precedes it. */
#define STATE_CRC_KEY "state_crc32"
/* Written before state.json had its checksum: still read, without one. */
#define CF_CHECKPOINT_FORMAT_1 "cformer-checkpoint-1"

/* ---- small helpers ---- */

static char *str_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_fmt(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    CF_ASSERT(n >= 0);
    char *s = cf_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static char *str_dup(const char *s) { return str_fmt("%s", s); }

static const char *st_shape_str(const cf_st_tensor *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < t->ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

/* rm -r of the entry `name` in the directory `parent`; symlinks are removed, never followed. */
static int remove_tree_at(int parent, const char *name) {
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT) return 0;
    if (errno != EISDIR && errno != EPERM) return -1;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int rc = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (remove_tree_at(dirfd(d), e->d_name) != 0) rc = -1;
    }
    closedir(d);
    if (rc == 0 && unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT) rc = -1;
    return rc;
}

static int remove_tree(const char *path) { return remove_tree_at(AT_FDCWD, path); }

static bool is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool exists_nofollow(const char *path) {
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* "step-00000200" -> 200; -1 for any other name (at least 8 digits, nothing after them). */
static int64_t step_of_name(const char *name) {
    if (strncmp(name, "step-", 5) != 0) return -1;
    const char *p = name + 5;
    size_t n = strspn(p, "0123456789");
    if (n < 8 || n > 18 || p[n] != '\0') return -1;
    return strtoll(p, NULL, 10);
}

/* Size and CRC32 of a file, read in chunks (checkpoint files can be large). */
static int file_crc32(const char *path, uint64_t *bytes, uint32_t *crc) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cf_error_set("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = cf_xmalloc(CHUNK);
    uLong c = crc32(0L, Z_NULL, 0);
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t k = read(fd, buf, CHUNK);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            cf_error_set("%s: read error: %s", path, strerror(errno));
            rc = -1;
            break;
        }
        if (k == 0) break;
        c = crc32_z(c, buf, (size_t)k);
        total += (uint64_t)k;
    }
    free(buf);
    close(fd);
    *bytes = total;
    *crc = (uint32_t)c;
    return rc;
}

/* ---- weights ---- */

int cf_params_save(const cf_params *ps, const char *path, const char *config_json) {
    cf_st_writer *w = cf_st_writer_new();
    for (int i = 0; i < ps->n; i++) {
        const cf_tensor *p = ps->items[i];
        cf_st_writer_add_real(w, p->name, p->ndim, p->shape, p->data);
    }
    cf_st_writer_meta(w, "format", CF_WEIGHTS_FORMAT);
    cf_st_writer_meta(w, "version", CF_VERSION);
    if (config_json) cf_st_writer_meta(w, "config", config_json);
    int rc = cf_st_writer_write(w, path);
    cf_st_writer_free(w);
    return rc;
}

/* The major version of "MAJOR.MINOR.PATCH", or -1. */
static long version_major(const char *v) {
    char *end;
    long major = strtol(v, &end, 10);
    return end != v && *end == '.' && major >= 0 ? major : -1;
}

static int check_version(const char *path, const char *what, const char *v) {
    if (!v) {
        cf_error_set("%s: no %s version (not written by cformer, or corrupted)", path, what);
        return -1;
    }
    if (version_major(v) != version_major(CF_VERSION)) {
        cf_error_set("%s: written by cformer %s, which this build (%s) cannot read", path, v, CF_VERSION);
        return -1;
    }
    return 0;
}

/* Checks that f holds exactly ps's parameters as F32 of the right shapes; copies nothing. */
static int params_check(const cf_params *ps, const cf_st_file *f, const char *path) {
    const char *format = cf_st_metadata(f, "format");
    if (!format || strcmp(format, CF_WEIGHTS_FORMAT) != 0) {
        cf_error_set("%s: metadata format is '%s', expected '%s' (not a cformer weights file)", path,
                     format ? format : "(missing)", CF_WEIGHTS_FORMAT);
        return -1;
    }
    if (check_version(path, "library", cf_st_metadata(f, "version")) != 0) return -1;
    for (int i = 0; i < ps->n; i++) {
        const cf_tensor *p = ps->items[i];
        const cf_st_tensor *t = cf_st_find(f, p->name);
        char want[96], got[96];
        if (!t) {
            cf_error_set("%s: missing tensor '%s' (the model has %d parameters, the file %d tensors)", path,
                         p->name, ps->n, cf_st_count(f));
            return -1;
        }
        if (t->dtype != CF_ST_F32) {
            cf_error_set("%s: tensor '%s' has dtype %s, expected F32", path, p->name, cf_st_dtype_name(t->dtype));
            return -1;
        }
        bool same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!same) {
            cf_error_set("%s: tensor '%s' has shape %s, the model expects %s", path, p->name,
                         st_shape_str(t, got, sizeof got), cf_shape_str(p, want, sizeof want));
            return -1;
        }
    }
    /* Every parameter was found and names in a file are unique: any surplus is an extra tensor. */
    for (int k = 0; cf_st_count(f) != ps->n && k < cf_st_count(f); k++) {
        const char *name = cf_st_at(f, k)->name;
        if (!cf_params_find(ps, name)) {
            cf_error_set("%s: tensor '%s' belongs to no parameter of the model (the file has %d tensors, the model "
                         "%d parameters)", path, name, cf_st_count(f), ps->n);
            return -1;
        }
    }
    return 0;
}

/* After params_check succeeded: cannot fail. */
static void params_copy(cf_params *ps, const cf_st_file *f) {
    for (int i = 0; i < ps->n; i++) {
        cf_tensor *p = ps->items[i];
        int rc = cf_st_read_real(f, p->name, p->data, p->ndim, p->shape);
        CF_ASSERT(rc == 0, "validated tensor failed to read: %s", cf_error_message());
    }
}

int cf_params_load(cf_params *ps, const char *path) {
    cf_st_file *f = cf_st_open(path);
    if (!f) return -1;
    int rc = params_check(ps, f, path);
    if (rc == 0) params_copy(ps, f);
    cf_st_close(f);
    return rc;
}

/* ---- listing and pruning ---- */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int list_steps(const char *ckdir, int64_t **steps, int *n) {
    *steps = NULL;
    *n = 0;
    DIR *d = opendir(ckdir);
    if (!d) {
        if (errno == ENOENT) return 0;
        cf_error_set("%s: cannot list: %s", ckdir, strerror(errno));
        return -1;
    }
    int cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        int64_t s = step_of_name(e->d_name);
        if (s < 0) continue;
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(sb.st_mode)) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            *steps = realloc(*steps, (size_t)cap * sizeof **steps);
            CF_ASSERT(*steps != NULL);
        }
        (*steps)[(*n)++] = s;
    }
    closedir(d);
    if (*n) qsort(*steps, (size_t)*n, sizeof **steps, cmp_i64);
    return 0;
}

int cf_checkpoint_list(const char *run_dir, int64_t **steps, int *n) {
    char *ckdir = str_fmt("%s/checkpoints", run_dir);
    int rc = list_steps(ckdir, steps, n);
    free(ckdir);
    return rc;
}

/* The step a link (latest, best) in ckdir names, or -1. */
static int64_t link_step(const char *ckdir, const char *link) {
    char *path = str_fmt("%s/%s", ckdir, link), target[4096];
    ssize_t k = readlink(path, target, sizeof target - 1);
    free(path);
    if (k < 0) return -1;
    target[k] = '\0';
    const char *base = strrchr(target, '/');
    return step_of_name(base ? base + 1 : target);
}

/* Removes every .tmp-* entry of ckdir: checkpoints or links whose writer was killed. */
static void remove_stale_tmp(const char *ckdir) {
    DIR *d = opendir(ckdir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));)
        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) remove_tree_at(dirfd(d), e->d_name);
    closedir(d);
}

/* Keeps the keep_last newest step directories and latest's and best's targets. A directory is
 * first renamed to a .tmp- name, so a kill halfway through its removal never leaves a partial
 * step-* directory behind. */
static int prune(const char *ckdir, int keep_last) {
    int64_t *steps, keep_a = link_step(ckdir, "latest"), keep_b = link_step(ckdir, "best");
    int n;
    if (list_steps(ckdir, &steps, &n) != 0) return -1;
    int rc = 0;
    for (int i = 0; i < n - (keep_last > 0 ? keep_last : 0); i++) {
        if (steps[i] == keep_a || steps[i] == keep_b) continue;
        char *dir = str_fmt("%s/step-%08lld", ckdir, (long long)steps[i]);
        char *aside = str_fmt("%s/" TMP_PREFIX "prune-step-%08lld-%ld", ckdir, (long long)steps[i], (long)getpid());
        if (cf_io_rename(dir, aside) != 0) {
            cf_error_set("%s: cannot remove old checkpoint (moving it to %s): %s", dir, aside, strerror(errno));
            rc = -1;
        }
        free(dir);
        free(aside);
    }
    free(steps);
    remove_stale_tmp(ckdir);
    if (cf_fsync_dir(ckdir) != 0) rc = -1;
    return rc;
}

/* Points ckdir/link at target atomically: a new symlink under a temporary name, renamed over the
 * old one (rename(2) replaces it in one step; readers see the old or the new target). */
static int update_link(const char *ckdir, const char *link, const char *target) {
    char *tmp = str_fmt("%s/" TMP_PREFIX "link-%s-%ld", ckdir, link, (long)getpid());
    char *path = str_fmt("%s/%s", ckdir, link);
    int rc = 0;
    unlink(tmp);
    if (cf_io_symlink(target, tmp) != 0) {
        cf_error_set("%s: cannot create symlink: %s", tmp, strerror(errno));
        rc = -1;
    } else if (cf_io_rename(tmp, path) != 0) {
        cf_error_set("%s: cannot replace with a link to %s: %s", path, target, strerror(errno));
        unlink(tmp);
        rc = -1;
    }
    free(tmp);
    free(path);
    return rc;
}

/* ---- saving ---- */

/* Records size and CRC32 of dir/name in files. */
static int add_file_entry(cJSON *files, const char *dir, const char *name) {
    char *path = str_fmt("%s/%s", dir, name), hex[16];
    uint64_t bytes;
    uint32_t crc;
    int rc = file_crc32(path, &bytes, &crc);
    free(path);
    if (rc != 0) return -1;
    snprintf(hex, sizeof hex, "%08x", (unsigned)crc);
    cJSON *e = cJSON_AddObjectToObject(files, name);
    cJSON_AddNumberToObject(e, "bytes", (double)bytes);
    cJSON_AddStringToObject(e, "crc32", hex);
    return 0;
}

/* cJSON's text of root with the checksum member appended: "...last member,\n\t"state_crc32":
 * "1a2b3c4d"\n}\n", the CRC32 covering every byte before that comma. */
static char *state_text(const cJSON *root) {
    char *body = cJSON_Print(root);
    if (!body) cf_out_of_memory(0, __FILE__, __LINE__);
    size_t n = strlen(body);
    CF_ASSERT(n >= 2 && body[n - 1] == '}', "cJSON_Print of an object");
    n--;
    while (n > 0 && (body[n - 1] == '\n' || body[n - 1] == '\t' || body[n - 1] == ' ')) n--;
    uint32_t crc = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), (const unsigned char *)body, n);
    char *text = str_fmt("%.*s,\n\t\"" STATE_CRC_KEY "\":\t\"%08x\"\n}\n", (int)n, body, (unsigned)crc);
    free(body);
    return text;
}

/* Writes the three files into the (new, empty) directory tmp and fsyncs it. */
static int write_checkpoint_files(const char *tmp, int64_t step, const cf_params *ps, const cf_optimizer *opt,
                                  const cJSON *state, const char *config_json) {
    if (state && !cJSON_IsObject(state)) {
        cf_error_set("%s: checkpoint state must be a JSON object", tmp);
        return -1;
    }
    char *model = str_fmt("%s/" MODEL_FILE, tmp), *optim = str_fmt("%s/" OPTIM_FILE, tmp);
    char *state_path = str_fmt("%s/" STATE_FILE, tmp);
    /* Our fields first (a person reading the file sees what it is), then the caller's; the
     * caller cannot override format, version, step or files. */
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", CF_CHECKPOINT_FORMAT);
    cJSON_AddStringToObject(root, "version", CF_VERSION);
    cJSON_AddNumberToObject(root, "step", (double)step);
    for (const cJSON *e = state ? state->child : NULL; e; e = e->next)
        if (!cJSON_GetObjectItemCaseSensitive(root, e->string) && strcmp(e->string, "files") != 0)
            cJSON_AddItemToObject(root, e->string, cJSON_Duplicate(e, true));
    char *text = NULL;
    int rc = cf_params_save(ps, model, config_json);
    if (rc == 0 && opt) {
        cf_st_writer *w = cf_st_writer_new();
        cf_optimizer_state_save(opt, w);
        cf_st_writer_meta(w, "format", CF_WEIGHTS_FORMAT);
        cf_st_writer_meta(w, "version", CF_VERSION);
        rc = cf_st_writer_write(w, optim);
        cf_st_writer_free(w);
    }
    cJSON *files = cJSON_CreateObject();
    if (rc == 0) rc = add_file_entry(files, tmp, MODEL_FILE);
    if (rc == 0 && opt) rc = add_file_entry(files, tmp, OPTIM_FILE);
    cJSON_AddItemToObject(root, "files", files);
    if (rc == 0) {
        text = state_text(root);
        rc = cf_write_file_synced(state_path, text, strlen(text));
    }
    if (rc == 0) rc = cf_fsync_dir(tmp);
    free(text);
    cJSON_Delete(root);
    free(model);
    free(optim);
    free(state_path);
    return rc;
}

/* Moves the complete directory tmp to final. If final exists (the same step saved again), the
 * two are exchanged in one step so that final never disappears (latest may point at it), and the
 * old copy, now under the tmp name, is removed. */
static int install_dir(const char *tmp, const char *final) {
    if (!exists_nofollow(final)) {
        if (cf_io_rename(tmp, final) == 0) return 0;
        cf_error_set("%s: cannot rename to %s: %s", tmp, final, strerror(errno));
        return -1;
    }
    if (cf_io_exchange(tmp, final) == 0) {
        remove_tree(tmp);
        return 0;
    }
    if (errno != EINVAL && errno != ENOSYS) {
        cf_error_set("%s: cannot exchange with %s: %s", tmp, final, strerror(errno));
        return -1;
    }
    /* No atomic exchange on this filesystem: move the old one aside first (a brief window in
     * which final is missing; a crash there leaves it under a .tmp- name). */
    char *aside = str_fmt("%s-old", tmp);
    int rc = 0;
    if (cf_io_rename(final, aside) != 0) {
        cf_error_set("%s: cannot move aside: %s", final, strerror(errno));
        rc = -1;
    } else if (cf_io_rename(tmp, final) != 0) {
        cf_error_set("%s: cannot replace: %s", final, strerror(errno));
        rename(aside, final); /* put the old one back rather than lose it */
        rc = -1;
    } else {
        remove_tree(aside);
    }
    free(aside);
    return rc;
}

int cf_checkpoint_save(const char *run_dir, int64_t step, const cf_params *ps, const cf_optimizer *opt,
                       const cJSON *state, const char *config_json, bool is_best, int keep_last) {
    if (step < 0) {
        cf_error_set("%s: checkpoint step %lld is negative", run_dir, (long long)step);
        return -1;
    }
    char *ckdir = str_fmt("%s/checkpoints", run_dir);
    char *name = str_fmt("step-%08lld", (long long)step);
    char *final = str_fmt("%s/%s", ckdir, name);
    char *tmp = str_fmt("%s/" TMP_PREFIX "%s-%ld", ckdir, name, (long)getpid());
    bool created = !is_dir(ckdir);
    int rc = cf_mkdir_p(run_dir);
    if (rc == 0) rc = cf_mkdir_p(ckdir);
    if (rc == 0 && created) rc = cf_fsync_dir(run_dir);
    if (rc == 0) {
        remove_stale_tmp(ckdir);
        if (cf_io_mkdir(tmp) != 0) {
            cf_error_set("%s: cannot create directory: %s", tmp, strerror(errno));
            rc = -1;
        }
    }
    if (rc == 0) {
        rc = write_checkpoint_files(tmp, step, ps, opt, state, config_json);
        if (rc == 0) rc = install_dir(tmp, final);
        if (rc != 0) remove_tree(tmp);
    }
    /* Only a durable, complete step directory may be named by latest or best. */
    if (rc == 0) rc = cf_fsync_dir(ckdir);
    if (rc == 0) rc = update_link(ckdir, "latest", name);
    if (rc == 0 && is_best) rc = update_link(ckdir, "best", name);
    if (rc == 0) rc = cf_fsync_dir(ckdir);
    if (rc == 0) rc = prune(ckdir, keep_last);
    free(ckdir);
    free(name);
    free(final);
    free(tmp);
    return rc;
}

/* ---- resolving and loading ---- */

/* The path a symlink names, relative to the link's directory as the kernel reads it; path
 * itself if it is not a symlink. */
static char *follow_link(const char *path) {
    char target[4096];
    ssize_t k = readlink(path, target, sizeof target - 1);
    if (k < 0) return str_dup(path);
    target[k] = '\0';
    if (target[0] == '/') return str_dup(target);
    const char *slash = strrchr(path, '/');
    if (!slash) return str_dup(target);
    return str_fmt("%.*s/%s", (int)(slash - path), path, target);
}

/* A latest or best link that cformer wrote names a step directory beside it, "step-NNNNNNNN",
 * and nothing else: a link elsewhere (another directory, "../..", an absolute path) is refused
 * rather than followed. 0, or -1 with a message. */
static int check_run_link(const char *link) {
    char target[4096];
    ssize_t k = readlink(link, target, sizeof target - 1);
    if (k < 0) return 0; /* not a symlink: a real directory, judged by its contents */
    target[k] = '\0';
    if (step_of_name(target) >= 0) return 0;
    cf_error_set("%s: points to '%s', not a step-NNNNNNNN directory beside it (cformer writes only those)", link,
                 target);
    return -1;
}

static bool is_step_dir(const char *dir) {
    char *s = str_fmt("%s/" STATE_FILE, dir), *m = str_fmt("%s/" MODEL_FILE, dir);
    bool yes = exists_nofollow(s) || exists_nofollow(m);
    free(s);
    free(m);
    return yes;
}

/* The step directory named by ckdir/latest, else the newest step directory (each one is complete:
 * it got its name only once written and fsync'ed), else NULL + message about `what`. */
static char *resolve_ckdir(const char *ckdir, const char *what) {
    char *latest = str_fmt("%s/latest", ckdir);
    if (exists_nofollow(latest)) {
        if (check_run_link(latest) != 0) {
            free(latest);
            return NULL;
        }
        char *target = follow_link(latest);
        if (!is_dir(target) || !is_step_dir(target)) {
            cf_error_set("%s: points to %s, which is not a checkpoint", latest, target);
            free(target);
            target = NULL;
        }
        free(latest);
        return target;
    }
    free(latest);
    int64_t *steps;
    int n;
    if (list_steps(ckdir, &steps, &n) != 0) return NULL;
    char *dir = n ? str_fmt("%s/step-%08lld", ckdir, (long long)steps[n - 1]) : NULL;
    if (!dir) cf_error_set("%s: no checkpoints yet", what);
    free(steps);
    return dir;
}

static char *resolve_path(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if ((strcmp(base, "latest") == 0 || strcmp(base, "best") == 0) && check_run_link(path) != 0) return NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        cf_error_set("%s: %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(sb.st_mode)) {
        cf_error_set("not a checkpoint directory: %s (not a directory)", path);
        return NULL;
    }
    if (is_step_dir(path)) return follow_link(path);
    char *ckdir = str_fmt("%s/checkpoints", path), *result = NULL;
    char *latest = str_fmt("%s/latest", path), *config = str_fmt("%s/config.json", path);
    if (is_dir(ckdir)) result = resolve_ckdir(ckdir, path);
    else if (exists_nofollow(latest)) result = resolve_ckdir(path, path);
    else if (exists_nofollow(config)) cf_error_set("%s: no checkpoints yet", path);
    else cf_error_set("not a checkpoint directory: %s (expected a run directory, checkpoints/latest or best, or a "
                      "checkpoints/step-NNNNNNNN directory)", path);
    free(ckdir);
    free(latest);
    free(config);
    return result;
}

char *cf_checkpoint_resolve(const char *path_in) {
    /* "runs/x/" and "runs/x" name the same thing; a trailing slash would also stop readlink. */
    char *path = str_dup(path_in), *result = NULL;
    for (size_t n = strlen(path); n > 1 && path[n - 1] == '/'; n--) path[n - 1] = '\0';
    result = resolve_path(path);
    free(path);
    return result;
}

/* The checksum member that ends a format-2 state.json: 0, -1 with a message naming path. */
static int check_state_crc(const char *text, size_t n, const cJSON *root, const char *path) {
    const cJSON *last = root->child;
    while (last && last->next) last = last->next;
    if (!last || !last->string || strcmp(last->string, STATE_CRC_KEY) != 0 || !cJSON_IsString(last)) {
        cf_error_set("%s: no \"" STATE_CRC_KEY "\" at the end (truncated or edited?)", path);
        return -1;
    }
    /* The key's last occurrence in the text is that member (it is the last one); the checksum
     * covers the bytes before the comma in front of it. */
    const char *key = "\"" STATE_CRC_KEY "\"";
    size_t klen = strlen(key), at = n;
    for (size_t i = n >= klen ? n - klen + 1 : 0; i-- > 0;)
        if (memcmp(text + i, key, klen) == 0) {
            at = i;
            break;
        }
    while (at < n && at > 0 && strchr(" \t\r\n", text[at - 1])) at--;
    if (at == n || at == 0 || text[at - 1] != ',') {
        cf_error_set("%s: \"" STATE_CRC_KEY "\" is not where cformer writes it (edited?)", path);
        return -1;
    }
    char hex[16];
    snprintf(hex, sizeof hex, "%08x", (unsigned)crc32_z(crc32(0L, Z_NULL, 0), (const unsigned char *)text, at - 1));
    if (strcmp(hex, last->valuestring) != 0) {
        cf_error_set("%s: checksum mismatch (file corrupted): crc32 %s, the file says %s", path, hex, last->valuestring);
        return -1;
    }
    return 0;
}

/* The step a directory name says ("runs/x/checkpoints/step-00000200/" -> 200), or -1. */
static int64_t step_of_dir(const char *dir) {
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    size_t base = len;
    while (base > 0 && dir[base - 1] != '/') base--;
    char name[64];
    if (len - base >= sizeof name) return -1;
    memcpy(name, dir + base, len - base);
    name[len - base] = '\0';
    return step_of_name(name);
}

cJSON *cf_checkpoint_state_parse(const char *text, size_t n, const char *path, const char *dir) {
    if (n > STATE_MAX_BYTES) {
        cf_error_set("%s: %zu bytes, larger than the %u a state.json may have (corrupted?)", path, n, STATE_MAX_BYTES);
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(text, n);
    if (!cJSON_IsObject(root)) {
        cf_error_set("%s: not a JSON object (corrupted?)", path);
        cJSON_Delete(root);
        return NULL;
    }
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(root, "step");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
    const bool v2 = cJSON_IsString(format) && strcmp(format->valuestring, CF_CHECKPOINT_FORMAT) == 0;
    const bool v1 = cJSON_IsString(format) && strcmp(format->valuestring, CF_CHECKPOINT_FORMAT_1) == 0;
    int64_t named = dir ? step_of_dir(dir) : -1;
    int rc = -1;
    if (!v1 && !v2) {
        cf_error_set("%s: \"format\" is %s, expected \"%s\"", path,
                     cJSON_IsString(format) ? format->valuestring : "missing", CF_CHECKPOINT_FORMAT);
    } else if (v2 && check_state_crc(text, n, root, path) != 0) {
        /* message set */
    } else if (check_version(path, "\"version\"", cJSON_IsString(version) ? version->valuestring : NULL) != 0) {
        /* message set */
    } else if (!cJSON_IsNumber(step) || !(step->valuedouble >= 0 && step->valuedouble <= 9007199254740992.0) ||
               step->valuedouble != (double)(int64_t)step->valuedouble) {
        cf_error_set("%s: \"step\" missing or not a non-negative integer", path);
    } else if (!cJSON_IsObject(files)) {
        cf_error_set("%s: \"files\" missing or not an object", path);
    } else if (named >= 0 && named != (int64_t)step->valuedouble) {
        cf_error_set("%s: says step %lld but the directory is step-%08lld", path, (long long)step->valuedouble,
                     (long long)named);
    } else {
        rc = 0;
    }
    if (rc != 0) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static cJSON *read_state(const char *path, const char *dir) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cf_error_set("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > STATE_MAX_BYTES) {
        cf_error_set("%s: not a regular file or larger than %u bytes (corrupted?)", path, STATE_MAX_BYTES);
        close(fd);
        return NULL;
    }
    size_t n = (size_t)sb.st_size, got = 0;
    char *text = cf_xmalloc(n + 1);
    while (got < n) {
        ssize_t k = read(fd, text + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    cJSON *root = NULL;
    if (got != n) cf_error_set("%s: read error", path);
    else root = cf_checkpoint_state_parse(text, n, path, dir);
    free(text);
    return root;
}

/* Compares dir/name with its size and CRC32 in state.json, before anything parses it. */
static int verify_file(const cJSON *files, const char *dir, const char *name) {
    char *path = str_fmt("%s/%s", dir, name);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(files, name);
    const cJSON *want_bytes = cJSON_GetObjectItemCaseSensitive(e, "bytes");
    const cJSON *want_crc = cJSON_GetObjectItemCaseSensitive(e, "crc32");
    uint64_t bytes;
    uint32_t crc;
    char hex[16];
    int rc = -1;
    if (!cJSON_IsNumber(want_bytes) || !cJSON_IsString(want_crc)) {
        cf_error_set("%s: not listed in %s/" STATE_FILE " with bytes and crc32", path, dir);
    } else if (file_crc32(path, &bytes, &crc) != 0) {
        /* message set: names the file (missing, unreadable) */
    } else if ((double)bytes != want_bytes->valuedouble) {
        cf_error_set("%s: %llu bytes, " STATE_FILE " says %.0f (%s)", path, (unsigned long long)bytes,
                     want_bytes->valuedouble, (double)bytes < want_bytes->valuedouble ? "truncated" : "file changed");
    } else if (snprintf(hex, sizeof hex, "%08x", (unsigned)crc), strcmp(hex, want_crc->valuestring) != 0) {
        cf_error_set("%s: checksum mismatch (file corrupted): crc32 %s, " STATE_FILE " says %s", path, hex,
                     want_crc->valuestring);
    } else {
        rc = 0;
    }
    free(path);
    return rc;
}

int cf_checkpoint_load(const char *ckpt_dir, cf_params *ps, cf_optimizer *opt, cJSON **state, char **config_json) {
    char *state_path = str_fmt("%s/" STATE_FILE, ckpt_dir);
    char *model_path = str_fmt("%s/" MODEL_FILE, ckpt_dir), *optim_path = str_fmt("%s/" OPTIM_FILE, ckpt_dir);
    cf_st_file *model = NULL, *optim = NULL;
    cJSON *root = read_state(state_path, ckpt_dir);
    int rc = root ? 0 : -1;
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
    if (rc == 0) rc = verify_file(files, ckpt_dir, MODEL_FILE);
    if (rc == 0 && opt && !cJSON_GetObjectItemCaseSensitive(files, OPTIM_FILE)) {
        cf_error_set("%s: this checkpoint has no optimizer state (" OPTIM_FILE " not listed)", state_path);
        rc = -1;
    }
    if (rc == 0 && opt) rc = verify_file(files, ckpt_dir, OPTIM_FILE);
    if (rc == 0 && !(model = cf_st_open(model_path))) rc = -1;
    if (rc == 0) rc = params_check(ps, model, model_path);
    if (rc == 0 && opt && !(optim = cf_st_open(optim_path))) rc = -1;
    /* The optimizer validates everything before it changes anything; the parameters were checked
     * above and are copied only once it succeeded, so a failure leaves both untouched. */
    if (rc == 0 && opt && cf_optimizer_state_load(opt, optim) != 0) {
        if (strncmp(cf_error_message(), optim_path, strlen(optim_path)) != 0) {
            char *msg = str_dup(cf_error_message());
            cf_error_set("%s: %s", optim_path, msg);
            free(msg);
        }
        rc = -1;
    }
    if (rc == 0) {
        params_copy(ps, model);
        if (config_json) {
            const char *c = cf_st_metadata(model, "config");
            *config_json = c ? str_dup(c) : NULL;
        }
        if (state) {
            *state = root;
            root = NULL;
        }
    }
    cf_st_close(model);
    cf_st_close(optim);
    cJSON_Delete(root);
    free(state_path);
    free(model_path);
    free(optim_path);
    return rc;
}
