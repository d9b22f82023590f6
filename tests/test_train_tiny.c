/* test_train_tiny.c — end-to-end training on the device: a tiny
 * EfficientNet-style network (stem, one MBConv block with squeeze-and-
 * excitation and a residual, top conv, head) learns a generated task
 * (stripe orientation x dominant colour, 4 classes, random phase, period and
 * noise) to over 95% held-out accuracy in a fixed number of Adam steps.
 * Also checks that steady-state steps create no OpenCL buffer and that a
 * run is reproducible from its seed. Under TLCL_TEST_BF16=1 (the
 * train_tiny_pocl_bf16 test) the network's feature maps are bfloat16
 * (model.precision: mixed_bfloat16) and the same bars hold. */
#include "harness.h"
#include "run.h"
#include "testdata.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SIZE = 32, CLASSES = 4, BATCH = 16, STEPS = 80, EVAL = 128 };

static const tlcl_arch *const TINY = &testdata_tiny_arch; /* SIZE px */

static void make_batch(harness *h, float *imgs, int *labels, int n)
{
    testdata_stripes(h, imgs, labels, n, SIZE, CLASSES);
}

typedef struct run_result {
    float final_loss, accuracy;
    long buffers_step2, buffers_end;
    float first_logit;
} run_result;

/* Held-out accuracy through the run layer's inference pass: counted on the
 * device, and checked here against the arg-max of the probabilities it
 * returns. */
static float evaluate(harness *h, tlcl_run *run, float *first_prob)
{
    static float imgs[EVAL * SIZE * SIZE * 3], probs[EVAL * CLASSES];
    int labels[EVAL], correct = 0;
    make_batch(h, imgs, labels, EVAL);
    tlcl_run_input in = {.images = imgs, .labels = labels, .count = EVAL};
    tlcl_run_batch *b;
    tlcl_run_stats st;
    if (harness_status(h, tlcl_run_reset(run), "reset") || harness_status(h, tlcl_run_load(run, &in, NULL, &b), "load") ||
        harness_status(h, tlcl_run_predict(run, b, probs), "predict") || harness_status(h, tlcl_run_sync(run, &st), "sync"))
        return 0;
    for (int i = 0; i < EVAL; i++) {
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
            if (probs[i * CLASSES + c] > probs[i * CLASSES + best])
                best = c;
        correct += best == labels[i];
    }
    harness_expect(h, st.samples == EVAL && st.hits == correct && st.weight == EVAL,
                   "device-counted hits equal the arg-max of the returned probabilities");
    *first_prob = probs[0];
    return (float)correct / EVAL;
}

static run_result train(harness *h, uint64_t data_seed)
{
    run_result r = {0};
    h->rng = data_seed;
    tlcl_model m;
    tlcl_model_options o = tlcl_model_options_default();
    o.custom = TINY;
    o.classes = CLASSES;
    o.activations = harness_act_dtype(h); /* bfloat16 feature maps under TLCL_TEST_BF16=1 (mixed_bfloat16) */
    char err[512];
    tlcl_run *run = NULL;
    tlcl_loss_spec loss = tlcl_loss_spec_default();
    if (tlcl_model_build(&m, &o, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "build: %s", err);
        return r;
    }
    if (harness_status(h, tlcl_model_alloc(&m, h->eng, 42), "alloc"))
        return r;
    if (tlcl_run_create(&run, &m, &loss, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "run: %s", err);
        return r;
    }
    tlcl_optimizer opt = tlcl_optimizer_default(TLCL_OPT_ADAM);
    static float imgs[BATCH * SIZE * SIZE * 3];
    int labels[BATCH];
    for (int step = 0; step < STEPS; step++) {
        make_batch(h, imgs, labels, BATCH);
        tlcl_run_input in = {.images = imgs, .labels = labels, .count = BATCH};
        tlcl_run_batch *b;
        tlcl_step_args a = {.lr = 0.01f, .seed = (uint32_t)step + 1, .step = step};
        if (harness_status(h, tlcl_run_load(run, &in, NULL, &b), "load") ||
            harness_status(h, tlcl_run_step(run, b, &opt, &a), "step"))
            return r;
        if (step == 1)
            r.buffers_step2 = tlcl_cl_stats_get(h->cl).buffers_created;
        if (step % 20 == 19 || step == STEPS - 1) { /* the mean loss of the last 20 steps */
            tlcl_run_stats st;
            if (harness_status(h, tlcl_run_sync(run, &st), "sync") || harness_status(h, tlcl_run_reset(run), "reset"))
                return r;
            r.final_loss = (float)(st.loss_sum / st.samples);
            printf("     steps %3d-%3d loss %.4f\n", step - 18, step + 1, r.final_loss);
        }
    }
    r.buffers_end = tlcl_cl_stats_get(h->cl).buffers_created;
    r.accuracy = evaluate(h, run, &r.first_logit);
    tlcl_run_free(run);
    tlcl_model_free(&m);
    return r;
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    run_result a = train(&h, 1234);
    printf("     held-out accuracy %.3f, final loss %.4f\n", a.accuracy, a.final_loss);
    if (a.accuracy > 0.95f) {
        h.passed++;
        printf("ok   tiny net learns the task (accuracy %.3f > 0.95 after %d steps)\n", a.accuracy, STEPS);
    } else {
        harness_fail(&h, "tiny net accuracy %.3f <= 0.95 after %d steps", a.accuracy, STEPS);
    }
    if (a.buffers_end == a.buffers_step2 && a.buffers_end > 0) {
        h.passed++;
        printf("ok   no OpenCL buffer created after step 2 (%ld buffers in all)\n", a.buffers_end);
    } else {
        harness_fail(&h, "steps 3..%d created %ld OpenCL buffers", STEPS, a.buffers_end - a.buffers_step2);
    }
    run_result b = train(&h, 1234);
    if (b.final_loss == a.final_loss && b.first_logit == a.first_logit && a.accuracy > 0) {
        h.passed++;
        printf("ok   same seed, same device: identical run (loss %.7f)\n", b.final_loss);
    } else {
        harness_fail(&h, "rerun differs: loss %.9g vs %.9g, logit %.9g vs %.9g", b.final_loss, a.final_loss,
                     b.first_logit, a.first_logit);
    }
    return harness_finish(&h);
}
