/* testdata.c — see testdata.h. */
#include "testdata.h"
#include "image_write.h"
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <sys/stat.h>

const char *const testdata_class_names[TESTDATA_CLASSES] = {"circles", "stripes", "squares"};

/* Pixel value of image i of class k at (x, y). */
static int shape(int k, int i, int salt, int x, int y)
{
    int dx = x - TESTDATA_SIDE / 2, dy = y - TESTDATA_SIDE / 2;
    if (k == 0)
        return (dx * dx + dy * dy) % (40 + i + salt) < 20 ? 230 : 30;
    if (k == 1)
        return ((x + i + salt) / 3) % 2 ? 220 : 40;
    return (abs(dx) < 6 + i % 4 && abs(dy) < 6 + salt % 3) ? 200 : 50;
}

void testdata_shapes(const char *dir, int per_class, int salt)
{
    enum { S = TESTDATA_SIDE };
    unsigned char px[S * S * 3];
    char cls[1024], path[1200];
    mkdir(dir, 0755);
    for (int k = 0; k < TESTDATA_CLASSES; k++) {
        snprintf(cls, sizeof cls, "%s/%s", dir, testdata_class_names[k]);
        mkdir(cls, 0755);
        for (int i = 0; i < per_class; i++) {
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    for (int c = 0; c < 3; c++)
                        px[(y * S + x) * 3 + c] = (unsigned char)(shape(k, i, salt, x, y) + 7 * c + i);
            snprintf(path, sizeof path, "%s/img%02d.png", cls, i);
            image_write_rgb(path, S, S, px, NULL, 0);
        }
    }
}

int testdata_checkpoint(harness *h, const char *path, int size)
{
    tlcl_model m;
    tlcl_model_options o = tlcl_model_options_default();
    o.arch = "efficientnet-b0";
    o.size = size;
    o.classes = TESTDATA_CLASSES;
    char err[1024];
    int bad = tlcl_model_build(&m, &o, err, sizeof err) != TLCL_OK;
    if (!bad) {
        bad = harness_status(h, tlcl_model_alloc(&m, h->eng, 3), "alloc") ||
              tlcl_model_save(&m, path, testdata_class_names, TESTDATA_CLASSES, err, sizeof err) != TLCL_OK;
        tlcl_model_free(&m);
    }
    if (bad)
        harness_fail(h, "saving the checkpoint %s: %s", path, err);
    return bad;
}

int testdata_counts_are(const char *text, const char *name, int train, int val, int test)
{
    char key[64];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *line = strstr(text, key);
    int a = -1, b = -1, c = -1;
    return line && sscanf(line + strlen(key), "%d %d %d", &a, &b, &c) == 3 && a == train && b == val && c == test;
}

int testdata_command(const char *binary, const char *dir, const char *args, char *out, size_t len)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", dir, binary, args);
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, len - 1, p) : 0;
    out[n] = '\0';
    int st = p ? pclose(p) : -1;
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

tlcl_arch testdata_keras_fixture_arch(const char *name)
{
    tlcl_arch a = *tlcl_arch_find(name);
    snprintf(a.name, sizeof a.name, "%s-keras-fixture", name);
    a.width = 0.5, a.depth = 0.5;
    a.default_size = 64;
    a.dropout = 0.0f, a.drop_connect = 0.0f;
    return a;
}

/* One image of class k: bit 0 = stripe orientation, bit 1 = colour. */
static void stripes_image(harness *h, float *img, int size, int k)
{
    float period = harness_uniform(h, 3.0f, 7.0f), phase = harness_uniform(h, 0.0f, 6.2832f);
    int vertical = k & 1, colour = (k >> 1) ? 2 : 0;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            float t = (vertical ? x : y) * 6.2832f / period + phase;
            float stripe = 0.5f + 0.5f * sinf(t);
            for (int c = 0; c < 3; c++) {
                float base = c == colour ? 150.0f : 60.0f;
                float v = base + 80.0f * stripe + harness_uniform(h, -25.0f, 25.0f);
                img[(y * size + x) * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
            }
        }
}

void testdata_stripes(harness *h, float *imgs, int *labels, int n, int size, int classes)
{
    for (int i = 0; i < n; i++) {
        labels[i] = (int)harness_uniform(h, 0, (float)classes - 1e-3f);
        stripes_image(h, imgs + (size_t)i * size * size * 3, size, labels[i]);
    }
}

const tlcl_arch testdata_tiny_arch = {
    .name = "tiny-mbconv", .family = TLCL_FAMILY_V2, .width = 1.0, .depth = 1.0, .default_size = 32,
    .dropout = 0.1f, .drop_connect = 0.2f, .bn_momentum = 0.9f, .bn_epsilon = 1e-3f, .act = TLCL_ACT_SWISH,
    .stem_filters = 8, .top_filters = 16, .nstages = 2,
    .stages = {{3, 1, 4, 8, 8, 1, 0.25f, 0}, {3, 1, 4, 8, 8, 1, 0.25f, 0}},
    .padding = TLCL_PAD_TF_SAME, .preprocess = TLCL_PRE_IMAGENET};

FILE *testdata_config_file(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/run.yaml", dir);
    return fopen(path, "w");
}
