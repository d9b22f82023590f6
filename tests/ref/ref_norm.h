/* ref_norm.h — double-precision references (plain loops) for batch norm with
 * a fused activation, activations, global average pooling, dense, channel
 * scaling and squeeze-and-excitation. NHWC tensors are seen as [N, HW, C];
 * batch norm sees its input as M = N*H*W rows of C. Backward functions
 * OVERWRITE every gradient they are given (NULL: not computed); the device
 * tests add the accumulation themselves. */
#ifndef TLCL_REF_NORM_H
#define TLCL_REF_NORM_H

#include <stddef.h>

double ref_act(int act, double x);
double ref_act_grad(int act, double x);  /* d act / dx at x */
void ref_activation_forward(int act, const double *x, double *y, size_t n);
void ref_activation_backward(int act, const double *dy, const double *x, double *dx, size_t n);

/* train: biased batch statistics, and moving_mean/moving_var (when not NULL)
 * move by momentum; else the moving statistics are used. mean/istd [C]
 * receive the statistics used (may be NULL). */
void ref_bn_forward(int train, int M, int C, const double *x, const double *gamma, const double *beta,
                    double *moving_mean, double *moving_var, double momentum, double eps, int act, double *y,
                    double *mean, double *istd);
/* mean/istd as returned by ref_bn_forward; train: they are functions of x. */
void ref_bn_backward(int train, int M, int C, const double *x, const double *dy, const double *gamma,
                     const double *beta, const double *mean, const double *istd, int act, double *dx,
                     double *dgamma, double *dbeta);

void ref_avgpool_forward(int N, int HW, int C, const double *x, double *y);
void ref_avgpool_backward(int N, int HW, int C, const double *dy, double *dx);

/* pre = x W + b (b may be NULL), y = act(pre); x [N, Cin], W [Cin, Cout] */
void ref_dense_forward(int N, int Cin, int Cout, const double *x, const double *W, const double *b, int act,
                       double *pre, double *y);
void ref_dense_backward(int N, int Cin, int Cout, const double *x, const double *W, const double *pre, int act,
                        const double *dy, double *dx, double *dW, double *db);

/* y[n,p,c] = x[n,p,c] s[n,c] */
void ref_channel_scale_forward(int N, int HW, int C, const double *x, const double *s, double *y);
void ref_channel_scale_backward(int N, int HW, int C, const double *x, const double *s, const double *dy,
                                double *dx, double *ds);

/* y = x * sigmoid(act(avgpool(x) wr + br) we + be); wr [C,S], we [S,C] */
typedef struct ref_se_params {
    int C, S, act;
    const double *wr, *br, *we, *be;
} ref_se_params;
void ref_se_forward(int N, int HW, const ref_se_params *p, const double *x, double *y);
void ref_se_backward(int N, int HW, const ref_se_params *p, const double *x, const double *dy, double *dx,
                     double *dwr, double *dbr, double *dwe, double *dbe);

#endif
