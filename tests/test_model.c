/* test_model.c — a network on the device: checkpoints round-trip bit for
 * bit and reject a tensor that does not fit by name; freezing keeps frozen
 * weights and frozen BatchNorm statistics unchanged through a training step
 * while the trainable part moves; an inference pass lets go of each layer's
 * activations once the next layer has read them. */
#include "harness.h"
#include "run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SIZE = 32, CLASSES = 3, BATCH = 4 };

static const tlcl_arch TINY = {
    .name = "tiny-model-test", .family = TLCL_FAMILY_V1, .width = 1.0, .depth = 1.0, .default_size = SIZE,
    .dropout = 0.0f, .drop_connect = 0.0f, .bn_momentum = 0.9f, .bn_epsilon = 1e-3f, .act = TLCL_ACT_SWISH,
    .stem_filters = 8, .top_filters = 16, .nstages = 2,
    .stages = {{3, 1, 1, 8, 8, 1, 0.25f, 0}, {5, 2, 4, 8, 12, 2, 0.25f, 0}},
    .padding = TLCL_PAD_TF_SAME, .preprocess = TLCL_PRE_IMAGENET};

static int build(harness *h, tlcl_model *m, int classes, uint32_t seed)
{
    tlcl_model_options o = tlcl_model_options_default();
    o.custom = &TINY;
    o.classes = classes;
    o.head_units[0] = 6;
    char err[256];
    if (tlcl_model_build(m, &o, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "build: %s", err);
        return -1;
    }
    return harness_status(h, tlcl_model_alloc(m, h->eng, seed), "alloc") ? -1 : 0;
}

static float *params_host(harness *h, tlcl_model *m)
{
    float *x = malloc(m->params.total * sizeof *x);
    harness_status(h, tlcl_cl_read(h->cl, m->params.values, 0, m->params.total * sizeof *x, x, "params"), "read");
    return x;
}

static void test_checkpoint(harness *h, const char *dir)
{
    tlcl_model a, b, c;
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s/tiny.safetensors", dir);
    if (build(h, &a, CLASSES, 7) || build(h, &b, CLASSES, 8) || build(h, &c, CLASSES + 2, 9))
        return;
    const char *names[CLASSES] = {"cat", "dog", "plankton"};
    harness_expect(h, tlcl_model_save(&a, path, names, CLASSES, err, sizeof err) == TLCL_OK, "checkpoint saved");
    tlcl_checkpoint *ck = NULL;
    harness_expect(h, tlcl_checkpoint_open(&ck, path, err, sizeof err) == TLCL_OK, "checkpoint opens");
    if (!ck)
        return;
    tlcl_model_options o;
    harness_expect(h, tlcl_checkpoint_options(ck, &o, err, sizeof err) == TLCL_OK && strcmp(o.arch, TINY.name) == 0 &&
                  o.size == SIZE && o.classes == CLASSES && o.head_units[0] == 6,
           "metadata gives back architecture, size, classes and head");
    char **cls;
    int n = tlcl_checkpoint_class_names(ck, &cls);
    harness_expect(h, n == CLASSES && strcmp(cls[2], "plankton") == 0, "class names travel in the metadata");
    for (int i = 0; i < n; i++)
        free(cls[i]);
    free(cls);
    harness_expect(h, tlcl_model_load(&b, ck, err, sizeof err) == TLCL_OK, "checkpoint loads into a fresh model");
    float *pa = params_host(h, &a), *pb = params_host(h, &b);
    harness_expect(h, memcmp(pa, pb, a.params.total * sizeof *pa) == 0, "loaded parameters equal the saved ones bit for bit");
    free(pa), free(pb);
    tlcl_status s = tlcl_model_load(&c, ck, err, sizeof err);
    harness_expect(h, s == TLCL_ERR_FORMAT && strstr(err, "predictions/kernel") && strstr(err, "[6,5]"),
           "a tensor of the wrong shape is named with both shapes");
    printf("     (%s)\n", err);
    tlcl_checkpoint_close(ck);

    FILE *f = fopen(path, "r+b");
    if (f) {
        fputs("\x20\x00\x00", f); /* header length now points past the header */
        fclose(f);
    }
    ck = NULL;
    s = tlcl_checkpoint_open(&ck, path, err, sizeof err);
    harness_expect(h, s == TLCL_ERR_FORMAT && ck == NULL && strstr(err, path), "a damaged header is refused by name");
    tlcl_checkpoint_close(ck);
    remove(path);
    tlcl_model_free(&a), tlcl_model_free(&b), tlcl_model_free(&c);
}

/* One training step of the model on random data, through the run layer. */
static int step(harness *h, tlcl_model *m)
{
    static float imgs[BATCH * SIZE * SIZE * 3];
    int labels[BATCH] = {0, 1, 2, 1};
    harness_fill(h, imgs, sizeof imgs / sizeof *imgs, 0, 255);
    tlcl_optimizer opt = tlcl_optimizer_default(TLCL_OPT_ADAM);
    tlcl_loss_spec loss = tlcl_loss_spec_default();
    tlcl_run_input in = {.images = imgs, .labels = labels, .count = BATCH};
    tlcl_step_args a = {.lr = 0.05f, .seed = 5, .step = 0};
    tlcl_run *run = NULL;
    tlcl_run_batch *b;
    char err[512];
    if (tlcl_run_create(&run, m, &loss, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "run: %s", err);
        return 1;
    }
    int bad = harness_status(h, tlcl_run_load(run, &in, NULL, &b), "load") ||
              harness_status(h, tlcl_run_step(run, b, &opt, &a), "step") ||
              harness_status(h, tlcl_cl_finish(h->cl), "finish");
    tlcl_run_free(run);
    return bad;
}

static int changed(const tlcl_model *m, const float *before, const float *after, int id)
{
    const tlcl_param_entry *e = &m->params.entries[id];
    return memcmp(before + e->offset, after + e->offset, e->count * sizeof(float)) != 0;
}

static void test_freezing(harness *h, int first_trainable, int bn_frozen, const char *what)
{
    tlcl_model m;
    if (build(h, &m, CLASSES, 11))
        return;
    tlcl_model_set_trainable(&m, first_trainable, bn_frozen);
    float *before = params_host(h, &m);
    if (step(h, &m))
        return;
    float *after = params_host(h, &m);
    int ok = 1;
    for (int i = 0; i < m.params.count; i++) {
        const tlcl_param_entry *e = &m.params.entries[i];
        int is_bn_stat = strstr(e->name, "moving_") != NULL;
        /* moving statistics move only where the BatchNorm trains */
        int bn_trains = is_bn_stat && m.params.entries[i - 2].trainable;
        int should_change = e->trainable || bn_trains;
        if (is_bn_stat && !bn_trains)
            should_change = 0;
        if (changed(&m, before, after, i) != should_change) {
            printf("     %s: changed=%d, expected %d\n", e->name, changed(&m, before, after, i), should_change);
            ok = 0;
        }
    }
    harness_expect(h, ok, what);
    free(before), free(after);
    tlcl_model_free(&m);
}

/* How many of the stem's and the blocks' activation tensors a forward pass
 * left held. */
static int held_activations(const tlcl_model *m)
{
    int held = (m->input.buf != NULL) + (m->stem.conv_out.buf != NULL) + (m->stem.out.buf != NULL);
    for (int i = 0; i < m->nblocks; i++) {
        const tlcl_block *b = &m->blocks[i];
        const tlcl_tensor *t[] = {&b->expand.conv_out, &b->expand.out, &b->dw.conv_out, &b->dw.out, &b->se.out,
                                  &b->project.conv_out, &b->project.out, &b->out};
        for (size_t k = 0; k < sizeof t / sizeof *t; k++)
            held += t[k]->buf != NULL;
    }
    return held;
}

/* A training forward keeps every activation for backward; an inference pass
 * (predict, test, evaluation) has no backward, so by its end it must hold
 * none of them: only the top convolution's output and the head remain. */
static void test_inference_releases(harness *h)
{
    tlcl_model m;
    if (build(h, &m, CLASSES, 13))
        return;
    static float imgs[BATCH * SIZE * SIZE * 3];
    harness_fill(h, imgs, sizeof imgs / sizeof *imgs, 0, 255);
    tlcl_tensor x = harness_tensor(h, "images", BATCH, SIZE, SIZE, 3, imgs);
    tlcl_tensor *logits;
    int held[2] = {-1, -1};
    for (int training = 1; training >= 0; training--)
        if (!harness_status(h, tlcl_model_forward(&m, &x, training, 1, &logits), "forward"))
            held[training] = held_activations(&m);
    printf("     activations held after the forward: training %d, inference %d\n", held[1], held[0]);
    harness_expect(h, held[1] >= 3 * m.nblocks, "a training forward keeps the blocks' activations for backward");
    harness_expect(h, held[0] == 0 && m.top.out.buf != NULL, "an inference pass holds no stem or block activation");
    tlcl_tensor_release(h->eng, &x);
    tlcl_model_free(&m);
}

/* The engine's buffer pool lends a released buffer to a later tensor up to
 * its reuse factor times smaller (tensor.c's pool_find: 8 for inference
 * passes, 2 for training steps), and never one in use. */
static void test_pool_reuse(harness *h)
{
    enum { BIG = 1 << 20 };
    tlcl_tensor big, a, tiny, b, c;
    if (harness_status(h, tlcl_tensor_alloc(h->eng, &big, "big", 1, 1, 1, BIG), "alloc"))
        return;
    cl_mem big_buf = big.buf;
    tlcl_tensor_release(h->eng, &big);
    /* each tensor below stays held, so big_buf is the only free buffer */
    tlcl_engine_set_pool_reuse(h->eng, TLCL_POOL_REUSE_TRAINING);
    harness_status(h, tlcl_tensor_alloc(h->eng, &a, "a", 1, 1, 1, BIG / 7), "alloc");
    harness_expect(h, a.buf != big_buf, "pool, training: a 7x smaller tensor gets a buffer of its own");
    tlcl_engine_set_pool_reuse(h->eng, TLCL_POOL_REUSE_INFERENCE);
    harness_status(h, tlcl_tensor_alloc(h->eng, &tiny, "tiny", 1, 1, 1, BIG / 16), "alloc");
    harness_expect(h, tiny.buf != big_buf, "pool, inference: a 16x smaller tensor gets a buffer of its own");
    harness_status(h, tlcl_tensor_alloc(h->eng, &b, "b", 1, 1, 1, BIG / 7), "alloc");
    harness_status(h, tlcl_tensor_alloc(h->eng, &c, "c", 1, 1, 1, BIG / 7), "alloc");
    harness_expect(h, b.buf == big_buf && c.buf != big_buf,
                   "pool, inference: a 7x smaller tensor reuses a free buffer, once");
    tlcl_tensor *all[] = {&a, &tiny, &b, &c};
    for (int i = 0; i < 4; i++)
        tlcl_tensor_release(h->eng, all[i]);
    tlcl_engine_set_pool_reuse(h->eng, TLCL_POOL_REUSE_TRAINING);
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    char dir[] = "/tmp/tlcl-model-test-XXXXXX";
    if (!mkdtemp(dir)) {
        harness_fail(&h, "mkdtemp");
        return harness_finish(&h);
    }
    test_pool_reuse(&h); /* first: on a pool nothing else has filled */
    test_checkpoint(&h, dir);
    test_inference_releases(&h);
    test_freezing(&h, 0, 0, "all trainable: every weight and every BN statistic moves");
    test_freezing(&h, 4, 0, "base frozen: only the head moves, frozen BN statistics stay");
    test_freezing(&h, 2, 0, "top block unfrozen: it and the top conv move, the stem and block 1 stay");
    test_freezing(&h, 2, 1, "top block unfrozen with BN frozen: convs move, no BN parameter or statistic does");
    rmdir(dir);
    return harness_finish(&h);
}
