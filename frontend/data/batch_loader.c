/* batch_loader.c — see batch_loader.h. A ring of `prefetch` slots: workers
 * claim batch numbers in order and fill slot (batch % prefetch); the
 * consumer takes slot by slot and frees it when it asks for the next one. */
#include "batch_loader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct slot {
    tlcl_batch b;
    int state; /* 0 free, 1 being filled, 2 ready */
} slot;

struct tlcl_loader {
    const tlcl_image_cache *cache;
    int *items, *labels;
    float *weights;
    int n, nbatches;
    tlcl_loader_options o;
    int *order;             /* this epoch's permutation of 0..n */
    slot *slots;
    int epoch, generation;  /* generation changes at start(): stale work is dropped */
    int next_claim, next_take, stop;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    pthread_t *threads;
    int nthreads;
};

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void permute(tlcl_loader *l, int epoch)
{
    for (int i = 0; i < l->n; i++)
        l->order[i] = i;
    if (!l->o.shuffle)
        return;
    uint64_t s = mix(((uint64_t)l->o.seed << 32) ^ (uint64_t)(epoch + 1) * 0x9e3779b97f4a7c15ULL);
    for (int i = l->n - 1; i > 0; i--) {
        s = mix(s + 0x9e3779b97f4a7c15ULL);
        int j = (int)(s % (uint64_t)(i + 1));
        int t = l->order[i];
        l->order[i] = l->order[j], l->order[j] = t;
    }
}

static void fill_batch(tlcl_loader *l, tlcl_batch *b, int batch, int epoch, float *scratch)
{
    int bs = l->o.batch_size, first = batch * bs;
    int h = l->cache->h, w = l->cache->w;
    size_t img = (size_t)h * w * 3;
    b->index = batch;
    b->count = first + bs <= l->n ? bs : l->n - first;
    for (int k = 0; k < b->count; k++) {
        int pos = l->order[first + k];
        float *dst = b->images + k * img;
        tlcl_image_cache_get(l->cache, l->items[pos], dst);
        tlcl_augment_apply(&l->o.augment, dst, scratch, h, w, (uint32_t)epoch, (uint32_t)pos);
        b->labels[k] = l->labels[pos];
        b->weights[k] = l->weights ? l->weights[pos] : 1.0f;
        b->items[k] = pos;
    }
}

static void *worker(void *arg)
{
    tlcl_loader *l = arg;
    float *scratch = malloc((size_t)l->cache->h * l->cache->w * 3 * sizeof *scratch);
    pthread_mutex_lock(&l->lock);
    while (!l->stop && scratch) {
        int batch = l->next_claim;
        slot *s = &l->slots[batch % l->o.prefetch];
        if (batch >= l->nbatches || s->state != 0) {
            pthread_cond_wait(&l->changed, &l->lock);
            continue;
        }
        l->next_claim++;
        s->state = 1;
        int gen = l->generation, epoch = l->epoch;
        pthread_mutex_unlock(&l->lock);
        fill_batch(l, &s->b, batch, epoch, scratch);
        pthread_mutex_lock(&l->lock);
        s->state = gen == l->generation ? 2 : 0; /* a restart while filling drops the work */
        pthread_cond_broadcast(&l->changed);
    }
    pthread_mutex_unlock(&l->lock);
    free(scratch);
    return NULL;
}

static int alloc_slots(tlcl_loader *l)
{
    size_t img = (size_t)l->cache->h * l->cache->w * 3, bs = (size_t)l->o.batch_size;
    l->slots = calloc((size_t)l->o.prefetch, sizeof *l->slots);
    for (int i = 0; l->slots && i < l->o.prefetch; i++) {
        tlcl_batch *b = &l->slots[i].b;
        b->images = malloc(bs * img * sizeof *b->images);
        b->labels = malloc(bs * sizeof *b->labels);
        b->weights = malloc(bs * sizeof *b->weights);
        b->items = malloc(bs * sizeof *b->items);
        if (!b->images || !b->labels || !b->weights || !b->items)
            return -1;
    }
    return l->slots ? 0 : -1;
}

int tlcl_loader_open(tlcl_loader **out, const tlcl_image_cache *cache, const int *items, const int *labels,
                     const float *weights, int n, const tlcl_loader_options *o)
{
    tlcl_loader *l = calloc(1, sizeof *l);
    *out = NULL;
    if (!l || n < 0 || o->batch_size < 1)
        return free(l), -1;
    l->cache = cache, l->n = n, l->o = *o;
    l->o.prefetch = o->prefetch > 0 ? o->prefetch : 4;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    l->nthreads = o->workers > 0 ? o->workers : (int)(cpus > 0 ? cpus : 2);
    l->nbatches = (n + o->batch_size - 1) / o->batch_size;
    l->items = malloc(((size_t)n + 1) * sizeof *l->items);
    l->labels = malloc(((size_t)n + 1) * sizeof *l->labels);
    l->weights = weights ? malloc(((size_t)n + 1) * sizeof *l->weights) : NULL;
    l->order = malloc(((size_t)n + 1) * sizeof *l->order);
    l->threads = calloc((size_t)l->nthreads, sizeof *l->threads);
    if (!l->items || !l->labels || (weights && !l->weights) || !l->order || !l->threads || alloc_slots(l)) {
        tlcl_loader_close(l);
        return -1;
    }
    memcpy(l->items, items, (size_t)n * sizeof *items);
    memcpy(l->labels, labels, (size_t)n * sizeof *labels);
    if (weights)
        memcpy(l->weights, weights, (size_t)n * sizeof *weights);
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->changed, NULL);
    l->next_claim = l->nbatches; /* idle until start() */
    int started = 0;
    for (int t = 0; t < l->nthreads; t++)
        started += pthread_create(&l->threads[started], NULL, worker, l) == 0;
    l->nthreads = started;
    *out = l;
    return started > 0 ? 0 : -1;
}

int tlcl_loader_batches(const tlcl_loader *l) { return l->nbatches; }

int tlcl_loader_size(const tlcl_loader *l) { return l->n; }

int tlcl_loader_batch_count(const tlcl_loader *l, int b)
{
    int first = b * l->o.batch_size, left = l->n - first;
    return b < 0 || left <= 0 ? 0 : left < l->o.batch_size ? left : l->o.batch_size;
}

void tlcl_loader_start(tlcl_loader *l, int epoch, int skip_batches)
{
    pthread_mutex_lock(&l->lock);
    /* wait for in-flight fills of the previous epoch, then reset the ring */
    for (int busy = 1; busy;) {
        busy = 0;
        for (int i = 0; i < l->o.prefetch; i++)
            busy |= l->slots[i].state == 1;
        if (busy)
            pthread_cond_wait(&l->changed, &l->lock);
    }
    l->generation++;
    for (int i = 0; i < l->o.prefetch; i++)
        l->slots[i].state = 0;
    l->epoch = epoch;
    permute(l, epoch);
    skip_batches = skip_batches < 0 ? 0 : skip_batches > l->nbatches ? l->nbatches : skip_batches;
    l->next_claim = l->next_take = skip_batches;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->lock);
}

const tlcl_batch *tlcl_loader_next(tlcl_loader *l)
{
    pthread_mutex_lock(&l->lock);
    if (l->next_take > 0 && l->next_take <= l->nbatches) {
        slot *prev = &l->slots[(l->next_take - 1) % l->o.prefetch];
        if (prev->state == 2 && prev->b.index == l->next_take - 1)
            prev->state = 0; /* the caller is done with it */
    }
    if (l->next_take >= l->nbatches) {
        pthread_cond_broadcast(&l->changed);
        pthread_mutex_unlock(&l->lock);
        return NULL;
    }
    slot *s = &l->slots[l->next_take % l->o.prefetch];
    pthread_cond_broadcast(&l->changed);
    while (!(s->state == 2 && s->b.index == l->next_take))
        pthread_cond_wait(&l->changed, &l->lock);
    l->next_take++;
    pthread_mutex_unlock(&l->lock);
    return &s->b;
}

void tlcl_loader_close(tlcl_loader *l)
{
    if (!l)
        return;
    if (l->threads && l->nthreads) {
        pthread_mutex_lock(&l->lock);
        l->stop = 1;
        pthread_cond_broadcast(&l->changed);
        pthread_mutex_unlock(&l->lock);
        for (int t = 0; t < l->nthreads; t++)
            pthread_join(l->threads[t], NULL);
        pthread_mutex_destroy(&l->lock);
        pthread_cond_destroy(&l->changed);
    }
    for (int i = 0; l->slots && i < l->o.prefetch; i++) {
        free(l->slots[i].b.images), free(l->slots[i].b.labels);
        free(l->slots[i].b.weights), free(l->slots[i].b.items);
    }
    free(l->slots), free(l->items), free(l->labels), free(l->weights), free(l->order), free(l->threads);
    free(l);
}
