/* core/fileio.c - see fileio.h. */
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"

/* ---- fault injection (fileio.h): one counter over every write-side I/O point ---- */

static struct {
    int state;                  /* 0: environment not read yet, 1: off, 2: on */
    long long fail_at;          /* the point that fails (1-based); 0: none */
    bool sticky;                /* "N+": every point from fail_at on fails */
    int trace_fd;               /* CF_FAULT_TRACE, or -1 */
    long long signal_at;        /* CF_FAULT_SIGNAL: the point that raises signal_no first; 0: none */
    int signal_no;
    long long count;
} fault = {.trace_fd = -1};

static void fault_init(void) {
    const char *inject = getenv("CF_FAULT_INJECT"), *trace = getenv("CF_FAULT_TRACE");
    if (inject && *inject) {
        char *end;
        fault.fail_at = strtoll(inject, &end, 10);
        fault.sticky = *end == '+';
    }
    if (trace && *trace) fault.trace_fd = open(trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const char *sig = getenv("CF_FAULT_SIGNAL");
    if (sig && *sig) {
        char *end;
        long long at = strtoll(sig, &end, 10);
        long no = *end == ':' ? strtol(end + 1, &end, 10) : 0;
        if (at > 0 && no > 0 && no < 65 && !*end) fault.signal_at = at, fault.signal_no = (int)no;
    }
    fault.state = fault.fail_at > 0 || fault.trace_fd >= 0 || fault.signal_at > 0 ? 2 : 1;
}

/* True (errno = ENOSPC) when this I/O point must fail. path may be NULL (then fd names it). */
static bool fault_hit(const char *op, const char *path, int fd) {
    if (__builtin_expect(fault.state == 1, 1)) return false;
    if (fault.state == 0) {
        fault_init(); /* writers run on the main thread: no race on the first call */
        if (fault.state == 1) return false;
    }
    long long n = __atomic_add_fetch(&fault.count, 1, __ATOMIC_RELAXED);
    if (fault.trace_fd >= 0) {
        char name[4096] = "?", line[4200];
        if (path) {
            snprintf(name, sizeof name, "%s", path);
        } else {
            char link[64];
            snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
            ssize_t k = readlink(link, name, sizeof name - 1);
            name[k > 0 ? k : 0] = 0;
        }
        int len = snprintf(line, sizeof line, "%lld %s %s\n", n, op, name);
        if (len > 0 && write(fault.trace_fd, line, (size_t)len < sizeof line ? (size_t)len : sizeof line - 1) < 0) {
            /* a trace is best effort */
        }
    }
    if (n == fault.signal_at) raise(fault.signal_no);
    if (fault.fail_at > 0 && (n == fault.fail_at || (fault.sticky && n > fault.fail_at))) {
        errno = ENOSPC;
        return true;
    }
    return false;
}

long long cf_io_fault_set(long long n, int sticky) {
    if (fault.state == 0) fault_init();
    long long passed = fault.count;
    fault.count = 0;
    fault.fail_at = n > 0 ? n : 0;
    fault.sticky = sticky != 0;
    fault.state = fault.fail_at > 0 || fault.trace_fd >= 0 || fault.signal_at > 0 ? 2 : 1;
    return passed;
}

int cf_io_open(const char *path, int flags) {
    if ((flags & (O_WRONLY | O_RDWR | O_CREAT)) && fault_hit("open", path, -1)) return -1;
    return open(path, flags | O_CLOEXEC, 0644);
}

int cf_io_fsync(int fd) { return fault_hit("fsync", NULL, fd) ? -1 : fsync(fd); }

int cf_io_close(int fd) {
    if (fault_hit("close", NULL, fd)) {
        close(fd); /* the descriptor is gone either way, as after a real failed close */
        errno = ENOSPC;
        return -1;
    }
    return close(fd);
}

int cf_io_rename(const char *from, const char *to) { return fault_hit("rename", to, -1) ? -1 : rename(from, to); }

int cf_io_exchange(const char *a, const char *b) {
    return fault_hit("exchange", b, -1) ? -1 : renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
}

int cf_io_mkdir(const char *path) { return fault_hit("mkdir", path, -1) ? -1 : mkdir(path, 0755); }

int cf_io_symlink(const char *target, const char *link_path) {
    return fault_hit("symlink", link_path, -1) ? -1 : symlink(target, link_path);
}

/* ---- helpers ---- */

char *cf_path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = cf_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

char *cf_path_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return cf_xstrdup(".");
    while (slash > path && slash[-1] == '/') slash--; /* "a//b" */
    if (slash == path) return cf_xstrdup("/");
    size_t n = (size_t)(slash - path);
    char *d = cf_xmalloc(n + 1);
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

int cf_write_all(int fd, const void *p, size_t n) {
    if (n > 0 && fault_hit("write", NULL, fd)) return -1;
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

int cf_write_file_synced(const char *path, const void *data, size_t n) {
    int fd = cf_io_open(path, O_WRONLY | O_CREAT | O_TRUNC);
    if (fd < 0) {
        cf_error_set("%s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    int rc = cf_write_all(fd, data, n);
    if (rc == 0) rc = cf_io_fsync(fd);
    if (rc != 0) cf_error_set("%s: write failed: %s", path, strerror(errno));
    if (cf_io_close(fd) != 0 && rc == 0) {
        cf_error_set("%s: close failed: %s", path, strerror(errno));
        rc = -1;
    }
    return rc;
}

/* A rename or a new entry is durable only once its directory is fsync'ed. Some filesystems
 * cannot fsync a directory (EINVAL); there is nothing more we can do on those. */
int cf_fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        cf_error_set("%s: cannot open directory: %s", path, strerror(errno));
        return -1;
    }
    int rc = fault_hit("fsync", path, -1) ? -1 : fsync(fd);
    if (rc != 0 && errno == EINVAL) rc = 0;
    if (rc != 0) cf_error_set("%s: fsync failed: %s", path, strerror(errno));
    close(fd);
    return rc;
}

int cf_write_file_atomic(const char *path, const void *data, size_t n) {
    char *tmp = cf_xmalloc(strlen(path) + 8);
    sprintf(tmp, "%s.tmp", path);
    int rc = cf_write_file_synced(tmp, data, n);
    if (rc == 0 && cf_io_rename(tmp, path) != 0) {
        cf_error_set("%s: cannot rename into place: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc != 0) {
        unlink(tmp); /* never leave a partial PATH.tmp behind (it may be what filled the disk) */
    } else {
        char *dir = cf_path_dirname(path);
        rc = cf_fsync_dir(dir);
        if (rc != 0) { /* name the file: it is in place, but not yet durable */
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", cf_error_message());
            cf_error_set("%s: written, but %s", path, msg);
        }
        free(dir);
    }
    free(tmp);
    return rc;
}

int cf_write_lines_atomic(const char *path, const char *const *lines, int64_t n) {
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) total += strlen(lines[i]) + 1;
    char *buf = cf_xmalloc(total + 1), *p = buf;
    for (int64_t i = 0; i < n; i++) {
        size_t k = strlen(lines[i]);
        memcpy(p, lines[i], k);
        p[k] = '\n';
        p += k + 1;
    }
    int rc = cf_write_file_atomic(path, buf, total);
    free(buf);
    return rc;
}

int cf_mkdir_p(const char *path) {
    if (!path[0]) {
        cf_error_set("cannot create a directory with an empty name");
        return -1;
    }
    char *p = cf_xstrdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0) continue;
        char c = *s;
        *s = 0;
        struct stat sb;
        /* an existing directory (the usual case) costs no I/O point */
        if (!(stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) && cf_io_mkdir(p) != 0 &&
            !(errno == EEXIST && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode))) {
            cf_error_set("%s: cannot create directory: %s", p,
                         errno == EEXIST ? "a file of that name exists" : strerror(errno));
            rc = -1;
            break;
        }
        *s = c;
        if (c == 0) break;
    }
    free(p);
    return rc;
}
