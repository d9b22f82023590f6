/* ref_loss.h — double-precision references for the losses (with their
 * logits gradients), dropout / drop-path given a mask, and the optimizers,
 * written from the Keras semantics (keras_reference.md §6, §8, §9). */
#ifndef TLCL_REF_LOSS_H
#define TLCL_REF_LOSS_H

#include <stddef.h>

/* logits [N, C]; labels [N]; w [N] or NULL; ls = label smoothing.
 * per_sample [N] (unweighted l_i) and dlogits [N, C] may be NULL.
 * Returns sum_i w_i l_i / N; dlogits = d(that) / d logits. */
double ref_softmax_xent(int N, int C, const double *logits, const int *labels, const double *w, double ls,
                        double *per_sample, double *dlogits);
/* Keras CategoricalFocalCrossentropy on softmax(logits), p clipped to
 * [1e-7, 1-1e-7]; alpha [C] or NULL for alpha_scalar. */
double ref_focal_loss(int N, int C, const double *logits, const int *labels, const double *w, double ls,
                      const double *alpha, double alpha_scalar, double gamma, double *per_sample, double *dlogits);
void ref_softmax(int N, int C, const double *logits, double *probs);

/* out[i] = keep[i / group] ? in[i] / (1 - rate) : 0 (group 1: dropout;
 * group = elements per sample: drop-path). */
void ref_dropout(size_t n, size_t group, const double *in, const unsigned char *keep, double rate, double *out);

typedef enum ref_opt_type { REF_SGD = 0, REF_ADAM = 1 } ref_opt_type;

typedef struct ref_opt {
    ref_opt_type type;
    double beta1, beta2, epsilon, momentum, weight_decay;
    int nesterov;
} ref_opt;

/* min(1, clip / ||g||) over the concatenation of the gradient arrays. */
double ref_clip_factor(int ntensors, const double *const *g, const size_t *n, double clip);
/* One Keras update of n values at step t = iterations + 1: g is scaled by
 * clip_factor, then decoupled weight decay, then the SGD or Adam update
 * (m, v updated in place). */
void ref_opt_update(const ref_opt *o, size_t n, double *theta, const double *g, double *m, double *v, double lr,
                    long t, double clip_factor);

#endif
