/* evaluate.c — see evaluate.h. */
#include "evaluate.h"
#include "metrics.h"
#include "plot.h"
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int tlcl_evaluate_write(const float *probs, const int *labels, int n, int classes, const char *const *class_names,
                        const metrics_groups *groups, const tlcl_eval_paths *paths, FILE *out, char *err,
                        size_t err_len)
{
    metrics_summary s;
    if (metrics_summary_compute(&s, probs, labels, NULL, n, classes) != 0) {
        snprintf(err, err_len, "out of memory computing the test metrics");
        return -1;
    }
    int rc = 0;
    if (paths->confusion_csv)
        rc = report_write_confusion_csv(paths->confusion_csv, s.confusion, classes, class_names, err, err_len);
    if (rc == 0 && paths->confusion_png)
        rc = plot_confusion_matrix(s.confusion, classes, class_names, paths->confusion_png, err, err_len);
    if (rc == 0 && paths->report_json)
        rc = report_write_json(paths->report_json, &s, class_names, groups, err, err_len);
    if (rc == 0 && out) {
        fprintf(out, "test: %d images, accuracy %.4f, balanced accuracy %.4f, macro F1 %.4f, kappa %.4f", n,
                s.accuracy, s.balanced_accuracy, s.macro.f1, s.kappa);
        for (int g = 0; groups && g < groups->count; g++) {
            metrics_class m = metrics_group(s.confusion, classes, groups->member[g]);
            fprintf(out, "; %s precision %.4f recall %.4f F1 %.4f", groups->name[g], m.precision, m.recall, m.f1);
        }
        fputc('\n', out);
    }
    metrics_summary_free(&s);
    return rc;
}

static void set_prefixed(tlcl_logs *logs, const char *prefix, const char *name, double v)
{
    char key[96];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    tlcl_logs_set(logs, key, v);
}

/* The metrics of w's list into logs, in one order for both sides. AUC and
 * top-k need the scores (probs, labels, n); the training side has only
 * its confusion counts and passes probs NULL. per_class: the per-class
 * precision, recall and F1 of the class curves. */
static void log_metrics(const tlcl_eval_metrics *w, const metrics_summary *s, const float *probs, const int *labels,
                        int n, const char *prefix, int per_class, tlcl_logs *logs)
{
    if (w->want_precision)
        set_prefixed(logs, prefix, "precision", s->macro.precision);
    if (w->want_recall)
        set_prefixed(logs, prefix, "recall", s->macro.recall);
    if (w->want_f1)
        set_prefixed(logs, prefix, "f1", s->macro.f1);
    if (w->want_balanced)
        set_prefixed(logs, prefix, "balanced_accuracy", s->balanced_accuracy);
    if (w->want_kappa)
        set_prefixed(logs, prefix, "kappa", s->kappa);
    if (probs && w->want_auc && !isnan(s->auc_macro))
        set_prefixed(logs, prefix, "auc", s->auc_macro);
    if (probs && w->top_k > 1) {
        char name[32];
        snprintf(name, sizeof name, "top_%d_accuracy", w->top_k);
        set_prefixed(logs, prefix, name, metrics_top_k_accuracy(probs, labels, NULL, n, s->classes, w->top_k));
    }
    for (int g = 0; w->groups && g < w->groups->count; g++) {
        metrics_class m = metrics_group(s->confusion, s->classes, w->groups->member[g]);
        const char *what[3] = {"precision", "recall", "f1"};
        double v[3] = {m.precision, m.recall, m.f1};
        for (int k = 0; k < 3; k++) {
            char name[64];
            snprintf(name, sizeof name, "group_%s_%s", w->groups->name[g], what[k]);
            set_prefixed(logs, prefix, name, v[k]);
        }
    }
    for (int c = 0; per_class && c < s->classes && w->class_names; c++) {
        char name[96];
        snprintf(name, sizeof name, "precision_%s", w->class_names[c]);
        set_prefixed(logs, prefix, name, s->per_class[c].precision);
        snprintf(name, sizeof name, "recall_%s", w->class_names[c]);
        set_prefixed(logs, prefix, name, s->per_class[c].recall);
        snprintf(name, sizeof name, "f1_%s", w->class_names[c]);
        set_prefixed(logs, prefix, name, s->per_class[c].f1);
    }
}

void tlcl_eval_metrics_fn(void *ctx, const float *probs, const int *labels, int n, int classes, const char *prefix,
                          tlcl_logs *logs)
{
    metrics_summary s;
    if (n == 0 || metrics_summary_compute(&s, probs, labels, NULL, n, classes) != 0)
        return;
    log_metrics(ctx, &s, probs, labels, n, prefix, 1, logs);
    metrics_summary_free(&s);
}

void tlcl_eval_train_metrics_fn(void *ctx, const double *confusion, int classes, tlcl_logs *logs)
{
    metrics_summary s;
    if (metrics_summary_from_confusion(&s, confusion, classes) != 0)
        return;
    log_metrics(ctx, &s, NULL, NULL, 0, "", 0, logs);
    metrics_summary_free(&s);
}
