/* report.c — classification report JSON, confusion matrix CSV and labels
 * JSON (see report.h for the exact shapes). */
#include "report.h"
#include "textout.h"

#include <math.h>
#include <stdio.h>

static void json_number(FILE *f, double v)
{
    char b[TEXTOUT_FLOAT_MAX];
    fputs(textout_jsonfloat(v, b), f);
}

static void json_key(FILE *f, const char *key, int indent)
{
    fprintf(f, "%*s", indent, "");
    textout_json_string(f, key);
    fputs(": ", f);
}

static void json_class_block(FILE *f, const char *name, const metrics_class *m)
{
    json_key(f, name, 4);
    fputs("{\n", f);
    const char *keys[4] = {"precision", "recall", "f1-score", "support"};
    double vals[4] = {m->precision, m->recall, m->f1, m->support};
    for (int i = 0; i < 4; i++) {
        json_key(f, keys[i], 8);
        json_number(f, vals[i]);
        fputs(i < 3 ? ",\n" : "\n", f);
    }
    fputs("    },\n", f);
}

static void json_scalar(FILE *f, const char *name, double v, int last)
{
    json_key(f, name, 4);
    json_number(f, v);
    fputs(last ? "\n" : ",\n", f);
}

int report_write_json(const char *path, const metrics_summary *s, const char *const *class_names,
                      const metrics_groups *groups, char *err, size_t err_len)
{
    textout_file t;
    if (textout_open(&t, path, err, err_len))
        return -1;
    fputs("{\n", t.f);
    for (int k = 0; k < s->classes; k++)
        json_class_block(t.f, class_names[k], &s->per_class[k]);
    json_scalar(t.f, "accuracy", s->accuracy, 0);
    json_class_block(t.f, "macro avg", &s->macro);
    json_class_block(t.f, "weighted avg", &s->weighted);
    for (int g = 0; groups && g < groups->count; g++) {
        char name[40];
        metrics_class m = metrics_group(s->confusion, s->classes, groups->member[g]);
        snprintf(name, sizeof name, "group %s", groups->name[g]);
        json_class_block(t.f, name, &m);
    }
    json_scalar(t.f, "balanced_accuracy", s->balanced_accuracy, 0);
    json_scalar(t.f, "cohen_kappa", s->kappa, 1);
    fputs("}\n", t.f);
    return textout_commit(&t, 1, err, err_len);
}

static void csv_count(FILE *f, double v)
{
    char b[TEXTOUT_FLOAT_MAX];
    if (v == floor(v) && fabs(v) < 1e15)
        fprintf(f, "%.0f", v);
    else
        fputs(textout_pyfloat(v, b), f);
}

int report_write_confusion_csv(const char *path, const double *cm, int c, const char *const *class_names,
                               char *err, size_t err_len)
{
    textout_file t;
    if (textout_open(&t, path, err, err_len))
        return -1;
    for (int j = 0; j < c; j++) {
        fputc(',', t.f);
        textout_csv_field(t.f, class_names[j], ',');
    }
    fputc('\n', t.f);
    for (int i = 0; i < c; i++) {
        textout_csv_field(t.f, class_names[i], ',');
        for (int j = 0; j < c; j++) {
            fputc(',', t.f);
            csv_count(t.f, cm[(size_t)i * c + j]);
        }
        fputc('\n', t.f);
    }
    return textout_commit(&t, 1, err, err_len);
}

int report_write_labels_json(const char *path, const char *const *class_names, int c, char *err, size_t err_len)
{
    textout_file t;
    if (textout_open(&t, path, err, err_len))
        return -1;
    fputc('[', t.f);
    for (int k = 0; k < c; k++) {
        if (k)
            fputs(", ", t.f);
        textout_json_string(t.f, class_names[k]);
    }
    fputs("]\n", t.f);
    return textout_commit(&t, 1, err, err_len);
}
