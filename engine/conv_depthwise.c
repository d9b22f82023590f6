/* conv_depthwise.c — depthwise k×k convolution: a direct forward kernel,
 * a gathering input gradient and a two-stage weight-gradient reduction
 * (partial sums per chunk of output rows, then a sum over chunks), all
 * without atomics. Kernels in cl/kernels/depthwise.cl. */
#include "norm_internal.h"
#include "tlcl_programs.h"

#include <stdio.h>

/* Forward outputs (backward inputs) per work-item along x, from the
 * engine's tuning (tuning.c: a CPU core keeps a strip of 8 vector
 * accumulators in registers and shares each weight load among them; a GPU
 * work-item keeps fewer registers). */
static int dw_strip(tlcl_engine *e) { return e->tuning.dw_strip; }

typedef struct dw_dims {
    int N, H, W, C, OH, OW;
    int V, Cv;           /* channel vector width and C / V */
    const char *storage; /* the feature maps' build option (eng_dtype_opts): "" or "-DTLCL_BF16" */
} dw_dims;

/* Every kernel of the program is built with the same options, the strip
 * and the feature maps' storage: one build per storage. */
enum { DW_OPTS_LEN = 48 };
static const char *dw_options(tlcl_engine *e, const dw_dims *d, char *buf, size_t len)
{
    snprintf(buf, len, "-DDW_STRIP=%d%s%s", dw_strip(e), d->storage[0] ? " " : "", d->storage);
    return buf;
}

/* Keras stores depthwise kernels as (kh, kw, C, 1); the engine's spelling
 * is (kh, kw, 1, C). Both are the same bytes, so both are accepted. */
static tlcl_status dw_check_weight(tlcl_engine *e, const tlcl_tensor *w, const tlcl_conv_geom *g, int C,
                                   const char *op)
{
    if (w->n == g->kh && w->h == g->kw && w->w == C && w->c == 1)
        return TLCL_OK;
    return eng_check_shape(e, w, g->kh, g->kw, 1, C, op);
}

/* The feature maps (out, in) share one storage, in's; the weight is float32. */
static tlcl_status dw_check(tlcl_engine *e, const tlcl_tensor *out, const tlcl_tensor *in, const tlcl_tensor *weight,
                            const tlcl_conv_geom *g, const char *op, dw_dims *d)
{
    int V = eng_channel_vector(e, in->c);
    *d = (dw_dims){in->n, in->h, in->w, in->c, out->h, out->w, V, in->c / V, eng_dtype_opts(in)};
    if (g->kh < 1 || g->kw < 1 || g->stride < 1 || g->pad_top < 0 || g->pad_left < 0)
        return ENG_FAIL(e, TLCL_ERR_ARG, "%s: bad geometry k=%dx%d stride %d pad (%d,%d)", op, g->kh, g->kw,
                        g->stride, g->pad_top, g->pad_left);
    TLCL_TRY(dw_check_weight(e, weight, g, d->C, op));
    TLCL_TRY(eng_check_dtype(e, weight, TLCL_F32, op));
    TLCL_TRY(eng_check_dtype(e, out, in->dtype, op));
    return eng_check_shape(e, out, d->N, d->OH, d->OW, d->C, op);
}

/* The kernels unrolled for 3×3 and 5×5 exist at the device's vector width
 * only (FOR_MAIN_WIDTH in common.cl); other widths take the generic ones. */
static int dw_shaped(tlcl_engine *e, const dw_dims *d, int kh, int kw)
{
    return kh == kw && (kh == 3 || kh == 5) && d->V == tlcl_cl_vector_width(e->cl);
}

/* "depthwise_forward" + "_16" (or _8, _4, _1): the instance for the vector width. */
static const char *dw_kernel(char *buf, size_t len, const char *base, const dw_dims *d)
{
    snprintf(buf, len, "%s_%d", base, d->V);
    return buf;
}

/* Work-groups on a CPU. Left to cl_context.c's choice, dimension 0 (Cv)
 * is rounded up to a group of 256 work-items; at C = 32 and PoCL's 16-wide
 * vectors Cv = 2, so 254 of every 256 work-items only returned, and PoCL
 * ran them all (B0's block1a forward took several times its work). Where the
 * kernels use explicit vectors (PoCL) the launch is one wide in dimension
 * 0, each work-item loops over the channel vectors (DW_FOR_CV), and a group
 * runs along the rows: (1, 1, R), the widest R of 16, 4, 1 that still
 * leaves a few groups per compute unit. (Groups of one channel vector and
 * R rows were slower at C = 144: each read one 64-byte vector out of every
 * pixel.) Where the driver makes the vectors from neighbouring work-items
 * (V = 1: llvmpipe under Rusticl) a group is 16 channels (faster there
 * than 256 or 8). A GPU driver picks its own (NULL). gs[0] may be changed.
 * Figures: bench/README.md, "Depthwise kernels on PoCL". */
static const size_t *dw_cpu_launch(tlcl_engine *e, size_t gs[3], size_t local[3])
{
    static const size_t rows[] = {16, 4, 1};
    if (!eng_on_cpu(e))
        return NULL;
    local[0] = 1, local[1] = 1, local[2] = 1;
    if (tlcl_cl_vector_width(e->cl) == 1) {
        local[0] = 16;
        return local;
    }
    gs[0] = 1;
    size_t want = 4 * (size_t)(tlcl_cl_device(e->cl)->compute_units ? tlcl_cl_device(e->cl)->compute_units : 1);
    for (int i = 0; i < 3; i++)
        if (gs[1] * ((gs[2] + rows[i] - 1) / rows[i]) >= want) {
            local[2] = rows[i];
            break;
        }
    return local;
}

/* The forward's launch: out = in (*) w over the given geometry; flip
 * mirrors the taps; a non-NULL bn (its saved statistics filled) applies
 * batch norm and act to the outputs. */
typedef struct dw_launch {
    int H, W, OH, OW, kh, kw, stride, pad_top, pad_left, flip;
    const tlcl_bn *bn;
    tlcl_act act;
} dw_launch;

static tlcl_status dw_forward_run(tlcl_engine *e, cl_mem out, cl_mem in, cl_mem w, const dw_dims *d,
                                  const dw_launch *l)
{
    char opts[DW_OPTS_LEN];
    char name[64];
    int strip = dw_strip(e);
    size_t gs[3] = {(size_t)d->Cv, (size_t)((l->OW + strip - 1) / strip), (size_t)d->N * (size_t)l->OH};
    /* 3×3 and 5×5 at strides 1 and 2 have instances with the taps unrolled (depthwise.cl) */
    char base[48] = "depthwise_forward";
    if (dw_shaped(e, d, l->kh, l->kw) && (l->stride == 1 || l->stride == 2))
        snprintf(base, sizeof base, "depthwise_forward_k%ds%d", l->kh, l->stride);
    size_t local[3];
    /* 5x5 stride 2 measured faster on PoCL with cl_context.c's launch,
     * a work-item per channel vector */
    int own_launch = !(l->kh == 5 && l->kw == 5 && l->stride == 2);
    const size_t *lp = own_launch ? dw_cpu_launch(e, gs, local) : NULL;
    const tlcl_bn *bn = l->bn;
    cl_mem mean = bn ? bn->saved_mean.buf : w, istd = bn ? bn->saved_istd.buf : w;
    cl_mem gamma = bn ? bn->gamma->buf : w, beta = bn ? bn->beta->buf : w;
    return TLCL_RUN(e->cl, TLCL_PROG(depthwise), dw_options(e, d, opts, sizeof opts),
                    dw_kernel(name, sizeof name, base, d), 3, gs,
                    lp, TLCL_MEM(out), TLCL_MEM(in), TLCL_MEM(w), TLCL_INT(d->N * l->OH), TLCL_INT(l->H),
                    TLCL_INT(l->W), TLCL_INT(d->Cv), TLCL_INT(l->OH), TLCL_INT(l->OW), TLCL_INT(l->kh),
                    TLCL_INT(l->kw), TLCL_INT(l->stride), TLCL_INT(l->pad_top), TLCL_INT(l->pad_left),
                    TLCL_INT(l->flip), TLCL_INT(bn != NULL), TLCL_MEM(mean), TLCL_MEM(istd), TLCL_MEM(gamma),
                    TLCL_MEM(beta), TLCL_INT(l->act));
}

/* The call as tlcl tune records it (engine_internal.h's ENG_TUNE_DW_*). */
static void dw_note(tlcl_engine *e, eng_tune_kind kind, const dw_dims *d, const tlcl_conv_geom *g, int din,
                    int dweight)
{
    int v[13] = {d->N, d->H, d->W, d->C, d->OH, d->OW, g->kh, g->kw, g->stride, g->pad_top, g->pad_left, din,
                 dweight};
    eng_tune_note(e, kind, v, kind == ENG_TUNE_DW_BWD ? 13 : 11);
}

static dw_launch dw_forward_geometry(const dw_dims *d, const tlcl_conv_geom *g)
{
    return (dw_launch){d->H, d->W, d->OH, d->OW, g->kh, g->kw, g->stride, g->pad_top, g->pad_left, 0, NULL,
                       TLCL_ACT_NONE};
}

tlcl_status tlcl_depthwise_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in,
                                   const tlcl_tensor *weight, const tlcl_conv_geom *g)
{
    dw_dims d;
    TLCL_TRY(dw_check(e, out, in, weight, g, "depthwise forward", &d));
    dw_note(e, ENG_TUNE_DW_FWD, &d, g, 0, 0);
    dw_launch l = dw_forward_geometry(&d, g);
    return dw_forward_run(e, out->buf, in->buf, weight->buf, &d, &l);
}

tlcl_status tlcl_depthwise_bn_forward(tlcl_engine *e, tlcl_tensor *out, const tlcl_tensor *in,
                                      const tlcl_tensor *weight, const tlcl_conv_geom *g, tlcl_bn *bn,
                                      tlcl_act act)
{
    dw_dims d;
    TLCL_TRY(dw_check(e, out, in, weight, g, "depthwise+batchnorm forward", &d));
    dw_note(e, ENG_TUNE_DW_FWD, &d, g, 0, 0);
    TLCL_TRY(eng_check_dtype(e, bn->gamma, TLCL_F32, "depthwise+batchnorm forward"));
    TLCL_TRY(eng_check_dtype(e, bn->beta, TLCL_F32, "depthwise+batchnorm forward"));
    TLCL_TRY(eng_bn_moving_statistics(e, bn, d.C, act));
    dw_launch l = dw_forward_geometry(&d, g);
    l.bn = bn, l.act = act;
    return dw_forward_run(e, out->buf, in->buf, weight->buf, &d, &l);
}

/* The input-gradient kernels' arguments (depthwise.cl) */
#define DW_BACKWARD_INPUT_ARGS(din, dout, weight, g, d)                                                        \
    TLCL_MEM((din)->buf), TLCL_MEM((dout)->buf), TLCL_MEM((weight)->buf), TLCL_INT((d)->N * (d)->H),          \
        TLCL_INT((d)->H), TLCL_INT((d)->W), TLCL_INT((d)->Cv), TLCL_INT((d)->OH), TLCL_INT((d)->OW),           \
        TLCL_INT((g)->kh), TLCL_INT((g)->kw), TLCL_INT((g)->stride), TLCL_INT((g)->pad_top),                   \
        TLCL_INT((g)->pad_left)

/* At stride 1 the input gradient is the forward convolution of dout with
 * the mirrored taps and padding k - 1 - pad; otherwise each input gathers
 * the outputs that read it. */
static tlcl_status dw_backward_input(tlcl_engine *e, tlcl_tensor *din, const tlcl_tensor *dout,
                                     const tlcl_tensor *weight, const tlcl_conv_geom *g, const dw_dims *d)
{
    char opts[DW_OPTS_LEN];
    if (g->stride == 1 && g->pad_top < g->kh && g->pad_left < g->kw) {
        dw_launch l = {d->OH, d->OW, d->H, d->W, g->kh, g->kw, 1, g->kh - 1 - g->pad_top, g->kw - 1 - g->pad_left,
                       1, NULL, TLCL_ACT_NONE};
        return dw_forward_run(e, din->buf, dout->buf, weight->buf, d, &l);
    }
    char name[64];
    int strip = dw_strip(e);
    if (g->stride == 2 && dw_shaped(e, d, g->kh, g->kw)) {
        /* the unrolled stride-2 gather (depthwise.cl), launched as the forward */
        char base[48];
        size_t gs3[3] = {(size_t)d->Cv, (size_t)((d->W + strip - 1) / strip), (size_t)d->N * (size_t)d->H}, local[3];
        snprintf(base, sizeof base, "depthwise_backward_input_k%ds2", g->kh);
        const size_t *lp = dw_cpu_launch(e, gs3, local);
        return TLCL_RUN(e->cl, TLCL_PROG(depthwise), dw_options(e, d, opts, sizeof opts),
                        dw_kernel(name, sizeof name, base, d), 3, gs3, lp,
                        DW_BACKWARD_INPUT_ARGS(din, dout, weight, g, d));
    }
    size_t gs = (size_t)d->Cv * (size_t)((d->W + strip - 1) / strip) * (size_t)d->N * (size_t)d->H;
    return TLCL_RUN(e->cl, TLCL_PROG(depthwise), dw_options(e, d, opts, sizeof opts),
                    dw_kernel(name, sizeof name, "depthwise_backward_input", d), 1, &gs, NULL,
                    DW_BACKWARD_INPUT_ARGS(din, dout, weight, g, d));
}

/* 3×3 and 5×5 have a stage-1 kernel that keeps every tap's sum in registers
 * (work-item per channel vector and chunk); other sizes the per-tap one. */
static int dw_wgrad_all_taps(tlcl_engine *e, const dw_dims *d, const tlcl_conv_geom *g)
{
    return dw_shaped(e, d, g->kh, g->kw);
}

static tlcl_status dw_wgrad_partial(tlcl_engine *e, tlcl_tensor *partial, const tlcl_tensor *dout,
                                    const tlcl_tensor *in, const tlcl_conv_geom *g, const dw_dims *d, int rows,
                                    int per_chunk, int chunks)
{
    char opts[DW_OPTS_LEN];
    char name[64], base[32] = "depthwise_wgrad_partial";
    size_t gs[3] = {(size_t)d->Cv, (size_t)g->kh * g->kw, (size_t)chunks};
    if (dw_wgrad_all_taps(e, d, g)) {
        snprintf(base, sizeof base, "depthwise_wgrad_k%d", g->kh);
        gs[1] = (size_t)chunks, gs[2] = 1;
    }
    return TLCL_RUN(e->cl, TLCL_PROG(depthwise), dw_options(e, d, opts, sizeof opts),
                    dw_kernel(name, sizeof name, base, d), 3, gs, NULL,
                    TLCL_MEM(partial->buf), TLCL_MEM(dout->buf), TLCL_MEM(in->buf), TLCL_INT(rows),
                    TLCL_INT(per_chunk), TLCL_INT(d->H), TLCL_INT(d->W), TLCL_INT(d->Cv), TLCL_INT(d->OH),
                    TLCL_INT(d->OW), TLCL_INT(g->kh), TLCL_INT(g->kw), TLCL_INT(g->stride), TLCL_INT(g->pad_top),
                    TLCL_INT(g->pad_left));
}

/* Chunks of output rows for stage 1 so that (channel vectors x taps x
 * chunks) is about the tuning's dw_wgrad_items work-items: enough to fill
 * the device (a CPU core needs a few dozen, each summing a long run; a GPU
 * thousands), while stage 2 sums few partials. (Chunks small enough for a
 * core's cache, since PoCL runs a group's channel vectors one after
 * another over the same rows, measured slower: at 14x14 the partial sums
 * then outweigh the rows.) */
static int dw_wgrad_chunks(tlcl_engine *e, const tlcl_conv_geom *g, const dw_dims *d, int rows)
{
    int per_item = dw_wgrad_all_taps(e, d, g) ? 1 : g->kh * g->kw; /* work-items per (cv, chunk) */
    long chunks = (long)e->tuning.dw_wgrad_items / ((long)d->Cv * per_item);
    return chunks < 1 ? 1 : chunks > rows ? rows : (int)chunks;
}

/* dweight += sum over N, OH, OW of dout * shifted in, in two stages. */
static tlcl_status dw_backward_weight(tlcl_engine *e, tlcl_tensor *dweight, const tlcl_tensor *dout,
                                      const tlcl_tensor *in, const tlcl_conv_geom *g, const dw_dims *d)
{
    char opts[DW_OPTS_LEN];
    int rows = d->N * d->OH, taps = g->kh * g->kw;
    if (rows == 0 || d->OW == 0)
        return TLCL_OK; /* no output: the gradient adds nothing */
    int chunks = dw_wgrad_chunks(e, g, d, rows);
    int per_chunk = (rows + chunks - 1) / chunks;
    chunks = (rows + per_chunk - 1) / per_chunk;
    tlcl_tensor partial;
    TLCL_TRY(tlcl_tensor_alloc(e, &partial, "depthwise wgrad partial", chunks, g->kh, g->kw, d->C));
    tlcl_status s = dw_wgrad_partial(e, &partial, dout, in, g, d, rows, per_chunk, chunks);
    if (s == TLCL_OK) {
        int count = taps * d->C;
        size_t gs = eng_global1((size_t)count);
        s = TLCL_RUN(e->cl, TLCL_PROG(depthwise), dw_options(e, d, opts, sizeof opts), "depthwise_wgrad_sum", 1, &gs,
                     NULL, TLCL_MEM(dweight->buf), TLCL_MEM(partial.buf), TLCL_INT(chunks), TLCL_INT(count));
    }
    tlcl_tensor_release(e, &partial);
    return s;
}

tlcl_status tlcl_depthwise_backward(tlcl_engine *e, tlcl_tensor *din, tlcl_tensor *dweight,
                                    const tlcl_tensor *dout, const tlcl_tensor *in, const tlcl_tensor *weight,
                                    const tlcl_conv_geom *g)
{
    dw_dims d;
    TLCL_TRY(dw_check(e, dout, in, weight, g, "depthwise backward", &d));
    dw_note(e, ENG_TUNE_DW_BWD, &d, g, din != NULL, dweight != NULL);
    if (din) {
        TLCL_TRY(eng_check_shape(e, din, d.N, d.H, d.W, d.C, "depthwise backward"));
        TLCL_TRY(eng_check_dtype(e, din, in->dtype, "depthwise backward"));
        TLCL_TRY(dw_backward_input(e, din, dout, weight, g, &d));
    }
    if (dweight) {
        TLCL_TRY(dw_check_weight(e, dweight, g, d.C, "depthwise backward"));
        TLCL_TRY(eng_check_dtype(e, dweight, TLCL_F32, "depthwise backward"));
        TLCL_TRY(dw_backward_weight(e, dweight, dout, in, g, &d));
    }
    return TLCL_OK;
}
