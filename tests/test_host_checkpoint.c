/* test_host_checkpoint.c — opening checkpoints: the format_version of the
 * metadata is checked (a newer, unknown or missing version is refused with
 * the file, the version found and the one expected), and a checkpoint tlcl
 * writes opens and loads. Host only: a model that is built but not
 * allocated on a device reads and checks every tensor without one. */
#include "harness.h"
#include "model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

static void check(harness *h, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check(harness *h, int ok, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ok) {
        h->passed++;
        printf("ok   %s\n", msg);
    } else {
        harness_fail(h, "%s", msg);
    }
}

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
    check(h, s == TLCL_ERR_FORMAT && !c && strstr(err, path) && strstr(err, want1) && (!want2 || strstr(err, want2)),
          "%s -> %s", what, err);
    tlcl_checkpoint_close(c);
}

static void test_format_version(harness *h)
{
    const char *path = write_header("v1.safetensors", "{\"format\":\"tlcl-checkpoint\",\"format_version\":\"1\"}");
    tlcl_checkpoint *c = NULL;
    char err[1024] = "";
    check(h, tlcl_checkpoint_open(&c, path, err, sizeof err) == TLCL_OK && c, "format_version 1 opens %s", err);
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

/* What tlcl writes, it opens and loads (values and shapes checked). */
static void test_round_trip(harness *h)
{
    tlcl_model m;
    tlcl_model_options o = tlcl_model_options_default();
    o.arch = "efficientnet-b0";
    o.classes = 3;
    o.size = 32;
    char err[1024] = "", path[512];
    if (tlcl_model_build(&m, &o, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "building a host model: %s", err);
        return;
    }
    tlcl_params_layout(&m.params, 1); /* the flat host layout, as `tlcl import` uses */
    float *host = calloc(m.params.total, sizeof *host);
    for (size_t i = 0; host && i < m.params.total; i++)
        host[i] = (float)(i % 97) * 0.01f;
    const char *names[] = {"a", "b", "c"};
    snprintf(path, sizeof path, "%s/saved.safetensors", tmpdir);
    tlcl_status s = host ? tlcl_model_save_host(&m, host, path, names, 3, err, sizeof err) : TLCL_ERR_OOM;
    tlcl_checkpoint *c = NULL;
    if (s == TLCL_OK)
        s = tlcl_checkpoint_open(&c, path, err, sizeof err);
    if (s == TLCL_OK)
        s = tlcl_model_load(&m, c, err, sizeof err);
    check(h, s == TLCL_OK && c && !strcmp(tlcl_checkpoint_meta(c, "format_version"), "1"),
          "a checkpoint tlcl writes carries format_version 1, opens and loads %s", err);
    tlcl_checkpoint_close(c);
    free(host);
    tlcl_model_free(&m);
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
    test_round_trip(&h);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (h.failed == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return harness_finish(&h);
}
