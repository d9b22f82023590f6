/* test_ref_loss.c — the reference loss gradients (ref_loss.c) against
 * central finite differences: softmax cross-entropy and focal loss (gamma 0
 * and 2, per-class and scalar alpha), with and without label smoothing and
 * sample weights; plus hand-computed optimizer and dropout cases. */
#include "harness.h"
#include "ref_loss.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct loss_case {
    int N, C, focal;
    double *logits, *w, *alpha, ls, gamma;
    int *labels;
} loss_case;

static double case_loss(void *ctx)
{
    loss_case *k = ctx;
    if (k->focal)
        return ref_focal_loss(k->N, k->C, k->logits, k->labels, k->w, k->ls, k->alpha, 0.25, k->gamma, NULL, NULL);
    return ref_softmax_xent(k->N, k->C, k->logits, k->labels, k->w, k->ls, NULL, NULL);
}

static void fd_case(harness *h, int N, int C, int focal, int weighted, double ls, int per_class_alpha, double gamma)
{
    size_t nz = (size_t)N * C;
    loss_case k = {.N = N, .C = C, .focal = focal, .ls = ls, .gamma = gamma};
    k.logits = malloc(nz * sizeof *k.logits);
    k.labels = malloc((size_t)N * sizeof *k.labels);
    k.w = weighted ? malloc((size_t)N * sizeof *k.w) : NULL;
    k.alpha = per_class_alpha ? malloc((size_t)C * sizeof *k.alpha) : NULL;
    double *grad = malloc(nz * sizeof *grad);
    for (size_t i = 0; i < nz; i++)
        k.logits[i] = harness_uniform(h, -3, 3);
    for (int i = 0; i < N; i++) {
        k.labels[i] = (int)harness_uniform(h, 0, (float)C) % C;
        if (k.w)
            k.w[i] = harness_uniform(h, 0.2f, 2.0f);
    }
    for (int c = 0; k.alpha && c < C; c++)
        k.alpha[c] = harness_uniform(h, 0.1f, 1.0f);
    if (focal)
        ref_focal_loss(N, C, k.logits, k.labels, k.w, ls, k.alpha, 0.25, gamma, NULL, grad);
    else
        ref_softmax_xent(N, C, k.logits, k.labels, k.w, ls, NULL, grad);
    char what[128];
    snprintf(what, sizeof what, "%s N=%d C=%d w=%d ls=%g alpha=%s gamma=%g", focal ? "focal" : "xent", N, C,
             weighted, ls, per_class_alpha ? "[C]" : "0.25", gamma);
    harness_fd_check(h, what, case_loss, &k, k.logits, nz, grad, 200, 1e-5, 1e-6);
    free(k.logits), free(k.labels), free(k.w), free(k.alpha), free(grad);
}

/* Known values: uniform logits give log C; gamma 0 focal = alpha * xent. */
static void closed_forms(harness *h)
{
    double z[4] = {0.5, 0.5, 0.5, 0.5}, zr[4] = {0.3, -1.2, 2.0, 0.1};
    int lab[1] = {2};
    double l = ref_softmax_xent(1, 4, z, lab, NULL, 0, NULL, NULL);
    double got[2] = {l, ref_focal_loss(1, 4, zr, lab, NULL, 0, NULL, 0.5, 0.0, NULL, NULL)};
    double want[2] = {log(4.0), 0.5 * ref_softmax_xent(1, 4, zr, lab, NULL, 0, NULL, NULL)};
    float gotf[2] = {(float)got[0], (float)got[1]};
    harness_check(h, "closed forms: log C, focal gamma 0 = alpha xent", gotf, want, 2, 1e-6, 1e-12);
}

/* Adam's first step moves each weight by about lr * sign(g); SGD by lr g. */
static void optimizer_sanity(harness *h)
{
    ref_opt adam = {.type = REF_ADAM, .beta1 = 0.9, .beta2 = 0.999, .epsilon = 1e-12};
    double th[2] = {1, 1}, g[2] = {0.3, -2}, m[2] = {0}, v[2] = {0};
    ref_opt_update(&adam, 2, th, g, m, v, 0.01, 1, 1.0);
    float got[4] = {(float)th[0], (float)th[1]};
    ref_opt sgd = {.type = REF_SGD, .momentum = 0.9, .nesterov = 1};
    double th2[2] = {1, 1}, m2[2] = {0};
    ref_opt_update(&sgd, 2, th2, g, m2, NULL, 0.1, 1, 1.0);
    got[2] = (float)th2[0], got[3] = (float)th2[1]; /* nesterov from m = 0: -lr g (1 + mu) */
    double want[4] = {0.99, 1.01, 1 - 0.1 * 0.3 * 1.9, 1 + 0.1 * 2 * 1.9};
    harness_check(h, "optimizer closed forms (Adam step 1, Nesterov)", got, want, 4, 1e-6, 1);
    const double *gs[1] = {g};
    size_t ns[1] = {2};
    float f = (float)ref_clip_factor(1, gs, ns, 1.0);
    double fw = 1.0 / sqrt(0.09 + 4);
    harness_check(h, "clip factor", &f, &fw, 1, 1e-6, 1e-12);
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    closed_forms(&h);
    optimizer_sanity(&h);
    static const int shapes[][2] = {{1, 2}, {3, 3}, {4, 10}};
    for (int s = 0; s < 3; s++)
        for (int v = 0; v < 4; v++) {
            int weighted = v & 1;
            double ls = (v & 2) ? 0.1 : 0.0;
            fd_case(&h, shapes[s][0], shapes[s][1], 0, weighted, ls, 0, 0);
            fd_case(&h, shapes[s][0], shapes[s][1], 1, weighted, ls, v & 1, 0.0);
            fd_case(&h, shapes[s][0], shapes[s][1], 1, weighted, ls, !(v & 1), 2.0);
        }
    return harness_finish(&h);
}
