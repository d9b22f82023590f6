/* resumable_csv.c — see resumable_csv.h. */
#include "resumable_csv.h"
#include "textout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define POS_MAGIC "tlcl-partial-csv 1"

/* The record: magic, fingerprint, next input, bytes of the CSV. */
static int read_pos(const tlcl_rcsv *c, char *fingerprint, size_t flen, long *next, long long *bytes)
{
    FILE *f = fopen(c->pos, "r");
    if (!f)
        return -1;
    char line[1200];
    int ok = fgets(line, sizeof line, f) && strncmp(line, POS_MAGIC "\n", sizeof POS_MAGIC) == 0 &&
             fgets(line, sizeof line, f) && strncmp(line, "fingerprint ", 12) == 0;
    if (ok) {
        line[strcspn(line, "\n")] = '\0';
        size_t n = strlen(line + 12);
        ok = n < flen;
        if (ok)
            memcpy(fingerprint, line + 12, n + 1);
        ok = ok && fscanf(f, "next %ld\nbytes %lld\n", next, bytes) == 2 && *next >= 0 && *bytes >= 0;
    }
    fclose(f);
    return ok ? 0 : -1;
}

static int fail(char *err, size_t len, const char *what, const char *path)
{
    int e = errno ? errno : EIO;
    snprintf(err, len, "%s %s: %s%s", what, path, strerror(e), tlcl_io_hint(e));
    return -1;
}

static int start_new(tlcl_rcsv *c, const char *header, int *next, char *err, size_t len)
{
    c->f = fopen(c->partial, "w");
    if (!c->f)
        return fail(err, len, "cannot write", c->partial);
    *next = 0;
    fputs(header, c->f);
    return tlcl_rcsv_commit(c, 0, err, len);
}

/* Truncates the partial CSV to the recorded bytes and appends from there. */
static int resume(tlcl_rcsv *c, long next, long long bytes, int *out_next, char *err, size_t len)
{
    struct stat st;
    if (stat(c->partial, &st) != 0 || st.st_size < bytes) {
        snprintf(err, len, "%s is shorter than its record %s says (%lld bytes): remove both to start over",
                 c->partial, c->pos, bytes);
        return -1;
    }
    if (truncate(c->partial, (off_t)bytes) != 0)
        return fail(err, len, "cannot truncate", c->partial);
    c->f = fopen(c->partial, "a");
    if (!c->f)
        return fail(err, len, "cannot append to", c->partial);
    *out_next = (int)next;
    return 0;
}

int tlcl_rcsv_open(tlcl_rcsv *c, const char *path, const char *header, const char *fingerprint, int *next,
                   int *resumed, char *err, size_t len)
{
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    snprintf(c->partial, sizeof c->partial, "%s.partial", path);
    snprintf(c->pos, sizeof c->pos, "%s.partial.pos", path);
    snprintf(c->fingerprint, sizeof c->fingerprint, "%s", fingerprint);
    *resumed = 0;
    char had[1024];
    long done = 0;
    long long bytes = 0;
    if (access(c->pos, F_OK) != 0)
        return start_new(c, header, next, err, len);
    if (read_pos(c, had, sizeof had, &done, &bytes) != 0) {
        snprintf(err, len, "%s is not a partial-output record tlcl can read: remove it and %s to start over", c->pos,
                 c->partial);
        return -1;
    }
    if (strcmp(had, fingerprint) != 0) {
        snprintf(err, len,
                 "%s and %s hold a partial run of another model, options or input list: finish that run, or "
                 "remove both to start over",
                 c->partial, c->pos);
        return -1;
    }
    *resumed = 1;
    return resume(c, done, bytes, next, err, len);
}

int tlcl_rcsv_commit(tlcl_rcsv *c, int next, char *err, size_t len)
{
    /* ferror: a row that stdio failed to write earlier is never recorded as done */
    if (ferror(c->f) || fflush(c->f) != 0 || fsync(fileno(c->f)) != 0)
        return fail(err, len, "cannot write", c->partial);
    long long bytes = (long long)ftello(c->f);
    char text[1400];
    snprintf(text, sizeof text, POS_MAGIC "\nfingerprint %s\nnext %d\nbytes %lld\n", c->fingerprint, next, bytes);
    return textout_write_all(c->pos, text, err, len);
}

int tlcl_rcsv_finish(tlcl_rcsv *c, char *err, size_t len)
{
    int ok = !ferror(c->f) && fflush(c->f) == 0 && fsync(fileno(c->f)) == 0;
    ok = fclose(c->f) == 0 && ok;
    c->f = NULL;
    if (!ok || rename(c->partial, c->path) != 0 || tlcl_sync_folder_of(c->path) != 0)
        return fail(err, len, "cannot write", c->path);
    remove(c->pos); /* after the folder's fsync: FILE is there for good before its record goes */
    return 0;
}

void tlcl_rcsv_close(tlcl_rcsv *c)
{
    if (c->f)
        fclose(c->f);
    c->f = NULL;
}
