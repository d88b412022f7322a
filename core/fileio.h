/* core/fileio.h - small file helpers that report failures with the path (cf_error_set).
 *
 * Usage:
 *     char *p = cf_path_join(run_dir, "config.json");
 *     if (cf_write_file_atomic(p, json, strlen(json)) != 0) fprintf(stderr, "%s\n", cf_error_message());
 *     free(p);
 *
 * "Atomic" means readers see the old file or the new one, never a part: the bytes go to
 * PATH.tmp, are fsync'ed, then renamed over PATH and the directory is fsync'ed.
 */
#ifndef CF_FILEIO_H
#define CF_FILEIO_H

#include <stddef.h>

/* dir + "/" + name, malloc'ed. */
char *cf_path_join(const char *dir, const char *name);
/* write(2) until done (retrying on EINTR); 0 or -1 with errno set. */
int cf_write_all(int fd, const void *p, size_t n);
/* Create or truncate path with these bytes and fsync it. */
int cf_write_file_synced(const char *path, const void *data, size_t n);
/* Replace path atomically (see above). */
int cf_write_file_atomic(const char *path, const void *data, size_t n);
/* fsync a directory, so that entries created or renamed in it are durable. */
int cf_fsync_dir(const char *path);
/* mkdir -p; an existing directory is fine, an existing file is an error. */
int cf_mkdir_p(const char *path);

#endif
