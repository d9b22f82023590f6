/* batch_loader.h — batches of images for training and evaluation, built by
 * worker threads ahead of the device: a seeded shuffle per epoch, images
 * from the image cache, augmentation, labels and per-sample weights. The
 * content of batch b of epoch e depends only on (seed, e, b), never on
 * thread timing, so runs and resumed runs see the same data. */
#ifndef TLCL_BATCH_LOADER_H
#define TLCL_BATCH_LOADER_H

#include "augment.h"
#include "image_cache.h"

typedef struct tlcl_batch {
    int count;        /* images in this batch (the last one may be short) */
    int index;        /* batch number within the epoch */
    float *images;    /* count * h * w * 3, raw RGB 0..255 */
    int *labels;      /* count */
    float *weights;   /* count: class weights (1 when none) */
    int *items;       /* count: dataset positions, for predictions files */
} tlcl_batch;

typedef struct tlcl_loader tlcl_loader;

typedef struct tlcl_loader_options {
    int batch_size;
    int shuffle;          /* reshuffle every epoch (training) */
    uint32_t seed;
    tlcl_augment augment; /* applied when active */
    int workers;          /* threads; 0: the number of online CPUs */
    int prefetch;         /* batches prepared ahead */
} tlcl_loader_options;

/* items[i] indexes the cache; labels/weights follow items (weights may be NULL). */
int tlcl_loader_open(tlcl_loader **out, const tlcl_image_cache *cache, const int *items, const int *labels,
                     const float *weights, int n, const tlcl_loader_options *o);
int tlcl_loader_batches(const tlcl_loader *l);
/* Samples in batch b of an epoch (the last one may be short). */
int tlcl_loader_batch_count(const tlcl_loader *l, int b);
/* Samples per epoch (batch items are positions below it). */
int tlcl_loader_size(const tlcl_loader *l);
/* Starts an epoch (stops any previous one); skip_batches > 0 resumes mid-epoch. */
void tlcl_loader_start(tlcl_loader *l, int epoch, int skip_batches);
/* The next batch in order, or NULL at the end of the epoch. Valid until the
 * next call to next() or start(). */
const tlcl_batch *tlcl_loader_next(tlcl_loader *l);
void tlcl_loader_close(tlcl_loader *l);

#endif
