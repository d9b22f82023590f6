/* run_data.c — see run_data.h. */
#include "run_data.h"
#include "class_weight.h"
#include "dataset_split.h"
#include "split_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A list of (dataset, sample index) before the cache exists. */
typedef struct pick { const tlcl_dataset *ds; size_t *idx; size_t n; } pick;

static tlcl_status open_dir(tlcl_dataset *ds, const char *root, const char *what, char *err, size_t len)
{
    tlcl_dataset_options o = tlcl_dataset_options_default();
    char why[1024];
    tlcl_status s = tlcl_dataset_open(ds, root, &o, why, sizeof why);
    if (s != TLCL_OK)
        snprintf(err, len, "%s data (%s): %s", what, root, why);
    return s;
}

static tlcl_split_options split_options(const tlcl_config *c, double fraction)
{
    tlcl_split_options o = tlcl_split_options_default();
    o.method = (tlcl_split_method)c->train.data_dir.split;
    o.validation_split = fraction;
    o.seed = c->train.config.seed;
    o.shuffle = c->train.data_dir.shuffle;
    o.group_pattern = c->train.data_dir.group_pattern[0] ? c->train.data_dir.group_pattern : NULL;
    o.group_on = (tlcl_group_on)c->train.data_dir.group_on;
    return o;
}

static size_t *all_indices(size_t n)
{
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    for (size_t i = 0; idx && i < n; i++)
        idx[i] = i;
    return idx;
}

/* A dataset made of some samples of another (paths borrowed). */
static tlcl_status sub_dataset(const tlcl_dataset *ds, const size_t *idx, size_t n, tlcl_dataset *out)
{
    *out = *ds;
    out->samples = malloc((n ? n : 1) * sizeof *out->samples);
    if (!out->samples)
        return TLCL_ERR_OOM;
    for (size_t i = 0; i < n; i++)
        out->samples[i] = ds->samples[idx[i]];
    out->count = n;
    return TLCL_OK;
}

static void split_path(const tlcl_config *c, const char *name, char *dst, size_t len)
{
    snprintf(dst, len, "%s/%s", c->train.artefacts.base_dir, name);
}

/* The saved split's files live in split_dir when set. */
static void saved_split_path(const tlcl_config *c, const char *name, char *dst, size_t len)
{
    const char *dir = c->train.data_dir.split_dir[0] ? c->train.data_dir.split_dir : c->train.artefacts.base_dir;
    snprintf(dst, len, "%s/%s", dir, name);
}

static tlcl_status resolve(const tlcl_config *c, const tlcl_dataset *ds, double fraction, const char *file,
                           tlcl_split *sp, tlcl_warn_fn warn, void *ctx, char *err, size_t len)
{
    tlcl_split_options o = split_options(c, fraction);
    char path[2048], note[1024] = "";
    tlcl_split_outcome out;
    saved_split_path(c, file, path, sizeof path);
    tlcl_status s = tlcl_split_resolve(path, ds, &o, c->train.data_dir.strict, sp, &out, note, sizeof note, err, len);
    if (s == TLCL_OK && note[0] && warn)
        warn(ctx, note);
    return s;
}

/* Training and validation picks from the configured directories. */
static tlcl_status pick_train_val(tlcl_run_data *d, const tlcl_config *c, tlcl_dataset *pool, pick *tr, pick *va,
                                  tlcl_warn_fn warn, void *ctx, char *err, size_t len)
{
    if (d->has_val_dir) {
        *tr = (pick){pool, all_indices(pool->count), pool->count};
        *va = (pick){&d->val_ds, all_indices(d->val_ds.count), d->val_ds.count};
        return TLCL_OK;
    }
    tlcl_split sp;
    memset(&sp, 0, sizeof sp);
    tlcl_status s = resolve(c, pool, c->train.data_dir.validation_split, "split.json", &sp, warn, ctx, err, len);
    if (s != TLCL_OK)
        return s;
    *tr = (pick){pool, sp.train, sp.n_train};
    *va = (pick){pool, sp.val, sp.n_val};
    return TLCL_OK;
}

static void subsample(pick *p, double fraction, uint32_t seed)
{
    if (fraction < 1.0)
        tlcl_subsample(p->idx, &p->n, fraction, seed);
}

/* Every picked file once, in pick order: train, validation, test. */
static tlcl_status collect_files(tlcl_run_data *d, pick *picks, int npicks)
{
    size_t total = 0;
    for (int k = 0; k < npicks; k++)
        total += picks[k].n;
    d->files = calloc(total ? total : 1, sizeof *d->files);
    if (!d->files)
        return TLCL_ERR_OOM;
    for (int k = 0; k < npicks; k++)
        for (size_t i = 0; i < picks[k].n; i++) {
            char path[4096];
            tlcl_dataset_full_path(picks[k].ds, &picks[k].ds->samples[picks[k].idx[i]], path, sizeof path);
            if (!(d->files[d->nfiles++] = strdup(path)))
                return TLCL_ERR_OOM;
        }
    return TLCL_OK;
}

static tlcl_status make_set(tlcl_set *set, const pick *p, int first_file, const tlcl_image_cache *cache)
{
    set->items = malloc((p->n ? p->n : 1) * sizeof *set->items);
    set->labels = malloc((p->n ? p->n : 1) * sizeof *set->labels);
    set->weights = malloc((p->n ? p->n : 1) * sizeof *set->weights);
    if (!set->items || !set->labels || !set->weights)
        return TLCL_ERR_OOM;
    for (size_t i = 0; i < p->n; i++) {
        int f = first_file + (int)i;
        if (cache->status[f] != 1)
            continue; /* unreadable: left out (already reported) */
        set->items[set->n] = f;
        set->labels[set->n] = p->ds->samples[p->idx[i]].label;
        set->weights[set->n++] = 1.0f;
    }
    return TLCL_OK;
}

static tlcl_status class_weights(tlcl_run_data *d, const tlcl_config *c, char *err, size_t len)
{
    d->class_weight = malloc((size_t)d->classes * sizeof *d->class_weight);
    if (!d->class_weight)
        return TLCL_ERR_OOM;
    const char *names[TLCL_CFG_MAX_CLASSES];
    for (int i = 0; i < c->class_weight.count; i++)
        names[i] = c->class_weight.names[i];
    tlcl_class_weight_spec spec = {(tlcl_class_weight_mode)c->class_weight.kind, names, c->class_weight.weights,
                                   c->class_weight.count, c->class_weight.power};
    tlcl_status s = tlcl_class_weight_resolve(&spec, d->class_names, d->classes, d->train.labels,
                                              (size_t)d->train.n, d->class_weight, err, len);
    if (s != TLCL_OK)
        return s;
    tlcl_class_weight_per_sample(d->class_weight, d->classes, d->train.labels, (size_t)d->train.n,
                                 d->train.weights);
    tlcl_class_weight_describe(&spec, d->class_names, d->classes, d->class_weight, d->class_weight_line,
                               sizeof d->class_weight_line);
    char path[2048];
    split_path(c, "class_weights.json", path, sizeof path);
    return tlcl_class_weight_write_json(path, &spec, d->class_names, d->classes, d->class_weight, d->train.labels,
                                        (size_t)d->train.n, err, len);
}

static tlcl_status fill_cache(tlcl_run_data *d, const tlcl_config *c, tlcl_warn_fn warn, void *ctx, char *err,
                              size_t len)
{
    char dir[2048];
    if (c->train.data_dir.cache_dir[0])
        snprintf(dir, sizeof dir, "%s", c->train.data_dir.cache_dir);
    else
        snprintf(dir, sizeof dir, "%s/image_cache", c->train.artefacts.base_dir);
    /* at the data's size, as image_dataset_from_directory; a model.input_size other than it is the
     * network's first layer (Keras's Resizing), not a second resize here */
    const int *size = c->train.data_dir.image_size;
    if (tlcl_image_cache_open(&d->cache, dir, (const char *const *)d->files, d->nfiles, size[0], size[1],
                              c->train.data_dir.crop_to_aspect_ratio, err, len) != 0)
        return TLCL_ERR_IO;
    d->cache.max_pixels = c->train.data_dir.max_image_pixels;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    d->unreadable = tlcl_image_cache_fill(&d->cache, (int)(cpus > 0 ? cpus : 2), isatty(2), warn, ctx);
    if (d->unreadable && c->train.data_dir.strict) {
        snprintf(err, len, "%d image(s) cannot be read (listed above); strict is set, so the run stops. "
                           "Remove or replace them, or set train.data_dir.strict: false to skip them",
                 d->unreadable);
        return TLCL_ERR_FORMAT;
    }
    return TLCL_OK;
}

static tlcl_status open_dirs(tlcl_run_data *d, const tlcl_config *c, int need_test, char *err, size_t len)
{
    tlcl_status s = open_dir(&d->train_ds, c->train.data_dir.train, "training", err, len);
    d->has_val_dir = s == TLCL_OK && c->train.data_dir.validation[0];
    if (d->has_val_dir && (s = open_dir(&d->val_ds, c->train.data_dir.validation, "validation", err, len)) == TLCL_OK)
        s = tlcl_dataset_check_same_classes(&d->train_ds, "training", &d->val_ds, "validation", err, len);
    d->has_test = need_test && c->train.data_dir.test[0];
    if (s == TLCL_OK && d->has_test && (s = open_dir(&d->test_ds, c->train.data_dir.test, "test", err, len)) == TLCL_OK)
        s = tlcl_dataset_check_same_classes(&d->train_ds, "training", &d->test_ds, "test", err, len);
    d->classes = d->train_ds.num_classes;
    d->class_names = (const char *const *)d->train_ds.class_names;
    return s;
}

/* With test_split, the test files are drawn from the training directory
 * first (by the same method); the rest is the pool for train/validation. */
static tlcl_status carve_test(tlcl_run_data *d, const tlcl_config *c, tlcl_dataset *pool, pick *te,
                              tlcl_warn_fn warn, void *ctx, char *err, size_t len)
{
    *pool = d->train_ds;
    pool->samples = NULL;
    if (d->has_test || c->train.data_dir.test_split <= 0) {
        size_t *all = all_indices(d->train_ds.count);
        tlcl_status s = all ? sub_dataset(&d->train_ds, all, d->train_ds.count, pool) : TLCL_ERR_OOM;
        free(all);
        return s;
    }
    tlcl_split sp;
    memset(&sp, 0, sizeof sp);
    tlcl_status s = resolve(c, &d->train_ds, c->train.data_dir.test_split, "test_split.json", &sp, warn, ctx, err, len);
    if (s == TLCL_OK)
        s = sub_dataset(&d->train_ds, sp.train, sp.n_train, pool);
    *te = (pick){&d->train_ds, sp.val, sp.n_val};
    free(sp.train);
    d->has_test = s == TLCL_OK;
    return s;
}

/* Final training on train + valid: the validation set's images join the
 * training set (before the class weights, which count them), and no
 * validation set is left. */
static tlcl_status merge_validation(tlcl_run_data *d, tlcl_warn_fn warn, void *ctx)
{
    int n = d->train.n + d->val.n;
    int *items = realloc(d->train.items, (size_t)(n ? n : 1) * sizeof *items);
    if (items)
        d->train.items = items;
    int *labels = items ? realloc(d->train.labels, (size_t)(n ? n : 1) * sizeof *labels) : NULL;
    if (labels)
        d->train.labels = labels;
    float *weights = labels ? realloc(d->train.weights, (size_t)(n ? n : 1) * sizeof *weights) : NULL;
    if (!weights)
        return TLCL_ERR_OOM;
    d->train.weights = weights;
    for (int i = 0; i < d->val.n; i++) {
        d->train.items[d->train.n + i] = d->val.items[i];
        d->train.labels[d->train.n + i] = d->val.labels[i];
        d->train.weights[d->train.n + i] = 1.0f;
    }
    if (warn) {
        char note[256];
        snprintf(note, sizeof note,
                 "merge_validation: the %d validation images train too (%d training images, no validation)",
                 d->val.n, n);
        warn(ctx, note);
    }
    d->train.n = n;
    d->val.n = 0;
    return TLCL_OK;
}

tlcl_status tlcl_run_data_open(tlcl_run_data *d, const tlcl_config *c, int need_test, tlcl_warn_fn warn,
                               void *warn_ctx, char *err, size_t err_len)
{
    memset(d, 0, sizeof *d);
    pick tr = {0}, va = {0}, te = {0};
    tlcl_dataset pool = {0};
    tlcl_status s = open_dirs(d, c, need_test, err, err_len);
    int opened_test = d->has_test;
    if (s == TLCL_OK)
        s = carve_test(d, c, &pool, &te, warn, warn_ctx, err, err_len);
    if (s == TLCL_OK)
        s = pick_train_val(d, c, &pool, &tr, &va, warn, warn_ctx, err, err_len);
    if (s == TLCL_OK && opened_test)
        te = (pick){&d->test_ds, all_indices(d->test_ds.count), d->test_ds.count};
    uint32_t seed = (uint32_t)c->train.config.seed;
    subsample(&tr, c->train.data_dir.subsample.train, seed);
    subsample(&va, c->train.data_dir.subsample.validation, seed + 1);
    subsample(&te, c->train.data_dir.subsample.test, seed + 2);
    pick picks[3] = {tr, va, te};
    if (s == TLCL_OK)
        s = collect_files(d, picks, 3);
    if (s == TLCL_OK)
        s = fill_cache(d, c, warn, warn_ctx, err, err_len);
    if (s == TLCL_OK && (s = make_set(&d->train, &tr, 0, &d->cache)) == TLCL_OK &&
        (s = make_set(&d->val, &va, (int)tr.n, &d->cache)) == TLCL_OK)
        s = make_set(&d->test, &te, (int)(tr.n + va.n), &d->cache);
    if (s == TLCL_OK && c->train.data_dir.merge_validation)
        s = merge_validation(d, warn, warn_ctx);
    if (s == TLCL_OK && d->train.n == 0) {
        snprintf(err, err_len, "no readable training image in %s", c->train.data_dir.train);
        s = TLCL_ERR_ARG;
    }
    if (s == TLCL_OK)
        s = class_weights(d, c, err, err_len);
    free(tr.idx), free(va.idx), free(te.idx), free(pool.samples);
    d->has_test = opened_test; /* which datasets to free */
    d->test_carved = te.n > 0 && !opened_test;
    return s;
}

static void set_free(tlcl_set *s)
{
    free(s->items), free(s->labels), free(s->weights);
}

void tlcl_run_data_free(tlcl_run_data *d)
{
    tlcl_image_cache_close(&d->cache);
    for (int i = 0; i < d->nfiles; i++)
        free(d->files[i]);
    free(d->files);
    set_free(&d->train), set_free(&d->val), set_free(&d->test);
    free(d->class_weight);
    tlcl_dataset_free(&d->train_ds);
    if (d->has_val_dir)
        tlcl_dataset_free(&d->val_ds);
    if (d->has_test)
        tlcl_dataset_free(&d->test_ds);
    memset(d, 0, sizeof *d);
}

static void count_labels(const tlcl_set *set, int classes, int *counts)
{
    memset(counts, 0, (size_t)classes * sizeof *counts);
    for (int i = 0; i < set->n; i++)
        if (set->labels[i] >= 0 && set->labels[i] < classes)
            counts[set->labels[i]]++;
}

void tlcl_run_data_print_counts(const tlcl_run_data *d, FILE *f)
{
    const tlcl_set *sets[3] = {&d->train, &d->val, &d->test};
    int *counts = calloc((size_t)d->classes * 3, sizeof *counts);
    if (!counts)
        return;
    int width = 5;
    for (int c = 0; c < d->classes; c++)
        width = (int)strlen(d->class_names[c]) > width ? (int)strlen(d->class_names[c]) : width;
    for (int k = 0; k < 3; k++)
        count_labels(sets[k], d->classes, counts + (size_t)k * d->classes);
    fprintf(f, "%-*s %8s %11s %8s\n", width, "class", "train", "validation", "test");
    for (int c = 0; c < d->classes; c++)
        fprintf(f, "%-*s %8d %11d %8d\n", width, d->class_names[c], counts[c], counts[d->classes + c],
                counts[2 * d->classes + c]);
    fprintf(f, "%-*s %8d %11d %8d\n", width, "total", d->train.n, d->val.n, d->test.n);
    free(counts);
}
