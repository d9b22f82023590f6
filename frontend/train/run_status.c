/* run_status.c — see run_status.h. */
#define _GNU_SOURCE
#include "run_status.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* fsync of the directory holding path, so the rename itself is durable. */
static void sync_dir_of(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
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
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = text ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
    size_t n = text ? strlen(text) : 0;
    int ok = fd >= 0 && write(fd, text, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    int saved = errno;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    cJSON_free(text);
    if (!ok || rename(tmp, path) != 0) {
        saved = ok ? errno : saved;
        remove(tmp);
        snprintf(err, len, "cannot write the run state %s: %s (check that the directory exists and is writable)",
                 path, strerror(saved));
        return -1;
    }
    sync_dir_of(path);
    return 0;
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
    sync_dir_of(path);
    snprintf(moved_to, moved_len, "%s", dst);
    return 1;
}
