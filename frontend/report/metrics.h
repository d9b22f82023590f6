/* metrics.h — classification metrics on the host, from predicted
 * probabilities probs[N*C] (row-major, one row per sample) and true labels
 * y_true[N] in [0, C), with optional sample weights w[N] (NULL = all 1).
 *
 * Two families, as in the Keras workflow tlcl replaces:
 * - scikit-learn's test-set evaluation (keras_reference.md section 7.2):
 *   confusion matrix, accuracy, per-class precision/recall/F1 with macro and
 *   weighted averages (zero_division -> 0), balanced accuracy, Cohen's kappa,
 *   one-vs-rest ROC AUC, top-k accuracy. The predicted class is numpy's
 *   argmax (the first of equal maxima).
 * - Keras's compiled metrics (section 7.1): Precision and Recall at 0.5 and
 *   the micro ROC AUC with 200 thresholds over the N*C one-hot cells, and a
 *   streaming accumulator that averages them over an epoch the way Keras
 *   reports training metrics (weighted by the sample weights, section 6).
 *
 * Confusion matrices are C x C doubles (weighted counts), rows true, columns
 * predicted, every class kept even when it never occurs. */
#ifndef TLCL_METRICS_H
#define TLCL_METRICS_H

#include <stddef.h>

/* pred[i] = argmax of row i (first index of the largest value). */
void metrics_argmax(const float *probs, int n, int c, int *pred);

/* cm[C*C] = weighted counts of (true i, predicted j) at cm[i*C + j]. */
void metrics_confusion(const int *y_true, const int *pred, const double *w, int n, int c, double *cm);

/* sklearn accuracy_score: trace / total (0 for an empty matrix). */
double metrics_accuracy(const double *cm, int c);

typedef struct metrics_class {
    double precision, recall, f1, support;
} metrics_class;

/* Per class k: precision = cm[k][k] / column sum, recall = cm[k][k] / row
 * sum, F1 = 2 tp / (row + column sum), support = row sum; a 0/0 is 0
 * (sklearn zero_division=0). */
void metrics_per_class(const double *cm, int c, metrics_class *out);

/* Named groups of classes, each scored as one binary problem (plankton
 * against the rest): a sample is a true positive of group g when both its
 * class and its predicted class are in g. */
enum { METRICS_GROUPS_MAX = 8, METRICS_GROUP_CLASSES_MAX = 256 };
typedef struct metrics_groups {
    int count;
    char name[METRICS_GROUPS_MAX][24];
    unsigned char member[METRICS_GROUPS_MAX][METRICS_GROUP_CLASSES_MAX]; /* [g][class] */
} metrics_groups;

/* A group's precision = in-group hits / samples predicted in the group,
 * recall = in-group hits / samples of the group, F1, support = samples of
 * the group (0/0 is 0), from the confusion matrix. */
metrics_class metrics_group(const double *cm, int c, const unsigned char *member);

/* Macro (plain mean over all C classes) and weighted (by support) averages;
 * both carry support = total support. */
void metrics_averages(const metrics_class *pc, int c, metrics_class *macro, metrics_class *weighted);

/* sklearn balanced_accuracy_score: mean recall over the classes that occur
 * as a true label (classes never true are dropped, not counted as 0). */
double metrics_balanced_accuracy(const double *cm, int c);

typedef enum metrics_kappa_weights {
    METRICS_KAPPA_NONE,      /* W = 1 - I */
    METRICS_KAPPA_LINEAR,    /* W[i][j] = |i - j| */
    METRICS_KAPPA_QUADRATIC, /* W[i][j] = (i - j)^2 */
} metrics_kappa_weights;

/* sklearn cohen_kappa_score(y_true, y_pred, weights=...): 1 - sum(W*O) /
 * sum(W*E), E = outer(column sums, row sums) / total. As with sklearn's
 * default labels, classes that are neither true nor predicted are dropped
 * first, so i and j are positions among the classes that occur (this only
 * matters for linear and quadratic weights). NaN when sum(W*E) = 0. */
double metrics_cohen_kappa(const double *cm, int c, metrics_kappa_weights weights);

/* sklearn roc_auc_score for one binary problem: score[i] ranks sample i,
 * positive[i] != 0 marks the positives. Exact trapezoids between the ROC
 * points at each distinct score (tied samples move the curve diagonally).
 * NaN when there are no positives or no negatives (sklearn raises). */
double metrics_roc_auc_binary(const double *score, const int *positive, const double *w, int n);

/* One-vs-rest ROC AUC of every class (per_class[C], may be NULL) and their
 * plain mean, sklearn roc_auc_score(y, probs, multi_class='ovr',
 * average='macro'). For C = 2 the returned value is sklearn's binary AUC of
 * column 1, which for rows summing to 1 equals the mean of the two. Returns
 * NaN when some class never occurs (sklearn raises). */
double metrics_roc_auc_ovr(const float *probs, const int *y_true, const double *w, int n, int c,
                           double *per_class);

/* sklearn top_k_accuracy_score: the (weighted) share of samples whose true
 * class is among the k highest scores; among equal scores the higher class
 * index ranks first, as sklearn's reversed stable argsort does. */
double metrics_top_k_accuracy(const float *probs, const int *y_true, const double *w, int n, int c, int k);

/* ---- Keras compiled metrics (section 7.1) -------------------------------- */

#define METRICS_KERAS_THRESHOLDS 200

/* Weighted sums for Keras Precision/Recall at 0.5 and AUC over the N*C
 * one-hot cells; additive, so batches accumulate into one. */
typedef struct metrics_keras_counts {
    double tp, fp, fn;                         /* cells with p > 0.5 */
    double auc_pos[METRICS_KERAS_THRESHOLDS];  /* positive weight per bucket */
    double auc_neg[METRICS_KERAS_THRESHOLDS];  /* negative weight per bucket */
} metrics_keras_counts;

void metrics_keras_update(metrics_keras_counts *k, const float *probs, const int *y_true, const double *w, int n,
                          int c);
/* TP/(TP+FP) and TP/(TP+FN), 0 when the denominator is 0 (divide_no_nan). */
double metrics_keras_precision(const metrics_keras_counts *k);
double metrics_keras_recall(const metrics_keras_counts *k);
/* Trapezoidal ROC AUC over thresholds {-1e-7, 1/199, ..., 198/199, 1+1e-7}:
 * a cell counts as positive at threshold t when p > t. */
double metrics_keras_auc(const metrics_keras_counts *k);

/* ---- per-epoch training metrics ----------------------------------------- */

/* What Keras prints and logs for a training epoch: loss = sum over batches
 * of (batch loss x batch size) / samples, where the batch loss is already
 * Keras's sum_over_batch_size reduction sum(w_i l_i) / B; accuracy,
 * precision, recall and AUC weighted by the same sample weights. */
typedef struct metrics_stream {
    int classes;
    double loss_sum, samples;       /* sum(batch loss * B), sum(B) */
    double weight_sum, correct_sum; /* sum(w), sum(w * [argmax == y]) */
    metrics_keras_counts keras;
} metrics_stream;

void metrics_stream_init(metrics_stream *s, int classes);
/* Adds one batch of n samples; batch_loss is the reduced loss of the batch
 * (NaN when the caller has no loss, which then stays NaN). */
void metrics_stream_update(metrics_stream *s, const float *probs, const int *y_true, const double *w, int n,
                           double batch_loss);
double metrics_stream_loss(const metrics_stream *s);
double metrics_stream_accuracy(const metrics_stream *s);

/* ---- everything at once -------------------------------------------------- */

/* The test-set evaluation: what report.h writes. */
typedef struct metrics_summary {
    int classes;
    double *confusion;       /* [C*C] */
    metrics_class *per_class; /* [C] */
    metrics_class macro, weighted;
    double accuracy, balanced_accuracy;
    double kappa, kappa_linear, kappa_quadratic;
    double *auc;             /* [C] one-vs-rest */
    double auc_macro;
    double top2;             /* top-2 accuracy (1 when C <= 2) */
    double keras_precision, keras_recall, keras_auc;
} metrics_summary;

/* Fills s (allocating its arrays). Returns 0, or -1 when out of memory or a
 * label is out of range. */
int metrics_summary_compute(metrics_summary *s, const float *probs, const int *y_true, const double *w, int n,
                            int c);
/* The part a confusion matrix [C*C] determines (per-class, macro and
 * weighted averages, accuracy, balanced accuracy, kappas); the score-based
 * fields (AUC, top-2, Keras's thresholded counts) are NaN. For the training
 * side, whose device counters keep a confusion matrix and no scores. */
int metrics_summary_from_confusion(metrics_summary *s, const double *confusion, int c);
void metrics_summary_free(metrics_summary *s);

#endif
