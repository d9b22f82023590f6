/* test_keras_import.c — Keras weight import checked against Keras itself.
 *
 * tests/fixtures holds, for scaled-down EfficientNet V1 and V2 models
 * (width 0.5, depth 0.5, input 64, 5 classes; tools/make_keras_fixtures.py),
 * the Keras 3 weights file, a legacy .h5 of the same weights, and what
 * Keras computed on a fixed batch: inference logits, and for one
 * training-mode step with softmax cross-entropy the loss, the gradient with
 * respect to the raw input and the gradient of every trainable weight.
 *
 * For each family: both files (and a .keras zip built here from the Keras 3
 * file) import to identical parameters; the logits match within 1e-4; the
 * loss, input gradient and every weight gradient within 1e-3 (relative to
 * the tensor's largest value). Errors are checked to name the problem. */
#include "harness.h"
#include "keras_internal.h"
#include "run.h"
#include "testdata.h"

#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#ifndef TLCL_FIXTURE_DIR
#define TLCL_FIXTURE_DIR "tests/fixtures"
#endif

enum { SIZE = 64, CLASSES = 5, BATCH = 2 };

static const char *fixture_dir(void)
{
    const char *d = getenv("TLCL_FIXTURE_DIR");
    return d && *d ? d : TLCL_FIXTURE_DIR;
}

/* ---- the fixture: a safetensors file of F32 tensors ----------------------------- */

typedef struct fixture { cJSON *header; unsigned char *data; size_t size; } fixture;

static int fixture_open(fixture *fx, const char *path)
{
    memset(fx, 0, sizeof *fx);
    FILE *f = fopen(path, "rb");
    unsigned char len8[8];
    uint64_t hlen = 0;
    if (!f || fread(len8, 1, 8, f) != 8) {
        if (f)
            fclose(f);
        return -1;
    }
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)len8[i] << (8 * i);
    char *text = calloc(1, hlen + 1);
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    fx->size = (size_t)end - 8 - hlen;
    fx->data = malloc(fx->size);
    fseek(f, 8, SEEK_SET);
    int ok = text && fx->data && fread(text, 1, hlen, f) == hlen && fread(fx->data, 1, fx->size, f) == fx->size;
    fclose(f);
    fx->header = ok ? cJSON_Parse(text) : NULL;
    free(text);
    return fx->header ? 0 : -1;
}

static void fixture_close(fixture *fx)
{
    cJSON_Delete(fx->header);
    free(fx->data);
}

/* The tensor as doubles (for harness_check); NULL when absent. */
static double *fixture_get(const fixture *fx, const char *name, size_t *n)
{
    cJSON *t = cJSON_GetObjectItemCaseSensitive(fx->header, name);
    cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    if (!t || cJSON_GetArraySize(off) != 2)
        return NULL;
    size_t begin = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble;
    *n = ((size_t)cJSON_GetArrayItem(off, 1)->valuedouble - begin) / sizeof(float);
    if (begin + *n * sizeof(float) > fx->size)
        return NULL;
    return harness_to_double((const float *)(fx->data + begin), *n);
}

static float *to_float(const double *x, size_t n)
{
    float *f = malloc((n ? n : 1) * sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)x[i];
    return f;
}

/* ---- a .keras archive (zip, stored) around a weights file ------------------------ */

static void put16(FILE *f, unsigned v) { fputc((int)(v & 255), f), fputc((int)(v >> 8 & 255), f); }
static void put32(FILE *f, uint32_t v) { put16(f, v & 0xffff), put16(f, v >> 16); }

/* Raw deflate (zip method 8) of src; *out_size set. */
static unsigned char *deflate_raw(const unsigned char *src, uint32_t n, uint32_t *out_size)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong bound = deflateBound(&zs, n);
    unsigned char *out = malloc(bound);
    zs.next_in = (Bytef *)src, zs.avail_in = n, zs.next_out = out, zs.avail_out = (uInt)bound;
    int rc = out ? deflate(&zs, Z_FINISH) : Z_MEM_ERROR;
    *out_size = (uint32_t)zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static unsigned char *read_all(const char *path, uint32_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *data = NULL;
    if (f && fseek(f, 0, SEEK_END) == 0) {
        *n = (uint32_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        data = malloc(*n ? *n : 1);
        if (data && fread(data, 1, *n, f) != *n) {
            free(data);
            data = NULL;
        }
    }
    if (f)
        fclose(f);
    return data;
}

/* A .keras archive around a weights file, the member stored (method 0) or
 * deflated (8); metadata.json first, as Keras writes it, so the member is
 * not at offset 0. */
static int write_keras_zip(const char *zip_path, const char *weights_path, int method)
{
    static const char meta[] = "{\"keras_version\": \"3.15.1\"}";
    const char *names[2] = {"metadata.json", "model.weights.h5"};
    unsigned char *data[2] = {(unsigned char *)meta, NULL}, *packed = NULL;
    uint32_t size[2] = {sizeof meta - 1, 0}, csize[2] = {sizeof meta - 1, 0}, crc[2], local[2];
    if (!(data[1] = read_all(weights_path, &size[1])))
        return -1;
    csize[1] = size[1];
    if (method == 8 && !(packed = deflate_raw(data[1], size[1], &csize[1]))) {
        free(data[1]);
        return -1;
    }
    FILE *f = fopen(zip_path, "wb");
    for (int i = 0; f && i < 2; i++) {
        unsigned m = i ? (unsigned)method : 0;
        crc[i] = (uint32_t)crc32(0, data[i], size[i]);
        local[i] = (uint32_t)ftell(f);
        put32(f, 0x04034b50u), put16(f, 20), put16(f, 0), put16(f, m), put16(f, 0), put16(f, 0);
        put32(f, crc[i]), put32(f, csize[i]), put32(f, size[i]);
        put16(f, (unsigned)strlen(names[i])), put16(f, 0);
        fputs(names[i], f);
        fwrite(i && packed ? packed : data[i], 1, csize[i], f);
    }
    uint32_t cd = f ? (uint32_t)ftell(f) : 0;
    for (int i = 0; f && i < 2; i++) {
        unsigned m = i ? (unsigned)method : 0;
        put32(f, 0x02014b50u), put16(f, 20), put16(f, 20), put16(f, 0), put16(f, m), put16(f, 0), put16(f, 0);
        put32(f, crc[i]), put32(f, csize[i]), put32(f, size[i]);
        put16(f, (unsigned)strlen(names[i])), put16(f, 0), put16(f, 0), put16(f, 0), put16(f, 0);
        put32(f, 0), put32(f, local[i]);
        fputs(names[i], f);
    }
    if (f) {
        uint32_t cd_size = (uint32_t)ftell(f) - cd;
        put32(f, 0x06054b50u), put16(f, 0), put16(f, 0), put16(f, 2), put16(f, 2);
        put32(f, cd_size), put32(f, cd), put16(f, 0);
    }
    free(data[1]), free(packed);
    return f && fclose(f) == 0 ? 0 : -1;
}

/* ---- the model ---------------------------------------------------------------- */

static tlcl_arch scaled_arch(const char *name)
{
    return testdata_keras_fixture_arch(name);
}

static int build(harness *h, tlcl_model *m, const tlcl_arch *a, int classes, int include_top)
{
    tlcl_model_options o = tlcl_model_options_default();
    o.custom = a;
    o.classes = classes;
    o.include_top = include_top;
    char err[512];
    if (tlcl_model_build(m, &o, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "build %s: %s", a->name, err);
        return -1;
    }
    if (harness_status(h, tlcl_model_alloc(m, h->eng, 1), "alloc"))
        return -1;
    tlcl_model_set_trainable(m, 0, 0);
    return 0;
}

/* Imports path into host (params.total floats); prints the format. */
static int import_file(harness *h, tlcl_model *m, const char *path, float *host)
{
    tlcl_keras_weights *w = NULL;
    char err[1024], unused[512];
    tlcl_status s = tlcl_keras_open(&w, path, err, sizeof err);
    if (s == TLCL_OK)
        s = tlcl_model_import_keras_host(m, w, host, err, sizeof err);
    if (s != TLCL_OK) {
        harness_fail(h, "import %s: %s", path, err);
        tlcl_keras_close(w);
        return -1;
    }
    int n = tlcl_keras_unused(w, unused, sizeof unused);
    printf("     %s: %s, %d classes, %d unused layers%s%s\n", path, tlcl_keras_format(w), tlcl_keras_classes(w), n,
           n ? ": " : "", unused);
    harness_expect(h, n == 0, "every layer with weights in the file is used");
    tlcl_keras_close(w);
    return 0;
}

/* The Keras 3 file, the legacy file and a .keras zip (stored for V1,
 * deflated for V2) give the same parameters. */
static int import_all(harness *h, tlcl_model *m, const char *fam, const char *tmpdir)
{
    char p3[512], pl[512], pz[512], what[128];
    snprintf(p3, sizeof p3, "%s/keras_%s.weights.h5", fixture_dir(), fam);
    snprintf(pl, sizeof pl, "%s/keras_%s_legacy.h5", fixture_dir(), fam);
    snprintf(pz, sizeof pz, "%s/%s.keras", tmpdir, fam);
    size_t bytes = m->params.total * sizeof(float);
    float *a = calloc(1, bytes), *b = calloc(1, bytes), *c = calloc(1, bytes);
    int bad = import_file(h, m, pl, b) || write_keras_zip(pz, p3, strcmp(fam, "v1") == 0 ? 0 : 8) ||
              import_file(h, m, pz, c) ||
              import_file(h, m, p3, a);
    if (!bad) {
        snprintf(what, sizeof what, "%s: legacy .h5 gives the same parameters as .weights.h5", fam);
        harness_expect(h, memcmp(a, b, bytes) == 0, what);
        snprintf(what, sizeof what, "%s: .keras zip gives the same parameters as .weights.h5", fam);
        harness_expect(h, memcmp(a, c, bytes) == 0, what);
        bad = harness_status(h, tlcl_cl_write(h->cl, m->params.values, 0, bytes, a, "params"), "upload");
    }
    remove(pz);
    free(a), free(b), free(c);
    return bad;
}

/* floor: the smallest scale errors are measured against (harness_check) */
static void check_tensor(harness *h, const char *fam, const char *name, const fixture *fx, const float *got,
                         size_t n, double tol, double floor)
{
    size_t nref = 0;
    double *ref = fixture_get(fx, name, &nref);
    char what[160];
    snprintf(what, sizeof what, "%s %s", fam, name);
    if (!ref || nref != n)
        harness_fail(h, "%s: fixture has %zu values, tlcl %zu", what, ref ? nref : 0, n);
    else
        harness_check(h, what, got, ref, n, tol, floor);
    free(ref);
}

/* The fixture's batch on the run's device input (labels from its one-hot). */
static tlcl_run_batch *load_batch(harness *h, tlcl_run *run, const fixture *fx, const float *x)
{
    size_t n = 0;
    double *onehot = fixture_get(fx, "labels", &n);
    int labels[BATCH] = {0};
    for (int i = 0; onehot && i < BATCH; i++)
        for (int c = 0; c < CLASSES; c++)
            if (onehot[i * CLASSES + c] > 0.5)
                labels[i] = c;
    free(onehot);
    tlcl_run_input in = {.images = x, .labels = labels, .count = BATCH};
    tlcl_run_batch *b = NULL;
    return harness_status(h, tlcl_run_load(run, &in, NULL, &b), "load") ? NULL : b;
}

static void check_inference(harness *h, tlcl_run *run, const char *fam, const fixture *fx, const float *x)
{
    tlcl_run_batch *b = load_batch(h, run, fx, x);
    if (!b || harness_status(h, tlcl_run_predict(run, b, NULL), "inference pass"))
        return;
    float *got = harness_download(h, tlcl_run_logits(run));
    check_tensor(h, fam, "logits_infer", fx, got, BATCH * CLASSES, 1e-4, 1e-30);
    free(got);
}

/* The largest |gradient| over all of Keras's weight gradients. */
static double largest_grad(const fixture *fx)
{
    double g = 0;
    for (cJSON *t = fx->header->child; t; t = t->next) {
        size_t n = 0;
        double *x = strncmp(t->string, "grad/", 5) == 0 ? fixture_get(fx, t->string, &n) : NULL;
        for (size_t i = 0; i < n; i++)
            g = fabs(x[i]) > g ? fabs(x[i]) : g;
        free(x);
    }
    return g;
}

/* Every trainable weight's gradient, named; all of them must be in the fixture.
 * The beta of a BatchNorm whose output reaches a training-mode BatchNorm
 * only through linear layers (every project_bn here) has a gradient that is
 * exactly zero in exact arithmetic: in both programs it is rounding noise
 * (1e-8..1e-5). Errors are therefore measured against at least 1e-3 of the
 * model's largest gradient; every other tensor's own largest value is above
 * that (checked on the fixtures), so for them the floor changes nothing. */
static void check_weight_grads(harness *h, tlcl_model *m, const char *fam, const fixture *fx)
{
    int checked = 0, trainable = 0;
    double floor = 1e-3 * largest_grad(fx);
    for (int i = 0; i < m->params.count; i++) {
        const tlcl_param_entry *e = &m->params.entries[i];
        if (!e->trainable)
            continue;
        trainable++;
        char name[160];
        snprintf(name, sizeof name, "grad/%s", e->name);
        float *got = harness_download(h, tlcl_params_grad(&m->params, i));
        check_tensor(h, fam, name, fx, got, e->count, 1e-3, floor);
        free(got);
        checked++;
    }
    int in_fixture = 0;
    for (cJSON *t = fx->header->child; t; t = t->next)
        in_fixture += strncmp(t->string, "grad/", 5) == 0;
    char what[128];
    snprintf(what, sizeof what, "%s: %d trainable tensors, Keras has %d", fam, trainable, in_fixture);
    harness_expect(h, checked == in_fixture && trainable == in_fixture, what);
}

/* One training-mode pass through the run layer (gradients, no update): the
 * logits, the loss (the run's counters), d loss / d input and every weight
 * gradient against Keras's. */
static void check_training(harness *h, tlcl_run *run, tlcl_model *m, const char *fam, const fixture *fx,
                           const float *x)
{
    tlcl_run_batch *b = load_batch(h, run, fx, x);
    tlcl_step_args a = {.lr = 0, .seed = 1, .step = 0};
    tlcl_run_stats st;
    m->want_input_grad = 1;
    if (!b || harness_status(h, tlcl_run_reset(run), "reset") ||
        harness_status(h, tlcl_run_gradients(run, b, &a), "training pass") ||
        harness_status(h, tlcl_run_sync(run, &st), "sync"))
        return;
    float *got = harness_download(h, tlcl_run_logits(run));
    check_tensor(h, fam, "logits_train", fx, got, BATCH * CLASSES, 1e-3, 1e-30);
    free(got);
    float loss = (float)(st.loss_sum / st.samples);
    check_tensor(h, fam, "loss", fx, &loss, 1, 1e-3, 1e-30);
    got = harness_download(h, &m->dinput);
    check_tensor(h, fam, "dinput", fx, got, (size_t)BATCH * SIZE * SIZE * 3, 1e-3, 1e-30);
    free(got);
    check_weight_grads(h, m, fam, fx);
}

static void test_family(harness *h, const char *arch, const char *fam, const char *tmpdir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/keras_%s.safetensors", fixture_dir(), fam);
    fixture fx;
    if (fixture_open(&fx, path)) {
        harness_fail(h, "cannot read fixture %s (set TLCL_FIXTURE_DIR?)", path);
        return;
    }
    tlcl_arch a = scaled_arch(arch);
    tlcl_model m;
    if (build(h, &m, &a, CLASSES, 1) == 0 && import_all(h, &m, fam, tmpdir) == 0) {
        size_t n = 0;
        double *xd = fixture_get(&fx, "input", &n);
        float *xf = xd ? to_float(xd, n) : NULL;
        tlcl_run *run = NULL;
        tlcl_loss_spec loss = tlcl_loss_spec_default();
        char err[512];
        if (tlcl_run_create(&run, &m, &loss, err, sizeof err) != TLCL_OK) {
            harness_fail(h, "run: %s", err);
        } else if (xf && n == (size_t)BATCH * SIZE * SIZE * 3) {
            check_inference(h, run, fam, &fx, xf);
            check_training(h, run, &m, fam, &fx, xf);
        } else {
            harness_fail(h, "%s: fixture input missing or of the wrong size", path);
        }
        tlcl_run_free(run);
        free(xd), free(xf);
    }
    if (m.eng)
        tlcl_model_free(&m);
    fixture_close(&fx);
}

/* The ImageNet files store the std as the Normalization variance and
 * Keras adds a 1/sqrt(std) rescaling: the imported preprocessing must be
 * (x/255 - mean)/std. Checked by giving the opened file those values. */
static void test_imagenet_variance(harness *h, tlcl_keras_weights *w, const tlcl_model_options *o)
{
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].layer, "normalization") == 0 && w->t[i].index < 2)
            memcpy(w->t[i].data, w->t[i].index ? std : mean, sizeof mean);
    tlcl_model m;
    char err[1024];
    int ok = tlcl_model_build(&m, o, err, sizeof err) == TLCL_OK;
    tlcl_params_layout(&m.params, 1);
    float *host = calloc(m.params.total, sizeof *host);
    ok = ok && host && tlcl_model_import_keras_host(&m, w, host, err, sizeof err) == TLCL_OK;
    for (int c = 0; ok && c < 3; c++)
        ok = fabs(m.pre_scale[c] * 255.0 * std[c] - 1.0) < 1e-6 && fabs(m.pre_shift[c] + mean[c] / std[c]) < 1e-6;
    harness_expect(h, ok, "ImageNet variance (the std values): preprocessing is (x/255 - mean)/std, as Keras computes");
    free(host);
    tlcl_model_free(&m);
}

/* Wrong family, wrong class count, no top: the error or the unused list says what. */
static void test_errors(harness *h)
{
    char v1[512], v2[512], err[1024], unused[256];
    snprintf(v1, sizeof v1, "%s/keras_v1.weights.h5", fixture_dir());
    snprintf(v2, sizeof v2, "%s/keras_v2_legacy.h5", fixture_dir());
    tlcl_arch a1 = scaled_arch("efficientnet-b0");
    tlcl_model m;
    tlcl_model_options o = tlcl_model_options_default();
    o.custom = &a1;
    o.classes = 7;
    tlcl_keras_weights *w1 = NULL, *w2 = NULL;
    if (tlcl_model_build(&m, &o, err, sizeof err) != TLCL_OK || tlcl_keras_open(&w1, v1, err, sizeof err) ||
        tlcl_keras_open(&w2, v2, err, sizeof err)) {
        harness_fail(h, "error tests set-up: %s", err);
        tlcl_keras_close(w1);
        return;
    }
    tlcl_params_layout(&m.params, 1); /* host only: no device needed for an import */
    float *host = calloc(m.params.total, sizeof *host);
    tlcl_status s = tlcl_model_import_keras_host(&m, w1, host, err, sizeof err);
    harness_expect(h, s == TLCL_ERR_FORMAT && strstr(err, v1) && strstr(err, "predictions/kernel") && strstr(err, "[640,5]") &&
                  strstr(err, "[640,7]"),
           "7 classes against a 5-class file: the error names file, tensor and both shapes");
    printf("     (%s)\n", err);
    s = tlcl_model_import_keras_host(&m, w2, host, err, sizeof err);
    harness_expect(h, s == TLCL_ERR_FORMAT && strstr(err, v2) && strstr(err, "normalization"),
           "a V2 file into a V1 model: the error names the missing layer");
    printf("     (%s)\n", err);
    tlcl_model_free(&m);
    o.include_top = 0; /* a smaller table: host stays large enough */
    tlcl_model_build(&m, &o, err, sizeof err);
    tlcl_params_layout(&m.params, 1);
    s = tlcl_model_import_keras_host(&m, w1, host, err, sizeof err);
    int n = tlcl_keras_unused(w1, unused, sizeof unused);
    harness_expect(h, s == TLCL_OK && n == 1 && strcmp(unused, "predictions") == 0,
           "no top: the import succeeds and lists the classifier as unused");
    tlcl_model_free(&m);
    free(host);
    test_imagenet_variance(h, w1, &o);
    tlcl_keras_close(w1), tlcl_keras_close(w2);
    s = tlcl_keras_open(&w1, "/nonexistent/x.weights.h5", err, sizeof err);
    harness_expect(h, s == TLCL_ERR_IO && w1 == NULL && strstr(err, "/nonexistent/x.weights.h5"), "a missing file is named");
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    char tmpdir[] = "/tmp/tlcl-keras-test-XXXXXX";
    if (!mkdtemp(tmpdir)) {
        harness_fail(&h, "mkdtemp");
        return harness_finish(&h);
    }
    test_errors(&h);
    test_family(&h, "efficientnet-b0", "v1", tmpdir);
    test_family(&h, "efficientnetv2-b0", "v2", tmpdir);
    rmdir(tmpdir);
    return harness_finish(&h);
}
