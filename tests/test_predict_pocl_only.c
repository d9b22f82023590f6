/* test_predict_pocl_only.c — `tlcl predict` at scale, driving the binary on
 * generated images with a checkpoint the test saves (EfficientNet-B0 at 64
 * px, 3 classes, random weights):
 * - memory stays flat: the peak RSS of 3,000 images exceeds that of 300 by
 *   less than the pixels of 200 images (holding every image would add 2,700);
 * - kill -9 at three points, then a rerun: the output is byte for byte the
 *   uninterrupted run's, one row per image;
 * - a partial output of other options (--top) is refused, naming it;
 * - --list reads paths from a file;
 * - links that lead back to a walked directory are walked once. */
#include "harness.h"
#include "textout.h"
#include "image_write.h"
#include "testdata.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { SIZE = 64, SIDE = 20, SMALL = 300, LARGE = 3000 };

static char root[256];

static void write_images(const char *dir, int count)
{
    unsigned char px[SIDE * SIDE * 3];
    char path[1200];
    mkdir(dir, 0755);
    for (int i = 0; i < count; i++) {
        for (int p = 0; p < SIDE * SIDE * 3; p++)
            px[p] = (unsigned char)((p * 7 + i * 13) % 251);
        snprintf(path, sizeof path, "%s/img%05d.png", dir, i);
        image_write_rgb(path, SIDE, SIDE, px, NULL, 0);
    }
}

/* Starts tlcl predict; its stderr goes to <root>/<tag>.err. */
static pid_t start(harness *h, const char *tag, const char *out, const char *top, const char *input, int list)
{
    char dev[32], model[600], errf[600];
    snprintf(dev, sizeof dev, "--device=%d", tlcl_cl_device(h->cl)->index);
    snprintf(model, sizeof model, "%s/model.safetensors", root);
    snprintf(errf, sizeof errf, "%s/%s.err", root, tag);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(errf, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(127);
        execl(TLCL_BINARY, "tlcl", "predict", dev, "--model", model, "--batch-size", "8", "--top", top, "--out", out,
              list ? "--list" : input, list ? input : (char *)NULL, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits; the exit status (-1: killed) and the peak RSS in KiB. */
static int finish(pid_t pid, long *rss_kib)
{
    int st = 0;
    struct rusage ru;
    wait4(pid, &st, 0, &ru);
    if (rss_kib)
        *rss_kib = ru.ru_maxrss;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run(harness *h, const char *tag, const char *out, const char *top, const char *input, int list,
               long *rss)
{
    return finish(start(h, tag, out, top, input, list), rss);
}

static long next_done(const char *out)
{
    char pos[700], line[256];
    snprintf(pos, sizeof pos, "%s.partial.pos", out);
    FILE *f = fopen(pos, "r");
    long next = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "next %ld", &next) == 1)
            break;
    if (f)
        fclose(f);
    return next;
}

/* Kills a run once it has recorded progress past `past` inputs and then
 * run on for `extra_ms` (rows written after the record: the rerun must drop
 * them). */
static long kill_after(harness *h, const char *out, const char *input, long past, long extra_ms)
{
    pid_t pid = start(h, "killed", out, "2", input, 0);
    long next = -1;
    for (int i = 0; i < 4000 && (next = next_done(out)) <= past; i++) {
        struct timespec t = {0, 5000000};
        nanosleep(&t, NULL);
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1; /* finished before it could be killed */
    }
    struct timespec t = {extra_ms / 1000, (extra_ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
    kill(pid, SIGKILL);
    finish(pid, NULL);
    return next_done(out);
}

static int lines(const char *text)
{
    int n = 0;
    for (const char *c = text; c && *c; c++)
        n += *c == '\n';
    return n;
}

/* Under AddressSanitizer freed blocks wait in a quarantine (256 MiB by
 * default) before reuse, so a process's peak RSS grows with what it ever
 * allocated: the memory runs turn the quarantine off to measure what is
 * held. */
static void asan_no_quarantine(void)
{
    const char *old = getenv("ASAN_OPTIONS");
    char opts[1024];
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=0", old ? old : "", old && *old ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
}

static void test_memory(harness *h, const char *small, const char *large)
{
    asan_no_quarantine();
    char o1[600], o2[600];
    long r1 = 0, r2 = 0;
    snprintf(o1, sizeof o1, "%s/small.csv", root);
    snprintf(o2, sizeof o2, "%s/large.csv", root);
    int s1 = run(h, "small", o1, "2", small, 0, &r1), s2 = run(h, "large", o2, "2", large, 0, &r2);
    long image_kib = (long)SIZE * SIZE * 3 * 4 / 1024, allowed = 200 * image_kib;
    harness_expectf(h, s1 == 0 && s2 == 0 && r2 - r1 < allowed,
                    "memory flat: peak RSS %ld KiB for %d images, %ld KiB for %d (growth %ld KiB, allowed %ld)", r1,
                    SMALL, r2, LARGE, r2 - r1, allowed);
}

static void test_resume(harness *h, const char *large)
{
    char ref[600], out[600], other[600];
    snprintf(ref, sizeof ref, "%s/ref.csv", root);
    snprintf(out, sizeof out, "%s/resumed.csv", root);
    int ok = run(h, "ref", ref, "2", large, 0, NULL) == 0;
    long points[3] = {0, 0, 0}, past = 0;
    for (int k = 0; ok && k < 3; k++) {
        points[k] = kill_after(h, out, large, past + 40, 40 + 30 * k);
        ok = points[k] > past;
        past = points[k];
    }
    harness_expectf(h, ok, "killed with -9 after %ld, %ld and %ld inputs done", points[0], points[1], points[2]);
    /* another --top cannot continue this partial output */
    int refused = run(h, "other", out, "3", large, 0, NULL);
    snprintf(other, sizeof other, "%s/other.err", root);
    char *err = textout_read_all(other, NULL);
    harness_expectf(h, refused == 1 && err && strstr(err, "another model, options or input list"),
                    "a partial output of other options is refused: %s", err ? err : "(no stderr)");
    free(err);
    int finished = run(h, "rerun", out, "2", large, 0, NULL);
    char *a = textout_read_all(ref, NULL), *b = textout_read_all(out, NULL), partial[700];
    snprintf(partial, sizeof partial, "%s.partial", out);
    harness_expectf(h, finished == 0 && a && b && strcmp(a, b) == 0 && lines(b) == LARGE + 1 &&
                           access(partial, F_OK) != 0,
                    "the resumed run's CSV is the uninterrupted run's (%d rows, one per image)", lines(b) - 1);
    free(a), free(b);
}

static void test_list(harness *h, const char *small)
{
    char list[600], out[600], dir_out[600];
    snprintf(list, sizeof list, "%s/list.txt", root);
    snprintf(out, sizeof out, "%s/list.csv", root);
    snprintf(dir_out, sizeof dir_out, "%s/small.csv", root);
    FILE *f = fopen(list, "w");
    for (int i = 0; f && i < SMALL; i++)
        fprintf(f, "%s/img%05d.png\n", small, i);
    if (f)
        fclose(f);
    int rc = run(h, "list", out, "2", list, 1, NULL);
    char *a = textout_read_all(out, NULL), *b = textout_read_all(dir_out, NULL);
    harness_expectf(h, rc == 0 && a && b && strcmp(a, b) == 0, "--list gives the rows of the directory");
    free(a), free(b);
}

/* Links that lead back (two to '.', one to the parent) are walked once:
 * each image gets one row, and the walk ends. */
static void test_link_loops(harness *h, const char *small)
{
    char dir[600], sub[700], ln[800], src[700], dst[800], out[700];
    snprintf(dir, sizeof dir, "%s/loops", root);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    mkdir(dir, 0755), mkdir(sub, 0755);
    for (int i = 0; i < 3; i++) {
        snprintf(src, sizeof src, "%s/img%05d.png", small, i);
        snprintf(dst, sizeof dst, "%s/img%05d.png", i < 2 ? dir : sub, i);
        if (link(src, dst) != 0)
            harness_fail(h, "link %s", dst);
    }
    int ok = 1;
    snprintf(ln, sizeof ln, "%s/a", dir), ok &= symlink(".", ln) == 0;
    snprintf(ln, sizeof ln, "%s/b", dir), ok &= symlink(".", ln) == 0;
    snprintf(ln, sizeof ln, "%s/up", sub), ok &= symlink("..", ln) == 0;
    snprintf(out, sizeof out, "%s/loops.csv", root);
    int rc = ok ? run(h, "loops", out, "2", dir, 0, NULL) : -1;
    char *text = textout_read_all(out, NULL);
    harness_expectf(h, rc == 0 && text && lines(text) == 4, "links back to '.' and '..': 3 images, 3 rows (got %d)",
                    text ? lines(text) - 1 : -1);
    free(text);
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    snprintf(root, sizeof root, "/tmp/tlcl_predict_XXXXXX");
    if (!mkdtemp(root))
        return harness_fail(&h, "mkdtemp"), harness_finish(&h);
    char small[600], large[600], model[600];
    snprintf(small, sizeof small, "%s/small", root);
    snprintf(large, sizeof large, "%s/large", root);
    snprintf(model, sizeof model, "%s/model.safetensors", root);
    write_images(small, SMALL);
    write_images(large, LARGE);
    if (testdata_checkpoint(&h, model, SIZE) == 0) {
        test_memory(&h, small, large);
        test_resume(&h, large);
        test_list(&h, small);
        test_link_loops(&h, small);
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (h.failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
    return harness_finish(&h);
}
