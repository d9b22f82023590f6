/* test_host_faults.c — the pieces of issue 13's fault handling that need no
 * device: files published whole (tlcl_publish: the file appears only when
 * committed, nothing is left when the writer gives up, a failure names the
 * file and the system's reason), the clean-up of temporaries a killed
 * process left (only "<name>.tmp.<pid>" of a pid that no longer exists), the
 * run-folder lock (a second taker is refused, naming the holder's pid), and
 * a .keras archive whose deflate stream is corrupt (named as such, not as
 * an unknown zip method). */
#define _GNU_SOURCE
#include "harness.h"
#include "model.h"
#include "run_status.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];

static int exists(const char *dir, const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void touch(const char *dir, const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f)
        fclose(f);
}

/* Two threads of one process publishing the same file at once (the
 * program cache of two data-parallel replicas on one device): each through
 * its own temporary, so every round leaves one whole version. */
enum { RACE_BYTES = 1 << 20, RACE_ROUNDS = 20 };

typedef struct racer {
    const char *path;
    unsigned char fill;
    pthread_barrier_t *start;
    int failed;
} racer;

static void *race_publish(void *arg)
{
    racer *r = arg;
    unsigned char *data = malloc(RACE_BYTES);
    char err[512];
    if (!data)
        return r->failed = 1, NULL;
    memset(data, r->fill, RACE_BYTES);
    pthread_barrier_wait(r->start);
    if (tlcl_publish_bytes(r->path, data, RACE_BYTES, err, sizeof err) != TLCL_OK)
        r->failed = 1, fprintf(stderr, "     thread %d: %s\n", r->fill, err);
    free(data);
    return NULL;
}

static int whole_version(const char *path)
{
    FILE *f = fopen(path, "rb");
    int c0 = f ? fgetc(f) : EOF, c, n = c0 == EOF ? 0 : 1;
    while (f && (c = fgetc(f)) != EOF && c == c0)
        n++;
    if (f)
        fclose(f);
    return n == RACE_BYTES && (c0 == 1 || c0 == 2);
}

static void test_publish_threads(harness *h)
{
    char path[600];
    int bad = 0;
    snprintf(path, sizeof path, "%s/raced.bin", tmpdir);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, 2);
        racer r[2] = {{path, 1, &start, 0}, {path, 2, &start, 0}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, race_publish, &r[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&start);
        bad += r[0].failed || r[1].failed || !whole_version(path);
    }
    harness_expectf(h, bad == 0, "two threads publishing one file: %d rounds of %d left one whole version, both "
                    "publishes succeeded", RACE_ROUNDS - bad, RACE_ROUNDS);
}

static void test_publish(harness *h)
{
    char path[600], err[1200] = "";
    snprintf(path, sizeof path, "%s/data.bin", tmpdir);
    tlcl_status s = tlcl_publish_bytes(path, "hello\n", 6, err, sizeof err);
    size_t n = 0;
    FILE *f = fopen(path, "rb");
    char got[16] = "";
    n = f ? fread(got, 1, sizeof got, f) : 0;
    if (f)
        fclose(f);
    harness_expectf(h, s == TLCL_OK && n == 6 && memcmp(got, "hello\n", 6) == 0, "published bytes read back: %s",
                    err);
    char tmp[64];
    snprintf(tmp, sizeof tmp, "data.bin.tmp.%ld", (long)getpid());
    harness_expect(h, !exists(tmpdir, tmp), "no temporary is left after a commit");

    tlcl_publish p;
    snprintf(path, sizeof path, "%s/given_up.json", tmpdir);
    s = tlcl_publish_open(&p, path, err, sizeof err);
    if (s == TLCL_OK) {
        fputs("{\"half\":", p.f);
        snprintf(err, sizeof err, "the writer's own reason");
        s = tlcl_publish_commit(&p, 0, err, sizeof err);
    }
    snprintf(tmp, sizeof tmp, "given_up.json.tmp.%ld", (long)getpid());
    harness_expectf(h, s == TLCL_ERR_IO && !exists(tmpdir, "given_up.json") && !exists(tmpdir, tmp) &&
                           strcmp(err, "the writer's own reason") == 0,
                    "a writer that gives up publishes nothing, leaves nothing, keeps its message: %s", err);

    snprintf(path, sizeof path, "%s/no_such_folder/x.json", tmpdir);
    s = tlcl_publish_open(&p, path, err, sizeof err);
    harness_expectf(h, s == TLCL_ERR_IO && strstr(err, path) && strstr(err, "No such file or directory"),
                    "a missing folder is named with the system's reason: %s", err);
}

/* A pid that existed and no longer does: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}

static void test_clean_stale(harness *h)
{
    char dir[300], dead[64], live[64], mine[64];
    snprintf(dir, sizeof dir, "%s/stale", tmpdir);
    mkdir(dir, 0755);
    snprintf(dead, sizeof dead, "best.safetensors.tmp.%ld", (long)dead_pid());
    snprintf(live, sizeof live, "history.json.tmp.%ld", (long)getppid());
    snprintf(mine, sizeof mine, "plot.png.tmp.%ld", (long)getpid());
    const char *others[] = {live, mine, "notes.tmp.12x", ".tmp.1", "run_state.json", "x.tmp."};
    touch(dir, dead);
    for (int i = 0; i < 6; i++)
        touch(dir, others[i]);
    int removed = tlcl_publish_clean_stale(dir);
    int kept = 1;
    for (int i = 0; i < 6; i++)
        kept = kept && exists(dir, others[i]);
    harness_expectf(h, removed == 1 && !exists(dir, dead) && kept,
                    "only the temporary of a dead pid goes (%d removed; %s %s)", removed, dead,
                    exists(dir, dead) ? "kept" : "removed");
}

static void test_run_lock(harness *h)
{
    char err[1200] = "", want[64];
    int a = -1, b = -1, c = -1;
    int ra = tlcl_run_lock(tmpdir, &a, err, sizeof err);
    int rb = tlcl_run_lock(tmpdir, &b, err, sizeof err);
    snprintf(want, sizeof want, "pid %ld on host", (long)getpid());
    harness_expectf(h, ra == 0 && rb == -1 && b == -1 && strstr(err, want) && strstr(err, tmpdir),
                    "a second lock of the folder is refused, naming the holder: %s", err);
    tlcl_run_unlock(a);
    int rc = tlcl_run_lock(tmpdir, &c, err, sizeof err);
    harness_expectf(h, rc == 0, "once released, the folder can be taken again: %s", rc ? err : "");
    tlcl_run_unlock(c);
}

static void put16(unsigned char *p, unsigned v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, unsigned v) { put16(p, v & 0xffff), put16(p + 2, v >> 16); }

/* A .keras zip of one deflated member, model.weights.h5, whose stream is garbage. */
static void test_corrupt_deflate(harness *h)
{
    static const char name[] = "model.weights.h5";
    enum { NAME = sizeof name - 1, DATA = 24 };
    unsigned char z[30 + NAME + DATA + 46 + NAME + 22];
    memset(z, 0, sizeof z);
    unsigned char *loc = z, *data = z + 30 + NAME, *cen = data + DATA, *end = cen + 46 + NAME;
    put32(loc, 0x04034b50u), put16(loc + 8, 8), put32(loc + 18, DATA), put32(loc + 22, 4096), put16(loc + 26, NAME);
    memcpy(loc + 30, name, NAME);
    memset(data, 0xff, DATA); /* 0xff: a deflate block of the reserved type 3 */
    put32(cen, 0x02014b50u), put16(cen + 10, 8), put32(cen + 20, DATA), put32(cen + 24, 4096);
    put16(cen + 28, NAME), put32(cen + 42, 0);
    memcpy(cen + 46, name, NAME);
    put32(end, 0x06054b50u), put16(end + 8, 1), put16(end + 10, 1), put32(end + 12, 46 + NAME);
    put32(end + 16, (unsigned)(cen - z));
    char path[600], err[1200] = "";
    snprintf(path, sizeof path, "%s/damaged.keras", tmpdir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(z, 1, sizeof z, f) != sizeof z) {
        harness_fail(h, "writing %s", path);
        if (f)
            fclose(f);
        return;
    }
    fclose(f);
    tlcl_keras_weights *w = NULL;
    tlcl_status s = tlcl_keras_open(&w, path, err, sizeof err);
    harness_expectf(h, s != TLCL_OK && strstr(err, "corrupt deflate data in model.weights.h5 of") && strstr(err, path),
                    "a corrupt deflate stream is named as such, with the entry and the file: %s", err);
    if (w)
        tlcl_keras_close(w);
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tlcl_faults_test_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_publish(&h);
    test_publish_threads(&h);
    test_clean_stale(&h);
    test_run_lock(&h);
    test_corrupt_deflate(&h);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (h.failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return harness_finish(&h);
}
