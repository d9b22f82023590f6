/* cmd_test.c — `tlcl test --model CKPT --data DIR [--split FILE] [--out DIR]
 * [--device=N] [--batch-size=N]` (options in any order, cli_options.h):
 * the test outputs of `tlcl train` (confusion matrix CSV and picture,
 * classification report) for any
 * checkpoint and any class-folder directory whose classes match the
 * checkpoint's; with --split, only the held-out files of a saved split
 * (test_split.json, or a split.json's validation files). */
#include "batch_loader.h"
#include "commands.h"
#include "dataset_dir.h"
#include "dist.h"
#include "evaluate.h"
#include "image_cache.h"
#include "model.h"
#include "textout.h"

#include <cJSON.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct test_cli { const char *model, *data, *out, *split; int device, batch; } test_cli;

typedef struct test_run {
    tlcl_checkpoint *ck;
    tlcl_dataset ds;
    char **names;
    int nnames;
    char **files;
    tlcl_image_cache cache;
    tlcl_cl *cl;
    tlcl_engine *eng;
    tlcl_model model;
    tlcl_loader *loader;
    char err[4096];
} test_run;

CLI_COMMAND(cli_test, "test", "", 0, 0,
    "Confusion matrix and classification report of a checkpoint on a class-folder directory.\n"
    "The directory's classes must be the checkpoint's; the outputs are those `tlcl train` writes for\n"
    "its test set (CSV, picture, JSON report).",
    CLI_TEXT_OPT("model", "CKPT", "the checkpoint to evaluate (required)"),
    CLI_TEXT_OPT("data", "DIR", "class-folder directory with the checkpoint's classes (required)"),
    CLI_TEXT_OPT("split", "FILE", "only the held-out files of a saved split (test_split.json, split.json)"),
    CLI_TEXT_OPT("out", "DIR", "where the confusion matrix and the report go (default .)"),
    CLI_DEVICE_OPTION,
    CLI_INT_OPT("batch-size", "N", 1, 65536, "images per device batch (default 32)"));

/* 0 to go on; 1 to stop with c->status (--help, a usage error). */
static int parse(int argc, char **argv, test_cli *o, cli_args *c)
{
    if (cli_parse(&cli_test, argc, argv, c))
        return 1;
    const char *out = cli_value(c, "out");
    *o = (test_cli){cli_value(c, "model"), cli_value(c, "data"), out ? out : ".", cli_value(c, "split"),
                    cli_device(c), (int)cli_number(c, "batch-size", 32)};
    if (!o->model || !o->data)
        c->status = cli_usage_error(c, "%s is required", !o->model ? "--model CKPT" : "--data DIR");
    else if (o->device == -2) /* a malformed $TLCL_DEVICE (reported) */
        c->status = 2;
    return c->status != 0;
}

/* The directory's classes must be the checkpoint's, in the same order. */
static tlcl_status check_classes(test_run *r, const char *dir)
{
    if (r->nnames != r->ds.num_classes)
        goto differ;
    for (int i = 0; i < r->nnames; i++)
        if (strcmp(r->names[i], r->ds.class_names[i]) != 0)
            goto differ;
    return TLCL_OK;
differ:
    snprintf(r->err, sizeof r->err, "%s has %d classes (%s%s), the checkpoint %d (%s%s): they must be the same",
             dir, r->ds.num_classes, r->ds.num_classes ? r->ds.class_names[0] : "", r->ds.num_classes > 1 ? ", ..." : "",
             r->nnames, r->nnames ? r->names[0] : "", r->nnames > 1 ? ", ..." : "");
    return TLCL_ERR_ARG;
}

static tlcl_status open_model(test_run *r, const test_cli *o)
{
    tlcl_model_options mo;
    tlcl_status s = tlcl_checkpoint_open(&r->ck, o->model, r->err, sizeof r->err);
    if (s == TLCL_OK)
        s = tlcl_checkpoint_options(r->ck, &mo, r->err, sizeof r->err);
    if (s == TLCL_OK)
        s = tlcl_model_build(&r->model, &mo, r->err, sizeof r->err);
    if (s != TLCL_OK)
        return s;
    r->nnames = tlcl_checkpoint_class_names(r->ck, &r->names);
    tlcl_cl_options co = tlcl_cl_options_default();
    co.device_index = o->device;
    if ((s = tlcl_cl_init(&r->cl, &co, r->err, sizeof r->err)) != TLCL_OK)
        return s;
    if ((s = tlcl_engine_init(&r->eng, r->cl)) == TLCL_OK)
        cli_report_tuning(r->eng);
    if (s == TLCL_OK && (s = tlcl_model_alloc(&r->model, r->eng, 0)) == TLCL_OK)
        return tlcl_model_load(&r->model, r->ck, r->err, sizeof r->err);
    snprintf(r->err, sizeof r->err, "%s", tlcl_cl_error(r->cl));
    return s;
}

static void warn(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "warning: %s (skipped)\n", msg);
}


static int by_path(const void *a, const void *b)
{
    return strcmp((*(const tlcl_sample *const *)a)->path, (*(const tlcl_sample *const *)b)->path);
}

/* The directory's sample with this path (index sorted by path), or NULL. */
static const tlcl_sample *find_sample(tlcl_sample **index, size_t n, const char *path)
{
    tlcl_sample key = {.path = (char *)path}, *k = &key;
    tlcl_sample **hit = bsearch(&k, index, n, sizeof *index, by_path);
    return hit ? *hit : NULL;
}

/* The held-out entries of a parsed split into kept; -1 with err naming the
 * first entry the directory lacks (or whose label differs). */
static int take_entries(test_run *r, const char *path, const cJSON *list, tlcl_sample *kept, size_t *n)
{
    size_t count = r->ds.count;
    tlcl_sample **index = malloc((count + 1) * sizeof *index);
    if (!index)
        return snprintf(r->err, sizeof r->err, "out of memory"), -1;
    for (size_t i = 0; i < count; i++)
        index[i] = &r->ds.samples[i];
    qsort(index, count, sizeof *index, by_path);
    const cJSON *e;
    int rc = 0;
    cJSON_ArrayForEach(e, list)
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "path"), *l = cJSON_GetObjectItemCaseSensitive(e, "label");
        const tlcl_sample *hit = cJSON_IsString(p) ? find_sample(index, count, p->valuestring) : NULL;
        if (!hit || !cJSON_IsNumber(l) || l->valueint != hit->label) {
            snprintf(r->err, sizeof r->err,
                     "%s: '%s' is not in %s with that label: was the split made on this directory?", path,
                     cJSON_IsString(p) ? p->valuestring : "?", r->ds.root);
            rc = -1;
            break;
        }
        kept[(*n)++] = (tlcl_sample){strdup(hit->path), hit->label};
    }
    free(index);
    return rc;
}

/* Keeps only the samples a saved split holds out (its "validation" list:
 * the test files of test_split.json). */
static tlcl_status select_split(test_run *r, const char *path)
{
    char *text = textout_read_all(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL, *list = cJSON_GetObjectItemCaseSensitive(j, "validation");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    free(text);
    if (!j || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, "tlcl-split") != 0 || !cJSON_IsArray(list)) {
        snprintf(r->err, sizeof r->err, "%s: not a tlcl split file (tlcl train writes test_split.json and split.json)",
                 path);
        cJSON_Delete(j);
        return TLCL_ERR_FORMAT;
    }
    size_t n = 0;
    tlcl_sample *kept = malloc(((size_t)cJSON_GetArraySize(list) + 1) * sizeof *kept);
    int rc = kept ? take_entries(r, path, list, kept, &n) : -1;
    cJSON_Delete(j);
    for (size_t i = 0; i < (rc == 0 ? r->ds.count : n); i++) /* the directory's list goes, or what was taken */
        free(rc == 0 ? r->ds.samples[i].path : kept[i].path);
    if (rc != 0) {
        free(kept);
        return TLCL_ERR_FORMAT;
    }
    free(r->ds.samples);
    r->ds.samples = kept, r->ds.count = n;
    printf("test: %zu held-out files of %s\n", n, path);
    return TLCL_OK;
}

static tlcl_status open_data(test_run *r, const test_cli *o)
{
    tlcl_dataset_options dopt = tlcl_dataset_options_default();
    tlcl_status s = tlcl_dataset_open(&r->ds, o->data, &dopt, r->err, sizeof r->err);
    if (s == TLCL_OK)
        s = check_classes(r, o->data);
    if (s == TLCL_OK && o->split)
        s = select_split(r, o->split);
    int n = (int)r->ds.count;
    r->files = s == TLCL_OK ? calloc((size_t)n + 1, sizeof *r->files) : NULL;
    for (int i = 0; r->files && i < n; i++) {
        char path[4096];
        tlcl_dataset_full_path(&r->ds, &r->ds.samples[i], path, sizeof path);
        r->files[i] = strdup(path);
    }
    if (s != TLCL_OK)
        return s;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/image_cache", o->out);
    if (tlcl_image_cache_open(&r->cache, dir, (const char *const *)r->files, n, r->model.image_h, r->model.image_w, 0,
                              r->err, sizeof r->err) != 0)
        return TLCL_ERR_IO;
    tlcl_image_cache_fill(&r->cache, 2, isatty(2), warn, NULL);
    int *items = malloc(((size_t)n + 1) * sizeof *items), *labels = malloc(((size_t)n + 1) * sizeof *labels), m = 0;
    for (int i = 0; items && labels && i < n; i++)
        if (r->cache.status[i] == 1)
            items[m] = i, labels[m++] = r->ds.samples[i].label;
    tlcl_loader_options lo = {.batch_size = o->batch, .workers = 2, .prefetch = 3};
    lo.augment = tlcl_augment_none();
    int rc = items && labels && m > 0 ? tlcl_loader_open(&r->loader, &r->cache, items, labels, NULL, m, &lo) : -1;
    free(items), free(labels);
    if (rc != 0)
        snprintf(r->err, sizeof r->err, "no readable image in %s", o->data);
    return rc == 0 ? TLCL_OK : TLCL_ERR_ARG;
}

static tlcl_status evaluate(test_run *r, const test_cli *o)
{
    float *probs;
    int *labels, n;
    tlcl_run *run;
    tlcl_loss_spec loss = tlcl_loss_spec_default();
    tlcl_status s = tlcl_run_create(&run, &r->model, &loss, r->err, sizeof r->err);
    if (s == TLCL_OK)
        s = tlcl_predict_loader(run, r->loader, NULL, &probs, &labels, &n, NULL, r->err, sizeof r->err);
    tlcl_run_free(run);
    if (s != TLCL_OK)
        return s;
    if (!tlcl_dist_is_root()) { /* under mpirun: every rank ran its share, rank 0 writes the results */
        free(probs), free(labels);
        return TLCL_OK;
    }
    char csv[4200], png[4200], rep[4200];
    snprintf(csv, sizeof csv, "%s/test_confusion_matrix.csv", o->out);
    snprintf(png, sizeof png, "%s/test_confusion_matrix.png", o->out);
    snprintf(rep, sizeof rep, "%s/test_report.json", o->out);
    tlcl_eval_paths paths = {csv, png, rep};
    int rc = tlcl_evaluate_write(probs, labels, n, r->model.classes, (const char *const *)r->names, NULL, &paths,
                                 stdout, r->err, sizeof r->err);
    free(probs), free(labels);
    return rc == 0 ? TLCL_OK : TLCL_ERR_IO;
}

static void cleanup(test_run *r)
{
    tlcl_loader_close(r->loader);
    tlcl_image_cache_close(&r->cache);
    for (int i = 0; r->files && i < (int)r->ds.count; i++)
        free(r->files[i]);
    free(r->files);
    if (r->ds.samples)
        tlcl_dataset_free(&r->ds);
    for (int i = 0; i < r->nnames; i++)
        free(r->names[i]);
    free(r->names);
    if (r->eng)
        tlcl_model_free(&r->model), tlcl_engine_free(r->eng);
    else
        tlcl_model_free(&r->model);
    tlcl_cl_free(r->cl);
    tlcl_checkpoint_close(r->ck);
}

int cmd_test(int argc, char **argv)
{
    test_cli o;
    cli_args c;
    if (parse(argc, argv, &o, &c))
        return c.status;
    test_run r;
    memset(&r, 0, sizeof r);
    tlcl_status s = TLCL_OK;
    if (mkdir(o.out, 0755) != 0 && errno != EEXIST) { /* say why now, not "no such file" at the first write */
        int e = errno;
        snprintf(r.err, sizeof r.err, "cannot create the output folder %s (--out): %s%s", o.out, strerror(e),
                 tlcl_io_hint(e));
        s = TLCL_ERR_IO;
    }
    if (s == TLCL_OK)
        s = open_model(&r, &o);
    if (s == TLCL_OK) { /* under mpirun rank 0 fills the image cache first, the others read it */
        tlcl_dist_root_first_begin();
        if ((s = open_data(&r, &o)) == TLCL_OK)
            tlcl_dist_root_first_end();
    }
    if (s == TLCL_OK)
        s = evaluate(&r, &o);
    if (s != TLCL_OK)
        fprintf(stderr, "tlcl test: %s\n", r.err);
    cleanup(&r);
    return s == TLCL_OK ? 0 : 1;
}
