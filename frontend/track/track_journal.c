/* track_journal.c — the record journal (RUN_DIR/tracking/journal.jsonl, one
 * JSON record a line, appended with one write() and fsync'd; a torn last
 * line from a crash is cut when the journal is opened again) and the sync
 * state beside it (sync_state.json, replaced by rename). */
#include "textout.h"
#include "track.h"

#include "config.h" /* tlcl_mkdir_p */

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

long long track_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}


int track_journal_open(track_journal *j, const char *run_dir, char *err, size_t err_len)
{
    memset(j, 0, sizeof *j);
    snprintf(j->dir, sizeof j->dir, "%s/tracking", run_dir);
    snprintf(j->path, sizeof j->path, "%s/journal.jsonl", j->dir);
    snprintf(j->state_path, sizeof j->state_path, "%s/sync_state.json", j->dir);
    if (tlcl_mkdir_p(j->dir, err, err_len) != 0)
        return -1;
    size_t n = 0;
    char *text = textout_read_all(j->path, &n);
    if (text && n > 0 && text[n - 1] != '\n') {
        /* a record cut short by a crash: never sent (only complete lines are), dropped */
        char *last = strrchr(text, '\n');
        size_t keep = last ? (size_t)(last - text) + 1 : 0;
        if (truncate(j->path, (off_t)keep) != 0) {
            snprintf(err, err_len, "cannot cut the torn last record of %s: %s", j->path, strerror(errno));
            free(text);
            return -1;
        }
        text[keep] = 0;
    }
    j->next_seq = 1;
    cJSON *all = text ? track_journal_read(j) : NULL;
    cJSON *r;
    cJSON_ArrayForEach(r, all)
    {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "seq");
        if (cJSON_IsNumber(s) && (long)s->valuedouble >= j->next_seq)
            j->next_seq = (long)s->valuedouble + 1;
    }
    cJSON_Delete(all);
    free(text);
    return 0;
}

int track_journal_append(track_journal *j, void *record, char *err, size_t err_len)
{
    cJSON *rec = record;
    cJSON_DeleteItemFromObjectCaseSensitive(rec, "seq");
    cJSON_AddNumberToObject(rec, "seq", (double)j->next_seq);
    char *line = cJSON_PrintUnformatted(rec);
    if (!line) {
        snprintf(err, err_len, "out of memory writing the journal %s", j->path);
        return -1;
    }
    size_t n = strlen(line);
    line[n] = '\n'; /* replaces the terminator: written as n + 1 bytes */
    int fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    int ok = fd >= 0 && write(fd, line, n + 1) == (ssize_t)(n + 1) && fsync(fd) == 0;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    free(line);
    if (!ok) {
        snprintf(err, err_len, "cannot append to the journal %s: %s (is the disk full or the folder read-only?)",
                 j->path, strerror(saved));
        return -1;
    }
    j->next_seq++;
    return 0;
}

int track_journal_lock(const track_journal *j, int wait)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/sync.lock", j->dir);
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void track_journal_unlock(int fd)
{
    if (fd >= 0) {
        flock(fd, LOCK_UN);
        close(fd);
    }
}

void *track_journal_read(const track_journal *j)
{
    size_t n = 0;
    char *text = textout_read_all(j->path, &n);
    if (!text)
        return NULL;
    cJSON *all = cJSON_CreateArray();
    char *line = text;
    for (char *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = 0;
        cJSON *r = cJSON_Parse(line);
        if (cJSON_IsObject(r))
            cJSON_AddItemToArray(all, r);
        else
            cJSON_Delete(r);
    }
    free(text);
    return all;
}

void track_state_load(const track_journal *j, track_state *s)
{
    s->sent_seq = 0;
    s->runs = NULL;
    size_t n = 0;
    char *text = textout_read_all(j->state_path, &n);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(root, "sent_seq");
    if (cJSON_IsNumber(seq))
        s->sent_seq = (long)seq->valuedouble;
    cJSON *runs = cJSON_DetachItemFromObjectCaseSensitive(root, "runs");
    s->runs = cJSON_IsObject(runs) ? runs : cJSON_CreateObject();
    if (!cJSON_IsObject(runs))
        cJSON_Delete(runs);
    cJSON_Delete(root);
}

int track_state_save(const track_journal *j, const track_state *s, char *err, size_t err_len)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "sent_seq", (double)s->sent_seq);
    cJSON_AddItemReferenceToObject(root, "runs", s->runs);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        snprintf(err, err_len, "cannot write the sync state %s: out of host memory", j->state_path);
        return -1;
    }
    tlcl_publish f;
    tlcl_status st = tlcl_publish_open(&f, j->state_path, err, err_len);
    if (st == TLCL_OK)
        st = tlcl_publish_commit(&f, fputs(text, f.f) >= 0, err, err_len);
    free(text);
    return st == TLCL_OK ? 0 : -1;
}

void track_state_free(track_state *s)
{
    cJSON_Delete(s->runs);
    s->runs = NULL;
}
