/* test_host_metrics.c — the frontend's metrics, reports, histories and
 * pictures. Every metric is checked within 1e-9 against what scikit-learn
 * computed for the same predictions (tests/fixtures/metrics_*.json, written
 * by tools/make_metrics_fixture.py); the history files byte for byte against
 * what Python's json, csv and pickle modules write; each picture is decoded
 * again and its size checked. Host only. Pictures and files go to
 * $TLCL_TEST_OUT when set (to look at them), else to a temporary directory. */
#include "csv_logger.h"
#include "evaluate.h"
#include "harness.h"
#include "history.h"
#include "metrics.h"
#include "plot.h"
#include "report.h"
#include "textout.h"
#include "trainer.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image_load.h"

#define TOL 1e-9

static char out_dir[1024];

/* ---- small helpers ------------------------------------------------------- */

static cJSON *load_fixture(harness *h, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", TLCL_FIXTURES, name);
    char *text = textout_read_all(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j)
        harness_fail(h, "cannot read fixture %s (run tools/make_metrics_fixture.py)", path);
    return j;
}

static void out_path(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%.900s/%s", out_dir, name); }

static void check_num(harness *h, const char *what, double got, double want)
{
    if (fabs(got - want) <= TOL || (isnan(got) && isnan(want)))
        h->passed++;
    else
        harness_fail(h, "%s = %.17g, want %.17g (|diff| %.3g)", what, got, want, fabs(got - want));
}

/* Checks got[0..n) against the JSON array want. */
static void check_array(harness *h, const char *what, const double *got, const cJSON *want, int n)
{
    int bad = 0;
    if (cJSON_GetArraySize(want) != n)
        bad = 1, harness_fail(h, "%s: %d values, fixture has %d", what, n, cJSON_GetArraySize(want));
    for (int i = 0; i < n && !bad; i++) {
        double w = cJSON_GetArrayItem(want, i)->valuedouble;
        if (!(fabs(got[i] - w) <= TOL))
            bad = 1, harness_fail(h, "%s[%d] = %.17g, want %.17g", what, i, got[i], w);
    }
    if (!bad)
        h->passed++;
}

static void check_text(harness *h, const char *what, const char *got, const char *want)
{
    if (got && strcmp(got, want) == 0) {
        h->passed++;
        printf("ok   %s\n", what);
    } else {
        harness_fail(h, "%s:\n--- got ---\n%s\n--- want ---\n%s", what, got ? got : "(no file)", want);
    }
}

/* ---- the fixture's case --------------------------------------------------- */

typedef struct fcase {
    int n, c;
    float *probs;
    int *y;
    double *w;
    const char **names;
    const cJSON *json;
} fcase;

static void case_load(fcase *fc, const cJSON *j)
{
    const cJSON *probs = cJSON_GetObjectItem(j, "probs"), *y = cJSON_GetObjectItem(j, "y_true"),
                *w = cJSON_GetObjectItem(j, "weights"), *names = cJSON_GetObjectItem(j, "class_names");
    fc->json = j;
    fc->n = cJSON_GetArraySize(y);
    fc->c = cJSON_GetObjectItem(j, "classes")->valueint;
    fc->probs = malloc((size_t)fc->n * fc->c * sizeof *fc->probs);
    fc->y = malloc((size_t)fc->n * sizeof *fc->y);
    fc->w = malloc((size_t)fc->n * sizeof *fc->w);
    fc->names = malloc((size_t)fc->c * sizeof *fc->names);
    for (int i = 0; i < fc->n; i++) {
        fc->y[i] = cJSON_GetArrayItem(y, i)->valueint;
        fc->w[i] = cJSON_GetArrayItem(w, i)->valuedouble;
        for (int k = 0; k < fc->c; k++) /* the doubles are exact float32 values */
            fc->probs[i * fc->c + k] = (float)cJSON_GetArrayItem(cJSON_GetArrayItem(probs, i), k)->valuedouble;
    }
    for (int k = 0; k < fc->c; k++)
        fc->names[k] = cJSON_GetArrayItem(names, k)->valuestring;
}

static void case_free(fcase *fc) { free(fc->probs), free(fc->y), free(fc->w), free(fc->names); }

static double item(const cJSON *j, const char *key) { return cJSON_GetObjectItem(j, key)->valuedouble; }

static void check_class_arrays(harness *h, const char *tag, const metrics_summary *s, const cJSON *r)
{
    int c = s->classes;
    double p[64], rc[64], f[64], sup[64];
    for (int k = 0; k < c; k++)
        p[k] = s->per_class[k].precision, rc[k] = s->per_class[k].recall, f[k] = s->per_class[k].f1,
        sup[k] = s->per_class[k].support;
    char what[128];
    snprintf(what, sizeof what, "%s precision", tag);
    check_array(h, what, p, cJSON_GetObjectItem(r, "precision"), c);
    snprintf(what, sizeof what, "%s recall", tag);
    check_array(h, what, rc, cJSON_GetObjectItem(r, "recall"), c);
    snprintf(what, sizeof what, "%s f1", tag);
    check_array(h, what, f, cJSON_GetObjectItem(r, "f1"), c);
    snprintf(what, sizeof what, "%s support", tag);
    check_array(h, what, sup, cJSON_GetObjectItem(r, "support"), c);
    double macro[3] = {s->macro.precision, s->macro.recall, s->macro.f1};
    double weighted[3] = {s->weighted.precision, s->weighted.recall, s->weighted.f1};
    snprintf(what, sizeof what, "%s macro avg", tag);
    check_array(h, what, macro, cJSON_GetObjectItem(r, "macro"), 3);
    snprintf(what, sizeof what, "%s weighted avg", tag);
    check_array(h, what, weighted, cJSON_GetObjectItem(r, "weighted"), 3);
}

static void check_scalars(harness *h, const char *tag, const metrics_summary *s, const cJSON *r, int c)
{
    const cJSON *kappa = cJSON_GetObjectItem(r, "kappa");
    struct {
        const char *name;
        double got, want;
    } v[] = {
        {"accuracy", s->accuracy, item(r, "accuracy")},
        {"balanced accuracy", s->balanced_accuracy, item(r, "balanced_accuracy")},
        {"kappa", s->kappa, item(kappa, "none")},
        {"kappa linear", s->kappa_linear, item(kappa, "linear")},
        {"kappa quadratic", s->kappa_quadratic, item(kappa, "quadratic")},
        {"OvR AUC macro", s->auc_macro, item(r, "auc_macro")},
        {"Keras AUC", s->keras_auc, item(r, "keras_auc")},
        {"Keras precision", s->keras_precision, item(r, "keras_precision")},
        {"Keras recall", s->keras_recall, item(r, "keras_recall")},
        {"top-2 accuracy", s->top2, c > 2 ? item(r, "top2") : 1.0},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char what[128];
        snprintf(what, sizeof what, "%s %s", tag, v[i].name);
        check_num(h, what, v[i].got, v[i].want);
    }
}

/* Everything of metrics_summary against one "unweighted"/"weighted" block. */
static void check_summary(harness *h, const fcase *fc, int weighted)
{
    const cJSON *r = cJSON_GetObjectItem(fc->json, weighted ? "weighted" : "unweighted");
    char tag[96];
    snprintf(tag, sizeof tag, "%s/%s", cJSON_GetObjectItem(fc->json, "name")->valuestring,
             weighted ? "weighted" : "unweighted");
    metrics_summary s;
    if (metrics_summary_compute(&s, fc->probs, fc->y, weighted ? fc->w : NULL, fc->n, fc->c)) {
        harness_fail(h, "%s: metrics_summary_compute failed", tag);
        return;
    }
    int pred[512], failed = h->failed;
    metrics_argmax(fc->probs, fc->n, fc->c, pred);
    double predd[512], cm_flat[64];
    for (int i = 0; i < fc->n; i++)
        predd[i] = pred[i];
    char what[128];
    snprintf(what, sizeof what, "%s argmax (first of ties)", tag);
    check_array(h, what, predd, cJSON_GetObjectItem(r, "pred"), fc->n);
    const cJSON *cm = cJSON_GetObjectItem(r, "confusion");
    for (int i = 0; i < fc->c; i++)
        for (int j = 0; j < fc->c; j++)
            cm_flat[i * fc->c + j] = cJSON_GetArrayItem(cJSON_GetArrayItem(cm, i), j)->valuedouble;
    for (int i = 0; i < fc->c * fc->c; i++)
        check_num(h, "confusion cell", s.confusion[i], cm_flat[i]);
    check_class_arrays(h, tag, &s, r);
    check_scalars(h, tag, &s, r, fc->c);
    snprintf(what, sizeof what, "%s OvR AUC per class", tag);
    check_array(h, what, s.auc, cJSON_GetObjectItem(r, "auc_ovr"), fc->c);
    if (h->failed == failed)
        printf("ok   %s: confusion, accuracy, P/R/F1, averages, balanced accuracy, kappa x3, AUCs, top-2, Keras "
               "P/R/AUC (acc %.4f, kappa %.4f, AUC %.4f)\n", tag, s.accuracy, s.kappa, s.auc_macro);
    metrics_summary_free(&s);
}

/* Batches of 32 through the accumulator give the whole-set weighted
 * values; the loss is the batch-size-weighted mean of the batch losses. */
static void check_stream(harness *h, const fcase *fc)
{
    const cJSON *r = cJSON_GetObjectItem(fc->json, "weighted");
    metrics_stream s;
    metrics_stream_init(&s, fc->c);
    double want_loss = 0;
    for (int b = 0; b * 32 < fc->n; b++) {
        int n = fc->n - b * 32 < 32 ? fc->n - b * 32 : 32;
        double batch_loss = 0.25 + 0.125 * b;
        want_loss += batch_loss * n / fc->n;
        metrics_stream_update(&s, fc->probs + (size_t)b * 32 * fc->c, fc->y + b * 32, fc->w + b * 32, n,
                              batch_loss);
    }
    int failed = h->failed;
    check_num(h, "stream loss", metrics_stream_loss(&s), want_loss);
    check_num(h, "stream accuracy (sample-weighted)", metrics_stream_accuracy(&s), item(r, "accuracy"));
    check_num(h, "stream Keras precision", metrics_keras_precision(&s.keras), item(r, "keras_precision"));
    check_num(h, "stream Keras recall", metrics_keras_recall(&s.keras), item(r, "keras_recall"));
    check_num(h, "stream Keras AUC", metrics_keras_auc(&s.keras), item(r, "keras_auc"));
    if (h->failed == failed)
        printf("ok   %s: streaming accumulator over batches of 32 equals the weighted whole-set values\n",
               cJSON_GetObjectItem(fc->json, "name")->valuestring);
}

/* Kappa drops classes absent from both sides (sklearn's labels=None), so
 * linear and quadratic weights use positions among the classes that occur:
 * the same 3x3 matrix with an empty class inserted gives the same kappas. */
static void check_kappa_absent_class(harness *h)
{
    double cm3[9] = {10, 2, 1, 3, 5, 2, 1, 1, 6};
    double cm4[16] = {10, 0, 2, 1, 0, 0, 0, 0, 3, 0, 5, 2, 1, 0, 1, 6};
    for (int wt = METRICS_KAPPA_NONE; wt <= METRICS_KAPPA_QUADRATIC; wt++)
        check_num(h, "kappa with a class neither true nor predicted", metrics_cohen_kappa(cm4, 4, wt),
                  metrics_cohen_kappa(cm3, 3, wt));
    /* 2x2 by hand: po = 15/20, pe = (12*13 + 8*7)/400 = 0.53 */
    double cm2[4] = {10, 2, 3, 5};
    check_num(h, "kappa by hand", metrics_cohen_kappa(cm2, 2, METRICS_KAPPA_NONE), (0.75 - 0.53) / (1 - 0.53));
}

/* Class groups by hand: classes 0 and 2 form "plankton". Confusion (rows
 * true): in-group hits = cm[0][0]+cm[0][2]+cm[2][0]+cm[2][2] = 10+1+1+6 =
 * 18; samples of the group = rows 0 and 2 = 13+8 = 21; predicted in the
 * group = columns 0 and 2 = 14+9 = 23. Then the logged keys of an epoch. */
static void check_groups(harness *h)
{
    double cm[9] = {10, 2, 1, 3, 5, 2, 1, 1, 6};
    metrics_groups g = {.count = 2, .name = {"plankton", "other"}};
    g.member[0][0] = g.member[0][2] = 1;
    g.member[1][1] = 1;
    metrics_class m = metrics_group(cm, 3, g.member[0]);
    check_num(h, "group precision = in-group hits / predicted in group", m.precision, 18.0 / 23.0);
    check_num(h, "group recall = in-group hits / samples of the group", m.recall, 18.0 / 21.0);
    check_num(h, "group F1 = 2 hits / (samples + predicted)", m.f1, 36.0 / 44.0);
    check_num(h, "group support", m.support, 21.0);
    metrics_class one = metrics_group(cm, 3, g.member[1]), per[3];
    metrics_per_class(cm, 3, per);
    check_num(h, "a one-class group is that class's precision", one.precision, per[1].precision);
    check_num(h, "a one-class group is that class's recall", one.recall, per[1].recall);
    /* an epoch: probabilities whose arg-max reproduce the matrix above */
    int n = 31, k = 0, labels[31];
    float probs[31 * 3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            for (int r = 0; r < (int)cm[i * 3 + j]; r++, k++) {
                labels[k] = i;
                for (int c = 0; c < 3; c++)
                    probs[k * 3 + c] = c == j ? 0.8f : 0.1f;
            }
    tlcl_eval_metrics em = {.groups = &g};
    tlcl_logs logs = {0};
    double got[3] = {-1, -1, -1};
    tlcl_eval_metrics_fn(&em, probs, labels, n, 3, "val_", &logs);
    tlcl_logs_get(&logs, "val_group_plankton_precision", &got[0]);
    tlcl_logs_get(&logs, "val_group_plankton_recall", &got[1]);
    tlcl_logs_get(&logs, "val_group_plankton_f1", &got[2]);
    check_num(h, "logged val_group_plankton_precision", got[0], 18.0 / 23.0);
    check_num(h, "logged val_group_plankton_recall", got[1], 18.0 / 21.0);
    check_num(h, "logged val_group_plankton_f1", got[2], 36.0 / 44.0);
}

/* ---- report files --------------------------------------------------------- */

static void check_report_entry(harness *h, const cJSON *got, const cJSON *want)
{
    if (cJSON_IsNumber(want)) {
        check_num(h, want->string, cJSON_IsNumber(got) ? got->valuedouble : NAN, want->valuedouble);
        return;
    }
    const char *keys[4] = {"precision", "recall", "f1-score", "support"};
    const cJSON *g = got ? got->child : NULL;
    for (int i = 0; i < 4; i++, g = g ? g->next : NULL) {
        if (!g || strcmp(g->string, keys[i]) != 0) {
            harness_fail(h, "report[%s]: key %d is %s, want %s", want->string, i, g ? g->string : "(none)", keys[i]);
            return;
        }
        char what[128];
        snprintf(what, sizeof what, "report[%s][%s]", want->string, keys[i]);
        check_num(h, what, g->valuedouble, cJSON_GetObjectItem(want, keys[i])->valuedouble);
    }
    if (g)
        harness_fail(h, "report[%s]: extra key %s", want->string, g->string);
}

static void check_report_json(harness *h, const fcase *fc)
{
    metrics_summary s;
    char path[1200], err[512];
    out_path(path, sizeof path, "test_report.json");
    metrics_summary_compute(&s, fc->probs, fc->y, NULL, fc->n, fc->c);
    if (report_write_json(path, &s, fc->names, NULL, err, sizeof err)) {
        harness_fail(h, "report_write_json: %s", err);
        metrics_summary_free(&s);
        return;
    }
    char *text = textout_read_all(path, NULL);
    cJSON *got = text ? cJSON_Parse(text) : NULL;
    const cJSON *want = cJSON_GetObjectItem(fc->json, "report");
    int failed = h->failed;
    /* sklearn's keys in sklearn's order, then tlcl's two additions */
    const cJSON *g = got ? got->child : NULL;
    for (const cJSON *w = want->child; w; w = w->next, g = g ? g->next : NULL) {
        if (!g || strcmp(g->string, w->string) != 0) {
            harness_fail(h, "report key %s missing or out of order (got %s)", w->string, g ? g->string : "(none)");
            break;
        }
        check_report_entry(h, g, w);
    }
    const char *extra[2] = {"balanced_accuracy", "cohen_kappa"};
    double extra_want[2] = {item(cJSON_GetObjectItem(fc->json, "unweighted"), "balanced_accuracy"),
                            item(cJSON_GetObjectItem(cJSON_GetObjectItem(fc->json, "unweighted"), "kappa"), "none")};
    for (int i = 0; i < 2; i++, g = g ? g->next : NULL) {
        if (!g || strcmp(g->string, extra[i]) != 0 || !cJSON_IsNumber(g))
            harness_fail(h, "report: %s missing after weighted avg", extra[i]);
        else
            check_num(h, extra[i], g->valuedouble, extra_want[i]);
    }
    if (g)
        harness_fail(h, "report: unexpected key %s", g->string);
    if (!cJSON_IsNumber(cJSON_GetObjectItem(got, "accuracy")))
        harness_fail(h, "report: \"accuracy\" must be a bare number");
    if (h->failed == failed)
        printf("ok   %s: classification report JSON has sklearn's output_dict shape and values\n", path);
    cJSON_Delete(got);
    free(text);
    metrics_summary_free(&s);
}

static void check_confusion_csv_and_labels(harness *h)
{
    const char *names[3] = {"cat", "dog, big", "say \"hi\""};
    double cm[9] = {5, 1, 0, 2, 7, 1, 0, 0, 4.5};
    char path[1200], err[512];
    out_path(path, sizeof path, "confusion.csv");
    if (report_write_confusion_csv(path, cm, 3, names, err, sizeof err))
        harness_fail(h, "report_write_confusion_csv: %s", err);
    char *text = textout_read_all(path, NULL);
    check_text(h, "confusion matrix CSV (header row and column, quoting, integer counts)", text,
               ",cat,\"dog, big\",\"say \"\"hi\"\"\"\n"
               "cat,5,1,0\n"
               "\"dog, big\",2,7,1\n"
               "\"say \"\"hi\"\"\",0,0,4.5\n");
    free(text);
    out_path(path, sizeof path, "labels.json");
    if (report_write_labels_json(path, names, 3, err, sizeof err))
        harness_fail(h, "report_write_labels_json: %s", err);
    text = textout_read_all(path, NULL);
    check_text(h, "labels JSON", text, "[\"cat\", \"dog, big\", \"say \\\"hi\\\"\"]\n");
    free(text);
}

/* ---- history files -------------------------------------------------------- */

static void check_pyfloat(harness *h)
{
    struct {
        double v;
        const char *repr;
    } cases[] = {
        {0.1, "0.1"}, {1.0, "1.0"}, {100.0, "100.0"}, {1e16, "1e+16"}, {1e15, "1000000000000000.0"},
        {1e-5, "1e-05"}, {0.0001, "0.0001"}, {123456789.0, "123456789.0"}, {1.5e-7, "1.5e-07"},
        {-0.0, "-0.0"}, {1e22, "1e+22"}, {5e-324, "5e-324"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
        {2.0 / 3.0, "0.6666666666666666"}, {12345.678, "12345.678"}, {-2.5e-300, "-2.5e-300"},
        {NAN, "nan"}, {INFINITY, "inf"}, {-INFINITY, "-inf"}, {0.6000000238418579, "0.6000000238418579"},
    };
    int failed = h->failed;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char b[TEXTOUT_FLOAT_MAX];
        textout_pyfloat(cases[i].v, b);
        if (strcmp(b, cases[i].repr) != 0)
            harness_fail(h, "repr(%.17g): got %s, want %s", cases[i].v, b, cases[i].repr);
        else
            h->passed++;
    }
    if (h->failed == failed)
        printf("ok   floats formatted as Python's repr()\n");
}

static void history_from_fixture(history *hist, const cJSON *fx)
{
    const cJSON *d = cJSON_GetObjectItem(fx, "history"), *order = cJSON_GetObjectItem(fx, "keys_in_order");
    int keys = cJSON_GetArraySize(order), epochs = cJSON_GetArraySize(cJSON_GetObjectItem(d, "loss"));
    history_init(hist);
    for (int e = 0; e < epochs; e++) {
        const char *names[16];
        double values[16];
        for (int k = 0; k < keys; k++) {
            names[k] = cJSON_GetArrayItem(order, k)->valuestring;
            values[k] = cJSON_GetArrayItem(cJSON_GetObjectItem(d, names[k]), e)->valuedouble;
        }
        history_record(hist, e, names, values, keys);
    }
}

static void check_history_files(harness *h)
{
    cJSON *fx = load_fixture(h, "metrics_history.json");
    if (!fx)
        return;
    history hist;
    history_from_fixture(&hist, fx);
    char path[1200], err[512];
    const char *ext[2] = {"json", "csv"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/history.%s", out_dir, ext[i]);
        if (history_write(&hist, path, err, sizeof err))
            harness_fail(h, "history_write: %s", err);
        char *text = textout_read_all(path, NULL), what[64];
        snprintf(what, sizeof what, "history .%s equals Python's", ext[i]);
        check_text(h, what, text, cJSON_GetObjectItem(fx, ext[i])->valuestring);
        free(text);
    }
    out_path(path, sizeof path, "history.pkl");
    if (history_write(&hist, path, err, sizeof err))
        harness_fail(h, "history_write: %s", err);
    size_t n = 0;
    char *bytes = textout_read_all(path, &n);
    char *hex = malloc(2 * n + 1);
    for (size_t i = 0; bytes && i < n; i++)
        sprintf(hex + 2 * i, "%02x", (unsigned char)bytes[i]);
    hex[bytes ? 2 * n : 0] = 0;
    check_text(h, "history .pkl equals pickletools.optimize(pickle.dumps(d, protocol=2))", hex,
               cJSON_GetObjectItem(fx, "pickle_hex")->valuestring);
    free(hex), free(bytes);
    if (history_write(&hist, "x.txt", err, sizeof err) == 0)
        harness_fail(h, "history_write accepted an unknown extension");
    history_free(&hist);
    cJSON_Delete(fx);
}

/* A key that appears later: NA in the CSV, a shorter list elsewhere; a
 * one-element list is pickled with APPEND, as Python does. */
static void check_history_gaps(harness *h)
{
    history hist;
    history_init(&hist);
    const char *n0[1] = {"loss"}, *n1[2] = {"loss", "learning_rate"};
    double v0[1] = {2.0}, v1[2] = {1.0, 0.001};
    history_record(&hist, 0, n0, v0, 1);
    history_record(&hist, 1, n1, v1, 2);
    char path[1200], err[512];
    out_path(path, sizeof path, "gaps.csv");
    history_write(&hist, path, err, sizeof err);
    char *text = textout_read_all(path, NULL);
    check_text(h, "history CSV with a late key", text, "epoch,learning_rate,loss\r\n0,NA,2.0\r\n1,0.001,1.0\r\n");
    free(text);
    out_path(path, sizeof path, "gaps.json");
    history_write(&hist, path, err, sizeof err);
    text = textout_read_all(path, NULL);
    check_text(h, "history JSON with a late key", text, "{\"loss\": [2.0, 1.0], \"learning_rate\": [0.001]}");
    free(text);
    out_path(path, sizeof path, "gaps.pkl");
    history_write(&hist, path, err, sizeof err);
    size_t n;
    unsigned char *b = (unsigned char *)textout_read_all(path, &n);
    /* ... 'X' len "learning_rate" ']' 'G' <0.001> 'a' 'u' '.' */
    int ok = b && n > 14 && b[n - 1] == '.' && b[n - 2] == 'u' && b[n - 3] == 'a' && b[n - 12] == 'G';
    if (ok)
        h->passed++, printf("ok   pickle of a one-element list uses APPEND\n");
    else
        harness_fail(h, "pickle of a one-element list: unexpected bytes");
    free(b);
    history_free(&hist);
}

static void check_csv_logger(harness *h)
{
    char path[1200], err[512];
    out_path(path, sizeof path, "log.csv");
    remove(path);
    const char *names[2] = {"loss", "accuracy"};
    double v[2] = {0.5, 0.75};
    for (int run = 0; run < 2; run++) { /* a fresh file, then an append */
        csv_logger l;
        if (csv_logger_open(&l, path, ',', 1, err, sizeof err)) {
            harness_fail(h, "csv_logger_open: %s", err);
            return;
        }
        csv_logger_log(&l, 2 * run, names, v, 2, err, sizeof err);
        const char *late[3] = {"loss", "val_loss", "extra"};
        double lv[3] = {0.25, 1e-5, 9};
        csv_logger_log(&l, 2 * run + 1, late, lv, 3, err, sizeof err);
        csv_logger_close(&l);
    }
    char *text = textout_read_all(path, NULL);
    check_text(h, "CSVLogger: sorted keys + val_ columns, NA, header once in append mode", text,
               "epoch,accuracy,loss,val_accuracy,val_loss\r\n"
               "0,0.75,0.5,NA,NA\r\n"
               "1,NA,0.25,NA,1e-05\r\n"
               "2,0.75,0.5,NA,NA\r\n"
               "3,NA,0.25,NA,1e-05\r\n");
    free(text);
    csv_logger l;
    csv_logger_open(&l, path, ';', 0, err, sizeof err); /* write mode truncates */
    const char *vn[2] = {"val_loss", "loss"};
    csv_logger_log(&l, 0, vn, v, 2, err, sizeof err);
    csv_logger_close(&l);
    text = textout_read_all(path, NULL);
    check_text(h, "CSVLogger: write mode, separator, no extra val_ columns", text, "epoch;loss;val_loss\r\n0;0.75;0.5\r\n");
    free(text);
}

/* ---- pictures ------------------------------------------------------------- */

static void check_picture(harness *h, const char *path, int w, int hgt)
{
    tlcl_image img = {0, 0, NULL};
    char why[512] = "";
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size == 0 || tlcl_image_load(path, &img, why, sizeof why) != 0) {
        harness_fail(h, "%s: missing, empty or not decodable (%s)", path, why);
        return;
    }
    int x = img.w, y = img.h;
    const unsigned char *px = img.rgb;
    size_t inked = 0; /* something was drawn: pixels far from white */
    for (size_t i = 0; i < (size_t)x * y; i++)
        inked += px[3 * i] + px[3 * i + 1] + px[3 * i + 2] < 600;
    if ((w && x != w) || (hgt && y != hgt))
        harness_fail(h, "%s: %dx%d, want %dx%d", path, x, y, w, hgt);
    else if (inked < (size_t)x * y / 100)
        harness_fail(h, "%s: almost blank (%zu dark pixels)", path, inked);
    else
        h->passed++, printf("ok   %s: %dx%d, %ld bytes\n", path, x, y, (long)st.st_size);
    tlcl_image_free(&img);
}

static void training_history(history *hist, const char *const *classes, int c, int epochs)
{
    history_init(hist);
    for (int e = 0; e < epochs; e++) {
        char names[32][64];
        const char *pn[32];
        double v[32];
        int n = 0;
        double t = (double)e / (epochs - 1);
        const char *base[8] = {"accuracy", "auc", "loss", "precision", "val_accuracy", "val_auc", "val_loss",
                               "val_precision"};
        double bv[8] = {0.5 + 0.45 * t, 0.7 + 0.28 * t, 1.3 * exp(-2.5 * t) + 0.05, 0.55 + 0.4 * t,
                        0.45 + 0.4 * t - 0.05 * sin(9 * t), 0.68 + 0.25 * t, 1.4 * exp(-2 * t) + 0.2,
                        0.5 + 0.35 * t};
        for (int i = 0; i < 8; i++)
            snprintf(names[n], 64, "%s", base[i]), v[n++] = bv[i];
        for (int k = 0; k < c; k++) {
            const char *m[3] = {"precision", "recall", "f1"};
            for (int j = 0; j < 3; j++)
                snprintf(names[n], 64, "val_%s_%s", m[j], classes[k]),
                    v[n++] = 0.3 + 0.1 * k + (0.5 - 0.1 * j) * t + 0.03 * cos(7 * t + j);
        }
        for (int i = 0; i < n; i++)
            pn[i] = names[i];
        history_record(hist, e, pn, v, n);
    }
}

static void check_plots(harness *h, const fcase *fc)
{
    const char *classes[3] = {"bacteria", "normal", "virus"};
    history hist;
    training_history(&hist, classes, 3, 12);
    char path[1200], err[512];
    out_path(path, sizeof path, "fit_plots.jpg");
    if (plot_fit_curves(&hist, path, err, sizeof err))
        harness_fail(h, "plot_fit_curves: %s", err);
    check_picture(h, path, 1400, 620);
    out_path(path, sizeof path, "validation_plots.jpg");
    if (plot_validation_curves(&hist, classes, 3, path, err, sizeof err))
        harness_fail(h, "plot_validation_curves: %s", err);
    check_picture(h, path, 2 * 560, 2 * 440 + 70); /* 4 metrics: 2 columns, 2 rows */
    char dir[1000];
    out_path(dir, sizeof dir, "class_validation_plots");
    if (plot_class_curves(&hist, classes, 3, dir, err, sizeof err))
        harness_fail(h, "plot_class_curves: %s", err);
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s.jpg", dir, classes[k]);
        check_picture(h, path, 900, 600);
    }
    history_free(&hist);
    /* one epoch only: markers, no lines; still a picture */
    training_history(&hist, classes, 0, 2);
    hist.epochs = 1;
    out_path(path, sizeof path, "fit_one_epoch.png");
    if (plot_fit_curves(&hist, path, err, sizeof err))
        harness_fail(h, "plot_fit_curves (one epoch): %s", err);
    check_picture(h, path, 1400, 620);
    history_free(&hist);

    metrics_summary s;
    metrics_summary_compute(&s, fc->probs, fc->y, NULL, fc->n, fc->c);
    out_path(path, sizeof path, "confusion_matrix.png");
    if (plot_confusion_matrix(s.confusion, fc->c, fc->names, path, err, sizeof err))
        harness_fail(h, "plot_confusion_matrix: %s", err);
    /* 4 classes of 120 px, names of 8 characters: see plot_confusion_matrix */
    check_picture(h, path, 142 + 4 * 120 + 40, 70 + 4 * 120 + 100);
    metrics_summary_free(&s);
    if (plot_fit_curves(&hist, "nowhere/x.bmp", err, sizeof err) == 0)
        harness_fail(h, "plot_fit_curves accepted an unknown picture format");
}

/* The training side logs, from a confusion matrix alone, the values the
 * validation side computes from the scores that made it (the same code
 * path, checked against scikit-learn above), and no score-based metric. */
static void check_train_side(harness *h, const fcase *fc)
{
    metrics_groups g = {.count = 1, .name = {"first_two"}};
    g.member[0][0] = g.member[0][1] = 1;
    tlcl_eval_metrics want = {.want_precision = 1, .want_recall = 1, .want_f1 = 1, .want_balanced = 1,
                              .want_kappa = 1, .want_auc = 1, .top_k = 3, .groups = &g, .class_names = fc->names};
    tlcl_logs val = {0}, train = {0};
    tlcl_eval_metrics_fn(&want, fc->probs, fc->y, fc->n, fc->c, "", &val);
    metrics_summary s;
    if (metrics_summary_compute(&s, fc->probs, fc->y, NULL, fc->n, fc->c) != 0) {
        harness_fail(h, "metrics_summary_compute");
        return;
    }
    tlcl_eval_train_metrics_fn(&want, s.confusion, fc->c, &train);
    metrics_summary_free(&s);
    static const char *const keys[] = {"precision", "recall", "f1", "balanced_accuracy", "kappa",
                                       "group_first_two_precision", "group_first_two_recall", "group_first_two_f1"};
    int same = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        double a = NAN, b = NAN;
        same += tlcl_logs_get(&val, keys[i], &a) && tlcl_logs_get(&train, keys[i], &b) && a == b && isfinite(a);
    }
    double x;
    harness_expectf(h, same == 8 && train.n == 8, "%d classes: the 8 confusion metrics equal from counts alone (%d)",
                    fc->c, same);
    harness_expectf(h, !tlcl_logs_get(&train, "auc", &x) && !tlcl_logs_get(&train, "top_3_accuracy", &x) &&
                           tlcl_logs_get(&val, "auc", &x) && tlcl_logs_get(&val, "top_3_accuracy", &x),
                    "%d classes: AUC and top-k on the validation side only", fc->c);
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    const char *env = getenv("TLCL_TEST_OUT");
    if (env && *env) {
        snprintf(out_dir, sizeof out_dir, "%s", env);
        mkdir(out_dir, 0777);
    } else {
        snprintf(out_dir, sizeof out_dir, "/tmp/tlcl_metrics_XXXXXX");
        if (!mkdtemp(out_dir))
            return harness_fail(&h, "mkdtemp failed"), harness_finish(&h);
    }
    printf("files in %s\n", out_dir);
    cJSON *multi = load_fixture(&h, "metrics_multi.json"), *binary = load_fixture(&h, "metrics_binary.json");
    fcase fm = {0}, fb = {0};
    if (multi && binary) {
        case_load(&fm, multi);
        case_load(&fb, binary);
        for (int weighted = 0; weighted < 2; weighted++) {
            check_summary(&h, &fm, weighted);
            check_summary(&h, &fb, weighted);
        }
        check_stream(&h, &fm);
        check_stream(&h, &fb);
        check_report_json(&h, &fm);
        check_report_json(&h, &fb);
        check_plots(&h, &fm);
        check_train_side(&h, &fm);
    }
    check_kappa_absent_class(&h);
    check_groups(&h);
    check_confusion_csv_and_labels(&h);
    check_pyfloat(&h);
    check_history_files(&h);
    check_history_gaps(&h);
    check_csv_logger(&h);
    case_free(&fm), case_free(&fb);
    cJSON_Delete(multi), cJSON_Delete(binary);
    return harness_finish(&h);
}
