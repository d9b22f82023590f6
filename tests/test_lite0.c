/* test_lite0.c — EfficientNet-Lite0 with its ImageNet weights against an
 * independent PyTorch implementation: loads the converted checkpoint
 * ($TLCL_LITE0_CHECKPOINT, made by tools/fetch_lite0.sh), regenerates the
 * images of tests/fixtures/lite0_logits.bin ($TLCL_LITE0_FIXTURE, made by
 * tools/make_lite0_fixture.py) from their integer formula, and checks the
 * inference logits within 1e-3 and the same top-5 per image. A missing
 * checkpoint fails: the weights are part of the product. */
#include "harness.h"
#include "run.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SIZE = 224, MAX_IMAGES = 8, TOP = 5 };
#define TOL 1e-3

/* Keep in sync with pixel() in tools/make_lite0_fixture.py. */
static int pixel(int img, int y, int x, int c)
{
    if (img == 0)
        return (x * 3 + y * 5 + (x * y) % 7 + c * 50) % 256;
    if (img == 1)
        return (((x / 16 + y / 16) % 2) * 160 + (x * y) % 61 + c * 30) % 256;
    /* Python's // floors; the operands here are never negative */
    return (((x - 112) * (x - 112) + (y - 100) * (y - 100)) / 37 + c * 85) % 256;
}

typedef struct fixture {
    int images, classes, size;
    float *logits;
} fixture;

static int read_fixture(harness *h, const char *path, fixture *fx)
{
    FILE *f = path ? fopen(path, "rb") : NULL;
    char magic[4];
    int32_t hdr[3];
    int ok = f && fread(magic, 1, 4, f) == 4 && memcmp(magic, "TLF1", 4) == 0 && fread(hdr, 4, 3, f) == 3 &&
             hdr[0] > 0 && hdr[0] <= MAX_IMAGES && hdr[1] == 1000 && hdr[2] == SIZE;
    if (ok) {
        fx->images = hdr[0], fx->classes = hdr[1], fx->size = hdr[2];
        size_t n = (size_t)fx->images * (size_t)fx->classes;
        fx->logits = malloc(n * sizeof(float));
        ok = fx->logits && fread(fx->logits, sizeof(float), n, f) == n;
    }
    if (f)
        fclose(f);
    if (!ok)
        harness_fail(h, "cannot read the fixture %s (TLCL_LITE0_FIXTURE; tools/make_lite0_fixture.py writes it)",
                     path ? path : "(unset)");
    return ok ? 0 : -1;
}

/* The number of tensors in a safetensors file: the loader checks every tensor
 * the model declares; this catches tensors the model would silently ignore. */
static int count_tensors(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char len8[8];
    uint64_t len = 0;
    if (!f || fread(len8, 1, 8, f) != 8) {
        if (f)
            fclose(f);
        return -1;
    }
    for (int i = 0; i < 8; i++)
        len |= (uint64_t)len8[i] << (8 * i);
    char *text = len < (64u << 20) ? malloc(len + 1) : NULL;
    int n = -1;
    if (text && fread(text, 1, len, f) == len) {
        text[len] = '\0';
        cJSON *root = cJSON_Parse(text);
        n = cJSON_GetArraySize(root) - (cJSON_GetObjectItemCaseSensitive(root, "__metadata__") ? 1 : 0);
        cJSON_Delete(root);
    }
    free(text);
    fclose(f);
    return n;
}

static int load_model(harness *h, tlcl_model *m, const char *path)
{
    tlcl_checkpoint *ck;
    tlcl_model_options o;
    char err[1024];
    if (tlcl_checkpoint_open(&ck, path, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "%s — run tools/fetch_lite0.sh to fetch and convert the weights", err);
        return -1;
    }
    int ok = tlcl_checkpoint_options(ck, &o, err, sizeof err) == TLCL_OK &&
             tlcl_model_build(m, &o, err, sizeof err) == TLCL_OK;
    if (!ok) {
        harness_fail(h, "%s", err);
    } else if (strcmp(m->arch.name, "efficientnet-lite0") != 0 || m->classes != 1000 || m->size != SIZE) {
        harness_fail(h, "checkpoint holds %s, %d classes, size %d; expected efficientnet-lite0, 1000, %d",
                     m->arch.name, m->classes, m->size, SIZE);
        ok = 0;
    } else if (!harness_status(h, tlcl_model_alloc(m, h->eng, 1), "alloc")) {
        ok = tlcl_model_load(m, ck, err, sizeof err) == TLCL_OK;
        if (!ok)
            harness_fail(h, "load: %s", err);
    } else {
        ok = 0;
    }
    tlcl_checkpoint_close(ck);
    if (ok) {
        h->passed++;
        printf("ok   %s loads into efficientnet-lite0 (%d tensors, names and shapes as declared)\n", path,
               m->params.count);
    }
    return ok ? 0 : -1;
}

static void check_tensor_count(harness *h, const tlcl_model *m, const char *path)
{
    int n = count_tensors(path);
    if (n == m->params.count) {
        h->passed++;
        printf("ok   the checkpoint holds exactly the %d tensors the model declares\n", n);
    } else {
        harness_fail(h, "the checkpoint holds %d tensors, the model declares %d", n, m->params.count);
    }
}

static void top_k(const float *z, int n, int *idx)
{
    for (int k = 0; k < TOP; k++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int j = 0; j < k; j++)
                taken |= idx[j] == i;
            if (!taken && (best < 0 || z[i] > z[best]))
                best = i;
        }
        idx[k] = best;
    }
}

static void check_image(harness *h, const fixture *fx, const float *got, int img)
{
    const float *want = fx->logits + (size_t)img * fx->classes;
    const float *z = got + (size_t)img * fx->classes;
    double worst = 0;
    for (int i = 0; i < fx->classes; i++)
        worst = fmax(worst, fabs((double)z[i] - want[i]));
    int a[TOP], b[TOP], same = 1;
    top_k(z, fx->classes, a);
    top_k(want, fx->classes, b);
    for (int k = 0; k < TOP; k++)
        same &= a[k] == b[k];
    if (worst <= TOL && same) {
        h->passed++;
        printf("ok   image %d: logits within %.1e of PyTorch (max |diff| %.2e), top-5 %d %d %d %d %d\n", img, TOL,
               worst, a[0], a[1], a[2], a[3], a[4]);
    } else {
        harness_fail(h, "image %d: max |logit diff| %.3e (tolerance %.0e); top-5 tlcl %d %d %d %d %d, PyTorch %d %d %d %d %d",
                     img, worst, TOL, a[0], a[1], a[2], a[3], a[4], b[0], b[1], b[2], b[3], b[4]);
    }
}

static void run_images(harness *h, tlcl_model *m, const fixture *fx)
{
    size_t per = (size_t)SIZE * SIZE * 3;
    float *imgs = malloc(per * (size_t)fx->images * sizeof *imgs);
    if (!imgs) {
        harness_fail(h, "out of host memory");
        return;
    }
    for (int i = 0; i < fx->images; i++)
        for (int y = 0; y < SIZE; y++)
            for (int x = 0; x < SIZE; x++)
                for (int c = 0; c < 3; c++)
                    imgs[(size_t)i * per + ((size_t)y * SIZE + x) * 3 + c] = (float)pixel(i, y, x, c);
    tlcl_run *run = NULL;
    tlcl_loss_spec loss = tlcl_loss_spec_default();
    tlcl_run_input in = {.images = imgs, .count = fx->images};
    tlcl_run_batch *b;
    char err[512];
    if (tlcl_run_create(&run, m, &loss, err, sizeof err) != TLCL_OK)
        harness_fail(h, "run: %s", err);
    else if (!harness_status(h, tlcl_run_load(run, &in, NULL, &b), "load") &&
             !harness_status(h, tlcl_run_predict(run, b, NULL), "inference pass")) {
        float *z = harness_download(h, tlcl_run_logits(run));
        for (int i = 0; z && i < fx->images; i++)
            check_image(h, fx, z, i);
        free(z);
    }
    tlcl_run_free(run);
    free(imgs);
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    const char *ckpt = getenv("TLCL_LITE0_CHECKPOINT");
    fixture fx = {0};
    tlcl_model m;
    memset(&m, 0, sizeof m);
    if (!ckpt || !ckpt[0])
        harness_fail(&h, "TLCL_LITE0_CHECKPOINT is not set (tests/CMakeLists.txt sets it; run tools/fetch_lite0.sh)");
    else if (read_fixture(&h, getenv("TLCL_LITE0_FIXTURE"), &fx) == 0 && load_model(&h, &m, ckpt) == 0) {
        check_tensor_count(&h, &m, ckpt);
        run_images(&h, &m, &fx);
    }
    if (m.blocks)
        tlcl_model_free(&m);
    free(fx.logits);
    return harness_finish(&h);
}
