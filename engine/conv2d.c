/* conv2d.c — k×k convolutions as im2col + GEMM or as implicit GEMMs
 * (gemm.cl's conv_tile, conv_wgrad: narrow outputs; the input gradient as
 * convolutions of dY, one per phase of the stride grid), GEMM + gathering
 * col2im where neither applies; a 1×1 stride-1 unpadded convolution is a
 * GEMM on the NHWC tensor itself. Kernels in cl/kernels/conv2d.cl. */
#include "norm_internal.h"
#include "tlcl_programs.h"

#include <stdio.h>
#include <stdlib.h>

/* The col buffer's cap: large batches are processed in chunks of samples. */
#define CONV_COL_MAX_BYTES ((size_t)256 << 20)
#define CONV_COL_CPU_BYTES ((size_t)8 << 20)

void tlcl_conv_same(int in, int k, int stride, int *out, int *pad_before)
{
    int o = (in + stride - 1) / stride;
    int total = (o - 1) * stride + k - in;
    *out = o;
    *pad_before = total > 0 ? total / 2 : 0;
}

typedef struct conv_dims {
    int N, H, W, cin, OH, OW, cout;
    int K;          /* kh * kw * cin: a col row */
    tlcl_dtype act; /* the feature maps' storage (in, out and their gradients); weights are float32 */
} conv_dims;

/* Shapes follow from in, out and the weight; the geometry must agree with
 * them. out (or dY) is stored as in, the weight as float32. */
static tlcl_status conv_check(tlcl_engine *e, const tlcl_tensor *out, const tlcl_tensor *in, const tlcl_tensor *weight,
                              const tlcl_conv_geom *g, const char *op, conv_dims *d)
{
    *d = (conv_dims){in->n, in->h, in->w, in->c, out->h, out->w, out->c, g->kh * g->kw * in->c, in->dtype};
    if (g->kh < 1 || g->kw < 1 || g->stride < 1 || g->pad_top < 0 || g->pad_left < 0)
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: bad geometry k=%dx%d stride %d pad (%d,%d)", op, g->kh, g->kw,
                        g->stride, g->pad_top, g->pad_left);
    TLCL_TRY(eng_check_shape(e, weight, g->kh, g->kw, d->cin, d->cout, op));
    TLCL_TRY(eng_check_dtype(e, weight, TLCL_F32, op));
    TLCL_TRY(eng_check_dtype(e, out, d->act, op));
    return eng_check_shape(e, out, d->N, d->OH, d->OW, d->cout, op);
}

/* The GEMMs' operand storage: a forward or an input gradient (feature map
 * times the float32 weight into a feature map), a weight gradient (two
 * feature maps into the float32 dW). */
static tlcl_gemm_storage conv_fwd_storage(const conv_dims *d)
{
    return (tlcl_gemm_storage){d->act, TLCL_F32, d->act};
}
static tlcl_gemm_storage conv_wgrad_storage(const conv_dims *d)
{
    return (tlcl_gemm_storage){d->act, d->act, TLCL_F32};
}

static int conv_is_gemm(const conv_dims *d, const tlcl_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->stride == 1 && g->pad_top == 0 && g->pad_left == 0 && d->OH == d->H &&
           d->OW == d->W;
}

/* Samples per chunk so that the col buffer (col_dt elements) stays under
 * the cap and the device's largest allocation (at least one sample).
 * $TLCL_CONV_COL_BYTES lowers the cap so the tests can reach the chunked
 * path with small shapes. */
static int conv_chunk(tlcl_engine *e, const conv_dims *d, tlcl_dtype col_dt)
{
    /* on a CPU a chunk's col rows should still be in the cache when the GEMM
     * reads them back (V2-B0's training step: 28.5 -> 36.2 img/s with 8 MiB) */
    size_t cap = eng_on_cpu(e) ? CONV_COL_CPU_BYTES : CONV_COL_MAX_BYTES;
    size_t max_alloc = tlcl_cl_device(e->cl)->max_alloc_bytes;
    if (tlcl_cl_settings(e->cl)->conv_col_bytes > 0)
        cap = tlcl_cl_settings(e->cl)->conv_col_bytes;
    if (max_alloc && max_alloc < cap)
        cap = max_alloc;
    size_t per_sample = (size_t)d->OH * d->OW * d->K * eng_dtype_size(col_dt);
    size_t nb = per_sample ? cap / per_sample : (size_t)d->N;
    if (nb < 1)
        nb = 1;
    return nb < (size_t)d->N ? (int)nb : d->N;
}

static tlcl_status im2col(tlcl_engine *e, tlcl_tensor *col, const tlcl_tensor *in, int n0, int rows,
                          const conv_dims *d, const tlcl_conv_geom *g)
{
    /* a tap of fewer than 16 channels is too little work for a work-item: then it copies the whole row */
    int taps = g->kh * g->kw, tpi = d->cin < 16 ? taps : 1;
    size_t gs = eng_global1((size_t)rows * (size_t)(taps / tpi));
    int V = eng_channel_vector(e, d->cin);
    char kernel[24];
    snprintf(kernel, sizeof kernel, "im2col_%d", V);
    return TLCL_RUN(e->cl, TLCL_PROG(conv2d), eng_dtype_opts(in), kernel, 1, &gs, NULL, TLCL_MEM(col->buf),
                    TLCL_MEM(in->buf),
                    TLCL_INT(n0), TLCL_INT(rows), TLCL_INT(d->H), TLCL_INT(d->W), TLCL_INT(d->cin / V), TLCL_INT(d->OH),
                    TLCL_INT(d->OW), TLCL_INT(g->kh), TLCL_INT(g->kw), TLCL_INT(g->stride), TLCL_INT(g->pad_top),
                    TLCL_INT(g->pad_left), TLCL_INT(tpi));
}

static tlcl_status col2im(tlcl_engine *e, tlcl_tensor *din, const tlcl_tensor *dcol, int n0, int nb,
                          const conv_dims *d, const tlcl_conv_geom *g)
{
    int V = eng_channel_vector(e, d->cin);
    int count = nb * d->H * d->W * (d->cin / V);
    size_t gs = eng_global1((size_t)count);
    char kernel[24];
    snprintf(kernel, sizeof kernel, "col2im_%d", V);
    return TLCL_RUN(e->cl, TLCL_PROG(conv2d), eng_dtype_opts(din), kernel, 1, &gs, NULL, TLCL_MEM(din->buf),
                    TLCL_MEM(dcol->buf),
                    TLCL_INT(n0), TLCL_INT(count), TLCL_INT(d->H), TLCL_INT(d->W), TLCL_INT(d->cin / V),
                    TLCL_INT(d->OH), TLCL_INT(d->OW), TLCL_INT(g->kh), TLCL_INT(g->kw), TLCL_INT(g->stride),
                    TLCL_INT(g->pad_top), TLCL_INT(g->pad_left));
}

/* out = in (*) w as GEMMs, each with the batch-norm epilogue when bn is set
 * (tlcl's own kernels; see conv_bn_fusable). */
static tlcl_status conv_gemm(tlcl_engine *e, const conv_dims *d, int M, int N, int K, cl_mem A, cl_mem B, cl_mem C,
                             size_t c_off, const eng_gemm_bn *bn)
{
    tlcl_gemm_storage st = conv_fwd_storage(d);
    if (bn)
        return eng_gemm_bn_own(e, M, N, K, A, K, B, N, C, c_off, N, bn, &st);
    return tlcl_gemm_ex(e, 0, 0, M, N, K, 1.0f, A, 0, K, B, 0, N, 0.0f, C, c_off, N, &st);
}

static tlcl_status conv_forward_chunks(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in,
                                       const tlcl_tensor *weight, const tlcl_conv_geom *g, const conv_dims *d,
                                       const eng_gemm_bn *bn)
{
    int chunk = conv_chunk(e, d, d->act), pix = d->OH * d->OW;
    tlcl_tensor col; /* a copy of the input's windows, in its storage */
    TLCL_TRY(tlcl_tensor_alloc_as(e, &col, "conv2d col", d->act, chunk * pix, 1, 1, d->K));
    tlcl_status s = TLCL_OK;
    for (int n0 = 0; n0 < d->N && s == TLCL_OK; n0 += chunk) {
        int rows = (d->N - n0 < chunk ? d->N - n0 : chunk) * pix;
        s = im2col(e, &col, in, n0, rows, d, g);
        if (s == TLCL_OK)
            s = conv_gemm(e, d, rows, d->cout, d->K, col.buf, weight->buf, out->buf, (size_t)n0 * pix * d->cout, bn);
    }
    tlcl_tensor_release(e, &col);
    return s;
}

static eng_conv_shape conv_shape(const conv_dims *d, const tlcl_conv_geom *g)
{
    return (eng_conv_shape){d->N,  d->H,  d->W,      d->cin,     d->OH,       d->OW,      d->cout,
                            g->kh, g->kw, g->stride, g->pad_top, g->pad_left, d->act};
}

/* The implicit GEMM saves the col buffer's write and read, which cost most
 * next to a narrow product. bench_conv on PoCL (AVX-512, 2 cores),
 * implicit / im2col time, once conv_tile walked a window row as one run:
 * forward 0.84-0.95 at cout 16 and 64, 1.0-1.05 at 128 and 192, and
 * V2-B0 inference in-model, all forward convolutions implicit against
 * cout <= 64 only, alternating steps: 90.3 / 94.2 and 95.2 / 97.3 ms. So
 * the forward is implicit at every width; the weight gradient only for
 * narrow outputs (cout 128: im2col 0.95 of the time, 192: 1.11). */
#define CONV_IMPLICIT_WGRAD_MAX_COUT 64
static int conv_narrow(const eng_conv_shape *s) { return s->cout <= CONV_IMPLICIT_WGRAD_MAX_COUT; }

static tlcl_status conv_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in, const tlcl_tensor *weight,
                                const tlcl_conv_geom *g, const conv_dims *d, const eng_gemm_bn *bn)
{
    if (d->N == 0 || d->OH == 0 || d->OW == 0 || d->cout == 0)
        return TLCL_OK;
    if (conv_is_gemm(d, g))
        return conv_gemm(e, d, d->N * d->H * d->W, d->cout, d->cin, in->buf, weight->buf, out->buf, 0, bn);
    eng_conv_shape s = conv_shape(d, g);
    if (eng_conv_implicit_ok(e, &s))
        return eng_conv_implicit(e, &s, in->buf, weight->buf, out->buf, bn, NULL);
    return conv_forward_chunks(e, out, in, weight, g, d, bn);
}

tlcl_status tlcl_conv2d_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in, const tlcl_tensor *weight,
                                const tlcl_conv_geom *g)
{
    conv_dims d;
    TLCL_TRY(conv_check(e, out, in, weight, g, "conv2d forward", &d));
    return conv_forward(e, out, in, weight, g, &d, NULL);
}

/* Batch norm (and the residual) ride in the GEMM epilogue on tlcl's own
 * kernels; behind CLBlast the convolution goes to a scratch tensor and
 * batch norm and the add run as passes of their own. */
tlcl_status tlcl_conv2d_bn_add_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in,
                                       const tlcl_tensor *weight, const tlcl_conv_geom *g, tlcl_bn *bn, tlcl_act act,
                                       const tlcl_tensor *residual)
{
    conv_dims d;
    TLCL_TRY(conv_check(e, out, in, weight, g, "conv2d+batchnorm forward", &d));
    if (residual) { /* a feature map, read in the output's storage by the epilogue */
        TLCL_TRY(eng_check_shape(e, residual, out->n, out->h, out->w, out->c, "conv2d+batchnorm+add forward"));
        TLCL_TRY(eng_check_dtype(e, residual, d.act, "conv2d+batchnorm+add forward"));
    }
    if (d.act == TLCL_F32 && tlcl_gemm_get_backend(e) == TLCL_GEMM_CLBLAST) { /* no bfloat16 in CLBlast */
        tlcl_tensor conv;
        TLCL_TRY(tlcl_tensor_alloc(e, &conv, "conv2d output", out->n, out->h, out->w, out->c)); /* float32 */
        tlcl_status s = conv_forward(e, &conv, in, weight, g, &d, NULL);
        if (s == TLCL_OK)
            s = tlcl_batchnorm_forward(e, bn, out, &conv, TLCL_BN_INFER, act);
        if (s == TLCL_OK && residual) /* elementwise: out may be an operand */
            s = tlcl_add_forward(e, out, out, residual);
        tlcl_tensor_release(e, &conv);
        return s;
    }
    TLCL_TRY(eng_bn_moving_statistics(e, bn, d.cout, act));
    eng_gemm_bn ep = {bn->saved_mean.buf, bn->saved_istd.buf, bn->gamma->buf, bn->beta->buf, act,
                      residual ? residual->buf : NULL};
    return conv_forward(e, out, in, weight, g, &d, &ep);
}

tlcl_status tlcl_conv2d_bn_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in,
                                   const tlcl_tensor *weight, const tlcl_conv_geom *g, tlcl_bn *bn, tlcl_act act)
{
    return tlcl_conv2d_bn_add_forward(e, out, in, weight, g, bn, act, NULL);
}

/* 1×1: dW += inᵀ · dY, din = dY · Wᵀ straight on the tensors. */
static tlcl_status conv_backward_gemm(tlcl_engine *e, tlcl_tensor *din, tlcl_tensor *dweight,
                                      const tlcl_tensor *dout, const tlcl_tensor *in, const tlcl_tensor *weight,
                                      const conv_dims *d)
{
    int M = d->N * d->H * d->W;
    tlcl_gemm_storage wst = conv_wgrad_storage(d), xst = conv_fwd_storage(d);
    if (dweight)
        TLCL_TRY(tlcl_gemm_ex(e, 1, 0, d->cin, d->cout, M, 1.0f, in->buf, 0, d->cin, dout->buf, 0, d->cout, 1.0f,
                             dweight->buf, 0, d->cout, &wst));
    if (din)
        TLCL_TRY(tlcl_gemm_ex(e, 0, 1, M, d->cin, d->cout, 1.0f, dout->buf, 0, d->cout, weight->buf, 0, d->cout,
                             0.0f, din->buf, 0, d->cin, &xst));
    return TLCL_OK;
}

/* One chunk of samples: the col buffer first holds im2col(in) for the
 * weight gradient, then (the queue is in order) dcol for the input gradient.
 * im2col's copy is in the input's storage; dcol is float32 whatever it is:
 * its entries are partial sums that col2im adds up, so a bfloat16 dcol
 * would round each before the sum (an error relative to the terms, not to
 * din after cancellation); din is rounded once, by col2im. */
static tlcl_status conv_backward_chunk(tlcl_engine *e, tlcl_tensor *col, tlcl_tensor *din, tlcl_tensor *dweight,
                                       const tlcl_tensor *dout, const tlcl_tensor *in, const tlcl_tensor *weight,
                                       const tlcl_conv_geom *g, const conv_dims *d, int n0, int nb)
{
    int rows = nb * d->OH * d->OW;
    size_t dy_off = (size_t)n0 * d->OH * d->OW * d->cout;
    tlcl_gemm_storage wst = conv_wgrad_storage(d), dst = {d->act, TLCL_F32, TLCL_F32};
    if (dweight) {
        TLCL_TRY(im2col(e, col, in, n0, rows, d, g));
        TLCL_TRY(tlcl_gemm_ex(e, 1, 0, d->K, d->cout, rows, 1.0f, col->buf, 0, d->K, dout->buf, dy_off, d->cout,
                             1.0f, dweight->buf, 0, d->cout, &wst));
    }
    if (din) {
        TLCL_TRY(tlcl_gemm_ex(e, 0, 1, rows, d->K, d->cout, 1.0f, dout->buf, dy_off, d->cout, weight->buf, 0,
                             d->cout, 0.0f, col->buf, 0, d->K, &dst));
        TLCL_TRY(col2im(e, din, col, n0, nb, d, g));
    }
    return TLCL_OK;
}

/* A convolution's input gradient as convolutions of dY, one per phase
 * (py, px) of the stride grid. Input row s*a + py is reached from dY
 * through the taps ky = py + pad_top (mod s) only, at consecutive dY rows
 * as the tap steps down by s, so each phase is a stride-1 convolution of
 * dY with those taps turned half a turn and cin, cout swapped (conv2d.cl's
 * conv_weight_phase), run as an implicit GEMM and stored on its phase of
 * din (eng_conv_out_map). Stride 1 has one phase: the whole weight turned,
 * padding k-1-pad. It replaces GEMM + col2im, whose dcol buffer (kh*kw
 * times dY's pixels) is written and read back. A phase no tap reaches
 * (a 1x1 kernel at stride 2) is zero. */
typedef struct conv_phase {
    int ky0, kx0, khp, kwp; /* the phase's first taps and tap counts */
    eng_conv_shape s;       /* the stride-1 convolution of dY */
    eng_conv_out_map map;   /* where its outputs go in din */
} conv_phase;

/* Along one axis: the taps k < ksize with k = p + pad (mod s), first and
 * count, and the phase convolution's padding. */
static void phase_taps(int p, int pad, int s, int ksize, int *k0, int *count, int *phase_pad)
{
    *k0 = (p + pad) % s;
    *count = *k0 < ksize ? (ksize - 1 - *k0) / s + 1 : 0;
    *phase_pad = *count ? (*k0 + (*count - 1) * s - p - pad) / s : 0;
}

/* 0 when the phase's padding would be negative (a padding of k or more). */
static int conv_phase_at(const conv_dims *d, const tlcl_conv_geom *g, int py, int px, conv_phase *ph)
{
    int s = g->stride, pt, pl;
    phase_taps(py, g->pad_top, s, g->kh, &ph->ky0, &ph->khp, &pt);
    phase_taps(px, g->pad_left, s, g->kw, &ph->kx0, &ph->kwp, &pl);
    int Hp = d->H > py ? (d->H - py + s - 1) / s : 0, Wp = d->W > px ? (d->W - px + s - 1) / s : 0;
    ph->s = (eng_conv_shape){d->N, d->OH, d->OW, d->cout, Hp, Wp, d->cin, ph->khp, ph->kwp, 1, pt, pl, d->act};
    ph->map = (eng_conv_out_map){d->H * d->W, s * d->W, s, py * d->W + px};
    return pt >= 0 && pl >= 0;
}

static int conv_phases_ok(tlcl_engine *e, const conv_dims *d, const tlcl_conv_geom *g)
{
    for (int py = 0; py < g->stride; py++)
        for (int px = 0; px < g->stride; px++) {
            conv_phase ph;
            if (!conv_phase_at(d, g, py, px, &ph) || !eng_conv_implicit_ok(e, &ph.s))
                return 0;
        }
    return 1;
}

static tlcl_status conv_backward_input_phases(tlcl_engine *e, tlcl_tensor *din, const tlcl_tensor *dout,
                                              const tlcl_tensor *weight, const conv_dims *d,
                                              const tlcl_conv_geom *g)
{
    int s = g->stride, holes = 0;
    for (int p = 0; p < s * s; p++) {
        conv_phase ph;
        conv_phase_at(d, g, p / s, p % s, &ph);
        holes |= (ph.khp == 0 || ph.kwp == 0) && ph.s.OH > 0 && ph.s.OW > 0;
    }
    if (holes)
        TLCL_TRY(tlcl_tensor_fill(e, din, 0.0f));
    tlcl_tensor wp;
    TLCL_TRY(tlcl_tensor_alloc(e, &wp, "conv2d input-gradient weight", g->kh, g->kw, d->cout, d->cin));
    tlcl_status st = TLCL_OK;
    for (int p = 0; p < s * s && st == TLCL_OK; p++) {
        conv_phase ph;
        conv_phase_at(d, g, p / s, p % s, &ph);
        if (ph.khp == 0 || ph.kwp == 0 || ph.s.OH == 0 || ph.s.OW == 0)
            continue;
        size_t gs = eng_global1((size_t)ph.khp * ph.kwp * d->cout * d->cin);
        /* the queue is in order: this phase's weight is written after the last phase's convolution ran */
        /* float32 weights; the program of the feature maps' storage, which im2col/col2im may share */
        st = TLCL_RUN(e->cl, TLCL_PROG(conv2d), eng_dtype_opts(din), "conv_weight_phase", 1, &gs, NULL,
                      TLCL_MEM(wp.buf),
                      TLCL_MEM(weight->buf), TLCL_INT(g->kw), TLCL_INT(d->cin), TLCL_INT(d->cout), TLCL_INT(ph.ky0),
                      TLCL_INT(ph.kx0), TLCL_INT(s), TLCL_INT(ph.khp), TLCL_INT(ph.kwp));
        if (st == TLCL_OK)
            st = eng_conv_implicit(e, &ph.s, dout->buf, wp.buf, din->buf, NULL, &ph.map);
    }
    tlcl_tensor_release(e, &wp);
    return st;
}

tlcl_status tlcl_conv2d_backward(tlcl_engine *e, tlcl_tensor *din, tlcl_tensor *dweight, const tlcl_tensor *dout,
                                 const tlcl_tensor *in, const tlcl_tensor *weight, const tlcl_conv_geom *g)
{
    conv_dims d;
    TLCL_TRY(conv_check(e, dout, in, weight, g, "conv2d backward", &d));
    if (din) {
        TLCL_TRY(eng_check_shape(e, din, d.N, d.H, d.W, d.cin, "conv2d backward"));
        TLCL_TRY(eng_check_dtype(e, din, d.act, "conv2d backward"));
    }
    if (dweight) {
        TLCL_TRY(eng_check_shape(e, dweight, g->kh, g->kw, d.cin, d.cout, "conv2d backward"));
        TLCL_TRY(eng_check_dtype(e, dweight, TLCL_F32, "conv2d backward"));
    }
    if (!din && !dweight)
        return TLCL_OK;
    if (d.OH == 0 || d.OW == 0 || d.cout == 0) /* nothing reads the input: its gradient is zero */
        return din ? tlcl_tensor_fill(e, din, 0.0f) : TLCL_OK;
    if (conv_is_gemm(&d, g))
        return conv_backward_gemm(e, din, dweight, dout, in, weight, &d);
    if (din && conv_phases_ok(e, &d, g)) {
        TLCL_TRY(conv_backward_input_phases(e, din, dout, weight, &d, g));
        din = NULL; /* the chunks below only compute the weight gradient */
    }
    eng_conv_shape shape = conv_shape(&d, g);
    if (dweight && conv_narrow(&shape) && eng_conv_implicit_ok(e, &shape)) {
        TLCL_TRY(eng_conv_wgrad_implicit(e, &shape, in->buf, dout->buf, dweight->buf));
        dweight = NULL;
    }
    if (!din && !dweight)
        return TLCL_OK;
    /* sized for dcol (float32) when the input gradient goes through it, else for im2col's copy */
    tlcl_dtype col_dt = din ? TLCL_F32 : d.act;
    int chunk = conv_chunk(e, &d, col_dt);
    tlcl_tensor col;
    TLCL_TRY(tlcl_tensor_alloc_as(e, &col, "conv2d col", col_dt, chunk * d.OH * d.OW, 1, 1, d.K));
    tlcl_status s = TLCL_OK;
    for (int n0 = 0; n0 < d.N && s == TLCL_OK; n0 += chunk)
        s = conv_backward_chunk(e, &col, din, dweight, dout, in, weight, g, &d, n0,
                                d.N - n0 < chunk ? d.N - n0 : chunk);
    tlcl_tensor_release(e, &col);
    return s;
}
