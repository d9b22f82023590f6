/* ref_loss.c — see ref_loss.h. Plain loops in double, written for clarity. */
#include "ref_loss.h"

#include <math.h>

#define REF_P_CLIP 1e-7

void ref_softmax(int N, int C, const double *logits, double *probs)
{
    for (int i = 0; i < N; i++) {
        const double *z = logits + (size_t)i * C;
        double mx = z[0], s = 0;
        for (int c = 1; c < C; c++)
            mx = z[c] > mx ? z[c] : mx;
        for (int c = 0; c < C; c++)
            s += exp(z[c] - mx);
        for (int c = 0; c < C; c++)
            probs[(size_t)i * C + c] = exp(z[c] - mx) / s;
    }
}

static double smoothed(int c, int label, double ls, int C) { return (c == label ? 1.0 - ls : 0.0) + ls / C; }

/* Row i: -sum_c y_c log_softmax(z)_c and its gradient p - y. */
static double xent_row(int C, const double *z, int label, double ls, double scale, double *dz)
{
    double p[C], l = 0;
    ref_softmax(1, C, z, p);
    for (int c = 0; c < C; c++) {
        double y = smoothed(c, label, ls, C);
        l -= y * log(p[c]);
        if (dz)
            dz[c] = scale * (p[c] - y);
    }
    return l;
}

/* Row i of the focal loss; the gradient by the chain rule through the clip
 * (zero where clipped) and the full softmax Jacobian, written out directly. */
static double focal_row(int C, const double *z, int label, double ls, const double *alpha, double alpha_scalar,
                        double gamma, double scale, double *dz)
{
    double p[C], dl_dp[C], l = 0;
    ref_softmax(1, C, z, p);
    for (int c = 0; c < C; c++) {
        double y = smoothed(c, label, ls, C), a = alpha ? alpha[c] : alpha_scalar;
        double pc = fmin(fmax(p[c], REF_P_CLIP), 1.0 - REF_P_CLIP), q = 1.0 - pc;
        l += -y * a * pow(q, gamma) * log(pc);
        int clipped = p[c] < REF_P_CLIP || p[c] > 1.0 - REF_P_CLIP;
        double d = -a * (pow(q, gamma) / pc - (gamma > 0 ? gamma * pow(q, gamma - 1) * log(pc) : 0.0));
        dl_dp[c] = clipped ? 0.0 : y * d;
    }
    for (int j = 0; dz && j < C; j++) {
        double s = 0; /* sum_c dl/dp_c * dp_c/dz_j, dp_c/dz_j = p_c ([c==j] - p_j) */
        for (int c = 0; c < C; c++)
            s += dl_dp[c] * p[c] * ((c == j) - p[j]);
        dz[j] = scale * s;
    }
    return l;
}

/* Shared reduction: sum_i w_i l_i / N (Keras "sum_over_batch_size"). */
static double reduce(int N, int C, const double *logits, const int *labels, const double *w, double *per_sample,
                     double *dlogits, double ls, const double *alpha, double alpha_scalar, double gamma, int focal)
{
    double total = 0;
    for (int i = 0; i < N; i++) {
        double wi = w ? w[i] : 1.0, scale = wi / N;
        const double *z = logits + (size_t)i * C;
        double *dz = dlogits ? dlogits + (size_t)i * C : NULL;
        double l = focal ? focal_row(C, z, labels[i], ls, alpha, alpha_scalar, gamma, scale, dz)
                         : xent_row(C, z, labels[i], ls, scale, dz);
        if (per_sample)
            per_sample[i] = l;
        total += wi * l;
    }
    return total / N;
}

double ref_softmax_xent(int N, int C, const double *logits, const int *labels, const double *w, double ls,
                        double *per_sample, double *dlogits)
{
    return reduce(N, C, logits, labels, w, per_sample, dlogits, ls, NULL, 0, 0, 0);
}

double ref_focal_loss(int N, int C, const double *logits, const int *labels, const double *w, double ls,
                      const double *alpha, double alpha_scalar, double gamma, double *per_sample, double *dlogits)
{
    return reduce(N, C, logits, labels, w, per_sample, dlogits, ls, alpha, alpha_scalar, gamma, 1);
}

void ref_dropout(size_t n, size_t group, const double *in, const unsigned char *keep, double rate, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = keep[i / group] ? in[i] / (1.0 - rate) : 0.0;
}

double ref_clip_factor(int ntensors, const double *const *g, const size_t *n, double clip)
{
    double ss = 0;
    for (int t = 0; t < ntensors; t++)
        for (size_t i = 0; i < n[t]; i++)
            ss += g[t][i] * g[t][i];
    double norm = sqrt(ss);
    return norm > clip ? clip / norm : 1.0;
}

void ref_opt_update(const ref_opt *o, size_t n, double *theta, const double *g, double *m, double *v, double lr,
                    long t, double clip_factor)
{
    double alpha = lr * sqrt(1 - pow(o->beta2, (double)t)) / (1 - pow(o->beta1, (double)t));
    for (size_t i = 0; i < n; i++) {
        double gi = g[i] * clip_factor;
        theta[i] -= theta[i] * o->weight_decay * lr;
        if (o->type == REF_ADAM) {
            m[i] += (gi - m[i]) * (1 - o->beta1);
            v[i] += (gi * gi - v[i]) * (1 - o->beta2);
            theta[i] -= alpha * m[i] / (sqrt(v[i]) + o->epsilon);
        } else if (o->momentum == 0) {
            theta[i] -= lr * gi;
        } else {
            m[i] = o->momentum * m[i] - lr * gi;
            theta[i] += o->nesterov ? o->momentum * m[i] - lr * gi : m[i];
        }
    }
}
