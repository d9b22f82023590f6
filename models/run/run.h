/* run.h — the one training step and the one inference pass of tlcl.
 *
 * `tlcl train`, `tlcl test`, `tlcl predict`, `tlcl bench` and the tests run
 * every forward and backward pass of a whole model through this module: a
 * run binds a model to a loss and owns the device buffers a batch needs
 * (double-buffered inputs, the loss, dlogits, probabilities) and the
 * device-side counters of a sequence of batches (loss sum, weighted hits,
 * confusion matrix, the first non-finite step).
 *
 * Nothing here waits for the device except tlcl_run_sync: a batch's upload
 * is a non-blocking write (the next batch is uploaded while the current step
 * runs), the counters accumulate on the device, and a step whose loss is NaN
 * or Inf raises a sticky flag on the device that makes the optimizer skip
 * that update and every later one, so the parameters stay those before the
 * bad step until the host reads the flag and stops. */
#ifndef TLCL_RUN_H
#define TLCL_RUN_H

#include "model.h"

typedef enum tlcl_loss_kind { TLCL_LOSS_KIND_XENT = 0, TLCL_LOSS_KIND_FOCAL } tlcl_loss_kind;

/* The training loss; validation uses the same one without sample weights
 * (Keras: val_loss is unweighted, label smoothing and focal terms included). */
typedef struct tlcl_loss_spec {
    tlcl_loss_kind kind;
    float label_smoothing;
    float focal_gamma, focal_alpha;          /* Keras defaults 2.0, 0.25 */
    const float *focal_alpha_per_class;      /* [classes] or NULL (copied at create) */
} tlcl_loss_spec;

tlcl_loss_spec tlcl_loss_spec_default(void);

typedef struct tlcl_run tlcl_run;

/* The model must be allocated on its engine. */
tlcl_status tlcl_run_create(tlcl_run **out, tlcl_model *m, const tlcl_loss_spec *loss, char *err, size_t err_len);
void tlcl_run_free(tlcl_run *r);
/* The model the run was created with. */
const tlcl_model *tlcl_run_model(const tlcl_run *r);
/* The message of the last failed call (engine or run). */
const char *tlcl_run_error(const tlcl_run *r);

/* ---- batches ---------------------------------------------------------------- */

/* One batch as the host holds it. */
typedef struct tlcl_run_input {
    const float *images;   /* [count, size, size, 3] raw RGB 0..255; NULL with a feature table */
    const int *items;      /* [count] rows of the feature table (dataset positions); NULL without */
    const int *labels;     /* [count] or NULL (predict without labels) */
    const float *weights;  /* [count] sample weights or NULL (all 1) */
    int count;
} tlcl_run_input;

/* A batch on the device: one of the run's two input slots. */
typedef struct tlcl_run_batch tlcl_run_batch;

/* Queues the batch's upload without waiting (the host data is copied first,
 * so the caller may reuse it at once). With `features` (a table [rows, 1, 1,
 * C] on the device, see tlcl_run_features) the batch is the table's rows
 * `items`, gathered on the device. Two slots alternate: loading batch k+1
 * while step k runs is the intended use. */
tlcl_status tlcl_run_load(tlcl_run *r, const tlcl_run_input *in, const tlcl_tensor *features,
                          tlcl_run_batch **out);

/* ---- the training step ----------------------------------------------------- */

typedef struct tlcl_step_args {
    float lr;
    uint32_t seed;         /* dropout and stochastic depth */
    long step;             /* the number reported when this step's loss is not finite */
    int global_count;      /* samples of the global batch over all replicas (the loss's
                            * divisor); 0: this batch's own count (one replica) */
    int first_sample;      /* this batch's first sample in the global batch: dropout and stochastic
                            * depth masks are keyed by the global index (0: one replica) */
} tlcl_step_args;

/* Zero-grad, training forward, loss (sample weights), backward; the loss and
 * the class-weighted hits accumulate in the counters. Gradients only (tests
 * compare them with Keras). */
tlcl_status tlcl_run_gradients(tlcl_run *r, tlcl_run_batch *b, const tlcl_step_args *a);
/* tlcl_run_gradients, then clipping and the optimizer update (skipped on the
 * device once a non-finite loss was seen since the last reset). */
tlcl_status tlcl_run_step(tlcl_run *r, tlcl_run_batch *b, tlcl_optimizer *opt, const tlcl_step_args *a);

/* Data parallelism: from now on tlcl_run_step sums the gradients across
 * replicas with `red` (engine.h: its start and poll, bucket by bucket
 * while the backward pass runs) before clipping and the update, so every
 * replica applies the same update; NULL turns it off. The reducer is
 * copied; its ctx must outlive the run's use of it. */
void tlcl_run_set_reducer(tlcl_run *r, const tlcl_reducer *red);
/* The least size of a gradient bucket in floats (buckets end at layer
 * boundaries); 0: 1 Mi floats (4 MiB, PyTorch DDP's first bucket). */
void tlcl_run_set_bucket_floats(tlcl_run *r, size_t floats);

/* ---- inference ----------------------------------------------------------------- */

/* Inference forward and softmax. probs (may be NULL) receives [count,
 * classes] probabilities by a non-blocking read: valid after the next
 * tlcl_run_sync. With labels the unweighted loss, hits and confusion counts
 * accumulate. */
tlcl_status tlcl_run_predict(tlcl_run *r, tlcl_run_batch *b, float *probs);
/* The logits of the last tlcl_run_predict or step (a device tensor, valid
 * until the next call on the run). */
const tlcl_tensor *tlcl_run_logits(const tlcl_run *r);

/* Frozen-base features: the base's inference forward of an image batch,
 * its pooled rows written into table (allocated by the caller as [rows, 1,
 * 1, top channels]) at the batch's items. */
tlcl_status tlcl_run_features(tlcl_run *r, tlcl_run_batch *b, tlcl_tensor *table);

/* ---- counters ---------------------------------------------------------------- */

typedef struct tlcl_run_stats {
    double loss_sum;       /* sum of w_i l_i (training: sample weights; predict: unweighted) */
    double samples;        /* count of samples */
    double hits, weight;   /* sum of w_i [argmax == label], sum of w_i */
    long nonfinite_step;   /* -1, or the first step whose loss was NaN or Inf */
    int classes;
    const double *confusion; /* [classes * classes], rows true, columns predicted (owned by the run) */
    long grad_buckets;     /* data parallelism: gradient buckets summed across replicas */
    long buckets_overlapped; /* of those, started while the device still ran the step's backward pass */
} tlcl_run_stats;

/* Waits for the device, folds the device counters into the host totals and
 * returns them (the only call that blocks). */
tlcl_status tlcl_run_sync(tlcl_run *r, tlcl_run_stats *out);
/* Zeroes the counters (host and device) and lowers the non-finite flag. */
tlcl_status tlcl_run_reset(tlcl_run *r);

/* ---- several replicas: data parallelism in one process (run_group.c) ------------
 *
 * One model replica per device, each with its own context, engine, model
 * and run (the caller's); the group drives them. Each global batch is split
 * into contiguous slices, one per replica, in replica order; every replica
 * runs its slice on its own thread (replica 0 on the caller's), the
 * gradients are summed across replicas in a fixed order (0..N-1, then the
 * optional outer reducer across processes) so every replica gets the same
 * bits and applies the same update. Without synchronised batch norm the
 * BatchNorm moving statistics are averaged across replicas after each step
 * (MirroredStrategy's MEAN aggregation); with it every replica normalises
 * with the global batch's statistics. Every check_every steps the replicas'
 * parameters are compared: a difference beyond rounding stops the run with
 * an error naming both replicas and the step; rounding (devices of two
 * vendors round differently) is wiped by copying replica 0's values. */

enum { TLCL_GROUP_MAX = 16, TLCL_GROUP_CHECK_EVERY = 50 };

typedef struct tlcl_group tlcl_group;

typedef struct tlcl_group_options {
    int sync_batchnorm;          /* per-channel statistics of the global batch (tlcl_engine_set_reducer) */
    int check_every;             /* steps between parameter comparisons; 0: TLCL_GROUP_CHECK_EVERY, <0: never */
    const tlcl_reducer *outer;   /* called once per local sum by one thread, after it (MPI); NULL: none */
    const double *shares;        /* [n] fixed relative shares of a global batch (NULL: equal, or measured) */
    int balance_steps;           /* > 0: each replica's share follows its measured speed (samples per second
                                  * of its own work, waits excluded), refined over the first balance_steps
                                  * steps, then kept */
    size_t bucket_floats;        /* tlcl_run_set_bucket_floats of every replica (0: the default) */
} tlcl_group_options;

/* runs[0..n) (borrowed; runs[0] is the one the caller also uses for
 * validation and saving) over models of one architecture. Copies replica
 * 0's parameters and optimizer moments to the others. */
tlcl_status tlcl_group_create(tlcl_group **out, tlcl_run *const *runs, int n, const tlcl_group_options *o,
                              char *err, size_t err_len);
/* Turns the runs' and engines' reducers off; the runs stay the caller's. */
void tlcl_group_free(tlcl_group *g);
int tlcl_group_size(const tlcl_group *g);
/* The message of the last failed group call. */
const char *tlcl_group_error(const tlcl_group *g);
/* Each replica's slice of a global batch of `count` samples: contiguous,
 * in replica order, in proportion to the shares (largest remainders);
 * every replica gets one when count >= replicas (else the first `count`
 * do). The global batch, and so the result with synchronised batch norm,
 * does not depend on the split. */
void tlcl_group_split(const tlcl_group *g, int count, int *counts);
/* "device 0 (PLATFORM / DEVICE): 11 of 16 samples, device 1 (...): 5" for a
 * global batch of `count`; returns 1 once after the shares changed (then
 * worth printing), else 0. */
int tlcl_group_describe(tlcl_group *g, int count, char *buf, size_t len);

/* One data-parallel step of the global batch `in` (features: replica 0's
 * feature table, mirrored to the others on first use). a->global_count 0
 * means in->count (one process). opt->iterations advances once. Returns
 * after every replica's step is enqueued and its gradient sum done. */
tlcl_status tlcl_group_step(tlcl_group *g, const tlcl_run_input *in, const tlcl_tensor *features,
                            tlcl_optimizer *opt, const tlcl_step_args *a);
/* Every replica's counters summed (the confusion matrix is the group's). */
tlcl_status tlcl_group_sync(tlcl_group *g, tlcl_run_stats *out);
tlcl_status tlcl_group_reset(tlcl_group *g);
/* Replica 0's parameters and optimizer moments to the others (after the
 * caller changed them: a phase's start, a resumed backup). */
tlcl_status tlcl_group_broadcast(tlcl_group *g);
/* The parameter comparison tlcl_group_step runs every check_every steps. */
tlcl_status tlcl_group_check(tlcl_group *g);

#endif
