/* test_run.c — the run layer (models/run/run.h) on a tiny EfficientNet-style
 * network: the device-side counters of a training step and of an inference
 * pass against double references computed from the step's own logits
 * (tests/ref/ref_loss.c), the non-finite guard (the step that produced a
 * NaN is named and neither its update nor a later one is kept), and cached
 * features (gathered on the device) giving the same predictions as the
 * images they came from. */
#include "harness.h"
#include "image_load.h"
#include "ref_loss.h"
#include "run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SIZE = 32, CLASSES = 5, BATCH = 12 };

static const tlcl_arch TINY = {
    .name = "tiny-run", .family = TLCL_FAMILY_V2, .width = 1.0, .depth = 1.0, .default_size = SIZE,
    .dropout = 0.0f, .drop_connect = 0.0f, .bn_momentum = 0.9f, .bn_epsilon = 1e-3f, .act = TLCL_ACT_SWISH,
    .stem_filters = 8, .top_filters = 16, .nstages = 1,
    .stages = {{3, 1, 4, 8, 8, 1, 0.25f, 0}},
    .padding = TLCL_PAD_TF_SAME, .preprocess = TLCL_PRE_IMAGENET};

typedef struct world {
    tlcl_model m;
    tlcl_run *run;
    float images[BATCH * SIZE * SIZE * 3];
    int labels[BATCH];
    float weights[BATCH];
} world;

static int world_open(harness *h, world *w, const tlcl_loss_spec *loss)
{
    memset(w, 0, sizeof *w);
    tlcl_model_options o = tlcl_model_options_default();
    o.custom = &TINY;
    o.classes = CLASSES;
    char err[512];
    if (tlcl_model_build(&w->m, &o, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "build: %s", err);
        return 1;
    }
    if (harness_status(h, tlcl_model_alloc(&w->m, h->eng, 7), "alloc"))
        return 1;
    if (tlcl_run_create(&w->run, &w->m, loss, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "run: %s", err);
        return 1;
    }
    harness_fill(h, w->images, sizeof w->images / sizeof *w->images, 0, 255);
    for (int i = 0; i < BATCH; i++) {
        w->labels[i] = i % CLASSES;
        w->weights[i] = harness_uniform(h, 0.25f, 3.0f);
    }
    return 0;
}

static void world_close(world *w)
{
    tlcl_run_free(w->run);
    if (w->m.eng)
        tlcl_model_free(&w->m);
}

static double *logits_of(harness *h, world *w)
{
    float *z = harness_download(h, tlcl_run_logits(w->run));
    double *d = z ? harness_to_double(z, (size_t)BATCH * CLASSES) : NULL;
    free(z);
    return d;
}

/* The reference counters of one batch from its logits: sum w_i l_i, sum
 * w_i [argmax = label], and the confusion counts. */
typedef struct ref_counts { double loss_sum, hits, weight, confusion[CLASSES * CLASSES]; } ref_counts;

static void ref_count(const tlcl_loss_spec *L, const double *z, const int *labels, const float *wf, ref_counts *r)
{
    double per[BATCH], w[BATCH];
    for (int i = 0; i < BATCH; i++)
        w[i] = wf ? wf[i] : 1.0;
    if (L->kind == TLCL_LOSS_KIND_FOCAL)
        ref_focal_loss(BATCH, CLASSES, z, labels, NULL, L->label_smoothing, NULL, L->focal_alpha, L->focal_gamma, per,
                       NULL);
    else
        ref_softmax_xent(BATCH, CLASSES, z, labels, NULL, L->label_smoothing, per, NULL);
    memset(r, 0, sizeof *r);
    for (int i = 0; i < BATCH; i++) {
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
            best = z[i * CLASSES + c] > z[i * CLASSES + best] ? c : best;
        r->loss_sum += w[i] * per[i];
        r->hits += best == labels[i] ? w[i] : 0;
        r->weight += w[i];
        r->confusion[labels[i] * CLASSES + best] += 1;
    }
}

static void compare_counts(harness *h, const char *what, const tlcl_run_stats *st, const ref_counts *r, int batches)
{
    char name[160];
    int conf_ok = 1;
    for (int k = 0; k < CLASSES * CLASSES; k++)
        conf_ok &= st->confusion[k] == batches * r->confusion[k];
    double rel = fabs(st->loss_sum - batches * r->loss_sum) / fabs(batches * r->loss_sum);
    snprintf(name, sizeof name, "%s: loss sum %.6g vs %.6g (rel %.1e), hits %.4g vs %.4g, weight, samples, confusion",
             what, st->loss_sum, batches * r->loss_sum, rel, st->hits, batches * r->hits);
    harness_expect(h, rel < 1e-5 && fabs(st->hits - batches * r->hits) < 1e-4 * batches * r->weight &&
                          fabs(st->weight - batches * r->weight) < 1e-5 * batches * r->weight &&
                          st->samples == batches * BATCH && st->nonfinite_step == -1 && conf_ok,
                   name);
}

/* A training step's counters use the sample weights; an inference pass's
 * are unweighted (Keras's val_loss), with focal loss and label smoothing
 * included in both. Three batches accumulate. */
static void test_counters(harness *h, tlcl_loss_kind kind)
{
    tlcl_loss_spec L = tlcl_loss_spec_default();
    L.kind = kind;
    L.label_smoothing = 0.1f;
    world w;
    if (world_open(h, &w, &L) == 0) {
        tlcl_run_input in = {.images = w.images, .labels = w.labels, .weights = w.weights, .count = BATCH};
        tlcl_run_batch *b;
        tlcl_step_args a = {.lr = 0, .seed = 3, .step = 0};
        tlcl_run_stats st;
        ref_counts r;
        double *z = NULL;
        const char *name = kind == TLCL_LOSS_KIND_FOCAL ? "focal" : "cross-entropy";
        char what[80];
        /* BatchNorm in training mode: no update (lr 0, SGD), so three steps see the same logits */
        tlcl_optimizer sgd = tlcl_optimizer_default(TLCL_OPT_SGD);
        for (int k = 0; k < 3; k++)
            if (harness_status(h, tlcl_run_load(w.run, &in, NULL, &b), "load") ||
                harness_status(h, tlcl_run_step(w.run, b, &sgd, &a), "step"))
                break;
        if (!harness_status(h, tlcl_run_sync(w.run, &st), "sync") && (z = logits_of(h, &w))) {
            ref_count(&L, z, w.labels, w.weights, &r);
            snprintf(what, sizeof what, "%s training counters (sample weights)", name);
            compare_counts(h, what, &st, &r, 3);
        }
        free(z), z = NULL;
        float probs[BATCH * CLASSES];
        if (!harness_status(h, tlcl_run_reset(w.run), "reset") &&
            !harness_status(h, tlcl_run_load(w.run, &in, NULL, &b), "load") &&
            !harness_status(h, tlcl_run_predict(w.run, b, probs), "predict") &&
            !harness_status(h, tlcl_run_sync(w.run, &st), "sync") && (z = logits_of(h, &w))) {
            ref_count(&L, z, w.labels, NULL, &r);
            snprintf(what, sizeof what, "%s inference counters (unweighted)", name);
            compare_counts(h, what, &st, &r, 1);
            double p[BATCH * CLASSES];
            ref_softmax(BATCH, CLASSES, z, p);
            harness_check(h, "inference probabilities = softmax(logits)", probs, p, BATCH * CLASSES, 1e-5, 1e-6);
        }
        free(z);
    }
    world_close(&w);
}

/* Step 2 of 4 gets a label outside [0, C): its loss is NaN. The host reads
 * the counters only after all four steps were enqueued; the run names step
 * 2, and the parameters are those after step 1 (steps 2, 3 and 4 updated
 * nothing). */
static void test_nonfinite_guard(harness *h)
{
    tlcl_loss_spec L = tlcl_loss_spec_default();
    world w;
    if (world_open(h, &w, &L) == 0) {
        tlcl_optimizer adam = tlcl_optimizer_default(TLCL_OPT_ADAM);
        tlcl_params *p = &w.m.params;
        float *after1 = NULL, *end = NULL;
        tlcl_run_stats st = {0};
        int bad = 0;
        for (long step = 1; step <= 4 && !bad; step++) {
            int labels[BATCH];
            memcpy(labels, w.labels, sizeof labels);
            if (step == 2)
                labels[3] = CLASSES + 4;
            tlcl_run_input in = {.images = w.images, .labels = labels, .count = BATCH};
            tlcl_run_batch *b;
            tlcl_step_args a = {.lr = 0.01f, .seed = (uint32_t)step, .step = step};
            bad = harness_status(h, tlcl_run_load(w.run, &in, NULL, &b), "load") ||
                  harness_status(h, tlcl_run_step(w.run, b, &adam, &a), "step");
            if (!bad && step == 1 && (after1 = malloc(p->total * sizeof *after1)))
                bad = harness_status(h, tlcl_cl_read(h->cl, p->values, 0, p->total * sizeof *after1, after1, "w"), "read");
        }
        if (!bad && after1 && (end = malloc(p->total * sizeof *end)) &&
            !harness_status(h, tlcl_run_sync(w.run, &st), "sync") &&
            !harness_status(h, tlcl_cl_read(h->cl, p->values, 0, p->total * sizeof *end, end, "w"), "read")) {
            size_t differ = 0, trainable_floats = 0;
            for (int i = 0; i < p->count; i++) {
                const tlcl_param_entry *e = &p->entries[i];
                if (e->trainable)
                    differ += memcmp(after1 + e->offset, end + e->offset, e->count * sizeof *end) != 0;
                trainable_floats += e->trainable ? e->count : 0;
            }
            char what[160];
            snprintf(what, sizeof what, "NaN at step 2 reported as step %ld; trainable tensors changed after it: %zu",
                     st.nonfinite_step, differ);
            harness_expect(h, st.nonfinite_step == 2 && differ == 0 && trainable_floats > 0, what);
        }
        free(after1), free(end);
        /* after a reset the guard is down and an update goes through again */
        tlcl_run_input in = {.images = w.images, .labels = w.labels, .count = BATCH};
        tlcl_run_batch *b;
        tlcl_step_args a = {.lr = 0.01f, .seed = 9, .step = 5};
        float before = 0, after = 0;
        size_t off = p->entries[tlcl_params_find(p, "predictions/kernel")].offset * sizeof(float);
        if (!harness_status(h, tlcl_run_reset(w.run), "reset") &&
            !harness_status(h, tlcl_cl_read(h->cl, p->values, off, sizeof before, &before, "w"), "read") &&
            !harness_status(h, tlcl_run_load(w.run, &in, NULL, &b), "load") &&
            !harness_status(h, tlcl_run_step(w.run, b, &adam, &a), "step") &&
            !harness_status(h, tlcl_run_sync(w.run, &st), "sync") &&
            !harness_status(h, tlcl_cl_read(h->cl, p->values, off, sizeof after, &after, "w"), "read"))
            harness_expect(h, st.nonfinite_step == -1 && before != after, "after a reset, updates are applied again");
    }
    world_close(&w);
}

/* Features of the frozen base computed once into a device table (in a
 * shuffled order of dataset positions), then gathered by position: the
 * head's predictions equal those from the images. */
static void test_cached_features(harness *h)
{
    tlcl_loss_spec L = tlcl_loss_spec_default();
    world w;
    tlcl_tensor table = {0};
    if (world_open(h, &w, &L) == 0 &&
        !harness_status(h, tlcl_tensor_alloc(h->eng, &table, "table", BATCH, 1, 1, w.m.top.cout), "table")) {
        int items[BATCH], order[BATCH];
        for (int i = 0; i < BATCH; i++)
            items[i] = (i * 7 + 3) % BATCH, order[i] = BATCH - 1 - i;
        size_t per = (size_t)SIZE * SIZE * 3;
        float from_images[BATCH * CLASSES], from_table[BATCH * CLASSES];
        tlcl_run_input img = {.images = w.images, .items = items, .count = BATCH};
        tlcl_run_input rows = {.items = order, .count = BATCH};
        tlcl_run_batch *b;
        tlcl_run_stats st;
        tlcl_model_set_trainable(&w.m, w.m.nblocks + 1, 1);
        if (!harness_status(h, tlcl_run_load(w.run, &img, NULL, &b), "load") &&
            !harness_status(h, tlcl_run_features(w.run, b, &table), "features") &&
            !harness_status(h, tlcl_run_load(w.run, &rows, &table, &b), "gather") &&
            !harness_status(h, tlcl_run_predict(w.run, b, from_table), "head predict") &&
            !harness_status(h, tlcl_run_sync(w.run, &st), "sync")) {
            /* row order[k] of the table holds the features of the batch image i with items[i] = order[k] */
            static float want_images[BATCH * SIZE * SIZE * 3];
            for (int k = 0; k < BATCH; k++)
                for (int i = 0; i < BATCH; i++)
                    if (items[i] == order[k])
                        memcpy(want_images + per * (size_t)k, w.images + per * (size_t)i, per * sizeof(float));
            tlcl_run_input again = {.images = want_images, .count = BATCH};
            if (!harness_status(h, tlcl_run_load(w.run, &again, NULL, &b), "load") &&
                !harness_status(h, tlcl_run_predict(w.run, b, from_images), "predict") &&
                !harness_status(h, tlcl_run_sync(w.run, &st), "sync")) {
                double *ref = harness_to_double(from_images, BATCH * CLASSES);
                harness_check(h, "head on gathered cached features = the whole network on the images", from_table,
                              ref, BATCH * CLASSES, 1e-5, 1e-6);
                free(ref);
            }
        }
    }
    tlcl_tensor_release(h->eng, &table);
    world_close(&w);
}

/* Keras's Resizing(size, size) as the network's first layer (an image size
 * other than the input size): the model fed 45x38 images predicts what the
 * same model without the layer predicts from the images resized on the host
 * by tlcl_image_resize (TensorFlow's bilinear, half-pixel centres). */
static void test_resizing_layer(harness *h)
{
    enum { IH = 45, IW = 38, N = 4 };
    tlcl_model a, b;
    tlcl_run *ra = NULL, *rb = NULL;
    char err[512];
    tlcl_model_options o = tlcl_model_options_default();
    o.custom = &TINY;
    o.classes = CLASSES;
    int bad = tlcl_model_build(&b, &o, err, sizeof err) != TLCL_OK;
    o.image_h = IH, o.image_w = IW;
    bad = bad || tlcl_model_build(&a, &o, err, sizeof err) != TLCL_OK;
    if (bad || harness_status(h, tlcl_model_alloc(&a, h->eng, 7), "alloc") ||
        harness_status(h, tlcl_model_alloc(&b, h->eng, 7), "alloc") ||
        tlcl_run_create(&ra, &a, &(tlcl_loss_spec){0}, err, sizeof err) != TLCL_OK ||
        tlcl_run_create(&rb, &b, &(tlcl_loss_spec){0}, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "resizing: %s", err);
        return;
    }
    static unsigned char rgb[N][IH * IW * 3];
    static float big[N * IH * IW * 3], small[N * SIZE * SIZE * 3];
    for (int k = 0; k < N; k++) {
        for (int i = 0; i < IH * IW * 3; i++)
            rgb[k][i] = (unsigned char)harness_uniform(h, 0, 256), big[(size_t)k * IH * IW * 3 + i] = rgb[k][i];
        tlcl_image img = {IW, IH, rgb[k]};
        tlcl_image_resize(&img, SIZE, SIZE, small + (size_t)k * SIZE * SIZE * 3);
    }
    float pa[N * CLASSES], pb[N * CLASSES];
    tlcl_run_batch *ba, *bb;
    tlcl_run_stats st;
    if (!harness_status(h, tlcl_run_load(ra, &(tlcl_run_input){.images = big, .count = N}, NULL, &ba), "load") &&
        !harness_status(h, tlcl_run_predict(ra, ba, pa), "predict") && !harness_status(h, tlcl_run_sync(ra, &st), "sync") &&
        !harness_status(h, tlcl_run_load(rb, &(tlcl_run_input){.images = small, .count = N}, NULL, &bb), "load") &&
        !harness_status(h, tlcl_run_predict(rb, bb, pb), "predict") && !harness_status(h, tlcl_run_sync(rb, &st), "sync")) {
        float la[N * CLASSES], lb[N * CLASSES]; /* logits: probabilities near 1/C would hide a difference */
        if (!harness_status(h, tlcl_tensor_download(h->eng, tlcl_run_logits(ra), la), "logits") &&
            !harness_status(h, tlcl_tensor_download(h->eng, tlcl_run_logits(rb), lb), "logits")) {
            double *ref = harness_to_double(lb, N * CLASSES);
            harness_close(h, "45x38 images through the Resizing layer = the host-resized 32x32 images (logits)", la,
                          ref, N * CLASSES, 1e-4, 1e-5);
            printf("     logits %g %g %g ... (host-resized: %g %g %g)\n", la[0], la[1], la[2], lb[0], lb[1], lb[2]);
            free(ref);
        }
    }
    tlcl_run_free(ra), tlcl_run_free(rb);
    tlcl_model_free(&a), tlcl_model_free(&b);
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    test_counters(&h, TLCL_LOSS_KIND_XENT);
    test_counters(&h, TLCL_LOSS_KIND_FOCAL);
    test_nonfinite_guard(&h);
    test_cached_features(&h);
    test_resizing_layer(&h);
    return harness_finish(&h);
}
