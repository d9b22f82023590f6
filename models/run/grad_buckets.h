/* grad_buckets.h — the run layer's gradient sum across replicas, in
 * buckets that start while the backward pass still runs (internal to
 * models/run; run.c owns one per run).
 *
 * The model says, layer by layer, from which offset up its gradients are
 * final (tlcl_model.grads_ready). Once a region of at least bucket_floats
 * is final, its non-blocking read into host memory is enqueued behind the
 * layer that finished it; once the read has landed, the reducer's
 * non-blocking sum of it starts (buckets in order: the head's first, as
 * backward produces them); once the sum is done, its write back to the
 * device is enqueued. The optimizer, enqueued after the last write, then
 * sees the summed gradients on the in-order queue. The device goes on
 * with the earlier layers' backward meanwhile: reads, sums and the
 * layers' kernels overlap.
 *
 * The non-finite guard (the replica's running loss sum) rides in the first
 * bucket, one float after the gradients: a NaN on any replica reaches all,
 * and each skips the update alike. */
#ifndef TLCL_GRAD_BUCKETS_H
#define TLCL_GRAD_BUCKETS_H

#include "engine.h"

/* A bucket's share of the flat gradient buffer, at least (the regions end
 * at layer boundaries): 1 Mi floats (4 MiB), PyTorch DDP's first bucket's
 * size; a B0 head plus its top layers fills the first. */
#define TLCL_GRAD_BUCKET_FLOATS ((size_t)1 << 20)

typedef struct grad_bucket {
    size_t lo, hi;        /* [lo, hi) of the host copy (the guard at index total) */
    cl_event landed;      /* its read from the device */
} grad_bucket;

typedef struct grad_buckets {
    tlcl_cl *cl;
    tlcl_reducer red;
    cl_mem grads, guard, summed_guard; /* the gradients; the replica's guard; where the summed one goes */
    size_t total;         /* gradients in the flat buffer */
    size_t bucket_floats;
    float *host;          /* [total + 1] */
    size_t unread;        /* [0, unread) of host not in a bucket yet */
    grad_bucket *b;
    int count, cap;
    int next_start, next_done;
    int finishing;        /* the backward pass is all enqueued: the last bucket is known */
    long started, overlapped; /* buckets summed; of those, started while the backward still ran */
} grad_buckets;

/* Ready for a step: host memory and the bucket table (kept between steps);
 * bucket_floats 0: TLCL_GRAD_BUCKET_FLOATS. */
tlcl_status grad_buckets_begin(grad_buckets *gb);
/* The model's grads_ready: gradients [from, total) are final. */
tlcl_status grad_buckets_ready(void *gb, size_t from);
/* After the backward pass: the rest down to `untouched` in a last bucket,
 * and every bucket summed and written back before this returns. Gradients
 * [0, untouched) are those of the layers below the lowest one backward
 * ran through (a frozen base): zero on every replica, nothing to sum. */
tlcl_status grad_buckets_finish(grad_buckets *gb, size_t untouched);
void grad_buckets_free(grad_buckets *gb);

#endif
