/* image_stream.c — see image_stream.h. Two slots: the decoder thread fills
 * one while the consumer holds the other. */
#include "image_stream.h"
#include "image_load.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SLOTS = 2 };

typedef struct slot {
    tlcl_image_batch b;
    float *pixels;
    int *file;
    int ready;             /* filled, not yet taken */
} slot;

struct tlcl_image_stream {
    const char *const *files;
    int n, h, w, batch, pos;    /* pos: the next file the decoder reads */
    slot slots[SLOTS];
    int fill, take;             /* the slot the decoder fills next, the consumer takes next */
    int held;                   /* the consumer holds slot take - 1 */
    int stop, done;             /* stop: close() asked; done: the decoder reached the end */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    pthread_t thread;
    int started;
};

/* Decodes the next batch of files into s (outside the lock: only the
 * decoder thread touches pos and an unready slot). */
static void decode_batch(tlcl_image_stream *st, slot *s)
{
    size_t per = (size_t)st->h * st->w * 3;
    int count = 0;
    for (; count < st->batch && st->pos < st->n; st->pos++) {
        char err[1024];
        if (tlcl_image_load_resized(st->files[st->pos], st->h, st->w, s->pixels + per * (size_t)count, err,
                                    sizeof err) == 0)
            s->file[count++] = st->pos;
        else
            fprintf(stderr, "tlcl predict: warning: %s; skipped\n", err);
    }
    s->b = (tlcl_image_batch){.pixels = s->pixels, .file = s->file, .count = count, .next = st->pos};
}

static void *decoder(void *arg)
{
    tlcl_image_stream *st = arg;
    for (;;) {
        pthread_mutex_lock(&st->lock);
        slot *s = &st->slots[st->fill];
        /* the slot is free when it is neither waiting to be taken nor held */
        while (!st->stop && (s->ready || (st->held && st->fill == (st->take + SLOTS - 1) % SLOTS)))
            pthread_cond_wait(&st->changed, &st->lock);
        int quit = st->stop || st->pos >= st->n;
        if (quit) {
            st->done = 1;
            pthread_cond_broadcast(&st->changed);
        }
        pthread_mutex_unlock(&st->lock);
        if (quit)
            return NULL;
        decode_batch(st, s);
        pthread_mutex_lock(&st->lock);
        s->ready = 1;
        st->fill = (st->fill + 1) % SLOTS;
        pthread_cond_broadcast(&st->changed);
        pthread_mutex_unlock(&st->lock);
    }
}

int tlcl_image_stream_open(tlcl_image_stream **out, const char *const *files, int n, int first, int h, int w,
                           int batch)
{
    *out = NULL;
    tlcl_image_stream *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    *st = (tlcl_image_stream){.files = files, .n = n, .h = h, .w = w, .batch = batch, .pos = first < n ? first : n};
    size_t per = (size_t)h * w * 3;
    for (int i = 0; i < SLOTS; i++) {
        st->slots[i].pixels = malloc(per * (size_t)batch * sizeof(float));
        st->slots[i].file = malloc((size_t)batch * sizeof(int));
        if (!st->slots[i].pixels || !st->slots[i].file) {
            tlcl_image_stream_close(st);
            return -1;
        }
    }
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->changed, NULL);
    if (pthread_create(&st->thread, NULL, decoder, st) != 0) {
        tlcl_image_stream_close(st);
        return -1;
    }
    st->started = 1;
    *out = st;
    return 0;
}

const tlcl_image_batch *tlcl_image_stream_next(tlcl_image_stream *st)
{
    pthread_mutex_lock(&st->lock);
    st->held = 0; /* the previous batch goes back to the decoder */
    pthread_cond_broadcast(&st->changed);
    slot *s = &st->slots[st->take];
    while (!s->ready && !st->done)
        pthread_cond_wait(&st->changed, &st->lock);
    const tlcl_image_batch *b = NULL;
    if (s->ready) {
        s->ready = 0;
        st->held = 1;
        st->take = (st->take + 1) % SLOTS;
        b = &s->b;
    }
    pthread_mutex_unlock(&st->lock);
    return b;
}

void tlcl_image_stream_close(tlcl_image_stream *st)
{
    if (!st)
        return;
    if (st->started) {
        pthread_mutex_lock(&st->lock);
        st->stop = 1;
        pthread_cond_broadcast(&st->changed);
        pthread_mutex_unlock(&st->lock);
        pthread_join(st->thread, NULL);
        pthread_mutex_destroy(&st->lock);
        pthread_cond_destroy(&st->changed);
    }
    for (int i = 0; i < SLOTS; i++)
        free(st->slots[i].pixels), free(st->slots[i].file);
    free(st);
}
