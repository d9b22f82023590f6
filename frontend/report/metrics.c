/* metrics.c — scikit-learn's classification metrics and Keras's compiled
 * metrics on the host (see metrics.h for which formula each follows). Sums
 * are in double; probabilities stay float32 where Keras compares them in
 * float32 (its AUC buckets), so the bucket of each cell is the one Keras
 * computes. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double weight_of(const double *w, int i) { return w ? w[i] : 1.0; }

/* 0/0 is 0, as sklearn's zero_division=0 and Keras's divide_no_nan. */
static double safe_div(double a, double b) { return b != 0 ? a / b : 0.0; }

void metrics_argmax(const float *probs, int n, int c, int *pred)
{
    for (int i = 0; i < n; i++) {
        const float *row = probs + (size_t)i * c;
        int best = 0;
        for (int j = 1; j < c; j++)
            if (row[j] > row[best]) /* strict: the first maximum wins */
                best = j;
        pred[i] = best;
    }
}

void metrics_confusion(const int *y_true, const int *pred, const double *w, int n, int c, double *cm)
{
    memset(cm, 0, (size_t)c * c * sizeof *cm);
    for (int i = 0; i < n; i++)
        cm[(size_t)y_true[i] * c + pred[i]] += weight_of(w, i);
}

static double row_sum(const double *cm, int c, int r)
{
    double s = 0;
    for (int j = 0; j < c; j++)
        s += cm[(size_t)r * c + j];
    return s;
}

static double col_sum(const double *cm, int c, int col)
{
    double s = 0;
    for (int i = 0; i < c; i++)
        s += cm[(size_t)i * c + col];
    return s;
}

double metrics_accuracy(const double *cm, int c)
{
    double trace = 0, total = 0;
    for (int i = 0; i < c; i++) {
        trace += cm[(size_t)i * c + i];
        total += row_sum(cm, c, i);
    }
    return safe_div(trace, total);
}

static metrics_class scores(double tp, double truth, double predicted)
{
    /* sklearn's F1 form: 2tp / (true + predicted), not 2PR / (P + R) */
    return (metrics_class){safe_div(tp, predicted), safe_div(tp, truth), safe_div(2 * tp, truth + predicted), truth};
}

void metrics_per_class(const double *cm, int c, metrics_class *out)
{
    for (int k = 0; k < c; k++)
        out[k] = scores(cm[(size_t)k * c + k], row_sum(cm, c, k), col_sum(cm, c, k));
}

metrics_class metrics_group(const double *cm, int c, const unsigned char *member)
{
    double tp = 0, truth = 0, predicted = 0;
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            double v = cm[(size_t)i * c + j];
            tp += member[i] && member[j] ? v : 0;
            truth += member[i] ? v : 0;
            predicted += member[j] ? v : 0;
        }
    return scores(tp, truth, predicted);
}

void metrics_averages(const metrics_class *pc, int c, metrics_class *macro, metrics_class *weighted)
{
    memset(macro, 0, sizeof *macro);
    memset(weighted, 0, sizeof *weighted);
    double total = 0;
    for (int k = 0; k < c; k++)
        total += pc[k].support;
    for (int k = 0; k < c; k++) {
        macro->precision += pc[k].precision / c;
        macro->recall += pc[k].recall / c;
        macro->f1 += pc[k].f1 / c;
        double share = safe_div(pc[k].support, total);
        weighted->precision += pc[k].precision * share;
        weighted->recall += pc[k].recall * share;
        weighted->f1 += pc[k].f1 * share;
    }
    macro->support = weighted->support = total;
}

double metrics_balanced_accuracy(const double *cm, int c)
{
    double sum = 0;
    int kept = 0;
    for (int k = 0; k < c; k++) {
        double truth = row_sum(cm, c, k);
        if (truth == 0) /* sklearn drops classes that are never true */
            continue;
        sum += cm[(size_t)k * c + k] / truth;
        kept++;
    }
    return safe_div(sum, kept);
}

static double kappa_weight(metrics_kappa_weights wt, int i, int j)
{
    switch (wt) {
    case METRICS_KAPPA_LINEAR:
        return fabs((double)(i - j));
    case METRICS_KAPPA_QUADRATIC:
        return (double)(i - j) * (i - j);
    default:
        return i != j;
    }
}

double metrics_cohen_kappa(const double *cm, int c, metrics_kappa_weights weights)
{
    /* positions of the classes that occur, as sklearn's sorted label union */
    int *pos = malloc((size_t)(c ? c : 1) * sizeof *pos);
    double *rows = calloc((size_t)(c ? c : 1), sizeof *rows), *cols = calloc((size_t)(c ? c : 1), sizeof *cols);
    if (!pos || !rows || !cols) {
        free(pos), free(rows), free(cols);
        return NAN;
    }
    double total = 0;
    int used = 0;
    for (int k = 0; k < c; k++) {
        rows[k] = row_sum(cm, c, k), cols[k] = col_sum(cm, c, k);
        total += rows[k];
        pos[k] = (rows[k] != 0 || cols[k] != 0) ? used++ : -1;
    }
    double observed = 0, expected = 0;
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c && pos[i] >= 0; j++) {
            if (pos[j] < 0)
                continue;
            double wij = kappa_weight(weights, pos[i], pos[j]);
            observed += wij * cm[(size_t)i * c + j];
            expected += wij * rows[i] * cols[j] / total;
        }
    free(pos), free(rows), free(cols);
    return expected != 0 ? 1.0 - observed / expected : NAN;
}

/* ---- ROC AUC -------------------------------------------------------------- */

typedef struct scored {
    double score, pos_w, neg_w;
} scored;

static int by_score_desc(const void *a, const void *b)
{
    double x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return (x < y) - (x > y);
}

double metrics_roc_auc_binary(const double *score, const int *positive, const double *w, int n)
{
    scored *s = malloc((size_t)(n ? n : 1) * sizeof *s);
    if (!s)
        return NAN;
    for (int i = 0; i < n; i++) {
        double wi = weight_of(w, i);
        s[i] = (scored){score[i], positive[i] ? wi : 0, positive[i] ? 0 : wi};
    }
    qsort(s, (size_t)n, sizeof *s, by_score_desc);
    /* One ROC point per distinct score: all samples tied at a threshold
     * enter together, so a tie is a straight diagonal segment. */
    double tp = 0, fp = 0, area = 0;
    for (int i = 0; i < n;) {
        double tp0 = tp, fp0 = fp;
        int j = i;
        for (; j < n && (j == i || s[j].score == s[i].score); j++) /* j == i: a NaN score, else no progress */
            tp += s[j].pos_w, fp += s[j].neg_w;
        area += (fp - fp0) * (tp + tp0) / 2;
        i = j;
    }
    free(s);
    return (tp > 0 && fp > 0) ? area / (tp * fp) : NAN;
}

double metrics_roc_auc_ovr(const float *probs, const int *y_true, const double *w, int n, int c, double *per_class)
{
    double *score = malloc((size_t)(n ? n : 1) * sizeof *score);
    int *positive = malloc((size_t)(n ? n : 1) * sizeof *positive);
    double mean = 0;
    for (int k = 0; k < c && score && positive; k++) {
        for (int i = 0; i < n; i++) {
            score[i] = probs[(size_t)i * c + k];
            positive[i] = y_true[i] == k;
        }
        double auc = metrics_roc_auc_binary(score, positive, w, n);
        if (per_class)
            per_class[k] = auc;
        /* sklearn treats two classes as one binary problem on column 1 */
        mean = (c == 2) ? auc : mean + auc / c;
    }
    if (!score || !positive)
        mean = NAN;
    free(score), free(positive);
    return mean;
}

double metrics_top_k_accuracy(const float *probs, const int *y_true, const double *w, int n, int c, int k)
{
    double hits = 0, total = 0;
    for (int i = 0; i < n; i++) {
        const float *row = probs + (size_t)i * c;
        int t = y_true[i], rank = 0;
        for (int j = 0; j < c; j++)
            rank += row[j] > row[t] || (row[j] == row[t] && j > t);
        hits += (rank < k) * weight_of(w, i);
        total += weight_of(w, i);
    }
    return safe_div(hits, total);
}

/* ---- Keras ------------------------------------------------------------------ */

/* Keras's bucket shortcut for evenly spaced thresholds: clip to [0, 1],
 * bucket = ceil(p * 199) - 1 raised to 0, in float32 as Keras computes it.
 * Counting buckets >= i then equals counting p > threshold i. */
static int keras_bucket(float p)
{
    p = p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);
    int b = (int)ceilf(p * (float)(METRICS_KERAS_THRESHOLDS - 1)) - 1;
    return b < 0 ? 0 : b;
}

void metrics_keras_update(metrics_keras_counts *k, const float *probs, const int *y_true, const double *w, int n,
                          int c)
{
    for (int i = 0; i < n; i++) {
        double wi = weight_of(w, i);
        for (int j = 0; j < c; j++) {
            float p = probs[(size_t)i * c + j];
            int label = y_true[i] == j, predicted = p > 0.5f;
            k->tp += wi * (label && predicted);
            k->fp += wi * (!label && predicted);
            k->fn += wi * (label && !predicted);
            if (label)
                k->auc_pos[keras_bucket(p)] += wi;
            else
                k->auc_neg[keras_bucket(p)] += wi;
        }
    }
}

double metrics_keras_precision(const metrics_keras_counts *k) { return safe_div(k->tp, k->tp + k->fp); }
double metrics_keras_recall(const metrics_keras_counts *k) { return safe_div(k->tp, k->tp + k->fn); }

double metrics_keras_auc(const metrics_keras_counts *k)
{
    enum { T = METRICS_KERAS_THRESHOLDS };
    double tp[T + 1], fp[T + 1];
    tp[T] = fp[T] = 0;
    for (int i = T - 1; i >= 0; i--) { /* reverse cumulative sums */
        tp[i] = tp[i + 1] + k->auc_pos[i];
        fp[i] = fp[i + 1] + k->auc_neg[i];
    }
    double pos = tp[0], neg = fp[0], auc = 0;
    for (int i = 0; i + 1 < T; i++) {
        double tpr0 = safe_div(tp[i], pos), tpr1 = safe_div(tp[i + 1], pos);
        double fpr0 = safe_div(fp[i], neg), fpr1 = safe_div(fp[i + 1], neg);
        auc += (fpr0 - fpr1) * (tpr0 + tpr1) / 2;
    }
    return auc;
}

/* ---- streaming -------------------------------------------------------------- */

void metrics_stream_init(metrics_stream *s, int classes)
{
    memset(s, 0, sizeof *s);
    s->classes = classes;
}

void metrics_stream_update(metrics_stream *s, const float *probs, const int *y_true, const double *w, int n,
                           double batch_loss)
{
    s->loss_sum += batch_loss * n;
    s->samples += n;
    for (int i = 0; i < n; i++) {
        int best;
        metrics_argmax(probs + (size_t)i * s->classes, 1, s->classes, &best);
        s->weight_sum += weight_of(w, i);
        s->correct_sum += weight_of(w, i) * (best == y_true[i]);
    }
    metrics_keras_update(&s->keras, probs, y_true, w, n, s->classes);
}

double metrics_stream_loss(const metrics_stream *s) { return safe_div(s->loss_sum, s->samples); }
double metrics_stream_accuracy(const metrics_stream *s) { return safe_div(s->correct_sum, s->weight_sum); }

/* ---- summary ---------------------------------------------------------------- */

static int labels_valid(const int *y_true, int n, int c)
{
    for (int i = 0; i < n; i++)
        if (y_true[i] < 0 || y_true[i] >= c)
            return 0;
    return 1;
}

/* The fields a confusion matrix determines; s->confusion is filled. */
static void summary_of_confusion(metrics_summary *s)
{
    int c = s->classes;
    metrics_per_class(s->confusion, c, s->per_class);
    metrics_averages(s->per_class, c, &s->macro, &s->weighted);
    s->accuracy = metrics_accuracy(s->confusion, c);
    s->balanced_accuracy = metrics_balanced_accuracy(s->confusion, c);
    s->kappa = metrics_cohen_kappa(s->confusion, c, METRICS_KAPPA_NONE);
    s->kappa_linear = metrics_cohen_kappa(s->confusion, c, METRICS_KAPPA_LINEAR);
    s->kappa_quadratic = metrics_cohen_kappa(s->confusion, c, METRICS_KAPPA_QUADRATIC);
}

/* Allocates s's arrays for c classes; -1 when out of memory. */
static int summary_alloc(metrics_summary *s, int c)
{
    memset(s, 0, sizeof *s);
    s->classes = c;
    s->confusion = malloc((size_t)c * c * sizeof *s->confusion);
    s->per_class = malloc((size_t)c * sizeof *s->per_class);
    s->auc = malloc((size_t)c * sizeof *s->auc);
    if (c >= 1 && s->confusion && s->per_class && s->auc)
        return 0;
    metrics_summary_free(s);
    return -1;
}

int metrics_summary_compute(metrics_summary *s, const float *probs, const int *y_true, const double *w, int n, int c)
{
    if (summary_alloc(s, c) != 0)
        return -1;
    int *pred = malloc((size_t)(n ? n : 1) * sizeof *pred);
    metrics_keras_counts *kc = calloc(1, sizeof *kc);
    if (!labels_valid(y_true, n, c) || !pred || !kc) {
        free(pred), free(kc);
        metrics_summary_free(s);
        return -1;
    }
    metrics_argmax(probs, n, c, pred);
    metrics_confusion(y_true, pred, w, n, c, s->confusion);
    summary_of_confusion(s);
    s->auc_macro = metrics_roc_auc_ovr(probs, y_true, w, n, c, s->auc);
    s->top2 = metrics_top_k_accuracy(probs, y_true, w, n, c, 2);
    metrics_keras_update(kc, probs, y_true, w, n, c);
    s->keras_precision = metrics_keras_precision(kc);
    s->keras_recall = metrics_keras_recall(kc);
    s->keras_auc = metrics_keras_auc(kc);
    free(pred), free(kc);
    return 0;
}

int metrics_summary_from_confusion(metrics_summary *s, const double *confusion, int c)
{
    if (summary_alloc(s, c) != 0)
        return -1;
    memcpy(s->confusion, confusion, (size_t)c * c * sizeof *s->confusion);
    summary_of_confusion(s);
    for (int k = 0; k < c; k++)
        s->auc[k] = NAN;
    s->auc_macro = s->top2 = s->keras_precision = s->keras_recall = s->keras_auc = NAN; /* need the scores */
    return 0;
}

void metrics_summary_free(metrics_summary *s)
{
    free(s->confusion), free(s->per_class), free(s->auc);
    s->confusion = NULL, s->per_class = NULL, s->auc = NULL;
}
