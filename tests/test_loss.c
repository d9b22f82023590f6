/* test_loss.c — the loss, dropout and optimizer kernels against the double
 * references of ref_loss.c: softmax cross-entropy and focal loss (values,
 * per-sample losses, logits gradients) over class counts, batch sizes,
 * sample weights and label smoothing; dropout and drop-path masks
 * (statistics, exact scaling, forward = backward mask, seeding, aliasing);
 * several steps of every optimizer on a parameter store with frozen and
 * state entries, with clipping on and off, and NaN-loss skipping. */
#include "harness.h"
#include "ref_loss.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every tensor is compared entry by entry (harness_close): within a
 * relative tolerance of each entry plus an absolute floor for entries near
 * zero, which is kept below what a wrong small entry would cost. ATOL: the
 * losses, probabilities and logits gradients, whose float rounding stays
 * below 1e-10 (7e-11 at most seen); label smoothing's ls / C at 1000
 * classes, 1e-4, taken as ls / (C - 1) moves the gradient of every wrong
 * class by 1e-7 / N. OPT_ATOL: the change of a value near 1 after three
 * updates, measured as a float difference (a few ulps of 1: 1.2e-7 seen);
 * MOMENT_ATOL: Adam's and momentum's m and v (7e-9 seen). */
#define ATOL 1e-9
#define OPT_ATOL 1e-6
#define MOMENT_ATOL 1e-7

/* Counts one exact (non-tolerance) check. */
static void check_true(harness *h, int ok, const char *what)
{
    if (ok) {
        h->passed++;
        printf("ok   %s\n", what);
    } else {
        harness_fail(h, "%s", what);
    }
}

static cl_mem upload_labels(harness *h, const int *labels, int N)
{
    cl_mem m = NULL;
    if (harness_status(h, tlcl_cl_buffer(h->cl, (size_t)N * sizeof(int), "labels", &m), "labels") == 0)
        harness_status(h, tlcl_cl_write(h->cl, m, 0, (size_t)N * sizeof(int), labels, "labels"), "labels");
    return m;
}

/* ---- losses -------------------------------------------------------------- */

typedef struct loss_cfg {
    int N, C, focal, weighted, class_alpha;
    int divisor; /* 0: the batch's N; else a global batch's size (a data-parallel slice) */
    float ls, gamma;
} loss_cfg;

typedef struct loss_data {
    float *z, *w, *alpha;
    int *labels;
    double *dz, *ref_dz, *ref_w, *ref_alpha, ref_per[8], ref_loss;
} loss_data;

static void loss_data_make(harness *h, const loss_cfg *k, loss_data *d)
{
    size_t nz = (size_t)k->N * k->C;
    d->z = malloc(nz * sizeof *d->z);
    d->w = malloc((size_t)k->N * sizeof *d->w);
    d->alpha = malloc((size_t)k->C * sizeof *d->alpha);
    d->labels = malloc((size_t)k->N * sizeof *d->labels);
    harness_fill(h, d->z, nz, -4, 4);
    harness_fill(h, d->w, (size_t)k->N, 0.2f, 2.0f);
    harness_fill(h, d->alpha, (size_t)k->C, 0.1f, 1.0f);
    for (int i = 0; i < k->N; i++)
        d->labels[i] = (int)harness_uniform(h, 0, (float)k->C) % k->C;
    d->dz = harness_to_double(d->z, nz);
    d->ref_w = harness_to_double(d->w, (size_t)k->N);
    d->ref_alpha = harness_to_double(d->alpha, (size_t)k->C);
    d->ref_dz = malloc(nz * sizeof *d->ref_dz);
    const double *w = k->weighted ? d->ref_w : NULL;
    d->ref_loss = k->focal ? ref_focal_loss(k->N, k->C, d->dz, d->labels, w, k->ls,
                                            k->class_alpha ? d->ref_alpha : NULL, 0.25, k->gamma, d->ref_per,
                                            d->ref_dz)
                           : ref_softmax_xent(k->N, k->C, d->dz, d->labels, w, k->ls, d->ref_per, d->ref_dz);
    if (k->divisor) { /* the reference divides by N; a slice of a global batch divides by its size */
        double slice = (double)k->N / k->divisor;
        d->ref_loss *= slice;
        for (size_t i = 0; i < nz; i++)
            d->ref_dz[i] *= slice;
    }
}

static void loss_data_free(loss_data *d)
{
    free(d->z), free(d->w), free(d->alpha), free(d->labels), free(d->dz), free(d->ref_dz), free(d->ref_w),
        free(d->ref_alpha);
}

static tlcl_status run_loss(harness *h, const loss_cfg *k, tlcl_tensor *loss, tlcl_tensor *per, tlcl_tensor *dz,
                            const tlcl_tensor *z, cl_mem labels, const tlcl_tensor *w, const tlcl_tensor *alpha)
{
    const tlcl_tensor *wt = k->weighted ? w : NULL;
    if (k->focal)
        return tlcl_focal_loss(h->eng, loss, per, dz, z, labels, wt, k->ls, k->class_alpha ? alpha : NULL, 0.25f,
                               k->gamma, k->divisor);
    return tlcl_softmax_xent(h->eng, loss, per, dz, z, labels, wt, k->ls, k->divisor);
}

static void check_loss_case(harness *h, const loss_cfg *k)
{
    loss_data d;
    loss_data_make(h, k, &d);
    tlcl_tensor z = harness_tensor(h, "logits", k->N, 1, 1, k->C, d.z);
    tlcl_tensor w = harness_tensor(h, "weights", k->N, 1, 1, 1, d.w);
    tlcl_tensor alpha = harness_tensor(h, "alpha", k->C, 1, 1, 1, d.alpha);
    tlcl_tensor loss = harness_tensor(h, "loss", 1, 1, 1, 1, NULL);
    tlcl_tensor per = harness_tensor(h, "per-sample", k->N, 1, 1, 1, NULL);
    tlcl_tensor dz = harness_tensor(h, "dlogits", k->N, 1, 1, k->C, NULL);
    cl_mem labels = upload_labels(h, d.labels, k->N);
    char what[160];
    snprintf(what, sizeof what, "%s N=%d C=%d w=%d ls=%g%s", k->focal ? "focal" : "xent", k->N, k->C, k->weighted,
             k->ls, k->focal ? (k->class_alpha ? " alpha=[C]" : " alpha=.25") : "");
    if (k->focal)
        snprintf(what + strlen(what), sizeof what - strlen(what), " g=%g", k->gamma);
    if (k->divisor)
        snprintf(what + strlen(what), sizeof what - strlen(what), " /%d", k->divisor);
    if (!harness_status(h, run_loss(h, k, &loss, &per, &dz, &z, labels, &w, &alpha), what)) {
        float *gl = harness_download(h, &loss), *gp = harness_download(h, &per), *gz = harness_download(h, &dz);
        char sub[200];
        snprintf(sub, sizeof sub, "%s loss", what);
        harness_close(h, sub, gl, &d.ref_loss, 1, 1e-4, ATOL);
        snprintf(sub, sizeof sub, "%s per-sample", what);
        harness_close(h, sub, gp, d.ref_per, (size_t)k->N, 1e-4, ATOL);
        snprintf(sub, sizeof sub, "%s dlogits", what);
        harness_close(h, sub, gz, d.ref_dz, (size_t)k->N * k->C, 1e-3, ATOL);
        free(gl), free(gp), free(gz);
    }
    /* loss only: the per-sample buffer comes from the pool */
    if (!harness_status(h, run_loss(h, k, &loss, NULL, NULL, &z, labels, &w, &alpha), what)) {
        float *gl = harness_download(h, &loss);
        char sub[200];
        snprintf(sub, sizeof sub, "%s loss only", what);
        harness_close(h, sub, gl, &d.ref_loss, 1, 1e-4, ATOL);
        free(gl);
    }
    tlcl_tensor *all[] = {&z, &w, &alpha, &loss, &per, &dz};
    for (int i = 0; i < 6; i++)
        tlcl_tensor_release(h->eng, all[i]);
    clReleaseMemObject(labels);
    loss_data_free(&d);
}

static void test_losses(harness *h)
{
    static const int Cs[] = {2, 3, 10, 1000}, Ns[] = {1, 5};
    int variant = 0;
    for (int ci = 0; ci < 4; ci++)
        for (int ni = 0; ni < 2; ni++)
            for (int v = 0; v < 4; v++, variant++)
                for (int focal = 0; focal < 2; focal++) {
                    loss_cfg k = {.N = Ns[ni], .C = Cs[ci], .focal = focal, .weighted = v & 1,
                                  .ls = (v & 2) ? 0.1f : 0.0f, .class_alpha = variant & 1,
                                  .gamma = (variant & 2) ? 0.0f : 2.0f,
                                  .divisor = (ni == 1 && (variant & 4)) ? 12 : 0};
                    check_loss_case(h, &k);
                }
}

static void test_softmax(harness *h)
{
    static const int Cs[] = {3, 1000};
    for (int ci = 0; ci < 2; ci++) {
        int N = 4, C = Cs[ci];
        size_t n = (size_t)N * C;
        float *z = malloc(n * sizeof *z);
        harness_fill(h, z, n, -10, 10);
        double *dz = harness_to_double(z, n), *ref = malloc(n * sizeof *ref);
        ref_softmax(N, C, dz, ref);
        tlcl_tensor tz = harness_tensor(h, "logits", N, 1, 1, C, z), tp = harness_tensor(h, "probs", N, 1, 1, C, NULL);
        if (!harness_status(h, tlcl_softmax_forward(h->eng, &tp, &tz), "softmax")) {
            float *got = harness_download(h, &tp);
            char what[64];
            snprintf(what, sizeof what, "softmax N=%d C=%d", N, C);
            harness_close(h, what, got, ref, n, 1e-4, ATOL);
            free(got);
        }
        tlcl_tensor_release(h->eng, &tz), tlcl_tensor_release(h->eng, &tp);
        free(z), free(dz), free(ref);
    }
}

/* Saturated logits: float softmax gives p = 1 and p < 1e-7, so the focal
 * clip is active (zero gradient there) and cross-entropy must stay finite. */
static void test_saturated(harness *h)
{
    float z[6] = {25, 0, -3, 80, -80, 0};
    int labels[2] = {0, 1};
    double dz[6], ref_dz[6], ref_loss;
    for (int i = 0; i < 6; i++)
        dz[i] = z[i];
    tlcl_tensor tz = harness_tensor(h, "logits", 2, 1, 1, 3, z), loss = harness_tensor(h, "loss", 1, 1, 1, 1, NULL);
    tlcl_tensor g = harness_tensor(h, "dlogits", 2, 1, 1, 3, NULL);
    cl_mem lab = upload_labels(h, labels, 2);
    for (int focal = 0; focal < 2; focal++) {
        const char *name = focal ? "focal saturated, ls 0.1" : "xent saturated, ls 0.1";
        ref_loss = focal ? ref_focal_loss(2, 3, dz, labels, NULL, 0.1, NULL, 0.25, 2.0, NULL, ref_dz)
                         : ref_softmax_xent(2, 3, dz, labels, NULL, 0.1, NULL, ref_dz);
        tlcl_status st = focal ? tlcl_focal_loss(h->eng, &loss, NULL, &g, &tz, lab, NULL, 0.1f, NULL, 0.25f, 2.0f, 0)
                               : tlcl_softmax_xent(h->eng, &loss, NULL, &g, &tz, lab, NULL, 0.1f, 0);
        if (harness_status(h, st, name))
            continue;
        float *gl = harness_download(h, &loss), *gz = harness_download(h, &g);
        char what[96];
        snprintf(what, sizeof what, "%s loss", name);
        harness_close(h, what, gl, &ref_loss, 1, 1e-4, ATOL);
        snprintf(what, sizeof what, "%s dlogits", name);
        harness_close(h, what, gz, ref_dz, 6, 1e-3, ATOL);
        free(gl), free(gz);
    }
    tlcl_tensor_release(h->eng, &tz), tlcl_tensor_release(h->eng, &loss), tlcl_tensor_release(h->eng, &g);
    clReleaseMemObject(lab);
}

/* A label outside [0, C) poisons the loss with NaN (so the step is skipped);
 * bad arguments are refused with TLCL_ERR_ARG. */
static void test_bad_label(harness *h)
{
    float z[6] = {1, 2, 3, 4, 5, 6};
    int labels[2] = {1, 3};
    tlcl_tensor tz = harness_tensor(h, "logits", 2, 1, 1, 3, z), loss = harness_tensor(h, "loss", 1, 1, 1, 1, NULL);
    cl_mem lab = upload_labels(h, labels, 2);
    if (!harness_status(h, tlcl_softmax_xent(h->eng, &loss, NULL, NULL, &tz, lab, NULL, 0, 0), "bad label")) {
        float *got = harness_download(h, &loss);
        check_true(h, isnan(got[0]), "an out-of-range label gives a NaN loss");
        free(got);
    }
    cl_mem short_labels = upload_labels(h, labels, 1);
    check_true(h, tlcl_softmax_xent(h->eng, &loss, NULL, NULL, &tz, short_labels, NULL, 0, 0) == TLCL_ERR_ARG,
               "a labels buffer shorter than the batch is refused");
    check_true(h, tlcl_softmax_xent(h->eng, &loss, NULL, NULL, &tz, lab, NULL, 0, 1) == TLCL_ERR_ARG,
               "a divisor below the batch size is refused");
    check_true(h, tlcl_dropout_forward(h->eng, &tz, &tz, 1.0f, 1, 0) == TLCL_ERR_ARG, "dropout rate 1 is refused");
    tlcl_tensor_release(h->eng, &tz), tlcl_tensor_release(h->eng, &loss);
    clReleaseMemObject(lab), clReleaseMemObject(short_labels);
}

/* ---- dropout and drop-path ---------------------------------------------- */

/* Runs one forward or backward (per_sample: drop-path) on x into y. */
static tlcl_status run_drop(harness *h, int per_sample, int backward, tlcl_tensor *y, const tlcl_tensor *x,
                            float rate, uint32_t seed)
{
    if (per_sample)
        return backward ? tlcl_drop_path_backward(h->eng, y, x, rate, seed, 0)
                        : tlcl_drop_path_forward(h->eng, y, x, rate, seed, 0);
    return backward ? tlcl_dropout_backward(h->eng, y, x, rate, seed, 0)
                    : tlcl_dropout_forward(h->eng, y, x, rate, seed, 0);
}

/* y = drop(x) downloaded; NULL on failure. */
static float *drop_once(harness *h, int per_sample, int backward, const float *x, int N, int S, float rate,
                        uint32_t seed)
{
    tlcl_tensor tx = harness_tensor(h, "x", N, 1, 1, S, x), ty = harness_tensor(h, "y", N, 1, 1, S, NULL);
    float *y = NULL;
    if (!harness_status(h, run_drop(h, per_sample, backward, &ty, &tx, rate, seed), "dropout"))
        y = harness_download(h, &ty);
    tlcl_tensor_release(h->eng, &tx), tlcl_tensor_release(h->eng, &ty);
    return y;
}

/* keep[k] from y != 0 over groups of `group` elements; 0 when a group is
 * mixed (drop-path must be all-or-nothing per sample). */
static int mask_of(const float *y, size_t n, size_t group, unsigned char *keep)
{
    int consistent = 1;
    for (size_t k = 0; k < n / group; k++) {
        keep[k] = y[k * group] != 0.0f;
        for (size_t j = 1; j < group; j++)
            consistent &= (y[k * group + j] != 0.0f) == keep[k];
    }
    return consistent;
}

static void test_drop_kind(harness *h, int per_sample, int N, int S, float rate)
{
    const char *name = per_sample ? "drop-path" : "dropout";
    size_t n = (size_t)N * S, group = per_sample ? (size_t)S : 1, nkeys = n / group;
    float *x = malloc(n * sizeof *x), scale = 1.0f / (1.0f - rate);
    harness_fill(h, x, n, 0.5f, 1.5f); /* never 0, so y != 0 is the mask */
    float *y = drop_once(h, per_sample, 0, x, N, S, rate, 1234u), *dx = drop_once(h, per_sample, 1, x, N, S, rate, 1234u);
    float *y_same = drop_once(h, per_sample, 0, x, N, S, rate, 1234u), *y_other = drop_once(h, per_sample, 0, x, N, S, rate, 99u);
    if (!y || !dx || !y_same || !y_other)
        goto done;
    unsigned char *keep = malloc(nkeys), *keep_b = malloc(nkeys), *keep_o = malloc(nkeys);
    char what[128];
    snprintf(what, sizeof what, "%s all-or-nothing per %s", name, per_sample ? "sample" : "element");
    check_true(h, mask_of(y, n, group, keep) & mask_of(dx, n, group, keep_b) & mask_of(y_other, n, group, keep_o), what);
    size_t kept = 0, differ = 0;
    int exact = 1;
    for (size_t k = 0; k < nkeys; k++)
        kept += keep[k], differ += keep[k] != keep_o[k];
    for (size_t i = 0; i < n; i++)
        exact &= y[i] == (keep[i / group] ? x[i] * scale : 0.0f);
    double frac = (double)kept / nkeys, sd = sqrt(rate * (1.0 - rate) / nkeys);
    snprintf(what, sizeof what, "%s rate %g: kept %.4f of %zu, want %.4f +- 5 sd (%.4f)", name, rate, frac, nkeys,
             1.0 - rate, 5 * sd);
    check_true(h, fabs(frac - (1.0 - rate)) <= 5 * sd, what);
    snprintf(what, sizeof what, "%s kept values are exactly x / (1 - rate) in float", name);
    check_true(h, exact, what);
    snprintf(what, sizeof what, "%s backward mask and values equal forward", name);
    check_true(h, memcmp(keep, keep_b, nkeys) == 0 && memcmp(y, dx, n * sizeof *y) == 0, what);
    snprintf(what, sizeof what, "%s same seed, same output; other seed: %zu of %zu keys differ", name, differ, nkeys);
    check_true(h, memcmp(y, y_same, n * sizeof *y) == 0 && differ > nkeys / 10, what);
    double *dxd = harness_to_double(x, n), *ref = malloc(n * sizeof *ref);
    ref_dropout(n, group, dxd, keep, rate, ref);
    snprintf(what, sizeof what, "%s vs reference given the mask", name);
    harness_close(h, what, y, ref, n, 1e-6, ATOL);
    free(keep), free(keep_b), free(keep_o), free(dxd), free(ref);
done:
    free(x), free(y), free(dx), free(y_same), free(y_other);
}

/* out aliasing in gives the out-of-place result; rate 0 is the identity. */
static void test_drop_alias(harness *h, int per_sample)
{
    int N = 8, S = 64;
    size_t n = (size_t)N * S;
    float *x = malloc(n * sizeof *x);
    harness_fill(h, x, n, -1, 1);
    float *want = drop_once(h, per_sample, 0, x, N, S, 0.5f, 7u), *ident = drop_once(h, per_sample, 0, x, N, S, 0.0f, 7u);
    tlcl_tensor t = harness_tensor(h, "x", N, 1, 1, S, x);
    const char *name = per_sample ? "drop-path" : "dropout";
    char what[96];
    if (want && ident && !harness_status(h, run_drop(h, per_sample, 0, &t, &t, 0.5f, 7u), "in place")) {
        float *got = harness_download(h, &t);
        snprintf(what, sizeof what, "%s in place equals out of place", name);
        check_true(h, memcmp(got, want, n * sizeof *got) == 0, what);
        snprintf(what, sizeof what, "%s rate 0 is the identity", name);
        check_true(h, memcmp(ident, x, n * sizeof *x) == 0, what);
        free(got);
    }
    tlcl_tensor_release(h->eng, &t);
    free(x), free(want), free(ident);
}

/* The fused end of a residual block: shortcut + drop_path(branch) against
 * drop_path (its mask checked above) plus the shortcut added here in
 * double; rate 0 is the plain sum. */
static void test_drop_path_add(harness *h, int N, int S, float rate)
{
    size_t n = (size_t)N * S;
    float *x = malloc(n * sizeof *x), *sc = malloc(n * sizeof *sc);
    harness_fill(h, x, n, -1, 1);
    harness_fill(h, sc, n, -2, 2);
    float *dropped = drop_once(h, 1, 0, x, N, S, rate, 5u);
    tlcl_tensor tx = harness_tensor(h, "branch", N, 1, 1, S, x), ts = harness_tensor(h, "shortcut", N, 1, 1, S, sc);
    tlcl_tensor out = harness_tensor(h, "out", N, 1, 1, S, NULL);
    char what[96];
    snprintf(what, sizeof what, "drop-path + add %dx%d rate %g", N, S, rate);
    if (dropped && !harness_status(h, tlcl_drop_path_add_forward(h->eng, &out, &tx, &ts, rate, 5u, 0), what)) {
        float *got = harness_download(h, &out);
        double *ref = malloc(n * sizeof *ref);
        for (size_t i = 0; i < n; i++)
            ref[i] = (double)dropped[i] + (double)sc[i];
        harness_close(h, what, got, ref, n, 1e-6, ATOL);
        free(got), free(ref);
    }
    tlcl_tensor_release(h->eng, &tx), tlcl_tensor_release(h->eng, &ts), tlcl_tensor_release(h->eng, &out);
    free(x), free(sc), free(dropped);
}

static void test_dropout(harness *h)
{
    /* 65536 elements; 16384 under the (slow) oclgrind simulator, where the
     * kept fraction is still checked to within 5 sd (0.018) */
    const char *platform = getenv("TLCL_TEST_PLATFORM");
    test_drop_kind(h, 0, 16, platform && strstr(platform, "oclgrind") ? 1024 : 4096, 0.3f);
    test_drop_kind(h, 0, 4, 1024, 0.8f);
    test_drop_kind(h, 1, 512, 32, 0.25f); /* 512 samples */
    test_drop_kind(h, 1, 256, 8, 0.1f);
    test_drop_alias(h, 0);
    test_drop_alias(h, 1);
    test_drop_path_add(h, 64, 32, 0.3f); /* whole vectors per sample */
    test_drop_path_add(h, 16, 5, 0.5f);  /* one element at a time */
    test_drop_path_add(h, 4, 16, 0.0f);
}

/* ---- optimizers ---------------------------------------------------------- */

#define OPT_TENSORS 6
#define OPT_STEPS 3

/* Entries: two contiguous trainable ones, a state, a frozen one, then two
 * trainable ones again (so the update runs over two ranges; the second is
 * large enough for several partial sums in the global norm). */
static const struct {
    const char *name;
    int n, c, is_state, frozen;
} opt_layout[OPT_TENSORS] = {
    {"stem/kernel", 18, 4, 0, 0}, {"stem/bias", 1, 4, 0, 0},  {"bn/moving_mean", 1, 6, 1, 0},
    {"frozen/kernel", 5, 7, 0, 1}, {"head/kernel", 50, 90, 0, 0}, {"head/bias", 1, 90, 0, 0},
};

typedef struct opt_world {
    tlcl_params p;
    float *theta0[OPT_TENSORS];                          /* initial values */
    double *theta[OPT_TENSORS], *m[OPT_TENSORS], *v[OPT_TENSORS]; /* the reference's */
} opt_world;

static size_t opt_count(int t) { return (size_t)opt_layout[t].n * opt_layout[t].c; }

static int opt_world_make(harness *h, opt_world *w)
{
    memset(w, 0, sizeof *w);
    tlcl_params_init(&w->p);
    for (int t = 0; t < OPT_TENSORS; t++) {
        tlcl_params_declare(&w->p, opt_layout[t].name, opt_layout[t].n, 1, 1, opt_layout[t].c, opt_layout[t].is_state);
        if (opt_layout[t].frozen)
            w->p.entries[t].trainable = 0;
    }
    if (harness_status(h, tlcl_params_alloc(h->eng, &w->p), "params alloc"))
        return 0;
    for (int t = 0; t < OPT_TENSORS; t++) {
        size_t n = opt_count(t);
        w->theta0[t] = malloc(n * sizeof(float));
        harness_fill(h, w->theta0[t], n, -1, 1);
        w->theta[t] = harness_to_double(w->theta0[t], n);
        w->m[t] = calloc(n, sizeof(double));
        w->v[t] = calloc(n, sizeof(double));
        if (harness_status(h, tlcl_tensor_upload(h->eng, tlcl_params_value(&w->p, t), w->theta0[t]), "upload"))
            return 0;
    }
    return 1;
}

static void opt_world_free(harness *h, opt_world *w)
{
    tlcl_params_free(h->eng, &w->p);
    for (int t = 0; t < OPT_TENSORS; t++)
        free(w->theta0[t]), free(w->theta[t]), free(w->m[t]), free(w->v[t]);
}

/* New random gradients for every tensor (frozen and state too: the
 * optimizer must ignore them); returns the reference clip factor. */
static double opt_grads(harness *h, opt_world *w, double **g, double clip)
{
    const double *tg[OPT_TENSORS];
    size_t tn[OPT_TENSORS];
    int nt = 0;
    for (int t = 0; t < OPT_TENSORS; t++) {
        size_t n = opt_count(t);
        float *gf = malloc(n * sizeof *gf);
        harness_fill(h, gf, n, -1, 1);
        harness_status(h, tlcl_tensor_upload(h->eng, tlcl_params_grad(&w->p, t), gf), "grad upload");
        free(g[t]);
        g[t] = harness_to_double(gf, n);
        free(gf);
        if (w->p.entries[t].trainable)
            tg[nt] = g[t], tn[nt++] = n;
    }
    return clip > 0 ? ref_clip_factor(nt, tg, tn, clip) : 1.0;
}

/* Compares values (as the change from the start, so the test sees the
 * update rather than theta), and m / v, per trainable tensor; frozen and
 * state tensors must be bit-for-bit unchanged. */
static void opt_compare(harness *h, opt_world *w, const char *name, int adam, int momentum)
{
    for (int t = 0; t < OPT_TENSORS; t++) {
        size_t n = opt_count(t), off = w->p.entries[t].offset;
        float *got = harness_download(h, tlcl_params_value(&w->p, t)), *gm = malloc(n * sizeof *gm),
              *gv = malloc(n * sizeof *gv);
        char what[160];
        if (!w->p.entries[t].trainable) {
            snprintf(what, sizeof what, "%s: %s unchanged", name, opt_layout[t].name);
            check_true(h, memcmp(got, w->theta0[t], n * sizeof *got) == 0, what);
            free(got), free(gm), free(gv);
            continue;
        }
        double *dref = malloc(n * sizeof *dref);
        for (size_t i = 0; i < n; i++)
            dref[i] = w->theta[t][i] - w->theta0[t][i], got[i] -= w->theta0[t][i];
        snprintf(what, sizeof what, "%s: %s change", name, opt_layout[t].name);
        harness_close(h, what, got, dref, n, 1e-4, OPT_ATOL);
        harness_status(h, tlcl_cl_read(h->cl, w->p.m, off * sizeof(float), n * sizeof(float), gm, "m"), "read m");
        harness_status(h, tlcl_cl_read(h->cl, w->p.v, off * sizeof(float), n * sizeof(float), gv, "v"), "read v");
        snprintf(what, sizeof what, "%s: %s m", name, opt_layout[t].name);
        if (adam || momentum)
            harness_close(h, what, gm, w->m[t], n, 1e-4, MOMENT_ATOL);
        snprintf(what, sizeof what, "%s: %s v", name, opt_layout[t].name);
        if (adam)
            harness_close(h, what, gv, w->v[t], n, 1e-4, MOMENT_ATOL);
        free(got), free(gm), free(gv), free(dref);
    }
}

/* clip_active: whether the reference clip factor must drop below 1 at some
 * step (so the clipping case really clips and the inactive one does not). */
static void test_optimizer(harness *h, const char *name, tlcl_optimizer o, float lr0, int clip_active)
{
    opt_world w;
    double *g[OPT_TENSORS] = {0};
    if (opt_world_make(h, &w)) {
        ref_opt r = {.type = o.type == TLCL_OPT_SGD ? REF_SGD : REF_ADAM, .beta1 = o.beta1, .beta2 = o.beta2,
                     .epsilon = o.epsilon, .momentum = o.momentum, .weight_decay = o.weight_decay,
                     .nesterov = o.nesterov};
        double min_factor = 1;
        for (int s = 0; s < OPT_STEPS; s++) {
            float lr = lr0 * (1.0f - 0.2f * s); /* as a schedule would */
            double f = opt_grads(h, &w, g, o.clip_global_norm);
            min_factor = f < min_factor ? f : min_factor;
            if (harness_status(h, tlcl_optimizer_step(h->eng, &o, &w.p, lr, NULL), name))
                break;
            for (int t = 0; t < OPT_TENSORS; t++)
                if (w.p.entries[t].trainable)
                    ref_opt_update(&r, opt_count(t), w.theta[t], g[t], w.m[t], w.v[t], lr, s + 1, f);
        }
        char what[128];
        snprintf(what, sizeof what, "%s: iterations %ld, clip factor %s (min %.3f)", name, o.iterations,
                 min_factor < 1 ? "active" : "inactive", min_factor);
        check_true(h, o.iterations == OPT_STEPS && (min_factor < 1) == clip_active, what);
        opt_compare(h, &w, name, r.type == REF_ADAM, o.momentum != 0);
    }
    for (int t = 0; t < OPT_TENSORS; t++)
        free(g[t]);
    opt_world_free(h, &w);
}

/* A NaN or Inf in the loss buffer the optimizer is given (the run's
 * guard) leaves values and moments untouched; a finite one lets the update
 * through. */
static void test_nonfinite_skip(harness *h)
{
    opt_world w;
    double *g[OPT_TENSORS] = {0};
    tlcl_tensor loss = harness_tensor(h, "loss", 1, 1, 1, 1, NULL);
    if (opt_world_make(h, &w)) {
        tlcl_optimizer o = tlcl_optimizer_default(TLCL_OPT_ADAMW);
        o.clip_global_norm = 1.0f;
        float bad[2] = {NAN, INFINITY};
        for (int k = 0; k < 2; k++) {
            opt_grads(h, &w, g, 0);
            harness_status(h, tlcl_tensor_upload(h->eng, &loss, &bad[k]), "loss upload");
            harness_status(h, tlcl_optimizer_step(h->eng, &o, &w.p, 0.01f, &loss), "step");
        }
        opt_compare(h, &w, "non-finite loss: update skipped", 1, 1); /* reference: no update */
        float fine = 2.5f;
        harness_status(h, tlcl_tensor_upload(h->eng, &loss, &fine), "loss upload");
        harness_status(h, tlcl_optimizer_step(h->eng, &o, &w.p, 0.01f, &loss), "step");
        float *got = harness_download(h, tlcl_params_value(&w.p, 0));
        check_true(h, memcmp(got, w.theta0[0], opt_count(0) * sizeof *got) != 0, "finite loss: update applied");
        free(got);
    }
    for (int t = 0; t < OPT_TENSORS; t++)
        free(g[t]);
    tlcl_tensor_release(h->eng, &loss);
    opt_world_free(h, &w);
}

static void test_optimizers(harness *h)
{
    tlcl_optimizer sgd = tlcl_optimizer_default(TLCL_OPT_SGD), o;
    test_optimizer(h, "sgd", sgd, 0.1f, 0);
    o = sgd, o.momentum = 0.9f;
    test_optimizer(h, "sgd momentum", o, 0.1f, 0);
    o.nesterov = 1, o.weight_decay = 0.01f;
    test_optimizer(h, "sgd nesterov + weight decay", o, 0.1f, 0);
    o = sgd, o.momentum = 0.5f, o.clip_global_norm = 1.0f;
    test_optimizer(h, "sgd momentum, clip 1 (active)", o, 0.1f, 1);
    tlcl_optimizer adam = tlcl_optimizer_default(TLCL_OPT_ADAM);
    test_optimizer(h, "adam", adam, 0.01f, 0);
    o = adam, o.weight_decay = 0.1f;
    test_optimizer(h, "adam + weight decay 0.1", o, 0.01f, 0);
    tlcl_optimizer adamw = tlcl_optimizer_default(TLCL_OPT_ADAMW);
    check_true(h, adamw.weight_decay == 0.004f && adamw.epsilon == 1e-7f && adamw.beta2 == 0.999f,
               "adamw defaults (wd 0.004, eps 1e-7, betas .9/.999)");
    test_optimizer(h, "adamw", adamw, 0.01f, 0);
    o = adamw, o.clip_global_norm = 0.5f;
    test_optimizer(h, "adamw clip 0.5 (active)", o, 0.01f, 1);
    o = adamw, o.clip_global_norm = 100.0f;
    test_optimizer(h, "adamw clip 100 (inactive)", o, 0.01f, 0);
    test_nonfinite_skip(h);
}

/* The run counters (engine/counters.c) over two batches against a host
 * tally: Kahan sums of w_i l_i, w_i [argmax = label], w_i and N, the
 * confusion counts, the guard and the first non-finite step (the second
 * batch holds an Inf loss; an inference batch never raises the guard). */
static void test_counters(harness *h)
{
    enum { N = 37, C = 7 };
    float z[N * C], per[N], w[N], got_sums[TLCL_CNT_SLOTS], conf[C * C];
    int labels[N], bad = 0;
    harness_fill(h, z, N * C, -4, 4);
    harness_fill(h, per, N, 0, 3);
    harness_fill(h, w, N, 0.5f, 2);
    double loss = 0, hits = 0, weight = 0, ref_conf[C * C] = {0};
    for (int i = 0; i < N; i++) {
        labels[i] = (i * 5) % C;
        int best = 0;
        for (int c = 1; c < C; c++)
            best = z[i * C + c] > z[i * C + best] ? c : best;
        loss += 2.0 * w[i] * per[i], hits += 2.0 * w[i] * (best == labels[i]), weight += 2.0 * w[i];
        ref_conf[labels[i] * C + best] += 2;
    }
    tlcl_tensor tz = harness_tensor(h, "logits", N, 1, 1, C, z), tp = harness_tensor(h, "per", N, 1, 1, 1, per);
    tlcl_tensor tw = harness_tensor(h, "w", N, 1, 1, 1, w), tl = harness_tensor(h, "labels", N, 1, 1, 1, NULL);
    tlcl_tensor sums = harness_tensor(h, "sums", 1, 1, 1, TLCL_CNT_SLOTS, NULL);
    tlcl_tensor cm = harness_tensor(h, "confusion", 1, 1, C, C, NULL), step = harness_tensor(h, "step", 1, 1, 1, 1, NULL);
    int none = -1;
    float inf = INFINITY;
    int ok = !harness_status(h, tlcl_cl_write(h->cl, tl.buf, 0, sizeof labels, labels, "labels"), "labels") &&
             !harness_status(h, tlcl_cl_write(h->cl, step.buf, 0, sizeof none, &none, "step"), "step") &&
             !harness_status(h, tlcl_tensor_fill(h->eng, &sums, 0), "fill") &&
             !harness_status(h, tlcl_tensor_fill(h->eng, &cm, 0), "fill");
    for (int b = 0; ok && b < 2; b++)
        ok = !harness_status(h, tlcl_counters_add(h->eng, &sums, &cm, step.buf, &tz, &tp, tl.buf, &tw, 4 + b), "add");
    ok = ok && !harness_status(h, tlcl_cl_read(h->cl, sums.buf, 0, sizeof got_sums, got_sums, "sums"), "read") &&
         !harness_status(h, tlcl_cl_read(h->cl, cm.buf, 0, sizeof conf, conf, "cm"), "read") &&
         !harness_status(h, tlcl_cl_read(h->cl, step.buf, 0, sizeof bad, &bad, "step"), "read");
    if (ok) {
        const float *g = got_sums;
        int conf_ok = 1;
        for (int k = 0; k < C * C; k++)
            conf_ok &= conf[k] == ref_conf[k];
        double gl = (double)g[TLCL_CNT_LOSS] - g[TLCL_CNT_LOSS + 1], gh = (double)g[TLCL_CNT_HITS] - g[TLCL_CNT_HITS + 1];
        double gw = (double)g[TLCL_CNT_WEIGHT] - g[TLCL_CNT_WEIGHT + 1];
        check_true(h, fabs(gl - loss) <= 1e-5 * loss && fabs(gh - hits) <= 1e-5 * weight &&
                          fabs(gw - weight) <= 1e-5 * weight && g[TLCL_CNT_SAMPLES] == 2 * N && conf_ok &&
                          g[TLCL_CNT_GUARD] == 0 && bad == -1,
                   "counters: loss, hits, weight, samples and confusion of two batches");
    }
    /* an Inf loss at step 9 raises the guard and records 9; a later one keeps 9 */
    per[3] = inf;
    ok = ok && !harness_status(h, tlcl_tensor_upload(h->eng, &tp, per), "per");
    for (long st = 9; ok && st <= 10; st++)
        ok = !harness_status(h, tlcl_counters_add(h->eng, &sums, &cm, step.buf, &tz, &tp, tl.buf, &tw, st), "add");
    ok = ok && !harness_status(h, tlcl_counters_add(h->eng, &sums, &cm, step.buf, &tz, &tp, tl.buf, NULL, -1), "add");
    ok = ok && !harness_status(h, tlcl_cl_read(h->cl, sums.buf, 0, sizeof got_sums, got_sums, "sums"), "read") &&
         !harness_status(h, tlcl_cl_read(h->cl, step.buf, 0, sizeof bad, &bad, "step"), "read");
    if (ok)
        check_true(h, isnan(got_sums[TLCL_CNT_GUARD]) && bad == 9, "counters: an Inf loss raises the guard at its step");
    tlcl_tensor *all[] = {&tz, &tp, &tw, &tl, &sums, &cm, &step};
    for (int i = 0; i < 7; i++)
        tlcl_tensor_release(h->eng, all[i]);
}

/* Rows by index: gather then scatter through a permutation is the identity,
 * and each gathered row is the table's row. */
static void test_rows(harness *h)
{
    enum { ROWS = 9, N = 6, C = 19 };
    float table[ROWS * C], got[N * C], back[ROWS * C];
    int idx[N] = {8, 0, 3, 5, 2, 7};
    harness_fill(h, table, ROWS * C, -1, 1);
    tlcl_tensor tt = harness_tensor(h, "table", ROWS, 1, 1, C, table), out = harness_tensor(h, "rows", N, 1, 1, C, NULL);
    tlcl_tensor ti = harness_tensor(h, "idx", N, 1, 1, 1, NULL), t2 = harness_tensor(h, "table2", ROWS, 1, 1, C, NULL);
    int ok = !harness_status(h, tlcl_cl_write(h->cl, ti.buf, 0, sizeof idx, idx, "idx"), "idx") &&
             !harness_status(h, tlcl_tensor_fill(h->eng, &t2, 0), "fill") &&
             !harness_status(h, tlcl_rows_gather(h->eng, &out, &tt, ti.buf), "gather") &&
             !harness_status(h, tlcl_rows_scatter(h->eng, &t2, &out, ti.buf), "scatter") &&
             !harness_status(h, tlcl_cl_read(h->cl, out.buf, 0, sizeof got, got, "rows"), "read") &&
             !harness_status(h, tlcl_cl_read(h->cl, t2.buf, 0, sizeof back, back, "table2"), "read");
    if (ok) {
        int same = 1;
        for (int i = 0; i < N; i++)
            for (int c = 0; c < C; c++)
                same &= got[i * C + c] == table[idx[i] * C + c] && back[idx[i] * C + c] == table[idx[i] * C + c];
        for (int r = 0; r < ROWS; r++) /* rows no index names stay zero */
            if (r == 1 || r == 4 || r == 6)
                for (int c = 0; c < C; c++)
                    same &= back[r * C + c] == 0;
        check_true(h, same, "rows: gather by index, scatter back, untouched rows unchanged");
    }
    tlcl_tensor *all[] = {&tt, &out, &ti, &t2};
    for (int i = 0; i < 4; i++)
        tlcl_tensor_release(h->eng, all[i]);
}

/* tlcl_tensor_fill over sizes around the device's vector width (whole
 * vectors, a tail, less than one vector): every element takes the value
 * (the tail and the vectors' bounds; oclgrind, in the quick run, checks
 * that nothing past the tensor is written). */
static void test_fill(harness *h)
{
    static const int sizes[] = {1, 7, 16, 17, 31, 1003};
    for (int i = 0; i < 6; i++) {
        int n = sizes[i];
        float *before = malloc((size_t)n * sizeof *before);
        if (!before)
            continue;
        harness_fill(h, before, (size_t)n, -1, 1);
        tlcl_tensor t = harness_tensor(h, "filled", 1, 1, 1, n, before);
        if (!harness_status(h, tlcl_tensor_fill(h->eng, &t, 0.375f), "fill")) {
            float *got = harness_download(h, &t);
            int same = got != NULL;
            for (int j = 0; got && j < n; j++)
                same &= got[j] == 0.375f;
            char what[64];
            snprintf(what, sizeof what, "fill: all %d elements take the value", n);
            check_true(h, same, what);
            free(got);
        }
        tlcl_tensor_release(h->eng, &t);
        free(before);
    }
}

/* A few small cases of each kernel file this test covers (loss,
 * global_sum, dropout, optimizer, counters, elementwise's rows): the device
 * profiles' runs under oclgrind. */
static int quick_main(harness *h)
{
    loss_cfg focal = {.N = 5, .C = 10, .focal = 1, .weighted = 1, .ls = 0.1f, .class_alpha = 1, .gamma = 2.0f};
    loss_cfg wide = {.N = 1, .C = 1000, .focal = 0, .weighted = 0, .ls = 0.0f, .class_alpha = 0, .gamma = 0.0f};
    check_loss_case(h, &focal);
    check_loss_case(h, &wide);
    test_drop_kind(h, 0, 4, 256, 0.3f);
    test_drop_kind(h, 1, 64, 8, 0.25f);
    test_drop_path_add(h, 16, 5, 0.5f);
    tlcl_optimizer o = tlcl_optimizer_default(TLCL_OPT_SGD);
    o.momentum = 0.5f, o.clip_global_norm = 1.0f;
    test_optimizer(h, "sgd momentum, clip 1 (active)", o, 0.1f, 1);
    o = tlcl_optimizer_default(TLCL_OPT_ADAMW), o.clip_global_norm = 0.5f;
    test_optimizer(h, "adamw clip 0.5 (active)", o, 0.01f, 1);
    test_counters(h);
    test_rows(h);
    test_fill(h);
    return harness_finish(h);
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    if (h.quick)
        return quick_main(&h);
    test_losses(&h);
    test_softmax(&h);
    test_saturated(&h);
    test_bad_label(&h);
    test_dropout(&h);
    test_optimizers(&h);
    test_counters(&h);
    test_rows(&h);
    test_fill(&h);
    return harness_finish(&h);
}
