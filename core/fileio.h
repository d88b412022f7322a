/* core/fileio.h - small file helpers that report failures with the path (cf_error_set), and the
 * write-side system calls every writer of the library goes through.
 *
 * Usage:
 *     char *p = cf_path_join(run_dir, "config.json");
 *     if (cf_write_file_atomic(p, json, strlen(json)) != 0) fprintf(stderr, "%s\n", cf_error_message());
 *     free(p);
 *     // -> "runs/x/config.json.tmp: write failed: No space left on device"
 *
 * "Atomic" means readers see the old file or the new one, never a part: the bytes go to
 * PATH.tmp, are fsync'ed, then renamed over PATH and the directory is fsync'ed.
 *
 * Fault injection (tests only). Each call of cf_io_open (for writing), cf_write_all, cf_io_fsync,
 * cf_io_close, cf_io_rename, cf_io_exchange, cf_io_mkdir, cf_io_symlink and cf_fsync_dir is one
 * numbered "I/O point". With CF_FAULT_INJECT=N in the environment the N-th point fails with ENOSPC
 * as a full disk would; with N+ that point and every later one fail (the disk stays full). With
 * CF_FAULT_TRACE=FILE each point appends "N op path" to FILE, so a test can list them and fail
 * each in turn (tests/test_faults.c). With CF_FAULT_SIGNAL=N:SIG the N-th point first raises
 * signal SIG in the calling thread, then proceeds: a stop request at an exact moment of a run
 * (the write just before an evaluation) instead of at a moment a test can only hope to hit.
 * Unset, the points cost one predictable branch.
 */
#ifndef CF_FILEIO_H
#define CF_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* dir + "/" + name, malloc'ed. */
char *cf_path_join(const char *dir, const char *name);
/* write(2) until done (retrying on EINTR); 0 or -1 with errno set. */
int cf_write_all(int fd, const void *p, size_t n);
/* Create or truncate path with these bytes and fsync it. */
int cf_write_file_synced(const char *path, const void *data, size_t n);
/* Replace path atomically (see above). */
int cf_write_file_atomic(const char *path, const void *data, size_t n);
/* Replace path atomically with n lines, each followed by '\n' (hypothesis files). */
int cf_write_lines_atomic(const char *path, const char *const *lines, int64_t n);
/* fsync a directory, so that entries created or renamed in it are durable. */
int cf_fsync_dir(const char *path);
/* mkdir -p; an existing directory is fine, an existing file (or an empty path) is an error. */
int cf_mkdir_p(const char *path);
/* The parent directory of path ("." when it has no '/'), malloc'ed. */
char *cf_path_dirname(const char *path);

/* Tests in this process: from now on the n-th I/O point fails (and every later one if sticky);
 * n 0 turns injection off. Returns how many points have passed since the last call. */
long long cf_io_fault_set(long long n, int sticky);

/* The system calls themselves, with the fault-injection point; each returns what the call does
 * (-1 and errno on failure) and sets no message. open: O_CLOEXEC is added, mode 0644. */
int cf_io_open(const char *path, int flags);
int cf_io_fsync(int fd);
int cf_io_close(int fd);
int cf_io_rename(const char *from, const char *to);
/* renameat2(RENAME_EXCHANGE): both names must exist; EINVAL/ENOSYS where unsupported. */
int cf_io_exchange(const char *a, const char *b);
int cf_io_mkdir(const char *path);
int cf_io_symlink(const char *target, const char *link_path);

#endif
