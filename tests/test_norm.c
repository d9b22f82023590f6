/* test_norm.c — the device's reductions, activations, batch norm (every
 * mode x fused activation), global average pooling, dense, channel scale and
 * squeeze-and-excitation against the double references of ref_norm.
 * Forward within 1e-4, gradients within 1e-3 of each entry (harness_close),
 * plus an absolute floor for entries near zero (ATOL, BN_ATOL). Parameter
 * gradients are pre-filled with ACC_PREFILL to check that they accumulate;
 * input gradients with NaN to check that they are overwritten. Shapes are awkward on purpose: 1x1 spatial, channel
 * counts that are not multiples of 4/16, batch 1, 7x9, and enough rows to
 * take the chunked (two-stage) reduction path. */
#include "engine_internal.h"
#include "harness.h"
#include "ref_norm.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FWD_TOL 1e-4
#define GRAD_TOL 1e-3
/* Absolute floors of the per-element check. ATOL: the rounding of the short
 * float sums of pooling, dense and SE (nothing beyond 1e-4 relative was
 * seen). BN_ATOL: batch norm's outputs and gradients go through float batch
 * statistics over up to 4225 rows of data offset by up to 60 and through
 * the activations' derivatives near their zeros (8.4e-6 at most seen on
 * PoCL and llvmpipe). */
#define ATOL 1e-6
#define BN_ATOL 5e-5
#define ACC_PREFILL 0.25f

typedef struct shape { int n, h, w, c; } shape;

static const char *act_name[] = {"none", "swish", "sigmoid", "relu", "relu6"};

static size_t count(shape s) { return (size_t)s.n * s.h * s.w * s.c; }

static float *frand(harness *h, size_t n, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    harness_fill(h, x, n, lo, hi);
    return x;
}

/* Downloads t and compares it with prefill + ref, entry by entry: within
 * tol of each and atol. */
static void expect_close(harness *h, const char *what, const tlcl_tensor *t, const double *ref, double prefill,
                         double tol, double atol)
{
    size_t n = tlcl_tensor_count(t);
    double *want = malloc((n ? n : 1) * sizeof *want);
    for (size_t i = 0; i < n; i++)
        want[i] = prefill + ref[i];
    float *got = harness_download(h, t);
    harness_close(h, what, got, want, n, tol, atol);
    free(got), free(want);
}

static void expect(harness *h, const char *what, const tlcl_tensor *t, const double *ref, double prefill, double tol)
{
    expect_close(h, what, t, ref, prefill, tol, ATOL);
}

static tlcl_tensor filled(harness *h, const char *name, int n, int hh, int w, int c, float value)
{
    tlcl_tensor t = harness_tensor(h, name, n, hh, w, c, NULL);
    harness_status(h, tlcl_tensor_fill(h->eng, &t, value), name);
    return t;
}

/* The same for a feature map, in the run's storage (harness_act_tensor). */
static tlcl_tensor filled_act(harness *h, const char *name, int n, int hh, int w, int c, float value)
{
    tlcl_tensor t = harness_act_tensor(h, name, n, hh, w, c, NULL);
    harness_status(h, tlcl_tensor_fill(h->eng, &t, value), name);
    return t;
}

/* ---- reduction ------------------------------------------------------------ */

static void test_reduce(harness *h, int groups, int rows, int C, float scale, int accumulate)
{
    size_t n = (size_t)groups * rows * C;
    float *x = frand(h, n, -1, 1);
    tlcl_tensor in = harness_act_tensor(h, "x", groups, rows, 1, C, x);
    double *ref = calloc((size_t)groups * C, sizeof *ref);
    for (size_t i = 0; i < n; i++)
        ref[(i / ((size_t)rows * C)) * C + i % C] += scale * (double)x[i];
    tlcl_tensor out = filled(h, "sums", groups, 1, 1, C, accumulate ? ACC_PREFILL : NAN);
    char what[96];
    snprintf(what, sizeof what, "reduce_rows g=%d rows=%d C=%d acc=%d", groups, rows, C, accumulate);
    if (!harness_status(h, tlcl_reduce_rows(h->eng, &out, &in, groups, rows, C, scale, accumulate), what))
        expect(h, what, &out, ref, accumulate ? ACC_PREFILL : 0, FWD_TOL);
    tlcl_tensor_release(h->eng, &in), tlcl_tensor_release(h->eng, &out);
    free(x), free(ref);
}

/* ---- bfloat16 rounding ----------------------------------------------------- */

/* The engine's float -> bfloat16 rounding (the host's, and the device's
 * through fill) against the harness's, which rounds in double arithmetic:
 * random values over many binades, ties to even, and the special values (a
 * NaN stays a NaN whatever its payload, the largest floats round to
 * infinity). */
static void test_bf16_rounding(harness *h)
{
    uint64_t rng = h->rng; /* a generator of its own: the other cases keep their data */
    h->rng = 0x6266313600000001ull;
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        float x = harness_uniform(h, -1, 1) * ldexpf(1.0f, (int)harness_uniform(h, -60, 60)), want = x;
        harness_round_bf16(&want, 1);
        bad += tlcl_bf16_to_float(tlcl_bf16_from_float(x)) != want;
    }
    harness_expectf(h, bad == 0, "bfloat16 rounding of 20000 random floats as the double-arithmetic one (%d differ)",
                    bad);
    /* 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even 1;
     * 1 + 3 2^-8 halfway between 1 + 2^-7 and 1 + 2^-6: to the even 1 + 2^-6 */
    harness_expect(h, tlcl_bf16_to_float(tlcl_bf16_from_float(1.0f + 0x1p-8f)) == 1.0f, "bfloat16 tie to even, down");
    harness_expect(h, tlcl_bf16_to_float(tlcl_bf16_from_float(1.0f + 0x3p-8f)) == 1.0f + 0x1p-6f,
                   "bfloat16 tie to even, up");
    uint32_t nan_bits[] = {0x7fffffffu, 0xffffffffu, 0x7f800001u, 0x7fc00000u};
    for (int i = 0; i < 4; i++) {
        float x;
        memcpy(&x, &nan_bits[i], sizeof x);
        harness_expectf(h, isnan(tlcl_bf16_to_float(tlcl_bf16_from_float(x))), "bfloat16 keeps NaN 0x%08x a NaN",
                        nan_bits[i]);
    }
    harness_expect(h, tlcl_bf16_to_float(tlcl_bf16_from_float(FLT_MAX)) == INFINITY, "bfloat16 FLT_MAX -> inf");
    harness_expect(h, tlcl_bf16_to_float(tlcl_bf16_from_float(-INFINITY)) == -INFINITY, "bfloat16 keeps -inf");
    /* tlcl_tensor_to_float: the stored bfloat16 values, exactly, as float32 */
    float v[37], *r = malloc(sizeof v);
    harness_fill(h, v, 37, -1e3f, 1e3f);
    tlcl_tensor t16;
    if (!harness_status(h, tlcl_tensor_alloc_as(h->eng, &t16, "to float", TLCL_BF16, 1, 1, 1, 37), "to float")) {
        harness_status(h, tlcl_tensor_upload(h->eng, &t16, v), "to float");
        harness_status(h, tlcl_tensor_to_float(h->eng, &t16), "to float");
        memcpy(r, v, sizeof v);
        harness_round_bf16(r, 37);
        float *got = harness_download(h, &t16);
        harness_expect(h, t16.dtype == TLCL_F32 && memcmp(got, r, sizeof v) == 0,
                       "tlcl_tensor_to_float: float32 holding the bfloat16 values");
        free(got);
        tlcl_tensor_release(h->eng, &t16);
    }
    free(r);
    /* the device's rounding (common.cl's bf16_round, through fill) */
    float all_ones_nan;
    memcpy(&all_ones_nan, &nan_bits[1], sizeof all_ones_nan);
    float values[] = {NAN, all_ones_nan, FLT_MAX, 1.0f + 0x1p-8f, 1.0f + 0x3p-8f, -3.14159f};
    for (int i = 0; i < 6; i++) {
        tlcl_tensor t;
        if (harness_status(h, tlcl_tensor_alloc_as(h->eng, &t, "bf16 fill", TLCL_BF16, 1, 1, 1, 19), "bf16 fill"))
            continue;
        if (!harness_status(h, tlcl_tensor_fill(h->eng, &t, values[i]), "bf16 fill")) {
            float *got = harness_download(h, &t), want = tlcl_bf16_to_float(tlcl_bf16_from_float(values[i]));
            int same = 1;
            for (int j = 0; j < 19; j++)
                same &= isnan(want) ? isnan(got[j]) != 0 : got[j] == want;
            harness_expectf(h, same, "device bfloat16 rounding of %g as the host's (%g)", values[i], want);
            free(got);
        }
        tlcl_tensor_release(h->eng, &t);
    }
    h->rng = rng;
}

/* ---- activations ---------------------------------------------------------- */

static void test_activation(harness *h, int act)
{
    size_t n = 61;
    float *x = frand(h, n, -8, 8), *dy = frand(h, n, -1, 1);
    tlcl_tensor tx = harness_act_tensor(h, "x", 1, 1, 1, (int)n, x);
    tlcl_tensor tdy = harness_act_tensor(h, "dy", 1, 1, 1, (int)n, dy);
    tlcl_tensor ty = filled_act(h, "y", 1, 1, 1, (int)n, NAN), tdx = filled_act(h, "dx", 1, 1, 1, (int)n, NAN);
    double *dx64 = harness_to_double(x, n), *ddy = harness_to_double(dy, n);
    double *y = malloc(n * sizeof *y), *dx = malloc(n * sizeof *dx);
    ref_activation_forward(act, dx64, y, n);
    ref_activation_backward(act, ddy, dx64, dx, n);
    char what[96];
    snprintf(what, sizeof what, "activation %s forward", act_name[act]);
    if (!harness_status(h, tlcl_activation_forward(h->eng, act, &ty, &tx), what))
        expect_close(h, what, &ty, y, 0, harness_act_rtol(h, FWD_TOL), ATOL);
    snprintf(what, sizeof what, "activation %s backward", act_name[act]);
    if (!harness_status(h, tlcl_activation_backward(h->eng, act, &tdx, &tdy, &tx), what))
        expect_close(h, what, &tdx, dx, 0, harness_act_rtol(h, GRAD_TOL), ATOL);
    tlcl_tensor_release(h->eng, &tx), tlcl_tensor_release(h->eng, &tdy);
    tlcl_tensor_release(h->eng, &ty), tlcl_tensor_release(h->eng, &tdx);
    free(x), free(dy), free(dx64), free(ddy), free(y), free(dx);
}

/* Image preprocessing: out = in * scale[c] + shift[c] over NHWC pixels of 1
 * to 4 channels, in double; the pixel counts leave a tail after the
 * 16-pixel groups (and 7 pixels are all tail). */
static void test_affine(harness *h, int N, int H, int W, int C)
{
    size_t n = (size_t)N * H * W * C;
    float *x = frand(h, n, 0, 255), scale[4] = {0.017f, -0.5f, 2.0f, 0.25f}, shift[4] = {-2.1f, 1.0f, 0.5f, -0.125f};
    double *ref = malloc(n * sizeof *ref);
    for (size_t i = 0; i < n; i++)
        ref[i] = (double)x[i] * scale[i % C] + shift[i % C];
    tlcl_tensor tx = harness_tensor(h, "x", N, H, W, C, x), ty = filled_act(h, "y", N, H, W, C, NAN);
    char what[96];
    snprintf(what, sizeof what, "affine channels %dx%dx%dx%d", N, H, W, C);
    if (!harness_status(h, tlcl_affine_channels(h->eng, &ty, &tx, scale, shift), what))
        expect_close(h, what, &ty, ref, 0, harness_act_rtol(h, FWD_TOL), ATOL);
    tlcl_tensor_release(h->eng, &tx), tlcl_tensor_release(h->eng, &ty);
    free(x), free(ref);
}

/* ---- batch norm ----------------------------------------------------------- */

typedef struct bn_case {
    shape s;
    float *x, *dy, *gamma, *beta, *mm, *mv;
} bn_case;

/* A float32 and a double pre-activation can fall on either side of a
 * relu/relu6 kink; nudge inputs whose reference z lies near one. */
static int near_kink(int act, double z)
{
    if (act == TLCL_ACT_RELU)
        return fabs(z) < 1e-3;
    if (act == TLCL_ACT_RELU6)
        return fabs(z) < 1e-3 || fabs(z - 6) < 1e-3;
    return 0;
}

static void bn_ref_forward(const bn_case *k, int train, int act, double *y, double *mean, double *istd, double *mm,
                           double *mv)
{
    size_t n = count(k->s);
    int C = k->s.c;
    double *x = harness_to_double(k->x, n), *g = harness_to_double(k->gamma, C), *b = harness_to_double(k->beta, C);
    for (int c = 0; c < C; c++)
        mm[c] = k->mm[c], mv[c] = k->mv[c];
    ref_bn_forward(train, (int)(n / C), C, x, g, b, mm, mv, 0.9, 1e-3, act, y, mean, istd);
    free(x), free(g), free(b);
}

/* x + 0.01, or in bfloat16 the nearest bfloat16 to x + |x|/128 + 0.01: at
 * least one unit of bfloat16's last place (|x|/128 or less) above x. */
static float nudge_up(const harness *h, float x)
{
    if (!h->bf16)
        return x + 0.01f;
    float up = x + fabsf(x) / 128 + 0.01f;
    harness_round_bf16(&up, 1);
    return up;
}

static void bn_avoid_kinks(const harness *h, bn_case *k, int train, int act)
{
    size_t n = count(k->s);
    int C = k->s.c;
    double *y = malloc(n * sizeof *y), *st = calloc(4 * (size_t)C, sizeof *st); /* mean istd mm mv */
    for (int iter = 0, moved = 1; moved && iter < 20; iter++) {
        bn_ref_forward(k, train, TLCL_ACT_NONE, y, st, st + C, st + 2 * C, st + 3 * C);
        moved = 0;
        for (size_t i = 0; i < n; i++)
            if (near_kink(act, y[i]))
                k->x[i] = nudge_up(h, k->x[i]), moved = 1;
    }
    free(y), free(st);
}

static bn_case bn_make(harness *h, shape s)
{
    bn_case k = {.s = s};
    size_t n = count(s);
    k.x = frand(h, n, -2, 2);
    /* channel offsets (up to 60, repeating past 64 channels): the one-pass
     * shifted variance must cope */
    for (size_t i = 0; i < n; i++)
        k.x[i] += (float)(i % s.c % 64) - 3.0f;
    k.dy = frand(h, n, -1, 1);
    if (h->bf16) /* feature maps: the values bfloat16 storage holds */
        harness_round_bf16(k.x, n), harness_round_bf16(k.dy, n);
    k.gamma = frand(h, s.c, 0.5f, 3.5f), k.beta = frand(h, s.c, -0.5f, 0.5f);
    k.mm = frand(h, s.c, -3, 3), k.mv = frand(h, s.c, 0.5f, 2);
    return k;
}

static void bn_free(bn_case *k) { free(k->x), free(k->dy), free(k->gamma), free(k->beta), free(k->mm), free(k->mv); }

typedef struct bn_dev {
    tlcl_tensor x, dy, y, dx, gamma, beta, mm, mv, dgamma, dbeta;
    tlcl_bn bn;
} bn_dev;

static void bn_upload(harness *h, bn_dev *d, bn_case *k)
{
    shape s = k->s;
    d->x = harness_act_tensor(h, "bn x", s.n, s.h, s.w, s.c, k->x); /* already bfloat16 values */
    d->dy = harness_act_tensor(h, "bn dy", s.n, s.h, s.w, s.c, k->dy);
    d->y = filled_act(h, "bn y", s.n, s.h, s.w, s.c, NAN);
    d->dx = filled_act(h, "bn dx", s.n, s.h, s.w, s.c, NAN);
    d->gamma = harness_tensor(h, "gamma", 1, 1, 1, s.c, k->gamma);
    d->beta = harness_tensor(h, "beta", 1, 1, 1, s.c, k->beta);
    d->mm = harness_tensor(h, "moving_mean", 1, 1, 1, s.c, k->mm);
    d->mv = harness_tensor(h, "moving_var", 1, 1, 1, s.c, k->mv);
    d->dgamma = filled(h, "dgamma", 1, 1, 1, s.c, ACC_PREFILL);
    d->dbeta = filled(h, "dbeta", 1, 1, 1, s.c, ACC_PREFILL);
    memset(&d->bn, 0, sizeof d->bn);
    d->bn = (tlcl_bn){.gamma = &d->gamma, .beta = &d->beta, .moving_mean = &d->mm, .moving_var = &d->mv,
                      /* frozen must leave them alone even when given */
                      .dgamma = &d->dgamma, .dbeta = &d->dbeta,
                      .momentum = 0.9f, .epsilon = 1e-3f};
}

static void bn_dev_free(harness *h, bn_dev *d)
{
    tlcl_tensor *all[] = {&d->x, &d->dy, &d->y, &d->dx, &d->gamma, &d->beta, &d->mm, &d->mv, &d->dgamma, &d->dbeta};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tlcl_tensor_release(h->eng, all[i]);
    tlcl_bn_release(h->eng, &d->bn);
}

static void bn_check_backward(harness *h, bn_dev *d, const bn_case *k, int train, int frozen, int act,
                              const double *mean, const double *istd, const char *tag)
{
    size_t n = count(k->s);
    int C = k->s.c;
    double *x = harness_to_double(k->x, n), *dy = harness_to_double(k->dy, n);
    double *g = harness_to_double(k->gamma, C), *b = harness_to_double(k->beta, C);
    double *dx = malloc(n * sizeof *dx), *dg = calloc(3 * (size_t)C, sizeof *dg), *db = dg + C, *zero = dg + 2 * C;
    ref_bn_backward(train, (int)(n / C), C, x, dy, g, b, mean, istd, act, dx, dg, db);
    char what[128];
    snprintf(what, sizeof what, "%s backward", tag);
    tlcl_bn_mode mode = train ? TLCL_BN_TRAIN : frozen ? TLCL_BN_FROZEN : TLCL_BN_INFER;
    if (!harness_status(h, tlcl_batchnorm_backward(h->eng, &d->bn, &d->dx, &d->dy, &d->x, mode, act), what)) {
        snprintf(what, sizeof what, "%s dx", tag);
        expect_close(h, what, &d->dx, dx, 0, harness_act_rtol(h, GRAD_TOL), BN_ATOL);
        snprintf(what, sizeof what, "%s dgamma", tag);
        expect_close(h, what, &d->dgamma, frozen ? zero : dg, ACC_PREFILL, GRAD_TOL, BN_ATOL);
        snprintf(what, sizeof what, "%s dbeta", tag);
        expect_close(h, what, &d->dbeta, frozen ? zero : db, ACC_PREFILL, GRAD_TOL, BN_ATOL);
    }
    free(x), free(dy), free(g), free(b), free(dx), free(dg);
}

static void test_bn(harness *h, shape s, tlcl_bn_mode mode, int act)
{
    static const char *mode_name[] = {"train", "infer", "frozen"};
    int train = mode == TLCL_BN_TRAIN, frozen = mode == TLCL_BN_FROZEN;
    bn_case k = bn_make(h, s);
    bn_avoid_kinks(h, &k, train, act);
    size_t n = count(s);
    double *y = malloc(n * sizeof *y), *mean = calloc(4 * (size_t)s.c, sizeof *mean);
    double *istd = mean + s.c, *mm = mean + 2 * s.c, *mv = mean + 3 * s.c;
    bn_ref_forward(&k, train, act, y, mean, istd, mm, mv);
    bn_dev d;
    bn_upload(h, &d, &k);
    char tag[96], what[128];
    snprintf(tag, sizeof tag, "bn %s %s %dx%dx%dx%d", mode_name[mode], act_name[act], s.n, s.h, s.w, s.c);
    if (!harness_status(h, tlcl_batchnorm_forward(h->eng, &d.bn, &d.y, &d.x, mode, act), tag)) {
        snprintf(what, sizeof what, "%s forward", tag);
        expect_close(h, what, &d.y, y, 0, harness_act_rtol(h, FWD_TOL), BN_ATOL);
        snprintf(what, sizeof what, "%s moving_mean", tag);
        expect_close(h, what, &d.mm, mm, 0, FWD_TOL, BN_ATOL);
        snprintf(what, sizeof what, "%s moving_var", tag);
        expect_close(h, what, &d.mv, mv, 0, FWD_TOL, BN_ATOL);
        bn_check_backward(h, &d, &k, train, frozen, act, mean, istd, tag);
    }
    bn_dev_free(h, &d);
    bn_free(&k);
    free(y), free(mean);
}

/* Two training steps on one bn: the moving statistics move twice, and the
 * second step creates no OpenCL buffer (saved_mean/saved_istd are kept and
 * the scratch sums come back from the pool). */
static void test_bn_repeat(harness *h, shape s)
{
    bn_case k = bn_make(h, s);
    bn_dev d;
    bn_upload(h, &d, &k);
    double *y = malloc(count(s) * sizeof *y), *mean = calloc(4 * (size_t)s.c, sizeof *mean);
    double *istd = mean + s.c, *mm = mean + 2 * s.c, *mv = mean + 3 * s.c;
    for (int step = 0; step < 2; step++) {
        bn_ref_forward(&k, 1, TLCL_ACT_SWISH, y, mean, istd, mm, mv);
        for (int c = 0; c < s.c; c++) /* the next step starts from these */
            k.mm[c] = (float)mm[c], k.mv[c] = (float)mv[c];
    }
    long buffers = 0;
    for (int step = 0; step < 2; step++) {
        if (step == 1)
            buffers = tlcl_cl_stats_get(h->cl).buffers_created;
        harness_status(h, tlcl_batchnorm_forward(h->eng, &d.bn, &d.y, &d.x, TLCL_BN_TRAIN, TLCL_ACT_SWISH), "bn step");
        harness_status(h, tlcl_batchnorm_backward(h->eng, &d.bn, &d.dx, &d.dy, &d.x, TLCL_BN_TRAIN, TLCL_ACT_SWISH),
                       "bn step");
    }
    expect_close(h, "bn two steps: moving_mean", &d.mm, mm, 0, FWD_TOL, BN_ATOL);
    expect_close(h, "bn two steps: moving_var", &d.mv, mv, 0, FWD_TOL, BN_ATOL);
    long created = tlcl_cl_stats_get(h->cl).buffers_created - buffers;
    if (created == 0) {
        h->passed++;
        printf("ok   bn two steps: no buffer created by the second step\n");
    } else {
        harness_fail(h, "bn two steps: the second step created %ld buffers", created);
    }
    bn_dev_free(h, &d);
    bn_free(&k);
    free(y), free(mean);
}

/* One training-mode case, asserting through the engine's launch counts
 * whether the column kernels ran (forward and backward once each) or not. */
static void test_bn_path(harness *h, shape s, int act, int want_column, const char *why)
{
    long f0 = eng_bn_column_launches(h->eng, 0), b0 = eng_bn_column_launches(h->eng, 1);
    test_bn(h, s, TLCL_BN_TRAIN, act);
    long f = eng_bn_column_launches(h->eng, 0) - f0, b = eng_bn_column_launches(h->eng, 1) - b0;
    char what[192];
    snprintf(what, sizeof what, "bn train %s %dx%dx%dx%d %s the column kernels (%s): forward %ld, backward %ld",
             act_name[act], s.n, s.h, s.w, s.c, want_column ? "takes" : "does not take", why, f, b);
    harness_expect(h, want_column ? f == 1 && b == 1 : f == 0 && b == 0, what);
}

/* The training-mode column kernels (batchnorm.c's bn_column), whatever the
 * device. The engine takes them on a CPU when there are two channel vectors
 * per compute unit (and a column fits the cache): C = 2 x compute units x
 * vector width, over 18 rows, takes them on a CPU of any core count (on
 * other devices the engine keeps the reductions). The bn_column setting
 * ($TLCL_BN_COLUMN) 1 then runs them on every device, at the device's vector
 * width (C = 16 at 4, 8 or 16 wide) and one channel at a time (C = 17), and
 * 0 runs the same shapes through the reductions, which a CPU would
 * otherwise skip. */
static void test_bn_columns(harness *h)
{
    tlcl_settings saved = *tlcl_cl_settings(h->cl), choice = saved;
    choice.bn_column = -1; /* the engine's own choice first */
    tlcl_cl_settings_override(h->cl, &choice);
    int on_cpu = eng_on_cpu(h->eng);
    shape own = {2, 3, 3, 2 * (int)tlcl_cl_device(h->cl)->compute_units * tlcl_cl_vector_width(h->cl)};
    for (int act = 0; act <= 4; act++)
        test_bn_path(h, own, act, on_cpu, on_cpu ? "2 channel vectors per compute unit, on a CPU" : "not a CPU");
    static const shape forced[] = {{2, 3, 5, 16}, {1, 5, 7, 17}};
    for (int column = 1; column >= 0; column--) {
        choice.bn_column = column;
        tlcl_cl_settings_override(h->cl, &choice);
        for (size_t i = 0; i < sizeof forced / sizeof *forced; i++)
            for (int act = 0; act <= 4; act++)
                test_bn_path(h, forced[i], act, column, column ? "TLCL_BN_COLUMN=1" : "TLCL_BN_COLUMN=0");
    }
    tlcl_cl_settings_override(h->cl, &saved);
}

/* ---- pooling and channel scale -------------------------------------------- */

static void test_pool_scale(harness *h, shape s)
{
    int HW = s.h * s.w;
    size_t n = count(s), nc = (size_t)s.n * s.c;
    float *x = frand(h, n, -2, 2), *dy = frand(h, n, -1, 1), *sc = frand(h, nc, -1.5f, 1.5f);
    /* feature maps x, dy, y, dx in the run's storage; pooled vectors and scales float */
    tlcl_tensor tx = harness_act_tensor(h, "x", s.n, s.h, s.w, s.c, x);
    tlcl_tensor tdy = harness_act_tensor(h, "dy", s.n, s.h, s.w, s.c, dy);
    tlcl_tensor ty = filled_act(h, "y", s.n, s.h, s.w, s.c, NAN), tdx = filled_act(h, "dx", s.n, s.h, s.w, s.c, NAN);
    double *x64 = harness_to_double(x, n), *dy64 = harness_to_double(dy, n), *sc64 = harness_to_double(sc, nc);
    double *pooled = malloc(nc * sizeof(double)), *dpool = malloc(n * sizeof(double));
    double *y = malloc(n * sizeof(double)), *dx = malloc(n * sizeof(double)), *dsc = malloc(nc * sizeof(double));
    ref_avgpool_forward(s.n, HW, s.c, x64, pooled);
    ref_avgpool_backward(s.n, HW, s.c, dy64, dpool); /* dy's first N*C values as dout */
    ref_channel_scale_forward(s.n, HW, s.c, x64, sc64, y);
    ref_channel_scale_backward(s.n, HW, s.c, x64, sc64, dy64, dx, dsc);
    tlcl_tensor tdo = harness_tensor(h, "dpooled", s.n, 1, 1, s.c, dy);
    tlcl_tensor tsc = harness_tensor(h, "scale", s.n, 1, 1, s.c, sc);
    tlcl_tensor tp = filled(h, "pooled", s.n, 1, 1, s.c, NAN), tdsc = filled(h, "dscale", s.n, 1, 1, s.c, NAN);
    double act_fwd = harness_act_rtol(h, FWD_TOL), act_grad = harness_act_rtol(h, GRAD_TOL);
    char what[96];
    snprintf(what, sizeof what, "avgpool %dx%dx%dx%d forward", s.n, s.h, s.w, s.c);
    if (!harness_status(h, tlcl_global_avgpool_forward(h->eng, &tp, &tx), what))
        expect(h, what, &tp, pooled, 0, FWD_TOL);
    snprintf(what, sizeof what, "avgpool %dx%dx%dx%d backward", s.n, s.h, s.w, s.c);
    if (!harness_status(h, tlcl_global_avgpool_backward(h->eng, &tdx, &tdo), what))
        expect(h, what, &tdx, dpool, 0, act_grad);
    snprintf(what, sizeof what, "channel_scale %dx%dx%dx%d forward", s.n, s.h, s.w, s.c);
    if (!harness_status(h, tlcl_channel_scale_forward(h->eng, &ty, &tx, &tsc), what))
        expect(h, what, &ty, y, 0, act_fwd);
    snprintf(what, sizeof what, "channel_scale %dx%dx%dx%d backward", s.n, s.h, s.w, s.c);
    if (!harness_status(h, tlcl_channel_scale_backward(h->eng, &tdx, &tdsc, &tdy, &tx, &tsc), what)) {
        expect(h, what, &tdx, dx, 0, act_grad);
        snprintf(what, sizeof what, "channel_scale %dx%dx%dx%d dscale", s.n, s.h, s.w, s.c);
        expect(h, what, &tdsc, dsc, 0, GRAD_TOL);
    }
    tlcl_tensor *all[] = {&tx, &tdy, &tdo, &tsc, &tp, &tdsc, &ty, &tdx};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tlcl_tensor_release(h->eng, all[i]);
    free(x), free(dy), free(sc), free(x64), free(dy64), free(sc64);
    free(pooled), free(dpool), free(y), free(dx), free(dsc);
}

/* ---- dense ----------------------------------------------------------------- */

typedef struct dense_case { int N, hh, ww, c, Cout, act, bias, keep_pre; } dense_case;

static void test_dense(harness *h, dense_case k)
{
    int Cin = k.hh * k.ww * k.c;
    size_t nx = (size_t)k.N * Cin, nw = (size_t)Cin * k.Cout, ny = (size_t)k.N * k.Cout;
    float *x = frand(h, nx, -1, 1), *w = frand(h, nw, -1, 1), *b = frand(h, k.Cout, -0.5f, 0.5f);
    float *dy = frand(h, ny, -1, 1);
    double *x64 = harness_to_double(x, nx), *w64 = harness_to_double(w, nw), *b64 = harness_to_double(b, k.Cout);
    double *dy64 = harness_to_double(dy, ny), *pre = malloc(ny * sizeof(double)), *y = malloc(ny * sizeof(double));
    double *dx = malloc(nx * sizeof(double)), *dw = malloc(nw * sizeof(double)), *db = malloc(k.Cout * sizeof(double));
    ref_dense_forward(k.N, Cin, k.Cout, x64, w64, k.bias ? b64 : NULL, k.act, pre, y);
    ref_dense_backward(k.N, Cin, k.Cout, x64, w64, pre, k.act, dy64, dx, dw, db);
    tlcl_tensor tx = harness_tensor(h, "x", k.N, k.hh, k.ww, k.c, x), tw = harness_tensor(h, "w", Cin, 1, 1, k.Cout, w);
    tlcl_tensor tb = harness_tensor(h, "b", 1, 1, 1, k.Cout, b), tdy = harness_tensor(h, "dy", k.N, 1, 1, k.Cout, dy);
    tlcl_tensor ty = filled(h, "y", k.N, 1, 1, k.Cout, NAN), tpre = filled(h, "pre", k.N, 1, 1, k.Cout, NAN);
    tlcl_tensor tdx = filled(h, "dx", k.N, k.hh, k.ww, k.c, NAN);
    tlcl_tensor tdw = filled(h, "dw", Cin, 1, 1, k.Cout, ACC_PREFILL), tdb = filled(h, "db", 1, 1, 1, k.Cout, ACC_PREFILL);
    tlcl_tensor *tp = k.keep_pre ? &tpre : NULL, *tbias = k.bias ? &tb : NULL;
    char tag[96], what[128];
    snprintf(tag, sizeof tag, "dense %s N=%d in=%dx%dx%d out=%d bias=%d pre=%d", act_name[k.act], k.N, k.hh, k.ww, k.c,
             k.Cout, k.bias, k.keep_pre);
    if (!harness_status(h, tlcl_dense_forward(h->eng, &ty, tp, &tx, &tw, tbias, k.act), tag)) {
        snprintf(what, sizeof what, "%s forward", tag);
        expect(h, what, &ty, y, 0, FWD_TOL);
        if (tp)
            expect(h, "  ... pre-activation", &tpre, pre, 0, FWD_TOL);
    }
    snprintf(what, sizeof what, "%s backward", tag);
    if (!harness_status(h, tlcl_dense_backward(h->eng, &tdx, &tdw, k.bias ? &tdb : NULL, &tdy, &tx, &tw, tp, k.act),
                        what)) {
        expect(h, "  ... din", &tdx, dx, 0, GRAD_TOL);
        expect(h, "  ... dweight (accumulated)", &tdw, dw, ACC_PREFILL, GRAD_TOL);
        if (k.bias)
            expect(h, "  ... dbias (accumulated)", &tdb, db, ACC_PREFILL, GRAD_TOL);
    }
    tlcl_tensor *all[] = {&tx, &tw, &tb, &tdy, &ty, &tpre, &tdx, &tdw, &tdb};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tlcl_tensor_release(h->eng, all[i]);
    free(x), free(w), free(b), free(dy), free(x64), free(w64), free(b64), free(dy64);
    free(pre), free(y), free(dx), free(dw), free(db);
}

static void test_dense_all(harness *h)
{
    for (int act = 0; act <= 4; act++) {
        test_dense(h, (dense_case){1, 1, 1, 1, 1, act, 1, 1});
        test_dense(h, (dense_case){3, 1, 1, 17, 5, act, 1, 1});
        test_dense(h, (dense_case){2, 2, 2, 3, 13, act, act % 2, 1}); /* in read as rows of h*w*c */
    }
    test_dense(h, (dense_case){4, 1, 1, 13, 3, TLCL_ACT_NONE, 1, 0}); /* no pre kept */
    test_dense(h, (dense_case){4, 1, 1, 13, 3, TLCL_ACT_NONE, 0, 0});
}

/* ---- squeeze-and-excitation ---------------------------------------------- */

static void test_se(harness *h, shape s, int S, int act)
{
    int C = s.c, HW = s.h * s.w;
    size_t n = count(s), ncs = (size_t)C * S;
    float *x = frand(h, n, -2, 2), *dy = frand(h, n, -1, 1);
    float *wr = frand(h, ncs, -1, 1), *br = frand(h, S, 0.1f, 1), *we = frand(h, ncs, -1, 1), *be = frand(h, C, -.5f, .5f);
    /* weights spelt as Keras 1x1 convolution kernels [1, 1, in, out]; x, dy,
     * y, dx are feature maps (the run's storage) */
    tlcl_tensor t[12] = {
        harness_act_tensor(h, "x", s.n, s.h, s.w, C, x), harness_act_tensor(h, "dy", s.n, s.h, s.w, C, dy),
        harness_tensor(h, "w_reduce", 1, 1, C, S, wr), harness_tensor(h, "b_reduce", 1, 1, 1, S, br),
        harness_tensor(h, "w_expand", 1, 1, S, C, we), harness_tensor(h, "b_expand", 1, 1, 1, C, be),
        filled(h, "dw_reduce", 1, 1, C, S, ACC_PREFILL), filled(h, "db_reduce", 1, 1, 1, S, ACC_PREFILL),
        filled(h, "dw_expand", 1, 1, S, C, ACC_PREFILL), filled(h, "db_expand", 1, 1, 1, C, ACC_PREFILL),
        filled_act(h, "y", s.n, s.h, s.w, C, NAN), filled_act(h, "dx", s.n, s.h, s.w, C, NAN)};
    double *x64 = harness_to_double(x, n), *dy64 = harness_to_double(dy, n);
    double *wr64 = harness_to_double(wr, ncs), *br64 = harness_to_double(br, S);
    double *we64 = harness_to_double(we, ncs), *be64 = harness_to_double(be, C);
    double *y = malloc(n * sizeof(double)), *dx = malloc(n * sizeof(double));
    double *dwr = malloc(ncs * sizeof(double)), *dbr = malloc(S * sizeof(double));
    double *dwe = malloc(ncs * sizeof(double)), *dbe = malloc(C * sizeof(double));
    ref_se_params p = {C, S, act, wr64, br64, we64, be64};
    ref_se_forward(s.n, HW, &p, x64, y);
    ref_se_backward(s.n, HW, &p, x64, dy64, dx, dwr, dbr, dwe, dbe);
    tlcl_se se = {.w_reduce = &t[2], .b_reduce = &t[3], .w_expand = &t[4], .b_expand = &t[5], .dw_reduce = &t[6],
                  .db_reduce = &t[7], .dw_expand = &t[8], .db_expand = &t[9], .act_reduce = act};
    char tag[96], what[128];
    snprintf(tag, sizeof tag, "se %s S=%d %dx%dx%dx%d", act_name[act], S, s.n, s.h, s.w, C);
    if (!harness_status(h, tlcl_se_forward(h->eng, &se, &t[10], &t[0]), tag)) {
        snprintf(what, sizeof what, "%s forward", tag);
        expect(h, what, &t[10], y, 0, harness_act_rtol(h, FWD_TOL));
        snprintf(what, sizeof what, "%s backward", tag);
        if (!harness_status(h, tlcl_se_backward(h->eng, &se, &t[11], &t[1], &t[0]), what)) {
            expect(h, "  ... din", &t[11], dx, 0, harness_act_rtol(h, GRAD_TOL));
            expect(h, "  ... dw_reduce (accumulated)", &t[6], dwr, ACC_PREFILL, GRAD_TOL);
            expect(h, "  ... db_reduce (accumulated)", &t[7], dbr, ACC_PREFILL, GRAD_TOL);
            expect(h, "  ... dw_expand (accumulated)", &t[8], dwe, ACC_PREFILL, GRAD_TOL);
            expect(h, "  ... db_expand (accumulated)", &t[9], dbe, ACC_PREFILL, GRAD_TOL);
        }
    }
    tlcl_se_release(h->eng, &se);
    for (int i = 0; i < 12; i++)
        tlcl_tensor_release(h->eng, &t[i]);
    free(x), free(dy), free(wr), free(br), free(we), free(be), free(x64), free(dy64);
    free(wr64), free(br64), free(we64), free(be64), free(y), free(dx), free(dwr), free(dbr), free(dwe), free(dbe);
}

static void test_se_all(harness *h)
{
    static const shape shapes[] = {{2, 3, 3, 5}, {1, 7, 9, 17}, {1, 1, 1, 13}, {2, 20, 20, 5}, {2, 5, 5, 32}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        test_se(h, shapes[i], 1, TLCL_ACT_SWISH);
        test_se(h, shapes[i], 3, TLCL_ACT_SWISH);
    }
    test_se(h, shapes[0], 3, TLCL_ACT_RELU);
}

/* A few small cases of each kernel file this test covers (batchnorm,
 * reduce, elementwise, pool, dense and SE's): the device profiles' runs
 * under oclgrind. */
static int quick_main(harness *h)
{
    test_bf16_rounding(h);
    test_reduce(h, 3, 49, 17, 1.0f / 49, 0);
    test_reduce(h, 1, 777, 24, 1.0f, 1); /* chunked: the two-stage reduction with its local-memory tree */
    test_activation(h, TLCL_ACT_SWISH);
    test_affine(h, 1, 16, 19, 3);
    static const shape bn[] = {{2, 3, 3, 5}, {1, 9, 9, 48}};
    for (int s = 0; s < 2; s++)
        for (int mode = TLCL_BN_TRAIN; mode <= TLCL_BN_FROZEN; mode++)
            test_bn(h, bn[s], (tlcl_bn_mode)mode, TLCL_ACT_SWISH);
    test_pool_scale(h, (shape){2, 6, 5, 48});
    test_dense(h, (dense_case){3, 1, 1, 17, 5, TLCL_ACT_RELU, 1, 1});
    test_se(h, (shape){2, 3, 3, 5}, 3, TLCL_ACT_SWISH);
    return harness_finish(h);
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    if (h.quick)
        return quick_main(&h);
    test_bf16_rounding(&h);
    test_reduce(&h, 1, 1, 1, 1.0f, 0);
    test_reduce(&h, 3, 49, 17, 1.0f / 49, 0);
    test_reduce(&h, 1, 4356, 6, 0.5f, 1);
    test_reduce(&h, 2, 1089, 5, 1.0f, 0);
    test_reduce(&h, 1, 5000, 3, 1.0f, 1);
    test_reduce(&h, 2, 49, 1280, 1.0f / 49, 1); /* the head's pool: few rows, many channels */
    /* channel counts that take the 16-, 8- and 4-wide instances */
    test_reduce(&h, 2, 3000, 32, 1.0f, 0);
    test_reduce(&h, 1, 777, 24, 1.0f, 1);
    test_reduce(&h, 3, 50, 20, 0.25f, 0);
    for (int act = 0; act <= 4; act++)
        test_activation(&h, act);
    for (int c = 1; c <= 4; c++)
        test_affine(&h, 2, 5, 7, c);
    test_affine(&h, 1, 1, 7, 3);
    test_affine(&h, 1, 16, 19, 3); /* 19 groups of 16 pixels: whole and partial work-items */
    /* The last shape takes the chunked (two-stage) reduction. Under the
     * oclgrind simulator, which is slow, it is smaller but still chunked
     * (162 rows: 10 chunks) with several samples; test_reduce keeps the
     * large cases (more chunks than a work-group). */
    /* C = 16, 24 and 48 take the vector instances (and 48's channel offsets,
     * up to 45 against a spread of about 1, the shifted one-pass variance);
     * C = 64 at 162 rows the training-mode column kernels on CPUs of up to
     * 2 cores at 16 wide (test_bn_columns reaches them on any device), at
     * 4225 rows (a column over the cache bound at 16 wide) the reductions */
    static const shape bn_shapes[] = {{2, 3, 3, 5},   {1, 1, 1, 13}, {1, 7, 9, 17},   {3, 1, 1, 3},  {4, 33, 33, 6},
                                      {2, 5, 7, 16},  {1, 9, 9, 24}, {2, 17, 17, 48}, {2, 9, 9, 64}, {1, 65, 65, 64}};
    static const shape bn_shapes_sim[] = {{2, 3, 3, 5},  {1, 1, 1, 13}, {1, 7, 9, 17}, {3, 1, 1, 3}, {2, 9, 9, 6},
                                          {2, 3, 5, 16}, {1, 5, 5, 24}, {1, 9, 9, 48}, {2, 3, 3, 64}, {1, 9, 9, 64}};
    _Static_assert(sizeof bn_shapes == sizeof bn_shapes_sim, "one simulator shape per shape");
    const char *platform = getenv("TLCL_TEST_PLATFORM");
    const shape *bn_set = platform && strstr(platform, "oclgrind") ? bn_shapes_sim : bn_shapes;
    for (size_t s = 0; s < sizeof bn_shapes / sizeof *bn_shapes; s++)
        for (int mode = TLCL_BN_TRAIN; mode <= TLCL_BN_FROZEN; mode++)
            for (int act = 0; act <= 4; act++)
                test_bn(&h, bn_set[s], (tlcl_bn_mode)mode, act);
    test_bn_repeat(&h, bn_set[4]);
    test_bn_columns(&h);
    static const shape pool_shapes[] = {{2, 3, 3, 5}, {1, 1, 1, 13}, {1, 7, 9, 17}, {2, 20, 20, 5}, {2, 6, 5, 48}};
    for (size_t s = 0; s < sizeof pool_shapes / sizeof *pool_shapes; s++)
        test_pool_scale(&h, pool_shapes[s]);
    test_dense_all(&h);
    test_se_all(&h);
    return harness_finish(&h);
}
