/* import_keras.c — maps the weights of a Keras file onto a tlcl model.
 *
 * tlcl parameters are named "<Keras layer>/<variable>" and declared per
 * layer in Keras's save order (trainable variables first, then the
 * non-trainable ones), so the i-th tensor a file stores for layer L is the
 * i-th tlcl parameter of L. Legacy files also name each variable; that name
 * must agree ("depthwise_kernel" is TF-Keras 2's name for tlcl's kernel).
 *
 * Rules (documented in the README):
 *  - a model layer the file lacks, a different number of variables or a
 *    different shape is an error naming the file, the tensor and both shapes;
 *  - a file layer the model does not use (the classifier with --no-top, a
 *    user head) is not an error: tlcl_keras_unused() lists it;
 *  - V1's Normalization layer (auto-named "normalization", "normalization_1",
 *    ...) also sets the input preprocessing (see set_normalization). */
#include "keras_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tlcl_status tlcl_keras_open(tlcl_keras_weights **out, const char *path, char *err, size_t err_len)
{
    *out = NULL;
    tlcl_keras_weights *w = calloc(1, sizeof *w);
    if (!w)
        return TLCL_ERR_OOM;
    snprintf(w->path, sizeof w->path, "%s", path);
    FILE *f = tlcl_fopen_input(path, "Keras weights file", err, err_len);
    unsigned char magic[4] = {0};
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f)
        fclose(f);
    tlcl_status s;
    if (!f)
        s = TLCL_ERR_IO;
    else if (got == 4 && memcmp(magic, "PK\3\4", 4) == 0)
        s = kw_read_zip(w, path, err, err_len);
    else
        s = kw_open_h5_path(w, path, err, err_len);
    if (s == TLCL_OK && w->n == 0) {
        snprintf(err, err_len, "%s holds no layer weights", path);
        s = TLCL_ERR_FORMAT;
    }
    if (s != TLCL_OK) {
        tlcl_keras_close(w);
        return s;
    }
    *out = w;
    return TLCL_OK;
}

void tlcl_keras_close(tlcl_keras_weights *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        free(w->t[i].data);
    free(w->t);
    free(w);
}

const char *tlcl_keras_format(const tlcl_keras_weights *w) { return w->format; }

int tlcl_keras_classes(const tlcl_keras_weights *w)
{
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].layer, "predictions") == 0 && w->t[i].index == 0 && w->t[i].ndims == 2)
            return w->t[i].shape[1];
    return 0;
}

int tlcl_keras_unused(const tlcl_keras_weights *w, char *dst, size_t len)
{
    int n = 0;
    size_t off = 0;
    dst[0] = '\0';
    for (int i = 0; i < w->n; i++) {
        if (w->t[i].used || (i > 0 && strcmp(w->t[i].layer, w->t[i - 1].layer) == 0 && !w->t[i - 1].used))
            continue; /* one mention per layer */
        n++;
        if (off < len)
            off += (size_t)snprintf(dst + off, len - off, "%s%s", n > 1 ? ", " : "", w->t[i].layer);
    }
    return n;
}

/* ---- mapping ---------------------------------------------------------------- */

/* "normalization_3" is an auto-name of "normalization" (Keras uniquifies
 * unnamed layers per session); every other layer is matched exactly. */
static int layer_matches(const char *file_layer, const char *model_layer)
{
    if (strcmp(file_layer, model_layer) == 0)
        return 1;
    size_t k = strlen(model_layer);
    if (strcmp(model_layer, "normalization") != 0 || strncmp(file_layer, model_layer, k) != 0 ||
        file_layer[k] != '_' || !file_layer[k + 1])
        return 0;
    return strspn(file_layer + k + 1, "0123456789") == strlen(file_layer + k + 1);
}

/* The file's tensors of one layer: first index and count (0 when absent). */
static int file_layer(const tlcl_keras_weights *w, const char *layer, int *first)
{
    for (int i = 0; i < w->n; i++) {
        if (w->t[i].used || w->t[i].index != 0 || !layer_matches(w->t[i].layer, layer))
            continue;
        int n = 1;
        while (i + n < w->n && w->t[i + n].index == n && strcmp(w->t[i + n].layer, w->t[i].layer) == 0)
            n++;
        *first = i;
        return n;
    }
    return 0;
}

static void shape_text(char *dst, size_t len, int ndims, const int *shape)
{
    size_t off = (size_t)snprintf(dst, len, "[");
    for (int d = 0; d < ndims && off < len; d++)
        off += (size_t)snprintf(dst + off, len - off, "%s%d", d ? "," : "", shape[d]);
    if (off < len)
        snprintf(dst + off, len - off, "]");
}

/* Copies file tensor t into model parameter e after checking name and shape. */
static tlcl_status map_tensor(const tlcl_keras_weights *w, kw_tensor *t, const tlcl_param_entry *e, float *host,
                              char *err, size_t len)
{
    const char *var = strrchr(e->name, '/') + 1;
    if (t->var[0] && strcmp(t->var, var) != 0) {
        snprintf(err, len, "%s: weight %d of layer '%s' is '%s', the model expects '%s' there", w->path, t->index,
                 t->layer, t->var, e->name);
        return TLCL_ERR_FORMAT;
    }
    const int *want = e->shape + 4 - e->ndims;
    int ok = t->ndims == e->ndims && t->count == e->count;
    for (int d = 0; ok && d < e->ndims; d++)
        ok = t->shape[d] == want[d];
    if (!ok) {
        char have[64], need[64];
        shape_text(have, sizeof have, t->ndims, t->shape);
        shape_text(need, sizeof need, e->ndims, want);
        snprintf(err, len, "%s: '%s' has shape %s, the model needs %s%s", w->path, e->name, have, need,
                 strncmp(e->name, "predictions/", 12) == 0 ? " (check --classes)" : " (check --arch and --size)");
        return TLCL_ERR_FORMAT;
    }
    memcpy(host + e->offset, t->data, e->count * sizeof *host);
    t->used = 1;
    return TLCL_OK;
}

/* Model parameters [first, first + *n) belong to one layer. */
static void model_layer(const tlcl_params *p, int first, char *layer, size_t len, int *n)
{
    const char *slash = strrchr(p->entries[first].name, '/');
    size_t k = (size_t)(slash - p->entries[first].name);
    snprintf(layer, len, "%.*s", (int)k, p->entries[first].name);
    *n = 1;
    while (first + *n < p->count && strncmp(p->entries[first + *n].name, layer, k) == 0 &&
           p->entries[first + *n].name[k] == '/')
        (*n)++;
}

static tlcl_status map_layer(tlcl_keras_weights *w, const tlcl_params *p, int first, int n, const char *layer,
                             float *host, char *err, size_t len)
{
    int at = 0, have = file_layer(w, layer, &at);
    if (have == 0) {
        snprintf(err, len, "%s has no weights for layer '%s' (the model needs %s%s)", w->path, layer,
                 p->entries[first].name, n > 1 ? ", ..." : "");
        return TLCL_ERR_FORMAT;
    }
    if (have != n) {
        snprintf(err, len, "%s: layer '%s' has %d weights, the model expects %d (%s ...)", w->path,
                 w->t[at].layer, have, n, p->entries[first].name);
        return TLCL_ERR_FORMAT;
    }
    for (int i = 0; i < n; i++) {
        tlcl_status s = map_tensor(w, &w->t[at + i], &p->entries[first + i], host, err, len);
        if (s != TLCL_OK)
            return s;
    }
    return TLCL_OK;
}

/* Keras V1: x/255, then Normalization (x - mean) / max(sqrt(var), 1e-7).
 * The ImageNet files store the standard deviations as the variance
 * (TF issue 49930) and Keras then adds Rescaling(1/sqrt(std)); tlcl
 * recognises that variance and applies the same extra factor, so the net
 * effect is (x/255 - mean) / std, exactly what Keras computes. */
static void set_normalization(tlcl_model *m, const float *host)
{
    static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};
    const float *mean = host + m->params.entries[m->norm_mean_id].offset;
    const float *var = host + m->params.entries[m->norm_var_id].offset;
    int is_std = 1;
    for (int c = 0; c < 3; c++)
        is_std &= fabsf(var[c] - imagenet_std[c]) <= 1e-6f;
    for (int c = 0; c < 3; c++) {
        double d = fmax(sqrt((double)var[c]), 1e-7);
        if (is_std)
            d *= sqrt((double)var[c]);
        m->pre_scale[c] = (float)(1.0 / (255.0 * d));
        m->pre_shift[c] = (float)(-mean[c] / d);
    }
}

tlcl_status tlcl_model_import_keras_host(tlcl_model *m, tlcl_keras_weights *w, float *host, char *err,
                                         size_t err_len)
{
    for (int i = 0; i < w->n; i++)
        w->t[i].used = 0;
    const tlcl_params *p = &m->params;
    for (int i = 0; i < p->count;) {
        char layer[128];
        int n;
        model_layer(p, i, layer, sizeof layer, &n);
        tlcl_status s = map_layer(w, p, i, n, layer, host, err, err_len);
        if (s != TLCL_OK)
            return s;
        i += n;
    }
    if (m->norm_mean_id >= 0)
        set_normalization(m, host);
    return TLCL_OK;
}

tlcl_status tlcl_model_import_keras(tlcl_model *m, tlcl_keras_weights *w, char *err, size_t err_len)
{
    float *host = calloc(m->params.total ? m->params.total : 1, sizeof *host);
    if (!host)
        return TLCL_ERR_OOM;
    tlcl_status s = tlcl_model_import_keras_host(m, w, host, err, err_len);
    if (s == TLCL_OK && m->eng &&
        tlcl_cl_write(tlcl_engine_cl(m->eng), m->params.values, 0, m->params.total * sizeof *host, host,
                      "parameters") != TLCL_OK) {
        snprintf(err, err_len, "importing %s: %s", w->path, tlcl_engine_error(m->eng));
        s = TLCL_ERR_CL;
    }
    free(host);
    return s;
}
