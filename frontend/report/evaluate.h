/* evaluate.h — the test-set outputs shared by `tlcl train` and `tlcl test`:
 * the confusion matrix (CSV and a PNG picture), the classification report
 * JSON (scikit-learn's output_dict shape plus balanced accuracy and kappa),
 * and the per-epoch validation metrics the trainer logs. */
#ifndef TLCL_EVALUATE_H
#define TLCL_EVALUATE_H

#include "metrics.h"
#include "trainer.h"

typedef struct tlcl_eval_paths {
    const char *confusion_csv;  /* NULL: not written */
    const char *confusion_png;
    const char *report_json;
} tlcl_eval_paths;

/* Computes the metrics of probs [n, classes] against labels, writes the
 * files and prints a summary line. Returns 0 or -1 with err. */
int tlcl_evaluate_write(const float *probs, const int *labels, int n, int classes, const char *const *class_names,
                        const metrics_groups *groups, const tlcl_eval_paths *paths, FILE *out, char *err,
                        size_t err_len);

/* A tlcl_metrics_fn: precision, recall, f1 (macro), balanced accuracy,
 * kappa, AUC (OvR macro), top-k and per-class precision/recall/f1, as the
 * metric list of ctx (a tlcl_eval_metrics) asks. */
typedef struct tlcl_eval_metrics {
    const char *const *class_names;
    int want_precision, want_recall, want_f1, want_balanced, want_kappa, want_auc, top_k;
    const metrics_groups *groups;   /* group_<name>_precision, _recall, _f1 (NULL: none) */
} tlcl_eval_metrics;
void tlcl_eval_metrics_fn(void *ctx, const float *probs, const int *labels, int n, int classes, const char *prefix,
                          tlcl_logs *logs);
/* The training side's: the metrics of ctx's list that the confusion counts
 * of the training steps determine (precision, recall, f1, balanced
 * accuracy, kappa, the groups'), unprefixed; AUC and top-k need scores the
 * training steps do not keep. */
void tlcl_eval_train_metrics_fn(void *ctx, const double *confusion, int classes, tlcl_logs *logs);

#endif
