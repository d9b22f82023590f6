/* class_weight.c — see class_weight.h. */
#include "class_weight.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fill_ones(double *w, int num_classes)
{
    for (int c = 0; c < num_classes; c++)
        w[c] = 1.0;
}

tlcl_status tlcl_class_weight_balanced(const int *labels, size_t n, int num_classes, double *w, char *err,
                                       size_t len)
{
    size_t *count = calloc((size_t)(num_classes > 0 ? num_classes : 1), sizeof *count);
    if (!count) {
        snprintf(err, len, "out of host memory");
        return TLCL_ERR_OOM;
    }
    for (size_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= num_classes) {
            snprintf(err, len, "label %d of sample %zu is not a class (0..%d)", labels[i], i, num_classes - 1);
            free(count);
            return TLCL_ERR_ARG;
        }
        count[labels[i]]++;
    }
    int present = 0;
    for (int c = 0; c < num_classes; c++)
        present += count[c] > 0;
    fill_ones(w, num_classes);
    for (int c = 0; c < num_classes; c++)
        if (count[c]) /* same operation order as sklearn: n / (n_classes * bincount) */
            w[c] = (double)n / ((double)present * (double)count[c]);
    free(count);
    return TLCL_OK;
}

/* Appends "'a', 'b'" (the class names) to err. */
static void list_classes(char *err, size_t len, const char *const *class_names, int num_classes)
{
    for (int c = 0; c < num_classes; c++) {
        size_t off = strlen(err);
        if (off + 1 >= len)
            return;
        snprintf(err + off, len - off, "%s'%s'", c ? ", " : "", class_names[c]);
    }
}

static int class_index(const char *name, const char *const *class_names, int num_classes)
{
    for (int c = 0; c < num_classes; c++)
        if (strcmp(class_names[c], name) == 0)
            return c;
    return -1;
}

/* A key written as a class index, Keras's {0: w0, 1: w1} (seed 001): its
 * value, or -1 when it is not a plain decimal integer. */
static int index_key(const char *key)
{
    if (!*key || strspn(key, "0123456789") != strlen(key) || strlen(key) > 6)
        return -1;
    return atoi(key);
}

/* The class a class_weight key names: a class name, else a class index.
 * A key that is both, for two different classes (folders 0..10 sort "10"
 * before "2"), is refused: -2. */
static int key_class(const char *key, const char *const *class_names, int num_classes)
{
    int by_name = class_index(key, class_names, num_classes), by_index = index_key(key);
    if (by_index >= num_classes)
        by_index = -1;
    if (by_name >= 0 && by_index >= 0 && by_name != by_index)
        return -2;
    return by_name >= 0 ? by_name : by_index;
}

tlcl_status tlcl_class_weight_manual(const char *const *names, const double *weights, int count,
                                     const char *const *class_names, int num_classes, double *w, char *err,
                                     size_t len)
{
    fill_ones(w, num_classes);
    for (int i = 0; i < count; i++) {
        int c = key_class(names[i], class_names, num_classes);
        if (c == -2) {
            snprintf(err, len,
                     "class_weight: '%s' is both the class folder '%s' (index %d) and class index %s; name the "
                     "classes by their folders, or rename the folders so that they sort as numbers (00, 01, ...)",
                     names[i], names[i], class_index(names[i], class_names, num_classes), names[i]);
            return TLCL_ERR_ARG;
        }
        int dup = 0;
        for (int j = 0; c >= 0 && j < i; j++)
            dup |= key_class(names[j], class_names, num_classes) == c;
        if (c < 0 || dup) {
            snprintf(err, len, "class_weight: '%s' %s; the classes are ", names[i],
                     dup ? "names a class given before" : "is neither a class nor a class index");
            list_classes(err, len, class_names, num_classes);
            return TLCL_ERR_ARG;
        }
        if (!isfinite(weights[i]) || weights[i] < 0.0) {
            snprintf(err, len, "class_weight: the weight of '%s' must be finite and >= 0, got %g", names[i],
                     weights[i]);
            return TLCL_ERR_ARG;
        }
        w[c] = weights[i];
    }
    return TLCL_OK;
}

tlcl_status tlcl_class_weight_resolve(const tlcl_class_weight_spec *spec, const char *const *class_names,
                                      int num_classes, const int *labels, size_t n, double *w, char *err,
                                      size_t len)
{
    switch (spec->mode) {
    case TLCL_CLASS_WEIGHT_NONE:
        fill_ones(w, num_classes);
        return TLCL_OK;
    case TLCL_CLASS_WEIGHT_BALANCED: {
        tlcl_status s = tlcl_class_weight_balanced(labels, n, num_classes, w, err, len);
        if (s == TLCL_OK)
            tlcl_class_weight_power(w, num_classes, spec->power);
        return s;
    }
    case TLCL_CLASS_WEIGHT_MANUAL:
        return tlcl_class_weight_manual(spec->names, spec->weights, spec->count, class_names, num_classes, w, err,
                                        len);
    }
    snprintf(err, len, "unknown class_weight mode %d", (int)spec->mode);
    return TLCL_ERR_ARG;
}

void tlcl_class_weight_power(double *w, int num_classes, double power)
{
    if (power == 1.0)
        return; /* scikit-learn's weights, untouched */
    for (int c = 0; c < num_classes; c++)
        w[c] = power == 0.0 ? 1.0 : pow(w[c], power);
}

const char *tlcl_class_weight_mode_name(tlcl_class_weight_mode m)
{
    switch (m) {
    case TLCL_CLASS_WEIGHT_NONE:
        return "none";
    case TLCL_CLASS_WEIGHT_BALANCED:
        return "balanced";
    case TLCL_CLASS_WEIGHT_MANUAL:
        return "manual";
    }
    return "?";
}

void tlcl_class_weight_describe(const tlcl_class_weight_spec *spec, const char *const *class_names,
                                int num_classes, const double *w, char *dst, size_t len)
{
    int off = snprintf(dst, len, "class weights (%s", tlcl_class_weight_mode_name(spec->mode));
    if (spec->mode == TLCL_CLASS_WEIGHT_BALANCED && off >= 0 && (size_t)off < len)
        off += snprintf(dst + off, len - (size_t)off, ", power %g", spec->power);
    if (off >= 0 && (size_t)off < len)
        off += snprintf(dst + off, len - (size_t)off, "):");
    for (int c = 0; c < num_classes && off >= 0 && (size_t)off < len; c++)
        off += snprintf(dst + off, len - (size_t)off, "%s %s %.4f", c ? "," : "", class_names[c], w[c]);
}

tlcl_status tlcl_class_weight_write_json(const char *path, const tlcl_class_weight_spec *spec,
                                         const char *const *class_names, int num_classes, const double *w,
                                         const int *labels, size_t n, char *err, size_t len)
{
    cJSON *j = cJSON_CreateObject(), *a = cJSON_CreateArray();
    cJSON_AddStringToObject(j, "mode", tlcl_class_weight_mode_name(spec->mode));
    if (spec->mode == TLCL_CLASS_WEIGHT_BALANCED)
        cJSON_AddNumberToObject(j, "power", spec->power);
    else
        cJSON_AddNullToObject(j, "power");
    cJSON_AddItemToObject(j, "classes", a);
    for (int c = 0; c < num_classes; c++) {
        cJSON *e = cJSON_CreateObject();
        size_t count = 0;
        for (size_t i = 0; labels && i < n; i++)
            count += labels[i] == c;
        cJSON_AddStringToObject(e, "name", class_names[c]);
        cJSON_AddNumberToObject(e, "count", (double)count);
        cJSON_AddNumberToObject(e, "weight", w[c]);
        cJSON_AddItemToArray(a, e);
    }
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) {
        snprintf(err, len, "out of host memory writing '%s'", path);
        return TLCL_ERR_OOM;
    }
    tlcl_publish f;
    tlcl_status s = tlcl_publish_open(&f, path, err, len);
    if (s == TLCL_OK)
        s = tlcl_publish_commit(&f, fputs(text, f.f) >= 0 && fputc('\n', f.f) != EOF, err, len);
    cJSON_free(text);
    return s;
}

void tlcl_class_weight_per_sample(const double *w, int num_classes, const int *labels, size_t n, float *sample_w)
{
    for (size_t i = 0; i < n; i++)
        sample_w[i] = (labels[i] >= 0 && labels[i] < num_classes) ? (float)w[labels[i]] : 1.0f;
}
