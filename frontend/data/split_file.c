/* split_file.c — see split_file.h. */
#include "split_file.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPLIT_FORMAT "tlcl-split"
#define SPLIT_VERSION 1

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

uint64_t tlcl_dataset_fingerprint(const tlcl_dataset *ds)
{
    uint64_t h = 1469598103934665603ULL;
    for (int c = 0; c < ds->num_classes; c++) /* the NUL ends each string, so "ab"+"c" != "a"+"bc" */
        h = fnv_bytes(h, ds->class_names[c], strlen(ds->class_names[c]) + 1);
    for (size_t i = 0; i < ds->count; i++) {
        char label[16];
        int n = snprintf(label, sizeof label, "%d", ds->samples[i].label);
        h = fnv_bytes(h, ds->samples[i].path, strlen(ds->samples[i].path) + 1);
        h = fnv_bytes(h, label, (size_t)n + 1);
    }
    return h;
}

/* ---- writing ------------------------------------------------------------ */

static cJSON *sample_list(const tlcl_dataset *ds, const size_t *idx, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t k = 0; a && k < n; k++) {
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(a, e) || !cJSON_AddStringToObject(e, "path", ds->samples[idx[k]].path) ||
            !cJSON_AddNumberToObject(e, "label", ds->samples[idx[k]].label)) {
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

static cJSON *split_to_json(const tlcl_dataset *ds, const tlcl_split_options *o, const tlcl_split *s)
{
    char fp[17];
    snprintf(fp, sizeof fp, "%016" PRIx64, tlcl_dataset_fingerprint(ds));
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", SPLIT_FORMAT);
    cJSON_AddNumberToObject(j, "version", SPLIT_VERSION);
    cJSON_AddStringToObject(j, "method", tlcl_split_method_name(o->method));
    cJSON_AddNumberToObject(j, "seed", s->seed);
    cJSON_AddNumberToObject(j, "validation_split", o->validation_split);
    cJSON_AddBoolToObject(j, "shuffle", o->shuffle != 0);
    if (o->group_pattern)
        cJSON_AddStringToObject(j, "group_pattern", o->group_pattern);
    else
        cJSON_AddNullToObject(j, "group_pattern");
    cJSON_AddStringToObject(j, "group_on", tlcl_group_on_name(o->group_on));
    cJSON_AddNumberToObject(j, "train_fraction", o->train_fraction);
    cJSON_AddNumberToObject(j, "val_fraction", o->val_fraction);
    cJSON_AddItemToObject(j, "class_names",
                          cJSON_CreateStringArray((const char *const *)ds->class_names, ds->num_classes));
    cJSON_AddNumberToObject(j, "num_files", (double)ds->count);
    cJSON_AddStringToObject(j, "fingerprint", fp);
    cJSON_AddItemToObject(j, "training", sample_list(ds, s->train, s->n_train));
    cJSON_AddItemToObject(j, "validation", sample_list(ds, s->val, s->n_val));
    return j;
}

/* Publishes text as path (tlcl_publish): readers (and a crash) see the old
 * file or the new one, never a mix. */
static tlcl_status write_atomic(const char *path, const char *text, char *err, size_t len)
{
    tlcl_publish f;
    TLCL_TRY(tlcl_publish_open(&f, path, err, len));
    return tlcl_publish_commit(&f, fputs(text, f.f) >= 0 && fputc('\n', f.f) != EOF, err, len);
}

tlcl_status tlcl_split_file_write(const char *path, const tlcl_dataset *ds, const tlcl_split_options *o,
                                  const tlcl_split *s, char *err, size_t len)
{
    cJSON *j = split_to_json(ds, o, s);
    char *text = j ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (!text) {
        snprintf(err, len, "out of host memory writing '%s'", path);
        return TLCL_ERR_OOM;
    }
    tlcl_status st = write_atomic(path, text, err, len);
    cJSON_free(text);
    return st;
}

/* ---- reading ------------------------------------------------------------ */

/* A split file lists every image path: 1 GiB holds millions of them. */
#define SPLIT_MAX_BYTES ((size_t)1 << 30)

static int num_is(const cJSON *j, const char *key, double want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsNumber(v) && v->valuedouble == want;
}

/* The first parameter of o that the file disagrees with, or NULL. */
static const char *param_mismatch(const cJSON *j, const tlcl_split_options *o)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "method");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "group_pattern");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shuffle");
    if (!cJSON_IsString(m) || strcmp(m->valuestring, tlcl_split_method_name(o->method)) != 0)
        return "method";
    if (o->seed >= 0 && !num_is(j, "seed", (double)o->seed))
        return "seed";
    if (!num_is(j, "validation_split", o->validation_split))
        return "validation_split";
    if (!cJSON_IsBool(sh) || cJSON_IsTrue(sh) != (o->shuffle != 0))
        return "shuffle";
    if (o->group_pattern ? !cJSON_IsString(g) || strcmp(g->valuestring, o->group_pattern) != 0 : !cJSON_IsNull(g))
        return "group_pattern";
    /* a group split written before group_on existed matched the pattern
     * against the class folder too (it could leak a sample): recomputed */
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(j, "group_on");
    if (o->method == TLCL_SPLIT_GROUP &&
        (!cJSON_IsString(on) || strcmp(on->valuestring, tlcl_group_on_name(o->group_on)) != 0))
        return "group_on";
    if (!num_is(j, "train_fraction", o->train_fraction))
        return "train_fraction";
    if (!num_is(j, "val_fraction", o->val_fraction))
        return "val_fraction";
    return NULL;
}

typedef struct path_index {
    const char *path;
    size_t idx;
} path_index;

static int cmp_path_index(const void *a, const void *b)
{
    return strcmp(((const path_index *)a)->path, ((const path_index *)b)->path);
}

/* Sorted view of the dataset's paths, for lookups by name. */
static path_index *index_paths(const tlcl_dataset *ds)
{
    path_index *v = malloc((ds->count ? ds->count : 1) * sizeof *v);
    for (size_t i = 0; v && i < ds->count; i++) {
        v[i].path = ds->samples[i].path;
        v[i].idx = i;
    }
    if (v)
        qsort(v, ds->count, sizeof *v, cmp_path_index);
    return v;
}

/* Reads one of the file's lists into a malloc'd index array; seen marks
 * the files already listed (in either list), so a file cannot be used
 * twice or on both sides of the split. */
static tlcl_status read_list(const cJSON *a, const tlcl_dataset *ds, const path_index *view, unsigned char *seen,
                             size_t **out, size_t *n, char *err, size_t len)
{
    *n = 0;
    *out = malloc(((size_t)cJSON_GetArraySize(a) + 1) * sizeof **out);
    if (!*out)
        return TLCL_ERR_OOM;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "path");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(e, "label");
        path_index key = {cJSON_IsString(p) ? p->valuestring : "", 0};
        const path_index *hit = bsearch(&key, view, ds->count, sizeof *view, cmp_path_index);
        if (!hit || !cJSON_IsNumber(l) || l->valueint != ds->samples[hit->idx].label) {
            snprintf(err, len, "entry '%s' is not a file of '%s' with that label", key.path, ds->root);
            return TLCL_ERR_FORMAT;
        }
        if (seen[hit->idx]++) {
            snprintf(err, len, "entry '%s' is listed twice (a file belongs to one set, once)", key.path);
            return TLCL_ERR_FORMAT;
        }
        (*out)[(*n)++] = hit->idx;
    }
    return TLCL_OK;
}

static tlcl_status read_lists(const cJSON *j, const tlcl_dataset *ds, tlcl_split *s, char *err, size_t len)
{
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(j, "training");
    const cJSON *va = cJSON_GetObjectItemCaseSensitive(j, "validation");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(j, "seed");
    /* the seed is a uint32_t: a value outside it (or fractional) is a damaged file, not a cast */
    if (!cJSON_IsArray(tr) || !cJSON_IsArray(va) || !cJSON_IsNumber(seed) || !(seed->valuedouble >= 0) ||
        seed->valuedouble > 4294967295.0 || seed->valuedouble != (double)(uint32_t)seed->valuedouble) {
        snprintf(err, len, "no training/validation lists or seed (a whole number from 0 to 4294967295)");
        return TLCL_ERR_FORMAT;
    }
    path_index *view = index_paths(ds);
    unsigned char *seen = calloc(ds->count ? ds->count : 1, 1);
    tlcl_status st = view && seen ? TLCL_OK : TLCL_ERR_OOM;
    s->seed = (uint32_t)seed->valuedouble;
    if (st == TLCL_OK)
        st = read_list(tr, ds, view, seen, &s->train, &s->n_train, err, len);
    if (st == TLCL_OK)
        st = read_list(va, ds, view, seen, &s->val, &s->n_val, err, len);
    free(seen);
    free(view);
    return st;
}

/* Whether the directory still holds what the split was made from. */
static int same_contents(const cJSON *j, const tlcl_dataset *ds, char *why, size_t len)
{
    char fp[17];
    snprintf(fp, sizeof fp, "%016" PRIx64, tlcl_dataset_fingerprint(ds));
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "fingerprint");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "num_files");
    if (cJSON_IsString(f) && strcmp(f->valuestring, fp) == 0)
        return 1;
    snprintf(why, len, "the directory changed since the split was written (%.0f files then, %zu now%s)",
             cJSON_IsNumber(n) ? n->valuedouble : -1.0, ds->count,
             cJSON_IsNumber(n) && n->valuedouble == (double)ds->count ? ", other names, labels or classes" : "");
    return 0;
}

static int is_split_file(const cJSON *j)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "format");
    return cJSON_IsString(f) && strcmp(f->valuestring, SPLIT_FORMAT) == 0 && num_is(j, "version", SPLIT_VERSION);
}

tlcl_status tlcl_split_file_read(const char *path, const tlcl_dataset *ds, const tlcl_split_options *o,
                                 tlcl_split *s, tlcl_split_outcome *outcome, char *err, size_t len)
{
    memset(s, 0, sizeof *s);
    *outcome = TLCL_SPLIT_CREATED;
    size_t n = 0;
    char *text = (char *)tlcl_read_input(path, "split file", SPLIT_MAX_BYTES, &n, err, len);
    if (!text)
        return TLCL_ERR_IO;
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    tlcl_status st = TLCL_OK;
    const char *param = NULL;
    char why[512] = "";
    if (!j || !is_split_file(j)) {
        snprintf(why, sizeof why, "not a tlcl split file (version %d)", SPLIT_VERSION);
        st = TLCL_ERR_FORMAT;
    } else if ((param = param_mismatch(j, o))) {
        snprintf(err, len, "split file '%s' was made with another %s", path, param);
        *outcome = TLCL_SPLIT_PARAMS_CHANGED;
    } else if (!same_contents(j, ds, why, sizeof why)) {
        snprintf(err, len, "split file '%s': %s", path, why);
        *outcome = TLCL_SPLIT_DIR_CHANGED;
    } else {
        *outcome = TLCL_SPLIT_REUSED;
        st = read_lists(j, ds, s, why, sizeof why);
    }
    cJSON_Delete(j);
    if (st != TLCL_OK) {
        snprintf(err, len, "split file '%s': %s", path, st == TLCL_ERR_OOM ? "out of host memory" : why);
        tlcl_split_free(s);
    }
    return st;
}

/* ---- reuse or recompute ------------------------------------------------- */

static tlcl_status compute_and_write(const char *path, const tlcl_dataset *ds, const tlcl_split_options *o,
                                     tlcl_split *s, char *err, size_t len)
{
    tlcl_status st = tlcl_split_compute(ds, o, s, err, len);
    if (st == TLCL_OK && (st = tlcl_split_file_write(path, ds, o, s, err, len)) != TLCL_OK)
        tlcl_split_free(s);
    return st;
}

tlcl_status tlcl_split_resolve(const char *path, const tlcl_dataset *ds, const tlcl_split_options *o, int strict,
                               tlcl_split *s, tlcl_split_outcome *outcome, char *note, size_t note_len, char *err,
                               size_t len)
{
    *outcome = TLCL_SPLIT_CREATED;
    char why[1024] = "";
    if (access(path, F_OK) == 0) {
        tlcl_status st = tlcl_split_file_read(path, ds, o, s, outcome, why, sizeof why);
        if (st != TLCL_OK || *outcome == TLCL_SPLIT_REUSED) {
            if (st != TLCL_OK)
                snprintf(err, len, "%s", why);
            else
                snprintf(note, note_len, "reusing the split in '%s' (%zu training, %zu validation files)", path,
                         s->n_train, s->n_val);
            return st;
        }
        if (strict && *outcome == TLCL_SPLIT_DIR_CHANGED) {
            snprintf(err, len, "%s; strict mode keeps it: remove the file to make a new split", why);
            return TLCL_ERR_ARG;
        }
    }
    tlcl_status st = compute_and_write(path, ds, o, s, err, len);
    if (st == TLCL_OK)
        snprintf(note, note_len, "%s%swrote a new split to '%s' (%zu training, %zu validation files)", why,
                 why[0] ? "; " : "", path, s->n_train, s->n_val);
    return st;
}
