/* file_publish.c — files published whole. Every file tlcl writes for later
 * (checkpoints, backups, histories, plots, split files, caches) is written
 * under "<path>.tmp.<pid>", flushed, fsynced and closed, then renamed into
 * place and its folder fsynced: a reader, a crash or a kill sees the old
 * file or the new one, never a part of one, and a published file survives a
 * power cut. Every failure names the file and the system's reason. The
 * temporaries a killed process leaves behind are removed by the next start
 * (tlcl_publish_clean_stale). */
#define _GNU_SOURCE
#include "tlcl_cl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

const char *tlcl_io_hint(int err_no)
{
    switch (err_no) {
    case ENOSPC:
    case EDQUOT:
        return " (free space on that file system, or point the setting that names this file elsewhere)";
    case EROFS:
        return " (the file system is read-only: write elsewhere)";
    case EACCES:
    case EPERM:
        return " (no permission to write there: write elsewhere, or change the folder's permissions)";
    case ENOENT:
        return " (the folder does not exist: create it, or write elsewhere)";
    default:
        return "";
    }
}

/* The stdio stream writes through here, so the first failing write(2) is
 * remembered with its errno: stdio itself forgets it. */
static ssize_t cookie_write(void *cookie, const char *buf, size_t n)
{
    tlcl_publish *p = cookie;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(p->fd, buf + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (!p->err_no)
                p->err_no = w < 0 ? errno : EIO;
            return 0; /* fopencookie: 0 is the error */
        }
        done += (size_t)w;
    }
    return (ssize_t)n;
}

/* Test hook for the kill suite: with TLCL_TEST_KILL_AT_PUBLISH=N the
 * process raises SIGKILL at its N-th publish, after the temporary is written
 * and before the rename (N negative: after the rename, before the folder's
 * fsync). The variable is read once, at the first publish. */
static long kill_at_publish;
static void read_kill_setting(void)
{
    const char *v = getenv("TLCL_TEST_KILL_AT_PUBLISH");
    kill_at_publish = v && *v ? strtol(v, NULL, 10) : 0;
}

static void test_kill_hook(int after_rename)
{
    static atomic_long publishes;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, read_kill_setting);
    long n = kill_at_publish;
    if (n == 0)
        return;
    long count = after_rename ? atomic_load(&publishes) : atomic_fetch_add(&publishes, 1) + 1;
    if (n != 0 && (n < 0) == after_rename && count == labs(n))
        raise(SIGKILL);
}

tlcl_status tlcl_publish_open(tlcl_publish *p, const char *path, char *err, size_t err_len)
{
    memset(p, 0, sizeof *p);
    p->fd = -1;
    if (strlen(path) >= sizeof p->path) {
        snprintf(err, err_len, "cannot write %.200s...: the path is too long", path);
        return TLCL_ERR_ARG;
    }
    strcpy(p->path, path);
    /* another thread of this process (a data-parallel replica building the
     * same program) publishing the same file writes its own temporary;
     * the name still ends in .tmp.<pid> for tlcl_publish_clean_stale */
    long tid = (long)syscall(SYS_gettid);
    if (tid == (long)getpid())
        snprintf(p->tmp, sizeof p->tmp, "%s.tmp.%ld", path, (long)getpid());
    else
        snprintf(p->tmp, sizeof p->tmp, "%s.%ld.tmp.%ld", path, tid, (long)getpid());
    p->fd = open(p->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (p->fd < 0) {
        int e = errno;
        snprintf(err, err_len, "cannot write %s: %s%s", path, strerror(e), tlcl_io_hint(e));
        return TLCL_ERR_IO;
    }
    p->f = fopencookie(p, "wb", (cookie_io_functions_t){.write = cookie_write});
    if (!p->f) {
        close(p->fd), unlink(p->tmp);
        p->fd = -1;
        snprintf(err, err_len, "cannot write %s: out of host memory", path);
        return TLCL_ERR_OOM;
    }
    return TLCL_OK;
}

int tlcl_sync_folder_of(const char *path)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : -1; /* some file systems cannot sync a folder */
    close(fd);
    return rc;
}

/* The reason of the first failing step: write, fflush, fsync, fclose. */
static int finish_temporary(tlcl_publish *p, const char **step)
{
    int e = 0;
    *step = "writing";
    if (fflush(p->f) != 0 || p->err_no)
        e = p->err_no ? p->err_no : EIO;
    if (!e && fsync(p->fd) != 0)
        e = errno, *step = "syncing";
    fclose(p->f); /* the cookie stream has no close function: the descriptor is ours */
    p->f = NULL;
    if (close(p->fd) != 0 && !e)
        e = errno, *step = "closing";
    p->fd = -1;
    return e;
}

tlcl_status tlcl_publish_commit(tlcl_publish *p, int ok, char *err, size_t err_len)
{
    if (!p->f) {
        snprintf(err, err_len, "cannot write %s: it was never opened", p->path);
        return TLCL_ERR_ARG;
    }
    const char *step;
    int e = finish_temporary(p, &step);
    if (!e && !ok) { /* the writer's own failure: its message is already in err */
        unlink(p->tmp);
        return TLCL_ERR_IO;
    }
    if (e) {
        unlink(p->tmp);
        snprintf(err, err_len, "cannot write %s (%s %s): %s%s", p->path, step, p->tmp, strerror(e),
                 tlcl_io_hint(e));
        return TLCL_ERR_IO;
    }
    test_kill_hook(0);
    if (rename(p->tmp, p->path) != 0) {
        e = errno;
        unlink(p->tmp);
        snprintf(err, err_len, "cannot write %s (renaming %s into place): %s%s", p->path, p->tmp, strerror(e),
                 tlcl_io_hint(e));
        return TLCL_ERR_IO;
    }
    test_kill_hook(1);
    if (tlcl_sync_folder_of(p->path) != 0) {
        e = errno;
        snprintf(err, err_len, "cannot write %s (syncing its folder): %s%s", p->path, strerror(e), tlcl_io_hint(e));
        return TLCL_ERR_IO;
    }
    return TLCL_OK;
}

void tlcl_publish_discard(tlcl_publish *p)
{
    if (p->f)
        fclose(p->f);
    if (p->fd >= 0)
        close(p->fd);
    if (p->f || p->fd >= 0)
        unlink(p->tmp);
    p->f = NULL, p->fd = -1;
}

tlcl_status tlcl_publish_bytes(const char *path, const void *data, size_t n, char *err, size_t err_len)
{
    tlcl_publish p;
    TLCL_TRY(tlcl_publish_open(&p, path, err, err_len));
    return tlcl_publish_commit(&p, fwrite(data, 1, n, p.f) == n, err, err_len);
}

/* The pid of "<name>.tmp.<pid>", or 0 for any other name. */
static long temporary_pid(const char *name)
{
    const char *mark = strstr(name, ".tmp.");
    if (!mark || mark == name)
        return 0;
    const char *digits = mark + 5;
    while (strstr(digits, ".tmp."))
        mark = strstr(digits, ".tmp."), digits = mark + 5;
    char *end;
    long pid = strtol(digits, &end, 10);
    return *digits >= '0' && *digits <= '9' && *end == '\0' && pid > 0 ? pid : 0;
}

int tlcl_publish_clean_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        long pid = temporary_pid(e->d_name);
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* not ours, or its writer may still be at work */
        char path[4400];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && unlink(path) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}
