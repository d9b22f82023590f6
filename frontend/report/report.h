/* report.h — the test-set artefacts of the workflow: the classification
 * report as JSON in scikit-learn's classification_report(output_dict=True)
 * shape plus balanced accuracy and Cohen's kappa, the confusion matrix as
 * CSV, and the class names as JSON. Every file is written to a temporary
 * name and renamed into place. Functions return 0, or -1 with a message in
 * err. */
#ifndef TLCL_REPORT_H
#define TLCL_REPORT_H

#include "metrics.h"

#include <stddef.h>

/* {"<class>": {"precision": p, "recall": r, "f1-score": f, "support": s},
 *  ..., "accuracy": a, "macro avg": {...}, "weighted avg": {...},
 *  ["group <name>": {...}, ...,] "balanced_accuracy": b, "cohen_kappa": k}
 * in that order, one class per name in class index order (all C classes,
 * as sklearn with labels=range(C)); floats as Python's json writes them;
 * support as a float ("49.0"), as scikit-learn 1.9 returns it. groups may be
 * NULL (none). */
int report_write_json(const char *path, const metrics_summary *s, const char *const *class_names,
                      const metrics_groups *groups, char *err, size_t err_len);

/* First row: an empty cell then the class names (predicted); then one row
 * per true class: its name then the counts. Integral counts are written as
 * integers, weighted ones as Python floats. Lines end in \n. */
int report_write_confusion_csv(const char *path, const double *cm, int c, const char *const *class_names,
                               char *err, size_t err_len);

/* ["name0", "name1", ...]: the class names in index order. */
int report_write_labels_json(const char *path, const char *const *class_names, int c, char *err, size_t err_len);

#endif
