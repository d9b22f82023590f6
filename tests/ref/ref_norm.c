/* ref_norm.c — see ref_norm.h. Written for clarity, not speed: the batch
 * norm backward follows the textbook chain rule through x̂, var and mean
 * (not the device's closed form), so the two are independent derivations. */
#include "ref_norm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

double ref_act(int act, double x)
{
    switch (act) {
    case 1: return x * sigm(x);
    case 2: return sigm(x);
    case 3: return x > 0 ? x : 0;
    case 4: return x < 0 ? 0 : x > 6 ? 6 : x;
    default: return x;
    }
}

double ref_act_grad(int act, double x)
{
    switch (act) {
    case 1: return sigm(x) + x * sigm(x) * (1 - sigm(x));
    case 2: return sigm(x) * (1 - sigm(x));
    case 3: return x > 0 ? 1 : 0;
    case 4: return x > 0 && x < 6 ? 1 : 0;
    default: return 1;
    }
}

void ref_activation_forward(int act, const double *x, double *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = ref_act(act, x[i]);
}

void ref_activation_backward(int act, const double *dy, const double *x, double *dx, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * ref_act_grad(act, x[i]);
}

void ref_bn_forward(int train, int M, int C, const double *x, const double *gamma, const double *beta,
                    double *moving_mean, double *moving_var, double momentum, double eps, int act, double *y,
                    double *mean, double *istd)
{
    for (int c = 0; c < C; c++) {
        double mu = moving_mean[c], var = moving_var[c];
        if (train) {
            mu = 0, var = 0;
            for (int r = 0; r < M; r++)
                mu += x[(size_t)r * C + c];
            mu /= M;
            for (int r = 0; r < M; r++)
                var += (x[(size_t)r * C + c] - mu) * (x[(size_t)r * C + c] - mu);
            var /= M;
            moving_mean[c] = moving_mean[c] * momentum + mu * (1 - momentum);
            moving_var[c] = moving_var[c] * momentum + var * (1 - momentum);
        }
        double is = 1.0 / sqrt(var + eps);
        for (int r = 0; r < M; r++) {
            size_t i = (size_t)r * C + c;
            y[i] = ref_act(act, gamma[c] * (x[i] - mu) * is + beta[c]);
        }
        if (mean)
            mean[c] = mu;
        if (istd)
            istd[c] = is;
    }
}

void ref_bn_backward(int train, int M, int C, const double *x, const double *dy, const double *gamma,
                     const double *beta, const double *mean, const double *istd, int act, double *dx,
                     double *dgamma, double *dbeta)
{
    for (int c = 0; c < C; c++) {
        double sg = 0, sb = 0, dvar = 0, dmean = 0, sdiff = 0;
        for (int r = 0; r < M; r++) {
            size_t i = (size_t)r * C + c;
            double d = x[i] - mean[c], xh = d * istd[c];
            double dz = dy[i] * ref_act_grad(act, gamma[c] * xh + beta[c]);
            sg += dz * xh, sb += dz;
            double dxh = dz * gamma[c];
            dvar += dxh * d * -0.5 * istd[c] * istd[c] * istd[c];
            dmean += -dxh * istd[c];
            sdiff += -2 * d;
        }
        dmean += dvar * sdiff / M;
        for (int r = 0; r < M && dx; r++) {
            size_t i = (size_t)r * C + c;
            double d = x[i] - mean[c], xh = d * istd[c];
            double dxh = dy[i] * ref_act_grad(act, gamma[c] * xh + beta[c]) * gamma[c];
            dx[i] = dxh * istd[c] + (train ? dvar * 2 * d / M + dmean / M : 0);
        }
        if (dgamma)
            dgamma[c] = sg;
        if (dbeta)
            dbeta[c] = sb;
    }
}

void ref_avgpool_forward(int N, int HW, int C, const double *x, double *y)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int p = 0; p < HW; p++)
                s += x[((size_t)n * HW + p) * C + c];
            y[(size_t)n * C + c] = s / HW;
        }
}

void ref_avgpool_backward(int N, int HW, int C, const double *dy, double *dx)
{
    for (int n = 0; n < N; n++)
        for (int p = 0; p < HW; p++)
            for (int c = 0; c < C; c++)
                dx[((size_t)n * HW + p) * C + c] = dy[(size_t)n * C + c] / HW;
}

void ref_dense_forward(int N, int Cin, int Cout, const double *x, const double *W, const double *b, int act,
                       double *pre, double *y)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < Cout; o++) {
            double z = b ? b[o] : 0;
            for (int k = 0; k < Cin; k++)
                z += x[(size_t)n * Cin + k] * W[(size_t)k * Cout + o];
            if (pre)
                pre[(size_t)n * Cout + o] = z;
            y[(size_t)n * Cout + o] = ref_act(act, z);
        }
}

void ref_dense_backward(int N, int Cin, int Cout, const double *x, const double *W, const double *pre, int act,
                        const double *dy, double *dx, double *dW, double *db)
{
    double *dz = malloc((size_t)N * Cout * sizeof *dz);
    for (size_t i = 0; i < (size_t)N * Cout; i++)
        dz[i] = dy[i] * ref_act_grad(act, pre[i]);
    for (int n = 0; n < N && dx; n++)
        for (int k = 0; k < Cin; k++) {
            double s = 0;
            for (int o = 0; o < Cout; o++)
                s += dz[(size_t)n * Cout + o] * W[(size_t)k * Cout + o];
            dx[(size_t)n * Cin + k] = s;
        }
    for (int k = 0; k < Cin && dW; k++)
        for (int o = 0; o < Cout; o++) {
            double s = 0;
            for (int n = 0; n < N; n++)
                s += x[(size_t)n * Cin + k] * dz[(size_t)n * Cout + o];
            dW[(size_t)k * Cout + o] = s;
        }
    for (int o = 0; o < Cout && db; o++) {
        double s = 0;
        for (int n = 0; n < N; n++)
            s += dz[(size_t)n * Cout + o];
        db[o] = s;
    }
    free(dz);
}

void ref_channel_scale_forward(int N, int HW, int C, const double *x, const double *s, double *y)
{
    for (int n = 0; n < N; n++)
        for (int p = 0; p < HW; p++)
            for (int c = 0; c < C; c++) {
                size_t i = ((size_t)n * HW + p) * C + c;
                y[i] = x[i] * s[(size_t)n * C + c];
            }
}

void ref_channel_scale_backward(int N, int HW, int C, const double *x, const double *s, const double *dy,
                                double *dx, double *ds)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double acc = 0;
            for (int p = 0; p < HW; p++) {
                size_t i = ((size_t)n * HW + p) * C + c;
                if (dx)
                    dx[i] = dy[i] * s[(size_t)n * C + c];
                acc += dy[i] * x[i];
            }
            if (ds)
                ds[(size_t)n * C + c] = acc;
        }
}

/* The SE intermediates: pooled [N,C], hpre/h [N,S], gpre/g [N,C]. */
typedef struct se_tape { double *pooled, *hpre, *h, *gpre, *g; } se_tape;

static se_tape se_run(int N, int HW, const ref_se_params *p, const double *x)
{
    size_t nc = (size_t)N * p->C, ns = (size_t)N * p->S;
    se_tape t = {malloc(nc * sizeof(double)), malloc(ns * sizeof(double)), malloc(ns * sizeof(double)),
                 malloc(nc * sizeof(double)), malloc(nc * sizeof(double))};
    ref_avgpool_forward(N, HW, p->C, x, t.pooled);
    ref_dense_forward(N, p->C, p->S, t.pooled, p->wr, p->br, p->act, t.hpre, t.h);
    ref_dense_forward(N, p->S, p->C, t.h, p->we, p->be, 2, t.gpre, t.g);
    return t;
}

static void se_free(se_tape *t) { free(t->pooled), free(t->hpre), free(t->h), free(t->gpre), free(t->g); }

void ref_se_forward(int N, int HW, const ref_se_params *p, const double *x, double *y)
{
    se_tape t = se_run(N, HW, p, x);
    ref_channel_scale_forward(N, HW, p->C, x, t.g, y);
    se_free(&t);
}

void ref_se_backward(int N, int HW, const ref_se_params *p, const double *x, const double *dy, double *dx,
                     double *dwr, double *dbr, double *dwe, double *dbe)
{
    int C = p->C;
    size_t nc = (size_t)N * C, nx = nc * HW;
    se_tape t = se_run(N, HW, p, x);
    double *dg = malloc(nc * sizeof *dg), *dh = malloc((size_t)N * p->S * sizeof *dh);
    double *dpool = malloc(nc * sizeof *dpool), *dx2 = malloc(nx * sizeof *dx2);
    ref_channel_scale_backward(N, HW, C, x, t.g, dy, dx, dg);
    ref_dense_backward(N, p->S, C, t.h, p->we, t.gpre, 2, dg, dh, dwe, dbe);
    ref_dense_backward(N, C, p->S, t.pooled, p->wr, t.hpre, p->act, dh, dpool, dwr, dbr);
    ref_avgpool_backward(N, HW, C, dpool, dx2);
    for (size_t i = 0; i < nx && dx; i++)
        dx[i] += dx2[i];
    free(dg), free(dh), free(dpool), free(dx2);
    se_free(&t);
}
