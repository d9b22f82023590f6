/* test_bench_all_pocl_only.c — `tlcl bench --all` end to end on tiny shapes:
 * one result per device that `tlcl devices --json` lists (PoCL, and Rusticl
 * when the environment enables it), each with img/s > 0 and a warm start;
 * the per-layer FLOPs of the stem and the classifier equal the counts
 * computed here from their geometry; the PNG has a PNG signature and the
 * Markdown table a row per device. Bad command lines exit with status 2.
 * (Runs the tlcl binary; PoCL must be present, as for every device test.) */
#include "harness.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* tlcl bench --arch=efficientnet-b0 --size=32 --batch=2: the stem is a 3x3
 * stride-2 convolution 3 -> 32 channels on 32x32 (TF 'same': 16x16 out),
 * the classifier a dense layer 1280 -> 10 (tlcl bench's class count). */
enum { BATCH = 2, SIZE = 32, STEM_OUT = 16, STEM_COUT = 32, STEM_CIN = 3, TOP = 1280, CLASSES = 10 };

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *grown = realloc(buf, cap *= 2);
            if (!grown)
                free(buf);
            buf = grown;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

static cJSON *json_file(const char *path)
{
    char *text = slurp(path);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

/* Runs a shell command line; its exit status (-1 when it did not exit). */
static int run(const char *cmd)
{
    fflush(stdout);
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const cJSON *layer(const cJSON *dev, const char *name)
{
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(dev, "layers"))
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(l, "name")), name) == 0)
            return l;
    return NULL;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int same(double a, double b) { return fabs(a - b) <= 1e-9 * fabs(b); }

/* The work of two layers, counted here from their geometry. */
static void check_flops(harness *h, const cJSON *dev)
{
    double stem = 2.0 * BATCH * STEM_OUT * STEM_OUT * STEM_COUT * STEM_CIN * 3 * 3;
    double dense = 2.0 * BATCH * TOP * CLASSES;
    const cJSON *s = layer(dev, "stem_conv"), *p = layer(dev, "predictions");
    harness_expect(h, s && same(num(s, "fwd_flops"), stem), "stem forward FLOPs = 2*N*OH*OW*Cout*Cin*3*3");
    /* the pixels' gradient is not computed unless asked (want_input_grad): the weight gradient alone */
    harness_expect(h, s && same(num(s, "bwd_flops"), stem), "stem backward FLOPs = the weight gradient's");
    harness_expect(h, p && same(num(p, "fwd_flops"), dense), "classifier forward FLOPs = 2*N*1280*10");
    double total = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(dev, "layers"))
        total += num(l, "fwd_flops");
    /* B0 at 224 is 0.39 G multiply-adds per image; at 32x32 about 1/49 of it */
    harness_expect(h, total > 2 * stem && total < BATCH * 0.78e9 / 30, "forward FLOPs total is B0's at 32x32");
}

/* The per-type sums (bench_types.c) cover every layer once, and the stem's
 * row is the stem layer's own work over its own time against the peaks. */
static void check_layer_types(harness *h, const cJSON *dev)
{
    const cJSON *t, *stem_type = NULL, *s = layer(dev, "stem_conv");
    const cJSON *peaks = cJSON_GetObjectItemCaseSensitive(dev, "peaks");
    int counted = 0;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(dev, "layer_types")) {
        counted += (int)num(t, "layers");
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "type")), "stem conv") == 0)
            stem_type = t;
    }
    harness_expect(h, counted == cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(dev, "layers")),
                   "layer_types count every layer once");
    double ms = num(s, "fwd_ms") + num(s, "bwd_ms");
    double gflops = (num(s, "fwd_flops") + num(s, "bwd_flops")) / (ms * 1e-3) * 1e-9;
    harness_expect(h, stem_type && num(stem_type, "layers") == 1 && same(num(stem_type, "gflops"), gflops) &&
                          same(num(stem_type, "pct_of_gemm_peak"), 100 * gflops / num(peaks, "gemm_gflops")),
                   "layer_types: the stem's GFLOP/s and share of the GEMM peak from its layer");
}

static void check_device(harness *h, const cJSON *dev, const cJSON *listed)
{
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(listed, "name"));
    const char *got = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(dev, "device"));
    printf("     %s: %.2f img/s\n", got ? got : "?", num(dev, "images_per_s"));
    harness_expect(h, name && got && strcmp(name, got) == 0 && num(dev, "index") == num(listed, "index"),
                   "results in the order of `tlcl devices`");
    harness_expect(h, !cJSON_GetObjectItemCaseSensitive(dev, "error"), "the device ran without error");
    harness_expect(h, num(dev, "images_per_s") > 0 && num(dev, "ms_per_step") > 0, "img/s > 0");
    const cJSON *warm = cJSON_GetObjectItemCaseSensitive(dev, "warm_start");
    harness_expect(h, num(warm, "total_s") > 0, "a warm start was measured");
    const cJSON *peaks = cJSON_GetObjectItemCaseSensitive(dev, "peaks");
    harness_expect(h, num(peaks, "gemm_gflops") > 0 && num(peaks, "copy_gbps") > 0, "GEMM and copy peaks");
    harness_expect(h, num(dev, "peak_rss_mib") > 0, "peak RSS");
    check_flops(h, dev);
    check_layer_types(h, dev);
}

static void check_outputs(harness *h, const char *out, const cJSON *listed)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/bench.json", out);
    cJSON *j = json_file(path);
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(j, "devices");
    harness_expect(h, j != NULL, "bench.json parses");
    harness_expect(h, cJSON_GetArraySize(devs) == cJSON_GetArraySize(listed) && cJSON_GetArraySize(listed) > 0,
                   "one result per device of `tlcl devices --json`");
    for (int i = 0; i < cJSON_GetArraySize(devs) && i < cJSON_GetArraySize(listed); i++)
        check_device(h, cJSON_GetArrayItem(devs, i), cJSON_GetArrayItem(listed, i));
    cJSON_Delete(j);

    snprintf(path, sizeof path, "%s/bench.png", out);
    char *png = slurp(path);
    harness_expect(h, png && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0, "bench.png is a PNG");
    free(png);

    snprintf(path, sizeof path, "%s/bench.md", out);
    char *md = slurp(path);
    int rows = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, listed) {
        char row[300];
        snprintf(row, sizeof row, "\n| %s |", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "name")));
        rows += md && strstr(md, row) != NULL;
    }
    harness_expect(h, rows == cJSON_GetArraySize(listed), "bench.md has a row per device");
    harness_expect(h, md && strstr(md, "By layer type") && strstr(md, " | stem conv | 1 |"),
                   "bench.md has the per-layer-type table");
    free(md);
}

static void check_bad_input(harness *h, const char *dir)
{
    static const struct { const char *args, *what; } bad[] = {
        {"--frobnicate", "an unknown option"},
        {"--all --device=0", "--all with --device"},
        {"--device=999 --size=32 --batch=1 --steps=1", "a device index out of range"},
        {"--mode=sideways", "an unknown mode"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char cmd[2000], what[200];
        snprintf(cmd, sizeof cmd, "'%s' bench %s > '%s/bad.out' 2>&1", TLCL_BINARY, bad[i].args, dir);
        snprintf(what, sizeof what, "%s exits with status 2", bad[i].what);
        harness_expect(h, run(cmd) == 2, what);
    }
}

int main(void)
{
    harness h;
    harness_init(&h, 1); /* fails when PoCL is missing */
    char dir[] = "/tmp/tlcl-bench-test-XXXXXX";
    if (!mkdtemp(dir))
        return harness_fail(&h, "mkdtemp"), harness_finish(&h);
    char cmd[2000], path[1200];
    snprintf(cmd, sizeof cmd, "'%s' devices --json > '%s/devices.json'", TLCL_BINARY, dir);
    snprintf(path, sizeof path, "%s/devices.json", dir);
    harness_expect(&h, run(cmd) == 0, "tlcl devices --json");
    cJSON *listed = json_file(path);
    snprintf(cmd, sizeof cmd,
             "'%s' bench --all --arch=efficientnet-b0 --size=%d --batch=%d --steps=1 --warmup=1 --out='%s/out' "
             "> '%s/bench.out' 2>&1",
             TLCL_BINARY, SIZE, BATCH, dir, dir);
    int rc = run(cmd);
    harness_expect(&h, rc == 0, "tlcl bench --all succeeds");
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "tail -30 '%s/bench.out'", dir);
        run(cmd);
    }
    snprintf(path, sizeof path, "%s/out", dir);
    check_outputs(&h, path, listed);
    cJSON_Delete(listed);
    check_bad_input(&h, dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (h.failed == 0 && run(cmd) != 0)
        printf("note: could not remove %s\n", dir);
    return harness_finish(&h);
}
