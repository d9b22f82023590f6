/* test_host_checkpoint.c — opening checkpoints: the format_version of the
 * metadata is checked (a newer, unknown or missing version is refused with
 * the file, the version found and the one expected), a checkpoint tlcl
 * writes opens and loads, and the best model `tlcl train` evaluates on the
 * test set is loaded or the failure reported (never ignored). Host only: a
 * model that is built but not allocated on a device reads and checks every
 * tensor without one. */
#include "config.h"
#include "harness.h"
#include "model.h"
#include "run_plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

/* A safetensors file with this metadata object (JSON text) and no tensors. */
static const char *write_header(const char *name, const char *meta)
{
    static char path[512];
    char header[1024];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    int n = snprintf(header, sizeof header, "{\"__metadata__\":%s}", meta);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((unsigned long long)n >> (8 * i));
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(len8, 1, 8, f) != 8 || fwrite(header, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        exit(1);
    }
    fclose(f);
    return path;
}

/* Opens `meta` and expects a refusal whose message holds the path and each want. */
static void expect_refused(harness *h, const char *what, const char *name, const char *meta, const char *want1,
                           const char *want2)
{
    const char *path = write_header(name, meta);
    tlcl_checkpoint *c = NULL;
    char err[1024] = "";
    tlcl_status s = tlcl_checkpoint_open(&c, path, err, sizeof err);
    harness_expectf(h, s == TLCL_ERR_FORMAT && !c && strstr(err, path) && strstr(err, want1) && (!want2 || strstr(err, want2)),
          "%s -> %s", what, err);
    tlcl_checkpoint_close(c);
}

static void test_format_version(harness *h)
{
    const char *path = write_header("v1.safetensors", "{\"format\":\"tlcl-checkpoint\",\"format_version\":\"1\"}");
    tlcl_checkpoint *c = NULL;
    char err[1024] = "";
    harness_expectf(h, tlcl_checkpoint_open(&c, path, err, sizeof err) == TLCL_OK && c, "format_version 1 opens %s", err);
    tlcl_checkpoint_close(c);
    expect_refused(h, "newer version", "v2.safetensors",
                   "{\"format\":\"tlcl-checkpoint\",\"format_version\":\"2\",\"tlcl_version\":\"9.0.0\"}",
                   "format_version 2 (written by tlcl 9.0.0)", "reads format_version 1: read it with a newer tlcl");
    expect_refused(h, "unknown version", "vx.safetensors", "{\"format\":\"tlcl-checkpoint\",\"format_version\":\"1.5b\"}",
                   "unknown checkpoint format_version '1.5b'", "reads format_version 1");
    expect_refused(h, "version zero", "v0.safetensors", "{\"format\":\"tlcl-checkpoint\",\"format_version\":\"0\"}",
                   "unknown checkpoint format_version '0'", "reads format_version 1");
    expect_refused(h, "version not a string", "vn.safetensors", "{\"format\":\"tlcl-checkpoint\",\"format_version\":1}",
                   "unknown checkpoint format_version '1'", "reads format_version 1");
    expect_refused(h, "missing version", "vm.safetensors", "{\"format\":\"tlcl-checkpoint\"}",
                   "no format_version", "expected format_version 1");
    expect_refused(h, "no metadata at all", "nometa.safetensors", "{}", "no format_version",
                   "expected format_version 1");
}

/* The metadata a model is rebuilt from is checked before it is used: a
 * class_names list shorter than the classes (tlcl test then read past it),
 * not strings, and non-integer sizes are refused naming the file. */
static void test_options_metadata(harness *h)
{
    static const struct { const char *what, *meta, *want; } cases[] = {
        {"class_names shorter than classes", "\"classes\":\"3\",\"class_names\":\"[\\\"a\\\",\\\"b\\\"]\"",
         "class_names has 2 names but the classifier has 3 classes"},
        {"class_names not strings", "\"classes\":\"2\",\"class_names\":\"[1,2]\"", "class_names is not a list of strings"},
        {"classes not an integer", "\"classes\":\"3x\"", "metadata classes is '3x'"},
        {"negative classes", "\"classes\":\"-1\"", "metadata classes is '-1'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char meta[512], name[32];
        snprintf(meta, sizeof meta,
                 "{\"format\":\"tlcl-checkpoint\",\"format_version\":\"1\",\"architecture\":\"efficientnet-b0\","
                 "\"input_size\":\"32\",\"include_top\":\"1\",%s}",
                 cases[i].meta);
        snprintf(name, sizeof name, "meta%zu.safetensors", i);
        const char *path = write_header(name, meta);
        tlcl_checkpoint *c = NULL;
        tlcl_model_options o;
        char err[1024] = "";
        tlcl_status s = tlcl_checkpoint_open(&c, path, err, sizeof err);
        if (s == TLCL_OK)
            s = tlcl_checkpoint_options(c, &o, err, sizeof err);
        harness_expectf(h, s == TLCL_ERR_FORMAT && strstr(err, path) && strstr(err, cases[i].want), "%s -> %s",
                        cases[i].what, err);
        tlcl_checkpoint_close(c);
    }
}

/* Crafted tensor tables (issue 13, defect 14): a file of `data` zero bytes
 * after a header of these tensors; each must be refused naming the file and
 * the reason, and the well-formed one must open. */
static void test_tensor_table(harness *h)
{
#define META "\"__metadata__\":{\"format\":\"tlcl-checkpoint\",\"format_version\":\"1\"}"
#define T(name, dtype, shape, b, e) "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" b "," e "]}"
    static const struct { const char *what, *tensors; int data; const char *want; } cases[] = {
        {"well formed", T("a", "F32", "[2]", "0", "8") "," T("b", "F16", "[1,2]", "8", "12"), 12, NULL},
        {"fractional offset", T("a", "F32", "[2]", "0.5", "8.5"), 9, "data_offsets that are not two whole numbers"},
        {"overlapping offsets", T("a", "F32", "[2]", "0", "8") "," T("b", "F32", "[1]", "4", "8"), 8,
         "tensor 'b' starts at byte 4 of the data, expected 8"},
        {"gap between tensors", T("a", "F32", "[1]", "0", "4") "," T("b", "F32", "[1]", "8", "12"), 12,
         "tensor 'b' starts at byte 8 of the data, expected 4"},
        {"shape given as an object", "\"a\":{\"dtype\":\"F32\",\"shape\":{\"x\":2},\"data_offsets\":[0,8]}", 8,
         "shape that is not a list"},
        {"fractional dimension", T("a", "F32", "[1.5]", "0", "6"), 6, "dimension that is not a whole number"},
        {"size not shape x dtype", T("a", "F32", "[3]", "0", "8"), 8, "not its shape times its dtype's size"},
        {"unknown dtype", T("a", "F17", "[2]", "0", "8"), 8, "unknown dtype"},
        {"duplicate name", T("a", "F32", "[1]", "0", "4") "," T("a", "F32", "[1]", "4", "8"), 8,
         "tensor 'a' appears twice"},
        {"past the end of the file", T("a", "F32", "[4]", "0", "16"), 8, "is truncated"},
        {"data left over", T("a", "F32", "[1]", "0", "4"), 8, "is truncated or damaged"},
        {"extra key", "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}", 4,
         "exactly dtype, shape and data_offsets"},
        {"tensor not an object", "\"a\":[1,2]", 0, "exactly dtype, shape and data_offsets"},
        {"negative offset", T("a", "F32", "[1]", "-4", "0"), 0, "data_offsets that are not two whole numbers"},
    };
#undef T
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char header[1024], path[512];
        snprintf(path, sizeof path, "%s/table%zu.safetensors", tmpdir, i);
        int n = snprintf(header, sizeof header, "{" META ",%s}", cases[i].tensors);
        unsigned char len8[8] = {0}, zeros[64] = {0};
        for (int b = 0; b < 8; b++)
            len8[b] = (unsigned char)((unsigned long long)n >> (8 * b));
        FILE *f = fopen(path, "wb");
        int written = f && fwrite(len8, 1, 8, f) == 8 && fwrite(header, 1, (size_t)n, f) == (size_t)n &&
                      fwrite(zeros, 1, (size_t)cases[i].data, f) == (size_t)cases[i].data;
        if (f)
            fclose(f);
        tlcl_checkpoint *c = NULL;
        char err[1024] = "";
        tlcl_status s = tlcl_checkpoint_open(&c, path, err, sizeof err);
        if (!cases[i].want)
            harness_expectf(h, written && s == TLCL_OK && c, "%s opens: %s", cases[i].what, err);
        else
            harness_expectf(h, written && s == TLCL_ERR_FORMAT && !c && strstr(err, path) && strstr(err, cases[i].want),
                            "%s -> %s", cases[i].what, err);
        tlcl_checkpoint_close(c);
    }
#undef META
}

/* A host model (built, laid out, not on a device) of `classes` classes. */
static int host_model(harness *h, tlcl_model *m, int classes)
{
    tlcl_model_options o = tlcl_model_options_default();
    o.arch = "efficientnet-b0";
    o.classes = classes;
    o.size = 32;
    char err[1024] = "";
    if (tlcl_model_build(m, &o, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "building a host model: %s", err);
        return -1;
    }
    tlcl_params_layout(&m->params, 1); /* the flat host layout, as `tlcl import` uses */
    return 0;
}

/* Saves a checkpoint of a host model of `classes` classes to tmpdir/name. */
static const char *save_model(harness *h, const char *name, int classes)
{
    static char path[512];
    tlcl_model m;
    char err[1024] = "";
    if (host_model(h, &m, classes))
        return NULL;
    float *host = calloc(m.params.total, sizeof *host);
    for (size_t i = 0; host && i < m.params.total; i++)
        host[i] = (float)(i % 97) * 0.01f;
    const char *names[] = {"a", "b", "c", "d"};
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    tlcl_status s = host ? tlcl_model_save_host(&m, host, path, names, classes, err, sizeof err) : TLCL_ERR_OOM;
    free(host);
    tlcl_model_free(&m);
    if (s != TLCL_OK)
        harness_fail(h, "saving %s: %s", path, err);
    return s == TLCL_OK ? path : NULL;
}

/* What tlcl writes, it opens and loads (values and shapes checked). */
static void test_round_trip(harness *h)
{
    tlcl_model m;
    char err[1024] = "";
    const char *path = save_model(h, "saved.safetensors", 3);
    if (!path || host_model(h, &m, 3))
        return;
    tlcl_status s = TLCL_OK;
    tlcl_checkpoint *c = NULL;
    if (s == TLCL_OK)
        s = tlcl_checkpoint_open(&c, path, err, sizeof err);
    if (s == TLCL_OK)
        s = tlcl_model_load(&m, c, err, sizeof err);
    harness_expectf(h, s == TLCL_OK && c && !strcmp(tlcl_checkpoint_meta(c, "format_version"), "1"),
          "a checkpoint tlcl writes carries format_version 1, opens and loads %s", err);
    tlcl_checkpoint_close(c);
    tlcl_model_free(&m);
}

/* tlcl import writes no class names: such a checkpoint opens and builds
 * (predict then names classes by index); a list of the wrong length is
 * still refused above. */
static void test_nameless(harness *h)
{
    tlcl_model m;
    char err[1024] = "", path[512];
    if (host_model(h, &m, 3))
        return;
    float *host = calloc(m.params.total, sizeof *host);
    snprintf(path, sizeof path, "%s/nameless.safetensors", tmpdir);
    tlcl_status s = host ? tlcl_model_save_host(&m, host, path, NULL, 0, err, sizeof err) : TLCL_ERR_OOM;
    tlcl_checkpoint *c = NULL;
    tlcl_model_options o;
    if (s == TLCL_OK)
        s = tlcl_checkpoint_open(&c, path, err, sizeof err);
    if (s == TLCL_OK)
        s = tlcl_checkpoint_options(c, &o, err, sizeof err);
    harness_expectf(h, s == TLCL_OK && o.classes == 3, "a checkpoint without class names (tlcl import's) opens %s",
                    err);
    tlcl_checkpoint_close(c);
    free(host);
    tlcl_model_free(&m);
}

/* A header is JSON: a class name that is not UTF-8 is refused, no file made. */
static void test_non_utf8_name(harness *h)
{
    tlcl_model m;
    char err[1024] = "", path[512];
    if (host_model(h, &m, 3))
        return;
    float *host = calloc(m.params.total, sizeof *host);
    const char *names[] = {"a", "caf\xe9", "c"};
    snprintf(path, sizeof path, "%s/latin1.safetensors", tmpdir);
    tlcl_status s = host ? tlcl_model_save_host(&m, host, path, names, 3, err, sizeof err) : TLCL_ERR_OOM;
    printf("     error: %s\n", err);
    harness_expect(h, s == TLCL_ERR_ARG && strstr(err, "class name 1 'caf\\xE9' is not valid UTF-8") &&
                          access(path, F_OK) != 0,
                   "a class name that is not UTF-8 is refused before any file is written");
    free(host);
    tlcl_model_free(&m);
}

static void copy_truncated(const char *from, const char *to, long drop)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    fseek(in, 0, SEEK_END);
    long n = ftell(in) - drop;
    fseek(in, 0, SEEK_SET);
    for (long i = 0; i < n; i++)
        fputc(fgetc(in), out);
    fclose(in), fclose(out);
}

/* The best model before the test evaluation of `tlcl train`: loaded when it
 * is there, the weights in hand when it is not, an error naming the file
 * when it is there and does not load. */
static void test_load_best(harness *h)
{
    static tlcl_config cfg;
    char err[4096] = "", trunc[600];
    tlcl_model m;
    char good[600], four[600];
    tlcl_config_defaults(&cfg, err, sizeof err);
    const char *saved = save_model(h, "best.safetensors", 3);
    if (!saved || host_model(h, &m, 3))
        return;
    snprintf(good, sizeof good, "%s", saved);
    snprintf(cfg.train.artefacts.best_model, sizeof cfg.train.artefacts.best_model, "%s", good);
    cfg.callbacks.model_checkpoint.enabled = 1;
    int loaded = -1;
    tlcl_status s = tlcl_plan_load_best(&cfg, NULL, &m, &loaded, err, sizeof err);
    harness_expectf(h, s == TLCL_OK && loaded == 1, "the best model is loaded for the test evaluation %s", err);
    cfg.callbacks.model_checkpoint.enabled = 0;
    s = tlcl_plan_load_best(&cfg, NULL, &m, &loaded, err, sizeof err);
    harness_expectf(h, s == TLCL_OK && loaded == 0, "no model_checkpoint: the weights in hand");
    cfg.callbacks.model_checkpoint.enabled = 1;
    snprintf(cfg.train.artefacts.best_model, sizeof cfg.train.artefacts.best_model, "%s/absent.safetensors", tmpdir);
    s = tlcl_plan_load_best(&cfg, NULL, &m, &loaded, err, sizeof err);
    harness_expectf(h, s == TLCL_OK && loaded == 0, "no best model file: the weights in hand");

    saved = save_model(h, "best4.safetensors", 4);
    snprintf(four, sizeof four, "%s", saved ? saved : "(not saved)");
    snprintf(cfg.train.artefacts.best_model, sizeof cfg.train.artefacts.best_model, "%s", four);
    err[0] = 0;
    s = tlcl_plan_load_best(&cfg, NULL, &m, &loaded, err, sizeof err);
    harness_expectf(h, s != TLCL_OK && strstr(err, four) && strstr(err, "test evaluation") && strstr(err, "predictions/"),
          "a best model that does not fit is an error naming the file and the tensor: %s", err);
    snprintf(trunc, sizeof trunc, "%s/truncated.safetensors", tmpdir);
    copy_truncated(good, trunc, 4096);
    snprintf(cfg.train.artefacts.best_model, sizeof cfg.train.artefacts.best_model, "%s", trunc);
    err[0] = 0;
    s = tlcl_plan_load_best(&cfg, NULL, &m, &loaded, err, sizeof err);
    harness_expectf(h, s != TLCL_OK && strstr(err, trunc) && strstr(err, "is truncated"),
          "a truncated best model is an error naming the file: %s", err);
    const char *newer = write_header("newer.safetensors", "{\"format\":\"tlcl-checkpoint\",\"format_version\":\"7\"}");
    snprintf(cfg.train.artefacts.best_model, sizeof cfg.train.artefacts.best_model, "%s", newer);
    err[0] = 0;
    s = tlcl_plan_load_best(&cfg, NULL, &m, &loaded, err, sizeof err);
    harness_expectf(h, s != TLCL_OK && strstr(err, newer) && strstr(err, "format_version 7"),
          "a best model of a newer format is an error naming the file and the version: %s", err);
    tlcl_model_free(&m);
}

/* The checksum of the tensor data (issue 13, defect 5): what tlcl writes is
 * FNV-1a 64 of the bytes after the header (computed here independently) and
 * verifies; one flipped bit in the data is refused, naming the file. */
static void test_checksum(harness *h)
{
    const char *saved = save_model(h, "checksum.safetensors", 3);
    if (!saved)
        return;
    char path[512], err[1024] = "";
    snprintf(path, sizeof path, "%s", saved);
    FILE *f = fopen(path, "r+b");
    unsigned char len8[8];
    uint64_t hlen = 0, fnv = 0xcbf29ce484222325ULL;
    if (!f || fread(len8, 1, 8, f) != 8) {
        harness_fail(h, "reading %s", path);
        return;
    }
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)len8[i] << (8 * i);
    fseek(f, (long)(8 + hlen), SEEK_SET);
    long data_at = ftell(f);
    for (int c; (c = fgetc(f)) != EOF;)
        fnv = (fnv ^ (unsigned char)c) * 0x100000001b3ULL;
    tlcl_checkpoint *c = NULL;
    char want[17];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)fnv);
    tlcl_status s = tlcl_checkpoint_open(&c, path, err, sizeof err);
    const char *stored = s == TLCL_OK ? tlcl_checkpoint_meta(c, "data_fnv1a64") : NULL;
    harness_expectf(h, stored && !strcmp(stored, want), "the checksum is FNV-1a 64 of the data: %s, computed %s",
                    stored ? stored : "(none)", want);
    if (s == TLCL_OK)
        s = tlcl_checkpoint_verify(c, err, sizeof err);
    harness_expectf(h, s == TLCL_OK, "a checkpoint tlcl writes verifies: %s", err);
    tlcl_checkpoint_close(c);
    fseek(f, data_at + 1000, SEEK_SET); /* one bit of a tensor */
    int byte = fgetc(f);
    fseek(f, data_at + 1000, SEEK_SET);
    fputc(byte ^ 0x10, f);
    fclose(f);
    s = tlcl_checkpoint_open(&c, path, err, sizeof err);
    if (s == TLCL_OK)
        s = tlcl_checkpoint_verify(c, err, sizeof err);
    harness_expectf(h, s == TLCL_ERR_FORMAT && strstr(err, path) && strstr(err, "checksum"),
                    "a flipped bit is refused naming the file: %s", err);
    tlcl_checkpoint_close(c);
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tlcl_checkpoint_test_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_format_version(&h);
    test_options_metadata(&h);
    test_tensor_table(&h);
    test_round_trip(&h);
    test_non_utf8_name(&h);
    test_nameless(&h);
    test_load_best(&h);
    test_checksum(&h);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (h.failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return harness_finish(&h);
}
