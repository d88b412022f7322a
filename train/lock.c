/* train/lock.c - the run-directory lock (train/lock.h). */
#include "train/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/common.h"
#include "core/fileio.h"

#define LOCK_NAME "trainer.lock"

struct cf_run_lock {
    int fd;
};

/* The PID recorded in the file, or -1. The holder writes it after locking, so a reader that
 * comes in between may find the old one or none: the message then says "unknown". */
static long holder_pid(int fd) {
    char buf[32];
    ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
    if (k <= 0) return -1;
    buf[k] = 0;
    char *end;
    long pid = strtol(buf, &end, 10);
    return end != buf && pid > 0 ? pid : -1;
}

cf_run_lock *cf_run_lock_acquire(const char *dir) {
    char *path = cf_path_join(dir, LOCK_NAME);
    /* Not through cf_io_open: the lock is not data, and a full disk still lets us open it. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        cf_error_set("%s: cannot open the run lock: %s", path, strerror(errno));
        free(path);
        return NULL;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        if (err == EWOULDBLOCK) {
            long pid = holder_pid(fd);
            char who[48] = "pid unknown";
            if (pid > 0) snprintf(who, sizeof who, "pid %ld", pid);
            cf_error_set("%s is in use by another trainer (%s holds %s): wait for it to finish or stop it "
                         "(Ctrl-C writes a checkpoint), then resume with --resume", dir, who, path);
        } else {
            cf_error_set("%s: cannot lock: %s", path, strerror(err));
        }
        close(fd);
        free(path);
        return NULL;
    }
    /* Ours now: record who we are (best effort; the lock itself is the flock). */
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        /* a full disk: the lock still holds, only the message of a second trainer says less */
    }
    free(path);
    cf_run_lock *l = cf_xmalloc(sizeof *l);
    l->fd = fd;
    return l;
}

void cf_run_lock_release(cf_run_lock *l) {
    if (!l) return;
    flock(l->fd, LOCK_UN);
    close(l->fd);
    free(l);
}
