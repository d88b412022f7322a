/* core/fileio.c - see fileio.h. */
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"

char *cf_path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = cf_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int cf_write_all(int fd, const void *p, size_t n) {
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
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        cf_error_set("%s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    int rc = cf_write_all(fd, data, n);
    if (rc == 0) rc = fsync(fd);
    if (rc != 0) cf_error_set("%s: write failed: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == 0) {
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
    int rc = fsync(fd);
    if (rc != 0 && errno == EINVAL) rc = 0;
    if (rc != 0) cf_error_set("%s: fsync failed: %s", path, strerror(errno));
    close(fd);
    return rc;
}

int cf_write_file_atomic(const char *path, const void *data, size_t n) {
    char *tmp = cf_xmalloc(strlen(path) + 8);
    sprintf(tmp, "%s.tmp", path);
    int rc = cf_write_file_synced(tmp, data, n);
    if (rc == 0 && rename(tmp, path) != 0) {
        cf_error_set("%s: cannot rename into place: %s", path, strerror(errno));
        unlink(tmp);
        rc = -1;
    }
    if (rc == 0) {
        char *copy = strdup(path);
        rc = cf_fsync_dir(dirname(copy));
        free(copy);
    }
    free(tmp);
    return rc;
}

int cf_mkdir_p(const char *path) {
    char *p = strdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0) continue;
        char c = *s;
        *s = 0;
        struct stat sb;
        if (mkdir(p, 0755) != 0 && !(errno == EEXIST && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode))) {
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
