/* cl_files.c — opening the files tlcl reads (see tlcl_cl.h). Every input
 * (images, configurations, checkpoints, split files, Keras weights) goes
 * through here, so a FIFO, a device or a directory given where a file is
 * expected is refused at once instead of blocking a reader forever. */
#include "tlcl_cl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO (named pipe)" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

int tlcl_open_input(const char *path, const char *what, char *err, size_t err_len)
{
    /* O_NONBLOCK: opening a FIFO with no writer would block right here */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, err_len, "cannot open %s %s: %s", what, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%s %s is %s, not a regular file: give a regular file", what, path,
                 kind_of(st.st_mode));
        close(fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

FILE *tlcl_fopen_input(const char *path, const char *what, char *err, size_t err_len)
{
    int fd = tlcl_open_input(path, what, err, err_len);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (fd >= 0 && !f) {
        snprintf(err, err_len, "cannot open %s %s: %s", what, path, strerror(errno));
        close(fd);
    }
    return f;
}

unsigned char *tlcl_read_input(const char *path, const char *what, size_t max_bytes, size_t *len, char *err,
                               size_t err_len)
{
    *len = 0;
    int fd = tlcl_open_input(path, what, err, err_len);
    struct stat st;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > max_bytes) {
        snprintf(err, err_len, "%s %s is %lld bytes, more than the %zu bytes tlcl reads from such a file", what, path,
                 (long long)st.st_size, max_bytes);
        close(fd);
        return NULL;
    }
    size_t n = (size_t)st.st_size, got = 0;
    unsigned char *buf = malloc(n + 1);
    while (buf && got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf || got != n) {
        snprintf(err, err_len, "cannot read %s %s%s", what, path, buf ? " (it changed while being read)" : ": out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}
