/* run_status.c — see run_status.h. */
#define _GNU_SOURCE
#include "run_status.h"

#include <cJSON.h>
#include "tlcl_cl.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void local_time(char *dst, size_t len, const char *fmt)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    if (!strftime(dst, len, fmt, &tm) && len)
        dst[0] = '\0';
}

int tlcl_run_status_write(const char *path, const tlcl_run_status *st, char *err, size_t len)
{
    cJSON *o = cJSON_CreateObject();
    char when[32];
    snprintf(when, sizeof when, "%s", st->finished_at);
    if (!when[0])
        local_time(when, sizeof when, "%Y-%m-%d %H:%M:%S");
    cJSON_AddStringToObject(o, "format", "tlcl-run-state");
    cJSON_AddNumberToObject(o, "version", 1);
    cJSON_AddStringToObject(o, "state", "finished");
    cJSON_AddStringToObject(o, "reason", st->reason);
    cJSON_AddNumberToObject(o, "phases", st->phases);
    cJSON_AddNumberToObject(o, "last_phase_epochs", st->last_phase_epochs);
    cJSON_AddNumberToObject(o, "epochs_trained", st->epochs_trained);
    cJSON_AddStringToObject(o, "finished_at", when);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) {
        snprintf(err, len, "cannot write the run state %s: out of host memory", path);
        return -1;
    }
    tlcl_publish f;
    tlcl_status s = tlcl_publish_open(&f, path, err, len);
    if (s == TLCL_OK)
        s = tlcl_publish_commit(&f, fputs(text, f.f) >= 0 && fputc('\n', f.f) != EOF, err, len);
    cJSON_free(text);
    return s == TLCL_OK ? 0 : -1;
}

int tlcl_run_status_read(const char *path, tlcl_run_status *st, char *err, size_t len)
{
    memset(st, 0, sizeof *st);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, len, "cannot read the run state %s: %s", path, strerror(errno));
        return -1;
    }
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cJSON *o = cJSON_Parse(text);
    const char *fix = "move it away, or start the run over with --fresh (which keeps it, renamed)";
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        snprintf(err, len, "the run state %s is not a JSON object: %s", path, fix);
        return -1;
    }
    static const char *const keys[] = {"state", "reason", "phases", "last_phase_epochs", "epochs_trained",
                                       "finished_at"};
    int rc = 1;
    for (int i = 0; i < 6 && rc == 1; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
        int is_text = i == 0 || i == 1 || i == 5;
        if (!v || (is_text ? !cJSON_IsString(v) : !cJSON_IsNumber(v) || v->valuedouble < 0)) {
            snprintf(err, len, "the run state %s: key '%s' is %s (expected %s): %s", path, keys[i],
                     v ? "of the wrong type" : "missing", is_text ? "a string" : "a non-negative number", fix);
            rc = -1;
        }
    }
    if (rc == 1 && strcmp(cJSON_GetObjectItemCaseSensitive(o, "state")->valuestring, "finished") != 0) {
        snprintf(err, len, "the run state %s: key 'state' is '%s' (expected 'finished'): %s", path,
                 cJSON_GetObjectItemCaseSensitive(o, "state")->valuestring, fix);
        rc = -1;
    }
    if (rc == 1) {
        snprintf(st->reason, sizeof st->reason, "%s", cJSON_GetObjectItemCaseSensitive(o, "reason")->valuestring);
        st->phases = cJSON_GetObjectItemCaseSensitive(o, "phases")->valueint;
        st->last_phase_epochs = cJSON_GetObjectItemCaseSensitive(o, "last_phase_epochs")->valueint;
        st->epochs_trained = cJSON_GetObjectItemCaseSensitive(o, "epochs_trained")->valueint;
        snprintf(st->finished_at, sizeof st->finished_at, "%s",
                 cJSON_GetObjectItemCaseSensitive(o, "finished_at")->valuestring);
    }
    cJSON_Delete(o);
    return rc;
}

int tlcl_move_aside(const char *path, char *moved_to, size_t moved_len, char *err, size_t len)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    char stamp[32], dst[4200];
    local_time(stamp, sizeof stamp, "%Y-%m-%d_%H-%M-%S");
    snprintf(dst, sizeof dst, "%s.%s", path, stamp);
    for (int k = 2; lstat(dst, &st) == 0 && k < 1000; k++)
        snprintf(dst, sizeof dst, "%s.%s-%d", path, stamp, k);
    if (rename(path, dst) != 0) {
        snprintf(err, len, "cannot move %s aside to %s: %s", path, dst, strerror(errno));
        return -1;
    }
    tlcl_sync_folder_of(path);
    snprintf(moved_to, moved_len, "%s", dst);
    return 1;
}

int tlcl_run_lock(const char *dir, int *fd, char *err, size_t len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir[0] ? dir : ".", TLCL_RUN_LOCK_FILE);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) {
        int e = errno;
        snprintf(err, len, "cannot lock the run folder %s: %s: %s%s", dir, path, strerror(e), tlcl_io_hint(e));
        return -1;
    }
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char holder[256] = "";
        ssize_t n = e == EWOULDBLOCK ? pread(*fd, holder, sizeof holder - 1, 0) : -1;
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            snprintf(err, len,
                     "the run folder %s is in use by another tlcl run (%s; %s): wait for it to end, or give this "
                     "run another folder (train.artefacts.base_dir)",
                     dir, holder[0] ? holder : "its holder is unknown", path);
        else
            snprintf(err, len, "cannot lock the run folder %s: %s: %s", dir, path, strerror(e));
        close(*fd);
        *fd = -1;
        return -1;
    }
    char me[300], host[200] = "";
    gethostname(host, sizeof host - 1);
    int n = snprintf(me, sizeof me, "pid %ld on host %s\n", (long)getpid(), host[0] ? host : "(unknown)");
    if (ftruncate(*fd, 0) != 0 || pwrite(*fd, me, (size_t)n, 0) != n) {
        int e = errno;
        snprintf(err, len, "cannot write the lock file %s: %s%s", path, strerror(e), tlcl_io_hint(e));
        close(*fd);
        *fd = -1;
        return -1;
    }
    return 0;
}

void tlcl_run_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}
