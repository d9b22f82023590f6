/* run_data.h — the data of one training run, from the configuration: the
 * class-folder datasets (train, optional validation and test), the split
 * (persisted and reused), subsampling, class weights as per-sample weights
 * (the weights in force written to <artefacts>/class_weights.json),
 * and one decoded-image cache for every file, with unreadable images left
 * out (named in a warning) or refused under strict. */
#ifndef TLCL_RUN_DATA_H
#define TLCL_RUN_DATA_H

#include "config.h"
#include "dataset_dir.h"
#include "image_cache.h"

#include <stdio.h>

typedef struct tlcl_set {
    int n;
    int *items;      /* index into the image cache */
    int *labels;
    float *weights;  /* class weights per sample (1 without) */
} tlcl_set;

typedef struct tlcl_run_data {
    tlcl_dataset train_ds, val_ds, test_ds;
    int has_val_dir, has_test;       /* directories opened */
    int test_carved;                 /* the test set came from test_split */
    int classes;
    const char *const *class_names;   /* train_ds's */
    double *class_weight;             /* [classes] */
    char class_weight_line[2048];     /* the weights in force, for the console and the log */
    tlcl_set train, val, test;
    char **files;                     /* every image, absolute: the cache's list */
    int nfiles;
    tlcl_image_cache cache;
    int unreadable;
} tlcl_run_data;

typedef void (*tlcl_warn_fn)(void *ctx, const char *msg);

/* need_test: also index the test directory. Messages about reused splits
 * and skipped images go to warn. */
tlcl_status tlcl_run_data_open(tlcl_run_data *d, const tlcl_config *c, int need_test, tlcl_warn_fn warn,
                               void *warn_ctx, char *err, size_t err_len);
void tlcl_run_data_free(tlcl_run_data *d);
/* The images of each class in each split, a table ("class  train
 * validation test" and a total row), for the console and the log. */
void tlcl_run_data_print_counts(const tlcl_run_data *d, FILE *f);

#endif
