/* ref_conv.c — see ref_conv.h. Written as the direct sums of the
 * definitions, with no shared structure with the device code. */
#include "ref_conv.h"

#include <math.h>
#include <string.h>

static size_t at(int h, int w, int c, int n, int y, int x, int ch)
{
    return (((size_t)n * h + y) * w + x) * c + ch;
}

/* Input coordinate read by output o through tap k; -1 when in the padding. */
static int src_index(const ref_conv_shape *s, int o, int k, int pad, int size)
{
    int i = o * s->stride - pad + k;
    return (i >= 0 && i < size) ? i : -1;
}

void ref_conv_same(int in, int k, int stride, int *out, int *pad_before)
{
    int o = (int)ceil((double)in / (double)stride);
    int total = (int)fmax((double)(o - 1) * stride + k - in, 0.0);
    *out = o;
    *pad_before = (int)floor(total / 2.0);
}

void ref_conv2d_forward(const ref_conv_shape *s, double *out, const double *in, const double *weight)
{
    for (int n = 0; n < s->n; n++)
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++)
                for (int co = 0; co < s->cout; co++) {
                    double acc = 0;
                    for (int ky = 0; ky < s->kh; ky++) {
                        int y = src_index(s, oy, ky, s->pad_top, s->h);
                        for (int kx = 0; kx < s->kw && y >= 0; kx++) {
                            int x = src_index(s, ox, kx, s->pad_left, s->w);
                            for (int ci = 0; ci < s->cin && x >= 0; ci++)
                                acc += in[at(s->h, s->w, s->cin, n, y, x, ci)] *
                                       weight[((size_t)(ky * s->kw + kx) * s->cin + ci) * s->cout + co];
                        }
                    }
                    out[at(s->oh, s->ow, s->cout, n, oy, ox, co)] = acc;
                }
}

void ref_conv2d_backward(const ref_conv_shape *s, double *din, double *dweight, const double *dout,
                         const double *in, const double *weight)
{
    if (din)
        memset(din, 0, (size_t)s->n * s->h * s->w * s->cin * sizeof *din);
    if (dweight)
        memset(dweight, 0, (size_t)s->kh * s->kw * s->cin * s->cout * sizeof *dweight);
    for (int n = 0; n < s->n; n++)
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++)
                for (int co = 0; co < s->cout; co++) {
                    double g = dout[at(s->oh, s->ow, s->cout, n, oy, ox, co)];
                    for (int ky = 0; ky < s->kh; ky++) {
                        int y = src_index(s, oy, ky, s->pad_top, s->h);
                        for (int kx = 0; kx < s->kw && y >= 0; kx++) {
                            int x = src_index(s, ox, kx, s->pad_left, s->w);
                            for (int ci = 0; ci < s->cin && x >= 0; ci++) {
                                size_t wi = ((size_t)(ky * s->kw + kx) * s->cin + ci) * s->cout + co;
                                size_t ii = at(s->h, s->w, s->cin, n, y, x, ci);
                                if (din)
                                    din[ii] += g * weight[wi];
                                if (dweight)
                                    dweight[wi] += g * in[ii];
                            }
                        }
                    }
                }
}

void ref_depthwise_forward(const ref_conv_shape *s, double *out, const double *in, const double *weight)
{
    int C = s->cin;
    for (int n = 0; n < s->n; n++)
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++)
                for (int c = 0; c < C; c++) {
                    double acc = 0;
                    for (int ky = 0; ky < s->kh; ky++) {
                        int y = src_index(s, oy, ky, s->pad_top, s->h);
                        for (int kx = 0; kx < s->kw && y >= 0; kx++) {
                            int x = src_index(s, ox, kx, s->pad_left, s->w);
                            if (x >= 0)
                                acc += in[at(s->h, s->w, C, n, y, x, c)] * weight[(size_t)(ky * s->kw + kx) * C + c];
                        }
                    }
                    out[at(s->oh, s->ow, C, n, oy, ox, c)] = acc;
                }
}

void ref_depthwise_backward(const ref_conv_shape *s, double *din, double *dweight, const double *dout,
                            const double *in, const double *weight)
{
    int C = s->cin;
    if (din)
        memset(din, 0, (size_t)s->n * s->h * s->w * C * sizeof *din);
    if (dweight)
        memset(dweight, 0, (size_t)s->kh * s->kw * C * sizeof *dweight);
    for (int n = 0; n < s->n; n++)
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++)
                for (int c = 0; c < C; c++) {
                    double g = dout[at(s->oh, s->ow, C, n, oy, ox, c)];
                    for (int ky = 0; ky < s->kh; ky++) {
                        int y = src_index(s, oy, ky, s->pad_top, s->h);
                        for (int kx = 0; kx < s->kw && y >= 0; kx++) {
                            int x = src_index(s, ox, kx, s->pad_left, s->w);
                            if (x < 0)
                                continue;
                            size_t wi = (size_t)(ky * s->kw + kx) * C + c, ii = at(s->h, s->w, C, n, y, x, c);
                            if (din)
                                din[ii] += g * weight[wi];
                            if (dweight)
                                dweight[wi] += g * in[ii];
                        }
                    }
                }
}

/* TF half-pixel source position; the scale is the float in/out the device
 * uses, so both sides pick the same neighbours. */
static void resize_axis(int o, int in, int out, int *lo, int *hi, double *frac)
{
    double scale = (double)((float)in / (float)out);
    double src = (o + 0.5) * scale - 0.5;
    double f = floor(src);
    *lo = f > 0 ? (int)f : 0;
    *hi = (int)ceil(src) < in - 1 ? (int)ceil(src) : in - 1;
    *frac = src - f;
}

void ref_resize_bilinear_forward(int n, int h, int w, int c, int oh, int ow, double *out, const double *in)
{
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int y0, y1, x0, x1;
                double fy, fx;
                resize_axis(oy, h, oh, &y0, &y1, &fy);
                resize_axis(ox, w, ow, &x0, &x1, &fx);
                for (int ch = 0; ch < c; ch++) {
                    double top = in[at(h, w, c, b, y0, x0, ch)] * (1 - fx) + in[at(h, w, c, b, y0, x1, ch)] * fx;
                    double bot = in[at(h, w, c, b, y1, x0, ch)] * (1 - fx) + in[at(h, w, c, b, y1, x1, ch)] * fx;
                    out[at(oh, ow, c, b, oy, ox, ch)] = top * (1 - fy) + bot * fy;
                }
            }
}

void ref_resize_bilinear_backward(int n, int h, int w, int c, int oh, int ow, double *din, const double *dout)
{
    memset(din, 0, (size_t)n * h * w * c * sizeof *din);
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int y[2], x[2];
                double fy, fx;
                resize_axis(oy, h, oh, &y[0], &y[1], &fy);
                resize_axis(ox, w, ow, &x[0], &x[1], &fx);
                double wy[2] = {1 - fy, fy}, wx[2] = {1 - fx, fx};
                for (int ch = 0; ch < c; ch++) {
                    double g = dout[at(oh, ow, c, b, oy, ox, ch)];
                    for (int i = 0; i < 2; i++)
                        for (int j = 0; j < 2; j++)
                            din[at(h, w, c, b, y[i], x[j], ch)] += g * wy[i] * wx[j];
                }
            }
}
