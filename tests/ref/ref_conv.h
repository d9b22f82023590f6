/* ref_conv.h — double-precision references (plain loops, NHWC) for the
 * convolutions and the bilinear resize, forward and backward. Backward
 * functions OVERWRITE din and dweight (unlike the engine, which accumulates
 * dweight); either may be NULL. */
#ifndef TLCL_REF_CONV_H
#define TLCL_REF_CONV_H

/* One convolution's shapes: input [n,h,w,cin], output [n,oh,ow,cout],
 * window kh×kw with stride and explicit top/left padding. */
typedef struct ref_conv_shape {
    int n, h, w, cin;
    int oh, ow, cout;
    int kh, kw, stride, pad_top, pad_left;
} ref_conv_shape;

/* TensorFlow's 'same' padding along one axis, from its documented rule
 * (tf.nn.convolution): out = ceil(in / stride), pad_total =
 * max((out - 1) * stride + k - in, 0), pad_before = floor(pad_total / 2)
 * (the extra row or column goes after). The tests build their reference
 * geometry with this, never with the engine's tlcl_conv_same. */
void ref_conv_same(int in, int k, int stride, int *out, int *pad_before);

/* weight [kh,kw,cin,cout] */
void ref_conv2d_forward(const ref_conv_shape *s, double *out, const double *in, const double *weight);
void ref_conv2d_backward(const ref_conv_shape *s, double *din, double *dweight, const double *dout,
                         const double *in, const double *weight);

/* cout == cin; weight [kh,kw,C] */
void ref_depthwise_forward(const ref_conv_shape *s, double *out, const double *in, const double *weight);
void ref_depthwise_backward(const ref_conv_shape *s, double *din, double *dweight, const double *dout,
                            const double *in, const double *weight);

/* TensorFlow bilinear, half-pixel centres: in [n,h,w,c] -> out [n,oh,ow,c]. */
void ref_resize_bilinear_forward(int n, int h, int w, int c, int oh, int ow, double *out, const double *in);
void ref_resize_bilinear_backward(int n, int h, int w, int c, int oh, int ow, double *din, const double *dout);

#endif
