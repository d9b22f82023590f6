/* keras_guard.c — reading Keras HDF5 files without trusting libhdf5.
 *
 * libhdf5 (1.10) is not hardened against hostile files: bit-flipped
 * fixtures crash it (SIGSEGV) inside calls tlcl cannot avoid. So:
 *  1. what tlcl can check itself is checked in process, without libhdf5:
 *     the superblock (signature, version, sizes of offsets and lengths,
 *     end-of-file and root object addresses inside the file);
 *  2. every libhdf5 call runs in a child process (fork), which reads the
 *     weights and streams them back through a pipe; a child that dies or
 *     sends a short stream makes "FILE is corrupt (the HDF5 library failed
 *     reading it)", never a crash of tlcl.
 * The stream: one kw_wire_head, then per tensor a kw_wire_tensor and its
 * count floats. */
#include "keras_internal.h"

#include "tlcl_cl.h" /* tlcl_open_input */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the superblock --------------------------------------------------------- */

static uint64_t le_n(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Checks the superblock at `at` (see the HDF5 file format specification,
 * "Superblock", versions 0 to 3). */
static int check_superblock_at(const unsigned char *head, size_t head_len, size_t at, uint64_t file_size,
                               char *why, size_t len)
{
    const unsigned char *p = head + at;
    if (at + 16 > head_len) { /* the fixed fields of every version */
        snprintf(why, len, "truncated HDF5 superblock");
        return -1;
    }
    if (p[8] > 3) {
        snprintf(why, len, "unknown HDF5 superblock version %d", p[8]);
        return -1;
    }
    int v = p[8];
    int so = v < 2 ? p[13] : p[9], sl = v < 2 ? p[14] : p[10];
    size_t addrs = v == 0 ? 24 : v == 1 ? 28 : 12; /* where the addresses begin */
    if ((so != 2 && so != 4 && so != 8) || (sl != 2 && sl != 4 && sl != 8)) {
        snprintf(why, len, "HDF5 superblock gives %d-byte addresses and %d-byte lengths (2, 4 or 8 expected)", so, sl);
        return -1;
    }
    size_t end = at + addrs + (v < 2 ? 6 : 4) * (size_t)so; /* v0/1: up to the root entry's header address */
    if (end > head_len) {
        snprintf(why, len, "truncated HDF5 superblock");
        return -1;
    }
    uint64_t base = le_n(p + addrs, so), eof = le_n(p + addrs + 2 * (size_t)so, so);
    uint64_t root = le_n(p + addrs + (v < 2 ? 5 : 3) * (size_t)so, so);
    if (base > file_size || eof > file_size - base) {
        snprintf(why, len, "the HDF5 superblock says the file ends at byte %llu, it has %llu bytes (truncated?)",
                 (unsigned long long)(base + eof), (unsigned long long)file_size);
        return -1;
    }
    if (root >= eof) {
        snprintf(why, len, "the HDF5 root group lies outside the file");
        return -1;
    }
    return 0;
}

int kw_check_superblock(const unsigned char *head, size_t head_len, uint64_t file_size, char *why, size_t len)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    /* the signature is at 0 or after a user block of 512, 1024, 2048, ... bytes */
    for (size_t at = 0; at + 8 <= head_len; at = at ? 2 * at : 512)
        if (memcmp(head + at, sig, 8) == 0)
            return check_superblock_at(head, head_len, at, file_size, why, len);
    snprintf(why, len, "no HDF5 signature");
    return -1;
}

/* ---- the stream between child and parent ------------------------------------ */

typedef struct kw_wire_head {
    int32_t status, n;
    char format[32];
    char err[1024];
} kw_wire_head;

typedef struct kw_wire_tensor {
    char layer[128], var[64];
    int32_t index, ndims, shape[4];
    uint64_t count;
} kw_wire_tensor;

/* A child that sends nothing for this long is taken for hung (libhdf5 in
 * a loop on a damaged file); reading a healthy file sends data steadily. */
#define CHILD_SILENCE_MS 60000

/* Moves n bytes through the pipe: writes them (the child) or reads them
 * (the parent, which gives up after CHILD_SILENCE_MS without data).
 * -1 on end of stream, error or silence. */
static int move_all(int fd, void *p, size_t n, int reading)
{
    for (char *c = p; n > 0;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int ready = reading ? poll(&pf, 1, CHILD_SILENCE_MS) : 1;
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            return -1;
        ssize_t k = reading ? read(fd, c, n) : write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k, n -= (size_t)k;
    }
    return 0;
}

static int write_full(int fd, const void *p, size_t n) { return move_all(fd, (void *)p, n, 0); }
static int read_full(int fd, void *p, size_t n) { return move_all(fd, p, n, 1); }

static void send_weights(int fd, const tlcl_keras_weights *w, tlcl_status s, const char *err)
{
    kw_wire_head h = {.status = (int32_t)s, .n = s == TLCL_OK ? w->n : 0};
    snprintf(h.format, sizeof h.format, "%s", w->format);
    snprintf(h.err, sizeof h.err, "%s", err);
    int ok = write_full(fd, &h, sizeof h) == 0;
    for (int i = 0; ok && i < h.n; i++) {
        const kw_tensor *t = &w->t[i];
        kw_wire_tensor wt = {.index = t->index, .ndims = t->ndims, .count = t->count};
        memcpy(wt.layer, t->layer, sizeof wt.layer);
        memcpy(wt.var, t->var, sizeof wt.var);
        for (int d = 0; d < 4; d++)
            wt.shape[d] = t->shape[d];
        ok = write_full(fd, &wt, sizeof wt) == 0 && write_full(fd, t->data, t->count * sizeof(float)) == 0;
    }
}

/* One tensor as the child sent it: shape and count must agree (the child
 * is tlcl's code, but a dying child can leave anything in the pipe). */
static int receive_tensor(int fd, tlcl_keras_weights *w)
{
    kw_wire_tensor wt;
    if (read_full(fd, &wt, sizeof wt) != 0 || wt.ndims < 0 || wt.ndims > 4)
        return -1;
    uint64_t count = 1;
    for (int d = 0; d < wt.ndims; d++) {
        if (wt.shape[d] < 0 || (wt.shape[d] > 0 && count > (UINT64_C(1) << 34) / (uint64_t)wt.shape[d]))
            return -1;
        count *= (uint64_t)wt.shape[d];
    }
    if (count != wt.count)
        return -1;
    float *data = malloc(count ? count * sizeof *data : 1);
    wt.layer[sizeof wt.layer - 1] = wt.var[sizeof wt.var - 1] = '\0';
    if (!data || read_full(fd, data, count * sizeof *data) != 0 ||
        kw_add(w, wt.layer, wt.var, wt.index, wt.ndims, wt.shape, data, count) != 0) {
        free(data);
        return -1;
    }
    return 0;
}

/* The child's answer: its status and message, or -1 when the stream is short or wrong. */
static int receive_weights(int fd, tlcl_keras_weights *w, tlcl_status *s, char *err, size_t len)
{
    kw_wire_head h;
    if (read_full(fd, &h, sizeof h) != 0 || h.n < 0)
        return -1;
    h.format[sizeof h.format - 1] = h.err[sizeof h.err - 1] = '\0';
    for (int i = 0; i < h.n; i++)
        if (receive_tensor(fd, w) != 0)
            return -1;
    char end;
    if (read_full(fd, &end, 1) == 0) /* nothing may follow */
        return -1;
    *s = (tlcl_status)h.status;
    snprintf(w->format, sizeof w->format, "%s", h.format);
    if (*s != TLCL_OK)
        snprintf(err, len, "%s", h.err);
    return 0;
}

/* ---- the child ----------------------------------------------------------------- */

static void drop_weights(tlcl_keras_weights *w)
{
    for (int i = 0; i < w->n; i++)
        free(w->t[i].data);
    free(w->t);
    w->t = NULL, w->n = w->cap = 0;
}

tlcl_status kw_read_guarded(tlcl_keras_weights *w, const kw_h5_source *src, char *err, size_t len)
{
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(err, len, "reading %s: cannot create a pipe: %s", w->path, strerror(errno));
        return TLCL_ERR_IO;
    }
    fflush(NULL); /* buffered output must not be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, len, "reading %s: cannot start a process: %s", w->path, strerror(errno));
        close(fds[0]), close(fds[1]);
        return TLCL_ERR_IO;
    }
    if (pid == 0) { /* the child: libhdf5 runs here only */
        close(fds[0]);
        /* a fault in libhdf5 ends the child plainly: handlers inherited from
         * the parent (a sanitizer's, a fuzzer's) would report it as theirs */
        static const int faults[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGPIPE};
        for (size_t i = 0; i < sizeof faults / sizeof *faults; i++)
            signal(faults[i], SIG_DFL);
        char why[1024] = "";
        tlcl_status s = src->path ? kw_read_h5_path(w, src->path, why, sizeof why)
                                  : kw_read_h5_image(w, src->image, src->size, why, sizeof why);
        send_weights(fds[1], w, s, why);
        _exit(0);
    }
    close(fds[1]);
    tlcl_status s = TLCL_OK;
    int broken = receive_weights(fds[0], w, &s, err, len) != 0, status = 0;
    close(fds[0]);
    if (broken)
        kill(pid, SIGKILL); /* it may be blocked writing what was not read */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (broken || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        drop_weights(w);
        snprintf(err, len, "%s is corrupt (the HDF5 library failed reading it%s)", w->path,
                 WIFSIGNALED(status) && !broken ? ": it crashed" : "");
        return TLCL_ERR_FORMAT;
    }
    if (s != TLCL_OK)
        drop_weights(w);
    return s;
}

/* ---- entry points ------------------------------------------------------------------ */

tlcl_status kw_open_h5_path(tlcl_keras_weights *w, const char *path, char *err, size_t len)
{
    unsigned char head[65536 + 64];
    char why[256];
    int fd = tlcl_open_input(path, "Keras weights file", err, len);
    if (fd < 0)
        return TLCL_ERR_IO;
    struct stat st;
    ssize_t got = fstat(fd, &st) == 0 ? pread(fd, head, sizeof head, 0) : -1;
    close(fd);
    if (got < 0) {
        snprintf(err, len, "cannot read %s: %s", path, strerror(errno));
        return TLCL_ERR_IO;
    }
    if (kw_check_superblock(head, (size_t)got, (uint64_t)st.st_size, why, sizeof why) != 0) {
        snprintf(err, len, "%s is not a readable HDF5 file (%s); expected a Keras .weights.h5, .h5 or .keras", path,
                 why);
        return TLCL_ERR_FORMAT;
    }
    kw_h5_source src = {.path = path};
    return kw_read_guarded(w, &src, err, len);
}

tlcl_status kw_open_h5_image(tlcl_keras_weights *w, const void *image, size_t size, char *err, size_t len)
{
    char why[256];
    if (kw_check_superblock(image, size, size, why, sizeof why) != 0) {
        snprintf(err, len, "%s: model.weights.h5 inside the archive is not a readable HDF5 image (%s)", w->path, why);
        return TLCL_ERR_FORMAT;
    }
    kw_h5_source src = {.image = image, .size = size};
    return kw_read_guarded(w, &src, err, len);
}
