/* keras_export.c — writes a model's weights as a Keras 3 weights file
 * (`model.save_weights` layout, HDF5), for `model.load_weights()` in Keras.
 *
 * Keras 3 finds a layer's variables by its place in the model, not by its
 * name: layer k of class C in a container is the group "layers/c", then
 * "layers/c_1", ... ("c" the class name in snake case, counted per class in
 * model.layers order), its variables the datasets "vars/0", "vars/1", ... in
 * the layer's own order. tlcl_model_layers gives the layers in that order,
 * so the export counts classes as Keras does. Each vars group also carries
 * the layer's name as attribute "name", as Keras >= 3.6 writes it (and as
 * tlcl's import reads it).
 *
 * The Keras model the file loads into (tools/keras_export_check.py builds
 * it from the checkpoint's metadata):
 *  - no hidden head layers: keras.applications.EfficientNet<X>(weights=None,
 *    include_top=<include_top>, classes=N, input_shape=(S, S, 3)), its
 *    top_dropout at tlcl's head dropout; every layer at the top level;
 *  - hidden head layers (seed 001): keras.Sequential([Input, the same base
 *    with include_top=False, GlobalAveragePooling2D, then Dropout + Dense per
 *    head layer]); the base's layers under "layers/functional/".
 * The V1 Normalization layer gets the mean and variance of tlcl's input
 * scaling (the base is built with weights=None, without the extra ImageNet
 * Rescaling). EfficientNet-Lite has no Keras builder and is refused. */
#include "keras_internal.h"
#include "model.h"

#include <ctype.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT_CLASSES_MAX 16

typedef struct class_count {
    char snake[40];
    int seen;
} class_count;

typedef struct exporter {
    const tlcl_model *m;
    const float *host;
    hid_t file;
    int sequential; /* base under layers/functional, head at the top level */
    class_count base[EXPORT_CLASSES_MAX], top[EXPORT_CLASSES_MAX];
    int failed;
    char *err;
    size_t err_len;
    const char *path;
} exporter;

/* "DepthwiseConv2D" -> "depthwise_conv2d", "Conv2D" -> "conv2d": Keras's
 * naming.to_snake_case, an underscore before a capital that starts a
 * lower-case run, then between a lower-case letter and a capital. */
static void snake_case(const char *cls, char *dst, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; cls[i] && o + 3 < len; i++) {
        unsigned char c = (unsigned char)cls[i], next = (unsigned char)cls[i + 1];
        unsigned char prev = i ? (unsigned char)cls[i - 1] : 0;
        if (i > 0 && isupper(c) && (islower(next) || islower(prev)))
            dst[o++] = '_';
        dst[o++] = (char)tolower(c);
    }
    dst[o] = '\0';
}

/* The group name of the next layer of class cls in a container: "c", "c_1", ... */
static int next_name(class_count *counts, const char *cls, char *dst, size_t len)
{
    char snake[40];
    snake_case(cls, snake, sizeof snake);
    int i = 0;
    while (i < EXPORT_CLASSES_MAX && counts[i].snake[0] && strcmp(counts[i].snake, snake) != 0)
        i++;
    if (i == EXPORT_CLASSES_MAX)
        return -1;
    if (!counts[i].snake[0])
        snprintf(counts[i].snake, sizeof counts[i].snake, "%s", snake);
    int k = counts[i].seen++;
    if (k == 0)
        snprintf(dst, len, "%s", snake);
    else
        snprintf(dst, len, "%s_%d", snake, k);
    return 0;
}

static int write_name_attr(hid_t g, const char *name)
{
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t a = H5Acreate2(g, "name", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, t, &name) >= 0 ? 0 : -1;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

/* A group at path (its parents made as needed), or < 0. */
static hid_t make_group(hid_t file, const char *path)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(file, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    return g;
}

static int write_floats(hid_t g, const char *name, const tlcl_param_entry *e, const float *data)
{
    hsize_t dims[4];
    for (int d = 0; d < e->ndims; d++)
        dims[d] = (hsize_t)e->shape[4 - e->ndims + d];
    hid_t sp = e->ndims ? H5Screate_simple(e->ndims, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(g, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = ds >= 0 && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0 ? 0 : -1;
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(sp);
    return rc;
}

static int write_int64_scalar(hid_t g, const char *name, int64_t v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(g, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = ds >= 0 && H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0 ? 0 : -1;
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(sp);
    return rc;
}

/* Keras's Normalization computes (x/255 - mean) / sqrt(variance); tlcl's
 * input scaling raw * scale + shift is the same map with these values. */
static int write_normalization(exporter *x, hid_t vars, const tlcl_layer_info *l)
{
    float mean[3], var[3];
    for (int c = 0; c < 3; c++) {
        double sd = 1.0 / (255.0 * (double)x->m->pre_scale[c]);
        mean[c] = (float)(-(double)x->m->pre_shift[c] * sd);
        var[c] = (float)(sd * sd);
    }
    const tlcl_param_entry *e = x->m->params.entries;
    return write_floats(vars, "0", &e[l->param_ids[0]], mean) || write_floats(vars, "1", &e[l->param_ids[1]], var) ||
           write_int64_scalar(vars, "2", (int64_t)x->host[e[l->param_ids[2]].offset]);
}

static void export_layer(const tlcl_layer_info *l, void *ctx)
{
    exporter *x = ctx;
    if (x->failed || l->nparams == 0)
        return; /* Keras loads a layer without variables from no group at all */
    int in_head = strcmp(l->type, "Dense") == 0;
    char group[64], path[160];
    if (next_name(x->sequential && in_head ? x->top : x->base, l->type, group, sizeof group) != 0) {
        snprintf(x->err, x->err_len, "exporting %s: too many layer classes", x->path);
        x->failed = 1;
        return;
    }
    snprintf(path, sizeof path, "%s%s/vars", x->sequential && !in_head ? "layers/functional/layers/" : "layers/",
             group);
    hid_t vars = make_group(x->file, path);
    int rc = vars < 0 || write_name_attr(vars, l->name);
    if (!rc && strcmp(l->type, "Normalization") == 0)
        rc = write_normalization(x, vars, l);
    for (int i = 0; !rc && strcmp(l->type, "Normalization") != 0 && i < l->nparams; i++) {
        const tlcl_param_entry *e = &x->m->params.entries[l->param_ids[i]];
        char name[16];
        snprintf(name, sizeof name, "%d", i);
        rc = write_floats(vars, name, e, x->host + e->offset);
    }
    if (vars >= 0)
        H5Gclose(vars);
    if (rc) {
        snprintf(x->err, x->err_len, "exporting %s: the HDF5 library failed writing layer '%s' (%s)", x->path,
                 l->name, path);
        x->failed = 1;
    }
}

/* The groups Keras expects around the layers: the model's own (empty) vars,
 * named as Keras names them, and in the Sequential layout the base model's. */
static int write_containers(exporter *x)
{
    hid_t g = make_group(x->file, "vars");
    int rc = g < 0 || write_name_attr(g, x->sequential ? "sequential" : x->m->arch.name);
    if (g >= 0)
        H5Gclose(g);
    if (!rc && x->sequential) {
        g = make_group(x->file, "layers/functional/vars");
        rc = g < 0 || write_name_attr(g, x->m->arch.name);
        if (g >= 0)
            H5Gclose(g);
    }
    return rc;
}

/* The file is built in memory (HDF5's core driver, no backing store) and
 * published whole as any other file tlcl writes (tlcl_publish_bytes). */
static hid_t memory_file(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 20, 0);
    hid_t f = H5Fcreate("tlcl-keras-export", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

/* The bytes of the in-memory file (malloc'd), or NULL. */
static void *file_image(hid_t f, size_t *size)
{
    H5Fflush(f, H5F_SCOPE_GLOBAL);
    ssize_t n = H5Fget_file_image(f, NULL, 0);
    void *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf && H5Fget_file_image(f, buf, (size_t)n) != n) {
        free(buf);
        buf = NULL;
    }
    *size = buf ? (size_t)n : 0;
    return buf;
}

tlcl_status tlcl_model_export_keras(const tlcl_model *m, const float *host, const char *path, char *err,
                                    size_t err_len)
{
    if (strstr(m->arch.name, "lite")) {
        snprintf(err, err_len, "exporting %s: Keras has no EfficientNet-Lite builder to load %s weights into", path,
                 m->arch.name);
        return TLCL_ERR_ARG;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    exporter x = {.m = m, .host = host, .sequential = m->include_top && m->nhead > 1, .err = err,
                  .err_len = err_len, .path = path};
    x.file = memory_file();
    if (x.file < 0) {
        snprintf(err, err_len, "exporting %s: the HDF5 library cannot create a file in memory", path);
        return TLCL_ERR_OOM;
    }
    if (write_containers(&x) != 0) {
        snprintf(err, err_len, "exporting %s: the HDF5 library failed writing the model's groups", path);
        x.failed = 1;
    }
    if (!x.failed)
        tlcl_model_layers(m, export_layer, &x);
    size_t size = 0;
    void *bytes = x.failed ? NULL : file_image(x.file, &size);
    H5Fclose(x.file);
    if (x.failed)
        return TLCL_ERR_IO;
    if (!bytes) {
        snprintf(err, err_len, "exporting %s: the HDF5 library gave no file image (out of memory?)", path);
        return TLCL_ERR_OOM;
    }
    size_t n = strlen(path);
    if (n > 6 && strcmp(path + n - 6, ".keras") == 0) { /* the zip model.load_weights("x.keras") opens */
        size_t zsize = 0;
        unsigned char *zip = kw_keras_archive(bytes, size,
                                              "{\"producer\": \"tlcl\", \"content\": "
                                              "\"weights only: model.load_weights(), no config.json\"}",
                                              &zsize);
        free(bytes);
        if (!zip) {
            snprintf(err, err_len, "exporting %s: out of memory for the archive", path);
            return TLCL_ERR_OOM;
        }
        bytes = zip, size = zsize;
    }
    tlcl_status s = tlcl_publish_bytes(path, bytes, size, err, err_len);
    free(bytes);
    return s;
}

tlcl_status tlcl_model_save_keras(const tlcl_model *m, const char *path, char *err, size_t err_len)
{
    float *host = malloc((m->params.total ? m->params.total : 1) * sizeof *host);
    tlcl_status s = host ? TLCL_OK : TLCL_ERR_OOM;
    if (s == TLCL_OK && m->eng)
        s = tlcl_cl_read(tlcl_engine_cl(m->eng), m->params.values, 0, m->params.total * sizeof(float), host,
                         "parameters");
    if (s != TLCL_OK)
        snprintf(err, err_len, "exporting %s: %s", path, m->eng && host ? tlcl_engine_error(m->eng) : "out of memory");
    else
        s = tlcl_model_export_keras(m, host, path, err, err_len);
    free(host);
    return s;
}
