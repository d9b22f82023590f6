/* test_conv.c — conv2d (im2col and 1×1 GEMM paths, chunked batches),
 * depthwise and bilinear resize on the device against the double
 * references, element by element (harness_close): forward within 1e-4 of
 * each entry, gradients within 1e-3, plus ATOL for entries near zero; weight
 * gradients accumulated onto a pre-filled buffer, NULL gradients skipped.
 * Shapes stay small so the Rusticl/llvmpipe run stays short.
 *
 * With TLCL_TEST_BF16=1 (conv_pocl_bf16) the cases store their feature
 * maps (x, y, dy, dx, the residual) as bfloat16: the inputs are rounded to
 * bfloat16 before the references are computed, so the references see what
 * the device holds, and the only new error is the one rounding of each
 * stored result, up to 2^-8 of it (harness_act_rtol). The kernels keep no
 * intermediate in bfloat16 (sums in float; the weight gradients' partial
 * sums and the im2col path's dcol float32), and weight gradients are
 * float32: their tolerance stays. Resize's tensors stay float32. */
#include "harness.h"
#include "ref_conv.h"
#include "ref_norm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FWD_TOL 1e-4
#define GRAD_TOL 1e-3
/* Absolute floor of the per-element check: the float rounding of sums of
 * up to ~700 products of values in [-1, 1] (1.5e-6 at most seen on PoCL,
 * with and without fast-math, and llvmpipe), with room for other summation
 * orders; a wrong tap or a missed strip costs 1e-2 or more. */
#define ATOL 1e-5
#define DW_PREFILL 0.5f /* dweight holds this before backward: the result must be it + the gradient */

typedef enum { CONV, DEPTHWISE } conv_kind;

/* Which gradients backward is asked for. */
enum { GRAD_BOTH, GRAD_INPUT_ONLY, GRAD_WEIGHT_ONLY };

typedef struct conv_case {
    const char *name;
    conv_kind kind;
    ref_conv_shape s;
    int grads;
} conv_case;

static size_t weight_count(const conv_case *c)
{
    return (size_t)c->s.kh * c->s.kw * c->s.cin * (c->kind == CONV ? c->s.cout : 1);
}

/* An output with a guard: allocated one sample longer and filled with NaN;
 * the operation is given the first n samples. guarded_download checks that
 * nothing landed after them (a strip or a store one element too long lands
 * inside a row on an element that its own work-item may write afterwards,
 * but after the last row in the guard) and returns the values, where an
 * element never written stays NaN and fails the comparison. */
static tlcl_tensor guarded_tensor(harness *h, const char *name, tlcl_dtype dtype, int n, int hh, int w, int c)
{
    tlcl_tensor t;
    harness_status(h, tlcl_tensor_alloc_as(h->eng, &t, name, dtype, n + 1, hh, w, c), name);
    harness_status(h, tlcl_tensor_fill(h->eng, &t, NAN), name);
    t.n = n;
    return t;
}

static float *guarded_download(harness *h, const tlcl_tensor *t, const char *what)
{
    tlcl_tensor all = *t;
    all.n = t->n + 1;
    float *x = harness_download(h, &all);
    size_t written = 0;
    for (size_t i = tlcl_tensor_count(t); i < tlcl_tensor_count(&all); i++)
        written += !isnan(x[i]);
    if (written)
        harness_fail(h, "%s: %zu elements written past the end of the output", what, written);
    return x;
}

static void check_forward(harness *h, const conv_case *c, const tlcl_conv_geom *g, tlcl_tensor *x, tlcl_tensor *w,
                          const double *dx, const double *dw)
{
    const ref_conv_shape *s = &c->s;
    size_t ny = (size_t)s->n * s->oh * s->ow * s->cout;
    double *ref = malloc(ny * sizeof *ref);
    tlcl_tensor y = guarded_tensor(h, "y", harness_act_dtype(h), s->n, s->oh, s->ow, s->cout);
    tlcl_status st = c->kind == CONV ? tlcl_conv2d_forward(h->eng, &y, x, w, g)
                                     : tlcl_depthwise_forward(h->eng, &y, x, w, g);
    char what[160];
    snprintf(what, sizeof what, "%s forward", c->name);
    if (!harness_status(h, st, what)) {
        (c->kind == CONV ? ref_conv2d_forward : ref_depthwise_forward)(s, ref, dx, dw);
        float *got = guarded_download(h, &y, what);
        harness_close(h, what, got, ref, ny, harness_act_rtol(h, FWD_TOL), ATOL);
        free(got);
    }
    tlcl_tensor_release(h->eng, &y);
    free(ref);
}

/* out = residual + act(bn(conv)): ref (the part without the residual) plus
 * a random residual, in double. */
static void check_conv_bn_add(harness *h, const conv_case *c, const tlcl_conv_geom *g, tlcl_tensor *x,
                              tlcl_tensor *w, tlcl_bn *bn, int act, const double *ref)
{
    const ref_conv_shape *s = &c->s;
    size_t n = (size_t)s->n * s->oh * s->ow * s->cout;
    float *r = malloc(n * sizeof *r);
    harness_fill(h, r, n, -1.0f, 1.0f);
    tlcl_tensor res = harness_act_tensor(h, "residual", s->n, s->oh, s->ow, s->cout, r); /* rounds r first */
    double *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++)
        want[i] = ref[i] + (double)r[i];
    tlcl_tensor y = guarded_tensor(h, "y", harness_act_dtype(h), s->n, s->oh, s->ow, s->cout);
    char what[160];
    snprintf(what, sizeof what, "%s + batch norm + act %d + residual fused", c->name, act);
    if (!harness_status(h, tlcl_conv2d_bn_add_forward(h->eng, &y, x, w, g, bn, (tlcl_act)act, &res), what)) {
        float *got = guarded_download(h, &y, what);
        harness_close(h, what, got, want, n, harness_act_rtol(h, FWD_TOL), ATOL);
        free(got);
    }
    tlcl_tensor_release(h->eng, &res), tlcl_tensor_release(h->eng, &y);
    free(r), free(want);
}

/* The convolution with inference-mode batch norm and an activation fused
 * into its output (the GEMM epilogue, or the depthwise kernel's), against
 * the double convolution followed by the double batch norm. */
static void check_conv_bn(harness *h, const conv_case *c, const tlcl_conv_geom *g, tlcl_tensor *x, tlcl_tensor *w,
                          const double *dx, const double *dw, int act)
{
    const ref_conv_shape *s = &c->s;
    int C = s->cout, M = s->n * s->oh * s->ow;
    float *p[4];
    for (int k = 0; k < 4; k++) {
        p[k] = malloc((size_t)C * sizeof *p[k]);
        harness_fill(h, p[k], (size_t)C, k == 3 ? 0.5f : -1.0f, k == 3 ? 2.0f : 1.0f); /* gamma beta mean var */
    }
    double *conv = malloc((size_t)M * C * sizeof *conv), *ref = malloc((size_t)M * C * sizeof *ref);
    double *d[4];
    for (int k = 0; k < 4; k++)
        d[k] = harness_to_double(p[k], (size_t)C);
    (c->kind == CONV ? ref_conv2d_forward : ref_depthwise_forward)(s, conv, dx, dw);
    ref_bn_forward(0, M, C, conv, d[0], d[1], d[2], d[3], 0.99, 1e-3, act, ref, NULL, NULL);
    tlcl_tensor t[4], y = guarded_tensor(h, "y", harness_act_dtype(h), s->n, s->oh, s->ow, C);
    for (int k = 0; k < 4; k++)
        t[k] = harness_tensor(h, "bn param", 1, 1, 1, C, p[k]);
    tlcl_bn bn = {.gamma = &t[0], .beta = &t[1], .moving_mean = &t[2], .moving_var = &t[3], .momentum = 0.99f,
                  .epsilon = 1e-3f};
    char what[160];
    snprintf(what, sizeof what, "%s + batch norm (inference) + act %d fused", c->name, act);
    tlcl_status st = c->kind == CONV ? tlcl_conv2d_bn_forward(h->eng, &y, x, w, g, &bn, (tlcl_act)act)
                                     : tlcl_depthwise_bn_forward(h->eng, &y, x, w, g, &bn, (tlcl_act)act);
    if (!harness_status(h, st, what)) {
        float *got = guarded_download(h, &y, what);
        harness_close(h, what, got, ref, (size_t)M * C, harness_act_rtol(h, FWD_TOL), ATOL);
        free(got);
    }
    if (c->kind == CONV) /* and with a residual added after the activation */
        check_conv_bn_add(h, c, g, x, w, &bn, act, ref);
    tlcl_bn_release(h->eng, &bn);
    tlcl_tensor_release(h->eng, &y);
    for (int k = 0; k < 4; k++)
        tlcl_tensor_release(h->eng, &t[k]), free(p[k]), free(d[k]);
    free(conv), free(ref);
}

/* guarded: t is a guarded_tensor (a feature map, din); else dweight (float32) */
static void check_grad(harness *h, const char *name, const char *which, const tlcl_tensor *t, const double *ref,
                       double offset, int guarded, double rtol)
{
    size_t n = tlcl_tensor_count(t);
    double *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++)
        want[i] = (ref ? ref[i] : 0.0) + offset;
    char what[160];
    snprintf(what, sizeof what, "%s %s", name, which);
    float *got = guarded ? guarded_download(h, t, what) : harness_download(h, t);
    harness_close(h, what, got, want, n, rtol, ATOL);
    free(got), free(want);
}

static void check_backward(harness *h, const conv_case *c, const tlcl_conv_geom *g, tlcl_tensor *x, tlcl_tensor *w,
                           const double *dx, const double *dw)
{
    const ref_conv_shape *s = &c->s;
    size_t nx = (size_t)s->n * s->h * s->w * s->cin, nw = weight_count(c), ny = (size_t)s->n * s->oh * s->ow * s->cout;
    float *r = malloc(ny * sizeof *r);
    harness_fill(h, r, ny, -1, 1);
    tlcl_tensor dy = harness_act_tensor(h, "dy", s->n, s->oh, s->ow, s->cout, r); /* rounds r first */
    double *dr = harness_to_double(r, ny), *ref_dx = malloc(nx * sizeof *ref_dx), *ref_dw = malloc(nw * sizeof *ref_dw);
    (c->kind == CONV ? ref_conv2d_backward : ref_depthwise_backward)(s, ref_dx, ref_dw, dr, dx, dw);
    tlcl_tensor gx = guarded_tensor(h, "dx", harness_act_dtype(h), s->n, s->h, s->w, s->cin);
    tlcl_tensor gw = harness_tensor(h, "dw", w->n, w->h, w->w, w->c, NULL);
    harness_status(h, tlcl_tensor_fill(h->eng, &gw, DW_PREFILL), "fill dw");
    tlcl_tensor *pgx = c->grads == GRAD_WEIGHT_ONLY ? NULL : &gx, *pgw = c->grads == GRAD_INPUT_ONLY ? NULL : &gw;
    tlcl_status st = c->kind == CONV ? tlcl_conv2d_backward(h->eng, pgx, pgw, &dy, x, w, g)
                                     : tlcl_depthwise_backward(h->eng, pgx, pgw, &dy, x, w, g);
    if (!harness_status(h, st, c->name)) {
        if (pgx)
            check_grad(h, c->name, "din", &gx, ref_dx, 0.0, 1, harness_act_rtol(h, GRAD_TOL));
        /* the weight gradient is float32 whatever the feature maps' storage */
        if (pgw)
            check_grad(h, c->name, "dweight (+= onto 0.5)", &gw, ref_dw, DW_PREFILL, 0, GRAD_TOL);
        else /* not asked for: untouched */
            check_grad(h, c->name, "dweight untouched (NULL)", &gw, NULL, DW_PREFILL, 0, GRAD_TOL);
    }
    tlcl_tensor_release(h->eng, &dy), tlcl_tensor_release(h->eng, &gx), tlcl_tensor_release(h->eng, &gw);
    free(r), free(dr), free(ref_dx), free(ref_dw);
}

static void run_case(harness *h, const conv_case *c)
{
    const ref_conv_shape *s = &c->s;
    size_t nx = (size_t)s->n * s->h * s->w * s->cin, nw = weight_count(c);
    float *fx = malloc(nx * sizeof *fx), *fw = malloc(nw * sizeof *fw);
    harness_fill(h, fx, nx, -1, 1);
    harness_fill(h, fw, nw, -1, 1);
    tlcl_tensor x = harness_act_tensor(h, "x", s->n, s->h, s->w, s->cin, fx); /* rounds fx first */
    tlcl_tensor w = c->kind == CONV ? harness_tensor(h, "w", s->kh, s->kw, s->cin, s->cout, fw)
                                    : harness_tensor(h, "w", s->kh, s->kw, 1, s->cin, fw);
    double *dx = harness_to_double(fx, nx), *dw = harness_to_double(fw, nw);
    tlcl_conv_geom g = {s->kh, s->kw, s->stride, s->pad_top, s->pad_left};
    check_forward(h, c, &g, &x, &w, dx, dw);
    check_conv_bn(h, c, &g, &x, &w, dx, dw, s->cout % 2 ? TLCL_ACT_SWISH : TLCL_ACT_RELU6);
    check_backward(h, c, &g, &x, &w, dx, dw);
    tlcl_tensor_release(h->eng, &x), tlcl_tensor_release(h->eng, &w);
    free(fx), free(fw), free(dx), free(dw);
}

/* An op refused for a tensor's storage: TLCL_ERR_ARG and a message naming it. */
static void expect_refused(harness *h, tlcl_status st, const char *what, const char *tensor)
{
    const char *msg = tlcl_engine_error(h->eng);
    harness_expectf(h, st == TLCL_ERR_ARG && strstr(msg, tensor) && strstr(msg, "stored as"),
                    "%s refused, naming '%s' (%s)", what, tensor, st == TLCL_OK ? "accepted" : msg);
}

static tlcl_tensor stored_as(harness *h, const char *name, tlcl_dtype dtype, int n, int hh, int w, int c)
{
    tlcl_tensor t;
    harness_status(h, tlcl_tensor_alloc_as(h->eng, &t, name, dtype, n, hh, w, c), name);
    return t;
}

/* Feature maps of mixed storage, or a bfloat16 weight: every depthwise
 * entry point refuses them (a kernel would read the one storage as the
 * other). */
static void check_dw_storage(harness *h)
{
    tlcl_tensor x16 = stored_as(h, "x16", TLCL_BF16, 1, 4, 4, 8), y32 = stored_as(h, "y32", TLCL_F32, 1, 4, 4, 8);
    tlcl_tensor w16 = stored_as(h, "w16", TLCL_BF16, 3, 3, 1, 8), w32 = stored_as(h, "w32", TLCL_F32, 3, 3, 1, 8);
    tlcl_conv_geom g = {3, 3, 1, 1, 1};
    expect_refused(h, tlcl_depthwise_forward(h->eng, &y32, &x16, &w32, &g), "dw forward bf16 -> f32", "y32");
    expect_refused(h, tlcl_depthwise_forward(h->eng, &x16, &y32, &w32, &g), "dw forward f32 -> bf16", "x16");
    expect_refused(h, tlcl_depthwise_forward(h->eng, &y32, &y32, &w16, &g), "dw forward, bf16 weight", "w16");
    expect_refused(h, tlcl_depthwise_backward(h->eng, &y32, NULL, &x16, &x16, &w32, &g), "dw backward f32 din",
                   "y32");
    expect_refused(h, tlcl_depthwise_backward(h->eng, NULL, &w16, &x16, &x16, &w32, &g), "dw backward bf16 dweight",
                   "w16");
    tlcl_tensor_release(h->eng, &x16), tlcl_tensor_release(h->eng, &y32);
    tlcl_tensor_release(h->eng, &w16), tlcl_tensor_release(h->eng, &w32);
}

/* TF 'same' padding on both axes, from the reference's rule (not the
 * engine's tlcl_conv_same, which check_same_helper tests against it). */
static conv_case same(const char *name, conv_kind kind, int n, int hh, int w, int cin, int cout, int k, int stride)
{
    conv_case c = {name, kind, {.n = n, .h = hh, .w = w, .cin = cin, .cout = kind == CONV ? cout : cin, .kh = k,
                                .kw = k, .stride = stride}, GRAD_BOTH};
    ref_conv_same(hh, k, stride, &c.s.oh, &c.s.pad_top);
    ref_conv_same(w, k, stride, &c.s.ow, &c.s.pad_left);
    return c;
}

/* Explicit padding: (top, bottom) and (left, right), then 'valid'. */
static conv_case padded(const char *name, conv_kind kind, int n, int hh, int w, int cin, int cout, int k, int stride,
                        int top, int bottom, int left, int right)
{
    conv_case c = {name, kind, {.n = n, .h = hh, .w = w, .cin = cin, .cout = kind == CONV ? cout : cin, .kh = k,
                                .kw = k, .stride = stride, .pad_top = top, .pad_left = left}, GRAD_BOTH};
    c.s.oh = (hh + top + bottom - k) / stride + 1;
    c.s.ow = (w + left + right - k) / stride + 1;
    return c;
}

static conv_case grads(conv_case c, int which)
{
    c.grads = which;
    return c;
}

/* The reference 'same' rule on TensorFlow's worked values, then the
 * engine's tlcl_conv_same (what the models build their layers with)
 * against it over every size, kernel and stride the networks use and more. */
static void check_same_helper(harness *h)
{
    /* in 7, k 3, s 2: out 4, total pad 2, before 1; in 10, k 3, s 2: out 5,
     * total 1, before 0 (the extra column after); in 1, k 5, s 1: out 1,
     * total 4, before 2; in 224, k 3, s 2: out 112, total 1, before 0;
     * in 5, k 1, s 2: out 3, total 0; in 4, k 1, s 3: out 2, total 0; in 7,
     * k 1, s 4: out 2, (2-1)*4+1-7 = -2, so no padding */
    static const int tf[][5] = {{7, 3, 2, 4, 1},     {10, 3, 2, 5, 0}, {1, 5, 1, 1, 2},
                                {224, 3, 2, 112, 0}, {5, 1, 2, 3, 0},  {4, 1, 3, 2, 0}, {7, 1, 4, 2, 0}};
    int bad = 0;
    for (size_t i = 0; i < sizeof tf / sizeof *tf; i++) {
        int o, p;
        ref_conv_same(tf[i][0], tf[i][1], tf[i][2], &o, &p);
        if (o != tf[i][3] || p != tf[i][4]) {
            harness_fail(h, "ref_conv_same(in %d, k %d, s %d) = (%d, %d), TensorFlow's (%d, %d)", tf[i][0], tf[i][1],
                         tf[i][2], o, p, tf[i][3], tf[i][4]);
            bad = 1;
        }
    }
    if (!bad)
        harness_expect(h, 1, "ref_conv_same on TensorFlow's values");
    long checked = 0, wrong = 0;
    for (int in = 1; in <= 64; in++)
        for (int k = 1; k <= 7; k++)
            for (int s = 1; s <= 4; s++, checked++) {
                int o, p, ro, rp;
                tlcl_conv_same(in, k, s, &o, &p);
                ref_conv_same(in, k, s, &ro, &rp);
                if ((o != ro || p != rp) && wrong++ < 5)
                    harness_fail(h, "tlcl_conv_same(in %d, k %d, s %d) = (%d, %d), want (%d, %d)", in, k, s, o, p, ro,
                                 rp);
            }
    if (wrong == 0)
        harness_expect(h, 1, "tlcl_conv_same = ref_conv_same over in 1..64, k 1..7, stride 1..4");
    else
        printf("     ... %ld of %ld differ\n", wrong, checked);
}

static void check_resize(harness *h, int n, int hh, int w, int c, int oh, int ow)
{
    size_t nx = (size_t)n * hh * w * c, ny = (size_t)n * oh * ow * c;
    float *fx = malloc(nx * sizeof *fx), *fr = malloc(ny * sizeof *fr);
    harness_fill(h, fx, nx, -1, 1);
    harness_fill(h, fr, ny, -1, 1);
    double *dx = harness_to_double(fx, nx), *dr = harness_to_double(fr, ny);
    double *ref_y = malloc(ny * sizeof *ref_y), *ref_dx = malloc(nx * sizeof *ref_dx);
    ref_resize_bilinear_forward(n, hh, w, c, oh, ow, ref_y, dx);
    ref_resize_bilinear_backward(n, hh, w, c, oh, ow, ref_dx, dr);
    tlcl_tensor x = harness_tensor(h, "x", n, hh, w, c, fx), y = guarded_tensor(h, "y", TLCL_F32, n, oh, ow, c);
    tlcl_tensor dy = harness_tensor(h, "dy", n, oh, ow, c, fr), gx = guarded_tensor(h, "dx", TLCL_F32, n, hh, w, c);
    char what[160];
    snprintf(what, sizeof what, "resize %dx%dx%dx%d -> %dx%d forward", n, hh, w, c, oh, ow);
    if (!harness_status(h, tlcl_resize_bilinear_forward(h->eng, &y, &x), what)) {
        float *got = guarded_download(h, &y, what);
        harness_close(h, what, got, ref_y, ny, FWD_TOL, ATOL);
        free(got);
    }
    snprintf(what, sizeof what, "resize %dx%dx%dx%d -> %dx%d din", n, hh, w, c, oh, ow);
    if (!harness_status(h, tlcl_resize_bilinear_backward(h->eng, &gx, &dy), what)) {
        float *got = guarded_download(h, &gx, what);
        harness_close(h, what, got, ref_dx, nx, GRAD_TOL, ATOL);
        free(got);
    }
    tlcl_tensor_release(h->eng, &x), tlcl_tensor_release(h->eng, &y);
    tlcl_tensor_release(h->eng, &dy), tlcl_tensor_release(h->eng, &gx);
    free(fx), free(fr), free(dx), free(dr), free(ref_y), free(ref_dx);
}

/* A convolution given feature maps of mixed storage, or a bfloat16 weight
 * or weight gradient, fails naming the tensor and both storages. */
static void expect_storage_error(harness *h, tlcl_status st, const char *tensor, const char *what)
{
    const char *msg = tlcl_engine_error(h->eng);
    harness_expectf(h, st == TLCL_ERR_ARG && strstr(msg, tensor) && strstr(msg, "bfloat16") && strstr(msg, "float32"),
                    "%s refused: %s", what, msg);
}

static void check_mixed_storage(harness *h)
{
    tlcl_tensor t[6];
    const char *names[6] = {"x16", "y32", "w32", "w16", "dx32", "dy16"};
    const tlcl_dtype dt[6] = {TLCL_BF16, TLCL_F32, TLCL_F32, TLCL_BF16, TLCL_F32, TLCL_BF16};
    const int shape[6][4] = {{1, 4, 4, 16}, {1, 4, 4, 16}, {3, 3, 16, 16}, {3, 3, 16, 16}, {1, 4, 4, 16}, {1, 4, 4, 16}};
    for (int i = 0; i < 6; i++)
        harness_status(h, tlcl_tensor_alloc_as(h->eng, &t[i], names[i], dt[i], shape[i][0], shape[i][1], shape[i][2],
                                               shape[i][3]), names[i]);
    tlcl_conv_geom g = {3, 3, 1, 1, 1};
    expect_storage_error(h, tlcl_conv2d_forward(h->eng, &t[1], &t[0], &t[2], &g), "y32",
                         "conv2d forward, bfloat16 input into a float32 output");
    expect_storage_error(h, tlcl_conv2d_forward(h->eng, &t[5], &t[0], &t[3], &g), "w16",
                         "conv2d forward with a bfloat16 weight");
    expect_storage_error(h, tlcl_conv2d_backward(h->eng, &t[4], NULL, &t[5], &t[0], &t[2], &g), "dx32",
                         "conv2d backward, bfloat16 dY into a float32 dX");
    expect_storage_error(h, tlcl_conv2d_backward(h->eng, NULL, &t[3], &t[5], &t[0], &t[2], &g), "w16",
                         "conv2d backward into a bfloat16 weight gradient");
    for (int i = 0; i < 6; i++)
        tlcl_tensor_release(h->eng, &t[i]);
}

int main(void)
{
    harness h;
    harness_init(&h, 1);
    check_same_helper(&h);
    check_dw_storage(&h);
    check_mixed_storage(&h);
    const conv_case cases[] = {
        same("conv 3x3 s1 same 2x5x5 3->4", CONV, 2, 5, 5, 3, 4, 3, 1),
        same("conv stem 3x3 s2 1x11x11 3->8", CONV, 1, 11, 11, 3, 8, 3, 2),
        same("conv 3x3 s2 same 1x7x9 5->13", CONV, 1, 7, 9, 5, 13, 3, 2),
        same("conv 5x5 s1 same 1x6x5 13->3", CONV, 1, 6, 5, 13, 3, 5, 1),
        padded("conv V1 3x3 s2 pad (0,1) 1x10x8 3->5", CONV, 1, 10, 8, 3, 5, 3, 2, 0, 1, 0, 1),
        padded("conv V1 5x5 s2 pad (1,2) 2x6x8 4->3", CONV, 2, 6, 8, 4, 3, 5, 2, 1, 2, 1, 2),
        same("conv 1x1 GEMM 2x3x5 13->16", CONV, 2, 3, 5, 13, 16, 1, 1),
        same("conv 1x1 GEMM 1x1x1 5->3", CONV, 1, 1, 1, 5, 3, 1, 1),
        /* N = 48 and 40: the wide GEMM tile, then the one-vector and narrow
         * strips and the edge, each with and without the fused epilogue */
        same("conv 1x1 GEMM 2x4x5 13->48", CONV, 2, 4, 5, 13, 48, 1, 1),
        same("conv 3x3 s1 GEMM 1x5x7 6->40", CONV, 1, 5, 7, 6, 40, 3, 1),
        /* odd cout (swish) over whole tiles: the epilogue's exp on the
         * 16-wide vectors of the wide and one-vector strips (13 -> 3 and
         * 5 -> 13 reach only the 8-wide strip and the edge); K = 16 and 24,
         * the early blocks' small K; 57 = 32 + 16 + 8 + 1 */
        same("conv 1x1 GEMM K=16 swish 1x4x6 16->97", CONV, 1, 4, 6, 16, 97, 1, 1),
        same("conv 1x1 GEMM K=24 swish 2x4x5 24->57", CONV, 2, 4, 5, 24, 57, 1, 1),
        same("conv 1x1 s2 (im2col) 1x7x9 5->3", CONV, 1, 7, 9, 5, 3, 1, 2),
        same("conv 3x3 s1 on 1x1 spatial 2x1x1 16->5", CONV, 2, 1, 1, 16, 5, 3, 1),
        /* K = 9 * 64 over 4 output rows: the GEMM splits K (the fused epilogue runs on the sum) */
        same("conv 3x3 split-K 1x2x2 64->8", CONV, 1, 2, 2, 64, 8, 3, 1),
        /* cout a whole number of GEMM vectors: the implicit-GEMM kernels (the
         * last block's rows past M, the wide tile then the one-vector strip);
         * stride 1 with cin a whole number too: the input gradient as the
         * flipped-weight convolution, uneven and no padding included */
        same("conv 3x3 s1 implicit 2x5x7 16->48", CONV, 2, 5, 7, 16, 48, 3, 1),
        same("conv stem 3x3 s2 implicit 1x9x7 3->32", CONV, 1, 9, 7, 3, 32, 3, 2),
        padded("conv 3x3 s1 implicit pad (0,2)x(1,0) 1x6x9 32->16", CONV, 1, 6, 9, 32, 16, 3, 1, 0, 2, 1, 0),
        /* 32 -> 16: the weight gradient with input channels as the vectors
         * (conv_wgrad_ci on 16-wide devices), over two samples at stride 2 */
        same("conv 3x3 s2 implicit narrow 2x9x7 32->16", CONV, 2, 9, 7, 32, 16, 3, 2),
        padded("conv 5x5 s1 implicit valid 1x7x8 16->16", CONV, 1, 7, 8, 16, 16, 5, 1, 0, 0, 0, 0),
        same("conv 3x3 s1 wide (im2col weight gradient) 1x5x6 16->80", CONV, 1, 5, 6, 16, 80, 3, 1),
        /* cin a whole number of vectors at stride 2 and 3: the input gradient
         * as one convolution per phase of the stride grid, stored on its phase
         * (2x2 taps, 2x1, 1x2, 1x1 at 3x3 s2; 'same' with no top padding on
         * even sizes; a 1x1 kernel at stride 2 leaves phases no tap reaches) */
        same("conv 3x3 s2 phases 2x10x8 16->24", CONV, 2, 10, 8, 16, 24, 3, 2),
        padded("conv 5x5 s2 phases pad (1,2)x(2,1) 1x9x7 16->8", CONV, 1, 9, 7, 16, 8, 5, 2, 1, 2, 2, 1),
        same("conv 3x3 s3 phases 1x8x7 32->16", CONV, 1, 8, 7, 32, 16, 3, 3),
        grads(same("conv 1x1 s2 phases din only 1x7x9 16->8", CONV, 1, 7, 9, 16, 8, 1, 2), GRAD_INPUT_ONLY),
        grads(same("conv 3x3 s1 implicit din only 1x4x5 16->16", CONV, 1, 4, 5, 16, 16, 3, 1), GRAD_INPUT_ONLY),
        grads(same("conv 3x3 s2 din only 1x5x4 3->2", CONV, 1, 5, 4, 3, 2, 3, 2), GRAD_INPUT_ONLY),
        grads(same("conv 1x1 dweight only 1x3x3 4->5", CONV, 1, 3, 3, 4, 5, 1, 1), GRAD_WEIGHT_ONLY),
        same("dw 3x3 s1 same 2x5x5 C=3", DEPTHWISE, 2, 5, 5, 3, 0, 3, 1),
        same("dw 3x3 s2 same 1x7x9 C=5", DEPTHWISE, 1, 7, 9, 5, 0, 3, 2),
        same("dw 5x5 s1 same 1x6x7 C=13", DEPTHWISE, 1, 6, 7, 13, 0, 5, 1),
        same("dw 5x5 s2 same 1x7x9 C=16", DEPTHWISE, 1, 7, 9, 16, 0, 5, 2),
        same("dw 3x3 s1 same 2x11x11 C=16", DEPTHWISE, 2, 11, 11, 16, 0, 3, 1),
        same("dw 3x3 s2 same 2x8x8 C=8", DEPTHWISE, 2, 8, 8, 8, 0, 3, 2),
        same("dw 5x5 s1 on 1x1 spatial 2x1x1 C=12", DEPTHWISE, 2, 1, 1, 12, 0, 5, 1),
        same("dw 3x3 s2 on 1x1 spatial 1x1x1 C=5", DEPTHWISE, 1, 1, 1, 5, 0, 3, 2),
        padded("dw V1 3x3 s2 pad (0,1) 1x10x8 C=8", DEPTHWISE, 1, 10, 8, 8, 0, 3, 2, 0, 1, 0, 1),
        padded("dw V1 5x5 s2 pad (1,2) 1x6x8 C=7", DEPTHWISE, 1, 6, 8, 7, 0, 5, 2, 1, 2, 1, 2),
        /* stride 1 takes the mirrored-forward input gradient: uneven and no padding */
        padded("dw 3x3 s1 pad (0,2)x(1,0) 2x6x9 C=32", DEPTHWISE, 2, 6, 9, 32, 0, 3, 1, 0, 2, 1, 0),
        padded("dw 5x5 s1 valid 1x7x12 C=24", DEPTHWISE, 1, 7, 12, 24, 0, 5, 1, 0, 0, 0, 0),
        /* Strip edges. A work-item computes a strip of DW_STRIP outputs along x
         * (8 on CPUs, 4 on GPUs) and skips the bounds checks when the strip's
         * taps stay inside the row: x0 + (DW_STRIP-1)*stride + k <= W. Each
         * shape below has, at both strip widths, a strip whose last tap reads
         * column W - 1 exactly (the largest strip without checks: one column
         * more reads the next row), forward and, at stride 1, in the input
         * gradient (the mirrored forward over dout); 3x3 and 5x5, strides 1
         * and 2, the unrolled instances (C = 16) and the generic ones (C = 3,
         * 5, 8 on 16-wide devices). The input gradient at stride 2 gathers
         * over strips of inputs: W = 8k+7 and 8k+1 leave a last strip one
         * short of whole and one past whole, at 8 and 4 wide. */
        same("dw 3x3 s1 strip edge 1x3x16 C=16", DEPTHWISE, 1, 3, 16, 16, 0, 3, 1),
        same("dw 3x3 s1 strip edge 1x3x16 C=3", DEPTHWISE, 1, 3, 16, 3, 0, 3, 1),
        same("dw 5x5 s1 strip edge 1x3x17 C=8", DEPTHWISE, 1, 3, 17, 8, 0, 5, 1),
        same("dw 3x3 s2 strip edge 1x4x16 C=16", DEPTHWISE, 1, 4, 16, 16, 0, 3, 2),
        same("dw 3x3 s2 strip edge 1x3x31 C=5", DEPTHWISE, 1, 3, 31, 5, 0, 3, 2),
        padded("dw 5x5 s2 strip edge pad (1,2)x(0,1) 1x5x18 C=16", DEPTHWISE, 1, 5, 18, 16, 0, 5, 2, 1, 2, 0, 1),
        same("dw 3x3 s2 strip 8k+1 1x3x17 C=16", DEPTHWISE, 1, 3, 17, 16, 0, 3, 2),
        /* bfloat16 on 16-wide devices reads an inside strip's span as whole
         * 64-byte lines when Cv is even (C = 32: one line per pixel, both
         * halves; C = 64: two lines): a strip from x0 = 7 (3x3) and 6 (5x5)
         * is inside, forward and in the stride-1 input gradient */
        same("dw 3x3 s1 paired lines 1x4x20 C=32", DEPTHWISE, 1, 4, 20, 32, 0, 3, 1),
        same("dw 5x5 s1 paired lines 1x5x20 C=64", DEPTHWISE, 1, 5, 20, 64, 0, 5, 1),
        grads(same("dw 3x3 s1 din only 1x4x4 C=4", DEPTHWISE, 1, 4, 4, 4, 0, 3, 1), GRAD_INPUT_ONLY),
        grads(same("dw 5x5 s2 dweight only 1x5x5 C=3", DEPTHWISE, 1, 5, 5, 3, 0, 5, 2), GRAD_WEIGHT_ONLY),
        /* The unrolled stride-2 input gradient (depthwise_backward_input_k3s2 /
         * k5s2) has a body per phase P = (x0 + pad_left) mod 2: both phases
         * at 3x3 and 5x5 (pad_left 1 and 2, 0 and 1), several channel
         * vectors, a strip past the row's end and output columns missing at
         * both edges. */
        padded("dw 5x5 s2 phase 1 pad (1,2)x(1,2) 2x9x13 C=32", DEPTHWISE, 2, 9, 13, 32, 0, 5, 2, 1, 2, 1, 2),
        padded("dw 5x5 s2 phase 0 pad (2,1)x(2,1) 1x8x19 C=48", DEPTHWISE, 1, 8, 19, 48, 0, 5, 2, 2, 1, 2, 1),
        padded("dw 3x3 s2 phase 1 pad (1,1)x(1,1) 1x7x11 C=48", DEPTHWISE, 1, 7, 11, 48, 0, 3, 2, 1, 1, 1, 1),
        padded("dw 3x3 s2 phase 0 valid 2x9x21 C=32", DEPTHWISE, 2, 9, 21, 32, 0, 3, 2, 0, 0, 0, 0),
    };
    /* quick: the im2col, GEMM, split-K, implicit, phase and depthwise paths once each */
    static const size_t quick[] = {0, 2, 8, 12, 14, 20, 23, 26, 27, 29};
    size_t ncases = h.quick ? sizeof quick / sizeof *quick : sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < ncases; i++)
        run_case(&h, &cases[h.quick ? quick[i] : i]);
    if (h.quick) {
        check_resize(&h, 1, 3, 4, 3, 7, 5);
        check_resize(&h, 2, 9, 7, 5, 4, 3);
        return harness_finish(&h);
    }
    /* A sample's col rows take 3*3*27 floats = 972 bytes: a 2000-byte cap
     * sends the batch of 3 through as chunks of 2 and 1. */
    tlcl_settings saved = *tlcl_cl_settings(h.cl), chunks = saved;
    chunks.conv_col_bytes = 2000;
    tlcl_cl_settings_override(h.cl, &chunks);
    conv_case chunked = same("conv 3x3 s2 chunked 3x5x5 3->4", CONV, 3, 5, 5, 3, 4, 3, 2);
    run_case(&h, &chunked);
    tlcl_cl_settings_override(h.cl, &saved);
    check_resize(&h, 1, 3, 4, 3, 7, 5);
    check_resize(&h, 2, 9, 7, 5, 4, 3);
    check_resize(&h, 1, 5, 6, 13, 5, 6);
    check_resize(&h, 1, 1, 1, 4, 3, 3);
    check_resize(&h, 2, 5, 5, 3, 1, 1);
    check_resize(&h, 2, 6, 6, 16, 11, 11);
    check_resize(&h, 1, 4, 8, 5, 6, 3);
    return harness_finish(&h);
}
