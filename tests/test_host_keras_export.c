/* test_host_keras_export.c — tlcl_model_export_keras against Keras's own
 * writer: the fixtures keras_v1/v2.weights.h5 were written by Keras 3
 * (model.save_weights, tools/make_keras_fixtures.py). Importing one and
 * exporting it again must give the same file content: every dataset at the
 * same path with the same shape, type and values, the same layer name on
 * each vars group, and nothing more. The Sequential layout (hidden head
 * layers) is checked by a round trip through tlcl's import and by
 * tools/keras_export_check.py in real Keras. */
#include "fixture.h"
#include "harness.h"
#include "model.h"
#include "testdata.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SIZE = 64, CLASSES = 5 };

static char tmpdir[256];



static int host_model(harness *h, tlcl_model *m, const tlcl_arch *a, const int *head_units)
{
    tlcl_model_options o = tlcl_model_options_default();
    o.custom = a;
    o.classes = CLASSES;
    for (int i = 0; head_units && head_units[i]; i++)
        o.head_units[i] = head_units[i];
    char err[1024] = "";
    if (tlcl_model_build(m, &o, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "building %s: %s", a->name, err);
        return -1;
    }
    tlcl_params_layout(&m->params, 1);
    return 0;
}

/* ---- reading both files ---------------------------------------------------- */

typedef struct compare {
    hid_t other;
    int datasets, same, names, same_names;
    char first_diff[512];
} compare;

static void note_diff(compare *c, const char *fmt, const char *path)
{
    if (!c->first_diff[0])
        snprintf(c->first_diff, sizeof c->first_diff, fmt, path);
}

/* All of a dataset's values as doubles (n of them), or NULL. */
static double *read_all(hid_t ds, hssize_t *n)
{
    hid_t sp = H5Dget_space(ds);
    *n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    double *v = *n >= 0 ? calloc((size_t)*n + 1, sizeof *v) : NULL;
    if (v && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        free(v);
        v = NULL;
    }
    return v;
}

/* Same shape, same storage type, values within rtol (0: bit for bit). */
static int same_dataset(hid_t a, hid_t b, double rtol)
{
    hid_t sa = H5Dget_space(a), sb = H5Dget_space(b), ta = H5Dget_type(a), tb = H5Dget_type(b);
    hsize_t da[8] = {0}, db[8] = {0};
    int ra = H5Sget_simple_extent_dims(sa, da, NULL), rb = H5Sget_simple_extent_dims(sb, db, NULL);
    int ok = ra == rb && memcmp(da, db, sizeof da) == 0 && H5Tequal(ta, tb) > 0;
    H5Sclose(sa), H5Sclose(sb), H5Tclose(ta), H5Tclose(tb);
    hssize_t na = 0, nb = 0;
    double *va = ok ? read_all(a, &na) : NULL, *vb = ok ? read_all(b, &nb) : NULL;
    ok = ok && va && vb && na == nb;
    for (hssize_t i = 0; ok && i < na; i++)
        ok = rtol == 0 ? va[i] == vb[i] : fabs(va[i] - vb[i]) <= rtol * fabs(va[i]);
    free(va), free(vb);
    return ok;
}

static int name_attr(hid_t obj, char *dst, size_t len)
{
    if (H5Aexists(obj, "name") <= 0)
        return -1;
    hid_t a = H5Aopen(obj, "name", H5P_DEFAULT), t = H5Aget_type(a), mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(t)); /* HDF5 converts no string between ASCII and UTF-8 */
    char *s = NULL;
    int rc = H5Tis_variable_str(t) > 0 && H5Aread(a, mt, &s) >= 0 && s ? 0 : -1;
    if (rc == 0)
        snprintf(dst, len, "%s", s);
    H5free_memory(s);
    H5Tclose(mt), H5Tclose(t), H5Aclose(a);
    return rc;
}

/* For each object of the reference file: is it in the other one, equal? */
static herr_t visit_reference(hid_t root, const char *path, const H5O_info_t *info, void *ctx)
{
    compare *c = ctx;
    if (strcmp(path, ".") == 0)
        return 0;
    if (H5Lexists(c->other, path, H5P_DEFAULT) <= 0) {
        if (info->type == H5O_TYPE_DATASET)
            c->datasets++;
        if (info->type == H5O_TYPE_DATASET) /* groups of layers without variables may be absent */
            note_diff(c, "%s is missing from tlcl's file", path);
        return 0;
    }
    hid_t a = H5Oopen(root, path, H5P_DEFAULT), b = H5Oopen(c->other, path, H5P_DEFAULT);
    if (info->type == H5O_TYPE_DATASET) {
        c->datasets++;
        /* the Normalization values pass through tlcl's input scaling and back */
        double rtol = strstr(path, "normalization/vars/") ? 1e-6 : 0;
        if (same_dataset(a, b, rtol))
            c->same++;
        else
            note_diff(c, "%s differs", path);
    } else {
        char na[128], nb[128];
        H5G_info_t gi;
        if (name_attr(a, na, sizeof na) == 0 && H5Gget_info(a, &gi) >= 0) {
            if (gi.nlinks > 0) { /* only the layers with variables are written */
                c->names++;
                if (name_attr(b, nb, sizeof nb) == 0 && strcmp(na, nb) == 0)
                    c->same_names++;
                else
                    note_diff(c, "%s: the layer name differs", path);
            }
        }
    }
    H5Oclose(a), H5Oclose(b);
    return 0;
}

static herr_t count_datasets(hid_t root, const char *path, const H5O_info_t *info, void *ctx)
{
    (void)root, (void)path;
    if (info->type == H5O_TYPE_DATASET)
        ++*(int *)ctx;
    return 0;
}

/* ---- the checks ------------------------------------------------------------ */

static float *import_fixture(harness *h, tlcl_model *m, const char *file)
{
    float *host = calloc(m->params.total, sizeof *host);
    tlcl_keras_weights *w = NULL;
    char err[1024] = "";
    tlcl_status s = host ? tlcl_keras_open(&w, file, err, sizeof err) : TLCL_ERR_OOM;
    if (s == TLCL_OK)
        s = tlcl_model_import_keras_host(m, w, host, err, sizeof err);
    tlcl_keras_close(w);
    if (s != TLCL_OK) {
        harness_fail(h, "importing %s: %s", file, err);
        free(host);
        return NULL;
    }
    return host;
}

/* Keras's file in, tlcl's file out: the same content. */
static void test_same_as_keras(harness *h, const char *arch, const char *fam)
{
    char ref[512], out[512], err[1024] = "";
    snprintf(ref, sizeof ref, "%s/keras_%s.weights.h5", fixture_dir(), fam);
    snprintf(out, sizeof out, "%s/%s.weights.h5", tmpdir, fam);
    tlcl_arch a = testdata_keras_fixture_arch(arch);
    tlcl_model m;
    if (host_model(h, &m, &a, NULL))
        return;
    float *host = import_fixture(h, &m, ref);
    tlcl_status s = host ? tlcl_model_export_keras(&m, host, out, err, sizeof err) : TLCL_ERR_IO;
    if (s != TLCL_OK)
        harness_fail(h, "%s: export: %s", fam, err);
    hid_t fr = s == TLCL_OK ? H5Fopen(ref, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    hid_t fo = s == TLCL_OK ? H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (fr >= 0 && fo >= 0) {
        compare c = {.other = fo};
        int in_out = 0;
        H5Ovisit(fr, H5_INDEX_NAME, H5_ITER_NATIVE, visit_reference, &c);
        H5Ovisit(fo, H5_INDEX_NAME, H5_ITER_NATIVE, count_datasets, &in_out);
        printf("     %s: %d of %d datasets equal, %d of %d layer names, %d datasets in tlcl's file%s%s\n", fam, c.same,
               c.datasets, c.same_names, c.names, in_out, c.first_diff[0] ? "; first difference: " : "",
               c.first_diff);
        harness_expectf(h, c.datasets > 100 && c.same == c.datasets && in_out == c.datasets,
                        "%s: every dataset of Keras's file, at the same path, equal, and no other", fam);
        harness_expectf(h, c.names > 50 && c.same_names == c.names, "%s: every layer carries its Keras name", fam);
    }
    if (fr >= 0)
        H5Fclose(fr);
    if (fo >= 0)
        H5Fclose(fo);
    if (!getenv("TLCL_KEEP"))
        remove(out);
    free(host);
    tlcl_model_free(&m);
}

/* Hidden head layers: the Sequential layout, read back by tlcl's import. */
static void test_sequential_round_trip(harness *h)
{
    char out[512], err[1024] = "";
    snprintf(out, sizeof out, "%s/seq.weights.h5", tmpdir);
    tlcl_arch a = testdata_keras_fixture_arch("efficientnet-b0");
    tlcl_model m, back;
    const int units[] = {8, 0};
    if (host_model(h, &m, &a, units) || host_model(h, &back, &a, units))
        return;
    float *host = calloc(m.params.total, sizeof *host);
    for (size_t i = 0; host && i < m.params.total; i++)
        host[i] = (float)((i * 2654435761u) % 1000) / 997.0f + 0.01f; /* positive: also valid variances */
    const float scale[3] = {0.0171f, 0.0175f, 0.0174f}, shift[3] = {-2.12f, -2.04f, -1.80f}; /* ImageNet's */
    memcpy(m.pre_scale, scale, sizeof scale), memcpy(m.pre_shift, shift, sizeof shift);
    tlcl_status s = host ? tlcl_model_export_keras(&m, host, out, err, sizeof err) : TLCL_ERR_OOM;
    harness_expectf(h, s == TLCL_OK, "Sequential layout written %s", err);
    float *again = s == TLCL_OK ? import_fixture(h, &back, out) : NULL;
    size_t differ = 0, compared = 0;
    for (int p = 0; again && p < m.params.count; p++) {
        const tlcl_param_entry *e = &m.params.entries[p];
        if (p == m.norm_mean_id || p == m.norm_var_id || p == m.norm_count_id)
            continue; /* written from the input scaling, checked below */
        for (size_t i = e->offset; i < e->offset + e->count; i++, compared++)
            differ += host[i] != again[i];
    }
    harness_expectf(h, again && compared > 600000 && differ == 0,
                    "tlcl's import reads every weight back (%zu of %zu differ)", differ, compared);
    double worst = 0;
    for (int c = 0; c < 3; c++)
        worst = fmax(worst, fmax(fabs(back.pre_scale[c] / scale[c] - 1), fabs(back.pre_shift[c] / shift[c] - 1)));
    harness_expectf(h, again && worst < 1e-6, "the input scaling comes back through Normalization (rel. err %.2g)",
                    worst);
    hid_t f = s == TLCL_OK ? H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    harness_expect(h, f >= 0 && H5Lexists(f, "layers/functional/layers/conv2d/vars/0", H5P_DEFAULT) > 0 &&
                          H5Lexists(f, "layers/dense/vars/0", H5P_DEFAULT) > 0 &&
                          H5Lexists(f, "layers/dense_1/vars/1", H5P_DEFAULT) > 0,
                   "the base under layers/functional, the two Dense layers at the top level");
    if (f >= 0)
        H5Fclose(f);
    remove(out);
    free(host), free(again);
    tlcl_model_free(&m), tlcl_model_free(&back);
}

/* FILE.keras: the same weights in a stored zip with metadata.json, read back
 * by tlcl's own .keras reader (the one `tlcl import` uses). */
static void test_keras_archive(harness *h)
{
    char out[512], err[1024] = "";
    snprintf(out, sizeof out, "%s/m.keras", tmpdir);
    tlcl_arch a = testdata_keras_fixture_arch("efficientnetv2-b0");
    tlcl_model m, back;
    if (host_model(h, &m, &a, NULL) || host_model(h, &back, &a, NULL))
        return;
    float *host = calloc(m.params.total, sizeof *host);
    for (size_t i = 0; host && i < m.params.total; i++)
        host[i] = (float)((i * 40503u) % 977) / 491.0f - 0.9f;
    tlcl_status s = host ? tlcl_model_export_keras(&m, host, out, err, sizeof err) : TLCL_ERR_OOM;
    float *again = s == TLCL_OK ? import_fixture(h, &back, out) : NULL;
    int same = again && memcmp(host, again, m.params.total * sizeof *host) == 0;
    FILE *f = fopen(out, "rb");
    unsigned char sig[4] = {0};
    int zip = f && fread(sig, 1, 4, f) == 4 && memcmp(sig, "PK\x03\x04", 4) == 0;
    if (f)
        fclose(f);
    harness_expectf(h, s == TLCL_OK && zip && same, "a .keras archive: a zip whose weights read back equal %s", err);
    remove(out);
    free(host), free(again);
    tlcl_model_free(&m), tlcl_model_free(&back);
}

static void test_refusals(harness *h)
{
    tlcl_model m;
    tlcl_model_options o = tlcl_model_options_default();
    o.arch = "efficientnet-lite0";
    o.size = 32;
    char err[1024] = "", out[512];
    if (tlcl_model_build(&m, &o, err, sizeof err) != TLCL_OK) {
        harness_fail(h, "lite0: %s", err);
        return;
    }
    tlcl_params_layout(&m.params, 1);
    float *host = calloc(m.params.total, sizeof *host);
    snprintf(out, sizeof out, "%s/lite.weights.h5", tmpdir);
    tlcl_status s = tlcl_model_export_keras(&m, host, out, err, sizeof err);
    harness_expectf(h, s == TLCL_ERR_ARG && strstr(err, "no EfficientNet-Lite builder") && access(out, F_OK) != 0,
                    "Lite is refused, no file -> %s", err);
    snprintf(out, sizeof out, "%s/no/such/folder/x.weights.h5", tmpdir);
    tlcl_model_free(&m);
    tlcl_arch a = testdata_keras_fixture_arch("efficientnet-b0");
    free(host);
    if (host_model(h, &m, &a, NULL))
        return;
    host = calloc(m.params.total, sizeof *host);
    s = tlcl_model_export_keras(&m, host, out, err, sizeof err);
    harness_expectf(h, s == TLCL_ERR_IO && strstr(err, "x.weights.h5"), "a missing folder is named -> %s", err);
    free(host);
    tlcl_model_free(&m);
}

int main(void)
{
    harness h;
    harness_init(&h, 0);
    snprintf(tmpdir, sizeof tmpdir, "%s/tlcl_export_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_same_as_keras(&h, "efficientnet-b0", "v1");
    test_same_as_keras(&h, "efficientnetv2-b0", "v2");
    test_sequential_round_trip(&h);
    test_keras_archive(&h);
    test_refusals(&h);
    rmdir(tmpdir);
    return harness_finish(&h);
}
