/* tests/fuzz/fuzz_util.c - see fuzz.h. */
#include "tests/fuzz/fuzz.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct memfile {
    int fd;
    char path[256];
} memfile;

static memfile files[4];
static const char *suffixes[4];

static void remove_links(void) {
    for (int i = 0; i < 4; i++)
        if (suffixes[i]) unlink(files[i].path);
}

const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix) {
    int slot = 0;
    while (slot < 4 && files[slot].fd && suffixes[slot] != suffix) slot++;
    if (slot == 4) abort();
    memfile *m = &files[slot];
    if (!m->fd) {
        m->fd = memfd_create("cformer-fuzz", 0);
        if (m->fd < 0) abort();
        suffixes[slot] = suffix;
        char target[64];
        snprintf(target, sizeof target, "/proc/self/fd/%d", m->fd);
        if (suffix) { /* a symlink whose name has the suffix the reader looks at */
            snprintf(m->path, sizeof m->path, "/tmp/cformer-fuzz-%ld-%d%s", (long)getpid(), slot, suffix);
            unlink(m->path);
            if (symlink(target, m->path) != 0) abort();
            static int registered;
            if (!registered++) atexit(remove_links);
        } else {
            snprintf(m->path, sizeof m->path, "%s", target);
        }
    }
    if (ftruncate(m->fd, 0) != 0 || pwrite(m->fd, data, size, 0) != (ssize_t)size) abort();
    lseek(m->fd, 0, SEEK_SET);
    return m->path;
}

char *fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}
