/* test_keras_run.c — Keras parity over whole runs, not one step.
 *
 * Whole runs (tools/make_keras_run_fixtures.py, tests/fixtures/keras_run_<v1|v2>.safetensors):
 * small EfficientNet V1 and V2 models built by Keras's own builders, from
 * seeded initial weights, trained five steps on one fixed batch by Keras
 * (train_on_batch, softmax cross-entropy) with Adam and with SGD + momentum.
 * tlcl imports the same initial weights (through the Keras importer, so V1
 * takes its input preprocessing from the Normalization layer), runs the same
 * five steps through the run layer (tlcl_run_load / tlcl_run_step /
 * tlcl_run_sync) and must end with every weight, and every BatchNorm
 * moving mean and variance, equal to Keras's within 1e-4 per element,
 * relative to max(|Keras value|, 0.1) (for a moving mean, max(|mean|, 0.1,
 * the channel's standard deviation): a mean is only as exact as float32
 * sums of its input). Each step's loss and the inference logits before and
 * after the run are compared too.
 *
 * Preprocessing: the fixture's four images are distinct pictures whose
 * inference logits differ clearly between images (the test checks that of
 * the fixture), so an input scale off by 1/255 vs 1/256 moves the logits by
 * about 3-5% of their largest, far beyond the 1e-4 the check allows.
 *
 * Architecture settings (tools/make_keras_arch_fixture.py,
 * tests/fixtures/keras_arch_config.json): every BatchNorm layer's momentum
 * and epsilon and every block's residual flag and stochastic-depth rate as
 * the real Keras models configure them (B0, B3, V2-B0, V2-B3, V2-S), and
 * for Lite (which Keras does not have) as the TensorFlow reference builds
 * them, against tlcl_model_build. */
#include "fixture.h"
#include "keras_internal.h"
#include "model.h"
#include "run.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the whole-run measure: per element, relative to max(|want|, RUN_FLOOR) */
#define RUN_TOL 1e-4
#define RUN_FLOOR 0.1

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- architecture settings against Keras's layer configs -------------------------- */

/* Every batch norm of the model: stem, blocks (expand, depthwise, project), top. */
static int model_bns(tlcl_model *m, tlcl_convbn **out, int cap)
{
    int n = 0;
    out[n++] = &m->stem;
    for (int b = 0; b < m->nblocks; b++) {
        tlcl_block *blk = &m->blocks[b];
        if (blk->has_expand && n < cap)
            out[n++] = &blk->expand;
        if (!blk->fused && n < cap)
            out[n++] = &blk->dw;
        if (n < cap)
            out[n++] = &blk->project;
    }
    if (n < cap)
        out[n++] = &m->top;
    return n;
}

static void check_arch(harness *h, const cJSON *want)
{
    const char *name = cJSON_GetObjectItemCaseSensitive(want, "name")->valuestring;
    const char *source = cJSON_GetObjectItemCaseSensitive(want, "source")->valuestring;
    cJSON *bn = cJSON_GetObjectItemCaseSensitive(want, "bn"), *blocks = cJSON_GetObjectItemCaseSensitive(want, "blocks");
    tlcl_model m;
    tlcl_model_options o = tlcl_model_options_default();
    o.arch = name;
    o.size = 64;
    o.include_top = 0;
    char err[512], what[512], first_bad[256] = "";
    if (tlcl_model_build(&m, &o, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "%s: build: %s", name, err);
        return;
    }
    tlcl_convbn *bns[512];
    int nbn = model_bns(&m, bns, 512), matched = 0, bad = 0;
    for (int i = 0; i < nbn; i++) {
        cJSON *kv = cJSON_GetObjectItemCaseSensitive(bn, bns[i]->bn_name);
        if (cJSON_GetArraySize(kv) != 2) {
            if (!bad++)
                snprintf(first_bad, sizeof first_bad, "%s: not a BatchNormalization layer of the reference",
                         bns[i]->bn_name);
            continue;
        }
        matched++;
        double mom = cJSON_GetArrayItem(kv, 0)->valuedouble, eps = cJSON_GetArrayItem(kv, 1)->valuedouble;
        if (fabs(bns[i]->bn.momentum - mom) > 1e-7 || fabs(bns[i]->bn.epsilon - eps) > 1e-9) {
            if (!bad++)
                snprintf(first_bad, sizeof first_bad, "%s: tlcl momentum %.6g epsilon %.3g, reference %.6g %.3g",
                         bns[i]->bn_name, bns[i]->bn.momentum, bns[i]->bn.epsilon, mom, eps);
        }
    }
    snprintf(what, sizeof what, "%s: %d BatchNorm layers, momentum %.4g, epsilon %.0e, each as %s (%d in the reference)%s%s",
             name, nbn, m.arch.bn_momentum, m.arch.bn_epsilon, source, cJSON_GetArraySize(bn), bad ? "; first mismatch: " : "",
             first_bad);
    harness_expect(h, !bad && matched == cJSON_GetArraySize(bn) && matched == nbn, what);

    int nref = cJSON_GetArraySize(blocks);
    double worst = 0;
    bad = 0;
    first_bad[0] = '\0';
    for (int b = 0; b < m.nblocks && b < nref; b++) {
        cJSON *rb = cJSON_GetArrayItem(blocks, b);
        const char *bname = cJSON_GetObjectItemCaseSensitive(rb, "name")->valuestring;
        int residual = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rb, "residual"));
        double rate = cJSON_GetObjectItemCaseSensitive(rb, "drop_rate")->valuedouble;
        double e = fabs(m.blocks[b].drop_rate - rate);
        worst = e > worst ? e : worst;
        if (strcmp(bname, m.blocks[b].name) != 0 || residual != m.blocks[b].residual || e > 1e-6) {
            if (!bad++)
                snprintf(first_bad, sizeof first_bad, "%s (reference %s): residual %d / %d, drop rate %.6f / %.6f",
                         m.blocks[b].name, bname, m.blocks[b].residual, residual, m.blocks[b].drop_rate, rate);
        }
    }
    snprintf(what, sizeof what,
             "%s: %d blocks (reference %d), residual flags and drop-path rates (drop_connect %.2g * b / blocks) "
             "within 1e-6 (worst %.1e)%s%s",
             name, m.nblocks, nref, m.arch.drop_connect, worst, bad ? "; first mismatch: " : "", first_bad);
    harness_expect(h, !bad && m.nblocks == nref, what);
    tlcl_model_free(&m);
}

static void test_arch_config(harness *h)
{
    char path[600];
    snprintf(path, sizeof path, "%s/keras_arch_config.json", fixture_dir());
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long n = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n > 0 && (text = calloc(1, (size_t)n + 1)) && fseek(f, 0, SEEK_SET) == 0 && fread(text, 1, (size_t)n, f) != (size_t)n) {
        free(text);
        text = NULL;
    }
    if (f)
        fclose(f);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "archs");
    if (!cJSON_IsArray(archs) || cJSON_GetArraySize(archs) == 0) {
        harness_fail(h, "cannot read %s (written by tools/make_keras_arch_fixture.py)", path);
        cJSON_Delete(root);
        return;
    }
    printf("     %s: Keras %s\n", path, cJSON_GetObjectItemCaseSensitive(root, "keras_version")->valuestring);
    int families[3] = {0};
    for (cJSON *a = archs->child; a; a = a->next) {
        const tlcl_arch *arch = tlcl_arch_find(cJSON_GetObjectItemCaseSensitive(a, "name")->valuestring);
        if (arch)
            families[arch->family]++;
        check_arch(h, a);
    }
    harness_expect(h, families[TLCL_FAMILY_V1] && families[TLCL_FAMILY_V2] && families[TLCL_FAMILY_LITE],
                   "the reference covers V1, V2 and Lite");
    cJSON_Delete(root);
}

/* ---- whole runs ------------------------------------------------------------------- */

typedef struct run_fixture {
    fixture fx;
    const char *fam;
    tlcl_arch arch;
    int size, classes, batch, steps;
    float *images;
    int *labels;
} run_fixture;

static int run_fixture_open(harness *h, run_fixture *rf, const char *fam)
{
    memset(rf, 0, sizeof *rf);
    char name[64];
    snprintf(name, sizeof name, "keras_run_%s.safetensors", fam);
    if (fixture_open(h, &rf->fx, name, "make_keras_run_fixtures.py"))
        return -1;
    rf->fam = fam;
    const fixture *fx = &rf->fx;
    rf->size = (int)fixture_meta_num(h, fx, "size"), rf->classes = (int)fixture_meta_num(h, fx, "classes");
    rf->batch = (int)fixture_meta_num(h, fx, "batch"), rf->steps = (int)fixture_meta_num(h, fx, "steps");
    rf->arch = *tlcl_arch_find(strcmp(fam, "v1") == 0 ? "efficientnet-b0" : "efficientnetv2-b0");
    snprintf(rf->arch.name, sizeof rf->arch.name, "keras-run-%s", fam);
    rf->arch.width = fixture_meta_num(h, fx, "width"), rf->arch.depth = fixture_meta_num(h, fx, "depth");
    rf->arch.nstages = (int)fixture_meta_num(h, fx, "stages");
    rf->arch.default_size = rf->size;
    rf->arch.dropout = 0.0f, rf->arch.drop_connect = 0.0f;
    size_t npix = (size_t)rf->batch * rf->size * rf->size * 3;
    double *x = npix ? fixture_need(h, fx, "input", npix) : NULL;
    double *y = rf->batch ? fixture_need(h, fx, "labels", (size_t)rf->batch) : NULL;
    if (x && y) {
        rf->images = fixture_to_float(x, npix);
        rf->labels = malloc((size_t)rf->batch * sizeof *rf->labels);
        for (int i = 0; i < rf->batch; i++)
            rf->labels[i] = (int)y[i];
    }
    free(x), free(y);
    return rf->images && rf->labels && rf->steps > 0 && rf->arch.nstages > 0 ? 0 : -1;
}

static void run_fixture_close(run_fixture *rf)
{
    fixture_close(&rf->fx);
    free(rf->images), free(rf->labels);
}

/* The fixture's init/<layer>/<var> tensors as an in-memory Keras weights
 * file (layers and their variables in the fixture's order, i.e. Keras's
 * save order), imported as a file would be. */
static int import_prefix(harness *h, tlcl_model *m, const run_fixture *rf, const char *prefix)
{
    size_t plen = strlen(prefix);
    tlcl_keras_weights *w = calloc(1, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s (%s)", rf->fx.path, prefix);
    snprintf(w->format, sizeof w->format, "fixture");
    char prev[128] = "";
    int index = 0, bad = 0;
    for (cJSON *t = fixture_first(&rf->fx); t && !bad; t = t->next) {
        const char *slash = strrchr(t->string, '/');
        if (strncmp(t->string, prefix, plen) != 0 || slash == t->string + plen - 1)
            continue;
        char layer[128], var[64];
        snprintf(layer, sizeof layer, "%.*s", (int)(slash - t->string - plen), t->string + plen);
        snprintf(var, sizeof var, "%s", slash + 1);
        index = strcmp(layer, prev) == 0 ? index + 1 : 0;
        snprintf(prev, sizeof prev, "%s", layer);
        int shape[4] = {0}, ndims = 0;
        size_t n = 0;
        double *d = fixture_get(&rf->fx, t->string, &n);
        float *f = d ? fixture_to_float(d, n) : NULL;
        free(d);
        bad = !f || fixture_shape(&rf->fx, t->string, shape, &ndims) || kw_add(w, layer, var, index, ndims, shape, f, n);
    }
    char err[1024], unused[256];
    tlcl_status s = bad ? TLCL_ERR_FORMAT : tlcl_model_import_keras(m, w, err, sizeof err);
    if (bad)
        snprintf(err, sizeof err, "%s: unreadable %s tensors", rf->fx.path, prefix);
    if (s != TLCL_OK)
        harness_fail(h, "%s: import of the %s weights: %s", rf->fam, prefix, err);
    else if (tlcl_keras_unused(w, unused, sizeof unused))
        harness_fail(h, "%s: initial weights the model did not take: %s", rf->fam, unused);
    tlcl_keras_close(w);
    return s == TLCL_OK ? 0 : -1;
}

/* Inference logits of the batch through the run layer (tlcl_run_predict). */
static float *predict_logits(harness *h, tlcl_run *r, const run_fixture *rf)
{
    tlcl_run_input in = {.images = rf->images, .count = rf->batch};
    tlcl_run_batch *b;
    tlcl_run_stats st;
    if (harness_status(h, tlcl_run_load(r, &in, NULL, &b), "load") ||
        harness_status(h, tlcl_run_predict(r, b, NULL), "predict") || harness_status(h, tlcl_run_sync(r, &st), "sync"))
        return NULL;
    return harness_download(h, tlcl_run_logits(r));
}

/* (c) The fixture's images give clearly different logits (the smallest
 * per-class standard deviation across the batch is at least 5% of the
 * largest |logit|), and tlcl's inference logits match Keras's within tol
 * of the largest: 1e-4 from the same weights (the initial ones, or Keras's
 * after the run imported); 1e-3 from tlcl's own weights after the run,
 * whose float32 differences from Keras's (about 1e-5 under RUN_TOL's
 * measure) these logits amplify to several 1e-5 of the largest. */
static void check_inference(harness *h, tlcl_run *r, const run_fixture *rf, const char *key, const char *when,
                            double tol)
{
    size_t n = (size_t)rf->batch * rf->classes;
    double *want = fixture_need(h, &rf->fx, key, n);
    float *got = want ? predict_logits(h, r, rf) : NULL;
    char what[160];
    if (got) {
        double largest = 0, spread = INFINITY;
        for (size_t i = 0; i < n; i++)
            largest = fmax(largest, fabs(want[i]));
        for (int c = 0; c < rf->classes; c++) {
            double s = 0, s2 = 0;
            for (int i = 0; i < rf->batch; i++)
                s += want[i * rf->classes + c], s2 += want[i * rf->classes + c] * want[i * rf->classes + c];
            spread = fmin(spread, sqrt(fmax(s2 / rf->batch - (s / rf->batch) * (s / rf->batch), 0)));
        }
        snprintf(what, sizeof what, "%s %s: the images' logits differ (smallest per-class std %.3f, largest |logit| %.3f)",
                 rf->fam, when, spread, largest);
        harness_expect(h, spread >= 0.05 * largest, what);
        snprintf(what, sizeof what, "%s %s: inference logits", rf->fam, when);
        harness_check(h, what, got, want, n, tol, 1e-30);
    }
    free(want), free(got);
}

/* Per-element floors: RUN_FLOOR, and for a moving mean also the channel's
 * standard deviation sqrt(Keras's moving variance) (the fixture script's
 * floors()). */
static double *floors_for(const run_fixture *rf, const char *opt, const tlcl_param_entry *e)
{
    double *fl = malloc(e->count * sizeof *fl);
    for (size_t i = 0; i < e->count; i++)
        fl[i] = RUN_FLOOR;
    size_t k = strlen(e->name);
    if (k > 12 && strcmp(e->name + k - 12, "/moving_mean") == 0) {
        char key[200];
        snprintf(key, sizeof key, "%s/%.*s/moving_variance", opt, (int)(k - 12), e->name);
        size_t n = 0;
        double *var = fixture_get(&rf->fx, key, &n);
        for (size_t i = 0; var && n == e->count && i < n; i++)
            fl[i] = fmax(fl[i], sqrt(fabs(var[i])));
        free(var);
    }
    return fl;
}

/* Every parameter after the run against <opt>/<name>; one check per tensor,
 * a summary naming the worst tensor, and every fixture tensor matched. */
static void compare_params(harness *h, tlcl_model *m, const run_fixture *rf, const char *opt)
{
    float *all = malloc(m->params.total * sizeof *all);
    if (!all || harness_status(h, tlcl_cl_read(h->cl, m->params.values, 0, m->params.total * sizeof *all, all,
                                                 "parameters"), "read parameters")) {
        free(all);
        return;
    }
    double worst = 0;
    const char *worst_name = "";
    int compared = 0, failed = 0, state = 0;
    char key[200], what[400];
    for (int i = 0; i < m->params.count; i++) {
        const tlcl_param_entry *e = &m->params.entries[i];
        snprintf(key, sizeof key, "%s/%s", opt, e->name);
        double *want = fixture_need(h, &rf->fx, key, e->count);
        if (!want) {
            failed++;
            continue;
        }
        double *fl = floors_for(rf, opt, e);
        size_t at = 0;
        double err = fixture_elementwise(all + e->offset, want, e->count, fl, 0, &at);
        compared++;
        state += e->is_state;
        if (err > worst || compared == 1)
            worst = err, worst_name = e->name;
        if (err <= RUN_TOL) {
            h->passed++;
        } else {
            failed++;
            harness_fail(h, "%s %s: %-40s n=%-5zu per-element rel.err %.2e (tol %.0e) worst [%zu] got %.9g want %.9g "
                         "(floor %.3g)", rf->fam, opt, e->name, e->count, err, RUN_TOL, at, all[e->offset + at],
                         want[at], fl[at]);
        }
        free(want), free(fl);
    }
    int in_fixture = 0;
    size_t plen = strlen(opt);
    for (cJSON *t = fixture_first(&rf->fx); t; t = t->next)
        /* variables are "<opt>/<layer>/<var>"; the run's other values have no second '/' */
        in_fixture += strncmp(t->string, opt, plen) == 0 && t->string[plen] == '/' && strchr(t->string + plen + 1, '/');
    snprintf(what, sizeof what,
             "%s %s: %d tensors after %d steps (%d of them BatchNorm/Normalization state; Keras has %d), %d outside "
             "1e-4; worst %s %.2e",
             rf->fam, opt, compared, rf->steps, state, in_fixture, failed, worst_name, worst);
    harness_expect(h, failed == 0 && compared == in_fixture && compared == m->params.count, what);
    free(all);
}

/* One optimizer's five steps from the initial weights. */
/* (3) val_loss: the run's inference pass with a focal loss (label smoothing,
 * alpha, gamma) over the fixture batch, without sample weights, against
 * what Keras's evaluate reports for the same weights and loss. */
static void check_val_loss_focal(harness *h, tlcl_model *m, const run_fixture *rf, const char *opt)
{
    char key[64], what[160], err[512];
    snprintf(key, sizeof key, "%s/val_loss_focal", opt);
    double *want = fixture_need(h, &rf->fx, key, 1);
    tlcl_loss_spec focal = tlcl_loss_spec_default();
    focal.kind = TLCL_LOSS_KIND_FOCAL;
    focal.focal_alpha = (float)fixture_meta_num(h, &rf->fx, "val_focal_alpha");
    focal.focal_gamma = (float)fixture_meta_num(h, &rf->fx, "val_focal_gamma");
    focal.label_smoothing = (float)fixture_meta_num(h, &rf->fx, "val_focal_label_smoothing");
    tlcl_run *r = NULL;
    tlcl_run_input in = {.images = rf->images, .labels = rf->labels, .count = rf->batch};
    tlcl_run_batch *b;
    tlcl_run_stats st;
    if (want && tlcl_run_create(&r, m, &focal, err, sizeof err) != TLCL_OK)
        harness_fail(h, "%s: run: %s", rf->fam, err);
    else if (want && !harness_status(h, tlcl_run_load(r, &in, NULL, &b), "load") &&
             !harness_status(h, tlcl_run_predict(r, b, NULL), "predict") &&
             !harness_status(h, tlcl_run_sync(r, &st), "sync")) {
        float got = (float)(st.loss_sum / st.samples);
        snprintf(what, sizeof what, "%s %s: val_loss with a focal loss = Keras evaluate's (%.6f vs %.6f)", rf->fam,
                 opt, got, want[0]);
        fixture_check(h, what, &got, want, 1, RUN_TOL, RUN_FLOOR);
    }
    tlcl_run_free(r);
    free(want);
}

static void run_optimizer(harness *h, const run_fixture *rf, const char *opt)
{
    double t0 = now();
    tlcl_model m;
    tlcl_model_options o = tlcl_model_options_default();
    o.custom = &rf->arch;
    o.classes = rf->classes;
    char err[512], key[64], what[160];
    tlcl_run *r = NULL;
    if (tlcl_model_build(&m, &o, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "%s: build: %s", rf->fam, err);
        return;
    }
    tlcl_loss_spec loss = tlcl_loss_spec_default();
    int bad = harness_status(h, tlcl_model_alloc(&m, h->eng, 1), "alloc") || import_prefix(h, &m, rf, "init/");
    if (!bad && tlcl_run_create(&r, &m, &loss, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "%s: run: %s", rf->fam, err);
        bad = 1;
    }
    if (bad) {
        tlcl_run_free(r);
        tlcl_model_free(&m);
        return;
    }
    tlcl_model_set_trainable(&m, 0, 0);
    if (strcmp(opt, "adam") == 0) /* once per family: the initial model's inference (c) */
        check_inference(h, r, rf, "logits_infer", "initial weights", 1e-4);

    tlcl_optimizer optim = tlcl_optimizer_default(strcmp(opt, "adam") == 0 ? TLCL_OPT_ADAM : TLCL_OPT_SGD);
    snprintf(key, sizeof key, "%s_lr", opt);
    float lr = (float)fixture_meta_num(h, &rf->fx, key);
    if (strcmp(opt, "adam") == 0)
        optim.epsilon = (float)fixture_meta_num(h, &rf->fx, "adam_epsilon");
    else
        optim.momentum = (float)fixture_meta_num(h, &rf->fx, "sgd_momentum");
    float *losses = calloc((size_t)rf->steps, sizeof *losses);
    double prev_sum = 0, prev_n = 0;
    tlcl_run_stats st = {0};
    bad = harness_status(h, tlcl_run_reset(r), "reset");
    for (int s = 0; s < rf->steps && !bad; s++) {
        tlcl_run_input in = {.images = rf->images, .labels = rf->labels, .count = rf->batch};
        tlcl_run_batch *b;
        tlcl_step_args a = {.lr = lr, .seed = (uint32_t)(s + 1), .step = s + 1};
        bad = harness_status(h, tlcl_run_load(r, &in, NULL, &b), "load") ||
              harness_status(h, tlcl_run_step(r, b, &optim, &a), "step") ||
              harness_status(h, tlcl_run_sync(r, &st), "sync");
        if (!bad) {
            losses[s] = (float)((st.loss_sum - prev_sum) / (st.samples - prev_n));
            prev_sum = st.loss_sum, prev_n = st.samples;
        }
    }
    if (!bad) {
        snprintf(what, sizeof what, "%s %s: no non-finite loss in %d steps (first bad step %ld)", rf->fam, opt,
                 rf->steps, st.nonfinite_step);
        harness_expect(h, st.nonfinite_step == -1 && optim.iterations == rf->steps, what);
        snprintf(key, sizeof key, "%s/loss", opt);
        double *want = fixture_need(h, &rf->fx, key, (size_t)rf->steps);
        snprintf(what, sizeof what, "%s %s: the loss of each of the %d steps", rf->fam, opt, rf->steps);
        if (want)
            fixture_check(h, what, losses, want, (size_t)rf->steps, RUN_TOL, RUN_FLOOR);
        free(want);
        compare_params(h, &m, rf, opt);
        snprintf(key, sizeof key, "%s/logits_infer", opt);
        snprintf(what, sizeof what, "after %d %s steps", rf->steps, opt);
        check_inference(h, r, rf, key, what, 1e-3);
        char prefix[16];
        snprintf(prefix, sizeof prefix, "%s/", opt);
        if (import_prefix(h, &m, rf, prefix) == 0) {
            snprintf(what, sizeof what, "Keras's weights after %d %s steps", rf->steps, opt);
            check_inference(h, r, rf, key, what, 1e-4);
            check_val_loss_focal(h, &m, rf, opt);
        }
    }
    free(losses);
    tlcl_run_free(r);
    tlcl_model_free(&m);
    printf("     %s %s: %.2f s\n", rf->fam, opt, now() - t0);
}

static void test_runs(harness *h, const char *fam)
{
    run_fixture rf;
    if (run_fixture_open(h, &rf, fam) == 0) {
        run_optimizer(h, &rf, "adam");
        run_optimizer(h, &rf, "sgd");
    } else if (rf.fx.header) {
        harness_fail(h, "%s: fixture %s incomplete", fam, rf.fx.path);
    }
    run_fixture_close(&rf);
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    test_arch_config(&h);
    test_runs(&h, "v1");
    test_runs(&h, "v2");
    return harness_finish(&h);
}
