/* test_tune_pocl_only.c — `tlcl tune` (issue 17, item 3) driving the
 * binary on PoCL, in a cache folder of its own ($TLCL_TUNED_CACHE, else a
 * temporary one) that starts with the suite's compiled programs:
 * - tune B0 at 32 x 32, batch 2, with a budget of a few seconds: exit 0,
 *   every kernel group recorded and timed, no call slower with the stored
 *   values than with the defaults (the table's tuned <= default on every
 *   row), the file published where the cache keeps it and readable for
 *   this device;
 * - a second command (`tlcl bench`) says it uses that file;
 * - a damaged file and a foreign one (another driver's key): the bench
 *   warns naming the file and the reason, runs on the built-in defaults
 *   and still finishes;
 * - last, a valid file of made-up values unlike every family's default is
 *   left in the folder: gemm_pocl_tuned and conv_pocl_tuned
 *   (tests/CMakeLists.txt) run the GEMM and convolution kernel tests under
 *   it (their output must say they use it). */
#include "harness.h"
#include "testdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[1024], out[1 << 17];

/* `tlcl ARGS` on the device with this test's cache folder; output in out. */
static int tlcl_on(int dev, const char *args)
{
    char line[1200];
    snprintf(line, sizeof line, "%s --device=%d", args, dev);
    setenv("TLCL_CACHE_DIR", dir, 1); /* the commands' cache is the folder of this test */
    return testdata_command(TLCL_BINARY, dir, line, out, sizeof out);
}

/* A check on the last command; its output is shown when it fails. */
static void expect_out(harness *h, int ok, const char *what)
{
    harness_expect(h, ok, what);
    if (!ok)
        fprintf(stderr, "the output was:\n%s\n", out);
}

/* The cache folder, empty but for the suite's compiled programs (hard
 * links: the cache replaces files by rename, never writes into them). */
static int set_up(harness *h)
{
    const char *want = getenv("TLCL_TUNED_CACHE"), *suite = getenv("TLCL_CACHE_DIR");
    char cmd[3000];
    if (want && want[0])
        snprintf(dir, sizeof dir, "%s", want);
    else if (!mkdtemp(strcpy(dir, "/tmp/tlcl_tune_XXXXXX")))
        return harness_fail(h, "cannot make a temporary folder"), 1;
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    int ok = system(cmd) == 0;
    if (ok && suite && suite[0]) {
        snprintf(cmd, sizeof cmd, "cp -l '%s'/*.bin '%s'/ 2>/dev/null || cp '%s'/*.bin '%s'/ 2>/dev/null; true",
                 suite, dir, suite, dir);
        ok = system(cmd) == 0;
    }
    harness_expectf(h, ok, "cache folder %s", dir);
    return !ok;
}

/* The table's rows ("gemm  NN 8x80x240 +bn  0.020  0.020  1.000"): the
 * last three fields are default ms, tuned ms and their ratio. Every row
 * must have tuned <= default. Returns the number of rows. */
static int rows_never_slower(harness *h)
{
    int rows = 0, slower = 0;
    for (const char *l = out; *l;) { /* rows: "gemm_nn NN 8x80x240 +bn 0.020 0.020 1.000" */
        const char *end = strchr(l, '\n');
        size_t n = end ? (size_t)(end - l) : strlen(l);
        char row[512], *tok[32];
        int ntok = 0;
        snprintf(row, sizeof row, "%.*s", (int)(n < sizeof row ? n : sizeof row - 1), l);
        l += n + (end != NULL);
        for (char *t = strtok(row, " "); t && ntok < 32; t = strtok(NULL, " "))
            tok[ntok++] = t;
        double def, tuned, ratio;
        if (ntok < 5 || (strncmp(tok[0], "gemm_", 5) && strcmp(tok[0], "conv") && strcmp(tok[0], "depthwise")) ||
            sscanf(tok[ntok - 3], "%lf", &def) != 1 || sscanf(tok[ntok - 2], "%lf", &tuned) != 1 ||
            sscanf(tok[ntok - 1], "%lf", &ratio) != 1)
            continue;
        rows++;
        if (tuned > def)
            slower++, harness_fail(h, "slower with the stored values: %s %s: %.3f > %.3f ms", tok[0], tok[1], tuned,
                                   def);
    }
    harness_expectf(h, rows > 0 && slower == 0, "%d calls in the table, none slower with the stored values", rows);
    return rows;
}

static void test_tune(harness *h, int dev, char *path, size_t len)
{
    int rc = tlcl_on(dev, "tune --model=efficientnet-b0 --size=32 --batch=2 --budget=4");
    expect_out(h, rc == 0 && strstr(out, "tuning time:"), "tlcl tune exits 0 and reports its time");
    for (int g = 0; g < TLCL_TUNE_GROUPS; g++) {
        char name[40], what[80];
        snprintf(name, sizeof name, "\n%s: ", tlcl_tune_group_name(g));
        const char *at = strstr(out, name);
        int calls = 0, ok = at && sscanf(at + strlen(name), "%d calls", &calls) == 1 && calls > 0;
        snprintf(what, sizeof what, "%s recorded and timed (%d calls)", tlcl_tune_group_name(g), calls);
        expect_out(h, ok, what);
    }
    rows_never_slower(h);
    double seconds = 0;
    const char *t = strstr(out, "tuning time: ");
    expect_out(h, t && sscanf(t, "tuning time: %lf", &seconds) == 1 && seconds < 60,
               "the budget bounds the search (under a minute in all)");
    tlcl_tuning_path(dir, tlcl_cl_device(h->cl), path, len);
    expect_out(h, strstr(out, path) != NULL, "it names the file it stored");
    size_t n;
    char err[2000];
    unsigned char *text = tlcl_read_input(path, "tuning file", 65536, &n, err, sizeof err);
    tlcl_tuning read;
    harness_expectf(h, text && tlcl_tuning_parse((char *)text, tlcl_cl_device(h->cl), &read, err, sizeof err) == 0,
                    "the stored file is this device's and valid (%s)", text ? err : "unreadable");
    free(text);
}

static int bench(int dev)
{
    return tlcl_on(dev, "bench --size=32 --batch=2 --steps=1 --warmup=0 --no-peaks");
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f)
        fputs(text, f), fclose(f);
}

static void test_used_and_damaged(harness *h, int dev, const char *path)
{
    char want[1200];
    snprintf(want, sizeof want, "tuning: %s", path);
    int rc = bench(dev);
    expect_out(h, rc == 0 && strstr(out, want), "tlcl bench says 'tuning: FILE'");
    write_text(path, "tlcl-tune 1\nkey 00\ngemm tm=banana\n");
    rc = bench(dev);
    snprintf(want, sizeof want, "warning: tuning file %s is not usable: line 3:", path);
    expect_out(h, rc == 0 && strstr(out, want) && strstr(out, "tuning: built-in defaults for cpu-simd") &&
                      strstr(out, "img/s"),
               "a damaged file: a warning naming it and its line, the defaults, the bench finishes");
    tlcl_device_info other = *tlcl_cl_device(h->cl);
    snprintf(other.driver_version, sizeof other.driver_version, "an older driver");
    tlcl_tuning t = tlcl_tuning_default(&other);
    char err[4400];
    harness_expect(h, tlcl_tuning_write(path, &other, &t, NULL, err, sizeof err) == TLCL_OK, "a foreign file written");
    rc = bench(dev);
    expect_out(h, rc == 0 && strstr(out, "made for another device or driver") && strstr(out, "an older driver") &&
                      strstr(out, "tuning: built-in defaults"),
               "another driver's file: a warning naming its driver, the defaults");
}

/* Unlike the defaults of every family (tuning.c): other blocks per GEMM
 * class (NN and NT the same program, in other local sizes; TN one of its
 * own), local sizes and a depthwise strip of 3, which no default has. */
static void leave_made_up_tuning(harness *h, const char *path)
{
    tlcl_tuning t = {.gemm = {{4, 8, 1, 4, 1, 2}, {2, 4, 4, 8, 2, 2}, {4, 8, 1, 4, 2, 1}},
                     .conv = {2, 4, 2, 4, 2, 1}, .dw_strip = 3, .dw_wgrad_items = 37};
    char err[4400];
    harness_expect(h, tlcl_tuning_write(path, tlcl_cl_device(h->cl), &t, "made up by tune_pocl", err, sizeof err) ==
                          TLCL_OK, "made-up tuning left for gemm_pocl_tuned and conv_pocl_tuned");
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    int dev = tlcl_cl_device(h.cl)->index;
    char path[1100];
    if (set_up(&h) == 0) {
        test_tune(&h, dev, path, sizeof path);
        test_used_and_damaged(&h, dev, path);
        leave_made_up_tuning(&h, path);
    }
    return harness_finish(&h);
}
