/* grad_buckets.c — the gradient sum across replicas in buckets that
 * overlap the backward pass (grad_buckets.h). */
#include "grad_buckets.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static tlcl_status fail(grad_buckets *gb, tlcl_status s, const char *what)
{
    return tlcl_cl_fail(gb->cl, s, "run: %s", what);
}

static void forget_reads(grad_buckets *gb)
{
    for (int i = 0; i < gb->count; i++)
        tlcl_cl_forget(&gb->b[i].landed);
}

tlcl_status grad_buckets_begin(grad_buckets *gb)
{
    if (!gb->host && !(gb->host = malloc((gb->total + 1) * sizeof *gb->host)))
        return fail(gb, TLCL_ERR_OOM, "out of host memory for the gradients of a data-parallel step");
    forget_reads(gb); /* a step that failed half-way */
    gb->count = gb->next_start = gb->next_done = gb->finishing = 0;
    gb->unread = gb->total + 1;
    return TLCL_OK;
}

void grad_buckets_free(grad_buckets *gb)
{
    forget_reads(gb);
    free(gb->b);
    free(gb->host);
    memset(gb, 0, sizeof *gb);
}

/* Host [lo, unread) becomes the next bucket: its read is enqueued behind
 * the layers enqueued so far (the guard's too, for the first). */
static tlcl_status bucket_add(grad_buckets *gb, size_t lo)
{
    if (gb->count == gb->cap) {
        int cap = gb->cap ? 2 * gb->cap : 16;
        grad_bucket *grown = realloc(gb->b, (size_t)cap * sizeof *grown);
        if (!grown)
            return fail(gb, TLCL_ERR_OOM, "out of host memory for the gradient buckets");
        gb->b = grown, gb->cap = cap;
    }
    grad_bucket *b = &gb->b[gb->count];
    *b = (grad_bucket){.lo = lo, .hi = gb->unread};
    size_t grads_hi = b->hi > gb->total ? gb->total : b->hi;
    if (b->hi > gb->total)
        TLCL_TRY(tlcl_cl_read_async(gb->cl, gb->guard, 0, sizeof(float), gb->host + gb->total, "non-finite guard",
                                    NULL));
    if (grads_hi > lo)
        TLCL_TRY(tlcl_cl_read_async(gb->cl, gb->grads, lo * sizeof(float), (grads_hi - lo) * sizeof(float),
                                    gb->host + lo, "gradients", &b->landed));
    else
        TLCL_TRY(tlcl_cl_marker(gb->cl, &b->landed));
    gb->count++;
    gb->unread = lo;
    return tlcl_cl_flush(gb->cl); /* the device starts on it while the host goes on */
}

/* The summed bucket back to the device, ahead of the update. */
static tlcl_status write_back(grad_buckets *gb, const grad_bucket *b)
{
    size_t grads_hi = b->hi > gb->total ? gb->total : b->hi;
    if (b->hi > gb->total)
        TLCL_TRY(tlcl_cl_write_async(gb->cl, gb->summed_guard, 0, sizeof(float), gb->host + gb->total,
                                     "non-finite guard", NULL));
    if (grads_hi > b->lo)
        TLCL_TRY(tlcl_cl_write_async(gb->cl, gb->grads, b->lo * sizeof(float), (grads_hi - b->lo) * sizeof(float),
                                     gb->host + b->lo, "gradients", NULL));
    return TLCL_OK;
}

/* Whether the device still runs this step's backward: the last bucket's
 * read (behind every layer on the in-order queue) has not landed. */
static tlcl_status backward_running(grad_buckets *gb, int *running)
{
    int landed = 0;
    *running = 1;
    if (!gb->finishing)
        return TLCL_OK;
    TLCL_TRY(tlcl_cl_poll(gb->cl, gb->b[gb->count - 1].landed, &landed, "gradients"));
    *running = !landed;
    return TLCL_OK;
}

/* One look at the next bucket to start and the next to finish: *moved
 * when either went a state further. Buckets start in order, so every
 * replica (and every rank) starts them in the same order. */
static tlcl_status advance(grad_buckets *gb, int *moved)
{
    char err[512] = "";
    int done = 0;
    *moved = 0;
    if (gb->next_start < gb->count) {
        grad_bucket *b = &gb->b[gb->next_start];
        TLCL_TRY(tlcl_cl_poll(gb->cl, b->landed, &done, "gradients"));
        if (done) {
            int running = 0;
            TLCL_TRY(backward_running(gb, &running));
            gb->started++, gb->overlapped += running;
            tlcl_cl_forget(&b->landed);
            if (gb->red.start(gb->red.ctx, gb->red.replica, gb->next_start, gb->host + b->lo, b->hi - b->lo, err,
                              sizeof err) != TLCL_OK)
                return fail(gb, TLCL_ERR_CL, err[0] ? err : "the gradient sum across replicas failed");
            gb->next_start++, *moved = 1;
        }
    }
    if (gb->next_done < gb->next_start) {
        grad_bucket *b = &gb->b[gb->next_done];
        if (gb->red.poll(gb->red.ctx, gb->red.replica, gb->next_done, &done, err, sizeof err) != TLCL_OK)
            return fail(gb, TLCL_ERR_CL, err[0] ? err : "the gradient sum across replicas failed");
        if (done) {
            TLCL_TRY(write_back(gb, b));
            gb->next_done++, *moved = 1;
        }
    }
    return TLCL_OK;
}

/* Between two looks while sums are under way: from 50 us (far below a
 * layer's time, far above a poll's), doubling up to 1 ms while nothing
 * moves, so a long wait wakes the host seldom (on a CPU device its thread
 * shares the cores with the kernels'). */
enum { PAUSE_FIRST_US = 50, PAUSE_MAX_US = 1000 };

static void pause_for(long us)
{
    struct timespec t = {0, us * 1000};
    nanosleep(&t, NULL);
}

/* Moves every bucket as far as it goes now; with wait, until all are
 * written back. With nothing in flight, waiting for the next read is a
 * blocking wait (no sum needs the host's attention meanwhile). */
static tlcl_status progress(grad_buckets *gb, int wait)
{
    long pause = PAUSE_FIRST_US;
    for (;;) {
        int moved;
        TLCL_TRY(advance(gb, &moved));
        if (moved) {
            pause = PAUSE_FIRST_US;
            continue;
        }
        if (!wait || gb->next_done == gb->count)
            return TLCL_OK;
        if (gb->next_done == gb->next_start) {
            TLCL_TRY(tlcl_cl_wait(gb->cl, &gb->b[gb->next_start].landed, "gradients"));
            continue;
        }
        pause_for(pause);
        pause = pause * 2 < PAUSE_MAX_US ? pause * 2 : PAUSE_MAX_US;
    }
}

tlcl_status grad_buckets_ready(void *ctx, size_t from)
{
    grad_buckets *gb = ctx;
    size_t floats = gb->bucket_floats ? gb->bucket_floats : TLCL_GRAD_BUCKET_FLOATS;
    if (gb->unread > from && gb->unread - from >= floats)
        TLCL_TRY(bucket_add(gb, from));
    return progress(gb, 0);
}

tlcl_status grad_buckets_finish(grad_buckets *gb, size_t untouched)
{
    if (gb->unread > untouched || gb->count == 0)
        TLCL_TRY(bucket_add(gb, untouched < gb->unread ? untouched : gb->unread));
    gb->finishing = 1;
    return progress(gb, 1);
}
