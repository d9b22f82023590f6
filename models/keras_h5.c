/* keras_h5.c — reads the weights of Keras files into a flat tensor list:
 *  - Keras 3 `.weights.h5` / `model.weights.h5`: every `vars` group under
 *    /layers carries the layer's name in its attribute `name` (Keras >= 3.6)
 *    and the variables as datasets "0", "1", ... in save order;
 *  - legacy TF-Keras `.h5` (root or /model_weights): attribute layer_names
 *    (possibly split into layer_names0, layer_names1, ...), per-layer
 *    attribute weight_names, datasets at <layer>/<weight name>;
 *  - `.keras` zips: the `model.weights.h5` member, stored or deflated,
 *    opened from memory with the HDF5 high-level file-image call.
 * Only the HDF5 calls that are stable from 1.10 to 1.14 are used (no
 * H5Literate/H5Oget_info, whose signatures changed). */
#include "keras_internal.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tlcl_cl.h" /* tlcl_read_input */

int kw_add(tlcl_keras_weights *w, const char *layer, const char *var, int index, int ndims, const int *shape,
           float *data, size_t count)
{
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 256;
        kw_tensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t)
            return -1;
        w->t = t, w->cap = cap;
    }
    kw_tensor *t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->layer, sizeof t->layer, "%s", layer);
    snprintf(t->var, sizeof t->var, "%s", var);
    t->index = index, t->ndims = ndims, t->count = count, t->data = data;
    for (int d = 0; d < ndims; d++)
        t->shape[d] = shape[d];
    return 0;
}

/* ---- strings in attributes ---------------------------------------------------- */

typedef int (*str_fn)(const char *s, void *ctx);

/* Calls fn for each string of attribute `name` (fixed or variable length,
 * scalar or array). Returns the count, or -1 when the attribute is not strings. */
static int attr_strings(hid_t obj, const char *name, str_fn fn, void *ctx)
{
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a), mt = H5Tcopy(H5T_C_S1);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    int rc = n < 0 ? -1 : (int)n;
    if (n > 0 && H5Tget_class(ft) != H5T_STRING)
        rc = -1;
    else if (n > 0 && H5Tis_variable_str(ft) > 0) {
        char **v = calloc((size_t)n, sizeof *v);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(ft));
        if (!v || H5Aread(a, mt, v) < 0)
            rc = -1;
        for (hssize_t i = 0; v && i < n; i++) {
            if (rc >= 0 && fn(v[i] ? v[i] : "", ctx))
                rc = -1;
            H5free_memory(v[i]);
        }
        free(v);
    } else if (n > 0) {
        /* one more byte than the file's width: a null-terminated memory type
         * of the same width would drop the last character of a full string */
        size_t size = H5Tget_size(ft) + 1;
        char *buf = calloc((size_t)n, size), s[1024];
        H5Tset_size(mt, size);
        if (!buf || H5Aread(a, mt, buf) < 0)
            rc = -1;
        for (hssize_t i = 0; rc >= 0 && i < n; i++) {
            size_t len = strnlen(buf + (size_t)i * size, size);
            snprintf(s, sizeof s, "%.*s", (int)len, buf + (size_t)i * size);
            if (fn(s, ctx))
                rc = -1;
        }
        free(buf);
    }
    H5Tclose(mt), H5Sclose(sp), H5Tclose(ft), H5Aclose(a);
    return rc;
}

static int copy_first(const char *s, void *ctx)
{
    snprintf((char *)ctx, 256, "%s", s);
    return 0;
}

/* A list of strings, grown as attributes are read. */
typedef struct str_list { char **s; int n, cap; } str_list;

static int list_push(const char *s, void *ctx)
{
    str_list *l = ctx;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **p = realloc(l->s, (size_t)cap * sizeof *p);
        if (!p)
            return -1;
        l->s = p, l->cap = cap;
    }
    return (l->s[l->n++] = strdup(s)) ? 0 : -1;
}

static void list_free(str_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->s[i]);
    free(l->s);
    memset(l, 0, sizeof *l);
}

/* An attribute that outgrew the HDF5 object header is stored by Keras as
 * name0, name1, ...: read either form. */
static int attr_string_list(hid_t obj, const char *name, str_list *out)
{
    if (H5Aexists(obj, name) > 0)
        return attr_strings(obj, name, list_push, out) < 0 ? -1 : 0;
    char chunk[96];
    int k = 0;
    for (; snprintf(chunk, sizeof chunk, "%s%d", name, k), H5Aexists(obj, chunk) > 0; k++)
        if (attr_strings(obj, chunk, list_push, out) < 0)
            return -1;
    return k > 0 ? 0 : 1; /* 1: absent */
}

/* ---- datasets ------------------------------------------------------------------ */

/* Reads any integer or float dataset as float32 (HDF5 converts). */
static tlcl_status read_dataset(tlcl_keras_weights *w, hid_t loc, const char *dset, const char *layer,
                                const char *var, int index, char *err, size_t len)
{
    hid_t d = H5Dopen2(loc, dset, H5P_DEFAULT);
    if (d < 0) {
        snprintf(err, len, "%s: layer '%s' lists weight '%s' but the file has no such dataset", w->path, layer, dset);
        return TLCL_ERR_FORMAT;
    }
    hid_t sp = H5Dget_space(d), ft = H5Dget_type(d);
    int ndims = H5Sget_simple_extent_ndims(sp);
    H5T_class_t cls = H5Tget_class(ft);
    hsize_t dims[8] = {0};
    tlcl_status s = TLCL_OK;
    if (ndims < 0 || ndims > 4 || (cls != H5T_FLOAT && cls != H5T_INTEGER)) {
        snprintf(err, len, "%s: weight '%s' of layer '%s' is not a numeric tensor of rank <= 4", w->path, dset, layer);
        s = TLCL_ERR_FORMAT;
    }
    int shape[4] = {0};
    size_t count = 1;
    if (s == TLCL_OK) {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        for (int i = 0; i < ndims; i++)
            shape[i] = (int)dims[i], count *= (size_t)dims[i];
    }
    float *data = s == TLCL_OK ? malloc((count ? count : 1) * sizeof *data) : NULL;
    if (s == TLCL_OK && (!data || H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)) {
        snprintf(err, len, "%s: cannot read weight '%s' of layer '%s'", w->path, dset, layer);
        s = TLCL_ERR_FORMAT;
    }
    if (s == TLCL_OK && kw_add(w, layer, var, index, ndims, shape, data, count)) {
        snprintf(err, len, "out of host memory reading %s", w->path);
        s = TLCL_ERR_OOM;
    }
    if (s != TLCL_OK)
        free(data);
    H5Tclose(ft), H5Sclose(sp), H5Dclose(d);
    return s;
}

/* ---- Keras 3 layout ----------------------------------------------------------- */

/* A `vars` group: the layer name from its attribute, datasets "0", "1", ... */
static tlcl_status read_vars_group(tlcl_keras_weights *w, hid_t g, const char *path, char *err, size_t len)
{
    char layer[256] = "";
    if (H5Aexists(g, "name") <= 0 || attr_strings(g, "name", copy_first, layer) != 1) {
        snprintf(err, len,
                 "%s: group '%s' has no 'name' attribute: the file was written by Keras older than 3.6, whose "
                 "layer paths tlcl does not map; re-save it with Keras >= 3.6",
                 w->path, path);
        return TLCL_ERR_FORMAT;
    }
    char dset[16];
    for (int i = 0; snprintf(dset, sizeof dset, "%d", i), H5Lexists(g, dset, H5P_DEFAULT) > 0; i++) {
        tlcl_status s = read_dataset(w, g, dset, layer, "", i, err, len);
        if (s != TLCL_OK)
            return s;
    }
    return TLCL_OK;
}

/* Walks the groups below g; every group named `vars` is a layer's variables. */
static tlcl_status walk_keras3(tlcl_keras_weights *w, hid_t g, const char *path, int depth, char *err, size_t len)
{
    H5G_info_t info;
    if (depth > 32 || H5Gget_info(g, &info) < 0)
        return TLCL_OK;
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char name[256], sub[1024];
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) < 0)
            continue;
        hid_t o = H5Oopen(g, name, H5P_DEFAULT);
        if (o < 0)
            continue;
        tlcl_status s = TLCL_OK;
        snprintf(sub, sizeof sub, "%s/%s", path, name);
        if (H5Iget_type(o) == H5I_GROUP)
            s = strcmp(name, "vars") == 0 ? read_vars_group(w, o, sub, err, len)
                                          : walk_keras3(w, o, sub, depth + 1, err, len);
        H5Oclose(o);
        if (s != TLCL_OK)
            return s;
    }
    return TLCL_OK;
}

/* ---- legacy layout -------------------------------------------------------------- */

/* "block2a_dwconv/depthwise_kernel:0" -> "kernel" (tlcl's and Keras 3's name). */
static void legacy_var_name(const char *weight_name, char *dst, size_t len)
{
    const char *slash = strrchr(weight_name, '/');
    snprintf(dst, len, "%s", slash ? slash + 1 : weight_name);
    char *colon = strchr(dst, ':');
    if (colon)
        *colon = '\0';
    if (strcmp(dst, "depthwise_kernel") == 0)
        snprintf(dst, len, "kernel");
}

static tlcl_status read_legacy_layer(tlcl_keras_weights *w, hid_t root, const char *layer, char *err, size_t len)
{
    if (H5Lexists(root, layer, H5P_DEFAULT) <= 0)
        return TLCL_OK; /* listed layers without weights may have no group */
    hid_t g = H5Gopen2(root, layer, H5P_DEFAULT);
    if (g < 0)
        return TLCL_OK;
    str_list names = {0};
    tlcl_status s = TLCL_OK;
    if (attr_string_list(g, "weight_names", &names) < 0) {
        snprintf(err, len, "%s: layer '%s' has an unreadable weight_names attribute", w->path, layer);
        s = TLCL_ERR_FORMAT;
    }
    for (int i = 0; s == TLCL_OK && i < names.n; i++) {
        char var[64];
        legacy_var_name(names.s[i], var, sizeof var);
        s = read_dataset(w, g, names.s[i], layer, var, i, err, len);
    }
    list_free(&names);
    H5Gclose(g);
    return s;
}

static tlcl_status read_legacy(tlcl_keras_weights *w, hid_t root, char *err, size_t len)
{
    str_list layers = {0};
    if (attr_string_list(root, "layer_names", &layers) != 0) {
        list_free(&layers);
        snprintf(err, len, "%s: unreadable layer_names attribute", w->path);
        return TLCL_ERR_FORMAT;
    }
    tlcl_status s = TLCL_OK;
    for (int i = 0; s == TLCL_OK && i < layers.n; i++)
        s = read_legacy_layer(w, root, layers.s[i], err, len);
    list_free(&layers);
    return s;
}

/* ---- dispatch ------------------------------------------------------------------- */

static int has_layer_names(hid_t g)
{
    return H5Aexists(g, "layer_names") > 0 || H5Aexists(g, "layer_names0") > 0;
}

static tlcl_status read_file(tlcl_keras_weights *w, hid_t f, char *err, size_t len)
{
    if (has_layer_names(f)) {
        snprintf(w->format, sizeof w->format, "legacy-h5");
        return read_legacy(w, f, err, len);
    }
    if (H5Lexists(f, "model_weights", H5P_DEFAULT) > 0) {
        hid_t g = H5Gopen2(f, "model_weights", H5P_DEFAULT);
        tlcl_status s = TLCL_ERR_FORMAT;
        if (g >= 0 && has_layer_names(g)) {
            snprintf(w->format, sizeof w->format, "legacy-h5");
            s = read_legacy(w, g, err, len);
        } else {
            snprintf(err, len, "%s: /model_weights has no layer_names attribute", w->path);
        }
        if (g >= 0)
            H5Gclose(g);
        return s;
    }
    /* Keras 3; TF-Keras 2.13's early native format called the list _layer_checkpoint_dependencies */
    const char *lists[] = {"layers", "_layer_checkpoint_dependencies"};
    for (int i = 0; i < 2; i++) {
        if (H5Lexists(f, lists[i], H5P_DEFAULT) <= 0)
            continue;
        hid_t g = H5Gopen2(f, lists[i], H5P_DEFAULT);
        if (!w->format[0])
            snprintf(w->format, sizeof w->format, "keras3-h5");
        tlcl_status s = g >= 0 ? walk_keras3(w, g, lists[i], 0, err, len) : TLCL_ERR_FORMAT;
        if (g >= 0)
            H5Gclose(g);
        return s;
    }
    snprintf(err, len, "%s: neither a Keras 3 weights file (no /layers) nor a legacy Keras .h5 (no layer_names)",
             w->path);
    return TLCL_ERR_FORMAT;
}

/* ---- reading (in the child process of keras_guard.c) ----------------------------- */

/* Reads the weights and closes the file whatever happened. */
static tlcl_status read_and_close(tlcl_keras_weights *w, hid_t f, char *err, size_t len)
{
    tlcl_status s = read_file(w, f, err, len);
    H5Fclose(f);
    return s;
}

/* HDF5 prints its error stack on every failed call, probes included;
 * tlcl reports what went wrong itself. */
static void quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static int is_hdf5(const char *path)
{
#if H5_VERSION_GE(1, 12, 0)
    return H5Fis_accessible(path, H5P_DEFAULT) > 0;
#else
    return H5Fis_hdf5(path) > 0;
#endif
}

tlcl_status kw_read_h5_path(tlcl_keras_weights *w, const char *path, char *err, size_t err_len)
{
    quiet_hdf5();
    if (!is_hdf5(path)) {
        snprintf(err, err_len, "%s is not an HDF5 file (expected a Keras .weights.h5, .h5 or .keras)", path);
        return TLCL_ERR_FORMAT;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        snprintf(err, err_len, "cannot open %s as HDF5", path);
        return TLCL_ERR_IO;
    }
    return read_and_close(w, f, err, err_len);
}

tlcl_status kw_read_h5_image(tlcl_keras_weights *w, const void *image, size_t size, char *err, size_t err_len)
{
    quiet_hdf5();
    hid_t f = H5LTopen_file_image((void *)image, size, 0); /* flags 0: HDF5 copies the image (never writes it) */
    if (f < 0) {
        snprintf(err, err_len, "%s: model.weights.h5 inside the archive is not a readable HDF5 image", w->path);
        return TLCL_ERR_FORMAT;
    }
    return read_and_close(w, f, err, err_len);
}

/* ---- .keras zip ----------------------------------------------------------------- */

static uint32_t le16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const unsigned char *p) { return le16(p) | le16(p + 2) << 16; }

/* The central directory entry named `want`: method, sizes and local header offset. */
typedef struct zip_entry { uint32_t method, csize, usize, local; } zip_entry;

static int zip_find(const unsigned char *z, size_t n, const char *want, zip_entry *e)
{
    size_t eocd = n >= 22 ? n - 22 : 0;
    while (eocd > 0 && le32(z + eocd) != 0x06054b50u)
        eocd--;
    if (n < 22 || le32(z + eocd) != 0x06054b50u)
        return -1;
    size_t p = le32(z + eocd + 16), entries = le16(z + eocd + 10), wlen = strlen(want);
    for (size_t i = 0; i < entries && p + 46 <= n && le32(z + p) == 0x02014b50u; i++) {
        size_t nlen = le16(z + p + 28), xlen = le16(z + p + 30), clen = le16(z + p + 32);
        if (p + 46 + nlen <= n && nlen == wlen && memcmp(z + p + 46, want, wlen) == 0) {
            e->method = le16(z + p + 10), e->csize = le32(z + p + 20), e->usize = le32(z + p + 24);
            e->local = le32(z + p + 42);
            return 0;
        }
        p += 46 + nlen + xlen + clen;
    }
    return -1;
}

/* Raw deflate (zip method 8) of csize bytes into usize bytes. Deflate
 * expands at most 1032:1, so a larger declared size is a damaged (or
 * hostile) entry and nothing is allocated for it. */
static unsigned char *inflate_raw(const unsigned char *src, size_t csize, size_t usize)
{
    if (usize > csize * 1032 + 1024)
        return NULL;
    unsigned char *out = malloc(usize ? usize : 1);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (!out || inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
        free(out);
        return NULL;
    }
    zs.next_in = (Bytef *)src, zs.avail_in = (uInt)csize;
    zs.next_out = out, zs.avail_out = (uInt)usize;
    int rc = inflate(&zs, Z_FINISH);
    inflateEnd(&zs);
    if (rc != Z_STREAM_END || zs.total_out != usize) {
        free(out);
        return NULL;
    }
    return out;
}

tlcl_status kw_zip_member(const unsigned char *z, size_t n, const char *path, const unsigned char **image,
                          size_t *size, unsigned char **owned, char *err, size_t err_len)
{
    zip_entry e;
    *image = NULL, *size = 0, *owned = NULL;
    if (zip_find(z, n, "model.weights.h5", &e) != 0) {
        snprintf(err, err_len, "%s: no model.weights.h5 in the archive (not a Keras 3 .keras file, or weights saved "
                 "as npz)", path);
    } else if (e.csize == 0xffffffffu || e.usize == 0xffffffffu) {
        snprintf(err, err_len, "%s: model.weights.h5 is a ZIP64 entry, which tlcl does not read; save the weights "
                 "with model.save_weights(\"x.weights.h5\")", path);
    } else if ((size_t)e.local + 30 > n || le32(z + e.local) != 0x04034b50u) {
        snprintf(err, err_len, "%s: damaged zip (bad local header of model.weights.h5)", path);
    } else {
        size_t data = e.local + 30 + le16(z + e.local + 26) + le16(z + e.local + 28);
        if (data > n || e.csize > n - data)
            snprintf(err, err_len, "%s: truncated zip", path);
        else if (e.method == 0)
            *image = z + data, *size = e.csize;
        else if (e.method == 8 && (*owned = inflate_raw(z + data, e.csize, e.usize)))
            *image = *owned, *size = e.usize;
        else if (e.method == 8) /* the method is fine: the stream is not */
            snprintf(err, err_len, "corrupt deflate data in model.weights.h5 of %s (or not %u bytes when inflated): "
                     "the archive is damaged; save or copy it again", path, e.usize);
        else
            snprintf(err, err_len, "%s: model.weights.h5 uses zip method %u (tlcl reads stored and deflate)", path,
                     e.method);
    }
    return *image ? TLCL_OK : TLCL_ERR_FORMAT;
}

tlcl_status kw_read_zip(tlcl_keras_weights *w, const char *path, char *err, size_t err_len)
{
    size_t n = 0, size = 0;
    unsigned char *z = tlcl_read_input(path, "Keras archive", KW_MAX_FILE_BYTES, &n, err, err_len), *owned = NULL;
    if (!z)
        return TLCL_ERR_IO;
    const unsigned char *image = NULL;
    tlcl_status s = kw_zip_member(z, n, path, &image, &size, &owned, err, err_len);
    if (s == TLCL_OK)
        s = kw_open_h5_image(w, image, size, err, err_len);
    if (s == TLCL_OK)
        snprintf(w->format, sizeof w->format, "keras3-zip");
    free(owned);
    free(z);
    return s;
}
